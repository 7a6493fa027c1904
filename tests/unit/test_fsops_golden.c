/*
 * test_fsops_golden.c - the data-driven golden tests of the file tools.
 *
 * Every directory tests/data/fsops/<case>/ holds:
 *   case.json     {"tool", "args", "files": [...], "deny": [...], "limits": {...},
 *                  "is_error", "structured": {...}, "content": [...], "after": [...],
 *                  "note"}
 *   expected.txt  the exact tool text (bytes)
 * "files" entries create the sandbox before the call: {"path", "text"} | {"path",
 * "base64"} | {"path", "repeat", "times"} | {"path", "dir": true} | {"path", "symlink":
 * target}. "structured" and "content" are matched as subsets (objects: listed keys must
 * match; arrays: same length, element-wise). "after" lists files whose bytes must equal the
 * given text/base64 after the call. The same files are meant to be replayed over MCP against
 * the real providers (the path layout is the sandbox's: /workspace/...).
 *
 * Each case runs twice, in its own forked process each time: on the hostdir provider with
 * native walk/search, and with both left NULL (core fallbacks). Both must give the same
 * result.
 *
 *   test_fsops_golden [case...]       run all or some cases
 *   FSOPS_GOLDEN_UPDATE=1             (development) write expected.txt from the output
 */
#include "t.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/util.h"
#include "core/fsops.h"
#include "mcp/schema.h"
#include "mcp/server.h"
#include "support/hostdir_provider.h"

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct buf b;
    buf_init(&b, 256u * 1024 * 1024);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(&b, chunk, n))
            break;
    fclose(f);
    char *s = buf_steal(&b, len);
    return s;
}

static void write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        T_FAIL("cannot write %s: %s", path, strerror(errno));
    if (len && fwrite(data, 1, len, f) != len)
        T_FAIL("short write %s", path);
    fclose(f);
}

static void mkdirs(const char *path)
{
    char *p = ab_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(p, 0755);
        *s = '/';
    }
    mkdir(p, 0755);
    free(p);
}

/* File bytes described by a "files"/"after" entry; returns new. */
static char *entry_bytes(const json_t *e, size_t *len)
{
    const json_t *t = json_object_get(e, "text");
    if (json_is_string(t)) {
        *len = json_string_length(t);
        char *s = malloc(*len + 1);
        memcpy(s, json_string_value(t), *len + 1);
        return s;
    }
    const json_t *b = json_object_get(e, "base64");
    if (json_is_string(b)) {
        unsigned char *out;
        if (ab_base64_decode(json_string_value(b), json_string_length(b), &out, len))
            T_FAIL("bad base64 in case");
        return (char *)out;
    }
    const json_t *r = json_object_get(e, "repeat");
    if (json_is_string(r)) {
        size_t unit = json_string_length(r);
        size_t times = (size_t)json_integer_value(json_object_get(e, "times"));
        *len = unit * times;
        char *s = malloc(*len + 1);
        for (size_t i = 0; i < times; i++)
            memcpy(s + i * unit, json_string_value(r), unit);
        s[*len] = '\0';
        return s;
    }
    return NULL;
}

static void setup_files(const char *root, const json_t *files)
{
    char *ws = ab_asprintf("%s/workspace", root);
    mkdirs(ws);
    free(ws);
    size_t i;
    const json_t *e;
    json_array_foreach(files, i, e)
    {
        const char *p = json_string_value(json_object_get(e, "path"));
        char *host = ab_asprintf("%s%s", root, p);
        char *dir = ab_strdup(host);
        *strrchr(dir, '/') = '\0';
        mkdirs(dir);
        free(dir);
        if (json_is_true(json_object_get(e, "dir"))) {
            mkdirs(host);
        } else if (json_is_string(json_object_get(e, "symlink"))) {
            if (symlink(json_string_value(json_object_get(e, "symlink")), host))
                T_FAIL("symlink %s: %s", host, strerror(errno));
        } else {
            size_t len;
            char *data = entry_bytes(e, &len);
            if (!data)
                T_FAIL("file entry %s has no content", p);
            write_all(host, data, len);
            free(data);
        }
        free(host);
    }
}

/* expected is a subset of actual. */
static bool json_subset(const json_t *expected, const json_t *actual, struct buf *where)
{
    if (json_is_object(expected)) {
        if (!json_is_object(actual))
            return false;
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)expected, k, v)
        {
            size_t mark = where->len;
            buf_printf(where, ".%s", k);
            if (!json_subset(v, json_object_get(actual, k), where))
                return false;
            where->len = mark;
        }
        return true;
    }
    if (json_is_array(expected)) {
        if (!json_is_array(actual) || json_array_size(actual) != json_array_size(expected))
            return false;
        for (size_t i = 0; i < json_array_size(expected); i++) {
            size_t mark = where->len;
            buf_printf(where, "[%zu]", i);
            if (!json_subset(json_array_get(expected, i), json_array_get(actual, i), where))
                return false;
            where->len = mark;
        }
        return true;
    }
    return actual && json_equal((json_t *)expected, (json_t *)actual);
}

/* Every golden also proves that its arguments are a valid call and that structuredContent
 * matches the tool's outputSchema, with the validator the MCP layer uses; the schema is the
 * copy embedded into the binary. */
static bool schema_ok(const json_t *sc, const json_t *v, struct buf *why)
{
    struct ab_err err;
    ab_err_clear(&err);
    if (mcp_schema_validate(sc, v, &err) == AB_OK)
        return true;
    buf_printf(why, " %s", err.msg);
    return false;
}

static json_t *load_tool_schema(const char *tool)
{
    char *rel = ab_asprintf("tools/%s.json", tool);
    json_t *s = mcp_embedded_schema(rel);
    if (!s)
        T_FAIL("schema %s is not embedded", rel);
    free(rel);
    if (strcmp(json_string_value(json_object_get(s, "name")), tool) != 0)
        T_FAIL("schema name mismatch for %s", tool);
    return s;
}

static const char *g_src;  /* tests/data/fsops */
static const char *g_case; /* current case name */
static bool g_native;      /* provider implements walk/search */

static uint64_t limit_of(const json_t *limits, const char *key, uint64_t def)
{
    const json_t *v = json_object_get(limits, key);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : def;
}

static void run_case(void)
{
    char *dir = ab_asprintf("%s/%s", g_src, g_case);
    char *cpath = ab_asprintf("%s/case.json", dir);
    json_error_t jerr;
    json_t *c = json_load_file(cpath, JSON_ALLOW_NUL, &jerr);
    if (!c)
        T_FAIL("%s: %s (line %d)", cpath, jerr.text, jerr.line);
    char *root = hostdir_mkdtemp();
    T_ASSERT(root);
    hostdir_rmtree_at_exit(root);
    setup_files(root, json_object_get(c, "files"));

    struct sbx_provider *p;
    struct sbx_handle *h;
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(hostdir_provider_new(root, g_native, g_native, &p, &h, &err));
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(c, "deny"), i, d) hostdir_deny(p, json_string_value(d));

    const json_t *lj = json_object_get(c, "limits");
    struct cfg_tools lim = {
        .execute_timeout_s = 300,
        .execute_max_timeout_s = 3600,
        .execute_max_output_bytes = 1024 * 1024,
        .read_max_bytes = limit_of(lj, "read_max_bytes", 64u * 1024 * 1024),
        .read_max_binary_bytes = limit_of(lj, "read_max_binary_bytes", 500 * 1024),
        .upload_max_bytes = limit_of(lj, "upload_max_bytes", 64u * 1024 * 1024),
        .download_max_bytes = limit_of(lj, "download_max_bytes", 64u * 1024 * 1024),
        .grep_max_count = (int64_t)limit_of(lj, "grep_max_count", 1000),
        .glob_max_matches = (int64_t)limit_of(lj, "glob_max_matches", 10000),
    };
    struct fsops_env env = {.p = p, .h = h, .workspace = "/workspace", .limits = &lim};
    struct fsops_result res;
    fsops_result_init(&res);
    const char *tool = json_string_value(json_object_get(c, "tool"));
    json_t *schema = load_tool_schema(tool);
    struct buf why;
    buf_init(&why, 4096);
    bool args_valid =
        schema_ok(json_object_get(schema, "inputSchema"), json_object_get(c, "args"), &why);
    const json_t *iv = json_object_get(c, "input_valid");
    if (args_valid != (iv ? json_is_true(iv) : true))
        T_FAIL("%s: arguments %s the inputSchema%s", g_case, args_valid ? "pass" : "fail",
               buf_cstr(&why));
    ab_status rc = fsops_call(&env, tool, json_object_get(c, "args"), &res, &err);
    if (rc)
        T_FAIL("%s: fsops_call returned %s: %s", g_case, ab_status_name(rc), err.msg);

    char *epath = ab_asprintf("%s/expected.txt", dir);
    if (getenv("FSOPS_GOLDEN_UPDATE") && g_native) {
        write_all(epath, res.text.data ? res.text.data : "", res.text.len);
    }
    size_t elen = 0;
    char *expected = read_all(epath, &elen);
    if (!expected)
        T_FAIL("%s: missing expected.txt", g_case);
    if (elen != res.text.len || memcmp(expected, buf_cstr(&res.text), elen) != 0) {
        size_t k = 0;
        while (k < elen && k < res.text.len && expected[k] == res.text.data[k])
            k++;
        T_FAIL("%s (%s): text differs at byte %zu\n--- expected (%zu bytes)\n%s\n--- got (%zu "
               "bytes)\n%s\n---",
               g_case, g_native ? "native" : "fallback", k, elen, expected, res.text.len,
               buf_cstr(&res.text));
    }
    const json_t *ie = json_object_get(c, "is_error");
    if (json_is_boolean(ie) && json_is_true(ie) != res.is_error)
        T_FAIL("%s: is_error is %d", g_case, res.is_error);
    if (res.is_error && res.structured)
        T_FAIL("%s: an error result carries structuredContent", g_case);
    if (!res.is_error && !res.structured)
        T_FAIL("%s: a success result has no structuredContent", g_case);
    buf_reset(&why);
    if (res.structured && !schema_ok(json_object_get(schema, "outputSchema"), res.structured, &why))
        T_FAIL("%s: structuredContent does not match the outputSchema:%s", g_case, buf_cstr(&why));
    buf_cleanup(&why);
    json_decref(schema);
    struct buf where;
    buf_init(&where, 4096);
    const json_t *es = json_object_get(c, "structured");
    if (es && !json_subset(es, res.structured, &where)) {
        char *got = res.structured ? json_dumps(res.structured, JSON_SORT_KEYS) : NULL;
        T_FAIL("%s: structuredContent mismatch at %s: %s", g_case, buf_cstr(&where),
               got ? got : "null");
    }
    buf_reset(&where);
    const json_t *ec = json_object_get(c, "content");
    if (ec && !json_subset(ec, res.content, &where)) {
        char *got = res.content ? json_dumps(res.content, 0) : NULL;
        T_FAIL("%s: content mismatch at %s: %.2000s", g_case, buf_cstr(&where), got ? got : "null");
    }
    if (!ec && res.content && strcmp(tool, "download") != 0)
        T_FAIL("%s: unexpected content blocks", g_case);
    const json_t *a;
    json_array_foreach(json_object_get(c, "after"), i, a)
    {
        const char *pth = json_string_value(json_object_get(a, "path"));
        char *host = ab_asprintf("%s%s", root, pth);
        size_t want_len, got_len = 0;
        char *want = entry_bytes(a, &want_len);
        char *got = read_all(host, &got_len);
        if (json_is_true(json_object_get(a, "absent"))) {
            if (got)
                T_FAIL("%s: %s should not exist", g_case, pth);
        } else if (!got || got_len != want_len || memcmp(got, want, want_len) != 0) {
            T_FAIL("%s: after the call %s holds %zu bytes \"%.200s\", expected %zu \"%.200s\"",
                   g_case, pth, got_len, got ? got : "(missing)", want_len, want);
        }
        free(want);
        free(got);
        free(host);
    }
    buf_cleanup(&where);
    fsops_result_cleanup(&res);
    hostdir_provider_free(p);
    hostdir_rmtree(root);
    hostdir_rmtree_at_exit(NULL);
    free(root);
    free(expected);
    free(epath);
    free(cpath);
    free(dir);
    json_decref(c);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    const char *src = getenv("AGENTBOX_SOURCE_DIR");
    char *data = ab_asprintf("%s/tests/data/fsops", src ? src : ".");
    g_src = data;
    DIR *d = opendir(data);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", data);
        return 1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *cj = ab_asprintf("%s/%s/case.json", data, de->d_name);
        bool is_case = cj && access(cj, F_OK) == 0;
        free(cj);
        if (!is_case)
            continue; /* README.md and the like */
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n++] = ab_strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), name_cmp);
    int failed = 0, ran = 0;
    for (size_t i = 0; i < n; i++) {
        bool want = argc <= 1;
        for (int k = 1; k < argc; k++)
            if (strcmp(argv[k], names[i]) == 0)
                want = true;
        if (!want)
            continue;
        for (int variant = 0; variant < 2; variant++) {
            g_case = names[i];
            g_native = variant == 0;
            struct t_case tc = {names[i], run_case};
            int rc = t_run_one(&tc);
            printf("%s %s [%s]\n", rc ? "FAIL" : "ok  ", names[i],
                   g_native ? "native walk/search" : "core fallbacks");
            fflush(stdout);
            ran++;
            if (rc)
                failed++;
        }
    }
    printf("%d/%d passed\n", ran - failed, ran);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(data);
    return failed ? 1 : (ran ? 0 : 1);
}
