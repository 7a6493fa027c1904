/*
 * test_runtime.c - agentbox-runtime's pure pieces: shlex splitting (Python shlex.split
 * semantics and error texts), Python list repr, path confinement (realpath semantics with
 * symlinks), unquote. The HTTP surface is tested by tests/k8s/runtime_compat.test.mjs.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/rt.h"
#include "t.h"

static char *joined(const char *cmd)
{
    char **v = NULL;
    size_t n = 0;
    struct ab_err err;
    ab_err_clear(&err);
    if (rt_shlex_split(cmd, &v, &n, &err))
        return strdup(err.msg);
    char *r = rt_py_list_repr(v);
    rt_argv_free(v);
    return r;
}

static void t_shlex(void)
{
    T_EQ_STR(joined("echo hi"), "['echo', 'hi']");
    T_EQ_STR(joined("  a\t b\n"), "['a', 'b']");
    T_EQ_STR(joined("a 'b c' \"d e\""), "['a', 'b c', 'd e']");
    T_EQ_STR(joined("a''b \"\" ''"), "['ab', '', '']");
    T_EQ_STR(joined("a\\ b c\\\\d"), "['a b', 'c\\\\d']");
    T_EQ_STR(joined("\"x\\\"y\\n\""), "['x\"y\\\\n']");
    T_EQ_STR(joined("'a\\b'"), "['a\\\\b']");
    T_EQ_STR(joined("it's"), "No closing quotation");
    T_EQ_STR(joined("x\\"), "No escaped character");
    T_EQ_STR(joined(""), "[]");
    T_EQ_STR(joined("sh -c 'echo \"$X\"; ls'"), "['sh', '-c', 'echo \"$X\"; ls']");
    T_EQ_STR(joined("\"it's\""), "[\"it's\"]");
    T_EQ_STR(joined("a#b #c"), "['a#b', '#c']");
}

static void t_resolve(void)
{
    char tmpl[] = "/tmp/abrt-XXXXXX";
    T_ASSERT(mkdtemp(tmpl));
    char *base = realpath(tmpl, NULL);
    char p[512];
    snprintf(p, sizeof(p), "%s/d", base);
    T_OK(mkdir(p, 0755));
    snprintf(p, sizeof(p), "%s/out", base);
    T_OK(symlink("/etc", p));
    snprintf(p, sizeof(p), "%s/in", base);
    T_OK(symlink("d", p));
    char *r = NULL;
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(rt_resolve(base, "/d/x.txt", &r, &err));
    snprintf(p, sizeof(p), "%s/d/x.txt", base);
    T_EQ_STR(r, p);
    free(r);
    T_OK(rt_resolve(base, "in/../in/y", &r, &err));
    snprintf(p, sizeof(p), "%s/d/y", base);
    T_EQ_STR(r, p);
    free(r);
    T_OK(rt_resolve(base, "", &r, &err));
    T_EQ_STR(r, base);
    free(r);
    T_EQ_INT(rt_resolve(base, "../x", &r, &err), AB_DENIED);
    T_EQ_INT(rt_resolve(base, "out/passwd", &r, &err), AB_DENIED);
    T_EQ_INT(rt_resolve(base, "d/../../x", &r, &err), AB_DENIED);
    T_OK(rt_resolve(base, "nope/../d", &r, &err));
    free(r);
    snprintf(p, sizeof(p), "rm -rf %s", base);
    T_OK(system(p));
    free(base);
}

static void t_unquote(void)
{
    char *s = rt_unquote("a%2Fb%20c%zz%4");
    T_EQ_STR(s, "a/b c%zz%4");
    free(s);
}

static const struct t_case cases[] = {T_CASE(t_shlex), T_CASE(t_resolve), T_CASE(t_unquote), {0}};
T_MAIN(cases)
