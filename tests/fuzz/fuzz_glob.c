/*
 * fuzz_glob.c - the glob matcher (core/glob) used by the glob tool and grep's filter.
 *
 * Input: a pattern line, then relative paths, one per line. Besides "no crash, no leak, no
 * hang" (libFuzzer's -timeout catches a matcher that goes exponential), the target checks
 * the matcher against two independent references, on the inputs where they apply:
 *   - segments: glob_fnmatch equals glibc fnmatch(3) (FNM_NOESCAPE, no FNM_PATHNAME) on
 *     printable ASCII without '[' (bracket rules differ between Python and POSIX);
 *   - whole paths: glob_match equals a naive recursive reading of the rules in glob.h
 *     (basename patterns, anchored segments, "**" -- zero or more segments, one or more
 *     when it ends the pattern --, the dot rule) for patterns without
 *     braces, brackets or a trailing '/', and normalised paths.
 */
#include <fnmatch.h>
#include <stdbool.h>
#include <string.h>

#include "core/glob.h"
#include "fuzz.h"

static bool plain_ascii(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '[')
            return false;
    return true;
}

/* ---- the reference ---- */

#define REF_MAX_SEGS 32

static size_t split(char *s, char **segs)
{
    size_t n = 0;
    for (char *tok = strtok(s, "/"); tok && n < REF_MAX_SEGS; tok = strtok(NULL, "/"))
        segs[n++] = tok;
    return n;
}

static bool ref_seg(const char *pat, const char *name)
{
    if (name[0] == '.' && pat[0] != '.')
        return false;
    return fnmatch(pat, name, FNM_NOESCAPE) == 0;
}

static bool ref_rec(char **p, size_t np, char **r, size_t nr)
{
    if (np == 0)
        return nr == 0;
    if (strcmp(p[0], "**") == 0) {
        if (np == 1) {
            /* A final "**" stands for the files below: one or more segments (the 0.7.8
             * helper's rule: a pattern ending in "**" never names the directory itself). */
            for (size_t i = 0; i < nr; i++)
                if (r[i][0] == '.')
                    return false;
            return nr > 0;
        }
        if (ref_rec(p + 1, np - 1, r, nr))
            return true;
        return nr > 0 && r[0][0] != '.' && ref_rec(p, np, r + 1, nr - 1);
    }
    return nr > 0 && ref_seg(p[0], r[0]) && ref_rec(p + 1, np - 1, r + 1, nr - 1);
}

static bool ref_match(const char *pattern, const char *relpath)
{
    if (!strchr(pattern, '/')) {
        const char *slash = strrchr(relpath, '/');
        return ref_seg(pattern, slash ? slash + 1 : relpath);
    }
    char pbuf[GLOB_PATTERN_MAX + 1], rbuf[4096];
    snprintf(pbuf, sizeof(pbuf), "%s", pattern);
    snprintf(rbuf, sizeof(rbuf), "%s", relpath);
    char *ps[REF_MAX_SEGS], *rs[REF_MAX_SEGS];
    size_t np = split(pbuf, ps), nr = split(rbuf, rs);
    return ref_rec(ps, np, rs, nr);
}

static bool count_segs_ok(const char *s)
{
    size_t n = 1;
    for (; *s; s++)
        n += *s == '/';
    return n < REF_MAX_SEGS;
}

/* A normalised relative path: non-empty segments, no "." or "..". */
static bool normalised(const char *s)
{
    if (!*s || s[0] == '/' || s[strlen(s) - 1] == '/' || strstr(s, "//"))
        return false;
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, "/");
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
        if (*p)
            p++;
    }
    return true;
}

static bool ref_applies(const char *pattern)
{
    if (!plain_ascii(pattern) || strpbrk(pattern, "{}") || !count_segs_ok(pattern))
        return false;
    size_t n = strlen(pattern);
    return n > 0 && pattern[n - 1] != '/';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *nl = memchr(text, '\n', size);
    if (nl)
        *nl = '\0';
    const char *pattern = text;
    char *paths = nl ? nl + 1 : NULL;
    size_t plen = nl ? (size_t)(nl - text) : size;

    /* The segment matcher against fnmatch(3). */
    if (strlen(pattern) == plen && plen < 256 && plain_ascii(pattern)) {
        for (char *p = paths, *next; p && *p; p = next) {
            next = strchr(p, '\n');
            if (next)
                *next++ = '\0';
            if (plain_ascii(p)) {
                bool ours = glob_fnmatch(pattern, p);
                bool libc = fnmatch(pattern, p, FNM_NOESCAPE) == 0;
                FUZZ_CHECK(ours == libc, "glob_fnmatch('%s', '%s') = %d, fnmatch = %d", pattern,
                           p, ours, libc);
            }
            if (next)
                next[-1] = '\n';
        }
    }

    struct glob_pat *g = NULL;
    struct ab_err err;
    ab_status rc = glob_compile(pattern, &g, &err);
    if (rc) {
        FUZZ_CHECK(rc == AB_INVAL || rc == AB_LIMIT || rc == AB_NOMEM, "status %d", rc);
        FUZZ_CHECK(err.msg[0], "an error without a message");
        free(text);
        return 0;
    }
    FUZZ_CHECK(glob_alternatives(g) >= 1 && glob_alternatives(g) <= GLOB_MAX_EXPANSIONS,
               "%zu alternatives", glob_alternatives(g));
    FUZZ_CHECK(glob_is_basename(g) == !strchr(pattern, '/'), "basename flag");
    bool ref = strlen(pattern) == plen && ref_applies(pattern);
    bool dot_dirs = glob_may_match_in_dot_dirs(g);
    for (char *p = paths, *next; p && *p; p = next) {
        next = strchr(p, '\n');
        if (next)
            *next++ = '\0';
        bool m = glob_match(g, p);
        if (ref && plain_ascii(p) && normalised(p) && count_segs_ok(p)) {
            bool want = ref_match(pattern, p);
            FUZZ_CHECK(m == want, "glob_match('%s', '%s') = %d, the rules say %d", pattern, p,
                       m, want);
        }
        /* A walk skips dot directories when dot_dirs is false: no match may lie there. */
        if (m && !dot_dirs && normalised(p)) {
            const char *q = p;
            while (*q) {
                size_t n = strcspn(q, "/");
                if (q[n] == '/')
                    FUZZ_CHECK(q[0] != '.', "'%s' matches '%s' inside a dot directory, but "
                                            "the pattern says walks may skip them",
                               p, pattern);
                q += n;
                if (*q)
                    q++;
            }
        }
    }
    glob_free(g);
    free(text);
    return 0;
}
