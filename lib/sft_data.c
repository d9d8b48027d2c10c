// sft_data.c — SFT examples, masking and packing.
#include "sft_data.h"

#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "rng.h"

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

static void push(SftSet *s, SftExample x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->ex = ds_realloc(s->ex, sizeof *s->ex * (size_t)s->cap);
    }
    s->ex[s->n++] = x;
    s->answer_tokens += x.n - x.prompt_len;
}

void sft_set_add(SftSet *s, const uint32_t *ids, int n, int prompt_len) {
    DS_CHECK(n >= 2 && prompt_len >= 1 && prompt_len < n);
    SftExample x = {ds_malloc(sizeof(uint32_t) * (size_t)n), n, prompt_len};
    memcpy(x.ids, ids, sizeof(uint32_t) * (size_t)n);
    push(s, x);
}

int sft_set_load(SftSet *s, const char *path, const Tokenizer *tok, PromptTemplate t, uint32_t eos,
                 int seq_len, DsErr *e) {
    memset(s, 0, sizeof *s);
    JsonlReader r;
    if (jsonl_open(&r, path, 0, e)) return DS_ERR;
    json_t *rec;
    int got;
    while ((got = jsonl_next(&r, &rec, e)) == 1) {
        char where[512];
        snprintf(where, sizeof where, "%s:%ld", jsonl_name(&r), r.line);
        SftExample x;
        int rc = sft_example_from_record(&x, rec, tok, t, eos, where, e);
        json_decref(rec);
        if (rc) goto fail;
        // Longer examples are skipped, not truncated: a cut example would teach an answer without
        // its end.
        if (x.n > seq_len) {
            s->skipped++;
            free(x.ids);
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

void sft_set_free(SftSet *s) {
    for (int i = 0; i < s->n; i++) free(s->ex[i].ids);
    free(s->ex);
    memset(s, 0, sizeof *s);
}

void sft_write_example(const SftExample *x, int *tokens, int *targets, int *pos) {
    for (int i = 0; i < x->n; i++) {
        tokens[i] = (int)x->ids[i];
        pos[i] = i;
        targets[i] = i >= x->prompt_len - 1 && i + 1 < x->n ? (int)x->ids[i + 1] : -1;
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
