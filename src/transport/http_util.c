/*
 * http_util.c - header parsing, Origin/Host checks, SSE framing and event ids for the
 * Streamable HTTP transport (see http_util.h). Pure functions over strings: no I/O except
 * getrandom (session ids) and getaddrinfo (host names in the listen address).
 *
 * Parsing is deliberately small and strict where security depends on it (Origin, Host,
 * event ids: exact shapes, no normalisation tricks) and lenient where interoperability does
 * (Accept: mcp.md 13.2 lists real clients that send only one of the two media types).
 */
#include "transport/http_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

/* ---- session ids ---- */

ab_status http_session_id_new(char *out)
{
    return ab_random_hex(out, HTTP_SESSION_ID_LEN / 2);
}

bool http_session_id_valid(const char *s)
{
    if (!s)
        return false;
    size_t i = 0;
    for (; s[i]; i++)
        if (i >= HTTP_SESSION_ID_LEN ||
            !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == HTTP_SESSION_ID_LEN;
}

/* ---- small string helpers ---- */

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* [s, s+n) equals lit, ignoring ASCII case. */
static bool span_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* Trim optional whitespace around [*s, *s+*n). */
static void trim_span(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* ---- Accept ---- */

/* q value of a media range's parameters ("; q=0.5; level=1"); 1 when absent. */
static double range_q(const char *params, size_t n)
{
    const char *p = params, *end = params + n;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pe = semi ? semi : end;
        const char *k = p;
        size_t kn = (size_t)(pe - p);
        trim_span(&k, &kn);
        if (kn >= 2 && (k[0] == 'q' || k[0] == 'Q') && k[1] == '=') {
            char tmp[16];
            size_t vn = AB_MIN(kn - 2, sizeof(tmp) - 1);
            memcpy(tmp, k + 2, vn);
            tmp[vn] = '\0';
            return strtod(tmp, NULL);
        }
        p = semi ? semi + 1 : end;
    }
    return 1.0;
}

void http_accept_parse(const char *value, struct http_accept *out)
{
    memset(out, 0, sizeof(*out));
    if (!value)
        return;
    out->present = true;
    const char *p = value;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *mt = p;
        size_t mn = (size_t)((semi ? semi : end) - p);
        trim_span(&mt, &mn);
        double q = semi ? range_q(semi + 1, (size_t)(end - semi - 1)) : 1.0;
        if (q > 0) {
            if (span_eq(mt, mn, "application/json"))
                out->json = true;
            else if (span_eq(mt, mn, "text/event-stream"))
                out->sse = true;
            else if (span_eq(mt, mn, "*/*"))
                out->any = true;
            else if (span_eq(mt, mn, "application/*"))
                out->app_any = true;
            else if (span_eq(mt, mn, "text/*"))
                out->text_any = true;
        }
        p = comma ? comma + 1 : end;
    }
}

bool http_accept_post_ok(const struct http_accept *a)
{
    return !a->present || a->json || a->sse || a->any || a->app_any || a->text_any;
}

bool http_accept_wants_json_only(const struct http_accept *a)
{
    return a->present && (a->json || a->app_any) && !(a->sse || a->text_any || a->any);
}

bool http_accept_get_ok(const struct http_accept *a)
{
    return a->sse;
}

bool http_content_type_is_json(const char *value)
{
    if (!value)
        return false;
    const char *semi = strchr(value, ';');
    const char *s = value;
    size_t n = semi ? (size_t)(semi - value) : strlen(value);
    trim_span(&s, &n);
    return span_eq(s, n, "application/json");
}

bool http_bearer_token(const char *value, const char **tok, size_t *len)
{
    if (!value)
        return false;
    const char *p = skip_ows(value);
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return false;
    p = skip_ows(p + 6);
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n == 0)
        return false;
    /* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return false;
    *tok = p;
    *len = n;
    return true;
}

bool http_visible_ascii(const char *s, size_t max)
{
    if (!s || !*s)
        return false;
    size_t i = 0;
    for (; s[i]; i++)
        if (i >= max || (unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* ---- Host / Origin ---- */

/* Split "host[:port]" / "[v6][:port]" into host and port spans. false when malformed (a
 * port that is not 1-5 digits, an unterminated bracket, an empty host). */
static bool split_host_port(const char *s, size_t n, const char **host, size_t *hn,
                            const char **port, size_t *pn)
{
    *port = NULL;
    *pn = 0;
    if (n == 0)
        return false;
    const char *colon;
    if (s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb)
            return false;
        *host = s;
        *hn = (size_t)(rb - s) + 1;
        colon = rb + 1 < s + n ? rb + 1 : NULL;
        if (colon && *colon != ':')
            return false;
    } else {
        colon = memchr(s, ':', n);
        *host = s;
        *hn = colon ? (size_t)(colon - s) : n;
    }
    if (*hn == 0)
        return false;
    if (colon) {
        *port = colon + 1;
        *pn = (size_t)(s + n - *port);
        if (*pn == 0 || *pn > 5)
            return false;
        for (size_t i = 0; i < *pn; i++)
            if (!isdigit((unsigned char)(*port)[i]))
                return false;
    }
    return true;
}

static bool name_is_loopback(const char *h, size_t n)
{
    return span_eq(h, n, "localhost") || span_eq(h, n, "127.0.0.1") || span_eq(h, n, "[::1]");
}

bool http_host_is_loopback(const char *host)
{
    return http_host_allowed(host, NULL);
}

bool http_host_allowed(const char *host, const char *const *allowed)
{
    if (!host)
        return false;
    const char *h, *p;
    size_t hn, pn;
    if (!split_host_port(host, strlen(host), &h, &hn, &p, &pn))
        return false;
    if (name_is_loopback(h, hn))
        return true;
    for (size_t i = 0; allowed && allowed[i]; i++) {
        const char *ah, *ap;
        size_t ahn, apn;
        if (!split_host_port(allowed[i], strlen(allowed[i]), &ah, &ahn, &ap, &apn))
            continue;
        if (ahn != hn || strncasecmp(ah, h, hn) != 0)
            continue;
        if (!ap || (pn == apn && memcmp(ap, p, pn) == 0))
            return true;
    }
    return false;
}

bool http_origin_allowed(const char *origin, const char *const *allowed)
{
    if (!origin)
        return false;
    for (size_t i = 0; allowed && allowed[i]; i++) {
        /* Listed origins compare exactly, ignoring case and a trailing slash in the list. */
        size_t an = strlen(allowed[i]);
        if (an && allowed[i][an - 1] == '/')
            an--;
        if (strlen(origin) == an && strncasecmp(origin, allowed[i], an) == 0)
            return true;
    }
    /* RFC 6454 7: serialized origin = scheme "://" host [ ":" port ], nothing else. */
    const char *rest;
    if (strncasecmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    else
        return false;
    const char *h, *p;
    size_t hn, pn;
    if (!split_host_port(rest, strlen(rest), &h, &hn, &p, &pn))
        return false;
    return name_is_loopback(h, hn);
}

/* ---- SSE ---- */

void http_event_id_format(char *out, size_t cap, const char *nonce, uint64_t stream, uint64_t seq)
{
    snprintf(out, cap, "%s-%" PRIu64 "-%" PRIu64, nonce, stream, seq);
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 19 || (n > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

bool http_event_id_parse(const char *id, char *nonce_out, uint64_t *stream, uint64_t *seq)
{
    if (!id)
        return false;
    size_t n = strlen(id);
    if (n > HTTP_EVENT_ID_MAX || n < HTTP_EVENT_NONCE_LEN + 4 || id[HTTP_EVENT_NONCE_LEN] != '-')
        return false;
    for (size_t i = 0; i < HTTP_EVENT_NONCE_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    const char *s = id + HTTP_EVENT_NONCE_LEN + 1;
    const char *dash = strchr(s, '-');
    if (!dash)
        return false;
    if (!parse_u64(s, (size_t)(dash - s), stream) || !parse_u64(dash + 1, strlen(dash + 1), seq))
        return false;
    memcpy(nonce_out, id, HTTP_EVENT_NONCE_LEN);
    nonce_out[HTTP_EVENT_NONCE_LEN] = '\0';
    return true;
}

ab_status http_sse_message(struct buf *out, const char *id, const char *json, size_t len)
{
    ab_status rc = buf_printf(out, "event: message\nid: %s\ndata: ", id);
    if (!rc)
        rc = buf_append(out, json, len);
    if (!rc)
        rc = buf_append(out, "\n\n", 2);
    return rc;
}

ab_status http_sse_priming(struct buf *out, const char *id, int64_t retry_ms)
{
    return buf_printf(out, "id: %s\nretry: %lld\ndata: \n\n", id, (long long)retry_ms);
}

/* ---- listen address ---- */

ab_status http_listen_parse(const char *listen, struct sockaddr_storage *ss, socklen_t *len,
                            struct ab_err *err)
{
    memset(ss, 0, sizeof(*ss));
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || colon == listen)
        return ab_err_set(err, AB_INVAL,
                          "listen address '%s': expected ADDR:PORT, e.g. "
                          "127.0.0.1:8080",
                          listen ? listen : "");
    uint64_t port;
    if (!parse_u64(colon + 1, strlen(colon + 1), &port) || port > 65535)
        return ab_err_set(err, AB_INVAL,
                          "listen address '%s': the port must be 0..65535 "
                          "(0 = any free port)",
                          listen);
    char host[256];
    size_t hn = (size_t)(colon - listen);
    if (listen[0] == '[') {
        if (hn < 3 || listen[hn - 1] != ']')
            return ab_err_set(err, AB_INVAL, "listen address '%s': bad IPv6 literal", listen);
        snprintf(host, sizeof(host), "%.*s", (int)(hn - 2), listen + 1);
    } else {
        snprintf(host, sizeof(host), "%.*s", (int)hn, listen);
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (strcasecmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof(*v4);
        return AB_OK;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*v6);
        return AB_OK;
    }
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, NULL, &hints, &res);
    if (gai != 0 || !res)
        return ab_err_set(err, AB_INVAL, "listen address '%s': cannot resolve %s: %s", listen, host,
                          gai_strerror(gai));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    if (ss->ss_family == AF_INET)
        v4->sin_port = htons((uint16_t)port);
    else
        v6->sin6_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return AB_OK;
}

bool http_sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && v6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}
