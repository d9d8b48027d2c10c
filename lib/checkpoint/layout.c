// layout.c — the flat parameter layout and Hugging Face tensor names of a model.
#include "checkpoint/layout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Sizing state of layout_size, kept apart from ModelLayout's public fields.
typedef struct Sizing {
    LayoutSize s;
    int overflow;
} Sizing;

static LayoutPart part_of(const char *name) {
    if (strstr(name, "embed_tokens") || strstr(name, "lm_head")) return LAYOUT_PART_EMBED;
    if (strstr(name, ".mlp.experts.") || strstr(name, ".mlp.shared_experts.") || strstr(name, ".mlp.gate."))
        return LAYOUT_PART_MOE;
    if (strstr(name, ".mlp.")) return LAYOUT_PART_FFN;
    return LAYOUT_PART_ATTN;
}

static void size_add(Sizing *z, const char *name, int64_t rows, int64_t cols) {
    int64_t n, pad;
    int o = __builtin_mul_overflow(rows, cols ? cols : 1, &n);
    o |= __builtin_add_overflow(n, 15, &pad);
    pad = pad / 16 * 16;
    o |= __builtin_add_overflow(z->s.params, n, &z->s.params);
    o |= __builtin_add_overflow(z->s.padded, pad, &z->s.padded);
    LayoutPart p = part_of(name);
    o |= __builtin_add_overflow(z->s.part[p], n, &z->s.part[p]);
    z->s.tensors++;
    if (o && !z->overflow) z->s.overflow_part = p;
    z->overflow |= o;
}

static size_t add(ModelLayout *L, const char *name, int64_t rows, int64_t cols, unsigned flags,
                  double std, int ones) {
    if (L->sizing) {
        size_add(L->sizing, name, rows, cols);
        return 0;
    }
    if (L->np == L->cap) {
        L->cap = L->cap ? 2 * L->cap : 64;
        L->p = ds_realloc(L->p, sizeof(ParamInfo) * (size_t)L->cap);
    }
    ParamInfo *p = &L->p[L->np++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = cols ? 2 : 1;
    p->shape[0] = rows, p->shape[1] = cols;
    p->numel = (size_t)rows * (size_t)(cols ? cols : 1);
    p->offset = L->total;
    p->flags = flags | (cols ? PARAM_DECAY : 0);
    p->init_std = std, p->init_ones = ones;
    // Keep every tensor 16-scalar aligned so rows can be handed to vector code.
    L->total += (p->numel + 15) / 16 * 16;
    return p->offset;
}

static size_t addf(ModelLayout *L, int layer, const char *suffix, int64_t rows, int64_t cols,
                   unsigned flags, double std, int ones) {
    char name[128];
    snprintf(name, sizeof name, "model.layers.%d.%s", layer, suffix);
    return add(L, name, rows, cols, flags, std, ones);
}

static void layer(ModelLayout *L, int l, LayerLayout *y) {
    const ModelConfig *c = &L->cfg;
    memset(y, 0xff, sizeof *y); // every offset LAYOUT_NONE
    int64_t d = c->hidden_size, H = c->num_attention_heads;
    double std = c->initializer_range;
    // Output projections feed the residual stream: scaled down by depth (GPT-2's 1/sqrt(2L)).
    double ostd = std / sqrt(2.0 * (c->num_hidden_layers + c->num_nextn_predict_layers));
    y->moe = config_is_moe_layer(c, l);
    if (l >= c->num_hidden_layers) {
        y->enorm = addf(L, l, "enorm.weight", d, 0, 0, 0, 1);
        y->hnorm = addf(L, l, "hnorm.weight", d, 0, 0, 0, 1);
        y->eh_proj = addf(L, l, "eh_proj.weight", d, 2 * d, 0, std, 0);
    }
    y->attn_norm = addf(L, l, "input_layernorm.weight", d, 0, 0, 0, 1);
    if (c->arch == ARCH_DEEPSEEK_V3) {
        int dqk = config_qk_head_dim(c);
        if (c->q_lora_rank) {
            y->q_a = addf(L, l, "self_attn.q_a_proj.weight", c->q_lora_rank, d, 0, std, 0);
            y->q_a_norm = addf(L, l, "self_attn.q_a_layernorm.weight", c->q_lora_rank, 0, 0, 0, 1);
            y->q_b = addf(L, l, "self_attn.q_b_proj.weight", (int64_t)H * dqk, c->q_lora_rank, 0, std, 0);
        } else {
            y->q_b = addf(L, l, "self_attn.q_proj.weight", (int64_t)H * dqk, d, 0, std, 0);
        }
        y->kv_a = addf(L, l, "self_attn.kv_a_proj_with_mqa.weight", (int64_t)c->kv_lora_rank + c->qk_rope_head_dim, d, 0, std, 0);
        y->kv_a_norm = addf(L, l, "self_attn.kv_a_layernorm.weight", c->kv_lora_rank, 0, 0, 0, 1);
        y->kv_b = addf(L, l, "self_attn.kv_b_proj.weight", H * ((int64_t)c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank, 0, std, 0);
        y->o = addf(L, l, "self_attn.o_proj.weight", d, (int64_t)H * c->v_head_dim, 0, ostd, 0);
    } else {
        int hd = c->head_dim, kvh = c->num_key_value_heads;
        y->qkv = addf(L, l, "self_attn.q_proj.weight", (int64_t)H * hd, d, 0, std, 0);
        addf(L, l, "self_attn.k_proj.weight", (int64_t)kvh * hd, d, 0, std, 0);
        addf(L, l, "self_attn.v_proj.weight", (int64_t)kvh * hd, d, 0, std, 0);
        if (c->attention_bias) {
            y->qkv_bias = addf(L, l, "self_attn.q_proj.bias", (int64_t)H * hd, 0, 0, 0, 0);
            addf(L, l, "self_attn.k_proj.bias", (int64_t)kvh * hd, 0, 0, 0, 0);
            addf(L, l, "self_attn.v_proj.bias", (int64_t)kvh * hd, 0, 0, 0, 0);
        }
        y->o = addf(L, l, "self_attn.o_proj.weight", d, (int64_t)H * hd, 0, ostd, 0);
    }
    y->ffn_norm = addf(L, l, "post_attention_layernorm.weight", d, 0, 0, 0, 1);
    if (!y->moe) {
        int F = c->intermediate_size;
        y->gate_up = addf(L, l, "mlp.gate_proj.weight", F, d, 0, std, 0);
        addf(L, l, "mlp.up_proj.weight", F, d, 0, std, 0);
        y->down = addf(L, l, "mlp.down_proj.weight", d, F, 0, ostd, 0);
    } else {
        int E = c->n_routed_experts, F = c->moe_intermediate_size;
        y->router = addf(L, l, "mlp.gate.weight", E, d, 0, std, 0);
        y->router_bias = addf(L, l, "mlp.gate.e_score_correction_bias", E, 0, PARAM_FROZEN, 0, 0);
        char name[96];
        for (int e = 0; e < E; e++) {
            snprintf(name, sizeof name, "mlp.experts.%d.gate_proj.weight", e);
            size_t g = addf(L, l, name, F, d, 0, std, 0);
            snprintf(name, sizeof name, "mlp.experts.%d.up_proj.weight", e);
            addf(L, l, name, F, d, 0, std, 0);
            snprintf(name, sizeof name, "mlp.experts.%d.down_proj.weight", e);
            addf(L, l, name, d, F, 0, ostd, 0);
            if (e == 0) y->experts = g;
            if (e == 1) y->expert_stride = g - y->experts;
        }
        if (E == 1) y->expert_stride = 0;
        if (c->n_shared_experts) {
            int64_t Fs = (int64_t)F * c->n_shared_experts;
            y->shared_gate_up = addf(L, l, "mlp.shared_experts.gate_proj.weight", Fs, d, 0, std, 0);
            addf(L, l, "mlp.shared_experts.up_proj.weight", Fs, d, 0, std, 0);
            y->shared_down = addf(L, l, "mlp.shared_experts.down_proj.weight", d, Fs, 0, ostd, 0);
        }
    }
    if (l >= c->num_hidden_layers) y->head_norm = addf(L, l, "shared_head.norm.weight", d, 0, 0, 0, 1);
}

void layout_build(ModelLayout *L, const ModelConfig *c) {
    memset(L, 0, sizeof *L);
    L->cfg = *c;
    L->nmtp = c->arch == ARCH_DEEPSEEK_V3 ? c->num_nextn_predict_layers : 0;
    L->nlayers = c->num_hidden_layers;
    L->layers = ds_calloc((size_t)(L->nlayers + L->nmtp), sizeof(LayerLayout));
    L->embed = add(L, "model.embed_tokens.weight", c->vocab_size, c->hidden_size, 0, c->initializer_range, 0);
    for (int l = 0; l < L->nlayers + L->nmtp; l++) layer(L, l, &L->layers[l]);
    L->final_norm = add(L, "model.norm.weight", c->hidden_size, 0, 0, 0, 1);
    L->lm_head = c->tie_word_embeddings
                     ? L->embed
                     : add(L, "lm_head.weight", c->vocab_size, c->hidden_size, 0, c->initializer_range, 0);
}

int layout_size(const ModelConfig *c, LayoutSize *s) {
    // The same walk as layout_build, with add() counting instead of storing.
    Sizing z;
    memset(&z, 0, sizeof z);
    ModelLayout L;
    memset(&L, 0, sizeof L);
    L.cfg = *c;
    L.sizing = &z;
    L.nmtp = c->arch == ARCH_DEEPSEEK_V3 ? c->num_nextn_predict_layers : 0;
    L.nlayers = c->num_hidden_layers;
    LayerLayout y;
    add(&L, "model.embed_tokens.weight", c->vocab_size, c->hidden_size, 0, 0, 0);
    for (int l = 0; l < L.nlayers + L.nmtp && !z.overflow; l++) layer(&L, l, &y);
    add(&L, "model.norm.weight", c->hidden_size, 0, 0, 0, 1);
    if (!c->tie_word_embeddings) add(&L, "lm_head.weight", c->vocab_size, c->hidden_size, 0, 0, 0);
    *s = z.s;
    return !z.overflow;
}

int layout_check_memory(const ModelConfig *c, int copies, const char *name, DsErr *e) {
    LayoutSize s;
    if (!layout_size(c, &s)) return ds_errf(e, "%s: the parameter count overflows 64 bits", name);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return DS_OK; // unknown: let the allocation decide
    double need = (double)s.padded * sizeof(float) * copies, have = (double)pages * (double)page;
    if (need <= have) return DS_OK;
    return ds_errf(e, "%s: %lld parameters need %.1f GiB (%d float32 copies), more than this machine's %.1f GiB",
                   name, (long long)s.params, need / (1 << 30), copies, have / (1 << 30));
}

void layout_free(ModelLayout *L) {
    free(L->p);
    free(L->layers);
    memset(L, 0, sizeof *L);
}

const ParamInfo *layout_find(const ModelLayout *L, const char *name) {
    for (int i = 0; i < L->np; i++)
        if (strcmp(L->p[i].name, name) == 0) return &L->p[i];
    return NULL;
}

static double layer_macs(const ModelLayout *L, int l, int active) {
    const ModelConfig *c = &L->cfg;
    const LayerLayout *y = &L->layers[l];
    double d = c->hidden_size, H = c->num_attention_heads, m = 0;
    if (c->arch == ARCH_DEEPSEEK_V3) {
        double dqk = config_qk_head_dim(c);
        m += c->q_lora_rank ? d * c->q_lora_rank + c->q_lora_rank * H * dqk : d * H * dqk;
        m += d * (c->kv_lora_rank + c->qk_rope_head_dim);
        m += c->kv_lora_rank * H * (c->qk_nope_head_dim + c->v_head_dim);
        m += H * c->v_head_dim * d;
    } else {
        m += d * (H + 2.0 * c->num_key_value_heads) * c->head_dim + H * c->head_dim * d;
    }
    if (!y->moe) {
        m += 3.0 * d * c->intermediate_size;
    } else {
        double per = 3.0 * d * c->moe_intermediate_size;
        m += d * c->n_routed_experts + per * c->n_shared_experts;
        m += per * (active ? c->num_experts_per_tok : c->n_routed_experts);
    }
    if (l >= c->num_hidden_layers) m += 2.0 * d * d;
    return m;
}

size_t layout_active_params(const ModelLayout *L, int include_mtp) {
    double m = (double)L->cfg.vocab_size * L->cfg.hidden_size; // the head (embedding lookup is free)
    for (int l = 0; l < L->nlayers + (include_mtp ? L->nmtp : 0); l++) m += layer_macs(L, l, 1);
    return (size_t)m;
}

double layout_matmul_flops_per_token(const ModelLayout *L, int include_mtp) {
    double macs = (double)L->cfg.vocab_size * L->cfg.hidden_size * (1 + (include_mtp ? L->nmtp : 0));
    for (int l = 0; l < L->nlayers + (include_mtp ? L->nmtp : 0); l++) macs += layer_macs(L, l, 1);
    return 2.0 * macs;
}
