// rollout.c — problems to graded samples, with one random stream per (seed, id, index).
#include "rl/rollout.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/sha256.h"
#include "text/chat.h"

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

json_t *rollout_messages(const Problem *p, DsErr *e) {
    const json_t *sys = json_object_get(p->rec, "system");
    if (sys && !json_is_string(sys)) {
        ds_errf(e, "problem '%s': field 'system' must be a string", p->id);
        return NULL;
    }
    char *q = task_prompt(p, e);
    if (!q) return NULL;
    json_t *conv = json_array();
    if (sys) json_array_append_new(conv, json_pack("{s:s,s:O}", "role", "system", "content", sys));
    json_array_append_new(conv, json_pack("{s:s,s:s}", "role", "user", "content", q));
    free(q);
    return conv;
}

char *rollout_prompt_text(const Problem *p, RolloutTemplate t, char **user, DsErr *e) {
    if (user) *user = NULL;
    char *q = task_prompt(p, e);
    if (!q) return NULL;
    char *text = NULL;
    if (!t.chat) {
        text = task_apply_template(q, t.named);
    } else {
        // Through chat_render_model, as ds-infer generate renders a {"messages"} record, so that
        // both give the same text for the same conversation.
        json_t *conv = rollout_messages(p, e);
        if (conv) {
            json_t *rec = json_pack("{s:o}", "messages", conv);
            char where[300];
            snprintf(where, sizeof where, "problem '%.256s'", p->id);
            if (chat_render_model(rec, t.chat, where, &text, NULL, e)) text = NULL;
            json_decref(rec);
        }
    }
    if (text && user) *user = q;
    else free(q);
    return text;
}

int rollout_prompt(const Tokenizer *tok, const Problem *p, RolloutTemplate t, TokIds *ids, char **user,
                   DsErr *e) {
    memset(ids, 0, sizeof *ids);
    char *text = rollout_prompt_text(p, t, user, e);
    if (!text) return DS_ERR;
    tok_encode(tok, text, strlen(text), 1, ids);
    free(text);
    return DS_OK;
}

int rollout_template_load(ChatTemplate *ct, const Checkpoint *ck, DsErr *e) {
    memset(ct, 0, sizeof *ct);
    const TarMember *m = ckpt_member(ck, "tokenizer_config.json");
    if (!m) return ds_errf(e, "%s: --template model: the model has no tokenizer_config.json", ck->path);
    return chat_template_load(ct, (const char *)m->data, m->size, "tokenizer_config.json", e);
}

int rollout_eos(const Tokenizer *tok, RolloutTemplate t, const Checkpoint *ck, uint32_t *eos) {
    int id = t.chat && t.chat->eos && tok ? tok_token_id(tok, t.chat->eos) : -1;
    if (id >= 0) {
        eos[0] = (uint32_t)id;
        return 1;
    }
    memcpy(eos, ck->eos, sizeof(uint32_t) * (size_t)ck->n_eos);
    return ck->n_eos;
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
