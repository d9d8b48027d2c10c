// cli.h — what libds tells and takes from the command line without parsing it: the version string
// written into outputs, and the thread count. Parsing, usage errors and exits are the tools'
// (tools/common/tool.h).
#ifndef DS_CLI_H
#define DS_CLI_H

#include "core/common.h"

const char *ds_version(void); // `git describe` of the tree that built the binary

// Sets the thread count used by OpenBLAS (and returned for the caller's own pools). n <= 0 means
// all online cores. Our own parallel loops and BLAS never run at the same time, so they share it.
int cli_set_threads(int n);

// s with control characters escaped (\n, \t, \r, \xHH): messages quote file contents and names,
// which must not reach a terminal raw.
void cli_print_escaped(FILE *f, const char *s);

#endif
