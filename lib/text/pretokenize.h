// pretokenize.h — splits text into pre-tokens with a chain of PCRE2 regexes (GPT-2, GPT-4 style,
// digit-level, or any Hugging Face pre_tokenizer built from splits), the step before byte-level
// BPE. Bytes that are not valid UTF-8 never reach the regex: each such byte is a pre-token of its
// own, so any byte string splits (and round-trips).
#ifndef DS_PRETOKENIZE_H
#define DS_PRETOKENIZE_H

#include <jansson.h>

#include "core/common.h"

// The named pre-tokenizers `ds-tokenize train --pretokenizer` offers.
typedef enum PretokKind { PRETOK_GPT2, PRETOK_GPT4, PRETOK_DIGITS, PRETOK_CUSTOM } PretokKind;

#define PRETOK_MAX_REGEX 16

// What a split does with its delimiters (Hugging Face's SplitDelimiterBehavior).
typedef enum PretokBehavior {
    PRETOK_REMOVED,
    PRETOK_ISOLATED, // delimiters and the text between them are pieces
    PRETOK_MERGED_WITH_PREVIOUS,
    PRETOK_MERGED_WITH_NEXT,
    PRETOK_CONTIGUOUS, // runs of adjacent delimiters become one piece
} PretokBehavior;

// One step of the chain: each piece of the step before is split again.
typedef struct PretokStep {
    const char *pattern;     // PCRE2 regex (a literal string when literal); NULL: no split
    int literal;             // pattern is a plain string
    PretokBehavior behavior; // what the matches become
    int invert;              // the text between matches is the delimiter instead
    int prefix_space;        // ByteLevel add_prefix_space: a piece not starting with ' ' gets one
} PretokStep;

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
// Any chain of steps (0 steps: the text is one piece).
Pretok *pretok_new_steps(const PretokStep *steps, int n, DsErr *e);
// A tokenizer.json "pre_tokenizer" object: Sequence, Split (String or Regex, every behavior,
// invert), ByteLevel (use_regex, add_prefix_space), Digits, Punctuation, Whitespace,
// WhitespaceSplit. ByteLevel must come last (it maps the text to bytes). Errors name the JSON path
// and refuse what is not supported by name.
Pretok *pretok_from_json(const json_t *j, DsErr *e);
void pretok_free(Pretok *p); // accepts NULL
int pretok_count(const Pretok *p);
const char *pretok_regex(const Pretok *p, int i); // pattern i as given
// 1 when the chain is plain Isolated regex splits (what pretok_new builds).
int pretok_is_simple(const Pretok *p);

// Called once per pre-token, in order; for chains without Removed delimiters or prefix spaces the
// pieces concatenate to the input exactly.
typedef void (*PretokFn)(void *ctx, const char *piece, size_t len);
// Thread-safe: per-call match data, p is only read.
void pretok_split(const Pretok *p, const char *text, size_t len, PretokFn fn, void *ctx);

// Length of the longest prefix of s[0, n) that is valid UTF-8 (no overlongs, surrogates or code
// points above U+10FFFF: what PCRE2 accepts).
size_t pretok_utf8_valid_prefix(const char *s, size_t n);

#endif
