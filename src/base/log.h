/*
 * log.h - server logs: one line per event on stderr (stdout belongs to the stdio transport).
 *
 *   AB_LOG_INFO("session.open", "session=%s version=%s", id, ver);
 *
 * prints, in the human format,
 *   2026-11-22T01:02:03.456Z info  session.open session=ab12 version=2025-11-25 req=7
 * and in the JSON format (--log-format json) one object per line:
 *   {"ts":"...","level":"info","event":"session.open","msg":"session=ab12 version=...","req":"7"}
 *
 * The level is checked before the arguments are evaluated. `req` is the JSON-RPC id of the
 * request the calling thread is serving (set with ab_log_set_request()), so log lines can be
 * correlated with protocol traffic. Secrets (tokens) must never be passed to these macros.
 * Each line is written with a single write(2), so lines from different threads never interleave.
 */
#ifndef AB_BASE_LOG_H
#define AB_BASE_LOG_H

enum ab_log_level {
    AB_LOG_DEBUG = 0,
    AB_LOG_INFO,
    AB_LOG_WARN,
    AB_LOG_ERROR,
    AB_LOG_OFF,
};

enum ab_log_format {
    AB_LOG_FORMAT_HUMAN = 0, /* the default */
    AB_LOG_FORMAT_JSON,      /* --log-format json: one JSON object per line */
};

extern enum ab_log_level ab_log_threshold;

void ab_log_configure(enum ab_log_level level, enum ab_log_format format, int fd);
/* Parse "debug", "info", "warn"/"warning", "error", "off". Returns -1 on an unknown name. */
int ab_log_level_parse(const char *name);
int ab_log_format_parse(const char *name);
const char *ab_log_level_name(enum ab_log_level level);

/* Thread-local correlation id (a JSON-RPC id rendered as text); NULL clears it. */
void ab_log_set_request(const char *req_id);
const char *ab_log_get_request(void);

void ab_log_write(enum ab_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define AB_LOG(level, event, ...)                                                                \
    do {                                                                                         \
        if ((level) >= ab_log_threshold)                                                         \
            ab_log_write((level), (event), __VA_ARGS__);                                         \
    } while (0)

#define AB_LOG_DEBUG(event, ...) AB_LOG(AB_LOG_DEBUG, event, __VA_ARGS__)
#define AB_LOG_INFO(event, ...)  AB_LOG(AB_LOG_INFO, event, __VA_ARGS__)
#define AB_LOG_WARN(event, ...)  AB_LOG(AB_LOG_WARN, event, __VA_ARGS__)
#define AB_LOG_ERROR(event, ...) AB_LOG(AB_LOG_ERROR, event, __VA_ARGS__)

#endif
