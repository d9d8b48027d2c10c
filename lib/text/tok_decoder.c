// tok_decoder.c — tokenizer.json decoders over a list of token strings, step by step.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/tok_decoder.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "text/tokenizer.h"

enum { DEC_BYTELEVEL, DEC_FUSE, DEC_REPLACE, DEC_STRIP, DEC_BYTEFALLBACK };

typedef struct DecStep {
    int kind;
    pcre2_code *re;        // DEC_REPLACE
    char *text;            // DEC_REPLACE: replacement; DEC_STRIP: the character stripped
    int start, stop;       // DEC_STRIP: how many at most from each end
} DecStep;

struct TokDecoder {
    DecStep *step;
    int n;
};

void tok_decoder_free(TokDecoder *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) {
        pcre2_code_free(d->step[i].re);
        free(d->step[i].text);
    }
    free(d->step);
    free(d);
}

static void add_step(TokDecoder *d, DecStep s) {
    d->step = ds_realloc(d->step, (size_t)(d->n + 1) * sizeof *d->step);
    d->step[d->n++] = s;
}

static int parse(const json_t *j, const char *path, TokDecoder *d, DsErr *e) {
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_object(j) || !type) return ds_errf(e, "%s: missing \"type\"", path);
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(j, "decoders");
        if (!json_is_array(list)) return ds_errf(e, "%s: missing \"decoders\" array", path);
        size_t i;
        const json_t *v;
        json_array_foreach(list, i, v) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.decoders[%zu]", path, i);
            if (parse(v, sub, d, e) != DS_OK) return DS_ERR;
        }
        return DS_OK;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        add_step(d, (DecStep){.kind = DEC_BYTELEVEL});
        return DS_OK;
    }
    if (strcmp(type, "Fuse") == 0) {
        add_step(d, (DecStep){.kind = DEC_FUSE});
        return DS_OK;
    }
    if (strcmp(type, "ByteFallback") == 0) {
        add_step(d, (DecStep){.kind = DEC_BYTEFALLBACK});
        return DS_OK;
    }
    if (strcmp(type, "Strip") == 0) {
        const char *c = json_string_value(json_object_get(j, "content"));
        const json_t *a = json_object_get(j, "start"), *b = json_object_get(j, "stop");
        int32_t cp;
        if (!c || !*c ||
            utf8proc_iterate((const utf8proc_uint8_t *)c, -1, &cp) != (utf8proc_ssize_t)strlen(c) ||
            !json_is_integer(a) || !json_is_integer(b) || json_integer_value(a) < 0 ||
            json_integer_value(b) < 0)
            return ds_errf(e, "%s: Strip needs one \"content\" character and \"start\", \"stop\" "
                              "counts", path);
        add_step(d, (DecStep){.kind = DEC_STRIP, .text = ds_strdup(c),
                              .start = (int)DS_MIN(json_integer_value(a), 1 << 20),
                              .stop = (int)DS_MIN(json_integer_value(b), 1 << 20)});
        return DS_OK;
    }
    if (strcmp(type, "Replace") == 0) {
        const json_t *pat = json_object_get(j, "pattern");
        const char *re = json_string_value(json_object_get(pat, "Regex"));
        const char *str = json_string_value(json_object_get(pat, "String"));
        const char *content = json_string_value(json_object_get(j, "content"));
        if ((!re && !str) || !content)
            return ds_errf(e, "%s: Replace needs a \"pattern\" (Regex or String) and \"content\"",
                           path);
        if (str && !*str) return DS_OK;
        int err;
        PCRE2_SIZE off;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)(re ? re : str), PCRE2_ZERO_TERMINATED,
                                         re ? PCRE2_UTF | PCRE2_UCP : PCRE2_UTF | PCRE2_LITERAL, &err,
                                         &off, NULL);
        if (!code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            return ds_errf(e, "%s: Replace pattern at offset %zu: %s", path, (size_t)off,
                           (char *)msg);
        }
        add_step(d, (DecStep){.kind = DEC_REPLACE, .re = code, .text = ds_strdup(content)});
        return DS_OK;
    }
    return ds_errf(e, "%s: decoder \"%s\" is not supported", path, type);
}

int tok_decoder_from_json(const json_t *j, TokDecoder **out, DsErr *e) {
    *out = NULL;
    if (!j || json_is_null(j)) return DS_OK;
    TokDecoder *d = ds_calloc(1, sizeof *d);
    if (parse(j, "decoder", d, e) != DS_OK) {
        tok_decoder_free(d);
        return DS_ERR;
    }
    *out = d;
    return DS_OK;
}

int tok_decoder_is_bytes(const TokDecoder *d) {
    if (!d) return 0;
    int bl = 0;
    for (int i = 0; i < d->n; i++) {
        if (d->step[i].kind == DEC_BYTELEVEL)
            bl++;
        else if (d->step[i].kind != DEC_FUSE)
            return 0;
    }
    return bl == 1;
}

// ---------------------------------------------------------------------------------------------
// Running: the token list lives in an arena with offsets, rebuilt by each step.

typedef struct List {
    DsBuf b;
    size_t *off; // n + 1
    size_t n, cap;
} List;

static void list_push(List *l, const void *s, size_t n) {
    if (l->n + 2 > l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->off = ds_realloc(l->off, l->cap * sizeof *l->off);
    }
    if (l->n == 0) l->off[0] = 0;
    dsbuf_append(&l->b, s, n);
    l->off[++l->n] = l->b.len;
}

static int valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

static void replace(const DecStep *st, const char *s, size_t n, DsBuf *out) {
    if (!valid_utf8(s, n)) { // PCRE2 needs valid text; Hugging Face never sees such tokens
        dsbuf_append(out, s, n);
        return;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(st->re, NULL);
    if (!md) ds_fatal(__FILE__, __LINE__, "out of memory (match data)");
    size_t pos = 0, gap = 0;
    while (pos < n &&
           pcre2_match(st->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL) >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) {
            pos = ov[0] + 1;
            while (pos < n && ((unsigned char)s[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        dsbuf_append(out, s + gap, ov[0] - gap);
        dsbuf_append(out, st->text, strlen(st->text));
        gap = pos = ov[1];
    }
    dsbuf_append(out, s + gap, n - gap);
    pcre2_match_data_free(md);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// "<0xAB>" -> 0xAB, else -1
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int h = hexval(s[3]), l = hexval(s[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
}

static void flush_bytes(List *to, DsBuf *bytes, size_t count) {
    if (!count) return;
    if (valid_utf8(bytes->data, bytes->len))
        list_push(to, bytes->data, bytes->len);
    else
        for (size_t k = 0; k < count; k++) list_push(to, "\xEF\xBF\xBD", 3);
    bytes->len = 0;
}

static void run_step(const DecStep *st, const List *from, List *to) {
    DsBuf tmp = {0};
    size_t nbytes = 0;
    for (size_t i = 0; i < from->n; i++) {
        const char *s = from->b.data + from->off[i];
        size_t n = from->off[i + 1] - from->off[i];
        switch (st->kind) {
        case DEC_BYTELEVEL: // a token outside the alphabet stays as it is
        {
            size_t before = tmp.len;
            if (tok_bytelevel_decode(s, n, &tmp) != DS_OK) {
                tmp.len = before;
                dsbuf_append(&tmp, s, n);
            }
            break;
        }
        case DEC_FUSE: dsbuf_append(&tmp, s, n); break;
        case DEC_REPLACE:
            tmp.len = 0;
            replace(st, s, n, &tmp);
            list_push(to, tmp.data, tmp.len);
            break;
        case DEC_STRIP: {
            size_t cl = strlen(st->text), a = 0, b = n;
            for (int k = 0; k < st->start && b - a >= cl && memcmp(s + a, st->text, cl) == 0; k++)
                a += cl;
            for (int k = 0; k < st->stop && b - a >= cl && memcmp(s + b - cl, st->text, cl) == 0;
                 k++)
                b -= cl;
            list_push(to, s + a, b - a);
            break;
        }
        case DEC_BYTEFALLBACK: {
            int v = byte_token(s, n);
            if (v >= 0) {
                unsigned char c = (unsigned char)v;
                dsbuf_append(&tmp, &c, 1);
                nbytes++;
            } else {
                flush_bytes(to, &tmp, nbytes);
                nbytes = 0;
                list_push(to, s, n);
            }
            break;
        }
        }
    }
    if (st->kind == DEC_BYTELEVEL || st->kind == DEC_FUSE) list_push(to, tmp.data, tmp.len);
    if (st->kind == DEC_BYTEFALLBACK) flush_bytes(to, &tmp, nbytes);
    dsbuf_free(&tmp);
}

void tok_decoder_run(const TokDecoder *d, const char *arena, const size_t *off, size_t n,
                     DsBuf *out) {
    if (!d) { // no decoder: the token strings joined by spaces
        for (size_t i = 0; i < n; i++) {
            if (i) dsbuf_append(out, " ", 1);
            dsbuf_append(out, arena + off[i], off[i + 1] - off[i]);
        }
        return;
    }
    List a = {0}, b = {0};
    for (size_t i = 0; i < n; i++) list_push(&a, arena + off[i], off[i + 1] - off[i]);
    for (int k = 0; k < d->n && a.n; k++) {
        b.n = 0;
        b.b.len = 0;
        run_step(&d->step[k], &a, &b);
        List t = a;
        a = b, b = t;
    }
    for (size_t i = 0; i < a.n; i++) dsbuf_append(out, a.b.data + a.off[i], a.off[i + 1] - a.off[i]);
    dsbuf_free(&a.b);
    dsbuf_free(&b.b);
    free(a.off);
    free(b.off);
}
