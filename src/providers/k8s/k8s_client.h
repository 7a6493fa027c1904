/*
 * k8s_client.h - a small Kubernetes API client on libcurl: credentials from kubeconfig or
 * the in-cluster service account, JSON requests with bounded retries, watch streams, and
 * Status objects turned into clear errors. libcurl is used only under providers/k8s/.
 *
 * Thread safety: a client may be used from any number of threads at once (each request
 * borrows an easy handle from a pool, which keeps its connections alive for reuse).
 */
#ifndef AB_PROVIDERS_K8S_CLIENT_H
#define AB_PROVIDERS_K8S_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/cancel.h"
#include "base/status.h"

struct k8s_client;

struct k8s_client_opts {
    const char *kubeconfig;     /* path list; NULL/"" = $KUBECONFIG, ~/.kube/config */
    const char *context;        /* NULL/"" = current-context */
    bool in_cluster;            /* force the service account (skip kubeconfig) */
    int64_t request_timeout_ms; /* one attempt; 0 = 30 s */
    int max_retries;            /* extra attempts on 429/5xx/connection errors; <0 = 4 */
    int64_t backoff_base_ms;    /* first retry delay before jitter; 0 = 200 ms */
    int64_t backoff_max_ms;     /* cap; 0 = 5 s */
};

/* Create a client: kubeconfig first (unless in_cluster), then the in-cluster service
 * account ($KUBERNETES_SERVICE_HOST, /var/run/secrets/kubernetes.io/serviceaccount, or the
 * directory named by $AGENTBOX_SERVICEACCOUNT_DIR). *out is new. */
ab_status k8s_client_new(const struct k8s_client_opts *opts, struct k8s_client **out,
                         struct ab_err *err);
void k8s_client_free(struct k8s_client *c);

/* The namespace of the kubeconfig context or the service account, or NULL. Borrowed. */
const char *k8s_client_namespace(const struct k8s_client *c);
const char *k8s_client_server(const struct k8s_client *c);
/* "kubeconfig <file> context <name>" or "in-cluster service account": for messages. */
const char *k8s_client_describe(const struct k8s_client *c);

struct k8s_resp {
    long status;    /* HTTP status; 0 when no response */
    json_t *body;   /* parsed JSON body or NULL */
    char reason[64];/* Status.reason when the body is a Status */
    int attempts;
};

void k8s_resp_cleanup(struct k8s_resp *r);

struct k8s_req_opts {
    const char *content_type;  /* for a body; default application/json */
    bool no_retry;             /* one attempt only */
    int64_t deadline_ms;       /* ab_mono_ms() bound over all attempts; 0 = none */
    struct ab_cancel *cancel;
};

/* One request (method, path + query, optional JSON body, borrowed). Returns AB_OK when an
 * HTTP response arrived (any status; see resp->status), an error when none did after the
 * retries. resp is initialised by this call. */
ab_status k8s_request(struct k8s_client *c, const char *method, const char *path,
                      const json_t *body, const struct k8s_req_opts *ro, struct k8s_resp *resp,
                      struct ab_err *err);

/* Turn a non-2xx response into an error: the Status message, reason and code, with what
 * (e.g. "create SandboxClaim x") in front. 404 -> AB_NOTFOUND, 409 AlreadyExists ->
 * AB_EXISTS, 409 Conflict -> AB_BUSY, 401/403 -> AB_DENIED, 400/422 -> AB_INVAL, 410 ->
 * AB_K8S with reason "Expired"/"Gone", others AB_K8S. Returns AB_OK for 2xx. */
ab_status k8s_resp_error(const struct k8s_resp *r, const char *what, struct ab_err *err);

/* Convenience: request + k8s_resp_error; *out (may be NULL) receives the body (new). */
ab_status k8s_call(struct k8s_client *c, const char *method, const char *path,
                   const json_t *body, const struct k8s_req_opts *ro, const char *what,
                   json_t **out, long *status, struct ab_err *err);

/* ---- NDJSON / watch streams ---- */

/* Called for each complete JSON line; return false to stop the stream. line is borrowed. */
typedef bool (*k8s_line_cb)(void *arg, json_t *line);

/* Incremental splitter of newline-delimited JSON: a pure function over bytes (fuzzed).
 * Lines longer than max_line fail with AB_LIMIT; invalid JSON with AB_PROTO; blank lines are
 * skipped. *stopped is set when cb returned false (remaining bytes are ignored). */
struct k8s_ndjson {
    struct buf line;
    bool stopped;
};
void k8s_ndjson_init(struct k8s_ndjson *p, size_t max_line);
void k8s_ndjson_cleanup(struct k8s_ndjson *p);
ab_status k8s_ndjson_feed(struct k8s_ndjson *p, const char *data, size_t len, k8s_line_cb cb,
                          void *arg, struct ab_err *err);

/* A watch event: type "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR". */
typedef bool (*k8s_watch_cb)(void *arg, const char *type, json_t *object);

struct k8s_watch_result {
    bool stopped;          /* the callback returned false */
    bool gone;             /* 410: resourceVersion too old (ERROR event or HTTP 410) */
    char last_rv[64];      /* resourceVersion of the last event seen (incl. bookmarks) */
};

/* GET path with watch=true&allowWatchBookmarks=true&resourceVersion=rv&timeoutSeconds=t
 * (path may already carry a query, e.g. a fieldSelector). Streams events to cb until the
 * server ends the stream, cb stops it, deadline/cancel fire (AB_TIMEOUT/AB_CANCELLED) or the
 * connection breaks (AB_K8S, "watch stream broke"). No retries here: callers resume from
 * res->last_rv (and relist on res->gone). */
ab_status k8s_watch(struct k8s_client *c, const char *path, const char *rv, int timeout_s,
                    int64_t deadline_ms, struct ab_cancel *cancel, k8s_watch_cb cb, void *arg,
                    struct k8s_watch_result *res, struct ab_err *err);

/* Percent-encode for a query value or a path segment (RFC 3986 unreserved kept). New. */
char *k8s_urlencode(const char *s);

#endif
