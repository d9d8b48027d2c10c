// chat_session.c — conversation state, rendering, cache reuse and one sequence's decode loop.
#include "infer/chat_session.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "text/chat.h"
#include "text/utf8.h"

struct ChatSession {
    Engine *en;
    const Tokenizer *tok;
    ChatOpts o;
    int V, max_len, rows;
    char *system;
    json_t *history;   // user and assistant messages, oldest first
    int turn;          // turns since the start or the last reset
    TokIds cache;      // the tokens in slot 0's cache, in order
    TokIds ids;        // this turn's rendering
    json_t *conv;      // this turn's rendered conversation
    char *prompt;
    DsBuf text, reply; // the reply's raw bytes; what was streamed of them
    size_t hold;       // bytes held back in case they start a stop string
    int *rslot, *rtok, *rpos;
    float *logits, *scratch;
};

ChatSession *chat_session_new(Engine *en, const Tokenizer *tok, const ChatOpts *o, DsErr *e) {
    int max_len = engine_max_len(en);
    if (o->max_tokens < 1 || o->max_tokens >= max_len - 1) {
        ds_errf(e, "--max-tokens %d leaves no room for a conversation in --max-len %d (at most %d)", o->max_tokens,
                max_len, max_len - 2);
        return NULL;
    }
    if (!tok) {
        ds_errf(e, "chat needs a model with tokenizer.json");
        return NULL;
    }
    ChatSession *s = ds_calloc(1, sizeof *s);
    s->en = en, s->tok = tok, s->o = *o;
    s->V = engine_vocab(en), s->max_len = max_len;
    int chunk = o->prefill_chunk > 0 ? o->prefill_chunk : 64;
    s->rows = DS_MIN(chunk, engine_max_rows(en));
    s->history = json_array();
    for (int i = 0; i < o->n_stops; i++) s->hold = DS_MAX(s->hold, strlen(o->stops[i]) - 1);
    s->rslot = ds_calloc((size_t)s->rows, sizeof(int));
    s->rtok = ds_malloc(sizeof(int) * (size_t)s->rows), s->rpos = ds_malloc(sizeof(int) * (size_t)s->rows);
    s->logits = ds_malloc(sizeof(float) * (size_t)s->rows * (size_t)s->V);
    s->scratch = ds_malloc(sizeof(float) * 2 * (size_t)s->V);
    engine_truncate(en, 0, 0);
    return s;
}

void chat_session_free(ChatSession *s) {
    if (!s) return;
    free(s->system);
    json_decref(s->history);
    json_decref(s->conv);
    free(s->prompt);
    tokids_free(&s->cache), tokids_free(&s->ids);
    dsbuf_free(&s->text), dsbuf_free(&s->reply);
    free(s->rslot), free(s->rtok), free(s->rpos), free(s->logits), free(s->scratch);
    free(s);
}

void chat_session_reset(ChatSession *s) {
    json_array_clear(s->history);
    s->turn = 0;
}

// Valid UTF-8 for a JSON string: typed lines may hold anything.
static json_t *message(const char *role, const char *text, size_t len) {
    DsBuf b = {0};
    utf8_sanitize(text, len, &b);
    json_t *m = json_pack("{s:s,s:o}", "role", role, "content", json_stringn(b.data ? b.data : "", b.len));
    dsbuf_free(&b);
    return m;
}

void chat_session_set_system(ChatSession *s, const char *text) {
    free(s->system);
    s->system = NULL;
    if (text && *text) {
        json_t *m = message("system", text, strlen(text));
        s->system = ds_strdup(json_string_value(json_object_get(m, "content")));
        json_decref(m);
    }
}

// Renders system + history into s->conv, s->prompt and s->ids.
static int render(ChatSession *s, DsErr *e) {
    json_decref(s->conv);
    free(s->prompt);
    s->prompt = NULL;
    s->conv = json_array();
    if (s->system) json_array_append_new(s->conv, json_pack("{s:s,s:s}", "role", "system", "content", s->system));
    json_array_extend(s->conv, s->history);
    json_t *rec = json_pack("{s:O}", "messages", s->conv);
    char where[64];
    snprintf(where, sizeof where, "turn %d", s->turn + 1);
    int rc = s->o.ct ? chat_render_model(rec, s->o.ct, where, &s->prompt, NULL, e)
                     : chat_render(rec, s->o.tmpl, where, &s->prompt, NULL, e);
    json_decref(rec);
    if (rc) return DS_ERR;
    s->ids.n = 0;
    tok_encode(s->tok, s->prompt, strlen(s->prompt), TOK_SPECIAL, &s->ids); // as ds-infer generate encodes
    return DS_OK;
}

// Drops the oldest user message and the assistant reply after it; how many went.
static int drop_oldest(json_t *history) {
    int n = 0;
    json_array_remove(history, 0), n++;
    const char *role = json_string_value(json_object_get(json_array_get(history, 0), "role"));
    if (role && !strcmp(role, "assistant")) json_array_remove(history, 0), n++;
    return n;
}

// Streams text[sent..upto) (sanitized) and records it as the reply.
static void stream_to(ChatSession *s, size_t *sent, size_t upto) {
    if (upto <= *sent) return;
    size_t old = s->reply.len;
    utf8_sanitize(s->text.data + *sent, upto - *sent, &s->reply);
    *sent = upto;
    if (s->o.on_text && s->reply.len > old) s->o.on_text(s->o.text_ctx, s->reply.data + old, s->reply.len - old);
}

static int interrupted(const ChatSession *s) { return s->o.interrupt && *s->o.interrupt; }

static int is_eos(const ChatOpts *o, int t) {
    for (int i = 0; i < o->n_eos; i++)
        if (o->eos[i] == (uint32_t)t) return 1;
    return 0;
}

// Feeds ids[0..n) to slot 0 after what it caches; the logits of the last one are at *last. An
// interrupt stops between forwards (the cache then holds fewer).
static void feed(ChatSession *s, const uint32_t *ids, int n, const float **last) {
    for (int i = 0; i < n;) {
        int r = DS_MIN(s->rows, n - i);
        for (int j = 0; j < r; j++) s->rtok[j] = (int)ids[i + j], s->rpos[j] = (int)s->cache.n + j;
        engine_forward(s->en, r, s->rslot, s->rtok, s->rpos, s->logits);
        for (int j = 0; j < r; j++) tokids_push(&s->cache, ids[i + j]);
        *last = s->logits + (size_t)(r - 1) * s->V;
        i += r;
        if (i < n && interrupted(s)) break;
    }
}

int chat_session_turn(ChatSession *s, const char *user, ChatTurn *t, DsErr *e) {
    memset(t, 0, sizeof *t);
    const ChatOpts *o = &s->o;
    if (!o->ct && o->tmpl == TEMPLATE_R1) json_array_clear(s->history); // r1 renders a single question
    json_t *before = json_copy(s->history); // restored when the turn is refused
    json_array_append_new(s->history, message("user", user, strlen(user)));
    int dropped = 0;
    for (;;) {
        if (render(s, e)) goto refuse;
        if ((int)s->ids.n + o->max_tokens <= s->max_len) break;
        if (json_array_size(s->history) == 1) {
            ds_errf(e, "turn %d: the message makes a prompt of %zu tokens, which leaves no room for --max-tokens %d "
                       "in --max-len %d",
                    s->turn + 1, s->ids.n, o->max_tokens, s->max_len);
            goto refuse;
        }
        dropped += drop_oldest(s->history);
    }
    json_decref(before);
    s->turn++;
    int n = (int)s->ids.n, k = 0;
    while (k < (int)s->cache.n && k < n && s->cache.ids[k] == s->ids.ids[k]) k++;
    if (k == n) k = n - 1; // the last prompt token is fed again for its logits
    engine_truncate(s->en, 0, k);
    s->cache.n = (size_t)k;
    *t = (ChatTurn){.messages = s->conv, .prompt = s->prompt, .n_prompt = n, .n_cached = k, .dropped = dropped};

    s->text.len = s->reply.len = 0;
    size_t sent = 0;
    const float *last = NULL;
    feed(s, s->ids.ids + k, n - k, &last);
    const char *finish = NULL;
    if ((int)s->cache.n < n) finish = "interrupted"; // during the prefill
    Rng rng;
    rng_derive(&rng, o->seed, (uint64_t)s->turn, 0);
    int nout = 0;
    while (!finish) {
        int tok = sample_token(last, s->V, &o->sp, rng_uniform(&rng), s->scratch);
        if (is_eos(o, tok)) {
            finish = "eos";
            break;
        }
        nout++;
        size_t old = s->text.len, len = 0;
        // ids past the tokenizer's vocabulary (a padded embedding) have no text
        const char *b = tok_token_bytes(s->tok, (uint32_t)tok, &len);
        if (b) dsbuf_append(&s->text, b, len);
        for (int i = 0; i < o->n_stops && !finish && s->text.len; i++) {
            size_t sl = strlen(o->stops[i]);
            size_t from = old >= sl ? old - sl + 1 : 0; // only where the new bytes can complete it
            char *hit = sl ? memmem(s->text.data + from, s->text.len - from, o->stops[i], sl) : NULL;
            if (hit) s->text.len = (size_t)(hit - s->text.data), finish = "stop";
        }
        if (finish) break;
        stream_to(s, &sent, utf8_stream_prefix(s->text.data, s->text.len, s->hold));
        if (interrupted(s)) finish = "interrupted";
        else if (nout >= o->max_tokens || n + nout >= s->max_len) finish = "length";
        else {
            uint32_t u = (uint32_t)tok;
            feed(s, &u, 1, &last);
        }
    }
    stream_to(s, &sent, s->text.len);
    json_array_append_new(s->history, message("assistant", s->reply.data ? s->reply.data : "", s->reply.len));
    t->reply = s->reply.data ? s->reply.data : "";
    t->reply_len = s->reply.len;
    t->finish = finish;
    t->n_tokens = nout;
    return DS_OK;
refuse:
    json_decref(s->history);
    s->history = before;
    return DS_ERR;
}
