// passk.h — sampling metrics over n completions per problem: unbiased pass@k and majority vote.
#ifndef DS_PASSK_H
#define DS_PASSK_H

// Unbiased pass@k from n samples of which c are correct (Chen et al. 2021):
// 1 - C(n-c, k)/C(n, k), computed as 1 - prod_{i=n-c+1..n} (1 - k/i) to stay finite; 1 when
// n - c < k. Requires 0 <= c <= n and 1 <= k <= n; returns -1 otherwise.
double passk_estimate(int n, int c, int k);

// maj@k: the most frequent answer among the first k samples wins (ties: the one seen first);
// returns whether that sample was correct. Samples whose answer is NULL or "" do not vote; 0 when
// none voted.
int passk_majority(const char *const *answers, const int *correct, int k);

// One problem's samples for the means over problems below: n samples of which c are correct;
// answers and correct in sample order, for maj@k (NULL when only pass@k is asked for).
typedef struct PasskProblem {
    int n, c;
    const char *const *answers;
    const int *correct;
} PasskProblem;

// Means over np problems (sums in problem order, then one division): the fraction correct, pass@k
// and maj@k (the first k samples vote). pass@k and maj@k need k <= passk_min_samples.
double passk_fraction_mean(const PasskProblem *p, int np);
double passk_mean(const PasskProblem *p, int np, int k);
double passk_majority_mean(const PasskProblem *p, int np, int k);
int passk_min_samples(const PasskProblem *p, int np); // 0 when np is 0

#endif
