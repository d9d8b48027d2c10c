// test_grpo.c — the GRPO objective: gradient at ratio 1, finite differences, clipping, each loss
// aggregation on a crafted batch, advantages.
#include <math.h>

#include "rl/grpo_loss.h"
#include "core/rng.h"
#include "unit.h"

static void gradient_at_ratio_one(T *t) {
    // one sequence of 4 tokens, token-mean weights 1/4
    int off[1] = {0}, len[1] = {4};
    double lp[4] = {-1.0, -0.2, -3.0, -0.7}, ref[4] = {-1.5, -0.1, -2.0, -0.7}, A[1] = {0.8}, d[4];
    GrpoStats st;
    double beta = 0.04;
    grpo_loss(1, off, len, lp, lp, ref, A, 0.2, beta, AGG_TOKEN_MEAN, 0, 0, 0, d, &st);
    for (int k = 0; k < 4; k++) {
        double expect = A[0] + beta * (exp(ref[k] - lp[k]) - 1); // d objective / d log π
        CHECK_CLOSE(t, -4 * d[k], expect, 1e-12);
    }
    CHECK_CLOSE(t, st.ratio, 1.0, 1e-12);
    CHECK(t, st.clipfrac == 0);
}

static void finite_differences(T *t) {
    Rng r;
    rng_seed(&r, 3);
    int off[3] = {0, 2, 7}, len[3] = {2, 5, 3};
    double lp[10], old[10], ref[10], A[3] = {1.3, -0.4, 0.2}, d[10];
    for (int k = 0; k < 10; k++) {
        old[k] = -fabs(rng_normal(&r));
        lp[k] = old[k] + 0.05 * rng_normal(&r); // ratios within the clip range
        ref[k] = old[k] + 0.3 * rng_normal(&r);
    }
    for (int agg = 0; agg < 3; agg++) {
        GrpoStats st;
        grpo_loss(3, off, len, lp, old, ref, A, 0.2, 0.1, (GrpoAgg)agg, 8, 0, 0, d, &st);
        for (int k = 0; k < 10; k++) {
            double keep = lp[k], h = 1e-6, dd[10];
            lp[k] = keep + h;
            double a = grpo_loss(3, off, len, lp, old, ref, A, 0.2, 0.1, (GrpoAgg)agg, 8, 0, 0, dd, &st);
            lp[k] = keep - h;
            double b = grpo_loss(3, off, len, lp, old, ref, A, 0.2, 0.1, (GrpoAgg)agg, 8, 0, 0, dd, &st);
            lp[k] = keep;
            CHECK_CLOSE(t, (a - b) / (2 * h), d[k], 1e-7);
        }
    }
}

static void clipping(T *t) {
    int off[1] = {0}, len[1] = {1};
    double old[1] = {-1.0}, d[1], A[1];
    GrpoStats st;
    double up[1] = {-1.0 + log(1.5)}, down[1] = {-1.0 + log(0.5)};
    A[0] = 1; // positive advantage: ratio above 1+ε is clipped, below 1−ε is not
    grpo_loss(1, off, len, up, old, NULL, A, 0.2, 0, AGG_TOKEN_MEAN, 0, 0, 0, d, &st);
    CHECK(t, d[0] == 0 && st.clipfrac == 1);
    grpo_loss(1, off, len, down, old, NULL, A, 0.2, 0, AGG_TOKEN_MEAN, 0, 0, 0, d, &st);
    CHECK_CLOSE(t, d[0], -0.5, 1e-12);
    A[0] = -1; // negative advantage: below 1−ε is clipped, above 1+ε is not
    grpo_loss(1, off, len, down, old, NULL, A, 0.2, 0, AGG_TOKEN_MEAN, 0, 0, 0, d, &st);
    CHECK(t, d[0] == 0 && st.clipfrac == 1);
    grpo_loss(1, off, len, up, old, NULL, A, 0.2, 0, AGG_TOKEN_MEAN, 0, 0, 0, d, &st);
    CHECK_CLOSE(t, d[0], 1.5, 1e-12);
}

static void aggregations(T *t) {
    // Two sequences of 1 and 3 tokens at ratio 1, no KL: each token's term is its advantage.
    int off[2] = {0, 1}, len[2] = {1, 3};
    double lp[4] = {-1, -2, -3, -4}, A[2] = {2.0, -1.0}, d[4];
    GrpoStats st;
    double l1 = grpo_loss(2, off, len, lp, lp, NULL, A, 0.2, 0, AGG_SEQ_MEAN_TOKEN_MEAN, 0, 0, 0, d, &st);
    CHECK_CLOSE(t, l1, -(2.0 / 1 + (-3.0) / 3) / 2, 1e-12);  // −0.5
    double l2 = grpo_loss(2, off, len, lp, lp, NULL, A, 0.2, 0, AGG_TOKEN_MEAN, 0, 0, 0, d, &st);
    CHECK_CLOSE(t, l2, -(2.0 - 3.0) / 4, 1e-12);             // +0.25
    double l3 = grpo_loss(2, off, len, lp, lp, NULL, A, 0.2, 0, AGG_SEQ_MEAN_TOKEN_SUM_NORM, 4, 0, 0, d, &st);
    CHECK_CLOSE(t, l3, -(2.0 / 4 + (-3.0) / 4) / 2, 1e-12);  // +0.125
    CHECK_CLOSE(t, d[1], -(-1.0) / (2 * 4), 1e-12);
    GrpoAgg a;
    CHECK(t, grpo_agg_parse("token-mean", &a) == 0 && a == AGG_TOKEN_MEAN);
    CHECK(t, grpo_agg_parse("nope", &a) != 0);
}

static void advantages(T *t) {
    double r[4] = {1, 0, 0, 1}, A[4];
    grpo_advantages(r, 4, 1, A);
    double sd = sqrt(1.0 / 3); // sample std of {1,0,0,1}
    CHECK_CLOSE(t, A[0], 0.5 / sd, 1e-12);
    CHECK_CLOSE(t, A[1], -0.5 / sd, 1e-12);
    double same[3] = {0.1, 0.1, 0.1};
    grpo_advantages(same, 3, 1, A);
    CHECK(t, A[0] == 0 && A[1] == 0 && A[2] == 0);
    grpo_advantages(r, 4, 0, A);
    CHECK_CLOSE(t, A[0], 0.5, 1e-12);
}

UNIT_MAIN(CASE(gradient_at_ratio_one), CASE(finite_differences), CASE(clipping), CASE(aggregations),
          CASE(advantages))

