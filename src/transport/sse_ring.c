/*
 * sse_ring.c - bounded replay buffer for SSE resumption (see sse_ring.h).
 *
 * A circular array of (stream, seq, bytes) entries. Push appends at the tail and evicts
 * from the head until both the event count and the byte total fit; replay is a linear scan
 * filtered by stream (rings are small: a session's recent events). The array starts empty
 * and doubles up to max_events, so the thousands of sessions that never stream much stay
 * cheap.
 *
 * Rejected: one global store keyed by event id (the TS SDK's in-memory EventStore shape);
 * it needs its own locking, makes cross-session replay a matter of checking correctly
 * rather than impossible, and frees nothing when a session goes away.
 */
#include "transport/sse_ring.h"

#include <stdlib.h>
#include <string.h>

void sse_ring_init(struct sse_ring *r, size_t max_events, size_t max_bytes)
{
    memset(r, 0, sizeof(*r));
    r->max_events = max_events;
    r->max_bytes = max_bytes;
}

static struct sse_event *at(const struct sse_ring *r, size_t i)
{
    return &r->ev[(r->head + i) % r->alloc];
}

static void evict_oldest(struct sse_ring *r)
{
    struct sse_event *e = at(r, 0);
    if (e->seq > r->evicted_seq)
        r->evicted_seq = e->seq;
    r->bytes -= e->len;
    free(e->data);
    e->data = NULL;
    r->head = (r->head + 1) % r->alloc;
    r->count--;
}

void sse_ring_cleanup(struct sse_ring *r)
{
    while (r->count > 0)
        evict_oldest(r);
    free(r->ev);
    r->ev = NULL;
    r->alloc = 0;
}

/* Make room for one more entry slot (grow the array, or evict when at max_events). */
static ab_status ensure_slot(struct sse_ring *r)
{
    if (r->count < r->alloc)
        return AB_OK;
    if (r->alloc >= r->max_events) {
        evict_oldest(r);
        return AB_OK;
    }
    size_t nalloc = r->alloc ? r->alloc * 2 : 8;
    if (nalloc > r->max_events)
        nalloc = r->max_events;
    struct sse_event *nev = calloc(nalloc, sizeof(*nev));
    if (!nev)
        return AB_NOMEM;
    for (size_t i = 0; i < r->count; i++)
        nev[i] = *at(r, i);
    free(r->ev);
    r->ev = nev;
    r->alloc = nalloc;
    r->head = 0;
    return AB_OK;
}

ab_status sse_ring_push(struct sse_ring *r, uint64_t stream, uint64_t seq, const char *data,
                        size_t len)
{
    if (r->max_events == 0 || len > r->max_bytes) {
        if (seq > r->evicted_seq)
            r->evicted_seq = seq;
        return AB_LIMIT;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return AB_NOMEM;
    memcpy(copy, data, len);
    copy[len] = '\0';
    while (r->count > 0 && r->bytes + len > r->max_bytes)
        evict_oldest(r);
    ab_status rc = ensure_slot(r);
    if (rc) {
        free(copy);
        return rc;
    }
    struct sse_event *e = &r->ev[(r->head + r->count) % r->alloc];
    e->stream = stream;
    e->seq = seq;
    e->data = copy;
    e->len = len;
    r->count++;
    r->bytes += len;
    return AB_OK;
}

size_t sse_ring_replay(const struct sse_ring *r, uint64_t stream, uint64_t after_seq,
                       sse_ring_visit_cb cb, void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++) {
        const struct sse_event *e = at(r, i);
        if (e->stream == stream && e->seq > after_seq) {
            cb(arg, e);
            n++;
        }
    }
    return n;
}

bool sse_ring_may_have_lost(const struct sse_ring *r, uint64_t after_seq)
{
    return r->evicted_seq > after_seq;
}

size_t sse_ring_forget(struct sse_ring *r, uint64_t stream)
{
    /* Compact in place, oldest first: slot w never runs ahead of slot i. */
    size_t w = 0, dropped = 0;
    for (size_t i = 0; i < r->count; i++) {
        struct sse_event *e = at(r, i);
        if (e->stream == stream) {
            r->bytes -= e->len;
            free(e->data);
            e->data = NULL;
            dropped++;
            continue;
        }
        if (w != i) {
            *at(r, w) = *e;
            e->data = NULL;
        }
        w++;
    }
    r->count = w;
    return dropped;
}
