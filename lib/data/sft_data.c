// sft_data.c — SFT examples, masking and packing.
#include "data/sft_data.h"

#include <stdlib.h>
#include <string.h>

#include "core/jsonl.h"
#include "core/rng.h"

int sft_example_from_record(SftExample *x, const json_t *rec, const Tokenizer *tok, PromptTemplate t,
                            uint32_t eos, const char *where, DsErr *e) {
    memset(x, 0, sizeof *x);
    char *prompt, *answer;
    if (chat_render(rec, t, where, &prompt, &answer, e)) return DS_ERR;
    if (!answer) {
        free(prompt);
        return ds_errf(e, "%s: needs an answer: a final assistant message or a string 'completion'", where);
    }
    TokIds ids = {0};
    // Specials are read in the prompt as generation reads them; the answer's text stays text, so
    // the only end-of-sequence trained on is the one appended here.
    tok_encode(tok, prompt, strlen(prompt), 1, &ids);
    x->prompt_len = (int)ids.n;
    tok_encode(tok, answer, strlen(answer), 0, &ids);
    tokids_push(&ids, eos);
    free(prompt), free(answer);
    if (x->prompt_len == 0) {
        tokids_free(&ids);
        return ds_errf(e, "%s: empty prompt", where);
    }
    x->ids = ids.ids;
    x->n = (int)ids.n;
    return DS_OK;
}

// Appends the tokens of text[a, b) to ids, marked trained or not.
static void encode_part(const Tokenizer *tok, const char *text, size_t a, size_t b, int trained, TokIds *ids,
                        DsBuf *mask) {
    size_t k = tok_encode(tok, text + a, b - a, 1, ids);
    uint8_t m = (uint8_t)trained;
    for (size_t i = 0; i < k; i++) dsbuf_append(mask, &m, 1);
}

int sft_example_from_chat(SftExample *x, const json_t *rec, const Tokenizer *tok, const ChatTemplate *ct,
                          const char *where, DsErr *e) {
    memset(x, 0, sizeof *x);
    json_t *msgs = json_object_get(rec, "messages"), *own = NULL;
    const char *p = json_string_value(json_object_get(rec, "prompt"));
    const char *c = json_string_value(json_object_get(rec, "completion"));
    if (!msgs && p) {
        if (!c) return ds_errf(e, "%s: needs an answer: a final assistant message or a string 'completion'", where);
        msgs = own = json_pack("[{s:s,s:s},{s:s,s:s}]", "role", "user", "content", p, "role", "assistant", "content", c);
    }
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return ds_errf(e, "%s: needs a string 'prompt' or a non-empty 'messages' array", where);
    for (size_t i = 0; i < json_array_size(msgs); i++)
        if (!json_is_object(json_array_get(msgs, i)) || !json_is_string(json_object_get(json_array_get(msgs, i), "role"))) {
            json_decref(own);
            return ds_errf(e, "%s: messages[%zu] needs a string 'role'", where, i);
        }
    char *text;
    ChatSpan *sp;
    int nsp;
    int rc = chat_template_assistant_spans(ct, msgs, json_object_get(rec, "tools"), NULL, where, &text, &sp, &nsp, e);
    json_decref(own);
    if (rc) return DS_ERR;
    if (nsp == 0) {
        free(text), free(sp);
        return ds_errf(e, "%s: needs an answer: an assistant message", where);
    }
    TokIds ids = {0};
    DsBuf mask = {0};
    size_t at = 0;
    for (int k = 0; k < nsp; k++) {
        encode_part(tok, text, at, sp[k].start, 0, &ids, &mask);
        if (k == 0) x->prompt_len = (int)ids.n;
        encode_part(tok, text, sp[k].start, sp[k].end, 1, &ids, &mask);
        at = sp[k].end;
    }
    free(text), free(sp);
    if (x->prompt_len == 0 || ids.n < 2) {
        tokids_free(&ids), dsbuf_free(&mask);
        return ds_errf(e, "%s: the first assistant turn starts the rendering; there is no prompt to train it from", where);
    }
    x->ids = ids.ids;
    x->n = (int)ids.n;
    x->mask = (uint8_t *)mask.data;
    return DS_OK;
}

static long trained_tokens(const SftExample *x) {
    if (!x->mask) return x->n - x->prompt_len;
    long k = 0;
    for (int i = 1; i < x->n; i++) k += x->mask[i];
    return k;
}

static void push(SftSet *s, SftExample x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->ex = ds_realloc(s->ex, sizeof *s->ex * (size_t)s->cap);
    }
    s->ex[s->n++] = x;
    s->answer_tokens += trained_tokens(&x);
}

void sft_set_add(SftSet *s, const uint32_t *ids, int n, int prompt_len) {
    DS_CHECK(n >= 2 && prompt_len >= 1 && prompt_len < n);
    SftExample x = {ds_malloc(sizeof(uint32_t) * (size_t)n), n, prompt_len, NULL};
    memcpy(x.ids, ids, sizeof(uint32_t) * (size_t)n);
    push(s, x);
}

static int load(SftSet *s, const char *path, const Tokenizer *tok, PromptTemplate t, uint32_t eos,
                const ChatTemplate *ct, int seq_len, DsErr *e) {
    memset(s, 0, sizeof *s);
    JsonlReader r;
    if (jsonl_open(&r, path, 0, e)) return DS_ERR;
    json_t *rec;
    int got;
    while ((got = jsonl_next(&r, &rec, e)) == 1) {
        char where[512];
        snprintf(where, sizeof where, "%s:%ld", jsonl_name(&r), r.line);
        SftExample x;
        int rc = ct ? sft_example_from_chat(&x, rec, tok, ct, where, e)
                    : sft_example_from_record(&x, rec, tok, t, eos, where, e);
        json_decref(rec);
        if (rc) goto fail;
        // Longer examples are skipped, not truncated: a cut example would teach an answer without
        // its end.
        if (x.n > seq_len) {
            s->skipped++;
            free(x.ids), free(x.mask);
            continue;
        }
        push(s, x);
    }
    if (got < 0) goto fail;
    if (s->n == 0) {
        ds_errf(e, "%s: no example fits in seq_len %d (%ld longer ones skipped)", jsonl_name(&r), seq_len,
                s->skipped);
        goto fail;
    }
    jsonl_close(&r);
    return DS_OK;
fail:
    jsonl_close(&r);
    sft_set_free(s);
    return DS_ERR;
}

int sft_set_load(SftSet *s, const char *path, const Tokenizer *tok, PromptTemplate t, uint32_t eos,
                 int seq_len, DsErr *e) {
    return load(s, path, tok, t, eos, NULL, seq_len, e);
}

int sft_set_load_chat(SftSet *s, const char *path, const Tokenizer *tok, const ChatTemplate *ct, int seq_len,
                      DsErr *e) {
    return load(s, path, tok, TEMPLATE_PLAIN, 0, ct, seq_len, e);
}

void sft_set_free(SftSet *s) {
    for (int i = 0; i < s->n; i++) free(s->ex[i].ids), free(s->ex[i].mask);
    free(s->ex);
    memset(s, 0, sizeof *s);
}

void sft_write_example(const SftExample *x, int *tokens, int *targets, int *pos) {
    for (int i = 0; i < x->n; i++) {
        tokens[i] = (int)x->ids[i];
        pos[i] = i;
        int trained = i + 1 < x->n && (x->mask ? x->mask[i + 1] : i >= x->prompt_len - 1);
        targets[i] = trained ? (int)x->ids[i + 1] : -1;
    }
}

void sft_pack_row(const SftSet *s, const int *idx, int k, int T, int pad, int *tokens, int *targets,
                  int *pos) {
    int at = 0;
    for (int j = 0; j < k; j++) {
        const SftExample *x = &s->ex[idx[j]];
        DS_CHECK(at + x->n <= T);
        sft_write_example(x, tokens + at, targets + at, pos + at);
        at += x->n;
    }
    for (int i = at; i < T; i++) tokens[i] = pad, targets[i] = -1, pos[i] = i - at;
}

void sft_source_init(SftSource *src, const SftSet *set, uint64_t seed, int batch, int seq_len,
                     int accum, int shuffle, int pad) {
    memset(src, 0, sizeof *src);
    src->set = set, src->seed = seed, src->batch = batch, src->seq_len = seq_len;
    src->accum = accum, src->shuffle = shuffle, src->pad = pad;
    src->cur.epoch = -1;
}

static void epoch_free(SftEpoch *p) {
    free(p->order), free(p->rows);
    memset(p, 0, sizeof *p);
    p->epoch = -1;
}

void sft_source_free(SftSource *src) {
    epoch_free(&src->cur);
    free(src->epoch_rows);
}

void sft_pack_epoch(const SftSource *src, long ep, SftEpoch *out) {
    const SftSet *s = src->set;
    int n = s->n;
    epoch_free(out);
    out->epoch = ep;
    out->order = ds_malloc(sizeof(int) * (size_t)n);
    out->rows = ds_malloc(sizeof(int) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) out->order[i] = i;
    if (src->shuffle) { // Fisher-Yates from a stream of (seed, epoch)
        Rng r;
        rng_derive(&r, src->seed, 0x5f7u, (uint64_t)ep);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)rng_below(&r, (uint64_t)i + 1), t = out->order[i];
            out->order[i] = out->order[j], out->order[j] = t;
        }
    }
    int fill = src->seq_len; // forces a new row for the first example
    out->nrows = 0;
    for (int i = 0; i < n; i++) {
        int len = s->ex[out->order[i]].n;
        if (fill + len > src->seq_len) out->rows[out->nrows++] = i, fill = 0;
        fill += len;
    }
    out->rows[out->nrows] = n;
}

long sft_source_epoch_rows(SftSource *src, long ep) {
    while (src->n_epoch_rows <= ep) {
        SftEpoch p = {.epoch = -1};
        sft_pack_epoch(src, src->n_epoch_rows, &p);
        src->epoch_rows = ds_realloc(src->epoch_rows, sizeof(long) * (size_t)(src->n_epoch_rows + 1));
        src->epoch_rows[src->n_epoch_rows++] = p.nrows;
        epoch_free(&p);
    }
    return src->epoch_rows[ep];
}

long sft_source_steps_for_epochs(SftSource *src, long epochs) {
    long rows = 0, per_step = (long)src->batch * src->accum;
    for (long ep = 0; ep < epochs; ep++) rows += sft_source_epoch_rows(src, ep);
    return (rows + per_step - 1) / per_step;
}

int sft_batch(void *ctx, long step, int micro, int *tokens, int *targets, int *pos, DsErr *e) {
    SftSource *src = ctx;
    (void)e;
    int T = src->seq_len;
    long g = (step * src->accum + micro) * (long)src->batch;
    for (int b = 0; b < src->batch; b++, g++) {
        int *tk = tokens + (size_t)b * T, *tg = targets + (size_t)b * T, *ps = pos + (size_t)b * T;
        long ep = 0, row = g;
        if (src->shuffle) {
            while (row >= sft_source_epoch_rows(src, ep)) row -= sft_source_epoch_rows(src, ep), ep++;
        } else if (row >= sft_source_epoch_rows(src, 0)) { // validation: past the end is padding
            sft_pack_row(src->set, NULL, 0, T, src->pad, tk, tg, ps);
            continue;
        }
        if (src->cur.epoch != ep) sft_pack_epoch(src, ep, &src->cur);
        const SftEpoch *p = &src->cur;
        int r = (int)row;
        sft_pack_row(src->set, p->order + p->rows[r], p->rows[r + 1] - p->rows[r], T, src->pad, tk, tg, ps);
    }
    return DS_OK;
}
