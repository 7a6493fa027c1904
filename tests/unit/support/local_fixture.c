/*
 * local_fixture.c - see local_fixture.h. One copy of what test_local.c, test_local_hostile.c
 * and tests/security/test_adversarial.c each used to carry.
 */
#include "local_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "providers/local/internal.h"
#include "providers/local/local.h"
#include "t.h"

static struct lfx *g_live;

static void cleanup_at_exit(void)
{
    if (!g_live)
        return;
    if (g_live->p)
        g_live->p->ops->free(g_live->p);
    lcl__rm_tree(g_live->dir, NULL);
}

void lfx_set(struct lfx *f, const char *key, const char *val)
{
    struct ab_err err;
    ab_err_clear(&err);
    if (cfg_set(&f->cfg, key, val, &err))
        T_FAIL("cfg_set %s: %s", key, err.msg);
}

void lfx_config(struct lfx *f, const char *tag)
{
    struct ab_err err;
    ab_err_clear(&err);
    memset(f, 0, sizeof(*f));
    if (!g_live)
        atexit(cleanup_at_exit);
    g_live = f;
    f->run_timeout_ms = 60000;
    T_OK(cfg_init_defaults(&f->cfg, &err));
    snprintf(f->dir, sizeof(f->dir), "/tmp/ab-%s-XXXXXX", tag);
    T_ASSERT(mkdtemp(f->dir) != NULL);
    lfx_set(f, "state_dir", f->dir);
}

void lfx_start(struct lfx *f, const char *helper_bin)
{
    const char *bin = helper_bin ? helper_bin : getenv("AGENTBOX_BIN");
    if (!bin)
        T_FAIL("AGENTBOX_BIN is not set (ctest sets it to the built agentbox binary)");
    sbx_local_set_helper_binary(bin);
    struct ab_err err;
    ab_err_clear(&err);
    if (sbx_local_new(&f->cfg, &f->p, &err))
        T_FAIL("sbx_local_new: %s", err.msg);
    if (!f->pol && policy_new(&f->cfg, &f->pol, &err))
        T_FAIL("policy_new: %s", err.msg);
}

void lfx_stop(struct lfx *f)
{
    if (f->p)
        f->p->ops->free(f->p);
    f->p = NULL;
}

void lfx_done(struct lfx *f)
{
    lfx_stop(f);
    policy_free(f->pol);
    f->pol = NULL;
    g_live = NULL;
    T_OK(lcl__rm_tree(f->dir, NULL));
    cfg_cleanup(&f->cfg);
}

struct sbx_handle *lfx_create(struct lfx *f, const char *name)
{
    struct sbx_info info;
    sbx_info_init(&info);
    info.name = ab_strdup(name);
    info.principal = ab_strdup("");
    info.labels = json_object();
    info.created_ms = info.last_used_ms = ab_wall_ms();
    struct sbx_create_req req = {.info = &info};
    struct sbx_handle *h = NULL;
    struct ab_err err;
    ab_err_clear(&err);
    if (f->p->ops->create(f->p, &req, &h, &err))
        T_FAIL("create %s: %s", name, err.msg);
    sbx_info_cleanup(&info);
    return h;
}

void lfx_destroy(struct lfx *f, struct sbx_handle *h)
{
    struct ab_err err;
    ab_err_clear(&err);
    if (f->p->ops->destroy(f->p, h, &err))
        T_FAIL("destroy: %s", err.msg);
}

int lfx_run_ex(struct lfx *f, struct sbx_handle *h, const char *cmd, int64_t timeout_ms, char **out,
               struct sbx_exec_result *keep)
{
    struct sbx_exec_req req = {.shell = cmd, .timeout_ms = timeout_ms};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    struct ab_err err;
    ab_err_clear(&err);
    if (f->p->ops->exec(f->p, h, &req, &res, &err))
        T_FAIL("exec '%s': %s", cmd, err.msg);
    int code = res.exit_code;
    if (out)
        *out = ab_strdup(buf_cstr(&res.output));
    if (keep)
        *keep = res;
    else
        sbx_exec_result_cleanup(&res);
    return code;
}

int lfx_run(struct lfx *f, struct sbx_handle *h, const char *cmd, char **out)
{
    return lfx_run_ex(f, h, cmd, f->run_timeout_ms, out, NULL);
}

char *lfx_sh(struct lfx *f, struct sbx_handle *h, const char *cmd)
{
    char *out;
    int code = lfx_run(f, h, cmd, &out);
    if (code != 0)
        T_FAIL("'%s' exited %d: %s", cmd, code, out);
    return out;
}

void lfx_expect_sh(struct lfx *f, struct sbx_handle *h, const char *cmd, const char *want)
{
    char *out = lfx_sh(f, h, cmd);
    T_EQ_STR(out, want);
    free(out);
}
