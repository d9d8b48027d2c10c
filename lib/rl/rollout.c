// rollout.c — problems to graded samples, with one random stream per (seed, id, index).
#include "rl/rollout.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/sha256.h"

uint64_t rollout_stream(const char *id) {
    uint8_t d[32];
    Sha256 s;
    sha256_init(&s);
    sha256_update(&s, id, strlen(id));
    sha256_final(&s, d);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | d[i];
    return v;
}

void rollout_request(GenRequest *req, const uint32_t *prompt, int prompt_len, const char *id, int index,
                     void *user) {
    *req = (GenRequest){.prompt = prompt, .prompt_len = prompt_len, .stream = rollout_stream(id),
                        .sample = (uint64_t)index, .user = user};
}

uint64_t rollout_step_seed(uint64_t seed, long step) {
    Rng r;
    rng_derive(&r, seed, 0x6772706f, (uint64_t)step); // "grpo"
    return rng_u64(&r);
}

int rollout_prompt(const Tokenizer *tok, const Problem *p, PromptTemplate t, TokIds *ids, char **user,
                   DsErr *e) {
    memset(ids, 0, sizeof *ids);
    char *q = task_prompt(p, e);
    if (!q) return DS_ERR;
    char *text = task_apply_template(q, t);
    tok_encode(tok, text, strlen(text), 1, ids);
    free(text);
    if (user) *user = q;
    else free(q);
    return DS_OK;
}

typedef struct Feed {
    const RolloutItem *items;
    int n_items, n, next;
    const GradeOpts *go;
    RolloutFn done;
    void *ctx;
} Feed;

static int feed_next(void *ctx, GenRequest *req, DsErr *e) {
    (void)e;
    Feed *f = ctx;
    if (f->next == f->n_items * f->n) return 0;
    const RolloutItem *it = &f->items[f->next / f->n];
    rollout_request(req, it->prompt, it->prompt_len, it->problem->id, it->first + f->next % f->n,
                    (void *)(intptr_t)(f->next / f->n));
    f->next++;
    return 1;
}

static int feed_done(void *ctx, const GenResult *r, DsErr *e) {
    Feed *f = ctx;
    RolloutSample s = {.item = (int)(intptr_t)r->req->user, .index = (int)r->req->sample, .gen = r};
    if (f->go) {
        grade(f->items[s.item].problem, f->go, r->text, r->text_len, &s.grade);
        s.format = grade_format(r->text, r->text_len);
        s.lang = grade_lang(r->text, r->text_len, f->go->lang_script);
    }
    return f->done(f->ctx, &s, e);
}

int rollout_run(Engine *en, const GenConfig *c, const RolloutItem *items, int n_items, int n,
                const GradeOpts *go, RolloutFn done, void *ctx, GenStats *st, DsErr *e) {
    engine_refresh(en);
    // A prompt the engine cannot hold is the problem's fault: name it before generation starts.
    for (int i = 0; i < n_items; i++)
        if (items[i].prompt_len < 1 || items[i].prompt_len >= engine_max_len(en))
            return ds_errf(e, "problem '%s': a prompt of %d tokens does not fit (at most %d; raise --max-len)",
                           items[i].problem->id, items[i].prompt_len, engine_max_len(en) - 1);
    Feed f = {items, n_items, n, 0, go, done, ctx};
    return generate(en, c, feed_next, &f, feed_done, &f, st, e);
}
