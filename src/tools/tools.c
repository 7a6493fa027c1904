/*
 * tools.c - registration, sandbox resolution and result conversion shared by every tool.
 *
 * Tool descriptions are written for a model and state the real limits, so the embedded
 * definitions carry ${placeholders} (timeout, output cap, workspace, network) that are
 * filled from the configuration at registration time: what the model reads is what the
 * server enforces.
 */
#include "tools/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

void tools__format_size(uint64_t bytes, char *out, size_t cap)
{
    if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0)
        snprintf(out, cap, "%llu GiB", (unsigned long long)(bytes >> 30));
    else if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0)
        snprintf(out, cap, "%llu MiB", (unsigned long long)(bytes >> 20));
    else if (bytes >= 1024 && bytes % 1024 == 0)
        snprintf(out, cap, "%llu KiB", (unsigned long long)(bytes >> 10));
    else
        snprintf(out, cap, "%llu bytes", (unsigned long long)bytes);
}

static void format_duration(int64_t s, char *out, size_t cap)
{
    if (s == 0)
        snprintf(out, cap, "none");
    else if (s % 86400 == 0)
        snprintf(out, cap, "%lldd", (long long)(s / 86400));
    else if (s % 3600 == 0)
        snprintf(out, cap, "%lldh", (long long)(s / 3600));
    else if (s % 60 == 0)
        snprintf(out, cap, "%lldm", (long long)(s / 60));
    else
        snprintf(out, cap, "%llds", (long long)s);
}

/* Replace every ${name} in s by its value; unknown names are left as they are. */
static char *fill_placeholders(const char *s, const char *const *names, const char *const *values,
                               size_t n)
{
    struct buf out;
    buf_init(&out, 1 << 20);
    const char *p = s;
    while (*p) {
        const char *d = strstr(p, "${");
        if (!d) {
            buf_append_str(&out, p);
            break;
        }
        buf_append(&out, p, (size_t)(d - p));
        const char *end = strchr(d, '}');
        bool done = false;
        for (size_t i = 0; end && i < n; i++) {
            size_t nl = strlen(names[i]);
            if ((size_t)(end - d - 2) == nl && strncmp(d + 2, names[i], nl) == 0) {
                buf_append_str(&out, values[i]);
                p = end + 1;
                done = true;
                break;
            }
        }
        if (!done) {
            buf_append(&out, d, 2);
            p = d + 2;
        }
    }
    return buf_steal(&out, NULL);
}

static void fill_json_strings(json_t *j, const char *const *names, const char *const *values,
                              size_t n)
{
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(j, tmp, k, v)
        {
            if (json_is_string(v) && strstr(json_string_value(v), "${")) {
                char *filled = fill_placeholders(json_string_value(v), names, values, n);
                json_object_set_new(j, k, json_string(filled));
                free(filled);
            } else {
                fill_json_strings(v, names, values, n);
            }
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) fill_json_strings(v, names, values, n);
    }
}

ab_status tools__add(struct mcp_server *srv, struct tools_ctx *ctx, const char *name,
                     mcp_tool_fn fn, struct ab_err *err)
{
    char path[128];
    snprintf(path, sizeof(path), "tools/%s.json", name);
    json_t *def = mcp_embedded_schema(path);
    if (!def)
        return ab_err_set(err, AB_NOTFOUND, "schemas/%s is missing or not valid JSON", path);
    const struct config *cfg = ctx->cfg;
    char timeout[32], max_timeout[32], max_output[32], ttl[32], idle_ttl[32];
    snprintf(timeout, sizeof(timeout), "%lld", (long long)cfg->tools.execute_timeout_s);
    snprintf(max_timeout, sizeof(max_timeout), "%lld", (long long)cfg->tools.execute_max_timeout_s);
    tools__format_size(cfg->tools.execute_max_output_bytes, max_output, sizeof(max_output));
    format_duration(cfg->sandbox.ttl_s, ttl, sizeof(ttl));
    format_duration(cfg->sandbox.idle_ttl_s, idle_ttl, sizeof(idle_ttl));
    bool k8s = strcmp(cfg->sandbox.provider, "local") != 0;
    const char *network = k8s ? "network access is set by the cluster's policy."
                          : strcmp(cfg->local.network, "host") == 0
                              ? "shares the host's network."
                              : "has no network access.";
    const char *workspace = ctx->provider && ctx->provider->workspace ? ctx->provider->workspace
                                                                      : cfg->local.workspace;
    const char *const names[] = {"timeout", "max_timeout", "max_output", "workspace",
                                 "network_text", "ttl", "idle_ttl"};
    const char *const values[] = {timeout, max_timeout, max_output, workspace, network, ttl,
                                  idle_ttl};
    fill_json_strings(def, names, values, AB_ARRAY_LEN(names));
    return mcp_server_add_tool(srv, def, fn, ctx, err);
}

ab_status tools_register_all(struct mcp_server *srv, struct tools_ctx *ctx, struct ab_err *err)
{
    ab_status rc;
    /* Order as the model sees them: the command tools, the file tools, then lifecycle. */
    if ((rc = tools__register_exec(srv, ctx, err)))
        return rc;
    if ((rc = tools__register_files(srv, ctx, err)))
        return rc;
    return tools__register_lifecycle(srv, ctx, err);
}

json_t *tools__error(const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return mcp_text_result(text, (size_t)-1, true);
}

void tools__key_inputs(struct mcp_call *call, const json_t *args, struct sbx_key_inputs *in)
{
    memset(in, 0, sizeof(*in));
    in->sandbox_id = json_string_value(json_object_get(args, "sandbox_id"));
    mcp_call_key_inputs(call, &in->meta_thread_id, &in->header_thread_id, &in->session_id);
}

struct sbx_ref *tools__acquire(struct tools_ctx *ctx, struct mcp_call *call, const json_t *args,
                               json_t **error_result)
{
    struct sbx_ref *ref = NULL;
    struct ab_err err;
    ab_err_clear(&err);
    struct sbx_key_inputs in;
    tools__key_inputs(call, args, &in);
    enum sbx_key_source src = SBX_KEY_NONE;
    /* Rule 1, an explicit sandbox_id, is looked up and never created: a typo must not
     * silently start an empty sandbox. Rules 2-4 get-or-create the thread's sandbox. */
    ab_status rc = sbx_registry_acquire_for_call(ctx->registry, mcp_call_principal(call), &in,
                                                 NULL, &ref, &src, &err);
    if (src != SBX_KEY_SANDBOX_ID) {
        const char *key = NULL;
        sbx_resolve_key(&(struct sbx_key_inputs){NULL, in.meta_thread_id, in.header_thread_id,
                                                 in.session_id},
                        &key);
        mcp_call_annotate(call, "thread", key);
    }
    if (rc == AB_NOTFOUND && src == SBX_KEY_SANDBOX_ID) {
        *error_result = tools__error(
            "Error: sandbox '%s' not found. Use sandbox_list to see your sandboxes, or omit "
            "sandbox_id to use this conversation's own sandbox.",
            in.sandbox_id);
        return NULL;
    }
    if (rc) {
        AB_LOG_WARN("tools.acquire_failed", "tool=%s key=%s status=%s error=\"%s\"",
                    mcp_call_tool(call), sbx_key_source_name(src), ab_status_name(rc), err.msg);
        if (rc == AB_LIMIT || rc == AB_DENIED)
            *error_result = tools__error("Error: %s", err.msg);
        else
            *error_result = tools__error("Error: could not start a sandbox: %s", err.msg);
        return NULL;
    }
    mcp_call_annotate(call, "sandbox", sbx_ref_info(ref)->name);
    return ref;
}

json_t *tools__failure(struct sbx_ref *ref, const char *what, ab_status rc,
                       const struct ab_err *err)
{
    const char *msg = err && err->msg[0] ? err->msg : ab_status_name(rc);
    switch (rc) {
    case AB_SANDBOX:
        if (ref)
            sbx_ref_mark_broken(ref);
        return tools__error("Error: the sandbox failed while running %s (%s). It will be "
                            "restarted with its files intact on the next call; retry.",
                            what, msg);
    case AB_CANCELLED:
        return tools__error("Error: %s was cancelled.", what);
    case AB_TIMEOUT:
        return tools__error("Error: %s timed out (%s).", what, msg);
    case AB_BUSY:
        return tools__error("Error: the sandbox is busy (%s); retry in a moment.", msg);
    case AB_OK:
    case AB_NOMEM:
    case AB_INVAL:
    case AB_IO:
    case AB_LIMIT:
    case AB_PROTO:
    case AB_NOTFOUND:
    case AB_EXISTS:
    case AB_DENIED:
    case AB_ISDIR:
    case AB_NOTDIR:
    case AB_UNSUPPORTED:
    case AB_K8S:
    case AB_INTERNAL:
    case AB_STATUS_COUNT:
        break;
    }
    return tools__error("Error: %s failed: %s", what, msg);
}

json_t *tools__from_fsops(struct fsops_result *res)
{
    json_t *content = res->content;
    res->content = NULL;
    if (!content)
        content = json_pack("[o]", mcp_text_block(buf_cstr(&res->text), res->text.len));
    json_t *out = json_pack("{s:o}", "content", content);
    if (res->is_error)
        json_object_set_new(out, "isError", json_true());
    else if (res->structured) {
        json_object_set_new(out, "structuredContent", res->structured);
        res->structured = NULL;
    }
    return out;
}

/* The fsops policy seam: every resolved path goes through src/core/policy. */
static char *check_path(void *arg, enum fsops_access access, const char *abs_path)
{
    return policy_check_path(arg, access == FSOPS_ACCESS_WRITE ? POLICY_WRITE : POLICY_READ,
                             abs_path);
}

void tools__fsops_env(struct tools_ctx *ctx, struct mcp_call *call, struct sbx_ref *ref,
                      struct fsops_env *env)
{
    memset(env, 0, sizeof(*env));
    env->p = sbx_ref_provider(ref);
    env->h = sbx_ref_handle(ref);
    env->workspace = env->p->workspace ? env->p->workspace : ctx->cfg->local.workspace;
    env->limits = &ctx->cfg->tools;
    env->cancel = mcp_call_cancel(call);
    if (policy_active(ctx->policy)) {
        env->check_path = check_path;
        env->check_arg = ctx->policy;
        env->no_symlinks =
            (policy_refuses_symlinks(ctx->policy, POLICY_READ) ? 1u << FSOPS_ACCESS_READ : 0) |
            (policy_refuses_symlinks(ctx->policy, POLICY_WRITE) ? 1u << FSOPS_ACCESS_WRITE : 0);
    }
}
