// unit.h — the C unit-test convention: each tests/unit/test_X.c defines named cases and calls
// unit_main. `test_X` runs all cases, `test_X NAME...` runs those, `test_X --list` lists them.
// bats files call one case per @test (see tests/helpers.bash: `unit X NAME`), so a failure points
// at one case. A case fails when any CHECK fails; the program exits 1 if any case failed.
#ifndef DS_UNIT_H
#define DS_UNIT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct T {
    int failures;
} T;

typedef struct UnitCase {
    const char *name;
    void (*fn)(T *t);
} UnitCase;

#define CHECK(t, cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            (t)->failures++;                                                                       \
        }                                                                                          \
    } while (0)

// CHECKF(t, cond, "printf format", args...): like CHECK with a message showing the values.
#define CHECKF(t, cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            (t)->failures++;                                                                       \
        }                                                                                          \
    } while (0)

// |a-b| <= tol * max(1, |a|, |b|)
#define CHECK_CLOSE(t, a, b, tol)                                                                  \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b), s_ = fmax(1.0, fmax(fabs(a_), fabs(b_)));        \
        if (!(fabs(a_ - b_) <= (tol) * s_)) {                                                      \
            fprintf(stderr, "%s:%d: CHECK_CLOSE failed: %s = %.10g vs %s = %.10g (tol %g)\n",      \
                    __FILE__, __LINE__, #a, a_, #b, b_, (double)(tol));                            \
            (t)->failures++;                                                                       \
        }                                                                                          \
    } while (0)

static inline int unit_main(int argc, char **argv, const UnitCase *cases, int n) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < n; i++) puts(cases[i].name);
        return 0;
    }
    int failed = 0, ran = 0;
    for (int i = 0; i < n; i++) {
        int selected = argc < 2;
        for (int a = 1; a < argc; a++) selected |= strcmp(argv[a], cases[i].name) == 0;
        if (!selected) continue;
        T t = {0};
        cases[i].fn(&t);
        ran++;
        if (t.failures) {
            fprintf(stderr, "FAIL %s (%d checks failed)\n", cases[i].name, t.failures);
            failed++;
        }
    }
    if (ran == 0) {
        fprintf(stderr, "no test case matched\n");
        return 2;
    }
    return failed ? 1 : 0;
}

#define UNIT_MAIN(...)                                                                             \
    int main(int argc, char **argv) {                                                              \
        static const UnitCase cases_[] = {__VA_ARGS__};                                            \
        return unit_main(argc, argv, cases_, (int)(sizeof cases_ / sizeof cases_[0]));             \
    }
#define CASE(fn) {#fn, fn}

#endif
