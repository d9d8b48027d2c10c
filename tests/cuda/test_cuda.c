// test_cuda.c — every CUDA op against its CPU reference (lib/nn/ops.h, lib/math/precision.h,
// lib/train/adamw.c) on random inputs of awkward shapes. Exits 77 ("skipped") when there is no device, so
// the suite passes on machines without a GPU and says so.
//
// Tolerances: fp32 ops 1e-5 relative to the reference's scale (different summation orders);
// bf16 GEMMs 1e-3 (the same rounded operands, fp32 accumulation in another order); the FP8 GEMM by
// DeepGEMM's criterion 1 - 2Σxy/Σ(x²+y²) < 1e-3 against the CPU emulation of the same recipe.
#include <stdint.h>

#include "train/adamw.h"
#include "cuda/cuda_ops.h"
#include "nn/ops.h"
#include "math/precision.h"
#include "core/rng.h"
#include "../unit/unit.h"

// The context every case shares; main creates it (the one place a test keeps process state).
static CudaCtx *ctx;

static float *rnd(size_t n, uint64_t seed, double scale) {
    Rng r;
    rng_seed(&r, seed);
    float *x = ds_malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(rng_normal(&r) * scale);
    return x;
}

static float *up(const float *x, size_t n) {
    float *d = cuda_alloc(ctx, n * sizeof *d);
    cuda_upload(ctx, d, x, n * sizeof *d);
    return d;
}

static int *up_int(const int *x, size_t n) {
    int *d = cuda_alloc(ctx, n * sizeof *d);
    cuda_upload(ctx, d, x, n * sizeof *d);
    return d;
}

// max |gpu - cpu| / max(1, max |cpu|), after downloading d
static double rel_err(const float *d, const float *cpu, size_t n) {
    float *g = ds_malloc(n * sizeof *g);
    cuda_download(ctx, g, d, n * sizeof *g);
    double mx = 1, err = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(cpu[i]));
    for (size_t i = 0; i < n; i++) err = fmax(err, fabs((double)g[i] - cpu[i]));
    free(g);
    return err / mx;
}

static void synced(T *t) {
    DsErr e;
    int ok = cuda_sync(ctx, &e) == DS_OK;
    if (!ok) fprintf(stderr, "%s\n", e.msg);
    CHECK(t, ok);
}

static void linear_f32_bf16(T *t) {
    const int N = 67, C = 200, OC = 131;
    for (int g = 0; g < 2; g++) {
        float *x = rnd((size_t)N * C, 1, 1), *w = rnd((size_t)OC * C, 2, 0.1), *b = rnd(OC, 3, 1);
        float *dy = rnd((size_t)N * OC, 4, 1);
        float *y = ds_calloc((size_t)N * OC, 4), *dx = ds_calloc((size_t)N * C, 4);
        float *dw = ds_calloc((size_t)OC * C, 4), *db = ds_calloc(OC, 4);
        PrecisionScratch s;
        precision_scratch_init(&s, g ? PRECISION_BF16 : PRECISION_FP32, (size_t)OC * C + (size_t)N * C);
        precision_linear_forward(&s, y, x, w, b, N, C, OC, 0);
        precision_linear_backward(&s, dx, dw, db, dy, x, w, N, C, OC);
        float *X = up(x, (size_t)N * C), *W = up(w, (size_t)OC * C), *B = up(b, OC), *DY = up(dy, (size_t)N * OC);
        float *Y = cuda_alloc(ctx, (size_t)N * OC * 4), *DX = cuda_alloc(ctx, (size_t)N * C * 4);
        float *DW = cuda_alloc(ctx, (size_t)OC * C * 4), *DB = cuda_alloc(ctx, OC * 4);
        CudaGemm mode = g ? CUDA_GEMM_BF16 : CUDA_GEMM_F32;
        cuda_linear_forward(ctx, mode, Y, X, W, B, N, C, OC);
        cuda_linear_backward(ctx, mode, DX, DW, DB, DY, X, W, N, C, OC);
        synced(t);
        double tol = g ? 1e-3 : 1e-5;
        double ey = rel_err(Y, y, (size_t)N * OC), ex = rel_err(DX, dx, (size_t)N * C);
        double ew = rel_err(DW, dw, (size_t)OC * C), eb = rel_err(DB, db, OC);
        printf("linear %s: out %.2e dinp %.2e dweight %.2e dbias %.2e\n", g ? "bf16" : "fp32", ey, ex, ew, eb);
        CHECK(t, ey < tol && ex < tol && ew < tol && eb < 1e-5);
        cuda_free(ctx, X), cuda_free(ctx, W), cuda_free(ctx, B), cuda_free(ctx, DY);
        cuda_free(ctx, Y), cuda_free(ctx, DX), cuda_free(ctx, DW), cuda_free(ctx, DB);
        precision_scratch_free(&s);
        free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
    }
}

static void fp8_gemm(T *t) {
    const int N = 256, C = 512, OC = 384; // the block-scaled kernels want multiples of 128 along K
    float *x = rnd((size_t)N * C, 5, 1), *w = rnd((size_t)OC * C, 6, 0.05);
    float *y = ds_calloc((size_t)N * OC, 4);
    PrecisionScratch s;
    precision_scratch_init(&s, PRECISION_FP8, (size_t)OC * C + (size_t)N * C);
    precision_linear_forward(&s, y, x, w, NULL, N, C, OC, 0);
    float *X = up(x, (size_t)N * C), *W = up(w, (size_t)OC * C), *Y = cuda_alloc(ctx, (size_t)N * OC * 4);
    DsErr e;
    int rc = cuda_fp8_linear_forward(ctx, Y, X, W, N, C, OC, &e);
    if (rc != DS_OK) fprintf(stderr, "%s\n", e.msg);
    CHECK(t, rc == DS_OK);
    synced(t);
    float *g = ds_malloc((size_t)N * OC * 4);
    cuda_download(ctx, g, Y, (size_t)N * OC * 4);
    double xy = 0, xx = 0;
    for (size_t i = 0; i < (size_t)N * OC; i++) xy += (double)g[i] * y[i], xx += (double)g[i] * g[i] + (double)y[i] * y[i];
    double diff = 1 - 2 * xy / xx;
    printf("fp8 block-scaled GEMM vs CPU emulation: 1 - 2Σxy/Σ(x²+y²) = %.3e\n", diff);
    CHECK(t, diff < 1e-3);
    cuda_free(ctx, X), cuda_free(ctx, W), cuda_free(ctx, Y);
    precision_scratch_free(&s);
    free(x), free(w), free(y), free(g);
}

static void norm_swiglu_embedding(T *t) {
    const int N = 45, C = 300, F = 77, V = 50;
    float *x = rnd((size_t)N * C, 7, 1), *w = rnd(C, 8, 1), *dy = rnd((size_t)N * C, 9, 1);
    float *y = ds_calloc((size_t)N * C, 4), *r = ds_calloc(N, 4), *dx = ds_calloc((size_t)N * C, 4), *dw = ds_calloc(C, 4);
    rmsnorm_forward_f32(y, r, x, w, N, C, 1e-6);
    rmsnorm_backward_f32(dx, dw, dy, x, w, r, N, C);
    float *X = up(x, (size_t)N * C), *Wt = up(w, C), *DY = up(dy, (size_t)N * C);
    float *Y = cuda_alloc(ctx, (size_t)N * C * 4), *R = cuda_alloc(ctx, N * 4);
    float *DX = cuda_alloc(ctx, (size_t)N * C * 4), *DW = cuda_alloc(ctx, C * 4);
    cuda_rmsnorm_forward(ctx, Y, R, X, Wt, N, C, 1e-6);
    cuda_rmsnorm_backward(ctx, DX, DW, DY, X, Wt, R, N, C);
    synced(t);
    double e1 = rel_err(Y, y, (size_t)N * C), e2 = rel_err(DX, dx, (size_t)N * C), e3 = rel_err(DW, dw, C);
    printf("rmsnorm: out %.2e dinp %.2e dweight %.2e\n", e1, e2, e3);
    CHECK(t, e1 < 1e-5 && e2 < 1e-5 && e3 < 1e-5);

    float *gu = rnd((size_t)N * 2 * F, 10, 2), *dh = rnd((size_t)N * F, 11, 1);
    float *h = ds_calloc((size_t)N * F, 4), *dgu = ds_calloc((size_t)N * 2 * F, 4);
    swiglu_forward_f32(h, gu, N, F);
    swiglu_backward_f32(dgu, dh, gu, N, F);
    float *GU = up(gu, (size_t)N * 2 * F), *DH = up(dh, (size_t)N * F);
    float *Hd = cuda_alloc(ctx, (size_t)N * F * 4), *DGU = cuda_alloc(ctx, (size_t)N * 2 * F * 4);
    cuda_swiglu_forward(ctx, Hd, GU, N, F);
    cuda_swiglu_backward(ctx, DGU, DH, GU, N, F);
    synced(t);
    double e4 = rel_err(Hd, h, (size_t)N * F), e5 = rel_err(DGU, dgu, (size_t)N * 2 * F);
    printf("swiglu: out %.2e dgu %.2e\n", e4, e5);
    CHECK(t, e4 < 1e-5 && e5 < 1e-5);

    int tok[45];
    for (int i = 0; i < N; i++) tok[i] = (i * 7) % V; // repeated tokens: the scatter must add
    float *table = rnd((size_t)V * C, 12, 1), *emb = ds_calloc((size_t)N * C, 4), *dtab = ds_calloc((size_t)V * C, 4);
    embedding_forward_f32(emb, tok, table, N, C);
    embedding_backward_f32(dtab, dy, tok, N, C);
    int *TOK = up_int(tok, N);
    float *TAB = up(table, (size_t)V * C), *EMB = cuda_alloc(ctx, (size_t)N * C * 4), *DTAB = cuda_alloc(ctx, (size_t)V * C * 4);
    cuda_embedding_forward(ctx, EMB, TOK, TAB, N, C);
    cuda_embedding_backward(ctx, DTAB, DY, TOK, N, C);
    synced(t);
    double e6 = rel_err(EMB, emb, (size_t)N * C), e7 = rel_err(DTAB, dtab, (size_t)V * C);
    printf("embedding: out %.2e dtable %.2e\n", e6, e7);
    CHECK(t, e6 == 0 && e7 < 1e-6);
    void *bufs[] = {X, Wt, DY, Y, R, DX, DW, GU, DH, Hd, DGU, TOK, TAB, EMB, DTAB};
    for (size_t i = 0; i < DS_ARRAY_LEN(bufs); i++) cuda_free(ctx, bufs[i]);
    free(x), free(w), free(dy), free(y), free(r), free(dx), free(dw), free(gu), free(dh), free(h), free(dgu);
    free(table), free(emb), free(dtab);
}

static void rope_logprob(T *t) {
    ModelConfig cfg = {0};
    cfg.arch = ARCH_DEEPSEEK_V3, cfg.qk_rope_head_dim = 16, cfg.rope_theta = 10000, cfg.max_position_embeddings = 64;
    for (int inter = 0; inter < 2; inter++) {
        Rope rope;
        cfg.arch = inter ? ARCH_DEEPSEEK_V3 : ARCH_LLAMA;
        cfg.head_dim = 16, cfg.num_attention_heads = 3, cfg.hidden_size = 48;
        rope_init(&rope, &cfg, 64);
        const int N = 20, H = 3, stride = H * 24, dim = rope.dim, half = dim / 2;
        int pos[20];
        for (int i = 0; i < N; i++) pos[i] = (i * 5) % 64;
        float *x = rnd((size_t)N * stride, 13, 1);
        float *cs = ds_malloc((size_t)64 * half * 4), *sn = ds_malloc((size_t)64 * half * 4);
        for (int i = 0; i < 64 * half; i++) cs[i] = (float)rope.cos[i], sn[i] = (float)rope.sin[i];
        float *X = up(x, (size_t)N * stride), *CS = up(cs, (size_t)64 * half), *SN = up(sn, (size_t)64 * half);
        int *P = up_int(pos, N);
        rope_apply_f32(x, pos, N, H, stride, 24, &rope, 0);
        cuda_rope_apply(ctx, X, P, N, H, stride, 24, CS, SN, dim, rope.interleaved, 0);
        synced(t);
        double er = rel_err(X, x, (size_t)N * stride);
        printf("rope (%s): %.2e\n", inter ? "interleaved" : "rotate-half", er);
        CHECK(t, er < 1e-6);
        cuda_free(ctx, X), cuda_free(ctx, CS), cuda_free(ctx, SN), cuda_free(ctx, P);
        free(x), free(cs), free(sn);
        rope_free(&rope);
    }
    const int N = 9, V = 1000;
    float *z = rnd((size_t)N * V, 14, 3), *dlp = rnd(N, 15, 1);
    int tg[9] = {0, 5, 999, -1, 17, 17, 400, -1, 3};
    float *lp = ds_calloc(N, 4), *lse = ds_calloc(N, 4), *dz = ds_calloc((size_t)N * V, 4);
    logprob_forward_f32(lp, lse, z, tg, N, V);
    logprob_backward_f32(dz, dlp, z, lse, tg, N, V);
    float *Z = up(z, (size_t)N * V), *DLP = up(dlp, N), *LP = cuda_alloc(ctx, N * 4), *LSE = cuda_alloc(ctx, N * 4);
    float *DZ = cuda_alloc(ctx, (size_t)N * V * 4);
    int *TG = up_int(tg, N);
    cuda_logprob_forward(ctx, LP, LSE, Z, TG, N, V);
    cuda_logprob_backward(ctx, DZ, DLP, Z, LSE, TG, N, V);
    synced(t);
    double a = rel_err(LP, lp, N), b = rel_err(DZ, dz, (size_t)N * V);
    printf("logprob: lp %.2e dlogits %.2e\n", a, b);
    CHECK(t, a < 1e-5 && b < 1e-5);
    cuda_free(ctx, Z), cuda_free(ctx, DLP), cuda_free(ctx, LP), cuda_free(ctx, LSE), cuda_free(ctx, DZ), cuda_free(ctx, TG);
    free(z), free(dlp), free(lp), free(lse), free(dz);
}

static void attention_adamw(T *t) {
    // MLA's shape at small size: query/key heads wider than value heads, packed documents.
    const int B = 2, T_ = 37, H = 4, Hkv = 2, dqk = 24, dv = 16, N = B * T_;
    float *q = rnd((size_t)N * H * dqk, 16, 1), *k = rnd((size_t)N * Hkv * dqk, 17, 1), *v = rnd((size_t)N * Hkv * dv, 18, 1);
    int pos[74];
    for (int n = 0; n < N; n++) pos[n] = (n % T_) < 20 ? n % T_ : n % T_ - 20; // a second document at 20
    float *out = ds_calloc((size_t)N * H * dv, 4), *att = ds_calloc((size_t)B * H * T_ * T_, 4);
    double scale = 1.0 / sqrt(dqk);
    attention_forward_f32(out, att, q, k, v, pos, B, T_, H, Hkv, dqk, dv, scale);
    float *Q = up(q, (size_t)N * H * dqk), *K = up(k, (size_t)N * Hkv * dqk), *Vv = up(v, (size_t)N * Hkv * dv);
    int *P = up_int(pos, N);
    float *O = cuda_alloc(ctx, (size_t)N * H * dv * 4), *A = cuda_alloc(ctx, (size_t)B * H * T_ * T_ * 4);
    cuda_attention_forward(ctx, O, A, Q, K, Vv, P, B, T_, H, Hkv, dqk, dv, scale);
    synced(t);
    double eo = rel_err(O, out, (size_t)N * H * dv), ea = rel_err(A, att, (size_t)B * H * T_ * T_);
    printf("attention: out %.2e probabilities %.2e\n", eo, ea);
    CHECK(t, eo < 1e-5 && ea < 1e-5);
    cuda_free(ctx, Q), cuda_free(ctx, K), cuda_free(ctx, Vv), cuda_free(ctx, P), cuda_free(ctx, O), cuda_free(ctx, A);
    free(q), free(k), free(v), free(out), free(att);

    // AdamW: three steps on a flat vector, decay on the first half, against the CPU loop's formula.
    const size_t n = 1000;
    float *w = rnd(n, 19, 1), *g = rnd(n, 20, 1), *m = ds_calloc(n, 4), *vv = ds_calloc(n, 4);
    uint8_t *decay = ds_malloc(n);
    for (size_t i = 0; i < n; i++) decay[i] = i < n / 2;
    float *W = up(w, n), *G = up(g, n), *M = cuda_alloc(ctx, n * 4), *VV = cuda_alloc(ctx, n * 4);
    uint8_t *D = cuda_alloc(ctx, n);
    cuda_upload(ctx, D, decay, n);
    for (long step = 1; step <= 3; step++) {
        float c1 = (float)(1.0 / (1.0 - pow(0.9, (double)step))), c2 = (float)(1.0 / (1.0 - pow(0.95, (double)step)));
        for (size_t i = 0; i < n; i++) {
            m[i] = 0.9f * m[i] + (1 - 0.9f) * g[i];
            vv[i] = 0.95f * vv[i] + (1 - 0.95f) * g[i] * g[i];
            float wd = decay[i] ? (float)(1e-3 * 0.1) : 0.0f;
            w[i] -= 1e-3f * (m[i] * c1) / (sqrtf(vv[i] * c2) + 1e-8f) + wd * w[i];
        }
        cuda_adamw(ctx, W, G, M, VV, D, n, 1e-3, 0.9, 0.95, 1e-8, 0.1, step);
    }
    synced(t);
    double ew = rel_err(W, w, n);
    printf("adamw: %.2e\n", ew);
    CHECK(t, ew < 1e-6);
    cuda_free(ctx, W), cuda_free(ctx, G), cuda_free(ctx, M), cuda_free(ctx, VV), cuda_free(ctx, D);
    free(w), free(g), free(m), free(vv), free(decay);
}

int main(int argc, char **argv) {
    char name[256] = "";
    if (cuda_device_count(name, sizeof name) == 0) {
        puts("skip: no CUDA device");
        return 77;
    }
    DsErr e;
    ctx = cuda_ctx_new(0, &e);
    if (!ctx) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    printf("device: %s\n", name);
    static const UnitCase cases[] = {CASE(linear_f32_bf16), CASE(fp8_gemm), CASE(norm_swiglu_embedding),
                                     CASE(rope_logprob), CASE(attention_adamw)};
    int rc = unit_main(argc, argv, cases, DS_ARRAY_LEN(cases));
    cuda_ctx_free(ctx);
    return rc;
}
