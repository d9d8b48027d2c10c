// tok_normalize.h — the normalizers of a tokenizer.json (NFC, NFD, NFKC, NFKD through libutf8proc;
// Lowercase, Replace, Strip, Prepend; Sequence), applied to text before pre-tokenization.
#ifndef DS_TOK_NORMALIZE_H
#define DS_TOK_NORMALIZE_H

#include <jansson.h>

#include "core/common.h"

typedef struct TokNorm TokNorm;

// Reads a "normalizer" object; *out is NULL for null or a Sequence that does nothing. Errors name
// the JSON path and refuse unsupported normalizers by name.
int tok_norm_from_json(const json_t *j, TokNorm **out, DsErr *e);
void tok_norm_free(TokNorm *n); // accepts NULL
// Appends the normalized form of s[0, len) to out. Bytes that are not valid UTF-8 pass through
// unchanged (Hugging Face only sees valid text). Thread-safe.
void tok_norm_apply(const TokNorm *n, const char *s, size_t len, DsBuf *out);

// Rust's char::is_whitespace (the Unicode White_Space property), as Hugging Face uses it.
int tok_is_white_space(int32_t cp);

#endif
