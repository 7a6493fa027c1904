/* Unit tests for core/glob: the glob tool's pattern language, including hostile patterns. */
#include "t.h"

#include <stdlib.h>

#include "base/util.h"
#include "core/glob.h"

static bool m(const char *pattern, const char *rel)
{
    struct glob_pat *g;
    struct ab_err err;
    if (glob_compile(pattern, &g, &err))
        T_FAIL("glob_compile(\"%s\"): %s", pattern, err.msg);
    bool r = glob_match(g, rel);
    glob_free(g);
    return r;
}

#define YES(p, r) T_ASSERT(m((p), (r)))
#define NO(p, r)  T_ASSERT(!m((p), (r)))

static void t_basename_anywhere(void)
{
    YES("*.py", "main.py");
    YES("*.py", "src/app/main.py");
    YES("*.yml", ".github/workflows/ci.yml"); /* under a dot directory: basename rule */
    NO("*.py", ".hidden.py");
    YES(".*.py", ".hidden.py");
    YES(".env", ".env");
    YES(".env", "a/b/.env");
    NO("*", ".env");
    YES("**", "a/b/c"); /* no '/': fnmatch "**" == "*" on the basename */
    NO("", "a");
    YES("main.py", "deep/er/main.py");
    NO("Main.py", "main.py"); /* case-sensitive */
}

static void t_path_patterns(void)
{
    YES("src/*.py", "src/a.py");
    NO("src/*.py", "src/x/a.py");
    YES("src/**/*.py", "src/a.py");
    YES("src/**/*.py", "src/x/y/a.py");
    YES("**/*.py", "a.py");
    YES("**/*.py", "x/a.py");
    NO("**/*.yml", ".github/ci.yml"); /* ** does not enter dot dirs */
    YES(".github/**/*.yml", ".github/workflows/ci.yml");
    YES("/*.py", "top.py");
    NO("/*.py", "src/top.py");
    YES("a//b.py", "a/b.py");
    NO("src/", "src"); /* trailing slash: directories only, we return files */
    NO("src/", "src/a");
    YES("src/**/", "src/a"); /* except after ** */
    NO("a.py/**", "a.py");   /* trailing ** needs a descendant */
    YES("a/**", "a/b/c");
    NO("a/**", "a/.b/c");
    YES("**/**/**/x", "x");
    YES("a/**/b/**/c", "a/b/c");
    YES("a/**/b/**/c", "a/1/2/b/3/c");
    NO("a/**/b/**/c", "a/1/2/b/3/d");
    NO("*/x", ".d/x");
    YES(".*/x", ".d/x");
}

static void t_classes_and_wildcards(void)
{
    T_ASSERT(glob_fnmatch("?.txt", "a.txt"));
    T_ASSERT(!glob_fnmatch("?.txt", "ab.txt"));
    T_ASSERT(glob_fnmatch("?", "é"));    /* one code point */
    T_ASSERT(glob_fnmatch("?", "\xff")); /* one stray byte */
    T_ASSERT(glob_fnmatch("[abc]", "b"));
    T_ASSERT(!glob_fnmatch("[abc]", "d"));
    T_ASSERT(glob_fnmatch("[a-c]x", "bx"));
    T_ASSERT(glob_fnmatch("[!a-c]x", "dx"));
    T_ASSERT(!glob_fnmatch("[!a-c]x", "ax"));
    T_ASSERT(glob_fnmatch("[]]", "]"));
    T_ASSERT(glob_fnmatch("[!]]", "a"));
    T_ASSERT(!glob_fnmatch("[!]]", "]"));
    T_ASSERT(glob_fnmatch("[", "[")); /* unclosed: literal */
    T_ASSERT(glob_fnmatch("[!]", "[!]"));
    T_ASSERT(glob_fnmatch("a[", "a["));
    T_ASSERT(!glob_fnmatch("[z-a]", "m")); /* reversed range dropped: empty class */
    T_ASSERT(!glob_fnmatch("[z-a]", "z"));
    T_ASSERT(glob_fnmatch("[a-]", "-"));
    T_ASSERT(glob_fnmatch("[-a]", "-"));
    T_ASSERT(glob_fnmatch("[a-cx-z]", "y"));
    T_ASSERT(!glob_fnmatch("[a-cx-z]", "m"));
    T_ASSERT(glob_fnmatch("[\\]", "\\")); /* backslash is literal */
    T_ASSERT(glob_fnmatch("\\*", "\\x"));
    T_ASSERT(glob_fnmatch("[é-ë]", "ê"));
    T_ASSERT(glob_fnmatch("*", ""));
    T_ASSERT(glob_fnmatch("a*b*c", "aXXbYYc"));
    T_ASSERT(!glob_fnmatch("a*b*c", "aXXbYY"));
    T_ASSERT(glob_fnmatch("[&~|]", "~"));
    /* "[^" means negation in the glob tool (normalised to "[!") */
    YES("[^a]*", "bcd");
    NO("[^a]*", "abc");
}

static size_t alts(const char *p)
{
    struct glob_pat *g;
    struct ab_err err;
    T_OK(glob_compile(p, &g, &err));
    size_t n = glob_alternatives(g);
    glob_free(g);
    return n;
}

static void t_braces(void)
{
    YES("*.{yml,yaml}", "a.yaml");
    YES("*.{yml,yaml}", "d/a.yml");
    NO("*.{yml,yaml}", "a.json");
    YES("{src,lib}/**/*.c", "lib/x/y.c");
    YES("*.{py,{md,txt}}", "r.txt");
    YES("{a}", "{a}"); /* one element: literal */
    YES("{a", "{a");   /* unbalanced: literal */
    YES("x{a}{b,c}", "x{a}c");
    YES("{,x}y", "y");
    T_EQ_INT(alts("{a,b}{c,d}{e,f}"), 8);
    T_EQ_INT(alts("{a,{b,{c,d}}}"), 4);
    T_EQ_INT(alts("plain"), 1);
    /* A '/' anywhere makes every alternative a path pattern. */
    NO("{a/b,c}", "x/c");
    YES("{a/b,c}", "c");
}

static void t_errors(void)
{
    struct glob_pat *g = NULL;
    struct ab_err err;
    T_EQ_INT(glob_compile("../x", &g, &err), AB_INVAL);
    T_EQ_STR(err.msg, "invalid_pattern");
    T_EQ_INT(glob_compile("a/../b", &g, &err), AB_INVAL);
    T_EQ_INT(glob_compile("a\\..\\b", &g, &err), AB_INVAL);
    T_OK(glob_compile("a..b", &g, &err));
    glob_free(g);
    /* 2^10 = 1024 alternatives > 1000 */
    T_EQ_INT(glob_compile("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}", &g, &err),
             AB_LIMIT);
    T_EQ_STR(err.msg, "pattern_too_broad");
    /* exactly 1000 is allowed */
    T_EQ_INT(alts("{0,1,2,3,4,5,6,7,8,9}{0,1,2,3,4,5,6,7,8,9}{0,1,2,3,4,5,6,7,8,9}"), 1000);
    T_EQ_INT(glob_compile("{0,1,2,3,4,5,6,7,8,9}{0,1,2,3,4,5,6,7,8,9}{0,1,2,3,4,5,6,7,8,9}{a,b}",
                          &g, &err),
             AB_LIMIT);
    char *huge = malloc(GLOB_PATTERN_MAX + 2);
    memset(huge, 'a', GLOB_PATTERN_MAX + 1);
    huge[GLOB_PATTERN_MAX + 1] = '\0';
    T_EQ_INT(glob_compile(huge, &g, &err), AB_INVAL);
    free(huge);
}

/* Patterns that make naive matchers exponential must finish at once (the test harness has a
 * timeout; there are no timing assertions). */
static void t_adversarial(void)
{
    char pat[4096], name[256];
    /* a*a*a*...a*b against aaaa...a */
    size_t k = 0;
    for (int i = 0; i < 100; i++) {
        pat[k++] = 'a';
        pat[k++] = '*';
    }
    pat[k++] = 'b';
    pat[k] = '\0';
    memset(name, 'a', 200);
    name[200] = '\0';
    T_ASSERT(!glob_fnmatch(pat, name));
    /* the segment pair "double star, star" repeated 200 times, over a deep path */
    k = 0;
    for (int i = 0; i < 200; i++) {
        memcpy(pat + k, "**/*/", 5);
        k += 5;
    }
    memcpy(pat + k, "z", 2);
    char deep[2048];
    size_t d = 0;
    for (int i = 0; i < 300; i++) {
        memcpy(deep + d, "a/", 2);
        d += 2;
    }
    memcpy(deep + d, "y", 2);
    T_ASSERT(!m(pat, deep));
    /* nested braces that would explode without the limit */
    k = 0;
    for (int i = 0; i < 60; i++)
        k += (size_t)snprintf(pat + k, sizeof(pat) - k, "{a,");
    for (int i = 0; i < 60; i++)
        pat[k++] = '}';
    pat[k] = '\0';
    struct glob_pat *g;
    struct ab_err err;
    ab_status rc = glob_compile(pat, &g, &err);
    T_ASSERT(rc == AB_OK || rc == AB_LIMIT);
    if (!rc)
        glob_free(g);
    /* deep brace recursion */
    k = 0;
    for (int i = 0; i < 1000; i++)
        pat[k++] = '{';
    for (int i = 0; i < 1000; i++)
        pat[k++] = '}';
    pat[k] = '\0';
    rc = glob_compile(pat, &g, &err);
    T_ASSERT(rc == AB_OK || rc == AB_LIMIT);
    if (!rc)
        glob_free(g);
    /* brackets everywhere */
    for (k = 0; k < 4000; k++)
        pat[k] = "[!]-a"[k % 5];
    pat[k] = '\0';
    T_OK(glob_compile(pat, &g, &err));
    glob_match(g, "abc/def");
    glob_free(g);
}

static void t_dot_dir_hint(void)
{
    struct glob_pat *g;
    struct ab_err err;
    T_OK(glob_compile("src/**/*.py", &g, &err));
    T_ASSERT(!glob_may_match_in_dot_dirs(g));
    T_ASSERT(!glob_is_basename(g));
    glob_free(g);
    T_OK(glob_compile(".github/**", &g, &err));
    T_ASSERT(glob_may_match_in_dot_dirs(g));
    glob_free(g);
    T_OK(glob_compile("*.py", &g, &err));
    T_ASSERT(glob_may_match_in_dot_dirs(g));
    T_ASSERT(glob_is_basename(g));
    glob_free(g);
}

static const struct t_case cases[] = {
    T_CASE(t_basename_anywhere),
    T_CASE(t_path_patterns),
    T_CASE(t_classes_and_wildcards),
    T_CASE(t_braces),
    T_CASE(t_errors),
    T_CASE(t_adversarial),
    T_CASE(t_dot_dir_hint),
    {0},
};
T_MAIN(cases)
