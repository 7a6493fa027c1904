/*
 * config.c - the key table and the loaders (defaults, YAML via libyaml, environment, --set).
 *
 * Design: one static table lists every key with its type, the offset of its field in struct
 * config, its default (as the same text a user would write in YAML) and a one-line doc. All
 * sources go through one conversion function (set_from_text), so "300", "5m" or "16MiB" mean
 * the same everywhere. Nested YAML mappings flatten into dotted paths ("http.listen").
 *
 * Rejected: a generic YAML->JSON->struct mapping; it loses line numbers, which users need when
 * a key is wrong, and would accept typos silently. Unknown keys are errors here.
 */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "base/util.h"

extern char **environ;

enum cfg_type {
    T_STR,
    T_ENUM, /* T_STR restricted to a '|'-separated set */
    T_BOOL,
    T_INT,
    T_SIZE,     /* bytes, with optional unit suffix */
    T_DURATION, /* seconds, with optional s/m/h/d suffix */
    T_DOUBLE,
    T_STRLIST,
    T_TOKENS, /* list of {token, principal} */
    T_SECRET, /* T_STR that is never printed (`agentbox config` shows <redacted>) */
};

struct cfg_key {
    const char *path;
    enum cfg_type type;
    size_t offset;
    const char *def;   /* default, as YAML text; "" = empty */
    const char *extra; /* T_ENUM: allowed values "a|b|c" */
    const char *doc;
};

#define OFF(field) offsetof(struct config, field)

static const struct cfg_key keys[] = {
    {"state_dir", T_STR, OFF(state_dir), "", NULL,
     "where sandbox workspaces and state live; empty = /var/lib/agentbox as root, else "
     "$XDG_STATE_HOME/agentbox (~/.local/state/agentbox)"},
    {"log.level", T_ENUM, OFF(log.level), "info", "debug|info|warn|error", "server log level"},
    {"log.format", T_ENUM, OFF(log.format), "human", "human|json",
     "server log format on stderr: human, or one JSON object per line"},
    {"stdio.max_line_bytes", T_SIZE, OFF(stdio.max_line_bytes), "16MiB", NULL,
     "longest JSON-RPC line accepted on stdin; longer lines get an error response"},
    {"stdio.thread_key", T_STR, OFF(stdio.thread_key), "", NULL,
     "thread key of the stdio session (its default sandbox); empty = a new key per server "
     "process. Set it (e.g. to a project name) to keep one sandbox across restarts"},
    {"mcp.page_size", T_INT, OFF(mcp.page_size), "100", NULL,
     "items per page in tools/list and other paginated lists"},
    {"mcp.max_inflight", T_INT, OFF(mcp.max_inflight), "4096", NULL,
     "tool calls running at once, server-wide; more get a busy error"},
    {"mcp.instructions", T_STR, OFF(mcp.instructions), "", NULL,
     "instructions sent to clients at initialize; empty = a built-in description"},
    {"http.listen", T_STR, OFF(http.listen), "127.0.0.1:8080", NULL,
     "ADDR:PORT for Streamable HTTP (used by `serve --http` without an address)"},
    {"http.path", T_STR, OFF(http.path), "/mcp", NULL, "the MCP endpoint path"},
    {"http.allowed_origins", T_STRLIST, OFF(http.allowed_origins), "", NULL,
     "Origin values accepted besides http(s)://localhost, 127.0.0.1 and [::1] (any port)"},
    {"http.allowed_hosts", T_STRLIST, OFF(http.allowed_hosts), "", NULL,
     "Host values accepted besides localhost, 127.0.0.1 and [::1]; when bound to a "
     "non-loopback address, the Host check is off unless this list is set"},
    {"http.max_body_bytes", T_SIZE, OFF(http.max_body_bytes), "16MiB", NULL,
     "largest POST body; larger requests get 413"},
    {"http.session_idle_timeout", T_DURATION, OFF(http.session_idle_timeout_s), "1h", NULL,
     "an HTTP session unused this long is closed (its sandboxes are kept)"},
    {"http.max_sessions", T_INT, OFF(http.max_sessions), "10000", NULL,
     "most concurrent HTTP sessions"},
    {"http.sse_keepalive", T_DURATION, OFF(http.sse_keepalive_s), "15s", NULL,
     "interval of SSE keep-alive comments on open streams"},
    {"http.sse_retry_ms", T_INT, OFF(http.sse_retry_ms), "1000", NULL,
     "reconnection delay advertised to clients in SSE `retry:` fields"},
    {"http.sse_replay_events", T_INT, OFF(http.sse_replay_events), "1024", NULL,
     "events kept per session for Last-Event-ID resumption"},
    {"http.sse_replay_bytes", T_SIZE, OFF(http.sse_replay_bytes), "4MiB", NULL,
     "bytes kept per session for Last-Event-ID resumption (larger events are not replayable)"},
    {"http.json_response", T_BOOL, OFF(http.json_response), "false", NULL,
     "answer requests with a single application/json body instead of an SSE stream "
     "(notifications during a call are then not streamed)"},
    {"http.allow_insecure_bind", T_BOOL, OFF(http.allow_insecure_bind), "false", NULL,
     "allow binding a non-loopback address without auth tokens (not recommended)"},
    {"http.shutdown_grace", T_DURATION, OFF(http.shutdown_grace_s), "30s", NULL,
     "on SIGTERM, how long in-flight calls may finish before the server exits"},
    {"auth.tokens", T_TOKENS, OFF(auth), "", NULL,
     "bearer tokens, each `{token: ..., principal: ...}`; AGENTBOX_TOKEN adds one for "
     "principal \"default\""},
    {"auth.token_file", T_STR, OFF(auth.token_file), "", NULL,
     "file of `TOKEN [PRINCIPAL]` lines, re-read on SIGHUP"},
    {"sandbox.provider", T_ENUM, OFF(sandbox.provider), "local", "local|agent-sandbox",
     "where sandboxes run: local Linux namespaces, or Kubernetes agent-sandbox"},
    {"sandbox.ttl", T_DURATION, OFF(sandbox.ttl_s), "0", NULL,
     "absolute lifetime of a sandbox from creation; 0 = unlimited"},
    {"sandbox.idle_ttl", T_DURATION, OFF(sandbox.idle_ttl_s), "24h", NULL,
     "a sandbox unused this long is deleted; 0 = never"},
    {"sandbox.reap_interval", T_DURATION, OFF(sandbox.reap_interval_s), "30s", NULL,
     "how often expired sandboxes are looked for"},
    {"sandbox.create_timeout", T_DURATION, OFF(sandbox.create_timeout_s), "120s", NULL,
     "give up creating a sandbox after this long"},
    {"sandbox.pool.size", T_INT, OFF(sandbox.pool.size), "2", NULL,
     "warm sandboxes kept ready (local provider); 0 disables the pool"},
    {"local.workspace", T_STR, OFF(local.workspace), "/workspace", NULL,
     "the writable workspace inside each sandbox (also the working directory)"},
    {"local.network", T_ENUM, OFF(local.network), "none", "none|host",
     "none: loopback only inside the sandbox; host: share the host network"},
    {"local.user_namespace", T_ENUM, OFF(local.user_namespace), "auto", "auto|always|never",
     "create a user namespace: auto = when not running as root"},
    {"local.uid", T_INT, OFF(local.uid), "1000", NULL,
     "uid and gid that commands run as inside the sandbox"},
    {"local.ro_binds", T_STRLIST, OFF(local.ro_binds), "", NULL,
     "extra host directories bound read-only at the same path (e.g. /opt/tools)"},
    {"local.seccomp", T_ENUM, OFF(local.seccomp), "default", "default|off",
     "the syscall filter; off only for debugging"},
    {"local.recreate_on_death", T_BOOL, OFF(local.recreate_on_death), "true", NULL,
     "when a sandbox's helper dies, restart it transparently (workspace kept); false = "
     "report an error to the next call"},
    {"local.limits.memory", T_SIZE, OFF(local.limits.memory_bytes), "1GiB", NULL,
     "memory limit per sandbox (cgroup); 0 = none"},
    {"local.limits.pids", T_INT, OFF(local.limits.pids), "256", NULL,
     "process limit per sandbox (cgroup pids, RLIMIT_NPROC)"},
    {"local.limits.cpus", T_DOUBLE, OFF(local.limits.cpus), "1", NULL,
     "CPU quota per sandbox in CPUs (cgroup); 0 = none"},
    {"local.limits.nofile", T_INT, OFF(local.limits.nofile), "1024", NULL,
     "open files per process (RLIMIT_NOFILE)"},
    {"local.limits.file_size", T_SIZE, OFF(local.limits.file_size_bytes), "1GiB", NULL,
     "largest file a command may write (RLIMIT_FSIZE)"},
    {"local.limits.cpu_seconds", T_INT, OFF(local.limits.cpu_seconds), "0", NULL,
     "CPU seconds per command (RLIMIT_CPU); 0 = none"},
    {"local.limits.tmp_size", T_SIZE, OFF(local.limits.tmp_bytes), "256MiB", NULL,
     "size of each sandbox's /tmp (tmpfs)"},
    {"tools.execute.timeout", T_DURATION, OFF(tools.execute_timeout_s), "300s", NULL,
     "default timeout of execute and execute_python"},
    {"tools.execute.max_timeout", T_DURATION, OFF(tools.execute_max_timeout_s), "3600s", NULL,
     "largest timeout a call may request"},
    {"tools.execute.max_output", T_SIZE, OFF(tools.execute_max_output_bytes), "1MiB", NULL,
     "output kept per command; the rest is dropped and the result says truncated"},
    {"tools.read.max_bytes", T_SIZE, OFF(tools.read_max_bytes), "64MiB", NULL,
     "largest text file read and edit will load"},
    {"tools.read.max_binary_bytes", T_SIZE, OFF(tools.read_max_binary_bytes), "500KiB", NULL,
     "largest image/audio/binary file read returns as a content block"},
    {"tools.upload.max_bytes", T_SIZE, OFF(tools.upload_max_bytes), "64MiB", NULL,
     "largest file upload accepts"},
    {"tools.download.max_bytes", T_SIZE, OFF(tools.download_max_bytes), "64MiB", NULL,
     "largest file download returns"},
    {"tools.grep.max_count", T_INT, OFF(tools.grep_max_count), "1000", NULL,
     "default cap on grep matches"},
    {"tools.glob.max_matches", T_INT, OFF(tools.glob_max_matches), "10000", NULL,
     "cap on glob results"},
    {"tools.python", T_STR, OFF(tools.python), "python3", NULL,
     "interpreter execute_python runs inside the sandbox"},
    {"policy.allow_write_prefixes", T_STRLIST, OFF(policy.allow_write_prefixes), "", NULL,
     "if set, write/edit/upload may only create or change files under these directories"},
    {"policy.deny_prefixes", T_STRLIST, OFF(policy.deny_prefixes), "", NULL,
     "write/edit/upload are refused under these directories"},
    {"policy.virtual_root", T_STR, OFF(policy.virtual_root), "", NULL,
     "if set (e.g. /workspace), every file tool path and workdir must lie under it"},
    {"policy.deny_commands", T_STRLIST, OFF(policy.deny_commands), "", NULL,
     "execute/execute_python are refused when the command or code contains one of these "
     "(a substring, or a glob pattern when it has * ? or [)"},
    {"policy.ask_commands", T_STRLIST, OFF(policy.ask_commands), "", NULL,
     "commands matching these patterns run only after the user approves them through MCP "
     "elicitation"},
    {"policy.ask_timeout", T_DURATION, OFF(policy.ask_timeout_s), "120s", NULL,
     "how long to wait for the user's answer to an approval request"},
    {"audit.path", T_STR, OFF(audit.path), "", NULL,
     "audit log of every tool call as JSON lines: empty = off, - = stderr, else a file"},
    {"audit.max_bytes", T_SIZE, OFF(audit.max_bytes), "64MiB", NULL,
     "rotate the audit file when it grows beyond this size"},
    {"audit.keep", T_INT, OFF(audit.keep), "5", NULL, "rotated audit files kept (FILE.1 ...)"},
    {"quotas.max_sandboxes", T_INT, OFF(quotas.max_sandboxes), "0", NULL,
     "live sandboxes per principal; 0 = unlimited"},
    {"quotas.max_concurrent_calls", T_INT, OFF(quotas.max_concurrent_calls), "0", NULL,
     "tool calls running at once per principal; 0 = unlimited"},
    {"quotas.max_request_bytes", T_SIZE, OFF(quotas.max_request_bytes), "0", NULL,
     "largest HTTP request body a principal may send (413 naming the quota beyond it); 0 = "
     "only http.max_body_bytes applies"},
    {"k8s.kubeconfig", T_STR, OFF(k8s.kubeconfig), "", NULL,
     "kubeconfig path; empty = $KUBECONFIG, ~/.kube/config, then the in-cluster account"},
    {"k8s.context", T_STR, OFF(k8s.context), "", NULL, "kubeconfig context; empty = current"},
    {"k8s.namespace", T_STR, OFF(k8s.namespace), "default", NULL,
     "namespace of SandboxClaims"},
    {"k8s.api_version", T_ENUM, OFF(k8s.api_version), "auto", "auto|v1beta1|v1alpha1",
     "agent-sandbox API: v1beta1 (>= 0.5), v1alpha1 (<= 0.4), or discover"},
    {"k8s.template", T_STR, OFF(k8s.template_name), "python-sandbox-template", NULL,
     "SandboxTemplate to claim from"},
    {"k8s.warm_pool", T_STR, OFF(k8s.warm_pool), "", NULL,
     "SandboxWarmPool to adopt from; empty = none"},
    {"k8s.connection", T_ENUM, OFF(k8s.connection), "direct",
     "direct|gateway|in-cluster|tunnel",
     "how the runtime is reached: router URL, Gateway address, pod IP, or kubectl port-forward"},
    {"k8s.router_url", T_STR, OFF(k8s.router_url), "", NULL, "sandbox-router URL (direct mode)"},
    {"k8s.gateway_name", T_STR, OFF(k8s.gateway_name), "", NULL, "Gateway (gateway mode)"},
    {"k8s.gateway_namespace", T_STR, OFF(k8s.gateway_namespace), "default", NULL,
     "Gateway namespace"},
    {"k8s.server_port", T_INT, OFF(k8s.server_port), "8888", NULL,
     "port of the runtime inside the sandbox pod"},
    {"k8s.send_pod_ip", T_BOOL, OFF(k8s.send_pod_ip), "true", NULL,
     "send X-Sandbox-Pod-IP so routers can reach warm-pool pods without a Service"},
    {"k8s.ready_timeout", T_DURATION, OFF(k8s.ready_timeout_s), "180s", NULL,
     "wait this long for a claim to become Ready"},
    {"k8s.request_timeout", T_DURATION, OFF(k8s.request_timeout_s), "30s", NULL,
     "timeout of one Kubernetes API request"},
    {"k8s.kubectl", T_STR, OFF(k8s.kubectl), "kubectl", NULL, "kubectl binary (tunnel mode)"},
    {"k8s.workspace", T_STR, OFF(k8s.workspace), "/app", NULL,
     "the sandbox runtime's base directory in the pod (SANDBOX_BASE_DIR), where file tools "
     "work"},
    {"k8s.gateway_port", T_INT, OFF(k8s.gateway_port), "80", NULL,
     "port of the Gateway's HTTP listener (gateway mode)"},
    {"k8s.runtime_api", T_ENUM, OFF(k8s.runtime_api), "auto",
     "auto|python-runtime|agentbox-runtime",
     "runtime in the sandbox pods: auto-detect, the upstream python-runtime API only, or "
     "agentbox-runtime with its streaming extensions"},
    {"k8s.router_namespace", T_STR, OFF(k8s.router_namespace), "agent-sandbox-system", NULL,
     "namespace of svc/sandbox-router-svc that tunnel mode port-forwards to"},
    {"k8s.router_token", T_SECRET, OFF(k8s.router_token), "", NULL,
     "bearer token for the sandbox-router (its ROUTER_AUTH_TOKEN), sent on every runtime "
     "request that goes through the router (direct, gateway and tunnel modes); never sent to "
     "pod IPs or the API server. Prefer k8s.router_token_file"},
    {"k8s.router_token_file", T_STR, OFF(k8s.router_token_file), "", NULL,
     "file holding the sandbox-router's bearer token (e.g. a mounted Secret), re-read when it "
     "changes; set this or k8s.router_token, not both"},
};

#define NKEYS AB_ARRAY_LEN(keys)

const char *cfg_key_at(size_t i, const char **def, const char **doc)
{
    if (i >= NKEYS)
        return NULL;
    if (def)
        *def = keys[i].def;
    if (doc)
        *doc = keys[i].doc;
    return keys[i].path;
}

static const struct cfg_key *key_find(const char *path)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].path, path) == 0)
            return &keys[i];
    return NULL;
}

static void *field(struct config *cfg, const struct cfg_key *k)
{
    return (char *)cfg + k->offset;
}

static void strlist_free(struct cfg_strlist *l)
{
    if (l->v)
        for (size_t i = 0; i < l->n; i++)
            free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static ab_status strlist_push(struct cfg_strlist *l, const char *s)
{
    char **nv = realloc(l->v, (l->n + 2) * sizeof(char *));
    if (!nv)
        return AB_NOMEM;
    l->v = nv;
    l->v[l->n] = ab_strdup(s);
    if (!l->v[l->n])
        return AB_NOMEM;
    l->n++;
    l->v[l->n] = NULL;
    return AB_OK;
}

static void tokens_free(struct cfg_auth *a)
{
    for (size_t i = 0; i < a->ntokens; i++) {
        ab_secret_free(a->tokens[i].token);
        free(a->tokens[i].principal);
    }
    free(a->tokens);
    a->tokens = NULL;
    a->ntokens = 0;
}

static ab_status tokens_push(struct cfg_auth *a, const char *token, const char *principal)
{
    struct cfg_token *nt = realloc(a->tokens, (a->ntokens + 1) * sizeof(*nt));
    if (!nt)
        return AB_NOMEM;
    a->tokens = nt;
    nt[a->ntokens].token = ab_strdup(token);
    nt[a->ntokens].principal = ab_strdup(principal);
    if (!nt[a->ntokens].token || !nt[a->ntokens].principal) {
        free(nt[a->ntokens].token);
        free(nt[a->ntokens].principal);
        return AB_NOMEM;
    }
    a->ntokens++;
    return AB_OK;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_duration(const char *s, int64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || v < 0)
        return false;
    int64_t mul = 1;
    if (*end) {
        switch (*end) {
        case 's':
            mul = 1;
            break;
        case 'm':
            mul = 60;
            break;
        case 'h':
            mul = 3600;
            break;
        case 'd':
            mul = 86400;
            break;
        default:
            return false;
        }
        if (end[1])
            return false;
    }
    if (v > INT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

static bool enum_allows(const char *allowed, const char *v)
{
    size_t vl = strlen(v);
    const char *p = allowed;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vl && strncmp(p, v, len) == 0)
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

/* Convert text to the key's type and store it. list_append: for T_STRLIST, add one item
 * (YAML sequences) instead of replacing the list with a comma-separated value. */
static ab_status set_from_text(struct config *cfg, const struct cfg_key *k, const char *text,
                               bool list_append, struct ab_err *err)
{
    void *f = field(cfg, k);
    /* Values are text. YAML guarantees UTF-8, the environment and --set do not; a value
     * that is not UTF-8 could not be printed back by `agentbox config` (found by fuzzing). */
    if (!ab_utf8_valid(text, strlen(text)))
        return ab_err_set(err, AB_INVAL, "the value is not valid UTF-8 text");
    switch (k->type) {
    case T_ENUM:
        if (!enum_allows(k->extra, text))
            return ab_err_set(err, AB_INVAL, "must be one of %s, not '%s'", k->extra, text);
        /* fallthrough */
    case T_SECRET:
    case T_STR: {
        char *dup = ab_strdup(text);
        if (!dup)
            return AB_NOMEM;
        free(*(char **)f);
        *(char **)f = dup;
        return AB_OK;
    }
    case T_BOOL:
        if (!parse_bool(text, (bool *)f))
            return ab_err_set(err, AB_INVAL, "expected true or false, not '%s'", text);
        return AB_OK;
    case T_INT: {
        int64_t v;
        if (!ab_parse_i64(text, &v))
            return ab_err_set(err, AB_INVAL, "expected an integer, not '%s'", text);
        *(int64_t *)f = v;
        return AB_OK;
    }
    case T_SIZE: {
        uint64_t v;
        if (!ab_parse_size(text, &v))
            return ab_err_set(err, AB_INVAL,
                              "expected a size such as 4096, 512KiB or 16MiB, not '%s'", text);
        *(uint64_t *)f = v;
        return AB_OK;
    }
    case T_DURATION: {
        int64_t v;
        if (!parse_duration(text, &v))
            return ab_err_set(err, AB_INVAL,
                              "expected a duration such as 30, 30s, 5m, 2h or 1d, not '%s'", text);
        *(int64_t *)f = v;
        return AB_OK;
    }
    case T_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        if (errno || end == text || *end || v < 0)
            return ab_err_set(err, AB_INVAL, "expected a non-negative number, not '%s'", text);
        *(double *)f = v;
        return AB_OK;
    }
    case T_STRLIST: {
        struct cfg_strlist *l = f;
        if (list_append)
            return strlist_push(l, text);
        strlist_free(l);
        char *copy = ab_strdup(text);
        if (!copy)
            return AB_NOMEM;
        ab_status rc = AB_OK;
        char *rest = copy, *item;
        while (!rc && (item = strsep(&rest, ",")) != NULL) {
            while (*item == ' ')
                item++;
            char *e = item + strlen(item);
            while (e > item && e[-1] == ' ')
                *--e = '\0';
            if (*item)
                rc = strlist_push(l, item);
        }
        free(copy);
        return rc;
    }
    case T_TOKENS: {
        /* From text (environment / --set): "token[:principal],token2[:principal2]". */
        struct cfg_auth *a = f;
        tokens_free(a);
        char *copy = ab_strdup(text);
        if (!copy)
            return AB_NOMEM;
        ab_status rc = AB_OK;
        char *rest = copy, *item;
        while (!rc && (item = strsep(&rest, ",")) != NULL) {
            if (!*item)
                continue;
            char *colon = strchr(item, ':');
            if (colon)
                *colon = '\0';
            rc = tokens_push(a, item, colon && colon[1] ? colon + 1 : "default");
        }
        free(copy);
        return rc;
    }
    }
    return ab_err_set(err, AB_INTERNAL, "unknown key type");
}

ab_status cfg_init_defaults(struct config *cfg, struct ab_err *err)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].type == T_TOKENS || (keys[i].type == T_STRLIST && !*keys[i].def))
            continue;
        ab_status rc = set_from_text(cfg, &keys[i], keys[i].def, false, err);
        if (rc)
            return ab_err_wrap(err, "default of %s", keys[i].path);
    }
    return AB_OK;
}

void cfg_cleanup(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        void *f = field(cfg, &keys[i]);
        switch (keys[i].type) {
        case T_SECRET:
            if (*(char **)f)
                explicit_bzero(*(char **)f, strlen(*(char **)f));
            /* fallthrough */
        case T_STR:
        case T_ENUM:
            free(*(char **)f);
            *(char **)f = NULL;
            break;
        case T_STRLIST:
            strlist_free(f);
            break;
        case T_TOKENS:
            tokens_free(f);
            break;
        case T_BOOL:
        case T_INT:
        case T_SIZE:
        case T_DURATION:
        case T_DOUBLE:
            break;
        }
    }
    free(cfg->source);
    cfg->source = NULL;
}

/* ---- YAML ---- */

struct yaml_ctx {
    struct config *cfg;
    yaml_document_t *doc;
    const char *name;
    struct ab_err *err;
};

static ab_status yerr(struct yaml_ctx *y, const yaml_node_t *node, const char *path,
                      ab_status code, const char *msg)
{
    return ab_err_set(y->err, code, "%s:%lu: key '%s': %s", y->name,
                      node ? (unsigned long)node->start_mark.line + 1 : 0UL, path, msg);
}

static ab_status load_tokens(struct yaml_ctx *y, yaml_node_t *node, const char *path)
{
    struct cfg_auth *a = &y->cfg->auth;
    if (node->type == YAML_SCALAR_NODE && node->data.scalar.length == 0)
        return AB_OK;
    if (node->type != YAML_SEQUENCE_NODE)
        return yerr(y, node, path, AB_INVAL,
                    "expected a list of {token: ..., principal: ...} entries");
    tokens_free(a);
    for (yaml_node_item_t *it = node->data.sequence.items.start;
         it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(y->doc, *it);
        const char *token = NULL, *principal = "default";
        if (item && item->type == YAML_SCALAR_NODE) {
            token = (const char *)item->data.scalar.value;
        } else if (item && item->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *p = item->data.mapping.pairs.start;
                 p < item->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(y->doc, p->key);
                yaml_node_t *v = yaml_document_get_node(y->doc, p->value);
                if (!k || !v || k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE)
                    return yerr(y, item, path, AB_INVAL, "token entries hold plain strings");
                const char *kk = (const char *)k->data.scalar.value;
                if (strcmp(kk, "token") == 0)
                    token = (const char *)v->data.scalar.value;
                else if (strcmp(kk, "principal") == 0)
                    principal = (const char *)v->data.scalar.value;
                else
                    return yerr(y, k, path, AB_INVAL,
                                "unknown field in a token entry (use token and principal)");
            }
        }
        if (!token || !*token)
            return yerr(y, item, path, AB_INVAL, "each entry needs a non-empty token");
        if (strlen(token) < 16)
            return yerr(y, item, path, AB_INVAL,
                        "tokens must be at least 16 characters (use `openssl rand -hex 32`)");
        if (tokens_push(a, token, principal))
            return AB_NOMEM;
    }
    return AB_OK;
}

static ab_status load_mapping(struct yaml_ctx *y, yaml_node_t *node, const char *prefix)
{
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(y->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(y->doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE)
            return yerr(y, k, prefix, AB_INVAL, "mapping keys must be plain strings");
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "",
                 (const char *)k->data.scalar.value);
        const struct cfg_key *key = key_find(path);
        if (!key) {
            if (v->type == YAML_MAPPING_NODE) {
                /* A section: descend if some key lives under it. */
                size_t plen = strlen(path);
                bool section = false;
                for (size_t i = 0; i < NKEYS && !section; i++)
                    section = strncmp(keys[i].path, path, plen) == 0 && keys[i].path[plen] == '.';
                if (section) {
                    ab_status rc = load_mapping(y, v, path);
                    if (rc)
                        return rc;
                    continue;
                }
            }
            return yerr(y, k, path, AB_INVAL,
                        "unknown key (see config/agentbox.yaml for every key)");
        }
        ab_status rc = AB_OK;
        if (key->type == T_TOKENS) {
            rc = load_tokens(y, v, path);
        } else if (key->type == T_STRLIST && v->type == YAML_SEQUENCE_NODE) {
            strlist_free(field(y->cfg, key));
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top && !rc; it++) {
                yaml_node_t *item = yaml_document_get_node(y->doc, *it);
                if (!item || item->type != YAML_SCALAR_NODE)
                    return yerr(y, item ? item : v, path, AB_INVAL,
                                "expected a list of strings");
                rc = set_from_text(y->cfg, key, (const char *)item->data.scalar.value, true,
                                   y->err);
                if (rc)
                    return yerr(y, item, path, rc, y->err ? y->err->msg : "invalid value");
            }
        } else if (v->type != YAML_SCALAR_NODE) {
            return yerr(y, v, path, AB_INVAL,
                        key->type == T_STRLIST ? "expected a list of strings"
                                               : "expected a single value, not a list or mapping");
        } else {
            const char *text = (const char *)v->data.scalar.value;
            /* YAML `~` / `null` / empty: back to the default */
            bool is_null = v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                           (strcmp(text, "~") == 0 || strcmp(text, "null") == 0);
            if (is_null)
                text = key->def;
            struct ab_err local;
            ab_err_clear(&local);
            rc = set_from_text(y->cfg, key, text, false, &local);
            if (rc)
                return yerr(y, v, path, rc, local.msg);
        }
        if (rc)
            return rc;
    }
    return AB_OK;
}

ab_status cfg_load_string(struct config *cfg, const char *text, size_t len, const char *name,
                          struct ab_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return ab_err_set(err, AB_NOMEM, "%s: cannot initialise the YAML parser", name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        ab_status rc = ab_err_set(err, AB_INVAL, "%s:%lu: YAML syntax error: %s", name,
                                  (unsigned long)parser.problem_mark.line + 1,
                                  parser.problem ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        return rc;
    }
    ab_status rc = AB_OK;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    struct yaml_ctx y = {cfg, &doc, name, err};
    if (root) {
        if (root->type == YAML_MAPPING_NODE)
            rc = load_mapping(&y, root, "");
        else if (!(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
            rc = ab_err_set(err, AB_INVAL, "%s:%lu: the top level must be a mapping of keys",
                            name, (unsigned long)root->start_mark.line + 1);
    }
    /* Only one document is read; a second one is almost certainly a mistake. */
    if (!rc) {
        yaml_document_t extra;
        if (yaml_parser_load(&parser, &extra)) {
            if (yaml_document_get_root_node(&extra))
                rc = ab_err_set(err, AB_INVAL, "%s: only one YAML document is allowed", name);
            yaml_document_delete(&extra);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

ab_status cfg_load_file(struct config *cfg, const char *path, struct ab_err *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return ab_err_sys(err, AB_IO, errno, "%s: cannot open config file", path);
    struct {
        char *data;
        size_t len;
    } body = {NULL, 0};
    size_t cap = 0;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (body.len + n > 4u * 1024 * 1024) {
            fclose(f);
            free(body.data);
            return ab_err_set(err, AB_LIMIT, "%s: config file larger than 4 MiB", path);
        }
        if (body.len + n + 1 > cap) {
            cap = (body.len + n + 1) * 2;
            char *nd = realloc(body.data, cap);
            if (!nd) {
                fclose(f);
                free(body.data);
                return AB_NOMEM;
            }
            body.data = nd;
        }
        memcpy(body.data + body.len, chunk, n);
        body.len += n;
    }
    fclose(f);
    ab_status rc = cfg_load_string(cfg, body.data ? body.data : "", body.len, path, err);
    free(body.data);
    if (!rc) {
        free(cfg->source);
        cfg->source = ab_strdup(path);
    }
    return rc;
}

/* ---- environment, --set ---- */

static void env_name_for(const char *path, char *out, size_t cap)
{
    size_t o = snprintf(out, cap, "AGENTBOX_");
    for (const char *p = path; *p && o + 1 < cap; p++)
        out[o++] = (*p == '.') ? '_' : (char)toupper((unsigned char)*p);
    out[o] = '\0';
}

static const char *env_lookup(char *const *envp, const char *name)
{
    size_t nl = strlen(name);
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=')
            return *e + nl + 1;
    return NULL;
}

ab_status cfg_apply_env(struct config *cfg, char *const *envp, struct ab_err *err)
{
    if (!envp)
        envp = environ;
    for (size_t i = 0; i < NKEYS; i++) {
        char name[128];
        env_name_for(keys[i].path, name, sizeof(name));
        const char *v = env_lookup(envp, name);
        if (!v)
            continue;
        struct ab_err local;
        ab_err_clear(&local);
        ab_status rc = set_from_text(cfg, &keys[i], v, false, &local);
        if (rc)
            return ab_err_set(err, rc, "environment %s (key '%s'): %s", name, keys[i].path,
                              local.msg);
    }
    const char *tok = env_lookup(envp, "AGENTBOX_TOKEN");
    if (tok && *tok) {
        if (strlen(tok) < 16)
            return ab_err_set(err, AB_INVAL,
                              "environment AGENTBOX_TOKEN: tokens must be at least 16 characters");
        if (tokens_push(&cfg->auth, tok, "default"))
            return AB_NOMEM;
    }
    const char *cf = env_lookup(envp, "AGENTBOX_CONFORMANCE_FIXTURES");
    if (cf)
        parse_bool(cf, &cfg->conformance_fixtures);
    return AB_OK;
}

ab_status cfg_set(struct config *cfg, const char *path, const char *value, struct ab_err *err)
{
    const struct cfg_key *k = key_find(path);
    if (!k)
        return ab_err_set(err, AB_INVAL, "unknown config key '%s'", path);
    struct ab_err local;
    ab_err_clear(&local);
    ab_status rc = set_from_text(cfg, k, value, false, &local);
    if (rc)
        return ab_err_set(err, rc, "key '%s': %s", path, local.msg);
    return AB_OK;
}

/* ---- validation ---- */

static bool listen_is_loopback(const char *listen)
{
    /* "127.x.y.z:port", "localhost:port", "[::1]:port" */
    return ab_starts_with(listen, "127.") || ab_starts_with(listen, "localhost:") ||
           ab_starts_with(listen, "[::1]:");
}

ab_status cfg_validate(const struct config *cfg, struct ab_err *err)
{
    const char *where = cfg->source ? cfg->source : "configuration";
    if (!cfg->http.path || cfg->http.path[0] != '/')
        return ab_err_set(err, AB_INVAL, "%s: key 'http.path': must start with '/'", where);
    if (!strchr(cfg->http.listen, ':'))
        return ab_err_set(err, AB_INVAL,
                          "%s: key 'http.listen': expected ADDR:PORT such as 127.0.0.1:8080",
                          where);
    if (!listen_is_loopback(cfg->http.listen) && cfg->auth.ntokens == 0 &&
        !(cfg->auth.token_file && *cfg->auth.token_file) && !cfg->http.allow_insecure_bind)
        return ab_err_set(err, AB_DENIED,
                          "refusing to listen on %s without authentication: set auth.tokens, "
                          "auth.token_file or AGENTBOX_TOKEN (or http.allow_insecure_bind: true "
                          "if something else protects this port)",
                          cfg->http.listen);
    if (cfg->tools.execute_timeout_s > cfg->tools.execute_max_timeout_s)
        return ab_err_set(err, AB_INVAL,
                          "%s: key 'tools.execute.timeout' (%llds) exceeds "
                          "'tools.execute.max_timeout' (%llds)",
                          where, (long long)cfg->tools.execute_timeout_s,
                          (long long)cfg->tools.execute_max_timeout_s);
    if (cfg->sandbox.pool.size < 0 || cfg->sandbox.pool.size > 1000)
        return ab_err_set(err, AB_INVAL, "%s: key 'sandbox.pool.size': must be 0..1000", where);
    if (cfg->local.workspace[0] != '/' || strcmp(cfg->local.workspace, "/") == 0)
        return ab_err_set(err, AB_INVAL,
                          "%s: key 'local.workspace': must be an absolute path below /", where);
    for (size_t i = 0; i < cfg->auth.ntokens; i++)
        for (size_t j = i + 1; j < cfg->auth.ntokens; j++)
            if (strcmp(cfg->auth.tokens[i].token, cfg->auth.tokens[j].token) == 0)
                return ab_err_set(err, AB_INVAL,
                                  "%s: key 'auth.tokens': the same token is listed twice", where);
    if (cfg->k8s.router_token && *cfg->k8s.router_token && cfg->k8s.router_token_file &&
        *cfg->k8s.router_token_file)
        return ab_err_set(err, AB_INVAL,
                          "%s: keys 'k8s.router_token' and 'k8s.router_token_file' are both set "
                          "(AGENTBOX_K8S_ROUTER_TOKEN counts as the first): keep one",
                          where);
    return AB_OK;
}

/* ---- derived values ---- */

char *cfg_state_dir(const struct config *cfg)
{
    if (cfg && cfg->state_dir && *cfg->state_dir)
        return ab_strdup(cfg->state_dir);
    if (geteuid() == 0)
        return ab_strdup("/var/lib/agentbox");
    const char *xdg = getenv("XDG_STATE_HOME");
    if (xdg && xdg[0] == '/') /* the XDG spec ignores relative values */
        return ab_asprintf("%s/agentbox", xdg);
    const char *home = getenv("HOME");
    if (!home || home[0] != '/') {
        struct passwd pw, *res = NULL;
        char tmp[4096];
        if (getpwuid_r(geteuid(), &pw, tmp, sizeof(tmp), &res) != 0 || !res || !res->pw_dir ||
            res->pw_dir[0] != '/')
            return NULL;
        return ab_asprintf("%s/.local/state/agentbox", res->pw_dir);
    }
    return ab_asprintf("%s/.local/state/agentbox", home);
}

/* ---- dump ---- */

/* One UTF-8 sequence at p (valid: values are checked on the way in); *cp gets the code
 * point, the return value the length. */
static size_t utf8_next(const unsigned char *p, uint32_t *cp)
{
    if (p[0] < 0x80 || !p[1]) {
        *cp = p[0];
        return 1;
    }
    if (p[0] < 0xE0 || !p[2]) {
        *cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
        return 2;
    }
    if (p[0] < 0xF0 || !p[3]) {
        *cp = (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
        return 3;
    }
    *cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
          (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
    return 4;
}

/* A YAML double-quoted scalar that loads back to exactly s (found by fuzzing the dump ->
 * load round trip): '"' and '\' escaped, and every character libyaml would refuse or fold
 * written as \uXXXX -- C0 and C1 controls, DEL, and the YAML 1.1 line breaks NEL, LS, PS
 * (which a double-quoted scalar folds into spaces), the BOM, U+FFFE/U+FFFF (YAML 1.1
 * section 5.1, "Character Set"; section 5.7, "Escape Sequences"). */
static void dump_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        uint32_t cp;
        size_t n = utf8_next(p, &cp);
        if (cp == '"' || cp == '\\')
            fprintf(out, "\\%c", (int)cp);
        else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
                 cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF)
            fprintf(out, "\\u%04x", (unsigned)cp);
        else
            fwrite(p, 1, n, out);
        p += n;
    }
    fputc('"', out);
}

void cfg_dump(const struct config *cfg_const, int fd)
{
    struct config *cfg = (struct config *)cfg_const;
    FILE *out = fdopen(dup(fd), "w");
    if (!out)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct cfg_key *k = &keys[i];
        void *f = field(cfg, k);
        fprintf(out, "%s: ", k->path);
        switch (k->type) {
        case T_SECRET:
            fprintf(out, "%s\n", *(char **)f && **(char **)f ? "\"<redacted>\"" : "\"\"");
            break;
        case T_STR:
        case T_ENUM: {
            dump_quoted(out, *(char **)f);
            fputc('\n', out);
            break;
        }
        case T_BOOL:
            fprintf(out, "%s\n", *(bool *)f ? "true" : "false");
            break;
        case T_INT:
        case T_DURATION:
            fprintf(out, "%lld\n", (long long)*(int64_t *)f);
            break;
        case T_SIZE:
            fprintf(out, "%llu\n", (unsigned long long)*(uint64_t *)f);
            break;
        case T_DOUBLE:
            fprintf(out, "%g\n", *(double *)f);
            break;
        case T_STRLIST: {
            struct cfg_strlist *l = f;
            fprintf(out, "[");
            for (size_t j = 0; j < l->n; j++) {
                fprintf(out, "%s", j ? ", " : "");
                dump_quoted(out, l->v[j]);
            }
            fprintf(out, "]\n");
            break;
        }
        case T_TOKENS: {
            struct cfg_auth *a = f;
            fprintf(out, "[");
            for (size_t j = 0; j < a->ntokens; j++) {
                fprintf(out, "%s{token: \"<redacted>\", principal: ", j ? ", " : "");
                dump_quoted(out, a->tokens[j].principal);
                fprintf(out, "}");
            }
            fprintf(out, "]\n");
            break;
        }
        }
    }
    fclose(out);
}

/* ---- documented defaults as YAML ---- */

static void yaml_quote_if_needed(FILE *out, const struct cfg_key *k)
{
    const char *d = k->def;
    switch (k->type) {
    case T_STRLIST:
    case T_TOKENS:
        fprintf(out, "[]");
        return;
    case T_SECRET:
    case T_STR:
    case T_ENUM:
        if (!*d || strpbrk(d, ":#{}[],&*?|<>=!%@`'\"") || isdigit((unsigned char)d[0]))
            fprintf(out, "\"%s\"", d);
        else
            fprintf(out, "%s", d);
        return;
    case T_BOOL:
    case T_INT:
    case T_SIZE:
    case T_DURATION:
    case T_DOUBLE:
        fprintf(out, "%s", d);
        return;
    }
}

static void wrap_comment(FILE *out, int indent, const char *text)
{
    const int width = 96 - indent - 2;
    const char *p = text;
    while (*p) {
        int len = (int)strlen(p);
        int take = len;
        if (len > width) {
            take = width;
            while (take > 0 && p[take] != ' ')
                take--;
            if (take == 0)
                take = width;
        }
        fprintf(out, "%*s# %.*s\n", indent, "", take, p);
        p += take;
        while (*p == ' ')
            p++;
    }
}

void cfg_write_defaults_yaml(int fd)
{
    FILE *out = fdopen(dup(fd), "w");
    if (!out)
        return;
    fprintf(out, "# agentbox configuration: every key with its default value.\n"
                 "#\n"
                 "# Load with `agentbox serve --config FILE` (or AGENTBOX_CONFIG=FILE). Any key can\n"
                 "# also be set from the environment: `http.listen` is AGENTBOX_HTTP_LISTEN, lists\n"
                 "# are comma-separated. Sizes accept KiB/MiB/GiB, durations s/m/h/d.\n"
                 "# This file is generated by `agentbox config --defaults`; a test checks it.\n");
    char prev[256] = "";
    for (size_t i = 0; i < NKEYS; i++) {
        const char *path = keys[i].path;
        /* Split into segments; print the sections that differ from the previous key. */
        const char *segs[8];
        size_t seglen[8];
        int nseg = 0;
        for (const char *s = path; nseg < 8;) {
            const char *dot = strchr(s, '.');
            segs[nseg] = s;
            seglen[nseg] = dot ? (size_t)(dot - s) : strlen(s);
            nseg++;
            if (!dot)
                break;
            s = dot + 1;
        }
        int common = 0;
        {
            const char *a = prev;
            for (int j = 0; j < nseg - 1; j++) {
                size_t l = seglen[j];
                if (strncmp(a, segs[j], l) == 0 && (a[l] == '.' || a[l] == '\0')) {
                    common++;
                    a += l + (a[l] == '.');
                } else {
                    break;
                }
            }
        }
        if (common == 0)
            fprintf(out, "\n");
        for (int j = common; j < nseg - 1; j++)
            fprintf(out, "%*s%.*s:\n", 2 * j, "", (int)seglen[j], segs[j]);
        int indent = 2 * (nseg - 1);
        wrap_comment(out, indent, keys[i].doc);
        if (keys[i].type == T_ENUM)
            fprintf(out, "%*s# one of: %s\n", indent, "", keys[i].extra);
        fprintf(out, "%*s%.*s: ", indent, "", (int)seglen[nseg - 1], segs[nseg - 1]);
        yaml_quote_if_needed(out, &keys[i]);
        fprintf(out, "\n");
        snprintf(prev, sizeof(prev), "%s", path);
    }
    fclose(out);
}
