/*
 * metrics.h - counters and histograms for `GET /metrics`, rendered in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * Names follow Prometheus conventions: agentbox_ prefix, _total for counters, base units
 * (_seconds, _bytes). Tool-call metrics are fed by the MCP call observer; sandbox, pool and
 * session figures are pulled from their owners at render time, so nothing is counted twice.
 */
#ifndef AB_CORE_METRICS_H
#define AB_CORE_METRICS_H

#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"
#include "core/registry.h"

struct ab_metrics;

struct ab_metrics *metrics_new(const char *provider_kind);
void metrics_free(struct ab_metrics *m);

/* Record one finished tool call. result: "ok", "error", "invalid_arguments", "cancelled",
 * "denied". */
void metrics_observe_call(struct ab_metrics *m, const char *tool, const char *result,
                          double seconds);

/* Figures owned elsewhere, read at render time (any pointer may be NULL). */
struct metrics_sources {
    const struct sbx_registry_stats *registry;
    const struct sbx_pool_status *pool;
    int64_t calls_in_flight;
    int64_t http_sessions;        /* open now; -1 = not serving HTTP */
    uint64_t http_sessions_total; /* created since start */
};

/* Append the exposition text to out. */
ab_status metrics_render(struct ab_metrics *m, const struct metrics_sources *src,
                         struct buf *out);

#endif
