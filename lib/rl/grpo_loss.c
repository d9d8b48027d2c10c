// grpo_loss.c — GRPO's per-token objective and its gradient with respect to log π.
#include "rl/grpo_loss.h"

#include <math.h>
#include <string.h>

#include "core/common.h"

static const char *NAMES[] = {"seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"};

int grpo_agg_parse(const char *name, GrpoAgg *agg) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, NAMES[i])) {
            *agg = (GrpoAgg)i;
            return DS_OK;
        }
    return DS_ERR;
}

const char *grpo_agg_name(GrpoAgg agg) { return NAMES[agg]; }

void grpo_advantages(const double *r, int G, int normalize, double *A) {
    double mean = 0, var = 0;
    for (int i = 0; i < G; i++) mean += r[i] / G;
    for (int i = 0; i < G; i++) var += (r[i] - mean) * (r[i] - mean) / (G > 1 ? G - 1 : 1);
    double sd = sqrt(var);
    for (int i = 0; i < G; i++) {
        double d = r[i] - mean;
        A[i] = !normalize ? d : sd > 1e-12 ? d / sd : 0;
    }
}

double grpo_loss(int nseq, const int *off, const int *len, const double *lp, const double *lp_old,
                 const double *lp_ref, const double *adv, double eps, double beta, GrpoAgg agg,
                 int norm_len, long batch_seqs, long batch_tokens, double *dlp, GrpoStats *st) {
    long total = 0;
    for (int i = 0; i < nseq; i++) total += len[i];
    double S = batch_seqs > 0 ? (double)batch_seqs : nseq, Tk = batch_tokens > 0 ? (double)batch_tokens : (double)total;
    memset(st, 0, sizeof *st);
    double loss = 0;
    for (int i = 0; i < nseq; i++) {
        // weight of one token's term in the aggregated objective
        double w = agg == AGG_TOKEN_MEAN ? 1.0 / fmax(Tk, 1)
                   : agg == AGG_SEQ_MEAN_TOKEN_MEAN ? 1.0 / (S * DS_MAX(len[i], 1))
                                                    : 1.0 / (S * DS_MAX(norm_len, 1));
        double A = adv[i];
        for (int t = 0; t < len[i]; t++) {
            int k = off[i] + t;
            double rho = exp(lp[k] - lp_old[k]);
            double clipped = fmin(fmax(rho, 1 - eps), 1 + eps);
            // min(ρA, clip(ρ)A): the clipped branch is active (and flat) when it is the smaller
            int clip_active = (A >= 0 && rho > 1 + eps) || (A < 0 && rho < 1 - eps);
            double term = fmin(rho * A, clipped * A), g = clip_active ? 0 : rho * A;
            if (beta > 0) {
                double x = lp_ref[k] - lp[k], kl = exp(x) - x - 1;
                term -= beta * kl;
                g += beta * (exp(x) - 1); // d(−β·KL)/dlp = β(π_ref/π − 1)
                st->kl += kl;
            }
            loss -= w * term;
            dlp[k] = -w * g;
            st->clipfrac += clip_active;
            st->ratio += rho;
        }
    }
    st->tokens = total;
    if (total) st->kl /= total, st->clipfrac /= total, st->ratio /= total;
    return loss;
}
