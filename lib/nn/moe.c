// moe.c — DeepSeekMoE routing: sigmoid affinities, bias-shifted group-limited top-k selection,
// normalised gates, and the complementary sequence-wise balance loss.
#include "nn/moe.h"

#include <math.h>
#include <string.h>

#include "nn/real.h"

// Index of the largest v[i] (i in [0,n)) not yet taken; ties to the lowest index.
static int argmax_free(const double *v, const unsigned char *taken, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!taken[i] && (best < 0 || v[i] > v[best])) best = i;
    return best;
}

void R_(moe_route_forward)(int *idx, real *gate, real *score, const real *logits, const real *bias,
                           const ModelConfig *c, int N) {
    int E = c->n_routed_experts, K = c->num_experts_per_tok, G = config_route_groups(c), per = E / G;
    double sel[E], gscore[G];
    unsigned char taken[E > G ? E : G];
    for (int n = 0; n < N; n++) {
        const real *x = logits + (size_t)n * E;
        real *s = score + (size_t)n * E;
        for (int i = 0; i < E; i++) {
            s[i] = (real)(1.0 / (1.0 + exp(-(double)x[i])));
            sel[i] = (double)s[i] + (bias ? (double)bias[i] : 0.0);
        }
        // Group scores: sum of each group's two best biased scores; keep the topk_group best.
        if (G > 1) {
            for (int g = 0; g < G; g++) {
                double a = -INFINITY, b = -INFINITY;
                for (int i = g * per; i < (g + 1) * per; i++) {
                    if (sel[i] > a) b = a, a = sel[i];
                    else if (sel[i] > b) b = sel[i];
                }
                gscore[g] = a + b;
            }
            memset(taken, 0, (size_t)G);
            for (int t = 0; t < c->topk_group; t++) taken[argmax_free(gscore, taken, G)] = 1;
            // Experts of dropped groups are marked taken so top-k cannot pick them.
            unsigned char keep[G];
            memcpy(keep, taken, (size_t)G);
            for (int i = 0; i < E; i++) taken[i] = !keep[i / per];
        } else {
            memset(taken, 0, (size_t)E);
        }
        int *id = idx + (size_t)n * K;
        for (int k = 0; k < K; k++) {
            int e = argmax_free(sel, taken, E);
            taken[e] = 1;
            id[k] = e;
        }
        // Ascending expert order within a token keeps downstream sums in a fixed order.
        for (int a = 1; a < K; a++)
            for (int b = a; b > 0 && id[b - 1] > id[b]; b--) {
                int t = id[b];
                id[b] = id[b - 1], id[b - 1] = t;
            }
        double sum = 0;
        for (int k = 0; k < K; k++) sum += s[id[k]];
        double norm = c->norm_topk_prob ? 1.0 / (sum + 1e-20) : 1.0;
        for (int k = 0; k < K; k++)
            gate[(size_t)n * K + k] = (real)(s[id[k]] * norm * c->routed_scaling_factor);
    }
}

double R_(moe_balance_loss)(const int *idx, const real *score, const ModelConfig *c, int B, int T,
                            double alpha) {
    int E = c->n_routed_experts, K = c->num_experts_per_tok;
    double f[E], P[E], total = 0;
    for (int b = 0; b < B; b++) {
        memset(f, 0, sizeof f);
        memset(P, 0, sizeof P);
        for (int t = 0; t < T; t++) {
            size_t n = (size_t)b * T + t;
            const real *s = score + n * E;
            double S = 0;
            for (int i = 0; i < E; i++) S += s[i];
            for (int i = 0; i < E; i++) P[i] += s[i] / S / T;
            for (int k = 0; k < K; k++) f[idx[n * K + k]] += (double)E / ((double)K * T);
        }
        for (int i = 0; i < E; i++) total += f[i] * P[i];
    }
    return alpha * total / B;
}

void R_(moe_route_backward)(real *dlogits, const real *dgate, const real *score, const int *idx,
                            const ModelConfig *c, int B, int T, double alpha) {
    int E = c->n_routed_experts, K = c->num_experts_per_tok;
    double f[E];
    for (int b = 0; b < B; b++) {
        memset(f, 0, sizeof f);
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++)
                f[idx[((size_t)b * T + t) * K + k]] += (double)E / ((double)K * T);
        for (int t = 0; t < T; t++) {
            size_t n = (size_t)b * T + t;
            const real *s = score + n * E;
            const int *id = idx + n * K;
            const real *dg = dgate + n * K;
            real *dl = dlogits + n * E;
            double ds[E];
            // Gates: g_k = rsf · s_k / S_sel (or rsf · s_k without normalisation).
            memset(ds, 0, sizeof ds);
            double Ssel = 0, dot = 0;
            for (int k = 0; k < K; k++) Ssel += s[id[k]], dot += (double)dg[k] * s[id[k]];
            for (int k = 0; k < K; k++) {
                if (c->norm_topk_prob)
                    ds[id[k]] += c->routed_scaling_factor * (dg[k] / Ssel - dot / (Ssel * Ssel));
                else
                    ds[id[k]] += c->routed_scaling_factor * dg[k];
            }
            // Balance loss: d/ds of α/B · Σ_i f_i · (s_i / S) / T over all experts.
            if (alpha > 0) {
                double S = 0, w = 0;
                for (int i = 0; i < E; i++) S += s[i];
                for (int i = 0; i < E; i++) w += f[i] * s[i];
                double a = alpha / B / T;
                for (int i = 0; i < E; i++) ds[i] += a * (f[i] / S - w / (S * S));
            }
            for (int i = 0; i < E; i++) dl[i] = (real)(ds[i] * s[i] * (1.0 - s[i]));
        }
    }
}

// ----------------------------------------------------------------------------
// dispatch and combine

void R_(moe_dispatch_forward)(real *xe, int *perm, int *eoff, const int *idx, const real *x, int N,
                              int K, int E, int d) {
    memset(eoff, 0, sizeof(int) * (size_t)(E + 1));
    for (int r = 0; r < N * K; r++) eoff[idx[r] + 1]++;
    for (int e = 0; e < E; e++) eoff[e + 1] += eoff[e];
    int fill[E];
    memcpy(fill, eoff, sizeof(int) * (size_t)E);
    for (int r = 0; r < N * K; r++) perm[fill[idx[r]]++] = r;
    for (int r = 0; r < N * K; r++)
        memcpy(xe + (size_t)r * d, x + (size_t)(perm[r] / K) * d, sizeof(real) * (size_t)d);
}

void R_(moe_dispatch_backward)(real *dx, const real *dxe, const int *perm, int N, int K, int d) {
    for (int r = 0; r < N * K; r++) {
        real *dst = dx + (size_t)(perm[r] / K) * d;
        const real *src = dxe + (size_t)r * d;
        for (int i = 0; i < d; i++) dst[i] += src[i];
    }
}

void R_(moe_combine_forward)(real *out, const real *ye, const real *gate, const int *perm, int N,
                             int K, int d) {
    for (int r = 0; r < N * K; r++) {
        real g = gate[perm[r]], *o = out + (size_t)(perm[r] / K) * d;
        const real *yr = ye + (size_t)r * d;
        for (int i = 0; i < d; i++) o[i] += g * yr[i];
    }
}

void R_(moe_combine_backward)(real *dye, real *dgate, const real *dout, const real *ye,
                              const real *gate, const int *perm, int N, int K, int d) {
    for (int r = 0; r < N * K; r++) {
        int slot = perm[r];
        const real *g = dout + (size_t)(slot / K) * d, *yr = ye + (size_t)r * d;
        real *dy = dye + (size_t)r * d, gt = gate[slot];
        double dot = 0;
        for (int i = 0; i < d; i++) dot += (double)g[i] * yr[i], dy[i] = gt * g[i];
        dgate[slot] = (real)dot;
    }
}

double R_(moe_bias_update)(real *bias, const long *load, int E, double gamma) {
    double mean = 0, mx = 0;
    for (int i = 0; i < E; i++) mean += (double)load[i] / E, mx = fmax(mx, (double)load[i]);
    for (int i = 0; i < E; i++) {
        double s = mean - (double)load[i];
        bias[i] += (real)(gamma * (s > 0 ? 1 : s < 0 ? -1 : 0));
    }
    return mean > 0 ? mx / mean : 0;
}
