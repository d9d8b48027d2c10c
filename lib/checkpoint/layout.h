// layout.h — where every parameter of a model lives in one flat buffer, with its Hugging Face name.
// Parameters, gradients and optimizer moments share this layout, so AdamW, clipping, zeroing and
// checkpoint I/O are single flat loops; the safetensors names come straight from the table.
#ifndef DS_LAYOUT_H
#define DS_LAYOUT_H

#include "checkpoint/config.h"

enum {
    PARAM_DECAY = 1,  // weight decay applies (matrices)
    PARAM_FROZEN = 2, // not trained by gradients (the MoE selection bias)
};

typedef struct ParamInfo {
    char name[128];   // e.g. "model.layers.3.self_attn.kv_b_proj.weight"
    int ndim;
    int64_t shape[2];
    size_t offset, numel;
    unsigned flags;
    double init_std;  // 0: ones (norm weights) or zeros (biases), see init_ones
    int init_ones;
} ParamInfo;

#define LAYOUT_NONE ((size_t)-1)

// Offsets of one transformer block (main layers and MTP modules alike). LAYOUT_NONE when absent.
typedef struct LayerLayout {
    int moe;                       // DeepSeekMoE FFN (else dense SwiGLU)
    size_t attn_norm, ffn_norm;
    size_t q_a, q_a_norm, q_b;     // MLA with q_lora_rank; q_b is q_proj [H*dqk, d] without it
    size_t kv_a, kv_a_norm, kv_b;  // MLA
    size_t qkv, qkv_bias;          // llama/qwen2: q, k, v stacked [(H + 2 Hkv) * hd, d]
    size_t o;                      // [d, H*dv]
    size_t gate_up, down;          // dense FFN (gate and up adjacent: one [2F, d] matrix)
    size_t router, router_bias;    // [E, d], [E]
    size_t experts;                // expert e at experts + e*expert_stride: gate_up [2Fm, d], down [d, Fm]
    size_t expert_stride;
    size_t shared_gate_up, shared_down;
    size_t enorm, hnorm, eh_proj, head_norm; // MTP module extras
} LayerLayout;

typedef struct ModelLayout {
    ModelConfig cfg;
    ParamInfo *p;
    int np, cap;
    size_t total;                  // number of scalars
    size_t embed, final_norm, lm_head; // lm_head == embed when tied
    LayerLayout *layers;           // num_hidden_layers + num_nextn_predict_layers
    int nlayers, nmtp;
    void *sizing;                  // set only inside layout_size: count, store nothing
} ModelLayout;

// The sizes of a layout, counted without building it, in 64 bits with overflow checks; parts are
// the parameters of embeddings + head, attention (+ norms, MTP projections), dense FFNs and MoE
// experts (routers and shared experts included). Returns 0 when a count overflows int64_t.
typedef enum { LAYOUT_PART_EMBED, LAYOUT_PART_ATTN, LAYOUT_PART_FFN, LAYOUT_PART_MOE, LAYOUT_NPARTS } LayoutPart;
typedef struct LayoutSize {
    int64_t params, padded, tensors; // padded: scalars of the flat buffer (16-scalar aligned)
    int64_t part[LAYOUT_NPARTS];
    LayoutPart overflow_part; // the part whose count overflowed, when layout_size returns 0
} LayoutSize;
int layout_size(const ModelConfig *c, LayoutSize *s);

// DS_OK when `copies` float32 copies of the parameters (4 for training: weights, gradients and
// AdamW's two moments) fit in the machine's physical memory; otherwise a message naming `name`
// (the config file) with the sizes, so a huge config fails before any allocation.
int layout_check_memory(const ModelConfig *c, int copies, const char *name, DsErr *e);

void layout_build(ModelLayout *L, const ModelConfig *c);
void layout_free(ModelLayout *L);
const ParamInfo *layout_find(const ModelLayout *L, const char *name);
// Parameter counts: total, and active per token (routed experts counted num_experts_per_tok times).
size_t layout_active_params(const ModelLayout *L, int include_mtp);
// Multiply-adds per token of the linear layers (forward), for FLOP/MFU accounting; attention-core
// work for a sequence of T tokens is added by the caller.
double layout_matmul_flops_per_token(const ModelLayout *L, int include_mtp);

#endif
