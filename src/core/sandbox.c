/*
 * sandbox.c - the provider-independent parts of sandbox.h: metadata helpers, label selectors
 * and the core fallbacks for the optional walk/search ops (built on list_dir/read_file, so a
 * provider with only the required primitives still gets grep and glob).
 */
#include "core/sandbox.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"

/* ---- sbx_info ---- */

void sbx_info_init(struct sbx_info *info)
{
    memset(info, 0, sizeof(*info));
}

void sbx_info_cleanup(struct sbx_info *info)
{
    if (!info)
        return;
    free(info->name);
    free(info->principal);
    free(info->thread_key);
    free(info->thread_hash);
    json_decref(info->labels);
    memset(info, 0, sizeof(*info));
}

ab_status sbx_info_copy(struct sbx_info *dst, const struct sbx_info *src)
{
    sbx_info_init(dst);
    *dst = *src;
    dst->name = ab_strdup(src->name);
    dst->principal = ab_strdup(src->principal);
    dst->thread_key = ab_strdup(src->thread_key);
    dst->thread_hash = ab_strdup(src->thread_hash);
    dst->labels = src->labels ? json_deep_copy(src->labels) : json_object();
    if ((src->name && !dst->name) || (src->principal && !dst->principal) ||
        (src->thread_key && !dst->thread_key) || (src->thread_hash && !dst->thread_hash) ||
        !dst->labels) {
        sbx_info_cleanup(dst);
        return AB_NOMEM;
    }
    return AB_OK;
}

static void json_set_time(json_t *obj, const char *key, int64_t ms)
{
    if (ms <= 0) {
        json_object_set_new(obj, key, json_null());
        return;
    }
    char when[40];
    ab_format_time(ms, when, sizeof(when));
    json_object_set_new(obj, key, json_string(when));
}

json_t *sbx_info_to_json(const struct sbx_info *info)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "name", info->name ? json_string(info->name) : json_null());
    json_object_set_new(o, "principal", json_string(info->principal ? info->principal : ""));
    json_object_set_new(o, "thread_key",
                        info->thread_key ? json_string(info->thread_key) : json_null());
    json_object_set_new(o, "thread_hash",
                        info->thread_hash ? json_string(info->thread_hash) : json_null());
    json_object_set_new(o, "labels", info->labels ? json_deep_copy(info->labels) : json_object());
    json_set_time(o, "created", info->created_ms);
    json_set_time(o, "last_used", info->last_used_ms);
    json_object_set_new(o, "created_ms", json_integer(info->created_ms));
    json_object_set_new(o, "last_used_ms", json_integer(info->last_used_ms));
    json_object_set_new(o, "ttl_seconds", json_integer(info->ttl_s));
    json_object_set_new(o, "idle_ttl_seconds", json_integer(info->idle_ttl_s));
    json_object_set_new(o, "warm", json_boolean(info->warm));
    return o;
}

static char *opt_string(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? ab_strdup(json_string_value(v)) : NULL;
}

ab_status sbx_info_from_json(struct sbx_info *dst, const json_t *obj, struct ab_err *err)
{
    sbx_info_init(dst);
    if (!json_is_object(obj))
        return ab_err_set(err, AB_INVAL, "sandbox metadata is not a JSON object");
    dst->name = opt_string(obj, "name");
    dst->principal = opt_string(obj, "principal");
    dst->thread_key = opt_string(obj, "thread_key");
    dst->thread_hash = opt_string(obj, "thread_hash");
    if (!dst->principal)
        dst->principal = ab_strdup("");
    const json_t *labels = json_object_get(obj, "labels");
    dst->labels = json_is_object(labels) ? json_deep_copy(labels) : json_object();
    dst->created_ms = json_integer_value(json_object_get(obj, "created_ms"));
    dst->last_used_ms = json_integer_value(json_object_get(obj, "last_used_ms"));
    dst->ttl_s = json_integer_value(json_object_get(obj, "ttl_seconds"));
    dst->idle_ttl_s = json_integer_value(json_object_get(obj, "idle_ttl_seconds"));
    dst->warm = json_is_true(json_object_get(obj, "warm"));
    if (!dst->name) {
        sbx_info_cleanup(dst);
        return ab_err_set(err, AB_INVAL, "sandbox metadata has no name");
    }
    return AB_OK;
}

/* ---- results ---- */

void sbx_exec_result_init(struct sbx_exec_result *res)
{
    memset(res, 0, sizeof(*res));
    buf_init(&res->output, 1);
}

void sbx_exec_result_cleanup(struct sbx_exec_result *res)
{
    buf_cleanup(&res->output);
}

void sbx_dirents_free(struct sbx_dirent *ents, size_t n)
{
    if (!ents)
        return;
    for (size_t i = 0; i < n; i++)
        free(ents[i].name);
    free(ents);
}

void sbx_walk_entries_free(struct sbx_walk_entry *ents, size_t n)
{
    if (!ents)
        return;
    for (size_t i = 0; i < n; i++)
        free(ents[i].relpath);
    free(ents);
}

void sbx_matches_free(struct sbx_match *m, size_t n)
{
    if (!m)
        return;
    for (size_t i = 0; i < n; i++) {
        free(m[i].path);
        free(m[i].text);
    }
    free(m);
}

void sbx_list_page_cleanup(struct sbx_list_page *page)
{
    if (!page)
        return;
    for (size_t i = 0; i < page->n; i++)
        sbx_info_cleanup(&page->items[i]);
    free(page->items);
    free(page->next_cursor);
    memset(page, 0, sizeof(*page));
}

enum sbx_ftype sbx_ftype_from_mode(mode_t mode)
{
    if (S_ISREG(mode))
        return SBX_FT_FILE;
    if (S_ISDIR(mode))
        return SBX_FT_DIR;
    if (S_ISLNK(mode))
        return SBX_FT_SYMLINK;
    return SBX_FT_OTHER;
}

/* ---- walk fallback: breadth-first over list_dir ---- */

struct walk_vec {
    struct sbx_walk_entry *v;
    size_t n, cap;
};

static ab_status walk_push(struct walk_vec *w, char *relpath, const struct sbx_stat *st)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct sbx_walk_entry *nv = realloc(w->v, cap * sizeof(*nv));
        if (!nv)
            return AB_NOMEM;
        w->v = nv;
        w->cap = cap;
    }
    w->v[w->n].relpath = relpath;
    w->v[w->n].st = *st;
    w->n++;
    return AB_OK;
}

static char *join_path(const char *dir, const char *name)
{
    if (!*dir)
        return ab_strdup(name);
    size_t dl = strlen(dir);
    if (dir[dl - 1] == '/')
        return ab_asprintf("%s%s", dir, name);
    return ab_asprintf("%s/%s", dir, name);
}

ab_status sbx_walk(struct sbx_provider *p, struct sbx_handle *h, const struct sbx_walk_req *req,
                   struct sbx_walk_entry **ents, size_t *n, bool *truncated, struct ab_err *err)
{
    if (p->ops->walk)
        return p->ops->walk(p, h, req, ents, n, truncated, err);

    /* Breadth-first: the output vector doubles as the queue of directories to expand.
     * dir_rel points at a relpath string owned by the vector; the strings themselves never
     * move when the vector grows, only the structs holding the pointers do. */
    struct walk_vec out = {0};
    size_t next = 0;
    const char *dir_rel = NULL; /* NULL = the root itself */
    ab_status rc = AB_OK;
    *truncated = false;
    for (;;) {
        char *abs = dir_rel ? join_path(req->root, dir_rel) : ab_strdup(req->root);
        if (!abs) {
            rc = AB_NOMEM;
            break;
        }
        struct sbx_dirent *de = NULL;
        size_t nde = 0;
        struct ab_err sub;
        ab_err_clear(&sub);
        ab_status lrc = p->ops->list_dir(p, h, abs, &de, &nde, &sub);
        free(abs);
        if (lrc && !dir_rel) {
            rc = lrc; /* the root itself: a real error for the caller */
            if (err)
                *err = sub;
            break;
        }
        if (lrc == AB_DENIED || lrc == AB_NOTFOUND || lrc == AB_NOTDIR) {
            *truncated = true; /* unreadable or vanished subtree: incomplete, not fatal */
        } else if (lrc) {
            rc = lrc;
            if (err)
                *err = sub;
            break;
        }
        for (size_t i = 0; i < nde && !rc; i++) {
            if (req->max_entries && out.n >= req->max_entries) {
                *truncated = true;
                break;
            }
            char *rel = dir_rel ? join_path(dir_rel, de[i].name) : ab_strdup(de[i].name);
            if (!rel) {
                rc = AB_NOMEM;
                break;
            }
            rc = walk_push(&out, rel, &de[i].st);
            if (rc)
                free(rel);
        }
        sbx_dirents_free(de, nde);
        if (rc || (*truncated && req->max_entries && out.n >= req->max_entries))
            break;
        dir_rel = NULL;
        while (next < out.n) {
            const struct sbx_walk_entry *e = &out.v[next++];
            if (e->st.type != SBX_FT_DIR)
                continue;
            const char *base = strrchr(e->relpath, '/');
            base = base ? base + 1 : e->relpath;
            if (req->skip_dot_dirs && base[0] == '.')
                continue;
            dir_rel = e->relpath;
            break;
        }
        if (!dir_rel)
            break;
        if ((req->deadline_ms && ab_mono_ms() > req->deadline_ms) ||
            ab_cancel_fired(req->cancel)) {
            *truncated = true;
            break;
        }
    }
    if (rc) {
        sbx_walk_entries_free(out.v, out.n);
        return rc;
    }
    *ents = out.v;
    *n = out.n;
    return AB_OK;
}

/* ---- search fallback: read each file and scan lines ---- */

#define SEARCH_MAX_FILE (64u * 1024 * 1024)

ab_status sbx_search(struct sbx_provider *p, struct sbx_handle *h,
                     const struct sbx_search_req *req, struct sbx_match **matches, size_t *n,
                     bool *truncated, struct ab_err *err)
{
    if (p->ops->search)
        return p->ops->search(p, h, req, matches, n, truncated, err);

    struct sbx_match *v = NULL;
    size_t nv = 0, cap = 0;
    *truncated = false;
    ab_status rc = AB_OK;
    for (size_t f = 0; f < req->npaths && !rc && !*truncated; f++) {
        if ((req->deadline_ms && ab_mono_ms() > req->deadline_ms) ||
            ab_cancel_fired(req->cancel)) {
            *truncated = true;
            break;
        }
        struct buf content;
        buf_init(&content, SEARCH_MAX_FILE);
        struct ab_err ferr;
        ab_err_clear(&ferr);
        ab_status frc = p->ops->read_file(p, h, req->paths[f], SEARCH_MAX_FILE, &content, &ferr);
        if (frc) {
            buf_cleanup(&content);
            if (frc == AB_NOMEM) {
                rc = frc;
                break;
            }
            continue; /* unreadable files are skipped, like grep -s */
        }
        size_t probe = content.len < 8192 ? content.len : 8192;
        if (probe && memchr(content.data, '\0', probe)) {
            buf_cleanup(&content);
            continue; /* binary */
        }
        const char *s = buf_cstr(&content);
        size_t len = content.len;
        int64_t lineno = 0;
        size_t pos = 0;
        while (pos < len) {
            const char *nl = memchr(s + pos, '\n', len - pos);
            size_t end = nl ? (size_t)(nl - s) : len;
            lineno++;
            size_t llen = end - pos;
            if (llen && s[pos + llen - 1] == '\r')
                llen--;
            if (req->literal_len <= llen &&
                memmem(s + pos, llen, req->literal, req->literal_len) != NULL) {
                if (req->max_matches && nv >= req->max_matches) {
                    *truncated = true;
                    break;
                }
                if (nv == cap) {
                    size_t ncap = cap ? cap * 2 : 32;
                    struct sbx_match *nvv = realloc(v, ncap * sizeof(*nvv));
                    if (!nvv) {
                        rc = AB_NOMEM;
                        break;
                    }
                    v = nvv;
                    cap = ncap;
                }
                v[nv].path = ab_strdup(req->paths[f]);
                v[nv].line = lineno;
                v[nv].text = ab_strndup(s + pos, llen);
                if (!v[nv].path || !v[nv].text) {
                    free(v[nv].path);
                    free(v[nv].text);
                    rc = AB_NOMEM;
                    break;
                }
                nv++;
            }
            if (!nl)
                break;
            pos = end + 1;
        }
        buf_cleanup(&content);
    }
    if (rc) {
        sbx_matches_free(v, nv);
        return ab_err_set(err, rc, "search failed: %s", ab_status_name(rc));
    }
    *matches = v;
    *n = nv;
    return AB_OK;
}

/* ---- labels and selectors ---- */

/* Kubernetes label value: empty, or <= 63 chars of [A-Za-z0-9._-] beginning and ending with
 * an alphanumeric. Keys: optional DNS-subdomain prefix + "/" + a name with the value rules
 * (non-empty). (k8s.io/apimachinery validation.IsQualifiedName / IsValidLabelValue.) */
static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool label_name_ok(const char *s, size_t len, bool allow_empty)
{
    if (len == 0)
        return allow_empty;
    if (len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

static bool label_prefix_ok(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    }
    return is_alnum(s[0]) && is_alnum(s[len - 1]);
}

static bool label_key_ok(const char *key)
{
    const char *slash = strchr(key, '/');
    if (!slash)
        return label_name_ok(key, strlen(key), false);
    return label_prefix_ok(key, (size_t)(slash - key)) &&
           label_name_ok(slash + 1, strlen(slash + 1), false);
}

ab_status sbx_labels_validate(const json_t *labels, struct ab_err *err)
{
    if (!labels)
        return AB_OK;
    if (!json_is_object(labels))
        return ab_err_set(err, AB_INVAL, "labels must be an object of string values");
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)labels, key, val)
    {
        if (!label_key_ok(key))
            return ab_err_set(err, AB_INVAL,
                              "invalid label key '%s': use up to 63 characters [A-Za-z0-9._-] "
                              "starting and ending with a letter or digit, optionally with a "
                              "DNS prefix and '/'",
                              key);
        if (!json_is_string(val))
            return ab_err_set(err, AB_INVAL, "label '%s' must have a string value", key);
        const char *v = json_string_value(val);
        if (!label_name_ok(v, strlen(v), true))
            return ab_err_set(err, AB_INVAL,
                              "invalid value for label '%s': use up to 63 characters "
                              "[A-Za-z0-9._-] starting and ending with a letter or digit",
                              key);
    }
    return AB_OK;
}

enum sel_op { SEL_EQ, SEL_NE, SEL_EXISTS, SEL_NOT_EXISTS };

/* Parse one requirement [start, end) into key/op/value (pointers into a scratch copy). */
static bool sel_parse_term(char *term, char **key, enum sel_op *op, char **value)
{
    /* trim */
    while (*term == ' ')
        term++;
    char *e = term + strlen(term);
    while (e > term && e[-1] == ' ')
        *--e = '\0';
    if (!*term)
        return false;
    char *p;
    if (term[0] == '!') {
        *op = SEL_NOT_EXISTS;
        *key = term + 1;
        *value = NULL;
        while (**key == ' ')
            (*key)++;
        return label_key_ok(*key);
    }
    if ((p = strstr(term, "!=")) != NULL) {
        *op = SEL_NE;
        *p = '\0';
        *value = p + 2;
    } else if ((p = strstr(term, "==")) != NULL) {
        *op = SEL_EQ;
        *p = '\0';
        *value = p + 2;
    } else if ((p = strchr(term, '=')) != NULL) {
        *op = SEL_EQ;
        *p = '\0';
        *value = p + 1;
    } else {
        *op = SEL_EXISTS;
        *key = term;
        *value = NULL;
        return label_key_ok(term);
    }
    *key = term;
    /* trim around the operator */
    char *ke = *key + strlen(*key);
    while (ke > *key && ke[-1] == ' ')
        *--ke = '\0';
    while (**value == ' ')
        (*value)++;
    return label_key_ok(*key) && label_name_ok(*value, strlen(*value), true);
}

static bool selector_walk(const char *selector, const json_t *labels, bool *matched)
{
    char *copy = ab_strdup(selector);
    if (!copy)
        return false;
    bool ok = true;
    *matched = true;
    char *rest = copy;
    char *term;
    /* strsep, unlike strtok, yields empty terms ("a=b,,c"), which are errors. */
    while ((term = strsep(&rest, ",")) != NULL) {
        char *key, *value;
        enum sel_op op;
        if (!sel_parse_term(term, &key, &op, &value)) {
            ok = false;
            break;
        }
        if (!labels)
            continue;
        const json_t *v = json_object_get(labels, key);
        const char *have = json_is_string(v) ? json_string_value(v) : NULL;
        bool hold;
        switch (op) {
        case SEL_EQ:
            hold = have && strcmp(have, value) == 0;
            break;
        case SEL_NE:
            hold = !have || strcmp(have, value) != 0;
            break;
        case SEL_EXISTS:
            hold = have != NULL;
            break;
        case SEL_NOT_EXISTS:
            hold = have == NULL;
            break;
        default:
            hold = false;
            break;
        }
        if (!hold)
            *matched = false;
    }
    free(copy);
    return ok;
}

ab_status sbx_selector_validate(const char *selector, struct ab_err *err)
{
    if (!selector || !*selector)
        return AB_OK;
    bool matched;
    if (!selector_walk(selector, NULL, &matched))
        return ab_err_set(err, AB_INVAL,
                          "invalid label selector '%s': use comma-separated terms like "
                          "'key=value', 'key!=value', 'key' or '!key'",
                          selector);
    return AB_OK;
}

bool sbx_selector_matches(const char *selector, const json_t *labels)
{
    if (!selector || !*selector)
        return true;
    bool matched = false;
    if (!selector_walk(selector, labels, &matched))
        return false;
    return matched;
}
