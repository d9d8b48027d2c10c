// model.c — forward, losses and backward of the whole model over `real` (see real.h).
#include "nn/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/moe.h"
#include "nn/ops.h"
#include "nn/real.h"
#include "rng.h"

typedef R_(Model) Model;
typedef R_(Acts) Acts;
typedef R_(BlockActs) BlockActs;
typedef R_(MtpActs) MtpActs;

// ----------------------------------------------------------------------------
// lifecycle

void R_(model_init)(Model *m, const ModelConfig *c, int with_grads, int max_pos) {
    memset(m, 0, sizeof *m);
    layout_build(&m->L, c);
    rope_init(&m->rope, c, max_pos);
    m->params = ds_aligned_alloc(sizeof(real) * m->L.total);
    m->grads = with_grads ? ds_aligned_alloc(sizeof(real) * m->L.total) : NULL;
}

void R_(model_free)(Model *m) {
    if (!m) return;
    layout_free(&m->L);
    rope_free(&m->rope);
    free(m->params);
    free(m->grads);
    memset(m, 0, sizeof *m);
}

void R_(model_init_weights)(Model *m, uint64_t seed) {
    for (int i = 0; i < m->L.np; i++) {
        const ParamInfo *p = &m->L.p[i];
        real *w = m->params + p->offset;
        Rng r;
        rng_derive(&r, seed, (uint64_t)i, 0x1417);
        for (size_t j = 0; j < p->numel; j++)
            w[j] = p->init_ones ? 1 : p->init_std > 0 ? (real)(p->init_std * rng_normal(&r)) : 0;
    }
}

static real *alloc(Acts *a, size_t n) {
    a->allocs = ds_realloc(a->allocs, sizeof(void *) * (size_t)(a->nallocs + 1));
    return a->allocs[a->nallocs++] = ds_aligned_alloc(sizeof(real) * (n ? n : 1));
}
static int *alloc_int(Acts *a, size_t n) {
    a->allocs = ds_realloc(a->allocs, sizeof(void *) * (size_t)(a->nallocs + 1));
    return a->allocs[a->nallocs++] = ds_aligned_alloc(sizeof(int) * (n ? n : 1));
}

// Grows *cap to the largest operand of a Linear layer over `rows` tokens: input, output gradient
// and weight, which is what the precision scratch must hold.
static void linear_operand(size_t *cap, size_t rows, size_t in, size_t out) {
    *cap = DS_MAX(*cap, DS_MAX(rows * in, DS_MAX(rows * out, in * out)));
}

void R_(acts_init)(Acts *a, const Model *m, int B, int T) {
    memset(a, 0, sizeof *a);
    const ModelConfig *c = &m->L.cfg;
    size_t N = (size_t)B * T, d = c->hidden_size, V = c->vocab_size, H = c->num_attention_heads;
    size_t Hkv = config_kv_heads(c), dqk = config_qk_head_dim(c), dv = config_v_head_dim(c);
    size_t rq = c->q_lora_rank, rkv = c->kv_lora_rank, dr = c->qk_rope_head_dim;
    size_t E = c->n_routed_experts, K = c->num_experts_per_tok, Fm = c->moe_intermediate_size;
    int nl = m->L.nlayers, nb = nl + m->L.nmtp;
    int v3 = c->arch == ARCH_DEEPSEEK_V3;
    a->B = B, a->T = T, a->N = (int)N;
    a->cap_N = (int)N, a->cap_T = T;
    a->tokens = alloc_int(a, N);
    a->pos = alloc_int(a, N);
    a->resid = alloc(a, (size_t)(nl + 1) * N * d);
    a->blk = ds_calloc((size_t)nb, sizeof(BlockActs));
    a->mtp = ds_calloc((size_t)(m->L.nmtp ? m->L.nmtp : 1), sizeof(MtpActs));
    a->load = ds_calloc((size_t)nb * (E ? E : 1), sizeof(long));
    size_t max_ffn = 0, max_act = 0; // scratch sizes for the FFN backward
    size_t prec_cap = 0;             // largest Linear operand, for the precision scratch
    for (int l = 0; l < nb; l++) {
        BlockActs *b = &a->blk[l];
        const LayerLayout *y = &m->L.layers[l];
        b->h1 = alloc(a, N * d), b->rstd1 = alloc(a, N);
        linear_operand(&prec_cap, N, H * dv, d);
        if (v3) {
            linear_operand(&prec_cap, N, rq ? d : 0, rq);
            linear_operand(&prec_cap, N, rq ? rq : d, H * dqk);
            linear_operand(&prec_cap, N, d, rkv + dr);
            linear_operand(&prec_cap, N, rkv, H * (c->qk_nope_head_dim + dv));
            if (rq) b->cq = alloc(a, N * rq), b->cqn = alloc(a, N * rq), b->rstd_q = alloc(a, N);
            b->kva = alloc(a, N * (rkv + dr));
            b->ckv = alloc(a, N * rkv), b->ckvn = alloc(a, N * rkv), b->rstd_kv = alloc(a, N);
            b->kvb = alloc(a, N * H * (c->qk_nope_head_dim + dv));
        } else {
            b->qkv = alloc(a, N * (H + 2 * Hkv) * dqk);
            linear_operand(&prec_cap, N, d, (H + 2 * Hkv) * dqk);
        }
        b->qf = alloc(a, N * H * dqk), b->kf = alloc(a, N * Hkv * dqk), b->vf = alloc(a, N * Hkv * dv);
        b->att = alloc(a, (size_t)B * H * T * T);
        b->ao = alloc(a, N * H * dv);
        b->x_mid = alloc(a, N * d), b->h2 = alloc(a, N * d), b->rstd2 = alloc(a, N);
        size_t F = y->moe ? Fm * c->n_shared_experts : (size_t)c->intermediate_size;
        if (F) b->gu = alloc(a, N * 2 * F), b->act = alloc(a, N * F);
        linear_operand(&prec_cap, N, d, 2 * F);
        max_ffn = DS_MAX(max_ffn, N * 2 * F), max_act = DS_MAX(max_act, N * F);
        if (y->moe) {
            b->rlogit = alloc(a, N * E), b->score = alloc(a, N * E), b->gate = alloc(a, N * K);
            b->idx = alloc_int(a, N * K), b->perm = alloc_int(a, N * K), b->eoff = alloc_int(a, E + 1);
            b->xe = alloc(a, N * K * d), b->gue = alloc(a, N * K * 2 * Fm);
            b->acte = alloc(a, N * K * Fm), b->ye = alloc(a, N * K * d);
            max_ffn = DS_MAX(max_ffn, N * K * 2 * Fm), max_act = DS_MAX(max_act, N * K * Fm);
            linear_operand(&prec_cap, N * K, d, 2 * Fm);
        }
    }
    for (int l = 0; l < nl; l++) a->blk[l].x_in = a->resid + (size_t)l * N * d;
    a->xf = alloc(a, N * d), a->rstd_f = alloc(a, N), a->logits = alloc(a, N * V);
    a->lse = alloc(a, N), a->lp = alloc(a, N), a->dlogits = alloc(a, N * V);
    for (int k = 0; k < m->L.nmtp; k++) {
        MtpActs *t = &a->mtp[k];
        t->tok = alloc_int(a, N), t->targets = alloc_int(a, N);
        t->emb = alloc(a, N * d), t->en = alloc(a, N * d), t->rstd_e = alloc(a, N);
        t->hn = alloc(a, N * d), t->rstd_h = alloc(a, N), t->cat = alloc(a, N * 2 * d);
        t->x0 = alloc(a, N * d), t->x_out = alloc(a, N * d);
        t->xf = alloc(a, N * d), t->rstd_f = alloc(a, N), t->logits = alloc(a, N * V);
        t->lse = alloc(a, N), t->lp = alloc(a, N), t->dlogits = alloc(a, N * V);
        a->blk[nl + k].x_in = t->x0;
        linear_operand(&prec_cap, N, 2 * d, d);
    }
#ifdef DS_REAL_F64
    precision_scratch_init(&a->prec, PRECISION_FP32, prec_cap); // the double build computes exactly
#else
    precision_scratch_init(&a->prec, m->precision, prec_cap);
#endif
    size_t latent = DS_MAX(rq, rkv);
    a->dres = alloc(a, N * d), a->dcur = alloc(a, N * d), a->dprev = alloc(a, N * d);
    a->dh = alloc(a, N * d), a->dao = alloc(a, N * H * dv);
    a->dq = alloc(a, N * H * dqk), a->dk = alloc(a, N * Hkv * dqk), a->dv = alloc(a, N * Hkv * dv);
    a->datt = alloc(a, (size_t)T * T);
    if (v3) {
        a->dkvb = alloc(a, N * H * (c->qk_nope_head_dim + dv));
        a->dlat = alloc(a, N * latent), a->dlat2 = alloc(a, N * latent);
        a->dkva = alloc(a, N * (rkv + dr));
    } else {
        a->dqkv = alloc(a, N * (H + 2 * Hkv) * dqk);
    }
    a->dgu = alloc(a, max_ffn), a->dact = alloc(a, max_act);
    if (E) {
        a->dxe = alloc(a, N * K * d), a->dye = alloc(a, N * K * d);
        a->dgate = alloc(a, N * K), a->drlogit = alloc(a, N * E);
    }
    a->dcat = alloc(a, N * 2 * d);
    a->dsmall = alloc(a, N * DS_MAX(dr, 1));
}

void R_(acts_free)(Acts *a) {
    if (!a) return;
    for (int i = 0; i < a->nallocs; i++) free(a->allocs[i]);
    free(a->allocs);
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
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1, inp, C, w, C, 1, out, OC);
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
    // Keys: per-head nope part from kv_b, and ONE rotary key shared by all heads.
    for (int n = 0; n < N; n++) {
        real *kf = b->kf + (size_t)n * H * dqk;
        memcpy(kf + dn, b->kva + (size_t)n * (rkv + dr) + rkv, sizeof(real) * (size_t)dr);
    }
    if (dr) R_(rope_apply)(b->kf + dn, pos, N, 1, H * dqk, dqk, &m->rope, 0);
    for (int n = 0; n < N; n++) {
        real *kf = b->kf + (size_t)n * H * dqk, *vf = b->vf + (size_t)n * H * dv;
        const real *kv = b->kvb + (size_t)n * H * (dn + dv);
        for (int h = 0; h < H; h++) {
            memcpy(kf + h * dqk, kv + h * (dn + dv), sizeof(real) * (size_t)dn);
            if (h) memcpy(kf + h * dqk + dn, kf + dn, sizeof(real) * (size_t)dr);
            memcpy(vf + h * dv, kv + h * (dn + dv) + dn, sizeof(real) * (size_t)dv);
        }
    }
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
    // Counting sort of (token, slot) pairs by expert: each expert then runs one GEMM over just
    // the tokens routed to it, so compute scales with active experts.
    memset(b->eoff, 0, sizeof(int) * (size_t)(E + 1));
    for (int r = 0; r < N * K; r++) b->eoff[b->idx[r] + 1]++;
    for (int e = 0; e < E; e++) b->eoff[e + 1] += b->eoff[e];
    int fill[E];
    memcpy(fill, b->eoff, sizeof(int) * (size_t)E);
    for (int r = 0; r < N * K; r++) b->perm[fill[b->idx[r]]++] = r;
    for (int r = 0; r < N * K; r++)
        memcpy(b->xe + (size_t)r * d, b->h2 + (size_t)(b->perm[r] / K) * d, sizeof(real) * (size_t)d);
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
    for (int r = 0; r < N * K; r++) {
        int t = b->perm[r] / K;
        real g = b->gate[b->perm[r]];
        const real *yr = b->ye + (size_t)r * d;
        real *o = x_out + (size_t)t * d;
        for (int i = 0; i < d; i++) o[i] += g * yr[i];
    }
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
    memcpy(b->x_mid, b->x_in, sizeof(real) * (size_t)N * d);
    linear_fwd(m, a, b->x_mid, b->ao, P + y->o, NULL, N, H * dv, d, 1);
    R_(rmsnorm_forward)(b->h2, b->rstd2, b->x_mid, P + y->ffn_norm, N, d, c->rms_norm_eps);
    memcpy(x_out, b->x_mid, sizeof(real) * (size_t)N * d);
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
    memcpy(a->tokens, tokens, sizeof(int) * (size_t)N);
    memcpy(a->pos, pos, sizeof(int) * (size_t)N);
    R_(embedding_forward)(a->resid, tokens, m->params + m->L.embed, N, d);
    for (int l = 0; l < nl; l++) {
        a->blk[l].x_in = a->resid + (size_t)l * N * d;
        block_forward(m, a, &a->blk[l], &m->L.layers[l], a->resid + (size_t)(l + 1) * N * d, pos, B, T,
                      a->load + (size_t)l * E);
    }
    const real *h_prev = a->resid + (size_t)nl * N * d;
    head_forward(m, a->xf, a->rstd_f, a->logits, h_prev, m->L.final_norm, N);
    for (int k = 0; k < m->L.nmtp; k++) {
        MtpActs *t = &a->mtp[k];
        const LayerLayout *y = &m->L.layers[nl + k];
        int depth = k + 1;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < T; i++) {
                int n = b * T + i, j = i + depth;
                t->tok[n] = j < T ? tokens[b * T + j] : 0;
            }
        R_(embedding_forward)(t->emb, t->tok, m->params + m->L.embed, N, d);
        R_(rmsnorm_forward)(t->en, t->rstd_e, t->emb, m->params + y->enorm, N, d, c->rms_norm_eps);
        R_(rmsnorm_forward)(t->hn, t->rstd_h, h_prev, m->params + y->hnorm, N, d, c->rms_norm_eps);
        // [embedding | hidden], the order of the released weights.
        for (int n = 0; n < N; n++) {
            memcpy(t->cat + (size_t)n * 2 * d, t->en + (size_t)n * d, sizeof(real) * (size_t)d);
            memcpy(t->cat + (size_t)n * 2 * d + d, t->hn + (size_t)n * d, sizeof(real) * (size_t)d);
        }
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
    for (int i = 0; i < N; i++) lp[i] = g;
    R_(logprob_backward)(dlogits, lp, logits, lse, targets, N, V);
    *nvalid = n;
    return n ? -sum / n : 0;
}

void R_(model_loss)(Model *m, Acts *a, const int *targets, double mtp_lambda, double balance_alpha,
                    double grad_scale, ModelLossStats *st) {
    const ModelConfig *c = &m->L.cfg;
    int N = a->N, B = a->B, T = a->T, V = c->vocab_size, nl = m->L.nlayers, D = m->L.nmtp;
    memset(st, 0, sizeof *st);
    st->loss = ce(a->dlogits, a->lp, a->lse, a->logits, targets, N, V, grad_scale, &st->ntokens);
    for (int k = 0; k < D; k++) {
        MtpActs *t = &a->mtp[k];
        int depth = k + 1;
        // Depth k predicts token i+k+1 = the target of position i+k, if still in the same document.
        for (int b = 0; b < B; b++)
            for (int i = 0; i < T; i++) {
                int n = b * T + i, j = n + depth;
                int ok = i + depth < T && a->pos[j] == a->pos[n] + depth;
                t->targets[n] = ok ? targets[j] : -1;
            }
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
        memset(a->dact, 0, sizeof(real) * (size_t)N * F);
        linear_bwd(m, a, a->dact, G + down, NULL, dout, b->act, P + down, N, F, d);
        R_(swiglu_backward)(a->dgu, a->dact, b->gu, N, F);
        linear_bwd(m, a, dh, G + gu, NULL, a->dgu, b->h2, P + gu, N, d, 2 * F);
    }
    if (!y->moe) return;
    int E = c->n_routed_experts, K = c->num_experts_per_tok, Fm = c->moe_intermediate_size;
    for (int r = 0; r < N * K; r++) {
        int slot = b->perm[r], t = slot / K;
        const real *g = dout + (size_t)t * d, *yr = b->ye + (size_t)r * d;
        real *dy = a->dye + (size_t)r * d, gate = b->gate[slot];
        double dot = 0;
        for (int i = 0; i < d; i++) dot += (double)g[i] * yr[i], dy[i] = gate * g[i];
        a->dgate[slot] = (real)dot;
    }
    memset(a->dact, 0, sizeof(real) * (size_t)N * K * Fm);
    memset(a->dxe, 0, sizeof(real) * (size_t)N * K * d);
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
    for (int r = 0; r < N * K; r++) {
        real *dst = dh + (size_t)(b->perm[r] / K) * d;
        const real *src = a->dxe + (size_t)r * d;
        for (int i = 0; i < d; i++) dst[i] += src[i];
    }
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
    for (int n = 0; n < N; n++) {
        const real *dk = a->dk + (size_t)n * H * dqk, *dvv = a->dv + (size_t)n * H * dv;
        real *dkv = a->dkvb + (size_t)n * H * (dn + dv), *dpe = a->dsmall + (size_t)n * dr;
        memset(dpe, 0, sizeof(real) * (size_t)dr);
        for (int h = 0; h < H; h++) {
            memcpy(dkv + h * (dn + dv), dk + h * dqk, sizeof(real) * (size_t)dn);
            memcpy(dkv + h * (dn + dv) + dn, dvv + h * dv, sizeof(real) * (size_t)dv);
            for (int i = 0; i < dr; i++) dpe[i] += dk[h * dqk + dn + i];
        }
    }
    if (dr) R_(rope_apply)(a->dsmall, pos, N, 1, dr, dr, &m->rope, 1);
    memset(a->dlat, 0, sizeof(real) * (size_t)N * rkv);
    linear_bwd(m, a, a->dlat, G + y->kv_b, NULL, a->dkvb, b->ckvn, P + y->kv_b, N, rkv, H * (dn + dv));
    memset(a->dlat2, 0, sizeof(real) * (size_t)N * rkv);
    R_(rmsnorm_backward)(a->dlat2, G + y->kv_a_norm, a->dlat, b->ckv, P + y->kv_a_norm, b->rstd_kv, N, rkv);
    memset(a->dkva, 0, sizeof(real) * (size_t)N * (rkv + dr));
    R_(add_cols)(a->dkva, a->dlat2, N, rkv + dr, 0, rkv);
    R_(add_cols)(a->dkva, a->dsmall, N, rkv + dr, rkv, dr);
    linear_bwd(m, a, dh, G + y->kv_a, NULL, a->dkva, b->h1, P + y->kv_a, N, d, rkv + dr);
    // queries
    if (dr) R_(rope_apply)(a->dq + dn, pos, N, H, H * dqk, dqk, &m->rope, 1);
    if (rq) {
        memset(a->dlat, 0, sizeof(real) * (size_t)N * rq);
        linear_bwd(m, a, a->dlat, G + y->q_b, NULL, a->dq, b->cqn, P + y->q_b, N, rq, H * dqk);
        memset(a->dlat2, 0, sizeof(real) * (size_t)N * rq);
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
    memset(a->dqkv, 0, sizeof(real) * (size_t)N * W);
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
    memset(a->dh, 0, sizeof(real) * (size_t)N * d);
    ffn_backward(m, a, b, y, dres, a->dh, N);
    R_(rmsnorm_backward)(dres, G + y->ffn_norm, a->dh, b->x_mid, P + y->ffn_norm, b->rstd2, N, d);
    memset(a->dao, 0, sizeof(real) * (size_t)N * H * dv);
    linear_bwd(m, a, a->dao, G + y->o, NULL, dres, b->ao, P + y->o, N, H * dv, d);
    R_(attention_backward)(a->dq, a->dk, a->dv, a->datt, a->dao, b->att, b->qf, b->kf, b->vf, B, T,
                           H, Hkv, dqk, dv, config_softmax_scale(c));
    memset(a->dh, 0, sizeof(real) * (size_t)N * d);
    if (c->arch == ARCH_DEEPSEEK_V3) attention_inputs_mla_backward(m, a, b, y, a->pos, a->dh, N);
    else attention_inputs_gqa_backward(m, a, b, y, a->pos, a->dh, N);
    R_(rmsnorm_backward)(dres, G + y->attn_norm, a->dh, b->x_in, P + y->attn_norm, b->rstd1, N, d);
}

// Head: logits = rmsnorm(x)·headᵀ; adds dL/dx into dx.
static void head_backward(Model *m, Acts *a, real *dx, const real *dlogits, const real *xf,
                          const real *rstd, const real *x, size_t norm) {
    const ModelConfig *c = &m->L.cfg;
    int N = a->N, d = c->hidden_size;
    memset(a->dh, 0, sizeof(real) * (size_t)N * d);
    R_(linear_backward)(a->dh, m->grads + m->L.lm_head, NULL, dlogits, xf, m->params + m->L.lm_head,
                        N, d, c->vocab_size);
    R_(rmsnorm_backward)(dx, m->grads + norm, a->dh, x, m->params + norm, rstd, N, d);
}

void R_(model_backward)(Model *m, Acts *a) {
    const ModelConfig *c = &m->L.cfg;
    int N = a->N, d = c->hidden_size, nl = m->L.nlayers;
    size_t nd = (size_t)N * d;
    real *dmain = a->dres; // dL/d(output of the last main block)
    memset(dmain, 0, sizeof(real) * nd);
    // MTP modules, deepest first: module k's input state is module k-1's output.
    real *dcarry = a->dcur;
    memset(dcarry, 0, sizeof(real) * nd);
    for (int k = m->L.nmtp - 1; k >= 0; k--) {
        MtpActs *t = &a->mtp[k];
        const LayerLayout *y = &m->L.layers[nl + k];
        const real *h_prev = k ? a->mtp[k - 1].x_out : a->resid + (size_t)nl * nd;
        head_backward(m, a, dcarry, t->dlogits, t->xf, t->rstd_f, t->x_out, y->head_norm);
        block_backward(m, a, &a->blk[nl + k], y, dcarry);
        memset(a->dcat, 0, sizeof(real) * 2 * nd);
        linear_bwd(m, a, a->dcat, m->grads + y->eh_proj, NULL, dcarry, t->cat,
                   m->params + y->eh_proj, N, 2 * d, d);
        R_(copy_cols)(a->dh, a->dcat, N, 2 * d, 0, d);
        memset(a->dcur == dcarry ? a->dprev : a->dcur, 0, sizeof(real) * nd);
        real *demb = a->dcur == dcarry ? a->dprev : a->dcur;
        R_(rmsnorm_backward)(demb, m->grads + y->enorm, a->dh, t->emb, m->params + y->enorm, t->rstd_e, N, d);
        R_(embedding_backward)(m->grads + m->L.embed, demb, t->tok, N, d);
        R_(copy_cols)(a->dh, a->dcat, N, 2 * d, d, d);
        memset(dcarry, 0, sizeof(real) * nd);
        real *dst = k ? dcarry : dmain;
        R_(rmsnorm_backward)(dst, m->grads + y->hnorm, a->dh, h_prev, m->params + y->hnorm, t->rstd_h, N, d);
    }
    head_backward(m, a, dmain, a->dlogits, a->xf, a->rstd_f, a->resid + (size_t)nl * nd, m->L.final_norm);
    for (int l = nl - 1; l >= 0; l--) block_backward(m, a, &a->blk[l], &m->L.layers[l], dmain);
    R_(embedding_backward)(m->grads + m->L.embed, dmain, a->tokens, N, d);
}
