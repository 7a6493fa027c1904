/*
 * registry.h - thread key -> sandbox, per principal: the get-or-create heart of agentbox.
 *
 * A sandbox belongs to a thread key within a principal (design.md, "Thread-scoped
 * get-or-create"). The tool layer resolves the key for each call (sandbox_id argument,
 * _meta agentbox/thread_id, Agentbox-Thread-Id header, MCP session) and asks the registry
 * for a reference:
 *
 *   struct sbx_ref *ref;
 *   rc = sbx_registry_acquire(reg, principal, key, NULL, &ref, &err);   // get-or-create
 *   ... sbx_ref_provider(ref)->ops->exec(sbx_ref_provider(ref), sbx_ref_handle(ref), ...)
 *   sbx_ref_release(ref);                                                  // marks last use
 *
 * Guarantees:
 * - Get-or-create is atomic per (principal, key): N concurrent first calls create exactly
 *   one sandbox; calls for different keys never wait on each other (per-key locking, the
 *   slow create happens outside the registry-wide lock).
 * - Names are deterministic: sbx_name_for(principal, key) is stable across restarts and
 *   replicas, so after a restart the registry finds the same sandbox again (provider attach).
 * - A sandbox is never destroyed (TTL reaper, delete) while a reference to it is held; a
 *   delete waits for in-flight calls to release, new acquisitions of it fail with NOTFOUND.
 * - Principals are isolated: a name owned by another principal is reported as not found.
 * - Idle TTL (since last release) and absolute TTL (since creation) are enforced by a reaper
 *   thread; both default from config and can be set per sandbox at creation.
 * - Warm pool: when the provider supports bind(), `pool_size` anonymous sandboxes are kept
 *   ready; a create takes one (recording info.warm = true) and a background thread refills.
 */
#ifndef AB_CORE_REGISTRY_H
#define AB_CORE_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/sandbox.h"

struct sbx_registry;
struct sbx_ref;

struct sbx_registry_opts {
    struct sbx_provider *provider; /* borrowed; outlives the registry */
    int64_t ttl_s;                 /* default absolute TTL; 0 = none */
    int64_t idle_ttl_s;            /* default idle TTL; 0 = none */
    int64_t reap_interval_s;       /* 0 = no reaper thread (tests call sbx_registry_reap) */
    int64_t create_timeout_s;
    int64_t pool_size;             /* warm sandboxes to keep; 0 = no pool */
    int64_t max_per_principal;     /* live sandboxes per principal; 0 = unlimited */
    int64_t (*wall_ms)(void);      /* clock for TTLs (epoch ms); NULL = ab_wall_ms (tests
                                    * pass their own to age sandboxes without sleeping) */
};

/* Options for a creation (sandbox_create, or the first use of a thread key). */
struct sbx_create_opts {
    const json_t *labels; /* borrowed; object of string -> string; may be NULL */
    int64_t ttl_s;        /* -1 = registry default, 0 = none */
    int64_t idle_ttl_s;   /* -1 = registry default, 0 = none */
};

/* Start the registry (and its reaper and pool threads). Rediscovers existing sandboxes
 * through provider->list so their TTLs keep running after a restart. *out is new. */
ab_status sbx_registry_new(const struct sbx_registry_opts *opts, struct sbx_registry **out,
                           struct ab_err *err);

/* Stop threads and release (not destroy) every sandbox; pool sandboxes are destroyed.
 * NULL is a no-op. Waits for outstanding references to be released. */
void sbx_registry_free(struct sbx_registry *reg);

/* Deterministic sandbox name for (principal, key): "ab-" + 20 hex chars of
 * SHA-256(principal "\n" key). Returns new. */
char *sbx_name_for(const char *principal, const char *thread_key);

/* Get-or-create the sandbox of (principal, thread_key). opts may be NULL (defaults); they
 * apply only when the sandbox is created by this call. */
ab_status sbx_registry_acquire(struct sbx_registry *reg, const char *principal,
                               const char *thread_key, const struct sbx_create_opts *opts,
                               struct sbx_ref **out, struct ab_err *err);

/* Reference an existing sandbox by name (the sandbox_id tool argument). AB_NOTFOUND when it
 * does not exist or belongs to another principal (the message does not say which). */
ab_status sbx_registry_acquire_by_name(struct sbx_registry *reg, const char *principal,
                                       const char *name, struct sbx_ref **out,
                                       struct ab_err *err);

/* Create a new sandbox (sandbox_create tool). With thread_key NULL a fresh random key is
 * used, so the sandbox is reachable only by its name; with a thread key it is the thread's
 * sandbox (AB_EXISTS if that thread already has one). */
ab_status sbx_registry_create(struct sbx_registry *reg, const char *principal,
                              const char *thread_key, const struct sbx_create_opts *opts,
                              struct sbx_ref **out, struct ab_err *err);

/* Delete by name (sandbox_delete tool): waits for in-flight references, then destroys.
 * AB_NOTFOUND as for acquire_by_name. */
ab_status sbx_registry_delete(struct sbx_registry *reg, const char *principal, const char *name,
                              struct ab_err *err);

/* List one principal's sandboxes (NULL principal = all, for admin/metrics) matching a label
 * selector, paginated with an opaque cursor. */
ab_status sbx_registry_list(struct sbx_registry *reg, const char *principal, const char *selector,
                            const char *cursor, size_t limit, struct sbx_list_page *page,
                            struct ab_err *err);

/* Run one reaper pass now (tests; the reaper thread calls it every reap_interval_s).
 * Returns the number of sandboxes reaped. */
int sbx_registry_reap(struct sbx_registry *reg);

/* Pool status: the provider's own (pool_status op) or the registry's warm pool. */
void sbx_registry_pool_status(struct sbx_registry *reg, struct sbx_pool_status *st);

/* Wait until the registry's warm pool is full or deadline_ms (ab_mono_ms) passes; true when
 * full (or when there is no registry-managed pool). For tests and benchmarks. */
bool sbx_registry_pool_wait_full(struct sbx_registry *reg, int64_t deadline_ms);

/* Counters for metrics. */
struct sbx_registry_stats {
    uint64_t live;          /* sandboxes known right now */
    uint64_t created;       /* creates that succeeded */
    uint64_t create_failed;
    uint64_t reaped;        /* removed by TTL */
    uint64_t deleted;       /* removed by sandbox_delete */
};
void sbx_registry_stats(struct sbx_registry *reg, struct sbx_registry_stats *st);

/* ---- thread-key resolution (design.md, "Thread-scoped get-or-create") ---- */

enum sbx_key_source {
    SBX_KEY_NONE = 0,
    SBX_KEY_SANDBOX_ID, /* the tool's sandbox_id argument: a sandbox name */
    SBX_KEY_META,       /* params._meta["agentbox/thread_id"] */
    SBX_KEY_HEADER,     /* HTTP header Agentbox-Thread-Id */
    SBX_KEY_SESSION,    /* the MCP session (Mcp-Session-Id; for stdio, the process) */
};

/* What a tool call carries; each field may be NULL. Borrowed. */
struct sbx_key_inputs {
    const char *sandbox_id;
    const char *meta_thread_id;
    const char *header_thread_id;
    const char *session_id;
};

/* The first non-empty input in the order above; *value (borrowed) gets it. SBX_KEY_NONE
 * when all are empty. */
enum sbx_key_source sbx_resolve_key(const struct sbx_key_inputs *in, const char **value);
/* "sandbox_id", "meta", "header", "session", "none". */
const char *sbx_key_source_name(enum sbx_key_source src);

/* Resolve and acquire in one step: a sandbox_id is looked up by name (never created), any
 * other key is get-or-created. *src (may be NULL) tells which input decided. */
ab_status sbx_registry_acquire_for_call(struct sbx_registry *reg, const char *principal,
                                        const struct sbx_key_inputs *in,
                                        const struct sbx_create_opts *opts, struct sbx_ref **out,
                                        enum sbx_key_source *src, struct ab_err *err);

/* ---- references ---- */

struct sbx_provider *sbx_ref_provider(const struct sbx_ref *ref);
struct sbx_handle *sbx_ref_handle(const struct sbx_ref *ref);
/* Borrowed snapshot of the metadata, valid until release. */
const struct sbx_info *sbx_ref_info(const struct sbx_ref *ref);
/* true when this acquisition created the sandbox (cold or from the pool). */
bool sbx_ref_created(const struct sbx_ref *ref);

/* Report that the sandbox behind ref failed (helper died, runtime unreachable): the
 * registry drops its handle so the next acquire re-attaches (the local provider restarts
 * the helper with the workspace intact). */
void sbx_ref_mark_broken(struct sbx_ref *ref);

/* Release the reference and record the time of use (for the idle TTL). NULL is a no-op. */
void sbx_ref_release(struct sbx_ref *ref);

#endif
