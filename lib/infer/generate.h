// generate.h — batched generation with continuous batching: requests are pulled as slots free up,
// prompts are prefilled in chunks alongside other sequences' decode steps, finished samples are
// handed back as soon as they end. Optional MTP speculative decoding (greedy): the MTP module
// drafts the next-next token and the main model verifies it in the same forward.
#ifndef DS_GENERATE_H
#define DS_GENERATE_H

#include "core/common.h"
#include "infer/engine.h"
#include "infer/sample.h"
#include "text/tokenizer.h"

typedef struct GenRequest {
    const uint32_t *prompt; // must stay valid until the request's result is delivered
    int prompt_len;         // >= 1
    uint64_t stream, sample; // random stream of this sample: rng_derive(seed, stream, sample)
    void *user;
    // Per-request settings (a server's clients each bring their own); zero means GenConfig's.
    const SampleParams *sp;   // sampling (not with speculative decoding)
    int max_tokens;           // at most GenConfig.max_tokens
    const char *const *stops; // stop strings in addition to GenConfig's
    int n_stops;
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
    // Called after every committed token with the sample's text so far (NULL without a
    // tokenizer); a nonzero return ends the sample with finish "stop". NULL: no calls.
    int (*on_token)(void *ctx, const GenRequest *req, uint32_t tok, const char *text, size_t len);
    void *token_ctx;
    struct Progress *progress;    // advanced by finished samples, with tokens/s (NULL: none)
    int no_prefix_share;          // prefill every prompt itself (see GenStats.shared)
} GenConfig;

// Samples of one prompt (a GRPO group, pass@k, --n) share its prefill: a request whose prompt
// equals a running slot's waits until that slot has fed all but the last prompt token, copies
// those cache positions and feeds only the last one itself. The cache holds the same bits either
// way, so samples are unchanged; `shared` counts the prompt tokens copied instead of computed.
typedef struct GenStats {
    long samples, tokens, forwards, drafted, accepted, shared;
    double seconds;
} GenStats;

// 1 = a request, 0 = no more (generate returns once the running samples end), GEN_WAIT = none
// yet: the running samples go on and next is asked again after the step. With nothing running,
// next is asked again at once, so a source that waits for work should block when it knows none of
// its requests is running (a server: every request handed out has been delivered). DS_ERR: stop.
enum { GEN_WAIT = 2 };
typedef int (*GenNextFn)(void *ctx, GenRequest *req, DsErr *e);
typedef int (*GenDoneFn)(void *ctx, const GenResult *r, DsErr *e);

int generate(Engine *en, const GenConfig *c, GenNextFn next, void *next_ctx, GenDoneFn done,
             void *done_ctx, GenStats *st, DsErr *e);

#endif
