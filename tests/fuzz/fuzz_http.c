/*
 * fuzz_http.c - the Streamable HTTP request path (src/transport/http*.c on libmicrohttpd):
 * request lines and headers, Origin/Host checks, bearer tokens and principals, session ids,
 * MCP-Protocol-Version, Accept/Content-Type negotiation, bodies, batches, SSE streams and
 * Last-Event-ID resumption, DELETE -- end to end, with the whole server (every tool, on the
 * fuzzbox provider) behind it.
 *
 * The server runs once, on a loopback port, on its own thread. Each input is one or more raw
 * HTTP/1.1 requests separated by a line "$NEXT"; each request is written on its own
 * connection and the response read (to EOF, to the end of a Content-Length body, or until
 * an SSE stream has been quiet for 15 ms). Placeholders let mutations reach deep states:
 *   $SID / $SID2   the id of a session initialised for this input by principal alice / bob
 *   $TOKA / $TOKB  alice's / bob's bearer token;   $EID  the last SSE event id seen
 *   $LEN           the length of the body (the bytes after the blank line)
 * Sessions are created fresh for each input and deleted after it, so inputs do not depend
 * on each other.
 *
 * Checks: every response starts with a well-formed status line with a status code from the
 * transport's table (mcp.md 13.8); JSON error bodies are JSON-RPC errors; every SSE `data:`
 * line is a JSON-RPC message; and the server stays healthy (GET /healthz answers 200 after
 * every input; a failure means a request wedged or killed the server). FUZZ_SHOW_OUTPUT=1
 * prints each request line, its status, time and the start of the body.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "fuzz.h"
#include "fuzz_app.h"
#include "transport/http.h"

#define TOKEN_A "fuzz-token-alice-0123456789"
#define TOKEN_B "fuzz-token-bob-9876543210ab"

static struct fuzz_app app;
static pthread_t server_thread;
static int stop_pipe[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int port;
static char last_eid[128];

static void on_listening(void *arg, const char *url, int p)
{
    pthread_mutex_lock(&lock);
    port = p;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void *serve(void *arg)
{
    struct http_hooks hooks = {.listening = on_listening};
    struct ab_err err;
    ab_err_clear(&err);
    ab_status rc = http_serve_ex(app.base.srv, &app.cfg, stop_pipe[0], &hooks, &err);
    FUZZ_CHECK(rc == AB_OK, "http_serve_ex: %s", err.msg);
    pthread_mutex_lock(&lock);
    port = port ? port : -1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void cleanup(void)
{
    if (write(stop_pipe[1], "T", 1) == 1)
        pthread_join(server_thread, NULL);
    fuzz_app_cleanup(&app);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char *const sets[] = {
        "http.listen", "127.0.0.1:0",
        "auth.tokens", TOKEN_A ":alice," TOKEN_B ":bob",
        "http.max_body_bytes", "256KiB",
        "http.sse_replay_events", "16",
        "http.shutdown_grace", "1s",
        "http.max_sessions", "64",
        NULL,
    };
    fuzz_app_init(&app, sets);
    FUZZ_CHECK(pipe2(stop_pipe, O_CLOEXEC) == 0, "pipe2");
    FUZZ_CHECK(pthread_create(&server_thread, NULL, serve, NULL) == 0, "pthread_create");
    pthread_mutex_lock(&lock);
    while (!port)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    FUZZ_CHECK(port > 0, "the server did not start");
    atexit(cleanup);
    return 0;
}

/* ---- one HTTP exchange ---- */

struct response {
    struct buf raw;
    int status;        /* 0 = no status line */
    size_t body_off;   /* start of the body in raw */
    bool sse;
};

static int connect_loopback(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* libFuzzer's SIGALRM (its -timeout watchdog) interrupts system calls: a connect that
     * returns EINTR goes on in the background, so wait for it (connect(2), EINTR). */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        FUZZ_CHECK(errno == EINTR, "connect: %s", strerror(errno));
        struct pollfd p = {fd, POLLOUT, 0};
        while (poll(&p, 1, 10000) < 0 && errno == EINTR)
            ;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        FUZZ_CHECK(soerr == 0, "connect: %s", strerror(soerr));
    }
    return fd;
}

static const char *find_header(const struct response *r, const char *name)
{
    size_t nl = strlen(name);
    const char *end = r->raw.data + r->body_off;
    for (const char *p = strstr(r->raw.data, "\r\n"); p && p < end; p = strstr(p, "\r\n")) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ')
                p++;
            return p;
        }
    }
    return NULL;
}

/* Parse the status line and headers once they are complete; true when they are. */
static bool parse_head(struct response *r)
{
    if (r->body_off)
        return true;
    const char *blank = strstr(buf_cstr(&r->raw), "\r\n\r\n");
    if (!blank)
        return false;
    r->body_off = (size_t)(blank - r->raw.data) + 4;
    FUZZ_CHECK(ab_starts_with(r->raw.data, "HTTP/1.1 ") || ab_starts_with(r->raw.data, "HTTP/1.0 "),
               "a response without a status line: %.200s", r->raw.data);
    r->status = atoi(r->raw.data + 9);
    const char *ct = find_header(r, "Content-Type");
    r->sse = ct && ab_starts_with(ct, "text/event-stream");
    return true;
}

/* The whole response is here: a status without a body (RFC 9110 6.4.1: 1xx, 204, 304), a
 * Content-Length body read to its end, or a chunked body's last chunk (RFC 9112 7.1). */
static bool body_complete(const struct response *r)
{
    if ((r->status >= 100 && r->status < 200) || r->status == 204 || r->status == 304)
        return true;
    const char *cl = find_header(r, "Content-Length");
    if (cl)
        return r->raw.len - r->body_off >= (size_t)strtoull(cl, NULL, 10);
    const char *te = find_header(r, "Transfer-Encoding");
    return te && ab_starts_with(te, "chunked") && ab_ends_with(buf_cstr(&r->raw), "\r\n0\r\n\r\n");
}

/* Write req on a new connection and read the answer. */
static void exchange(const char *req, size_t len, struct response *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->raw, 4u << 20);
    int fd = connect_loopback();
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* the server may close early on a bad request: fine */
        off += (size_t)w;
    }
    int64_t deadline = ab_mono_ms() + 3000;
    /* An incomplete request gets no answer: do not wait long for one. (Half-closing the
     * socket instead would be faster, but the server rightly treats a half-closed client as
     * gone, which would hide the paths real clients take.) */
    int quiet_ms = 50;
    char chunk[16384];
    for (;;) {
        int64_t left = deadline - ab_mono_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, (int)AB_MIN(left, quiet_ms));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            break; /* quiet: an SSE stream that has said what it had, or nothing to come */
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (buf_append_upto(&r->raw, chunk, (size_t)n) < (size_t)n)
            break;
        if (parse_head(r)) {
            if (body_complete(r))
                break;
            quiet_ms = r->sse ? 15 : 50;
        }
    }
    close(fd);
    parse_head(r);
}

/* Is the request line's target the MCP endpoint? (Only the first line counts: pipelined
 * bytes after it may name anything.) */
static bool to_mcp_endpoint(const char *req)
{
    const char *sp = strchr(req, ' ');
    const char *eol = strpbrk(req, "\r\n");
    return sp && (!eol || sp < eol) && strncmp(sp + 1, "/mcp", 4) == 0 &&
           (sp[5] == ' ' || sp[5] == '?');
}

static const int known_status[] = {200, 202, 204, 400, 401, 403, 404, 405, 406,
                                   409, 413, 415, 429, 431, 500, 501, 503, 505};

static void check_response(const struct response *r, const char *req)
{
    if (!r->body_off)
        return; /* no answer at all (MHD drops malformed requests) */
    bool known = false;
    for (size_t i = 0; i < AB_ARRAY_LEN(known_status); i++)
        known |= r->status == known_status[i];
    FUZZ_CHECK(known, "status %d for:\n%.400s", r->status, req);
    const char *body = r->raw.data + r->body_off;
    if (r->sse) {
        /* Every data line of a complete event is one JSON-RPC message (or the empty
         * priming data). Remember event ids for $EID. */
        for (const char *p = body; *p;) {
            const char *nl = strchr(p, '\n');
            if (!nl)
                break; /* a line cut by our read: ignore */
            if (ab_starts_with(p, "id: ")) {
                snprintf(last_eid, sizeof(last_eid), "%.*s", (int)(nl - p - 4), p + 4);
            } else if (ab_starts_with(p, "data: ") && nl > p + 6) {
                fuzz_check_message(p + 6, (size_t)(nl - p - 6));
            }
            p = nl + 1;
        }
    } else if (body_complete(r) && *body && to_mcp_endpoint(req)) {
        /* A JSON answer from the MCP endpoint: a response, or an error with a JSON-RPC
         * body (the SDK reads those). */
        const char *ct = find_header(r, "Content-Type");
        const char *cl = find_header(r, "Content-Length");
        size_t blen = r->raw.len - r->body_off;
        if (cl) /* pipelined requests: more responses may follow this one */
            blen = AB_MIN(blen, (size_t)strtoull(cl, NULL, 10));
        if (ct && ab_starts_with(ct, "application/json"))
            fuzz_check_message(body, blen);
    }
}

/* ---- sessions for placeholders ---- */

static bool open_session(const char *token, char *sid, size_t cap)
{
    static const char body[] =
        "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
        "\"2025-11-25\",\"capabilities\":{\"elicitation\":{}},\"clientInfo\":{\"name\":\"fuzz\","
        "\"version\":\"1\"}}}";
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nAccept: application/json, "
                     "text/event-stream\r\nContent-Length: %zu\r\n\r\n%s",
                     token, strlen(body), body);
    struct response r;
    exchange(req, (size_t)n, &r);
    const char *h = r.body_off ? find_header(&r, "Mcp-Session-Id") : NULL;
    bool ok = r.status == 200 && h;
    if (ok)
        snprintf(sid, cap, "%.*s", (int)strcspn(h, "\r\n"), h);
    buf_cleanup(&r.raw);
    FUZZ_CHECK(ok, "initialize failed (status %d)", r.status);
    /* notifications/initialized, so the session is fully open. */
    static const char note[] = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
    n = snprintf(req, sizeof(req),
                 "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                 "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n"
                 "Content-Type: application/json\r\nAccept: application/json, "
                 "text/event-stream\r\nContent-Length: %zu\r\n\r\n%s",
                 token, sid, strlen(note), note);
    exchange(req, (size_t)n, &r);
    buf_cleanup(&r.raw);
    return ok;
}

static void close_session(const char *token, const char *sid)
{
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Mcp-Session-Id: %s\r\nContent-Length: 0\r\n\r\n",
                     token, sid);
    struct response r;
    exchange(req, (size_t)n, &r);
    buf_cleanup(&r.raw);
}

static void check_health(void)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    struct response r;
    exchange(req, sizeof(req) - 1, &r);
    FUZZ_CHECK(r.status == 200, "GET /healthz answered %d after this input", r.status);
    buf_cleanup(&r.raw);
}

/* Substitute the placeholders of one request into out. */
static void expand(const char *in, size_t len, const char *sid, const char *sid2,
                   struct buf *out)
{
    static const struct {
        const char *name;
        size_t len;
    } ph[] = {{"$SID2", 5}, {"$SID", 4}, {"$TOKA", 5}, {"$TOKB", 5}, {"$EID", 4}, {"$LEN", 4}};
    size_t len_at = (size_t)-1;
    for (size_t i = 0; i < len;) {
        size_t k = AB_ARRAY_LEN(ph);
        if (in[i] == '$')
            for (k = 0; k < AB_ARRAY_LEN(ph); k++)
                if (len - i >= ph[k].len && memcmp(in + i, ph[k].name, ph[k].len) == 0)
                    break;
        if (k == AB_ARRAY_LEN(ph)) {
            buf_append_char(out, in[i++]);
            continue;
        }
        const char *v = k == 0 ? sid2 : k == 1 ? sid : k == 2 ? "Bearer " TOKEN_A
                        : k == 3 ? "Bearer " TOKEN_B : k == 4 ? last_eid : NULL;
        if (k == 5)
            len_at = out->len; /* filled in below, once the body is known */
        else
            buf_append_str(out, v);
        i += ph[k].len;
    }
    if (len_at != (size_t)-1) {
        const char *blank = strstr(buf_cstr(out), "\r\n\r\n");
        size_t body = blank ? out->len - (size_t)(blank - out->data) - 4 : 0;
        char num[32];
        int n = snprintf(num, sizeof(num), "%zu", body);
        /* Insert: the digits themselves come before the body, so they do not change it. */
        struct buf tmp;
        buf_init(&tmp, out->max);
        buf_append(&tmp, out->data, len_at);
        buf_append(&tmp, num, (size_t)n);
        buf_append(&tmp, out->data + len_at, out->len - len_at);
        buf_cleanup(out);
        *out = tmp;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (256u << 10))
        return 0;
    const char *in = (const char *)data, *end = in + size;
    bool need_b = memmem(in, size, "$SID2", 5) != NULL;
    char sid[128] = "", sid2[128] = "";
    last_eid[0] = '\0';
    open_session(TOKEN_A, sid, sizeof(sid));
    if (need_b)
        open_session(TOKEN_B, sid2, sizeof(sid2));
    for (const char *p = in; p < end;) {
        const char *sep = memmem(p, (size_t)(end - p), "\n$NEXT\n", 7);
        size_t n = sep ? (size_t)(sep - p) : (size_t)(end - p);
        struct buf req;
        buf_init(&req, 1u << 20);
        expand(p, n, sid, sid2, &req);
        struct response r;
        int64_t t0 = ab_mono_us();
        exchange(buf_cstr(&req), req.len, &r);
        if (getenv("FUZZ_SHOW_OUTPUT"))
            fprintf(stderr, "--- %.*s -> %d (%lld us)\n%.600s\n", (int)strcspn(req.data, "\r\n"),
                    req.data, r.status, (long long)(ab_mono_us() - t0),
                    r.body_off ? r.raw.data + r.body_off : "");
        check_response(&r, buf_cstr(&req));
        buf_cleanup(&r.raw);
        buf_cleanup(&req);
        p = sep ? sep + 7 : end;
    }
    close_session(TOKEN_A, sid);
    if (need_b)
        close_session(TOKEN_B, sid2);
    check_health();
    fuzz_app_reset(&app);
    return 0;
}
