/*
 * audit.h - the audit log: one JSON object per tool call, one line each, to a file (rotated
 * by size) or stderr.
 *
 * A line holds: time, principal, session, thread, sandbox, tool, a SHA-256 digest of the
 * canonical arguments (never the arguments themselves: they may hold secrets or whole
 * files), the result code, the result size in bytes, the duration, and the policy decision.
 * Each line is written with one write(2) on an O_APPEND descriptor under a mutex, so lines
 * are never interleaved or torn between writers.
 */
#ifndef AB_CORE_AUDIT_H
#define AB_CORE_AUDIT_H

#include <jansson.h>
#include <stdint.h>

#include "base/status.h"

struct audit;

/* path "-" = stderr. max_bytes 0 = never rotate. keep = rotated files kept. */
ab_status audit_open(const char *path, uint64_t max_bytes, int keep, struct audit **out,
                     struct ab_err *err);
void audit_close(struct audit *a);

struct audit_record {
    int64_t time_ms;      /* wall clock */
    const char *principal;
    const char *session;
    const char *thread;
    const char *sandbox;  /* may be NULL */
    const char *tool;
    const json_t *args;   /* digested, not logged */
    const char *result;   /* ok, error, invalid_arguments, cancelled, denied */
    uint64_t bytes;       /* size of the result content */
    int64_t duration_us;
    const char *decision; /* policy decision: allow, deny, ask:accept, ask:decline, ... */
};

void audit_write(struct audit *a, const struct audit_record *r);

/* "sha256:<hex>" of the canonical (sorted-key, compact) JSON of args, into out[72]. */
void audit_digest(const json_t *args, char out[72]);

#endif
