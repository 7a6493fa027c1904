/*
 * fuzz_watch.c - the Kubernetes watch-stream parser (k8s_ndjson in
 * providers/k8s/k8s_client.c): newline-delimited JSON arriving in arbitrary chunks.
 *
 * Input: two bytes choose a chunk-size pattern and the line limit, the rest is the stream.
 * The stream is fed once whole and once cut into chunks (as curl delivers it: any split,
 * including inside a line, a CRLF or a UTF-8 sequence). Both runs must see exactly the same
 * sequence of lines and end in the same state: the parser's result may not depend on where
 * the network cut the bytes. Each line is read the way the watch loop reads events (type,
 * object, metadata.resourceVersion, an ERROR's code) so odd JSON shapes are exercised too.
 */
#include <string.h>

#include "base/util.h"
#include "fuzz.h"
#include "providers/k8s/k8s_client.h"

struct seen {
    struct buf log;      /* every line, re-serialised, one per line */
    size_t events;
    size_t stop_after;   /* the callback returns false after this many lines (0 = never) */
};

static bool on_line(void *arg, json_t *line)
{
    struct seen *s = arg;
    char *text = json_dumps(line, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    FUZZ_CHECK(text, "a parsed line does not serialise");
    buf_append_str(&s->log, text);
    buf_append_char(&s->log, '\n');
    free(text);
    /* What the watch loop looks at. */
    const char *type = json_string_value(json_object_get(line, "type"));
    const json_t *obj = json_object_get(line, "object");
    if (type && json_is_object(obj)) {
        const char *rv = json_string_value(
            json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        char last_rv[64];
        if (rv)
            snprintf(last_rv, sizeof(last_rv), "%s", rv);
        if (strcmp(type, "ERROR") == 0)
            (void)json_integer_value(json_object_get(obj, "code"));
    }
    s->events++;
    return !(s->stop_after && s->events >= s->stop_after);
}

static ab_status feed(const char *data, size_t len, const size_t *chunks, size_t nchunks,
                      size_t max_line, struct seen *s, bool *stopped, char *msg, size_t cap)
{
    struct k8s_ndjson nd;
    k8s_ndjson_init(&nd, max_line);
    struct ab_err err;
    ab_err_clear(&err);
    ab_status rc = AB_OK;
    size_t off = 0, i = 0;
    while (off < len && !rc) {
        size_t n = nchunks ? chunks[i++ % nchunks] : len;
        if (n > len - off)
            n = len - off;
        rc = k8s_ndjson_feed(&nd, data + off, n, on_line, s, &err);
        off += n;
    }
    *stopped = nd.stopped;
    snprintf(msg, cap, "%s", rc ? err.msg : "");
    k8s_ndjson_cleanup(&nd);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t chunks[8];
    for (size_t i = 0; i < 8; i++)
        chunks[i] = 1 + ((data[0] >> (i % 4)) & 7) * (i + 1);
    static const size_t limits[] = {64, 1024, 65536};
    size_t max_line = limits[data[1] % 3];
    size_t stop_after = (data[1] / 3) % 5;
    const char *stream = (const char *)data + 2;
    size_t len = size - 2;

    struct seen whole = {.stop_after = stop_after}, cut = {.stop_after = stop_after};
    buf_init(&whole.log, 64u << 20);
    buf_init(&cut.log, 64u << 20);
    bool stop_whole = false, stop_cut = false;
    char msg_whole[AB_ERR_MSG_MAX], msg_cut[AB_ERR_MSG_MAX];
    ab_status rc_whole = feed(stream, len, NULL, 0, max_line, &whole, &stop_whole, msg_whole,
                              sizeof(msg_whole));
    ab_status rc_cut = feed(stream, len, chunks, 8, max_line, &cut, &stop_cut, msg_cut,
                            sizeof(msg_cut));
    FUZZ_CHECK(rc_whole == rc_cut, "whole: %d (%s), in chunks: %d (%s)", rc_whole, msg_whole,
               rc_cut, msg_cut);
    FUZZ_CHECK(stop_whole == stop_cut, "stopped: %d vs %d", stop_whole, stop_cut);
    FUZZ_CHECK(whole.events == cut.events, "%zu lines whole, %zu in chunks", whole.events,
               cut.events);
    FUZZ_CHECK(whole.log.len == cut.log.len &&
                   memcmp(buf_cstr(&whole.log), buf_cstr(&cut.log), whole.log.len) == 0,
               "different lines:\n%s\nvs\n%s", buf_cstr(&whole.log), buf_cstr(&cut.log));
    if (rc_whole)
        FUZZ_CHECK(msg_whole[0], "an error without a message");
    buf_cleanup(&whole.log);
    buf_cleanup(&cut.log);
    return 0;
}
