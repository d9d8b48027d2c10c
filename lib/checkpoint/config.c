// config.c — Hugging Face-style config.json for deepseek_v3 / llama / qwen2, with validation.
// docs/CONFIG.md lists every key of the released configs and what ds does with it.
#include "checkpoint/config.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/layout.h"

// Limits that keep every size ds computes from a config inside its integer types: widths are
// multiplied together in int (model code) and in int64_t (layout), layer and expert loops index
// with int, and the per-expert tensor table is held in memory.
#define DIM_MAX (1 << 24)        // any single width, the vocabulary, positions
#define WIDTH_MAX (1 << 26)      // a derived width (heads × head_dim, ...)
#define LAYERS_MAX 1024
#define EXPERTS_MAX 4096
#define EXPERT_BLOCKS_MAX (1 << 18) // MoE layers × routed experts
#define MTP_MAX 16

// ----------------------------------------------------------------------------
// typed reads: every key read is marked seen, so the rest can be named in warnings

typedef struct Parse {
    const char *name; // the file, for messages
    DsErr *e;
    int bad; // the first error is kept
} Parse;

typedef struct Reader {
    Parse *p;
    const json_t *obj;
    const char *prefix; // "" or "rope_scaling." etc., so messages give the key's path
    const char *seen[96];
    int nseen;
} Reader;

static void fail(Reader *r, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(Reader *r, const char *key, const char *fmt, ...) {
    if (r->p->bad) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (key) ds_errf(r->p->e, "%s: %s%s: %s", r->p->name, r->prefix, key, msg);
    else ds_errf(r->p->e, "%s: %s", r->p->name, msg);
    r->p->bad = 1;
}

// Tests a condition; on failure reports it against key and returns 0.
static int want(Reader *r, int ok, const char *key, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int want(Reader *r, int ok, const char *key, const char *fmt, ...) {
    if (ok || r->p->bad) return ok;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fail(r, key, "%s", msg);
    return 0;
}

static void mark(Reader *r, const char *key) {
    for (int i = 0; i < r->nseen; i++)
        if (!strcmp(r->seen[i], key)) return;
    DS_CHECK(r->nseen < (int)DS_ARRAY_LEN(r->seen));
    r->seen[r->nseen++] = key;
}

// The value of key, NULL when absent or null (HF writes null for "not set").
static json_t *lookup(Reader *r, const char *key) {
    mark(r, key);
    json_t *v = json_object_get(r->obj, key);
    return v && !json_is_null(v) ? v : NULL;
}

// The JSON text of v, shortened, for "got ..." in messages.
static void shown(const json_t *v, char *buf, size_t n) {
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, n, "%s", s ? s : "?");
    if (s && strlen(s) >= n && n > 4) memcpy(buf + n - 4, "...", 4);
    free(s);
}

static int get_int(Reader *r, const char *key, int def, int lo, int hi, int required) {
    json_t *v = lookup(r, key);
    char got[64];
    if (!v) {
        if (required && !r->p->bad) {
            ds_errf(r->p->e, "%s: missing required key '%s%s'", r->p->name, r->prefix, key);
            r->p->bad = 1;
        }
        return def;
    }
    shown(v, got, sizeof got);
    if (!json_is_integer(v)) {
        fail(r, key, "must be an integer (got %s)", got);
        return def;
    }
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        fail(r, key, "must be an integer in [%d, %d] (got %s)", lo, hi, got);
        return def;
    }
    return (int)x;
}

// A number (integer or real) in [lo, hi], or (lo, hi] when lo_open.
static double get_num(Reader *r, const char *key, double def, double lo, int lo_open, double hi) {
    json_t *v = lookup(r, key);
    if (!v) return def;
    char got[64];
    shown(v, got, sizeof got);
    if (!json_is_number(v)) {
        fail(r, key, "must be a number (got %s)", got);
        return def;
    }
    double x = json_number_value(v);
    if (!(lo_open ? x > lo : x >= lo) || !(x <= hi)) {
        fail(r, key, "must be a number in %c%g, %g] (got %s)", lo_open ? '(' : '[', lo, hi, got);
        return def;
    }
    return x;
}

static int get_bool(Reader *r, const char *key, int def) {
    json_t *v = lookup(r, key);
    if (!v) return def;
    if (!json_is_boolean(v)) {
        char got[64];
        shown(v, got, sizeof got);
        fail(r, key, "must be true or false (got %s)", got);
        return def;
    }
    return json_is_true(v);
}

static const char *get_str(Reader *r, const char *key, const char *def) {
    json_t *v = lookup(r, key);
    if (!v) return def;
    if (!json_is_string(v)) {
        char got[64];
        shown(v, got, sizeof got);
        fail(r, key, "must be a string (got %s)", got);
        return def;
    }
    return json_string_value(v);
}

// Names, through warn, every key of r's object that was not read and is not in harmless.
static void warn_unknown(Reader *r, const char *const *harmless, ConfigWarnFn warn, void *ctx) {
    if (!warn || r->p->bad) return;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)r->obj, key, v) {
        int known = 0;
        for (int i = 0; i < r->nseen && !known; i++) known = !strcmp(r->seen[i], key);
        for (int i = 0; harmless && harmless[i] && !known; i++) known = !strcmp(harmless[i], key);
        if (known) continue;
        char msg[600];
        snprintf(msg, sizeof msg, "%s: %s%s: unknown key, ignored", r->p->name, r->prefix, key);
        warn(ctx, msg);
    }
}

// ----------------------------------------------------------------------------
// the parts of a config

// Keys that do not change what ds computes (docs/CONFIG.md says why for each).
static const char *const HARMLESS_ALL[] = {
    "architectures", "auto_map", "bos_token_id", "eos_token_id", "pad_token_id", "torch_dtype",
    "dtype", "transformers_version", "use_cache", "_name_or_path", "pretraining_tp", NULL};
static const char *const HARMLESS_QWEN2[] = {"sliding_window", "max_window_layers", "attention_bias", NULL};
static const char *const HARMLESS_V3[] = {"ep_size", "aux_loss_alpha", "seq_aux", "num_key_value_heads",
                                          "head_dim", NULL};

static void read_rope(Reader *top, ModelConfig *c, ConfigWarnFn warn, void *ctx) {
    const char *key = "rope_scaling";
    json_t *rs = lookup(top, "rope_scaling");
    json_t *rp = lookup(top, "rope_parameters"); // transformers 5: rope_theta + rope_scaling in one
    if (rs && rp) {
        fail(top, "rope_parameters", "give rope_scaling or rope_parameters, not both");
        return;
    }
    if (rp) rs = rp, key = "rope_parameters";
    c->rope_theta = get_num(top, "rope_theta", 10000.0, 1.0, 1, 1e15);
    if (!rs) return;
    if (!json_is_object(rs)) {
        fail(top, key, "must be an object or null");
        return;
    }
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s.", key);
    Reader r = {.p = top->p, .obj = rs, .prefix = prefix};
    if (rp) c->rope_theta = get_num(&r, "rope_theta", c->rope_theta, 1.0, 1, 1e15);
    const char *type = get_str(&r, "rope_type", NULL);
    const char *t2 = get_str(&r, "type", NULL);
    if (!type) type = t2;
    if (!want(&r, type != NULL, NULL, "%s: needs \"rope_type\" (or \"type\")", key)) return;
    RopeType rt;
    if (!strcmp(type, "default")) rt = ROPE_DEFAULT;
    else if (!strcmp(type, "yarn")) rt = ROPE_YARN;
    else if (!strcmp(type, "llama3")) rt = ROPE_LLAMA3;
    else if (!strcmp(type, "linear")) rt = ROPE_LINEAR;
    else if (!strcmp(type, "dynamic")) rt = ROPE_DYNAMIC;
    else {
        fail(&r, t2 && type == t2 ? "type" : "rope_type",
             "'%s' is not supported (default, yarn, llama3, linear, dynamic)", type);
        return;
    }
    c->rope_scaling.type = rt;
    int max_pos = c->max_position_embeddings;
    if (rt != ROPE_DEFAULT) {
        if (!want(&r, json_object_get(rs, "factor") != NULL, "factor", "required for '%s'", type)) return;
        c->rope_scaling.factor = get_num(&r, "factor", 1.0, 1.0, 0, 1e6);
    }
    if (rt == ROPE_YARN) {
        c->rope_scaling.beta_fast = get_num(&r, "beta_fast", 32.0, 0.0, 1, 1e6);
        c->rope_scaling.beta_slow = get_num(&r, "beta_slow", 1.0, 0.0, 1, 1e6);
        want(&r, c->rope_scaling.beta_slow < c->rope_scaling.beta_fast, "beta_slow",
             "must be less than beta_fast (%g >= %g)", c->rope_scaling.beta_slow, c->rope_scaling.beta_fast);
        c->rope_scaling.mscale = get_num(&r, "mscale", 1.0, 0.0, 0, 1e6);
        c->rope_scaling.mscale_all_dim = get_num(&r, "mscale_all_dim", 0.0, 0.0, 0, 1e6);
        // transformers' default: the configured length is the original one
        c->rope_scaling.original_max_position_embeddings =
            get_int(&r, "original_max_position_embeddings", max_pos, 1, max_pos, 0);
        want(&r, !lookup(&r, "attention_factor"), "attention_factor",
             "is not supported (ds derives it from mscale and mscale_all_dim)");
        want(&r, get_bool(&r, "truncate", 1), "truncate", "false is not supported (ds rounds the ramp's ends)");
    } else if (rt == ROPE_LLAMA3) {
        c->rope_scaling.original_max_position_embeddings =
            get_int(&r, "original_max_position_embeddings", 0, 1, max_pos, 1);
        c->rope_scaling.low_freq_factor = get_num(&r, "low_freq_factor", 0, 0.0, 1, 1e6);
        c->rope_scaling.high_freq_factor = get_num(&r, "high_freq_factor", 0, 0.0, 1, 1e6);
        want(&r, json_object_get(rs, "low_freq_factor") && json_object_get(rs, "high_freq_factor"),
             NULL, "%s: llama3 needs low_freq_factor and high_freq_factor", key);
        want(&r, c->rope_scaling.low_freq_factor < c->rope_scaling.high_freq_factor, "low_freq_factor",
             "must be less than high_freq_factor (%g >= %g)", c->rope_scaling.low_freq_factor,
             c->rope_scaling.high_freq_factor);
    } else if (rt == ROPE_DYNAMIC) {
        want(&r, config_rope_dim(c) > 2, "rope_type",
             "'dynamic' needs a rotated width above 2 (the base is raised to dim/(dim-2))");
    }
    if (rt == ROPE_DEFAULT) memset(&c->rope_scaling, 0, sizeof c->rope_scaling);
    static const char *const harmless[] = {"rope_theta", NULL};
    warn_unknown(&r, rp ? harmless : NULL, warn, ctx);
}

static void read_quant(Reader *top, ModelConfig *c, ConfigWarnFn warn, void *ctx) {
    json_t *q = lookup(top, "quantization_config");
    if (!q) return;
    if (!json_is_object(q)) {
        fail(top, "quantization_config", "must be an object");
        return;
    }
    Reader r = {.p = top->p, .obj = q, .prefix = "quantization_config."};
    const char *m = get_str(&r, "quant_method", NULL);
    if (!want(&r, m != NULL, "quant_method", "is required")) return;
    if (!want(&r, !strcmp(m, "fp8"), "quant_method",
              "'%s' is not supported (only 'fp8' with block-scaled weights)", m))
        return;
    // DeepSeek-V3 uses 128x128 blocks; small test models need smaller ones, which the loader's
    // dequantisation handles the same way.
    json_t *bs = lookup(&r, "weight_block_size");
    json_int_t br = bs ? json_integer_value(json_array_get(bs, 0)) : 0;
    json_int_t bc = bs ? json_integer_value(json_array_get(bs, 1)) : 0;
    want(&r, bs && json_is_array(bs) && json_array_size(bs) == 2 && json_is_integer(json_array_get(bs, 0)) &&
                 json_is_integer(json_array_get(bs, 1)) && br >= 1 && bc >= 1 && br <= 1 << 16 && bc <= 1 << 16,
         "weight_block_size", "must be two block sizes [rows, cols] from 1 to 65536 (DeepSeek-V3: [128, 128])");
    const char *fmt = get_str(&r, "fmt", "e4m3");
    want(&r, !strcmp(fmt, "e4m3"), "fmt", "'%s' is not supported (only 'e4m3')", fmt);
    const char *act = get_str(&r, "activation_scheme", "dynamic");
    want(&r, !strcmp(act, "dynamic"), "activation_scheme",
         "'%s' is not supported (only 'dynamic': activation scales computed on the fly)", act);
    c->quant.fp8 = 1;
    c->quant.weight_block_rows = (int)br, c->quant.weight_block_cols = (int)bc;
    warn_unknown(&r, NULL, warn, ctx);
}

// Keys every model type shares that ds refuses unless they leave the computation unchanged.
static void read_refused(Reader *r, const ModelConfig *c) {
    const char *act = get_str(r, "hidden_act", "silu");
    want(r, !strcmp(act, "silu"), "hidden_act", "'%s' is not supported (ds's FFN is SwiGLU: 'silu')", act);
    double drop = get_num(r, "attention_dropout", 0.0, 0.0, 0, 1.0);
    want(r, drop == 0.0, "attention_dropout", "must be 0 (ds has no dropout; got %g)", drop);
    double prf = get_num(r, "partial_rotary_factor", 1.0, 0.0, 1, 1.0);
    want(r, prf == 1.0, "partial_rotary_factor", "must be 1 (ds rotates the whole RoPE width; got %g)", prf);
    if (c->arch != ARCH_DEEPSEEK_V3) {
        json_t *lt = lookup(r, "layer_types");
        int ok = !lt || json_is_array(lt);
        size_t i;
        json_t *v;
        json_array_foreach(lt, i, v) ok &= json_is_string(v) && !strcmp(json_string_value(v), "full_attention");
        want(r, ok, "layer_types", "only \"full_attention\" layers are supported");
    }
}

static void read_v3(Reader *r, ModelConfig *c) {
    c->q_lora_rank = get_int(r, "q_lora_rank", 0, 0, DIM_MAX, 0);
    c->kv_lora_rank = get_int(r, "kv_lora_rank", 0, 1, DIM_MAX, 1);
    c->qk_nope_head_dim = get_int(r, "qk_nope_head_dim", 0, 0, DIM_MAX, 1);
    c->qk_rope_head_dim = get_int(r, "qk_rope_head_dim", 0, 0, DIM_MAX, 1);
    c->v_head_dim = get_int(r, "v_head_dim", 0, 1, DIM_MAX, 1);
    c->n_routed_experts = get_int(r, "n_routed_experts", 0, 0, EXPERTS_MAX, 0);
    c->n_shared_experts = get_int(r, "n_shared_experts", 0, 0, EXPERTS_MAX, 0);
    c->num_experts_per_tok = get_int(r, "num_experts_per_tok", 0, 0, EXPERTS_MAX, 0);
    c->moe_intermediate_size = get_int(r, "moe_intermediate_size", 0, 0, DIM_MAX, 0);
    c->n_group = get_int(r, "n_group", 1, 1, EXPERTS_MAX, 0);
    c->topk_group = get_int(r, "topk_group", 1, 1, EXPERTS_MAX, 0);
    c->first_k_dense_replace = get_int(r, "first_k_dense_replace", 0, 0, LAYERS_MAX, 0);
    c->moe_layer_freq = get_int(r, "moe_layer_freq", 1, 1, LAYERS_MAX, 0);
    c->norm_topk_prob = get_bool(r, "norm_topk_prob", 1);
    c->routed_scaling_factor = get_num(r, "routed_scaling_factor", 1.0, 0.0, 1, 1e6);
    c->num_nextn_predict_layers = get_int(r, "num_nextn_predict_layers", 0, 0, MTP_MAX, 0);
    const char *sf = get_str(r, "scoring_func", "sigmoid");
    c->scoring_sigmoid = 1;
    want(r, !strcmp(sf, "sigmoid"), "scoring_func", "'%s' is not supported (only DeepSeek-V3's 'sigmoid')", sf);
    const char *tm = get_str(r, "topk_method", "noaux_tc");
    if (!strcmp(tm, "greedy")) c->topk_method = TOPK_GREEDY;
    else
        want(r, !strcmp(tm, "noaux_tc"), "topk_method", "'%s' is not supported (noaux_tc or greedy)", tm);
    want(r, !get_bool(r, "attention_bias", 0), "attention_bias", "true is not supported (MLA has no biases)");
    want(r, get_bool(r, "rope_interleave", 1), "rope_interleave",
         "false is not supported (ds's MLA rotates interleaved pairs, as DeepSeek's weights expect)");
}

static void read_dense(Reader *r, ModelConfig *c) {
    int H = c->num_attention_heads;
    c->num_key_value_heads = get_int(r, "num_key_value_heads", H, 1, DIM_MAX, 0);
    c->head_dim = get_int(r, "head_dim", H ? c->hidden_size / H : 0, 1, DIM_MAX, 0);
    if (c->arch == ARCH_QWEN2) {
        c->attention_bias = 1; // Qwen2 always has q/k/v biases (its attention_bias key is unused)
        want(r, !get_bool(r, "use_sliding_window", 0), "use_sliding_window",
             "true is not supported (ds attends to the whole context)");
        want(r, !get_bool(r, "use_mrope", 0), "use_mrope", "true is not supported (ds has 1-D positions)");
    } else {
        c->attention_bias = get_bool(r, "attention_bias", 0);
        want(r, !c->attention_bias, "attention_bias",
             "true is not supported for llama (transformers biases o_proj too; ds biases q/k/v only, as qwen2)");
        want(r, !get_bool(r, "mlp_bias", 0), "mlp_bias", "true is not supported (ds's FFN has no biases)");
    }
}

// Checks a derived width against WIDTH_MAX.
static void want_width(Reader *r, int64_t w, const char *what) {
    want(r, w <= WIDTH_MAX, NULL, "%s is %lld, more than %d", what, (long long)w, WIDTH_MAX);
}

// Structural checks, in the order a user would fix them.
static void check_shape(Reader *r, ModelConfig *c) {
    int v3 = c->arch == ARCH_DEEPSEEK_V3;
    int64_t H = c->num_attention_heads;
    if (v3) {
        want(r, c->qk_nope_head_dim + c->qk_rope_head_dim > 0, "qk_nope_head_dim",
             "qk_nope_head_dim + qk_rope_head_dim must be positive");
        want(r, c->qk_rope_head_dim % 2 == 0, "qk_rope_head_dim", "must be even (got %d)", c->qk_rope_head_dim);
        want_width(r, H * (c->qk_nope_head_dim + c->qk_rope_head_dim),
                   "num_attention_heads × (qk_nope_head_dim + qk_rope_head_dim)");
        want_width(r, H * ((int64_t)c->qk_nope_head_dim + c->v_head_dim),
                   "num_attention_heads × (qk_nope_head_dim + v_head_dim)");
        want_width(r, (int64_t)c->kv_lora_rank + c->qk_rope_head_dim, "kv_lora_rank + qk_rope_head_dim");
        want_width(r, (int64_t)c->moe_intermediate_size * c->n_shared_experts,
                   "moe_intermediate_size × n_shared_experts");
        int nl = c->num_hidden_layers + c->num_nextn_predict_layers, moe_layers = 0, dense = 0;
        for (int l = 0; l < nl; l++) {
            moe_layers += config_is_moe_layer(c, l);
            dense += !config_is_moe_layer(c, l);
        }
        want(r, !dense || c->intermediate_size > 0, "intermediate_size", "must be positive (%d dense layers)", dense);
        if (moe_layers) {
            int E = c->n_routed_experts, G = c->n_group;
            want(r, c->num_experts_per_tok >= 1 && c->num_experts_per_tok <= E, "num_experts_per_tok",
                 "must be in [1, n_routed_experts (%d)] (got %d)", E, c->num_experts_per_tok);
            want(r, c->moe_intermediate_size > 0, "moe_intermediate_size", "must be positive for MoE layers");
            want(r, (int64_t)moe_layers * E <= EXPERT_BLOCKS_MAX, "n_routed_experts",
                 "%d experts in %d MoE layers are more than %d expert blocks", E, moe_layers, EXPERT_BLOCKS_MAX);
            if (c->topk_method == TOPK_NOAUX_TC) {
                want(r, E % G == 0, "n_group", "must be >= 1 and divide n_routed_experts (%d experts, n_group %d)", E, G);
                want(r, c->topk_group <= G, "topk_group", "must be in [1, n_group (%d)] (got %d)", G, c->topk_group);
                want(r, G == 1 || E / G >= 2, "n_group",
                     "each expert group needs at least 2 experts (a group scores by its top 2; %d experts, n_group %d)", E, G);
                want(r, (int64_t)c->num_experts_per_tok <= (int64_t)c->topk_group * (E / G), "num_experts_per_tok",
                     "(%d) exceeds the %d experts of topk_group (%d) groups", c->num_experts_per_tok,
                     c->topk_group * (E / G), c->topk_group);
            }
        }
    } else {
        want(r, c->num_attention_heads % c->num_key_value_heads == 0 && c->num_key_value_heads <= H,
             "num_key_value_heads", "num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)",
             c->num_attention_heads, c->num_key_value_heads);
        want(r, c->head_dim > 0 && c->head_dim % 2 == 0, "head_dim", "must be positive and even (got %d)", c->head_dim);
        want(r, c->intermediate_size > 0, "intermediate_size", "must be positive");
        want_width(r, (H + 2 * (int64_t)c->num_key_value_heads) * c->head_dim,
                   "(num_attention_heads + 2 × num_key_value_heads) × head_dim");
    }
    want_width(r, 2 * (int64_t)c->intermediate_size, "2 × intermediate_size");
    want_width(r, 2 * (int64_t)c->moe_intermediate_size, "2 × moe_intermediate_size");
    if (r->p->bad) return;
    LayoutSize s;
    static const char *const part_keys[LAYOUT_NPARTS] = {
        "vocab_size × hidden_size (embeddings and head)",
        "num_hidden_layers × attention (hidden_size, num_attention_heads, head widths)",
        "dense layers × 3 × intermediate_size × hidden_size",
        "MoE layers × (n_routed_experts + n_shared_experts) × 3 × moe_intermediate_size × hidden_size"};
    int fits = layout_size(c, &s);
    int big = 0;
    for (int i = 1; i < LAYOUT_NPARTS; i++)
        if (s.part[i] > s.part[big]) big = i;
    if (!fits)
        fail(r, NULL, "the parameter count overflows 64 bits (%s)", part_keys[s.overflow_part]);
    else
        want(r, s.padded <= CONFIG_MAX_PARAMS, NULL,
             "%lld parameters are more than ds's limit of %lld; the largest part is %lld: %s",
             (long long)s.params, (long long)CONFIG_MAX_PARAMS, (long long)s.part[big], part_keys[big]);
}

int config_from_json_warn(ModelConfig *c, const json_t *j, const char *name, ConfigWarnFn warn,
                          void *ctx, DsErr *e) {
    memset(c, 0, sizeof *c);
    if (!json_is_object(j)) return ds_errf(e, "%s: expected a JSON object", name);
    Parse p = {name, e, 0};
    Reader r = {.p = &p, .obj = j, .prefix = ""};
    const char *mt = get_str(&r, "model_type", NULL);
    if (p.bad) return DS_ERR;
    if (!mt) return ds_errf(e, "%s: missing 'model_type'", name);
    if (strcmp(mt, "deepseek_v3") == 0) c->arch = ARCH_DEEPSEEK_V3;
    else if (strcmp(mt, "llama") == 0) c->arch = ARCH_LLAMA;
    else if (strcmp(mt, "qwen2") == 0) c->arch = ARCH_QWEN2;
    else
        return ds_errf(e, "%s: model_type '%s' is not supported (deepseek_v3, llama, qwen2)", name, mt);
    int v3 = c->arch == ARCH_DEEPSEEK_V3;
    c->vocab_size = get_int(&r, "vocab_size", 0, 1, DIM_MAX, 1);
    c->hidden_size = get_int(&r, "hidden_size", 0, 1, DIM_MAX, 1);
    c->num_hidden_layers = get_int(&r, "num_hidden_layers", 0, 1, LAYERS_MAX, 1);
    c->num_attention_heads = get_int(&r, "num_attention_heads", 0, 1, DIM_MAX, 1);
    c->intermediate_size = get_int(&r, "intermediate_size", 0, v3 ? 0 : 1, DIM_MAX, 1);
    // A model needs two positions to predict one token from another.
    c->max_position_embeddings = get_int(&r, "max_position_embeddings", 4096, 2, DIM_MAX, 0);
    c->rms_norm_eps = get_num(&r, "rms_norm_eps", 1e-6, 0.0, 1, 1.0);
    c->initializer_range = get_num(&r, "initializer_range", 0.006, 0.0, 0, 1e3);
    c->tie_word_embeddings = get_bool(&r, "tie_word_embeddings", 0);
    if (v3) read_v3(&r, c);
    else read_dense(&r, c);
    if (p.bad) return DS_ERR;
    read_rope(&r, c, warn, ctx);
    read_quant(&r, c, warn, ctx);
    read_refused(&r, c);
    if (p.bad) return DS_ERR;
    check_shape(&r, c);
    if (p.bad) return DS_ERR;
    if (warn) {
        // One pass over the keys with the model type's harmless keys added to the shared ones.
        const char *harmless[32];
        int n = 0;
        for (int i = 0; HARMLESS_ALL[i]; i++) harmless[n++] = HARMLESS_ALL[i];
        const char *const *extra = v3 ? HARMLESS_V3 : c->arch == ARCH_QWEN2 ? HARMLESS_QWEN2 : NULL;
        for (int i = 0; extra && extra[i]; i++) harmless[n++] = extra[i];
        harmless[n] = NULL;
        warn_unknown(&r, harmless, warn, ctx);
    }
    return DS_OK;
}

int config_from_json(ModelConfig *c, const json_t *j, const char *name, DsErr *e) {
    return config_from_json_warn(c, j, name, NULL, NULL, e);
}

int config_from_string_warn(ModelConfig *c, const char *text, size_t len, const char *name,
                            ConfigWarnFn warn, void *ctx, DsErr *e) {
    json_error_t je;
    // A repeated key would otherwise silently keep its last value.
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) return ds_errf(e, "%s:%d: invalid JSON: %s", name, je.line, je.text);
    int rc = config_from_json_warn(c, j, name, warn, ctx, e);
    json_decref(j);
    return rc;
}

int config_from_string(ModelConfig *c, const char *text, size_t len, const char *name, DsErr *e) {
    return config_from_string_warn(c, text, len, name, NULL, NULL, e);
}

int config_load_warn(ModelConfig *c, const char *path, ConfigWarnFn warn, void *ctx, DsErr *e) {
    char *text;
    size_t len;
    if (ds_read_file(path, &text, &len, e)) return DS_ERR;
    int rc = config_from_string_warn(c, text, len, path, warn, ctx, e);
    free(text);
    return rc;
}

int config_load(ModelConfig *c, const char *path, DsErr *e) { return config_load_warn(c, path, NULL, NULL, e); }

// ----------------------------------------------------------------------------
// writing

static json_t *rope_scaling_json(const ModelConfig *c) {
    const struct RopeScaling *s = &c->rope_scaling;
    switch (s->type) {
    case ROPE_YARN:
        return json_pack("{s:s,s:f,s:f,s:f,s:f,s:f,s:i}", "type", "yarn", "factor", s->factor, "beta_fast",
                         s->beta_fast, "beta_slow", s->beta_slow, "mscale", s->mscale, "mscale_all_dim",
                         s->mscale_all_dim, "original_max_position_embeddings",
                         s->original_max_position_embeddings);
    case ROPE_LLAMA3:
        return json_pack("{s:s,s:f,s:f,s:f,s:i}", "rope_type", "llama3", "factor", s->factor, "low_freq_factor",
                         s->low_freq_factor, "high_freq_factor", s->high_freq_factor,
                         "original_max_position_embeddings", s->original_max_position_embeddings);
    case ROPE_LINEAR: return json_pack("{s:s,s:f}", "rope_type", "linear", "factor", s->factor);
    case ROPE_DYNAMIC: return json_pack("{s:s,s:f}", "rope_type", "dynamic", "factor", s->factor);
    case ROPE_DEFAULT: break;
    }
    return json_null();
}

json_t *config_to_json(const ModelConfig *c) {
    json_t *j = json_object();
    static const char *types[] = {"deepseek_v3", "llama", "qwen2"};
    static const char *archs[] = {"DeepseekV3ForCausalLM", "LlamaForCausalLM", "Qwen2ForCausalLM"};
    json_object_set_new(j, "model_type", json_string(types[c->arch]));
    json_object_set_new(j, "architectures", json_pack("[s]", archs[c->arch]));
#define SETI(k) json_object_set_new(j, #k, json_integer(c->k))
#define SETF(k) json_object_set_new(j, #k, json_real(c->k))
    SETI(vocab_size), SETI(hidden_size), SETI(intermediate_size), SETI(num_hidden_layers);
    SETI(num_attention_heads), SETI(max_position_embeddings);
    SETF(rms_norm_eps), SETF(rope_theta), SETF(initializer_range);
    json_object_set_new(j, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(j, "rope_scaling", rope_scaling_json(c));
    if (c->arch == ARCH_DEEPSEEK_V3) {
        json_object_set_new(j, "q_lora_rank", c->q_lora_rank ? json_integer(c->q_lora_rank) : json_null());
        SETI(kv_lora_rank), SETI(qk_nope_head_dim), SETI(qk_rope_head_dim), SETI(v_head_dim);
        SETI(n_routed_experts), SETI(n_shared_experts), SETI(num_experts_per_tok);
        SETI(moe_intermediate_size), SETI(n_group), SETI(topk_group), SETI(first_k_dense_replace);
        SETI(moe_layer_freq), SETF(routed_scaling_factor), SETI(num_nextn_predict_layers);
        json_object_set_new(j, "norm_topk_prob", json_boolean(c->norm_topk_prob));
        json_object_set_new(j, "scoring_func", json_string("sigmoid"));
        json_object_set_new(j, "topk_method", json_string(c->topk_method == TOPK_GREEDY ? "greedy" : "noaux_tc"));
    } else {
        SETI(num_key_value_heads), SETI(head_dim);
        if (c->arch == ARCH_LLAMA)
            json_object_set_new(j, "attention_bias", json_boolean(c->attention_bias));
    }
    if (c->quant.fp8)
        json_object_set_new(j, "quantization_config",
                            json_pack("{s:s,s:s,s:s,s:[i,i]}", "quant_method", "fp8", "fmt", "e4m3",
                                      "activation_scheme", "dynamic", "weight_block_size",
                                      c->quant.weight_block_rows, c->quant.weight_block_cols));
#undef SETI
#undef SETF
    return j;
}

int config_equal(const ModelConfig *a, const ModelConfig *b) { return memcmp(a, b, sizeof *a) == 0; }

// ----------------------------------------------------------------------------
// derived sizes

int config_is_moe_layer(const ModelConfig *c, int layer) {
    if (c->arch != ARCH_DEEPSEEK_V3 || c->n_routed_experts == 0) return 0;
    return layer >= c->first_k_dense_replace && layer % DS_MAX(c->moe_layer_freq, 1) == 0;
}

int config_qk_head_dim(const ModelConfig *c) {
    return c->arch == ARCH_DEEPSEEK_V3 ? c->qk_nope_head_dim + c->qk_rope_head_dim : c->head_dim;
}
int config_v_head_dim(const ModelConfig *c) {
    return c->arch == ARCH_DEEPSEEK_V3 ? c->v_head_dim : c->head_dim;
}
int config_kv_heads(const ModelConfig *c) {
    return c->arch == ARCH_DEEPSEEK_V3 ? c->num_attention_heads : c->num_key_value_heads;
}
int config_rope_dim(const ModelConfig *c) {
    return c->arch == ARCH_DEEPSEEK_V3 ? c->qk_rope_head_dim : c->head_dim;
}
int config_route_groups(const ModelConfig *c) { return c->topk_method == TOPK_GREEDY ? 1 : c->n_group; }

static double yarn_mscale(double factor, double m) {
    return factor <= 1.0 ? 1.0 : 0.1 * m * log(factor) + 1.0;
}

double config_softmax_scale(const ModelConfig *c) {
    double s = 1.0 / sqrt((double)config_qk_head_dim(c));
    // DeepSeek's attention (not llama's or qwen2's) rescales the softmax under YaRN.
    if (c->arch == ARCH_DEEPSEEK_V3 && c->rope_scaling.type == ROPE_YARN && c->rope_scaling.factor > 1.0 &&
        c->rope_scaling.mscale_all_dim > 0) {
        double m = yarn_mscale(c->rope_scaling.factor, c->rope_scaling.mscale_all_dim);
        s *= m * m;
    }
    return s;
}
