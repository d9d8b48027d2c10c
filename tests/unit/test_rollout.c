// test_rollout.c — the rollout module: the one definition of a sample's random stream, GRPO's step
// seeds, rollout_run against hand-made generate requests, and the pass@k/maj@k means.
#include <jansson.h>

#include "eval/passk.h"
#include "core/rng.h"
#include "rl/rollout.h"
#include "unit.h"

// The stream is the first 8 bytes of sha256(id): ids are hashed, not numbered by position.
static void stream_definition(T *t) {
    CHECK(t, rollout_stream("q1") == 0xc75de8c1b7c3ae52ull); // sha256("q1") = c75de8c1b7c3ae52...
    CHECK(t, rollout_stream("q1") != rollout_stream("q2"));
    uint32_t p[2] = {3, 4};
    GenRequest r;
    int user;
    rollout_request(&r, p, 2, "q1", 5, &user);
    CHECK(t, r.prompt == p && r.prompt_len == 2 && r.stream == rollout_stream("q1") && r.sample == 5 && r.user == &user);
}

static void step_seeds(T *t) {
    CHECK(t, rollout_step_seed(1, 0) == rollout_step_seed(1, 0));
    CHECK(t, rollout_step_seed(1, 0) != rollout_step_seed(1, 1));
    CHECK(t, rollout_step_seed(1, 0) != rollout_step_seed(2, 0));
}

static const char *CFG =
    "{\"model_type\":\"qwen2\",\"vocab_size\":40,\"hidden_size\":24,\"intermediate_size\":32,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
    "\"initializer_range\":0.5,\"rope_theta\":100.0}";

typedef struct Got {
    int tokens[8][16], n[8];
} Got;

static int got_rollout(void *ctx, const RolloutSample *s, DsErr *e) {
    (void)e;
    Got *g = ctx;
    int k = s->item * 4 + s->index % 4; // 2 items x 4 samples; item 1 starts at sample 4
    g->n[k] = s->gen->n;
    memcpy(g->tokens[k], s->gen->tokens, sizeof(int) * (size_t)s->gen->n);
    return DS_OK;
}

typedef struct Hand {
    const uint32_t *prompt;
    int next;
    Got *g;
} Hand;

static int hand_next(void *ctx, GenRequest *req, DsErr *e) {
    (void)e;
    Hand *h = ctx;
    if (h->next == 8) return 0;
    int item = h->next / 4, k = h->next % 4;
    // item 1 is problem "b" from its sample 4 on
    rollout_request(req, h->prompt, 3, item ? "b" : "a", item ? 4 + k : k, (void *)(intptr_t)h->next);
    h->next++;
    return 1;
}

static int hand_done(void *ctx, const GenResult *r, DsErr *e) {
    (void)e;
    Hand *h = ctx;
    int k = (int)(intptr_t)r->req->user;
    h->g->n[k] = r->n;
    memcpy(h->g->tokens[k], r->tokens, sizeof(int) * (size_t)r->n);
    return DS_OK;
}

// rollout_run draws exactly the samples generate() draws for requests (seed, id, index), whatever
// the number of slots, so every tool that builds requests this way samples alike.
static void run_matches_requests(T *t) {
    ModelConfig c;
    DsErr e;
    CHECKF(t, config_from_string(&c, CFG, strlen(CFG), "cfg", &e) == DS_OK, "%s", e.msg);
    Model_f32 m;
    model_init_f32(&m, &c, 0, 64);
    model_init_weights_f32(&m, 3);
    json_t *ra = json_pack("{s:s,s:s,s:s}", "id", "a", "prompt", "x", "answer", "1");
    json_t *rb = json_pack("{s:s,s:s,s:s}", "id", "b", "prompt", "y", "answer", "2");
    Problem *pa = problem_from_json(TASK_MATH, ra, "p", 1, &e), *pb = problem_from_json(TASK_MATH, rb, "p", 2, &e);
    CHECK(t, pa && pb);
    if (!pa || !pb) return;
    uint32_t prompt[3] = {1, 2, 3};
    RolloutItem items[2] = {{pa, prompt, 3, 0}, {pb, prompt, 3, 4}};
    GenConfig gc = {.sp = {1.0, 1.0, 0}, .max_tokens = 12, .seed = 11, .prefill_chunk = 2};
    Got a = {0}, b = {0}, h = {0};
    GenStats st;
    EngineOpts o1 = {.slots = 1, .max_len = 32, .max_rows = 4}, o5 = {.slots = 5, .max_len = 32, .max_rows = 16};
    Engine *e1 = engine_new(&m, &o1, &e), *e5 = engine_new(&m, &o5, &e);
    CHECK(t, rollout_run(e1, &gc, items, 2, 4, NULL, got_rollout, &a, &st, &e) == DS_OK);
    CHECK(t, rollout_run(e5, &gc, items, 2, 4, NULL, got_rollout, &b, &st, &e) == DS_OK);
    Hand hd = {prompt, 0, &h};
    CHECK(t, generate(e5, &gc, hand_next, &hd, hand_done, &hd, &st, &e) == DS_OK);
    int differ = 0;
    for (int k = 0; k < 8; k++) {
        CHECK(t, a.n[k] == b.n[k] && a.n[k] == h.n[k]);
        CHECK(t, !memcmp(a.tokens[k], b.tokens[k], sizeof a.tokens[k]) && !memcmp(a.tokens[k], h.tokens[k], sizeof a.tokens[k]));
        differ += k && memcmp(a.tokens[k], a.tokens[0], sizeof a.tokens[k]) != 0;
    }
    CHECK(t, differ > 0); // the samples are not all one
    engine_free(e1), engine_free(e5);
    problem_free(pa), problem_free(pb);
    json_decref(ra), json_decref(rb);
    model_free_f32(&m);
}

static void passk_means(T *t) {
    const char *a1[4] = {"3", "5", "5", ""}, *a2[2] = {"7", "7"};
    int c1[4] = {1, 0, 0, 0}, c2[2] = {1, 1};
    PasskProblem p[2] = {{4, 1, a1, c1}, {2, 2, a2, c2}};
    CHECK_CLOSE(t, passk_fraction_mean(p, 2), (0.25 + 1.0) / 2, 1e-15);
    CHECK_CLOSE(t, passk_mean(p, 2, 2), (0.5 + 1.0) / 2, 1e-15); // 1 - C(3,2)/C(4,2) = 1/2
    CHECK_CLOSE(t, passk_majority_mean(p, 2, 2), (1.0 + 1.0) / 2, 1e-15); // "3" and "5" tie: the first
    CHECK_CLOSE(t, passk_majority_mean(p, 2, 1) + 0, 1.0, 1e-15);
    CHECK(t, passk_min_samples(p, 2) == 2 && passk_min_samples(p, 0) == 0);
    CHECK(t, passk_fraction_mean(p, 0) == 0);
}

UNIT_MAIN(CASE(stream_definition), CASE(step_seeds), CASE(run_matches_requests), CASE(passk_means))
