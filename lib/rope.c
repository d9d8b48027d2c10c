// rope.c — RoPE angle tables with YaRN (as in DeepSeek-V3's released inference code).
#include "rope.h"

#include <math.h>
#include <stdlib.h>

static double correction_dim(double rotations, int dim, double base, double max_pos) {
    return dim * log(max_pos / (rotations * 2 * M_PI)) / (2 * log(base));
}

double rope_inv_freq(const ModelConfig *c, int dim, int i) {
    double f = 1.0 / pow(c->rope_theta, (2.0 * i) / dim);
    if (c->yarn.factor > 1.0) {
        // Frequencies that rotate fewer than beta_slow times over the original context are
        // interpolated (divided by factor); more than beta_fast times are kept; a linear ramp between.
        double orig = c->yarn.original_max_position_embeddings;
        double low = floor(correction_dim(c->yarn.beta_fast, dim, c->rope_theta, orig));
        double high = ceil(correction_dim(c->yarn.beta_slow, dim, c->rope_theta, orig));
        low = fmax(low, 0), high = fmin(high, dim - 1);
        if (low == high) high += 0.001;
        double ramp = fmin(fmax((i - low) / (high - low), 0.0), 1.0);
        double smooth = 1.0 - ramp;
        f = f / c->yarn.factor * (1 - smooth) + f * smooth;
    }
    return f;
}

static double yarn_mscale(double factor, double m) {
    return factor <= 1.0 ? 1.0 : 0.1 * m * log(factor) + 1.0;
}

void rope_init(Rope *r, const ModelConfig *c, int max_pos) {
    int dim = c->arch == ARCH_DEEPSEEK_V3 ? c->qk_rope_head_dim : c->head_dim;
    r->dim = dim;
    r->max_pos = max_pos;
    r->interleaved = c->arch == ARCH_DEEPSEEK_V3;
    int half = dim / 2;
    r->cos = ds_malloc(sizeof(double) * (size_t)max_pos * (size_t)(half ? half : 1));
    r->sin = ds_malloc(sizeof(double) * (size_t)max_pos * (size_t)(half ? half : 1));
    double attn_factor = 1.0;
    if (c->yarn.factor > 1.0)
        attn_factor = yarn_mscale(c->yarn.factor, c->yarn.mscale) /
                      yarn_mscale(c->yarn.factor, c->yarn.mscale_all_dim > 0 ? c->yarn.mscale_all_dim : 0);
    for (int i = 0; i < half; i++) {
        double f = rope_inv_freq(c, dim, i);
        for (int p = 0; p < max_pos; p++) {
            r->cos[(size_t)p * half + i] = cos(p * f) * attn_factor;
            r->sin[(size_t)p * half + i] = sin(p * f) * attn_factor;
        }
    }
}

void rope_free(Rope *r) {
    free(r->cos);
    free(r->sin);
    r->cos = r->sin = NULL;
}
