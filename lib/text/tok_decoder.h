// tok_decoder.h — the decoders of a tokenizer.json (ByteLevel, Replace, Strip, Fuse, ByteFallback,
// Sequence): token strings back to text, as Hugging Face's decode does.
#ifndef DS_TOK_DECODER_H
#define DS_TOK_DECODER_H

#include <jansson.h>

#include "core/common.h"

typedef struct TokDecoder TokDecoder;

// Reads a "decoder" object; *out is NULL for null (Hugging Face then joins the tokens with
// spaces). Errors name the JSON path and refuse unsupported decoders by name.
int tok_decoder_from_json(const json_t *j, TokDecoder **out, DsErr *e);
void tok_decoder_free(TokDecoder *d); // accepts NULL
// 1 when decoding gives the raw bytes of the tokens joined (ByteLevel, with Fuse steps at most).
int tok_decoder_is_bytes(const TokDecoder *d);
// Decodes n token strings, token i being arena[off[i], off[i + 1]) in tokenizer.json's spelling
// (byte-level form for vocab tokens, the text for added tokens); appends the text to out. The
// bytes come out as decoded: no U+FFFD for invalid UTF-8, so byte strings round-trip.
void tok_decoder_run(const TokDecoder *d, const char *arena, const size_t *off, size_t n,
                     DsBuf *out);

#endif
