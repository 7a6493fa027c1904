/*
 * server.h - the MCP server: lifecycle, capabilities, the tools registry, progress,
 * cancellation, logging, server-to-client requests (MCP 2025-11-25, negotiating down to
 * 2024-11-05), independent of any transport.
 *
 * Objects:
 *   struct mcp_server   one per process: tool definitions, fixtures, the app context.
 *   struct mcp_session  one per client connection: the stdio process, or one HTTP
 *                       Mcp-Session-Id. Holds the negotiated version, client capabilities,
 *                       log level, in-flight requests and pending server->client requests.
 *   struct mcp_stream   transport-owned sink for outgoing messages: stdout for stdio; for
 *                       HTTP the SSE/JSON response of one POST, or the standalone GET stream.
 *   struct mcp_call     one in-flight tools/call, handed to the tool function.
 *
 * Flow: the transport reads one message, classifies it (jsonrpc.h) for its own framing
 * decisions (HTTP 202 vs 200), then calls mcp_session_dispatch() with the stream on which
 * the response and every message related to that request must go (MCP transports: "send
 * each message on only one stream"). Cheap methods are answered inline; tools/call runs on
 * its own thread, so a slow tool never blocks ping, cancellation or other sessions.
 *
 * Threading: all functions are thread-safe. Streams are reference-counted; the server holds
 * a reference for as long as it may still send on one.
 */
#ifndef AB_MCP_SERVER_H
#define AB_MCP_SERVER_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/cancel.h"
#include "base/status.h"

struct mcp_server;
struct mcp_session;
struct mcp_call;
struct mcp_stream;

/* Protocol versions we speak, newest first (mcp.md section 1). */
#define MCP_LATEST_VERSION "2025-11-25"
extern const char *const mcp_supported_versions[]; /* NULL-terminated */
bool mcp_version_supported(const char *version);

/* ------------------------------------------------------------------------------------------
 * Streams (implemented by transports)
 * ---------------------------------------------------------------------------------------- */

struct mcp_stream_ops {
    /* Deliver one message (borrowed; serialise it before returning). `final` marks the
     * response that completes the request this stream was opened for; the transport then
     * ends the stream (HTTP: closes the SSE body or sends the JSON body). Must not block
     * for long. AB_IO when the peer is gone (the message is dropped, or kept for replay). */
    ab_status (*send)(struct mcp_stream *st, const json_t *msg, bool final);
    /* The request ended without a response (it was cancelled): end the stream. May be NULL. */
    void (*end)(struct mcp_stream *st);
    /* Close the connection now but keep the stream resumable (SSE polling, SEP-1699): later
     * messages are stored for replay after the client reconnects with Last-Event-ID. May
     * be NULL (then it is a no-op). */
    void (*disconnect)(struct mcp_stream *st);
    /* Free the stream (last reference dropped). */
    void (*free)(struct mcp_stream *st);
};

struct mcp_stream {
    const struct mcp_stream_ops *ops;
    atomic_int refs;
};

/* Initialise with one reference (the caller's). */
void mcp_stream_init(struct mcp_stream *st, const struct mcp_stream_ops *ops);
void mcp_stream_ref(struct mcp_stream *st);
void mcp_stream_unref(struct mcp_stream *st); /* NULL is a no-op */

/* ------------------------------------------------------------------------------------------
 * Server
 * ---------------------------------------------------------------------------------------- */

struct mcp_server_opts {
    const char *name;          /* serverInfo.name */
    const char *title;         /* serverInfo.title */
    const char *version;       /* serverInfo.version */
    const char *instructions;  /* InitializeResult.instructions; may be NULL */
    int64_t page_size;         /* items per page of tools/list etc.; 0 = 100 */
    int64_t max_inflight;      /* concurrent tools/call threads server-wide; 0 = 4096 */
    int64_t max_per_principal; /* concurrent tools/call per principal; 0 = unlimited */
    bool fixtures;             /* register the conformance fixtures (test scaffolding) */
    void *app;                 /* context for tool functions (mcp_server_app) */
};

ab_status mcp_server_new(const struct mcp_server_opts *opts, struct mcp_server **out,
                         struct ab_err *err);
/* Frees the server; every session must have been closed and released. */
void mcp_server_free(struct mcp_server *srv);
void *mcp_server_app(const struct mcp_server *srv);

/* A tool function. Runs on its own thread. Returns a new CallToolResult object
 * ({content, structuredContent?, isError?}); NULL means an internal error (reported to the
 * client as an isError result). Arguments were validated against the inputSchema. */
typedef json_t *(*mcp_tool_fn)(struct mcp_call *call, const json_t *args, void *arg);

/* Register a tool. definition_new (stolen) is the Tool object (name, title, description,
 * inputSchema, outputSchema?, annotations?). Names must match ^[a-zA-Z0-9_-]{1,64}$. */
ab_status mcp_server_add_tool(struct mcp_server *srv, json_t *definition_new, mcp_tool_fn fn,
                              void *arg, struct ab_err *err);

/* Register a tool whose definition is the embedded schemas/<path> file (e.g.
 * "tools/execute.json"). */
ab_status mcp_server_add_tool_file(struct mcp_server *srv, const char *schema_path,
                                   mcp_tool_fn fn, void *arg, struct ab_err *err);

/* The embedded schemas/ file at path ("tools/read.json"), parsed (returns new), or NULL. */
json_t *mcp_embedded_schema(const char *path);

/* Observer called after every tools/call (metrics, audit). May be NULL. */
struct mcp_call_report {
    const char *tool;
    const char *principal;
    const char *session_id;
    const json_t *arguments; /* borrowed */
    const json_t *result;    /* borrowed; NULL when cancelled */
    bool is_error;
    bool cancelled;
    bool invalid_arguments;
    bool quota_refused;      /* refused by the per-principal concurrency quota */
    const json_t *notes;     /* what the tool recorded with mcp_call_annotate (an object) */
    int64_t duration_us;
};
typedef void (*mcp_call_observer_cb)(void *arg, const struct mcp_call_report *report);
void mcp_server_set_observer(struct mcp_server *srv, mcp_call_observer_cb cb, void *arg);

/* Wait up to timeout_ms for in-flight tool calls to finish. Returns the number still
 * running (0 when idle). It cancels nothing: transports close their sessions
 * (mcp_session_close cancels a session's calls) and then drain again to let them unwind. */
int mcp_server_drain(struct mcp_server *srv, int64_t timeout_ms);

/* Number of tools/call requests running now. */
int64_t mcp_server_inflight(const struct mcp_server *srv);

/* ------------------------------------------------------------------------------------------
 * Sessions
 * ---------------------------------------------------------------------------------------- */

struct mcp_session_opts {
    const char *id;                  /* stdio: "stdio"; HTTP: the Mcp-Session-Id */
    const char *principal;           /* authenticated caller; "" when auth is off */
    const char *default_thread_key;  /* design.md rule 4: the MCP session's thread key */
};

/* Returns new (one reference). */
struct mcp_session *mcp_session_new(struct mcp_server *srv, const struct mcp_session_opts *opts);
void mcp_session_ref(struct mcp_session *s);
void mcp_session_unref(struct mcp_session *s); /* NULL is a no-op */

/* End the session: cancel its in-flight calls (their responses are not sent), fail its
 * pending server->client requests, drop the standalone stream. Idempotent. */
void mcp_session_close(struct mcp_session *s);

/* The client can no longer answer (stdio: stdin reached EOF): fail every pending and future
 * server->client request at once instead of waiting for answers that cannot come. */
void mcp_session_client_gone(struct mcp_session *s);

const char *mcp_session_id(const struct mcp_session *s);
const char *mcp_session_principal(const struct mcp_session *s);
/* The negotiated version, or NULL before initialize succeeded. Borrowed; stable. */
const char *mcp_session_version(const struct mcp_session *s);
bool mcp_session_initialized(const struct mcp_session *s);
/* JSON-RPC batches are legal only on 2025-03-26 (mcp.md section 10). Before initialize
 * (unknown version) they are refused. */
bool mcp_session_batches_allowed(const struct mcp_session *s);
int64_t mcp_session_last_active_ms(const struct mcp_session *s);
int64_t mcp_session_inflight(const struct mcp_session *s);

/* The stream for server messages unrelated to any request (HTTP standalone GET stream;
 * stdio: stdout). stream may be NULL to detach; takes a reference. */
void mcp_session_set_standalone(struct mcp_session *s, struct mcp_stream *stream);

/* Per-message context from the transport. */
struct mcp_request_meta {
    const char *thread_header; /* Agentbox-Thread-Id header value, or NULL */
};

enum mcp_dispatch {
    MCP_DISPATCH_REQUEST,      /* a response will be sent on reply (final = true) */
    MCP_DISPATCH_NOTIFICATION, /* nothing will be sent on reply */
    MCP_DISPATCH_RESPONSE,     /* a response to one of our requests; nothing is sent */
    MCP_DISPATCH_ERROR,        /* invalid message; an error response was sent on reply */
};

/* Handle one message (msg borrowed; never a batch: transports split batches after checking
 * mcp_session_batches_allowed). */
enum mcp_dispatch mcp_session_dispatch(struct mcp_session *s, json_t *msg,
                                       struct mcp_stream *reply,
                                       const struct mcp_request_meta *meta);

/* Send a notification that is not related to a request (e.g. list_changed) on the
 * standalone stream, if any. params_new is stolen. */
void mcp_session_notify(struct mcp_session *s, const char *method, json_t *params_new);

/* ------------------------------------------------------------------------------------------
 * Calls (what tool functions see)
 * ---------------------------------------------------------------------------------------- */

enum mcp_log_level {
    MCP_LOG_DEBUG = 0,
    MCP_LOG_INFO,
    MCP_LOG_NOTICE,
    MCP_LOG_WARNING,
    MCP_LOG_ERROR,
    MCP_LOG_CRITICAL,
    MCP_LOG_ALERT,
    MCP_LOG_EMERGENCY,
};

struct mcp_server *mcp_call_server(const struct mcp_call *call);
struct mcp_session *mcp_call_session(const struct mcp_call *call);
const char *mcp_call_tool(const struct mcp_call *call);
const char *mcp_call_principal(const struct mcp_call *call);
/* params._meta of the request (borrowed) or NULL. */
const json_t *mcp_call_meta(const struct mcp_call *call);
/* What the request carries for design.md's thread-key rules 2-4 (rule 1, the sandbox_id
 * argument, is in the tool's arguments); each may be NULL. The order is applied in one
 * place, sbx_resolve_key() in core/registry.h. Borrowed, valid for the call. */
void mcp_call_key_inputs(const struct mcp_call *call, const char **meta_thread_id,
                         const char **header_thread_id, const char **session_key);
/* Fired on notifications/cancelled for this request, session close, or shutdown. */
struct ab_cancel *mcp_call_cancel(struct mcp_call *call);
bool mcp_call_cancelled(const struct mcp_call *call);

/* true when the request carried _meta.progressToken. */
bool mcp_call_has_progress(const struct mcp_call *call);
/* notifications/progress; progress must increase (enforced: non-increasing values are
 * dropped). total <= 0: omitted. message may be NULL. No-op without a progress token. */
void mcp_call_progress(struct mcp_call *call, double progress, double total, const char *message);
/* notifications/message at level (dropped below the session's logging/setLevel level).
 * data_new is stolen; logger may be NULL. */
void mcp_call_log(struct mcp_call *call, enum mcp_log_level level, const char *logger,
                  json_t *data_new);

/* Does the client declare this capability? path is "sampling", "elicitation",
 * "elicitation.form", "elicitation.url", "roots". */
bool mcp_call_client_can(const struct mcp_call *call, const char *path);

/* Send a request to the client on this call's stream and wait for the answer (sampling,
 * elicitation). params_new is stolen; *result_out is new. AB_TIMEOUT after timeout_ms
 * (and notifications/cancelled is sent), AB_CANCELLED when the call is cancelled,
 * AB_PROTO with the client's error message on a JSON-RPC error. */
ab_status mcp_call_request(struct mcp_call *call, const char *method, json_t *params_new,
                           int64_t timeout_ms, json_t **result_out, struct ab_err *err);

/* Record a key/value about this call for the observer (audit: "sandbox", "thread",
 * "decision"). Later values replace earlier ones. */
void mcp_call_annotate(struct mcp_call *call, const char *key, const char *value);

/* SEP-1699: close the connection carrying this call's stream now; the client reconnects
 * with Last-Event-ID and gets the rest. */
void mcp_call_disconnect(struct mcp_call *call);

/* ---- building results ---- */

/* {content:[{type:text,text}], isError?} (returns new). len may be (size_t)-1 for strlen. */
json_t *mcp_text_result(const char *text, size_t len, bool is_error);
/* A text content block (returns new). */
json_t *mcp_text_block(const char *text, size_t len);

#endif
