// utf8.h — UTF-8 validation and repair. Sampled text can end inside a character or contain byte
// tokens that are not valid UTF-8; JSON output needs valid text.
#ifndef DS_UTF8_H
#define DS_UTF8_H

#include "core/common.h"

// Length of the valid UTF-8 sequence starting at s (1–4), or 0 when s[0..n) does not start one.
int utf8_seq_len(const unsigned char *s, size_t n);
// Appends s[0..n) to out with every invalid byte, and every NUL (which JSON readers refuse inside
// strings), replaced by U+FFFD.
void utf8_sanitize(const char *s, size_t n, DsBuf *out);

// Bytes of text[0..len) that are safe to stream now: the last `hold` bytes are kept back (they
// may start a stop string), and the cut never falls inside a UTF-8 sequence.
size_t utf8_stream_prefix(const char *text, size_t len, size_t hold);

#endif
