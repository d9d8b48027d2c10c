// config.c — Hugging Face-style config.json for deepseek_v3 / llama / qwen2, with validation.
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

// Reads an optional key with a default; type errors are reported with the file and key.
typedef struct Reader {
    const json_t *j;
    const char *name;
    DsErr *e;
    int bad;
} Reader;

static int get_int(Reader *r, const char *key, int def, int required) {
    json_t *v = json_object_get(r->j, key);
    if (!v || json_is_null(v)) {
        if (required && !r->bad) {
            ds_errf(r->e, "%s: missing required key '%s'", r->name, key);
            r->bad = 1;
        }
        return def;
    }
    if (json_is_boolean(v)) return json_is_true(v);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1 << 30)) {
        if (!r->bad) ds_errf(r->e, "%s: '%s' must be a non-negative integer", r->name, key);
        r->bad = 1;
        return def;
    }
    return (int)json_integer_value(v);
}

static double get_num(Reader *r, const json_t *obj, const char *key, double def) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return def;
    if (!json_is_number(v)) {
        if (!r->bad) ds_errf(r->e, "%s: '%s' must be a number", r->name, key);
        r->bad = 1;
        return def;
    }
    return json_number_value(v);
}

static int check(Reader *r, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int check(Reader *r, int ok, const char *fmt, ...) {
    if (ok || r->bad) return ok;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ds_errf(r->e, "%s: %s", r->name, msg);
    r->bad = 1;
    return 0;
}

int config_from_json(ModelConfig *c, const json_t *j, const char *name, DsErr *e) {
    memset(c, 0, sizeof *c);
    Reader r = {j, name, e, 0};
    if (!json_is_object(j)) return ds_errf(e, "%s: expected a JSON object", name);
    const char *mt = json_string_value(json_object_get(j, "model_type"));
    if (!mt) return ds_errf(e, "%s: missing 'model_type'", name);
    if (strcmp(mt, "deepseek_v3") == 0) c->arch = ARCH_DEEPSEEK_V3;
    else if (strcmp(mt, "llama") == 0) c->arch = ARCH_LLAMA;
    else if (strcmp(mt, "qwen2") == 0) c->arch = ARCH_QWEN2;
    else
        return ds_errf(e, "%s: model_type '%s' is not supported (deepseek_v3, llama, qwen2)", name,
                       mt);
    int v3 = c->arch == ARCH_DEEPSEEK_V3;
    c->vocab_size = get_int(&r, "vocab_size", 0, 1);
    c->hidden_size = get_int(&r, "hidden_size", 0, 1);
    c->num_hidden_layers = get_int(&r, "num_hidden_layers", 0, 1);
    c->num_attention_heads = get_int(&r, "num_attention_heads", 0, 1);
    c->intermediate_size = get_int(&r, "intermediate_size", 0, 1);
    c->max_position_embeddings = get_int(&r, "max_position_embeddings", 4096, 0);
    c->rms_norm_eps = get_num(&r, j, "rms_norm_eps", 1e-6);
    c->rope_theta = get_num(&r, j, "rope_theta", 10000.0);
    c->initializer_range = get_num(&r, j, "initializer_range", 0.006);
    c->tie_word_embeddings = get_int(&r, "tie_word_embeddings", 0, 0);
    json_t *rs = json_object_get(j, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        const char *type = json_string_value(json_object_get(rs, "type"));
        if (!type) type = json_string_value(json_object_get(rs, "rope_type"));
        check(&r, json_is_object(rs) && type && strcmp(type, "yarn") == 0,
              "rope_scaling: only {\"type\": \"yarn\", ...} is supported");
        c->yarn.factor = get_num(&r, rs, "factor", 1.0);
        c->yarn.beta_fast = get_num(&r, rs, "beta_fast", 32.0);
        c->yarn.beta_slow = get_num(&r, rs, "beta_slow", 1.0);
        c->yarn.mscale = get_num(&r, rs, "mscale", 1.0);
        c->yarn.mscale_all_dim = get_num(&r, rs, "mscale_all_dim", 0.0);
        c->yarn.original_max_position_embeddings =
            (int)get_num(&r, rs, "original_max_position_embeddings", 4096);
        check(&r, c->yarn.factor >= 1.0, "rope_scaling.factor must be >= 1");
    }
    if (v3) {
        c->q_lora_rank = get_int(&r, "q_lora_rank", 0, 0);
        c->kv_lora_rank = get_int(&r, "kv_lora_rank", 0, 1);
        c->qk_nope_head_dim = get_int(&r, "qk_nope_head_dim", 0, 1);
        c->qk_rope_head_dim = get_int(&r, "qk_rope_head_dim", 0, 1);
        c->v_head_dim = get_int(&r, "v_head_dim", 0, 1);
        c->n_routed_experts = get_int(&r, "n_routed_experts", 0, 0);
        c->n_shared_experts = get_int(&r, "n_shared_experts", 0, 0);
        c->num_experts_per_tok = get_int(&r, "num_experts_per_tok", 0, 0);
        c->moe_intermediate_size = get_int(&r, "moe_intermediate_size", 0, 0);
        c->n_group = get_int(&r, "n_group", 1, 0);
        c->topk_group = get_int(&r, "topk_group", 1, 0);
        c->first_k_dense_replace = get_int(&r, "first_k_dense_replace", 0, 0);
        c->moe_layer_freq = get_int(&r, "moe_layer_freq", 1, 0);
        c->norm_topk_prob = get_int(&r, "norm_topk_prob", 1, 0);
        c->routed_scaling_factor = get_num(&r, j, "routed_scaling_factor", 1.0);
        c->num_nextn_predict_layers = get_int(&r, "num_nextn_predict_layers", 0, 0);
        const char *sf = json_string_value(json_object_get(j, "scoring_func"));
        c->scoring_sigmoid = !sf || strcmp(sf, "sigmoid") == 0;
        check(&r, !sf || strcmp(sf, "sigmoid") == 0,
              "scoring_func '%s' is not supported (only DeepSeek-V3's \"sigmoid\")", sf ? sf : "");
        const char *tm = json_string_value(json_object_get(j, "topk_method"));
        check(&r, !tm || !strcmp(tm, "noaux_tc") || !strcmp(tm, "greedy") || !strcmp(tm, "group_limited_greedy"),
              "topk_method must be noaux_tc, greedy or group_limited_greedy");
    } else {
        c->num_key_value_heads = get_int(&r, "num_key_value_heads", c->num_attention_heads, 0);
        int hd = c->num_attention_heads ? c->hidden_size / c->num_attention_heads : 0;
        c->head_dim = get_int(&r, "head_dim", hd, 0);
        c->attention_bias = c->arch == ARCH_QWEN2 ? 1 : get_int(&r, "attention_bias", 0, 0);
    }
    if (r.bad) return DS_ERR;
    // Structural checks, in the order a user would fix them.
    check(&r, c->vocab_size > 0 && c->hidden_size > 0 && c->num_hidden_layers > 0 &&
                  c->num_attention_heads > 0,
          "vocab_size, hidden_size, num_hidden_layers and num_attention_heads must be positive");
    check(&r, c->rms_norm_eps > 0, "rms_norm_eps must be positive");
    check(&r, c->rope_theta > 0, "rope_theta must be positive");
    if (v3) {
        check(&r, c->kv_lora_rank > 0 && c->v_head_dim > 0 && (long long)c->qk_nope_head_dim + c->qk_rope_head_dim > 0,
              "kv_lora_rank, v_head_dim and qk_nope_head_dim + qk_rope_head_dim must be positive");
        check(&r, c->qk_rope_head_dim % 2 == 0, "qk_rope_head_dim (%d) must be even",
              c->qk_rope_head_dim);
        int any_moe = 0;
        for (long long l = 0; l < (long long)c->num_hidden_layers + c->num_nextn_predict_layers; l++)
            any_moe |= config_is_moe_layer(c, l);
        if (any_moe) {
            check(&r, c->n_routed_experts > 0 && c->num_experts_per_tok > 0 && c->moe_intermediate_size > 0,
                  "MoE layers need n_routed_experts, num_experts_per_tok and moe_intermediate_size");
            check(&r, c->n_group > 0 && c->n_routed_experts % c->n_group == 0,
                  "n_routed_experts (%d) is not divisible by n_group (%d)", c->n_routed_experts,
                  c->n_group);
            check(&r, c->topk_group >= 1 && c->topk_group <= c->n_group,
                  "topk_group (%d) must be in [1, n_group (%d)]", c->topk_group, c->n_group);
            check(&r, c->num_experts_per_tok <= (long long)c->topk_group * (c->n_routed_experts / DS_MAX(c->n_group, 1)),
                  "num_experts_per_tok (%d) exceeds the experts in topk_group groups",
                  c->num_experts_per_tok);
            check(&r, c->n_group <= 1 || c->n_routed_experts / c->n_group >= 2, // n_group 0 is reported above
                  "each expert group needs at least 2 experts (a group scores by its top 2)");
        }
        check(&r, c->first_k_dense_replace == c->num_hidden_layers || c->intermediate_size > 0 || !c->first_k_dense_replace,
              "dense layers need intermediate_size");
    } else {
        check(&r, c->num_key_value_heads > 0 && c->num_attention_heads % c->num_key_value_heads == 0,
              "num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)",
              c->num_attention_heads, c->num_key_value_heads);
        check(&r, c->head_dim > 0 && c->head_dim % 2 == 0, "head_dim (%d) must be positive and even",
              c->head_dim);
        check(&r, c->intermediate_size > 0, "intermediate_size must be positive");
    }
    return r.bad ? DS_ERR : DS_OK;
}

int config_from_string(ModelConfig *c, const char *text, size_t len, const char *name, DsErr *e) {
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    if (!j) return ds_errf(e, "%s:%d: invalid JSON: %s", name, je.line, je.text);
    int rc = config_from_json(c, j, name, e);
    json_decref(j);
    return rc;
}

int config_load(ModelConfig *c, const char *path, DsErr *e) {
    char *text;
    size_t len;
    if (ds_read_file(path, &text, &len, e)) return DS_ERR;
    int rc = config_from_string(c, text, len, path, e);
    free(text);
    return rc;
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
    if (c->yarn.factor > 0) {
        json_object_set_new(j, "rope_scaling",
                            json_pack("{s:s,s:f,s:f,s:f,s:f,s:f,s:i}", "type", "yarn", "factor",
                                      c->yarn.factor, "beta_fast", c->yarn.beta_fast, "beta_slow",
                                      c->yarn.beta_slow, "mscale", c->yarn.mscale, "mscale_all_dim",
                                      c->yarn.mscale_all_dim, "original_max_position_embeddings",
                                      c->yarn.original_max_position_embeddings));
    } else {
        json_object_set_new(j, "rope_scaling", json_null());
    }
    if (c->arch == ARCH_DEEPSEEK_V3) {
        json_object_set_new(j, "q_lora_rank", c->q_lora_rank ? json_integer(c->q_lora_rank) : json_null());
        SETI(kv_lora_rank), SETI(qk_nope_head_dim), SETI(qk_rope_head_dim), SETI(v_head_dim);
        SETI(n_routed_experts), SETI(n_shared_experts), SETI(num_experts_per_tok);
        SETI(moe_intermediate_size), SETI(n_group), SETI(topk_group), SETI(first_k_dense_replace);
        SETI(moe_layer_freq), SETF(routed_scaling_factor), SETI(num_nextn_predict_layers);
        json_object_set_new(j, "norm_topk_prob", json_boolean(c->norm_topk_prob));
        json_object_set_new(j, "scoring_func", json_string(c->scoring_sigmoid ? "sigmoid" : "softmax"));
        json_object_set_new(j, "topk_method", json_string("noaux_tc"));
    } else {
        SETI(num_key_value_heads), SETI(head_dim);
        if (c->arch == ARCH_LLAMA)
            json_object_set_new(j, "attention_bias", json_boolean(c->attention_bias));
    }
#undef SETI
#undef SETF
    return j;
}

int config_equal(const ModelConfig *a, const ModelConfig *b) { return memcmp(a, b, sizeof *a) == 0; }

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

static double yarn_mscale(double factor, double m) {
    return factor <= 1.0 ? 1.0 : 0.1 * m * log(factor) + 1.0;
}

double config_softmax_scale(const ModelConfig *c) {
    double s = 1.0 / sqrt((double)config_qk_head_dim(c));
    if (c->yarn.factor > 1.0 && c->yarn.mscale_all_dim > 0) {
        double m = yarn_mscale(c->yarn.factor, c->yarn.mscale_all_dim);
        s *= m * m;
    }
    return s;
}
