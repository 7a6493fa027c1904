/*
 * server.c - MCP lifecycle, method dispatch, tools/call threads, progress, cancellation,
 * logging and server->client requests. See server.h for the object model.
 *
 * Concurrency model: a transport thread calls mcp_session_dispatch(); everything except
 * tools/call is answered inline (it is all cheap), so ping is always prompt. Each tools/call
 * gets its own detached thread (small stack), bounded by max_inflight. Rejected: a fixed
 * worker pool — slow sandbox commands would starve it and 1,000 concurrent slow calls are an
 * explicit requirement; threads blocked in poll() cost only their stack.
 *
 * Lock order: session->lock, then server->lock. Streams are called without holding either
 * (a stream may block briefly on its own lock).
 */
#include "mcp/server.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "jsonrpc/jsonrpc.h"
#include "mcp/fixtures.h"
#include "mcp/schema.h"

const char *const mcp_supported_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26",
                                              "2024-11-05", "2024-10-07", NULL};

bool mcp_version_supported(const char *version)
{
    if (!version)
        return false;
    for (const char *const *v = mcp_supported_versions; *v; v++)
        if (strcmp(*v, version) == 0)
            return true;
    return false;
}

/* ---- streams ---- */

void mcp_stream_init(struct mcp_stream *st, const struct mcp_stream_ops *ops)
{
    st->ops = ops;
    atomic_init(&st->refs, 1);
}

void mcp_stream_ref(struct mcp_stream *st)
{
    if (st)
        atomic_fetch_add(&st->refs, 1);
}

void mcp_stream_unref(struct mcp_stream *st)
{
    if (st && atomic_fetch_sub(&st->refs, 1) == 1)
        st->ops->free(st);
}

static ab_status stream_send(struct mcp_stream *st, const json_t *msg, bool final)
{
    if (!st || !msg)
        return AB_IO;
    return st->ops->send(st, msg, final);
}

/* ---- objects ---- */

struct tool_entry {
    char *name;
    json_t *def;          /* the Tool object as listed */
    const json_t *input;  /* borrowed from def */
    const json_t *output; /* borrowed from def; may be NULL */
    mcp_tool_fn fn;
    void *arg;
};

struct pending {
    json_t *id;
    bool done;
    json_t *result; /* new, on success */
    json_t *error;  /* new, on a JSON-RPC error */
    struct pending *next;
};

struct mcp_call {
    struct mcp_server *srv;
    struct mcp_session *sess;
    const struct tool_entry *tool;
    json_t *id;
    json_t *params;
    json_t *args;
    struct mcp_stream *stream;
    struct ab_cancel cancel;
    json_t *progress_token;
    double last_progress;
    bool sent_progress;
    bool no_response; /* cancelled by the client or the session closed: send nothing */
    char *meta_thread;   /* params._meta["agentbox/thread_id"], or NULL */
    char *header_thread; /* the Agentbox-Thread-Id header, or NULL */
    int64_t start_us;
    json_t *notes;         /* mcp_call_annotate */
    bool counted;          /* holds a slot in the principal's concurrency count */
    struct mcp_call *next; /* in the session's list */
};

struct mcp_session {
    struct mcp_server *srv;
    atomic_int refs;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* pending server->client requests */
    char *id;
    char *principal;
    char *default_key;
    char version[16];
    bool initialized;
    bool closed;
    bool client_gone;
    json_t *client_caps;
    enum mcp_log_level log_level;
    struct mcp_stream *standalone;
    struct mcp_call *calls;
    struct pending *pending;
    _Atomic int64_t last_active_ms;
    _Atomic int64_t inflight;
    json_t *subscriptions; /* resources/subscribe URIs (object used as a set) */
};

struct mcp_server {
    char *name, *title, *version, *instructions;
    int64_t page_size;
    int64_t max_inflight;
    int64_t max_per_principal;
    json_t *per_principal; /* principal -> calls in flight (under lock) */
    bool fixtures;
    void *app;
    pthread_mutex_t lock;
    pthread_cond_t idle; /* signalled when inflight drops */
    struct tool_entry *tools;
    size_t ntools, cap;
    mcp_call_observer_cb observer;
    void *observer_arg;
    _Atomic int64_t inflight;
    _Atomic uint64_t next_request_id;
    struct mcp_session **sessions; /* for drain: sessions with calls (weak, under lock) */
    size_t nsessions, sessions_cap;
};

ab_status mcp_server_new(const struct mcp_server_opts *opts, struct mcp_server **out,
                         struct ab_err *err)
{
    struct mcp_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    srv->name = ab_strdup(opts->name ? opts->name : "agentbox");
    srv->title = ab_strdup(opts->title ? opts->title : "agentbox");
    srv->version = ab_strdup(opts->version ? opts->version : AGENTBOX_VERSION);
    srv->instructions = ab_strdup(opts->instructions);
    srv->page_size = opts->page_size > 0 ? opts->page_size : 100;
    srv->max_inflight = opts->max_inflight > 0 ? opts->max_inflight : 4096;
    srv->max_per_principal = opts->max_per_principal;
    srv->per_principal = json_object();
    srv->fixtures = opts->fixtures;
    srv->app = opts->app;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->idle, NULL);
    atomic_init(&srv->inflight, 0);
    atomic_init(&srv->next_request_id, 1);
    if (srv->fixtures) {
        ab_status rc = mcp_fixtures_register(srv, err);
        if (rc) {
            mcp_server_free(srv);
            return rc;
        }
    }
    *out = srv;
    return AB_OK;
}

void mcp_server_free(struct mcp_server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->ntools; i++) {
        free(srv->tools[i].name);
        json_decref(srv->tools[i].def);
    }
    free(srv->tools);
    free(srv->sessions);
    json_decref(srv->per_principal);
    free(srv->name);
    free(srv->title);
    free(srv->version);
    free(srv->instructions);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->idle);
    free(srv);
}

void *mcp_server_app(const struct mcp_server *srv)
{
    return srv->app;
}

void mcp_server_set_observer(struct mcp_server *srv, mcp_call_observer_cb cb, void *arg)
{
    pthread_mutex_lock(&srv->lock);
    srv->observer = cb;
    srv->observer_arg = arg;
    pthread_mutex_unlock(&srv->lock);
}

int64_t mcp_server_inflight(const struct mcp_server *srv)
{
    return atomic_load(&((struct mcp_server *)srv)->inflight);
}

static bool tool_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

ab_status mcp_server_add_tool(struct mcp_server *srv, json_t *def, mcp_tool_fn fn, void *arg,
                              struct ab_err *err)
{
    ab_status rc = AB_OK;
    const char *name = json_string_value(json_object_get(def, "name"));
    const json_t *input = json_object_get(def, "inputSchema");
    if (!name || !tool_name_ok(name)) {
        rc = ab_err_set(err, AB_INVAL, "tool name '%s' must match ^[a-zA-Z0-9_-]{1,64}$",
                        name ? name : "(missing)");
        goto out;
    }
    if (!json_is_object(input) ||
        strcmp(json_string_value(json_object_get(input, "type")) ?: "", "object") != 0) {
        rc = ab_err_set(err, AB_INVAL, "tool %s: inputSchema must be an object schema", name);
        goto out;
    }
    pthread_mutex_lock(&srv->lock);
    for (size_t i = 0; i < srv->ntools; i++)
        if (strcmp(srv->tools[i].name, name) == 0) {
            pthread_mutex_unlock(&srv->lock);
            rc = ab_err_set(err, AB_EXISTS, "tool %s is registered twice", name);
            goto out;
        }
    if (srv->ntools == srv->cap) {
        size_t cap = srv->cap ? srv->cap * 2 : 16;
        struct tool_entry *nt = realloc(srv->tools, cap * sizeof(*nt));
        if (!nt) {
            pthread_mutex_unlock(&srv->lock);
            rc = ab_err_set(err, AB_NOMEM, "out of memory");
            goto out;
        }
        srv->tools = nt;
        srv->cap = cap;
    }
    struct tool_entry *t = &srv->tools[srv->ntools];
    t->name = ab_strdup(name);
    t->def = def;
    t->input = input;
    t->output = json_object_get(def, "outputSchema");
    t->fn = fn;
    t->arg = arg;
    srv->ntools++;
    pthread_mutex_unlock(&srv->lock);
    return AB_OK;
out:
    json_decref(def);
    return rc;
}

struct ab_embedded_file {
    const char *path;
    const unsigned char *data;
    size_t len;
};
extern const struct ab_embedded_file ab_embedded_schemas[];

json_t *mcp_embedded_schema(const char *path)
{
    for (const struct ab_embedded_file *f = ab_embedded_schemas; f->path; f++) {
        if (strcmp(f->path, path) != 0)
            continue;
        json_error_t jerr;
        json_t *j = json_loadb((const char *)f->data, f->len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
            AB_LOG_ERROR("schema.invalid", "path=%s line=%d error=\"%s\"", path, jerr.line,
                         jerr.text);
        return j;
    }
    return NULL;
}

ab_status mcp_server_add_tool_file(struct mcp_server *srv, const char *schema_path,
                                   mcp_tool_fn fn, void *arg, struct ab_err *err)
{
    json_t *def = mcp_embedded_schema(schema_path);
    if (!def)
        return ab_err_set(err, AB_NOTFOUND, "schema %s is not embedded or not valid JSON",
                          schema_path);
    return mcp_server_add_tool(srv, def, fn, arg, err);
}

/* ---- sessions ---- */

struct mcp_session *mcp_session_new(struct mcp_server *srv, const struct mcp_session_opts *opts)
{
    struct mcp_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->srv = srv;
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->id = ab_strdup(opts->id ? opts->id : "");
    s->principal = ab_strdup(opts->principal ? opts->principal : "");
    s->default_key = ab_strdup(opts->default_thread_key ? opts->default_thread_key : s->id);
    s->log_level = MCP_LOG_INFO;
    s->subscriptions = json_object();
    atomic_init(&s->last_active_ms, ab_mono_ms());
    atomic_init(&s->inflight, 0);
    if (!s->id || !s->principal || !s->default_key || !s->subscriptions) {
        mcp_session_unref(s);
        return NULL;
    }
    return s;
}

void mcp_session_ref(struct mcp_session *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
}

void mcp_session_unref(struct mcp_session *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    mcp_stream_unref(s->standalone);
    json_decref(s->client_caps);
    json_decref(s->subscriptions);
    for (struct pending *p = s->pending; p;) {
        struct pending *next = p->next;
        json_decref(p->id);
        json_decref(p->result);
        json_decref(p->error);
        free(p);
        p = next;
    }
    free(s->id);
    free(s->principal);
    free(s->default_key);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

void mcp_session_client_gone(struct mcp_session *s)
{
    pthread_mutex_lock(&s->lock);
    s->client_gone = true;
    for (struct pending *p = s->pending; p; p = p->next)
        p->done = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

const char *mcp_session_id(const struct mcp_session *s)
{
    return s->id;
}

const char *mcp_session_principal(const struct mcp_session *s)
{
    return s->principal;
}

const char *mcp_session_version(const struct mcp_session *s)
{
    /* version[] is written once under the lock before initialized is set and never again. */
    return s->version[0] ? s->version : NULL;
}

bool mcp_session_initialized(const struct mcp_session *s)
{
    return s->version[0] != '\0';
}

bool mcp_session_batches_allowed(const struct mcp_session *s)
{
    return strcmp(s->version, "2025-03-26") == 0;
}

int64_t mcp_session_last_active_ms(const struct mcp_session *s)
{
    return atomic_load(&((struct mcp_session *)s)->last_active_ms);
}

int64_t mcp_session_inflight(const struct mcp_session *s)
{
    return atomic_load(&((struct mcp_session *)s)->inflight);
}

void mcp_session_set_standalone(struct mcp_session *s, struct mcp_stream *stream)
{
    mcp_stream_ref(stream);
    pthread_mutex_lock(&s->lock);
    struct mcp_stream *old = s->standalone;
    s->standalone = stream;
    pthread_mutex_unlock(&s->lock);
    mcp_stream_unref(old);
}

void mcp_session_notify(struct mcp_session *s, const char *method, json_t *params_new)
{
    json_t *msg = jrpc_notification(method, params_new);
    pthread_mutex_lock(&s->lock);
    struct mcp_stream *st = s->standalone;
    mcp_stream_ref(st);
    pthread_mutex_unlock(&s->lock);
    if (st)
        stream_send(st, msg, false);
    mcp_stream_unref(st);
    json_decref(msg);
}

void mcp_session_close(struct mcp_session *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->closed) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    s->closed = true;
    struct mcp_stream *st = s->standalone;
    s->standalone = NULL;
    /* Cancel in-flight calls: their threads notice, skip the response and unwind. */
    for (struct mcp_call *c = s->calls; c; c = c->next) {
        c->no_response = true;
        ab_cancel_fire(&c->cancel, "session closed");
    }
    for (struct pending *p = s->pending; p; p = p->next)
        p->done = true; /* no result, no error: the waiter reports the session closed */
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    mcp_stream_unref(st);
}

/* ---- replies ---- */

static void reply_result(struct mcp_stream *reply, const json_t *id, json_t *result_new)
{
    json_t *msg = jrpc_result(id, result_new);
    stream_send(reply, msg, true);
    json_decref(msg);
}

static void reply_error(struct mcp_stream *reply, const json_t *id, int code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

static void reply_error(struct mcp_stream *reply, const json_t *id, int code, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    json_t *msg = jrpc_error(id, code, text, NULL);
    stream_send(reply, msg, true);
    json_decref(msg);
}

/* ---- pagination ---- */

static char *cursor_make(size_t offset)
{
    char raw[32];
    int n = snprintf(raw, sizeof(raw), "agentbox:%zu", offset);
    return ab_base64_encode(raw, (size_t)n, NULL);
}

/* Parse an opaque cursor; NULL/absent = 0. Returns false when invalid. */
static bool cursor_parse(const json_t *params, size_t *offset)
{
    *offset = 0;
    const json_t *c = params ? json_object_get(params, "cursor") : NULL;
    if (!c || json_is_null(c))
        return true;
    if (!json_is_string(c))
        return false;
    unsigned char *raw = NULL;
    size_t len = 0;
    if (ab_base64_decode(json_string_value(c), json_string_length(c), &raw, &len))
        return false;
    bool ok = false;
    if (len > 9 && len < 30 && memcmp(raw, "agentbox:", 9) == 0) {
        char num[32];
        memcpy(num, raw + 9, len - 9);
        num[len - 9] = '\0';
        int64_t v;
        ok = ab_parse_i64(num, &v) && v >= 0;
        if (ok)
            *offset = (size_t)v;
    }
    free(raw);
    return ok;
}

static void handle_tools_list(struct mcp_session *s, const json_t *id, const json_t *params,
                              struct mcp_stream *reply)
{
    struct mcp_server *srv = s->srv;
    size_t offset;
    if (!cursor_parse(params, &offset)) {
        reply_error(reply, id, JRPC_INVALID_PARAMS, "Invalid cursor");
        return;
    }
    json_t *tools = json_array();
    pthread_mutex_lock(&srv->lock);
    if (offset > srv->ntools) {
        pthread_mutex_unlock(&srv->lock);
        json_decref(tools);
        reply_error(reply, id, JRPC_INVALID_PARAMS, "Invalid cursor");
        return;
    }
    size_t end = offset + (size_t)srv->page_size;
    if (end > srv->ntools)
        end = srv->ntools;
    for (size_t i = offset; i < end; i++)
        json_array_append(tools, srv->tools[i].def);
    bool more = end < srv->ntools;
    pthread_mutex_unlock(&srv->lock);
    json_t *result = json_pack("{s:o}", "tools", tools);
    if (more) {
        char *next = cursor_make(end);
        json_object_set_new(result, "nextCursor", json_string(next));
        free(next);
    }
    reply_result(reply, id, result);
}

/* ---- initialize ---- */

static void handle_initialize(struct mcp_session *s, const json_t *id, const json_t *params,
                              struct mcp_stream *reply)
{
    const json_t *pv = params ? json_object_get(params, "protocolVersion") : NULL;
    if (!json_is_string(pv)) {
        json_t *data = json_pack("{s:[]}", "supported");
        for (const char *const *v = mcp_supported_versions; *v; v++)
            json_array_append_new(json_object_get(data, "supported"), json_string(*v));
        json_t *msg = jrpc_error(id, JRPC_INVALID_PARAMS,
                                 "Invalid params: initialize needs a string protocolVersion", data);
        stream_send(reply, msg, true);
        json_decref(msg);
        return;
    }
    /* lifecycle.mdx: answer with the requested version when supported, else our latest. */
    const char *want = json_string_value(pv);
    const char *chosen = mcp_version_supported(want) ? want : MCP_LATEST_VERSION;

    pthread_mutex_lock(&s->lock);
    if (s->version[0]) {
        pthread_mutex_unlock(&s->lock);
        reply_error(reply, id, JRPC_INVALID_REQUEST, "Invalid Request: Server already initialized");
        return;
    }
    snprintf(s->version, sizeof(s->version), "%s", chosen);
    const json_t *caps = params ? json_object_get(params, "capabilities") : NULL;
    s->client_caps = json_is_object(caps) ? json_deep_copy(caps) : json_object();
    pthread_mutex_unlock(&s->lock);

    const json_t *ci = params ? json_object_get(params, "clientInfo") : NULL;
    AB_LOG_INFO("session.initialize", "session=%s version=%s client=%s/%s", s->id, chosen,
                json_string_value(json_object_get(ci, "name")) ?: "?",
                json_string_value(json_object_get(ci, "version")) ?: "?");

    struct mcp_server *srv = s->srv;
    json_t *capabilities = json_pack("{s:{s:b},s:{},s:{s:b,s:b},s:{s:b}}", "tools", "listChanged",
                                     0, "logging", "resources", "subscribe", srv->fixtures,
                                     "listChanged", 0, "prompts", "listChanged", 0);
    if (srv->fixtures)
        json_object_set_new(capabilities, "completions", json_object());
    json_t *info = json_pack("{s:s,s:s,s:s}", "name", srv->name, "title", srv->title, "version",
                             srv->version);
    json_t *result = json_pack("{s:s,s:o,s:o}", "protocolVersion", chosen, "capabilities",
                               capabilities, "serverInfo", info);
    if (srv->instructions)
        json_object_set_new(result, "instructions", json_string(srv->instructions));
    reply_result(reply, id, result);
}

/* ---- logging ---- */

static const char *const log_level_names[] = {"debug", "info",     "notice", "warning",
                                              "error", "critical", "alert",  "emergency"};

static int log_level_parse(const char *name)
{
    for (int i = 0; i < 8; i++)
        if (strcmp(name, log_level_names[i]) == 0)
            return i;
    return -1;
}

static void handle_set_level(struct mcp_session *s, const json_t *id, const json_t *params,
                             struct mcp_stream *reply)
{
    const json_t *lv = params ? json_object_get(params, "level") : NULL;
    int level = json_is_string(lv) ? log_level_parse(json_string_value(lv)) : -1;
    if (level < 0) {
        reply_error(reply, id, JRPC_INVALID_PARAMS,
                    "Invalid params: level must be one of debug, info, notice, warning, error, "
                    "critical, alert, emergency");
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->log_level = (enum mcp_log_level)level;
    pthread_mutex_unlock(&s->lock);
    reply_result(reply, id, json_object());
}

/* ---- server -> client requests: responses ---- */

static void handle_response(struct mcp_session *s, const struct jrpc_msg *m)
{
    pthread_mutex_lock(&s->lock);
    for (struct pending *p = s->pending; p; p = p->next) {
        if (!p->done && jrpc_id_equal(p->id, m->id)) {
            p->done = true;
            if (m->kind == JRPC_RESPONSE)
                p->result = json_incref(m->result);
            else
                p->error = json_incref(m->error);
            pthread_cond_broadcast(&s->cond);
            pthread_mutex_unlock(&s->lock);
            return;
        }
    }
    pthread_mutex_unlock(&s->lock);
    char idtext[64];
    jrpc_id_to_text(m->id, idtext, sizeof(idtext));
    AB_LOG_DEBUG("session.stray_response", "session=%s id=%s", s->id, idtext);
}

/* ---- notifications ---- */

static void handle_notification(struct mcp_session *s, const struct jrpc_msg *m)
{
    if (strcmp(m->method, "notifications/cancelled") == 0) {
        /* cancellation.mdx: stop the request, do not answer it; unknown ids are ignored. */
        const json_t *rid = m->params ? json_object_get(m->params, "requestId") : NULL;
        const json_t *reason = m->params ? json_object_get(m->params, "reason") : NULL;
        if (!rid)
            return;
        pthread_mutex_lock(&s->lock);
        struct mcp_call *found = NULL;
        for (struct mcp_call *c = s->calls; c; c = c->next)
            if (jrpc_id_equal(c->id, rid)) {
                c->no_response = true;
                found = c;
                break;
            }
        if (found)
            ab_cancel_fire(&found->cancel, json_is_string(reason) ? json_string_value(reason)
                                                                  : "cancelled by the client");
        pthread_mutex_unlock(&s->lock);
        char idtext[64];
        jrpc_id_to_text(rid, idtext, sizeof(idtext));
        AB_LOG_INFO("call.cancel", "session=%s id=%s found=%s", s->id, idtext,
                    found ? "yes" : "no");
        return;
    }
    if (strcmp(m->method, "notifications/initialized") == 0) {
        AB_LOG_DEBUG("session.initialized", "session=%s", s->id);
        return;
    }
    /* notifications/roots/list_changed and anything else: nothing to do. */
}

/* ---- tools/call ---- */

static void server_call_done(struct mcp_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    atomic_fetch_sub(&srv->inflight, 1);
    pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->lock);
}

static void call_unlink(struct mcp_call *c)
{
    struct mcp_session *s = c->sess;
    pthread_mutex_lock(&s->lock);
    for (struct mcp_call **pp = &s->calls; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_sub(&s->inflight, 1);
}

/* Per-principal concurrency quota: take a slot, or false when the principal is at its limit. */
static bool principal_take(struct mcp_server *srv, const char *principal)
{
    if (srv->max_per_principal <= 0)
        return true;
    pthread_mutex_lock(&srv->lock);
    json_int_t n = json_integer_value(json_object_get(srv->per_principal, principal));
    bool ok = n < srv->max_per_principal;
    if (ok)
        json_object_set_new(srv->per_principal, principal, json_integer(n + 1));
    pthread_mutex_unlock(&srv->lock);
    return ok;
}

static void principal_give(struct mcp_server *srv, const char *principal)
{
    pthread_mutex_lock(&srv->lock);
    json_int_t n = json_integer_value(json_object_get(srv->per_principal, principal));
    if (n <= 1)
        json_object_del(srv->per_principal, principal);
    else
        json_object_set_new(srv->per_principal, principal, json_integer(n - 1));
    pthread_mutex_unlock(&srv->lock);
}

static void call_free(struct mcp_call *c)
{
    if (c->counted)
        principal_give(c->srv, c->sess->principal);
    json_decref(c->notes);
    json_decref(c->id);
    json_decref(c->params);
    json_decref(c->args);
    json_decref(c->progress_token);
    mcp_stream_unref(c->stream);
    ab_cancel_cleanup(&c->cancel);
    free(c->meta_thread);
    free(c->header_thread);
    mcp_session_unref(c->sess);
    free(c);
}

static json_t *invalid_args_result(const char *tool, const char *why)
{
    char *text = ab_asprintf("Invalid arguments for tool %s: %s", tool, why);
    json_t *r = mcp_text_result(text ? text : "Invalid arguments", (size_t)-1, true);
    free(text);
    return r;
}

static void *call_thread(void *arg)
{
    struct mcp_call *c = arg;
    struct mcp_server *srv = c->srv;
    char idtext[64];
    jrpc_id_to_text(c->id, idtext, sizeof(idtext));
    ab_log_set_request(idtext);

    json_t *result = NULL;
    bool invalid = false;
    struct ab_err verr;
    ab_err_clear(&verr);
    if (mcp_schema_validate(c->tool->input, c->args, &verr) != AB_OK) {
        /* SEP-1303: input validation failures are tool errors the model can fix. */
        invalid = true;
        result = invalid_args_result(c->tool->name, verr.msg);
    } else {
        result = c->tool->fn(c, c->args, c->tool->arg);
        if (!result)
            result = mcp_text_result("Error: internal error in the tool; see the server log",
                                     (size_t)-1, true);
    }
    bool is_error = json_is_true(json_object_get(result, "isError"));
    if (!is_error && c->tool->output) {
        /* MUST conform when an outputSchema is declared (tools.mdx). A mismatch is our bug:
         * log it loudly; under AGENTBOX_STRICT_OUTPUT (tests) turn it into an error. */
        const json_t *sc = json_object_get(result, "structuredContent");
        struct ab_err oerr;
        ab_err_clear(&oerr);
        if (!sc || mcp_schema_validate(c->tool->output, sc, &oerr) != AB_OK) {
            AB_LOG_ERROR("tool.bad_output", "tool=%s error=\"%s\"", c->tool->name,
                         sc ? oerr.msg : "structuredContent missing");
            if (getenv("AGENTBOX_STRICT_OUTPUT")) {
                json_decref(result);
                char *t = ab_asprintf("internal error: tool %s produced output that does not "
                                      "match its outputSchema: %s",
                                      c->tool->name, sc ? oerr.msg : "structuredContent missing");
                result = mcp_text_result(t, (size_t)-1, true);
                free(t);
                is_error = true;
            }
        }
    }

    /* The tool is done: give its quota slot back before the client can see the result, so
     * a client that waits for each answer before its next call is never refused (found by
     * tests/js/security/quotas: the slot used to be freed after the response was sent). */
    if (c->counted) {
        principal_give(srv, c->sess->principal);
        c->counted = false;
    }
    pthread_mutex_lock(&c->sess->lock);
    bool send = !c->no_response;
    pthread_mutex_unlock(&c->sess->lock);
    if (send) {
        json_t *msg = jrpc_result(c->id, json_incref(result));
        stream_send(c->stream, msg, true);
        json_decref(msg);
    } else if (c->stream->ops->end) {
        c->stream->ops->end(c->stream);
    }
    int64_t dur = ab_mono_us() - c->start_us;
    AB_LOG_INFO("call.done", "session=%s tool=%s error=%s cancelled=%s ms=%.1f",
                c->sess->id, c->tool->name, is_error ? "yes" : "no", send ? "no" : "yes",
                (double)dur / 1000.0);

    pthread_mutex_lock(&srv->lock);
    mcp_call_observer_cb obs = srv->observer;
    void *obs_arg = srv->observer_arg;
    pthread_mutex_unlock(&srv->lock);
    if (obs) {
        struct mcp_call_report rep = {
            .tool = c->tool->name,
            .principal = c->sess->principal,
            .session_id = c->sess->id,
            .arguments = c->args,
            .result = send ? result : NULL,
            .is_error = is_error,
            .cancelled = !send,
            .invalid_arguments = invalid,
            .notes = c->notes,
            .duration_us = dur,
        };
        obs(obs_arg, &rep);
    }
    json_decref(result);
    ab_log_set_request(NULL);
    call_unlink(c);
    call_free(c);
    server_call_done(srv);
    return NULL;
}

static void handle_tools_call(struct mcp_session *s, const json_t *id, json_t *params,
                              struct mcp_stream *reply, const struct mcp_request_meta *meta)
{
    struct mcp_server *srv = s->srv;
    const json_t *name = params ? json_object_get(params, "name") : NULL;
    json_t *args = params ? json_object_get(params, "arguments") : NULL;
    if (!json_is_string(name)) {
        reply_error(reply, id, JRPC_INVALID_PARAMS, "Invalid params: tools/call needs a name");
        return;
    }
    if (args && !json_is_object(args) && !json_is_null(args)) {
        reply_error(reply, id, JRPC_INVALID_PARAMS,
                    "Invalid params: arguments must be an object");
        return;
    }
    const struct tool_entry *tool = NULL;
    pthread_mutex_lock(&srv->lock);
    for (size_t i = 0; i < srv->ntools; i++)
        if (strcmp(srv->tools[i].name, json_string_value(name)) == 0)
            tool = &srv->tools[i];
    pthread_mutex_unlock(&srv->lock);
    if (!tool) {
        /* tools.mdx example: unknown tool is a protocol error, -32602. */
        reply_error(reply, id, JRPC_INVALID_PARAMS, "Unknown tool: %s", json_string_value(name));
        return;
    }
    if (atomic_fetch_add(&srv->inflight, 1) >= srv->max_inflight) {
        server_call_done(srv);
        json_t *r = mcp_text_result("Error: the server is busy with too many tool calls; retry "
                                    "in a moment",
                                    (size_t)-1, true);
        reply_result(reply, id, r);
        return;
    }

    if (!principal_take(srv, s->principal)) {
        server_call_done(srv);
        char text[512];
        snprintf(text, sizeof(text),
                 "Error: quota exceeded (quotas.max_concurrent_calls): %lld tool calls are "
                 "already running for this principal. Wait for one to finish, then retry.",
                 (long long)srv->max_per_principal);
        reply_result(reply, id, mcp_text_result(text, (size_t)-1, true));
        pthread_mutex_lock(&srv->lock);
        mcp_call_observer_cb obs = srv->observer;
        void *obs_arg = srv->observer_arg;
        pthread_mutex_unlock(&srv->lock);
        if (obs) {
            struct mcp_call_report rep = {.tool = tool->name, .principal = s->principal,
                                          .session_id = s->id, .arguments = args,
                                          .is_error = true, .quota_refused = true};
            obs(obs_arg, &rep);
        }
        return;
    }
    struct mcp_call *c = calloc(1, sizeof(*c));
    if (!c) {
        principal_give(srv, s->principal);
        server_call_done(srv);
        reply_error(reply, id, JRPC_INTERNAL_ERROR, "Internal error: out of memory");
        return;
    }
    c->counted = srv->max_per_principal > 0;
    c->srv = srv;
    c->sess = s;
    mcp_session_ref(s);
    c->tool = tool;
    c->id = json_deep_copy(id);
    c->params = json_incref(params);
    c->args = (args && json_is_object(args)) ? json_incref(args) : json_object();
    c->stream = reply;
    mcp_stream_ref(reply);
    ab_cancel_init(&c->cancel);
    c->start_us = ab_mono_us();
    const json_t *m = json_object_get(params, "_meta");
    const json_t *tok = json_is_object(m) ? json_object_get(m, "progressToken") : NULL;
    if (json_is_string(tok) || json_is_integer(tok))
        c->progress_token = json_deep_copy(tok);
    c->last_progress = -1e300;
    const json_t *tk = json_is_object(m) ? json_object_get(m, "agentbox/thread_id") : NULL;
    if (json_is_string(tk) && json_string_length(tk) > 0)
        c->meta_thread = ab_strndup(json_string_value(tk), json_string_length(tk));
    if (meta && meta->thread_header && *meta->thread_header)
        c->header_thread = ab_strdup(meta->thread_header);

    pthread_mutex_lock(&s->lock);
    if (s->closed) {
        pthread_mutex_unlock(&s->lock);
        call_free(c);
        server_call_done(srv);
        return;
    }
    c->next = s->calls;
    s->calls = c;
    atomic_fetch_add(&s->inflight, 1);
    pthread_mutex_unlock(&s->lock);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* 512 KiB: tools keep big data on the heap; thousands of calls stay cheap. */
    pthread_attr_setstacksize(&attr, 512 * 1024);
    pthread_t th;
    int prc = pthread_create(&th, &attr, call_thread, c);
    pthread_attr_destroy(&attr);
    if (prc != 0) {
        call_unlink(c);
        call_free(c);
        server_call_done(srv);
        reply_error(reply, id, JRPC_INTERNAL_ERROR,
                    "Internal error: cannot start a thread for the call");
    }
}

/* ---- dispatch ---- */

enum mcp_dispatch mcp_session_dispatch(struct mcp_session *s, json_t *msg,
                                       struct mcp_stream *reply,
                                       const struct mcp_request_meta *meta)
{
    struct jrpc_msg m;
    json_t *err_resp = NULL;
    if (jrpc_classify(msg, &m, &err_resp) != AB_OK) {
        stream_send(reply, err_resp, true);
        json_decref(err_resp);
        return MCP_DISPATCH_ERROR;
    }
    atomic_store(&s->last_active_ms, ab_mono_ms());

    if (m.kind == JRPC_RESPONSE || m.kind == JRPC_ERROR) {
        handle_response(s, &m);
        return MCP_DISPATCH_RESPONSE;
    }
    if (m.kind == JRPC_NOTIFICATION) {
        handle_notification(s, &m);
        return MCP_DISPATCH_NOTIFICATION;
    }

    char idtext[64];
    jrpc_id_to_text(m.id, idtext, sizeof(idtext));
    ab_log_set_request(idtext);
    AB_LOG_DEBUG("rpc.request", "session=%s method=%s", s->id, m.method);
    const char *method = m.method;
    if (m.params && !json_is_object(m.params)) {
        /* MCP params are always objects (schema.ts: params?: { [key: string]: unknown }). */
        reply_error(reply, m.id, JRPC_INVALID_PARAMS, "Invalid params: params must be an object");
    } else if (strcmp(method, "initialize") == 0) {
        handle_initialize(s, m.id, m.params, reply);
    } else if (strcmp(method, "ping") == 0) {
        reply_result(reply, m.id, json_object());
    } else if (!mcp_session_initialized(s)) {
        reply_error(reply, m.id, JRPC_INVALID_REQUEST,
                    "Invalid Request: the session is not initialized; send initialize first");
    } else if (strcmp(method, "tools/list") == 0) {
        handle_tools_list(s, m.id, m.params, reply);
    } else if (strcmp(method, "tools/call") == 0) {
        handle_tools_call(s, m.id, m.params, reply, meta);
    } else if (strcmp(method, "logging/setLevel") == 0) {
        handle_set_level(s, m.id, m.params, reply);
    } else {
        /* resources, prompts, completion: fixtures or the empty defaults. */
        int code = 0;
        char errmsg[512] = "";
        json_t *result =
            mcp_fixtures_handle(s->srv->fixtures, s->subscriptions, &s->lock, method, m.params,
                                &code, errmsg, sizeof(errmsg));
        if (result)
            reply_result(reply, m.id, result);
        else if (code)
            reply_error(reply, m.id, code, "%s", errmsg);
        else
            reply_error(reply, m.id, JRPC_METHOD_NOT_FOUND, "Method not found: %s", method);
    }
    ab_log_set_request(NULL);
    return MCP_DISPATCH_REQUEST;
}

/* ---- calls ---- */

struct mcp_server *mcp_call_server(const struct mcp_call *call)
{
    return call->srv;
}

struct mcp_session *mcp_call_session(const struct mcp_call *call)
{
    return call->sess;
}

const char *mcp_call_tool(const struct mcp_call *call)
{
    return call->tool->name;
}

const char *mcp_call_principal(const struct mcp_call *call)
{
    return call->sess->principal;
}

const json_t *mcp_call_meta(const struct mcp_call *call)
{
    const json_t *m = json_object_get(call->params, "_meta");
    return json_is_object(m) ? m : NULL;
}

void mcp_call_key_inputs(const struct mcp_call *call, const char **meta_thread_id,
                         const char **header_thread_id, const char **session_key)
{
    *meta_thread_id = call->meta_thread;
    *header_thread_id = call->header_thread;
    *session_key = call->sess->default_key;
}

struct ab_cancel *mcp_call_cancel(struct mcp_call *call)
{
    return &call->cancel;
}

bool mcp_call_cancelled(const struct mcp_call *call)
{
    return ab_cancel_fired(&call->cancel);
}

bool mcp_call_has_progress(const struct mcp_call *call)
{
    return call->progress_token != NULL;
}

void mcp_call_progress(struct mcp_call *call, double progress, double total, const char *message)
{
    if (!call->progress_token || ab_cancel_fired(&call->cancel))
        return;
    pthread_mutex_lock(&call->sess->lock);
    /* progress.mdx: "The progress value MUST increase with each notification". */
    bool ok = !call->sent_progress || progress > call->last_progress;
    if (ok) {
        call->last_progress = progress;
        call->sent_progress = true;
    }
    pthread_mutex_unlock(&call->sess->lock);
    if (!ok)
        return;
    json_t *params = json_pack("{s:O,s:f}", "progressToken", call->progress_token, "progress",
                               progress);
    if (total > 0)
        json_object_set_new(params, "total", json_real(total));
    if (message)
        json_object_set_new(params, "message", json_string(message));
    /* Integral values print as integers (0, 50, 100), as clients and the spec examples do. */
    if (progress == (double)(int64_t)progress)
        json_object_set_new(params, "progress", json_integer((json_int_t)progress));
    if (total > 0 && total == (double)(int64_t)total)
        json_object_set_new(params, "total", json_integer((json_int_t)total));
    json_t *msg = jrpc_notification("notifications/progress", params);
    stream_send(call->stream, msg, false);
    json_decref(msg);
}

void mcp_call_log(struct mcp_call *call, enum mcp_log_level level, const char *logger,
                  json_t *data_new)
{
    pthread_mutex_lock(&call->sess->lock);
    bool ok = level >= call->sess->log_level;
    pthread_mutex_unlock(&call->sess->lock);
    if (!ok) {
        json_decref(data_new);
        return;
    }
    json_t *params = json_pack("{s:s,s:o}", "level", log_level_names[level], "data",
                               data_new ? data_new : json_null());
    if (logger)
        json_object_set_new(params, "logger", json_string(logger));
    json_t *msg = jrpc_notification("notifications/message", params);
    stream_send(call->stream, msg, false);
    json_decref(msg);
}

bool mcp_call_client_can(const struct mcp_call *call, const char *path)
{
    pthread_mutex_lock(&call->sess->lock);
    const json_t *cur = call->sess->client_caps;
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    bool found = cur != NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && found; tok = strtok_r(NULL, ".", &save)) {
        cur = json_is_object(cur) ? json_object_get(cur, tok) : NULL;
        found = cur != NULL;
    }
    pthread_mutex_unlock(&call->sess->lock);
    return found;
}

ab_status mcp_call_request(struct mcp_call *call, const char *method, json_t *params_new,
                           int64_t timeout_ms, json_t **result_out, struct ab_err *err)
{
    struct mcp_session *s = call->sess;
    struct pending *p = calloc(1, sizeof(*p));
    if (!p) {
        json_decref(params_new);
        return ab_err_set(err, AB_NOMEM, "out of memory");
    }
    char idbuf[48];
    snprintf(idbuf, sizeof(idbuf), "agentbox-%" PRIu64, atomic_fetch_add(&s->srv->next_request_id, 1));
    p->id = json_string(idbuf);
    json_t *msg = jrpc_request(p->id, method, params_new);

    pthread_mutex_lock(&s->lock);
    if (s->closed || s->client_gone) {
        pthread_mutex_unlock(&s->lock);
        json_decref(msg);
        json_decref(p->id);
        free(p);
        return ab_err_set(err, AB_CANCELLED, "the client has disconnected");
    }
    p->next = s->pending;
    s->pending = p;
    pthread_mutex_unlock(&s->lock);

    ab_status rc = stream_send(call->stream, msg, false);
    json_decref(msg);
    int64_t deadline = ab_mono_ms() + (timeout_ms > 0 ? timeout_ms : 60000);
    pthread_mutex_lock(&s->lock);
    if (rc == AB_OK) {
        while (!p->done) {
            if (ab_cancel_fired(&call->cancel)) {
                rc = AB_CANCELLED;
                break;
            }
            int64_t now = ab_mono_ms();
            if (now >= deadline) {
                rc = AB_TIMEOUT;
                break;
            }
            /* Wake at least every 100 ms to notice cancellation. */
            int64_t wait_ms = AB_MIN(deadline - now, 100);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (wait_ms % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        }
    }
    /* unlink */
    for (struct pending **pp = &s->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    pthread_mutex_unlock(&s->lock);

    if (rc == AB_OK) {
        if (p->result) {
            *result_out = p->result;
            p->result = NULL;
        } else if (p->error) {
            const char *em = json_string_value(json_object_get(p->error, "message"));
            rc = ab_err_set(err, AB_PROTO, "the client answered %s with error %lld: %s", method,
                            (long long)json_integer_value(json_object_get(p->error, "code")),
                            em ? em : "(no message)");
        } else {
            rc = ab_err_set(err, AB_CANCELLED, "the session closed before the client answered");
        }
    } else if (rc == AB_TIMEOUT || rc == AB_CANCELLED) {
        /* cancellation.mdx: a timed-out (or abandoned) request SHOULD be cancelled. */
        json_t *cn = jrpc_notification(
            "notifications/cancelled",
            json_pack("{s:O,s:s}", "requestId", p->id, "reason",
                      rc == AB_TIMEOUT ? "timed out" : "the tool call was cancelled"));
        stream_send(call->stream, cn, false);
        json_decref(cn);
        if (rc == AB_TIMEOUT)
            ab_err_set(err, AB_TIMEOUT, "the client did not answer %s within %lld ms", method,
                       (long long)(timeout_ms > 0 ? timeout_ms : 60000));
        else
            ab_err_set(err, AB_CANCELLED, "cancelled while waiting for the client");
    } else {
        ab_err_set(err, rc, "could not send %s to the client", method);
    }
    json_decref(p->id);
    json_decref(p->result);
    json_decref(p->error);
    free(p);
    return rc;
}

void mcp_call_annotate(struct mcp_call *call, const char *key, const char *value)
{
    if (!call->notes)
        call->notes = json_object();
    json_object_set_new(call->notes, key, value ? json_string(value) : json_null());
}

void mcp_call_disconnect(struct mcp_call *call)
{
    if (call->stream->ops->disconnect)
        call->stream->ops->disconnect(call->stream);
}

/* ---- drain ---- */

int mcp_server_drain(struct mcp_server *srv, int64_t timeout_ms)
{
    int64_t deadline = ab_mono_ms() + timeout_ms;
    pthread_mutex_lock(&srv->lock);
    while (atomic_load(&srv->inflight) > 0 && ab_mono_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&srv->idle, &srv->lock, &ts);
    }
    int left = (int)atomic_load(&srv->inflight);
    pthread_mutex_unlock(&srv->lock);
    return left;
}

/* ---- results ---- */

json_t *mcp_text_block(const char *text, size_t len)
{
    if (len == (size_t)-1)
        len = strlen(text);
    return json_pack("{s:s,s:s%}", "type", "text", "text", text, len);
}

json_t *mcp_text_result(const char *text, size_t len, bool is_error)
{
    json_t *r = json_pack("{s:[o]}", "content", mcp_text_block(text, len));
    if (is_error)
        json_object_set_new(r, "isError", json_true());
    return r;
}
