// synth_facts.c — documents of true arithmetic facts for pretraining: single facts, small tables
// and chains of operations, all on non-negative integers.
#include <stdlib.h>

#include "synth/synth.h"

static int64_t uniform(Rng *r, int64_t lo, int64_t hi) {
    return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}

// Sums of the add task's test problems never appear, so that its held-out accuracy is not read
// off the corpus.
static int add_allowed(int64_t a, int64_t b) {
    return synth_split_of(synth_pair_key(SYNTH_ADD, a, b)) == SYNTH_TRAIN;
}

static void fact(DsBuf *b, int64_t x, char op, int64_t y, int64_t r, const char *end) {
    dsbuf_printf(b, "%lld %c %lld = %lld%s", (long long)x, op, (long long)y, (long long)r, end);
}

// One random fact with operands of one or two digits (divisions are products read backwards).
static void one_fact(DsBuf *b, Rng *r, const char *end) {
    for (;;) {
        int op = (int)rng_below(r, 4);
        int64_t x = uniform(r, 1, 99), y = uniform(r, 1, 99);
        if (op == 0) {
            if (!add_allowed(x, y)) continue;
            fact(b, x, '+', y, x + y, end);
        } else if (op == 1) {
            if (x < y) {
                int64_t t = x;
                x = y, y = t;
            }
            fact(b, x, '-', y, x - y, end);
        } else {
            y = uniform(r, 1, 12);
            if (op == 2)
                fact(b, x, '*', y, x * y, end);
            else
                fact(b, x * y, '/', y, x, end);
        }
        return;
    }
}

// "7 * 1 = 7" ... "7 * 12 = 84", or "37 + 1 = 38" ... (lines of a sum that would reveal an add
// test problem are left out).
static void table(DsBuf *b, Rng *r) {
    int mul = rng_below(r, 2) == 0;
    int64_t k = mul ? uniform(r, 2, 12) : uniform(r, 1, 99);
    int64_t rows = mul ? 12 : 10;
    for (int64_t i = 1; i <= rows; i++) {
        if (mul)
            fact(b, k, '*', i, k * i, "\n");
        else if (add_allowed(k, i))
            fact(b, k, '+', i, k + i, "\n");
    }
}

// "12 * 7 = 84, 84 - 20 = 64, 64 / 4 = 16": each step starts from the last result.
static void chain(DsBuf *b, Rng *r) {
    int64_t v = uniform(r, 1, 99);
    int steps = 2 + (int)rng_below(r, 3);
    for (int s = 0; s < steps; s++) {
        const char *end = s + 1 == steps ? "\n" : ", ";
        for (;;) {
            int op = (int)rng_below(r, 4);
            int64_t y = op >= 2 ? uniform(r, 2, 12) : uniform(r, 1, 99);
            if (op == 0 && v + y <= 100000 && add_allowed(v, y)) {
                fact(b, v, '+', y, v + y, end), v += y;
            } else if (op == 1 && y < v) {
                fact(b, v, '-', y, v - y, end), v -= y;
            } else if (op == 2 && v * y <= 100000) {
                fact(b, v, '*', y, v * y, end), v *= y;
            } else if (op == 3 && v % y == 0) {
                fact(b, v, '/', y, v / y, end), v /= y;
            } else {
                continue;
            }
            break;
        }
    }
}

char *synth_facts_text(Rng *r) {
    DsBuf b = {0};
    int kind = (int)rng_below(r, 3);
    if (kind == 0) {
        int n = 8 + (int)rng_below(r, 9);
        for (int i = 0; i < n; i++)
            one_fact(&b, r, "\n");
    } else if (kind == 1) {
        table(&b, r);
    } else {
        int n = 3 + (int)rng_below(r, 4);
        for (int i = 0; i < n; i++)
            chain(&b, r);
    }
    if (b.len == 0) one_fact(&b, r, "\n"); // a table whose lines were all left out
    b.data[--b.len] = '\0';                // no trailing newline
    return b.data;
}
