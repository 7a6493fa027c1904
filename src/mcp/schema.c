/*
 * schema.c - a small recursive JSON Schema validator, see schema.h for the keyword set.
 *
 * Design: one recursive function over (schema, instance, path). The path is built into a
 * fixed buffer as we descend, so errors can name the field without allocating. Recursion
 * depth is capped (schemas are ours, instances are the caller's: a deeply nested instance
 * only recurses as deep as the schema does, and $ref cycles are cut by the depth cap).
 * For anyOf/oneOf the error reported is "does not match any of the allowed forms" plus the
 * first branch's reason, which is usually the informative one.
 */
#include "mcp/schema.h"

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"

#define MAX_DEPTH 64

struct vctx {
    const json_t *root;
    struct ab_err *err;
    char path[512];
};

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

static ab_status fail(struct vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static ab_status fail(struct vctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ab_err_set(c->err, AB_INVAL, "%s: %s", c->path[0] ? c->path : "(arguments)", msg);
}

static bool type_matches(const char *t, const json_t *v)
{
    if (strcmp(t, "object") == 0)
        return json_is_object(v);
    if (strcmp(t, "array") == 0)
        return json_is_array(v);
    if (strcmp(t, "string") == 0)
        return json_is_string(v);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(t, "null") == 0)
        return json_is_null(v);
    if (strcmp(t, "number") == 0)
        return json_is_number(v);
    if (strcmp(t, "integer") == 0) {
        if (json_is_integer(v))
            return true;
        if (json_is_real(v)) {
            double d = json_real_value(v);
            return isfinite(d) && d == floor(d);
        }
    }
    return false;
}

static size_t utf8_codepoints(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

/* Resolve a local JSON pointer ("#/$defs/address"). */
static const json_t *resolve_ref(const json_t *root, const char *ref)
{
    if (strcmp(ref, "#") == 0)
        return root;
    if (strncmp(ref, "#/", 2) != 0)
        return NULL;
    const json_t *cur = root;
    const char *p = ref + 2;
    char tok[256];
    while (*p && cur) {
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof(tok)) {
            if (p[0] == '~' && p[1] == '1') {
                tok[n++] = '/';
                p += 2;
            } else if (p[0] == '~' && p[1] == '0') {
                tok[n++] = '~';
                p += 2;
            } else {
                tok[n++] = *p++;
            }
        }
        tok[n] = '\0';
        if (*p == '/')
            p++;
        cur = json_is_object(cur) ? json_object_get(cur, tok) : NULL;
    }
    return cur;
}

static ab_status validate(struct vctx *c, const json_t *schema, const json_t *v, int depth);

/* Descend into a child path segment, validate, restore the path. */
static ab_status validate_child(struct vctx *c, const json_t *schema, const json_t *v, int depth,
                                const char *key, long index)
{
    size_t old = strlen(c->path);
    if (key)
        snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old ? "." : "", key);
    else
        snprintf(c->path + old, sizeof(c->path) - old, "[%ld]", index);
    ab_status rc = validate(c, schema, v, depth + 1);
    if (rc == AB_OK)
        c->path[old] = '\0';
    return rc;
}

static bool json_equal_values(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal((json_t *)a, (json_t *)b);
}

static ab_status check_type(struct vctx *c, const json_t *schema, const json_t *v)
{
    const json_t *t = json_object_get(schema, "type");
    if (!t)
        return AB_OK;
    if (json_is_string(t)) {
        if (!type_matches(json_string_value(t), v))
            return fail(c, "must be %s %s (got %s)",
                        strchr("aeiou", json_string_value(t)[0]) ? "an" : "a",
                        json_string_value(t), type_name(v));
        return AB_OK;
    }
    if (json_is_array(t)) {
        size_t i;
        const json_t *e;
        char names[128] = "";
        json_array_foreach(t, i, e)
        {
            if (json_is_string(e) && type_matches(json_string_value(e), v))
                return AB_OK;
            if (json_is_string(e)) {
                size_t l = strlen(names);
                snprintf(names + l, sizeof(names) - l, "%s%s", l ? " or " : "",
                         json_string_value(e));
            }
        }
        return fail(c, "must be %s (got %s)", names, type_name(v));
    }
    return AB_OK;
}

static ab_status check_object(struct vctx *c, const json_t *schema, const json_t *v, int depth)
{
    const json_t *props = json_object_get(schema, "properties");
    const json_t *req = json_object_get(schema, "required");
    const json_t *addl = json_object_get(schema, "additionalProperties");
    ab_status rc;
    if (json_is_array(req)) {
        size_t i;
        const json_t *name;
        json_array_foreach(req, i, name)
        {
            if (json_is_string(name) && !json_object_get(v, json_string_value(name))) {
                size_t old = strlen(c->path);
                snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old ? "." : "",
                         json_string_value(name));
                return fail(c, "is required");
            }
        }
    }
    const json_t *minp = json_object_get(schema, "minProperties");
    const json_t *maxp = json_object_get(schema, "maxProperties");
    if (json_is_integer(minp) && (json_int_t)json_object_size(v) < json_integer_value(minp))
        return fail(c, "must have at least %lld properties", (long long)json_integer_value(minp));
    if (json_is_integer(maxp) && (json_int_t)json_object_size(v) > json_integer_value(maxp))
        return fail(c, "must have at most %lld properties", (long long)json_integer_value(maxp));
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        const json_t *ps = json_is_object(props) ? json_object_get(props, key) : NULL;
        if (ps) {
            if ((rc = validate_child(c, ps, val, depth, key, 0)))
                return rc;
        } else if (addl) {
            if (json_is_false(addl)) {
                size_t old = strlen(c->path);
                snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old ? "." : "", key);
                char allowed[256] = "";
                if (json_is_object(props)) {
                    const char *pk;
                    const json_t *pv;
                    json_object_foreach((json_t *)props, pk, pv)
                    {
                        size_t l = strlen(allowed);
                        snprintf(allowed + l, sizeof(allowed) - l, "%s%s", l ? ", " : "", pk);
                    }
                }
                return fail(c, "unknown property (allowed: %s)", allowed[0] ? allowed : "none");
            }
            if (json_is_object(addl) && (rc = validate_child(c, addl, val, depth, key, 0)))
                return rc;
        }
    }
    return AB_OK;
}

static ab_status check_array(struct vctx *c, const json_t *schema, const json_t *v, int depth)
{
    size_t n = json_array_size(v);
    const json_t *mi = json_object_get(schema, "minItems");
    const json_t *ma = json_object_get(schema, "maxItems");
    if (json_is_integer(mi) && (json_int_t)n < json_integer_value(mi))
        return fail(c, "must have at least %lld item%s", (long long)json_integer_value(mi),
                    json_integer_value(mi) == 1 ? "" : "s");
    if (json_is_integer(ma) && (json_int_t)n > json_integer_value(ma))
        return fail(c, "must have at most %lld item%s", (long long)json_integer_value(ma),
                    json_integer_value(ma) == 1 ? "" : "s");
    const json_t *prefix = json_object_get(schema, "prefixItems");
    const json_t *items = json_object_get(schema, "items");
    size_t start = 0;
    ab_status rc;
    if (json_is_array(prefix)) {
        for (size_t i = 0; i < n && i < json_array_size(prefix); i++)
            if ((rc = validate_child(c, json_array_get(prefix, i), json_array_get(v, i), depth,
                                     NULL, (long)i)))
                return rc;
        start = json_array_size(prefix);
    }
    if (items && (json_is_object(items) || json_is_boolean(items))) {
        for (size_t i = start; i < n; i++)
            if ((rc = validate_child(c, items, json_array_get(v, i), depth, NULL, (long)i)))
                return rc;
    }
    if (json_is_true(json_object_get(schema, "uniqueItems"))) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (json_equal_values(json_array_get(v, i), json_array_get(v, j)))
                    return fail(c, "items must be unique (items %zu and %zu are equal)", i, j);
    }
    return AB_OK;
}

static ab_status check_string(struct vctx *c, const json_t *schema, const json_t *v)
{
    size_t cps = utf8_codepoints(json_string_value(v), json_string_length(v));
    const json_t *mi = json_object_get(schema, "minLength");
    const json_t *ma = json_object_get(schema, "maxLength");
    if (json_is_integer(mi) && (json_int_t)cps < json_integer_value(mi))
        return fail(c, json_integer_value(mi) == 1 ? "must not be empty"
                                                   : "must be at least %lld characters long",
                    (long long)json_integer_value(mi));
    if (json_is_integer(ma) && (json_int_t)cps > json_integer_value(ma))
        return fail(c, "must be at most %lld characters long", (long long)json_integer_value(ma));
    const json_t *pat = json_object_get(schema, "pattern");
    if (json_is_string(pat)) {
        regex_t re;
        if (regcomp(&re, json_string_value(pat), REG_EXTENDED | REG_NOSUB) == 0) {
            /* The value may contain NUL (JSON allows it); regexec sees the prefix only,
             * so reject embedded NULs outright for patterned strings. */
            int m = memchr(json_string_value(v), '\0', json_string_length(v))
                        ? REG_NOMATCH
                        : regexec(&re, json_string_value(v), 0, NULL, 0);
            regfree(&re);
            if (m != 0)
                return fail(c, "must match the pattern %s", json_string_value(pat));
        }
    }
    return AB_OK;
}

static ab_status check_number(struct vctx *c, const json_t *schema, const json_t *v)
{
    double d = json_number_value(v);
    const json_t *k;
    if ((k = json_object_get(schema, "minimum")) && json_is_number(k) && d < json_number_value(k))
        return fail(c, "must be >= %g (got %g)", json_number_value(k), d);
    if ((k = json_object_get(schema, "maximum")) && json_is_number(k) && d > json_number_value(k))
        return fail(c, "must be <= %g (got %g)", json_number_value(k), d);
    if ((k = json_object_get(schema, "exclusiveMinimum")) && json_is_number(k) &&
        d <= json_number_value(k))
        return fail(c, "must be > %g (got %g)", json_number_value(k), d);
    if ((k = json_object_get(schema, "exclusiveMaximum")) && json_is_number(k) &&
        d >= json_number_value(k))
        return fail(c, "must be < %g (got %g)", json_number_value(k), d);
    if ((k = json_object_get(schema, "multipleOf")) && json_is_number(k) &&
        json_number_value(k) > 0) {
        double q = d / json_number_value(k);
        if (fabs(q - nearbyint(q)) > 1e-9)
            return fail(c, "must be a multiple of %g", json_number_value(k));
    }
    return AB_OK;
}

static ab_status validate(struct vctx *c, const json_t *schema, const json_t *v, int depth)
{
    if (depth > MAX_DEPTH)
        return ab_err_set(c->err, AB_LIMIT, "%s: schema nesting too deep", c->path);
    if (json_is_true(schema))
        return AB_OK;
    if (json_is_false(schema))
        return fail(c, "is not allowed");
    if (!json_is_object(schema))
        return AB_OK;

    ab_status rc;
    const json_t *ref = json_object_get(schema, "$ref");
    if (json_is_string(ref)) {
        const json_t *target = resolve_ref(c->root, json_string_value(ref));
        if (!target)
            return ab_err_set(c->err, AB_INTERNAL, "schema error: unresolvable $ref %s",
                              json_string_value(ref));
        if ((rc = validate(c, target, v, depth + 1)))
            return rc;
    }
    if ((rc = check_type(c, schema, v)))
        return rc;

    const json_t *cst = json_object_get(schema, "const");
    if (cst && !json_equal_values(cst, v)) {
        char *want = json_dumps(cst, JSON_ENCODE_ANY | JSON_COMPACT);
        rc = fail(c, "must be %s", want ? want : "the constant value");
        free(want);
        return rc;
    }
    const json_t *en = json_object_get(schema, "enum");
    if (json_is_array(en)) {
        size_t i;
        const json_t *e;
        bool found = false;
        json_array_foreach(en, i, e) found = found || json_equal_values(e, v);
        if (!found) {
            char *list = json_dumps(en, JSON_COMPACT);
            rc = fail(c, "must be one of %s", list ? list : "the allowed values");
            free(list);
            return rc;
        }
    }

    if (json_is_object(v) && (rc = check_object(c, schema, v, depth)))
        return rc;
    if (json_is_array(v) && (rc = check_array(c, schema, v, depth)))
        return rc;
    if (json_is_string(v) && (rc = check_string(c, schema, v)))
        return rc;
    if (json_is_number(v) && (rc = check_number(c, schema, v)))
        return rc;

    size_t i;
    const json_t *sub;
    const json_t *all = json_object_get(schema, "allOf");
    if (json_is_array(all))
        json_array_foreach(all, i, sub) if ((rc = validate(c, sub, v, depth + 1))) return rc;

    const char *path_save = NULL;
    char saved[sizeof(c->path)];
    const json_t *any = json_object_get(schema, "anyOf");
    const json_t *one = json_object_get(schema, "oneOf");
    for (int which = 0; which < 2; which++) {
        const json_t *alts = which == 0 ? any : one;
        if (!json_is_array(alts))
            continue;
        memcpy(saved, c->path, sizeof(saved));
        path_save = saved;
        size_t matches = 0;
        struct ab_err first;
        ab_err_clear(&first);
        json_array_foreach(alts, i, sub)
        {
            struct ab_err e;
            ab_err_clear(&e);
            struct vctx sc = *c;
            sc.err = &e;
            if (validate(&sc, sub, v, depth + 1) == AB_OK)
                matches++;
            else if (first.code == AB_OK)
                first = e;
        }
        memcpy(c->path, path_save, sizeof(saved));
        if (matches == 0)
            return ab_err_set(c->err, AB_INVAL, "%s: does not match any allowed form (%s)",
                              c->path[0] ? c->path : "(arguments)", first.msg);
        if (which == 1 && matches > 1)
            return fail(c, "matches more than one allowed form");
    }
    const json_t *not = json_object_get(schema, "not");
    if (not) {
        struct ab_err e;
        struct vctx sc = *c;
        sc.err = &e;
        if (validate(&sc, not, v, depth + 1) == AB_OK)
            return fail(c, "matches a form that is not allowed");
    }
    return AB_OK;
}

ab_status mcp_schema_validate(const json_t *schema, const json_t *instance, struct ab_err *err)
{
    struct vctx c;
    c.root = schema;
    c.err = err;
    c.path[0] = '\0';
    return validate(&c, schema, instance, 0);
}
