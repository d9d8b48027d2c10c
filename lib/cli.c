// cli.c — the version string and the thread count.
#include "cli.h"

#include <cblas.h>
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
