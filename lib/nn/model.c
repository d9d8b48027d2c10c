// model.c — forward, losses and backward of the whole model over `real` (see real.h).
#include "nn/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/moe.h"
#include "nn/ops.h"
#include "nn/real.h"
#include "core/rng.h"

typedef R_(Model) Model;
typedef R_(Acts) Acts;
typedef R_(BlockActs) BlockActs;
typedef R_(MtpActs) MtpActs;

// Buffers are backend memory: drivers zero and copy them through the model's backend only.
static void zero(const Model *m, real *p, size_t n) { m->be->zero(p, sizeof(real) * n); }
static void copy(const Model *m, real *dst, const real *src, size_t n) {
    m->be->copy(dst, src, sizeof(real) * n);
}

// ----------------------------------------------------------------------------
// lifecycle

void R_(model_init)(Model *m, const ModelConfig *c, int with_grads, int max_pos) {
    memset(m, 0, sizeof *m);
    m->be = backend_cpu();
    layout_build(&m->L, c);
    rope_init(&m->rope, c, max_pos);
    m->params = m->be->alloc(sizeof(real) * m->L.total);
    m->grads = with_grads ? m->be->alloc(sizeof(real) * m->L.total) : NULL;
}

void R_(model_free)(Model *m) {
    if (!m) return;
    layout_free(&m->L);
    rope_free(&m->rope);
    if (m->be) m->be->free(m->params), m->be->free(m->grads);
    memset(m, 0, sizeof *m);
}

// Drawn on the host, one tensor at a time, and uploaded (a checkpoint-I/O crossing).
void R_(model_init_weights)(Model *m, uint64_t seed) {
    size_t most = 0;
    for (int i = 0; i < m->L.np; i++) most = DS_MAX(most, m->L.p[i].numel);
    real *w = ds_malloc(sizeof(real) * (most ? most : 1));
    for (int i = 0; i < m->L.np; i++) {
        const ParamInfo *p = &m->L.p[i];
        Rng r;
        rng_derive(&r, seed, (uint64_t)i, 0x1417);
        for (size_t j = 0; j < p->numel; j++)
            w[j] = p->init_ones ? 1 : p->init_std > 0 ? (real)(p->init_std * rng_normal(&r)) : 0;
        m->be->upload(m->params + p->offset, w, sizeof(real) * p->numel);
    }
    free(w);
    R_(model_params_changed)(m);
}

// Activations live in one backend allocation: acts_layout runs twice, first over an empty plan to
// size the buffer (every pointer it hands out is NULL), then over the buffer to point into it.
static real *alloc(BufPlan *p, size_t n) { return bufplan_take(p, sizeof(real) * n); }
static int *alloc_int(BufPlan *p, size_t n) { return bufplan_take(p, sizeof(int) * n); }

// Grows *cap to the largest operand of a Linear layer over `rows` tokens: input, output gradient
// and weight, which is what the precision scratch must hold.
static void linear_operand(size_t *cap, size_t rows, size_t in, size_t out) {
    *cap = DS_MAX(*cap, DS_MAX(rows * in, DS_MAX(rows * out, in * out)));
}

// Points every buffer of a (B*T tokens) into the plan; returns the largest Linear operand.
static size_t acts_layout(Acts *a, const Model *m, int B, int T, BufPlan *p) {
    const ModelConfig *c = &m->L.cfg;
    size_t N = (size_t)B * T, d = c->hidden_size, V = c->vocab_size, H = c->num_attention_heads;
    size_t Hkv = config_kv_heads(c), dqk = config_qk_head_dim(c), dv = config_v_head_dim(c);
    size_t rq = c->q_lora_rank, rkv = c->kv_lora_rank, dr = c->qk_rope_head_dim;
    size_t E = c->n_routed_experts, K = c->num_experts_per_tok, Fm = c->moe_intermediate_size;
    int nl = m->L.nlayers, nb = nl + m->L.nmtp;
    int v3 = c->arch == ARCH_DEEPSEEK_V3;
    int fwd = a->forward_only;
    a->tokens = alloc_int(p, N);
    a->pos = alloc_int(p, N);
    a->resid = alloc(p, (size_t)(nl + 1) * N * d);
    size_t max_ffn = 0, max_act = 0; // scratch sizes for the FFN backward
    size_t prec_cap = 0;             // largest Linear operand, for the precision scratch
    if (fwd) nb = nl; // no MTP modules: nothing reads their logits
    for (int l = 0; l < nb; l++) {
        BlockActs *b = &a->blk[l];
        const LayerLayout *y = &m->L.layers[l];
        b->h1 = alloc(p, N * d), b->rstd1 = alloc(p, N);
        linear_operand(&prec_cap, N, H * dv, d);
        if (v3) {
            linear_operand(&prec_cap, N, rq ? d : 0, rq);
            linear_operand(&prec_cap, N, rq ? rq : d, H * dqk);
            linear_operand(&prec_cap, N, d, rkv + dr);
            linear_operand(&prec_cap, N, rkv, H * (c->qk_nope_head_dim + dv));
            if (rq) b->cq = alloc(p, N * rq), b->cqn = alloc(p, N * rq), b->rstd_q = alloc(p, N);
            b->kva = alloc(p, N * (rkv + dr));
            b->ckv = alloc(p, N * rkv), b->ckvn = alloc(p, N * rkv), b->rstd_kv = alloc(p, N);
            b->kvb = alloc(p, N * H * (c->qk_nope_head_dim + dv));
        } else {
            b->qkv = alloc(p, N * (H + 2 * Hkv) * dqk);
            linear_operand(&prec_cap, N, d, (H + 2 * Hkv) * dqk);
        }
        b->qf = alloc(p, N * H * dqk), b->kf = alloc(p, N * Hkv * dqk), b->vf = alloc(p, N * Hkv * dv);
        b->att = alloc(p, (size_t)B * H * T * T);
        b->ao = alloc(p, N * H * dv);
        b->x_mid = alloc(p, N * d), b->h2 = alloc(p, N * d), b->rstd2 = alloc(p, N);
        size_t F = y->moe ? Fm * c->n_shared_experts : (size_t)c->intermediate_size;
        if (F) b->gu = alloc(p, N * 2 * F), b->act = alloc(p, N * F);
        linear_operand(&prec_cap, N, d, 2 * F);
        max_ffn = DS_MAX(max_ffn, N * 2 * F), max_act = DS_MAX(max_act, N * F);
        if (y->moe) {
            b->rlogit = alloc(p, N * E), b->score = alloc(p, N * E), b->gate = alloc(p, N * K);
            b->idx = alloc_int(p, N * K), b->perm = alloc_int(p, N * K), b->eoff = alloc_int(p, E + 1);
            b->xe = alloc(p, N * K * d), b->gue = alloc(p, N * K * 2 * Fm);
            b->acte = alloc(p, N * K * Fm), b->ye = alloc(p, N * K * d);
            max_ffn = DS_MAX(max_ffn, N * K * 2 * Fm), max_act = DS_MAX(max_act, N * K * Fm);
            linear_operand(&prec_cap, N * K, d, 2 * Fm);
        }
    }
    a->xf = alloc(p, N * d), a->rstd_f = alloc(p, N), a->logits = alloc(p, N * V);
    a->lse = alloc(p, N), a->lp = alloc(p, N);
    if (fwd) return prec_cap;
    a->dlogits = alloc(p, N * V);
    for (int k = 0; k < m->L.nmtp; k++) {
        MtpActs *t = &a->mtp[k];
        t->tok = alloc_int(p, N), t->targets = alloc_int(p, N);
        t->emb = alloc(p, N * d), t->en = alloc(p, N * d), t->rstd_e = alloc(p, N);
        t->hn = alloc(p, N * d), t->rstd_h = alloc(p, N), t->cat = alloc(p, N * 2 * d);
        t->x0 = alloc(p, N * d), t->x_out = alloc(p, N * d);
        t->xf = alloc(p, N * d), t->rstd_f = alloc(p, N), t->logits = alloc(p, N * V);
        t->lse = alloc(p, N), t->lp = alloc(p, N), t->dlogits = alloc(p, N * V);
        linear_operand(&prec_cap, N, 2 * d, d);
    }
    size_t latent = DS_MAX(rq, rkv);
    a->dres = alloc(p, N * d), a->dcur = alloc(p, N * d), a->dprev = alloc(p, N * d);
    a->dh = alloc(p, N * d), a->dao = alloc(p, N * H * dv);
    a->dq = alloc(p, N * H * dqk), a->dk = alloc(p, N * Hkv * dqk), a->dv = alloc(p, N * Hkv * dv);
    a->datt = alloc(p, (size_t)T * T);
    if (v3) {
        a->dkvb = alloc(p, N * H * (c->qk_nope_head_dim + dv));
        a->dlat = alloc(p, N * latent), a->dlat2 = alloc(p, N * latent);
        a->dkva = alloc(p, N * (rkv + dr));
    } else {
        a->dqkv = alloc(p, N * (H + 2 * Hkv) * dqk);
    }
    a->dgu = alloc(p, max_ffn), a->dact = alloc(p, max_act);
    if (E) {
        a->dxe = alloc(p, N * K * d), a->dye = alloc(p, N * K * d);
        a->dgate = alloc(p, N * K), a->drlogit = alloc(p, N * E);
    }
    a->dcat = alloc(p, N * 2 * d);
    a->dsmall = alloc(p, N * DS_MAX(dr, 1));
    return prec_cap;
}

void R_(acts_init_mode)(Acts *a, const Model *m, int B, int T, int forward_only) {
    memset(a, 0, sizeof *a);
    int nb = m->L.nlayers + m->L.nmtp, E = m->L.cfg.n_routed_experts;
    a->B = B, a->T = T, a->N = B * T;
    a->cap_N = B * T, a->cap_T = T;
    a->forward_only = forward_only;
    a->be = m->be;
    a->blk = ds_calloc((size_t)nb, sizeof(BlockActs));
    a->mtp = ds_calloc((size_t)(m->L.nmtp ? m->L.nmtp : 1), sizeof(MtpActs));
    a->load = ds_calloc((size_t)nb * (E ? E : 1), sizeof(long));
    BufPlan plan = {0};
    acts_layout(a, m, B, T, &plan);
    a->bytes = plan.used;
    a->buf = a->be->alloc(a->bytes);
    plan = (BufPlan){.base = a->buf};
    size_t prec_cap = acts_layout(a, m, B, T, &plan);
    DS_CHECK(plan.used == a->bytes);
#ifdef DS_REAL_F64
    precision_scratch_init(&a->prec, PRECISION_FP32, prec_cap); // the double build computes exactly
#else
    precision_scratch_init(&a->prec, m->precision, prec_cap);
#endif
}

void R_(acts_init)(Acts *a, const Model *m, int B, int T) { R_(acts_init_mode)(a, m, B, T, 0); }
void R_(acts_init_forward)(Acts *a, const Model *m, int B, int T) {
    R_(acts_init_mode)(a, m, B, T, 1);
}

void R_(acts_free)(Acts *a) {
    if (!a) return;
    if (a->be) a->be->free(a->buf);
    precision_scratch_free(&a->prec);
    free(a->blk);
    free(a->mtp);
    free(a->load);
    memset(a, 0, sizeof *a);
}

// ----------------------------------------------------------------------------
// forward

// Every Linear layer of the blocks and MTP modules runs through linear_fwd and linear_bwd, so the
// precision mode is decided here and nowhere else. The embedding, output head and router call the
// ops directly: V3 keeps them in higher precision, like the norms and the attention core.

// out[N,OC] = inp[N,C]·w[OC,C]ᵀ (+ bias[OC]); with add, out += inp·wᵀ instead.
static void linear_fwd(const Model *m, Acts *a, real *out, const real *inp, const real *w,
                       const real *bias, int N, int C, int OC, int add) {
#ifndef DS_REAL_F64
    if (m->precision != PRECISION_FP32) {
        precision_linear_forward(&a->prec, out, inp, w, bias, N, C, OC, add ? 1.0f : 0.0f);
        return;
    }
#else
    (void)m, (void)a;
#endif
    if (!add) {
        R_(linear_forward)(out, inp, w, bias, N, C, OC);
        return;
    }
    DS_CHECK(!bias);
    R_(linear_forward_add)(out, inp, w, N, C, OC);
}

// dinp[N,C] += dout·w; dw[OC,C] += doutᵀ·inp; dbias[OC] += Σ_n dout (NULL skips).
static void linear_bwd(const Model *m, Acts *a, real *dinp, real *dw, real *dbias, const real *dout,
                       const real *inp, const real *w, int N, int C, int OC) {
#ifndef DS_REAL_F64
    if (m->precision != PRECISION_FP32) {
        precision_linear_backward(&a->prec, dinp, dw, dbias, dout, inp, w, N, C, OC);
        return;
    }
#else
    (void)m, (void)a;
#endif
    R_(linear_backward)(dinp, dw, dbias, dout, inp, w, N, C, OC);
}

static void attention_inputs_mla(const Model *m, Acts *a, BlockActs *b, const LayerLayout *y,
                                 const int *pos, int N) {
    const ModelConfig *c = &m->L.cfg;
    const real *P = m->params;
    int d = c->hidden_size, H = c->num_attention_heads, dn = c->qk_nope_head_dim;
    int dr = c->qk_rope_head_dim, dv = c->v_head_dim, rq = c->q_lora_rank, rkv = c->kv_lora_rank;
    int dqk = dn + dr;
    if (rq) {
        linear_fwd(m, a, b->cq, b->h1, P + y->q_a, NULL, N, d, rq, 0);
        R_(rmsnorm_forward)(b->cqn, b->rstd_q, b->cq, P + y->q_a_norm, N, rq, c->rms_norm_eps);
        linear_fwd(m, a, b->qf, b->cqn, P + y->q_b, NULL, N, rq, H * dqk, 0);
    } else {
        linear_fwd(m, a, b->qf, b->h1, P + y->q_b, NULL, N, d, H * dqk, 0);
    }
    if (dr) R_(rope_apply)(b->qf + dn, pos, N, H, H * dqk, dqk, &m->rope, 0);
    linear_fwd(m, a, b->kva, b->h1, P + y->kv_a, NULL, N, d, rkv + dr, 0);
    R_(copy_cols)(b->ckv, b->kva, N, rkv + dr, 0, rkv);
    R_(rmsnorm_forward)(b->ckvn, b->rstd_kv, b->ckv, P + y->kv_a_norm, N, rkv, c->rms_norm_eps);
    linear_fwd(m, a, b->kvb, b->ckvn, P + y->kv_b, NULL, N, rkv, H * (dn + dv), 0);
    // Keys: per-head nope part from kv_b, and ONE rotary key shared by all heads (rotated in
    // place in kva, whose raw rotary part nothing else reads).
    if (dr) R_(rope_apply)(b->kva + rkv, pos, N, 1, rkv + dr, dr, &m->rope, 0);
    R_(mla_kv_forward)(b->kf, H * dqk, b->vf, H * dv, b->kvb, b->kva + rkv, rkv + dr, N, H, dn, dr, dv);
}

static void attention_inputs_gqa(const Model *m, Acts *a, BlockActs *b, const LayerLayout *y,
                                 const int *pos, int N) {
    const ModelConfig *c = &m->L.cfg;
    int d = c->hidden_size, H = c->num_attention_heads, Hkv = c->num_key_value_heads, hd = c->head_dim;
    int W = (H + 2 * Hkv) * hd;
    linear_fwd(m, a, b->qkv, b->h1, m->params + y->qkv,
               c->attention_bias ? m->params + y->qkv_bias : NULL, N, d, W, 0);
    R_(copy_cols)(b->qf, b->qkv, N, W, 0, H * hd);
    R_(copy_cols)(b->kf, b->qkv, N, W, H * hd, Hkv * hd);
    R_(copy_cols)(b->vf, b->qkv, N, W, (H + Hkv) * hd, Hkv * hd);
    R_(rope_apply)(b->qf, pos, N, H, H * hd, hd, &m->rope, 0);
    R_(rope_apply)(b->kf, pos, N, Hkv, Hkv * hd, hd, &m->rope, 0);
}

static void moe_forward(const Model *m, Acts *a, BlockActs *b, const LayerLayout *y, real *x_out,
                        int N, long *load) {
    const ModelConfig *c = &m->L.cfg;
    const real *P = m->params;
    int d = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok;
    int F = c->moe_intermediate_size;
    R_(linear_forward)(b->rlogit, b->h2, P + y->router, NULL, N, d, E);
    R_(moe_route_forward)(b->idx, b->gate, b->score, b->rlogit, P + y->router_bias, c, N);
    // Rows sorted by expert: each expert then runs one GEMM over just the tokens routed to it, so
    // compute scales with active experts.
    R_(moe_dispatch_forward)(b->xe, b->perm, b->eoff, b->idx, b->h2, N, K, E, d);
    for (int e = 0; e < E; e++) {
        int r0 = b->eoff[e], ne = b->eoff[e + 1] - r0;
        load[e] += ne;
        if (!ne) continue;
        const real *wgu = P + y->experts + (size_t)e * y->expert_stride;
        const real *wd = wgu + (size_t)2 * F * d;
        linear_fwd(m, a, b->gue + (size_t)r0 * 2 * F, b->xe + (size_t)r0 * d, wgu, NULL, ne, d, 2 * F, 0);
        R_(swiglu_forward)(b->acte + (size_t)r0 * F, b->gue + (size_t)r0 * 2 * F, ne, F);
        linear_fwd(m, a, b->ye + (size_t)r0 * d, b->acte + (size_t)r0 * F, wd, NULL, ne, F, d, 0);
    }
    R_(moe_combine_forward)(x_out, b->ye, b->gate, b->perm, N, K, d);
}

static void block_forward(const Model *m, Acts *a, BlockActs *b, const LayerLayout *y, real *x_out,
                          const int *pos, int B, int T, long *load) {
    const ModelConfig *c = &m->L.cfg;
    const real *P = m->params;
    int N = B * T, d = c->hidden_size, H = c->num_attention_heads, Hkv = config_kv_heads(c);
    int dqk = config_qk_head_dim(c), dv = config_v_head_dim(c);
    R_(rmsnorm_forward)(b->h1, b->rstd1, b->x_in, P + y->attn_norm, N, d, c->rms_norm_eps);
    if (c->arch == ARCH_DEEPSEEK_V3) attention_inputs_mla(m, a, b, y, pos, N);
    else attention_inputs_gqa(m, a, b, y, pos, N);
    R_(attention_forward)(b->ao, b->att, b->qf, b->kf, b->vf, pos, B, T, H, Hkv, dqk, dv,
                          config_softmax_scale(c));
    copy(m, b->x_mid, b->x_in, (size_t)N * d);
    linear_fwd(m, a, b->x_mid, b->ao, P + y->o, NULL, N, H * dv, d, 1);
    R_(rmsnorm_forward)(b->h2, b->rstd2, b->x_mid, P + y->ffn_norm, N, d, c->rms_norm_eps);
    copy(m, x_out, b->x_mid, (size_t)N * d);
    size_t gu = y->moe ? y->shared_gate_up : y->gate_up, down = y->moe ? y->shared_down : y->down;
    int F = y->moe ? c->moe_intermediate_size * c->n_shared_experts : c->intermediate_size;
    if (F) {
        linear_fwd(m, a, b->gu, b->h2, P + gu, NULL, N, d, 2 * F, 0);
        R_(swiglu_forward)(b->act, b->gu, N, F);
        linear_fwd(m, a, x_out, b->act, P + down, NULL, N, F, d, 1);
    }
    if (y->moe) moe_forward(m, a, b, y, x_out, N, load);
}

static void head_forward(const Model *m, real *xf, real *rstd, real *logits, const real *x,
                         size_t norm, int N) {
    const ModelConfig *c = &m->L.cfg;
    R_(rmsnorm_forward)(xf, rstd, x, m->params + norm, N, c->hidden_size, c->rms_norm_eps);
    R_(linear_forward)(logits, xf, m->params + m->L.lm_head, NULL, N, c->hidden_size, c->vocab_size);
}

void R_(model_forward)(Model *m, Acts *a, const int *tokens, const int *pos, int B, int T) {
    const ModelConfig *c = &m->L.cfg;
    DS_CHECK(B * T <= a->cap_N && T <= a->cap_T);
    int N = B * T, d = c->hidden_size, nl = m->L.nlayers, E = DS_MAX(c->n_routed_experts, 1);
    a->B = B, a->T = T, a->N = N;
    m->be->upload(a->tokens, tokens, sizeof(int) * (size_t)N);
    m->be->upload(a->pos, pos, sizeof(int) * (size_t)N);
    R_(embedding_forward)(a->resid, tokens, m->params + m->L.embed, N, d);
    for (int l = 0; l < nl; l++) {
        a->blk[l].x_in = a->resid + (size_t)l * N * d;
        block_forward(m, a, &a->blk[l], &m->L.layers[l], a->resid + (size_t)(l + 1) * N * d, pos, B, T,
                      a->load + (size_t)l * E);
    }
    const real *h_prev = a->resid + (size_t)nl * N * d;
    head_forward(m, a->xf, a->rstd_f, a->logits, h_prev, m->L.final_norm, N);
    for (int k = 0; k < (a->forward_only ? 0 : m->L.nmtp); k++) {
        MtpActs *t = &a->mtp[k];
        const LayerLayout *y = &m->L.layers[nl + k];
        int depth = k + 1;
        R_(mtp_shift_tokens)(t->tok, a->tokens, B, T, depth);
        R_(embedding_forward)(t->emb, t->tok, m->params + m->L.embed, N, d);
        R_(rmsnorm_forward)(t->en, t->rstd_e, t->emb, m->params + y->enorm, N, d, c->rms_norm_eps);
        R_(rmsnorm_forward)(t->hn, t->rstd_h, h_prev, m->params + y->hnorm, N, d, c->rms_norm_eps);
        // [embedding | hidden], the order of the released weights.
        R_(concat_cols_forward)(t->cat, t->en, d, t->hn, d, N);
        linear_fwd(m, a, t->x0, t->cat, m->params + y->eh_proj, NULL, N, 2 * d, d, 0);
        a->blk[nl + k].x_in = t->x0;
        block_forward(m, a, &a->blk[nl + k], y, t->x_out, pos, B, T, a->load + (size_t)(nl + k) * E);
        head_forward(m, t->xf, t->rstd_f, t->logits, t->x_out, y->head_norm, N);
        h_prev = t->x_out;
    }
}

// ----------------------------------------------------------------------------
// losses

// Cross-entropy over valid targets: fills lp, lse and dlogits (scaled by weight / nvalid).
static double ce(real *dlogits, real *lp, real *lse, const real *logits, const int *targets, int N,
                 int V, double weight, long *nvalid) {
    long n = 0;
    for (int i = 0; i < N; i++) n += targets[i] >= 0;
    double sum = R_(logprob_forward)(lp, lse, logits, targets, N, V);
    // dlp reuses lp's storage after the sum is taken; dL/dlp = -weight/n.
    real g = n ? (real)(-weight / n) : 0;
    R_(fill)(lp, N, g);
    R_(logprob_backward)(dlogits, lp, logits, lse, targets, N, V);
    *nvalid = n;
    return n ? -sum / n : 0;
}

void R_(model_loss)(Model *m, Acts *a, const int *targets, double mtp_lambda, double balance_alpha,
                    double grad_scale, ModelLossStats *st) {
    const ModelConfig *c = &m->L.cfg;
    int N = a->N, B = a->B, T = a->T, V = c->vocab_size, nl = m->L.nlayers, D = m->L.nmtp;
    DS_CHECK(!a->forward_only);
    memset(st, 0, sizeof *st);
    st->loss = ce(a->dlogits, a->lp, a->lse, a->logits, targets, N, V, grad_scale, &st->ntokens);
    for (int k = 0; k < D; k++) {
        MtpActs *t = &a->mtp[k];
        int depth = k + 1;
        // Depth k predicts token i+k+1 = the target of position i+k, if still in the same document.
        R_(mtp_shift_targets)(t->targets, targets, a->pos, B, T, depth);
        long nv;
        st->mtp_loss += ce(t->dlogits, t->lp, t->lse, t->logits, t->targets, N, V,
                           grad_scale * mtp_lambda / D, &nv) / D;
    }
    a->balance_alpha = balance_alpha * grad_scale;
    for (int l = 0; l < nl + D; l++)
        if (m->L.layers[l].moe)
            st->balance_loss += R_(moe_balance_loss)(a->blk[l].idx, a->blk[l].score, c, B, T, balance_alpha);
}

// ----------------------------------------------------------------------------
// backward

static void ffn_backward(Model *m, Acts *a, BlockActs *b, const LayerLayout *y, const real *dout,
                         real *dh, int N) {
    const ModelConfig *c = &m->L.cfg;
    const real *P = m->params;
    real *G = m->grads;
    int d = c->hidden_size;
    size_t gu = y->moe ? y->shared_gate_up : y->gate_up, down = y->moe ? y->shared_down : y->down;
    int F = y->moe ? c->moe_intermediate_size * c->n_shared_experts : c->intermediate_size;
    if (F) {
        zero(m, a->dact, (size_t)N * F);
        linear_bwd(m, a, a->dact, G + down, NULL, dout, b->act, P + down, N, F, d);
        R_(swiglu_backward)(a->dgu, a->dact, b->gu, N, F);
        linear_bwd(m, a, dh, G + gu, NULL, a->dgu, b->h2, P + gu, N, d, 2 * F);
    }
    if (!y->moe) return;
    int E = c->n_routed_experts, K = c->num_experts_per_tok, Fm = c->moe_intermediate_size;
    R_(moe_combine_backward)(a->dye, a->dgate, dout, b->ye, b->gate, b->perm, N, K, d);
    zero(m, a->dact, (size_t)N * K * Fm);
    zero(m, a->dxe, (size_t)N * K * d);
    for (int e = 0; e < E; e++) {
        int r0 = b->eoff[e], ne = b->eoff[e + 1] - r0;
        if (!ne) continue;
        size_t wgu = y->experts + (size_t)e * y->expert_stride, wd = wgu + (size_t)2 * Fm * d;
        linear_bwd(m, a, a->dact + (size_t)r0 * Fm, G + wd, NULL, a->dye + (size_t)r0 * d,
                   b->acte + (size_t)r0 * Fm, P + wd, ne, Fm, d);
        R_(swiglu_backward)(a->dgu + (size_t)r0 * 2 * Fm, a->dact + (size_t)r0 * Fm,
                            b->gue + (size_t)r0 * 2 * Fm, ne, Fm);
        linear_bwd(m, a, a->dxe + (size_t)r0 * d, G + wgu, NULL, a->dgu + (size_t)r0 * 2 * Fm,
                   b->xe + (size_t)r0 * d, P + wgu, ne, d, 2 * Fm);
    }
    R_(moe_dispatch_backward)(dh, a->dxe, b->perm, N, K, d);
    R_(moe_route_backward)(a->drlogit, a->dgate, b->score, b->idx, c, a->B, a->T, a->balance_alpha);
    R_(linear_backward)(dh, G + y->router, NULL, a->drlogit, b->h2, P + y->router, N, d, E);
}

static void attention_inputs_mla_backward(Model *m, Acts *a, BlockActs *b, const LayerLayout *y,
                                          const int *pos, real *dh, int N) {
    const ModelConfig *c = &m->L.cfg;
    const real *P = m->params;
    real *G = m->grads;
    int d = c->hidden_size, H = c->num_attention_heads, dn = c->qk_nope_head_dim;
    int dr = c->qk_rope_head_dim, dv = c->v_head_dim, rq = c->q_lora_rank, rkv = c->kv_lora_rank;
    int dqk = dn + dr;
    // keys and values back into kv_b's output and the shared rotary key
    R_(mla_kv_backward)(a->dkvb, a->dsmall, a->dk, a->dv, N, H, dn, dr, dv);
    if (dr) R_(rope_apply)(a->dsmall, pos, N, 1, dr, dr, &m->rope, 1);
    zero(m, a->dlat, (size_t)N * rkv);
    linear_bwd(m, a, a->dlat, G + y->kv_b, NULL, a->dkvb, b->ckvn, P + y->kv_b, N, rkv, H * (dn + dv));
    zero(m, a->dlat2, (size_t)N * rkv);
    R_(rmsnorm_backward)(a->dlat2, G + y->kv_a_norm, a->dlat, b->ckv, P + y->kv_a_norm, b->rstd_kv, N, rkv);
    zero(m, a->dkva, (size_t)N * (rkv + dr));
    R_(add_cols)(a->dkva, a->dlat2, N, rkv + dr, 0, rkv);
    R_(add_cols)(a->dkva, a->dsmall, N, rkv + dr, rkv, dr);
    linear_bwd(m, a, dh, G + y->kv_a, NULL, a->dkva, b->h1, P + y->kv_a, N, d, rkv + dr);
    // queries
    if (dr) R_(rope_apply)(a->dq + dn, pos, N, H, H * dqk, dqk, &m->rope, 1);
    if (rq) {
        zero(m, a->dlat, (size_t)N * rq);
        linear_bwd(m, a, a->dlat, G + y->q_b, NULL, a->dq, b->cqn, P + y->q_b, N, rq, H * dqk);
        zero(m, a->dlat2, (size_t)N * rq);
        R_(rmsnorm_backward)(a->dlat2, G + y->q_a_norm, a->dlat, b->cq, P + y->q_a_norm, b->rstd_q, N, rq);
        linear_bwd(m, a, dh, G + y->q_a, NULL, a->dlat2, b->h1, P + y->q_a, N, d, rq);
    } else {
        linear_bwd(m, a, dh, G + y->q_b, NULL, a->dq, b->h1, P + y->q_b, N, d, H * dqk);
    }
}

static void attention_inputs_gqa_backward(Model *m, Acts *a, BlockActs *b, const LayerLayout *y,
                                          const int *pos, real *dh, int N) {
    const ModelConfig *c = &m->L.cfg;
    int d = c->hidden_size, H = c->num_attention_heads, Hkv = c->num_key_value_heads, hd = c->head_dim;
    int W = (H + 2 * Hkv) * hd;
    R_(rope_apply)(a->dq, pos, N, H, H * hd, hd, &m->rope, 1);
    R_(rope_apply)(a->dk, pos, N, Hkv, Hkv * hd, hd, &m->rope, 1);
    zero(m, a->dqkv, (size_t)N * W);
    R_(add_cols)(a->dqkv, a->dq, N, W, 0, H * hd);
    R_(add_cols)(a->dqkv, a->dk, N, W, H * hd, Hkv * hd);
    R_(add_cols)(a->dqkv, a->dv, N, W, (H + Hkv) * hd, Hkv * hd);
    linear_bwd(m, a, dh, m->grads + y->qkv, c->attention_bias ? m->grads + y->qkv_bias : NULL,
               a->dqkv, b->h1, m->params + y->qkv, N, d, W);
}

// dres holds dL/d(block output) on entry and dL/d(block input) on return.
static void block_backward(Model *m, Acts *a, BlockActs *b, const LayerLayout *y, real *dres) {
    const ModelConfig *c = &m->L.cfg;
    const real *P = m->params;
    real *G = m->grads;
    int B = a->B, T = a->T, N = a->N, d = c->hidden_size, H = c->num_attention_heads;
    int Hkv = config_kv_heads(c), dqk = config_qk_head_dim(c), dv = config_v_head_dim(c);
    zero(m, a->dh, (size_t)N * d);
    ffn_backward(m, a, b, y, dres, a->dh, N);
    R_(rmsnorm_backward)(dres, G + y->ffn_norm, a->dh, b->x_mid, P + y->ffn_norm, b->rstd2, N, d);
    zero(m, a->dao, (size_t)N * H * dv);
    linear_bwd(m, a, a->dao, G + y->o, NULL, dres, b->ao, P + y->o, N, H * dv, d);
    R_(attention_backward)(a->dq, a->dk, a->dv, a->datt, a->dao, b->att, b->qf, b->kf, b->vf, B, T,
                           H, Hkv, dqk, dv, config_softmax_scale(c));
    zero(m, a->dh, (size_t)N * d);
    if (c->arch == ARCH_DEEPSEEK_V3) attention_inputs_mla_backward(m, a, b, y, a->pos, a->dh, N);
    else attention_inputs_gqa_backward(m, a, b, y, a->pos, a->dh, N);
    R_(rmsnorm_backward)(dres, G + y->attn_norm, a->dh, b->x_in, P + y->attn_norm, b->rstd1, N, d);
}

// Head: logits = rmsnorm(x)·headᵀ; adds dL/dx into dx.
static void head_backward(Model *m, Acts *a, real *dx, const real *dlogits, const real *xf,
                          const real *rstd, const real *x, size_t norm) {
    const ModelConfig *c = &m->L.cfg;
    int N = a->N, d = c->hidden_size;
    zero(m, a->dh, (size_t)N * d);
    R_(linear_backward)(a->dh, m->grads + m->L.lm_head, NULL, dlogits, xf, m->params + m->L.lm_head,
                        N, d, c->vocab_size);
    R_(rmsnorm_backward)(dx, m->grads + norm, a->dh, x, m->params + norm, rstd, N, d);
}

void R_(model_backward)(Model *m, Acts *a) {
    DS_CHECK(!a->forward_only && m->grads);
    const ModelConfig *c = &m->L.cfg;
    int N = a->N, d = c->hidden_size, nl = m->L.nlayers;
    size_t nd = (size_t)N * d;
    real *dmain = a->dres; // dL/d(output of the last main block)
    zero(m, dmain, nd);
    // MTP modules, deepest first: module k's input state is module k-1's output.
    real *dcarry = a->dcur;
    zero(m, dcarry, nd);
    for (int k = m->L.nmtp - 1; k >= 0; k--) {
        MtpActs *t = &a->mtp[k];
        const LayerLayout *y = &m->L.layers[nl + k];
        const real *h_prev = k ? a->mtp[k - 1].x_out : a->resid + (size_t)nl * nd;
        head_backward(m, a, dcarry, t->dlogits, t->xf, t->rstd_f, t->x_out, y->head_norm);
        block_backward(m, a, &a->blk[nl + k], y, dcarry);
        zero(m, a->dcat, 2 * nd);
        linear_bwd(m, a, a->dcat, m->grads + y->eh_proj, NULL, dcarry, t->cat,
                   m->params + y->eh_proj, N, 2 * d, d);
        R_(concat_cols_backward)(a->dh, NULL, a->dcat, d, d, N);
        zero(m, a->dcur == dcarry ? a->dprev : a->dcur, nd);
        real *demb = a->dcur == dcarry ? a->dprev : a->dcur;
        R_(rmsnorm_backward)(demb, m->grads + y->enorm, a->dh, t->emb, m->params + y->enorm, t->rstd_e, N, d);
        R_(embedding_backward)(m->grads + m->L.embed, demb, t->tok, N, d);
        R_(concat_cols_backward)(NULL, a->dh, a->dcat, d, d, N);
        zero(m, dcarry, nd);
        real *dst = k ? dcarry : dmain;
        R_(rmsnorm_backward)(dst, m->grads + y->hnorm, a->dh, h_prev, m->params + y->hnorm, t->rstd_h, N, d);
    }
    head_backward(m, a, dmain, a->dlogits, a->xf, a->rstd_f, a->resid + (size_t)nl * nd, m->L.final_norm);
    for (int l = nl - 1; l >= 0; l--) block_backward(m, a, &a->blk[l], &m->L.layers[l], dmain);
    R_(embedding_backward)(m->grads + m->L.embed, dmain, a->tokens, N, d);
}
