// ds-eval — grades completions against a task's problems (per-sample scores, pass@k, maj@k and a
// summary), and writes the prompts for a problems file.
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "checkpoint/checkpoint.h"
#include "eval/grade.h"
#include "core/jsonl.h"
#include "eval/passk.h"
#include "core/progress.h"
#include "rl/rollout.h"
#include "eval/task.h"
#include "tool.h"
#include "text/utf8.h"

static const char *prog = "ds-eval";

static void usage(void) {
    printf(
        "Usage: ds-eval [grade] --task TASK --problems FILE [COMPLETIONS.jsonl|-] [options]\n"
        "       ds-eval prompts --task TASK --problems FILE [--template plain|r1] [-o FILE]\n"
        "       ds-eval prompts --task TASK --problems FILE --template model (-m MODEL | --tokenizer-config FILE)\n"
        "       ds-eval -m MODEL --task TASK --problems FILE [--n N] [--temperature T] ...\n"
        "\n"
        "grade (the default) reads completions "
        "{\"id\",\"sample\",\"completion\",\"n_tokens\",...}\n"
        "(stdin when no file or '-'), matches each to its problem by id and writes one line per\n"
        "sample: {\"id\",\"sample\",\"score\",\"correct\",\"formatted\",\"answer\",\"n_tokens\"}.\n"
        "Problems without an 'id' field are numbered by line (1-based).\n"
        "\n"
        "  --task T            countdown | gsm8k | math | format | lang\n"
        "  --problems FILE     problems JSONL (the shared data files or ds task files)\n"
        "  -o, --output FILE   per-sample lines (default '-': stdout)\n"
        "  --summary FILE      summary JSON: pass@1, pass@k and maj@k for each --k up to the\n"
        "                      smallest sample count, format rate, lengths ('-': stderr)\n"
        "  --k LIST            comma-separated k values (default 1,4,16)\n"
        "  --by FIELD          add pass@1 per value of this problem field (repeatable)\n"
        "  --extract MODE      where gsm8k/math answers are read: hash (after the last \"####\";\n"
        "                      gsm8k's default) | boxed (last \\boxed{}; math's default) |\n"
        "                      answer (last <answer>...</answer>, its \\boxed{} if any) |\n"
        "                      last-number\n"
        "  --lang-script S     lang task target: latin (default) | cyrillic | greek | cjk\n"
        "  --skip-bad          warn about and skip malformed lines and records\n"
        "  --template T        prompts: plain (default) | r1 (the R1-Zero conversation text) |\n"
        "                      model (the chat template of -m MODEL's tokenizer_config.json, or of\n"
        "                      --tokenizer-config FILE: the problem as a user message, after a system\n"
        "                      message when the record has a \"system\" field, with the generation\n"
        "                      prompt). prompts then writes {\"id\",\"prompt\",\"messages\"}: the rendered\n"
        "                      text, and the conversation ds-infer generate --template model renders\n"
        "                      into that same text\n"
        "  --tokenizer-config FILE  the tokenizer_config.json for --template model (default: the\n"
        "                      model's)\n"
        "  -m MODEL            generate the completions with this checkpoint first (R1's evaluation\n"
        "                      defaults): --n N [1] --temperature T [0.6] --top-p P [0.95]\n"
        "                      --max-tokens N [256] --seed S [0] --batch N [16]; uses --template\n"
        "                      (model: the template's eos_token ends the samples). The samples are\n"
        "                      ds-infer generate's for the same seed, options and template, fed\n"
        "                      ds-eval prompts' output\n"
        "  --help, --version\n"
        "\n"
        "Exit status: 0 ok, 1 bad input or I/O error, 2 usage error.\n");
}

enum {
    OPT_TASK = OPT_FIRST_TOOL_OPTION,
    OPT_PROBLEMS,
    OPT_SUMMARY,
    OPT_K,
    OPT_BY,
    OPT_EXTRACT,
    OPT_SCRIPT,
    OPT_SKIP_BAD,
    OPT_TEMPLATE,
    OPT_N,
    OPT_TEMP,
    OPT_TOPP,
    OPT_MAXTOK,
    OPT_SEED,
    OPT_BATCH,
    OPT_TOKCFG
};
enum { MAX_K = 16, MAX_BY = 8 };

typedef struct Args {
    int prompts; // the prompts subcommand
    TaskKind task;
    int have_task;
    const char *problems, *completions, *output, *summary;
    int k[MAX_K], n_k;
    const char *by[MAX_BY];
    int n_by;
    GradeOpts go;
    int skip_bad;
    PromptTemplate tmpl;
    int model_tmpl;       // --template model
    const char *tokcfg;   // --tokenizer-config
    const char *model; // generate first (prompts: only its chat template is read)
    int n, max_tokens, batch;
    double temperature, top_p;
    uint64_t seed;
} Args;

static void parse_k(Args *a, const char *s) {
    a->n_k = 0;
    char *copy = ds_strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (a->n_k == MAX_K) cli_usage_error(prog, "--k: at most %d values", MAX_K);
        a->k[a->n_k++] = (int)cli_long(prog, "--k", t, 1, 1000000);
    }
    free(copy);
    if (a->n_k == 0) cli_usage_error(prog, "--k: expected a list such as 1,4,16");
}

static void parse_args(int argc, char **argv, Args *a) {
    static const struct option opts[] = {{"help", no_argument, 0, OPT_HELP},
                                         {"version", no_argument, 0, OPT_VERSION},
                                         {"task", required_argument, 0, OPT_TASK},
                                         {"problems", required_argument, 0, OPT_PROBLEMS},
                                         {"output", required_argument, 0, 'o'},
                                         {"summary", required_argument, 0, OPT_SUMMARY},
                                         {"k", required_argument, 0, OPT_K},
                                         {"by", required_argument, 0, OPT_BY},
                                         {"extract", required_argument, 0, OPT_EXTRACT},
                                         {"lang-script", required_argument, 0, OPT_SCRIPT},
                                         {"skip-bad", no_argument, 0, OPT_SKIP_BAD},
                                         {"template", required_argument, 0, OPT_TEMPLATE},
                                         {"model", required_argument, 0, 'm'},
                                         {"n", required_argument, 0, OPT_N},
                                         {"temperature", required_argument, 0, OPT_TEMP},
                                         {"top-p", required_argument, 0, OPT_TOPP},
                                         {"max-tokens", required_argument, 0, OPT_MAXTOK},
                                         {"seed", required_argument, 0, OPT_SEED},
                                         {"batch", required_argument, 0, OPT_BATCH},
                                         {"tokenizer-config", required_argument, 0, OPT_TOKCFG},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->output = "-";
    a->n = 1, a->max_tokens = 256, a->batch = 16, a->temperature = 0.6, a->top_p = 0.95;
    grade_opts_default(&a->go);
    parse_k(a, "1,4,16");
    if (argc > 1 && (strcmp(argv[1], "prompts") == 0 || strcmp(argv[1], "grade") == 0)) {
        a->prompts = argv[1][0] == 'p';
        argv[1] = argv[0];
        argc--, argv++;
    }
    int c;
    while ((c = getopt_long(argc, argv, "o:m:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a->model = optarg; break;
        case OPT_N: a->n = (int)cli_long(prog, "--n", optarg, 1, 1 << 20); break;
        case OPT_TEMP: a->temperature = cli_double(prog, "--temperature", optarg, 0, 100); break;
        case OPT_TOPP: a->top_p = cli_double(prog, "--top-p", optarg, 1e-9, 1); break;
        case OPT_MAXTOK: a->max_tokens = (int)cli_long(prog, "--max-tokens", optarg, 1, 1 << 24); break;
        case OPT_SEED: a->seed = cli_u64(prog, "--seed", optarg); break;
        case OPT_BATCH: a->batch = (int)cli_long(prog, "--batch", optarg, 1, 4096); break;
        case OPT_HELP: usage(); exit(EXIT_OK);
        case OPT_VERSION: cli_print_version(prog); exit(EXIT_OK);
        case OPT_TASK:
            if (task_from_name(optarg, &a->task) != DS_OK)
                cli_usage_error(prog, "--task: unknown task '%s'", optarg);
            a->have_task = 1;
            break;
        case OPT_PROBLEMS: a->problems = optarg; break;
        case 'o': a->output = optarg; break;
        case OPT_SUMMARY: a->summary = optarg; break;
        case OPT_K: parse_k(a, optarg); break;
        case OPT_BY:
            if (a->n_by == MAX_BY) cli_usage_error(prog, "--by: at most %d fields", MAX_BY);
            a->by[a->n_by++] = optarg;
            break;
        case OPT_EXTRACT:
            if (math_extract_from_name(optarg, &a->go.extract) != DS_OK)
                cli_usage_error(prog, "--extract: expected hash, last-number, boxed or answer");
            break;
        case OPT_SCRIPT:
            if (grade_script_from_name(optarg, &a->go.lang_script) != DS_OK)
                cli_usage_error(prog, "--lang-script: expected latin, cyrillic, greek or cjk");
            break;
        case OPT_SKIP_BAD: a->skip_bad = 1; break;
        case OPT_TEMPLATE:
            a->model_tmpl = !strcmp(optarg, "model");
            if (!a->model_tmpl && task_template_from_name(optarg, &a->tmpl) != DS_OK)
                cli_usage_error(prog, "--template: expected plain, r1 or model");
            break;
        case OPT_TOKCFG: a->tokcfg = optarg; break;
        default: cli_usage_error(prog, "unknown option");
        }
    }
    if (!a->have_task) cli_usage_error(prog, "--task is required");
    if (!a->problems) cli_usage_error(prog, "--problems is required");
    if (optind < argc) a->completions = argv[optind++];
    if (optind < argc) cli_usage_error(prog, "unexpected argument '%s'", argv[optind]);
    if (a->prompts && a->completions) cli_usage_error(prog, "prompts takes no completions file");
    if (a->model && a->completions)
        cli_usage_error(prog, "-m generates the completions: no completions file");
    if (a->prompts && a->model_tmpl && !a->model && !a->tokcfg)
        cli_usage_error(prog, "prompts --template model: give -m MODEL or --tokenizer-config FILE (the chat template)");
    if (!a->completions) a->completions = "-";
}

// Compact JSON with short reals (0.1, not 0.10000000000000001).
static int write_line(FILE *f, const json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
    if (!s) return DS_ERR;
    int bad = fputs(s, f) == EOF || fputc('\n', f) == EOF;
    free(s);
    return bad ? DS_ERR : DS_OK;
}

// ---------------------------------------------------------------------------------------------
// prompts

// --template model: the chat template of --tokenizer-config, else of the model (ck).
static int load_template(const Args *a, const Checkpoint *ck, ChatTemplate *ct, DsErr *e) {
    if (a->tokcfg) return chat_template_load_file(ct, a->tokcfg, e);
    return rollout_template_load(ct, ck, e);
}

static int run_prompts(const Args *a, DsErr *e) {
    ChatTemplate ct = {0};
    if (a->model_tmpl) {
        Checkpoint ck;
        if (!a->tokcfg && ckpt_open(&ck, a->model, e)) return DS_ERR;
        int rc = load_template(a, &ck, &ct, e);
        if (!a->tokcfg) ckpt_close(&ck);
        if (rc) return DS_ERR;
    }
    RolloutTemplate rt = {a->tmpl, a->model_tmpl ? &ct : NULL};
    TaskSet set;
    if (task_set_load(&set, a->task, a->problems, a->skip_bad, e) != DS_OK) {
        chat_template_free(&ct);
        return DS_ERR;
    }
    AtomicFile out;
    if (atomic_open(&out, a->output, e) != DS_OK) {
        chat_template_free(&ct);
        task_set_free(&set);
        return DS_ERR;
    }
    for (int i = 0; i < set.n; i++) {
        const Problem *p = set.p[i];
        char *full = rollout_prompt_text(p, rt, NULL, e);
        if (!full) goto fail;
        json_t *o = json_object(), *id = json_object_get(p->rec, "id");
        json_object_set_new(o, "id", id ? json_incref(id) : json_integer(atoll(p->id)));
        json_object_set_new(o, "prompt", json_string(full));
        free(full);
        // The conversation the text was rendered from, which ds-infer generate --template model
        // reads in preference to "prompt" and renders into the same text.
        json_t *conv = rt.chat ? rollout_messages(p, e) : NULL;
        if (rt.chat && !conv) {
            json_decref(o);
            goto fail;
        }
        if (conv) json_object_set_new(o, "messages", conv);
        int bad = write_line(out.f, o);
        json_decref(o);
        if (bad) {
            ds_errf(e, "%s: write error", a->output);
            goto fail;
        }
    }
    chat_template_free(&ct);
    task_set_free(&set);
    return atomic_commit(&out, e);
fail:
    atomic_abort(&out);
    chat_template_free(&ct);
    task_set_free(&set);
    return DS_ERR;
}

// ---------------------------------------------------------------------------------------------
// grade

typedef struct Sample {
    long sample, order; // the "sample" field (or arrival order within the problem); arrival index
    int correct, formatted;
    double score;
    char *answer;
} Sample;

typedef struct Graded { // samples of one problem
    Sample *s;
    int n, cap;
} Graded;

static int cmp_sample(const void *x, const void *y) {
    const Sample *a = x, *b = y;
    if (a->sample != b->sample) return a->sample < b->sample ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

// The id as text: strings as they are, integers in decimal (into buf).
static const char *id_text(const JsonlReader *r, const json_t *v, char *buf, size_t cap, DsErr *e) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (!v)
        ds_errf(e, "%s:%ld: missing field 'id'", jsonl_name(r), r->line);
    else
        ds_errf(e, "%s:%ld: field 'id' must be a string or an integer", jsonl_name(r), r->line);
    return NULL;
}

// Grades one completion record; per-sample line to out, sample kept in g.
static int grade_record(const Args *a, const TaskSet *set, Graded *g, const JsonlReader *r,
                        const json_t *o, FILE *out, long *len_tokens_missing, double *len_sum,
                        double *len_max, long order, DsErr *e) {
    char buf[32];
    const char *id = id_text(r, json_object_get(o, "id"), buf, sizeof buf, e);
    if (!id) return DS_ERR;
    int i = task_set_find(set, id);
    if (i < 0)
        return ds_errf(e, "%s:%ld: no problem with id '%s' in %s", jsonl_name(r), r->line, id,
                       a->problems);
    const json_t *c = json_object_get(o, "completion"), *sv = json_object_get(o, "sample");
    const json_t *nt = json_object_get(o, "n_tokens");
    if (!json_is_string(c))
        return ds_errf(e, "%s:%ld: field 'completion' must be a string", jsonl_name(r), r->line);
    if (sv && !json_is_integer(sv))
        return ds_errf(e, "%s:%ld: field 'sample' must be an integer", jsonl_name(r), r->line);
    if (nt && !json_is_integer(nt))
        return ds_errf(e, "%s:%ld: field 'n_tokens' must be an integer", jsonl_name(r), r->line);
    GradeResult gr;
    const char *text = json_string_value(c);
    size_t nbytes = json_string_length(c), clen = 0;
    grade(set->p[i], &a->go, text, nbytes, &gr);
    for (size_t b = 0; b < nbytes; b++) clen += ((unsigned char)text[b] & 0xC0) != 0x80; // chars

    Graded *gi = &g[i];
    if (gi->n == gi->cap) {
        gi->cap = gi->cap ? 2 * gi->cap : 8;
        gi->s = ds_realloc(gi->s, (size_t)gi->cap * sizeof *gi->s);
    }
    Sample *s = &gi->s[gi->n++];
    s->sample = sv ? (long)json_integer_value(sv) : gi->n - 1;
    s->order = order;
    s->correct = gr.correct, s->formatted = gr.formatted, s->score = gr.score;
    s->answer = ds_strdup(gr.answer);
    // Lengths in tokens when every record has n_tokens, else in characters (both are kept).
    if (!nt) (*len_tokens_missing)++;
    len_sum[0] += nt ? (double)json_integer_value(nt) : 0, len_sum[1] += (double)clen;
    if (nt && json_integer_value(nt) > len_max[0]) len_max[0] = (double)json_integer_value(nt);
    if ((double)clen > len_max[1]) len_max[1] = (double)clen;

    json_t *l = json_object();
    json_object_set(l, "id", json_object_get(o, "id"));
    json_object_set_new(l, "sample", json_integer(s->sample));
    json_object_set_new(l, "score", json_real(gr.score));
    json_object_set_new(l, "correct", json_boolean(gr.correct));
    json_object_set_new(l, "formatted", json_boolean(gr.formatted));
    json_object_set_new(l, "answer", json_string(gr.answer));
    if (nt) json_object_set(l, "n_tokens", (json_t *)nt);
    const json_t *fr = json_object_get(o, "finish_reason");
    if (fr) json_object_set(l, "finish_reason", (json_t *)fr);
    int bad = write_line(out, l);
    json_decref(l);
    return bad ? ds_errf(e, "%s: write error", a->output) : DS_OK;
}

// The text of a problem field for --by: strings as they are, other values as JSON.
static char *field_value(const Problem *p, const char *field) {
    const json_t *v = json_object_get(p->rec, field);
    if (!v) return ds_strdup("(none)");
    if (json_is_string(v)) return ds_strdup(json_string_value(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12));
    return s ? s : ds_strdup("?");
}

typedef struct FieldOf { // one problem's value of a --by field
    char *value;
    int i;
} FieldOf;

static int cmp_field(const void *x, const void *y) {
    const FieldOf *a = x, *b = y;
    int c = strcmp(a->value, b->value);
    return c ? c : a->i - b->i;
}

// pass@1 per value of a problem field: sort the problems by value, then one pass per group.
static json_t *by_field(const TaskSet *set, const Graded *g, const char *field) {
    FieldOf *f = ds_malloc((size_t)(set->n ? set->n : 1) * sizeof *f);
    int nf = 0;
    for (int i = 0; i < set->n; i++)
        if (g[i].n) f[nf].value = field_value(set->p[i], field), f[nf].i = i, nf++;
    qsort(f, (size_t)nf, sizeof *f, cmp_field);
    json_t *o = json_object();
    for (int a = 0, b; a < nf; a = b) {
        int ns = 0;
        double pass = 0;
        for (b = a; b < nf && strcmp(f[b].value, f[a].value) == 0; b++) {
            const Graded *gi = &g[f[b].i];
            int c = 0;
            for (int j = 0; j < gi->n; j++) c += gi->s[j].correct;
            ns += gi->n, pass += (double)c / gi->n;
        }
        json_t *v = json_object();
        json_object_set_new(v, "n_problems", json_integer(b - a));
        json_object_set_new(v, "n_samples", json_integer(ns));
        json_object_set_new(v, "pass@1", json_real(pass / (b - a)));
        json_object_set_new(o, f[a].value, v);
    }
    for (int i = 0; i < nf; i++) free(f[i].value);
    free(f);
    return o;
}

static json_t *summarize(const Args *a, const TaskSet *set, Graded *g, long n_samples,
                         long tokens_missing, const double *len_sum, const double *len_max) {
    int np = 0;
    long formatted = 0;
    double score = 0;
    // Per problem with samples: counts, and answers in sample order for maj@k.
    PasskProblem *pp = ds_malloc((size_t)(set->n ? set->n : 1) * sizeof *pp);
    long at = 0, all = 1;
    for (int i = 0; i < set->n; i++) all += g[i].n;
    const char **ans = ds_malloc((size_t)all * sizeof *ans);
    int *cor = ds_malloc((size_t)all * sizeof *cor);
    for (int i = 0; i < set->n; i++) {
        if (!g[i].n) continue;
        qsort(g[i].s, (size_t)g[i].n, sizeof *g[i].s, cmp_sample); // maj@k reads the first k
        int c = 0;
        for (int j = 0; j < g[i].n; j++) {
            c += g[i].s[j].correct, formatted += g[i].s[j].formatted, score += g[i].s[j].score;
            ans[at + j] = g[i].s[j].answer, cor[at + j] = g[i].s[j].correct;
        }
        pp[np++] = (PasskProblem){g[i].n, c, ans + at, cor + at};
        at += g[i].n;
    }
    int min_n = passk_min_samples(pp, np);
    json_t *o = json_object();
    json_object_set_new(o, "task", json_string(task_name(a->task)));
    json_object_set_new(o, "n_problems", json_integer(np));
    json_object_set_new(o, "n_problems_without_samples", json_integer(set->n - np));
    json_object_set_new(o, "n_samples", json_integer(n_samples));
    json_object_set_new(o, "pass@1", json_real(passk_fraction_mean(pp, np)));
    json_object_set_new(o, "mean_score", json_real(n_samples ? score / n_samples : 0));
    for (int t = 0; t < a->n_k && np; t++) {
        int k = a->k[t];
        if (k > min_n) continue; // pass@k needs k samples of every problem
        char key[32];
        snprintf(key, sizeof key, "pass@%d", k);
        json_object_set_new(o, key, json_real(passk_mean(pp, np, k)));
        snprintf(key, sizeof key, "maj@%d", k);
        json_object_set_new(o, key, json_real(passk_majority_mean(pp, np, k)));
    }
    free(pp), free(ans), free(cor);
    json_object_set_new(o, "format_rate", json_real(n_samples ? (double)formatted / n_samples : 0));
    int tok = n_samples > 0 && tokens_missing == 0;
    json_object_set_new(o, "length_unit", json_string(tok ? "tokens" : "chars"));
    json_object_set_new(o, "mean_length", json_real(n_samples ? len_sum[!tok] / n_samples : 0));
    json_object_set_new(o, "max_length", json_integer((json_int_t)len_max[!tok]));
    if (a->n_by) {
        json_t *by = json_object();
        for (int b = 0; b < a->n_by; b++)
            json_object_set_new(by, a->by[b], by_field(set, g, a->by[b]));
        json_object_set_new(o, "by", by);
    }
    return o;
}

static int write_summary(const Args *a, const json_t *s, DsErr *e) {
    char *text = json_dumps(s, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
    if (!text) return ds_errf(e, "cannot encode the summary");
    int rc = DS_OK;
    if (strcmp(a->summary, "-") == 0) {
        fprintf(stderr, "%s\n", text);
    } else {
        AtomicFile f;
        rc = atomic_open(&f, a->summary, e);
        if (rc == DS_OK) {
            fprintf(f.f, "%s\n", text);
            rc = atomic_commit(&f, e);
        }
    }
    free(text);
    return rc;
}

static int run_grade(const Args *a, DsErr *e) {
    TaskSet set;
    if (task_set_load(&set, a->task, a->problems, a->skip_bad, e) != DS_OK) return DS_ERR;
    Graded *g = ds_calloc((size_t)(set.n ? set.n : 1), sizeof *g);
    JsonlReader r = {0};
    AtomicFile out = {0};
    long n_samples = 0, tokens_missing = 0;
    double len_sum[2] = {0, 0}, len_max[2] = {0, 0}; // tokens, chars
    int rc = DS_ERR;
    if (jsonl_open(&r, a->completions, a->skip_bad, e) != DS_OK) goto done;
    if (atomic_open(&out, a->output, e) != DS_OK) goto done;
    Progress pg;
    progress_start(&pg, "grading", 0, "samples");
    json_t *o;
    int got;
    while ((got = jsonl_next(&r, &o, e)) == 1) {
        progress_update(&pg, (double)n_samples);
        int bad =
            grade_record(a, &set, g, &r, o, out.f, &tokens_missing, len_sum, len_max, n_samples, e);
        json_decref(o);
        if (bad) {
            if (!a->skip_bad || strstr(e->msg, "write error")) goto done;
            fputs("warning: ", stderr);
            cli_print_escaped(stderr, e->msg); // quotes the samples: no raw control characters
            fputs(" (skipped)\n", stderr);
            continue;
        }
        n_samples++;
    }
    progress_end(&pg, (double)n_samples);
    if (got != 0) goto done;
    if (atomic_commit(&out, e) != DS_OK) goto done;
    if (a->summary) {
        json_t *s = summarize(a, &set, g, n_samples, tokens_missing, len_sum, len_max);
        rc = write_summary(a, s, e);
        json_decref(s);
    } else {
        rc = DS_OK;
    }
done:
    if (rc != DS_OK) atomic_abort(&out);
    jsonl_close(&r);
    for (int i = 0; i < set.n; i++) {
        for (int j = 0; j < g[i].n; j++) free(g[i].s[j].answer);
        free(g[i].s);
    }
    free(g);
    task_set_free(&set);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// -m: generate the completions with a checkpoint, then grade them

typedef struct GenOut {
    const RolloutItem *items;
    FILE *out;
} GenOut;

static int gen_done(void *ctx, const RolloutSample *rs, DsErr *e) {
    GenOut *g = ctx;
    const GenResult *r = rs->gen;
    DsBuf text = {0};
    utf8_sanitize(r->text, r->text_len, &text);
    json_t *o = json_pack("{s:s,s:I,s:s%,s:i,s:s}", "id", g->items[rs->item].problem->id, "sample",
                          (json_int_t)rs->index, "completion", text.data ? text.data : "", text.len,
                          "n_tokens", r->n, "finish_reason", r->finish);
    dsbuf_free(&text);
    int bad = write_line(g->out, o);
    json_decref(o);
    return bad ? ds_errf(e, "temporary completions file: write error") : DS_OK;
}

static int run_model(Args *a, DsErr *e) {
    Checkpoint ck;
    if (ckpt_open(&ck, a->model, e)) return DS_ERR;
    cli_ckpt_warnings(prog, &ck);
    size_t tl;
    const char *tj = ckpt_tokenizer_json(&ck, &tl);
    Tokenizer *tok = tj ? tok_from_json(tj, tl, a->model, e) : NULL;
    TaskSet set = {0};
    int rc = DS_ERR;
    TokIds *prompts = NULL;
    RolloutItem *items = NULL;
    GenOut go = {0};
    Model_f32 m;
    int have_model = 0;
    Engine *en = NULL;
    char tmp[] = "/tmp/ds-eval-XXXXXX";
    int fd = -1;
    ChatTemplate ct = {0};
    if (!tok) {
        if (!tj) ds_errf(e, "%s: the model has no tokenizer.json", a->model);
        goto done;
    }
    if (a->model_tmpl && load_template(a, &ck, &ct, e)) goto done;
    RolloutTemplate rt = {a->tmpl, a->model_tmpl ? &ct : NULL};
    if (task_set_load(&set, a->task, a->problems, a->skip_bad, e)) goto done;
    prompts = ds_calloc((size_t)set.n + 1, sizeof *prompts);
    items = ds_calloc((size_t)set.n + 1, sizeof *items);
    int max_prompt = 0;
    for (int i = 0; i < set.n; i++) {
        if (rollout_prompt(tok, set.p[i], rt, &prompts[i], NULL, e)) goto done;
        items[i] = (RolloutItem){set.p[i], prompts[i].ids, (int)prompts[i].n, 0};
        max_prompt = DS_MAX(max_prompt, (int)prompts[i].n);
    }
    model_init_f32(&m, &ck.cfg, 0, max_prompt + a->max_tokens + 1);
    have_model = 1;
    if (ckpt_load_weights(&ck, &m, e)) goto done;
    EngineOpts eo = {.slots = a->batch, .max_len = max_prompt + a->max_tokens + 1, .max_rows = a->batch * 2 + 64};
    if (!(en = engine_new(&m, &eo, e))) goto done;
    fd = mkstemp(tmp);
    if (fd < 0 || !(go.out = fdopen(fd, "w+"))) {
        ds_errf(e, "%s: cannot create a temporary file", tmp);
        goto done;
    }
    go.items = items;
    // The chat template's eos_token under --template model, else the ids the model's own files
    // name (or its tokenizer's <|endoftext|>): ds-infer generate's choice without --eos.
    uint32_t eos[CKPT_MAX_EOS];
    int n_eos = rollout_eos(tok, rt, &ck, eos);
    GenConfig g = {.sp = {a->temperature, a->top_p, 0}, .max_tokens = a->max_tokens, .seed = a->seed,
                   .eos = eos, .n_eos = n_eos, .tok = tok, .prefill_chunk = 64};
    Progress pg;
    progress_start(&pg, "generate", (double)set.n * a->n, "samples");
    g.progress = &pg;
    GenStats st;
    int grc = rollout_run(en, &g, items, set.n, a->n, NULL, gen_done, &go, &st, e);
    progress_end(&pg, (double)st.samples);
    if (grc || fflush(go.out)) goto done;
    a->completions = tmp;
    rc = run_grade(a, e);
done:
    if (go.out) fclose(go.out);
    else if (fd >= 0) close(fd);
    if (fd >= 0) unlink(tmp);
    for (int i = 0; prompts && i < set.n; i++) tokids_free(&prompts[i]);
    free(prompts), free(items);
    engine_free(en);
    if (have_model) model_free_f32(&m);
    task_set_free(&set);
    chat_template_free(&ct);
    tok_free(tok);
    ckpt_close(&ck);
    return rc;
}

int main(int argc, char **argv) {
    Args a;
    parse_args(argc, argv, &a);
    DsErr e;
    int rc = a.prompts ? run_prompts(&a, &e) : a.model ? run_model(&a, &e) : run_grade(&a, &e);
    if (rc != DS_OK) cli_fail_err(prog, &e);
    return EXIT_OK;
}
