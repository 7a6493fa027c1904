/*
 * bench_local.c - figures for the local provider, with the baselines measured in the same
 * run by the same clock:
 *
 *   forkexec    fork + execve("/bin/true") + waitpid: the floor for running a command
 *   bwrap       Debian's bubblewrap, `bwrap --unshare-all ... true`, one sandbox per command
 *   exec        a command in an existing sandbox through the core API (sbx_provider->exec),
 *               argv ["true"] (no shell) and `sh -c true`
 *   mcp         `execute {"command":"true"}` through `agentbox serve --stdio` (JSON-RPC over a
 *               pipe; the first call, which creates the sandbox, is not counted)
 *   cold        create() of a sandbox (namespaces, mounts, helper ready); destroy not timed
 *   warm        sbx_registry_acquire() of a new thread key served from a full warm pool
 *   file        write_file + read_file of 1 KiB
 *   memory      per idle sandbox: host memory (MemAvailable) consumed per sandbox, the
 *               helper's proportional set size, and its cgroup's charge
 *   many        N sandboxes alive at once: create them all, run `true` in every one (2
 *               threads), report time and memory, destroy them
 *
 *   bench_local [--iterations N] [--sandboxes N] [--only LIST] [--set KEY=VALUE]... [--json]
 *
 * --set applies configuration keys to the provider under test (and to the MCP server), e.g.
 * --set local.user_namespace=always.
 *
 * Timings are per operation: median, p90, mean over the iterations (after a short warm-up).
 * This machine is noisy; compare the ratios, which the summary prints.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "core/registry.h"
#include "providers/local/internal.h"
#include "providers/local/local.h"

extern char **environ;

static int g_iter = 200;
static int g_many = 500;
static const char *g_only = NULL;
static bool g_json = false;
static const char *g_sets[32];
static int g_nsets;
static char g_dir[64];
static json_t *g_results;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool wanted(const char *name)
{
    if (!g_only)
        return true;
    size_t n = strlen(name);
    for (const char *p = g_only; *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == n && strncmp(p, name, n) == 0)
            return true;
        p = c ? c + 1 : p + l;
    }
    return false;
}

static void die(const char *what, const struct ab_err *err)
{
    fprintf(stderr, "bench: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

/* ---- statistics ---- */

struct series {
    const char *name;
    double *v; /* milliseconds */
    int n, cap;
};

static void add(struct series *s, int64_t ns)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = realloc(s->v, (size_t)s->cap * sizeof(double));
    }
    s->v[s->n++] = (double)ns / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct stats {
    double median, p90, mean, min;
};

static struct stats summarize(struct series *s)
{
    struct stats st = {0};
    if (!s->n)
        return st;
    qsort(s->v, (size_t)s->n, sizeof(double), cmp_double);
    double sum = 0;
    for (int i = 0; i < s->n; i++)
        sum += s->v[i];
    st.median = s->v[s->n / 2];
    st.p90 = s->v[(s->n * 9) / 10 < s->n ? (s->n * 9) / 10 : s->n - 1];
    st.mean = sum / s->n;
    st.min = s->v[0];
    return st;
}

static struct stats report(struct series *s, const char *what)
{
    struct stats st = summarize(s);
    if (!g_json)
        printf("  %-34s median %8.3f ms   p90 %8.3f ms   mean %8.3f ms   (n=%d)\n", what, st.median,
               st.p90, st.mean, s->n);
    json_object_set_new(g_results, s->name,
                        json_pack("{s:s,s:f,s:f,s:f,s:f,s:i}", "what", what, "median_ms", st.median,
                                  "p90_ms", st.p90, "mean_ms", st.mean, "min_ms", st.min, "n",
                                  s->n));
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
    return st;
}

static void note(const char *key, double value, const char *unit, const char *what)
{
    if (!g_json)
        printf("  %-34s %10.2f %s\n", what, value, unit);
    json_object_set_new(g_results, key,
                        json_pack("{s:s,s:f,s:s}", "what", what, "value", value, "unit", unit));
}

static void settle(void);

/* ---- baselines ---- */

static int64_t spawn_wait(char *const argv[])
{
    int64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        execve(argv[0], argv, environ);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    int64_t t = now_ns() - t0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench: %s failed (status %d)\n", argv[0], st);
        exit(1);
    }
    return t;
}

static struct stats bench_forkexec(void)
{
    struct series s = {.name = "forkexec"};
    char *argv[] = {"/bin/true", NULL};
    for (int i = 0; i < 20; i++)
        spawn_wait(argv);
    for (int i = 0; i < g_iter; i++)
        add(&s, spawn_wait(argv));
    return report(&s, "fork+exec /bin/true (floor)");
}

static struct stats bench_bwrap(void)
{
    struct series s = {.name = "bwrap"};
    struct stat st;
    if (stat("/usr/bin/bwrap", &st) < 0) {
        printf("  bwrap: not installed (apt-get install bubblewrap)\n");
        return (struct stats){0};
    }
    /* A sandbox comparable to ours: every namespace, /usr read-only, fresh /proc, /dev,
     * /tmp; the merged-/usr symlinks. */
    /* clang-format off */
    char *argv[] = {"/usr/bin/bwrap", "--unshare-all", "--die-with-parent",
                    "--ro-bind", "/usr", "/usr",
                    "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
                    "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                    "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/",
                    "true", NULL};
    /* clang-format on */
    for (int i = 0; i < 5; i++)
        spawn_wait(argv);
    for (int i = 0; i < g_iter; i++)
        add(&s, spawn_wait(argv));
    return report(&s, "bwrap --unshare-all ... true");
}

/* ---- the provider ---- */

static struct config g_cfg;

static struct sbx_provider *provider_new(void)
{
    struct ab_err err;
    ab_err_clear(&err);
    struct sbx_provider *p;
    if (sbx_local_new(&g_cfg, &p, &err))
        die("sbx_local_new", &err);
    return p;
}

static struct sbx_handle *create_named(struct sbx_provider *p, const char *name)
{
    struct sbx_info info;
    sbx_info_init(&info);
    info.name = ab_strdup(name);
    info.principal = ab_strdup("bench");
    info.labels = json_object();
    struct sbx_create_req req = {.info = &info};
    struct sbx_handle *h;
    struct ab_err err;
    ab_err_clear(&err);
    if (p->ops->create(p, &req, &h, &err))
        die("create", &err);
    sbx_info_cleanup(&info);
    return h;
}

static void destroy(struct sbx_provider *p, struct sbx_handle *h)
{
    struct ab_err err;
    ab_err_clear(&err);
    if (p->ops->destroy(p, h, &err))
        die("destroy", &err);
}

static int64_t exec_once(struct sbx_provider *p, struct sbx_handle *h, const char *const *argv,
                         const char *shell)
{
    struct sbx_exec_req req = {.argv = argv, .shell = shell, .timeout_ms = 30000};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    struct ab_err err;
    ab_err_clear(&err);
    int64_t t0 = now_ns();
    if (p->ops->exec(p, h, &req, &res, &err))
        die("exec", &err);
    int64_t t = now_ns() - t0;
    if (res.exit_code != 0) {
        fprintf(stderr, "bench: exec exited %d: %s\n", res.exit_code, buf_cstr(&res.output));
        exit(1);
    }
    sbx_exec_result_cleanup(&res);
    return t;
}

static struct stats bench_exec(struct sbx_provider *p, bool shell)
{
    struct sbx_handle *h = create_named(p, shell ? "ab-bench-exec-sh" : "ab-bench-exec");
    static const char *const argv[] = {"true", NULL};
    struct series s = {.name = shell ? "exec_shell" : "exec"};
    for (int i = 0; i < 20; i++)
        exec_once(p, h, shell ? NULL : argv, "true");
    for (int i = 0; i < g_iter; i++)
        add(&s, exec_once(p, h, shell ? NULL : argv, "true"));
    destroy(p, h);
    return report(&s, shell ? "exec `sh -c true` (core API)" : "exec argv [true] (core API)");
}

static struct stats bench_cold(struct sbx_provider *p)
{
    struct series s = {.name = "cold_create"};
    int n = g_iter / 4 > 20 ? g_iter / 4 : 20;
    for (int i = 0; i < n + 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "ab-bench-cold-%d", i);
        int64_t t0 = now_ns();
        struct sbx_handle *h = create_named(p, name);
        int64_t t = now_ns() - t0;
        if (i >= 3)
            add(&s, t);
        destroy(p, h);
    }
    return report(&s, "cold create (ready helper)");
}

static struct stats bench_warm(struct sbx_provider *p)
{
    struct sbx_registry_opts o = {.provider = p, .pool_size = 4, .create_timeout_s = 30};
    struct sbx_registry *reg;
    struct ab_err err;
    ab_err_clear(&err);
    if (sbx_registry_new(&o, &reg, &err))
        die("registry", &err);
    struct series s = {.name = "warm_acquire"};
    int n = g_iter / 4 > 20 ? g_iter / 4 : 20, cold = 0;
    char **names = calloc((size_t)n, sizeof(char *));
    for (int i = 0; i < n; i++) {
        if (!sbx_registry_pool_wait_full(reg, ab_mono_ms() + 30000))
            die("the pool did not fill", NULL);
        char key[32];
        snprintf(key, sizeof(key), "thread-%d", i);
        struct sbx_ref *ref;
        int64_t t0 = now_ns();
        if (sbx_registry_acquire(reg, "bench", key, NULL, &ref, &err))
            die("acquire", &err);
        int64_t t = now_ns() - t0;
        cold += !sbx_ref_info(ref)->warm;
        names[i] = ab_strdup(sbx_ref_info(ref)->name);
        sbx_ref_release(ref);
        add(&s, t);
    }
    for (int i = 0; i < n; i++) {
        if (sbx_registry_delete(reg, "bench", names[i], &err))
            die("delete", &err);
        free(names[i]);
    }
    free(names);
    sbx_registry_free(reg);
    if (cold)
        printf("  (warning: %d of %d acquisitions were cold)\n", cold, n);
    return report(&s, "warm-pool acquire (registry)");
}

static struct stats bench_files(struct sbx_provider *p)
{
    struct sbx_handle *h = create_named(p, "ab-bench-files");
    char data[1024];
    memset(data, 'f', sizeof(data));
    struct series s = {.name = "file_rw_1k"};
    struct ab_err err;
    ab_err_clear(&err);
    struct buf b;
    buf_init(&b, 4096);
    for (int i = 0; i < g_iter + 20; i++) {
        buf_reset(&b);
        int64_t t0 = now_ns();
        if (p->ops->write_file(p, h, "/workspace/bench.txt", data, sizeof(data), &err) ||
            p->ops->read_file(p, h, "/workspace/bench.txt", 4096, &b, &err))
            die("file", &err);
        int64_t t = now_ns() - t0;
        if (b.len != sizeof(data))
            die("short read", NULL);
        if (i >= 20)
            add(&s, t);
    }
    buf_cleanup(&b);
    destroy(p, h);
    return report(&s, "write + read 1 KiB (core API)");
}

/* ---- memory ---- */

static long long meminfo_kb(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "re");
    char line[256];
    long long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            v = atoll(line + kl + 1);
    if (f)
        fclose(f);
    return v;
}

/* Memory is measured in a cgroup of the bench's own (server, spawner and every sandbox
 * below it, kernel objects included): the host's MemAvailable moves with every other
 * process on the machine. */
static char g_cg[600];
static bool g_cg_v2;

static void join_bench_cgroup(void)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[512], own[512] = "";
    bool v2 = false;
    while (f && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        if (strstr(c1 + 1, "memory")) {
            snprintf(own, sizeof(own), "/sys/fs/cgroup/memory%s", c2 + 1);
            break;
        }
        if (strcmp(line, "0") == 0 && !c1[1]) {
            snprintf(own, sizeof(own), "/sys/fs/cgroup%s", c2 + 1);
            v2 = true;
        }
    }
    if (f)
        fclose(f);
    if (!own[0])
        return;
    snprintf(g_cg, sizeof(g_cg), "%s/agentbox-bench-%d", own, (int)getpid());
    char procs[700], pid[32];
    snprintf(procs, sizeof(procs), "%s/cgroup.procs", g_cg);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    int fd = -1;
    if (mkdir(g_cg, 0755) == 0)
        fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, pid, strlen(pid)) < 0) {
        rmdir(g_cg);
        g_cg[0] = '\0';
    }
    if (fd >= 0)
        close(fd);
    g_cg_v2 = v2;
}

static long long cg_usage_kb(void)
{
    if (!g_cg[0])
        return -1;
    char path[700], buf[64] = "";
    snprintf(path, sizeof(path), "%s/%s", g_cg,
             g_cg_v2 ? "memory.current" : "memory.usage_in_bytes");
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long long v = fgets(buf, sizeof(buf), f) ? atoll(buf) / 1024 : -1;
    fclose(f);
    return v;
}

static void leave_bench_cgroup(void)
{
    if (!g_cg[0])
        return;
    /* back to the parent, then remove ours */
    char parent[600], procs[700], pid[32];
    snprintf(parent, sizeof(parent), "%s", g_cg);
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = '\0';
    snprintf(procs, sizeof(procs), "%s/cgroup.procs", parent);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)!write(fd, pid, strlen(pid));
        close(fd);
    }
    rmdir(g_cg);
}

static long long pss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "re");
    long long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "Pss:", 4) == 0)
            v = atoll(line + 4);
    if (f)
        fclose(f);
    return v;
}

static void settle(void)
{
    /* Let deferred work finish before the next phase: destroyed network namespaces are
     * torn down by a kernel worker (cleanup_net) that competes for the CPU for a while. */
    sync();
    usleep(1000 * 1000);
}

static void bench_memory(struct sbx_provider *p)
{
    int n = 100;
    struct sbx_handle **hs = calloc((size_t)n, sizeof(*hs));
    settle();
    long long avail0 = meminfo_kb("MemAvailable"), cg0 = cg_usage_kb();
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "ab-bench-mem-%d", i);
        hs[i] = create_named(p, name);
    }
    settle();
    long long avail1 = meminfo_kb("MemAvailable"), cg1 = cg_usage_kb();
    long long pss = 0, cg = 0;
    int cgn = 0;
    for (int i = 0; i < n; i++) {
        json_t *st;
        struct ab_err err;
        ab_err_clear(&err);
        if (p->ops->status(p, hs[i], &st, &err))
            die("status", &err);
        pid_t pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
        pss += pss_kb(pid);
        json_t *u = json_object_get(json_object_get(st, "usage"), "memory_bytes");
        if (json_is_integer(u)) {
            cg += json_integer_value(u);
            cgn++;
        }
        json_decref(st);
    }
    if (cg0 >= 0 && cg1 >= 0)
        note("mem_per_sandbox_kib", (double)(cg1 - cg0) / n, "KiB",
             "idle sandbox: all memory (cgroup)");
    note("mem_host_per_sandbox_kib", (double)(avail0 - avail1) / n, "KiB",
         "idle sandbox: host MemAvailable drop");
    note("mem_helper_pss_kib", (double)pss / n, "KiB", "idle sandbox: helper PSS");
    if (cgn)
        note("mem_cgroup_kib", (double)cg / cgn / 1024, "KiB", "idle sandbox: cgroup charge");
    for (int i = 0; i < n; i++)
        destroy(p, hs[i]);
    free(hs);
}

/* ---- many ---- */

struct many_ctx {
    struct sbx_provider *p;
    struct sbx_handle **hs;
    int from, to;
};

static void *many_exec(void *arg)
{
    struct many_ctx *m = arg;
    static const char *const argv[] = {"true", NULL};
    for (int i = m->from; i < m->to; i++)
        exec_once(m->p, m->hs[i], argv, NULL);
    return NULL;
}

static void bench_many(struct sbx_provider *p)
{
    int n = g_many;
    struct sbx_handle **hs = calloc((size_t)n, sizeof(*hs));
    settle();
    long long avail0 = meminfo_kb("MemAvailable"), cg0 = cg_usage_kb();
    int64_t t0 = now_ns();
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "ab-bench-many-%d", i);
        hs[i] = create_named(p, name);
    }
    int64_t tc = now_ns() - t0;
    t0 = now_ns();
    pthread_t t[2];
    struct many_ctx m[2] = {{p, hs, 0, n / 2}, {p, hs, n / 2, n}};
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, many_exec, &m[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    int64_t te = now_ns() - t0;
    settle();
    long long avail1 = meminfo_kb("MemAvailable"), cg1 = cg_usage_kb();
    int fds = 0;
    for (int fd = 0; fd < 65536; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            fds++;
    note("many_sandboxes", n, "", "sandboxes alive at once");
    note("many_create_s", (double)tc / 1e9, "s", "created one after another in");
    note("many_exec_s", (double)te / 1e9, "s", "`true` in every one (2 threads) in");
    if (cg0 >= 0 && cg1 >= 0)
        note("many_mib", (double)(cg1 - cg0) / 1024, "MiB", "memory for all of them (cgroup)");
    note("many_host_mib", (double)(avail0 - avail1) / 1024, "MiB",
         "host MemAvailable drop for all of them");
    note("many_server_fds", fds, "", "server descriptors open");
    t0 = now_ns();
    for (int i = 0; i < n; i++)
        destroy(p, hs[i]);
    note("many_destroy_s", (double)(now_ns() - t0) / 1e9, "s", "destroyed one after another in");
    free(hs);
}

/* ---- through MCP over stdio ---- */

struct mcp_conn {
    pid_t pid;
    int in, out; /* our ends: we write in, read out */
    struct buf rd;
};

static void mcp_send(struct mcp_conn *c, const char *line)
{
    size_t len = strlen(line);
    while (len) {
        ssize_t w = write(c->in, line, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            die("write to agentbox", NULL);
        line += w;
        len -= (size_t)w;
    }
}

/* Read lines until the response with this id arrives; returns it (new). */
static json_t *mcp_wait(struct mcp_conn *c, int id)
{
    for (;;) {
        const char *nl = c->rd.len ? memchr(c->rd.data, '\n', c->rd.len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - c->rd.data);
            json_t *j = json_loadb(c->rd.data, n, 0, NULL);
            buf_consume(&c->rd, n + 1);
            if (j && json_integer_value(json_object_get(j, "id")) == id &&
                (json_object_get(j, "result") || json_object_get(j, "error")))
                return j;
            json_decref(j);
            continue;
        }
        char chunk[65536];
        ssize_t r = read(c->out, chunk, sizeof(chunk));
        if (r <= 0)
            die("agentbox closed stdout", NULL);
        if (buf_append(&c->rd, chunk, (size_t)r))
            die("response too large", NULL);
    }
}

static struct stats bench_mcp(const char *bin)
{
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
        die("pipe", NULL);
    char dir[128], set_dir[160];
    snprintf(dir, sizeof(dir), "%s/mcp", g_dir);
    mkdir(dir, 0700);
    snprintf(set_dir, sizeof(set_dir), "state_dir=%s", dir);
    char *argv[16 + 2 * 32];
    int argc = 0;
    argv[argc++] = (char *)bin;
    argv[argc++] = "serve";
    argv[argc++] = "--stdio";
    argv[argc++] = "--log-level";
    argv[argc++] = "error";
    argv[argc++] = "--set";
    argv[argc++] = set_dir;
    argv[argc++] = "--set";
    argv[argc++] = "sandbox.pool.size=0";
    for (int i = 0; i < g_nsets; i++) {
        argv[argc++] = "--set";
        argv[argc++] = (char *)g_sets[i];
    }
    argv[argc] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, to[0], 0);
    posix_spawn_file_actions_adddup2(&fa, from[1], 1);
    struct mcp_conn c = {.in = to[1], .out = from[0]};
    buf_init(&c.rd, 64 << 20);
    if (posix_spawn(&c.pid, bin, &fa, NULL, argv, environ))
        die("spawn agentbox serve", NULL);
    posix_spawn_file_actions_destroy(&fa);
    close(to[0]);
    close(from[1]);
    mcp_send(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
                 "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{"
                 "\"name\":\"bench\",\"version\":\"1\"}}}\n");
    json_decref(mcp_wait(&c, 1));
    mcp_send(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
    struct series s = {.name = "mcp_exec"};
    for (int i = 0; i < g_iter + 20; i++) {
        char line[256];
        int id = 100 + i;
        snprintf(line, sizeof(line),
                 "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\",\"params\":{"
                 "\"name\":\"execute\",\"arguments\":{\"command\":\"true\"}}}\n",
                 id);
        int64_t t0 = now_ns();
        mcp_send(&c, line);
        json_t *r = mcp_wait(&c, id);
        int64_t t = now_ns() - t0;
        json_t *res = json_object_get(r, "result");
        if (!res || json_is_true(json_object_get(res, "isError"))) {
            char *txt = json_dumps(r, 0);
            fprintf(stderr, "bench: execute failed: %s\n", txt);
            exit(1);
        }
        json_decref(r);
        if (i >= 20) /* the first creates the sandbox */
            add(&s, t);
    }
    close(c.in);
    int st;
    waitpid(c.pid, &st, 0);
    close(c.out);
    buf_cleanup(&c.rd);
    return report(&s, "execute `true` via MCP stdio");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], SBX_LOCAL_HELPER_ARG) == 0)
        return sbx_local_helper_main(argc, argv);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc)
            g_iter = atoi(argv[++i]);
        else if (strcmp(argv[i], "--sandboxes") == 0 && i + 1 < argc)
            g_many = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            g_only = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            g_json = true;
        else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc && g_nsets < 32)
            g_sets[g_nsets++] = argv[++i];
        else {
            fprintf(stderr, "usage: bench_local [--iterations N] [--sandboxes N] [--only "
                            "forkexec,bwrap,exec,mcp,cold,warm,file,memory,many] "
                            "[--set KEY=VALUE]... [--json]\n");
            return 2;
        }
    }
    ab_log_configure(AB_LOG_WARN, AB_LOG_FORMAT_HUMAN, 2);
    const char *bin = getenv("AGENTBOX_BIN");
    if (!bin) {
        fprintf(stderr, "bench: set AGENTBOX_BIN to the agentbox binary\n");
        return 2;
    }
    sbx_local_set_helper_binary(bin);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    g_results = json_object();
    join_bench_cgroup(); /* before the provider exists, so its spawner is inside too */
    snprintf(g_dir, sizeof(g_dir), "/tmp/agentbox-bench-XXXXXX");
    if (!mkdtemp(g_dir))
        die("mkdtemp", NULL);
    chmod(g_dir, 0711); /* reachable by the sandbox user in user-namespace mode */
    char state[128];
    snprintf(state, sizeof(state), "%s/state", g_dir);
    struct ab_err err;
    ab_err_clear(&err);
    cfg_init_defaults(&g_cfg, &err);
    cfg_set(&g_cfg, "state_dir", state, &err);
    cfg_set(&g_cfg, "sandbox.pool.size", "0", &err);
    for (int i = 0; i < g_nsets; i++) {
        char key[128];
        const char *eq = strchr(g_sets[i], '=');
        if (!eq || (size_t)(eq - g_sets[i]) >= sizeof(key)) {
            fprintf(stderr, "bench: --set KEY=VALUE\n");
            return 2;
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - g_sets[i]), g_sets[i]);
        if (cfg_set(&g_cfg, key, eq + 1, &err))
            die("--set", &err);
    }

    if (!g_json)
        printf("agentbox local provider benchmark (%d iterations, %ld CPUs)\n", g_iter,
               sysconf(_SC_NPROCESSORS_ONLN));
    struct stats fe = {0}, bw = {0}, ex = {0}, mcp = {0};
    if (wanted("forkexec"))
        fe = bench_forkexec();
    if (wanted("bwrap"))
        bw = bench_bwrap();
    struct sbx_provider *p = NULL;
    if (wanted("exec") || wanted("cold") || wanted("warm") || wanted("file") || wanted("memory") ||
        wanted("many"))
        p = provider_new();
    if (wanted("exec")) {
        ex = bench_exec(p, false);
        bench_exec(p, true);
    }
    if (wanted("file"))
        bench_files(p);
    if (wanted("mcp")) {
        settle();
        mcp = bench_mcp(bin);
    }
    if (wanted("cold")) {
        settle();
        bench_cold(p);
    }
    if (wanted("warm")) {
        settle();
        bench_warm(p);
    }
    if (wanted("memory")) {
        settle();
        bench_memory(p);
    }
    if (wanted("many")) {
        settle();
        bench_many(p);
    }
    if (p)
        p->ops->free(p);
    if (fe.median > 0 && ex.median > 0) {
        note("ratio_exec_vs_forkexec", ex.median / fe.median, "x",
             "exec / fork+exec (target <= 2)");
        if (bw.median > 0)
            note("ratio_bwrap_vs_exec", bw.median / ex.median, "x", "bwrap / exec (target >= 3)");
        if (mcp.median > 0)
            note("ratio_mcp_vs_forkexec", mcp.median / fe.median, "x", "MCP execute / fork+exec");
    }
    if (g_json) {
        char *s = json_dumps(g_results, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(s);
        free(s);
    }
    json_decref(g_results);
    cfg_cleanup(&g_cfg);
    lcl__rm_tree(g_dir, NULL);
    leave_bench_cgroup();
    return 0;
}
