// ops_speed — time the non-GEMM-bound ops of lib/nn at the shapes of one training step (batch 8,
// sequence 256, 4 heads, vocabulary 4096) and report the best of several runs of each, which is the
// figure least disturbed by other processes on a shared machine. --check instead verifies that the
// float ops give bit-identical outputs with 1 and with T threads and stay within 1e-4 (relative to
// 1 + |value|) of the double ops (exit 1 otherwise).
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "tool.h"
#include "core/common.h"
#include "nn/ops.h"
#include "core/rng.h"

static const char *PROG = "ops_speed";

static float *randn(size_t n, uint64_t seed) {
    float *x = ds_aligned_alloc(sizeof(float) * n);
    Rng r;
    rng_derive(&r, seed, n, 7);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&r);
    return x;
}

#define TIME(name, reps, stmt)                                                                    \
    do {                                                                                          \
        double best = 1e30;                                                                       \
        for (int r_ = 0; r_ < (reps); r_++) {                                                     \
            double t0_ = ds_now();                                                                \
            stmt;                                                                                 \
            double dt_ = ds_now() - t0_;                                                          \
            best = dt_ < best ? dt_ : best;                                                       \
        }                                                                                         \
        printf("{\"op\":\"%s\",\"best_ms\":%.3f}\n", name, best * 1e3);                          \
    } while (0)


// ----------------------------------------------------------------------------
// --check

typedef struct Outs {
    float *out, *dq, *dk, *dv, *lp, *dlogits, *act, *dgu, *y, *dx, *dw;
} Outs;

static double *to_f64(const float *x, size_t n) {
    double *d = ds_malloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

// worst |a - b| / (1 + |b|) over n values
static double worst_err(const float *a, const double *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]) / (1 + fabs(b[i]));
        w = e > w ? e : w;
    }
    return w;
}

static void *keep(void **mem, int *n, void *p) {
    DS_CHECK(*n < 96);
    return mem[(*n)++] = p;
}

static int check(int threads) {
    void *mem[96]; // every buffer, freed at the end
    int nmem = 0;
#define KEEP(p) keep(mem, &nmem, (p))
    // large enough that every op takes its threaded path; odd sizes exercise the vector tails
    int B = 4, T = 200, H = 4, Hkv = 2, dqk = 24, dv = 16, V = 1003, F = 701, C = 1401, N = B * T;
    size_t nq = (size_t)N * H * dqk, nk = (size_t)N * Hkv * dqk, nv = (size_t)N * Hkv * dv, no = (size_t)N * H * dv;
    float *q = KEEP(randn(nq, 11)), *k = KEEP(randn(nk, 12)), *v = KEEP(randn(nv, 13)), *dout = KEEP(randn(no, 14));
    float *logits = KEEP(randn((size_t)N * V, 15)), *gu = KEEP(randn((size_t)N * 2 * F, 16)), *dact = KEEP(randn((size_t)N * F, 17));
    float *x = KEEP(randn((size_t)N * C, 18)), *w = KEEP(randn(C, 19)), *dy = KEEP(randn((size_t)N * C, 20));
    int *pos = KEEP(ds_malloc(sizeof(int) * N)), *tg = KEEP(ds_malloc(sizeof(int) * N));
    // two packed documents per sequence and a few ignored targets
    for (int n = 0; n < N; n++) pos[n] = n % T < 37 ? n % T : n % T - 37, tg[n] = n % 9 == 0 ? -1 : (n * 31) % V;
    float *dlp = KEEP(ds_malloc(sizeof(float) * N));
    for (int n = 0; n < N; n++) dlp[n] = -1.0f / N;
    Outs o[2];
    float *att = KEEP(ds_aligned_alloc(sizeof(float) * (size_t)B * H * T * T)), *scr = KEEP(ds_aligned_alloc(sizeof(float) * T * T));
    float *lse = KEEP(ds_aligned_alloc(sizeof(float) * N)), *rstd = KEEP(ds_aligned_alloc(sizeof(float) * N));
    for (int r = 0; r < 2; r++) {
        cli_set_threads(r ? threads : 1);
        Outs *u = &o[r];
        u->out = KEEP(ds_aligned_alloc(sizeof(float) * no)), u->dq = KEEP(ds_aligned_alloc(sizeof(float) * nq));
        u->dk = KEEP(ds_aligned_alloc(sizeof(float) * nk)), u->dv = KEEP(ds_aligned_alloc(sizeof(float) * nv));
        u->lp = KEEP(ds_aligned_alloc(sizeof(float) * N)), u->dlogits = KEEP(ds_aligned_alloc(sizeof(float) * (size_t)N * V));
        u->act = KEEP(ds_aligned_alloc(sizeof(float) * (size_t)N * F)), u->dgu = KEEP(ds_aligned_alloc(sizeof(float) * (size_t)N * 2 * F));
        u->y = KEEP(ds_aligned_alloc(sizeof(float) * (size_t)N * C)), u->dx = KEEP(ds_aligned_alloc(sizeof(float) * (size_t)N * C));
        u->dw = KEEP(ds_aligned_alloc(sizeof(float) * C));
        attention_forward_f32(u->out, att, q, k, v, pos, B, T, H, Hkv, dqk, dv, 0.2);
        attention_backward_f32(u->dq, u->dk, u->dv, scr, dout, att, q, k, v, B, T, H, Hkv, dqk, dv, 0.2);
        logprob_forward_f32(u->lp, lse, logits, tg, N, V);
        logprob_backward_f32(u->dlogits, dlp, logits, lse, tg, N, V);
        swiglu_forward_f32(u->act, gu, N, F);
        swiglu_backward_f32(u->dgu, dact, gu, N, F);
        rmsnorm_forward_f32(u->y, rstd, x, w, N, C, 1e-6);
        rmsnorm_backward_f32(u->dx, u->dw, dy, x, w, rstd, N, C);
    }
    int bad = 0;
#define SAME(field, n)                                                                            \
    if (memcmp(o[0].field, o[1].field, sizeof(float) * (n))) {                                    \
        printf("%s: %s differs between 1 and %d threads\n", PROG, #field, threads);              \
        bad = 1;                                                                                  \
    }
    SAME(out, no) SAME(dq, nq) SAME(dk, nk) SAME(dv, nv) SAME(lp, N) SAME(dlogits, (size_t)N * V)
    SAME(act, (size_t)N * F) SAME(dgu, (size_t)N * 2 * F) SAME(y, (size_t)N * C) SAME(dx, (size_t)N * C)
    SAME(dw, C)
    // the double ops on the same inputs: the reference for the float fast paths
    double *q8 = KEEP(to_f64(q, nq)), *k8 = KEEP(to_f64(k, nk)), *v8 = KEEP(to_f64(v, nv)), *do8 = KEEP(to_f64(dout, no));
    double *l8 = KEEP(to_f64(logits, (size_t)N * V)), *dlp8 = KEEP(to_f64(dlp, N)), *gu8 = KEEP(to_f64(gu, (size_t)N * 2 * F));
    double *da8 = KEEP(to_f64(dact, (size_t)N * F)), *x8 = KEEP(to_f64(x, (size_t)N * C)), *w8 = KEEP(to_f64(w, C)), *dy8 = KEEP(to_f64(dy, (size_t)N * C));
    double *out8 = KEEP(ds_calloc(no, 8)), *att8 = KEEP(ds_calloc((size_t)B * H * T * T, 8)), *scr8 = KEEP(ds_calloc((size_t)T * T, 8));
    double *dq8 = KEEP(ds_calloc(nq, 8)), *dk8 = KEEP(ds_calloc(nk, 8)), *dv8 = KEEP(ds_calloc(nv, 8)), *lp8 = KEEP(ds_calloc(N, 8));
    double *lse8 = KEEP(ds_calloc(N, 8)), *dl8 = KEEP(ds_calloc((size_t)N * V, 8)), *act8 = KEEP(ds_calloc((size_t)N * F, 8));
    double *dgu8 = KEEP(ds_calloc((size_t)N * 2 * F, 8)), *y8 = KEEP(ds_calloc((size_t)N * C, 8)), *r8 = KEEP(ds_calloc(N, 8));
    double *dx8 = KEEP(ds_calloc((size_t)N * C, 8)), *dw8 = KEEP(ds_calloc(C, 8));
    attention_forward_f64(out8, att8, q8, k8, v8, pos, B, T, H, Hkv, dqk, dv, 0.2);
    attention_backward_f64(dq8, dk8, dv8, scr8, do8, att8, q8, k8, v8, B, T, H, Hkv, dqk, dv, 0.2);
    logprob_forward_f64(lp8, lse8, l8, tg, N, V);
    logprob_backward_f64(dl8, dlp8, l8, lse8, tg, N, V);
    swiglu_forward_f64(act8, gu8, N, F);
    swiglu_backward_f64(dgu8, da8, gu8, N, F);
    rmsnorm_forward_f64(y8, r8, x8, w8, N, C, 1e-6);
    rmsnorm_backward_f64(dx8, dw8, dy8, x8, w8, r8, N, C);
    struct { const char *name; const float *a; const double *b; size_t n; } cmp[] = {
        {"attention out", o[1].out, out8, no}, {"attention dq", o[1].dq, dq8, nq},
        {"attention dk", o[1].dk, dk8, nk}, {"attention dv", o[1].dv, dv8, nv},
        {"logprob", o[1].lp, lp8, N}, {"dlogits", o[1].dlogits, dl8, (size_t)N * V},
        {"swiglu", o[1].act, act8, (size_t)N * F}, {"dswiglu", o[1].dgu, dgu8, (size_t)N * 2 * F},
        {"rmsnorm", o[1].y, y8, (size_t)N * C}, {"drmsnorm x", o[1].dx, dx8, (size_t)N * C},
        {"drmsnorm w", o[1].dw, dw8, C}};
    for (size_t i = 0; i < DS_ARRAY_LEN(cmp); i++) {
        double e = worst_err(cmp[i].a, cmp[i].b, cmp[i].n);
        printf("{\"op\":\"%s\",\"worst_rel_err_vs_f64\":%.3g}\n", cmp[i].name, e);
        if (!(e < 1e-4)) printf("%s: %s is %.3g from the double op\n", PROG, cmp[i].name, e), bad = 1;
    }
    printf("%s\n", bad ? "FAIL" : "ok");
    for (int i = 0; i < nmem; i++) free(mem[i]);
#undef KEEP
    return bad;
}

int main(int argc, char **argv) {
    int threads = 0, reps = 10, do_check = 0, B = 8, T = 256, H = 4, dqk = 64, dv = 64, V = 4096, F = 640, C = 256;
    static const struct option opts[] = {{"threads", required_argument, 0, 't'},
                                         {"reps", required_argument, 0, 'r'},
                                         {"dv", required_argument, 0, 'v'},
                                         {"check", no_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "t:r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 't': threads = (int)cli_long(PROG, "--threads", optarg, 1, 1024); break;
        case 'r': reps = (int)cli_long(PROG, "--reps", optarg, 1, 100000); break;
        case 'v': dv = (int)cli_long(PROG, "--dv", optarg, 1, 1024); break;
        case 'c': do_check = 1; break;
        case 'h':
            printf("Usage: ops_speed [--threads T] [--reps R] [--dv D]\n"
                   "       ops_speed --check [--threads T]\n"
                   "Prints one JSON line per op: best wall time in ms over R runs. --check compares\n"
                   "1 thread with T threads (bit for bit) and float with double; exit 1 on a mismatch.\n");
            return 0;
        case 'V': cli_print_version(PROG); return 0;
        default: cli_usage_error(PROG, "unknown option");
        }
    }
    if (do_check) return check(threads > 1 ? threads : 2) ? 1 : 0;
    cli_set_threads(threads);
    int N = B * T;
    float *q = randn((size_t)N * H * dqk, 1), *k = randn((size_t)N * H * dqk, 2);
    float *v = randn((size_t)N * H * dv, 3), *dout = randn((size_t)N * H * dv, 4);
    float *out = ds_aligned_alloc(sizeof(float) * N * H * dv);
    float *att = ds_aligned_alloc(sizeof(float) * (size_t)B * H * T * T);
    float *dq = ds_aligned_alloc(sizeof(float) * N * H * dqk), *dk = ds_aligned_alloc(sizeof(float) * N * H * dqk);
    float *dvv = ds_aligned_alloc(sizeof(float) * N * H * dv), *scr = ds_aligned_alloc(sizeof(float) * T * T);
    int *pos = ds_malloc(sizeof(int) * N), *tg = ds_malloc(sizeof(int) * N);
    for (int n = 0; n < N; n++) pos[n] = n % T, tg[n] = (n * 31) % V;
    float *logits = randn((size_t)N * V, 5), *dlogits = ds_aligned_alloc(sizeof(float) * (size_t)N * V);
    float *lp = ds_aligned_alloc(sizeof(float) * N), *lse = ds_aligned_alloc(sizeof(float) * N);
    float *dlp = ds_aligned_alloc(sizeof(float) * N);
    for (int n = 0; n < N; n++) dlp[n] = -1.0f / N;
    float *gu = randn((size_t)N * 2 * F, 6), *act = ds_aligned_alloc(sizeof(float) * N * F);
    float *dgu = ds_aligned_alloc(sizeof(float) * N * 2 * F), *dact = randn((size_t)N * F, 7);
    float *x = randn((size_t)N * C, 8), *w = randn(C, 9), *y = ds_aligned_alloc(sizeof(float) * N * C);
    float *rstd = ds_aligned_alloc(sizeof(float) * N), *dx = ds_aligned_alloc(sizeof(float) * N * C);
    float *dw = ds_aligned_alloc(sizeof(float) * C);
    double sc = 0.125;
    TIME("attention_forward", reps, attention_forward_f32(out, att, q, k, v, pos, B, T, H, H, dqk, dv, sc));
    TIME("attention_backward", reps,
         attention_backward_f32(dq, dk, dvv, scr, dout, att, q, k, v, B, T, H, H, dqk, dv, sc));
    TIME("logprob_forward", reps, logprob_forward_f32(lp, lse, logits, tg, N, V));
    TIME("logprob_backward", reps, logprob_backward_f32(dlogits, dlp, logits, lse, tg, N, V));
    TIME("swiglu_forward", reps, swiglu_forward_f32(act, gu, N, F));
    TIME("swiglu_backward", reps, swiglu_backward_f32(dgu, dact, gu, N, F));
    TIME("rmsnorm_forward", reps, rmsnorm_forward_f32(y, rstd, x, w, N, C, 1e-6));
    TIME("rmsnorm_backward", reps, rmsnorm_backward_f32(dx, dw, y, x, w, rstd, N, C));
    // a checksum keeps the work observable
    double s = 0;
    for (int i = 0; i < N * H * dqk; i++) s += dq[i] + dk[i];
    for (int i = 0; i < N; i++) s += lp[i];
    printf("{\"checksum\":%.6g}\n", s);
    free(q), free(k), free(v), free(dout), free(out), free(att), free(dq), free(dk), free(dvv), free(scr);
    free(pos), free(tg), free(logits), free(dlogits), free(lp), free(lse), free(dlp);
    free(gu), free(act), free(dgu), free(dact), free(x), free(w), free(y), free(rstd), free(dx), free(dw);
    return 0;
}
