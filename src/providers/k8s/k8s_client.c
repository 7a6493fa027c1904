/*
 * k8s_client.c - the Kubernetes API client (libcurl).
 *
 * Credentials, in order: kubeconfig (token, tokenFile, client certificate/key as data or
 * files, CA data or file, insecure-skip-tls-verify, basic auth, exec credential plugins per
 * client.authentication.k8s.io), else the in-cluster service account (token re-read when
 * the file changes, since kubelet rotates projected tokens; CA; KUBERNETES_SERVICE_HOST/PORT).
 * Exec plugin credentials are cached until status.expirationTimestamp and dropped on a 401
 * (one fresh attempt), as client-go does.
 *
 * Requests: one easy handle per in-flight request, borrowed from a small pool so connections
 * (and TLS sessions) are reused. Every attempt has a connect and a total timeout; failed
 * attempts (connection errors, 429, 500, 502, 503, 504) are retried with exponential backoff
 * and full jitter, honouring Retry-After, bounded by a count and the caller's deadline.
 * Status objects become errors carrying the API's own message and reason.
 *
 * Watch streams are newline-delimited JSON (chunked); k8s_ndjson is the pure line splitter
 * the fuzzer exercises. Rejected: a generic "watch manager" thread; the provider's waits are
 * short and per-claim, so a blocking watch with resume-from-resourceVersion is simpler.
 */
#include "providers/k8s/k8s_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "config/kubeconfig.h"

extern char **environ;

#define K8S_MAX_BODY       (64u * 1024 * 1024)
#define K8S_MAX_LINE       (16u * 1024 * 1024)
#define K8S_POOL_MAX       8
#define SA_DIR_DEFAULT     "/var/run/secrets/kubernetes.io/serviceaccount"
#define EXEC_TIMEOUT_MS    60000
#define EXEC_MAX_OUTPUT    (1u << 20)

struct k8s_client {
    char *server;   /* as configured: for messages, and the Host header */
    char *url_base; /* what URLs are built on: server, or its tls-server-name form */
    char *tls_server_name;
    struct curl_slist *connect_to; /* tls-server-name:port -> real host:port, or NULL */
    char *host_header;             /* "Host: <server's host[:port]>" with connect_to */
    char *namespace;
    char *describe;
    bool insecure;
    char *ca_file;
    struct buf ca;        /* CA PEM bytes (blob) */
    struct buf cert, key; /* client cert/key PEM (blobs) */
    char *basic_userpwd;  /* secret */
    /* bearer token sources */
    char *static_token;   /* secret */
    char *token_file;     /* re-read when its mtime changes */
    char *file_token;     /* secret: cached content of token_file */
    struct timespec token_mtime;
    struct cfg_kube_exec exec; /* exec.command NULL = no plugin */
    char *exec_token;     /* secret: cached exec credential */
    struct buf exec_cert, exec_key;
    int64_t exec_expiry_ms; /* wall clock; 0 = no expiry given */
    bool exec_valid;
    char *exec_cluster_server;
    /* behaviour */
    int64_t timeout_ms;
    int max_retries;
    int64_t backoff_base_ms, backoff_max_ms;
    pthread_mutex_t lock; /* pool + credential caches */
    CURL *pool[K8S_POOL_MAX];
    int npool;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_global(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ---- */

char *k8s_urlencode(const char *s)
{
    struct buf b;
    buf_init(&b, 1u << 20);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            if (buf_append_char(&b, (char)*p))
                break;
        } else if (buf_printf(&b, "%%%02X", *p)) {
            break;
        }
    }
    return buf_steal(&b, NULL);
}

static ab_status read_small_file(const char *path, struct buf *out, size_t max, struct ab_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ab_err_sys(err, ab_status_from_errno(errno), errno, "cannot read %s", path);
    buf_init(out, max);
    ab_status rc = buf_read_fd(out, fd);
    int e = errno;
    close(fd);
    if (rc == AB_IO)
        return ab_err_sys(err, AB_IO, e, "cannot read %s", path);
    if (rc)
        return ab_err_set(err, rc, "%s is too large", path);
    return AB_OK;
}

static char *trim_dup(const struct buf *b)
{
    const char *s = buf_cstr(b);
    size_t n = b->len;
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    return ab_strndup(s, n);
}

/* ---- construction ---- */

static ab_status from_kubeconfig(struct k8s_client *c, const struct cfg_kubeconfig *kc,
                                 struct ab_err *err)
{
    c->server = ab_strdup(kc->server);
    c->tls_server_name = ab_strdup(kc->tls_server_name);
    c->namespace = ab_strdup(kc->namespace);
    c->insecure = kc->insecure;
    c->describe = ab_asprintf("kubeconfig %s context \"%s\"", kc->source, kc->context);
    ab_status rc = AB_OK;
    if (kc->ca_data)
        rc = buf_append(&c->ca, kc->ca_data, kc->ca_len);
    else if (kc->ca_file)
        c->ca_file = ab_strdup(kc->ca_file);
    if (rc)
        return ab_err_set(err, rc, "CA data too large");
    if (kc->cert_data)
        rc = buf_append(&c->cert, kc->cert_data, kc->cert_len);
    else if (kc->cert_file)
        rc = read_small_file(kc->cert_file, &c->cert, 1u << 20, err);
    if (rc)
        return rc;
    if (kc->key_data)
        rc = buf_append(&c->key, kc->key_data, kc->key_len);
    else if (kc->key_file)
        rc = read_small_file(kc->key_file, &c->key, 1u << 20, err);
    if (rc)
        return rc;
    if (kc->token)
        c->static_token = ab_strdup(kc->token);
    else if (kc->token_file)
        c->token_file = ab_strdup(kc->token_file);
    if (kc->username && kc->password)
        c->basic_userpwd = ab_asprintf("%s:%s", kc->username, kc->password);
    if (kc->exec.command) {
        c->exec.command = ab_strdup(kc->exec.command);
        size_t na = 0, ne = 0;
        while (kc->exec.args && kc->exec.args[na])
            na++;
        while (kc->exec.env && kc->exec.env[ne])
            ne++;
        c->exec.args = calloc(na + 2, sizeof(char *));
        c->exec.env = calloc(ne + 1, sizeof(char *));
        if (!c->exec.args || !c->exec.env)
            return ab_err_set(err, AB_NOMEM, "out of memory");
        c->exec.args[0] = ab_strdup(kc->exec.command);
        for (size_t i = 0; i < na; i++)
            c->exec.args[i + 1] = ab_strdup(kc->exec.args[i]);
        for (size_t i = 0; i < ne; i++)
            c->exec.env[i] = ab_strdup(kc->exec.env[i]);
        c->exec.api_version = ab_strdup(kc->exec.api_version ? kc->exec.api_version
                                                             : "client.authentication.k8s.io/v1");
        c->exec.install_hint = ab_strdup(kc->exec.install_hint);
        c->exec.provide_cluster_info = kc->exec.provide_cluster_info;
    }
    return AB_OK;
}

static ab_status from_service_account(struct k8s_client *c, struct ab_err *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    const char *dir = getenv("AGENTBOX_SERVICEACCOUNT_DIR");
    if (!dir || !*dir)
        dir = SA_DIR_DEFAULT;
    if (!host || !*host)
        return ab_err_set(err, AB_NOTFOUND,
                          "not running in a cluster ($KUBERNETES_SERVICE_HOST is not set)");
    char *tok = ab_asprintf("%s/token", dir);
    if (!tok || access(tok, R_OK) != 0) {
        int e = errno;
        ab_err_sys(err, AB_NOTFOUND, e, "in-cluster: cannot read the service account token %s",
                   tok ? tok : dir);
        free(tok);
        return AB_NOTFOUND;
    }
    c->token_file = tok;
    /* An IPv6 service host needs brackets in the URL. */
    bool v6 = strchr(host, ':') != NULL;
    c->server = ab_asprintf("https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "",
                            port && *port ? port : "443");
    c->ca_file = ab_asprintf("%s/ca.crt", dir);
    struct buf ns;
    struct ab_err ignore;
    char *nsf = ab_asprintf("%s/namespace", dir);
    if (nsf && read_small_file(nsf, &ns, 4096, &ignore) == AB_OK) {
        c->namespace = trim_dup(&ns);
        buf_cleanup(&ns);
    }
    free(nsf);
    c->describe = ab_asprintf("in-cluster service account (%s)", dir);
    return AB_OK;
}

/* kubeconfig `tls-server-name`: the name TLS uses (SNI and the certificate check) instead of
 * the server URL's host, while the TCP connection still goes to that host -- what client-go
 * does with tls.Config.ServerName. libcurl 7.88 has no option for the TLS name alone: the
 * URL carries tls-server-name (so SNI and verification use it) and CURLOPT_CONNECT_TO maps
 * tls-server-name:port back to the real host:port (curl_easy_setopt(3), CURLOPT_CONNECT_TO);
 * the Host header keeps the server URL's authority, as client-go sends it. */
static ab_status setup_tls_server_name(struct k8s_client *c, struct ab_err *err)
{
    const char *name = c->tls_server_name;
    if (!name || !*name || !ab_starts_with(c->server, "https://")) {
        if (name && *name)
            AB_LOG_WARN("k8s.tls_server_name_unused",
                        "server=%s hint=\"tls-server-name applies to https servers only\"",
                        c->server);
        c->url_base = ab_strdup(c->server);
        return c->url_base ? AB_OK : ab_err_set(err, AB_NOMEM, "out of memory");
    }
    for (const char *q = name; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
              *q == '-' || *q == '.'))
            return ab_err_set(err, AB_INVAL, "%s: tls-server-name \"%s\" is not a DNS name",
                              c->describe, name);
    const char *auth = c->server + strlen("https://");
    size_t alen = strcspn(auth, "/?#");
    if (memchr(auth, '@', alen))
        return ab_err_set(err, AB_INVAL, "%s: the server URL must not carry a user name",
                          c->describe);
    size_t hlen = alen; /* the host part of the authority, IPv6 brackets included */
    const char *port = NULL;
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        if (!close)
            return ab_err_set(err, AB_INVAL, "%s: server URL %s has an unclosed '['", c->describe,
                              c->server);
        hlen = (size_t)(close - auth) + 1;
    } else {
        const char *colon = memchr(auth, ':', alen);
        if (colon)
            hlen = (size_t)(colon - auth);
    }
    if (hlen < alen && auth[hlen] == ':')
        port = auth + hlen + 1;
    int plen = port ? (int)(auth + alen - port) : 3;
    if (!port)
        port = "443";
    char *map = ab_asprintf("%s:%.*s:%.*s:%.*s", name, plen, port, (int)hlen, auth, plen, port);
    c->url_base = ab_asprintf("https://%s:%.*s%s", name, plen, port, auth + alen);
    c->host_header = ab_asprintf("Host: %.*s", (int)alen, auth);
    c->connect_to = map ? curl_slist_append(NULL, map) : NULL;
    free(map);
    if (!c->url_base || !c->host_header || !c->connect_to)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    AB_LOG_DEBUG("k8s.tls_server_name", "server=%s tls_name=%s", c->server, name);
    return AB_OK;
}

ab_status k8s_client_new(const struct k8s_client_opts *opts, struct k8s_client **out,
                         struct ab_err *err)
{
    pthread_once(&curl_once, curl_global);
    struct k8s_client *c = calloc(1, sizeof(*c));
    if (!c)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    pthread_mutex_init(&c->lock, NULL);
    buf_init(&c->ca, 4u << 20);
    buf_init(&c->cert, 1u << 20);
    buf_init(&c->key, 1u << 20);
    buf_init(&c->exec_cert, 1u << 20);
    buf_init(&c->exec_key, 1u << 20);
    c->timeout_ms = opts->request_timeout_ms > 0 ? opts->request_timeout_ms : 30000;
    c->max_retries = opts->max_retries >= 0 ? opts->max_retries : 4;
    c->backoff_base_ms = opts->backoff_base_ms > 0 ? opts->backoff_base_ms : 200;
    c->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : 5000;
    ab_status rc = AB_NOTFOUND;
    struct ab_err kerr;
    ab_err_clear(&kerr);
    if (!opts->in_cluster) {
        struct cfg_kubeconfig kc;
        rc = cfg_kubeconfig_load(opts->kubeconfig, opts->context, &kc, &kerr);
        if (rc == AB_OK) {
            rc = from_kubeconfig(c, &kc, err);
            cfg_kubeconfig_cleanup(&kc);
        } else if (rc != AB_NOTFOUND || (opts->kubeconfig && *opts->kubeconfig) ||
                   (opts->context && *opts->context)) {
            /* A kubeconfig that exists but is wrong, or one asked for explicitly: report. */
            if (err)
                *err = kerr;
            k8s_client_free(c);
            return rc;
        }
    }
    if (rc == AB_NOTFOUND) {
        struct ab_err serr;
        ab_err_clear(&serr);
        rc = from_service_account(c, &serr);
        if (rc) {
            ab_err_set(err, AB_NOTFOUND,
                       "no Kubernetes credentials: %s; and %s. Set k8s.kubeconfig (or "
                       "$KUBECONFIG), or run agentbox in a pod with a service account",
                       opts->in_cluster ? "in-cluster mode requested" : kerr.msg, serr.msg);
            k8s_client_free(c);
            return rc;
        }
    }
    if (rc) {
        k8s_client_free(c);
        return rc;
    }
    size_t sl = strlen(c->server);
    while (sl && c->server[sl - 1] == '/')
        c->server[--sl] = '\0';
    if (!ab_starts_with(c->server, "https://") && !ab_starts_with(c->server, "http://")) {
        ab_err_set(err, AB_INVAL, "Kubernetes server \"%s\" must start with https:// or http://",
                   c->server);
        k8s_client_free(c);
        return AB_INVAL;
    }
    if ((rc = setup_tls_server_name(c, err))) {
        k8s_client_free(c);
        return rc;
    }
    *out = c;
    return AB_OK;
}

void k8s_client_free(struct k8s_client *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    free(c->server);
    free(c->url_base);
    free(c->tls_server_name);
    curl_slist_free_all(c->connect_to);
    free(c->host_header);
    free(c->namespace);
    free(c->describe);
    free(c->ca_file);
    buf_cleanup(&c->ca);
    buf_cleanup(&c->cert);
    buf_cleanup_secret(&c->key);
    ab_secret_free(c->basic_userpwd);
    ab_secret_free(c->static_token);
    free(c->token_file);
    ab_secret_free(c->file_token);
    free(c->exec.command);
    ab_strv_free(c->exec.args);
    ab_strv_free(c->exec.env);
    free(c->exec.api_version);
    free(c->exec.install_hint);
    ab_secret_free(c->exec_token);
    buf_cleanup(&c->exec_cert);
    buf_cleanup_secret(&c->exec_key);
    free(c->exec_cluster_server);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const char *k8s_client_namespace(const struct k8s_client *c)
{
    return c->namespace;
}

const char *k8s_client_server(const struct k8s_client *c)
{
    return c->server;
}

const char *k8s_client_describe(const struct k8s_client *c)
{
    return c->describe ? c->describe : c->server;
}

/* ---- exec credential plugins (client.authentication.k8s.io) ---- */

/* Run the plugin (no shell), with KUBERNETES_EXEC_INFO set, capturing stdout (the
 * ExecCredential) and stderr (for the error message). Bounded in time and size. */
static ab_status exec_plugin_run(struct k8s_client *c, struct ab_err *err)
{
    json_t *info = json_pack("{s:s,s:s,s:{s:b}}", "apiVersion", c->exec.api_version, "kind",
                             "ExecCredential", "spec", "interactive", 0);
    if (c->exec.provide_cluster_info && info) {
        json_t *cl = json_pack("{s:s}", "server", c->server);
        if (c->tls_server_name && *c->tls_server_name)
            json_object_set_new(cl, "tls-server-name", json_string(c->tls_server_name));
        json_object_set_new(json_object_get(info, "spec"), "cluster", cl);
    }
    char *infos = json_dumps(info, JSON_COMPACT);
    json_decref(info);
    char *infoenv = infos ? ab_asprintf("KUBERNETES_EXEC_INFO=%s", infos) : NULL;
    free(infos);
    size_t ne = 0, nx = 0;
    while (environ[ne])
        ne++;
    while (c->exec.env[nx])
        nx++;
    char **envv = calloc(ne + nx + 2, sizeof(char *));
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    ab_status rc = AB_OK;
    struct buf out, errb;
    buf_init(&out, EXEC_MAX_OUTPUT);
    buf_init(&errb, 64 * 1024);
    pid_t pid = -1;
    if (!envv || !infoenv) {
        rc = ab_err_set(err, AB_NOMEM, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        if (!ab_starts_with(environ[i], "KUBERNETES_EXEC_INFO="))
            envv[k++] = environ[i];
    for (size_t i = 0; i < nx; i++)
        envv[k++] = c->exec.env[i];
    envv[k++] = infoenv;
    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        rc = ab_err_sys(err, AB_IO, errno, "pipe");
        goto out;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    int e = posix_spawnp(&pid, c->exec.command, &fa, NULL, c->exec.args, envv);
    posix_spawn_file_actions_destroy(&fa);
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;
    if (e) {
        rc = ab_err_sys(err, AB_DENIED, e, "kubeconfig exec plugin \"%s\" could not run%s%s",
                        c->exec.command, c->exec.install_hint ? ". " : "",
                        c->exec.install_hint ? c->exec.install_hint : "");
        pid = -1;
        goto out;
    }
    int64_t deadline = ab_mono_ms() + EXEC_TIMEOUT_MS;
    while (outp[0] >= 0 || errp[0] >= 0) {
        int64_t left = deadline - ab_mono_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            rc = ab_err_set(err, AB_TIMEOUT, "kubeconfig exec plugin \"%s\" did not finish "
                                             "within %d s",
                            c->exec.command, EXEC_TIMEOUT_MS / 1000);
            goto out;
        }
        struct pollfd pf[2] = {{.fd = outp[0], .events = POLLIN}, {.fd = errp[0], .events = POLLIN}};
        if (poll(pf, 2, (int)left) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            int *fd = i ? &errp[0] : &outp[0];
            if (*fd < 0 || !pf[i].revents)
                continue;
            char chunk[4096];
            ssize_t r = read(*fd, chunk, sizeof(chunk));
            if (r <= 0) {
                close(*fd);
                *fd = -1;
            } else {
                buf_append_upto(i ? &errb : &out, chunk, (size_t)r);
            }
        }
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        rc = ab_err_set(err, AB_DENIED, "kubeconfig exec plugin \"%s\" failed (exit %d): %.400s",
                        c->exec.command, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
                        buf_cstr(&errb));
        goto out;
    }
    json_error_t jerr;
    json_t *cred = json_loadb(buf_cstr(&out), out.len, 0, &jerr);
    const json_t *status = json_object_get(cred, "status");
    const char *kind = json_string_value(json_object_get(cred, "kind"));
    if (!json_is_object(status) || !kind || strcmp(kind, "ExecCredential") != 0) {
        json_decref(cred);
        rc = ab_err_set(err, AB_PROTO, "kubeconfig exec plugin \"%s\" did not print an "
                                       "ExecCredential with a status",
                        c->exec.command);
        goto out;
    }
    const char *tok = json_string_value(json_object_get(status, "token"));
    const char *cd = json_string_value(json_object_get(status, "clientCertificateData"));
    const char *kd = json_string_value(json_object_get(status, "clientKeyData"));
    const char *exp = json_string_value(json_object_get(status, "expirationTimestamp"));
    if (!tok && !(cd && kd)) {
        json_decref(cred);
        rc = ab_err_set(err, AB_PROTO, "kubeconfig exec plugin \"%s\": ExecCredential has "
                                       "neither a token nor a client certificate and key",
                        c->exec.command);
        goto out;
    }
    ab_secret_free(c->exec_token);
    c->exec_token = tok ? ab_strdup(tok) : NULL;
    buf_reset(&c->exec_cert);
    buf_reset(&c->exec_key);
    if (cd && kd) {
        buf_append_str(&c->exec_cert, cd);
        buf_append_str(&c->exec_key, kd);
    }
    int64_t expiry = 0;
    c->exec_expiry_ms = exp && ab_parse_time(exp, &expiry) ? expiry : 0;
    c->exec_valid = true;
    json_decref(cred);
    AB_LOG_DEBUG("k8s.exec_credential", "plugin=%s expires=%s", c->exec.command,
                 exp ? exp : "never");
out:
    if (pid > 0)
        waitpid(pid, NULL, 0);
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    buf_cleanup(&out);
    buf_cleanup(&errb);
    ab_secret_free(infoenv);
    free(envv);
    return rc;
}

/* ---- per-request credentials ---- */

struct creds {
    char *bearer;  /* "Authorization: Bearer ..." header, secret */
    struct buf cert, key;
    bool from_exec;
};

static void creds_cleanup(struct creds *cr)
{
    ab_secret_free(cr->bearer);
    buf_cleanup(&cr->cert);
    buf_cleanup_secret(&cr->key);
}

static ab_status get_creds(struct k8s_client *c, struct creds *cr, struct ab_err *err)
{
    memset(cr, 0, sizeof(*cr));
    buf_init(&cr->cert, 1u << 20);
    buf_init(&cr->key, 1u << 20);
    ab_status rc = AB_OK;
    pthread_mutex_lock(&c->lock);
    const char *tok = c->static_token;
    if (!tok && c->token_file) {
        /* Projected service-account tokens rotate: re-read when the file changes. */
        struct stat st;
        if (stat(c->token_file, &st) == 0 &&
            (!c->file_token || st.st_mtim.tv_sec != c->token_mtime.tv_sec ||
             st.st_mtim.tv_nsec != c->token_mtime.tv_nsec)) {
            struct buf b;
            if (read_small_file(c->token_file, &b, 64 * 1024, err) == AB_OK) {
                ab_secret_free(c->file_token);
                c->file_token = trim_dup(&b);
                c->token_mtime = st.st_mtim;
                buf_cleanup_secret(&b);
            }
        }
        tok = c->file_token;
        if (!tok) {
            rc = ab_err_set(err, AB_DENIED, "cannot read the token file %s", c->token_file);
            goto out;
        }
    }
    if (!tok && c->exec.command) {
        /* Refresh 10 s before expiry so a request never leaves with a dying token. */
        if (!c->exec_valid || (c->exec_expiry_ms && ab_wall_ms() > c->exec_expiry_ms - 10000)) {
            if ((rc = exec_plugin_run(c, err)))
                goto out;
        }
        tok = c->exec_token;
        cr->from_exec = true;
        if (c->exec_cert.len) {
            buf_append(&cr->cert, c->exec_cert.data, c->exec_cert.len);
            buf_append(&cr->key, c->exec_key.data, c->exec_key.len);
        }
    }
    if (tok)
        cr->bearer = ab_asprintf("Authorization: Bearer %s", tok);
    if (!cr->cert.len && c->cert.len) {
        buf_append(&cr->cert, c->cert.data, c->cert.len);
        buf_append(&cr->key, c->key.data, c->key.len);
    }
out:
    pthread_mutex_unlock(&c->lock);
    if (rc)
        creds_cleanup(cr);
    return rc;
}

static void invalidate_exec(struct k8s_client *c)
{
    pthread_mutex_lock(&c->lock);
    c->exec_valid = false;
    pthread_mutex_unlock(&c->lock);
}

/* ---- easy handle pool ---- */

static CURL *handle_get(struct k8s_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->npool)
        h = c->pool[--c->npool];
    pthread_mutex_unlock(&c->lock);
    if (h)
        curl_easy_reset(h); /* keeps the connection cache */
    else
        h = curl_easy_init();
    return h;
}

static void handle_put(struct k8s_client *c, CURL *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&c->lock);
    if (c->npool < K8S_POOL_MAX) {
        c->pool[c->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    if (h)
        curl_easy_cleanup(h);
}

/* ---- transfers ---- */

struct xfer {
    struct buf body;
    struct k8s_ndjson *nd; /* streaming mode */
    k8s_line_cb line_cb;
    void *line_arg;
    ab_status stream_rc;
    struct ab_err stream_err;
    struct ab_cancel *cancel;
    int64_t deadline_ms;
    long retry_after_s;
    bool cancelled, deadline_hit;
};

static size_t on_write(char *p, size_t sz, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = sz * n;
    if (x->nd) {
        long code = 0;
        (void)code;
        x->stream_rc = k8s_ndjson_feed(x->nd, p, len, x->line_cb, x->line_arg, &x->stream_err);
        if (x->stream_rc || x->nd->stopped)
            return 0; /* abort the transfer */
        return len;
    }
    if (buf_append(&x->body, p, len))
        return 0;
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = sz * n;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        x->retry_after_s = strtol(p + 12, NULL, 10);
    return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct xfer *x = arg;
    if (ab_cancel_fired(x->cancel)) {
        x->cancelled = true;
        return 1;
    }
    if (x->deadline_ms && ab_mono_ms() > x->deadline_ms) {
        x->deadline_hit = true;
        return 1;
    }
    return 0;
}

static void setup_tls(struct k8s_client *c, CURL *h, struct creds *cr)
{
    if (ab_starts_with(c->server, "https://")) {
        if (c->insecure) {
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        } else if (c->ca.len) {
            struct curl_blob b = {.data = c->ca.data, .len = c->ca.len, .flags = CURL_BLOB_COPY};
            curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
        } else if (c->ca_file) {
            curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        }
        if (cr->cert.len && cr->key.len) {
            struct curl_blob cb = {.data = cr->cert.data, .len = cr->cert.len, .flags = CURL_BLOB_COPY};
            struct curl_blob kb = {.data = cr->key.data, .len = cr->key.len, .flags = CURL_BLOB_COPY};
            curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
            curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
            curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
            curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        }
    }
    if (c->basic_userpwd && !cr->bearer) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERPWD, c->basic_userpwd);
    }
}

static bool retryable_curl(CURLcode cc)
{
    /* An if-chain, not a switch: CURLcode has ~100 values and -Wswitch-enum wants them all. */
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
           cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING ||
           cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_PARTIAL_FILE ||
           cc == CURLE_SSL_CONNECT_ERROR;
}

static bool retryable_status(long s)
{
    return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

void k8s_resp_cleanup(struct k8s_resp *r)
{
    if (!r)
        return;
    json_decref(r->body);
    r->body = NULL;
}

static int64_t backoff_ms(struct k8s_client *c, int attempt, long retry_after_s)
{
    if (retry_after_s > 0)
        return AB_MIN(retry_after_s * 1000, 10000);
    int64_t d = c->backoff_base_ms << AB_MIN(attempt, 20);
    if (d > c->backoff_max_ms)
        d = c->backoff_max_ms;
    uint32_t r = 0;
    ab_random_bytes(&r, sizeof(r));
    /* full jitter in [d/2, d]: spreads replicas that failed together */
    return d / 2 + (int64_t)(r % (uint32_t)(d / 2 + 1));
}

static bool sleep_ms(int64_t ms, struct ab_cancel *cancel)
{
    int fd = cancel ? ab_cancel_fd(cancel) : -1;
    int64_t end = ab_mono_ms() + ms;
    for (;;) {
        int64_t left = end - ab_mono_ms();
        if (left <= 0)
            return true;
        if (ab_cancel_fired(cancel))
            return false;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        poll(fd >= 0 ? &pf : NULL, fd >= 0 ? 1 : 0, (int)AB_MIN(left, 200));
    }
}

/* One attempt. Returns a curl code; fills *status and x->body. */
static CURLcode attempt(struct k8s_client *c, const char *method, const char *url,
                        const char *body, size_t blen, const char *ctype, struct creds *cr,
                        struct xfer *x, int64_t timeout_ms, long *status)
{
    CURL *h = handle_get(c);
    if (!h)
        return CURLE_OUT_OF_MEMORY;
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Accept: application/json");
    if (cr->bearer)
        hdr = curl_slist_append(hdr, cr->bearer);
    char cth[128];
    if (body) {
        snprintf(cth, sizeof(cth), "Content-Type: %s", ctype ? ctype : "application/json");
        hdr = curl_slist_append(hdr, cth);
    }
    hdr = curl_slist_append(hdr, "User-Agent: agentbox/" AGENTBOX_VERSION);
    if (c->connect_to) {
        hdr = curl_slist_append(hdr, c->host_header);
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->connect_to);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)AB_MIN(timeout_ms, 10000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    setup_tls(c, h, cr);
    CURLcode cc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    /* A handle whose transfer was aborted mid-stream has a dead connection; drop it. */
    if (cc == CURLE_OK)
        handle_put(c, h);
    else
        curl_easy_cleanup(h);
    return cc;
}

static void fill_resp(struct k8s_resp *resp, struct xfer *x, long status)
{
    resp->status = status;
    json_error_t jerr;
    resp->body = x->body.len ? json_loadb(x->body.data, x->body.len, 0, &jerr) : NULL;
    const char *kind = json_string_value(json_object_get(resp->body, "kind"));
    if (kind && strcmp(kind, "Status") == 0) {
        const char *reason = json_string_value(json_object_get(resp->body, "reason"));
        snprintf(resp->reason, sizeof(resp->reason), "%s", reason ? reason : "");
    }
}

ab_status k8s_request(struct k8s_client *c, const char *method, const char *path,
                      const json_t *body, const struct k8s_req_opts *ro, struct k8s_resp *resp,
                      struct ab_err *err)
{
    static const struct k8s_req_opts none = {0};
    if (!ro)
        ro = &none;
    memset(resp, 0, sizeof(*resp));
    char *url = ab_asprintf("%s%s", c->url_base, path);
    char *bs = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!url || (body && !bs)) {
        free(url);
        free(bs);
        return ab_err_set(err, AB_NOMEM, "out of memory");
    }
    ab_status rc = AB_OK;
    bool reauthed = false;
    int max_attempts = ro->no_retry ? 1 : c->max_retries + 1;
    CURLcode cc = CURLE_OK;
    long status = 0;
    for (int a = 0;; a++) {
        struct creds cr;
        if ((rc = get_creds(c, &cr, err)))
            break;
        struct xfer x = {.cancel = ro->cancel, .deadline_ms = ro->deadline_ms};
        buf_init(&x.body, K8S_MAX_BODY);
        int64_t tmo = c->timeout_ms;
        if (ro->deadline_ms) {
            int64_t left = ro->deadline_ms - ab_mono_ms();
            if (left < tmo)
                tmo = left > 1 ? left : 1;
        }
        cc = attempt(c, method, url, bs, bs ? strlen(bs) : 0, ro->content_type, &cr, &x, tmo,
                     &status);
        bool from_exec = cr.from_exec;
        creds_cleanup(&cr);
        resp->attempts = a + 1;
        if (x.cancelled) {
            buf_cleanup(&x.body);
            rc = ab_err_set(err, AB_CANCELLED, "%s %s: cancelled", method, path);
            break;
        }
        if (cc == CURLE_OK && status == 401 && from_exec && !reauthed) {
            /* The cached exec credential was rejected: get a fresh one once. */
            invalidate_exec(c);
            reauthed = true;
            buf_cleanup(&x.body);
            a--;
            continue;
        }
        bool again = a + 1 < max_attempts &&
                     ((cc != CURLE_OK && retryable_curl(cc)) ||
                      (cc == CURLE_OK && retryable_status(status)));
        int64_t delay = again ? backoff_ms(c, a, x.retry_after_s) : 0;
        if (again && ro->deadline_ms && ab_mono_ms() + delay >= ro->deadline_ms)
            again = false;
        if (!again) {
            if (cc == CURLE_OK) {
                fill_resp(resp, &x, status);
            } else if (x.deadline_hit || (cc == CURLE_OPERATION_TIMEDOUT)) {
                rc = ab_err_set(err, AB_TIMEOUT,
                                "Kubernetes API %s %s: no answer from %s within %lld ms "
                                "(%d attempt%s)",
                                method, path, c->server, (long long)tmo, a + 1, a ? "s" : "");
            } else {
                rc = ab_err_set(err, AB_K8S, "Kubernetes API %s %s at %s failed: %s (%d attempt%s)",
                                method, path, c->server, curl_easy_strerror(cc), a + 1,
                                a ? "s" : "");
            }
            buf_cleanup(&x.body);
            break;
        }
        AB_LOG_DEBUG("k8s.retry", "method=%s path=%s attempt=%d status=%ld curl=%d delay_ms=%lld",
                     method, path, a + 1, status, (int)cc, (long long)delay);
        buf_cleanup(&x.body);
        if (!sleep_ms(delay, ro->cancel)) {
            rc = ab_err_set(err, AB_CANCELLED, "%s %s: cancelled", method, path);
            break;
        }
    }
    free(url);
    free(bs);
    return rc;
}

ab_status k8s_resp_error(const struct k8s_resp *r, const char *what, struct ab_err *err)
{
    if (r->status >= 200 && r->status < 300)
        return AB_OK;
    const char *msg = json_string_value(json_object_get(r->body, "message"));
    ab_status code;
    switch (r->status) {
    case 400:
    case 422:
        code = AB_INVAL;
        break;
    case 401:
    case 403:
        code = AB_DENIED;
        break;
    case 404:
        code = AB_NOTFOUND;
        break;
    case 409:
        code = strcmp(r->reason, "AlreadyExists") == 0 ? AB_EXISTS : AB_BUSY;
        break;
    case 429:
        code = AB_BUSY;
        break;
    default:
        code = AB_K8S;
        break;
    }
    const char *hint = "";
    if (r->status == 401)
        hint = "; check the credentials in the kubeconfig or service account";
    else if (r->status == 403)
        hint = "; the account lacks RBAC permission for this (see examples/k8s/rbac.yaml)";
    return ab_err_set(err, code, "%s: %s (HTTP %ld%s%s)%s", what,
                      msg ? msg : "the Kubernetes API refused the request", r->status,
                      r->reason[0] ? " " : "", r->reason, hint);
}

ab_status k8s_call(struct k8s_client *c, const char *method, const char *path,
                   const json_t *body, const struct k8s_req_opts *ro, const char *what,
                   json_t **out, long *status, struct ab_err *err)
{
    struct k8s_resp r;
    ab_status rc = k8s_request(c, method, path, body, ro, &r, err);
    if (rc)
        return rc;
    if (status)
        *status = r.status;
    rc = k8s_resp_error(&r, what, err);
    if (!rc && out) {
        *out = r.body;
        r.body = NULL;
        if (!*out) {
            rc = ab_err_set(err, AB_PROTO, "%s: the API answered HTTP %ld without a JSON body",
                            what, r.status);
        }
    }
    k8s_resp_cleanup(&r);
    return rc;
}

/* ---- NDJSON ---- */

void k8s_ndjson_init(struct k8s_ndjson *p, size_t max_line)
{
    buf_init(&p->line, max_line ? max_line : K8S_MAX_LINE);
    p->stopped = false;
}

void k8s_ndjson_cleanup(struct k8s_ndjson *p)
{
    buf_cleanup(&p->line);
}

static ab_status nd_line(struct k8s_ndjson *p, const char *s, size_t n, k8s_line_cb cb,
                         void *arg, struct ab_err *err)
{
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == n)
        return AB_OK;
    json_error_t jerr;
    json_t *j = json_loadb(s + i, n - i, 0, &jerr);
    if (!j)
        return ab_err_set(err, AB_PROTO, "invalid JSON in stream: %s (line %d, column %d)",
                          jerr.text, jerr.line, jerr.column);
    if (!cb(arg, j))
        p->stopped = true;
    json_decref(j);
    return AB_OK;
}

ab_status k8s_ndjson_feed(struct k8s_ndjson *p, const char *data, size_t len, k8s_line_cb cb,
                          void *arg, struct ab_err *err)
{
    while (len && !p->stopped) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (!nl) {
            if (buf_append(&p->line, data, take))
                return ab_err_set(err, AB_LIMIT, "a stream line exceeds %zu bytes", p->line.max);
            return AB_OK;
        }
        ab_status rc;
        if (p->line.len) {
            if (buf_append(&p->line, data, take))
                return ab_err_set(err, AB_LIMIT, "a stream line exceeds %zu bytes", p->line.max);
            rc = nd_line(p, p->line.data, p->line.len, cb, arg, err);
            buf_reset(&p->line);
        } else {
            /* A whole line in one chunk obeys the same limit as one assembled from pieces,
             * so the outcome never depends on where the network cut the stream. */
            if (take > p->line.max)
                return ab_err_set(err, AB_LIMIT, "a stream line exceeds %zu bytes", p->line.max);
            rc = nd_line(p, data, take, cb, arg, err);
        }
        if (rc)
            return rc;
        data += take + 1;
        len -= take + 1;
    }
    return AB_OK;
}

/* ---- watch ---- */

struct watch_ctx {
    k8s_watch_cb cb;
    void *arg;
    struct k8s_watch_result *res;
};

static bool on_watch_line(void *arg, json_t *line)
{
    struct watch_ctx *w = arg;
    const char *type = json_string_value(json_object_get(line, "type"));
    json_t *obj = json_object_get(line, "object");
    if (!type || !json_is_object(obj))
        return true; /* not an event: ignore */
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        if (code == 410) {
            w->res->gone = true;
            return false;
        }
    }
    const char *rv =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    if (rv && strcmp(type, "ERROR") != 0)
        snprintf(w->res->last_rv, sizeof(w->res->last_rv), "%s", rv);
    if (strcmp(type, "BOOKMARK") == 0)
        return true;
    if (!w->cb(w->arg, type, obj)) {
        w->res->stopped = true;
        return false;
    }
    return true;
}

ab_status k8s_watch(struct k8s_client *c, const char *path, const char *rv, int timeout_s,
                    int64_t deadline_ms, struct ab_cancel *cancel, k8s_watch_cb cb, void *arg,
                    struct k8s_watch_result *res, struct ab_err *err)
{
    memset(res, 0, sizeof(*res));
    if (rv)
        snprintf(res->last_rv, sizeof(res->last_rv), "%s", rv);
    if (timeout_s <= 0)
        timeout_s = 1;
    char *url = ab_asprintf("%s%s%swatch=true&allowWatchBookmarks=true&timeoutSeconds=%d%s%s",
                            c->url_base, path, strchr(path, '?') ? "&" : "?", timeout_s,
                            rv && *rv ? "&resourceVersion=" : "", rv && *rv ? rv : "");
    if (!url)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    struct creds cr;
    ab_status rc = get_creds(c, &cr, err);
    if (rc) {
        free(url);
        return rc;
    }
    struct k8s_ndjson nd;
    k8s_ndjson_init(&nd, K8S_MAX_LINE);
    struct watch_ctx w = {.cb = cb, .arg = arg, .res = res};
    struct xfer x = {.nd = &nd, .line_cb = on_watch_line, .line_arg = &w, .cancel = cancel,
                     .deadline_ms = deadline_ms};
    buf_init(&x.body, 64 * 1024);
    long status = 0;
    /* The server ends the stream after timeoutSeconds; allow a margin before giving up. */
    int64_t tmo = (int64_t)timeout_s * 1000 + 15000;
    CURLcode cc = attempt(c, "GET", url, NULL, 0, NULL, &cr, &x, tmo, &status);
    if (cr.from_exec && status == 401)
        invalidate_exec(c);
    creds_cleanup(&cr);
    if (x.stream_rc) {
        rc = ab_err_set(err, x.stream_rc, "watch %s: %s", path, x.stream_err.msg);
    } else if (res->stopped || res->gone) {
        rc = AB_OK;
    } else if (x.cancelled) {
        rc = ab_err_set(err, AB_CANCELLED, "watch %s: cancelled", path);
    } else if (x.deadline_hit) {
        rc = ab_err_set(err, AB_TIMEOUT, "watch %s: deadline reached", path);
    } else if (cc == CURLE_OK && status == 410) {
        res->gone = true;
    } else if (cc == CURLE_OK && status != 200) {
        /* Non-streaming error: the body went through the line parser; re-read it as a
         * Status when it was one line. */
        struct k8s_resp r = {.status = status};
        rc = k8s_resp_error(&r, "watch", err);
        if (!rc)
            rc = ab_err_set(err, AB_K8S, "watch %s: HTTP %ld", path, status);
    } else if (cc != CURLE_OK) {
        rc = ab_err_set(err, AB_K8S, "watch %s: stream broke: %s", path, curl_easy_strerror(cc));
    }
    k8s_ndjson_cleanup(&nd);
    buf_cleanup(&x.body);
    free(url);
    return rc;
}
