/*
 * fuzzbox.c - see fuzzbox.h. One mutex guards the list of sandboxes; file operations go
 * straight to each sandbox's own hostdir provider, which is safe to call concurrently.
 */
#include "fuzzbox.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "support/hostdir_provider.h"

struct fb_box {
    struct sbx_info info;
    char *dir;
    struct fb_box *next;
};

struct fb_provider {
    struct sbx_provider base; /* first */
    char *root;
    pthread_mutex_t lock;
    struct fb_box *boxes;
    unsigned anon;
};

struct sbx_handle {
    char *name;
    struct sbx_provider *inner;
    struct sbx_handle *ih;
};

static struct fb_provider *FB(struct sbx_provider *p)
{
    return (struct fb_provider *)p;
}

static struct fb_box *find(struct fb_provider *fb, const char *name)
{
    for (struct fb_box *b = fb->boxes; b; b = b->next)
        if (strcmp(b->info.name, name) == 0)
            return b;
    return NULL;
}

static ab_status open_handle(const char *name, const char *dir, struct sbx_handle **out,
                             struct ab_err *err)
{
    struct sbx_handle *h = calloc(1, sizeof(*h));
    if (!h)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    h->name = ab_strdup(name);
    ab_status rc = hostdir_provider_new(dir, true, true, &h->inner, &h->ih, err);
    if (rc) {
        free(h->name);
        free(h);
        return rc;
    }
    *out = h;
    return AB_OK;
}

static void close_handle(struct sbx_handle *h)
{
    if (!h)
        return;
    hostdir_provider_free(h->inner);
    free(h->name);
    free(h);
}

static ab_status mkdirs(const char *dir, struct ab_err *err)
{
    static const char *const sub[] = {"", "/workspace", "/tmp", "/usr", "/usr/bin"};
    for (size_t i = 0; i < AB_ARRAY_LEN(sub); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s%s", dir, sub[i]);
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return ab_err_sys(err, AB_IO, errno, "mkdir %s", path);
    }
    /* execute_python checks that the interpreter exists before it "runs" the code. */
    char py[4096];
    snprintf(py, sizeof(py), "%s/usr/bin/python3", dir);
    int fd = open(py, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0)
        return ab_err_sys(err, AB_IO, errno, "create %s", py);
    close(fd);
    return AB_OK;
}

static ab_status op_create(struct sbx_provider *p, const struct sbx_create_req *req,
                           struct sbx_handle **out, struct ab_err *err)
{
    struct fb_provider *fb = FB(p);
    struct fb_box *b = calloc(1, sizeof(*b));
    if (!b || sbx_info_copy(&b->info, req->info)) {
        free(b);
        return ab_err_set(err, AB_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&fb->lock);
    if (!b->info.name)
        b->info.name = ab_asprintf("anon-%u", fb->anon++);
    if (find(fb, b->info.name)) {
        pthread_mutex_unlock(&fb->lock);
        sbx_info_cleanup(&b->info);
        free(b);
        return ab_err_set(err, AB_EXISTS, "sandbox exists");
    }
    b->dir = ab_asprintf("%s/%s", fb->root, b->info.name);
    ab_status rc = mkdirs(b->dir, err);
    if (!rc)
        rc = open_handle(b->info.name, b->dir, out, err);
    if (rc) {
        pthread_mutex_unlock(&fb->lock);
        hostdir_rmtree(b->dir);
        free(b->dir);
        sbx_info_cleanup(&b->info);
        free(b);
        return rc;
    }
    b->next = fb->boxes;
    fb->boxes = b;
    pthread_mutex_unlock(&fb->lock);
    return AB_OK;
}

static ab_status op_attach(struct sbx_provider *p, const char *name, struct sbx_handle **out,
                           struct sbx_info *info_out, struct ab_err *err)
{
    struct fb_provider *fb = FB(p);
    pthread_mutex_lock(&fb->lock);
    struct fb_box *b = find(fb, name);
    ab_status rc;
    if (!b)
        rc = ab_err_set(err, AB_NOTFOUND, "sandbox %s does not exist", name);
    else if ((rc = open_handle(name, b->dir, out, err)) == AB_OK &&
             sbx_info_copy(info_out, &b->info)) {
        close_handle(*out);
        rc = ab_err_set(err, AB_NOMEM, "out of memory");
    }
    pthread_mutex_unlock(&fb->lock);
    return rc;
}

static ab_status op_destroy(struct sbx_provider *p, struct sbx_handle *h, struct ab_err *err)
{
    struct fb_provider *fb = FB(p);
    pthread_mutex_lock(&fb->lock);
    for (struct fb_box **pp = &fb->boxes; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->info.name, h->name) == 0) {
            struct fb_box *b = *pp;
            *pp = b->next;
            hostdir_rmtree(b->dir);
            free(b->dir);
            sbx_info_cleanup(&b->info);
            free(b);
            break;
        }
    }
    pthread_mutex_unlock(&fb->lock);
    close_handle(h);
    return AB_OK;
}

static void op_release(struct sbx_provider *p, struct sbx_handle *h)
{
    close_handle(h);
}

static ab_status op_list(struct sbx_provider *p, const char *principal, const char *selector,
                         const char *cursor, size_t limit, struct sbx_list_page *page,
                         struct ab_err *err)
{
    struct fb_provider *fb = FB(p);
    memset(page, 0, sizeof(*page));
    if (selector && sbx_selector_validate(selector, err))
        return AB_INVAL;
    pthread_mutex_lock(&fb->lock);
    size_t n = 0;
    for (struct fb_box *b = fb->boxes; b; b = b->next)
        n++;
    page->items = calloc(n + 1, sizeof(*page->items));
    for (struct fb_box *b = fb->boxes; b && page->items; b = b->next) {
        if (principal && strcmp(principal, b->info.principal ? b->info.principal : "") != 0)
            continue;
        if (selector && !sbx_selector_matches(selector, b->info.labels))
            continue;
        if (sbx_info_copy(&page->items[page->n], &b->info) == AB_OK)
            page->n++;
    }
    pthread_mutex_unlock(&fb->lock);
    return page->items ? AB_OK : ab_err_set(err, AB_NOMEM, "out of memory");
}

static ab_status op_status(struct sbx_provider *p, struct sbx_handle *h, json_t **out,
                           struct ab_err *err)
{
    *out = json_pack("{s:s,s:{}}", "state", "running", "limits");
    return *out ? AB_OK : ab_err_set(err, AB_NOMEM, "out of memory");
}

static ab_status op_update_info(struct sbx_provider *p, struct sbx_handle *h,
                                const struct sbx_info *info, struct ab_err *err)
{
    struct fb_provider *fb = FB(p);
    pthread_mutex_lock(&fb->lock);
    struct fb_box *b = find(fb, h->name);
    if (b) {
        struct sbx_info copy;
        if (sbx_info_copy(&copy, info) == AB_OK) {
            sbx_info_cleanup(&b->info);
            b->info = copy;
        }
    }
    pthread_mutex_unlock(&fb->lock);
    return AB_OK;
}

static ab_status op_exec(struct sbx_provider *p, struct sbx_handle *h,
                         const struct sbx_exec_req *req, struct sbx_exec_result *res,
                         struct ab_err *err)
{
    struct buf text;
    buf_init(&text, 1 << 20);
    if (req->argv) {
        for (size_t i = 0; req->argv[i]; i++)
            buf_printf(&text, "%s%s", i ? " " : "$ ", req->argv[i]);
    } else {
        buf_printf(&text, "$ sh -c %s", req->shell ? req->shell : "");
    }
    buf_append_char(&text, '\n');
    if (req->cwd)
        buf_printf(&text, "cwd: %s\n", req->cwd);
    for (size_t i = 0; req->env && req->env[i]; i++)
        buf_printf(&text, "env: %s\n", req->env[i]);
    if (req->stdin_data)
        buf_printf(&text, "stdin: %zu bytes\n", req->stdin_len);
    size_t cap = req->output_cap ? req->output_cap : 1 << 20;
    buf_cleanup(&res->output); /* the provider sizes the result, as the real ones do */
    buf_init(&res->output, cap);
    size_t half = text.len / 2;
    const char *parts[2] = {text.data, text.data + half};
    size_t lens[2] = {half, text.len - half};
    for (int i = 0; i < 2; i++) {
        if (req->cancel && ab_cancel_fired(req->cancel)) {
            res->cancelled = true;
            res->exit_code = 130;
            break;
        }
        if (req->on_output && lens[i])
            req->on_output(req->on_output_arg, parts[i], lens[i]);
        if (buf_append_upto(&res->output, parts[i], lens[i]) < lens[i])
            res->truncated = true;
    }
    if (!res->cancelled)
        res->exit_code = req->shell && ab_starts_with(req->shell, "false") ? 1 : 0;
    buf_cleanup(&text);
    return AB_OK;
}

/* File primitives: the sandbox's own hostdir provider. */
#define INNER(h) (h)->inner, (h)->ih

static ab_status op_read_file(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                              size_t max_bytes, struct buf *out, struct ab_err *err)
{
    return h->inner->ops->read_file(INNER(h), path, max_bytes, out, err);
}

static ab_status op_write_file(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                               const void *data, size_t len, struct ab_err *err)
{
    return h->inner->ops->write_file(INNER(h), path, data, len, err);
}

static ab_status op_list_dir(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                             struct sbx_dirent **ents, size_t *n, struct ab_err *err)
{
    return h->inner->ops->list_dir(INNER(h), path, ents, n, err);
}

static ab_status op_stat(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                         struct sbx_stat *st, struct ab_err *err)
{
    return h->inner->ops->stat(INNER(h), path, st, err);
}

static ab_status op_walk(struct sbx_provider *p, struct sbx_handle *h,
                         const struct sbx_walk_req *req, struct sbx_walk_entry **ents, size_t *n,
                         bool *truncated, struct ab_err *err)
{
    return sbx_walk(INNER(h), req, ents, n, truncated, err);
}

static ab_status op_search(struct sbx_provider *p, struct sbx_handle *h,
                           const struct sbx_search_req *req, struct sbx_match **matches,
                           size_t *n, bool *truncated, struct ab_err *err)
{
    return sbx_search(INNER(h), req, matches, n, truncated, err);
}

static void op_free(struct sbx_provider *p)
{
    struct fb_provider *fb = FB(p);
    while (fb->boxes) {
        struct fb_box *b = fb->boxes;
        fb->boxes = b->next;
        hostdir_rmtree(b->dir);
        free(b->dir);
        sbx_info_cleanup(&b->info);
        free(b);
    }
    pthread_mutex_destroy(&fb->lock);
    free(fb->root);
    free(fb);
}

static const struct sbx_provider_ops fuzzbox_ops = {
    .kind = "fuzzbox",
    .create = op_create,
    .attach = op_attach,
    .destroy = op_destroy,
    .release = op_release,
    .list = op_list,
    .status = op_status,
    .update_info = op_update_info,
    .exec = op_exec,
    .read_file = op_read_file,
    .write_file = op_write_file,
    .list_dir = op_list_dir,
    .stat = op_stat,
    .walk = op_walk,
    .search = op_search,
    .free = op_free,
};

ab_status fuzzbox_new(const char *root, struct sbx_provider **out, struct ab_err *err)
{
    struct fb_provider *fb = calloc(1, sizeof(*fb));
    if (!fb)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    fb->base.ops = &fuzzbox_ops;
    fb->base.workspace = "/workspace";
    fb->root = ab_strdup(root);
    pthread_mutex_init(&fb->lock, NULL);
    *out = &fb->base;
    return AB_OK;
}
