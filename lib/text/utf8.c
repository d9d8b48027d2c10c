// utf8.c — UTF-8 validation and repair (RFC 3629: no overlongs, surrogates or code points > U+10FFFF),
// decoding through libutf8proc.
#include "text/utf8.h"

#include <utf8proc.h>

int utf8_seq_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    if (s[0] < 0x80) return 1;
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate(s, (utf8proc_ssize_t)(n < 4 ? n : 4), &cp);
    return k > 0 ? (int)k : 0;
}

void utf8_sanitize(const char *s, size_t n, DsBuf *out) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;
    dsbuf_reserve(out, n + 1);
    while (i < n) {
        int l = p[i] ? utf8_seq_len(p + i, n - i) : 0;
        if (l) {
            i += (size_t)l;
            continue;
        }
        dsbuf_append(out, s + run, i - run);
        dsbuf_append(out, "\xEF\xBF\xBD", 3);
        run = ++i;
    }
    dsbuf_append(out, s + run, n - run);
}

size_t utf8_stream_prefix(const char *text, size_t len, size_t hold) {
    size_t n = len > hold ? len - hold : 0;
    size_t k = n;
    while (k > 0 && k + 4 > n && ((unsigned char)text[k - 1] & 0xC0) == 0x80) k--;
    if (k > 0) {
        unsigned char c = (unsigned char)text[k - 1];
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (n - (k - 1) < need) n = k - 1; // a sequence cut short: keep it for later
    }
    return n;
}
