// test_infer.c — the inference engine against the training forward: absorbed and naive MLA caches,
// GQA, batch composition, speculative MTP rows.
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "infer/engine.h"
#include "infer/generate.h"
#include "core/rng.h"
#include "math/rowgemm.h"
#include "unit.h"

static const char *CFG_V3 =
    "{\"model_type\":\"deepseek_v3\",\"vocab_size\":50,\"hidden_size\":32,\"intermediate_size\":48,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"q_lora_rank\":16,\"kv_lora_rank\":12,"
    "\"qk_nope_head_dim\":8,\"qk_rope_head_dim\":4,\"v_head_dim\":6,\"n_routed_experts\":8,"
    "\"n_shared_experts\":1,\"num_experts_per_tok\":2,\"moe_intermediate_size\":16,\"n_group\":2,"
    "\"topk_group\":1,\"first_k_dense_replace\":1,\"routed_scaling_factor\":2.5,"
    "\"num_nextn_predict_layers\":1,\"initializer_range\":0.2,\"rope_theta\":100.0}";
static const char *CFG_QWEN =
    "{\"model_type\":\"qwen2\",\"vocab_size\":40,\"hidden_size\":24,\"intermediate_size\":32,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
    "\"initializer_range\":0.2,\"rope_theta\":100.0}";

static void build(T *t, Model_f32 *m, const char *json, uint64_t seed) {
    ModelConfig c;
    DsErr e;
    CHECKF(t, config_from_string(&c, json, strlen(json), "cfg", &e) == DS_OK, "%s", e.msg);
    model_init_f32(m, &c, 0, 64);
    model_init_weights_f32(m, seed);
    // non-zero norms and selection bias so every path matters
    Rng r;
    rng_seed(&r, seed + 1);
    for (int i = 0; i < m->L.np; i++)
        if (m->L.p[i].ndim == 1)
            for (size_t j = 0; j < m->L.p[i].numel; j++) m->params[m->L.p[i].offset + j] += 0.1f * (float)rng_normal(&r);
}

static double rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num = fmax(num, fabs(a[i] - b[i])), den = fmax(den, fabs(b[i]));
    return num / fmax(den, 1e-30);
}

// Engine logits for a 12-token sequence fed in chunks equal the training forward's (1e-4).
static void engine_matches_training(T *t, const char *json, int naive) {
    Model_f32 m;
    build(t, &m, json, 5);
    int T = 12, V = m.L.cfg.vocab_size, tok[12], pos[12], slot[12] = {0};
    Rng r;
    rng_seed(&r, 9);
    for (int i = 0; i < T; i++) tok[i] = (int)rng_below(&r, (uint64_t)V), pos[i] = i;
    Acts_f32 a;
    acts_init_f32(&a, &m, 1, T);
    model_forward_f32(&m, &a, tok, pos, 1, T);
    DsErr e;
    EngineOpts o = {.slots = 2, .max_len = 32, .max_rows = 8, .naive_attn = naive};
    Engine *en = engine_new(&m, &o, &e);
    float *lg = malloc(sizeof(float) * (size_t)T * V);
    engine_forward(en, 5, slot, tok, pos, lg);               // prefill chunk
    engine_forward(en, 7, slot, tok + 5, pos + 5, lg + (size_t)5 * V); // the rest
    double err = rel(lg, a.logits, (size_t)T * V);
    CHECKF(t, err < 1e-4, "engine vs training logits: relative error %.3g", err);
    // MTP module rows (engine_mtp_forward) against the training MTP logits of depth 1: row i pairs
    // hidden state i with token i+1.
    if (m.L.nmtp) {
        int src[7], next[7], mslot[7] = {0}, mpos[7];
        engine_truncate(en, 0, 0);
        engine_forward(en, 8, slot, tok, pos, lg);
        for (int i = 0; i < 7; i++) src[i] = i, next[i] = tok[i + 1], mpos[i] = i;
        float *ml = malloc(sizeof(float) * 7 * (size_t)V);
        engine_mtp_forward(en, 7, src, mslot, mpos, next, ml);
        double em = rel(ml, a.mtp[0].logits, (size_t)7 * V);
        CHECKF(t, em < 1e-4, "MTP rows vs training MTP logits: relative error %.3g", em);
        free(ml);
    }
    free(lg);
    engine_free(en);
    acts_free_f32(&a);
    model_free_f32(&m);
}
static void absorbed_matches_training(T *t) { engine_matches_training(t, CFG_V3, 0); }
static void naive_matches_training(T *t) { engine_matches_training(t, CFG_V3, 1); }
static void gqa_matches_training(T *t) { engine_matches_training(t, CFG_QWEN, 0); }

// A sequence's logits are bit-identical whether it runs alone or among 15 others.
static void batch_independent(T *t) {
    Model_f32 m;
    build(t, &m, CFG_V3, 6);
    int V = m.L.cfg.vocab_size, T = 10;
    DsErr e;
    EngineOpts o1 = {.slots = 1, .max_len = 32, .max_rows = 16}, o16 = {.slots = 16, .max_len = 32, .max_rows = 160};
    Engine *a = engine_new(&m, &o1, &e), *b = engine_new(&m, &o16, &e);
    int tok[160], pos[160], slot[160];
    Rng r;
    rng_seed(&r, 3);
    for (int i = 0; i < 160; i++) tok[i] = (int)rng_below(&r, (uint64_t)V);
    float *la = malloc(sizeof(float) * 160 * (size_t)V), *lb = malloc(sizeof(float) * 160 * (size_t)V);
    // sequence 7 alone
    for (int i = 0; i < T; i++) slot[i] = 0, pos[i] = i;
    engine_forward(a, T, slot, tok + 7 * T, pos, la);
    // all 16 interleaved in one forward
    for (int s = 0; s < 16; s++)
        for (int i = 0; i < T; i++) slot[i * 16 + s] = s, pos[i * 16 + s] = i;
    int tk[160];
    for (int s = 0; s < 16; s++)
        for (int i = 0; i < T; i++) tk[i * 16 + s] = tok[s * T + i];
    engine_forward(b, 160, slot, tk, pos, lb);
    int same = 1;
    for (int i = 0; i < T; i++) same &= memcmp(la + (size_t)i * V, lb + (size_t)(i * 16 + 7) * V, sizeof(float) * V) == 0;
    CHECK(t, same);
    free(la), free(lb);
    engine_free(a), engine_free(b);
    model_free_f32(&m);
}

// Generation: greedy tokens equal with and without MTP speculation, and absorbed vs naive.
typedef struct Src {
    uint32_t prompts[6][5];
    int next;
    uint32_t out[6][40];
    int n[6];
} Src;
static int src_next(void *ctx, GenRequest *req, DsErr *e) {
    (void)e;
    Src *s = ctx;
    if (s->next == 6) return 0;
    *req = (GenRequest){.prompt = s->prompts[s->next], .prompt_len = 5, .stream = (uint64_t)s->next,
                        .user = (void *)(intptr_t)s->next};
    s->next++;
    return 1;
}
static int src_done(void *ctx, const GenResult *r, DsErr *e) {
    (void)e;
    Src *s = ctx;
    int i = (int)(intptr_t)r->req->user;
    memcpy(s->out[i], r->tokens, sizeof(uint32_t) * (size_t)r->n);
    s->n[i] = r->n;
    return 0;
}
static void run_gen(T *t, Model_f32 *m, int naive, int spec, int slots, Src *s, GenStats *st) {
    DsErr e;
    EngineOpts o = {.slots = slots, .max_len = 64, .max_rows = slots * 2 + 8, .naive_attn = naive};
    Engine *en = engine_new(m, &o, &e);
    GenConfig g = {.sp = {0, 1, 0}, .max_tokens = 40, .speculative = spec, .prefill_chunk = 3};
    s->next = 0;
    CHECK(t, generate(en, &g, src_next, s, src_done, s, st, &e) == DS_OK);
    engine_free(en);
}
static void greedy_equal_across_modes(T *t) {
    Model_f32 m;
    build(t, &m, CFG_V3, 8);
    Src base = {0}, other = {0};
    Rng r;
    rng_seed(&r, 4);
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 5; k++) base.prompts[i][k] = (uint32_t)rng_below(&r, 50);
    memcpy(other.prompts, base.prompts, sizeof base.prompts);
    GenStats st;
    run_gen(t, &m, 0, 0, 1, &base, &st);
    for (int i = 0; i < 6; i++) CHECK(t, base.n[i] == 40);
    int modes[4][3] = {{1, 0, 1}, {0, 1, 1}, {0, 0, 4}, {0, 1, 4}}; // naive; spec; batch 4; spec+batch
    for (int k = 0; k < 4; k++) {
        memset(other.out, 0, sizeof other.out);
        run_gen(t, &m, modes[k][0], modes[k][1], modes[k][2], &other, &st);
        CHECKF(t, memcmp(base.out, other.out, sizeof base.out) == 0, "mode %d differs", k);
        if (modes[k][1]) CHECK(t, st.drafted > 0 && st.accepted <= st.drafted);
    }
    model_free_f32(&m);
}

// An engine used after its model's parameters changed, without engine_refresh, aborts (a bug in
// the caller) instead of mixing the old derived weights with the new ones; after a refresh it runs.
static void stale_engine_refused(T *t) {
    Model_f32 m;
    build(t, &m, CFG_V3, 8);
    DsErr e;
    EngineOpts o = {.slots = 1, .max_len = 16, .max_rows = 4};
    Engine *en = engine_new(&m, &o, &e);
    int tok[1] = {3}, pos[1] = {0}, slot[1] = {0};
    float *lg = malloc(sizeof(float) * (size_t)m.L.cfg.vocab_size);
    engine_forward(en, 1, slot, tok, pos, lg);
    engine_truncate(en, 0, 0);
    m.params[m.L.p[0].offset] += 1;
    model_params_changed_f32(&m);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        engine_forward(en, 1, slot, tok, pos, lg);
        _exit(0);
    }
    int st = 0;
    CHECK(t, pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECKF(t, WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "stale engine: child status %d", st);
    engine_refresh(en);
    engine_forward(en, 1, slot, tok, pos, lg);
    CHECK(t, isfinite(lg[0]));
    free(lg);
    engine_free(en);
    model_free_f32(&m);
}

// rowgemm's wide kernel (AVX-512, where the CPU has it) and its 8-lane kernel give the same bits
// for every shape, stride, bias and accumulate mode: the per-element operation sequence is the
// contract that keeps samples independent of the machine's vector width.
static void rowgemm_kernels_agree(T *t) {
    Rng r;
    rng_seed(&r, 5);
    long mismatches = 0, cases = 0;
    for (int it = 0; it < 400; it++) {
        int R = 1 + (int)rng_below(&r, 13), K = 1 + (int)rng_below(&r, 300), N = 1 + (int)rng_below(&r, 21);
        int ldx = K + (int)rng_below(&r, 3), ldw = K + (int)rng_below(&r, 3), ldo = N + (int)rng_below(&r, 3);
        int acc = (int)rng_below(&r, 2), with_bias = (int)rng_below(&r, 2);
        float *x = malloc(sizeof(float) * (size_t)R * ldx), *w = malloc(sizeof(float) * (size_t)N * ldw);
        float *b = malloc(sizeof(float) * (size_t)N), *o1 = malloc(sizeof(float) * (size_t)R * ldo);
        float *o2 = malloc(sizeof(float) * (size_t)R * ldo);
        for (int i = 0; i < R * ldx; i++) x[i] = (float)(rng_uniform(&r) * 2 - 1);
        for (int i = 0; i < N * ldw; i++) w[i] = (float)(rng_uniform(&r) * 2 - 1) * 1e3f;
        for (int i = 0; i < N; i++) b[i] = (float)rng_uniform(&r);
        for (int i = 0; i < R * ldo; i++) o1[i] = o2[i] = (float)rng_uniform(&r);
        rowgemm_ld(o1, ldo, x, ldx, w, ldw, with_bias ? b : NULL, R, K, N, acc);
        rowgemm_ld_lanes8(o2, ldo, x, ldx, w, ldw, with_bias ? b : NULL, R, K, N, acc);
        mismatches += memcmp(o1, o2, sizeof(float) * (size_t)R * ldo) != 0;
        cases++;
        free(x), free(w), free(b), free(o1), free(o2);
    }
    CHECKF(t, mismatches == 0, "%ld of %ld shapes differ between the kernels", mismatches, cases);
}

UNIT_MAIN(CASE(absorbed_matches_training), CASE(naive_matches_training), CASE(gqa_matches_training),
          CASE(batch_independent), CASE(greedy_equal_across_modes),
          CASE(stale_engine_refused), CASE(rowgemm_kernels_agree))
