// backend_cpu.c — the CPU backend: host memory, OpenBLAS's thread pool.
// The memory API has no `real` in it, so only the float pass of lib/nn compiles this file (the
// double pass sees an empty unit and defines nothing twice).
#ifndef DS_REAL_F64
#include "nn/backend.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

static void *cpu_alloc(size_t bytes) { return ds_aligned_alloc(bytes ? bytes : 1); } // zeroed
static void cpu_free(void *p) { free(p); }
static void cpu_zero(void *p, size_t bytes) {
    if (bytes) memset(p, 0, bytes);
}
static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) memmove(dst, src, bytes);
}
static void cpu_set_threads(int n) { openblas_set_num_threads(n > 0 ? n : 1); }
static int cpu_threads(void) { return openblas_get_num_threads(); }

static const Backend CPU = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .upload = cpu_copy,
    .download = cpu_copy,
    .set_threads = cpu_set_threads,
    .threads = cpu_threads,
};

const Backend *backend_cpu(void) { return &CPU; }

const Backend *backend_find(const char *name) {
    return name && strcmp(name, CPU.name) == 0 ? &CPU : NULL;
}
#else
typedef int backend_cpu_has_no_double_variant;
#endif
