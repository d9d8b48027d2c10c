// tarball.c — POSIX tar containers through libarchive, written reproducibly and read in place.
#include "data/tarball.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"

// ---------------------------------------------------------------------------------------------
// Member names seen so far: a hash set (open addressing, FNV-1a), so refusing duplicates costs
// O(1) per member; a scan of all earlier names made 80k-member archives take seconds.

typedef struct NameSet {
    char **slot; // NULL or an owned copy of a name
    size_t cap, n;
} NameSet;

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static char **nameset_find(const NameSet *ns, const char *name) {
    size_t i = (size_t)name_hash(name) & (ns->cap - 1);
    while (ns->slot[i] && strcmp(ns->slot[i], name) != 0) i = (i + 1) & (ns->cap - 1);
    return &ns->slot[i];
}

// Adds a copy of name; 0 when it was there already.
static int nameset_add(NameSet *ns, const char *name) {
    if (2 * (ns->n + 1) > ns->cap) { // keep at most half full
        NameSet big = {ds_calloc(ns->cap ? 2 * ns->cap : 16, sizeof(char *)), ns->cap ? 2 * ns->cap : 16,
                       ns->n};
        for (size_t i = 0; i < ns->cap; i++)
            if (ns->slot[i]) *nameset_find(&big, ns->slot[i]) = ns->slot[i];
        free(ns->slot);
        *ns = big;
    }
    char **at = nameset_find(ns, name);
    if (*at) return 0;
    *at = ds_strdup(name);
    ns->n++;
    return 1;
}

static void nameset_free(NameSet *ns) {
    for (size_t i = 0; i < ns->cap; i++) free(ns->slot[i]);
    free(ns->slot);
    memset(ns, 0, sizeof *ns);
}

// ---------------------------------------------------------------------------------------------
// Writer

struct TarWriter {
    AtomicFile af;
    struct archive *a;
    char *path;    // for messages
    NameSet names; // members so far, to refuse duplicates
};

static void writer_free(TarWriter *w) {
    if (w->a) archive_write_free(w->a);
    nameset_free(&w->names);
    free(w->path);
    free(w);
}

TarWriter *tar_writer_open(const char *path, DsErr *e) {
    TarWriter *w = ds_calloc(1, sizeof *w);
    w->path = ds_strdup(path);
    if (atomic_open(&w->af, path, e) != DS_OK) {
        writer_free(w);
        return NULL;
    }
    w->a = archive_write_new();
    DS_CHECK(w->a != NULL);
    // pax_restricted writes plain ustar headers unless a member needs more (long names, > 8 GiB).
    // A short last block keeps small archives small; readers need only the end-of-archive blocks.
    if (archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
        archive_write_add_filter_none(w->a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK ||
        archive_write_open_FILE(w->a, w->af.f) != ARCHIVE_OK) {
        ds_errf(e, "%s: cannot start tar archive: %s", path, archive_error_string(w->a));
        tar_writer_abort(w);
        return NULL;
    }
    return w;
}

static int valid_member_name(const char *name) {
    if (!name[0] || name[0] == '/') return 0;
    for (const char *p = name; *p;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p += len;
        if (*p == '/') p++;
        else break;
        if (!*p) return 0; // trailing slash names a directory
    }
    return 1;
}

int tar_writer_add(TarWriter *w, const char *name, const void *data, size_t n, DsErr *e) {
    if (!valid_member_name(name))
        return ds_errf(e, "%s: invalid member name '%s'", w->path, name);
    if (w->names.cap && *nameset_find(&w->names, name))
        return ds_errf(e, "%s: duplicate member '%s'", w->path, name);
    struct archive_entry *en = archive_entry_new();
    DS_CHECK(en != NULL);
    archive_entry_set_pathname(en, name);
    archive_entry_set_filetype(en, AE_IFREG);
    archive_entry_set_perm(en, 0644);
    archive_entry_set_size(en, (la_int64_t)n);
    archive_entry_set_mtime(en, 0, 0);
    archive_entry_set_uid(en, 0);
    archive_entry_set_gid(en, 0);
    int rc = archive_write_header(w->a, en);
    archive_entry_free(en);
    if (rc != ARCHIVE_OK)
        return ds_errf(e, "%s: member '%s': %s", w->path, name, archive_error_string(w->a));
    // archive_write_data may accept less than asked; loop until all is written.
    const uint8_t *p = data;
    size_t left = n;
    while (left > 0) {
        la_ssize_t k = archive_write_data(w->a, p, left);
        if (k <= 0)
            return ds_errf(e, "%s: member '%s': write error: %s", w->path, name,
                           archive_error_string(w->a));
        p += k;
        left -= (size_t)k;
    }
    nameset_add(&w->names, name);
    return DS_OK;
}

int tar_writer_close(TarWriter *w, DsErr *e) {
    // archive_write_close writes the end-of-archive blocks into the FILE; atomic_commit flushes,
    // fsyncs and renames.
    if (archive_write_close(w->a) != ARCHIVE_OK) {
        ds_errf(e, "%s: %s", w->path, archive_error_string(w->a));
        tar_writer_abort(w);
        return DS_ERR;
    }
    int rc = atomic_commit(&w->af, e);
    writer_free(w);
    return rc;
}

void tar_writer_abort(TarWriter *w) {
    if (!w) return;
    // Freeing an unclosed archive writes its end blocks to the FILE, so it must go before the FILE.
    if (w->a) archive_write_free(w->a);
    w->a = NULL;
    atomic_abort(&w->af);
    writer_free(w);
}

// ---------------------------------------------------------------------------------------------
// Reader

int tar_map_file(const char *path, const uint8_t **buf, size_t *len, DsErr *e) {
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ds_errf(e, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return ds_errf(e, "%s: %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ds_errf(e, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return ds_errf(e, "%s: empty file, not a tar archive", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (p == MAP_FAILED) return ds_errf(e, "%s: cannot map: %s", path, strerror(err));
    *buf = p;
    *len = (size_t)st.st_size;
    return DS_OK;
}

void tar_unmap(const uint8_t *buf, size_t len) {
    if (buf) munmap((void *)buf, len);
}

void tar_spans_free(TarSpan *spans, int n) {
    for (int i = 0; i < n; i++) free(spans[i].name);
    free(spans);
}

int tar_index(const uint8_t *buf, size_t len, const char *path, TarSpan **spans, int *n, DsErr *e) {
    *spans = NULL;
    *n = 0;
    TarSpan *s = NULL;
    int ns = 0, cap = 0;
    uint64_t end = 0;
    NameSet seen = {0};
    struct archive *a = archive_read_new();
    DS_CHECK(a != NULL);
    // Only uncompressed tar: members must lie in the file as they are, to be used in place.
    archive_read_support_format_tar(a);
    if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
        ds_errf(e, "%s: not a tar archive: %s", path, archive_error_string(a));
        goto fail;
    }
    for (;;) {
        struct archive_entry *en;
        int rc = archive_read_next_header(a, &en);
        if (rc == ARCHIVE_EOF) {
            end = (uint64_t)archive_read_header_position(a); // where the end marker should be
            break;
        }
        if (rc != ARCHIVE_OK) {
            ds_errf(e, "%s: %s archive: %s", path, ns ? "corrupt" : "not a tar",
                    archive_error_string(a));
            goto fail;
        }
        const char *name = archive_entry_pathname(en);
        uint64_t size = (uint64_t)archive_entry_size(en);
        if (archive_entry_filetype(en) != AE_IFREG) continue;
        if (!name) {
            ds_errf(e, "%s: member at byte %llu has no name", path,
                    (unsigned long long)archive_read_header_position(a));
            goto fail;
        }
        if (!nameset_add(&seen, name)) {
            ds_errf(e, "%s: duplicate member '%s'", path, name);
            goto fail;
        }
        // Reading from memory, libarchive hands back pointers into buf itself; that gives the
        // member's file offset, and a short first block means the member is cut off.
        uint64_t off = 0;
        if (size > 0) {
            const void *blk;
            size_t got;
            la_int64_t at;
            rc = archive_read_data_block(a, &blk, &got, &at);
            if (rc == ARCHIVE_FATAL || rc == ARCHIVE_WARN || rc == ARCHIVE_RETRY) {
                ds_errf(e, "%s: member '%s': %s", path, name, archive_error_string(a));
                goto fail;
            }
            if (rc == ARCHIVE_EOF || at != 0 || got < size) {
                ds_errf(e, "%s: truncated: member '%s' should hold %llu bytes", path, name,
                        (unsigned long long)size);
                goto fail;
            }
            uintptr_t at_p = (uintptr_t)blk, base = (uintptr_t)buf;
            if (at_p < base || at_p - base > len || size > len - (at_p - base)) {
                ds_errf(e, "%s: member '%s' is not stored contiguously", path, name);
                goto fail;
            }
            off = (uint64_t)(at_p - base);
        }
        if (ns == cap) {
            cap = cap ? 2 * cap : 8;
            s = ds_realloc(s, (size_t)cap * sizeof *s);
        }
        s[ns++] = (TarSpan){ds_strdup(name), off, size};
    }
    // libarchive treats a file that stops right after a member as a complete archive; we insist on
    // the end-of-archive zero blocks so that a file cut at a member boundary is caught.
    if (end + 1024 > len) {
        ds_errf(e, "%s: truncated: no end-of-archive marker after byte %llu", path,
                (unsigned long long)end);
        goto fail;
    }
    for (uint64_t i = end; i < end + 1024; i++)
        if (buf[i] != 0) {
            ds_errf(e, "%s: corrupt: expected end-of-archive zero blocks at byte %llu", path,
                    (unsigned long long)end);
            goto fail;
        }
    archive_read_free(a);
    nameset_free(&seen);
    *spans = s;
    *n = ns;
    return DS_OK;
fail:
    archive_read_free(a);
    nameset_free(&seen);
    tar_spans_free(s, ns);
    return DS_ERR;
}

int tar_read_all(const char *path, TarArchive *ar, DsErr *e) {
    memset(ar, 0, sizeof *ar);
    const uint8_t *buf;
    size_t len;
    if (tar_map_file(path, &buf, &len, e) != DS_OK) return DS_ERR;
    TarSpan *s;
    int n;
    if (tar_index(buf, len, path, &s, &n, e) != DS_OK) {
        tar_unmap(buf, len);
        return DS_ERR;
    }
    ar->m = ds_calloc((size_t)(n ? n : 1), sizeof *ar->m);
    ar->n = n;
    for (int i = 0; i < n; i++) {
        ar->m[i].name = s[i].name;
        s[i].name = NULL;
        ar->m[i].size = s[i].size;
        ar->m[i].data = ds_aligned_alloc(s[i].size);
        memcpy(ar->m[i].data, buf + s[i].offset, s[i].size);
    }
    tar_spans_free(s, n);
    tar_unmap(buf, len);
    return DS_OK;
}

const TarMember *tar_find(const TarArchive *a, const char *name) {
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->m[i].name, name) == 0) return &a->m[i];
    return NULL;
}

void tar_free(TarArchive *a) {
    for (int i = 0; i < a->n; i++) {
        free(a->m[i].name);
        free(a->m[i].data);
    }
    free(a->m);
    memset(a, 0, sizeof *a);
}
