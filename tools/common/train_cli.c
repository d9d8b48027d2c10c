// train_cli.c — the training options, run record and run shared by the training tools.
#include "train_cli.h"

#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"

enum {
    O_SEQ = TRAIN_CLI_FIRST_OPTION, O_BATCH, O_ACCUM, O_STEPS, O_LR, O_MINLR, O_WARMUP, O_SCHED,
    O_DECAYF, O_WD, O_CLIP, O_MTPL, O_MTPL2, O_MTPS, O_BG, O_BG2, O_BS, O_ALPHA, O_EVAL, O_EVALB,
    O_CKPTE, O_METRICS, O_SEED, O_THREADS, O_PEAK, O_RESUME, O_STOPAT, O_PREC
};

static const struct option SHARED[] = {
    {"seq-len", 1, 0, O_SEQ}, {"batch", 1, 0, O_BATCH}, {"accum", 1, 0, O_ACCUM}, {"steps", 1, 0, O_STEPS},
    {"lr", 1, 0, O_LR}, {"min-lr", 1, 0, O_MINLR}, {"warmup", 1, 0, O_WARMUP}, {"schedule", 1, 0, O_SCHED},
    {"decay-frac", 1, 0, O_DECAYF}, {"weight-decay", 1, 0, O_WD}, {"clip", 1, 0, O_CLIP},
    {"mtp-lambda", 1, 0, O_MTPL}, {"mtp-lambda-late", 1, 0, O_MTPL2}, {"mtp-switch", 1, 0, O_MTPS},
    {"bias-gamma", 1, 0, O_BG}, {"bias-gamma-late", 1, 0, O_BG2}, {"bias-switch", 1, 0, O_BS},
    {"balance-alpha", 1, 0, O_ALPHA}, {"eval-every", 1, 0, O_EVAL}, {"eval-batches", 1, 0, O_EVALB},
    {"ckpt-every", 1, 0, O_CKPTE}, {"metrics", 1, 0, O_METRICS}, {"seed", 1, 0, O_SEED},
    {"threads", 1, 0, O_THREADS}, {"peak-gflops", 1, 0, O_PEAK}, {"resume", 1, 0, O_RESUME},
    {"stop-at", 1, 0, O_STOPAT}, {"precision", 1, 0, O_PREC}, {"output", 1, 0, 'o'}};

void train_cli_init(TrainCli *tc) {
    memset(tc, 0, sizeof *tc);
    tc->o = (TrainOpts){.batch = 8, .seq_len = 256, .accum = 1, .steps = 1000, .beta1 = 0.9, .beta2 = 0.95,
                        .eps = 1e-8, .weight_decay = 0.1, .clip = 1.0, .mtp_lambda = 0.3,
                        .mtp_lambda_late = 0.1, .mtp_switch = 0.7, .bias_gamma = 0.001,
                        .bias_gamma_late = 0, .bias_switch = 0.95, .balance_alpha = 1e-4,
                        .eval_every = 100, .eval_batches = 8};
    tc->o.sched.lr = 3e-3, tc->o.sched.min_lr = -1, tc->o.sched.warmup = -1, tc->o.sched.decay_frac = 0.2;
    tc->sched = "cosine", tc->metrics = "-";
    tc->seed = 1234;
    tc->prec = PRECISION_FP32;
}

struct option *train_cli_options(const struct option *tool) {
    size_t nt = 0, ns = DS_ARRAY_LEN(SHARED);
    while (tool[nt].name) nt++;
    struct option *all = ds_calloc(nt + ns + 1, sizeof *all);
    memcpy(all, tool, sizeof *all * nt);
    memcpy(all + nt, SHARED, sizeof *all * ns);
    return all;
}

int train_cli_option(const char *prog, TrainCli *tc, int c, const char *arg) {
    TrainOpts *o = &tc->o;
    DsErr e;
    switch (c) {
    case 'o': tc->out = arg; break;
    case O_SEQ: o->seq_len = (int)cli_long(prog, "--seq-len", arg, 2, 1 << 20); break;
    case O_BATCH: o->batch = (int)cli_long(prog, "--batch", arg, 1, 1 << 20); break;
    case O_ACCUM: o->accum = (int)cli_long(prog, "--accum", arg, 1, 1 << 20); break;
    case O_STEPS: o->steps = cli_long(prog, "--steps", arg, 1, 1L << 40), tc->steps_given = 1; break;
    case O_LR: o->sched.lr = cli_double(prog, "--lr", arg, 0, 10); break;
    case O_MINLR: o->sched.min_lr = cli_double(prog, "--min-lr", arg, 0, 10); break;
    case O_WARMUP: o->sched.warmup = cli_long(prog, "--warmup", arg, 0, 1L << 40); break;
    case O_SCHED: tc->sched = arg; break;
    case O_DECAYF: o->sched.decay_frac = cli_double(prog, "--decay-frac", arg, 0, 1); break;
    case O_WD: o->weight_decay = cli_double(prog, "--weight-decay", arg, 0, 10); break;
    case O_CLIP: o->clip = cli_double(prog, "--clip", arg, 0, 1e9); break;
    case O_MTPL: o->mtp_lambda = cli_double(prog, "--mtp-lambda", arg, 0, 100); break;
    case O_MTPL2: o->mtp_lambda_late = cli_double(prog, "--mtp-lambda-late", arg, 0, 100); break;
    case O_MTPS: o->mtp_switch = cli_double(prog, "--mtp-switch", arg, 0, 1); break;
    case O_BG: o->bias_gamma = cli_double(prog, "--bias-gamma", arg, 0, 10); break;
    case O_BG2: o->bias_gamma_late = cli_double(prog, "--bias-gamma-late", arg, 0, 10); break;
    case O_BS: o->bias_switch = cli_double(prog, "--bias-switch", arg, 0, 1); break;
    case O_ALPHA: o->balance_alpha = cli_double(prog, "--balance-alpha", arg, 0, 100); break;
    case O_EVAL: o->eval_every = cli_long(prog, "--eval-every", arg, 0, 1L << 40); break;
    case O_EVALB: o->eval_batches = cli_long(prog, "--eval-batches", arg, 1, 1 << 20); break;
    case O_CKPTE: o->ckpt_every = cli_long(prog, "--ckpt-every", arg, 0, 1L << 40); break;
    case O_METRICS: tc->metrics = arg; break;
    case O_SEED: tc->seed = cli_u64(prog, "--seed", arg); break;
    case O_THREADS: tc->threads = (int)cli_long(prog, "--threads", arg, 1, 1024); break;
    case O_PEAK: o->peak_gflops = cli_double(prog, "--peak-gflops", arg, 0, 1e9); break;
    case O_RESUME: tc->resume = arg; break;
    case O_STOPAT: o->stop_at = cli_long(prog, "--stop-at", arg, 1, 1L << 40); break;
    case O_PREC:
        if (precision_parse(arg, &tc->prec, &e)) cli_usage_error(prog, "--precision: %s", e.msg);
        break;
    default: return 0;
    }
    return 1;
}

void train_cli_usage(void) {
    printf("Training options (defaults in brackets):\n"
           "  -o CKPT.tar          checkpoint written at the end (and every --ckpt-every steps)\n"
           "  --seq-len N [256]  --batch N [8]  --accum N [1]  --steps N [1000]\n"
           "  --lr X [3e-3]  --min-lr X [lr/10]  --warmup N [steps/20]  --schedule cosine|wsd|constant [cosine]\n"
           "  --decay-frac X [0.2] (wsd)  --weight-decay X [0.1]  --clip X [1.0]\n"
           "  --mtp-lambda X [0.3]  --mtp-lambda-late X [0.1]  --mtp-switch F [0.7]   MTP weight λ schedule\n"
           "  --bias-gamma X [0.001]  --bias-gamma-late X [0]  --bias-switch F [0.95] bias update speed γ\n"
           "  --balance-alpha X [0.0001]  sequence-wise balance loss weight α\n"
           "  --eval-every N [100]  --eval-batches N [8]  --ckpt-every N [0: end only]\n"
           "  --metrics FILE [-]   per-step JSON lines\n"
           "  --precision fp32|bf16|fp8 [fp32]  GEMM inputs of the Linear layers (FP32 accumulation)\n"
           "  --seed N [1234]  --threads N [all cores]  --peak-gflops X [measured]\n"
           "  --resume CKPT.tar  --stop-at N\n"
           "SIGINT/SIGTERM write a checkpoint and exit 0 (--stop-at N: the same after step N);\n"
           "--resume continues bit-identically (same options and threads).\n");
}

void train_cli_finish(const char *prog, TrainCli *tc) {
    TrainOpts *o = &tc->o;
    o->label = prog; // the progress line on a terminal
    if (!tc->out) cli_usage_error(prog, "train: -o CKPT.tar is required");
    if (schedule_parse(tc->sched, &o->sched.kind)) cli_usage_error(prog, "--schedule: unknown '%s'", tc->sched);
    if (o->sched.min_lr < 0) o->sched.min_lr = o->sched.lr / 10;
    if (o->sched.warmup < 0) o->sched.warmup = o->steps / 20;
    o->sched.total = o->steps;
    tc->threads = cli_set_threads(tc->threads);
}

json_t *train_cli_record(const TrainCli *tc) {
    const TrainOpts *o = &tc->o;
    json_t *r = json_pack(
        "{s:I,s:i,s:i,s:i,s:I,s:s,s:f,s:f,s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:i,s:s}",
        "seed", (json_int_t)tc->seed, "batch", o->batch, "seq_len", o->seq_len, "accum", o->accum,
        "steps", (json_int_t)o->steps, "schedule", tc->sched, "lr", o->sched.lr, "min_lr", o->sched.min_lr,
        "warmup", (json_int_t)o->sched.warmup, "decay_frac", o->sched.decay_frac, "weight_decay", o->weight_decay,
        "clip", o->clip, "mtp_lambda", o->mtp_lambda, "mtp_lambda_late", o->mtp_lambda_late,
        "mtp_switch", o->mtp_switch, "bias_gamma", o->bias_gamma, "bias_gamma_late", o->bias_gamma_late,
        "bias_switch", o->bias_switch, "balance_alpha", o->balance_alpha, "threads", tc->threads,
        "precision", precision_name(tc->prec));
    DS_CHECK(r != NULL);
    return r;
}

int train_cli_check_resume(const json_t *record, const Checkpoint *ck, DsErr *e) {
    json_t *prev = json_object_get(ck->state, "run");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)record, key, v) {
        if (!json_equal(v, json_object_get(prev, key)))
            return ds_errf(e, "%s: cannot resume exactly: '%s' differs from the interrupted run", ck->path, key);
    }
    return DS_OK;
}

int train_cli_run(TrainCli *tc, Model_f32 *m, const Checkpoint *resume, const char *tok_json,
                  size_t tok_len, json_t *record, volatile sig_atomic_t *stop, BatchFn train,
                  void *train_ctx, BatchFn val, void *val_ctx, int *stopped, long *step, DsErr *e) {
    TrainOpts o = tc->o;
    AtomicFile mf = {0};
    if (atomic_open(&mf, tc->metrics, e)) return DS_ERR;
    o.metrics = mf.f;
    o.stop = stop;
    o.ckpt_path = tc->out;
    o.tokenizer_json = tok_json, o.tokenizer_len = tok_len;
    o.record = record;
    if (o.peak_gflops == 0) o.peak_gflops = gemm_ceiling_gflops();
    m->precision = tc->prec; // before the activations are sized: they hold the mode's scratch
    Trainer t;
    trainer_init(&t, m, &o);
    int rc = resume ? trainer_resume(&t, resume, e) : DS_OK;
    *stopped = 0;
    if (rc == DS_OK) rc = trainer_run(&t, train, train_ctx, val, val_ctx, stopped, e);
    if (rc == DS_OK) rc = atomic_commit(&mf, e);
    if (rc) atomic_abort(&mf);
    *step = t.step;
    trainer_free(&t);
    return rc;
}
