/*
 * status.c - status names and error-detail helpers. See status.h for the model.
 */
#include "base/status.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[AB_STATUS_COUNT] = {
    [AB_OK] = "ok",
    [AB_NOMEM] = "nomem",
    [AB_INVAL] = "inval",
    [AB_IO] = "io",
    [AB_LIMIT] = "limit",
    [AB_PROTO] = "proto",
    [AB_TIMEOUT] = "timeout",
    [AB_NOTFOUND] = "notfound",
    [AB_EXISTS] = "exists",
    [AB_DENIED] = "denied",
    [AB_ISDIR] = "isdir",
    [AB_NOTDIR] = "notdir",
    [AB_CANCELLED] = "cancelled",
    [AB_UNSUPPORTED] = "unsupported",
    [AB_BUSY] = "busy",
    [AB_K8S] = "k8s",
    [AB_SANDBOX] = "sandbox",
    [AB_INTERNAL] = "internal",
};

const char *ab_status_name(ab_status code)
{
    if ((unsigned)code >= AB_STATUS_COUNT)
        return "unknown";
    return status_names[code];
}

void ab_err_clear(struct ab_err *err)
{
    if (!err)
        return;
    err->code = AB_OK;
    err->sys_errno = 0;
    err->msg[0] = '\0';
}

__attribute__((format(printf, 4, 0))) static void err_vset(struct ab_err *err, ab_status code,
                                                          int errnum, const char *fmt, va_list ap)
{
    err->code = code;
    err->sys_errno = errnum;
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    if (n < 0)
        n = 0;
    if (errnum) {
        size_t used = (size_t)n < sizeof(err->msg) ? (size_t)n : sizeof(err->msg) - 1;
        snprintf(err->msg + used, sizeof(err->msg) - used, ": %s", strerror(errnum));
    }
    if (err->msg[0] == '\0')
        snprintf(err->msg, sizeof(err->msg), "%s", ab_status_name(code));
}

ab_status ab_err_set(struct ab_err *err, ab_status code, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, code, 0, fmt, ap);
    va_end(ap);
    return code;
}

ab_status ab_err_sys(struct ab_err *err, ab_status code, int errnum, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, code, errnum, fmt, ap);
    va_end(ap);
    return code;
}

ab_status ab_err_wrap(struct ab_err *err, const char *fmt, ...)
{
    if (!err)
        return AB_INTERNAL;
    char prefix[256];
    char old[AB_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
    return err->code;
}

ab_status ab_status_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return AB_OK;
    case ENOMEM:
        return AB_NOMEM;
    case ENOENT:
        return AB_NOTFOUND;
    case EEXIST:
        return AB_EXISTS;
    case EACCES:
    case EPERM:
    case EROFS:
        return AB_DENIED;
    case EISDIR:
        return AB_ISDIR;
    case ENOTDIR:
        return AB_NOTDIR;
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP:
        return AB_INVAL;
    case ETIMEDOUT:
        return AB_TIMEOUT;
    case EFBIG:
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
        return AB_LIMIT;
    case EAGAIN:
        return AB_BUSY;
    case ENOSYS:
    case EOPNOTSUPP:
        return AB_UNSUPPORTED;
    default:
        return AB_IO;
    }
}
