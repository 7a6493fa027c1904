/*
 * Tests of the registry and the warm pool against an in-memory provider whose creates can
 * be slowed down or held at a gate, so races are exercised deliberately: concurrent
 * get-or-create, keys that must not wait for each other, deletes that wait for calls in
 * flight, TTLs on a test clock, rediscovery after a restart, warm acquisition and refill.
 */
#include "t.h"

#include <pthread.h>
#include <stdatomic.h>

#include "base/util.h"
#include "core/registry.h"

/* ------------------------------------------------------------------------------------------
 * the fake provider
 * ---------------------------------------------------------------------------------------- */

#define FAKE_MAX 64

struct fake {
    struct sbx_provider base;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct sbx_info stored[FAKE_MAX]; /* "on disk" */
    bool used[FAKE_MAX];
    int creates, anon_creates, attaches, destroys, releases, binds, updates;
    int live_handles;
    int create_delay_ms;
    const char *gate_name; /* creates of this name wait until gate_open */
    bool gate_anon;        /* anonymous creates wait until gate_open */
    bool gate_open;
    bool in_gate;
};

struct sbx_handle {
    struct fake *f;
    char *name; /* NULL while anonymous */
};

static struct fake *F(struct sbx_provider *p)
{
    return (struct fake *)p;
}

static int slot_of(struct fake *f, const char *name)
{
    for (int i = 0; i < FAKE_MAX; i++)
        if (f->used[i] && strcmp(f->stored[i].name, name) == 0)
            return i;
    return -1;
}

static void store(struct fake *f, const struct sbx_info *info)
{
    int i = slot_of(f, info->name);
    if (i < 0)
        for (i = 0; i < FAKE_MAX && f->used[i]; i++)
            ;
    T_ASSERT(i < FAKE_MAX);
    if (f->used[i])
        sbx_info_cleanup(&f->stored[i]);
    T_OK(sbx_info_copy(&f->stored[i], info));
    f->used[i] = true;
}

static struct sbx_handle *handle(struct fake *f, const char *name)
{
    struct sbx_handle *h = calloc(1, sizeof(*h));
    h->f = f;
    h->name = name ? ab_strdup(name) : NULL;
    f->live_handles++;
    return h;
}

static void handle_free(struct sbx_handle *h)
{
    h->f->live_handles--;
    free(h->name);
    free(h);
}

static ab_status fake_create(struct sbx_provider *p, const struct sbx_create_req *req,
                             struct sbx_handle **out, struct ab_err *err)
{
    struct fake *f = F(p);
    const char *name = req->info->name;
    pthread_mutex_lock(&f->lock);
    if (name)
        f->creates++;
    else
        f->anon_creates++;
    int delay = f->create_delay_ms;
    bool gated =
        (name && f->gate_name && strcmp(name, f->gate_name) == 0) || (!name && f->gate_anon);
    if (gated) {
        f->in_gate = true;
        pthread_cond_broadcast(&f->cond);
        while (!f->gate_open)
            pthread_cond_wait(&f->cond, &f->lock);
    }
    pthread_mutex_unlock(&f->lock);
    if (delay)
        usleep((useconds_t)delay * 1000);
    pthread_mutex_lock(&f->lock);
    if (name && slot_of(f, name) >= 0) {
        pthread_mutex_unlock(&f->lock);
        return ab_err_set(err, AB_EXISTS, "exists");
    }
    if (name)
        store(f, req->info);
    *out = handle(f, name);
    pthread_mutex_unlock(&f->lock);
    return AB_OK;
}

static ab_status fake_attach(struct sbx_provider *p, const char *name, struct sbx_handle **out,
                             struct sbx_info *info, struct ab_err *err)
{
    struct fake *f = F(p);
    pthread_mutex_lock(&f->lock);
    f->attaches++;
    int i = slot_of(f, name);
    if (i < 0) {
        pthread_mutex_unlock(&f->lock);
        return ab_err_set(err, AB_NOTFOUND, "no %s", name);
    }
    T_OK(sbx_info_copy(info, &f->stored[i]));
    *out = handle(f, name);
    pthread_mutex_unlock(&f->lock);
    return AB_OK;
}

static ab_status fake_destroy(struct sbx_provider *p, struct sbx_handle *h, struct ab_err *err)
{
    (void)err;
    struct fake *f = F(p);
    pthread_mutex_lock(&f->lock);
    f->destroys++;
    int i = h->name ? slot_of(f, h->name) : -1;
    if (i >= 0) {
        sbx_info_cleanup(&f->stored[i]);
        f->used[i] = false;
    }
    handle_free(h);
    pthread_mutex_unlock(&f->lock);
    return AB_OK;
}

static void fake_release(struct sbx_provider *p, struct sbx_handle *h)
{
    struct fake *f = F(p);
    pthread_mutex_lock(&f->lock);
    f->releases++;
    bool anon = !h->name;
    handle_free(h);
    pthread_mutex_unlock(&f->lock);
    (void)anon;
}

static int cmp_info(const void *a, const void *b)
{
    return strcmp(((const struct sbx_info *)a)->name, ((const struct sbx_info *)b)->name);
}

static ab_status fake_list(struct sbx_provider *p, const char *principal, const char *selector,
                           const char *cursor, size_t limit, struct sbx_list_page *page,
                           struct ab_err *err)
{
    struct fake *f = F(p);
    ab_status rc = sbx_selector_validate(selector, err);
    if (rc)
        return rc;
    memset(page, 0, sizeof(*page));
    limit = limit ? limit : 100;
    pthread_mutex_lock(&f->lock);
    struct sbx_info all[FAKE_MAX];
    size_t n = 0;
    for (int i = 0; i < FAKE_MAX; i++)
        if (f->used[i] && (!principal || strcmp(principal, f->stored[i].principal) == 0) &&
            sbx_selector_matches(selector, f->stored[i].labels) &&
            (!cursor || strcmp(f->stored[i].name, cursor) > 0))
            all[n++] = f->stored[i];
    qsort(all, n, sizeof(all[0]), cmp_info);
    page->items = calloc(limit, sizeof(struct sbx_info));
    for (size_t i = 0; i < n && i < limit; i++)
        T_OK(sbx_info_copy(&page->items[page->n++], &all[i]));
    if (n > limit)
        page->next_cursor = ab_strdup(all[limit - 1].name);
    pthread_mutex_unlock(&f->lock);
    return AB_OK;
}

static ab_status fake_status(struct sbx_provider *p, struct sbx_handle *h, json_t **out,
                             struct ab_err *err)
{
    (void)p;
    (void)h;
    (void)err;
    *out = json_pack("{s:s}", "state", "running");
    return AB_OK;
}

static ab_status fake_update_info(struct sbx_provider *p, struct sbx_handle *h,
                                  const struct sbx_info *info, struct ab_err *err)
{
    (void)h;
    (void)err;
    struct fake *f = F(p);
    pthread_mutex_lock(&f->lock);
    f->updates++;
    store(f, info);
    pthread_mutex_unlock(&f->lock);
    return AB_OK;
}

static ab_status fake_bind(struct sbx_provider *p, struct sbx_handle *h,
                           const struct sbx_info *info, struct ab_err *err)
{
    struct fake *f = F(p);
    pthread_mutex_lock(&f->lock);
    if (h->name || slot_of(f, info->name) >= 0) {
        pthread_mutex_unlock(&f->lock);
        return ab_err_set(err, AB_EXISTS, "bind: taken");
    }
    f->binds++;
    h->name = ab_strdup(info->name);
    store(f, info);
    pthread_mutex_unlock(&f->lock);
    return AB_OK;
}

static ab_status fake_unsupported(void)
{
    return AB_UNSUPPORTED;
}

static void fake_free(struct sbx_provider *p)
{
    struct fake *f = F(p);
    for (int i = 0; i < FAKE_MAX; i++)
        if (f->used[i])
            sbx_info_cleanup(&f->stored[i]);
    free(f);
}

static struct sbx_provider_ops fake_ops = {
    .kind = "fake",
    .create = fake_create,
    .attach = fake_attach,
    .destroy = fake_destroy,
    .release = fake_release,
    .list = fake_list,
    .status = fake_status,
    .update_info = fake_update_info,
    .exec = (void *)fake_unsupported,
    .read_file = (void *)fake_unsupported,
    .write_file = (void *)fake_unsupported,
    .list_dir = (void *)fake_unsupported,
    .stat = (void *)fake_unsupported,
    .bind = fake_bind,
    .free = fake_free,
};

static struct fake *fake_new(void)
{
    struct fake *f = calloc(1, sizeof(*f));
    f->base.ops = &fake_ops;
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    return f;
}

static void gate_open(struct fake *f)
{
    pthread_mutex_lock(&f->lock);
    f->gate_open = true;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static void gate_wait_entered(struct fake *f)
{
    pthread_mutex_lock(&f->lock);
    while (!f->in_gate)
        pthread_cond_wait(&f->cond, &f->lock);
    pthread_mutex_unlock(&f->lock);
}

static int64_t g_now = 1700000000000;

static int64_t test_clock(void)
{
    return g_now;
}

static struct sbx_registry *reg_new(struct fake *f, int64_t pool)
{
    struct sbx_registry_opts o = {.provider = &f->base,
                                  .idle_ttl_s = 3600,
                                  .pool_size = pool,
                                  .create_timeout_s = 10,
                                  .wall_ms = test_clock};
    struct sbx_registry *reg;
    struct ab_err err;
    ab_err_clear(&err);
    if (sbx_registry_new(&o, &reg, &err))
        T_FAIL("registry: %s", err.msg);
    return reg;
}

static struct sbx_ref *acq(struct sbx_registry *reg, const char *principal, const char *key)
{
    struct sbx_ref *ref;
    struct ab_err err;
    ab_err_clear(&err);
    if (sbx_registry_acquire(reg, principal, key, NULL, &ref, &err))
        T_FAIL("acquire %s/%s: %s", principal, key, err.msg);
    return ref;
}

/* ------------------------------------------------------------------------------------------
 * cases
 * ---------------------------------------------------------------------------------------- */

static void t_names(void)
{
    char *a = sbx_name_for("alice", "thread-1");
    char *b = sbx_name_for("alice", "thread-1");
    char *c = sbx_name_for("bob", "thread-1");
    char *d = sbx_name_for("", "thread-1");
    T_EQ_STR(a, b);
    T_ASSERT(strcmp(a, c) != 0 && strcmp(a, d) != 0);
    T_EQ_INT(strlen(a), 23);
    T_ASSERT(strncmp(a, "ab-", 3) == 0);
    for (const char *p = a + 3; *p; p++)
        T_ASSERT((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
    /* principal and key are separated: ("a\nb", "c") differs from ("a", "b\nc")? The
     * separator is a newline, which principals do not contain. */
    T_ASSERT(sbx_name_for("p", NULL) == NULL);
    free(a);
    free(b);
    free(c);
    free(d);
}

struct racer {
    struct sbx_registry *reg;
    struct sbx_ref *ref;
    const char *key;
    atomic_int *done;
};

static void *race_main(void *arg)
{
    struct racer *r = arg;
    r->ref = acq(r->reg, "p", r->key);
    if (r->done)
        atomic_fetch_add(r->done, 1);
    return NULL;
}

/* N concurrent first calls for one key create exactly one sandbox. */
static void t_concurrent_get_or_create(void)
{
    struct fake *f = fake_new();
    f->create_delay_ms = 100; /* keep the window wide open */
    struct sbx_registry *reg = reg_new(f, 0);
    enum { N = 16 };
    struct racer r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        r[i] = (struct racer){reg, NULL, "same-key", NULL};
        pthread_create(&t[i], NULL, race_main, &r[i]);
    }
    int created = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        created += sbx_ref_created(r[i].ref);
        T_ASSERT(sbx_ref_handle(r[i].ref) == sbx_ref_handle(r[0].ref));
        T_EQ_STR(sbx_ref_info(r[i].ref)->name, sbx_ref_info(r[0].ref)->name);
    }
    T_EQ_INT(created, 1);
    T_EQ_INT(f->creates, 1);
    for (int i = 0; i < N; i++)
        sbx_ref_release(r[i].ref);
    struct sbx_registry_stats st;
    sbx_registry_stats(reg, &st);
    T_EQ_INT(st.created, 1);
    T_EQ_INT(st.live, 1);
    sbx_registry_free(reg);
    T_EQ_INT(f->destroys, 0); /* shutdown releases, never destroys */
    T_EQ_INT(f->live_handles, 0);
    fake_free(&f->base);
}

/* A slow creation for one key never blocks another key. */
static void t_keys_do_not_wait(void)
{
    struct fake *f = fake_new();
    char *slow = sbx_name_for("p", "slow");
    f->gate_name = slow;
    struct sbx_registry *reg = reg_new(f, 0);
    atomic_int done = 0;
    struct racer r = {reg, NULL, "slow", &done};
    pthread_t t;
    pthread_create(&t, NULL, race_main, &r);
    gate_wait_entered(f); /* the slow create is in progress, holding nothing */
    struct sbx_ref *fast = acq(reg, "p", "fast");
    struct sbx_ref *fast2 = acq(reg, "q", "slow"); /* same key, other principal */
    T_EQ_INT(atomic_load(&done), 0);               /* still blocked */
    sbx_ref_release(fast);
    sbx_ref_release(fast2);
    gate_open(f);
    pthread_join(t, NULL);
    T_EQ_INT(atomic_load(&done), 1);
    sbx_ref_release(r.ref);
    sbx_registry_free(reg);
    free(slow);
    fake_free(&f->base);
}

static void t_principals_and_create(void)
{
    struct fake *f = fake_new();
    struct sbx_registry *reg = reg_new(f, 0);
    struct ab_err err;
    ab_err_clear(&err);
    struct sbx_ref *a = acq(reg, "alice", "k");
    char *name = ab_strdup(sbx_ref_info(a)->name);
    T_EQ_STR(sbx_ref_info(a)->principal, "alice");
    T_EQ_STR(sbx_ref_info(a)->thread_key, "k");
    sbx_ref_release(a);
    struct sbx_ref *x;
    /* bob can neither see alice's sandbox by name nor reach it with the same key */
    T_EQ_INT(sbx_registry_acquire_by_name(reg, "bob", name, &x, &err), AB_NOTFOUND);
    T_EQ_INT(sbx_registry_delete(reg, "bob", name, &err), AB_NOTFOUND);
    struct sbx_ref *b = acq(reg, "bob", "k");
    T_ASSERT(strcmp(sbx_ref_info(b)->name, name) != 0);
    sbx_ref_release(b);
    T_OK(sbx_registry_acquire_by_name(reg, "alice", name, &x, &err));
    T_ASSERT(!sbx_ref_created(x));
    sbx_ref_release(x);
    /* sandbox_create: a fresh sandbox per call without a key; a key may be used once */
    struct sbx_ref *c1, *c2;
    T_OK(sbx_registry_create(reg, "alice", NULL, NULL, &c1, &err));
    T_OK(sbx_registry_create(reg, "alice", NULL, NULL, &c2, &err));
    T_ASSERT(strcmp(sbx_ref_info(c1)->name, sbx_ref_info(c2)->name) != 0);
    T_ASSERT(sbx_ref_created(c1) && sbx_ref_created(c2));
    sbx_ref_release(c1);
    sbx_ref_release(c2);
    T_EQ_INT(sbx_registry_create(reg, "alice", "k", NULL, &x, &err), AB_EXISTS);
    T_EQ_INT(sbx_registry_acquire(reg, "alice", "", NULL, &x, &err), AB_INVAL);
    /* delete, then it is gone; the next get-or-create makes a new one */
    T_OK(sbx_registry_delete(reg, "alice", name, &err));
    T_EQ_INT(sbx_registry_acquire_by_name(reg, "alice", name, &x, &err), AB_NOTFOUND);
    T_EQ_INT(sbx_registry_delete(reg, "alice", name, &err), AB_NOTFOUND);
    a = acq(reg, "alice", "k");
    T_ASSERT(sbx_ref_created(a));
    sbx_ref_release(a);
    struct sbx_registry_stats st;
    sbx_registry_stats(reg, &st);
    T_EQ_INT(st.deleted, 1);
    T_EQ_INT(st.live, 4);
    sbx_registry_free(reg);
    free(name);
    fake_free(&f->base);
}

static void t_labels_and_list(void)
{
    struct fake *f = fake_new();
    struct sbx_registry *reg = reg_new(f, 0);
    struct ab_err err;
    ab_err_clear(&err);
    for (int i = 0; i < 7; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        json_t *labels = json_pack("{s:s,s:s}", "app", i < 4 ? "web" : "db", "idx", key);
        struct sbx_create_opts o = {.labels = labels, .ttl_s = -1, .idle_ttl_s = -1};
        struct sbx_ref *r;
        T_OK(sbx_registry_acquire(reg, "p", key, &o, &r, &err));
        T_EQ_STR(json_string_value(json_object_get(sbx_ref_info(r)->labels, "app")),
                 i < 4 ? "web" : "db");
        sbx_ref_release(r);
        json_decref(labels);
    }
    struct sbx_ref *other = acq(reg, "q", "k0");
    sbx_ref_release(other);
    json_t *bad = json_pack("{s:s}", "bad key!", "v");
    struct sbx_create_opts bo = {.labels = bad, .ttl_s = -1, .idle_ttl_s = -1};
    struct sbx_ref *r;
    T_EQ_INT(sbx_registry_acquire(reg, "p", "kbad", &bo, &r, &err), AB_INVAL);
    json_decref(bad);
    struct sbx_list_page page;
    T_OK(sbx_registry_list(reg, "p", "app=web", NULL, 0, &page, &err));
    T_EQ_INT(page.n, 4);
    sbx_list_page_cleanup(&page);
    T_OK(sbx_registry_list(reg, "p", "app!=web", NULL, 0, &page, &err));
    T_EQ_INT(page.n, 3);
    sbx_list_page_cleanup(&page);
    T_OK(sbx_registry_list(reg, NULL, NULL, NULL, 0, &page, &err));
    T_EQ_INT(page.n, 8);
    sbx_list_page_cleanup(&page);
    /* pagination: 3 + 3 + 1, no duplicates */
    char *cursor = NULL, seen[8][32];
    int n = 0, pages = 0;
    do {
        T_OK(sbx_registry_list(reg, "p", NULL, cursor, 3, &page, &err));
        free(cursor);
        cursor = ab_strdup(page.next_cursor);
        for (size_t i = 0; i < page.n; i++) {
            for (int j = 0; j < n; j++)
                T_ASSERT(strcmp(seen[j], page.items[i].name) != 0);
            snprintf(seen[n++], sizeof(seen[0]), "%s", page.items[i].name);
        }
        pages++;
        sbx_list_page_cleanup(&page);
    } while (cursor);
    T_EQ_INT(n, 7);
    T_EQ_INT(pages, 3);
    T_EQ_INT(sbx_registry_list(reg, "p", "=bad", NULL, 0, &page, &err), AB_INVAL);
    sbx_registry_free(reg);
    fake_free(&f->base);
}

/* Idle and absolute TTLs, on a test clock; sandboxes in use are never reaped. */
static void t_ttl_reaping(void)
{
    struct fake *f = fake_new();
    struct sbx_registry *reg = reg_new(f, 0); /* idle TTL 1 h by default */
    struct ab_err err;
    ab_err_clear(&err);
    struct sbx_ref *idle = acq(reg, "p", "idle");
    sbx_ref_release(idle);
    struct sbx_create_opts abs = {.ttl_s = 600, .idle_ttl_s = 0};
    struct sbx_ref *r;
    T_OK(sbx_registry_acquire(reg, "p", "absolute", &abs, &r, &err));
    T_EQ_INT(sbx_ref_info(r)->ttl_s, 600);
    sbx_ref_release(r);
    struct sbx_ref *held = acq(reg, "p", "held");
    T_EQ_INT(sbx_registry_reap(reg), 0);
    g_now += 599 * 1000;
    T_EQ_INT(sbx_registry_reap(reg), 0);
    /* "absolute" is used all the time, yet expires at 600 s */
    sbx_ref_release(acq(reg, "p", "absolute"));
    g_now += 2 * 1000;
    T_EQ_INT(sbx_registry_reap(reg), 1);
    T_EQ_INT(f->destroys, 1);
    /* idle: last used at t0, expires after an hour; held stays while held */
    g_now += 3600 * 1000;
    T_EQ_INT(sbx_registry_reap(reg), 1);
    T_EQ_INT(sbx_registry_reap(reg), 0);
    sbx_ref_release(held);
    g_now += 3601 * 1000;
    T_EQ_INT(sbx_registry_reap(reg), 1);
    struct sbx_registry_stats st;
    sbx_registry_stats(reg, &st);
    T_EQ_INT(st.reaped, 3);
    T_EQ_INT(st.live, 0);
    sbx_registry_free(reg);
    fake_free(&f->base);
}

/* The reaper thread does it on its own. */
static void t_reaper_thread(void)
{
    struct fake *f = fake_new();
    struct sbx_registry_opts o = {
        .provider = &f->base, .idle_ttl_s = 10, .reap_interval_s = 1, .wall_ms = test_clock};
    struct sbx_registry *reg;
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(sbx_registry_new(&o, &reg, &err));
    sbx_ref_release(acq(reg, "p", "k"));
    g_now += 11 * 1000;
    struct sbx_registry_stats st;
    int64_t deadline = ab_mono_ms() + 10000;
    do {
        usleep(50 * 1000);
        sbx_registry_stats(reg, &st);
    } while (st.reaped == 0 && ab_mono_ms() < deadline);
    T_EQ_INT(st.reaped, 1);
    T_EQ_INT(f->destroys, 1);
    sbx_registry_free(reg);
    fake_free(&f->base);
}

struct deleter {
    struct sbx_registry *reg;
    const char *name;
    atomic_int done;
    ab_status rc;
};

static void *delete_main(void *arg)
{
    struct deleter *d = arg;
    struct ab_err err;
    d->rc = sbx_registry_delete(d->reg, "p", d->name, &err);
    atomic_store(&d->done, 1);
    return NULL;
}

/* A delete waits for calls in flight; meanwhile the name is no longer handed out. */
static void t_delete_waits_for_refs(void)
{
    struct fake *f = fake_new();
    struct sbx_registry *reg = reg_new(f, 0);
    struct sbx_ref *held = acq(reg, "p", "k");
    char *name = ab_strdup(sbx_ref_info(held)->name);
    struct deleter d = {reg, name, 0, AB_OK};
    pthread_t t;
    pthread_create(&t, NULL, delete_main, &d);
    usleep(200 * 1000);
    T_EQ_INT(atomic_load(&d.done), 0); /* must not destroy under a live reference */
    T_EQ_INT(f->destroys, 0);
    struct sbx_ref *x;
    struct ab_err err;
    ab_err_clear(&err);
    T_EQ_INT(sbx_registry_acquire_by_name(reg, "p", name, &x, &err), AB_NOTFOUND);
    sbx_ref_release(held);
    pthread_join(t, NULL);
    T_OK(d.rc);
    T_EQ_INT(f->destroys, 1);
    sbx_registry_free(reg);
    free(name);
    fake_free(&f->base);
}

/* A sandbox reported broken is re-attached by the next acquisition. */
static void t_mark_broken(void)
{
    struct fake *f = fake_new();
    struct sbx_registry *reg = reg_new(f, 0);
    struct sbx_ref *r = acq(reg, "p", "k");
    struct sbx_handle *old = sbx_ref_handle(r);
    sbx_ref_mark_broken(r);
    sbx_ref_release(r);
    r = acq(reg, "p", "k");
    T_ASSERT(!sbx_ref_created(r));
    T_EQ_INT(f->releases, 1);
    T_EQ_INT(f->attaches, 1);
    T_EQ_INT(f->creates, 1);
    (void)old;
    sbx_ref_release(r);
    sbx_registry_free(reg);
    fake_free(&f->base);
}

/* After a restart the registry knows the provider's sandboxes again: same key, same
 * sandbox; TTLs keep running from the persisted times. */
static void t_rediscovery(void)
{
    struct fake *f = fake_new();
    struct sbx_registry *reg = reg_new(f, 0);
    struct sbx_ref *r = acq(reg, "p", "k");
    char *name = ab_strdup(sbx_ref_info(r)->name);
    sbx_ref_release(r);
    sbx_ref_release(acq(reg, "p", "old"));
    g_now += 120 * 1000; /* later than the persist interval */
    sbx_ref_release(acq(reg, "p", "k"));
    T_ASSERT(f->updates >= 1); /* last use persisted through update_info */
    sbx_registry_free(reg);
    reg = reg_new(f, 0);
    struct sbx_registry_stats st;
    sbx_registry_stats(reg, &st);
    T_EQ_INT(st.live, 2);
    r = acq(reg, "p", "k");
    T_ASSERT(!sbx_ref_created(r));
    T_EQ_STR(sbx_ref_info(r)->name, name);
    T_EQ_INT(f->creates, 2);
    sbx_ref_release(r);
    /* "old" was last used 120 s before "k": expire only it */
    g_now += 3600 * 1000 - 60 * 1000;
    T_EQ_INT(sbx_registry_reap(reg), 1);
    sbx_registry_stats(reg, &st);
    T_EQ_INT(st.live, 1);
    sbx_registry_free(reg);
    free(name);
    fake_free(&f->base);
}

/* The warm pool: acquisition takes a ready sandbox, refills in the background, and falls
 * back to a cold create when empty; each acquisition records which it was. */
static void t_warm_pool(void)
{
    struct fake *f = fake_new();
    struct sbx_registry *reg = reg_new(f, 2);
    T_ASSERT(sbx_registry_pool_wait_full(reg, ab_mono_ms() + 10000));
    struct sbx_pool_status ps;
    sbx_registry_pool_status(reg, &ps);
    T_ASSERT(ps.supported);
    T_EQ_INT(ps.target, 2);
    T_EQ_INT(ps.ready, 2);
    struct sbx_ref *w = acq(reg, "p", "warm");
    T_ASSERT(sbx_ref_info(w)->warm);
    T_ASSERT(sbx_ref_created(w));
    T_EQ_INT(f->binds, 1);
    T_EQ_INT(f->creates, 0);
    sbx_ref_release(w);
    T_ASSERT(sbx_registry_pool_wait_full(reg, ab_mono_ms() + 10000)); /* refilled */
    /* hold refills back, then take more than the pool has */
    pthread_mutex_lock(&f->lock);
    f->gate_anon = true;
    pthread_mutex_unlock(&f->lock);
    struct sbx_ref *a = acq(reg, "p", "a");
    struct sbx_ref *b = acq(reg, "p", "b");
    struct sbx_ref *c = acq(reg, "p", "c");
    T_ASSERT(sbx_ref_info(a)->warm && sbx_ref_info(b)->warm);
    T_ASSERT(!sbx_ref_info(c)->warm);
    T_EQ_INT(f->creates, 1);
    sbx_registry_pool_status(reg, &ps);
    T_EQ_INT(ps.acquired_warm, 3);
    T_EQ_INT(ps.acquired_cold, 1);
    T_EQ_INT(ps.ready, 0);
    sbx_ref_release(a);
    sbx_ref_release(b);
    sbx_ref_release(c);
    gate_open(f);
    T_ASSERT(sbx_registry_pool_wait_full(reg, ab_mono_ms() + 10000));
    /* the persisted metadata says warm too */
    struct sbx_list_page page;
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(sbx_registry_list(reg, "p", NULL, NULL, 0, &page, &err));
    T_EQ_INT(page.n, 4);
    int warm = 0;
    for (size_t i = 0; i < page.n; i++)
        warm += page.items[i].warm;
    T_EQ_INT(warm, 3);
    sbx_list_page_cleanup(&page);
    sbx_registry_free(reg); /* destroys the warm ones, releases the rest */
    T_EQ_INT(f->live_handles, 0);
    T_EQ_INT(f->destroys, 2);
    fake_free(&f->base);
}

static void t_key_resolution(void)
{
    const char *v;
    struct sbx_key_inputs in = {
        .sandbox_id = "ab-x", .meta_thread_id = "m", .header_thread_id = "h", .session_id = "s"};
    T_EQ_INT(sbx_resolve_key(&in, &v), SBX_KEY_SANDBOX_ID);
    T_EQ_STR(v, "ab-x");
    in.sandbox_id = "";
    T_EQ_INT(sbx_resolve_key(&in, &v), SBX_KEY_META);
    T_EQ_STR(v, "m");
    in.meta_thread_id = NULL;
    T_EQ_INT(sbx_resolve_key(&in, &v), SBX_KEY_HEADER);
    T_EQ_STR(v, "h");
    in.header_thread_id = NULL;
    T_EQ_INT(sbx_resolve_key(&in, &v), SBX_KEY_SESSION);
    T_EQ_STR(sbx_key_source_name(SBX_KEY_SESSION), "session");
    in.session_id = NULL;
    T_EQ_INT(sbx_resolve_key(&in, &v), SBX_KEY_NONE);
    T_ASSERT(v == NULL);

    struct fake *f = fake_new();
    struct sbx_registry *reg = reg_new(f, 0);
    struct ab_err err;
    ab_err_clear(&err);
    struct sbx_ref *r;
    enum sbx_key_source src;
    struct sbx_key_inputs call = {.meta_thread_id = "conv-1", .session_id = "sess-9"};
    T_OK(sbx_registry_acquire_for_call(reg, "p", &call, NULL, &r, &src, &err));
    T_EQ_INT(src, SBX_KEY_META);
    T_EQ_STR(sbx_ref_info(r)->thread_key, "conv-1");
    char *name = ab_strdup(sbx_ref_info(r)->name);
    sbx_ref_release(r);
    /* the same conversation through a new MCP session: same sandbox */
    struct sbx_key_inputs call2 = {.meta_thread_id = "conv-1", .session_id = "sess-10"};
    T_OK(sbx_registry_acquire_for_call(reg, "p", &call2, NULL, &r, &src, &err));
    T_EQ_STR(sbx_ref_info(r)->name, name);
    sbx_ref_release(r);
    /* an explicit handle wins, and is never created */
    struct sbx_key_inputs call3 = {.sandbox_id = name, .header_thread_id = "other"};
    T_OK(sbx_registry_acquire_for_call(reg, "p", &call3, NULL, &r, &src, &err));
    T_EQ_INT(src, SBX_KEY_SANDBOX_ID);
    sbx_ref_release(r);
    struct sbx_key_inputs call4 = {.sandbox_id = "ab-00000000000000000000"};
    T_EQ_INT(sbx_registry_acquire_for_call(reg, "p", &call4, NULL, &r, &src, &err), AB_NOTFOUND);
    struct sbx_key_inputs none = {0};
    T_EQ_INT(sbx_registry_acquire_for_call(reg, "p", &none, NULL, &r, &src, &err), AB_INVAL);
    T_EQ_INT(f->creates, 1);
    sbx_registry_free(reg);
    free(name);
    fake_free(&f->base);
}

/* Another server sharing the provider made the thread's sandbox after we started: the
 * create reports EXISTS and the registry attaches it instead. */
static void t_created_elsewhere(void)
{
    struct fake *f = fake_new();
    struct sbx_registry *reg = reg_new(f, 0);
    struct sbx_info info;
    sbx_info_init(&info);
    info.name = sbx_name_for("p", "k");
    info.principal = ab_strdup("p");
    info.thread_key = ab_strdup("k");
    info.labels = json_pack("{s:s}", "made", "elsewhere");
    pthread_mutex_lock(&f->lock);
    store(f, &info);
    pthread_mutex_unlock(&f->lock);
    struct sbx_ref *r = acq(reg, "p", "k");
    T_ASSERT(!sbx_ref_created(r));
    T_EQ_STR(json_string_value(json_object_get(sbx_ref_info(r)->labels, "made")), "elsewhere");
    T_EQ_INT(f->attaches, 1);
    sbx_ref_release(r);
    sbx_info_cleanup(&info);
    sbx_registry_free(reg);
    fake_free(&f->base);
}

static void t_max_per_principal(void)
{
    struct fake *f = fake_new();
    struct sbx_registry_opts o = {.provider = &f->base, .max_per_principal = 2};
    struct sbx_registry *reg;
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(sbx_registry_new(&o, &reg, &err));
    sbx_ref_release(acq(reg, "p", "1"));
    sbx_ref_release(acq(reg, "p", "2"));
    sbx_ref_release(acq(reg, "p", "2")); /* existing: fine */
    struct sbx_ref *r;
    T_EQ_INT(sbx_registry_acquire(reg, "p", "3", NULL, &r, &err), AB_LIMIT);
    sbx_ref_release(acq(reg, "q", "1")); /* other principals are not affected */
    sbx_registry_free(reg);
    fake_free(&f->base);
}

static const struct t_case cases[] = {
    T_CASE(t_names),
    T_CASE(t_concurrent_get_or_create),
    T_CASE(t_keys_do_not_wait),
    T_CASE(t_principals_and_create),
    T_CASE(t_labels_and_list),
    T_CASE(t_ttl_reaping),
    T_CASE(t_reaper_thread),
    T_CASE(t_delete_waits_for_refs),
    T_CASE(t_mark_broken),
    T_CASE(t_rediscovery),
    T_CASE(t_warm_pool),
    T_CASE(t_key_resolution),
    T_CASE(t_created_elsewhere),
    T_CASE(t_max_per_principal),
    {0},
};

T_MAIN(cases)
