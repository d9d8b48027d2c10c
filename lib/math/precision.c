// precision.c — Linear-layer GEMMs with BF16 or fine-grained-scaled E4M3 inputs and FP32
// accumulation: the emulation of V3's mixed-precision training on the CPU.
#include "math/precision.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "math/fp8_gemm.h"
#include "math/half.h"

static const char *NAMES[] = {"fp32", "bf16", "fp8"};

int precision_parse(const char *s, Precision *p, DsErr *e) {
    for (int i = 0; i < (int)DS_ARRAY_LEN(NAMES); i++)
        if (!strcmp(s, NAMES[i])) {
            *p = (Precision)i;
            return DS_OK;
        }
    return ds_errf(e, "unknown precision '%s' (expected fp32, bf16 or fp8)", s);
}

const char *precision_name(Precision p) {
    DS_CHECK(p >= PRECISION_FP32 && p <= PRECISION_FP8);
    return NAMES[p];
}

void precision_round_bf16(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(f32_to_bf16(src[i]));
}

void precision_scratch_init(PrecisionScratch *s, Precision mode, size_t cap) {
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->cap = cap;
    if (mode == PRECISION_FP32) return;
    s->work = ds_aligned_alloc(sizeof(float) * 2 * cap);
    if (mode == PRECISION_FP8) {
        // Every scale group holds at least one element, so cap scales always suffice.
        s->codes_a = ds_aligned_alloc(cap), s->codes_b = ds_aligned_alloc(cap);
        s->scales_a = ds_aligned_alloc(sizeof(float) * cap);
        s->scales_b = ds_aligned_alloc(sizeof(float) * cap);
    }
}

void precision_scratch_free(PrecisionScratch *s) {
    if (!s) return;
    free(s->codes_a), free(s->codes_b), free(s->scales_a), free(s->scales_b), free(s->work);
    memset(s, 0, sizeof *s);
}

// An Fp8Tensor of the given layout (rows×cols, row-major) over the scratch's buffers for operand
// `which` (0: A, 1: B), with the shape fields as fp8_tensor_alloc sets them, so each GEMM
// quantises without allocating.
static Fp8Tensor view(const PrecisionScratch *s, int which, int rows, int cols, int k_along_cols,
                      int block_other) {
    DS_CHECK(rows > 0 && cols > 0 && (size_t)rows * cols <= s->cap);
    Fp8Tensor q = {.rows = rows, .cols = cols, .k_along_cols = k_along_cols,
                   .block_other = block_other, .fmt = FP8_E4M3};
    q.brow = k_along_cols ? block_other : FP8_GROUP;
    q.bcol = k_along_cols ? FP8_GROUP : block_other;
    q.scale_rows = (rows + q.brow - 1) / q.brow;
    q.scale_cols = (cols + q.bcol - 1) / q.bcol;
    q.codes = which ? s->codes_b : s->codes_a;
    q.scales = which ? s->scales_b : s->scales_a;
    return q;
}

// x[rows,cols] quantised to E4M3 into operand `which`'s buffers.
static Fp8Tensor quantized(const PrecisionScratch *s, int which, const float *x, int rows, int cols,
                           int k_along_cols, int block_other) {
    Fp8Tensor q = view(s, which, rows, cols, k_along_cols, block_other);
    fp8_quantize_into(&q, x, 0);
    return q;
}

// x[n] rounded to BF16 into half `which` of the work buffer: the operand the BF16 GEMM reads.
static const float *bf16_operand(PrecisionScratch *s, int which, const float *x, size_t n) {
    DS_CHECK(n <= s->cap);
    float *dst = s->work + (which ? s->cap : 0);
    precision_round_bf16(dst, x, n);
    return dst;
}

void precision_linear_forward(PrecisionScratch *s, float *out, const float *inp, const float *w,
                              const float *bias, int N, int C, int OC, float beta) {
    if (s->mode == PRECISION_FP8) {
        Fp8GemmOpts o = fp8_gemm_defaults();
        Fp8Tensor x = quantized(s, 0, inp, N, C, 1, 1);
        Fp8Tensor wq = quantized(s, 1, w, OC, C, 1, FP8_GROUP);
        fp8_gemm(out, OC, &x, &wq, beta, &o, s->work);
    } else {
        if (s->mode == PRECISION_BF16) {
            inp = bf16_operand(s, 0, inp, (size_t)N * C);
            w = bf16_operand(s, 1, w, (size_t)OC * C);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1, inp, C, w, C, beta, out, OC);
    }
    if (bias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
}

void precision_linear_backward(PrecisionScratch *s, float *dinp, float *dw, float *dbias,
                               const float *dout, const float *inp, const float *w, int N, int C,
                               int OC) {
    if (s->mode == PRECISION_FP8) {
        Fp8GemmOpts o = fp8_gemm_defaults();
        if (dinp) { // dX = dY·W: dY 1×128 along OC, the 128×128-block weight seen with K = OC
            Fp8Tensor dy = quantized(s, 0, dout, N, OC, 1, 1);
            Fp8Tensor wq = quantized(s, 1, w, OC, C, 1, FP8_GROUP);
            Fp8Tensor wk = fp8_tensor_kswap(&wq);
            fp8_gemm(dinp, C, &dy, &wk, 1, &o, s->work);
        }
        if (dw) { // dW = dYᵀ·X: both grouped 128×1 along the tokens
            Fp8Tensor dy = quantized(s, 0, dout, N, OC, 0, 1);
            Fp8Tensor x = quantized(s, 1, inp, N, C, 0, 1);
            fp8_gemm(dw, C, &dy, &x, 1, &o, s->work);
        }
    } else {
        const float *dy = dout;
        if (s->mode == PRECISION_BF16) dy = bf16_operand(s, 0, dout, (size_t)N * OC);
        if (dinp) {
            const float *wr = s->mode == PRECISION_BF16 ? bf16_operand(s, 1, w, (size_t)OC * C) : w;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1, dy, OC, wr, C, 1,
                        dinp, C);
        }
        if (dw) {
            const float *x = s->mode == PRECISION_BF16 ? bf16_operand(s, 1, inp, (size_t)N * C) : inp;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1, dy, OC, x, C, 1, dw, C);
        }
    }
    if (dbias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) dbias[o] += dout[(size_t)n * OC + o];
}
