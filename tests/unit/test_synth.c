// test_synth.c — synthetic data: determinism, split hygiene, solvability, the search texts under
// the graders, true arithmetic facts, the two reasoning scripts.
#include <jansson.h>
#include <stdint.h>
#include <unistd.h>

#include "text/chat.h"
#include "eval/countdown.h"
#include "eval/grade.h"
#include "synth/synth.h"
#include "unit.h"

// ---- helpers ----

typedef enum { OUT_PROBLEMS, OUT_CORPUS, OUT_SFT } Out;

// Runs a generator into memory; returns the malloc'd bytes.
static char *generate(Out what, const SynthOpts *o, SynthStats *st, size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    DsErr e;
    int rc = what == OUT_PROBLEMS ? synth_problems(o, f, st, &e)
             : what == OUT_CORPUS ? synth_corpus(o, f, st, &e)
                                  : synth_sft(o, f, st, &e);
    fclose(f);
    if (rc != DS_OK) {
        fprintf(stderr, "generator failed: %s\n", e.msg);
        free(buf);
        return NULL;
    }
    return buf;
}

// Calls fn on every JSON line of buf.
typedef void (*LineFn)(T *t, json_t *o, void *ctx);
static int each_line(T *t, const char *buf, LineFn fn, void *ctx) {
    int n = 0;
    for (const char *p = buf; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        json_error_t je;
        json_t *o = json_loadb(p, l, 0, &je);
        CHECKF(t, o != NULL, "line %d: %s", n + 1, je.text);
        if (o) fn(t, o, ctx), json_decref(o);
        n++;
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

// The numbers and target of a TinyZero countdown prompt inside text, or 0 when there is none.
static int parse_prompt(const char *text, SynthCountdown *p) {
    const char *a = strstr(text, "Using the numbers [");
    if (!a) return 0;
    a += strlen("Using the numbers [");
    p->n = 0;
    char *end;
    while (p->n < SYNTH_MAX_NUMS) {
        p->nums[p->n++] = strtoll(a, &end, 10);
        if (*end != ',') break;
        a = end + 2;
    }
    if (strncmp(end, "], create an equation that equals ", 34) != 0) return 0;
    p->target = strtoll(end + 34, NULL, 10);
    return 1;
}

static SynthOpts opts(uint64_t seed, long n) {
    SynthOpts o;
    synth_opts_default(&o);
    o.seed = seed, o.n = n;
    return o;
}

static const char *data_dir(void) {
    const char *d = getenv("DATA");
    return d ? d : "../shared/data";
}

// ---- cases ----

static void determinism(T *t) {
    for (int what = OUT_PROBLEMS; what <= OUT_SFT; what++) {
        SynthOpts o = opts(7, 300);
        if (what == OUT_CORPUS) o.lang = SYNTH_MIX;
        SynthStats s1, s2, s3;
        size_t l1, l2, l3;
        char *a = generate(what, &o, &s1, &l1), *b = generate(what, &o, &s2, &l2);
        o.seed = 8;
        char *c = generate(what, &o, &s3, &l3);
        CHECK(t, a && b && c);
        CHECKF(t, l1 == l2 && memcmp(a, b, l1) == 0, "output %d differs for one seed", what);
        CHECKF(t, l1 != l3 || memcmp(a, c, l1) != 0, "output %d equal for two seeds", what);
        CHECK(t, s1.records == 300 && s3.records == 300);
        free(a), free(b), free(c);
    }
    // A prefix of the documents does not depend on how many are asked for.
    SynthOpts o = opts(3, 50);
    SynthStats st;
    size_t l1, l2;
    char *a = generate(OUT_CORPUS, &o, &st, &l1);
    o.n = 80;
    char *b = generate(OUT_CORPUS, &o, &st, &l2);
    CHECK(t, a && b && l1 < l2 && memcmp(a, b, l1) == 0);
    free(a), free(b);
}

static void keys_and_split(T *t) {
    int64_t x[3] = {96, 7, 37}, y[3] = {37, 96, 7}, z[3] = {96, 7, 38};
    CHECK(t, synth_countdown_key(x, 3, 55) == synth_countdown_key(y, 3, 55));
    CHECK(t, synth_countdown_key(x, 3, 55) != synth_countdown_key(x, 3, 56));
    CHECK(t, synth_countdown_key(x, 3, 55) != synth_countdown_key(z, 3, 55));
    CHECK(t, synth_pair_key(SYNTH_ADD, 37, 58) == synth_pair_key(SYNTH_ADD, 58, 37));
    CHECK(t, synth_pair_key(SYNTH_ADD, 37, 58) != synth_pair_key(SYNTH_LARGER, 37, 58));
    // The test share is close to SYNTH_TEST_PER_MILLE.
    long test = 0, n = 100000;
    for (long i = 0; i < n; i++) {
        int64_t v[3] = {i % 97, i / 97 % 89, 5};
        test += synth_split_of(synth_countdown_key(v, 3, i % 91)) == SYNTH_TEST;
    }
    CHECKF(t,
           test > n * SYNTH_TEST_PER_MILLE / 1000 * 0.95 &&
               test < n * SYNTH_TEST_PER_MILLE / 1000 * 1.05,
           "%ld of %ld in test", test, n);
    SynthKeySet s = {0};
    for (uint64_t k = 1; k <= 5000; k++)
        synth_keyset_add(&s, k * 7919);
    synth_keyset_add(&s, 7919);
    CHECK(t, s.n == 5000 && synth_keyset_has(&s, 7919 * 4999) && !synth_keyset_has(&s, 7918));
    synth_keyset_free(&s);
}

typedef struct ProbCtx {
    SynthKeySet *keys;       // collect keys here (NULL: do not)
    const SynthKeySet *deny; // keys that must not occur
    SynthSplit split;
    long n, unsolved, dup;
} ProbCtx;

static void check_problem(T *t, json_t *o, void *vctx) {
    ProbCtx *c = vctx;
    DsErr e;
    Problem *p = problem_from_json(TASK_COUNTDOWN, o, "gen", c->n + 1, &e);
    CHECKF(t, p != NULL, "%s", e.msg);
    if (!p) return;
    char eq[COUNTDOWN_MAX_EXPR];
    if (countdown_solve(p->nums, p->n_nums, p->target, eq, sizeof eq) != 1) c->unsolved++;
    uint64_t k = synth_countdown_key(p->nums, p->n_nums, p->target);
    CHECK(t, synth_split_of(k) == c->split);
    CHECK(t, !synth_keyset_has(c->deny, k));
    if (c->keys) {
        if (synth_keyset_has(c->keys, k)) c->dup++;
        synth_keyset_add(c->keys, k);
    }
    CHECK(t, strcmp(json_string_value(json_object_get(o, "task")), "countdown") == 0);
    problem_free(p);
    c->n++;
}

static void problems_split_and_solvable(T *t) {
    char path[512];
    snprintf(path, sizeof path, "%s/countdown/tinyzero_test.jsonl", data_dir());
    SynthKeySet tz = {0}, train = {0}, test = {0};
    DsErr e;
    CHECKF(t, synth_keyset_load(&tz, SYNTH_COUNTDOWN, path, &e) == DS_OK, "%s", e.msg);
    CHECKF(t, tz.n > 1900, "%zu TinyZero test keys", tz.n);
    SynthOpts o = opts(11, 3000);
    o.exclude = &tz;
    SynthStats st;
    size_t len;
    char *buf = generate(OUT_PROBLEMS, &o, &st, &len);
    ProbCtx c = {&train, &tz, SYNTH_TRAIN, 0, 0, 0};
    CHECK(t, buf && each_line(t, buf, check_problem, &c) == 3000);
    CHECK(t, c.unsolved == 0 && c.dup == 0);
    free(buf);
    // The test split of another seed and with 4 numbers: disjoint from train, also solvable.
    o = opts(12, 300);
    o.split = SYNTH_TEST;
    buf = generate(OUT_PROBLEMS, &o, &st, &len);
    ProbCtx d = {&test, &train, SYNTH_TEST, 0, 0, 0};
    CHECK(t, buf && each_line(t, buf, check_problem, &d) == 300 && d.unsolved == 0);
    free(buf);
    o.n_nums = 4, o.n = 100;
    buf = generate(OUT_PROBLEMS, &o, &st, &len);
    ProbCtx f = {NULL, &train, SYNTH_TEST, 0, 0, 0};
    CHECK(t, buf && each_line(t, buf, check_problem, &f) == 100 && f.unsolved == 0);
    free(buf);
    synth_keyset_free(&tz), synth_keyset_free(&train), synth_keyset_free(&test);
}

static void attempts_are_exact(T *t) {
    SynthCountdown p = {{96, 7, 37, 74}, 4, 55};
    for (int n = 2; n <= 4; n++) {
        p.n = n;
        SynthAttempt *at;
        int m = synth_attempts(&p, &at);
        CHECK(t, m > 0);
        for (int i = 0; i < m; i++) {
            CHECK(t, at[i].n_steps == n - 1);
            for (int s = 0; s < at[i].n_steps; s++) {
                const SynthStep *st = &at[i].step[s];
                int64_t r = st->op == '+'   ? st->a + st->b
                            : st->op == '-' ? st->a - st->b
                            : st->op == '*' ? st->a * st->b
                                            : st->a / st->b;
                CHECK(t, r == st->r && r > 0 && st->a >= st->b);
                if (st->op == '/') CHECK(t, st->a % st->b == 0);
            }
            CdRat v;
            size_t l = strlen(at[i].expr);
            CHECKF(t, countdown_eval(at[i].expr, l, &v) && v.d == 1 && v.n == at[i].value, "%s",
                   at[i].expr);
            CHECK(t, countdown_uses_numbers(at[i].expr, l, p.nums, n));
            CHECK(t, at[i].value == at[i].step[n - 2].r);
        }
        free(at);
    }
    // synth_reachable agrees with the attempts, and implies countdown_solve.
    SynthOpts o = opts(4, 0);
    long reach = 0;
    for (uint64_t c = 0; c < 3000; c++) {
        synth_countdown_candidate(&o, c, &p);
        SynthAttempt *at;
        int m = synth_attempts(&p, &at), hit = 0;
        for (int i = 0; i < m; i++) hit |= at[i].value == p.target;
        free(at);
        CHECK(t, synth_reachable(&p) == hit);
        char eq[COUNTDOWN_MAX_EXPR];
        if (hit) CHECK(t, countdown_solve(p.nums, p.n, p.target, eq, sizeof eq) == 1);
        reach += hit;
    }
    CHECKF(t, reach > 30 && reach < 1500, "%ld of 3000 candidates reachable", reach);
}

typedef struct CorpusCtx {
    const SynthKeySet *deny;
    SynthLang lang;
    long search, correct, wrong, facts, bad_prefix, mixed_ok, attempts, practice;
    long checks, check_hits, check_lines;
} CorpusCtx;

// Every fact "a op b = r" in a facts document is true; add-task test sums never appear.
static void check_facts(T *t, const char *s, CorpusCtx *c) {
    long n = 0;
    while (*s) {
        long long a, b, r;
        char op;
        int used;
        if (sscanf(s, "%lld %c %lld = %lld%n", &a, &op, &b, &r, &used) != 4) {
            CHECKF(t, 0, "not a fact: %.40s", s);
            return;
        }
        long long want = op == '+'         ? a + b
                         : op == '-'       ? a - b
                         : op == '*'       ? a * b
                         : b && a % b == 0 ? a / b
                                           : -1;
        CHECKF(t, want == r && r >= 0, "false fact: %lld %c %lld = %lld", a, op, b, r);
        if (op == '+') CHECK(t, synth_split_of(synth_pair_key(SYNTH_ADD, a, b)) == SYNTH_TRAIN);
        s += used;
        while (*s == ',' || *s == ' ' || *s == '\n')
            s++;
        n++;
    }
    CHECK(t, n > 0);
    c->facts++;
}

// The search of a completion stops at its first hit: only the last attempt line may reach the
// target, and it does exactly when the text says it found one. Adds the attempt lines to
// c->attempts; returns whether the text says found.
static int check_search(T *t, const char *comp, int64_t target, CorpusCtx *c) {
    int says_found = strstr(comp, ", yes, ") || strstr(comp, ", да, ");
    int lines = 0, hit_line = 0;
    comp = strchr(comp, '\n') + 1; // after the opening sentence
    for (const char *s = comp, *eol; (eol = strchr(s, '\n')); s = eol + 1) {
        const char *eq = NULL; // the attempt's value follows its last " = "
        for (const char *q = s; q < eol; q++)
            if (strncmp(q, " = ", 3) == 0) eq = q;
        if (eq && (strncmp(s, "Try", 3) == 0 || strncmp(s, "Пробую", strlen("Пробую")) == 0)) {
            lines++;
            if (strtoll(eq + 3, NULL, 10) == target) {
                CHECKF(t, hit_line == 0, "a search goes on after a hit: %s", comp);
                hit_line = lines;
            }
        }
    }
    CHECKF(t, says_found == (hit_line != 0) && (!hit_line || hit_line == lines),
           "hit on attempt %d of %d, found %d: %s", hit_line, lines, says_found, comp);
    c->attempts += lines;
    return says_found;
}

// A check drill: every line "x op y = v vs t, yes." is true arithmetic with the right verdict.
static void check_drill(T *t, const char *s, CorpusCtx *c) {
    long hits = 0, lines = 0;
    for (const char *eol; (eol = strchr(s, '\n')); s = eol + 1, lines++) {
        long long x, y, v, tg;
        char op;
        int n = 0;
        CHECKF(t, sscanf(s, "%lld %c %lld = %lld %*s %lld, %n", &x, &op, &y, &v, &tg, &n) == 5 && n,
               "not a check line: %.40s", s);
        if (!n) return;
        long long want = op == '+' ? x + y : op == '-' ? x - y : x * y;
        int yes = strncmp(s + n, "yes.", 4) == 0 || strncmp(s + n, "да.", strlen("да.")) == 0;
        CHECKF(t, want == v && yes == (v == tg), "wrong check line: %.40s", s);
        hits += yes;
    }
    CHECKF(t, lines >= 8 && lines <= 16, "%ld check lines", lines);
    c->checks++, c->check_hits += hits, c->check_lines += lines;
}

static void check_doc(T *t, json_t *o, void *vctx) {
    CorpusCtx *c = vctx;
    const char *text = json_string_value(json_object_get(o, "text"));
    CHECK(t, text != NULL && json_object_size(o) == 1);
    if (!text) return;
    SynthCountdown p;
    if (strncmp(text, " <think> ", 9) == 0) { // a practice search: no prompt
        const char *get = strstr(text, " to get "), *get_xx = strstr(text, " получить ");
        CHECK(t, (get || get_xx) && grade_format(text, strlen(text)) == 1 && !strstr(text, "User:"));
        if (!get && !get_xx) return;
        int64_t target = get ? strtoll(get + strlen(" to get "), NULL, 10)
                             : strtoll(get_xx + strlen(" получить "), NULL, 10);
        c->search++, c->practice++;
        if (check_search(t, text, target, c))
            c->correct++;
        else
            c->wrong++;
        return;
    }
    if (!parse_prompt(text, &p)) {
        if (strstr(text, " vs ") || strstr(text, " против "))
            check_drill(t, text, c);
        else
            check_facts(t, text, c);
        return;
    }
    c->search++;
    uint64_t k = synth_countdown_key(p.nums, p.n, p.target);
    CHECK(t, synth_split_of(k) == SYNTH_TRAIN && !synth_keyset_has(c->deny, k));
    // The prefix is byte-identical to what evaluation feeds the model.
    char *user = synth_countdown_prompt(&p), *prompt;
    json_t *rec = json_pack("{ss}", "prompt", user);
    DsErr e;
    CHECK(t, chat_render(rec, TEMPLATE_R1, "t", &prompt, NULL, &e) == DS_OK);
    size_t pl = strlen(prompt);
    if (strncmp(text, prompt, pl) != 0) c->bad_prefix++;
    const char *comp = text + pl;
    size_t cl = strlen(comp);
    CountdownResult r;
    countdown_score(comp, cl, p.nums, p.n, p.target, &r);
    CountdownResult r_all; // scoring the whole text reads the same answer
    countdown_score(text, strlen(text), p.nums, p.n, p.target, &r_all);
    CHECK(t, r.score == r_all.score);
    if (check_search(t, comp, p.target, c)) {
        CHECKF(t, r.score == COUNTDOWN_SCORE_CORRECT, "correct text scores %g: %s", r.score, comp);
        c->correct++;
    } else {
        CHECKF(t, r.score == COUNTDOWN_SCORE_FORMAT, "wrong text scores %g: %s", r.score, comp);
        c->wrong++;
    }
    CHECK(t, grade_format(comp, cl) == 1);
    double lat = grade_lang(comp, cl, LANG_LATIN), cyr = grade_lang(comp, cl, LANG_CYRILLIC);
    if (c->lang == SYNTH_EN) CHECKF(t, lat == 1.0, "latin %g", lat);
    if (c->lang == SYNTH_XX) CHECKF(t, cyr == 1.0 && lat == 0.0, "cyrillic %g", cyr);
    if (c->lang == SYNTH_MIX) {
        CHECKF(t, lat > 0 && lat < 1 && cyr > 0 && cyr < 1, "mix: latin %g", lat);
        c->mixed_ok += fabs(lat + cyr - 1.0) < 1e-12;
    }
    free(user), free(prompt), json_decref(rec);
}

static void corpus_graded(T *t) {
    char path[512];
    snprintf(path, sizeof path, "%s/countdown/tinyzero_test.jsonl", data_dir());
    SynthKeySet tz = {0};
    DsErr e;
    CHECKF(t, synth_keyset_load(&tz, SYNTH_COUNTDOWN, path, &e) == DS_OK, "%s", e.msg);
    for (int lang = SYNTH_EN; lang <= SYNTH_MIX; lang++) {
        SynthOpts o = opts(5 + lang, 2000);
        o.exclude = &tz, o.lang = (SynthLang)lang, o.quit_frac = 0.3, o.quit_after = 2;
        o.practice_frac = 0.3, o.check_frac = 0.1;
        SynthStats st;
        size_t len;
        char *buf = generate(OUT_CORPUS, &o, &st, &len);
        CorpusCtx c = {&tz, (SynthLang)lang, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        CHECK(t, buf && each_line(t, buf, check_doc, &c) == 2000);
        CHECKF(t,
               c.search == st.search && c.correct == st.correct && c.wrong == st.wrong &&
                   c.facts == st.facts && c.attempts == st.attempts && c.practice == st.practice &&
                   c.practice > 200 && c.checks == st.checks && c.checks > 100,
               "parsed %ld/%ld/%ld/%ld, stats %ld/%ld/%ld/%ld", c.search, c.correct, c.wrong,
               c.facts, st.search, st.correct, st.wrong, st.facts);
        CHECK(t, c.bad_prefix == 0);
        // Most searches succeed, some give up, facts are about a quarter.
        CHECKF(t, c.correct > c.wrong && c.wrong > 0 && c.facts > 300 && c.facts < 700,
               "%ld correct, %ld wrong, %ld facts", c.correct, c.wrong, c.facts);
        if (lang == SYNTH_MIX) CHECK(t, c.mixed_ok == c.search - c.practice);
        // Half of the check lines are hits.
        CHECKF(t, fabs((double)c.check_hits / (double)c.check_lines - 0.5) < 0.05, "%ld of %ld hits",
               c.check_hits, c.check_lines);
        free(buf);
    }
    synth_keyset_free(&tz);
}

static void max_attempts_controls_difficulty(T *t) {
    double prev = -1;
    for (int k = 2; k <= 32; k *= 4) {
        SynthOpts o = opts(9, 1500);
        o.max_attempts = k, o.quit_frac = 0, o.facts_frac = 0;
        SynthStats st;
        size_t len;
        char *buf = generate(OUT_CORPUS, &o, &st, &len);
        CHECK(t, buf && st.search == 1500);
        double frac = (double)st.correct / (double)st.search;
        CHECKF(t, frac > prev, "k=%d: %g correct", k, frac);
        CHECK(t, st.attempts <= (long)k * st.search);
        prev = frac;
        free(buf);
    }
    CHECKF(t, prev > 0.95, "with 32 attempts %g correct", prev);
}

// Impatient searches quit after 1..quit_after attempts unless one hits first; the patient ones
// search on, so quitting lowers the share that reach the target.
static void quit_frac_shortens_searches(T *t) {
    double share[2];
    for (int q = 0; q <= 1; q++) {
        SynthOpts o = opts(4, 1500);
        o.quit_frac = q, o.quit_after = 2, o.max_attempts = 14, o.facts_frac = 0;
        SynthStats st;
        size_t len;
        char *buf = generate(OUT_CORPUS, &o, &st, &len);
        CHECK(t, buf && st.search == 1500);
        if (q) CHECKF(t, st.attempts <= 2 * st.search, "%ld attempts", st.attempts);
        share[q] = (double)st.correct / (double)st.search;
        free(buf);
    }
    // One guessed attempt of 3 numbers hits about 8% of the time (docs/SYNTH.md), two about 16%.
    CHECKF(t, share[1] > 0.05 && share[1] < 0.25 && share[0] > 2 * share[1],
           "correct: %g patient, %g quitting", share[0], share[1]);
}

// A careful search tries every first step at most once, each finished by the last step closest
// to the target, so it reaches every reachable target within 12 attempts (3 numbers), and in
// fewer attempts than a search in random order.
// Modes: 0 guessing, 1 careful in the fixed order (with "Start with" lines), 2 careful with the
// starts in a random order (practice searches under --practice-order random).
static void careful_search_is_complete(T *t) {
    double mean[3] = {0, 0, 0};
    for (int mode = 0; mode <= 2; mode++) {
        int careful = mode > 0;
        SynthOpts o = opts(6, 0);
        o.quit_frac = 0, o.heuristic_frac = careful, o.max_attempts = 14;
        o.random_starts = mode == 2;
        Rng r;
        rng_seed(&r, 17);
        long searches = 0, attempts = 0;
        for (uint64_t c = 0; searches < 400; c++) {
            SynthCountdown p;
            synth_countdown_candidate(&o, c, &p);
            int ok, n_att;
            char *s = synth_search_text(&p, &o, &r, &ok, &n_att);
            if (!s) continue;
            searches++, attempts += n_att;
            CHECKF(t, !strstr(s, "\nStart with ") == (mode != 1), "start lines (mode %d): %s", mode,
                   s);
            long long starts[12][3];
            int lines = 0;
            for (const char *l = strstr(s, "\nTry"); l; l = strstr(l + 1, "\nTry")) {
                const char *st = strncmp(l, "\nTry another: ", 14) == 0 ? l + 14 : l + 5;
                long long a, b, v1, x, y, v, tg;
                char op1, op;
                if (sscanf(st, "%lld %c %lld = %lld, %lld %c %lld = %lld vs %lld", &a, &op1, &b, &v1,
                           &x, &op, &y, &v, &tg) != 9) {
                    CHECKF(t, 0, "not an attempt line: %.60s", l + 1);
                    break;
                }
                if (!careful) continue;
                CHECKF(t, lines < 12, "more than 12 careful attempts: %s", s);
                if (lines >= 12) break;
                for (int i = 0; i < lines; i++)
                    CHECKF(t, !(starts[i][0] == a && starts[i][1] == op1 && starts[i][2] == b),
                           "a first step tried twice: %s", s);
                starts[lines][0] = a, starts[lines][1] = op1, starts[lines][2] = b, lines++;
                long long other = x == v1 ? y : x, hi = DS_MAX(v1, other), lo = DS_MIN(v1, other);
                long long fin[4] = {hi + lo, hi - lo, hi * lo, lo && hi % lo == 0 ? hi / lo : 0};
                for (int k = 0; k < 4; k++)
                    if (fin[k] > 0)
                        CHECKF(t, llabs(v - tg) <= llabs(fin[k] - tg),
                               "%lld %c %lld = %lld is closer to %lld than %lld", hi, "+-*/"[k], lo,
                               fin[k], tg, v);
            }
            if (careful) CHECKF(t, ok && n_att <= 12, "careful search: %d attempts, ok %d", n_att, ok);
            free(s);
        }
        mean[mode] = (double)attempts / (double)searches;
    }
    for (int mode = 1; mode <= 2; mode++)
        CHECKF(t, mean[mode] < 0.5 * mean[0], "mean attempts: %g careful (mode %d), %g guessing",
               mean[mode], mode, mean[0]);
}

typedef struct SftCtx {
    SynthLang lang;
    long n;
} SftCtx;

static void check_sft(T *t, json_t *o, void *vctx) {
    SftCtx *c = vctx;
    const char *prompt = json_string_value(json_object_get(o, "prompt"));
    const char *comp = json_string_value(json_object_get(o, "completion"));
    CHECK(t, prompt && comp);
    if (!prompt || !comp) return;
    SynthCountdown p;
    CHECK(t, parse_prompt(prompt, &p));
    uint64_t k = synth_countdown_key(p.nums, p.n, p.target);
    CHECK(t, synth_split_of(k) == SYNTH_TRAIN);
    char *want = synth_countdown_prompt(&p);
    CHECK(t, strcmp(want, prompt) == 0);
    free(want);
    size_t l = strlen(comp);
    CountdownResult r;
    countdown_score(comp, l, p.nums, p.n, p.target, &r);
    CHECKF(t, r.score == COUNTDOWN_SCORE_CORRECT, "%s", comp);
    CHECK(t, grade_format(comp, l) == 1 && strncmp(comp, " <think> ", 9) == 0);
    CHECK(t, grade_lang(comp, l, c->lang == SYNTH_EN ? LANG_LATIN : LANG_CYRILLIC) == 1.0);
    CHECK(t, strstr(comp, c->lang == SYNTH_EN ? "Check " : "Проверка ") != NULL);
    c->n++;
}

static void sft_traces(T *t) {
    for (int lang = SYNTH_EN; lang <= SYNTH_XX; lang++) {
        SynthOpts o = opts(2, 300);
        o.lang = (SynthLang)lang, o.max_attempts = 1000000;
        SynthStats st;
        size_t len;
        char *buf = generate(OUT_SFT, &o, &st, &len);
        SftCtx c = {(SynthLang)lang, 0};
        CHECK(t, buf && each_line(t, buf, check_sft, &c) == 300 && c.n == 300);
        free(buf);
    }
    SynthOpts o = opts(2, 10);
    o.lang = SYNTH_MIX;
    DsErr e;
    FILE *f = fopen("/dev/null", "w");
    SynthStats st;
    CHECK(t, synth_sft(&o, f, &st, &e) == DS_ERR && strstr(e.msg, "one language"));
    fclose(f);
}

typedef struct PairCtx {
    SynthTask task;
    long n;
} PairCtx;

static void check_pair(T *t, json_t *o, void *vctx) {
    PairCtx *c = vctx;
    DsErr e;
    Problem *p = problem_from_json(TASK_MATH, o, "gen", c->n + 1, &e);
    CHECKF(t, p != NULL, "%s", e.msg);
    if (!p) return;
    long long a = json_integer_value(json_object_get(o, "a"));
    long long b = json_integer_value(json_object_get(o, "b"));
    CHECK(t, a >= 10 && a <= 99 && b >= 10 && b <= 99);
    CHECK(t, synth_split_of(synth_pair_key(c->task, a, b)) == SYNTH_TEST);
    long long want = c->task == SYNTH_ADD ? a + b : DS_MAX(a, b);
    char comp[128];
    GradeOpts go;
    grade_opts_default(&go);
    go.extract = MATH_EXTRACT_ANSWER;
    GradeResult r;
    snprintf(comp, sizeof comp, "<think> working </think> <answer> %lld </answer>", want);
    grade(p, &go, comp, strlen(comp), &r);
    CHECKF(t, r.score == 1.0, "%s", comp);
    snprintf(comp, sizeof comp, "<think> working </think> <answer> %lld </answer>", want + 1);
    grade(p, &go, comp, strlen(comp), &r);
    CHECK(t, r.score == 0.0);
    problem_free(p);
    c->n++;
}

static void add_and_larger(T *t) {
    for (int task = SYNTH_ADD; task <= SYNTH_LARGER; task++) {
        SynthOpts o = opts(1, 200);
        o.task = (SynthTask)task, o.split = SYNTH_TEST, o.min_num = 10;
        SynthStats st;
        size_t len;
        char *buf = generate(OUT_PROBLEMS, &o, &st, &len);
        PairCtx c = {(SynthTask)task, 0};
        CHECK(t, buf && each_line(t, buf, check_pair, &c) == 200);
        free(buf);
        // Corpus documents: train pairs only, correct ones grade 1 and keep the format.
        o.split = SYNTH_TRAIN, o.n = 500, o.wrong_frac = 0.3;
        buf = generate(OUT_CORPUS, &o, &st, &len);
        CHECK(t, buf && st.correct > st.wrong && st.wrong > 0);
        for (const char *s = buf; s && (s = strstr(s, "User: ")); s++) {
            long long a, b;
            int ok = task == SYNTH_ADD ? sscanf(s, "User: What is %lld + %lld?", &a, &b)
                                       : sscanf(s,
                                                "User: Reply with the larger of the two "
                                                "numbers %lld and %lld.",
                                                &a, &b);
            CHECK(t, ok == 2);
            CHECK(t, synth_split_of(synth_pair_key((SynthTask)task, a, b)) == SYNTH_TRAIN);
        }
        free(buf);
    }
}

static void option_errors(T *t) {
    SynthOpts o = opts(1, 10);
    DsErr e;
    o.n_nums = 5;
    CHECK(t, synth_opts_check(&o, &e) == DS_ERR && strstr(e.msg, "--nums"));
    o = opts(1, 10);
    o.min_target = 50, o.max_target = 40;
    CHECK(t, synth_opts_check(&o, &e) == DS_ERR);
    // A range without solvable problems fails instead of looping forever.
    o = opts(1, 10);
    o.n_nums = 2, o.min_num = o.max_num = 1, o.min_target = o.max_target = 1000;
    SynthStats st;
    FILE *f = fopen("/dev/null", "w");
    CHECK(t, synth_problems(&o, f, &st, &e) == DS_ERR && strstr(e.msg, "too few"));
    fclose(f);
    // Exclusion files name the bad line.
    char path[] = "/tmp/ds-synth-XXXXXX";
    int fd = mkstemp(path);
    CHECK(t,
          fd >= 0 && write(fd, "{\"target\": 5, \"nums\": [1, 4]}\n{\"target\": 5}\n", 45) == 45);
    close(fd);
    SynthKeySet s = {0};
    CHECK(t, synth_keyset_load(&s, SYNTH_COUNTDOWN, path, &e) == DS_ERR && strstr(e.msg, ":2:"));
    synth_keyset_free(&s);
    unlink(path);
}

UNIT_MAIN(CASE(determinism), CASE(keys_and_split), CASE(problems_split_and_solvable),
          CASE(attempts_are_exact), CASE(corpus_graded), CASE(max_attempts_controls_difficulty),
          CASE(quit_frac_shortens_searches), CASE(careful_search_is_complete),
          CASE(sft_traces), CASE(add_and_larger), CASE(option_errors))
