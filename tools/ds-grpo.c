// ds-grpo — reinforcement learning with GRPO and rule-based rewards (R1-Zero / R1 reasoning RL).
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "checkpoint/checkpoint.h"
#include "rl/grpo.h"
#include "core/sha256.h"
#include "tool.h"

static const char *PROG = "ds-grpo";

static void usage(void) {
    printf("Usage: ds-grpo train -m BASE.tar --tasks TRAIN.jsonl -o OUT.tar [options]\n"
           "       ds-grpo train --resume OUT.tar -m BASE.tar --tasks TRAIN.jsonl -o OUT.tar [same options]\n"
           "Each task line names its grader: {\"id\", \"task\": \"countdown\", \"target\", \"nums\"} or\n"
           "{\"id\", \"task\": \"math\", \"prompt\", \"answer\"}, ... (--task NAME for files without it).\n"
           "\n"
           "  --eval FILE          held-out problems: pass@1 every --eval-every steps and at the end\n"
           "  --eval-every N [0]  --eval-samples K [4]  --eval-temperature T [0.6]\n"
           "  --prompts-per-step N [8]  --group-size G [8]  --max-tokens N [128]\n"
           "  --temperature T [1]  --top-p P [1]  --top-k K [0]   rollout sampling\n"
           "  --epsilon X [0.2]    clip range      --beta X [0.04]  KL weight (0: no reference model)\n"
           "  --inner-epochs N [1] updates per rollout batch (μ)\n"
           "  --loss-agg seq-mean-token-mean|token-mean|seq-mean-token-sum-norm [seq-mean-token-mean]\n"
           "  --no-adv-norm        advantages r − mean (no division by the group std)\n"
           "  --ref-refresh N [0]  copy the policy into the reference every N steps\n"
           "  --w-acc X [1]  --w-format X [0]  --w-lang X [0]  --lang-script latin|cyrillic|greek|cjk\n"
           "  --extract MODE       gsm8k/math answer location (hash, last-number, boxed, answer)\n"
           "  --overlong keep|zero|mask [keep]   responses cut at --max-tokens\n"
           "  --template r1|plain|model [r1]  model: the chat template of the model's tokenizer_config.json,\n"
           "                       whose eos_token ends the samples unless --eos is given\n"
           "  --eos TOKEN [the model's eos_token_id]\n"
           "  --lr X [1e-5]  --warmup N [0]  --weight-decay X [0]  --clip X [1]  --steps N [100]\n"
           "  --micro-batch N [8]  sequences per training forward;  --batch N [32]  rollout slots\n"
           "  --metrics FILE [-]  --ckpt-every N [0]  --seed N [1]  --threads N  --stop-at N\n"
           "SIGINT/SIGTERM write a checkpoint and exit 0; --resume continues exactly (with a larger\n"
           "--steps it extends a finished run, as if it had been started with that many).\n");
}

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

enum {
    O_TASKS = OPT_FIRST_TOOL_OPTION, O_EVAL, O_EVALE, O_EVALS, O_EVALT, O_PPS, O_G, O_MAXTOK, O_TEMP,
    O_TOPP, O_TOPK, O_EPS, O_BETA, O_INNER, O_AGG, O_NOADV, O_REFR, O_WACC, O_WFMT, O_WLANG, O_SCRIPT,
    O_EXTRACT, O_OVERLONG, O_TEMPLATE, O_EOS, O_LR, O_WARMUP, O_WD, O_CLIP, O_STEPS, O_MB, O_BATCH,
    O_METRICS, O_CKPTE, O_SEED, O_THREADS, O_STOPAT, O_RESUME, O_TASK
};

static char *file_hash(const char *path) {
    char *d;
    size_t n;
    DsErr e;
    if (ds_read_file(path, &d, &n, &e)) cli_fail_err(PROG, &e);
    char hex[65];
    sha256_hex(d, n, hex);
    free(d);
    return ds_strdup(hex);
}

int main(int argc, char **argv) {
    if (argc < 2) cli_usage_error(PROG, "missing command (train)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage(), EXIT_OK;
    if (!strcmp(argv[1], "--version")) return cli_print_version(PROG), EXIT_OK;
    if (strcmp(argv[1], "train")) cli_usage_error(PROG, "unknown command '%s'", argv[1]);
    argc--, argv++;
    static const struct option opts[] = {
        {"help", 0, 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION}, {"model", 1, 0, 'm'}, {"output", 1, 0, 'o'},
        {"tasks", 1, 0, O_TASKS}, {"task", 1, 0, O_TASK}, {"eval", 1, 0, O_EVAL}, {"eval-every", 1, 0, O_EVALE},
        {"eval-samples", 1, 0, O_EVALS}, {"eval-temperature", 1, 0, O_EVALT}, {"prompts-per-step", 1, 0, O_PPS},
        {"group-size", 1, 0, O_G}, {"max-tokens", 1, 0, O_MAXTOK}, {"temperature", 1, 0, O_TEMP},
        {"top-p", 1, 0, O_TOPP}, {"top-k", 1, 0, O_TOPK}, {"epsilon", 1, 0, O_EPS}, {"beta", 1, 0, O_BETA},
        {"inner-epochs", 1, 0, O_INNER}, {"loss-agg", 1, 0, O_AGG}, {"no-adv-norm", 0, 0, O_NOADV},
        {"ref-refresh", 1, 0, O_REFR}, {"w-acc", 1, 0, O_WACC}, {"w-format", 1, 0, O_WFMT},
        {"w-lang", 1, 0, O_WLANG}, {"lang-script", 1, 0, O_SCRIPT}, {"extract", 1, 0, O_EXTRACT},
        {"overlong", 1, 0, O_OVERLONG}, {"template", 1, 0, O_TEMPLATE}, {"eos", 1, 0, O_EOS},
        {"lr", 1, 0, O_LR}, {"warmup", 1, 0, O_WARMUP}, {"weight-decay", 1, 0, O_WD}, {"clip", 1, 0, O_CLIP},
        {"steps", 1, 0, O_STEPS}, {"micro-batch", 1, 0, O_MB}, {"batch", 1, 0, O_BATCH},
        {"metrics", 1, 0, O_METRICS}, {"ckpt-every", 1, 0, O_CKPTE}, {"seed", 1, 0, O_SEED},
        {"threads", 1, 0, O_THREADS}, {"stop-at", 1, 0, O_STOPAT}, {"resume", 1, 0, O_RESUME}, {0, 0, 0, 0}};
    GrpoOpts o = {.prompts_per_step = 8, .group_size = 8, .max_tokens = 128, .sp = {1, 1, 0},
                  .inner_epochs = 1, .epsilon = 0.2, .beta = 0.04, .adv_norm = 1, .w_acc = 1,
                  .tmpl = TEMPLATE_R1, .lr = 1e-5, .beta1 = 0.9, .beta2 = 0.95, .clip = 1, .steps = 100,
                  .micro_batch = 8, .slots = 32, .seed = 1, .eval_samples = 4, .eval_temperature = 0.6};
    grade_opts_default(&o.grade);
    const char *model = NULL, *out = NULL, *tasks = NULL, *evalf = NULL, *metrics = "-", *resume = NULL;
    const char *eos_name = NULL, *task = NULL, *agg = "seq-mean-token-mean", *overlong = "keep";
    const char *tmpl = "r1", *script = "latin";
    int threads = 0, c;
    while ((c = getopt_long(argc, argv, "m:o:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: usage(); return EXIT_OK;
        case OPT_VERSION: cli_print_version(PROG); return EXIT_OK;
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case O_TASKS: tasks = optarg; break;
        case O_TASK: task = optarg; break;
        case O_EVAL: evalf = optarg; break;
        case O_EVALE: o.eval_every = cli_long(PROG, "--eval-every", optarg, 0, 1L << 40); break;
        case O_EVALS: o.eval_samples = (int)cli_long(PROG, "--eval-samples", optarg, 1, 4096); break;
        case O_EVALT: o.eval_temperature = cli_double(PROG, "--eval-temperature", optarg, 0, 100); break;
        case O_PPS: o.prompts_per_step = (int)cli_long(PROG, "--prompts-per-step", optarg, 1, 1 << 20); break;
        case O_G: o.group_size = (int)cli_long(PROG, "--group-size", optarg, 2, 1 << 16); break;
        case O_MAXTOK: o.max_tokens = (int)cli_long(PROG, "--max-tokens", optarg, 1, 1 << 20); break;
        case O_TEMP: o.sp.temperature = cli_double(PROG, "--temperature", optarg, 0, 100); break;
        case O_TOPP: o.sp.top_p = cli_double(PROG, "--top-p", optarg, 1e-9, 1); break;
        case O_TOPK: o.sp.top_k = (int)cli_long(PROG, "--top-k", optarg, 0, 1 << 30); break;
        case O_EPS: o.epsilon = cli_double(PROG, "--epsilon", optarg, 0, 10); break;
        case O_BETA: o.beta = cli_double(PROG, "--beta", optarg, 0, 100); break;
        case O_INNER: o.inner_epochs = (int)cli_long(PROG, "--inner-epochs", optarg, 1, 1000); break;
        case O_AGG: agg = optarg; break;
        case O_NOADV: o.adv_norm = 0; break;
        case O_REFR: o.ref_refresh = cli_long(PROG, "--ref-refresh", optarg, 0, 1L << 40); break;
        case O_WACC: o.w_acc = cli_double(PROG, "--w-acc", optarg, -100, 100); break;
        case O_WFMT: o.w_format = cli_double(PROG, "--w-format", optarg, -100, 100); break;
        case O_WLANG: o.w_lang = cli_double(PROG, "--w-lang", optarg, -100, 100); break;
        case O_SCRIPT: script = optarg; break;
        case O_EXTRACT:
            if (math_extract_from_name(optarg, &o.grade.extract))
                cli_usage_error(PROG, "--extract: expected hash, last-number, boxed or answer");
            break;
        case O_OVERLONG: overlong = optarg; break;
        case O_TEMPLATE: tmpl = optarg; break;
        case O_EOS: eos_name = optarg; break;
        case O_LR: o.lr = cli_double(PROG, "--lr", optarg, 0, 10); break;
        case O_WARMUP: o.warmup = cli_long(PROG, "--warmup", optarg, 0, 1L << 40); break;
        case O_WD: o.weight_decay = cli_double(PROG, "--weight-decay", optarg, 0, 10); break;
        case O_CLIP: o.clip = cli_double(PROG, "--clip", optarg, 0, 1e9); break;
        case O_STEPS: o.steps = cli_long(PROG, "--steps", optarg, 1, 1L << 40); break;
        case O_MB: o.micro_batch = (int)cli_long(PROG, "--micro-batch", optarg, 1, 1 << 16); break;
        case O_BATCH: o.slots = (int)cli_long(PROG, "--batch", optarg, 1, 4096); break;
        case O_METRICS: metrics = optarg; break;
        case O_CKPTE: o.ckpt_every = cli_long(PROG, "--ckpt-every", optarg, 0, 1L << 40); break;
        case O_SEED: o.seed = cli_u64(PROG, "--seed", optarg); break;
        case O_THREADS: threads = (int)cli_long(PROG, "--threads", optarg, 1, 1024); break;
        case O_STOPAT: o.stop_at = cli_long(PROG, "--stop-at", optarg, 1, 1L << 40); break;
        case O_RESUME: resume = optarg; break;
        default: cli_usage_error(PROG, "unknown option");
        }
    }
    if (optind < argc) cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    if (!model || !tasks || !out) cli_usage_error(PROG, "train: -m MODEL, --tasks FILE and -o OUT are required");
    if (grpo_agg_parse(agg, &o.agg)) cli_usage_error(PROG, "--loss-agg: unknown '%s'", agg);
    if (!strcmp(overlong, "keep")) o.overlong = OVERLONG_KEEP;
    else if (!strcmp(overlong, "zero")) o.overlong = OVERLONG_ZERO;
    else if (!strcmp(overlong, "mask")) o.overlong = OVERLONG_MASK;
    else cli_usage_error(PROG, "--overlong: keep, zero or mask");
    int model_tmpl = !strcmp(tmpl, "model");
    if (!model_tmpl && task_template_from_name(tmpl, &o.tmpl)) cli_usage_error(PROG, "--template: r1, plain or model");
    if (grade_script_from_name(script, &o.grade.lang_script)) cli_usage_error(PROG, "--lang-script: unknown '%s'", script);
    TaskKind tk;
    if (task && task_from_name(task, &tk)) cli_usage_error(PROG, "--task: unknown '%s'", task);
    threads = cli_set_threads(threads);

    DsErr e;
    Checkpoint base;
    if (ckpt_open(&base, model, &e)) cli_fail_err(PROG, &e);
    cli_ckpt_warnings(PROG, &base);
    size_t tok_len;
    const char *tj = ckpt_tokenizer_json(&base, &tok_len);
    if (!tj) cli_fail(PROG, "%s: the model has no tokenizer.json", model);
    char *tok_json = memcpy(ds_malloc(tok_len + 1), tj, tok_len);
    Tokenizer *tok = tok_from_json(tok_json, tok_len, model, &e);
    if (!tok) cli_fail_err(PROG, &e);
    ChatTemplate ct = {0};
    if (model_tmpl && rollout_template_load(&ct, &base, &e)) cli_fail_err(PROG, &e);
    RolloutTemplate rt = {o.tmpl, model_tmpl ? &ct : NULL};
    // Without --eos: the chat template's eos_token under --template model, else the ids the
    // model's own files name (or its tokenizer's <|endoftext|>).
    uint32_t eos[CKPT_MAX_EOS];
    int eos_id = eos_name ? tok_token_id(tok, eos_name) : -1;
    if (eos_name && eos_id < 0) cli_usage_error(PROG, "--eos: '%s' is not a token of this model", eos_name);
    if (eos_id >= 0) eos[0] = (uint32_t)eos_id, o.n_eos = 1;
    else o.n_eos = rollout_eos(tok, rt, &base, eos);
    o.eos = eos;
    // Recorded by text as before ("<|endoftext|>" for ds's own models), so resumes still match.
    char eos_text[128] = "(none)";
    size_t etl = 0;
    const char *et = o.n_eos == 1 && !eos_name ? tok_token_bytes(tok, o.eos[0], &etl) : NULL;
    if (et) snprintf(eos_text, sizeof eos_text, "%.*s", (int)DS_MIN(etl, sizeof eos_text - 1), et);
    else if (o.n_eos > 1) snprintf(eos_text, sizeof eos_text, "(%d ids of the model)", o.n_eos);
    GrpoProblems train, ev = {0};
    if (grpo_problems_load(&train, tasks, task, tok, rt, &e)) cli_fail_err(PROG, &e);
    if (evalf && grpo_problems_load(&ev, evalf, task, tok, rt, &e)) cli_fail_err(PROG, &e);
    for (int i = 0; i < train.n; i++) o.max_prompt = DS_MAX(o.max_prompt, train.len[i]);
    for (int i = 0; i < ev.n; i++) o.max_prompt = DS_MAX(o.max_prompt, ev.len[i]);

    // The starting weights, whatever container they came in.
    const TarMember *w = ckpt_member(&base, "model.safetensors");
    if (!w) w = ckpt_member(&base, "model.safetensors.index.json"); // a sharded folder
    char h_model[65], *h_tasks = file_hash(tasks);
    sha256_hex(w->data, w->size, h_model);
    json_t *record = json_pack(
        "{s:s,s:s,s:s,s:i,s:i,s:i,s:f,s:f,s:i,s:f,s:f,s:i,s:s,s:i,s:I,s:f,s:f,s:f,s:s,s:s,s:s,s:f,s:I,s:f,s:f,s:I,s:i,s:i,s:I,s:i,s:s}",
        "model", model, "model_sha256", h_model, "tasks_sha256", h_tasks, "prompts_per_step", o.prompts_per_step,
        "group_size", o.group_size, "max_tokens", o.max_tokens, "temperature", o.sp.temperature, "top_p", o.sp.top_p,
        "top_k", o.sp.top_k, "epsilon", o.epsilon, "beta", o.beta, "inner_epochs", o.inner_epochs, "loss_agg", agg,
        "adv_norm", o.adv_norm, "ref_refresh", (json_int_t)o.ref_refresh, "w_acc", o.w_acc, "w_format", o.w_format,
        "w_lang", o.w_lang, "lang_script", script, "overlong", overlong, "template", tmpl, "lr", o.lr,
        "warmup", (json_int_t)o.warmup, "weight_decay", o.weight_decay, "clip", o.clip,
        "steps", (json_int_t)o.steps, "micro_batch", o.micro_batch, "batch", o.slots, "seed", (json_int_t)o.seed,
        "threads", threads, "eos", eos_name ? eos_name : eos_text);
    free(h_tasks);
    if (model_tmpl) { // the template is part of the run: a resume must render the same prompts
        const TarMember *tc = ckpt_member(&base, "tokenizer_config.json");
        char h_tc[65];
        sha256_hex(tc->data, tc->size, h_tc);
        json_object_set_new(record, "tokenizer_config_sha256", json_string(h_tc));
    }

    Checkpoint ck = {0};
    Model_f32 m;
    model_init_f32(&m, &base.cfg, 1, o.max_prompt + o.max_tokens + 1);
    if (resume) {
        if (ckpt_open(&ck, resume, &e)) cli_fail_err(PROG, &e);
        cli_ckpt_warnings(PROG, &ck);
        if (!ck.state) cli_fail(PROG, "%s: not a training checkpoint", resume);
        if (!config_equal(&ck.cfg, &base.cfg)) cli_fail(PROG, "%s: made from a different model than %s", resume, model);
        json_t *prev = json_object_get(ck.state, "run");
        const char *k;
        json_t *v;
        // Every setting must match, except that a longer --steps extends the run: the schedule
        // (warm-up, then constant) and each step's randomness do not depend on the step count.
        long done = (long)json_integer_value(json_object_get(ck.state, "step"));
        json_object_foreach(record, k, v) {
            if (strcmp(k, "steps") == 0 && json_integer_value(v) >= done) continue;
            if (!json_equal(v, json_object_get(prev, k)))
                cli_fail(PROG, "%s: cannot resume exactly: '%s' differs from the interrupted run", resume, k);
        }
        if (ckpt_load_weights(&ck, &m, &e)) cli_fail_err(PROG, &e);
    } else if (ckpt_load_weights(&base, &m, &e)) {
        cli_fail_err(PROG, &e);
    }
    AtomicFile mf;
    if (atomic_open(&mf, metrics, &e)) cli_fail_err(PROG, &e);
    o.metrics = mf.f, o.ckpt_path = out, o.stop = &stop_flag, o.record = record;
    CkptCarry carry; // the starting model's small files (a resumed run's are the base's too)
    ckpt_carry(resume ? &ck : &base, 0, &carry);
    o.carry = carry.m, o.ncarry = carry.n;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    GrpoRun *g = grpo_new(&m, tok, tok_json, tok_len, &o, &e);
    if (!g) cli_fail_err(PROG, &e);
    // The reference is the starting policy: the base model, or on resume the saved reference.
    if (resume && grpo_resume(g, &ck, &e)) cli_fail_err(PROG, &e);
    ckpt_close(&ck);
    int stopped;
    int rc = grpo_run(g, &train, evalf ? &ev : NULL, &stopped, &e);
    if (!rc && atomic_commit(&mf, &e)) rc = DS_ERR;
    if (rc) atomic_abort(&mf);
    if (stopped) fprintf(stderr, "%s: stopped at step %ld; checkpoint written to %s\n", PROG, grpo_step(g), out);
    grpo_free(g);
    ckpt_carry_free(&carry);
    grpo_problems_free(&train);
    grpo_problems_free(&ev);
    model_free_f32(&m);
    tok_free(tok);
    free(tok_json);
    json_decref(record);
    chat_template_free(&ct);
    ckpt_close(&base);
    if (rc) cli_fail_err(PROG, &e);
    return EXIT_OK;
}
