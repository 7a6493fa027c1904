/*
 * internal.h - declarations shared by the files of the local provider (prefix lcl__).
 *
 * Processes and files:
 *   server (multi-threaded)  provider.c  ops, handles, channels      state.c  state directory
 *                            cgroup.c    per-sandbox cgroups          diag.c   failure causes
 *   spawner (1 thread)       spawner.c   clone()s helpers on request  seccomp.c filter
 *   helper (1 thread, PID 1) helper.c    namespaces, mounts, privileges
 *                            serve.c     the event loop: exec, files
 *   all                      wire.c      framing and encoding
 *
 * Wire protocol (version LCL_WIRE_VERSION). Every message is one SOCK_SEQPACKET datagram:
 * an 8-byte header {u32 type, u32 payload length} and at most LCL_FRAME_MAX payload bytes.
 * Integers are little-endian fixed width, strings are u32 length + bytes (no NUL inside).
 * Bulk data (files, stdin, output) travels as a sequence of frames. SEQPACKET keeps message
 * boundaries, so a reader never sees half a frame, and a zero-length read is EOF.
 *
 * Channels: the socket the helper starts with is its control channel (READY, NEW_CHANNEL).
 * Each operation runs on a channel of its own (strictly one request and its responses at a
 * time); the server keeps a few idle channels per sandbox and creates more on demand by
 * passing one end of a new socketpair over the control channel. A server thread therefore
 * reads only its own channel: no demultiplexing thread, no head-of-line blocking between a
 * long exec and a file read.
 */
#ifndef AB_PROVIDERS_LOCAL_INTERNAL_H
#define AB_PROVIDERS_LOCAL_INTERNAL_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/status.h"
#include "core/sandbox.h"

#define LCL_WIRE_VERSION    1u
#define LCL_HDR             8u
#define LCL_FRAME_MAX       (64u * 1024u)      /* payload bytes per frame */
#define LCL_STR_MAX         4096u              /* paths */
#define LCL_ARG_MAX         (128u * 1024)      /* one argv/env entry: MAX_ARG_STRLEN, execve(2) */
#define LCL_REQ_MAX         (4u * 1024 * 1024) /* a whole request (CONT frames included) */
#define LCL_MAX_ARGS        4096u              /* argv / env entries per exec */
#define LCL_SEARCH_FILE_MAX (64u * 1024 * 1024)
#define LCL_MATCH_TEXT_MAX  (16u * 1024) /* a matched line is cut here */
#define LCL_MAX_PATHS       100000u      /* files per search request */
#define LCL_STDIN_MAX       (64u * 1024 * 1024)
#define LCL_MAX_FDS         4

enum lcl_msg {
    /* spawner */
    LCL_Z_HELLO = 1, /* spawner -> server: u32 version */
    LCL_Z_SPAWN,     /* server -> spawner: spawn request; fds: the helper's socket */
    LCL_Z_SPAWNED,   /* spawner -> server: i32 pid; fds: pidfd (when the kernel has one) */
    LCL_Z_PROBE,     /* server -> spawner: u32 clone flags; try them one by one */
    LCL_Z_PROBED,    /* spawner -> server: u32 n, then n x {u32 flag, i32 errno} */
    LCL_Z_ERROR,     /* spawner -> server: str step, i32 errno */

    /* helper control channel */
    LCL_H_READY = 16,  /* helper -> server: u32 version, i64 nofile, i64 nproc, i64 fsize */
    LCL_H_SETUP_ERROR, /* helper -> server: str step, i32 errno */
    LCL_H_NEW_CHANNEL, /* server -> helper: no payload; fds: the channel socket */

    /* requests on a channel */
    LCL_REQ_EXEC = 32, /* see serve.c */
    LCL_REQ_DATA,      /* bytes (stdin, file contents) */
    LCL_REQ_CANCEL,    /* kill the running command's process group */
    LCL_REQ_READ,      /* str path, u64 max_bytes */
    LCL_REQ_WRITE,     /* str path, u64 length; then DATA frames */
    LCL_REQ_LISTDIR,   /* str path, u32 max_entries */
    LCL_REQ_STAT,      /* str path */
    LCL_REQ_WALK,      /* str root, u32 max_entries, i64 budget_ms, u8 skip_dot_dirs */
    LCL_REQ_SEARCH,    /* bytes literal, u32 max_matches, i64 budget_ms, u32 n, n x str */
    LCL_REQ_CONT,      /* the first part of a request too large for one frame: the helper
                        * concatenates CONT payloads and the final typed frame's payload */

    /* responses */
    LCL_RSP_OUTPUT = 64, /* bytes of command output */
    LCL_RSP_EXIT,        /* i32 exit_code, i32 signal, u8 flags, u64 total, i64 duration_ms */
    LCL_RSP_DATA,        /* bytes of a file */
    LCL_RSP_END,         /* u64 total bytes / u8 truncated: end of a stream */
    LCL_RSP_OK,
    LCL_RSP_ERROR,   /* u32 ab_status, i32 errno, str message */
    LCL_RSP_STAT,    /* stat record */
    LCL_RSP_ENTRIES, /* u32 n, n x {str name, stat record} (list_dir, walk) */
    LCL_RSP_MATCHES, /* u32 n, n x {u32 path index, i64 line, bytes text} */
};

/* LCL_RSP_EXIT flags */
#define LCL_EXIT_TIMED_OUT 1u
#define LCL_EXIT_CANCELLED 2u
#define LCL_EXIT_TRUNCATED 4u

/* LCL_REQ_EXEC flags */
#define LCL_EXEC_SHELL 1u

/* ---- encoding (wire.c) ---- */

/* A frame under construction: header placeholder + payload, capped at LCL_FRAME_MAX. */
void lcl__wr_begin(struct buf *b, uint32_t type);
ab_status lcl__wr_u8(struct buf *b, uint8_t v);
ab_status lcl__wr_u32(struct buf *b, uint32_t v);
ab_status lcl__wr_i32(struct buf *b, int32_t v);
ab_status lcl__wr_u64(struct buf *b, uint64_t v);
ab_status lcl__wr_i64(struct buf *b, int64_t v);
ab_status lcl__wr_str(struct buf *b, const char *s);
ab_status lcl__wr_bytes(struct buf *b, const void *p, size_t n);
/* Patch the payload length into the header. Returns the frame length. */
size_t lcl__wr_end(struct buf *b);
/* Room left for payload in b (for packing batches). */
size_t lcl__wr_room(const struct buf *b);

/* Reading a received frame: every accessor checks bounds; the first failure makes the
 * reader "bad" and every later accessor return zero/NULL, so callers check once at the end. */
struct lcl_rd {
    const unsigned char *p;
    size_t left;
    bool bad;
};

void lcl__rd_init(struct lcl_rd *r, const void *payload, size_t len);
uint8_t lcl__rd_u8(struct lcl_rd *r);
uint32_t lcl__rd_u32(struct lcl_rd *r);
int32_t lcl__rd_i32(struct lcl_rd *r);
uint64_t lcl__rd_u64(struct lcl_rd *r);
int64_t lcl__rd_i64(struct lcl_rd *r);
/* Returns new, NUL-terminated; NULL (and bad) when longer than max or containing a NUL. */
char *lcl__rd_str(struct lcl_rd *r, size_t max);
/* Borrowed pointer into the frame; *len receives the length. */
const void *lcl__rd_bytes(struct lcl_rd *r, size_t *len);
/* true when the frame was fully and correctly consumed. */
bool lcl__rd_done(const struct lcl_rd *r);

/* ---- socket I/O (wire.c) ---- */

struct lcl_frame {
    uint32_t type;
    const unsigned char *payload; /* points into the receive buffer */
    size_t len;
    int fds[LCL_MAX_FDS]; /* received descriptors (O_CLOEXEC); -1 when unused */
    size_t nfds;
};

/* One sendmsg; returns 0, or -errno (EAGAIN on a full non-blocking socket). */
int lcl__send(int fd, const void *frame, size_t len, const int *fds, size_t nfds);
/* One recvmsg into rxbuf (>= LCL_HDR + LCL_FRAME_MAX bytes). Returns 1 with a frame, 0 on
 * EOF, or -errno (-EPROTO for a malformed or oversized frame, -EAGAIN when non-blocking and
 * empty). Descriptors beyond LCL_MAX_FDS or truncated control data are closed and -EPROTO. */
int lcl__recv(int fd, unsigned char *rxbuf, struct lcl_frame *f);
void lcl__frame_close_fds(struct lcl_frame *f);

/* Server side, blocking with a deadline (ab_mono_ms; 0 = none): wait until the frame is
 * sent / one frame arrives. cancel_fd (or -1) interrupts a wait with AB_CANCELLED. */
ab_status lcl__send_wait(int fd, const void *frame, size_t len, const int *fds, size_t nfds,
                         int64_t deadline_ms, struct ab_err *err);
ab_status lcl__recv_wait(int fd, unsigned char *rxbuf, struct lcl_frame *f, int64_t deadline_ms,
                         int cancel_fd, struct ab_err *err);

/* An ERROR response (helper side). */
ab_status lcl__wr_error(struct buf *b, ab_status code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- the sandbox setup the server asks for (spawner.c, helper.c) ---- */

struct lcl_setup {
    uint32_t clone_flags; /* CLONE_NEW* (without CLONE_NEWCGROUP: the helper unshares it) */
    bool userns;          /* clone_flags has CLONE_NEWUSER */
    char *uid_map;        /* written by the spawner when userns */
    char *gid_map;
    bool deny_setgroups; /* unprivileged userns: "deny" must precede gid_map */
    char **cgroup_procs; /* cgroup.procs files to put the helper into */
    size_t ncgroup;

    uint32_t uid, gid;    /* the sandbox user (inside) */
    char *workspace;      /* inside path, e.g. /workspace */
    char *workspace_host; /* the directory bound there, as a host path */
    bool net_host;        /* share the host network namespace */
    bool seccomp;
    uint64_t tmp_bytes, shm_bytes;
    int64_t nofile, nproc, cpu_seconds;
    uint64_t fsize;
    char **ro_binds; /* extra host directories, bound read-only at the same path */
    size_t nbinds;
};

void lcl__setup_cleanup(struct lcl_setup *s);
/* Encode as an LCL_Z_SPAWN frame / decode one (the spawner does, before clone()). */
ab_status lcl__setup_encode(const struct lcl_setup *s, struct buf *frame);
ab_status lcl__setup_decode(struct lcl_setup *s, const struct lcl_frame *f);

/* ---- spawner process (spawner.c) ---- */

/* Server-side handle on the spawner. */
struct lcl_spawner;

ab_status lcl__spawner_new(const char *binary, struct lcl_spawner **out, struct ab_err *err);
void lcl__spawner_free(struct lcl_spawner *z);
/* Spawn a helper: sends the setup and the helper's socket, returns the helper's pid (in the
 * server's PID namespace) and a pidfd (-1 when the kernel has none). Thread-safe. */
ab_status lcl__spawner_spawn(struct lcl_spawner *z, const struct lcl_setup *s, int helper_sock,
                             pid_t *pid, int *pidfd, struct ab_err *err);
/* Try each namespace flag of `flags` separately; errnos[i] = 0 when flag i works. */
ab_status lcl__spawner_probe(struct lcl_spawner *z, uint32_t flags, uint32_t *flag_out,
                             int *errno_out, size_t cap, size_t *n, struct ab_err *err);

/* ---- helper (helper.c, serve.c) ---- */

/* Runs in the clone()d child: set up the sandbox, then serve until the control channel
 * closes. Never returns. */
__attribute__((noreturn)) void lcl__helper_run(const struct lcl_setup *s, int ctl_fd,
                                               const struct sock_fprog *filter);
/* The event loop, after setup (serve.c). */
__attribute__((noreturn)) void lcl__serve(const struct lcl_setup *s, int ctl_fd);

/* ---- seccomp (seccomp.c) ---- */

/* Compile the sandbox filter once (libseccomp) into a classic BPF program; returns new. */
ab_status lcl__seccomp_compile(struct sock_fprog *out, struct ab_err *err);

/* ---- cgroups (cgroup.c) ---- */

enum lcl_cg_mode { LCL_CG_NONE = 0, LCL_CG_V1, LCL_CG_V2 };

enum lcl_cg_ctrl { LCL_CG_MEMORY = 0, LCL_CG_PIDS, LCL_CG_CPU, LCL_CG_NCTRL };

struct lcl_cg_env {
    enum lcl_cg_mode mode;
    char *base[LCL_CG_NCTRL]; /* v1: per-controller parent dir; v2: base[0] only */
    char v2_controllers[64];  /* v2: what base's cgroup.subtree_control enables */
    char note[512];           /* what is missing and why, for status and the startup log */
};

struct lcl_cg_limits {
    uint64_t memory_bytes; /* 0 = none */
    int64_t pids;          /* 0 = none */
    double cpus;           /* 0 = none */
};

struct lcl_cgroup {
    char *dir[LCL_CG_NCTRL]; /* v1: per controller; v2: dir[0] */
};

/* Find usable controllers and prepare <own cgroup>/agentbox-<tag> (tag: the server
 * instance, so servers never share a cgroup directory). Never fails hard: when
 * cgroups are unusable env->mode is NONE and env->note says why. */
void lcl__cg_detect(struct lcl_cg_env *env, const char *tag);
void lcl__cg_env_cleanup(struct lcl_cg_env *env, bool remove_base);
/* Create a cgroup named id with limits; on failure nothing is left behind. */
ab_status lcl__cg_create(const struct lcl_cg_env *env, const char *id,
                         const struct lcl_cg_limits *lim, struct lcl_cgroup *cg,
                         struct ab_err *err);
/* The cgroup.procs files a new helper is written to (borrowed strings, new array). */
char **lcl__cg_procs_files(const struct lcl_cg_env *env, const struct lcl_cgroup *cg, size_t *n);
/* Remove (retrying briefly while the last tasks are reaped) and free. */
void lcl__cg_destroy(const struct lcl_cg_env *env, struct lcl_cgroup *cg);
/* Effective limits and usage as JSON (returns new). */
json_t *lcl__cg_status(const struct lcl_cg_env *env, const struct lcl_cgroup *cg);
/* Remove the cgroups of another (dead) server instance: agentbox-<tag> next to our base. */
void lcl__cg_sweep_tag(const struct lcl_cg_env *env, const char *tag);

/* ---- state directory (state.c) ---- */

/* Write data to path atomically: a unique temp file, fsync (when sync), rename. The temp
 * file is made in tmpdir (same filesystem; NULL = next to path), so that a process killed
 * mid-write leaves its debris where it is swept, not next to the real file. Without sync
 * the caller hands the file to a flusher (below) for a later fsync. */
ab_status lcl__write_atomic(const char *path, const char *tmpdir, const void *data, size_t len,
                            bool sync, struct ab_err *err);

/* A background thread that fsyncs files (and their directories) written without sync. */
struct lcl_flusher;
ab_status lcl__flusher_new(struct lcl_flusher **out, struct ab_err *err);
/* Queue path for fsync (copied); dropped silently when out of memory. */
void lcl__flusher_add(struct lcl_flusher *fl, const char *path);
/* Flush what is queued, stop the thread, free. NULL is a no-op. */
void lcl__flusher_free(struct lcl_flusher *fl);
/* Read a small file (<= max bytes); returns new. */
ab_status lcl__read_small(const char *path, size_t max, char **out, size_t *len,
                          struct ab_err *err);
/* rm -rf that never follows symlinks, fixes permissions a sandbox removed, and copes with
 * trees deeper than the descriptor limit. AB_OK when path is gone (or never existed). */
ab_status lcl__rm_tree(const char *path, struct ab_err *err);
/* mkdir -p with mode. */
ab_status lcl__mkdirs(const char *path, mode_t mode, struct ab_err *err);

/* ---- diagnosis (diag.c) ---- */

/* Turn a failure to create namespaces or to set up a sandbox into the exact cause and the
 * remedy. step is what failed ("clone", "mount /proc", ...), errnum its errno; flag_errs
 * the per-namespace probe results (may be NULL). Writes into err with AB_UNSUPPORTED. */
ab_status lcl__diagnose(struct ab_err *err, const char *step, int errnum, bool userns,
                        const uint32_t *flags, const int *errnos, size_t nprobe);

/* The same diagnosis as parts, for `agentbox doctor` (doctor.c): what failed ("creating a
 * PID namespace"), the errno it failed with, the cause and the remedy. */
struct lcl_diagnosis {
    char what[256];
    int errnum;
    char cause[512];
    char remedy[512];
};

void lcl__explain(struct lcl_diagnosis *d, const char *step, int errnum, bool userns,
                  const uint32_t *flags, const int *errnos, size_t nprobe);

/* The first line of a small file (a /proc or /sys value) without its newline; false (out
 * untouched) when it cannot be read. */
bool lcl__read_line(const char *path, char *out, size_t cap);

/* The value of a "Key:\tvalue" line of /proc/self/status (leading blanks and the newline
 * dropped); false when there is no such line. */
bool lcl__proc_status(const char *key, char *out, size_t cap);

#endif
