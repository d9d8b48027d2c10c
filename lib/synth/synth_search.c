// synth_search.c — Countdown search texts: every way to combine the numbers, the reasoning
// vocabulary in two scripts, the attempt-and-backtrack texts of the pretraining corpus and the
// systematic cold-start traces.
#include <stdlib.h>
#include <string.h>

#include "synth/synth.h"

// ---------------------------------------------------------------------------------------------
// The reasoning words, word for word in English (Latin) and in the "xx" vocabulary (Cyrillic
// script), so that the language-consistency reward can tell them apart. Digits, operators and the
// equations are shared. docs/SYNTH.md lists this table.

enum {
    W_LET,
    W_ME,
    W_COMBINE,
    W_TO,
    W_GET,
    W_TRY,
    W_ANOTHER,
    W_VS,
    W_NO,
    W_YES,
    W_IT,
    W_WORKS,
    W_SO,
    W_THE,
    W_ANSWER,
    W_IS,
    W_NONE,
    W_OF,
    W_THESE,
    W_GIVES,
    W_I,
    W_WILL,
    W_CLOSEST,
    W_START,
    W_WITH,
    W_AND,
    W_CHECK,
    W_USES,
    W_ONCE,
    W_EACH,
    W_EQUALS,
    W_COUNT
};

static const char *const vocab[W_COUNT][2] = {
    [W_LET] = {"Let", "Пусть"},
    [W_ME] = {"me", "мне"},
    [W_COMBINE] = {"combine", "сложить"},
    [W_TO] = {"to", "чтобы"},
    [W_GET] = {"get", "получить"},
    [W_TRY] = {"Try", "Пробую"},
    [W_ANOTHER] = {"another", "другое"},
    [W_VS] = {"vs", "против"},
    [W_NO] = {"no", "нет"},
    [W_YES] = {"yes", "да"},
    [W_IT] = {"it", "это"},
    [W_WORKS] = {"works", "работает"},
    [W_SO] = {"So", "Итак"},
    [W_THE] = {"the", "тот"},
    [W_ANSWER] = {"answer", "ответ"},
    [W_IS] = {"is", "есть"},
    [W_NONE] = {"None", "Ничто"},
    [W_OF] = {"of", "из"},
    [W_THESE] = {"these", "этих"},
    [W_GIVES] = {"gives", "даёт"},
    [W_I] = {"I", "Я"},
    [W_WILL] = {"will", "буду"},
    [W_CLOSEST] = {"closest", "ближайший"},
    [W_START] = {"Start", "Начну"},
    [W_WITH] = {"with", "с"},
    [W_AND] = {"and", "и"},
    [W_CHECK] = {"Check", "Проверка"},
    [W_USES] = {"uses", "использует"},
    [W_ONCE] = {"once", "однажды"},
    [W_EACH] = {"each", "каждое"},
    [W_EQUALS] = {"equals", "равно"},
};

// The word in language l (SYNTH_EN or SYNTH_XX).
#define W(l, id) vocab[id][(l) == SYNTH_XX]

// ---------------------------------------------------------------------------------------------
// Attempts: repeatedly replace two numbers by their sum, difference, product or quotient, keeping
// integers > 0 (larger operand first, exact division), in a fixed order: pairs in list order, then
// + - * /.

typedef struct Item {
    int64_t v;
    char expr[96]; // without outer parentheses
    int leaf;
} Item;

typedef struct AttemptList {
    SynthAttempt *a;
    int n, cap;
} AttemptList;

static void enumerate(const Item *items, int n, SynthStep *steps, int depth, AttemptList *out) {
    if (n == 1) {
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 64;
            out->a = ds_realloc(out->a, (size_t)out->cap * sizeof *out->a);
        }
        SynthAttempt *t = &out->a[out->n++];
        memcpy(t->step, steps, (size_t)depth * sizeof *steps);
        t->n_steps = depth;
        t->value = items[0].v;
        snprintf(t->expr, sizeof t->expr, "%s", items[0].expr);
        return;
    }
    static const char ops[4] = {'+', '-', '*', '/'};
    Item next[SYNTH_MAX_NUMS];
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            const Item *x = &items[i], *y = &items[j];
            if (x->v < y->v) x = &items[j], y = &items[i]; // larger operand first
            int m = 0;
            for (int k = 0; k < n; k++)
                if (k != i && k != j) next[m++] = items[k];
            for (int o = 0; o < 4; o++) {
                int64_t r;
                if (ops[o] == '+')
                    r = x->v + y->v;
                else if (ops[o] == '-')
                    r = x->v - y->v;
                else if (ops[o] == '*')
                    r = x->v * y->v;
                else if (y->v != 0 && x->v % y->v == 0)
                    r = x->v / y->v;
                else
                    continue;
                if (r <= 0) continue; // zeros and negatives make no useful step
                Item *c = &next[m];
                c->v = r, c->leaf = 0;
                int w = snprintf(c->expr, sizeof c->expr, "%s%s%s %c %s%s%s", x->leaf ? "" : "(",
                                 x->expr, x->leaf ? "" : ")", ops[o], y->leaf ? "" : "(", y->expr,
                                 y->leaf ? "" : ")");
                DS_CHECK(w > 0 && (size_t)w < sizeof c->expr); // leaves are short numbers
                steps[depth] = (SynthStep){x->v, y->v, r, ops[o]};
                enumerate(next, m + 1, steps, depth + 1, out);
            }
        }
    }
}

// Whether some attempt reaches the target: the enumeration above on values alone, so that the
// many unreachable candidates cost no text.
static int reachable(const int64_t *v, int n, int64_t target) {
    if (n == 1) return v[0] == target;
    int64_t next[SYNTH_MAX_NUMS];
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            int64_t x = DS_MAX(v[i], v[j]), y = DS_MIN(v[i], v[j]);
            int m = 0;
            for (int k = 0; k < n; k++)
                if (k != i && k != j) next[m++] = v[k];
            int64_t r[4] = {x + y, x - y, x * y, y != 0 && x % y == 0 ? x / y : 0};
            for (int o = 0; o < 4; o++) {
                if (r[o] <= 0) continue;
                next[m] = r[o];
                if (reachable(next, m + 1, target)) return 1;
            }
        }
    }
    return 0;
}

int synth_reachable(const SynthCountdown *p) { return reachable(p->nums, p->n, p->target); }

int synth_attempts(const SynthCountdown *p, SynthAttempt **out) {
    DS_CHECK(p->n >= 2 && p->n <= SYNTH_MAX_NUMS);
    Item items[SYNTH_MAX_NUMS];
    for (int i = 0; i < p->n; i++) {
        items[i].v = p->nums[i], items[i].leaf = 1;
        snprintf(items[i].expr, sizeof items[i].expr, "%lld", (long long)p->nums[i]);
    }
    SynthStep steps[SYNTH_MAX_NUMS];
    AttemptList l = {0};
    enumerate(items, p->n, steps, 0, &l);
    *out = l.a;
    return l.n;
}

// ---------------------------------------------------------------------------------------------
// Text pieces.

static void write_nums(DsBuf *b, const SynthCountdown *p) {
    for (int i = 0; i < p->n; i++)
        dsbuf_printf(b, "%s%lld", i ? ", " : "", (long long)p->nums[i]);
}

static void write_steps(DsBuf *b, const SynthAttempt *a) {
    for (int s = 0; s < a->n_steps; s++)
        dsbuf_printf(b, "%s%lld %c %lld = %lld", s ? ", " : "", (long long)a->step[s].a,
                     a->step[s].op, (long long)a->step[s].b, (long long)a->step[s].r);
}

static void write_intro(DsBuf *b, SynthLang l, const SynthCountdown *p) {
    dsbuf_printf(b, "%s %s %s ", W(l, W_LET), W(l, W_ME), W(l, W_COMBINE));
    write_nums(b, p);
    dsbuf_printf(b, " %s %s %lld.\n", W(l, W_TO), W(l, W_GET), (long long)p->target);
}

// "Start with A and B." before a careful attempt whose first pair differs from the previous
// attempt's, so that the model reads the pair it works on next to the attempt.
static void write_start(DsBuf *b, SynthLang l, const SynthAttempt *a, const SynthAttempt *prev) {
    const SynthStep *f = &a->step[0], *pf = prev ? &prev->step[0] : NULL;
    if (!pf || f->a != pf->a || f->b != pf->b)
        dsbuf_printf(b, "%s %s %lld %s %lld.\n", W(l, W_START), W(l, W_WITH), (long long)f->a,
                     W(l, W_AND), (long long)f->b);
}

// "Try [another:] STEPS vs T, no." or "... vs T, yes, it works." The target is written next to
// the result before the verdict, so that the check compares two adjacent numbers instead of
// looking the target up at the start of the text (a small base did not learn that lookup).
static void write_attempt(DsBuf *b, SynthLang l, const SynthAttempt *a, int first, int64_t target) {
    dsbuf_printf(b, first ? "%s " : "%s %s: ", W(l, W_TRY), W(l, W_ANOTHER));
    write_steps(b, a);
    dsbuf_printf(b, " %s %lld, ", W(l, W_VS), (long long)target);
    if (a->value == target)
        dsbuf_printf(b, "%s, %s %s.\n", W(l, W_YES), W(l, W_IT), W(l, W_WORKS));
    else
        dsbuf_printf(b, "%s.\n", W(l, W_NO));
}

static void write_conclusion(DsBuf *b, SynthLang l, const char *expr) {
    dsbuf_printf(b, "%s %s %s %s %s.", W(l, W_SO), W(l, W_THE), W(l, W_ANSWER), W(l, W_IS), expr);
}

static void write_answer(DsBuf *b, const char *expr) {
    dsbuf_printf(b, " </think> <answer> %s </answer>", expr);
}

// ---------------------------------------------------------------------------------------------
// Pretraining search texts.

static void shuffle(int *v, int n, Rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint64_t)i + 1), t = v[i];
        v[i] = v[j], v[j] = t;
    }
}

// Whether two attempts start alike: the same steps before the last one.
static int same_start(const SynthAttempt *x, const SynthAttempt *y) {
    if (x->n_steps != y->n_steps) return 0;
    for (int s = 0; s + 1 < x->n_steps; s++)
        if (x->step[s].a != y->step[s].a || x->step[s].b != y->step[s].b ||
            x->step[s].op != y->step[s].op)
            return 0;
    return 1;
}

static int64_t distance(const SynthAttempt *a, int64_t target) {
    return a->value > target ? a->value - target : target - a->value;
}

// The attempts a search tries, in order, into ord; returns how many. A guessing search tries all
// of them in a random order (r). A careful one follows the weak heuristic of working forward:
// every way to start (the steps before the last), each finished by the last step that lands
// closest to the target (the first such on ties). That covers every start, so a careful search
// always reaches a reachable target, for 3 numbers within 12 attempts. Without r the starts come
// in the systematic order of synth_attempts: that is what a small model can follow (in a random
// order it lost track of the starts it had tried, and 31% of its attempts repeated one).
static int attempt_order(const SynthAttempt *at, int n, int64_t target, int careful, Rng *r,
                         int *ord) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        int g = -1; // the attempt kept so far for this start
        for (int j = 0; careful && j < m && g < 0; j++)
            if (same_start(&at[ord[j]], &at[i])) g = j;
        if (g < 0)
            ord[m++] = i;
        else if (distance(&at[i], target) < distance(&at[ord[g]], target))
            ord[g] = i;
    }
    if (r) shuffle(ord, m, r);
    return m;
}

char *synth_search_text(const SynthCountdown *p, const SynthOpts *o, Rng *r, int *correct,
                        int *n_attempts) {
    if (!reachable(p->nums, p->n, p->target)) return NULL;
    SynthAttempt *at;
    int n = synth_attempts(p, &at), hits = 0;
    for (int i = 0; i < n; i++)
        hits += at[i].value == p->target;
    if (hits == 0 || hits == n) {
        free(at);
        return NULL;
    }
    int *ord = ds_malloc((size_t)n * sizeof *ord), *shown = ds_malloc((size_t)n * sizeof *shown);
    // The attempt budget: an impatient search guesses and quits after 1..quit_after attempts;
    // one that goes on is careful (the heuristic order) with probability heuristic_frac. Either
    // way the first attempt that hits ends the search, so a hit is always recognised as one.
    int budget = o->max_attempts, m = 0, ok = 0, careful = 0;
    if (rng_uniform(r) < o->quit_frac)
        budget = 1 + (int)rng_below(r, (uint64_t)DS_MIN(o->quit_after, o->max_attempts));
    else
        careful = rng_uniform(r) < o->heuristic_frac;
    // A careful search in the fixed order draws nothing and names each new pair.
    int start_lines = careful && !o->random_starts;
    n = attempt_order(at, n, p->target, careful, start_lines ? NULL : r, ord);
    for (int i = 0; i < n && m < budget && !ok; i++) {
        shown[m++] = ord[i];
        ok = at[ord[i]].value == p->target;
    }
    // Language of each attempt line: one language, or a switch before attempt `sw` (the intro is
    // always in the first language and the conclusion in the second, so both occur).
    SynthLang l0 = o->lang, l1 = o->lang;
    int sw = m + 1;
    if (o->lang == SYNTH_MIX) {
        l0 = rng_below(r, 2) ? SYNTH_XX : SYNTH_EN;
        l1 = l0 == SYNTH_EN ? SYNTH_XX : SYNTH_EN;
        sw = 1 + (int)rng_below(r, (uint64_t)m);
    }
    DsBuf b = {0};
    dsbuf_printf(&b, " <think> ");
    write_intro(&b, l0, p);
    for (int i = 0; i < m; i++) {
        SynthLang li = i + 1 >= sw ? l1 : l0;
        if (start_lines) write_start(&b, li, &at[shown[i]], i ? &at[shown[i - 1]] : NULL);
        write_attempt(&b, li, &at[shown[i]], i == 0, p->target);
    }
    const SynthAttempt *fin = &at[shown[m - 1]];
    if (!ok) { // the closest attempt shown (first on ties)
        int64_t best = -1;
        for (int i = 0; i < m; i++) {
            int64_t d = at[shown[i]].value - p->target;
            if (d < 0) d = -d;
            if (best < 0 || d < best) best = d, fin = &at[shown[i]];
        }
        dsbuf_printf(&b, "%s %s %s %s %lld. %s %s %s %s %s: %s = %lld.", W(l1, W_NONE), W(l1, W_OF),
                     W(l1, W_THESE), W(l1, W_GIVES), (long long)p->target, W(l1, W_I),
                     W(l1, W_WILL), W(l1, W_ANSWER), W(l1, W_THE), W(l1, W_CLOSEST), fin->expr,
                     (long long)fin->value);
    } else {
        write_conclusion(&b, l1, fin->expr);
    }
    write_answer(&b, fin->expr);
    *correct = ok;
    *n_attempts = m;
    free(ord);
    free(shown);
    free(at);
    return b.data;
}

// ---------------------------------------------------------------------------------------------
// Check drills: the verdict of the search texts practised on its own. Lines "x op y = v vs t,
// yes." or "..., no.", half of them hits; most misses are near (t = v +- 1..5) so that every digit
// must be compared. A base that saw the verdict only inside searches (one hit per text) gave it
// almost regardless of the numbers: P(yes) 0.15 on a hit, 0.03 on a miss.

char *synth_check_text(SynthLang lang, Rng *r) {
    SynthLang l = lang == SYNTH_MIX ? (rng_below(r, 2) ? SYNTH_XX : SYNTH_EN) : lang;
    int lines = 8 + (int)rng_below(r, 9);
    DsBuf b = {0};
    for (int i = 0; i < lines; i++) {
        int op = (int)rng_below(r, 3);
        int64_t x = 1 + (int64_t)rng_below(r, 99), y = 1 + (int64_t)rng_below(r, op == 2 ? 12 : 99);
        if (op == 1 && x < y) {
            int64_t t = x;
            x = y, y = t;
        }
        int64_t v = op == 0 ? x + y : op == 1 ? x - y : x * y, t = v;
        uint64_t kind = rng_below(r, 10);
        if (kind >= 5 && kind < 9) { // a near miss
            int64_t d = 1 + (int64_t)rng_below(r, 5);
            t = rng_below(r, 2) || v - d < 0 ? v + d : v - d;
        } else if (kind == 9) { // a far miss
            while (t == v)
                t = (int64_t)rng_below(r, 200);
        }
        dsbuf_printf(&b, "%lld %c %lld = %lld %s %lld, %s.\n", (long long)x, "+-*"[op], (long long)y,
                     (long long)v, W(l, W_VS), (long long)t, t == v ? W(l, W_YES) : W(l, W_NO));
    }
    return b.data;
}

// ---------------------------------------------------------------------------------------------
// Cold-start traces: the careful search in the systematic order, a "Start with A and B." line
// whenever the first pair changes, and a verification line before the answer.

char *synth_sft_text(const SynthCountdown *p, SynthLang lang, int max_attempts, int *n_attempts) {
    DS_CHECK(lang != SYNTH_MIX);
    if (!reachable(p->nums, p->n, p->target)) return NULL;
    SynthAttempt *all;
    int n = synth_attempts(p, &all), h = 0;
    int *ord = ds_malloc((size_t)n * sizeof *ord);
    n = attempt_order(all, n, p->target, 1, NULL, ord);
    while (h < n && all[ord[h]].value != p->target)
        h++;
    if (h == n || h + 1 > max_attempts) {
        free(ord), free(all);
        return NULL;
    }
    DsBuf b = {0};
    dsbuf_printf(&b,
                 " <think> "); // as in the corpus: the model continues "Assistant:" with a space
    write_intro(&b, lang, p);
    for (int i = 0; i <= h; i++) {
        write_start(&b, lang, &all[ord[i]], i ? &all[ord[i - 1]] : NULL);
        write_attempt(&b, lang, &all[ord[i]], i == 0, p->target);
    }
    const SynthAttempt *hit = &all[ord[h]];
    dsbuf_printf(&b, "%s %s: ", W(lang, W_CHECK), hit->expr);
    write_steps(&b, hit);
    dsbuf_printf(&b, ", %s %s ", W(lang, W_IT), W(lang, W_USES));
    write_nums(&b, p);
    dsbuf_printf(&b, " %s %s %s %s %lld.\n", W(lang, W_ONCE), W(lang, W_EACH), W(lang, W_AND),
                 W(lang, W_EQUALS), (long long)p->target);
    write_conclusion(&b, lang, hit->expr);
    write_answer(&b, hit->expr);
    *n_attempts = h + 1;
    free(ord), free(all);
    return b.data;
}
