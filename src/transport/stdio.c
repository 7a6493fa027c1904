/*
 * stdio.c - newline-delimited JSON-RPC over a pair of fds.
 *
 * The reader (this thread) splits input on '\n' (stripping a trailing '\r', as the TS SDK
 * does), parses each line and dispatches it; tools/call runs on its own thread, so reading
 * continues and ping / notifications/cancelled are handled while a tool runs. All output
 * goes through one stream whose mutex makes every line a single uninterrupted write
 * (transports.mdx: messages MUST NOT contain embedded newlines; jrpc_dump is compact).
 *
 * A line longer than max_line_bytes is not buffered: the reader skips to the next newline
 * and answers with an Invalid Request error (id null, since the id was never read). EOF
 * closes the session (in-flight calls are drained, then cancelled) and returns.
 */
#include "transport/stdio.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "jsonrpc/jsonrpc.h"
#include "mcp/batch.h"
#include "mcp/server.h"

struct out_stream {
    struct mcp_stream base;
    pthread_mutex_t lock;
    int fd;
    bool dead;
};

static ab_status out_send(struct mcp_stream *st, const json_t *msg, bool final)
{
    struct out_stream *o = (struct out_stream *)st;
    size_t len = 0;
    char *line = jrpc_dump(msg, &len);
    if (!line)
        return AB_NOMEM;
    ab_status rc = AB_OK;
    pthread_mutex_lock(&o->lock);
    if (o->dead) {
        rc = AB_IO;
    } else {
        line[len] = '\n'; /* jrpc_dump's NUL becomes the delimiter */
        size_t off = 0;
        while (off < len + 1) {
            ssize_t w = write(o->fd, line + off, len + 1 - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                o->dead = true;
                rc = AB_IO;
                AB_LOG_WARN("stdio.write_failed", "errno=%d", errno);
                break;
            }
            off += (size_t)w;
        }
    }
    pthread_mutex_unlock(&o->lock);
    free(line);
    return rc;
}

static void out_free(struct mcp_stream *st)
{
    struct out_stream *o = (struct out_stream *)st;
    pthread_mutex_destroy(&o->lock);
    free(o);
}

static const struct mcp_stream_ops out_ops = {
    .send = out_send,
    .end = NULL,
    .disconnect = NULL,
    .free = out_free,
};

static void send_error(struct mcp_stream *out, int code, const char *message)
{
    json_t *e = jrpc_error(NULL, code, message, NULL);
    out_send(out, e, true);
    json_decref(e);
}

static void handle_line(struct mcp_session *sess, struct mcp_stream *out, const char *line,
                        size_t len)
{
    json_t *root = NULL, *err = NULL;
    if (jrpc_parse(line, len, &root, &err) != AB_OK) {
        out_send(out, err, true);
        json_decref(err);
        return;
    }
    if (json_is_array(root)) {
        if (json_array_size(root) == 0) {
            send_error(out, JRPC_INVALID_REQUEST, "Invalid Request: empty batch");
        } else if (!mcp_session_batches_allowed(sess)) {
            char msg[256];
            const char *v = mcp_session_version(sess);
            snprintf(msg, sizeof(msg),
                     "Invalid Request: JSON-RPC batches are not supported on protocol version "
                     "%s (only 2025-03-26 allows them); send one message per line",
                     v ? v : "(not initialized)");
            send_error(out, JRPC_INVALID_REQUEST, msg);
        } else {
            size_t expected = 0, i;
            json_t *el;
            json_array_foreach(root, i, el)
            {
                struct jrpc_msg m;
                json_t *e = NULL;
                if (jrpc_classify(el, &m, &e) != AB_OK || m.kind == JRPC_REQUEST)
                    expected++;
                json_decref(e);
            }
            struct mcp_stream *batch = expected ? mcp_batch_stream_new(out, expected) : out;
            if (!expected)
                mcp_stream_ref(out);
            json_array_foreach(root, i, el) mcp_session_dispatch(sess, el, batch, NULL);
            mcp_stream_unref(batch);
        }
    } else {
        mcp_session_dispatch(sess, root, out, NULL);
    }
    json_decref(root);
}

ab_status stdio_serve(struct mcp_server *srv, const struct stdio_opts *opts, struct ab_err *err)
{
    struct out_stream *o = calloc(1, sizeof(*o));
    if (!o)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    mcp_stream_init(&o->base, &out_ops);
    pthread_mutex_init(&o->lock, NULL);
    o->fd = opts->out_fd;

    struct mcp_session_opts so = {
        .id = "stdio",
        .principal = "",
        .default_thread_key = opts->thread_key,
    };
    struct mcp_session *sess = mcp_session_new(srv, &so);
    if (!sess) {
        mcp_stream_unref(&o->base);
        return ab_err_set(err, AB_NOMEM, "out of memory");
    }
    mcp_session_set_standalone(sess, &o->base);

    uint64_t max = opts->max_line_bytes ? opts->max_line_bytes : 16u * 1024 * 1024;
    struct buf line;
    buf_init(&line, max);
    bool skipping = false; /* inside an over-long line */
    char chunk[65536];
    ab_status rc = AB_OK;
    AB_LOG_INFO("stdio.start", "max_line=%llu thread_key=%s", (unsigned long long)max,
                opts->thread_key ? opts->thread_key : "");
    for (;;) {
        struct pollfd pfd[2] = {{opts->in_fd, POLLIN, 0}, {opts->shutdown_fd, POLLIN, 0}};
        int np = opts->shutdown_fd >= 0 ? 2 : 1;
        int pr = poll(pfd, (nfds_t)np, -1);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            rc = ab_err_sys(err, AB_IO, errno, "poll");
            break;
        }
        if (np == 2 && pfd[1].revents) {
            AB_LOG_INFO("stdio.shutdown", "reason=signal");
            break;
        }
        ssize_t n = read(opts->in_fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            rc = ab_err_sys(err, AB_IO, errno, "read stdin");
            break;
        }
        if (n == 0) {
            AB_LOG_INFO("stdio.eof", "pending_bytes=%zu", line.len);
            break;
        }
        const char *p = chunk;
        size_t left = (size_t)n;
        while (left > 0) {
            const char *nl = memchr(p, '\n', left);
            size_t take = nl ? (size_t)(nl - p) : left;
            if (!skipping && buf_append(&line, p, take) == AB_LIMIT) {
                skipping = true;
                buf_reset(&line);
            }
            if (nl) {
                if (skipping) {
                    char msg[160];
                    snprintf(msg, sizeof(msg),
                             "Invalid Request: message exceeds the %llu-byte line limit",
                             (unsigned long long)max);
                    send_error(&o->base, JRPC_INVALID_REQUEST, msg);
                    AB_LOG_WARN("stdio.line_too_long", "limit=%llu", (unsigned long long)max);
                    skipping = false;
                } else {
                    size_t len = line.len;
                    if (len && line.data[len - 1] == '\r')
                        len--;
                    /* Blank lines between messages are tolerated and ignored. */
                    size_t k = 0;
                    while (k < len && (line.data[k] == ' ' || line.data[k] == '\t'))
                        k++;
                    if (k < len)
                        handle_line(sess, &o->base, line.data, len);
                }
                buf_reset(&line);
                take++;
            }
            p += take;
            left -= take;
        }
    }
    buf_cleanup(&line);
    /* Nobody can answer server->client requests any more. */
    mcp_session_client_gone(sess);
    /* Let in-flight calls finish (bounded), then cancel what is left and wait for it. */
    if (mcp_session_inflight(sess) > 0)
        mcp_server_drain(srv, opts->drain_ms);
    mcp_session_close(sess);
    mcp_server_drain(srv, 10000);
    mcp_session_unref(sess);
    mcp_stream_unref(&o->base);
    return rc;
}
