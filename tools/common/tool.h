// tool.h — the conventions every ds-* tool (and bench program) shares: exit codes, --version,
// usage errors, failures, and strict parsing of option values. Only tools print usage and exit;
// libds returns DS_ERR with a DsErr instead.
#ifndef DS_TOOL_H
#define DS_TOOL_H

#include "core/cli.h"

// Exit codes of every tool.
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

// Long-option ids shared by the tools' getopt_long tables.
enum { OPT_HELP = 1000, OPT_VERSION, OPT_FIRST_TOOL_OPTION };

void cli_print_version(const char *prog);
// Prints "PROG: message" and "Try 'PROG --help'." to stderr and exits 2.
void cli_usage_error(const char *prog, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));
// Every message from these functions is printed with control characters escaped. At exit, a write
// error on stdout (a full disk, /dev/full) makes any tool exit 1 with a message.
// Prints "PROG: message" to stderr (no exit).
void cli_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prints "PROG: message" to stderr and exits 1.
void cli_fail(const char *prog, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
void cli_fail_err(const char *prog, const DsErr *e) __attribute__((noreturn));
// A ConfigWarnFn (checkpoint/config.h) whose ctx is the program name: "PROG: warning: MSG".
void cli_warn_config(void *prog, const char *msg);
// Prints what ckpt_open collected in ck->warnings (unknown config.json keys), one line each.
struct Checkpoint;
void cli_ckpt_warnings(const char *prog, const struct Checkpoint *ck);

// Strict numeric parsing of option values; a bad value is a usage error naming the option.
long cli_long(const char *prog, const char *opt, const char *s, long lo, long hi);
double cli_double(const char *prog, const char *opt, const char *s, double lo, double hi);
uint64_t cli_u64(const char *prog, const char *opt, const char *s);

#endif
