/*
 * doctor.c - `agentbox doctor` for the local provider: what this host offers, one check per
 * thing a sandbox needs, each failure explained by the same diagnosis the server prints at
 * startup (diag.c), so doctor and server never disagree about a cause or its remedy.
 *
 * How: every namespace type is tried alone in a forked child (unshare(2), together with a
 * user namespace when the server would use one), then mounts inside a new mount + PID
 * namespace (a tmpfs and a fresh proc, which container runtimes' masked /proc forbids: the
 * kernel's mount_too_revealing()), then the sandbox seccomp filter is loaded in a child and
 * must refuse unshare, then cgroups and the state directory are inspected, and finally one
 * real sandbox is created, runs a command and is destroyed through the provider itself.
 * Children report {step, errno} over a pipe and exit; nothing they do outlives them (their
 * namespaces die with them). The end-to-end sandbox lives under a temporary state directory
 * and a cgroup tag of its own, so a server running on the real state directory is never
 * disturbed (its lock is only tested, never taken).
 *
 * Rejected: asking the spawner to probe (lcl__spawner_probe). It answers "which flag fails"
 * but not "can /proc be mounted" or "does the filter load", and the end-to-end check runs
 * the spawner anyway.
 */
#include "core/doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/seccomp.h>

#include "base/util.h"
#include "providers/local/internal.h"
#include "providers/local/local.h"

#define PROBE_TIMEOUT_MS    10000
#define FILTER_NOT_ENFORCED (-1) /* errnum of a seccomp probe whose unshare succeeded */

/* What a probe child reports: the step that failed ("" = all succeeded) and its errno. */
struct probe_rec {
    char step[48];
    int errnum;
};

static void probe_report(int fd, const char *step, int errnum)
{
    struct probe_rec rec = {.errnum = errnum};
    snprintf(rec.step, sizeof(rec.step), "%s", step);
    /* One small write(2) on a pipe is atomic (pipe(7), PIPE_BUF). */
    if (write(fd, &rec, sizeof(rec)) < 0)
        _exit(3);
}

static int write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, s, strlen(s));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(s) ? 0 : -1;
}

struct ns_probe {
    uint32_t flags; /* CLONE_NEW* to unshare */
    bool userns;    /* flags has CLONE_NEWUSER: map our ids like the spawner does */
    bool mounts;    /* then become PID 1 and mount a tmpfs and a fresh /proc */
    const struct sock_fprog *filter; /* or: load this filter and expect unshare to fail */
};

/* Runs in the forked child; reports once and exits. */
static __attribute__((noreturn)) void probe_child(int fd, const struct ns_probe *p)
{
    if (p->filter) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
            probe_report(fd, "prctl(PR_SET_NO_NEW_PRIVS)", errno);
            _exit(0);
        }
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, p->filter) < 0) {
            probe_report(fd, "install the seccomp filter", errno);
            _exit(0);
        }
        /* The filter must now refuse what a sandbox may never do. */
        if (unshare(CLONE_NEWUTS) == 0 || errno != EPERM)
            probe_report(fd, "unshare under the filter", FILTER_NOT_ENFORCED);
        else
            probe_report(fd, "", 0);
        _exit(0);
    }
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare((int)p->flags) < 0) {
        probe_report(fd, "clone", errno);
        _exit(0);
    }
    if (p->userns) {
        char map[64];
        /* user_namespaces(7): a process writing its own maps has no capability in the
         * parent namespace, even as root, so it must deny setgroups before gid_map. (The
         * spawner writes a helper's maps from outside and need not.) */
        if (write_file("/proc/self/setgroups", "deny") < 0 && errno != ENOENT) {
            probe_report(fd, "write /proc/self/setgroups", errno);
            _exit(0);
        }
        snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
        if (write_file("/proc/self/uid_map", map) < 0) {
            probe_report(fd, "write uid_map", errno);
            _exit(0);
        }
        snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
        if (write_file("/proc/self/gid_map", map) < 0) {
            probe_report(fd, "write gid_map", errno);
            _exit(0);
        }
    }
    if (!p->mounts) {
        probe_report(fd, "", 0);
        _exit(0);
    }
    /* A new PID namespace applies to children (pid_namespaces(7)): fork its PID 1. */
    pid_t child = fork();
    if (child < 0) {
        probe_report(fd, "clone", errno);
        _exit(0);
    }
    if (child == 0) {
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            probe_report(fd, "make the mount tree private", errno);
        else if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755") < 0)
            probe_report(fd, "mount tmpfs", errno);
        else if (mkdir("/tmp/proc", 0755) < 0)
            probe_report(fd, "mkdir on the tmpfs", errno);
        else if (mount("proc", "/tmp/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            probe_report(fd, "mount /proc", errno);
        else
            probe_report(fd, "", 0);
        _exit(0);
    }
    int st;
    while (waitpid(child, &st, 0) < 0 && errno == EINTR)
        ;
    _exit(0);
}

/* Fork, run the probe, collect its report. false when the child reported nothing (it
 * crashed or hung); *why then says so. */
static bool probe(const struct ns_probe *p, struct probe_rec *rec, char *why, size_t whycap)
{
    memset(rec, 0, sizeof(*rec));
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        snprintf(why, whycap, "pipe: %s", strerror(errno));
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whycap, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return false;
    }
    if (pid == 0) {
        close(pfd[0]);
        probe_child(pfd[1], p);
    }
    close(pfd[1]);
    struct pollfd pl = {.fd = pfd[0], .events = POLLIN};
    bool got = false;
    if (poll(&pl, 1, PROBE_TIMEOUT_MS) > 0)
        got = read(pfd[0], rec, sizeof(*rec)) == (ssize_t)sizeof(*rec);
    close(pfd[0]);
    if (!got)
        kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    rec->step[sizeof(rec->step) - 1] = '\0';
    if (!got)
        snprintf(why, whycap, "the probe process %s",
                 WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "reported nothing");
    return got;
}

/* Record a failed probe as a check, with diag.c's cause and remedy. */
static void add_failure(struct doctor_report *r, enum doctor_result level, const char *name,
                        const struct probe_rec *rec, bool userns, uint32_t flag, const char *note)
{
    struct lcl_diagnosis d;
    int e = rec->errnum;
    if (flag && strcmp(rec->step, "clone") == 0)
        lcl__explain(&d, "clone", e, userns, &flag, &e, 1);
    else
        lcl__explain(&d, rec->step, e, userns, NULL, NULL, 0);
    doctor_add(r, level, name, d.remedy, "%s failed: %s. Cause: %s%s", d.what, strerror(e), d.cause,
               note ? note : "");
}

struct ns_kind {
    uint32_t flag;
    const char *name;
};

static const struct ns_kind ns_kinds[] = {
    {CLONE_NEWNS, "mount namespace"},    {CLONE_NEWPID, "PID namespace"},
    {CLONE_NEWNET, "network namespace"}, {CLONE_NEWIPC, "IPC namespace"},
    {CLONE_NEWUTS, "UTS namespace"},     {CLONE_NEWCGROUP, "cgroup namespace"},
};

/* Returns false when sandboxes cannot work (a failure was recorded). */
static bool check_namespaces(const struct config *cfg, struct doctor_report *r, bool userns)
{
    bool ok = true;
    bool root = geteuid() == 0;
    char why[160], max_ns[32] = "";
    struct probe_rec rec;
    lcl__read_line("/proc/sys/user/max_user_namespaces", max_ns, sizeof(max_ns));

    /* user namespace: needed unless root with local.user_namespace auto/never */
    struct ns_probe up = {.flags = CLONE_NEWUSER, .userns = true};
    bool user_ok = false;
    const char *use_note = userns ? ""
                                  : "; not needed: agentbox runs as root and "
                                    "local.user_namespace is not 'always'";
    if (!probe(&up, &rec, why, sizeof(why))) {
        doctor_add(r, userns ? DOCTOR_FAIL : DOCTOR_WARN, "user namespace", NULL, "%s", why);
        ok = !userns;
    } else if (rec.step[0]) {
        add_failure(r, userns ? DOCTOR_FAIL : DOCTOR_WARN, "user namespace", &rec, true,
                    CLONE_NEWUSER, use_note);
        ok = !userns;
    } else {
        user_ok = true;
        doctor_add(r, DOCTOR_OK, "user namespace", NULL,
                   "available (user.max_user_namespaces = %s)%s", max_ns[0] ? max_ns : "?",
                   userns ? "; sandboxes use one" : "; not used: agentbox runs as root");
    }
    if (!root && cfg->local.user_namespace && strcmp(cfg->local.user_namespace, "never") == 0) {
        doctor_add(r, DOCTOR_FAIL, "user namespace",
                   "set local.user_namespace: auto, or run agentbox as root",
                   "local.user_namespace is 'never' but agentbox does not run as root");
        ok = false;
    }

    bool net_host = cfg->local.network && strcmp(cfg->local.network, "host") == 0;
    for (size_t i = 0; i < AB_ARRAY_LEN(ns_kinds); i++) {
        const struct ns_kind *k = &ns_kinds[i];
        if (k->flag == CLONE_NEWNET && net_host) {
            doctor_add(r, DOCTOR_SKIP, k->name, NULL,
                       "not used: local.network is 'host' (sandboxes share the host network)");
            continue;
        }
        if (userns && !user_ok) {
            doctor_add(r, DOCTOR_SKIP, k->name, NULL, "needs a user namespace (see above)");
            continue;
        }
        struct ns_probe p = {.flags = k->flag | (userns ? CLONE_NEWUSER : 0), .userns = userns};
        if (!probe(&p, &rec, why, sizeof(why))) {
            doctor_add(r, DOCTOR_FAIL, k->name, NULL, "%s", why);
            ok = false;
        } else if (rec.step[0]) {
            add_failure(r, DOCTOR_FAIL, k->name, &rec, userns, k->flag, NULL);
            ok = false;
        } else {
            doctor_add(r, DOCTOR_OK, k->name, NULL, "available");
        }
    }

    if (userns && !user_ok)
        return ok;
    struct ns_probe mp = {.flags = CLONE_NEWNS | CLONE_NEWPID | (userns ? CLONE_NEWUSER : 0),
                          .userns = userns,
                          .mounts = true};
    if (!probe(&mp, &rec, why, sizeof(why))) {
        doctor_add(r, DOCTOR_FAIL, "mounts", NULL, "%s", why);
        ok = false;
    } else if (rec.step[0]) {
        add_failure(r, DOCTOR_FAIL, "mounts", &rec, userns, 0, NULL);
        ok = false;
    } else {
        doctor_add(r, DOCTOR_OK, "mounts", NULL,
                   "a tmpfs and a fresh /proc mount inside new mount and PID namespaces");
    }
    return ok;
}

static bool check_seccomp(const struct config *cfg, struct doctor_report *r)
{
    char own[32] = "";
    lcl__proc_status("Seccomp", own, sizeof(own));
    const char *own_note = strcmp(own, "2") == 0
                               ? "; note: agentbox itself runs under a seccomp filter "
                                 "(Seccomp: 2 in /proc/self/status, e.g. a container profile)"
                               : "";
    if (cfg->local.seccomp && strcmp(cfg->local.seccomp, "off") == 0) {
        doctor_add(r, DOCTOR_WARN, "seccomp", "set local.seccomp: default",
                   "local.seccomp is off: sandboxes run without a syscall filter "
                   "(for debugging only)%s",
                   own_note);
        return true;
    }
    struct sock_fprog prog;
    struct ab_err err;
    ab_err_clear(&err);
    if (lcl__seccomp_compile(&prog, &err)) {
        doctor_add(r, DOCTOR_FAIL, "seccomp",
                   "install a working libseccomp (apt-get install libseccomp2)",
                   "cannot build the sandbox filter: %s", err.msg);
        return false;
    }
    struct ns_probe p = {.filter = &prog};
    struct probe_rec rec;
    char why[160];
    bool ok = true;
    if (!probe(&p, &rec, why, sizeof(why))) {
        doctor_add(r, DOCTOR_FAIL, "seccomp", NULL, "loading the sandbox filter: %s", why);
        ok = false;
    } else if (rec.errnum == FILTER_NOT_ENFORCED) {
        doctor_add(r, DOCTOR_FAIL, "seccomp", "use a kernel built with CONFIG_SECCOMP_FILTER",
                   "the sandbox filter loaded but did not refuse unshare(2)");
        ok = false;
    } else if (rec.step[0]) {
        doctor_add(r, DOCTOR_FAIL, "seccomp",
                   rec.errnum == EINVAL ? "use a kernel built with CONFIG_SECCOMP_FILTER"
                                        : "allow seccomp(2) in the container's own profile",
                   "%s failed: %s%s", rec.step, strerror(rec.errnum), own_note);
        ok = false;
    } else {
        doctor_add(r, DOCTOR_OK, "seccomp", NULL,
                   "the sandbox filter (%u BPF instructions) loads and refuses namespace "
                   "creation%s",
                   (unsigned)prog.len, own_note);
    }
    free(prog.filter);
    return ok;
}

static void check_cgroups(const struct config *cfg, struct doctor_report *r)
{
    static const char *const names[LCL_CG_NCTRL] = {"memory", "pids", "cpu"};
    char tag[32];
    snprintf(tag, sizeof(tag), "doctor-%ld", (long)getpid());
    struct lcl_cg_env env;
    lcl__cg_detect(&env, tag);
    const struct cfg_limits *lim = &cfg->local.limits;
    const char *fix = "without cgroups sandboxes still get rlimits and tmpfs sizes; for "
                      "memory, pids and CPU limits run agentbox in a cgroup it may manage "
                      "(systemd: `systemd-run -p Delegate=yes agentbox serve ...`; a "
                      "container: a private cgroup namespace with the cgroup mounted rw)";
    switch (env.mode) {
    case LCL_CG_NONE:
        doctor_add(r, DOCTOR_WARN, "cgroups", fix, "not usable: %s", env.note);
        break;
    case LCL_CG_V1: {
        char have[64] = "", missing[64] = "";
        for (int c = 0; c < LCL_CG_NCTRL; c++) {
            char *dst = env.base[c] ? have : missing;
            size_t l = strlen(dst);
            snprintf(dst + l, 64 - l, "%s%s", l ? ", " : "", names[c]);
        }
        if (missing[0])
            doctor_add(r, DOCTOR_WARN, "cgroups", fix, "v1 with %s; missing %s (%s)",
                       have[0] ? have : "no controller", missing, env.note);
        else
            doctor_add(r, DOCTOR_OK, "cgroups", NULL, "v1 with memory, pids and cpu");
        break;
    }
    case LCL_CG_V2: {
        char ctrl[256] = "";
        FILE *f = NULL;
        char *path = ab_asprintf("%s/cgroup.subtree_control", env.base[0]);
        if (path && (f = fopen(path, "re")) && fgets(ctrl, sizeof(ctrl), f))
            ctrl[strcspn(ctrl, "\n")] = '\0';
        if (f)
            fclose(f);
        free(path);
        bool all = strstr(ctrl, "memory") && strstr(ctrl, "pids") && strstr(ctrl, "cpu");
        doctor_add(r, all ? DOCTOR_OK : DOCTOR_WARN, "cgroups", all ? NULL : fix, "v2 with %s",
                   ctrl[0] ? ctrl : "no controller");
        break;
    }
    }
    bool mem = env.mode == LCL_CG_V2 || env.base[LCL_CG_MEMORY];
    if (lim->memory_bytes && !mem)
        doctor_add(r, DOCTOR_WARN, "memory limit", fix,
                   "local.limits.memory is set but no memory cgroup is usable: it is not "
                   "enforced");
    lcl__cg_env_cleanup(&env, true);
}

/* The nearest existing ancestor of path (for "will be created" checks). */
static void existing_ancestor(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    struct stat st;
    while (stat(out, &st) < 0) {
        char *slash = strrchr(out, '/');
        if (!slash || slash == out) {
            snprintf(out, cap, "/");
            return;
        }
        *slash = '\0';
    }
}

/* Can we create (and remove) a directory in dir? access(2) is not enough: it says yes to
 * root on a read-only mount's parent or on /proc. 0 or an errno. */
static int try_mkdir_in(const char *dir)
{
    char *probe = ab_asprintf("%s/.agentbox-doctor-XXXXXX", dir);
    if (!probe)
        return ENOMEM;
    int e = mkdtemp(probe) ? 0 : errno;
    if (!e)
        rmdir(probe);
    free(probe);
    return e;
}

static bool check_state_dir(const struct config *cfg, struct doctor_report *r)
{
    const char *name = "state directory";
    char *dir = cfg_state_dir(cfg);
    if (!dir) {
        doctor_add(r, DOCTOR_FAIL, name, "set state_dir (or HOME)",
                   "no state directory: state_dir is unset and there is no home directory");
        return false;
    }
    bool ok = false;
    struct stat st;
    char where[PATH_MAX], fix[PATH_MAX + 128];
    snprintf(fix, sizeof(fix),
             "create %s, writable by the user agentbox runs as (uid %u), or set state_dir", dir,
             (unsigned)geteuid());
    int e;
    if (stat(dir, &st) < 0) {
        existing_ancestor(dir, where, sizeof(where));
        ok = (e = try_mkdir_in(where)) == 0;
        if (ok)
            doctor_add(r, DOCTOR_OK, name, NULL,
                       "%s does not exist yet; the server creates it (%s is writable)", dir, where);
        else
            doctor_add(r, DOCTOR_FAIL, name, fix,
                       "%s does not exist and cannot be created in %s: %s", dir, where,
                       strerror(e));
    } else if (!S_ISDIR(st.st_mode)) {
        doctor_add(r, DOCTOR_FAIL, name, fix, "%s is not a directory", dir);
    } else if ((e = try_mkdir_in(dir)) != 0) {
        doctor_add(r, DOCTOR_FAIL, name, fix, "%s is not writable: %s", dir, strerror(e));
    } else {
        ok = true;
        char inuse[64] = "";
        char *lock = ab_asprintf("%s/lock", dir);
        int fd = lock ? open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
        free(lock);
        if (fd >= 0) {
            /* Test the server's flock(2) without keeping it: LOCK_NB fails while a server
             * holds it; when we get it, closing drops it at once. */
            if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK)
                snprintf(inuse, sizeof(inuse), "; in use by a running agentbox server");
            close(fd);
        }
        struct statvfs vfs;
        double gib = statvfs(dir, &vfs) == 0
                         ? (double)vfs.f_bavail * (double)vfs.f_frsize / (1024.0 * 1024 * 1024)
                         : -1;
        doctor_add(r, gib >= 0 && gib < 1 ? DOCTOR_WARN : DOCTOR_OK, name,
                   "free space on this filesystem: the workspaces live here",
                   "%s (mode %03o, owner uid %u), %.1f GiB free%s", dir, st.st_mode & 0777,
                   (unsigned)st.st_uid, gib, inuse);
    }
    free(dir);
    return ok;
}

/* One real sandbox through the provider: the definitive check. */
static void check_end_to_end(const struct config *cfg, struct doctor_report *r, bool ready)
{
    const char *name = "sandbox";
    if (!ready) {
        doctor_add(r, DOCTOR_SKIP, name, NULL, "not tried: fix the failures above first");
        return;
    }
    char dir[] = "/tmp/agentbox-doctor-XXXXXX";
    if (!mkdtemp(dir)) {
        doctor_add(r, DOCTOR_FAIL, name, "make /tmp writable", "mkdtemp in /tmp: %s",
                   strerror(errno));
        return;
    }
    struct config tmp = *cfg; /* shallow: only state_dir differs, and tmp is never freed */
    tmp.state_dir = dir;
    struct ab_err err;
    ab_err_clear(&err);
    struct sbx_provider *p = NULL;
    struct sbx_handle *h = NULL;
    struct sbx_info info;
    sbx_info_init(&info);
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    int64_t t0 = ab_mono_ms();
    if (sbx_local_new(&tmp, &p, &err)) {
        doctor_add(r, DOCTOR_FAIL, name, "see the cause and remedy in the message",
                   "the provider cannot start: %s", err.msg);
        goto out;
    }
    int64_t t1 = ab_mono_ms();
    info.name = ab_strdup("ab-doctor");
    info.principal = ab_strdup("");
    info.labels = json_object();
    info.created_ms = info.last_used_ms = ab_wall_ms();
    struct sbx_create_req creq = {.info = &info};
    if (!info.name || !info.principal || !info.labels || p->ops->create(p, &creq, &h, &err)) {
        doctor_add(r, DOCTOR_FAIL, name, NULL, "creating a sandbox: %s", err.msg);
        goto out;
    }
    int64_t t2 = ab_mono_ms();
    struct sbx_exec_req ereq = {.shell = "echo doctor-$((6*7))", .timeout_ms = 30000};
    if (p->ops->exec(p, h, &ereq, &res, &err)) {
        doctor_add(r, DOCTOR_FAIL, name, NULL, "running a command in a sandbox: %s", err.msg);
        goto out;
    }
    int64_t t3 = ab_mono_ms();
    if (res.exit_code != 0 || strcmp(buf_cstr(&res.output), "doctor-42\n") != 0) {
        doctor_add(r, DOCTOR_FAIL, name, NULL,
                   "a command in a sandbox exited %d with output \"%.200s\"", res.exit_code,
                   buf_cstr(&res.output));
        goto out;
    }
    doctor_add(r, DOCTOR_OK, name, NULL,
               "started the provider (%lld ms), created a sandbox (%lld ms), ran a command "
               "(%lld ms)",
               (long long)(t1 - t0), (long long)(t2 - t1), (long long)(t3 - t2));
out:
    if (h && p->ops->destroy(p, h, &err))
        doctor_add(r, DOCTOR_WARN, name, NULL, "destroying the test sandbox: %s", err.msg);
    if (p)
        p->ops->free(p);
    sbx_exec_result_cleanup(&res);
    sbx_info_cleanup(&info);
    lcl__rm_tree(dir, NULL);
}

void sbx_local_doctor(const struct config *cfg, struct doctor_report *r)
{
    bool root = geteuid() == 0;
    const char *uns = cfg->local.user_namespace ? cfg->local.user_namespace : "auto";
    bool userns = strcmp(uns, "always") == 0 || (strcmp(uns, "auto") == 0 && !root);
    struct utsname u;
    if (uname(&u) == 0)
        doctor_add(r, DOCTOR_OK, "kernel", NULL, "%s %s on %s, agentbox runs as %s (uid %u)",
                   u.sysname, u.release, u.machine, root ? "root" : "an unprivileged user",
                   (unsigned)geteuid());
    bool ok = check_namespaces(cfg, r, userns);
    ok &= check_seccomp(cfg, r);
    check_cgroups(cfg, r);
    ok &= check_state_dir(cfg, r);
    check_end_to_end(cfg, r, ok);
}
