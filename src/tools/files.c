/*
 * files.c - the eight file tools (read, write, edit, ls, grep, glob, upload, download).
 * Their semantics and texts live in core/fsops (one implementation for every provider);
 * this file only finds the sandbox and converts the result.
 */
#include "base/log.h"
#include "tools/internal.h"

static json_t *file_tool(struct mcp_call *call, const json_t *args, void *arg)
{
    struct tools_ctx *ctx = arg;
    json_t *out = NULL;
    struct sbx_ref *ref = tools__acquire(ctx, call, args, &out);
    if (!ref)
        return out;
    struct fsops_env env;
    tools__fsops_env(ctx, call, ref, &env);
    struct fsops_result res;
    fsops_result_init(&res);
    struct ab_err err;
    ab_err_clear(&err);
    const char *tool = mcp_call_tool(call);
    ab_status rc = fsops_call(&env, tool, args, &res, &err);
    if (env.check_path) /* the audit log's policy decision for path rules */
        mcp_call_annotate(call, "decision", res.refused ? "deny" : "allow");
    if (rc) {
        char what[64];
        snprintf(what, sizeof(what), "%s", tool);
        out = tools__failure(ref, what, rc, &err);
    } else {
        out = tools__from_fsops(&res);
    }
    fsops_result_cleanup(&res);
    sbx_ref_release(ref);
    return out;
}

ab_status tools__register_files(struct mcp_server *srv, struct tools_ctx *ctx, struct ab_err *err)
{
    static const char *const names[] = {"read", "write", "edit",   "ls",
                                        "grep", "glob",  "upload", "download"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        ab_status rc = tools__add(srv, ctx, names[i], file_tool, err);
        if (rc)
            return rc;
    }
    return AB_OK;
}
