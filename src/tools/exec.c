/*
 * exec.c - the command tools: execute {command, timeout?, workdir?, env?} and
 * execute_python {code, timeout?, files?}.
 *
 * Both run through the provider's exec primitive (sandbox.h): execute as `sh -c command`,
 * execute_python as argv {python3, "-"} with the code on stdin, so source code is never
 * spliced into a shell string. The text is deepagents' execute text (fsops_format_execute).
 *
 * Streaming: when the request carries a progressToken, output is forwarded as
 * notifications/progress while the command runs (progress = bytes so far, message = the
 * chunk as text). Past the output cap no text is sent, only a sign of life at most once a
 * second (or per MiB seen), so a flood cannot turn into a flood of notifications. Cancellation
 * (notifications/cancelled) fires the call's cancel token, which the provider turns into a
 * kill of the command's process group.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "core/paths.h"
#include "tools/internal.h"

struct stream_state {
    struct mcp_call *call;
    uint64_t total;       /* bytes seen */
    uint64_t streamed;    /* bytes sent as progress messages */
    uint64_t cap;         /* stop sending text beyond this */
    uint64_t next_report; /* past the cap: next byte count to report */
    int64_t last_report_ms; /* past the cap: when the last count was reported */
    struct buf carry;     /* an incomplete UTF-8 sequence held for the next chunk */
};

static void stream_output(void *arg, const char *data, size_t len)
{
    struct stream_state *st = arg;
    st->total += len;
    if (st->streamed >= st->cap) {
        /* Past the cap the provider may drop most of the output itself (the local helper
         * forwards only a sign of life every 250 ms), so bytes alone would rarely reach
         * the next MiB: report at least once a second while output keeps coming, so a
         * client's request timeout (reset on progress) does not fire on a long, chatty
         * command (found by tests/security/test_flood). */
        int64_t now = ab_mono_ms();
        if (st->total >= st->next_report || now - st->last_report_ms >= 1000) {
            st->last_report_ms = now;
            /* (No byte count in the text: what was dropped before reaching us is unknown.) */
            mcp_call_progress(st->call, (double)st->total, 0,
                              "[output limit reached; the command is still writing output, "
                              "which is dropped]");
            st->next_report = st->total + (1u << 20);
        }
        return;
    }
    /* Send whole UTF-8 characters only: keep a split sequence for the next chunk. */
    struct buf text;
    buf_init(&text, st->carry.len + len + 1);
    buf_append(&text, st->carry.data ? st->carry.data : "", st->carry.len);
    buf_append(&text, data, len);
    buf_reset(&st->carry);
    size_t whole = ab_utf8_trim_len(text.data, text.len);
    if (whole < text.len && text.len - whole < 4)
        buf_append(&st->carry, text.data + whole, text.len - whole);
    else
        whole = text.len;
    if (whole > st->cap - st->streamed)
        whole = ab_utf8_trim_len(text.data, (size_t)(st->cap - st->streamed));
    if (whole > 0) {
        /* Invalid UTF-8 (binary output) becomes U+FFFD in the JSON message. */
        text.data[whole] = '\0';
        char *valid = NULL;
        if (!ab_utf8_valid(text.data, whole)) {
            struct buf fixed;
            buf_init(&fixed, whole * 3 + 1);
            for (size_t i = 0; i < whole;) {
                size_t n = 1;
                unsigned char c = (unsigned char)text.data[i];
                if (c >= 0xC0)
                    n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
                if (c < 0x80 || (i + n <= whole && ab_utf8_valid(text.data + i, n))) {
                    buf_append(&fixed, text.data + i, c < 0x80 ? 1 : n);
                    i += c < 0x80 ? 1 : n;
                } else {
                    buf_append_str(&fixed, "\xEF\xBF\xBD");
                    i++;
                }
            }
            valid = buf_steal(&fixed, NULL);
        }
        st->streamed += whole;
        mcp_call_progress(st->call, (double)st->total, 0, valid ? valid : text.data);
        free(valid);
        if (st->streamed >= st->cap)
            st->next_report = st->total + (1u << 20);
    }
    buf_cleanup(&text);
}

/* The effective timeout in seconds, or NULL with *error_result set. */
static bool effective_timeout(struct tools_ctx *ctx, const json_t *args, int64_t *out_s,
                              bool *custom, json_t **error_result)
{
    const json_t *t = json_object_get(args, "timeout");
    const struct cfg_tools *lim = &ctx->cfg->tools;
    *custom = false;
    if (!t || json_is_null(t)) {
        *out_s = lim->execute_timeout_s;
        return true;
    }
    int64_t v = (int64_t)json_number_value(t);
    char *why = fsops_execute_timeout_error(v, lim->execute_max_timeout_s);
    if (why) {
        *error_result = mcp_text_result(why, (size_t)-1, true);
        free(why);
        return false;
    }
    *custom = true;
    /* 0: "no timeout" in deepagents; here the largest timeout the operator allows. */
    *out_s = v == 0 ? lim->execute_max_timeout_s : v;
    return true;
}

static bool env_name_ok(const char *name)
{
    if (!*name || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return true;
}

/* The command policy (src/core/policy): NULL to go ahead, else the result to return. An
 * "ask" rule asks the human through MCP elicitation (elicitation/create) and waits. */
static json_t *command_gate(struct tools_ctx *ctx, struct mcp_call *call, const char *kind,
                            const char *text, size_t len)
{
    char *t = NULL;
    enum policy_decision d = policy_check_command(ctx->policy, text, len, &t);
    if (d == POLICY_ALLOW) {
        mcp_call_annotate(call, "decision", "allow");
        return NULL;
    }
    json_t *out = NULL;
    if (d == POLICY_DENY) {
        mcp_call_annotate(call, "decision", "deny");
        out = mcp_text_result(t, (size_t)-1, true);
        free(t);
        return out;
    }
    /* POLICY_ASK: t is the matching pattern. */
    char *refusal = NULL;
    if (!mcp_call_client_can(call, "elicitation")) {
        mcp_call_annotate(call, "decision", "ask:unavailable");
        refusal = policy_ask_refusal(t, "this client cannot ask the user (it does not support "
                                        "MCP elicitation)");
    } else {
        char shown[2048];
        snprintf(shown, sizeof(shown), "%.*s%s", (int)AB_MIN(len, 1800), text,
                 len > 1800 ? "\n[...]" : "");
        char *message = ab_asprintf("The agent wants to run %s that needs your approval (it "
                                    "matches the rule '%s'):\n\n%s\n\nAllow it to run?",
                                    kind, t, shown);
        json_t *params = json_pack(
            "{s:s,s:{s:s,s:{s:{s:s,s:s,s:s,s:b}},s:[]}}", "message", message ? message : kind,
            "requestedSchema", "type", "object", "properties", "approve", "type", "boolean",
            "title", "Run it", "description", "Leave checked and accept to run it", "default",
            1, "required");
        free(message);
        json_t *answer = NULL;
        struct ab_err err;
        ab_err_clear(&err);
        ab_status rc = mcp_call_request(call, "elicitation/create", params,
                                        ctx->cfg->policy.ask_timeout_s * 1000, &answer, &err);
        const char *action = answer ? json_string_value(json_object_get(answer, "action")) : NULL;
        const json_t *approve = json_object_get(json_object_get(answer, "content"), "approve");
        if (rc == AB_OK && action && strcmp(action, "accept") == 0 && !json_is_false(approve)) {
            mcp_call_annotate(call, "decision", "ask:accept");
        } else if (rc == AB_OK && action && strcmp(action, "accept") == 0) {
            mcp_call_annotate(call, "decision", "ask:decline");
            refusal = policy_ask_refusal(t, "the user did not approve it");
        } else if (rc == AB_OK && action && strcmp(action, "decline") == 0) {
            mcp_call_annotate(call, "decision", "ask:decline");
            refusal = policy_ask_refusal(t, "the user declined");
        } else if (rc == AB_OK) {
            mcp_call_annotate(call, "decision", "ask:cancel");
            refusal = policy_ask_refusal(t, "the user dismissed the request");
        } else if (rc == AB_TIMEOUT) {
            mcp_call_annotate(call, "decision", "ask:timeout");
            refusal = policy_ask_refusal(t, "the user did not answer in time");
        } else {
            mcp_call_annotate(call, "decision", "ask:error");
            char why[1200];
            snprintf(why, sizeof(why), "asking the user failed (%s)", err.msg);
            refusal = policy_ask_refusal(t, why);
        }
        json_decref(answer);
    }
    free(t);
    if (refusal) {
        out = mcp_text_result(refusal, (size_t)-1, true);
        free(refusal);
    }
    return out;
}

/* Run req in ref's sandbox and format the execute text. */
static json_t *run_and_format(struct tools_ctx *ctx, struct mcp_call *call, struct sbx_ref *ref,
                              struct sbx_exec_req *req, int64_t timeout_s, bool custom,
                              const char *what)
{
    struct stream_state st = {.call = call, .cap = ctx->cfg->tools.execute_max_output_bytes};
    buf_init(&st.carry, 8);
    if (mcp_call_has_progress(call)) {
        req->on_output = stream_output;
        req->on_output_arg = &st;
    }
    req->timeout_ms = timeout_s * 1000;
    req->output_cap = ctx->cfg->tools.execute_max_output_bytes;
    req->cancel = mcp_call_cancel(call);

    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    struct ab_err err;
    ab_err_clear(&err);
    struct sbx_provider *p = sbx_ref_provider(ref);
    ab_status rc = p->ops->exec(p, sbx_ref_handle(ref), req, &res, &err);
    json_t *out;
    if (rc) {
        out = tools__failure(ref, what, rc, &err);
    } else {
        struct fsops_exec_outcome o = {
            .output = buf_cstr(&res.output),
            .output_len = res.output.len,
            .exit_code = res.exit_code,
            .exit_code_known = true,
            .truncated = res.truncated,
            .timed_out = res.timed_out,
            .timeout_s = timeout_s,
            .custom_timeout = custom,
        };
        struct fsops_result fr;
        fsops_result_init(&fr);
        if (fsops_format_execute(&o, &fr) == AB_OK)
            out = tools__from_fsops(&fr);
        else
            out = tools__error("Error: out of memory formatting the output");
        fsops_result_cleanup(&fr);
    }
    sbx_exec_result_cleanup(&res);
    buf_cleanup(&st.carry);
    return out;
}

/* What execute and execute_python check before they touch a sandbox, in this order: the
 * timeout argument, a NUL byte in args[field] (refused with nul_error when that is not
 * NULL), then the command policy on args[field] (`kind` names it to the user). NULL to go
 * on, with *timeout_s and *custom set; otherwise the result to return (new). */
static json_t *exec_preflight(struct tools_ctx *ctx, struct mcp_call *call, const json_t *args,
                              const char *field, const char *kind, const char *nul_error,
                              int64_t *timeout_s, bool *custom)
{
    json_t *out = NULL;
    if (!effective_timeout(ctx, args, timeout_s, custom, &out))
        return out;
    const json_t *text = json_object_get(args, field);
    if (nul_error && memchr(json_string_value(text), '\0', json_string_length(text)))
        return tools__error("%s", nul_error);
    return command_gate(ctx, call, kind, json_string_value(text), json_string_length(text));
}

static json_t *tool_execute(struct mcp_call *call, const json_t *args, void *arg)
{
    struct tools_ctx *ctx = arg;
    int64_t timeout_s;
    bool custom;
    json_t *out = exec_preflight(ctx, call, args, "command", "a command",
                                 "Error: the command contains a NUL byte, which a shell cannot "
                                 "run.",
                                 &timeout_s, &custom);
    if (out)
        return out;
    const json_t *cmd = json_object_get(args, "command");

    /* workdir: resolved like any tool path (relative = under the workspace). */
    const struct sbx_provider *prov = ctx->provider;
    const char *workspace = prov && prov->workspace ? prov->workspace : ctx->cfg->local.workspace;
    char *cwd = NULL;
    const json_t *wd = json_object_get(args, "workdir");
    if (json_is_string(wd)) {
        char *why = NULL;
        if (paths_resolve(json_string_value(wd), json_string_length(wd), workspace, &cwd, &why)) {
            out = tools__error("Error: %s", why ? why : "invalid workdir");
            free(why);
            return out;
        }
        char *refusal = policy_check_path(ctx->policy, POLICY_READ, cwd);
        if (refusal) {
            mcp_call_annotate(call, "decision", "deny");
            out = mcp_text_result(refusal, (size_t)-1, true);
            free(refusal);
            free(cwd);
            return out;
        }
    }

    /* env: validated names, then NAME=value strings. */
    const json_t *env = json_object_get(args, "env");
    size_t nenv = json_is_object(env) ? json_object_size(env) : 0;
    char **envv = calloc(nenv + 1, sizeof(char *));
    size_t k = 0;
    if (nenv) {
        const char *name;
        const json_t *val;
        json_object_foreach((json_t *)env, name, val)
        {
            if (!env_name_ok(name) || memchr(json_string_value(val), '\0', json_string_length(val))) {
                out = tools__error("Error: invalid environment variable name '%s' (use letters, "
                                   "digits and '_', not starting with a digit)",
                                   name);
                goto out;
            }
            envv[k++] = ab_asprintf("%s=%s", name, json_string_value(val));
        }
    }

    struct sbx_ref *ref = tools__acquire(ctx, call, args, &out);
    if (!ref)
        goto out;
    struct sbx_exec_req req = {
        .argv = NULL,
        .shell = json_string_value(cmd),
        .cwd = cwd,
        .env = (const char *const *)envv,
    };
    out = run_and_format(ctx, call, ref, &req, timeout_s, custom, "the command");
    sbx_ref_release(ref);
out:
    for (size_t i = 0; i < k; i++)
        free(envv[i]);
    free(envv);
    free(cwd);
    return out;
}

/* Does the interpreter exist in the sandbox? (A clear error beats "exit code 127".) */
static bool python_present(struct sbx_provider *p, struct sbx_handle *h, const char *python)
{
    struct sbx_stat st;
    struct ab_err err;
    if (strchr(python, '/'))
        return p->ops->stat(p, h, python, &st, &err) == AB_OK;
    static const char *const dirs[] = {"/usr/local/bin", "/usr/bin", "/bin", "/opt/conda/bin"};
    for (size_t i = 0; i < AB_ARRAY_LEN(dirs); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dirs[i], python);
        if (p->ops->stat(p, h, path, &st, &err) == AB_OK)
            return true;
    }
    return false;
}

static json_t *tool_execute_python(struct mcp_call *call, const json_t *args, void *arg)
{
    struct tools_ctx *ctx = arg;
    int64_t timeout_s;
    bool custom;
    json_t *out = exec_preflight(ctx, call, args, "code", "Python code", NULL, &timeout_s, &custom);
    if (out)
        return out;
    const json_t *code = json_object_get(args, "code");
    struct sbx_ref *ref = tools__acquire(ctx, call, args, &out);
    if (!ref)
        return out;
    struct sbx_provider *p = sbx_ref_provider(ref);
    const char *python = ctx->cfg->tools.python;

    if (!python_present(p, sbx_ref_handle(ref), python)) {
        out = tools__error("Error: %s is not installed in this sandbox, so execute_python cannot "
                           "run. Use execute with another interpreter, or ask the operator to "
                           "provide Python 3 (tools.python sets the interpreter).",
                           python);
        goto out;
    }

    /* Seed files first: any failure stops before the code runs. */
    const json_t *files = json_object_get(args, "files");
    if (json_is_object(files) && json_object_size(files) > 0) {
        size_t n = json_object_size(files), i = 0;
        struct fsops_upload_file *up = calloc(n, sizeof(*up));
        const char *path;
        const json_t *val;
        json_object_foreach((json_t *)files, path, val)
        {
            up[i].path = fsops_cstr(path);
            if (json_is_string(val)) {
                up[i].content = (struct fsops_str){json_string_value(val), json_string_length(val)};
            } else {
                const json_t *b = json_object_get(val, "content_base64");
                up[i].content_base64 = (struct fsops_str){json_string_value(b),
                                                          json_string_length(b)};
            }
            i++;
        }
        struct fsops_env env;
        tools__fsops_env(ctx, call, ref, &env);
        struct fsops_result fr;
        fsops_result_init(&fr);
        struct ab_err err;
        ab_err_clear(&err);
        ab_status rc = fsops_upload(&env, up, n, &fr, &err);
        free(up);
        if (fr.refused)
            mcp_call_annotate(call, "decision", "deny");
        if (rc) {
            out = tools__failure(ref, "writing the files", rc, &err);
            fsops_result_cleanup(&fr);
            goto out;
        }
        /* Report the first per-file error, if any. */
        const json_t *list = json_object_get(fr.structured, "files");
        size_t j;
        const json_t *f;
        json_array_foreach(list, j, f)
        {
            const json_t *e = json_object_get(f, "error");
            if (json_is_string(e)) {
                out = tools__error("Error: could not write file '%s' before running the code: %s",
                                   json_string_value(json_object_get(f, "path")),
                                   json_string_value(e));
                break;
            }
        }
        if (fr.is_error && !out)
            out = tools__from_fsops(&fr);
        fsops_result_cleanup(&fr);
        if (out)
            goto out;
    }

    /* "-" reads the program from stdin; -u keeps output in arrival order with stderr. */
    const char *argv[] = {python, "-u", "-", NULL};
    struct sbx_exec_req req = {
        .argv = argv,
        .stdin_data = json_string_value(code),
        .stdin_len = json_string_length(code),
    };
    out = run_and_format(ctx, call, ref, &req, timeout_s, custom, "the Python code");
out:
    sbx_ref_release(ref);
    return out;
}

ab_status tools__register_exec(struct mcp_server *srv, struct tools_ctx *ctx, struct ab_err *err)
{
    ab_status rc = tools__add(srv, ctx, "execute", tool_execute, err);
    if (!rc)
        rc = tools__add(srv, ctx, "execute_python", tool_execute_python, err);
    return rc;
}
