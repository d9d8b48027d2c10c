// fsync_cost — what the atomic writer's durability costs: N outputs of SIZE bytes written through
// atomic_open/atomic_commit (temp file, fsync, rename, folder fsync) against the same temp + rename
// without either fsync. Prints one JSON object: seconds per output for each, and their ratio.
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "tool.h"

static const char *PROG = "fsync_cost";

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// The same steps as atomic_open/commit less the two fsyncs.
static void plain_write(const char *path, const char *data, size_t n) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0 || rename(tmp, path) != 0)
        cli_fail(PROG, "%s: plain write failed", path);
}

static void atomic_write(const char *path, const char *data, size_t n) {
    AtomicFile a;
    DsErr e;
    if (atomic_open(&a, path, &e)) cli_fail_err(PROG, &e);
    if (fwrite(data, 1, n, a.f) != n) cli_fail(PROG, "%s: write error", path);
    if (atomic_commit(&a, &e)) cli_fail_err(PROG, &e);
}

int main(int argc, char **argv) {
    const char *dir = ".";
    long count = 200, size = 4096;
    static const struct option opts[] = {{"dir", 1, 0, 'd'}, {"count", 1, 0, 'n'}, {"size", 1, 0, 's'},
                                         {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "d:n:s:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': dir = optarg; break;
        case 'n': count = cli_long(PROG, "--count", optarg, 1, 1000000); break;
        case 's': size = cli_long(PROG, "--size", optarg, 0, 1L << 31); break;
        case 'h':
            printf("Usage: fsync_cost [--dir DIR] [--count N] [--size BYTES]\n"
                   "Writes N files of BYTES in DIR both ways (the files are removed after).\n");
            return EXIT_OK;
        default: cli_usage_error(PROG, "unknown option");
        }
    }
    char *data = malloc((size_t)size + 1);
    for (long i = 0; i < size; i++) data[i] = (char)('a' + i % 26);
    char path[4096];
    double secs[2];
    for (int way = 0; way < 2; way++) { // 0: atomic (fsync), 1: plain
        double t0 = now();
        for (long i = 0; i < count; i++) {
            snprintf(path, sizeof path, "%s/fsync-cost-%ld.bin", dir, i);
            if (way == 0) atomic_write(path, data, (size_t)size);
            else plain_write(path, data, (size_t)size);
        }
        secs[way] = now() - t0;
        for (long i = 0; i < count; i++) {
            snprintf(path, sizeof path, "%s/fsync-cost-%ld.bin", dir, i);
            unlink(path);
        }
    }
    printf("{\"count\":%ld,\"size\":%ld,\"atomic_fsync_s_per_file\":%.6f,\"plain_rename_s_per_file\":%.6f,"
           "\"ratio\":%.2f}\n",
           count, size, secs[0] / (double)count, secs[1] / (double)count, secs[0] / secs[1]);
    free(data);
    return EXIT_OK;
}
