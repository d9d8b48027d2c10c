// rng.h — deterministic random numbers (xoshiro256**), seeded by splitmix64. Every random choice in
// ds flows from a --seed through an Rng value the caller owns; independent streams (one per sample,
// per layer, ...) are derived with rng_derive so results do not depend on batch order or threads.
#ifndef DS_RNG_H
#define DS_RNG_H

#include <stdint.h>

typedef struct Rng {
    uint64_t s[4];
} Rng;

void rng_seed(Rng *r, uint64_t seed);
// A stream determined only by (seed, a, b): e.g. (seed, prompt index, sample index).
void rng_derive(Rng *r, uint64_t seed, uint64_t a, uint64_t b);
uint64_t rng_u64(Rng *r);
uint64_t rng_below(Rng *r, uint64_t n); // uniform in [0, n), unbiased; n > 0
double rng_uniform(Rng *r);             // uniform in [0, 1), 53 bits
float rng_uniformf(Rng *r);             // uniform in [0, 1), 24 bits
double rng_normal(Rng *r);              // standard normal (Box-Muller, one value per call)

#endif
