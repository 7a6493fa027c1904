/*
 * audit.c - see audit.h. Rotation renames FILE.(k) -> FILE.(k+1) down to FILE -> FILE.1 and
 * reopens FILE; a failed rotation keeps appending to the current file rather than losing
 * lines. Write errors are counted and logged once, never fatal: auditing must not take the
 * server down.
 */
#include "core/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"

struct audit {
    pthread_mutex_t lock;
    char *path; /* NULL for stderr */
    int fd;
    uint64_t size;
    uint64_t max_bytes;
    int keep;
    bool warned;
};

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

ab_status audit_open(const char *path, uint64_t max_bytes, int keep, struct audit **out,
                     struct ab_err *err)
{
    struct audit *a = calloc(1, sizeof(*a));
    if (!a)
        return AB_NOMEM;
    pthread_mutex_init(&a->lock, NULL);
    a->max_bytes = max_bytes;
    a->keep = keep < 0 ? 0 : keep;
    if (strcmp(path, "-") == 0) {
        a->fd = 2;
    } else {
        a->path = ab_strdup(path);
        a->fd = open_file(path);
        if (a->fd < 0) {
            ab_status rc = ab_err_sys(err, AB_IO, errno, "audit.path: cannot open %s", path);
            free(a->path);
            free(a);
            return rc;
        }
        struct stat st;
        if (fstat(a->fd, &st) == 0)
            a->size = (uint64_t)st.st_size;
    }
    *out = a;
    return AB_OK;
}

void audit_close(struct audit *a)
{
    if (!a)
        return;
    if (a->path && a->fd >= 0)
        close(a->fd);
    free(a->path);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void audit_digest(const json_t *args, char out[72])
{
    char *canon = args ? json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    char hex[65];
    ab_sha256_hex(canon ? canon : "null", canon ? strlen(canon) : 4, hex);
    snprintf(out, 72, "sha256:%s", hex);
    free(canon);
}

static void rotate_locked(struct audit *a)
{
    char from[4200], to[4200];
    for (int k = a->keep - 1; k >= 1; k--) {
        snprintf(from, sizeof(from), "%s.%d", a->path, k);
        snprintf(to, sizeof(to), "%s.%d", a->path, k + 1);
        rename(from, to);
    }
    if (a->keep > 0) {
        snprintf(to, sizeof(to), "%s.1", a->path);
        if (rename(a->path, to) != 0)
            return;
    } else if (unlink(a->path) != 0) {
        return;
    }
    int fd = open_file(a->path);
    if (fd < 0)
        return;
    close(a->fd);
    a->fd = fd;
    a->size = 0;
}

void audit_write(struct audit *a, const struct audit_record *r)
{
    if (!a)
        return;
    char when[40];
    ab_format_time(r->time_ms, when, sizeof(when));
    char digest[72];
    audit_digest(r->args, digest);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:f,s:s}", "time", when,
                          "principal", r->principal ? r->principal : "", "session",
                          r->session ? r->session : "", "thread", r->thread ? r->thread : "",
                          "sandbox", r->sandbox ? r->sandbox : "", "tool", r->tool ? r->tool : "",
                          "args_digest", digest, "result", r->result ? r->result : "",
                          "bytes", (json_int_t)r->bytes, "duration_ms",
                          (double)r->duration_us / 1000.0, "decision",
                          r->decision ? r->decision : "allow");
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!line)
        return;
    size_t len = strlen(line);
    line[len] = '\n'; /* the NUL becomes the terminator; written as one unit */
    pthread_mutex_lock(&a->lock);
    if (a->path && a->max_bytes && a->size + len + 1 > a->max_bytes && a->size > 0)
        rotate_locked(a);
    ssize_t w = write(a->fd, line, len + 1);
    if (w == (ssize_t)(len + 1)) {
        a->size += len + 1;
    } else if (!a->warned) {
        a->warned = true;
        AB_LOG_ERROR("audit.write_failed", "path=%s errno=%d", a->path ? a->path : "-", errno);
    }
    pthread_mutex_unlock(&a->lock);
    free(line);
}
