/*
 * batch.h - collect the responses to a JSON-RPC batch into one array (JSON-RPC 2.0 section
 * 6: "the Server should respond with an Array containing the corresponding Response
 * objects"). MCP allows batches only on protocol 2025-03-26.
 *
 * The collector is itself a stream: hand it to mcp_session_dispatch() for every element of
 * the batch. Non-final messages (progress, logs, server requests) pass straight through to
 * the downstream stream; final responses are held until `expected` of them have arrived,
 * then sent downstream as one array with final = true.
 */
#ifndef AB_MCP_BATCH_H
#define AB_MCP_BATCH_H

#include <stddef.h>

#include "mcp/server.h"

/* Returns new (one reference) or NULL. Takes its own reference on downstream. expected is
 * the number of requests (not notifications) in the batch, > 0. */
struct mcp_stream *mcp_batch_stream_new(struct mcp_stream *downstream, size_t expected);

/* Add a response produced outside dispatch (e.g. an invalid element) to the batch. */
void mcp_batch_add(struct mcp_stream *batch, const json_t *response);

#endif
