/*
 * log.c - line-oriented logging to one fd (stderr by default).
 *
 * The line is formatted into a stack buffer and written with one write(2); POSIX makes writes
 * of up to PIPE_BUF bytes to a pipe atomic, and for longer lines to a terminal or file a single
 * write is still the best we can do without a lock. Over-long messages are cut, not split.
 */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum ab_log_level ab_log_threshold = AB_LOG_INFO;
static enum ab_log_format log_format = AB_LOG_FORMAT_HUMAN;
static int log_fd = 2;
static __thread char log_req[64];

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void ab_log_configure(enum ab_log_level level, enum ab_log_format format, int fd)
{
    ab_log_threshold = level;
    log_format = format;
    log_fd = fd;
}

int ab_log_level_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i <= AB_LOG_OFF; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return AB_LOG_WARN;
    return -1;
}

int ab_log_format_parse(const char *name)
{
    if (!name)
        return -1;
    if (strcasecmp(name, "human") == 0 || strcasecmp(name, "text") == 0)
        return AB_LOG_FORMAT_HUMAN;
    if (strcasecmp(name, "json") == 0)
        return AB_LOG_FORMAT_JSON;
    return -1;
}

const char *ab_log_level_name(enum ab_log_level level)
{
    if ((unsigned)level > AB_LOG_OFF)
        return "?";
    return level_names[level];
}

void ab_log_set_request(const char *req_id)
{
    if (!req_id) {
        log_req[0] = '\0';
        return;
    }
    snprintf(log_req, sizeof(log_req), "%s", req_id);
}

const char *ab_log_get_request(void)
{
    return log_req[0] ? log_req : NULL;
}

/* Append s to out as the body of a JSON string (no quotes). */
static size_t json_escape_into(char *out, size_t cap, size_t pos, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)c;
        } else if (c == '\n') {
            out[pos++] = '\\';
            out[pos++] = 'n';
        } else if (c < 0x20) {
            out[pos++] = '\\';
            out[pos++] = 'u';
            out[pos++] = '0';
            out[pos++] = '0';
            out[pos++] = hex[c >> 4];
            out[pos++] = hex[c & 15];
        } else {
            out[pos++] = (char)c;
        }
    }
    return pos;
}

void ab_log_write(enum ab_log_level level, const char *event, const char *fmt, ...)
{
    int saved_errno = errno;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int mlen = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (mlen < 0)
        msg[0] = '\0';
    /* One line per event: newlines inside a message would break log parsers. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    char line[4096];
    size_t pos = 0;
    if (log_format == AB_LOG_FORMAT_JSON) {
        int n = snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"", when,
                         ab_log_level_name(level));
        pos = (size_t)(n > 0 ? n : 0);
        pos = json_escape_into(line, sizeof(line) - 32, pos, event);
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\",\"msg\":\"");
        pos = json_escape_into(line, sizeof(line) - 96, pos, msg);
        line[pos++] = '"';
        if (log_req[0]) {
            pos += (size_t)snprintf(line + pos, sizeof(line) - pos, ",\"req\":\"");
            pos = json_escape_into(line, sizeof(line) - 8, pos, log_req);
            line[pos++] = '"';
        }
        line[pos++] = '}';
        line[pos++] = '\n';
    } else {
        int n = snprintf(line, sizeof(line), "%s %-5s %s %s%s%s\n", when, ab_log_level_name(level),
                         event, msg, log_req[0] ? " req=" : "", log_req);
        if (n < 0)
            return;
        pos = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
        line[pos - 1] = '\n';
    }
    ssize_t w = write(log_fd, line, pos);
    (void)w;
    errno = saved_errno;
}
