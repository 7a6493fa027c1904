/*
 * test_k8s_provider.c - the agent-sandbox provider against the test cluster (API server +
 * emulated controller + router + agentbox-runtime pods, tests/k8s/): get-or-create from two
 * instances, reattach after a restart, warm adoption and cold fallback, every terminal claim
 * reason, TTLs, v1alpha1, each connection mode, and each injected fault ending in a clear
 * error or a transparent recovery. The router wants a bearer token in every case (as the
 * shipped sandbox-router does); the router-token cases check what happens without it, with a
 * wrong one, after a rotation, and that a pod IP or the API server never sees it.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "support/k8s_cluster.h"
#include "providers/k8s/k8s.h"
#include "providers/k8s/k8s_internal.h" /* white-box: handle fields */
#include "t.h"

static struct tk8s C;

static struct sbx_provider *provider(struct config *cfg)
{
    struct sbx_provider *p = NULL;
    struct ab_err err;
    ab_err_clear(&err);
    if (sbx_k8s_new(cfg, &p, &err))
        T_FAIL("sbx_k8s_new: %s", err.msg);
    return p;
}

static void info_for(struct sbx_info *info, const char *name)
{
    sbx_info_init(info);
    info->name = ab_strdup(name);
    free(info->principal);
    info->principal = ab_strdup("alice@example.com");
    info->thread_key = ab_strdup("thread-1");
    info->thread_hash = ab_strdup("0123456789abcdef0123456789abcdef");
    info->labels = json_object();
    json_object_set_new(info->labels, "team", json_string("a"));
    info->created_ms = info->last_used_ms = ab_wall_ms();
}

static ab_status create(struct sbx_provider *p, const char *name, struct sbx_handle **h,
                        struct ab_err *err)
{
    struct sbx_info info;
    info_for(&info, name);
    struct sbx_create_req req = {.info = &info};
    ab_err_clear(err);
    ab_status rc = p->ops->create(p, &req, h, err);
    sbx_info_cleanup(&info);
    return rc;
}

static void start(const char *const *args)
{
    tk8s_start(&C, args);
}

/* The shape of most cases: a cluster (extra cluster.mjs args), a provider on it (extra keys
 * as "key=value"), and maybe a sandbox. fx_end destroys the sandbox (or only releases its
 * handle) unless the case already did (f.h = NULL), and stops everything. */
struct fx {
    struct config cfg;
    struct sbx_provider *p;
    struct sbx_handle *h;
    struct ab_err err;
};

#define SETS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void fx_begin(struct fx *f, const char *const *cluster_args, const char *const *sets,
                     const char *sandbox)
{
    memset(f, 0, sizeof(*f));
    start(cluster_args);
    tk8s_config(&C, &f->cfg);
    for (const char *const *kv = sets; kv && *kv; kv++) {
        const char *eq = strchr(*kv, '=');
        char key[128];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - *kv), *kv);
        if (cfg_set(&f->cfg, key, eq + 1, &f->err))
            T_FAIL("%s: %s", *kv, f->err.msg);
    }
    f->p = provider(&f->cfg);
    if (sandbox && create(f->p, sandbox, &f->h, &f->err))
        T_FAIL("create %s: %s", sandbox, f->err.msg);
}

static void fx_end(struct fx *f, bool destroy)
{
    if (f->h && destroy)
        T_OK(f->p->ops->destroy(f->p, f->h, &f->err));
    else if (f->h)
        f->p->ops->release(f->p, f->h);
    f->p->ops->free(f->p);
    cfg_cleanup(&f->cfg);
    tk8s_stop(&C);
}

static json_t *state(void)
{
    return tk8s_http(&C, "GET", "/_admin/state", NULL, NULL);
}

static size_t nclaims(void)
{
    json_t *s = state();
    size_t n = json_array_size(json_object_get(s, "claims"));
    json_decref(s);
    return n;
}

/* Wait until the warm pool reports n ready Sandboxes (slow under sanitizers). */
static void wait_pool_ready(struct sbx_provider *p, int64_t n)
{
    struct sbx_pool_status ps = {0};
    struct ab_err err;
    for (int i = 0; i < 1500; i++) {
        if (p->ops->pool_status(p, &ps, &err) == AB_OK && ps.ready >= n)
            return;
        usleep(20000);
    }
    T_FAIL("the warm pool did not become ready (%lld of %lld)", (long long)ps.ready, (long long)n);
}

static char *run(struct sbx_provider *p, struct sbx_handle *h, const char *shell, int *code)
{
    struct sbx_exec_req req = {.shell = shell, .timeout_ms = 10000};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    struct ab_err err;
    ab_err_clear(&err);
    if (p->ops->exec(p, h, &req, &res, &err))
        T_FAIL("exec %s: %s", shell, err.msg);
    if (code)
        *code = res.exit_code;
    char *out = ab_strndup(buf_cstr(&res.output), res.output.len);
    sbx_exec_result_cleanup(&res);
    return out;
}

/* ---- lifecycle ---- */

static void t_create_exec_files_destroy(void)
{
    struct fx f;
    fx_begin(&f, NULL, NULL, NULL);
    T_OK(f.p->ops->check(f.p, &f.err));
    if (create(f.p, "ab-0001", &f.h, &f.err))
        T_FAIL("create: %s", f.err.msg);
    int code = -1;
    char *out = run(f.p, f.h, "echo hello; echo err >&2; exit 3", &code);
    T_EQ_STR(out, "hello\nerr\n");
    T_EQ_INT(code, 3);
    free(out);
    out = run(f.p, f.h, "pwd", &code);
    T_ASSERT(strstr(out, "/ab-0001") || strstr(out, "warm-pool-"));
    free(out);
    /* files under the workspace */
    T_OK(f.p->ops->write_file(f.p, f.h, "/workspace/dir/a.txt", "one\ntwo\nthree two\n", 18,
                              &f.err));
    struct buf b;
    buf_init(&b, 1 << 20);
    T_OK(f.p->ops->read_file(f.p, f.h, "/workspace/dir/a.txt", 1 << 20, &b, &f.err));
    T_EQ_STR(buf_cstr(&b), "one\ntwo\nthree two\n");
    buf_cleanup(&b);
    buf_init(&b, 4);
    T_EQ_INT(f.p->ops->read_file(f.p, f.h, "/workspace/dir/a.txt", 4, &b, &f.err), AB_LIMIT);
    T_EQ_INT(f.p->ops->read_file(f.p, f.h, "/workspace/dir", 100, &b, &f.err), AB_ISDIR);
    T_EQ_INT(f.p->ops->read_file(f.p, f.h, "/workspace/nope", 100, &b, &f.err), AB_NOTFOUND);
    buf_cleanup(&b);
    struct sbx_stat st;
    T_OK(f.p->ops->stat(f.p, f.h, "/workspace/dir/a.txt", &st, &f.err));
    T_EQ_INT(st.type, SBX_FT_FILE);
    T_EQ_INT(st.size, 18);
    T_EQ_INT(st.mode, 0644);
    T_EQ_INT(f.p->ops->stat(f.p, f.h, "/workspace/missing", &st, &f.err), AB_NOTFOUND);
    out = run(f.p, f.h,
              "ln -s a.txt dir/l; mkdir -p dir/sub/.hid; echo x > dir/sub/b.txt; "
              "echo two > dir/sub/.hid/c.txt; printf 'bin\\0two' > dir/bin",
              &code);
    free(out);
    T_OK(f.p->ops->stat(f.p, f.h, "/workspace/dir/l", &st, &f.err));
    T_EQ_INT(st.type, SBX_FT_SYMLINK);
    T_EQ_INT(st.target_type, SBX_FT_FILE);
    struct sbx_dirent *de = NULL;
    size_t n = 0;
    T_OK(f.p->ops->list_dir(f.p, f.h, "/workspace/dir", &de, &n, &f.err));
    T_EQ_INT(n, 4);
    sbx_dirents_free(de, n);
    T_EQ_INT(f.p->ops->list_dir(f.p, f.h, "/workspace/dir/a.txt", &de, &n, &f.err), AB_NOTDIR);
    /* walk: the same entries, in the same (breadth-first) order as core's fallback */
    struct sbx_walk_req wr = {.root = "/workspace/dir", .skip_dot_dirs = true};
    struct sbx_walk_entry *we = NULL, *fe = NULL;
    size_t nw = 0, nf = 0;
    bool tr = false;
    T_OK(f.p->ops->walk(f.p, f.h, &wr, &we, &nw, &tr, &f.err));
    struct sbx_provider_ops nowalk = *f.p->ops;
    nowalk.walk = NULL;
    const struct sbx_provider_ops *saved = f.p->ops;
    f.p->ops = &nowalk;
    T_OK(sbx_walk(f.p, f.h, &wr, &fe, &nf, &tr, &f.err));
    f.p->ops = saved;
    T_EQ_INT(nw, nf);
    for (size_t i = 0; i < nw; i++) {
        T_EQ_STR(we[i].relpath, fe[i].relpath);
        T_EQ_INT(we[i].st.type, fe[i].st.type);
        T_EQ_INT(we[i].st.size, fe[i].st.size);
    }
    sbx_walk_entries_free(we, nw);
    sbx_walk_entries_free(fe, nf);
    /* search: the same matches as the core fallback (binary skipped) */
    const char *paths[] = {"/workspace/dir/a.txt", "/workspace/dir/bin",
                           "/workspace/dir/sub/b.txt", "/workspace/dir/sub/.hid/c.txt"};
    struct sbx_search_req sr = {.paths = paths, .npaths = 4, .literal = "two", .literal_len = 3};
    struct sbx_match *m = NULL, *fm = NULL;
    size_t nm = 0, nfm = 0;
    T_OK(f.p->ops->search(f.p, f.h, &sr, &m, &nm, &tr, &f.err));
    struct sbx_provider_ops nosearch = *f.p->ops;
    nosearch.search = NULL;
    f.p->ops = &nosearch;
    T_OK(sbx_search(f.p, f.h, &sr, &fm, &nfm, &tr, &f.err));
    f.p->ops = saved;
    T_EQ_INT(nm, 3);
    T_EQ_INT(nm, nfm);
    for (size_t i = 0; i < nm; i++) {
        T_EQ_STR(m[i].path, fm[i].path);
        T_EQ_INT(m[i].line, fm[i].line);
        T_EQ_STR(m[i].text, fm[i].text);
    }
    sbx_matches_free(m, nm);
    sbx_matches_free(fm, nfm);
    /* status, destroy */
    json_t *js = NULL;
    T_OK(f.p->ops->status(f.p, f.h, &js, &f.err));
    T_EQ_STR(json_string_value(json_object_get(js, "state")), "running");
    json_decref(js);
    T_EQ_INT(nclaims(), 1);
    T_OK(f.p->ops->destroy(f.p, f.h, &f.err));
    f.h = NULL;
    T_EQ_INT(nclaims(), 0);
    fx_end(&f, false);
}

struct racer {
    struct sbx_provider *p;
    struct sbx_handle *h;
    ab_status rc;
    struct ab_err err;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    r->rc = create(r->p, "ab-race", &r->h, &r->err);
    return NULL;
}

static void t_two_servers_one_thread_one_claim(void)
{
    const char *args[] = {"--warm", "0", NULL};
    start(args);
    struct config cfg;
    tk8s_config(&C, &cfg);
    cfg_set(&cfg, "k8s.warm_pool", "cold-pool", NULL);
    struct racer a = {.p = provider(&cfg)}, b = {.p = provider(&cfg)};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race, &a);
    pthread_create(&tb, NULL, race, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    if (a.rc || b.rc)
        T_FAIL("create: %s / %s", a.err.msg, b.err.msg);
    T_EQ_STR(a.h->sandbox, b.h->sandbox);
    T_EQ_INT(nclaims(), 1);
    json_t *s = state();
    T_EQ_INT(json_array_size(json_object_get(s, "sandboxes")), 1);
    json_decref(s);
    a.p->ops->release(a.p, a.h);
    b.p->ops->release(b.p, b.h);
    a.p->ops->free(a.p);
    b.p->ops->free(b.p);
    cfg_cleanup(&cfg);
    tk8s_stop(&C);
}

static void t_reattach_after_restart(void)
{
    start(NULL);
    struct config cfg;
    tk8s_config(&C, &cfg);
    struct sbx_provider *p = provider(&cfg);
    struct ab_err err;
    struct sbx_handle *h = NULL;
    /* The reattach must report how the sandbox was first acquired (warm here). That needs a
     * Ready pool Sandbox when the claim is reconciled: without one the controller rightly
     * cold-starts the claim. The pool's runtimes start slowly under ASan, and this case once
     * created its claim before any was Ready, so the reattach saw a cold start ("info.warm"
     * failed, 8356cb8 added the wait). The wait is for a condition, and ready replicas cannot
     * drop again before the claim is reconciled (pool Sandboxes only leave the pool by
     * adoption); asserting the first acquisition makes a failure point at the right step. */
    wait_pool_ready(p, 2);
    if (create(p, "ab-keep", &h, &err))
        T_FAIL("create: %s", err.msg);
    T_ASSERT(h->warm);
    T_OK(p->ops->write_file(p, h, "/workspace/state.txt", "kept", 4, &err));
    char *sbx = ab_strdup(h->sandbox);
    p->ops->release(p, h);
    p->ops->free(p); /* the "server" goes away */
    struct sbx_provider *q = provider(&cfg);
    struct sbx_info info;
    T_EQ_INT(q->ops->attach(q, "ab-nope", &h, &info, &err), AB_NOTFOUND);
    if (q->ops->attach(q, "ab-keep", &h, &info, &err))
        T_FAIL("attach: %s", err.msg);
    T_EQ_STR(h->sandbox, sbx);
    T_EQ_STR(info.principal, "alice@example.com");
    T_EQ_STR(info.thread_key, "thread-1");
    T_EQ_STR(json_string_value(json_object_get(info.labels, "team")), "a");
    T_ASSERT(json_object_get(info.labels, "agentbox.dev/managed-by") == NULL);
    T_ASSERT(info.warm);
    struct buf b;
    buf_init(&b, 100);
    T_OK(q->ops->read_file(q, h, "/workspace/state.txt", 100, &b, &err));
    T_EQ_STR(buf_cstr(&b), "kept");
    buf_cleanup(&b);
    sbx_info_cleanup(&info);
    /* create again for the same name (another replica after a restart): reattaches */
    struct sbx_handle *h2 = NULL;
    if (create(q, "ab-keep", &h2, &err))
        T_FAIL("create again: %s", err.msg);
    T_EQ_STR(h2->sandbox, sbx);
    T_EQ_INT(nclaims(), 1);
    q->ops->release(q, h2);
    q->ops->release(q, h);
    q->ops->free(q);
    free(sbx);
    cfg_cleanup(&cfg);
    tk8s_stop(&C);
}

static void t_warm_adoption_and_cold_fallback(void)
{
    struct fx f;
    fx_begin(&f, NULL, NULL, NULL);
    struct sbx_pool_status ps;
    wait_pool_ready(f.p, 2);
    T_OK(f.p->ops->pool_status(f.p, &ps, &f.err));
    T_ASSERT(ps.supported);
    T_EQ_INT(ps.target, 2);
    T_EQ_INT(ps.ready, 2);
    if (create(f.p, "ab-warm", &f.h, &f.err))
        T_FAIL("create: %s", f.err.msg);
    T_ASSERT(f.h->warm);
    T_ASSERT(f.h->info.warm);
    T_ASSERT(strcmp(f.h->sandbox, "ab-warm") != 0);
    T_OK(f.p->ops->pool_status(f.p, &ps, &f.err));
    T_EQ_INT(ps.acquired_warm, 1);
    /* an empty pool: cold start from the template */
    tk8s_fault(&C, "{}");
    json_decref(tk8s_http(&C, "PATCH",
                          "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/"
                          "sandboxwarmpools/warm-pool",
                          "{\"spec\":{\"replicas\":0}}", NULL));
    for (int i = 0; i < 500; i++) {
        T_OK(f.p->ops->pool_status(f.p, &ps, &f.err));
        if (ps.ready == 0 && ps.target == 0)
            break;
        usleep(20000);
    }
    struct sbx_handle *c = NULL;
    if (create(f.p, "ab-cold", &c, &f.err))
        T_FAIL("create cold: %s", f.err.msg);
    T_ASSERT(!c->warm);
    T_EQ_STR(c->sandbox, "ab-cold");
    T_OK(f.p->ops->pool_status(f.p, &ps, &f.err));
    T_EQ_INT(ps.acquired_cold, 1);
    T_OK(f.p->ops->destroy(f.p, c, &f.err));
    fx_end(&f, true);
}

static void t_terminal_reasons_are_clear_and_cleaned_up(void)
{
    struct fx f;
    fx_begin(&f, NULL, NULL, NULL);
    static const char *reasons[] = {"TemplateNotFound", "WarmPoolNotFound", "InvalidMetadata",
                                    "EnvVarsInjectionRejected", "VolumeClaimTemplatesError",
                                    "ClaimExpired", "SandboxExpired", NULL};
    for (int i = 0; reasons[i]; i++) {
        char fault[256];
        snprintf(fault, sizeof(fault),
                 "{\"claimReason\":{\"reason\":\"%s\",\"message\":\"m%d\",\"count\":1}}",
                 reasons[i], i);
        tk8s_fault(&C, fault);
        T_EQ_INT(create(f.p, "ab-bad", &f.h, &f.err), AB_SANDBOX);
        if (!strstr(f.err.msg, reasons[i]) || !strstr(f.err.msg, "ab-bad"))
            T_FAIL("error does not name %s: %s", reasons[i], f.err.msg);
        T_EQ_INT(nclaims(), 0);
    }
    /* a real missing pool, not injected */
    cfg_set(&f.cfg, "k8s.warm_pool", "no-such-pool", NULL);
    struct sbx_provider *q = provider(&f.cfg);
    T_EQ_INT(create(q, "ab-bad2", &f.h, &f.err), AB_SANDBOX);
    T_ASSERT(strstr(f.err.msg, "WarmPoolNotFound"));
    T_ASSERT(strstr(f.err.msg, "SandboxWarmPool \"no-such-pool\" not found"));
    T_EQ_INT(nclaims(), 0);
    q->ops->free(q);
    fx_end(&f, false);
}

static void t_ttls(void)
{
    struct fx f;
    fx_begin(&f, NULL, NULL, NULL);
    struct sbx_info info;
    info_for(&info, "ab-ttl");
    info.ttl_s = 2;
    info.idle_ttl_s = 600;
    struct sbx_create_req req = {.info = &info};
    if (f.p->ops->create(f.p, &req, &f.h, &f.err))
        T_FAIL("create: %s", f.err.msg);
    json_t *claim = tk8s_http(&C, "GET",
                              "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/"
                              "sandboxclaims/ab-ttl",
                              NULL, NULL);
    json_t *lc = json_object_get(json_object_get(claim, "spec"), "lifecycle");
    T_EQ_STR(json_string_value(json_object_get(lc, "shutdownPolicy")), "Delete");
    int64_t when = 0;
    T_ASSERT(ab_parse_time(json_string_value(json_object_get(lc, "shutdownTime")), &when));
    T_ASSERT(when >= info.created_ms + 1000 && when <= info.created_ms + 3000);
    json_decref(claim);
    /* idle TTL: last use is recorded on the claim, visible to any replica's list */
    struct sbx_info upd;
    sbx_info_copy(&upd, &info);
    upd.last_used_ms = info.created_ms + 12345;
    T_OK(f.p->ops->update_info(f.p, f.h, &upd, &f.err));
    struct sbx_list_page pg;
    T_OK(f.p->ops->list(f.p, "alice@example.com", NULL, NULL, 0, &pg, &f.err));
    T_EQ_INT(pg.n, 1);
    T_EQ_INT(pg.items[0].last_used_ms, info.created_ms + 12345);
    T_EQ_INT(pg.items[0].idle_ttl_s, 600);
    T_EQ_INT(pg.items[0].ttl_s, 2);
    sbx_list_page_cleanup(&pg);
    /* the controller enforces the absolute TTL even without agentbox */
    f.p->ops->release(f.p, f.h);
    f.h = NULL;
    for (int i = 0; i < 400 && nclaims(); i++)
        usleep(20000);
    T_EQ_INT(nclaims(), 0);
    struct sbx_info out;
    T_EQ_INT(f.p->ops->attach(f.p, "ab-ttl", &f.h, &out, &f.err), AB_NOTFOUND);
    sbx_info_cleanup(&upd);
    sbx_info_cleanup(&info);
    fx_end(&f, false);
}

static void t_list_labels_pagination(void)
{
    struct fx f;
    fx_begin(&f, NULL, SETS("k8s.warm_pool=cold-pool"), NULL);
    struct sbx_handle *h[3];
    const char *names[] = {"ab-l1", "ab-l2", "ab-l3"};
    for (int i = 0; i < 3; i++)
        if (create(f.p, names[i], &h[i], &f.err))
            T_FAIL("create: %s", f.err.msg);
    struct sbx_list_page pg;
    T_OK(f.p->ops->list(f.p, "alice@example.com", "team=a", NULL, 2, &pg, &f.err));
    T_EQ_INT(pg.n, 2);
    T_ASSERT(pg.next_cursor);
    char *cur = ab_strdup(pg.next_cursor);
    sbx_list_page_cleanup(&pg);
    T_OK(f.p->ops->list(f.p, "alice@example.com", "team=a", cur, 2, &pg, &f.err));
    T_EQ_INT(pg.n, 1);
    T_ASSERT(!pg.next_cursor);
    sbx_list_page_cleanup(&pg);
    free(cur);
    T_OK(f.p->ops->list(f.p, "bob", NULL, NULL, 0, &pg, &f.err));
    T_EQ_INT(pg.n, 0);
    sbx_list_page_cleanup(&pg);
    T_OK(f.p->ops->list(f.p, NULL, "team!=a", NULL, 0, &pg, &f.err));
    T_EQ_INT(pg.n, 0);
    sbx_list_page_cleanup(&pg);
    T_EQ_INT(f.p->ops->list(f.p, NULL, "bad key=", NULL, 0, &pg, &f.err), AB_INVAL);
    for (int i = 0; i < 3; i++)
        T_OK(f.p->ops->destroy(f.p, h[i], &f.err));
    fx_end(&f, false);
}

static void t_v1alpha1_cluster(void)
{
    const char *args[] = {"--versions", "v1alpha1", NULL};
    struct fx f;
    fx_begin(&f, args, NULL, NULL);
    T_OK(f.p->ops->check(f.p, &f.err));
    wait_pool_ready(f.p, 2);
    if (create(f.p, "ab-alpha", &f.h, &f.err))
        T_FAIL("create: %s", f.err.msg);
    json_t *claim = tk8s_http(&C, "GET",
                              "/apis/extensions.agents.x-k8s.io/v1alpha1/namespaces/default/"
                              "sandboxclaims/ab-alpha",
                              NULL, NULL);
    json_t *spec = json_object_get(claim, "spec");
    T_EQ_STR(json_string_value(json_object_get(json_object_get(spec, "sandboxTemplateRef"), "name")),
             tk8s_str(&C, "template"));
    T_EQ_STR(json_string_value(json_object_get(spec, "warmpool")), "warm-pool");
    T_ASSERT(!json_object_get(spec, "warmPoolRef"));
    json_decref(claim);
    T_ASSERT(f.h->warm);
    char *out = run(f.p, f.h, "echo alpha", NULL);
    T_EQ_STR(out, "alpha\n");
    free(out);
    fx_end(&f, true);
}

static void t_check_without_crds(void)
{
    const char *args[] = {"--no-crds", NULL};
    struct fx f;
    fx_begin(&f, args, NULL, NULL);
    T_EQ_INT(f.p->ops->check(f.p, &f.err), AB_UNSUPPORTED);
    T_ASSERT(strstr(f.err.msg, "agent-sandbox is not installed"));
    fx_end(&f, false);
}

/* ---- connection modes ---- */

static void exec_roundtrip(struct config *cfg)
{
    struct sbx_provider *p = provider(cfg);
    struct ab_err err;
    struct sbx_handle *h = NULL;
    if (create(p, "ab-mode", &h, &err))
        T_FAIL("create: %s", err.msg);
    char *out = run(p, h, "echo via-mode", NULL);
    T_EQ_STR(out, "via-mode\n");
    free(out);
    T_OK(p->ops->write_file(p, h, "/workspace/m.txt", "m", 1, &err));
    T_OK(p->ops->destroy(p, h, &err));
    p->ops->free(p);
}

static void t_mode_in_cluster(void)
{
    start(NULL);
    struct config cfg;
    tk8s_config(&C, &cfg);
    cfg_set(&cfg, "k8s.connection", "in-cluster", NULL);
    exec_roundtrip(&cfg);
    json_t *rr = tk8s_http(&C, "GET", "/_admin/router-requests", NULL, NULL);
    T_EQ_INT(json_array_size(rr), 0); /* straight to the pod IP */
    json_decref(rr);
    cfg_cleanup(&cfg);
    tk8s_stop(&C);
}

static void t_mode_gateway(void)
{
    start(NULL);
    struct config cfg;
    tk8s_config(&C, &cfg);
    char port[16];
    snprintf(port, sizeof(port), "%lld",
             (long long)json_integer_value(json_object_get(C.info, "routerPort")));
    cfg_set(&cfg, "k8s.connection", "gateway", NULL);
    cfg_set(&cfg, "k8s.gateway_name", "sandbox-gateway", NULL);
    cfg_set(&cfg, "k8s.gateway_port", port, NULL);
    exec_roundtrip(&cfg);
    json_t *rr = tk8s_http(&C, "GET", "/_admin/router-requests", NULL, NULL);
    T_ASSERT(json_array_size(rr) > 0);
    json_t *hdr = json_object_get(json_array_get(rr, 0), "headers");
    T_EQ_STR(json_string_value(json_object_get(hdr, "x-sandbox-namespace")), "default");
    T_EQ_STR(json_string_value(json_object_get(hdr, "x-sandbox-port")), "8888");
    T_ASSERT(json_object_get(hdr, "x-sandbox-pod-ip"));
    T_ASSERT(json_object_get(hdr, "x-sandbox-id"));
    char bearer[100];
    snprintf(bearer, sizeof(bearer), "Bearer %s", tk8s_str(&C, "routerToken"));
    T_EQ_STR(json_string_value(json_object_get(hdr, "authorization")), bearer);
    json_decref(rr);
    cfg_cleanup(&cfg);
    tk8s_stop(&C);
}

static void t_mode_direct_without_pod_ip(void)
{
    struct fx f;
    fx_begin(&f, NULL, SETS("k8s.send_pod_ip=false"), "ab-dns");
    /* a warm-pool Sandbox has no Service: a DNS-resolving router cannot reach it */
    struct sbx_exec_req req = {.shell = "true"};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    T_EQ_INT(f.p->ops->exec(f.p, f.h, &req, &res, &f.err), AB_SANDBOX);
    T_ASSERT(strstr(f.err.msg, "Could not connect to the backend sandbox"));
    T_ASSERT(strstr(f.err.msg, "HTTP 502"));
    sbx_exec_result_cleanup(&res);
    fx_end(&f, false);
}

static void t_mode_tunnel_with_fake_kubectl(void)
{
    start(NULL);
    struct config cfg;
    tk8s_config(&C, &cfg);
    char kubectl[1100], target[128], pidfile[300], log[300];
    snprintf(kubectl, sizeof(kubectl), "%s/fake-kubectl/kubectl", tk8s_source_dir());
    snprintf(target, sizeof(target), "127.0.0.1:%lld",
             (long long)json_integer_value(json_object_get(C.info, "routerPort")));
    snprintf(pidfile, sizeof(pidfile), "%s/kubectl.pids", C.dir);
    snprintf(log, sizeof(log), "%s/kubectl.log", C.dir);
    setenv("FAKE_KUBECTL_TARGET", target, 1);
    setenv("FAKE_KUBECTL_PIDFILE", pidfile, 1);
    setenv("FAKE_KUBECTL_LOG", log, 1);
    cfg_set(&cfg, "k8s.connection", "tunnel", NULL);
    cfg_set(&cfg, "k8s.kubectl", kubectl, NULL);
    struct sbx_provider *p = provider(&cfg);
    struct ab_err err;
    struct sbx_handle *h = NULL;
    if (create(p, "ab-tun", &h, &err))
        T_FAIL("create: %s", err.msg);
    char *out = run(p, h, "echo tunnel", NULL);
    T_EQ_STR(out, "tunnel\n");
    free(out);
    /* the exact kubectl invocation */
    FILE *f = fopen(log, "r");
    char line[512] = "";
    T_ASSERT(f && fgets(line, sizeof(line), f));
    fclose(f);
    T_ASSERT(strstr(line, "[\"port-forward\",\"svc/sandbox-router-svc\","));
    T_ASSERT(strstr(line, ":8080\",\"-n\",\"agent-sandbox-system\"]"));
    /* through the tunnel to the router, with the router's token */
    json_t *rr = tk8s_http(&C, "GET", "/_admin/router-requests", NULL, NULL);
    char bearer[100];
    snprintf(bearer, sizeof(bearer), "Bearer %s", tk8s_str(&C, "routerToken"));
    T_EQ_STR(json_string_value(json_object_get(
                 json_object_get(json_array_get(rr, json_array_size(rr) - 1), "headers"),
                 "authorization")),
             bearer);
    json_decref(rr);
    /* the tunnel dies: the next call restarts it */
    f = fopen(pidfile, "r");
    int pid = 0;
    T_ASSERT(f && fscanf(f, "%d", &pid) == 1);
    fclose(f);
    kill(pid, SIGKILL);
    usleep(100000);
    out = run(p, h, "echo again", NULL);
    T_EQ_STR(out, "again\n");
    free(out);
    /* ... through a new kubectl (the pid file gains a line), which free() stops and reaps */
    f = fopen(pidfile, "r");
    int first = 0, last = 0, n = 0;
    T_ASSERT(f != NULL);
    for (int v; fscanf(f, "%d", &v) == 1; n++)
        last = n == 0 ? (first = v) : v;
    fclose(f);
    T_EQ_INT(first, pid);
    T_ASSERT(n >= 2 && last != pid);
    T_OK(p->ops->destroy(p, h, &err));
    p->ops->free(p); /* stops the tunnel */
    T_ASSERT(kill(pid, 0) != 0);
    for (int i = 0; kill(last, 0) == 0 && i < 100; i++)
        usleep(50000);
    T_ASSERT(kill(last, 0) != 0); /* gone and reaped: a zombie would still answer kill(0) */
    cfg_cleanup(&cfg);
    tk8s_stop(&C);
}

static void t_mode_tunnel_kubectl_fails(void)
{
    start(NULL);
    struct config cfg;
    tk8s_config(&C, &cfg);
    char kubectl[1100];
    snprintf(kubectl, sizeof(kubectl), "%s/fake-kubectl/kubectl", tk8s_source_dir());
    setenv("FAKE_KUBECTL_FAIL", "1", 1);
    setenv("FAKE_KUBECTL_TARGET", "127.0.0.1:1", 1);
    cfg_set(&cfg, "k8s.connection", "tunnel", NULL);
    cfg_set(&cfg, "k8s.kubectl", kubectl, NULL);
    struct sbx_provider *p = provider(&cfg);
    struct ab_err err;
    struct sbx_handle *h = NULL;
    if (create(p, "ab-tunf", &h, &err))
        T_FAIL("create: %s", err.msg);
    struct sbx_exec_req req = {.shell = "true"};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    T_EQ_INT(p->ops->exec(p, h, &req, &res, &err), AB_SANDBOX);
    T_ASSERT(strstr(err.msg, "pod is not running"));
    sbx_exec_result_cleanup(&res);
    unsetenv("FAKE_KUBECTL_FAIL");
    p->ops->release(p, h);
    p->ops->free(p);
    cfg_cleanup(&cfg);
    tk8s_stop(&C);
}

static void t_python_runtime_api_only(void)
{
    struct fx f;
    fx_begin(&f, NULL, SETS("k8s.runtime_api=python-runtime"), "ab-py");
    int code = 0;
    char *out = run(f.p, f.h, "echo 'it'\"'\"'s'; echo e >&2; exit 4", &code);
    T_EQ_STR(out, "it's\ne\n");
    T_EQ_INT(code, 4);
    free(out);
    const char *envv[] = {"FOO=b a r", NULL};
    struct sbx_exec_req req = {.shell = "cat; echo \"$FOO\"; pwd", .env = envv,
                               .stdin_data = "input\n", .stdin_len = 6, .cwd = "/workspace"};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    T_OK(f.p->ops->exec(f.p, f.h, &req, &res, &f.err));
    T_ASSERT(ab_starts_with(buf_cstr(&res.output), "input\nb a r\n/"));
    sbx_exec_result_cleanup(&res);
    struct sbx_exec_req slow = {.shell = "sleep 5", .timeout_ms = 300};
    sbx_exec_result_init(&res);
    T_OK(f.p->ops->exec(f.p, f.h, &slow, &res, &f.err));
    T_ASSERT(res.timed_out);
    T_EQ_INT(res.exit_code, 124);
    sbx_exec_result_cleanup(&res);
    T_OK(f.p->ops->write_file(f.p, f.h, "/workspace/x/y.txt", "py", 2, &f.err));
    struct buf b;
    buf_init(&b, 100);
    T_OK(f.p->ops->read_file(f.p, f.h, "/workspace/x/y.txt", 100, &b, &f.err));
    T_EQ_STR(buf_cstr(&b), "py");
    buf_cleanup(&b);
    struct sbx_dirent *de;
    size_t n;
    T_OK(f.p->ops->list_dir(f.p, f.h, "/workspace/x", &de, &n, &f.err));
    T_EQ_INT(n, 1);
    T_EQ_STR(de[0].name, "y.txt");
    sbx_dirents_free(de, n);
    T_EQ_INT(f.p->ops->write_file(f.p, f.h, "/etc/agentbox-nope", "x", 1, &f.err), AB_DENIED);
    fx_end(&f, true);
}

/* ---- the router's bearer token ---- */

static ab_status try_exec(struct sbx_provider *p, struct sbx_handle *h, struct ab_err *err)
{
    struct sbx_exec_req req = {.shell = "echo ok", .timeout_ms = 10000};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    ab_err_clear(err);
    ab_status rc = p->ops->exec(p, h, &req, &res, err);
    if (!rc && strcmp(buf_cstr(&res.output), "ok\n") != 0)
        T_FAIL("exec printed \"%s\"", buf_cstr(&res.output));
    sbx_exec_result_cleanup(&res);
    return rc;
}

static void write_token(const char *path, const char *tok)
{
    FILE *f = fopen(path, "w"); /* truncates in place: the inode stays */
    T_ASSERT(f);
    fprintf(f, "%s\n", tok);
    fclose(f);
}

static void t_router_token_missing_wrong_rotated(void)
{
    start(NULL);
    const char *tok = tk8s_str(&C, "routerToken");
    T_ASSERT(tok && strlen(tok) == 32);
    char logpath[300];
    snprintf(logpath, sizeof(logpath), "%s/agentbox.log", C.dir);
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    T_ASSERT(logfd >= 0);
    ab_log_configure(AB_LOG_DEBUG, AB_LOG_FORMAT_HUMAN, logfd);
    struct config cfg;
    tk8s_config(&C, &cfg);
    const char *file = tk8s_router_token_file(&C);
    struct ab_err err;
    struct sbx_handle *h = NULL;
    /* no token: the claim is made (the API server has credentials of its own), commands get
     * an error that names the settings */
    cfg_set(&cfg, "k8s.router_token_file", "", NULL);
    struct sbx_provider *p = provider(&cfg);
    if (create(p, "ab-tok", &h, &err))
        T_FAIL("create: %s", err.msg);
    T_EQ_INT(try_exec(p, h, &err), AB_DENIED);
    if (!strstr(err.msg, "Missing or invalid Authorization header.") ||
        !strstr(err.msg, "set k8s.router_token_file") || !strstr(err.msg, "ROUTER_AUTH_TOKEN"))
        T_FAIL("unclear: %s", err.msg);
    p->ops->release(p, h);
    p->ops->free(p);
    /* a wrong token: named by its setting, never shown */
    cfg_set(&cfg, "k8s.router_token", "wrong-token-0123456789", NULL);
    p = provider(&cfg);
    if (create(p, "ab-tok", &h, &err))
        T_FAIL("reattach: %s", err.msg);
    T_EQ_INT(try_exec(p, h, &err), AB_DENIED);
    if (!strstr(err.msg, "Invalid token.") ||
        !strstr(err.msg, "k8s.router_token / AGENTBOX_K8S_ROUTER_TOKEN") ||
        strstr(err.msg, "wrong-token"))
        T_FAIL("unclear: %s", err.msg);
    p->ops->release(p, h);
    p->ops->free(p);
    /* the right token, from the file: the golden flow */
    cfg_set(&cfg, "k8s.router_token", "", NULL);
    cfg_set(&cfg, "k8s.router_token_file", file, NULL);
    p = provider(&cfg);
    if (create(p, "ab-tok", &h, &err))
        T_FAIL("reattach: %s", err.msg);
    T_OK(try_exec(p, h, &err));
    T_OK(p->ops->write_file(p, h, "/workspace/t.txt", "tok", 3, &err));
    struct buf b;
    buf_init(&b, 100);
    T_OK(p->ops->read_file(p, h, "/workspace/t.txt", 100, &b, &err));
    T_EQ_STR(buf_cstr(&b), "tok");
    buf_cleanup(&b);
    /* the router's token rotates: a clear error until the file has the new one, then the
     * same provider works again without a restart */
    char tok2[64], tok3[64], fault[160];
    snprintf(tok2, sizeof(tok2), "%s-2", tok);
    snprintf(tok3, sizeof(tok3), "%s-3", tok);
    snprintf(fault, sizeof(fault), "{\"routerToken\":\"%s\"}", tok2);
    tk8s_fault(&C, fault);
    T_EQ_INT(try_exec(p, h, &err), AB_DENIED);
    if (!strstr(err.msg, "Invalid token.") || !strstr(err.msg, file) || strstr(err.msg, tok))
        T_FAIL("unclear: %s", err.msg);
    write_token(file, tok2);
    T_OK(try_exec(p, h, &err));
    /* a rewrite the file's identity cannot show (same inode and size, timestamps within one
     * clock tick; emulated by recording the new identity): the router's 401 makes the
     * provider re-read the file and repeat the request once */
    snprintf(fault, sizeof(fault), "{\"routerToken\":\"%s\"}", tok3);
    tk8s_fault(&C, fault);
    write_token(file, tok3);
    struct k8s_provider *kp = (struct k8s_provider *)p;
    T_OK(stat(file, &kp->router_token.id));
    T_OK(try_exec(p, h, &err));
    /* what the router saw last; what the API server saw never held the router's token */
    json_t *rr = tk8s_http(&C, "GET", "/_admin/router-requests", NULL, NULL);
    json_t *last = json_array_get(rr, json_array_size(rr) - 1);
    char want[100];
    snprintf(want, sizeof(want), "Bearer %s", tok3);
    T_EQ_STR(json_string_value(json_object_get(json_object_get(last, "headers"), "authorization")),
             want);
    json_decref(rr);
    json_t *api = tk8s_http(&C, "GET", "/_admin/requests", NULL, NULL);
    T_ASSERT(json_array_size(api) > 0);
    size_t i;
    json_t *r;
    json_array_foreach(api, i, r)
    {
        const char *bearer = json_string_value(json_object_get(r, "bearer"));
        if (bearer && strstr(bearer, tok))
            T_FAIL("the API server got the router's token on %s",
                   json_string_value(json_object_get(r, "path")));
    }
    json_decref(api);
    p->ops->destroy(p, h, &err);
    p->ops->free(p);
    /* the log tells of the reloads, never of the token */
    ab_log_configure(AB_LOG_WARN, AB_LOG_FORMAT_HUMAN, 2);
    close(logfd);
    struct buf logb;
    buf_init(&logb, 64u << 20);
    FILE *lf = fopen(logpath, "r");
    T_ASSERT(lf);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), lf)) > 0)
        buf_append(&logb, chunk, n);
    fclose(lf);
    T_ASSERT(strstr(buf_cstr(&logb), "k8s.router_token_reloaded"));
    T_ASSERT(!strstr(buf_cstr(&logb), tok));
    buf_cleanup(&logb);
    cfg_cleanup(&cfg);
    tk8s_stop(&C);
}

/* A stand-in for a pod (or a router) on loopback that records the request heads it gets
 * and answers 404. */
struct catcher {
    int lfd, port;
    atomic_bool stop;
    pthread_mutex_t lock;
    struct buf heads;
    int nreq;
    pthread_t th;
};

static void *catch_loop(void *arg)
{
    struct catcher *c = arg;
    while (!atomic_load(&c->stop)) {
        struct pollfd pf = {.fd = c->lfd, .events = POLLIN};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        char head[8192];
        size_t n = 0;
        while (n < sizeof(head) - 1 && !memmem(head, n, "\r\n\r\n", 4)) {
            struct pollfd rp = {.fd = fd, .events = POLLIN};
            if (poll(&rp, 1, 5000) <= 0)
                break;
            ssize_t r = read(fd, head + n, sizeof(head) - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
        }
        pthread_mutex_lock(&c->lock);
        buf_append(&c->heads, head, n);
        c->nreq++;
        pthread_mutex_unlock(&c->lock);
        static const char resp[] = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                                   "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
        if (write(fd, resp, sizeof(resp) - 1) < 0)
            perror("catcher write");
        close(fd);
    }
    return NULL;
}

static void catcher_start(struct catcher *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    buf_init(&c->heads, 1u << 20);
    c->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    T_OK(bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)));
    T_OK(listen(c->lfd, 16));
    T_OK(getsockname(c->lfd, (struct sockaddr *)&sa, &sl));
    c->port = ntohs(sa.sin_port);
    T_OK(pthread_create(&c->th, NULL, catch_loop, c));
}

static void catcher_stop(struct catcher *c)
{
    atomic_store(&c->stop, true);
    pthread_join(c->th, NULL);
    close(c->lfd);
    buf_cleanup(&c->heads);
    pthread_mutex_destroy(&c->lock);
}

static void t_router_token_never_sent_to_a_pod_ip(void)
{
    start(NULL);
    const char *tok = tk8s_str(&C, "routerToken");
    struct config cfg;
    tk8s_config(&C, &cfg); /* with k8s.router_token_file */
    struct catcher pod;
    catcher_start(&pod);
    char port[16];
    snprintf(port, sizeof(port), "%d", pod.port);
    cfg_set(&cfg, "k8s.connection", "in-cluster", NULL);
    cfg_set(&cfg, "k8s.server_port", port, NULL);
    struct sbx_provider *p = provider(&cfg);
    struct ab_err err;
    struct sbx_handle *h = NULL;
    if (create(p, "ab-podip", &h, &err))
        T_FAIL("create: %s", err.msg);
    free(h->pod_ip); /* white-box: the "pod" is our catcher on 127.0.0.1 */
    h->pod_ip = ab_strdup("127.0.0.1");
    T_ASSERT(try_exec(p, h, &err) != AB_OK); /* it answers 404 to everything */
    pthread_mutex_lock(&pod.lock);
    T_ASSERT(pod.nreq >= 1);
    T_ASSERT(strstr(buf_cstr(&pod.heads), "GET /agentbox/v1/info "));
    T_ASSERT(!strcasestr(buf_cstr(&pod.heads), "authorization:"));
    T_ASSERT(!strstr(buf_cstr(&pod.heads), tok));
    T_ASSERT(!strcasestr(buf_cstr(&pod.heads), "x-sandbox-id:"));
    buf_reset(&pod.heads);
    pthread_mutex_unlock(&pod.lock);
    p->ops->release(p, h);
    p->ops->free(p);
    /* the same catcher as the router (direct mode) does get the token: it can see it */
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", pod.port);
    cfg_set(&cfg, "k8s.connection", "direct", NULL);
    cfg_set(&cfg, "k8s.router_url", url, NULL);
    p = provider(&cfg);
    if (create(p, "ab-podip", &h, &err))
        T_FAIL("reattach: %s", err.msg);
    T_ASSERT(try_exec(p, h, &err) != AB_OK);
    pthread_mutex_lock(&pod.lock);
    char want[100];
    snprintf(want, sizeof(want), "Authorization: Bearer %s\r\n", tok);
    T_ASSERT(strstr(buf_cstr(&pod.heads), want));
    pthread_mutex_unlock(&pod.lock);
    p->ops->destroy(p, h, &err);
    p->ops->free(p);
    catcher_stop(&pod);
    cfg_cleanup(&cfg);
    tk8s_stop(&C);
}

/* ---- faults ---- */

static void t_fault_api_500_and_429_recover(void)
{
    struct fx f;
    fx_begin(&f, NULL, NULL, NULL);
    tk8s_fault(&C, "{\"errors\":[{\"path\":\"sandboxclaims\",\"status\":500,\"count\":2},"
                   "{\"path\":\"sandboxclaims\",\"status\":429,\"count\":1,\"retryAfter\":0},"
                   "{\"path\":\"sandboxclaims\",\"status\":503,\"count\":1,\"reset\":true}]}");
    if (create(f.p, "ab-f500", &f.h, &f.err))
        T_FAIL("create under 500s: %s", f.err.msg);
    T_OK(f.p->ops->destroy(f.p, f.h, &f.err));
    f.h = NULL;
    /* persistent 500s: a clear error, bounded */
    tk8s_fault(&C, "{\"errors\":[{\"path\":\"sandboxclaims\",\"status\":500,\"count\":100,"
                   "\"message\":\"etcdserver: leader changed\"}]}");
    T_EQ_INT(create(f.p, "ab-f500b", &f.h, &f.err), AB_K8S);
    T_ASSERT(strstr(f.err.msg, "etcdserver: leader changed"));
    T_ASSERT(strstr(f.err.msg, "HTTP 500"));
    fx_end(&f, false);
}

static void t_fault_api_timeout_is_clear(void)
{
    struct fx f;
    fx_begin(&f, NULL, SETS("k8s.request_timeout=1s"), NULL);
    tk8s_fault(&C, "{\"hangs\":[{\"path\":\"sandboxclaims\",\"count\":100}]}");
    int64_t t0 = ab_mono_ms();
    ab_status rc = create(f.p, "ab-hang", &f.h, &f.err);
    T_ASSERT(rc == AB_TIMEOUT || rc == AB_K8S);
    T_ASSERT(strstr(f.err.msg, "sandboxclaims"));
    T_ASSERT(ab_mono_ms() - t0 < 60000); /* bounded: never a hang */
    fx_end(&f, false);
}

static void t_fault_dropped_watch_and_410_recover(void)
{
    struct fx f;
    fx_begin(&f, NULL, SETS("k8s.warm_pool=cold-pool"), NULL);
    json_decref(tk8s_http(&C, "DELETE", "/_admin/requests", NULL, NULL));
    tk8s_fault(&C, "{\"podStartDelayMs\":1500,\"goneNext\":1}");
    pid_t killer = fork();
    if (killer == 0) {
        for (int i = 0; i < 3; i++) {
            usleep(400000);
            tk8s_fault(&C, "{\"dropWatches\":true}");
        }
        _exit(0);
    }
    if (create(f.p, "ab-drop", &f.h, &f.err))
        T_FAIL("create with dropped watches: %s", f.err.msg);
    waitpid(killer, NULL, 0);
    /* What the API server saw for the claim: GET, then a watch from its resourceVersion that
     * got the 410, then a GET again (the re-read), then watches resumed after the drops. */
    json_t *log = tk8s_http(&C, "GET", "/_admin/requests", NULL, NULL);
    T_ASSERT(json_is_array(log));
    int watches = 0, gets_before_second_watch = 0, resumed = 0;
    size_t i;
    json_t *e;
    json_array_foreach(log, i, e) {
        const char *path = json_string_value(json_object_get(e, "path"));
        const char *query = json_string_value(json_object_get(e, "query"));
        if (!path || !strstr(path, "/sandboxclaims"))
            continue;
        bool watch = query && strstr(query, "watch=");
        if (watch) {
            watches++;
            if (strstr(query, "resourceVersion=") && !strstr(query, "resourceVersion=0&") &&
                watches > 1)
                resumed++;
        } else if (strstr(path, "/sandboxclaims/ab-drop") && watches == 1) {
            gets_before_second_watch++;
        }
    }
    printf("  claim watches: %d (resumed from a resourceVersion: %d); re-reads after the 410: "
           "%d\n",
           watches, resumed, gets_before_second_watch);
    T_ASSERT(watches >= 3);                   /* the 410'd one, and more after the drops */
    T_ASSERT(gets_before_second_watch >= 1); /* the 410 made it re-read the claim */
    T_ASSERT(resumed >= 2);
    json_decref(log);
    char *out = run(f.p, f.h, "echo ok", NULL);
    T_EQ_STR(out, "ok\n");
    free(out);
    fx_end(&f, false);
}

static void t_fault_pod_never_ready(void)
{
    struct fx f;
    fx_begin(&f, NULL, SETS("k8s.warm_pool=cold-pool", "k8s.ready_timeout=2s"), NULL);
    tk8s_fault(&C, "{\"neverReady\":true}");
    T_EQ_INT(create(f.p, "ab-never", &f.h, &f.err), AB_TIMEOUT);
    T_ASSERT(strstr(f.err.msg, "did not become Ready within 2 s"));
    T_ASSERT(strstr(f.err.msg, "DependenciesNotReady"));
    T_EQ_INT(nclaims(), 0); /* the failed claim was deleted */
    fx_end(&f, false);
}

static void t_fault_runtime_dies_mid_command(void)
{
    struct fx f;
    fx_begin(&f, NULL, NULL, "ab-die");
    char *out = run(f.p, f.h, "echo warmup", NULL); /* probe the runtime first */
    free(out);
    tk8s_fault(&C, "{\"killRuntime\":{\"path\":\"/agentbox/v1/exec\",\"afterMs\":300,\"count\":1,"
                   "\"restartAfterMs\":300}}");
    struct sbx_exec_req req = {.shell = "echo started; sleep 10; echo never", .timeout_ms = 20000};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    ab_status rc = f.p->ops->exec(f.p, f.h, &req, &res, &f.err);
    T_EQ_INT(rc, AB_SANDBOX);
    if (!strstr(f.err.msg, "outcome is unknown") && !strstr(f.err.msg, "Could not connect"))
        T_FAIL("unclear error: %s", f.err.msg);
    sbx_exec_result_cleanup(&res);
    /* after the "kubelet" restarts the container, calls work again */
    usleep(800000);
    out = run(f.p, f.h, "echo back", NULL);
    T_EQ_STR(out, "back\n");
    free(out);
    fx_end(&f, false);
}

static void t_cancel_exec(void)
{
    struct fx f;
    fx_begin(&f, NULL, NULL, "ab-cancel");
    struct ab_cancel cancel;
    ab_cancel_init(&cancel);
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    ab_cancel_fire(&cancel, "test");
    struct sbx_exec_req req = {.shell = "sleep 30", .cancel = &cancel};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    int64_t t0 = ab_mono_ms();
    T_OK(f.p->ops->exec(f.p, f.h, &req, &res, &f.err));
    T_ASSERT(res.cancelled);
    T_ASSERT(ab_mono_ms() - t0 < 20000);
    sbx_exec_result_cleanup(&res);
    ab_cancel_cleanup(&cancel);
    fx_end(&f, false);
}

static const struct t_case cases[] = {
    T_CASE(t_create_exec_files_destroy),
    T_CASE(t_two_servers_one_thread_one_claim),
    T_CASE(t_reattach_after_restart),
    T_CASE(t_warm_adoption_and_cold_fallback),
    T_CASE(t_terminal_reasons_are_clear_and_cleaned_up),
    T_CASE(t_ttls),
    T_CASE(t_list_labels_pagination),
    T_CASE(t_v1alpha1_cluster),
    T_CASE(t_check_without_crds),
    T_CASE(t_mode_in_cluster),
    T_CASE(t_mode_gateway),
    T_CASE(t_mode_direct_without_pod_ip),
    T_CASE(t_mode_tunnel_with_fake_kubectl),
    T_CASE(t_mode_tunnel_kubectl_fails),
    T_CASE(t_python_runtime_api_only),
    T_CASE(t_router_token_missing_wrong_rotated),
    T_CASE(t_router_token_never_sent_to_a_pod_ip),
    T_CASE(t_fault_api_500_and_429_recover),
    T_CASE(t_fault_api_timeout_is_clear),
    T_CASE(t_fault_dropped_watch_and_410_recover),
    T_CASE(t_fault_pod_never_ready),
    T_CASE(t_fault_runtime_dies_mid_command),
    T_CASE(t_cancel_exec),
    {0},
};
T_MAIN(cases)
