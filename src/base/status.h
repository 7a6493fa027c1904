/*
 * status.h - the one error type of the project.
 *
 * Every fallible function returns an ab_status and, when the caller passes one, fills a
 * caller-owned struct ab_err with a human-readable message (curl's CURLcode + error buffer
 * model). Codes are coarse on purpose: they decide how an error is mapped to JSON-RPC or to a
 * tool error in exactly one place (mcp/errors), while the message carries the detail.
 *
 * errno is captured by ab_err_sys() right after the failing call, never later.
 */
#ifndef AB_BASE_STATUS_H
#define AB_BASE_STATUS_H

#include <stdarg.h>
#include <stddef.h>

typedef enum {
    AB_OK = 0,
    AB_NOMEM,       /* allocation failed */
    AB_INVAL,       /* bad argument / bad input from a caller */
    AB_IO,          /* read/write/syscall failure */
    AB_LIMIT,       /* a hard cap was reached (buffer, quota, size) */
    AB_PROTO,       /* peer violated a protocol */
    AB_TIMEOUT,     /* deadline passed */
    AB_NOTFOUND,    /* named thing does not exist */
    AB_EXISTS,      /* named thing already exists */
    AB_DENIED,      /* permission / policy refusal */
    AB_ISDIR,       /* expected a file, found a directory */
    AB_NOTDIR,      /* expected a directory */
    AB_CANCELLED,   /* the caller cancelled the operation */
    AB_UNSUPPORTED, /* feature not available here */
    AB_BUSY,        /* temporarily unable; try again */
    AB_K8S,         /* Kubernetes API error */
    AB_SANDBOX,     /* the sandbox itself failed (helper died, runtime unreachable) */
    AB_INTERNAL,    /* a bug or an impossible state */
    AB_STATUS_COUNT
} ab_status;

#define AB_ERR_MSG_MAX 1024

struct ab_err {
    ab_status code;
    int sys_errno;             /* errno captured at the failure, 0 if none */
    char msg[AB_ERR_MSG_MAX];  /* NUL-terminated, never empty when code != AB_OK */
};

/* Short lower-case name ("notfound") for logs and tests. */
const char *ab_status_name(ab_status code);

/* Reset to AB_OK. */
void ab_err_clear(struct ab_err *err);

/* Record code and a printf-style message. err may be NULL. Returns code, so a caller can write
 * `return ab_err_set(err, AB_INVAL, "bad %s", x);`. */
ab_status ab_err_set(struct ab_err *err, ab_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, appending ": strerror(errnum)" and remembering errnum. */
ab_status ab_err_sys(struct ab_err *err, ab_status code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefix an existing message with more context: "ctx: old message". Keeps the code. */
ab_status ab_err_wrap(struct ab_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Map an errno value to the closest status (ENOENT -> NOTFOUND, EACCES -> DENIED, ...). */
ab_status ab_status_from_errno(int errnum);

#endif
