// fuzz_math_answer.c — the math-answer grader (lib/eval/math_answer.c): \boxed{} and <answer>
// extraction, MATH normalisation and equivalence, GSM8K number parsing, in every extraction mode.
// Spans returned must lie inside the input; an answer must be equivalent to itself.
#include <stdint.h>
#include <stdlib.h>

#include "eval/math_answer.h"

static void in_input(const char *s, size_t len, const char *out, size_t n) {
    if (out < s || out + n > s + len) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    const char *out;
    size_t n;
    if (math_last_boxed(s, size, &out, &n)) in_input(s, size, out, n);
    if (math_answer_tag(s, size, &out, &n)) in_input(s, size, out, n);
    free(math_normalize(s, size));
    if (!math_equiv(s, size, s, size)) abort();
    double v;
    math_parse_number(s, size, &v);
    static const char *modes[] = {"default", "hash", "last-number", "boxed", "answer"};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        MathExtract mode;
        if (math_extract_from_name(modes[i], &mode)) abort();
        if (math_extract_text(s, size, mode, &out, &n)) in_input(s, size, out, n);
        math_extract_number(s, size, mode, &v);
    }
    // Two halves of the input compared both ways: equivalence must be symmetric.
    size_t h = size / 2;
    if (math_equiv(s, h, s + h, size - h) != math_equiv(s + h, size - h, s, h)) abort();
    return 0;
}
