/* Unit tests for src/transport/http_auth.c: bearer tokens from the configuration and the
 * token file, principals, reload. */
#include "t.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "config/config.h"
#include "transport/http_auth.h"

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    T_ASSERT(fd >= 0);
    T_ASSERT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

static void t_off_without_tokens(void)
{
    struct cfg_auth a = {0};
    struct http_auth *h = NULL;
    struct ab_err err;
    T_OK(http_auth_new(&a, &h, &err));
    T_ASSERT(!http_auth_enabled(h));
    char p[64] = "x";
    T_EQ_INT(http_auth_check(h, NULL, p, sizeof(p)), HTTP_AUTH_OK);
    T_EQ_STR(p, "");
    T_EQ_INT(http_auth_check(h, "Bearer whatever", p, sizeof(p)), HTTP_AUTH_OK);
    http_auth_free(h);
}

static void t_config_tokens(void)
{
    struct cfg_token toks[2] = {{"alpha-token-0123456789", "alice"},
                                {"bravo-token-0123456789", ""}};
    struct cfg_auth a = {.tokens = toks, .ntokens = 2};
    struct http_auth *h = NULL;
    struct ab_err err;
    T_OK(http_auth_new(&a, &h, &err));
    T_ASSERT(http_auth_enabled(h));
    char p[64];
    T_EQ_INT(http_auth_check(h, "Bearer alpha-token-0123456789", p, sizeof(p)), HTTP_AUTH_OK);
    T_EQ_STR(p, "alice");
    T_EQ_INT(http_auth_check(h, "bearer bravo-token-0123456789", p, sizeof(p)), HTTP_AUTH_OK);
    T_EQ_STR(p, "default");
    T_EQ_INT(http_auth_check(h, NULL, p, sizeof(p)), HTTP_AUTH_MISSING);
    T_EQ_INT(http_auth_check(h, "Basic YTpi", p, sizeof(p)), HTTP_AUTH_MISSING);
    T_EQ_INT(http_auth_check(h, "Bearer alpha-token-012345678", p, sizeof(p)), HTTP_AUTH_INVALID);
    T_EQ_INT(http_auth_check(h, "Bearer alpha-token-01234567890", p, sizeof(p)), HTTP_AUTH_INVALID);
    T_EQ_INT(http_auth_check(h, "Bearer ALPHA-token-0123456789", p, sizeof(p)), HTTP_AUTH_INVALID);
    T_EQ_STR(p, "");
    http_auth_free(h);
}

struct entries {
    char tok[4][64];
    char pri[4][64];
    int n;
};

static ab_status add(void *arg, const char *t, size_t tl, const char *p, size_t pl)
{
    struct entries *e = arg;
    snprintf(e->tok[e->n], 64, "%.*s", (int)tl, t);
    snprintf(e->pri[e->n], 64, "%.*s", (int)pl, p);
    e->n++;
    return AB_OK;
}

static void t_file_format(void)
{
    const char *text = "# comment\n\n  token-aaaaaaaaaaaaaa  alice  # trailing\r\n"
                       "token-bbbbbbbbbbbbbb\n\ttoken-cccccccccccccc\tbob\n";
    struct entries e = {0};
    struct ab_err err;
    T_OK(http_auth_parse_file_text(text, strlen(text), "f", add, &e, &err));
    T_EQ_INT(e.n, 3);
    T_EQ_STR(e.tok[0], "token-aaaaaaaaaaaaaa");
    T_EQ_STR(e.pri[0], "alice");
    T_EQ_STR(e.pri[1], "default");
    T_EQ_STR(e.tok[2], "token-cccccccccccccc");
    T_EQ_STR(e.pri[2], "bob");

    struct entries x = {0};
    T_EQ_INT(http_auth_parse_file_text("short\n", 6, "f", add, &x, &err), AB_INVAL);
    T_ASSERT(strstr(err.msg, "f:1") != NULL);
    const char *three = "token-aaaaaaaaaaaaaa a b\n";
    T_EQ_INT(http_auth_parse_file_text(three, strlen(three), "g", add, &x, &err), AB_INVAL);
    T_ASSERT(strstr(err.msg, "g:1") != NULL);
    const char *second = "# ok\ntoken-aaaaaaaaaaaaaa\ntok\n";
    T_EQ_INT(http_auth_parse_file_text(second, strlen(second), "h", add, &x, &err), AB_INVAL);
    T_ASSERT(strstr(err.msg, "h:3") != NULL);
}

static void t_file_and_reload(void)
{
    char dir[] = "/tmp/agentbox-auth-XXXXXX";
    T_ASSERT(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof(path), "%s/tokens", dir);
    write_file(path, "file-token-one-000000 carol\n");
    struct cfg_token toks[1] = {{"config-token-00000000", "dave"}};
    struct cfg_auth a = {.tokens = toks, .ntokens = 1, .token_file = path};
    struct http_auth *h = NULL;
    struct ab_err err;
    T_OK(http_auth_new(&a, &h, &err));
    char p[64];
    T_EQ_INT(http_auth_check(h, "Bearer file-token-one-000000", p, sizeof(p)), HTTP_AUTH_OK);
    T_EQ_STR(p, "carol");
    T_EQ_INT(http_auth_count(h), 2);

    write_file(path, "file-token-two-000000 erin\nfile-token-three-0000\n");
    T_OK(http_auth_reload(h, &err));
    T_EQ_INT(http_auth_count(h), 3);
    T_EQ_INT(http_auth_check(h, "Bearer file-token-one-000000", p, sizeof(p)), HTTP_AUTH_INVALID);
    T_EQ_INT(http_auth_check(h, "Bearer file-token-two-000000", p, sizeof(p)), HTTP_AUTH_OK);
    T_EQ_STR(p, "erin");
    T_EQ_INT(http_auth_check(h, "Bearer config-token-00000000", p, sizeof(p)), HTTP_AUTH_OK);
    T_EQ_STR(p, "dave");

    /* a broken file keeps the previous tokens */
    write_file(path, "bad\n");
    T_EQ_INT(http_auth_reload(h, &err), AB_INVAL);
    T_EQ_INT(http_auth_check(h, "Bearer file-token-two-000000", p, sizeof(p)), HTTP_AUTH_OK);
    unlink(path);
    T_ASSERT(http_auth_reload(h, &err) != AB_OK);
    T_EQ_INT(http_auth_check(h, "Bearer file-token-two-000000", p, sizeof(p)), HTTP_AUTH_OK);
    http_auth_free(h);

    /* a configured but missing file is an error at startup (fail closed) */
    a.ntokens = 0;
    ab_err_clear(&err);
    T_ASSERT(http_auth_new(&a, &h, &err) != AB_OK);
    T_ASSERT(strstr(err.msg, "auth.token_file") != NULL);
    /* an empty file still means auth is on: nothing gets in */
    write_file(path, "# nobody yet\n");
    T_OK(http_auth_new(&a, &h, &err));
    T_ASSERT(http_auth_enabled(h));
    T_EQ_INT(http_auth_check(h, "Bearer config-token-00000000", p, sizeof(p)), HTTP_AUTH_INVALID);
    T_EQ_INT(http_auth_check(h, NULL, p, sizeof(p)), HTTP_AUTH_MISSING);
    http_auth_free(h);
    unlink(path);
    rmdir(dir);
}

static const struct t_case cases[] = {
    T_CASE(t_off_without_tokens),
    T_CASE(t_config_tokens),
    T_CASE(t_file_format),
    T_CASE(t_file_and_reload),
    {0},
};

T_MAIN(cases)
