/*
 * batch.c - see batch.h. The array is sent when the last expected response arrives; a
 * request that is cancelled (no response) counts as answered with nothing, so the array may
 * hold fewer entries than requests, as JSON-RPC permits for notifications.
 */
#include "mcp/batch.h"

#include <pthread.h>
#include <stdlib.h>

struct batch_stream {
    struct mcp_stream base; /* first member */
    struct mcp_stream *down;
    pthread_mutex_t lock;
    json_t *responses;
    size_t expected;
    size_t got;
};

static void batch_flush_locked(struct batch_stream *b)
{
    if (b->got == b->expected && b->responses) {
        json_t *arr = b->responses;
        b->responses = NULL;
        pthread_mutex_unlock(&b->lock);
        if (json_array_size(arr) > 0)
            b->down->ops->send(b->down, arr, true);
        else if (b->down->ops->end)
            b->down->ops->end(b->down);
        json_decref(arr);
        pthread_mutex_lock(&b->lock);
    }
}

static ab_status batch_send(struct mcp_stream *st, const json_t *msg, bool final)
{
    struct batch_stream *b = (struct batch_stream *)st;
    if (!final)
        return b->down->ops->send(b->down, msg, false);
    pthread_mutex_lock(&b->lock);
    if (b->responses)
        json_array_append(b->responses, (json_t *)msg);
    b->got++;
    batch_flush_locked(b);
    pthread_mutex_unlock(&b->lock);
    return AB_OK;
}

static void batch_end(struct mcp_stream *st)
{
    struct batch_stream *b = (struct batch_stream *)st;
    pthread_mutex_lock(&b->lock);
    b->got++;
    batch_flush_locked(b);
    pthread_mutex_unlock(&b->lock);
}

static void batch_disconnect(struct mcp_stream *st)
{
    struct batch_stream *b = (struct batch_stream *)st;
    if (b->down->ops->disconnect)
        b->down->ops->disconnect(b->down);
}

static void batch_free(struct mcp_stream *st)
{
    struct batch_stream *b = (struct batch_stream *)st;
    mcp_stream_unref(b->down);
    json_decref(b->responses);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static const struct mcp_stream_ops batch_ops = {
    .send = batch_send,
    .end = batch_end,
    .disconnect = batch_disconnect,
    .free = batch_free,
};

struct mcp_stream *mcp_batch_stream_new(struct mcp_stream *downstream, size_t expected)
{
    struct batch_stream *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    mcp_stream_init(&b->base, &batch_ops);
    b->down = downstream;
    mcp_stream_ref(downstream);
    pthread_mutex_init(&b->lock, NULL);
    b->responses = json_array();
    b->expected = expected;
    return &b->base;
}

void mcp_batch_add(struct mcp_stream *batch, const json_t *response)
{
    batch_send(batch, response, true);
}
