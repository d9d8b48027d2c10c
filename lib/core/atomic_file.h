// atomic_file.h — regular-file outputs are written to a temp file beside the target and renamed on
// success (then the file and its folder are fsynced), so an interrupted or failed run never leaves a
// truncated file that looks valid. A symlink's target is what gets replaced. Anything that is not a
// regular file (a device such as /dev/null, a FIFO, "-") is written directly, never renamed over.
#ifndef DS_ATOMIC_FILE_H
#define DS_ATOMIC_FILE_H

#include "core/common.h"

typedef struct AtomicFile {
    FILE *f;    // write here
    char *path; // final name (NULL for stdout)
    char *tmp;  // temp name in the same directory
    char *direct; // name of a non-regular output written in place (NULL otherwise)
} AtomicFile;

// path "-" writes to stdout (commit only flushes).
int atomic_open(AtomicFile *a, const char *path, DsErr *e);
// Flushes, fsyncs and renames into place; frees a. On failure the temp file is removed.
int atomic_commit(AtomicFile *a, DsErr *e);
// Removes the temp file and frees a; safe on a zeroed or already committed AtomicFile.
void atomic_abort(AtomicFile *a);

#endif
