/*
 * router_token.c - the sandbox-router's bearer token (k8s.router_token or
 * k8s.router_token_file), for the data plane's requests through a router.
 *
 * The shipped Python router refuses to start without ROUTER_AUTH_TOKEN (unless told to run
 * unauthenticated) and then wants `Authorization: Bearer <token>` on every proxied request,
 * answering 401 {"detail": "Missing or invalid Authorization header."} or {"detail":
 * "Invalid token."} otherwise (agent-sandbox.md section 3.1). The token is a secret: it is
 * never logged nor put in an error text, and only router-bound requests carry it (never a
 * pod IP, never the API server: the Kubernetes client has credentials of its own).
 *
 * A token file is checked with stat(2) before each request and re-read when its identity
 * (device, inode, size, mtime, ctime) changed: a Kubernetes Secret volume swaps a symlink
 * (new inode), an editor or `echo > file` changes mtime/ctime. Timestamps are as coarse as
 * the kernel's clock tick, so a rewrite of the same length in the same tick looks unchanged:
 * a 401 from the router therefore forces one re-read (k8s_rtok_header with force), and the
 * request is repeated once when that produced another token. A file that becomes unreadable
 * after it was read keeps the last good token (with a warning): a rotation in flight must
 * not fail every request.
 *
 * Rejected: inotify (one more fd and thread for a file that changes a few times a year, and
 * it misses the symlink swap unless the directory is watched); re-reading on every request
 * (a read per tool call for nothing).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "providers/k8s/k8s_internal.h"

#define RTOK_MAX_FILE 65536

/* RFC 9110 section 5.5: a field value is visible ASCII, spaces and tabs; a token also must
 * not hold spaces (the router takes everything after "Bearer "), and CR/LF would end the
 * header line (request smuggling). So: printable ASCII without spaces. */
static ab_status check_token(const char *tok, size_t n, const char *source, struct ab_err *err)
{
    if (n == 0)
        return ab_err_set(err, AB_INVAL,
                          "%s is empty: put the sandbox-router's token "
                          "(its ROUTER_AUTH_TOKEN) there",
                          source);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)tok[i];
        if (c < 0x21 || c > 0x7e)
            return ab_err_set(err, AB_INVAL,
                              "%s: the token has a byte that an HTTP header cannot carry (0x%02x "
                              "at offset %zu); tokens are printable ASCII without spaces",
                              source, c, i);
    }
    return AB_OK;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Read and check the file; *out is new (secret), *st its identity. Caller holds t->lock. */
static ab_status read_token_file(struct k8s_rtok *t, char **out, struct stat *st,
                                 struct ab_err *err)
{
    char source[300];
    snprintf(source, sizeof(source), "k8s.router_token_file %s", t->file);
    int fd = open(t->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return ab_err_sys(err, ab_status_from_errno(errno), errno, "cannot read %s", source);
    struct buf b;
    buf_init(&b, RTOK_MAX_FILE);
    ab_status rc = AB_OK;
    if (fstat(fd, st) < 0) {
        rc = ab_err_sys(err, AB_IO, errno, "cannot read %s", source);
        goto out;
    }
    if ((rc = buf_read_fd(&b, fd))) {
        rc = rc == AB_IO ? ab_err_sys(err, AB_IO, errno, "cannot read %s", source)
                         : ab_err_set(err, rc, "%s is larger than %d bytes: is it the token?",
                                      source, RTOK_MAX_FILE);
        goto out;
    }
    /* `kubectl create secret --from-file` and editors keep a final newline: trim both ends. */
    const char *s = buf_cstr(&b);
    size_t lo = 0, hi = b.len;
    while (lo < hi && strchr(" \t\r\n", s[lo]))
        lo++;
    while (hi > lo && strchr(" \t\r\n", s[hi - 1]))
        hi--;
    if ((rc = check_token(s + lo, hi - lo, source, err)))
        goto out;
    *out = ab_strndup(s + lo, hi - lo);
    if (!*out)
        rc = ab_err_set(err, AB_NOMEM, "out of memory");
out:
    buf_cleanup_secret(&b);
    close(fd);
    return rc;
}

ab_status k8s_rtok_init(struct k8s_rtok *t, const char *value, const char *file, struct ab_err *err)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    bool has_value = value && *value, has_file = file && *file;
    if (has_value && has_file)
        return ab_err_set(err, AB_INVAL,
                          "k8s.router_token and k8s.router_token_file are both "
                          "set (AGENTBOX_K8S_ROUTER_TOKEN counts as the first): "
                          "keep one");
    if (has_value) {
        ab_status rc = check_token(value, strlen(value), "k8s.router_token", err);
        if (rc)
            return rc;
        t->value = ab_strdup(value);
        return t->value ? AB_OK : ab_err_set(err, AB_NOMEM, "out of memory");
    }
    if (!has_file)
        return AB_OK;
    t->file = ab_strdup(file);
    if (!t->file)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    /* Read now: a file that is missing at start is a configuration error, said at once. */
    return read_token_file(t, &t->value, &t->id, err);
}

void k8s_rtok_cleanup(struct k8s_rtok *t)
{
    ab_secret_free(t->value);
    free(t->file);
    t->value = t->file = NULL;
    pthread_mutex_destroy(&t->lock);
}

bool k8s_rtok_configured(const struct k8s_rtok *t)
{
    return t->value != NULL || t->file != NULL;
}

const char *k8s_rtok_source(const struct k8s_rtok *t, char *tmp, size_t cap)
{
    if (t->file)
        snprintf(tmp, cap, "k8s.router_token_file %s", t->file);
    else
        snprintf(tmp, cap, "k8s.router_token / AGENTBOX_K8S_ROUTER_TOKEN");
    return tmp;
}

ab_status k8s_rtok_header(struct k8s_rtok *t, bool force, char **hdr, bool *changed,
                          struct ab_err *err)
{
    *hdr = NULL;
    if (changed)
        *changed = false;
    if (!k8s_rtok_configured(t))
        return AB_OK;
    ab_status rc = AB_OK;
    pthread_mutex_lock(&t->lock);
    struct stat st;
    if (t->file && (force || stat(t->file, &st) != 0 || !same_file(&st, &t->id))) {
        char *fresh = NULL;
        struct ab_err rerr;
        ab_err_clear(&rerr);
        rc = read_token_file(t, &fresh, &st, &rerr);
        if (rc == AB_OK) {
            bool differs = !t->value || strcmp(fresh, t->value) != 0;
            ab_secret_free(t->value);
            t->value = fresh;
            t->id = st;
            t->warned = false;
            if (differs) {
                if (changed)
                    *changed = true;
                AB_LOG_INFO("k8s.router_token_reloaded", "file=%s", t->file);
            }
        } else if (t->value) {
            /* Keep the last good token; say why once per change of the file. */
            if (!t->warned)
                AB_LOG_WARN("k8s.router_token_unreadable",
                            "file=%s error=\"%s\" hint=\"the last token read is used\"", t->file,
                            rerr.msg);
            t->warned = true;
            rc = AB_OK;
        } else if (err) {
            *err = rerr;
        }
    }
    if (!rc) {
        *hdr = ab_asprintf("Authorization: Bearer %s", t->value);
        if (!*hdr)
            rc = ab_err_set(err, AB_NOMEM, "out of memory");
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void k8s_rtok_header_free(char *hdr)
{
    ab_secret_free(hdr);
}
