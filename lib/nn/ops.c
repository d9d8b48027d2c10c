// ops.c — primitive ops, forward and backward side by side, over `real` (see real.h).
#include "nn/ops.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/real.h"
#include "core/threads.h"

// ----------------------------------------------------------------------------
// exp over rows
//
// The loops over exp (softmax, log-probabilities, SwiGLU) dominate the ops outside GEMM. The double
// build keeps them as plain loops over exp, the reference for the finite-difference checks; the
// float build runs them 4 lanes at a time with GCC/Clang vector extensions and a polynomial exp
// (relative error < 1e-7 on [-87, 88], inputs clamped to that range), in a fixed lane order so
// results stay deterministic.

#ifdef DS_REAL_F64

static real row_max(const real *x, int n) {
    real mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

// Σ exp(x[i] - shift)
static double sum_exp(const real *x, int n, real shift) {
    double s = 0;
    for (int i = 0; i < n; i++) s += exp(x[i] - shift);
    return s;
}

// x[i] = exp(x[i] - shift); returns Σ x[i]
static double exp_inplace_sum(real *x, int n, real shift) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (x[i] = exp(x[i] - shift));
    return s;
}

// y[i] = a · exp(x[i] - shift)
static void scaled_exp(real *y, const real *x, int n, real shift, real a) {
    for (int i = 0; i < n; i++) y[i] = a * exp(x[i] - shift);
}

static inline real sigmoid(real x) { return 1.0 / (1.0 + exp(-x)); }

#else

// 16-byte vectors: every x86-64 (SSE2) and arm64 (NEON) target has them, so no ABI warning.
#define VL 4
typedef float vf __attribute__((vector_size(VL * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VL * sizeof(float))));

static inline vf vload(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }
// the first n (< VL) lanes of p, the rest `fill`; and the matching partial store
static inline vf vload_part(const float *p, int n, float fill) {
    float t[VL];
    for (int i = 0; i < VL; i++) t[i] = i < n ? p[i] : fill;
    return vload(t);
}
static inline void vstore_part(float *p, vf v, int n) {
    float t[VL];
    vstore(t, v);
    memcpy(p, t, sizeof(float) * (size_t)n);
}
static inline vf vsplat(float c) { return (vf){0} + c; }
static inline vf vselect(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }

// exp(x) = 2^k · exp(r), k = round(x / ln2), |r| <= ln2/2, exp(r) by its Taylor series to r^7
// (truncation < 1.2e-8 relative); ln2 is split in two so that k·ln2 is exact.
static inline vf vexp(vf x) {
    x = vselect(x < -87.0f, vsplat(-87.0f), x);
    x = vselect(x > 88.0f, vsplat(88.0f), x);
    vf t = x * 1.44269504088896341f;
    vi k = __builtin_convertvector(t + vselect(t >= 0, vsplat(0.5f), vsplat(-0.5f)), vi);
    vf kf = __builtin_convertvector(k, vf);
    vf r = (x - kf * 0.693359375f) - kf * -2.12194440054690583e-4f;
    vf p = vsplat(1.0f / 5040);
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return p * (vf)((k + 127) << 23);
}

static inline double lane_sum(vf v) {
    double s = 0;
    for (int i = 0; i < VL; i++) s += v[i];
    return s;
}

static real row_max(const real *x, int n) {
    int i = 0;
    vf m = vsplat(x[0]);
    for (; i + VL <= n; i += VL) {
        vf v = vload(x + i);
        m = vselect(v > m, v, m);
    }
    real mx = x[0];
    for (int j = 0; j < VL; j++) mx = m[j] > mx ? m[j] : mx;
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

static double sum_exp(const real *x, int n, real shift) {
    vf acc = {0};
    int i = 0;
    for (; i + VL <= n; i += VL) acc += vexp(vload(x + i) - shift);
    if (i < n) {
        vf e = vexp(vload_part(x + i, n - i, 0) - shift);
        for (int j = 0; j < n - i; j++) acc[j] += e[j];
    }
    return lane_sum(acc);
}

static double exp_inplace_sum(real *x, int n, real shift) {
    vf acc = {0};
    int i = 0;
    for (; i + VL <= n; i += VL) {
        vf e = vexp(vload(x + i) - shift);
        vstore(x + i, e);
        acc += e;
    }
    if (i < n) {
        vf e = vexp(vload_part(x + i, n - i, 0) - shift);
        vstore_part(x + i, e, n - i);
        for (int j = 0; j < n - i; j++) acc[j] += e[j];
    }
    return lane_sum(acc);
}

static void scaled_exp(real *y, const real *x, int n, real shift, real a) {
    int i = 0;
    for (; i + VL <= n; i += VL) vstore(y + i, a * vexp(vload(x + i) - shift));
    if (i < n) vstore_part(y + i, a * vexp(vload_part(x + i, n - i, 0) - shift), n - i);
}

static inline vf vsigmoid(vf x) { return 1.0f / (1.0f + vexp(-x)); }

#endif

// ----------------------------------------------------------------------------
// threads
//
// Ops split rows (or attention heads) over the number of threads the tool gave BLAS
// (cli_set_threads). Every row is computed by one thread in the serial order, and reductions over
// rows run in a fixed order, so results do not depend on the thread count.

// Below about this much work (element operations, ~1 ns each) threads are not worth it: besides
// the start-up (~20 µs), every join waits for the slowest thread, which on a shared machine may
// wait for a time slice. So only the big calls (attention, the vocabulary-wide log-probabilities,
// the dense SwiGLU) run threaded; per-expert and per-norm calls stay serial.
#define PAR_MIN_WORK (1 << 20)

static int op_threads(double work) { return work >= PAR_MIN_WORK ? openblas_get_num_threads() : 1; }

// Runs fn over [0,n) on nt threads with BLAS single-threaded meanwhile, so that our threads and
// OpenBLAS's never compete for the same cores.
static void par_blas(int nt, int n, ThreadsFn fn, void *ctx) {
    if (nt <= 1 || n <= 1) {
        fn(ctx, 0, 0, n);
        return;
    }
    int blas = openblas_get_num_threads();
    openblas_set_num_threads(1);
    threads_run(nt, n, fn, ctx);
    openblas_set_num_threads(blas);
}

// ----------------------------------------------------------------------------
// linear

void R_(linear_forward)(real *out, const real *inp, const real *weight, const real *bias, int N,
                        int C, int OC) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1, inp, C, weight, C, 0, out, OC);
    if (bias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
}

void R_(linear_forward_add)(real *out, const real *inp, const real *weight, int N, int C, int OC) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1, inp, C, weight, C, 1, out, OC);
}

void R_(linear_backward)(real *dinp, real *dweight, real *dbias, const real *dout, const real *inp,
                         const real *weight, int N, int C, int OC) {
    if (dinp)
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1, dout, OC, weight, C, 1, dinp, C);
    if (dweight)
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1, dout, OC, inp, C, 1, dweight, C);
    if (dbias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) dbias[o] += dout[(size_t)n * OC + o];
}

// ----------------------------------------------------------------------------
// embedding

void R_(embedding_forward)(real *out, const int *tokens, const real *table, int N, int C) {
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, table + (size_t)tokens[n] * C, sizeof(real) * (size_t)C);
}

void R_(embedding_backward)(real *dtable, const real *dout, const int *tokens, int N, int C) {
    for (int n = 0; n < N; n++) {
        real *row = dtable + (size_t)tokens[n] * C;
        const real *d = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) row[c] += d[c];
    }
}

// ----------------------------------------------------------------------------
// rmsnorm

typedef struct RmsArgs {
    real *out, *rstd, *dinp, *dweight; // out, dinp [N,C]; rstd [N]; dweight [C]
    const real *inp, *dout, *weight;   // inp, dout [N,C]; weight [C]
    const real *rstd_in;               // [N] saved by the forward
    int N, C;
    double eps;
} RmsArgs;

static void rmsnorm_forward_rows(void *p, int tid, int n0, int n1) {
    const RmsArgs *a = p;
    int C = a->C;
    (void)tid;
    for (int n = n0; n < n1; n++) {
        const real *x = a->inp + (size_t)n * C;
        real *y = a->out + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        real r = (real)(1.0 / sqrt(ss / C + a->eps));
        for (int c = 0; c < C; c++) y[c] = x[c] * r * a->weight[c];
        a->rstd[n] = r;
    }
}

void R_(rmsnorm_forward)(real *out, real *rstd, const real *inp, const real *weight, int N, int C,
                         double eps) {
    RmsArgs a = {.out = out, .rstd = rstd, .inp = inp, .weight = weight, .N = N, .C = C, .eps = eps};
    threads_run(op_threads((double)N * C), N, rmsnorm_forward_rows, &a);
}

static void rmsnorm_backward_rows(void *p, int tid, int n0, int n1) {
    const RmsArgs *a = p;
    int C = a->C;
    const real *w = a->weight;
    (void)tid;
    for (int n = n0; n < n1; n++) {
        const real *x = a->inp + (size_t)n * C, *dy = a->dout + (size_t)n * C;
        real *dx = a->dinp + (size_t)n * C;
        real r = a->rstd_in[n];
        double dot = 0;
        for (int c = 0; c < C; c++) dot += (double)dy[c] * w[c] * x[c];
        real k = (real)(dot * r * r * r / C);
        for (int c = 0; c < C; c++) dx[c] += r * w[c] * dy[c] - x[c] * k;
    }
}

// dweight is split by columns: each column still sums its rows in order 0..N-1.
static void rmsnorm_backward_cols(void *p, int tid, int c0, int c1) {
    const RmsArgs *a = p;
    int C = a->C;
    (void)tid;
    for (int n = 0; n < a->N; n++) {
        const real *x = a->inp + (size_t)n * C, *dy = a->dout + (size_t)n * C;
        real r = a->rstd_in[n];
        for (int c = c0; c < c1; c++) a->dweight[c] += dy[c] * x[c] * r;
    }
}

void R_(rmsnorm_backward)(real *dinp, real *dweight, const real *dout, const real *inp,
                          const real *weight, const real *rstd, int N, int C) {
    RmsArgs a = {.dinp = dinp, .dweight = dweight, .inp = inp, .dout = dout, .weight = weight,
                 .rstd_in = rstd, .N = N, .C = C};
    int nt = op_threads((double)N * C);
    threads_run(nt, N, rmsnorm_backward_rows, &a);
    if (dweight) threads_run(nt, C, rmsnorm_backward_cols, &a);
}

// ----------------------------------------------------------------------------
// rope

void R_(rope_apply)(real *x, const int *pos, int N, int H, int token_stride, int head_stride,
                    const Rope *rope, int inverse) {
    int half = rope->dim / 2;
    int pair_step = rope->interleaved ? 2 : 1, pair_off = rope->interleaved ? 1 : half;
    for (int n = 0; n < N; n++) {
        const double *cs = rope->cos + (size_t)pos[n] * half, *sn = rope->sin + (size_t)pos[n] * half;
        for (int h = 0; h < H; h++) {
            real *v = x + (size_t)n * token_stride + (size_t)h * head_stride;
            for (int i = 0; i < half; i++) {
                real c = (real)cs[i], s = inverse ? -(real)sn[i] : (real)sn[i];
                real *a = v + i * pair_step, *b = a + pair_off;
                real x0 = *a, x1 = *b;
                *a = x0 * c - x1 * s;
                *b = x0 * s + x1 * c;
            }
        }
    }
}

// ----------------------------------------------------------------------------
// attention
//
// One work item is a (sequence, kv head) pair: the query heads sharing a kv head run in order in
// one thread, so their sums into dk and dv keep a fixed order. Queries go in blocks of ATT_BLOCK
// rows and each block multiplies only the keys up to its last row, which skips most of the masked
// upper triangle (5/8 of the full products at T = 256) while the GEMMs stay large enough.

#define ATT_BLOCK 64

typedef struct AttArgs {
    real *out, *att, *dq, *dk, *dv; // out [N,H*dv]; att [B,H,T,T]; dq [N,H*dqk]; dk, dv like k, v
    real *scratch;                  // [threads, T, T] dS for the backward
    const real *q, *k, *v, *dout;   // q [N,H*dqk]; k [N,Hkv*dqk]; v [N,Hkv*dv]; dout like out
    const real *probs;              // [B,H,T,T] the forward's att, read by the backward
    const int *pos;                 // [N]
    int B, T, H, Hkv, dqk, dvh;
    real scale;
} AttArgs;

// Causal softmax of the rows of P [T,T] (row i sees keys i - pos[i] .. i); zeroes the rest.
static void causal_softmax(real *P, const int *pos, int T) {
    for (int i = 0; i < T; i++) {
        real *row = P + (size_t)i * T;
        int start = i - pos[i];
        if (start < 0) start = 0;
        real mx = row_max(row + start, i + 1 - start);
        real inv = (real)(1.0 / exp_inplace_sum(row + start, i + 1 - start, mx));
        for (int j = 0; j < start; j++) row[j] = 0;
        for (int j = start; j <= i; j++) row[j] *= inv;
        for (int j = i + 1; j < T; j++) row[j] = 0;
    }
}

static void attention_forward_items(void *p, int tid, int it0, int it1) {
    const AttArgs *a = p;
    int T = a->T, H = a->H, Hkv = a->Hkv, dqk = a->dqk, dv = a->dvh, group = H / Hkv;
    (void)tid;
    for (int it = it0; it < it1; it++) {
        int b = it / Hkv, kh = it % Hkv;
        const real *kb = a->k + (size_t)b * T * Hkv * dqk + (size_t)kh * dqk;
        const real *vb = a->v + (size_t)b * T * Hkv * dv + (size_t)kh * dv;
        for (int h = kh * group; h < (kh + 1) * group; h++) {
            const real *qb = a->q + (size_t)b * T * H * dqk + (size_t)h * dqk;
            real *ob = a->out + (size_t)b * T * H * dv + (size_t)h * dv;
            real *P = a->att + ((size_t)b * H + h) * T * T;
            for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
                int m = DS_MIN(ATT_BLOCK, T - i0), nk = i0 + m;
                GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, dqk, a->scale,
                     qb + (size_t)i0 * H * dqk, H * dqk, kb, Hkv * dqk, 0, P + (size_t)i0 * T, T);
            }
            causal_softmax(P, a->pos + (size_t)b * T, T);
            for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
                int m = DS_MIN(ATT_BLOCK, T - i0), nk = i0 + m;
                GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, dv, nk, 1, P + (size_t)i0 * T, T, vb,
                     Hkv * dv, 0, ob + (size_t)i0 * H * dv, H * dv);
            }
        }
    }
}

void R_(attention_forward)(real *out, real *att, const real *q, const real *k, const real *v,
                           const int *pos, int B, int T, int H, int Hkv, int dqk, int dv,
                           double scale) {
    AttArgs a = {.out = out, .att = att, .q = q, .k = k, .v = v, .pos = pos, .B = B, .T = T, .H = H,
                 .Hkv = Hkv, .dqk = dqk, .dvh = dv, .scale = (real)scale};
    int items = B * Hkv;
    par_blas(op_threads((double)B * H * T * T * (dqk + dv)), items, attention_forward_items, &a);
}

static void attention_backward_items(void *p, int tid, int it0, int it1) {
    const AttArgs *a = p;
    int T = a->T, H = a->H, Hkv = a->Hkv, dqk = a->dqk, dv = a->dvh, group = H / Hkv;
    real *dS = a->scratch + (size_t)tid * T * T;
    for (int it = it0; it < it1; it++) {
        int b = it / Hkv, kh = it % Hkv;
        size_t ko = (size_t)b * T * Hkv * dqk + (size_t)kh * dqk;
        size_t vo = (size_t)b * T * Hkv * dv + (size_t)kh * dv;
        for (int h = kh * group; h < (kh + 1) * group; h++) {
            size_t qo = (size_t)b * T * H * dqk + (size_t)h * dqk;
            size_t oo = (size_t)b * T * H * dv + (size_t)h * dv;
            const real *P = a->probs + ((size_t)b * H + h) * T * T;
            for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
                int m = DS_MIN(ATT_BLOCK, T - i0), nk = i0 + m;
                const real *Pb = P + (size_t)i0 * T, *dO = a->dout + oo + (size_t)i0 * H * dv;
                real *dSb = dS + (size_t)i0 * T;
                // dP = dO · Vᵀ ; dV += Pᵀ · dO
                GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, dv, 1, dO, H * dv, a->v + vo,
                     Hkv * dv, 0, dSb, T);
                GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, nk, dv, m, 1, Pb, T, dO, H * dv, 1,
                     a->dv + vo, Hkv * dv);
                // softmax backward: dS = P ⊙ (dP − Σ_j P dP)
                for (int i = i0; i < nk; i++) {
                    const real *pr = P + (size_t)i * T;
                    real *d = dS + (size_t)i * T;
                    double dot = 0;
                    for (int j = 0; j <= i; j++) dot += (double)pr[j] * d[j];
                    for (int j = 0; j <= i; j++) d[j] = pr[j] * (d[j] - (real)dot);
                    for (int j = i + 1; j < nk; j++) d[j] = 0;
                }
                GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, dqk, nk, a->scale, dSb, T,
                     a->k + ko, Hkv * dqk, 0, a->dq + qo + (size_t)i0 * H * dqk, H * dqk);
                GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, nk, dqk, m, a->scale, dSb, T,
                     a->q + qo + (size_t)i0 * H * dqk, H * dqk, 1, a->dk + ko, Hkv * dqk);
            }
        }
    }
}

void R_(attention_backward)(real *dq, real *dk, real *dvv, real *scratch, const real *dout,
                            const real *att, const real *q, const real *k, const real *v, int B,
                            int T, int H, int Hkv, int dqk, int dv, double scale) {
    memset(dk, 0, sizeof(real) * (size_t)B * T * Hkv * dqk);
    memset(dvv, 0, sizeof(real) * (size_t)B * T * Hkv * dv);
    AttArgs a = {.dq = dq, .dk = dk, .dv = dvv, .probs = att, .q = q, .k = k, .v = v,
                 .dout = dout, .B = B, .T = T, .H = H, .Hkv = Hkv, .dqk = dqk, .dvh = dv,
                 .scale = (real)scale};
    int items = B * Hkv, nt = DS_MIN(op_threads((double)B * H * T * T * (dqk + dv)), items);
    // The caller's scratch holds one T×T block; more threads need one block each (a per-call
    // allocation until the activations carry one block per thread).
    a.scratch = nt > 1 ? ds_malloc(sizeof(real) * (size_t)nt * T * T) : scratch;
    par_blas(nt, items, attention_backward_items, &a);
    if (a.scratch != scratch) free(a.scratch);
}

// ----------------------------------------------------------------------------
// swiglu

typedef struct SwigluArgs {
    real *out, *dgu;             // out [N,F]; dgu [N,2F]
    const real *gu, *dout;       // gu [N,2F]; dout [N,F]
    int F;
} SwigluArgs;

#ifdef DS_REAL_F64
static void swiglu_row(real *o, const real *g, const real *u, int F) {
    for (int i = 0; i < F; i++) o[i] = g[i] * sigmoid(g[i]) * u[i];
}
static void swiglu_row_backward(real *dg, real *du, const real *d, const real *g, const real *u, int F) {
    for (int i = 0; i < F; i++) {
        real s = sigmoid(g[i]);
        du[i] = d[i] * g[i] * s;
        dg[i] = d[i] * u[i] * s * (1 + g[i] * (1 - s));
    }
}
#else
static void swiglu_row(real *o, const real *g, const real *u, int F) {
    int i = 0;
    for (; i + VL <= F; i += VL) {
        vf gv = vload(g + i);
        vstore(o + i, gv * vsigmoid(gv) * vload(u + i));
    }
    if (i < F) {
        vf gv = vload_part(g + i, F - i, 0);
        vstore_part(o + i, gv * vsigmoid(gv) * vload_part(u + i, F - i, 0), F - i);
    }
}
static void swiglu_row_backward(real *dg, real *du, const real *d, const real *g, const real *u, int F) {
    int i = 0;
    for (; i + VL <= F; i += VL) {
        vf gv = vload(g + i), uv = vload(u + i), dv = vload(d + i), s = vsigmoid(gv);
        vstore(du + i, dv * gv * s);
        vstore(dg + i, dv * uv * s * (1 + gv * (1 - s)));
    }
    if (i < F) {
        int m = F - i;
        vf gv = vload_part(g + i, m, 0), uv = vload_part(u + i, m, 0), dv = vload_part(d + i, m, 0);
        vf s = vsigmoid(gv);
        vstore_part(du + i, dv * gv * s, m);
        vstore_part(dg + i, dv * uv * s * (1 + gv * (1 - s)), m);
    }
}
#endif

static void swiglu_forward_rows(void *p, int tid, int n0, int n1) {
    const SwigluArgs *a = p;
    int F = a->F;
    (void)tid;
    for (int n = n0; n < n1; n++) {
        const real *g = a->gu + (size_t)n * 2 * F;
        swiglu_row(a->out + (size_t)n * F, g, g + F, F);
    }
}

void R_(swiglu_forward)(real *out, const real *gu, int N, int F) {
    SwigluArgs a = {.out = out, .gu = gu, .F = F};
    threads_run(op_threads((double)N * F * 2), N, swiglu_forward_rows, &a);
}

static void swiglu_backward_rows(void *p, int tid, int n0, int n1) {
    const SwigluArgs *a = p;
    int F = a->F;
    (void)tid;
    for (int n = n0; n < n1; n++) {
        const real *g = a->gu + (size_t)n * 2 * F;
        real *dg = a->dgu + (size_t)n * 2 * F;
        swiglu_row_backward(dg, dg + F, a->dout + (size_t)n * F, g, g + F, F);
    }
}

void R_(swiglu_backward)(real *dgu, const real *dout, const real *gu, int N, int F) {
    SwigluArgs a = {.dgu = dgu, .gu = gu, .dout = dout, .F = F};
    threads_run(op_threads((double)N * F * 2), N, swiglu_backward_rows, &a);
}

// ----------------------------------------------------------------------------
// log-probabilities of targets (cross-entropy is −mean of these)

typedef struct LogprobArgs {
    real *lp, *lse, *dlogits;       // lp, lse [N]; dlogits [N,V]
    const real *logits, *dlp, *lse_in; // logits [N,V]; dlp [N]; lse_in [N] saved by the forward
    const int *targets;             // [N]
    int V;
} LogprobArgs;

static void logprob_forward_rows(void *p, int tid, int n0, int n1) {
    const LogprobArgs *a = p;
    int V = a->V;
    (void)tid;
    for (int n = n0; n < n1; n++) {
        const real *x = a->logits + (size_t)n * V;
        real mx = row_max(x, V);
        a->lse[n] = (real)(mx + log(sum_exp(x, V, mx)));
        a->lp[n] = a->targets[n] >= 0 ? x[a->targets[n]] - a->lse[n] : 0;
    }
}

double R_(logprob_forward)(real *lp, real *lse, const real *logits, const int *targets, int N,
                           int V) {
    LogprobArgs a = {.lp = lp, .lse = lse, .logits = logits, .targets = targets, .V = V};
    threads_run(op_threads((double)N * V * 8), N, logprob_forward_rows, &a);
    double total = 0; // summed in row order whatever the threads
    for (int n = 0; n < N; n++) total += lp[n];
    return total;
}

static void logprob_backward_rows(void *p, int tid, int n0, int n1) {
    const LogprobArgs *a = p;
    int V = a->V;
    (void)tid;
    for (int n = n0; n < n1; n++) {
        real *d = a->dlogits + (size_t)n * V;
        int t = a->targets[n];
        if (t < 0 || a->dlp[n] == 0) {
            memset(d, 0, sizeof(real) * (size_t)V);
            continue;
        }
        const real *x = a->logits + (size_t)n * V;
        real g = a->dlp[n], l = a->lse_in[n];
        scaled_exp(d, x, V, l, -g);
        d[t] += g;
    }
}

void R_(logprob_backward)(real *dlogits, const real *dlp, const real *logits, const real *lse,
                          const int *targets, int N, int V) {
    LogprobArgs a = {.dlogits = dlogits, .dlp = dlp, .logits = logits, .lse_in = lse,
                     .targets = targets, .V = V};
    threads_run(op_threads((double)N * V * 8), N, logprob_backward_rows, &a);
}

// ----------------------------------------------------------------------------
// column slices

void R_(copy_cols)(real *dst, const real *src, int N, int src_cols, int col0, int ncols) {
    for (int n = 0; n < N; n++)
        memcpy(dst + (size_t)n * ncols, src + (size_t)n * src_cols + col0, sizeof(real) * (size_t)ncols);
}

void R_(add_cols)(real *dst, const real *src, int N, int dst_cols, int col0, int ncols) {
    for (int n = 0; n < N; n++) {
        real *d = dst + (size_t)n * dst_cols + col0;
        const real *s = src + (size_t)n * ncols;
        for (int c = 0; c < ncols; c++) d[c] += s[c];
    }
}

// ----------------------------------------------------------------------------
// data movement shared by model.c and engine.c

void R_(concat_cols_forward)(real *out, const real *a, int ca, const real *b, int cb, int N) {
    size_t w = (size_t)ca + cb;
    for (int n = 0; n < N; n++) {
        memcpy(out + (size_t)n * w, a + (size_t)n * ca, sizeof(real) * (size_t)ca);
        memcpy(out + (size_t)n * w + ca, b + (size_t)n * cb, sizeof(real) * (size_t)cb);
    }
}

void R_(concat_cols_backward)(real *da, real *db, const real *dout, int ca, int cb, int N) {
    if (da) R_(copy_cols)(da, dout, N, ca + cb, 0, ca);
    if (db) R_(copy_cols)(db, dout, N, ca + cb, ca, cb);
}

void R_(gather_rows)(real *dst, const real *src, const int *idx, int R, int C) {
    for (int r = 0; r < R; r++)
        memcpy(dst + (size_t)r * C, src + (size_t)idx[r] * C, sizeof(real) * (size_t)C);
}

void R_(scatter_rows)(real *dst, const size_t *at, const real *src, int ld, int R, int C) {
    for (int r = 0; r < R; r++) memcpy(dst + at[r], src + (size_t)r * ld, sizeof(real) * (size_t)C);
}

void R_(transpose)(real *dst, const real *src, int R, int C) {
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) dst[(size_t)c * R + r] = src[(size_t)r * C + c];
}

void R_(fill)(real *x, int n, real value) {
    for (int i = 0; i < n; i++) x[i] = value;
}

void R_(mtp_shift_tokens)(int *tok, const int *tokens, int B, int T, int k) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++) tok[b * T + i] = i + k < T ? tokens[b * T + i + k] : 0;
}

void R_(mtp_shift_targets)(int *tgt, const int *targets, const int *pos, int B, int T, int k) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++) {
            int n = b * T + i, j = n + k;
            tgt[n] = i + k < T && pos[j] == pos[n] + k ? targets[j] : -1;
        }
}

void R_(mla_kv_forward)(real *k, int ldk, real *v, int ldv, const real *kvb, const real *kpe,
                        int ld_pe, int N, int H, int dn, int dr, int dv) {
    int dqk = dn + dr;
    for (int n = 0; n < N; n++) {
        real *kn = k + (size_t)n * ldk, *vn = v + (size_t)n * ldv;
        const real *kv = kvb + (size_t)n * H * (dn + dv), *pe = kpe + (size_t)n * ld_pe;
        for (int h = 0; h < H; h++) {
            memcpy(kn + h * dqk, kv + h * (dn + dv), sizeof(real) * (size_t)dn);
            memcpy(kn + h * dqk + dn, pe, sizeof(real) * (size_t)dr);
            memcpy(vn + h * dv, kv + h * (dn + dv) + dn, sizeof(real) * (size_t)dv);
        }
    }
}

void R_(mla_kv_backward)(real *dkvb, real *dkpe, const real *dk, const real *dv, int N, int H,
                         int dn, int dr, int dv_) {
    int dqk = dn + dr;
    for (int n = 0; n < N; n++) {
        const real *dkn = dk + (size_t)n * H * dqk, *dvn = dv + (size_t)n * H * dv_;
        real *dkv = dkvb + (size_t)n * H * (dn + dv_), *dpe = dkpe + (size_t)n * dr;
        memset(dpe, 0, sizeof(real) * (size_t)dr);
        for (int h = 0; h < H; h++) {
            memcpy(dkv + h * (dn + dv_), dkn + h * dqk, sizeof(real) * (size_t)dn);
            memcpy(dkv + h * (dn + dv_) + dn, dvn + h * dv_, sizeof(real) * (size_t)dv_);
            for (int i = 0; i < dr; i++) dpe[i] += dkn[h * dqk + dn + i];
        }
    }
}

// ----------------------------------------------------------------------------
// entropy and logit distillation

void R_(entropy_forward)(real *ent, const real *logits, const real *lse, const int *targets, int N,
                         int V) {
    for (int n = 0; n < N; n++) {
        ent[n] = 0;
        if (targets[n] < 0) continue;
        const real *x = logits + (size_t)n * V;
        double h = 0;
        for (int i = 0; i < V; i++) {
            double l = (double)x[i] - lse[n];
            h -= exp(l) * l;
        }
        ent[n] = (real)h;
    }
}

double R_(distill_forward_backward)(real *dlogits, double *ce_sum, const real *logits,
                                    const real *teacher, const int *targets, int N, int V, double T,
                                    double alpha, double w) {
    double kl_sum = 0, ce = 0;
    for (int n = 0; n < N; n++) {
        real *d = dlogits + (size_t)n * V;
        memset(d, 0, sizeof(real) * (size_t)V);
        if (targets[n] < 0) continue;
        const real *s = logits + (size_t)n * V, *t = teacher + (size_t)n * V;
        double ms = s[0], mt = t[0], zs = 0, zt = 0, zs1 = 0;
        for (int i = 1; i < V; i++) ms = fmax(ms, s[i]), mt = fmax(mt, t[i]);
        for (int i = 0; i < V; i++) {
            zs += exp((s[i] - ms) / T), zt += exp((t[i] - mt) / T);
            zs1 += exp(s[i] - ms);
        }
        double lzs = log(zs), lzt = log(zt), lzs1 = log(zs1), kl = 0;
        for (int i = 0; i < V; i++) {
            double lq = (s[i] - ms) / T - lzs, lp = (t[i] - mt) / T - lzt, p = exp(lp), q = exp(lq);
            kl += p * (lp - lq);
            // d/ds_i of T²·KL = T·(q_i − p_i); of CE = softmax_i − onehot
            double dce = exp(s[i] - ms - lzs1) - (i == targets[n]);
            d[i] = (real)(w * ((1 - alpha) * T * (q - p) + alpha * dce));
        }
        kl_sum += T * T * kl;
        ce += -((s[targets[n]] - ms) - lzs1);
    }
    *ce_sum = ce;
    return kl_sum;
}

// ----------------------------------------------------------------------------
// optimizer

double R_(sumsq_acc)(double acc, const real *x, size_t n) {
    for (size_t i = 0; i < n; i++) acc += (double)x[i] * x[i];
    return acc;
}

void R_(adamw_update)(real *w, real *m, real *v, const real *g, size_t n, double lr, double beta1,
                      double beta2, double c1, double c2, double eps, double wd, double clip) {
    real b1 = (real)beta1, b2 = (real)beta2, cs = (real)clip, rc1 = (real)c1, rc2 = (real)c2;
    real reps = (real)eps, rlr = (real)lr, rwd = (real)wd;
    for (size_t j = 0; j < n; j++) {
        real gj = g[j] * cs;
        m[j] = b1 * m[j] + (1 - b1) * gj;
        v[j] = b2 * v[j] + (1 - b2) * gj * gj;
        w[j] -= rlr * (m[j] * rc1) / (REAL_SQRT(v[j] * rc2) + reps) + rwd * w[j];
    }
}
