/*
 * http_auth.c - bearer tokens (see http_auth.h).
 *
 * The table is an array of {sha256(token), principal, from_file}. A check hashes the
 * presented token once and compares it with *every* entry using ab_consttime_equal on the
 * fixed-size digests, accumulating the match instead of returning early. Reload replaces
 * only the file's entries, under a write lock, so requests in flight see either the old or
 * the new set, never a mix.
 *
 * Rejected: comparing plaintext tokens (timing reveals the length, early exit reveals the
 * position) and keeping plaintext copies (a core dump would hold every token).
 */
#include "transport/http_auth.h"

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
#include "config/config.h"
#include "transport/http_util.h"

struct auth_entry {
    unsigned char digest[32];
    char principal[HTTP_AUTH_PRINCIPAL_MAX];
    bool from_file;
};

struct http_auth {
    pthread_rwlock_t lock;
    struct auth_entry *v;
    size_t n;
    char *token_file; /* NULL = none */
};

/* ---- token file ---- */

ab_status http_auth_parse_file_text(const char *text, size_t len, const char *name,
                                    http_auth_entry_cb cb, void *arg, struct ab_err *err)
{
    size_t off = 0;
    int line = 0;
    while (off < len) {
        line++;
        const char *s = text + off;
        const char *nl = memchr(s, '\n', len - off);
        size_t n = nl ? (size_t)(nl - s) : len - off;
        off += n + (nl ? 1 : 0);
        if (n && s[n - 1] == '\r')
            n--;
        size_t i = 0;
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == n || s[i] == '#')
            continue;
        size_t t0 = i;
        while (i < n && s[i] != ' ' && s[i] != '\t')
            i++;
        size_t tn = i - t0;
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        size_t p0 = i;
        while (i < n && s[i] != ' ' && s[i] != '\t')
            i++;
        size_t pn = i - p0;
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i < n && s[i] != '#')
            return ab_err_set(err, AB_INVAL, "%s:%d: expected 'TOKEN [PRINCIPAL]'", name, line);
        if (tn < HTTP_AUTH_MIN_TOKEN)
            return ab_err_set(err, AB_INVAL, "%s:%d: tokens must be at least %d characters", name,
                              line, HTTP_AUTH_MIN_TOKEN);
        for (size_t k = 0; k < tn; k++)
            if ((unsigned char)s[t0 + k] < 0x21 || (unsigned char)s[t0 + k] > 0x7e)
                return ab_err_set(err, AB_INVAL, "%s:%d: tokens must be visible ASCII", name, line);
        if (pn >= HTTP_AUTH_PRINCIPAL_MAX)
            return ab_err_set(err, AB_INVAL, "%s:%d: principal longer than %d characters", name,
                              line, HTTP_AUTH_PRINCIPAL_MAX - 1);
        ab_status rc = cb(arg, s + t0, tn, pn ? s + p0 : "default", pn ? pn : 7);
        if (rc)
            return ab_err_set(err, rc, "%s:%d: out of memory", name, line);
    }
    return AB_OK;
}

struct entry_list {
    struct auth_entry *v;
    size_t n, cap;
    bool from_file;
};

static ab_status entry_add(void *arg, const char *token, size_t tlen, const char *principal,
                           size_t plen)
{
    struct entry_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct auth_entry *nv = realloc(l->v, cap * sizeof(*nv));
        if (!nv)
            return AB_NOMEM;
        l->v = nv;
        l->cap = cap;
    }
    struct auth_entry *e = &l->v[l->n++];
    memset(e, 0, sizeof(*e));
    struct ab_sha256 c;
    ab_sha256_init(&c);
    ab_sha256_update(&c, token, tlen);
    ab_sha256_final(&c, e->digest);
    snprintf(e->principal, sizeof(e->principal), "%.*s", (int)plen, principal);
    e->from_file = l->from_file;
    return AB_OK;
}

static ab_status read_token_file(const char *path, struct entry_list *out, struct ab_err *err)
{
    ab_status rc = AB_OK;
    struct buf text;
    buf_init(&text, 4u << 20);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return ab_err_sys(err, ab_status_from_errno(errno), errno, "auth.token_file %s", path);
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
        AB_LOG_WARN("http.auth.token_file_mode",
                    "path=%s mode=%03o hint=\"the file is readable by others; chmod 600 it\"", path,
                    (unsigned)(st.st_mode & 0777));
    rc = buf_read_fd(&text, fd); /* wipes its bounce buffer: the file holds secrets */
    if (rc == AB_IO) {
        rc = ab_err_sys(err, AB_IO, errno, "auth.token_file %s", path);
        goto out;
    }
    if (rc) {
        rc = ab_err_set(err, AB_LIMIT, "auth.token_file %s: larger than 4 MiB", path);
        goto out;
    }
    out->from_file = true;
    rc = http_auth_parse_file_text(text.data ? text.data : "", text.len, path, entry_add, out, err);
out:
    buf_cleanup_secret(&text);
    close(fd);
    return rc;
}

/* ---- table ---- */

ab_status http_auth_new(const struct cfg_auth *cfg, struct http_auth **out, struct ab_err *err)
{
    struct http_auth *a = calloc(1, sizeof(*a));
    if (!a)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    pthread_rwlock_init(&a->lock, NULL);
    struct entry_list l = {0};
    ab_status rc = AB_OK;
    for (size_t i = 0; i < cfg->ntokens && !rc; i++) {
        const char *p = cfg->tokens[i].principal && *cfg->tokens[i].principal
                            ? cfg->tokens[i].principal
                            : "default";
        rc = entry_add(&l, cfg->tokens[i].token, strlen(cfg->tokens[i].token), p, strlen(p));
    }
    if (rc) {
        rc = ab_err_set(err, rc, "out of memory");
        goto fail;
    }
    if (cfg->token_file && *cfg->token_file) {
        a->token_file = ab_strdup(cfg->token_file);
        if ((rc = read_token_file(cfg->token_file, &l, err)))
            goto fail;
    }
    a->v = l.v;
    a->n = l.n;
    *out = a;
    return AB_OK;
fail:
    free(l.v);
    http_auth_free(a);
    return rc;
}

void http_auth_free(struct http_auth *a)
{
    if (!a)
        return;
    if (a->v)
        memset(a->v, 0, a->n * sizeof(*a->v));
    free(a->v);
    free(a->token_file);
    pthread_rwlock_destroy(&a->lock);
    free(a);
}

ab_status http_auth_reload(struct http_auth *a, struct ab_err *err)
{
    if (!a->token_file)
        return AB_OK;
    struct entry_list l = {0};
    ab_status rc = read_token_file(a->token_file, &l, err);
    if (rc) {
        free(l.v);
        return rc;
    }
    pthread_rwlock_wrlock(&a->lock);
    /* Keep the configuration's entries, replace the file's. */
    size_t keep = 0;
    for (size_t i = 0; i < a->n; i++)
        if (!a->v[i].from_file)
            keep++;
    struct auth_entry *nv = calloc(keep + l.n + 1, sizeof(*nv));
    if (!nv) {
        pthread_rwlock_unlock(&a->lock);
        free(l.v);
        return ab_err_set(err, AB_NOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < a->n; i++)
        if (!a->v[i].from_file)
            nv[k++] = a->v[i];
    if (l.n)
        memcpy(nv + k, l.v, l.n * sizeof(*nv));
    memset(a->v, 0, a->n * sizeof(*a->v));
    free(a->v);
    a->v = nv;
    a->n = k + l.n;
    size_t total = a->n;
    pthread_rwlock_unlock(&a->lock);
    memset(l.v, 0, l.n * sizeof(*l.v));
    free(l.v);
    AB_LOG_INFO("http.auth.reload", "path=%s file_tokens=%zu tokens=%zu", a->token_file, l.n,
                total);
    return AB_OK;
}

bool http_auth_enabled(struct http_auth *a)
{
    return http_auth_count(a) > 0 || a->token_file != NULL;
}

size_t http_auth_count(struct http_auth *a)
{
    pthread_rwlock_rdlock(&a->lock);
    size_t n = a->n;
    pthread_rwlock_unlock(&a->lock);
    return n;
}

enum http_auth_result http_auth_check(struct http_auth *a, const char *authorization,
                                      char *principal, size_t cap)
{
    if (cap)
        principal[0] = '\0';
    if (!http_auth_enabled(a))
        return HTTP_AUTH_OK;
    const char *tok;
    size_t len;
    if (!http_bearer_token(authorization, &tok, &len))
        return HTTP_AUTH_MISSING;
    unsigned char digest[32];
    struct ab_sha256 c;
    ab_sha256_init(&c);
    ab_sha256_update(&c, tok, len);
    ab_sha256_final(&c, digest);
    pthread_rwlock_rdlock(&a->lock);
    size_t match = (size_t)-1;
    for (size_t i = 0; i < a->n; i++) {
        bool eq = ab_consttime_equal(digest, 32, a->v[i].digest, 32);
        /* Branch-free select: keep the first match without an early exit. */
        size_t mask = (size_t)0 - (size_t)(eq && match == (size_t)-1);
        match = (match & ~mask) | (i & mask);
    }
    if (match != (size_t)-1 && cap)
        snprintf(principal, cap, "%s", a->v[match].principal);
    pthread_rwlock_unlock(&a->lock);
    return match != (size_t)-1 ? HTTP_AUTH_OK : HTTP_AUTH_INVALID;
}
