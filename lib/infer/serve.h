// serve.h — an OpenAI-compatible HTTP server on the continuous-batching engine: POST
// /v1/completions and /v1/chat/completions (whole answers or server-sent-event streams), GET
// /v1/models and /health. HTTP is libmicrohttpd's, one thread per connection; one engine thread
// runs generate() over every request in flight, so concurrent clients share each forward. Bad
// requests get a 4xx with an OpenAI-style JSON error and never reach the engine.
#ifndef DS_SERVE_H
#define DS_SERVE_H

#include <signal.h>

#include "infer/engine.h"
#include "eval/task.h"
#include "text/tokenizer.h"

typedef struct ServeOpts {
    const char *host;        // address to bind, default 127.0.0.1
    int port;                // 0: any free port (see port_file)
    const char *port_file;   // the bound port is written here once listening (may be NULL)
    const char *model_name;  // "model" in answers and /v1/models
    int max_tokens;          // the most completion tokens a request may ask for (default when absent)
    PromptTemplate tmpl;     // how chat messages become a prompt
    const uint32_t *eos;     // tokens that end a completion
    int n_eos;
    uint64_t seed;           // random stream of requests that bring no "seed"
    int max_connections;
} ServeOpts;

typedef struct ServeStats {
    long requests, bad_requests, completion_tokens, prompt_tokens;
    double seconds;
} ServeStats;

// Serves until *stop becomes nonzero (a signal handler's flag), then finishes the requests in
// flight and returns. DS_ERR when the address cannot be bound or the engine fails.
int serve_run(Engine *en, const Tokenizer *tok, const ServeOpts *o, volatile sig_atomic_t *stop,
              ServeStats *st, DsErr *e);

#endif
