// tool.c — exits, usage errors and option-value parsing shared by the tools.
#include "tool.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

void cli_print_version(const char *prog) { printf("%s (ds) %s\n", prog, ds_version()); }

void cli_usage_error(const char *prog, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", prog);
    exit(EXIT_USAGE);
}

void cli_fail(const char *prog, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_FAIL);
}

void cli_fail_err(const char *prog, const DsErr *e) { cli_fail(prog, "%s", e->msg); }

long cli_long(const char *prog, const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        cli_usage_error(prog, "%s: expected an integer in [%ld, %ld], got '%s'", opt, lo, hi, s);
    return v;
}

double cli_double(const char *prog, const char *opt, const char *s, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        cli_usage_error(prog, "%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s);
    return v;
}

uint64_t cli_u64(const char *prog, const char *opt, const char *s) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        cli_usage_error(prog, "%s: expected a non-negative integer, got '%s'", opt, s);
    return (uint64_t)v;
}
