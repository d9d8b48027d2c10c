// atomic_file.c — temp file + rename for regular outputs, direct writes for everything else.
#include "core/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---- open temps, removed at exit ------------------------------------------------------------------
// A tool that exits while an output is open (cli_fail_err, out of memory) must not leave its temp
// behind, and exit() cannot reach the caller's AtomicFile: every open temp is listed here and an
// atexit handler removes the ones still listed. This list is atomic_file's only process-wide state.
// It uses plain malloc: an out-of-memory exit from ds_malloc inside the lock would deadlock the
// handler. A forked child (another pid) leaves its parent's temps alone.
static pthread_mutex_t temps_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t temps_once = PTHREAD_ONCE_INIT;
static char **temps;
static size_t ntemps, captemps;
static pid_t temps_pid;

static void temps_remove_all(void) {
    pthread_mutex_lock(&temps_lock);
    for (size_t i = 0; i < ntemps && getpid() == temps_pid; i++) unlink(temps[i]);
    pthread_mutex_unlock(&temps_lock);
}

static void temps_init(void) { atexit(temps_remove_all); }

static void temps_add(const char *tmp) {
    pthread_once(&temps_once, temps_init);
    pthread_mutex_lock(&temps_lock);
    if (ntemps == captemps) {
        size_t cap = captemps ? 2 * captemps : 8;
        char **t = realloc(temps, cap * sizeof *t);
        if (t) temps = t, captemps = cap;
    }
    char *copy = ntemps < captemps ? strdup(tmp) : NULL;
    if (copy) temps[ntemps++] = copy; // without memory, only the exit-time removal is lost
    temps_pid = getpid();
    pthread_mutex_unlock(&temps_lock);
}

static void temps_drop(const char *tmp) {
    pthread_mutex_lock(&temps_lock);
    for (size_t i = 0; i < ntemps; i++)
        if (strcmp(temps[i], tmp) == 0) {
            free(temps[i]);
            temps[i] = temps[--ntemps];
            break;
        }
    pthread_mutex_unlock(&temps_lock);
}

// Follows a chain of symlinks to the name that a write should replace. A dangling link resolves to
// its (missing) target, so the rename creates the target and the link keeps pointing at it.
static int resolve_links(const char *path, char **out, DsErr *e) {
    char *cur = ds_strdup(path);
    for (int hops = 0;; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) break;
        if (hops == 40) {
            free(cur);
            return ds_errf(e, "%s: too many levels of symbolic links", path);
        }
        char target[PATH_MAX];
        ssize_t n = readlink(cur, target, sizeof target - 1);
        if (n < 0 || (size_t)n >= sizeof target - 1) {
            int err = n < 0 ? errno : ENAMETOOLONG;
            free(cur);
            return ds_errf(e, "%s: cannot read link: %s", path, strerror(err));
        }
        target[n] = 0;
        if (target[0] == '/') {
            free(cur);
            cur = ds_strdup(target);
        } else { // relative to the folder that holds the link
            const char *slash = strrchr(cur, '/');
            size_t dir = slash ? (size_t)(slash - cur) + 1 : 0;
            char *next = ds_malloc(dir + (size_t)n + 1);
            memcpy(next, cur, dir);
            memcpy(next + dir, target, (size_t)n + 1);
            free(cur);
            cur = next;
        }
    }
    *out = cur;
    return DS_OK;
}

// The folder part of path ("." when it has none), for the directory fsync and the stale-temp scan.
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return ds_strdup(".");
    if (slash == path) return ds_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = ds_malloc(n + 1);
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

// Temp names are "NAME.tmp.PID.XXXXXX": a run killed mid-write leaves one behind, and the next run
// that writes NAME removes those whose process no longer exists. A live process's temp (another run
// writing the same output right now) is left alone.
static void remove_stale_temps(const char *path) {
    char *dir = dir_of(path);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            const char *n = de->d_name;
            if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp.", 5) != 0) continue;
            char *end;
            long pid = strtol(n + blen + 5, &end, 10);
            if (end == n + blen + 5 || *end != '.' || strlen(end + 1) != 6 || pid <= 0) continue;
            if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
            size_t dl = strlen(dir), nl = strlen(n);
            char *full = ds_malloc(dl + nl + 2);
            memcpy(full, dir, dl);
            full[dl] = '/';
            memcpy(full + dl + 1, n, nl + 1);
            unlink(full);
            free(full);
        }
        closedir(d);
    }
    free(dir);
}

// Writes straight into a device, FIFO or other non-regular file: renaming over it would replace it.
static int open_direct(AtomicFile *a, const char *path, DsErr *e) {
    int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return ds_errf(e, "%s: cannot open: %s", path, strerror(errno));
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int err = errno;
        close(fd);
        return ds_errf(e, "%s: cannot open: %s", path, strerror(err));
    }
    a->direct = ds_strdup(path);
    return DS_OK;
}

int atomic_open(AtomicFile *a, const char *path, DsErr *e) {
    memset(a, 0, sizeof *a);
    if (strcmp(path, "-") == 0) {
        a->f = stdout;
        return DS_OK;
    }
    char *target;
    if (resolve_links(path, &target, e)) return DS_ERR;
    struct stat st;
    if (stat(target, &st) == 0 && !S_ISREG(st.st_mode)) {
        free(target);
        if (S_ISDIR(st.st_mode)) return ds_errf(e, "%s: is a directory", path);
        return open_direct(a, path, e);
    }
    remove_stale_temps(target);
    size_t n = strlen(target) + 48;
    a->path = target;
    a->tmp = ds_malloc(n);
    // The temp name starts with the target's name so a leftover is easy to attribute, carries the
    // writer's pid so a later run can tell a dead writer's leftover, and ends in a random suffix.
    snprintf(a->tmp, n, "%s.tmp.%ld.XXXXXX", target, (long)getpid());
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        int err = errno;
        free(a->path);
        free(a->tmp);
        memset(a, 0, sizeof *a);
        return ds_errf(e, "%s: cannot create: %s", path, strerror(err));
    }
    temps_add(a->tmp);
    // mkstemp creates 0600; outputs get the usual permissions (0666 less the umask).
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) { /* keep 0600: still a valid output */
    }
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int err = errno;
        close(fd);
        atomic_abort(a);
        return ds_errf(e, "%s: cannot open: %s", path, strerror(err));
    }
    return DS_OK;
}

// After the rename the folder entry must reach the disk too, or a crash can bring back the old file.
static void fsync_dir(const char *path) {
    char *dir = dir_of(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); // some filesystems refuse fsync on folders; the rename itself has succeeded
        close(fd);
    }
    free(dir);
}

int atomic_commit(AtomicFile *a, DsErr *e) {
    if (!a->path) {
        const char *name = a->direct ? a->direct : "<stdout>";
        int bad = fflush(a->f) != 0 || ferror(a->f);
        int err = errno;
        if (!bad && ds_fault_write()) bad = 1, err = EIO; // the FAULT=1 build's injected write error
        if (a->direct) bad |= fclose(a->f) != 0;
        if (bad) ds_errf(e, "%s: write error: %s", name, strerror(err));
        free(a->direct);
        memset(a, 0, sizeof *a);
        return bad ? DS_ERR : DS_OK;
    }
    int bad = fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0;
    int err = errno;
    if (!bad && ds_fault_write()) bad = 1, err = EIO; // the FAULT=1 build's injected write error
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
    temps_drop(a->tmp);
    fsync_dir(a->path);
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
    return DS_OK;
}

void atomic_abort(AtomicFile *a) {
    if (a->f && a->f != stdout) fclose(a->f);
    if (a->tmp) {
        unlink(a->tmp);
        temps_drop(a->tmp);
    }
    free(a->path);
    free(a->tmp);
    free(a->direct);
    memset(a, 0, sizeof *a);
}
