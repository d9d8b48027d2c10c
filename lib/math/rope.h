// rope.h — rotary position embedding tables with the rope_scaling types of config.json (yarn,
// llama3, linear, dynamic), shared by both precisions: the angles are computed once in double.
#ifndef DS_ROPE_H
#define DS_ROPE_H

#include "checkpoint/config.h"

typedef struct Rope {
    int dim;         // rotated width (qk_rope_head_dim or head_dim), even
    int max_pos;     // table rows
    int interleaved; // 1: pairs (x[2i], x[2i+1]) as DeepSeek's code; 0: rotate-half (x[i], x[i+dim/2]) as llama
    double *cos, *sin; // [max_pos][dim/2], already multiplied by the attention factor (YaRN's mscale)
} Rope;

void rope_init(Rope *r, const ModelConfig *c, int max_pos);
void rope_free(Rope *r);
// The inverse frequency of pair i of a dim-wide rotation after rope_scaling, for a table of
// seq_len rows; only 'dynamic' depends on seq_len (transformers' _compute_dynamic_ntk_parameters
// with that seq_len: unscaled up to max_position_embeddings). docs/CONFIG.md has the formulas.
double rope_inv_freq_at(const ModelConfig *c, int dim, int i, int seq_len);
// The same at the configured length (max_position_embeddings).
double rope_inv_freq(const ModelConfig *c, int dim, int i);
// What cos and sin are multiplied by: YaRN's mscale ratio, 1 for the other types.
double rope_attention_factor(const ModelConfig *c);

#endif
