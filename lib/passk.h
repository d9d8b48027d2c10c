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

#endif
