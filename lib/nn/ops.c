// ops.c — primitive ops, forward and backward side by side, over `real` (see real.h).
#include "nn/ops.h"

#include <math.h>
#include <string.h>

#include "nn/real.h"

// ----------------------------------------------------------------------------
// linear

void R_(linear_forward)(real *out, const real *inp, const real *weight, const real *bias, int N,
                        int C, int OC) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1, inp, C, weight, C, 0, out, OC);
    if (bias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
}

void R_(linear_backward)(real *dinp, real *dweight, real *dbias, const real *dout, const real *inp,
                         const real *weight, int N, int C, int OC) {
    if (dinp)
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1, dout, OC, weight, C, 1, dinp, C);
    if (dweight)
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1, dout, OC, inp, C, 1, dweight, C);
    if (dbias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) dbias[o] += dout[(size_t)n * OC + o];
}

// ----------------------------------------------------------------------------
// embedding

void R_(embedding_forward)(real *out, const int *tokens, const real *table, int N, int C) {
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, table + (size_t)tokens[n] * C, sizeof(real) * (size_t)C);
}

void R_(embedding_backward)(real *dtable, const real *dout, const int *tokens, int N, int C) {
    for (int n = 0; n < N; n++) {
        real *row = dtable + (size_t)tokens[n] * C;
        const real *d = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) row[c] += d[c];
    }
}

// ----------------------------------------------------------------------------
// rmsnorm

void R_(rmsnorm_forward)(real *out, real *rstd, const real *inp, const real *weight, int N, int C,
                         double eps) {
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        real *y = out + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        real r = (real)(1.0 / sqrt(ss / C + eps));
        for (int c = 0; c < C; c++) y[c] = x[c] * r * weight[c];
        rstd[n] = r;
    }
}

void R_(rmsnorm_backward)(real *dinp, real *dweight, const real *dout, const real *inp,
                          const real *weight, const real *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        real *dx = dinp + (size_t)n * C;
        real r = rstd[n];
        double dot = 0;
        for (int c = 0; c < C; c++) dot += (double)dy[c] * weight[c] * x[c];
        real k = (real)(dot * r * r * r / C);
        for (int c = 0; c < C; c++) {
            dx[c] += r * weight[c] * dy[c] - x[c] * k;
            if (dweight) dweight[c] += dy[c] * x[c] * r;
        }
    }
}

// ----------------------------------------------------------------------------
// rope

void R_(rope_apply)(real *x, const int *pos, int N, int H, int token_stride, int head_stride,
                    const Rope *rope, int inverse) {
    int half = rope->dim / 2;
    int pair_step = rope->interleaved ? 2 : 1, pair_off = rope->interleaved ? 1 : half;
    for (int n = 0; n < N; n++) {
        const double *cs = rope->cos + (size_t)pos[n] * half, *sn = rope->sin + (size_t)pos[n] * half;
        for (int h = 0; h < H; h++) {
            real *v = x + (size_t)n * token_stride + (size_t)h * head_stride;
            for (int i = 0; i < half; i++) {
                real c = (real)cs[i], s = inverse ? -(real)sn[i] : (real)sn[i];
                real *a = v + i * pair_step, *b = a + pair_off;
                real x0 = *a, x1 = *b;
                *a = x0 * c - x1 * s;
                *b = x0 * s + x1 * c;
            }
        }
    }
}

// ----------------------------------------------------------------------------
// attention

void R_(attention_forward)(real *out, real *att, const real *q, const real *k, const real *v,
                           const int *pos, int B, int T, int H, int Hkv, int dqk, int dv,
                           double scale) {
    int group = H / Hkv;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int kh = h / group;
            const real *qb = q + (size_t)b * T * H * dqk + (size_t)h * dqk;
            const real *kb = k + (size_t)b * T * Hkv * dqk + (size_t)kh * dqk;
            const real *vb = v + (size_t)b * T * Hkv * dv + (size_t)kh * dv;
            real *P = att + ((size_t)b * H + h) * T * T;
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dqk, (real)scale, qb, H * dqk, kb,
                 Hkv * dqk, 0, P, T);
            for (int i = 0; i < T; i++) {
                real *row = P + (size_t)i * T;
                int start = i - pos[b * T + i];
                if (start < 0) start = 0;
                real mx = row[start];
                for (int j = start; j <= i; j++) mx = row[j] > mx ? row[j] : mx;
                double sum = 0;
                for (int j = start; j <= i; j++) sum += (row[j] = (real)exp(row[j] - mx));
                real inv = (real)(1.0 / sum);
                for (int j = 0; j < start; j++) row[j] = 0;
                for (int j = start; j <= i; j++) row[j] *= inv;
                for (int j = i + 1; j < T; j++) row[j] = 0;
            }
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dv, T, 1, P, T, vb, Hkv * dv, 0,
                 out + (size_t)b * T * H * dv + (size_t)h * dv, H * dv);
        }
}

void R_(attention_backward)(real *dq, real *dk, real *dvv, real *scratch, const real *dout,
                            const real *att, const real *q, const real *k, const real *v, int B,
                            int T, int H, int Hkv, int dqk, int dv, double scale) {
    int group = H / Hkv;
    memset(dk, 0, sizeof(real) * (size_t)B * T * Hkv * dqk);
    memset(dvv, 0, sizeof(real) * (size_t)B * T * Hkv * dv);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int kh = h / group;
            size_t qo = (size_t)b * T * H * dqk + (size_t)h * dqk;
            size_t ko = (size_t)b * T * Hkv * dqk + (size_t)kh * dqk;
            size_t vo = (size_t)b * T * Hkv * dv + (size_t)kh * dv;
            size_t oo = (size_t)b * T * H * dv + (size_t)h * dv;
            const real *P = att + ((size_t)b * H + h) * T * T;
            real *dS = scratch;
            // dP = dO · Vᵀ ; dV += Pᵀ · dO
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dv, 1, dout + oo, H * dv, v + vo,
                 Hkv * dv, 0, dS, T);
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, dv, T, 1, P, T, dout + oo, H * dv, 1,
                 dvv + vo, Hkv * dv);
            // softmax backward: dS = P ⊙ (dP − Σ_j P dP)
            for (int i = 0; i < T; i++) {
                const real *p = P + (size_t)i * T;
                real *d = dS + (size_t)i * T;
                double dot = 0;
                for (int j = 0; j <= i; j++) dot += (double)p[j] * d[j];
                for (int j = 0; j <= i; j++) d[j] = p[j] * (d[j] - (real)dot);
                for (int j = i + 1; j < T; j++) d[j] = 0;
            }
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dqk, T, (real)scale, dS, T, k + ko,
                 Hkv * dqk, 0, dq + qo, H * dqk);
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, dqk, T, (real)scale, dS, T, q + qo,
                 H * dqk, 1, dk + ko, Hkv * dqk);
        }
}

// ----------------------------------------------------------------------------
// swiglu

static inline real sigmoid(real x) { return (real)(1.0 / (1.0 + exp(-(double)x))); }

void R_(swiglu_forward)(real *out, const real *gu, int N, int F) {
    for (int n = 0; n < N; n++) {
        const real *g = gu + (size_t)n * 2 * F, *u = g + F;
        real *o = out + (size_t)n * F;
        for (int i = 0; i < F; i++) o[i] = g[i] * sigmoid(g[i]) * u[i];
    }
}

void R_(swiglu_backward)(real *dgu, const real *dout, const real *gu, int N, int F) {
    for (int n = 0; n < N; n++) {
        const real *g = gu + (size_t)n * 2 * F, *u = g + F, *d = dout + (size_t)n * F;
        real *dg = dgu + (size_t)n * 2 * F, *du = dg + F;
        for (int i = 0; i < F; i++) {
            real s = sigmoid(g[i]);
            du[i] = d[i] * g[i] * s;
            dg[i] = d[i] * u[i] * s * (1 + g[i] * (1 - s));
        }
    }
}

// ----------------------------------------------------------------------------
// log-probabilities of targets (cross-entropy is −mean of these)

double R_(logprob_forward)(real *lp, real *lse, const real *logits, const int *targets, int N,
                           int V) {
    double total = 0;
    for (int n = 0; n < N; n++) {
        const real *x = logits + (size_t)n * V;
        real mx = x[0];
        for (int i = 1; i < V; i++) mx = x[i] > mx ? x[i] : mx;
        double s = 0;
        for (int i = 0; i < V; i++) s += exp((double)(x[i] - mx));
        lse[n] = (real)(mx + log(s));
        lp[n] = targets[n] >= 0 ? x[targets[n]] - lse[n] : 0;
        total += lp[n];
    }
    return total;
}

void R_(logprob_backward)(real *dlogits, const real *dlp, const real *logits, const real *lse,
                          const int *targets, int N, int V) {
    for (int n = 0; n < N; n++) {
        real *d = dlogits + (size_t)n * V;
        if (targets[n] < 0 || dlp[n] == 0) {
            memset(d, 0, sizeof(real) * (size_t)V);
            continue;
        }
        const real *x = logits + (size_t)n * V;
        real g = dlp[n], l = lse[n];
        for (int i = 0; i < V; i++) d[i] = -g * (real)exp((double)(x[i] - l));
        d[targets[n]] += g;
    }
}

// ----------------------------------------------------------------------------
// column slices

void R_(copy_cols)(real *dst, const real *src, int N, int src_cols, int col0, int ncols) {
    for (int n = 0; n < N; n++)
        memcpy(dst + (size_t)n * ncols, src + (size_t)n * src_cols + col0, sizeof(real) * (size_t)ncols);
}

void R_(add_cols)(real *dst, const real *src, int N, int dst_cols, int col0, int ncols) {
    for (int n = 0; n < N; n++) {
        real *d = dst + (size_t)n * dst_cols + col0;
        const real *s = src + (size_t)n * ncols;
        for (int c = 0; c < ncols; c++) d[c] += s[c];
    }
}
