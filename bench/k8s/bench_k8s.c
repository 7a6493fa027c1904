/*
 * bench_k8s.c - Kubernetes-path figures on loopback, against the test cluster (tests/k8s/):
 *   1. runtime direct: one POST /agentbox/v1/exec {"argv":["true"]} straight to the pod IP
 *      (and the python-runtime-compatible POST /execute), keep-alive, no agentbox code;
 *   2. provider exec through the router (k8s.connection direct) and to the pod IP
 *      (in-cluster): the same command through sbx_provider->exec;
 *   3. claim-to-ready: create() until Ready through the emulated controller, warm (adopting a
 *      pool Sandbox) and cold (replicas: 0 pool, a new runtime process per claim);
 *   4. what the router's bearer token adds to a request through a router: a stat(2) of the
 *      token file and the header string (the router itself wants the token, as the shipped
 *      one does, so 2's router figure includes it).
 * Prints medians and p90 in microseconds. Loopback only; bounded iteration counts.
 * Run: bench/k8s/run.sh (builds against build/ and prints the table).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "providers/k8s/k8s.h"
#include "providers/k8s/k8s_internal.h"
#include "support/k8s_cluster.h"

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp64);
    printf("%-58s n=%-4d median=%8lld us  p90=%8lld us\n", what, n, (long long)v[n / 2],
           (long long)v[n * 9 / 10]);
    fflush(stdout);
}

static size_t sink(char *p, size_t s, size_t n, void *a)
{
    return s * n;
}

static void direct(const char *url, const char *body, const char *what, int n)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    int64_t *v = calloc((size_t)n, sizeof(*v));
    for (int i = 0; i < n + 5; i++) {
        int64_t t0 = ab_mono_us();
        if (curl_easy_perform(c) != CURLE_OK) {
            fprintf(stderr, "direct request failed\n");
            exit(1);
        }
        if (i >= 5)
            v[i - 5] = ab_mono_us() - t0;
    }
    report(what, v, n);
    free(v);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static struct sbx_handle *make(struct sbx_provider *p, const char *name)
{
    struct sbx_info info;
    sbx_info_init(&info);
    info.name = ab_strdup(name);
    free(info.principal);
    info.principal = ab_strdup("bench");
    info.labels = json_object();
    info.created_ms = info.last_used_ms = ab_wall_ms();
    struct sbx_create_req req = {.info = &info};
    struct sbx_handle *h = NULL;
    struct ab_err err;
    if (p->ops->create(p, &req, &h, &err)) {
        fprintf(stderr, "create: %s\n", err.msg);
        exit(1);
    }
    sbx_info_cleanup(&info);
    return h;
}

static void provider_exec(struct config *cfg, const char *what, int n)
{
    struct sbx_provider *p;
    struct ab_err err;
    if (sbx_k8s_new(cfg, &p, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    struct sbx_handle *h = make(p, "ab-bench-exec");
    const char *argv[] = {"true", NULL};
    int64_t *v = calloc((size_t)n, sizeof(*v));
    for (int i = 0; i < n + 5; i++) {
        struct sbx_exec_req req = {.argv = argv, .timeout_ms = 10000};
        struct sbx_exec_result res;
        sbx_exec_result_init(&res);
        int64_t t0 = ab_mono_us();
        if (p->ops->exec(p, h, &req, &res, &err)) {
            fprintf(stderr, "exec: %s\n", err.msg);
            exit(1);
        }
        if (i >= 5)
            v[i - 5] = ab_mono_us() - t0;
        sbx_exec_result_cleanup(&res);
    }
    report(what, v, n);
    free(v);
    p->ops->destroy(p, h, &err);
    p->ops->free(p);
}

static void claim_to_ready(struct tk8s *c, struct config *cfg, const char *pool, const char *what,
                           int n)
{
    cfg_set(cfg, "k8s.warm_pool", pool, NULL);
    struct sbx_provider *p;
    struct ab_err err;
    if (sbx_k8s_new(cfg, &p, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    int64_t *v = calloc((size_t)n, sizeof(*v));
    int warm = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(pool, "warm-pool") == 0) {
            struct sbx_pool_status ps = {0};
            for (int k = 0; k < 500 && (p->ops->pool_status(p, &ps, &err) || ps.ready < 1); k++)
                usleep(10000); /* measure adoption, not replenishment */
        }
        char name[64];
        snprintf(name, sizeof(name), "ab-bench-%s-%d", pool, i);
        int64_t t0 = ab_mono_us();
        struct sbx_handle *h = make(p, name);
        v[i] = ab_mono_us() - t0;
        warm += h->warm;
        p->ops->destroy(p, h, &err);
    }
    char label[128];
    snprintf(label, sizeof(label), "%s (%d/%d warm)", what, warm, n);
    report(label, v, n);
    free(v);
    p->ops->free(p);
}

static void token_header_cost(const char *file)
{
    struct k8s_rtok t;
    struct ab_err err;
    if (k8s_rtok_init(&t, NULL, file, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    enum { N = 100000 };
    int64_t t0 = ab_mono_us();
    for (int i = 0; i < N; i++) {
        char *hdr = NULL;
        k8s_rtok_header(&t, false, &hdr, NULL, &err);
        k8s_rtok_header_free(hdr);
    }
    printf("%-58s n=%-6d mean=%8.2f us\n", "router token header (token file unchanged)", N,
           (double)(ab_mono_us() - t0) / N);
    k8s_rtok_cleanup(&t);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    const char *args[] = {"--warm", "1", NULL};
    struct tk8s c;
    tk8s_start(&c, args);
    struct config cfg;
    tk8s_config(&c, &cfg);
    token_header_cost(tk8s_router_token_file(&c));
    /* a pod to aim direct requests at */
    struct sbx_provider *p;
    struct ab_err err;
    if (sbx_k8s_new(&cfg, &p, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    struct sbx_handle *h = make(p, "ab-bench-direct");
    char url[256];
    snprintf(url, sizeof(url), "http://%s:8888/agentbox/v1/exec", h->pod_ip);
    direct(url, "{\"argv\":[\"true\"]}", "runtime direct: POST /agentbox/v1/exec (no agentbox)", n);
    snprintf(url, sizeof(url), "http://%s:8888/execute", h->pod_ip);
    direct(url, "{\"command\":\"true\"}", "runtime direct: POST /execute (no agentbox)", n);
    p->ops->destroy(p, h, &err);
    p->ops->free(p);
    cfg_set(&cfg, "k8s.connection", "in-cluster", NULL);
    provider_exec(&cfg, "provider exec, in-cluster (pod IP)", n);
    cfg_set(&cfg, "k8s.connection", "direct", NULL);
    provider_exec(&cfg, "provider exec, through the router (direct mode)", n);
    int m = n / 10 > 5 ? n / 10 : 5;
    claim_to_ready(&c, &cfg, "warm-pool", "claim-to-ready, warm pool", m);
    claim_to_ready(&c, &cfg, "cold-pool", "claim-to-ready, cold start", m);
    cfg_cleanup(&cfg);
    tk8s_stop(&c);
    return 0;
}
