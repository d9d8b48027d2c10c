// fuzz_countdown.c — the Countdown grader (lib/eval/countdown.c). The first bytes choose the problem
// (up to 6 numbers and a target), the rest is the completion: it is scored, evaluated as an
// equation, and checked for the numbers it uses. A problem of up to 3 numbers is also solved
// and the solver's equation must score 1.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/countdown.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int n = 1 + data[0] % 6;
    if (size < (size_t)(2 + n)) return 0;
    int64_t nums[6];
    for (int i = 0; i < n; i++) nums[i] = data[1 + i] % 100 + 1;
    int64_t target = data[1 + n];
    const char *s = (const char *)data + 2 + n;
    size_t len = size - 2 - (size_t)n;

    CountdownResult r;
    countdown_score(s, len, nums, n, target, &r);
    if (r.eq && (r.eq < s || r.eq + r.eq_len > s + len)) abort(); // eq must lie in the completion
    CdRat v;
    if (countdown_eval(s, len, &v) && v.d <= 0) abort();
    (void)countdown_uses_numbers(s, len, nums, n);

    if (n <= 3) {
        char eq[256], answer[300];
        if (countdown_solve(nums, n, target, eq, sizeof eq) == 1) {
            int m = snprintf(answer, sizeof answer, "<answer>%s</answer>", eq);
            countdown_score(answer, (size_t)m, nums, n, target, &r);
            if (!r.correct) abort();
        }
    }
    return 0;
}
