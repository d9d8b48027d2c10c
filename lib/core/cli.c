// cli.c — the version string, the thread count, and escaped printing of file-borne text.
#include "core/cli.h"

#include <cblas.h>
#include <stdio.h>
#include <unistd.h>

#include "version.h"

const char *ds_version(void) { return DS_VERSION; }

int cli_set_threads(int n) {
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    openblas_set_num_threads(n);
    return n;
}

void cli_print_escaped(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p != 0x7f) fputc(*p, f);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p == '\r') fputs("\\r", f);
        else fprintf(f, "\\x%02x", *p);
    }
}
