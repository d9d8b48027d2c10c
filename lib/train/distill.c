// distill.c — rejection sampling's keep rule and the logit-level distillation objective.
#include "train/distill.h"

#include <stdlib.h>
#include <string.h>

#include "train/objective.h"

int distill_keep(const GradeResult *g, double format, DistillKeep mode, int require_format) {
    if (mode == DISTILL_KEEP_ALL) return 1;
    return g->correct && (!require_format || format == 1.0);
}

void distill_logits_init(DistillLogits *d, Model_f32 *teacher, int batch, int seq_len, double temperature,
                         double alpha) {
    memset(d, 0, sizeof *d);
    d->teacher = teacher;
    d->temperature = temperature, d->alpha = alpha;
    acts_init_forward_f32(&d->acts, teacher, batch, seq_len);
}

void distill_logits_free(DistillLogits *d) { acts_free_f32(&d->acts); }

int distill_logit_loss(void *ctx, Model_f32 *m, Acts_f32 *a, const int *targets, double grad_scale,
                       ModelLossStats *st, DsErr *e) {
    DistillLogits *d = ctx;
    (void)e;
    // The teacher sees exactly the student's tokens and document positions.
    model_forward_f32(d->teacher, &d->acts, a->tokens, a->pos, a->B, a->T);
    double ce;
    memset(st, 0, sizeof *st);
    st->loss = obj_distill(m, a, d->acts.logits, targets, d->temperature, d->alpha, grad_scale, &ce);
    for (int n = 0; n < a->N; n++) st->ntokens += targets[n] >= 0;
    return DS_OK;
}

int distill_check_tokenizers(const Tokenizer *teacher, const Tokenizer *student, int teacher_vocab,
                             int student_vocab, DsErr *e) {
    if (!teacher || !student) return ds_errf(e, "teacher and student both need a tokenizer.json");
    char a[65], b[65];
    tok_hash(teacher, a), tok_hash(student, b);
    if (strcmp(a, b))
        return ds_errf(e, "teacher and student tokenizers differ (sha256 %.12s… vs %.12s…)", a, b);
    if (teacher_vocab != student_vocab)
        return ds_errf(e, "teacher vocab_size %d differs from the student's %d", teacher_vocab, student_vocab);
    return DS_OK;
}
