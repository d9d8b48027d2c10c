// math_answer.c — final-answer extraction and normalisation for GSM8K ("#### N") and MATH
// (\boxed{}).
#include "eval/math_answer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

// ---------------------------------------------------------------------------------------------
// Small string helpers over malloc'd NUL-terminated strings. Each consumes its argument.

// Bytes of the UTF-8 code point starting at s (1 for stray bytes), so that "one character" means
// what it does in Python and a split never cuts a multi-byte character.
static size_t cp_len(const char *s) {
    unsigned char c = (unsigned char)s[0];
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    for (size_t i = 1; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) return i;
    return n;
}

static size_t cp_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static char *replace_all(char *s, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to);
    if (!strstr(s, from)) return s;
    DsBuf b = {0};
    const char *p = s, *m;
    while ((m = strstr(p, from))) {
        dsbuf_append(&b, p, (size_t)(m - p));
        dsbuf_append(&b, to, tl);
        p = m + fl;
    }
    dsbuf_append(&b, p, strlen(p) + 1);
    free(s);
    return b.data;
}

static size_t count_of(const char *s, const char *needle) {
    size_t n = 0, l = strlen(needle);
    for (const char *p = s; (p = strstr(p, needle)); p += l) n++;
    return n;
}

// ---------------------------------------------------------------------------------------------
// The reference normalisation (Hendrycks et al., MATH: is_equiv / strip_string), step by step.
// Functions return NULL where the Python code raises.

// "\frac12" -> "\frac{1}{2}", "\frac1b" -> "\frac{1}{b}", "\frac1{72}" -> "\frac{1}{72}".
static char *fix_fracs(char *s) {
    static const char key[] = "\\frac";
    const size_t kl = sizeof key - 1;
    char *first = strstr(s, key);
    if (!first) return s;
    DsBuf b = {0};
    dsbuf_append(&b, s, (size_t)(first - s));
    const char *p = first + kl;
    for (;;) {
        const char *next = strstr(p, key);
        size_t n = next ? (size_t)(next - p) : strlen(p); // this piece: p[0..n)
        dsbuf_append(&b, key, kl);
        if (n == 0) goto raise; // substr[0] on an empty piece
        if (p[0] == '{') {
            dsbuf_append(&b, p, n);
        } else {
            size_t la = cp_len(p);
            if (la >= n) { // fewer than two characters: the reference returns its input unchanged
                free(b.data);
                return s;
            }
            size_t lb = cp_len(p + la);
            dsbuf_append(&b, "{", 1);
            dsbuf_append(&b, p, la);
            if (p[la] != '{') {
                dsbuf_append(&b, "}{", 2);
                dsbuf_append(&b, p + la, lb);
                dsbuf_append(&b, "}", 1);
            } else {
                dsbuf_append(&b, "}", 1);
                dsbuf_append(&b, p + la, lb);
            }
            dsbuf_append(&b, p + la + lb, n - la - lb);
        }
        if (!next) break;
        p = next + kl;
    }
    dsbuf_append(&b, "", 1);
    free(s);
    return b.data;
raise:
    free(b.data);
    free(s);
    return NULL;
}

// "\sqrt3" -> "\sqrt{3}".
static char *fix_sqrt(char *s) {
    static const char key[] = "\\sqrt";
    const size_t kl = sizeof key - 1;
    char *first = strstr(s, key);
    if (!first) return s;
    DsBuf b = {0};
    dsbuf_append(&b, s, (size_t)(first - s));
    const char *p = first + kl;
    for (;;) {
        const char *next = strstr(p, key);
        size_t n = next ? (size_t)(next - p) : strlen(p);
        if (n == 0) { // split[0] on an empty piece
            free(b.data);
            free(s);
            return NULL;
        }
        if (p[0] != '{') {
            size_t la = cp_len(p);
            dsbuf_append(&b, "\\sqrt{", 6);
            dsbuf_append(&b, p, la);
            dsbuf_append(&b, "}", 1);
            dsbuf_append(&b, p + la, n - la);
        } else {
            dsbuf_append(&b, key, kl);
            dsbuf_append(&b, p, n);
        }
        if (!next) break;
        p = next + kl;
    }
    dsbuf_append(&b, "", 1);
    free(s);
    return b.data;
}

// Python's str(int(x)) == x for an optional '-' and digits: no '+', spaces, leading zeros or "-0".
static int is_canonical_int(const char *s, size_t n) {
    int neg = n && s[0] == '-';
    if (neg) s++, n--;
    if (n == 0 || (s[0] == '0' && (n > 1 || neg))) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

// "3/4" -> "\frac{3}{4}" when both sides are plain integers.
static char *fix_a_slash_b(char *s) {
    char *slash = strchr(s, '/');
    if (!slash || strchr(slash + 1, '/')) return s;
    size_t an = (size_t)(slash - s), bn = strlen(slash + 1);
    if (!is_canonical_int(s, an) || !is_canonical_int(slash + 1, bn)) return s;
    DsBuf b = {0};
    dsbuf_printf(&b, "\\frac{%.*s}{%s}", (int)an, s, slash + 1);
    free(s);
    return b.data;
}

// Units are written "\text{ cm}" in MATH: drop everything from there on.
static char *remove_right_units(char *s) {
    static const char key[] = "\\text{ ";
    size_t n = count_of(s, key);
    if (n == 0) return s;
    if (n != 1) { // assert len(splits) == 2
        free(s);
        return NULL;
    }
    *strstr(s, key) = '\0';
    return s;
}

static char *strip_string(char *s) {
    s = replace_all(s, "\n", "");
    s = replace_all(s, "\\!", "");
    s = replace_all(s, "\\\\", "\\");
    s = replace_all(s, "tfrac", "frac");
    s = replace_all(s, "dfrac", "frac");
    s = replace_all(s, "\\left", "");
    s = replace_all(s, "\\right", "");
    s = replace_all(s, "^{\\circ}", "");
    s = replace_all(s, "^\\circ", "");
    s = replace_all(s, "\\$", "");
    if (!(s = remove_right_units(s))) return NULL;
    s = replace_all(s, "\\%", "");
    s = replace_all(s, " .", " 0.");
    s = replace_all(s, "{.", "{0.");
    if (!s[0]) return s;
    if (s[0] == '.') {
        char *t = ds_malloc(strlen(s) + 2);
        t[0] = '0';
        strcpy(t + 1, s);
        free(s);
        s = t;
    }
    // "k = 5" -> " 5" when there is exactly one '=' and at most two characters before it.
    char *eq = strchr(s, '=');
    if (eq && !strchr(eq + 1, '=') && cp_count(s, (size_t)(eq - s)) <= 2)
        memmove(s, eq + 1, strlen(eq + 1) + 1);
    if (!(s = fix_sqrt(s))) return NULL;
    s = replace_all(s, " ", "");
    if (!(s = fix_fracs(s))) return NULL;
    if (strcmp(s, "0.5") == 0) {
        free(s);
        s = ds_strdup("\\frac{1}{2}");
    }
    return fix_a_slash_b(s);
}

// ---------------------------------------------------------------------------------------------
// Extras beyond the reference, applied to both sides alike.

// "\text{X}" (and \textbf, \mbox) -> "X": answers such as \text{(C)} or \text{Monday}. One pass
// with a stack of open braces that remembers which ones belong to such a keyword; the text is
// left as it is when braces do not balance.
static char *unwrap_text(char *s) {
    static const char *const keys[] = {"\\text{", "\\textbf{", "\\mbox{"};
    if (!strstr(s, "\\text") && !strstr(s, "\\mbox{")) return s;
    size_t n = strlen(s), depth = 0, o = 0;
    char *out = ds_malloc(n + 1), *drop = ds_malloc(n + 1); // drop[d]: brace d closes a keyword
    for (size_t i = 0; i < n;) {
        size_t kl = 0;
        for (size_t k = 0; k < DS_ARRAY_LEN(keys) && !kl; k++)
            if (strncmp(s + i, keys[k], strlen(keys[k])) == 0) kl = strlen(keys[k]);
        if (kl) {
            drop[depth++] = 1;
            i += kl;
            continue;
        }
        if (s[i] == '{') drop[depth++] = 0;
        if (s[i] == '}') {
            if (depth == 0) goto unbalanced;
            if (drop[--depth]) {
                i++;
                continue;
            }
        }
        out[o++] = s[i++];
    }
    if (depth) goto unbalanced;
    out[o] = '\0';
    free(drop);
    free(s);
    return out;
unbalanced:
    free(out);
    free(drop);
    return s;
}

// "3.0" -> "3", "2.50" -> "2.5", "1,000" -> "1000" when the whole answer is such a number.
static char *plain_number(char *s) {
    size_t n = strlen(s), i = 0, digits = 0;
    if (s[i] == '-') i++;
    int dot = 0, comma = 0;
    for (size_t k = i; k < n; k++) {
        if (s[k] >= '0' && s[k] <= '9')
            digits++;
        else if (s[k] == '.' && !dot)
            dot = 1;
        else if (s[k] == ',' && !dot)
            comma = 1;
        else
            return s;
    }
    if (!digits) return s;
    if (comma) { // only the thousands form d{1,3}(,ddd)+
        const char *p = s + i;
        size_t lead = strcspn(p, ",.");
        if (lead == 0 || lead > 3) return s;
        p += lead;
        while (*p == ',') {
            if (strspn(p + 1, "0123456789") != 3) return s;
            p += 4;
        }
        char *w = s;
        for (char *r = s; *r; r++)
            if (*r != ',') *w++ = *r;
        *w = '\0';
    }
    if (dot) {
        n = strlen(s);
        while (n && s[n - 1] == '0') s[--n] = '\0';
        if (n && s[n - 1] == '.') s[--n] = '\0';
        if (n == 0 || strcmp(s, "-") == 0) strcpy(s, "0");
    }
    return s;
}

char *math_normalize(const char *s, size_t len) {
    char *t = ds_malloc(len + 1);
    memcpy(t, s, len);
    t[len] = '\0';
    t = strip_string(t);
    if (!t) return NULL;
    t = unwrap_text(t);
    t = replace_all(t, " ", "");
    return plain_number(t);
}

int math_equiv(const char *a, size_t an, const char *b, size_t bn) {
    char *na = math_normalize(a, an), *nb = math_normalize(b, bn);
    int eq = na && nb ? strcmp(na, nb) == 0 : an == bn && memcmp(a, b, an) == 0;
    free(na);
    free(nb);
    return eq;
}

// ---------------------------------------------------------------------------------------------
// \boxed extraction.

static const char *last_of(const char *s, size_t len, const char *needle) {
    size_t l = strlen(needle);
    const char *last = NULL, *p = s, *end = s + len, *m;
    while (p < end && (m = memmem(p, (size_t)(end - p), needle, l))) last = m, p = m + 1;
    return last;
}

int math_last_boxed(const char *s, size_t len, const char **out, size_t *n) {
    const char *m = last_of(s, len, "\\boxed");
    size_t kl = 6;
    if (!m) m = last_of(s, len, "\\fbox"), kl = 5;
    if (!m) return 0;
    const char *p = m + kl, *end = s + len;
    if (p < end && *p == ' ') { // "\boxed 5$": up to the closing '$' or the line's end
        while (p < end && *p == ' ') p++;
        const char *q = p;
        while (q < end && *q != '$' && *q != '\n') q++;
        while (q > p && q[-1] == ' ') q--;
        *out = p, *n = (size_t)(q - p);
        return q > p;
    }
    // The reference counts braces from the keyword on; the first '{' opens the box.
    int depth = 0;
    const char *open = NULL;
    for (; p < end; p++) {
        if (*p == '{') {
            if (depth++ == 0) open = p;
        } else if (*p == '}') {
            if (depth == 0) return 0;
            if (--depth == 0) {
                *out = open + 1, *n = (size_t)(p - open - 1);
                return 1;
            }
        } else if (depth == 0) {
            return 0; // "\boxedX" or "\boxed" followed by something other than a brace
        }
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// GSM8K numbers.

int math_extract_from_name(const char *name, MathExtract *mode) {
    static const char *const names[] = {"default", "hash", "last-number", "boxed", "answer"};
    for (size_t i = 0; i < DS_ARRAY_LEN(names); i++)
        if (strcmp(name, names[i]) == 0) {
            *mode = (MathExtract)i;
            return DS_OK;
        }
    return DS_ERR;
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void trim(const char **s, size_t *n) {
    while (*n && is_blank((*s)[0])) (*s)++, (*n)--;
    while (*n && is_blank((*s)[*n - 1])) (*n)--;
}

int math_answer_tag(const char *s, size_t len, const char **out, size_t *n) {
    const char *o = last_of(s, len, "<answer>");
    if (!o) return 0;
    const char *body = o + 8, *end = s + len;
    const char *c = memmem(body, (size_t)(end - body), "</answer>", 9);
    if (!c) return 0;
    *out = body, *n = (size_t)(c - body);
    trim(out, n);
    return 1;
}

int math_parse_number(const char *s, size_t len, double *v) {
    char buf[64];
    size_t n = 0;
    int digits = 0, dots = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ',' || c == '$' || c == ' ') continue;
        if (c == '-' && n == 0) {
        } else if (c >= '0' && c <= '9') {
            digits++;
        } else if (c == '.') {
            dots++;
        } else {
            return 0;
        }
        if (n + 1 >= sizeof buf) return 0;
        buf[n++] = c;
    }
    if (n && buf[n - 1] == '.') n--, dots--; // "18." ends a sentence
    if (!digits || dots > 1) return 0;
    buf[n] = '\0';
    char *end;
    double x = strtod(buf, &end);
    if (*end || !isfinite(x)) return 0;
    *v = x;
    return 1;
}

static int is_num_char(char c) { return (c >= '0' && c <= '9') || c == '.' || c == ','; }

// The run of [0-9.,] starting at p (with a '-' right before it), parsed; 0 when it has no digit.
static int number_at(const char *s, const char *p, const char *end, double *v) {
    const char *q = p;
    while (q < end && is_num_char(*q)) q++;
    while (q > p && (q[-1] == ',' || q[-1] == '.')) q--; // "42," "42." end a clause
    if (p > s && p[-1] == '-') p--;
    return q > p && math_parse_number(p, (size_t)(q - p), v);
}

// The span of the last number in s: its [0-9.,] run, with a '-' right before it.
static int last_number_span(const char *s, size_t len, const char **out, size_t *n) {
    const char *q = s + len;
    while (q > s && !(q[-1] >= '0' && q[-1] <= '9')) q--;
    if (q == s) return 0;
    const char *p = q;
    while (p > s && is_num_char(p[-1])) p--;
    while (p < q && (*p == ',' || *p == '.')) {
        if (*p == '.' && p + 1 < q && p[1] >= '0' && p[1] <= '9') break; // ".5"
        p++;
    }
    if (p > s && p[-1] == '-') p--;
    *out = p, *n = (size_t)(q - p);
    return 1;
}

// After the last "####": the rest of its line.
static int hash_span(const char *s, size_t len, const char **out, size_t *n) {
    const char *m = last_of(s, len, "####");
    if (!m) return 0;
    const char *p = m + 4, *end = s + len, *q = p;
    while (q < end && *q != '\n') q++;
    *out = p, *n = (size_t)(q - p);
    trim(out, n);
    return 1;
}

int math_extract_text(const char *s, size_t len, MathExtract mode, const char **out, size_t *n) {
    switch (mode) {
    case MATH_EXTRACT_HASH: return hash_span(s, len, out, n);
    case MATH_EXTRACT_LAST_NUMBER: return last_number_span(s, len, out, n);
    case MATH_EXTRACT_ANSWER: {
        const char *a;
        size_t an;
        if (!math_answer_tag(s, len, &a, &an)) return 0;
        if (!math_last_boxed(a, an, out, n)) *out = a, *n = an;
        return 1;
    }
    case MATH_EXTRACT_DEFAULT:
    case MATH_EXTRACT_BOXED: break;
    }
    return math_last_boxed(s, len, out, n);
}

int math_extract_number(const char *s, size_t len, MathExtract mode, double *v) {
    const char *end = s + len, *a;
    size_t n;
    switch (mode) {
    case MATH_EXTRACT_DEFAULT:
    case MATH_EXTRACT_HASH: {
        const char *m = last_of(s, len, "####");
        if (!m) return 0;
        const char *p = m + 4;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '$')) p++;
        if (p < end && *p == '-') p++;
        return number_at(s, p, end, v);
    }
    case MATH_EXTRACT_BOXED:
        if (!math_last_boxed(s, len, &a, &n)) return 0;
        while (n && (a[n - 1] == ' ' || a[n - 1] == '.')) n--;
        return math_parse_number(a, n, v);
    case MATH_EXTRACT_ANSWER:
        if (!math_extract_text(s, len, mode, &a, &n)) return 0;
        return last_number_span(a, n, &a, &n) && number_at(a, a[0] == '-' ? a + 1 : a, a + n, v);
    case MATH_EXTRACT_LAST_NUMBER: break;
    }
    return last_number_span(s, len, &a, &n) && number_at(s, a[0] == '-' ? a + 1 : a, end, v);
}

int math_numbers_equal(double a, double b) {
    return fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
}
