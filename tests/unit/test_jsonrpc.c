/* Unit tests for src/jsonrpc: parsing, classification, builders, ids. */
#include "t.h"

#include <stdlib.h>

#include "jsonrpc/jsonrpc.h"

static json_t *parse_ok(const char *s)
{
    json_t *root = NULL, *err = NULL;
    T_OK(jrpc_parse(s, strlen(s), &root, &err));
    T_ASSERT(err == NULL);
    return root;
}

static int error_code(const json_t *resp)
{
    return (int)json_integer_value(json_object_get(json_object_get(resp, "error"), "code"));
}

static void t_parse_error(void)
{
    json_t *root = NULL, *err = NULL;
    T_EQ_INT(jrpc_parse("{\"a\":", 5, &root, &err), AB_PROTO);
    T_EQ_INT(error_code(err), JRPC_PARSE_ERROR);
    T_ASSERT(json_is_null(json_object_get(err, "id")));
    json_decref(err);
    T_EQ_INT(jrpc_parse("{\"a\":1,\"a\":2}", 13, &root, &err), AB_PROTO);
    json_decref(err);
}

static void t_classify(void)
{
    struct jrpc_msg m;
    json_t *err = NULL;
    json_t *r = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}");
    T_OK(jrpc_classify(r, &m, &err));
    T_EQ_INT(m.kind, JRPC_REQUEST);
    T_EQ_STR(m.method, "ping");
    T_EQ_INT(json_integer_value(m.id), 7);
    json_decref(r);

    r = parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    T_OK(jrpc_classify(r, &m, &err));
    T_EQ_INT(m.kind, JRPC_NOTIFICATION);
    T_ASSERT(m.id == NULL);
    json_decref(r);

    r = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"x\":1}}");
    T_OK(jrpc_classify(r, &m, &err));
    T_EQ_INT(m.kind, JRPC_RESPONSE);
    json_decref(r);

    r = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"error\":{\"code\":-1,\"message\":\"x\"}}");
    T_OK(jrpc_classify(r, &m, &err));
    T_EQ_INT(m.kind, JRPC_ERROR);
    json_decref(r);

    const char *bad[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":3}",
        "{\"jsonrpc\":\"2.1\",\"id\":1,\"method\":\"ping\"}",
        "{\"id\":1,\"method\":\"ping\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{\"code\":1}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"no code\"}}",
        "[1,2]",
        "\"str\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = parse_ok(bad[i]);
        err = NULL;
        T_EQ_INT(jrpc_classify(r, &m, &err), AB_PROTO);
        T_EQ_INT(error_code(err), JRPC_INVALID_REQUEST);
        json_decref(err);
        json_decref(r);
    }
    /* The id is echoed when it could be read. */
    r = parse_ok("{\"jsonrpc\":\"1.0\",\"id\":\"keep\",\"method\":\"ping\"}");
    T_EQ_INT(jrpc_classify(r, &m, &err), AB_PROTO);
    T_EQ_STR(json_string_value(json_object_get(err, "id")), "keep");
    json_decref(err);
    json_decref(r);
}

static void t_builders_and_dump(void)
{
    json_t *id = json_integer(3);
    json_t *res = jrpc_result(id, json_pack("{s:s}", "text", "line1\nline2\u00e9"));
    size_t len;
    char *s = jrpc_dump(res, &len);
    T_ASSERT(strchr(s, '\n') == NULL); /* stdio framing: no raw newlines */
    T_EQ_INT(len, strlen(s));
    free(s);
    json_decref(res);
    json_t *e = jrpc_error(id, JRPC_METHOD_NOT_FOUND, "Method not found", json_string("d"));
    T_EQ_INT(error_code(e), JRPC_METHOD_NOT_FOUND);
    T_EQ_STR(json_string_value(json_object_get(json_object_get(e, "error"), "data")), "d");
    json_decref(e);
    json_t *n = jrpc_notification("notifications/progress", json_object());
    T_ASSERT(json_object_get(n, "id") == NULL);
    json_decref(n);
    /* NUL inside a string survives a round trip. */
    json_t *root = NULL, *err = NULL;
    const char nul[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"c\":\"a\\u0000b\"}}";
    T_OK(jrpc_parse(nul, sizeof(nul) - 1, &root, &err));
    json_t *c = json_object_get(json_object_get(root, "params"), "c");
    T_EQ_INT(json_string_length(c), 3);
    char *d = jrpc_dump(root, NULL);
    T_ASSERT(strstr(d, "\\u0000") != NULL);
    free(d);
    json_decref(root);

    json_t *a = json_string("1"), *b = json_integer(1), *c2 = json_integer(1);
    T_ASSERT(!jrpc_id_equal(a, b));
    T_ASSERT(jrpc_id_equal(b, c2));
    char txt[32];
    jrpc_id_to_text(a, txt, sizeof(txt));
    T_EQ_STR(txt, "\"1\"");
    json_decref(a);
    json_decref(b);
    json_decref(c2);
    json_decref(id);
}

static const struct t_case cases[] = {
    T_CASE(t_parse_error), T_CASE(t_classify), T_CASE(t_builders_and_dump), {0}};
T_MAIN(cases)
