/*
 * kubeconfig.c - read kubeconfig files with libyaml and resolve the current (or a named)
 * context to a server, credentials and a namespace.
 *
 * How: YAML is first turned into a jansson tree by a small event-driven converter
 * (cfg_yaml_to_json: a stack of open containers, every scalar kept as a string, depth and size
 * capped, anchors/aliases refused), then the kubeconfig schema is walked with jansson. Files in
 * a list merge like kubectl's loading rules (first wins). Base64 fields (*-data) are decoded
 * here so the client gets PEM bytes.
 *
 * Rejected: libyaml's document loader (yaml_parser_load), which expands aliases without a cap
 * (a "billion laughs" file could exhaust memory); and typed scalars, because kubeconfig values
 * are all strings except insecure-skip-tls-verify, which is read as "true"/"false" here.
 */
#include "config/kubeconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "base/buf.h"
#include "base/util.h"

#define YAML_MAX_DEPTH 64
#define KUBECONFIG_MAX_BYTES (16u * 1024 * 1024)

/* ---- YAML -> JSON ---- */

struct yj_frame {
    json_t *node;  /* object or array */
    char *pending; /* object: key waiting for its value */
};

static ab_status yj_add(struct yj_frame *top, json_t *v, json_t **root, struct ab_err *err,
                        const char *name, size_t line)
{
    if (!top) {
        if (*root) {
            json_decref(v);
            return AB_OK; /* a second document: ignored, like kubectl */
        }
        *root = v;
        return AB_OK;
    }
    if (json_is_array(top->node))
        return json_array_append_new(top->node, v) ? AB_NOMEM : AB_OK;
    if (!top->pending) {
        /* v is a key */
        if (!json_is_string(v)) {
            json_decref(v);
            return ab_err_set(err, AB_INVAL, "%s:%zu: mapping keys must be scalars", name, line);
        }
        top->pending = ab_strdup(json_string_value(v));
        json_decref(v);
        return top->pending ? AB_OK : AB_NOMEM;
    }
    int r = json_object_set_new(top->node, top->pending, v);
    free(top->pending);
    top->pending = NULL;
    return r ? AB_NOMEM : AB_OK;
}

ab_status cfg_yaml_to_json(const char *yaml, size_t len, const char *name, json_t **out,
                           struct ab_err *err)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    struct yj_frame stack[YAML_MAX_DEPTH];
    int depth = 0;
    json_t *root = NULL;
    ab_status rc = AB_OK;
    if (!yaml_parser_initialize(&parser))
        return ab_err_set(err, AB_NOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = ab_err_set(err, AB_INVAL, "%s:%zu:%zu: YAML error: %s", name,
                            parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                            parser.problem ? parser.problem : "syntax error");
            break;
        }
        size_t line = ev.start_mark.line + 1;
        struct yj_frame *top = depth ? &stack[depth - 1] : NULL;
        bool done = false;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_ALIAS_EVENT:
            rc = ab_err_set(err, AB_INVAL, "%s:%zu: YAML aliases are not supported here", name,
                            line);
            break;
        case YAML_SCALAR_EVENT: {
            json_t *s = json_stringn((const char *)ev.data.scalar.value, ev.data.scalar.length);
            if (!s) {
                rc = ab_err_set(err, AB_INVAL, "%s:%zu: a value is not valid UTF-8", name, line);
                break;
            }
            rc = yj_add(top, s, &root, err, name, line);
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            if (depth >= YAML_MAX_DEPTH) {
                rc = ab_err_set(err, AB_LIMIT, "%s:%zu: nested too deeply", name, line);
                break;
            }
            json_t *c = ev.type == YAML_SEQUENCE_START_EVENT ? json_array() : json_object();
            if (!c) {
                rc = AB_NOMEM;
                break;
            }
            if (top && json_is_object(top->node) && !top->pending) {
                json_decref(c);
                rc = ab_err_set(err, AB_INVAL, "%s:%zu: mapping keys must be scalars", name,
                                line);
                break;
            }
            json_incref(c);
            if ((rc = yj_add(top, c, &root, err, name, line))) {
                json_decref(c);
                break;
            }
            stack[depth].node = c;
            stack[depth].pending = NULL;
            depth++;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth) {
                depth--;
                free(stack[depth].pending);
                json_decref(stack[depth].node);
            }
            break;
        case YAML_NO_EVENT:
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (rc || done)
            break;
    }
    while (depth) {
        depth--;
        free(stack[depth].pending);
        json_decref(stack[depth].node);
    }
    yaml_parser_delete(&parser);
    if (rc) {
        json_decref(root);
        if (rc == AB_NOMEM)
            ab_err_set(err, rc, "out of memory");
        return rc;
    }
    *out = root ? root : json_object();
    return AB_OK;
}

/* ---- kubeconfig schema ---- */

static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_length(v) ? json_string_value(v) : NULL;
}

/* Find the entry named name in a list of {name, <field>: {...}}; returns the inner object. */
static const json_t *named(const json_t *list, const char *name, const char *field)
{
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *n = jstr(e, "name");
        if (n && strcmp(n, name) == 0) {
            const json_t *inner = json_object_get(e, field);
            return json_is_object(inner) ? inner : NULL;
        }
    }
    return NULL;
}

static char *rel_path(const char *dir, const char *p)
{
    if (!p)
        return NULL;
    if (p[0] == '/' || !dir || !*dir)
        return ab_strdup(p);
    return ab_asprintf("%s/%s", dir, p);
}

static ab_status decode_data(const char *b64, unsigned char **out, size_t *len, const char *what,
                             struct ab_err *err)
{
    if (!b64)
        return AB_OK;
    if (ab_base64_decode(b64, strlen(b64), out, len))
        return ab_err_set(err, AB_INVAL, "kubeconfig: %s is not valid base64", what);
    return AB_OK;
}

struct kc_doc {
    json_t *root;
    char *dir;
};

static const json_t *find_in_docs(struct kc_doc *docs, size_t n, const char *list,
                                  const char *name, const char *field, const char **dir)
{
    for (size_t i = 0; i < n; i++) {
        const json_t *v = named(json_object_get(docs[i].root, list), name, field);
        if (v) {
            *dir = docs[i].dir;
            return v;
        }
    }
    return NULL;
}

static ab_status resolve(struct kc_doc *docs, size_t n, const char *context,
                         struct cfg_kubeconfig *kc, struct ab_err *err)
{
    const char *ctx_name = context && *context ? context : NULL;
    for (size_t i = 0; i < n && !ctx_name; i++)
        ctx_name = jstr(docs[i].root, "current-context");
    if (!ctx_name)
        return ab_err_set(err, AB_INVAL,
                          "kubeconfig %s has no current-context; set k8s.context to one of its "
                          "contexts",
                          kc->source);
    const char *dir = NULL, *udir = NULL, *cdir = NULL;
    const json_t *ctx = find_in_docs(docs, n, "contexts", ctx_name, "context", &dir);
    if (!ctx)
        return ab_err_set(err, AB_NOTFOUND, "kubeconfig %s: context \"%s\" not found",
                          kc->source, ctx_name);
    kc->context = ab_strdup(ctx_name);
    const char *cluster_name = jstr(ctx, "cluster");
    const char *user_name = jstr(ctx, "user");
    kc->namespace = ab_strdup(jstr(ctx, "namespace"));
    const json_t *cl = cluster_name
                           ? find_in_docs(docs, n, "clusters", cluster_name, "cluster", &cdir)
                           : NULL;
    if (!cl)
        return ab_err_set(err, AB_NOTFOUND, "kubeconfig %s: cluster \"%s\" of context \"%s\" "
                                            "not found",
                          kc->source, cluster_name ? cluster_name : "", ctx_name);
    kc->server = ab_strdup(jstr(cl, "server"));
    if (!kc->server)
        return ab_err_set(err, AB_INVAL, "kubeconfig %s: cluster \"%s\" has no server",
                          kc->source, cluster_name);
    const char *insecure = jstr(cl, "insecure-skip-tls-verify");
    kc->insecure = insecure && strcmp(insecure, "true") == 0;
    kc->tls_server_name = ab_strdup(jstr(cl, "tls-server-name"));
    kc->ca_file = rel_path(cdir, jstr(cl, "certificate-authority"));
    ab_status rc = decode_data(jstr(cl, "certificate-authority-data"), &kc->ca_data, &kc->ca_len,
                               "certificate-authority-data", err);
    if (rc)
        return rc;
    const json_t *u = user_name ? find_in_docs(docs, n, "users", user_name, "user", &udir) : NULL;
    if (!u)
        return AB_OK; /* no credentials: anonymous */
    kc->token = ab_strdup(jstr(u, "token"));
    kc->token_file = rel_path(udir, jstr(u, "tokenFile"));
    kc->cert_file = rel_path(udir, jstr(u, "client-certificate"));
    kc->key_file = rel_path(udir, jstr(u, "client-key"));
    kc->username = ab_strdup(jstr(u, "username"));
    kc->password = ab_strdup(jstr(u, "password"));
    if ((rc = decode_data(jstr(u, "client-certificate-data"), &kc->cert_data, &kc->cert_len,
                          "client-certificate-data", err)) ||
        (rc = decode_data(jstr(u, "client-key-data"), &kc->key_data, &kc->key_len,
                          "client-key-data", err)))
        return rc;
    const json_t *ex = json_object_get(u, "exec");
    if (json_is_object(ex)) {
        const char *cmd = jstr(ex, "command");
        if (!cmd)
            return ab_err_set(err, AB_INVAL, "kubeconfig %s: user \"%s\" exec has no command",
                              kc->source, user_name);
        /* A command with a '/' but not absolute is relative to the kubeconfig's directory
         * (client-go: exec.go resolves it like other file references); a bare name is
         * looked up in PATH. */
        kc->exec.command = strchr(cmd, '/') ? rel_path(udir, cmd) : ab_strdup(cmd);
        kc->exec.api_version = ab_strdup(jstr(ex, "apiVersion"));
        kc->exec.install_hint = ab_strdup(jstr(ex, "installHint"));
        const char *pci = jstr(ex, "provideClusterInfo");
        kc->exec.provide_cluster_info = pci && strcmp(pci, "true") == 0;
        const json_t *args = json_object_get(ex, "args");
        size_t na = json_array_size(args);
        kc->exec.args = calloc(na + 1, sizeof(char *));
        for (size_t i = 0; kc->exec.args && i < na; i++)
            kc->exec.args[i] = ab_strdup(json_string_value(json_array_get(args, i)) ?: "");
        const json_t *env = json_object_get(ex, "env");
        size_t ne = json_array_size(env);
        kc->exec.env = calloc(ne + 1, sizeof(char *));
        for (size_t i = 0, j = 0; kc->exec.env && i < ne; i++) {
            const json_t *e = json_array_get(env, i);
            const char *en = jstr(e, "name");
            const json_t *ev = json_object_get(e, "value");
            if (en)
                kc->exec.env[j++] =
                    ab_asprintf("%s=%s", en, json_is_string(ev) ? json_string_value(ev) : "");
        }
        if (!kc->exec.args || !kc->exec.env)
            return ab_err_set(err, AB_NOMEM, "out of memory");
    }
    return AB_OK;
}

static void docs_free(struct kc_doc *docs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(docs[i].root);
        free(docs[i].dir);
    }
    free(docs);
}

ab_status cfg_kubeconfig_from_string(const char *yaml, size_t len, const char *name,
                                     const char *dir, const char *context,
                                     struct cfg_kubeconfig *out, struct ab_err *err)
{
    memset(out, 0, sizeof(*out));
    struct kc_doc *doc = calloc(1, sizeof(*doc));
    if (!doc)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    ab_status rc = cfg_yaml_to_json(yaml, len, name, &doc->root, err);
    doc->dir = ab_strdup(dir);
    out->source = ab_strdup(name);
    if (!rc)
        rc = resolve(doc, 1, context, out, err);
    docs_free(doc, 1);
    if (rc)
        cfg_kubeconfig_cleanup(out);
    return rc;
}

static ab_status read_file(const char *path, char **data, size_t *len, struct ab_err *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return ab_err_sys(err, ab_status_from_errno(errno), errno, "cannot open kubeconfig %s",
                          path);
    struct buf b;
    buf_init(&b, KUBECONFIG_MAX_BYTES);
    char chunk[8192];
    size_t r;
    ab_status rc = AB_OK;
    while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if ((rc = buf_append(&b, chunk, r)))
            break;
    fclose(f);
    if (rc) {
        buf_cleanup(&b);
        return ab_err_set(err, rc, "kubeconfig %s is larger than 16 MiB", path);
    }
    *data = buf_steal(&b, len);
    return *data ? AB_OK : ab_err_set(err, AB_NOMEM, "out of memory");
}

ab_status cfg_kubeconfig_load(const char *paths, const char *context, struct cfg_kubeconfig *out,
                              struct ab_err *err)
{
    memset(out, 0, sizeof(*out));
    char *list = NULL;
    if (paths && *paths)
        list = ab_strdup(paths);
    else if (getenv("KUBECONFIG") && *getenv("KUBECONFIG"))
        list = ab_strdup(getenv("KUBECONFIG"));
    else if (getenv("HOME"))
        list = ab_asprintf("%s/.kube/config", getenv("HOME"));
    if (!list)
        return ab_err_set(err, AB_NOTFOUND, "no kubeconfig: neither $KUBECONFIG nor $HOME is set");
    struct kc_doc *docs = NULL;
    size_t n = 0;
    ab_status rc = AB_OK;
    struct buf names;
    buf_init(&names, 8192);
    char *save = NULL;
    for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
        struct stat st;
        if (stat(p, &st) < 0)
            continue; /* kubectl ignores missing files in the list */
        char *data = NULL;
        size_t len = 0;
        if ((rc = read_file(p, &data, &len, err)))
            break;
        json_t *root = NULL;
        rc = cfg_yaml_to_json(data, len, p, &root, err);
        free(data);
        if (rc)
            break;
        struct kc_doc *nd = realloc(docs, (n + 1) * sizeof(*nd));
        if (!nd) {
            json_decref(root);
            rc = ab_err_set(err, AB_NOMEM, "out of memory");
            break;
        }
        docs = nd;
        docs[n].root = root;
        const char *slash = strrchr(p, '/');
        docs[n].dir = slash ? ab_strndup(p, (size_t)(slash - p)) : ab_strdup(".");
        if (slash == p) {
            free(docs[n].dir);
            docs[n].dir = ab_strdup("/");
        }
        n++;
        buf_printf(&names, "%s%s", names.len ? ":" : "", p);
    }
    if (!rc && n == 0)
        rc = ab_err_set(err, AB_NOTFOUND, "no kubeconfig file found (looked for %s)",
                        paths && *paths ? paths : (getenv("KUBECONFIG") ?: "~/.kube/config"));
    if (!rc) {
        out->source = ab_strdup(buf_cstr(&names));
        rc = resolve(docs, n, context, out, err);
    }
    buf_cleanup(&names);
    docs_free(docs, n);
    free(list);
    if (rc)
        cfg_kubeconfig_cleanup(out);
    return rc;
}

static void free_secret(void *p, size_t len)
{
    if (p && len)
        explicit_bzero(p, len);
    free(p);
}

void cfg_kubeconfig_cleanup(struct cfg_kubeconfig *kc)
{
    if (!kc)
        return;
    free(kc->source);
    free(kc->context);
    free(kc->server);
    free(kc->namespace);
    free(kc->tls_server_name);
    free(kc->ca_file);
    free(kc->ca_data);
    free_secret(kc->token, kc->token ? strlen(kc->token) : 0);
    free(kc->token_file);
    free(kc->cert_file);
    free(kc->cert_data);
    free(kc->key_file);
    free_secret(kc->key_data, kc->key_len);
    free(kc->username);
    free_secret(kc->password, kc->password ? strlen(kc->password) : 0);
    free(kc->exec.command);
    ab_strv_free(kc->exec.args);
    ab_strv_free(kc->exec.env);
    free(kc->exec.api_version);
    free(kc->exec.install_hint);
    memset(kc, 0, sizeof(*kc));
}
