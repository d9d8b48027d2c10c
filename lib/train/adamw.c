// adamw.c — AdamW (decoupled weight decay) with bias correction, one flat loop per tensor.
#include "train/adamw.h"

#include <math.h>
#include <stdlib.h>

#include "nn/ops.h"

void adamw_init(AdamW *o, size_t n, double beta1, double beta2, double eps, double weight_decay) {
    o->beta1 = beta1, o->beta2 = beta2, o->eps = eps, o->weight_decay = weight_decay;
    o->m = ds_aligned_alloc(sizeof(float) * n);
    o->v = ds_aligned_alloc(sizeof(float) * n);
    o->n = n;
    o->t = 0;
}

void adamw_free(AdamW *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

double grad_global_norm(const ModelLayout *L, const float *grads) {
    double s = 0;
    for (int i = 0; i < L->np; i++) {
        const ParamInfo *p = &L->p[i];
        if (p->flags & PARAM_FROZEN) continue;
        s = sumsq_acc_f32(s, grads + p->offset, p->numel);
    }
    return sqrt(s);
}

void adamw_step(AdamW *o, const ModelLayout *L, float *params, const float *grads, double lr,
                double clip_scale) {
    o->t++;
    // c1, c2 and the decay rounded to float as the update uses them
    double c1 = (float)(1.0 / (1.0 - pow(o->beta1, (double)o->t)));
    double c2 = (float)(1.0 / (1.0 - pow(o->beta2, (double)o->t)));
    for (int i = 0; i < L->np; i++) {
        const ParamInfo *p = &L->p[i];
        if (p->flags & PARAM_FROZEN) continue;
        double wd = (p->flags & PARAM_DECAY) ? (float)(lr * o->weight_decay) : 0.0;
        adamw_update_f32(params + p->offset, o->m + p->offset, o->v + p->offset, grads + p->offset,
                         p->numel, lr, o->beta1, o->beta2, c1, c2, o->eps, wd, clip_scale);
    }
}
