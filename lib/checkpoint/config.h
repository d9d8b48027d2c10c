// config.h — model configuration read from (and written as) a Hugging Face-style config.json:
// model_type deepseek_v3 (MLA + DeepSeekMoE + MTP) or the dense students llama / qwen2.
#ifndef DS_CONFIG_H
#define DS_CONFIG_H

#include <jansson.h>

#include "core/common.h"

typedef enum { ARCH_DEEPSEEK_V3, ARCH_LLAMA, ARCH_QWEN2 } ModelArch;
// rope_scaling.type (transformers' rope_type); docs/CONFIG.md gives each one's frequencies.
typedef enum { ROPE_DEFAULT, ROPE_YARN, ROPE_LLAMA3, ROPE_LINEAR, ROPE_DYNAMIC } RopeType;
// topk_method: V3's bias-shifted group-limited top-k, or plain top-k over all experts.
typedef enum { TOPK_NOAUX_TC, TOPK_GREEDY } TopkMethod;

typedef struct ModelConfig {
    ModelArch arch;
    int vocab_size, hidden_size, num_hidden_layers, num_attention_heads;
    int intermediate_size; // dense FFN width
    int max_position_embeddings;
    double rms_norm_eps, rope_theta, initializer_range;
    int tie_word_embeddings;
    // RoPE scaling; type ROPE_DEFAULT = none (the other fields are then 0)
    struct RopeScaling {
        RopeType type;
        double factor;                        // every type but default
        double beta_fast, beta_slow, mscale, mscale_all_dim; // yarn
        double low_freq_factor, high_freq_factor;            // llama3
        int original_max_position_embeddings;                // yarn, llama3
    } rope_scaling;
    // deepseek_v3: MLA
    int q_lora_rank; // 0 = no query compression (q_proj)
    int kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim;
    // deepseek_v3: MoE
    int n_routed_experts, n_shared_experts, num_experts_per_tok, moe_intermediate_size;
    int n_group, topk_group, first_k_dense_replace, norm_topk_prob;
    double routed_scaling_factor;
    int scoring_sigmoid; // scoring_func: 1 sigmoid (V3), 0 softmax (V2)
    int moe_layer_freq;
    TopkMethod topk_method;
    // deepseek_v3: MTP
    int num_nextn_predict_layers;
    // llama / qwen2: grouped-query attention
    int num_key_value_heads, head_dim, attention_bias;
    // quantization_config: 1 for FP8 weights (quant_method fp8, e4m3, dynamic activation scales)
    // in weight_block_rows x weight_block_cols blocks; 0 = unquantized checkpoint
    struct {
        int fp8;
        int weight_block_rows, weight_block_cols;
    } quant;
} ModelConfig;

// Receives one warning: a whole line without newline, naming the file and key.
typedef void (*ConfigWarnFn)(void *ctx, const char *msg);

// Parses and validates; messages name the file (`name`) and the key, e.g.
// "config.json: n_group: must be >= 1 and divide n_routed_experts (6 experts, n_group 4)".
// Every key is type-checked and range-checked; keys that would change the computation in a way ds
// does not implement are refused by name; other unknown keys go to `warn` (may be NULL), one call
// per key. docs/CONFIG.md lists every key.
int config_from_json_warn(ModelConfig *c, const json_t *j, const char *name, ConfigWarnFn warn,
                          void *ctx, DsErr *e);
int config_from_string_warn(ModelConfig *c, const char *text, size_t len, const char *name,
                            ConfigWarnFn warn, void *ctx, DsErr *e);
int config_load_warn(ModelConfig *c, const char *path, ConfigWarnFn warn, void *ctx, DsErr *e);
// The same without warnings.
int config_from_json(ModelConfig *c, const json_t *j, const char *name, DsErr *e);
int config_load(ModelConfig *c, const char *path, DsErr *e);
int config_from_string(ModelConfig *c, const char *text, size_t len, const char *name, DsErr *e);
// The config as Hugging Face config.json (new reference).
json_t *config_to_json(const ModelConfig *c);
int config_equal(const ModelConfig *a, const ModelConfig *b);

// Derived sizes.
int config_is_moe_layer(const ModelConfig *c, int layer); // layer index, MTP layers included
int config_qk_head_dim(const ModelConfig *c);              // per-head query/key width
int config_v_head_dim(const ModelConfig *c);
int config_kv_heads(const ModelConfig *c);
int config_rope_dim(const ModelConfig *c);     // rotated width per head
int config_route_groups(const ModelConfig *c); // expert groups routing limits to (1: no limit)
// The most scalars a config may ask for (layout_size's padded count): DeepSeek-V3 with its MTP
// module is 0.69e12.
#define CONFIG_MAX_PARAMS ((int64_t)1 << 40)
double config_softmax_scale(const ModelConfig *c); // 1/sqrt(qk_head_dim), times mscale² under V3's YaRN

#endif
