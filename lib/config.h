// config.h — model configuration read from (and written as) a Hugging Face-style config.json:
// model_type deepseek_v3 (MLA + DeepSeekMoE + MTP) or the dense students llama / qwen2.
#ifndef DS_CONFIG_H
#define DS_CONFIG_H

#include <jansson.h>

#include "common.h"

typedef enum { ARCH_DEEPSEEK_V3, ARCH_LLAMA, ARCH_QWEN2 } ModelArch;

typedef struct ModelConfig {
    ModelArch arch;
    int vocab_size, hidden_size, num_hidden_layers, num_attention_heads;
    int intermediate_size; // dense FFN width
    int max_position_embeddings;
    double rms_norm_eps, rope_theta, initializer_range;
    int tie_word_embeddings;
    // RoPE scaling (YaRN); factor 0 = none
    struct {
        double factor, beta_fast, beta_slow, mscale, mscale_all_dim;
        int original_max_position_embeddings;
    } yarn;
    // deepseek_v3: MLA
    int q_lora_rank; // 0 = no query compression (q_proj)
    int kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim;
    // deepseek_v3: MoE
    int n_routed_experts, n_shared_experts, num_experts_per_tok, moe_intermediate_size;
    int n_group, topk_group, first_k_dense_replace, norm_topk_prob;
    double routed_scaling_factor;
    int scoring_sigmoid; // scoring_func: 1 sigmoid (V3), 0 softmax (V2)
    int moe_layer_freq;
    // deepseek_v3: MTP
    int num_nextn_predict_layers;
    // llama / qwen2: grouped-query attention
    int num_key_value_heads, head_dim, attention_bias;
} ModelConfig;

// Parses and validates; messages name the file (`name`) and the key, e.g.
// "config.json: n_routed_experts (6) is not divisible by n_group (4)".
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
double config_softmax_scale(const ModelConfig *c); // 1/sqrt(qk_head_dim), times mscale² under YaRN

#endif
