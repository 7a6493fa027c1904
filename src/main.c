/*
 * main.c - the agentbox command line.
 *
 *   agentbox serve [--stdio | --http [ADDR:PORT]] [--config FILE] [--log-level L]
 *                  [--log-format human|json] [--set KEY=VALUE]... [--conformance-fixtures]
 *   agentbox config [--defaults] [--config FILE]
 *   agentbox doctor [--config FILE] [--set KEY=VALUE]...
 *   agentbox --version | --help
 *
 * Order of configuration (later wins): built-in defaults, the YAML file (--config or
 * $AGENTBOX_CONFIG), AGENTBOX_* environment variables, command-line flags. Exit codes:
 * 0 success, 1 runtime failure, 2 usage or configuration error.
 *
 * Signals are blocked in every thread (they are created after this) and delivered through
 * a signalfd that the transport polls: SIGTERM/SIGINT drain in-flight calls and exit 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "core/audit.h"
#include "core/doctor.h"
#include "core/metrics.h"
#include "core/policy.h"
#include "core/registry.h"
#include "mcp/server.h"
#include "providers/k8s/k8s.h"
#include "providers/local/local.h"
#include "tools/tools.h"
#include "transport/http.h"
#include "transport/stdio.h"

static const char usage_text[] =
    "agentbox - an MCP server that gives AI agents isolated sandboxes\n"
    "\n"
    "Usage:\n"
    "  agentbox serve [options]      serve MCP (stdio by default)\n"
    "  agentbox config [--defaults]  print the effective configuration (or the documented\n"
    "                                defaults, as YAML)\n"
    "  agentbox doctor               check this host (and the cluster) for what the\n"
    "                                sandbox providers need; print each problem's fix\n"
    "  agentbox health [URL]         exit 0 when GET URL (default\n"
    "                                http://127.0.0.1:8080/healthz) answers 200\n"
    "  agentbox --version            print the version\n"
    "  agentbox --help               print this help\n"
    "\n"
    "Options for serve, config and doctor:\n"
    "  --stdio                       serve one client on stdin/stdout (the default)\n"
    "  --http [ADDR:PORT]            serve Streamable HTTP (default http.listen,\n"
    "                                127.0.0.1:8080); non-loopback needs auth tokens\n"
    "  --config FILE                 YAML configuration (also $AGENTBOX_CONFIG)\n"
    "  --set KEY=VALUE               set any configuration key, e.g. --set sandbox.pool.size=4\n"
    "  --log-level LEVEL             debug, info, warn or error (log.level)\n"
    "  --log-format FORMAT           human or json (log.format)\n"
    "  --conformance-fixtures        register the MCP conformance-suite test fixtures\n"
    "\n"
    "Environment: AGENTBOX_<KEY> sets a key (http.listen -> AGENTBOX_HTTP_LISTEN);\n"
    "AGENTBOX_TOKEN adds a bearer token. See config/agentbox.yaml for every key.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "agentbox: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'agentbox --help'.\n");
    va_end(ap);
    return 2;
}

struct cli {
    const char *command;
    const char *config_path;
    bool http;
    bool stdio;
    const char *listen;
    const char *log_level;
    const char *log_format;
    bool fixtures;
    bool defaults;
    const char *sets[64];
    int nsets;
};

static int parse_args(int argc, char **argv, struct cli *cli)
{
    memset(cli, 0, sizeof(*cli));
    int i = 1;
    if (i < argc && argv[i][0] != '-')
        cli->command = argv[i++];
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--stdio") == 0) {
            cli->stdio = true;
        } else if (strcmp(a, "--http") == 0) {
            cli->http = true;
            if (next && next[0] != '-') {
                cli->listen = next;
                i++;
            }
        } else if (ab_starts_with(a, "--http=")) {
            cli->http = true;
            cli->listen = a + 7;
        } else if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (!next)
                return usage_error("%s needs a file", a);
            cli->config_path = next;
            i++;
        } else if (strcmp(a, "--log-level") == 0) {
            if (!next)
                return usage_error("%s needs a level", a);
            cli->log_level = next;
            i++;
        } else if (strcmp(a, "--log-format") == 0) {
            if (!next)
                return usage_error("%s needs a format", a);
            cli->log_format = next;
            i++;
        } else if (strcmp(a, "--set") == 0) {
            if (!next || !strchr(next, '='))
                return usage_error("%s needs KEY=VALUE", a);
            if (cli->nsets == 64)
                return usage_error("%s", "too many --set options");
            cli->sets[cli->nsets++] = next;
            i++;
        } else if (strcmp(a, "--conformance-fixtures") == 0) {
            cli->fixtures = true;
        } else if (strcmp(a, "--defaults") == 0) {
            cli->defaults = true;
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    if (cli->http && cli->stdio)
        return usage_error("%s", "choose one of --stdio and --http");
    return 0;
}

/* Build the configuration from defaults, file, environment and flags. Exit code or 0. */
static int load_config(const struct cli *cli, struct config *cfg)
{
    struct ab_err err;
    ab_err_clear(&err);
    if (cfg_init_defaults(cfg, &err)) {
        fprintf(stderr, "agentbox: %s\n", err.msg);
        return 2;
    }
    const char *path = cli->config_path ? cli->config_path : getenv("AGENTBOX_CONFIG");
    if (path && *path && cfg_load_file(cfg, path, &err)) {
        fprintf(stderr, "agentbox: %s\n", err.msg);
        return 2;
    }
    if (cfg_apply_env(cfg, NULL, &err)) {
        fprintf(stderr, "agentbox: %s\n", err.msg);
        return 2;
    }
    for (int i = 0; i < cli->nsets; i++) {
        char key[128];
        const char *eq = strchr(cli->sets[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - cli->sets[i]), cli->sets[i]);
        if (cfg_set(cfg, key, eq + 1, &err)) {
            fprintf(stderr, "agentbox: --set %s\n", err.msg);
            return 2;
        }
    }
    if ((cli->log_level && cfg_set(cfg, "log.level", cli->log_level, &err)) ||
        (cli->log_format && cfg_set(cfg, "log.format", cli->log_format, &err)) ||
        (cli->listen && cfg_set(cfg, "http.listen", cli->listen, &err))) {
        fprintf(stderr, "agentbox: %s\n", err.msg);
        return 2;
    }
    if (cli->fixtures)
        cfg->conformance_fixtures = true;
    if (cfg_validate(cfg, &err)) {
        fprintf(stderr, "agentbox: %s\n", err.msg);
        return 2;
    }
    return 0;
}

static const char default_instructions[] =
    "agentbox runs commands and edits files in an isolated Linux sandbox that belongs to this "
    "conversation thread; it is created on first use and keeps its files between calls. Use "
    "execute for shell commands and execute_python for Python, read/write/edit for files, "
    "ls/glob/grep to explore (grep is literal, not regex), upload/download to move files in "
    "and out. Relative paths are under the workspace directory. The sandbox has no network "
    "unless the operator enabled it.";

/* `agentbox health URL`: a dependency-free HTTP GET for container HEALTHCHECKs (the slim
 * image has no curl). Plain http to an IP or name, 5 s timeout, exit 0 on status 200. */
static int cmd_health(const char *url)
{
    const char *u = url ? url : "http://127.0.0.1:8080/healthz";
    if (!ab_starts_with(u, "http://")) {
        fprintf(stderr, "agentbox health: only http:// URLs are supported\n");
        return 2;
    }
    char host[256], port[16] = "80", path[1024] = "/";
    const char *h = u + 7;
    size_t hl = strcspn(h, ":/");
    if (hl == 0 || hl >= sizeof(host))
        return 2;
    memcpy(host, h, hl);
    host[hl] = '\0';
    const char *rest = h + hl;
    if (*rest == ':') {
        size_t pl = strcspn(rest + 1, "/");
        if (pl == 0 || pl >= sizeof(port))
            return 2;
        memcpy(port, rest + 1, pl);
        port[pl] = '\0';
        rest += 1 + pl;
    }
    if (*rest == '/')
        snprintf(path, sizeof(path), "%s", rest);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
        fprintf(stderr, "agentbox health: cannot resolve %s\n", host);
        return 1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int rc = 1;
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        char req[1400];
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n",
                         path, host);
        char resp[64] = "";
        if (write(fd, req, (size_t)n) == n && read(fd, resp, sizeof(resp) - 1) > 12)
            rc = strncmp(resp + 8, " 200", 4) == 0 ? 0 : 1;
        if (rc)
            fprintf(stderr, "agentbox health: %s answered %.12s\n", u, resp[0] ? resp : "nothing");
    } else {
        fprintf(stderr, "agentbox health: cannot connect to %s:%s\n", host, port);
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}

/* `agentbox doctor`: the local checks first, while this process has one thread (they fork
 * probes); then the cluster's. Exit 1 when the configured provider cannot work. */
static int cmd_doctor(const struct config *cfg)
{
    bool local = strcmp(cfg->sandbox.provider, "local") == 0;
    printf("agentbox %s doctor: sandbox.provider is %s (configuration: %s)\n\n",
           AGENTBOX_VERSION, cfg->sandbox.provider,
           cfg->source ? cfg->source : "built-in defaults and environment");
    fflush(stdout);
    struct doctor_report r;
    doctor_report_init(&r);
    doctor_section(&r, "Local sandboxes (sandbox.provider: local)", local);
    sbx_local_doctor(cfg, &r);
    doctor_section(&r, "Kubernetes sandboxes (sandbox.provider: agent-sandbox)", !local);
    sbx_k8s_doctor(cfg, &r);
    doctor_print(&r, stdout);
    int rc = doctor_count(&r, DOCTOR_FAIL) ? 1 : 0;
    doctor_report_cleanup(&r);
    return rc;
}

/* Everything serve builds, torn down in reverse order. */
struct app {
    struct config *cfg;
    struct sbx_provider *provider;
    struct sbx_registry *registry;
    struct policy *policy;
    struct audit *audit;
    struct ab_metrics *metrics;
    struct mcp_server *srv;
    struct tools_ctx tools;
};

static const char *call_result_name(const struct mcp_call_report *r)
{
    if (r->cancelled)
        return "cancelled";
    if (r->invalid_arguments)
        return "invalid_arguments";
    const char *decision = json_string_value(json_object_get(r->notes, "decision"));
    if (r->quota_refused || (decision && (strcmp(decision, "deny") == 0 ||
                                          strcmp(decision, "quota") == 0 ||
                                          (ab_starts_with(decision, "ask:") &&
                                           strcmp(decision, "ask:accept") != 0))))
        return "denied";
    return r->is_error ? "error" : "ok";
}

static uint64_t result_bytes(const json_t *result)
{
    uint64_t n = 0;
    size_t i;
    const json_t *b;
    json_array_foreach(json_object_get(result, "content"), i, b)
    {
        n += json_string_length(json_object_get(b, "text"));
        n += json_string_length(json_object_get(b, "data"));
        const json_t *res = json_object_get(b, "resource");
        n += json_string_length(json_object_get(res, "text"));
        n += json_string_length(json_object_get(res, "blob"));
    }
    return n;
}

/* The MCP observer: metrics and the audit log see every finished tool call. */
static void observe_call(void *arg, const struct mcp_call_report *r)
{
    struct app *app = arg;
    const char *result = call_result_name(r);
    metrics_observe_call(app->metrics, r->tool, result, (double)r->duration_us / 1e6);
    if (app->audit) {
        struct audit_record rec = {
            .time_ms = ab_wall_ms(),
            .principal = r->principal,
            .session = r->session_id,
            .thread = json_string_value(json_object_get(r->notes, "thread")),
            .sandbox = json_string_value(json_object_get(r->notes, "sandbox")),
            .tool = r->tool,
            .args = r->arguments,
            .result = result,
            .bytes = r->result ? result_bytes(r->result) : 0,
            .duration_us = r->duration_us,
            .decision = r->quota_refused
                            ? "quota"
                            : json_string_value(json_object_get(r->notes, "decision")),
        };
        audit_write(app->audit, &rec);
    }
}

static void app_cleanup(struct app *app)
{
    if (app->srv && mcp_server_inflight(app->srv) > 0) {
        /* A tool ignored cancellation past every drain: its thread still uses the server,
         * the registry and the provider. The process is exiting; leave them to the kernel
         * rather than free memory under a running thread. */
        AB_LOG_WARN("server.exit_with_calls", "calls=%lld",
                    (long long)mcp_server_inflight(app->srv));
        return;
    }
    mcp_server_free(app->srv);
    sbx_registry_free(app->registry);
    if (app->provider)
        app->provider->ops->free(app->provider);
    policy_free(app->policy);
    audit_close(app->audit);
    metrics_free(app->metrics);
}

/* Build provider, registry, policy, audit, metrics and the MCP server. 0 or an exit code. */
static int app_init(struct app *app, struct config *cfg)
{
    struct ab_err err;
    ab_err_clear(&err);
    memset(app, 0, sizeof(*app));
    app->cfg = cfg;
    ab_status rc;
    const char *kind = cfg->sandbox.provider;
    if (strcmp(kind, "local") == 0)
        rc = sbx_local_new(cfg, &app->provider, &err);
    else
        rc = sbx_k8s_new(cfg, &app->provider, &err);
    if (rc) {
        /* Never serve tools without a working sandbox: say why and how to fix it. */
        AB_LOG_ERROR("provider.unavailable", "provider=%s", kind);
        fprintf(stderr, "agentbox: the %s sandbox provider cannot start: %s\n", kind, err.msg);
        return 1;
    }
    struct sbx_registry_opts ro = {
        .provider = app->provider,
        .ttl_s = cfg->sandbox.ttl_s,
        .idle_ttl_s = cfg->sandbox.idle_ttl_s,
        .reap_interval_s = cfg->sandbox.reap_interval_s,
        .create_timeout_s = cfg->sandbox.create_timeout_s,
        .pool_size = cfg->sandbox.pool.size,
        .max_per_principal = cfg->quotas.max_sandboxes,
    };
    if (sbx_registry_new(&ro, &app->registry, &err)) {
        fprintf(stderr, "agentbox: %s\n", err.msg);
        return 1;
    }
    if (policy_new(cfg, &app->policy, &err)) {
        fprintf(stderr, "agentbox: %s\n", err.msg);
        return 2;
    }
    if (cfg->audit.path && *cfg->audit.path &&
        audit_open(cfg->audit.path, cfg->audit.max_bytes, (int)cfg->audit.keep, &app->audit,
                   &err)) {
        fprintf(stderr, "agentbox: %s\n", err.msg);
        return 2;
    }
    app->metrics = metrics_new(app->provider->ops->kind);

    struct mcp_server_opts so = {
        .name = "agentbox",
        .title = "agentbox sandboxes",
        .version = AGENTBOX_VERSION,
        .instructions = cfg->mcp.instructions && *cfg->mcp.instructions ? cfg->mcp.instructions
                                                                         : default_instructions,
        .page_size = cfg->mcp.page_size,
        .max_inflight = cfg->mcp.max_inflight,
        .max_per_principal = cfg->quotas.max_concurrent_calls,
        .fixtures = cfg->conformance_fixtures,
        .app = app,
    };
    if (mcp_server_new(&so, &app->srv, &err)) {
        fprintf(stderr, "agentbox: %s\n", err.msg);
        return 1;
    }
    app->tools = (struct tools_ctx){
        .cfg = cfg,
        .registry = app->registry,
        .provider = app->provider,
        .policy = app->policy,
    };
    if (tools_register_all(app->srv, &app->tools, &err)) {
        fprintf(stderr, "agentbox: %s\n", err.msg);
        return 1;
    }
    mcp_server_set_observer(app->srv, observe_call, app);
    if (cfg->conformance_fixtures)
        AB_LOG_WARN("server.fixtures", "conformance fixtures are registered (test scaffolding)");
    AB_LOG_INFO("server.ready", "provider=%s pool=%lld policy=%s audit=%s", kind,
                (long long)cfg->sandbox.pool.size, policy_active(app->policy) ? "on" : "off",
                app->audit ? cfg->audit.path : "off");
    return 0;
}

/* GET /metrics on the HTTP transport: its own figures plus what metrics_render pulls. */
static ab_status http_metrics(void *arg, const struct http_stats *st, struct buf *out)
{
    struct app *app = arg;
    struct sbx_registry_stats rs;
    struct sbx_pool_status ps;
    sbx_registry_stats(app->registry, &rs);
    sbx_registry_pool_status(app->registry, &ps);
    struct metrics_sources src = {
        .registry = &rs,
        .pool = &ps,
        .calls_in_flight = mcp_server_inflight(app->srv),
        .http_sessions = st->sessions_open,
        .http_sessions_total = st->sessions_total,
    };
    return metrics_render(app->metrics, &src, out);
}

static int cmd_serve(const struct cli *cli, struct config *cfg)
{
    struct ab_err err;
    ab_err_clear(&err);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

    struct app app;
    int rc = app_init(&app, cfg);
    if (rc) {
        app_cleanup(&app);
        if (sfd >= 0)
            close(sfd);
        return rc;
    }
    if (cli->http) {
        struct http_hooks hooks = {.metrics = http_metrics, .metrics_arg = &app};
        if (http_serve_ex(app.srv, cfg, sfd, &hooks, &err)) {
            AB_LOG_ERROR("http.failed", "error=\"%s\"", err.msg);
            fprintf(stderr, "agentbox: %s\n", err.msg);
            rc = 1;
        }
    } else {
        char key[160];
        if (cfg->stdio.thread_key && *cfg->stdio.thread_key) {
            snprintf(key, sizeof(key), "%s", cfg->stdio.thread_key);
        } else {
            char rnd[17];
            ab_random_hex(rnd, 8);
            snprintf(key, sizeof(key), "stdio-%s", rnd);
        }
        struct stdio_opts o = {
            .in_fd = 0,
            .out_fd = 1,
            .shutdown_fd = sfd,
            .max_line_bytes = cfg->stdio.max_line_bytes,
            .thread_key = key,
            /* A stdio client that closed our stdin is leaving: finish quickly. */
            .drain_ms = AB_MIN(cfg->http.shutdown_grace_s * 1000, 5000),
        };
        if (stdio_serve(app.srv, &o, &err)) {
            AB_LOG_ERROR("stdio.failed", "error=\"%s\"", err.msg);
            rc = 1;
        }
    }
    app_cleanup(&app);
    if (sfd >= 0)
        close(sfd);
    AB_LOG_INFO("server.exit", "code=%d", rc);
    return rc;
}

int main(int argc, char **argv)
{
    /* The local provider's sandbox spawner: before anything else (no threads, no config). */
    if (argc > 1 && strcmp(argv[1], SBX_LOCAL_HELPER_ARG) == 0)
        return sbx_local_helper_main(argc, argv);
    if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf("agentbox %s\n", AGENTBOX_VERSION);
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                     strcmp(argv[1], "help") == 0)) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "health") == 0)
        return cmd_health(argc > 2 ? argv[2] : NULL);
    struct cli cli;
    int rc = parse_args(argc, argv, &cli);
    if (rc)
        return rc;
    if (!cli.command)
        return usage_error("%s", "missing command (serve, config, doctor)");

    if (strcmp(cli.command, "config") == 0 && cli.defaults) {
        cfg_write_defaults_yaml(1);
        return 0;
    }
    struct config cfg;
    rc = load_config(&cli, &cfg);
    if (rc) {
        cfg_cleanup(&cfg);
        return rc;
    }
    ab_log_configure(ab_log_level_parse(cfg.log.level), ab_log_format_parse(cfg.log.format), 2);

    if (strcmp(cli.command, "config") == 0) {
        cfg_dump(&cfg, 1);
        rc = 0;
    } else if (strcmp(cli.command, "serve") == 0) {
        rc = cmd_serve(&cli, &cfg);
    } else if (strcmp(cli.command, "doctor") == 0) {
        /* The report is the output; the provider's own info lines would only interleave. */
        if (!cli.log_level && ab_log_threshold < AB_LOG_WARN)
            ab_log_configure(AB_LOG_WARN, ab_log_format_parse(cfg.log.format), 2);
        rc = cmd_doctor(&cfg);
    } else {
        rc = usage_error("unknown command '%s'", cli.command);
    }
    cfg_cleanup(&cfg);
    return rc;
}
