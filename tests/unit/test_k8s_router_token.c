/*
 * test_k8s_router_token.c - the sandbox-router token without a cluster: the config keys
 * (k8s.router_token, k8s.router_token_file, AGENTBOX_K8S_ROUTER_TOKEN, one of them only,
 * redacted by `agentbox config`), and the holder (router_token.c): trimming, refusing what an
 * HTTP header cannot carry, re-reading a changed file, a forced re-read after a 401, keeping
 * the last good token while the file is unreadable, no token text in any error, and what
 * `agentbox doctor` says about it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "config/config.h"
#include "core/doctor.h"
#include "providers/k8s/k8s.h"
#include "providers/k8s/k8s_internal.h"
#include "t.h"

static char dir[64];

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof(dir), "/tmp/abrtok-XXXXXX");
    T_ASSERT(mkdtemp(dir));
}

static void rm_tmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    T_OK(system(cmd));
}

static const char *path_of(const char *name)
{
    static char p[160];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return p;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    T_ASSERT(f);
    fputs(text, f);
    fclose(f);
}

/* The token a header carries, or "" for none. */
static const char *bearer(struct k8s_rtok *t, bool force, bool *changed)
{
    static char out[256];
    char *h = NULL;
    struct ab_err err;
    ab_err_clear(&err);
    if (k8s_rtok_header(t, force, &h, changed, &err))
        T_FAIL("header: %s", err.msg);
    snprintf(out, sizeof(out), "%s", h ? h + strlen("Authorization: Bearer ") : "");
    if (h)
        T_ASSERT(ab_starts_with(h, "Authorization: Bearer "));
    k8s_rtok_header_free(h);
    return out;
}

static void t_config_keys_env_exclusive_redacted(void)
{
    struct config cfg;
    struct ab_err err;
    T_OK(cfg_init_defaults(&cfg, &err));
    T_EQ_STR(cfg.k8s.router_token, "");
    T_EQ_STR(cfg.k8s.router_token_file, "");
    char *env[] = {"AGENTBOX_K8S_ROUTER_TOKEN=s3cret-router-token", NULL};
    T_OK(cfg_apply_env(&cfg, env, &err));
    T_EQ_STR(cfg.k8s.router_token, "s3cret-router-token");
    T_OK(cfg_validate(&cfg, &err));
    /* `agentbox config` prints every key: this one redacted */
    char out[] = "/tmp/abrtok-dump-XXXXXX";
    int fd = mkstemp(out);
    T_ASSERT(fd >= 0);
    cfg_dump(&cfg, fd);
    close(fd);
    FILE *f = fopen(out, "r");
    char text[65536];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(out);
    T_ASSERT(strstr(text, "k8s.router_token: \"<redacted>\"\n"));
    T_ASSERT(strstr(text, "k8s.router_token_file: \"\"\n"));
    T_ASSERT(!strstr(text, "s3cret"));
    /* both: an error naming both keys, and not the token */
    T_OK(cfg_set(&cfg, "k8s.router_token_file", "/run/secrets/router/token", &err));
    T_EQ_INT(cfg_validate(&cfg, &err), AB_INVAL);
    T_ASSERT(strstr(err.msg, "'k8s.router_token'") && strstr(err.msg, "'k8s.router_token_file'"));
    T_ASSERT(!strstr(err.msg, "s3cret"));
    /* the provider refuses the same */
    T_OK(cfg_set(&cfg, "sandbox.provider", "agent-sandbox", &err));
    T_OK(cfg_set(&cfg, "k8s.router_url", "http://127.0.0.1:1", &err));
    struct sbx_provider *p = NULL;
    T_EQ_INT(sbx_k8s_new(&cfg, &p, &err), AB_INVAL);
    T_ASSERT(strstr(err.msg, "k8s.router_token and k8s.router_token_file are both set"));
    cfg_cleanup(&cfg);
}

static void t_provider_refuses_a_bad_token_file_at_start(void)
{
    mkdir_tmp();
    struct config cfg;
    struct ab_err err;
    T_OK(cfg_init_defaults(&cfg, &err));
    T_OK(cfg_set(&cfg, "k8s.router_url", "http://127.0.0.1:1", &err));
    T_OK(cfg_set(&cfg, "k8s.router_token_file", path_of("missing"), &err));
    struct sbx_provider *p = NULL;
    T_EQ_INT(sbx_k8s_new(&cfg, &p, &err), AB_NOTFOUND);
    T_ASSERT(strstr(err.msg, "k8s.router_token_file") && strstr(err.msg, path_of("missing")));
    put(path_of("empty"), "\n\n");
    T_OK(cfg_set(&cfg, "k8s.router_token_file", path_of("empty"), &err));
    T_EQ_INT(sbx_k8s_new(&cfg, &p, &err), AB_INVAL);
    T_ASSERT(strstr(err.msg, "is empty"));
    cfg_cleanup(&cfg);
    rm_tmp();
}

static void t_trimmed_and_checked(void)
{
    mkdir_tmp();
    struct k8s_rtok t;
    struct ab_err err;
    /* none configured: no header at all */
    T_OK(k8s_rtok_init(&t, "", "", &err));
    T_ASSERT(!k8s_rtok_configured(&t));
    T_EQ_STR(bearer(&t, false, NULL), "");
    k8s_rtok_cleanup(&t);
    /* a file with the newline kubectl and editors leave */
    put(path_of("tok"), "  abc.DEF-123_~+/=\r\n");
    T_OK(k8s_rtok_init(&t, NULL, path_of("tok"), &err));
    T_EQ_STR(bearer(&t, false, NULL), "abc.DEF-123_~+/=");
    k8s_rtok_cleanup(&t);
    /* what would break the header line (or smuggle another) is refused, and not echoed */
    const char *bad[] = {"two words-secret", "line\nX-Injected: secret", "tab\tsecret",
                         "caf\xc3\xa9-secret", NULL};
    for (int i = 0; bad[i]; i++) {
        T_EQ_INT(k8s_rtok_init(&t, bad[i], NULL, &err), AB_INVAL);
        T_ASSERT(strstr(err.msg, "k8s.router_token"));
        T_ASSERT(strstr(err.msg, "printable ASCII"));
        T_ASSERT(!strstr(err.msg, "secret"));
        k8s_rtok_cleanup(&t);
    }
    char big[70000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    put(path_of("big"), big);
    T_EQ_INT(k8s_rtok_init(&t, NULL, path_of("big"), &err), AB_LIMIT);
    T_ASSERT(strstr(err.msg, "is larger than 65536 bytes"));
    k8s_rtok_cleanup(&t);
    put(path_of("bad"), "ok-part\nsecond-line-secret\n");
    T_EQ_INT(k8s_rtok_init(&t, NULL, path_of("bad"), &err), AB_INVAL);
    T_ASSERT(strstr(err.msg, path_of("bad")) && !strstr(err.msg, "secret"));
    k8s_rtok_cleanup(&t);
    rm_tmp();
}

static void t_file_reread_when_changed_or_forced(void)
{
    mkdir_tmp();
    struct k8s_rtok t;
    struct ab_err err;
    char f[160], fnew[160];
    snprintf(f, sizeof(f), "%s", path_of("token"));
    snprintf(fnew, sizeof(fnew), "%s", path_of("token.new"));
    put(f, "token-one\n");
    T_OK(k8s_rtok_init(&t, NULL, f, &err));
    bool changed = true;
    T_EQ_STR(bearer(&t, false, &changed), "token-one");
    T_ASSERT(!changed);
    /* a Secret volume's rotation: a new file swapped in (new inode) */
    put(fnew, "token-two\n");
    T_OK(rename(fnew, f));
    T_EQ_STR(bearer(&t, false, &changed), "token-two");
    T_ASSERT(changed);
    /* rewritten in place, same size, and its identity recorded as if the clock had not
     * moved: not noticed without force, picked up with it (what a 401 does) */
    put(f, "token-333\n");
    T_OK(stat(f, &t.id));
    T_EQ_STR(bearer(&t, false, &changed), "token-two");
    T_ASSERT(!changed);
    T_EQ_STR(bearer(&t, true, &changed), "token-333");
    T_ASSERT(changed);
    T_EQ_STR(bearer(&t, true, &changed), "token-333");
    T_ASSERT(!changed); /* forced, but the same token: nothing worth a retry */
    /* unreadable for a while: the last good token is kept */
    T_OK(unlink(f));
    T_EQ_STR(bearer(&t, false, &changed), "token-333");
    put(f, "token-four\n");
    T_EQ_STR(bearer(&t, false, &changed), "token-four");
    T_ASSERT(changed);
    k8s_rtok_cleanup(&t);
    rm_tmp();
}

/* `agentbox doctor`'s line for the token, without a cluster (the API is unreachable). */
static const struct doctor_check *doctor_token_line(struct doctor_report *r, const char *conn,
                                                    const char *token, const char *file)
{
    struct config cfg;
    struct ab_err err;
    T_OK(cfg_init_defaults(&cfg, &err));
    put(path_of("kc"), "current-context: t\nclusters: [{name: c, cluster: {server: "
                       "'http://127.0.0.1:1'}}]\ncontexts: [{name: t, context: {cluster: c, "
                       "user: u}}]\nusers: [{name: u, user: {token: x}}]\n");
    T_OK(cfg_set(&cfg, "k8s.kubeconfig", path_of("kc"), &err));
    T_OK(cfg_set(&cfg, "k8s.request_timeout", "1s", &err));
    T_OK(cfg_set(&cfg, "k8s.connection", conn, &err));
    T_OK(cfg_set(&cfg, "k8s.router_url", "http://127.0.0.1:1", &err));
    T_OK(cfg_set(&cfg, "k8s.router_token", token, &err));
    T_OK(cfg_set(&cfg, "k8s.router_token_file", file, &err));
    doctor_report_init(r);
    doctor_section(r, "k8s", true);
    sbx_k8s_doctor(&cfg, r);
    cfg_cleanup(&cfg);
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->checks[i].name, "router token") == 0)
            return &r->checks[i];
    return NULL;
}

static void t_doctor_says_where_the_token_comes_from(void)
{
    mkdir_tmp();
    char nope[160];
    snprintf(nope, sizeof(nope), "%s", path_of("nope"));
    struct doctor_report r;
    const struct doctor_check *c = doctor_token_line(&r, "direct", "", "");
    T_ASSERT(c && c->result == DOCTOR_WARN);
    T_ASSERT(strstr(c->fix, "k8s.router_token_file"));
    doctor_report_cleanup(&r);
    c = doctor_token_line(&r, "gateway", "the-token-1234", "");
    T_ASSERT(c && c->result == DOCTOR_OK);
    T_ASSERT(strstr(c->detail, "k8s.router_token") && !strstr(c->detail, "the-token"));
    doctor_report_cleanup(&r);
    c = doctor_token_line(&r, "tunnel", "", nope);
    T_ASSERT(c && c->result == DOCTOR_FAIL);
    T_ASSERT(strstr(c->detail, "cannot read k8s.router_token_file"));
    doctor_report_cleanup(&r);
    c = doctor_token_line(&r, "in-cluster", "", nope);
    T_ASSERT(!c); /* no router in the way */
    doctor_report_cleanup(&r);
    rm_tmp();
}

static const struct t_case cases[] = {
    T_CASE(t_config_keys_env_exclusive_redacted),
    T_CASE(t_provider_refuses_a_bad_token_file_at_start),
    T_CASE(t_trimmed_and_checked),
    T_CASE(t_file_reread_when_changed_or_forced),
    T_CASE(t_doctor_says_where_the_token_comes_from),
    {0},
};
T_MAIN(cases)
