/* Unit tests for src/transport/sse_ring.c: the per-session SSE replay buffer. */
#include "t.h"

#include "transport/sse_ring.h"

struct seen {
    uint64_t seq[64];
    size_t n;
};

static void collect(void *arg, const struct sse_event *ev)
{
    struct seen *s = arg;
    if (s->n < 64)
        s->seq[s->n++] = ev->seq;
}

static size_t replay(struct sse_ring *r, uint64_t stream, uint64_t after, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    return sse_ring_replay(r, stream, after, collect, s);
}

static void t_replay_filters_by_stream_and_seq(void)
{
    struct sse_ring r;
    sse_ring_init(&r, 16, 1 << 20);
    T_OK(sse_ring_push(&r, 1, 1, "a", 1));
    T_OK(sse_ring_push(&r, 2, 2, "b", 1));
    T_OK(sse_ring_push(&r, 1, 3, "c", 1));
    T_OK(sse_ring_push(&r, 1, 4, "d", 1));
    T_OK(sse_ring_push(&r, 3, 5, "e", 1));
    struct seen s;
    T_EQ_INT(replay(&r, 1, 0, &s), 3);
    T_EQ_INT(s.seq[0], 1);
    T_EQ_INT(s.seq[1], 3);
    T_EQ_INT(s.seq[2], 4);
    T_EQ_INT(replay(&r, 1, 3, &s), 1);
    T_EQ_INT(s.seq[0], 4);
    T_EQ_INT(replay(&r, 1, 4, &s), 0);
    T_EQ_INT(replay(&r, 2, 0, &s), 1);
    T_EQ_INT(replay(&r, 9, 0, &s), 0); /* another stream's events never leak */
    T_ASSERT(!sse_ring_may_have_lost(&r, 0));
    sse_ring_cleanup(&r);
}

static void t_event_bound_evicts_oldest(void)
{
    struct sse_ring r;
    sse_ring_init(&r, 4, 1 << 20);
    for (uint64_t i = 1; i <= 10; i++)
        T_OK(sse_ring_push(&r, 1, i, "x", 1));
    T_EQ_INT(r.count, 4);
    struct seen s;
    T_EQ_INT(replay(&r, 1, 0, &s), 4);
    T_EQ_INT(s.seq[0], 7);
    T_EQ_INT(s.seq[3], 10);
    T_ASSERT(sse_ring_may_have_lost(&r, 5));  /* 6 was evicted */
    T_ASSERT(!sse_ring_may_have_lost(&r, 6)); /* everything after 6 is still here */
    sse_ring_cleanup(&r);
}

static void t_byte_bound_and_oversize(void)
{
    struct sse_ring r;
    sse_ring_init(&r, 100, 10);
    T_OK(sse_ring_push(&r, 1, 1, "aaaa", 4));
    T_OK(sse_ring_push(&r, 1, 2, "bbbb", 4));
    T_OK(sse_ring_push(&r, 1, 3, "cccc", 4)); /* 12 > 10: evicts seq 1 */
    T_EQ_INT(r.count, 2);
    T_EQ_INT(r.bytes, 8);
    T_EQ_INT(sse_ring_push(&r, 1, 4, "0123456789x", 11), AB_LIMIT); /* alone too big */
    T_EQ_INT(r.count, 2);
    T_ASSERT(sse_ring_may_have_lost(&r, 3)); /* seq 4 is not replayable */
    struct seen s;
    T_EQ_INT(replay(&r, 1, 0, &s), 2);
    T_EQ_INT(s.seq[0], 2);
    sse_ring_cleanup(&r);
}

static void t_data_is_copied_and_wraps(void)
{
    struct sse_ring r;
    sse_ring_init(&r, 5, 1 << 20);
    char text[16];
    for (uint64_t i = 1; i <= 23; i++) {
        snprintf(text, sizeof(text), "ev%llu", (unsigned long long)i);
        T_OK(sse_ring_push(&r, i % 2, i, text, strlen(text)));
        memset(text, 'z', sizeof(text) - 1); /* the ring owns its copy */
    }
    T_EQ_INT(r.count, 5);
    struct seen s;
    T_EQ_INT(replay(&r, 1, 0, &s), 3); /* 19, 21, 23 */
    T_EQ_INT(s.seq[0], 19);
    T_EQ_INT(s.seq[2], 23);
    /* the oldest kept event is 19 and its text is intact */
    T_EQ_STR(r.ev[r.head].data, "ev19");
    sse_ring_cleanup(&r);
    T_EQ_INT(r.count, 0);
}

/* A delivered stream is dropped whole, in a wrapped ring, without counting as an eviction;
 * the other streams keep their order and can still be replayed. */
static void t_forget_stream(void)
{
    struct sse_ring r;
    sse_ring_init(&r, 6, 1 << 20);
    for (uint64_t seq = 1; seq <= 8; seq++) /* wraps: 1 and 2 are evicted */
        T_OK(sse_ring_push(&r, seq % 2 ? 7 : 8, seq, "xy", 2));
    T_EQ_INT(r.count, 6);
    T_EQ_INT(sse_ring_forget(&r, 7), 3);
    T_EQ_INT(r.count, 3);
    T_EQ_INT(r.bytes, 6);
    struct seen s;
    T_EQ_INT(replay(&r, 7, 0, &s), 0);
    T_EQ_INT(replay(&r, 8, 0, &s), 3);
    T_EQ_INT(s.seq[0], 4);
    T_EQ_INT(s.seq[1], 6);
    T_EQ_INT(s.seq[2], 8);
    T_ASSERT(!sse_ring_may_have_lost(&r, 2)); /* only the real evictions (1, 2) count */
    T_ASSERT(sse_ring_may_have_lost(&r, 1));
    T_EQ_INT(sse_ring_forget(&r, 7), 0);
    for (uint64_t seq = 9; seq <= 12; seq++) /* the freed slots are reused */
        T_OK(sse_ring_push(&r, 9, seq, "z", 1));
    T_EQ_INT(r.count, 6);
    T_EQ_INT(replay(&r, 8, 0, &s), 2); /* 4 was evicted to make room */
    T_EQ_INT(replay(&r, 9, 0, &s), 4);
    sse_ring_cleanup(&r);
}

static void t_disabled(void)
{
    struct sse_ring r;
    sse_ring_init(&r, 0, 1 << 20);
    T_EQ_INT(sse_ring_push(&r, 1, 1, "a", 1), AB_LIMIT);
    struct seen s;
    T_EQ_INT(replay(&r, 1, 0, &s), 0);
    sse_ring_cleanup(&r);
}

static const struct t_case cases[] = {
    T_CASE(t_replay_filters_by_stream_and_seq),
    T_CASE(t_event_bound_evicts_oldest),
    T_CASE(t_byte_bound_and_oversize),
    T_CASE(t_data_is_copied_and_wraps),
    T_CASE(t_forget_stream),
    T_CASE(t_disabled),
    {0},
};

T_MAIN(cases)
