/*
 * Tests of the local provider against real namespaces: isolation (each property checked in
 * both modes: without a user namespace, as root runs it by default, and with one), exec
 * semantics, files, limits (fork and memory bombs), restart, helper death, and the refusal
 * to start when namespaces are denied.
 *
 * Needs: root or working user namespaces, the agentbox binary in $AGENTBOX_BIN (ctest sets
 * it). A missing prerequisite fails the test loudly; nothing is skipped.
 */
#include "t.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/util.h"
#include "config/config.h"
#include "core/sandbox.h"
#include "providers/local/internal.h"
#include "providers/local/local.h"
#include "support/local_fixture.h"

static const char *g_userns = "auto";

static void fx_config(struct lfx *f)
{
    lfx_config(f, "test-local");
    lfx_set(f, "local.user_namespace", g_userns);
    lfx_set(f, "local.limits.memory", "256MiB");
    lfx_set(f, "local.limits.pids", "128");
    lfx_set(f, "local.limits.tmp_size", "64MiB");
}

static void fx_init(struct lfx *f)
{
    fx_config(f);
    lfx_start(f, NULL);
}

/* ------------------------------------------------------------------------------------------
 * isolation (run in both modes)
 * ---------------------------------------------------------------------------------------- */

/* The PID namespace: PID 1 is the helper, and host processes do not exist. */
static void iso_pid_namespace(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-pid");
    lfx_expect_sh(&f, h, "cat /proc/1/comm", "ab-sandbox\n");
    lfx_expect_sh(&f, h, "echo $PPID", "1\n"); /* the shell's parent is the helper */
    /* Only the helper, the shell and ls: a handful of pids. */
    char *out = lfx_sh(&f, h, "ls /proc | grep -c '^[0-9]*$'");
    T_ASSERT(atoi(out) <= 4);
    free(out);
    /* The host's PID 1 and this test process are invisible. */
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "test -e /proc/%d; echo $?", (int)getpid());
    lfx_expect_sh(&f, h, cmd, "1\n");
    lfx_expect_sh(&f, h, "cat /proc/1/cmdline | tr '\\0' ' ' | grep -c init; true", "0\n");
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* Host processes can be neither seen nor signalled. */
static void iso_signal_host(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-sig");
    pid_t victim = fork();
    if (victim == 0) {
        execl("/bin/sleep", "sleep", "60", (char *)NULL);
        _exit(127);
    }
    T_ASSERT(victim > 0);
    char cmd[128], *out;
    snprintf(cmd, sizeof(cmd), "kill -9 %d 2>&1; echo rc=$?", (int)victim);
    int code = lfx_run(&f, h, cmd, &out);
    T_EQ_INT(code, 0);
    T_ASSERT(strstr(out, "rc=1") != NULL);
    free(out);
    int st;
    T_EQ_INT(waitpid(victim, &st, WNOHANG), 0); /* still alive */
    kill(victim, SIGKILL);
    waitpid(victim, &st, 0);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* The root holds only the allowed host directories, read-only. */
static void iso_filesystem_view(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-fs");
    char *out = lfx_sh(&f, h, "ls -A / | tr '\\n' ' '");
    const char *allowed[] = {"bin",    "dev",  "etc",  "lib", "lib32", "lib64",
                             "libx32", "proc", "sbin", "tmp", "usr",   "workspace"};
    char *save = NULL;
    for (char *tok = strtok_r(out, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        bool ok = false;
        for (size_t i = 0; i < AB_ARRAY_LEN(allowed); i++)
            ok = ok || strcmp(tok, allowed[i]) == 0;
        if (!ok)
            T_FAIL("unexpected entry /%s in the sandbox root", tok);
    }
    free(out);
    /* Host paths that must not exist inside. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "for p in /root /home /var /opt /work /srv /mnt /sys /etc/shadow /etc/sudoers "
             "%s; do test -e $p && echo visible:$p; done; true",
             f.dir);
    lfx_expect_sh(&f, h, cmd, "");
    /* /etc/passwd is the sandbox's own. */
    lfx_expect_sh(&f, h,
                  "grep -c '^sandbox:' /etc/passwd; grep -c '^root:x:0:0:root:/root:/bin/bash' "
                  "/etc/passwd; true",
                  "1\n0\n");
    /* The system directories are there and usable, but read-only. */
    lfx_expect_sh(&f, h, "test -x /usr/bin/env && echo yes", "yes\n");
    out = lfx_sh(&f, h, "grep -E ' /usr ' /proc/self/mounts");
    T_ASSERT(strstr(out, " ro,") != NULL);
    free(out);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* Writes succeed only in the workspace and /tmp (and /dev/shm, the POSIX shm tmpfs). */
static void iso_writes(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-wr");
    const char *denied[] = {"/x",      "/usr/x", "/usr/bin/x", "/etc/x",  "/etc/passwd", "/bin/x",
                            "/sbin/x", "/lib/x", "/dev/x",     "/proc/x", "/etc/ssl/x"};
    for (size_t i = 0; i < AB_ARRAY_LEN(denied); i++) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "echo data > %s 2>/dev/null && echo WROTE", denied[i]);
        char *out;
        lfx_run(&f, h, cmd, &out);
        if (strstr(out, "WROTE"))
            T_FAIL("the sandbox could write %s", denied[i]);
        free(out);
    }
    lfx_expect_sh(&f, h,
                  "echo a > /workspace/x && echo b > /tmp/x && echo c > /dev/shm/x && "
                  "cat /workspace/x /tmp/x /dev/shm/x",
                  "a\nb\nc\n");
    /* No remounting our way out either. */
    char *out;
    T_ASSERT(lfx_run(&f, h, "mount -o remount,rw / 2>&1", &out) != 0);
    free(out);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

static int listen_any(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    T_ASSERT(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    T_OK(bind(s, (struct sockaddr *)&a, sizeof(a)));
    T_OK(listen(s, 8));
    socklen_t al = sizeof(a);
    T_OK(getsockname(s, (struct sockaddr *)&a, &al));
    *port = ntohs(a.sin_port);
    return s;
}

/* No network but loopback: neither the host's addresses nor its loopback (where the
 * server's HTTP port lives) are reachable. */
static void iso_network(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-net");
    int port;
    int ls = listen_any(&port);
    /* Find a non-loopback IPv4 address of the host, and check the listener is reachable
     * there from outside (so the test can fail). */
    char hostip[64] = "";
    struct ifaddrs *ifs;
    T_OK(getifaddrs(&ifs));
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && !hostip[0]) {
            struct sockaddr_in *sa = (struct sockaddr_in *)i->ifa_addr;
            if ((ntohl(sa->sin_addr.s_addr) >> 24) != 127)
                inet_ntop(AF_INET, &sa->sin_addr, hostip, sizeof(hostip));
        }
    freeifaddrs(ifs);
    const char *targets[] = {"127.0.0.1", hostip[0] ? hostip : NULL};
    for (size_t i = 0; i < 2 && targets[i]; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, targets[i], &a.sin_addr);
        T_OK(connect(c, (struct sockaddr *)&a, sizeof(a))); /* reachable from the host */
        close(c);
        char cmd[256], *out;
        snprintf(cmd, sizeof(cmd),
                 "bash -c 'exec 3<>/dev/tcp/%s/%d' 2>/dev/null && echo CONNECTED; true", targets[i],
                 port);
        lfx_run(&f, h, cmd, &out);
        if (strstr(out, "CONNECTED"))
            T_FAIL("the sandbox reached %s:%d", targets[i], port);
        free(out);
    }
    close(ls);
    /* Only the loopback interface, and it is up. */
    lfx_expect_sh(&f, h, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", "lo\n");
    lfx_expect_sh(&f, h, "bash -c 'exec 3<>/dev/tcp/127.0.0.1/1' 2>&1 | grep -q refused && echo ok",
                  "ok\n");
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* One sandbox cannot read another's workspace. */
static void iso_other_workspace(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *a = lfx_create(&f, "ab-ws-a");
    struct sbx_handle *b = lfx_create(&f, "ab-ws-b");
    free(lfx_sh(&f, a, "echo topsecret-a > /workspace/secret.txt"));
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "cat /workspace/secret.txt 2>/dev/null; cat %s/sandboxes/ab-ws-a/workspace/secret.txt "
             "2>/dev/null; find / -xdev -name secret.txt 2>/dev/null; find / -path /proc -prune -o "
             "-path /usr -prune -o -name secret.txt -print 2>/dev/null; grep -rl topsecret-a "
             "/workspace /tmp /dev/shm /etc 2>/dev/null; true",
             f.dir);
    lfx_expect_sh(&f, b, cmd, "");
    /* and through /proc: b sees only its own processes */
    lfx_expect_sh(&f, b, "ls /proc/*/root/workspace 2>/dev/null | grep -c secret; true", "0\n");
    lfx_destroy(&f, a);
    lfx_destroy(&f, b);
    lfx_done(&f);
}

/* Commands run as the unprivileged sandbox uid with no capabilities at all. */
static void iso_credentials(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-cred");
    lfx_expect_sh(&f, h, "id -u; id -g; id -G", "1000\n1000\n1000\n");
    lfx_expect_sh(&f, h,
                  "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "
                  "/proc/self/status | tr -d '\\t'",
                  "CapInh:0000000000000000\nCapPrm:0000000000000000\nCapEff:0000000000000000\n"
                  "CapBnd:0000000000000000\nCapAmb:0000000000000000\nNoNewPrivs:1\nSeccomp:2\n");
    /* Namespaces, mounts and ptrace are refused (seccomp, and no capabilities anyway). */
    char *out;
    T_ASSERT(lfx_run(&f, h, "unshare -U -r true 2>&1", &out) != 0);
    free(out);
    T_ASSERT(lfx_run(&f, h, "mount -t tmpfs none /tmp 2>&1", &out) != 0);
    free(out);
    /* The helper (PID 1) is not dumpable: its environment and descriptors are closed. */
    T_ASSERT(lfx_run(&f, h, "cat /proc/1/environ 2>&1", &out) != 0);
    free(out);
    T_ASSERT(lfx_run(&f, h, "ls /proc/1/fd 2>&1", &out) != 0);
    free(out);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* The server's environment (it may hold tokens) and descriptors never reach a sandbox. */
static void iso_env_and_fds(void)
{
    setenv("AGENTBOX_TEST_SECRET", "s3cr3t-t0ken-value", 1);
    int leak = open("/etc/hostname", O_RDONLY); /* deliberately not O_CLOEXEC */
    T_ASSERT(leak >= 0);
    int leak2 = dup2(leak, 77);
    T_EQ_INT(leak2, 77);
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-env");
    char *out = lfx_sh(&f, h, "env; cat /proc/self/environ");
    T_ASSERT(strstr(out, "s3cr3t") == NULL);
    T_ASSERT(strstr(out, "AGENTBOX_") == NULL);
    T_ASSERT(strstr(out, "HOME=/workspace") != NULL);
    free(out);
    /* The command sees exactly stdin, stdout, stderr (and ls's own directory). */
    lfx_expect_sh(&f, h, "ls /proc/self/fd | tr '\\n' ' '", "0 1 2 3 ");
    lfx_expect_sh(&f, h, "test -e /proc/self/fd/77 && echo LEAK; true", "");
    /* Extra variables given with the request do arrive. */
    struct sbx_exec_req req = {.shell = "echo $FOO:$HOME",
                               .env = (const char *[]){"FOO=bar", NULL}};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(f.p->ops->exec(f.p, h, &req, &res, &err));
    T_EQ_STR(buf_cstr(&res.output), "bar:/workspace\n");
    sbx_exec_result_cleanup(&res);
    lfx_destroy(&f, h);
    lfx_done(&f);
    close(leak);
    close(leak2);
}

/* A command is killed at its timeout with exit code 124; the output so far is kept. */
static void iso_timeout(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-to");
    struct sbx_exec_result res;
    char *out;
    int code = lfx_run_ex(&f, h, "echo before; sleep 30; echo after", 300, &out, &res);
    T_EQ_INT(code, 124);
    T_ASSERT(res.timed_out);
    T_EQ_STR(out, "before\n");
    free(out);
    sbx_exec_result_cleanup(&res);
    /* The whole process group died: nothing of it is left. */
    lfx_expect_sh(&f, h, "ps -e -o comm= | grep -c sleep; true", "0\n");
    lfx_destroy(&f, h);
    lfx_done(&f);
}

#define BOTH_MODES(fn)                                                                             \
    static void fn##_plain(void)                                                                   \
    {                                                                                              \
        g_userns = "auto";                                                                         \
        fn();                                                                                      \
    }                                                                                              \
    static void fn##_userns(void)                                                                  \
    {                                                                                              \
        g_userns = "always";                                                                       \
        fn();                                                                                      \
    }

BOTH_MODES(iso_pid_namespace)
BOTH_MODES(iso_signal_host)
BOTH_MODES(iso_filesystem_view)
BOTH_MODES(iso_writes)
BOTH_MODES(iso_network)
BOTH_MODES(iso_other_workspace)
BOTH_MODES(iso_credentials)
BOTH_MODES(iso_env_and_fds)
BOTH_MODES(iso_timeout)

/* ------------------------------------------------------------------------------------------
 * exec semantics
 * ---------------------------------------------------------------------------------------- */

struct chunks {
    int n;
    struct buf all;
};

static void on_chunk(void *arg, const char *data, size_t len)
{
    struct chunks *c = arg;
    c->n++;
    buf_append(&c->all, data, len);
}

static void t_exec_basics(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-exec");
    struct ab_err err;
    ab_err_clear(&err);
    char *out;
    T_EQ_INT(lfx_run(&f, h, "exit 3", NULL), 3);
    T_EQ_INT(lfx_run(&f, h, "kill -9 $$", NULL), 137);
    /* argv: no shell involved, argv[0] found in PATH */
    const char *argv[] = {"printf", "%s|%s", "a b", "$HOME", NULL};
    struct sbx_exec_req req = {.argv = argv};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    T_OK(f.p->ops->exec(f.p, h, &req, &res, &err));
    T_EQ_STR(buf_cstr(&res.output), "a b|$HOME");
    sbx_exec_result_cleanup(&res);
    /* a missing program: 127 and a message, like a shell */
    const char *missing[] = {"no-such-program-xyz", NULL};
    struct sbx_exec_req req2 = {.argv = missing};
    sbx_exec_result_init(&res);
    T_OK(f.p->ops->exec(f.p, h, &req2, &res, &err));
    T_EQ_INT(res.exit_code, 127);
    T_ASSERT(strstr(buf_cstr(&res.output), "no-such-program-xyz") != NULL);
    sbx_exec_result_cleanup(&res);
    /* cwd, and a missing cwd is an error rather than a run */
    free(lfx_sh(&f, h, "mkdir -p /workspace/sub"));
    struct sbx_exec_req req3 = {.shell = "pwd", .cwd = "/workspace/sub"};
    sbx_exec_result_init(&res);
    T_OK(f.p->ops->exec(f.p, h, &req3, &res, &err));
    T_EQ_STR(buf_cstr(&res.output), "/workspace/sub\n");
    sbx_exec_result_cleanup(&res);
    struct sbx_exec_req req4 = {.shell = "pwd", .cwd = "/workspace/nope"};
    sbx_exec_result_init(&res);
    T_EQ_INT(f.p->ops->exec(f.p, h, &req4, &res, &err), AB_NOTFOUND);
    sbx_exec_result_cleanup(&res);
    /* stdin */
    struct sbx_exec_req req5 = {.shell = "tr a-z A-Z", .stdin_data = "hello\n", .stdin_len = 6};
    sbx_exec_result_init(&res);
    T_OK(f.p->ops->exec(f.p, h, &req5, &res, &err));
    T_EQ_STR(buf_cstr(&res.output), "HELLO\n");
    sbx_exec_result_cleanup(&res);
    /* large stdin, larger than any pipe or frame */
    size_t big = 3 * 1024 * 1024 + 17;
    char *data = malloc(big);
    memset(data, 'q', big);
    struct sbx_exec_req req6 = {.shell = "wc -c", .stdin_data = data, .stdin_len = big};
    sbx_exec_result_init(&res);
    T_OK(f.p->ops->exec(f.p, h, &req6, &res, &err));
    T_EQ_INT(atoll(buf_cstr(&res.output)), (long long)big);
    sbx_exec_result_cleanup(&res);
    free(data);
    /* stdout and stderr interleave on one stream */
    T_EQ_INT(lfx_run(&f, h, "echo out; echo err >&2; echo out2", &out), 0);
    T_EQ_STR(out, "out\nerr\nout2\n");
    free(out);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* Output streams to the callback as it is produced, and the cap truncates what is kept. */
static void t_exec_streaming_and_cap(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-stream");
    struct ab_err err;
    ab_err_clear(&err);
    struct chunks c = {0};
    buf_init(&c.all, 1 << 20);
    struct sbx_exec_req req = {
        .shell = "echo one; sleep 0.3; echo two", .on_output = on_chunk, .on_output_arg = &c};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    T_OK(f.p->ops->exec(f.p, h, &req, &res, &err));
    T_EQ_STR(buf_cstr(&res.output), "one\ntwo\n");
    T_EQ_STR(buf_cstr(&c.all), "one\ntwo\n");
    T_ASSERT(c.n >= 2); /* "one" arrived before "two" was even written */
    sbx_exec_result_cleanup(&res);
    /* 1 MB of output, cap 1000 bytes */
    struct sbx_exec_req req2 = {.shell = "head -c 1000000 /dev/zero | tr '\\0' x; echo; exit 5",
                                .output_cap = 1000};
    sbx_exec_result_init(&res);
    T_OK(f.p->ops->exec(f.p, h, &req2, &res, &err));
    T_EQ_INT(res.exit_code, 5);
    T_ASSERT(res.truncated);
    T_EQ_INT(res.output.len, 1000);
    T_ASSERT(res.output.data[0] == 'x' && res.output.data[999] == 'x');
    sbx_exec_result_cleanup(&res);
    /* exactly at the cap: not truncated */
    struct sbx_exec_req req3 = {.shell = "printf 12345", .output_cap = 5};
    sbx_exec_result_init(&res);
    T_OK(f.p->ops->exec(f.p, h, &req3, &res, &err));
    T_ASSERT(!res.truncated);
    T_EQ_STR(buf_cstr(&res.output), "12345");
    sbx_exec_result_cleanup(&res);
    buf_cleanup(&c.all);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

struct canceller {
    struct ab_cancel *c;
};

static void *cancel_later(void *arg)
{
    struct canceller *x = arg;
    usleep(200 * 1000);
    ab_cancel_fire(x->c, "test");
    return NULL;
}

static void t_exec_cancel(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-cancel");
    struct ab_cancel cancel;
    ab_cancel_init(&cancel);
    struct canceller x = {&cancel};
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, &x);
    struct sbx_exec_req req = {.shell = "echo started; sleep 60", .cancel = &cancel};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(f.p->ops->exec(f.p, h, &req, &res, &err));
    pthread_join(t, NULL);
    T_ASSERT(res.cancelled);
    T_ASSERT(!res.timed_out);
    T_EQ_INT(res.exit_code, 137);
    T_EQ_STR(buf_cstr(&res.output), "started\n");
    sbx_exec_result_cleanup(&res);
    ab_cancel_cleanup(&cancel);
    /* the sandbox is fine afterwards */
    lfx_expect_sh(&f, h, "echo ok", "ok\n");
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* Host processes in the PID namespace named by ns (a readlink of /proc/PID/ns/pid). */
static int count_ns_procs(const char *ns)
{
    DIR *d = opendir("/proc");
    T_ASSERT(d != NULL);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[64], link[128];
        snprintf(path, sizeof(path), "/proc/%s/ns/pid", de->d_name);
        ssize_t r = readlink(path, link, sizeof(link) - 1);
        if (r <= 0)
            continue;
        link[r] = '\0';
        n += strcmp(link, ns) == 0;
    }
    closedir(d);
    return n;
}

/* Background processes outlive the command (like a pod) until the sandbox is destroyed,
 * and destroy kills the whole PID namespace. */
static void t_exec_background(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-bg");
    /* The background job keeps the output pipe open: exec must still return. */
    lfx_expect_sh(&f, h, "sleep 987654 & echo started", "started\n");
    /* ... even one that keeps writing to it: exec ends when the command itself exits */
    char *out = lfx_sh(&f, h, "(while true; do echo spam; sleep 0.05; done) & echo started2");
    T_ASSERT(strstr(out, "started2\n") != NULL);
    free(out);
    lfx_expect_sh(&f, h, "ps -e -o args= | grep -c '^sleep 987654'", "1\n");
    lfx_expect_sh(&f, h, "echo still responsive", "still responsive\n");
    json_t *st;
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(f.p->ops->status(f.p, h, &st, &err));
    pid_t helper = (pid_t)json_integer_value(json_object_get(st, "pid"));
    json_decref(st);
    T_ASSERT(helper > 0 && kill(helper, 0) == 0);
    char path[64], ns[128];
    snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)helper);
    ssize_t nl = readlink(path, ns, sizeof(ns) - 1);
    T_ASSERT(nl > 0);
    ns[nl] = '\0';
    T_ASSERT(count_ns_procs(ns) >= 3); /* the helper, sleep, the spam loop */
    lfx_destroy(&f, h);
    T_ASSERT(kill(helper, 0) < 0);
    /* No process of the sandbox survives on the host. */
    T_EQ_INT(count_ns_procs(ns), 0);
    lfx_done(&f);
}

struct par {
    struct lfx *f;
    struct sbx_handle *h;
    int idx;
    int ok;
};

static void *par_main(void *arg)
{
    struct par *x = arg;
    for (int i = 0; i < 20; i++) {
        char cmd[64], want[64], *out;
        snprintf(cmd, sizeof(cmd), "echo %d-%d", x->idx, i);
        snprintf(want, sizeof(want), "%d-%d\n", x->idx, i);
        struct sbx_exec_req req = {.shell = cmd};
        struct sbx_exec_result res;
        sbx_exec_result_init(&res);
        struct ab_err err;
        ab_err_clear(&err);
        if (x->f->p->ops->exec(x->f->p, x->h, &req, &res, &err) == AB_OK &&
            strcmp(buf_cstr(&res.output), want) == 0)
            x->ok++;
        sbx_exec_result_cleanup(&res);
        char path[64];
        snprintf(path, sizeof(path), "/workspace/t%d", x->idx);
        out = cmd;
        if (x->f->p->ops->write_file(x->f->p, x->h, path, out, strlen(out), &err) == AB_OK) {
            struct buf b;
            buf_init(&b, 1024);
            if (x->f->p->ops->read_file(x->f->p, x->h, path, 1024, &b, &err) == AB_OK &&
                strcmp(buf_cstr(&b), cmd) == 0)
                x->ok++;
            buf_cleanup(&b);
        }
    }
    return NULL;
}

/* Many threads use one sandbox at once (commands and files interleaved). */
static void t_concurrent_ops(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-par");
    struct par x[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        x[i] = (struct par){&f, h, i, 0};
        pthread_create(&t[i], NULL, par_main, &x[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        T_EQ_INT(x[i].ok, 40);
    }
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* ------------------------------------------------------------------------------------------
 * files
 * ---------------------------------------------------------------------------------------- */

static void t_files(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-files");
    struct sbx_provider *p = f.p;
    struct ab_err err;
    ab_err_clear(&err);
    /* write creates parents; read returns it; exec sees it */
    T_OK(p->ops->write_file(p, h, "/workspace/a/b/c.txt", "hello\n", 6, &err));
    lfx_expect_sh(&f, h, "cat /workspace/a/b/c.txt; stat -c %a /workspace/a/b /workspace/a/b/c.txt",
                  "hello\n755\n644\n");
    struct buf b;
    buf_init(&b, 1 << 20);
    T_OK(p->ops->read_file(p, h, "/workspace/a/b/c.txt", 100, &b, &err));
    T_EQ_STR(buf_cstr(&b), "hello\n");
    buf_reset(&b);
    /* limits and errors */
    T_EQ_INT(p->ops->read_file(p, h, "/workspace/a/b/c.txt", 3, &b, &err), AB_LIMIT);
    T_EQ_INT(b.len, 0);
    T_EQ_INT(p->ops->read_file(p, h, "/workspace/missing", 100, &b, &err), AB_NOTFOUND);
    T_EQ_INT(p->ops->read_file(p, h, "/workspace/a", 100, &b, &err), AB_ISDIR);
    T_EQ_INT(p->ops->write_file(p, h, "/usr/x", "x", 1, &err), AB_DENIED);
    T_EQ_INT(p->ops->write_file(p, h, "/workspace/a/b/c.txt/d", "x", 1, &err), AB_NOTDIR);
    T_EQ_INT(p->ops->write_file(p, h, "/workspace/a", "x", 1, &err), AB_ISDIR);
    T_EQ_INT(p->ops->read_file(p, h, "relative", 100, &b, &err), AB_INVAL);
    /* a FIFO or a device never hangs the helper */
    free(lfx_sh(&f, h, "mkfifo /workspace/fifo"));
    T_EQ_INT(p->ops->read_file(p, h, "/workspace/fifo", 100, &b, &err), AB_INVAL);
    T_ASSERT(p->ops->write_file(p, h, "/workspace/fifo", "x", 1, &err) != AB_OK);
    T_EQ_INT(p->ops->read_file(p, h, "/dev/zero", 100, &b, &err), AB_INVAL);
    /* symlinks resolve inside the sandbox: /etc/passwd is the sandbox's */
    free(lfx_sh(&f, h, "ln -s /etc/passwd /workspace/pw; ln -s /nonexistent /workspace/dangling"));
    T_OK(p->ops->read_file(p, h, "/workspace/pw", 1 << 20, &b, &err));
    T_ASSERT(strstr(buf_cstr(&b), "sandbox:x:1000") != NULL);
    buf_reset(&b);
    /* a big file, over many frames, both ways */
    size_t big = 5 * 1024 * 1024 + 3;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)(i * 7 + i / 4096);
    T_OK(p->ops->write_file(p, h, "/workspace/big.bin", data, big, &err));
    struct buf bb;
    buf_init(&bb, big);
    T_OK(p->ops->read_file(p, h, "/workspace/big.bin", big, &bb, &err));
    T_EQ_INT(bb.len, big);
    T_ASSERT(memcmp(bb.data, data, big) == 0);
    buf_cleanup(&bb);
    free(data);
    /* empty file */
    T_OK(p->ops->write_file(p, h, "/workspace/empty", "", 0, &err));
    T_OK(p->ops->read_file(p, h, "/workspace/empty", 10, &b, &err));
    T_EQ_INT(b.len, 0);
    /* stat */
    struct sbx_stat st;
    T_OK(p->ops->stat(p, h, "/workspace/a/b/c.txt", &st, &err));
    T_EQ_INT(st.type, SBX_FT_FILE);
    T_EQ_INT(st.size, 6);
    T_EQ_INT(st.mode, 0644);
    T_OK(p->ops->stat(p, h, "/workspace/pw", &st, &err));
    T_EQ_INT(st.type, SBX_FT_SYMLINK);
    T_EQ_INT(st.target_type, SBX_FT_FILE);
    T_OK(p->ops->stat(p, h, "/workspace/dangling", &st, &err));
    T_EQ_INT(st.target_type, SBX_FT_NONE);
    T_EQ_INT(p->ops->stat(p, h, "/workspace/nope", &st, &err), AB_NOTFOUND);
    /* list_dir */
    struct sbx_dirent *ents;
    size_t n;
    T_OK(p->ops->list_dir(p, h, "/workspace", &ents, &n, &err));
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ents[i].name, "a") == 0 && ents[i].st.type == SBX_FT_DIR)
            seen |= 1;
        if (strcmp(ents[i].name, "big.bin") == 0 && ents[i].st.size == big)
            seen |= 2;
        if (strcmp(ents[i].name, "fifo") == 0 && ents[i].st.type == SBX_FT_OTHER)
            seen |= 4;
    }
    T_EQ_INT(seen, 7);
    T_EQ_INT(n, 6); /* a, big.bin, fifo, pw, dangling, empty */
    sbx_dirents_free(ents, n);
    T_EQ_INT(p->ops->list_dir(p, h, "/workspace/big.bin", &ents, &n, &err), AB_NOTDIR);
    /* a directory of many entries comes in several frames */
    free(lfx_sh(&f, h, "mkdir /workspace/many && cd /workspace/many && seq 1 3000 | xargs touch"));
    T_OK(p->ops->list_dir(p, h, "/workspace/many", &ents, &n, &err));
    T_EQ_INT(n, 3000);
    sbx_dirents_free(ents, n);
    buf_cleanup(&b);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

static int cmp_walk(const void *a, const void *b)
{
    return strcmp(((const struct sbx_walk_entry *)a)->relpath,
                  ((const struct sbx_walk_entry *)b)->relpath);
}

static void t_walk_and_search(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-walk");
    struct sbx_provider *p = f.p;
    struct ab_err err;
    ab_err_clear(&err);
    free(lfx_sh(
        &f, h,
        "cd /workspace && mkdir -p src/lib .git/objects && echo 'int main() { return 0; }' > "
        "src/main.c && printf 'alpha\\r\\nneedle here\\nbeta needle\\n' > src/lib/x.txt && "
        "printf 'bin\\0needle' > src/bin.dat && echo needle > .git/objects/o && "
        "ln -s /etc src/etc-link"));
    struct sbx_walk_req wr = {.root = "/workspace", .skip_dot_dirs = true};
    struct sbx_walk_entry *ents;
    size_t n;
    bool trunc;
    T_OK(p->ops->walk(p, h, &wr, &ents, &n, &trunc, &err));
    T_ASSERT(!trunc);
    qsort(ents, n, sizeof(*ents), cmp_walk);
    const char *want[] = {".git",    "src",           "src/bin.dat", "src/etc-link",
                          "src/lib", "src/lib/x.txt", "src/main.c"};
    T_EQ_INT(n, AB_ARRAY_LEN(want));
    for (size_t i = 0; i < n; i++)
        T_EQ_STR(ents[i].relpath, want[i]);
    T_EQ_INT(ents[3].st.type, SBX_FT_SYMLINK); /* not followed */
    T_EQ_INT(ents[3].st.target_type, SBX_FT_DIR);
    sbx_walk_entries_free(ents, n);
    /* the same through core's fallback, for equivalence */
    struct sbx_provider_ops ops = *p->ops;
    ops.walk = NULL;
    ops.search = NULL;
    struct sbx_provider fallback = {.ops = &ops};
    T_OK(sbx_walk(&fallback, h, &wr, &ents, &n, &trunc, &err));
    T_EQ_INT(n, AB_ARRAY_LEN(want));
    sbx_walk_entries_free(ents, n);
    /* max_entries truncates */
    wr.max_entries = 3;
    T_OK(p->ops->walk(p, h, &wr, &ents, &n, &trunc, &err));
    T_EQ_INT(n, 3);
    T_ASSERT(trunc);
    sbx_walk_entries_free(ents, n);
    /* search: CR stripped, binary skipped, missing files skipped, order kept */
    const char *paths[] = {"/workspace/src/lib/x.txt", "/workspace/src/bin.dat",
                           "/workspace/missing", "/workspace/.git/objects/o"};
    struct sbx_search_req sr = {.paths = paths, .npaths = 4, .literal = "needle", .literal_len = 6};
    struct sbx_match *m;
    T_OK(p->ops->search(p, h, &sr, &m, &n, &trunc, &err));
    T_EQ_INT(n, 3);
    T_EQ_STR(m[0].path, "/workspace/src/lib/x.txt");
    T_EQ_INT(m[0].line, 2);
    T_EQ_STR(m[0].text, "needle here");
    T_EQ_INT(m[1].line, 3);
    T_EQ_STR(m[2].path, "/workspace/.git/objects/o");
    sbx_matches_free(m, n);
    struct sbx_match *m2;
    size_t n2;
    T_OK(sbx_search(&fallback, h, &sr, &m2, &n2, &trunc, &err));
    T_EQ_INT(n2, 3);
    sbx_matches_free(m2, n2);
    sr.max_matches = 2;
    T_OK(p->ops->search(p, h, &sr, &m, &n, &trunc, &err));
    T_EQ_INT(n, 2);
    T_ASSERT(trunc);
    sbx_matches_free(m, n);
    /* a line longer than the helper's 1 MiB window, and a match across its boundary */
    free(lfx_sh(&f, h,
                "cd /workspace && (head -c 1048570 /dev/zero | tr '\\0' a; printf 'needle'; "
                "head -c 2000000 /dev/zero | tr '\\0' b; printf '\\nshort needle\\n') > long.txt"));
    const char *lp[] = {"/workspace/long.txt"};
    struct sbx_search_req sr2 = {.paths = lp, .npaths = 1, .literal = "needle", .literal_len = 6};
    T_OK(p->ops->search(p, h, &sr2, &m, &n, &trunc, &err));
    T_EQ_INT(n, 2);
    T_EQ_INT(m[0].line, 1);
    T_EQ_INT(strlen(m[0].text), LCL_MATCH_TEXT_MAX);
    T_EQ_INT(m[1].line, 2);
    T_EQ_STR(m[1].text, "short needle");
    sbx_matches_free(m, n);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* ------------------------------------------------------------------------------------------
 * limits
 * ---------------------------------------------------------------------------------------- */

static json_t *status_of(struct lfx *f, struct sbx_handle *h)
{
    json_t *st;
    struct ab_err err;
    ab_err_clear(&err);
    if (f->p->ops->status(f->p, h, &st, &err))
        T_FAIL("status: %s", err.msg);
    return st;
}

static void t_limits_reported(void)
{
    struct lfx f;
    fx_config(&f);
    lfx_set(&f, "local.limits.nofile", "200");
    lfx_set(&f, "local.limits.file_size", "1MiB");
    lfx_set(&f, "local.limits.cpu_seconds", "7");
    lfx_start(&f, NULL);
    struct sbx_handle *h = lfx_create(&f, "ab-lim");
    json_t *st = status_of(&f, h);
    json_t *lim = json_object_get(st, "limits");
    T_EQ_STR(json_string_value(json_object_get(st, "state")), "running");
    T_EQ_INT(json_integer_value(json_object_get(lim, "nofile")), 200);
    T_EQ_INT(json_integer_value(json_object_get(lim, "file_size_bytes")), 1 << 20);
    T_EQ_INT(json_integer_value(json_object_get(lim, "cpu_seconds_per_command")), 7);
    T_EQ_INT(json_integer_value(json_object_get(lim, "tmp_bytes")), 64 << 20);
    const char *cg = json_string_value(json_object_get(lim, "cgroup"));
    T_ASSERT(cg != NULL);
    if (strcmp(cg, "none") == 0)
        T_FAIL("no cgroups here: %s", json_string_value(json_object_get(lim, "cgroup_note")));
    T_EQ_INT(json_integer_value(json_object_get(lim, "memory_bytes")), 256 << 20);
    T_EQ_INT(json_integer_value(json_object_get(lim, "pids")), 128);
    json_decref(st);
    /* and they are the ones in force inside */
    lfx_expect_sh(&f, h, "ulimit -n; ulimit -f; ulimit -t", "200\n2048\n7\n");
    char *out;
    T_ASSERT(lfx_run(&f, h, "head -c 2000000 /dev/zero > /workspace/f 2>&1", &out) != 0);
    free(out);
    lfx_expect_sh(&f, h, "stat -c %s /workspace/f", "1048576\n");
    lfx_expect_sh(&f, h, "df -k /tmp | tail -1 | awk '{print $2}'", "65536\n");
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* The cgroup directory the provider keeps its sandboxes' cgroups in is removed behind its
 * back (a cleanup script): the next sandbox makes it again and still gets its limits. */
static void t_cgroup_base_removed(void)
{
    struct lfx f;
    fx_init(&f);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "id=$(ls %s/servers) && find /sys/fs/cgroup -maxdepth 6 -type d "
             "-name agentbox-$id | grep -q . && find /sys/fs/cgroup -maxdepth 6 -type d "
             "-name agentbox-$id -exec rmdir {} + && ! find /sys/fs/cgroup -maxdepth 6 -type d "
             "-name agentbox-$id | grep -q .",
             f.dir);
    if (system(cmd) != 0)
        T_FAIL("could not find and remove the provider's cgroup directories");
    struct sbx_handle *h = lfx_create(&f, "ab-cgback");
    json_t *st = status_of(&f, h);
    T_EQ_INT(json_integer_value(json_object_get(json_object_get(st, "limits"), "pids")), 128);
    json_decref(st);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* A fork bomb fills its own sandbox's process limit; another sandbox and the server are
 * unaffected, and destroy ends it. */
static void fork_bomb(void)
{
    struct lfx f;
    fx_config(&f);
    lfx_set(&f, "local.limits.pids", "64");
    lfx_start(&f, NULL);
    struct sbx_handle *bomb = lfx_create(&f, "ab-bomb");
    struct sbx_handle *other = lfx_create(&f, "ab-calm");
    char *out;
    lfx_run_ex(&f, bomb, "(bash -c 'b(){ b | b & }; b' >/dev/null 2>&1 &); echo lit", 10000, &out,
               NULL);
    /* The launcher is itself in the background: bash retries a failed fork for seconds, and
     * once the bomb fills the limit the top-level bash could be the one waiting. */
    T_EQ_STR(out, "lit\n");
    free(out);
    /* With a pids cgroup, its count reaches the limit (so the bomb really went off) and stays
     * there; without one (an unprivileged server), RLIMIT_NPROC of the sandbox's own user
     * namespace holds it. */
    json_t *st = status_of(&f, bomb);
    json_t *pids = json_object_get(json_object_get(st, "usage"), "pids");
    for (int i = 0; pids && json_integer_value(pids) < 32 && i < 100; i++) {
        usleep(50 * 1000);
        json_decref(st);
        st = status_of(&f, bomb);
        pids = json_object_get(json_object_get(st, "usage"), "pids");
    }
    if (pids) {
        printf("  fork bomb: %lld processes (limit 64)\n", (long long)json_integer_value(pids));
        T_ASSERT(json_integer_value(pids) >= 32);
        T_ASSERT(json_integer_value(pids) <= 64);
    } else
        T_EQ_INT(json_integer_value(json_object_get(json_object_get(st, "limits"), "nproc_rlimit")),
                 64);
    json_decref(st);
    for (int i = 0; i < 5; i++)
        lfx_expect_sh(&f, other, "echo fine", "fine\n");
    /* the server process can still fork */
    pid_t c = fork();
    if (c == 0)
        _exit(0);
    T_ASSERT(c > 0);
    waitpid(c, NULL, 0);
    lfx_destroy(&f, bomb); /* kills the whole namespace */
    lfx_expect_sh(&f, other, "echo fine", "fine\n");
    lfx_destroy(&f, other);
    lfx_done(&f);
}

/* A memory bomb is killed inside its sandbox; the helper, other sandboxes and the server
 * keep working. */
static void memory_bomb(void)
{
    struct lfx f;
    fx_config(&f);
    lfx_set(&f, "local.limits.memory", "128MiB");
    lfx_start(&f, NULL);
    struct sbx_handle *bomb = lfx_create(&f, "ab-mbomb");
    struct sbx_handle *other = lfx_create(&f, "ab-mcalm");
    json_t *st = status_of(&f, bomb);
    if (!json_is_integer(json_object_get(json_object_get(st, "limits"), "memory_bytes")))
        T_FAIL("no memory cgroup limit in force here");
    json_decref(st);
    char *out;
    int code = lfx_run_ex(&f, bomb, "python3 -c \"x = 'a' * (1024 * 1024 * 1024); print(len(x))\"",
                          60000, &out, NULL);
    T_EQ_INT(code, 137); /* SIGKILL from the OOM killer */
    free(out);
    lfx_expect_sh(&f, bomb, "echo survived", "survived\n");
    lfx_expect_sh(&f, other, "echo fine", "fine\n");
    lfx_destroy(&f, bomb);
    lfx_destroy(&f, other);
    lfx_done(&f);
}

BOTH_MODES(fork_bomb)
BOTH_MODES(memory_bomb)

/* ------------------------------------------------------------------------------------------
 * lifecycle: restart, helper death, crash consistency
 * ---------------------------------------------------------------------------------------- */

static void t_restart_keeps_workspace(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-persist");
    free(lfx_sh(&f, h, "echo kept > /workspace/note.txt; sleep 1000 &"));
    /* a shutdown releases (does not destroy) */
    f.p->ops->release(f.p, h);
    lfx_stop(&f);
    lfx_start(&f, NULL);
    struct sbx_list_page page;
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(f.p->ops->list(f.p, NULL, NULL, NULL, 0, &page, &err));
    T_EQ_INT(page.n, 1);
    T_EQ_STR(page.items[0].name, "ab-persist");
    sbx_list_page_cleanup(&page);
    struct sbx_info info;
    T_OK(f.p->ops->attach(f.p, "ab-persist", &h, &info, &err));
    T_EQ_STR(info.name, "ab-persist");
    sbx_info_cleanup(&info);
    json_t *st = status_of(&f, h);
    T_EQ_STR(json_string_value(json_object_get(st, "state")), "stopped");
    json_decref(st);
    lfx_expect_sh(&f, h, "cat /workspace/note.txt", "kept\n");
    /* processes do not survive a restart */
    lfx_expect_sh(&f, h, "ps -e -o comm= | grep -c sleep; true", "0\n");
    T_EQ_INT(f.p->ops->attach(f.p, "ab-persist", &h, &info, &err), AB_BUSY);
    T_EQ_INT(f.p->ops->attach(f.p, "ab-nope", &h, &info, &err), AB_NOTFOUND);
    lfx_destroy(&f, h);
    T_OK(f.p->ops->list(f.p, NULL, NULL, NULL, 0, &page, &err));
    T_EQ_INT(page.n, 0);
    sbx_list_page_cleanup(&page);
    lfx_done(&f);
}

static pid_t helper_pid(struct lfx *f, struct sbx_handle *h)
{
    json_t *st = status_of(f, h);
    pid_t pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
    json_decref(st);
    return pid;
}

static void wait_gone(pid_t pid)
{
    int64_t deadline = ab_mono_ms() + 10000;
    while (kill(pid, 0) == 0) {
        if (ab_mono_ms() > deadline)
            T_FAIL("process %d did not exit", (int)pid);
        usleep(10000);
    }
}

/* A helper that dies (killed, OOM) is restarted by the next call, workspace intact. */
static void t_helper_death_recreate(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_handle *h = lfx_create(&f, "ab-phoenix");
    free(lfx_sh(&f, h, "echo data > /workspace/f"));
    pid_t pid = helper_pid(&f, h);
    T_OK(kill(pid, SIGKILL));
    wait_gone(pid);
    json_t *st = status_of(&f, h);
    T_EQ_STR(json_string_value(json_object_get(st, "state")), "dead");
    json_decref(st);
    lfx_expect_sh(&f, h, "cat /workspace/f", "data\n");
    T_ASSERT(helper_pid(&f, h) != pid);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* ... or, with local.recreate_on_death false, the next call gets a clear error. */
static void t_helper_death_error(void)
{
    struct lfx f;
    fx_config(&f);
    lfx_set(&f, "local.recreate_on_death", "false");
    lfx_start(&f, NULL);
    struct sbx_handle *h = lfx_create(&f, "ab-dead");
    pid_t pid = helper_pid(&f, h);
    T_OK(kill(pid, SIGKILL));
    wait_gone(pid);
    struct sbx_exec_req req = {.shell = "true"};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    struct ab_err err;
    ab_err_clear(&err);
    T_EQ_INT(f.p->ops->exec(f.p, h, &req, &res, &err), AB_SANDBOX);
    T_ASSERT(strstr(err.msg, "recreate_on_death") != NULL);
    sbx_exec_result_cleanup(&res);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* A server killed with SIGKILL leaves a consistent state directory, and its sandboxes'
 * processes die with it. */
static void t_sigkill_server(void)
{
    struct lfx f;
    fx_config(&f);
    int pipefd[2];
    T_OK(pipe(pipefd));
    pid_t server = fork();
    if (server == 0) {
        close(pipefd[0]);
        lfx_start(&f, NULL);
        struct sbx_handle *h = lfx_create(&f, "ab-crash-a");
        free(lfx_sh(&f, h, "echo before-crash > /workspace/f; sleep 999 &"));
        pid_t hp = helper_pid(&f, h);
        lfx_create(&f, "ab-crash-b");
        write(pipefd[1], &hp, sizeof(hp));
        /* keep creating and writing until killed */
        for (int i = 0;; i++) {
            char name[32];
            snprintf(name, sizeof(name), "ab-crash-n%d", i);
            struct sbx_handle *x = lfx_create(&f, name);
            struct ab_err err;
            f.p->ops->write_file(f.p, x, "/workspace/x", "x", 1, &err);
            struct sbx_info info;
            sbx_info_init(&info);
            info.name = ab_strdup(name);
            info.principal = ab_strdup("");
            info.labels = json_object();
            info.last_used_ms = ab_wall_ms();
            f.p->ops->update_info(f.p, x, &info, &err); /* meta.json rewritten */
            sbx_info_cleanup(&info);
        }
    }
    close(pipefd[1]);
    pid_t hp = 0;
    T_EQ_INT(read(pipefd[0], &hp, sizeof(hp)), sizeof(hp));
    close(pipefd[0]);
    usleep(100 * 1000);
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    wait_gone(hp); /* the helper noticed and took its namespace down */
    lfx_start(&f, NULL);
    struct sbx_info info;
    struct sbx_handle *h;
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(f.p->ops->attach(f.p, "ab-crash-a", &h, &info, &err));
    sbx_info_cleanup(&info);
    lfx_expect_sh(&f, h, "cat /workspace/f", "before-crash\n");
    lfx_destroy(&f, h);
    /* every listed sandbox is complete */
    struct sbx_list_page page;
    T_OK(f.p->ops->list(f.p, NULL, NULL, NULL, 1000, &page, &err));
    T_ASSERT(page.n >= 1);
    for (size_t i = 0; i < page.n; i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/sandboxes/%s/workspace", f.dir, page.items[i].name);
        struct stat st;
        T_OK(stat(path, &st));
    }
    sbx_list_page_cleanup(&page);
    /* and nothing half-done is left behind: only the new server's own directory remains */
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "ls -A %s/servers | wc -l; (find %s/servers -mindepth 3; find %s -name '*.tmp*' "
             "-not -path '*/workspace/*') | wc -l",
             f.dir, f.dir, f.dir);
    FILE *pp = popen(cmd, "r");
    char line[32] = "", line2[32] = "";
    T_ASSERT(fgets(line, sizeof(line), pp) != NULL);
    T_ASSERT(fgets(line2, sizeof(line2), pp) != NULL);
    pclose(pp);
    T_EQ_INT(atoi(line), 1);
    T_EQ_INT(atoi(line2), 0);
    lfx_done(&f);
}

/* Labels, principals and pagination in list(). */
static void t_list(void)
{
    struct lfx f;
    fx_init(&f);
    struct ab_err err;
    ab_err_clear(&err);
    struct sbx_handle *hs[5];
    for (int i = 0; i < 5; i++) {
        struct sbx_info info;
        sbx_info_init(&info);
        info.name = ab_asprintf("ab-list-%d", i);
        info.principal = ab_strdup(i < 4 ? "alice" : "bob");
        info.labels = json_pack("{s:s}", "team", i % 2 ? "odd" : "even");
        struct sbx_create_req req = {.info = &info};
        T_OK(f.p->ops->create(f.p, &req, &hs[i], &err));
        sbx_info_cleanup(&info);
    }
    struct sbx_list_page page;
    T_OK(f.p->ops->list(f.p, "alice", "team=even", NULL, 0, &page, &err));
    T_EQ_INT(page.n, 2);
    T_EQ_STR(page.items[0].name, "ab-list-0");
    T_EQ_STR(page.items[1].name, "ab-list-2");
    sbx_list_page_cleanup(&page);
    /* pages of two over alice's four */
    char *cursor = NULL;
    int total = 0, pages = 0;
    do {
        T_OK(f.p->ops->list(f.p, "alice", NULL, cursor, 2, &page, &err));
        free(cursor);
        cursor = page.next_cursor ? ab_strdup(page.next_cursor) : NULL;
        total += (int)page.n;
        pages++;
        sbx_list_page_cleanup(&page);
    } while (cursor && pages < 10);
    T_EQ_INT(total, 4);
    T_EQ_INT(pages, 2);
    T_EQ_INT(f.p->ops->list(f.p, NULL, "bad selector!!", NULL, 0, &page, &err), AB_INVAL);
    for (int i = 0; i < 5; i++)
        lfx_destroy(&f, hs[i]);
    lfx_done(&f);
}

/* Warm sandboxes: anonymous creation, then bind() gives them a name. */
static void t_bind(void)
{
    struct lfx f;
    fx_init(&f);
    struct ab_err err;
    ab_err_clear(&err);
    struct sbx_info anon;
    sbx_info_init(&anon);
    struct sbx_create_req req = {.info = &anon};
    struct sbx_handle *h;
    T_OK(f.p->ops->create(f.p, &req, &h, &err));
    free(lfx_sh(&f, h, "echo warm > /workspace/w"));
    struct sbx_info info;
    sbx_info_init(&info);
    info.name = ab_strdup("ab-bound");
    info.principal = ab_strdup("p");
    info.labels = json_object();
    info.warm = true;
    T_OK(f.p->ops->bind(f.p, h, &info, &err));
    lfx_expect_sh(&f, h, "cat /workspace/w && echo more >> /workspace/w", "warm\n");
    char path[256];
    snprintf(path, sizeof(path), "%s/sandboxes/ab-bound/workspace/w", f.dir);
    FILE *fp = fopen(path, "r");
    T_ASSERT(fp != NULL);
    char line[64];
    T_ASSERT(fgets(line, sizeof(line), fp) && strcmp(line, "warm\n") == 0);
    fclose(fp);
    struct sbx_list_page page;
    T_OK(f.p->ops->list(f.p, NULL, NULL, NULL, 0, &page, &err));
    T_EQ_INT(page.n, 1);
    T_ASSERT(page.items[0].warm);
    sbx_list_page_cleanup(&page);
    T_EQ_INT(f.p->ops->bind(f.p, h, &info, &err), AB_INVAL); /* already named */
    sbx_info_cleanup(&info);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* When namespaces are denied (here by a seccomp filter, as container runtimes install),
 * the provider refuses to start and names the cause and the remedy. */
static void t_namespaces_denied(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    T_ASSERT(ctx != NULL);
    const uint64_t flags[] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET};
    for (size_t i = 0; i < AB_ARRAY_LEN(flags); i++)
        T_OK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, flags[i], flags[i])));
    T_OK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 0));
    T_OK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0));
    T_OK(seccomp_load(ctx)); /* this test process only (each case is forked) */
    seccomp_release(ctx);
    struct lfx f;
    fx_config(&f);
    const char *bin = getenv("AGENTBOX_BIN");
    T_ASSERT(bin != NULL);
    sbx_local_set_helper_binary(bin);
    struct ab_err err;
    ab_err_clear(&err);
    T_EQ_INT(sbx_local_new(&f.cfg, &f.p, &err), AB_UNSUPPORTED);
    T_ASSERT(f.p == NULL);
    printf("  message: %s\n", err.msg);
    T_ASSERT(strstr(err.msg, "seccomp") != NULL);
    T_ASSERT(strstr(err.msg, "namespace") != NULL);
    T_ASSERT(strstr(err.msg, "Remedy:") != NULL);
    T_ASSERT(strstr(err.msg, "unconfined") != NULL);
    T_OK(lcl__rm_tree(f.dir, NULL));
    cfg_cleanup(&f.cfg);
}

/* Two servers may share a state directory (two stdio sessions on one machine): each sees
 * the other's sandboxes, and a sandbox runs under one server at a time. */
static void t_shared_state_dir(void)
{
    struct lfx f;
    fx_init(&f);
    struct sbx_provider *b = NULL;
    struct ab_err err;
    ab_err_clear(&err);
    if (sbx_local_new(&f.cfg, &b, &err))
        T_FAIL("second server: %s", err.msg);
    struct sbx_handle *ha = lfx_create(&f, "ab-shared");
    free(lfx_sh(&f, ha, "echo from-a > /workspace/f"));
    struct sbx_list_page page;
    T_OK(b->ops->list(b, NULL, NULL, NULL, 0, &page, &err));
    T_EQ_INT(page.n, 1);
    T_EQ_STR(page.items[0].name, "ab-shared");
    sbx_list_page_cleanup(&page);
    struct sbx_handle *hb;
    struct sbx_info info;
    T_EQ_INT(b->ops->attach(b, "ab-shared", &hb, &info, &err), AB_BUSY);
    /* the same name cannot be created twice either */
    struct sbx_info ni;
    sbx_info_init(&ni);
    ni.name = ab_strdup("ab-shared");
    ni.principal = ab_strdup("");
    ni.labels = json_object();
    struct sbx_create_req req = {.info = &ni};
    T_EQ_INT(b->ops->create(b, &req, &hb, &err), AB_EXISTS);
    sbx_info_cleanup(&ni);
    f.p->ops->release(f.p, ha);
    T_OK(b->ops->attach(b, "ab-shared", &hb, &info, &err));
    sbx_info_cleanup(&info);
    struct buf out;
    buf_init(&out, 1024);
    T_OK(b->ops->read_file(b, hb, "/workspace/f", 1024, &out, &err));
    T_EQ_STR(buf_cstr(&out), "from-a\n");
    buf_cleanup(&out);
    T_OK(b->ops->destroy(b, hb, &err));
    T_OK(f.p->ops->list(f.p, NULL, NULL, NULL, 0, &page, &err));
    T_EQ_INT(page.n, 0);
    sbx_list_page_cleanup(&page);
    b->ops->free(b);
    lfx_done(&f);
}

static void t_bad_config(void)
{
    struct lfx f;
    fx_config(&f);
    struct ab_err err;
    sbx_local_set_helper_binary(getenv("AGENTBOX_BIN"));
    lfx_set(&f, "local.uid", "0");
    ab_err_clear(&err);
    T_EQ_INT(sbx_local_new(&f.cfg, &f.p, &err), AB_INVAL);
    lfx_set(&f, "local.uid", "1000");
    lfx_set(&f, "local.workspace", "/usr/work");
    T_EQ_INT(sbx_local_new(&f.cfg, &f.p, &err), AB_INVAL);
    T_ASSERT(strstr(err.msg, "/usr") != NULL);
    lfx_set(&f, "local.workspace", "/workspace");
    lfx_set(&f, "local.ro_binds", "/etc");
    T_EQ_INT(sbx_local_new(&f.cfg, &f.p, &err), AB_INVAL);
    lfx_set(&f, "local.ro_binds", "");
    /* a binary that is not agentbox */
    sbx_local_set_helper_binary("/bin/true");
    T_EQ_INT(sbx_local_new(&f.cfg, &f.p, &err), AB_UNSUPPORTED);
    T_ASSERT(strstr(err.msg, "AGENTBOX_BIN") != NULL);
    T_OK(lcl__rm_tree(f.dir, NULL));
    cfg_cleanup(&f.cfg);
}

/* Root with a user namespace: the sandbox's root is local.uid on the host, which must be
 * able to walk to the workspace; if it cannot, the error says so and how to fix it. */
static void t_userns_unreachable_state(void)
{
    if (geteuid() != 0)
        return; /* only a root server maps the sandbox to local.uid (not a skip: n/a) */
    char parent[] = "/tmp/ab-test-private-XXXXXX";
    T_ASSERT(mkdtemp(parent) != NULL); /* mode 0700 */
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/state", parent);
    struct lfx f;
    fx_config(&f);
    lfx_set(&f, "state_dir", dir);
    lfx_set(&f, "local.user_namespace", "always");
    sbx_local_set_helper_binary(getenv("AGENTBOX_BIN"));
    struct ab_err err;
    ab_err_clear(&err);
    T_EQ_INT(sbx_local_new(&f.cfg, &f.p, &err), AB_UNSUPPORTED);
    T_ASSERT(strstr(err.msg, "chmod o+x") != NULL);
    chmod(parent, 0711);
    lfx_start(&f, NULL); /* and with the parent searchable it works */
    struct sbx_handle *h = lfx_create(&f, "ab-reach");
    lfx_expect_sh(&f, h, "id -u", "1000\n");
    lfx_destroy(&f, h);
    lfx_stop(&f);
    T_OK(lcl__rm_tree(parent, NULL));
    T_OK(lcl__rm_tree(f.dir, NULL));
    cfg_cleanup(&f.cfg);
}

/* Extra read-only binds and the network: host option. */
static void t_ro_binds_and_host_network(void)
{
    char extra[] = "/var/tmp/ab-test-extra-XXXXXX"; /* /tmp is the sandbox's own tmpfs */
    T_ASSERT(mkdtemp(extra) != NULL);
    chmod(extra, 0755);
    char path[128];
    snprintf(path, sizeof(path), "%s/tool.txt", extra);
    FILE *fp = fopen(path, "w");
    fputs("tool\n", fp);
    fclose(fp);
    chmod(path, 0644);
    struct lfx f;
    fx_config(&f);
    lfx_set(&f, "local.ro_binds", extra);
    lfx_set(&f, "local.network", "host");
    lfx_start(&f, NULL);
    struct sbx_handle *h = lfx_create(&f, "ab-binds");
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "cat %s/tool.txt; touch %s/x 2>/dev/null || echo ro", extra, extra);
    lfx_expect_sh(&f, h, cmd, "tool\nro\n");
    /* host network: the host's interfaces are visible */
    char *out = lfx_sh(&f, h, "tail -n +3 /proc/net/dev | wc -l");
    T_ASSERT(atoi(out) >= 2);
    free(out);
    lfx_destroy(&f, h);
    lfx_done(&f);
    unlink(path);
    rmdir(extra);
}

static const struct t_case cases[] = {
    T_CASE(iso_pid_namespace_plain),
    T_CASE(iso_pid_namespace_userns),
    T_CASE(iso_signal_host_plain),
    T_CASE(iso_signal_host_userns),
    T_CASE(iso_filesystem_view_plain),
    T_CASE(iso_filesystem_view_userns),
    T_CASE(iso_writes_plain),
    T_CASE(iso_writes_userns),
    T_CASE(iso_network_plain),
    T_CASE(iso_network_userns),
    T_CASE(iso_other_workspace_plain),
    T_CASE(iso_other_workspace_userns),
    T_CASE(iso_credentials_plain),
    T_CASE(iso_credentials_userns),
    T_CASE(iso_env_and_fds_plain),
    T_CASE(iso_env_and_fds_userns),
    T_CASE(iso_timeout_plain),
    T_CASE(iso_timeout_userns),
    T_CASE(t_exec_basics),
    T_CASE(t_exec_streaming_and_cap),
    T_CASE(t_exec_cancel),
    T_CASE(t_exec_background),
    T_CASE(t_concurrent_ops),
    T_CASE(t_files),
    T_CASE(t_walk_and_search),
    T_CASE(t_limits_reported),
    T_CASE(t_cgroup_base_removed),
    T_CASE(fork_bomb_plain),
    T_CASE(fork_bomb_userns),
    T_CASE(memory_bomb_plain),
    T_CASE(memory_bomb_userns),
    T_CASE(t_restart_keeps_workspace),
    T_CASE(t_helper_death_recreate),
    T_CASE(t_helper_death_error),
    T_CASE(t_sigkill_server),
    T_CASE(t_list),
    T_CASE(t_bind),
    T_CASE(t_namespaces_denied),
    T_CASE(t_shared_state_dir),
    T_CASE(t_bad_config),
    T_CASE(t_userns_unreachable_state),
    T_CASE(t_ro_binds_and_host_network),
    {0},
};

T_MAIN(cases)
