// countdown.c — the Countdown task: a safe equation evaluator over exact rationals, TinyZero's
// reward rule, and a brute-force solver.
#include "eval/countdown.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

// ---------------------------------------------------------------------------------------------
// Exact rationals. Every operation checks for 64-bit overflow and reports it as failure (0), so an
// equation with huge intermediate values is invalid instead of silently wrong.

static uint64_t gcd_u64(uint64_t a, uint64_t b) {
    while (b) {
        uint64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

static uint64_t abs_u64(int64_t x) { return x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x; }

// n/d with any signs (d != 0) into lowest terms with d > 0.
static int rat_make(int64_t n, int64_t d, CdRat *r) {
    if (d == 0) return 0;
    if (d < 0) {
        if (n == INT64_MIN || d == INT64_MIN) return 0;
        n = -n, d = -d;
    }
    uint64_t g = gcd_u64(abs_u64(n), (uint64_t)d);
    if (g > 1) n /= (int64_t)g, d /= (int64_t)g;
    r->n = n, r->d = d;
    return 1;
}

static int rat_add(CdRat a, CdRat b, CdRat *r) {
    // a.n/a.d + b.n/b.d over lcm(a.d, b.d), which keeps intermediates small.
    int64_t g = (int64_t)gcd_u64((uint64_t)a.d, (uint64_t)b.d);
    int64_t x, y, n, d;
    if (__builtin_mul_overflow(a.n, b.d / g, &x) || __builtin_mul_overflow(b.n, a.d / g, &y) ||
        __builtin_add_overflow(x, y, &n) || __builtin_mul_overflow(a.d / g, b.d, &d))
        return 0;
    return rat_make(n, d, r);
}

static int rat_neg(CdRat a, CdRat *r) {
    if (a.n == INT64_MIN) return 0;
    r->n = -a.n, r->d = a.d;
    return 1;
}

static int rat_sub(CdRat a, CdRat b, CdRat *r) {
    CdRat nb;
    return rat_neg(b, &nb) && rat_add(a, nb, r);
}

static int rat_mul(CdRat a, CdRat b, CdRat *r) {
    // Cross-cancel first so that products that fit after reduction do not overflow.
    int64_t g1 = (int64_t)gcd_u64(abs_u64(a.n), (uint64_t)b.d);
    int64_t g2 = (int64_t)gcd_u64(abs_u64(b.n), (uint64_t)a.d);
    if (g1 == 0) g1 = 1;
    if (g2 == 0) g2 = 1;
    int64_t n, d;
    if (__builtin_mul_overflow(a.n / g1, b.n / g2, &n) ||
        __builtin_mul_overflow(a.d / g2, b.d / g1, &d))
        return 0;
    return rat_make(n, d, r);
}

static int rat_div(CdRat a, CdRat b, CdRat *r) {
    if (b.n == 0) return 0;
    CdRat inv;
    if (!rat_make(b.d, b.n, &inv)) return 0;
    return rat_mul(a, inv, r);
}

// ---------------------------------------------------------------------------------------------
// Recursive-descent parser with Python's grammar for this subset:
//   expr := term (('+'|'-') term)*    term := unary (('*'|'/') unary)*
//   unary := ('+'|'-') unary | primary    primary := number | '(' expr ')'

typedef struct Parser {
    const char *s;
    size_t i, n;
    int depth;
} Parser;

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static int is_digit(char c) { return c >= '0' && c <= '9'; }

static void skip_ws(Parser *p) {
    while (p->i < p->n && is_space(p->s[p->i])) p->i++;
}
static char peek(Parser *p) { return p->i < p->n ? p->s[p->i] : '\0'; }

static int parse_expr(Parser *p, CdRat *v);

static int parse_number(Parser *p, CdRat *v) {
    size_t a = p->i;
    while (p->i < p->n && is_digit(p->s[p->i])) p->i++;
    size_t int_end = p->i, fa = p->i, fb = p->i;
    int has_dot = 0;
    if (peek(p) == '.') {
        has_dot = 1;
        p->i++;
        fa = p->i;
        while (p->i < p->n && is_digit(p->s[p->i])) p->i++;
        fb = p->i;
    }
    if (int_end == a && fb == fa) return 0; // "." alone
    // Python rejects integer literals with leading zeros ("05") unless all digits are zero.
    if (!has_dot && int_end - a > 1 && p->s[a] == '0') {
        for (size_t k = a; k < int_end; k++)
            if (p->s[k] != '0') return 0;
    }
    while (fb > fa && p->s[fb - 1] == '0') fb--; // 2.50 == 2.5, and keeps the denominator small
    int64_t num = 0, den = 1;
    for (size_t k = a; k < int_end; k++)
        if (__builtin_mul_overflow(num, 10, &num) ||
            __builtin_add_overflow(num, p->s[k] - '0', &num))
            return 0;
    for (size_t k = fa; k < fb; k++)
        if (__builtin_mul_overflow(num, 10, &num) ||
            __builtin_add_overflow(num, p->s[k] - '0', &num) ||
            __builtin_mul_overflow(den, 10, &den))
            return 0;
    return rat_make(num, den, v);
}

static int parse_primary(Parser *p, CdRat *v) {
    skip_ws(p);
    char c = peek(p);
    if (c == '(') {
        if (++p->depth > COUNTDOWN_MAX_DEPTH) return 0;
        p->i++;
        if (!parse_expr(p, v)) return 0;
        skip_ws(p);
        if (peek(p) != ')') return 0;
        p->i++;
        p->depth--;
        return 1;
    }
    if (is_digit(c) || c == '.') return parse_number(p, v);
    return 0;
}

static int parse_unary(Parser *p, CdRat *v) {
    skip_ws(p);
    char c = peek(p);
    if (c != '+' && c != '-') return parse_primary(p, v);
    if (++p->depth > COUNTDOWN_MAX_DEPTH) return 0;
    p->i++;
    if (!parse_unary(p, v)) return 0;
    p->depth--;
    return c == '+' || rat_neg(*v, v);
}

static int parse_term(Parser *p, CdRat *v) {
    if (!parse_unary(p, v)) return 0;
    for (;;) {
        skip_ws(p);
        char c = peek(p);
        if (c != '*' && c != '/') return 1;
        p->i++;
        if (peek(p) == c) return 0; // ** and // are Python operators we do not accept
        CdRat b;
        if (!parse_unary(p, &b)) return 0;
        if (!(c == '*' ? rat_mul(*v, b, v) : rat_div(*v, b, v))) return 0;
    }
}

static int parse_expr(Parser *p, CdRat *v) {
    if (!parse_term(p, v)) return 0;
    for (;;) {
        skip_ws(p);
        char c = peek(p);
        if (c != '+' && c != '-') return 1;
        p->i++;
        CdRat b;
        if (!parse_term(p, &b)) return 0;
        if (!(c == '+' ? rat_add(*v, b, v) : rat_sub(*v, b, v))) return 0;
    }
}

int countdown_eval(const char *s, size_t len, CdRat *v) {
    if (len > COUNTDOWN_MAX_EXPR) return 0;
    // TinyZero's allowed_pattern ^[\d+\-*/().\s]+$ : at least one character, nothing else.
    if (len == 0) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!(is_digit(c) || is_space(c) || strchr("+-*/().", c))) return 0;
        if (c == '\0') return 0; // strchr matches the terminator
    }
    Parser p = {s, 0, len, 0};
    CdRat r;
    if (!parse_expr(&p, &r)) return 0;
    skip_ws(&p);
    if (p.i != p.n) return 0;
    *v = r;
    return 1;
}

// ---------------------------------------------------------------------------------------------
// Reward.

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int countdown_uses_numbers(const char *s, size_t len, const int64_t *nums, int n) {
    if (n < 0 || n > COUNTDOWN_MAX_NUMS) return 0;
    int64_t got[COUNTDOWN_MAX_NUMS], want[COUNTDOWN_MAX_NUMS];
    int m = 0;
    size_t i = 0;
    while (i < len) {
        if (!is_digit(s[i])) {
            i++;
            continue;
        }
        while (i < len && s[i] == '0' && i + 1 < len && is_digit(s[i + 1])) i++; // int("007") == 7
        int64_t x = 0;
        int overflow = 0;
        for (; i < len && is_digit(s[i]); i++)
            overflow = overflow || __builtin_mul_overflow(x, 10, &x) ||
                       __builtin_add_overflow(x, s[i] - '0', &x);
        if (overflow || m == n) return 0; // a number no problem gives, or too many numbers
        got[m++] = x;
    }
    if (m != n) return 0;
    memcpy(want, nums, (size_t)n * sizeof *nums);
    qsort(got, (size_t)m, sizeof *got, cmp_i64);
    qsort(want, (size_t)n, sizeof *want, cmp_i64);
    return memcmp(got, want, (size_t)n * sizeof *got) == 0;
}

// Region TinyZero reads: the text after the first "Assistant:" (or "<|im_start|>assistant"); the
// whole completion when neither occurs, since ds completions hold only the model's turn.
static void answer_region(const char *s, size_t len, const char **a, size_t *n) {
    static const char *const marks[] = {"Assistant:", "<|im_start|>assistant"};
    for (size_t k = 0; k < DS_ARRAY_LEN(marks); k++) {
        size_t ml = strlen(marks[k]);
        const char *m = memmem(s, len, marks[k], ml);
        if (m) {
            *a = m + ml;
            *n = len - (size_t)(m + ml - s);
            return;
        }
    }
    *a = s, *n = len;
}

// The last match of Python's re.finditer(r'<answer>(.*?)</answer>'): '.' does not cross a newline,
// and the scan resumes after each match. Cached positions of the next newline and closing tag keep
// this linear on adversarial input.
static int last_answer(const char *s, size_t len, const char **c, size_t *cn) {
    static const char open[] = "<answer>", close[] = "</answer>";
    const size_t ol = sizeof open - 1, cl = sizeof close - 1;
    const char *end = s + len, *p = s, *nl = NULL, *cls = NULL;
    int found = 0;
    while (p < end) {
        const char *o = memmem(p, (size_t)(end - p), open, ol);
        if (!o) break;
        const char *body = o + ol;
        if (!nl || nl < body) {
            nl = memchr(body, '\n', (size_t)(end - body));
            if (!nl) nl = end;
        }
        if (!cls || cls < body) {
            cls = memmem(body, (size_t)(end - body), close, cl);
            if (!cls) cls = end;
        }
        if (cls < end && cls <= nl) {
            *c = body, *cn = (size_t)(cls - body);
            found = 1;
            p = cls + cl;
        } else {
            p = o + 1;
        }
    }
    return found;
}

void countdown_score(const char *s, size_t len, const int64_t *nums, int n, int64_t target,
                     CountdownResult *r) {
    memset(r, 0, sizeof *r);
    const char *reg, *eq;
    size_t rn, eqn;
    answer_region(s, len, &reg, &rn);
    if (!last_answer(reg, rn, &eq, &eqn)) return; // 0: no answer at all
    while (eqn && is_space(eq[0])) eq++, eqn--;   // Python's str.strip()
    while (eqn && is_space(eq[eqn - 1])) eqn--;
    r->formatted = 1;
    r->eq = eq, r->eq_len = eqn;
    r->score = COUNTDOWN_SCORE_FORMAT;
    CdRat v;
    if (!countdown_uses_numbers(eq, eqn, nums, n) || !countdown_eval(eq, eqn, &v)) return;
    if (fabs((double)v.n / (double)v.d - (double)target) < 1e-5) {
        r->score = COUNTDOWN_SCORE_CORRECT;
        r->correct = 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Brute-force solver: repeatedly replace two values by their sum, difference, product or quotient
// until one value is left. With at most 6 numbers this is a few million leaves at worst.

enum { SOLVE_CAP = 256 };

static int solve_rec(const CdRat *v, char (*ex)[SOLVE_CAP], int n, int64_t target, char *out,
                     size_t cap) {
    if (n == 1) {
        if (v[0].d != 1 || v[0].n != target) return 0;
        size_t l = strlen(ex[0]);
        if (l + 1 > cap) return -1;
        memcpy(out, ex[0], l + 1);
        return 1;
    }
    CdRat nv[COUNTDOWN_MAX_SOLVE];
    char nex[COUNTDOWN_MAX_SOLVE][SOLVE_CAP];
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            int m = 0;
            for (int k = 0; k < n; k++) {
                if (k == i || k == j) continue;
                nv[m] = v[k];
                memcpy(nex[m], ex[k], SOLVE_CAP);
                m++;
            }
            // + and * once; - and / in both orders.
            static const char ops[6] = {'+', '*', '-', '-', '/', '/'};
            for (int o = 0; o < 6; o++) {
                int a = (o == 3 || o == 5) ? j : i, b = a == i ? j : i;
                CdRat r;
                int ok = ops[o] == '+'   ? rat_add(v[a], v[b], &r)
                         : ops[o] == '*' ? rat_mul(v[a], v[b], &r)
                         : ops[o] == '-' ? rat_sub(v[a], v[b], &r)
                                         : rat_div(v[a], v[b], &r);
                if (!ok) continue;
                int w = snprintf(nex[m], SOLVE_CAP, "(%s %c %s)", ex[a], ops[o], ex[b]);
                if (w < 0 || w >= SOLVE_CAP) return -1;
                nv[m] = r;
                int got = solve_rec(nv, nex, m + 1, target, out, cap);
                if (got) return got;
            }
        }
    }
    return 0;
}

int countdown_solve(const int64_t *nums, int n, int64_t target, char *out, size_t cap) {
    if (n < 1 || n > COUNTDOWN_MAX_SOLVE || cap == 0) return -1;
    CdRat v[COUNTDOWN_MAX_SOLVE];
    char ex[COUNTDOWN_MAX_SOLVE][SOLVE_CAP];
    for (int i = 0; i < n; i++) {
        v[i].n = nums[i], v[i].d = 1;
        snprintf(ex[i], SOLVE_CAP, "%lld", (long long)nums[i]);
    }
    return solve_rec(v, ex, n, target, out, cap);
}
