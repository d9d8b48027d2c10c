// fp8.h — FP8 numbers (E4M3, E5M2) and fine-grained scaled quantisation of GEMM operands (V3 §3.3).
#ifndef DS_FP8_H
#define DS_FP8_H

#include <stddef.h>
#include <stdint.h>

// E4M3 is OCP/NVIDIA "e4m3fn": bias 7, no infinities, S.1111.111 is NaN, max 448.
// E5M2 is IEEE-like: bias 15, S.11111.00 is infinity, S.11111.xx (xx != 0) is NaN, max 57344.
typedef enum { FP8_E4M3, FP8_E5M2 } Fp8Format;

#define FP8_GROUP 128        // length of a scale group along K
#define FP8_AMAX_FLOOR 1e-4f // amax of an all-zero group, so scales never vanish
#define FP8_E4M3_MAX 448.0f
#define FP8_E5M2_MAX 57344.0f
#define FP8_NAN 0x7F // the NaN code fp8_from_float returns (both formats)

// Round to nearest, ties to even, with saturation: finite values beyond the largest code become
// ±max (what training wants: an outlier is clipped, not turned into NaN). Infinity: E5M2 keeps
// ±inf; E4M3 has no infinity and returns NaN, so an overflow that already happened stays visible.
// NaN becomes FP8_NAN. Signed zero keeps its sign; magnitudes below half the smallest subnormal
// become ±0.
uint8_t fp8_from_float(float x, Fp8Format f);
// Exact: every FP8 value is a float.
float fp8_to_float(uint8_t c, Fp8Format f);
// Fills lut[c] = fp8_to_float(c, f) for the 256 codes (decoding in hot loops goes through it).
void fp8_table(Fp8Format f, float lut[256]);
float fp8_max(Fp8Format f);

// The scale of one group: max(amax, FP8_AMAX_FLOOR) / fp8_max(f), so x / scale fits the format.
// pow2 rounds the scale UP to a power of two (x / scale is then exact scaling, and x / scale
// still fits).
float fp8_scale(float amax, Fp8Format f, int pow2);

// A quantised 2-D operand of a GEMM, grouped along its contraction dimension K. Element (i, j) of
// the row-major rows×cols matrix is fp8_to_float(codes[i*cols + j]) times
// scales[(i/brow)*scale_cols + j/bcol]; groups are 1×128 or 128×128 along K: (brow, bcol) =
// (block_other, 128) when K is the column index, (128, block_other) when K is the row index.
// Last groups may be partial.
typedef struct Fp8Tensor {
    int rows, cols;             // logical shape as stored (row-major)
    int k_along_cols;           // 1: K is the column index (X[M,K]); 0: K is the row index
    int block_other;            // group extent across K: 1 (activations, 1×128), 128 (weights)
    int brow, bcol;             // group shape in (rows, cols), derived from the two fields above
    int scale_rows, scale_cols; // shape of the scale grid
    uint8_t *codes;             // rows*cols
    float *scales;              // scale_rows*scale_cols
    Fp8Format fmt;
} Fp8Tensor;

// Sets the shape fields and allocates codes and scales (owned by q; fp8_tensor_free).
void fp8_tensor_alloc(Fp8Tensor *q, int rows, int cols, int k_along_cols, int block_other,
                      Fp8Format fmt);
// Quantises x (rows×cols, row-major, the shape q was allocated with) into q's own buffers:
// no allocation, for the training step.
void fp8_quantize_into(Fp8Tensor *q, const float *x, int pow2_scales);
// fp8_tensor_alloc + fp8_quantize_into.
void fp8_quantize(Fp8Tensor *q, const float *x, int rows, int cols, int k_along_cols,
                  int block_other, Fp8Format fmt, int pow2_scales);
// x (rows×cols) = codes * scales, in the stored layout.
void fp8_dequantize(const Fp8Tensor *q, float *x);
// The same tensor seen with K along its other dimension. Only square blocks (block_other ==
// FP8_GROUP) allow this: one 128×128-block weight then serves the forward GEMM (K = in) and the
// input-gradient GEMM (K = out). Shares q's buffers; do not free the view.
Fp8Tensor fp8_tensor_kswap(const Fp8Tensor *q);
// Frees codes and scales; safe on a zeroed or already freed tensor.
void fp8_tensor_free(Fp8Tensor *q);

#endif
