/*
 * t.h - the unit-test harness (libuv's model: every case runs in its own forked process, so a
 * crash or a leaked fd in one case cannot hide behind another).
 *
 *   static void t_roundtrip(void) { T_EQ_STR(decode(encode("x")), "x"); }
 *   static const struct t_case cases[] = { T_CASE(t_roundtrip), {0} };
 *   T_MAIN(cases)
 *
 * `test_foo [name...]` runs only the named cases. A failed assertion prints file:line and the
 * values and exits the child with status 1. Set T_NOFORK=1 to run in-process (for gdb).
 */
#ifndef AB_TEST_T_H
#define AB_TEST_T_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct t_case {
    const char *name;
    void (*fn)(void);
};

#define T_CASE(fn) {#fn, fn}

#define T_FAIL(...)                                                                            \
    do {                                                                                       \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                        \
        fprintf(stderr, __VA_ARGS__);                                                          \
        fprintf(stderr, "\n");                                                                 \
        fflush(stderr);                                                                        \
        exit(1);                                                                               \
    } while (0)

#define T_ASSERT(cond)                                                                         \
    do {                                                                                       \
        if (!(cond))                                                                           \
            T_FAIL("assertion failed: %s", #cond);                                             \
    } while (0)

#define T_EQ_INT(a, b)                                                                         \
    do {                                                                                       \
        long long t_a = (long long)(a), t_b = (long long)(b);                                  \
        if (t_a != t_b)                                                                        \
            T_FAIL("%s == %s: %lld != %lld", #a, #b, t_a, t_b);                                \
    } while (0)

#define T_EQ_STR(a, b)                                                                         \
    do {                                                                                       \
        const char *t_a = (a), *t_b = (b);                                                     \
        if (!t_a || !t_b || strcmp(t_a, t_b) != 0)                                             \
            T_FAIL("%s == %s:\n  got:      \"%s\"\n  expected: \"%s\"", #a, #b,                \
                   t_a ? t_a : "(null)", t_b ? t_b : "(null)");                                \
    } while (0)

#define T_OK(expr)                                                                             \
    do {                                                                                       \
        int t_rc = (int)(expr);                                                                \
        if (t_rc != 0)                                                                         \
            T_FAIL("%s returned %d, expected 0", #expr, t_rc);                                 \
    } while (0)

static inline int t_run_one(const struct t_case *c)
{
    if (getenv("T_NOFORK")) {
        c->fn();
        return 0;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        c->fn();
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    fprintf(stderr, "  killed by signal %d\n", WTERMSIG(status));
    return 1;
}

static inline int t_main(const struct t_case *cases, int argc, char **argv)
{
    int failed = 0, ran = 0;
    for (const struct t_case *c = cases; c->name; c++) {
        if (argc > 1) {
            int want = 0;
            for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], c->name) == 0)
                    want = 1;
            if (!want)
                continue;
        }
        ran++;
        int rc = t_run_one(c);
        printf("%s %s\n", rc ? "FAIL" : "ok  ", c->name);
        fflush(stdout);
        if (rc)
            failed++;
    }
    printf("%d/%d passed\n", ran - failed, ran);
    return failed ? 1 : (ran ? 0 : 1);
}

#define T_MAIN(cases)                                                                          \
    int main(int argc, char **argv)                                                            \
    {                                                                                          \
        return t_main(cases, argc, argv);                                                      \
    }

#endif
