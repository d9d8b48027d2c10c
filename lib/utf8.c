// utf8.c — UTF-8 validation and repair (RFC 3629: no overlongs, surrogates or code points > U+10FFFF).
#include "utf8.h"

int utf8_seq_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!len || (size_t)len > n) return 0;
    for (int i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0; // overlong
    if (c == 0xED && s[1] > 0x9F) return 0; // surrogates
    if (c == 0xF0 && s[1] < 0x90) return 0; // overlong
    if (c == 0xF4 && s[1] > 0x8F) return 0; // > U+10FFFF
    return len;
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
