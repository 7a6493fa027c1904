/*
 * mcp_stdio.c - see mcp_stdio.h. A pipe pair to the child; messages are read by poll() with
 * a deadline and split on newlines (the stdio transport's framing).
 */
#include "mcp_stdio.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "t.h"

void ms_send(struct ms_srv *s, const char *line)
{
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t w = write(s->in, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            T_FAIL("write to the server: %s", strerror(errno));
        off += (size_t)w;
    }
    if (write(s->in, "\n", 1) != 1)
        T_FAIL("write to the server: %s", strerror(errno));
}

json_t *ms_recv(struct ms_srv *s, int timeout_ms)
{
    int64_t deadline = ab_mono_ms() + timeout_ms;
    for (;;) {
        char *nl = s->rx.len ? memchr(s->rx.data, '\n', s->rx.len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - s->rx.data);
            json_error_t je;
            json_t *m = json_loadb(s->rx.data, n, 0, &je);
            if (!m)
                T_FAIL("the server wrote a line that is not JSON: %.*s", (int)n, s->rx.data);
            buf_consume(&s->rx, n + 1);
            return m;
        }
        int64_t left = deadline - ab_mono_ms();
        if (left <= 0)
            T_FAIL("no message from the server within %d ms", timeout_ms);
        struct pollfd p = {s->out, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char chunk[65536];
        ssize_t r = read(s->out, chunk, sizeof(chunk));
        if (r == 0)
            return NULL;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            T_FAIL("read from the server: %s", strerror(errno));
        }
        if (buf_append(&s->rx, chunk, (size_t)r))
            T_FAIL("the server wrote more than the test buffers");
    }
}

int ms_request(struct ms_srv *s, const char *method, json_t *params_new)
{
    int id = s->next_id++;
    json_t *m = json_pack("{s:s,s:i,s:s,s:o}", "jsonrpc", "2.0", "id", id, "method", method,
                          "params", params_new);
    char *line = json_dumps(m, JSON_COMPACT);
    ms_send(s, line);
    free(line);
    json_decref(m);
    return id;
}

json_t *ms_wait(struct ms_srv *s, int id, int timeout_ms)
{
    for (;;) {
        json_t *m = ms_recv(s, timeout_ms);
        if (!m)
            T_FAIL("the server closed its output before answering request %d", id);
        if (json_integer_value(json_object_get(m, "id")) == id && !json_object_get(m, "method")) {
            json_t *r = json_object_get(m, "result");
            if (!r) {
                char *t = json_dumps(m, JSON_COMPACT);
                T_FAIL("request %d failed: %s", id, t);
            }
            json_incref(r);
            json_decref(m);
            return r;
        }
        json_decref(m);
    }
}

json_t *ms_tool(struct ms_srv *s, const char *tool, json_t *args_new)
{
    int id = ms_request(s, "tools/call",
                        json_pack("{s:s,s:o}", "name", tool, "arguments", args_new));
    return ms_wait(s, id, 300000);
}

const char *ms_text(const json_t *r)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(r, "content"), 0), "text"));
}

bool ms_is_error(const json_t *r)
{
    return json_is_true(json_object_get(r, "isError"));
}

char *ms_tool_ok(struct ms_srv *s, const char *tool, json_t *args_new)
{
    json_t *r = ms_tool(s, tool, args_new);
    if (ms_is_error(r))
        T_FAIL("%s failed: %s", tool, ms_text(r));
    char *t = ab_strdup(ms_text(r));
    json_decref(r);
    return t;
}

void ms_start(struct ms_srv *s, const char *const *wrapper, const char *state_dir,
              const char *thread, const char *const *sets, const json_t *capabilities)
{
    memset(s, 0, sizeof(*s));
    buf_init(&s->rx, 64u << 20);
    const char *bin = getenv("AGENTBOX_BIN");
    if (!bin)
        T_FAIL("AGENTBOX_BIN is not set (ctest sets it to the built agentbox binary)");
    int pin[2], pout[2];
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC))
        T_FAIL("pipe2: %s", strerror(errno));
    char sd[600], th[300];
    snprintf(sd, sizeof(sd), "state_dir=%s", state_dir);
    snprintf(th, sizeof(th), "stdio.thread_key=%s", thread);
    const char *argv[96];
    int argc = 0;
    for (size_t i = 0; wrapper && wrapper[i] && argc < 40; i++)
        argv[argc++] = wrapper[i];
    const char *base[] = {bin, "serve", "--stdio", "--log-level", "warn", "--set", sd, "--set", th};
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        argv[argc++] = base[i];
    for (size_t i = 0; sets && sets[i] && argc < 92; i++) {
        argv[argc++] = "--set";
        argv[argc++] = sets[i];
    }
    argv[argc] = NULL;
    s->pid = fork();
    if (s->pid < 0)
        T_FAIL("fork: %s", strerror(errno));
    if (s->pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    s->in = pin[1];
    s->out = pout[0];
    s->next_id = 1;
    json_t *caps = capabilities ? json_deep_copy(capabilities) : json_object();
    int id = ms_request(s, "initialize",
                        json_pack("{s:s,s:o,s:{s:s,s:s}}", "protocolVersion", "2025-11-25",
                                  "capabilities", caps, "clientInfo", "name", "agentbox-tests",
                                  "version", "1"));
    json_decref(ms_wait(s, id, 300000));
    ms_send(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
}

int ms_stop(struct ms_srv *s)
{
    close(s->in);
    int64_t deadline = ab_mono_ms() + 60000;
    int st = 0;
    while (waitpid(s->pid, &st, WNOHANG) == 0) {
        if (ab_mono_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            T_FAIL("the server did not exit within 60 s of EOF");
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    close(s->out);
    buf_cleanup(&s->rx);
    return st;
}

void ms_kill(struct ms_srv *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    close(s->in);
    close(s->out);
    buf_cleanup(&s->rx);
}
