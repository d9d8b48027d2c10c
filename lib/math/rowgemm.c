// rowgemm.c — a row-deterministic matrix product: per output element, 8 lane partial sums over K
// in order, a fixed pairwise reduction, then the K % 8 tail. The same operations run whether the
// vector type lowers to SSE or to AVX2 (the avx2 clone), so both give the same bits. Tiles of
// 2 rows × 4 outputs reuse loads; edge elements run the same per-element sequence. On CPUs with
// AVX-512 a kernel holds two rows' 8 lanes in one 16-lane register (the same multiplies and adds,
// lane for lane), which doubles the work per instruction without changing a bit.
#include "math/rowgemm.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define ROWGEMM_AVX512 1
#endif

typedef float v8 __attribute__((vector_size(32)));

// Vectors never cross a function boundary (their calling convention would depend on the target):
// loads are a macro and the reduction takes a pointer.
#define LOAD(v, p) memcpy(&(v), (p), sizeof(v))

static inline float finish_lanes(const float *a, const float *x, const float *w, int k0, int K) {
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (int k = k0; k < K; k++) s += x[k] * w[k];
    return s;
}

static inline float finish(const v8 *acc, const float *x, const float *w, int k0, int K) {
    return finish_lanes((const float *)acc, x, w, k0, K);
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
static void rowgemm_v8(float *out, int ldo, const float *x, int ldx, const float *w, int ldw, const float *bias,
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

#ifdef ROWGEMM_AVX512
// Tiles of 4 rows × 4 outputs. Register (r, r+1) holds x_r[k..k+8] in lanes 0-7 and x_{r+1}[k..k+8]
// in lanes 8-15; the weights' 8 values are broadcast to both halves, so lane l of half h runs
// exactly a[l] += x_{r+h}[k+l] · w[k+l] of the 8-lane kernel. The reduction and the K % 8 tail are
// finish_lanes, as there. Rows and outputs outside whole tiles are left to the 8-lane kernel.
// The 8-lane reduction ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)) of both halves at once, as three
// rounds of pairwise adds against a permuted copy (a+b = b+a exactly, so each lane holds the same
// sums as finish_lanes); lane 0 ends with half 0's sum, lane 8 with half 1's.
__attribute__((target("avx512f,avx512dq"))) static inline void reduce_halves(__m512 v, float *lo, float *hi) {
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));         // a0+a1, a2+a3, ...
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));         // (a0+a1)+(a2+a3), (a4+a5)+(a6+a7)
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));   // the two quarter sums of each half
    float l[16];
    _mm512_storeu_ps(l, v);
    *lo = l[0], *hi = l[8];
}

__attribute__((target("avx512f,avx512dq"))) static void rowgemm_avx512(float *out, int ldo, const float *x, int ldx,
                                                               const float *w, int ldw, const float *bias,
                                                               int R4, int K, int N4, int accumulate) {
    int K8 = K / 8 * 8;
    for (int r = 0; r < R4; r += 4) {
        const float *xr[4] = {x + (size_t)r * ldx, x + (size_t)(r + 1) * ldx, x + (size_t)(r + 2) * ldx,
                              x + (size_t)(r + 3) * ldx};
        for (int n = 0; n < N4; n += 4) {
            const float *wn[4] = {w + (size_t)n * ldw, w + (size_t)(n + 1) * ldw, w + (size_t)(n + 2) * ldw,
                                  w + (size_t)(n + 3) * ldw};
            // named accumulators: an array indexed in a loop would live in memory at -O2
            __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
            __m512 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            for (int k = 0; k < K8; k += 8) {
                __m512 p = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(xr[0] + k)),
                                              _mm256_loadu_ps(xr[1] + k), 1);
                __m512 q = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(xr[2] + k)),
                                              _mm256_loadu_ps(xr[3] + k), 1);
                __m512 b0 = _mm512_broadcast_f32x8(_mm256_loadu_ps(wn[0] + k));
                __m512 b1 = _mm512_broadcast_f32x8(_mm256_loadu_ps(wn[1] + k));
                __m512 b2 = _mm512_broadcast_f32x8(_mm256_loadu_ps(wn[2] + k));
                __m512 b3 = _mm512_broadcast_f32x8(_mm256_loadu_ps(wn[3] + k));
                a00 = _mm512_add_ps(a00, _mm512_mul_ps(p, b0)), a01 = _mm512_add_ps(a01, _mm512_mul_ps(p, b1));
                a02 = _mm512_add_ps(a02, _mm512_mul_ps(p, b2)), a03 = _mm512_add_ps(a03, _mm512_mul_ps(p, b3));
                a10 = _mm512_add_ps(a10, _mm512_mul_ps(q, b0)), a11 = _mm512_add_ps(a11, _mm512_mul_ps(q, b1));
                a12 = _mm512_add_ps(a12, _mm512_mul_ps(q, b2)), a13 = _mm512_add_ps(a13, _mm512_mul_ps(q, b3));
            }
            __m512 acc[2][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}};
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 4; j++) {
                    float v[2];
                    reduce_halves(acc[i][j], &v[0], &v[1]);
                    for (int h = 0; h < 2; h++) {
                        int rr = 2 * i + h;
                        for (int k = K8; k < K; k++) v[h] += xr[rr][k] * wn[j][k];
                        store(out + (size_t)(r + rr) * ldo + n + j, v[h], bias, n + j, accumulate);
                    }
                }
        }
    }
}
#endif

void rowgemm_ld(float *out, int ldo, const float *x, int ldx, const float *w, int ldw, const float *bias,
                int R, int K, int N, int accumulate) {
#ifdef ROWGEMM_AVX512
    int R4 = R / 4 * 4, N4 = N / 4 * 4;
    if (R4 && N4 && K >= 8 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) {
        rowgemm_avx512(out, ldo, x, ldx, w, ldw, bias, R4, K, N4, accumulate);
        if (N4 < N)
            rowgemm_v8(out + N4, ldo, x, ldx, w + (size_t)N4 * ldw, ldw, bias ? bias + N4 : NULL, R4, K, N - N4,
                       accumulate);
        if (R4 < R)
            rowgemm_v8(out + (size_t)R4 * ldo, ldo, x + (size_t)R4 * ldx, ldx, w, ldw, bias, R - R4, K, N,
                       accumulate);
        return;
    }
#endif
    rowgemm_v8(out, ldo, x, ldx, w, ldw, bias, R, K, N, accumulate);
}

void rowgemm_ld_lanes8(float *out, int ldo, const float *x, int ldx, const float *w, int ldw, const float *bias,
                       int R, int K, int N, int accumulate) {
    rowgemm_v8(out, ldo, x, ldx, w, ldw, bias, R, K, N, accumulate);
}

void rowgemm(float *out, int ldo, const float *x, int ldx, const float *w, const float *bias, int R,
             int K, int N, int accumulate) {
    rowgemm_ld(out, ldo, x, ldx, w, K, bias, R, K, N, accumulate);
}

float rowdot(const float *a, const float *b, int n) { return dot8(a, b, n / 8 * 8, n); }
