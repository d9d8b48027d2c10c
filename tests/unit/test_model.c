// test_model.c — gradient checks of every op and of whole models against central finite
// differences in double precision, and closed-form cases (RoPE, routing, causality, packing).
#include <math.h>

#include "checkpoint/config.h"
#include "nn/model.h"
#include "nn/moe.h"
#include "nn/ops.h"
#include "core/rng.h"
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
// the ops shared by the training model and the inference engine (double precision)

// MoE dispatch and combine: rows sorted by expert (stable), gather/scatter and gate products.
static void op_moe_dispatch_combine(T *t) {
    enum { N = 5, K = 2, E = 4, D = 3 };
    int idx[N * K] = {0, 2, 1, 2, 0, 3, 2, 3, 1, 2}, perm[N * K], eoff[E + 1];
    double x[N * D], xe[N * K * D], wxe[N * K * D], dx[N * D] = {0};
    double ye[N * K * D], gate[N * K], out[N * D], wout[N * D], dye[N * K * D], dgate[N * K];
    Rng r;
    rng_seed(&r, 21);
    fill(x, N * D, &r), fill(wxe, N * K * D, &r), fill(ye, N * K * D, &r), fill(gate, N * K, &r);
    fill(wout, N * D, &r);
    moe_dispatch_forward_f64(xe, perm, eoff, idx, x, N, K, E, D);
    int want_off[E + 1] = {0, 2, 4, 8, 10}, want_perm[N * K] = {0, 4, 2, 8, 1, 3, 6, 9, 5, 7};
    for (int e = 0; e <= E; e++) CHECK(t, eoff[e] == want_off[e]);
    for (int i = 0; i < N * K; i++) CHECK(t, perm[i] == want_perm[i]);
    moe_dispatch_backward_f64(dx, wxe, perm, N, K, D);
#define DISPATCH_LOSS (moe_dispatch_forward_f64(xe, perm, eoff, idx, x, N, K, E, D), dot(xe, wxe, N * K * D))
    OP_CHECK(t, x, N * D, dx, DISPATCH_LOSS, 1e-7);
    moe_combine_backward_f64(dye, dgate, wout, ye, gate, perm, N, K, D);
#define COMBINE_LOSS (memset(out, 0, sizeof out), moe_combine_forward_f64(out, ye, gate, perm, N, K, D), dot(out, wout, N * D))
    OP_CHECK(t, ye, N * K * D, dye, COMBINE_LOSS, 1e-7);
    OP_CHECK(t, gate, N * K, dgate, COMBINE_LOSS, 1e-7);
}

// Balancing bias: underloaded experts move up by γ, overloaded down, the mean-loaded stay.
static void op_moe_bias_update(T *t) {
    long load[4] = {1, 3, 2, 6};
    double bias[4] = {0, 0, 0, 0};
    double ratio = moe_bias_update_f64(bias, load, 4, 0.5);
    CHECK_CLOSE(t, ratio, 2.0, 1e-12);
    CHECK(t, bias[0] == 0.5 && bias[1] == 0 && bias[2] == 0.5 && bias[3] == -0.5);
    long none[4] = {0};
    CHECK(t, moe_bias_update_f64(bias, none, 4, 0.5) == 0);
}

// MLA keys/values: per-head [k_nope | shared rotary key] and values, and their gradients.
static void op_mla_kv(T *t) {
    enum { N = 3, H = 2, DN = 3, DR = 2, DV = 4, LDP = 5 };
    double kvb[N * H * (DN + DV)], kpe[N * LDP], k[N * H * (DN + DR)], v[N * H * DV];
    double wk[N * H * (DN + DR)], wv[N * H * DV], dkvb[N * H * (DN + DV)], dpe[N * DR];
    Rng r;
    rng_seed(&r, 22);
    fill(kvb, sizeof kvb / 8, &r), fill(kpe, sizeof kpe / 8, &r), fill(wk, sizeof wk / 8, &r);
    fill(wv, sizeof wv / 8, &r);
    mla_kv_forward_f64(k, H * (DN + DR), v, H * DV, kvb, kpe + 1, LDP, N, H, DN, DR, DV);
    CHECK(t, k[(DN + DR) + DN] == kpe[1] && k[2 * H * (DN + DR) + DN + 1] == kpe[2 * LDP + 2]);
    CHECK(t, v[DV] == kvb[(DN + DV) + DN]);
    // gradient w.r.t. kpe's used columns, gathered into dpe's [N, DR] layout
    mla_kv_backward_f64(dkvb, dpe, wk, wv, N, H, DN, DR, DV);
#define MLA_LOSS (mla_kv_forward_f64(k, H * (DN + DR), v, H * DV, kvb, kpe + 1, LDP, N, H, DN, DR, DV), \
                  dot(k, wk, sizeof k / 8) + dot(v, wv, sizeof v / 8))
    OP_CHECK(t, kvb, sizeof kvb / 8, dkvb, MLA_LOSS, 1e-6);
    double pe[N * DR];
    for (int n = 0; n < N; n++)
        for (int i = 0; i < DR; i++) pe[n * DR + i] = kpe[n * LDP + 1 + i];
#define MLA_PE_LOSS (({ for (int n_ = 0; n_ < N; n_++) for (int i_ = 0; i_ < DR; i_++) kpe[n_ * LDP + 1 + i_] = pe[n_ * DR + i_]; }), MLA_LOSS)
    OP_CHECK(t, pe, N * DR, dpe, MLA_PE_LOSS, 1e-7);
}

// Column concatenation (the MTP input) and the row gathers/scatters of the engine.
static void op_concat_rows(T *t) {
    enum { N = 3, CA = 2, CB = 3 };
    double a[N * CA], b[N * CB], out[N * (CA + CB)], w[N * (CA + CB)], da[N * CA], db[N * CB];
    Rng r;
    rng_seed(&r, 23);
    fill(a, N * CA, &r), fill(b, N * CB, &r), fill(w, N * (CA + CB), &r);
    concat_cols_backward_f64(da, db, w, CA, CB, N);
#define CAT_LOSS (concat_cols_forward_f64(out, a, CA, b, CB, N), dot(out, w, N * (CA + CB)))
    OP_CHECK(t, a, N * CA, da, CAT_LOSS, 1e-7);
    OP_CHECK(t, b, N * CB, db, CAT_LOSS, 1e-7);
    double g[2 * CB], cache[10] = {0};
    int rows[2] = {2, 0};
    gather_rows_f64(g, b, rows, 2, CB);
    CHECK(t, g[0] == b[2 * CB] && g[CB + 2] == b[2]);
    size_t at[2] = {7, 1};
    scatter_rows_f64(cache, at, b, CB, 2, 2);
    CHECK(t, cache[7] == b[0] && cache[8] == b[1] && cache[1] == b[CB] && cache[9] == 0);
    int tok[8] = {1, 2, 3, 4, 5, 6, 7, 8}, tgt[8] = {2, 3, 4, 9, 6, 7, 8, 9}, pos[8] = {0, 1, 2, 0, 0, 1, 2, 3};
    int st[8], sg[8];
    mtp_shift_tokens_f64(st, tok, 2, 4, 1);
    mtp_shift_targets_f64(sg, tgt, pos, 2, 4, 1);
    int want_t[8] = {2, 3, 4, 0, 6, 7, 8, 0}, want_g[8] = {3, 4, -1, -1, 7, 8, 9, -1};
    for (int i = 0; i < 8; i++) CHECK(t, st[i] == want_t[i] && sg[i] == want_g[i]);
}

// Logit distillation: the loss's gradient matches finite differences; KL is 0 against itself.
static void op_distill(T *t) {
    enum { N = 3, V = 5 };
    int targets[N] = {1, -1, 4};
    double s[N * V], te[N * V], d[N * V], ce, Tm = 2.0, alpha = 0.3, w = 0.5;
    Rng r;
    rng_seed(&r, 24);
    fill(s, N * V, &r), fill(te, N * V, &r);
    distill_forward_backward_f64(d, &ce, s, te, targets, N, V, Tm, alpha, w);
#define DISTILL_LOSS ({ double ce_, kl_ = distill_forward_backward_f64(dd, &ce_, s, te, targets, N, V, Tm, alpha, w); \
                        w * ((1 - alpha) * kl_ + alpha * ce_); })
    double dd[N * V];
    OP_CHECK(t, s, N * V, d, DISTILL_LOSS, 1e-7);
    for (int i = 0; i < V; i++) CHECK(t, d[V + i] == 0); // ignored row
    CHECK(t, fabs(distill_forward_backward_f64(d, &ce, s, s, targets, N, V, Tm, 0, 1)) < 1e-12);
    // entropy: uniform logits give log V; ignored rows 0
    double z[N * V] = {0}, lp[N], lse[N], ent[N];
    logprob_forward_f64(lp, lse, z, targets, N, V);
    entropy_forward_f64(ent, z, lse, targets, N, V);
    CHECK_CLOSE(t, ent[0], log((double)V), 1e-12);
    CHECK(t, ent[1] == 0);
}

// Optimizer ops: Σx² has gradient 2x; AdamW's first bias-corrected step moves each weight by
// lr·sign(g) (eps ≪ |g|), plus decay; the float op matches the double one.
static void op_optimizer(T *t) {
    enum { n = 6 };
    double x[n], gx[n];
    Rng r;
    rng_seed(&r, 25);
    fill(x, n, &r);
    for (int i = 0; i < n; i++) gx[i] = 2 * x[i];
    OP_CHECK(t, x, n, gx, sumsq_acc_f64(0, x, n), 1e-7);
    CHECK_CLOSE(t, sumsq_acc_f64(1.5, x, n), 1.5 + sumsq_acc_f64(0, x, n), 1e-12);
    double w[n], m[n] = {0}, v[n] = {0}, g[n];
    float w32[n], m32[n] = {0}, v32[n] = {0}, g32[n];
    fill(w, n, &r), fill(g, n, &r);
    for (int i = 0; i < n; i++) w32[i] = (float)w[i], g32[i] = (float)g[i];
    double lr = 0.01, b1 = 0.9, b2 = 0.95, c1 = 1 / (1 - b1), c2 = 1 / (1 - b2), wd = lr * 0.1;
    double w0[n];
    memcpy(w0, w, sizeof w);
    adamw_update_f64(w, m, v, g, n, lr, b1, b2, c1, c2, 1e-12, wd, 1.0);
    adamw_update_f32(w32, m32, v32, g32, n, lr, b1, b2, c1, c2, 1e-12, wd, 1.0);
    for (int i = 0; i < n; i++) {
        CHECK_CLOSE(t, w[i], w0[i] - lr * (g[i] > 0 ? 1 : -1) - wd * w0[i], 1e-9);
        CHECK_CLOSE(t, w32[i], w[i], 1e-6);
    }
    // linear_forward_add adds the product to what out holds
    double a[2 * 3], b[4 * 3], o1[2 * 4], o2[2 * 4];
    fill(a, 6, &r), fill(b, 12, &r), fill(o1, 8, &r);
    memcpy(o2, o1, sizeof o1);
    linear_forward_add_f64(o1, a, b, 2, 3, 4);
    double p[8];
    linear_forward_f64(p, a, b, NULL, 2, 3, 4);
    for (int i = 0; i < 8; i++) CHECK_CLOSE(t, o1[i], o2[i] + p[i], 1e-12);
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

// A forward-only activation set (reference and teacher models) gives the same main logits in
// one smaller allocation: no MTP modules, no logits gradients, no backward scratch.
static void acts_forward_only(T *t) {
    ModelConfig c = load_cfg(t, CFG_V3);
    Model_f32 m;
    model_init_f32(&m, &c, 0, 64);
    Model_f64 m64;
    model_init_f64(&m64, &c, 0, 64);
    model_init_weights_f64(&m64, 12);
    for (size_t i = 0; i < m.L.total; i++) m.params[i] = (float)m64.params[i];
    Batch b = make_batch(c.vocab_size, 2, 8, 6);
    Acts_f32 full, fwd;
    acts_init_f32(&full, &m, 2, 8);
    acts_init_forward_f32(&fwd, &m, 2, 8);
    model_forward_f32(&m, &full, b.tokens, b.pos, 2, 8);
    model_forward_f32(&m, &fwd, b.tokens, b.pos, 2, 8);
    CHECK(t, memcmp(full.logits, fwd.logits, sizeof(float) * 16 * c.vocab_size) == 0);
    CHECK(t, fwd.dlogits == NULL && fwd.mtp[0].logits == NULL && fwd.dres == NULL);
    CHECKF(t, fwd.bytes * 2 < full.bytes, "forward-only %zu bytes, full %zu", fwd.bytes, full.bytes);
    acts_free_f32(&full), acts_free_f32(&fwd);
    model_free_f32(&m), model_free_f64(&m64);
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
          CASE(config_errors), CASE(layout_names), CASE(op_moe_dispatch_combine),
          CASE(op_moe_bias_update), CASE(op_mla_kv), CASE(op_concat_rows), CASE(op_distill),
          CASE(op_optimizer), CASE(acts_forward_only))
