// adamw.h — AdamW over the flat parameter layout, with global-norm gradient clipping.
#ifndef DS_ADAMW_H
#define DS_ADAMW_H

#include "checkpoint/layout.h"

typedef struct AdamW {
    double beta1, beta2, eps, weight_decay;
    float *m, *v;  // first and second moments, same layout as the parameters
    size_t n;
    long t;        // steps taken (bias correction)
} AdamW;

void adamw_init(AdamW *o, size_t n, double beta1, double beta2, double eps, double weight_decay);
void adamw_free(AdamW *o);
// Global L2 norm of the trainable gradients (frozen tensors excluded).
double grad_global_norm(const ModelLayout *L, const float *grads);
// One step: gradients scaled by clip_scale (min(1, max_norm / norm)); decay only on PARAM_DECAY
// tensors; PARAM_FROZEN tensors untouched.
void adamw_step(AdamW *o, const ModelLayout *L, float *params, const float *grads, double lr,
                double clip_scale);

#endif
