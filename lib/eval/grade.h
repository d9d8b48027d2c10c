// grade.h — rule-based rewards: one entry point that grades a completion against a problem by task
// (countdown, gsm8k, math), and the two reference-free graders (format, language consistency).
// Completions are arbitrary bytes; no input makes these fail or read out of bounds.
#ifndef DS_GRADE_H
#define DS_GRADE_H

#include <stddef.h>

#include "eval/math_answer.h"
#include "eval/task.h"

// The writing systems the language-consistency reward can ask for.
typedef enum { LANG_LATIN, LANG_CYRILLIC, LANG_GREEK, LANG_CJK } LangScript;
int grade_script_from_name(const char *name, LangScript *s); // "latin", "cyrillic", "greek", "cjk"

typedef struct GradeOpts {
    MathExtract extract;    // where a gsm8k/math answer is read (default: "####" / \boxed{})
    LangScript lang_script; // target script of the lang task (default Latin)
} GradeOpts;

void grade_opts_default(GradeOpts *o);

enum { GRADE_ANSWER_MAX = 256 };

typedef struct GradeResult {
    double score;  // countdown 0/0.1/1; gsm8k, math, format 0/1; lang the fraction in [0, 1]
    int correct;   // the answer is right (lang: every counted word in the target script)
    int formatted; // an answer was found where the task expects one (tags, "####", \boxed{})
    // The extracted answer in comparable form (gsm8k the number, math the normalised text,
    // countdown the equation), for majority voting and per-sample output; valid UTF-8, truncated.
    char answer[GRADE_ANSWER_MAX];
} GradeResult;

// Grades completion[0..len) (any bytes, no terminator needed) against p; o NULL means defaults.
void grade(const Problem *p, const GradeOpts *o, const char *completion, size_t len,
           GradeResult *r);

// 1 when the completion is "<think> ... </think> <answer> ... </answer>" (R1 template): each tag
// exactly once, in this order, only whitespace around and between the two blocks; else 0.
double grade_format(const char *completion, size_t len);

// The fraction of the chain of thought's words (inside <think>...</think>, or the whole completion
// without tags) written in the target script. Every letter counts: a word is a run of letters (and
// combining marks) of one script by Unicode's Script property (each Han, kana, Hangul or Bopomofo
// character is a word); a word in any other script, or in none, is a miss. Digits, symbols and
// punctuation are not words. 1 when there are no words.
double grade_lang(const char *completion, size_t len, LangScript script);
// Reflective words in s[0..len) — R1's "aha moment" vocabulary (wait, mistake, however, but, retry,
// error, verify, wrong, evaluate, check, with their inflections), whole words, any case: how
// often a response re-examines itself. DS_ERR only if the matcher itself fails.
long grade_reflection_words(const char *s, size_t len);
// The word counts behind grade_lang over all of s[0..len) (no <think> handling): words[0..3] by
// LangScript, words[4] the words in any other script. DS_ERR only if the matcher itself fails.
int grade_lang_words(const char *s, size_t len, long words[5]);

#endif
