/*
 * doctor.c - `agentbox doctor` for the agent-sandbox provider: can agentbox reach the
 * cluster, is agent-sandbox installed in a version it speaks, are the objects it names there,
 * may it do what it needs, and is the configured way to the sandbox runtimes usable (and
 * the sandbox-router's token, where a router is in the way).
 *
 * Each check is one or two API requests with a short deadline and no retries (a doctor
 * should answer in seconds, and a retry would hide flakiness the operator wants to see).
 * Checks depend on each other in order (credentials, API, CRDs, then objects in the
 * namespace); when one fails the later ones are skipped rather than reported as failures
 * they merely inherit.
 *
 * Permissions use SelfSubjectAccessReview (authorization.k8s.io/v1), which every conformant
 * API server answers for any authenticated caller; when it is not served the check is
 * skipped, not failed.
 */
#include "core/doctor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "providers/k8s/k8s_client.h"
#include "providers/k8s/k8s_internal.h"

#define GE                "extensions.agents.x-k8s.io"
#define GA                "agents.x-k8s.io"
#define DOCTOR_REQUEST_MS 10000

struct kd {
    const struct cfg_k8s *k;
    struct k8s_client *api;
    const char *ns;
    char version[16]; /* the extensions API version agentbox will use */
    struct doctor_report *r;
};

/* One GET with the doctor's deadline; returns the HTTP status (0 = no answer, *err set). */
static long get(struct kd *d, const char *path, json_t **body, struct ab_err *err)
{
    struct k8s_req_opts ro = {.no_retry = true, .deadline_ms = ab_mono_ms() + DOCTOR_REQUEST_MS};
    struct k8s_resp resp;
    long status = 0;
    if (k8s_request(d->api, "GET", path, NULL, &ro, &resp, err) == AB_OK) {
        status = resp.status;
        if (status < 200 || status > 299)
            k8s_resp_error(&resp, path, err);
        if (body) {
            *body = resp.body;
            resp.body = NULL;
        }
    }
    k8s_resp_cleanup(&resp);
    return status;
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* "v1beta1, v1alpha1" from an APIGroup's versions; *has_* say which are served. */
static void group_versions(const json_t *group, char *out, size_t cap, bool *beta, bool *alpha)
{
    out[0] = '\0';
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(group, "versions"), i, v)
    {
        const char *ver = jstr(v, "version");
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", l ? ", " : "", ver);
        if (beta && strcmp(ver, "v1beta1") == 0)
            *beta = true;
        if (alpha && strcmp(ver, "v1alpha1") == 0)
            *alpha = true;
    }
}

static bool check_credentials(struct kd *d)
{
    const struct cfg_k8s *k = d->k;
    struct k8s_client_opts co = {.kubeconfig = k->kubeconfig,
                                 .context = k->context,
                                 .request_timeout_ms = DOCTOR_REQUEST_MS,
                                 .max_retries = 0};
    struct ab_err err;
    ab_err_clear(&err);
    if (k8s_client_new(&co, &d->api, &err)) {
        doctor_add(d->r, DOCTOR_FAIL, "kubeconfig",
                   "point k8s.kubeconfig (or $KUBECONFIG) at a kubeconfig for the cluster, "
                   "choose its context with k8s.context, or run agentbox in a pod with a "
                   "service account (examples/k8s/rbac.yaml)",
                   "%s", err.msg);
        return false;
    }
    const char *ns = k->namespace && *k->namespace ? k->namespace : k8s_client_namespace(d->api);
    d->ns = ns && *ns ? ns : "default";
    doctor_add(d->r, DOCTOR_OK, "kubeconfig", NULL, "%s: API server %s, namespace %s",
               k8s_client_describe(d->api), k8s_client_server(d->api), d->ns);
    return true;
}

static bool check_api(struct kd *d)
{
    struct ab_err err;
    ab_err_clear(&err);
    json_t *v = NULL;
    long st = get(d, "/version", &v, &err);
    bool ok = st == 200;
    if (ok) {
        doctor_add(d->r, DOCTOR_OK, "API server", NULL, "reachable: Kubernetes %s",
                   json_is_string(json_object_get(v, "gitVersion")) ? jstr(v, "gitVersion")
                                                                    : "(version unknown)");
    } else {
        char fix[512];
        snprintf(fix, sizeof(fix),
                 "check that %s is reachable from this host and that the credentials are valid "
                 "(`kubectl version` with the same kubeconfig)",
                 k8s_client_server(d->api));
        doctor_add(d->r, DOCTOR_FAIL, "API server", fix, "%s",
                   st ? err.msg : (err.msg[0] ? err.msg : "no answer"));
    }
    json_decref(v);
    return ok;
}

static const char install_fix[] =
    "install agent-sandbox and its extensions: `kubectl apply -f sandbox.yaml -f "
    "extensions.yaml` from the agent-sandbox release (see examples/k8s/README.md)";

/* Which resources an API group version serves (APIResourceList). */
static bool has_resource(const json_t *list, const char *name)
{
    size_t i;
    const json_t *res;
    json_array_foreach(json_object_get(list, "resources"), i,
                       res) if (strcmp(jstr(res, "name"), name) == 0) return true;
    return false;
}

static bool check_crds(struct kd *d)
{
    struct ab_err err;
    ab_err_clear(&err);
    json_t *g = NULL, *core = NULL, *res = NULL;
    bool ok = false;
    long st = get(d, "/apis/" GE, &g, &err);
    if (st == 404) {
        doctor_add(d->r, DOCTOR_FAIL, "CRDs", install_fix,
                   "agent-sandbox's extensions are not installed: the cluster serves no API "
                   "group %s (SandboxClaim, SandboxTemplate, SandboxWarmPool)",
                   GE);
        goto out;
    }
    if (st != 200) {
        doctor_add(d->r, DOCTOR_FAIL, "CRDs", NULL, "discovering %s: %s", GE, err.msg);
        goto out;
    }
    bool beta = false, alpha = false;
    char ext_versions[128], core_versions[128] = "";
    group_versions(g, ext_versions, sizeof(ext_versions), &beta, &alpha);
    const char *want = d->k->api_version && *d->k->api_version ? d->k->api_version : "auto";
    if (strcmp(want, "auto") == 0) {
        if (!beta && !alpha) {
            doctor_add(d->r, DOCTOR_FAIL, "CRDs",
                       "install agent-sandbox 0.3 to 0.5 (v1alpha1 or v1beta1)",
                       "%s serves %s, none of which this agentbox speaks (v1beta1, v1alpha1)", GE,
                       ext_versions[0] ? ext_versions : "no version");
            goto out;
        }
        snprintf(d->version, sizeof(d->version), "%s", beta ? "v1beta1" : "v1alpha1");
    } else {
        if (!(strcmp(want, "v1beta1") == 0 ? beta : alpha)) {
            doctor_add(d->r, DOCTOR_FAIL, "CRDs", "set k8s.api_version: auto",
                       "k8s.api_version is %s but %s serves only %s", want, GE, ext_versions);
            goto out;
        }
        snprintf(d->version, sizeof(d->version), "%s", want);
    }
    if (get(d, "/apis/" GA, &core, &err) == 200)
        group_versions(core, core_versions, sizeof(core_versions), NULL, NULL);
    char *path = ab_asprintf("/apis/" GE "/%s", d->version);
    st = path ? get(d, path, &res, &err) : 0;
    free(path);
    const char *missing = st != 200                                ? "sandboxclaims"
                          : !has_resource(res, "sandboxclaims")    ? "sandboxclaims"
                          : !has_resource(res, "sandboxtemplates") ? "sandboxtemplates"
                                                                   : NULL;
    if (missing) {
        doctor_add(d->r, DOCTOR_FAIL, "CRDs", install_fix, "%s/%s does not serve %s", GE,
                   d->version, missing);
        goto out;
    }
    if (!core_versions[0]) {
        doctor_add(d->r, DOCTOR_FAIL, "CRDs", install_fix,
                   "the core agent-sandbox CRDs are not installed: no API group %s (Sandbox)", GA);
        goto out;
    }
    doctor_add(d->r, DOCTOR_OK, "CRDs", NULL, "%s %s; %s %s; agentbox uses %s/%s", GE, ext_versions,
               GA, core_versions, GE, d->version);
    ok = true;
out:
    json_decref(g);
    json_decref(core);
    json_decref(res);
    return ok;
}

/* GET one object of the extensions group in our namespace; the status (0 = no answer). */
static long get_object(struct kd *d, const char *plural, const char *name, json_t **out,
                       struct ab_err *err)
{
    char *ename = k8s_urlencode(name);
    char *path =
        ename ? ab_asprintf("/apis/" GE "/%s/namespaces/%s/%s/%s", d->version, d->ns, plural, ename)
              : NULL;
    long st = path ? get(d, path, out, err) : 0;
    free(ename);
    free(path);
    return st;
}

static void check_template(struct kd *d)
{
    const char *name = d->k->template_name && *d->k->template_name ? d->k->template_name
                                                                   : "python-sandbox-template";
    struct ab_err err;
    ab_err_clear(&err);
    long st = get_object(d, "sandboxtemplates", name, NULL, &err);
    if (st == 200) {
        doctor_add(d->r, DOCTOR_OK, "template", NULL, "SandboxTemplate %s/%s exists", d->ns, name);
    } else if (st == 404) {
        doctor_add(d->r, DOCTOR_FAIL, "template",
                   "create it (`kubectl apply -f examples/k8s/sandbox-template.yaml`) or set "
                   "k8s.template to an existing one",
                   "SandboxTemplate %s/%s does not exist", d->ns, name);
    } else {
        doctor_add(d->r, DOCTOR_WARN, "template", "let agentbox's identity get sandboxtemplates",
                   "cannot read SandboxTemplate %s/%s: %s", d->ns, name, err.msg);
    }
}

static void check_warm_pool(struct kd *d)
{
    const char *pool = d->k->warm_pool ? d->k->warm_pool : "";
    bool beta = strcmp(d->version, "v1beta1") == 0;
    if (!*pool) {
        if (beta)
            doctor_add(d->r, DOCTOR_FAIL, "warm pool",
                       "set k8s.warm_pool to a SandboxWarmPool (one with replicas: 0 gives cold "
                       "starts; examples/k8s/warm-pool.yaml)",
                       "v1beta1 claims name a SandboxWarmPool, and k8s.warm_pool is empty");
        else
            doctor_add(d->r, DOCTOR_OK, "warm pool", NULL,
                       "none configured: every sandbox starts cold (set k8s.warm_pool for "
                       "warm starts)");
        return;
    }
    struct ab_err err;
    ab_err_clear(&err);
    json_t *obj = NULL;
    long st = get_object(d, "sandboxwarmpools", pool, &obj, &err);
    if (st == 200) {
        json_int_t want =
            json_integer_value(json_object_get(json_object_get(obj, "spec"), "replicas"));
        json_int_t ready =
            json_integer_value(json_object_get(json_object_get(obj, "status"), "readyReplicas"));
        doctor_add(d->r, ready < want ? DOCTOR_WARN : DOCTOR_OK, "warm pool",
                   ready < want ? "wait for the pool to fill, or look at its pods' events "
                                  "(`kubectl describe sandboxwarmpool`)"
                                : NULL,
                   "SandboxWarmPool %s/%s: %lld of %lld sandboxes ready", d->ns, pool,
                   (long long)ready, (long long)want);
    } else if (st == 404) {
        doctor_add(d->r, DOCTOR_FAIL, "warm pool",
                   "create it (`kubectl apply -f examples/k8s/warm-pool.yaml`) or set "
                   "k8s.warm_pool to an existing pool",
                   "SandboxWarmPool %s/%s does not exist", d->ns, pool);
    } else {
        doctor_add(d->r, DOCTOR_WARN, "warm pool", "let agentbox's identity get sandboxwarmpools",
                   "cannot read SandboxWarmPool %s/%s: %s", d->ns, pool, err.msg);
    }
    json_decref(obj);
}

/* SelfSubjectAccessReview for each verb agentbox uses on SandboxClaims. */
static void check_permissions(struct kd *d)
{
    static const char *const verbs[] = {"create", "get", "list", "watch", "patch", "delete"};
    char denied[128] = "";
    for (size_t i = 0; i < AB_ARRAY_LEN(verbs); i++) {
        json_t *body = json_pack("{s:s, s:s, s:{s:{s:s, s:s, s:s, s:s}}}", "apiVersion",
                                 "authorization.k8s.io/v1", "kind", "SelfSubjectAccessReview",
                                 "spec", "resourceAttributes", "namespace", d->ns, "verb", verbs[i],
                                 "group", GE, "resource", "sandboxclaims");
        struct k8s_req_opts ro = {.no_retry = true,
                                  .deadline_ms = ab_mono_ms() + DOCTOR_REQUEST_MS};
        struct k8s_resp resp;
        struct ab_err err;
        ab_err_clear(&err);
        ab_status rc =
            k8s_request(d->api, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                        body, &ro, &resp, &err);
        json_decref(body);
        long st = rc ? 0 : resp.status;
        bool allowed =
            json_is_true(json_object_get(json_object_get(resp.body, "status"), "allowed"));
        k8s_resp_cleanup(&resp);
        if (st == 404) {
            doctor_add(d->r, DOCTOR_SKIP, "permissions", NULL,
                       "the API server does not answer SelfSubjectAccessReview");
            return;
        }
        if (st != 201 && st != 200) {
            doctor_add(d->r, DOCTOR_SKIP, "permissions", NULL, "SelfSubjectAccessReview failed: %s",
                       rc ? err.msg : "unexpected status");
            return;
        }
        if (!allowed) {
            size_t l = strlen(denied);
            snprintf(denied + l, sizeof(denied) - l, "%s%s", l ? ", " : "", verbs[i]);
        }
    }
    if (denied[0])
        doctor_add(d->r, DOCTOR_FAIL, "permissions",
                   "bind agentbox's identity to a Role with the verbs in examples/k8s/rbac.yaml",
                   "may not %s sandboxclaims in namespace %s", denied, d->ns);
    else
        doctor_add(d->r, DOCTOR_OK, "permissions", NULL,
                   "may create, get, list, watch, patch and delete sandboxclaims in %s", d->ns);
}

/* Is prog an executable file, as given or on $PATH? */
static bool find_program(const char *prog)
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path)
        return false;
    char *copy = ab_strdup(path), *save = NULL;
    bool found = false;
    for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && !found;
         dir = strtok_r(NULL, ":", &save)) {
        char *full = ab_asprintf("%s/%s", dir, prog);
        struct stat st;
        found = full && stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0;
        free(full);
    }
    free(copy);
    return found;
}

/* The connection mode's own prerequisites (no cluster needed). */
static void check_connection(struct kd *d, bool cluster_ok)
{
    const struct cfg_k8s *k = d->k;
    const char *mode = k->connection && *k->connection ? k->connection : "direct";
    if (strcmp(mode, "direct") == 0) {
        if (!k->router_url || !*k->router_url)
            doctor_add(d->r, DOCTOR_FAIL, "connection",
                       "set k8s.router_url to the sandbox-router Service, e.g. "
                       "http://sandbox-router-svc.agent-sandbox-system.svc:8080",
                       "direct mode needs k8s.router_url, which is empty");
        else
            doctor_add(d->r, DOCTOR_OK, "connection", NULL, "direct, through the router at %s",
                       k->router_url);
    } else if (strcmp(mode, "tunnel") == 0) {
        const char *kubectl = k->kubectl && *k->kubectl ? k->kubectl : "kubectl";
        if (find_program(kubectl))
            doctor_add(d->r, DOCTOR_OK, "connection", NULL,
                       "tunnel: `%s port-forward` to svc/sandbox-router-svc in %s", kubectl,
                       k->router_namespace && *k->router_namespace ? k->router_namespace
                                                                   : "agent-sandbox-system");
        else
            doctor_add(d->r, DOCTOR_FAIL, "connection",
                       "install kubectl, or set k8s.kubectl to its path",
                       "tunnel mode runs %s, which is not found on $PATH", kubectl);
    } else if (strcmp(mode, "gateway") == 0) {
        if (!k->gateway_name || !*k->gateway_name) {
            doctor_add(d->r, DOCTOR_FAIL, "connection", "set k8s.gateway_name",
                       "gateway mode needs k8s.gateway_name, which is empty");
            return;
        }
        if (!cluster_ok) {
            doctor_add(d->r, DOCTOR_SKIP, "connection", NULL,
                       "gateway %s: the cluster is not reachable", k->gateway_name);
            return;
        }
        const char *gns =
            k->gateway_namespace && *k->gateway_namespace ? k->gateway_namespace : "default";
        char *path = ab_asprintf("/apis/gateway.networking.k8s.io/v1/namespaces/%s/gateways/%s",
                                 gns, k->gateway_name);
        json_t *gw = NULL;
        struct ab_err err;
        ab_err_clear(&err);
        long st = path ? get(d, path, &gw, &err) : 0;
        free(path);
        const json_t *addrs = json_object_get(json_object_get(gw, "status"), "addresses");
        if (st == 200 && json_array_size(addrs) > 0)
            doctor_add(d->r, DOCTOR_OK, "connection", NULL, "gateway %s/%s at %s", gns,
                       k->gateway_name, jstr(json_array_get(addrs, 0), "value"));
        else if (st == 200)
            doctor_add(d->r, DOCTOR_FAIL, "connection",
                       "wait for the Gateway controller to assign an address, or check its "
                       "events",
                       "gateway %s/%s has no address yet", gns, k->gateway_name);
        else
            doctor_add(d->r, DOCTOR_FAIL, "connection",
                       "create the Gateway, or set k8s.gateway_name/k8s.gateway_namespace",
                       "gateway %s/%s: %s", gns, k->gateway_name,
                       st == 404 ? "not found" : err.msg);
        json_decref(gw);
    } else {
        doctor_add(d->r, getenv("KUBERNETES_SERVICE_HOST") ? DOCTOR_OK : DOCTOR_WARN, "connection",
                   "in-cluster mode reaches pod IPs: run agentbox inside the cluster",
                   "in-cluster: sandbox pods are reached at their pod IPs%s",
                   getenv("KUBERNETES_SERVICE_HOST") ? ""
                                                     : ", but agentbox does not run in a pod here");
    }
}

/* The sandbox-router's bearer token, in the modes that go through a router: set, readable,
 * sendable. The shipped router refuses to start without one unless told otherwise, so none
 * is a warning, not a failure. */
static void check_router_token(struct kd *d)
{
    const struct cfg_k8s *k = d->k;
    if (k->connection && strcmp(k->connection, "in-cluster") == 0)
        return;
    struct k8s_rtok t;
    struct ab_err err;
    ab_err_clear(&err);
    char src[400];
    if (k8s_rtok_init(&t, k->router_token, k->router_token_file, &err))
        doctor_add(d->r, DOCTOR_FAIL, "router token",
                   "make it the sandbox-router's ROUTER_AUTH_TOKEN (examples/k8s/README.md)", "%s",
                   err.msg);
    else if (!k8s_rtok_configured(&t))
        doctor_add(d->r, DOCTOR_WARN, "router token",
                   "set k8s.router_token_file to the router's ROUTER_AUTH_TOKEN, unless it runs "
                   "with ALLOW_UNAUTHENTICATED_ROUTER",
                   "none set: the shipped sandbox-router answers 401 to requests without one");
    else
        doctor_add(d->r, DOCTOR_OK, "router token", NULL, "from %s",
                   k8s_rtok_source(&t, src, sizeof(src)));
    k8s_rtok_cleanup(&t);
}

void sbx_k8s_doctor(const struct config *cfg, struct doctor_report *r)
{
    struct kd d = {.k = &cfg->k8s, .r = r};
    bool cluster_ok = check_credentials(&d) && check_api(&d);
    bool crds = cluster_ok && check_crds(&d);
    if (crds) {
        check_template(&d);
        check_warm_pool(&d);
        check_permissions(&d);
    } else {
        const char *why = !d.api        ? "no credentials"
                          : !cluster_ok ? "the API server is not reachable"
                                        : "agent-sandbox is not installed";
        doctor_add(r, DOCTOR_SKIP, "template", NULL, "not checked: %s", why);
        doctor_add(r, DOCTOR_SKIP, "warm pool", NULL, "not checked: %s", why);
        doctor_add(r, DOCTOR_SKIP, "permissions", NULL, "not checked: %s", why);
    }
    check_connection(&d, cluster_ok);
    check_router_token(&d);
    k8s_client_free(d.api);
}
