/*
 * app.h - the agentbox server's wiring: provider -> registry -> policy -> audit log ->
 * metrics -> MCP server with every tool, and the call observer that feeds metrics and the
 * audit log. One home for it so the command line (src/main.c) and the end-to-end fuzz
 * harness (tests/fuzz/fuzz_app.c) run the same server, not two copies that drift apart.
 */
#ifndef AB_APP_H
#define AB_APP_H

#include "base/status.h"
#include "config/config.h"
#include "core/audit.h"
#include "core/metrics.h"
#include "core/policy.h"
#include "core/registry.h"
#include "mcp/server.h"
#include "tools/tools.h"

/* What app_init returns when it fails: the command line's exit codes. */
enum {
    APP_FAIL_RUNTIME = 1, /* something could not start (registry, server, tools) */
    APP_FAIL_CONFIG = 2,  /* the configuration is wrong (policy rules, audit log path) */
};

/* Everything serve builds; app_cleanup tears it down in reverse order. */
struct app {
    struct config *cfg; /* borrowed */
    struct sbx_provider *provider;
    struct sbx_registry *registry;
    struct policy *policy;
    struct audit *audit; /* NULL when audit.path is empty */
    struct ab_metrics *metrics;
    struct mcp_server *srv;
    struct tools_ctx tools;
};

/* Build the server around `provider` (takes ownership, even on failure) with the settings
 * in `cfg` (borrowed; must outlive the app). Returns 0, or APP_FAIL_RUNTIME /
 * APP_FAIL_CONFIG with the reason in err. Call app_cleanup in either case. */
int app_init(struct app *app, struct config *cfg, struct sbx_provider *provider,
             struct ab_err *err);

/* Free what app_init built. When a tool call is still running past every drain, its thread
 * still uses the server, registry and provider: then nothing is freed (the process is
 * exiting) and a warning is logged. */
void app_cleanup(struct app *app);

#endif
