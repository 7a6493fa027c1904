/* Unit tests for src/mcp/schema.c: each keyword, error paths naming the field. */
#include "t.h"

#include "mcp/schema.h"

static json_t *J(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
    if (!j)
        T_FAIL("bad test JSON: %s (%s)", s, e.text);
    return j;
}

static void expect(const char *schema, const char *inst, const char *err_or_null)
{
    json_t *s = J(schema), *i = J(inst);
    struct ab_err err;
    ab_err_clear(&err);
    ab_status rc = mcp_schema_validate(s, i, &err);
    if (!err_or_null) {
        if (rc)
            T_FAIL("%s vs %s: unexpected error: %s", schema, inst, err.msg);
    } else {
        if (!rc)
            T_FAIL("%s vs %s: expected error '%s'", schema, inst, err_or_null);
        if (strcmp(err.msg, err_or_null) != 0)
            T_FAIL("%s vs %s:\n  got:      %s\n  expected: %s", schema, inst, err.msg,
                   err_or_null);
    }
    json_decref(s);
    json_decref(i);
}

static const char *exec_schema =
    "{\"type\":\"object\",\"properties\":{\"command\":{\"type\":\"string\",\"minLength\":1},"
    "\"timeout\":{\"type\":\"integer\",\"minimum\":0},\"env\":{\"type\":\"object\","
    "\"additionalProperties\":{\"type\":\"string\"}},\"mode\":{\"enum\":[\"a\",\"b\"]},"
    "\"files\":{\"type\":\"array\",\"maxItems\":2,\"items\":{\"type\":\"object\",\"properties\":"
    "{\"path\":{\"type\":\"string\"}},\"required\":[\"path\"]}}},\"required\":[\"command\"],"
    "\"additionalProperties\":false}";

static void t_objects(void)
{
    expect(exec_schema, "{\"command\":\"ls\"}", NULL);
    expect(exec_schema, "{}", "command: is required");
    expect(exec_schema, "{\"command\":\"\"}", "command: must not be empty");
    expect(exec_schema, "{\"command\":\"ls\",\"timeout\":\"5\"}",
           "timeout: must be an integer (got string)");
    expect(exec_schema, "{\"command\":\"ls\",\"timeout\":5.0}", NULL);
    expect(exec_schema, "{\"command\":\"ls\",\"timeout\":-1}", "timeout: must be >= 0 (got -1)");
    expect(exec_schema, "{\"command\":\"ls\",\"bogus\":1}",
           "bogus: unknown property (allowed: command, timeout, env, mode, files)");
    expect(exec_schema, "{\"command\":\"ls\",\"env\":{\"A\":1}}",
           "env.A: must be a string (got integer)");
    expect(exec_schema, "{\"command\":\"ls\",\"mode\":\"c\"}", "mode: must be one of [\"a\",\"b\"]");
    expect(exec_schema, "{\"command\":\"ls\",\"files\":[{\"path\":\"x\"},{}]}",
           "files[1].path: is required");
    expect(exec_schema, "{\"command\":\"ls\",\"files\":[{\"path\":\"x\"},{\"path\":\"y\"},{}]}",
           "files: must have at most 2 items");
    expect(exec_schema, "[]", "(arguments): must be an object (got array)");
}

static void t_combinators_and_refs(void)
{
    const char *s = "{\"$defs\":{\"p\":{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}},"
                    "\"type\":\"object\",\"properties\":{\"name\":{\"$ref\":\"#/$defs/p\"},"
                    "\"v\":{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"object\",\"required\":"
                    "[\"b64\"]}]}}}";
    expect(s, "{\"name\":\"abc\"}", NULL);
    expect(s, "{\"name\":\"ABC\"}", "name: must match the pattern ^[a-z]+$");
    expect(s, "{\"v\":\"text\"}", NULL);
    expect(s, "{\"v\":{\"b64\":\"x\"}}", NULL);
    expect(s, "{\"v\":3}", "v: does not match any allowed form (v: must be a string (got integer))");
    expect("{\"type\":[\"string\",\"null\"]}", "null", NULL);
    expect("{\"type\":[\"string\",\"null\"]}", "1", "(arguments): must be string or null (got integer)");
    expect("{\"not\":{\"type\":\"string\"}}", "\"x\"", "(arguments): matches a form that is not allowed");
    expect("{\"anyOf\":[{\"minimum\":5},{\"maximum\":1}]}", "3",
           "(arguments): does not match any allowed form ((arguments): must be >= 5 (got 3))");
    expect("{\"const\":\"x\"}", "\"y\"", "(arguments): must be \"x\"");
    expect("{\"maxLength\":2}", "\"\u00e9\u00e9\"", NULL); /* counts code points */
    expect("{\"uniqueItems\":true}", "[1,2,1]", "(arguments): items must be unique (items 0 and 2 are equal)");
    expect("true", "{\"anything\":1}", NULL);
    expect("{\"properties\":{\"x\":false}}", "{\"x\":1}", "x: is not allowed");
}

static void t_self_ref_terminates(void)
{
    /* A schema that refers to itself must not recurse forever. */
    json_t *s = J("{\"$ref\":\"#\"}");
    json_t *i = J("1");
    struct ab_err err;
    T_EQ_INT(mcp_schema_validate(s, i, &err), AB_LIMIT);
    json_decref(s);
    json_decref(i);
}

static const struct t_case cases[] = {
    T_CASE(t_objects), T_CASE(t_combinators_and_refs), T_CASE(t_self_ref_terminates), {0}};
T_MAIN(cases)
