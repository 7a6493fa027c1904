/*
 * http.c - Streamable HTTP (MCP 2025-11-25 basic/transports) on libmicrohttpd 0.9.75.
 *
 * Threading: MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL with a small thread pool and
 * MHD_ALLOW_SUSPEND_RESUME. A connection with nothing to send is suspended (it leaves the
 * epoll set and costs no CPU); whoever produces data for it resumes it. So thousands of open
 * SSE streams and slow tool calls cost one socket and one suspended connection each, with no
 * FD_SETSIZE limit and no polling. The MCP layer runs every tools/call on its own thread;
 * everything else is answered inline in the access handler, so `ping` stays prompt no matter
 * how many calls are in flight. The thread that called http_serve() polls the shutdown fd
 * and, once a second, writes keep-alive comments, lets delivered streams leave the replay
 * rings and expires idle sessions.
 * Rejected: thread-per-connection (a thread per open SSE stream, doubling the thread count
 * under load) and returning 0 from content readers without suspending (a busy loop).
 *
 * Objects (see server.h for the MCP side):
 *   hserver   one per http_serve(): the daemon, the session table, auth, settings.
 *   hsession  one per Mcp-Session-Id: the mcp_session, the replay ring (sse_ring.h), the
 *             live streams, and the requests currently streaming to its client.
 *   hstream   an mcp_stream: the SSE (or JSON) response of one POST, or the session's
 *             standalone GET stream. Lives exactly as long as the MCP layer holds it.
 *   hreq      per-request state in *req_cls, freed in the request-completed callback (the
 *             one place that always runs). A streaming request is attached to at most one
 *             stream and owns the bytes not yet written to its socket.
 * A stream outlives its connection (the client may disconnect and resume with
 * Last-Event-ID: everything sent is also in the session's ring) and a connection may
 * outlive its stream (it flushes what is queued, then ends).
 *
 * Locking: hserver.lock (the table) before hsession.lock. hsession.lock guards the streams,
 * the requests' output queues and their suspended flags; MHD_suspend_connection and
 * MHD_resume_connection are called under it (MHD takes only its own cleanup mutex inside,
 * and never calls back into us while holding that). Never call into the MCP layer while
 * holding a session lock: the MCP layer calls our stream ops with its own locks released
 * and they take the session lock.
 */
#include "transport/http.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "jsonrpc/jsonrpc.h"
#include "mcp/batch.h"
#include "mcp/server.h"
#include "transport/http_auth.h"
#include "transport/http_util.h"
#include "transport/sse_ring.h"

#define HTTP_TICK_MS        1000
#define HTTP_CONN_TIMEOUT_S 120         /* idle keep-alive connections (MHD) */
#define HTTP_OUT_MAX        (64u << 20) /* unsent bytes per SSE connection before we drop it */
#define HTTP_FLUSH_MS       2000        /* at shutdown: time for clients to read the rest */
#define HTTP_UNWIND_MS      10000       /* at shutdown: time for cancelled calls to return */
#define HTTP_PRINCIPAL_MAX  HTTP_AUTH_PRINCIPAL_MAX
#define HTTP_THREAD_HDR_MAX 256
#define HTTP_SSE_BLOCK      (32u * 1024)
#define HTTP_REPLAY_GRACE_MS 60000 /* a delivered stream stays resumable this long */
#define HTTP_DONE_MAX        4096  /* delivered streams awaiting that, per session */

#define ALLOW_METHODS "GET, POST, DELETE, OPTIONS"
#define ALLOW_HEADERS                                                                              \
    "Content-Type, Accept, Authorization, Mcp-Session-Id, "                                        \
    "Mcp-Protocol-Version, Last-Event-ID, Agentbox-Thread-Id"
#define EXPOSE_HEADERS "Mcp-Session-Id, Mcp-Protocol-Version"

struct hserver;
struct hsession;
struct hreq;

enum stream_kind { SK_SSE, SK_JSON, SK_STANDALONE };

struct hstream {
    struct mcp_stream base; /* first member */
    struct hsession *sess;  /* strong reference */
    uint64_t no;
    enum stream_kind kind;
    bool finished;          /* final response sent, or ended without one */
    uint64_t delivered_seq; /* last event handed to a connection (standalone: older ones
                               were sent while no GET was open and are still owed) */
    struct hreq *conn;      /* attached request, or NULL */
    struct hstream *next;   /* hsession.streams */
};

enum req_state { RS_NEW, RS_BODY, RS_STREAM, RS_JSON_WAIT, RS_DONE };

struct hreq {
    struct hserver *hs;
    struct MHD_Connection *conn;
    enum req_state state;
    const char *method;
    const char *path;
    unsigned status;
    int64_t start_us;
    const char *cors_origin; /* borrowed from MHD's header table (valid for the request) */
    char principal[HTTP_PRINCIPAL_MAX];
    struct http_accept accept;
    /* POST body */
    struct buf body;
    size_t body_max;   /* http.max_body_bytes, or the principal's quota when smaller */
    bool quota_limited; /* body_max is quotas.max_request_bytes */
    uint64_t done_stream; /* the POST stream whose final event this response carries */
    bool too_large;
    uint64_t discarded;
    /* streaming: guarded by sess->lock */
    struct hsession *sess;  /* strong reference once streaming */
    struct hstream *stream; /* weak */
    bool listed;            /* in sess->reqs */
    bool is_sse;
    struct buf out;
    size_t out_off;
    bool suspended;
    bool eof;   /* end the response once out is flushed */
    char *json; /* JSON mode: the response body */
    size_t json_len;
    bool json_ready;
    bool json_none; /* JSON mode: the request ended without a response */
    int64_t last_write_ms;
    struct hreq *next; /* hsession.reqs */
};

struct hsession {
    struct hserver *hs;
    atomic_int refs;
    pthread_mutex_t lock;
    char id[HTTP_SESSION_ID_LEN + 1];
    char nonce[HTTP_EVENT_NONCE_LEN + 1];
    char principal[HTTP_PRINCIPAL_MAX];
    struct mcp_session *mcp;
    struct sse_ring ring;
    uint64_t next_stream;
    uint64_t next_seq;
    struct hstream *streams;
    struct hstream *standalone; /* weak */
    struct hreq *reqs;
    /* Streams whose final response went out whole, oldest first: their events leave the
     * replay ring HTTP_REPLAY_GRACE_MS later (tick), so a client may still resume them for a
     * while, but a busy session does not keep http.sse_replay_events of them forever. */
    struct done_stream {
        uint64_t no;
        int64_t at_ms;
    } *done;
    size_t ndone, done_cap;
    bool closed;
    _Atomic int64_t last_used_ms;
    struct hsession *next; /* hash chain, under hserver.lock */
};

struct hserver {
    struct mcp_server *mcp;
    const struct config *cfg;
    const struct http_hooks *hooks;
    struct MHD_Daemon *d;
    struct http_auth *auth;
    pthread_mutex_t lock;
    struct hsession **buckets;
    size_t nbuckets;
    int64_t nsessions; /* in the table, plus slots reserved by initialize in progress */
    uint64_t sessions_total;
    const char *path;
    bool check_host;
    const char *const *allowed_hosts;
    const char *const *allowed_origins;
    atomic_bool draining;
    atomic_bool stopping;
    _Atomic int64_t streaming; /* requests with an SSE or pending JSON response */
    size_t max_body;
    int64_t keepalive_ms, retry_ms, idle_ms, max_sessions;
    size_t replay_events, replay_bytes;
    bool json_response;
    char url[160];
};

/* ------------------------------------------------------------------------------------------
 * Sessions
 * ---------------------------------------------------------------------------------------- */

static void session_ref(struct hsession *s)
{
    atomic_fetch_add(&s->refs, 1);
}

static void session_unref(struct hsession *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    sse_ring_cleanup(&s->ring);
    free(s->done);
    mcp_session_unref(s->mcp);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static size_t bucket_of(const struct hserver *hs, const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (size_t)(h & (hs->nbuckets - 1));
}

/* Look up a session bound to principal. Returns a new reference, or NULL. */
static struct hsession *session_find(struct hserver *hs, const char *id, const char *principal)
{
    if (!http_session_id_valid(id))
        return NULL;
    struct hsession *found = NULL;
    pthread_mutex_lock(&hs->lock);
    for (struct hsession *s = hs->buckets[bucket_of(hs, id)]; s; s = s->next) {
        if (ab_consttime_equal(s->id, HTTP_SESSION_ID_LEN, id, HTTP_SESSION_ID_LEN)) {
            /* security_best_practices.mdx: bind sessions to the user; another token that
             * presents this id gets the same answer as for an unknown id. */
            if (strcmp(s->principal, principal) == 0) {
                found = s;
                session_ref(s);
            }
            break;
        }
    }
    pthread_mutex_unlock(&hs->lock);
    return found;
}

/* Remove from the table (hs->lock held). Returns true when it was there. */
static bool session_unlink_locked(struct hserver *hs, struct hsession *s)
{
    for (struct hsession **pp = &hs->buckets[bucket_of(hs, s->id)]; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            s->next = NULL;
            hs->nsessions--;
            return true;
        }
    return false;
}

static void wake_locked(struct hreq *r)
{
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
}

/* End the session: its requests finish, its calls are cancelled (mcp_session_close). The
 * caller has removed it from the table. Idempotent. */
static void session_close(struct hsession *s, const char *why)
{
    pthread_mutex_lock(&s->lock);
    if (s->closed) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    s->closed = true;
    for (struct hreq *r = s->reqs; r; r = r->next) {
        r->eof = true;
        wake_locked(r);
    }
    pthread_mutex_unlock(&s->lock);
    AB_LOG_INFO("http.session.close", "session=%.8s reason=%s", s->id, why);
    mcp_session_close(s->mcp);
}

/* Drop a session from the table and close it; releases the table's reference. */
static void session_remove(struct hserver *hs, struct hsession *s, const char *why)
{
    pthread_mutex_lock(&hs->lock);
    bool was = session_unlink_locked(hs, s);
    pthread_mutex_unlock(&hs->lock);
    if (was) {
        session_close(s, why);
        session_unref(s);
    }
}

/* All sessions in the table, each with a new reference. *n receives the count. */
static struct hsession **session_snapshot(struct hserver *hs, size_t *n)
{
    pthread_mutex_lock(&hs->lock);
    size_t cap = (size_t)(hs->nsessions > 0 ? hs->nsessions : 0) + 1, k = 0;
    struct hsession **v = malloc(cap * sizeof(*v));
    for (size_t b = 0; v && b < hs->nbuckets; b++)
        for (struct hsession *s = hs->buckets[b]; s && k < cap; s = s->next) {
            session_ref(s);
            v[k++] = s;
        }
    pthread_mutex_unlock(&hs->lock);
    *n = k;
    return v;
}

static int64_t session_last_used(struct hsession *s)
{
    return AB_MAX(atomic_load(&s->last_used_ms), mcp_session_last_active_ms(s->mcp));
}

/* A session nobody is using right now: no call running, no request streaming. */
static bool session_quiet(struct hsession *s)
{
    pthread_mutex_lock(&s->lock);
    bool quiet = s->reqs == NULL;
    pthread_mutex_unlock(&s->lock);
    return quiet && mcp_session_inflight(s->mcp) == 0;
}

/* ------------------------------------------------------------------------------------------
 * Streams (the mcp_stream ops)
 * ---------------------------------------------------------------------------------------- */

static void out_compact(struct hreq *r)
{
    if (r->out_off == r->out.len) {
        buf_reset(&r->out);
        r->out_off = 0;
    } else if (r->out_off > (1u << 20) && r->out_off > r->out.len / 2) {
        buf_consume(&r->out, r->out_off);
        r->out_off = 0;
    }
}

/* Detach r from its stream and let it end once flushed (sess lock held). */
static void req_detach_locked(struct hreq *r)
{
    if (r->stream && r->stream->conn == r)
        r->stream->conn = NULL;
    r->stream = NULL;
    r->eof = true;
    wake_locked(r);
}

struct replay_ctx {
    struct hreq *r;
    size_t n;
};

static void replay_visit(void *arg, const struct sse_event *ev)
{
    struct replay_ctx *c = arg;
    if (buf_append(&c->r->out, ev->data, ev->len) == AB_OK)
        c->n++;
}

/* Write one message as an SSE event on st: into the ring, and to the attached connection
 * (sess lock held). */
static ab_status emit_locked(struct hstream *st, const char *json, size_t len, bool final)
{
    struct hsession *s = st->sess;
    if (s->closed)
        return AB_IO;
    uint64_t seq = ++s->next_seq;
    char id[HTTP_EVENT_ID_MAX];
    http_event_id_format(id, sizeof(id), s->nonce, st->no, seq);
    struct buf ev;
    buf_init(&ev, SIZE_MAX / 2);
    ab_status rc = http_sse_message(&ev, id, json, len);
    if (rc) {
        buf_cleanup(&ev);
        return rc;
    }
    if (sse_ring_push(&s->ring, st->no, seq, ev.data, ev.len) == AB_LIMIT)
        AB_LOG_DEBUG("http.sse.not_replayable", "session=%.8s bytes=%zu", s->id, ev.len);
    struct hreq *r = st->conn;
    if (r) {
        size_t pending = r->out.len - r->out_off;
        if (pending > 0 && pending + ev.len > HTTP_OUT_MAX) {
            /* The client stopped reading. Drop the connection rather than buffer without
             * bound; it can resume from the ring with Last-Event-ID. */
            AB_LOG_WARN("http.sse.slow_client", "session=%.8s pending=%zu", s->id, pending);
            req_detach_locked(r);
        } else if (buf_append(&r->out, ev.data, ev.len) == AB_OK) {
            st->delivered_seq = seq;
            wake_locked(r);
        } else {
            req_detach_locked(r);
        }
    }
    if (final) {
        st->finished = true;
        if (st->conn) {
            if (st->kind == SK_SSE && st->delivered_seq == seq)
                st->conn->done_stream = st->no; /* forgotten once written out: on_completed */
            req_detach_locked(st->conn);
        }
    }
    buf_cleanup(&ev);
    return AB_OK;
}

static ab_status stream_send(struct mcp_stream *base, const json_t *msg, bool final)
{
    struct hstream *st = (struct hstream *)base;
    struct hsession *s = st->sess;
    size_t len = 0;
    char *json = jrpc_dump(msg, &len);
    if (!json)
        return AB_NOMEM;
    ab_status rc = AB_OK;
    pthread_mutex_lock(&s->lock);
    if (st->kind == SK_JSON) {
        if (final) {
            st->finished = true;
            struct hreq *r = st->conn;
            if (r && !r->json_ready && !r->json_none) {
                r->json = json;
                r->json_len = len;
                r->json_ready = true;
                json = NULL;
                wake_locked(r);
            }
        } else if (json_object_get(msg, "method") && json_object_get(msg, "id")) {
            /* A server->client request (sampling, elicitation) cannot ride a single JSON
             * response; the standalone GET stream is the only other way to the client. */
            rc = s->standalone ? emit_locked(s->standalone, json, len, false) : AB_IO;
        }
        /* Progress and log notifications have nowhere to go in JSON mode: dropped (the
         * documented trade-off of http.json_response). */
    } else {
        rc = emit_locked(st, json, len, final);
    }
    pthread_mutex_unlock(&s->lock);
    free(json);
    return rc;
}

/* The request ended without a response (cancelled). */
/* The stream is done with its connection: detach it, and tell a JSON request that no
 * response is coming (it answers 202/empty instead of waiting). Session lock held. */
static void stream_release_conn_locked(struct hstream *st)
{
    struct hreq *r = st->conn;
    if (!r)
        return;
    if (st->kind == SK_JSON && !r->json_ready)
        r->json_none = true;
    req_detach_locked(r);
}

static void stream_end(struct mcp_stream *base)
{
    struct hstream *st = (struct hstream *)base;
    struct hsession *s = st->sess;
    pthread_mutex_lock(&s->lock);
    st->finished = true;
    stream_release_conn_locked(st);
    pthread_mutex_unlock(&s->lock);
}

/* SEP-1699 (mcp_call_disconnect): close the connection, keep the stream; the client
 * reconnects with Last-Event-ID. Only for sessions >= 2025-11-25, which know to reconnect
 * after a priming event; older clients would just lose the response. */
static void stream_disconnect(struct mcp_stream *base)
{
    struct hstream *st = (struct hstream *)base;
    struct hsession *s = st->sess;
    const char *v = mcp_session_version(s->mcp);
    if (st->kind != SK_SSE || !v || strcmp(v, "2025-11-25") < 0)
        return;
    pthread_mutex_lock(&s->lock);
    if (st->conn) {
        AB_LOG_DEBUG("http.sse.disconnect", "session=%.8s stream=%" PRIu64, s->id, st->no);
        req_detach_locked(st->conn);
    }
    pthread_mutex_unlock(&s->lock);
}

static void stream_free(struct mcp_stream *base)
{
    struct hstream *st = (struct hstream *)base;
    struct hsession *s = st->sess;
    pthread_mutex_lock(&s->lock);
    for (struct hstream **pp = &s->streams; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    if (s->standalone == st)
        s->standalone = NULL;
    stream_release_conn_locked(st);
    pthread_mutex_unlock(&s->lock);
    free(st);
    session_unref(s);
}

static const struct mcp_stream_ops hstream_ops = {
    .send = stream_send,
    .end = stream_end,
    .disconnect = stream_disconnect,
    .free = stream_free,
};

/* A new stream registered with s (one reference: the caller's). */
static struct hstream *stream_new(struct hsession *s, enum stream_kind kind)
{
    struct hstream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    mcp_stream_init(&st->base, &hstream_ops);
    st->sess = s;
    session_ref(s);
    st->kind = kind;
    pthread_mutex_lock(&s->lock);
    st->no = ++s->next_stream;
    st->next = s->streams;
    s->streams = st;
    pthread_mutex_unlock(&s->lock);
    return st;
}

/* Notifications and responses produce no output; dispatch still wants a stream. */
static ab_status discard_send(struct mcp_stream *st, const json_t *msg, bool final)
{
    return AB_OK;
}

static void discard_free(struct mcp_stream *st)
{
}

static const struct mcp_stream_ops discard_ops = {
    .send = discard_send,
    .free = discard_free,
};

static struct mcp_stream discard_stream = {.ops = &discard_ops, .refs = 1};

/* Create a session (not yet in the table). Returns a new reference or NULL. */
static struct hsession *session_new(struct hserver *hs, const char *principal)
{
    struct hsession *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->hs = hs;
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->lock, NULL);
    snprintf(s->principal, sizeof(s->principal), "%s", principal);
    sse_ring_init(&s->ring, hs->replay_events, hs->replay_bytes);
    atomic_init(&s->last_used_ms, ab_mono_ms());
    if (http_session_id_new(s->id) || ab_random_hex(s->nonce, HTTP_EVENT_NONCE_LEN / 2)) {
        session_unref(s);
        return NULL;
    }
    /* design.md rule 4: the session's thread key. Derived, not the id itself, so sandbox
     * labels and logs never carry the session secret. */
    char digest[65], key[48];
    ab_sha256_hex(s->id, HTTP_SESSION_ID_LEN, digest);
    snprintf(key, sizeof(key), "http-%.24s", digest);
    struct mcp_session_opts so = {.id = s->id, .principal = principal, .default_thread_key = key};
    s->mcp = mcp_session_new(hs->mcp, &so);
    if (!s->mcp) {
        session_unref(s);
        return NULL;
    }
    struct hstream *st = stream_new(s, SK_STANDALONE);
    if (!st) {
        session_unref(s);
        return NULL;
    }
    s->standalone = st;
    mcp_session_set_standalone(s->mcp, &st->base);
    mcp_stream_unref(&st->base);
    return s;
}

/* Reserve a table slot for a new session, evicting the least recently used quiet session
 * when full. false when every slot is busy. */
static bool session_reserve(struct hserver *hs)
{
    struct hsession *victim = NULL;
    pthread_mutex_lock(&hs->lock);
    if (hs->nsessions >= hs->max_sessions) {
        int64_t oldest = INT64_MAX;
        for (size_t b = 0; b < hs->nbuckets; b++)
            for (struct hsession *s = hs->buckets[b]; s; s = s->next) {
                int64_t used = session_last_used(s);
                if (used < oldest && session_quiet(s)) {
                    oldest = used;
                    victim = s;
                }
            }
        if (!victim) {
            pthread_mutex_unlock(&hs->lock);
            return false;
        }
        session_unlink_locked(hs, victim);
    }
    hs->nsessions++;
    pthread_mutex_unlock(&hs->lock);
    if (victim) {
        session_close(victim, "evicted (http.max_sessions reached)");
        session_unref(victim);
    }
    return true;
}

static void session_insert(struct hserver *hs, struct hsession *s)
{
    session_ref(s);
    pthread_mutex_lock(&hs->lock);
    size_t b = bucket_of(hs, s->id);
    s->next = hs->buckets[b];
    hs->buckets[b] = s;
    hs->sessions_total++;
    pthread_mutex_unlock(&hs->lock);
}

static void session_unreserve(struct hserver *hs)
{
    pthread_mutex_lock(&hs->lock);
    hs->nsessions--;
    pthread_mutex_unlock(&hs->lock);
}

/* ------------------------------------------------------------------------------------------
 * Responses
 * ---------------------------------------------------------------------------------------- */

static const char *header(struct hreq *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static void add_common_headers(struct hreq *r, struct MHD_Response *resp, const char *session_id)
{
    if (r->cors_origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", EXPOSE_HEADERS);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
    if (session_id)
        MHD_add_response_header(resp, "Mcp-Session-Id", session_id);
}

static enum MHD_Result queue(struct hreq *r, unsigned status, struct MHD_Response *resp)
{
    r->status = status;
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->state = RS_DONE;
    return ret;
}

static struct MHD_Response *body_response(const char *content_type, char *body_new, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body_new, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body_new);
        return NULL;
    }
    if (content_type)
        MHD_add_response_header(resp, "Content-Type", content_type);
    return resp;
}

/* Send a JSON value (borrowed). */
static enum MHD_Result reply_json(struct hreq *r, unsigned status, const json_t *body,
                                  const char *session_id)
{
    size_t len = 0;
    char *text = jrpc_dump(body, &len);
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp = body_response("application/json", text, len);
    if (!resp)
        return MHD_NO;
    add_common_headers(r, resp, session_id);
    return queue(r, status, resp);
}

struct extra_header {
    const char *name, *value;
};

/* A transport-level error: JSON-RPC error object with id null (transports.mdx: "The HTTP
 * response body MAY comprise a JSON-RPC error response that has no id"). */
static enum MHD_Result reply_error_h(struct hreq *r, unsigned status, int code, const char *msg,
                                     const struct extra_header *extra, size_t nextra)
{
    json_t *e = jrpc_error(NULL, code, msg, NULL);
    size_t len = 0;
    char *text = jrpc_dump(e, &len);
    json_decref(e);
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp = body_response("application/json", text, len);
    if (!resp)
        return MHD_NO;
    for (size_t i = 0; i < nextra; i++)
        MHD_add_response_header(resp, extra[i].name, extra[i].value);
    add_common_headers(r, resp, NULL);
    AB_LOG_DEBUG("http.error", "method=%s path=%s status=%u message=\"%s\"", r->method, r->path,
                 status, msg);
    return queue(r, status, resp);
}

static enum MHD_Result reply_error(struct hreq *r, unsigned status, int code, const char *msg)
{
    return reply_error_h(r, status, code, msg, NULL, 0);
}

static enum MHD_Result reply_empty(struct hreq *r, unsigned status, const char *session_id)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    add_common_headers(r, resp, session_id);
    return queue(r, status, resp);
}

static enum MHD_Result reply_session_not_found(struct hreq *r)
{
    /* transports.mdx "Session Management" 3: a terminated or unknown session is 404; the
     * client then starts a new session with initialize. */
    return reply_error(r, MHD_HTTP_NOT_FOUND, MCP_SESSION_NOT_FOUND,
                       "Session not found: it expired, was deleted, or belongs to another "
                       "server instance; send initialize without Mcp-Session-Id to start a new "
                       "session");
}

static enum MHD_Result reply_unavailable(struct hreq *r)
{
    static const struct extra_header ra = {"Retry-After", "1"};
    return reply_error_h(r, MHD_HTTP_SERVICE_UNAVAILABLE, MCP_TRANSPORT_ERROR,
                         "Service Unavailable: the server is shutting down", &ra, 1);
}

/* ------------------------------------------------------------------------------------------
 * SSE responses
 * ---------------------------------------------------------------------------------------- */

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct hreq *r = cls;
    struct hsession *s = r->sess;
    pthread_mutex_lock(&s->lock);
    size_t avail = r->out.len - r->out_off;
    if (avail > 0) {
        size_t n = AB_MIN(avail, max);
        memcpy(buf, r->out.data + r->out_off, n);
        r->out_off += n;
        out_compact(r);
        r->last_write_ms = ab_mono_ms();
        pthread_mutex_unlock(&s->lock);
        return (ssize_t)n;
    }
    if (r->eof || atomic_load(&r->hs->stopping)) {
        pthread_mutex_unlock(&s->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* Nothing to send: leave the event loop until a producer (or the keep-alive tick)
     * resumes us. microhttpd.h: returning 0 "should only be used in conjunction with
     * MHD_suspend_connection() to avoid busy waiting". */
    r->suspended = true;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* Attach r to st as its connection (sess lock held). */
static void attach_locked(struct hreq *r, struct hstream *st)
{
    st->conn = r;
    r->stream = st;
}

/* Make r a streaming request of s (sess lock held). */
static void list_locked(struct hsession *s, struct hreq *r, bool sse)
{
    if (r->listed)
        return;
    r->sess = s;
    session_ref(s);
    r->is_sse = sse;
    r->listed = true;
    r->next = s->reqs;
    s->reqs = r;
    r->last_write_ms = ab_mono_ms();
    if (!r->out.max)
        buf_init(&r->out, SIZE_MAX / 2);
    atomic_fetch_add(&r->hs->streaming, 1);
}

static enum MHD_Result queue_sse(struct hreq *r, const char *session_id)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_SSE_BLOCK, sse_reader, r, NULL);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache, no-transform");
    /* Proxies such as nginx buffer responses unless told not to (TS SDK does the same). */
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    add_common_headers(r, resp, session_id);
    enum MHD_Result ret = queue(r, MHD_HTTP_OK, resp);
    r->state = RS_STREAM;
    return ret;
}

static bool version_primes(const char *v)
{
    /* transports.mdx 2025-11-25 + mcp.md 13.2: priming events (empty data) only for clients
     * that negotiated >= 2025-11-25; older SDKs crash parsing an empty data field. */
    return v && strcmp(v, "2025-11-25") >= 0;
}

/* Is the peer of a (possibly suspended) connection still there? MHD does not watch
 * suspended sockets, so a vanished client is only noticed on the next write; this asks the
 * kernel directly (poll(2) POLLRDHUP: the peer closed its end). */
static bool conn_alive(struct hreq *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return true;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return true;
    return !(p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* ------------------------------------------------------------------------------------------
 * The MCP endpoint
 * ---------------------------------------------------------------------------------------- */

static char *supported_versions_text(void)
{
    struct buf b;
    buf_init(&b, 512);
    for (const char *const *v = mcp_supported_versions; *v; v++)
        buf_printf(&b, "%s%s", v == mcp_supported_versions ? "" : ", ", *v);
    return buf_steal(&b, NULL);
}

/* MCP-Protocol-Version on every request after initialize (transports.mdx "Protocol Version
 * Header"): validated against the versions we support, not against the negotiated one
 * (conformance server-sse-multiple-streams sends 2025-03-26 on a 2025-11-25 session), and
 * absent means "assume the negotiated version". */
static bool check_version_header(struct hreq *r, enum MHD_Result *ret)
{
    const char *v = header(r, "MCP-Protocol-Version");
    if (!v || mcp_version_supported(v))
        return true;
    char *sup = supported_versions_text();
    char msg[512];
    snprintf(msg, sizeof(msg),
             "Bad Request: Unsupported protocol version: %.40s (supported "
             "versions: %s)",
             v, sup ? sup : "");
    free(sup);
    *ret = reply_error(r, MHD_HTTP_BAD_REQUEST, MCP_TRANSPORT_ERROR, msg);
    return false;
}

/* The session named by Mcp-Session-Id (new reference), or NULL with the 400/404 queued. */
static struct hsession *require_session(struct hreq *r, enum MHD_Result *ret)
{
    const char *sid = header(r, "Mcp-Session-Id");
    if (!sid) {
        *ret = reply_error(r, MHD_HTTP_BAD_REQUEST, MCP_TRANSPORT_ERROR,
                           "Bad Request: Mcp-Session-Id header is required (send initialize "
                           "first to get one)");
        return NULL;
    }
    struct hsession *s = session_find(r->hs, sid, r->principal);
    if (!s) {
        *ret = reply_session_not_found(r);
        return NULL;
    }
    atomic_store(&s->last_used_ms, ab_mono_ms());
    return s;
}

static bool msg_is_request(const json_t *m, const char *method)
{
    const json_t *meth = json_object_get(m, "method");
    const json_t *id = json_object_get(m, "id");
    return json_is_string(meth) && id && !json_is_null(id) &&
           (!method || strcmp(json_string_value(meth), method) == 0);
}

/* JSON mode: queue the response if it is ready, else wait for it (suspended). */
static enum MHD_Result json_finish(struct hreq *r)
{
    struct hsession *s = r->sess;
    pthread_mutex_lock(&s->lock);
    if (r->json_ready) {
        char *body = r->json;
        size_t len = r->json_len;
        r->json = NULL;
        pthread_mutex_unlock(&s->lock);
        struct MHD_Response *resp = body_response("application/json", body, len);
        if (!resp)
            return MHD_NO;
        add_common_headers(r, resp, s->id);
        return queue(r, MHD_HTTP_OK, resp);
    }
    bool closed = s->closed, none = r->json_none, stopping = atomic_load(&r->hs->stopping);
    if (!closed && !none && !stopping) {
        r->state = RS_JSON_WAIT;
        r->suspended = true;
        MHD_suspend_connection(r->conn);
        pthread_mutex_unlock(&s->lock);
        return MHD_YES;
    }
    pthread_mutex_unlock(&s->lock);
    if (none)
        return reply_empty(r, MHD_HTTP_ACCEPTED, s->id); /* cancelled: no response */
    if (stopping)
        return reply_unavailable(r);
    return reply_session_not_found(r);
}

/* Dispatch a request (or a batch holding `expected` requests) on a new stream of s and
 * queue the SSE or JSON response. Takes ownership of nothing; s is borrowed. */
static enum MHD_Result serve_request(struct hreq *r, struct hsession *s, json_t *root,
                                     size_t expected, const struct mcp_request_meta *meta,
                                     bool is_init)
{
    struct hserver *hs = r->hs;
    bool json_mode = hs->json_response || http_accept_wants_json_only(&r->accept);
    struct hstream *st = stream_new(s, json_mode ? SK_JSON : SK_SSE);
    if (!st)
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, JRPC_INTERNAL_ERROR,
                           "Internal error: out of memory");
    pthread_mutex_lock(&s->lock);
    list_locked(s, r, !json_mode);
    attach_locked(r, st);
    uint64_t prime_seq = ++s->next_seq; /* the priming event precedes everything on st */
    uint64_t stream_no = st->no;        /* st may be gone once the MCP layer lets go */
    pthread_mutex_unlock(&s->lock);

    struct mcp_stream *reply = &st->base;
    if (json_is_array(root)) {
        reply = mcp_batch_stream_new(&st->base, expected);
        size_t i;
        json_t *el;
        if (reply)
            json_array_foreach(root, i, el) mcp_session_dispatch(s->mcp, el, reply, meta);
        mcp_stream_unref(reply);
    } else {
        mcp_session_dispatch(s->mcp, root, reply, meta);
    }
    mcp_stream_unref(&st->base); /* the MCP layer keeps its own references while it works */

    const char *sid = s->id;
    if (is_init) {
        if (mcp_session_initialized(s->mcp)) {
            session_insert(hs, s);
            AB_LOG_INFO("http.session.open", "session=%.8s version=%s principal=%s", s->id,
                        mcp_session_version(s->mcp), s->principal[0] ? s->principal : "-");
        } else {
            /* initialize failed (e.g. no protocolVersion): the error goes back, no session. */
            session_unreserve(hs);
            session_close(s, "initialize failed");
            sid = NULL;
        }
    }
    if (json_mode)
        return json_finish(r);

    pthread_mutex_lock(&s->lock);
    if (version_primes(mcp_session_version(s->mcp))) {
        char id[HTTP_EVENT_ID_MAX];
        http_event_id_format(id, sizeof(id), s->nonce, stream_no, prime_seq);
        struct buf b;
        buf_init(&b, SIZE_MAX / 2);
        if (http_sse_priming(&b, id, hs->retry_ms) == AB_OK &&
            buf_append(&b, buf_cstr(&r->out) + r->out_off, r->out.len - r->out_off) == AB_OK) {
            buf_cleanup(&r->out);
            r->out = b;
            r->out_off = 0;
        } else {
            buf_cleanup(&b);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return queue_sse(r, sid);
}

static enum MHD_Result handle_initialize(struct hreq *r, json_t *root)
{
    struct hserver *hs = r->hs;
    if (atomic_load(&hs->draining))
        return reply_unavailable(r);
    if (!session_reserve(hs))
        return reply_error_h(r, MHD_HTTP_SERVICE_UNAVAILABLE, MCP_TRANSPORT_ERROR,
                             "Service Unavailable: too many active sessions (http.max_sessions); "
                             "retry later",
                             &(struct extra_header){"Retry-After", "5"}, 1);
    struct hsession *s = session_new(hs, r->principal);
    if (!s) {
        session_unreserve(hs);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, JRPC_INTERNAL_ERROR,
                           "Internal error: cannot create a session");
    }
    enum MHD_Result ret = serve_request(r, s, root, 1, NULL, true);
    session_unref(s);
    return ret;
}

static enum MHD_Result handle_post(struct hreq *r)
{
    struct hserver *hs = r->hs;
    enum MHD_Result ret = MHD_NO;
    json_t *root = NULL, *perr = NULL;
    struct hsession *s = NULL;
    if (r->too_large) {
        char msg[320];
        if (r->quota_limited)
            snprintf(msg, sizeof(msg),
                     "Payload Too Large: quota exceeded (quotas.max_request_bytes): a request "
                     "from this principal may be at most %zu bytes. Send less per call (e.g. "
                     "split an upload into several calls).",
                     r->body_max);
        else
            snprintf(msg, sizeof(msg),
                     "Payload Too Large: the body exceeds http.max_body_bytes "
                     "(%zu bytes)",
                     hs->max_body);
        return reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, MCP_TRANSPORT_ERROR, msg);
    }
    if (jrpc_parse(r->body.data ? r->body.data : "", r->body.len, &root, &perr) != AB_OK) {
        ret = reply_json(r, MHD_HTTP_BAD_REQUEST, perr, NULL);
        json_decref(perr);
        return ret;
    }
    bool is_init = json_is_object(root) && msg_is_request(root, "initialize");
    if (json_is_array(root)) {
        size_t i;
        json_t *el;
        json_array_foreach(root, i, el) if (json_is_object(el) && msg_is_request(el, "initialize"))
        {
            ret = reply_error(r, MHD_HTTP_BAD_REQUEST, JRPC_INVALID_REQUEST,
                              "Invalid Request: initialize must be sent on its own, not in a "
                              "batch");
            goto out;
        }
    }
    if (is_init && !header(r, "Mcp-Session-Id")) {
        ret = handle_initialize(r, root);
        goto out;
    }
    if (!(s = require_session(r, &ret)))
        goto out;
    /* mcp.md 13.6: the version header is not validated on initialize. */
    if (!is_init && !check_version_header(r, &ret))
        goto out;
    const char *th = header(r, "Agentbox-Thread-Id");
    if (th && !http_visible_ascii(th, HTTP_THREAD_HDR_MAX)) {
        ret = reply_error(r, MHD_HTTP_BAD_REQUEST, MCP_TRANSPORT_ERROR,
                          "Bad Request: Agentbox-Thread-Id must be 1-256 visible ASCII "
                          "characters");
        goto out;
    }
    struct mcp_request_meta meta = {.thread_header = th};

    size_t requests = 0;
    if (json_is_array(root)) {
        if (json_array_size(root) == 0) {
            ret = reply_error(r, MHD_HTTP_BAD_REQUEST, JRPC_INVALID_REQUEST,
                              "Invalid Request: empty batch");
            goto out;
        }
        if (!mcp_session_batches_allowed(s->mcp)) {
            char msg[256];
            const char *v = mcp_session_version(s->mcp);
            snprintf(msg, sizeof(msg),
                     "Invalid Request: JSON-RPC batches are not supported on "
                     "protocol version %s (only 2025-03-26 allows them); send one message per "
                     "POST",
                     v ? v : "(not initialized)");
            ret = reply_error(r, MHD_HTTP_BAD_REQUEST, JRPC_INVALID_REQUEST, msg);
            goto out;
        }
        size_t i;
        json_t *el;
        json_array_foreach(root, i, el)
        {
            struct jrpc_msg m;
            json_t *e = NULL;
            if (jrpc_classify(el, &m, &e) != AB_OK || m.kind == JRPC_REQUEST)
                requests++; /* an invalid element is answered with an error: it counts */
            json_decref(e);
        }
    } else {
        struct jrpc_msg m;
        json_t *e = NULL;
        if (jrpc_classify(root, &m, &e) != AB_OK) {
            ret = reply_json(r, MHD_HTTP_BAD_REQUEST, e, NULL);
            json_decref(e);
            goto out;
        }
        requests = m.kind == JRPC_REQUEST;
    }
    if (requests == 0) {
        /* transports.mdx POST 4: notifications and responses get 202 with no body. */
        if (json_is_array(root)) {
            size_t i;
            json_t *el;
            json_array_foreach(root, i, el)
                mcp_session_dispatch(s->mcp, el, &discard_stream, &meta);
        } else {
            mcp_session_dispatch(s->mcp, root, &discard_stream, &meta);
        }
        ret = reply_empty(r, MHD_HTTP_ACCEPTED, s->id);
        goto out;
    }
    if (atomic_load(&hs->draining)) {
        ret = reply_unavailable(r);
        goto out;
    }
    ret = serve_request(r, s, root, requests, &meta, false);
out:
    session_unref(s);
    json_decref(root);
    return ret;
}

static void replay_into(struct hsession *s, struct hreq *r, uint64_t stream, uint64_t after)
{
    struct replay_ctx c = {.r = r};
    sse_ring_replay(&s->ring, stream, after, replay_visit, &c);
    if (sse_ring_may_have_lost(&s->ring, after))
        AB_LOG_WARN("http.sse.replay_gap",
                    "session=%.8s stream=%" PRIu64 " hint=\"events after the client's "
                    "Last-Event-ID were evicted; raise http.sse_replay_events or "
                    "http.sse_replay_bytes\"",
                    s->id, stream);
    AB_LOG_DEBUG("http.sse.replay", "session=%.8s stream=%" PRIu64 " events=%zu", s->id, stream,
                 c.n);
}

/* A GET may take over a stream whose previous connection has gone (detached here), never
 * one that still has a live connection: then `conflict` is returned for a 409. NULL when st
 * is free to attach (or NULL). Session lock held. */
static const char *claim_stream_locked(struct hstream *st, const char *conflict)
{
    if (!st || !st->conn)
        return NULL;
    if (conn_alive(st->conn))
        return conflict;
    req_detach_locked(st->conn);
    return NULL;
}

static enum MHD_Result handle_get(struct hreq *r)
{
    enum MHD_Result ret = MHD_NO;
    if (!http_accept_get_ok(&r->accept))
        return reply_error(r, MHD_HTTP_NOT_ACCEPTABLE, MCP_TRANSPORT_ERROR,
                           "Not Acceptable: Client must accept text/event-stream");
    struct hsession *s = require_session(r, &ret);
    if (!s)
        return ret;
    if (!check_version_header(r, &ret))
        goto out;
    const char *lei = header(r, "Last-Event-ID");
    const char *err_msg = NULL;
    unsigned err_status = 0;
    pthread_mutex_lock(&s->lock);
    if (s->closed) {
        pthread_mutex_unlock(&s->lock);
        ret = reply_session_not_found(r);
        goto out;
    }
    if (lei) {
        /* transports.mdx "Resumability": replay what followed that event on *its* stream,
         * then continue the stream on this connection. */
        char nonce[HTTP_EVENT_NONCE_LEN + 1];
        uint64_t no = 0, seq = 0;
        if (!http_event_id_parse(lei, nonce, &no, &seq) || strcmp(nonce, s->nonce) != 0 ||
            no == 0 || no > s->next_stream || seq > s->next_seq) {
            err_status = MHD_HTTP_BAD_REQUEST;
            err_msg = "Bad Request: Last-Event-ID does not name an event of this session";
        } else {
            struct hstream *st = s->streams;
            while (st && st->no != no)
                st = st->next;
            err_msg =
                claim_stream_locked(st, "Conflict: the stream already has an active connection");
            if (err_msg) {
                err_status = MHD_HTTP_CONFLICT;
            } else {
                list_locked(s, r, true);
                replay_into(s, r, no, seq);
                if (st && !st->finished)
                    attach_locked(r, st);
                else
                    r->eof = true; /* replay only: the stream is complete */
            }
        }
    } else {
        struct hstream *st = s->standalone;
        err_msg = claim_stream_locked(st, "Conflict: Only one SSE stream is allowed per session");
        if (err_msg) {
            err_status = MHD_HTTP_CONFLICT;
        } else {
            list_locked(s, r, true);
            if (st) {
                attach_locked(r, st);
                if (version_primes(mcp_session_version(s->mcp))) {
                    char id[HTTP_EVENT_ID_MAX];
                    http_event_id_format(id, sizeof(id), s->nonce, st->no, ++s->next_seq);
                    http_sse_priming(&r->out, id, r->hs->retry_ms);
                }
                /* Messages sent while no GET stream was open (e.g. a server->client request
                 * of a JSON-mode call made right after initialize) are delivered now. */
                replay_into(s, r, st->no, st->delivered_seq);
                if (r->out.len > r->out_off)
                    st->delivered_seq = s->next_seq;
            } else {
                r->eof = true;
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (err_msg)
        ret = reply_error(r, err_status, MCP_TRANSPORT_ERROR, err_msg);
    else
        ret = queue_sse(r, s->id);
out:
    session_unref(s);
    return ret;
}

static enum MHD_Result handle_delete(struct hreq *r)
{
    enum MHD_Result ret = MHD_NO;
    struct hsession *s = require_session(r, &ret);
    if (!s)
        return ret;
    if (check_version_header(r, &ret)) {
        session_remove(r->hs, s, "deleted by the client");
        ret = reply_empty(r, MHD_HTTP_OK, NULL);
    }
    session_unref(s);
    return ret;
}

/* ------------------------------------------------------------------------------------------
 * Routing
 * ---------------------------------------------------------------------------------------- */

/* DNS-rebinding protection (transports.mdx "Security Warning"): an Origin that is present
 * and not allowed is 403; so is a Host that is not allowed while we listen on loopback (or
 * when http.allowed_hosts is set). */
static bool check_origin_host(struct hreq *r, enum MHD_Result *ret)
{
    struct hserver *hs = r->hs;
    const char *origin = header(r, "Origin");
    if (origin && !http_origin_allowed(origin, hs->allowed_origins)) {
        AB_LOG_WARN("http.forbidden_origin", "origin=\"%.100s\"", origin);
        *ret = reply_error(r, MHD_HTTP_FORBIDDEN, MCP_TRANSPORT_ERROR,
                           "Forbidden: invalid Origin (add it to http.allowed_origins if it is "
                           "yours)");
        return false;
    }
    if (hs->check_host) {
        const char *host = header(r, "Host");
        if (!host || !http_host_allowed(host, hs->allowed_hosts)) {
            AB_LOG_WARN("http.forbidden_host", "host=\"%.100s\"", host ? host : "");
            *ret = reply_error(r, MHD_HTTP_FORBIDDEN, MCP_TRANSPORT_ERROR,
                               host ? "Forbidden: invalid Host (add it to http.allowed_hosts if "
                                      "it is yours)"
                                    : "Forbidden: missing Host header");
            return false;
        }
    }
    r->cors_origin = origin;
    return true;
}

static bool check_auth(struct hreq *r, enum MHD_Result *ret)
{
    enum http_auth_result a = http_auth_check(r->hs->auth, header(r, "Authorization"), r->principal,
                                              sizeof(r->principal));
    if (a == HTTP_AUTH_OK)
        return true;
    /* RFC 6750 3: the challenge; error="invalid_token" when a token was presented. */
    struct extra_header h = {"WWW-Authenticate",
                             a == HTTP_AUTH_MISSING
                                 ? "Bearer realm=\"agentbox\""
                                 : "Bearer realm=\"agentbox\", error=\"invalid_token\", "
                                   "error_description=\"the token is not valid\""};
    AB_LOG_INFO("http.unauthorized", "reason=%s path=%s",
                a == HTTP_AUTH_MISSING ? "missing" : "invalid", r->path);
    *ret = reply_error_h(r, MHD_HTTP_UNAUTHORIZED, MCP_TRANSPORT_ERROR,
                         a == HTTP_AUTH_MISSING ? "Unauthorized: send Authorization: Bearer <token>"
                                                : "Unauthorized: the bearer token is not valid",
                         &h, 1);
    return false;
}

static enum MHD_Result handle_health(struct hreq *r, bool ready)
{
    bool ok = !ready || !atomic_load(&r->hs->draining);
    json_t *b = json_pack("{s:s}", "status", !ready ? "ok" : ok ? "ready" : "draining");
    enum MHD_Result ret = reply_json(r, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, b, NULL);
    json_decref(b);
    return ret;
}

static void collect_stats(struct hserver *hs, struct http_stats *st)
{
    pthread_mutex_lock(&hs->lock);
    st->sessions_open = hs->nsessions;
    st->sessions_total = hs->sessions_total;
    pthread_mutex_unlock(&hs->lock);
    st->sse_streams = atomic_load(&hs->streaming);
}

static enum MHD_Result handle_metrics(struct hreq *r)
{
    enum MHD_Result ret;
    if (!check_auth(r, &ret))
        return ret;
    struct http_stats st;
    collect_stats(r->hs, &st);
    struct buf out;
    buf_init(&out, 64u << 20);
    if (r->hs->hooks->metrics(r->hs->hooks->metrics_arg, &st, &out) != AB_OK) {
        buf_cleanup(&out);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, JRPC_INTERNAL_ERROR,
                           "Internal error: metrics unavailable");
    }
    size_t len = 0;
    char *body = buf_steal(&out, &len);
    struct MHD_Response *resp = body ? body_response("text/plain; version=0.0.4", body, len) : NULL;
    if (!resp)
        return MHD_NO;
    return queue(r, MHD_HTTP_OK, resp);
}

static bool is_endpoint(const struct hserver *hs, const char *url)
{
    size_t n = strlen(hs->path);
    return strncmp(url, hs->path, n) == 0 && (url[n] == '\0' || (url[n] == '/' && !url[n + 1]));
}

/* First call for a request: route and check everything that needs only the headers. */
static enum MHD_Result begin_request(struct hreq *r, const char *url, const char *method)
{
    struct hserver *hs = r->hs;
    enum MHD_Result ret = MHD_NO;
    bool get =
        strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (strcmp(url, "/healthz") == 0 && get)
        return handle_health(r, false);
    if (strcmp(url, "/readyz") == 0 && get)
        return handle_health(r, true);
    if (strcmp(url, "/metrics") == 0 && get && hs->hooks && hs->hooks->metrics)
        return handle_metrics(r);
    if (!is_endpoint(hs, url)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Not Found: the MCP endpoint is %s", hs->path);
        return reply_error(r, MHD_HTTP_NOT_FOUND, MCP_TRANSPORT_ERROR, msg);
    }
    if (!check_origin_host(r, &ret))
        return ret;
    if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0) {
        /* CORS preflight (browsers send no credentials on it). The Origin, if any, already
         * passed the allow-list. */
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, "Allow", ALLOW_METHODS);
        if (r->cors_origin) {
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", ALLOW_METHODS);
            MHD_add_response_header(resp, "Access-Control-Allow-Headers", ALLOW_HEADERS);
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        }
        add_common_headers(r, resp, NULL);
        return queue(r, MHD_HTTP_NO_CONTENT, resp);
    }
    if (!check_auth(r, &ret))
        return ret;
    r->accept.present = false;
    http_accept_parse(header(r, "Accept"), &r->accept);
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
        if (!http_content_type_is_json(header(r, "Content-Type")))
            return reply_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, MCP_TRANSPORT_ERROR,
                               "Unsupported Media Type: Content-Type must be application/json");
        if (!http_accept_post_ok(&r->accept))
            return reply_error(r, MHD_HTTP_NOT_ACCEPTABLE, MCP_TRANSPORT_ERROR,
                               "Not Acceptable: Client must accept application/json and/or "
                               "text/event-stream");
        /* The per-principal request quota (issue 6) applies once the principal is known,
         * here, after authentication: it only ever lowers the transport's own limit. */
        r->body_max = hs->max_body;
        uint64_t quota = hs->cfg->quotas.max_request_bytes;
        if (quota > 0 && quota < r->body_max) {
            r->body_max = (size_t)quota;
            r->quota_limited = true;
        }
        const char *cl = header(r, "Content-Length");
        int64_t n;
        if (cl && ab_parse_i64(cl, &n) && n > 0 && (uint64_t)n > r->body_max) {
            r->too_large = true;
            return handle_post(r);
        }
        buf_init(&r->body, r->body_max);
        r->state = RS_BODY;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0)
        return handle_get(r);
    if (strcmp(method, MHD_HTTP_METHOD_DELETE) == 0)
        return handle_delete(r);
    static const struct extra_header allow = {"Allow", ALLOW_METHODS};
    return reply_error_h(r, MHD_HTTP_METHOD_NOT_ALLOWED, MCP_TRANSPORT_ERROR, "Method not allowed.",
                         &allow, 1);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct hserver *hs = cls;
    struct hreq *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        r->hs = hs;
        r->conn = conn;
        r->method = method;
        r->path = url;
        r->start_us = ab_mono_us();
        *req_cls = r;
        /* A POST is checked on its headers, before the body is read (a refusal then also
         * spares the client sending it). Everything else is answered on the next call:
         * microhttpd closes the connection after a response queued this early. */
        if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
            return begin_request(r, url, method);
        return MHD_YES;
    }
    switch (r->state) {
    case RS_NEW:
        if (*upload_data_size) {
            *upload_data_size = 0; /* a body on GET/DELETE means nothing to us */
            return MHD_YES;
        }
        return begin_request(r, r->path, r->method);
    case RS_BODY:
        if (*upload_data_size) {
            if (!r->too_large && buf_append(&r->body, upload_data, *upload_data_size) != AB_OK) {
                r->too_large = true;
                buf_cleanup(&r->body);
            }
            if (r->too_large) {
                /* MHD accepts a response only before the body or after all of it; read and
                 * drop the rest, but not forever. */
                r->discarded += *upload_data_size;
                if (r->discarded > 4 * (uint64_t)hs->max_body)
                    return MHD_NO;
            }
            *upload_data_size = 0;
            return MHD_YES;
        }
        return handle_post(r);
    case RS_JSON_WAIT:
        return json_finish(r);
    case RS_STREAM:
    case RS_DONE:
        break;
    }
    /* Called again after a response was queued (e.g. the rest of an upload we refused). */
    *upload_data_size = 0;
    return MHD_YES;
}

/* Queue a delivered stream for forgetting (session lock held). When the queue is full the
 * oldest entry is forgotten at once rather than growing it. */
static void done_push_locked(struct hsession *s, uint64_t no, int64_t now)
{
    if (s->ndone == HTTP_DONE_MAX) {
        sse_ring_forget(&s->ring, s->done[0].no);
        memmove(s->done, s->done + 1, (s->ndone - 1) * sizeof(*s->done));
        s->ndone--;
    }
    if (s->ndone == s->done_cap) {
        size_t cap = s->done_cap ? s->done_cap * 2 : 16;
        struct done_stream *nd = realloc(s->done, cap * sizeof(*nd));
        if (!nd) {
            sse_ring_forget(&s->ring, no); /* no memory to wait: forget now */
            return;
        }
        s->done = nd;
        s->done_cap = cap;
    }
    s->done[s->ndone++] = (struct done_stream){no, now};
}

/* Forget the delivered streams whose grace period is over (session lock held). */
static void done_expire_locked(struct hsession *s, int64_t now)
{
    size_t k = 0;
    while (k < s->ndone && now - s->done[k].at_ms >= HTTP_REPLAY_GRACE_MS)
        sse_ring_forget(&s->ring, s->done[k++].no);
    if (k) {
        memmove(s->done, s->done + k, (s->ndone - k) * sizeof(*s->done));
        s->ndone -= k;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct hreq *r = *req_cls;
    if (!r)
        return;
    *req_cls = NULL;
    struct hsession *s = r->sess;
    if (s) {
        pthread_mutex_lock(&s->lock);
        /* A stream whose final response went out whole on this connection is complete:
         * its events are dropped from the replay ring after a grace period (tick) instead
         * of staying there until http.sse_replay_events newer ones push them out -- with a
         * thousand busy sessions that grew the server by megabytes a minute (bench/load). */
        if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && r->done_stream)
            done_push_locked(s, r->done_stream, ab_mono_ms());
        if (r->stream && r->stream->conn == r)
            r->stream->conn = NULL;
        r->stream = NULL;
        for (struct hreq **pp = &s->reqs; *pp; pp = &(*pp)->next)
            if (*pp == r) {
                *pp = r->next;
                break;
            }
        pthread_mutex_unlock(&s->lock);
        atomic_fetch_sub(&r->hs->streaming, 1);
        session_unref(s);
    }
    AB_LOG_DEBUG("http.request", "method=%s path=%s status=%u ms=%.1f end=%s", r->method, r->path,
                 r->status, (double)(ab_mono_us() - r->start_us) / 1000.0,
                 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "ok" : "aborted");
    buf_cleanup(&r->body);
    buf_cleanup(&r->out);
    free(r->json);
    free(r);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    AB_LOG_WARN("http.mhd", "message=\"%s\"", msg);
}

/* ------------------------------------------------------------------------------------------
 * Housekeeping and lifecycle
 * ---------------------------------------------------------------------------------------- */

/* Once a second: keep-alive comments on idle SSE streams, delivered streams leaving the
 * replay ring, and idle-session expiry. */
static void tick(struct hserver *hs)
{
    size_t n = 0;
    struct hsession **v = session_snapshot(hs, &n);
    if (!v)
        return;
    int64_t now = ab_mono_ms();
    for (size_t i = 0; i < n; i++) {
        struct hsession *s = v[i];
        pthread_mutex_lock(&s->lock);
        done_expire_locked(s, now);
        for (struct hreq *r = s->reqs; r; r = r->next) {
            if (!r->is_sse || r->eof || r->out.len > r->out_off ||
                now - r->last_write_ms < hs->keepalive_ms)
                continue;
            /* An SSE comment line; clients ignore it, proxies and NATs see traffic, and a
             * vanished client is detected by the failing write. */
            if (buf_append_str(&r->out, HTTP_SSE_KEEPALIVE) == AB_OK) {
                r->last_write_ms = now;
                wake_locked(r);
            }
        }
        pthread_mutex_unlock(&s->lock);
        if (hs->idle_ms > 0 && now - session_last_used(s) >= hs->idle_ms && session_quiet(s))
            session_remove(hs, s, "idle (http.session_idle_timeout)");
        session_unref(s);
    }
    free(v);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            AB_LOG_DEBUG("http.nofile", "from=%llu to=%llu", (unsigned long long)old,
                         (unsigned long long)rl.rlim_max);
    }
}

static unsigned connection_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 65536;
    /* Keep a quarter of the descriptors for sandboxes, logs and the MCP layer. */
    rlim_t lim = rl.rlim_cur - rl.rlim_cur / 4;
    return (unsigned)AB_MAX(AB_MIN(lim, (rlim_t)1000000), (rlim_t)64);
}

/* What the shutdown fd said: 'H' (reload), 'T' (stop), 'E' (end of file: stop, and stop
 * polling it), 0 (nothing). */
static char read_shutdown_fd(int fd)
{
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof(si));
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : 'E';
    if (n == 0)
        return 'E';
    if (n == (ssize_t)sizeof(si) && si.ssi_signo == SIGHUP)
        return 'H';
    return 'T'; /* SIGTERM, SIGINT, or a byte on a test's pipe */
}

static void shutdown_sessions(struct hserver *hs)
{
    size_t n = 0;
    struct hsession **v = session_snapshot(hs, &n);
    for (size_t i = 0; v && i < n; i++)
        session_remove(hs, v[i], "server shutdown");
    /* Cancelled calls unwind (their streams end); then no reader may suspend again. */
    int stuck = mcp_server_drain(hs->mcp, HTTP_UNWIND_MS);
    if (stuck > 0)
        AB_LOG_ERROR("http.shutdown.stuck_calls", "calls=%d", stuck);
    atomic_store(&hs->stopping, true);
    for (size_t i = 0; v && i < n; i++) {
        pthread_mutex_lock(&v[i]->lock);
        for (struct hreq *r = v[i]->reqs; r; r = r->next) {
            r->eof = true;
            wake_locked(r);
        }
        pthread_mutex_unlock(&v[i]->lock);
    }
    /* Give clients a moment to read what is queued (final responses). */
    int64_t deadline = ab_mono_ms() + HTTP_FLUSH_MS;
    while (atomic_load(&hs->streaming) > 0 && ab_mono_ms() < deadline)
        poll(NULL, 0, 20);
    for (size_t i = 0; v && i < n; i++)
        session_unref(v[i]);
    free(v);
}

ab_status http_serve(struct mcp_server *srv, const struct config *cfg, int shutdown_fd,
                     struct ab_err *err)
{
    return http_serve_ex(srv, cfg, shutdown_fd, NULL, err);
}

ab_status http_serve_ex(struct mcp_server *srv, const struct config *cfg, int shutdown_fd,
                        const struct http_hooks *hooks, struct ab_err *err)
{
    static const struct http_hooks no_hooks;
    struct hserver hs;
    memset(&hs, 0, sizeof(hs));
    hs.mcp = srv;
    hs.cfg = cfg;
    hs.hooks = hooks ? hooks : &no_hooks;
    hs.path = cfg->http.path && *cfg->http.path ? cfg->http.path : "/mcp";
    hs.allowed_hosts = (const char *const *)cfg->http.allowed_hosts.v;
    hs.allowed_origins = (const char *const *)cfg->http.allowed_origins.v;
    hs.max_body = cfg->http.max_body_bytes ? (size_t)cfg->http.max_body_bytes : 16u << 20;
    hs.keepalive_ms = AB_MAX(cfg->http.sse_keepalive_s, (int64_t)1) * 1000;
    hs.retry_ms = cfg->http.sse_retry_ms > 0 ? cfg->http.sse_retry_ms : 1000;
    hs.idle_ms = cfg->http.session_idle_timeout_s * 1000;
    hs.max_sessions = cfg->http.max_sessions > 0 ? cfg->http.max_sessions : 10000;
    hs.replay_events = cfg->http.sse_replay_events > 0 ? (size_t)cfg->http.sse_replay_events : 0;
    hs.replay_bytes = cfg->http.sse_replay_bytes ? (size_t)cfg->http.sse_replay_bytes : 4u << 20;
    hs.json_response = cfg->http.json_response;
    atomic_init(&hs.draining, false);
    atomic_init(&hs.stopping, false);
    atomic_init(&hs.streaming, 0);
    pthread_mutex_init(&hs.lock, NULL);
    ab_status rc = AB_OK;

    hs.nbuckets = 256;
    while (hs.nbuckets < (size_t)hs.max_sessions && hs.nbuckets < 65536)
        hs.nbuckets *= 2;
    hs.buckets = calloc(hs.nbuckets, sizeof(*hs.buckets));
    if (!hs.buckets) {
        rc = ab_err_set(err, AB_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = http_auth_new(&cfg->auth, &hs.auth, err)))
        goto out;

    struct sockaddr_storage ss;
    socklen_t sslen;
    if ((rc = http_listen_parse(cfg->http.listen, &ss, &sslen, err)))
        goto out;
    bool loopback = http_sockaddr_is_loopback((struct sockaddr *)&ss);
    if (!loopback && !http_auth_enabled(hs.auth) && !cfg->http.allow_insecure_bind) {
        rc = ab_err_set(err, AB_DENIED,
                        "refusing to listen on %s (not a loopback address) without "
                        "authentication: set auth.tokens, auth.token_file or AGENTBOX_TOKEN, or "
                        "http.allow_insecure_bind: true if something else protects this port",
                        cfg->http.listen);
        goto out;
    }
    if (!loopback && !http_auth_enabled(hs.auth))
        AB_LOG_WARN("http.insecure_bind",
                    "listen=%s hint=\"anyone who can reach this port can "
                    "run commands in sandboxes\"",
                    cfg->http.listen);
    /* Host checking defends loopback servers against DNS rebinding; on a public address the
     * Host is whatever name clients use, so it is checked only when the operator lists them. */
    hs.check_host = loopback || cfg->http.allowed_hosts.n > 0;

    raise_nofile();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = (unsigned)AB_MAX(AB_MIN(ncpu, 8L), 2L);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    hs.d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, &hs, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        &hs, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, connection_limit(),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT_S,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!hs.d) {
        rc = ab_err_sys(err, AB_IO, errno, "cannot listen on %s", cfg->http.listen);
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(hs.d, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? (int)di->port : 0;
    char host[80];
    const char *colon = strrchr(cfg->http.listen, ':');
    snprintf(host, sizeof(host), "%.*s", (int)(colon - cfg->http.listen), cfg->http.listen);
    snprintf(hs.url, sizeof(hs.url), "http://%s:%d%s", host, port, hs.path);
    AB_LOG_INFO("http.listening", "url=%s auth=%s threads=%u max_sessions=%lld", hs.url,
                http_auth_enabled(hs.auth) ? "bearer" : "off", threads, (long long)hs.max_sessions);
    if (hs.hooks->listening)
        hs.hooks->listening(hs.hooks->listening_arg, hs.url, port);

    int64_t deadline = 0;
    bool forced = false;
    for (;;) {
        struct pollfd p = {.fd = shutdown_fd, .events = POLLIN};
        /* While draining, look often: exit as soon as the last call is done. */
        int pr = poll(&p, shutdown_fd >= 0 ? 1 : 0,
                      atomic_load(&hs.draining) ? HTTP_TICK_MS / 10 : HTTP_TICK_MS);
        if (pr > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
            char what = read_shutdown_fd(shutdown_fd);
            if (what == 'H') {
                struct ab_err aerr;
                ab_err_clear(&aerr);
                if (http_auth_reload(hs.auth, &aerr))
                    AB_LOG_ERROR("http.auth.reload_failed",
                                 "error=\"%s\" hint=\"the previous "
                                 "tokens stay in force\"",
                                 aerr.msg);
            } else if (what == 'T' || what == 'E') {
                if (what == 'E')
                    shutdown_fd = -1;
                if (!atomic_load(&hs.draining)) {
                    atomic_store(&hs.draining, true);
                    deadline = ab_mono_ms() + cfg->http.shutdown_grace_s * 1000;
                    AB_LOG_INFO("http.drain", "inflight=%lld grace_s=%lld",
                                (long long)mcp_server_inflight(srv),
                                (long long)cfg->http.shutdown_grace_s);
                } else if (what == 'T') {
                    forced = true;
                    AB_LOG_WARN("http.drain.forced", "inflight=%lld",
                                (long long)mcp_server_inflight(srv));
                }
            }
        }
        tick(&hs);
        if (atomic_load(&hs.draining) &&
            (forced || mcp_server_inflight(srv) == 0 || ab_mono_ms() >= deadline))
            break;
    }
    AB_LOG_INFO("http.shutdown", "inflight=%lld sessions=%lld", (long long)mcp_server_inflight(srv),
                (long long)hs.nsessions);
    shutdown_sessions(&hs);
    MHD_stop_daemon(hs.d);
    hs.d = NULL;
out:
    if (hs.d)
        MHD_stop_daemon(hs.d);
    http_auth_free(hs.auth);
    free(hs.buckets);
    pthread_mutex_destroy(&hs.lock);
    return rc;
}
