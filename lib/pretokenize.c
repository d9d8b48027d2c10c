// pretokenize.c — splits text into pre-tokens with a chain of PCRE2 regexes.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "pretokenize.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

// GPT-2's pattern; GPT-4's (cl100k) which keeps numbers in groups of up to 3 digits and attaches
// one leading non-letter to words; and the same with every digit a pre-token of its own.
static const char GPT2_RE[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char GPT4_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char DIGITS_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct Pretok {
    int n;
    pcre2_code *code[PRETOK_MAX_REGEX];
    char *pattern[PRETOK_MAX_REGEX];
};

static const char *const KIND_NAMES[] = {"gpt2", "gpt4", "digits", "custom"};

int pretok_kind_from_name(const char *name) {
    for (int k = PRETOK_GPT2; k <= PRETOK_DIGITS; k++)
        if (strcmp(name, KIND_NAMES[k]) == 0) return k;
    return -1;
}

const char *pretok_kind_name(PretokKind kind) { return KIND_NAMES[kind]; }

const char *pretok_pattern(PretokKind kind) {
    switch (kind) {
    case PRETOK_GPT2: return GPT2_RE;
    case PRETOK_GPT4: return GPT4_RE;
    case PRETOK_DIGITS: return DIGITS_RE;
    default: return NULL;
    }
}

Pretok *pretok_new(const char *const *patterns, int n, DsErr *e) {
    if (n < 1 || n > PRETOK_MAX_REGEX) {
        ds_errf(e, "pre-tokenizer: %d regexes (expected 1 to %d)", n, PRETOK_MAX_REGEX);
        return NULL;
    }
    Pretok *p = ds_calloc(1, sizeof *p);
    for (int i = 0; i < n; i++) {
        int err;
        PCRE2_SIZE off;
        p->code[i] = pcre2_compile((PCRE2_SPTR)patterns[i], PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
        if (!p->code[i]) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            ds_errf(e, "pre-tokenizer regex %d at offset %zu: %s", i + 1, (size_t)off, (char *)msg);
            pretok_free(p);
            return NULL;
        }
        // Without JIT support pcre2_match falls back to the interpreter: same results, slower.
        pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE);
        p->pattern[i] = ds_strdup(patterns[i]);
        p->n = i + 1;
    }
    return p;
}

Pretok *pretok_new_kind(PretokKind kind, DsErr *e) {
    const char *pat = pretok_pattern(kind);
    if (!pat) {
        ds_errf(e, "pre-tokenizer kind %d has no built-in pattern", (int)kind);
        return NULL;
    }
    return pretok_new(&pat, 1, e);
}

void pretok_free(Pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        pcre2_code_free(p->code[i]);
        free(p->pattern[i]);
    }
    free(p);
}

int pretok_count(const Pretok *p) { return p->n; }
const char *pretok_regex(const Pretok *p, int i) { return p->pattern[i]; }

size_t pretok_utf8_valid_prefix(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF; // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; // overlong
            else if (c == 0xED)
                hi = 0x9F; // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; // overlong
            else if (c == 0xF4)
                hi = 0x8F; // above U+10FFFF
        } else
            return i;
        if (i + need >= n) return i; // truncated sequence
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += need + 1;
    }
    return n;
}

// ---------------------------------------------------------------------------------------------
// Splitting

typedef struct SplitState {
    const Pretok *p;
    pcre2_match_data *md[PRETOK_MAX_REGEX];
    pcre2_match_context
        *mctx; // with a large JIT stack, made only when the default one is too small
    pcre2_jit_stack *jstack;
    PretokFn fn;
    void *ctx;
} SplitState;

static void split_level(SplitState *st, int level, const char *s, size_t len);

static void emit(SplitState *st, int level, const char *s, size_t len) {
    if (len == 0) return;
    if (level + 1 < st->p->n)
        split_level(st, level + 1, s, len);
    else
        st->fn(st->ctx, s, len);
}

static int match_at(SplitState *st, int level, const char *s, size_t len, size_t pos) {
    pcre2_code *code = st->p->code[level];
    int rc =
        pcre2_match(code, (PCRE2_SPTR)s, len, pos, PCRE2_NO_UTF_CHECK, st->md[level], st->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !st->mctx) {
        st->jstack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
        st->mctx = pcre2_match_context_create(NULL);
        if (!st->jstack || !st->mctx) ds_fatal(__FILE__, __LINE__, "out of memory (JIT stack)");
        pcre2_jit_stack_assign(st->mctx, NULL, st->jstack);
        rc =
            pcre2_match(code, (PCRE2_SPTR)s, len, pos, PCRE2_NO_UTF_CHECK, st->md[level], st->mctx);
    }
    return rc;
}

// Matches and the text between them become pieces (HF's Split, behavior "Isolated"). An empty match
// is skipped over by one character; a match error (resource limits) leaves the rest as one piece.
static void split_level(SplitState *st, int level, const char *s, size_t len) {
    size_t gap = 0, pos = 0;
    while (pos < len) {
        int rc = match_at(st, level, s, len, pos);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->md[level]);
        size_t a = ov[0], b = ov[1];
        if (b <= a) { // empty match: step one UTF-8 character
            pos = a + 1;
            while (pos < len && ((unsigned char)s[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        emit(st, level, s + gap, a - gap);
        emit(st, level, s + a, b - a);
        gap = pos = b;
    }
    emit(st, level, s + gap, len - gap);
}

void pretok_split(const Pretok *p, const char *text, size_t len, PretokFn fn, void *ctx) {
    SplitState st = {.p = p, .fn = fn, .ctx = ctx};
    for (int i = 0; i < p->n; i++) {
        st.md[i] = pcre2_match_data_create_from_pattern(p->code[i], NULL);
        if (!st.md[i]) ds_fatal(__FILE__, __LINE__, "out of memory (match data)");
    }
    size_t i = 0;
    while (i < len) {
        size_t v = pretok_utf8_valid_prefix(text + i, len - i);
        if (v > 0) {
            split_level(&st, 0, text + i, v);
            i += v;
        } else { // an invalid byte is a pre-token of its own
            fn(ctx, text + i, 1);
            i++;
        }
    }
    for (int k = 0; k < p->n; k++) pcre2_match_data_free(st.md[k]);
    if (st.mctx) pcre2_match_context_free(st.mctx);
    if (st.jstack) pcre2_jit_stack_free(st.jstack);
}
