// common.c — error reporting, checked allocation and small helpers shared by all of libds.
#include "core/common.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ds_errf(DsErr *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return DS_ERR;
}

int ds_err_prefix(DsErr *e, const char *fmt, ...) {
    if (e) {
        char prefix[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        size_t pl = strlen(prefix) + 2, cap = sizeof e->msg - 1;
        size_t ol = DS_MIN(strlen(e->msg), cap - pl);
        memmove(e->msg + pl, e->msg, ol);
        memcpy(e->msg, prefix, pl - 2);
        memcpy(e->msg + pl - 2, ": ", 2);
        e->msg[pl + ol] = 0;
    }
    return DS_ERR;
}

void ds_fatal(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "ds: internal error at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

// Out of memory: a resource failure, not a bug, so exit 1 with the tool's name like any other error
// (atexit handlers remove open temp outputs, see atomic_file.c).
static void __attribute__((noreturn)) ds_oom(size_t n) {
    fprintf(stderr, "%s: out of memory (%zu bytes)\n", program_invocation_short_name, n);
    exit(1);
}

// calloc's byte count, saturated (an overflowing n x size is reported as SIZE_MAX bytes)
static size_t ds_product(size_t n, size_t size) { return size && n > SIZE_MAX / size ? SIZE_MAX : n * size; }

void *ds_malloc(size_t n) {
    void *p = ds_fault_alloc() ? NULL : malloc(n ? n : 1);
    if (!p) ds_oom(n);
    return p;
}

void *ds_calloc(size_t n, size_t size) {
    void *p = ds_fault_alloc() ? NULL : calloc(n ? n : 1, size ? size : 1);
    if (!p) ds_oom(ds_product(n, size));
    return p;
}

void *ds_realloc(void *p, size_t n) {
    void *q = ds_fault_alloc() ? NULL : realloc(p, n ? n : 1);
    if (!q) ds_oom(n);
    return q;
}

char *ds_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(ds_malloc(n), s, n);
}

void *ds_aligned_alloc(size_t n) {
    size_t rounded = (n + 63) / 64 * 64;
    void *p = ds_fault_alloc() ? NULL : aligned_alloc(64, rounded ? rounded : 64);
    if (!p) ds_oom(n);
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

// ---- fault injection (test-only; only in the FAULT=1 build) -----------------------------------------
#ifdef DS_FAULT_INJECTION
// One counter per kind of fault. `at` is read from the environment once; 0 (unset) never fires.
typedef struct Fault {
    const char *var, *what;
    pthread_once_t once;
    long at;
    _Atomic long calls;
} Fault;
static Fault fault_alloc = {"DS_FAULT_ALLOC", "allocation", PTHREAD_ONCE_INIT, 0, 0};
static Fault fault_write = {"DS_FAULT_WRITE", "output commit", PTHREAD_ONCE_INIT, 0, 0};
static long env_long(const char *var) {
    const char *v = getenv(var);
    return v ? atol(v) : 0;
}
static void fault_read_alloc(void) { fault_alloc.at = env_long(fault_alloc.var); }
static void fault_read_write(void) { fault_write.at = env_long(fault_write.var); }

static int fault_hit(Fault *f, void (*read)(void)) {
    pthread_once(&f->once, read);
    if (f->at <= 0 || ++f->calls != f->at) return 0;
    fprintf(stderr, "ds: fault injected: %s %ld (%s)\n", f->what, f->at, f->var);
    return 1;
}
int ds_fault_alloc(void) { return fault_hit(&fault_alloc, fault_read_alloc); }
int ds_fault_write(void) { return fault_hit(&fault_write, fault_read_write); }
#endif

double ds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int ds_read_file(const char *path, char **data, size_t *len, DsErr *e) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return ds_errf(e, "%s: %s", path, strerror(errno));
    DsBuf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) dsbuf_append(&b, chunk, n);
    int bad = ferror(f);
    if (f != stdin) fclose(f);
    if (bad) {
        dsbuf_free(&b);
        return ds_errf(e, "%s: read error", path);
    }
    dsbuf_reserve(&b, 1);
    b.data[b.len] = 0;
    *data = b.data;
    *len = b.len;
    return DS_OK;
}

void dsbuf_reserve(DsBuf *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    b->data = ds_realloc(b->data, cap);
    b->cap = cap;
}

void dsbuf_append(DsBuf *b, const void *p, size_t n) {
    dsbuf_reserve(b, n + 1);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void dsbuf_printf(DsBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    dsbuf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void dsbuf_free(DsBuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
