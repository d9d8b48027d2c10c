// rope.h — rotary position embedding tables (with optional YaRN frequency scaling), shared by both
// precisions: the angles are computed once in double.
#ifndef DS_ROPE_H
#define DS_ROPE_H

#include "config.h"

typedef struct Rope {
    int dim;         // rotated width (qk_rope_head_dim or head_dim), even
    int max_pos;     // table rows
    int interleaved; // 1: pairs (x[2i], x[2i+1]) as DeepSeek's code; 0: rotate-half (x[i], x[i+dim/2]) as llama
    double *cos, *sin; // [max_pos][dim/2], already multiplied by YaRN's attention factor
} Rope;

void rope_init(Rope *r, const ModelConfig *c, int max_pos);
void rope_free(Rope *r);
// The inverse frequency of pair i (after YaRN), for tests.
double rope_inv_freq(const ModelConfig *c, int dim, int i);

#endif
