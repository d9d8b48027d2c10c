// fp8_gemm.h — the FP8 GEMM of V3's training: an exact model of Hopper's limited-precision
// accumulation with promotion to FP32, and a fast path (dequantise + sgemm) for training.
#ifndef DS_FP8_GEMM_H
#define DS_FP8_GEMM_H

#include <stddef.h>

#include "math/fp8.h"

typedef struct Fp8GemmOpts {
    int exact;    // 1: the accumulation model (docs/FP8.md); 0: dequantise + cblas_sgemm
    int acc_bits; // exact: significant bits kept after aligning to a step's largest exponent
                  // (2..24)
    int mma_k;    // exact: products summed per tensor-core step (Hopper FP8 MMA: 32)
    int n_c;      // exact: promote to FP32 every n_c elements of K; 0 = never
} Fp8GemmOpts;

// exact = 0, acc_bits = 14, mma_k = 32, n_c = 128: V3's settings.
Fp8GemmOpts fp8_gemm_defaults(void);

// Floats of scratch the fast path needs for A and B (their dequantised copies).
size_t fp8_gemm_work_floats(const Fp8Tensor *A, const Fp8Tensor *B);

// C = A · B + beta · C, C is M×N row-major with row stride ldc (beta 0 overwrites, C is then
// not read). A is logically M×K and B K×N; the shapes come from the tensors' layouts:
//   A stored M×K (k_along_cols = 1) or K×M (k_along_cols = 0),
//   B stored N×K (k_along_cols = 1) or K×N (k_along_cols = 0),
// and both must have the same K. The three GEMMs of a Linear layer (W is out×in, 128×128 blocks):
//   forward Y = X·Wᵀ:  A = X[T,in] 1×128 along in,   B = W (K = in, k_along_cols = 1)
//   dgrad  dX = dY·W:  A = dY[T,out] 1×128 along out, B = fp8_tensor_kswap(W) (K = out)
//   wgrad  dW = dYᵀ·X: A = dY[T,out] and B = X[T,in], both k_along_cols = 0, block_other = 1
// work: fp8_gemm_work_floats floats for the fast path (NULL allocates per call); the exact model
// ignores it and allocates its own (it is a study and reference path, not a training path).
void fp8_gemm(float *C, int ldc, const Fp8Tensor *A, const Fp8Tensor *B, float beta,
              const Fp8GemmOpts *o, float *work);

#endif
