/*
 * http_auth.h - bearer-token authentication for the HTTP transport.
 *
 * Tokens come from the configuration (auth.tokens, which also holds AGENTBOX_TOKEN) and
 * from auth.token_file (lines "TOKEN [PRINCIPAL]", re-read by http_auth_reload on SIGHUP).
 * Only SHA-256 digests are kept; a presented token is hashed and compared against every
 * digest in constant time, so neither the token's length nor which entry matched leaks
 * through timing. Tokens are never logged.
 *
 * Thread-safe: checks take a read lock, reloads a write lock.
 */
#ifndef AB_TRANSPORT_HTTP_AUTH_H
#define AB_TRANSPORT_HTTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

struct cfg_auth;
struct http_auth;

/* Shortest token accepted from the token file (the config loader applies the same rule
 * to AGENTBOX_TOKEN). */
#define HTTP_AUTH_MIN_TOKEN     16
#define HTTP_AUTH_PRINCIPAL_MAX 128

enum http_auth_result {
    HTTP_AUTH_OK,      /* valid token (or auth is off) */
    HTTP_AUTH_MISSING, /* no bearer credential in the request */
    HTTP_AUTH_INVALID, /* a bearer credential that matches no token */
};

/* Build the table from cfg (borrowed; token_file is read now). Returns new in *out. */
ab_status http_auth_new(const struct cfg_auth *cfg, struct http_auth **out, struct ab_err *err);
void http_auth_free(struct http_auth *a);

/* Re-read the token file (no-op without one). On failure the old tokens stay in force. */
ab_status http_auth_reload(struct http_auth *a, struct ab_err *err);

/* true when at least one token is configured (then every request must carry one). */
bool http_auth_enabled(struct http_auth *a);
size_t http_auth_count(struct http_auth *a);

/* Check an Authorization header value (NULL = absent). On HTTP_AUTH_OK the principal is
 * copied to principal[cap] ("" when auth is off). */
enum http_auth_result http_auth_check(struct http_auth *a, const char *authorization,
                                      char *principal, size_t cap);

/* Parse token-file text into (token, principal) pairs; exposed for tests. Calls cb for
 * every entry; errors name the line. */
typedef ab_status (*http_auth_entry_cb)(void *arg, const char *token, size_t token_len,
                                        const char *principal, size_t principal_len);
ab_status http_auth_parse_file_text(const char *text, size_t len, const char *name,
                                    http_auth_entry_cb cb, void *arg, struct ab_err *err);

#endif
