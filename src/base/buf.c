/*
 * buf.c - capped growable buffers. Growth doubles the allocation (amortised O(1) appends) but
 * never allocates beyond max + 1 (for the terminator).
 */
#include "base/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void buf_cleanup(struct buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_cleanup_secret(struct buf *b)
{
    if (b && b->data)
        explicit_bzero(b->data, b->cap);
    buf_cleanup(b);
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static ab_status buf_reserve(struct buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return AB_LIMIT;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return AB_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > (SIZE_MAX / 2) ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    if (cap < need)
        cap = need;
    char *p = realloc(b->data, cap);
    if (!p)
        return AB_NOMEM;
    b->data = p;
    b->cap = cap;
    return AB_OK;
}

ab_status buf_append(struct buf *b, const void *data, size_t len)
{
    ab_status rc = buf_reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return AB_OK;
}

ab_status buf_read_fd(struct buf *b, int fd)
{
    char chunk[4096];
    ab_status rc = AB_OK;
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? AB_IO : AB_OK;
            break;
        }
        if ((rc = buf_append(b, chunk, (size_t)r)))
            break;
    }
    explicit_bzero(chunk, sizeof(chunk)); /* leaves errno alone */
    return rc;
}

ab_status buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

ab_status buf_append_char(struct buf *b, char c)
{
    return buf_append(b, &c, 1);
}

size_t buf_append_upto(struct buf *b, const void *data, size_t len)
{
    size_t room = b->max > b->len ? b->max - b->len : 0;
    size_t n = len < room ? len : room;
    if (n && buf_append(b, data, n) != AB_OK)
        return 0;
    return n;
}

ab_status buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return AB_INVAL;
    ab_status rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return AB_OK;
}

ab_status buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ab_status rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *buf_steal(struct buf *b, size_t *len_out)
{
    char *p = b->data;
    if (!p) {
        p = malloc(1);
        if (!p)
            return NULL;
        p[0] = '\0';
    }
    if (len_out)
        *len_out = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

const char *buf_cstr(const struct buf *b)
{
    return b->data ? b->data : "";
}
