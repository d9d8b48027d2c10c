// fuzz_file.h — for targets whose lib/ entry point reads a path: the fuzzer's bytes are written to
// one temp file per process (created on first use, removed at exit) and that path is handed over.
#ifndef DS_FUZZ_FILE_H
#define DS_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// The harness's own state: libFuzzer calls the target again and again in one process, so the temp
// name is kept for the process's life (lib/ itself has no such state).
static char fuzz_path[64];

static void fuzz_file_remove(void) {
    if (fuzz_path[0]) unlink(fuzz_path);
}

// Writes data into the temp file (suffix: ".tar", ".json") and returns its path; exits on an
// I/O error, which is the harness's failure, not a finding.
static const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix) {
    if (!fuzz_path[0]) {
        snprintf(fuzz_path, sizeof fuzz_path, "/tmp/ds-fuzz-XXXXXX%s", suffix);
        int fd = mkstemps(fuzz_path, (int)strlen(suffix));
        if (fd < 0) {
            perror("fuzz: mkstemps");
            exit(2);
        }
        close(fd);
        atexit(fuzz_file_remove);
    }
    FILE *f = fopen(fuzz_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror("fuzz: write");
        exit(2);
    }
    return fuzz_path;
}

#endif
