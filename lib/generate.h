// generate.h — batched generation with continuous batching: requests are pulled as slots free up,
// prompts are prefilled in chunks alongside other sequences' decode steps, finished samples are
// handed back as soon as they end. Optional MTP speculative decoding (greedy): the MTP module
// drafts the next-next token and the main model verifies it in the same forward.
#ifndef DS_GENERATE_H
#define DS_GENERATE_H

#include "common.h"
#include "engine.h"
#include "sample.h"
#include "tokenizer.h"

typedef struct GenRequest {
    const uint32_t *prompt; // must stay valid until the request's result is delivered
    int prompt_len;         // >= 1
    uint64_t stream, sample; // random stream of this sample: rng_derive(seed, stream, sample)
    void *user;
} GenRequest;

typedef struct GenResult {
    const GenRequest *req;
    const uint32_t *tokens; // completion tokens (an end-of-sequence token is not included)
    int n;
    const float *logprobs;  // per token, log p under the model at temperature 1
    double sum_logprob;
    const char *finish;     // "eos", "stop", "length"
    const char *text;       // completion text when a tokenizer is given (cut before a stop string)
    size_t text_len;
    double seconds;         // from the request's first forward to its end
} GenResult;

typedef struct GenConfig {
    SampleParams sp;
    int max_tokens;               // completion tokens per sample
    uint64_t seed;
    const uint32_t *eos;          // tokens that end a sample
    int n_eos;
    const Tokenizer *tok;         // for text and stop strings (may be NULL)
    const char *const *stops;     // stop strings
    int n_stops;
    int speculative;              // MTP drafts; requires temperature 0 and a model with MTP
    int prefill_chunk;            // prompt tokens per sequence per forward
} GenConfig;

typedef struct GenStats {
    long samples, tokens, forwards, drafted, accepted;
    double seconds;
} GenStats;

typedef int (*GenNextFn)(void *ctx, GenRequest *req, DsErr *e); // 1 = request, 0 = no more, DS_ERR
typedef int (*GenDoneFn)(void *ctx, const GenResult *r, DsErr *e);

int generate(Engine *en, const GenConfig *c, GenNextFn next, void *next_ctx, GenDoneFn done,
             void *done_ctx, GenStats *st, DsErr *e);

#endif
