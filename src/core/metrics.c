/*
 * metrics.c - see metrics.h. One mutex guards everything: a tool call records once, at its
 * end, so contention is negligible next to the call itself. Tool names come from the
 * server's own registry (a closed set), so label cardinality is bounded; unknown names are
 * still capped at MAX_TOOLS to be safe.
 */
#include "core/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

#define MAX_TOOLS   64
#define NRESULTS    5
#define NBUCKETS    16

static const char *const results[NRESULTS] = {"ok", "error", "invalid_arguments", "cancelled",
                                              "denied"};
/* Seconds; sandbox calls span sub-millisecond file reads to multi-minute commands. */
static const double buckets[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,   0.5,   1,      2.5,   5,    10,   60,    300};

struct tool_stats {
    char name[65];
    uint64_t calls[NRESULTS];
    uint64_t bucket_counts[NBUCKETS]; /* non-cumulative; summed at render time */
    uint64_t count;
    double sum;
};

struct ab_metrics {
    pthread_mutex_t lock;
    char provider[32];
    int64_t start_wall_ms;
    struct tool_stats tools[MAX_TOOLS];
    size_t ntools;
};

struct ab_metrics *metrics_new(const char *provider_kind)
{
    struct ab_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    snprintf(m->provider, sizeof(m->provider), "%s", provider_kind ? provider_kind : "none");
    m->start_wall_ms = ab_wall_ms();
    return m;
}

void metrics_free(struct ab_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void metrics_observe_call(struct ab_metrics *m, const char *tool, const char *result,
                          double seconds)
{
    if (!m || !tool)
        return;
    int r = 1;
    for (int i = 0; i < NRESULTS; i++)
        if (result && strcmp(result, results[i]) == 0)
            r = i;
    pthread_mutex_lock(&m->lock);
    struct tool_stats *t = NULL;
    for (size_t i = 0; i < m->ntools; i++)
        if (strcmp(m->tools[i].name, tool) == 0)
            t = &m->tools[i];
    if (!t && m->ntools < MAX_TOOLS) {
        t = &m->tools[m->ntools++];
        snprintf(t->name, sizeof(t->name), "%s", tool);
    }
    if (t) {
        t->calls[r]++;
        t->count++;
        t->sum += seconds;
        for (int b = 0; b < NBUCKETS; b++)
            if (seconds <= buckets[b]) {
                t->bucket_counts[b]++;
                break;
            }
    }
    pthread_mutex_unlock(&m->lock);
}

static uint64_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return 0;
    unsigned long size = 0, rss = 0;
    int n = fscanf(f, "%lu %lu", &size, &rss);
    fclose(f);
    return n == 2 ? (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static void header(struct buf *o, const char *name, const char *type, const char *help)
{
    buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric with one sample, labelled by provider. */
static void provider_metric(struct buf *o, const char *name, const char *type, const char *help,
                            const char *pv, unsigned long long value)
{
    header(o, name, type, help);
    buf_printf(o, "%s{provider=\"%s\"} %llu\n", name, pv, value);
}

ab_status metrics_render(struct ab_metrics *m, const struct metrics_sources *src,
                         struct buf *o)
{
    const char *pv = m->provider;
    header(o, "agentbox_build_info", "gauge", "Build information; the value is always 1.");
    buf_printf(o, "agentbox_build_info{version=\"%s\",provider=\"%s\"} 1\n", AGENTBOX_VERSION, pv);

    pthread_mutex_lock(&m->lock);
    header(o, "agentbox_tool_calls_total", "counter",
           "Finished tool calls by tool and result (ok, error, invalid_arguments, cancelled, "
           "denied).");
    for (size_t i = 0; i < m->ntools; i++)
        for (int r = 0; r < NRESULTS; r++)
            buf_printf(o, "agentbox_tool_calls_total{tool=\"%s\",result=\"%s\"} %llu\n",
                       m->tools[i].name, results[r], (unsigned long long)m->tools[i].calls[r]);
    header(o, "agentbox_tool_call_duration_seconds", "histogram",
           "Tool call latency from request to response.");
    for (size_t i = 0; i < m->ntools; i++) {
        const struct tool_stats *t = &m->tools[i];
        uint64_t cum = 0;
        for (int b = 0; b < NBUCKETS; b++) {
            cum += t->bucket_counts[b];
            buf_printf(o, "agentbox_tool_call_duration_seconds_bucket{tool=\"%s\",le=\"%g\"} %llu\n",
                       t->name, buckets[b], (unsigned long long)cum);
        }
        buf_printf(o, "agentbox_tool_call_duration_seconds_bucket{tool=\"%s\",le=\"+Inf\"} %llu\n",
                   t->name, (unsigned long long)t->count);
        buf_printf(o, "agentbox_tool_call_duration_seconds_sum{tool=\"%s\"} %.6f\n", t->name,
                   t->sum);
        buf_printf(o, "agentbox_tool_call_duration_seconds_count{tool=\"%s\"} %llu\n", t->name,
                   (unsigned long long)t->count);
    }
    pthread_mutex_unlock(&m->lock);

    header(o, "agentbox_tool_calls_in_flight", "gauge", "Tool calls running now.");
    buf_printf(o, "agentbox_tool_calls_in_flight %lld\n", (long long)src->calls_in_flight);

    if (src->registry) {
        const struct sbx_registry_stats *r = src->registry;
        provider_metric(o, "agentbox_sandboxes", "gauge", "Live sandboxes by provider.", pv,
                        r->live);
        provider_metric(o, "agentbox_sandbox_creates_total", "counter", "Sandboxes created.", pv,
                        r->created);
        provider_metric(o, "agentbox_sandbox_create_failures_total", "counter",
                        "Sandbox creations that failed.", pv, r->create_failed);
        provider_metric(o, "agentbox_sandboxes_reaped_total", "counter",
                        "Sandboxes deleted because their idle or absolute TTL expired.", pv,
                        r->reaped);
        provider_metric(o, "agentbox_sandboxes_deleted_total", "counter",
                        "Sandboxes deleted by sandbox_delete.", pv, r->deleted);
    }
    if (src->pool) {
        const struct sbx_pool_status *p = src->pool;
        header(o, "agentbox_pool_target", "gauge", "Configured warm pool size.");
        buf_printf(o, "agentbox_pool_target{provider=\"%s\"} %lld\n", pv, (long long)p->target);
        header(o, "agentbox_pool_ready", "gauge", "Warm sandboxes ready now.");
        buf_printf(o, "agentbox_pool_ready{provider=\"%s\"} %lld\n", pv, (long long)p->ready);
        header(o, "agentbox_pool_acquisitions_total", "counter",
               "Sandbox acquisitions by start kind (warm from the pool, or cold).");
        buf_printf(o, "agentbox_pool_acquisitions_total{provider=\"%s\",start=\"warm\"} %llu\n",
                   pv, (unsigned long long)p->acquired_warm);
        buf_printf(o, "agentbox_pool_acquisitions_total{provider=\"%s\",start=\"cold\"} %llu\n",
                   pv, (unsigned long long)p->acquired_cold);
        uint64_t all = p->acquired_warm + p->acquired_cold;
        header(o, "agentbox_pool_hit_ratio", "gauge",
               "Share of acquisitions served warm from the pool (0 when none yet).");
        buf_printf(o, "agentbox_pool_hit_ratio{provider=\"%s\"} %g\n", pv,
                   all ? (double)p->acquired_warm / (double)all : 0.0);
    }
    if (src->http_sessions >= 0) {
        header(o, "agentbox_http_sessions", "gauge", "Open Streamable HTTP sessions.");
        buf_printf(o, "agentbox_http_sessions %lld\n", (long long)src->http_sessions);
        header(o, "agentbox_http_sessions_created_total", "counter",
               "HTTP sessions created since start.");
        buf_printf(o, "agentbox_http_sessions_created_total %llu\n",
                   (unsigned long long)src->http_sessions_total);
    }
    header(o, "process_start_time_seconds", "gauge", "Start time of the process (Unix epoch).");
    buf_printf(o, "process_start_time_seconds %.3f\n", (double)m->start_wall_ms / 1000.0);
    header(o, "process_resident_memory_bytes", "gauge", "Resident memory of the server process.");
    ab_status rc = buf_printf(o, "process_resident_memory_bytes %llu\n",
                              (unsigned long long)resident_bytes());
    return rc;
}
