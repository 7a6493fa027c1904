/*
 * Tests of the local provider's wire layer: the server reads every frame from a helper as
 * untrusted input, so malformed, oversized, truncated or descriptor-stuffed datagrams must
 * be rejected cleanly, and no wait may outlive its deadline.
 */
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "base/util.h"
#include "providers/local/internal.h"
#include "support/proc.h"

static unsigned char rx[LCL_HDR + LCL_FRAME_MAX + 1];

static void pair(int sv[2])
{
    T_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
}

static void t_roundtrip(void)
{
    int sv[2];
    pair(sv);
    struct buf b;
    buf_init(&b, 0);
    lcl__wr_begin(&b, LCL_RSP_EXIT);
    T_OK(lcl__wr_i32(&b, -7));
    T_OK(lcl__wr_u64(&b, UINT64_MAX));
    T_OK(lcl__wr_str(&b, "héllo"));
    T_OK(lcl__wr_bytes(&b, "a\0b", 3));
    size_t len = lcl__wr_end(&b);
    int efd = eventfd(0, EFD_CLOEXEC);
    T_OK(lcl__send(sv[0], b.data, len, &efd, 1));
    struct lcl_frame f;
    T_EQ_INT(lcl__recv(sv[1], rx, &f), 1);
    T_EQ_INT(f.type, LCL_RSP_EXIT);
    T_EQ_INT(f.nfds, 1);
    T_ASSERT(fcntl(f.fds[0], F_GETFD) & FD_CLOEXEC);
    struct lcl_rd r;
    lcl__rd_init(&r, f.payload, f.len);
    T_EQ_INT(lcl__rd_i32(&r), -7);
    T_ASSERT(lcl__rd_u64(&r) == UINT64_MAX);
    char *s = lcl__rd_str(&r, 100);
    T_EQ_STR(s, "héllo");
    free(s);
    size_t n;
    const char *p = lcl__rd_bytes(&r, &n);
    T_EQ_INT(n, 3);
    T_ASSERT(memcmp(p, "a\0b", 3) == 0);
    T_ASSERT(lcl__rd_done(&r));
    lcl__frame_close_fds(&f);
    close(efd);
    /* the writer refuses to build a frame larger than the maximum */
    lcl__wr_begin(&b, LCL_RSP_DATA);
    char *big = calloc(1, LCL_FRAME_MAX);
    T_EQ_INT(lcl__wr_bytes(&b, big, LCL_FRAME_MAX), AB_LIMIT);
    T_OK(lcl__wr_bytes(&b, big, LCL_FRAME_MAX - 4));
    T_EQ_INT(lcl__wr_room(&b), 0);
    free(big);
    buf_cleanup(&b);
    close(sv[0]);
    close(sv[1]);
}

static void t_reader_bounds(void)
{
    /* a string claiming more bytes than the frame has */
    unsigned char p1[] = {0xff, 0xff, 0x00, 0x00, 'a', 'b'};
    struct lcl_rd r;
    lcl__rd_init(&r, p1, sizeof(p1));
    T_ASSERT(lcl__rd_str(&r, 1 << 20) == NULL);
    T_ASSERT(r.bad);
    T_EQ_INT(lcl__rd_u32(&r), 0); /* stays bad */
    /* an embedded NUL */
    unsigned char p2[] = {3, 0, 0, 0, 'a', 0, 'b'};
    lcl__rd_init(&r, p2, sizeof(p2));
    T_ASSERT(lcl__rd_str(&r, 100) == NULL);
    /* longer than the caller's maximum */
    unsigned char p3[] = {3, 0, 0, 0, 'a', 'b', 'c'};
    lcl__rd_init(&r, p3, sizeof(p3));
    T_ASSERT(lcl__rd_str(&r, 2) == NULL);
    /* trailing garbage is not "done" */
    unsigned char p4[] = {1, 0, 0, 0, 9};
    lcl__rd_init(&r, p4, sizeof(p4));
    T_EQ_INT(lcl__rd_u32(&r), 1);
    T_ASSERT(!lcl__rd_done(&r));
    /* a short integer */
    lcl__rd_init(&r, p4, 3);
    lcl__rd_u64(&r);
    T_ASSERT(r.bad);
}

static void t_malformed_datagrams(void)
{
    int sv[2];
    pair(sv);
    struct lcl_frame f;
    /* shorter than a header */
    T_EQ_INT(send(sv[0], "abc", 3, 0), 3);
    T_EQ_INT(lcl__recv(sv[1], rx, &f), -EPROTO);
    /* header length disagreeing with the datagram */
    unsigned char h[LCL_HDR + 4] = {LCL_RSP_OK, 0, 0, 0, 9, 0, 0, 0, 1, 2, 3, 4};
    T_EQ_INT(send(sv[0], h, sizeof(h), 0), (ssize_t)sizeof(h));
    T_EQ_INT(lcl__recv(sv[1], rx, &f), -EPROTO);
    /* larger than any legal frame (the kernel truncates it into our buffer) */
    size_t big = LCL_HDR + LCL_FRAME_MAX + 100;
    unsigned char *b = calloc(1, big);
    uint32_t len = (uint32_t)(big - LCL_HDR);
    memcpy(b + 4, &len, 4);
    int sz = (int)big * 2;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    T_EQ_INT(send(sv[0], b, big, 0), (ssize_t)big);
    T_EQ_INT(lcl__recv(sv[1], rx, &f), -EPROTO);
    free(b);
    /* nothing pending: non-blocking */
    T_EQ_INT(lcl__recv(sv[1], rx, &f), -EAGAIN);
    /* a zero-length datagram is EOF-like and never sent by us; EOF proper */
    close(sv[0]);
    T_EQ_INT(lcl__recv(sv[1], rx, &f), 0);
    close(sv[1]);
}

/* More descriptors than a frame may carry: all are closed, nothing leaks. */
static void t_descriptor_stuffing(void)
{
    int sv[2];
    pair(sv);
    int before = tp_count_fds();
    int fds[8];
    for (int i = 0; i < 8; i++)
        fds[i] = eventfd(0, EFD_CLOEXEC);
    unsigned char hdr[LCL_HDR] = {LCL_RSP_OK};
    struct iovec iov = {.iov_base = hdr, .iov_len = sizeof(hdr)};
    union {
        char buf[CMSG_SPACE(sizeof(fds))];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(fds));
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    T_EQ_INT(sendmsg(sv[0], &msg, 0), (ssize_t)sizeof(hdr));
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    struct lcl_frame f;
    T_EQ_INT(lcl__recv(sv[1], rx, &f), -EPROTO);
    T_EQ_INT(tp_count_fds(), before);
    close(sv[0]);
    close(sv[1]);
}

static void t_deadlines_and_cancel(void)
{
    int sv[2];
    pair(sv);
    struct lcl_frame f;
    struct ab_err err;
    ab_err_clear(&err);
    T_EQ_INT(lcl__recv_wait(sv[1], rx, &f, ab_mono_ms() + 50, -1, &err), AB_TIMEOUT);
    int efd = eventfd(1, EFD_CLOEXEC);
    T_EQ_INT(lcl__recv_wait(sv[1], rx, &f, 0, efd, &err), AB_CANCELLED);
    close(efd);
    /* a peer that never reads: sending times out instead of blocking forever */
    unsigned char *frame = calloc(1, LCL_HDR + LCL_FRAME_MAX);
    ab_status rc = AB_OK;
    for (int i = 0; i < 10000 && rc == AB_OK; i++)
        rc =
            lcl__send_wait(sv[0], frame, LCL_HDR + LCL_FRAME_MAX, NULL, 0, ab_mono_ms() + 50, &err);
    T_EQ_INT(rc, AB_TIMEOUT);
    free(frame);
    /* a peer that went away */
    close(sv[1]);
    unsigned char hdr[LCL_HDR] = {LCL_RSP_OK};
    T_EQ_INT(lcl__send_wait(sv[0], hdr, sizeof(hdr), NULL, 0, 0, &err), AB_SANDBOX);
    close(sv[0]);
}

static void t_setup_roundtrip(void)
{
    struct lcl_setup s = {0}, d;
    s.clone_flags = 0x7e020000;
    s.userns = true;
    s.uid_map = strdup("0 1000 1\n");
    s.gid_map = strdup("0 1000 1\n");
    s.deny_setgroups = true;
    char *cg[] = {"/sys/fs/cgroup/memory/x/cgroup.procs", "/sys/fs/cgroup/pids/x/cgroup.procs"};
    s.cgroup_procs = cg;
    s.ncgroup = 2;
    s.uid = s.gid = 1000;
    s.workspace = strdup("/workspace");
    s.workspace_host = strdup("/var/lib/agentbox/sandboxes/ab-x/workspace");
    s.tmp_bytes = 1 << 28;
    s.nofile = 1024;
    s.fsize = 1 << 30;
    char *binds[] = {"/opt/tools"};
    s.ro_binds = binds;
    s.nbinds = 1;
    struct buf b;
    buf_init(&b, 0);
    T_OK(lcl__setup_encode(&s, &b));
    struct lcl_frame f = {
        .type = LCL_Z_SPAWN, .payload = (unsigned char *)b.data + LCL_HDR, .len = b.len - LCL_HDR};
    T_OK(lcl__setup_decode(&d, &f));
    T_EQ_INT(d.clone_flags, s.clone_flags);
    T_EQ_STR(d.cgroup_procs[1], cg[1]);
    T_EQ_STR(d.workspace_host, s.workspace_host);
    T_EQ_STR(d.ro_binds[0], "/opt/tools");
    T_EQ_INT(d.fsize, 1 << 30);
    lcl__setup_cleanup(&d);
    /* every truncation of it is rejected */
    for (size_t cut = 0; cut < f.len; cut++) {
        struct lcl_frame g = f;
        g.len = cut;
        T_EQ_INT(lcl__setup_decode(&d, &g), AB_PROTO);
    }
    buf_cleanup(&b);
    free(s.uid_map);
    free(s.gid_map);
    free(s.workspace);
    free(s.workspace_host);
}

static const struct t_case cases[] = {
    T_CASE(t_roundtrip),
    T_CASE(t_reader_bounds),
    T_CASE(t_malformed_datagrams),
    T_CASE(t_descriptor_stuffing),
    T_CASE(t_deadlines_and_cancel),
    T_CASE(t_setup_roundtrip),
    {0},
};

T_MAIN(cases)
