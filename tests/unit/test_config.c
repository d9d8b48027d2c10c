// test_config.c — config.json validation (every refused key and value with its message), unknown
// key warnings, the rope_scaling types against closed-form values, greedy routing, layout sizes.
#include <jansson.h>

#include "checkpoint/config.h"
#include "checkpoint/layout.h"
#include "nn/moe.h"
#include "math/rope.h"
#include "unit.h"

static const char *V3 =
    "{\"model_type\":\"deepseek_v3\",\"vocab_size\":32,\"hidden_size\":16,\"intermediate_size\":24,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"q_lora_rank\":8,\"kv_lora_rank\":8,"
    "\"qk_nope_head_dim\":4,\"qk_rope_head_dim\":4,\"v_head_dim\":4,\"n_routed_experts\":8,"
    "\"n_shared_experts\":1,\"num_experts_per_tok\":2,\"moe_intermediate_size\":8,\"n_group\":4,"
    "\"topk_group\":2,\"first_k_dense_replace\":1,\"max_position_embeddings\":64}";
static const char *LLAMA =
    "{\"model_type\":\"llama\",\"vocab_size\":32,\"hidden_size\":16,\"intermediate_size\":24,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
    "\"max_position_embeddings\":64}";
static const char *QWEN2 =
    "{\"model_type\":\"qwen2\",\"vocab_size\":32,\"hidden_size\":16,\"intermediate_size\":24,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
    "\"max_position_embeddings\":64}";

typedef struct Warnings {
    int n;
    char msg[8][256];
} Warnings;

static void collect(void *ctx, const char *msg) {
    Warnings *w = ctx;
    if (w->n < 8) snprintf(w->msg[w->n], sizeof w->msg[0], "%s", msg);
    w->n++;
}

// Parses base with the keys of patch set over it (a JSON object; null values stay null).
static int parse_patched(ModelConfig *c, const char *base, const char *patch, Warnings *w, DsErr *e) {
    json_t *b = json_loads(base, 0, NULL), *p = json_loads(patch, 0, NULL);
    DS_CHECK(b && p);
    json_object_update(b, p);
    char *text = json_dumps(b, 0);
    int rc = config_from_string_warn(c, text, strlen(text), "cfg.json", w ? collect : NULL, w, e);
    free(text);
    json_decref(b);
    json_decref(p);
    return rc;
}

static ModelConfig must_parse(T *t, const char *base, const char *patch) {
    ModelConfig c;
    DsErr e;
    Warnings w = {0};
    int rc = parse_patched(&c, base, patch, &w, &e);
    CHECKF(t, rc == DS_OK, "%s: %s", patch, e.msg);
    CHECKF(t, w.n == 0, "%s: %d warnings, first: %s", patch, w.n, w.msg[0]);
    return c;
}

typedef struct Refusal {
    const char **base;
    const char *patch, *msg;
} Refusal;

static const Refusal REFUSED[] = {
    // values out of range or of the wrong type
    {&V3, "{\"n_group\":0}", "cfg.json: n_group: must be an integer in [1, 4096] (got 0)"},
    {&V3, "{\"n_group\":3}", "cfg.json: n_group: must be >= 1 and divide n_routed_experts (8 experts, n_group 3)"},
    {&V3, "{\"topk_group\":5}", "cfg.json: topk_group: must be in [1, n_group (4)] (got 5)"},
    {&V3, "{\"topk_group\":0}", "cfg.json: topk_group: must be an integer in [1, 4096] (got 0)"},
    {&V3, "{\"num_experts_per_tok\":9}", "cfg.json: num_experts_per_tok: must be in [1, n_routed_experts (8)] (got 9)"},
    {&V3, "{\"num_experts_per_tok\":5}", "cfg.json: num_experts_per_tok: (5) exceeds the 4 experts of topk_group (2) groups"},
    {&V3, "{\"n_group\":8,\"topk_group\":1,\"num_experts_per_tok\":1}", "cfg.json: n_group: each expert group needs at least 2 experts"},
    {&V3, "{\"moe_intermediate_size\":0}", "cfg.json: moe_intermediate_size: must be positive for MoE layers"},
    {&V3, "{\"intermediate_size\":0}", "cfg.json: intermediate_size: must be positive (1 dense layers)"},
    {&V3, "{\"hidden_size\":1073741824}", "cfg.json: hidden_size: must be an integer in [1, 16777216] (got 1073741824)"},
    {&V3, "{\"hidden_size\":-1}", "cfg.json: hidden_size: must be an integer in [1, 16777216] (got -1)"},
    {&V3, "{\"hidden_size\":true}", "cfg.json: hidden_size: must be an integer (got true)"},
    {&V3, "{\"hidden_size\":16.0}", "cfg.json: hidden_size: must be an integer (got 16.0)"},
    {&V3, "{\"hidden_size\":\"16\"}", "cfg.json: hidden_size: must be an integer (got \"16\")"},
    {&V3, "{\"num_hidden_layers\":1073741824}", "cfg.json: num_hidden_layers: must be an integer in [1, 1024]"},
    {&V3, "{\"first_k_dense_replace\":2000}", "cfg.json: first_k_dense_replace: must be an integer in [0, 1024]"},
    {&V3, "{\"moe_layer_freq\":0}", "cfg.json: moe_layer_freq: must be an integer in [1, 1024] (got 0)"},
    {&V3, "{\"num_nextn_predict_layers\":17}", "cfg.json: num_nextn_predict_layers: must be an integer in [0, 16]"},
    {&V3, "{\"kv_lora_rank\":0}", "cfg.json: kv_lora_rank: must be an integer in [1, 16777216] (got 0)"},
    {&V3, "{\"qk_rope_head_dim\":3}", "cfg.json: qk_rope_head_dim: must be even (got 3)"},
    {&V3, "{\"qk_rope_head_dim\":0,\"qk_nope_head_dim\":0}", "cfg.json: qk_nope_head_dim: qk_nope_head_dim + qk_rope_head_dim must be positive"},
    {&V3, "{\"vocab_size\":16777216,\"hidden_size\":16777216}",
     "parameters are more than ds's limit of 1099511627776; the largest part is 562949953421312: vocab_size × hidden_size"},
    {&V3, "{\"num_hidden_layers\":1024,\"hidden_size\":16777216,\"num_attention_heads\":1,\"q_lora_rank\":16777216,\"kv_lora_rank\":16777216}",
     "parameters are more than ds's limit of 1099511627776; the largest part is 576461233356537856: num_hidden_layers × attention"},
    {&V3, "{\"num_hidden_layers\":1024,\"hidden_size\":16777216,\"moe_intermediate_size\":16777216,\"n_routed_experts\":256,\"n_group\":1,\"topk_group\":1}",
     "cfg.json: the parameter count overflows 64 bits (MoE layers × (n_routed_experts + n_shared_experts)"},
    {&V3, "{\"num_attention_heads\":65536,\"qk_nope_head_dim\":2048}",
     "cfg.json: num_attention_heads × (qk_nope_head_dim + qk_rope_head_dim) is 134479872, more than 67108864"},
    {&V3, "{\"moe_intermediate_size\":16777216,\"n_shared_experts\":8}",
     "cfg.json: moe_intermediate_size × n_shared_experts is 134217728, more than 67108864"},
    {&V3, "{\"n_routed_experts\":4096,\"num_hidden_layers\":1024}",
     "cfg.json: n_routed_experts: 4096 experts in 1023 MoE layers are more than 262144 expert blocks"},
    {&V3, "{\"max_position_embeddings\":0}", "cfg.json: max_position_embeddings: must be an integer in [2, 16777216] (got 0)"},
    {&V3, "{\"max_position_embeddings\":1}", "cfg.json: max_position_embeddings: must be an integer in [2, 16777216] (got 1)"},
    {&V3, "{\"rms_norm_eps\":0}", "cfg.json: rms_norm_eps: must be a number in (0, 1] (got 0)"},
    {&V3, "{\"rope_theta\":\"10000\"}", "cfg.json: rope_theta: must be a number (got \"10000\")"},
    {&V3, "{\"rope_theta\":1}", "cfg.json: rope_theta: must be a number in (1, 1e+15] (got 1)"},
    {&V3, "{\"routed_scaling_factor\":-1}", "cfg.json: routed_scaling_factor: must be a number in (0, 1e+06] (got -1)"},
    {&V3, "{\"initializer_range\":-0.5}", "cfg.json: initializer_range: must be a number in [0, 1000] (got -0.5)"},
    {&V3, "{\"norm_topk_prob\":1}", "cfg.json: norm_topk_prob: must be true or false (got 1)"},
    {&LLAMA, "{\"tie_word_embeddings\":\"yes\"}", "cfg.json: tie_word_embeddings: must be true or false (got \"yes\")"},
    {&LLAMA, "{\"num_key_value_heads\":3}", "cfg.json: num_key_value_heads: num_attention_heads (4) must be a multiple of num_key_value_heads (3)"},
    {&LLAMA, "{\"num_key_value_heads\":8}", "cfg.json: num_key_value_heads: num_attention_heads (4) must be a multiple of num_key_value_heads (8)"},
    {&LLAMA, "{\"head_dim\":5}", "cfg.json: head_dim: must be positive and even (got 5)"},
    {&LLAMA, "{\"hidden_size\":2,\"num_attention_heads\":4,\"num_key_value_heads\":4}", "cfg.json: head_dim: must be positive and even (got 0)"},
    {&LLAMA, "{\"intermediate_size\":0}", "cfg.json: intermediate_size: must be an integer in [1, 16777216] (got 0)"},
    {&LLAMA, "{\"model_type\":7}", "cfg.json: model_type: must be a string (got 7)"},
    {&LLAMA, "{\"model_type\":\"gpt2\"}", "cfg.json: model_type 'gpt2' is not supported (deepseek_v3, llama, qwen2)"},
    // rope_scaling
    {&V3, "{\"rope_scaling\":{\"type\":\"yarn\",\"factor\":40,\"original_max_position_embeddings\":0}}",
     "cfg.json: rope_scaling.original_max_position_embeddings: must be an integer in [1, 64] (got 0)"},
    {&V3, "{\"rope_scaling\":{\"type\":\"yarn\",\"factor\":40,\"original_max_position_embeddings\":-100}}",
     "cfg.json: rope_scaling.original_max_position_embeddings: must be an integer in [1, 64] (got -100)"},
    {&V3, "{\"rope_scaling\":{\"type\":\"yarn\",\"factor\":40,\"original_max_position_embeddings\":1e300}}",
     "cfg.json: rope_scaling.original_max_position_embeddings: must be an integer (got 1"},
    {&V3, "{\"rope_scaling\":{\"type\":\"yarn\",\"factor\":40,\"original_max_position_embeddings\":128}}",
     "cfg.json: rope_scaling.original_max_position_embeddings: must be an integer in [1, 64] (got 128)"},
    {&V3, "{\"rope_scaling\":{\"type\":\"yarn\"}}", "cfg.json: rope_scaling.factor: required for 'yarn'"},
    {&V3, "{\"rope_scaling\":{\"type\":\"yarn\",\"factor\":0.5}}", "cfg.json: rope_scaling.factor: must be a number in [1, 1e+06] (got 0.5)"},
    {&V3, "{\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4,\"beta_fast\":1,\"beta_slow\":32}}",
     "cfg.json: rope_scaling.beta_slow: must be less than beta_fast (32 >= 1)"},
    {&V3, "{\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4,\"attention_factor\":1.2}}",
     "cfg.json: rope_scaling.attention_factor: is not supported"},
    {&V3, "{\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4,\"truncate\":false}}", "cfg.json: rope_scaling.truncate: false is not supported"},
    {&V3, "{\"rope_scaling\":{\"type\":\"longrope\",\"factor\":2}}", "cfg.json: rope_scaling.type: 'longrope' is not supported (default, yarn, llama3, linear, dynamic)"},
    {&V3, "{\"rope_scaling\":{\"factor\":2}}", "cfg.json: rope_scaling: needs \"rope_type\" (or \"type\")"},
    {&V3, "{\"rope_scaling\":5}", "cfg.json: rope_scaling: must be an object or null"},
    {&V3, "{\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":2},\"rope_parameters\":{\"rope_type\":\"default\"}}",
     "cfg.json: rope_parameters: give rope_scaling or rope_parameters, not both"},
    {&LLAMA, "{\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,\"high_freq_factor\":4}}",
     "cfg.json: missing required key 'rope_scaling.original_max_position_embeddings'"},
    {&LLAMA, "{\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"original_max_position_embeddings\":16}}",
     "cfg.json: rope_scaling: llama3 needs low_freq_factor and high_freq_factor"},
    {&LLAMA, "{\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":4,\"high_freq_factor\":4,\"original_max_position_embeddings\":16}}",
     "cfg.json: rope_scaling.low_freq_factor: must be less than high_freq_factor (4 >= 4)"},
    {&LLAMA, "{\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":\"2\"}}", "cfg.json: rope_scaling.factor: must be a number (got \"2\")"},
    {&LLAMA, "{\"hidden_size\":8,\"head_dim\":2,\"rope_scaling\":{\"rope_type\":\"dynamic\",\"factor\":2}}",
     "cfg.json: rope_scaling.rope_type: 'dynamic' needs a rotated width above 2"},
    // keys that would change the computation
    {&V3, "{\"scoring_func\":\"softmax\"}", "cfg.json: scoring_func: 'softmax' is not supported (only DeepSeek-V3's 'sigmoid')"},
    {&V3, "{\"topk_method\":\"group_limited_greedy\"}", "cfg.json: topk_method: 'group_limited_greedy' is not supported (noaux_tc or greedy)"},
    {&V3, "{\"topk_method\":\"sinkhorn\"}", "cfg.json: topk_method: 'sinkhorn' is not supported (noaux_tc or greedy)"},
    {&V3, "{\"hidden_act\":\"gelu\"}", "cfg.json: hidden_act: 'gelu' is not supported (ds's FFN is SwiGLU: 'silu')"},
    {&LLAMA, "{\"hidden_act\":\"relu\"}", "cfg.json: hidden_act: 'relu' is not supported"},
    {&QWEN2, "{\"attention_dropout\":0.1}", "cfg.json: attention_dropout: must be 0 (ds has no dropout; got 0.1)"},
    {&LLAMA, "{\"partial_rotary_factor\":0.5}", "cfg.json: partial_rotary_factor: must be 1"},
    {&V3, "{\"attention_bias\":true}", "cfg.json: attention_bias: true is not supported (MLA has no biases)"},
    {&V3, "{\"rope_interleave\":false}", "cfg.json: rope_interleave: false is not supported"},
    {&LLAMA, "{\"attention_bias\":true}", "cfg.json: attention_bias: true is not supported for llama (transformers biases o_proj too"},
    {&LLAMA, "{\"mlp_bias\":true}", "cfg.json: mlp_bias: true is not supported (ds's FFN has no biases)"},
    {&LLAMA, "{\"layer_types\":[\"full_attention\",\"sliding_attention\"]}", "cfg.json: layer_types: only \"full_attention\" layers are supported"},
    {&QWEN2, "{\"use_sliding_window\":true}", "cfg.json: use_sliding_window: true is not supported (ds attends to the whole context)"},
    {&QWEN2, "{\"use_mrope\":true}", "cfg.json: use_mrope: true is not supported"},
    {&V3, "{\"quantization_config\":{\"quant_method\":\"gptq\",\"bits\":4}}",
     "cfg.json: quantization_config.quant_method: 'gptq' is not supported (only 'fp8' with block-scaled weights)"},
    {&V3, "{\"quantization_config\":{\"bits\":4}}", "cfg.json: quantization_config.quant_method: is required"},
    {&V3, "{\"quantization_config\":{\"quant_method\":\"fp8\",\"weight_block_size\":[0,64]}}",
     "cfg.json: quantization_config.weight_block_size: must be two block sizes [rows, cols] from 1 to 65536"},
    {&V3, "{\"quantization_config\":{\"quant_method\":\"fp8\"}}", "cfg.json: quantization_config.weight_block_size: must be two block sizes"},
    {&V3, "{\"quantization_config\":{\"quant_method\":\"fp8\",\"weight_block_size\":[128,128],\"fmt\":\"e5m2\"}}",
     "cfg.json: quantization_config.fmt: 'e5m2' is not supported (only 'e4m3')"},
    {&V3, "{\"quantization_config\":{\"quant_method\":\"fp8\",\"weight_block_size\":[128,128],\"activation_scheme\":\"static\"}}",
     "cfg.json: quantization_config.activation_scheme: 'static' is not supported"},
    {&V3, "{\"quantization_config\":\"fp8\"}", "cfg.json: quantization_config: must be an object"},
};

static void refused(T *t) {
    for (size_t i = 0; i < DS_ARRAY_LEN(REFUSED); i++) {
        ModelConfig c;
        DsErr e = {{0}};
        int rc = parse_patched(&c, *REFUSED[i].base, REFUSED[i].patch, NULL, &e);
        CHECKF(t, rc == DS_ERR && strstr(e.msg, REFUSED[i].msg), "%s\n  want: %s\n  got:  %s", REFUSED[i].patch,
               REFUSED[i].msg, rc == DS_ERR ? e.msg : "(accepted)");
    }
}

static void duplicate_keys(T *t) {
    const char *dup = "{\"model_type\":\"llama\",\"vocab_size\":32,\"hidden_size\":16,\"vocab_size\":64,"
                      "\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":4}";
    ModelConfig c;
    DsErr e;
    CHECK(t, config_from_string(&c, dup, strlen(dup), "cfg.json", &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, "cfg.json:1: invalid JSON: duplicate object key"), "%s", e.msg);
    const char *dup2 = "{\"model_type\":\"llama\",\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":2,\"factor\":4}}";
    CHECK(t, config_from_string(&c, dup2, strlen(dup2), "cfg.json", &e) == DS_ERR && strstr(e.msg, "duplicate"));
}

static void warnings(T *t) {
    ModelConfig c;
    DsErr e;
    Warnings w = {0};
    int rc = parse_patched(&c, LLAMA,
                           "{\"foo\":1,\"bos_token_id\":1,\"eos_token_id\":[1,2],\"torch_dtype\":\"bfloat16\","
                           "\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":2,\"bar\":3},"
                           "\"quantization_config\":{\"quant_method\":\"fp8\",\"weight_block_size\":[128,128],\"baz\":0}}",
                           &w, &e);
    CHECKF(t, rc == DS_OK, "%s", e.msg);
    CHECKF(t, w.n == 3, "%d warnings", w.n);
    CHECKF(t, !strcmp(w.msg[0], "cfg.json: rope_scaling.bar: unknown key, ignored"), "%s", w.msg[0]);
    CHECKF(t, !strcmp(w.msg[1], "cfg.json: quantization_config.baz: unknown key, ignored"), "%s", w.msg[1]);
    CHECKF(t, !strcmp(w.msg[2], "cfg.json: foo: unknown key, ignored"), "%s", w.msg[2]);
    // A key of another model type is unknown here; harmless keys of this one are not.
    w.n = 0;
    CHECK(t, parse_patched(&c, LLAMA, "{\"q_lora_rank\":8,\"pretraining_tp\":1}", &w, &e) == DS_OK);
    CHECKF(t, w.n == 1 && !strcmp(w.msg[0], "cfg.json: q_lora_rank: unknown key, ignored"), "%d %s", w.n, w.msg[0]);
    w.n = 0;
    CHECK(t, parse_patched(&c, QWEN2, "{\"sliding_window\":4096,\"max_window_layers\":21,\"use_sliding_window\":false}", &w, &e) == DS_OK);
    CHECKF(t, w.n == 0, "%d %s", w.n, w.msg[0]);
    w.n = 0;
    CHECK(t, parse_patched(&c, V3, "{\"sliding_window\":4096,\"ep_size\":1,\"seq_aux\":true}", &w, &e) == DS_OK);
    CHECKF(t, w.n == 1 && !strcmp(w.msg[0], "cfg.json: sliding_window: unknown key, ignored"), "%d %s", w.n, w.msg[0]);
}

static void accepted_values(T *t) {
    ModelConfig c = must_parse(t, V3, "{\"topk_method\":\"greedy\",\"n_group\":1,\"topk_group\":1}");
    CHECK(t, c.topk_method == TOPK_GREEDY && config_route_groups(&c) == 1);
    c = must_parse(t, V3, "{}");
    CHECK(t, c.topk_method == TOPK_NOAUX_TC && config_route_groups(&c) == 4);
    c = must_parse(t, V3, "{\"quantization_config\":{\"activation_scheme\":\"dynamic\",\"fmt\":\"e4m3\","
                          "\"quant_method\":\"fp8\",\"weight_block_size\":[128,128]}}");
    CHECK(t, c.quant.fp8 && c.quant.weight_block_rows == 128 && c.quant.weight_block_cols == 128);
    c = must_parse(t, V3, "{\"q_lora_rank\":null,\"rope_scaling\":null,\"attention_bias\":false,\"rope_interleave\":true}");
    CHECK(t, c.q_lora_rank == 0 && c.rope_scaling.type == ROPE_DEFAULT);
    c = must_parse(t, LLAMA, "{\"rope_scaling\":{\"rope_type\":\"default\"},\"layer_types\":[\"full_attention\",\"full_attention\"],"
                             "\"hidden_act\":\"silu\",\"attention_dropout\":0.0,\"mlp_bias\":false,\"attention_bias\":false}");
    CHECK(t, c.rope_scaling.type == ROPE_DEFAULT && c.attention_bias == 0);
    // transformers 5 keeps rope_theta inside rope_parameters
    c = must_parse(t, LLAMA, "{\"rope_parameters\":{\"rope_type\":\"linear\",\"factor\":2,\"rope_theta\":500000.0}}");
    CHECK(t, c.rope_scaling.type == ROPE_LINEAR && c.rope_theta == 500000.0);
    // YaRN without original_max_position_embeddings: transformers' default, the configured length
    c = must_parse(t, V3, "{\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}}");
    CHECK(t, c.rope_scaling.original_max_position_embeddings == 64 && c.rope_scaling.beta_fast == 32);
}

static void round_trip(T *t) {
    const char *patches[] = {
        "{\"topk_method\":\"greedy\",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4,\"mscale\":0.7,\"mscale_all_dim\":0.5,\"original_max_position_embeddings\":16}}",
        "{\"quantization_config\":{\"quant_method\":\"fp8\",\"weight_block_size\":[128,128]},\"rope_scaling\":{\"rope_type\":\"dynamic\",\"factor\":2}}",
    };
    const char *dense[] = {
        "{\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,\"high_freq_factor\":4,\"original_max_position_embeddings\":16}}",
        "{\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":3},\"tie_word_embeddings\":true}",
    };
    for (int k = 0; k < 4; k++) {
        ModelConfig a = must_parse(t, k < 2 ? V3 : LLAMA, k < 2 ? patches[k] : dense[k - 2]), b;
        DsErr e;
        json_t *j = config_to_json(&a);
        Warnings w = {0};
        CHECKF(t, config_from_json_warn(&b, j, "rt", collect, &w, &e) == DS_OK, "%s", e.msg);
        CHECKF(t, config_equal(&a, &b), "case %d", k);
        CHECK(t, w.n == 0);
        json_decref(j);
    }
}

// ----------------------------------------------------------------------------
// rope_scaling: inverse frequencies against values computed independently from transformers'
// modeling_rope_utils formulas, in double, e.g. for llama3:
//   python3 -c 'import math; f=1/500000**(2*16/64); w=2*math.pi/f; s=(8192/w-1)/(4-1);
//               print((1-s)*f/32+s*f)'

static void rope_llama3(T *t) {
    // Llama 3.2 1B: head_dim 64, rope_theta 500000, factor 32, low 1, high 4, original 8192.
    ModelConfig c = must_parse(t, LLAMA,
                               "{\"hidden_size\":2048,\"num_attention_heads\":32,\"num_key_value_heads\":8,"
                               "\"head_dim\":64,\"max_position_embeddings\":131072,\"rope_theta\":500000.0,"
                               "\"rope_scaling\":{\"factor\":32.0,\"high_freq_factor\":4.0,\"low_freq_factor\":1.0,"
                               "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"}}");
    static const struct {
        int i;
        double f;
    } want[] = {{0, 1.0},
                {14, 0.0032114459947525913},   // kept (wavelength < 8192/4)
                {15, 0.001290547928209264},    // blended
                {16, 0.00042955679655936815},  // blended
                {17, 9.7082878026276702e-05},  // blended
                {18, 1.9461638184831125e-05},  // divided by 32 (wavelength > 8192)
                {31, 9.4183067254349087e-08}}; // divided by 32
    for (size_t k = 0; k < DS_ARRAY_LEN(want); k++) CHECK_CLOSE(t, rope_inv_freq(&c, 64, want[k].i) / want[k].f, 1.0, 1e-13);
    CHECK(t, rope_attention_factor(&c) == 1.0);
}

static void rope_linear_dynamic(T *t) {
    // head_dim 16, rope_theta 10000, max_position_embeddings 64
    const char *base = "{\"hidden_size\":64,\"num_attention_heads\":4,\"num_key_value_heads\":4,\"rope_theta\":10000.0}";
    ModelConfig plain = must_parse(t, LLAMA, base);
    json_t *b = json_loads(base, 0, NULL);
    json_object_set_new(b, "rope_scaling", json_pack("{s:s,s:f}", "rope_type", "linear", "factor", 4.0));
    char *s = json_dumps(b, 0);
    ModelConfig lin = must_parse(t, LLAMA, s);
    free(s);
    CHECK_CLOSE(t, rope_inv_freq(&lin, 16, 3), 0.007905694150420948, 1e-15); // 10000^(-6/16) / 4
    for (int i = 0; i < 8; i++) CHECK_CLOSE(t, rope_inv_freq(&lin, 16, i) * 4, rope_inv_freq(&plain, 16, i), 1e-15);
    json_object_set_new(b, "rope_scaling", json_pack("{s:s,s:f}", "rope_type", "dynamic", "factor", 4.0));
    s = json_dumps(b, 0);
    ModelConfig dyn = must_parse(t, LLAMA, s);
    free(s);
    json_decref(b);
    // Up to the configured 64 positions the frequencies are plain RoPE's ...
    for (int i = 0; i < 8; i++) CHECK(t, rope_inv_freq_at(&dyn, 16, i, 32) == rope_inv_freq(&plain, 16, i));
    CHECK(t, rope_inv_freq(&dyn, 16, 7) == rope_inv_freq(&plain, 16, 7));
    // ... and a 256-row table uses base 10000 * (4*256/64 - 3)^(16/14).
    CHECK_CLOSE(t, rope_inv_freq_at(&dyn, 16, 0, 256), 1.0, 1e-15);
    CHECK_CLOSE(t, rope_inv_freq_at(&dyn, 16, 1, 256) / 0.21921245982043136, 1.0, 1e-13);
    CHECK_CLOSE(t, rope_inv_freq_at(&dyn, 16, 7, 256) / 2.4325212770526e-05, 1.0, 1e-13);
    Rope r;
    rope_init(&r, &dyn, 256);
    double f7 = rope_inv_freq_at(&dyn, 16, 7, 256);
    CHECK(t, r.interleaved == 0 && r.dim == 16);
    CHECK_CLOSE(t, r.cos[255 * 8 + 7], cos(255 * f7), 1e-15);
    CHECK_CLOSE(t, r.sin[100 * 8 + 1], sin(100 * 0.21921245982043136), 1e-12);
    rope_free(&r);
}

static void rope_yarn_v3(T *t) {
    // DeepSeek-V3: qk_rope_head_dim 64, rope_theta 10000, factor 40, original 4096, betas 32 / 1:
    // pairs below 10 are kept, above 23 divided by 40, a linear ramp between.
    ModelConfig c = must_parse(t, V3,
                               "{\"qk_nope_head_dim\":128,\"qk_rope_head_dim\":64,\"max_position_embeddings\":163840,"
                               "\"rope_theta\":10000,\"rope_scaling\":{\"beta_fast\":32,\"beta_slow\":1,\"factor\":40,"
                               "\"mscale\":1.0,\"mscale_all_dim\":1.0,\"original_max_position_embeddings\":4096,\"type\":\"yarn\"}}");
    static const struct {
        int i;
        double f;
    } want[] = {{0, 1.0}, {5, 0.23713737056616555}, {10, 0.056234132519034905}, {15, 0.0083345089510207769},
                {20, 0.00079056941504209452}, {25, 1.8747355233311393e-05}, {31, 3.3338035804083097e-06}};
    for (size_t k = 0; k < DS_ARRAY_LEN(want); k++) CHECK_CLOSE(t, rope_inv_freq(&c, 64, want[k].i) / want[k].f, 1.0, 1e-13);
    // mscale == mscale_all_dim: no factor on cos/sin; the softmax scale gains (0.1 ln 40 + 1)².
    CHECK(t, rope_attention_factor(&c) == 1.0);
    CHECK_CLOSE(t, config_softmax_scale(&c), 0.13523377886088009, 1e-14);
    // llama and qwen2 attention keeps 1/sqrt(head_dim) under YaRN (transformers); the default
    // attention factor 0.1 ln(factor) + 1 goes into cos and sin.
    ModelConfig l = must_parse(t, QWEN2, "{\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4,\"mscale_all_dim\":1.0,\"mscale\":1.0}}");
    CHECK_CLOSE(t, config_softmax_scale(&l), 0.5, 1e-15); // head_dim 4
    l = must_parse(t, QWEN2, "{\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}}");
    CHECK_CLOSE(t, rope_attention_factor(&l), 0.1 * log(4.0) + 1, 1e-15);
}

// ----------------------------------------------------------------------------
// greedy routing and layout sizes

static void route_greedy(T *t) {
    // 8 experts in 4 groups; the two best experts (0 and 7) lie in different groups.
    double logits[8] = {3.0, -1.0, -2.0, -2.0, -2.0, -2.0, 1.0, 2.5}, score[8], gate[2];
    int idx[2];
    ModelConfig g = must_parse(t, V3, "{\"topk_method\":\"greedy\",\"topk_group\":1}");
    moe_route_forward_f64(idx, gate, score, logits, NULL, &g, 1);
    CHECKF(t, idx[0] == 0 && idx[1] == 7, "greedy picked %d %d", idx[0], idx[1]);
    // noaux_tc with one group allowed keeps the best group (experts 6 and 7).
    ModelConfig n = must_parse(t, V3, "{\"topk_group\":1}");
    moe_route_forward_f64(idx, gate, score, logits, NULL, &n, 1);
    CHECKF(t, idx[0] == 6 && idx[1] == 7, "noaux_tc picked %d %d", idx[0], idx[1]);
}

static void layout_sizes(T *t) {
    const char *bases[] = {V3, LLAMA, QWEN2};
    const char *patches[] = {"{}", "{\"tie_word_embeddings\":true,\"num_nextn_predict_layers\":2,\"moe_layer_freq\":2}"};
    for (int b = 0; b < 3; b++)
        for (int p = 0; p < 2; p++) {
            ModelConfig c = must_parse(t, bases[b], b == 0 ? patches[p] : "{}");
            ModelLayout L;
            layout_build(&L, &c);
            LayoutSize s;
            CHECK(t, layout_size(&c, &s));
            int64_t numel = 0, parts = 0;
            for (int i = 0; i < L.np; i++) numel += (int64_t)L.p[i].numel;
            for (int i = 0; i < LAYOUT_NPARTS; i++) parts += s.part[i];
            CHECKF(t, s.params == numel && s.padded == (int64_t)L.total && s.tensors == L.np && parts == numel,
                   "%d/%d: %lld vs %lld", b, p, (long long)s.params, (long long)numel);
            layout_free(&L);
        }
}

UNIT_MAIN(CASE(refused), CASE(duplicate_keys), CASE(warnings), CASE(accepted_values), CASE(round_trip),
          CASE(rope_llama3), CASE(rope_linear_dynamic), CASE(rope_yarn_v3), CASE(route_greedy), CASE(layout_sizes))
