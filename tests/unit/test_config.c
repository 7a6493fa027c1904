/* Unit tests for src/config: defaults, YAML, environment, validation, the documented file. */
#include "t.h"

#include <fcntl.h>
#include <stdlib.h>

#include "base/buf.h"
#include "config/config.h"
#include "support/proc.h"

static void load(struct config *c, const char *yaml, ab_status want, const char *msg)
{
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(cfg_init_defaults(c, &err));
    ab_status rc = cfg_load_string(c, yaml, strlen(yaml), "test.yaml", &err);
    if (rc != want)
        T_FAIL("load: rc %d (%s), want %d", rc, err.msg, want);
    if (msg)
        T_EQ_STR(err.msg, msg);
}

static void t_defaults(void)
{
    struct config c;
    struct ab_err err;
    T_OK(cfg_init_defaults(&c, &err));
    T_EQ_STR(c.http.listen, "127.0.0.1:8080");
    T_EQ_STR(c.http.path, "/mcp");
    T_EQ_INT(c.stdio.max_line_bytes, 16 * 1024 * 1024);
    T_EQ_INT(c.tools.execute_timeout_s, 300);
    T_EQ_INT(c.tools.execute_max_timeout_s, 3600);
    T_EQ_INT(c.tools.execute_max_output_bytes, 1024 * 1024);
    T_EQ_INT(c.sandbox.idle_ttl_s, 86400);
    T_EQ_STR(c.local.network, "none");
    T_OK(cfg_validate(&c, &err));
    cfg_cleanup(&c);
}

static void t_yaml(void)
{
    struct config c;
    load(&c,
         "http:\n  listen: 127.0.0.1:9999\n  allowed_origins: [https://a.example, "
         "https://b.example]\nsandbox:\n  pool:\n    size: 5\n  idle_ttl: 10m\n"
         "tools:\n  execute:\n    max_output: 2MiB\nauth:\n  tokens:\n"
         "    - token: 0123456789abcdef0123\n      principal: alice\n"
         "local:\n  limits:\n    cpus: 0.5\n",
         AB_OK, NULL);
    T_EQ_STR(c.http.listen, "127.0.0.1:9999");
    T_EQ_INT(c.http.allowed_origins.n, 2);
    T_EQ_STR(c.http.allowed_origins.v[1], "https://b.example");
    T_EQ_INT(c.sandbox.pool.size, 5);
    T_EQ_INT(c.sandbox.idle_ttl_s, 600);
    T_EQ_INT(c.tools.execute_max_output_bytes, 2 * 1024 * 1024);
    T_EQ_INT(c.auth.ntokens, 1);
    T_EQ_STR(c.auth.tokens[0].principal, "alice");
    T_ASSERT(c.local.limits.cpus == 0.5);
    cfg_cleanup(&c);
}

static void t_yaml_errors_name_file_line_key(void)
{
    struct config c;
    load(&c, "http:\n  listen: x\n  lisen: y\n", AB_INVAL,
         "test.yaml:3: key 'http.lisen': unknown key (see config/agentbox.yaml for every key)");
    cfg_cleanup(&c);
    load(&c, "sandbox:\n  ttl: forever\n", AB_INVAL,
         "test.yaml:2: key 'sandbox.ttl': expected a duration such as 30, 30s, 5m, 2h or 1d, not "
         "'forever'");
    cfg_cleanup(&c);
    load(&c, "local:\n  network: bridge\n", AB_INVAL,
         "test.yaml:2: key 'local.network': must be one of none|host, not 'bridge'");
    cfg_cleanup(&c);
    load(&c, "http: [1, 2]\n", AB_INVAL, NULL);
    cfg_cleanup(&c);
    load(&c, "a: b: c\n", AB_INVAL, NULL);
    cfg_cleanup(&c);
    load(&c, "auth:\n  tokens:\n    - token: short\n", AB_INVAL,
         "test.yaml:3: key 'auth.tokens': tokens must be at least 16 characters (use `openssl "
         "rand -hex 32`)");
    cfg_cleanup(&c);
    load(&c, "", AB_OK, NULL);
    cfg_cleanup(&c);
}

static void t_env_and_set(void)
{
    struct config c;
    struct ab_err err;
    T_OK(cfg_init_defaults(&c, &err));
    char *env[] = {"AGENTBOX_HTTP_LISTEN=127.0.0.2:7000", "AGENTBOX_SANDBOX_POOL_SIZE=0",
                   "AGENTBOX_LOCAL_RO_BINDS=/opt/a, /opt/b",
                   "AGENTBOX_TOKEN=secret-token-0123456789", NULL};
    T_OK(cfg_apply_env(&c, env, &err));
    T_EQ_STR(c.http.listen, "127.0.0.2:7000");
    T_EQ_INT(c.sandbox.pool.size, 0);
    T_EQ_INT(c.local.ro_binds.n, 2);
    T_EQ_STR(c.local.ro_binds.v[1], "/opt/b");
    T_EQ_INT(c.auth.ntokens, 1);
    T_EQ_STR(c.auth.tokens[0].principal, "default");
    T_OK(cfg_set(&c, "tools.execute.timeout", "5m", &err));
    T_EQ_INT(c.tools.execute_timeout_s, 300);
    T_EQ_INT(cfg_set(&c, "no.such.key", "1", &err), AB_INVAL);
    char *bad[] = {"AGENTBOX_SANDBOX_POOL_SIZE=many", NULL};
    T_EQ_INT(cfg_apply_env(&c, bad, &err), AB_INVAL);
    T_ASSERT(strstr(err.msg, "AGENTBOX_SANDBOX_POOL_SIZE") != NULL);
    cfg_cleanup(&c);
}

static void t_validate(void)
{
    struct config c;
    struct ab_err err;
    T_OK(cfg_init_defaults(&c, &err));
    T_OK(cfg_set(&c, "http.listen", "0.0.0.0:8080", &err));
    T_EQ_INT(cfg_validate(&c, &err), AB_DENIED);
    T_ASSERT(strstr(err.msg, "without authentication") != NULL);
    T_OK(cfg_set(&c, "http.allow_insecure_bind", "true", &err));
    T_OK(cfg_validate(&c, &err));
    T_OK(cfg_set(&c, "tools.execute.timeout", "2h", &err));
    T_EQ_INT(cfg_validate(&c, &err), AB_INVAL);
    cfg_cleanup(&c);
}

/* config/agentbox.yaml must be exactly what `agentbox config --defaults` prints, and load. */
static void t_documented_file_matches(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/config/agentbox.yaml", tp_source_dir());
    struct buf file, gen;
    buf_init(&file, 1 << 20);
    buf_init(&gen, 1 << 20);
    T_OK(tp_read_file(path, &file));
    char tmp[] = "/tmp/agentbox-defaults-XXXXXX";
    int fd = mkstemp(tmp);
    T_ASSERT(fd >= 0);
    cfg_write_defaults_yaml(fd);
    close(fd);
    T_OK(tp_read_file(tmp, &gen));
    unlink(tmp);
    if (strcmp(buf_cstr(&file), buf_cstr(&gen)) != 0)
        T_FAIL("config/agentbox.yaml is stale: regenerate it with "
               "`build/agentbox config --defaults > config/agentbox.yaml`");
    struct config c;
    struct ab_err err;
    T_OK(cfg_init_defaults(&c, &err));
    if (cfg_load_string(&c, file.data, file.len, "agentbox.yaml", &err))
        T_FAIL("%s", err.msg);
    cfg_cleanup(&c);
    buf_cleanup(&file);
    buf_cleanup(&gen);
}

static const struct t_case cases[] = {
    T_CASE(t_defaults),    T_CASE(t_yaml),     T_CASE(t_yaml_errors_name_file_line_key),
    T_CASE(t_env_and_set), T_CASE(t_validate), T_CASE(t_documented_file_matches),
    {0},
};
T_MAIN(cases)
