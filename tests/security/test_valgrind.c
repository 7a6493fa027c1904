/*
 * The end-to-end smoke run under valgrind memcheck: the real server, over stdio and over
 * Streamable HTTP, through a session that touches every tool (and progress, cancellation,
 * a policy refusal, an ask without elicitation, invalid arguments, a missing sandbox, the
 * lifecycle tools), then a clean exit (EOF on stdio, SIGTERM on HTTP). memcheck must report
 * no error and no leak of any kind (definite, indirect, possible); its exit code says so
 * (--error-exitcode) and its log is printed when it does not.
 *
 * Only the server runs under valgrind: the sandbox spawner it execs ($AGENTBOX_BIN, not
 * valgrind's own binary) runs natively (no --trace-children), since namespaces and seccomp
 * are not valgrind's ground. Registered for the release build only (label noasan: an ASan
 * binary cannot run under valgrind). Needs valgrind, and root or user namespaces.
 */
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "base/buf.h"
#include "base/util.h"
#include "support/mcp_stdio.h"

#define VG_EXIT 99

static void vg_args(const char *log, const char **out, size_t cap)
{
    static char logarg[300];
    snprintf(logarg, sizeof(logarg), "--log-file=%s", log);
    const char *v[] = {"valgrind", "--quiet", "--leak-check=full",
                       "--show-leak-kinds=definite,indirect,possible",
                       "--errors-for-leak-kinds=definite,indirect,possible",
                       "--error-exitcode=99", "--track-fds=no", logarg, NULL};
    for (size_t i = 0; i < cap && (out[i] = v[i]); i++)
        ;
}

static void vg_check(int status, const char *log)
{
    char cmd[400];
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(cmd, sizeof(cmd), "cat '%s' >&2", log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no valgrind log)\n");
        if (WIFEXITED(status) && WEXITSTATUS(status) == VG_EXIT)
            T_FAIL("memcheck found errors or leaks (log above)");
        T_FAIL("the server under valgrind ended with status %d", status);
    }
    /* --quiet: an empty log means no error; print whatever it has anyway. */
    struct stat st;
    if (stat(log, &st) == 0 && st.st_size > 0) {
        snprintf(cmd, sizeof(cmd), "grep -v 'unhandled amd64-linux syscall\\|your own handler\\|"
                                   "README_MISSING\\|consider this a bug\\|bug_reports' '%s' "
                                   "| grep -q '=='",
                 log);
        if (system(cmd) == 0) {
            snprintf(cmd, sizeof(cmd), "cat '%s' >&2", log);
            T_ASSERT(system(cmd) == 0);
            T_FAIL("memcheck printed diagnostics (log above)");
        }
    }
}

static char *mkdir_tmp(void)
{
    char *d = ab_strdup("/tmp/ab-valgrind-XXXXXX");
    T_ASSERT(mkdtemp(d) != NULL);
    return d;
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    T_EQ_INT(system(cmd), 0);
}

/* ------------------------------------------------------------------------------------------
 * stdio
 * ---------------------------------------------------------------------------------------- */

static void vg_stdio_session(void)
{
    char *dir = mkdir_tmp();
    char log[300];
    snprintf(log, sizeof(log), "%s/valgrind.log", dir);
    char state[300];
    snprintf(state, sizeof(state), "%s/state", dir);
    T_OK(mkdir(state, 0700));
    const char *wrapper[16];
    vg_args(log, wrapper, 16);
    const char *sets[] = {"sandbox.pool.size=1", "policy.deny_commands=rm -rf /",
                          "policy.ask_commands=git push", "policy.deny_prefixes=/workspace/.git",
                          NULL};
    struct ms_srv s;
    ms_start(&s, wrapper, state, "valgrind", sets, NULL);

    json_decref(ms_wait(&s, ms_request(&s, "tools/list", json_object()), 120000));
    json_decref(ms_wait(&s, ms_request(&s, "ping", json_object()), 120000));
    free(ms_tool_ok(&s, "write", json_pack("{s:s,s:s}", "path", "src/a.py", "content",
                                           "print('hello')\nx = 1\n")));
    free(ms_tool_ok(&s, "read", json_pack("{s:s}", "path", "src/a.py")));
    free(ms_tool_ok(&s, "edit", json_pack("{s:s,s:s,s:s}", "path", "src/a.py", "old_string",
                                          "x = 1", "new_string", "x = 2")));
    free(ms_tool_ok(&s, "ls", json_pack("{s:s}", "path", "src")));
    free(ms_tool_ok(&s, "grep", json_pack("{s:s,s:s}", "pattern", "hello", "output_mode",
                                          "content")));
    free(ms_tool_ok(&s, "glob", json_pack("{s:s}", "pattern", "**/*.py")));
    free(ms_tool_ok(&s, "upload", json_pack("{s:[{s:s,s:s}]}", "files", "path", "b.bin",
                                            "content_base64", "AAECAw==")));
    free(ms_tool_ok(&s, "download", json_pack("{s:[s]}", "paths", "b.bin")));
    free(ms_tool_ok(&s, "execute", json_pack("{s:s,s:s}", "command", "ls; echo err >&2",
                                             "workdir", "src")));
    free(ms_tool_ok(&s, "execute_python", json_pack("{s:s,s:{s:s}}", "code",
                                                    "print(open('d.txt').read())", "files",
                                                    "d.txt", "data")));
    /* progress: a call with a progress token streams its output */
    int id = ms_request(&s, "tools/call",
                        json_pack("{s:s,s:{s:s},s:{s:s}}", "name", "execute", "arguments",
                                  "command", "for i in 1 2 3; do echo $i; sleep 0.1; done",
                                  "_meta", "progressToken", "p1"));
    json_decref(ms_wait(&s, id, 120000));
    /* cancellation of a running command */
    id = ms_request(&s, "tools/call",
                    json_pack("{s:s,s:{s:s}}", "name", "execute", "arguments", "command",
                              "sleep 60"));
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    char cancel[160];
    snprintf(cancel, sizeof(cancel),
             "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":"
             "{\"requestId\":%d,\"reason\":\"test\"}}",
             id);
    ms_send(&s, cancel);
    /* refusals and errors */
    json_t *r = ms_tool(&s, "execute", json_pack("{s:s}", "command", "rm -rf / --help"));
    T_ASSERT(ms_is_error(r));
    json_decref(r);
    r = ms_tool(&s, "execute", json_pack("{s:s}", "command", "git push"));
    T_ASSERT(ms_is_error(r));
    json_decref(r);
    r = ms_tool(&s, "write", json_pack("{s:s,s:s}", "path", ".git/config", "content", "x"));
    T_ASSERT(ms_is_error(r));
    json_decref(r);
    r = ms_tool(&s, "read", json_pack("{s:i}", "path", 7));
    T_ASSERT(ms_is_error(r));
    json_decref(r);
    r = ms_tool(&s, "read", json_pack("{s:s,s:s}", "path", "x", "sandbox_id", "ab-nope"));
    T_ASSERT(ms_is_error(r));
    json_decref(r);
    /* lifecycle */
    r = ms_tool(&s, "sandbox_create", json_pack("{s:{s:s}}", "labels", "kind", "valgrind"));
    T_ASSERT(!ms_is_error(r));
    const char *sid = json_string_value(
        json_object_get(json_object_get(r, "structuredContent"), "sandbox_id"));
    char *sidc = ab_strdup(sid);
    json_decref(r);
    free(ms_tool_ok(&s, "sandbox_list", json_pack("{s:s}", "label_selector", "kind=valgrind")));
    free(ms_tool_ok(&s, "sandbox_info", json_pack("{s:s}", "sandbox_id", sidc)));
    free(ms_tool_ok(&s, "sandbox_delete", json_pack("{s:s}", "sandbox_id", sidc)));
    free(sidc);
    /* malformed input on the wire */
    ms_send(&s, "{not json");
    json_decref(ms_recv(&s, 120000));
    ms_send(&s, "[]");
    json_decref(ms_recv(&s, 120000));
    vg_check(ms_stop(&s), log);
    rm_rf(dir);
    free(dir);
}

/* ------------------------------------------------------------------------------------------
 * HTTP
 * ---------------------------------------------------------------------------------------- */

struct http_srv {
    pid_t pid;
    int err; /* the server's stderr */
    int port;
};

static int http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    T_OK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
    return fd;
}

/* One request on its own connection (Connection: close); returns the status, the body in
 * body (new) and the Mcp-Session-Id in sid (if present). */
static int http_do(int port, const char *method, const char *sid, const char *token,
                   const char *json, char **body, char *sid_out)
{
    int fd = http_connect(port);
    struct buf req;
    buf_init(&req, 1 << 20);
    buf_printf(&req, "%s /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Accept: application/json, text/event-stream\r\n"
                     "Authorization: Bearer %s\r\n",
               method, token);
    if (sid)
        buf_printf(&req, "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n", sid);
    if (json)
        buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   strlen(json), json);
    else
        buf_append_str(&req, "Content-Length: 0\r\n\r\n");
    T_EQ_INT(write(fd, req.data, req.len), (ssize_t)req.len);
    buf_cleanup(&req);
    struct buf resp;
    buf_init(&resp, 16u << 20);
    char chunk[65536];
    int64_t deadline = ab_mono_ms() + 300000;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = deadline - ab_mono_ms();
        if (left <= 0)
            T_FAIL("no complete answer to %s within 300 s", method);
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n <= 0)
            break;
        T_OK(buf_append(&resp, chunk, (size_t)n));
    }
    close(fd);
    T_ASSERT(ab_starts_with(buf_cstr(&resp), "HTTP/1.1 "));
    int status = atoi(resp.data + 9);
    const char *h = strcasestr(buf_cstr(&resp), "\r\nMcp-Session-Id: ");
    if (h && sid_out)
        snprintf(sid_out, 64, "%.*s", (int)strcspn(h + 18, "\r\n"), h + 18);
    const char *b = strstr(buf_cstr(&resp), "\r\n\r\n");
    if (body)
        *body = ab_strdup(b ? b + 4 : "");
    buf_cleanup(&resp);
    return status;
}

static void vg_http_session(void)
{
    char *dir = mkdir_tmp();
    char log[300], state[300], sd[400];
    snprintf(log, sizeof(log), "%s/valgrind.log", dir);
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(sd, sizeof(sd), "state_dir=%s", state);
    T_OK(mkdir(state, 0700));
    const char *token = "valgrind-token-0123456789abcdef";
    char tok[128];
    snprintf(tok, sizeof(tok), "auth.tokens=%s:vg", token);
    const char *wrapper[16];
    vg_args(log, wrapper, 16);
    const char *argv[40];
    int argc = 0;
    for (int i = 0; wrapper[i]; i++)
        argv[argc++] = wrapper[i];
    const char *rest[] = {getenv("AGENTBOX_BIN"), "serve", "--http", "127.0.0.1:0",
                          "--log-level", "info", "--set", sd, "--set", tok, "--set",
                          "sandbox.pool.size=0", "--set", "http.shutdown_grace=5s", NULL};
    T_ASSERT(rest[0] != NULL);
    for (int i = 0; rest[i]; i++)
        argv[argc++] = rest[i];
    argv[argc] = NULL;
    int perr[2];
    T_OK(pipe2(perr, O_CLOEXEC));
    pid_t pid = fork();
    if (pid == 0) {
        dup2(perr[1], 2);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(perr[1]);
    /* The port, from the http.listening log line. */
    struct buf errlog;
    buf_init(&errlog, 1 << 20);
    int port = 0;
    int64_t deadline = ab_mono_ms() + 300000;
    while (!port) {
        struct pollfd p = {perr[0], POLLIN, 0};
        if (ab_mono_ms() > deadline)
            T_FAIL("the server did not start:\n%s", buf_cstr(&errlog));
        if (poll(&p, 1, 1000) <= 0)
            continue;
        char chunk[4096];
        ssize_t n = read(perr[0], chunk, sizeof(chunk));
        if (n <= 0)
            T_FAIL("the server exited:\n%s", buf_cstr(&errlog));
        buf_append_upto(&errlog, chunk, (size_t)n);
        const char *u = strstr(buf_cstr(&errlog), "http.listening url=http://127.0.0.1:");
        if (u)
            port = atoi(u + strlen("http.listening url=http://127.0.0.1:"));
    }
    /* From here the server's stderr is drained into /dev/null by a child, so it never
     * blocks on a full pipe. */
    pid_t drain = fork();
    if (drain == 0) {
        char chunk[4096];
        while (read(perr[0], chunk, sizeof(chunk)) > 0)
            ;
        _exit(0);
    }
    close(perr[0]);

    char sid[64] = "", *body = NULL;
    T_EQ_INT(http_do(port, "POST", NULL, token,
                     "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":"
                     "{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":"
                     "{\"name\":\"vg\",\"version\":\"1\"}}}",
                     &body, sid),
             200);
    free(body);
    T_ASSERT(strlen(sid) == 32);
    T_EQ_INT(http_do(port, "POST", sid, token,
                     "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", NULL, NULL),
             202);
    const char *calls[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"write\","
        "\"arguments\":{\"path\":\"a.txt\",\"content\":\"hello\\n\"}}}",
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"read\","
        "\"arguments\":{\"path\":\"a.txt\"}}}",
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"execute\","
        "\"arguments\":{\"command\":\"cat a.txt\"},\"_meta\":{\"progressToken\":9}}}",
        "[{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}]",
        "{broken",
    };
    for (size_t i = 0; i < AB_ARRAY_LEN(calls); i++) {
        int st = http_do(port, "POST", sid, token, calls[i], &body, NULL);
        T_ASSERT(st == 200 || st == 400);
        free(body);
    }
    T_EQ_INT(http_do(port, "POST", sid, "wrong-token-0123456789", calls[0], NULL, NULL), 401);
    T_EQ_INT(http_do(port, "DELETE", sid, token, NULL, NULL, NULL), 200);
    T_EQ_INT(http_do(port, "POST", sid, token, calls[0], NULL, NULL), 404);
    T_OK(kill(pid, SIGTERM));
    int st;
    T_EQ_INT(waitpid(pid, &st, 0), pid);
    waitpid(drain, NULL, 0);
    buf_cleanup(&errlog);
    vg_check(st, log);
    rm_rf(dir);
    free(dir);
}

static const struct t_case cases[] = {
    T_CASE(vg_stdio_session),
    T_CASE(vg_http_session),
    {0},
};

T_MAIN(cases)
