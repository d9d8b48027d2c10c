// tok_normalize.c — tokenizer.json normalizers: Unicode forms through libutf8proc, case, replace,
// strip, prepend.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/tok_normalize.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

enum { NORM_NF, NORM_LOWER, NORM_REPLACE, NORM_STRIP, NORM_PREPEND };

typedef struct NormStep {
    int kind;
    int nf_flags;      // NORM_NF: utf8proc options
    pcre2_code *re;    // NORM_REPLACE
    char *text;        // NORM_REPLACE: the replacement; NORM_PREPEND: the prefix
    int left, right;   // NORM_STRIP
} NormStep;

struct TokNorm {
    NormStep *step;
    int n;
};

int tok_is_white_space(int32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

void tok_norm_free(TokNorm *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) {
        pcre2_code_free(n->step[i].re);
        free(n->step[i].text);
    }
    free(n->step);
    free(n);
}

static void add_step(TokNorm *n, NormStep s) {
    n->step = ds_realloc(n->step, (size_t)(n->n + 1) * sizeof *n->step);
    n->step[n->n++] = s;
}

static int parse(const json_t *j, const char *path, TokNorm *n, DsErr *e) {
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_object(j) || !type) return ds_errf(e, "%s: missing \"type\"", path);
    static const struct {
        const char *name;
        int flags;
    } nf[] = {{"NFC", UTF8PROC_COMPOSE},
              {"NFD", UTF8PROC_DECOMPOSE},
              {"NFKC", UTF8PROC_COMPOSE | UTF8PROC_COMPAT},
              {"NFKD", UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT}};
    for (size_t i = 0; i < DS_ARRAY_LEN(nf); i++)
        if (strcmp(type, nf[i].name) == 0) {
            add_step(n, (NormStep){.kind = NORM_NF, .nf_flags = UTF8PROC_STABLE | nf[i].flags});
            return DS_OK;
        }
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(j, "normalizers");
        if (!json_is_array(list)) return ds_errf(e, "%s: missing \"normalizers\" array", path);
        size_t i;
        const json_t *v;
        json_array_foreach(list, i, v) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", path, i);
            if (parse(v, sub, n, e) != DS_OK) return DS_ERR;
        }
        return DS_OK;
    }
    if (strcmp(type, "Lowercase") == 0) {
        add_step(n, (NormStep){.kind = NORM_LOWER});
        return DS_OK;
    }
    if (strcmp(type, "Strip") == 0) {
        add_step(n, (NormStep){.kind = NORM_STRIP,
                               .left = json_is_true(json_object_get(j, "strip_left")),
                               .right = json_is_true(json_object_get(j, "strip_right"))});
        return DS_OK;
    }
    if (strcmp(type, "Prepend") == 0) {
        const char *p = json_string_value(json_object_get(j, "prepend"));
        if (!p) return ds_errf(e, "%s: Prepend needs a \"prepend\" string", path);
        add_step(n, (NormStep){.kind = NORM_PREPEND, .text = ds_strdup(p)});
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
        if (str && !*str) return DS_OK; // an empty string matches nothing
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
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        add_step(n, (NormStep){.kind = NORM_REPLACE, .re = code, .text = ds_strdup(content)});
        return DS_OK;
    }
    return ds_errf(e, "%s: normalizer \"%s\" is not supported", path, type);
}

int tok_norm_from_json(const json_t *j, TokNorm **out, DsErr *e) {
    *out = NULL;
    if (!j || json_is_null(j)) return DS_OK;
    TokNorm *n = ds_calloc(1, sizeof *n);
    if (parse(j, "normalizer", n, e) != DS_OK) {
        tok_norm_free(n);
        return DS_ERR;
    }
    if (n->n == 0) {
        tok_norm_free(n);
        return DS_OK;
    }
    *out = n;
    return DS_OK;
}

// ---------------------------------------------------------------------------------------------
// Applying

static int all_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

static void put_char(DsBuf *out, int32_t cp) {
    dsbuf_reserve(out, 4);
    out->len += (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)out->data + out->len);
}

// One step on valid UTF-8 s[0, n).
static void apply_valid(const NormStep *st, const char *s, size_t n, DsBuf *out) {
    switch (st->kind) {
    case NORM_NF: {
        if (all_ascii(s, n)) { // every normal form leaves ASCII as it is
            dsbuf_append(out, s, n);
            return;
        }
        utf8proc_uint8_t *dst = NULL;
        utf8proc_ssize_t k =
            utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst, st->nf_flags);
        if (k < 0) // cannot happen on valid UTF-8 except out of memory
            ds_fatal(__FILE__, __LINE__, "utf8proc_map: %s", utf8proc_errmsg(k));
        dsbuf_append(out, dst, (size_t)k);
        free(dst);
        return;
    }
    case NORM_LOWER:
        for (size_t i = 0; i < n;) {
            int32_t cp;
            i += (size_t)utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                          (utf8proc_ssize_t)(n - i), &cp);
            if (cp == 0x130) // the one unconditional multi-character lowercase: "i" + dot above
                dsbuf_append(out, "i\xCC\x87", 3);
            else
                put_char(out, utf8proc_tolower(cp));
        }
        return;
    case NORM_REPLACE: {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(st->re, NULL);
        if (!md) ds_fatal(__FILE__, __LINE__, "out of memory (match data)");
        size_t pos = 0, gap = 0;
        while (pos < n && pcre2_match(st->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md,
                                      NULL) >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[1] == ov[0]) { // empty match: step one character
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
        return;
    }
    }
}

// Length of the valid UTF-8 prefix of s[0, n).
static size_t valid_prefix(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return i;
        i += (size_t)k;
    }
    return n;
}

// Whitespace characters at the start (dir > 0) or end (dir < 0) of s[0, n), in bytes.
static size_t white_run(const char *s, size_t n, int dir) {
    if (dir > 0) {
        size_t i = 0;
        while (i < n) {
            int32_t cp;
            utf8proc_ssize_t k =
                utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
            if (k <= 0 || !tok_is_white_space(cp)) break;
            i += (size_t)k;
        }
        return i;
    }
    size_t end = n;
    while (end > 0) {
        size_t st = end - 1;
        while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80 && end - st < 4) st--;
        int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + st,
                                              (utf8proc_ssize_t)(end - st), &cp);
        if (k != (utf8proc_ssize_t)(end - st) || !tok_is_white_space(cp)) break;
        end = st;
    }
    return n - end;
}

static void apply_step(const NormStep *st, const char *s, size_t n, DsBuf *out) {
    if (st->kind == NORM_PREPEND) {
        if (n) dsbuf_append(out, st->text, strlen(st->text));
        dsbuf_append(out, s, n);
        return;
    }
    if (st->kind == NORM_STRIP) {
        size_t l = st->left ? white_run(s, n, 1) : 0;
        size_t r = st->right && l < n ? white_run(s + l, n - l, -1) : 0;
        dsbuf_append(out, s + l, n - l - r);
        return;
    }
    for (size_t i = 0; i < n;) { // character steps see the valid runs; other bytes pass
        size_t v = valid_prefix(s + i, n - i);
        if (v) {
            apply_valid(st, s + i, v, out);
            i += v;
        } else {
            dsbuf_append(out, s + i, 1);
            i++;
        }
    }
}

void tok_norm_apply(const TokNorm *n, const char *s, size_t len, DsBuf *out) {
    if (!n) {
        dsbuf_append(out, s, len);
        return;
    }
    if (n->n == 1) {
        apply_step(&n->step[0], s, len, out);
        return;
    }
    DsBuf a = {0}, b = {0};
    dsbuf_append(&a, s, len);
    for (int i = 0; i < n->n; i++) {
        b.len = 0;
        apply_step(&n->step[i], a.data, a.len, &b);
        DsBuf t = a;
        a = b, b = t;
    }
    dsbuf_append(out, a.data, a.len);
    dsbuf_free(&a);
    dsbuf_free(&b);
}
