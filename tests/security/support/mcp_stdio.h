/*
 * mcp_stdio.h - test support: drive `agentbox serve --stdio` as an MCP client would, one
 * JSON-RPC line at a time, with a deadline on every wait (a hung server fails the test
 * instead of hanging it). Optionally under a wrapper command (valgrind).
 */
#ifndef AB_TEST_MCP_STDIO_H
#define AB_TEST_MCP_STDIO_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "base/buf.h"

struct ms_srv {
    pid_t pid;
    int in, out;
    struct buf rx;
    int next_id;
};

/* Start `[wrapper...] $AGENTBOX_BIN serve --stdio --set state_dir=DIR --set
 * stdio.thread_key=THREAD [--set S]...` and complete the initialize handshake (with the
 * given client capabilities, may be NULL). wrapper and sets are NULL-terminated, may be NULL.
 * Fails the test on error. */
void ms_start(struct ms_srv *s, const char *const *wrapper, const char *state_dir,
              const char *thread, const char *const *sets, const json_t *capabilities);

/* Write one line (a newline is added). */
void ms_send(struct ms_srv *s, const char *line);
/* The next message (new), or NULL at EOF; fails after timeout_ms. */
json_t *ms_recv(struct ms_srv *s, int timeout_ms);
/* Send a request (params_new stolen); returns its id. */
int ms_request(struct ms_srv *s, const char *method, json_t *params_new);
/* Wait for the response to id, skipping other messages; returns its result (new). A
 * JSON-RPC error fails the test. */
json_t *ms_wait(struct ms_srv *s, int id, int timeout_ms);
/* tools/call; returns the CallToolResult (new). */
json_t *ms_tool(struct ms_srv *s, const char *tool, json_t *args_new);
/* A tool call that must not be a tool error; returns its text (new). */
char *ms_tool_ok(struct ms_srv *s, const char *tool, json_t *args_new);
/* The first text block of a CallToolResult (borrowed), and its isError. */
const char *ms_text(const json_t *result);
bool ms_is_error(const json_t *result);

/* Close stdin and wait (up to 60 s, then SIGKILL and fail) for the exit; returns the raw
 * wait status. */
int ms_stop(struct ms_srv *s);
/* SIGKILL and reap. */
void ms_kill(struct ms_srv *s);

#endif
