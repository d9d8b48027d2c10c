// train_cli.h — the command-line side of training shared by the training tools: the options of
// lib/train (schedules, accumulation, MTP and bias schedules, validation, checkpoints, metrics,
// precision, seed, threads, resume), the run record a resume must match, and the run itself with
// metrics written atomically and SIGINT/SIGTERM leading to a checkpoint.
#ifndef DS_TRAIN_CLI_H
#define DS_TRAIN_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <signal.h>

#include "math/precision.h"
#include "tool.h"
#include "train/train.h"

// Option ids of the shared options; a tool's own ids stay below this.
enum { TRAIN_CLI_FIRST_OPTION = OPT_FIRST_TOOL_OPTION + 500 };

typedef struct TrainCli {
    TrainOpts o;
    const char *sched, *metrics, *resume, *out;
    uint64_t seed;
    int threads;
    int steps_given;     // --steps was on the command line
    Precision prec;
} TrainCli;

void train_cli_init(TrainCli *tc); // the defaults of ds-pretrain
// The tool's options followed by the shared ones (malloc'd, terminated by a zero entry). Includes
// -o/--output.
struct option *train_cli_options(const struct option *tool);
// Handles one getopt_long result; 1 when it was a shared option (bad values exit 2), else 0.
int train_cli_option(const char *prog, TrainCli *tc, int c, const char *arg);
void train_cli_usage(void); // the shared options' help block, on stdout
// After parsing and after the tool has fixed o.steps: schedule kind, derived defaults, threads.
void train_cli_finish(const char *prog, TrainCli *tc);
// The options that make a run (a new object); the tool adds its inputs' hashes.
json_t *train_cli_record(const TrainCli *tc);
// DS_ERR naming the first key of record that differs from the checkpoint's recorded run.
int train_cli_check_resume(const json_t *record, const Checkpoint *ck, DsErr *e);

// Trains m (weights already set) from step 0, or from the optimizer state of `resume` when not
// NULL, writing checkpoints to tc->out and metrics to tc->metrics (atomically). *stopped is 1 when
// a signal or --stop-at ended the run early (the checkpoint then holds the step reached, *step).
int train_cli_run(TrainCli *tc, Model_f32 *m, const Checkpoint *resume, const char *tok_json,
                  size_t tok_len, json_t *record, volatile sig_atomic_t *stop, BatchFn train,
                  void *train_ctx, BatchFn val, void *val_ctx, int *stopped, long *step, DsErr *e);

#endif
