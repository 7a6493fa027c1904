/*
 * state.c - files of the state directory: atomic writes, reading small files, mkdir -p and
 * a careful rm -rf.
 *
 * Metadata is written as temp file + fsync + rename(2), so a server killed at any moment
 * leaves either the old or the new file, never a torn one (the temp name is unique per
 * write, so concurrent writers never share one). One write sits on a latency-critical path,
 * the warm-pool bind (target: an acquisition well under a millisecond, while one fsync on a
 * busy disk takes 0.5 to 5 ms and sometimes far more): it skips the fsync, keeping the
 * rename's atomicity, which is all a killed *process* needs (the page cache survives it),
 * and queues the file for the flusher thread, which fsyncs it and its directory moments
 * later. Only a machine crash inside that moment can lose such a just-bound sandbox's
 * metadata; startup then skips the directory (its files stay on disk) and logs it. rm_tree deletes
 * trees that a sandbox built: it never follows symlinks (openat O_NOFOLLOW, unlinkat), restores the
 * owner's permissions on directories a command made unreadable (chmod 000), and, since a command
 * can nest directories deeper than any descriptor limit, moves directories found beyond
 * a fixed depth up to the top and deletes them in a later pass instead of recursing.
 */
#include "providers/local/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

#define RM_MAX_DEPTH   48
#define FLUSH_DELAY_MS 50

ab_status lcl__write_atomic(const char *path, const char *tmpdir, const void *data, size_t len,
                            bool sync, struct ab_err *err)
{
    char rnd[17];
    if (ab_random_hex(rnd, 8))
        return ab_err_set(err, AB_IO, "no randomness for a temporary file name");
    const char *base = strrchr(path, '/');
    char *tmp = tmpdir ? ab_asprintf("%s/%s.tmp-%s", tmpdir, base ? base + 1 : path, rnd)
                       : ab_asprintf("%s.tmp-%s", path, rnd);
    if (!tmp)
        return AB_NOMEM;
    ab_status rc = AB_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = ab_err_sys(err, AB_IO, errno, "cannot create %s", tmp);
        goto out;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = ab_err_sys(err, AB_IO, errno, "cannot write %s", tmp);
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (!rc && sync && fsync(fd) < 0)
        rc = ab_err_sys(err, AB_IO, errno, "cannot fsync %s", tmp);
    if (close(fd) < 0 && !rc)
        rc = ab_err_sys(err, AB_IO, errno, "cannot close %s", tmp);
    if (!rc && rename(tmp, path) < 0)
        rc = ab_err_sys(err, AB_IO, errno, "cannot rename %s into place", tmp);
    if (rc)
        unlink(tmp);
out:
    free(tmp);
    return rc;
}

ab_status lcl__read_small(const char *path, size_t max, char **out, size_t *len, struct ab_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return ab_err_sys(err, ab_status_from_errno(errno), errno, "cannot open %s", path);
    struct buf b;
    buf_init(&b, max);
    ab_status rc = buf_read_fd(&b, fd);
    if (rc == AB_IO)
        rc = ab_err_sys(err, AB_IO, errno, "cannot read %s", path);
    else if (rc)
        rc = ab_err_set(err, AB_LIMIT, "%s is larger than %zu bytes", path, max);
    close(fd);
    if (rc) {
        buf_cleanup(&b);
        return rc;
    }
    *out = buf_steal(&b, len);
    return *out ? AB_OK : AB_NOMEM;
}

ab_status lcl__mkdirs(const char *path, mode_t mode, struct ab_err *err)
{
    char *tmp = ab_strdup(path);
    if (!tmp)
        return AB_NOMEM;
    ab_status rc = AB_OK;
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST) {
            rc = ab_err_sys(err, AB_IO, errno, "cannot create directory %s", tmp);
            break;
        }
        *p = saved;
        if (!saved)
            break;
    }
    free(tmp);
    return rc;
}

struct rm_ctx {
    int rootfd;
    unsigned long moved;
    bool again;
    int errnum;
    char where[256];
};

static int open_dir_at(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && fchmodat(dfd, name, 0700, 0) == 0)
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd;
}

static int unlink_at(int dfd, const char *name, int flags)
{
    if (unlinkat(dfd, name, flags) == 0 || errno == ENOENT)
        return 0;
    if (errno == EACCES || errno == EPERM) {
        /* The directory itself may have lost its write bit. */
        if (fchmod(dfd, 0700) == 0 && (unlinkat(dfd, name, flags) == 0 || errno == ENOENT))
            return 0;
    }
    return -1;
}

static void rm_contents(struct rm_ctx *cx, int dfd, int depth)
{
    int dup_fd = dup(dfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        cx->errnum = errno;
        return;
    }
    /* The dup shares its file offset with dfd: without a rewind, the second pass over the
     * root would start where the first one ended and see nothing, leaving every directory
     * lifted from deep down in place (found by tests/security: adv_long_paths). */
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
            continue;
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (!S_ISDIR(st.st_mode)) {
            if (unlink_at(dfd, name, 0) < 0 && !cx->errnum) {
                cx->errnum = errno;
                snprintf(cx->where, sizeof(cx->where), "%s", name);
            }
            continue;
        }
        if (depth >= RM_MAX_DEPTH) {
            /* Too deep to recurse: move it to the top, delete it in the next pass. */
            /* The name may exist already (left by an earlier attempt, or made by the
             * sandbox itself): never replace, take the next number. */
            int r = -1;
            for (int tries = 0; tries < 1000 && r < 0; tries++) {
                char top[64];
                snprintf(top, sizeof(top), ".ab-deep-%lu", cx->moved++);
                r = renameat2(dfd, name, cx->rootfd, top, RENAME_NOREPLACE);
                if (r < 0 && errno != EEXIST)
                    break;
            }
            if (r == 0)
                cx->again = true;
            else if (!cx->errnum)
                cx->errnum = errno;
            continue;
        }
        int sub = open_dir_at(dfd, name);
        if (sub < 0) {
            if (!cx->errnum) {
                cx->errnum = errno;
                snprintf(cx->where, sizeof(cx->where), "%s", name);
            }
            continue;
        }
        rm_contents(cx, sub, depth + 1);
        close(sub);
        if (unlink_at(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOTEMPTY && !cx->errnum) {
            cx->errnum = errno;
            snprintf(cx->where, sizeof(cx->where), "%s", name);
        }
    }
    closedir(d);
}

ab_status lcl__rm_tree(const char *path, struct ab_err *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? AB_OK : ab_err_sys(err, AB_IO, errno, "cannot stat %s", path);
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0 && errno != ENOENT)
            return ab_err_sys(err, AB_IO, errno, "cannot remove %s", path);
        return AB_OK;
    }
    struct rm_ctx cx = {.rootfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
    if (cx.rootfd < 0 && errno == EACCES && chmod(path, 0700) == 0)
        cx.rootfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cx.rootfd < 0)
        return ab_err_sys(err, AB_IO, errno, "cannot open %s", path);
    /* Each pass removes everything up to RM_MAX_DEPTH and lifts what is deeper; a tree of
     * depth D needs about D / RM_MAX_DEPTH passes. The bound only stops a runaway loop. */
    for (int pass = 0; pass < 100000; pass++) {
        cx.again = false;
        rm_contents(&cx, cx.rootfd, 0);
        if (!cx.again || cx.errnum)
            break;
    }
    close(cx.rootfd);
    if (rmdir(path) < 0 && errno != ENOENT) {
        int e = cx.errnum ? cx.errnum : errno;
        return ab_err_sys(err, AB_IO, e, "cannot remove %s%s%s", path, cx.where[0] ? "/" : "",
                          cx.where);
    }
    return AB_OK;
}

/* ---- the flusher ---- */

struct lcl_flusher {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char **q;
    size_t n, cap;
    bool stopping;
    pthread_t thread;
};

static void fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        fsync(fd); /* best effort: the path may be gone already (destroyed meanwhile) */
        close(fd);
    }
}

static void *flusher_main(void *arg)
{
    struct lcl_flusher *fl = arg;
    pthread_mutex_lock(&fl->lock);
    for (;;) {
        /* Wake on a timer rather than on every add: a wakeup would preempt the thread that
         * queued the file, which is on an acquisition's critical path. */
        while (!fl->n && !fl->stopping)
            pthread_cond_wait(&fl->cond, &fl->lock);
        if (!fl->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += FLUSH_DELAY_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&fl->cond, &fl->lock, &ts);
        }
        if (!fl->n && fl->stopping)
            break;
        char **batch = fl->q;
        size_t n = fl->n;
        fl->q = NULL;
        fl->n = fl->cap = 0;
        pthread_mutex_unlock(&fl->lock);
        for (size_t i = 0; i < n; i++) {
            fsync_path(batch[i], O_RDONLY);
            char *dir = ab_strdup(batch[i]);
            if (dir)
                fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY);
            free(dir);
            free(batch[i]);
        }
        free(batch);
        pthread_mutex_lock(&fl->lock);
    }
    pthread_mutex_unlock(&fl->lock);
    return NULL;
}

ab_status lcl__flusher_new(struct lcl_flusher **out, struct ab_err *err)
{
    struct lcl_flusher *fl = calloc(1, sizeof(*fl));
    if (!fl)
        return AB_NOMEM;
    pthread_mutex_init(&fl->lock, NULL);
    pthread_cond_init(&fl->cond, NULL);
    int e = pthread_create(&fl->thread, NULL, flusher_main, fl);
    if (e) {
        pthread_cond_destroy(&fl->cond);
        pthread_mutex_destroy(&fl->lock);
        free(fl);
        return ab_err_sys(err, AB_IO, e, "cannot start the flusher thread");
    }
    *out = fl;
    return AB_OK;
}

void lcl__flusher_add(struct lcl_flusher *fl, const char *path)
{
    char *dup = ab_strdup(path);
    if (!dup)
        return;
    pthread_mutex_lock(&fl->lock);
    if (fl->n == fl->cap) {
        size_t cap = fl->cap ? fl->cap * 2 : 16;
        char **nq = realloc(fl->q, cap * sizeof(char *));
        if (!nq) {
            pthread_mutex_unlock(&fl->lock);
            free(dup);
            return;
        }
        fl->q = nq;
        fl->cap = cap;
    }
    fl->q[fl->n++] = dup;
    if (fl->n == 1)
        pthread_cond_signal(&fl->cond); /* the thread then waits FLUSH_DELAY_MS */
    pthread_mutex_unlock(&fl->lock);
}

void lcl__flusher_free(struct lcl_flusher *fl)
{
    if (!fl)
        return;
    pthread_mutex_lock(&fl->lock);
    fl->stopping = true;
    pthread_cond_signal(&fl->cond);
    pthread_mutex_unlock(&fl->lock);
    pthread_join(fl->thread, NULL);
    pthread_cond_destroy(&fl->cond);
    pthread_mutex_destroy(&fl->lock);
    free(fl->q);
    free(fl);
}
