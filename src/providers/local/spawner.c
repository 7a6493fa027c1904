/*
 * spawner.c - the single-threaded process that clone()s sandbox helpers, and the server's
 * handle on it.
 *
 * Why a separate process: the server is multi-threaded, and a child forked from a threaded
 * process may only run async-signal-safe code until it execs (fork(2), signal-safety(7)),
 * while a helper has a lot to do (mounts, files, seccomp) and never execs. So the provider
 * posix_spawn()s `agentbox __sandbox-helper` once, with a clean environment and only a
 * control socket; that process (single-threaded for its whole life) compiles the seccomp
 * filter and then, per request, clone()s a helper into new namespaces. The helper is thus a
 * copy of a small, quiet process: it starts without an exec or the dynamic loader, shares
 * its text pages, and inherits nothing from the server.
 *
 * Per request: clone() with the namespace flags (the child blocks on a pipe), write the
 * user-namespace maps (user_namespaces(7): the parent writes /proc/PID/uid_map, and
 * "deny" into /proc/PID/setgroups first when unprivileged), move the child into its
 * cgroups, release it, and return its pid and pidfd. The helper keeps running when the
 * spawner dies (it is re-parented); the spawner exits when the server closes the socket.
 *
 * Rejected: clone() straight from the server with an exec of a helper binary per sandbox
 * (pays the dynamic loader and private relocations of every library per sandbox: slower
 * cold creates, more memory per idle sandbox); a zygote fork()ed from the server at startup
 * (would have to run before any thread exists, which the server does not control).
 */
#include "providers/local/internal.h"
#include "providers/local/local.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

#define SPAWN_REPLY_TIMEOUT_MS 15000
#define HELLO_TIMEOUT_MS       10000

/* ------------------------------------------------------------------------------------------
 * clone without glibc's wrapper
 * ---------------------------------------------------------------------------------------- */

/* clone3(2) with a NULL stack returns twice like fork(2); fall back to clone(2) when the
 * kernel (< 5.3) or a seccomp profile (ENOSYS is what container runtimes return for it)
 * does not offer clone3. The raw syscalls skip glibc's fork handlers, which is what we
 * want in this single-threaded process (bubblewrap does the same). *pidfd gets a pidfd
 * when the kernel supports CLONE_PIDFD (5.2), else -1. */
static pid_t raw_clone(uint64_t flags, int *pidfd)
{
    *pidfd = -1;
#ifdef SYS_clone3
    struct clone_args ca;
    memset(&ca, 0, sizeof(ca));
    ca.flags = flags | CLONE_PIDFD;
    ca.pidfd = (uint64_t)(uintptr_t)pidfd;
    ca.exit_signal = SIGCHLD;
    long r = syscall(SYS_clone3, &ca, sizeof(ca));
    if (r >= 0 || (errno != ENOSYS && errno != E2BIG))
        return (pid_t)r;
#endif
    *pidfd = -1;
    /* clone(2): on x86-64 and arm64 the third argument is parent_tid, where CLONE_PIDFD
     * stores the pidfd. */
    long r2 =
        syscall(SYS_clone, (unsigned long)(flags | CLONE_PIDFD | SIGCHLD), NULL, pidfd, NULL, 0);
    if (r2 < 0 && errno == EINVAL) {
        *pidfd = -1;
        r2 = syscall(SYS_clone, (unsigned long)(flags | SIGCHLD), NULL, NULL, NULL, 0);
    }
    return (pid_t)r2;
}

/* ------------------------------------------------------------------------------------------
 * The spawner process
 * ---------------------------------------------------------------------------------------- */

struct spawner_ctx {
    int ctl;
    int sigfd;
    struct sock_fprog filter;
    unsigned char *rx;
    struct buf tx;
};

static void z_reply_error(struct spawner_ctx *z, const char *step, int errnum)
{
    lcl__wr_begin(&z->tx, LCL_Z_ERROR);
    lcl__wr_str(&z->tx, step);
    lcl__wr_i32(&z->tx, errnum);
    size_t len = lcl__wr_end(&z->tx);
    (void)lcl__send(z->ctl, z->tx.data, len, NULL, 0);
}

static int write_file_str(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(s);
    ssize_t w = write(fd, s, len);
    int e = w < 0 ? errno : (w == (ssize_t)len ? 0 : EIO);
    if (close(fd) < 0 && !e)
        e = errno;
    return -e;
}

static int write_proc(pid_t pid, const char *file, const char *s)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    return write_file_str(path, s);
}

static void z_spawn(struct spawner_ctx *z, struct lcl_frame *f)
{
    struct lcl_setup s;
    int sync[2] = {-1, -1};
    if (f->nfds != 1 || lcl__setup_decode(&s, f) != AB_OK) {
        lcl__frame_close_fds(f);
        z_reply_error(z, "decode spawn request", EPROTO);
        return;
    }
    int hs = f->fds[0];
    const char *step = NULL;
    int e = 0;
    if (pipe2(sync, O_CLOEXEC) < 0) {
        step = "pipe";
        e = errno;
        goto fail;
    }
    int pidfd;
    pid_t pid = raw_clone(s.clone_flags, &pidfd);
    if (pid < 0) {
        step = "clone";
        e = errno;
        goto fail;
    }
    if (pid == 0) {
        /* The helper-to-be. Drop everything of the spawner's but its own two descriptors
         * and the release pipe; stdin/stdout/stderr become /dev/null (fd 0 already is). */
        close(z->ctl);
        close(z->sigfd);
        close(sync[1]);
        dup2(0, 1);
        dup2(0, 2);
        char c;
        ssize_t n;
        do
            n = read(sync[0], &c, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
            _exit(1); /* the spawner gave up on us */
        close(sync[0]);
        lcl__helper_run(&s, hs, &z->filter);
    }
    close(sync[0]);
    sync[0] = -1;
    char line[128];
    int r = 0;
    if (s.userns) {
        if (s.deny_setgroups && (r = write_proc(pid, "setgroups", "deny")) < 0)
            step = "write /proc/PID/setgroups";
        if (!r && (r = write_proc(pid, "uid_map", s.uid_map)) < 0)
            step = "write /proc/PID/uid_map";
        if (!r && (r = write_proc(pid, "gid_map", s.gid_map)) < 0)
            step = "write /proc/PID/gid_map";
    }
    for (size_t i = 0; i < s.ncgroup && !r; i++) {
        snprintf(line, sizeof(line), "%d", (int)pid);
        if ((r = write_file_str(s.cgroup_procs[i], line)) < 0)
            step = "join the sandbox cgroup";
    }
    if (!r && write(sync[1], "x", 1) != 1) {
        r = -errno;
        step = "release the helper";
    }
    close(sync[1]);
    sync[1] = -1;
    if (r < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (pidfd >= 0)
            close(pidfd);
        e = -r;
        goto fail;
    }
    lcl__wr_begin(&z->tx, LCL_Z_SPAWNED);
    lcl__wr_i32(&z->tx, pid);
    size_t len = lcl__wr_end(&z->tx);
    (void)lcl__send(z->ctl, z->tx.data, len, &pidfd, pidfd >= 0 ? 1 : 0);
    if (pidfd >= 0)
        close(pidfd);
    close(hs);
    lcl__setup_cleanup(&s);
    return;
fail:
    if (sync[0] >= 0)
        close(sync[0]);
    if (sync[1] >= 0)
        close(sync[1]);
    close(hs);
    lcl__setup_cleanup(&s);
    z_reply_error(z, step, e);
}

static const uint32_t probe_flags[] = {CLONE_NEWUSER, CLONE_NEWNS,  CLONE_NEWPID,   CLONE_NEWNET,
                                       CLONE_NEWIPC,  CLONE_NEWUTS, CLONE_NEWCGROUP};

/* Try the user namespace alone, then each other namespace (with the user namespace when it
 * is part of the request, as it is when sandboxes are created). */
static void z_probe(struct spawner_ctx *z, struct lcl_frame *f)
{
    struct lcl_rd r;
    lcl__rd_init(&r, f->payload, f->len);
    uint32_t flags = lcl__rd_u32(&r);
    lcl__frame_close_fds(f);
    if (!lcl__rd_done(&r)) {
        z_reply_error(z, "decode probe request", EPROTO);
        return;
    }
    uint32_t base = flags & CLONE_NEWUSER;
    uint32_t got_flag[AB_ARRAY_LEN(probe_flags)];
    int got_errno[AB_ARRAY_LEN(probe_flags)];
    size_t n = 0;
    for (size_t i = 0; i < AB_ARRAY_LEN(probe_flags); i++) {
        if (!(flags & probe_flags[i]))
            continue;
        int pidfd;
        pid_t pid = raw_clone(base | probe_flags[i], &pidfd);
        if (pid == 0)
            _exit(0);
        got_flag[n] = probe_flags[i];
        got_errno[n] = pid < 0 ? errno : 0;
        if (pid > 0)
            waitpid(pid, NULL, 0);
        if (pidfd >= 0)
            close(pidfd);
        n++;
    }
    lcl__wr_begin(&z->tx, LCL_Z_PROBED);
    lcl__wr_u32(&z->tx, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        lcl__wr_u32(&z->tx, got_flag[i]);
        lcl__wr_i32(&z->tx, got_errno[i]);
    }
    size_t len = lcl__wr_end(&z->tx);
    (void)lcl__send(z->ctl, z->tx.data, len, NULL, 0);
}

static void z_reap(struct spawner_ctx *z)
{
    struct signalfd_siginfo si;
    while (read(z->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        ;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int sbx_local_helper_main(int argc, char **argv)
{
    (void)argv;
    /* fd 3 must be the control socket the provider gave us; anything else means a person
     * ran the internal subcommand by hand. */
    int type = 0;
    socklen_t tl = sizeof(type);
    if (argc != 2 || getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET) {
        fprintf(stderr, "agentbox: %s is internal to the local sandbox provider\n",
                SBX_LOCAL_HELPER_ARG);
        return 2;
    }
    /* Nothing of the server's may stay open here, whether or not it was O_CLOEXEC. */
    syscall(SYS_close_range, 4u, ~0u, 0u);
    fcntl(3, F_SETFD, FD_CLOEXEC);
    prctl(PR_SET_NAME, "ab-spawner", 0, 0, 0);

    struct spawner_ctx z = {.ctl = 3, .sigfd = -1};
    buf_init(&z.tx, LCL_HDR + LCL_FRAME_MAX);
    z.rx = malloc(LCL_HDR + LCL_FRAME_MAX + 1);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    z.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    struct ab_err err;
    ab_err_clear(&err);
    ab_status frc = lcl__seccomp_compile(&z.filter, &err);
    if (!z.rx || z.sigfd < 0)
        _exit(1);

    lcl__wr_begin(&z.tx, LCL_Z_HELLO);
    lcl__wr_u32(&z.tx, LCL_WIRE_VERSION);
    lcl__wr_u8(&z.tx, frc == AB_OK);
    lcl__wr_str(&z.tx, frc ? err.msg : "");
    size_t len = lcl__wr_end(&z.tx);
    if (lcl__send(z.ctl, z.tx.data, len, NULL, 0) < 0)
        _exit(1);

    for (;;) {
        struct pollfd p[2] = {{.fd = z.ctl, .events = POLLIN}, {.fd = z.sigfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        if (p[1].revents)
            z_reap(&z);
        if (!p[0].revents)
            continue;
        struct lcl_frame f;
        int r = lcl__recv(z.ctl, z.rx, &f);
        if (r == -EAGAIN)
            continue;
        if (r <= 0)
            _exit(0); /* the server is gone (or spoke nonsense): so are we */
        switch (f.type) {
        case LCL_Z_SPAWN:
            z_spawn(&z, &f);
            break;
        case LCL_Z_PROBE:
            z_probe(&z, &f);
            break;
        default:
            lcl__frame_close_fds(&f);
            z_reply_error(&z, "unknown request", EPROTO);
            break;
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Server side
 * ---------------------------------------------------------------------------------------- */

struct lcl_spawner {
    pthread_mutex_t lock;
    char *binary;
    pid_t pid;
    int fd;
    unsigned char *rx;
    struct buf tx;
};

extern char **environ;

static void spawner_stop(struct lcl_spawner *z)
{
    if (z->fd >= 0)
        close(z->fd);
    z->fd = -1;
    if (z->pid > 0) {
        /* It exits on EOF; wait a moment, then make sure. */
        int64_t deadline = ab_mono_ms() + 2000;
        while (waitpid(z->pid, NULL, WNOHANG) == 0) {
            if (ab_mono_ms() > deadline) {
                kill(z->pid, SIGKILL);
                waitpid(z->pid, NULL, 0);
                break;
            }
            usleep(1000);
        }
    }
    z->pid = 0;
}

static ab_status spawner_start(struct lcl_spawner *z, struct ab_err *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return ab_err_sys(err, AB_IO, errno, "socketpair");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
    posix_spawn_file_actions_adddup2(&fa, 0, 1);
    /* fd 2 stays the server's stderr: the spawner lives outside any sandbox. */
    posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
    posix_spawn_file_actions_addclosefrom_np(&fa, 4);
    char *argv[] = {"agentbox", SBX_LOCAL_HELPER_ARG, NULL};
    char *envp[] = {NULL}; /* nothing of the server's environment (it may hold tokens) */
    pid_t pid;
    int e = posix_spawn(&pid, z->binary, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (e) {
        close(sv[0]);
        return ab_err_sys(err, AB_UNSUPPORTED, e, "cannot start the sandbox spawner %s", z->binary);
    }
    z->pid = pid;
    z->fd = sv[0];
    struct lcl_frame f;
    struct ab_err sub;
    ab_err_clear(&sub);
    ab_status rc = lcl__recv_wait(z->fd, z->rx, &f, ab_mono_ms() + HELLO_TIMEOUT_MS, -1, &sub);
    if (rc) {
        spawner_stop(z);
        return ab_err_set(err, AB_UNSUPPORTED,
                          "%s did not start the sandbox spawner (%s); it must be the agentbox "
                          "binary (set AGENTBOX_BIN for programs other than agentbox itself)",
                          z->binary, sub.msg);
    }
    struct lcl_rd r;
    lcl__rd_init(&r, f.payload, f.len);
    uint32_t version = lcl__rd_u32(&r);
    bool filter_ok = lcl__rd_u8(&r);
    char *msg = lcl__rd_str(&r, 1024);
    lcl__frame_close_fds(&f);
    rc = AB_OK;
    if (f.type != LCL_Z_HELLO || !lcl__rd_done(&r) || version != LCL_WIRE_VERSION)
        rc = ab_err_set(err, AB_UNSUPPORTED,
                        "%s speaks another sandbox protocol version; use the agentbox binary "
                        "that matches this server",
                        z->binary);
    else if (!filter_ok)
        rc = ab_err_set(err, AB_UNSUPPORTED, "cannot build the sandbox seccomp filter: %s", msg);
    free(msg);
    if (rc)
        spawner_stop(z);
    return rc;
}

ab_status lcl__spawner_new(const char *binary, struct lcl_spawner **out, struct ab_err *err)
{
    struct lcl_spawner *z = calloc(1, sizeof(*z));
    if (!z)
        return AB_NOMEM;
    pthread_mutex_init(&z->lock, NULL);
    z->fd = -1;
    z->binary = ab_strdup(binary);
    z->rx = malloc(LCL_HDR + LCL_FRAME_MAX + 1);
    buf_init(&z->tx, LCL_HDR + LCL_FRAME_MAX);
    if (!z->binary || !z->rx) {
        lcl__spawner_free(z);
        return AB_NOMEM;
    }
    ab_status rc = spawner_start(z, err);
    if (rc) {
        lcl__spawner_free(z);
        return rc;
    }
    *out = z;
    return AB_OK;
}

void lcl__spawner_free(struct lcl_spawner *z)
{
    if (!z)
        return;
    spawner_stop(z);
    pthread_mutex_destroy(&z->lock);
    free(z->binary);
    free(z->rx);
    buf_cleanup(&z->tx);
    free(z);
}

/* Send the frame in z->tx (with fds) and wait for one reply; restarts a dead spawner once.
 * Called with z->lock held. */
static ab_status spawner_call(struct lcl_spawner *z, size_t len, const int *fds, size_t nfds,
                              struct lcl_frame *reply, struct ab_err *err)
{
    for (int attempt = 0;; attempt++) {
        ab_status rc = AB_OK;
        if (z->fd < 0)
            rc = spawner_start(z, err);
        if (!rc)
            rc = lcl__send_wait(z->fd, z->tx.data, len, fds, nfds,
                                ab_mono_ms() + SPAWN_REPLY_TIMEOUT_MS, err);
        if (!rc)
            rc =
                lcl__recv_wait(z->fd, z->rx, reply, ab_mono_ms() + SPAWN_REPLY_TIMEOUT_MS, -1, err);
        if (rc == AB_SANDBOX && attempt == 0) {
            /* The spawner died (killed, OOM); sandboxes it created keep running. */
            AB_LOG_WARN("local.spawner.restart", "reason=\"%s\"", err ? err->msg : "");
            spawner_stop(z);
            continue;
        }
        if (rc && rc != AB_UNSUPPORTED) {
            spawner_stop(z); /* out of step with it: start afresh next time */
            if (rc == AB_SANDBOX || rc == AB_PROTO)
                return ab_err_set(err, AB_SANDBOX, "the sandbox spawner failed: %s",
                                  err ? err->msg : "");
        }
        return rc;
    }
}

static ab_status reply_error(const struct lcl_frame *f, char *step, size_t cap, int *errnum)
{
    struct lcl_rd r;
    lcl__rd_init(&r, f->payload, f->len);
    char *s = lcl__rd_str(&r, 256);
    *errnum = lcl__rd_i32(&r);
    snprintf(step, cap, "%s", s ? s : "?");
    free(s);
    return lcl__rd_done(&r) ? AB_OK : AB_PROTO;
}

ab_status lcl__spawner_spawn(struct lcl_spawner *z, const struct lcl_setup *s, int helper_sock,
                             pid_t *pid, int *pidfd, struct ab_err *err)
{
    *pid = -1;
    *pidfd = -1;
    pthread_mutex_lock(&z->lock);
    ab_status rc = lcl__setup_encode(s, &z->tx);
    if (rc) {
        pthread_mutex_unlock(&z->lock);
        return ab_err_set(err, AB_LIMIT, "the sandbox setup does not fit in one message");
    }
    size_t len = z->tx.len;
    struct lcl_frame f;
    rc = spawner_call(z, len, &helper_sock, 1, &f, err);
    if (rc) {
        pthread_mutex_unlock(&z->lock);
        return rc;
    }
    struct lcl_rd r;
    lcl__rd_init(&r, f.payload, f.len);
    if (f.type == LCL_Z_SPAWNED) {
        int32_t p = lcl__rd_i32(&r);
        if (!lcl__rd_done(&r) || p <= 0 || f.nfds > 1) {
            lcl__frame_close_fds(&f);
            rc = ab_err_set(err, AB_PROTO, "malformed reply from the sandbox spawner");
        } else {
            *pid = p;
            *pidfd = f.nfds ? f.fds[0] : -1;
        }
    } else if (f.type == LCL_Z_ERROR) {
        char step[256];
        int e = 0;
        lcl__frame_close_fds(&f);
        if (reply_error(&f, step, sizeof(step), &e))
            rc = ab_err_set(err, AB_PROTO, "malformed reply from the sandbox spawner");
        else {
            rc = ab_err_sys(err, AB_SANDBOX, e, "%s", step);
            if (err)
                err->sys_errno = e;
        }
    } else {
        lcl__frame_close_fds(&f);
        rc = ab_err_set(err, AB_PROTO, "unexpected reply from the sandbox spawner");
    }
    pthread_mutex_unlock(&z->lock);
    return rc;
}

ab_status lcl__spawner_probe(struct lcl_spawner *z, uint32_t flags, uint32_t *flag_out,
                             int *errno_out, size_t cap, size_t *n, struct ab_err *err)
{
    *n = 0;
    pthread_mutex_lock(&z->lock);
    lcl__wr_begin(&z->tx, LCL_Z_PROBE);
    lcl__wr_u32(&z->tx, flags);
    size_t len = lcl__wr_end(&z->tx);
    struct lcl_frame f;
    ab_status rc = spawner_call(z, len, NULL, 0, &f, err);
    if (!rc) {
        lcl__frame_close_fds(&f);
        struct lcl_rd r;
        lcl__rd_init(&r, f.payload, f.len);
        uint32_t cnt = f.type == LCL_Z_PROBED ? lcl__rd_u32(&r) : 0;
        for (uint32_t i = 0; i < cnt && i < cap; i++) {
            flag_out[i] = lcl__rd_u32(&r);
            errno_out[i] = lcl__rd_i32(&r);
        }
        if (f.type != LCL_Z_PROBED || cnt > cap || !lcl__rd_done(&r))
            rc = ab_err_set(err, AB_PROTO, "malformed probe reply from the sandbox spawner");
        else
            *n = cnt;
    }
    pthread_mutex_unlock(&z->lock);
    return rc;
}
