/*
 * fsops_search.c - the grep and glob tools.
 *
 * Both walk the search root with sbx_walk() (the provider's walk, or core's list_dir
 * fallback) under a time budget and an entry cap, filter with the glob matcher of glob.c,
 * and sort what they keep by path so every provider returns the same files in the same
 * order. grep then runs sbx_search() (provider search or core fallback: literal bytes, line
 * by line, binary files skipped) with the match cap + 1 so it can tell "exactly at the cap"
 * from "more exist", as deepagents' `head -n max+1` does.
 *
 * Texts: deepagents 0.7.8. grep: format_grep_matches (files_with_matches / content / count),
 * "No matches found", the 80,000-character cap with TRUNCATION_GUIDANCE, then the truncation
 * note or the regex hint; errors "Path '{path}': {detail}" passed through without "Error: ".
 * glob: the Python list repr or "No files found", the truncation note; errors "Error: Path
 * '{path}': {code}".
 *
 * Where the BaseSandbox helpers differ by route (grep --include versus the Python glob
 * route), we apply one rule set, the glob tool's, to grep's `glob` filter as well: braces
 * work everywhere and leading-dot names need a leading-dot pattern. A missing grep path is an
 * error ("path_not_found") rather than deepagents' silent "No matches found" (its own code
 * calls that a known limitation).
 */
#include "core/fsops_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "core/glob.h"
#include "core/paths.h"

#define SEARCH_WALK_MAX_ENTRIES 500000
#define GLOB_TIME_BUDGET_MS     5000  /* the glob helper's TIME_BUDGET */
#define GREP_TIME_BUDGET_MS     30000 /* below deepagents' 35 s async grep timeout */

#define GREP_TRUNCATION_NOTE                                                                       \
    "Note: the search stopped early (it hit its time limit or the maximum match count). The "      \
    "matches above are valid but incomplete. Narrow the search (a more specific pattern or a "     \
    "narrower path), or raise max_count, to see the rest."

#define GLOB_TRUNCATION_NOTE                                                                       \
    "Note: the search stopped early because it hit its time limit. The paths above are valid "     \
    "but incomplete. Narrow the search (a more specific pattern or a narrower path) to see "       \
    "the rest."

#define GREP_REGEX_HINT                                                                            \
    "Note: grep matches literal text, not regex, so characters like `|`, `.*`, and `\\.` are "     \
    "searched verbatim. Search for the literal text you need instead; for `|` alternation, "       \
    "run a separate search per alternative."

/* Files selected for a search: absolute paths, sorted. */
struct file_list {
    char **v;
    size_t n, cap;
    bool truncated;
};

static void file_list_free(struct file_list *fl)
{
    for (size_t i = 0; i < fl->n; i++)
        free(fl->v[i]);
    free(fl->v);
    memset(fl, 0, sizeof(*fl));
}

static ab_status file_list_push(struct file_list *fl, char *s)
{
    if (!s)
        return AB_NOMEM;
    if (fl->n == fl->cap) {
        size_t cap = fl->cap ? fl->cap * 2 : 64;
        char **nv = realloc(fl->v, cap * sizeof(*nv));
        if (!nv) {
            free(s);
            return AB_NOMEM;
        }
        fl->v = nv;
        fl->cap = cap;
    }
    fl->v[fl->n++] = s;
    return AB_OK;
}

static int walk_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sbx_walk_entry *)a)->relpath,
                  ((const struct sbx_walk_entry *)b)->relpath);
}

/* Walk root and keep the files the filter accepts. follow_file_links: also keep symlinks to
 * regular files (glob does, like os.path.isfile; grep -r does not). */
static ab_status collect_files(const struct fsops_env *env, const char *root,
                               const struct glob_pat *g, bool follow_file_links, int64_t budget_ms,
                               struct file_list *fl, struct ab_err *err)
{
    struct sbx_walk_req req = {
        .root = root,
        .max_entries = SEARCH_WALK_MAX_ENTRIES,
        .deadline_ms = ab_mono_ms() + budget_ms,
        .skip_dot_dirs = g && !glob_may_match_in_dot_dirs(g),
        .cancel = env->cancel,
    };
    struct sbx_walk_entry *ents = NULL;
    size_t n = 0;
    bool truncated = false;
    ab_status rc = sbx_walk(env->p, env->h, &req, &ents, &n, &truncated, err);
    if (rc)
        return rc;
    if (ab_cancel_fired(env->cancel)) {
        sbx_walk_entries_free(ents, n);
        return AB_CANCELLED;
    }
    fl->truncated = truncated;
    if (n)
        qsort(ents, n, sizeof(*ents), walk_entry_cmp);
    for (size_t i = 0; i < n && !rc; i++) {
        const struct sbx_walk_entry *e = &ents[i];
        bool file =
            e->st.type == SBX_FT_FILE ||
            (follow_file_links && e->st.type == SBX_FT_SYMLINK && e->st.target_type == SBX_FT_FILE);
        if (!file || (g && !glob_match(g, e->relpath)))
            continue;
        rc = file_list_push(fl, paths_join(root, e->relpath));
    }
    sbx_walk_entries_free(ents, n);
    return rc;
}

/* ---- grep ---- */

/* _REGEX_SIGNAL_RE: \| or .* or .+ or a backslash before one of .wWdDsSbB(){}[]|+*?^$ */
static bool looks_like_regex(const char *p, size_t len)
{
    static const char escaped[] = ".wWdDsSbB(){}[]|+*?^$";
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '|')
            return true;
        if (p[i] == '.' && i + 1 < len && (p[i + 1] == '*' || p[i + 1] == '+'))
            return true;
        if (p[i] == '\\' && i + 1 < len && p[i + 1] && strchr(escaped, p[i + 1]))
            return true;
    }
    return false;
}

struct grep_file {
    const char *path; /* sanitized display path */
    size_t first;     /* index of its first match (matches are grouped by file) */
    size_t count;
};

static int grep_file_cmp(const void *a, const void *b)
{
    return strcmp(((const struct grep_file *)a)->path, ((const struct grep_file *)b)->path);
}

static ab_status format_matches(struct buf *out, const struct sbx_match *m, char **disp, size_t n,
                                enum fsops_grep_mode mode)
{
    if (n == 0)
        return buf_append_str(out, "No matches found");
    /* Group by path (matches of one file are contiguous: files are searched in order). */
    struct grep_file *files = calloc(n, sizeof(*files));
    if (!files)
        return AB_NOMEM;
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        if (nf && strcmp(files[nf - 1].path, disp[i]) == 0) {
            files[nf - 1].count++;
            continue;
        }
        files[nf].path = disp[i];
        files[nf].first = i;
        files[nf].count = 1;
        nf++;
    }
    qsort(files, nf, sizeof(*files), grep_file_cmp);
    ab_status rc = AB_OK;
    for (size_t f = 0; f < nf && !rc; f++) {
        if (f)
            rc = buf_append_char(out, '\n');
        if (rc)
            break;
        switch (mode) {
        case FSOPS_GREP_FILES_WITH_MATCHES:
            rc = buf_append_str(out, files[f].path);
            break;
        case FSOPS_GREP_COUNT:
            rc = buf_printf(out, "%s: %zu", files[f].path, files[f].count);
            break;
        case FSOPS_GREP_CONTENT:
            rc = buf_printf(out, "%s:", files[f].path);
            for (size_t k = 0; k < files[f].count && !rc; k++) {
                const struct sbx_match *x = &m[files[f].first + k];
                rc = buf_printf(out, "\n  %lld: ", (long long)x->line);
                if (!rc)
                    rc = fsops__utf8_sanitize(out, x->text, strlen(x->text));
            }
            break;
        }
    }
    free(files);
    return rc;
}

ab_status fsops_grep(const struct fsops_env *env, struct fsops_str pattern, struct fsops_str path,
                     struct fsops_str glob, enum fsops_grep_mode mode, int64_t max_count,
                     struct fsops_result *res, struct ab_err *err)
{
    const struct cfg_tools *lim = fsops__limits(env);
    char *abs = NULL;
    char *globz = NULL;
    struct glob_pat *g = NULL;
    struct file_list fl = {0};
    struct sbx_match *m = NULL;
    size_t nm = 0;
    char **disp = NULL;
    ab_status rc = fsops__open(env, path, true, FSOPS_ACCESS_READ, &abs, res);
    if (rc || !abs)
        goto out;
    if (max_count <= 0)
        max_count = lim->grep_max_count > 0 ? lim->grep_max_count : 1000;

    struct sbx_stat st;
    struct ab_err perr;
    ab_status src = fsops__stat(env, abs, &st, &perr);
    if (src) {
        rc = fsops__infra_pass(src, &perr, err);
        if (!rc)
            rc = fsops__fail(res, "Path '%s': %s", abs,
                             src == AB_NOTFOUND || src == AB_NOTDIR ? "path_not_found"
                             : src == AB_DENIED                     ? "permission_denied"
                                                                    : ab_status_name(src));
        goto out;
    }
    if (glob.ptr && glob.len) { /* `if glob:` - an empty filter is no filter */
        globz = ab_strndup(glob.ptr, glob.len);
        if (!globz) {
            rc = AB_NOMEM;
            goto out;
        }
        struct ab_err gerr;
        ab_status grc = memchr(glob.ptr, '\0', glob.len)
                            ? ab_err_set(&gerr, AB_INVAL, "invalid_pattern")
                            : glob_compile(globz, &g, &gerr);
        if (grc == AB_NOMEM) {
            rc = grc;
            goto out;
        }
        if (grc) {
            rc = fsops__fail(res, "Path '%s': %s", abs, gerr.msg);
            goto out;
        }
    }
    if (st.target_type == SBX_FT_DIR) {
        ab_err_clear(&perr);
        src = collect_files(env, abs, g, false, GREP_TIME_BUDGET_MS, &fl, &perr);
        if (src) {
            rc = fsops__infra_pass(src, &perr, err);
            if (!rc)
                rc = fsops__fail(res, "Path '%s': %s", abs,
                                 src == AB_DENIED ? "permission_denied" : ab_status_name(src));
            goto out;
        }
    } else if (st.target_type == SBX_FT_FILE) {
        /* A single file: a basename filter still applies (grep --include), a path filter
         * does not (the helper ignores it for a file). */
        if (!g || !glob_is_basename(g) || glob_match(g, paths_basename(abs))) {
            rc = file_list_push(&fl, ab_strdup(abs));
            if (rc)
                goto out;
        }
    }
    bool truncated = fl.truncated;
    if (fl.n) {
        struct sbx_search_req req = {
            .paths = (const char *const *)fl.v,
            .npaths = fl.n,
            .literal = pattern.ptr ? pattern.ptr : "",
            .literal_len = pattern.len,
            .max_matches = (size_t)max_count,
            .deadline_ms = ab_mono_ms() + GREP_TIME_BUDGET_MS,
            .cancel = env->cancel,
        };
        bool stopped = false;
        ab_err_clear(&perr);
        src = sbx_search(env->p, env->h, &req, &m, &nm, &stopped, &perr);
        if (src) {
            if (err)
                *err = perr;
            rc = fsops__infra(src) ? src : AB_OK;
            if (!rc)
                rc = fsops__fail(res, "Path '%s': %s", abs, perr.msg);
            goto out;
        }
        if (ab_cancel_fired(env->cancel)) {
            rc = AB_CANCELLED;
            goto out;
        }
        truncated = truncated || stopped;
    }
    /* A pattern with a newline can never match one line (grep -e would split it into
     * several patterns; the literal contract cannot). */
    if (memchr(pattern.ptr ? pattern.ptr : "", '\n', pattern.len)) {
        sbx_matches_free(m, nm);
        m = NULL;
        nm = 0;
    }
    disp = calloc(nm ? nm : 1, sizeof(char *));
    json_t *arr = json_array();
    res->structured = json_pack("{s:o,s:b}", "matches", arr, "truncated", truncated);
    if (!disp || !arr || !res->structured) {
        rc = AB_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < nm; i++) {
        struct buf b;
        buf_init(&b, (size_t)-1);
        rc = fsops__utf8_sanitize(&b, m[i].path, strlen(m[i].path));
        disp[i] = rc ? NULL : buf_steal(&b, NULL);
        buf_cleanup(&b);
        json_t *e = disp[i]
                        ? json_pack("{s:s,s:I,s:o}", "path", disp[i], "line", (json_int_t)m[i].line,
                                    "text", fsops__json_str(m[i].text, strlen(m[i].text)))
                        : NULL;
        if (!e || json_array_append_new(arr, e)) {
            rc = AB_NOMEM;
            goto out;
        }
    }
    rc = format_matches(&res->text, m, disp, nm, mode);
    if (!rc)
        rc = fsops__truncate_text(&res->text);
    if (!rc && truncated)
        rc = buf_append_str(&res->text, "\n\n" GREP_TRUNCATION_NOTE);
    else if (!rc && nm == 0 && looks_like_regex(pattern.ptr ? pattern.ptr : "", pattern.len))
        rc = buf_append_str(&res->text, "\n\n" GREP_REGEX_HINT);
out:
    if (disp)
        for (size_t i = 0; i < nm; i++)
            free(disp[i]);
    free(disp);
    sbx_matches_free(m, nm);
    file_list_free(&fl);
    glob_free(g);
    free(globz);
    free(abs);
    return rc;
}

/* ---- glob ---- */

ab_status fsops_glob(const struct fsops_env *env, struct fsops_str pattern, struct fsops_str path,
                     struct fsops_result *res, struct ab_err *err)
{
    const struct cfg_tools *lim = fsops__limits(env);
    char *abs = NULL, *patz = NULL;
    struct glob_pat *g = NULL;
    struct file_list fl = {0};
    ab_status rc = fsops__open(env, path, true, FSOPS_ACCESS_READ, &abs, res);
    if (rc || !abs)
        goto out;
    /* The helper's order: chdir(path) errors first, then the pattern checks. */
    struct sbx_stat st;
    struct ab_err perr;
    ab_status src = fsops__stat(env, abs, &st, &perr);
    if (!src && st.target_type != SBX_FT_DIR)
        src = AB_NOTDIR;
    if (src) {
        rc = fsops__infra_pass(src, &perr, err);
        if (!rc)
            rc = fsops__fail(res, "Error: Path '%s': %s", abs,
                             src == AB_NOTFOUND ? "path_not_found"
                             : src == AB_NOTDIR ? "not_a_directory"
                             : src == AB_DENIED ? "permission_denied"
                                                : ab_status_name(src));
        goto out;
    }
    patz = ab_strndup(pattern.ptr ? pattern.ptr : "", pattern.len);
    if (!patz) {
        rc = AB_NOMEM;
        goto out;
    }
    struct ab_err gerr;
    ab_status grc = memchr(patz, '\0', pattern.len) || pattern.len != strlen(patz)
                        ? ab_err_set(&gerr, AB_INVAL, "invalid_pattern")
                        : glob_compile(patz, &g, &gerr);
    if (grc == AB_NOMEM) {
        rc = grc;
        goto out;
    }
    if (grc) {
        rc = fsops__fail(res, "Error: Path '%s': %s", abs, gerr.msg);
        goto out;
    }
    ab_err_clear(&perr);
    src = collect_files(env, abs, g, true, GLOB_TIME_BUDGET_MS, &fl, &perr);
    if (src) {
        rc = fsops__infra_pass(src, &perr, err);
        if (!rc)
            rc = fsops__fail(res, "Error: Path '%s': %s", abs,
                             src == AB_DENIED ? "permission_denied" : ab_status_name(src));
        goto out;
    }
    bool truncated = fl.truncated;
    size_t max = lim->glob_max_matches > 0 ? (size_t)lim->glob_max_matches : 10000;
    if (fl.n > max) {
        for (size_t i = max; i < fl.n; i++)
            free(fl.v[i]);
        fl.n = max;
        truncated = true;
    }
    json_t *arr = json_array();
    res->structured = json_pack("{s:o,s:b}", "paths", arr, "truncated", truncated);
    if (!arr || !res->structured) {
        rc = AB_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < fl.n; i++) {
        if (json_array_append_new(arr, fsops__json_str(fl.v[i], strlen(fl.v[i])))) {
            rc = AB_NOMEM;
            goto out;
        }
    }
    rc = fsops__format_paths(&res->text, fl.v, fl.n);
    if (!rc && truncated)
        rc = buf_append_str(&res->text, "\n\n" GLOB_TRUNCATION_NOTE);
out:
    file_list_free(&fl);
    glob_free(g);
    free(patz);
    free(abs);
    return rc;
}
