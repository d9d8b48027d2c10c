// sample.c — greedy, temperature, top-k and top-p sampling over one row of logits.
#include "infer/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sample_argmax(const float *logits, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

double sample_logprob(const float *logits, int V, int token) {
    float mx = logits[sample_argmax(logits, V)];
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)(logits[i] - mx));
    return (double)(logits[token] - mx) - log(s);
}

// Candidates sorted by probability, descending; ties to the lower id so the order is total.
typedef struct Cand {
    float p;
    int id;
} Cand;
static int cand_cmp(const void *a, const void *b) {
    const Cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id;
}

int sample_token(const float *logits, int V, const SampleParams *p, double u, float *scratch) {
    if (p->temperature <= 0) return sample_argmax(logits, V);
    float mx = logits[sample_argmax(logits, V)];
    Cand *c = (Cand *)scratch; // 2*V floats hold V candidates
    double sum = 0;
    for (int i = 0; i < V; i++) {
        c[i].p = expf((float)((logits[i] - mx) / p->temperature));
        c[i].id = i;
        sum += c[i].p;
    }
    int n = V;
    if ((p->top_k > 0 && p->top_k < V) || p->top_p < 1) {
        qsort(c, (size_t)V, sizeof *c, cand_cmp);
        if (p->top_k > 0 && p->top_k < n) n = p->top_k;
        sum = 0;
        for (int i = 0; i < n; i++) sum += c[i].p;
        if (p->top_p < 1) {
            double keep = 0;
            int m = 0;
            while (m < n && keep < p->top_p * sum) keep += c[m++].p;
            n = m > 0 ? m : 1;
            sum = keep > 0 ? keep : c[0].p;
        }
    }
    double target = u * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (target < acc) return c[i].id;
    }
    return c[n - 1].id;
}
