/*
 * fuzz_jsonrpc.c - JSON-RPC message handling end to end, in-process: the bytes a client
 * writes to `agentbox serve --stdio`, through the stdio framing (lines, CRLF, over-long
 * lines, blank lines), jsonrpc/ (parse, classify, batches), mcp/ (lifecycle, version
 * negotiation, tools/list pagination, tools/call on worker threads, argument validation,
 * progress, cancellation, logging, server->client requests and their answers) and every
 * agentbox tool over core/ (registry, fsops, policy, audit), on the fuzzbox provider.
 *
 * Input: the client's byte stream, one message per line. The server (stdio_serve on its own
 * thread) reads it from a pipe. The harness writes one line at a time and, after each,
 * a ping of its own, and waits for the ping's answer and for the tool calls the line
 * started (up to 100 ms each), so calls run in input order and a run is reproducible. A
 * literal "$REQ" in a line is replaced by the id of the last request the server sent (an
 * elicitation), so inputs can answer it: accept, decline, cancel, or garbage. A last line
 * without a newline is written as it is, then EOF.
 *
 * Checks: every line the server wrote is a well-formed JSON-RPC 2.0 message; after EOF no
 * call is left running. Every sandbox is deleted afterwards, so each input starts from the
 * same state. FUZZ_SHOW_OUTPUT=1 prints what the server wrote (to read a crash's
 * transcript).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "fuzz.h"
#include "fuzz_app.h"
#include "transport/stdio.h"

static struct fuzz_app app;

static void cleanup(void)
{
    fuzz_app_cleanup(&app);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_app_init(&app, NULL);
    atexit(cleanup);
    return 0;
}

struct server_thread {
    struct stdio_opts o;
    ab_status rc;
    struct ab_err err;
};

static void *serve(void *arg)
{
    struct server_thread *t = arg;
    ab_err_clear(&t->err);
    t->rc = stdio_serve(app.base.srv, &t->o, &t->err);
    return NULL;
}

struct reader {
    int fd;
    off_t seen;       /* bytes of output already scanned */
    char last_req[128]; /* id (JSON text) of the last server->client request */
    unsigned sync;    /* pings sent */
    bool synced;      /* the last ping was answered */
};

/* Scan output written since the last call: remember request ids, notice our ping's answer. */
static void scan(struct reader *r)
{
    off_t end = lseek(r->fd, 0, SEEK_END);
    if (end <= r->seen)
        return;
    size_t n = (size_t)(end - r->seen);
    char *text = malloc(n + 1);
    ssize_t got = pread(r->fd, text, n, r->seen);
    FUZZ_CHECK(got == (ssize_t)n, "pread");
    text[n] = '\0';
    char *last_nl = memrchr(text, '\n', n);
    if (!last_nl) {
        free(text);
        return;
    }
    r->seen += last_nl - text + 1;
    *last_nl = '\0';
    char want[48];
    snprintf(want, sizeof(want), "\"id\":\"fuzz-sync-%u\"", r->sync);
    for (char *line = text, *nl; line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strstr(line, want))
            r->synced = true;
        json_t *m = json_loads(line, 0, NULL);
        const json_t *id = json_object_get(m, "id");
        if (json_is_string(json_object_get(m, "method")) && id) {
            char *idtext = json_dumps(id, JSON_ENCODE_ANY);
            snprintf(r->last_req, sizeof(r->last_req), "%s", idtext ? idtext : "null");
            free(idtext);
        }
        json_decref(m);
    }
    free(text);
}

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        FUZZ_CHECK(w > 0, "write to the server: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* Send one line (with "$REQ" substituted), then a ping; wait for the ping's answer and for
 * the calls to finish, each at most 100 ms. */
static void send_line(struct reader *r, int fd, const char *line, size_t len)
{
    struct buf b;
    buf_init(&b, 4 * len + 256);
    const char *ph = "\"$REQ\"";
    for (size_t i = 0; i < len;) {
        const char *hit = memmem(line + i, len - i, ph, 6);
        size_t upto = hit ? (size_t)(hit - line) : len;
        buf_append(&b, line + i, upto - i);
        if (!hit)
            break;
        buf_append_str(&b, r->last_req[0] ? r->last_req : "null");
        i = upto + 6;
    }
    r->sync++;
    r->synced = false;
    buf_printf(&b, "\n{\"jsonrpc\":\"2.0\",\"id\":\"fuzz-sync-%u\",\"method\":\"ping\"}\n", r->sync);
    write_all(fd, b.data, b.len);
    buf_cleanup(&b);
    int64_t deadline = ab_mono_ms() + 100;
    while (!r->synced && ab_mono_ms() < deadline) {
        pause_us(50);
        scan(r);
    }
    deadline = ab_mono_ms() + 100;
    while (mcp_server_inflight(app.base.srv) > 0 && ab_mono_ms() < deadline) {
        pause_us(50);
        scan(r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    int pipefd[2];
    FUZZ_CHECK(pipe2(pipefd, O_CLOEXEC) == 0, "pipe2");
    int out = memfd_create("fuzz-out", MFD_CLOEXEC);
    FUZZ_CHECK(out >= 0, "memfd_create");
    struct server_thread st = {
        .o = {.in_fd = pipefd[0],
              .out_fd = out,
              .shutdown_fd = -1,
              .max_line_bytes = 64 * 1024,
              .thread_key = "fuzz-thread",
              .drain_ms = 2000},
    };
    pthread_t tid;
    FUZZ_CHECK(pthread_create(&tid, NULL, serve, &st) == 0, "pthread_create");
    struct reader r = {.fd = out};

    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            write_all(pipefd[1], p, (size_t)(end - p)); /* unterminated: as it is */
            break;
        }
        send_line(&r, pipefd[1], p, (size_t)(nl - p));
        p = nl + 1;
    }
    close(pipefd[1]);
    pthread_join(tid, NULL);
    close(pipefd[0]);
    FUZZ_CHECK(st.rc == AB_OK, "stdio_serve: %s", st.err.msg);
    FUZZ_CHECK(mcp_server_inflight(app.base.srv) == 0, "%lld calls still in flight",
               (long long)mcp_server_inflight(app.base.srv));

    off_t oend = lseek(out, 0, SEEK_END);
    char *text = malloc((size_t)oend + 1);
    FUZZ_CHECK(pread(out, text, (size_t)oend, 0) == oend, "pread");
    text[oend] = '\0';
    if (getenv("FUZZ_SHOW_OUTPUT"))
        fprintf(stderr, "%s", text);
    for (char *line = text, *nl; line < text + oend; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(text + oend - line));
        FUZZ_CHECK(nl, "the last message has no newline");
        fuzz_check_message(line, (size_t)(nl - line));
    }
    free(text);
    close(out);
    fuzz_app_reset(&app);
    return 0;
}
