// serve.c — the HTTP server: connection threads parse and answer requests, the engine thread
// generates. They meet in a queue of jobs under one mutex; a job is freed by whichever side lets go
// of it last (refs).
#include "infer/serve.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "text/chat.h"
#include "infer/generate.h"
#include "text/utf8.h"

enum { BODY_MAX = 1 << 20, STOPS_MAX = 4, STOP_LEN_MAX = 256 };

typedef enum { KIND_COMPLETION, KIND_CHAT } Kind;

typedef struct Job {
    struct Job *next_in_queue;
    int refs;
    Kind kind;
    int stream;
    long number;          // request number, for ids
    TokIds prompt;
    SampleParams sp;
    int max_tokens;
    char *stops[STOPS_MAX];
    int n_stops;
    size_t hold;          // stream: bytes held back in case they start a stop string
    uint64_t seed_stream;
    // filled by the engine thread
    DsBuf out;            // stream: SSE bytes ready to send
    size_t sent;          // stream: bytes the connection has taken
    size_t text_sent;     // stream: bytes of the completion text already in out
    int done, cancelled;
    char *text;           // final completion text
    const char *finish;
    int n_tokens;
    pthread_cond_t cv;
} Job;

typedef struct Server {
    const ServeOpts *o;
    Engine *en;
    const Tokenizer *tok;
    pthread_mutex_t mu;
    pthread_cond_t cv; // the engine waits here for work
    Job *head, *tail;
    int outstanding;   // handed to generate, not yet delivered
    int stopping;
    long numbered;
    ServeStats st;
    int engine_rc;
    DsErr engine_err;
} Server;

// ---------------------------------------------------------------------------------------------
// Jobs.

static void job_unref(Server *s, Job *j) { // s->mu held
    if (--j->refs) return;
    tokids_free(&j->prompt);
    for (int i = 0; i < j->n_stops; i++) free(j->stops[i]);
    dsbuf_free(&j->out);
    free(j->text);
    pthread_cond_destroy(&j->cv);
    free(j);
    (void)s;
}

static const char *finish_reason(const char *f) { return f && !strcmp(f, "length") ? "length" : "stop"; }

static json_t *chunk_json(const Server *s, const Job *j, const char *text, size_t len, const char *finish) {
    json_t *choice;
    if (j->kind == KIND_CHAT) {
        json_t *delta = json_object();
        if (len || !finish) json_object_set_new(delta, "content", json_stringn(text, len));
        choice = json_pack("{s:i, s:o}", "index", 0, "delta", delta);
    } else {
        choice = json_pack("{s:i, s:s%, s:n}", "index", 0, "text", text, len, "logprobs");
    }
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish_reason(finish)) : json_null());
    char id[48];
    snprintf(id, sizeof id, "%s-%ld", j->kind == KIND_CHAT ? "chatcmpl" : "cmpl", j->number);
    return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", id, "object",
                     j->kind == KIND_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                     (json_int_t)time(NULL), "model", s->o->model_name, "choices", choice);
}

static void sse(DsBuf *b, json_t *j) {
    char *txt = json_dumps(j, JSON_COMPACT);
    dsbuf_printf(b, "data: %s\n\n", txt);
    free(txt);
    json_decref(j);
}

// Waits on cv for at most a second: a waiter rechecks the engine's health at least that often,
// since a failed engine signals nobody.
static void wait_a_while(pthread_cond_t *cv, pthread_mutex_t *mu) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(cv, mu, &ts);
}

// ---------------------------------------------------------------------------------------------
// The engine thread.

static int on_next(void *ctx, GenRequest *req, DsErr *e) {
    Server *s = ctx;
    (void)e;
    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->outstanding && !s->stopping) pthread_cond_wait(&s->cv, &s->mu);
    Job *j = s->head;
    if (!j) {
        int rc = s->stopping && !s->outstanding ? 0 : GEN_WAIT;
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    s->head = j->next_in_queue;
    if (!s->head) s->tail = NULL;
    s->outstanding++;
    pthread_mutex_unlock(&s->mu);
    *req = (GenRequest){.prompt = j->prompt.ids, .prompt_len = (int)j->prompt.n, .stream = j->seed_stream,
                        .user = j, .sp = &j->sp, .max_tokens = j->max_tokens,
                        .stops = (const char *const *)j->stops, .n_stops = j->n_stops};
    return 1;
}

static int on_token(void *ctx, const GenRequest *req, uint32_t tok, const char *text, size_t len) {
    Server *s = ctx;
    Job *j = req->user;
    (void)tok;
    pthread_mutex_lock(&s->mu);
    int cancel = j->cancelled;
    if (j->stream && !cancel) {
        size_t n = utf8_stream_prefix(text, len, j->hold);
        if (n > j->text_sent) {
            sse(&j->out, chunk_json(s, j, text + j->text_sent, n - j->text_sent, NULL));
            j->text_sent = n;
            pthread_cond_broadcast(&j->cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return cancel;
}

static int on_done(void *ctx, const GenResult *r, DsErr *e) {
    Server *s = ctx;
    Job *j = r->req->user;
    (void)e;
    pthread_mutex_lock(&s->mu);
    j->finish = r->finish;
    j->n_tokens = r->n;
    j->text = ds_malloc(r->text_len + 1);
    memcpy(j->text, r->text ? r->text : "", r->text_len);
    j->text[r->text_len] = 0;
    if (j->stream) {
        if (r->text_len > j->text_sent)
            sse(&j->out, chunk_json(s, j, j->text + j->text_sent, r->text_len - j->text_sent, NULL));
        sse(&j->out, chunk_json(s, j, "", 0, r->finish));
        dsbuf_printf(&j->out, "data: [DONE]\n\n");
    }
    j->done = 1;
    s->st.completion_tokens += r->n;
    s->outstanding--;
    pthread_cond_broadcast(&j->cv);
    job_unref(s, j);
    pthread_mutex_unlock(&s->mu);
    return DS_OK;
}

static void *engine_main(void *arg) {
    Server *s = arg;
    const ServeOpts *o = s->o;
    GenConfig gc = {.sp = {.temperature = 1, .top_p = 1}, .max_tokens = o->max_tokens, .seed = o->seed,
                    .eos = o->eos, .n_eos = o->n_eos, .tok = s->tok, .prefill_chunk = 64,
                    .on_token = on_token, .token_ctx = s};
    GenStats gs;
    s->engine_rc = generate(s->en, &gc, on_next, s, on_done, s, &gs, &s->engine_err);
    if (s->engine_rc != DS_OK) { // fail the queue so no connection waits forever
        pthread_mutex_lock(&s->mu);
        s->stopping = 1;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

// ---------------------------------------------------------------------------------------------
// Requests.

typedef struct Conn {
    DsBuf body;
    int too_large;
} Conn;

static enum MHD_Result respond_json(struct MHD_Connection *c, unsigned status, json_t *j) {
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    size_t n = strlen(txt);
    struct MHD_Response *r = MHD_create_response_from_buffer(n, txt, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result respond_error(Server *s, struct MHD_Connection *c, unsigned status, const char *type,
                                     const char *msg) {
    pthread_mutex_lock(&s->mu);
    s->st.bad_requests++;
    pthread_mutex_unlock(&s->mu);
    return respond_json(c, status, json_pack("{s:{s:s, s:s, s:n}}", "error", "message", msg, "type", type, "code"));
}

// Reads the sampling fields of a request into j; a message naming the field on error.
static int parse_settings(const Server *s, const json_t *req, Job *j, char *msg, size_t msg_len) {
    const json_t *v;
    j->sp = (SampleParams){.temperature = 1, .top_p = 1};
    j->max_tokens = s->o->max_tokens;
    if ((v = json_object_get(req, "max_tokens")) || (v = json_object_get(req, "max_completion_tokens"))) {
        if (!json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 1 ||
                                 json_integer_value(v) > s->o->max_tokens)) {
            snprintf(msg, msg_len, "max_tokens: expected an integer from 1 to %d", s->o->max_tokens);
            return DS_ERR;
        }
        if (json_is_integer(v)) j->max_tokens = (int)json_integer_value(v);
    }
    if ((v = json_object_get(req, "temperature")) && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 2)
            return snprintf(msg, msg_len, "temperature: expected a number from 0 to 2"), DS_ERR;
        j->sp.temperature = json_number_value(v);
    }
    if ((v = json_object_get(req, "top_p")) && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 1)
            return snprintf(msg, msg_len, "top_p: expected a number in (0, 1]"), DS_ERR;
        j->sp.top_p = json_number_value(v);
    }
    if ((v = json_object_get(req, "top_k")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1 << 20)
            return snprintf(msg, msg_len, "top_k: expected a non-negative integer"), DS_ERR;
        j->sp.top_k = (int)json_integer_value(v);
    }
    j->seed_stream = s->o->seed ^ (uint64_t)j->number * 0x9E3779B97F4A7C15ull;
    if ((v = json_object_get(req, "seed")) && !json_is_null(v)) {
        if (!json_is_integer(v)) return snprintf(msg, msg_len, "seed: expected an integer"), DS_ERR;
        j->seed_stream = (uint64_t)json_integer_value(v);
    }
    if ((v = json_object_get(req, "stream")) && !json_is_null(v)) {
        if (!json_is_boolean(v)) return snprintf(msg, msg_len, "stream: expected true or false"), DS_ERR;
        j->stream = json_is_true(v);
    }
    if ((v = json_object_get(req, "stop")) && !json_is_null(v)) {
        json_t *one = json_is_string(v) ? json_pack("[O]", v) : json_incref((json_t *)v);
        size_t i;
        json_t *x;
        int bad = !json_is_array(one) || json_array_size(one) > STOPS_MAX;
        json_array_foreach(one, i, x) bad |= !json_is_string(x) || !json_string_length(x) ||
                                              json_string_length(x) > STOP_LEN_MAX;
        if (!bad) json_array_foreach(one, i, x) {
                j->stops[j->n_stops++] = ds_strdup(json_string_value(x));
                j->hold = DS_MAX(j->hold, json_string_length(x) - 1);
            }
        json_decref(one);
        if (bad)
            return snprintf(msg, msg_len, "stop: expected a string or up to %d non-empty strings of at most %d bytes",
                            STOPS_MAX, STOP_LEN_MAX), DS_ERR;
    }
    // What would change the answer and is not implemented is refused, never ignored.
    if ((v = json_object_get(req, "n")) && !json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) == 1))
        return snprintf(msg, msg_len, "n: only 1 completion per request is supported"), DS_ERR;
    static const char *const zero_only[] = {"presence_penalty", "frequency_penalty"};
    for (size_t k = 0; k < DS_ARRAY_LEN(zero_only); k++)
        if ((v = json_object_get(req, zero_only[k])) && !json_is_null(v) && !(json_is_number(v) && json_number_value(v) == 0))
            return snprintf(msg, msg_len, "%s: not supported (only 0)", zero_only[k]), DS_ERR;
    static const char *const unsupported[] = {"logit_bias", "logprobs", "top_logprobs", "echo", "best_of",
                                              "suffix", "tools", "functions", "response_format"};
    for (size_t k = 0; k < DS_ARRAY_LEN(unsupported); k++)
        if ((v = json_object_get(req, unsupported[k])) && !json_is_null(v) && !json_is_false(v) &&
            !(json_is_object(v) && !json_object_size(v)) && !(json_is_array(v) && !json_array_size(v)) &&
            !(json_is_integer(v) && !strcmp(unsupported[k], "best_of") && json_integer_value(v) == 1))
            return snprintf(msg, msg_len, "%s: not supported", unsupported[k]), DS_ERR;
    return DS_OK;
}

// The prompt of a completions or chat request, as token ids.
static int parse_prompt(const Server *s, const json_t *req, Job *j, char *msg, size_t msg_len) {
    if (j->kind == KIND_COMPLETION) {
        const json_t *p = json_object_get(req, "prompt");
        if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0))) p = json_array_get(p, 0);
        if (json_is_string(p)) {
            if (!s->tok) return snprintf(msg, msg_len, "prompt: the model has no tokenizer; send token ids"), DS_ERR;
            tok_encode(s->tok, json_string_value(p), json_string_length(p), 1, &j->prompt);
        } else if (json_is_array(p) && json_array_size(p) > 0) {
            size_t i;
            json_t *x;
            json_array_foreach(p, i, x) {
                if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) >= engine_vocab(s->en))
                    return snprintf(msg, msg_len, "prompt[%zu]: not a token id of this model", i), DS_ERR;
                tokids_push(&j->prompt, (uint32_t)json_integer_value(x));
            }
        } else {
            return snprintf(msg, msg_len, "prompt: expected a string or an array of token ids"), DS_ERR;
        }
    } else {
        const json_t *m = json_object_get(req, "messages");
        if (!json_is_array(m) || !json_array_size(m)) return snprintf(msg, msg_len, "messages: expected a non-empty array"), DS_ERR;
        if (!s->tok) return snprintf(msg, msg_len, "messages: the model has no tokenizer"), DS_ERR;
        size_t i;
        json_t *x;
        json_array_foreach(m, i, x) {
            const char *role = json_string_value(json_object_get(x, "role"));
            if (!role || !json_is_string(json_object_get(x, "content")))
                return snprintf(msg, msg_len, "messages[%zu]: expected {\"role\", \"content\"} strings", i), DS_ERR;
        }
        json_t *rec = json_pack("{s:O}", "messages", m);
        char *prompt = NULL, *answer = NULL;
        DsErr e;
        int rc = chat_render(rec, s->o->tmpl, "request", &prompt, &answer, &e);
        json_decref(rec);
        if (rc) return snprintf(msg, msg_len, "%.400s", e.msg), DS_ERR;
        tok_encode(s->tok, prompt, strlen(prompt), 1, &j->prompt);
        free(prompt), free(answer);
    }
    if (j->prompt.n == 0) return snprintf(msg, msg_len, "the prompt is empty"), DS_ERR;
    if ((int)j->prompt.n >= engine_max_len(s->en))
        return snprintf(msg, msg_len, "the prompt has %zu tokens; this server takes at most %d",
                        j->prompt.n, engine_max_len(s->en) - 1), DS_ERR;
    return DS_OK;
}

// Streams hand the engine's SSE bytes to the client as they appear.
typedef struct StreamCtx {
    Server *s;
    Job *j;
} StreamCtx;

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    StreamCtx *sc = cls;
    Server *s = sc->s;
    Job *j = sc->j;
    (void)pos;
    pthread_mutex_lock(&s->mu);
    while (j->sent == j->out.len && !j->done && !s->engine_rc) wait_a_while(&j->cv, &s->mu);
    ssize_t n;
    if (j->sent < j->out.len) {
        n = (ssize_t)DS_MIN(max, j->out.len - j->sent);
        memcpy(buf, j->out.data + j->sent, (size_t)n);
        j->sent += (size_t)n;
    } else {
        n = j->done ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void stream_free(void *cls) {
    StreamCtx *sc = cls;
    pthread_mutex_lock(&sc->s->mu);
    sc->j->cancelled = 1; // a client gone before the end stops its sample at the next token
    job_unref(sc->s, sc->j);
    pthread_mutex_unlock(&sc->s->mu);
    free(sc);
}

static enum MHD_Result handle_generate(Server *s, struct MHD_Connection *c, Kind kind, const Conn *cn) {
    json_error_t je;
    json_t *req = json_loadb(cn->body.data ? cn->body.data : "", cn->body.len, JSON_REJECT_DUPLICATES, &je);
    char msg[512];
    if (!req || !json_is_object(req)) {
        snprintf(msg, sizeof msg, "request body: %s", req ? "expected a JSON object" : je.text);
        json_decref(req);
        return respond_error(s, c, 400, "invalid_request_error", msg);
    }
    Job *j = ds_calloc(1, sizeof *j);
    pthread_cond_init(&j->cv, NULL);
    j->kind = kind;
    j->refs = 1;
    pthread_mutex_lock(&s->mu);
    j->number = ++s->numbered;
    pthread_mutex_unlock(&s->mu);
    if (parse_settings(s, req, j, msg, sizeof msg) || parse_prompt(s, req, j, msg, sizeof msg)) {
        json_decref(req);
        pthread_mutex_lock(&s->mu);
        job_unref(s, j);
        pthread_mutex_unlock(&s->mu);
        return respond_error(s, c, 400, "invalid_request_error", msg);
    }
    json_decref(req);
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        job_unref(s, j);
        pthread_mutex_unlock(&s->mu);
        return respond_error(s, c, 503, "server_error", "the server is shutting down");
    }
    s->st.requests++;
    s->st.prompt_tokens += (long)j->prompt.n;
    j->refs++; // the engine's reference, dropped when the result is delivered
    if (s->tail) s->tail->next_in_queue = j;
    else s->head = j;
    s->tail = j;
    pthread_cond_signal(&s->cv);
    if (j->stream) {
        pthread_mutex_unlock(&s->mu);
        StreamCtx *sc = ds_malloc(sizeof *sc);
        *sc = (StreamCtx){s, j};
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, sc, stream_free);
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        enum MHD_Result rc = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return rc;
    }
    while (!j->done && !s->engine_rc) wait_a_while(&j->cv, &s->mu);
    if (!j->done) {
        job_unref(s, j);
        pthread_mutex_unlock(&s->mu);
        return respond_error(s, c, 500, "server_error", "the engine failed");
    }
    char id[48];
    snprintf(id, sizeof id, "%s-%ld", kind == KIND_CHAT ? "chatcmpl" : "cmpl", j->number);
    json_t *choice = kind == KIND_CHAT
                         ? json_pack("{s:i, s:{s:s, s:s}, s:s}", "index", 0, "message", "role", "assistant",
                                     "content", j->text, "finish_reason", finish_reason(j->finish))
                         : json_pack("{s:i, s:s, s:n, s:s}", "index", 0, "text", j->text, "logprobs",
                                     "finish_reason", finish_reason(j->finish));
    json_t *out = json_pack("{s:s, s:s, s:I, s:s, s:[o], s:{s:i, s:i, s:i}}", "id", id, "object",
                            kind == KIND_CHAT ? "chat.completion" : "text_completion", "created",
                            (json_int_t)time(NULL), "model", s->o->model_name, "choices", choice, "usage",
                            "prompt_tokens", (int)j->prompt.n, "completion_tokens", j->n_tokens,
                            "total_tokens", (int)j->prompt.n + j->n_tokens);
    job_unref(s, j);
    pthread_mutex_unlock(&s->mu);
    return respond_json(c, 200, out);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    Server *s = cls;
    (void)version;
    if (!*con_cls) { // first call: headers only
        *con_cls = ds_calloc(1, sizeof(Conn));
        return MHD_YES;
    }
    Conn *cn = *con_cls;
    if (*upload_size) {
        if (cn->body.len + *upload_size > BODY_MAX) cn->too_large = 1;
        else dsbuf_append(&cn->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    int post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
    if (!strcmp(url, "/v1/completions") || !strcmp(url, "/v1/chat/completions")) {
        if (!post) return respond_error(s, c, 405, "invalid_request_error", "use POST");
        if (cn->too_large) return respond_error(s, c, 413, "invalid_request_error", "request body over 1 MiB");
        return handle_generate(s, c, url[4] == 'c' && url[5] == 'h' ? KIND_CHAT : KIND_COMPLETION, cn);
    }
    if (!strcmp(url, "/v1/models")) {
        if (!get) return respond_error(s, c, 405, "invalid_request_error", "use GET");
        return respond_json(c, 200, json_pack("{s:s, s:[{s:s, s:s, s:s}]}", "object", "list", "data", "id",
                                              s->o->model_name, "object", "model", "owned_by", "ds"));
    }
    if (!strcmp(url, "/health")) return respond_json(c, 200, json_pack("{s:s}", "status", "ok"));
    return respond_error(s, c, 404, "invalid_request_error", "no such endpoint");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)cls, (void)c, (void)t;
    Conn *cn = *con_cls;
    if (!cn) return;
    dsbuf_free(&cn->body);
    free(cn);
    *con_cls = NULL;
}

int serve_run(Engine *en, const Tokenizer *tok, const ServeOpts *o, volatile sig_atomic_t *stop,
              ServeStats *st, DsErr *e) {
    Server s = {.o = o, .en = en, .tok = tok};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    const char *host = o->host ? o->host : "127.0.0.1";
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return ds_errf(e, "--host %s: not an IPv4 address", host);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, &s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(o->max_connections > 0 ? o->max_connections : 64), MHD_OPTION_CONNECTION_TIMEOUT, 600u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!d) return ds_errf(e, "cannot listen on %s:%d", host, o->port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? info->port : o->port;
    int rc = DS_OK;
    if (o->port_file) {
        AtomicFile f;
        if (atomic_open(&f, o->port_file, e) == DS_OK) {
            fprintf(f.f, "%d\n", port);
            rc = atomic_commit(&f, e);
        } else rc = DS_ERR;
    }
    pthread_t eng;
    double t0 = ds_now();
    if (rc == DS_OK) {
        pthread_create(&eng, NULL, engine_main, &s);
        for (;;) {
            pthread_mutex_lock(&s.mu);
            int over = s.stopping;
            pthread_mutex_unlock(&s.mu);
            if (over || *stop) break;
            usleep(50000);
        }
        pthread_mutex_lock(&s.mu);
        s.stopping = 1; // the queue drains: every accepted request is still answered
        pthread_cond_signal(&s.cv);
        pthread_mutex_unlock(&s.mu);
        pthread_join(eng, NULL);
    }
    MHD_stop_daemon(d);
    s.st.seconds = ds_now() - t0;
    *st = s.st;
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
    if (rc == DS_OK && s.engine_rc != DS_OK) {
        if (e) *e = s.engine_err;
        rc = DS_ERR;
    }
    return rc;
}
