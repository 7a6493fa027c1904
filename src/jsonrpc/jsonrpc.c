/*
 * jsonrpc.c - parsing, validation and building of JSON-RPC 2.0 messages.
 *
 * Validation follows JSON-RPC 2.0 sections 4-5 plus MCP: "jsonrpc" must be exactly "2.0";
 * a request's id is a string or an integer (MCP forbids null, and fractional numbers are
 * discouraged by JSON-RPC and rejected here); params, when present, are an object or array;
 * a response has an id and exactly one of result / error. Anything else is -32600 with the
 * id echoed when it could be read, else null.
 */
#include "jsonrpc/jsonrpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *id_copy(const json_t *id)
{
    if (!id)
        return json_null();
    return json_deep_copy(id);
}

json_t *jrpc_result(const json_t *id, json_t *result_new)
{
    if (!result_new)
        result_new = json_object();
    return json_pack("{s:s,s:o,s:o}", "jsonrpc", "2.0", "id", id_copy(id), "result", result_new);
}

json_t *jrpc_error(const json_t *id, int code, const char *message, json_t *data_new)
{
    json_t *err = json_pack("{s:i,s:s}", "code", code, "message", message ? message : "");
    if (!err) {
        json_decref(data_new);
        return NULL;
    }
    if (data_new)
        json_object_set_new(err, "data", data_new);
    return json_pack("{s:s,s:o,s:o}", "jsonrpc", "2.0", "id", id_copy(id), "error", err);
}

json_t *jrpc_request(const json_t *id, const char *method, json_t *params_new)
{
    json_t *m = json_pack("{s:s,s:o,s:s}", "jsonrpc", "2.0", "id", id_copy(id), "method", method);
    if (m && params_new)
        json_object_set_new(m, "params", params_new);
    else
        json_decref(params_new);
    return m;
}

json_t *jrpc_notification(const char *method, json_t *params_new)
{
    json_t *m = json_pack("{s:s,s:s}", "jsonrpc", "2.0", "method", method);
    if (m && params_new)
        json_object_set_new(m, "params", params_new);
    else
        json_decref(params_new);
    return m;
}

ab_status jrpc_parse(const char *data, size_t len, json_t **out, json_t **error_response)
{
    json_error_t jerr;
    /* JSON_ALLOW_NUL: file contents may legitimately contain U+0000 (written with \u0000).
     * JSON_REJECT_DUPLICATES: {"id":1,"id":2} is ambiguous; refuse rather than guess.
     * JSON_DECODE_ANY: a bare scalar is valid JSON but an Invalid Request (-32600), not a
     * parse error (JSON-RPC 2.0 section 7 examples). */
    json_t *root =
        json_loadb(data, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        char msg[256];
        snprintf(msg, sizeof(msg), "Parse error: %s (at byte %d)", jerr.text, jerr.position);
        *error_response = jrpc_error(NULL, JRPC_PARSE_ERROR, msg, NULL);
        return AB_PROTO;
    }
    *out = root;
    return AB_OK;
}

static bool valid_id(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id);
}

static ab_status invalid(json_t *elem, const char *why, json_t **error_response)
{
    const json_t *id = json_is_object(elem) ? json_object_get(elem, "id") : NULL;
    char msg[256];
    snprintf(msg, sizeof(msg), "Invalid Request: %s", why);
    *error_response = jrpc_error(valid_id(id) ? id : NULL, JRPC_INVALID_REQUEST, msg, NULL);
    return AB_PROTO;
}

ab_status jrpc_classify(json_t *elem, struct jrpc_msg *msg, json_t **error_response)
{
    memset(msg, 0, sizeof(*msg));
    if (!json_is_object(elem))
        return invalid(elem, "a message must be a JSON object", error_response);
    const json_t *ver = json_object_get(elem, "jsonrpc");
    if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0)
        return invalid(elem, "\"jsonrpc\" must be \"2.0\"", error_response);

    json_t *id = json_object_get(elem, "id");
    json_t *method = json_object_get(elem, "method");
    if (method) {
        if (!json_is_string(method))
            return invalid(elem, "\"method\" must be a string", error_response);
        if (json_object_get(elem, "result") || json_object_get(elem, "error"))
            return invalid(elem, "a request cannot carry \"result\" or \"error\"", error_response);
        json_t *params = json_object_get(elem, "params");
        if (params && !json_is_object(params) && !json_is_array(params))
            return invalid(elem, "\"params\" must be an object or an array", error_response);
        if (id) {
            if (json_is_null(id))
                return invalid(elem, "request id must not be null", error_response);
            if (!valid_id(id))
                return invalid(elem, "request id must be a string or an integer", error_response);
            msg->kind = JRPC_REQUEST;
            msg->id = id;
        } else {
            msg->kind = JRPC_NOTIFICATION;
        }
        msg->method = json_string_value(method);
        msg->params = params;
        return AB_OK;
    }

    /* A response (to a request we sent). */
    json_t *result = json_object_get(elem, "result");
    json_t *error = json_object_get(elem, "error");
    if (!id)
        return invalid(elem, "message has neither \"method\" nor \"id\"", error_response);
    if (!!result == !!error)
        return invalid(elem, "a response must have exactly one of \"result\" and \"error\"",
                       error_response);
    if (error) {
        if (!json_is_object(error) || !json_is_integer(json_object_get(error, "code")))
            return invalid(elem, "\"error\" must be an object with an integer \"code\"",
                           error_response);
        msg->kind = JRPC_ERROR;
        msg->error = error;
    } else {
        msg->kind = JRPC_RESPONSE;
        msg->result = result;
    }
    msg->id = id;
    return AB_OK;
}

char *jrpc_dump(const json_t *msg, size_t *len)
{
    /* JSON_COMPACT never emits raw newlines; JSON_ENSURE_ASCII is not needed (UTF-8 is
     * fine on every transport) and would double the size of non-ASCII text. */
    char *s = json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s && len)
        *len = strlen(s);
    return s;
}

void jrpc_id_to_text(const json_t *id, char *out, size_t cap)
{
    if (json_is_integer(id))
        snprintf(out, cap, "%lld", (long long)json_integer_value(id));
    else if (json_is_string(id))
        snprintf(out, cap, "\"%s\"", json_string_value(id));
    else
        snprintf(out, cap, "null");
}

bool jrpc_id_equal(const json_t *a, const json_t *b)
{
    if (!a || !b)
        return false;
    if (json_is_integer(a) && json_is_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    if (json_is_string(a) && json_is_string(b))
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    return false;
}
