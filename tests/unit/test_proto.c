/*
 * test_proto.c - protocol edge cases as data, over stdio against the real binary.
 *
 * Each folder tests/data/proto/<case>/ holds request.jsonl (fed to `agentbox serve --stdio`),
 * expected.jsonl (the responses, in order) and optionally args (extra CLI arguments, one per
 * line). Matching is JSON-aware: the string "<any>" matches any value, and an object with
 * "<extra>": true may have keys beyond the ones listed. Every case ends with a ping whose
 * answer proves the server kept serving after the bad input.
 */
#include "t.h"

#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>

#include "base/buf.h"
#include "base/util.h"
#include "support/proc.h"

/* Is line a message with id "alive" that has `key` ("method": the ping; "result": its
 * answer)? */
static bool is_alive(const char *line, const char *key)
{
    json_t *m = json_loads(line, 0, NULL);
    bool yes = m && json_is_string(json_object_get(m, "id")) &&
               strcmp(json_string_value(json_object_get(m, "id")), "alive") == 0 &&
               json_object_get(m, key) != NULL;
    json_decref(m);
    return yes;
}

/* Is the last non-blank line of text the "alive" message with `key`? */
static bool last_line_is_alive(const char *text, const char *key)
{
    size_t n = strlen(text);
    while (n > 0 && strchr("\r\n \t", text[n - 1]))
        n--;
    size_t start = n;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    char *line = ab_strndup(text + start, n - start);
    bool yes = is_alive(line, key);
    free(line);
    return yes;
}

static bool json_match(const json_t *want, const json_t *got, char *why, size_t cap)
{
    if (json_is_string(want) && strcmp(json_string_value(want), "<any>") == 0)
        return got != NULL;
    if (!got) {
        snprintf(why, cap, "missing value");
        return false;
    }
    if (json_is_object(want)) {
        if (!json_is_object(got)) {
            snprintf(why, cap, "expected an object");
            return false;
        }
        bool extra = json_is_true(json_object_get(want, "<extra>"));
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            if (strcmp(k, "<extra>") == 0)
                continue;
            if (!json_match(v, json_object_get(got, k), why, cap)) {
                size_t l = strlen(why);
                char tmp[512];
                snprintf(tmp, sizeof(tmp), "%s", why);
                snprintf(why, cap, ".%s: %s", k, tmp);
                (void)l;
                return false;
            }
        }
        if (!extra) {
            json_object_foreach((json_t *)got, k, v)
            {
                if (!json_object_get(want, k)) {
                    snprintf(why, cap, "unexpected key '%s'", k);
                    return false;
                }
            }
        }
        return true;
    }
    if (json_is_array(want)) {
        if (!json_is_array(got) || json_array_size(got) != json_array_size(want)) {
            snprintf(why, cap, "array length differs");
            return false;
        }
        for (size_t i = 0; i < json_array_size(want); i++)
            if (!json_match(json_array_get(want, i), json_array_get(got, i), why, cap))
                return false;
        return true;
    }
    if (!json_equal((json_t *)want, (json_t *)got)) {
        snprintf(why, cap, "value differs");
        return false;
    }
    return true;
}

static int run_case(const char *dir, const char *name)
{
    char path[1024];
    struct buf req, exp, args, out, err;
    buf_init(&req, 1 << 20);
    buf_init(&exp, 1 << 20);
    buf_init(&args, 1 << 16);
    buf_init(&out, 1 << 22);
    buf_init(&err, 1 << 22);
    snprintf(path, sizeof(path), "%s/%s/request.jsonl", dir, name);
    T_ASSERT(tp_read_file(path, &req) == 0);
    snprintf(path, sizeof(path), "%s/%s/expected.jsonl", dir, name);
    T_ASSERT(tp_read_file(path, &exp) == 0);
    /* The promise above: the last request is the ping, the last expected line its answer. */
    if (!last_line_is_alive(buf_cstr(&req), "method"))
        T_FAIL("[%s] request.jsonl does not end with the ping {\"id\":\"alive\",...}", name);
    if (!last_line_is_alive(buf_cstr(&exp), "result"))
        T_FAIL("[%s] expected.jsonl does not end with the ping's answer", name);
    snprintf(path, sizeof(path), "%s/%s/args", dir, name);
    tp_read_file(path, &args);

    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)tp_agentbox_bin();
    argv[argc++] = "serve";
    argv[argc++] = "--stdio";
    /* Each case gets its own state directory and no warm pool: cases never share sandboxes
     * and never touch the machine's /var/lib/agentbox. */
    char state[] = "/tmp/agentbox-proto-XXXXXX";
    T_ASSERT(mkdtemp(state) != NULL);
    char state_arg[64];
    snprintf(state_arg, sizeof(state_arg), "state_dir=%s", state);
    argv[argc++] = "--set";
    argv[argc++] = state_arg;
    argv[argc++] = "--set";
    argv[argc++] = "sandbox.pool.size=0";
    char *argcopy = ab_strdup(buf_cstr(&args));
    char *save = NULL;
    for (char *a = strtok_r(argcopy, "\n", &save); a && argc < 30; a = strtok_r(NULL, "\n", &save))
        argv[argc++] = a;
    argv[argc] = NULL;

    int status = tp_run(argv, req.data, req.len, &out, &err, 30000);
    int failed = 0;
    if (status != 0) {
        fprintf(stderr, "[%s] exit status %d\nstderr:\n%s\n", name, status, buf_cstr(&err));
        failed = 1;
    }
    /* Compare line by line. The ping's answer may come before the answers of tool calls that
     * run on their own threads: it is matched last, wherever it is in the output. */
    char *olines = ab_strdup(buf_cstr(&out)), *elines = ab_strdup(buf_cstr(&exp));
    char *os = NULL, *es = NULL;
    char *pong = NULL;
    char *o = strtok_r(olines, "\n", &os);
    char *e = strtok_r(elines, "\n", &es);
    int lineno = 1;
    for (; e || o; lineno++) {
        if (o && !pong && is_alive(o, "result")) {
            pong = o;
            o = strtok_r(NULL, "\n", &os);
        }
        if (!o && pong && e && is_alive(e, "result")) {
            o = pong; /* the last expected line meets the answer we set aside */
            pong = NULL;
        }
        if (!e || !o) {
            fprintf(stderr, "[%s] line %d: %s\n", name, lineno,
                    !e ? "unexpected extra output" : "missing output");
            fprintf(stderr, "  got: %s\n  expected: %s\n", o ? o : "(none)", e ? e : "(none)");
            failed = 1;
            break;
        }
        json_error_t je;
        json_t *want = json_loads(e, 0, &je);
        json_t *got = json_loads(o, JSON_ALLOW_NUL, &je);
        char why[1024] = "";
        if (!want) {
            fprintf(stderr, "[%s] expected.jsonl line %d is not JSON\n", name, lineno);
            failed = 1;
        } else if (!got || !json_match(want, got, why, sizeof(why))) {
            fprintf(stderr, "[%s] line %d mismatch%s%s\n  got:      %s\n  expected: %s\n", name,
                    lineno, why[0] ? ": " : "", why, o, e);
            failed = 1;
        }
        json_decref(want);
        json_decref(got);
        if (failed)
            break;
        e = strtok_r(NULL, "\n", &es);
        o = strtok_r(NULL, "\n", &os);
    }
    /* stdout must hold nothing but protocol: every line parsed as JSON above. */
    char rm[128];
    snprintf(rm, sizeof(rm), "rm -rf %s", state);
    if (system(rm) != 0)
        fprintf(stderr, "[%s] could not remove %s\n", name, state);
    free(olines);
    free(elines);
    free(argcopy);
    buf_cleanup(&req);
    buf_cleanup(&exp);
    buf_cleanup(&args);
    buf_cleanup(&out);
    buf_cleanup(&err);
    printf("  %s %s\n", failed ? "FAIL" : "ok  ", name);
    return failed;
}

static void t_protocol_cases(void)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/tests/data/proto", tp_source_dir());
    DIR *d = opendir(dir);
    T_ASSERT(d != NULL);
    struct dirent *de;
    char *names[256];
    int n = 0;
    while ((de = readdir(d)) && n < 256)
        if (de->d_name[0] != '.')
            names[n++] = ab_strdup(de->d_name);
    closedir(d);
    T_ASSERT(n > 10);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        failed += run_case(dir, names[i]);
        free(names[i]);
    }
    if (failed)
        T_FAIL("%d of %d protocol cases failed", failed, n);
}

static const struct t_case cases[] = {T_CASE(t_protocol_cases), {0}};
T_MAIN(cases)
