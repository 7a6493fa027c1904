/*
 * wire.c - framing and encoding of the local provider's protocol (see internal.h).
 *
 * One SOCK_SEQPACKET datagram per frame: the kernel keeps message boundaries, so there is no
 * reassembly state, and descriptors (SCM_RIGHTS) arrive with the frame they belong to.
 * Everything read from a helper is untrusted (a command may have taken the helper over):
 * frames are capped at LCL_HDR + LCL_FRAME_MAX bytes (a larger datagram is truncated by the
 * kernel and reported with MSG_TRUNC, which we treat as a protocol error), the header's
 * length must match the datagram, and every field read is bounds-checked.
 *
 * Rejected: JSON on the wire (slower on the exec round trip, awkward for bulk bytes) and a
 * stream socket (needs reassembly buffers and a way to tie descriptors to messages).
 */
#include "providers/local/internal.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"

/* ---- writer ---- */

void lcl__wr_begin(struct buf *b, uint32_t type)
{
    buf_reset(b);
    b->max = LCL_HDR + LCL_FRAME_MAX;
    unsigned char hdr[LCL_HDR] = {0};
    memcpy(hdr, &type, 4);
    /* The first append of a frame always fits: LCL_HDR < max. Allocate the whole frame
     * once so that packing a batch does not realloc repeatedly. */
    (void)buf_append(b, hdr, sizeof(hdr));
}

ab_status lcl__wr_u8(struct buf *b, uint8_t v)
{
    return buf_append(b, &v, 1);
}

ab_status lcl__wr_u32(struct buf *b, uint32_t v)
{
    return buf_append(b, &v, 4);
}

ab_status lcl__wr_i32(struct buf *b, int32_t v)
{
    return buf_append(b, &v, 4);
}

ab_status lcl__wr_u64(struct buf *b, uint64_t v)
{
    return buf_append(b, &v, 8);
}

ab_status lcl__wr_i64(struct buf *b, int64_t v)
{
    return buf_append(b, &v, 8);
}

ab_status lcl__wr_bytes(struct buf *b, const void *p, size_t n)
{
    if (n > UINT32_MAX || b->len > b->max || b->max - b->len < 4 + n)
        return AB_LIMIT;
    uint32_t len = (uint32_t)n;
    ab_status rc = buf_append(b, &len, 4);
    if (!rc && n)
        rc = buf_append(b, p, n);
    return rc;
}

ab_status lcl__wr_str(struct buf *b, const char *s)
{
    return lcl__wr_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

size_t lcl__wr_room(const struct buf *b)
{
    return b->len >= LCL_HDR + LCL_FRAME_MAX ? 0 : LCL_HDR + LCL_FRAME_MAX - b->len;
}

size_t lcl__wr_end(struct buf *b)
{
    uint32_t len = (uint32_t)(b->len - LCL_HDR);
    memcpy(b->data + 4, &len, 4);
    return b->len;
}

ab_status lcl__wr_error(struct buf *b, ab_status code, int errnum, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lcl__wr_begin(b, LCL_RSP_ERROR);
    ab_status rc = lcl__wr_u32(b, (uint32_t)code);
    if (!rc)
        rc = lcl__wr_i32(b, errnum);
    if (!rc)
        rc = lcl__wr_str(b, msg);
    lcl__wr_end(b);
    return rc;
}

/* ---- reader ---- */

void lcl__rd_init(struct lcl_rd *r, const void *payload, size_t len)
{
    r->p = payload;
    r->left = len;
    r->bad = false;
}

static const unsigned char *rd_take(struct lcl_rd *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

/* The fixed-size readers differ only in their type: native byte order (both ends are this
 * binary on this host), 0 once the payload is short (r->bad says so). */
#define RD_FIXED(name, type)                                                                       \
    type name(struct lcl_rd *r)                                                                    \
    {                                                                                              \
        type v = 0;                                                                                \
        const unsigned char *p = rd_take(r, sizeof(v));                                            \
        if (p)                                                                                     \
            memcpy(&v, p, sizeof(v));                                                              \
        return v;                                                                                  \
    }

RD_FIXED(lcl__rd_u8, uint8_t)
RD_FIXED(lcl__rd_u32, uint32_t)
RD_FIXED(lcl__rd_i32, int32_t)
RD_FIXED(lcl__rd_u64, uint64_t)
RD_FIXED(lcl__rd_i64, int64_t)

const void *lcl__rd_bytes(struct lcl_rd *r, size_t *len)
{
    uint32_t n = lcl__rd_u32(r);
    const unsigned char *p = rd_take(r, n);
    *len = p ? n : 0;
    return p ? p : (const void *)"";
}

char *lcl__rd_str(struct lcl_rd *r, size_t max)
{
    size_t n;
    const char *p = lcl__rd_bytes(r, &n);
    if (r->bad)
        return NULL;
    if (n > max || memchr(p, '\0', n)) {
        r->bad = true;
        return NULL;
    }
    char *s = ab_strndup(p, n);
    if (!s)
        r->bad = true;
    return s;
}

bool lcl__rd_done(const struct lcl_rd *r)
{
    return !r->bad && r->left == 0;
}

/* ---- socket I/O ---- */

int lcl__send(int fd, const void *frame, size_t len, const int *fds, size_t nfds)
{
    struct iovec iov = {.iov_base = (void *)frame, .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int) * LCL_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    if (nfds) {
        if (nfds > LCL_MAX_FDS)
            return -EINVAL;
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    for (;;) {
        /* MSG_NOSIGNAL: a peer that went away must give EPIPE, not kill us (send(2)). */
        ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0)
            return (size_t)w == len ? 0 : -EPROTO;
        if (errno != EINTR)
            return -errno;
    }
}

void lcl__frame_close_fds(struct lcl_frame *f)
{
    for (size_t i = 0; i < f->nfds; i++)
        if (f->fds[i] >= 0)
            close(f->fds[i]);
    f->nfds = 0;
}

int lcl__recv(int fd, unsigned char *rxbuf, struct lcl_frame *f)
{
    /* One byte more than the largest legal frame, so an oversized datagram is detected
     * even where MSG_TRUNC reporting would be missed. */
    struct iovec iov = {.iov_base = rxbuf, .iov_len = LCL_HDR + LCL_FRAME_MAX + 1};
    union {
        char buf[CMSG_SPACE(sizeof(int) * LCL_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = ctl.buf,
        .msg_controllen = sizeof(ctl.buf),
    };
    f->nfds = 0;
    for (size_t i = 0; i < LCL_MAX_FDS; i++)
        f->fds[i] = -1;
    ssize_t r;
    for (;;) {
        /* MSG_CMSG_CLOEXEC: received descriptors must not leak into a later exec. */
        r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (r >= 0)
            break;
        if (errno != EINTR)
            return -errno;
    }
    bool bad = false;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            bad = true;
            continue;
        }
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int rfd;
            memcpy(&rfd, data + i * sizeof(int), sizeof(int));
            if (f->nfds < LCL_MAX_FDS)
                f->fds[f->nfds++] = rfd;
            else {
                close(rfd);
                bad = true;
            }
        }
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
        bad = true;
    if (r == 0 && !f->nfds)
        return 0; /* EOF: we never send empty datagrams */
    if (!bad && (size_t)r >= LCL_HDR && (size_t)r <= LCL_HDR + LCL_FRAME_MAX) {
        uint32_t len;
        memcpy(&f->type, rxbuf, 4);
        memcpy(&len, rxbuf + 4, 4);
        if (len == (size_t)r - LCL_HDR) {
            f->payload = rxbuf + LCL_HDR;
            f->len = len;
            return 1;
        }
    }
    lcl__frame_close_fds(f);
    return -EPROTO;
}

static int wait_fd(int fd, short events, int64_t deadline_ms, int cancel_fd)
{
    for (;;) {
        int timeout = -1;
        if (deadline_ms) {
            int64_t left = deadline_ms - ab_mono_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            timeout = left > INT32_MAX ? INT32_MAX : (int)left;
        }
        struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = cancel_fd, .events = POLLIN}};
        int n = poll(p, cancel_fd >= 0 ? 2 : 1, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            continue; /* re-check the deadline */
        if (cancel_fd >= 0 && (p[1].revents & POLLIN))
            return -ECANCELED;
        if (p[0].revents)
            return 0;
    }
}

ab_status lcl__send_wait(int fd, const void *frame, size_t len, const int *fds, size_t nfds,
                         int64_t deadline_ms, struct ab_err *err)
{
    for (;;) {
        int r = lcl__send(fd, frame, len, fds, nfds);
        if (r == 0)
            return AB_OK;
        if (r != -EAGAIN) {
            if (r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN)
                return ab_err_set(err, AB_SANDBOX, "the sandbox helper has exited");
            return ab_err_sys(err, AB_IO, -r, "cannot send to the sandbox helper");
        }
        int w = wait_fd(fd, POLLOUT, deadline_ms, -1);
        if (w == -ETIMEDOUT)
            return ab_err_set(err, AB_TIMEOUT, "the sandbox helper is not reading its requests");
        if (w < 0)
            return ab_err_sys(err, AB_IO, -w, "waiting for the sandbox helper");
    }
}

ab_status lcl__recv_wait(int fd, unsigned char *rxbuf, struct lcl_frame *f, int64_t deadline_ms,
                         int cancel_fd, struct ab_err *err)
{
    for (;;) {
        int r = lcl__recv(fd, rxbuf, f);
        if (r == 1)
            return AB_OK;
        if (r == 0 || r == -ECONNRESET)
            return ab_err_set(err, AB_SANDBOX, "the sandbox helper has exited");
        if (r == -EPROTO)
            return ab_err_set(err, AB_PROTO, "the sandbox helper sent a malformed message");
        if (r != -EAGAIN)
            return ab_err_sys(err, AB_IO, -r, "cannot receive from the sandbox helper");
        int w = wait_fd(fd, POLLIN, deadline_ms, cancel_fd);
        if (w == -ETIMEDOUT)
            return ab_err_set(err, AB_TIMEOUT, "the sandbox helper did not answer in time");
        if (w == -ECANCELED)
            return ab_err_set(err, AB_CANCELLED, "cancelled");
        if (w < 0)
            return ab_err_sys(err, AB_IO, -w, "waiting for the sandbox helper");
    }
}

/* ---- the setup request ---- */

void lcl__setup_cleanup(struct lcl_setup *s)
{
    free(s->uid_map);
    free(s->gid_map);
    for (size_t i = 0; i < s->ncgroup; i++)
        free(s->cgroup_procs[i]);
    free(s->cgroup_procs);
    free(s->workspace);
    free(s->workspace_host);
    for (size_t i = 0; i < s->nbinds; i++)
        free(s->ro_binds[i]);
    free(s->ro_binds);
    memset(s, 0, sizeof(*s));
}

ab_status lcl__setup_encode(const struct lcl_setup *s, struct buf *b)
{
    lcl__wr_begin(b, LCL_Z_SPAWN);
    ab_status rc = lcl__wr_u32(b, LCL_WIRE_VERSION);
    rc = rc ? rc : lcl__wr_u32(b, s->clone_flags);
    rc = rc ? rc : lcl__wr_u8(b, s->userns);
    rc = rc ? rc : lcl__wr_str(b, s->uid_map);
    rc = rc ? rc : lcl__wr_str(b, s->gid_map);
    rc = rc ? rc : lcl__wr_u8(b, s->deny_setgroups);
    rc = rc ? rc : lcl__wr_u32(b, (uint32_t)s->ncgroup);
    for (size_t i = 0; i < s->ncgroup && !rc; i++)
        rc = lcl__wr_str(b, s->cgroup_procs[i]);
    rc = rc ? rc : lcl__wr_u32(b, s->uid);
    rc = rc ? rc : lcl__wr_u32(b, s->gid);
    rc = rc ? rc : lcl__wr_str(b, s->workspace);
    rc = rc ? rc : lcl__wr_str(b, s->workspace_host);
    rc = rc ? rc : lcl__wr_u8(b, s->net_host);
    rc = rc ? rc : lcl__wr_u8(b, s->seccomp);
    rc = rc ? rc : lcl__wr_u64(b, s->tmp_bytes);
    rc = rc ? rc : lcl__wr_u64(b, s->shm_bytes);
    rc = rc ? rc : lcl__wr_i64(b, s->nofile);
    rc = rc ? rc : lcl__wr_i64(b, s->nproc);
    rc = rc ? rc : lcl__wr_i64(b, s->cpu_seconds);
    rc = rc ? rc : lcl__wr_u64(b, s->fsize);
    rc = rc ? rc : lcl__wr_u32(b, (uint32_t)s->nbinds);
    for (size_t i = 0; i < s->nbinds && !rc; i++)
        rc = lcl__wr_str(b, s->ro_binds[i]);
    lcl__wr_end(b);
    return rc;
}

static char **rd_strv(struct lcl_rd *r, size_t n)
{
    if (r->bad || n > 64) {
        r->bad = true;
        return NULL;
    }
    char **v = calloc(n + 1, sizeof(char *));
    if (!v) {
        r->bad = true;
        return NULL;
    }
    for (size_t i = 0; i < n && !r->bad; i++)
        v[i] = lcl__rd_str(r, LCL_STR_MAX);
    return v;
}

ab_status lcl__setup_decode(struct lcl_setup *s, const struct lcl_frame *f)
{
    memset(s, 0, sizeof(*s));
    struct lcl_rd r;
    lcl__rd_init(&r, f->payload, f->len);
    if (lcl__rd_u32(&r) != LCL_WIRE_VERSION)
        return AB_PROTO;
    s->clone_flags = lcl__rd_u32(&r);
    s->userns = lcl__rd_u8(&r);
    s->uid_map = lcl__rd_str(&r, 256);
    s->gid_map = lcl__rd_str(&r, 256);
    s->deny_setgroups = lcl__rd_u8(&r);
    s->ncgroup = lcl__rd_u32(&r);
    s->cgroup_procs = rd_strv(&r, s->ncgroup);
    s->uid = lcl__rd_u32(&r);
    s->gid = lcl__rd_u32(&r);
    s->workspace = lcl__rd_str(&r, LCL_STR_MAX);
    s->workspace_host = lcl__rd_str(&r, LCL_STR_MAX);
    s->net_host = lcl__rd_u8(&r);
    s->seccomp = lcl__rd_u8(&r);
    s->tmp_bytes = lcl__rd_u64(&r);
    s->shm_bytes = lcl__rd_u64(&r);
    s->nofile = lcl__rd_i64(&r);
    s->nproc = lcl__rd_i64(&r);
    s->cpu_seconds = lcl__rd_i64(&r);
    s->fsize = lcl__rd_u64(&r);
    s->nbinds = lcl__rd_u32(&r);
    s->ro_binds = rd_strv(&r, s->nbinds);
    if (!lcl__rd_done(&r)) {
        if (!s->cgroup_procs)
            s->ncgroup = 0;
        if (!s->ro_binds)
            s->nbinds = 0;
        lcl__setup_cleanup(s);
        return AB_PROTO;
    }
    return AB_OK;
}
