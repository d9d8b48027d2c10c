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

// Allocation failures and broken invariants cannot be recovered from: these abort with file:line.
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
