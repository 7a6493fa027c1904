/*
 * app.c - see app.h.
 *
 * The provider is made by the caller: the command line picks local or Kubernetes from the
 * configuration, the fuzz harness brings an in-memory one. Everything after that is the
 * same for both, including the observer, so the fuzzers exercise the real audit and metrics
 * paths. Rejected: a flag per difference (version string, page size) -- the harness sets
 * those through the configuration like an operator would.
 *
 * app_init returns exit codes rather than ab_status because its only question for the
 * caller is "whose fault": an unusable policy or audit path is the operator's (2), anything
 * else is the host's (1), and the status codes do not tell those apart.
 */
#include "app.h"

#include <string.h>

#include "base/log.h"
#include "base/util.h"

static const char default_instructions[] =
    "agentbox runs commands and edits files in an isolated Linux sandbox that belongs to this "
    "conversation thread; it is created on first use and keeps its files between calls. Use "
    "execute for shell commands and execute_python for Python, read/write/edit for files, "
    "ls/glob/grep to explore (grep is literal, not regex), upload/download to move files in "
    "and out. Relative paths are under the workspace directory. The sandbox has no network "
    "unless the operator enabled it.";

static const char *call_result_name(const struct mcp_call_report *r)
{
    if (r->cancelled)
        return "cancelled";
    if (r->invalid_arguments)
        return "invalid_arguments";
    const char *decision = json_string_value(json_object_get(r->notes, "decision"));
    if (r->quota_refused ||
        (decision && (strcmp(decision, "deny") == 0 || strcmp(decision, "quota") == 0 ||
                      (ab_starts_with(decision, "ask:") && strcmp(decision, "ask:accept") != 0))))
        return "denied";
    return r->is_error ? "error" : "ok";
}

static uint64_t result_bytes(const json_t *result)
{
    uint64_t n = 0;
    size_t i;
    const json_t *b;
    json_array_foreach(json_object_get(result, "content"), i, b)
    {
        n += json_string_length(json_object_get(b, "text"));
        n += json_string_length(json_object_get(b, "data"));
        const json_t *res = json_object_get(b, "resource");
        n += json_string_length(json_object_get(res, "text"));
        n += json_string_length(json_object_get(res, "blob"));
    }
    return n;
}

/* The MCP observer: metrics and the audit log see every finished tool call. */
static void observe_call(void *arg, const struct mcp_call_report *r)
{
    struct app *app = arg;
    const char *result = call_result_name(r);
    metrics_observe_call(app->metrics, r->tool, result, (double)r->duration_us / 1e6);
    if (app->audit) {
        struct audit_record rec = {
            .time_ms = ab_wall_ms(),
            .principal = r->principal,
            .session = r->session_id,
            .thread = json_string_value(json_object_get(r->notes, "thread")),
            .sandbox = json_string_value(json_object_get(r->notes, "sandbox")),
            .tool = r->tool,
            .args = r->arguments,
            .result = result,
            .bytes = r->result ? result_bytes(r->result) : 0,
            .duration_us = r->duration_us,
            .decision = r->quota_refused ? "quota"
                                         : json_string_value(json_object_get(r->notes, "decision")),
        };
        audit_write(app->audit, &rec);
    }
}

void app_cleanup(struct app *app)
{
    if (app->srv && mcp_server_inflight(app->srv) > 0) {
        /* A tool ignored cancellation past every drain: its thread still uses the server,
         * the registry and the provider. The process is exiting; leave them to the kernel
         * rather than free memory under a running thread. */
        AB_LOG_WARN("server.exit_with_calls", "calls=%lld",
                    (long long)mcp_server_inflight(app->srv));
        return;
    }
    mcp_server_free(app->srv);
    sbx_registry_free(app->registry);
    if (app->provider)
        app->provider->ops->free(app->provider);
    policy_free(app->policy);
    audit_close(app->audit);
    metrics_free(app->metrics);
    memset(app, 0, sizeof(*app));
}

int app_init(struct app *app, struct config *cfg, struct sbx_provider *provider, struct ab_err *err)
{
    memset(app, 0, sizeof(*app));
    app->cfg = cfg;
    app->provider = provider;
    struct sbx_registry_opts ro = {
        .provider = provider,
        .ttl_s = cfg->sandbox.ttl_s,
        .idle_ttl_s = cfg->sandbox.idle_ttl_s,
        .reap_interval_s = cfg->sandbox.reap_interval_s,
        .create_timeout_s = cfg->sandbox.create_timeout_s,
        .pool_size = cfg->sandbox.pool.size,
        .max_per_principal = cfg->quotas.max_sandboxes,
    };
    if (sbx_registry_new(&ro, &app->registry, err))
        return APP_FAIL_RUNTIME;
    if (policy_new(cfg, &app->policy, err))
        return APP_FAIL_CONFIG;
    if (cfg->audit.path && *cfg->audit.path &&
        audit_open(cfg->audit.path, cfg->audit.max_bytes, (int)cfg->audit.keep, &app->audit, err))
        return APP_FAIL_CONFIG;
    app->metrics = metrics_new(provider->ops->kind);

    struct mcp_server_opts so = {
        .name = "agentbox",
        .title = "agentbox sandboxes",
        .version = AGENTBOX_VERSION,
        .instructions = cfg->mcp.instructions && *cfg->mcp.instructions ? cfg->mcp.instructions
                                                                        : default_instructions,
        .page_size = cfg->mcp.page_size,
        .max_inflight = cfg->mcp.max_inflight,
        .max_per_principal = cfg->quotas.max_concurrent_calls,
        .fixtures = cfg->conformance_fixtures,
        .app = app,
    };
    if (mcp_server_new(&so, &app->srv, err))
        return APP_FAIL_RUNTIME;
    app->tools = (struct tools_ctx){
        .cfg = cfg,
        .registry = app->registry,
        .provider = provider,
        .policy = app->policy,
    };
    if (tools_register_all(app->srv, &app->tools, err))
        return APP_FAIL_RUNTIME;
    mcp_server_set_observer(app->srv, observe_call, app);
    if (cfg->conformance_fixtures)
        AB_LOG_WARN("server.fixtures", "conformance fixtures are registered (test scaffolding)");
    AB_LOG_INFO("server.ready", "provider=%s pool=%lld policy=%s audit=%s", cfg->sandbox.provider,
                (long long)cfg->sandbox.pool.size, policy_active(app->policy) ? "on" : "off",
                app->audit ? cfg->audit.path : "off");
    return 0;
}
