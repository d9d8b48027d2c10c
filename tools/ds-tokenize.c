// ds-tokenize — train, import, encode and decode byte-level BPE tokenizers (tokenizer.json), and
// write token shards.
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "text/bpe_train.h"
#include "tool.h"
#include "core/jsonl.h"
#include "core/progress.h"
#include "data/shard.h"
#include "text/tokenizer.h"

static const char *PROG = "ds-tokenize";

// SIGINT/SIGTERM while shards are written: stop, delete this run's shards, exit 1. (A SIGKILL
// leaves them, without the dataset record readers require; the next run with the prefix removes
// them.)
static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void catch_stop_signals(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_signal; // no SA_RESTART: a blocked read returns and the loop sees the flag
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int interrupted(DsErr *e, const char *prefix) {
    return ds_errf(e, "interrupted: no shards of %s left", prefix);
}

static void usage(FILE *f) {
    fprintf(
        f,
        "Usage: ds-tokenize COMMAND [options]\n"
        "Byte-level BPE tokenizers in Hugging Face tokenizer.json format.\n\n"
        "  train --vocab-size N [--special TOKEN]... [--pretokenizer gpt2|gpt4|digits]\n"
        "        [--field NAME] [--raw-byte-ids] -o TOKENIZER.json FILE...\n"
        "      Train on text files (each file one document) or JSONL (--field NAME: that\n"
        "      string field of every record is a document). Special tokens get the first ids\n"
        "      and split the text; they never take part in merges. --raw-byte-ids gives byte b\n"
        "      the id (number of specials) + b instead of the byte-level alphabet's order.\n"
        "  import-gpt2 VOCAB.json MERGES.txt -o TOKENIZER.json\n"
        "      Convert GPT-2's encoder.json + vocab.bpe.\n"
        "  encode -t TOKENIZER.json [--jsonl [--field NAME]] [--bos ID|TOKEN] [--eos ID|TOKEN]\n"
        "         [--no-special] [--add-special] (--jsonl-ids [-o FILE] | -o PREFIX\n"
        "         [--shard-tokens N]) [--source TEXT] [FILE...]\n"
        "      Each text file (default stdin) is one document; with --jsonl every record's\n"
        "      field (default \"text\") is one. --jsonl-ids prints one JSON array of ids per\n"
        "      document; otherwise shards PREFIX-000000.tar... are written (u16 when the\n"
        "      vocabulary fits, else u32) and, last, the record PREFIX.dataset.json that\n"
        "      readers require (an earlier run's shards with PREFIX are removed first).\n"
        "      Added tokens in the text become their ids, as in Hugging Face; --no-special\n"
        "      encodes special tokens' text as text (untrusted input; --allow-special, the\n"
        "      default, is kept for old scripts). --add-special applies the tokenizer's\n"
        "      post_processor (its BOS/EOS template).\n"
        "  shard -t TOKENIZER.json -o PREFIX [--shard-tokens N] [--source TEXT] [FILE...]\n"
        "      Pack JSON arrays of ids (one document per line, as encode --jsonl-ids prints)\n"
        "      into shards: `parallel --pipe -k ... encode --jsonl-ids | ds-tokenize shard`.\n"
        "  decode -t TOKENIZER.json [--newline] [-o FILE] [FILE...]\n"
        "  decode -t TOKENIZER.json --shard SPEC [--start N] [--count N] [-o FILE]\n"
        "      JSON arrays of ids, one per line, or a token range of a shard/dataset -> the raw\n"
        "      bytes of the text (--newline: a newline after each document).\n"
        "  inspect [--json] SHARD...\n"
        "      Print and verify shard manifests.\n\n"
        "Every command takes --help and --version. Exit: 0 ok, 1 failure, 2 usage error.\n");
}

enum {
    OPT_VOCAB = OPT_FIRST_TOOL_OPTION,
    OPT_SPECIAL,
    OPT_PRETOK,
    OPT_FIELD,
    OPT_RAW_BYTES,
    OPT_JSONL,
    OPT_JSONL_IDS,
    OPT_BOS,
    OPT_EOS,
    OPT_ALLOW_SPECIAL,
    OPT_NO_SPECIAL,
    OPT_ADD_SPECIAL,
    OPT_SHARD_TOKENS,
    OPT_SOURCE,
    OPT_NEWLINE,
    OPT_SHARD,
    OPT_START,
    OPT_COUNT,
    OPT_JSON,
};

static const struct option LONG_OPTS[] = {
    {"help", no_argument, 0, OPT_HELP},
    {"version", no_argument, 0, OPT_VERSION},
    {"vocab-size", required_argument, 0, OPT_VOCAB},
    {"special", required_argument, 0, OPT_SPECIAL},
    {"pretokenizer", required_argument, 0, OPT_PRETOK},
    {"field", required_argument, 0, OPT_FIELD},
    {"raw-byte-ids", no_argument, 0, OPT_RAW_BYTES},
    {"jsonl", no_argument, 0, OPT_JSONL},
    {"jsonl-ids", no_argument, 0, OPT_JSONL_IDS},
    {"bos", required_argument, 0, OPT_BOS},
    {"eos", required_argument, 0, OPT_EOS},
    {"allow-special", no_argument, 0, OPT_ALLOW_SPECIAL},
    {"no-special", no_argument, 0, OPT_NO_SPECIAL},
    {"add-special", no_argument, 0, OPT_ADD_SPECIAL},
    {"shard-tokens", required_argument, 0, OPT_SHARD_TOKENS},
    {"source", required_argument, 0, OPT_SOURCE},
    {"newline", no_argument, 0, OPT_NEWLINE},
    {"shard", required_argument, 0, OPT_SHARD},
    {"start", required_argument, 0, OPT_START},
    {"count", required_argument, 0, OPT_COUNT},
    {"json", no_argument, 0, OPT_JSON},
    {"tokenizer", required_argument, 0, 't'},
    {"output", required_argument, 0, 'o'},
    {0, 0, 0, 0},
};

// Options of every command; each command checks that it got only its own.
typedef struct Args {
    const char *cmd;
    int vocab_size;
    const char **specials;
    int n_specials;
    const char *pretok, *field, *tokenizer, *output, *bos, *eos, *source, *shard;
    int raw_byte_ids, jsonl, jsonl_ids, no_special, add_special, newline, json;
    uint64_t shard_tokens, start, count;
    int has_count;
    char **files;
    int n_files;
} Args;

static void parse_args(int argc, char **argv, Args *a, const char *allowed) {
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "t:o:", LONG_OPTS, NULL)) != -1) {
        if (c == '?') cli_usage_error(PROG, "%s: bad option", a->cmd);
        if (c == OPT_HELP) {
            usage(stdout);
            exit(EXIT_OK);
        }
        if (c == OPT_VERSION) {
            cli_print_version(PROG);
            exit(EXIT_OK);
        }
        // allowed lists the option names this command takes
        const char *name = c == 't' ? "tokenizer" : c == 'o' ? "output" : NULL;
        for (const struct option *o = LONG_OPTS; !name && o->name; o++)
            if (o->val == c) name = o->name;
        char key[64];
        snprintf(key, sizeof key, " %s ", name);
        if (!strstr(allowed, key)) cli_usage_error(PROG, "%s does not take --%s", a->cmd, name);
        switch (c) {
        case OPT_VOCAB:
            a->vocab_size = (int)cli_long(PROG, "--vocab-size", optarg, 1, 1 << 24);
            break;
        case OPT_SPECIAL:
            a->specials =
                ds_realloc(a->specials, (size_t)(a->n_specials + 1) * sizeof *a->specials);
            a->specials[a->n_specials++] = optarg;
            break;
        case OPT_PRETOK: a->pretok = optarg; break;
        case OPT_FIELD: a->field = optarg; break;
        case OPT_RAW_BYTES: a->raw_byte_ids = 1; break;
        case OPT_JSONL: a->jsonl = 1; break;
        case OPT_JSONL_IDS: a->jsonl_ids = 1; break;
        case OPT_BOS: a->bos = optarg; break;
        case OPT_EOS: a->eos = optarg; break;
        case OPT_ALLOW_SPECIAL: break; // the default now; kept so old scripts run
        case OPT_NO_SPECIAL: a->no_special = 1; break;
        case OPT_ADD_SPECIAL: a->add_special = 1; break;
        case OPT_SHARD_TOKENS: a->shard_tokens = cli_u64(PROG, "--shard-tokens", optarg); break;
        case OPT_SOURCE: a->source = optarg; break;
        case OPT_NEWLINE: a->newline = 1; break;
        case OPT_SHARD: a->shard = optarg; break;
        case OPT_START: a->start = cli_u64(PROG, "--start", optarg); break;
        case OPT_COUNT:
            a->count = cli_u64(PROG, "--count", optarg);
            a->has_count = 1;
            break;
        case OPT_JSON: a->json = 1; break;
        case 't': a->tokenizer = optarg; break;
        case 'o': a->output = optarg; break;
        }
    }
    a->files = argv + optind;
    a->n_files = argc - optind;
}

static Tokenizer *load_tokenizer(const Args *a) {
    if (!a->tokenizer) cli_usage_error(PROG, "%s: -t TOKENIZER.json is required", a->cmd);
    DsErr e;
    Tokenizer *t = tok_load(a->tokenizer, &e);
    if (!t) cli_fail_err(PROG, &e);
    return t;
}

// ---------------------------------------------------------------------------------------------
// Documents: whole text files, or one string field of each JSONL record

typedef struct DocStream {
    char **files;
    int n_files, next_file;
    const char *field; // NULL: text files
    JsonlReader r;
    int open;
    json_t *obj;
    char *text;
} DocStream;

// 1 and a document in (*s, *n), 0 at the end, DS_ERR with FILE:LINE.
static int doc_next(DocStream *d, const char **s, size_t *n, DsErr *e) {
    json_decref(d->obj);
    d->obj = NULL;
    free(d->text);
    d->text = NULL;
    for (;;) {
        if (!d->field) {
            if (d->next_file == d->n_files) return 0;
            if (ds_read_file(d->files[d->next_file++], &d->text, n, e) != DS_OK) return DS_ERR;
            *s = d->text;
            return 1;
        }
        if (!d->open) {
            if (d->next_file == d->n_files) return 0;
            if (jsonl_open(&d->r, d->files[d->next_file++], 0, e) != DS_OK) return DS_ERR;
            d->open = 1;
        }
        int rc = jsonl_next(&d->r, &d->obj, e);
        if (rc < 0) return DS_ERR;
        if (rc == 0) {
            jsonl_close(&d->r);
            d->open = 0;
            continue;
        }
        const json_t *v = json_object_get(d->obj, d->field);
        if (!json_is_string(v))
            return ds_errf(e, "%s:%ld: field '%s' %s", jsonl_name(&d->r), d->r.line, d->field,
                           v ? "must be a string" : "is missing");
        *s = json_string_value(v);
        *n = json_string_length(v);
        return 1;
    }
}

static void doc_close(DocStream *d) {
    json_decref(d->obj);
    free(d->text);
    if (d->open) jsonl_close(&d->r);
}

static char *stdin_list[] = {"-"};

// ---------------------------------------------------------------------------------------------
// Commands

static int cmd_train(int argc, char **argv) {
    Args a = {.cmd = "train"};
    parse_args(argc, argv, &a, " vocab-size special pretokenizer field raw-byte-ids output ");
    if (!a.vocab_size) cli_usage_error(PROG, "train: --vocab-size N is required");
    if (!a.output) cli_usage_error(PROG, "train: -o TOKENIZER.json is required");
    int kind = pretok_kind_from_name(a.pretok ? a.pretok : "gpt2");
    if (kind < 0) cli_usage_error(PROG, "train: --pretokenizer must be gpt2, gpt4 or digits");
    if (a.n_files == 0) a.files = stdin_list, a.n_files = 1;
    BpeTrainOpts o = {.vocab_size = a.vocab_size,
                      .specials = a.specials,
                      .n_specials = a.n_specials,
                      .pretok = (PretokKind)kind,
                      .raw_byte_ids = a.raw_byte_ids};
    DsErr e;
    BpeTrainer *b = bpe_trainer_new(&o, &e);
    if (!b) cli_fail_err(PROG, &e);
    DocStream d = {.files = a.files, .n_files = a.n_files, .field = a.field};
    const char *s;
    size_t n;
    int rc;
    while ((rc = doc_next(&d, &s, &n, &e)) == 1) bpe_trainer_add(b, s, n);
    doc_close(&d);
    free(a.specials);
    if (rc < 0) {
        bpe_trainer_free(b);
        cli_fail_err(PROG, &e);
    }
    Tokenizer *t = bpe_trainer_finish(b, &e);
    if (!t || tok_save(t, a.output, &e) != DS_OK) cli_fail_err(PROG, &e);
    if (tok_vocab_size(t) < a.vocab_size) // every pre-token is a single token already
        fprintf(stderr, "%s: warning: stopped at %d tokens: no pair left to merge\n", PROG,
                tok_vocab_size(t));
    tok_free(t);
    return EXIT_OK;
}

static int cmd_import_gpt2(int argc, char **argv) {
    Args a = {.cmd = "import-gpt2"};
    parse_args(argc, argv, &a, " output ");
    if (a.n_files != 2) cli_usage_error(PROG, "import-gpt2: expected VOCAB.json MERGES.txt");
    if (!a.output) cli_usage_error(PROG, "import-gpt2: -o TOKENIZER.json is required");
    DsErr e;
    Tokenizer *t = tok_import_gpt2(a.files[0], a.files[1], &e);
    if (!t || tok_save(t, a.output, &e) != DS_OK) cli_fail_err(PROG, &e);
    tok_free(t);
    return EXIT_OK;
}

// --bos/--eos: an id or a token's text.
static int resolve_token(const Tokenizer *t, const char *opt, const char *s) {
    if (!s) return -1;
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && !*end) {
        if (v < 0 || v >= tok_vocab_size(t) || !tok_token_bytes(t, (uint32_t)v, NULL))
            cli_usage_error(PROG, "%s: id %s is not a token of the tokenizer", opt, s);
        return (int)v;
    }
    int id = tok_token_id(t, s);
    if (id < 0) cli_usage_error(PROG, "%s: '%s' is not a token of the tokenizer", opt, s);
    return id;
}

static void put_ids(DsBuf *b, const uint32_t *ids, size_t n) {
    dsbuf_reserve(b, 12 * n + 4);
    char *p = b->data + b->len;
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        char tmp[12];
        int k = 0;
        uint32_t v = ids[i];
        do tmp[k++] = (char)('0' + v % 10);
        while (v /= 10);
        while (k) *p++ = tmp[--k];
    }
    *p++ = ']';
    *p++ = '\n';
    b->len = (size_t)(p - b->data);
}

static char *default_source(char **files, int n) {
    DsBuf b = {0};
    dsbuf_printf(&b, "ds-tokenize");
    for (int i = 0; i < n; i++) dsbuf_printf(&b, " %s", files[i]);
    return b.data;
}

static int cmd_encode(int argc, char **argv) {
    Args a = {.cmd = "encode"};
    parse_args(
        argc, argv, &a,
        " tokenizer jsonl field jsonl-ids bos eos allow-special no-special add-special output "
        "shard-tokens source ");
    if (a.field) a.jsonl = 1;
    if (a.jsonl && !a.field) a.field = "text";
    if (!a.jsonl_ids && !a.output)
        cli_usage_error(PROG, "encode: give --jsonl-ids (ids on stdout) or -o PREFIX (shards)");
    if (a.jsonl_ids && a.shard_tokens)
        cli_usage_error(PROG, "encode: --shard-tokens needs shards, not --jsonl-ids");
    Tokenizer *t = load_tokenizer(&a);
    int bos = resolve_token(t, "--bos", a.bos), eos = resolve_token(t, "--eos", a.eos);
    if (a.n_files == 0) a.files = stdin_list, a.n_files = 1;
    DsErr e;
    AtomicFile out = {0};
    ShardWriter *w = NULL;
    char *source = NULL;
    if (a.jsonl_ids) {
        if (atomic_open(&out, a.output ? a.output : "-", &e) != DS_OK) cli_fail_err(PROG, &e);
    } else {
        char hash[65];
        tok_hash(t, hash);
        source = a.source ? ds_strdup(a.source) : default_source(a.files, a.n_files);
        ShardWriterOpts so = {.prefix = a.output,
                              .dtype_bits = tok_vocab_size(t) <= 65536 ? 16 : 32,
                              .tokens_per_shard = a.shard_tokens,
                              .tokenizer_hash = hash,
                              .source = source};
        w = shard_writer_open(&so, &e);
        if (!w) cli_fail_err(PROG, &e);
        catch_stop_signals();
    }
    TokCache *cache = tok_cache_new();
    int flags = (a.no_special ? 0 : TOK_SPECIAL) | (a.add_special ? TOK_ADD_SPECIAL : 0);
    DocStream d = {.files = a.files, .n_files = a.n_files, .field = a.jsonl ? a.field : NULL};
    TokIds ids = {0};
    DsBuf line = {0};
    const char *s;
    size_t n;
    int rc;
    Progress pr;
    progress_start(&pr, "encode", 0, "docs");
    double ndocs = 0;
    while ((rc = doc_next(&d, &s, &n, &e)) == 1 && !stop_flag) {
        ids.n = 0;
        if (bos >= 0) tokids_push(&ids, (uint32_t)bos);
        tok_encode_cached(t, cache, s, n, flags, &ids);
        if (eos >= 0) tokids_push(&ids, (uint32_t)eos);
        if (w) {
            if (shard_writer_add(w, ids.ids, ids.n, &e) != DS_OK) {
                rc = DS_ERR;
                break;
            }
        } else {
            line.len = 0;
            put_ids(&line, ids.ids, ids.n);
            if (fwrite(line.data, 1, line.len, out.f) != line.len) {
                rc = ds_errf(&e, "%s: write error", a.output ? a.output : "<stdout>");
                break;
            }
        }
        progress_update(&pr, ++ndocs);
    }
    progress_end(&pr, ndocs);
    doc_close(&d);
    tokids_free(&ids);
    dsbuf_free(&line);
    tok_cache_free(cache);
    tok_free(t);
    free(source);
    if (w && stop_flag) rc = interrupted(&e, a.output);
    if (rc < 0) {
        if (w)
            shard_writer_abort(w);
        else
            atomic_abort(&out);
        cli_fail_err(PROG, &e);
    }
    if (w ? shard_writer_close(w, &e) : atomic_commit(&out, &e)) cli_fail_err(PROG, &e);
    return EXIT_OK;
}

// Reads "[1,2,3]" lines; 1 with the ids in *ids, 0 at the end, DS_ERR naming FILE:LINE.
typedef struct IdLines {
    FILE *f;
    const char *name;
    long line;
    char *buf;
    size_t cap;
} IdLines;

static int idlines_next(IdLines *r, const Tokenizer *t, TokIds *ids, DsErr *e) {
    for (;;) {
        ssize_t n = getline(&r->buf, &r->cap, r->f);
        if (n < 0) return ferror(r->f) ? ds_errf(e, "%s: read error", r->name) : 0;
        r->line++;
        size_t k = 0;
        while (k < (size_t)n &&
               (r->buf[k] == ' ' || r->buf[k] == '\t' || r->buf[k] == '\n' || r->buf[k] == '\r'))
            k++;
        if (k == (size_t)n) continue;
        json_error_t je;
        json_t *j = json_loadb(r->buf, (size_t)n, 0, &je);
        if (!j || !json_is_array(j)) {
            json_decref(j);
            return ds_errf(e, "%s:%ld: expected a JSON array of token ids", r->name, r->line);
        }
        ids->n = 0;
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            json_int_t id = json_integer_value(v);
            if (!json_is_integer(v) || id < 0 || id >= tok_vocab_size(t) ||
                !tok_token_bytes(t, (uint32_t)id, NULL)) {
                json_decref(j);
                return ds_errf(e, "%s:%ld: item %zu is not a token id of the tokenizer", r->name,
                               r->line, i + 1);
            }
            tokids_push(ids, (uint32_t)id);
        }
        json_decref(j);
        return 1;
    }
}

static int open_idlines(IdLines *r, const char *path, DsErr *e) {
    memset(r, 0, sizeof *r);
    r->f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!r->f) return ds_errf(e, "%s: cannot open", path);
    r->name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    return DS_OK;
}

static void close_idlines(IdLines *r) {
    if (r->f && r->f != stdin) fclose(r->f);
    free(r->buf);
}

static int cmd_shard(int argc, char **argv) {
    Args a = {.cmd = "shard"};
    parse_args(argc, argv, &a, " tokenizer output shard-tokens source ");
    if (!a.output) cli_usage_error(PROG, "shard: -o PREFIX is required");
    Tokenizer *t = load_tokenizer(&a);
    if (a.n_files == 0) a.files = stdin_list, a.n_files = 1;
    char hash[65];
    tok_hash(t, hash);
    char *source = a.source ? ds_strdup(a.source) : default_source(a.files, a.n_files);
    ShardWriterOpts so = {.prefix = a.output,
                          .dtype_bits = tok_vocab_size(t) <= 65536 ? 16 : 32,
                          .tokens_per_shard = a.shard_tokens,
                          .tokenizer_hash = hash,
                          .source = source};
    DsErr e;
    ShardWriter *w = shard_writer_open(&so, &e);
    free(source);
    if (!w) cli_fail_err(PROG, &e);
    catch_stop_signals();
    TokIds ids = {0};
    int rc = 0;
    for (int i = 0; i < a.n_files && rc >= 0 && !stop_flag; i++) {
        IdLines r;
        if ((rc = open_idlines(&r, a.files[i], &e)) < 0) break;
        while (!stop_flag && (rc = idlines_next(&r, t, &ids, &e)) == 1)
            if ((rc = shard_writer_add(w, ids.ids, ids.n, &e)) < 0) break;
        close_idlines(&r);
    }
    tokids_free(&ids);
    tok_free(t);
    if (stop_flag) rc = interrupted(&e, a.output);
    if (rc < 0) {
        shard_writer_abort(w);
        cli_fail_err(PROG, &e);
    }
    if (shard_writer_close(w, &e) != DS_OK) cli_fail_err(PROG, &e);
    return EXIT_OK;
}

static int cmd_decode(int argc, char **argv) {
    Args a = {.cmd = "decode"};
    parse_args(argc, argv, &a, " tokenizer newline output shard start count ");
    if (!a.shard && (a.start || a.has_count))
        cli_usage_error(PROG, "decode: --start/--count need --shard");
    if (a.shard && a.n_files) cli_usage_error(PROG, "decode: --shard takes no FILE arguments");
    Tokenizer *t = load_tokenizer(&a);
    DsErr e;
    AtomicFile out;
    if (atomic_open(&out, a.output ? a.output : "-", &e) != DS_OK) cli_fail_err(PROG, &e);
    TokIds ids = {0};
    DsBuf text = {0};
    int rc = 0;
    if (a.shard) {
        Dataset *d = dataset_open(a.shard, &e);
        if (!d) rc = DS_ERR;
        uint64_t total = d ? dataset_ntokens(d) : 0;
        if (d && a.start > total)
            rc = ds_errf(&e, "%s: --start %llu is past the end (%llu tokens)", a.shard,
                         (unsigned long long)a.start, (unsigned long long)total);
        uint64_t count = a.has_count ? a.count : total - DS_MIN(a.start, total);
        if (rc == 0 && count > total - a.start)
            rc = ds_errf(&e, "%s: --start %llu --count %llu is past the end (%llu tokens)", a.shard,
                         (unsigned long long)a.start, (unsigned long long)count,
                         (unsigned long long)total);
        enum { CHUNK = 1 << 16 };
        uint32_t *buf = ds_malloc(CHUNK * sizeof *buf);
        for (uint64_t pos = a.start; rc == 0 && pos < a.start + count; pos += CHUNK) {
            size_t n = (size_t)DS_MIN((uint64_t)CHUNK, a.start + count - pos);
            if ((rc = dataset_read(d, pos, n, buf, &e)) < 0) break;
            for (size_t i = 0; i < n && rc == 0; i++)
                if (!tok_token_bytes(t, buf[i], NULL))
                    rc = ds_errf(&e, "%s: token %llu: id %u is not in the tokenizer", a.shard,
                                 (unsigned long long)(pos + i), buf[i]);
            text.len = 0;
            tok_decode(t, buf, n, &text);
            if (rc == 0 && fwrite(text.data, 1, text.len, out.f) != text.len)
                rc = ds_errf(&e, "write error");
        }
        free(buf);
        dataset_close(d);
    } else {
        if (a.n_files == 0) a.files = stdin_list, a.n_files = 1;
        for (int i = 0; i < a.n_files && rc >= 0; i++) {
            IdLines r;
            if ((rc = open_idlines(&r, a.files[i], &e)) < 0) break;
            while ((rc = idlines_next(&r, t, &ids, &e)) == 1) {
                text.len = 0;
                tok_decode(t, ids.ids, ids.n, &text);
                if (a.newline) dsbuf_append(&text, "\n", 1);
                if (fwrite(text.data, 1, text.len, out.f) != text.len) {
                    rc = ds_errf(&e, "write error");
                    break;
                }
            }
            close_idlines(&r);
        }
    }
    tokids_free(&ids);
    dsbuf_free(&text);
    tok_free(t);
    if (rc < 0) {
        atomic_abort(&out);
        cli_fail_err(PROG, &e);
    }
    if (atomic_commit(&out, &e) != DS_OK) cli_fail_err(PROG, &e);
    return EXIT_OK;
}

static int cmd_inspect(int argc, char **argv) {
    Args a = {.cmd = "inspect"};
    parse_args(argc, argv, &a, " json ");
    if (a.n_files == 0) cli_usage_error(PROG, "inspect: expected SHARD...");
    int bad = 0;
    for (int i = 0; i < a.n_files; i++) {
        DsErr e;
        if (shard_inspect(a.files[i], stdout, a.json, &e) != DS_OK) {
            if (ferror(stdout)) cli_fail_err(PROG, &e); // output is gone: no point going on
            cli_error(PROG, "%s", e.msg);
            bad = 1;
        }
    }
    return bad ? EXIT_FAIL : EXIT_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) cli_usage_error(PROG, "missing COMMAND");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        cli_print_version(PROG);
        return EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"train", cmd_train},   {"import-gpt2", cmd_import_gpt2},
                {"encode", cmd_encode}, {"decode", cmd_decode},
                {"shard", cmd_shard},   {"inspect", cmd_inspect}};
    for (size_t i = 0; i < DS_ARRAY_LEN(cmds); i++)
        if (strcmp(cmd, cmds[i].name) == 0) return cmds[i].fn(argc - 1, argv + 1);
    cli_usage_error(PROG, "unknown command '%s'", cmd);
}
