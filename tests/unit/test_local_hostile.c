/*
 * The server against a hostile helper. A command runs in the same PID namespace as its
 * sandbox's helper, so the server must assume a helper can be taken over and treat every
 * byte from it as untrusted: malformed or oversized frames, lies about sizes and exit codes,
 * descriptors it should not send, or silence. None of that may crash or hang the server;
 * the operation fails and the helper is dropped.
 *
 * This executable is its own fake spawner: the provider execs it with `__sandbox-helper`
 * (sbx_local_set_helper_binary(argv[0])), and main() below then speaks the spawner protocol,
 * forking a fake "helper" per sandbox whose behaviour is chosen by the sandbox's name. The
 * preflight's probe sandbox gets a well-behaved READY.
 */
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "base/util.h"
#include "config/config.h"
#include "providers/local/internal.h"
#include "providers/local/local.h"
#include "support/local_fixture.h"
#include "support/proc.h"

static char g_self[4096];

/* ------------------------------------------------------------------------------------------
 * the fake side
 * ---------------------------------------------------------------------------------------- */

static unsigned char rx[LCL_HDR + LCL_FRAME_MAX + 1];

/* Send a frame, waiting while the socket is full (lcl__send never blocks). */
static void send_buf(int fd, struct buf *b)
{
    size_t len = lcl__wr_end(b);
    while (lcl__send(fd, b->data, len, NULL, 0) == -EAGAIN) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, 1000);
    }
}

static void send_ready(int fd)
{
    struct buf b;
    buf_init(&b, 0);
    lcl__wr_begin(&b, LCL_H_READY);
    lcl__wr_u32(&b, LCL_WIRE_VERSION);
    lcl__wr_i64(&b, 1024);
    lcl__wr_i64(&b, 128);
    lcl__wr_i64(&b, -1);
    send_buf(fd, &b);
    buf_cleanup(&b);
}

/* Wait for the server's first request on a new channel; returns the channel fd. */
static int accept_channel(int ctl)
{
    struct pollfd p = {.fd = ctl, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0)
        _exit(0);
    struct lcl_frame f;
    if (lcl__recv(ctl, rx, &f) != 1 || f.type != LCL_H_NEW_CHANNEL || f.nfds != 1)
        _exit(0);
    int ch = f.fds[0];
    p.fd = ch;
    if (poll(&p, 1, 10000) <= 0)
        _exit(0);
    while (lcl__recv(ch, rx, &f) == 1 && f.type == LCL_REQ_CONT)
        ; /* the request itself: ignored, we answer badly whatever it is */
    return ch;
}

static void hostile_helper(int ctl, const char *mode)
{
    struct buf b;
    buf_init(&b, 0);
    if (strcmp(mode, "badready") == 0) {
        unsigned char junk[] = {LCL_H_READY, 0, 0, 0, 200, 0, 0, 0, 1, 2, 3};
        (void)send(ctl, junk, sizeof(junk), 0);
        pause();
    }
    if (strcmp(mode, "hugeframe") == 0) {
        size_t n = LCL_HDR + LCL_FRAME_MAX + 4096;
        unsigned char *big = calloc(1, n);
        uint32_t len = (uint32_t)(n - LCL_HDR);
        big[0] = LCL_H_READY;
        memcpy(big + 4, &len, 4);
        int sz = (int)n * 2;
        setsockopt(ctl, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        (void)send(ctl, big, n, 0);
        pause();
    }
    if (strcmp(mode, "setuperr") == 0) {
        lcl__wr_begin(&b, LCL_H_SETUP_ERROR);
        lcl__wr_str(&b, "mount \x1b[31m/proc\x07 evil");
        lcl__wr_i32(&b, EPERM);
        send_buf(ctl, &b);
        pause();
    }
    send_ready(ctl);
    int ch = accept_channel(ctl);
    if (strcmp(mode, "flood") == 0) {
        /* far more output than the cap, then an exit code no process can have */
        char chunk[60000];
        memset(chunk, 'z', sizeof(chunk));
        for (int i = 0; i < 200; i++) {
            lcl__wr_begin(&b, LCL_RSP_OUTPUT);
            lcl__wr_bytes(&b, chunk, sizeof(chunk));
            send_buf(ch, &b);
        }
        lcl__wr_begin(&b, LCL_RSP_EXIT);
        lcl__wr_i32(&b, 99999);
        lcl__wr_i32(&b, 0);
        lcl__wr_u8(&b, 0);
        lcl__wr_u64(&b, 0);
        lcl__wr_i64(&b, 0);
        send_buf(ch, &b);
    } else if (strcmp(mode, "badcode") == 0) {
        lcl__wr_begin(&b, LCL_RSP_ERROR);
        lcl__wr_u32(&b, 0); /* "OK" as an error code */
        lcl__wr_i32(&b, 0);
        lcl__wr_str(&b, "nothing");
        send_buf(ch, &b);
    } else if (strcmp(mode, "fds") == 0) {
        int e = eventfd(0, EFD_CLOEXEC);
        lcl__wr_begin(&b, LCL_RSP_STAT);
        size_t len = lcl__wr_end(&b);
        (void)lcl__send(ch, b.data, len, &e, 1);
    } else if (strcmp(mode, "liar") == 0) {
        /* a read that returns more than asked for */
        char chunk[1000];
        memset(chunk, 'l', sizeof(chunk));
        for (int i = 0; i < 5; i++) {
            lcl__wr_begin(&b, LCL_RSP_DATA);
            lcl__wr_bytes(&b, chunk, sizeof(chunk));
            send_buf(ch, &b);
        }
    } else if (strcmp(mode, "entries") == 0) {
        /* a listing that claims more entries than the frame holds */
        lcl__wr_begin(&b, LCL_RSP_ENTRIES);
        lcl__wr_u32(&b, 5000);
        lcl__wr_str(&b, "a");
        send_buf(ch, &b);
    } else if (strcmp(mode, "hangup") == 0) {
        _exit(0); /* mid-request */
    } else if (strcmp(mode, "zero") == 0) {
        (void)send(ch, "", 0, 0); /* an empty datagram, which we never send */
    }
    pause();
    _exit(0);
}

static int fake_spawner(void)
{
    syscall(SYS_close_range, 4u, ~0u, 0u);
    signal(SIGCHLD, SIG_IGN); /* no zombies */
    struct buf b;
    buf_init(&b, 0);
    lcl__wr_begin(&b, LCL_Z_HELLO);
    lcl__wr_u32(&b, LCL_WIRE_VERSION);
    lcl__wr_u8(&b, 1);
    lcl__wr_str(&b, "");
    send_buf(3, &b);
    for (;;) {
        struct pollfd p = {.fd = 3, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            _exit(1);
        struct lcl_frame f;
        int r = lcl__recv(3, rx, &f);
        if (r == -EAGAIN)
            continue;
        if (r <= 0)
            _exit(0);
        struct lcl_setup s;
        if (f.type != LCL_Z_SPAWN || f.nfds != 1 || lcl__setup_decode(&s, &f))
            _exit(1);
        /* the sandbox's name (the directory above workspace/) picks the behaviour */
        char mode[64] = "good";
        const char *ws = s.workspace_host;
        const char *end = strrchr(ws, '/');
        const char *start = end;
        while (start > ws && start[-1] != '/')
            start--;
        if (end && ab_starts_with(start, "ab-"))
            snprintf(mode, sizeof(mode), "%.*s", (int)(end - start - 3), start + 3);
        pid_t pid = fork();
        if (pid == 0) {
            close(3);
            if (strcmp(mode, "good") == 0 || ab_starts_with(start, "probe-")) {
                send_ready(f.fds[0]);
                pause();
            }
            hostile_helper(f.fds[0], mode);
            _exit(0);
        }
        close(f.fds[0]);
        lcl__wr_begin(&b, LCL_Z_SPAWNED);
        lcl__wr_i32(&b, pid);
        send_buf(3, &b); /* no pidfd: the server then relies on the socket */
        lcl__setup_cleanup(&s);
    }
}

/* ------------------------------------------------------------------------------------------
 * the server side
 * ---------------------------------------------------------------------------------------- */

static void fx_init(struct lfx *f)
{
    lfx_config(f, "test-hostile");
    lfx_set(f, "sandbox.create_timeout", "5s");
    lfx_start(f, g_self); /* the fake spawner: this test binary itself */
}

static ab_status try_create(struct lfx *f, const char *mode, struct sbx_handle **h,
                            struct ab_err *err)
{
    struct sbx_info info;
    sbx_info_init(&info);
    info.name = ab_asprintf("ab-%s", mode);
    info.principal = ab_strdup("");
    info.labels = json_object();
    struct sbx_create_req req = {.info = &info};
    ab_status rc = f->p->ops->create(f->p, &req, h, err);
    sbx_info_cleanup(&info);
    return rc;
}

static struct sbx_handle *create(struct lfx *f, const char *mode)
{
    struct sbx_handle *h;
    struct ab_err err;
    ab_err_clear(&err);
    if (try_create(f, mode, &h, &err))
        T_FAIL("create %s: %s", mode, err.msg);
    return h;
}

static void t_bad_setup(void)
{
    struct lfx f;
    fx_init(&f);
    struct ab_err err;
    struct sbx_handle *h;
    ab_err_clear(&err);
    T_EQ_INT(try_create(&f, "badready", &h, &err), AB_SANDBOX);
    T_EQ_INT(try_create(&f, "hugeframe", &h, &err), AB_SANDBOX);
    /* a setup error is reported, with its control characters defused */
    T_EQ_INT(try_create(&f, "setuperr", &h, &err), AB_SANDBOX);
    T_ASSERT(strstr(err.msg, "mount") != NULL);
    for (const char *c = err.msg; *c; c++)
        T_ASSERT((unsigned char)*c >= 0x20);
    /* nothing is left behind by the failed creates */
    struct sbx_list_page page;
    T_OK(f.p->ops->list(f.p, NULL, NULL, NULL, 0, &page, &err));
    T_EQ_INT(page.n, 0);
    sbx_list_page_cleanup(&page);
    lfx_done(&f);
}

static ab_status exec_true(struct lfx *f, struct sbx_handle *h, struct sbx_exec_result *res,
                           struct ab_err *err)
{
    /* A generous timeout: these cases test what the server makes of a lying helper, not how
     * fast 12 MB cross a socketpair on a loaded machine under ASan (it once took > 5 s). */
    struct sbx_exec_req req = {.shell = "true", .output_cap = 1000, .timeout_ms = 120000};
    sbx_exec_result_init(res);
    return f->p->ops->exec(f->p, h, &req, res, err);
}

static void t_lies_during_ops(void)
{
    struct lfx f;
    fx_init(&f);
    struct ab_err err;
    ab_err_clear(&err);
    int fds_before = tp_count_fds();
    struct sbx_exec_result res;

    /* 12 MB of output against a 1000-byte cap, then exit code 99999 */
    struct sbx_handle *h = create(&f, "flood");
    T_EQ_INT(exec_true(&f, h, &res, &err), AB_PROTO);
    T_ASSERT(res.output.len <= 1000);
    sbx_exec_result_cleanup(&res);
    T_OK(f.p->ops->destroy(f.p, h, &err));

    h = create(&f, "badcode");
    T_EQ_INT(exec_true(&f, h, &res, &err), AB_PROTO);
    sbx_exec_result_cleanup(&res);
    T_OK(f.p->ops->destroy(f.p, h, &err));

    h = create(&f, "hangup");
    T_EQ_INT(exec_true(&f, h, &res, &err), AB_SANDBOX);
    sbx_exec_result_cleanup(&res);
    json_t *st;
    T_OK(f.p->ops->status(f.p, h, &st, &err));
    T_EQ_STR(json_string_value(json_object_get(st, "state")), "dead");
    json_decref(st);
    T_OK(f.p->ops->destroy(f.p, h, &err));

    h = create(&f, "zero");
    T_EQ_INT(exec_true(&f, h, &res, &err), AB_SANDBOX);
    sbx_exec_result_cleanup(&res);
    T_OK(f.p->ops->destroy(f.p, h, &err));

    h = create(&f, "fds");
    struct sbx_stat sst;
    T_EQ_INT(f.p->ops->stat(f.p, h, "/workspace", &sst, &err), AB_PROTO);
    T_OK(f.p->ops->destroy(f.p, h, &err));

    h = create(&f, "liar");
    struct buf b;
    buf_init(&b, 1 << 20);
    T_EQ_INT(f.p->ops->read_file(f.p, h, "/workspace/f", 3000, &b, &err), AB_PROTO);
    T_EQ_INT(b.len, 0); /* the caller's buffer is untouched */
    buf_cleanup(&b);
    T_OK(f.p->ops->destroy(f.p, h, &err));

    h = create(&f, "entries");
    struct sbx_dirent *ents;
    size_t n;
    T_EQ_INT(f.p->ops->list_dir(f.p, h, "/workspace", &ents, &n, &err), AB_PROTO);
    T_OK(f.p->ops->destroy(f.p, h, &err));

    /* every descriptor the hostile helpers sent or that served them is closed again */
    T_EQ_INT(tp_count_fds(), fds_before);
    lfx_done(&f);
}

static const struct t_case cases[] = {
    T_CASE(t_bad_setup),
    T_CASE(t_lies_during_ops),
    {0},
};

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], SBX_LOCAL_HELPER_ARG) == 0)
        return fake_spawner();
    if (!realpath("/proc/self/exe", g_self)) {
        perror("realpath");
        return 1;
    }
    return t_main(cases, argc, argv);
}
