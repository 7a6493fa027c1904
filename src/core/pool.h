/*
 * pool.h - the warm pool of anonymous sandboxes kept ready for providers that implement
 * bind() (core-internal; used by the registry).
 *
 * A background thread keeps `size` sandboxes created (for the local provider: namespaces,
 * mounts and helper process ready). Taking one binds it to the caller's identity; an empty
 * pool is reported as AB_NOTFOUND so the caller cold-creates instead.
 */
#ifndef AB_CORE_POOL_H
#define AB_CORE_POOL_H

#include <stdint.h>

#include "core/sandbox.h"

struct sbx_pool;

/* Start the pool and its refill thread. provider is borrowed and outlives the pool. */
ab_status sbx_pool_new(struct sbx_provider *provider, int64_t size, int64_t create_timeout_s,
                       struct sbx_pool **out, struct ab_err *err);

/* Stop the refill thread and destroy the warm sandboxes. NULL is a no-op. */
void sbx_pool_free(struct sbx_pool *pool);

/* Take a warm sandbox and bind it to info (whose name must be set). AB_NOTFOUND when the
 * pool is empty; AB_EXISTS when the name is taken. *out is the provider's handle. */
ab_status sbx_pool_take(struct sbx_pool *pool, const struct sbx_info *info, struct sbx_handle **out,
                        struct ab_err *err);

/* Fill supported, target, ready and acquired_warm. */
void sbx_pool_status(struct sbx_pool *pool, struct sbx_pool_status *st);

/* Block until the pool holds `size` ready sandboxes or deadline (ab_mono_ms) passes; true
 * when full. For tests and benchmarks. */
bool sbx_pool_wait_full(struct sbx_pool *pool, int64_t deadline_ms);

#endif
