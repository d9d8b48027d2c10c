// atomic_file.c — temp file + rename for every output.
#include "atomic_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int atomic_open(AtomicFile *a, const char *path, DsErr *e) {
    memset(a, 0, sizeof *a);
    if (strcmp(path, "-") == 0) {
        a->f = stdout;
        return DS_OK;
    }
    size_t n = strlen(path);
    a->path = ds_strdup(path);
    a->tmp = ds_malloc(n + 16);
    // The temp name starts with the target's name so a leftover is easy to attribute, and ends in
    // a random suffix so two runs never share one.
    snprintf(a->tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        int err = errno;
        free(a->path);
        free(a->tmp);
        memset(a, 0, sizeof *a);
        return ds_errf(e, "%s: cannot create: %s", path, strerror(err));
    }
    // mkstemp creates 0600; outputs get the usual permissions (0666 less the umask).
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        close(fd);
        atomic_abort(a);
        return ds_errf(e, "%s: cannot open: %s", path, strerror(errno));
    }
    return DS_OK;
}

int atomic_commit(AtomicFile *a, DsErr *e) {
    if (!a->path) {
        int bad = fflush(a->f) != 0 || ferror(a->f);
        memset(a, 0, sizeof *a);
        return bad ? ds_errf(e, "<stdout>: write error") : DS_OK;
    }
    int bad = fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0;
    int err = errno;
    bad |= fclose(a->f) != 0;
    a->f = NULL;
    if (bad) {
        DsErr tmp;
        ds_errf(&tmp, "%s: write error: %s", a->path, strerror(err));
        atomic_abort(a);
        if (e) *e = tmp;
        return DS_ERR;
    }
    if (rename(a->tmp, a->path) != 0) {
        DsErr tmp;
        ds_errf(&tmp, "%s: cannot rename into place: %s", a->path, strerror(errno));
        atomic_abort(a);
        if (e) *e = tmp;
        return DS_ERR;
    }
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
    return DS_OK;
}

void atomic_abort(AtomicFile *a) {
    if (a->f && a->f != stdout) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
}
