// pretokenize.h — splits text into pre-tokens with a chain of PCRE2 regexes (GPT-2, GPT-4 style,
// digit-level), the step before byte-level BPE. Bytes that are not valid UTF-8 never reach the
// regex: each such byte is a pre-token of its own, so any byte string splits (and round-trips).
#ifndef DS_PRETOKENIZE_H
#define DS_PRETOKENIZE_H

#include "common.h"

// The named pre-tokenizers `ds-tokenize train --pretokenizer` offers.
typedef enum PretokKind { PRETOK_GPT2, PRETOK_GPT4, PRETOK_DIGITS, PRETOK_CUSTOM } PretokKind;

#define PRETOK_MAX_REGEX 8

typedef struct Pretok Pretok;

// kind by name ("gpt2", "gpt4", "digits"); -1 when unknown.
int pretok_kind_from_name(const char *name);
const char *pretok_kind_name(PretokKind kind); // "custom" for PRETOK_CUSTOM
const char *pretok_pattern(PretokKind kind);   // the regex of a named kind (NULL for custom)

// A chain of n regexes applied in turn: the first splits the text, the next splits each piece, and
// so on (Hugging Face's Sequence of Split pre-tokenizers with behavior "Isolated": text between
// matches is a piece too). Patterns compile with PCRE2_UTF | PCRE2_UCP and are JIT-compiled.
Pretok *pretok_new(const char *const *patterns, int n, DsErr *e);
Pretok *pretok_new_kind(PretokKind kind, DsErr *e);
void pretok_free(Pretok *p); // accepts NULL
int pretok_count(const Pretok *p);
const char *pretok_regex(const Pretok *p, int i); // pattern i as given

// Called once per pre-token, in order; the pieces concatenate to the input exactly.
typedef void (*PretokFn)(void *ctx, const char *piece, size_t len);
// Thread-safe: per-call match data, p is only read.
void pretok_split(const Pretok *p, const char *text, size_t len, PretokFn fn, void *ctx);

// Length of the longest prefix of s[0, n) that is valid UTF-8 (no overlongs, surrogates or code
// points above U+10FFFF: what PCRE2 accepts).
size_t pretok_utf8_valid_prefix(const char *s, size_t n);

#endif
