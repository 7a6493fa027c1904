/*
 * fuzz_http_headers.c - the HTTP transport's parsers (transport/http_util, http_auth, sse_ring):
 * everything a remote peer controls before a request reaches the MCP layer.
 *
 * Input: one selector byte, then the data (a header value, a token file, or ring ops).
 * Beyond "no crash, no leak", each parser is checked for the property the transport relies
 * on:
 *   0 Accept        anything "JSON only" is acceptable for POST; GET needs text/event-stream
 *   1 Content-Type  only application/json (with parameters) is JSON
 *   2 Authorization a token found lies inside the header, is non-empty visible ASCII
 *   3 Host          a host allowed without an allow-list is a loopback name; the list
 *                   never makes a host *less* allowed
 *   4 Origin        an origin allowed without an allow-list is http(s)://<loopback>[:port]
 *   5 event id      parse accepts exactly what format produces (round trip)
 *   6 token file    every entry has a >= 16-character visible-ASCII token
 *   7 listen        a parsed address is IPv4 or IPv6
 *   8 replay ring   bounded in events and bytes; replay yields increasing seqs of one stream
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "fuzz.h"
#include "transport/http_auth.h"
#include "transport/http_util.h"
#include "transport/sse_ring.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void check_accept(const char *s)
{
    struct http_accept a;
    http_accept_parse(s, &a);
    FUZZ_CHECK(a.present, "parsed header not marked present");
    if (http_accept_wants_json_only(&a))
        FUZZ_CHECK(http_accept_post_ok(&a), "JSON-only but not acceptable: %s", s);
    if (http_accept_get_ok(&a))
        FUZZ_CHECK(a.sse && http_accept_post_ok(&a), "GET ok without SSE: %s", s);
}

static void check_bearer(const char *s)
{
    const char *tok;
    size_t n;
    if (!http_bearer_token(s, &tok, &n))
        return;
    FUZZ_CHECK(n > 0 && tok >= s && tok + n <= s + strlen(s), "token outside the header");
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(tok[i] > 0x20 && tok[i] < 0x7f, "token byte 0x%02x", (unsigned char)tok[i]);
}

static bool loopback_name_prefix(const char *h)
{
    return strncasecmp(h, "localhost", 9) == 0 || strncmp(h, "127.0.0.1", 9) == 0 ||
           strncmp(h, "[::1]", 5) == 0;
}

static void check_host(const char *s)
{
    static const char *const list[] = {"example.com", "api.example.com:8443", NULL};
    bool bare = http_host_allowed(s, NULL);
    FUZZ_CHECK(bare == http_host_is_loopback(s), "allowed vs loopback disagree: %s", s);
    if (bare)
        FUZZ_CHECK(loopback_name_prefix(s), "allowed non-loopback host: %s", s);
    if (bare)
        FUZZ_CHECK(http_host_allowed(s, list), "the allow-list removed a host: %s", s);
}

static void check_origin(const char *s)
{
    if (!http_origin_allowed(s, NULL))
        return;
    const char *rest = strncasecmp(s, "http://", 7) == 0    ? s + 7
                       : strncasecmp(s, "https://", 8) == 0 ? s + 8
                                                            : NULL;
    FUZZ_CHECK(rest && loopback_name_prefix(rest), "allowed origin: %s", s);
    FUZZ_CHECK(!strchr(rest, '/') && !strchr(rest, '@'), "origin with path or userinfo: %s", s);
}

static void check_event_id(const char *s)
{
    char nonce[HTTP_EVENT_NONCE_LEN + 1], again[HTTP_EVENT_ID_MAX + 8];
    uint64_t stream, seq;
    if (!http_event_id_parse(s, nonce, &stream, &seq))
        return;
    http_event_id_format(again, sizeof(again), nonce, stream, seq);
    FUZZ_CHECK(strcmp(again, s) == 0, "round trip: %s -> %s", s, again);
}

static ab_status token_entry(void *arg, const char *t, size_t tl, const char *p, size_t pl)
{
    (void)arg;
    FUZZ_CHECK(tl >= HTTP_AUTH_MIN_TOKEN, "short token accepted");
    for (size_t i = 0; i < tl; i++)
        FUZZ_CHECK(t[i] > 0x20 && t[i] < 0x7f, "token byte 0x%02x", (unsigned char)t[i]);
    FUZZ_CHECK(pl > 0 && pl < HTTP_AUTH_PRINCIPAL_MAX, "principal length %zu", pl);
    (void)p;
    return AB_OK;
}

struct ring_walk {
    uint64_t stream;
    uint64_t last;
};

static void ring_visit(void *arg, const struct sse_event *ev)
{
    struct ring_walk *w = arg;
    FUZZ_CHECK(ev->stream == w->stream, "replayed stream %llu for %llu",
               (unsigned long long)ev->stream, (unsigned long long)w->stream);
    FUZZ_CHECK(ev->seq > w->last, "seq %llu after %llu", (unsigned long long)ev->seq,
               (unsigned long long)w->last);
    w->last = ev->seq;
}

static void check_ring(const uint8_t *d, size_t n)
{
    struct sse_ring r;
    sse_ring_init(&r, n ? d[0] % 16 : 0, 64 + (n > 1 ? d[1] : 0));
    uint64_t seq = 0;
    char data[256];
    memset(data, 'x', sizeof(data));
    for (size_t i = 2; i + 1 < n; i += 2) {
        sse_ring_push(&r, d[i] % 4, ++seq, data, d[i + 1]);
        FUZZ_CHECK(r.count <= r.max_events && r.bytes <= r.max_bytes, "ring over its bounds");
    }
    for (uint64_t stream = 0; stream < 4; stream++) {
        struct ring_walk w = {stream, seq / 2};
        sse_ring_replay(&r, stream, seq / 2, ring_visit, &w);
    }
    sse_ring_cleanup(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0] % 9;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    if (sel == 8) {
        check_ring(d, n);
        return 0;
    }
    char *s = malloc(n + 1);
    if (!s)
        return 0;
    memcpy(s, d, n);
    s[n] = '\0';
    switch (sel) {
    case 0:
        check_accept(s);
        break;
    case 1:
        if (http_content_type_is_json(s))
            FUZZ_CHECK(strcasestr(s, "application/json") != NULL, "JSON type: %s", s);
        break;
    case 2:
        check_bearer(s);
        break;
    case 3:
        check_host(s);
        break;
    case 4:
        check_origin(s);
        break;
    case 5:
        check_event_id(s);
        break;
    case 6: {
        struct ab_err err;
        http_auth_parse_file_text((const char *)d, n, "fuzz", token_entry, NULL, &err);
        break;
    }
    case 7: {
        struct sockaddr_storage ss;
        socklen_t len;
        struct ab_err err;
        /* Host names would be resolved (DNS): keep to literals and localhost. */
        if (strspn(s, "0123456789abcdefABCDEF.:[]lochst") == strlen(s) &&
            http_listen_parse(s, &ss, &len, &err) == AB_OK)
            FUZZ_CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6, "family %d",
                       ss.ss_family);
        break;
    }
    }
    free(s);
    return 0;
}
