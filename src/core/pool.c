/*
 * pool.c - warm pool: anonymous sandboxes created ahead of demand, bound on acquisition.
 *
 * One refill thread creates sandboxes one at a time until `size` are ready (one at a time
 * keeps the background work to one core's worth on a small machine); every take wakes it.
 * Failed creates back off exponentially (100 ms doubling to 30 s) so a broken host does not
 * spin. Taking a sandbox is a pop under a mutex plus the provider's bind(); a sandbox that
 * can no longer be bound (its helper died while it waited) is destroyed and the next one is
 * tried. The pool never holds its lock across a provider call.
 *
 * Rejected: refilling synchronously on take (would put a cold create on the caller's path,
 * which is what the pool exists to avoid).
 */
#include "core/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000

struct sbx_pool {
    struct sbx_provider *p;
    int64_t target;
    int64_t create_timeout_ms;
    pthread_mutex_t lock;
    pthread_cond_t cond;   /* wakes the refill thread */
    pthread_cond_t filled; /* wakes sbx_pool_wait_full */
    struct sbx_handle **ready;
    size_t nready;
    int creating;
    bool stopping;
    bool thread_started;
    pthread_t thread;
    uint64_t acquired_warm;
    int failures;
    int64_t retry_at; /* ab_mono_ms */
};

static void deadline_to_timespec(int64_t mono_deadline_ms, struct timespec *ts)
{
    /* the condition variables use CLOCK_MONOTONIC (pthread_condattr_setclock) */
    int64_t ms = mono_deadline_ms;
    ts->tv_sec = ms / 1000;
    ts->tv_nsec = (ms % 1000) * 1000000;
}

static void *refill_main(void *arg)
{
    struct sbx_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    while (!pool->stopping) {
        int64_t now = ab_mono_ms();
        if ((int64_t)pool->nready + pool->creating < pool->target && now >= pool->retry_at) {
            pool->creating++;
            pthread_mutex_unlock(&pool->lock);
            struct sbx_info info;
            sbx_info_init(&info);
            struct sbx_create_req req = {.info = &info,
                                         .deadline_ms = ab_mono_ms() + pool->create_timeout_ms};
            struct sbx_handle *h = NULL;
            struct ab_err err;
            ab_err_clear(&err);
            int64_t t0 = ab_mono_us();
            ab_status rc = pool->p->ops->create(pool->p, &req, &h, &err);
            int64_t took = ab_mono_us() - t0;
            pthread_mutex_lock(&pool->lock);
            pool->creating--;
            if (rc) {
                pool->failures++;
                int64_t backoff = BACKOFF_MIN_MS;
                for (int i = 1; i < pool->failures && backoff < BACKOFF_MAX_MS; i++)
                    backoff *= 2;
                backoff = AB_MIN(backoff, (int64_t)BACKOFF_MAX_MS);
                pool->retry_at = ab_mono_ms() + backoff;
                AB_LOG_WARN("pool.create_failed", "error=\"%s\" retry_in_ms=%lld", err.msg,
                            (long long)backoff);
                continue;
            }
            pool->failures = 0;
            pool->retry_at = 0;
            if (pool->stopping) {
                pthread_mutex_unlock(&pool->lock);
                pool->p->ops->destroy(pool->p, h, NULL);
                pthread_mutex_lock(&pool->lock);
                break;
            }
            pool->ready[pool->nready++] = h;
            AB_LOG_DEBUG("pool.ready", "ready=%zu create_us=%lld", pool->nready, (long long)took);
            pthread_cond_broadcast(&pool->filled);
            continue;
        }
        if (pool->retry_at > now && (int64_t)pool->nready + pool->creating < pool->target) {
            struct timespec ts;
            deadline_to_timespec(pool->retry_at, &ts);
            pthread_cond_timedwait(&pool->cond, &pool->lock, &ts);
        } else {
            pthread_cond_wait(&pool->cond, &pool->lock);
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

ab_status sbx_pool_new(struct sbx_provider *provider, int64_t size, int64_t create_timeout_s,
                       struct sbx_pool **out, struct ab_err *err)
{
    if (size <= 0 || size > 1000)
        return ab_err_set(err, AB_INVAL, "pool size must be 1..1000");
    if (!provider->ops->bind)
        return ab_err_set(err, AB_UNSUPPORTED, "the %s provider has no warm pool support",
                          provider->ops->kind);
    struct sbx_pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return AB_NOMEM;
    pool->ready = calloc((size_t)size, sizeof(*pool->ready));
    if (!pool->ready) {
        free(pool);
        return AB_NOMEM;
    }
    pool->p = provider;
    pool->target = size;
    pool->create_timeout_ms = create_timeout_s > 0 ? create_timeout_s * 1000 : 120000;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->cond, &ca);
    pthread_cond_init(&pool->filled, &ca);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&pool->thread, NULL, refill_main, pool);
    if (e) {
        sbx_pool_free(pool);
        return ab_err_sys(err, AB_IO, e, "cannot start the pool thread");
    }
    pool->thread_started = true;
    *out = pool;
    return AB_OK;
}

void sbx_pool_free(struct sbx_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    if (pool->thread_started)
        pthread_join(pool->thread, NULL);
    for (size_t i = 0; i < pool->nready; i++)
        pool->p->ops->destroy(pool->p, pool->ready[i], NULL);
    free(pool->ready);
    pthread_cond_destroy(&pool->cond);
    pthread_cond_destroy(&pool->filled);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

ab_status sbx_pool_take(struct sbx_pool *pool, const struct sbx_info *info, struct sbx_handle **out,
                        struct ab_err *err)
{
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        if (!pool->nready) {
            pthread_mutex_unlock(&pool->lock);
            return AB_NOTFOUND;
        }
        /* Oldest first: all are equivalent, and FIFO spreads the age evenly. */
        struct sbx_handle *h = pool->ready[0];
        memmove(pool->ready, pool->ready + 1, (pool->nready - 1) * sizeof(*pool->ready));
        pool->nready--;
        pthread_mutex_unlock(&pool->lock);
        struct ab_err sub;
        ab_err_clear(&sub);
        ab_status rc = pool->p->ops->bind(pool->p, h, info, &sub);
        /* Wake the refill only now: a create running alongside the bind would compete for
         * the CPU (and the filesystem) on the acquisition's critical path. */
        pthread_mutex_lock(&pool->lock);
        pthread_cond_signal(&pool->cond);
        if (!rc)
            pool->acquired_warm++;
        pthread_mutex_unlock(&pool->lock);
        if (!rc) {
            *out = h;
            return AB_OK;
        }
        if (rc == AB_EXISTS || rc == AB_INVAL || rc == AB_NOMEM) {
            /* The sandbox is fine; the name was the problem: keep it for the next one. */
            pthread_mutex_lock(&pool->lock);
            if ((int64_t)pool->nready < pool->target) {
                pool->ready[pool->nready++] = h;
                h = NULL;
            }
            pthread_mutex_unlock(&pool->lock);
            if (h)
                pool->p->ops->destroy(pool->p, h, NULL);
            if (err)
                *err = sub;
            return rc;
        }
        pool->p->ops->destroy(pool->p, h, NULL);
        AB_LOG_WARN("pool.bind_failed", "error=\"%s\"", sub.msg);
    }
}

void sbx_pool_status(struct sbx_pool *pool, struct sbx_pool_status *st)
{
    pthread_mutex_lock(&pool->lock);
    st->supported = true;
    st->target = pool->target;
    st->ready = (int64_t)pool->nready;
    st->acquired_warm = pool->acquired_warm;
    pthread_mutex_unlock(&pool->lock);
}

bool sbx_pool_wait_full(struct sbx_pool *pool, int64_t deadline_ms)
{
    pthread_mutex_lock(&pool->lock);
    while ((int64_t)pool->nready < pool->target && ab_mono_ms() < deadline_ms) {
        struct timespec ts;
        deadline_to_timespec(AB_MIN(deadline_ms, ab_mono_ms() + 100), &ts);
        pthread_cond_timedwait(&pool->filled, &pool->lock, &ts);
    }
    bool full = (int64_t)pool->nready >= pool->target;
    pthread_mutex_unlock(&pool->lock);
    return full;
}
