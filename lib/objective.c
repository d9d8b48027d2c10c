// objective.c — per-token log-probability objectives and logit distillation.
#include "objective.h"

#include <math.h>
#include <string.h>

#include "nn/ops.h"

static void clear_aux(Model_f32 *m, Acts_f32 *a) {
    size_t NV = (size_t)a->N * m->L.cfg.vocab_size;
    for (int k = 0; k < m->L.nmtp; k++) memset(a->mtp[k].dlogits, 0, sizeof(float) * NV);
    a->balance_alpha = 0;
}

void obj_token_logprobs(Model_f32 *m, Acts_f32 *a, const int *targets, float *lp, float *ent) {
    int V = m->L.cfg.vocab_size;
    logprob_forward_f32(lp, a->lse, a->logits, targets, a->N, V);
    if (!ent) return;
    for (int n = 0; n < a->N; n++) {
        ent[n] = 0;
        if (targets[n] < 0) continue;
        const float *x = a->logits + (size_t)n * V;
        double h = 0;
        for (int i = 0; i < V; i++) {
            double l = (double)x[i] - a->lse[n];
            h -= exp(l) * l;
        }
        ent[n] = (float)h;
    }
}

void obj_set_dlogprobs(Model_f32 *m, Acts_f32 *a, const int *targets, const float *dlp) {
    logprob_backward_f32(a->dlogits, dlp, a->logits, a->lse, targets, a->N, m->L.cfg.vocab_size);
    clear_aux(m, a);
}

double obj_distill(Model_f32 *m, Acts_f32 *a, const float *teacher, const int *targets, double T,
                   double alpha, double grad_scale, double *ce) {
    int N = a->N, V = m->L.cfg.vocab_size;
    long nvalid = 0;
    for (int n = 0; n < N; n++) nvalid += targets[n] >= 0;
    double kl_sum = 0, ce_sum = 0, w = nvalid ? grad_scale / nvalid : 0;
    for (int n = 0; n < N; n++) {
        float *d = a->dlogits + (size_t)n * V;
        memset(d, 0, sizeof(float) * V);
        if (targets[n] < 0) continue;
        const float *s = a->logits + (size_t)n * V, *t = teacher + (size_t)n * V;
        double ms = s[0], mt = t[0], zs = 0, zt = 0, zs1 = 0;
        for (int i = 1; i < V; i++) ms = fmax(ms, s[i]), mt = fmax(mt, t[i]);
        for (int i = 0; i < V; i++) {
            zs += exp((s[i] - ms) / T), zt += exp((t[i] - mt) / T);
            zs1 += exp(s[i] - ms);
        }
        double lzs = log(zs), lzt = log(zt), lzs1 = log(zs1), kl = 0;
        for (int i = 0; i < V; i++) {
            double lq = (s[i] - ms) / T - lzs, lp = (t[i] - mt) / T - lzt, p = exp(lp), q = exp(lq);
            kl += p * (lp - lq);
            // d/ds_i of T²·KL = T·(q_i − p_i); of CE = softmax_i − onehot
            double dce = exp(s[i] - ms - lzs1) - (i == targets[n]);
            d[i] = (float)(w * ((1 - alpha) * T * (q - p) + alpha * dce));
        }
        kl_sum += T * T * kl;
        ce_sum += -((s[targets[n]] - ms) - lzs1);
    }
    clear_aux(m, a);
    *ce = nvalid ? ce_sum / nvalid : 0;
    return nvalid ? ((1 - alpha) * kl_sum + alpha * ce_sum) / nvalid : 0;
}
