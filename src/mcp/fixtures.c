/*
 * fixtures.c - conformance-suite fixtures (see fixtures.h). Texts and shapes are exactly
 * what the suite's scenarios check (conformance 0.1.16: tools-call-*, resources-*,
 * prompts-*, completion-complete, elicitation-sep1034/sep1330, json-schema-2020-12,
 * server-sse-polling).
 */
#include "mcp/fixtures.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jsonrpc/jsonrpc.h"
#include "mcp/server.h"

/* A 1x1 red PNG and an 8-sample 8 kHz mono WAV, made for these fixtures. */
static const char png_1x1[] =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
static const char wav_tiny[] =
    "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static json_t *image_block(void)
{
    return json_pack("{s:s,s:s,s:s}", "type", "image", "data", png_1x1, "mimeType", "image/png");
}

/* ---- tools ---- */

static json_t *t_simple_text(struct mcp_call *call, const json_t *args, void *arg)
{
    return mcp_text_result("This is a simple text response for testing.", (size_t)-1, false);
}

static json_t *t_image(struct mcp_call *call, const json_t *args, void *arg)
{
    return json_pack("{s:[o]}", "content", image_block());
}

static json_t *t_audio(struct mcp_call *call, const json_t *args, void *arg)
{
    return json_pack("{s:[{s:s,s:s,s:s}]}", "content", "type", "audio", "data", wav_tiny,
                     "mimeType", "audio/wav");
}

static json_t *t_embedded(struct mcp_call *call, const json_t *args, void *arg)
{
    return json_pack("{s:[{s:s,s:{s:s,s:s,s:s}}]}", "content", "type", "resource", "resource",
                     "uri", "test://embedded-resource", "mimeType", "text/plain", "text",
                     "This is an embedded resource content.");
}

static json_t *t_mixed(struct mcp_call *call, const json_t *args, void *arg)
{
    return json_pack("{s:[{s:s,s:s},o,{s:s,s:{s:s,s:s,s:s}}]}", "content", "type", "text", "text",
                     "Multiple content types test:", image_block(), "type", "resource",
                     "resource", "uri", "test://mixed-content-resource", "mimeType",
                     "application/json", "text", "{\"test\":\"data\",\"value\":123}");
}

static json_t *t_logging(struct mcp_call *call, const json_t *args, void *arg)
{
    mcp_call_log(call, MCP_LOG_INFO, NULL, json_string("Tool execution started"));
    sleep_ms(50);
    mcp_call_log(call, MCP_LOG_INFO, NULL, json_string("Tool processing data"));
    sleep_ms(50);
    mcp_call_log(call, MCP_LOG_INFO, NULL, json_string("Tool execution completed"));
    return mcp_text_result("Tool with logging executed successfully", (size_t)-1, false);
}

static json_t *t_error(struct mcp_call *call, const json_t *args, void *arg)
{
    return mcp_text_result("This tool intentionally returns an error for testing", (size_t)-1,
                           true);
}

static json_t *t_progress(struct mcp_call *call, const json_t *args, void *arg)
{
    mcp_call_progress(call, 0, 100, NULL);
    sleep_ms(50);
    mcp_call_progress(call, 50, 100, NULL);
    sleep_ms(50);
    mcp_call_progress(call, 100, 100, NULL);
    return mcp_text_result("Tool with progress executed successfully", (size_t)-1, false);
}

static json_t *t_sampling(struct mcp_call *call, const json_t *args, void *arg)
{
    if (!mcp_call_client_can(call, "sampling"))
        return mcp_text_result("Error: the client does not support sampling", (size_t)-1, true);
    const char *prompt = json_string_value(json_object_get(args, "prompt"));
    json_t *params = json_pack("{s:[{s:s,s:{s:s,s:s}}],s:i}", "messages", "role", "user",
                               "content", "type", "text", "text", prompt ? prompt : "",
                               "maxTokens", 100);
    json_t *res = NULL;
    struct ab_err err;
    ab_err_clear(&err);
    if (mcp_call_request(call, "sampling/createMessage", params, 60000, &res, &err) != AB_OK) {
        char text[1200];
        snprintf(text, sizeof(text), "Error: sampling failed: %s", err.msg);
        return mcp_text_result(text, (size_t)-1, true);
    }
    const char *reply = json_string_value(json_object_get(json_object_get(res, "content"), "text"));
    char *text = NULL;
    if (asprintf(&text, "LLM response: %s", reply ? reply : "") < 0)
        text = NULL;
    json_t *r = mcp_text_result(text ? text : "LLM response: ", (size_t)-1, false);
    free(text);
    json_decref(res);
    return r;
}

static json_t *elicit(struct mcp_call *call, json_t *params, const char *prefix)
{
    if (!mcp_call_client_can(call, "elicitation")) {
        json_decref(params);
        return mcp_text_result("Error: the client does not support elicitation", (size_t)-1,
                               true);
    }
    json_t *res = NULL;
    struct ab_err err;
    ab_err_clear(&err);
    if (mcp_call_request(call, "elicitation/create", params, 60000, &res, &err) != AB_OK) {
        char text[1200];
        snprintf(text, sizeof(text), "Error: elicitation failed: %s", err.msg);
        return mcp_text_result(text, (size_t)-1, true);
    }
    const char *action = json_string_value(json_object_get(res, "action"));
    char *content = json_dumps(json_object_get(res, "content") ?: json_null(),
                               JSON_COMPACT | JSON_ENCODE_ANY);
    char *text = NULL;
    if (asprintf(&text, "%saction=%s, content=%s", prefix, action ? action : "?",
                 content ? content : "null") < 0)
        text = NULL;
    json_t *r = mcp_text_result(text ? text : prefix, (size_t)-1, false);
    free(text);
    free(content);
    json_decref(res);
    return r;
}

static json_t *t_elicitation(struct mcp_call *call, const json_t *args, void *arg)
{
    const char *message = json_string_value(json_object_get(args, "message"));
    json_t *params = json_pack(
        "{s:s,s:{s:s,s:{s:{s:s,s:s},s:{s:s,s:s}},s:[s,s]}}", "message", message ? message : "",
        "requestedSchema", "type", "object", "properties", "username", "type", "string",
        "description", "User's response", "email", "type", "string", "description",
        "User's email address", "required", "username", "email");
    return elicit(call, params, "User response: ");
}

static json_t *t_sep1034(struct mcp_call *call, const json_t *args, void *arg)
{
    json_t *params = json_pack(
        "{s:s,s:{s:s,s:{s:{s:s,s:s},s:{s:s,s:i},s:{s:s,s:f},s:{s:s,s:[s,s,s],s:s},s:{s:s,s:b}}}}",
        "message", "Please review your profile (every field has a default)", "requestedSchema",
        "type", "object", "properties", "name", "type", "string", "default", "John Doe", "age",
        "type", "integer", "default", 30, "score", "type", "number", "default", 95.5, "status",
        "type", "string", "enum", "active", "inactive", "pending", "default", "active",
        "verified", "type", "boolean", "default", 1);
    return elicit(call, params, "Elicitation completed: ");
}

static json_t *t_sep1330(struct mcp_call *call, const json_t *args, void *arg)
{
    json_t *props = json_object();
    json_object_set_new(props, "untitledSingle",
                        json_pack("{s:s,s:[s,s,s]}", "type", "string", "enum", "option1",
                                  "option2", "option3"));
    json_object_set_new(
        props, "titledSingle",
        json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "type", "string", "oneOf", "const",
                  "value1", "title", "First Option", "const", "value2", "title", "Second Option",
                  "const", "value3", "title", "Third Option"));
    json_object_set_new(props, "legacyEnum",
                        json_pack("{s:s,s:[s,s,s],s:[s,s,s]}", "type", "string", "enum", "opt1",
                                  "opt2", "opt3", "enumNames", "Option One", "Option Two",
                                  "Option Three"));
    json_object_set_new(props, "untitledMulti",
                        json_pack("{s:s,s:{s:s,s:[s,s,s]}}", "type", "array", "items", "type",
                                  "string", "enum", "option1", "option2", "option3"));
    json_object_set_new(
        props, "titledMulti",
        json_pack("{s:s,s:{s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}}", "type", "array", "items",
                  "anyOf", "const", "value1", "title", "First Choice", "const", "value2",
                  "title", "Second Choice", "const", "value3", "title", "Third Choice"));
    json_t *params = json_pack("{s:s,s:{s:s,s:o}}", "message", "Choose your options",
                               "requestedSchema", "type", "object", "properties", props);
    return elicit(call, params, "Elicitation completed: ");
}

static json_t *t_schema2020(struct mcp_call *call, const json_t *args, void *arg)
{
    return mcp_text_result("JSON Schema 2020-12 tool called", (size_t)-1, false);
}

static json_t *t_reconnection(struct mcp_call *call, const json_t *args, void *arg)
{
    /* SEP-1699: close the SSE connection mid-call; the result is delivered after the client
     * reconnects with Last-Event-ID. */
    sleep_ms(50);
    mcp_call_disconnect(call);
    sleep_ms(200);
    return mcp_text_result("Reconnection test completed successfully", (size_t)-1, false);
}

struct fixture_tool {
    const char *name;
    const char *description;
    mcp_tool_fn fn;
};

static const struct fixture_tool fixture_tools[] = {
    {"test_simple_text", "Returns a simple text response", t_simple_text},
    {"test_image_content", "Returns a 1x1 PNG image", t_image},
    {"test_audio_content", "Returns a tiny WAV audio clip", t_audio},
    {"test_embedded_resource", "Returns an embedded text resource", t_embedded},
    {"test_multiple_content_types", "Returns text, image and resource content", t_mixed},
    {"test_tool_with_logging", "Sends three info log messages while it runs", t_logging},
    {"test_error_handling", "Always returns a tool error", t_error},
    {"test_tool_with_progress", "Reports progress 0, 50 and 100 of 100", t_progress},
    {"test_elicitation_sep1034_defaults", "Elicits a form whose fields all have defaults",
     t_sep1034},
    {"test_elicitation_sep1330_enums", "Elicits a form with every enum variant", t_sep1330},
    {"test_reconnection", "Closes its SSE stream mid-call to test resumption", t_reconnection},
};

ab_status mcp_fixtures_register(struct mcp_server *srv, struct ab_err *err)
{
    ab_status rc;
    for (size_t i = 0; i < sizeof(fixture_tools) / sizeof(fixture_tools[0]); i++) {
        json_t *def = json_pack("{s:s,s:s,s:{s:s,s:{}}}", "name", fixture_tools[i].name,
                                "description", fixture_tools[i].description, "inputSchema",
                                "type", "object", "properties");
        if ((rc = mcp_server_add_tool(srv, def, fixture_tools[i].fn, NULL, err)))
            return rc;
    }
    json_t *def = json_pack("{s:s,s:s,s:{s:s,s:{s:{s:s,s:s}},s:[s]}}", "name", "test_sampling",
                            "description", "Asks the client's LLM to answer a prompt",
                            "inputSchema", "type", "object", "properties", "prompt", "type",
                            "string", "description", "The prompt to send to the LLM", "required",
                            "prompt");
    if ((rc = mcp_server_add_tool(srv, def, t_sampling, NULL, err)))
        return rc;
    def = json_pack("{s:s,s:s,s:{s:s,s:{s:{s:s,s:s}},s:[s]}}", "name", "test_elicitation",
                    "description", "Asks the user for a username and an email", "inputSchema",
                    "type", "object", "properties", "message", "type", "string", "description",
                    "The message to show the user", "required", "message");
    if ((rc = mcp_server_add_tool(srv, def, t_elicitation, NULL, err)))
        return rc;
    def = json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:{s:s,s:{s:{s:s},s:{s:s}}}},s:{s:{s:s},s:{s:s}},"
                    "s:b}}",
                    "name", "json_schema_2020_12_tool", "description",
                    "Tool with JSON Schema 2020-12 features", "inputSchema", "$schema",
                    "https://json-schema.org/draft/2020-12/schema", "type", "object", "$defs",
                    "address", "type", "object", "properties", "street", "type", "string", "city",
                    "type", "string", "properties", "name", "type", "string", "address", "$ref",
                    "#/$defs/address", "additionalProperties", 0);
    return mcp_server_add_tool(srv, def, t_schema2020, NULL, err);
}

/* ---- resources, prompts, completion ---- */

static json_t *fixture_resources(void)
{
    return json_pack("[{s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s}]", "uri",
                     "test://static-text", "name", "Static Text Resource", "description",
                     "A static text resource for testing", "mimeType", "text/plain", "uri",
                     "test://static-binary", "name", "Static Binary Resource", "description",
                     "A static binary resource (image) for testing", "mimeType", "image/png",
                     "uri", "test://watched-resource", "name", "Watched Resource", "description",
                     "A resource that can be subscribed to", "mimeType", "text/plain");
}

static json_t *fixture_prompts(void)
{
    return json_pack(
        "[{s:s,s:s},{s:s,s:s,s:[{s:s,s:s,s:b},{s:s,s:s,s:b}]},{s:s,s:s,s:[{s:s,s:s,s:b}]},"
        "{s:s,s:s}]",
        "name", "test_simple_prompt", "description", "A simple prompt without arguments", "name",
        "test_prompt_with_arguments", "description", "A prompt with two arguments", "arguments",
        "name", "arg1", "description", "First test argument", "required", 1, "name", "arg2",
        "description", "Second test argument", "required", 1, "name",
        "test_prompt_with_embedded_resource", "description", "A prompt embedding a resource",
        "arguments", "name", "resourceUri", "description", "URI of the resource to embed",
        "required", 1, "name", "test_prompt_with_image", "description",
        "A prompt with an image");
}

static json_t *read_resource(const char *uri, int *code, char *msg, size_t cap)
{
    if (strcmp(uri, "test://static-text") == 0)
        return json_pack("{s:[{s:s,s:s,s:s}]}", "contents", "uri", uri, "mimeType", "text/plain",
                         "text", "This is the content of the static text resource.");
    if (strcmp(uri, "test://static-binary") == 0)
        return json_pack("{s:[{s:s,s:s,s:s}]}", "contents", "uri", uri, "mimeType", "image/png",
                         "blob", png_1x1);
    if (strcmp(uri, "test://watched-resource") == 0)
        return json_pack("{s:[{s:s,s:s,s:s}]}", "contents", "uri", uri, "mimeType", "text/plain",
                         "text", "Watched resource content");
    const char *pfx = "test://template/";
    size_t pl = strlen(pfx);
    if (strncmp(uri, pfx, pl) == 0) {
        const char *id = uri + pl;
        const char *slash = strchr(id, '/');
        if (slash && strcmp(slash, "/data") == 0 && slash > id) {
            char idbuf[256];
            snprintf(idbuf, sizeof(idbuf), "%.*s", (int)(slash - id), id);
            char data[320];
            snprintf(data, sizeof(data), "Data for ID: %s", idbuf);
            json_t *body = json_pack("{s:s,s:b,s:s}", "id", idbuf, "templateTest", 1, "data", data);
            char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(body);
            json_t *r = json_pack("{s:[{s:s,s:s,s:s}]}", "contents", "uri", uri, "mimeType",
                                  "application/json", "text", text ? text : "{}");
            free(text);
            return r;
        }
    }
    *code = MCP_RESOURCE_NOT_FOUND;
    snprintf(msg, cap, "Resource not found: %s", uri);
    return NULL;
}

static json_t *get_prompt(const char *name, const json_t *args, int *code, char *msg, size_t cap)
{
    if (strcmp(name, "test_simple_prompt") == 0)
        return json_pack("{s:[{s:s,s:{s:s,s:s}}]}", "messages", "role", "user", "content", "type",
                         "text", "text", "This is a simple prompt for testing.");
    if (strcmp(name, "test_prompt_with_arguments") == 0) {
        const char *a1 = json_string_value(json_object_get(args, "arg1"));
        const char *a2 = json_string_value(json_object_get(args, "arg2"));
        if (!a1 || !a2) {
            *code = JRPC_INVALID_PARAMS;
            snprintf(msg, cap, "Invalid params: arguments arg1 and arg2 are required");
            return NULL;
        }
        char text[1024];
        snprintf(text, sizeof(text), "Prompt with arguments: arg1='%s', arg2='%s'", a1, a2);
        return json_pack("{s:[{s:s,s:{s:s,s:s}}]}", "messages", "role", "user", "content", "type",
                         "text", "text", text);
    }
    if (strcmp(name, "test_prompt_with_embedded_resource") == 0) {
        const char *uri = json_string_value(json_object_get(args, "resourceUri"));
        if (!uri) {
            *code = JRPC_INVALID_PARAMS;
            snprintf(msg, cap, "Invalid params: argument resourceUri is required");
            return NULL;
        }
        return json_pack("{s:[{s:s,s:{s:s,s:{s:s,s:s,s:s}}},{s:s,s:{s:s,s:s}}]}", "messages",
                         "role", "user", "content", "type", "resource", "resource", "uri", uri,
                         "mimeType", "text/plain", "text",
                         "Embedded resource content for testing.", "role", "user", "content",
                         "type", "text", "text", "Please process the embedded resource above.");
    }
    if (strcmp(name, "test_prompt_with_image") == 0)
        return json_pack("{s:[{s:s,s:o},{s:s,s:{s:s,s:s}}]}", "messages", "role", "user",
                         "content", image_block(), "role", "user", "content", "type", "text",
                         "text", "Please analyze the image above.");
    *code = JRPC_INVALID_PARAMS;
    snprintf(msg, cap, "Invalid params: unknown prompt %s", name);
    return NULL;
}

static json_t *complete(const json_t *params, int *code, char *msg, size_t cap)
{
    const json_t *ref = json_object_get(params, "ref");
    const json_t *argument = json_object_get(params, "argument");
    const char *type = json_string_value(json_object_get(ref, "type"));
    const char *value = json_string_value(json_object_get(argument, "value"));
    if (!type || !json_is_object(argument) || !value) {
        *code = JRPC_INVALID_PARAMS;
        snprintf(msg, cap, "Invalid params: completion needs ref and argument {name, value}");
        return NULL;
    }
    static const char *const words[] = {"paris", "park", "party", "pasta", "hello", "world"};
    json_t *values = json_array();
    if (strcmp(type, "ref/prompt") == 0) {
        const char *name = json_string_value(json_object_get(ref, "name"));
        if (!name || (strcmp(name, "test_prompt_with_arguments") != 0 &&
                      strcmp(name, "test_prompt_with_embedded_resource") != 0)) {
            json_decref(values);
            *code = JRPC_INVALID_PARAMS;
            snprintf(msg, cap, "Invalid params: unknown prompt %s", name ? name : "(none)");
            return NULL;
        }
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (strncmp(words[i], value, strlen(value)) == 0)
                json_array_append_new(values, json_string(words[i]));
    } else if (strcmp(type, "ref/resource") != 0) {
        json_decref(values);
        *code = JRPC_INVALID_PARAMS;
        snprintf(msg, cap, "Invalid params: ref.type must be ref/prompt or ref/resource");
        return NULL;
    }
    size_t n = json_array_size(values);
    return json_pack("{s:{s:o,s:i,s:b}}", "completion", "values", values, "total", (int)n,
                     "hasMore", 0);
}

json_t *mcp_fixtures_handle(bool enabled, json_t *subscriptions, pthread_mutex_t *lock,
                            const char *method, const json_t *params, int *code, char *msg,
                            size_t msgcap)
{
    *code = 0;
    if (strcmp(method, "resources/list") == 0)
        return json_pack("{s:o}", "resources", enabled ? fixture_resources() : json_array());
    if (strcmp(method, "resources/templates/list") == 0) {
        json_t *t = enabled ? json_pack("[{s:s,s:s,s:s,s:s}]", "uriTemplate",
                                        "test://template/{id}/data", "name", "Template Resource",
                                        "description", "A resource template with an id",
                                        "mimeType", "application/json")
                            : json_array();
        return json_pack("{s:o}", "resourceTemplates", t);
    }
    if (strcmp(method, "prompts/list") == 0)
        return json_pack("{s:o}", "prompts", enabled ? fixture_prompts() : json_array());
    if (strcmp(method, "resources/read") == 0 || strcmp(method, "resources/subscribe") == 0 ||
        strcmp(method, "resources/unsubscribe") == 0) {
        const char *uri = json_string_value(json_object_get(params, "uri"));
        if (!uri) {
            *code = JRPC_INVALID_PARAMS;
            snprintf(msg, msgcap, "Invalid params: uri is required");
            return NULL;
        }
        if (strcmp(method, "resources/read") == 0) {
            if (!enabled) {
                *code = MCP_RESOURCE_NOT_FOUND;
                snprintf(msg, msgcap, "Resource not found: %s", uri);
                return NULL;
            }
            return read_resource(uri, code, msg, msgcap);
        }
        if (!enabled)
            return NULL; /* subscribe is not declared: method not found */
        pthread_mutex_lock(lock);
        if (method[10] == 's')
            json_object_set_new(subscriptions, uri, json_true());
        else
            json_object_del(subscriptions, uri);
        pthread_mutex_unlock(lock);
        return json_object();
    }
    if (strcmp(method, "prompts/get") == 0) {
        const char *name = json_string_value(json_object_get(params, "name"));
        if (!name) {
            *code = JRPC_INVALID_PARAMS;
            snprintf(msg, msgcap, "Invalid params: name is required");
            return NULL;
        }
        if (!enabled) {
            *code = JRPC_INVALID_PARAMS;
            snprintf(msg, msgcap, "Invalid params: unknown prompt %s", name);
            return NULL;
        }
        return get_prompt(name, json_object_get(params, "arguments"), code, msg, msgcap);
    }
    if (strcmp(method, "completion/complete") == 0 && enabled)
        return complete(params, code, msg, msgcap);
    return NULL;
}
