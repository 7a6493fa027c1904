/* Tests for `agentbox doctor` (src/core/doctor.c, src/providers/{local,k8s}/doctor.c): the
 * report itself; the real binary on this host (every local check passes: namespaces are
 * available here, and the test fails loudly if they are not); the same binary under a
 * seccomp filter that denies namespaces, as container runtimes install, which must name the
 * missing capability with its fix and exit 1; and the Kubernetes checks against the
 * emulated cluster (tests/k8s), with and without agent-sandbox's CRDs and warm pool. */
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stdarg.h>
#include <sys/file.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "base/util.h"
#include "core/doctor.h"
#include "support/k8s_cluster.h"
#include "support/proc.h"

/* ---- the report ---- */

static void t_report(void)
{
    struct doctor_report r;
    doctor_report_init(&r);
    doctor_section(&r, "First", true);
    doctor_add(&r, DOCTOR_OK, "alpha", "never shown", "fine %d", 1);
    doctor_add(&r, DOCTOR_FAIL, "beta", "do this", "broken");
    doctor_section(&r, "Second", false);
    doctor_add(&r, DOCTOR_FAIL, "gamma", "do that", "also broken");
    doctor_add(&r, DOCTOR_SKIP, "delta", NULL, "not checked");
    T_EQ_INT(r.n, 4);
    T_EQ_INT(doctor_count(&r, DOCTOR_FAIL), 1); /* gamma is advisory */
    T_EQ_INT(doctor_count(&r, DOCTOR_WARN), 1);
    T_ASSERT(r.checks[2].advisory);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    doctor_print(&r, f);
    fclose(f);
    T_ASSERT(strstr(text, "First\n  ok    alpha              fine 1\n") != NULL);
    T_ASSERT(strstr(text, "  FAIL  beta               broken\n        fix: do this\n"));
    T_ASSERT(strstr(text, "never shown") == NULL); /* no fix printed for a passing check */
    T_ASSERT(strstr(text, "\nSecond (not the configured provider: problems are warnings)\n"));
    T_ASSERT(strstr(text, "  WARN  gamma              also broken\n        fix: do that\n"));
    T_ASSERT(strstr(text, "1 ok, 1 warning, 1 failed, 1 skipped: the configured provider "
                          "cannot work"));
    free(text);
    /* Texts are cut, never overflowed. */
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    doctor_add(&r, DOCTOR_WARN, big, big, "%s", big);
    T_EQ_INT(strlen(r.checks[4].detail), DOCTOR_TEXT_MAX - 1);
    T_EQ_INT(strlen(r.checks[4].name), sizeof(r.checks[4].name) - 1);
    doctor_report_cleanup(&r);
}

/* ---- the binary ---- */

struct run {
    int code;
    struct buf out, err;
    char state[64];
};

/* Run `agentbox SUBCOMMAND --set state_dir=<private> ARGS...` (words: the subcommand, then
 * its arguments, NULL-ended; the private state directory comes first so that arguments can
 * override it), with input on stdin. */
static void agentbox(struct run *r, const char *input, const char *const *words)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->out, 1 << 20);
    buf_init(&r->err, 1 << 20);
    snprintf(r->state, sizeof(r->state), "/tmp/ab-test-doctor-XXXXXX");
    T_ASSERT(mkdtemp(r->state) != NULL);
    char state_set[128];
    snprintf(state_set, sizeof(state_set), "state_dir=%s", r->state);
    char *argv[32] = {(char *)tp_agentbox_bin(), (char *)words[0], "--set", state_set};
    int n = 4;
    for (size_t i = 1; words[i] && n < 31; i++)
        argv[n++] = (char *)words[i];
    r->code = tp_run(argv, input, input ? strlen(input) : 0, &r->out, &r->err, 60000);
    printf("---- agentbox %s (exit %d)\n%s%s----\n", words[0], r->code, buf_cstr(&r->out),
           buf_cstr(&r->err));
}

/* Run `agentbox doctor` with a private state directory plus extra arguments (NULL-ended). */
static void doctor(struct run *r, ...)
{
    const char *words[32] = {"doctor"};
    size_t n = 1;
    va_list ap;
    va_start(ap, r);
    for (const char *a; (a = va_arg(ap, const char *)) && n < 31;)
        words[n++] = a;
    va_end(ap);
    agentbox(r, NULL, words);
}

static void run_done(struct run *r)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", r->state);
    T_OK(system(cmd));
    buf_cleanup(&r->out);
    buf_cleanup(&r->err);
}

/* The line of check `name` with its result tag, and its fix line when there is one, as
 * one string (valid until the next call), or fail. */
static const char *line_of(const struct run *r, const char *tag, const char *name)
{
    static char line[4096];
    char want[96];
    snprintf(want, sizeof(want), "  %s  %-18s ", tag, name);
    const char *l = strstr(buf_cstr(&r->out), want);
    if (!l)
        T_FAIL("no line \"%s\" in the report", want);
    size_t n = strcspn(l, "\n");
    if (strncmp(l + n, "\n        fix: ", 14) == 0)
        n += 1 + strcspn(l + n + 1, "\n");
    snprintf(line, sizeof(line), "%.*s", (int)n, l);
    return line;
}

/* This host has everything the local provider needs (the test suite's own premise). */
static void t_host(void)
{
    struct run r;
    doctor(&r, NULL);
    T_EQ_INT(r.code, 0);
    const char *names[] = {"user namespace",    "mount namespace", "PID namespace",
                           "network namespace", "IPC namespace",   "UTS namespace",
                           "cgroup namespace",  "mounts",          "seccomp",
                           "state directory"};
    for (size_t i = 0; i < AB_ARRAY_LEN(names); i++)
        line_of(&r, "ok  ", names[i]);
    T_ASSERT(strstr(line_of(&r, "ok  ", "sandbox"), "ran a command") != NULL);
    /* The cgroup version it reports is the host's: cgroup2 mounted at /sys/fs/cgroup is v2. */
    struct statfs sfs;
    T_OK(statfs("/sys/fs/cgroup", &sfs));
    const char *cg = line_of(&r, "ok  ", "cgroups");
    T_ASSERT(strstr(cg, sfs.f_type == CGROUP2_SUPER_MAGIC ? " v2 " : " v1 ") != NULL);
    T_ASSERT(strstr(buf_cstr(&r.out), "0 failed") != NULL);
    /* The Kubernetes section is advisory here: no credentials is a warning, not a failure. */
    T_ASSERT(strstr(line_of(&r, "WARN", "kubeconfig"), "no Kubernetes credentials") != NULL);
    /* The end-to-end sandbox lived in a temporary state directory, not ours. */
    char path[128];
    snprintf(path, sizeof(path), "%s/sandboxes", r.state);
    T_ASSERT(access(path, F_OK) != 0);
    run_done(&r);
}

/* A user namespace the server would need is checked as such (as root: local.user_namespace
 * always), and a running server's state directory is reported in use, not disturbed. */
static void t_userns_always_and_busy_state(void)
{
    struct run r;
    char lock[128];
    snprintf(lock, sizeof(lock), "/tmp/ab-test-doctor-lock-%d", (int)getpid());
    T_OK(mkdir(lock, 0700));
    char lockfile[160];
    snprintf(lockfile, sizeof(lockfile), "%s/lock", lock);
    int fd = open(lockfile, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    T_ASSERT(fd >= 0);
    T_OK(flock(fd, LOCK_EX | LOCK_NB));
    char set[200];
    snprintf(set, sizeof(set), "state_dir=%s", lock);
    doctor(&r, "--set", "local.user_namespace=always", "--set", set, NULL);
    T_EQ_INT(r.code, 0);
    T_ASSERT(strstr(line_of(&r, "ok  ", "user namespace"), "sandboxes use one") != NULL);
    T_ASSERT(strstr(line_of(&r, "ok  ", "state directory"), "in use by a running agentbox") !=
             NULL);
    line_of(&r, "ok  ", "sandbox");
    close(fd);
    run_done(&r);
    unlink(lockfile);
    rmdir(lock);
}

/* Deny namespaces to this test case's process and what it runs, as a container runtime's
 * seccomp profile does (Docker's default one). */
static void deny_namespaces(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    T_ASSERT(ctx != NULL);
    const uint64_t flags[] = {CLONE_NEWUSER, CLONE_NEWNS,  CLONE_NEWPID,   CLONE_NEWNET,
                              CLONE_NEWIPC,  CLONE_NEWUTS, CLONE_NEWCGROUP};
    for (size_t i = 0; i < AB_ARRAY_LEN(flags); i++)
        T_OK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, flags[i], flags[i])));
    T_OK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 0));
    T_OK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0));
    T_OK(seccomp_load(ctx));
    seccomp_release(ctx);
}

/* Namespaces denied by a seccomp filter on the server: every namespace check fails with the
 * cause and the remedy, the end-to-end check is skipped, and the exit status is 1. */
static void t_namespaces_denied(void)
{
    deny_namespaces();
    struct run r;
    doctor(&r, NULL);
    T_EQ_INT(r.code, 1);
    const char *l = line_of(&r, "FAIL", "mount namespace");
    T_ASSERT(strstr(l, "creating a mount namespace failed: Operation not permitted") != NULL);
    T_ASSERT(strstr(l, "Cause: this process runs under a seccomp filter") != NULL);
    const char *fix = strstr(l, "\n        fix: ");
    T_ASSERT(fix != NULL);
    T_ASSERT(strstr(fix, "--security-opt seccomp=unconfined") != NULL);
    line_of(&r, "FAIL", "PID namespace");
    line_of(&r, "FAIL", "network namespace");
    line_of(&r, "FAIL", "mounts");
    line_of(&r, "skip", "sandbox");
    T_ASSERT(strstr(buf_cstr(&r.out), "the configured provider cannot work") != NULL);
    run_done(&r);
}

/* The server itself, under the same filter, refuses to start (stdio and HTTP alike): exit 1,
 * one message on stderr naming the cause and the remedy, nothing on stdout (a stdio client
 * must not read a half-started server as protocol), no command run unsandboxed. */
static void t_serve_namespaces_denied(void)
{
    deny_namespaces();
    static const char init[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
                               "\"params\":{\"protocolVersion\":\"2025-11-25\","
                               "\"capabilities\":{},\"clientInfo\":{\"name\":\"t\","
                               "\"version\":\"1\"}}}\n";
    const char *const modes[][4] = {{"serve", "--stdio", NULL},
                                    {"serve", "--http", "127.0.0.1:0", NULL}};
    for (size_t i = 0; i < AB_ARRAY_LEN(modes); i++) {
        struct run r;
        agentbox(&r, init, modes[i]);
        T_EQ_INT(r.code, 1);
        T_EQ_INT((int)r.out.len, 0);
        const char *e = buf_cstr(&r.err);
        const char *m = strstr(e, "agentbox: the local sandbox provider cannot start: ");
        T_ASSERT(m != NULL);
        T_ASSERT(strstr(m, "seccomp") != NULL);
        T_ASSERT(strstr(m, "Remedy:") != NULL);
        T_ASSERT(strstr(m, "unconfined") != NULL);
        /* Said once (the log line only names the event), not twice. */
        const char *first = strstr(e, "Remedy:");
        T_ASSERT(first != NULL && strstr(first + 1, "Remedy:") == NULL);
        run_done(&r);
    }
}

/* A state directory that cannot be written is a failure with its fix. */
static void t_state_dir_not_writable(void)
{
    struct run r;
    doctor(&r, "--set", "state_dir=/proc/agentbox-state", NULL);
    T_EQ_INT(r.code, 1);
    const char *l = line_of(&r, "FAIL", "state directory");
    T_ASSERT(strstr(l, "/proc/agentbox-state does not exist and cannot be created in /proc") !=
             NULL);
    T_ASSERT(strstr(l, "fix: create /proc/agentbox-state, writable by the user agentbox runs "
                       "as") != NULL);
    line_of(&r, "skip", "sandbox");
    run_done(&r);
}

/* ---- Kubernetes ---- */

static void k8s_doctor(struct run *r, const struct tk8s *c, const char *pool)
{
    char kc[600], tmpl[200], router[300], wp[200];
    snprintf(kc, sizeof(kc), "k8s.kubeconfig=%s", tk8s_str(c, "kubeconfig"));
    snprintf(tmpl, sizeof(tmpl), "k8s.template=%s", tk8s_str(c, "template"));
    snprintf(router, sizeof(router), "k8s.router_url=%s", tk8s_str(c, "router"));
    snprintf(wp, sizeof(wp), "k8s.warm_pool=%s", pool);
    doctor(r, "--set", "sandbox.provider=agent-sandbox", "--set", kc, "--set", tmpl, "--set",
           router, "--set", wp, NULL);
}

static void t_k8s_ok(void)
{
    struct tk8s c;
    tk8s_start(&c, NULL);
    struct run r;
    k8s_doctor(&r, &c, "warm-pool");
    tk8s_stop(&c);
    T_EQ_INT(r.code, 0);
    T_ASSERT(strstr(line_of(&r, "ok  ", "kubeconfig"), "namespace ") != NULL);
    T_ASSERT(strstr(line_of(&r, "ok  ", "API server"), "v1.33.0-agentbox-test") != NULL);
    T_ASSERT(strstr(line_of(&r, "ok  ", "CRDs"),
                    "agentbox uses extensions.agents.x-k8s.io/v1beta1") != NULL);
    line_of(&r, "ok  ", "template");
    T_ASSERT(strstr(buf_cstr(&r.out), "SandboxWarmPool ") != NULL); /* ok, or WARN filling */
    /* The emulated API server has no SelfSubjectAccessReview: skipped, not failed. */
    line_of(&r, "skip", "permissions");
    T_ASSERT(strstr(line_of(&r, "ok  ", "connection"), "direct, through the router") != NULL);
    /* The local section is advisory now. */
    T_ASSERT(strstr(buf_cstr(&r.out), "Local sandboxes (sandbox.provider: local) (not the "
                                      "configured provider") != NULL);
    run_done(&r);
}

static void t_k8s_no_crds(void)
{
    struct tk8s c;
    const char *args[] = {"--no-crds", NULL};
    tk8s_start(&c, args);
    struct run r;
    k8s_doctor(&r, &c, "warm-pool");
    tk8s_stop(&c);
    T_EQ_INT(r.code, 1);
    const char *l = line_of(&r, "FAIL", "CRDs");
    T_ASSERT(strstr(l, "no API group extensions.agents.x-k8s.io") != NULL);
    T_ASSERT(strstr(l, "fix: install agent-sandbox") != NULL);
    line_of(&r, "skip", "warm pool");
    run_done(&r);
}

static void t_k8s_missing_pool_and_template(void)
{
    struct tk8s c;
    tk8s_start(&c, NULL);
    struct run r;
    k8s_doctor(&r, &c, "no-such-pool");
    T_EQ_INT(r.code, 1);
    const char *l = line_of(&r, "FAIL", "warm pool");
    T_ASSERT(strstr(l, "no-such-pool does not exist") != NULL);
    T_ASSERT(strstr(l, "fix: create it (`kubectl apply -f examples/k8s/warm-pool.yaml`)") != NULL);
    run_done(&r);

    char kc[600], router[300];
    snprintf(kc, sizeof(kc), "k8s.kubeconfig=%s", tk8s_str(&c, "kubeconfig"));
    snprintf(router, sizeof(router), "k8s.router_url=%s", tk8s_str(&c, "router"));
    doctor(&r, "--set", "sandbox.provider=agent-sandbox", "--set", kc, "--set", router, "--set",
           "k8s.template=nope", "--set", "k8s.warm_pool=", NULL);
    tk8s_stop(&c);
    T_EQ_INT(r.code, 1);
    T_ASSERT(strstr(line_of(&r, "FAIL", "template"), "SandboxTemplate ") != NULL);
    T_ASSERT(strstr(line_of(&r, "FAIL", "warm pool"), "k8s.warm_pool is empty") != NULL);
    run_done(&r);
}

/* An API server that is not there: a failure naming the server, the rest skipped. */
static void t_k8s_unreachable(void)
{
    char kc[] = "/tmp/ab-test-doctor-kc-XXXXXX";
    int fd = mkstemp(kc);
    T_ASSERT(fd >= 0);
    /* Port 1 on loopback: nothing listens there. */
    const char *yaml = "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                       "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                       "users: [{name: u, user: {token: t}}]\n"
                       "contexts: [{name: c, context: {cluster: k, user: u, namespace: ns1}}]\n";
    T_ASSERT(write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml));
    close(fd);
    char set[128];
    snprintf(set, sizeof(set), "k8s.kubeconfig=%s", kc);
    struct run r;
    doctor(&r, "--set", "sandbox.provider=agent-sandbox", "--set", set, "--set",
           "k8s.router_url=http://127.0.0.1:1", NULL);
    unlink(kc);
    T_EQ_INT(r.code, 1);
    T_ASSERT(strstr(line_of(&r, "ok  ", "kubeconfig"), "context \"c\"") != NULL);
    T_ASSERT(strstr(line_of(&r, "FAIL", "API server"), "fix: check that http://127.0.0.1:1 is "
                                                       "reachable") != NULL);
    line_of(&r, "skip", "template");
    run_done(&r);
}

static const struct t_case cases[] = {
    T_CASE(t_report),
    T_CASE(t_host),
    T_CASE(t_userns_always_and_busy_state),
    T_CASE(t_namespaces_denied),
    T_CASE(t_serve_namespaces_denied),
    T_CASE(t_state_dir_not_writable),
    T_CASE(t_k8s_ok),
    T_CASE(t_k8s_no_crds),
    T_CASE(t_k8s_missing_pool_and_template),
    T_CASE(t_k8s_unreachable),
    {0},
};

T_MAIN(cases)
