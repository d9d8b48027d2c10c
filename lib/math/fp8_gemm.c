// fp8_gemm.c — FP8 GEMM: Hopper accumulation model with FP32 promotion, and the sgemm fast path.
#include "math/fp8_gemm.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "core/common.h"

Fp8GemmOpts fp8_gemm_defaults(void) {
    return (Fp8GemmOpts){.exact = 0, .acc_bits = 14, .mma_k = 32, .n_c = FP8_GROUP};
}

// Logical shapes: A is M×K, B is K×N.
static int a_rows(const Fp8Tensor *A) { return A->k_along_cols ? A->rows : A->cols; }
static int b_cols(const Fp8Tensor *B) { return B->k_along_cols ? B->rows : B->cols; }
static int k_of(const Fp8Tensor *X) { return X->k_along_cols ? X->cols : X->rows; }

size_t fp8_gemm_work_floats(const Fp8Tensor *A, const Fp8Tensor *B) {
    return (size_t)A->rows * A->cols + (size_t)B->rows * B->cols;
}

// ---------------------------------------------------------------------------------------------
// Exact model
// ---------------------------------------------------------------------------------------------

// Rounds toward zero to the nearest float: the tensor core writes its sum back to FP32 registers
// by truncation.
static double to_f32_rz(double s) {
    float f = (float)s;
    if (fabs((double)f) > fabs(s)) f = nextafterf(f, 0.0f);
    return f;
}

// One output of the model. a, b: K unscaled FP8 values (exact floats) along K; sa, sb: the
// operands' scales per 128-group of K. Per MMA step of mma_k products, every term (the products
// and the incoming accumulator) is aligned to the largest exponent among them and truncated
// toward zero to acc_bits significant bits; the aligned terms are summed exactly and stored as
// FP32 (toward zero). Every n_c elements the accumulator is promoted: scaled by sa·sb and added
// to a true FP32 sum. When promotion intervals do not fit inside one scale group (n_c = 0, or n_c
// not dividing 128), there is no promotion point at which to apply the group scales, so they are
// folded into each product before it enters the accumulator, as with per-tensor scaling.
static float dot_model(const float *a, const float *b, const float *sa, const float *sb, int K,
                       const Fp8GemmOpts *o) {
    const int at_promotion = o->n_c > 0 && FP8_GROUP % o->n_c == 0;
    const int interval = o->n_c > 0 ? o->n_c : K;
    double p[256];
    float acc32 = 0.0f;
    for (int k0 = 0; k0 < K; k0 += interval) {
        int k1 = DS_MIN(k0 + interval, K);
        double c = 0.0; // the limited accumulator; always holds an FP32 value
        for (int j0 = k0; j0 < k1; j0 += o->mma_k) {
            int n = DS_MIN(o->mma_k, k1 - j0);
            double m = fabs(c);
            for (int j = 0; j < n; j++) {
                int k = j0 + j;
                p[j] = (double)a[k] * b[k]; // exact: at most 4 + 4 significant bits
                if (!at_promotion) p[j] *= (double)sa[k / FP8_GROUP] * sb[k / FP8_GROUP];
                m = fmax(m, fabs(p[j]));
            }
            if (m == 0.0) continue;
            int e = ilogb(m) - o->acc_bits + 1; // weight of the last bit kept
            double unit = ldexp(1.0, e), inv = ldexp(1.0, -e);
            // Each term is an integer below 2^acc_bits times unit: the sum is exact in double.
            double s = trunc(c * inv) * unit;
            for (int j = 0; j < n; j++) s += trunc(p[j] * inv) * unit;
            c = to_f32_rz(s);
        }
        if (at_promotion)
            acc32 += (float)c * (sa[k0 / FP8_GROUP] * sb[k0 / FP8_GROUP]);
        else
            acc32 += (float)c;
    }
    return acc32;
}

// Gathers operand X as n_idx rows of K unscaled values (row i is output row m for A, output
// column n for B), and one scale per (i, K-group).
static void gather(const Fp8Tensor *X, int n_idx, int K, float *vals, float *scales) {
    float lut[256];
    fp8_table(X->fmt, lut);
    int nkg = (K + FP8_GROUP - 1) / FP8_GROUP;
    for (int i = 0; i < n_idx; i++) {
        for (int k = 0; k < K; k++) {
            int r = X->k_along_cols ? i : k, c = X->k_along_cols ? k : i;
            vals[(size_t)i * K + k] = lut[X->codes[(size_t)r * X->cols + c]];
        }
        for (int g = 0; g < nkg; g++) {
            int k = g * FP8_GROUP;
            int r = X->k_along_cols ? i : k, c = X->k_along_cols ? k : i;
            scales[(size_t)i * nkg + g] =
                X->scales[(size_t)(r / X->brow) * X->scale_cols + c / X->bcol];
        }
    }
}

static void gemm_exact(float *C, int ldc, const Fp8Tensor *A, const Fp8Tensor *B, float beta,
                       const Fp8GemmOpts *o) {
    DS_CHECK(o->acc_bits >= 2 && o->acc_bits <= 24);
    DS_CHECK(o->mma_k >= 1 && o->mma_k <= 256 && o->n_c >= 0);
    int M = a_rows(A), N = b_cols(B), K = k_of(A), nkg = (K + FP8_GROUP - 1) / FP8_GROUP;
    float *av = ds_malloc((size_t)M * K * sizeof(float)),
          *bv = ds_malloc((size_t)N * K * sizeof(float));
    float *as = ds_malloc((size_t)M * nkg * sizeof(float)),
          *bs = ds_malloc((size_t)N * nkg * sizeof(float));
    gather(A, M, K, av, as);
    gather(B, N, K, bv, bs);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float v = dot_model(av + (size_t)m * K, bv + (size_t)n * K, as + (size_t)m * nkg,
                                bs + (size_t)n * nkg, K, o);
            float *cp = C + (size_t)m * ldc + n;
            *cp = beta == 0.0f ? v : beta * *cp + v;
        }
    free(av), free(bv), free(as), free(bs);
}

// ---------------------------------------------------------------------------------------------
// Fast path
// ---------------------------------------------------------------------------------------------

void fp8_gemm(float *C, int ldc, const Fp8Tensor *A, const Fp8Tensor *B, float beta,
              const Fp8GemmOpts *o, float *work) {
    int M = a_rows(A), N = b_cols(B), K = k_of(A);
    DS_CHECK(k_of(B) == K && ldc >= N);
    if (o->exact) {
        gemm_exact(C, ldc, A, B, beta, o);
        return;
    }
    float *owned = NULL;
    if (!work) work = owned = ds_malloc(fp8_gemm_work_floats(A, B) * sizeof(float));
    float *wa = work, *wb = work + (size_t)A->rows * A->cols;
    fp8_dequantize(A, wa);
    fp8_dequantize(B, wb);
    cblas_sgemm(CblasRowMajor, A->k_along_cols ? CblasNoTrans : CblasTrans,
                B->k_along_cols ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, wa, A->cols, wb,
                B->cols, beta, C, ldc);
    free(owned);
}
