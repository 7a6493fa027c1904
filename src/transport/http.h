/*
 * http.h - the Streamable HTTP transport (MCP 2025-11-25 basic/transports, negotiating
 * down to 2024-11-05 clients) on libmicrohttpd.
 *
 * One MCP endpoint (http.path, default /mcp) answering POST (client messages; JSON or SSE
 * responses), GET (the standalone server->client SSE stream, or resumption with
 * Last-Event-ID) and DELETE (end the session); plus GET /healthz and GET /readyz (no token
 * needed; they reveal nothing), and GET /metrics when a metrics hook is given. The status
 * codes follow docs/reference/mcp.md section 13.8 exactly.
 */
#ifndef AB_TRANSPORT_HTTP_H
#define AB_TRANSPORT_HTTP_H

#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"

struct mcp_server;
struct config;

/* Figures the transport owns, for GET /metrics. */
struct http_stats {
    int64_t sessions_open;
    uint64_t sessions_total; /* created since start */
    int64_t sse_streams;     /* SSE responses open now */
};

/* Append the /metrics body (Prometheus text format) to out. */
typedef ab_status (*http_metrics_cb)(void *arg, const struct http_stats *stats, struct buf *out);

struct http_hooks {
    http_metrics_cb metrics; /* serves GET /metrics (token required when auth is on) */
    void *metrics_arg;
    /* Called once the socket is bound (port is the real one when listening on port 0). */
    void (*listening)(void *arg, const char *url, int port);
    void *listening_arg;
};

/* Serve until shutdown_fd (a signalfd for SIGTERM/SIGINT/SIGHUP, or any fd that becomes
 * readable, e.g. a pipe in tests) asks to stop. SIGHUP re-reads auth.token_file. SIGTERM
 * or SIGINT: stop taking new work (/readyz turns 503), let in-flight calls finish for up to
 * http.shutdown_grace, cancel the rest, close every session and return AB_OK. A second
 * SIGTERM/SIGINT skips the grace period. cfg is borrowed for the duration of the call. */
ab_status http_serve(struct mcp_server *srv, const struct config *cfg, int shutdown_fd,
                     struct ab_err *err);

/* The same, with optional hooks (may be NULL). */
ab_status http_serve_ex(struct mcp_server *srv, const struct config *cfg, int shutdown_fd,
                        const struct http_hooks *hooks, struct ab_err *err);

#endif
