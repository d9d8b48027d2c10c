// ds-pretrain — train a DeepSeek-V3 (or llama/qwen2) model from scratch on token shards; export
// and import checkpoints as Hugging Face folders.
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/gguf.h"
#include "core/jsonl.h"
#include "core/sha256.h"
#include "text/tokenizer.h"
#include "tool.h"
#include "train_cli.h"

static const char *PROG = "ds-pretrain";

static void usage(void) {
    printf("Usage: ds-pretrain train --config CONFIG.json --data SHARDS -o CKPT.tar [options]\n"
           "       ds-pretrain train --resume CKPT.tar --data SHARDS -o CKPT.tar [same options]\n"
           "       ds-pretrain export CKPT DIR [--dtype bf16|f32|f16] [--max-shard-size 5GB]\n"
           "                            a Hugging Face folder: config.json, model.safetensors (or\n"
           "                            shards + index.json above the size), tokenizer and\n"
           "                            generation configs; DIR must be new or empty\n"
           "       ds-pretrain export --gguf [--dtype f16|bf16|f32] [--eos ID] CKPT FILE.gguf\n"
           "                            one GGUF file for llama.cpp (MTP layers left out)\n"
           "       ds-pretrain import DIR -o CKPT.tar   a Hugging Face folder (F32/BF16/F16 or FP8\n"
           "                            with block scales, one file or shards) into a checkpoint\n"
           "       ds-pretrain info CONFIG.json|CKPT    parameter counts (total, active per token)\n"
           "\n"
           "  --data SPEC          training shards: a file, a folder or a glob\n"
           "  --val SPEC           held-out shards for validation loss\n"
           "  --tokenizer FILE     tokenizer.json stored in the checkpoint (must match the shards')\n"
           "  --config FILE        the model (Hugging Face config.json: deepseek_v3, llama, qwen2)\n");
    train_cli_usage();
}

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

enum { O_CONFIG = OPT_FIRST_TOOL_OPTION, O_DATA, O_VAL, O_TOK };


static int cmd_train(int argc, char **argv) {
    static const struct option own[] = {{"help", 0, 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION},
                                        {"config", 1, 0, O_CONFIG}, {"data", 1, 0, O_DATA},
                                        {"val", 1, 0, O_VAL}, {"tokenizer", 1, 0, O_TOK}, {0, 0, 0, 0}};
    struct option *opts = train_cli_options(own);
    TrainCli tc;
    train_cli_init(&tc);
    const char *config = NULL, *data = NULL, *val = NULL, *tok = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (train_cli_option(PROG, &tc, c, optarg)) continue;
        switch (c) {
        case OPT_HELP: usage(); free(opts); return EXIT_OK;
        case OPT_VERSION: cli_print_version(PROG); free(opts); return EXIT_OK;
        case O_CONFIG: config = optarg; break;
        case O_DATA: data = optarg; break;
        case O_VAL: val = optarg; break;
        case O_TOK: tok = optarg; break;
        default: cli_usage_error(PROG, "unknown option");
        }
    }
    free(opts);
    if (optind < argc) cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    if (!data) cli_usage_error(PROG, "train: --data is required");
    if (!config && !tc.resume) cli_usage_error(PROG, "train: --config or --resume is required");
    train_cli_finish(PROG, &tc);

    DsErr e;
    ModelConfig cfg;
    Checkpoint ck = {0};
    if (tc.resume && ckpt_open(&ck, tc.resume, &e)) cli_fail_err(PROG, &e);
    if (tc.resume && !ck.state) cli_fail(PROG, "%s: not a training checkpoint (no state.json)", tc.resume);
    if (config && config_load_warn(&cfg, config, cli_warn_config, (void *)PROG, &e)) cli_fail_err(PROG, &e);
    if (tc.resume && config && !config_equal(&cfg, &ck.cfg))
        cli_fail(PROG, "%s: checkpoint was made with a different config than %s", tc.resume, config);
    if (tc.resume) cfg = ck.cfg;
    if (layout_check_memory(&cfg, 4, config ? config : tc.resume, &e)) cli_fail_err(PROG, &e);

    Dataset *train = dataset_open(data, &e), *vset = NULL;
    if (!train) cli_fail_err(PROG, &e);
    if (val && !(vset = dataset_open(val, &e))) cli_fail_err(PROG, &e);
    // An id past the embedding table would index outside it.
    if (dataset_check_vocab(train, cfg.vocab_size, &e) || (vset && dataset_check_vocab(vset, cfg.vocab_size, &e)))
        cli_fail_err(PROG, &e);
    char *tok_text = NULL;
    size_t tok_len = 0;
    json_t *tok_hash = json_null();
    if (tok) {
        if (ds_read_file(tok, &tok_text, &tok_len, &e)) cli_fail_err(PROG, &e);
        Tokenizer *t = tok_from_json(tok_text, tok_len, tok, &e);
        if (!t) cli_fail_err(PROG, &e);
        if (tok_vocab_size(t) > cfg.vocab_size)
            cli_fail(PROG, "%s: %d tokens do not fit the model's vocab_size %d", tok, tok_vocab_size(t), cfg.vocab_size);
        tok_free(t);
        char hex[65];
        json_decref(tok_hash);
        tok_hash = json_string(sha256_hex(tok_text, tok_len, hex));
        const char *dh = dataset_tokenizer_hash(train);
        if (*dh && strcmp(dh, hex))
            cli_fail(PROG, "%s: tokenizer hash differs from the one recorded in the shards of %s", tok, data);
    } else if (tc.resume) {
        const char *t = ckpt_tokenizer_json(&ck, &tok_len);
        if (t) tok_text = memcpy(ds_malloc(tok_len + 1), t, tok_len);
    }
    // What made this run; a resumed run must match it exactly to continue bit-identically.
    json_t *record = train_cli_record(&tc);
    json_object_set_new(record, "tokenizer_sha256", tok_hash);
    json_object_set_new(record, "data", json_pack("{s:s,s:I,s:s}", "spec", data, "tokens",
                                                  (json_int_t)dataset_ntokens(train), "tokenizer_hash",
                                                  dataset_tokenizer_hash(train)));
    if (tc.resume && train_cli_check_resume(record, &ck, &e)) cli_fail_err(PROG, &e);

    Model_f32 m;
    model_init_f32(&m, &cfg, 1, tc.o.seq_len);
    if (tc.resume) {
        if (ckpt_load_weights(&ck, &m, &e)) cli_fail_err(PROG, &e);
    } else {
        model_init_weights_f32(&m, tc.seed);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    WindowSource ws = {train, tc.seed, tc.o.batch, tc.o.seq_len, 0, ds_malloc(sizeof(uint32_t) * (tc.o.seq_len + 1))};
    WindowSource vs = {vset, tc.seed, tc.o.batch, tc.o.seq_len, 1, ds_malloc(sizeof(uint32_t) * (tc.o.seq_len + 1))};
    int stopped;
    long step;
    int rc = train_cli_run(&tc, &m, tc.resume ? &ck : NULL, tok_text, tok_len, record, &stop_flag,
                           window_batch, &ws, vset ? window_batch : NULL, &vs, &stopped, &step, &e);
    if (rc == DS_OK && stopped) fprintf(stderr, "%s: stopped at step %ld; checkpoint written to %s\n", PROG, step, tc.out);
    ckpt_close(&ck);
    model_free_f32(&m);
    free(ws.buf), free(vs.buf), free(tok_text);
    json_decref(record);
    dataset_close(train);
    dataset_close(vset);
    if (rc) cli_fail_err(PROG, &e);
    return EXIT_OK;
}

// Whether path holds JSON (its first non-blank byte is '{'): a config, not a checkpoint tar.
static int looks_like_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int c;
    while ((c = fgetc(f)) == ' ' || c == '\t' || c == '\n' || c == '\r') {
    }
    fclose(f);
    return c == '{';
}

static int cmd_info(int argc, char **argv) {
    if (argc != 2) cli_usage_error(PROG, "info: expected CONFIG.json (or a checkpoint)");
    DsErr e;
    ModelConfig c;
    Checkpoint ck = {0};
    // A JSON file is a config and its own error is the one to report; anything else is read as
    // a checkpoint (a tar or a folder).
    if (looks_like_json(argv[1])) {
        if (config_load_warn(&c, argv[1], cli_warn_config, (void *)PROG, &e)) cli_fail_err(PROG, &e);
    } else {
        if (ckpt_open(&ck, argv[1], &e)) cli_fail_err(PROG, &e);
        cli_ckpt_warnings(PROG, &ck);
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
    if (ck.path) {
        // The special tokens the tools default to (--eos overrides them).
        json_t *eos = json_array();
        for (int i = 0; i < ck.n_eos; i++) json_array_append_new(eos, json_integer(ck.eos[i]));
        json_object_set_new(j, "eos_token_id", eos);
        json_object_set_new(j, "bos_token_id", ck.bos >= 0 ? json_integer(ck.bos) : json_null());
    }
    int bad = jsonl_write(stdout, j) || fflush(stdout) != 0;
    json_decref(j);
    layout_free(&L);
    ckpt_close(&ck);
    if (bad) cli_fail(PROG, "<stdout>: write error: %s", strerror(errno));
    return EXIT_OK;
}

// export --gguf [--dtype T] [--eos ID] CKPT.tar FILE.gguf: one file for llama.cpp.
static int cmd_export_gguf(int argc, char **argv) {
    GgufExport o = {.type = GGUF_F16, .bos_id = -1, .eos_id = -1};
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--gguf")) continue;
        if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
            if (gguf_type_from_name(argv[++i], &o.type)) cli_usage_error(PROG, "--dtype: f32, f16 or bf16");
        } else if (!strcmp(argv[i], "--eos") && i + 1 < argc) {
            o.eos_id = (int)cli_long(PROG, "--eos", argv[++i], 0, INT32_MAX);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_usage_error(PROG, "export --gguf: unknown option '%s'", argv[i]);
        } else if (!in) in = argv[i];
        else if (!out) out = argv[i];
        else cli_usage_error(PROG, "export --gguf: expected CKPT.tar FILE.gguf");
    }
    if (!out) cli_usage_error(PROG, "export --gguf: expected CKPT.tar FILE.gguf");
    DsErr e;
    Checkpoint ck;
    if (ckpt_open(&ck, in, &e)) cli_fail_err(PROG, &e);
    cli_ckpt_warnings(PROG, &ck);
    Model_f32 m;
    model_init_f32(&m, &ck.cfg, 0, 1);
    size_t tl;
    const char *tok = ckpt_tokenizer_json(&ck, &tl);
    if (ckpt_load_weights(&ck, &m, &e) || gguf_export(&m, tok, tl, &o, out, &e)) cli_fail_err(PROG, &e);
    model_free_f32(&m);
    ckpt_close(&ck);
    return EXIT_OK;
}

// --max-shard-size: bytes with an optional decimal (KB, MB, GB) or binary (KiB, MiB, GiB) unit.
static uint64_t parse_size(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    static const struct {
        const char *unit;
        double mult;
    } units[] = {{"", 1},          {"B", 1},           {"KB", 1e3},           {"MB", 1e6},
                 {"GB", 1e9},      {"TB", 1e12},       {"KiB", 1024.0},       {"MiB", 1048576.0},
                 {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
    for (size_t i = 0; end != s && errno == 0 && i < DS_ARRAY_LEN(units); i++)
        if (!strcasecmp(end, units[i].unit) && v * units[i].mult >= 1 && v * units[i].mult < 1e18)
            return (uint64_t)(v * units[i].mult);
    cli_usage_error(PROG, "--max-shard-size: '%s' is not a size such as 5GB, 500MB or 1000000", s);
}

enum { O_DTYPE = OPT_FIRST_TOOL_OPTION, O_SHARD };

static int cmd_export(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--gguf")) return cmd_export_gguf(argc, argv);
    static const struct option opts[] = {{"help", 0, 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION},
                                         {"dtype", 1, 0, O_DTYPE}, {"max-shard-size", 1, 0, O_SHARD},
                                         {0, 0, 0, 0}};
    CkptExport o = {ST_BF16, CKPT_DEFAULT_SHARD};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: usage(); return EXIT_OK;
        case OPT_VERSION: cli_print_version(PROG); return EXIT_OK;
        case O_DTYPE:
            if (!strcmp(optarg, "bf16")) o.dtype = ST_BF16;
            else if (!strcmp(optarg, "f32")) o.dtype = ST_F32;
            else if (!strcmp(optarg, "f16")) o.dtype = ST_F16;
            else cli_usage_error(PROG, "--dtype: expected f32, bf16 or f16, not '%s'", optarg);
            break;
        case O_SHARD: o.max_shard = parse_size(optarg); break;
        default: cli_usage_error(PROG, "unknown option");
        }
    }
    if (argc - optind != 2) cli_usage_error(PROG, "export: expected CKPT DIR");
    DsErr e;
    Checkpoint ck;
    if (ckpt_open(&ck, argv[optind], &e) || ckpt_export_dir(&ck, argv[optind + 1], &o, &e)) cli_fail_err(PROG, &e);
    ckpt_close(&ck);
    return EXIT_OK;
}

static int cmd_import(int argc, char **argv) {
    if (argc != 4 || strcmp(argv[2], "-o")) cli_usage_error(PROG, "import: expected DIR -o CKPT.tar");
    DsErr e;
    {
        // The tokenizer must load as the tools will load it, not only count its ids.
        Checkpoint ck;
        if (ckpt_open(&ck, argv[1], &e)) cli_fail_err(PROG, &e);
        cli_ckpt_warnings(PROG, &ck);
        size_t tl;
        const char *tok = ckpt_tokenizer_json(&ck, &tl);
        Tokenizer *vt = tok ? tok_from_json(tok, tl, "tokenizer.json", &e) : NULL;
        if (tok && !vt) cli_fail_err(PROG, &e);
        tok_free(vt);
        ckpt_close(&ck);
    }
    if (ckpt_import(argv[1], argv[3], &e)) cli_fail_err(PROG, &e);
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
