/*
 * registry.c - thread key -> sandbox, per principal (see registry.h for the contract).
 *
 * Data: a hash table of entries keyed by sandbox name (names are deterministic hashes of
 * principal and key, so the name is the key). One registry mutex protects the table and
 * every entry's fields; it is never held across a provider call. Each entry has its own
 * condition variable, so a thread waiting for one sandbox's creation, attach or deletion
 * waits only for that sandbox, and calls for other keys proceed.
 *
 * Entry states:
 *   CREATING   one thread creates it (from the warm pool or cold); others wait on it
 *   ATTACHING  one thread attaches it (after a restart, or after it was marked broken)
 *   READY      has a provider handle; refs counts calls in flight
 *   DETACHED   known (rediscovered from the provider at startup) but not attached yet
 *   DELETING   a delete or the reaper waits for refs to drain, then destroys it
 * An entry leaves the table when its creation fails or it is destroyed; threads still
 * waiting on it hold it alive (waiters) and the last one frees it.
 *
 * The registry persists nothing itself: metadata lives with the provider, last_used is
 * written back through update_info at most once a minute per sandbox (idle TTLs are hours;
 * a restart loses at most that minute of "last used").
 *
 * Rejected: a lock per entry plus a table lock (two lock orders to get right for little
 * gain: nothing slow ever runs under the registry lock).
 */
#include "core/registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "core/pool.h"

#define PERSIST_INTERVAL_MS 60000
#define KEY_MAX             1024
#define REDISCOVER_PAGE     1000

enum entry_state { E_CREATING, E_ATTACHING, E_READY, E_DETACHED, E_DELETING };

struct entry {
    char *name;
    char *principal;
    struct sbx_info info;
    struct sbx_handle *h;
    enum entry_state state;
    int refs;
    int waiters;
    bool removed;
    bool broken;
    int64_t persisted_used_ms;
    pthread_cond_t cond;
    struct entry *next;
};

struct sbx_ref {
    struct sbx_registry *reg;
    struct entry *e;
    struct sbx_info snapshot;
    bool created;
};

struct sbx_registry {
    struct sbx_registry_opts o;
    struct sbx_provider *p;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* any entry went idle or changed state (for free) */
    struct entry **buckets;
    size_t nbuckets, count;
    struct sbx_pool *pool;
    pthread_t reaper;
    bool reaper_started;
    pthread_cond_t reaper_cond;
    bool stopping;
    struct sbx_registry_stats stats;
    uint64_t acquired_cold;
};

/* ------------------------------------------------------------------------------------------
 * names
 * ---------------------------------------------------------------------------------------- */

static void key_hash(const char *principal, const char *key, char hex[65])
{
    struct ab_sha256 c;
    unsigned char d[32];
    ab_sha256_init(&c);
    ab_sha256_update(&c, principal ? principal : "", principal ? strlen(principal) : 0);
    ab_sha256_update(&c, "\n", 1);
    ab_sha256_update(&c, key, strlen(key));
    ab_sha256_final(&c, d);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = '\0';
}

char *sbx_name_for(const char *principal, const char *thread_key)
{
    if (!thread_key)
        return NULL;
    char hex[65];
    key_hash(principal, thread_key, hex);
    return ab_asprintf("ab-%.20s", hex);
}

/* ------------------------------------------------------------------------------------------
 * the table (reg->lock held)
 * ---------------------------------------------------------------------------------------- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct entry *table_find(struct sbx_registry *reg, const char *name)
{
    for (struct entry *e = reg->buckets[fnv1a(name) % reg->nbuckets]; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static void table_grow(struct sbx_registry *reg)
{
    size_t n = reg->nbuckets * 2;
    struct entry **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < reg->nbuckets; i++)
        for (struct entry *e = reg->buckets[i], *next; e; e = next) {
            next = e->next;
            size_t j = fnv1a(e->name) % n;
            e->next = b[j];
            b[j] = e;
        }
    free(reg->buckets);
    reg->buckets = b;
    reg->nbuckets = n;
}

static void table_insert(struct sbx_registry *reg, struct entry *e)
{
    if (reg->count >= reg->nbuckets)
        table_grow(reg);
    size_t i = fnv1a(e->name) % reg->nbuckets;
    e->next = reg->buckets[i];
    reg->buckets[i] = e;
    reg->count++;
}

static void entry_free(struct entry *e)
{
    free(e->name);
    free(e->principal);
    sbx_info_cleanup(&e->info);
    pthread_cond_destroy(&e->cond);
    free(e);
}

/* Take e out of the table and wake its waiters; the last waiter (or we) frees it. */
static void table_remove(struct sbx_registry *reg, struct entry *e)
{
    struct entry **pp = &reg->buckets[fnv1a(e->name) % reg->nbuckets];
    for (; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            reg->count--;
            break;
        }
    e->removed = true;
    pthread_cond_broadcast(&e->cond);
    pthread_cond_broadcast(&reg->changed);
    if (e->waiters == 0)
        entry_free(e);
}

static struct entry *entry_new(const char *name, const char *principal, enum entry_state st)
{
    struct entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->name = ab_strdup(name);
    e->principal = ab_strdup(principal ? principal : "");
    e->state = st;
    pthread_cond_init(&e->cond, NULL);
    sbx_info_init(&e->info);
    if (!e->name || !e->principal) {
        entry_free(e);
        return NULL;
    }
    return e;
}

/* Wait for e to change. Returns false when e was removed meanwhile (and maybe freed). */
static bool entry_wait(struct sbx_registry *reg, struct entry *e)
{
    e->waiters++;
    pthread_cond_wait(&e->cond, &reg->lock);
    e->waiters--;
    if (e->removed) {
        if (e->waiters == 0)
            entry_free(e);
        return false;
    }
    return true;
}

static void entry_set_state(struct sbx_registry *reg, struct entry *e, enum entry_state st)
{
    e->state = st;
    pthread_cond_broadcast(&e->cond);
    pthread_cond_broadcast(&reg->changed);
}

static int64_t now_ms(struct sbx_registry *reg)
{
    return reg->o.wall_ms ? reg->o.wall_ms() : ab_wall_ms();
}

static size_t count_principal(struct sbx_registry *reg, const char *principal)
{
    size_t n = 0;
    for (size_t i = 0; i < reg->nbuckets; i++)
        for (struct entry *e = reg->buckets[i]; e; e = e->next)
            if (strcmp(e->principal, principal) == 0)
                n++;
    return n;
}

/* ------------------------------------------------------------------------------------------
 * creating
 * ---------------------------------------------------------------------------------------- */

static ab_status build_info(struct sbx_registry *reg, const char *name, const char *principal,
                            const char *key, const struct sbx_create_opts *opts,
                            struct sbx_info *info, struct ab_err *err)
{
    sbx_info_init(info);
    const json_t *labels = opts ? opts->labels : NULL;
    ab_status rc = sbx_labels_validate(labels, err);
    if (rc)
        return rc;
    char hex[65];
    key_hash(principal, key, hex);
    hex[40] = '\0';
    info->name = ab_strdup(name);
    info->principal = ab_strdup(principal ? principal : "");
    info->thread_key = ab_strdup(key);
    info->thread_hash = ab_strdup(hex);
    info->labels = labels ? json_deep_copy(labels) : json_object();
    info->created_ms = info->last_used_ms = now_ms(reg);
    info->ttl_s = opts && opts->ttl_s >= 0 ? opts->ttl_s : reg->o.ttl_s;
    info->idle_ttl_s = opts && opts->idle_ttl_s >= 0 ? opts->idle_ttl_s : reg->o.idle_ttl_s;
    if (!info->name || !info->principal || !info->thread_key || !info->thread_hash ||
        !info->labels) {
        sbx_info_cleanup(info);
        return AB_NOMEM;
    }
    return AB_OK;
}

/* Create the sandbox for info: from the warm pool when one is ready, else cold. */
static ab_status create_sandbox(struct sbx_registry *reg, struct sbx_info *info,
                                struct sbx_handle **h, struct ab_err *err)
{
    if (reg->pool) {
        info->warm = true;
        ab_status rc = sbx_pool_take(reg->pool, info, h, err);
        if (rc != AB_NOTFOUND)
            return rc;
    }
    info->warm = false;
    pthread_mutex_lock(&reg->lock);
    reg->acquired_cold++;
    pthread_mutex_unlock(&reg->lock);
    struct sbx_create_req req = {
        .info = info,
        .deadline_ms =
            ab_mono_ms() + (reg->o.create_timeout_s > 0 ? reg->o.create_timeout_s : 120) * 1000,
    };
    return reg->p->ops->create(reg->p, &req, h, err);
}

/* ------------------------------------------------------------------------------------------
 * acquiring
 * ---------------------------------------------------------------------------------------- */

enum acquire_mode {
    GET_OR_CREATE, /* the thread's sandbox */
    GET_ONLY,      /* by name: never creates */
    CREATE_NEW,    /* sandbox_create: must not exist yet */
};

static ab_status make_ref(struct sbx_registry *reg, struct entry *e, bool created,
                          struct sbx_ref **out)
{
    struct sbx_ref *ref = calloc(1, sizeof(*ref));
    if (!ref || sbx_info_copy(&ref->snapshot, &e->info)) {
        free(ref);
        return AB_NOMEM;
    }
    ref->reg = reg;
    ref->e = e;
    ref->created = created;
    e->refs++;
    e->info.last_used_ms = now_ms(reg);
    *out = ref;
    return AB_OK;
}

/* Attach e (state ATTACHING, set by the caller; lock held on entry and exit). */
static ab_status attach_entry(struct sbx_registry *reg, struct entry *e, struct ab_err *err)
{
    pthread_mutex_unlock(&reg->lock);
    struct sbx_handle *h = NULL;
    struct sbx_info info;
    sbx_info_init(&info);
    ab_status rc = reg->p->ops->attach(reg->p, e->name, &h, &info, err);
    pthread_mutex_lock(&reg->lock);
    if (rc == AB_OK) {
        /* Our last_used may be newer than what was persisted. */
        int64_t used = AB_MAX(info.last_used_ms, e->info.last_used_ms);
        sbx_info_cleanup(&e->info);
        e->info = info;
        e->info.last_used_ms = used;
        e->h = h;
        e->broken = false;
        entry_set_state(reg, e, E_READY);
    } else {
        sbx_info_cleanup(&info);
        if (rc == AB_NOTFOUND) {
            table_remove(reg, e);
        } else {
            entry_set_state(reg, e, E_DETACHED);
        }
    }
    return rc;
}

static ab_status acquire(struct sbx_registry *reg, const char *principal, const char *key,
                         const char *name, enum acquire_mode mode,
                         const struct sbx_create_opts *opts, struct sbx_ref **out,
                         struct ab_err *err)
{
    ab_status rc;
    principal = principal ? principal : "";
    pthread_mutex_lock(&reg->lock);
    for (;;) {
        struct entry *e = table_find(reg, name);
        if (!e) {
            if (mode == GET_ONLY) {
                /* Not known here; the provider may still have it (another replica made
                 * it): insert a placeholder and attach. */
                e = entry_new(name, principal, E_ATTACHING);
                if (!e) {
                    rc = AB_NOMEM;
                    break;
                }
                table_insert(reg, e);
                struct ab_err sub;
                ab_err_clear(&sub);
                rc = attach_entry(reg, e, &sub);
                if (rc == AB_NOTFOUND) {
                    rc = ab_err_set(err, AB_NOTFOUND, "sandbox %s does not exist", name);
                    break;
                }
                if (rc) {
                    if (!e->info.name)
                        table_remove(reg, e); /* nothing learned: drop the placeholder */
                    if (err)
                        *err = sub;
                    break;
                }
                free(e->principal);
                e->principal = ab_strdup(e->info.principal ? e->info.principal : "");
                if (!e->principal)
                    e->principal = ab_strdup("?");
                continue; /* re-check the principal below */
            }
            if (reg->stopping) {
                rc = ab_err_set(err, AB_BUSY, "the server is shutting down");
                break;
            }
            if (reg->o.max_per_principal > 0 &&
                count_principal(reg, principal) >= (size_t)reg->o.max_per_principal) {
                rc = ab_err_set(err, AB_LIMIT,
                                "quota exceeded (quotas.max_sandboxes): this principal already "
                                "has %lld live sandboxes, the limit; delete one with "
                                "sandbox_delete first",
                                (long long)reg->o.max_per_principal);
                break;
            }
            struct sbx_info info;
            rc = build_info(reg, name, principal, key, opts, &info, err);
            if (rc)
                break;
            e = entry_new(name, principal, E_CREATING);
            if (!e) {
                sbx_info_cleanup(&info);
                rc = AB_NOMEM;
                break;
            }
            table_insert(reg, e);
            pthread_mutex_unlock(&reg->lock);
            struct sbx_handle *h = NULL;
            int64_t t0 = ab_mono_us();
            rc = create_sandbox(reg, &info, &h, err);
            int64_t took = ab_mono_us() - t0;
            pthread_mutex_lock(&reg->lock);
            if (rc == AB_EXISTS && mode == GET_OR_CREATE) {
                /* It exists outside this registry's knowledge: made meanwhile by another
                 * server sharing the provider (a replica, a second local server on the
                 * same state directory). Use it. */
                sbx_info_cleanup(&info);
                entry_set_state(reg, e, E_ATTACHING);
                rc = attach_entry(reg, e, err);
                if (rc == AB_NOTFOUND)
                    continue; /* and gone again: start over */
                if (rc) {
                    if (!e->removed && !e->info.name)
                        table_remove(reg, e);
                    break;
                }
                free(e->principal);
                e->principal = ab_strdup(e->info.principal ? e->info.principal : "");
                if (!e->principal)
                    e->principal = ab_strdup("?");
                continue; /* checks the principal, then takes a reference */
            }
            if (rc) {
                reg->stats.create_failed++;
                sbx_info_cleanup(&info);
                table_remove(reg, e);
                break;
            }
            reg->stats.created++;
            e->info = info;
            e->h = h;
            e->persisted_used_ms = info.last_used_ms;
            entry_set_state(reg, e, E_READY);
            AB_LOG_INFO("sandbox.created", "name=%s warm=%s us=%lld", name,
                        info.warm ? "true" : "false", (long long)took);
            rc = make_ref(reg, e, true, out);
            break;
        }
        if (strcmp(e->principal, principal) != 0) {
            /* Another principal's sandbox: indistinguishable from a missing one. */
            rc = ab_err_set(err, mode == CREATE_NEW ? AB_EXISTS : AB_NOTFOUND,
                            mode == CREATE_NEW ? "that sandbox name is taken"
                                               : "sandbox %s does not exist",
                            name);
            break;
        }
        if (e->state == E_CREATING || e->state == E_ATTACHING) {
            entry_wait(reg, e);
            continue;
        }
        if (e->state == E_DELETING) {
            if (mode == GET_ONLY) {
                rc = ab_err_set(err, AB_NOTFOUND, "sandbox %s is being deleted", name);
                break;
            }
            entry_wait(reg, e);
            continue;
        }
        if (mode == CREATE_NEW) {
            rc = ab_err_set(err, AB_EXISTS, "this thread already has sandbox %s", name);
            break;
        }
        if (e->state == E_READY && e->broken) {
            if (e->refs > 0) {
                entry_wait(reg, e);
                continue;
            }
            /* Drop the broken handle; the attach below gets a fresh one. */
            struct sbx_handle *old = e->h;
            e->h = NULL;
            entry_set_state(reg, e, E_ATTACHING);
            pthread_mutex_unlock(&reg->lock);
            reg->p->ops->release(reg->p, old);
            pthread_mutex_lock(&reg->lock);
            rc = attach_entry(reg, e, err);
            if (rc && rc != AB_NOTFOUND)
                break;
            continue;
        }
        if (e->state == E_DETACHED) {
            entry_set_state(reg, e, E_ATTACHING);
            rc = attach_entry(reg, e, err);
            if (rc == AB_NOTFOUND && mode == GET_OR_CREATE)
                continue; /* gone from the provider: create it afresh */
            if (rc)
                break;
            continue;
        }
        rc = make_ref(reg, e, false, out);
        break;
    }
    pthread_mutex_unlock(&reg->lock);
    return rc;
}

static ab_status check_key(const char *key, struct ab_err *err)
{
    if (!key || !*key)
        return ab_err_set(err, AB_INVAL, "the thread key is empty");
    if (strlen(key) > KEY_MAX)
        return ab_err_set(err, AB_INVAL, "the thread key is longer than %d bytes", KEY_MAX);
    return AB_OK;
}

ab_status sbx_registry_acquire(struct sbx_registry *reg, const char *principal,
                               const char *thread_key, const struct sbx_create_opts *opts,
                               struct sbx_ref **out, struct ab_err *err)
{
    ab_status rc = check_key(thread_key, err);
    if (rc)
        return rc;
    char *name = sbx_name_for(principal, thread_key);
    if (!name)
        return AB_NOMEM;
    rc = acquire(reg, principal, thread_key, name, GET_OR_CREATE, opts, out, err);
    free(name);
    return rc;
}

ab_status sbx_registry_acquire_by_name(struct sbx_registry *reg, const char *principal,
                                       const char *name, struct sbx_ref **out, struct ab_err *err)
{
    if (!name || !*name || strlen(name) > 63)
        return ab_err_set(err, AB_NOTFOUND, "sandbox %s does not exist", name ? name : "");
    return acquire(reg, principal, NULL, name, GET_ONLY, NULL, out, err);
}

ab_status sbx_registry_create(struct sbx_registry *reg, const char *principal,
                              const char *thread_key, const struct sbx_create_opts *opts,
                              struct sbx_ref **out, struct ab_err *err)
{
    char rnd[33];
    const char *key = thread_key;
    if (!key) {
        if (ab_random_hex(rnd, 16))
            return ab_err_set(err, AB_IO, "no randomness for a sandbox key");
        key = rnd;
    }
    ab_status rc = check_key(key, err);
    if (rc)
        return rc;
    char *name = sbx_name_for(principal, key);
    if (!name)
        return AB_NOMEM;
    rc = acquire(reg, principal, key, name, CREATE_NEW, opts, out, err);
    free(name);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * deleting and reaping
 * ---------------------------------------------------------------------------------------- */

/* Destroy e (state DELETING, refs 0; lock held on entry and exit) and remove it. */
static ab_status destroy_entry(struct sbx_registry *reg, struct entry *e, struct ab_err *err)
{
    struct sbx_handle *h = e->h;
    e->h = NULL;
    pthread_mutex_unlock(&reg->lock);
    ab_status rc = AB_OK;
    if (!h) {
        /* Detached: attach only to destroy (cheap for the local provider: no helper). */
        struct sbx_info info;
        sbx_info_init(&info);
        rc = reg->p->ops->attach(reg->p, e->name, &h, &info, err);
        sbx_info_cleanup(&info);
        if (rc == AB_NOTFOUND)
            rc = AB_OK;
    }
    if (h)
        rc = reg->p->ops->destroy(reg->p, h, err);
    pthread_mutex_lock(&reg->lock);
    table_remove(reg, e);
    return rc;
}

ab_status sbx_registry_delete(struct sbx_registry *reg, const char *principal, const char *name,
                              struct ab_err *err)
{
    principal = principal ? principal : "";
    ab_status rc;
    if (!name || !*name)
        return ab_err_set(err, AB_NOTFOUND, "sandbox %s does not exist", "");
    /* Make sure the registry knows it (another replica may have created it). */
    struct sbx_ref *probe = NULL;
    rc = acquire(reg, principal, NULL, name, GET_ONLY, NULL, &probe, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&reg->lock);
    struct entry *e = probe->e;
    if (--e->refs == 0) { /* the probe's own reference */
        pthread_cond_broadcast(&e->cond);
        pthread_cond_broadcast(&reg->changed);
    }
    sbx_info_cleanup(&probe->snapshot);
    free(probe);
    while (e->state != E_READY && e->state != E_DETACHED && !e->removed) {
        if (!entry_wait(reg, e)) {
            pthread_mutex_unlock(&reg->lock);
            return ab_err_set(err, AB_NOTFOUND, "sandbox %s does not exist", name);
        }
    }
    entry_set_state(reg, e, E_DELETING);
    while (e->refs > 0)
        entry_wait(reg, e); /* a DELETING entry is removed only by us */
    rc = destroy_entry(reg, e, err);
    reg->stats.deleted++;
    pthread_mutex_unlock(&reg->lock);
    AB_LOG_INFO("sandbox.deleted", "name=%s", name);
    return rc;
}

static bool expired(const struct entry *e, int64_t now)
{
    const struct sbx_info *i = &e->info;
    if (i->ttl_s > 0 && i->created_ms > 0 && now >= i->created_ms + i->ttl_s * 1000)
        return true;
    if (i->idle_ttl_s > 0 && i->last_used_ms > 0 && now >= i->last_used_ms + i->idle_ttl_s * 1000)
        return true;
    return false;
}

int sbx_registry_reap(struct sbx_registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    int64_t now = now_ms(reg);
    size_t n = 0, cap = 0;
    struct entry **victims = NULL;
    for (size_t b = 0; b < reg->nbuckets; b++)
        for (struct entry *e = reg->buckets[b]; e; e = e->next) {
            if ((e->state != E_READY && e->state != E_DETACHED) || e->refs > 0 || !expired(e, now))
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                struct entry **nv = realloc(victims, nc * sizeof(*nv));
                if (!nv)
                    goto collected;
                victims = nv;
                cap = nc;
            }
            entry_set_state(reg, e, E_DELETING);
            victims[n++] = e;
        }
collected:
    for (size_t i = 0; i < n; i++) {
        struct entry *e = victims[i];
        char *name = ab_strdup(e->name);
        struct ab_err err;
        ab_err_clear(&err);
        ab_status rc = destroy_entry(reg, e, &err);
        reg->stats.reaped++;
        if (rc)
            AB_LOG_WARN("sandbox.reap_failed", "name=%s error=\"%s\"", name ? name : "?", err.msg);
        else
            AB_LOG_INFO("sandbox.reaped", "name=%s", name ? name : "?");
        free(name);
    }
    pthread_mutex_unlock(&reg->lock);
    free(victims);
    return (int)n;
}

static void *reaper_main(void *arg)
{
    struct sbx_registry *reg = arg;
    pthread_mutex_lock(&reg->lock);
    while (!reg->stopping) {
        struct timespec ts;
        int64_t deadline = ab_mono_ms() + reg->o.reap_interval_s * 1000;
        ts.tv_sec = deadline / 1000;
        ts.tv_nsec = (deadline % 1000) * 1000000;
        pthread_cond_timedwait(&reg->reaper_cond, &reg->lock, &ts);
        if (reg->stopping)
            break;
        pthread_mutex_unlock(&reg->lock);
        sbx_registry_reap(reg);
        pthread_mutex_lock(&reg->lock);
    }
    pthread_mutex_unlock(&reg->lock);
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * references
 * ---------------------------------------------------------------------------------------- */

struct sbx_provider *sbx_ref_provider(const struct sbx_ref *ref)
{
    return ref->reg->p;
}

struct sbx_handle *sbx_ref_handle(const struct sbx_ref *ref)
{
    return ref->e->h;
}

const struct sbx_info *sbx_ref_info(const struct sbx_ref *ref)
{
    return &ref->snapshot;
}

bool sbx_ref_created(const struct sbx_ref *ref)
{
    return ref->created;
}

void sbx_ref_mark_broken(struct sbx_ref *ref)
{
    pthread_mutex_lock(&ref->reg->lock);
    ref->e->broken = true;
    pthread_mutex_unlock(&ref->reg->lock);
}

void sbx_ref_release(struct sbx_ref *ref)
{
    if (!ref)
        return;
    struct sbx_registry *reg = ref->reg;
    struct entry *e = ref->e;
    pthread_mutex_lock(&reg->lock);
    int64_t now = now_ms(reg);
    e->info.last_used_ms = now;
    bool persist = e->state == E_READY && !e->broken && e->h &&
                   now - e->persisted_used_ms >= PERSIST_INTERVAL_MS;
    struct sbx_info copy;
    if (persist && sbx_info_copy(&copy, &e->info) != AB_OK)
        persist = false;
    if (persist)
        e->persisted_used_ms = now;
    pthread_mutex_unlock(&reg->lock);
    if (persist) {
        /* Still holding our reference, so the handle cannot be destroyed under us. */
        struct ab_err err;
        ab_err_clear(&err);
        if (reg->p->ops->update_info(reg->p, e->h, &copy, &err))
            AB_LOG_WARN("sandbox.persist_failed", "name=%s error=\"%s\"", e->name, err.msg);
        sbx_info_cleanup(&copy);
    }
    pthread_mutex_lock(&reg->lock);
    if (--e->refs == 0) {
        pthread_cond_broadcast(&e->cond);
        pthread_cond_broadcast(&reg->changed);
    }
    pthread_mutex_unlock(&reg->lock);
    sbx_info_cleanup(&ref->snapshot);
    free(ref);
}

/* ------------------------------------------------------------------------------------------
 * key resolution
 * ---------------------------------------------------------------------------------------- */

enum sbx_key_source sbx_resolve_key(const struct sbx_key_inputs *in, const char **value)
{
    const char *v[] = {in->sandbox_id, in->meta_thread_id, in->header_thread_id, in->session_id};
    static const enum sbx_key_source src[] = {SBX_KEY_SANDBOX_ID, SBX_KEY_META, SBX_KEY_HEADER,
                                              SBX_KEY_SESSION};
    for (size_t i = 0; i < AB_ARRAY_LEN(v); i++)
        if (v[i] && *v[i]) {
            *value = v[i];
            return src[i];
        }
    *value = NULL;
    return SBX_KEY_NONE;
}

const char *sbx_key_source_name(enum sbx_key_source s)
{
    switch (s) {
    case SBX_KEY_SANDBOX_ID:
        return "sandbox_id";
    case SBX_KEY_META:
        return "meta";
    case SBX_KEY_HEADER:
        return "header";
    case SBX_KEY_SESSION:
        return "session";
    case SBX_KEY_NONE:
        break;
    }
    return "none";
}

ab_status sbx_registry_acquire_for_call(struct sbx_registry *reg, const char *principal,
                                        const struct sbx_key_inputs *in,
                                        const struct sbx_create_opts *opts, struct sbx_ref **out,
                                        enum sbx_key_source *src, struct ab_err *err)
{
    const char *value;
    enum sbx_key_source s = sbx_resolve_key(in, &value);
    if (src)
        *src = s;
    switch (s) {
    case SBX_KEY_SANDBOX_ID:
        return sbx_registry_acquire_by_name(reg, principal, value, out, err);
    case SBX_KEY_META:
    case SBX_KEY_HEADER:
    case SBX_KEY_SESSION:
        return sbx_registry_acquire(reg, principal, value, opts, out, err);
    case SBX_KEY_NONE:
        break;
    }
    return ab_err_set(err, AB_INVAL,
                      "no sandbox for this call: pass sandbox_id, or a thread id in _meta "
                      "(agentbox/thread_id) or the Agentbox-Thread-Id header");
}

/* ------------------------------------------------------------------------------------------
 * lifecycle, listing, status
 * ---------------------------------------------------------------------------------------- */

static ab_status rediscover(struct sbx_registry *reg, struct ab_err *err)
{
    char *cursor = NULL;
    ab_status rc = AB_OK;
    do {
        struct sbx_list_page page;
        rc = reg->p->ops->list(reg->p, NULL, NULL, cursor, REDISCOVER_PAGE, &page, err);
        free(cursor);
        cursor = NULL;
        if (rc)
            break;
        pthread_mutex_lock(&reg->lock);
        for (size_t i = 0; i < page.n && !rc; i++) {
            struct sbx_info *info = &page.items[i];
            if (!info->name || table_find(reg, info->name))
                continue;
            struct entry *e = entry_new(info->name, info->principal, E_DETACHED);
            if (!e) {
                rc = AB_NOMEM;
                break;
            }
            e->info = *info;
            memset(info, 0, sizeof(*info));
            e->persisted_used_ms = e->info.last_used_ms;
            table_insert(reg, e);
        }
        pthread_mutex_unlock(&reg->lock);
        cursor = page.next_cursor;
        page.next_cursor = NULL;
        sbx_list_page_cleanup(&page);
    } while (!rc && cursor);
    free(cursor);
    return rc;
}

ab_status sbx_registry_new(const struct sbx_registry_opts *opts, struct sbx_registry **out,
                           struct ab_err *err)
{
    if (!opts || !opts->provider)
        return ab_err_set(err, AB_INVAL, "registry: no provider");
    struct sbx_registry *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return AB_NOMEM;
    reg->o = *opts;
    reg->p = opts->provider;
    reg->nbuckets = 64;
    reg->buckets = calloc(reg->nbuckets, sizeof(*reg->buckets));
    pthread_mutex_init(&reg->lock, NULL);
    pthread_cond_init(&reg->changed, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&reg->reaper_cond, &ca);
    pthread_condattr_destroy(&ca);
    ab_status rc = reg->buckets ? rediscover(reg, err) : AB_NOMEM;
    if (!rc && opts->pool_size > 0) {
        if (reg->p->ops->bind)
            rc = sbx_pool_new(reg->p, opts->pool_size, opts->create_timeout_s, &reg->pool, err);
        else
            AB_LOG_INFO("pool.provider_managed", "provider=%s", reg->p->ops->kind);
    }
    if (!rc && opts->reap_interval_s > 0) {
        int e = pthread_create(&reg->reaper, NULL, reaper_main, reg);
        if (e)
            rc = ab_err_sys(err, AB_IO, e, "cannot start the reaper thread");
        else
            reg->reaper_started = true;
    }
    if (rc) {
        sbx_registry_free(reg);
        return rc;
    }
    AB_LOG_INFO("registry.ready", "provider=%s sandboxes=%zu pool=%lld", reg->p->ops->kind,
                reg->count, (long long)opts->pool_size);
    *out = reg;
    return AB_OK;
}

void sbx_registry_free(struct sbx_registry *reg)
{
    if (!reg)
        return;
    pthread_mutex_lock(&reg->lock);
    reg->stopping = true;
    pthread_cond_broadcast(&reg->reaper_cond);
    pthread_mutex_unlock(&reg->lock);
    if (reg->reaper_started)
        pthread_join(reg->reaper, NULL);
    sbx_pool_free(reg->pool);
    reg->pool = NULL;
    pthread_mutex_lock(&reg->lock);
    /* Wait for calls in flight and for creations, attaches and deletions to finish. */
    for (;;) {
        bool busy = false;
        for (size_t b = 0; b < reg->nbuckets && !busy; b++)
            for (struct entry *e = reg->buckets[b]; e && !busy; e = e->next)
                busy = e->refs > 0 || e->state == E_CREATING || e->state == E_ATTACHING ||
                       e->state == E_DELETING;
        if (!busy)
            break;
        pthread_cond_wait(&reg->changed, &reg->lock);
    }
    for (size_t b = 0; b < reg->nbuckets; b++) {
        for (struct entry *e = reg->buckets[b], *next; e; e = next) {
            next = e->next;
            if (e->h) {
                pthread_mutex_unlock(&reg->lock);
                reg->p->ops->release(reg->p, e->h);
                pthread_mutex_lock(&reg->lock);
            }
            entry_free(e);
        }
        reg->buckets[b] = NULL;
    }
    pthread_mutex_unlock(&reg->lock);
    free(reg->buckets);
    pthread_cond_destroy(&reg->changed);
    pthread_cond_destroy(&reg->reaper_cond);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

ab_status sbx_registry_list(struct sbx_registry *reg, const char *principal, const char *selector,
                            const char *cursor, size_t limit, struct sbx_list_page *page,
                            struct ab_err *err)
{
    ab_status rc = reg->p->ops->list(reg->p, principal, selector, cursor, limit, page, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&reg->lock);
    for (size_t i = 0; i < page->n; i++) {
        struct entry *e = page->items[i].name ? table_find(reg, page->items[i].name) : NULL;
        if (e && e->info.last_used_ms > page->items[i].last_used_ms)
            page->items[i].last_used_ms = e->info.last_used_ms;
    }
    pthread_mutex_unlock(&reg->lock);
    return AB_OK;
}

void sbx_registry_pool_status(struct sbx_registry *reg, struct sbx_pool_status *st)
{
    memset(st, 0, sizeof(*st));
    if (reg->pool)
        sbx_pool_status(reg->pool, st);
    else if (reg->p->ops->pool_status)
        reg->p->ops->pool_status(reg->p, st, NULL);
    pthread_mutex_lock(&reg->lock);
    if (!reg->p->ops->pool_status || reg->pool)
        st->acquired_cold = reg->acquired_cold;
    pthread_mutex_unlock(&reg->lock);
}

bool sbx_registry_pool_wait_full(struct sbx_registry *reg, int64_t deadline_ms)
{
    return reg->pool ? sbx_pool_wait_full(reg->pool, deadline_ms) : true;
}

void sbx_registry_stats(struct sbx_registry *reg, struct sbx_registry_stats *st)
{
    pthread_mutex_lock(&reg->lock);
    *st = reg->stats;
    st->live = reg->count;
    pthread_mutex_unlock(&reg->lock);
}
