/*
 * fuzz_app.c - see fuzz_app.h.
 *
 * The server itself is src/app.c's, built around the fuzzbox provider. Limits are set low
 * (small uploads, reads and outputs, small tools/list pages, at most four sandboxes per
 * principal) so each input runs in microseconds and the quota and pagination paths are
 * reachable; the policy has a rule of every kind so refusals and the elicitation flow are
 * fuzzed too.
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
    "mcp.page_size", "5", /* small pages: tools/list pagination is reachable */
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
    char *audit_path = ab_asprintf("%s/audit.log", app->root);
    char *boxes = ab_asprintf("%s/boxes", app->root);
    const char *const root_sets[] = {"audit.path", audit_path, NULL};
    apply(&app->cfg, root_sets);
    apply(&app->cfg, fuzz_sets);
    apply(&app->cfg, extra_sets);
    struct sbx_provider *provider = NULL;
    if (mkdir(boxes, 0755) < 0 || fuzzbox_new(boxes, &provider, &err))
        abort();
    free(audit_path);
    free(boxes);
    if (app_init(&app->base, &app->cfg, provider, &err)) {
        fprintf(stderr, "fuzz_app: %s\n", err.msg);
        abort();
    }
}

void fuzz_app_reset(struct fuzz_app *app)
{
    struct sbx_list_page page;
    struct ab_err err;
    struct sbx_registry *registry = app->base.registry;
    if (sbx_registry_list(registry, NULL, NULL, NULL, 0, &page, &err))
        return;
    for (size_t i = 0; i < page.n; i++)
        sbx_registry_delete(registry, page.items[i].principal, page.items[i].name, &err);
    sbx_list_page_cleanup(&page);
}

void fuzz_app_cleanup(struct fuzz_app *app)
{
    fuzz_app_reset(app);
    app_cleanup(&app->base);
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
