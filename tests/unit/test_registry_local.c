/*
 * The registry on the real local provider: warm-pool acquisition gives a working sandbox
 * under the thread's name, a server restart finds the same sandbox (files intact) for the
 * same thread key, and delete removes the workspace from disk.
 */
#include "t.h"

#include <sys/stat.h>

#include "base/util.h"
#include "config/config.h"
#include "core/registry.h"
#include "providers/local/internal.h"
#include "providers/local/local.h"

struct server {
    struct config cfg;
    struct sbx_provider *p;
    struct sbx_registry *reg;
};

static void server_start(struct server *s, const char *dir, int64_t pool)
{
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(cfg_init_defaults(&s->cfg, &err));
    T_OK(cfg_set(&s->cfg, "state_dir", dir, &err));
    const char *bin = getenv("AGENTBOX_BIN");
    if (!bin)
        T_FAIL("AGENTBOX_BIN is not set");
    sbx_local_set_helper_binary(bin);
    if (sbx_local_new(&s->cfg, &s->p, &err))
        T_FAIL("sbx_local_new: %s", err.msg);
    struct sbx_registry_opts o = {
        .provider = s->p, .idle_ttl_s = 3600, .pool_size = pool, .create_timeout_s = 30};
    if (sbx_registry_new(&o, &s->reg, &err))
        T_FAIL("registry: %s", err.msg);
}

static void server_stop(struct server *s)
{
    sbx_registry_free(s->reg);
    s->p->ops->free(s->p);
    cfg_cleanup(&s->cfg);
}

static char *run(struct sbx_ref *ref, const char *cmd)
{
    struct sbx_provider *p = sbx_ref_provider(ref);
    struct sbx_exec_req req = {.shell = cmd, .timeout_ms = 30000};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    struct ab_err err;
    ab_err_clear(&err);
    if (p->ops->exec(p, sbx_ref_handle(ref), &req, &res, &err))
        T_FAIL("exec: %s", err.msg);
    T_EQ_INT(res.exit_code, 0);
    char *out = ab_strdup(buf_cstr(&res.output));
    sbx_exec_result_cleanup(&res);
    return out;
}

static void t_warm_then_restart(void)
{
    char dir[] = "/tmp/ab-test-reglocal-XXXXXX";
    T_ASSERT(mkdtemp(dir) != NULL);
    struct server s;
    server_start(&s, dir, 2);
    T_ASSERT(sbx_registry_pool_wait_full(s.reg, ab_mono_ms() + 30000));
    struct sbx_ref *r;
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(sbx_registry_acquire(s.reg, "alice", "conversation-1", NULL, &r, &err));
    T_ASSERT(sbx_ref_info(r)->warm);
    char *name = ab_strdup(sbx_ref_info(r)->name);
    char *out = run(r, "echo remembered > /workspace/memo; cat /workspace/memo");
    T_EQ_STR(out, "remembered\n");
    free(out);
    sbx_ref_release(r);
    /* a second thread gets its own sandbox */
    T_OK(sbx_registry_acquire(s.reg, "alice", "conversation-2", NULL, &r, &err));
    out = run(r, "ls /workspace");
    T_EQ_STR(out, "");
    free(out);
    sbx_ref_release(r);
    struct sbx_pool_status ps;
    sbx_registry_pool_status(s.reg, &ps);
    T_EQ_INT(ps.acquired_warm, 2);
    server_stop(&s);

    /* restart: same key, same sandbox, same files; no new creation */
    server_start(&s, dir, 0);
    T_OK(sbx_registry_acquire(s.reg, "alice", "conversation-1", NULL, &r, &err));
    T_ASSERT(!sbx_ref_created(r));
    T_EQ_STR(sbx_ref_info(r)->name, name);
    out = run(r, "cat /workspace/memo");
    T_EQ_STR(out, "remembered\n");
    free(out);
    sbx_ref_release(r);
    struct sbx_list_page page;
    T_OK(sbx_registry_list(s.reg, "alice", NULL, NULL, 0, &page, &err));
    T_EQ_INT(page.n, 2);
    sbx_list_page_cleanup(&page);
    /* delete removes it from disk */
    T_OK(sbx_registry_delete(s.reg, "alice", name, &err));
    char path[256];
    snprintf(path, sizeof(path), "%s/sandboxes/%s", dir, name);
    struct stat st;
    T_ASSERT(stat(path, &st) < 0);
    server_stop(&s);
    T_OK(lcl__rm_tree(dir, NULL));
    free(name);
}

static const struct t_case cases[] = {
    T_CASE(t_warm_then_restart),
    {0},
};

T_MAIN(cases)
