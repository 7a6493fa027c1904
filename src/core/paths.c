/*
 * paths.c - tool path normalisation (see paths.h for the rules).
 *
 * How: the checks run on the raw argument in the order deepagents' validate_path() runs
 * them (traversal, then Windows drive), so the same input gets the same error text; then
 * the workspace prefix is added to relative paths and the segments are rebuilt in one pass
 * that drops empty and "." segments. The result never contains "..", so providers can
 * resolve it inside the sandbox without further thought.
 *
 * Rejected: realpath()/canonicalize_file_name() (they would resolve symlinks on the
 * *server's* filesystem, not inside the sandbox) and os.path.normpath's collapsing of
 * "a/../b" (we reject ".." outright, as the contract does).
 */
#include "core/paths.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"

bool paths_has_dotdot(const char *p, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || p[i] == '/' || p[i] == '\\') {
            if (i - start == 2 && p[start] == '.' && p[start + 1] == '.')
                return true;
            start = i + 1;
        }
    }
    return false;
}

ab_status paths_resolve(const char *path, size_t len, const char *workspace, char **out, char **why)
{
    *out = NULL;
    *why = NULL;
    if (memchr(path, '\0', len)) {
        *why = ab_strdup("Invalid path: it contains a NUL byte");
        return *why ? AB_INVAL : AB_NOMEM;
    }
    if (paths_has_dotdot(path, len) || (len && path[0] == '~')) {
        *why = ab_asprintf("Path traversal not allowed: %.*s", (int)len, path);
        return *why ? AB_INVAL : AB_NOMEM;
    }
    if (len >= 2 && isalpha((unsigned char)path[0]) && path[1] == ':') {
        *why = ab_asprintf("Windows absolute paths are not supported: %.*s. Please use virtual "
                           "paths starting with / (e.g., /workspace/file.txt)",
                           (int)len, path);
        return *why ? AB_INVAL : AB_NOMEM;
    }
    if (len > PATHS_MAX) {
        *why = ab_asprintf("Path too long: %zu bytes (the maximum is %d)", len, PATHS_MAX);
        return *why ? AB_INVAL : AB_NOMEM;
    }

    struct buf b;
    buf_init(&b, 2 * (PATHS_MAX + 1) + 2);
    ab_status rc = AB_OK;
    /* Two sources, one segment walk: the workspace for relative paths, then the argument. */
    const char *srcs[2] = {(len && path[0] == '/') ? "" : workspace, NULL};
    size_t lens[2] = {strlen(srcs[0]), len};
    srcs[1] = path;
    for (int k = 0; k < 2 && !rc; k++) {
        const char *s = srcs[k];
        size_t n = lens[k], start = 0;
        for (size_t i = 0; i <= n && !rc; i++) {
            if (i < n && s[i] != '/')
                continue;
            size_t seg = i - start;
            if (seg == 0 || (seg == 1 && s[start] == '.')) {
                /* empty or "." */
            } else if (seg == 2 && s[start] == '.' && s[start + 1] == '.') {
                /* only reachable from the configured workspace: pop a segment */
                char *slash = b.len ? memrchr(b.data, '/', b.len) : NULL;
                b.len = slash ? (size_t)(slash - b.data) : 0;
                if (b.data)
                    b.data[b.len] = '\0';
            } else if (seg > PATHS_NAME_MAX) {
                buf_cleanup(&b);
                *why = ab_asprintf("File name too long: %zu bytes (the maximum is %d)", seg,
                                   PATHS_NAME_MAX);
                return *why ? AB_INVAL : AB_NOMEM;
            } else {
                rc = buf_append_char(&b, '/');
                if (!rc)
                    rc = buf_append(&b, s + start, seg);
            }
            start = i + 1;
        }
    }
    if (!rc && b.len == 0)
        rc = buf_append_char(&b, '/');
    if (rc == AB_LIMIT || (!rc && b.len > PATHS_MAX)) {
        size_t n = b.len;
        buf_cleanup(&b);
        *why = ab_asprintf("Path too long: %zu bytes (the maximum is %d)", n, PATHS_MAX);
        return *why ? AB_INVAL : AB_NOMEM;
    }
    if (rc) {
        buf_cleanup(&b);
        return rc;
    }
    *out = buf_steal(&b, NULL);
    return *out ? AB_OK : AB_NOMEM;
}

char *paths_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    if (dl && dir[dl - 1] == '/')
        return ab_asprintf("%s%s", dir, name);
    return ab_asprintf("%s/%s", dir, name);
}

const char *paths_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

char *paths_suffix_lower(const char *path, char *out, size_t cap)
{
    /* PurePosixPath.suffix: the last "." of the final component, unless the name ends with
     * it, starts with it and has no other, or is "." / "..". */
    const char *name = paths_basename(path);
    const char *dot = strrchr(name, '.');
    out[0] = '\0';
    if (!dot || dot == name || dot[1] == '\0')
        return out;
    size_t n = strlen(dot);
    if (n >= cap)
        return out; /* no extension we know is that long */
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)dot[i]);
    return out;
}
