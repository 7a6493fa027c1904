/*
 * internal.h - helpers shared by the tool families (tools__ prefix: module-internal).
 */
#ifndef AB_TOOLS_INTERNAL_H
#define AB_TOOLS_INTERNAL_H

#include <jansson.h>

#include "core/fsops.h"
#include "mcp/server.h"
#include "tools/tools.h"

/* The key inputs of a call (design.md rules 1-4), for sbx_resolve_key(). */
void tools__key_inputs(struct mcp_call *call, const json_t *args, struct sbx_key_inputs *in);

/* Resolve and acquire the call's sandbox: the "sandbox_id" argument when present (must
 * exist and belong to the caller), else the thread's sandbox (created on first use).
 * On failure returns NULL and sets *error_result (new) to the tool error to return. */
struct sbx_ref *tools__acquire(struct tools_ctx *ctx, struct mcp_call *call, const json_t *args,
                               json_t **error_result);

/* Tool error result from a core failure (status + message); marks the sandbox broken when
 * the failure was the sandbox's own (so the next call gets a fresh helper). ref may be NULL. */
json_t *tools__failure(struct sbx_ref *ref, const char *what, ab_status rc,
                       const struct ab_err *err);

/* Turn an fsops result into a CallToolResult (content, isError, structuredContent). */
json_t *tools__from_fsops(struct fsops_result *res);

/* "Error: ..." tool result with printf formatting. */
json_t *tools__error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Build the fsops environment for a sandbox. */
void tools__fsops_env(struct tools_ctx *ctx, struct mcp_call *call, struct sbx_ref *ref,
                      struct fsops_env *env);

/* Families. */
ab_status tools__register_exec(struct mcp_server *srv, struct tools_ctx *ctx, struct ab_err *err);
ab_status tools__register_files(struct mcp_server *srv, struct tools_ctx *ctx, struct ab_err *err);
ab_status tools__register_lifecycle(struct mcp_server *srv, struct tools_ctx *ctx,
                                    struct ab_err *err);

/* Register a schemas/tools/<name>.json tool with ${placeholders} filled from the config. */
ab_status tools__add(struct mcp_server *srv, struct tools_ctx *ctx, const char *name,
                     mcp_tool_fn fn, struct ab_err *err);

/* Human-readable size ("1 MiB", "500 KiB", "12 bytes") into out. */
void tools__format_size(uint64_t bytes, char *out, size_t cap);

#endif
