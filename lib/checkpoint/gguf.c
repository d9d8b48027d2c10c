// gguf.c — GGUF export: the file is header, key/value metadata, tensor descriptions, then the
// tensor data, each tensor aligned to 32 bytes. Dimensions are listed innermost first (ne[0] is a
// row's length), the reverse of the row-major shapes ds uses.
#include "checkpoint/gguf.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "math/half.h"
#include "math/rope.h"

enum { GGUF_VERSION = 3, GGUF_ALIGN = 32 };
enum { KV_U32 = 4, KV_I32 = 5, KV_F32 = 6, KV_BOOL = 7, KV_STRING = 8, KV_ARRAY = 9 };
enum { TOKEN_NORMAL = 1, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4, TOKEN_UNUSED = 5 };

int gguf_type_from_name(const char *name, GgufType *t) {
    if (!strcmp(name, "f32")) *t = GGUF_F32;
    else if (!strcmp(name, "f16")) *t = GGUF_F16;
    else if (!strcmp(name, "bf16")) *t = GGUF_BF16;
    else return DS_ERR;
    return DS_OK;
}

// ---------------------------------------------------------------------------------------------
// Metadata: little-endian scalars and length-prefixed strings appended to a buffer.

typedef struct Meta {
    DsBuf b;
    uint64_t n;
} Meta;

static void put_u32(DsBuf *b, uint32_t v) { dsbuf_append(b, &v, 4); }
static void put_u64(DsBuf *b, uint64_t v) { dsbuf_append(b, &v, 8); }
static void put_str(DsBuf *b, const char *s, size_t n) {
    put_u64(b, n);
    dsbuf_append(b, s, n);
}
static void key(Meta *m, const char *k, uint32_t type) {
    put_str(&m->b, k, strlen(k));
    put_u32(&m->b, type);
    m->n++;
}
static void kv_u32(Meta *m, const char *k, uint32_t v) { key(m, k, KV_U32), put_u32(&m->b, v); }
static void kv_f32(Meta *m, const char *k, float v) { key(m, k, KV_F32), dsbuf_append(&m->b, &v, 4); }
static void kv_bool(Meta *m, const char *k, int v) {
    uint8_t x = v != 0;
    key(m, k, KV_BOOL), dsbuf_append(&m->b, &x, 1);
}
static void kv_str(Meta *m, const char *k, const char *v) { key(m, k, KV_STRING), put_str(&m->b, v, strlen(v)); }
// "{arch}.{suffix}", the architecture-scoped keys.
static const char *ak(char *buf, size_t n, const char *arch, const char *suffix) {
    snprintf(buf, n, "%s.%s", arch, suffix);
    return buf;
}

// ---------------------------------------------------------------------------------------------
// Tensors: each row of a GGUF tensor points at ncols floats of the model (a slice of a fused ds
// matrix, a permuted row, or a row of a transposed copy the tensor owns).

typedef struct GTensor {
    char name[96];
    int nd;
    uint64_t ne[3];
    GgufType type;
    const float **rows; // ne[1] * ne[2] rows of ne[0] floats
    float *own;         // storage for rows that are not in the model (transposes)
    uint64_t offset;
} GTensor;

typedef struct TensorList {
    GTensor *t;
    int n, cap;
} TensorList;

static GTensor *add_tensor(TensorList *l, const char *name, int nd, uint64_t ne0, uint64_t ne1,
                           uint64_t ne2, GgufType type) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->t = ds_realloc(l->t, (size_t)l->cap * sizeof *l->t);
    }
    GTensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->nd = nd;
    t->ne[0] = ne0, t->ne[1] = ne1, t->ne[2] = ne2;
    t->type = nd == 1 ? GGUF_F32 : type; // vectors stay F32: llama.cpp adds them to F32 activations
    t->rows = ds_malloc((size_t)(ne1 * ne2) * sizeof *t->rows);
    return t;
}

// A [rows, cols] matrix (or a vector when rows is 0) at p, rows consecutive.
static void add_matrix(TensorList *l, const char *name, const float *p, int64_t rows, int64_t cols,
                       GgufType type) {
    GTensor *t = add_tensor(l, name, rows ? 2 : 1, (uint64_t)cols, 1, 1, type);
    if (rows) {
        free(t->rows);
        t->ne[1] = (uint64_t)rows;
        t->rows = ds_malloc((size_t)rows * sizeof *t->rows);
        for (int64_t r = 0; r < rows; r++) t->rows[r] = p + r * cols;
    } else t->rows[0] = p;
}

// llama.cpp's "llama" architecture rotates interleaved pairs; ds (and Hugging Face) rotate halves.
// Within each head, output row 2i+j comes from row j*hd/2 + i, which turns one into the other.
static void add_rotary_matrix(TensorList *l, const char *name, const float *p, int heads, int hd,
                              int64_t cols, GgufType type) {
    GTensor *t = add_tensor(l, name, cols > 1 ? 2 : 1, (uint64_t)cols, (uint64_t)heads * hd, 1, type);
    if (cols == 1) { // a bias: one value per row, written as a vector
        t->nd = 1, t->type = GGUF_F32;
        t->ne[0] = (uint64_t)heads * hd, t->ne[1] = 1;
        t->own = ds_malloc((size_t)heads * hd * sizeof(float));
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < hd / 2; i++)
                for (int j = 0; j < 2; j++) t->own[h * hd + 2 * i + j] = p[h * hd + j * (hd / 2) + i];
        t->rows[0] = t->own;
        return;
    }
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++)
                t->rows[h * hd + 2 * i + j] = p + (int64_t)(h * hd + j * (hd / 2) + i) * cols;
}

static size_t elem_size(GgufType t) { return t == GGUF_F32 ? 4 : 2; }
static uint64_t tensor_bytes(const GTensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * elem_size(t->type);
}

static void free_tensors(TensorList *l) {
    for (int i = 0; i < l->n; i++) free(l->t[i].rows), free(l->t[i].own);
    free(l->t);
}

// ---------------------------------------------------------------------------------------------
// The model's tensors under llama.cpp's names.

static void dense_ffn(TensorList *l, const char *pre, const Model_f32 *m, size_t gate_up, size_t down,
                      int64_t d, int64_t F, GgufType ty, const char *sfx) {
    char n[96];
    const float *gu = m->params + gate_up;
    snprintf(n, sizeof n, "%s.ffn_gate%s.weight", pre, sfx), add_matrix(l, n, gu, F, d, ty);
    snprintf(n, sizeof n, "%s.ffn_up%s.weight", pre, sfx), add_matrix(l, n, gu + F * d, F, d, ty);
    snprintf(n, sizeof n, "%s.ffn_down%s.weight", pre, sfx), add_matrix(l, n, m->params + down, d, F, ty);
}

static void dense_block(TensorList *l, const Model_f32 *m, int i, GgufType ty) {
    const ModelConfig *c = &m->L.cfg;
    const LayerLayout *ly = &m->L.layers[i];
    const float *P = m->params;
    int64_t d = c->hidden_size, H = c->num_attention_heads, Hkv = config_kv_heads(c);
    int hd = config_qk_head_dim(c);
    int rotate = c->arch == ARCH_LLAMA; // qwen2 is rotate-half ("neox") in llama.cpp too
    char pre[32], n[96];
    snprintf(pre, sizeof pre, "blk.%d", i);
    snprintf(n, sizeof n, "%s.attn_norm.weight", pre), add_matrix(l, n, P + ly->attn_norm, 0, d, ty);
    const float *q = P + ly->qkv, *k = q + H * hd * d, *v = k + Hkv * hd * d;
    snprintf(n, sizeof n, "%s.attn_q.weight", pre);
    rotate ? add_rotary_matrix(l, n, q, (int)H, hd, d, ty) : add_matrix(l, n, q, H * hd, d, ty);
    snprintf(n, sizeof n, "%s.attn_k.weight", pre);
    rotate ? add_rotary_matrix(l, n, k, (int)Hkv, hd, d, ty) : add_matrix(l, n, k, Hkv * hd, d, ty);
    snprintf(n, sizeof n, "%s.attn_v.weight", pre), add_matrix(l, n, v, Hkv * hd, d, ty);
    if (ly->qkv_bias != LAYOUT_NONE) {
        const float *qb = P + ly->qkv_bias, *kb = qb + H * hd, *vb = kb + Hkv * hd;
        snprintf(n, sizeof n, "%s.attn_q.bias", pre);
        rotate ? add_rotary_matrix(l, n, qb, (int)H, hd, 1, ty) : add_matrix(l, n, qb, 0, H * hd, ty);
        snprintf(n, sizeof n, "%s.attn_k.bias", pre);
        rotate ? add_rotary_matrix(l, n, kb, (int)Hkv, hd, 1, ty) : add_matrix(l, n, kb, 0, Hkv * hd, ty);
        snprintf(n, sizeof n, "%s.attn_v.bias", pre), add_matrix(l, n, vb, 0, Hkv * hd, ty);
    }
    snprintf(n, sizeof n, "%s.attn_output.weight", pre), add_matrix(l, n, P + ly->o, d, H * hd, ty);
    snprintf(n, sizeof n, "%s.ffn_norm.weight", pre), add_matrix(l, n, P + ly->ffn_norm, 0, d, ty);
    dense_ffn(l, pre, m, ly->gate_up, ly->down, d, c->intermediate_size, ty, "");
}

static void mla_moe_block(TensorList *l, const Model_f32 *m, int i, GgufType ty) {
    const ModelConfig *c = &m->L.cfg;
    const LayerLayout *ly = &m->L.layers[i];
    const float *P = m->params;
    int64_t d = c->hidden_size, H = c->num_attention_heads;
    int64_t dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, dv = c->v_head_dim;
    int64_t rkv = c->kv_lora_rank, rq = c->q_lora_rank;
    char pre[32], n[96];
    snprintf(pre, sizeof pre, "blk.%d", i);
    snprintf(n, sizeof n, "%s.attn_norm.weight", pre), add_matrix(l, n, P + ly->attn_norm, 0, d, ty);
    if (rq) {
        snprintf(n, sizeof n, "%s.attn_q_a.weight", pre), add_matrix(l, n, P + ly->q_a, rq, d, ty);
        snprintf(n, sizeof n, "%s.attn_q_a_norm.weight", pre), add_matrix(l, n, P + ly->q_a_norm, 0, rq, ty);
        snprintf(n, sizeof n, "%s.attn_q_b.weight", pre), add_matrix(l, n, P + ly->q_b, H * (dn + dr), rq, ty);
    } else {
        snprintf(n, sizeof n, "%s.attn_q.weight", pre), add_matrix(l, n, P + ly->q_b, H * (dn + dr), d, ty);
    }
    snprintf(n, sizeof n, "%s.attn_kv_a_mqa.weight", pre), add_matrix(l, n, P + ly->kv_a, rkv + dr, d, ty);
    snprintf(n, sizeof n, "%s.attn_kv_a_norm.weight", pre), add_matrix(l, n, P + ly->kv_a_norm, 0, rkv, ty);
    // kv_b_proj is [H*(dn+dv), rkv]: per head dn key rows then dv value rows. llama.cpp's absorbed
    // attention wants the key part transposed per head (k_b: [H][rkv][dn]) and the value part as is
    // (v_b: [H][dv][rkv]).
    const float *kvb = P + ly->kv_b;
    GTensor *kb = add_tensor(l, "", 3, (uint64_t)dn, (uint64_t)rkv, (uint64_t)H, ty);
    snprintf(kb->name, sizeof kb->name, "%s.attn_k_b.weight", pre);
    kb->own = ds_malloc((size_t)(H * rkv * dn) * sizeof(float));
    for (int64_t h = 0; h < H; h++)
        for (int64_t r = 0; r < rkv; r++) {
            float *row = kb->own + (h * rkv + r) * dn;
            for (int64_t j = 0; j < dn; j++) row[j] = kvb[(h * (dn + dv) + j) * rkv + r];
            kb->rows[h * rkv + r] = row;
        }
    GTensor *vbt = add_tensor(l, "", 3, (uint64_t)rkv, (uint64_t)dv, (uint64_t)H, ty);
    snprintf(vbt->name, sizeof vbt->name, "%s.attn_v_b.weight", pre);
    for (int64_t h = 0; h < H; h++)
        for (int64_t j = 0; j < dv; j++) vbt->rows[h * dv + j] = kvb + (h * (dn + dv) + dn + j) * rkv;
    snprintf(n, sizeof n, "%s.attn_output.weight", pre), add_matrix(l, n, P + ly->o, d, H * dv, ty);
    snprintf(n, sizeof n, "%s.ffn_norm.weight", pre), add_matrix(l, n, P + ly->ffn_norm, 0, d, ty);
    if (!ly->moe) {
        dense_ffn(l, pre, m, ly->gate_up, ly->down, d, c->intermediate_size, ty, "");
        return;
    }
    int64_t E = c->n_routed_experts, Fm = c->moe_intermediate_size;
    snprintf(n, sizeof n, "%s.ffn_gate_inp.weight", pre), add_matrix(l, n, P + ly->router, E, d, GGUF_F32);
    snprintf(n, sizeof n, "%s.exp_probs_b.bias", pre), add_matrix(l, n, P + ly->router_bias, 0, E, ty);
    // The routed experts stacked into 3-D tensors: [E][Fm][d] for gate and up, [E][d][Fm] for down.
    static const char *const names[3] = {"gate", "up", "down"};
    for (int w = 0; w < 3; w++) {
        int64_t rows = w < 2 ? Fm : d, cols = w < 2 ? d : Fm;
        GTensor *t = add_tensor(l, "", 3, (uint64_t)cols, (uint64_t)rows, (uint64_t)E, ty);
        snprintf(t->name, sizeof t->name, "%s.ffn_%s_exps.weight", pre, names[w]);
        for (int64_t x = 0; x < E; x++) {
            const float *ex = P + ly->experts + (size_t)x * ly->expert_stride;
            const float *base = w == 0 ? ex : w == 1 ? ex + Fm * d : ex + 2 * Fm * d;
            for (int64_t r = 0; r < rows; r++) t->rows[x * rows + r] = base + r * cols;
        }
    }
    if (c->n_shared_experts)
        dense_ffn(l, pre, m, ly->shared_gate_up, ly->shared_down, d, Fm * c->n_shared_experts, ty, "_shexp");
}

// ---------------------------------------------------------------------------------------------
// The tokenizer: vocabulary, merges and the pre-tokenizer's llama.cpp name.

static const char *const GPT2_RE =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char *const LLAMA3_RE =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const QWEN2_RE =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// The regexes of the pre-tokenizer in order (a ByteLevel with use_regex stands for GPT-2's).
static int collect_regexes(const json_t *p, const char **re, int *n, int max) {
    if (!json_is_object(p)) return DS_ERR;
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) return DS_ERR;
    if (!strcmp(type, "Sequence")) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(p, "pretokenizers"), i, x) if (collect_regexes(x, re, n, max)) return DS_ERR;
        return DS_OK;
    }
    if (!strcmp(type, "Split")) {
        const char *r = json_string_value(json_object_get(json_object_get(p, "pattern"), "Regex"));
        if (!r || *n == max) return DS_ERR;
        re[(*n)++] = r;
        return DS_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        json_t *u = json_object_get(p, "use_regex");
        if (!u || json_is_true(u)) {
            if (*n == max) return DS_ERR;
            re[(*n)++] = GPT2_RE;
        }
        return DS_OK;
    }
    return DS_ERR;
}

static const char *pre_name(const json_t *tok) {
    const char *re[8];
    int n = 0;
    if (collect_regexes(json_object_get(tok, "pre_tokenizer"), re, &n, 8) || n != 1) return NULL;
    if (!strcmp(re[0], GPT2_RE)) return "gpt-2";
    if (!strcmp(re[0], LLAMA3_RE)) return "llama-bpe";
    if (!strcmp(re[0], QWEN2_RE)) return "qwen2";
    return NULL;
}

static void kv_str_array(Meta *m, const char *k, const char *const *s, const size_t *len, uint64_t n) {
    key(m, k, KV_ARRAY);
    put_u32(&m->b, KV_STRING);
    put_u64(&m->b, n);
    for (uint64_t i = 0; i < n; i++) put_str(&m->b, s[i], len[i]);
}

static int tokenizer_meta(Meta *m, const char *text, size_t len, int vocab, const GgufExport *o,
                          DsErr *e) {
    json_error_t je;
    json_t *t = json_loadb(text, len, 0, &je);
    if (!t) return ds_errf(e, "tokenizer.json:%d: %s", je.line, je.text);
    int rc = DS_ERR;
    const char **tok = ds_calloc((size_t)vocab, sizeof *tok);
    size_t *tlen = ds_calloc((size_t)vocab, sizeof *tlen);
    int32_t *type = ds_malloc((size_t)vocab * sizeof *type);
    char **pad = ds_calloc((size_t)vocab, sizeof *pad);
    const char **merge = NULL;
    size_t *mlen = NULL;
    char **mown = NULL;
    size_t nm = 0;
    int eos = o->eos_id;
    json_t *model = json_object_get(t, "model"), *vmap = json_object_get(model, "vocab");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    const char *pre = pre_name(t);
    if (!mtype || strcmp(mtype, "BPE") || !json_is_object(vmap)) {
        ds_errf(e, "tokenizer.json: only byte-level BPE tokenizers can be written to GGUF");
        goto done;
    }
    if (!pre) {
        ds_errf(e, "tokenizer.json: pre_tokenizer: no llama.cpp pre-tokenizer name for this regex "
                   "(GGUF export knows GPT-2's, Llama 3's and Qwen2's)");
        goto done;
    }
    for (int i = 0; i < vocab; i++) type[i] = TOKEN_NORMAL;
    const char *k;
    json_t *v;
    json_object_foreach(vmap, k, v) {
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || id >= vocab) {
            ds_errf(e, "tokenizer.json: model.vocab: \"%s\": id %lld outside the model's %d", k,
                    (long long)id, vocab);
            goto done;
        }
        tok[id] = k, tlen[id] = strlen(k);
    }
    size_t i;
    json_array_foreach(json_object_get(t, "added_tokens"), i, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        const char *c = json_string_value(json_object_get(v, "content"));
        if (!c || id < 0 || id >= vocab) {
            ds_errf(e, "tokenizer.json: added_tokens[%zu]: id outside the model's %d", i, vocab);
            goto done;
        }
        tok[id] = c, tlen[id] = strlen(c);
        if (eos < 0 && !strcmp(c, "<|endoftext|>")) eos = (int)id;
        type[id] = json_is_true(json_object_get(v, "special")) ? TOKEN_CONTROL : TOKEN_USER_DEFINED;
    }
    for (int id = 0; id < vocab; id++)
        if (!tok[id]) { // ids the tokenizer never produces (a vocabulary padded for the GEMMs)
            pad[id] = ds_malloc(32);
            tlen[id] = (size_t)snprintf(pad[id], 32, "[PAD%d]", id);
            tok[id] = pad[id], type[id] = TOKEN_UNUSED;
        }
    json_t *merges = json_object_get(model, "merges");
    nm = json_array_size(merges);
    merge = ds_calloc(nm + 1, sizeof *merge);
    mlen = ds_calloc(nm + 1, sizeof *mlen);
    mown = ds_calloc(nm + 1, sizeof *mown);
    json_array_foreach(merges, i, v) {
        if (json_is_string(v)) { // "a b"
            merge[i] = json_string_value(v), mlen[i] = json_string_length(v);
        } else if (json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
                   json_is_string(json_array_get(v, 1))) { // ["a", "b"]
            const char *a = json_string_value(json_array_get(v, 0)), *b = json_string_value(json_array_get(v, 1));
            size_t la = strlen(a), lb = strlen(b);
            mown[i] = ds_malloc(la + lb + 2);
            memcpy(mown[i], a, la), mown[i][la] = ' ', memcpy(mown[i] + la + 1, b, lb + 1);
            merge[i] = mown[i], mlen[i] = la + lb + 1;
        } else {
            ds_errf(e, "tokenizer.json: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", i);
            goto done;
        }
    }
    kv_str(m, "tokenizer.ggml.model", "gpt2");
    kv_str(m, "tokenizer.ggml.pre", pre);
    kv_str_array(m, "tokenizer.ggml.tokens", tok, tlen, (uint64_t)vocab);
    key(m, "tokenizer.ggml.token_type", KV_ARRAY);
    put_u32(&m->b, KV_I32);
    put_u64(&m->b, (uint64_t)vocab);
    dsbuf_append(&m->b, type, (size_t)vocab * 4);
    kv_str_array(m, "tokenizer.ggml.merges", merge, mlen, nm);
    if (o->bos_id >= 0) kv_u32(m, "tokenizer.ggml.bos_token_id", (uint32_t)o->bos_id);
    if (eos >= 0) kv_u32(m, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    kv_bool(m, "tokenizer.ggml.add_bos_token", 0); // ds's prompts carry their own specials
    kv_bool(m, "tokenizer.ggml.add_eos_token", 0);
    rc = DS_OK;
done:
    for (int id = 0; id < vocab; id++) free(pad[id]);
    for (size_t j = 0; j < nm && mown; j++) free(mown[j]);
    free(pad), free(tok), free(tlen), free(type), free(merge), free(mlen), free(mown);
    json_decref(t);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// RoPE scaling as llama.cpp reads it. Its rope multiplies cos and sin by an attention factor and,
// for deepseek2, also scales the softmax by a product of that factor and yarn_log_multiplier; the
// keys are chosen so that both come out as ds computes them (docs/GGUF.md).

static double yarn_m(double factor, double m) { return 0.1 * m * log(factor) + 1.0; }

// No scaling to write: default, or a factor of 1 (yarn, linear and llama3 then leave f_i alone).
static int rope_unscaled(const ModelConfig *c) {
    return c->rope_scaling.type == ROPE_DEFAULT ||
           (c->rope_scaling.type != ROPE_DYNAMIC && c->rope_scaling.factor == 1.0);
}

static int rope_check(const ModelConfig *c, const char *arch, DsErr *e) {
    const struct RopeScaling *s = &c->rope_scaling;
    if (rope_unscaled(c)) return DS_OK;
    if (s->type == ROPE_DYNAMIC)
        return ds_errf(e, "config.json: rope_scaling: dynamic (NTK-aware) scaling has no llama.cpp equivalent; "
                          "GGUF export refuses it");
    if (s->type == ROPE_LLAMA3 && c->arch != ARCH_LLAMA)
        return ds_errf(e, "config.json: rope_scaling: llama3 scaling is written as llama.cpp's rope_freqs "
                          "tensor, which its %s architecture does not read", arch);
    if (s->type == ROPE_YARN && (s->beta_fast != 32.0 || s->beta_slow != 1.0))
        return ds_errf(e, "config.json: rope_scaling: llama.cpp's %s architecture uses yarn beta_fast 32 and "
                          "beta_slow 1 whatever the file says (got %g and %g)", arch, s->beta_fast, s->beta_slow);
    return DS_OK;
}

static void rope_meta(Meta *m, const ModelConfig *c, const char *arch) {
    const struct RopeScaling *s = &c->rope_scaling;
    char k[128];
    if (rope_unscaled(c) || s->type == ROPE_LLAMA3) return; // llama3: the rope_freqs tensor
    int yarn = s->type == ROPE_YARN;
    double F = s->factor, m1 = yarn_m(F, 1.0);
    double R = rope_attention_factor(c);                                     // ds's cos/sin factor
    double K = config_softmax_scale(c) * sqrt((double)config_qk_head_dim(c)); // ds's softmax factor
    // llama.cpp's rope factor is attn_factor A, times m1 under yarn unless yarn_log_multiplier is set.
    double A = yarn ? R / m1 : R, logmul = 0;
    if (c->arch == ARCH_DEEPSEEK_V3) {
        // deepseek2's softmax factor is (A * m1 * m(L))^2 for L = yarn_log_multiplier / 0.1, where
        // yarn with L != 0 divides A's m1 back out of the rope. 0.1 * mscale_all_dim for V3's own
        // mscale == mscale_all_dim, as llama.cpp's converter writes.
        double t = sqrt(K) / (A * m1);
        if (!yarn || fabs(t - 1) > 1e-7) {
            if (yarn) A = R, t = sqrt(K) / R;
            logmul = (t - 1) / log(F);
        }
    }
    kv_str(m, ak(k, sizeof k, arch, "rope.scaling.type"), yarn ? "yarn" : "linear");
    kv_f32(m, ak(k, sizeof k, arch, "rope.scaling.factor"), (float)F);
    if ((float)A != 1.0f) kv_f32(m, ak(k, sizeof k, arch, "rope.scaling.attn_factor"), (float)A);
    if (!yarn) {
        if (logmul != 0) kv_f32(m, ak(k, sizeof k, arch, "rope.scaling.yarn_log_multiplier"), (float)logmul);
        return;
    }
    kv_u32(m, ak(k, sizeof k, arch, "rope.scaling.original_context_length"),
           (uint32_t)s->original_max_position_embeddings);
    if (logmul != 0) kv_f32(m, ak(k, sizeof k, arch, "rope.scaling.yarn_log_multiplier"), (float)logmul);
    kv_f32(m, ak(k, sizeof k, arch, "rope.scaling.yarn_beta_fast"), (float)s->beta_fast);
    kv_f32(m, ak(k, sizeof k, arch, "rope.scaling.yarn_beta_slow"), (float)s->beta_slow);
}

// llama3: llama.cpp divides each frequency by rope_freqs[i]; ds's own frequencies give the ratio.
static void rope_freqs(TensorList *l, const ModelConfig *c) {
    int dim = config_rope_dim(c), half = dim / 2;
    GTensor *t = add_tensor(l, "rope_freqs.weight", 1, (uint64_t)half, 1, 1, GGUF_F32);
    t->own = ds_malloc((size_t)half * sizeof(float));
    for (int i = 0; i < half; i++)
        t->own[i] = (float)(pow(c->rope_theta, -2.0 * i / dim) / rope_inv_freq(c, dim, i));
    t->rows[0] = t->own;
}

static int model_meta(Meta *m, const ModelConfig *c, const char *arch, const GgufExport *o, DsErr *e) {
    char k[128];
    if (rope_check(c, arch, e)) return DS_ERR;
    kv_str(m, "general.architecture", arch);
    kv_str(m, "general.name", o->name ? o->name : "ds");
    kv_u32(m, "general.file_type", o->type == GGUF_F32 ? 0 : o->type == GGUF_F16 ? 1 : 32);
    kv_u32(m, "general.alignment", GGUF_ALIGN);
    kv_u32(m, ak(k, sizeof k, arch, "context_length"), (uint32_t)c->max_position_embeddings);
    kv_u32(m, ak(k, sizeof k, arch, "embedding_length"), (uint32_t)c->hidden_size);
    kv_u32(m, ak(k, sizeof k, arch, "block_count"), (uint32_t)c->num_hidden_layers);
    kv_u32(m, ak(k, sizeof k, arch, "feed_forward_length"), (uint32_t)c->intermediate_size);
    kv_u32(m, ak(k, sizeof k, arch, "attention.head_count"), (uint32_t)c->num_attention_heads);
    kv_f32(m, ak(k, sizeof k, arch, "rope.freq_base"), (float)c->rope_theta);
    kv_f32(m, ak(k, sizeof k, arch, "attention.layer_norm_rms_epsilon"), (float)c->rms_norm_eps);
    kv_u32(m, ak(k, sizeof k, arch, "vocab_size"), (uint32_t)c->vocab_size);
    rope_meta(m, c, arch);
    if (c->arch != ARCH_DEEPSEEK_V3) {
        int hd = config_qk_head_dim(c);
        kv_u32(m, ak(k, sizeof k, arch, "attention.head_count_kv"), (uint32_t)config_kv_heads(c));
        kv_u32(m, ak(k, sizeof k, arch, "rope.dimension_count"), (uint32_t)hd);
        kv_u32(m, ak(k, sizeof k, arch, "attention.key_length"), (uint32_t)hd);
        kv_u32(m, ak(k, sizeof k, arch, "attention.value_length"), (uint32_t)hd);
        return DS_OK;
    }
    // MLA is stored as multi-query attention over the latent: one "kv head" of width
    // kv_lora_rank + rope dims for keys and kv_lora_rank for values; the per-head sizes of the
    // expanded attention are the _mla keys.
    kv_u32(m, ak(k, sizeof k, arch, "attention.head_count_kv"), 1);
    kv_u32(m, ak(k, sizeof k, arch, "leading_dense_block_count"), (uint32_t)c->first_k_dense_replace);
    if (c->q_lora_rank) kv_u32(m, ak(k, sizeof k, arch, "attention.q_lora_rank"), (uint32_t)c->q_lora_rank);
    kv_u32(m, ak(k, sizeof k, arch, "attention.kv_lora_rank"), (uint32_t)c->kv_lora_rank);
    kv_u32(m, ak(k, sizeof k, arch, "attention.key_length"), (uint32_t)(c->kv_lora_rank + c->qk_rope_head_dim));
    kv_u32(m, ak(k, sizeof k, arch, "attention.value_length"), (uint32_t)c->kv_lora_rank);
    kv_u32(m, ak(k, sizeof k, arch, "attention.key_length_mla"), (uint32_t)(c->qk_nope_head_dim + c->qk_rope_head_dim));
    kv_u32(m, ak(k, sizeof k, arch, "attention.value_length_mla"), (uint32_t)c->v_head_dim);
    kv_u32(m, ak(k, sizeof k, arch, "rope.dimension_count"), (uint32_t)c->qk_rope_head_dim);
    kv_u32(m, ak(k, sizeof k, arch, "expert_feed_forward_length"), (uint32_t)c->moe_intermediate_size);
    kv_u32(m, ak(k, sizeof k, arch, "expert_count"), (uint32_t)c->n_routed_experts);
    kv_u32(m, ak(k, sizeof k, arch, "expert_shared_count"), (uint32_t)c->n_shared_experts);
    kv_u32(m, ak(k, sizeof k, arch, "expert_used_count"), (uint32_t)c->num_experts_per_tok);
    kv_f32(m, ak(k, sizeof k, arch, "expert_weights_scale"), (float)c->routed_scaling_factor);
    kv_bool(m, ak(k, sizeof k, arch, "expert_weights_norm"), c->norm_topk_prob);
    kv_u32(m, ak(k, sizeof k, arch, "expert_gating_func"), c->scoring_sigmoid ? 2 : 1);
    // greedy top-k is one group that is always chosen
    int greedy = c->topk_method == TOPK_GREEDY;
    kv_u32(m, ak(k, sizeof k, arch, "expert_group_count"), greedy ? 1u : (uint32_t)c->n_group);
    kv_u32(m, ak(k, sizeof k, arch, "expert_group_used_count"), greedy ? 1u : (uint32_t)c->topk_group);
    return DS_OK;
}

static void write_row(FILE *f, const float *row, uint64_t n, GgufType type) {
    if (type == GGUF_F32) {
        fwrite(row, 4, n, f);
        return;
    }
    uint16_t buf[1024];
    for (uint64_t i = 0; i < n;) {
        uint64_t k = DS_MIN(n - i, (uint64_t)DS_ARRAY_LEN(buf));
        for (uint64_t j = 0; j < k; j++)
            buf[j] = type == GGUF_F16 ? f32_to_f16(row[i + j]) : f32_to_bf16(row[i + j]);
        fwrite(buf, 2, k, f);
        i += k;
    }
}

static void pad_to(FILE *f, uint64_t *at) {
    static const char zeros[GGUF_ALIGN] = {0};
    uint64_t p = (GGUF_ALIGN - *at % GGUF_ALIGN) % GGUF_ALIGN;
    fwrite(zeros, 1, p, f);
    *at += p;
}

int gguf_export(const Model_f32 *m, const char *tok_json, size_t tok_len, const GgufExport *o,
                const char *path, DsErr *e) {
    const ModelConfig *c = &m->L.cfg;
    const char *arch = c->arch == ARCH_DEEPSEEK_V3 ? "deepseek2" : c->arch == ARCH_QWEN2 ? "qwen2" : "llama";
    if (!tok_json) return ds_errf(e, "GGUF export needs the model's tokenizer.json (none in the checkpoint)");
    Meta meta = {0};
    TensorList tl = {0};
    int rc = DS_ERR;
    if (model_meta(&meta, c, arch, o, e) || tokenizer_meta(&meta, tok_json, tok_len, c->vocab_size, o, e))
        goto done;
    int64_t d = c->hidden_size, V = c->vocab_size;
    add_matrix(&tl, "token_embd.weight", m->params + m->L.embed, V, d, o->type);
    if (c->rope_scaling.type == ROPE_LLAMA3 && !rope_unscaled(c)) rope_freqs(&tl, c);
    for (int i = 0; i < c->num_hidden_layers; i++) // MTP modules (layers past these) are left out
        c->arch == ARCH_DEEPSEEK_V3 ? mla_moe_block(&tl, m, i, o->type) : dense_block(&tl, m, i, o->type);
    add_matrix(&tl, "output_norm.weight", m->params + m->L.final_norm, 0, d, o->type);
    if (m->L.lm_head != m->L.embed) add_matrix(&tl, "output.weight", m->params + m->L.lm_head, V, d, o->type);

    DsBuf info = {0};
    uint64_t off = 0;
    for (int i = 0; i < tl.n; i++) {
        GTensor *t = &tl.t[i];
        t->offset = off;
        off += tensor_bytes(t);
        off += (GGUF_ALIGN - off % GGUF_ALIGN) % GGUF_ALIGN;
        put_str(&info, t->name, strlen(t->name));
        put_u32(&info, (uint32_t)t->nd);
        for (int j = 0; j < t->nd; j++) put_u64(&info, t->ne[j]);
        put_u32(&info, (uint32_t)t->type);
        put_u64(&info, t->offset);
    }
    AtomicFile f;
    if (atomic_open(&f, path, e)) {
        dsbuf_free(&info);
        goto done;
    }
    DsBuf head = {0};
    dsbuf_append(&head, "GGUF", 4);
    put_u32(&head, GGUF_VERSION);
    put_u64(&head, (uint64_t)tl.n);
    put_u64(&head, meta.n);
    fwrite(head.data, 1, head.len, f.f);
    fwrite(meta.b.data, 1, meta.b.len, f.f);
    fwrite(info.data, 1, info.len, f.f);
    uint64_t at = head.len + meta.b.len + info.len;
    dsbuf_free(&head), dsbuf_free(&info);
    pad_to(f.f, &at);
    for (int i = 0; i < tl.n; i++) {
        const GTensor *t = &tl.t[i];
        for (uint64_t r = 0; r < t->ne[1] * t->ne[2]; r++) write_row(f.f, t->rows[r], t->ne[0], t->type);
        at += tensor_bytes(t);
        pad_to(f.f, &at);
    }
    rc = atomic_commit(&f, e);
done:
    dsbuf_free(&meta.b);
    free_tensors(&tl);
    return rc;
}
