// passk.c — sampling metrics over n completions per problem: unbiased pass@k and majority vote.
#include "eval/passk.h"

#include <string.h>

#include "core/common.h"

double passk_estimate(int n, int c, int k) {
    if (n < 1 || c < 0 || c > n || k < 1 || k > n) return -1;
    if (n - c < k) return 1.0;
    double miss = 1.0; // C(n-c, k) / C(n, k)
    for (int i = n - c + 1; i <= n; i++) miss *= 1.0 - (double)k / i;
    return 1.0 - miss;
}

int passk_majority(const char *const *answers, const int *correct, int k) {
    // Quadratic in k, which stays small (tens of samples); no allocation.
    int best = -1, best_count = 0;
    for (int i = 0; i < k; i++) {
        if (!answers[i] || !answers[i][0]) continue;
        int seen_before = 0, count = 0;
        for (int j = 0; j < i && !seen_before; j++)
            seen_before = answers[j] && strcmp(answers[j], answers[i]) == 0;
        if (seen_before) continue; // counted at its first occurrence
        for (int j = i; j < k; j++) count += answers[j] && strcmp(answers[j], answers[i]) == 0;
        if (count > best_count) best = i, best_count = count;
    }
    return best >= 0 && correct[best];
}

double passk_fraction_mean(const PasskProblem *p, int np) {
    double sum = 0;
    for (int i = 0; i < np; i++) sum += (double)p[i].c / p[i].n;
    return np ? sum / np : 0;
}

double passk_mean(const PasskProblem *p, int np, int k) {
    double sum = 0;
    for (int i = 0; i < np; i++) sum += passk_estimate(p[i].n, p[i].c, k);
    return np ? sum / np : 0;
}

double passk_majority_mean(const PasskProblem *p, int np, int k) {
    double sum = 0;
    for (int i = 0; i < np; i++) sum += passk_majority(p[i].answers, p[i].correct, k);
    return np ? sum / np : 0;
}

int passk_min_samples(const PasskProblem *p, int np) {
    int m = 0;
    for (int i = 0; i < np; i++) m = i == 0 ? p[i].n : DS_MIN(m, p[i].n);
    return m;
}
