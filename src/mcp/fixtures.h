/*
 * fixtures.h - the conformance fixtures: the exact tools, resources, prompts and completions
 * the official MCP conformance suite (@modelcontextprotocol/conformance) calls by name
 * (mcp.md section 16.2). Test scaffolding, off by default (`serve --conformance-fixtures`).
 *
 * Also the default (non-fixture) answers for resources, prompts and completion methods,
 * so the method table lives in one place.
 */
#ifndef AB_MCP_FIXTURES_H
#define AB_MCP_FIXTURES_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "base/status.h"

struct mcp_server;

/* Register the fixture tools on srv. */
ab_status mcp_fixtures_register(struct mcp_server *srv, struct ab_err *err);

/* Answer a resources/ prompts/ completion/ request. Returns the result (new), or NULL with
 * *code set to a JSON-RPC error code and msg filled; *code == 0 means "method not found".
 * subscriptions (guarded by lock) is the session's set of subscribed URIs. */
json_t *mcp_fixtures_handle(bool enabled, json_t *subscriptions, pthread_mutex_t *lock,
                            const char *method, const json_t *params, int *code, char *msg,
                            size_t msgcap);

#endif
