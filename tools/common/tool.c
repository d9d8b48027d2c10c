// tool.c — exits, usage errors and option-value parsing shared by the tools.
#include "checkpoint/checkpoint.h"
#include "tool.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_print_version(const char *prog) { printf("%s (ds) %s\n", prog, ds_version()); }

// "PROG: message" on stderr; the message may quote file contents, so control characters are
// escaped rather than sent to the terminal.
static void print_message(const char *prog, const char *fmt, va_list ap) {
    char *msg;
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    fprintf(stderr, "%s: ", prog);
    cli_print_escaped(stderr, msg ? msg : fmt);
    fputc('\n', stderr);
    free(msg);
}

void cli_usage_error(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_message(prog, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help'.\n", prog);
    exit(EXIT_USAGE);
}

void cli_error(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_message(prog, fmt, ap);
    va_end(ap);
}

void cli_warn_config(void *prog, const char *msg) { cli_error(prog, "warning: %s", msg); }

void cli_ckpt_warnings(const char *prog, const Checkpoint *ck) {
    for (int i = 0; i < ck->nwarnings; i++) cli_error(prog, "warning: %s", ck->warnings[i]);
}

void cli_fail(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_message(prog, fmt, ap);
    va_end(ap);
    // A write error on stdout is reported by this message (or is beside the point): drop what is
    // buffered so the exit check below does not report it a second time.
    if (ferror(stdout)) {
        __fpurge(stdout);
        clearerr(stdout);
    }
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

// Output that never reached stdout (a full disk, /dev/full, a closed pipe's reader gone with
// SIGPIPE ignored) must not end in exit 0: at exit, whatever is buffered is flushed and any write
// error on stdout turns into exit 1 with a message. Every tool links this file, so every tool gets
// the check without a call of its own.
static void close_stdout(void) {
    errno = 0;
    int bad = fflush(stdout) != 0;
    int err = errno;
    if (!bad && !ferror(stdout)) return;
    fprintf(stderr, "%s: write error on standard output%s%s\n", program_invocation_short_name,
            err ? ": " : "", err ? strerror(err) : "");
    _exit(EXIT_FAIL);
}

__attribute__((constructor)) static void check_stdout_at_exit(void) { atexit(close_stdout); }
