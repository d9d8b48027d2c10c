// rowgemm.c — a row-deterministic matrix product: per output element, 4 lane partial sums over K
// in order, a fixed pairwise reduction, then the K % 4 tail. Tiles of 2 rows × 4 outputs reuse
// loads; edge elements run the same per-element sequence through the 1 × 1 path.
#include "rowgemm.h"

#include <string.h>

typedef float v4 __attribute__((vector_size(16)));

static inline v4 load4(const float *p) {
    v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float finish(v4 a, const float *x, const float *w, int k0, int K) {
    float s = (a[0] + a[1]) + (a[2] + a[3]);
    for (int k = k0; k < K; k++) s += x[k] * w[k];
    return s;
}

static inline void store(float *o, float v, const float *bias, int n, int accumulate) {
    if (bias) v += bias[n];
    *o = accumulate ? *o + v : v;
}

void rowgemm(float *out, int ldo, const float *x, int ldx, const float *w, const float *bias, int R,
             int K, int N, int accumulate) {
    int K4 = K / 4 * 4, r = 0;
    for (; r + 2 <= R; r += 2) {
        const float *x0 = x + (size_t)r * ldx, *x1 = x0 + ldx;
        int n = 0;
        for (; n + 4 <= N; n += 4) {
            const float *w0 = w + (size_t)n * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
            v4 a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0};
            for (int k = 0; k < K4; k += 4) {
                v4 p = load4(x0 + k), q = load4(x1 + k);
                v4 b0 = load4(w0 + k), b1 = load4(w1 + k), b2 = load4(w2 + k), b3 = load4(w3 + k);
                a00 += p * b0, a01 += p * b1, a02 += p * b2, a03 += p * b3;
                a10 += q * b0, a11 += q * b1, a12 += q * b2, a13 += q * b3;
            }
            float *o0 = out + (size_t)r * ldo + n, *o1 = o0 + ldo;
            store(o0 + 0, finish(a00, x0, w0, K4, K), bias, n + 0, accumulate);
            store(o0 + 1, finish(a01, x0, w1, K4, K), bias, n + 1, accumulate);
            store(o0 + 2, finish(a02, x0, w2, K4, K), bias, n + 2, accumulate);
            store(o0 + 3, finish(a03, x0, w3, K4, K), bias, n + 3, accumulate);
            store(o1 + 0, finish(a10, x1, w0, K4, K), bias, n + 0, accumulate);
            store(o1 + 1, finish(a11, x1, w1, K4, K), bias, n + 1, accumulate);
            store(o1 + 2, finish(a12, x1, w2, K4, K), bias, n + 2, accumulate);
            store(o1 + 3, finish(a13, x1, w3, K4, K), bias, n + 3, accumulate);
        }
        for (; n < N; n++) {
            const float *wn = w + (size_t)n * K;
            v4 a0 = {0}, a1 = {0};
            for (int k = 0; k < K4; k += 4) {
                v4 b = load4(wn + k);
                a0 += load4(x0 + k) * b, a1 += load4(x1 + k) * b;
            }
            store(out + (size_t)r * ldo + n, finish(a0, x0, wn, K4, K), bias, n, accumulate);
            store(out + (size_t)(r + 1) * ldo + n, finish(a1, x1, wn, K4, K), bias, n, accumulate);
        }
    }
    for (; r < R; r++) {
        const float *xr = x + (size_t)r * ldx;
        for (int n = 0; n < N; n++) {
            const float *wn = w + (size_t)n * K;
            v4 a = {0};
            for (int k = 0; k < K4; k += 4) a += load4(xr + k) * load4(wn + k);
            store(out + (size_t)r * ldo + n, finish(a, xr, wn, K4, K), bias, n, accumulate);
        }
    }
}
