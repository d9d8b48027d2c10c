// test_sft.c — SFT examples, masking, packing without attention across examples, the batch
// source's determinism, and the logit-distillation objective.
#include <jansson.h>

#include "train/distill.h"
#include "train/objective.h"
#include "text/pretokenize.h"
#include "core/rng.h"
#include "data/sft_data.h"
#include "train/train.h"
#include "unit.h"

static const char *CFG_V3 =
    "{\"model_type\":\"deepseek_v3\",\"vocab_size\":50,\"hidden_size\":32,\"intermediate_size\":48,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"q_lora_rank\":16,\"kv_lora_rank\":12,"
    "\"qk_nope_head_dim\":8,\"qk_rope_head_dim\":4,\"v_head_dim\":6,\"n_routed_experts\":8,"
    "\"n_shared_experts\":1,\"num_experts_per_tok\":2,\"moe_intermediate_size\":16,\"n_group\":2,"
    "\"topk_group\":1,\"first_k_dense_replace\":1,\"routed_scaling_factor\":2.5,"
    "\"num_nextn_predict_layers\":1,\"initializer_range\":0.2,\"rope_theta\":100.0}";
static const char *CFG_QWEN =
    "{\"model_type\":\"qwen2\",\"vocab_size\":50,\"hidden_size\":24,\"intermediate_size\":32,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
    "\"initializer_range\":0.2,\"rope_theta\":100.0}";

enum { V = 50, EOS = 49 };

static void build(T *t, Model_f32 *m, const char *json, int with_grads, uint64_t seed) {
    ModelConfig c;
    DsErr e;
    CHECKF(t, config_from_string(&c, json, strlen(json), "cfg", &e) == DS_OK, "%s", e.msg);
    model_init_f32(m, &c, with_grads, 64);
    model_init_weights_f32(m, seed);
}

// n examples of random lengths: prompt ids, answer ids, EOS.
static void make_set(SftSet *s, int n, uint64_t seed, int maxlen) {
    memset(s, 0, sizeof *s);
    Rng r;
    rng_seed(&r, seed);
    uint32_t ids[64];
    for (int i = 0; i < n; i++) {
        int P = 1 + (int)rng_below(&r, 6), A = 1 + (int)rng_below(&r, (uint64_t)(maxlen - P - 1));
        for (int j = 0; j < P + A; j++) ids[j] = (uint32_t)rng_below(&r, V - 1);
        ids[P + A] = EOS;
        sft_set_add(s, ids, P + A + 1, P);
    }
}

// A byte-level tokenizer (id = byte) with <|endoftext|> = 256.
static Tokenizer *byte_tokenizer(T *t) {
    DsErr e;
    Tokenizer *tk = tok_new(pretok_new_kind(PRETOK_GPT2, &e));
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        CHECK(t, tok_add_token(tk, (uint32_t)b, &c, 1, &e) == DS_OK);
    }
    CHECK(t, tok_add_added(tk, 256, "<|endoftext|>", 1, 1, &e) == DS_OK);
    CHECKF(t, tok_build(tk, &e) == DS_OK, "%s", e.msg);
    return tk;
}

static void records_to_examples(T *t) {
    Tokenizer *tk = byte_tokenizer(t);
    DsErr e;
    SftExample x;
    json_t *rec = json_loads("{\"prompt\":\"2+3?\",\"completion\":\" 5\"}", 0, NULL);
    CHECK(t, sft_example_from_record(&x, rec, tk, TEMPLATE_PLAIN, 256, "r:1", &e) == DS_OK);
    // plain template: the prompt as it is, then the answer, then EOS
    CHECK(t, x.prompt_len == 4 && x.n == 7 && x.ids[4] == ' ' && x.ids[5] == '5' && x.ids[6] == 256);
    free(x.ids);
    CHECK(t, sft_example_from_record(&x, rec, tk, TEMPLATE_R1, 256, "r:1", &e) == DS_OK);
    CHECK(t, x.prompt_len > 100 && x.n == x.prompt_len + 3 && x.ids[x.prompt_len - 1] == ':');
    free(x.ids);
    json_decref(rec);
    // messages: the final assistant turn is the answer; its text "<|endoftext|>" stays bytes
    rec = json_loads("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U\"},"
                     "{\"role\":\"assistant\",\"content\":\"<|endoftext|>\"}]}", 0, NULL);
    CHECK(t, sft_example_from_record(&x, rec, tk, TEMPLATE_PLAIN, 256, "r:2", &e) == DS_OK);
    const char *want = "System: S\nUser: U\nAssistant:";
    CHECK(t, x.prompt_len == (int)strlen(want) && x.n == x.prompt_len + 13 + 1);
    for (int i = 0; i < x.prompt_len; i++) CHECK(t, x.ids[i] == (uint32_t)(unsigned char)want[i]);
    for (int i = x.prompt_len; i < x.n - 1; i++) CHECK(t, x.ids[i] < 256);
    free(x.ids);
    json_decref(rec);
    // no answer: an error naming the record
    rec = json_loads("{\"prompt\":\"x\"}", 0, NULL);
    CHECK(t, sft_example_from_record(&x, rec, tk, TEMPLATE_PLAIN, 256, "data.jsonl:7", &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, "data.jsonl:7") != NULL, "%s", e.msg);
    json_decref(rec);
    tok_free(tk);
}

// Targets are -1 on the prompt and on the last token; the answer and EOS are trained. Changing the
// prompt's ids leaves the target array as it was.
static void masking_targets(T *t) {
    uint32_t a[] = {5, 6, 7, 8, 20, 21, 22, EOS}, b[] = {9, 1, 2, 3, 20, 21, 22, EOS};
    SftExample xa = {a, 8, 4, NULL}, xb = {b, 8, 4, NULL};
    int tk[8], tga[8], tgb[8], pos[8];
    sft_write_example(&xa, tk, tga, pos);
    sft_write_example(&xb, tk, tgb, pos);
    int want[] = {-1, -1, -1, 20, 21, 22, EOS, -1};
    for (int i = 0; i < 8; i++) CHECKF(t, tga[i] == want[i], "target %d = %d", i, tga[i]);
    CHECK(t, memcmp(tga, tgb, sizeof tga) == 0);
    for (int i = 0; i < 8; i++) CHECK(t, pos[i] == i && tk[i] == (int)b[i]);
}

// A byte tokenizer with ChatML's specials: <|endoftext|> 256, <|im_start|> 257, <|im_end|> 258.
static Tokenizer *chatml_tokenizer(T *t) {
    DsErr e;
    Tokenizer *tk = tok_new(pretok_new_kind(PRETOK_GPT2, &e));
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        CHECK(t, tok_add_token(tk, (uint32_t)b, &c, 1, &e) == DS_OK);
    }
    CHECK(t, tok_add_added(tk, 256, "<|endoftext|>", 1, 1, &e) == DS_OK);
    CHECK(t, tok_add_added(tk, 257, "<|im_start|>", 1, 1, &e) == DS_OK);
    CHECK(t, tok_add_added(tk, 258, "<|im_end|>", 1, 1, &e) == DS_OK);
    CHECKF(t, tok_build(tk, &e) == DS_OK, "%s", e.msg);
    return tk;
}

// Under a chat template every assistant turn is trained — its text and the <|im_end|> that ends
// it — and nothing else: not the system or user turns, not the "<|im_start|>assistant\n" cue.
static void chat_template_masks_assistant_turns(T *t) {
    static const char *cfg =
        "{\"eos_token\": \"<|im_end|>\", \"chat_template\": \"{% for m in messages %}<|im_start|>{{ m.role }}\\n"
        "{{ m.content }}<|im_end|>\\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\\n{% endif %}\"}";
    ChatTemplate ct;
    DsErr e;
    CHECKF(t, chat_template_load(&ct, cfg, strlen(cfg), "tokenizer_config.json", &e) == DS_OK, "%s", e.msg);
    Tokenizer *tk = chatml_tokenizer(t);
    json_t *rec = json_loads("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"u1\"},"
                             "{\"role\":\"assistant\",\"content\":\"a1\"},{\"role\":\"user\",\"content\":\"u2\"},"
                             "{\"role\":\"assistant\",\"content\":\"<think>r</think>a2\"}]}", 0, NULL);
    SftExample x;
    CHECKF(t, sft_example_from_chat(&x, rec, tk, &ct, "r:1", &e) == DS_OK, "%s", e.msg);
    // the trained tokens, read back in order, are exactly the two turns with their ends
    DsBuf trained = {0}, all = {0};
    for (int i = 0; i < x.n; i++) {
        if (x.mask[i]) tok_decode(tk, &x.ids[i], 1, &trained);
        tok_decode(tk, &x.ids[i], 1, &all);
    }
    dsbuf_append(&trained, "", 1), dsbuf_append(&all, "", 1);
    CHECKF(t, !strcmp(trained.data, "a1<|im_end|><think>r</think>a2<|im_end|>"), "%s", trained.data);
    CHECKF(t, !strcmp(all.data, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nu1<|im_end|>\n<|im_start|>assistant\n"
                                "a1<|im_end|>\n<|im_start|>user\nu2<|im_end|>\n<|im_start|>assistant\n<think>r</think>a2<|im_end|>"),
           "%s", all.data);
    CHECK(t, x.ids[x.n - 1] == 258 && x.mask[x.n - 1] == 1);
    // targets: -1 except where the next token is trained; the example's last token predicts nothing
    int *tk_ = malloc(sizeof(int) * (size_t)x.n), *tg = malloc(sizeof(int) * (size_t)x.n), *ps = malloc(sizeof(int) * (size_t)x.n);
    sft_write_example(&x, tk_, tg, ps);
    int n_targets = 0;
    for (int i = 0; i < x.n; i++) {
        int want = i + 1 < x.n && x.mask[i + 1] ? (int)x.ids[i + 1] : -1;
        CHECK(t, tg[i] == want);
        n_targets += tg[i] >= 0;
    }
    CHECK(t, n_targets == (int)strlen("a1<think>r</think>a2") + 2);
    free(tk_), free(tg), free(ps);
    free(x.ids), free(x.mask);
    dsbuf_free(&trained), dsbuf_free(&all);
    json_decref(rec);
    // a prompt/completion record is the conversation user: prompt, assistant: completion
    rec = json_loads("{\"prompt\":\"q\",\"completion\":\"c\"}", 0, NULL);
    CHECKF(t, sft_example_from_chat(&x, rec, tk, &ct, "r:2", &e) == DS_OK, "%s", e.msg);
    CHECK(t, x.n == x.prompt_len + 2 && x.ids[x.prompt_len] == 'c' && x.ids[x.n - 1] == 258);
    free(x.ids), free(x.mask);
    json_decref(rec);
    // a conversation without an assistant turn has nothing to train
    rec = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"u\"}]}", 0, NULL);
    CHECK(t, sft_example_from_chat(&x, rec, tk, &ct, "data.jsonl:3", &e) == DS_ERR);
    CHECKF(t, strstr(e.msg, "data.jsonl:3: needs an answer") != NULL, "%s", e.msg);
    json_decref(rec);
    tok_free(tk);
    chat_template_free(&ct);
}

// The released Qwen3 template: a turn before the last user message loses its <think> reasoning,
// the last keeps it; the mask follows the whole rendering.
static void qwen3_template_masks(T *t) {
    const char *dir = getenv("DS_TOKENIZERS");
    CHECK(t, dir != NULL);
    if (!dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/qwen3/tokenizer_config.json", dir);
    ChatTemplate ct;
    DsErr e;
    CHECKF(t, chat_template_load_file(&ct, path, &e) == DS_OK, "%s", e.msg);
    Tokenizer *tk = chatml_tokenizer(t);
    json_t *rec = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"u1\"},"
                             "{\"role\":\"assistant\",\"content\":\"<think>r1</think>a1\"},{\"role\":\"user\",\"content\":\"u2\"},"
                             "{\"role\":\"assistant\",\"content\":\"<think>r2</think>a2\"}]}", 0, NULL);
    SftExample x;
    CHECKF(t, sft_example_from_chat(&x, rec, tk, &ct, "r:1", &e) == DS_OK, "%s", e.msg);
    DsBuf trained = {0}, prompt = {0};
    for (int i = 0; i < x.n; i++) tok_decode(tk, &x.ids[i], 1, x.mask[i] ? &trained : &prompt);
    dsbuf_append(&trained, "", 1), dsbuf_append(&prompt, "", 1);
    CHECKF(t, !strcmp(trained.data, "a1<|im_end|><think>\nr2\n</think>\n\na2<|im_end|>"), "%s", trained.data);
    CHECKF(t, !strcmp(prompt.data, "<|im_start|>user\nu1<|im_end|>\n<|im_start|>assistant\n\n<|im_start|>user\nu2<|im_end|>\n"
                                   "<|im_start|>assistant\n"), "%s", prompt.data);
    free(x.ids), free(x.mask);
    dsbuf_free(&trained), dsbuf_free(&prompt);
    json_decref(rec);
    tok_free(tk);
    chat_template_free(&ct);
}

static void packing_rows_and_epochs(T *t) {
    SftSet s;
    make_set(&s, 37, 3, 20);
    int Tn = 24, B = 2;
    SftSource src;
    sft_source_init(&src, &s, 99, B, Tn, 1, 1, EOS);
    int *tk = malloc(sizeof(int) * B * Tn), *tg = malloc(sizeof(int) * B * Tn), *ps = malloc(sizeof(int) * B * Tn);
    for (int ep = 0; ep < 3; ep++) {
        SftEpoch p = {.epoch = -1};
        sft_pack_epoch(&src, ep, &p);
        int *seen = calloc((size_t)s.n, sizeof(int));
        for (int r = 0; r < p.nrows; r++) {
            int len = 0;
            for (int j = p.rows[r]; j < p.rows[r + 1]; j++) len += s.ex[p.order[j]].n, seen[p.order[j]]++;
            CHECK(t, len <= Tn && p.rows[r + 1] > p.rows[r]);
            // greedy: the next row's first example did not fit here
            if (r + 1 < p.nrows) CHECK(t, len + s.ex[p.order[p.rows[r + 1]]].n > Tn);
        }
        for (int i = 0; i < s.n; i++) CHECK(t, seen[i] == 1);
        CHECK(t, p.nrows == sft_source_epoch_rows(&src, ep));
        free(seen);
        free(p.order), free(p.rows);
    }
    // the order changes between epochs
    SftEpoch p0 = {.epoch = -1}, p1 = {.epoch = -1};
    sft_pack_epoch(&src, 0, &p0);
    sft_pack_epoch(&src, 1, &p1);
    CHECK(t, memcmp(p0.order, p1.order, sizeof(int) * (size_t)s.n) != 0);
    free(p0.order), free(p0.rows), free(p1.order), free(p1.rows);
    // rows: positions restart at 0 at each example, the last token and padding are not trained
    DsErr e;
    long trained = 0;
    long total_rows = sft_source_epoch_rows(&src, 0);
    for (long g = 0; g < (total_rows + B - 1) / B; g++) {
        CHECK(t, sft_batch(&src, g, 0, tk, tg, ps, &e) == DS_OK);
        for (int b = 0; b < B; b++) {
            if (g * B + b >= total_rows) continue; // reaches into the next epoch
            const int *P = ps + b * Tn, *G = tg + b * Tn, *K = tk + b * Tn;
            CHECK(t, P[0] == 0);
            for (int i = 0; i < Tn; i++) {
                int last = i + 1 == Tn || P[i + 1] == 0;
                if (last) CHECK(t, G[i] == -1);
                if (i > 0 && P[i] != 0) CHECK(t, P[i] == P[i - 1] + 1);
                if (G[i] >= 0) {
                    CHECK(t, G[i] == K[i + 1]);
                    trained++;
                }
                if (G[i] == EOS) CHECK(t, P[i + 1] == P[i] + 1 && (i + 2 == Tn || P[i + 2] == 0));
            }
        }
    }
    CHECKF(t, trained == s.answer_tokens, "trained %ld of %ld answer tokens", trained, s.answer_tokens);
    // a pure function of (step, micro): the same batch again after others, and from a fresh source
    int *tk2 = malloc(sizeof(int) * B * Tn), *tg2 = malloc(sizeof(int) * B * Tn), *ps2 = malloc(sizeof(int) * B * Tn);
    sft_batch(&src, 40, 0, tk, tg, ps, &e);
    sft_batch(&src, 3, 0, tk2, tg2, ps2, &e);
    SftSource fresh;
    sft_source_init(&fresh, &s, 99, B, Tn, 1, 1, EOS);
    sft_batch(&fresh, 40, 0, tk2, tg2, ps2, &e);
    CHECK(t, memcmp(tk, tk2, sizeof(int) * B * Tn) == 0 && memcmp(tg, tg2, sizeof(int) * B * Tn) == 0 &&
                 memcmp(ps, ps2, sizeof(int) * B * Tn) == 0);
    sft_source_free(&fresh);
    // validation: file order, each example once, then padding rows with nothing to train
    SftSource vs;
    sft_source_init(&vs, &s, 0, B, Tn, 1, 0, EOS);
    long vrows = sft_source_epoch_rows(&vs, 0), vtrained = 0;
    for (int i = 0; i < (vrows + B - 1) / B + 2; i++) {
        sft_batch(&vs, 0, i, tk, tg, ps, &e);
        for (int n = 0; n < B * Tn; n++) vtrained += tg[n] >= 0;
    }
    CHECK(t, vtrained == s.answer_tokens);
    CHECK(t, sft_source_steps_for_epochs(&src, 2) ==
                 (sft_source_epoch_rows(&src, 0) + sft_source_epoch_rows(&src, 1) + B - 1) / B);
    sft_source_free(&vs);
    sft_source_free(&src);
    free(tk), free(tg), free(ps), free(tk2), free(tg2), free(ps2);
    sft_set_free(&s);
}

// An example's logits in a packed row equal its logits alone (no attention across examples), and
// the loss of the packed batch is the cross-entropy over answer tokens only, computed here from
// the examples run one by one.
static void packed_equals_alone(T *t, const char *cfg) {
    Model_f32 m;
    build(t, &m, cfg, 1, 5);
    SftSet s;
    make_set(&s, 5, 8, 14);
    int Tn = 48, B = 2;
    SftSource src;
    sft_source_init(&src, &s, 1, B, Tn, 1, 1, EOS);
    int tk[96], tg[96], ps[96];
    DsErr e;
    CHECK(t, sft_source_epoch_rows(&src, 0) <= B);
    CHECK(t, sft_batch(&src, 0, 0, tk, tg, ps, &e) == DS_OK);
    Acts_f32 a;
    acts_init_f32(&a, &m, B, Tn);
    model_forward_f32(&m, &a, tk, ps, B, Tn);
    ModelLossStats st;
    model_loss_f32(&m, &a, tg, 0.3, 1e-4, 1.0, &st);
    double ce = 0, worst = 0;
    long nt = 0;
    int seen = 0;
    for (int n = 0; n < B * Tn; n++) {
        if (ps[n] != 0 || n % Tn + 1 >= Tn || ps[n + 1] != 1) continue; // an example starts here
        int ex = -1;
        for (int i = 0; i < s.n; i++)
            if (n % Tn + s.ex[i].n <= Tn) {
                int same = 1;
                for (int j = 0; j < s.ex[i].n; j++) same &= tk[n + j] == (int)s.ex[i].ids[j];
                if (same) ex = i;
            }
        if (ex < 0) continue; // padding
        seen++;
        const SftExample *x = &s.ex[ex];
        int at[64], atg[64], aps[64];
        sft_write_example(x, at, atg, aps);
        Acts_f32 one;
        acts_init_f32(&one, &m, 1, x->n);
        model_forward_f32(&m, &one, at, aps, 1, x->n);
        for (int i = 0; i < x->n; i++) {
            const float *p = a.logits + (size_t)(n + i) * V, *q = one.logits + (size_t)i * V;
            double mx = q[0], z = 0;
            for (int v = 0; v < V; v++) {
                worst = fmax(worst, fabs(p[v] - q[v]) / fmax(1.0, fabs(q[v])));
                mx = fmax(mx, q[v]);
            }
            if (atg[i] < 0) continue;
            CHECK(t, tg[n + i] == atg[i]);
            for (int v = 0; v < V; v++) z += exp(q[v] - mx);
            ce -= q[atg[i]] - mx - log(z);
            nt++;
        }
        acts_free_f32(&one);
    }
    CHECKF(t, seen >= s.n, "seen %d of %d examples", seen, s.n); // rows past epoch 0 repeat them
    CHECKF(t, worst <= 1e-5, "packed vs alone logits differ by %g", worst);
    CHECKF(t, st.ntokens == nt, "%ld %ld", st.ntokens, nt);
    CHECK_CLOSE(t, st.loss, ce / nt, 1e-5);
    acts_free_f32(&a);
    sft_source_free(&src);
    sft_set_free(&s);
    model_free_f32(&m);
}
static void packed_equals_alone_v3(T *t) { packed_equals_alone(t, CFG_V3); }
static void packed_equals_alone_qwen2(T *t) { packed_equals_alone(t, CFG_QWEN); }

// A teacher's forward and obj_distill through the trainer's LossFn: KL(teacher ‖ student) falls over
// steps; with alpha = 1 the objective is the plain cross-entropy of model_loss.
static double kl_of(Model_f32 *st, Model_f32 *te, Acts_f32 *as, Acts_f32 *at, const int *tk, const int *tg,
                    const int *ps, int B, int Tn) {
    model_forward_f32(st, as, tk, ps, B, Tn);
    model_forward_f32(te, at, tk, ps, B, Tn);
    double ce;
    return obj_distill(st, as, at->logits, tg, 1.0, 0.0, 1.0, &ce);
}

static int fixed_batch(void *ctx, long step, int micro, int *tokens, int *targets, int *pos, DsErr *e) {
    (void)step;
    return sft_batch(ctx, 0, micro, tokens, targets, pos, e);
}

static void distill_lowers_kl(T *t) {
    Model_f32 te, st;
    build(t, &te, CFG_V3, 0, 21);
    build(t, &st, CFG_QWEN, 1, 22);
    SftSet s;
    make_set(&s, 6, 4, 14);
    int B = 2, Tn = 48;
    SftSource src;
    sft_source_init(&src, &s, 1, B, Tn, 1, 1, EOS);
    DistillLogits dl;
    distill_logits_init(&dl, &te, B, Tn, 1.0, 0.0);
    TrainOpts o = {.batch = B, .seq_len = Tn, .accum = 1, .steps = 30, .beta1 = 0.9, .beta2 = 0.95,
                   .eps = 1e-8, .clip = 1.0, .loss = distill_logit_loss, .loss_ctx = &dl};
    o.sched = (Schedule){SCHED_CONSTANT, 1e-2, 1e-2, 0, 30, 0};
    int tk[96], tg[96], ps[96];
    DsErr e;
    sft_batch(&src, 0, 0, tk, tg, ps, &e);
    Acts_f32 as, at;
    acts_init_f32(&as, &st, B, Tn);
    acts_init_f32(&at, &te, B, Tn);
    double before = kl_of(&st, &te, &as, &at, tk, tg, ps, B, Tn);
    // the objective's loss at alpha 0 is T²·KL (T = 1), as measured here
    ModelLossStats ls;
    model_forward_f32(&st, &as, tk, ps, B, Tn);
    CHECK(t, distill_logit_loss(&dl, &st, &as, tg, 1.0, &ls, &e) == DS_OK);
    CHECK_CLOSE(t, ls.loss, before, 1e-9);
    CHECK(t, ls.ntokens > 0);
    // alpha 1: cross-entropy as model_loss computes it
    dl.alpha = 1.0;
    CHECK(t, distill_logit_loss(&dl, &st, &as, tg, 1.0, &ls, &e) == DS_OK);
    ModelLossStats ref;
    model_loss_f32(&st, &as, tg, 0, 0, 1.0, &ref);
    CHECK_CLOSE(t, ls.loss, ref.loss, 1e-5);
    dl.alpha = 0.0;
    Trainer tr;
    trainer_init(&tr, &st, &o);
    int stopped;
    CHECKF(t, trainer_run(&tr, fixed_batch, &src, NULL, NULL, &stopped, &e) == DS_OK, "%s", e.msg);
    trainer_free(&tr);
    double after = kl_of(&st, &te, &as, &at, tk, tg, ps, B, Tn);
    CHECKF(t, after < 0.5 * before, "KL %g -> %g", before, after);
    acts_free_f32(&as), acts_free_f32(&at);
    distill_logits_free(&dl);
    sft_source_free(&src);
    sft_set_free(&s);
    model_free_f32(&te), model_free_f32(&st);
}

static void keep_rule(T *t) {
    GradeResult g = {.correct = 1};
    CHECK(t, distill_keep(&g, 0.0, DISTILL_KEEP_CORRECT, 0) == 1);
    CHECK(t, distill_keep(&g, 0.0, DISTILL_KEEP_CORRECT, 1) == 0);
    CHECK(t, distill_keep(&g, 1.0, DISTILL_KEEP_CORRECT, 1) == 1);
    g.correct = 0;
    CHECK(t, distill_keep(&g, 1.0, DISTILL_KEEP_CORRECT, 0) == 0);
    CHECK(t, distill_keep(&g, 0.0, DISTILL_KEEP_ALL, 1) == 1);
}

UNIT_MAIN(CASE(records_to_examples), CASE(masking_targets), CASE(chat_template_masks_assistant_turns), CASE(qwen3_template_masks), CASE(packing_rows_and_epochs),
          CASE(packed_equals_alone_v3), CASE(packed_equals_alone_qwen2), CASE(distill_lowers_kl),
          CASE(keep_rule))
