/* Unit tests for src/core/metrics.c: exposition format, counters, cumulative histograms. */
#include "t.h"

#include <stdlib.h>

#include "core/metrics.h"

/* A small validating parser for the text format: every sample line is
 * name{k="v",...} value, every name was announced by # TYPE, values parse as numbers. */
static void check_format(const char *text)
{
    char *copy = strdup(text), *save = NULL;
    char types[64][96];
    int ntypes = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# TYPE ", 7) == 0) {
            T_ASSERT(ntypes < 64);
            sscanf(line + 7, "%95s", types[ntypes++]);
            continue;
        }
        if (line[0] == '#')
            continue;
        char name[128];
        size_t n = strcspn(line, "{ ");
        T_ASSERT(n > 0 && n < sizeof(name));
        memcpy(name, line, n);
        name[n] = '\0';
        bool known = false;
        for (int i = 0; i < ntypes; i++) {
            size_t tl = strlen(types[i]);
            if (strncmp(name, types[i], tl) == 0 &&
                (name[tl] == '\0' || strcmp(name + tl, "_bucket") == 0 ||
                 strcmp(name + tl, "_sum") == 0 || strcmp(name + tl, "_count") == 0))
                known = true;
        }
        if (!known)
            T_FAIL("sample %s has no # TYPE", name);
        const char *val = strrchr(line, ' ');
        T_ASSERT(val != NULL);
        char *end;
        strtod(val + 1, &end);
        if (*end)
            T_FAIL("bad value in: %s", line);
        if (line[n] == '{')
            T_ASSERT(strchr(line, '}') != NULL);
    }
    free(copy);
}

static void t_render(void)
{
    struct ab_metrics *m = metrics_new("local");
    metrics_observe_call(m, "execute", "ok", 0.004);
    metrics_observe_call(m, "execute", "ok", 0.2);
    metrics_observe_call(m, "execute", "error", 700);
    metrics_observe_call(m, "read", "invalid_arguments", 0.0001);
    struct sbx_registry_stats rs = {.live = 3, .created = 5, .create_failed = 1, .reaped = 2};
    struct sbx_pool_status ps = {.supported = true, .target = 2, .ready = 1,
                                 .acquired_warm = 3, .acquired_cold = 1};
    struct metrics_sources src = {.registry = &rs, .pool = &ps, .calls_in_flight = 1,
                                  .http_sessions = 4, .http_sessions_total = 9};
    struct buf out;
    buf_init(&out, 1 << 20);
    T_OK(metrics_render(m, &src, &out));
    const char *t = buf_cstr(&out);
    check_format(t);
    T_ASSERT(strstr(t, "agentbox_tool_calls_total{tool=\"execute\",result=\"ok\"} 2\n"));
    T_ASSERT(strstr(t, "agentbox_tool_calls_total{tool=\"execute\",result=\"error\"} 1\n"));
    T_ASSERT(strstr(t, "agentbox_tool_calls_total{tool=\"read\",result=\"invalid_arguments\"} 1\n"));
    T_ASSERT(strstr(t, "agentbox_tool_call_duration_seconds_bucket{tool=\"execute\",le=\"0.005\"} 1\n"));
    T_ASSERT(strstr(t, "agentbox_tool_call_duration_seconds_bucket{tool=\"execute\",le=\"0.25\"} 2\n"));
    T_ASSERT(strstr(t, "agentbox_tool_call_duration_seconds_bucket{tool=\"execute\",le=\"300\"} 2\n"));
    T_ASSERT(strstr(t, "agentbox_tool_call_duration_seconds_bucket{tool=\"execute\",le=\"+Inf\"} 3\n"));
    T_ASSERT(strstr(t, "agentbox_tool_call_duration_seconds_count{tool=\"execute\"} 3\n"));
    T_ASSERT(strstr(t, "agentbox_sandboxes{provider=\"local\"} 3\n"));
    T_ASSERT(strstr(t, "agentbox_pool_hit_ratio{provider=\"local\"} 0.75\n"));
    T_ASSERT(strstr(t, "agentbox_http_sessions 4\n"));
    T_ASSERT(strstr(t, "process_resident_memory_bytes "));
    buf_cleanup(&out);
    metrics_free(m);
}

static const struct t_case cases[] = {T_CASE(t_render), {0}};
T_MAIN(cases)
