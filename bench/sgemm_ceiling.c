// sgemm_ceiling — the single-precision GEMM ceiling of this machine: best GFLOP/s of an n×n×n
// OpenBLAS sgemm over several repetitions, the denominator of the training benchmark's MFU.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <cblas.h>

#include "tool.h"
#include "core/common.h"

static const char *PROG = "sgemm_ceiling";

int main(int argc, char **argv) {
    int n = 1024, reps = 10, threads = 0;
    static const struct option opts[] = {{"size", required_argument, 0, 'n'},
                                         {"reps", required_argument, 0, 'r'},
                                         {"threads", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:r:t:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': n = (int)cli_long(PROG, "--size", optarg, 16, 8192); break;
        case 'r': reps = (int)cli_long(PROG, "--reps", optarg, 1, 100000); break;
        case 't': threads = (int)cli_long(PROG, "--threads", optarg, 1, 1024); break;
        case 'h':
            printf("Usage: sgemm_ceiling [--size N] [--reps R] [--threads T]\n"
                   "Prints {\"gflops_best\", \"gflops_median\", ...} of R N×N×N sgemm calls.\n");
            return 0;
        case 'V': cli_print_version(PROG); return 0;
        default: cli_usage_error(PROG, "unknown option");
        }
    }
    threads = cli_set_threads(threads);
    size_t nn = (size_t)n * n;
    float *a = ds_aligned_alloc(sizeof(float) * nn), *b = ds_aligned_alloc(sizeof(float) * nn);
    float *c = ds_aligned_alloc(sizeof(float) * nn);
    for (size_t i = 0; i < nn; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n); // warm-up
    double *g = ds_malloc(sizeof(double) * (size_t)reps);
    for (int r = 0; r < reps; r++) {
        double t0 = ds_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        g[r] = 2.0 * n * n * n / (ds_now() - t0) / 1e9;
    }
    // insertion sort: reps is small
    for (int i = 1; i < reps; i++)
        for (int j = i; j > 0 && g[j - 1] > g[j]; j--) {
            double t = g[j];
            g[j] = g[j - 1], g[j - 1] = t;
        }
    printf("{\"n\":%d,\"threads\":%d,\"reps\":%d,\"gflops_best\":%.2f,\"gflops_median\":%.2f}\n", n,
           threads, reps, g[reps - 1], g[reps / 2]);
    free(a), free(b), free(c), free(g);
    return 0;
}
