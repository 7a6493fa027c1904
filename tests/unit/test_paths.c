/* Unit tests for core/paths: tool path normalisation and its contract error texts. */
#include "t.h"

#include <stdlib.h>

#include "base/util.h"
#include "core/paths.h"

static char *ok(const char *in)
{
    char *out = NULL, *why = NULL;
    ab_status rc = paths_resolve(in, strlen(in), "/workspace", &out, &why);
    if (rc)
        T_FAIL("paths_resolve(\"%s\") failed: %s", in, why ? why : ab_status_name(rc));
    return out;
}

static char *bad(const char *in, size_t len)
{
    char *out = NULL, *why = NULL;
    ab_status rc = paths_resolve(in, len, "/workspace", &out, &why);
    if (rc != AB_INVAL)
        T_FAIL("paths_resolve(\"%s\") should be rejected, got %s", in, out ? out : "?");
    T_ASSERT(out == NULL && why != NULL);
    return why;
}

static void t_relative_and_absolute(void)
{
    const char *cases[][2] = {
        {"/workspace/a.py", "/workspace/a.py"},
        {"a.py", "/workspace/a.py"},
        {"src/./x//y.py", "/workspace/src/x/y.py"},
        {"./", "/workspace"},
        {"", "/workspace"},
        {".", "/workspace"},
        {"/", "/"},
        {"//etc///passwd", "/etc/passwd"},
        {"/./foo//bar", "/foo/bar"},
        {"/workspace/dir/", "/workspace/dir"},
        {"foo..bar.txt", "/workspace/foo..bar.txt"},
        {"...", "/workspace/..."},
        {"a\\b", "/workspace/a\\b"}, /* backslash is a file-name byte */
        {"dir with space/it's \"q\"\n.txt", "/workspace/dir with space/it's \"q\"\n.txt"},
        {"ünï/çødé", "/workspace/ünï/çødé"},
        {"x~", "/workspace/x~"},
    };
    for (size_t i = 0; i < AB_ARRAY_LEN(cases); i++) {
        char *out = ok(cases[i][0]);
        T_EQ_STR(out, cases[i][1]);
        free(out);
    }
}

static void t_traversal_texts(void)
{
    const char *trav[] = {"../etc/passwd", "/workspace/../etc", "a/..",  "..",           "~/x", "~",
                          "~root/.ssh",    "a\\..\\b",          "..\\x", "/a/b/../../.."};
    for (size_t i = 0; i < AB_ARRAY_LEN(trav); i++) {
        char *why = bad(trav[i], strlen(trav[i]));
        char *want = ab_asprintf("Path traversal not allowed: %s", trav[i]);
        T_EQ_STR(why, want);
        free(why);
        free(want);
    }
}

static void t_windows_texts(void)
{
    const char *win[] = {"C:\\Users\\x.txt", "c:/x", "Z:", "d:relative"};
    for (size_t i = 0; i < AB_ARRAY_LEN(win); i++) {
        char *why = bad(win[i], strlen(win[i]));
        char *want = ab_asprintf("Windows absolute paths are not supported: %s. Please use "
                                 "virtual paths starting with / (e.g., /workspace/file.txt)",
                                 win[i]);
        T_EQ_STR(why, want);
        free(why);
        free(want);
    }
    /* a colon later in a name is fine */
    char *out = ok("ab:c");
    T_EQ_STR(out, "/workspace/ab:c");
    free(out);
}

static void t_nul_and_length(void)
{
    char *why = bad("a\0/../../etc", 12);
    T_EQ_STR(why, "Invalid path: it contains a NUL byte");
    free(why);

    char *longp = malloc(PATHS_MAX + 2);
    memset(longp, 'a', PATHS_MAX + 1);
    for (size_t i = 100; i < PATHS_MAX; i += 100)
        longp[i] = '/';
    longp[PATHS_MAX + 1] = '\0';
    why = bad(longp, strlen(longp));
    T_ASSERT(ab_starts_with(why, "Path too long: 4096 bytes"));
    free(why);
    /* relative: short argument, too long once the workspace is prepended */
    longp[PATHS_MAX - 5] = '\0';
    why = bad(longp, strlen(longp));
    T_ASSERT(ab_starts_with(why, "Path too long:"));
    free(why);
    /* one segment over NAME_MAX */
    memset(longp, 'b', 300);
    longp[300] = '\0';
    why = bad(longp, 300);
    T_EQ_STR(why, "File name too long: 300 bytes (the maximum is 255)");
    free(why);
    free(longp);
}

static void t_join_basename_suffix(void)
{
    char *j = paths_join("/", "a");
    T_EQ_STR(j, "/a");
    free(j);
    j = paths_join("/workspace", "b c");
    T_EQ_STR(j, "/workspace/b c");
    free(j);
    T_EQ_STR(paths_basename("/w/x.tar.gz"), "x.tar.gz");
    T_EQ_STR(paths_basename("/"), "");
    char s[16];
    T_EQ_STR(paths_suffix_lower("/w/x.tar.GZ", s, sizeof(s)), ".gz");
    T_EQ_STR(paths_suffix_lower("/w/.bashrc", s, sizeof(s)), "");
    T_EQ_STR(paths_suffix_lower("/w/file.", s, sizeof(s)), "");
    T_EQ_STR(paths_suffix_lower("/w.d/noext", s, sizeof(s)), "");
    T_EQ_STR(paths_suffix_lower("/w/a.PNG", s, sizeof(s)), ".png");
}

static void t_workspace_variants(void)
{
    char *out = NULL, *why = NULL;
    T_OK(paths_resolve("x", 1, "/home/agent/", &out, &why));
    T_EQ_STR(out, "/home/agent/x");
    free(out);
    T_OK(paths_resolve("x", 1, "/", &out, &why));
    T_EQ_STR(out, "/x");
    free(out);
}

static const struct t_case cases[] = {
    T_CASE(t_relative_and_absolute),
    T_CASE(t_traversal_texts),
    T_CASE(t_windows_texts),
    T_CASE(t_nul_and_length),
    T_CASE(t_join_basename_suffix),
    T_CASE(t_workspace_variants),
    {0},
};
T_MAIN(cases)
