// adamw.c — AdamW (decoupled weight decay) with bias correction, one flat loop per tensor.
#include "adamw.h"

#include <math.h>
#include <stdlib.h>

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
        const float *g = grads + p->offset;
        for (size_t j = 0; j < p->numel; j++) s += (double)g[j] * g[j];
    }
    return sqrt(s);
}

void adamw_step(AdamW *o, const ModelLayout *L, float *params, const float *grads, double lr,
                double clip_scale) {
    o->t++;
    float b1 = (float)o->beta1, b2 = (float)o->beta2, cs = (float)clip_scale;
    float c1 = (float)(1.0 / (1.0 - pow(o->beta1, (double)o->t)));
    float c2 = (float)(1.0 / (1.0 - pow(o->beta2, (double)o->t)));
    float eps = (float)o->eps, flr = (float)lr;
    for (int i = 0; i < L->np; i++) {
        const ParamInfo *p = &L->p[i];
        if (p->flags & PARAM_FROZEN) continue;
        float wd = (p->flags & PARAM_DECAY) ? (float)(lr * o->weight_decay) : 0.0f;
        float *w = params + p->offset, *m = o->m + p->offset, *v = o->v + p->offset;
        const float *g = grads + p->offset;
        for (size_t j = 0; j < p->numel; j++) {
            float gj = g[j] * cs;
            m[j] = b1 * m[j] + (1 - b1) * gj;
            v[j] = b2 * v[j] + (1 - b2) * gj * gj;
            w[j] -= flr * (m[j] * c1) / (sqrtf(v[j] * c2) + eps) + wd * w[j];
        }
    }
}
