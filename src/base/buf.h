/*
 * buf.h - growable byte buffers with a hard cap (curl's dynbuf idea).
 *
 * Every buffer is given its maximum size at init; an append that would exceed it fails with
 * AB_LIMIT and leaves the buffer unchanged, so no peer can make us allocate without bound.
 * The data is always NUL-terminated (the terminator is not counted in len), so text can be
 * handed to printf-style APIs directly; binary data with embedded NULs is fine too.
 *
 * Embedded objects: buf_init()/buf_cleanup(). buf_cleanup() of a zeroed struct is a no-op.
 */
#ifndef AB_BASE_BUF_H
#define AB_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "base/status.h"

struct buf {
    char *data;  /* NULL until the first append */
    size_t len;  /* bytes used, excluding the NUL terminator */
    size_t cap;  /* bytes allocated */
    size_t max;  /* hard cap on len */
};

void buf_init(struct buf *b, size_t max);
void buf_cleanup(struct buf *b);
/* buf_cleanup for a buffer that held a secret (a key, a token file): the memory is wiped
 * with explicit_bzero first, which, unlike memset, the compiler cannot drop before free. */
void buf_cleanup_secret(struct buf *b);
/* Forget the contents but keep the allocation. */
void buf_reset(struct buf *b);

ab_status buf_append(struct buf *b, const void *data, size_t len);
ab_status buf_append_str(struct buf *b, const char *s);
ab_status buf_append_char(struct buf *b, char c);
ab_status buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
ab_status buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Append as much of data as fits under max; returns the number of bytes appended. */
size_t buf_append_upto(struct buf *b, const void *data, size_t len);

/* Append everything fd yields until EOF (read(2) is retried on EINTR). AB_LIMIT when that
 * is more than max allows (the buffer keeps what fit); AB_IO with errno set on a read error.
 * The bounce buffer is wiped: callers read secrets (token files, keys) with it. */
ab_status buf_read_fd(struct buf *b, int fd);

/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);

/* Hand the malloc'd data to the caller (returns new, NUL-terminated, never NULL unless out
 * of memory) and reset the buffer to empty. *len_out may be NULL. */
char *buf_steal(struct buf *b, size_t *len_out);

/* Read/const view: returns "" for an empty buffer. Borrowed. */
const char *buf_cstr(const struct buf *b);

#endif
