// score.h — log-probabilities of given token sequences under a model (ds-infer score): a sequence
// is fed through the engine in chunks and p(ids[t] | ids[<t]) is read from the main head.
#ifndef DS_SCORE_H
#define DS_SCORE_H

#include <stddef.h>

#include "infer/engine.h"

typedef struct Scorer Scorer;

// The scorer sizes its engine to the longest sequence seen so far, and grows the model's RoPE table
// when a sequence needs more positions than it has (the table's rows do not depend on its length).
// m must outlive the scorer. chunk: positions per forward (>= 1).
Scorer *scorer_new(Model_f32 *m, int chunk, DsErr *e);
void scorer_free(Scorer *s);
// lp[t - 1] = log p(ids[t] | ids[<t]) at temperature 1 for t = 1 .. n-1 (n >= 1).
int scorer_run(Scorer *s, const uint32_t *ids, size_t n, double *lp, DsErr *e);

#endif
