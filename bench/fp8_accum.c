// fp8_accum.c — the FP8 accumulation study: error of Hopper's limited accumulator over K, without
// promotion and with promotion to FP32 every N_C elements (V3 §3.3), and the fast path's cost.
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "tool.h"
#include "math/fp8.h"
#include "math/fp8_gemm.h"
#include "core/rng.h"

static const char *PROG = "fp8_accum";

static void usage(void) {
    printf(
        "Usage: %s [options]\n"
        "Random normal A[M,K] (1x128 groups) and W[N,K] (128x128 blocks), E4M3; C = A.W^T by the\n"
        "exact accumulation model without promotion and with promotion every N_C, against a\n"
        "float64 product of the same dequantised inputs. Writes markdown tables.\n"
        "  --kmin N        smallest K (power of two, default 256)\n"
        "  --kmax N        largest K (default 16384)\n"
        "  --m N, --n N    outputs per K are M x N (default 64 x 64)\n"
        "  --seeds N       independent draws per K (default 3)\n"
        "  --seed N        base seed (default 1)\n"
        "  --acc-bits N    accumulator bits (default 14)\n"
        "  --mma-k N       products per MMA step (default 32)\n"
        "  --n-c N         promotion interval of the promoted run (default 128)\n"
        "  --pow2          power-of-two scales\n"
        "  --speed         also time the fast path against plain sgemm (T=512, in=out=1024)\n"
        "  --threads N     BLAS threads (default 1)\n"
        "  -o, --out FILE  output (default -: stdout)\n"
        "  --help, --version\n",
        PROG);
}

typedef struct Stats {
    double max_abs, sum_abs; // |C - Cref| / sum_k |a_k b_k|
    double max_rel, sum_rel; // |C - Cref| / |Cref|
    double max_rms, sum_rms; // |C - Cref| / rms(Cref) over the K's outputs
    double xy, sq;           // DeepGEMM's diff, pooled over seeds
    long n;
} Stats;

static void stats_add(Stats *s, const float *C, const double *ref, const double *absum, size_t n) {
    double ms = 0;
    for (size_t i = 0; i < n; i++) ms += ref[i] * ref[i];
    double rms = sqrt(ms / n);
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)C[i] - ref[i]);
        double ea = absum[i] > 0 ? d / absum[i] : 0, er = ref[i] != 0 ? d / fabs(ref[i]) : 0;
        s->max_abs = fmax(s->max_abs, ea), s->sum_abs += ea;
        s->max_rel = fmax(s->max_rel, er), s->sum_rel += er;
        s->max_rms = fmax(s->max_rms, d / rms), s->sum_rms += d / rms;
        s->xy += C[i] * ref[i], s->sq += (double)C[i] * C[i] + ref[i] * ref[i];
    }
    s->n += (long)n;
}

static double stats_diff(const Stats *s) { return 1 - 2 * s->xy / s->sq; }

typedef struct Row {
    int K;
    Stats none, prom, fast, quant; // no promotion, promoted, fast path; promoted vs raw inputs
} Row;

static void run_k(Row *row, int M, int N, int K, int seeds, uint64_t seed, int pow2,
                  const Fp8GemmOpts *base) {
    memset(row, 0, sizeof *row);
    row->K = K;
    size_t mk = (size_t)M * K, nk = (size_t)N * K, mn = (size_t)M * N;
    float *a = ds_malloc(mk * sizeof(float)), *w = ds_malloc(nk * sizeof(float));
    float *ad = ds_malloc(mk * sizeof(float)), *wd = ds_malloc(nk * sizeof(float));
    float *C = ds_malloc(mn * sizeof(float));
    double *ref = ds_malloc(mn * sizeof(double)), *raw = ds_malloc(mn * sizeof(double));
    double *absum = ds_malloc(mn * sizeof(double));
    for (int s = 0; s < seeds; s++) {
        Rng r;
        rng_derive(&r, seed, (uint64_t)K, (uint64_t)s);
        for (size_t i = 0; i < mk; i++) a[i] = (float)rng_normal(&r);
        for (size_t i = 0; i < nk; i++) w[i] = (float)rng_normal(&r);
        Fp8Tensor A, W;
        fp8_quantize(&A, a, M, K, 1, 1, FP8_E4M3, pow2);
        fp8_quantize(&W, w, N, K, 1, FP8_GROUP, FP8_E4M3, pow2);
        fp8_dequantize(&A, ad);
        fp8_dequantize(&W, wd);
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                const float *x = ad + (size_t)m * K, *y = wd + (size_t)n * K;
                const float *xr = a + (size_t)m * K, *yr = w + (size_t)n * K;
                double d = 0, ab = 0, dr = 0;
                for (int k = 0; k < K; k++) {
                    double p = (double)x[k] * y[k];
                    d += p, ab += fabs(p), dr += (double)xr[k] * yr[k];
                }
                ref[(size_t)m * N + n] = d, absum[(size_t)m * N + n] = ab,
                                    raw[(size_t)m * N + n] = dr;
            }
        Fp8GemmOpts o = *base;
        o.exact = 1, o.n_c = 0;
        fp8_gemm(C, N, &A, &W, 0.0f, &o, NULL);
        stats_add(&row->none, C, ref, absum, mn);
        o.n_c = base->n_c;
        fp8_gemm(C, N, &A, &W, 0.0f, &o, NULL);
        stats_add(&row->prom, C, ref, absum, mn);
        stats_add(&row->quant, C, raw, absum, mn);
        o.exact = 0;
        fp8_gemm(C, N, &A, &W, 0.0f, &o, NULL);
        stats_add(&row->fast, C, ref, absum, mn);
        fp8_tensor_free(&A);
        fp8_tensor_free(&W);
    }
    free(a), free(w), free(ad), free(wd), free(C), free(ref), free(raw), free(absum);
}

static void print_tables(FILE *f, const Row *rows, int nrows, int n_c) {
    fprintf(f, "### Error relative to sum_k |a_k b_k| (well conditioned)\n\n");
    fprintf(f,
            "| K | max, no promotion | mean, no promotion | max, N_C=%d | mean, N_C=%d | max, fast "
            "path |\n",
            n_c, n_c);
    fprintf(f, "|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < nrows; i++) {
        const Row *r = &rows[i];
        fprintf(f, "| %d | %.3e | %.3e | %.3e | %.3e | %.3e |\n", r->K, r->none.max_abs,
                r->none.sum_abs / r->none.n, r->prom.max_abs, r->prom.sum_abs / r->prom.n,
                r->fast.max_abs);
    }
    fprintf(f, "\n### Error relative to |Cref| (ill conditioned when Cref is near 0) and to "
               "rms(Cref)\n\n");
    fprintf(f,
            "| K | max /abs(Cref), none | mean /abs(Cref), none | max /abs(Cref), N_C=%d | mean "
            "/abs(Cref), N_C=%d "
            "| max /rms, none | mean /rms, none | max /rms, N_C=%d | mean /rms, N_C=%d |\n",
            n_c, n_c, n_c, n_c);
    fprintf(f, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < nrows; i++) {
        const Row *r = &rows[i];
        fprintf(f, "| %d | %.3e | %.3e | %.3e | %.3e | %.3e | %.3e | %.3e | %.3e |\n", r->K,
                r->none.max_rel, r->none.sum_rel / r->none.n, r->prom.max_rel,
                r->prom.sum_rel / r->prom.n, r->none.max_rms, r->none.sum_rms / r->none.n,
                r->prom.max_rms, r->prom.sum_rms / r->prom.n);
    }
    fprintf(f, "\n### DeepGEMM's criterion 1 - 2*sum(xy)/sum(x^2+y^2) (pass: < 1e-3)\n\n");
    fprintf(f, "| K | no promotion | N_C=%d | fast path | N_C=%d vs unquantised inputs |\n", n_c,
            n_c);
    fprintf(f, "|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < nrows; i++) {
        const Row *r = &rows[i];
        fprintf(f, "| %d | %.3e | %.3e | %.3e | %.3e |\n", r->K, stats_diff(&r->none),
                stats_diff(&r->prom), stats_diff(&r->fast), stats_diff(&r->quant));
    }
}

// Best of a few runs, in milliseconds.
#define TIME_MS(out, reps, stmt)                                                                   \
    do {                                                                                           \
        double best_ = 1e30;                                                                       \
        for (int rep_ = 0; rep_ < (reps); rep_++) {                                                \
            double t0_ = ds_now();                                                                 \
            stmt;                                                                                  \
            best_ = fmin(best_, ds_now() - t0_);                                                   \
        }                                                                                          \
        (out) = best_ * 1e3;                                                                       \
    } while (0)

static void speed(FILE *f, int threads) {
    const int T = 512, IN = 1024, OUT = 1024, reps = 5;
    float *x = ds_malloc(sizeof(float) * T * IN), *w = ds_malloc(sizeof(float) * OUT * IN);
    float *y = ds_malloc(sizeof(float) * T * OUT);
    Rng r;
    rng_seed(&r, 1);
    for (int i = 0; i < T * IN; i++) x[i] = (float)rng_normal(&r);
    for (int i = 0; i < OUT * IN; i++) w[i] = (float)rng_normal(&r);
    Fp8Tensor X, W;
    fp8_tensor_alloc(&X, T, IN, 1, 1, FP8_E4M3);
    fp8_tensor_alloc(&W, OUT, IN, 1, FP8_GROUP, FP8_E4M3);
    float *work = ds_malloc(sizeof(float) * fp8_gemm_work_floats(&X, &W));
    Fp8GemmOpts o = fp8_gemm_defaults();
    double t_sgemm, t_qx, t_qw, t_gemm;
    TIME_MS(t_sgemm, reps,
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, OUT, IN, 1.0f, x, IN, w, IN,
                        0.0f, y, OUT));
    TIME_MS(t_qx, reps, fp8_quantize_into(&X, x, 0));
    TIME_MS(t_qw, reps, fp8_quantize_into(&W, w, 0));
    TIME_MS(t_gemm, reps, fp8_gemm(y, OUT, &X, &W, 0.0f, &o, work));
    double total = t_qx + t_qw + t_gemm;
    fprintf(f,
            "\n### Fast path cost: forward Y = X.W^T, T=%d, in=%d, out=%d, %d BLAS thread(s), best "
            "of %d\n\n",
            T, IN, OUT, threads, reps);
    fprintf(f, "| step | ms | vs sgemm |\n|---|---:|---:|\n");
    fprintf(f, "| cblas_sgemm on float inputs | %.3f | 1.00 |\n", t_sgemm);
    fprintf(f, "| quantise X (1x128), %.1f M elements/s | %.3f | %.2f |\n", T * IN / t_qx / 1e3,
            t_qx, t_qx / t_sgemm);
    fprintf(f, "| quantise W (128x128), %.1f M elements/s | %.3f | %.2f |\n", OUT * IN / t_qw / 1e3,
            t_qw, t_qw / t_sgemm);
    fprintf(f, "| fp8_gemm fast path (dequantise + sgemm) | %.3f | %.2f |\n", t_gemm,
            t_gemm / t_sgemm);
    fprintf(f, "| all of the FP8 forward | %.3f | %.2f |\n", total, total / t_sgemm);
    free(x), free(w), free(y), free(work);
    fp8_tensor_free(&X);
    fp8_tensor_free(&W);
}

enum {
    OPT_KMIN = OPT_FIRST_TOOL_OPTION,
    OPT_KMAX,
    OPT_M,
    OPT_N,
    OPT_SEEDS,
    OPT_SEED,
    OPT_ACC,
    OPT_MMAK,
    OPT_NC,
    OPT_POW2,
    OPT_SPEED,
    OPT_THREADS
};

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"kmin", required_argument, 0, OPT_KMIN},    {"kmax", required_argument, 0, OPT_KMAX},
        {"m", required_argument, 0, OPT_M},          {"n", required_argument, 0, OPT_N},
        {"seeds", required_argument, 0, OPT_SEEDS},  {"seed", required_argument, 0, OPT_SEED},
        {"acc-bits", required_argument, 0, OPT_ACC}, {"mma-k", required_argument, 0, OPT_MMAK},
        {"n-c", required_argument, 0, OPT_NC},       {"pow2", no_argument, 0, OPT_POW2},
        {"speed", no_argument, 0, OPT_SPEED},        {"threads", required_argument, 0, OPT_THREADS},
        {"out", required_argument, 0, 'o'},          {"help", no_argument, 0, OPT_HELP},
        {"version", no_argument, 0, OPT_VERSION},    {0, 0, 0, 0}};
    long kmin = 256, kmax = 16384, M = 64, N = 64, seeds = 3, threads = 1;
    uint64_t seed = 1;
    int pow2 = 0, do_speed = 0;
    const char *out = "-";
    Fp8GemmOpts o = fp8_gemm_defaults();
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_KMIN:
            kmin = cli_long(PROG, "--kmin", optarg, 1, 1 << 20);
            break;
        case OPT_KMAX:
            kmax = cli_long(PROG, "--kmax", optarg, 1, 1 << 20);
            break;
        case OPT_M:
            M = cli_long(PROG, "--m", optarg, 1, 4096);
            break;
        case OPT_N:
            N = cli_long(PROG, "--n", optarg, 1, 4096);
            break;
        case OPT_SEEDS:
            seeds = cli_long(PROG, "--seeds", optarg, 1, 1000);
            break;
        case OPT_SEED:
            seed = cli_u64(PROG, "--seed", optarg);
            break;
        case OPT_ACC:
            o.acc_bits = (int)cli_long(PROG, "--acc-bits", optarg, 2, 24);
            break;
        case OPT_MMAK:
            o.mma_k = (int)cli_long(PROG, "--mma-k", optarg, 1, 256);
            break;
        case OPT_NC:
            o.n_c = (int)cli_long(PROG, "--n-c", optarg, 1, 1 << 20);
            break;
        case OPT_POW2:
            pow2 = 1;
            break;
        case OPT_SPEED:
            do_speed = 1;
            break;
        case OPT_THREADS:
            threads = cli_long(PROG, "--threads", optarg, 0, 1024);
            break;
        case 'o':
            out = optarg;
            break;
        case OPT_HELP:
            usage();
            return EXIT_OK;
        case OPT_VERSION:
            cli_print_version(PROG);
            return EXIT_OK;
        default:
            cli_usage_error(PROG, "unknown option");
        }
    }
    if (optind < argc) cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    if (kmin > kmax) cli_usage_error(PROG, "--kmin %ld is larger than --kmax %ld", kmin, kmax);
    int nthreads = cli_set_threads((int)threads);
    int nrows = 0;
    for (long k = kmin; k <= kmax; k *= 2) nrows++;
    Row *rows = ds_calloc((size_t)nrows, sizeof(Row));
    int i = 0;
    for (long k = kmin; k <= kmax; k *= 2, i++)
        run_k(&rows[i], (int)M, (int)N, (int)k, (int)seeds, seed, pow2, &o);
    AtomicFile af;
    DsErr e;
    if (atomic_open(&af, out, &e) != DS_OK) cli_fail_err(PROG, &e);
    fprintf(
        af.f,
        "Parameters: E4M3, M=%ld N=%ld (%ld outputs per K and seed), %ld seed(s) from --seed %llu, "
        "acc_bits=%d, mma_k=%d, N_C=%d, %s scales.\n\n",
        M, N, M * N, seeds, (unsigned long long)seed, o.acc_bits, o.mma_k, o.n_c,
        pow2 ? "power-of-two" : "exact");
    print_tables(af.f, rows, nrows, o.n_c);
    if (do_speed) speed(af.f, nthreads);
    free(rows);
    if (atomic_commit(&af, &e) != DS_OK) cli_fail_err(PROG, &e);
    return EXIT_OK;
}
