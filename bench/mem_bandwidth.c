// mem_bandwidth — this machine's memory bandwidth as a decode step sees it: the best GB/s of
// summing a buffer far larger than the caches (read only, as a weight matrix is read), split over
// --threads threads, over several repetitions. The denominator of batch-1 decode rooflines.
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "tool.h"
#include "core/common.h"

static const char *PROG = "mem_bandwidth";

typedef struct Part {
    const float *x;
    size_t n;
    double sum;
} Part;

static void *sum_part(void *p) {
    Part *a = p;
    // Eight independent sums let the loads run ahead of the adds.
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= a->n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += a->x[i + k];
    for (; i < a->n; i++) s[0] += a->x[i];
    a->sum = 0;
    for (int k = 0; k < 8; k++) a->sum += s[k];
    return NULL;
}

int main(int argc, char **argv) {
    long mib = 1024, reps = 10, threads = 1;
    static const struct option opts[] = {{"mib", required_argument, 0, 'm'}, {"reps", required_argument, 0, 'r'},
                                         {"threads", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': mib = cli_long(PROG, "--mib", optarg, 64, 1 << 16); break;
        case 'r': reps = cli_long(PROG, "--reps", optarg, 1, 1000); break;
        case 't': threads = cli_long(PROG, "--threads", optarg, 1, 256); break;
        case 'h': printf("Usage: mem_bandwidth [--mib N] [--reps R] [--threads T]\n"); return EXIT_OK;
        case 'V': cli_print_version(PROG); return EXIT_OK;
        default: cli_usage_error(PROG, "bad option");
        }
    }
    size_t n = (size_t)mib << 18; // floats
    float *x = ds_aligned_alloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(i & 7);
    double best = 0, check = 0;
    for (long r = 0; r < reps; r++) {
        Part parts[256];
        pthread_t tid[256];
        double t0 = ds_now();
        for (long k = 0; k < threads; k++) {
            parts[k] = (Part){.x = x + n / threads * k, .n = k == threads - 1 ? n - n / threads * k : n / threads};
            pthread_create(&tid[k], NULL, sum_part, &parts[k]);
        }
        for (long k = 0; k < threads; k++) pthread_join(tid[k], NULL), check += parts[k].sum;
        double gbs = (double)n * sizeof *x / (ds_now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    printf("{\"mib\":%ld,\"threads\":%ld,\"reps\":%ld,\"read_gb_per_s_best\":%.2f,\"checksum\":%.0f}\n", mib, threads,
           reps, best, check);
    free(x);
    return EXIT_OK;
}
