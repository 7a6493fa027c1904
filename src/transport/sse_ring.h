/*
 * sse_ring.h - the per-session replay buffer behind SSE resumption (MCP 2025-11-25
 * basic/transports "Resumability and Redelivery").
 *
 * Every event the HTTP transport writes on an SSE stream is also pushed here, tagged with
 * the stream it belongs to and a per-session sequence number. A client that reconnects with
 * `Last-Event-ID: <stream, seq>` gets exactly the events of *that* stream with a larger
 * sequence number ("MUST NOT replay messages that would have been delivered on a different
 * stream"). The ring belongs to one session, so nothing can ever be replayed across
 * sessions (the cross-session replay bug GHSA-84j6-jc92-77jm cannot happen by construction).
 *
 * Bounded twice: at most max_events events and max_bytes bytes; the oldest events are
 * evicted first. An event larger than max_bytes is not stored at all. The entry array grows
 * on demand up to max_events, so idle sessions cost nothing.
 *
 * Not thread-safe: the owner (the HTTP session) holds its lock around every call.
 */
#ifndef AB_TRANSPORT_SSE_RING_H
#define AB_TRANSPORT_SSE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

struct sse_event {
    uint64_t stream; /* which SSE stream of the session carried it */
    uint64_t seq;    /* per-session sequence number, strictly increasing */
    char *data;      /* the complete SSE event text, ready to write */
    size_t len;
};

struct sse_ring {
    struct sse_event *ev; /* circular, `alloc` slots */
    size_t alloc;
    size_t head; /* index of the oldest event */
    size_t count;
    size_t bytes; /* sum of len */
    size_t max_events;
    size_t max_bytes;
    uint64_t evicted_seq; /* largest seq evicted (or refused) so far; 0 = none */
};

void sse_ring_init(struct sse_ring *r, size_t max_events, size_t max_bytes);
void sse_ring_cleanup(struct sse_ring *r);

/* Store a copy of data. seq must be larger than every seq pushed before. Evicts the oldest
 * events to make room. AB_LIMIT when len alone exceeds max_bytes (or max_events is 0): the
 * event is not stored and counts as evicted. AB_NOMEM on allocation failure. */
ab_status sse_ring_push(struct sse_ring *r, uint64_t stream, uint64_t seq, const char *data,
                        size_t len);

/* Visit, oldest first, the events of `stream` with seq > after_seq. Returns how many were
 * visited. The event is borrowed for the duration of the callback. */
typedef void (*sse_ring_visit_cb)(void *arg, const struct sse_event *ev);
size_t sse_ring_replay(const struct sse_ring *r, uint64_t stream, uint64_t after_seq,
                       sse_ring_visit_cb cb, void *arg);

/* Drop every event of `stream`: its final message has been delivered, so nobody will ask
 * for them again. This does not count as an eviction (a resumption of another stream is
 * not affected). Returns how many were dropped. */
size_t sse_ring_forget(struct sse_ring *r, uint64_t stream);

/* true when events with seq > after_seq may have been evicted (of any stream): a replay
 * from after_seq may then have gaps. */
bool sse_ring_may_have_lost(const struct sse_ring *r, uint64_t after_seq);

#endif
