/*
 * http_util.h - the pure parts of the Streamable HTTP transport (no sockets, no
 * libmicrohttpd), kept apart so they can be unit-tested directly: session ids, header
 * parsing (Accept, Content-Type, Authorization), Origin/Host validation against DNS
 * rebinding, SSE event ids and event framing, and listen-address parsing.
 *
 * References: MCP 2025-11-25 basic/transports (sections cited per function), RFC 9110
 * (Accept, media types, Host), RFC 6454 (Origin), RFC 6750 (Bearer), WHATWG HTML "Server-
 * sent events" (event stream format).
 */
#ifndef AB_TRANSPORT_HTTP_UTIL_H
#define AB_TRANSPORT_HTTP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/status.h"

/* ---- session ids ---- */

/* transports.mdx "Session Management": globally unique, cryptographically secure, visible
 * ASCII only. Ours: 128 random bits as 32 lowercase hex characters. */
#define HTTP_SESSION_ID_LEN 32

/* Fill out (>= HTTP_SESSION_ID_LEN + 1 bytes) with a new id. */
ab_status http_session_id_new(char *out);
/* true when s has the exact shape of one of our ids (32 lowercase hex characters). */
bool http_session_id_valid(const char *s);

/* ---- request headers ---- */

struct http_accept {
    bool present;  /* the header was sent at all */
    bool json;     /* application/json */
    bool sse;      /* text/event-stream */
    bool any;      /* star/star */
    bool app_any;  /* application/star */
    bool text_any; /* text/star */
};

/* Parse an Accept header (NULL = absent). Media ranges with q=0 are ignored (RFC 9110
 * 12.4.2: "not acceptable"); parameters are otherwise ignored. */
void http_accept_parse(const char *value, struct http_accept *out);
/* POST: lenient, as mcp.md 13.2 recommends (real clients send only one of the two types):
 * acceptable when absent or naming JSON, SSE or a wildcard covering either. */
bool http_accept_post_ok(const struct http_accept *a);
/* POST: answer with application/json rather than an SSE stream (the client accepts JSON but
 * no event stream). */
bool http_accept_wants_json_only(const struct http_accept *a);
/* GET: the client must list text/event-stream (transports.mdx: "MUST include an Accept
 * header, listing text/event-stream"). */
bool http_accept_get_ok(const struct http_accept *a);

/* true when the Content-Type's media type is application/json (parameters such as
 * charset are allowed; case-insensitive). NULL is false. */
bool http_content_type_is_json(const char *value);

/* Extract the token from "Bearer <token>" (scheme case-insensitive, RFC 6750 2.1).
 * Returns false when the header is absent or not a bearer credential. *tok points into
 * value. */
bool http_bearer_token(const char *value, const char **tok, size_t *len);

/* A header value fit to use as a thread key or session id: 1..max visible ASCII bytes. */
bool http_visible_ascii(const char *s, size_t max);

/* ---- DNS-rebinding protection (transports.mdx "Security Warning") ---- */

/* true for localhost, 127.0.0.1 and [::1], each with an optional :port. */
bool http_host_is_loopback(const char *host);
/* Host header check: loopback names, or an entry of allowed (NULL-terminated, may be NULL).
 * An entry without a port matches any port; with a port, only that port. */
bool http_host_allowed(const char *host, const char *const *allowed);
/* Origin header check: http(s)://<loopback name>[:port], or an exact (case-insensitive)
 * entry of allowed, e.g. "https://app.example.com" or "http://example.com:8080". The
 * opaque origin "null" is allowed only when listed. */
bool http_origin_allowed(const char *origin, const char *const *allowed);

/* ---- SSE ---- */

/* Event ids: "<nonce>-<stream>-<seq>". The nonce is the session's (8 hex chars), so an id
 * from another session is recognised as foreign; stream and seq let the server find what
 * to replay (transports.mdx: ids "SHOULD encode sufficient information to identify the
 * originating stream"). */
#define HTTP_EVENT_NONCE_LEN 8
#define HTTP_EVENT_ID_MAX    64
void http_event_id_format(char *out, size_t cap, const char *nonce, uint64_t stream, uint64_t seq);
/* Parse; nonce_out receives HTTP_EVENT_NONCE_LEN + 1 bytes. false on any malformation. */
bool http_event_id_parse(const char *id, char *nonce_out, uint64_t *stream, uint64_t *seq);

/* Append "event: message\nid: <id>\ndata: <json>\n\n". json must hold no CR or LF
 * (jrpc_dump output never does). */
ab_status http_sse_message(struct buf *out, const char *id, const char *json, size_t len);
/* Append the priming event: "id: <id>\nretry: <ms>\ndata: \n\n" (SEP-1699). */
ab_status http_sse_priming(struct buf *out, const char *id, int64_t retry_ms);
/* The keep-alive comment written on idle streams. */
#define HTTP_SSE_KEEPALIVE ": keepalive\n\n"

/* ---- listen address ---- */

/* Parse "ADDR:PORT": "127.0.0.1:8080", "[::1]:8080", "localhost:8080" (= 127.0.0.1),
 * "0.0.0.0:8080", "[::]:8080", or a host name (resolved, first address). Port 0 asks the
 * kernel for a free port. */
ab_status http_listen_parse(const char *listen, struct sockaddr_storage *ss, socklen_t *len,
                            struct ab_err *err);
/* 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. */
bool http_sockaddr_is_loopback(const struct sockaddr *sa);

#endif
