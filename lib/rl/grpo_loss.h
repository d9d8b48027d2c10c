// grpo_loss.h — the GRPO objective (DeepSeekMath §4) on per-token log-probabilities: group-
// normalised outcome advantages, the clipped ratio, the k3 KL estimate against a reference model,
// and the loss aggregations users ask for (GRPO, DAPO's token mean, Dr. GRPO's constant norm).
#ifndef DS_GRPO_LOSS_H
#define DS_GRPO_LOSS_H

typedef enum {
    AGG_SEQ_MEAN_TOKEN_MEAN,      // GRPO: mean over sequences of each sequence's token mean
    AGG_TOKEN_MEAN,               // DAPO: mean over all tokens of the batch
    AGG_SEQ_MEAN_TOKEN_SUM_NORM,  // Dr. GRPO: token sums divided by a constant (max length), mean over sequences
} GrpoAgg;

int grpo_agg_parse(const char *name, GrpoAgg *agg); // DS_ERR when unknown
const char *grpo_agg_name(GrpoAgg agg);

// A[i] for one group of G rewards: (r − mean) / std when normalize (all equal → 0), else r − mean.
void grpo_advantages(const double *r, int G, int normalize, double *A);

typedef struct GrpoStats {
    double kl;        // mean k3 KL over tokens
    double clipfrac;  // fraction of tokens whose ratio was clipped (zero gradient)
    double ratio;     // mean ratio
    long tokens;
} GrpoStats;

// nseq sequences; sequence i has len[i] tokens at offset off[i] of the flat arrays lp (current
// policy), lp_old (the policy that sampled them), lp_ref (the reference model; ignored when
// beta == 0). Returns the loss (to minimise) and writes dL/dlp into dlp (flat, same layout).
// norm_len is Dr. GRPO's constant (e.g. the maximum response length). The aggregation normalises
// by batch_seqs sequences and batch_tokens tokens (0: this call's own), so a batch can be processed
// in micro-batches whose losses and gradients add up to the whole batch's.
double grpo_loss(int nseq, const int *off, const int *len, const double *lp, const double *lp_old,
                 const double *lp_ref, const double *adv, double eps, double beta, GrpoAgg agg,
                 int norm_len, long batch_seqs, long batch_tokens, double *dlp, GrpoStats *st);

#endif
