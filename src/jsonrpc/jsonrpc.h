/*
 * jsonrpc.h - JSON-RPC 2.0 messages (https://www.jsonrpc.org/specification) with MCP's extra
 * rules (MCP 2025-11-25 basic/index: request ids are strings or integers and never null).
 *
 * This layer knows nothing about transports or MCP methods: it turns bytes into classified
 * messages (or the exact error response the spec prescribes) and builds outgoing messages.
 * jansson values follow jansson's conventions: "new" results are owned by the caller,
 * "borrowed" ones live as long as the message they point into.
 */
#ifndef AB_JSONRPC_JSONRPC_H
#define AB_JSONRPC_JSONRPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

/* Error codes (JSON-RPC 2.0 section 5.1, MCP schema). */
#define JRPC_PARSE_ERROR       (-32700)
#define JRPC_INVALID_REQUEST   (-32600)
#define JRPC_METHOD_NOT_FOUND  (-32601)
#define JRPC_INVALID_PARAMS    (-32602)
#define JRPC_INTERNAL_ERROR    (-32603)
#define MCP_RESOURCE_NOT_FOUND (-32002)
/* Implementation-defined codes the TypeScript SDK uses on HTTP error bodies; clients know them. */
#define MCP_TRANSPORT_ERROR    (-32000)
#define MCP_SESSION_NOT_FOUND  (-32001)

enum jrpc_kind {
    JRPC_REQUEST,      /* method + id */
    JRPC_NOTIFICATION, /* method, no id */
    JRPC_RESPONSE,     /* id + result */
    JRPC_ERROR,        /* id + error */
};

struct jrpc_msg {
    enum jrpc_kind kind;
    json_t *id;         /* borrowed; NULL for notifications */
    const char *method; /* borrowed; NULL for responses */
    json_t *params;     /* borrowed; may be NULL */
    json_t *result;     /* borrowed; JRPC_RESPONSE */
    json_t *error;      /* borrowed; JRPC_ERROR */
};

/* Parse bytes as JSON (UTF-8, NUL allowed inside strings, duplicate keys rejected).
 * On failure returns AB_PROTO and sets *error_response to the -32700 response (new). */
ab_status jrpc_parse(const char *data, size_t len, json_t **out, json_t **error_response);

/* Classify one element (an object; arrays are batches handled by the caller). On failure
 * returns AB_PROTO and sets *error_response (new) to the -32600 response, with the id when
 * it could be read. A message that is invalid *and* has no id at all (a malformed
 * notification) still gets an error response with id null, per JSON-RPC 2.0 5. */
ab_status jrpc_classify(json_t *elem, struct jrpc_msg *msg, json_t **error_response);

/* Builders. Every json_t * argument named *_new is stolen (reference taken over); id is
 * borrowed (copied). All return new. */
json_t *jrpc_result(const json_t *id, json_t *result_new);
json_t *jrpc_error(const json_t *id, int code, const char *message, json_t *data_new);
json_t *jrpc_request(const json_t *id, const char *method, json_t *params_new);
json_t *jrpc_notification(const char *method, json_t *params_new);

/* Compact one-line serialisation (no embedded newlines: strings escape them), the form
 * stdio framing and SSE `data:` lines need. Returns new (free()), NULL on failure. */
char *jrpc_dump(const json_t *msg, size_t *len);

/* Render an id for logs ("7", "\"abc\""), into out. */
void jrpc_id_to_text(const json_t *id, char *out, size_t cap);

/* true when both ids are equal (same type and value). */
bool jrpc_id_equal(const json_t *a, const json_t *b);

#endif
