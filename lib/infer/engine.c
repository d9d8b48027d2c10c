// engine.c — inference forward over rows with per-slot KV caches (MLA absorbed or naive, GQA).
#include "infer/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/moe.h"
#include "nn/ops.h"
#include "math/rowgemm.h"
#include "core/threads.h"


struct Engine {
    const Model_f32 *m;
    EngineOpts o;
    int nblk;            // main blocks + MTP blocks (each has its own cache)
    int absorbed;        // MLA latent cache
    size_t per_tok;      // cached floats per token per block
    uint64_t version;    // the model's params_version that engine_refresh derived from
    float *cache;        // [slots][nblk][max_len][per_tok]
    int *len;            // [slots] cached positions
    float *wuk;          // absorbed: per block and head, W_UKᵀ [rkv][dn] (for q_nope → latent)
    // row buffers, [max_rows] × width
    float *x, *h, *cq, *cqn, *q, *kva, *ckvn, *kvb, *qkv, *qlat, *olat, *ao, *scores, *qcat;
    float *gu, *act, *rlogit, *score, *gate, *xe, *gue, *acte, *ye, *hid, *xf, *cat, *tmp;
    float *kvrow;        // naive: [max_rows][per_tok] rows in the cache's layout, before the store
    int *idx, *perm, *eoff;
    size_t *at;          // [max_rows] cache offset of each row's (slot, block, position)
    float *rstd;
    int threads;         // rows of attention and columns of large GEMMs are split over these
    ThreadPool *pool;    // threads - 1 workers kept for the engine's life (NULL: one thread)
    void *buf;           // the one backend allocation every buffer above points into
    size_t bytes;
};

// Every buffer of the engine in one backend allocation (see BufPlan): run once to size it and
// once to point into it.
static void engine_layout(Engine *en, BufPlan *p) {
    const Model_f32 *m = en->m;
    const ModelConfig *c = &m->L.cfg;
    const EngineOpts *o = &en->o;
    int v3 = c->arch == ARCH_DEEPSEEK_V3;
    size_t d = c->hidden_size, H = c->num_attention_heads, Hkv = config_kv_heads(c);
    size_t dqk = config_qk_head_dim(c), dv = config_v_head_dim(c);
    size_t rq = c->q_lora_rank, rkv = c->kv_lora_rank, dr = c->qk_rope_head_dim, dn = c->qk_nope_head_dim;
#define FBUF(n) ((float *)bufplan_take(p, sizeof(float) * (n)))
#define IBUF(n) ((int *)bufplan_take(p, sizeof(int) * (n)))
    en->cache = FBUF((size_t)o->slots * en->nblk * o->max_len * en->per_tok);
    if (en->absorbed) en->wuk = FBUF((size_t)en->nblk * H * rkv * dn);
    size_t R = o->max_rows, E = c->n_routed_experts, K = c->num_experts_per_tok;
    size_t F = DS_MAX((size_t)c->intermediate_size, (size_t)c->moe_intermediate_size * c->n_shared_experts);
    en->x = FBUF(R * d), en->h = FBUF(R * d), en->hid = FBUF(R * d), en->xf = FBUF(R * d);
    en->cat = FBUF(R * 2 * d), en->tmp = FBUF(R * d), en->rstd = FBUF(R);
    en->q = FBUF(R * H * dqk), en->ao = FBUF(R * H * dv);
    // per-thread scratch for the attention rows
    en->scores = FBUF((size_t)en->threads * H * (size_t)o->max_len);
    en->qcat = FBUF((size_t)en->threads * H * (rkv + dr));
    if (v3) {
        en->cq = FBUF(R * rq), en->cqn = FBUF(R * rq), en->kva = FBUF(R * (rkv + dr));
        en->ckvn = FBUF(R * rkv), en->kvb = FBUF(R * H * (dn + dv));
        en->qlat = FBUF(R * H * rkv), en->olat = FBUF(R * H * rkv);
    } else {
        en->qkv = FBUF(R * (H + 2 * Hkv) * dqk);
    }
    en->gu = FBUF(R * 2 * F), en->act = FBUF(R * F);
    if (E) {
        size_t Fm = c->moe_intermediate_size;
        en->rlogit = FBUF(R * E), en->score = FBUF(R * E), en->gate = FBUF(R * K);
        en->idx = IBUF(R * K), en->perm = IBUF(R * K), en->eoff = IBUF(E + 1);
        en->xe = FBUF(R * K * d), en->gue = FBUF(R * K * 2 * Fm), en->acte = FBUF(R * K * Fm);
        en->ye = FBUF(R * K * d);
    }
    if (!en->absorbed) en->kvrow = FBUF(R * en->per_tok);
#undef FBUF
#undef IBUF
}

Engine *engine_new(const Model_f32 *m, const EngineOpts *o, DsErr *e) {
    const ModelConfig *c = &m->L.cfg;
    if (o->slots < 1 || o->max_len < 1 || o->max_rows < 1) return ds_errf(e, "engine: bad sizes"), NULL;
    if (o->max_len > m->rope.max_pos)
        return ds_errf(e, "engine: max_len %d exceeds the model's RoPE table (%d)", o->max_len, m->rope.max_pos), NULL;
    Engine *en = ds_calloc(1, sizeof *en);
    en->m = m;
    en->o = *o;
    en->nblk = m->L.nlayers + m->L.nmtp;
    en->absorbed = c->arch == ARCH_DEEPSEEK_V3 && !o->naive_attn;
    en->per_tok = en->absorbed ? (size_t)c->kv_lora_rank + c->qk_rope_head_dim
                               : (size_t)config_kv_heads(c) * (config_qk_head_dim(c) + config_v_head_dim(c));
    en->threads = DS_MAX(1, DS_MIN(m->be->threads(), 16));
    en->pool = threadpool_new(en->threads);
    BufPlan plan = {0};
    engine_layout(en, &plan);
    en->bytes = plan.used;
    en->buf = m->be->alloc(en->bytes);
    plan = (BufPlan){.base = en->buf};
    engine_layout(en, &plan);
    // host-side bookkeeping: cached lengths and the cache offsets of a forward's rows
    en->len = ds_calloc((size_t)o->slots, sizeof(int));
    en->at = ds_calloc((size_t)o->max_rows, sizeof(size_t));
    engine_refresh(en);
    return en;
}

void engine_refresh(Engine *en) {
    en->version = en->m->params_version;
    if (!en->absorbed) return;
    const Model_f32 *m = en->m;
    const ModelConfig *c = &m->L.cfg;
    size_t H = c->num_attention_heads, rkv = c->kv_lora_rank, dn = c->qk_nope_head_dim, dv = c->v_head_dim;
    for (int l = 0; l < en->nblk; l++) {
        const float *kvb = m->params + m->L.layers[l].kv_b; // [H*(dn+dv), rkv]
        for (size_t h = 0; h < H; h++)
            transpose_f32(en->wuk + ((size_t)l * H + h) * rkv * dn, kvb + h * (dn + dv) * rkv, (int)dn, (int)rkv);
    }
}

void engine_free(Engine *en) {
    if (!en) return;
    en->m->be->free(en->buf);
    threadpool_free(en->pool);
    free(en->len), free(en->at);
    free(en);
}

size_t engine_cache_bytes_per_token(const Engine *en) {
    return sizeof(float) * en->per_tok * (size_t)en->m->L.nlayers;
}
int engine_vocab(const Engine *en) { return en->m->L.cfg.vocab_size; }
int engine_slots(const Engine *en) { return en->o.slots; }
int engine_max_len(const Engine *en) { return en->o.max_len; }
int engine_max_rows(const Engine *en) { return en->o.max_rows; }
int engine_has_mtp(const Engine *en) { return en->m->L.nmtp > 0; }

void engine_truncate(Engine *en, int slot, int len) {
    if (len < en->len[slot]) en->len[slot] = len;
}

static size_t cache_off(const Engine *en, int slot, int blk, int pos) {
    return (((size_t)slot * en->nblk + blk) * en->o.max_len + pos) * en->per_tok;
}
static float *cache_at(Engine *en, int slot, int blk, int pos) {
    return en->cache + cache_off(en, slot, blk, pos);
}

void engine_copy_prefix(Engine *en, int dst, int src, int n) {
    DS_CHECK(n >= 0 && n <= en->len[src] && n <= en->o.max_len && dst != src);
    for (int b = 0; b < en->nblk; b++)
        en->m->be->copy(cache_at(en, dst, b, 0), cache_at(en, src, b, 0), sizeof(float) * (size_t)n * en->per_tok);
    en->len[dst] = n;
}

// softmax of scale·s over s[0..n), in place (sums in double for stability)
static void softmax(float *s, int n, float scale) {
    for (int j = 0; j < n; j++) s[j] *= scale;
    float mx = s[0];
    for (int j = 1; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    double sum = 0;
    for (int j = 0; j < n; j++) sum += (s[j] = expf(s[j] - mx));
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++) s[j] *= inv;
}

// ----------------------------------------------------------------------------
// rowgemm split over output columns: every element runs the same operations whatever the split,
// so results do not depend on the thread count.

typedef struct ColJob {
    float *out;
    const float *x, *w, *bias;
    int ldo, ldx, ldw, R, K, N, acc, parts;
} ColJob;

static void col_part(void *ctx, int tid, int i0, int i1) {
    (void)tid;
    const ColJob *j = ctx;
    for (int p = i0; p < i1; p++) {
        int n0 = j->N * p / j->parts, n1 = j->N * (p + 1) / j->parts;
        if (n1 > n0)
            rowgemm_ld(j->out + n0, j->ldo, j->x, j->ldx, j->w + (size_t)n0 * j->ldw, j->ldw,
                       j->bias ? j->bias + n0 : NULL, j->R, j->K, n1 - n0, j->acc);
    }
}

static void prow_ld(const Engine *en, float *out, int ldo, const float *x, int ldx, const float *w,
                    int ldw, const float *bias, int R, int K, int N, int acc) {
    // below ~200k multiply-adds handing work to a pooled thread costs more than it saves
    if (en->threads < 2 || (double)R * K * N < 2e5 || N < 8) {
        rowgemm_ld(out, ldo, x, ldx, w, ldw, bias, R, K, N, acc);
        return;
    }
    ColJob j = {out, x, w, bias, ldo, ldx, ldw, R, K, N, acc, en->threads};
    threadpool_run(en->pool, en->threads, en->threads, col_part, &j);
}

static void prow(const Engine *en, float *out, int ldo, const float *x, int ldx, const float *w,
                 const float *bias, int R, int K, int N, int acc) {
    prow_ld(en, out, ldo, x, ldx, w, K, bias, R, K, N, acc);
}

// ----------------------------------------------------------------------------
// attention rows: each row reads only its own slot's cache, so rows split over threads freely

// o[h][0..w) = Σ_j p[h][j] · c_j[0..w) over j = 0..n-1 in order, c_j = c + j·ldc. Each element is
// one multiply and one add per j in that order whatever the vector width, so the clones (gcc
// vectorises each at its own width) give the same bits.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void weighted_rows(float *o, const float *p, int H, int n, const float *c, int ldc, int w) {
    memset(o, 0, sizeof(float) * (size_t)H * w);
    for (int j = 0; j < n; j++) {
        const float *cj = c + (size_t)j * ldc;
        for (int hh = 0; hh < H; hh++) {
            float pj = p[(size_t)hh * n + j], *oh = o + (size_t)hh * w;
            for (int i = 0; i < w; i++) oh[i] += pj * cj[i];
        }
    }
}

typedef struct RowJob {
    Engine *en;
    int blk;
    const int *slot, *pos;
    float scale;
} RowJob;

// MLA absorbed: scores of all heads against the latent cache, [q_lat | q_pe] · [c_KV | k_pe], then
// the softmax-weighted sum of c_KV (W_UV is applied afterwards, once per head for all rows).
static void latent_rows(void *ctx, int tid, int r0, int r1) {
    const RowJob *jb = ctx;
    Engine *en = jb->en;
    const ModelConfig *c = &en->m->L.cfg;
    int H = c->num_attention_heads, rkv = c->kv_lora_rank, dr = c->qk_rope_head_dim;
    int dn = c->qk_nope_head_dim, dqk = dn + dr, W = rkv + dr;
    float *qcat = en->qcat + (size_t)tid * H * W, *scores = en->scores + (size_t)tid * H * en->o.max_len;
    for (int r = r0; r < r1; r++) {
        int n = jb->pos[r] + 1;
        for (int hh = 0; hh < H; hh++) {
            memcpy(qcat + (size_t)hh * W, en->qlat + ((size_t)r * H + hh) * rkv, sizeof(float) * rkv);
            memcpy(qcat + (size_t)hh * W + rkv, en->q + ((size_t)r * H + hh) * dqk + dn, sizeof(float) * dr);
        }
        const float *c0 = cache_at(en, jb->slot[r], jb->blk, 0);
        rowgemm_ld(scores, n, qcat, W, c0, W, NULL, H, W, n, 0);
        for (int hh = 0; hh < H; hh++) softmax(scores + (size_t)hh * n, n, jb->scale);
        weighted_rows(en->olat + (size_t)r * H * rkv, scores, H, n, c0, W, rkv);
    }
}

// Expanded keys and values (naive MLA, GQA): per head, scores against its kv head, then the
// weighted sum of values.
static void expanded_rows(void *ctx, int tid, int r0, int r1) {
    const RowJob *jb = ctx;
    Engine *en = jb->en;
    const ModelConfig *c = &en->m->L.cfg;
    int H = c->num_attention_heads, Hkv = config_kv_heads(c), dqk = config_qk_head_dim(c);
    int dv = config_v_head_dim(c), group = H / Hkv, W = (int)en->per_tok;
    float *scores = en->scores + (size_t)tid * H * en->o.max_len;
    for (int r = r0; r < r1; r++) {
        int n = jb->pos[r] + 1;
        const float *c0 = cache_at(en, jb->slot[r], jb->blk, 0);
        for (int hh = 0; hh < H; hh++) {
            int kh = hh / group;
            float *sc = scores + (size_t)hh * n;
            rowgemm_ld(sc, n, en->q + ((size_t)r * H + hh) * dqk, dqk, c0 + (size_t)kh * dqk, W, NULL, 1, dqk, n, 0);
            softmax(sc, n, jb->scale);
            float *o = en->ao + ((size_t)r * H + hh) * dv;
            memset(o, 0, sizeof(float) * dv);
            const float *v0 = c0 + (size_t)Hkv * dqk + (size_t)kh * dv;
            for (int j = 0; j < n; j++) {
                const float *v = v0 + (size_t)j * W;
                float p = sc[j];
                for (int i = 0; i < dv; i++) o[i] += p * v[i];
            }
        }
    }
}

// Attention of R rows of one block: writes the caches, then each row attends over its slot's
// positions [0, pos]. Output in en->ao [R, H*dv].
static void attention(Engine *en, int blk, int R, const int *slot, const int *pos, const float *h) {
    const Model_f32 *m = en->m;
    const ModelConfig *c = &m->L.cfg;
    const LayerLayout *y = &m->L.layers[blk];
    const float *P = m->params;
    int d = c->hidden_size, H = c->num_attention_heads, Hkv = config_kv_heads(c);
    int dqk = config_qk_head_dim(c), dv = config_v_head_dim(c);
    float scale = (float)config_softmax_scale(c);
    for (int r = 0; r < R; r++) en->at[r] = cache_off(en, slot[r], blk, pos[r]);
    if (c->arch == ARCH_DEEPSEEK_V3) {
        int rq = c->q_lora_rank, rkv = c->kv_lora_rank, dr = c->qk_rope_head_dim, dn = c->qk_nope_head_dim;
        if (rq) {
            prow(en, en->cq, rq, h, d, P + y->q_a, NULL, R, d, rq, 0);
            rmsnorm_forward_f32(en->cqn, en->rstd, en->cq, P + y->q_a_norm, R, rq, c->rms_norm_eps);
            prow(en, en->q, H * dqk, en->cqn, rq, P + y->q_b, NULL, R, rq, H * dqk, 0);
        } else {
            prow(en, en->q, H * dqk, h, d, P + y->q_b, NULL, R, d, H * dqk, 0);
        }
        if (dr) rope_apply_f32(en->q + dn, pos, R, H, H * dqk, dqk, &m->rope, 0);
        prow(en, en->kva, rkv + dr, h, d, P + y->kv_a, NULL, R, d, rkv + dr, 0);
        copy_cols_f32(en->ckvn, en->kva, R, rkv + dr, 0, rkv);
        rmsnorm_forward_f32(en->ckvn, en->rstd, en->ckvn, P + y->kv_a_norm, R, rkv, c->rms_norm_eps);
        if (dr) rope_apply_f32(en->kva + rkv, pos, R, 1, rkv + dr, dr, &m->rope, 0);
        if (en->absorbed) {
            scatter_rows_f32(en->cache, en->at, en->ckvn, rkv, R, rkv);
            scatter_rows_f32(en->cache + rkv, en->at, en->kva + rkv, rkv + dr, R, dr);
            // Absorb W_UK into the query: q_lat[h] = W_UK_hᵀ q_nope[h] (per head, rkv wide).
            for (int hh = 0; hh < H; hh++)
                prow(en, en->qlat + (size_t)hh * rkv, H * rkv, en->q + (size_t)hh * dqk, H * dqk,
                        en->wuk + ((size_t)blk * H + hh) * rkv * dn, NULL, R, dn, rkv, 0);
            RowJob jb = {en, blk, slot, pos, scale};
            threadpool_run(en->pool, en->threads, R, latent_rows, &jb);
            // W_UV after the weighted sum: v_h = W_UV_h · o_lat[h].
            const float *kvb = P + y->kv_b;
            for (int hh = 0; hh < H; hh++)
                prow(en, en->ao + (size_t)hh * dv, H * dv, en->olat + (size_t)hh * rkv, H * rkv,
                        kvb + ((size_t)hh * (dn + dv) + dn) * rkv, NULL, R, rkv, dv, 0);
            return;
        }
        // naive: expand keys and values per head and cache them
        prow(en, en->kvb, H * (dn + dv), en->ckvn, rkv, P + y->kv_b, NULL, R, rkv, H * (dn + dv), 0);
        int W = (int)en->per_tok;
        mla_kv_forward_f32(en->kvrow, W, en->kvrow + (size_t)H * dqk, W, en->kvb, en->kva + rkv,
                           rkv + dr, R, H, dn, dr, dv);
        scatter_rows_f32(en->cache, en->at, en->kvrow, W, R, W);
    } else {
        int W = (H + 2 * Hkv) * dqk;
        prow(en, en->qkv, W, h, d, P + y->qkv, c->attention_bias ? P + y->qkv_bias : NULL, R, d, W, 0);
        copy_cols_f32(en->q, en->qkv, R, W, 0, H * dqk);
        rope_apply_f32(en->q, pos, R, H, H * dqk, dqk, &m->rope, 0);
        rope_apply_f32(en->qkv + H * dqk, pos, R, Hkv, W, dqk, &m->rope, 0);
        scatter_rows_f32(en->cache, en->at, en->qkv + H * dqk, W, R, Hkv * (dqk + dv));
    }
    RowJob jb = {en, blk, slot, pos, scale};
    threadpool_run(en->pool, en->threads, R, expanded_rows, &jb);
}

static void ffn(Engine *en, int blk, int R, const float *h2, float *x) {
    const Model_f32 *m = en->m;
    const ModelConfig *c = &m->L.cfg;
    const LayerLayout *y = &m->L.layers[blk];
    const float *P = m->params;
    int d = c->hidden_size;
    size_t gu = y->moe ? y->shared_gate_up : y->gate_up, down = y->moe ? y->shared_down : y->down;
    int F = y->moe ? c->moe_intermediate_size * c->n_shared_experts : c->intermediate_size;
    if (F) {
        prow(en, en->gu, 2 * F, h2, d, P + gu, NULL, R, d, 2 * F, 0);
        swiglu_forward_f32(en->act, en->gu, R, F);
        prow(en, x, d, en->act, F, P + down, NULL, R, F, d, 1);
    }
    if (!y->moe) return;
    int E = c->n_routed_experts, K = c->num_experts_per_tok, Fm = c->moe_intermediate_size;
    prow(en, en->rlogit, E, h2, d, P + y->router, NULL, R, d, E, 0);
    moe_route_forward_f32(en->idx, en->gate, en->score, en->rlogit, P + y->router_bias, c, R);
    moe_dispatch_forward_f32(en->xe, en->perm, en->eoff, en->idx, h2, R, K, E, d);
    for (int e = 0; e < E; e++) {
        int r0 = en->eoff[e], ne = en->eoff[e + 1] - r0;
        if (!ne) continue;
        const float *wgu = P + y->experts + (size_t)e * y->expert_stride, *wd = wgu + (size_t)2 * Fm * d;
        prow(en, en->gue + (size_t)r0 * 2 * Fm, 2 * Fm, en->xe + (size_t)r0 * d, d, wgu, NULL, ne, d, 2 * Fm, 0);
        swiglu_forward_f32(en->acte + (size_t)r0 * Fm, en->gue + (size_t)r0 * 2 * Fm, ne, Fm);
        prow(en, en->ye + (size_t)r0 * d, d, en->acte + (size_t)r0 * Fm, Fm, wd, NULL, ne, Fm, d, 0);
    }
    moe_combine_forward_f32(x, en->ye, en->gate, en->perm, R, K, d);
}

static void block(Engine *en, int blk, int R, const int *slot, const int *pos, float *x) {
    const Model_f32 *m = en->m;
    const ModelConfig *c = &m->L.cfg;
    const LayerLayout *y = &m->L.layers[blk];
    int d = c->hidden_size;
    rmsnorm_forward_f32(en->h, en->rstd, x, m->params + y->attn_norm, R, d, c->rms_norm_eps);
    attention(en, blk, R, slot, pos, en->h);
    prow(en, x, d, en->ao, c->num_attention_heads * config_v_head_dim(c), m->params + y->o, NULL, R,
            c->num_attention_heads * config_v_head_dim(c), d, 1);
    rmsnorm_forward_f32(en->h, en->rstd, x, m->params + y->ffn_norm, R, d, c->rms_norm_eps);
    ffn(en, blk, R, en->h, x);
}

static void head(Engine *en, int R, const float *x, size_t norm, float *logits) {
    const Model_f32 *m = en->m;
    const ModelConfig *c = &m->L.cfg;
    rmsnorm_forward_f32(en->xf, en->rstd, x, m->params + norm, R, c->hidden_size, c->rms_norm_eps);
    prow(en, logits, c->vocab_size, en->xf, c->hidden_size, m->params + m->L.lm_head, NULL, R,
            c->hidden_size, c->vocab_size, 0);
}

void engine_forward(Engine *en, int R, const int *slot, const int *tok, const int *pos, float *logits) {
    const Model_f32 *m = en->m;
    int d = m->L.cfg.hidden_size;
    DS_CHECK(R <= en->o.max_rows);
    // the weights changed since engine_refresh: running would mix old derived and new weights
    DS_CHECK(en->version == m->params_version);
    for (int r = 0; r < R; r++) {
        DS_CHECK(pos[r] < en->o.max_len && pos[r] <= en->len[slot[r]]);
        en->len[slot[r]] = pos[r] + 1;
    }
    embedding_forward_f32(en->x, tok, m->params + m->L.embed, R, d);
    for (int l = 0; l < m->L.nlayers; l++) block(en, l, R, slot, pos, en->x);
    m->be->copy(en->hid, en->x, sizeof(float) * (size_t)R * d);
    head(en, R, en->x, m->L.final_norm, logits);
}

void engine_mtp_forward(Engine *en, int R, const int *src, const int *slot, const int *pos,
                        const int *next_tok, float *logits) {
    const Model_f32 *m = en->m;
    const ModelConfig *c = &m->L.cfg;
    int d = c->hidden_size, blk = m->L.nlayers;
    const LayerLayout *y = &m->L.layers[blk];
    DS_CHECK(m->L.nmtp > 0 && R <= en->o.max_rows);
    DS_CHECK(en->version == m->params_version);
    // [norm(embedding of the next token) | norm(hidden state)] → eh_proj → block → head
    embedding_forward_f32(en->tmp, next_tok, m->params + m->L.embed, R, d);
    rmsnorm_forward_f32(en->h, en->rstd, en->tmp, m->params + y->enorm, R, d, c->rms_norm_eps);
    gather_rows_f32(en->tmp, en->hid, src, R, d);
    rmsnorm_forward_f32(en->xf, en->rstd, en->tmp, m->params + y->hnorm, R, d, c->rms_norm_eps);
    concat_cols_forward_f32(en->cat, en->h, d, en->xf, d, R);
    prow(en, en->tmp, d, en->cat, 2 * d, m->params + y->eh_proj, NULL, R, 2 * d, d, 0);
    block(en, blk, R, slot, pos, en->tmp);
    head(en, R, en->tmp, y->head_norm, logits);
}
