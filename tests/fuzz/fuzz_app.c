/*
 * fuzz_app.c - see fuzz_app.h.
 *
 * Limits are set low (small uploads, reads and outputs, at most four sandboxes per
 * principal) so each input runs in microseconds and the quota paths are reachable; the
 * policy has a rule of every kind so refusals and the elicitation flow are fuzzed too.
 */
#include "fuzz_app.h"

#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "fuzz.h"
#include "fuzzbox.h"
#include "jsonrpc/jsonrpc.h"
#include "support/hostdir_provider.h"

static const char *const fuzz_sets[] = {
    "sandbox.pool.size", "0",
    "sandbox.reap_interval", "0",
    "quotas.max_sandboxes", "4",
    "quotas.max_concurrent_calls", "8",
    "tools.upload.max_bytes", "64KiB",
    "tools.download.max_bytes", "64KiB",
    "tools.read.max_bytes", "256KiB",
    "tools.execute.max_output", "4KiB",
    "tools.glob.max_matches", "200",
    "tools.grep.max_count", "100",
    "policy.deny_prefixes", "/workspace/.git,/etc",
    "policy.deny_commands", "rm -rf /,*shutdown*",
    "policy.ask_commands", "git push,sudo *",
    "policy.ask_timeout", "2s",
    "audit.max_bytes", "64KiB",
    "audit.keep", "2",
    "mcp.max_inflight", "64",
    NULL,
};

static void apply(struct config *cfg, const char *const *sets)
{
    struct ab_err err;
    for (size_t i = 0; sets && sets[i]; i += 2)
        if (cfg_set(cfg, sets[i], sets[i + 1], &err)) {
            fprintf(stderr, "fuzz_app: %s: %s\n", sets[i], err.msg);
            abort();
        }
}

static const char *result_name(const struct mcp_call_report *r)
{
    if (r->cancelled)
        return "cancelled";
    if (r->invalid_arguments)
        return "invalid_arguments";
    return r->quota_refused ? "denied" : r->is_error ? "error" : "ok";
}

/* What src/main.c's observer does: metrics and one audit line per call. */
static void observe(void *arg, const struct mcp_call_report *r)
{
    struct fuzz_app *app = arg;
    metrics_observe_call(app->metrics, r->tool, result_name(r), (double)r->duration_us / 1e6);
    struct audit_record rec = {
        .time_ms = ab_wall_ms(),
        .principal = r->principal,
        .session = r->session_id,
        .thread = json_string_value(json_object_get(r->notes, "thread")),
        .sandbox = json_string_value(json_object_get(r->notes, "sandbox")),
        .tool = r->tool,
        .args = r->arguments,
        .result = result_name(r),
        .bytes = 0,
        .duration_us = r->duration_us,
        .decision = json_string_value(json_object_get(r->notes, "decision")),
    };
    audit_write(app->audit, &rec);
}

void fuzz_app_init(struct fuzz_app *app, const char *const *extra_sets)
{
    memset(app, 0, sizeof(*app));
    struct ab_err err;
    ab_err_clear(&err);
    /* Quiet: a fuzzer runs millions of inputs; warnings would drown its own output. */
    ab_log_configure(getenv("FUZZ_LOG") ? AB_LOG_DEBUG : AB_LOG_OFF, AB_LOG_FORMAT_HUMAN, 2);
    app->root = hostdir_mkdtemp();
    if (!app->root || cfg_init_defaults(&app->cfg, &err))
        abort();
    apply(&app->cfg, fuzz_sets);
    apply(&app->cfg, extra_sets);
    char *audit_path = ab_asprintf("%s/audit.log", app->root);
    char *boxes = ab_asprintf("%s/boxes", app->root);
    if (mkdir(boxes, 0755) < 0 || fuzzbox_new(boxes, &app->provider, &err))
        abort();
    struct sbx_registry_opts ro = {
        .provider = app->provider,
        .idle_ttl_s = app->cfg.sandbox.idle_ttl_s,
        .create_timeout_s = app->cfg.sandbox.create_timeout_s,
        .max_per_principal = app->cfg.quotas.max_sandboxes,
    };
    if (sbx_registry_new(&ro, &app->registry, &err) || policy_new(&app->cfg, &app->policy, &err) ||
        audit_open(audit_path, app->cfg.audit.max_bytes, (int)app->cfg.audit.keep, &app->audit,
                   &err)) {
        fprintf(stderr, "fuzz_app: %s\n", err.msg);
        abort();
    }
    free(audit_path);
    free(boxes);
    app->metrics = metrics_new(app->provider->ops->kind);
    struct mcp_server_opts so = {
        .name = "agentbox",
        .version = "fuzz",
        .page_size = 5, /* small pages: tools/list pagination is reachable */
        .max_inflight = app->cfg.mcp.max_inflight,
        .max_per_principal = app->cfg.quotas.max_concurrent_calls,
        .app = app,
    };
    if (mcp_server_new(&so, &app->srv, &err))
        abort();
    app->tools = (struct tools_ctx){
        .cfg = &app->cfg,
        .registry = app->registry,
        .provider = app->provider,
        .policy = app->policy,
    };
    if (tools_register_all(app->srv, &app->tools, &err)) {
        fprintf(stderr, "fuzz_app: %s\n", err.msg);
        abort();
    }
    mcp_server_set_observer(app->srv, observe, app);
}

void fuzz_app_reset(struct fuzz_app *app)
{
    struct sbx_list_page page;
    struct ab_err err;
    if (sbx_registry_list(app->registry, NULL, NULL, NULL, 0, &page, &err))
        return;
    for (size_t i = 0; i < page.n; i++)
        sbx_registry_delete(app->registry, page.items[i].principal, page.items[i].name, &err);
    sbx_list_page_cleanup(&page);
}

void fuzz_app_cleanup(struct fuzz_app *app)
{
    fuzz_app_reset(app);
    mcp_server_free(app->srv);
    sbx_registry_free(app->registry);
    app->provider->ops->free(app->provider);
    policy_free(app->policy);
    audit_close(app->audit);
    metrics_free(app->metrics);
    cfg_cleanup(&app->cfg);
    hostdir_rmtree(app->root);
    free(app->root);
}

static void check_one(const json_t *m, const char *line)
{
    FUZZ_CHECK(json_is_object(m), "a message that is not an object: %s", line);
    const char *version = json_string_value(json_object_get(m, "jsonrpc"));
    FUZZ_CHECK(version && strcmp(version, "2.0") == 0, "no jsonrpc 2.0: %s", line);
    const json_t *id = json_object_get(m, "id");
    bool has_method = json_is_string(json_object_get(m, "method"));
    bool has_result = json_object_get(m, "result") != NULL;
    bool has_error = json_is_object(json_object_get(m, "error"));
    FUZZ_CHECK(has_method + has_result + has_error == 1, "not one of request, result, error: %s",
               line);
    if (has_result)
        FUZZ_CHECK(json_is_string(id) || json_is_integer(id), "a result without an id: %s", line);
    if (has_error) {
        const json_t *e = json_object_get(m, "error");
        FUZZ_CHECK(json_is_integer(json_object_get(e, "code")) &&
                       json_is_string(json_object_get(e, "message")),
                   "a malformed error: %s", line);
    }
}

void fuzz_check_message(const char *line, size_t len)
{
    json_error_t jerr;
    json_t *m = json_loadb(line, len, 0, &jerr);
    FUZZ_CHECK(m, "the server sent invalid JSON (%s): %.*s", jerr.text, (int)AB_MIN(len, 2000),
               line);
    if (json_is_array(m)) {
        FUZZ_CHECK(json_array_size(m) > 0, "an empty batch response");
        size_t i;
        json_t *el;
        json_array_foreach(m, i, el) check_one(el, line);
    } else {
        check_one(m, line);
    }
    json_decref(m);
}
