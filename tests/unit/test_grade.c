// test_grade.c — graders (countdown, gsm8k, math, format, lang), pass@k, task prompts.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdint.h>

#include "eval/countdown.h"
#include "eval/grade.h"
#include "core/jsonl.h"
#include "eval/math_answer.h"
#include "eval/passk.h"
#include "core/rng.h"
#include "eval/task.h"
#include "unit.h"

static const char *data_dir(void) {
    const char *d = getenv("DATA");
    return d ? d : "../shared/data";
}

// Reads every record of DATA/rel into problems for task k; returns the count (-1 on error).
static int load(TaskKind k, const char *rel, TaskSet *set) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", data_dir(), rel);
    DsErr e;
    if (task_set_load(set, k, path, 0, &e) != DS_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    return set->n;
}

static double cd(const char *completion, int64_t a, int64_t b, int64_t c, int64_t target) {
    int64_t nums[3] = {a, b, c};
    CountdownResult r;
    countdown_score(completion, strlen(completion), nums, 3, target, &r);
    return r.score;
}

// ---------------------------------------------------------------------------------------------

static void countdown_rules(T *t) {
    // nums 44 19 35, target 98
    CHECK(t, cd("<answer>44 + 19 + 35</answer>", 44, 19, 35, 98) == 1.0);
    CHECK(t, cd(" <think>x</think>\n<answer> (35 + 44) + 19 </answer>", 44, 19, 35, 98) == 1.0);
    CHECK(t, cd("<answer>44 + 19 - 35</answer>", 44, 19, 35, 98) == 0.1);     // wrong value
    CHECK(t, cd("<answer>44 + 44 + 10</answer>", 44, 19, 35, 98) == 0.1);     // reused number
    CHECK(t, cd("<answer>44 + 54</answer>", 44, 19, 35, 98) == 0.1);          // missing numbers
    CHECK(t, cd("<answer>44 + 19 + 35 + 0</answer>", 44, 19, 35, 98) == 0.1); // extra number
    CHECK(t, cd("<answer>44 + 19 + 35 = 98</answer>", 44, 19, 35, 98) == 0.1);
    CHECK(t, cd("<answer>44 + 19 + abs(35)</answer>", 44, 19, 35, 98) == 0.1); // letters
    CHECK(t, cd("<answer>44 + 19 + 35;</answer>", 44, 19, 35, 98) == 0.1);
    CHECK(t, cd("<answer>[44 + 19] + 35</answer>", 44, 19, 35, 98) == 0.1);
    CHECK(t, cd("<answer>44 × 19</answer>", 44, 19, 35, 98) == 0.1);           // non-ASCII
    CHECK(t, cd("<answer></answer>", 44, 19, 35, 98) == 0.1);
    CHECK(t, cd("44 + 19 + 35", 44, 19, 35, 98) == 0.0);                   // no tags
    CHECK(t, cd("<answer>44 + 19 + 35", 44, 19, 35, 98) == 0.0);           // never closed
    CHECK(t, cd("<answer>44 + 19\n+ 35</answer>", 44, 19, 35, 98) == 0.0); // '.' stops at \n
    // Only the last answer counts.
    CHECK(t, cd("<answer>1</answer> then <answer>44+19+35</answer>", 44, 19, 35, 98) == 1.0);
    CHECK(t, cd("<answer>44+19+35</answer> then <answer>1</answer>", 44, 19, 35, 98) == 0.1);
    CHECK(t, cd("<answer><answer>44+19+35</answer>", 44, 19, 35, 98) == 0.1); // "<answer>44..."
    // Only the text after "Assistant:" is read.
    CHECK(t, cd("User: <answer>44+19+35</answer> Assistant: none", 44, 19, 35, 98) == 0.0);
    CHECK(t, cd("User: x Assistant: <answer>44+19+35</answer>", 44, 19, 35, 98) == 1.0);
    // Exact rationals; division by zero; Python operators we refuse.
    CHECK(t, cd("<answer>(1 / 3) * 3</answer>", 1, 3, 3, 1) == 1.0);
    CHECK(t, cd("<answer>5 / (3 - 3)</answer>", 5, 3, 3, 5) == 0.1);
    CHECK(t, cd("<answer>8 / 2 + 3</answer>", 8, 2, 3, 7) == 1.0);
    CHECK(t, cd("<answer>8 // 2 + 3</answer>", 8, 2, 3, 7) == 0.1);
    CHECK(t, cd("<answer>2 ** 3 - 1</answer>", 2, 3, 1, 7) == 0.1);
    CHECK(t, cd("<answer>-2 + 8 + 1</answer>", 2, 8, 1, 7) == 1.0);  // unary minus
    CHECK(t, cd("<answer>008 - 2 + 1</answer>", 8, 2, 1, 7) == 0.1); // Python: leading zeros
    // Deep nesting: fine up to the bound, invalid (0.1, no crash) beyond it.
    char *deep = malloc(200000);
    for (int depth = 50; depth <= 50000; depth *= 1000) {
        int n = sprintf(deep, "<answer>");
        for (int i = 0; i < depth; i++) deep[n++] = '(';
        n += sprintf(deep + n, "44");
        for (int i = 0; i < depth; i++) deep[n++] = ')';
        sprintf(deep + n, " + 19 + 35</answer>");
        CHECKF(t, cd(deep, 44, 19, 35, 98) == (depth <= COUNTDOWN_MAX_DEPTH ? 1.0 : 0.1), "%d",
               depth);
        n = sprintf(deep, "<answer>");
        for (int i = 0; i < depth; i++) deep[n++] = '-', deep[n++] = '-';
        sprintf(deep + n, "44 + 19 + 35</answer>");
        CHECKF(t, cd(deep, 44, 19, 35, 98) == (2 * depth <= COUNTDOWN_MAX_DEPTH ? 1.0 : 0.1), "%d",
               depth);
    }
    // Long inputs: a long equation is invalid; many unclosed tags stay linear and score 0.
    int n = sprintf(deep, "<answer>44 + 19 + 35");
    for (int i = 0; i < 5000; i++) n += sprintf(deep + n, " + 0");
    sprintf(deep + n, "</answer>");
    CHECK(t, cd(deep, 44, 19, 35, 98) == 0.1);
    for (int i = 0; i < 20000; i++) memcpy(deep + 8 * i, "<answer>", 8);
    deep[160000] = '\0';
    CHECK(t, cd(deep, 44, 19, 35, 98) == 0.0);
    free(deep);
}

static void countdown_evaluator(T *t) {
    CdRat v;
    CHECK(t, countdown_eval("1/3 + 1/6", 9, &v) && v.n == 1 && v.d == 2);
    CHECK(t, countdown_eval("2 * -3", 6, &v) && v.n == -6 && v.d == 1);
    CHECK(t, countdown_eval("--3", 3, &v) && v.n == 3);
    CHECK(t, countdown_eval(" 10 - 2 * 3 ", 12, &v) && v.n == 4); // precedence
    CHECK(t, countdown_eval("(10 - 2) * 3", 12, &v) && v.n == 24);
    CHECK(t, countdown_eval("8 / 4 / 2", 9, &v) && v.n == 1); // left to right
    CHECK(t, countdown_eval("2.50 * 2", 8, &v) && v.n == 5 && v.d == 1);
    CHECK(t, countdown_eval(".5 + 5.", 7, &v) && v.n == 11 && v.d == 2);
    CHECK(t, !countdown_eval("", 0, &v));
    CHECK(t, !countdown_eval(".", 1, &v));
    CHECK(t, !countdown_eval("()", 2, &v));
    CHECK(t, !countdown_eval("2(3)", 4, &v));
    CHECK(t, !countdown_eval("1 2", 3, &v));
    CHECK(t, !countdown_eval("(1 + 2", 6, &v));
    CHECK(t, !countdown_eval("1 + 2)", 6, &v));
    CHECK(t, !countdown_eval("1.2.3", 5, &v));
    CHECK(t, !countdown_eval("1 / 0", 5, &v));
    CHECK(t, !countdown_eval("1 / (2 - 2)", 11, &v));
    CHECK(t, !countdown_eval("99999999999 * 99999999999", 25, &v)); // 64-bit overflow
    CHECK(t, !countdown_eval("100000000000000000000", 21, &v));
    CHECK(t, !countdown_eval("1\0", 2, &v));
    // Numbers used: TinyZero's re.findall(r'\d+') as a multiset.
    int64_t nums[3] = {7, 7, 10};
    CHECK(t, countdown_uses_numbers("7*7-10", 6, nums, 3));
    CHECK(t, countdown_uses_numbers("(007 + 7) - 10", 14, nums, 3));
    CHECK(t, !countdown_uses_numbers("7*10", 4, nums, 3));
    CHECK(t, !countdown_uses_numbers("7*7*7-10", 8, nums, 3));
    CHECK(t, !countdown_uses_numbers("7*7-1.0", 7, nums, 3));
    CHECK(t, !countdown_uses_numbers("7+7+99999999999999999999999", 27, nums, 3));
}

static void countdown_solver_tinyzero(T *t) {
    // Every TinyZero test problem: the solver's equation scores 1.0; count those without one.
    TaskSet set;
    int n = load(TASK_COUNTDOWN, "countdown/tinyzero_test.jsonl", &set);
    CHECK(t, n == 2001);
    int unsolved = 0, scored = 0;
    GradeOpts o;
    grade_opts_default(&o);
    for (int i = 0; i < n; i++) {
        const Problem *p = set.p[i];
        char eq[256], completion[400];
        int got = countdown_solve(p->nums, p->n_nums, p->target, eq, sizeof eq);
        CHECK(t, got >= 0);
        if (got == 0) {
            unsolved++;
            continue;
        }
        snprintf(completion, sizeof completion, "<think>search</think> <answer>%s</answer>", eq);
        GradeResult r;
        grade(p, &o, completion, strlen(completion), &r);
        CHECKF(t, r.score == 1.0 && r.correct, "problem %s: %s", p->id, eq);
        scored += r.score == 1.0;
    }
    printf("countdown test: %d problems, %d solved and scored 1.0, %d without a solution\n", n,
           scored, unsolved);
    CHECK(t, unsolved == 0); // SOURCE.txt: every row was checked solvable
    task_set_free(&set);
    // No solution exists here, and a solution needs every number.
    int64_t none[3] = {1, 1, 1}, two[2] = {3, 4};
    char eq[64];
    CHECK(t, countdown_solve(none, 3, 100, eq, sizeof eq) == 0);
    CHECK(t, countdown_solve(two, 2, 7, eq, sizeof eq) == 1 && strcmp(eq, "(3 + 4)") == 0);
    CHECK(t, countdown_solve(two, 2, 4, eq, sizeof eq) == 0);
    CHECK(t, countdown_solve(none, 0, 1, eq, sizeof eq) == -1);
}

// ---------------------------------------------------------------------------------------------

static void gsm8k_self_and_changed(T *t) {
    // Each test answer graded against itself is correct; with the final number changed it is not.
    TaskSet set;
    int n = load(TASK_GSM8K, "gsm8k/test.jsonl", &set);
    CHECK(t, n == 1319);
    GradeOpts o;
    grade_opts_default(&o);
    int right = 0, wrong = 0;
    for (int i = 0; i < n; i++) {
        const Problem *p = set.p[i];
        const char *ans = json_string_value(json_object_get(p->rec, "answer"));
        GradeResult r;
        grade(p, &o, ans, strlen(ans), &r);
        right += r.correct && r.formatted && r.score == 1.0;
        const char *h = strstr(ans, "####");
        DsBuf b = {0};
        dsbuf_append(&b, ans, (size_t)(h - ans));
        dsbuf_printf(&b, "#### %.0f", p->ref_value + 1);
        grade(p, &o, b.data, b.len, &r);
        wrong += !r.correct && r.formatted && r.score == 0.0;
        dsbuf_free(&b);
    }
    CHECKF(t, right == n && wrong == n, "%d %d of %d", right, wrong, n);
    task_set_free(&set);
}

static double num(const char *s, MathExtract m) {
    double v;
    return math_extract_number(s, strlen(s), m, &v) ? v : -999;
}

static void gsm8k_extraction(T *t) {
    CHECK(t, num("so 3 + 4 = 7\n#### 1,234", MATH_EXTRACT_HASH) == 1234);
    CHECK(t, num("#### $18.00", MATH_EXTRACT_HASH) == 18);
    CHECK(t, num("#### -5", MATH_EXTRACT_HASH) == -5);
    CHECK(t, num("#### 3 then #### 4.", MATH_EXTRACT_HASH) == 4); // the final one
    CHECK(t, num("the answer is 7", MATH_EXTRACT_HASH) == -999);
    CHECK(t, num("####", MATH_EXTRACT_HASH) == -999);
    CHECK(t, num("The answer is 42.", MATH_EXTRACT_LAST_NUMBER) == 42);
    CHECK(t, num("costs $1,000.50 in total", MATH_EXTRACT_LAST_NUMBER) == 1000.5);
    CHECK(t, num("it is .5, or 1/2 of 10,", MATH_EXTRACT_LAST_NUMBER) == 10);
    CHECK(t, num("no numbers", MATH_EXTRACT_LAST_NUMBER) == -999);
    CHECK(t, num("a \\boxed{5} b \\boxed{18}.", MATH_EXTRACT_BOXED) == 18);
    CHECK(t, num("\\boxed{1,000}", MATH_EXTRACT_BOXED) == 1000);
    CHECK(t, num("\\boxed{x}", MATH_EXTRACT_BOXED) == -999);
    CHECK(t, num("<answer>\n $1,234 \n</answer>", MATH_EXTRACT_ANSWER) == 1234);
    CHECK(t, num("<answer>so it is -7.</answer>", MATH_EXTRACT_ANSWER) == -7);
    CHECK(t, num("<answer>\\boxed{12} of 20</answer>", MATH_EXTRACT_ANSWER) == 12);
    CHECK(t, num("<answer>12", MATH_EXTRACT_ANSWER) == -999);
    CHECK(t, num("#### 5", MATH_EXTRACT_DEFAULT) == 5);
    MathExtract m;
    CHECK(t, math_extract_from_name("answer", &m) == DS_OK && m == MATH_EXTRACT_ANSWER);
    CHECK(t, math_extract_from_name("hash", &m) == DS_OK && m == MATH_EXTRACT_HASH);
    CHECK(t, math_extract_from_name("last", &m) == DS_ERR);
    CHECK(t, math_numbers_equal(18, 18.0) && !math_numbers_equal(18, 18.5));
    // Through the dispatcher: "18.0" equals the reference 18.
    json_t *rec = json_pack("{s:s,s:s}", "question", "q", "answer", "work\n#### 18");
    DsErr e;
    Problem *p = problem_from_json(TASK_GSM8K, rec, "f", 1, &e);
    json_decref(rec);
    GradeOpts o;
    grade_opts_default(&o);
    GradeResult r;
    grade(p, &o, "#### 18.0", 9, &r);
    CHECK(t, r.correct && strcmp(r.answer, "18") == 0);
    o.extract = MATH_EXTRACT_LAST_NUMBER;
    grade(p, &o, "I think 17, no: 18", 18, &r);
    CHECK(t, r.correct);
    problem_free(p);
}

// ---------------------------------------------------------------------------------------------

static int eqv(const char *a, const char *b) { return math_equiv(a, strlen(a), b, strlen(b)); }

static void math_normalisation(T *t) {
    CHECK(t, eqv("\\frac12", "\\frac{1}{2}"));
    CHECK(t, eqv("\\dfrac{1}{2}", "\\frac{1}{2}"));
    CHECK(t, eqv("\\tfrac12", "\\frac{1}{2}"));
    CHECK(t, eqv("\\frac1{72}", "\\frac{1}{72}"));
    CHECK(t, eqv("1/2", "\\frac{1}{2}"));
    CHECK(t, eqv("0.5", "\\frac12"));
    CHECK(t, eqv(".5", "0.5"));
    CHECK(t, eqv("10\\%", "10"));
    CHECK(t, eqv("5\\text{ cm}", "5"));
    CHECK(t, eqv("90^\\circ", "90"));
    CHECK(t, eqv("90^{\\circ}", "90"));
    CHECK(t, eqv("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"));
    CHECK(t, eqv("x = 5", "5"));
    CHECK(t, eqv("3.0", "3"));
    CHECK(t, eqv("2.50", "2.5"));
    CHECK(t, eqv("\\sqrt2", "\\sqrt{2}"));
    CHECK(t, eqv("2\\sqrt3", "2\\sqrt{3}"));
    CHECK(t, eqv("1\\!000", "1000"));
    CHECK(t, eqv("1,000", "1000"));
    CHECK(t, eqv("\\text{Monday}", "Monday"));
    CHECK(t, eqv("\\text{(C)}", "(C)"));
    CHECK(t, eqv("\\textbf{\\text{A}}, \\mbox{B}", "A,B"));
    CHECK(t, eqv("\\text{a{b}", "\\text{a{b}")); // unbalanced: left alone
    CHECK(t, !eqv("\\text{a{b}", "a{b"));
    CHECK(t, eqv("\\$5", "5"));
    CHECK(t, eqv("a\nb", "ab"));
    CHECK(t, !eqv("3", "4"));
    CHECK(t, !eqv("\\frac{1}{3}", "\\frac{1}{2}"));
    CHECK(t, !eqv("xy = 5", "5")); // the prefix is stripped only when short
    CHECK(t, !eqv("(1,2)", "(2,1)"));
    CHECK(t, !eqv("1,2", "12"));
    CHECK(t, !eqv("x^2", "x^3"));
    // Where the reference code raises, the raw texts are compared.
    CHECK(t, math_normalize("\\sqrt", 5) == NULL && eqv("\\sqrt", "\\sqrt"));
    CHECK(t, math_normalize("\\frac", 5) == NULL && !eqv("\\frac", "\\frac{}"));
    CHECK(t, math_normalize("1\\text{ a}\\text{ b}", 18) == NULL);
    char *s = math_normalize("\\frac\xce\xb1\xce\xb2", 9); // one character is one code point
    CHECK(t, s && strcmp(s, "\\frac{\xce\xb1}{\xce\xb2}") == 0);
    free(s);
    // \boxed extraction.
    const char *b;
    size_t n;
    const char *x = "a \\boxed{\\frac{1}{2}} b \\boxed{3} c";
    CHECK(t, math_last_boxed(x, strlen(x), &b, &n) && n == 1 && b[0] == '3');
    x = "\\boxed{\\{1, 2\\}}.";
    CHECK(t, math_last_boxed(x, strlen(x), &b, &n) && n == 8 && memcmp(b, "\\{1, 2\\}", 8) == 0);
    x = "\\fbox{4}";
    CHECK(t, math_last_boxed(x, strlen(x), &b, &n) && n == 1 && b[0] == '4');
    x = "$\\boxed 5$";
    CHECK(t, math_last_boxed(x, strlen(x), &b, &n) && n == 1 && b[0] == '5');
    x = "\\boxed{3";
    CHECK(t, !math_last_boxed(x, strlen(x), &b, &n));
    CHECK(t, !math_last_boxed("no box", 6, &b, &n));
}

static void math_answer_modes(T *t) {
    json_t *rec = json_pack("{s:s}", "answer", "\\frac{7}{2}");
    DsErr e;
    Problem *p = problem_from_json(TASK_MATH, rec, "m", 1, &e);
    json_decref(rec);
    GradeOpts o;
    grade_opts_default(&o);
    GradeResult r;
    const char *c = "<think>\\boxed{3}</think> <answer> \\dfrac72 </answer>";
    grade(p, &o, c, strlen(c), &r); // default: the last \boxed{} is 3
    CHECK(t, r.formatted && !r.correct && strcmp(r.answer, "3") == 0);
    o.extract = MATH_EXTRACT_ANSWER;
    grade(p, &o, c, strlen(c), &r);
    CHECK(t, r.formatted && r.correct && r.score == 1 && strcmp(r.answer, "\\frac{7}{2}") == 0);
    c = "<answer>\n$\\boxed{3.5}$ so \\boxed{7/2}\n</answer>";
    grade(p, &o, c, strlen(c), &r);
    CHECK(t, r.correct);
    c = "no tags \\boxed{7/2}";
    grade(p, &o, c, strlen(c), &r);
    CHECK(t, !r.formatted && !r.correct && r.score == 0);
    problem_free(p);
}

static void math500_self(T *t) {
    // Each problem's own answer, and the last \boxed{} of its solution, match the answer field.
    TaskSet set;
    int n = load(TASK_MATH, "math500/test.jsonl", &set);
    CHECK(t, n == 500);
    GradeOpts o;
    grade_opts_default(&o);
    int self = 0, sol = 0, raw_differs = 0;
    for (int i = 0; i < n; i++) {
        const Problem *p = set.p[i];
        DsBuf b = {0};
        dsbuf_printf(&b, "so \\boxed{%s}.", p->ref);
        GradeResult r;
        grade(p, &o, b.data, b.len, &r);
        self += r.correct;
        dsbuf_free(&b);
        const json_t *s = json_object_get(p->rec, "solution");
        grade(p, &o, json_string_value(s), json_string_length(s), &r);
        sol += r.correct;
        if (!r.correct) printf("solution %s: boxed differs from answer '%s'\n", p->id, p->ref);
        const char *bx;
        size_t bn;
        if (math_last_boxed(json_string_value(s), json_string_length(s), &bx, &bn) &&
            (bn != strlen(p->ref) || memcmp(bx, p->ref, bn) != 0))
            raw_differs++;
    }
    printf("math500: answer %d/%d, solution %d/%d (%d boxed texts differ from the answer)\n", self,
           n, sol, n, raw_differs);
    CHECK(t, self == n);
    CHECK(t, sol * 100 >= 99 * n);
    task_set_free(&set);
}

// ---------------------------------------------------------------------------------------------

static void passk_cases(T *t) {
    CHECK_CLOSE(t, passk_estimate(10, 3, 1), 0.3, 1e-12);
    CHECK_CLOSE(t, passk_estimate(10, 3, 5), 1.0 - 21.0 / 252.0, 1e-12);
    CHECK_CLOSE(t, passk_estimate(10, 0, 5), 0.0, 1e-12);
    CHECK(t, passk_estimate(10, 8, 3) == 1.0); // n - c < k
    CHECK(t, passk_estimate(5, 5, 5) == 1.0);
    CHECK_CLOSE(t, passk_estimate(4, 1, 2), 0.5, 1e-12); // 1 - C(3,2)/C(4,2)
    CHECK(t, passk_estimate(3, 1, 4) == -1 && passk_estimate(3, 4, 1) == -1);
    // Against the closed form with exact binomials for every small case.
    for (int n = 1; n <= 20; n++)
        for (int c = 0; c <= n; c++)
            for (int k = 1; k <= n; k++) {
                double num = 1, den = 1; // C(n-c,k)/C(n,k) = prod_{j<k} (n-c-j)/(n-j)
                for (int j = 0; j < k; j++) num *= (n - c - j > 0 ? n - c - j : 0), den *= n - j;
                CHECK_CLOSE(t, passk_estimate(n, c, k), 1.0 - num / den, 1e-12);
            }
    const char *ans[] = {"a", "b", "b", "a", "", NULL, "c"};
    int cor[] = {1, 0, 0, 1, 1, 1, 1};
    CHECK(t, passk_majority(ans, cor, 1) == 1);
    CHECK(t, passk_majority(ans, cor, 3) == 0); // b twice
    CHECK(t, passk_majority(ans, cor, 4) == 1); // 2-2 tie: a came first
    CHECK(t, passk_majority(ans, cor, 6) == 1); // empty answers do not vote
    const char *none[] = {"", NULL};
    CHECK(t, passk_majority(none, cor, 2) == 0);
}

static void lang_consistency(T *t) {
    const char *s = "The quick brown fox jumps.";
    CHECK(t, grade_lang(s, strlen(s), LANG_LATIN) == 1.0);
    s = "hello мир world привет";
    CHECK(t, grade_lang(s, strlen(s), LANG_LATIN) == 0.5);
    CHECK(t, grade_lang(s, strlen(s), LANG_CYRILLIC) == 0.5);
    s = "123 + 456 = 579 !! ...";
    CHECK(t, grade_lang(s, strlen(s), LANG_LATIN) == 1.0);
    CHECK(t, grade_lang("", 0, LANG_CJK) == 1.0);
    s = "<think>привет мир</think> <answer>hello</answer>"; // only the chain of thought counts
    CHECK(t, grade_lang(s, strlen(s), LANG_LATIN) == 0.0);
    s = "reasoning in English</think> <answer>ответ</answer>"; // <think> was in the prompt
    CHECK(t, grade_lang(s, strlen(s), LANG_LATIN) == 1.0);
    s = "你好世界 ok"; // each CJK character is a word
    CHECK(t, grade_lang(s, strlen(s), LANG_CJK) == 0.8);
    s = "abcабв αβγ";
    CHECK_CLOSE(t, grade_lang(s, strlen(s), LANG_GREEK), 1.0 / 3, 1e-12);
    s = "café naïve cafe\xcc\x81"; // precomposed and combining accents stay one word
    CHECK(t, grade_lang(s, strlen(s), LANG_LATIN) == 1.0);
    s = "\xff\xfe abc \xc0\xaf";
    CHECK(t, grade_lang(s, strlen(s), LANG_LATIN) == 1.0);
    s = "שלום hello";
    CHECK(t, grade_lang(s, strlen(s), LANG_LATIN) == 0.5);
}

// Reasoning in a script the target is not must lower the score, whatever the script: the review's
// cases, each a miss for Latin and for CJK unless it is that script.
static void lang_every_script(T *t) {
    struct {
        const char *text;
        double latin, cjk;
    } cases[] = {
        {"நாம் எண்களைச் சேர்த்து", 0, 0},          // Tamil (vowel signs are marks inside words)
        {"আমরা সংখ্যা যোগ করি", 0, 0},               // Bengali
        {"\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab", 0, 1}, // Hangul jamo, the decomposed syllable 한
        {"ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ", 0, 0},         // fullwidth Latin: a presentation form
        {"ｶﾀｶﾅ", 0, 0},                              // halfwidth katakana: a presentation form
        {"𝐛𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐", 0, 0},                      // mathematical letters (script Common)
        {"ሰላም ዓለም", 0, 0},                          // Ethiopic
        {"ᚠᚢᚦᚨᚱ", 0, 0},                              // Runic
        {"カタカナー", 0, 1},                         // the prolonged sound mark is kana (scx)
        {"think in English", 1, 0},
    };
    for (size_t i = 0; i < DS_ARRAY_LEN(cases); i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "<think>%s</think> <answer>1</answer>", cases[i].text);
        double l = grade_lang(buf, strlen(buf), LANG_LATIN), c = grade_lang(buf, strlen(buf), LANG_CJK);
        if (l != cases[i].latin || c != cases[i].cjk)
            fprintf(stderr, "case %zu (%s): latin %g cjk %g\n", i, cases[i].text, l, c);
        CHECK(t, l == cases[i].latin && c == cases[i].cjk);
    }
    // Every letter of Unicode, each as a word of its own: each is counted exactly once, and for
    // its script's target only, so no letter is ignored and none scores for another script.
    int err;
    PCRE2_SIZE off;
    const char *klass[5] = {"^\\p{Latin}$", "^\\p{Cyrillic}$", "^\\p{Greek}$",
                            "^[\\p{Han}\\p{Hiragana}\\p{Katakana}\\p{Hangul}\\p{Bopomofo}]$", "^\\p{L}$"};
    pcre2_code *re[5];
    for (int k = 0; k < 5; k++)
        re[k] = pcre2_compile((PCRE2_SPTR)klass[k], PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off, NULL);
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    DsBuf text = {0};
    long want[5] = {0}, letters = 0;
    for (uint32_t cp = 1; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        char u[4];
        size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (n == 1) u[0] = (char)cp;
        else {
            for (size_t j = n - 1; j > 0; j--) u[j] = (char)(0x80 | ((cp >> (6 * (n - 1 - j))) & 0x3F));
            u[0] = (char)((0xF00 >> n) | (cp >> (6 * (n - 1))));
        }
        if (pcre2_match(re[4], (PCRE2_SPTR)u, n, 0, 0, md, NULL) < 0) continue;
        letters++;
        int k = 4;
        if (!(cp >= 0xFF00 && cp <= 0xFFEF))
            for (k = 0; k < 4; k++)
                if (pcre2_match(re[k], (PCRE2_SPTR)u, n, 0, 0, md, NULL) >= 0) break;
        want[k]++;
        dsbuf_append(&text, u, n);
        dsbuf_append(&text, " ", 1);
    }
    long got[5];
    CHECK(t, grade_lang_words(text.data, text.len, got) == DS_OK);
    for (int k = 0; k < 5; k++) {
        if (got[k] != want[k]) fprintf(stderr, "class %d: %ld words, %ld letters\n", k, got[k], want[k]);
        CHECK(t, got[k] == want[k]);
    }
    CHECK(t, letters > 100000 && want[0] > 1000 && want[3] > 90000 && want[4] > 10000);
    dsbuf_free(&text);
    pcre2_match_data_free(md);
    for (int k = 0; k < 5; k++) pcre2_code_free(re[k]);
}

static void format_reward(T *t) {
    const char *ok[] = {"<think>x</think><answer>y</answer>",
                        "\n <think>\nsteps\n</think>\n<answer>\n42\n</answer>\n"};
    const char *bad[] = {"<think>x</think>",
                         "<answer>y</answer>",
                         "pre <think>x</think><answer>y</answer>",
                         "<think>x</think><answer>y</answer> post",
                         "<think>x</think> and <answer>y</answer>",
                         "<answer>y</answer><think>x</think>",
                         "<think>a</think><think>b</think><answer>y</answer>",
                         "<think>x<answer>y</answer></think>",
                         ""};
    for (size_t i = 0; i < DS_ARRAY_LEN(ok); i++)
        CHECKF(t, grade_format(ok[i], strlen(ok[i])) == 1, "%zu", i);
    for (size_t i = 0; i < DS_ARRAY_LEN(bad); i++)
        CHECKF(t, grade_format(bad[i], strlen(bad[i])) == 0, "%zu", i);
}

static void arbitrary_bytes(T *t) {
    // Random bytes and random mixes of the markup every grader looks for: no crash (the sanitizer
    // build checks every access), scores in range, answers valid JSON strings.
    static const char *const bits[] = {
        "<answer>",   "</answer>", "<think>", "</think>", "\\boxed{", "\\fbox{", "{",        "}",
        "####",       " ",         "\n",      "(",        ")",        "+",       "-",        "*",
        "/",          ".",         "7",       "44",       "\\frac",   "\\sqrt",  "\\text{ ", "=",
        "Assistant:", "\xd0\xbc",  "\xff",    "\xe4\xbd", "0."};
    json_t *rc = json_pack("{s:i,s:[i,i,i]}", "target", 98, "nums", 44, 19, 35);
    json_t *rg = json_pack("{s:s}", "answer", "#### 7");
    json_t *rm = json_pack("{s:s}", "answer", "\\frac{7}{2}");
    DsErr e;
    Problem *ps[5] = {problem_from_json(TASK_COUNTDOWN, rc, "f", 1, &e),
                      problem_from_json(TASK_GSM8K, rg, "f", 1, &e),
                      problem_from_json(TASK_MATH, rm, "f", 1, &e),
                      problem_from_json(TASK_FORMAT, rc, "f", 1, &e),
                      problem_from_json(TASK_LANG, rc, "f", 1, &e)};
    json_decref(rc), json_decref(rg), json_decref(rm);
    Rng r;
    rng_seed(&r, 7);
    GradeOpts o;
    grade_opts_default(&o);
    char buf[512];
    int bad = 0;
    for (int it = 0; it < 50000; it++) {
        size_t n = 0, want = rng_below(&r, sizeof buf - 16);
        int raw = it % 3 == 0;
        while (n < want) {
            if (raw) {
                buf[n++] = (char)rng_below(&r, 256);
            } else {
                const char *b = bits[rng_below(&r, DS_ARRAY_LEN(bits))];
                size_t l = strlen(b);
                memcpy(buf + n, b, l);
                n += l;
            }
        }
        o.extract = (MathExtract)(it % 5);
        char *exact = malloc(n ? n : 1); // exactly n bytes: any read past the end is caught
        memcpy(exact, buf, n);
        for (int k = 0; k < 5; k++) {
            GradeResult g;
            grade(ps[k], &o, exact, n, &g);
            json_t *s = json_string(g.answer);
            bad += !(g.score >= 0 && g.score <= 1) || !s;
            json_decref(s);
        }
        free(math_normalize(exact, n));
        free(exact);
    }
    CHECK(t, bad == 0);
    for (int k = 0; k < 5; k++) problem_free(ps[k]);
}

// ---------------------------------------------------------------------------------------------

static void task_records_and_prompts(T *t) {
    DsErr e;
    json_t *rec = json_pack("{s:i,s:[i,i,i],s:i}", "target", 98, "nums", 44, 19, 35, "index", 0);
    Problem *p = problem_from_json(TASK_COUNTDOWN, rec, "cd.jsonl", 7, &e);
    CHECK(t, p && strcmp(p->id, "7") == 0 && p->n_nums == 3 && p->target == 98);
    char *s = task_prompt(p, &e);
    CHECK(t, s && strcmp(s, "Using the numbers [44, 19, 35], create an equation that equals 98. "
                            "You can use basic arithmetic operations (+, -, *, /) and each number "
                            "can only be used once. Show your work in <think> </think> tags. And "
                            "return the final answer in <answer> </answer> tags, for example "
                            "<answer> (1 + 2) / 3 </answer>.") == 0);
    free(s);
    problem_free(p);
    json_decref(rec);
    // ds task lines: id and prompt given; integer ids in decimal.
    rec = json_pack("{s:I,s:s,s:s}", "id", (json_int_t)12345678901, "prompt", "What is 2+2?",
                    "answer", "4");
    p = problem_from_json(TASK_GSM8K, rec, "t.jsonl", 1, &e);
    CHECK(t, p && strcmp(p->id, "12345678901") == 0 && p->ref_value == 4);
    s = task_prompt(p, &e);
    char *full = task_apply_template(s, TEMPLATE_R1);
    const char *tail = "<answer> answer here </answer>. User: What is 2+2? Assistant:";
    CHECK(t, strncmp(full, "A conversation between User and Assistant. ", 43) == 0);
    CHECK(t, strlen(full) > strlen(tail) && strcmp(full + strlen(full) - strlen(tail), tail) == 0);
    free(full);
    full = task_apply_template("Solve x", TEMPLATE_R1);
    CHECK(t, strstr(full, "User: Solve x. Assistant:") != NULL);
    free(full);
    full = task_apply_template(s, TEMPLATE_PLAIN);
    CHECK(t, strcmp(full, "What is 2+2?") == 0);
    free(full);
    free(s);
    problem_free(p);
    json_decref(rec);
    // Records a task cannot use name the file and line.
    rec = json_pack("{s:i}", "target", 5);
    CHECK(t, problem_from_json(TASK_COUNTDOWN, rec, "cd.jsonl", 3, &e) == NULL);
    CHECKF(t, strstr(e.msg, "cd.jsonl:3: field 'nums'") != NULL, "%s", e.msg);
    json_decref(rec);
    rec = json_pack("{s:s}", "question", "q");
    CHECK(t, problem_from_json(TASK_GSM8K, rec, "g.jsonl", 4, &e) == NULL);
    CHECKF(t, strstr(e.msg, "g.jsonl:4:") != NULL, "%s", e.msg);
    CHECK(t, problem_from_json(TASK_MATH, rec, "m.jsonl", 5, &e) == NULL);
    json_decref(rec);
    rec = json_pack("{s:s}", "answer", "no number");
    CHECK(t, problem_from_json(TASK_GSM8K, rec, "g.jsonl", 8, &e) == NULL);
    CHECKF(t, strstr(e.msg, "g.jsonl:8: field 'answer' has no final number") != NULL, "%s", e.msg);
    CHECK(t, (p = problem_from_json(TASK_FORMAT, rec, "m.jsonl", 5, &e)) != NULL);
    CHECK(t, task_prompt(p, &e) == NULL && strstr(e.msg, "no 'prompt'") != NULL);
    problem_free(p);
    json_decref(rec);
    rec = json_pack("{s:[i],s:s}", "id", 1, "answer", "4");
    CHECK(t, problem_from_json(TASK_MATH, rec, "m.jsonl", 6, &e) == NULL);
    CHECKF(t, strstr(e.msg, "m.jsonl:6: field 'id'") != NULL, "%s", e.msg);
    json_decref(rec);
    TaskKind k;
    CHECK(t, task_from_name("math", &k) == DS_OK && k == TASK_MATH);
    CHECK(t, task_from_name("mathx", &k) == DS_ERR);
}

// Reflective words: whole words in any case with their inflections; parts of other words, other
// words and empty or invalid text count nothing.
static void reflection_words(T *t) {
    static const struct {
        const char *text;
        long n;
    } cases[] = {
        {"", 0},
        {"Wait, let me check again.", 2},
        {"WAIT wait Wait", 3},
        {"I verified it; verifying is a habit, so I verify.", 3},
        {"checks checked checking check", 4},
        {"but however, an error: two errors and mistakes, a mistake, wrong", 7},
        {"re-evaluate: we evaluate, evaluated, evaluating; retry", 5},
        {"awaiting checkpoint butter errorless wrongly unverifiable", 0},
        {"<think>48 + 2 = 50</think> <answer>48 + 2</answer>", 0},
        {"wait\xff\xfe wait", 2},
        {"ждать wait 待って", 1},
    };
    for (size_t i = 0; i < DS_ARRAY_LEN(cases); i++) {
        long n = grade_reflection_words(cases[i].text, strlen(cases[i].text));
        CHECKF(t, n == cases[i].n, "'%s': %ld reflective words, want %ld", cases[i].text, n, cases[i].n);
    }
}

UNIT_MAIN(CASE(countdown_rules), CASE(countdown_evaluator), CASE(countdown_solver_tinyzero),
          CASE(gsm8k_self_and_changed), CASE(gsm8k_extraction), CASE(math_normalisation),
          CASE(math_answer_modes), CASE(math500_self), CASE(passk_cases), CASE(lang_consistency), CASE(lang_every_script),
          CASE(format_reward), CASE(arbitrary_bytes), CASE(task_records_and_prompts), CASE(reflection_words))
