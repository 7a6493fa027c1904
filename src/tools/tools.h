/*
 * tools.h - the MCP tools agentbox exposes: execute, execute_python, read, write, edit, ls,
 * grep, glob, upload, download, and the lifecycle tools sandbox_create / sandbox_list /
 * sandbox_info / sandbox_delete.
 *
 * This layer is thin on purpose: it resolves which sandbox a call targets (design.md,
 * "Thread-scoped get-or-create": the sandbox_id argument, else the thread key the MCP layer
 * resolved), runs the operation through core (fsops for the file tools, the provider's exec
 * for the command tools, the registry for lifecycle) and turns the result into a
 * CallToolResult. Definitions (names, descriptions, schemas) live in schemas/tools/, one JSON file per tool.
 */
#ifndef AB_TOOLS_TOOLS_H
#define AB_TOOLS_TOOLS_H

#include "base/status.h"
#include "config/config.h"
#include "core/policy.h"
#include "core/registry.h"
#include "core/sandbox.h"

struct mcp_server;

struct tools_ctx {
    const struct config *cfg;       /* borrowed, outlives the server */
    struct sbx_registry *registry;  /* borrowed */
    struct sbx_provider *provider;  /* borrowed */
    struct policy *policy;          /* borrowed; may be NULL (no rules) */
};

/* Register every tool on srv. ctx must outlive the server. */
ab_status tools_register_all(struct mcp_server *srv, struct tools_ctx *ctx, struct ab_err *err);

#endif
