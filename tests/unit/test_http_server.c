/* Unit tests for src/transport/http.c, in-process: http_serve_ex() runs on a thread and a
 * small blocking HTTP/1.1 client talks to it over loopback. Covers session handling
 * (creation, validation, 404 after DELETE, principal binding), the status codes that need
 * no MCP tool, SSE replay with Last-Event-ID after a client disconnect, the JSON response
 * path (suspend/resume), and shutdown with a call in flight. Runs under ASan in `make
 * test`, so the transport's memory handling is checked there too. */
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "mcp/server.h"
#include "transport/http.h"

#if defined(__SANITIZE_ADDRESS__) || defined(AGENTBOX_SANITIZE)
void __lsan_do_leak_check(void) __attribute__((weak));
#endif

/* ---- the server under test ---- */

struct fixture {
    struct config cfg;
    struct mcp_server *srv;
    pthread_t th;
    int pipe[2];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int port;
    ab_status rc;
    bool done;
};

static void on_listening(void *arg, const char *url, int port)
{
    struct fixture *f = arg;
    pthread_mutex_lock(&f->lock);
    f->port = port;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static void *serve_thread(void *arg)
{
    struct fixture *f = arg;
    struct http_hooks hooks = {.listening = on_listening, .listening_arg = f};
    struct ab_err err;
    ab_err_clear(&err);
    ab_status rc = http_serve_ex(f->srv, &f->cfg, f->pipe[0], &hooks, &err);
    if (rc)
        fprintf(stderr, "http_serve_ex: %s\n", err.msg);
    pthread_mutex_lock(&f->lock);
    f->rc = rc;
    f->done = true;
    f->port = f->port ? f->port : -1;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

/* Start a server; extra is a NULL-terminated list of "key=value" settings. */
static void start(struct fixture *f, const char *const *extra)
{
    memset(f, 0, sizeof(*f));
    ab_log_configure(AB_LOG_WARN, AB_LOG_FORMAT_HUMAN, 2);
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(cfg_init_defaults(&f->cfg, &err));
    T_OK(cfg_set(&f->cfg, "http.listen", "127.0.0.1:0", &err));
    T_OK(cfg_set(&f->cfg, "http.shutdown_grace", "1s", &err));
    for (size_t i = 0; extra && extra[i]; i++) {
        char key[128];
        const char *eq = strchr(extra[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - extra[i]), extra[i]);
        if (cfg_set(&f->cfg, key, eq + 1, &err))
            T_FAIL("cfg_set %s: %s", extra[i], err.msg);
    }
    struct mcp_server_opts so = {.name = "agentbox", .version = "test", .fixtures = true};
    T_OK(mcp_server_new(&so, &f->srv, &err));
    T_OK(pipe2(f->pipe, O_CLOEXEC));
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    T_OK(pthread_create(&f->th, NULL, serve_thread, f));
    pthread_mutex_lock(&f->lock);
    while (!f->port)
        pthread_cond_wait(&f->cond, &f->lock);
    pthread_mutex_unlock(&f->lock);
    T_ASSERT(f->port > 0);
}

/* Ask the server to stop; it must return within max_ms. */
static void stop(struct fixture *f, int64_t max_ms)
{
    int64_t t0 = ab_mono_ms();
    T_ASSERT(write(f->pipe[1], "T", 1) == 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += max_ms / 1000 + 1;
    pthread_mutex_lock(&f->lock);
    while (!f->done)
        if (pthread_cond_timedwait(&f->cond, &f->lock, &ts) == ETIMEDOUT)
            break;
    bool done = f->done;
    pthread_mutex_unlock(&f->lock);
    if (!done)
        T_FAIL("http_serve did not return within %lld ms of the stop request", (long long)max_ms);
    T_ASSERT(ab_mono_ms() - t0 <= max_ms + 1000);
    pthread_join(f->th, NULL);
    T_EQ_INT(f->rc, AB_OK);
    T_EQ_INT(mcp_server_inflight(f->srv), 0);
    mcp_server_free(f->srv);
    cfg_cleanup(&f->cfg);
    close(f->pipe[0]);
    close(f->pipe[1]);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
#if defined(__SANITIZE_ADDRESS__) || defined(AGENTBOX_SANITIZE)
    if (__lsan_do_leak_check)
        __lsan_do_leak_check();
#endif
}

/* ---- a small HTTP/1.1 client ---- */

struct resp {
    int status;
    char headers[4096];
    struct buf body;
};

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    T_ASSERT(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    T_OK(connect(fd, (struct sockaddr *)&a, sizeof(a)));
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        T_ASSERT(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

/* Send a request. extra_headers: "Name: value\r\n"... or "". */
static int send_request(int port, const char *method, const char *path, const char *extra_headers,
                        const char *body)
{
    int fd = dial(port);
    char head[4096];
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s%sContent-Length: %zu\r\n\r\n",
                     method, path, port, extra_headers,
                     body ? "Content-Type: application/json\r\n" : "",
                     body ? "Accept: application/json, text/event-stream\r\n" : "",
                     body ? strlen(body) : (size_t)0);
    send_all(fd, head, (size_t)n);
    if (body)
        send_all(fd, body, strlen(body));
    return fd;
}

/* Read from fd into b until `until` appears in it (or the peer closes, when until is NULL).
 * Fails the test after timeout_ms. */
static void read_until(int fd, struct buf *b, const char *until, int timeout_ms)
{
    int64_t deadline = ab_mono_ms() + timeout_ms;
    while (!until || !strstr(buf_cstr(b), until)) {
        int left = (int)(deadline - ab_mono_ms());
        if (left <= 0)
            T_FAIL("timed out waiting for \"%s\"; got:\n%s", until ? until : "EOF", buf_cstr(b));
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, left) <= 0)
            continue;
        char chunk[8192];
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0) {
            if (until)
                T_FAIL("connection closed before \"%s\"; got:\n%s", until, buf_cstr(b));
            return;
        }
        T_OK(buf_append(b, chunk, (size_t)n));
    }
}

/* A complete response (Content-Length, or chunked until the last chunk). The body of a
 * chunked response is kept raw (chunk sizes included), which is enough for strstr. */
static void read_response(int fd, struct resp *r)
{
    struct buf raw;
    buf_init(&raw, 64u << 20);
    read_until(fd, &raw, "\r\n\r\n", 10000);
    const char *s = buf_cstr(&raw);
    T_ASSERT(sscanf(s, "HTTP/1.1 %d", &r->status) == 1);
    const char *end = strstr(s, "\r\n\r\n");
    size_t hlen = (size_t)(end - s);
    snprintf(r->headers, sizeof(r->headers), "%.*s", (int)hlen, s);
    buf_init(&r->body, 64u << 20);
    const char *cl = strcasestr(r->headers, "\r\nContent-Length: ");
    if (cl) {
        size_t want = (size_t)strtoul(cl + 18, NULL, 10);
        while (raw.len - hlen - 4 < want)
            read_until(fd, &raw, NULL, 10000);
        T_OK(buf_append(&r->body, raw.data + hlen + 4, want));
    } else {
        T_ASSERT(strcasestr(r->headers, "Transfer-Encoding: chunked") != NULL);
        read_until(fd, &raw, "\r\n0\r\n\r\n", 10000);
        T_OK(buf_append(&r->body, raw.data + hlen + 4, raw.len - hlen - 4));
    }
    buf_cleanup(&raw);
}

static void request(int port, const char *method, const char *path, const char *hdrs,
                    const char *body, struct resp *r)
{
    int fd = send_request(port, method, path, hdrs, body);
    read_response(fd, r);
    close(fd);
}

static void resp_free(struct resp *r)
{
    buf_cleanup(&r->body);
}

/* The value of header name (case-insensitive) into out. */
static bool resp_header(const struct resp *r, const char *name, char *out, size_t cap)
{
    char pat[128];
    snprintf(pat, sizeof(pat), "\r\n%s: ", name);
    const char *h = strcasestr(r->headers, pat);
    if (!h)
        return false;
    h += strlen(pat);
    size_t n = strcspn(h, "\r");
    snprintf(out, cap, "%.*s", (int)n, h);
    return true;
}

static const char init_body[] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
    "\"2025-11-25\",\"capabilities\":{\"elicitation\":{}},\"clientInfo\":{\"name\":\"t\","
    "\"version\":\"0\"}}}";
static const char ping_body[] = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}";

/* initialize + initialized; the session id into sid[33]. hdrs: extra headers (auth). */
static void open_session(int port, const char *hdrs, char *sid)
{
    struct resp r;
    request(port, "POST", "/mcp", hdrs, init_body, &r);
    T_EQ_INT(r.status, 200);
    T_ASSERT(resp_header(&r, "Mcp-Session-Id", sid, 33));
    T_EQ_INT(strlen(sid), 32);
    T_ASSERT(strstr(buf_cstr(&r.body), "\"protocolVersion\":\"2025-11-25\"") != NULL);
    resp_free(&r);
    char h[512];
    snprintf(h, sizeof(h), "%sMcp-Session-Id: %s\r\n", hdrs, sid);
    request(port, "POST", "/mcp", h,
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &r);
    T_EQ_INT(r.status, 202);
    T_EQ_INT(r.body.len, 0);
    resp_free(&r);
}

/* ---- cases ---- */

static void t_session_lifecycle(void)
{
    struct fixture f;
    start(&f, NULL);
    char sid[33], h[256];
    open_session(f.port, "", sid);
    struct resp r;

    snprintf(h, sizeof(h), "Mcp-Session-Id: %s\r\n", sid);
    request(f.port, "POST", "/mcp", h, ping_body, &r);
    T_EQ_INT(r.status, 200);
    T_ASSERT(strstr(buf_cstr(&r.body), "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}") != NULL);
    T_ASSERT(strstr(r.headers, "text/event-stream") != NULL);
    resp_free(&r);

    request(f.port, "POST", "/mcp", "", ping_body, &r); /* no session */
    T_EQ_INT(r.status, 400);
    T_ASSERT(strstr(buf_cstr(&r.body), "Mcp-Session-Id header is required") != NULL);
    resp_free(&r);

    request(f.port, "POST", "/mcp", "Mcp-Session-Id: 00000000000000000000000000000000\r\n",
            ping_body, &r);
    T_EQ_INT(r.status, 404);
    T_ASSERT(strstr(buf_cstr(&r.body), "-32001") != NULL);
    resp_free(&r);

    snprintf(h, sizeof(h), "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2030-01-01\r\n", sid);
    request(f.port, "POST", "/mcp", h, ping_body, &r);
    T_EQ_INT(r.status, 400);
    resp_free(&r);

    snprintf(h, sizeof(h), "Mcp-Session-Id: %s\r\n", sid);
    request(f.port, "DELETE", "/mcp", h, NULL, &r);
    T_EQ_INT(r.status, 200);
    resp_free(&r);
    request(f.port, "POST", "/mcp", h, ping_body, &r);
    T_EQ_INT(r.status, 404);
    resp_free(&r);
    request(f.port, "DELETE", "/mcp", h, NULL, &r);
    T_EQ_INT(r.status, 404);
    resp_free(&r);
    stop(&f, 5000);
}

static void t_status_codes(void)
{
    struct fixture f;
    start(&f, NULL);
    struct resp r;
    request(f.port, "PUT", "/mcp", "", NULL, &r);
    T_EQ_INT(r.status, 405);
    T_ASSERT(strstr(r.headers, "Allow: GET, POST, DELETE") != NULL);
    resp_free(&r);
    request(f.port, "POST", "/mcp", "Origin: http://evil.example\r\n", init_body, &r);
    T_EQ_INT(r.status, 403);
    resp_free(&r);
    int fd = dial(f.port);
    const char *bad_host = "POST /mcp HTTP/1.1\r\nHost: evil.example\r\nContent-Type: "
                           "application/json\r\nContent-Length: 2\r\n\r\n{}";
    send_all(fd, bad_host, strlen(bad_host));
    read_response(fd, &r);
    T_EQ_INT(r.status, 403);
    resp_free(&r);
    close(fd);
    fd = dial(f.port);
    const char *text = "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
                       "Content-Length: 2\r\n\r\n{}";
    send_all(fd, text, strlen(text));
    read_response(fd, &r);
    T_EQ_INT(r.status, 415);
    resp_free(&r);
    close(fd);
    request(f.port, "POST", "/mcp", "", "{not json", &r);
    T_EQ_INT(r.status, 400);
    T_ASSERT(strstr(buf_cstr(&r.body), "-32700") != NULL);
    resp_free(&r);
    request(f.port, "GET", "/healthz", "", NULL, &r);
    T_EQ_INT(r.status, 200);
    T_EQ_STR(buf_cstr(&r.body), "{\"status\":\"ok\"}");
    resp_free(&r);
    request(f.port, "GET", "/elsewhere", "", NULL, &r);
    T_EQ_INT(r.status, 404);
    resp_free(&r);
    stop(&f, 5000);
}

static void t_principal_binding(void)
{
    const char *settings[] = {"auth.tokens=token-for-alice-000000:alice,token-for-bob-0000000:bob",
                              NULL};
    struct fixture f;
    start(&f, settings);
    struct resp r;
    request(f.port, "POST", "/mcp", "", init_body, &r);
    T_EQ_INT(r.status, 401);
    T_ASSERT(strstr(r.headers, "WWW-Authenticate: Bearer") != NULL);
    resp_free(&r);
    char sid[33], h[512];
    open_session(f.port, "Authorization: Bearer token-for-alice-000000\r\n", sid);
    snprintf(h, sizeof(h), "Authorization: Bearer token-for-bob-0000000\r\nMcp-Session-Id: %s\r\n",
             sid);
    request(f.port, "POST", "/mcp", h, ping_body, &r);
    T_EQ_INT(r.status, 404); /* another principal cannot use alice's session */
    resp_free(&r);
    snprintf(h, sizeof(h), "Authorization: Bearer token-for-alice-000000\r\nMcp-Session-Id: %s\r\n",
             sid);
    request(f.port, "POST", "/mcp", h, ping_body, &r);
    T_EQ_INT(r.status, 200);
    resp_free(&r);
    stop(&f, 5000);
}

/* The id of the SSE event whose data contains needle (from raw, possibly chunked, text). */
static void event_id_before(const char *raw, const char *needle, char *out, size_t cap)
{
    const char *at = strstr(raw, needle);
    T_ASSERT(at != NULL);
    const char *id = NULL;
    for (const char *p = raw; p && p < at; p = strstr(p + 1, "\nid: "))
        if (p != raw || strncmp(p, "\nid: ", 5) == 0)
            id = p;
    T_ASSERT(id != NULL);
    id += 5;
    size_t n = strcspn(id, "\n");
    snprintf(out, cap, "%.*s", (int)n, id);
}

static void t_replay_after_disconnect(void)
{
    struct fixture f;
    start(&f, NULL);
    char sid[33], h[256];
    open_session(f.port, "", sid);
    snprintf(h, sizeof(h), "Mcp-Session-Id: %s\r\n", sid);
    int fd = send_request(f.port, "POST", "/mcp", h,
                          "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"tools/call\",\"params\":{"
                          "\"name\":\"test_elicitation\",\"arguments\":{\"message\":\"hi\"}}}");
    struct buf raw;
    buf_init(&raw, 1 << 20);
    read_until(fd, &raw, "elicitation/create", 10000);
    read_until(fd, &raw, "\n\n", 10000);
    char eid[64];
    event_id_before(buf_cstr(&raw), "elicitation/create", eid, sizeof(eid));
    const char *rid = strstr(buf_cstr(&raw), "\"id\":\"agentbox-");
    T_ASSERT(rid != NULL);
    char reqid[64];
    snprintf(reqid, sizeof(reqid), "%.*s", (int)strcspn(rid + 5, ","), rid + 5);
    close(fd); /* the client goes away mid-call */
    buf_cleanup(&raw);

    char answer[512];
    snprintf(answer, sizeof(answer),
             "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"action\":\"accept\",\"content\":{"
             "\"username\":\"u\",\"email\":\"e\"}}}",
             reqid);
    struct resp r;
    request(f.port, "POST", "/mcp", h, answer, &r);
    if (r.status != 202)
        T_FAIL("answer %s: %d %s", answer, r.status, buf_cstr(&r.body));
    resp_free(&r);
    for (int i = 0; i < 200 && mcp_server_inflight(f.srv) > 0; i++)
        poll(NULL, 0, 10);
    T_EQ_INT(mcp_server_inflight(f.srv), 0);

    char h2[512];
    snprintf(h2, sizeof(h2),
             "Mcp-Session-Id: %s\r\nAccept: text/event-stream\r\nLast-Event-ID: %s\r\n", sid, eid);
    request(f.port, "GET", "/mcp", h2, NULL, &r);
    T_EQ_INT(r.status, 200);
    const char *b = buf_cstr(&r.body);
    T_ASSERT(strstr(b, "\"id\":42,\"result\"") != NULL);
    T_ASSERT(strstr(b, "User response: action=accept") != NULL);
    T_ASSERT(strstr(b, "elicitation/create") == NULL); /* only what followed the id */
    resp_free(&r);

    /* An id of this session's format but another nonce is refused. */
    snprintf(h2, sizeof(h2),
             "Mcp-Session-Id: %s\r\nAccept: text/event-stream\r\nLast-Event-ID: "
             "00000000-2-3\r\n",
             sid);
    request(f.port, "GET", "/mcp", h2, NULL, &r);
    T_EQ_INT(r.status, 400);
    resp_free(&r);
    stop(&f, 5000);
}

static void t_json_mode_waits(void)
{
    const char *settings[] = {"http.json_response=true", NULL};
    struct fixture f;
    start(&f, settings);
    char sid[33], h[256];
    open_session(f.port, "", sid);
    snprintf(h, sizeof(h), "Mcp-Session-Id: %s\r\n", sid);
    struct resp r;
    request(f.port, "POST", "/mcp", h,
            "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
            "\"test_tool_with_progress\",\"arguments\":{},\"_meta\":{\"progressToken\":1}}}",
            &r);
    T_EQ_INT(r.status, 200);
    T_ASSERT(strstr(r.headers, "Content-Type: application/json") != NULL);
    T_ASSERT(strstr(buf_cstr(&r.body), "\"id\":3,\"result\"") != NULL);
    T_ASSERT(strstr(buf_cstr(&r.body), "notifications/progress") == NULL);
    resp_free(&r);
    stop(&f, 5000);
}

static void t_shutdown_cancels_after_grace(void)
{
    struct fixture f;
    start(&f, NULL); /* grace 1s */
    char sid[33], h[256];
    open_session(f.port, "", sid);
    snprintf(h, sizeof(h), "Mcp-Session-Id: %s\r\n", sid);
    int fd = send_request(f.port, "POST", "/mcp", h,
                          "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{"
                          "\"name\":\"test_elicitation\",\"arguments\":{\"message\":\"x\"}}}");
    struct buf raw;
    buf_init(&raw, 1 << 20);
    read_until(fd, &raw, "elicitation/create", 10000);
    T_EQ_INT(mcp_server_inflight(f.srv), 1);
    stop(&f, 1000 + 10000);           /* grace, then the cancelled call unwinds */
    read_until(fd, &raw, NULL, 5000); /* the stream ends */
    T_ASSERT(strstr(buf_cstr(&raw), "\"id\":5,\"result\"") == NULL);
    buf_cleanup(&raw);
    close(fd);
}

static void t_many_sessions_and_streams(void)
{
    struct fixture f;
    start(&f, NULL);
    enum { N = 40 };
    char sid[N][33];
    int fds[N];
    for (int i = 0; i < N; i++)
        open_session(f.port, "", sid[i]);
    for (int i = 0; i < N; i++) {
        char h[256];
        snprintf(h, sizeof(h), "Mcp-Session-Id: %s\r\n", sid[i]);
        fds[i] = send_request(f.port, "POST", "/mcp", h,
                              "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
                              "\"name\":\"test_elicitation\",\"arguments\":{\"message\":\"m\"}}}");
    }
    for (int i = 0; i < N; i++) {
        struct buf raw;
        buf_init(&raw, 1 << 20);
        read_until(fds[i], &raw, "elicitation/create", 10000);
        buf_cleanup(&raw);
    }
    T_EQ_INT(mcp_server_inflight(f.srv), N);
    for (int i = 0; i < N; i++) { /* every session still answers ping */
        char h[256];
        snprintf(h, sizeof(h), "Mcp-Session-Id: %s\r\n", sid[i]);
        struct resp r;
        request(f.port, "POST", "/mcp", h, ping_body, &r);
        T_EQ_INT(r.status, 200);
        resp_free(&r);
    }
    for (int i = 0; i < N; i++) /* half the clients vanish; the rest stay connected */
        if (i % 2)
            close(fds[i]);
    stop(&f, 1000 + 10000);
    for (int i = 0; i < N; i += 2)
        close(fds[i]);
}

static const struct t_case cases[] = {
    T_CASE(t_session_lifecycle),         T_CASE(t_status_codes),
    T_CASE(t_principal_binding),         T_CASE(t_replay_after_disconnect),
    T_CASE(t_json_mode_waits),           T_CASE(t_shutdown_cancels_after_grace),
    T_CASE(t_many_sessions_and_streams), {0},
};

T_MAIN(cases)
