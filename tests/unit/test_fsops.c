/* Unit tests for core/fsops beyond the goldens: Python repr, binary safety (NUL bytes,
 * invalid UTF-8, 10 MiB files, hostile names), the policy seam, sandbox failures, argument
 * checking, cancellation and the execute formatter. */
#include "t.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/util.h"
#include "core/fsops.h"
#include "core/pyrepr.h"
#include "support/hostdir_provider.h"

struct fx {
    char *root;
    struct sbx_provider *p;
    struct sbx_handle *h;
    struct fsops_env env;
};

static void fx_init(struct fx *f, bool native)
{
    memset(f, 0, sizeof(*f));
    f->root = hostdir_mkdtemp();
    T_ASSERT(f->root);
    hostdir_rmtree_at_exit(f->root);
    char *ws = ab_asprintf("%s/workspace", f->root);
    T_OK(mkdir(ws, 0755));
    free(ws);
    struct ab_err err;
    T_OK(hostdir_provider_new(f->root, native, native, &f->p, &f->h, &err));
    f->env = (struct fsops_env){.p = f->p, .h = f->h, .workspace = "/workspace"};
}

static void fx_cleanup(struct fx *f)
{
    hostdir_provider_free(f->p);
    hostdir_rmtree(f->root);
    hostdir_rmtree_at_exit(NULL);
    free(f->root);
}

static void host_write(struct fx *f, const char *sandbox_path, const void *data, size_t len)
{
    char *host = ab_asprintf("%s%s", f->root, sandbox_path);
    int fd = open(host, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        T_FAIL("open %s", host);
    T_EQ_INT(write(fd, data, len), (long long)len);
    close(fd);
    free(host);
}

static json_t *call(struct fx *f, const char *tool, const char *args_json, struct fsops_result *r)
{
    json_error_t je;
    json_t *args = json_loads(args_json, JSON_ALLOW_NUL, &je);
    if (!args)
        T_FAIL("bad test JSON: %s", je.text);
    fsops_result_init(r);
    struct ab_err err;
    ab_err_clear(&err);
    ab_status rc = fsops_call(&f->env, tool, args, r, &err);
    if (rc)
        T_FAIL("%s failed: %s %s", tool, ab_status_name(rc), err.msg);
    json_decref(args);
    return r->structured;
}

/* ---- Python repr ---- */

static void t_pyrepr(void)
{
    const char *cases[][2] = {
        {"abc", "'abc'"},
        {"it's", "\"it's\""},
        {"say \"hi\"", "'say \"hi\"'"},
        {"both'\"", "'both\\'\"'"},
        {"back\\slash", "'back\\\\slash'"},
        {"t\tn\nr\r", "'t\\tn\\nr\\r'"},
        {"\x01\x1f\x7f", "'\\x01\\x1f\\x7f'"},
        {"caf\xc3\xa9", "'caf\xc3\xa9'"},
        {"\xc2\x85", "'\\x85'"},                     /* NEL: Cc */
        {"\xc2\xa0", "'\\xa0'"},                     /* NBSP: Zs, not printable */
        {"\xe2\x80\x8b", "'\\u200b'"},               /* ZERO WIDTH SPACE: Cf */
        {"\xe2\x80\xa8", "'\\u2028'"},               /* LINE SEPARATOR */
        {"\xee\x80\x80", "'\\ue000'"},               /* private use */
        {"\xf0\x9f\x98\x80", "'\xf0\x9f\x98\x80'"},  /* emoji: printable */
        {"\xf3\xa0\x80\x81", "'\\U000e0001'"},       /* LANGUAGE TAG: Cf */
        {"bad\xff", "'bad\\udcff'"},                 /* surrogateescape */
        {"\xe2\x82", "'\\udce2\\udc82'"},            /* truncated sequence */
        {"\xed\xa0\x80", "'\\udced\\udca0\\udc80'"}, /* encoded surrogate is invalid */
        {"", "''"},
    };
    for (size_t i = 0; i < AB_ARRAY_LEN(cases); i++) {
        struct buf b;
        buf_init(&b, 1024);
        T_OK(pyrepr_str(&b, cases[i][0], strlen(cases[i][0])));
        T_EQ_STR(buf_cstr(&b), cases[i][1]);
        buf_cleanup(&b);
    }
    struct buf b;
    buf_init(&b, 1024);
    const char *items[] = {"/a", "/b'c"};
    T_OK(pyrepr_str_list(&b, items, 2));
    T_EQ_STR(buf_cstr(&b), "['/a', \"/b'c\"]");
    buf_reset(&b);
    T_OK(pyrepr_str_list(&b, items, 0));
    T_EQ_STR(buf_cstr(&b), "[]");
    buf_cleanup(&b);
    T_EQ_INT(pyrepr_char_len("a\xff\xc3\xa9", 4), 3);
}

/* ---- binary safety ---- */

static void fill_random(unsigned char *p, size_t n)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
    p[0] = 0; /* NULs and invalid UTF-8 for sure */
    p[1] = 0xff;
}

static void t_ten_mib_roundtrip(void)
{
    for (int native = 0; native < 2; native++) {
        struct fx f;
        fx_init(&f, native);
        size_t n = 10u * 1024 * 1024;
        unsigned char *data = malloc(n);
        fill_random(data, n);
        char *b64 = ab_base64_encode(data, n, NULL);
        json_t *args = json_pack("{s:[{s:s,s:s}]}", "files", "path", "big dir/blob'\".bin",
                                 "content_base64", b64);
        struct fsops_result r;
        fsops_result_init(&r);
        struct ab_err err;
        T_OK(fsops_call(&f.env, "upload", args, &r, &err));
        T_ASSERT(!r.is_error);
        T_ASSERT(json_is_null(
            json_object_get(json_array_get(json_object_get(r.structured, "files"), 0), "error")));
        fsops_result_cleanup(&r);
        json_decref(args);

        fsops_result_init(&r);
        struct fsops_str p = fsops_cstr("/workspace/big dir/blob'\".bin");
        T_OK(fsops_download(&f.env, &p, 1, &r, &err));
        json_t *res = json_object_get(json_array_get(r.content, 1), "resource");
        T_EQ_STR(json_string_value(json_object_get(res, "mimeType")), "application/octet-stream");
        T_EQ_STR(json_string_value(json_object_get(res, "blob")), b64);
        T_EQ_STR(json_string_value(json_object_get(res, "uri")),
                 "file:///workspace/big%20dir/blob%27%22.bin");
        fsops_result_cleanup(&r);

        /* read of the same bytes as a .bin: binary, over the 500 KiB preview cap */
        fsops_result_init(&r);
        T_OK(fsops_read(&f.env, p, 0, 100, &r, &err));
        T_ASSERT(r.is_error);
        T_EQ_STR(buf_cstr(&r.text), "Error: File '/workspace/big dir/blob'\".bin': Binary file "
                                    "exceeds maximum preview size of 512000 bytes");
        fsops_result_cleanup(&r);
        free(b64);
        free(data);
        fx_cleanup(&f);
    }
}

static void t_ten_mib_text_paging(void)
{
    struct fx f;
    fx_init(&f, true);
    /* 10 MiB of numbered lines; read a page deep inside */
    struct buf b;
    buf_init(&b, 11u * 1024 * 1024);
    for (int i = 1; b.len < 10u * 1024 * 1024; i++)
        T_OK(buf_printf(&b, "line %07d %s\n", i, "abcdefghijklmnopqrstuvwxyz0123456789"));
    host_write(&f, "/workspace/ten.txt", b.data, b.len);
    struct fsops_result r;
    call(&f, "read", "{\"path\": \"ten.txt\", \"offset\": 200000, \"limit\": 2}", &r);
    T_EQ_STR(buf_cstr(&r.text),
             "200001  line 0200001 abcdefghijklmnopqrstuvwxyz0123456789\n"
             "200002  line 0200002 abcdefghijklmnopqrstuvwxyz0123456789\n\n"
             "[Read 2 lines (lines 200001-200002). More lines remain from offset 200002.]");
    fsops_result_cleanup(&r);
    /* write + edit + grep on the big file */
    call(&f, "edit",
         "{\"path\": \"ten.txt\", \"old_string\": \"line 0123456 \", \"new_string\": "
         "\"LINE\\u0000X \"}",
         &r);
    T_EQ_STR(buf_cstr(&r.text),
             "Successfully replaced 1 instance(s) of the string in '/workspace/ten.txt'");
    fsops_result_cleanup(&r);
    call(&f, "grep", "{\"pattern\": \"LINE\\u0000X\", \"output_mode\": \"count\"}", &r);
    T_EQ_STR(buf_cstr(&r.text), "/workspace/ten.txt: 1");
    fsops_result_cleanup(&r);
    buf_cleanup(&b);
    fx_cleanup(&f);
}

static void t_nul_and_invalid_utf8_text(void)
{
    struct fx f;
    fx_init(&f, false);
    struct fsops_result r;
    /* write keeps NUL bytes; read shows them; download returns them as a blob */
    call(&f, "write", "{\"path\": \"n.txt\", \"content\": \"a\\u0000b\\n\"}", &r);
    T_EQ_STR(buf_cstr(&r.text), "Updated file /workspace/n.txt");
    fsops_result_cleanup(&r);
    call(&f, "read", "{\"path\": \"n.txt\"}", &r);
    T_EQ_INT(r.text.len, 6);
    T_ASSERT(memcmp(r.text.data, "1  a\0b", 6) == 0);
    fsops_result_cleanup(&r);
    call(&f, "download", "{\"paths\": [\"n.txt\"]}", &r);
    T_EQ_STR(json_string_value(json_object_get(
                 json_object_get(json_array_get(r.content, 1), "resource"), "blob")),
             "YQBiCg==");
    fsops_result_cleanup(&r);
    fx_cleanup(&f);
}

static void t_non_utf8_names(void)
{
    struct fx f;
    fx_init(&f, true);
    host_write(&f, "/workspace/bad\xff name.txt", "needle\n", 7);
    host_write(&f, "/workspace/ok.txt", "hay\n", 4);
    struct fsops_result r;
    call(&f, "ls", "{}", &r);
    T_EQ_STR(buf_cstr(&r.text), "['/workspace/bad\\udcff name.txt', '/workspace/ok.txt']");
    /* structured JSON must stay valid UTF-8: U+FFFD stands in */
    T_EQ_STR(json_string_value(json_object_get(
                 json_array_get(json_object_get(r.structured, "entries"), 0), "path")),
             "/workspace/bad\xef\xbf\xbd name.txt");
    char *dump = json_dumps(r.structured, 0);
    T_ASSERT(dump && ab_utf8_valid(dump, strlen(dump)));
    free(dump);
    fsops_result_cleanup(&r);
    call(&f, "glob", "{\"pattern\": \"bad?*\"}", &r);
    T_EQ_STR(buf_cstr(&r.text), "['/workspace/bad\\udcff name.txt']");
    fsops_result_cleanup(&r);
    call(&f, "grep", "{\"pattern\": \"needle\", \"output_mode\": \"content\"}", &r);
    T_EQ_STR(buf_cstr(&r.text), "/workspace/bad\xef\xbf\xbd name.txt:\n  1: needle");
    T_ASSERT(ab_utf8_valid(r.text.data, r.text.len));
    fsops_result_cleanup(&r);
    fx_cleanup(&f);
}

static void t_injection_names(void)
{
    /* Names that would break a shell or a line-oriented protocol round-trip untouched. */
    const char *names[] = {"$(touch pwned)",
                           "`id`; rm -rf /",
                           "a\nb",
                           "-rf",
                           "--",
                           "x'y\"z",
                           "\xe2\x80\xae"
                           "txt.exe",
                           " lead and trail "};
    struct fx f;
    fx_init(&f, false);
    for (size_t i = 0; i < AB_ARRAY_LEN(names); i++) {
        char *path = ab_asprintf("/workspace/%s", names[i]);
        struct fsops_result r;
        fsops_result_init(&r);
        struct ab_err err;
        T_OK(fsops_write(&f.env, fsops_cstr(path), fsops_cstr(names[i]), &r, &err));
        T_ASSERT(!r.is_error);
        fsops_result_cleanup(&r);
        fsops_result_init(&r);
        struct fsops_str p = fsops_cstr(path);
        T_OK(fsops_download(&f.env, &p, 1, &r, &err));
        json_t *res = json_object_get(json_array_get(r.content, 1), "resource");
        T_EQ_STR(json_string_value(json_object_get(res, "text")), names[i]);
        fsops_result_cleanup(&r);
        free(path);
    }
    char *pwned = ab_asprintf("%s/workspace/pwned", f.root);
    T_ASSERT(access(pwned, F_OK) != 0);
    free(pwned);
    struct fsops_result r;
    call(&f, "glob", "{\"pattern\": \"*\"}", &r);
    T_EQ_INT(json_array_size(json_object_get(r.structured, "paths")), AB_ARRAY_LEN(names));
    fsops_result_cleanup(&r);
    fx_cleanup(&f);
}

/* The test provider is itself contained: symlinks that point "outside" resolve inside the
 * sandbox root, for writes as well as reads, so the goldens cannot touch the host. */
static void t_symlink_containment(void)
{
    struct fx f;
    fx_init(&f, true);
    /* "/../../<name>" names the host's / if resolution ever escaped the root */
    char *name = ab_asprintf("agentbox-containment-%d.txt", (int)getpid());
    char *host_path = ab_asprintf("/%s", name);
    char *link = ab_asprintf("%s/workspace/out", f.root);
    char *target = ab_asprintf("/../../../../%s", name);
    T_OK(symlink(target, link));
    struct fsops_result r;
    call(&f, "write", "{\"path\": \"out\", \"content\": \"x\"}", &r);
    bool escaped = access(host_path, F_OK) == 0;
    if (escaped)
        unlink(host_path);
    T_ASSERT(!escaped);
    T_ASSERT(!r.is_error);
    fsops_result_cleanup(&r);
    char *inside = ab_asprintf("%s/%s", f.root, name);
    T_ASSERT(access(inside, F_OK) == 0); /* the write landed inside the root */
    call(&f, "read", "{\"path\": \"out\"}", &r);
    T_EQ_STR(buf_cstr(&r.text), "1  x");
    fsops_result_cleanup(&r);
    free(inside);
    free(target);
    free(link);
    free(host_path);
    free(name);
    fx_cleanup(&f);
}

/* ---- the policy seam ---- */

struct seen {
    int calls;
    char last[256];
    enum fsops_access access;
};

static char *deny_secret(void *arg, enum fsops_access access, const char *abs)
{
    struct seen *s = arg;
    s->calls++;
    snprintf(s->last, sizeof(s->last), "%s", abs);
    s->access = access;
    if (strstr(abs, "secret"))
        return ab_asprintf("Error: permission denied for %s on %s",
                           access == FSOPS_ACCESS_READ ? "read" : "write", abs);
    return NULL;
}

static void t_policy_seam(void)
{
    struct fx f;
    fx_init(&f, false);
    struct seen s = {0};
    f.env.check_path = deny_secret;
    f.env.check_arg = &s;
    host_write(&f, "/workspace/secret.txt", "x", 1);
    struct fsops_result r;
    call(&f, "read", "{\"path\": \"./secret.txt\"}", &r);
    T_ASSERT(r.is_error && !r.structured);
    T_EQ_STR(buf_cstr(&r.text), "Error: permission denied for read on /workspace/secret.txt");
    T_EQ_STR(s.last, "/workspace/secret.txt");
    fsops_result_cleanup(&r);
    call(&f, "edit", "{\"path\": \"secret.txt\", \"old_string\": \"x\", \"new_string\": \"y\"}",
         &r);
    T_EQ_STR(buf_cstr(&r.text), "Error: permission denied for write on /workspace/secret.txt");
    T_EQ_INT(s.access, FSOPS_ACCESS_WRITE);
    fsops_result_cleanup(&r);
    call(&f, "upload",
         "{\"files\": [{\"path\": \"secret2\", \"content\": \"x\"}, {\"path\": \"fine\", "
         "\"content\": \"y\"}]}",
         &r);
    T_ASSERT(!r.is_error);
    T_EQ_STR(buf_cstr(&r.text), "Failed to upload /workspace/secret2: permission_denied\n"
                                "Uploaded /workspace/fine (1 bytes)");
    fsops_result_cleanup(&r);
    call(&f, "grep", "{\"pattern\": \"x\", \"path\": \"/workspace/secret.txt\"}", &r);
    T_EQ_STR(buf_cstr(&r.text), "Error: permission denied for read on /workspace/secret.txt");
    fsops_result_cleanup(&r);
    int before = s.calls;
    call(&f, "ls", "{}", &r);
    T_EQ_INT(s.calls, before + 1);
    T_EQ_STR(s.last, "/workspace");
    fsops_result_cleanup(&r);
    fx_cleanup(&f);
}

/* ---- failures of the sandbox itself are statuses, not file errors ---- */

static ab_status dead_read(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                           size_t max, struct buf *out, struct ab_err *err)
{
    return ab_err_set(err, AB_SANDBOX, "helper died");
}

static ab_status dead_list(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                           struct sbx_dirent **e, size_t *n, struct ab_err *err)
{
    return ab_err_set(err, AB_SANDBOX, "helper died");
}

static void t_sandbox_failure(void)
{
    struct fx f;
    fx_init(&f, false);
    host_write(&f, "/workspace/a.txt", "a", 1);
    struct sbx_provider_ops ops = *f.p->ops;
    ops.read_file = dead_read;
    ops.list_dir = dead_list;
    const struct sbx_provider_ops *orig = f.p->ops;
    f.p->ops = &ops;
    struct fsops_result r;
    fsops_result_init(&r);
    struct ab_err err;
    ab_err_clear(&err);
    T_EQ_INT(fsops_read(&f.env, fsops_cstr("a.txt"), 0, 10, &r, &err), AB_SANDBOX);
    T_EQ_STR(err.msg, "helper died");
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    T_EQ_INT(fsops_ls(&f.env, FSOPS_NONE, &r, &err), AB_SANDBOX);
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    T_EQ_INT(fsops_glob(&f.env, fsops_cstr("*"), FSOPS_NONE, &r, &err), AB_SANDBOX);
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    struct fsops_str p = fsops_cstr("a.txt");
    T_EQ_INT(fsops_download(&f.env, &p, 1, &r, &err), AB_SANDBOX);
    fsops_result_cleanup(&r);
    f.p->ops = orig;
    fx_cleanup(&f);
}

static void t_cancelled(void)
{
    struct fx f;
    fx_init(&f, false);
    host_write(&f, "/workspace/a.txt", "a", 1);
    struct ab_cancel c;
    ab_cancel_init(&c);
    ab_cancel_fire(&c, "test");
    f.env.cancel = &c;
    struct fsops_result r;
    fsops_result_init(&r);
    struct ab_err err;
    T_EQ_INT(fsops_glob(&f.env, fsops_cstr("*"), FSOPS_NONE, &r, &err), AB_CANCELLED);
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    T_EQ_INT(fsops_grep(&f.env, fsops_cstr("a"), FSOPS_NONE, FSOPS_NONE, 0, 0, &r, &err),
             AB_CANCELLED);
    fsops_result_cleanup(&r);
    ab_cancel_cleanup(&c);
    fx_cleanup(&f);
}

static void t_call_arguments(void)
{
    struct fx f;
    fx_init(&f, false);
    struct fsops_result r;
    call(&f, "read", "{\"path\": 5}", &r);
    T_ASSERT(r.is_error);
    T_EQ_STR(buf_cstr(&r.text), "Error: argument 'path' must be a string");
    fsops_result_cleanup(&r);
    call(&f, "read", "{}", &r);
    T_EQ_STR(buf_cstr(&r.text), "Error: missing required argument 'path'");
    fsops_result_cleanup(&r);
    call(&f, "grep", "{\"pattern\": \"x\", \"output_mode\": \"lines\"}", &r);
    T_ASSERT(r.is_error);
    fsops_result_cleanup(&r);
    call(&f, "grep", "{\"pattern\": \"x\", \"max_count\": 0}", &r);
    T_EQ_STR(buf_cstr(&r.text), "Error: max_count must be greater than 0");
    fsops_result_cleanup(&r);
    call(&f, "grep", "{\"pattern\": \"x\", \"max_count\": null, \"glob\": null}", &r);
    T_EQ_STR(buf_cstr(&r.text), "No matches found");
    fsops_result_cleanup(&r);
    call(&f, "ls", "{\"path\": null, \"sandbox_id\": \"ab-1\"}", &r);
    T_EQ_STR(buf_cstr(&r.text), "No files found");
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    struct ab_err err;
    json_t *args = json_object();
    T_EQ_INT(fsops_call(&f.env, "execute", args, &r, &err), AB_NOTFOUND);
    json_decref(args);
    fsops_result_cleanup(&r);
    fx_cleanup(&f);
}

/* ---- execute text ---- */

static void t_execute_format(void)
{
    struct fsops_result r;
    fsops_result_init(&r);
    struct fsops_exec_outcome o = {
        .output = "hi\n", .output_len = 3, .exit_code = 0, .exit_code_known = true};
    T_OK(fsops_format_execute(&o, &r));
    T_EQ_STR(buf_cstr(&r.text), "hi\n\n[Command succeeded with exit code 0]");
    T_EQ_INT(json_integer_value(json_object_get(r.structured, "exit_code")), 0);
    fsops_result_cleanup(&r);

    fsops_result_init(&r);
    o = (struct fsops_exec_outcome){.output = "boom",
                                    .output_len = 4,
                                    .exit_code = 2,
                                    .exit_code_known = true,
                                    .truncated = true};
    T_OK(fsops_format_execute(&o, &r));
    T_EQ_STR(buf_cstr(&r.text), "boom\n[Command failed with exit code 2]\n[Output was "
                                "truncated due to size limits]");
    fsops_result_cleanup(&r);

    fsops_result_init(&r);
    o = (struct fsops_exec_outcome){.output = "partial",
                                    .output_len = 7,
                                    .exit_code = 124,
                                    .exit_code_known = true,
                                    .timed_out = true,
                                    .timeout_s = 300};
    T_OK(fsops_format_execute(&o, &r));
    T_EQ_STR(buf_cstr(&r.text), "partial\nError: Command timed out after 300 seconds. For "
                                "long-running commands, re-run using the timeout parameter.\n"
                                "[Command failed with exit code 124]");
    T_ASSERT(json_is_true(json_object_get(r.structured, "timed_out")));
    fsops_result_cleanup(&r);

    fsops_result_init(&r);
    o = (struct fsops_exec_outcome){.output = "",
                                    .output_len = 0,
                                    .exit_code = 124,
                                    .exit_code_known = true,
                                    .timed_out = true,
                                    .timeout_s = 5,
                                    .custom_timeout = true};
    T_OK(fsops_format_execute(&o, &r));
    T_EQ_STR(buf_cstr(&r.text), "Error: Command timed out after 5 seconds (custom timeout). The "
                                "command may be stuck or require more time.\n[Command failed "
                                "with exit code 124]");
    fsops_result_cleanup(&r);

    fsops_result_init(&r);
    o = (struct fsops_exec_outcome){.output = "x\xff", .output_len = 2};
    T_OK(fsops_format_execute(&o, &r));
    T_EQ_STR(buf_cstr(&r.text), "x\xef\xbf\xbd"); /* no exit code known: no footer */
    T_ASSERT(json_is_null(json_object_get(r.structured, "exit_code")));
    fsops_result_cleanup(&r);

    char *e = fsops_execute_timeout_error(-1, 3600);
    T_EQ_STR(e, "Error: timeout must be non-negative, got -1.");
    free(e);
    e = fsops_execute_timeout_error(3601, 3600);
    T_EQ_STR(e, "Error: timeout 3601s exceeds maximum allowed (3600s).");
    free(e);
    T_ASSERT(fsops_execute_timeout_error(0, 3600) == NULL);
    T_ASSERT(fsops_execute_timeout_error(3600, 3600) == NULL);
}

static const struct t_case cases[] = {
    T_CASE(t_pyrepr),
    T_CASE(t_ten_mib_roundtrip),
    T_CASE(t_ten_mib_text_paging),
    T_CASE(t_nul_and_invalid_utf8_text),
    T_CASE(t_non_utf8_names),
    T_CASE(t_injection_names),
    T_CASE(t_symlink_containment),
    T_CASE(t_policy_seam),
    T_CASE(t_sandbox_failure),
    T_CASE(t_cancelled),
    T_CASE(t_call_arguments),
    T_CASE(t_execute_format),
    {0},
};
T_MAIN(cases)
