/* Unit tests for src/base: buffers, base64, SHA-256, UTF-8, sizes, time, selectors. */
#include "t.h"

#include <stdlib.h>

#include "base/buf.h"
#include "base/cancel.h"
#include "base/util.h"
#include "core/sandbox.h"

static void t_buf_cap(void)
{
    struct buf b;
    buf_init(&b, 8);
    T_OK(buf_append_str(&b, "abcd"));
    T_OK(buf_printf(&b, "%d", 1234));
    T_EQ_STR(buf_cstr(&b), "abcd1234");
    T_EQ_INT(buf_append_char(&b, 'x'), AB_LIMIT);
    T_EQ_STR(buf_cstr(&b), "abcd1234");
    buf_consume(&b, 2);
    T_EQ_STR(buf_cstr(&b), "cd1234");
    T_EQ_INT(buf_append_upto(&b, "xyz", 3), 2);
    T_EQ_STR(buf_cstr(&b), "cd1234xy");
    size_t len;
    char *s = buf_steal(&b, &len);
    T_EQ_INT(len, 8);
    T_EQ_STR(s, "cd1234xy");
    free(s);
    T_EQ_STR(buf_cstr(&b), "");
    buf_cleanup(&b);
}

static void t_base64(void)
{
    const char *cases[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                              {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                              {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < AB_ARRAY_LEN(cases); i++) {
        char *e = ab_base64_encode(cases[i][0], strlen(cases[i][0]), NULL);
        T_EQ_STR(e, cases[i][1]);
        unsigned char *d;
        size_t dl;
        T_OK(ab_base64_decode(e, strlen(e), &d, &dl));
        T_EQ_INT(dl, strlen(cases[i][0]));
        T_ASSERT(memcmp(d, cases[i][0], dl) == 0);
        free(d);
        free(e);
    }
    unsigned char *d;
    size_t dl;
    T_EQ_INT(ab_base64_decode("Zm9v!", 5, &d, &dl), AB_INVAL);
    T_EQ_INT(ab_base64_decode("Zg==Zg", 6, &d, &dl), AB_INVAL);
}

static void t_sha256(void)
{
    char hex[65];
    ab_sha256_hex("", 0, hex);
    T_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ab_sha256_hex("abc", 3, hex);
    T_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ab_sha256_hex(m, strlen(m), hex);
    T_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void t_utf8(void)
{
    T_ASSERT(ab_utf8_valid("abc", 3));
    T_ASSERT(ab_utf8_valid("\xc3\xa9", 2));
    T_ASSERT(ab_utf8_valid("\xf0\x9f\x98\x80", 4));
    T_ASSERT(!ab_utf8_valid("\xc3", 1));
    T_ASSERT(!ab_utf8_valid("\xc0\xaf", 2));         /* overlong */
    T_ASSERT(!ab_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    T_ASSERT(!ab_utf8_valid("\xff", 1));
    T_EQ_INT(ab_utf8_trim_len("ab\xc3\xa9", 4), 4);
    T_EQ_INT(ab_utf8_trim_len("ab\xc3\xa9", 3), 2);
    T_EQ_INT(ab_utf8_trim_len("\xf0\x9f\x98\x80", 3), 0);
}

static void t_sizes_and_time(void)
{
    uint64_t v;
    T_ASSERT(ab_parse_size("16MiB", &v) && v == 16u * 1024 * 1024);
    T_ASSERT(ab_parse_size("512k", &v) && v == 512u * 1024);
    T_ASSERT(ab_parse_size("42", &v) && v == 42);
    T_ASSERT(!ab_parse_size("12q", &v));
    T_ASSERT(!ab_parse_size("-1", &v));
    int64_t ms;
    T_ASSERT(ab_parse_time("2026-11-22T01:02:03Z", &ms));
    char out[40];
    ab_format_time(ms, out, sizeof(out));
    T_EQ_STR(out, "2026-11-22T01:02:03Z");
    T_ASSERT(ab_parse_time("2026-11-22T03:02:03.5+02:00", &ms));
    ab_format_time(ms, out, sizeof(out));
    T_EQ_STR(out, "2026-11-22T01:02:03Z");
    T_ASSERT(ab_consttime_equal("abc", 3, "abc", 3));
    T_ASSERT(!ab_consttime_equal("abc", 3, "abd", 3));
    T_ASSERT(!ab_consttime_equal("abc", 3, "abcd", 4));
}

static void t_selectors(void)
{
    json_t *labels = json_pack("{s:s,s:s}", "team", "ml", "env", "dev");
    T_ASSERT(sbx_selector_matches(NULL, labels));
    T_ASSERT(sbx_selector_matches("team=ml", labels));
    T_ASSERT(sbx_selector_matches("team==ml,env", labels));
    T_ASSERT(!sbx_selector_matches("team=ml,env=prod", labels));
    T_ASSERT(sbx_selector_matches("env!=prod,!owner", labels));
    T_ASSERT(!sbx_selector_matches("!team", labels));
    T_EQ_INT(sbx_selector_validate("a=b,c", NULL), AB_OK);
    T_EQ_INT(sbx_selector_validate("a=b,,", NULL), AB_INVAL);
    T_EQ_INT(sbx_selector_validate("bad key=x", NULL), AB_INVAL);
    T_EQ_INT(sbx_labels_validate(labels, NULL), AB_OK);
    json_t *bad = json_pack("{s:s}", "-x", "y");
    T_EQ_INT(sbx_labels_validate(bad, NULL), AB_INVAL);
    json_decref(bad);
    json_decref(labels);
}

static int fired_count;
static void on_fire(void *arg)
{
    (void)arg;
    fired_count++;
}

static void t_cancel(void)
{
    struct ab_cancel c;
    ab_cancel_init(&c);
    ab_cancel_on_fire(&c, on_fire, NULL);
    int fd = ab_cancel_fd(&c);
    T_ASSERT(fd >= 0);
    T_ASSERT(!ab_cancel_fired(&c));
    ab_cancel_fire(&c, "test");
    ab_cancel_fire(&c, "again");
    T_ASSERT(ab_cancel_fired(&c));
    T_EQ_INT(fired_count, 1);
    uint64_t v = 0;
    T_EQ_INT(read(fd, &v, sizeof(v)), 8);
    ab_cancel_cleanup(&c);
}

static const struct t_case cases[] = {
    T_CASE(t_buf_cap),   T_CASE(t_base64),   T_CASE(t_sha256), T_CASE(t_utf8),
    T_CASE(t_sizes_and_time), T_CASE(t_selectors), T_CASE(t_cancel), {0},
};
T_MAIN(cases)
