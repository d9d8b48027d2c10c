// ds-pretrain — train a DeepSeek-V3 (or llama/qwen2) model from scratch on token shards; export
// and import checkpoints as Hugging Face folders.
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"
#include "jsonl.h"
#include "sha256.h"
#include "tokenizer.h"
#include "train_cli.h"

static const char *PROG = "ds-pretrain";

static void usage(void) {
    printf("Usage: ds-pretrain train --config CONFIG.json --data SHARDS -o CKPT.tar [options]\n"
           "       ds-pretrain train --resume CKPT.tar --data SHARDS -o CKPT.tar [same options]\n"
           "       ds-pretrain export CKPT.tar DIR     config.json + model.safetensors + tokenizer.json\n"
           "       ds-pretrain import DIR -o CKPT.tar\n"
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
    if (config && config_load(&cfg, config, &e)) cli_fail_err(PROG, &e);
    if (tc.resume && config && !config_equal(&cfg, &ck.cfg))
        cli_fail(PROG, "%s: checkpoint was made with a different config than %s", tc.resume, config);
    if (tc.resume) cfg = ck.cfg;

    Dataset *train = dataset_open(data, &e), *vset = NULL;
    if (!train) cli_fail_err(PROG, &e);
    if (val && !(vset = dataset_open(val, &e))) cli_fail_err(PROG, &e);
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
    Tokenizer *vt = tok ? tok_from_json(tok, tl, "tokenizer.json", &e) : NULL; // validate it
    if (tok && !vt) cli_fail_err(PROG, &e);
    tok_free(vt);
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
