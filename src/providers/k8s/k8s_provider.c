/*
 * k8s_provider.c - the agent-sandbox provider's control plane: SandboxClaims.
 *
 * One sandbox = one SandboxClaim named by the registry's deterministic name ("ab-<hash>"),
 * so get-or-create is GET (found: reattach) -> POST (201: ours) -> 409 (another replica won:
 * GET again). Whoever creates it, every replica then waits on the same claim until
 * status.sandbox.name is set and Ready=True, failing fast on the terminal reasons
 * (TemplateNotFound, WarmPoolNotFound, InvalidMetadata, EnvVarsInjectionRejected,
 * VolumeClaimTemplatesError, ClaimExpired, SandboxExpired). A claim we created that fails is
 * deleted before returning, so nothing is left behind.
 *
 * Metadata lives on the claim so any replica can rebuild struct sbx_info: labels
 * agentbox.dev/managed-by, agentbox.dev/thread (thread hash), agentbox.dev/principal (hash of
 * the principal; the exact principal is an annotation), plus the caller's own labels;
 * annotations agentbox.dev/{principal,thread-key,created-ms,last-used-ms,ttl-seconds,
 * idle-ttl-seconds}. The absolute TTL also becomes spec.lifecycle.shutdownTime (policy
 * Delete) so the controller reaps it even if every agentbox replica is gone; the idle TTL is
 * enforced by the registry's reaper from last-used-ms, which update_info refreshes
 * (throttled).
 *
 * Waiting uses a watch on the one claim (fieldSelector metadata.name), resumed from the last
 * resourceVersion when the server closes the stream, re-read after 410 Gone or a broken
 * stream, always bounded by the ready timeout. v1alpha1 (<= 0.4) claims carry
 * spec.sandboxTemplateRef + spec.warmpool, and readiness is taken from the Sandbox itself.
 */
#include "providers/k8s/k8s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "providers/k8s/k8s_internal.h"

#define GE       "extensions.agents.x-k8s.io"
#define GA       "agents.x-k8s.io"
#define L_MANAGED "agentbox.dev/managed-by"
#define L_THREAD  "agentbox.dev/thread"
#define L_PRINC   "agentbox.dev/principal"
#define A_PRINC   "agentbox.dev/principal"
#define A_KEY     "agentbox.dev/thread-key"
#define A_CREATED "agentbox.dev/created-ms"
#define A_USED    "agentbox.dev/last-used-ms"
#define A_TTL     "agentbox.dev/ttl-seconds"
#define A_IDLE    "agentbox.dev/idle-ttl-seconds"
#define A_SBXNAME "agents.x-k8s.io/sandbox-name"
#define L_LAUNCH  "agents.x-k8s.io/launch-type"
#define PERSIST_EVERY_MS 30000

static const char *const terminal_reasons[] = {
    "TemplateNotFound",   "WarmPoolNotFound", "InvalidMetadata", "EnvVarsInjectionRejected",
    "VolumeClaimTemplatesError", "ClaimExpired", "SandboxExpired", NULL};

static const char *terminal_hint(const char *reason)
{
    if (strcmp(reason, "TemplateNotFound") == 0)
        return "create the SandboxTemplate or set k8s.template";
    if (strcmp(reason, "WarmPoolNotFound") == 0)
        return "create the SandboxWarmPool or set k8s.warm_pool";
    if (strcmp(reason, "InvalidMetadata") == 0)
        return "fix the sandbox labels";
    if (strcmp(reason, "ClaimExpired") == 0 || strcmp(reason, "SandboxExpired") == 0)
        return "the sandbox reached its TTL; create a new one";
    return "check the SandboxTemplate's policies";
}

static struct k8s_provider *kp(struct sbx_provider *p)
{
    return (struct k8s_provider *)p;
}

/* ---- paths ---- */

static char *claims_path(struct k8s_provider *p, const char *name)
{
    return ab_asprintf("/apis/" GE "/%s/namespaces/%s/sandboxclaims%s%s", p->api_version, p->ns,
                       name ? "/" : "", name ? name : "");
}

static char *sandbox_path(struct k8s_provider *p, const char *name)
{
    return ab_asprintf("/apis/" GA "/%s/namespaces/%s/sandboxes%s%s", p->api_version, p->ns,
                       name ? "/" : "", name ? name : "");
}

static const char *jpath_str(const json_t *o, const char *a, const char *b, const char *c)
{
    const json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Does the array o[array] hold an object whose field is value? (API discovery documents.) */
static bool lists(const json_t *o, const char *array, const char *field, const char *value)
{
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(o, array), i, v)
    {
        const char *s = jpath_str(v, field, NULL, NULL);
        if (s && strcmp(s, value) == 0)
            return true;
    }
    return false;
}

/* ---- API version discovery ---- */

static ab_status discover(struct k8s_provider *p, struct ab_err *err)
{
    pthread_mutex_lock(&p->lock);
    bool known = p->api_version != NULL;
    pthread_mutex_unlock(&p->lock);
    if (known)
        return AB_OK;
    json_t *g = NULL;
    long st = 0;
    struct k8s_req_opts ro = {.deadline_ms = ab_mono_ms() + p->request_timeout_s * 1000};
    ab_status rc = k8s_call(p->api, "GET", "/apis/" GE, NULL, &ro,
                            "discover the agent-sandbox API", &g, &st, err);
    if (rc == AB_NOTFOUND)
        return ab_err_set(err, AB_UNSUPPORTED,
                          "agent-sandbox is not installed in the cluster at %s (no API group "
                          "%s): install agent-sandbox (kubectl apply -f the release's "
                          "sandbox.yaml and extensions.yaml)",
                          k8s_client_server(p->api), GE);
    if (rc)
        return rc;
    bool beta = lists(g, "versions", "version", "v1beta1");
    bool alpha = lists(g, "versions", "version", "v1alpha1");
    json_decref(g);
    if (!beta && !alpha)
        return ab_err_set(err, AB_UNSUPPORTED,
                          "the cluster serves %s without v1beta1 or v1alpha1; this agentbox "
                          "supports agent-sandbox 0.3 to 0.5",
                          GE);
    pthread_mutex_lock(&p->lock);
    if (!p->api_version)
        p->api_version = ab_strdup(beta ? "v1beta1" : "v1alpha1");
    pthread_mutex_unlock(&p->lock);
    AB_LOG_INFO("k8s.discover", "api=%s/%s", GE, beta ? "v1beta1" : "v1alpha1");
    return AB_OK;
}

/* ---- metadata <-> claim ---- */

static void principal_hash(const char *principal, char out[17])
{
    char hex[65];
    ab_sha256_hex(principal ? principal : "", principal ? strlen(principal) : 0, hex);
    memcpy(out, hex, 16);
    out[16] = '\0';
}

static char *i64s(int64_t v)
{
    return ab_asprintf("%lld", (long long)v);
}

static json_t *claim_body(struct k8s_provider *p, const struct sbx_info *info)
{
    json_t *labels = json_object();
    json_t *ann = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(info->labels, k, v)
    {
        if (json_is_string(v))
            json_object_set(labels, k, v);
    }
    char ph[17];
    principal_hash(info->principal, ph);
    json_object_set_new(labels, L_MANAGED, json_string("agentbox"));
    json_object_set_new(labels, "agents.x-k8s.io/created-by", json_string("agentbox"));
    json_object_set_new(labels, L_PRINC, json_string(ph));
    if (info->thread_hash)
        json_object_set_new(labels, L_THREAD, json_stringn(info->thread_hash,
                                                           AB_MIN(strlen(info->thread_hash), 63)));
    char *s;
    json_object_set_new(ann, A_PRINC, json_string(info->principal ? info->principal : ""));
    if (info->thread_key)
        json_object_set_new(ann, A_KEY, json_string(info->thread_key));
    json_object_set_new(ann, A_CREATED, json_string_nocheck((s = i64s(info->created_ms))));
    free(s);
    json_object_set_new(ann, A_USED, json_string_nocheck((s = i64s(info->last_used_ms))));
    free(s);
    json_object_set_new(ann, A_TTL, json_string_nocheck((s = i64s(info->ttl_s))));
    free(s);
    json_object_set_new(ann, A_IDLE, json_string_nocheck((s = i64s(info->idle_ttl_s))));
    free(s);
    char ts[40];
    ab_format_time(ab_wall_ms(), ts, sizeof(ts));
    json_object_set_new(ann, "agents.x-k8s.io/client-first-requested-at", json_string(ts));
    json_t *spec = json_object();
    bool alpha = strcmp(p->api_version, "v1alpha1") == 0;
    if (alpha) {
        json_object_set_new(spec, "sandboxTemplateRef", json_pack("{s:s}", "name", p->template_name));
        /* v1alpha1: "none" = always cold, "default" = any matching pool, else that pool. */
        json_object_set_new(spec, "warmpool",
                            json_string(p->warm_pool && *p->warm_pool ? p->warm_pool : "none"));
    } else {
        json_object_set_new(spec, "warmPoolRef", json_pack("{s:s}", "name", p->warm_pool));
    }
    if (info->ttl_s > 0) {
        char when[40];
        ab_format_time(info->created_ms + info->ttl_s * 1000, when, sizeof(when));
        json_object_set_new(spec, "lifecycle",
                            json_pack("{s:s,s:s}", "shutdownTime", when, "shutdownPolicy", "Delete"));
    }
    return json_pack("{s:s,s:s,s:{s:s,s:o,s:o},s:o}", "apiVersion",
                     alpha ? GE "/v1alpha1" : GE "/v1beta1", "kind", "SandboxClaim", "metadata",
                     "name", info->name, "labels", labels, "annotations", ann, "spec", spec);
}

static int64_t ann_i64(const json_t *ann, const char *key)
{
    const char *s = jpath_str(ann, key, NULL, NULL);
    int64_t v = 0;
    return s && ab_parse_i64(s, &v) ? v : 0;
}

static ab_status info_from_claim(const json_t *claim, struct sbx_info *info, struct ab_err *err)
{
    sbx_info_init(info);
    const json_t *md = json_object_get(claim, "metadata");
    const json_t *ann = json_object_get(md, "annotations");
    const json_t *labels = json_object_get(md, "labels");
    info->name = ab_strdup(jpath_str(md, "name", NULL, NULL));
    const char *pr = jpath_str(ann, A_PRINC, NULL, NULL);
    free(info->principal);
    info->principal = ab_strdup(pr ? pr : "");
    info->thread_key = ab_strdup(jpath_str(ann, A_KEY, NULL, NULL));
    info->thread_hash = ab_strdup(jpath_str(labels, L_THREAD, NULL, NULL));
    json_decref(info->labels);
    info->labels = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)labels, k, v)
    {
        if (!ab_starts_with(k, "agentbox.dev/") && !ab_starts_with(k, "agents.x-k8s.io/"))
            json_object_set(info->labels, k, v);
    }
    info->created_ms = ann_i64(ann, A_CREATED);
    info->last_used_ms = ann_i64(ann, A_USED);
    info->ttl_s = ann_i64(ann, A_TTL);
    info->idle_ttl_s = ann_i64(ann, A_IDLE);
    if (!info->created_ms) {
        int64_t t = 0;
        const char *ct = jpath_str(md, "creationTimestamp", NULL, NULL);
        if (ct && ab_parse_time(ct, &t))
            info->created_ms = t;
    }
    if (!info->last_used_ms)
        info->last_used_ms = info->created_ms;
    const char *sn = jpath_str(ann, A_SBXNAME, NULL, NULL);
    const char *bound = jpath_str(claim, "status", "sandbox", "name");
    info->warm = (sn && *sn) || (bound && info->name && strcmp(bound, info->name) != 0);
    if (!info->name || !info->principal || !info->labels) {
        sbx_info_cleanup(info);
        return ab_err_set(err, AB_NOMEM, "out of memory");
    }
    return AB_OK;
}

/* ---- waiting for readiness ---- */

struct wait_state {
    struct k8s_provider *p;
    const char *claim;
    bool deleted;
    bool ready;
    bool failed;
    char reason[64];
    char message[512];
    char *sandbox;     /* status.sandbox.name */
    char *pod_ip;
    bool want_sandbox_ready; /* v1alpha1: readiness from the Sandbox */
};

static bool is_terminal(const char *reason)
{
    for (const char *const *r = terminal_reasons; *r; r++)
        if (strcmp(*r, reason) == 0)
            return true;
    return false;
}

/* First IPv4 address (IPv4-mapped IPv6 normalised), else the first entry: the Python
 * client's select_pod_ip. */
static char *select_pod_ip(const json_t *ips)
{
    size_t i;
    const json_t *v;
    json_array_foreach(ips, i, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        if (ab_starts_with(s, "::ffff:") && strchr(s + 7, '.'))
            return ab_strdup(s + 7);
        if (strchr(s, '.') && !strchr(s, ':'))
            return ab_strdup(s);
    }
    return ab_strdup(json_string_value(json_array_get(ips, 0)));
}

/* Look at one claim (or, in v1alpha1 second phase, Sandbox) object. */
static void evaluate(struct wait_state *w, const json_t *obj, bool is_sandbox)
{
    const json_t *st = json_object_get(obj, "status");
    if (!is_sandbox) {
        const char *sb = jpath_str(st, "sandbox", "name", NULL);
        if (!sb)
            sb = jpath_str(st, "sandbox", "Name", NULL); /* legacy spelling */
        if (sb && (!w->sandbox || strcmp(sb, w->sandbox) != 0)) {
            free(w->sandbox);
            w->sandbox = ab_strdup(sb);
        }
    }
    const json_t *ips = json_object_get(is_sandbox ? st : json_object_get(st, "sandbox"), "podIPs");
    if (json_array_size(ips)) {
        free(w->pod_ip);
        w->pod_ip = select_pod_ip(ips);
    }
    size_t i;
    const json_t *c;
    w->ready = false;
    json_array_foreach(json_object_get(st, "conditions"), i, c)
    {
        const char *type = jpath_str(c, "type", NULL, NULL);
        const char *status = jpath_str(c, "status", NULL, NULL);
        const char *reason = jpath_str(c, "reason", NULL, NULL);
        const char *msg = jpath_str(c, "message", NULL, NULL);
        if (!type)
            continue;
        if (reason && (strcmp(type, "Ready") == 0 || strcmp(reason, "WarmPoolNotFound") == 0)) {
            snprintf(w->reason, sizeof(w->reason), "%s", reason);
            snprintf(w->message, sizeof(w->message), "%s", msg ? msg : "");
        }
        if (strcmp(type, "Ready") == 0 && status && strcmp(status, "True") == 0)
            w->ready = true;
        if (reason && status && strcmp(status, "True") != 0 && is_terminal(reason) &&
            (strcmp(type, "Ready") == 0 || strcmp(reason, "WarmPoolNotFound") == 0))
            w->failed = true;
    }
}

static bool on_claim_event(void *arg, const char *type, json_t *obj)
{
    struct wait_state *w = arg;
    if (strcmp(type, "DELETED") == 0) {
        w->deleted = true;
        return false;
    }
    evaluate(w, obj, w->want_sandbox_ready);
    if (w->failed)
        return false;
    if (w->want_sandbox_ready)
        return !w->ready;
    return !(w->ready && w->sandbox);
}

/* Wait on one object (claim, or Sandbox in v1alpha1's second phase) until done. */
static ab_status wait_object(struct k8s_provider *p, struct wait_state *w, const char *coll_path,
                             const char *name, bool is_sandbox, int64_t deadline,
                             struct ab_cancel *cancel, struct ab_err *err)
{
    char *obj_path = ab_asprintf("%s/%s", coll_path, name);
    char *fs = k8s_urlencode(name);
    char *watch_path = ab_asprintf("%s?fieldSelector=metadata.name%%3D%s", coll_path, fs);
    free(fs);
    ab_status rc = AB_OK;
    char rv[64] = "";
    bool need_get = true;
    int broken = 0;
    const char *what = is_sandbox ? "Sandbox" : "SandboxClaim";
    w->want_sandbox_ready = is_sandbox;
    if (!obj_path || !watch_path) {
        rc = ab_err_set(err, AB_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        if (need_get) {
            json_t *o = NULL;
            struct k8s_req_opts ro = {.deadline_ms = deadline, .cancel = cancel};
            char whatbuf[160];
            snprintf(whatbuf, sizeof(whatbuf), "read %s %s", what, name);
            rc = k8s_call(p->api, "GET", obj_path, NULL, &ro, whatbuf, &o, NULL, err);
            if (rc == AB_NOTFOUND) {
                w->deleted = true;
                rc = AB_OK;
                break;
            }
            if (rc)
                break;
            evaluate(w, o, is_sandbox);
            snprintf(rv, sizeof(rv), "%s",
                     jpath_str(o, "metadata", "resourceVersion", NULL) ?: "");
            json_decref(o);
            need_get = false;
            if (w->failed || (w->ready && (is_sandbox || w->sandbox)))
                break;
        }
        int64_t left = deadline - ab_mono_ms();
        if (left <= 0) {
            rc = AB_TIMEOUT;
            break;
        }
        int tmo = (int)AB_MIN(left / 1000 + 1, 300);
        struct k8s_watch_result res;
        struct ab_err werr;
        ab_err_clear(&werr);
        ab_status wrc = k8s_watch(p->api, watch_path, rv, tmo, deadline, cancel, on_claim_event, w,
                                  &res, &werr);
        if (res.last_rv[0])
            snprintf(rv, sizeof(rv), "%s", res.last_rv);
        if (w->deleted || w->failed || (w->ready && (is_sandbox || w->sandbox)))
            break;
        if (wrc == AB_CANCELLED || wrc == AB_TIMEOUT) {
            rc = wrc;
            if (wrc == AB_CANCELLED && err)
                *err = werr;
            break;
        }
        if (res.gone) {
            /* 410: our resourceVersion is too old; re-read the object and watch from it. */
            AB_LOG_DEBUG("k8s.watch_gone", "object=%s", name);
            need_get = true;
            continue;
        }
        if (wrc) {
            /* A broken stream or an API error: back off a little, re-read, and go on,
             * until the deadline says otherwise. */
            AB_LOG_WARN("k8s.watch_error", "object=%s error=\"%s\"", name, werr.msg);
            broken++;
            usleep((useconds_t)AB_MIN(100000 * broken, 1000000));
            need_get = true;
            continue;
        }
        broken = 0; /* the server closed the stream normally: resume from rv */
    }
out:
    free(obj_path);
    free(watch_path);
    return rc;
}

/* Wait until the claim is bound and Ready. On success fills sandbox/pod_ip. */
static ab_status wait_ready(struct k8s_provider *p, const char *claim, int64_t deadline,
                            struct ab_cancel *cancel, char **sandbox, char **pod_ip,
                            struct ab_err *err)
{
    struct wait_state w = {.p = p, .claim = claim};
    char *cpath = claims_path(p, NULL);
    ab_status rc = wait_object(p, &w, cpath, claim, false, deadline, cancel, err);
    free(cpath);
    bool alpha = strcmp(p->api_version, "v1alpha1") == 0;
    if (!rc && !w.deleted && !w.failed && alpha && w.sandbox) {
        /* agent-sandbox <= 0.4: the claim names the Sandbox; readiness is the Sandbox's. */
        char *spath = sandbox_path(p, NULL);
        char *sb = ab_strdup(w.sandbox);
        w.ready = false;
        rc = wait_object(p, &w, spath, sb, true, deadline, cancel, err);
        free(w.sandbox);
        w.sandbox = sb;
        free(spath);
    }
    if (rc == AB_TIMEOUT) {
        rc = ab_err_set(err, AB_TIMEOUT,
                        "SandboxClaim %s in namespace %s did not become Ready within %lld s "
                        "(last state: %s%s%s); check the pods of the template and the "
                        "agent-sandbox controller, or raise k8s.ready_timeout",
                        claim, p->ns, (long long)p->ready_timeout_s,
                        w.reason[0] ? w.reason : "no conditions yet", w.message[0] ? ": " : "",
                        w.message);
    } else if (!rc && w.deleted) {
        rc = ab_err_set(err, AB_NOTFOUND,
                        "SandboxClaim %s was deleted while waiting for it to become Ready", claim);
    } else if (!rc && w.failed) {
        rc = ab_err_set(err, AB_SANDBOX, "SandboxClaim %s failed: %s: %s (%s)", claim, w.reason,
                        w.message[0] ? w.message : "no message", terminal_hint(w.reason));
    }
    if (!rc) {
        *sandbox = w.sandbox;
        *pod_ip = w.pod_ip;
    } else {
        free(w.sandbox);
        free(w.pod_ip);
    }
    return rc;
}

/* ---- handles ---- */

static struct sbx_handle *handle_new(void)
{
    struct sbx_handle *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    pthread_mutex_init(&h->lock, NULL);
    sbx_info_init(&h->info);
    h->rt_ext = -1;
    return h;
}

static void handle_free(struct sbx_handle *h)
{
    if (!h)
        return;
    free(h->claim);
    free(h->sandbox);
    free(h->pod_ip);
    free(h->base_real);
    sbx_info_cleanup(&h->info);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Whether the bound Sandbox was a warm adoption: its launch-type label (reading the
 * Sandbox may be forbidden by RBAC; then the claim annotation decides). */
static bool sandbox_warm(struct k8s_provider *p, const char *claim, const char *sandbox,
                         bool fallback)
{
    char *path = sandbox_path(p, sandbox);
    json_t *o = NULL;
    struct k8s_req_opts ro = {.deadline_ms = ab_mono_ms() + p->request_timeout_s * 1000};
    bool warm = fallback || strcmp(claim, sandbox) != 0;
    if (path && k8s_call(p->api, "GET", path, NULL, &ro, "read Sandbox", &o, NULL, NULL) == AB_OK) {
        const char *lt = jpath_str(o, "metadata", "labels", L_LAUNCH);
        if (lt)
            warm = strcmp(lt, "warm") == 0;
    }
    json_decref(o);
    free(path);
    return warm;
}

static ab_status build_handle(struct k8s_provider *p, const json_t *claim_obj,
                              struct sbx_handle **out, int64_t deadline, struct ab_cancel *cancel,
                              struct ab_err *err)
{
    struct sbx_handle *h = handle_new();
    if (!h)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    sbx_info_cleanup(&h->info);
    ab_status rc = info_from_claim(claim_obj, &h->info, err);
    if (rc) {
        sbx_info_init(&h->info);
        handle_free(h);
        return rc;
    }
    h->claim = ab_strdup(h->info.name);
    rc = wait_ready(p, h->claim, deadline, cancel, &h->sandbox, &h->pod_ip, err);
    if (rc) {
        handle_free(h);
        return rc;
    }
    h->info.warm = sandbox_warm(p, h->claim, h->sandbox, h->info.warm);
    h->warm = h->info.warm;
    *out = h;
    return AB_OK;
}

/* ---- ops ---- */

static ab_status delete_claim(struct k8s_provider *p, const char *name, struct ab_err *err)
{
    char *path = claims_path(p, name);
    struct k8s_req_opts ro = {.deadline_ms = ab_mono_ms() + p->request_timeout_s * 3000};
    char what[160];
    snprintf(what, sizeof(what), "delete SandboxClaim %s", name);
    ab_status rc = k8s_call(p->api, "DELETE", path, NULL, &ro, what, NULL, NULL, err);
    free(path);
    if (rc == AB_NOTFOUND)
        rc = AB_OK; /* already gone: the goal is reached */
    return rc;
}

static ab_status k8s_create(struct sbx_provider *base, const struct sbx_create_req *req,
                            struct sbx_handle **out, struct ab_err *err)
{
    struct k8s_provider *p = kp(base);
    const struct sbx_info *info = req->info;
    if (!info || !info->name)
        return ab_err_set(err, AB_UNSUPPORTED, "agent-sandbox sandboxes need a name (warm pools "
                                               "are managed by the SandboxWarmPool)");
    ab_status rc = discover(p, err);
    if (rc)
        return rc;
    if (strcmp(p->api_version, "v1beta1") == 0 && !*p->warm_pool)
        return ab_err_set(err, AB_INVAL, "agent-sandbox v1beta1 claims need a SandboxWarmPool: "
                                         "set k8s.warm_pool (a pool with replicas: 0 gives cold "
                                         "starts)");
    int64_t deadline = req->deadline_ms ? req->deadline_ms
                                        : ab_mono_ms() + p->ready_timeout_s * 1000;
    char *coll = claims_path(p, NULL);
    char *one = claims_path(p, info->name);
    json_t *body = claim_body(p, info);
    json_t *obj = NULL;
    bool mine = false;
    char what[200];
    snprintf(what, sizeof(what), "create SandboxClaim %s in namespace %s", info->name, p->ns);
    struct k8s_req_opts ro = {.deadline_ms = deadline, .cancel = req->cancel};
    if (!coll || !one || !body) {
        rc = ab_err_set(err, AB_NOMEM, "out of memory");
        goto out;
    }
    /* Get-or-create by deterministic name: GET; 404 -> POST; 409 -> GET. */
    for (int round = 0; round < 3; round++) {
        rc = k8s_call(p->api, "GET", one, NULL, &ro, what, &obj, NULL, err);
        if (rc != AB_NOTFOUND)
            break;
        rc = k8s_call(p->api, "POST", coll, body, &ro, what, &obj, NULL, err);
        if (rc == AB_OK) {
            mine = true;
            break;
        }
        if (rc != AB_EXISTS)
            break;
        AB_LOG_INFO("k8s.claim_race", "claim=%s another replica created it", info->name);
    }
    if (rc)
        goto out;
    AB_LOG_INFO("k8s.claim", "claim=%s created=%s pool=%s", info->name, mine ? "yes" : "reattach",
                p->warm_pool);
    rc = build_handle(p, obj, out, deadline, req->cancel, err);
    if (rc && mine) {
        struct ab_err derr;
        ab_err_clear(&derr);
        if (delete_claim(p, info->name, &derr))
            AB_LOG_WARN("k8s.cleanup_failed", "claim=%s error=\"%s\"", info->name, derr.msg);
    }
    if (!rc) {
        if ((*out)->warm)
            atomic_fetch_add(&p->acquired_warm, 1);
        else
            atomic_fetch_add(&p->acquired_cold, 1);
        AB_LOG_INFO("k8s.ready", "claim=%s sandbox=%s warm=%d pod_ip=%s", info->name,
                    (*out)->sandbox, (*out)->warm, (*out)->pod_ip ? (*out)->pod_ip : "-");
    }
out:
    json_decref(obj);
    json_decref(body);
    free(coll);
    free(one);
    return rc;
}

static ab_status k8s_attach(struct sbx_provider *base, const char *name, struct sbx_handle **out,
                            struct sbx_info *info_out, struct ab_err *err)
{
    struct k8s_provider *p = kp(base);
    ab_status rc = discover(p, err);
    if (rc)
        return rc;
    char *one = claims_path(p, name);
    json_t *obj = NULL;
    char what[160];
    snprintf(what, sizeof(what), "read SandboxClaim %s", name);
    int64_t deadline = ab_mono_ms() + p->ready_timeout_s * 1000;
    struct k8s_req_opts ro = {.deadline_ms = deadline};
    rc = k8s_call(p->api, "GET", one, NULL, &ro, what, &obj, NULL, err);
    free(one);
    if (rc == AB_NOTFOUND)
        return ab_err_set(err, AB_NOTFOUND, "sandbox %s does not exist (no SandboxClaim %s in "
                                            "namespace %s)",
                          name, name, p->ns);
    if (rc)
        return rc;
    const char *managed = jpath_str(obj, "metadata", "labels", L_MANAGED);
    if (!managed || strcmp(managed, "agentbox") != 0) {
        json_decref(obj);
        return ab_err_set(err, AB_NOTFOUND, "SandboxClaim %s exists but was not created by "
                                            "agentbox",
                          name);
    }
    rc = build_handle(p, obj, out, deadline, NULL, err);
    json_decref(obj);
    if (!rc && info_out && (rc = sbx_info_copy(info_out, &(*out)->info))) {
        handle_free(*out);
        *out = NULL;
        return ab_err_set(err, rc, "out of memory");
    }
    return rc;
}

static ab_status k8s_destroy(struct sbx_provider *base, struct sbx_handle *h, struct ab_err *err)
{
    struct k8s_provider *p = kp(base);
    ab_status rc = delete_claim(p, h->claim, err);
    if (!rc) {
        AB_LOG_INFO("k8s.delete", "claim=%s sandbox=%s", h->claim, h->sandbox);
        handle_free(h);
    }
    return rc;
}

static void k8s_release(struct sbx_provider *base, struct sbx_handle *h)
{
    handle_free(h);
}

static ab_status k8s_list(struct sbx_provider *base, const char *principal, const char *selector,
                          const char *cursor, size_t limit, struct sbx_list_page *page,
                          struct ab_err *err)
{
    struct k8s_provider *p = kp(base);
    memset(page, 0, sizeof(*page));
    ab_status rc = sbx_selector_validate(selector, err);
    if (rc)
        return rc;
    if ((rc = discover(p, err)))
        return rc;
    struct buf sel;
    buf_init(&sel, 8192);
    buf_printf(&sel, "%s=agentbox", L_MANAGED);
    if (principal) {
        char ph[17];
        principal_hash(principal, ph);
        buf_printf(&sel, ",%s=%s", L_PRINC, ph);
    }
    if (selector && *selector)
        buf_printf(&sel, ",%s", selector);
    char *esel = k8s_urlencode(buf_cstr(&sel));
    char *ecur = cursor ? k8s_urlencode(cursor) : NULL;
    char *coll = claims_path(p, NULL);
    char *path = ab_asprintf("%s?labelSelector=%s&limit=%zu%s%s", coll, esel, limit ? limit : 100,
                             ecur ? "&continue=" : "", ecur ? ecur : "");
    json_t *lst = NULL;
    struct k8s_req_opts ro = {.deadline_ms = ab_mono_ms() + p->request_timeout_s * 3000};
    rc = k8s_call(p->api, "GET", path, NULL, &ro, "list SandboxClaims", &lst, NULL, err);
    if (rc == AB_K8S && strstr(err ? err->msg : "", "HTTP 410"))
        rc = ab_err_set(err, AB_INVAL, "the list cursor has expired; list again from the start");
    if (!rc) {
        const json_t *items = json_object_get(lst, "items");
        size_t n = json_array_size(items);
        page->items = calloc(n ? n : 1, sizeof(*page->items));
        if (!page->items)
            rc = ab_err_set(err, AB_NOMEM, "out of memory");
        for (size_t i = 0; !rc && i < n; i++) {
            const json_t *it = json_array_get(items, i);
            if (principal) {
                const char *pr = jpath_str(it, "metadata", "annotations", A_PRINC);
                if (!pr || strcmp(pr, principal) != 0)
                    continue; /* a hash collision is not a match */
            }
            if (info_from_claim(it, &page->items[page->n], NULL) == AB_OK)
                page->n++;
        }
        const char *cont = jpath_str(lst, "metadata", "continue", NULL);
        if (!rc && cont && *cont)
            page->next_cursor = ab_strdup(cont);
    }
    if (rc)
        sbx_list_page_cleanup(page);
    json_decref(lst);
    free(path);
    free(coll);
    free(esel);
    free(ecur);
    buf_cleanup(&sel);
    return rc;
}

static ab_status k8s_status(struct sbx_provider *base, struct sbx_handle *h, json_t **out,
                            struct ab_err *err)
{
    struct k8s_provider *p = kp(base);
    char *one = claims_path(p, h->claim);
    json_t *claim = NULL;
    struct k8s_req_opts ro = {.deadline_ms = ab_mono_ms() + p->request_timeout_s * 1000};
    ab_status rc = k8s_call(p->api, "GET", one, NULL, &ro, "read SandboxClaim", &claim, NULL, err);
    free(one);
    if (rc)
        return rc;
    struct wait_state w = {.p = p};
    evaluate(&w, claim, false);
    const char *state = w.failed ? "failed" : w.ready ? "running" : "pending";
    struct ab_err perr;
    ab_err_clear(&perr);
    bool reachable = w.ready && k8s_rt_ping(p, h, &perr) == AB_OK;
    if (w.ready && !reachable)
        state = "unreachable";
    *out = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s,s:b,s:s,s:s,s:{}}", "state", state, "provider",
                     "agent-sandbox", "namespace", p->ns, "claim", h->claim, "sandbox",
                     w.sandbox ? w.sandbox : h->sandbox, "pod_ip", h->pod_ip ? h->pod_ip : "",
                     "warm", h->warm, "ready_reason", w.reason, "ready_message", w.message,
                     "limits");
    if (*out && w.ready && !reachable)
        json_object_set_new(*out, "error", json_string(perr.msg));
    free(w.sandbox);
    free(w.pod_ip);
    json_decref(claim);
    return *out ? AB_OK : ab_err_set(err, AB_NOMEM, "out of memory");
}

static ab_status k8s_update_info(struct sbx_provider *base, struct sbx_handle *h,
                                 const struct sbx_info *info, struct ab_err *err)
{
    struct k8s_provider *p = kp(base);
    /* Labels changed -> write now; otherwise last use at most every PERSIST_EVERY_MS (the
     * idle TTL is minutes to hours; one PATCH per tool call would be wasteful). */
    bool labels_changed = info->labels && !json_equal(info->labels, h->info.labels);
    int64_t now = ab_mono_ms();
    pthread_mutex_lock(&h->lock);
    bool due = labels_changed || !h->last_persist_ms || now - h->last_persist_ms >= PERSIST_EVERY_MS;
    if (due)
        h->last_persist_ms = now;
    pthread_mutex_unlock(&h->lock);
    h->info.last_used_ms = info->last_used_ms;
    if (!due)
        return AB_OK;
    char *used = i64s(info->last_used_ms);
    json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", A_USED, used);
    free(used);
    if (labels_changed && patch) {
        json_t *lab = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(h->info.labels, k, v) json_object_set_new(lab, k, json_null());
        json_object_foreach(info->labels, k, v) json_object_set(lab, k, v);
        json_object_set_new(json_object_get(patch, "metadata"), "labels", lab);
    }
    char *one = claims_path(p, h->claim);
    struct k8s_req_opts ro = {.content_type = "application/merge-patch+json",
                              .deadline_ms = ab_mono_ms() + p->request_timeout_s * 1000};
    ab_status rc = k8s_call(p->api, "PATCH", one, patch, &ro, "record last use on SandboxClaim",
                            NULL, NULL, err);
    free(one);
    json_decref(patch);
    if (!rc && labels_changed) {
        json_decref(h->info.labels);
        h->info.labels = json_deep_copy(info->labels);
    }
    return rc;
}

static ab_status k8s_pool_status(struct sbx_provider *base, struct sbx_pool_status *st,
                                 struct ab_err *err)
{
    struct k8s_provider *p = kp(base);
    memset(st, 0, sizeof(*st));
    st->acquired_warm = atomic_load(&p->acquired_warm);
    st->acquired_cold = atomic_load(&p->acquired_cold);
    if (!p->warm_pool || !*p->warm_pool)
        return AB_OK;
    ab_status rc = discover(p, err);
    if (rc)
        return rc;
    char *path = ab_asprintf("/apis/" GE "/%s/namespaces/%s/sandboxwarmpools/%s", p->api_version,
                             p->ns, p->warm_pool);
    json_t *pool = NULL;
    struct k8s_req_opts ro = {.deadline_ms = ab_mono_ms() + p->request_timeout_s * 1000};
    char what[200];
    snprintf(what, sizeof(what), "read SandboxWarmPool %s", p->warm_pool);
    rc = k8s_call(p->api, "GET", path, NULL, &ro, what, &pool, NULL, err);
    free(path);
    if (rc)
        return rc;
    st->supported = true;
    st->target = json_integer_value(json_object_get(json_object_get(pool, "spec"), "replicas"));
    st->ready = json_integer_value(json_object_get(json_object_get(pool, "status"), "readyReplicas"));
    json_decref(pool);
    return AB_OK;
}

static ab_status k8s_check(struct sbx_provider *base, struct ab_err *err)
{
    struct k8s_provider *p = kp(base);
    struct k8s_req_opts ro = {.deadline_ms = ab_mono_ms() + p->request_timeout_s * 1000};
    json_t *v = NULL;
    char what[300];
    snprintf(what, sizeof(what), "reach the Kubernetes API (%s)", k8s_client_describe(p->api));
    ab_status rc = k8s_call(p->api, "GET", "/version", NULL, &ro, what, &v, NULL, err);
    json_decref(v);
    if (rc)
        return rc;
    if ((rc = discover(p, err)))
        return rc;
    char *path = ab_asprintf("/apis/" GE "/%s", p->api_version);
    json_t *res = NULL;
    rc = k8s_call(p->api, "GET", path, NULL, &ro, "list agent-sandbox resources", &res, NULL, err);
    free(path);
    if (rc)
        return rc;
    bool claims = lists(res, "resources", "name", "sandboxclaims");
    bool pools = lists(res, "resources", "name", "sandboxwarmpools");
    json_decref(res);
    if (!claims)
        return ab_err_set(err, AB_UNSUPPORTED, "the SandboxClaim CRD is not installed "
                                               "(%s/%s has no sandboxclaims): install "
                                               "agent-sandbox's extensions.yaml",
                          GE, p->api_version);
    if (p->warm_pool && *p->warm_pool && !pools)
        return ab_err_set(err, AB_UNSUPPORTED, "the SandboxWarmPool CRD is not installed");
    return AB_OK;
}

static void k8s_free(struct sbx_provider *base)
{
    struct k8s_provider *p = kp(base);
    if (!p)
        return;
    k8s_rt_provider_cleanup(p);
    k8s_rtok_cleanup(&p->router_token);
    k8s_client_free(p->api);
    free(p->ns);
    free(p->template_name);
    free(p->warm_pool);
    free(p->api_version);
    free(p->router_url);
    free(p->gateway_name);
    free(p->gateway_ns);
    free(p->kubectl);
    free(p->router_ns);
    free(p->workspace);
    free(p->gateway_url);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* ---- data-plane trampolines ---- */

static ab_status op_exec(struct sbx_provider *b, struct sbx_handle *h,
                         const struct sbx_exec_req *req, struct sbx_exec_result *res,
                         struct ab_err *err)
{
    return k8s_rt_exec(kp(b), h, req, res, err);
}
static ab_status op_read(struct sbx_provider *b, struct sbx_handle *h, const char *path,
                         size_t max, struct buf *out, struct ab_err *err)
{
    return k8s_rt_read_file(kp(b), h, path, max, out, err);
}
static ab_status op_write(struct sbx_provider *b, struct sbx_handle *h, const char *path,
                          const void *d, size_t n, struct ab_err *err)
{
    return k8s_rt_write_file(kp(b), h, path, d, n, err);
}
static ab_status op_list_dir(struct sbx_provider *b, struct sbx_handle *h, const char *path,
                             struct sbx_dirent **e, size_t *n, struct ab_err *err)
{
    return k8s_rt_list_dir(kp(b), h, path, e, n, err);
}
static ab_status op_stat(struct sbx_provider *b, struct sbx_handle *h, const char *path,
                         struct sbx_stat *st, struct ab_err *err)
{
    return k8s_rt_stat(kp(b), h, path, st, err);
}
static ab_status op_walk(struct sbx_provider *b, struct sbx_handle *h,
                         const struct sbx_walk_req *req, struct sbx_walk_entry **e, size_t *n,
                         bool *t, struct ab_err *err)
{
    return k8s_rt_walk(kp(b), h, req, e, n, t, err);
}
static ab_status op_search(struct sbx_provider *b, struct sbx_handle *h,
                           const struct sbx_search_req *req, struct sbx_match **m, size_t *n,
                           bool *t, struct ab_err *err)
{
    return k8s_rt_search(kp(b), h, req, m, n, t, err);
}

static const struct sbx_provider_ops k8s_ops = {
    .kind = "agent-sandbox",
    .create = k8s_create,
    .attach = k8s_attach,
    .destroy = k8s_destroy,
    .release = k8s_release,
    .list = k8s_list,
    .status = k8s_status,
    .update_info = k8s_update_info,
    .exec = op_exec,
    .read_file = op_read,
    .write_file = op_write,
    .list_dir = op_list_dir,
    .stat = op_stat,
    .walk = op_walk,
    .search = op_search,
    .bind = NULL, /* pools are the controller's (SandboxWarmPool) */
    .pool_status = k8s_pool_status,
    .check = k8s_check,
    .free = k8s_free,
};

ab_status sbx_k8s_new(const struct config *cfg, struct sbx_provider **out, struct ab_err *err)
{
    const struct cfg_k8s *k = &cfg->k8s;
    struct k8s_provider *p = calloc(1, sizeof(*p));
    if (!p)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    p->base.ops = &k8s_ops;
    pthread_mutex_init(&p->lock, NULL);
    p->tunnel.stdin_fd = p->tunnel.stderr_fd = -1;
    p->request_timeout_s = k->request_timeout_s > 0 ? k->request_timeout_s : 30;
    p->ready_timeout_s = k->ready_timeout_s > 0 ? k->ready_timeout_s : 180;
    p->server_port = k->server_port > 0 ? k->server_port : 8888;
    p->gateway_port = k->gateway_port > 0 ? k->gateway_port : 80;
    p->send_pod_ip = k->send_pod_ip;
    const char *conn = k->connection ? k->connection : "direct";
    p->conn = strcmp(conn, "gateway") == 0      ? K8S_CONN_GATEWAY
              : strcmp(conn, "in-cluster") == 0 ? K8S_CONN_INCLUSTER
              : strcmp(conn, "tunnel") == 0     ? K8S_CONN_TUNNEL
                                                : K8S_CONN_DIRECT;
    const char *rta = k->runtime_api ? k->runtime_api : "auto";
    p->rtapi = strcmp(rta, "python-runtime") == 0     ? K8S_RT_PYTHON
               : strcmp(rta, "agentbox-runtime") == 0 ? K8S_RT_AGENTBOX
                                                      : K8S_RT_AUTO;
    p->template_name = ab_strdup(k->template_name && *k->template_name ? k->template_name
                                                                       : "python-sandbox-template");
    p->warm_pool = ab_strdup(k->warm_pool ? k->warm_pool : "");
    p->router_url = ab_strdup(k->router_url ? k->router_url : "");
    p->gateway_name = ab_strdup(k->gateway_name ? k->gateway_name : "");
    p->gateway_ns = ab_strdup(k->gateway_namespace && *k->gateway_namespace ? k->gateway_namespace
                                                                            : "default");
    p->kubectl = ab_strdup(k->kubectl && *k->kubectl ? k->kubectl : "kubectl");
    p->router_ns = ab_strdup(k->router_namespace && *k->router_namespace ? k->router_namespace
                                                                         : "agent-sandbox-system");
    p->workspace = ab_strdup(k->workspace && *k->workspace ? k->workspace : "/app");
    if (k->api_version && strcmp(k->api_version, "auto") != 0)
        p->api_version = ab_strdup(k->api_version);
    ab_status rc = k8s_rtok_init(&p->router_token, k->router_token, k->router_token_file, err);
    if (rc)
        goto fail;
    if (p->conn == K8S_CONN_INCLUSTER && k8s_rtok_configured(&p->router_token))
        AB_LOG_WARN("k8s.router_token_unused",
                    "connection=in-cluster hint=\"requests go to pod IPs, not through a "
                    "router, so the router token is not sent\"");
    size_t wl = strlen(p->workspace);
    while (wl > 1 && p->workspace[wl - 1] == '/')
        p->workspace[--wl] = '\0';
    if (p->workspace[0] != '/') {
        rc = ab_err_set(err, AB_INVAL, "k8s.workspace must be an absolute path, got \"%s\"",
                        p->workspace);
        goto fail;
    }
    if (p->conn == K8S_CONN_DIRECT && !*p->router_url) {
        rc = ab_err_set(err, AB_INVAL, "k8s.connection is direct but k8s.router_url is empty: set "
                                       "it to the sandbox-router URL (e.g. "
                                       "http://sandbox-router-svc.NS.svc:8080), or choose "
                                       "gateway, in-cluster or tunnel");
        goto fail;
    }
    if (p->conn == K8S_CONN_GATEWAY && !*p->gateway_name) {
        rc = ab_err_set(err, AB_INVAL, "k8s.connection is gateway but k8s.gateway_name is empty");
        goto fail;
    }
    bool alpha = p->api_version && strcmp(p->api_version, "v1alpha1") == 0;
    if (!*p->warm_pool && !alpha && p->api_version) {
        rc = ab_err_set(err, AB_INVAL, "agent-sandbox v1beta1 claims need a SandboxWarmPool: set "
                                       "k8s.warm_pool (a pool with replicas: 0 gives cold starts)");
        goto fail;
    }
    struct k8s_client_opts co = {.kubeconfig = k->kubeconfig,
                                 .context = k->context,
                                 .request_timeout_ms = p->request_timeout_s * 1000,
                                 .max_retries = -1};
    if ((rc = k8s_client_new(&co, &p->api, err)))
        goto fail;
    const char *ns = k->namespace && *k->namespace ? k->namespace : k8s_client_namespace(p->api);
    p->ns = ab_strdup(ns && *ns ? ns : "default");
    p->base.workspace = p->workspace; /* relative tool paths resolve under the runtime's base */
    *out = &p->base;
    return AB_OK;
fail:
    k8s_free(&p->base);
    return rc;
}

