// grade.c — rule-based rewards: one entry point that grades a completion against a problem by task,
// and the two reference-free graders (format, language consistency).
#include "eval/grade.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "eval/countdown.h"
#include "text/utf8.h"

// Copies at most GRADE_ANSWER_MAX - 1 bytes, whole characters only, '?' for malformed bytes.
static void set_answer(GradeResult *r, const char *s, size_t n) {
    size_t o = 0, i = 0;
    while (i < n) {
        // a malformed byte (utf8_seq_len: libutf8proc's decoder) or a NUL becomes one '?'
        size_t l = s[i] ? (size_t)utf8_seq_len((const unsigned char *)s + i, n - i) : 0;
        if (l == 0) {
            if (o + 1 >= GRADE_ANSWER_MAX) break;
            r->answer[o++] = '?';
            l = 1;
        } else {
            if (o + l >= GRADE_ANSWER_MAX) break;
            memcpy(r->answer + o, s + i, l);
            o += l;
        }
        i += l;
    }
    r->answer[o] = '\0';
}

// ---------------------------------------------------------------------------------------------
// Format: the R1 template's <think> ... </think> <answer> ... </answer>.

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static const char *find(const char *s, const char *end, const char *tag) {
    return s >= end ? NULL : memmem(s, (size_t)(end - s), tag, strlen(tag));
}

static int count_tag(const char *s, const char *end, const char *tag) {
    int n = 0;
    size_t l = strlen(tag);
    for (const char *p = s; (p = find(p, end, tag)); p += l) n++;
    return n;
}

static int only_ws(const char *a, const char *b) {
    for (; a < b; a++)
        if (!is_ws(*a)) return 0;
    return 1;
}

double grade_format(const char *s, size_t len) {
    const char *end = s + len;
    static const char *const tags[4] = {"<think>", "</think>", "<answer>", "</answer>"};
    const char *at[4];
    for (int i = 0; i < 4; i++) {
        if (count_tag(s, end, tags[i]) != 1) return 0;
        at[i] = find(s, end, tags[i]);
    }
    if (!(at[0] < at[1] && at[1] < at[2] && at[2] < at[3])) return 0;
    if (!only_ws(s, at[0])) return 0;
    if (!only_ws(at[1] + strlen(tags[1]), at[2])) return 0;
    return only_ws(at[3] + strlen(tags[3]), end) ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Language consistency.

// Script properties come from PCRE2's Unicode tables (\p{Latin} and friends match by Script
// Extensions, so the Japanese prolonged sound mark counts as kana): nothing here lists code points
// but the one block below. A word is a letter followed by letters and combining marks of the same
// script; each Han, kana, Hangul or Bopomofo character is a word of its own (written without
// spaces); every other letter, of any of Unicode's scripts or of none (mathematical letters are
// script Common), starts a word in no target script, so it can only lower the score.
//
// Halfwidth and Fullwidth Forms (U+FF00..U+FFEF) are presentation variants kept for old encodings:
// fullwidth Latin or halfwidth katakana are no language's ordinary text, so they count as a miss for
// every target rather than as the script they imitate.
#define COMPAT "(?![\\x{FF00}-\\x{FFEF}])"
#define WORD(S) COMPAT "\\p{" S "}(?:" COMPAT "[\\p{" S "}\\p{M}])*"
#define CJK_CLASS "[\\p{Han}\\p{Hiragana}\\p{Katakana}\\p{Hangul}\\p{Bopomofo}]"
static const char LANG_PATTERN[] =
    "(" WORD("Latin") ")|(" WORD("Cyrillic") ")|(" WORD("Greek") ")|(" COMPAT CJK_CLASS "\\p{M}*)"
    "|((?:(?!" COMPAT "[\\p{Latin}\\p{Cyrillic}\\p{Greek}]|" COMPAT CJK_CLASS ")\\p{L}\\p{M}*)+)";
enum { LANG_GROUPS = 5 }; // one capture group per LangScript value, then "any other letters"

// The chain of thought: inside <think>...</think>; from <think> to the end when it never closes;
// up to </think> when the opening tag was in the prompt; else everything.
static void chain_of_thought(const char *s, size_t len, const char **a, const char **b) {
    const char *end = s + len, *o = find(s, end, "<think>");
    const char *from = o ? o + 7 : s, *c = find(from, end, "</think>");
    *a = from, *b = c ? c : end;
}

int grade_lang_words(const char *s, size_t len, long words[5]) {
    for (int i = 0; i < LANG_GROUPS; i++) words[i] = 0;
    int err;
    PCRE2_SIZE off;
    // Invalid UTF-8 is allowed in the subject: malformed bytes are simply never part of a word.
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)LANG_PATTERN, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    DS_CHECK(re != NULL); // a constant pattern: failure is a bug (or a PCRE2 built without Unicode)
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); // without JIT support the interpreter runs instead
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    size_t at = 0;
    int rc = 0;
    while (at < len) {
        rc = pcre2_match(re, (PCRE2_SPTR)s, len, at, 0, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        for (int g = 1; g <= LANG_GROUPS; g++)
            if (g < rc && ov[2 * g] != PCRE2_UNSET) {
                words[g - 1]++;
                break;
            }
        at = ov[1] > at ? ov[1] : at + 1; // every alternative consumes a letter; be safe anyway
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc < 0 && rc != PCRE2_ERROR_NOMATCH ? DS_ERR : DS_OK;
}

double grade_lang(const char *s, size_t len, LangScript script) {
    const char *a, *b;
    chain_of_thought(s, len, &a, &b);
    long words[5];
    if (grade_lang_words(a, (size_t)(b - a), words) != DS_OK) return 0;
    long all = 0;
    for (int i = 0; i < LANG_GROUPS; i++) all += words[i];
    return all ? (double)words[script] / (double)all : 1.0;
}

long grade_reflection_words(const char *s, size_t len) {
    static const char PATTERN[] = "\\b(?:wait|mistakes?|however|but|retry|errors?|verif(?:y|ied|ies|ying)|wrong"
                                  "|evaluat(?:e|es|ed|ing)|check(?:s|ed|ing)?)\\b";
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)PATTERN, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    DS_CHECK(re != NULL);
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    long n = 0;
    size_t at = 0;
    int rc = 0;
    while (at < len && (rc = pcre2_match(re, (PCRE2_SPTR)s, len, at, 0, md, NULL)) >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        n++;
        at = ov[1] > at ? ov[1] : at + 1;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc < 0 && rc != PCRE2_ERROR_NOMATCH ? DS_ERR : n;
}

int grade_script_from_name(const char *name, LangScript *s) {
    static const char *const names[] = {"latin", "cyrillic", "greek", "cjk"};
    for (size_t i = 0; i < DS_ARRAY_LEN(names); i++)
        if (strcmp(name, names[i]) == 0) {
            *s = (LangScript)i;
            return DS_OK;
        }
    return DS_ERR;
}

// ---------------------------------------------------------------------------------------------
// The dispatcher.

void grade_opts_default(GradeOpts *o) {
    o->extract = MATH_EXTRACT_DEFAULT;
    o->lang_script = LANG_LATIN;
}

static void grade_math(const Problem *p, MathExtract mode, const char *s, size_t len,
                       GradeResult *r) {
    const char *b;
    size_t n;
    if (!math_extract_text(s, len, mode, &b, &n)) return;
    r->formatted = 1;
    char *norm = math_normalize(b, n);
    if (norm && p->ref_norm)
        r->correct = strcmp(norm, p->ref_norm) == 0;
    else
        r->correct = n == strlen(p->ref) && memcmp(b, p->ref, n) == 0; // as is_equiv's fallback
    if (norm)
        set_answer(r, norm, strlen(norm));
    else
        set_answer(r, b, n);
    free(norm);
}

void grade(const Problem *p, const GradeOpts *o, const char *s, size_t len, GradeResult *r) {
    memset(r, 0, sizeof *r);
    GradeOpts def;
    if (!o) grade_opts_default(&def), o = &def;
    if (!s) s = "", len = 0;
    switch (p->kind) {
    case TASK_COUNTDOWN: {
        CountdownResult c;
        countdown_score(s, len, p->nums, p->n_nums, p->target, &c);
        r->score = c.score, r->formatted = c.formatted, r->correct = c.correct;
        set_answer(r, c.eq, c.eq_len);
        return;
    }
    case TASK_GSM8K: {
        double v;
        if (!math_extract_number(s, len, o->extract, &v)) return;
        r->formatted = 1;
        r->correct = math_numbers_equal(v, p->ref_value);
        snprintf(r->answer, sizeof r->answer, "%.15g", v == 0 ? 0.0 : v); // no "-0"
        break;
    }
    case TASK_MATH: grade_math(p, o->extract, s, len, r); break;
    case TASK_FORMAT: r->formatted = r->correct = grade_format(s, len) == 1; break;
    case TASK_LANG: {
        r->score = grade_lang(s, len, o->lang_script);
        r->correct = r->score == 1.0;
        r->formatted = find(s, s + len, "</think>") != NULL;
        return;
    }
    }
    r->score = r->correct ? 1.0 : 0.0;
}
