/*
 * rt_fs.c - path handling for agentbox-runtime's file endpoints.
 *
 * The python-runtime confines every file operation with
 *   realpath(join(base, path.lstrip('/'))) must start with realpath(base)
 * rt_resolve reproduces os.path.realpath's non-strict behaviour: components are resolved one
 * by one, symlinks are followed (relative ones against their directory, absolute ones from
 * '/'), '..' pops, and components that do not exist are kept lexically. That is what makes a
 * symlink pointing out of the base directory a 403, like upstream. Rejected: realpath(3),
 * which fails on paths that do not exist yet (an upload target).
 *
 * rt_unquote mirrors urllib.parse.unquote, which the python-runtime applies to paths after
 * the HTTP server already decoded them once (so "%2F" and "/" both work).
 */
#include "runtime/rt.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

#define RT_MAX_SYMLINKS 40

/* Append component c (len n) to the absolute path in b, or pop for "..". */
static ab_status push_comp(struct buf *b, const char *c, size_t n)
{
    if (n == 0 || (n == 1 && c[0] == '.'))
        return AB_OK;
    if (n == 2 && c[0] == '.' && c[1] == '.') {
        char *s = b->data;
        size_t len = b->len;
        while (len > 1 && s[len - 1] != '/')
            len--;
        if (len > 1)
            len--; /* drop the separator too, except for the root */
        b->len = len;
        s[len] = '\0';
        return AB_OK;
    }
    ab_status rc = AB_OK;
    if (b->len > 1)
        rc = buf_append_char(b, '/');
    if (!rc)
        rc = buf_append(b, c, n);
    return rc;
}

/* Resolve rest (relative components) onto the resolved absolute path in b. */
static ab_status resolve_into(struct buf *b, const char *rest, int *links)
{
    const char *p = rest;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        size_t saved = b->len;
        ab_status rc = push_comp(b, p, n);
        if (rc)
            return rc;
        p += n;
        if (n == 0 || (n == 1 && p[-1] == '.') || (n == 2 && p[-1] == '.' && p[-2] == '.'))
            continue;
        struct stat st;
        if (lstat(buf_cstr(b), &st) == 0 && S_ISLNK(st.st_mode)) {
            if (++*links > RT_MAX_SYMLINKS)
                return AB_LIMIT;
            char target[PATH_MAX];
            ssize_t tl = readlink(buf_cstr(b), target, sizeof(target) - 1);
            if (tl < 0)
                continue;
            target[tl] = '\0';
            /* Back to the directory holding the link, then follow the target from there
             * (or from the root for an absolute target). */
            b->len = saved;
            b->data[saved] = '\0';
            if (target[0] == '/') {
                buf_reset(b);
                if ((rc = buf_append_char(b, '/')))
                    return rc;
            }
            if ((rc = resolve_into(b, target, links)))
                return rc;
        }
    }
    return AB_OK;
}

ab_status rt_resolve(const char *base_real, const char *path, char **out, struct ab_err *err)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    int links = 0;
    ab_status rc = buf_append_str(&b, base_real);
    while (*path == '/')
        path++;
    if (!rc)
        rc = resolve_into(&b, path, &links);
    if (rc == AB_LIMIT) {
        /* Python's realpath gives up on loops and returns the path as is; confinement then
         * compares lexically. A loop never escapes, so treat it like a missing file. */
        buf_cleanup(&b);
        return ab_err_set(err, AB_NOTFOUND, "too many levels of symbolic links");
    }
    if (rc) {
        buf_cleanup(&b);
        return ab_err_set(err, rc, "path too long");
    }
    size_t bl = strlen(base_real);
    const char *r = buf_cstr(&b);
    /* Upstream checks startswith(base): "/app2" passes for base "/app". We are stricter
     * (component boundary), which only differs for sibling directories of the base. */
    bool inside = strcmp(r, base_real) == 0 ||
                  (strncmp(r, base_real, bl) == 0 && (r[bl] == '/' || strcmp(base_real, "/") == 0));
    if (!inside) {
        buf_cleanup(&b);
        return ab_err_set(err, AB_DENIED, "Access denied");
    }
    *out = buf_steal(&b, NULL);
    return *out ? AB_OK : ab_err_set(err, AB_NOMEM, "out of memory");
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *rt_unquote(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
            (l = hexval(s[i + 2])) >= 0) {
            o[j++] = (char)(h * 16 + l);
            i += 2;
        } else {
            o[j++] = s[i];
        }
    }
    o[j] = '\0';
    return o;
}
