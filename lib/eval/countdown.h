// countdown.h — the Countdown task: a safe equation evaluator over exact rationals, TinyZero's
// reward rule, and a brute-force solver.
#ifndef DS_COUNTDOWN_H
#define DS_COUNTDOWN_H

#include <stddef.h>
#include <stdint.h>

enum {
    COUNTDOWN_MAX_NUMS = 16,   // numbers a problem may give
    COUNTDOWN_MAX_SOLVE = 6,   // numbers the brute-force solver accepts
    COUNTDOWN_MAX_EXPR = 1024, // longer equations are invalid
    COUNTDOWN_MAX_DEPTH = 64,  // deeper nesting (parentheses, unary signs) is invalid
};

// TinyZero's scores: no <answer> tags, tags but a wrong/invalid equation, a correct equation.
#define COUNTDOWN_SCORE_NONE 0.0
#define COUNTDOWN_SCORE_FORMAT 0.1
#define COUNTDOWN_SCORE_CORRECT 1.0

// An exact rational n/d: d > 0, gcd(|n|, d) = 1.
typedef struct CdRat {
    int64_t n, d;
} CdRat;

// Evaluates an equation made of digits, + - * / ( ) . and whitespace with Python's precedence
// (unary signs, decimals such as 2.5). Returns 1 and the exact value in *v, or 0 when the text is
// not a valid equation: other characters, ** or //, syntax errors, division by zero, 64-bit
// overflow, more than COUNTDOWN_MAX_DEPTH nesting or COUNTDOWN_MAX_EXPR bytes.
int countdown_eval(const char *s, size_t len, CdRat *v);

// 1 when the integers written in s (runs of digits, as TinyZero's re.findall(r'\d+')) are exactly
// the multiset nums[0..n).
int countdown_uses_numbers(const char *s, size_t len, const int64_t *nums, int n);

typedef struct CountdownResult {
    double score;   // 0, 0.1 or 1
    int formatted;  // an <answer>...</answer> was found
    int correct;    // score == 1
    const char *eq; // the equation inside the last <answer> (stripped), within the completion
    size_t eq_len;
} CountdownResult;

// TinyZero's compute_score for one completion (see results/graders.md for the differences).
void countdown_score(const char *s, size_t len, const int64_t *nums, int n, int64_t target,
                     CountdownResult *r);

// Finds an equation that uses each of nums[0..n) once with + - * / and equals target exactly.
// Writes it (fully parenthesised, e.g. "((44 + 19) + 35)") into out and returns 1; returns 0
// when there is none, -1 when n is outside 1..COUNTDOWN_MAX_SOLVE or out is too small.
int countdown_solve(const int64_t *nums, int n, int64_t target, char *out, size_t cap);

#endif
