// rope.c — RoPE angle tables: YaRN as in DeepSeek-V3's released inference code; llama3, linear
// and dynamic (NTK-aware) as transformers' modeling_rope_utils computes them.
#include "math/rope.h"

#include <math.h>
#include <stdlib.h>

static double correction_dim(double rotations, int dim, double base, double max_pos) {
    return dim * log(max_pos / (rotations * 2 * M_PI)) / (2 * log(base));
}

static double yarn(const ModelConfig *c, int dim, int i, double f) {
    // Frequencies that rotate fewer than beta_slow times over the original context are
    // interpolated (divided by factor); more than beta_fast times are kept; a linear ramp between.
    const struct RopeScaling *s = &c->rope_scaling;
    double orig = s->original_max_position_embeddings;
    double low = floor(correction_dim(s->beta_fast, dim, c->rope_theta, orig));
    double high = ceil(correction_dim(s->beta_slow, dim, c->rope_theta, orig));
    low = fmax(low, 0), high = fmin(high, dim - 1);
    if (low == high) high += 0.001;
    double ramp = fmin(fmax((i - low) / (high - low), 0.0), 1.0);
    double smooth = 1.0 - ramp;
    return f / s->factor * (1 - smooth) + f * smooth;
}

static double llama3(const ModelConfig *c, double f) {
    // Wavelengths longer than orig/low_freq_factor are interpolated, shorter than
    // orig/high_freq_factor kept, and those between blend the two by where orig/wavelen falls.
    const struct RopeScaling *s = &c->rope_scaling;
    double orig = s->original_max_position_embeddings;
    double low_wavelen = orig / s->low_freq_factor, high_wavelen = orig / s->high_freq_factor;
    double wavelen = 2 * M_PI / f;
    if (wavelen < high_wavelen) return f;
    if (wavelen > low_wavelen) return f / s->factor;
    double smooth = (orig / wavelen - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
    return (1 - smooth) * f / s->factor + smooth * f;
}

double rope_inv_freq_at(const ModelConfig *c, int dim, int i, int seq_len) {
    double base = c->rope_theta;
    const struct RopeScaling *s = &c->rope_scaling;
    if (s->type == ROPE_DYNAMIC) {
        // NTK-aware: a larger base for tables longer than the configured context.
        double L = DS_MAX(seq_len, c->max_position_embeddings), M = c->max_position_embeddings;
        base *= pow(s->factor * L / M - (s->factor - 1), (double)dim / (dim - 2));
    }
    double f = 1.0 / pow(base, (2.0 * i) / dim);
    switch (s->type) {
    case ROPE_YARN: return s->factor > 1.0 ? yarn(c, dim, i, f) : f;
    case ROPE_LLAMA3: return llama3(c, f);
    case ROPE_LINEAR: return f / s->factor;
    case ROPE_DYNAMIC:
    case ROPE_DEFAULT: break;
    }
    return f;
}

double rope_inv_freq(const ModelConfig *c, int dim, int i) {
    return rope_inv_freq_at(c, dim, i, c->max_position_embeddings);
}

static double yarn_mscale(double factor, double m) {
    return factor <= 1.0 ? 1.0 : 0.1 * m * log(factor) + 1.0;
}

double rope_attention_factor(const ModelConfig *c) {
    const struct RopeScaling *s = &c->rope_scaling;
    if (s->type != ROPE_YARN || s->factor <= 1.0) return 1.0;
    return yarn_mscale(s->factor, s->mscale) / yarn_mscale(s->factor, s->mscale_all_dim);
}

void rope_init(Rope *r, const ModelConfig *c, int max_pos) {
    int dim = config_rope_dim(c);
    r->dim = dim;
    r->max_pos = max_pos;
    r->interleaved = c->arch == ARCH_DEEPSEEK_V3;
    int half = dim / 2;
    r->cos = ds_malloc(sizeof(double) * (size_t)max_pos * (size_t)(half ? half : 1));
    r->sin = ds_malloc(sizeof(double) * (size_t)max_pos * (size_t)(half ? half : 1));
    double attn_factor = rope_attention_factor(c);
    for (int i = 0; i < half; i++) {
        double f = rope_inv_freq_at(c, dim, i, max_pos);
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
