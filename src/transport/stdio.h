/*
 * stdio.h - the stdio transport (MCP 2025-11-25 basic/transports "stdio"): newline-delimited
 * JSON-RPC on stdin/stdout, nothing but protocol on stdout, logs on stderr.
 */
#ifndef AB_TRANSPORT_STDIO_H
#define AB_TRANSPORT_STDIO_H

#include <stdint.h>

#include "base/status.h"

struct mcp_server;

struct stdio_opts {
    int in_fd;                /* usually 0 */
    int out_fd;               /* usually 1 */
    int shutdown_fd;          /* readable when the process should stop (signalfd); -1 = none */
    uint64_t max_line_bytes;  /* longer lines get an error response and are skipped */
    const char *thread_key;   /* the session's thread key (design.md rule 4) */
    int64_t drain_ms;         /* on EOF/shutdown, wait this long for in-flight calls */
};

/* Serve one session until EOF on in_fd or shutdown_fd fires. Returns AB_OK on a clean end. */
ab_status stdio_serve(struct mcp_server *srv, const struct stdio_opts *opts, struct ab_err *err);

#endif
