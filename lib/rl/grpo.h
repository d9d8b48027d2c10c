// grpo.h — the GRPO trainer (R1-Zero style RL): each step samples a group of completions per
// prompt with the engine, scores them with the graders, computes group-normalised advantages and
// updates the policy with the clipped objective and the k3 KL penalty against a frozen reference.
#ifndef DS_GRPO_H
#define DS_GRPO_H

#include <jansson.h>
#include <signal.h>

#include "train/adamw.h"
#include "checkpoint/checkpoint.h"
#include "eval/grade.h"
#include "rl/rollout.h"
#include "rl/grpo_loss.h"
#include "nn/model.h"
#include "infer/sample.h"
#include "eval/task.h"
#include "text/tokenizer.h"

typedef enum { OVERLONG_KEEP, OVERLONG_ZERO, OVERLONG_MASK } Overlong;

typedef struct GrpoOpts {
    int prompts_per_step, group_size, max_tokens, max_prompt; // rollout shape
    SampleParams sp;                  // rollout sampling (temperature 1 in R1-Zero)
    int inner_epochs;                 // μ: updates per rollout batch (ratio against π_old)
    double epsilon, beta;             // clip range; KL weight (0: no reference model)
    GrpoAgg agg;
    int adv_norm;                     // divide advantages by the group's std
    long ref_refresh;                 // copy the policy into the reference every N steps (0 = never)
    double w_acc, w_format, w_lang;   // reward = w_acc·task score + w_format·format + w_lang·lang
    GradeOpts grade;
    Overlong overlong;                // responses cut at max_tokens: keep, reward 0, or leave out
    PromptTemplate tmpl;
    double lr, beta1, beta2, weight_decay, clip;
    long warmup, steps;
    int micro_batch;                  // sequences per training forward
    int slots;                        // sequences decoded together during rollouts
    uint64_t seed;
    long eval_every;                  // held-out pass@1 every N steps (0 = never)
    int eval_samples;                 // samples per held-out problem
    double eval_temperature;
    const uint32_t *eos;              // end-of-sequence tokens (trained on when sampled)
    int n_eos;
    FILE *metrics;
    const char *ckpt_path;
    long ckpt_every;
    volatile sig_atomic_t *stop;
    long stop_at;
    json_t *record;                   // options and input hashes for state.json (borrowed)
    const TarMember *carry;           // the base model's small files, saved with every checkpoint
    int ncarry;
} GrpoOpts;

typedef struct GrpoProblems {
    Problem **p;
    uint32_t **ids;                   // prompt tokens (template applied)
    int *len;
    int n;
} GrpoProblems;

// Reads a JSONL problems file; each line names its grader in "task" (or default_task when given).
// Prompts are rollout_prompt's under tmpl; a problem that does not render is named with its line.
int grpo_problems_load(GrpoProblems *ps, const char *path, const char *default_task,
                       const Tokenizer *tok, RolloutTemplate tmpl, DsErr *e);
void grpo_problems_free(GrpoProblems *ps);

typedef struct GrpoRun GrpoRun;
// policy: the model to train (its params are updated in place). The reference starts as a copy.
GrpoRun *grpo_new(Model_f32 *policy, const Tokenizer *tok, const char *tokenizer_json, size_t tok_len,
                  const GrpoOpts *o, DsErr *e);
void grpo_free(GrpoRun *g);
// Continues from a checkpoint written by grpo_run (optimizer, step, reference weights).
int grpo_resume(GrpoRun *g, const Checkpoint *ck, DsErr *e);
int grpo_run(GrpoRun *g, const GrpoProblems *train, const GrpoProblems *eval, int *stopped, DsErr *e);
long grpo_step(const GrpoRun *g);

#endif
