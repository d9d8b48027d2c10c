// pretokenize.c — splits text into pre-tokens with a chain of PCRE2 regex splits.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/pretokenize.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

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
    pcre2_code *code[PRETOK_MAX_REGEX]; // NULL: the step only adds a prefix space
    char *pattern[PRETOK_MAX_REGEX];
    uint8_t behavior[PRETOK_MAX_REGEX], invert[PRETOK_MAX_REGEX], prefix_space[PRETOK_MAX_REGEX];
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

Pretok *pretok_new_steps(const PretokStep *steps, int n, DsErr *e) {
    if (n < 0 || n > PRETOK_MAX_REGEX) {
        ds_errf(e, "pre-tokenizer: %d steps (at most %d)", n, PRETOK_MAX_REGEX);
        return NULL;
    }
    Pretok *p = ds_calloc(1, sizeof *p);
    for (int i = 0; i < n; i++) {
        p->n = i + 1;
        p->behavior[i] = (uint8_t)steps[i].behavior;
        p->invert[i] = (uint8_t)(steps[i].invert != 0);
        p->prefix_space[i] = (uint8_t)(steps[i].prefix_space != 0);
        if (!steps[i].pattern) continue;
        int err;
        PCRE2_SIZE off;
        uint32_t opts = steps[i].literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
        p->code[i] =
            pcre2_compile((PCRE2_SPTR)steps[i].pattern, PCRE2_ZERO_TERMINATED, opts, &err, &off, NULL);
        if (!p->code[i]) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            ds_errf(e, "pre-tokenizer regex %d at offset %zu: %s", i + 1, (size_t)off, (char *)msg);
            pretok_free(p);
            return NULL;
        }
        // Without JIT support pcre2_match falls back to the interpreter: same results, slower.
        pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE);
        p->pattern[i] = ds_strdup(steps[i].pattern);
    }
    return p;
}

Pretok *pretok_new(const char *const *patterns, int n, DsErr *e) {
    if (n < 1 || n > PRETOK_MAX_REGEX) {
        ds_errf(e, "pre-tokenizer: %d regexes (expected 1 to %d)", n, PRETOK_MAX_REGEX);
        return NULL;
    }
    PretokStep st[PRETOK_MAX_REGEX];
    for (int i = 0; i < n; i++)
        st[i] = (PretokStep){.pattern = patterns[i], .behavior = PRETOK_ISOLATED};
    return pretok_new_steps(st, n, e);
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

int pretok_is_simple(const Pretok *p) {
    if (p->n == 0) return 0;
    for (int i = 0; i < p->n; i++)
        if (!p->code[i] || p->behavior[i] != PRETOK_ISOLATED || p->invert[i] || p->prefix_space[i])
            return 0;
    return 1;
}

size_t pretok_utf8_valid_prefix(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { // ASCII: 8 bytes at a time while no high bit is set
            uint64_t w;
            while (i + 8 <= n && (memcpy(&w, s + i, 8), (w & 0x8080808080808080ull) == 0)) i += 8;
            while (i < n && s[i] < 0x80) i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return i;
        i += (size_t)k;
    }
    return n;
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json

// Rust's char classes, as Hugging Face's pre-tokenizers use them, in PCRE2 syntax.
#define RUST_WHITESPACE "\\p{White_Space}"
#define RUST_WORD "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}"
// is_ascii_punctuation() || is_punctuation(): the P categories and ASCII's symbols
#define HF_PUNCT "[\\p{P}\\x21-\\x2F\\x3A-\\x40\\x5B-\\x60\\x7B-\\x7E]"

static int behavior_from_name(const char *s, PretokBehavior *b) {
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                        "MergedWithNext", "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) {
            *b = (PretokBehavior)i;
            return DS_OK;
        }
    return DS_ERR;
}

typedef struct StepList {
    PretokStep st[PRETOK_MAX_REGEX];
    int n;
    int byte_level; // a ByteLevel step was seen (it must be the last)
} StepList;

static int push_step(StepList *l, PretokStep s, const char *path, DsErr *e) {
    if (l->n == PRETOK_MAX_REGEX)
        return ds_errf(e, "%s: more than %d splitting steps", path, PRETOK_MAX_REGEX);
    l->st[l->n++] = s;
    return DS_OK;
}

static int parse_steps(const json_t *j, const char *path, StepList *l, DsErr *e) {
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_object(j) || !type) return ds_errf(e, "%s: missing \"type\"", path);
    if (l->byte_level)
        return ds_errf(e, "%s: pre_tokenizer \"%s\" after ByteLevel is not supported", path, type);
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(j, "pretokenizers");
        if (!json_is_array(list)) return ds_errf(e, "%s: missing \"pretokenizers\" array", path);
        size_t i;
        const json_t *v;
        json_array_foreach(list, i, v) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", path, i);
            if (parse_steps(v, sub, l, e) != DS_OK) return DS_ERR;
        }
        return DS_OK;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        const json_t *ur = json_object_get(j, "use_regex");
        PretokStep s = {.pattern = !ur || json_is_true(ur) ? GPT2_RE : NULL,
                        .behavior = PRETOK_ISOLATED,
                        .prefix_space = json_is_true(json_object_get(j, "add_prefix_space"))};
        l->byte_level = 1;
        return s.pattern || s.prefix_space ? push_step(l, s, path, e) : DS_OK;
    }
    if (strcmp(type, "Split") == 0) {
        const json_t *pat = json_object_get(j, "pattern");
        const char *re = json_string_value(json_object_get(pat, "Regex"));
        const char *str = json_string_value(json_object_get(pat, "String"));
        const char *bname = json_string_value(json_object_get(j, "behavior"));
        PretokStep s = {.pattern = re ? re : str, .literal = !re,
                        .invert = json_is_true(json_object_get(j, "invert"))};
        if (!re && !str)
            return ds_errf(e, "%s: Split needs a \"pattern\" {\"Regex\": ...} or {\"String\": ...}",
                           path);
        if (!bname || behavior_from_name(bname, &s.behavior) != DS_OK)
            return ds_errf(e, "%s: Split behavior \"%s\" is not supported", path,
                           bname ? bname : "(missing)");
        if (str && !*str) return DS_OK; // an empty string matches nothing
        return push_step(l, s, path, e);
    }
    if (strcmp(type, "Digits") == 0) {
        int each = json_is_true(json_object_get(j, "individual_digits"));
        PretokStep s = {.pattern = "\\p{N}",
                        .behavior = each ? PRETOK_ISOLATED : PRETOK_CONTIGUOUS};
        return push_step(l, s, path, e);
    }
    if (strcmp(type, "Punctuation") == 0) {
        const char *bname = json_string_value(json_object_get(j, "behavior"));
        PretokStep s = {.pattern = HF_PUNCT, .behavior = PRETOK_ISOLATED};
        if (bname && behavior_from_name(bname, &s.behavior) != DS_OK)
            return ds_errf(e, "%s: Punctuation behavior \"%s\" is not supported", path, bname);
        return push_step(l, s, path, e);
    }
    if (strcmp(type, "Whitespace") == 0) { // keeps the matches of \w+|[^\w\s]+
        PretokStep s = {.pattern = "[" RUST_WORD "]+|[^" RUST_WORD RUST_WHITESPACE "]+",
                        .behavior = PRETOK_REMOVED, .invert = 1};
        return push_step(l, s, path, e);
    }
    if (strcmp(type, "WhitespaceSplit") == 0) {
        PretokStep s = {.pattern = RUST_WHITESPACE, .behavior = PRETOK_REMOVED};
        return push_step(l, s, path, e);
    }
    return ds_errf(e, "%s: pre_tokenizer \"%s\" is not supported", path, type);
}

Pretok *pretok_from_json(const json_t *j, DsErr *e) {
    if (!j || json_is_null(j)) {
        ds_errf(e, "pre_tokenizer is null (expected one with ByteLevel: only byte-level BPE is "
                   "supported)");
        return NULL;
    }
    StepList l = {0};
    if (parse_steps(j, "pre_tokenizer", &l, e) != DS_OK) return NULL;
    if (!l.byte_level) {
        ds_errf(e, "pre_tokenizer: no ByteLevel step (only byte-level BPE is supported)");
        return NULL;
    }
    Pretok *p = pretok_new_steps(l.st, l.n, e);
    if (!p) ds_err_prefix(e, "pre_tokenizer");
    return p;
}

// ---------------------------------------------------------------------------------------------
// Splitting

typedef struct Event {
    size_t a, b; // piece [a, b)
    int m;       // a delimiter (after invert); for the folded pieces: removed
} Event;

typedef struct SplitState {
    const Pretok *p;
    pcre2_match_data *md[PRETOK_MAX_REGEX];
    pcre2_match_context
        *mctx; // with a large JIT stack, made only when the default one is too small
    pcre2_jit_stack *jstack;
    Event *ev[PRETOK_MAX_REGEX];
    size_t evcap[PRETOK_MAX_REGEX];
    DsBuf pre[PRETOK_MAX_REGEX]; // a piece with its prefix space
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

// Next non-empty match at or after *pos: 1 with [*a, *b), 0 when none. An empty match is skipped
// over by one character; a match error (resource limits) ends the search.
static int next_match(SplitState *st, int level, const char *s, size_t len, size_t *pos,
                      size_t *a, size_t *b) {
    while (*pos < len) {
        if (match_at(st, level, s, len, *pos) < 0) return 0;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->md[level]);
        if (ov[1] > ov[0]) {
            *a = ov[0], *b = ov[1];
            *pos = ov[1];
            return 1;
        }
        *pos = ov[0] + 1; // empty match: step one UTF-8 character
        while (*pos < len && ((unsigned char)s[*pos] & 0xC0) == 0x80) (*pos)++;
    }
    return 0;
}

static void push_event(SplitState *st, int level, size_t *n, size_t a, size_t b, int m) {
    if (*n == st->evcap[level]) {
        st->evcap[level] = st->evcap[level] ? 2 * st->evcap[level] : 64;
        st->ev[level] = ds_realloc(st->ev[level], st->evcap[level] * sizeof(Event));
    }
    st->ev[level][(*n)++] = (Event){a, b, m};
}

// The general split, as Hugging Face's NormalizedString::split: the text is cut into delimiters
// and the text between them, then the behavior folds the delimiters into pieces.
static void split_events(SplitState *st, int level, const char *s, size_t len) {
    size_t n = 0, pos = 0, prev = 0, a, b;
    int inv = st->p->invert[level];
    while (next_match(st, level, s, len, &pos, &a, &b)) {
        if (a > prev) push_event(st, level, &n, prev, a, inv);
        push_event(st, level, &n, a, b, !inv);
        prev = b;
    }
    if (prev < len) push_event(st, level, &n, prev, len, inv);
    Event *ev = st->ev[level];
    size_t k = 0; // folded pieces, in place: ev[0, k)
    int prev_m = 0;
    switch ((PretokBehavior)st->p->behavior[level]) {
    case PRETOK_ISOLATED:
        for (size_t i = 0; i < n; i++) ev[i].m = 0;
        k = n;
        break;
    case PRETOK_REMOVED: k = n; break;
    case PRETOK_CONTIGUOUS:
        for (size_t i = 0; i < n; i++) {
            int m = ev[i].m;
            if (m == prev_m && k > 0)
                ev[k - 1].b = ev[i].b;
            else
                ev[k++] = (Event){ev[i].a, ev[i].b, 0};
            prev_m = m;
        }
        break;
    case PRETOK_MERGED_WITH_PREVIOUS:
        for (size_t i = 0; i < n; i++) {
            int m = ev[i].m;
            if (m && !prev_m && k > 0)
                ev[k - 1].b = ev[i].b;
            else
                ev[k++] = (Event){ev[i].a, ev[i].b, 0};
            prev_m = m;
        }
        break;
    case PRETOK_MERGED_WITH_NEXT: // the same fold from the right, written back from the end
        k = n;
        for (size_t i = n; i-- > 0;) {
            int m = ev[i].m;
            if (m && !prev_m && k < n)
                ev[k].a = ev[i].a;
            else
                ev[--k] = (Event){ev[i].a, ev[i].b, 0};
            prev_m = m;
        }
        memmove(ev, ev + k, (n - k) * sizeof *ev);
        k = n - k;
        break;
    }
    // emit may recurse into deeper levels, which use their own arrays; ev stays valid
    for (size_t i = 0; i < k; i++)
        if (!ev[i].m) emit(st, level, s + ev[i].a, ev[i].b - ev[i].a);
}

static void split_level(SplitState *st, int level, const char *s, size_t len) {
    if (len == 0) return;
    if (st->p->prefix_space[level] && s[0] != ' ') {
        DsBuf *b = &st->pre[level];
        b->len = 0;
        dsbuf_append(b, " ", 1);
        dsbuf_append(b, s, len);
        s = b->data, len = b->len;
    }
    if (!st->p->code[level]) {
        emit(st, level, s, len);
        return;
    }
    if (st->p->behavior[level] != PRETOK_ISOLATED || st->p->invert[level]) {
        split_events(st, level, s, len);
        return;
    }
    // Isolated, the common case, streams: matches and the text between them are pieces.
    size_t gap = 0, pos = 0, a, b;
    while (next_match(st, level, s, len, &pos, &a, &b)) {
        emit(st, level, s + gap, a - gap);
        emit(st, level, s + a, b - a);
        gap = b;
    }
    emit(st, level, s + gap, len - gap);
}

void pretok_split(const Pretok *p, const char *text, size_t len, PretokFn fn, void *ctx) {
    SplitState st = {.p = p, .fn = fn, .ctx = ctx};
    for (int i = 0; i < p->n; i++) {
        if (!p->code[i]) continue;
        st.md[i] = pcre2_match_data_create_from_pattern(p->code[i], NULL);
        if (!st.md[i]) ds_fatal(__FILE__, __LINE__, "out of memory (match data)");
    }
    size_t i = 0;
    while (i < len) {
        size_t v = pretok_utf8_valid_prefix(text + i, len - i);
        if (v > 0) {
            if (p->n)
                split_level(&st, 0, text + i, v);
            else
                fn(ctx, text + i, v);
            i += v;
        } else { // an invalid byte is a pre-token of its own
            fn(ctx, text + i, 1);
            i++;
        }
    }
    for (int k = 0; k < p->n; k++) {
        pcre2_match_data_free(st.md[k]);
        free(st.ev[k]);
        dsbuf_free(&st.pre[k]);
    }
    if (st.mctx) pcre2_match_context_free(st.mctx);
    if (st.jstack) pcre2_jit_stack_free(st.jstack);
}
