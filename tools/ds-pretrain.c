// ds-pretrain — train a DeepSeek-V3 (or llama/qwen2) model from scratch on token shards; export
// and import checkpoints as Hugging Face folders.
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"
#include "atomic_file.h"
#include "jsonl.h"
#include "precision.h"
#include "sha256.h"
#include "train.h"

static const char *PROG = "ds-pretrain";

static void usage(void) {
    printf("Usage: ds-pretrain train --config CONFIG.json --data SHARDS -o CKPT.tar [options]\n"
           "       ds-pretrain train --resume CKPT.tar --data SHARDS -o CKPT.tar [same options]\n"
           "       ds-pretrain export CKPT.tar DIR     config.json + model.safetensors + tokenizer.json\n"
           "       ds-pretrain import DIR -o CKPT.tar\n"
           "       ds-pretrain info CONFIG.json|CKPT    parameter counts (total, active per token)\n"
           "\n"
           "Training options (defaults in brackets):\n"
           "  --data SPEC          training shards: a file, a folder or a glob\n"
           "  --val SPEC           held-out shards for validation loss\n"
           "  --tokenizer FILE     tokenizer.json stored in the checkpoint (must match the shards')\n"
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
           "SIGINT/SIGTERM write a checkpoint and exit 0 (--stop-at N: the same after step N);\n"
           "--resume continues bit-identically (same options and threads).\n");
}

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

enum {
    O_CONFIG = OPT_FIRST_TOOL_OPTION, O_DATA, O_VAL, O_TOK, O_SEQ, O_BATCH, O_ACCUM, O_STEPS, O_LR,
    O_MINLR, O_WARMUP, O_SCHED, O_DECAYF, O_WD, O_CLIP, O_MTPL, O_MTPL2, O_MTPS, O_BG, O_BG2, O_BS,
    O_ALPHA, O_EVAL, O_EVALB, O_CKPTE, O_METRICS, O_SEED, O_THREADS, O_PEAK, O_RESUME, O_STOPAT, O_PREC
};

static json_t *load_tokenizer(const char *path, char **text, size_t *len) {
    DsErr e;
    if (ds_read_file(path, text, len, &e)) cli_fail_err(PROG, &e);
    char hex[65];
    return json_string(sha256_hex(*text, *len, hex));
}

static int cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"help", 0, 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION}, {"config", 1, 0, O_CONFIG},
        {"data", 1, 0, O_DATA}, {"val", 1, 0, O_VAL}, {"tokenizer", 1, 0, O_TOK}, {"seq-len", 1, 0, O_SEQ},
        {"batch", 1, 0, O_BATCH}, {"accum", 1, 0, O_ACCUM}, {"steps", 1, 0, O_STEPS}, {"lr", 1, 0, O_LR},
        {"min-lr", 1, 0, O_MINLR}, {"warmup", 1, 0, O_WARMUP}, {"schedule", 1, 0, O_SCHED},
        {"decay-frac", 1, 0, O_DECAYF}, {"weight-decay", 1, 0, O_WD}, {"clip", 1, 0, O_CLIP},
        {"mtp-lambda", 1, 0, O_MTPL}, {"mtp-lambda-late", 1, 0, O_MTPL2}, {"mtp-switch", 1, 0, O_MTPS},
        {"bias-gamma", 1, 0, O_BG}, {"bias-gamma-late", 1, 0, O_BG2}, {"bias-switch", 1, 0, O_BS},
        {"balance-alpha", 1, 0, O_ALPHA}, {"eval-every", 1, 0, O_EVAL}, {"eval-batches", 1, 0, O_EVALB},
        {"ckpt-every", 1, 0, O_CKPTE}, {"metrics", 1, 0, O_METRICS}, {"seed", 1, 0, O_SEED},
        {"threads", 1, 0, O_THREADS}, {"peak-gflops", 1, 0, O_PEAK}, {"resume", 1, 0, O_RESUME}, {"stop-at", 1, 0, O_STOPAT},
        {"precision", 1, 0, O_PREC},
        {"output", 1, 0, 'o'}, {0, 0, 0, 0}};
    const char *config = NULL, *data = NULL, *val = NULL, *tok = NULL, *out = NULL, *metrics = "-";
    const char *resume = NULL, *sched = "cosine";
    TrainOpts o = {.batch = 8, .seq_len = 256, .accum = 1, .steps = 1000, .beta1 = 0.9, .beta2 = 0.95,
                   .eps = 1e-8, .weight_decay = 0.1, .clip = 1.0, .mtp_lambda = 0.3, .mtp_lambda_late = 0.1,
                   .mtp_switch = 0.7, .bias_gamma = 0.001, .bias_gamma_late = 0, .bias_switch = 0.95,
                   .balance_alpha = 1e-4, .eval_every = 100, .eval_batches = 8};
    o.sched.lr = 3e-3, o.sched.min_lr = -1, o.sched.warmup = -1, o.sched.decay_frac = 0.2;
    uint64_t seed = 1234;
    Precision prec = PRECISION_FP32;
    int threads = 0, c;
    DsErr e;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: usage(); return EXIT_OK;
        case OPT_VERSION: cli_print_version(PROG); return EXIT_OK;
        case O_CONFIG: config = optarg; break;
        case O_DATA: data = optarg; break;
        case O_VAL: val = optarg; break;
        case O_TOK: tok = optarg; break;
        case 'o': out = optarg; break;
        case O_SEQ: o.seq_len = (int)cli_long(PROG, "--seq-len", optarg, 1, 1 << 20); break;
        case O_BATCH: o.batch = (int)cli_long(PROG, "--batch", optarg, 1, 1 << 20); break;
        case O_ACCUM: o.accum = (int)cli_long(PROG, "--accum", optarg, 1, 1 << 20); break;
        case O_STEPS: o.steps = cli_long(PROG, "--steps", optarg, 1, 1L << 40); break;
        case O_LR: o.sched.lr = cli_double(PROG, "--lr", optarg, 0, 10); break;
        case O_MINLR: o.sched.min_lr = cli_double(PROG, "--min-lr", optarg, 0, 10); break;
        case O_WARMUP: o.sched.warmup = cli_long(PROG, "--warmup", optarg, 0, 1L << 40); break;
        case O_SCHED: sched = optarg; break;
        case O_DECAYF: o.sched.decay_frac = cli_double(PROG, "--decay-frac", optarg, 0, 1); break;
        case O_WD: o.weight_decay = cli_double(PROG, "--weight-decay", optarg, 0, 10); break;
        case O_CLIP: o.clip = cli_double(PROG, "--clip", optarg, 0, 1e9); break;
        case O_MTPL: o.mtp_lambda = cli_double(PROG, "--mtp-lambda", optarg, 0, 100); break;
        case O_MTPL2: o.mtp_lambda_late = cli_double(PROG, "--mtp-lambda-late", optarg, 0, 100); break;
        case O_MTPS: o.mtp_switch = cli_double(PROG, "--mtp-switch", optarg, 0, 1); break;
        case O_BG: o.bias_gamma = cli_double(PROG, "--bias-gamma", optarg, 0, 10); break;
        case O_BG2: o.bias_gamma_late = cli_double(PROG, "--bias-gamma-late", optarg, 0, 10); break;
        case O_BS: o.bias_switch = cli_double(PROG, "--bias-switch", optarg, 0, 1); break;
        case O_ALPHA: o.balance_alpha = cli_double(PROG, "--balance-alpha", optarg, 0, 100); break;
        case O_EVAL: o.eval_every = cli_long(PROG, "--eval-every", optarg, 0, 1L << 40); break;
        case O_EVALB: o.eval_batches = cli_long(PROG, "--eval-batches", optarg, 1, 1 << 20); break;
        case O_CKPTE: o.ckpt_every = cli_long(PROG, "--ckpt-every", optarg, 0, 1L << 40); break;
        case O_METRICS: metrics = optarg; break;
        case O_SEED: seed = cli_u64(PROG, "--seed", optarg); break;
        case O_THREADS: threads = (int)cli_long(PROG, "--threads", optarg, 1, 1024); break;
        case O_PEAK: o.peak_gflops = cli_double(PROG, "--peak-gflops", optarg, 0, 1e9); break;
        case O_RESUME: resume = optarg; break;
        case O_STOPAT: o.stop_at = cli_long(PROG, "--stop-at", optarg, 1, 1L << 40); break;
        case O_PREC:
            if (precision_parse(optarg, &prec, &e)) cli_usage_error(PROG, "--precision: %s", e.msg);
            break;
        default: cli_usage_error(PROG, "unknown option");
        }
    }
    if (optind < argc) cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    if (!data) cli_usage_error(PROG, "train: --data is required");
    if (!out) cli_usage_error(PROG, "train: -o CKPT.tar is required");
    if (!config && !resume) cli_usage_error(PROG, "train: --config or --resume is required");
    if (schedule_parse(sched, &o.sched.kind)) cli_usage_error(PROG, "--schedule: unknown '%s'", sched);
    if (o.sched.min_lr < 0) o.sched.min_lr = o.sched.lr / 10;
    if (o.sched.warmup < 0) o.sched.warmup = o.steps / 20;
    o.sched.total = o.steps;
    threads = cli_set_threads(threads);

    ModelConfig cfg;
    Checkpoint ck = {0};
    if (resume && ckpt_open(&ck, resume, &e)) cli_fail_err(PROG, &e);
    if (resume && !ck.state) cli_fail(PROG, "%s: not a training checkpoint (no state.json)", resume);
    if (config && config_load(&cfg, config, &e)) cli_fail_err(PROG, &e);
    if (resume && config && !config_equal(&cfg, &ck.cfg))
        cli_fail(PROG, "%s: checkpoint was made with a different config than %s", resume, config);
    if (resume) cfg = ck.cfg;

    Dataset *train = dataset_open(data, &e), *vset = NULL;
    if (!train) cli_fail_err(PROG, &e);
    if (val && !(vset = dataset_open(val, &e))) cli_fail_err(PROG, &e);
    char *tok_text = NULL;
    size_t tok_len = 0;
    json_t *tok_hash = json_null();
    if (tok) {
        json_decref(tok_hash);
        tok_hash = load_tokenizer(tok, &tok_text, &tok_len);
        const char *dh = dataset_tokenizer_hash(train);
        if (*dh && strcmp(dh, json_string_value(tok_hash)))
            cli_fail(PROG, "%s: tokenizer hash differs from the one recorded in the shards of %s", tok, data);
    } else if (resume) {
        const char *t = ckpt_tokenizer_json(&ck, &tok_len);
        if (t) tok_text = memcpy(ds_malloc(tok_len + 1), t, tok_len);
    }
    // What made this run; a resumed run must match it exactly to continue bit-identically.
    json_t *record = json_pack(
        "{s:I,s:i,s:i,s:i,s:I,s:s,s:f,s:f,s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:i,s:o,s:{s:s,s:I,s:s}}",
        "seed", (json_int_t)seed, "batch", o.batch, "seq_len", o.seq_len, "accum", o.accum,
        "steps", (json_int_t)o.steps, "schedule", sched, "lr", o.sched.lr, "min_lr", o.sched.min_lr,
        "warmup", (json_int_t)o.sched.warmup, "decay_frac", o.sched.decay_frac, "weight_decay", o.weight_decay,
        "clip", o.clip, "mtp_lambda", o.mtp_lambda, "mtp_lambda_late", o.mtp_lambda_late,
        "mtp_switch", o.mtp_switch, "bias_gamma", o.bias_gamma, "bias_gamma_late", o.bias_gamma_late,
        "bias_switch", o.bias_switch, "balance_alpha", o.balance_alpha, "threads", threads,
        "tokenizer_sha256", tok_hash, "data", "spec", data, "tokens", (json_int_t)dataset_ntokens(train),
        "tokenizer_hash", dataset_tokenizer_hash(train));
    json_object_set_new(record, "precision", json_string(precision_name(prec)));
    if (resume) {
        json_t *prev = json_object_get(ck.state, "run");
        const char *key;
        json_t *v;
        json_object_foreach(record, key, v) {
            if (!json_equal(v, json_object_get(prev, key)))
                cli_fail(PROG, "%s: cannot resume exactly: '%s' differs from the interrupted run", resume, key);
        }
    }

    Model_f32 m;
    model_init_f32(&m, &cfg, 1, o.seq_len);
    m.precision = prec; // before trainer_init, which sizes the quantisation buffers
    if (resume) {
        if (ckpt_load_weights(&ck, &m, &e)) cli_fail_err(PROG, &e);
    } else {
        model_init_weights_f32(&m, seed);
    }
    AtomicFile mf = {0};
    if (atomic_open(&mf, metrics, &e)) cli_fail_err(PROG, &e);
    o.metrics = mf.f;
    o.stop = &stop_flag;
    o.ckpt_path = out;
    o.tokenizer_json = tok_text, o.tokenizer_len = tok_len;
    o.record = record;
    if (o.peak_gflops == 0) o.peak_gflops = gemm_ceiling_gflops();
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    Trainer t;
    trainer_init(&t, &m, &o);
    if (resume && trainer_resume(&t, &ck, &e)) cli_fail_err(PROG, &e);
    ckpt_close(&ck);
    WindowSource ws = {train, seed, o.batch, o.seq_len, 0, ds_malloc(sizeof(uint32_t) * (o.seq_len + 1))};
    WindowSource vs = {vset, seed, o.batch, o.seq_len, 1, ds_malloc(sizeof(uint32_t) * (o.seq_len + 1))};
    int stopped;
    int rc = trainer_run(&t, window_batch, &ws, vset ? window_batch : NULL, &vs, &stopped, &e);
    if (rc == DS_OK && atomic_commit(&mf, &e)) rc = DS_ERR;
    if (rc) atomic_abort(&mf);
    if (stopped) fprintf(stderr, "%s: stopped at step %ld; checkpoint written to %s\n", PROG, t.step, out);
    trainer_free(&t);
    model_free_f32(&m);
    free(ws.buf), free(vs.buf), free(tok_text);
    json_decref(record);
    dataset_close(train);
    dataset_close(vset);
    if (rc) cli_fail_err(PROG, &e);
    return EXIT_OK;
}

static int cmd_info(int argc, char **argv) {
    if (argc != 2) cli_usage_error(PROG, "info: expected CONFIG.json (or a checkpoint)");
    DsErr e;
    ModelConfig c;
    Checkpoint ck = {0};
    int is_ckpt = config_load(&c, argv[1], &e) != DS_OK;
    if (is_ckpt) {
        if (ckpt_open(&ck, argv[1], &e)) cli_fail_err(PROG, &e);
        c = ck.cfg;
    }
    ModelLayout L;
    layout_build(&L, &c);
    size_t trainable = 0;
    for (int i = 0; i < L.np; i++) trainable += L.p[i].flags & PARAM_FROZEN ? 0 : L.p[i].numel;
    json_t *j = json_pack("{s:I,s:I,s:I,s:f}", "params", (json_int_t)trainable,
                          "active_params", (json_int_t)layout_active_params(&L, 0),
                          "active_params_with_mtp", (json_int_t)layout_active_params(&L, 1),
                          "matmul_flops_per_token", layout_matmul_flops_per_token(&L, 1));
    if (ck.state) json_object_set(j, "state", ck.state);
    jsonl_write(stdout, j);
    json_decref(j);
    layout_free(&L);
    ckpt_close(&ck);
    return EXIT_OK;
}

static int cmd_export(int argc, char **argv) {
    if (argc != 3) cli_usage_error(PROG, "export: expected CKPT.tar DIR");
    DsErr e;
    Checkpoint ck;
    if (ckpt_open(&ck, argv[1], &e) || ckpt_export_dir(&ck, argv[2], &e)) cli_fail_err(PROG, &e);
    ckpt_close(&ck);
    return EXIT_OK;
}

static int cmd_import(int argc, char **argv) {
    if (argc != 4 || strcmp(argv[2], "-o")) cli_usage_error(PROG, "import: expected DIR -o CKPT.tar");
    DsErr e;
    Checkpoint ck;
    if (ckpt_open(&ck, argv[1], &e)) cli_fail_err(PROG, &e);
    Model_f32 m;
    model_init_f32(&m, &ck.cfg, 0, 1);
    size_t tl;
    const char *tok = ckpt_tokenizer_json(&ck, &tl);
    if (ckpt_load_weights(&ck, &m, &e) || ckpt_save(argv[3], &m, NULL, tok, tl, NULL, NULL, 0, &e)) cli_fail_err(PROG, &e);
    model_free_f32(&m);
    ckpt_close(&ck);
    return EXIT_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) cli_usage_error(PROG, "missing command (train, export, import, info)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage(), EXIT_OK;
    if (!strcmp(argv[1], "--version")) return cli_print_version(PROG), EXIT_OK;
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "export")) return cmd_export(argc - 1, argv + 1);
    if (!strcmp(argv[1], "import")) return cmd_import(argc - 1, argv + 1);
    cli_usage_error(PROG, "unknown command '%s'", argv[1]);
}
