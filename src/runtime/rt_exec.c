/*
 * rt_exec.c - command splitting and child processes for agentbox-runtime.
 *
 * /execute must behave like the python-runtime: shlex.split(command) then
 * subprocess.Popen(args) without a shell, cwd = base dir, a new session, output captured.
 * rt_shlex_split is a state machine transcribed from the behaviour of CPython's shlex in
 * POSIX mode with whitespace_split=True and no comment characters (what shlex.split does),
 * including its two error messages, so clients see the same texts.
 *
 * Processes are started with posix_spawnp (POSIX_SPAWN_SETSID + addchdir_np): the server is
 * multi-threaded (one thread per connection), and fork() from a threaded process may only
 * call async-signal-safe functions before exec; posix_spawn does exactly that for us (glibc
 * uses clone(CLONE_VM|CLONE_VFORK)). Rejected: a shell (`sh -c`), which upstream deliberately
 * does not use; clients wrap commands in `sh -c` themselves.
 *
 * rt_proc_pump multiplexes stdout, stderr, stdin and a cancel fd with poll(2); the caller
 * drives it, so the same code serves the buffered /execute and the streaming extension.
 */
#include "runtime/rt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"

extern char **environ;

/* ---- shlex ---- */

struct argv_vec {
    char **v;
    size_t n, cap;
};

static ab_status argv_push(struct argv_vec *a, struct buf *tok)
{
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        char **nv = realloc(a->v, cap * sizeof(*nv));
        if (!nv)
            return AB_NOMEM;
        a->v = nv;
        a->cap = cap;
    }
    char *s = ab_strndup(buf_cstr(tok), tok->len);
    if (!s)
        return AB_NOMEM;
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
    buf_reset(tok);
    return AB_OK;
}

void rt_argv_free(char **argv)
{
    ab_strv_free(argv);
}

static bool sh_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

ab_status rt_shlex_split(const char *s, char ***argv_out, size_t *argc_out, struct ab_err *err)
{
    struct argv_vec a = {0};
    struct buf tok;
    buf_init(&tok, (size_t)1 << 30);
    ab_status rc = AB_OK;
    /* state: ' ' between tokens, 'a' in a word, '\'' or '"' in quotes, '\\' after an escape */
    char state = ' ', escaped_from = 0;
    bool have_token = false; /* a token was started (so '' yields an empty argument) */
    for (const char *p = s;; p++) {
        char c = *p;
        if (c == '\0') {
            if (state == '\'' || state == '"') {
                rc = ab_err_set(err, AB_INVAL, "No closing quotation");
                goto out;
            }
            if (state == '\\') {
                rc = ab_err_set(err, AB_INVAL, "No escaped character");
                goto out;
            }
            if (have_token && (rc = argv_push(&a, &tok)))
                goto out;
            break;
        }
        switch (state) {
        case ' ':
        case 'a':
            if (sh_space(c)) {
                if (state == 'a' && have_token) {
                    if ((rc = argv_push(&a, &tok)))
                        goto out;
                    have_token = false;
                }
                state = ' ';
            } else if (c == '\'' || c == '"') {
                have_token = true;
                state = c;
            } else if (c == '\\') {
                have_token = true;
                escaped_from = 'a';
                state = '\\';
            } else {
                have_token = true;
                if ((rc = buf_append_char(&tok, c)))
                    goto out;
                state = 'a';
            }
            break;
        case '\'':
            if (c == '\'')
                state = 'a';
            else if ((rc = buf_append_char(&tok, c)))
                goto out;
            break;
        case '"':
            if (c == '"')
                state = 'a';
            else if (c == '\\') {
                escaped_from = '"';
                state = '\\';
            } else if ((rc = buf_append_char(&tok, c)))
                goto out;
            break;
        case '\\':
            /* Inside double quotes a backslash only escapes '"' and '\\'; otherwise it is
             * kept (shlex: escapedquotes = '"'). */
            if (escaped_from == '"' && c != '"' && c != '\\' && (rc = buf_append_char(&tok, '\\')))
                goto out;
            if ((rc = buf_append_char(&tok, c)))
                goto out;
            state = escaped_from;
            break;
        default:
            rc = AB_INTERNAL;
            goto out;
        }
    }
    if (!a.v) {
        a.v = calloc(1, sizeof(char *));
        if (!a.v) {
            rc = AB_NOMEM;
            goto out;
        }
    }
    *argv_out = a.v;
    if (argc_out)
        *argc_out = a.n;
    a.v = NULL;
out:
    buf_cleanup(&tok);
    if (a.v) {
        for (size_t i = 0; i < a.n; i++)
            free(a.v[i]);
        free(a.v);
    }
    if (rc == AB_NOMEM)
        ab_err_set(err, rc, "out of memory");
    return rc;
}

/* Python's str.__repr__ for printable text: single quotes unless the string contains a
 * single quote and no double quote; backslash, the chosen quote and control characters
 * escaped. Non-ASCII bytes are passed through (they are printable in Python 3). */
static ab_status py_repr(struct buf *b, const char *s)
{
    char q = (strchr(s, '\'') && !strchr(s, '"')) ? '"' : '\'';
    ab_status rc = buf_append_char(b, q);
    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
        if (*p == (unsigned char)q || *p == '\\')
            rc = buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            rc = buf_append_str(b, "\\n");
        else if (*p == '\t')
            rc = buf_append_str(b, "\\t");
        else if (*p == '\r')
            rc = buf_append_str(b, "\\r");
        else if (*p < 0x20 || *p == 0x7f)
            rc = buf_printf(b, "\\x%02x", *p);
        else
            rc = buf_append_char(b, (char)*p);
    }
    if (!rc)
        rc = buf_append_char(b, q);
    return rc;
}

char *rt_py_list_repr(char *const *argv)
{
    struct buf b;
    buf_init(&b, 1u << 20);
    ab_status rc = buf_append_char(&b, '[');
    for (size_t i = 0; argv && argv[i] && !rc; i++) {
        if (i)
            rc = buf_append_str(&b, ", ");
        if (!rc)
            rc = py_repr(&b, argv[i]);
    }
    if (!rc)
        rc = buf_append_char(&b, ']');
    if (rc) {
        buf_cleanup(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

/* ---- processes ---- */

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* environ plus extra "K=V" entries; an extra entry replaces an inherited one of the same
 * name. Returns a new vector of borrowed strings. */
static char **build_env(char *const *extra)
{
    size_t ne = 0, nx = 0;
    while (environ && environ[ne])
        ne++;
    while (extra && extra[nx])
        nx++;
    char **v = calloc(ne + nx + 1, sizeof(*v));
    if (!v)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < ne; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool replaced = false;
        for (size_t j = 0; j < nx && !replaced; j++)
            replaced = strncmp(extra[j], environ[i], klen) == 0 && extra[j][klen] == '=';
        if (!replaced)
            v[n++] = environ[i];
    }
    for (size_t j = 0; j < nx; j++)
        v[n++] = extra[j];
    v[n] = NULL;
    return v;
}

ab_status rt_proc_start(struct rt_proc *p, const struct rt_proc_opts *o, struct ab_err *err)
{
    memset(p, 0, sizeof(*p));
    p->pid = -1;
    p->out_fd = p->err_fd = p->in_fd = -1;
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, inp[2] = {-1, -1};
    char **envv = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_init = false, attr_init = false;
    ab_status rc = AB_OK;

    if (!o->argv || !o->argv[0])
        return ab_err_set(err, AB_INVAL, "list index out of range");
    if (pipe2(outp, O_CLOEXEC) < 0 || (!o->merge_output && pipe2(errp, O_CLOEXEC) < 0) ||
        (o->stdin_data && pipe2(inp, O_CLOEXEC) < 0)) {
        rc = ab_err_sys(err, AB_IO, errno, "pipe");
        goto out;
    }
    int e = posix_spawn_file_actions_init(&fa);
    if (e) {
        rc = ab_err_sys(err, AB_NOMEM, e, "posix_spawn_file_actions_init");
        goto out;
    }
    fa_init = true;
    if (o->stdin_data)
        e = posix_spawn_file_actions_adddup2(&fa, inp[0], 0);
    else
        e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!e)
        e = posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    if (!e)
        e = posix_spawn_file_actions_adddup2(&fa, o->merge_output ? outp[1] : errp[1], 2);
    if (!e && o->cwd)
        e = posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
    if (!e)
        e = posix_spawnattr_init(&attr);
    if (e) {
        rc = ab_err_sys(err, AB_NOMEM, e, "posix_spawn setup");
        goto out;
    }
    attr_init = true;
    /* A new session (and so process group) per command, like Popen(start_new_session=True):
     * a timeout kills the whole group, grandchildren included. Signals the server ignores
     * (SIGPIPE) are reset to default for the child. */
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &def);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETSIGMASK);
    envv = build_env(o->env_extra);
    if (!envv) {
        rc = ab_err_set(err, AB_NOMEM, "out of memory");
        goto out;
    }
    pid_t pid;
    e = posix_spawnp(&pid, o->argv[0], &fa, &attr, o->argv, envv);
    if (e) {
        rc = ab_err_sys(err, ab_status_from_errno(e), e, "cannot run '%s'", o->argv[0]);
        goto out;
    }
    p->pid = pid;
    p->start_ms = ab_mono_ms();
    p->out_fd = outp[0];
    outp[0] = -1;
    p->err_fd = errp[0];
    errp[0] = -1;
    if (o->stdin_data) {
        p->in_fd = inp[1];
        inp[1] = -1;
        fcntl(p->in_fd, F_SETFL, fcntl(p->in_fd, F_GETFL) | O_NONBLOCK);
        p->stdin_data = o->stdin_data;
        p->stdin_len = o->stdin_len;
        if (o->stdin_len == 0)
            close_fd(&p->in_fd);
    }
out:
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_init)
        posix_spawnattr_destroy(&attr);
    free(envv);
    for (int i = 0; i < 2; i++) {
        close_fd(&outp[i]);
        close_fd(&errp[i]);
        close_fd(&inp[i]);
    }
    return rc;
}

static ab_status drain(int *fd, struct buf *b, size_t *got)
{
    char chunk[16384];
    ssize_t r = read(*fd, chunk, sizeof(chunk));
    if (r < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return AB_OK;
        close_fd(fd);
        return AB_OK;
    }
    if (r == 0) {
        close_fd(fd);
        return AB_OK;
    }
    if (b)
        buf_append_upto(b, chunk, (size_t)r);
    if (got)
        *got += (size_t)r;
    return AB_OK;
}

static bool try_reap(struct rt_proc *p, bool block)
{
    if (p->reaped || p->pid < 0)
        return true;
    int st;
    pid_t r;
    do
        r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->reaped = true;
        p->wstatus = r == p->pid ? st : 0;
        return true;
    }
    return false;
}

ab_status rt_proc_pump(struct rt_proc *p, struct buf *out, struct buf *errb, int64_t deadline_ms,
                       int cancel_fd, int64_t max_wait_ms, bool *done)
{
    *done = false;
    for (;;) {
        if (p->out_fd < 0 && p->err_fd < 0) {
            /* Output closed: the child has exited or detached its output. Poll the exit
             * status; in_fd may still be open (a child that never read its stdin). */
            close_fd(&p->in_fd);
            if (try_reap(p, false)) {
                *done = true;
                return AB_OK;
            }
        }
        int64_t now = ab_mono_ms();
        if (deadline_ms && now >= deadline_ms)
            return AB_TIMEOUT;
        int wait = -1;
        if (deadline_ms)
            wait = (int)AB_MIN(deadline_ms - now, 1000 * 1000);
        if (max_wait_ms > 0 && (wait < 0 || wait > max_wait_ms))
            wait = (int)max_wait_ms;
        if (p->out_fd < 0 && p->err_fd < 0) {
            /* Output closed: the child is exiting; poll its status with a short backoff so
             * a quick command is not charged a fixed 10 ms. */
            int step = p->reap_polls < 4 ? 1 << p->reap_polls : 10;
            p->reap_polls++;
            if (wait < 0 || wait > step)
                wait = step;
        }
        struct pollfd fds[4];
        int nf = 0, i_out = -1, i_err = -1, i_in = -1, i_cancel = -1;
        if (p->out_fd >= 0) {
            i_out = nf;
            fds[nf++] = (struct pollfd){.fd = p->out_fd, .events = POLLIN};
        }
        if (p->err_fd >= 0) {
            i_err = nf;
            fds[nf++] = (struct pollfd){.fd = p->err_fd, .events = POLLIN};
        }
        if (p->in_fd >= 0) {
            i_in = nf;
            fds[nf++] = (struct pollfd){.fd = p->in_fd, .events = POLLOUT};
        }
        if (cancel_fd >= 0) {
            i_cancel = nf;
            fds[nf++] = (struct pollfd){.fd = cancel_fd, .events = POLLIN};
        }
        int n = poll(fds, (nfds_t)nf, wait);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return AB_IO;
        }
        if (n == 0) {
            if (max_wait_ms > 0 && !(p->out_fd < 0 && p->err_fd < 0))
                return AB_OK; /* nothing within max_wait: let the caller look around */
            continue;
        }
        if (i_cancel >= 0 && (fds[i_cancel].revents & (POLLIN | POLLHUP | POLLERR)))
            return AB_CANCELLED;
        bool any = false;
        if (i_out >= 0 && fds[i_out].revents) {
            drain(&p->out_fd, out, NULL);
            any = true;
        }
        if (i_err >= 0 && fds[i_err].revents) {
            drain(&p->err_fd, errb, NULL);
            any = true;
        }
        if (i_in >= 0 && fds[i_in].revents) {
            if (fds[i_in].revents & (POLLERR | POLLHUP)) {
                close_fd(&p->in_fd);
            } else {
                ssize_t w = write(p->in_fd, p->stdin_data + p->stdin_off,
                                  p->stdin_len - p->stdin_off);
                if (w > 0)
                    p->stdin_off += (size_t)w;
                else if (w < 0 && errno != EAGAIN && errno != EINTR)
                    close_fd(&p->in_fd);
                if (p->stdin_off >= p->stdin_len)
                    close_fd(&p->in_fd);
            }
        }
        if (any && max_wait_ms > 0)
            return AB_OK;
    }
}

void rt_proc_kill(struct rt_proc *p)
{
    if (p->pid > 0 && !p->reaped) {
        kill(-p->pid, SIGKILL);
        kill(p->pid, SIGKILL);
        try_reap(p, true);
    }
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    close_fd(&p->in_fd);
}

void rt_proc_cleanup(struct rt_proc *p)
{
    if (p->pid > 0 && !p->reaped)
        rt_proc_kill(p);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    close_fd(&p->in_fd);
}

int rt_proc_returncode(const struct rt_proc *p)
{
    if (WIFEXITED(p->wstatus))
        return WEXITSTATUS(p->wstatus);
    if (WIFSIGNALED(p->wstatus))
        return -WTERMSIG(p->wstatus);
    return -1;
}
