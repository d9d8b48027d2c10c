// rowgemm.c — a row-deterministic matrix product: per output element, 8 lane partial sums over K
// in order, a fixed pairwise reduction, then the K % 8 tail. The same operations run whether the
// vector type lowers to SSE or to AVX2 (the avx2 clone), so both give the same bits. Tiles of
// 2 rows × 4 outputs reuse loads; edge elements run the same per-element sequence.
#include "math/rowgemm.h"

#include <string.h>

typedef float v8 __attribute__((vector_size(32)));

// Vectors never cross a function boundary (their calling convention would depend on the target):
// loads are a macro and the reduction takes a pointer.
#define LOAD(v, p) memcpy(&(v), (p), sizeof(v))

static inline float finish(const v8 *acc, const float *x, const float *w, int k0, int K) {
    const float *a = (const float *)acc;
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (int k = k0; k < K; k++) s += x[k] * w[k];
    return s;
}

static inline void store(float *o, float v, const float *bias, int n, int accumulate) {
    if (bias) v += bias[n];
    *o = accumulate ? *o + v : v;
}

// One output element: the sequence every element of the tiles below also follows.
static inline float dot8(const float *x, const float *w, int K8, int K) {
    v8 a = {0}, p, b;
    for (int k = 0; k < K8; k += 8) {
        LOAD(p, x + k), LOAD(b, w + k);
        a += p * b;
    }
    return finish(&a, x, w, K8, K);
}

// gcc builds an AVX2 clone picked at load time; clang 14 cannot resolve clones across a static
// library, so it builds one version.
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void rowgemm_ld(float *out, int ldo, const float *x, int ldx, const float *w, int ldw, const float *bias,
                int R, int K, int N, int accumulate) {
    int K8 = K / 8 * 8, r = 0;
    for (; r + 2 <= R; r += 2) {
        const float *x0 = x + (size_t)r * ldx, *x1 = x0 + ldx;
        float *o0 = out + (size_t)r * ldo, *o1 = o0 + ldo;
        int n = 0;
        for (; n + 4 <= N; n += 4) {
            const float *w0 = w + (size_t)n * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
            v8 a[2][4] = {{{0}}}, p, q, b0, b1, b2, b3;
            for (int k = 0; k < K8; k += 8) {
                LOAD(p, x0 + k), LOAD(q, x1 + k);
                LOAD(b0, w0 + k), LOAD(b1, w1 + k), LOAD(b2, w2 + k), LOAD(b3, w3 + k);
                a[0][0] += p * b0, a[0][1] += p * b1, a[0][2] += p * b2, a[0][3] += p * b3;
                a[1][0] += q * b0, a[1][1] += q * b1, a[1][2] += q * b2, a[1][3] += q * b3;
            }
            const float *ws[4] = {w0, w1, w2, w3};
            for (int j = 0; j < 4; j++) {
                store(o0 + n + j, finish(&a[0][j], x0, ws[j], K8, K), bias, n + j, accumulate);
                store(o1 + n + j, finish(&a[1][j], x1, ws[j], K8, K), bias, n + j, accumulate);
            }
        }
        for (; n < N; n++) {
            const float *wn = w + (size_t)n * ldw;
            store(o0 + n, dot8(x0, wn, K8, K), bias, n, accumulate);
            store(o1 + n, dot8(x1, wn, K8, K), bias, n, accumulate);
        }
    }
    for (; r < R; r++) {
        const float *xr = x + (size_t)r * ldx;
        for (int n = 0; n < N; n++)
            store(out + (size_t)r * ldo + n, dot8(xr, w + (size_t)n * ldw, K8, K), bias, n, accumulate);
    }
}

void rowgemm(float *out, int ldo, const float *x, int ldx, const float *w, const float *bias, int R,
             int K, int N, int accumulate) {
    rowgemm_ld(out, ldo, x, ldx, w, K, bias, R, K, N, accumulate);
}

float rowdot(const float *a, const float *b, int n) { return dot8(a, b, n / 8 * 8, n); }
