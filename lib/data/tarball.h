// tarball.h — POSIX tar containers (pax/ustar through libarchive) with named members: shards,
// checkpoints. Written reproducibly (mtime, uid, gid 0, mode 0644) so equal content gives equal bytes.
#ifndef DS_TARBALL_H
#define DS_TARBALL_H

#include "core/common.h"

typedef struct TarWriter TarWriter;
TarWriter *tar_writer_open(const char *path, DsErr *e); // through atomic_file: temp + rename on close
// Member names: non-empty, relative, no "." or ".." component, unique within the archive.
int tar_writer_add(TarWriter *w, const char *name, const void *data, size_t n, DsErr *e);
int tar_writer_close(TarWriter *w, DsErr *e); // commits; frees w
void tar_writer_abort(TarWriter *w);          // removes the temp file; frees w (accepts NULL)

typedef struct TarMember {
    char *name;
    uint8_t *data; // 64-byte aligned, size bytes (+ zero padding)
    size_t size;
} TarMember;
typedef struct TarArchive {
    TarMember *m;
    int n;
} TarArchive;
int tar_read_all(const char *path, TarArchive *a, DsErr *e); // every regular member into memory
const TarMember *tar_find(const TarArchive *a, const char *name);
void tar_free(TarArchive *a);

// Where each regular member's bytes lie inside an uncompressed tar image (for readers that mmap the
// file and use members in place). Validates the archive with libarchive: a truncated member, a bad
// header checksum, a missing end-of-archive marker or a duplicate name gives DS_ERR naming `path`.
typedef struct TarSpan {
    char *name;
    uint64_t offset, size; // member data is buf[offset, offset+size)
} TarSpan;
int tar_index(const uint8_t *buf, size_t len, const char *path, TarSpan **spans, int *n, DsErr *e);
void tar_spans_free(TarSpan *spans, int n);

// Maps a whole file read-only (for tar_index and in-place readers). An empty file is an error.
int tar_map_file(const char *path, const uint8_t **buf, size_t *len, DsErr *e);
void tar_unmap(const uint8_t *buf, size_t len);

#endif
