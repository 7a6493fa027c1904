/*
 * sandbox.h - the provider interface: the small set of primitives every sandbox backend
 * implements. Everything an agent sees (the ten tools, their texts, limits, path rules) is
 * built once on top of these in core/ (fsops, registry, pool), so the semantics are identical
 * on every provider.
 *
 * A provider (struct sbx_provider) is one configured backend: the local namespace provider
 * or the agent-sandbox Kubernetes provider. A sandbox (struct sbx_handle) is one live
 * isolated environment with a writable workspace.
 *
 * Paths given to the file primitives are absolute paths *inside the sandbox* and already
 * normalised by core (no "..", no "//"); providers resolve them inside the sandbox's own view
 * (for the local provider: inside its mount namespace, so a symlink can never lead out of it).
 *
 * Threading: every op may be called from any thread, concurrently, on the same handle; a
 * provider serialises internally what must be serialised. A handle stays valid until
 * destroy() or release() returns; the registry guarantees no op is in flight then.
 *
 * Ownership: "returns new" results are freed by the caller with the matching *_free or
 * json_decref; strings in request structs are borrowed for the duration of the call.
 */
#ifndef AB_CORE_SANDBOX_H
#define AB_CORE_SANDBOX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/cancel.h"
#include "base/status.h"

struct sbx_provider;
struct sbx_handle;

/* ------------------------------------------------------------------------------------------
 * Identity and metadata
 * ---------------------------------------------------------------------------------------- */

/* What core knows about a sandbox. Providers persist it (local: a JSON file in the state
 * directory; Kubernetes: labels and annotations on the SandboxClaim) so that attach() after
 * a restart, or from another replica, gets it back. */
struct sbx_info {
    char *name;          /* deterministic, DNS-1123 label safe: "ab-<hash>" */
    char *principal;     /* owner; "" when auth is off (the implicit principal) */
    char *thread_key;    /* the thread key as given by the caller, or NULL if unknown */
    char *thread_hash;   /* hex hash of (principal, key): what labels carry */
    json_t *labels;      /* object of string -> string; never NULL once filled */
    int64_t created_ms;  /* wall clock, epoch ms */
    int64_t last_used_ms;
    int64_t ttl_s;       /* absolute TTL from creation; 0 = none */
    int64_t idle_ttl_s;  /* idle TTL from last use; 0 = none */
    bool warm;           /* true when this acquisition came from a warm pool */
};

void sbx_info_init(struct sbx_info *info);
void sbx_info_cleanup(struct sbx_info *info);
/* Deep copy into dst (initialised by this call). */
ab_status sbx_info_copy(struct sbx_info *dst, const struct sbx_info *src);
/* JSON view for status/list results and for persistence; returns new. */
json_t *sbx_info_to_json(const struct sbx_info *info);
/* Parse what sbx_info_to_json wrote; dst is initialised by this call. */
ab_status sbx_info_from_json(struct sbx_info *dst, const json_t *obj, struct ab_err *err);

/* ------------------------------------------------------------------------------------------
 * exec
 * ---------------------------------------------------------------------------------------- */

/* Called with each chunk of output as it arrives (stdout and stderr interleaved in arrival
 * order). Runs on the thread that called exec(). Chunks past output_cap are still reported
 * (so progress streaming sees the command is alive) but not kept. */
typedef void (*sbx_output_cb)(void *arg, const char *data, size_t len);

struct sbx_exec_req {
    const char *const *argv;  /* argv[0] is looked up in PATH; NULL -> use shell */
    const char *shell;        /* run as `sh -c shell` when argv is NULL */
    const char *cwd;          /* absolute path inside the sandbox; NULL = workspace root */
    const char *const *env;   /* extra "KEY=VALUE" entries, NULL-terminated; may be NULL */
    const void *stdin_data;   /* bytes written to the command's stdin, then EOF; may be NULL */
    size_t stdin_len;         /* (with stdin_data == NULL stdin is /dev/null) */
    int64_t timeout_ms;       /* 0 = no timeout */
    size_t output_cap;        /* bytes of output kept in the result; 0 = provider default */
    sbx_output_cb on_output;  /* may be NULL */
    void *on_output_arg;
    struct ab_cancel *cancel; /* may be NULL; firing kills the command's process group */
};

struct sbx_exec_result {
    int exit_code;        /* exit status, 128+signal when killed, 124 on timeout */
    bool timed_out;       /* the timeout fired; exit_code is 124, output is what came before */
    bool truncated;       /* output exceeded output_cap; output holds the first output_cap bytes */
    bool cancelled;       /* the cancel token fired */
    struct buf output;    /* combined output, capped; caller cleans up */
    int64_t duration_ms;
};

void sbx_exec_result_init(struct sbx_exec_result *res);
void sbx_exec_result_cleanup(struct sbx_exec_result *res);

/* ------------------------------------------------------------------------------------------
 * Files
 * ---------------------------------------------------------------------------------------- */

enum sbx_ftype {
    SBX_FT_NONE = 0, /* does not exist */
    SBX_FT_FILE,
    SBX_FT_DIR,
    SBX_FT_SYMLINK,
    SBX_FT_OTHER,    /* fifo, socket, device */
};

struct sbx_stat {
    enum sbx_ftype type; /* of the path itself (lstat) */
    enum sbx_ftype target_type; /* for a symlink: what it points to (stat), else == type */
    uint64_t size;
    int64_t mtime_ms;
    uint32_t mode;       /* permission bits */
};

/* The type a stat(2) st_mode describes (for providers that stat real files). */
enum sbx_ftype sbx_ftype_from_mode(mode_t mode);

struct sbx_dirent {
    char *name;          /* entry name, not a path */
    struct sbx_stat st;  /* lstat of the entry */
};

void sbx_dirents_free(struct sbx_dirent *ents, size_t n);

/* One entry of a recursive walk: path relative to the walk root, '/'-separated. */
struct sbx_walk_entry {
    char *relpath;
    struct sbx_stat st;
};

void sbx_walk_entries_free(struct sbx_walk_entry *ents, size_t n);

struct sbx_walk_req {
    const char *root;        /* absolute directory inside the sandbox */
    size_t max_entries;      /* stop after this many (sets *truncated) */
    int64_t deadline_ms;     /* ab_mono_ms() deadline; 0 = none (sets *truncated when hit) */
    bool skip_dot_dirs;      /* do not descend into directories whose name starts with '.' */
    struct ab_cancel *cancel;
};

/* One literal-search hit. */
struct sbx_match {
    char *path;   /* absolute path inside the sandbox */
    int64_t line; /* 1-based */
    char *text;   /* the line without its terminator (CR stripped) */
};

void sbx_matches_free(struct sbx_match *m, size_t n);

struct sbx_search_req {
    const char *const *paths; /* absolute file paths to search, in order */
    size_t npaths;
    const char *literal;      /* byte string to find (no regex) */
    size_t literal_len;
    size_t max_matches;       /* stop after this many (sets *truncated) */
    int64_t deadline_ms;
    struct ab_cancel *cancel;
};

/* ------------------------------------------------------------------------------------------
 * Lifecycle and pools
 * ---------------------------------------------------------------------------------------- */

struct sbx_create_req {
    const struct sbx_info *info; /* name == NULL: an anonymous warm-pool sandbox */
    struct ab_cancel *cancel;
    int64_t deadline_ms;         /* give up (AB_TIMEOUT) after this ab_mono_ms(); 0 = default */
};

struct sbx_pool_status {
    bool supported;
    int64_t target;      /* configured size */
    int64_t ready;       /* warm sandboxes ready now */
    uint64_t acquired_warm;
    uint64_t acquired_cold;
};

/* A page of sandboxes from list(). */
struct sbx_list_page {
    struct sbx_info *items;
    size_t n;
    char *next_cursor; /* NULL when this is the last page */
};

void sbx_list_page_cleanup(struct sbx_list_page *page);

/* ------------------------------------------------------------------------------------------
 * The vtable. Required ops are marked (req); core provides fallbacks for the optional ones.
 * ---------------------------------------------------------------------------------------- */

struct sbx_provider_ops {
    const char *kind; /* "local", "agent-sandbox" */

    /* (req) Create a sandbox for info (copied). *out is new; on failure nothing is left
     * behind (the provider cleans up partial state, e.g. deletes a failed claim). */
    ab_status (*create)(struct sbx_provider *p, const struct sbx_create_req *req,
                        struct sbx_handle **out, struct ab_err *err);

    /* (req) Reconnect to an existing sandbox by name; AB_NOTFOUND when it does not exist.
     * When the sandbox's workspace exists but nothing runs (local provider after a server
     * restart), the provider starts it again with the workspace intact. info_out is filled
     * from the persisted metadata (initialised by this call). */
    ab_status (*attach)(struct sbx_provider *p, const char *name, struct sbx_handle **out,
                        struct sbx_info *info_out, struct ab_err *err);

    /* (req) Destroy the sandbox and everything in it (processes, workspace) and free h. */
    ab_status (*destroy)(struct sbx_provider *p, struct sbx_handle *h, struct ab_err *err);

    /* (req) Free h without destroying the sandbox (server shutdown): the sandbox can be
     * attached again later. For the local provider this stops the helper but keeps the
     * workspace and metadata. */
    void (*release)(struct sbx_provider *p, struct sbx_handle *h);

    /* (req) List sandboxes whose labels match selector (Kubernetes label-selector syntax,
     * equality-based: "a=b,c!=d,e"; NULL = all) for one principal (NULL = all principals).
     * Paginated: cursor NULL = first page, limit 0 = provider default. */
    ab_status (*list)(struct sbx_provider *p, const char *principal, const char *selector,
                      const char *cursor, size_t limit, struct sbx_list_page *page,
                      struct ab_err *err);

    /* (req) Provider-specific status of one sandbox as a JSON object (returns new): at least
     * "state" ("running", "stopped", ...) and "limits" (the effective resource limits). */
    ab_status (*status)(struct sbx_provider *p, struct sbx_handle *h, json_t **out,
                        struct ab_err *err);

    /* (req) Persist metadata changes (last_used_ms, labels). Called by the registry,
     * throttled; cheap providers may write every time. */
    ab_status (*update_info)(struct sbx_provider *p, struct sbx_handle *h,
                             const struct sbx_info *info, struct ab_err *err);

    /* (req) Run a command. A non-zero exit, a timeout or a cancellation is not an error of
     * exec (status AB_OK, described in res); errors are for "could not run at all". */
    ab_status (*exec)(struct sbx_provider *p, struct sbx_handle *h,
                      const struct sbx_exec_req *req, struct sbx_exec_result *res,
                      struct ab_err *err);

    /* (req) Read a whole regular file, following symlinks inside the sandbox. More than
     * max_bytes -> AB_LIMIT (out untouched). AB_NOTFOUND, AB_ISDIR, AB_DENIED as usual. */
    ab_status (*read_file)(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                           size_t max_bytes, struct buf *out, struct ab_err *err);

    /* (req) Create or truncate path and write data, creating missing parent directories
     * (mode 0755), file mode 0644 for new files. Atomic from a reader's point of view is not
     * required. */
    ab_status (*write_file)(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                            const void *data, size_t len, struct ab_err *err);

    /* (req) List a directory (not recursive, no "." or ".."), in the order the filesystem
     * returns entries. *ents is new (sbx_dirents_free). */
    ab_status (*list_dir)(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                          struct sbx_dirent **ents, size_t *n, struct ab_err *err);

    /* (req) lstat (with target_type filled for symlinks); AB_NOTFOUND when absent. */
    ab_status (*stat)(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                      struct sbx_stat *st, struct ab_err *err);

    /* (opt) Recursive walk below req->root (not following symlinks into directories).
     * Fallback: core walks with list_dir. */
    ab_status (*walk)(struct sbx_provider *p, struct sbx_handle *h, const struct sbx_walk_req *req,
                      struct sbx_walk_entry **ents, size_t *n, bool *truncated,
                      struct ab_err *err);

    /* (opt) Literal search over the given files. Binary files (a NUL in the first 8 KiB) are
     * skipped. Fallback: core reads each file with read_file. */
    ab_status (*search)(struct sbx_provider *p, struct sbx_handle *h,
                        const struct sbx_search_req *req, struct sbx_match **matches, size_t *n,
                        bool *truncated, struct ab_err *err);

    /* (opt) Give an anonymous (warm-pool) sandbox its identity. Providers without it get no
     * core-managed warm pool (Kubernetes pools are managed by the controller instead). */
    ab_status (*bind)(struct sbx_provider *p, struct sbx_handle *h, const struct sbx_info *info,
                      struct ab_err *err);

    /* (opt) Provider-managed pool status (Kubernetes: SandboxWarmPool readyReplicas). */
    ab_status (*pool_status)(struct sbx_provider *p, struct sbx_pool_status *st,
                             struct ab_err *err);

    /* (opt) Health of the provider itself (namespaces usable, API reachable). */
    ab_status (*check)(struct sbx_provider *p, struct ab_err *err);

    /* (req) Free the provider (all handles have been released or destroyed). */
    void (*free)(struct sbx_provider *p);
};

/* Providers embed this as their first member. */
struct sbx_provider {
    const struct sbx_provider_ops *ops;
    /* Absolute path of the workspace inside this provider's sandboxes (the working
     * directory of commands; relative tool paths resolve under it), e.g. "/workspace"
     * locally, the runtime's root in a pod. NULL = cfg local.workspace. */
    const char *workspace;
};

/* ------------------------------------------------------------------------------------------
 * Core-side wrappers: call the op, or the core fallback for optional ops.
 * ---------------------------------------------------------------------------------------- */

ab_status sbx_walk(struct sbx_provider *p, struct sbx_handle *h, const struct sbx_walk_req *req,
                   struct sbx_walk_entry **ents, size_t *n, bool *truncated, struct ab_err *err);

ab_status sbx_search(struct sbx_provider *p, struct sbx_handle *h,
                     const struct sbx_search_req *req, struct sbx_match **matches, size_t *n,
                     bool *truncated, struct ab_err *err);

/* Label selectors (equality-based Kubernetes syntax: "k=v", "k==v", "k!=v", "k", "!k",
 * comma-separated, all must hold). Shared by every provider that filters in memory. */
ab_status sbx_selector_validate(const char *selector, struct ab_err *err);
bool sbx_selector_matches(const char *selector, const json_t *labels);

/* Label keys/values follow Kubernetes rules (so the same labels work on every provider). */
ab_status sbx_labels_validate(const json_t *labels, struct ab_err *err);

#endif
