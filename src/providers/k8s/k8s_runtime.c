/*
 * k8s_runtime.c - the agent-sandbox provider's data plane: the sandbox runtime's HTTP API
 * (python-runtime: POST /execute, POST /upload, GET /download/ /list/ /exists/; and, when the
 * pod runs agentbox-runtime, its /agentbox/v1 extensions), reached in one of four ways:
 *   direct      the router URL from config, with X-Sandbox-* routing headers
 *   gateway     http://<Gateway status.addresses[].value>:<port>, with routing headers
 *   in-cluster  http://<pod IP>:<port> (else <sandbox>.<ns>.svc.cluster.local), no headers
 *   tunnel      `kubectl port-forward svc/sandbox-router-svc PORT:8080 -n NS` on a free local
 *               port, restarted when it dies, with routing headers
 * X-Sandbox-Pod-IP is sent by default (warm-pool Sandboxes have no Service, so a router can
 * only reach them by pod IP); k8s.send_pod_ip: false leaves resolution to the router's DNS.
 *
 * Commands: agentbox-runtime's streaming exec takes argv/cwd/env/stdin and returns exact
 * bytes; the python-runtime's /execute takes one string that it shlex-splits and runs without
 * a shell, so we send `sh -c '<script>'` where the script does cd, env, stdin (base64),
 * 2>&1 and `timeout`, and returns the output base64-encoded (exact bytes). /execute is never
 * retried (a command must not run twice); idempotent file calls are retried on connection
 * errors and 502/503/504.
 *
 * File tools: the upstream runtime has no stat/grep/glob, so stat, list_dir, walk and search
 * run POSIX tools in the pod (find -printf with NUL separators, grep -F) through the same
 * exec path, and their results are rebuilt to match the core fallbacks exactly (walk order is
 * breadth-first like sbx_walk's fallback; binary files are skipped by the same 8 KiB NUL
 * rule). Sandbox paths under k8s.workspace map onto the runtime's base directory, which is
 * learned from the runtime (agentbox-runtime reports it; otherwise `pwd` in /execute).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "providers/k8s/k8s_internal.h"

extern char **environ;

#define RT_MAX_JSON      (64u * 1024 * 1024)
#define RT_SCRIPT_OUTPUT (64u * 1024 * 1024)
#define DEFAULT_OUTCAP   (1u << 20)

/* ---- quoting ---- */

char *k8s_shquote(const char *s)
{
    struct buf b;
    buf_init(&b, 64u << 20);
    buf_append_char(&b, '\'');
    for (const char *c = s; *c; c++) {
        if (*c == '\'')
            buf_append_str(&b, "'\\''");
        else
            buf_append_char(&b, *c);
    }
    buf_append_char(&b, '\'');
    return buf_steal(&b, NULL);
}

/* A path in a /download/ /list/ /exists/ URL, quoted twice: the runtime decodes it twice (the
 * HTTP server, then the handler's own unquote; agent-sandbox.md section 4). The upstream SDK
 * quotes once (urllib.parse.quote(path, safe='')), which turns a literal '%' in a file name
 * into another name ("%22" becomes '"'); twice is right for every name. */
static char *quote_path(const char *s)
{
    char *once = k8s_urlencode(s);
    char *twice = once ? k8s_urlencode(once) : NULL;
    free(once);
    return twice;
}

/* ---- path mapping ---- */

static const char *rel_in_workspace(struct k8s_provider *p, const char *path)
{
    size_t wl = strlen(p->workspace);
    if (strcmp(p->workspace, "/") == 0)
        return path + 1;
    if (strncmp(path, p->workspace, wl) == 0 && (path[wl] == '\0' || path[wl] == '/'))
        return path[wl] ? path + wl + 1 : path + wl;
    return NULL;
}

static char *to_real(struct k8s_provider *p, struct sbx_handle *h, const char *path)
{
    const char *rel = rel_in_workspace(p, path);
    if (!rel || !h->base_real)
        return ab_strdup(path);
    if (!*rel)
        return ab_strdup(h->base_real);
    return ab_asprintf("%s%s%s", h->base_real, strcmp(h->base_real, "/") ? "/" : "", rel);
}

static char *from_real(struct k8s_provider *p, struct sbx_handle *h, const char *real)
{
    if (!h->base_real || strcmp(h->base_real, p->workspace) == 0)
        return ab_strdup(real);
    size_t bl = strlen(h->base_real);
    if (strncmp(real, h->base_real, bl) == 0 && (real[bl] == '\0' || real[bl] == '/'))
        return ab_asprintf("%s%s", p->workspace, real + bl);
    return ab_strdup(real);
}

/* ---- curl handles ---- */

static CURL *curl_take(struct k8s_provider *p)
{
    CURL *h = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->ncurl)
        h = p->curl_pool[--p->ncurl];
    pthread_mutex_unlock(&p->lock);
    if (h)
        curl_easy_reset(h);
    else
        h = curl_easy_init();
    return h;
}

static void curl_give(struct k8s_provider *p, CURL *h, bool ok)
{
    if (!h)
        return;
    if (ok) {
        pthread_mutex_lock(&p->lock);
        if (p->ncurl < (int)AB_ARRAY_LEN(p->curl_pool)) {
            p->curl_pool[p->ncurl++] = h;
            h = NULL;
        }
        pthread_mutex_unlock(&p->lock);
    }
    if (h)
        curl_easy_cleanup(h);
}

/* ---- tunnel ---- */

static void tunnel_stop_locked(struct k8s_provider *p)
{
    struct k8s_tunnel *t = &p->tunnel;
    if (t->pid > 0) {
        kill(t->pid, SIGTERM);
        int64_t end = ab_mono_ms() + 2000;
        int st;
        while (waitpid(t->pid, &st, WNOHANG) == 0 && ab_mono_ms() < end)
            usleep(20000);
        if (waitpid(t->pid, &st, WNOHANG) == 0) {
            kill(t->pid, SIGKILL);
            waitpid(t->pid, &st, 0);
        }
    }
    if (t->stdin_fd >= 0)
        close(t->stdin_fd);
    if (t->stderr_fd >= 0)
        close(t->stderr_fd);
    t->pid = 0;
    t->stdin_fd = t->stderr_fd = -1;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static void read_stderr_tail(int fd, char *out, size_t cap)
{
    out[0] = '\0';
    if (fd < 0)
        return;
    size_t n = 0;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0)
            break;
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n >= cap - 1)
            break;
    }
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
}

/* Make sure a live port-forward exists; returns its local port. Caller holds p->lock. */
static ab_status tunnel_ensure_locked(struct k8s_provider *p, int *port, struct ab_err *err)
{
    struct k8s_tunnel *t = &p->tunnel;
    if (t->pid > 0) {
        int st;
        pid_t r = waitpid(t->pid, &st, WNOHANG);
        if (r == 0) {
            *port = t->port;
            return AB_OK;
        }
        char msg[512];
        read_stderr_tail(t->stderr_fd, msg, sizeof(msg));
        AB_LOG_WARN("k8s.tunnel_died", "pid=%d stderr=\"%s\"; restarting", (int)t->pid, msg);
        t->pid = 0;
        tunnel_stop_locked(p);
    }
    int lport = free_port();
    if (lport <= 0)
        return ab_err_sys(err, AB_IO, errno, "tunnel: no free local port");
    char portarg[32];
    snprintf(portarg, sizeof(portarg), "%d:8080", lport);
    char *argv[] = {p->kubectl, "port-forward", "svc/sandbox-router-svc", portarg, "-n",
                    p->router_ns, NULL};
    int inp[2] = {-1, -1}, errp[2] = {-1, -1};
    if (pipe2(inp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            if (inp[i] >= 0)
                close(inp[i]);
            if (errp[i] >= 0)
                close(errp[i]);
        }
        return ab_err_sys(err, AB_IO, e, "tunnel: pipe");
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, inp[0], 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    pid_t pid;
    int e = posix_spawnp(&pid, p->kubectl, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(inp[0]);
    close(errp[1]);
    if (e) {
        close(inp[1]);
        close(errp[0]);
        return ab_err_sys(err, AB_UNSUPPORTED, e,
                          "tunnel mode needs kubectl: cannot run \"%s\" (set k8s.kubectl, or use "
                          "another k8s.connection)",
                          p->kubectl);
    }
    t->pid = pid;
    t->port = lport;
    t->stdin_fd = inp[1];
    t->stderr_fd = errp[0];
    fcntl(t->stderr_fd, F_SETFL, fcntl(t->stderr_fd, F_GETFL) | O_NONBLOCK);
    /* Wait for the port (50 ms polls, like the Python client), up to 30 s. */
    int64_t end = ab_mono_ms() + 30000;
    while (ab_mono_ms() < end) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            char msg[512];
            read_stderr_tail(t->stderr_fd, msg, sizeof(msg));
            t->pid = 0;
            tunnel_stop_locked(p);
            return ab_err_set(err, AB_SANDBOX,
                              "tunnel: kubectl port-forward svc/sandbox-router-svc -n %s exited: "
                              "%s",
                              p->router_ns, msg[0] ? msg : "no message");
        }
        if (port_open(lport)) {
            AB_LOG_INFO("k8s.tunnel", "pid=%d port=%d namespace=%s", (int)pid, lport, p->router_ns);
            *port = lport;
            return AB_OK;
        }
        usleep(50000);
    }
    tunnel_stop_locked(p);
    return ab_err_set(err, AB_TIMEOUT, "tunnel: kubectl port-forward did not open port %d within "
                                       "30 s (is svc/sandbox-router-svc in namespace %s?)",
                      lport, p->router_ns);
}

void k8s_rt_provider_cleanup(struct k8s_provider *p)
{
    pthread_mutex_lock(&p->lock);
    tunnel_stop_locked(p);
    for (int i = 0; i < p->ncurl; i++)
        curl_easy_cleanup(p->curl_pool[i]);
    p->ncurl = 0;
    pthread_mutex_unlock(&p->lock);
}

/* ---- gateway discovery ---- */

static bool valid_gw_value(const char *v)
{
    unsigned char tmp[16];
    if (inet_pton(AF_INET, v, tmp) == 1 || inet_pton(AF_INET6, v, tmp) == 1)
        return true;
    size_t n = strlen(v);
    if (!n || n > 253)
        return false;
    /* hostname: labels of [A-Za-z0-9-], <= 63, not all digits (utils.is_valid_gateway_hostname) */
    const char *s = v;
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t l = dot ? (size_t)(dot - s) : strlen(s);
        if (!l || l > 63)
            return false;
        bool digits = true;
        for (size_t i = 0; i < l; i++) {
            char c = s[i];
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-';
            if (!ok)
                return false;
            if (!(c >= '0' && c <= '9'))
                digits = false;
        }
        if (digits)
            return false;
        s += l;
        if (*s == '.')
            s++;
    }
    return true;
}

static char *gw_address(const json_t *gw)
{
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(json_object_get(gw, "status"), "addresses"), i, a)
    {
        const char *v = json_string_value(json_object_get(a, "value"));
        if (v && valid_gw_value(v))
            return ab_strdup(v);
    }
    return NULL;
}

struct gw_wait {
    char *addr;
};

static bool on_gw_event(void *arg, const char *type, json_t *obj)
{
    struct gw_wait *g = arg;
    if (strcmp(type, "ADDED") && strcmp(type, "MODIFIED"))
        return true;
    g->addr = gw_address(obj);
    return g->addr == NULL;
}

static ab_status gateway_url(struct k8s_provider *p, char **out, struct ab_err *err)
{
    pthread_mutex_lock(&p->lock);
    char *cached = ab_strdup(p->gateway_url);
    pthread_mutex_unlock(&p->lock);
    if (cached) {
        *out = cached;
        return AB_OK;
    }
    char *coll = ab_asprintf("/apis/gateway.networking.k8s.io/v1/namespaces/%s/gateways",
                             p->gateway_ns);
    char *one = ab_asprintf("%s/%s", coll, p->gateway_name);
    char *enc = k8s_urlencode(p->gateway_name);
    char *wpath = ab_asprintf("%s?fieldSelector=metadata.name%%3D%s", coll, enc);
    int64_t deadline = ab_mono_ms() + p->ready_timeout_s * 1000;
    struct gw_wait g = {0};
    ab_status rc = AB_OK;
    char rv[64] = "";
    char what[200];
    snprintf(what, sizeof(what), "read Gateway %s/%s", p->gateway_ns, p->gateway_name);
    while (!g.addr) {
        json_t *gw = NULL;
        struct k8s_req_opts ro = {.deadline_ms = deadline};
        if ((rc = k8s_call(p->api, "GET", one, NULL, &ro, what, &gw, NULL, err)))
            break;
        g.addr = gw_address(gw);
        snprintf(rv, sizeof(rv), "%s",
                 json_string_value(json_object_get(json_object_get(gw, "metadata"),
                                                   "resourceVersion")) ?: "");
        json_decref(gw);
        if (g.addr)
            break;
        int64_t left = deadline - ab_mono_ms();
        if (left <= 0) {
            rc = ab_err_set(err, AB_TIMEOUT, "Gateway '%s' did not get an IP within %lld s",
                            p->gateway_name, (long long)p->ready_timeout_s);
            break;
        }
        struct k8s_watch_result res;
        struct ab_err werr;
        ab_status wrc = k8s_watch(p->api, wpath, rv, (int)AB_MIN(left / 1000 + 1, 300), deadline,
                                  NULL, on_gw_event, &g, &res, &werr);
        if (wrc == AB_TIMEOUT && !g.addr) {
            rc = ab_err_set(err, AB_TIMEOUT, "Gateway '%s' did not get an IP within %lld s",
                            p->gateway_name, (long long)p->ready_timeout_s);
            break;
        }
    }
    if (!rc && g.addr) {
        bool v6 = strchr(g.addr, ':') != NULL;
        *out = ab_asprintf("http://%s%s%s:%lld", v6 ? "[" : "", g.addr, v6 ? "]" : "",
                           (long long)p->gateway_port);
        pthread_mutex_lock(&p->lock);
        if (!p->gateway_url)
            p->gateway_url = ab_strdup(*out);
        pthread_mutex_unlock(&p->lock);
        AB_LOG_INFO("k8s.gateway", "gateway=%s/%s url=%s", p->gateway_ns, p->gateway_name, *out);
    }
    free(g.addr);
    free(coll);
    free(one);
    free(enc);
    free(wpath);
    return rc;
}

/* ---- targets and requests ---- */

struct target {
    char *base;        /* no trailing slash */
    bool router;       /* send X-Sandbox-* headers */
};

static ab_status resolve_target(struct k8s_provider *p, struct sbx_handle *h, struct target *t,
                                struct ab_err *err)
{
    memset(t, 0, sizeof(*t));
    ab_status rc = AB_OK;
    switch (p->conn) {
    case K8S_CONN_DIRECT:
        t->base = ab_strdup(p->router_url);
        t->router = true;
        break;
    case K8S_CONN_GATEWAY:
        rc = gateway_url(p, &t->base, err);
        t->router = true;
        break;
    case K8S_CONN_INCLUSTER:
        if (h->pod_ip) {
            bool v6 = strchr(h->pod_ip, ':') != NULL;
            t->base = ab_asprintf("http://%s%s%s:%lld", v6 ? "[" : "", h->pod_ip, v6 ? "]" : "",
                                  (long long)p->server_port);
        } else {
            /* Needs the Sandbox's headless Service (spec.service: true). */
            t->base = ab_asprintf("http://%s.%s.svc.cluster.local:%lld", h->sandbox, p->ns,
                                  (long long)p->server_port);
        }
        break;
    case K8S_CONN_TUNNEL: {
        int port = 0;
        pthread_mutex_lock(&p->lock);
        rc = tunnel_ensure_locked(p, &port, err);
        pthread_mutex_unlock(&p->lock);
        if (!rc)
            t->base = ab_asprintf("http://127.0.0.1:%d", port);
        t->router = true;
        break;
    }
    default:
        rc = ab_err_set(err, AB_INTERNAL, "unknown connection mode");
        break;
    }
    if (!rc && !t->base)
        rc = ab_err_set(err, AB_NOMEM, "out of memory");
    if (!rc) {
        size_t l = strlen(t->base);
        while (l && t->base[l - 1] == '/')
            t->base[--l] = '\0';
    }
    return rc;
}

struct rt_xfer {
    CURL *h;
    struct buf body;
    struct k8s_ndjson *nd;
    k8s_line_cb line_cb;
    void *line_arg;
    ab_status stream_rc;
    struct ab_err stream_err;
    struct ab_cancel *cancel;
    bool cancelled;
    bool overflow;
};

static size_t rt_on_write(char *d, size_t sz, size_t n, void *arg)
{
    struct rt_xfer *x = arg;
    size_t len = sz * n;
    long status = 0;
    /* Only a 2xx body is the stream; an error's body ({"detail": ...}) is kept as text. */
    if (x->nd && curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        status >= 200 && status < 300) {
        x->stream_rc = k8s_ndjson_feed(x->nd, d, len, x->line_cb, x->line_arg, &x->stream_err);
        return x->stream_rc || x->nd->stopped ? 0 : len;
    }
    if (buf_append(&x->body, d, len)) {
        x->overflow = true;
        return 0;
    }
    return len;
}

static int rt_on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    struct rt_xfer *x = arg;
    if (ab_cancel_fired(x->cancel)) {
        x->cancelled = true;
        return 1;
    }
    return 0;
}

struct rt_req {
    const char *method;
    const char *path;       /* starts with '/' */
    const char *json;       /* body (application/json) */
    const void *upload;     /* multipart file data */
    size_t upload_len;
    const char *upload_name;
    int64_t timeout_s;      /* also X-Sandbox-Timeout */
    bool idempotent;        /* retry on connection errors and 502/503/504 */
    size_t max_body;
    struct ab_cancel *cancel;
    struct k8s_ndjson *nd;  /* stream the body */
    k8s_line_cb line_cb;
    void *line_arg;
};

struct rt_resp {
    long status;
    struct buf body;
};

/* The router's {"detail": ...} and the runtime's {"message": ...} as one text. */
static const char *resp_text(struct rt_resp *r, char *tmp, size_t cap)
{
    json_error_t je;
    json_t *j = json_loadb(buf_cstr(&r->body), r->body.len, 0, &je);
    const json_t *d = json_object_get(j, "detail");
    if (!d)
        d = json_object_get(j, "message");
    if (json_is_string(d))
        snprintf(tmp, cap, "%s", json_string_value(d));
    else if (d) {
        char *s = json_dumps(d, JSON_COMPACT);
        snprintf(tmp, cap, "%s", s ? s : "");
        free(s);
    } else
        snprintf(tmp, cap, "%.200s", buf_cstr(&r->body));
    json_decref(j);
    return tmp;
}

/* The headers a router routes on (agent-sandbox.md section 2.6), and its bearer token. Only
 * for a target that is a router: a pod IP never sees the token. */
static ab_status router_headers(struct k8s_provider *p, struct sbx_handle *h,
                                const struct rt_req *q, struct curl_slist **hdr, struct ab_err *err)
{
    char line[512];
    snprintf(line, sizeof(line), "X-Sandbox-ID: %s", h->sandbox);
    *hdr = curl_slist_append(*hdr, line);
    snprintf(line, sizeof(line), "X-Sandbox-Namespace: %s", p->ns);
    *hdr = curl_slist_append(*hdr, line);
    snprintf(line, sizeof(line), "X-Sandbox-Port: %lld", (long long)p->server_port);
    *hdr = curl_slist_append(*hdr, line);
    if (p->send_pod_ip && h->pod_ip) {
        snprintf(line, sizeof(line), "X-Sandbox-Pod-IP: %s", h->pod_ip);
        *hdr = curl_slist_append(*hdr, line);
    }
    if (q->timeout_s > 0) {
        snprintf(line, sizeof(line), "X-Sandbox-Timeout: %lld", (long long)q->timeout_s);
        *hdr = curl_slist_append(*hdr, line);
    }
    char *auth = NULL;
    ab_status rc = k8s_rtok_header(&p->router_token, false, &auth, NULL, err);
    if (auth)
        *hdr = curl_slist_append(*hdr, auth);
    k8s_rtok_header_free(auth);
    return rc;
}

/* A 401 from the router: say which setting to fix (never the token itself). */
static ab_status router_denied(struct k8s_provider *p, const char *base, const char *detail,
                               struct ab_err *err)
{
    char src[400];
    if (!k8s_rtok_configured(&p->router_token))
        return ab_err_set(err, AB_DENIED,
                          "the sandbox router at %s wants a bearer token (it answered \"%s\", "
                          "HTTP 401): set k8s.router_token_file (or k8s.router_token, "
                          "AGENTBOX_K8S_ROUTER_TOKEN) to the router's ROUTER_AUTH_TOKEN",
                          base, detail);
    return ab_err_set(err, AB_DENIED,
                      "the sandbox router at %s rejected the token from %s (it answered \"%s\", "
                      "HTTP 401): make it the router's ROUTER_AUTH_TOKEN",
                      base, k8s_rtok_source(&p->router_token, src, sizeof(src)), detail);
}

/* After a 401: re-read a token file even if it looks unchanged on disk (timestamps are
 * coarse); true when that gave another token, so the request is worth repeating (the router
 * refused it before forwarding anything, so even /execute cannot run twice). */
static bool router_token_refreshed(struct k8s_provider *p)
{
    if (!p->router_token.file)
        return false;
    char *auth = NULL;
    bool changed = false;
    struct ab_err ignore;
    k8s_rtok_header(&p->router_token, true, &auth, &changed, &ignore);
    k8s_rtok_header_free(auth);
    return changed;
}

static ab_status rt_request(struct k8s_provider *p, struct sbx_handle *h, const struct rt_req *q,
                            struct rt_resp *resp, struct ab_err *err)
{
    memset(resp, 0, sizeof(*resp));
    buf_init(&resp->body, q->max_body ? q->max_body : RT_MAX_JSON);
    ab_status rc = AB_OK;
    int attempts = q->idempotent ? 4 : 1;
    bool reauthed = false;
    for (int a = 0; a < attempts; a++) {
        struct target t;
        if ((rc = resolve_target(p, h, &t, err)))
            return rc;
        struct curl_slist *hdr = NULL;
        if (t.router && (rc = router_headers(p, h, q, &hdr, err))) {
            curl_slist_free_all(hdr);
            free(t.base);
            return rc;
        }
        char *url = ab_asprintf("%s%s", t.base, q->path);
        CURL *c = curl_take(p);
        curl_mime *mime = NULL;
        hdr = curl_slist_append(hdr, "Expect:");
        if (q->json) {
            hdr = curl_slist_append(hdr, "Content-Type: application/json");
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->json);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(q->json));
        } else if (q->upload) {
            mime = curl_mime_init(c);
            curl_mimepart *part = curl_mime_addpart(mime);
            curl_mime_name(part, "file");
            curl_mime_filename(part, q->upload_name);
            curl_mime_type(part, "application/octet-stream");
            curl_mime_data(part, q->upload_len ? q->upload : "", q->upload_len);
            curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
        }
        struct rt_xfer x = {.h = c,
                            .nd = q->nd,
                            .line_cb = q->line_cb,
                            .line_arg = q->line_arg,
                            .cancel = q->cancel};
        x.body = resp->body;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, rt_on_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, rt_on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        /* The runtime enforces the command timeout; allow a margin for the transfer. */
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                         (long)((q->timeout_s > 0 ? q->timeout_s : p->request_timeout_s) * 1000 + 30000));
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* like the SDK: redirects are errors */
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        resp->body = x.body;
        bool stopped = cc == CURLE_WRITE_ERROR && x.nd && x.nd->stopped && !x.stream_rc;
        if (stopped)
            cc = CURLE_OK; /* we ended the stream ourselves (the exit event arrived) */
        curl_slist_free_all(hdr);
        curl_mime_free(mime);
        curl_give(p, c, cc == CURLE_OK && !stopped);
        char *base = t.base;
        free(url);
        if (x.cancelled) {
            free(base);
            return ab_err_set(err, AB_CANCELLED, "cancelled");
        }
        if (x.stream_rc) {
            free(base);
            return ab_err_set(err, AB_PROTO, "runtime stream from %s: %s", q->path,
                              x.stream_err.msg);
        }
        if (x.overflow) {
            free(base);
            return ab_err_set(err, AB_LIMIT, "the runtime's answer to %s exceeds %zu bytes",
                              q->path, resp->body.max);
        }
        bool retry = a + 1 < attempts &&
                     ((cc != CURLE_OK && cc != CURLE_WRITE_ERROR) ||
                      status == 502 || status == 503 || status == 504);
        if (retry) {
            AB_LOG_DEBUG("k8s.rt_retry", "path=%s status=%ld curl=%d", q->path, status, (int)cc);
            buf_reset(&resp->body);
            free(base);
            usleep((useconds_t)(100000 << a));
            continue;
        }
        if (cc != CURLE_OK) {
            rc = ab_err_set(err, AB_SANDBOX,
                            "the sandbox runtime at %s (sandbox %s) is unreachable: %s; the "
                            "connection mode is %s",
                            base, h->sandbox, curl_easy_strerror(cc),
                            p->conn == K8S_CONN_DIRECT       ? "direct (k8s.router_url)"
                            : p->conn == K8S_CONN_GATEWAY    ? "gateway"
                            : p->conn == K8S_CONN_INCLUSTER ? "in-cluster (pod IP)"
                                                             : "tunnel");
            free(base);
            return rc;
        }
        resp->status = status;
        if (t.router && (status == 400 || status == 401 || status == 403 || status == 502 ||
                         status == 504 || status == 500)) {
            /* Router errors carry {"detail": ...}; the runtime's own 403/500 {"message"}. */
            char tmp[600];
            const char *txt = resp_text(resp, tmp, sizeof(tmp));
            json_error_t je;
            json_t *j = json_loadb(buf_cstr(&resp->body), resp->body.len, 0, &je);
            bool router_err = json_object_get(j, "detail") != NULL;
            json_decref(j);
            if (router_err && status == 401 && !reauthed && router_token_refreshed(p)) {
                reauthed = true;
                buf_reset(&resp->body);
                free(base);
                a--;
                continue;
            }
            if (router_err && status == 401) {
                rc = router_denied(p, base, txt, err);
            } else if (router_err) {
                ab_status code = status == 504 ? AB_TIMEOUT : status == 400 ? AB_INVAL : AB_SANDBOX;
                rc = ab_err_set(err, code, "sandbox router: %s (HTTP %ld)%s", txt, status,
                                status == 502 ? "; the sandbox pod may have died or be "
                                                "unreachable from the router"
                                              : "");
            }
        }
        free(base);
        return rc;
    }
    return rc;
}

/* ---- runtime flavour and base dir ---- */

static ab_status compat_execute(struct k8s_provider *p, struct sbx_handle *h, const char *command,
                                int64_t timeout_s, size_t max_body, struct ab_cancel *cancel,
                                json_t **out, struct ab_err *err);

static ab_status probe_runtime(struct k8s_provider *p, struct sbx_handle *h, struct ab_err *err)
{
    pthread_mutex_lock(&h->lock);
    bool known = h->rt_ext >= 0 && h->base_real;
    pthread_mutex_unlock(&h->lock);
    if (known)
        return AB_OK;
    int ext = 0;
    char *base = NULL;
    ab_status rc = AB_OK;
    if (p->rtapi != K8S_RT_PYTHON) {
        struct rt_req q = {.method = "GET", .path = "/agentbox/v1/info", .idempotent = true,
                           .timeout_s = p->request_timeout_s};
        struct rt_resp r;
        rc = rt_request(p, h, &q, &r, err);
        if (!rc && r.status == 200) {
            json_error_t je;
            json_t *j = json_loadb(buf_cstr(&r.body), r.body.len, 0, &je);
            const char *rtn = json_string_value(json_object_get(j, "runtime"));
            if (rtn && strcmp(rtn, "agentbox-runtime") == 0) {
                ext = 1;
                base = ab_strdup(json_string_value(json_object_get(j, "base_dir")));
            }
            json_decref(j);
        }
        buf_cleanup(&r.body);
        if (rc)
            return rc;
        if (p->rtapi == K8S_RT_AGENTBOX && !ext)
            return ab_err_set(err, AB_UNSUPPORTED, "k8s.runtime_api is agentbox-runtime but "
                                                   "sandbox %s runs another runtime",
                              h->sandbox);
    }
    if (!base) {
        json_t *res = NULL;
        if ((rc = compat_execute(p, h, "pwd", p->request_timeout_s, 0, NULL, &res, err)))
            return rc;
        const char *o = json_string_value(json_object_get(res, "stdout"));
        if (o) {
            size_t n = strlen(o);
            while (n && o[n - 1] == '\n')
                n--;
            base = ab_strndup(o, n);
        }
        json_decref(res);
        if (!base || base[0] != '/')
            return ab_err_set(err, AB_PROTO, "cannot learn the runtime's base directory");
    }
    pthread_mutex_lock(&h->lock);
    h->rt_ext = ext;
    free(h->base_real);
    h->base_real = base;
    pthread_mutex_unlock(&h->lock);
    AB_LOG_DEBUG("k8s.runtime", "sandbox=%s agentbox_ext=%d base=%s", h->sandbox, ext, base);
    return AB_OK;
}

ab_status k8s_rt_ping(struct k8s_provider *p, struct sbx_handle *h, struct ab_err *err)
{
    struct rt_req q = {.method = "GET", .path = "/", .idempotent = false, .timeout_s = 10};
    struct rt_resp r;
    ab_status rc = rt_request(p, h, &q, &r, err);
    if (!rc && r.status != 200)
        rc = ab_err_set(err, AB_SANDBOX, "the sandbox runtime answered HTTP %ld", r.status);
    buf_cleanup(&r.body);
    return rc;
}

/* ---- exec: python-runtime /execute ---- */

/* POST /execute; max_body: the largest answer accepted (0 = RT_MAX_JSON); cancel (may be
 * NULL) abandons the request with AB_CANCELLED. */
static ab_status compat_execute(struct k8s_provider *p, struct sbx_handle *h, const char *command,
                                int64_t timeout_s, size_t max_body, struct ab_cancel *cancel,
                                json_t **out, struct ab_err *err)
{
    json_t *body = json_pack("{s:s}", "command", command);
    char *js = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!js)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    /* never idempotent: a command must not run twice */
    struct rt_req q = {.method = "POST", .path = "/execute", .json = js, .timeout_s = timeout_s,
                       .max_body = max_body, .cancel = cancel};
    struct rt_resp r;
    ab_status rc = rt_request(p, h, &q, &r, err);
    free(js);
    if (!rc && r.status != 200) {
        char tmp[600];
        rc = ab_err_set(err, AB_SANDBOX, "the sandbox runtime refused /execute: %s (HTTP %ld)",
                        resp_text(&r, tmp, sizeof(tmp)), r.status);
    }
    if (!rc) {
        json_error_t je;
        *out = json_loadb(buf_cstr(&r.body), r.body.len, JSON_ALLOW_NUL, &je);
        if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            rc = ab_err_set(err, AB_PROTO, "the sandbox runtime's /execute answer is not JSON");
        }
    }
    buf_cleanup(&r.body);
    return rc;
}

/* Build `sh -c '<script>'` for /execute: cd, env, stdin, stderr into stdout, timeout, and the
 * output base64-encoded. The python-runtime returns stdout as text decoded as UTF-8 with
 * universal newlines (subprocess text mode): output that is not UTF-8 makes the whole request
 * fail, and '\r' comes back as '\n', which would corrupt command output, file names from find
 * and lines from grep. Base64 is ASCII, so the bytes arrive exactly. Only the first
 * output_cap + 1 bytes are encoded; the rest is drained (never a SIGPIPE for the command).
 * The command's exit status leaves the pipeline through fd 4 (sh has no pipefail), and the
 * wrapper's own stderr (where sh reports "Killed" for a child killed by a signal) is
 * discarded, so the output is the command's alone, as with agentbox-runtime's exec. */
static char *compat_script(struct k8s_provider *p, struct sbx_handle *h,
                           const struct sbx_exec_req *req, const char *pidfile)
{
    struct buf s;
    buf_init(&s, 96u << 20);
    /* Cancellable: note the process groups to kill (compat_cancel). The runtime starts each
     * command in a new session, so the wrapper's pid is its group; `timeout` moves itself and
     * the command into a group of its own, whose id is the pid of the subshell that execs it
     * (its child's $PPID: sh has no way to name a subshell's own pid). */
    char *qpid = pidfile ? k8s_shquote(pidfile) : NULL;
    if (qpid) /* a read-only /tmp only costs the cancellation, never the command */
        buf_printf(&s, "{ echo $$ > %s; } 2>/dev/null; ", qpid);
    char *cwd = req->cwd ? to_real(p, h, req->cwd) : ab_strdup(h->base_real);
    char *qcwd = k8s_shquote(cwd ? cwd : "/");
    buf_printf(&s, "cd %s || exit 1; ", qcwd);
    free(qcwd);
    free(cwd);
    for (const char *const *e = req->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char *qv = k8s_shquote(eq + 1);
        buf_printf(&s, "export %.*s=%s; ", (int)(eq - *e), *e, qv);
        free(qv);
    }
    char *inner = NULL;
    if (req->argv) {
        struct buf a;
        buf_init(&a, 64u << 20);
        for (const char *const *v = req->argv; *v; v++) {
            char *q = k8s_shquote(*v);
            buf_printf(&a, "%s%s", v == req->argv ? "" : " ", q);
            free(q);
        }
        inner = buf_steal(&a, NULL);
    } else {
        char *q = k8s_shquote(req->shell ? req->shell : "");
        inner = ab_asprintf("sh -c %s", q);
        free(q);
    }
    buf_append_str(&s, "exec 3>&1; ec=$( { { ");
    if (req->stdin_data) {
        size_t bl = 0;
        char *b64 = ab_base64_encode(req->stdin_data, req->stdin_len, &bl);
        buf_printf(&s, "printf %%s '%s' | base64 -d | ", b64 ? b64 : "");
        free(b64);
    }
    /* The command runs in a subshell that execs it with its redirections: dash prints "Killed"
     * for a child killed by a signal to the stderr in effect for that command, so the
     * waiting shell must not hold the 2>&1 itself. fds 3 and 4 are closed for the command: a
     * background process keeping them open would hold the substitution open. */
    buf_append_str(&s, "( ");
    if (qpid && req->timeout_ms > 0)
        buf_printf(&s, "{ sh -c 'echo $PPID' >> %s; } 2>/dev/null; ", qpid);
    buf_append_str(&s, "exec ");
    if (req->timeout_ms > 0)
        buf_printf(&s, "timeout -k 2 %.3f ", (double)req->timeout_ms / 1000.0);
    buf_printf(&s,
               "%s %s2>&1 3>&- 4>&- ); echo $? >&4; } 2>/dev/null | { head -c %zu | "
               "base64 -w0 >&3; cat >/dev/null; }; } 4>&1 ); %s%s%sexit ${ec:-1}",
               inner, req->stdin_data ? "" : "</dev/null ",
               (req->output_cap ? req->output_cap : DEFAULT_OUTCAP) + 1, qpid ? "rm -f " : "",
               qpid ? qpid : "", qpid ? "; " : "");
    free(inner);
    free(qpid);
    char *script = buf_steal(&s, NULL);
    char *q = script ? k8s_shquote(script) : NULL;
    char *cmd = q ? ab_asprintf("sh -c %s", q) : NULL;
    free(script);
    free(q);
    return cmd;
}

/* Kill the process groups a cancelled /execute command noted in pidfile (compat_script).
 * The pid file may not be written yet when the cancel comes early: wait for it, bounded. */
static void compat_cancel(struct k8s_provider *p, struct sbx_handle *h, const char *pidfile)
{
    /* pidfile is /tmp/.agentbox-exec-<hex>: nothing to quote inside the single quotes that
     * the runtime's shlex split needs. */
    const char *q = pidfile;
    char *script = ab_asprintf("sh -c 'i=0; while [ ! -s %s ] && [ $i -lt 50 ]; do sleep 0.1; "
                               "i=$((i+1)); done; for g in $(tac %s 2>/dev/null); do kill -9 -$g "
                               "2>/dev/null; done; rm -f %s'",
                               q, q, q);
    json_t *r = NULL;
    struct ab_err err;
    ab_err_clear(&err);
    if (script && compat_execute(p, h, script, p->request_timeout_s, 0, NULL, &r, &err))
        AB_LOG_WARN("k8s.cancel_failed", "sandbox=%s error=\"%s\"", h->sandbox, err.msg);
    json_decref(r);
    free(script);
}

static ab_status exec_compat(struct k8s_provider *p, struct sbx_handle *h,
                             const struct sbx_exec_req *req, struct sbx_exec_result *res,
                             struct ab_err *err)
{
    char pidfile[64] = "";
    if (req->cancel) {
        char id[33];
        if (ab_random_hex(id, 16) == AB_OK)
            snprintf(pidfile, sizeof(pidfile), "/tmp/.agentbox-exec-%s", id);
    }
    char *cmd = compat_script(p, h, req, pidfile[0] ? pidfile : NULL);
    if (!cmd)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    int64_t t0 = ab_mono_ms();
    json_t *r = NULL;
    int64_t tmo = req->timeout_ms > 0 ? req->timeout_ms / 1000 + 5 : p->request_timeout_s * 10;
    /* The answer carries up to output_cap + 1 bytes as base64 (4/3), plus JSON and the
     * runtime's own stderr. */
    size_t cap = req->output_cap ? req->output_cap : DEFAULT_OUTCAP;
    size_t max_body = AB_MAX((cap + 3) / 3 * 4 + (1u << 20), (size_t)RT_MAX_JSON);
    ab_status rc =
        compat_execute(p, h, cmd, tmo, max_body, pidfile[0] ? req->cancel : NULL, &r, err);
    free(cmd);
    if (rc == AB_CANCELLED) {
        /* The upstream API has no way to stop a command: kill its process groups with
         * another command, as agentbox-runtime does when its exec stream closes. */
        compat_cancel(p, h, pidfile);
        res->cancelled = true;
        res->exit_code = 130;
        res->duration_ms = ab_mono_ms() - t0;
        return AB_OK;
    }
    if (rc)
        return rc;
    const char *out = json_string_value(json_object_get(r, "stdout"));
    size_t olen = json_string_length(json_object_get(r, "stdout"));
    const char *se = json_string_value(json_object_get(r, "stderr"));
    int code = (int)json_integer_value(json_object_get(r, "exit_code"));
    if (se && ab_starts_with(se, "Failed to execute command: ") && (!out || !*out) && code == 1) {
        rc = ab_err_set(err, AB_SANDBOX, "the sandbox runtime could not run the command: %s",
                        se + 27);
        json_decref(r);
        return rc;
    }
    res->output.max = cap;
    /* stdout is the base64 of the output (compat_script); a runtime that answered something
     * else (no base64 in the image) is passed through as it is. */
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    if (out && ab_base64_decode(out, olen, &raw, &rawlen) == AB_OK) {
        out = (const char *)raw;
        olen = rawlen;
    }
    size_t kept = buf_append_upto(&res->output, out ? out : "", olen);
    res->truncated = kept < olen;
    if (req->on_output && olen)
        req->on_output(req->on_output_arg, out, olen);
    free(raw);
    if (se && *se) /* the runtime's own messages, after the command's output */
        res->truncated |= buf_append_upto(&res->output, se, strlen(se)) < strlen(se);
    res->timed_out = req->timeout_ms > 0 && code == 124;
    res->exit_code = code < 0 ? 128 - code : code;
    res->duration_ms = ab_mono_ms() - t0;
    json_decref(r);
    return AB_OK;
}

/* ---- exec: agentbox-runtime streaming ---- */

struct stream_ctx {
    const struct sbx_exec_req *req;
    struct sbx_exec_result *res;
    bool got_exit;
};

static bool on_exec_line(void *arg, json_t *ev)
{
    struct stream_ctx *s = arg;
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type)
        return true;
    if (strcmp(type, "output") == 0) {
        const char *d = json_string_value(json_object_get(ev, "data"));
        if (d) {
            unsigned char *raw = NULL;
            size_t n = 0;
            if (ab_base64_decode(d, strlen(d), &raw, &n) == AB_OK) {
                size_t kept = buf_append_upto(&s->res->output, raw, n);
                if (kept < n)
                    s->res->truncated = true;
                if (s->req->on_output)
                    s->req->on_output(s->req->on_output_arg, (const char *)raw, n);
                free(raw);
            }
        }
        if (json_object_get(ev, "dropped"))
            s->res->truncated = true;
    } else if (strcmp(type, "exit") == 0) {
        s->res->exit_code = (int)json_integer_value(json_object_get(ev, "exit_code"));
        s->res->timed_out = json_is_true(json_object_get(ev, "timed_out"));
        if (json_is_true(json_object_get(ev, "truncated")))
            s->res->truncated = true;
        s->got_exit = true;
        return false;
    }
    return true;
}

static ab_status exec_ext(struct k8s_provider *p, struct sbx_handle *h,
                          const struct sbx_exec_req *req, struct sbx_exec_result *res,
                          struct ab_err *err)
{
    json_t *body = json_object();
    if (req->argv) {
        json_t *a = json_array();
        for (const char *const *v = req->argv; *v; v++)
            json_array_append_new(a, json_string(*v));
        json_object_set_new(body, "argv", a);
    } else {
        json_object_set_new(body, "shell", json_string(req->shell ? req->shell : ""));
    }
    char *cwd = req->cwd ? to_real(p, h, req->cwd) : NULL;
    if (cwd)
        json_object_set_new(body, "cwd", json_string(cwd));
    free(cwd);
    if (req->env) {
        json_t *e = json_array();
        for (const char *const *v = req->env; *v; v++)
            json_array_append_new(e, json_string(*v));
        json_object_set_new(body, "env", e);
    }
    if (req->stdin_data) {
        size_t bl = 0;
        char *b64 = ab_base64_encode(req->stdin_data, req->stdin_len, &bl);
        json_object_set_new(body, "stdin", json_string(b64 ? b64 : ""));
        free(b64);
    }
    if (req->timeout_ms > 0)
        json_object_set_new(body, "timeout_ms", json_integer(req->timeout_ms));
    size_t cap = req->output_cap ? req->output_cap : DEFAULT_OUTCAP;
    json_object_set_new(body, "output_cap", json_integer((json_int_t)cap));
    char *js = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!js)
        return ab_err_set(err, AB_NOMEM, "out of memory (exec request)");
    res->output.max = cap;
    struct k8s_ndjson nd;
    k8s_ndjson_init(&nd, 16u << 20);
    struct stream_ctx s = {.req = req, .res = res};
    int64_t t0 = ab_mono_ms();
    struct rt_req q = {.method = "POST", .path = "/agentbox/v1/exec", .json = js,
                       .timeout_s = req->timeout_ms > 0 ? req->timeout_ms / 1000 + 1 : 0,
                       .idempotent = false, .cancel = req->cancel, .nd = &nd,
                       .line_cb = on_exec_line, .line_arg = &s, .max_body = 1u << 20};
    if (!q.timeout_s)
        q.timeout_s = 24 * 3600;
    struct rt_resp r;
    ab_status rc = rt_request(p, h, &q, &r, err);
    free(js);
    k8s_ndjson_cleanup(&nd);
    res->duration_ms = ab_mono_ms() - t0;
    if (rc == AB_SANDBOX && !s.got_exit)
        ab_err_wrap(err, "the sandbox runtime of %s stopped answering during the command (the "
                         "pod may have restarted); the command's outcome is unknown",
                    h->sandbox);
    if (rc == AB_CANCELLED) {
        /* Closing the stream makes the runtime kill the command's process group. */
        res->cancelled = true;
        res->exit_code = 130;
        rc = AB_OK;
    } else if (!rc && !s.got_exit) {
        if (r.status != 200) {
            char tmp[600];
            rc = ab_err_set(err, AB_SANDBOX, "the sandbox runtime refused the command: %s (HTTP "
                                             "%ld)",
                            resp_text(&r, tmp, sizeof(tmp)), r.status);
        } else {
            rc = ab_err_set(err, AB_SANDBOX,
                            "the sandbox runtime of %s stopped answering during the command "
                            "(the pod may have restarted); the command's outcome is unknown",
                            h->sandbox);
        }
    }
    buf_cleanup(&r.body);
    return rc;
}

ab_status k8s_rt_exec(struct k8s_provider *p, struct sbx_handle *h, const struct sbx_exec_req *req,
                      struct sbx_exec_result *res, struct ab_err *err)
{
    ab_status rc = probe_runtime(p, h, err);
    if (rc)
        return rc;
    return h->rt_ext ? exec_ext(p, h, req, res, err) : exec_compat(p, h, req, res, err);
}

/* Run a helper script (POSIX sh) in the pod; output (stdout, and stderr merged) into out. */
static ab_status run_script(struct k8s_provider *p, struct sbx_handle *h, const char *script,
                            struct buf *out, int *exit_code, struct ab_err *err)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    struct sbx_exec_req req = {.argv = argv,
                               .timeout_ms = p->request_timeout_s * 4000,
                               .output_cap = RT_SCRIPT_OUTPUT};
    const char *envc[] = {"LC_ALL=C", NULL};
    req.env = envc;
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    ab_status rc = k8s_rt_exec(p, h, &req, &res, err);
    if (!rc && res.truncated)
        rc = ab_err_set(err, AB_LIMIT, "a file listing in the sandbox exceeded %u bytes",
                        RT_SCRIPT_OUTPUT);
    if (!rc && res.timed_out)
        rc = ab_err_set(err, AB_TIMEOUT, "a file operation in the sandbox timed out");
    if (!rc) {
        *exit_code = res.exit_code;
        *out = res.output;
        buf_init(&res.output, 1);
    }
    sbx_exec_result_cleanup(&res);
    return rc;
}

/* Run a helper script about one sandbox path: `p=<its real path, quoted>; ` then fmt. out
 * (NULL: discarded) and *exit_code as for run_script. */
static ab_status run_path_script(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                                 struct buf *out, int *exit_code, struct ab_err *err,
                                 const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static ab_status run_path_script(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                                 struct buf *out, int *exit_code, struct ab_err *err,
                                 const char *fmt, ...)
{
    char *real = to_real(p, h, path);
    char *q = real ? k8s_shquote(real) : NULL;
    char *body = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&body, fmt, ap) < 0)
        body = NULL;
    va_end(ap);
    char *script = q && body ? ab_asprintf("p=%s; %s", q, body) : NULL;
    struct buf discard;
    ab_status rc = script ? run_script(p, h, script, out ? out : &discard, exit_code, err)
                          : ab_err_set(err, AB_NOMEM, "out of memory");
    if (!rc && !out)
        buf_cleanup(&discard);
    free(script);
    free(body);
    free(q);
    free(real);
    return rc;
}

/* ---- file primitives ---- */

static enum sbx_ftype ftype_of(char c)
{
    switch (c) {
    case 'f':
        return SBX_FT_FILE;
    case 'd':
        return SBX_FT_DIR;
    case 'l':
        return SBX_FT_SYMLINK;
    case 'N':
    case 'L':
    case '?':
        return SBX_FT_NONE;
    default:
        return SBX_FT_OTHER;
    }
}

/* find -printf format: type, target type, size, mtime, mode, name; NUL-separated. */
#define FIND_FMT "'%y\\0%Y\\0%s\\0%T@\\0%m\\0%P\\0'"
#define FIND_FMT_NAME "'%y\\0%Y\\0%s\\0%T@\\0%m\\0%f\\0'"

struct rec {
    struct sbx_stat st;
    const char *name;
};

/* Parse one 6-field record at *pos; false at the end or on a malformed tail. */
static bool parse_rec(const char *d, size_t len, size_t *pos, struct rec *r)
{
    const char *f[6];
    size_t at = *pos;
    for (int i = 0; i < 6; i++) {
        if (at >= len)
            return false;
        const char *z = memchr(d + at, '\0', len - at);
        if (!z)
            return false;
        f[i] = d + at;
        at = (size_t)(z - d) + 1;
    }
    memset(r, 0, sizeof(*r));
    r->st.type = ftype_of(f[0][0]);
    r->st.target_type = r->st.type == SBX_FT_SYMLINK ? ftype_of(f[1][0]) : r->st.type;
    r->st.size = strtoull(f[2], NULL, 10);
    r->st.mtime_ms = (int64_t)(strtod(f[3], NULL) * 1000.0);
    r->st.mode = (uint32_t)strtoul(f[4], NULL, 8);
    r->name = f[5];
    *pos = at;
    return true;
}

/* Every record in find's output, in order, into *recs (new; names point into out), and a
 * zeroed array of as many elements of elem_size for the caller's own entries (returned, new).
 * NULL when out of memory (then *recs is NULL and *n 0). */
static void *parse_recs(const struct buf *out, size_t elem_size, struct rec **recs, size_t *n)
{
    const char *d = out->data ? out->data : "";
    size_t pos = 0, count = 0;
    struct rec r;
    while (parse_rec(d, out->len, &pos, &r))
        count++;
    *n = 0;
    *recs = calloc(count ? count : 1, sizeof(**recs));
    void *entries = calloc(count ? count : 1, elem_size);
    if (!*recs || !entries) {
        free(*recs);
        free(entries);
        *recs = NULL;
        return NULL;
    }
    pos = 0;
    while (*n < count && parse_rec(d, out->len, &pos, &(*recs)[*n]))
        (*n)++;
    return entries;
}

/* Shell snippets (used inside ab_asprintf formats, hence the doubled %) that tell why a path
 * $p cannot be used, for the exit codes below. `test -e` is false both when a path is absent
 * and when a directory above it may not be searched (stat(2) fails with ENOENT or EACCES;
 * test(1) does not say which), so the nearest existing ancestor decides: a directory the
 * sandbox user may not search means "permission denied", a non-directory means "not a
 * directory", anything else "absent". Directory names come from dirname with a sentinel
 * character, because $(...) strips trailing newlines, which are valid in file names. */
/* clang-format off */
#define SH_UP(v) v "=$(dirname -- \"$" v "\"; printf x); " v "=${" v "%%??}; "
#define SH_WHY_MISSING                                                                        \
    "a=$p; while [ \"$a\" != / ] && [ \"$a\" != . ]; do " SH_UP("a")                         \
    "if [ -e \"$a\" ] || [ -L \"$a\" ]; then "                                                \
    "[ -d \"$a\" ] || exit 6; [ -x \"$a\" ] || exit 5; exit 3; fi; done; exit 3"
/* clang-format on */

enum {
    WHY_OK = 0,
    WHY_ABSENT = 3,
    WHY_ISDIR = 4,
    WHY_DENIED = 5,
    WHY_NOTDIR = 6,
    WHY_UNKNOWN = 7,
};

static ab_status why_status(int code, const char *path, struct ab_err *err)
{
    switch (code) {
    case WHY_ABSENT:
        return ab_err_set(err, AB_NOTFOUND, "%s: no such file or directory", path);
    case WHY_ISDIR:
        return ab_err_set(err, AB_ISDIR, "%s is a directory", path);
    case WHY_DENIED:
        return ab_err_set(err, AB_DENIED, "%s: permission denied", path);
    case WHY_NOTDIR:
        return ab_err_set(err, AB_NOTDIR, "%s: a parent is not a directory", path);
    default:
        return AB_OK;
    }
}

/* Why can the runtime not read path (it answered 404 or an error)? WHY_* in *code. */
static ab_status why_unreadable(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                                int *code, struct ab_err *err)
{
    return run_path_script(p, h, path, NULL, code, err,
                           "if [ -e \"$p\" ] || [ -L \"$p\" ]; then [ -d \"$p\" ] && exit 4; "
                           "[ -r \"$p\" ] || exit 5; exit 7; fi; " SH_WHY_MISSING);
}

/* Why could the runtime not create path? Creates missing parent directories when that is
 * all that was wrong (python-runtime <= 0.5.6 does not), answering WHY_OK: retry. */
static ab_status why_unwritable(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                                int *code, struct ab_err *err)
{
    /* clang-format off */
    return run_path_script(p, h, path, NULL, code, err,
        "[ -d \"$p\" ] && exit 4; "
        "if [ -e \"$p\" ] || [ -L \"$p\" ]; then [ -w \"$p\" ] || exit 5; exit 7; fi; "
        "d=$p; " SH_UP("d")
        "a=$d; until [ -e \"$a\" ] || [ -L \"$a\" ]; do "
        "[ \"$a\" = / ] || [ \"$a\" = . ] && exit 7; " SH_UP("a")
        "done; "
        "[ -d \"$a\" ] || exit 6; [ -w \"$a\" ] && [ -x \"$a\" ] || exit 5; "
        "[ \"$a\" = \"$d\" ] && exit 7; "
        "mkdir -p -- \"$d\" 2>/dev/null || exit 5; exit 0");
    /* clang-format on */
}

ab_status k8s_rt_stat(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                      struct sbx_stat *st, struct ab_err *err)
{
    ab_status rc = probe_runtime(p, h, err);
    if (rc)
        return rc;
    struct buf out;
    int code = 0;
    rc = run_path_script(p, h, path, &out, &code, err,
                         "if ! [ -e \"$p\" ] && ! [ -L \"$p\" ]; then " SH_WHY_MISSING "; fi; "
                         "find \"$p\" -maxdepth 0 -printf %s 2>/dev/null",
                         FIND_FMT_NAME);
    if (!rc) {
        size_t pos = 0;
        struct rec r;
        if (code == WHY_ABSENT || code == WHY_DENIED || code == WHY_NOTDIR)
            rc = why_status(code, path, err);
        else if (!parse_rec(out.data ? out.data : "", out.len, &pos, &r))
            rc = ab_err_set(err, AB_DENIED, "%s: cannot stat (permission denied)", path);
        else
            *st = r.st;
        buf_cleanup(&out);
    }
    return rc;
}

/* `find "$p" <find_args>` in the directory path (as the caller named it), once the script
 * has made sure it is a directory the sandbox user may list (else that error: missing, not a
 * directory, permission denied). out gets find's NUL-separated records, *code the script's
 * exit status (find_args may end with its own, e.g. `|| exit 9` for an incomplete walk). */
static ab_status find_in_dir(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                             const char *find_args, struct buf *out, int *code, struct ab_err *err)
{
    ab_status rc = probe_runtime(p, h, err);
    if (rc)
        return rc;
    *code = 0;
    rc = run_path_script(p, h, path, out, code, err,
                         "if ! [ -e \"$p\" ] && ! [ -L \"$p\" ]; then " SH_WHY_MISSING "; fi; "
                         "[ -d \"$p\" ] || exit 4; [ -r \"$p\" ] && [ -x \"$p\" ] || exit 5; "
                         "find \"$p\" %s",
                         find_args);
    if (rc)
        return rc;
    if (*code == WHY_ABSENT || *code == WHY_ISDIR || *code == WHY_DENIED || *code == WHY_NOTDIR) {
        buf_cleanup(out);
        return *code == WHY_ISDIR ? ab_err_set(err, AB_NOTDIR, "%s: not a directory", path)
                                  : why_status(*code, path, err);
    }
    return AB_OK;
}

ab_status k8s_rt_list_dir(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                          struct sbx_dirent **ents, size_t *n, struct ab_err *err)
{
    struct buf out;
    int code;
    ab_status rc =
        find_in_dir(p, h, path, "-mindepth 1 -maxdepth 1 -printf " FIND_FMT_NAME " 2>/dev/null",
                    &out, &code, err);
    if (rc)
        return rc;
    struct rec *recs;
    size_t nv;
    struct sbx_dirent *v = parse_recs(&out, sizeof(*v), &recs, &nv);
    if (!v)
        rc = AB_NOMEM;
    for (size_t i = 0; i < nv; i++) {
        v[i].name = ab_strdup(recs[i].name);
        v[i].st = recs[i].st;
        if (!v[i].name)
            rc = AB_NOMEM;
    }
    free(recs);
    buf_cleanup(&out);
    if (rc) {
        sbx_dirents_free(v, nv);
        return ab_err_set(err, rc, "out of memory");
    }
    *ents = v;
    *n = nv;
    return AB_OK;
}

/* Walk: find prints depth-first; rebuild the breadth-first order of core's fallback
 * (children of each directory in readdir order, directories expanded in output order). */
struct wrec {
    char *rel;
    struct sbx_stat st;
    size_t idx;
    size_t parent_len; /* length of the parent prefix in rel (0 = root) */
    bool taken;        /* moved into the result */
};

static int cmp_parent(const void *a, const void *b)
{
    const struct wrec *x = a, *y = b;
    size_t lx = x->parent_len, ly = y->parent_len;
    int c = memcmp(x->rel, y->rel, AB_MIN(lx, ly));
    if (c)
        return c;
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static size_t lower_bound(struct wrec *v, size_t n, const char *parent, size_t plen)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        struct wrec key = {.rel = (char *)parent, .parent_len = plen, .idx = 0};
        if (cmp_parent(&v[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

ab_status k8s_rt_walk(struct k8s_provider *p, struct sbx_handle *h, const struct sbx_walk_req *req,
                      struct sbx_walk_entry **ents, size_t *n, bool *truncated,
                      struct ab_err *err)
{
    *truncated = false;
    /* Below the root, a directory find cannot read makes find exit non-zero: the walk is
     * then incomplete (core's fallback does the same with list_dir's AB_DENIED). */
    const char *args = req->skip_dot_dirs
                           ? "-mindepth 1 \\( -type d -name '.*' -printf " FIND_FMT " -prune \\) "
                             "-o -printf " FIND_FMT " 2>/dev/null || exit 9; exit 0"
                           : "-mindepth 1 -printf " FIND_FMT " 2>/dev/null || exit 9; exit 0";
    struct buf out;
    int code;
    ab_status rc = find_in_dir(p, h, req->root, args, &out, &code, err);
    if (rc)
        return rc;
    if (code == 9)
        *truncated = true;
    struct rec *recs;
    size_t nv;
    struct wrec *v = parse_recs(&out, sizeof(*v), &recs, &nv);
    if (!v)
        rc = AB_NOMEM;
    for (size_t i = 0; i < nv; i++) {
        const char *slash = strrchr(recs[i].name, '/');
        v[i] = (struct wrec){.rel = ab_strdup(recs[i].name),
                             .st = recs[i].st,
                             .idx = i,
                             .parent_len = slash ? (size_t)(slash - recs[i].name) : 0};
        if (!v[i].rel)
            rc = AB_NOMEM;
    }
    free(recs);
    buf_cleanup(&out);
    struct sbx_walk_entry *res = NULL;
    size_t nres = 0;
    if (!rc) {
        qsort(v, nv, sizeof(*v), cmp_parent);
        res = calloc(nv ? nv : 1, sizeof(*res));
        if (!res)
            rc = AB_NOMEM;
    }
    if (!rc) {
        /* BFS: res doubles as the queue. */
        size_t lo = lower_bound(v, nv, "", 0);
        for (size_t i = lo; i < nv && v[i].parent_len == 0; i++) {
            res[nres].relpath = v[i].rel;
            res[nres].st = v[i].st;
            v[i].taken = true;
            nres++;
        }
        for (size_t qi = 0; qi < nres; qi++) {
            if (res[qi].st.type != SBX_FT_DIR)
                continue;
            const char *rel = res[qi].relpath;
            size_t plen = strlen(rel);
            for (size_t i = lower_bound(v, nv, rel, plen);
                 i < nv && v[i].parent_len == plen && memcmp(v[i].rel, rel, plen) == 0; i++) {
                if (v[i].taken)
                    continue;
                res[nres].relpath = v[i].rel;
                res[nres].st = v[i].st;
                v[i].taken = true;
                nres++;
            }
        }
        if (req->max_entries && nres > req->max_entries) {
            for (size_t i = req->max_entries; i < nres; i++)
                free(res[i].relpath);
            nres = req->max_entries;
            *truncated = true;
        }
    }
    for (size_t i = 0; i < nv; i++)
        if (!v[i].taken)
            free(v[i].rel);
    free(v);
    if (rc) {
        sbx_walk_entries_free(res, nres);
        return ab_err_set(err, rc, "out of memory");
    }
    *ents = res;
    *n = nres;
    return AB_OK;
}

ab_status k8s_rt_search(struct k8s_provider *p, struct sbx_handle *h,
                        const struct sbx_search_req *req, struct sbx_match **matches, size_t *n,
                        bool *truncated, struct ab_err *err)
{
    *truncated = false;
    *matches = NULL;
    *n = 0;
    if (req->npaths == 0 || memchr(req->literal, '\n', req->literal_len))
        return AB_OK; /* a line never contains a newline: nothing can match */
    ab_status rc = probe_runtime(p, h, err);
    if (rc)
        return rc;
    char *lit = ab_strndup(req->literal, req->literal_len);
    char *qlit = k8s_shquote(lit);
    free(lit);
    struct buf s;
    buf_init(&s, 96u << 20);
    char **reals = calloc(req->npaths, sizeof(char *));
    buf_append_str(&s, "set --");
    for (size_t i = 0; reals && i < req->npaths; i++) {
        reals[i] = to_real(p, h, req->paths[i]);
        char *qp = k8s_shquote(reals[i] ? reals[i] : "");
        buf_printf(&s, " %s", qp);
        free(qp);
    }
    /* Per file: skip binaries (a NUL in the first 8 KiB, as core does), then grep -F with
     * the file name NUL-terminated (-Z) so any name parses. -a: the NUL rule decided. */
    buf_printf(&s, "; for f; do n=$(head -c 8192 -- \"$f\" 2>/dev/null | tr -d '\\000' | wc -c); "
                   "a=$(head -c 8192 -- \"$f\" 2>/dev/null | wc -c); [ \"$n\" = \"$a\" ] || "
                   "continue; grep -aHnFZ -e %s -- \"$f\" 2>/dev/null; done; exit 0",
               qlit);
    free(qlit);
    char *script = buf_steal(&s, NULL);
    struct buf out;
    int code = 0;
    if (!reals || !script)
        rc = ab_err_set(err, AB_NOMEM, "out of memory");
    else
        rc = run_script(p, h, script, &out, &code, err);
    free(script);
    if (rc) {
        for (size_t i = 0; reals && i < req->npaths; i++)
            free(reals[i]);
        free(reals);
        return rc;
    }
    struct sbx_match *v = NULL;
    size_t nv = 0, cap = 0;
    const char *d = out.data ? out.data : "";
    size_t len = out.len, pos = 0;
    while (pos < len && !rc) {
        const char *z = memchr(d + pos, '\0', len - pos);
        if (!z)
            break;
        const char *file = d + pos;
        const char *colon = memchr(z + 1, ':', (size_t)(d + len - (z + 1)));
        if (!colon)
            break;
        const char *nl = memchr(colon + 1, '\n', (size_t)(d + len - (colon + 1)));
        const char *end = nl ? nl : d + len;
        if (req->max_matches && nv >= req->max_matches) {
            *truncated = true;
            break;
        }
        if (nv == cap) {
            cap = cap ? cap * 2 : 32;
            struct sbx_match *nvv = realloc(v, cap * sizeof(*nvv));
            if (!nvv) {
                rc = AB_NOMEM;
                break;
            }
            v = nvv;
        }
        size_t tl = (size_t)(end - (colon + 1));
        if (tl && colon[tl] == '\r')
            tl--;
        /* map the real path back to the path the caller gave */
        const char *given = NULL;
        for (size_t i = 0; i < req->npaths && !given; i++)
            if (reals[i] && strcmp(reals[i], file) == 0)
                given = req->paths[i];
        v[nv].path = given ? ab_strdup(given) : from_real(p, h, file);
        v[nv].line = strtoll(z + 1, NULL, 10);
        v[nv].text = ab_strndup(colon + 1, tl);
        nv++;
        pos = (size_t)(end - d) + 1;
    }
    buf_cleanup(&out);
    for (size_t i = 0; i < req->npaths; i++)
        free(reals[i]);
    free(reals);
    if (rc) {
        sbx_matches_free(v, nv);
        return ab_err_set(err, rc, "out of memory");
    }
    *matches = v;
    *n = nv;
    return AB_OK;
}

/* ---- read/write ---- */

/* Read through a command (`cat`): paths outside the runtime's base directory, which its file
 * endpoints refuse. Exact bytes with both runtimes (the python-runtime's /execute output is
 * base64-encoded by compat_script). */
static ab_status read_via_exec(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                               size_t max_bytes, struct buf *out, struct ab_err *err)
{
    char *real = to_real(p, h, path);
    char *q = k8s_shquote(real);
    char *script = ab_asprintf("[ -e %s ] || exit 3; [ -d %s ] && exit 4; [ -r %s ] || exit 5; "
                               "s=$(wc -c < %s) || exit 5; [ \"$s\" -le %zu ] || exit 6; "
                               "exec cat -- %s",
                               q, q, q, q, max_bytes, q);
    const char *argv[] = {"sh", "-c", script, NULL};
    struct sbx_exec_req req = {.argv = argv, .timeout_ms = p->request_timeout_s * 4000,
                               .output_cap = max_bytes + 1};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    ab_status rc = k8s_rt_exec(p, h, &req, &res, err);
    free(script);
    free(q);
    free(real);
    if (!rc) {
        switch (res.exit_code) {
        case 0:
            if (res.output.len > max_bytes)
                rc = ab_err_set(err, AB_LIMIT, "%s is larger than %zu bytes", path, max_bytes);
            else
                rc = buf_append(out, res.output.data ? res.output.data : "", res.output.len);
            break;
        case 3:
            rc = ab_err_set(err, AB_NOTFOUND, "%s: no such file", path);
            break;
        case 4:
            rc = ab_err_set(err, AB_ISDIR, "%s is a directory", path);
            break;
        case 6:
            rc = ab_err_set(err, AB_LIMIT, "%s is larger than %zu bytes", path, max_bytes);
            break;
        default:
            rc = ab_err_set(err, AB_DENIED, "%s: permission denied", path);
            break;
        }
    }
    sbx_exec_result_cleanup(&res);
    return rc;
}

ab_status k8s_rt_read_file(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                           size_t max_bytes, struct buf *out, struct ab_err *err)
{
    ab_status rc = probe_runtime(p, h, err);
    if (rc)
        return rc;
    const char *rel = rel_in_workspace(p, path);
    if (!rel || !*rel)
        return rel ? ab_err_set(err, AB_ISDIR, "%s is a directory", path)
                   : read_via_exec(p, h, path, max_bytes, out, err);
    char *enc = quote_path(rel);
    char *rpath = ab_asprintf("/download/%s", enc);
    free(enc);
    struct rt_req q = {.method = "GET", .path = rpath, .idempotent = true,
                       .timeout_s = p->request_timeout_s * 4, .max_body = max_bytes + 1};
    struct rt_resp r;
    rc = rt_request(p, h, &q, &r, err);
    free(rpath);
    if (rc == AB_LIMIT) {
        buf_cleanup(&r.body);
        return ab_err_set(err, AB_LIMIT, "%s is larger than %zu bytes", path, max_bytes);
    }
    if (!rc) {
        if (r.status == 200) {
            if (r.body.len > max_bytes)
                rc = ab_err_set(err, AB_LIMIT, "%s is larger than %zu bytes", path, max_bytes);
            else
                rc = buf_append(out, r.body.data ? r.body.data : "", r.body.len);
        } else if (r.status == 404) {
            /* 404 is "missing", "a directory" and "cannot open" upstream: ask the sandbox. */
            int code = WHY_ABSENT;
            rc = why_unreadable(p, h, path, &code, err);
            if (!rc)
                rc = code == WHY_UNKNOWN || code == WHY_OK
                         ? ab_err_set(err, AB_SANDBOX,
                                      "reading %s failed: the runtime answered 404 for a "
                                      "readable file",
                                      path)
                         : why_status(code, path, err);
        } else if (r.status == 403) {
            /* a symlink leading out of the base dir: the runtime refuses, exec can read */
            buf_cleanup(&r.body);
            return read_via_exec(p, h, path, max_bytes, out, err);
        } else {
            char tmp[600];
            rc = ab_err_set(err, AB_SANDBOX, "reading %s failed: %s (HTTP %ld)", path,
                            resp_text(&r, tmp, sizeof(tmp)), r.status);
        }
    }
    buf_cleanup(&r.body);
    return rc;
}

/* Write through a command (stdin to `cat`): for paths outside the base directory, which only
 * agentbox-runtime's exec can reach (inside = false), and for names the multipart upload
 * cannot carry (inside = true; works with both runtimes). */
static ab_status write_via_exec(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                                const void *data, size_t len, bool inside, struct ab_err *err)
{
    if (!h->rt_ext && !inside)
        return ab_err_set(err, AB_DENIED, "%s is outside the runtime's base directory (%s), "
                                          "which the python-runtime cannot write",
                          path, p->workspace);
    char *real = to_real(p, h, path);
    char *q = k8s_shquote(real);
    /* clang-format off */
    char *script = ab_asprintf("p=%s; d=$p; " SH_UP("d") "mkdir -p -- \"$d\" 2>/dev/null; "
                               "[ -d \"$p\" ] && exit 4; cat > \"$p\" 2>/dev/null || exit 5",
                               q);
    /* clang-format on */
    const char *argv[] = {"sh", "-c", script, NULL};
    struct sbx_exec_req req = {.argv = argv, .stdin_data = data ? data : "", .stdin_len = len,
                               .timeout_ms = p->request_timeout_s * 4000, .output_cap = 4096};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    ab_status rc = k8s_rt_exec(p, h, &req, &res, err);
    if (!rc && res.exit_code == 4) {
        rc = ab_err_set(err, AB_ISDIR, "%s is a directory", path);
    } else if (!rc && res.exit_code != 0) {
        int code = WHY_DENIED;
        rc = why_unwritable(p, h, path, &code, err);
        if (!rc)
            rc = code == WHY_OK || code == WHY_UNKNOWN
                     ? ab_err_set(err, AB_DENIED, "%s: cannot write (permission denied)", path)
                     : why_status(code, path, err);
    }
    sbx_exec_result_cleanup(&res);
    free(script);
    free(q);
    free(real);
    return rc;
}

ab_status k8s_rt_write_file(struct k8s_provider *p, struct sbx_handle *h, const char *path,
                            const void *data, size_t len, struct ab_err *err)
{
    ab_status rc = probe_runtime(p, h, err);
    if (rc)
        return rc;
    const char *rel = rel_in_workspace(p, path);
    if (!rel || !*rel)
        return rel ? ab_err_set(err, AB_ISDIR, "%s is a directory", path)
                   : write_via_exec(p, h, path, data, len, false, err);
    /* libcurl writes '"', CR and LF of a form-data filename as %22, %0D, %0A (the HTML5
     * multipart/form-data encoding, curl_mime_filename(3)) and neither runtime decodes them,
     * so such a name would be created under another name: write it through a command. */
    if (strpbrk(rel, "\"\r\n"))
        return write_via_exec(p, h, path, data, len, true, err);
    struct rt_req q = {.method = "POST", .path = "/upload", .upload = data, .upload_len = len,
                       .upload_name = rel, .idempotent = true,
                       .timeout_s = p->request_timeout_s * 4, .max_body = 1u << 20};
    for (int round = 0; round < 2; round++) {
        struct rt_resp r;
        rc = rt_request(p, h, &q, &r, err);
        if (rc)
            return rc;
        long status = r.status;
        char tmp[600];
        const char *txt = resp_text(&r, tmp, sizeof(tmp));
        buf_cleanup(&r.body);
        if (status == 200)
            return AB_OK;
        if (status == 403)
            return write_via_exec(p, h, path, data, len, false, err);
        if (status == 500) {
            /* The runtime could not open the file (its text has the errno, in a wording
             * that differs between runtimes): ask the sandbox why. Missing parents
             * (python-runtime <= 0.5.6 does not create them) are made, then once more. */
            int code = WHY_UNKNOWN;
            struct ab_err sub;
            ab_err_clear(&sub);
            if (why_unwritable(p, h, path, &code, &sub) == AB_OK && code != WHY_UNKNOWN &&
                (code != WHY_OK || round == 0)) {
                if (code == WHY_OK)
                    continue;
                return why_status(code, path, err);
            }
        }
        return ab_err_set(err, status == 500 ? AB_IO : AB_SANDBOX, "writing %s failed: %s (HTTP %ld)",
                          path, txt, status);
    }
    return rc;
}
