/*
 * serve.c - the helper's event loop: commands and file primitives, inside the sandbox.
 *
 * One thread, one epoll set: the control socket (new channels arrive there; EOF means the
 * server is gone, and so we exit, which makes the kernel kill everything in our PID
 * namespace), a signalfd for SIGCHLD, every channel, every running command's output and
 * stdin pipes, and the output pipes of finished commands whose background children still
 * hold them (drained and discarded, so those children never block or get SIGPIPE: they
 * keep running, like processes in a pod, until the sandbox is destroyed).
 *
 * Nothing here may block for long: sockets and pipes are non-blocking, every response goes
 * through a per-channel queue, and bulk producers (file reads, directory walks, searches)
 * emit one bounded step at a time and only while their queue is short. A command whose
 * channel queue is full stops being read (its pipe fills and it blocks: backpressure)
 * instead of growing our memory, which is charged to the sandbox's own cgroup.
 *
 * Commands: fork, a new process group, stdin (bytes sent by the server, or /dev/null),
 * stdout and stderr on one pipe so output arrives in order, then execvp. When the command
 * exits we drain what it wrote and answer EXIT; the timeout (exit code 124) and cancel
 * kill the whole process group with SIGKILL and keep the partial output. Output beyond the
 * caller's cap is counted and dropped, except for a short chunk every 250 ms so a progress
 * stream can still see the command is alive.
 *
 * File primitives run here, in the sandbox's mount namespace and with the sandbox user's
 * credentials, so paths (symlinks included, even ones swapped concurrently by a command)
 * resolve inside the sandbox's own view and can reach nothing a command could not reach.
 * Opens use O_NONBLOCK|O_NOCTTY and check for regular files, so a FIFO or a device planted
 * in the workspace cannot hang the helper.
 */
#include "providers/local/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"

#define Q_HIGH            (256u * 1024)
#define Q_LOW             (64u * 1024)
#define ALIVE_INTERVAL_MS 250
#define ALIVE_CHUNK       4096u
#define MAX_CHANNELS      256
#define MAX_DRAINS        128
#define FINAL_DRAIN_MAX   (1u << 20)
#define SCAN_BUF          (1u << 20)
#define READ_CHUNK        (LCL_FRAME_MAX - 64)
/* A long walk or search that finds nothing for a while still sends an (empty) frame this
 * often, so the server's per-frame deadline tells "busy" from "hung". */
#define HEARTBEAT_MS 2000

enum wkind { W_CTL, W_SIG, W_CHAN, W_OUT, W_IN, W_DRAIN };

struct watch {
    enum wkind kind;
    void *obj;
};

struct oframe {
    struct oframe *next;
    size_t len;
    unsigned char data[];
};

enum cstate { C_IDLE, C_EXEC_STDIN, C_EXEC, C_WRITE, C_READ, C_WALK, C_SEARCH };

struct exec;
struct walk;
struct search;

struct chan {
    struct watch w;
    int fd;
    struct oframe *qh, *qt;
    size_t qbytes;
    bool out_armed;
    bool dead;
    enum cstate st;
    struct buf req; /* CONT payloads of a request being assembled */
    struct exec *ex;
    /* C_WRITE */
    int wfd;
    uint64_t wleft;
    bool werr_set;
    ab_status werr;
    int werrno;
    char werrmsg[256];
    /* C_READ */
    int rfd;
    uint64_t rmax, rtotal;
    struct walk *walk;
    struct search *search;
    struct chan *next;
};

struct exec {
    struct watch wout, win;
    struct chan *ch; /* NULL once the channel is gone: killed, reaped, freed */
    pid_t pid;       /* > 0 until reaped */
    int out_fd, in_fd;
    unsigned char *in_buf;
    size_t in_len, in_off;
    bool out_paused;
    int64_t start, deadline, last_alive;
    uint64_t cap, sent, total;
    bool timed_out, cancelled, truncated;
    char **argv, **envp;
    char *cwd;
    bool done; /* reaped and answered; freed after the current batch of events */
    struct exec *next;
};

struct drain {
    struct watch w;
    int fd; /* -1 once the writers let go; freed after the current batch of events */
    struct drain *next;
};

static struct {
    const struct lcl_setup *s;
    int ep, ctl, sig;
    struct watch wctl, wsig;
    unsigned char *rx;
    struct buf tx;
    struct chan *chans;
    size_t nchans;
    struct exec *execs;
    struct drain *drains;
    size_t ndrains;
    char **base_env;
    size_t nbase;
    bool busy; /* a producer can make progress without waiting for an event */
    unsigned char iobuf[READ_CHUNK];
} H;

/* ------------------------------------------------------------------------------------------
 * small helpers
 * ---------------------------------------------------------------------------------------- */

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void clear_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

static int ep_add(int fd, uint32_t events, struct watch *w)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    return epoll_ctl(H.ep, EPOLL_CTL_ADD, fd, &ev);
}

static void ep_mod(int fd, uint32_t events, struct watch *w)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    epoll_ctl(H.ep, EPOLL_CTL_MOD, fd, &ev);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Deregister, then close. close() alone is not enough: epoll tracks the open file
 * description, and a command forked a moment ago may still hold a copy of the descriptor
 * until its execve closes it (O_CLOEXEC); events would keep arriving for a watch we freed
 * (epoll(7), "Will closing a file descriptor cause it to be removed from all epoll
 * interest lists?"). */
static void ep_close(int *fd)
{
    if (*fd >= 0)
        epoll_ctl(H.ep, EPOLL_CTL_DEL, *fd, NULL);
    close_fd(fd);
}

/* ------------------------------------------------------------------------------------------
 * output queues
 * ---------------------------------------------------------------------------------------- */

static void q_push(struct chan *c, struct buf *b)
{
    size_t len = lcl__wr_end(b);
    if (c->dead)
        return;
    struct oframe *o = malloc(sizeof(*o) + len);
    if (!o) {
        c->dead = true; /* cannot keep our promise on this channel: drop it */
        return;
    }
    o->next = NULL;
    o->len = len;
    memcpy(o->data, b->data, len);
    if (c->qt)
        c->qt->next = o;
    else
        c->qh = o;
    c->qt = o;
    c->qbytes += len;
}

static void flush(struct chan *c)
{
    while (c->qh && !c->dead) {
        int r = lcl__send(c->fd, c->qh->data, c->qh->len, NULL, 0);
        if (r == -EAGAIN) {
            if (!c->out_armed) {
                ep_mod(c->fd, EPOLLIN | EPOLLOUT, &c->w);
                c->out_armed = true;
            }
            return;
        }
        if (r < 0) {
            c->dead = true;
            return;
        }
        struct oframe *o = c->qh;
        c->qh = o->next;
        if (!c->qh)
            c->qt = NULL;
        c->qbytes -= o->len;
        free(o);
    }
    if (c->out_armed && !c->dead) {
        ep_mod(c->fd, EPOLLIN, &c->w);
        c->out_armed = false;
    }
}

static void reply_error(struct chan *c, ab_status code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void reply_error(struct chan *c, ab_status code, int errnum, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lcl__wr_error(&H.tx, code, errnum, "%s", msg);
    q_push(c, &H.tx);
}

static void reply_errno(struct chan *c, int e, const char *path)
{
    reply_error(c, ab_status_from_errno(e), e, "%s: %s", path, strerror(e));
}

static void reply_simple(struct chan *c, uint32_t type)
{
    lcl__wr_begin(&H.tx, type);
    q_push(c, &H.tx);
}

/* ------------------------------------------------------------------------------------------
 * stat records
 * ---------------------------------------------------------------------------------------- */

/* lstat of dirfd/name, with the symlink's target type (SBX_FT_NONE when dangling). */
static int stat_entry(int dirfd, const char *name, struct sbx_stat *out)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -1;
    out->type = sbx_ftype_from_mode(st.st_mode);
    out->target_type = out->type;
    out->size = (uint64_t)st.st_size;
    out->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    out->mode = st.st_mode & 07777;
    if (out->type == SBX_FT_SYMLINK) {
        struct stat tt;
        out->target_type = fstatat(dirfd, name, &tt, 0) == 0 ? sbx_ftype_from_mode(tt.st_mode) : SBX_FT_NONE;
    }
    return 0;
}

static size_t stat_rec_size(void)
{
    return 1 + 1 + 8 + 8 + 4;
}

static void wr_stat(struct buf *b, const struct sbx_stat *st)
{
    lcl__wr_u8(b, (uint8_t)st->type);
    lcl__wr_u8(b, (uint8_t)st->target_type);
    lcl__wr_u64(b, st->size);
    lcl__wr_i64(b, st->mtime_ms);
    lcl__wr_u32(b, st->mode);
}

/* ------------------------------------------------------------------------------------------
 * exec
 * ---------------------------------------------------------------------------------------- */

static void build_base_env(void)
{
    static char home[LCL_STR_MAX + 8];
    snprintf(home, sizeof(home), "HOME=%s", H.s->workspace);
    static char *base[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        NULL, /* HOME */
        "USER=sandbox",
        "LOGNAME=sandbox",
        "SHELL=/bin/sh",
        "LANG=C.UTF-8",
        "TMPDIR=/tmp",
        "HOSTNAME=sandbox",
        NULL,
    };
    base[1] = home;
    H.base_env = base;
    H.nbase = AB_ARRAY_LEN(base) - 1;
}

static bool env_key_eq(const char *a, const char *b)
{
    while (*a && *a != '=' && *a == *b) {
        a++;
        b++;
    }
    return (*a == '=' || !*a) && (*b == '=' || !*b);
}

/* base + PWD + extras; an extra replaces a base entry with the same name. Returns new. */
static char **merge_env(char **extra, size_t nextra, const char *cwd)
{
    char **v = calloc(H.nbase + nextra + 2, sizeof(char *));
    if (!v)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < H.nbase; i++) {
        bool overridden = false;
        for (size_t j = 0; j < nextra && !overridden; j++)
            overridden = env_key_eq(H.base_env[i], extra[j]);
        if (!overridden && !(v[n++] = ab_strdup(H.base_env[i])))
            goto nomem;
    }
    bool pwd_given = false;
    for (size_t j = 0; j < nextra; j++) {
        pwd_given |= env_key_eq("PWD=", extra[j]);
        if (!(v[n++] = ab_strdup(extra[j])))
            goto nomem;
    }
    if (!pwd_given && !(v[n++] = ab_asprintf("PWD=%s", cwd)))
        goto nomem;
    return v;
nomem:
    ab_strv_free(v);
    return NULL;
}

static void exec_free(struct exec *x)
{
    ep_close(&x->out_fd);
    ep_close(&x->in_fd);
    free(x->in_buf);
    ab_strv_free(x->argv);
    ab_strv_free(x->envp);
    free(x->cwd);
    free(x);
}

/* Free what finished during the last batch of events. */
static void sweep(void)
{
    for (struct exec **pp = &H.execs; *pp;) {
        struct exec *x = *pp;
        if (x->done) {
            *pp = x->next;
            exec_free(x);
        } else {
            pp = &x->next;
        }
    }
    for (struct drain **pp = &H.drains; *pp;) {
        struct drain *d = *pp;
        if (d->fd < 0) {
            *pp = d->next;
            H.ndrains--;
            free(d);
        } else {
            pp = &d->next;
        }
    }
}

static void exec_kill(struct exec *x)
{
    if (x->pid > 0) {
        kill(-x->pid, SIGKILL);
        kill(x->pid, SIGKILL);
    }
}

/* argv[0] looked up in the PATH of the command's environment (execvp(3) would use ours),
 * done in the parent so the child only has to execve. Returns new; NULL when not found. */
static char *resolve_command(const char *file, char **envp)
{
    if (strchr(file, '/'))
        return ab_strdup(file);
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (char **e = envp; *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            path = *e + 5;
    size_t fl = strlen(file);
    for (const char *p = path; *p;) {
        const char *colon = strchr(p, ':');
        size_t dl = colon ? (size_t)(colon - p) : strlen(p);
        char cand[LCL_STR_MAX + 1];
        if (dl + 1 + fl < sizeof(cand)) {
            /* an empty element means the current directory (execvp(3)) */
            snprintf(cand, sizeof(cand), "%.*s%s%s", (int)dl, dl ? p : ".", "/", file);
            struct stat st;
            if (access(cand, X_OK) == 0 && stat(cand, &st) == 0 && S_ISREG(st.st_mode))
                return ab_strdup(cand);
        }
        p += dl + (colon ? 1 : 0);
        if (!colon)
            break;
    }
    return NULL;
}

struct child_args {
    struct exec *x;
    const char *path; /* resolved program, or NULL: not found */
    int outw, inr;
};

/* "agentbox: " + the pieces + "\n" on stderr, with no allocation (see child_main). */
static void child_say(const char *a, const char *b, const char *c)
{
    char msg[LCL_STR_MAX + 256];
    size_t n = 0;
    const char *parts[] = {"agentbox: ", a, b, c, "\n"};
    for (size_t i = 0; i < AB_ARRAY_LEN(parts); i++) {
        size_t l = AB_MIN(strlen(parts[i]), sizeof(msg) - n);
        memcpy(msg + n, parts[i], l);
        n += l;
    }
    (void)!write(2, msg, n);
}

/* The command's process between fork and exec. With CLONE_VM it runs in the helper's
 * memory (the helper is suspended until execve, clone(2) CLONE_VFORK): it changes only
 * per-process state (its own fd table, dispositions, cwd, rlimits) and allocates nothing. */
static int child_main(void *arg)
{
    struct child_args *a = arg;
    struct exec *x = a->x;
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Ignored signals stay ignored across execve (signal(7)): restore the defaults. */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGXFSZ, SIG_DFL);
    int in = a->inr >= 0 ? a->inr : open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0 || dup2(in, 0) < 0 || dup2(a->outw, 1) < 0 || dup2(a->outw, 2) < 0)
        _exit(126);
    if (chdir(x->cwd) < 0) {
        child_say("cannot enter ", x->cwd, ": no such directory");
        _exit(1);
    }
    if (H.s->cpu_seconds > 0) {
        /* SIGXCPU at the soft limit, SIGKILL one second later (getrlimit(2)). */
        struct rlimit rl = {.rlim_cur = (rlim_t)H.s->cpu_seconds,
                            .rlim_max = (rlim_t)H.s->cpu_seconds + 1};
        setrlimit(RLIMIT_CPU, &rl);
    }
    if (!a->path) {
        child_say(x->argv[0], ": command not found", "");
        _exit(127);
    }
    execve(a->path, x->argv, x->envp);
    int e = errno;
    child_say(x->argv[0], ": cannot run: ", strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}

/* fork + exec. vfork semantics (no copy of the helper's page tables: the exec round trip is
 * the figure that matters most) except under the sanitizers, whose runtime does not expect
 * a child sharing its memory. */
static pid_t spawn_child(struct child_args *a)
{
#ifdef AGENTBOX_SANITIZE
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_main(a));
    return pid;
#else
    static char stack[64 * 1024] __attribute__((aligned(16)));
    return clone(child_main, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, a);
#endif
}

static void exec_spawn(struct chan *c, struct exec *x)
{
    int out[2] = {-1, -1}, in[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) < 0 || (x->in_len && pipe2(in, O_CLOEXEC) < 0)) {
        int e = errno;
        close_fd(&out[0]);
        close_fd(&out[1]);
        reply_error(c, AB_LIMIT, e, "cannot start the command: %s", strerror(e));
        exec_free(x);
        c->st = C_IDLE;
        return;
    }
    char *path = resolve_command(x->argv[0], x->envp);
    struct child_args ca = {x, path, out[1], in[0]};
    pid_t pid = spawn_child(&ca);
    int e = errno;
    free(path);
    close_fd(&out[1]);
    close_fd(&in[0]);
    if (pid < 0) {
        close_fd(&out[0]);
        close_fd(&in[1]);
        reply_error(c, e == EAGAIN ? AB_LIMIT : AB_IO, e, "cannot start the command: %s%s",
                    strerror(e), e == EAGAIN ? " (the sandbox's process limit is reached)" : "");
        exec_free(x);
        c->st = C_IDLE;
        return;
    }
    setpgid(pid, pid); /* also here, so a kill of the group cannot race the child */
    x->pid = pid;
    x->out_fd = out[0];
    x->in_fd = in[1];
    set_nonblock(x->out_fd);
    x->wout = (struct watch){W_OUT, x};
    x->win = (struct watch){W_IN, x};
    ep_add(x->out_fd, EPOLLIN, &x->wout);
    if (x->in_fd >= 0) {
        set_nonblock(x->in_fd);
        ep_add(x->in_fd, EPOLLOUT, &x->win);
    }
    ab_strv_free(x->argv);
    ab_strv_free(x->envp);
    x->argv = x->envp = NULL;
    x->ch = c;
    c->ex = x;
    c->st = C_EXEC;
    x->next = H.execs;
    H.execs = x;
}

static void exec_forward(struct exec *x, const unsigned char *data, size_t n)
{
    struct chan *c = x->ch;
    int64_t now = ab_mono_ms();
    size_t k = 0;
    if (x->sent < x->cap) {
        k = (size_t)AB_MIN((uint64_t)n, x->cap - x->sent);
        lcl__wr_begin(&H.tx, LCL_RSP_OUTPUT);
        lcl__wr_bytes(&H.tx, data, k);
        q_push(c, &H.tx);
        x->sent += k;
        if (k < n) {
            x->truncated = true;
            x->last_alive = now;
        }
        return;
    }
    x->truncated = true;
    if (now - x->last_alive >= ALIVE_INTERVAL_MS) {
        lcl__wr_begin(&H.tx, LCL_RSP_OUTPUT);
        lcl__wr_bytes(&H.tx, data, AB_MIN(n, (size_t)ALIVE_CHUNK));
        q_push(c, &H.tx);
        x->last_alive = now;
    }
}

/* Read available output. final: the command has exited; take what is buffered (bounded,
 * since background children may keep writing) regardless of backpressure. */
static void exec_read(struct exec *x, bool final)
{
    size_t drained = 0;
    for (int i = 0; x->out_fd >= 0; i++) {
        if (!final && (x->out_paused || i >= 4))
            return;
        if (final && drained >= FINAL_DRAIN_MAX)
            return;
        ssize_t n = read(x->out_fd, H.iobuf, sizeof(H.iobuf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            ep_close(&x->out_fd);
            return;
        }
        drained += (size_t)n;
        x->total += (uint64_t)n;
        if (x->ch)
            exec_forward(x, H.iobuf, (size_t)n);
        if (!final && x->ch && x->ch->qbytes >= Q_HIGH && !x->out_paused) {
            /* Deregister rather than ask for no events: EPOLLHUP would still be reported
             * (epoll_ctl(2)) and spin the loop. */
            epoll_ctl(H.ep, EPOLL_CTL_DEL, x->out_fd, NULL);
            x->out_paused = true;
        }
    }
}

static void exec_write_stdin(struct exec *x)
{
    while (x->in_fd >= 0 && x->in_off < x->in_len) {
        ssize_t w = write(x->in_fd, x->in_buf + x->in_off, x->in_len - x->in_off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        if (w < 0)
            break; /* EPIPE: the command does not want the rest */
        x->in_off += (size_t)w;
    }
    ep_close(&x->in_fd);
    free(x->in_buf);
    x->in_buf = NULL;
}

static void exec_reaped(struct exec *x, int status)
{
    x->pid = 0;
    if (x->out_fd >= 0)
        exec_read(x, true);
    ep_close(&x->in_fd);
    struct chan *c = x->ch;
    if (c) {
        int code, sig = 0;
        if (WIFSIGNALED(status)) {
            sig = WTERMSIG(status);
            code = 128 + sig;
        } else {
            code = WEXITSTATUS(status);
        }
        if (x->timed_out)
            code = 124; /* timeout(1)'s convention */
        uint8_t flags = (x->timed_out ? LCL_EXIT_TIMED_OUT : 0) |
                        (x->cancelled ? LCL_EXIT_CANCELLED : 0) |
                        (x->truncated || x->total > x->cap ? LCL_EXIT_TRUNCATED : 0);
        lcl__wr_begin(&H.tx, LCL_RSP_EXIT);
        lcl__wr_i32(&H.tx, code);
        lcl__wr_i32(&H.tx, sig);
        lcl__wr_u8(&H.tx, flags);
        lcl__wr_u64(&H.tx, x->total);
        lcl__wr_i64(&H.tx, ab_mono_ms() - x->start);
        q_push(c, &H.tx);
        c->ex = NULL;
        c->st = C_IDLE;
    }
    if (x->out_fd >= 0) {
        /* Background children still hold the pipe: keep draining it until they let go. */
        struct drain *d = H.ndrains < MAX_DRAINS ? malloc(sizeof(*d)) : NULL;
        if (d) {
            d->fd = x->out_fd;
            d->w = (struct watch){W_DRAIN, d};
            d->next = H.drains;
            H.drains = d;
            H.ndrains++;
            if (x->out_paused)
                ep_add(d->fd, EPOLLIN, &d->w);
            else
                ep_mod(d->fd, EPOLLIN, &d->w);
            x->out_fd = -1;
        }
    }
    x->done = true; /* an event for it may still be pending in this batch */
}

static void drain_read(struct drain *d)
{
    for (int i = 0; i < 16 && d->fd >= 0; i++) {
        ssize_t n = read(d->fd, H.iobuf, sizeof(H.iobuf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n > 0)
            continue;
        ep_close(&d->fd);
        return;
    }
}

static char **rd_strv(struct lcl_rd *r, uint32_t n, size_t max, bool need_eq)
{
    if (n > LCL_MAX_ARGS) {
        r->bad = true;
        return NULL;
    }
    char **v = calloc((size_t)n + 1, sizeof(char *));
    if (!v) {
        r->bad = true;
        return NULL;
    }
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        v[i] = lcl__rd_str(r, max);
        if (v[i] && need_eq && (!strchr(v[i], '=') || v[i][0] == '='))
            r->bad = true;
    }
    return v;
}

static void start_exec(struct chan *c, const unsigned char *p, size_t len)
{
    struct lcl_rd r;
    lcl__rd_init(&r, p, len);
    struct exec *x = calloc(1, sizeof(*x));
    char **env = NULL;
    if (!x) {
        reply_error(c, AB_NOMEM, ENOMEM, "out of memory in the sandbox helper");
        return;
    }
    x->out_fd = x->in_fd = -1;
    uint32_t flags = lcl__rd_u32(&r);
    if (flags & LCL_EXEC_SHELL) {
        x->argv = calloc(4, sizeof(char *));
        if (x->argv) {
            x->argv[0] = ab_strdup("/bin/sh");
            x->argv[1] = ab_strdup("-c");
            x->argv[2] = lcl__rd_str(&r, LCL_ARG_MAX);
        }
        if (!x->argv || !x->argv[0] || !x->argv[1])
            r.bad = true;
    } else {
        uint32_t argc = lcl__rd_u32(&r);
        x->argv = rd_strv(&r, argc, LCL_ARG_MAX, false);
        if (argc == 0)
            r.bad = true;
    }
    x->cwd = lcl__rd_str(&r, LCL_STR_MAX);
    uint32_t envc = lcl__rd_u32(&r);
    env = rd_strv(&r, envc, LCL_ARG_MAX, true);
    x->in_len = lcl__rd_u64(&r);
    int64_t timeout = lcl__rd_i64(&r);
    x->cap = lcl__rd_u64(&r);
    if (!lcl__rd_done(&r) || x->in_len > LCL_STDIN_MAX || timeout < 0) {
        reply_error(c, AB_PROTO, EPROTO, "malformed exec request");
        goto drop;
    }
    if (!x->cwd[0]) {
        free(x->cwd);
        x->cwd = ab_strdup(H.s->workspace);
    }
    struct stat st;
    if (!x->cwd || x->cwd[0] != '/') {
        reply_error(c, AB_INVAL, EINVAL, "the working directory must be an absolute path");
        goto drop;
    }
    if (stat(x->cwd, &st) < 0) {
        reply_error(c, ab_status_from_errno(errno), errno, "working directory %s: %s", x->cwd,
                    strerror(errno));
        goto drop;
    }
    if (!S_ISDIR(st.st_mode)) {
        reply_error(c, AB_NOTDIR, ENOTDIR, "working directory %s is not a directory", x->cwd);
        goto drop;
    }
    x->envp = merge_env(env, envc, x->cwd);
    ab_strv_free(env);
    env = NULL;
    if (!x->envp) {
        reply_error(c, AB_NOMEM, ENOMEM, "out of memory in the sandbox helper");
        goto drop;
    }
    x->start = ab_mono_ms();
    x->deadline = timeout > 0 ? x->start + timeout : 0;
    if (x->in_len) {
        x->in_buf = malloc(x->in_len);
        if (!x->in_buf) {
            reply_error(c, AB_NOMEM, ENOMEM, "no memory for %zu bytes of stdin", x->in_len);
            goto drop;
        }
        c->ex = x;
        c->st = C_EXEC_STDIN;
        return;
    }
    exec_spawn(c, x);
    return;
drop:
    ab_strv_free(env);
    exec_free(x);
}

/* ------------------------------------------------------------------------------------------
 * files: read, write, stat
 * ---------------------------------------------------------------------------------------- */

static void start_read(struct chan *c, const unsigned char *p, size_t len)
{
    struct lcl_rd r;
    lcl__rd_init(&r, p, len);
    char *path = lcl__rd_str(&r, LCL_STR_MAX);
    uint64_t max = lcl__rd_u64(&r);
    if (!lcl__rd_done(&r)) {
        free(path);
        reply_error(c, AB_PROTO, EPROTO, "malformed read request");
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        reply_errno(c, errno, path);
    } else if (S_ISDIR(st.st_mode)) {
        reply_error(c, AB_ISDIR, EISDIR, "%s: is a directory", path);
    } else if (!S_ISREG(st.st_mode)) {
        reply_error(c, AB_INVAL, EINVAL, "%s: not a regular file", path);
    } else if ((uint64_t)st.st_size > max) {
        reply_error(c, AB_LIMIT, EFBIG, "%s: the file is %lld bytes, more than the limit of %llu",
                    path, (long long)st.st_size, (unsigned long long)max);
    } else {
        clear_nonblock(fd);
        c->rfd = fd;
        c->rmax = max;
        c->rtotal = 0;
        c->st = C_READ;
        fd = -1;
    }
    close_fd(&fd);
    free(path);
}

static void produce_read(struct chan *c)
{
    ssize_t n;
    do
        n = read(c->rfd, H.iobuf, sizeof(H.iobuf));
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        reply_error(c, ab_status_from_errno(errno), errno, "read: %s", strerror(errno));
    } else if (n == 0) {
        lcl__wr_begin(&H.tx, LCL_RSP_END);
        lcl__wr_u64(&H.tx, c->rtotal);
        lcl__wr_u8(&H.tx, 0);
        q_push(c, &H.tx);
    } else if (c->rtotal + (uint64_t)n > c->rmax) {
        reply_error(c, AB_LIMIT, EFBIG, "the file grew beyond the limit of %llu bytes",
                    (unsigned long long)c->rmax);
    } else {
        c->rtotal += (uint64_t)n;
        lcl__wr_begin(&H.tx, LCL_RSP_DATA);
        lcl__wr_bytes(&H.tx, H.iobuf, (size_t)n);
        q_push(c, &H.tx);
        return;
    }
    close_fd(&c->rfd);
    c->st = C_IDLE;
}

/* mkdir -p of path's parent directories (mode 0755). */
static int make_parents(const char *path)
{
    char tmp[LCL_STR_MAX + 1];
    snprintf(tmp, sizeof(tmp), "%s", path);
    char *slash = strrchr(tmp, '/');
    if (!slash || slash == tmp)
        return 0;
    *slash = '\0';
    struct stat st;
    if (stat(tmp, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : (errno = ENOTDIR, -1);
    for (char *q = tmp + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -1;
        *q = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static void write_fail(struct chan *c, ab_status code, int e, const char *msg)
{
    if (c->werr_set)
        return;
    c->werr_set = true;
    c->werr = code;
    c->werrno = e;
    snprintf(c->werrmsg, sizeof(c->werrmsg), "%s", msg);
    close_fd(&c->wfd);
}

static void write_finish(struct chan *c)
{
    if (c->wfd >= 0 && close(c->wfd) < 0) {
        c->wfd = -1;
        char msg[300];
        snprintf(msg, sizeof(msg), "close: %s", strerror(errno));
        write_fail(c, ab_status_from_errno(errno), errno, msg);
    }
    c->wfd = -1;
    if (c->werr_set)
        reply_error(c, c->werr, c->werrno, "%s", c->werrmsg);
    else
        reply_simple(c, LCL_RSP_OK);
    c->st = C_IDLE;
}

static void start_write(struct chan *c, const unsigned char *p, size_t len)
{
    struct lcl_rd r;
    lcl__rd_init(&r, p, len);
    char *path = lcl__rd_str(&r, LCL_STR_MAX);
    uint64_t total = lcl__rd_u64(&r);
    if (!lcl__rd_done(&r)) {
        free(path);
        reply_error(c, AB_PROTO, EPROTO, "malformed write request");
        return;
    }
    char msg[LCL_STR_MAX + 128];
    c->werr_set = false;
    c->wfd = -1;
    c->wleft = total;
    c->st = C_WRITE;
    if (make_parents(path) < 0) {
        int e = errno;
        snprintf(msg, sizeof(msg), "%s: cannot create the parent directories: %s", path,
                 strerror(e));
        write_fail(c, ab_status_from_errno(e), e, msg);
    } else {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0644);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            int e = errno;
            snprintf(msg, sizeof(msg), "%s: %s", path, strerror(e));
            write_fail(c, ab_status_from_errno(e), e, msg);
            close_fd(&fd);
        } else if (!S_ISREG(st.st_mode)) {
            snprintf(msg, sizeof(msg), "%s: not a regular file", path);
            close(fd);
            write_fail(c, AB_INVAL, EINVAL, msg);
        } else {
            clear_nonblock(fd);
            c->wfd = fd;
        }
    }
    free(path);
    if (c->wleft == 0)
        write_finish(c);
}

static void write_data(struct chan *c, const unsigned char *p, size_t len)
{
    struct lcl_rd r;
    lcl__rd_init(&r, p, len);
    size_t n;
    const unsigned char *data = lcl__rd_bytes(&r, &n);
    if (!lcl__rd_done(&r) || n > c->wleft) {
        c->dead = true; /* out of step with the server: drop the channel */
        return;
    }
    c->wleft -= n;
    while (c->wfd >= 0 && n) {
        ssize_t w = write(c->wfd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            char msg[300];
            int e = errno;
            snprintf(msg, sizeof(msg), "write: %s", strerror(e));
            write_fail(c, e == EFBIG ? AB_LIMIT : ab_status_from_errno(e), e, msg);
            break;
        }
        data += w;
        n -= (size_t)w;
    }
    if (c->wleft == 0)
        write_finish(c);
}

static void do_stat(struct chan *c, const unsigned char *p, size_t len)
{
    struct lcl_rd r;
    lcl__rd_init(&r, p, len);
    char *path = lcl__rd_str(&r, LCL_STR_MAX);
    if (!lcl__rd_done(&r)) {
        free(path);
        reply_error(c, AB_PROTO, EPROTO, "malformed stat request");
        return;
    }
    struct sbx_stat st;
    if (stat_entry(AT_FDCWD, path, &st) < 0) {
        reply_errno(c, errno, path);
    } else {
        lcl__wr_begin(&H.tx, LCL_RSP_STAT);
        wr_stat(&H.tx, &st);
        q_push(c, &H.tx);
    }
    free(path);
}

/* ------------------------------------------------------------------------------------------
 * list_dir and walk: breadth-first, one directory step at a time
 * ---------------------------------------------------------------------------------------- */

struct walk {
    int rootfd;
    bool recursive, skip_dot, truncated;
    uint32_t max, count;
    int64_t deadline;
    char **q; /* relative paths of directories still to list */
    size_t qh, qn, qcap;
    DIR *cur;
    char *cur_rel;
    size_t nin;    /* entries in the frame being packed (H.tx) */
    struct buf fr; /* the frame being packed */
    int64_t last_emit;
};

static void walk_free(struct walk *w)
{
    if (!w)
        return;
    if (w->cur)
        closedir(w->cur);
    close_fd(&w->rootfd);
    for (size_t i = w->qh; i < w->qn; i++)
        free(w->q[i]);
    free(w->q);
    free(w->cur_rel);
    buf_cleanup(&w->fr);
    free(w);
}

static bool walk_push(struct walk *w, char *rel)
{
    if (w->qn == w->qcap) {
        if (w->qh > 0) { /* reuse the consumed front */
            memmove(w->q, w->q + w->qh, (w->qn - w->qh) * sizeof(char *));
            w->qn -= w->qh;
            w->qh = 0;
        }
        if (w->qn == w->qcap) {
            size_t cap = w->qcap ? w->qcap * 2 : 64;
            char **nq = realloc(w->q, cap * sizeof(char *));
            if (!nq)
                return false;
            w->q = nq;
            w->qcap = cap;
        }
    }
    w->q[w->qn++] = rel;
    return true;
}

static void walk_frame_start(struct walk *w)
{
    lcl__wr_begin(&w->fr, LCL_RSP_ENTRIES);
    lcl__wr_u32(&w->fr, 0);
    w->nin = 0;
}

static void walk_frame_flush(struct chan *c, struct walk *w, bool heartbeat)
{
    if (!w->nin && !heartbeat)
        return;
    w->last_emit = ab_mono_ms();
    uint32_t n = (uint32_t)w->nin;
    memcpy(w->fr.data + LCL_HDR, &n, 4);
    q_push(c, &w->fr);
    walk_frame_start(w);
}

static void walk_finish(struct chan *c, struct walk *w)
{
    walk_frame_flush(c, w, false);
    lcl__wr_begin(&H.tx, LCL_RSP_END);
    lcl__wr_u64(&H.tx, w->count);
    lcl__wr_u8(&H.tx, w->truncated);
    q_push(c, &H.tx);
    walk_free(w);
    c->walk = NULL;
    c->st = C_IDLE;
}

/* Open directory rel below the root without following any symlink on the way: openat2's
 * RESOLVE_NO_SYMLINKS (5.6+), or O_NOFOLLOW on the last component as a fallback. */
static int open_below(int rootfd, const char *rel)
{
    if (!*rel)
        return openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH;
    int fd = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
        return fd;
    return openat(rootfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static void start_walk(struct chan *c, const unsigned char *p, size_t len, bool recursive)
{
    struct lcl_rd r;
    lcl__rd_init(&r, p, len);
    char *root = lcl__rd_str(&r, LCL_STR_MAX);
    uint32_t max = lcl__rd_u32(&r);
    int64_t budget = recursive ? lcl__rd_i64(&r) : 0;
    bool skip_dot = recursive ? lcl__rd_u8(&r) != 0 : false;
    if (!lcl__rd_done(&r)) {
        free(root);
        reply_error(c, AB_PROTO, EPROTO, "malformed directory request");
        return;
    }
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        reply_errno(c, errno, root);
        free(root);
        return;
    }
    free(root);
    struct walk *w = calloc(1, sizeof(*w));
    char *first = ab_strdup("");
    if (!w || !first || !walk_push(w, first)) {
        free(first);
        close(fd);
        walk_free(w);
        reply_error(c, AB_NOMEM, ENOMEM, "out of memory in the sandbox helper");
        return;
    }
    w->rootfd = fd;
    w->recursive = recursive;
    w->skip_dot = skip_dot;
    w->max = max;
    w->deadline = budget > 0 ? ab_mono_ms() + budget : 0;
    w->last_emit = ab_mono_ms();
    buf_init(&w->fr, LCL_HDR + LCL_FRAME_MAX);
    walk_frame_start(w);
    c->walk = w;
    c->st = C_WALK;
}

static void produce_walk(struct chan *c)
{
    struct walk *w = c->walk;
    for (;;) {
        if (!w->cur) {
            if (w->qh == w->qn) {
                walk_finish(c, w);
                return;
            }
            if (w->deadline && ab_mono_ms() > w->deadline) {
                w->truncated = true;
                {
                    walk_finish(c, w);
                    return;
                }
            }
            free(w->cur_rel);
            w->cur_rel = w->q[w->qh++];
            int fd = open_below(w->rootfd, w->cur_rel);
            if (fd < 0 || !(w->cur = fdopendir(fd))) {
                if (fd >= 0)
                    close(fd);
                w->truncated = true; /* vanished or unreadable subtree: incomplete */
                continue;
            }
        }
        struct dirent *de;
        errno = 0;
        while ((de = readdir(w->cur)) != NULL) {
            const char *name = de->d_name;
            if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
                continue;
            if (w->max && w->count >= w->max) {
                w->truncated = true;
                {
                    walk_finish(c, w);
                    return;
                }
            }
            struct sbx_stat st;
            if (stat_entry(dirfd(w->cur), name, &st) < 0)
                continue; /* deleted meanwhile */
            char rel[LCL_STR_MAX + 1];
            int rl = *w->cur_rel ? snprintf(rel, sizeof(rel), "%s/%s", w->cur_rel, name)
                                 : snprintf(rel, sizeof(rel), "%s", name);
            if (rl >= (int)sizeof(rel)) {
                w->truncated = true;
                continue;
            }
            size_t need = 4 + (size_t)rl + stat_rec_size();
            if (lcl__wr_room(&w->fr) < need)
                walk_frame_flush(c, w, false);
            lcl__wr_str(&w->fr, rel);
            wr_stat(&w->fr, &st);
            w->nin++;
            w->count++;
            if (w->recursive && st.type == SBX_FT_DIR && !(w->skip_dot && name[0] == '.')) {
                char *dup = ab_strdup(rel);
                if (!dup || !walk_push(w, dup)) {
                    free(dup);
                    w->truncated = true;
                }
            }
            if (c->qbytes >= Q_HIGH)
                return; /* resume from here when the queue drains */
        }
        closedir(w->cur);
        w->cur = NULL;
        if (ab_mono_ms() - w->last_emit > HEARTBEAT_MS)
            walk_frame_flush(c, w, true);
        if (c->qbytes >= Q_HIGH)
            return;
    }
}

/* ------------------------------------------------------------------------------------------
 * search: literal, line by line, one file per step
 * ---------------------------------------------------------------------------------------- */

struct search {
    unsigned char *lit;
    size_t litlen;
    char **paths;
    uint32_t npaths, next;
    uint32_t max, count;
    int64_t deadline;
    bool truncated;
    unsigned char *buf; /* SCAN_BUF bytes */
    struct buf fr;
    uint32_t nin;
    int64_t last_emit;
};

static void search_free(struct search *s)
{
    if (!s)
        return;
    free(s->lit);
    if (s->paths) {
        for (uint32_t i = 0; i < s->npaths; i++)
            free(s->paths[i]);
        free(s->paths);
    }
    free(s->buf);
    buf_cleanup(&s->fr);
    free(s);
}

static void search_frame_start(struct search *s)
{
    lcl__wr_begin(&s->fr, LCL_RSP_MATCHES);
    lcl__wr_u32(&s->fr, 0);
    s->nin = 0;
}

static void search_frame_flush(struct chan *c, struct search *s, bool heartbeat)
{
    if (!s->nin && !heartbeat)
        return;
    s->last_emit = ab_mono_ms();
    memcpy(s->fr.data + LCL_HDR, &s->nin, 4);
    q_push(c, &s->fr);
    search_frame_start(s);
}

static void search_finish(struct chan *c, struct search *s)
{
    search_frame_flush(c, s, false);
    lcl__wr_begin(&H.tx, LCL_RSP_END);
    lcl__wr_u64(&H.tx, s->count);
    lcl__wr_u8(&H.tx, s->truncated);
    q_push(c, &H.tx);
    search_free(s);
    c->search = NULL;
    c->st = C_IDLE;
}

/* Record a match; false when max_matches is reached. */
static bool search_hit(struct chan *c, struct search *s, uint32_t file, int64_t line,
                       const unsigned char *text, size_t len)
{
    if (s->max && s->count >= s->max) {
        s->truncated = true;
        return false;
    }
    len = AB_MIN(len, (size_t)LCL_MATCH_TEXT_MAX);
    if (lcl__wr_room(&s->fr) < 4 + 8 + 4 + len)
        search_frame_flush(c, s, false);
    lcl__wr_u32(&s->fr, file);
    lcl__wr_i64(&s->fr, line);
    lcl__wr_bytes(&s->fr, text, len);
    s->nin++;
    s->count++;
    return true;
}

static bool has_lit(const struct search *s, const unsigned char *p, size_t n)
{
    return s->litlen <= n && memmem(p, n, s->lit, s->litlen) != NULL;
}

/* Fill buf[have..cap) as far as the file allows; returns the new fill or -1. */
static ssize_t fill(int fd, unsigned char *buf, size_t have, size_t cap, bool *eof)
{
    while (have < cap) {
        ssize_t r = read(fd, buf + have, cap - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            *eof = true;
            break;
        }
        have += (size_t)r;
    }
    return (ssize_t)have;
}

/* Scan one file. Lines are found in a 1 MiB window; a longer line is scanned in pieces
 * (keeping litlen-1 bytes of overlap) and reported with its first LCL_MATCH_TEXT_MAX
 * bytes. Returns false when the search must stop (max_matches). */
static bool search_file(struct chan *c, struct search *s, uint32_t idx)
{
    int fd = open(s->paths[idx], O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return true; /* unreadable files are skipped, like grep -s */
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > LCL_SEARCH_FILE_MAX) {
        close(fd);
        return true;
    }
    clear_nonblock(fd);
    unsigned char *b = s->buf;
    bool eof = false, ok = true;
    ssize_t got = fill(fd, b, 0, SCAN_BUF, &eof);
    if (got < 0 || memchr(b, '\0', AB_MIN((size_t)got, (size_t)8192))) {
        close(fd);
        return true; /* binary (a NUL in the first 8 KiB) or unreadable */
    }
    size_t have = (size_t)got, start = 0;
    int64_t lineno = 0;
    /* state of a line longer than the window */
    bool long_line = false, long_hit = false;
    unsigned char long_text[LCL_MATCH_TEXT_MAX];
    size_t long_len = 0;
    for (;;) {
        unsigned char *nl = memchr(b + start, '\n', have - start);
        if (nl || (eof && start < have)) {
            size_t end = nl ? (size_t)(nl - b) : have;
            size_t llen = end - start;
            lineno++;
            if (long_line) {
                if (long_hit || has_lit(s, b + start, llen))
                    ok = search_hit(c, s, idx, lineno, long_text, long_len);
                long_line = long_hit = false;
            } else {
                if (llen && b[start + llen - 1] == '\r')
                    llen--;
                if (has_lit(s, b + start, llen))
                    ok = search_hit(c, s, idx, lineno, b + start, llen);
            }
            if (!ok)
                break;
            start = nl ? end + 1 : have;
            continue;
        }
        if (eof)
            break;
        /* Need more data: keep the partial line at the front of the window. */
        if (start > 0) {
            memmove(b, b + start, have - start);
            have -= start;
            start = 0;
        }
        if (have == SCAN_BUF) {
            /* The line does not fit: scan what we have and keep only the overlap. */
            if (!long_line) {
                long_line = true;
                long_len = AB_MIN(have, sizeof(long_text));
                memcpy(long_text, b, long_len);
            }
            long_hit = long_hit || has_lit(s, b, have);
            size_t keep = s->litlen > 1 ? s->litlen - 1 : 0;
            memmove(b, b + have - keep, keep);
            have = keep;
        }
        got = fill(fd, b, have, SCAN_BUF, &eof);
        if (got < 0)
            break;
        have = (size_t)got;
    }
    close(fd);
    return ok;
}

static void start_search(struct chan *c, const unsigned char *p, size_t len)
{
    struct lcl_rd r;
    lcl__rd_init(&r, p, len);
    struct search *s = calloc(1, sizeof(*s));
    if (!s) {
        reply_error(c, AB_NOMEM, ENOMEM, "out of memory in the sandbox helper");
        return;
    }
    size_t litlen;
    const void *lit = lcl__rd_bytes(&r, &litlen);
    s->max = lcl__rd_u32(&r);
    int64_t budget = lcl__rd_i64(&r);
    s->npaths = lcl__rd_u32(&r);
    if (!r.bad && (s->npaths > LCL_MAX_PATHS || litlen == 0 || litlen > LCL_ARG_MAX))
        r.bad = true;
    if (!r.bad) {
        s->paths = calloc(s->npaths ? s->npaths : 1, sizeof(char *));
        s->lit = malloc(litlen);
        s->buf = malloc(SCAN_BUF);
        if (!s->paths || !s->lit || !s->buf) {
            search_free(s);
            reply_error(c, AB_NOMEM, ENOMEM, "out of memory in the sandbox helper");
            return;
        }
        memcpy(s->lit, lit, litlen);
        s->litlen = litlen;
        for (uint32_t i = 0; i < s->npaths && !r.bad; i++)
            s->paths[i] = lcl__rd_str(&r, LCL_STR_MAX);
    }
    if (!lcl__rd_done(&r)) {
        search_free(s);
        reply_error(c, AB_PROTO, EPROTO, "malformed search request");
        return;
    }
    s->deadline = budget > 0 ? ab_mono_ms() + budget : 0;
    s->last_emit = ab_mono_ms();
    buf_init(&s->fr, LCL_HDR + LCL_FRAME_MAX);
    search_frame_start(s);
    c->search = s;
    c->st = C_SEARCH;
}

static void produce_search(struct chan *c)
{
    struct search *s = c->search;
    if (s->next >= s->npaths) {
        search_finish(c, s);
        return;
    }
    if (s->deadline && ab_mono_ms() > s->deadline) {
        s->truncated = true;
        {
            search_finish(c, s);
            return;
        }
    }
    if (!search_file(c, s, s->next++)) {
        search_finish(c, s);
        return;
    }
    if (ab_mono_ms() - s->last_emit > HEARTBEAT_MS)
        search_frame_flush(c, s, true);
}

/* ------------------------------------------------------------------------------------------
 * channels
 * ---------------------------------------------------------------------------------------- */

static void chan_new(int fd)
{
    if (H.nchans >= MAX_CHANNELS) {
        close(fd);
        return;
    }
    struct chan *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->wfd = c->rfd = -1;
    c->w = (struct watch){W_CHAN, c};
    buf_init(&c->req, LCL_REQ_MAX);
    set_nonblock(fd);
    if (ep_add(fd, EPOLLIN, &c->w) < 0) {
        close(fd);
        free(c);
        return;
    }
    c->next = H.chans;
    H.chans = c;
    H.nchans++;
}

static void chan_free(struct chan *c)
{
    ep_close(&c->fd);
    while (c->qh) {
        struct oframe *o = c->qh;
        c->qh = o->next;
        free(o);
    }
    if (c->ex) {
        struct exec *x = c->ex;
        x->ch = NULL;
        if (x->pid > 0) {
            exec_kill(x); /* the caller is gone: nobody will read the result */
        } else {
            exec_free(x); /* still collecting stdin: never started */
        }
    }
    close_fd(&c->wfd);
    close_fd(&c->rfd);
    walk_free(c->walk);
    search_free(c->search);
    buf_cleanup(&c->req);
    free(c);
}

static bool producing(const struct chan *c)
{
    return c->st == C_READ || c->st == C_WALK || c->st == C_SEARCH;
}

static void chan_frame(struct chan *c, struct lcl_frame *f)
{
    if (f->nfds) {
        lcl__frame_close_fds(f);
        c->dead = true;
        return;
    }
    if (f->type == LCL_REQ_CONT) {
        if (c->st != C_IDLE || buf_append(&c->req, f->payload, f->len) != AB_OK)
            c->dead = true;
        return;
    }
    const unsigned char *p = f->payload;
    size_t len = f->len;
    if (c->req.len) {
        if (buf_append(&c->req, f->payload, f->len) != AB_OK) {
            c->dead = true;
            return;
        }
        p = (const unsigned char *)c->req.data;
        len = c->req.len;
    }
    switch (c->st) {
    case C_IDLE:
        switch (f->type) {
        case LCL_REQ_EXEC:
            start_exec(c, p, len);
            break;
        case LCL_REQ_READ:
            start_read(c, p, len);
            break;
        case LCL_REQ_WRITE:
            start_write(c, p, len);
            break;
        case LCL_REQ_STAT:
            do_stat(c, p, len);
            break;
        case LCL_REQ_LISTDIR:
            start_walk(c, p, len, false);
            break;
        case LCL_REQ_WALK:
            start_walk(c, p, len, true);
            break;
        case LCL_REQ_SEARCH:
            start_search(c, p, len);
            break;
        case LCL_REQ_CANCEL:
            break; /* the command already finished */
        default:
            c->dead = true;
            break;
        }
        break;
    case C_EXEC_STDIN:
        if (f->type == LCL_REQ_DATA) {
            struct lcl_rd r;
            lcl__rd_init(&r, p, len);
            size_t n;
            const void *data = lcl__rd_bytes(&r, &n);
            struct exec *x = c->ex;
            if (!lcl__rd_done(&r) || n > x->in_len - x->in_off) {
                c->dead = true;
                break;
            }
            memcpy(x->in_buf + x->in_off, data, n);
            x->in_off += n;
            if (x->in_off == x->in_len) {
                x->in_off = 0;
                c->ex = NULL;
                exec_spawn(c, x);
            }
        } else if (f->type == LCL_REQ_CANCEL) {
            c->dead = true; /* nothing started: drop the request with the channel */
        } else {
            c->dead = true;
        }
        break;
    case C_EXEC:
        if (f->type == LCL_REQ_CANCEL && c->ex) {
            c->ex->cancelled = true;
            exec_kill(c->ex);
        } else if (f->type != LCL_REQ_CANCEL) {
            c->dead = true;
        }
        break;
    case C_WRITE:
        if (f->type == LCL_REQ_DATA)
            write_data(c, p, len);
        else
            c->dead = true;
        break;
    case C_READ:
    case C_WALK:
    case C_SEARCH:
        if (f->type != LCL_REQ_CANCEL)
            c->dead = true;
        break;
    }
    buf_reset(&c->req);
}

static void chan_readable(struct chan *c)
{
    for (int i = 0; i < 64 && !c->dead; i++) {
        struct lcl_frame f;
        int r = lcl__recv(c->fd, H.rx, &f);
        if (r == -EAGAIN)
            return;
        if (r <= 0) {
            c->dead = true;
            return;
        }
        chan_frame(c, &f);
    }
}

static void pump(struct chan *c)
{
    for (int guard = 0; guard < 64 && !c->dead; guard++) {
        flush(c);
        if (c->dead || !producing(c) || c->qbytes >= Q_HIGH)
            break;
        switch (c->st) {
        case C_READ:
            produce_read(c);
            break;
        case C_WALK:
            produce_walk(c);
            break;
        case C_SEARCH:
            produce_search(c);
            break;
        case C_IDLE:
        case C_EXEC_STDIN:
        case C_EXEC:
        case C_WRITE:
            break;
        }
    }
    if (!c->dead) {
        flush(c);
        if (producing(c) && c->qbytes < Q_HIGH)
            H.busy = true;
        struct exec *x = c->ex;
        if (x && x->out_paused && x->out_fd >= 0 && c->qbytes < Q_LOW) {
            x->out_paused = false;
            ep_add(x->out_fd, EPOLLIN, &x->wout);
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * control, signals, the loop
 * ---------------------------------------------------------------------------------------- */

static void ctl_readable(void)
{
    for (;;) {
        struct lcl_frame f;
        int r = lcl__recv(H.ctl, H.rx, &f);
        if (r == -EAGAIN)
            return;
        if (r <= 0)
            _exit(0); /* the server is gone: PID 1 exits, the kernel kills the rest */
        if (f.type == LCL_H_NEW_CHANNEL && f.nfds == 1 && f.len == 0) {
            chan_new(f.fds[0]);
        } else {
            lcl__frame_close_fds(&f);
            _exit(0);
        }
    }
}

static void reap(void)
{
    struct signalfd_siginfo si;
    while (read(H.sig, &si, sizeof(si)) == (ssize_t)sizeof(si))
        ;
    int status;
    pid_t pid;
    /* As PID 1 we also inherit every orphan of the namespace: reap them all. */
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (struct exec *x = H.execs; x; x = x->next)
            if (!x->done && x->pid == pid) {
                exec_reaped(x, status);
                break;
            }
    }
}

static int next_timeout(void)
{
    if (H.busy)
        return 0;
    int64_t next = 0;
    for (struct exec *x = H.execs; x; x = x->next)
        if (x->pid > 0 && x->deadline && !x->timed_out && (!next || x->deadline < next))
            next = x->deadline;
    if (!next)
        return -1;
    int64_t left = next - ab_mono_ms();
    return left <= 0 ? 0 : (int)AB_MIN(left, (int64_t)INT32_MAX);
}

static void check_deadlines(void)
{
    int64_t now = ab_mono_ms();
    for (struct exec *x = H.execs; x; x = x->next)
        if (x->pid > 0 && x->deadline && !x->timed_out && now >= x->deadline) {
            x->timed_out = true;
            exec_kill(x);
        }
}

void lcl__serve(const struct lcl_setup *s, int ctl)
{
    H.s = s;
    H.ctl = ctl;
    H.rx = malloc(LCL_HDR + LCL_FRAME_MAX + 1);
    buf_init(&H.tx, LCL_HDR + LCL_FRAME_MAX);
    build_base_env();
    set_nonblock(ctl);
    H.ep = epoll_create1(EPOLL_CLOEXEC);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    H.sig = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    H.wctl = (struct watch){W_CTL, NULL};
    H.wsig = (struct watch){W_SIG, NULL};
    if (!H.rx || H.ep < 0 || H.sig < 0 || ep_add(ctl, EPOLLIN, &H.wctl) < 0 ||
        ep_add(H.sig, EPOLLIN, &H.wsig) < 0)
        _exit(1);

    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(H.ep, evs, 64, next_timeout());
        if (n < 0 && errno != EINTR)
            _exit(1);
        H.busy = false;
        for (int i = 0; i < n; i++) {
            struct watch *w = evs[i].data.ptr;
            switch (w->kind) {
            case W_CTL:
                ctl_readable();
                break;
            case W_SIG:
                reap();
                break;
            case W_CHAN: {
                struct chan *c = w->obj;
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    chan_readable(c);
                break; /* EPOLLOUT: pump() below flushes */
            }
            case W_OUT:
                exec_read(w->obj, false);
                break;
            case W_IN:
                exec_write_stdin(w->obj);
                break;
            case W_DRAIN:
                drain_read(w->obj);
                break;
            }
        }
        check_deadlines();
        sweep();
        for (struct chan **pp = &H.chans; *pp;) {
            struct chan *c = *pp;
            pump(c);
            if (c->dead) {
                *pp = c->next;
                H.nchans--;
                chan_free(c);
            } else {
                pp = &c->next;
            }
        }
    }
}
