// distill.h — distillation (R1 §2.4): rejection sampling's keep rule for sequence-level data, the
// logit-level objective (a teacher forward on each micro-batch, KL(teacher ‖ student) at a
// temperature mixed with cross-entropy), and the tokenizer check between teacher and student.
#ifndef DS_DISTILL_H
#define DS_DISTILL_H

#include "eval/grade.h"
#include "nn/model.h"
#include "text/tokenizer.h"

// Rejection sampling: which graded samples become training data. KEEP_CORRECT keeps a sample the
// task grades correct and, with require_format, that is also in the R1 form (grade_format = 1).
typedef enum { DISTILL_KEEP_CORRECT, DISTILL_KEEP_ALL } DistillKeep;
int distill_keep(const GradeResult *g, double format, DistillKeep mode, int require_format);

// The logit-level objective: a LossFn (train.h) with this as its context.
typedef struct DistillLogits {
    Model_f32 *teacher;
    Acts_f32 acts;        // the teacher's, sized like the student's micro-batch
    double temperature, alpha;
    double last_kl;       // mean KL(teacher ‖ student) at the temperature of the last micro-batch
} DistillLogits;

void distill_logits_init(DistillLogits *d, Model_f32 *teacher, int batch, int seq_len, double temperature,
                         double alpha);
void distill_logits_free(DistillLogits *d);
int distill_logit_loss(void *ctx, Model_f32 *m, Acts_f32 *a, const int *targets, double grad_scale,
                       ModelLossStats *st, DsErr *e);

// Teacher and student must tokenize alike: the same tokenizer hash and vocabulary size.
int distill_check_tokenizers(const Tokenizer *teacher, const Tokenizer *student, int teacher_vocab,
                             int student_vocab, DsErr *e);

#endif
