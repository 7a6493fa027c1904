/*
 * util.h - small helpers shared by every layer: strings, time, randomness, base64, SHA-256.
 *
 * Allocation failures are reported (NULL / AB_NOMEM), never fatal: a server that handles many
 * callers must survive one oversized request.
 */
#ifndef AB_BASE_UTIL_H
#define AB_BASE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define AB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define AB_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define AB_MAX(a, b)    ((a) > (b) ? (a) : (b))

/* ---- strings ---- */
char *ab_strdup(const char *s);                   /* returns new; NULL in -> NULL out */
char *ab_strndup(const char *s, size_t n);        /* returns new */
char *ab_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* new */
bool ab_starts_with(const char *s, const char *prefix);
bool ab_ends_with(const char *s, const char *suffix);
/* strtoll with full-string check; returns false on junk or overflow. */
bool ab_parse_i64(const char *s, int64_t *out);
/* Parse sizes such as "16MiB", "512k", "1G", "4096". */
bool ab_parse_size(const char *s, uint64_t *out);
/* true when [s, s+len) is valid UTF-8 (no overlongs, no surrogates). */
bool ab_utf8_valid(const char *s, size_t len);
/* Length of the longest prefix of s (at most len bytes) that ends on a UTF-8 boundary. */
size_t ab_utf8_trim_len(const char *s, size_t len);
/* Free a NULL-terminated vector of strings and the strings (argv, envp); NULL is a no-op. */
void ab_strv_free(char **v);
/* Wipe a NUL-terminated secret (explicit_bzero: not elided before free), then free it;
 * NULL is a no-op. */
void ab_secret_free(char *s);
/* Constant-time comparison of two byte strings (length leaks, content does not). */
bool ab_consttime_equal(const void *a, size_t alen, const void *b, size_t blen);

/* ---- time ---- */
int64_t ab_mono_ms(void);     /* CLOCK_MONOTONIC in milliseconds */
int64_t ab_mono_us(void);     /* CLOCK_MONOTONIC in microseconds */
int64_t ab_wall_ms(void);     /* CLOCK_REALTIME in milliseconds since the epoch */
/* Format epoch milliseconds as RFC 3339 UTC ("2026-11-22T01:02:03Z"); out >= 32 bytes. */
void ab_format_time(int64_t wall_ms, char *out, size_t cap);
/* Parse RFC 3339 ("2026-11-22T01:02:03Z", fractional seconds and offsets accepted). */
bool ab_parse_time(const char *s, int64_t *wall_ms_out);

/* ---- randomness (getrandom) ---- */
ab_status ab_random_bytes(void *out, size_t len);
/* Fill out with 2*nbytes lowercase hex chars + NUL. */
ab_status ab_random_hex(char *out, size_t nbytes);

/* ---- base64 (RFC 4648, standard alphabet, padded) ---- */
char *ab_base64_encode(const void *data, size_t len, size_t *out_len); /* returns new */
/* Decode; whitespace is ignored, anything else invalid -> AB_INVAL. *out is new. */
ab_status ab_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len);

/* ---- SHA-256 (FIPS 180-4) ---- */
struct ab_sha256 {
    uint32_t h[8];
    uint64_t total;
    unsigned char block[64];
    size_t used;
};
void ab_sha256_init(struct ab_sha256 *c);
void ab_sha256_update(struct ab_sha256 *c, const void *data, size_t len);
void ab_sha256_final(struct ab_sha256 *c, unsigned char out[32]);
/* One shot, lowercase hex digest into out[65]. */
void ab_sha256_hex(const void *data, size_t len, char out[65]);

#endif
