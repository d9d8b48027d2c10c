// chat_session.h — an interactive conversation with a model: the messages so far, the whole
// conversation rendered with a chat template each turn, the reply sampled token by token and
// streamed, and the engine's cache kept between turns so that only the part of the new rendering
// that differs from what is cached gets prefilled.
#ifndef DS_CHAT_SESSION_H
#define DS_CHAT_SESSION_H

#include <jansson.h>
#include <signal.h>

#include "core/common.h"
#include "eval/task.h"
#include "infer/engine.h"
#include "infer/sample.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

typedef struct ChatOpts {
    SampleParams sp;
    int max_tokens;           // reply tokens; the rendered conversation must leave this much room
    uint64_t seed;            // turn t (1-based since the start or the last reset) samples from
                              // rng_derive(seed, t, 0)
    const uint32_t *eos;      // tokens that end a reply
    int n_eos;
    const char *const *stops; // stop strings (the reply is cut before them)
    int n_stops;
    const ChatTemplate *ct;   // the model's own template, or NULL for tmpl
    PromptTemplate tmpl;      // plain, or r1 (one question per turn: r1 keeps no conversation)
    int prefill_chunk;        // tokens per forward while prefilling (at most the engine's rows)
    // Called with each new piece of the reply once it is safe to show: never inside a possible
    // stop string, never ending inside a UTF-8 character, always valid UTF-8. NULL: no calls.
    void (*on_text)(void *ctx, const char *piece, size_t len);
    void *text_ctx;
    // Nonzero stops the reply in progress (finish "interrupted"); read between forwards.
    const volatile sig_atomic_t *interrupt;
} ChatOpts;

typedef struct ChatTurn {
    const json_t *messages;   // the conversation rendered for this turn (system first, the new
                              // user message last): a record `ds-infer generate` reads as is
    const char *prompt;       // its rendering
    const char *reply;        // the reply (valid UTF-8, cut before a stop string), as streamed
    size_t reply_len;
    const char *finish;       // "eos", "stop", "length", "interrupted"
    int n_prompt;             // tokens of the rendering
    int n_cached;             // of them already in the cache from earlier turns (not prefilled)
    int n_tokens;             // reply tokens sampled (an end-of-sequence token not counted)
    int dropped;              // oldest messages dropped so that the conversation fits
} ChatTurn;                   // everything stays valid until the session's next call

typedef struct ChatSession ChatSession;

// Uses slot 0 of the engine, which must be the session's alone. The engine, tokenizer, template
// and stop strings must outlive the session. DS_ERR when max_tokens leaves no room for a prompt.
ChatSession *chat_session_new(Engine *en, const Tokenizer *tok, const ChatOpts *o, DsErr *e);
void chat_session_free(ChatSession *s);
// Forgets the conversation (the system text stays) and starts the turn count again, so the same
// first message gets the same reply. The cache is kept: a new rendering that repeats its start
// reuses it.
void chat_session_reset(ChatSession *s);
// The system message of the turns that follow (NULL or "": none); the conversation is kept.
void chat_session_set_system(ChatSession *s, const char *text);
// One turn: appends the user message, renders, drops the oldest messages (never the system text)
// while the rendering plus max_tokens exceeds the engine's max_len, prefills what the cache does
// not hold, samples and streams the reply, and appends it as the assistant message (an
// interrupted reply as far as it got). DS_ERR (the conversation unchanged) when the template
// refuses the conversation or the new message alone does not fit.
int chat_session_turn(ChatSession *s, const char *user, ChatTurn *t, DsErr *e);

#endif
