// score.c — per-token log-probabilities of given sequences, through the engine in chunks.
#include "infer/score.h"

#include <limits.h>
#include <stdlib.h>

#include "math/rope.h"
#include "infer/sample.h"

struct Scorer {
    Model_f32 *m;
    Engine *en;
    int chunk, V;
    float *logits;       // [chunk][V]
    int *slot, *pos, *tok; // [chunk]
};

Scorer *scorer_new(Model_f32 *m, int chunk, DsErr *e) {
    if (chunk < 1) return ds_errf(e, "score: chunk must be positive"), NULL;
    Scorer *s = ds_calloc(1, sizeof *s);
    s->m = m, s->chunk = chunk, s->V = m->L.cfg.vocab_size;
    s->logits = ds_malloc(sizeof(float) * (size_t)chunk * s->V);
    s->slot = ds_calloc((size_t)chunk, sizeof(int)); // every row is slot 0
    s->pos = ds_malloc(sizeof(int) * (size_t)chunk), s->tok = ds_malloc(sizeof(int) * (size_t)chunk);
    return s;
}

void scorer_free(Scorer *s) {
    if (!s) return;
    engine_free(s->en);
    free(s->logits), free(s->slot), free(s->pos), free(s->tok);
    free(s);
}

// An engine holding at least n positions (capacity doubles, so rebuilds stay rare).
static int reserve(Scorer *s, size_t n, DsErr *e) {
    if (s->en && (size_t)engine_max_len(s->en) >= n) return DS_OK;
    if (n > INT_MAX / 2) return ds_errf(e, "%zu tokens are too many to score", n);
    int len = s->en ? engine_max_len(s->en) : 256;
    while ((size_t)len < n) len *= 2;
    engine_free(s->en);
    s->en = NULL;
    if (len > s->m->rope.max_pos) {
        rope_free(&s->m->rope);
        rope_init(&s->m->rope, &s->m->L.cfg, len);
    }
    EngineOpts eo = {.slots = 1, .max_len = len, .max_rows = s->chunk};
    s->en = engine_new(s->m, &eo, e);
    return s->en ? DS_OK : DS_ERR;
}

int scorer_run(Scorer *s, const uint32_t *ids, size_t n, double *lp, DsErr *e) {
    if (n == 0) return DS_OK;
    if (reserve(s, n, e)) return DS_ERR;
    for (size_t a = 0; a < n; a += (size_t)s->chunk) {
        int R = (int)DS_MIN((size_t)s->chunk, n - a);
        for (int i = 0; i < R; i++) s->pos[i] = (int)(a + i), s->tok[i] = (int)ids[a + i];
        engine_forward(s->en, R, s->slot, s->tok, s->pos, s->logits);
        for (int i = 0; i < R && a + i + 1 < n; i++)
            lp[a + i] = sample_logprob(s->logits + (size_t)i * s->V, s->V, (int)ids[a + i + 1]);
    }
    engine_truncate(s->en, 0, 0);
    return DS_OK;
}
