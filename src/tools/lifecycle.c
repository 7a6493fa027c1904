/*
 * lifecycle.c - sandbox_create, sandbox_list, sandbox_info, sandbox_delete.
 *
 * Every operation is scoped to the caller's principal by the registry: another principal's
 * sandbox is "not found", with the same text as a sandbox that does not exist, so ids cannot
 * be probed (unlike the upstream agent-sandbox MCP server, where any session may delete any
 * sandbox).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "tools/internal.h"

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char t[40];
    ab_format_time(ms, t, sizeof(t));
    return json_string(t);
}

static int64_t expires_ms(const struct sbx_info *info)
{
    int64_t e = 0;
    if (info->ttl_s > 0 && info->created_ms > 0)
        e = info->created_ms + info->ttl_s * 1000;
    if (info->idle_ttl_s > 0) {
        int64_t last = info->last_used_ms > 0 ? info->last_used_ms : info->created_ms;
        int64_t idle = last + info->idle_ttl_s * 1000;
        if (last > 0 && (e == 0 || idle < e))
            e = idle;
    }
    return e;
}

static json_t *info_json(struct tools_ctx *ctx, const struct sbx_info *info)
{
    return json_pack("{s:s,s:s,s:o,s:O,s:o,s:o,s:I,s:I,s:o,s:b}", "sandbox_id", info->name,
                     "provider", ctx->provider->ops->kind, "thread_id",
                     info->thread_key ? json_string(info->thread_key) : json_null(), "labels",
                     info->labels ? info->labels : json_object(), "created",
                     time_or_null(info->created_ms), "last_used",
                     time_or_null(info->last_used_ms), "ttl_seconds", (json_int_t)info->ttl_s,
                     "idle_ttl_seconds", (json_int_t)info->idle_ttl_s, "expires",
                     time_or_null(expires_ms(info)), "warm_start", info->warm);
}

static void append_labels(struct buf *b, const json_t *labels)
{
    if (!labels || json_object_size(labels) == 0) {
        buf_append_str(b, "none");
        return;
    }
    const char *k;
    const json_t *v;
    bool first = true;
    json_object_foreach((json_t *)labels, k, v)
    {
        buf_printf(b, "%s%s=%s", first ? "" : ",", k, json_string_value(v));
        first = false;
    }
}

static void append_info_text(struct buf *b, const json_t *j)
{
    const char *keys[] = {"sandbox_id", "provider", "thread_id", "created", "last_used", "expires"};
    for (size_t i = 0; i < AB_ARRAY_LEN(keys); i++) {
        const json_t *v = json_object_get(j, keys[i]);
        if (json_is_string(v))
            buf_printf(b, "%s: %s\n", keys[i], json_string_value(v));
    }
    buf_printf(b, "ttl_seconds: %lld (0 = unlimited)\nidle_ttl_seconds: %lld (0 = never)\n",
               (long long)json_integer_value(json_object_get(j, "ttl_seconds")),
               (long long)json_integer_value(json_object_get(j, "idle_ttl_seconds")));
    buf_append_str(b, "labels: ");
    append_labels(b, json_object_get(j, "labels"));
    buf_printf(b, "\nwarm_start: %s\n",
               json_is_true(json_object_get(j, "warm_start")) ? "true" : "false");
}

static json_t *result(struct buf *text, json_t *structured)
{
    json_t *r = mcp_text_result(buf_cstr(text), text->len, false);
    json_object_set_new(r, "structuredContent", structured);
    buf_cleanup(text);
    return r;
}

static json_t *tool_create(struct mcp_call *call, const json_t *args, void *arg)
{
    struct tools_ctx *ctx = arg;
    struct ab_err err;
    ab_err_clear(&err);
    const json_t *labels = json_object_get(args, "labels");
    if (labels && sbx_labels_validate(labels, &err))
        return tools__error("Error: %s", err.msg);
    const json_t *ttl = json_object_get(args, "ttl_seconds");
    const json_t *idle = json_object_get(args, "idle_ttl_seconds");
    struct sbx_create_opts opts = {
        .labels = labels,
        .ttl_s = json_is_integer(ttl) ? json_integer_value(ttl) : -1,
        .idle_ttl_s = json_is_integer(idle) ? json_integer_value(idle) : -1,
    };
    const char *thread = json_string_value(json_object_get(args, "thread_id"));
    struct sbx_ref *ref = NULL;
    ab_status rc = sbx_registry_create(ctx->registry, mcp_call_principal(call), thread, &opts,
                                       &ref, &err);
    if (rc == AB_EXISTS)
        return tools__error("Error: thread '%s' already has a sandbox; calls carrying that "
                            "thread id use it already. Delete it first to start over.",
                            thread);
    if (rc == AB_LIMIT)
        mcp_call_annotate(call, "decision", "quota"); /* audit: a quota refused it */
    if (rc == AB_LIMIT || rc == AB_DENIED || rc == AB_INVAL)
        return tools__error("Error: %s", err.msg);
    if (rc)
        return tools__error("Error: could not create a sandbox: %s", err.msg);
    json_t *j = info_json(ctx, sbx_ref_info(ref));
    struct buf text;
    buf_init(&text, 1 << 16);
    buf_printf(&text, "Created sandbox %s (%s start). Pass sandbox_id=\"%s\" to the other tools "
                      "to work in it.\n",
               sbx_ref_info(ref)->name, sbx_ref_info(ref)->warm ? "warm" : "cold",
               sbx_ref_info(ref)->name);
    append_info_text(&text, j);
    sbx_ref_release(ref);
    return result(&text, j);
}

static json_t *tool_list(struct mcp_call *call, const json_t *args, void *arg)
{
    struct tools_ctx *ctx = arg;
    struct ab_err err;
    ab_err_clear(&err);
    const char *selector = json_string_value(json_object_get(args, "label_selector"));
    const char *cursor = json_string_value(json_object_get(args, "cursor"));
    const json_t *lim = json_object_get(args, "limit");
    size_t limit = json_is_integer(lim) ? (size_t)json_integer_value(lim) : 50;
    if (selector && sbx_selector_validate(selector, &err))
        return tools__error("Error: %s", err.msg);
    struct sbx_list_page page;
    memset(&page, 0, sizeof(page));
    ab_status rc = sbx_registry_list(ctx->registry, mcp_call_principal(call), selector, cursor,
                                     limit, &page, &err);
    if (rc == AB_INVAL)
        return tools__error("Error: %s", err.msg);
    if (rc)
        return tools__error("Error: could not list sandboxes: %s", err.msg);
    json_t *items = json_array();
    struct buf text;
    buf_init(&text, 1 << 20);
    if (page.n == 0)
        buf_append_str(&text, "No sandboxes found.");
    else
        buf_printf(&text, "%zu sandbox%s:", page.n, page.n == 1 ? "" : "es");
    for (size_t i = 0; i < page.n; i++) {
        json_t *j = info_json(ctx, &page.items[i]);
        buf_printf(&text, "\n- %s", page.items[i].name);
        if (page.items[i].thread_key)
            buf_printf(&text, " (thread %s)", page.items[i].thread_key);
        buf_append_str(&text, " labels: ");
        append_labels(&text, page.items[i].labels);
        const json_t *lu = json_object_get(j, "last_used");
        if (json_is_string(lu))
            buf_printf(&text, "; last used %s", json_string_value(lu));
        json_array_append_new(items, j);
    }
    if (page.next_cursor)
        buf_printf(&text, "\nMore sandboxes: call sandbox_list again with cursor=\"%s\".",
                   page.next_cursor);
    json_t *structured =
        json_pack("{s:o,s:o}", "sandboxes", items, "next_cursor",
                  page.next_cursor ? json_string(page.next_cursor) : json_null());
    sbx_list_page_cleanup(&page);
    return result(&text, structured);
}

static json_t *tool_info(struct mcp_call *call, const json_t *args, void *arg)
{
    struct tools_ctx *ctx = arg;
    json_t *out = NULL;
    struct sbx_ref *ref = tools__acquire(ctx, call, args, &out);
    if (!ref)
        return out;
    struct sbx_provider *p = sbx_ref_provider(ref);
    json_t *status = NULL;
    struct ab_err err;
    ab_err_clear(&err);
    if (p->ops->status(p, sbx_ref_handle(ref), &status, &err)) {
        out = tools__failure(ref, "sandbox_info", err.code ? err.code : AB_SANDBOX, &err);
        sbx_ref_release(ref);
        return out;
    }
    struct sbx_pool_status pool;
    memset(&pool, 0, sizeof(pool));
    sbx_registry_pool_status(ctx->registry, &pool);
    json_t *j = info_json(ctx, sbx_ref_info(ref));
    json_object_set_new(j, "status", json_is_object(status) ? status : json_object());
    if (!json_is_object(status))
        json_decref(status);
    json_object_set_new(j, "pool",
                        json_pack("{s:b,s:I,s:I,s:I,s:I}", "supported", pool.supported, "target",
                                  (json_int_t)pool.target, "ready", (json_int_t)pool.ready,
                                  "acquired_warm", (json_int_t)pool.acquired_warm,
                                  "acquired_cold", (json_int_t)pool.acquired_cold));
    struct buf text;
    buf_init(&text, 1 << 20);
    append_info_text(&text, j);
    const json_t *st = json_object_get(j, "status");
    const json_t *state = json_object_get(st, "state");
    if (json_is_string(state))
        buf_printf(&text, "state: %s\n", json_string_value(state));
    const json_t *limits = json_object_get(st, "limits");
    if (json_is_object(limits)) {
        char *l = json_dumps(limits, JSON_COMPACT);
        buf_printf(&text, "limits: %s\n", l ? l : "{}");
        free(l);
    }
    if (pool.supported)
        buf_printf(&text, "pool: %lld of %lld warm sandboxes ready (%llu warm / %llu cold "
                          "acquisitions)",
                   (long long)pool.ready, (long long)pool.target,
                   (unsigned long long)pool.acquired_warm, (unsigned long long)pool.acquired_cold);
    else
        buf_append_str(&text, "pool: none");
    sbx_ref_release(ref);
    return result(&text, j);
}

static json_t *tool_delete(struct mcp_call *call, const json_t *args, void *arg)
{
    struct tools_ctx *ctx = arg;
    struct ab_err err;
    ab_err_clear(&err);
    const char *principal = mcp_call_principal(call);
    struct sbx_key_inputs in;
    tools__key_inputs(call, args, &in);
    const char *key = NULL;
    /* Without sandbox_id: the thread's sandbox, by its deterministic name (never created). */
    enum sbx_key_source src = sbx_resolve_key(&in, &key);
    const char *sid = src == SBX_KEY_SANDBOX_ID ? key : NULL;
    char *name = sid ? ab_strdup(sid) : sbx_name_for(principal, key ? key : "");
    ab_status rc = sbx_registry_delete(ctx->registry, principal, name, &err);
    json_t *out;
    if (rc == AB_NOTFOUND) {
        if (sid)
            out = tools__error("Error: sandbox '%s' not found. Use sandbox_list to see your "
                               "sandboxes.",
                               sid);
        else
            out = tools__error("Error: this conversation has no sandbox to delete.");
    } else if (rc) {
        out = tools__error("Error: could not delete sandbox %s: %s", name, err.msg);
    } else {
        struct buf text;
        buf_init(&text, 1024);
        buf_printf(&text, "Deleted sandbox %s and everything in it.", name);
        out = result(&text, json_pack("{s:s,s:b}", "sandbox_id", name, "deleted", 1));
    }
    free(name);
    return out;
}

ab_status tools__register_lifecycle(struct mcp_server *srv, struct tools_ctx *ctx,
                                    struct ab_err *err)
{
    ab_status rc;
    if ((rc = tools__add(srv, ctx, "sandbox_create", tool_create, err)) ||
        (rc = tools__add(srv, ctx, "sandbox_list", tool_list, err)) ||
        (rc = tools__add(srv, ctx, "sandbox_info", tool_info, err)))
        return rc;
    return tools__add(srv, ctx, "sandbox_delete", tool_delete, err);
}
