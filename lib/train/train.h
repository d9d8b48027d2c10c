// train.h — the training loop shared by ds-pretrain and ds-sft: gradient accumulation, AdamW with
// clipping and schedules, V3's MTP weight and auxiliary-loss-free bias schedules, validation,
// metrics as JSON lines, checkpoints, and exact resume.
#ifndef DS_TRAIN_H
#define DS_TRAIN_H

#include <jansson.h>
#include <signal.h>

#include "train/adamw.h"
#include "checkpoint/checkpoint.h"
#include "nn/model.h"
#include "train/schedule.h"
#include "data/shard.h"

// Fills one micro-batch for (step, micro): tokens, targets (-1 = ignored) and positions, each
// [B*T]. A source must be a pure function of (step, micro) so a resumed run sees the same data.
typedef int (*BatchFn)(void *ctx, long step, int micro, int *tokens, int *targets, int *pos, DsErr *e);

// A training objective replacing the default (cross-entropy + λ·MTP + balance loss): computes the
// loss of the forward just run and sets the logits gradients in a (scaled by grad_scale).
typedef int (*LossFn)(void *ctx, Model_f32 *m, Acts_f32 *a, const int *targets, double grad_scale,
                      ModelLossStats *st, DsErr *e);

typedef struct TrainOpts {
    int batch, seq_len, accum;      // sequences per micro-batch, tokens per sequence, micro-batches per step
    long steps;                     // total optimizer steps
    Schedule sched;
    double beta1, beta2, eps, weight_decay, clip;
    double mtp_lambda, mtp_lambda_late, mtp_switch;      // λ, λ after mtp_switch × steps
    double bias_gamma, bias_gamma_late, bias_switch;     // γ, γ after bias_switch × steps
    double balance_alpha;
    long eval_every, eval_batches;  // validation loss every N steps over M micro-batches (0 = never)
    long ckpt_every;                // checkpoint every N steps (0 = only at the end)
    const char *ckpt_path;          // checkpoint tar (written atomically, overwritten)
    double peak_gflops;             // GEMM ceiling for MFU
    FILE *metrics;                  // JSON lines, one per step (NULL = none)
    volatile sig_atomic_t *stop;    // set by a signal handler: checkpoint and return
    long stop_at;                   // behave as if signalled after this step (0 = never)
    const char *tokenizer_json;     // stored in checkpoints (may be NULL)
    size_t tokenizer_len;
    const TarMember *extra;         // more members stored in checkpoints (tokenizer_config.json)
    int nextra;
    json_t *record;                 // options and input hashes recorded in state.json (borrowed)
    LossFn loss;                    // NULL: the default objective
    void *loss_ctx;
    const char *label;              // the progress line's name on a terminal (NULL: "train")
} TrainOpts;

typedef struct Trainer {
    Model_f32 *model;
    Acts_f32 acts;
    AdamW opt;
    TrainOpts o;
    long step;                      // next step to run
    int *tokens, *targets, *pos;
} Trainer;

void trainer_init(Trainer *t, Model_f32 *m, const TrainOpts *o);
void trainer_free(Trainer *t);
// Continues from a checkpoint's optimizer state and step (weights are loaded by the caller).
int trainer_resume(Trainer *t, const Checkpoint *ck, DsErr *e);
// Runs steps [t->step, o.steps). Returns DS_OK when finished or stopped by a signal (after writing
// a checkpoint), DS_ERR on a data or I/O error. *stopped tells which.
int trainer_run(Trainer *t, BatchFn train, void *train_ctx, BatchFn val, void *val_ctx, int *stopped,
                DsErr *e);
int trainer_save(Trainer *t, DsErr *e);

// Pretraining data: random windows of seq_len+1 tokens from a dataset, chosen by (seed, step,
// micro, row); positions count from the window start.
typedef struct WindowSource {
    const Dataset *data;
    uint64_t seed;
    int batch, seq_len;
    int sequential;                 // validation: windows in order from the start, no randomness
    uint32_t *buf;
} WindowSource;
int window_batch(void *ctx, long step, int micro, int *tokens, int *targets, int *pos, DsErr *e);

// Measured single-precision GEMM throughput (GFLOP/s) on this machine with the current threads.
double gemm_ceiling_gflops(void);

#endif
