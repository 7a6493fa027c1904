/* Unit tests for src/transport/http_util.c: session ids, header parsing, Origin/Host
 * matching, SSE event ids and framing, listen addresses. */
#include "t.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/buf.h"
#include "transport/http_util.h"

static void t_session_ids(void)
{
    char a[HTTP_SESSION_ID_LEN + 1], b[HTTP_SESSION_ID_LEN + 1];
    T_OK(http_session_id_new(a));
    T_OK(http_session_id_new(b));
    T_EQ_INT(strlen(a), 32);
    T_ASSERT(http_session_id_valid(a));
    T_ASSERT(strcmp(a, b) != 0);
    /* visible ASCII only (transports.mdx), and exactly our shape */
    for (const char *p = a; *p; p++)
        T_ASSERT((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
    T_ASSERT(!http_session_id_valid(NULL));
    T_ASSERT(!http_session_id_valid(""));
    T_ASSERT(!http_session_id_valid("0123456789abcdef0123456789abcde"));   /* 31 */
    T_ASSERT(!http_session_id_valid("0123456789abcdef0123456789abcdef0")); /* 33 */
    T_ASSERT(!http_session_id_valid("0123456789ABCDEF0123456789abcdef"));  /* upper case */
    T_ASSERT(!http_session_id_valid("0123456789abcdef0123456789abcdeg"));
    T_ASSERT(http_session_id_valid("0123456789abcdef0123456789abcdef"));
}

static void t_accept(void)
{
    struct http_accept a;
    http_accept_parse(NULL, &a);
    T_ASSERT(!a.present && http_accept_post_ok(&a) && !http_accept_wants_json_only(&a));
    T_ASSERT(!http_accept_get_ok(&a));

    http_accept_parse("application/json, text/event-stream", &a);
    T_ASSERT(a.json && a.sse && http_accept_post_ok(&a) && !http_accept_wants_json_only(&a));
    T_ASSERT(http_accept_get_ok(&a));

    http_accept_parse("application/json", &a);
    T_ASSERT(http_accept_post_ok(&a) && http_accept_wants_json_only(&a) && !http_accept_get_ok(&a));

    http_accept_parse("text/event-stream", &a);
    T_ASSERT(http_accept_post_ok(&a) && !http_accept_wants_json_only(&a) && http_accept_get_ok(&a));

    http_accept_parse("*/*", &a);
    T_ASSERT(a.any && http_accept_post_ok(&a) && !http_accept_wants_json_only(&a));
    T_ASSERT(!http_accept_get_ok(&a));

    http_accept_parse("text/html", &a);
    T_ASSERT(a.present && !http_accept_post_ok(&a));

    /* q=0 means "not acceptable"; case and whitespace do not matter; params ignored */
    http_accept_parse(" Application/JSON ; q=0.9 ,TEXT/EVENT-STREAM;q=0", &a);
    T_ASSERT(a.json && !a.sse && http_accept_wants_json_only(&a));
    http_accept_parse("application/*;q=0.5", &a);
    T_ASSERT(a.app_any && http_accept_post_ok(&a) && http_accept_wants_json_only(&a));
    http_accept_parse("text/*", &a);
    T_ASSERT(a.text_any && http_accept_post_ok(&a) && !http_accept_get_ok(&a));
    http_accept_parse(",,;", &a);
    T_ASSERT(a.present && !http_accept_post_ok(&a));
}

static void t_content_type(void)
{
    T_ASSERT(http_content_type_is_json("application/json"));
    T_ASSERT(http_content_type_is_json("Application/JSON; charset=utf-8"));
    T_ASSERT(http_content_type_is_json("  application/json  ;charset=UTF-8"));
    T_ASSERT(!http_content_type_is_json(NULL));
    T_ASSERT(!http_content_type_is_json("text/plain"));
    T_ASSERT(!http_content_type_is_json("application/json-seq"));
    T_ASSERT(!http_content_type_is_json("application/jsonx"));
    T_ASSERT(!http_content_type_is_json(""));
}

static void t_bearer(void)
{
    const char *tok;
    size_t n;
    T_ASSERT(http_bearer_token("Bearer abc.def-123", &tok, &n));
    T_EQ_INT(n, 11);
    T_ASSERT(strncmp(tok, "abc.def-123", n) == 0);
    T_ASSERT(http_bearer_token("bearer   xyz  ", &tok, &n));
    T_EQ_INT(n, 3);
    T_ASSERT(!http_bearer_token(NULL, &tok, &n));
    T_ASSERT(!http_bearer_token("Bearer", &tok, &n));
    T_ASSERT(!http_bearer_token("Bearer ", &tok, &n));
    T_ASSERT(!http_bearer_token("Basic dXNlcjpwYXNz", &tok, &n));
    T_ASSERT(!http_bearer_token("Bearerxyz", &tok, &n));
    T_ASSERT(!http_bearer_token("Bearer a b", &tok, &n)); /* inner space */
}

static void t_visible_ascii(void)
{
    T_ASSERT(http_visible_ascii("abc-42", 256));
    T_ASSERT(!http_visible_ascii("", 256));
    T_ASSERT(!http_visible_ascii(NULL, 256));
    T_ASSERT(!http_visible_ascii("a b", 256));
    T_ASSERT(!http_visible_ascii("caf\xc3\xa9", 256));
    T_ASSERT(!http_visible_ascii("abcdef", 5));
    T_ASSERT(http_visible_ascii("abcde", 5));
}

static void t_host(void)
{
    const char *extra[] = {"mcp.example.com:8443", "alias.example", NULL};
    const char *ok[] = {
        "localhost", "LOCALHOST:80",         "127.0.0.1",     "127.0.0.1:8080", "[::1]",
        "[::1]:1",   "mcp.example.com:8443", "alias.example", "ALIAS.example:9"};
    const char *bad[] = {"evil.com",   "localhost.evil.com", "127.0.0.2",
                         "evil:80",    "mcp.example.com",    "mcp.example.com:8444",
                         "localhost:", "localhost:abc",      "localhost:123456",
                         "[::1",       "[::2]:80",           "",
                         ":80",        "localhost:80:80",    "[::1]x"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!http_host_allowed(ok[i], extra))
            T_FAIL("host %s should be allowed", ok[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (http_host_allowed(bad[i], extra))
            T_FAIL("host %s should be refused", bad[i]);
    T_ASSERT(!http_host_allowed(NULL, extra));
    T_ASSERT(http_host_is_loopback("localhost:3000"));
    T_ASSERT(!http_host_is_loopback("alias.example"));
    T_ASSERT(!http_host_allowed("alias.example", NULL));
}

static void t_origin(void)
{
    const char *extra[] = {"https://app.example.com", "http://tool.example:8080/", NULL};
    const char *ok[] = {"http://localhost",        "http://localhost:6274",
                        "https://127.0.0.1",       "http://[::1]:3000",
                        "HTTP://LOCALHOST",        "https://app.example.com",
                        "HTTPS://APP.example.com", "http://tool.example:8080"};
    const char *bad[] = {"null",
                         "http://evil.com",
                         "http://localhost.evil.com",
                         "http://localhost:80/path",
                         "ftp://localhost",
                         "file://",
                         "localhost",
                         "http://127.0.0.1.nip.io",
                         "https://app.example.com:443",
                         "https://app.example.com.evil.com",
                         "http://tool.example",
                         "http://user@localhost",
                         ""};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!http_origin_allowed(ok[i], extra))
            T_FAIL("origin %s should be allowed", ok[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (http_origin_allowed(bad[i], extra))
            T_FAIL("origin %s should be refused", bad[i]);
    const char *with_null[] = {"null", NULL};
    T_ASSERT(http_origin_allowed("null", with_null));
    T_ASSERT(!http_origin_allowed(NULL, extra));
}

static void t_event_ids(void)
{
    char id[HTTP_EVENT_ID_MAX], nonce[HTTP_EVENT_NONCE_LEN + 1];
    uint64_t stream = 0, seq = 0;
    http_event_id_format(id, sizeof(id), "0badc0de", 3, 17);
    T_EQ_STR(id, "0badc0de-3-17");
    T_ASSERT(http_event_id_parse(id, nonce, &stream, &seq));
    T_EQ_STR(nonce, "0badc0de");
    T_EQ_INT(stream, 3);
    T_EQ_INT(seq, 17);
    http_event_id_format(id, sizeof(id), "ffffffff", UINT64_C(18446744073709551), 99999999);
    T_ASSERT(http_event_id_parse(id, nonce, &stream, &seq));
    T_EQ_INT(seq, 99999999);
    const char *bad[] = {"",
                         "garbage",
                         "0badc0de-3",
                         "0badc0de-3-",
                         "0badc0de--17",
                         "0badc0dE-3-17",
                         "0badc0d-3-17",
                         "0badc0de-03-17",
                         "0badc0de-3-17-1",
                         "0badc0de-x-17",
                         "0badc0de-3-1x",
                         "0badc0de 3 17",
                         "0badc0de-99999999999999999999-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (http_event_id_parse(bad[i], nonce, &stream, &seq))
            T_FAIL("event id '%s' should not parse", bad[i]);
    T_ASSERT(!http_event_id_parse(NULL, nonce, &stream, &seq));
}

static void t_sse_format(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    T_OK(http_sse_priming(&b, "n-1-1", 1500));
    T_EQ_STR(buf_cstr(&b), "id: n-1-1\nretry: 1500\ndata: \n\n");
    buf_reset(&b);
    T_OK(http_sse_message(&b, "n-1-2", "{\"a\":1}", 7));
    T_EQ_STR(buf_cstr(&b), "event: message\nid: n-1-2\ndata: {\"a\":1}\n\n");
    buf_cleanup(&b);
}

static void t_listen(void)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct ab_err err;
    T_OK(http_listen_parse("127.0.0.1:8080", &ss, &len, &err));
    T_EQ_INT(ss.ss_family, AF_INET);
    T_EQ_INT(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
    T_ASSERT(http_sockaddr_is_loopback((struct sockaddr *)&ss));
    T_OK(http_listen_parse("localhost:0", &ss, &len, &err));
    T_ASSERT(http_sockaddr_is_loopback((struct sockaddr *)&ss));
    T_OK(http_listen_parse("127.9.9.9:1", &ss, &len, &err));
    T_ASSERT(http_sockaddr_is_loopback((struct sockaddr *)&ss));
    T_OK(http_listen_parse("[::1]:9000", &ss, &len, &err));
    T_EQ_INT(ss.ss_family, AF_INET6);
    T_EQ_INT(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 9000);
    T_ASSERT(http_sockaddr_is_loopback((struct sockaddr *)&ss));
    T_OK(http_listen_parse("0.0.0.0:80", &ss, &len, &err));
    T_ASSERT(!http_sockaddr_is_loopback((struct sockaddr *)&ss));
    T_OK(http_listen_parse("[::]:80", &ss, &len, &err));
    T_ASSERT(!http_sockaddr_is_loopback((struct sockaddr *)&ss));
    T_OK(http_listen_parse("[::ffff:127.0.0.1]:80", &ss, &len, &err));
    T_ASSERT(http_sockaddr_is_loopback((struct sockaddr *)&ss));
    const char *bad[] = {"8080",         ":8080",         "127.0.0.1:", "127.0.0.1:65536",
                         "127.0.0.1:-1", "127.0.0.1:80x", "[::1:80",    "[]:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ab_err_clear(&err);
        if (http_listen_parse(bad[i], &ss, &len, &err) == AB_OK)
            T_FAIL("listen '%s' should be refused", bad[i]);
        T_ASSERT(err.msg[0] != '\0');
    }
}

static const struct t_case cases[] = {
    T_CASE(t_session_ids),
    T_CASE(t_accept),
    T_CASE(t_content_type),
    T_CASE(t_bearer),
    T_CASE(t_visible_ascii),
    T_CASE(t_host),
    T_CASE(t_origin),
    T_CASE(t_event_ids),
    T_CASE(t_sse_format),
    T_CASE(t_listen),
    {0},
};

T_MAIN(cases)
