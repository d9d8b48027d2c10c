// objective.h — training objectives other than plain next-token cross-entropy, on the float model:
// per-token log-probabilities and their gradients (policy-gradient losses such as GRPO), and
// logit-level distillation KL(teacher ‖ student) at a temperature, mixed with cross-entropy.
#ifndef DS_OBJECTIVE_H
#define DS_OBJECTIVE_H

#include "nn/model.h"

// After model_forward: lp[n] = log p(targets[n]) under the main head (0 where targets[n] < 0) and,
// when ent is not NULL, the entropy of each valid position's distribution.
void obj_token_logprobs(Model_f32 *m, Acts_f32 *a, const int *targets, float *lp, float *ent);
// Sets the logits gradients from dL/dlp[n] (MTP heads and the balance loss get none), ready for
// model_backward. Call after obj_token_logprobs on the same forward.
void obj_set_dlogprobs(Model_f32 *m, Acts_f32 *a, const int *targets, const float *dlp);
// Distillation: loss = (1-alpha)·T²·KL(softmax(t/T) ‖ softmax(s/T)) + alpha·CE(targets), averaged
// over valid positions (targets >= 0); teacher[N,V] logits of the same tokens. Sets the logits
// gradients (scaled by grad_scale); returns the loss; *ce gets the cross-entropy part.
double obj_distill(Model_f32 *m, Acts_f32 *a, const float *teacher, const int *targets, double T,
                   double alpha, double grad_scale, double *ce);

#endif
