/*
 * k8s_internal.h - shared between the provider's control plane (k8s_provider.c: claims) and
 * data plane (k8s_runtime.c: the runtime HTTP API, connection modes, file tools over exec).
 */
#ifndef AB_PROVIDERS_K8S_INTERNAL_H
#define AB_PROVIDERS_K8S_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/sandbox.h"
#include "providers/k8s/k8s_client.h"

enum k8s_conn { K8S_CONN_DIRECT, K8S_CONN_GATEWAY, K8S_CONN_INCLUSTER, K8S_CONN_TUNNEL };
enum k8s_rtapi { K8S_RT_AUTO, K8S_RT_PYTHON, K8S_RT_AGENTBOX };

struct k8s_tunnel {
    pid_t pid;      /* kubectl port-forward; 0 = none */
    int port;
    int stdin_fd;   /* our end of its stdin: closing it tells a well-behaved child to go */
    int stderr_fd;  /* its stderr, for the error message when it dies */
};

/* The sandbox-router's bearer token (router_token.c). value is secret: never logged. */
struct k8s_rtok {
    pthread_mutex_t lock;
    char *value;    /* k8s.router_token, or the file's content; NULL = none configured */
    char *file;     /* k8s.router_token_file; NULL = a static value (or none) */
    struct stat id; /* the file's identity when value was read */
    bool warned;    /* "unreadable, keeping the last token" said for this change */
};

/* Validate and load (a file is read now: missing or empty is an error naming the key). Both
 * set is an error naming both keys. Neither set: no token (requests go without one). */
ab_status k8s_rtok_init(struct k8s_rtok *t, const char *value, const char *file,
                        struct ab_err *err);
void k8s_rtok_cleanup(struct k8s_rtok *t);
bool k8s_rtok_configured(const struct k8s_rtok *t);
/* Which setting the token comes from, for error texts (never the token). Returns tmp. */
const char *k8s_rtok_source(const struct k8s_rtok *t, char *tmp, size_t cap);
/* *hdr = new "Authorization: Bearer ..." (free with k8s_rtok_header_free), or NULL when no
 * token is configured. A token file is re-read when it changed on disk, or always with
 * force (after a 401); *changed (may be NULL) says whether that produced another token. */
ab_status k8s_rtok_header(struct k8s_rtok *t, bool force, char **hdr, bool *changed,
                          struct ab_err *err);
void k8s_rtok_header_free(char *hdr);

struct k8s_provider {
    struct sbx_provider base;
    struct k8s_client *api;
    char *ns;
    char *template_name;
    char *warm_pool;
    char *api_version;      /* "v1beta1" | "v1alpha1" | NULL until discovered */
    enum k8s_conn conn;
    enum k8s_rtapi rtapi;
    char *router_url;
    char *gateway_name, *gateway_ns;
    int64_t gateway_port;
    char *kubectl;
    char *router_ns;
    char *workspace;        /* as tools see it, e.g. /app */
    int64_t server_port;
    bool send_pod_ip;
    struct k8s_rtok router_token; /* sent only on requests through a router */
    int64_t ready_timeout_s;
    int64_t request_timeout_s;
    pthread_mutex_t lock;   /* api_version, gateway_url, tunnel, curl pool */
    char *gateway_url;      /* cached "http://addr:port" */
    struct k8s_tunnel tunnel;
    void *curl_pool[8];
    int ncurl;
    atomic_uint_fast64_t acquired_warm, acquired_cold;
};

struct sbx_handle {
    char *claim;            /* == info.name */
    char *sandbox;          /* Sandbox name (X-Sandbox-ID) */
    char *pod_ip;           /* may be NULL */
    bool warm;
    struct sbx_info info;
    pthread_mutex_t lock;   /* base_real, rt_ext, pod_ip */
    char *base_real;        /* the runtime's base dir as a real path in the pod */
    int rt_ext;             /* -1 unknown, 0 python-runtime only, 1 agentbox-runtime */
    int64_t last_persist_ms;
};

/* ---- data plane (k8s_runtime.c) ---- */
void k8s_rt_provider_cleanup(struct k8s_provider *p);
ab_status k8s_rt_exec(struct k8s_provider *p, struct sbx_handle *h, const struct sbx_exec_req *req,
                      struct sbx_exec_result *res, struct ab_err *err);
ab_status k8s_rt_read_file(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                           size_t max_bytes, struct buf *out, struct ab_err *err);
ab_status k8s_rt_write_file(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                            const void *data, size_t len, struct ab_err *err);
ab_status k8s_rt_list_dir(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                          struct sbx_dirent **ents, size_t *n, struct ab_err *err);
ab_status k8s_rt_stat(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                      struct sbx_stat *st, struct ab_err *err);
ab_status k8s_rt_walk(struct k8s_provider *p, struct sbx_handle *h, const struct sbx_walk_req *req,
                      struct sbx_walk_entry **ents, size_t *n, bool *truncated,
                      struct ab_err *err);
ab_status k8s_rt_search(struct k8s_provider *p, struct sbx_handle *h,
                        const struct sbx_search_req *req, struct sbx_match **matches, size_t *n,
                        bool *truncated, struct ab_err *err);
/* GET / of the runtime through the configured connection: reachability for status(). */
ab_status k8s_rt_ping(struct k8s_provider *p, struct sbx_handle *h, struct ab_err *err);

/* Shell-quote s in single quotes for sh -c. Returns new. */
char *k8s_shquote(const char *s);

#endif
