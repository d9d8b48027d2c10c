// precision.h — the GEMM precision of a training run's Linear layers (V3 §3.3): FP32, BF16 inputs,
// or E4M3 inputs with fine-grained scales; FP32 accumulation, master weights and gradients in all.
#ifndef DS_PRECISION_H
#define DS_PRECISION_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

typedef enum { PRECISION_FP32, PRECISION_BF16, PRECISION_FP8 } Precision;

// "fp32", "bf16", "fp8" -> *p; DS_ERR (naming the value) otherwise.
int precision_parse(const char *s, Precision *p, DsErr *e);
const char *precision_name(Precision p);

// Rounds n floats to the nearest bf16 (ties to even) and widens back: dst may equal src.
void precision_round_bf16(float *dst, const float *src, size_t n);

// Buffers for the emulated GEMMs, sized once for the largest operand (elements) of any Linear
// layer, so the training step never allocates. FP32 mode holds nothing.
typedef struct PrecisionScratch {
    Precision mode;
    size_t cap;              // elements of the largest activation or weight operand
    uint8_t *codes_a, *codes_b;
    float *scales_a, *scales_b;
    float *work;             // 2*cap: the two dequantised (or bf16-rounded) operands
} PrecisionScratch;

void precision_scratch_init(PrecisionScratch *s, Precision mode, size_t cap);
void precision_scratch_free(PrecisionScratch *s);

// The three GEMMs of a Linear layer with weight w[OC,C] under s->mode (FP32 mode calls sgemm on
// the inputs as they are); every operand must fit in s->cap elements:
//   forward: out[N,OC] = inp[N,C]·wᵀ + beta·out (+ bias[OC] when not NULL)
//   backward: dinp[N,C] += dout[N,OC]·w; dw[OC,C] += doutᵀ·inp; dbias[OC] += Σ_n dout (NULL skips)
// FP8 groups: inp and dout 1×128 along the contraction dimension; w in 128×128 blocks, so the
// same quantised weight serves forward and input gradient (backward quantises it again, with the
// same result, rather than keep a copy per layer); for the weight gradient both operands 128×1
// along the tokens. Bias terms stay FP32.
void precision_linear_forward(PrecisionScratch *s, float *out, const float *inp, const float *w,
                              const float *bias, int N, int C, int OC, float beta);
void precision_linear_backward(PrecisionScratch *s, float *dinp, float *dw, float *dbias,
                               const float *dout, const float *inp, const float *w, int N, int C,
                               int OC);

#endif
