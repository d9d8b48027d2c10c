// sft_train.c — `train` of ds-sft and ds-distill: options, the model and data they name, the run.
#include "sft_train.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "text/chat_template.h"
#include "checkpoint/checkpoint.h"
#include "train/distill.h"
#include "data/sft_data.h"
#include "core/sha256.h"
#include "tool.h"
#include "train_cli.h"

enum {
    O_CONFIG = OPT_FIRST_TOOL_OPTION, O_TOK, O_DATA, O_VAL, O_TEMPLATE, O_EPOCHS, O_EOS, O_LOGITS, O_TEMP,
    O_ALPHA, O_TOKCFG
};

typedef struct Loaded {
    Checkpoint ck;
    Model_f32 m;
    Tokenizer *tok;
} Loaded;

static Tokenizer *ckpt_tokenizer(const char *prog, const Checkpoint *ck) {
    size_t n;
    const char *tj = ckpt_tokenizer_json(ck, &n);
    if (!tj) return NULL;
    DsErr e;
    Tokenizer *t = tok_from_json(tj, n, ck->path, &e);
    if (!t) cli_fail_err(prog, &e);
    return t;
}

// tokenizer_config.json for the model: --tokenizer-config, else the checkpoint's member, else the
// file beside --tokenizer. Fills *text (malloc'd) and *name; 0 when there is none.
static int model_tokenizer_config(const char *explicit_path, const Checkpoint *ck, const char *tokpath, char **text,
                                  size_t *len, char *name, size_t cap) {
    DsErr e;
    const TarMember *m = ck && ck->path ? ckpt_member(ck, "tokenizer_config.json") : NULL;
    if (!explicit_path && m) {
        *text = ds_malloc(m->size + 1);
        memcpy(*text, m->data, m->size);
        (*text)[m->size] = 0;
        *len = m->size;
        snprintf(name, cap, "%s: tokenizer_config.json", ck->path);
        return 1;
    }
    char path[4096];
    if (explicit_path) {
        snprintf(path, sizeof path, "%s", explicit_path);
    } else if (tokpath) {
        const char *slash = strrchr(tokpath, '/');
        snprintf(path, sizeof path, "%.*stokenizer_config.json", slash ? (int)(slash - tokpath + 1) : 0, tokpath);
    } else {
        return 0;
    }
    if (ds_read_file(path, text, len, &e)) return explicit_path ? -1 : 0;
    snprintf(name, cap, "%s", path);
    return 1;
}

static json_t *file_hash(const char *prog, const char *path) {
    if (!strcmp(path, "-")) return json_null();
    char *data, hex[65];
    size_t len;
    DsErr e;
    if (ds_read_file(path, &data, &len, &e)) cli_fail_err(prog, &e);
    sha256_hex(data, len, hex);
    free(data);
    return json_string(hex);
}

int sft_train_command(const char *prog, int argc, char **argv, int logits, void (*usage)(void),
                      volatile sig_atomic_t *stop) {
    static const struct option own[] = {
        {"help", 0, 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION}, {"model", 1, 0, 'm'},
        {"config", 1, 0, O_CONFIG}, {"tokenizer", 1, 0, O_TOK}, {"data", 1, 0, O_DATA}, {"val", 1, 0, O_VAL},
        {"template", 1, 0, O_TEMPLATE}, {"epochs", 1, 0, O_EPOCHS}, {"eos", 1, 0, O_EOS},
        {"logits", 0, 0, O_LOGITS}, {"teacher", 1, 0, 't'}, {"temperature", 1, 0, O_TEMP},
        {"alpha", 1, 0, O_ALPHA}, {"tokenizer-config", 1, 0, O_TOKCFG}, {0, 0, 0, 0}};
    struct option *opts = train_cli_options(own);
    TrainCli tc;
    train_cli_init(&tc);
    tc.o.eval_batches = 0; // 0: the whole validation set
    const char *base = NULL, *config = NULL, *tokpath = NULL, *data = NULL, *val = NULL, *eos_name = NULL;
    const char *teacher_path = NULL, *tokcfg_path = NULL;
    int model_tmpl = 0; // --template model: the chat template of the model's tokenizer_config.json
    PromptTemplate tmpl = TEMPLATE_PLAIN;
    const char *tmpl_name = "plain";
    long epochs = 0;
    int use_logits = 0, c;
    double temperature = 2.0, alpha = 0.5;
    DsErr e;
    while ((c = getopt_long(argc, argv, "m:o:t:", opts, NULL)) != -1) {
        if (train_cli_option(prog, &tc, c, optarg)) continue;
        switch (c) {
        case OPT_HELP: usage(); free(opts); return EXIT_OK;
        case OPT_VERSION: cli_print_version(prog); free(opts); return EXIT_OK;
        case 'm': base = optarg; break;
        case O_CONFIG: config = optarg; break;
        case O_TOK: tokpath = optarg; break;
        case O_DATA: data = optarg; break;
        case O_VAL: val = optarg; break;
        case O_TEMPLATE:
            model_tmpl = !strcmp(optarg, "model");
            if (!model_tmpl && task_template_from_name(optarg, &tmpl)) cli_usage_error(prog, "--template: plain, r1 or model");
            tmpl_name = optarg;
            break;
        case O_EPOCHS: epochs = cli_long(prog, "--epochs", optarg, 1, 1L << 30); break;
        case O_EOS: eos_name = optarg; break;
        case O_LOGITS: use_logits = 1; break;
        case 't': teacher_path = optarg; break;
        case O_TEMP: temperature = cli_double(prog, "--temperature", optarg, 1e-3, 1e3); break;
        case O_ALPHA: alpha = cli_double(prog, "--alpha", optarg, 0, 1); break;
        case O_TOKCFG: tokcfg_path = optarg; break;
        default: cli_usage_error(prog, "unknown option");
        }
    }
    free(opts);
    if (optind < argc) cli_usage_error(prog, "unexpected argument '%s'", argv[optind]);
    if (!logits && (use_logits || teacher_path)) cli_usage_error(prog, "--logits and -t belong to ds-distill train");
    if (use_logits && !teacher_path) cli_usage_error(prog, "--logits needs -t TEACHER.tar");
    if (teacher_path && !use_logits) cli_usage_error(prog, "-t TEACHER.tar is used with --logits");
    if (!data) cli_usage_error(prog, "train: --data is required");
    if (!base && !config && !tc.resume) cli_usage_error(prog, "train: -m MODEL, --config or --resume is required");
    if (base && config) cli_usage_error(prog, "train: -m and --config exclude each other");
    if (epochs && tc.steps_given) cli_usage_error(prog, "train: --epochs and --steps exclude each other");
    if (!tc.out) cli_usage_error(prog, "train: -o CKPT.tar is required");

    // The model, its tokenizer and where the weights come from.
    ModelConfig cfg;
    Checkpoint ck = {0}, bk = {0};
    Tokenizer *tok = NULL;
    if (tc.resume) {
        if (ckpt_open(&ck, tc.resume, &e)) cli_fail_err(prog, &e);
        cli_ckpt_warnings(prog, &ck);
        if (!ck.state) cli_fail(prog, "%s: not a training checkpoint (no state.json)", tc.resume);
        cfg = ck.cfg;
        tok = ckpt_tokenizer(prog, &ck);
    } else if (base) {
        if (ckpt_open(&bk, base, &e)) cli_fail_err(prog, &e);
        cli_ckpt_warnings(prog, &bk);
        cfg = bk.cfg;
        if (!tokpath) tok = ckpt_tokenizer(prog, &bk);
    } else if (config_load_warn(&cfg, config, cli_warn_config, (void *)prog, &e)) {
        cli_fail_err(prog, &e);
    }
    if (tc.resume && config) {
        ModelConfig c2;
        if (config_load(&c2, config, &e)) cli_fail_err(prog, &e);
        if (!config_equal(&c2, &cfg))
            cli_fail(prog, "%s: checkpoint was made with a different config than %s", tc.resume, config);
    }
    if (!tok && tokpath && !(tok = tok_load(tokpath, &e))) cli_fail_err(prog, &e);
    if (base && tokpath) { // a base model is fine-tuned only with the tokenizer it was trained with
        Tokenizer *own = ckpt_tokenizer(prog, &bk);
        if (own && distill_check_tokenizers(own, tok, cfg.vocab_size, cfg.vocab_size, &e))
            cli_fail(prog, "%s: --tokenizer %s differs from the model's tokenizer.json", base, tokpath);
        tok_free(own);
    }
    if (!tok) cli_fail(prog, "train: no tokenizer: give --tokenizer (or a model holding tokenizer.json)");
    if (tok_vocab_size(tok) > cfg.vocab_size)
        cli_fail(prog, "train: the tokenizer has %d ids but the model's vocab_size is %d", tok_vocab_size(tok),
                 cfg.vocab_size);
    // The model's chat template, and its tokenizer_config.json carried into the new checkpoint.
    char *tokcfg = NULL, tokcfg_name[4200];
    size_t tokcfg_len = 0;
    int has_tokcfg = model_tokenizer_config(tokcfg_path, tc.resume ? &ck : &bk, tokpath, &tokcfg, &tokcfg_len,
                                            tokcfg_name, sizeof tokcfg_name);
    if (has_tokcfg < 0) cli_fail(prog, "%s: cannot read it", tokcfg_path);
    ChatTemplate ct = {0};
    if (model_tmpl) {
        if (!has_tokcfg)
            cli_fail(prog, "--template model: no tokenizer_config.json in the model or beside --tokenizer "
                           "(give --tokenizer-config FILE)");
        if (chat_template_load(&ct, tokcfg, tokcfg_len, tokcfg_name, &e)) cli_fail_err(prog, &e);
        if (eos_name) cli_usage_error(prog, "--eos: with --template model turns end with tokenizer_config.json's eos_token");
        if (!ct.eos) cli_fail(prog, "%s: --template model needs an eos_token", tokcfg_name);
        eos_name = ct.eos;
        if (tok_token_id(tok, ct.eos) < 0 || !tok_is_special(tok, (uint32_t)tok_token_id(tok, ct.eos)))
            cli_fail(prog, "%s: eos_token '%s' is not a special token of the tokenizer", tokcfg_name, ct.eos);
    }
    // The base model's small files (its generation_config.json, chat template files) travel into
    // the new checkpoint, with the tokenizer_config.json this run uses. A base without a
    // generation_config.json (a model pretrained here) gets none.
    CkptCarry carry = {0};
    const Checkpoint *from = tc.resume ? &ck : bk.path ? &bk : NULL;
    if (from) ckpt_carry(from, 0, &carry);
    TarMember extra[DS_ARRAY_LEN(carry.m) + 1];
    int nx = 0;
    for (int i = 0; i < carry.n; i++)
        if (strcmp(carry.m[i].name, "tokenizer_config.json")) extra[nx++] = carry.m[i];
    if (has_tokcfg) extra[nx++] = (TarMember){"tokenizer_config.json", (uint8_t *)tokcfg, tokcfg_len};
    tc.o.extra = extra, tc.o.nextra = nx;
    int eos = tok_token_id(tok, eos_name ? eos_name : "<|endoftext|>");
    if (!eos_name && bk.path && bk.n_eos) eos = (int)bk.eos[0]; // the base model's own EOS
    if (eos < 0 && eos_name) {
        char *end;
        long v = strtol(eos_name, &end, 10);
        if (*end == 0 && v >= 0 && v < cfg.vocab_size) eos = (int)v;
    }
    if (eos < 0)
        cli_usage_error(prog, "--eos: '%s' is not a token of the tokenizer", eos_name ? eos_name : "<|endoftext|>");

    // Data: examples packed into rows; the step count from --epochs when given.
    SftSet train = {0}, vset = {0};
    if (model_tmpl ? sft_set_load_chat(&train, data, tok, &ct, tc.o.seq_len, &e)
                   : sft_set_load(&train, data, tok, tmpl, (uint32_t)eos, tc.o.seq_len, &e))
        cli_fail_err(prog, &e);
    if (train.skipped)
        fprintf(stderr, "%s: warning: %s: %ld examples longer than --seq-len %d skipped\n", prog, data,
                train.skipped, tc.o.seq_len);
    if (val && (model_tmpl ? sft_set_load_chat(&vset, val, tok, &ct, tc.o.seq_len, &e)
                           : sft_set_load(&vset, val, tok, tmpl, (uint32_t)eos, tc.o.seq_len, &e)))
        cli_fail_err(prog, &e);
    SftSource ts, vs;
    sft_source_init(&ts, &train, tc.seed, tc.o.batch, tc.o.seq_len, tc.o.accum, 1, eos);
    sft_source_init(&vs, &vset, tc.seed, tc.o.batch, tc.o.seq_len, 1, 0, eos);
    if (!tc.steps_given) tc.o.steps = sft_source_steps_for_epochs(&ts, epochs ? epochs : 1);
    if (tc.o.eval_batches == 0)
        tc.o.eval_batches = val ? (sft_source_epoch_rows(&vs, 0) + tc.o.batch - 1) / tc.o.batch : 1;
    train_cli_finish(prog, &tc);

    char th[65];
    tok_hash(tok, th);
    json_t *record = train_cli_record(&tc);
    json_object_set_new(record, "tokenizer_sha256", json_string(th));
    long ntok = 0;
    for (int i = 0; i < train.n; i++) ntok += train.ex[i].n;
    // Packing density: example tokens over the slots of epoch 0's rows.
    json_object_set_new(record, "data", json_pack("{s:s,s:o,s:i,s:I,s:I,s:I,s:I}", "path", data, "sha256",
                                                  file_hash(prog, data), "examples", train.n, "skipped",
                                                  (json_int_t)train.skipped, "tokens", (json_int_t)ntok,
                                                  "answer_tokens", (json_int_t)train.answer_tokens,
                                                  "rows_epoch0", (json_int_t)sft_source_epoch_rows(&ts, 0)));
    json_object_set_new(record, "template", json_string(tmpl_name));
    if (model_tmpl) {
        char ch[65];
        sha256_hex(tokcfg, tokcfg_len, ch);
        json_object_set_new(record, "tokenizer_config_sha256", json_string(ch));
    }
    json_object_set_new(record, "eos", json_integer(eos));
    json_object_set_new(record, "epochs", json_integer(epochs));
    if (use_logits)
        json_object_set_new(record, "logits", json_pack("{s:s,s:f,s:f}", "teacher", teacher_path,
                                                        "temperature", temperature, "alpha", alpha));
    if (tc.resume && train_cli_check_resume(record, &ck, &e)) cli_fail_err(prog, &e);

    Model_f32 m;
    model_init_f32(&m, &cfg, 1, tc.o.seq_len);
    m.precision = tc.prec; // before the trainer sizes its quantisation buffers
    if (tc.resume) {
        if (ckpt_load_weights(&ck, &m, &e)) cli_fail_err(prog, &e);
    } else if (base) {
        if (ckpt_load_weights(&bk, &m, &e)) cli_fail_err(prog, &e);
    } else {
        model_init_weights_f32(&m, tc.seed);
    }
    ckpt_close(&bk);

    Loaded teacher = {0};
    DistillLogits dl = {0};
    if (use_logits) {
        if (ckpt_open(&teacher.ck, teacher_path, &e)) cli_fail_err(prog, &e);
        cli_ckpt_warnings(prog, &teacher.ck);
        teacher.tok = ckpt_tokenizer(prog, &teacher.ck);
        if (distill_check_tokenizers(teacher.tok, tok, teacher.ck.cfg.vocab_size, cfg.vocab_size, &e)) {
            ds_err_prefix(&e, "%s", teacher_path);
            cli_fail_err(prog, &e);
        }
        model_init_f32(&teacher.m, &teacher.ck.cfg, 0, tc.o.seq_len);
        if (ckpt_load_weights(&teacher.ck, &teacher.m, &e)) cli_fail_err(prog, &e);
        distill_logits_init(&dl, &teacher.m, tc.o.batch, tc.o.seq_len, temperature, alpha);
        tc.o.loss = distill_logit_loss, tc.o.loss_ctx = &dl;
    }

    size_t tl;
    char *tj = tok_to_json(tok, &tl);
    int stopped;
    long step;
    int rc = train_cli_run(&tc, &m, tc.resume ? &ck : NULL, tj, tl, record, stop, sft_batch, &ts,
                           val ? sft_batch : NULL, &vs, &stopped, &step, &e);
    if (rc == DS_OK && stopped) fprintf(stderr, "%s: stopped at step %ld; checkpoint written to %s\n", prog, step, tc.out);
    if (use_logits) {
        distill_logits_free(&dl);
        model_free_f32(&teacher.m);
        tok_free(teacher.tok);
        ckpt_close(&teacher.ck);
    }
    free(tj);
    free(tokcfg);
    ckpt_carry_free(&carry);
    chat_template_free(&ct);
    ckpt_close(&ck);
    model_free_f32(&m);
    sft_source_free(&ts), sft_source_free(&vs);
    sft_set_free(&train), sft_set_free(&vset);
    json_decref(record);
    tok_free(tok);
    if (rc) cli_fail_err(prog, &e);
    return EXIT_OK;
}
