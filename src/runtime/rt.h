/*
 * rt.h - agentbox-runtime: a small HTTP server speaking the agent-sandbox python-runtime API
 * (agent-sandbox.md section 4) so it can replace the Python image in a SandboxTemplate, plus
 * agentbox extensions under /agentbox/v1/ (streaming exec with cwd/env/stdin, lstat, info).
 *
 * Modules: rt_exec.c (shlex splitting and child processes), rt_fs.c (path confinement under
 * the base directory), rt_server.c (libmicrohttpd handlers). main.c is the CLI.
 */
#ifndef AB_RUNTIME_RT_H
#define AB_RUNTIME_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/status.h"

/* ---- shlex ---- */

/* Split like Python's shlex.split(s) (POSIX mode, no comments). On success *argv_out is a
 * new NULL-terminated vector (free with rt_argv_free). On a syntax error returns AB_INVAL
 * with err->msg set to Python's exact text ("No closing quotation", "No escaped
 * character"). */
ab_status rt_shlex_split(const char *s, char ***argv_out, size_t *argc_out, struct ab_err *err);
void rt_argv_free(char **argv);

/* Python repr() of a list of str, as in subprocess.TimeoutExpired's message. Returns new. */
char *rt_py_list_repr(char *const *argv);

/* ---- processes ---- */

struct rt_proc_opts {
    char *const *argv;      /* argv[0] searched in PATH */
    const char *cwd;        /* absolute */
    char *const *env_extra; /* "K=V", appended over the server's environment; may be NULL */
    const void *stdin_data; /* may be NULL (stdin = /dev/null) */
    size_t stdin_len;
    bool merge_output;      /* stderr into the stdout pipe (interleaved, one stream) */
};

struct rt_proc {
    pid_t pid;       /* also the process group id (new session) */
    int out_fd;      /* -1 once EOF */
    int err_fd;      /* -1 once EOF or when merged */
    int in_fd;       /* -1 once all stdin is written */
    const char *stdin_data;
    size_t stdin_len, stdin_off;
    bool reaped;
    int wstatus;
    int64_t start_ms;
    int reap_polls;  /* polls since output closed (backoff 1, 2, 4, 8, 10 ms) */
};

/* Start the process in a new session. AB_NOTFOUND (errno ENOENT) etc. when it cannot run;
 * err->sys_errno carries the errno for Python-style messages. */
ab_status rt_proc_start(struct rt_proc *p, const struct rt_proc_opts *o, struct ab_err *err);

/* Wait for output until deadline_ms (ab_mono_ms; 0 = none) or until cancel_fd (may be -1)
 * is readable. Appends stdout bytes to out and stderr bytes to errb (either may be NULL to
 * discard); returns the number of bytes read into *got_out / *got_err. Returns AB_OK with
 * *done = true once both pipes hit EOF and the child is reaped, AB_TIMEOUT at the deadline,
 * AB_CANCELLED when cancel_fd fired. Bounded by max_wait_ms per call (0 = until something
 * happens). */
ab_status rt_proc_pump(struct rt_proc *p, struct buf *out, struct buf *errb, int64_t deadline_ms,
                       int cancel_fd, int64_t max_wait_ms, bool *done);

/* SIGKILL the whole process group and reap it; closes the pipes. Idempotent. */
void rt_proc_kill(struct rt_proc *p);

/* Close fds (after done or kill). */
void rt_proc_cleanup(struct rt_proc *p);

/* Python's subprocess returncode: exit status, or -signal. Valid after done. */
int rt_proc_returncode(const struct rt_proc *p);

/* ---- files ---- */

/* Resolve path (a client path, leading '/' stripped, relative to base) the way Python's
 * os.path.realpath(os.path.join(base, path)) does, and check it stays under
 * realpath(base). AB_DENIED when it escapes. *out is new. */
ab_status rt_resolve(const char *base_real, const char *path, char **out, struct ab_err *err);

/* Percent-decode (Python urllib.parse.unquote, UTF-8, invalid escapes kept). Returns new. */
char *rt_unquote(const char *s);

/* ---- server ---- */

struct rt_config {
    const char *listen_host; /* "127.0.0.1" */
    int port;                /* 0 = pick one (see rt_server_port) */
    const char *base_dir;
    double exec_timeout_s;   /* /execute timeout (SANDBOX_EXEC_TIMEOUT_SECONDS) */
    uint64_t max_upload_bytes;
};

struct rt_server;

ab_status rt_server_start(const struct rt_config *cfg, struct rt_server **out, struct ab_err *err);
int rt_server_port(const struct rt_server *s);
void rt_server_stop(struct rt_server *s);

#endif
