/*
 * main.c - the agentbox-runtime command line.
 *
 *   agentbox-runtime [--listen ADDR:PORT] [--base-dir DIR] [--timeout SECONDS]
 *                    [--max-upload BYTES] [--port-file FILE]
 *
 * Defaults follow the python-runtime image it replaces: port 8888 on every interface inside
 * the pod (0.0.0.0:8888), base dir $SANDBOX_BASE_DIR or /app, command timeout
 * $SANDBOX_EXEC_TIMEOUT_SECONDS or 300 (invalid or <= 0 -> 300, like upstream). Port 0
 * picks a free port; --port-file then receives it (tests). Runs until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "runtime/rt.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: agentbox-runtime [--listen ADDR:PORT] [--base-dir DIR] [--timeout SECONDS]\n"
               "                        [--max-upload BYTES] [--port-file FILE]\n"
               "Serves the agent-sandbox python-runtime API (POST /execute, POST /upload,\n"
               "GET /download/, /list/, /exists/) plus /agentbox/v1/ extensions.\n");
}

static double env_timeout(void)
{
    const char *v = getenv("SANDBOX_EXEC_TIMEOUT_SECONDS");
    if (!v || !*v)
        return 300.0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || !(d > 0))
        return 300.0;
    return d;
}

int main(int argc, char **argv)
{
    const char *listen = "0.0.0.0:8888";
    const char *base = getenv("SANDBOX_BASE_DIR");
    const char *port_file = NULL;
    double timeout = env_timeout();
    uint64_t max_upload = (uint64_t)1 << 30;
    if (!base || !*base)
        base = "/app";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("agentbox-runtime %s\n", AGENTBOX_VERSION);
            return 0;
        } else if (!v) {
            usage(stderr);
            return 2;
        } else if (strcmp(a, "--listen") == 0) {
            listen = v;
        } else if (strcmp(a, "--base-dir") == 0) {
            base = v;
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = v;
        } else if (strcmp(a, "--timeout") == 0) {
            char *end;
            timeout = strtod(v, &end);
            if (*end || !(timeout > 0)) {
                fprintf(stderr, "agentbox-runtime: --timeout needs a positive number of seconds\n");
                return 2;
            }
        } else if (strcmp(a, "--max-upload") == 0) {
            if (!ab_parse_size(v, &max_upload)) {
                fprintf(stderr, "agentbox-runtime: --max-upload needs a size such as 64MiB\n");
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
        i++;
    }
    const char *colon = strrchr(listen, ':');
    int64_t port;
    if (!colon || !ab_parse_i64(colon + 1, &port) || port < 0 || port > 65535) {
        fprintf(stderr, "agentbox-runtime: --listen needs ADDR:PORT, got '%s'\n", listen);
        return 2;
    }
    char *host = ab_strndup(listen, (size_t)(colon - listen));

    /* Writes to a client that went away must fail with EPIPE, not kill the server. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by MHD's threads; sigwait below */

    struct rt_config cfg = {.listen_host = host,
                            .port = (int)port,
                            .base_dir = base,
                            .exec_timeout_s = timeout,
                            .max_upload_bytes = max_upload};
    struct rt_server *s = NULL;
    struct ab_err err;
    ab_err_clear(&err);
    if (rt_server_start(&cfg, &s, &err)) {
        fprintf(stderr, "agentbox-runtime: %s\n", err.msg);
        free(host);
        return 1;
    }
    AB_LOG_INFO("runtime.start", "listen=%s:%d base=%s timeout=%g", host, rt_server_port(s), base,
                timeout);
    if (port_file) {
        FILE *f = fopen(port_file, "we");
        if (f) {
            fprintf(f, "%d\n", rt_server_port(s));
            fclose(f);
        }
    }
    int sig = 0;
    sigwait(&set, &sig);
    AB_LOG_INFO("runtime.stop", "signal=%d", sig);
    rt_server_stop(s);
    free(host);
    return 0;
}
