// ds-infer — generation (batched, continuous batching, MTP speculative decoding) and scoring.
#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "text/chat.h"
#include "checkpoint/checkpoint.h"
#include "infer/chat_session.h"
#include "infer/generate.h"
#include "core/jsonl.h"
#include "core/progress.h"
#include "rl/rollout.h"
#include "infer/score.h"
#include "infer/serve.h"
#include "tool.h"
#include "text/utf8.h"

static const char *PROG = "ds-infer";

static void usage(void) {
    printf("Usage: ds-infer generate -m MODEL [options] [PROMPTS.jsonl|-]\n"
           "       ds-infer score -m MODEL [IDS.jsonl|-]\n"
           "       ds-infer serve -m MODEL [--host 127.0.0.1] [--port 8000] [options]\n"
           "       ds-infer chat -m MODEL [options]   (an interactive conversation; chat --help)\n"
           "MODEL is a checkpoint tar or a folder with config.json + model.safetensors (+ tokenizer.json).\n"
           "\n"
           "generate: reads {\"id\", \"prompt\"} or {\"id\", \"messages\": [...]} (or {\"id\", \"ids\": [...]})\n"
           "per line; prints one line per sample as it finishes: id, sample, completion, finish_reason,\n"
           "n_prompt_tokens, n_tokens, sum_logprob, time (other input fields pass through).\n"
           "  --n N [1]  --max-tokens N [256]  --temperature T [1]  --top-p P [1]  --top-k K [0]\n"
           "  --seed S [0]         a sample's randomness depends only on (seed, id, sample index)\n"
           "  --stop STR           stop string (repeatable); --eos TOKEN (repeatable; default: the model's eos_token_id)\n"
           "  --template plain|r1|model  [plain] chat template for prompts/messages (model: the\n"
           "                       model's tokenizer_config.json chat_template; its eos_token stops)\n"
           "  --batch N [16]       sequences decoded together   --prefill-chunk N [64]\n"
           "  --max-len N [1024]   positions per sequence\n"
           "  --attn absorbed|naive [absorbed]  MLA latent cache or expanded K/V cache\n"
           "  --speculative mtp    MTP drafts verified by the main model (greedy only)\n"
           "  --ordered            print samples in input order (identical output when split with\n"
           "                       parallel --pipe -k)\n"
           "  --ids --logprobs     include token ids / per-token logprobs\n"
           "  --stats FILE         JSON: tokens/s, cache bytes per token, MTP acceptance, prompt\n"
           "                       tokens shared between samples of one prompt\n"
           "  --no-prefix-share    prefill every sample's prompt itself (same samples, slower)\n"
           "  --threads N\n"
           "score: reads {\"id\", \"ids\": [...]} (or \"text\" with a tokenizer); prints\n"
           "{\"id\", \"logprobs\": [...]}: log p(ids[t] | ids[<t]) for t = 1..n-1 under the main head.\n"
           "serve: an OpenAI-compatible HTTP server (POST /v1/completions, /v1/chat/completions with\n"
           "\"stream\": true for server-sent events; GET /v1/models, /health); concurrent requests share\n"
           "the engine's batches. SIGINT/SIGTERM finish the requests in flight, then exit 0.\n"
           "  --host ADDR [127.0.0.1]  --port N [8000; 0: any free port]  --port-file FILE\n"
           "  --max-tokens N [256]     the most a request may ask for   --model-name NAME\n"
           "  --template plain|r1      chat messages -> prompt          --batch N [16]  --max-len N [1024]\n"
           "  --seed S                 stream of requests without \"seed\"  --eos TOKEN  --threads N\n"
           "  --max-connections N [64]\n");
}

enum {
    O_N = OPT_FIRST_TOOL_OPTION, O_MAXTOK, O_TEMP, O_TOPP, O_TOPK, O_SEED, O_STOP, O_EOS, O_TEMPLATE,
    O_BATCH, O_CHUNK, O_MAXLEN, O_ATTN, O_SPEC, O_ORDERED, O_IDS, O_LOGPROBS, O_STATS, O_THREADS,
    O_NOSHARE
};

typedef struct Loaded {
    Checkpoint ck;
    Model_f32 m;
    Tokenizer *tok;
} Loaded;

static void load_model(Loaded *L, const char *path, int max_len) {
    DsErr e;
    if (ckpt_open(&L->ck, path, &e)) cli_fail_err(PROG, &e);
    cli_ckpt_warnings(PROG, &L->ck);
    model_init_f32(&L->m, &L->ck.cfg, 0, max_len);
    if (ckpt_load_weights(&L->ck, &L->m, &e)) cli_fail_err(PROG, &e);
    size_t n;
    const char *tj = ckpt_tokenizer_json(&L->ck, &n);
    L->tok = tj ? tok_from_json(tj, n, path, &e) : NULL;
    if (tj && !L->tok) cli_fail_err(PROG, &e);
}

static void unload_model(Loaded *L) {
    tok_free(L->tok);
    model_free_f32(&L->m);
    ckpt_close(&L->ck);
}

// --template model: the chat template of the model's tokenizer_config.json.
static void load_chat_template(Loaded *L, const char *model, ChatTemplate *ct) {
    DsErr e;
    const TarMember *tcfg = ckpt_member(&L->ck, "tokenizer_config.json");
    if (!tcfg) cli_fail(PROG, "%s: --template model: the model has no tokenizer_config.json", model);
    if (chat_template_load(ct, (const char *)tcfg->data, tcfg->size, "tokenizer_config.json", &e)) cli_fail_err(PROG, &e);
}

// The ids that end a sample: --eos (token text or id); without it the template's turns end
// with its eos_token; else the ids the model's own files name (or its tokenizer's <|endoftext|>).
static int resolve_eos(const Loaded *L, const char *const *names, int n, const ChatTemplate *ct, uint32_t eos[16]) {
    for (int i = 0; i < n; i++) {
        int id = L->tok ? tok_token_id(L->tok, names[i]) : -1;
        char *end;
        long v = strtol(names[i], &end, 10);
        if (id < 0 && *end == 0 && v >= 0 && v < L->m.L.cfg.vocab_size) id = (int)v;
        if (id < 0) cli_usage_error(PROG, "--eos: '%s' is not a token of this model", names[i]);
        eos[i] = (uint32_t)id;
    }
    if (n == 0 && ct->eos && L->tok && tok_token_id(L->tok, ct->eos) >= 0) eos[n++] = (uint32_t)tok_token_id(L->tok, ct->eos);
    if (n == 0) memcpy(eos, L->ck.eos, sizeof(uint32_t) * (size_t)(n = L->ck.n_eos));
    return n;
}

// ---------------------------------------------------------------------------
// generate

typedef struct Job {     // one input record
    json_t *rec;
    char *id;
    TokIds ids;
    int remaining;       // samples not yet delivered
    json_t **outs;       // --ordered: lines waiting for their turn
    int nouts;
} Job;

typedef struct Run {
    JsonlReader rd;
    const Tokenizer *tok;
    PromptTemplate tmpl;
    const ChatTemplate *ct; // --template model: the model's tokenizer_config.json template
    int n, vocab, max_len, want_ids, want_lp, ordered;
    Job **jobs;          // in input order (--ordered keeps them until printed)
    long njobs, next_print, line;
    Job *cur;
    int cur_sample;
    FILE *out;
} Run;

static char *record_id(const json_t *rec, long line) {
    json_t *id = json_object_get(rec, "id");
    char buf[64];
    if (json_is_string(id)) return ds_strdup(json_string_value(id));
    if (json_is_integer(id)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(id));
        return ds_strdup(buf);
    }
    snprintf(buf, sizeof buf, "%ld", line);
    return ds_strdup(buf);
}

static void free_job(Job *j);

static int read_job(Run *r, DsErr *e) {
    json_t *rec;
    int got = jsonl_next(&r->rd, &rec, e);
    if (got <= 0) return got;
    char where[600];
    snprintf(where, sizeof where, "%s:%ld", jsonl_name(&r->rd), r->rd.line);
    Job *j = ds_calloc(1, sizeof *j);
    j->rec = rec;
    j->id = record_id(rec, ++r->line);
    json_t *ids = json_object_get(rec, "ids");
    if (json_is_array(ids)) {
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= r->vocab) {
                if (json_is_integer(v))
                    ds_errf(e, "%s: id '%s': ids[%zu] = %lld is not a token id of this model (vocab_size %d)",
                            where, j->id, i, (long long)json_integer_value(v), r->vocab);
                else
                    ds_errf(e, "%s: id '%s': ids[%zu] is not an integer token id", where, j->id, i);
                goto fail;
            }
            tokids_push(&j->ids, (uint32_t)json_integer_value(v));
        }
    } else {
        if (!r->tok) {
            ds_errf(e, "%s: the model has no tokenizer.json; give \"ids\"", where);
            goto fail;
        }
        char *prompt, *answer;
        if (r->ct ? chat_render_model(rec, r->ct, where, &prompt, &answer, e)
                  : chat_render(rec, r->tmpl, where, &prompt, &answer, e))
            goto fail;
        tok_encode(r->tok, prompt, strlen(prompt), 1, &j->ids);
        free(prompt), free(answer);
    }
    if (j->ids.n == 0) {
        ds_errf(e, "%s: id '%s': empty prompt", where, j->id);
        goto fail;
    }
    if (j->ids.n >= (size_t)r->max_len) {
        ds_errf(e, "%s: id '%s': prompt of %zu tokens does not fit --max-len %d (at most %d)", where, j->id,
                j->ids.n, r->max_len, r->max_len - 1);
        goto fail;
    }
    j->remaining = r->n;
    j->outs = ds_calloc((size_t)r->n, sizeof(json_t *));
    j->nouts = r->n;
    r->jobs = ds_realloc(r->jobs, sizeof(Job *) * (size_t)(r->njobs + 1));
    r->jobs[r->njobs++] = j;
    return 1;
fail:
    free_job(j);
    return DS_ERR;
}

static int next_request(void *ctx, GenRequest *req, DsErr *e) {
    Run *r = ctx;
    if (!r->cur || r->cur_sample == r->n) {
        int got = read_job(r, e);
        if (got <= 0) return got;
        r->cur = r->jobs[r->njobs - 1];
        r->cur_sample = 0;
    }
    Job *j = r->cur;
    rollout_request(req, j->ids.ids, (int)j->ids.n, j->id, r->cur_sample, j);
    r->cur_sample++;
    return 1;
}

static void free_job(Job *j) {
    json_decref(j->rec);
    free(j->id);
    tokids_free(&j->ids);
    for (int s = 0; j->outs && s < j->nouts; s++) json_decref(j->outs[s]);
    free(j->outs);
    free(j);
}

static int flush_ordered(Run *r, DsErr *e) {
    while (r->next_print < r->njobs && r->jobs[r->next_print] && r->jobs[r->next_print]->remaining == 0) {
        Job *j = r->jobs[r->next_print];
        for (int s = 0; s < r->n; s++) {
            if (jsonl_write(r->out, j->outs[s])) return ds_errf(e, "<stdout>: write error");
            json_decref(j->outs[s]);
            j->outs[s] = NULL;
        }
        if (fflush(r->out) != 0) return ds_errf(e, "<stdout>: write error: %s", strerror(errno));
        free_job(j);
        r->jobs[r->next_print++] = NULL;
    }
    return DS_OK;
}

static int on_done(void *ctx, const GenResult *g, DsErr *e) {
    Run *r = ctx;
    Job *j = g->req->user;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "sample", json_integer((json_int_t)g->req->sample));
    DsBuf text = {0};
    utf8_sanitize(g->text, g->text_len, &text); // a byte token can leave a character unfinished
    json_object_set_new(o, "completion", json_stringn(text.data ? text.data : "", text.len));
    dsbuf_free(&text);
    json_object_set_new(o, "finish_reason", json_string(g->finish));
    json_object_set_new(o, "n_prompt_tokens", json_integer(g->req->prompt_len));
    json_object_set_new(o, "n_tokens", json_integer(g->n));
    json_object_set_new(o, "sum_logprob", json_real(g->sum_logprob));
    json_object_set_new(o, "time", json_real(g->seconds));
    if (r->want_ids) {
        json_t *a = json_array();
        for (int i = 0; i < g->n; i++) json_array_append_new(a, json_integer(g->tokens[i]));
        json_object_set_new(o, "token_ids", a);
    }
    if (r->want_lp) {
        json_t *a = json_array();
        for (int i = 0; i < g->n; i++) json_array_append_new(a, json_real(g->logprobs[i]));
        json_object_set_new(o, "logprobs", a);
    }
    const char *k;
    json_t *v;
    json_object_foreach(j->rec, k, v) {
        if (strcmp(k, "prompt") && strcmp(k, "messages") && strcmp(k, "ids") && !json_object_get(o, k))
            json_object_set(o, k, v);
    }
    j->remaining--;
    if (r->ordered) {
        j->outs[g->req->sample] = o;
        return flush_ordered(r, e);
    }
    int bad = jsonl_write(r->out, o) || fflush(r->out) != 0;
    json_decref(o);
    if (j->remaining == 0) {
        for (long i = 0; i < r->njobs; i++)
            if (r->jobs[i] == j) r->jobs[i] = NULL;
        free_job(j);
    }
    return bad ? ds_errf(e, "<stdout>: write error") : DS_OK;
}

// The sampling options generate and chat share; each points at its own settings.
typedef struct SamplingArgs {
    SampleParams *sp;
    uint64_t *seed;
    int *max_tokens, min_max_tokens;
    const char **stops, **eos_names; // [64], [16]
    int *nstops, *neos;
} SamplingArgs;

static void sampling_option(const SamplingArgs *a, int c, const char *arg) {
    switch (c) {
    case O_MAXTOK: *a->max_tokens = (int)cli_long(PROG, "--max-tokens", arg, a->min_max_tokens, 1 << 24); break;
    case O_TEMP: a->sp->temperature = cli_double(PROG, "--temperature", arg, 0, 100); break;
    case O_TOPP: a->sp->top_p = cli_double(PROG, "--top-p", arg, 1e-9, 1); break;
    case O_TOPK: a->sp->top_k = (int)cli_long(PROG, "--top-k", arg, 0, 1 << 30); break;
    case O_SEED: *a->seed = cli_u64(PROG, "--seed", arg); break;
    case O_STOP:
        if (*a->nstops == 64 || !*arg) cli_usage_error(PROG, "--stop: at most 64 non-empty strings");
        a->stops[(*a->nstops)++] = arg;
        break;
    case O_EOS:
        if (*a->neos == 16) cli_usage_error(PROG, "--eos: at most 16");
        a->eos_names[(*a->neos)++] = arg;
        break;
    }
}

static int cmd_generate(int argc, char **argv) {
    static const struct option opts[] = {
        {"help", 0, 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION}, {"model", 1, 0, 'm'}, {"n", 1, 0, O_N},
        {"max-tokens", 1, 0, O_MAXTOK}, {"temperature", 1, 0, O_TEMP}, {"top-p", 1, 0, O_TOPP},
        {"top-k", 1, 0, O_TOPK}, {"seed", 1, 0, O_SEED}, {"stop", 1, 0, O_STOP}, {"eos", 1, 0, O_EOS},
        {"template", 1, 0, O_TEMPLATE}, {"batch", 1, 0, O_BATCH}, {"prefill-chunk", 1, 0, O_CHUNK},
        {"max-len", 1, 0, O_MAXLEN}, {"attn", 1, 0, O_ATTN}, {"speculative", 1, 0, O_SPEC},
        {"ordered", 0, 0, O_ORDERED}, {"ids", 0, 0, O_IDS}, {"logprobs", 0, 0, O_LOGPROBS},
        {"stats", 1, 0, O_STATS}, {"threads", 1, 0, O_THREADS}, {"no-prefix-share", 0, 0, O_NOSHARE},
        {0, 0, 0, 0}};
    const char *model = NULL, *stats = NULL, *tmpl = "plain";
    const char *stops[64], *eos_names[16];
    int nstops = 0, neos = 0, c;
    GenConfig g = {.sp = {1.0, 1.0, 0}, .max_tokens = 256, .prefill_chunk = 64};
    EngineOpts eo = {.slots = 16, .max_len = 1024};
    Run r = {.n = 1, .out = stdout};
    SamplingArgs so = {&g.sp, &g.seed, &g.max_tokens, 0, stops, eos_names, &nstops, &neos};
    while ((c = getopt_long(argc, argv, "m:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: usage(); return EXIT_OK;
        case OPT_VERSION: cli_print_version(PROG); return EXIT_OK;
        case 'm': model = optarg; break;
        case O_N: r.n = (int)cli_long(PROG, "--n", optarg, 1, 1 << 20); break;
        case O_MAXTOK: case O_TEMP: case O_TOPP: case O_TOPK: case O_SEED: case O_STOP: case O_EOS:
            sampling_option(&so, c, optarg);
            break;
        case O_TEMPLATE: tmpl = optarg; break;
        case O_BATCH: eo.slots = (int)cli_long(PROG, "--batch", optarg, 1, 4096); break;
        case O_CHUNK: g.prefill_chunk = (int)cli_long(PROG, "--prefill-chunk", optarg, 1, 1 << 20); break;
        case O_MAXLEN: eo.max_len = (int)cli_long(PROG, "--max-len", optarg, 2, 1 << 20); break;
        case O_ATTN:
            if (!strcmp(optarg, "naive")) eo.naive_attn = 1;
            else if (strcmp(optarg, "absorbed")) cli_usage_error(PROG, "--attn: absorbed or naive");
            break;
        case O_SPEC:
            if (strcmp(optarg, "mtp")) cli_usage_error(PROG, "--speculative: only 'mtp'");
            g.speculative = 1;
            break;
        case O_ORDERED: r.ordered = 1; break;
        case O_IDS: r.want_ids = 1; break;
        case O_LOGPROBS: r.want_lp = 1; break;
        case O_STATS: stats = optarg; break;
        case O_THREADS: cli_set_threads((int)cli_long(PROG, "--threads", optarg, 1, 1024)); break;
        case O_NOSHARE: g.no_prefix_share = 1; break;
        default: cli_usage_error(PROG, "unknown option");
        }
    }
    if (!model) cli_usage_error(PROG, "generate: -m MODEL is required");
    if (argc - optind > 1) cli_usage_error(PROG, "generate: at most one input file");
    int model_tmpl = !strcmp(tmpl, "model");
    if (!model_tmpl && task_template_from_name(tmpl, &r.tmpl)) cli_usage_error(PROG, "--template: plain, r1 or model");
    if (g.speculative && g.sp.temperature > 0)
        cli_usage_error(PROG, "--speculative mtp needs --temperature 0 (greedy)");
    Loaded L = {0};
    load_model(&L, model, eo.max_len);
    DsErr e;
    if (g.speculative && !L.m.L.nmtp) cli_fail(PROG, "%s: the model has no MTP layers", model);
    uint32_t eos[16];
    ChatTemplate ct = {0};
    if (model_tmpl) load_chat_template(&L, model, &ct);
    if (model_tmpl) r.ct = &ct;
    neos = resolve_eos(&L, eos_names, neos, &ct, eos);
    if ((nstops) && !L.tok) cli_fail(PROG, "%s: --stop needs a model with tokenizer.json", model);
    g.eos = eos, g.n_eos = neos, g.tok = L.tok, g.stops = stops, g.n_stops = nstops;
    eo.max_rows = eo.slots * 2 + g.prefill_chunk;
    Engine *en = engine_new(&L.m, &eo, &e);
    if (!en) cli_fail_err(PROG, &e);
    r.tok = L.tok;
    r.vocab = L.m.L.cfg.vocab_size;
    r.max_len = eo.max_len;
    const char *in = optind < argc ? argv[optind] : "-";
    if (jsonl_open(&r.rd, in, 0, &e)) cli_fail_err(PROG, &e);
    long nrec = jsonl_count_lines(in); // a total for the ETA when the input is a file
    Progress pg;
    progress_start(&pg, "generate", nrec > 0 ? (double)nrec * r.n : 0, "samples");
    g.progress = &pg;
    GenStats st;
    int rc = generate(en, &g, next_request, &r, on_done, &r, &st, &e);
    progress_end(&pg, (double)st.samples);
    if (rc) cli_fail_err(PROG, &e);
    if (stats) {
        json_t *j = json_pack("{s:I,s:I,s:I,s:f,s:f,s:I,s:s,s:i,s:I,s:I,s:f,s:I}", "samples", (json_int_t)st.samples,
                              "tokens", (json_int_t)st.tokens, "forwards", (json_int_t)st.forwards,
                              "seconds", st.seconds, "tokens_per_s", st.seconds > 0 ? st.tokens / st.seconds : 0,
                              "cache_bytes_per_token", (json_int_t)engine_cache_bytes_per_token(en),
                              "attn", eo.naive_attn ? "naive" : "absorbed", "batch", eo.slots,
                              "drafted", (json_int_t)st.drafted, "accepted", (json_int_t)st.accepted,
                              "acceptance", st.drafted ? (double)st.accepted / st.drafted : 0.0,
                              "prefix_shared_tokens", (json_int_t)st.shared);
        AtomicFile f;
        if (atomic_open(&f, stats, &e) || jsonl_write(f.f, j) || atomic_commit(&f, &e)) cli_fail_err(PROG, &e);
        json_decref(j);
    }
    jsonl_close(&r.rd);
    free(r.jobs);
    engine_free(en);
    chat_template_free(&ct);
    unload_model(&L);
    return EXIT_OK;
}

// ---------------------------------------------------------------------------
// score

static int cmd_score(int argc, char **argv) {
    static const struct option opts[] = {{"help", 0, 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION},
                                         {"model", 1, 0, 'm'}, {"threads", 1, 0, O_THREADS}, {0, 0, 0, 0}};
    const char *model = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "m:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: usage(); return EXIT_OK;
        case OPT_VERSION: cli_print_version(PROG); return EXIT_OK;
        case 'm': model = optarg; break;
        case O_THREADS: cli_set_threads((int)cli_long(PROG, "--threads", optarg, 1, 1024)); break;
        default: cli_usage_error(PROG, "unknown option");
        }
    }
    if (!model) cli_usage_error(PROG, "score: -m MODEL is required");
    Loaded L = {0};
    load_model(&L, model, 256); // the scorer grows the positions to the longest record
    DsErr e;
    int V = L.m.L.cfg.vocab_size;
    Scorer *sc = scorer_new(&L.m, 64, &e);
    if (!sc) cli_fail_err(PROG, &e);
    JsonlReader rd;
    const char *in = optind < argc ? argv[optind] : "-";
    if (jsonl_open(&rd, in, 0, &e)) cli_fail_err(PROG, &e);
    long nrec = jsonl_count_lines(in);
    Progress pg;
    progress_start(&pg, "score", nrec > 0 ? (double)nrec : 0, "records");
    json_t *rec;
    int got;
    long line = 0, scored = 0;
    while ((got = jsonl_next(&rd, &rec, &e)) == 1) {
        progress_update(&pg, (double)line);
        line++;
        TokIds ids = {0};
        json_t *a = json_object_get(rec, "ids");
        const char *text = json_string_value(json_object_get(rec, "text"));
        if (json_is_array(a)) {
            size_t i;
            json_t *v;
            json_array_foreach(a, i, v) {
                if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= V)
                    cli_fail(PROG, "%s:%ld: ids[%zu] is not a token id of this model", jsonl_name(&rd), rd.line, i);
                tokids_push(&ids, (uint32_t)json_integer_value(v));
            }
        } else if (text && L.tok) {
            tok_encode(L.tok, text, strlen(text), 0, &ids);
        } else {
            cli_fail(PROG, "%s:%ld: needs \"ids\" (or \"text\" with a model that has tokenizer.json)", jsonl_name(&rd), rd.line);
        }
        double *lp = ds_malloc(sizeof(double) * (ids.n ? ids.n : 1));
        if (scorer_run(sc, ids.ids, ids.n, lp, &e)) {
            progress_end(&pg, (double)line);
            ds_err_prefix(&e, "%s:%ld", jsonl_name(&rd), rd.line);
            cli_fail_err(PROG, &e);
        }
        scored += (long)ids.n;
        progress_status(&pg, "%.0f tokens/s", scored / fmax(ds_now() - pg.start, 1e-9));
        json_t *lps = json_array();
        for (size_t t = 1; t < ids.n; t++) json_array_append_new(lps, json_real(lp[t - 1]));
        free(lp);
        json_t *o = json_object();
        json_t *id = json_object_get(rec, "id");
        json_object_set_new(o, "id", id ? json_incref(id) : json_integer(line));
        json_object_set_new(o, "logprobs", lps);
        int bad = jsonl_write(stdout, o);
        json_decref(o);
        json_decref(rec);
        tokids_free(&ids);
        if (bad) cli_fail(PROG, "<stdout>: write error: %s", strerror(errno));
    }
    progress_end(&pg, (double)line);
    if (got < 0) cli_fail_err(PROG, &e);
    jsonl_close(&rd);
    scorer_free(sc);
    unload_model(&L);
    return EXIT_OK;
}

// ---------------------------------------------------------------------------
// serve

// Set by SIGINT/SIGTERM; serve_run finishes the requests in flight and returns.
static volatile sig_atomic_t serve_stop;
static void on_stop_signal(int sig) {
    (void)sig;
    serve_stop = 1;
}

static int cmd_serve(int argc, char **argv) {
    enum { S_HOST = OPT_FIRST_TOOL_OPTION, S_PORT, S_PORTFILE, S_NAME, S_MAXTOK, S_TEMPLATE, S_BATCH,
           S_MAXLEN, S_SEED, S_EOS, S_THREADS, S_CONN };
    static const struct option opts[] = {
        {"help", 0, 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION}, {"host", 1, 0, S_HOST}, {"port", 1, 0, S_PORT},
        {"port-file", 1, 0, S_PORTFILE}, {"model-name", 1, 0, S_NAME}, {"max-tokens", 1, 0, S_MAXTOK},
        {"template", 1, 0, S_TEMPLATE}, {"batch", 1, 0, S_BATCH}, {"max-len", 1, 0, S_MAXLEN},
        {"seed", 1, 0, S_SEED}, {"eos", 1, 0, S_EOS}, {"threads", 1, 0, S_THREADS},
        {"max-connections", 1, 0, S_CONN}, {0, 0, 0, 0}};
    const char *model = NULL, *tmpl = "plain", *eos_name = NULL;
    ServeOpts so = {.host = "127.0.0.1", .port = 8000, .max_tokens = 256, .max_connections = 64};
    EngineOpts eo = {.slots = 16, .max_len = 1024};
    int c;
    while ((c = getopt_long(argc, argv, "m:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: usage(); return EXIT_OK;
        case OPT_VERSION: cli_print_version(PROG); return EXIT_OK;
        case 'm': model = optarg; break;
        case S_HOST: so.host = optarg; break;
        case S_PORT: so.port = (int)cli_long(PROG, "--port", optarg, 0, 65535); break;
        case S_PORTFILE: so.port_file = optarg; break;
        case S_NAME: so.model_name = optarg; break;
        case S_MAXTOK: so.max_tokens = (int)cli_long(PROG, "--max-tokens", optarg, 1, 1 << 20); break;
        case S_TEMPLATE: tmpl = optarg; break;
        case S_BATCH: eo.slots = (int)cli_long(PROG, "--batch", optarg, 1, 4096); break;
        case S_MAXLEN: eo.max_len = (int)cli_long(PROG, "--max-len", optarg, 2, 1 << 20); break;
        case S_SEED: so.seed = cli_u64(PROG, "--seed", optarg); break;
        case S_EOS: eos_name = optarg; break;
        case S_THREADS: cli_set_threads((int)cli_long(PROG, "--threads", optarg, 1, 1024)); break;
        case S_CONN: so.max_connections = (int)cli_long(PROG, "--max-connections", optarg, 1, 4096); break;
        default: cli_usage_error(PROG, "unknown option");
        }
    }
    if (!model) cli_usage_error(PROG, "serve: -m MODEL is required");
    if (optind < argc) cli_usage_error(PROG, "serve: no input files");
    if (task_template_from_name(tmpl, &so.tmpl)) cli_usage_error(PROG, "--template: plain or r1");
    if (!so.model_name) so.model_name = model;
    Loaded L = {0};
    load_model(&L, model, eo.max_len);
    // --eos, else the ids the model's own files name (or its tokenizer's <|endoftext|>)
    uint32_t eos = 0;
    so.eos = L.ck.eos, so.n_eos = L.ck.n_eos;
    if (eos_name) {
        int id = L.tok ? tok_token_id(L.tok, eos_name) : -1;
        if (id < 0) cli_usage_error(PROG, "--eos: '%s' is not a token of this model", eos_name);
        eos = (uint32_t)id, so.eos = &eos, so.n_eos = 1;
    }
    eo.max_rows = eo.slots * 2 + 64;
    DsErr e;
    Engine *en = engine_new(&L.m, &eo, &e);
    if (!en) cli_fail_err(PROG, &e);
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); // a client that hangs up is the connection's error, not the server's end
    ServeStats st;
    int rc = serve_run(en, L.tok, &so, &serve_stop, &st, &e);
    if (rc) cli_fail_err(PROG, &e);
    json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:f, s:f}", "requests", (json_int_t)st.requests, "bad_requests",
                          (json_int_t)st.bad_requests, "prompt_tokens", (json_int_t)st.prompt_tokens,
                          "completion_tokens", (json_int_t)st.completion_tokens, "seconds", st.seconds,
                          "completion_tokens_per_s", st.seconds > 0 ? st.completion_tokens / st.seconds : 0.0);
    jsonl_write(stderr, j);
    json_decref(j);
    engine_free(en);
    unload_model(&L);
    return EXIT_OK;
}

// ---------------------------------------------------------------------------
// chat

// Counts SIGINTs: one stops the reply in progress; a second during it, or one at the prompt,
// ends the session.
static volatile sig_atomic_t chat_interrupts;
static void on_chat_interrupt(int sig) {
    (void)sig;
    chat_interrupts++;
}

// restart: a reply's writes go on after the signal; at the prompt, the read returns (EINTR).
static void chat_catch_sigint(int restart) {
    struct sigaction sa = {.sa_handler = on_chat_interrupt, .sa_flags = restart ? SA_RESTART : 0};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

static void chat_print(void *ctx, const char *piece, size_t len) {
    (void)ctx;
    fwrite(piece, 1, len, stdout);
    fflush(stdout); // token by token
}

// Whether the model's tokenizer_config.json has a chat template (the default --template then).
static int has_chat_template(const Loaded *L) {
    const TarMember *m = ckpt_member(&L->ck, "tokenizer_config.json");
    json_t *j = m ? json_loadb((const char *)m->data, m->size, 0, NULL) : NULL;
    int yes = json_is_string(json_object_get(j, "chat_template"));
    json_decref(j);
    return yes;
}

static void chat_usage(void) {
    printf("Usage: ds-infer chat -m MODEL [options]\n"
           "An interactive conversation: each line on stdin is a user turn; the reply streams to stdout\n"
           "as it is generated. On a terminal a prompt \"> \" is shown on stderr; off a terminal (piped\n"
           "lines) only the replies are printed, each followed by a newline. The whole conversation is\n"
           "rendered with the template every turn; the cache is reused where the rendering repeats the\n"
           "previous one. When the conversation and --max-tokens no longer fit --max-len, the oldest\n"
           "turns are dropped (the system message stays) with a note on stderr.\n"
           "Commands: /reset (forget the conversation; the system message stays), /system TEXT (/system\n"
           "alone: none), /quit (also end of input). Ctrl-C stops a reply; at the prompt, or twice\n"
           "during a reply, it ends the session. A refused line (too long, unknown command) is named on\n"
           "stderr and makes the exit status 1 at the end.\n"
           "  --system TEXT        system message\n"
           "  --template model|plain|r1  [model when the model's tokenizer_config.json has a\n"
           "                       chat_template, else plain; r1: one question per turn, no history]\n"
           "  --max-tokens N [256]  --temperature T [1]  --top-p P [1]  --top-k K [0]\n"
           "  --seed S [0]         turn t since the start or /reset samples from (seed, t)\n"
           "  --stop STR           stop string (repeatable); --eos TOKEN (repeatable; default as generate)\n"
           "  --max-len N [1024]   positions of the conversation   --prefill-chunk N [64]\n"
           "  --transcript FILE    JSON line per turn: messages (a generate record), prompt, reply,\n"
           "                       finish_reason, n_prompt_tokens, n_cached_tokens, n_tokens, dropped\n"
           "  --verbose            per turn on stderr: tokens prompted, reused from the cache, generated\n"
           "  --threads N\n");
}

static int cmd_chat(int argc, char **argv) {
    enum { C_SYSTEM = O_THREADS + 1, C_TRANSCRIPT, C_VERBOSE };
    static const struct option opts[] = {
        {"help", 0, 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION}, {"model", 1, 0, 'm'},
        {"system", 1, 0, C_SYSTEM}, {"template", 1, 0, O_TEMPLATE}, {"max-tokens", 1, 0, O_MAXTOK},
        {"temperature", 1, 0, O_TEMP}, {"top-p", 1, 0, O_TOPP}, {"top-k", 1, 0, O_TOPK}, {"seed", 1, 0, O_SEED},
        {"stop", 1, 0, O_STOP}, {"eos", 1, 0, O_EOS}, {"max-len", 1, 0, O_MAXLEN},
        {"prefill-chunk", 1, 0, O_CHUNK}, {"transcript", 1, 0, C_TRANSCRIPT}, {"verbose", 0, 0, C_VERBOSE},
        {"threads", 1, 0, O_THREADS}, {0, 0, 0, 0}};
    const char *model = NULL, *tmpl = NULL, *system = NULL, *transcript = NULL;
    const char *stops[64], *eos_names[16];
    int nstops = 0, neos = 0, verbose = 0, c;
    ChatOpts co = {.sp = {1.0, 1.0, 0}, .max_tokens = 256, .prefill_chunk = 64};
    EngineOpts eo = {.slots = 1, .max_len = 1024};
    SamplingArgs so = {&co.sp, &co.seed, &co.max_tokens, 1, stops, eos_names, &nstops, &neos};
    while ((c = getopt_long(argc, argv, "m:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: chat_usage(); return EXIT_OK;
        case OPT_VERSION: cli_print_version(PROG); return EXIT_OK;
        case 'm': model = optarg; break;
        case C_SYSTEM: system = optarg; break;
        case O_TEMPLATE: tmpl = optarg; break;
        case O_MAXTOK: case O_TEMP: case O_TOPP: case O_TOPK: case O_SEED: case O_STOP: case O_EOS:
            sampling_option(&so, c, optarg);
            break;
        case O_MAXLEN: eo.max_len = (int)cli_long(PROG, "--max-len", optarg, 3, 1 << 20); break;
        case O_CHUNK: co.prefill_chunk = (int)cli_long(PROG, "--prefill-chunk", optarg, 1, 1 << 20); break;
        case C_TRANSCRIPT: transcript = optarg; break;
        case C_VERBOSE: verbose = 1; break;
        case O_THREADS: cli_set_threads((int)cli_long(PROG, "--threads", optarg, 1, 1024)); break;
        default: cli_usage_error(PROG, "unknown option");
        }
    }
    if (!model) cli_usage_error(PROG, "chat: -m MODEL is required");
    if (optind < argc) cli_usage_error(PROG, "chat: no input files (turns are read from stdin)");
    if (tmpl && strcmp(tmpl, "model") && task_template_from_name(tmpl, &co.tmpl))
        cli_usage_error(PROG, "--template: model, plain or r1");
    if (co.max_tokens > eo.max_len - 2)
        cli_usage_error(PROG, "--max-tokens %d leaves no room for a conversation in --max-len %d (at most %d)",
                        co.max_tokens, eo.max_len, eo.max_len - 2);
    Loaded L = {0};
    load_model(&L, model, eo.max_len);
    if (!L.tok) cli_fail(PROG, "%s: chat needs a model with tokenizer.json", model);
    ChatTemplate ct = {0};
    if (tmpl ? !strcmp(tmpl, "model") : has_chat_template(&L)) {
        load_chat_template(&L, model, &ct);
        co.ct = &ct;
    }
    uint32_t eos[16];
    neos = resolve_eos(&L, eos_names, neos, &ct, eos);
    co.eos = eos, co.n_eos = neos, co.stops = stops, co.n_stops = nstops;
    co.on_text = chat_print, co.interrupt = &chat_interrupts;
    eo.max_rows = DS_MAX(co.prefill_chunk, 2);
    DsErr e;
    Engine *en = engine_new(&L.m, &eo, &e);
    if (!en) cli_fail_err(PROG, &e);
    ChatSession *cs = chat_session_new(en, L.tok, &co, &e);
    if (!cs) cli_fail_err(PROG, &e);
    chat_session_set_system(cs, system);
    AtomicFile tf = {0};
    if (transcript && atomic_open(&tf, transcript, &e)) cli_fail_err(PROG, &e);
    int tty = isatty(STDIN_FILENO), refused = 0;
    if (tty)
        fprintf(stderr, "%s chat: %s (template %s). /reset, /system TEXT, /quit; Ctrl-C stops a reply.\n", PROG,
                model, co.ct ? "model" : tmpl ? tmpl : "plain");
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        chat_interrupts = 0;
        chat_catch_sigint(0);
        if (tty) fputs("> ", stderr);
        ssize_t got = getline(&line, &cap, stdin);
        if (got < 0) {
            if (tty) fputc('\n', stderr);
            break; // end of input, or Ctrl-C at the prompt
        }
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if (line[0] == '/') {
            char *arg = line + strcspn(line, " ");
            if (*arg) *arg++ = 0;
            if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
            if (!strcmp(line, "/reset") && !*arg) chat_session_reset(cs);
            else if (!strcmp(line, "/system")) chat_session_set_system(cs, arg);
            else {
                cli_error(PROG, "unknown command '%s' (/reset, /system TEXT, /quit)", line);
                refused = 1;
            }
            continue;
        }
        chat_catch_sigint(1);
        ChatTurn t;
        if (chat_session_turn(cs, line, &t, &e)) {
            cli_error(PROG, "%s", e.msg);
            refused = 1;
            continue;
        }
        fputc('\n', stdout);
        if (fflush(stdout) != 0) cli_fail(PROG, "<stdout>: write error: %s", strerror(errno));
        if (t.dropped)
            cli_error(PROG, "the conversation no longer fits --max-len %d: dropped its oldest %d messages", eo.max_len,
                      t.dropped);
        if (tty && !strcmp(t.finish, "interrupted")) fprintf(stderr, "[interrupted]\n");
        if (verbose)
            fprintf(stderr, "[%d prompt tokens, %d from the cache, %d generated, %s]\n", t.n_prompt, t.n_cached,
                    t.n_tokens, t.finish);
        if (tf.f) {
            json_t *j = json_pack("{s:O,s:s,s:s%,s:s,s:i,s:i,s:i,s:i}", "messages", t.messages, "prompt", t.prompt,
                                  "reply", t.reply, t.reply_len, "finish_reason", t.finish, "n_prompt_tokens",
                                  t.n_prompt, "n_cached_tokens", t.n_cached, "n_tokens", t.n_tokens, "dropped",
                                  t.dropped);
            int bad = jsonl_write(tf.f, j) || fflush(tf.f) != 0;
            json_decref(j);
            if (bad) cli_fail(PROG, "%s: write error", transcript);
        }
        if (chat_interrupts >= 2) break;
    }
    free(line);
    if (tf.f && atomic_commit(&tf, &e)) cli_fail_err(PROG, &e);
    chat_session_free(cs);
    engine_free(en);
    chat_template_free(&ct);
    unload_model(&L);
    return refused ? EXIT_FAIL : EXIT_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) cli_usage_error(PROG, "missing command (generate, score, serve, chat)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage(), EXIT_OK;
    if (!strcmp(argv[1], "--version")) return cli_print_version(PROG), EXIT_OK;
    if (!strcmp(argv[1], "generate")) return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "score")) return cmd_score(argc - 1, argv + 1);
    if (!strcmp(argv[1], "serve")) return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "chat")) return cmd_chat(argc - 1, argv + 1);
    cli_usage_error(PROG, "unknown command '%s'", argv[1]);
}
