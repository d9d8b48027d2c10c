// tokenizer.h — byte-level BPE tokenizer: Hugging Face tokenizer.json in and out, encode, decode.
// Tokens are raw byte strings inside; the byte-to-unicode alphabet of GPT-2 appears only in the
// JSON. Any byte-level BPE tokenizer.json that Hugging Face tokenizers loads is read (normalizers,
// pre-tokenizers, model options, added tokens, post-processor, decoder); what is not supported is
// refused by name. Formats and the encode/decode contract: docs/TOKENIZER.md.
#ifndef DS_TOKENIZER_H
#define DS_TOKENIZER_H

#include "core/common.h"
#include "text/pretokenize.h"

typedef struct Tokenizer Tokenizer;

// ---- load, save -------------------------------------------------------------------------------
// tokenizer.json, validated: ids unique and in range (below twice the number of tokens + 256, so
// a small file cannot ask for a huge table), merges of known tokens, added tokens consistent with
// the vocab. Errors name the file and the JSON path.
Tokenizer *tok_load(const char *path, DsErr *e);
// From JSON text in memory (e.g. a tar member); name is used in messages.
Tokenizer *tok_from_json(const char *json, size_t len, const char *name, DsErr *e);
char *tok_to_json(const Tokenizer *t, size_t *len);           // malloc'd; what tok_save writes
int tok_save(const Tokenizer *t, const char *path, DsErr *e); // atomic; "-" is stdout
void tok_free(Tokenizer *t);                                  // accepts NULL
// GPT-2's encoder.json (token -> id) and vocab.bpe / merges.txt ("a b" lines, optional #version).
// "<|endoftext|>", when in the vocabulary, becomes a special token.
Tokenizer *tok_import_gpt2(const char *vocab_path, const char *merges_path, DsErr *e);

// ---- building (training, importing) -------------------------------------------------------------
// Start empty with a pre-tokenizer (ownership of p passes to the tokenizer), then add tokens, added
// tokens and merges (rank = order of addition), then tok_build checks and indexes everything.
Tokenizer *tok_new(Pretok *p);
int tok_add_token(Tokenizer *t, uint32_t id, const void *bytes, size_t len, DsErr *e);
// An added token matched verbatim in text (special ones unless the caller leaves out TOK_SPECIAL).
// in_vocab: it also appears in the model's vocab (as Hugging Face trainers write specials).
int tok_add_added(Tokenizer *t, uint32_t id, const char *content, int special, int in_vocab,
                  DsErr *e);
// The same with Hugging Face's matching options.
typedef struct TokAdded {
    int special, in_vocab;
    int lstrip, rstrip; // the match takes the whitespace on its left / right
    int normalized;     // matched in the normalized text (else in the raw text, first)
    int single_word;    // only where no letter or digit touches it
} TokAdded;
int tok_add_added_opts(Tokenizer *t, uint32_t id, const char *content, const TokAdded *o,
                       DsErr *e);
int tok_add_merge(Tokenizer *t, uint32_t left, uint32_t right, DsErr *e);
int tok_build(Tokenizer *t, DsErr *e); // every byte must be a token; computes the hash

// ---- queries ----------------------------------------------------------------------------------
int tok_vocab_size(const Tokenizer *t); // highest id + 1, including added tokens
int tok_n_merges(const Tokenizer *t);
void tok_merge_pair(const Tokenizer *t, int rank, uint32_t *left, uint32_t *right);
void tok_hash(const Tokenizer *t, char hex[65]); // sha256 of tok_to_json output
const Pretok *tok_pretok(const Tokenizer *t);
// Special/added token text, raw vocab bytes, or the token as written in tokenizer.json → id; -1.
int tok_token_id(const Tokenizer *t, const char *token);
// Raw bytes of one token (added tokens: their text); NULL for an id that names no token.
const char *tok_token_bytes(const Tokenizer *t, uint32_t id, size_t *len);
int tok_is_special(const Tokenizer *t, uint32_t id);

// ---- encode, decode -----------------------------------------------------------------------------
typedef struct TokIds {
    uint32_t *ids;
    size_t n, cap;
} TokIds;
void tokids_push(TokIds *v, uint32_t id);
void tokids_free(TokIds *v);

// Encode flags. TOK_SPECIAL: special added tokens in the text become their ids, as Hugging Face
// always does (without it their text is encoded as text: for untrusted input; added tokens that are
// not special always match). TOK_ADD_SPECIAL: apply the post-processor (the template's BOS/EOS),
// Hugging Face's add_special_tokens.
enum { TOK_SPECIAL = 1, TOK_ADD_SPECIAL = 2 };

// Appends the ids of text[0, len) (any bytes, NUL and invalid UTF-8 included) and returns how many.
// Thread-safe for concurrent calls on one tokenizer: the pre-token cache lives in the call.
size_t tok_encode(const Tokenizer *t, const char *text, size_t len, int flags, TokIds *out);

// A pre-token cache (pre-token bytes -> ids) that outlives one call, for a stream of many short
// documents. One cache per thread.
typedef struct TokCache TokCache;
TokCache *tok_cache_new(void);
void tok_cache_free(TokCache *c); // accepts NULL
size_t tok_encode_cached(const Tokenizer *t, TokCache *c, const char *text, size_t len, int flags,
                         TokIds *out);

// Appends the text of the ids through the tokenizer's decoder (ByteLevel: the raw bytes of the
// tokens, added tokens as their text); ids naming no token add nothing.
void tok_decode(const Tokenizer *t, const uint32_t *ids, size_t n, DsBuf *out);

// GPT-2's printable stand-ins for bytes, as tokenizer.json spells tokens: appends the UTF-8 of the
// byte-level form of s[0, n); the reverse returns DS_ERR on a character outside the alphabet.
void tok_bytelevel_encode(const void *s, size_t n, DsBuf *out);
int tok_bytelevel_decode(const char *s, size_t n, DsBuf *out);

#endif
