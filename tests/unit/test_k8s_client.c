/*
 * test_k8s_client.c - the Kubernetes client: kubeconfig resolution (libyaml), the NDJSON
 * watch splitter, credentials (token, tokenFile rotation, exec plugins with caching, client
 * certificates over TLS, kubeconfig tls-server-name, in-cluster service account), Status
 * errors, retries and watches against the test API server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "config/kubeconfig.h"
#include "providers/k8s/k8s_client.h"
#include "support/k8s_cluster.h"
#include "t.h"

static struct tk8s C;

static const char KC[] =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: one\n"
    "clusters:\n"
    "- name: c1\n"
    "  cluster:\n"
    "    server: https://10.0.0.1:6443\n"
    "    certificate-authority-data: Q0FEQVRB\n"
    "- name: c2\n"
    "  cluster:\n"
    "    server: https://k8s.example.com\n"
    "    insecure-skip-tls-verify: true\n"
    "    certificate-authority: ca/ca.crt\n"
    "contexts:\n"
    "- name: one\n"
    "  context: {cluster: c1, user: u1, namespace: team-a}\n"
    "- name: two\n"
    "  context:\n"
    "    cluster: c2\n"
    "    user: u2\n"
    "users:\n"
    "- name: u1\n"
    "  user:\n"
    "    token: secret-token\n"
    "- name: u2\n"
    "  user:\n"
    "    client-certificate: certs/c.crt\n"
    "    client-key-data: S0VZ\n"
    "    exec:\n"
    "      apiVersion: client.authentication.k8s.io/v1beta1\n"
    "      command: gke-gcloud-auth-plugin\n"
    "      args: [--flag, x]\n"
    "      env:\n"
    "      - name: A\n"
    "        value: b\n"
    "      installHint: install it\n";

static void t_kubeconfig_resolution(void)
{
    struct cfg_kubeconfig kc;
    struct ab_err err;
    T_OK(cfg_kubeconfig_from_string(KC, strlen(KC), "kc", "/home/u/.kube", NULL, &kc, &err));
    T_EQ_STR(kc.context, "one");
    T_EQ_STR(kc.server, "https://10.0.0.1:6443");
    T_EQ_STR(kc.namespace, "team-a");
    T_EQ_INT(kc.ca_len, 6);
    T_ASSERT(memcmp(kc.ca_data, "CADATA", 6) == 0);
    T_EQ_STR(kc.token, "secret-token");
    T_ASSERT(!kc.insecure);
    cfg_kubeconfig_cleanup(&kc);
    T_OK(cfg_kubeconfig_from_string(KC, strlen(KC), "kc", "/home/u/.kube", "two", &kc, &err));
    T_EQ_STR(kc.server, "https://k8s.example.com");
    T_ASSERT(kc.insecure);
    T_EQ_STR(kc.ca_file, "/home/u/.kube/ca/ca.crt");
    T_EQ_STR(kc.cert_file, "/home/u/.kube/certs/c.crt");
    T_EQ_INT(kc.key_len, 3);
    T_EQ_STR(kc.exec.command, "gke-gcloud-auth-plugin");
    T_EQ_STR(kc.exec.args[0], "--flag");
    T_EQ_STR(kc.exec.args[1], "x");
    T_ASSERT(kc.exec.args[2] == NULL);
    T_EQ_STR(kc.exec.env[0], "A=b");
    T_EQ_STR(kc.exec.api_version, "client.authentication.k8s.io/v1beta1");
    cfg_kubeconfig_cleanup(&kc);
    T_EQ_INT(cfg_kubeconfig_from_string(KC, strlen(KC), "kc", "/", "three", &kc, &err),
             AB_NOTFOUND);
    T_ASSERT(strstr(err.msg, "context \"three\" not found"));
    const char *bad = "a: [unclosed\n";
    T_EQ_INT(cfg_kubeconfig_from_string(bad, strlen(bad), "bad.yaml", "/", NULL, &kc, &err),
             AB_INVAL);
    T_ASSERT(strstr(err.msg, "bad.yaml:"));
    const char *alias = "a: &x [1]\nb: *x\n";
    T_EQ_INT(cfg_kubeconfig_from_string(alias, strlen(alias), "al", "/", NULL, &kc, &err), AB_INVAL);
    const char *nocur = "clusters: []\n";
    T_EQ_INT(cfg_kubeconfig_from_string(nocur, strlen(nocur), "n", "/", NULL, &kc, &err), AB_INVAL);
}

static void t_kubeconfig_merge_and_missing(void)
{
    char dir[] = "/tmp/abkc-XXXXXX";
    T_ASSERT(mkdtemp(dir));
    char a[300], b[300], list[700];
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b", dir);
    FILE *f = fopen(a, "w");
    fputs("current-context: ctx\ncontexts:\n- name: ctx\n  context: {cluster: cl, user: us}\n", f);
    fclose(f);
    f = fopen(b, "w");
    fputs("current-context: other\nclusters:\n- name: cl\n  cluster: {server: http://127.0.0.1:1}\n"
          "users:\n- name: us\n  user: {tokenFile: tok}\n",
          f);
    fclose(f);
    snprintf(list, sizeof(list), "%s/none:%s:%s", dir, a, b);
    struct cfg_kubeconfig kc;
    struct ab_err err;
    T_OK(cfg_kubeconfig_load(list, NULL, &kc, &err));
    T_EQ_STR(kc.context, "ctx"); /* the first current-context wins */
    T_EQ_STR(kc.server, "http://127.0.0.1:1");
    char tf[400];
    snprintf(tf, sizeof(tf), "%s/tok", dir);
    T_EQ_STR(kc.token_file, tf); /* relative to the file that defined it */
    cfg_kubeconfig_cleanup(&kc);
    snprintf(list, sizeof(list), "%s/none", dir);
    T_EQ_INT(cfg_kubeconfig_load(list, NULL, &kc, &err), AB_NOTFOUND);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    T_OK(system(cmd));
}

struct lines {
    int n;
    char last[256];
};

static bool count_line(void *arg, json_t *line)
{
    struct lines *l = arg;
    l->n++;
    const char *t = json_string_value(json_object_get(line, "type"));
    snprintf(l->last, sizeof(l->last), "%s", t ? t : "");
    return !(t && strcmp(t, "STOP") == 0);
}

static void t_ndjson_splitter(void)
{
    struct k8s_ndjson p;
    struct lines l = {0};
    struct ab_err err;
    k8s_ndjson_init(&p, 64);
    const char *s = "{\"type\":\"A\"}\n\n  {\"type\":\"B\"}\r\n{\"ty";
    T_OK(k8s_ndjson_feed(&p, s, strlen(s), count_line, &l, &err));
    T_EQ_INT(l.n, 2);
    T_OK(k8s_ndjson_feed(&p, "pe\":\"C\"}", 8, count_line, &l, &err));
    T_EQ_INT(l.n, 2); /* no newline yet */
    T_OK(k8s_ndjson_feed(&p, "\n{\"type\":\"STOP\"}\n{\"type\":\"D\"}\n", 30, count_line, &l, &err));
    T_EQ_INT(l.n, 4);
    T_ASSERT(p.stopped);
    T_EQ_STR(l.last, "STOP");
    k8s_ndjson_cleanup(&p);
    k8s_ndjson_init(&p, 16);
    char big[64];
    memset(big, 'x', sizeof(big));
    T_EQ_INT(k8s_ndjson_feed(&p, big, sizeof(big), count_line, &l, &err), AB_LIMIT);
    k8s_ndjson_cleanup(&p);
    k8s_ndjson_init(&p, 0);
    T_EQ_INT(k8s_ndjson_feed(&p, "{bad\n", 5, count_line, &l, &err), AB_PROTO);
    k8s_ndjson_cleanup(&p);
    /* byte-by-byte feeding gives the same events */
    k8s_ndjson_init(&p, 0);
    struct lines l2 = {0};
    const char *t = "{\"type\":\"X\"}\n{\"type\":\"Y\"}\n";
    for (size_t i = 0; t[i]; i++)
        T_OK(k8s_ndjson_feed(&p, t + i, 1, count_line, &l2, &err));
    T_EQ_INT(l2.n, 2);
    T_EQ_STR(l2.last, "Y");
    k8s_ndjson_cleanup(&p);
}

static struct k8s_client *client_for(const char *kubeconfig)
{
    struct k8s_client_opts o = {.kubeconfig = kubeconfig, .request_timeout_ms = 3000,
                                .max_retries = -1, .backoff_base_ms = 20, .backoff_max_ms = 100};
    struct k8s_client *c = NULL;
    struct ab_err err;
    if (k8s_client_new(&o, &c, &err))
        T_FAIL("client: %s", err.msg);
    return c;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    T_ASSERT(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* A kubeconfig with one context t -> cluster c (server + cluster lines) and user u (user
 * lines); both blocks are YAML indented by four spaces. */
static void write_kubeconfig(const char *path, const char *server, const char *cluster,
                             const char *user)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "current-context: t\nclusters:\n- name: c\n  cluster:\n    server: %s\n%s"
             "contexts:\n- name: t\n  context: {cluster: c, user: u}\n"
             "users:\n- name: u\n  user:\n%s",
             server, cluster, user);
    write_file(path, text, 0600);
}

static int n_events;
static bool on_ev(void *arg, const char *type, json_t *obj)
{
    n_events++;
    return true;
}

static void t_status_errors_retries_watch(void)
{
    tk8s_start(&C, NULL);
    struct k8s_client *c = client_for(tk8s_str(&C, "kubeconfig"));
    T_EQ_STR(k8s_client_namespace(c), "default");
    struct ab_err err;
    json_t *o = NULL;
    long st = 0;
    const char *claims = "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/sandboxclaims";
    T_EQ_INT(k8s_call(c, "GET", "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/"
                                "sandboxclaims/nope",
                      NULL, NULL, "read claim", &o, &st, &err),
             AB_NOTFOUND);
    T_EQ_STR(err.msg, "read claim: sandboxclaims.extensions.agents.x-k8s.io \"nope\" not found "
                      "(HTTP 404 NotFound)");
    json_t *body = json_pack("{s:s,s:s,s:{s:s},s:{s:{s:s}}}", "apiVersion",
                             "extensions.agents.x-k8s.io/v1beta1", "kind", "SandboxClaim",
                             "metadata", "name", "w1", "spec", "warmPoolRef", "name", "cold-pool");
    T_OK(k8s_call(c, "POST", claims, body, NULL, "create", &o, &st, &err));
    T_EQ_INT(st, 201);
    char rv[64];
    snprintf(rv, sizeof(rv), "%s",
             json_string_value(json_object_get(json_object_get(o, "metadata"), "resourceVersion")));
    json_decref(o);
    T_EQ_INT(k8s_call(c, "POST", claims, body, NULL, "create", NULL, NULL, &err), AB_EXISTS);
    T_ASSERT(strstr(err.msg, "AlreadyExists"));
    /* transient 500/503 and a reset connection: retried transparently */
    tk8s_fault(&C, "{\"errors\":[{\"path\":\"sandboxclaims\",\"status\":503,\"count\":2},"
                   "{\"path\":\"sandboxclaims\",\"reset\":true,\"count\":1}]}");
    struct k8s_resp r;
    T_OK(k8s_request(c, "GET", claims, NULL, NULL, &r, &err));
    T_EQ_INT(r.status, 200);
    T_ASSERT(r.attempts >= 3); /* curl itself may retry a reset reused connection once */
    k8s_resp_cleanup(&r);
    /* no_retry: one attempt, the Status comes back */
    tk8s_fault(&C, "{\"errors\":[{\"path\":\"sandboxclaims\",\"status\":500,\"count\":1}]}");
    struct k8s_req_opts once = {.no_retry = true};
    T_OK(k8s_request(c, "GET", claims, NULL, &once, &r, &err));
    T_EQ_INT(r.status, 500);
    k8s_resp_cleanup(&r);
    /* watch from a resourceVersion sees later changes, then a 410 is reported as gone */
    json_decref(tk8s_http(&C, "PATCH",
                          "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/"
                          "sandboxclaims/w1",
                          "{\"metadata\":{\"labels\":{\"x\":\"y\"}}}", NULL));
    struct k8s_watch_result wr;
    n_events = 0;
    T_OK(k8s_watch(c, claims, rv, 1, 0, NULL, on_ev, NULL, &wr, &err));
    T_ASSERT(n_events >= 1); /* changes after rv (the controller writes status too) */
    T_ASSERT(wr.last_rv[0]);
    tk8s_fault(&C, "{\"compact\":true}");
    T_OK(k8s_watch(c, claims, rv, 1, 0, NULL, on_ev, NULL, &wr, &err));
    T_ASSERT(wr.gone);
    json_decref(body);
    k8s_client_free(c);
    tk8s_stop(&C);
}


static void t_watch_resume_after_drop(void)
{
    tk8s_start(&C, NULL);
    struct k8s_client *c = client_for(tk8s_str(&C, "kubeconfig"));
    struct ab_err err;
    const char *tpl = "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/sandboxtemplates";
    pid_t f = fork();
    if (f == 0) {
        usleep(300000);
        tk8s_fault(&C, "{\"dropWatches\":true}");
        _exit(0);
    }
    struct k8s_watch_result wr;
    n_events = 0;
    ab_status rc = k8s_watch(c, tpl, "", 5, 0, NULL, on_ev, NULL, &wr, &err);
    waitpid(f, NULL, 0);
    T_EQ_INT(rc, AB_K8S);
    T_ASSERT(strstr(err.msg, "stream broke"));
    T_ASSERT(n_events >= 1); /* the initial ADDED */
    T_ASSERT(wr.last_rv[0]);
    /* deadline: a watch never outlives it */
    int64_t t0 = ab_mono_ms();
    rc = k8s_watch(c, tpl, wr.last_rv, 30, ab_mono_ms() + 500, NULL, on_ev, NULL, &wr, &err);
    T_EQ_INT(rc, AB_TIMEOUT);
    T_ASSERT(ab_mono_ms() - t0 < 5000);
    k8s_client_free(c);
    tk8s_stop(&C);
}

static void t_token_file_rotation_and_in_cluster(void)
{
    tk8s_start(&C, NULL);
    char sa[300], tok[400], kc[400];
    snprintf(sa, sizeof(sa), "%s/sa", C.dir);
    mkdir(sa, 0700);
    snprintf(tok, sizeof(tok), "%s/token", sa);
    write_file(tok, "wrong-token\n", 0600);
    snprintf(kc, sizeof(kc), "%s/kc-tokenfile", C.dir);
    write_kubeconfig(kc, tk8s_str(&C, "api"), "", "    tokenFile: sa/token\n");
    char text[1024];
    struct k8s_client *c = client_for(kc);
    struct ab_err err;
    T_EQ_INT(k8s_call(c, "GET", "/version", NULL, NULL, "version", NULL, NULL, &err), AB_DENIED);
    T_ASSERT(strstr(err.msg, "HTTP 401"));
    usleep(20000); /* a new mtime */
    snprintf(text, sizeof(text), "%s\n", tk8s_str(&C, "token"));
    write_file(tok, text, 0600);
    T_OK(k8s_call(c, "GET", "/version", NULL, NULL, "version", NULL, NULL, &err));
    k8s_client_free(c);
    /* in-cluster: KUBERNETES_SERVICE_HOST + the service account directory */
    const char *api = tk8s_str(&C, "api"); /* http://127.0.0.1:PORT */
    const char *port = strrchr(api, ':') + 1;
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    setenv("AGENTBOX_SERVICEACCOUNT_DIR", sa, 1);
    char nsf[400];
    snprintf(nsf, sizeof(nsf), "%s/namespace", sa);
    write_file(nsf, "sandboxes\n", 0600);
    struct k8s_client_opts o = {.in_cluster = true, .max_retries = 0};
    T_OK(k8s_client_new(&o, &c, &err));
    T_ASSERT(ab_starts_with(k8s_client_server(c), "https://127.0.0.1:"));
    T_EQ_STR(k8s_client_namespace(c), "sandboxes");
    k8s_client_free(c);
    tk8s_stop(&C);
}

static void t_exec_plugin_cached_until_expiry(void)
{
    tk8s_start(&C, NULL);
    char plugin[400], count[400], kc[400], text[2048];
    snprintf(plugin, sizeof(plugin), "%s/plugin.sh", C.dir);
    snprintf(count, sizeof(count), "%s/count", C.dir);
    /* a plugin that records each run and checks it gets KUBERNETES_EXEC_INFO */
    snprintf(text, sizeof(text),
             "#!/bin/sh\necho run >> %s\n"
             "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 9;; esac\n"
             "[ \"$A\" = b ] || exit 8\n"
             "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
             "\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"2099-01-01T00:00:00Z\"}}'\n",
             count, tk8s_str(&C, "token"));
    write_file(plugin, text, 0755);
    snprintf(kc, sizeof(kc), "%s/kc-exec", C.dir);
    write_kubeconfig(kc, tk8s_str(&C, "api"), "",
                     "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                     "      command: ./plugin.sh\n      env:\n      - {name: A, value: b}\n");
    struct k8s_client *c = client_for(kc);
    struct ab_err err;
    for (int i = 0; i < 3; i++)
        T_OK(k8s_call(c, "GET", "/version", NULL, NULL, "version", NULL, NULL, &err));
    FILE *f = fopen(count, "r");
    int runs = 0;
    char line[32];
    while (f && fgets(line, sizeof(line), f))
        runs++;
    if (f)
        fclose(f);
    T_EQ_INT(runs, 1); /* cached until expiry */
    k8s_client_free(c);
    /* a failing plugin: a clear error with its stderr */
    write_file(plugin, "#!/bin/sh\necho 'please run gcloud auth login' >&2\nexit 1\n", 0755);
    c = client_for(kc);
    T_EQ_INT(k8s_call(c, "GET", "/version", NULL, NULL, "version", NULL, NULL, &err), AB_DENIED);
    T_ASSERT(strstr(err.msg, "please run gcloud auth login"));
    k8s_client_free(c);
    tk8s_stop(&C);
}

static void t_tls_client_certificate_and_ca(void)
{
    const char *args[] = {"--tls", NULL};
    tk8s_start(&C, args);
    const char *kc = json_string_value(json_object_get(C.info, "kubeconfigCert"));
    T_ASSERT(kc);
    struct k8s_client *c = client_for(kc);
    struct ab_err err;
    T_OK(k8s_call(c, "GET", "/version", NULL, NULL, "version", NULL, NULL, &err));
    k8s_client_free(c);
    /* the token kubeconfig verifies the server against the CA file too */
    c = client_for(tk8s_str(&C, "kubeconfig"));
    T_OK(k8s_call(c, "GET", "/version", NULL, NULL, "version", NULL, NULL, &err));
    k8s_client_free(c);
    tk8s_stop(&C);
}

/* kubeconfig tls-server-name: the server's certificate names only kubernetes.test, the
 * server URL is https://127.0.0.1:PORT. Without tls-server-name the name check fails; with
 * it TLS checks kubernetes.test while the connection still goes to 127.0.0.1. */
static void t_tls_server_name(void)
{
    const char *args[] = {"--tls", "--tls-name", "kubernetes.test", NULL};
    tk8s_start(&C, args);
    const char *api = tk8s_str(&C, "api");
    T_ASSERT(ab_starts_with(api, "https://127.0.0.1:"));
    const char *ca = json_string_value(json_object_get(json_object_get(C.info, "certs"), "ca"));
    char kc[400], ca_line[400], ca_and_name[500], user[200];
    snprintf(kc, sizeof(kc), "%s/kc-tls-name", C.dir);
    snprintf(ca_line, sizeof(ca_line), "    certificate-authority: %s\n", ca);
    snprintf(ca_and_name, sizeof(ca_and_name), "%s    tls-server-name: kubernetes.test\n", ca_line);
    snprintf(user, sizeof(user), "    token: %s\n", tk8s_str(&C, "token"));
    write_kubeconfig(kc, api, ca_line, user);
    struct k8s_client_opts o = {.kubeconfig = kc, .request_timeout_ms = 3000, .max_retries = 0};
    struct k8s_client *c = NULL;
    struct ab_err err;
    T_OK(k8s_client_new(&o, &c, &err));
    T_EQ_INT(k8s_call(c, "GET", "/version", NULL, NULL, "version", NULL, NULL, &err), AB_K8S);
    T_ASSERT(strstr(err.msg, "SSL") || strstr(err.msg, "certificate"));
    k8s_client_free(c);
    write_kubeconfig(kc, api, ca_and_name, user);
    T_OK(k8s_client_new(&o, &c, &err));
    json_t *v = NULL;
    if (k8s_call(c, "GET", "/version", NULL, NULL, "version", &v, NULL, &err))
        T_FAIL("with tls-server-name: %s", err.msg);
    T_ASSERT(json_object_get(v, "gitVersion"));
    json_decref(v);
    T_EQ_STR(k8s_client_server(c), api); /* messages keep the configured server */
    /* watches go the same way */
    struct k8s_watch_result wr;
    T_OK(k8s_watch(c,
                   "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/sandboxtemplates",
                   "", 1, 0, NULL, on_ev, NULL, &wr, &err));
    k8s_client_free(c);
    /* a name that is not a DNS name is a configuration error, said at once */
    snprintf(ca_and_name, sizeof(ca_and_name), "%s    tls-server-name: \"a:b\"\n", ca_line);
    write_kubeconfig(kc, api, ca_and_name, user);
    T_EQ_INT(k8s_client_new(&o, &c, &err), AB_INVAL);
    T_ASSERT(strstr(err.msg, "tls-server-name \"a:b\" is not a DNS name"));
    tk8s_stop(&C);
}

static const struct t_case cases[] = {
    T_CASE(t_kubeconfig_resolution),
    T_CASE(t_kubeconfig_merge_and_missing),
    T_CASE(t_ndjson_splitter),
    T_CASE(t_status_errors_retries_watch),
    T_CASE(t_watch_resume_after_drop),
    T_CASE(t_token_file_rotation_and_in_cluster),
    T_CASE(t_exec_plugin_cached_until_expiry),
    T_CASE(t_tls_client_certificate_and_ca),
    T_CASE(t_tls_server_name),
    {0},
};
T_MAIN(cases)
