// objective.c — per-token log-probability objectives and logit distillation.
#include "train/objective.h"

#include <math.h>
#include <string.h>

#include "nn/ops.h"

static void clear_aux(Model_f32 *m, Acts_f32 *a) {
    size_t NV = (size_t)a->N * m->L.cfg.vocab_size;
    for (int k = 0; k < m->L.nmtp; k++) m->be->zero(a->mtp[k].dlogits, sizeof(float) * NV);
    a->balance_alpha = 0;
}

void obj_token_logprobs(Model_f32 *m, Acts_f32 *a, const int *targets, float *lp, float *ent) {
    int V = m->L.cfg.vocab_size;
    logprob_forward_f32(lp, a->lse, a->logits, targets, a->N, V);
    if (ent) entropy_forward_f32(ent, a->logits, a->lse, targets, a->N, V);
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
    double ce_sum, w = nvalid ? grad_scale / nvalid : 0;
    double kl_sum = distill_forward_backward_f32(a->dlogits, &ce_sum, a->logits, teacher, targets, N,
                                                 V, T, alpha, w);
    clear_aux(m, a);
    *ce = nvalid ? ce_sum / nvalid : 0;
    return nvalid ? ((1 - alpha) * kl_sum + alpha * ce_sum) / nvalid : 0;
}
