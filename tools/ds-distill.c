// ds-distill — distillation data and students (R1 §2.4): rejection sampling from a teacher into
// SFT JSONL, and training a student on it (sequence level) or on the teacher's logits.
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "checkpoint/checkpoint.h"
#include "train/distill.h"
#include "core/jsonl.h"
#include "core/progress.h"
#include "rl/rollout.h"
#include "sft_train.h"
#include "tool.h"
#include "train_cli.h"
#include "text/utf8.h"

static const char *PROG = "ds-distill";

static void usage(void) {
    printf("Usage: ds-distill sample -m TEACHER.tar --task TASK --problems FILE [-o KEPT.jsonl] [options]\n"
           "       ds-distill train (-m STUDENT.tar | --config CFG.json --tokenizer TOK.json) --data KEPT.jsonl\n"
           "                        -o OUT.tar [--logits -t TEACHER.tar [--temperature T] [--alpha A]] [options]\n"
           "\n"
           "sample: the teacher writes --n samples per problem; the task's grader keeps the correct ones\n"
           "(rejection sampling) and they are written as SFT records {\"id\",\"sample\",\"prompt\",\n"
           "\"completion\",\"score\",\"correct\",\"formatted\"} (the user turn and the sample) for ds-sft/ds-distill\n"
           "train under the same --template (a problem with a \"system\" field adds \"messages\" under model).\n"
           "  --task T              countdown | gsm8k | math (records as ds-eval reads them)\n"
           "  --problems FILE       problems JSONL\n"
           "  --n K [4]  --temperature X [0.6]  --top-p X [0.95]  --top-k N [0]  --max-tokens N [256]\n"
           "  --template plain|r1|model [r1]  model: the chat template of the teacher's tokenizer_config.json,\n"
           "                        whose eos_token ends the samples unless --eos is given\n"
           "  --eos TOKEN [the model's eos_token_id]  --seed N [0] (the samples are ds-infer generate's\n"
           "                        for the same seed, options and --template)\n"
           "  --keep correct|all [correct]  --require-format (also the <think>/<answer> format)\n"
           "  --extract MODE        where gsm8k/math answers are read (as ds-eval; r1 completions: answer)\n"
           "  --batch N [16] sequences at once  --max-len N [1024]  --threads N\n"
           "  --summary FILE        summary JSON (default: stderr): samples, kept, per-problem coverage\n"
           "\n"
           "train: ds-sft train's data, options and checkpoints (see ds-sft --help); the student may be\n"
           "any architecture sharing the teacher's tokenizer. --logits trains on\n"
           "(1-A)·T²·KL(teacher_T ‖ student_T) + A·CE over the same answer tokens [T 2, A 0.5];\n"
           "the teacher runs a forward on every micro-batch. The tokenizers must be identical.\n");
    train_cli_usage();
}

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

enum {
    O_TASK = OPT_FIRST_TOOL_OPTION, O_PROBLEMS, O_N, O_TEMP, O_TOPP, O_TOPK, O_MAXTOK, O_TEMPLATE, O_EOS,
    O_SEED, O_KEEP, O_REQFMT, O_EXTRACT, O_BATCH, O_MAXLEN, O_THREADS, O_SUMMARY
};

typedef struct Slot {      // one sample
    char *text;
    GradeResult g;
    double format;         // grade_format: the R1 <think>/<answer> form
} Slot;

typedef struct Sampler {
    int n;                 // samples per problem
    Slot *slots;           // [problems * n]
} Sampler;

static int on_done(void *ctx, const RolloutSample *rs, DsErr *e) {
    Sampler *s = ctx;
    (void)e;
    Slot *sl = &s->slots[rs->item * s->n + rs->index];
    // JSON needs valid text: bytes that are not UTF-8 become U+FFFD in the written record.
    DsBuf b = {0};
    utf8_sanitize(rs->gen->text, rs->gen->text_len, &b);
    dsbuf_append(&b, "", 1);
    sl->text = b.data;
    sl->g = rs->grade;
    sl->format = rs->format;
    return DS_OK;
}

static int write_json(const char *path, json_t *j, DsErr *e) {
    if (!strcmp(path, "-")) return jsonl_write(stderr, j);
    AtomicFile f;
    if (atomic_open(&f, path, e)) return DS_ERR;
    if (jsonl_write(f.f, j)) {
        atomic_abort(&f);
        return ds_errf(e, "%s: write error", path);
    }
    return atomic_commit(&f, e);
}

static int cmd_sample(int argc, char **argv) {
    static const struct option opts[] = {
        {"help", 0, 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION}, {"model", 1, 0, 'm'}, {"output", 1, 0, 'o'},
        {"task", 1, 0, O_TASK}, {"problems", 1, 0, O_PROBLEMS}, {"n", 1, 0, O_N}, {"temperature", 1, 0, O_TEMP},
        {"top-p", 1, 0, O_TOPP}, {"top-k", 1, 0, O_TOPK}, {"max-tokens", 1, 0, O_MAXTOK},
        {"template", 1, 0, O_TEMPLATE}, {"eos", 1, 0, O_EOS}, {"seed", 1, 0, O_SEED}, {"keep", 1, 0, O_KEEP},
        {"require-format", 0, 0, O_REQFMT}, {"extract", 1, 0, O_EXTRACT}, {"batch", 1, 0, O_BATCH},
        {"max-len", 1, 0, O_MAXLEN}, {"threads", 1, 0, O_THREADS}, {"summary", 1, 0, O_SUMMARY}, {0, 0, 0, 0}};
    const char *model = NULL, *out = "-", *problems = NULL, *eos_name = NULL, *summary = "-";
    int have_task = 0, require_format = 0, c;
    TaskKind task = TASK_GSM8K;
    PromptTemplate tmpl = TEMPLATE_R1;
    int model_tmpl = 0; // --template model: the teacher's own chat template
    DistillKeep keep = DISTILL_KEEP_CORRECT;
    GradeOpts go;
    grade_opts_default(&go);
    GenConfig g = {.sp = {0.6, 0.95, 0}, .max_tokens = 256, .prefill_chunk = 64};
    EngineOpts eo = {.slots = 16, .max_len = 1024};
    Sampler s = {.n = 4};
    while ((c = getopt_long(argc, argv, "m:o:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: usage(); return EXIT_OK;
        case OPT_VERSION: cli_print_version(PROG); return EXIT_OK;
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case O_TASK:
            if (task_from_name(optarg, &task)) cli_usage_error(PROG, "--task: unknown task '%s'", optarg);
            have_task = 1;
            break;
        case O_PROBLEMS: problems = optarg; break;
        case O_N: s.n = (int)cli_long(PROG, "--n", optarg, 1, 1 << 16); break;
        case O_TEMP: g.sp.temperature = cli_double(PROG, "--temperature", optarg, 0, 100); break;
        case O_TOPP: g.sp.top_p = cli_double(PROG, "--top-p", optarg, 1e-9, 1); break;
        case O_TOPK: g.sp.top_k = (int)cli_long(PROG, "--top-k", optarg, 0, 1 << 30); break;
        case O_MAXTOK: g.max_tokens = (int)cli_long(PROG, "--max-tokens", optarg, 1, 1 << 24); break;
        case O_TEMPLATE:
            model_tmpl = !strcmp(optarg, "model");
            if (!model_tmpl && task_template_from_name(optarg, &tmpl)) cli_usage_error(PROG, "--template: plain, r1 or model");
            break;
        case O_EOS: eos_name = optarg; break;
        case O_SEED: g.seed = cli_u64(PROG, "--seed", optarg); break;
        case O_KEEP:
            if (!strcmp(optarg, "all")) keep = DISTILL_KEEP_ALL;
            else if (strcmp(optarg, "correct")) cli_usage_error(PROG, "--keep: correct or all");
            break;
        case O_REQFMT: require_format = 1; break;
        case O_EXTRACT:
            if (math_extract_from_name(optarg, &go.extract))
                cli_usage_error(PROG, "--extract: expected hash, last-number, boxed or answer");
            break;
        case O_BATCH: eo.slots = (int)cli_long(PROG, "--batch", optarg, 1, 4096); break;
        case O_MAXLEN: eo.max_len = (int)cli_long(PROG, "--max-len", optarg, 2, 1 << 20); break;
        case O_THREADS: cli_set_threads((int)cli_long(PROG, "--threads", optarg, 1, 1024)); break;
        case O_SUMMARY: summary = optarg; break;
        default: cli_usage_error(PROG, "unknown option");
        }
    }
    if (optind < argc) cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    if (!model) cli_usage_error(PROG, "sample: -m TEACHER.tar is required");
    if (!have_task) cli_usage_error(PROG, "sample: --task is required");
    if (task != TASK_COUNTDOWN && task != TASK_GSM8K && task != TASK_MATH)
        cli_usage_error(PROG, "--task: sample grades countdown, gsm8k or math");
    if (!problems) cli_usage_error(PROG, "sample: --problems is required");

    DsErr e;
    Checkpoint ck;
    if (ckpt_open(&ck, model, &e)) cli_fail_err(PROG, &e);
    cli_ckpt_warnings(PROG, &ck);
    size_t tjn;
    const char *tj = ckpt_tokenizer_json(&ck, &tjn);
    if (!tj) cli_fail(PROG, "%s: the teacher has no tokenizer.json", model);
    Tokenizer *tok = tok_from_json(tj, tjn, model, &e);
    if (!tok) cli_fail_err(PROG, &e);
    Model_f32 m;
    model_init_f32(&m, &ck.cfg, 0, eo.max_len);
    if (ckpt_load_weights(&ck, &m, &e)) cli_fail_err(PROG, &e);
    ChatTemplate ct = {0};
    if (model_tmpl && rollout_template_load(&ct, &ck, &e)) cli_fail_err(PROG, &e);
    RolloutTemplate rt = {tmpl, model_tmpl ? &ct : NULL};
    // Without --eos: the chat template's eos_token under --template model, else the ids the
    // teacher's own files name (or its tokenizer's <|endoftext|>).
    int eos = eos_name ? tok_token_id(tok, eos_name) : -1;
    if (eos < 0 && eos_name) cli_usage_error(PROG, "--eos: '%s' is not a token of the teacher", eos_name);
    uint32_t eos_ids[CKPT_MAX_EOS];
    eos_ids[0] = (uint32_t)(eos < 0 ? 0 : eos);
    g.eos = eos_ids, g.n_eos = eos >= 0, g.tok = tok;
    if (!eos_name) g.n_eos = rollout_eos(tok, rt, &ck, eos_ids);

    TaskSet set;
    if (task_set_load(&set, task, problems, 0, &e)) cli_fail_err(PROG, &e);
    TokIds *prompts = ds_calloc((size_t)set.n + 1, sizeof(TokIds));
    RolloutItem *items = ds_calloc((size_t)set.n + 1, sizeof(RolloutItem));
    s.slots = ds_calloc((size_t)set.n * s.n, sizeof(Slot));
    char **user = ds_calloc((size_t)set.n + 1, sizeof(char *));
    for (int i = 0; i < set.n; i++) {
        if (rollout_prompt(tok, set.p[i], rt, &prompts[i], &user[i], &e)) cli_fail_err(PROG, &e);
        if (prompts[i].n + 1 >= (size_t)eo.max_len)
            cli_fail(PROG, "%s: problem '%s': the prompt's %zu tokens leave no room under --max-len %d", problems,
                     set.p[i]->id, prompts[i].n, eo.max_len);
        items[i] = (RolloutItem){set.p[i], prompts[i].ids, (int)prompts[i].n, 0};
    }
    eo.max_rows = eo.slots * 2 + g.prefill_chunk;
    Engine *en = engine_new(&m, &eo, &e);
    if (!en) cli_fail_err(PROG, &e);
    Progress pg;
    progress_start(&pg, "generate", (double)set.n * s.n, "samples");
    g.progress = &pg;
    GenStats st;
    int grc = rollout_run(en, &g, items, set.n, s.n, &go, on_done, &s, &st, &e);
    progress_end(&pg, (double)st.samples);
    if (grc) cli_fail_err(PROG, &e);

    // Written in problem and sample order, whatever order the samples finished in.
    AtomicFile f;
    if (atomic_open(&f, out, &e)) cli_fail_err(PROG, &e);
    long kept = 0, covered = 0, correct = 0;
    json_t *per = json_array();
    for (int i = 0; i < set.n; i++) {
        const Problem *p = set.p[i];
        int pk = 0, pc = 0;
        for (int k = 0; k < s.n; k++) {
            Slot *sl = &s.slots[i * s.n + k];
            pc += sl->g.correct;
            if (!distill_keep(&sl->g, sl->format, keep, require_format)) continue;
            json_t *id = json_object_get(p->rec, "id");
            json_t *o = json_pack("{s:o,s:i,s:s,s:s,s:f,s:b,s:b}", "id", id ? json_incref(id) : json_string(p->id), "sample", k,
                                  "prompt", user[i], "completion", sl->text, "score", sl->g.score,
                                  "correct", sl->g.correct, "formatted", sl->format == 1.0);
            DS_CHECK(o != NULL); // the text was made valid UTF-8 above
            // A system message has no place in the prompt/completion form: the conversation
            // itself, which ds-sft --template model trains on in preference to "prompt".
            if (model_tmpl && json_object_get(p->rec, "system")) {
                json_t *conv = rollout_messages(p, &e);
                DS_CHECK(conv != NULL); // it rendered above
                json_array_append_new(conv, json_pack("{s:s,s:s}", "role", "assistant", "content", sl->text));
                json_object_set_new(o, "messages", conv);
            }
            if (jsonl_write(f.f, o)) {
                atomic_abort(&f);
                cli_fail(PROG, "%s: write error", out);
            }
            json_decref(o);
            pk++;
        }
        kept += pk, covered += pk > 0, correct += pc;
        json_array_append_new(per, json_pack("{s:s,s:i,s:i}", "id", p->id, "kept", pk, "correct", pc));
    }
    if (atomic_commit(&f, &e)) cli_fail_err(PROG, &e);
    long total = (long)set.n * s.n;
    json_t *sum = json_pack("{s:i,s:I,s:I,s:I,s:f,s:I,s:f,s:s,s:b,s:I,s:o}", "problems", set.n, "samples",
                            (json_int_t)total, "kept", (json_int_t)kept, "correct", (json_int_t)correct,
                            "pass1", total ? (double)correct / total : 0.0, "problems_covered", (json_int_t)covered,
                            "coverage", set.n ? (double)covered / set.n : 0.0, "keep",
                            keep == DISTILL_KEEP_ALL ? "all" : "correct", "require_format", require_format,
                            "tokens", (json_int_t)st.tokens, "per_problem", per);
    if (write_json(summary, sum, &e)) cli_fail_err(PROG, &e);
    json_decref(sum);

    for (int i = 0; i < set.n; i++) tokids_free(&prompts[i]), free(user[i]);
    for (long i = 0; i < total; i++) free(s.slots[i].text);
    free(prompts), free(items), free(s.slots), free(user);
    engine_free(en);
    chat_template_free(&ct);
    task_set_free(&set);
    model_free_f32(&m);
    tok_free(tok);
    ckpt_close(&ck);
    return EXIT_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) cli_usage_error(PROG, "missing command (sample, train)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage(), EXIT_OK;
    if (!strcmp(argv[1], "--version")) return cli_print_version(PROG), EXIT_OK;
    if (!strcmp(argv[1], "sample")) return cmd_sample(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) {
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        return sft_train_command(PROG, argc - 1, argv + 1, 1, usage, &stop_flag);
    }
    cli_usage_error(PROG, "unknown command '%s'", argv[1]);
}
