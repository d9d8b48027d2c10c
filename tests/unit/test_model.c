// test_model.c — gradient checks of every op and of whole models against central finite
// differences in double precision, and closed-form cases (RoPE, routing, causality, packing).
#include <math.h>

#include "config.h"
#include "nn/model.h"
#include "nn/moe.h"
#include "nn/ops.h"
#include "rng.h"
#include "unit.h"

// ---------------------------------------------------------------------------
// tiny configs

static const char *CFG_V3 =
    "{\"model_type\":\"deepseek_v3\",\"vocab_size\":23,\"hidden_size\":16,\"intermediate_size\":24,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"q_lora_rank\":8,\"kv_lora_rank\":8,"
    "\"qk_nope_head_dim\":4,\"qk_rope_head_dim\":4,\"v_head_dim\":6,\"n_routed_experts\":6,"
    "\"n_shared_experts\":1,\"num_experts_per_tok\":2,\"moe_intermediate_size\":8,\"n_group\":3,"
    "\"topk_group\":2,\"first_k_dense_replace\":1,\"routed_scaling_factor\":2.5,"
    "\"norm_topk_prob\":true,\"num_nextn_predict_layers\":1,\"initializer_range\":0.3,"
    "\"max_position_embeddings\":64,\"rope_theta\":100.0}";
static const char *CFG_V3_NOQ_YARN_TIED =
    "{\"model_type\":\"deepseek_v3\",\"vocab_size\":19,\"hidden_size\":12,\"intermediate_size\":20,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":3,\"q_lora_rank\":null,\"kv_lora_rank\":6,"
    "\"qk_nope_head_dim\":2,\"qk_rope_head_dim\":4,\"v_head_dim\":4,\"n_routed_experts\":4,"
    "\"n_shared_experts\":0,\"num_experts_per_tok\":3,\"moe_intermediate_size\":6,\"n_group\":1,"
    "\"topk_group\":1,\"first_k_dense_replace\":0,\"routed_scaling_factor\":1.0,"
    "\"norm_topk_prob\":false,\"num_nextn_predict_layers\":2,\"initializer_range\":0.3,"
    "\"tie_word_embeddings\":true,\"rope_theta\":50.0,\"rope_scaling\":{\"type\":\"yarn\","
    "\"factor\":4.0,\"original_max_position_embeddings\":8,\"beta_fast\":32,\"beta_slow\":1,"
    "\"mscale\":1.0,\"mscale_all_dim\":0.8}}";
static const char *CFG_LLAMA =
    "{\"model_type\":\"llama\",\"vocab_size\":21,\"hidden_size\":16,\"intermediate_size\":20,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
    "\"initializer_range\":0.3,\"rope_theta\":100.0,\"tie_word_embeddings\":true}";
static const char *CFG_QWEN2 =
    "{\"model_type\":\"qwen2\",\"vocab_size\":17,\"hidden_size\":12,\"intermediate_size\":16,"
    "\"num_hidden_layers\":1,\"num_attention_heads\":3,\"num_key_value_heads\":1,"
    "\"initializer_range\":0.3,\"rope_theta\":100.0}";

static ModelConfig load_cfg(T *t, const char *json) {
    ModelConfig c;
    DsErr e;
    int rc = config_from_string(&c, json, strlen(json), "test", &e);
    CHECKF(t, rc == DS_OK, "%s", e.msg);
    return c;
}

// ---------------------------------------------------------------------------
// whole-model gradient check

typedef struct Batch {
    int B, T;
    int *tokens, *pos, *targets;
} Batch;

// Two sequences; the first packs two documents (positions restart), the second has an ignored
// target.
static Batch make_batch(int V, int B, int T, uint64_t seed) {
    Batch b = {B, T, malloc(sizeof(int) * B * T), malloc(sizeof(int) * B * T), malloc(sizeof(int) * B * T)};
    Rng r;
    rng_seed(&r, seed);
    for (int s = 0; s < B; s++)
        for (int i = 0; i < T; i++) {
            int n = s * T + i;
            b.tokens[n] = (int)rng_below(&r, (uint64_t)V);
            b.pos[n] = (s == 0 && i >= T / 2) ? i - T / 2 : i;
        }
    for (int n = 0; n < B * T; n++) {
        int end = (n + 1) % T == 0 || (n + 1 < B * T && b.pos[n + 1] == 0);
        b.targets[n] = end ? -1 : b.tokens[n + 1];
    }
    b.targets[T + 2] = -1;
    return b;
}

static void free_batch(Batch *b) {
    free(b->tokens), free(b->pos), free(b->targets);
}

static double total_loss(Model_f64 *m, Acts_f64 *a, const Batch *b, double lambda, double alpha) {
    ModelLossStats st;
    model_forward_f64(m, a, b->tokens, b->pos, b->B, b->T);
    model_loss_f64(m, a, b->targets, lambda, alpha, 1.0, &st);
    return st.loss + lambda * st.mtp_loss + st.balance_loss;
}

// Compares backward with central differences on a few entries of every trainable tensor.
static void gradcheck_model(T *t, const char *json, double tol) {
    ModelConfig c = load_cfg(t, json);
    Model_f64 m;
    model_init_f64(&m, &c, 1, 64);
    model_init_weights_f64(&m, 7);
    // Norm weights away from 1 and a non-zero selection bias, so those paths are exercised.
    Rng r;
    rng_seed(&r, 99);
    for (int i = 0; i < m.L.np; i++)
        if (m.L.p[i].ndim == 1)
            for (size_t j = 0; j < m.L.p[i].numel; j++)
                m.params[m.L.p[i].offset + j] += 0.2 * rng_normal(&r);
    Acts_f64 a;
    Batch b = make_batch(c.vocab_size, 2, 8, 3);
    acts_init_f64(&a, &m, b.B, b.T);
    double lambda = 0.3, alpha = 0.05;
    memset(m.grads, 0, sizeof(double) * m.L.total);
    total_loss(&m, &a, &b, lambda, alpha);
    model_backward_f64(&m, &a);
    double worst = 0;
    const char *worst_name = "";
    int checked = 0;
    for (int i = 0; i < m.L.np; i++) {
        const ParamInfo *p = &m.L.p[i];
        if (p->flags & PARAM_FROZEN) continue;
        for (int s = 0; s < 3; s++) {
            size_t j = p->offset + rng_below(&r, p->numel);
            double keep = m.params[j], h = 1e-5;
            m.params[j] = keep + h;
            double lp = total_loss(&m, &a, &b, lambda, alpha);
            m.params[j] = keep - h;
            double lm = total_loss(&m, &a, &b, lambda, alpha);
            m.params[j] = keep;
            double fd = (lp - lm) / (2 * h), an = m.grads[j];
            double err = fabs(fd - an) / fmax(1e-3, fabs(fd) + fabs(an));
            if (err > worst) worst = err, worst_name = p->name;
            checked++;
        }
    }
    CHECKF(t, worst < tol, "worst relative error %.3g at %s (%d entries checked)", worst, worst_name, checked);
    CHECK(t, checked > 20);
    acts_free_f64(&a);
    model_free_f64(&m);
    free_batch(&b);
}

// MLA with q_lora_rank, MoE (groups, shared expert, first dense layer), MTP depth 1, untied.
static void gradcheck_v3(T *t) { gradcheck_model(t, CFG_V3, 1e-6); }
// MLA without query compression, YaRN RoPE + mscale, unnormalised gates, MTP depth 2, tied head.
static void gradcheck_v3_yarn_tied_mtp2(T *t) { gradcheck_model(t, CFG_V3_NOQ_YARN_TIED, 1e-6); }
// Dense students: grouped-query attention, rotate-half RoPE, qwen2 q/k/v biases.
static void gradcheck_llama(T *t) { gradcheck_model(t, CFG_LLAMA, 1e-6); }
static void gradcheck_qwen2(T *t) { gradcheck_model(t, CFG_QWEN2, 1e-6); }

// ---------------------------------------------------------------------------
// per-op gradient checks (double precision)

static void fill(double *x, size_t n, Rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(r);
}
static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// Checks d(Σ w·f(x))/dx for op f given as forward(x) -> y and its analytic gradient g.
#define OP_CHECK(t, x, n, g, expr_loss, tol)                                                       \
    do {                                                                                           \
        double worst_ = 0;                                                                         \
        for (size_t i_ = 0; i_ < (n); i_++) {                                                      \
            double keep_ = (x)[i_], h_ = 1e-6;                                                     \
            (x)[i_] = keep_ + h_;                                                                  \
            double lp_ = (expr_loss);                                                              \
            (x)[i_] = keep_ - h_;                                                                  \
            double lm_ = (expr_loss);                                                              \
            (x)[i_] = keep_;                                                                       \
            double fd_ = (lp_ - lm_) / (2 * h_);                                                   \
            double e_ = fabs(fd_ - (g)[i_]) / fmax(1e-4, fabs(fd_) + fabs((g)[i_]));               \
            if (e_ > worst_) worst_ = e_;                                                          \
        }                                                                                          \
        CHECKF(t, worst_ < (tol), "%s: worst relative error %.3g", #x, worst_);                   \
    } while (0)

typedef struct RmsCase {
    double *x, *w, *y, *rstd, *dy;
    int N, C;
} RmsCase;
static double rms_loss(RmsCase *k) {
    rmsnorm_forward_f64(k->y, k->rstd, k->x, k->w, k->N, k->C, 1e-6);
    return dot(k->y, k->dy, (size_t)k->N * k->C);
}

static void op_rmsnorm(T *t) {
    Rng r;
    rng_seed(&r, 1);
    int N = 3, C = 7;
    double x[21], w[7], y[21], rstd[3], dy[21], dx[21] = {0}, dw[7] = {0};
    fill(x, 21, &r), fill(w, 7, &r), fill(dy, 21, &r);
    RmsCase k = {x, w, y, rstd, dy, N, C};
    rms_loss(&k);
    rmsnorm_backward_f64(dx, dw, dy, x, w, rstd, N, C);
    OP_CHECK(t, x, 21, dx, rms_loss(&k), 1e-7);
    OP_CHECK(t, w, 7, dw, rms_loss(&k), 1e-7);
}

static void op_swiglu(T *t) {
    Rng r;
    rng_seed(&r, 2);
    double gu[2 * 2 * 5], y[10], dy[10], dgu[20];
    fill(gu, 20, &r), fill(dy, 10, &r);
    swiglu_backward_f64(dgu, dy, gu, 2, 5);
#define SWIGLU_LOSS (swiglu_forward_f64(y, gu, 2, 5), dot(y, dy, 10))
    OP_CHECK(t, gu, 20, dgu, SWIGLU_LOSS, 1e-7);
}

static void op_logprob(T *t) {
    Rng r;
    rng_seed(&r, 3);
    int N = 4, V = 6, targets[4] = {1, -1, 5, 0};
    double x[24], lp[4], lse[4], dlp[4], dx[24];
    fill(x, 24, &r), fill(dlp, 4, &r);
    logprob_forward_f64(lp, lse, x, targets, N, V);
    logprob_backward_f64(dx, dlp, x, lse, targets, N, V);
#define LP_LOSS (logprob_forward_f64(lp, lse, x, targets, N, V), dot(lp, dlp, 4))
    OP_CHECK(t, x, 24, dx, LP_LOSS, 1e-7);
    // closed form: uniform logits give log(1/V)
    double z[6] = {0}, l1, s1;
    int t0 = 2;
    logprob_forward_f64(&l1, &s1, z, &t0, 1, 6);
    CHECK_CLOSE(t, l1, -log(6.0), 1e-12);
}

typedef struct AttnCase {
    double *q, *k, *v, *out, *att, *dout;
    int *pos, B, T, H, Hkv, dqk, dv;
} AttnCase;
static double attn_loss(AttnCase *c) {
    attention_forward_f64(c->out, c->att, c->q, c->k, c->v, c->pos, c->B, c->T, c->H, c->Hkv,
                          c->dqk, c->dv, 0.7);
    return dot(c->out, c->dout, (size_t)c->B * c->T * c->H * c->dv);
}

static void op_attention(T *t) {
    Rng r;
    rng_seed(&r, 4);
    enum { B = 2, TT = 5, H = 4, HKV = 2, DQK = 3, DV = 2 };
    double q[B * TT * H * DQK], k[B * TT * HKV * DQK], v[B * TT * HKV * DV];
    double out[B * TT * H * DV], att[B * H * TT * TT], dout[B * TT * H * DV];
    double dq[sizeof q / 8], dk[sizeof k / 8], dv[sizeof v / 8], scratch[TT * TT];
    int pos[B * TT] = {0, 1, 2, 0, 1, 0, 1, 2, 3, 4}; // first sequence packs two documents
    fill(q, sizeof q / 8, &r), fill(k, sizeof k / 8, &r), fill(v, sizeof v / 8, &r);
    fill(dout, sizeof dout / 8, &r);
    AttnCase c = {q, k, v, out, att, dout, pos, B, TT, H, HKV, DQK, DV};
    attn_loss(&c);
    attention_backward_f64(dq, dk, dv, scratch, dout, att, q, k, v, B, TT, H, HKV, DQK, DV, 0.7);
    OP_CHECK(t, q, sizeof q / 8, dq, attn_loss(&c), 1e-5);
    OP_CHECK(t, k, sizeof k / 8, dk, attn_loss(&c), 1e-7);
    OP_CHECK(t, v, sizeof v / 8, dv, attn_loss(&c), 1e-7);
    // Closed form: the first token of a document sees only itself, so its output is its value.
    for (int h = 0; h < H; h++)
        for (int i = 0; i < DV; i++) {
            CHECK_CLOSE(t, out[3 * H * DV + h * DV + i], v[3 * HKV * DV + (h / 2) * DV + i], 1e-12);
            CHECK_CLOSE(t, out[h * DV + i], v[(h / 2) * DV + i], 1e-12);
        }
    // Probabilities never cross the document boundary.
    for (int h = 0; h < H; h++)
        for (int i = 3; i < 5; i++)
            for (int j = 0; j < 3; j++) CHECK(t, att[((size_t)h * TT + i) * TT + j] == 0);
}

static void op_rope(T *t) {
    ModelConfig c = load_cfg(t, CFG_V3_NOQ_YARN_TIED);
    Rope rope;
    rope_init(&rope, &c, 16);
    Rng r;
    rng_seed(&r, 5);
    double x[3 * 4], x0[3 * 4];
    fill(x, 12, &r);
    memcpy(x0, x, sizeof x);
    int zero[3] = {0, 0, 0}, pos[3] = {0, 5, 11};
    // Position 0 is the identity (YaRN's attention factor aside: mscale ratio).
    double f = rope.cos[0];
    rope_apply_f64(x, zero, 3, 1, 4, 4, &rope, 0);
    for (int i = 0; i < 12; i++) CHECK_CLOSE(t, x[i], x0[i] * f, 1e-12);
    memcpy(x, x0, sizeof x);
    // Applying then applying the transpose gives back f²·x (a scaled rotation).
    rope_apply_f64(x, pos, 3, 1, 4, 4, &rope, 0);
    double n0 = dot(x0, x0, 12), n1 = dot(x, x, 12);
    CHECK_CLOSE(t, n1, n0 * f * f, 1e-12);
    rope_apply_f64(x, pos, 3, 1, 4, 4, &rope, 1);
    for (int i = 0; i < 12; i++) CHECK_CLOSE(t, x[i], x0[i] * f * f, 1e-12);
    // YaRN: the highest frequency pair is kept, the lowest is divided by the factor.
    ModelConfig plain = c;
    plain.rope_scaling.type = ROPE_DEFAULT;
    CHECK_CLOSE(t, rope_inv_freq(&c, 4, 0), rope_inv_freq(&plain, 4, 0), 1e-12);
    CHECK_CLOSE(t, rope_inv_freq(&c, 4, 1), rope_inv_freq(&plain, 4, 1) / 4.0, 1e-12);
    rope_free(&rope);
}

// ---------------------------------------------------------------------------
// routing

static void route_bias_forces_expert(T *t) {
    ModelConfig c = load_cfg(t, CFG_V3);
    int N = 10, E = c.n_routed_experts, K = c.num_experts_per_tok;
    double logits[60], score[60], gate[20], bias[6] = {0};
    int idx[20];
    Rng r;
    rng_seed(&r, 6);
    fill(logits, 60, &r);
    for (int fav = 0; fav < E; fav++) {
        memset(bias, 0, sizeof bias);
        bias[fav] = 10; // selection only: gates still use the unbiased affinity
        moe_route_forward_f64(idx, gate, score, logits, bias, &c, N);
        for (int n = 0; n < N; n++) {
            CHECK(t, idx[n * K] == fav || idx[n * K + 1] == fav);
            double s = score[n * E + idx[n * K]] + score[n * E + idx[n * K + 1]];
            int k = idx[n * K] == fav ? 0 : 1;
            CHECK_CLOSE(t, gate[n * K + k], 2.5 * score[n * E + fav] / s, 1e-12);
        }
    }
}

static void route_group_limited(T *t) {
    ModelConfig c = load_cfg(t, CFG_V3);
    c.topk_group = 1; // one group of 2 experts: both selected experts come from it
    int N = 50, E = 6;
    double logits[300], score[300], gate[100];
    int idx[100];
    Rng r;
    rng_seed(&r, 8);
    fill(logits, 300, &r);
    moe_route_forward_f64(idx, gate, score, logits, NULL, &c, N);
    for (int n = 0; n < N; n++) {
        CHECK(t, idx[2 * n] / 2 == idx[2 * n + 1] / 2);
        // and that group has the best top-2 sum
        double best = -1;
        int bg = -1;
        for (int g = 0; g < 3; g++) {
            double s = score[n * E + 2 * g] + score[n * E + 2 * g + 1];
            if (s > best) best = s, bg = g;
        }
        CHECK(t, idx[2 * n] / 2 == bg);
        CHECK_CLOSE(t, gate[2 * n] + gate[2 * n + 1], 2.5, 1e-12); // normalised × scaling factor
    }
}

// ---------------------------------------------------------------------------
// float model agrees with the double one; causality and document isolation

static void f32_matches_f64(T *t) {
    ModelConfig c = load_cfg(t, CFG_V3);
    Model_f64 m64;
    Model_f32 m32;
    model_init_f64(&m64, &c, 0, 64);
    model_init_f32(&m32, &c, 0, 64);
    model_init_weights_f64(&m64, 11);
    for (size_t i = 0; i < m64.L.total; i++) m32.params[i] = (float)m64.params[i];
    Batch b = make_batch(c.vocab_size, 2, 8, 5);
    Acts_f64 a64;
    Acts_f32 a32;
    acts_init_f64(&a64, &m64, 2, 8);
    acts_init_f32(&a32, &m32, 2, 8);
    model_forward_f64(&m64, &a64, b.tokens, b.pos, 2, 8);
    model_forward_f32(&m32, &a32, b.tokens, b.pos, 2, 8);
    double worst = 0;
    for (int i = 0; i < 16 * c.vocab_size; i++)
        worst = fmax(worst, fabs(a64.logits[i] - a32.logits[i]) / fmax(1.0, fabs(a64.logits[i])));
    CHECKF(t, worst < 1e-4, "max logit difference %.3g", worst);
    acts_free_f64(&a64), acts_free_f32(&a32);
    model_free_f64(&m64), model_free_f32(&m32);
    free_batch(&b);
}

static void causal_and_packed(T *t) {
    ModelConfig c = load_cfg(t, CFG_V3);
    Model_f64 m;
    model_init_f64(&m, &c, 0, 64);
    model_init_weights_f64(&m, 12);
    Batch b = make_batch(c.vocab_size, 2, 8, 6);
    Acts_f64 a;
    acts_init_f64(&a, &m, 2, 8);
    int V = c.vocab_size;
    model_forward_f64(&m, &a, b.tokens, b.pos, 2, 8);
    double *ref = malloc(sizeof(double) * 16 * V);
    memcpy(ref, a.logits, sizeof(double) * 16 * V);
    // Change the last token of sequence 1 and the first token of the second document of sequence 0.
    b.tokens[15] = (b.tokens[15] + 1) % V;
    b.tokens[4] = (b.tokens[4] + 1) % V;
    model_forward_f64(&m, &a, b.tokens, b.pos, 2, 8);
    for (int n = 0; n < 16; n++) {
        int should_change = n == 15 || (n >= 4 && n < 8);
        double diff = 0;
        for (int v = 0; v < V; v++) diff = fmax(diff, fabs(a.logits[n * V + v] - ref[n * V + v]));
        if (should_change) CHECKF(t, diff > 1e-9, "token %d did not change", n);
        else CHECKF(t, diff == 0, "token %d changed by %g", n, diff);
    }
    free(ref);
    acts_free_f64(&a);
    model_free_f64(&m);
    free_batch(&b);
}

static void config_errors(T *t) {
    ModelConfig c;
    DsErr e;
    const char *bad = "{\"model_type\":\"deepseek_v3\",\"vocab_size\":10,\"hidden_size\":8,"
                      "\"intermediate_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":1,"
                      "\"kv_lora_rank\":4,\"qk_nope_head_dim\":2,\"qk_rope_head_dim\":2,"
                      "\"v_head_dim\":2,\"n_routed_experts\":6,\"num_experts_per_tok\":2,"
                      "\"moe_intermediate_size\":4,\"n_group\":4,\"topk_group\":1}";
    CHECK(t, config_from_string(&c, bad, strlen(bad), "cfg.json", &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, "cfg.json: n_group: must be >= 1 and divide n_routed_experts (6 experts, n_group 4)") != NULL, "%s", e.msg);
    const char *mt = "{\"model_type\":\"gpt2\"}";
    CHECK(t, config_from_string(&c, mt, strlen(mt), "x.json", &e) == DS_ERR && strstr(e.msg, "gpt2"));
    const char *miss = "{\"model_type\":\"llama\",\"vocab_size\":10}";
    CHECK(t, config_from_string(&c, miss, strlen(miss), "m.json", &e) == DS_ERR &&
                 strstr(e.msg, "missing required key 'hidden_size'"));
    const char *gqa = "{\"model_type\":\"llama\",\"vocab_size\":10,\"hidden_size\":12,"
                      "\"intermediate_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":3,"
                      "\"num_key_value_heads\":2}";
    CHECK(t, config_from_string(&c, gqa, strlen(gqa), "g.json", &e) == DS_ERR &&
                 strstr(e.msg, "multiple of num_key_value_heads"));
    // Round trip through config_to_json.
    ModelConfig a = load_cfg(t, CFG_V3_NOQ_YARN_TIED), b2;
    json_t *j = config_to_json(&a);
    CHECK(t, config_from_json(&b2, j, "rt", &e) == DS_OK && config_equal(&a, &b2));
    json_decref(j);
}

static void layout_names(T *t) {
    ModelConfig c = load_cfg(t, CFG_V3);
    ModelLayout L;
    layout_build(&L, &c);
    const char *names[] = {"model.embed_tokens.weight", "model.layers.0.mlp.gate_proj.weight",
                           "model.layers.1.self_attn.q_a_proj.weight",
                           "model.layers.1.self_attn.kv_a_proj_with_mqa.weight",
                           "model.layers.1.mlp.experts.5.down_proj.weight",
                           "model.layers.1.mlp.gate.e_score_correction_bias",
                           "model.layers.1.mlp.shared_experts.up_proj.weight",
                           "model.layers.2.eh_proj.weight", "model.layers.2.shared_head.norm.weight",
                           "model.norm.weight", "lm_head.weight"};
    for (size_t i = 0; i < DS_ARRAY_LEN(names); i++) CHECKF(t, layout_find(&L, names[i]), "%s", names[i]);
    const ParamInfo *kvb = layout_find(&L, "model.layers.1.self_attn.kv_b_proj.weight");
    CHECK(t, kvb && kvb->shape[0] == 2 * (4 + 6) && kvb->shape[1] == 8);
    CHECK(t, layout_find(&L, "model.layers.1.mlp.gate.e_score_correction_bias")->flags & PARAM_FROZEN);
    layout_free(&L);
}

UNIT_MAIN(CASE(gradcheck_v3), CASE(gradcheck_v3_yarn_tied_mtp2), CASE(gradcheck_llama),
          CASE(gradcheck_qwen2), CASE(op_rmsnorm), CASE(op_swiglu), CASE(op_logprob),
          CASE(op_attention), CASE(op_rope), CASE(route_bias_forces_expert),
          CASE(route_group_limited), CASE(f32_matches_f64), CASE(causal_and_packed),
          CASE(config_errors), CASE(layout_names))
