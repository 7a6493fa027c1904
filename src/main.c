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

#include "app.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "core/doctor.h"
#include "core/registry.h"
#include "mcp/server.h"
#include "providers/k8s/k8s.h"
#include "providers/local/local.h"
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

/* The configured sandbox provider, then everything app_init builds on it. 0 or an exit code
 * (app_cleanup runs in either case). */
static int serve_init(struct app *app, struct config *cfg)
{
    struct ab_err err;
    ab_err_clear(&err);
    memset(app, 0, sizeof(*app));
    struct sbx_provider *provider = NULL;
    ab_status st;
    const char *kind = cfg->sandbox.provider;
    if (strcmp(kind, "local") == 0)
        st = sbx_local_new(cfg, &provider, &err);
    else
        st = sbx_k8s_new(cfg, &provider, &err);
    if (st) {
        /* Never serve tools without a working sandbox: say why and how to fix it. */
        AB_LOG_ERROR("provider.unavailable", "provider=%s", kind);
        fprintf(stderr, "agentbox: the %s sandbox provider cannot start: %s\n", kind, err.msg);
        return 1;
    }
    int rc = app_init(app, cfg, provider, &err);
    if (rc)
        fprintf(stderr, "agentbox: %s\n", err.msg);
    return rc;
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
    int rc = serve_init(&app, cfg);
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
