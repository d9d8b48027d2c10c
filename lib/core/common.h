// common.h — error reporting, checked allocation and small helpers shared by all of libds.
#ifndef DS_COMMON_H
#define DS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// Library functions that can fail on user input return DS_ERR (-1) and describe the failure in a
// DsErr the caller owns; only tools/ decide to print and exit. Messages name the file, line or
// record, e.g. "data.jsonl:12: expected an object".
enum { DS_OK = 0, DS_ERR = -1 };
typedef struct DsErr {
    char msg[1024];
} DsErr;

// Formats into e (e may be NULL) and returns DS_ERR, so callers can `return ds_errf(e, ...)`.
int ds_errf(DsErr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prefixes an existing message: "PREFIX: old message".
int ds_err_prefix(DsErr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Allocation failure cannot be recovered from: these print "PROG: out of memory (N bytes)" and
// exit 1 (open atomic_file temps are removed at exit). Broken invariants (DS_CHECK, ds_fatal) abort
// with file:line: that is a bug, not an input or resource problem.
void *ds_malloc(size_t n);
void *ds_calloc(size_t n, size_t size);
void *ds_realloc(void *p, size_t n);
char *ds_strdup(const char *s);
void *ds_aligned_alloc(size_t n); // 64-byte aligned, zeroed; free with free()
#define DS_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) ds_fatal(__FILE__, __LINE__, "check failed: %s", #cond);                      \
    } while (0)
void ds_fatal(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

// ---- fault injection (test-only: compiled in by `make FAULT=1`, see tests/fault.bats) ----------
// In the fault build, ds_fault_alloc() is 1 on the N-th allocation of the process (N from the
// environment variable DS_FAULT_ALLOC, read once at first use) and ds_fault_write() on the N-th
// output commit (DS_FAULT_WRITE); each prints "ds: fault injected: ..." on stderr when it fires.
// The counters are the fault build's only process-wide state; the normal build has none and these
// are the constant 0.
#ifdef DS_FAULT_INJECTION
int ds_fault_alloc(void);
int ds_fault_write(void);
#else
#define ds_fault_alloc() 0
#define ds_fault_write() 0
#endif

double ds_now(void); // monotonic seconds

// Whole-file read into a NUL-terminated buffer; *len gets the size without the NUL.
int ds_read_file(const char *path, char **data, size_t *len, DsErr *e);

// Growable byte buffer.
typedef struct DsBuf {
    char *data;
    size_t len, cap;
} DsBuf;
void dsbuf_reserve(DsBuf *b, size_t extra);
void dsbuf_append(DsBuf *b, const void *p, size_t n);
void dsbuf_printf(DsBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dsbuf_free(DsBuf *b);

#define DS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define DS_MAX(a, b) ((a) > (b) ? (a) : (b))
#define DS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
