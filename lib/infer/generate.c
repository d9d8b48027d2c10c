// generate.c — continuous batching over engine slots, sampling, stop conditions, MTP drafts.
#include "infer/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/progress.h"
#include "core/rng.h"

typedef struct Slot {
    int active;
    GenRequest req;
    int fed;            // prompt tokens fed so far
    int len;            // positions in the cache
    int pending;        // committed token not yet fed (after the prompt)
    int draft, has_draft;
    int row0, nrows;    // this forward's rows
    uint32_t *out;
    float *lp;
    int nout;
    Rng rng;
    DsBuf text;
    const char *finish;
    double t0;
    const SampleParams *sp; // the request's or the config's
    int max_tokens;
    int donor;          // >= 0: waiting to copy that slot's prompt prefix (GenStats.shared)
} Slot;

typedef struct Gen {
    Engine *en;
    const GenConfig *c;
    int V, nslots, max_len, max_rows;
    Slot *s;
    int *rslot, *rtok, *rpos, *msrc, *mslot, *mpos, *mtok;
    float *logits, *mlogits, *scratch;
} Gen;

static int is_eos(const GenConfig *c, uint32_t t) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos[i] == t) return 1;
    return 0;
}

// Appends a committed token; sets s->finish when the sample ends.
static void commit(Gen *g, Slot *s, int tok, const float *logits) {
    const GenConfig *c = g->c;
    if (s->finish) return;
    if (is_eos(c, (uint32_t)tok)) {
        s->finish = "eos";
        return;
    }
    s->out[s->nout] = (uint32_t)tok;
    s->lp[s->nout++] = (float)sample_logprob(logits, g->V, tok);
    s->pending = tok;
    if (c->tok) {
        size_t old = s->text.len, n = 0;
        // ids past the tokenizer's vocabulary (a padded embedding) have no text
        const char *b = tok_token_bytes(c->tok, (uint32_t)tok, &n);
        if (b) dsbuf_append(&s->text, b, n);
        for (int i = 0; i < c->n_stops + s->req.n_stops; i++) {
            const char *stop = i < c->n_stops ? c->stops[i] : s->req.stops[i - c->n_stops];
            size_t sl = strlen(stop);
            // only the region the new bytes can complete
            size_t from = old >= sl ? old - sl + 1 : 0;
            char *hit = sl ? memmem(s->text.data + from, s->text.len - from, stop, sl) : NULL;
            if (hit) {
                s->text.len = (size_t)(hit - s->text.data);
                s->text.data[s->text.len] = 0;
                s->finish = "stop";
                return;
            }
        }
    }
    if (c->on_token && c->on_token(c->token_ctx, &s->req, (uint32_t)tok, s->text.data, s->text.len)) {
        s->finish = "stop";
        return;
    }
    if (s->nout >= s->max_tokens || s->req.prompt_len + s->nout >= g->max_len) s->finish = "length";
}

// A running slot whose prompt equals slot i's and that will feed it (not itself waiting, not
// already past it with a different cache: a slot keeps its prompt positions while it runs), or -1.
// Prompts of one token have nothing to share.
static int find_donor(const Gen *g, int i) {
    const GenRequest *r = &g->s[i].req;
    if (r->prompt_len < 2) return -1;
    for (int j = 0; j < g->nslots; j++) {
        const Slot *d = &g->s[j];
        if (j == i || !d->active || d->donor >= 0 || (d->finish && d->fed < d->req.prompt_len)) continue;
        if (d->req.prompt_len != r->prompt_len) continue;
        if (d->req.prompt != r->prompt && memcmp(d->req.prompt, r->prompt, sizeof(uint32_t) * (size_t)r->prompt_len))
            continue;
        return j;
    }
    return -1;
}

static int deliver(Gen *g, Slot *s, GenDoneFn done, void *ctx, GenStats *st, DsErr *e) {
    double sum = 0;
    for (int i = 0; i < s->nout; i++) sum += s->lp[i];
    GenResult r = {&s->req, s->out, s->nout, s->lp, sum, s->finish, s->text.data ? s->text.data : "",
                   s->text.len, ds_now() - s->t0};
    st->samples++;
    st->tokens += s->nout;
    int rc = done(ctx, &r, e);
    engine_truncate(g->en, (int)(s - g->s), 0);
    s->active = 0;
    dsbuf_free(&s->text);
    return rc;
}

int generate(Engine *en, const GenConfig *c, GenNextFn next, void *next_ctx, GenDoneFn done,
             void *done_ctx, GenStats *st, DsErr *e) {
    Gen g = {.en = en, .c = c, .V = engine_vocab(en)};
    memset(st, 0, sizeof *st);
    if (c->speculative && (c->sp.temperature > 0 || !engine_has_mtp(en)))
        return ds_errf(e, "speculative decoding needs greedy sampling and a model with MTP layers");
    int chunk = c->prefill_chunk > 0 ? c->prefill_chunk : 64;
    g.nslots = engine_slots(en), g.max_len = engine_max_len(en), g.max_rows = engine_max_rows(en);
    if (g.max_rows < 2) return ds_errf(e, "engine needs at least 2 rows per forward");
    g.s = ds_calloc((size_t)g.nslots, sizeof(Slot));
    int R = g.max_rows;
    g.rslot = ds_malloc(sizeof(int) * R), g.rtok = ds_malloc(sizeof(int) * R), g.rpos = ds_malloc(sizeof(int) * R);
    g.msrc = ds_malloc(sizeof(int) * R), g.mslot = ds_malloc(sizeof(int) * R);
    g.mpos = ds_malloc(sizeof(int) * R), g.mtok = ds_malloc(sizeof(int) * R);
    g.logits = ds_malloc(sizeof(float) * (size_t)R * g.V), g.mlogits = ds_malloc(sizeof(float) * (size_t)R * g.V);
    g.scratch = ds_malloc(sizeof(float) * 2 * (size_t)g.V);
    for (int i = 0; i < g.nslots; i++) {
        g.s[i].out = ds_malloc(sizeof(uint32_t) * (size_t)(c->max_tokens + 2));
        g.s[i].lp = ds_malloc(sizeof(float) * (size_t)(c->max_tokens + 2));
    }
    double t0 = ds_now();
    int more = 1, rc = DS_OK;
    for (;;) {
        // 1. refill free slots
        for (int i = 0; i < g.nslots && more; i++) {
            Slot *s = &g.s[i];
            if (s->active) continue;
            GenRequest req;
            int got = next(next_ctx, &req, e);
            if (got < 0) {
                rc = DS_ERR;
                goto done;
            }
            if (!got) {
                more = 0;
                break;
            }
            if (got == GEN_WAIT) break;
            if (req.prompt_len < 1 || req.prompt_len >= g.max_len) {
                // the caller's message names the record (GenRequest.user is the caller's)
                rc = ds_errf(e, "a prompt of %d tokens does not fit this engine (1 to %d tokens)", req.prompt_len,
                             g.max_len - 1);
                goto done;
            }
            uint32_t *out = s->out;
            float *lp = s->lp;
            memset(s, 0, sizeof *s);
            s->out = out, s->lp = lp;
            s->active = 1;
            s->req = req;
            s->t0 = ds_now();
            rng_derive(&s->rng, c->seed, req.stream, req.sample);
            s->sp = req.sp ? req.sp : &c->sp;
            s->max_tokens = req.max_tokens > 0 && req.max_tokens < c->max_tokens ? req.max_tokens : c->max_tokens;
            if (c->speculative && s->sp->temperature > 0) {
                rc = ds_errf(e, "speculative decoding needs greedy sampling");
                goto done;
            }
            if (s->max_tokens == 0) s->finish = "length";
            s->donor = c->no_prefix_share || s->finish ? -1 : find_donor(&g, i);
        }
        // 2. rows: prompt chunks, or the pending token (+ its draft)
        int nr = 0, any = 0;
        for (int i = 0; i < g.nslots; i++) {
            Slot *s = &g.s[i];
            if (!s->active) continue;
            any = 1;
            s->nrows = 0;
            if (s->finish || s->donor >= 0) continue;
            int want = s->fed < s->req.prompt_len ? DS_MIN(chunk, s->req.prompt_len - s->fed) : 1 + s->has_draft;
            if (nr + want > R) want = s->fed < s->req.prompt_len ? R - nr : 0;
            if (want <= 0) continue;
            s->row0 = nr;
            for (int k = 0; k < want; k++, nr++) {
                g.rslot[nr] = i;
                g.rpos[nr] = s->len + k;
                g.rtok[nr] = s->fed < s->req.prompt_len ? (int)s->req.prompt[s->fed + k]
                             : k == 0               ? s->pending
                                                    : s->draft;
            }
            s->nrows = want;
        }
        if (!any && !more) break;
        if (nr) {
            engine_forward(en, nr, g.rslot, g.rtok, g.rpos, g.logits);
            st->forwards++;
        }
        // 3. consume the logits; collect MTP rows
        int nm = 0;
        for (int i = 0; i < g.nslots; i++) {
            Slot *s = &g.s[i];
            if (!s->active || !s->nrows) continue;
            const float *lg = g.logits + (size_t)s->row0 * g.V;
            if (s->fed < s->req.prompt_len) {
                int first = s->fed;
                s->fed += s->nrows;
                s->len += s->nrows;
                int done_prompt = s->fed == s->req.prompt_len;
                const float *last = lg + (size_t)(s->nrows - 1) * g.V;
                int tok = done_prompt ? sample_token(last, g.V, s->sp, rng_uniform(&s->rng), g.scratch) : -1;
                if (c->speculative)
                    for (int k = 0; k < s->nrows; k++) {
                        int q = first + k;
                        g.msrc[nm] = s->row0 + k, g.mslot[nm] = i, g.mpos[nm] = q;
                        g.mtok[nm++] = q + 1 < s->req.prompt_len ? (int)s->req.prompt[q + 1] : tok;
                    }
                if (done_prompt) commit(&g, s, tok, last);
                continue;
            }
            if (!s->has_draft) {
                int tok = sample_token(lg, g.V, s->sp, rng_uniform(&s->rng), g.scratch);
                s->len += 1;
                commit(&g, s, tok, lg);
                if (c->speculative) g.msrc[nm] = s->row0, g.mslot[nm] = i, g.mpos[nm] = s->len - 1, g.mtok[nm++] = tok;
                continue;
            }
            // verify the draft: row 0 gives the true next token; row 1 is valid only if it matched
            int a0 = sample_argmax(lg, g.V), ok = a0 == s->draft;
            st->drafted++;
            st->accepted += ok;
            s->has_draft = 0;
            commit(&g, s, a0, lg);
            g.msrc[nm] = s->row0, g.mslot[nm] = i, g.mpos[nm] = s->len, g.mtok[nm++] = a0;
            if (ok) {
                int a1 = sample_argmax(lg + g.V, g.V);
                commit(&g, s, a1, lg + g.V);
                g.msrc[nm] = s->row0 + 1, g.mslot[nm] = i, g.mpos[nm] = s->len + 1, g.mtok[nm++] = a1;
                s->len += 2;
            } else {
                s->len += 1;
                engine_truncate(en, i, s->len); // drop the rejected draft's cache entry
            }
        }
        // 4. MTP drafts for the next forward (greedy): the last MTP row of each slot
        if (nm) {
            engine_mtp_forward(en, nm, g.msrc, g.mslot, g.mpos, g.mtok, g.mlogits);
            for (int r = 0; r < nm; r++) {
                Slot *s = &g.s[g.mslot[r]];
                int last = r + 1 == nm || g.mslot[r + 1] != g.mslot[r];
                if (last && !s->finish && s->fed == s->req.prompt_len && s->len + 1 < g.max_len) {
                    s->draft = sample_argmax(g.mlogits + (size_t)r * g.V, g.V);
                    s->has_draft = 1;
                }
            }
        }
        // 4b. slots waiting for a shared prefix take it once the donor has fed it
        for (int i = 0; i < g.nslots; i++) {
            Slot *s = &g.s[i];
            if (!s->active || s->donor < 0) continue;
            const Slot *d = &g.s[s->donor];
            int n = s->req.prompt_len - 1;
            if (d->fed < n) continue;
            engine_copy_prefix(en, i, s->donor, n);
            s->fed = s->len = n;
            s->donor = -1;
            st->shared += n;
        }
        // 5. deliver finished samples
        for (int i = 0; i < g.nslots; i++)
            if (g.s[i].active && g.s[i].finish && deliver(&g, &g.s[i], done, done_ctx, st, e)) {
                rc = DS_ERR;
                goto done;
            }
        if (c->progress) {
            progress_status(c->progress, "%.0f tokens/s", st->tokens / fmax(ds_now() - t0, 1e-9));
            progress_update(c->progress, (double)st->samples);
        }
    }
done:
    st->seconds = ds_now() - t0;
    for (int i = 0; i < g.nslots; i++) {
        free(g.s[i].out), free(g.s[i].lp);
        dsbuf_free(&g.s[i].text);
    }
    free(g.s), free(g.rslot), free(g.rtok), free(g.rpos), free(g.msrc), free(g.mslot), free(g.mpos);
    free(g.mtok), free(g.logits), free(g.mlogits), free(g.scratch);
    return rc;
}
