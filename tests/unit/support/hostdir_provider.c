/*
 * hostdir_provider.c - test provider over a host directory (see hostdir_provider.h).
 *
 * Every path operation goes through openat2(2) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
 * relative to an O_PATH fd of the root: the kernel then treats the root fd as "/" for
 * "..", absolute paths and symlink targets (openat2(2), "RESOLVE_IN_ROOT"), which is what a
 * sandbox's own view gives the real providers. lstat-like questions open the parent that
 * way and fstatat() the last component with AT_SYMLINK_NOFOLLOW, so no syscall ever resolves
 * a path on the host's root.
 */
#include "support/hostdir_provider.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/util.h"

struct hd_provider {
    struct sbx_provider base; /* first */
    int rootfd;
    char **deny;
    size_t ndeny;
    struct sbx_handle *h;
};

struct sbx_handle {
    struct hd_provider *hp;
};

static struct hd_provider *HP(struct sbx_provider *p)
{
    return (struct hd_provider *)p;
}

static bool denied(struct hd_provider *hp, const char *path)
{
    for (size_t i = 0; i < hp->ndeny; i++) {
        size_t n = strlen(hp->deny[i]);
        if (strncmp(path, hp->deny[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return true;
    }
    return false;
}

static int hd_open(struct hd_provider *hp, const char *path, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, hp->rootfd, path, &how, sizeof(how));
}

static void fill_stat(struct sbx_stat *st, const struct stat *s)
{
    st->type = sbx_ftype_from_mode(s->st_mode);
    st->target_type = st->type;
    st->size = (uint64_t)s->st_size;
    st->mtime_ms = (int64_t)s->st_mtim.tv_sec * 1000 + s->st_mtim.tv_nsec / 1000000;
    st->mode = s->st_mode & 07777;
}

/* Split "/a/b/c" into parent "/a/b" (static buffer) and name "c". */
static int split_parent(const char *path, char *parent, size_t cap, const char **name)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return -1;
    size_t n = (size_t)(slash - path);
    if (n + 2 > cap)
        return -1;
    if (n == 0) {
        strcpy(parent, "/");
    } else {
        memcpy(parent, path, n);
        parent[n] = '\0';
    }
    *name = slash + 1;
    return 0;
}

static ab_status hd_stat_path(struct hd_provider *hp, const char *path, struct sbx_stat *st,
                              struct ab_err *err)
{
    memset(st, 0, sizeof(*st));
    struct stat s;
    if (strcmp(path, "/") == 0) {
        if (fstat(hp->rootfd, &s))
            return ab_err_sys(err, ab_status_from_errno(errno), errno, "stat /");
        fill_stat(st, &s);
        return AB_OK;
    }
    char parent[4200];
    const char *name;
    if (split_parent(path, parent, sizeof(parent), &name) || !*name)
        return ab_err_set(err, AB_INVAL, "bad path %s", path);
    int pfd = hd_open(hp, parent, O_PATH | O_DIRECTORY, 0);
    if (pfd < 0)
        return ab_err_sys(err, ab_status_from_errno(errno), errno, "open %s", parent);
    int rc = fstatat(pfd, name, &s, AT_SYMLINK_NOFOLLOW);
    int e = errno;
    close(pfd);
    if (rc)
        return ab_err_sys(err, ab_status_from_errno(e), e, "stat %s", path);
    fill_stat(st, &s);
    if (st->type == SBX_FT_SYMLINK) {
        int fd = hd_open(hp, path, O_PATH, 0);
        struct stat t;
        if (fd >= 0 && fstat(fd, &t) == 0)
            st->target_type = sbx_ftype_from_mode(t.st_mode);
        else
            st->target_type = SBX_FT_NONE;
        if (fd >= 0)
            close(fd);
    }
    return AB_OK;
}

static ab_status op_stat(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                         struct sbx_stat *st, struct ab_err *err)
{
    return hd_stat_path(HP(p), path, st, err);
}

static ab_status op_read_file(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                              size_t max_bytes, struct buf *out, struct ab_err *err)
{
    struct hd_provider *hp = HP(p);
    if (denied(hp, path))
        return ab_err_set(err, AB_DENIED, "%s: permission denied", path);
    int fd = hd_open(hp, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
    if (fd < 0)
        return ab_err_sys(err, ab_status_from_errno(errno), errno, "open %s", path);
    struct stat s;
    ab_status rc = AB_OK;
    if (fstat(fd, &s)) {
        rc = ab_err_sys(err, AB_IO, errno, "fstat %s", path);
    } else if (S_ISDIR(s.st_mode)) {
        rc = ab_err_set(err, AB_ISDIR, "%s is a directory", path);
    } else if (!S_ISREG(s.st_mode)) {
        rc = ab_err_set(err, AB_INVAL, "%s is not a regular file", path);
    } else if ((uint64_t)s.st_size > max_bytes) {
        rc = ab_err_set(err, AB_LIMIT, "%s is larger than %zu bytes", path, max_bytes);
    } else {
        char chunk[65536];
        for (;;) {
            ssize_t n = read(fd, chunk, sizeof(chunk));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = ab_err_sys(err, AB_IO, errno, "read %s", path);
                break;
            }
            if (n == 0)
                break;
            if (out->len + (size_t)n > max_bytes) {
                rc = ab_err_set(err, AB_LIMIT, "%s grew past %zu bytes", path, max_bytes);
                break;
            }
            rc = buf_append(out, chunk, (size_t)n);
            if (rc)
                break;
        }
    }
    close(fd);
    return rc;
}

/* mkdir -p of the parents of path, each directory created with mkdirat() on a parent fd
 * that was itself opened inside the root. */
static ab_status mkparents(struct hd_provider *hp, const char *path, struct ab_err *err)
{
    size_t len = strlen(path);
    char *prefix = malloc(len + 1);
    if (!prefix)
        return AB_NOMEM;
    ab_status rc = AB_OK;
    for (size_t i = 1; i < len && !rc; i++) {
        if (path[i] != '/')
            continue;
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        int fd = hd_open(hp, prefix, O_PATH | O_DIRECTORY, 0);
        if (fd >= 0) {
            close(fd);
            continue;
        }
        if (errno != ENOENT) {
            rc = ab_err_sys(err, ab_status_from_errno(errno), errno, "open %s", prefix);
            break;
        }
        char parent[4200];
        const char *name;
        if (split_parent(prefix, parent, sizeof(parent), &name)) {
            rc = ab_err_set(err, AB_INVAL, "bad path %s", prefix);
            break;
        }
        int pfd = hd_open(hp, parent, O_PATH | O_DIRECTORY, 0);
        if (pfd < 0) {
            rc = ab_err_sys(err, ab_status_from_errno(errno), errno, "open %s", parent);
            break;
        }
        if (mkdirat(pfd, name, 0755) && errno != EEXIST)
            rc = ab_err_sys(err, ab_status_from_errno(errno), errno, "mkdir %s", prefix);
        close(pfd);
    }
    free(prefix);
    return rc;
}

static ab_status op_write_file(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                               const void *data, size_t len, struct ab_err *err)
{
    struct hd_provider *hp = HP(p);
    if (denied(hp, path))
        return ab_err_set(err, AB_DENIED, "%s: permission denied", path);
    ab_status rc = mkparents(hp, path, err);
    if (rc)
        return rc;
    int fd = hd_open(hp, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY, 0644);
    if (fd < 0)
        return ab_err_sys(err, ab_status_from_errno(errno), errno, "open %s", path);
    const char *d = data;
    while (len) {
        ssize_t n = write(fd, d, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ab_err_sys(err, AB_IO, errno, "write %s", path);
            break;
        }
        d += n;
        len -= (size_t)n;
    }
    close(fd);
    return rc;
}

static ab_status list_fd(struct hd_provider *hp, const char *path, struct sbx_dirent **ents,
                         size_t *n, struct ab_err *err)
{
    if (denied(hp, path))
        return ab_err_set(err, AB_DENIED, "%s: permission denied", path);
    int fd = hd_open(hp, path, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return ab_err_sys(err, ab_status_from_errno(errno), errno, "opendir %s", path);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return ab_err_sys(err, AB_IO, errno, "fdopendir %s", path);
    }
    struct sbx_dirent *v = NULL;
    size_t cnt = 0, cap = 0;
    ab_status rc = AB_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 32;
            struct sbx_dirent *nv = realloc(v, cap * sizeof(*nv));
            if (!nv) {
                rc = AB_NOMEM;
                break;
            }
            v = nv;
        }
        char *full = strcmp(path, "/") == 0 ? ab_asprintf("/%s", de->d_name)
                                            : ab_asprintf("%s/%s", path, de->d_name);
        if (!full) {
            rc = AB_NOMEM;
            break;
        }
        struct ab_err sub;
        rc = hd_stat_path(hp, full, &v[cnt].st, &sub);
        free(full);
        if (rc == AB_NOTFOUND) { /* vanished meanwhile */
            rc = AB_OK;
            continue;
        }
        if (rc)
            break;
        v[cnt].name = ab_strdup(de->d_name);
        if (!v[cnt].name) {
            rc = AB_NOMEM;
            break;
        }
        cnt++;
    }
    closedir(d);
    if (rc) {
        sbx_dirents_free(v, cnt);
        return ab_err_set(err, rc, "listing %s failed", path);
    }
    *ents = v;
    *n = cnt;
    return AB_OK;
}

static ab_status op_list_dir(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                             struct sbx_dirent **ents, size_t *n, struct ab_err *err)
{
    return list_fd(HP(p), path, ents, n, err);
}

/* Native walk: depth-first, entries of each directory in readdir order. */
struct walk_ctx {
    struct hd_provider *hp;
    const struct sbx_walk_req *req;
    struct sbx_walk_entry *v;
    size_t n, cap;
    bool truncated;
};

static ab_status walk_dir(struct walk_ctx *w, const char *rel)
{
    char *abs = rel ? (strcmp(w->req->root, "/") == 0 ? ab_asprintf("/%s", rel)
                                                      : ab_asprintf("%s/%s", w->req->root, rel))
                    : ab_strdup(w->req->root);
    if (!abs)
        return AB_NOMEM;
    struct sbx_dirent *ents = NULL;
    size_t n = 0;
    struct ab_err sub;
    ab_status rc = list_fd(w->hp, abs, &ents, &n, &sub);
    free(abs);
    if (rc) {
        if (!rel)
            return rc;
        w->truncated = true; /* unreadable subtree */
        return AB_OK;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        if ((w->req->max_entries && w->n >= w->req->max_entries) ||
            (w->req->deadline_ms && ab_mono_ms() > w->req->deadline_ms) ||
            ab_cancel_fired(w->req->cancel)) {
            w->truncated = true;
            break;
        }
        char *r = rel ? ab_asprintf("%s/%s", rel, ents[i].name) : ab_strdup(ents[i].name);
        if (!r) {
            rc = AB_NOMEM;
            break;
        }
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 64;
            struct sbx_walk_entry *nv = realloc(w->v, cap * sizeof(*nv));
            if (!nv) {
                free(r);
                rc = AB_NOMEM;
                break;
            }
            w->v = nv;
            w->cap = cap;
        }
        w->v[w->n].relpath = r;
        w->v[w->n].st = ents[i].st;
        w->n++;
        if (ents[i].st.type == SBX_FT_DIR && !(w->req->skip_dot_dirs && ents[i].name[0] == '.'))
            rc = walk_dir(w, r);
    }
    sbx_dirents_free(ents, n);
    return rc;
}

static ab_status op_walk(struct sbx_provider *p, struct sbx_handle *h,
                         const struct sbx_walk_req *req, struct sbx_walk_entry **ents, size_t *n,
                         bool *truncated, struct ab_err *err)
{
    struct walk_ctx w = {.hp = HP(p), .req = req};
    ab_status rc = walk_dir(&w, NULL);
    if (rc) {
        sbx_walk_entries_free(w.v, w.n);
        return ab_err_set(err, rc, "walk %s failed: %s", req->root, ab_status_name(rc));
    }
    *ents = w.v;
    *n = w.n;
    *truncated = w.truncated;
    return AB_OK;
}

/* Native search: the same contract as core's fallback (literal, per line, CR stripped,
 * binary = NUL in the first 8 KiB), written independently so the two can be compared. */
static ab_status op_search(struct sbx_provider *p, struct sbx_handle *h,
                           const struct sbx_search_req *req, struct sbx_match **matches, size_t *n,
                           bool *truncated, struct ab_err *err)
{
    struct sbx_match *v = NULL;
    size_t cnt = 0, cap = 0;
    *truncated = false;
    ab_status rc = AB_OK;
    for (size_t f = 0; f < req->npaths && !rc && !*truncated; f++) {
        struct buf b;
        buf_init(&b, 64u * 1024 * 1024);
        struct ab_err sub;
        if (op_read_file(p, h, req->paths[f], b.max, &b, &sub)) {
            buf_cleanup(&b);
            continue;
        }
        const char *s = buf_cstr(&b);
        if (memchr(s, '\0', b.len < 8192 ? b.len : 8192)) {
            buf_cleanup(&b);
            continue;
        }
        int64_t line = 0;
        const char *cur = s, *end = s + b.len;
        while (cur < end && !rc) {
            const char *nl = memchr(cur, '\n', (size_t)(end - cur));
            const char *le = nl ? nl : end;
            line++;
            size_t ll = (size_t)(le - cur);
            if (ll && cur[ll - 1] == '\r')
                ll--;
            if (memmem(cur, ll, req->literal, req->literal_len)) {
                if (req->max_matches && cnt >= req->max_matches) {
                    *truncated = true;
                    break;
                }
                if (cnt == cap) {
                    cap = cap ? cap * 2 : 32;
                    struct sbx_match *nv = realloc(v, cap * sizeof(*nv));
                    if (!nv) {
                        rc = AB_NOMEM;
                        break;
                    }
                    v = nv;
                }
                v[cnt].path = ab_strdup(req->paths[f]);
                v[cnt].line = line;
                v[cnt].text = ab_strndup(cur, ll);
                cnt++;
                if (!v[cnt - 1].path || !v[cnt - 1].text)
                    rc = AB_NOMEM;
            }
            if (!nl)
                break;
            cur = nl + 1;
        }
        buf_cleanup(&b);
    }
    if (rc) {
        sbx_matches_free(v, cnt);
        return ab_err_set(err, rc, "search failed");
    }
    *matches = v;
    *n = cnt;
    return AB_OK;
}

/* ---- lifecycle: not part of this test double ---- */

static ab_status op_create(struct sbx_provider *p, const struct sbx_create_req *req,
                           struct sbx_handle **out, struct ab_err *err)
{
    return ab_err_set(err, AB_UNSUPPORTED, "hostdir provider: create is not supported");
}

static ab_status op_attach(struct sbx_provider *p, const char *name, struct sbx_handle **out,
                           struct sbx_info *info_out, struct ab_err *err)
{
    return ab_err_set(err, AB_UNSUPPORTED, "hostdir provider: attach is not supported");
}

static ab_status op_destroy(struct sbx_provider *p, struct sbx_handle *h, struct ab_err *err)
{
    return ab_err_set(err, AB_UNSUPPORTED, "hostdir provider: destroy is not supported");
}

static void op_release(struct sbx_provider *p, struct sbx_handle *h)
{
}

static ab_status op_list(struct sbx_provider *p, const char *principal, const char *selector,
                         const char *cursor, size_t limit, struct sbx_list_page *page,
                         struct ab_err *err)
{
    return ab_err_set(err, AB_UNSUPPORTED, "hostdir provider: list is not supported");
}

static ab_status op_status(struct sbx_provider *p, struct sbx_handle *h, json_t **out,
                           struct ab_err *err)
{
    return ab_err_set(err, AB_UNSUPPORTED, "hostdir provider: status is not supported");
}

static ab_status op_update_info(struct sbx_provider *p, struct sbx_handle *h,
                                const struct sbx_info *info, struct ab_err *err)
{
    return AB_OK;
}

static ab_status op_exec(struct sbx_provider *p, struct sbx_handle *h,
                         const struct sbx_exec_req *req, struct sbx_exec_result *res,
                         struct ab_err *err)
{
    return ab_err_set(err, AB_UNSUPPORTED, "hostdir provider: exec is not supported");
}

static void op_free(struct sbx_provider *p)
{
    hostdir_provider_free(p);
}

#define HD_OPS_COMMON                                                                              \
    .kind = "hostdir", .create = op_create, .attach = op_attach, .destroy = op_destroy,            \
    .release = op_release, .list = op_list, .status = op_status, .update_info = op_update_info,    \
    .exec = op_exec, .read_file = op_read_file, .write_file = op_write_file,                       \
    .list_dir = op_list_dir, .stat = op_stat, .free = op_free

static const struct sbx_provider_ops ops_plain = {HD_OPS_COMMON};
static const struct sbx_provider_ops ops_walk = {HD_OPS_COMMON, .walk = op_walk};
static const struct sbx_provider_ops ops_search = {HD_OPS_COMMON, .search = op_search};
static const struct sbx_provider_ops ops_both = {HD_OPS_COMMON, .walk = op_walk,
                                                 .search = op_search};

ab_status hostdir_provider_new(const char *root, bool with_walk, bool with_search,
                               struct sbx_provider **p, struct sbx_handle **h, struct ab_err *err)
{
    struct hd_provider *hp = calloc(1, sizeof(*hp));
    struct sbx_handle *hh = calloc(1, sizeof(*hh));
    if (!hp || !hh) {
        free(hp);
        free(hh);
        return ab_err_set(err, AB_NOMEM, "out of memory");
    }
    hp->rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (hp->rootfd < 0) {
        int e = errno;
        free(hp);
        free(hh);
        return ab_err_sys(err, ab_status_from_errno(e), e, "open %s", root);
    }
    hp->base.ops = with_walk ? (with_search ? &ops_both : &ops_walk)
                             : (with_search ? &ops_search : &ops_plain);
    hh->hp = hp;
    hp->h = hh;
    *p = &hp->base;
    *h = hh;
    return AB_OK;
}

void hostdir_provider_free(struct sbx_provider *p)
{
    if (!p)
        return;
    struct hd_provider *hp = HP(p);
    close(hp->rootfd);
    for (size_t i = 0; i < hp->ndeny; i++)
        free(hp->deny[i]);
    free(hp->deny);
    free(hp->h);
    free(hp);
}

void hostdir_deny(struct sbx_provider *p, const char *sandbox_prefix)
{
    struct hd_provider *hp = HP(p);
    char **nv = realloc(hp->deny, (hp->ndeny + 1) * sizeof(*nv));
    if (!nv)
        return;
    hp->deny = nv;
    hp->deny[hp->ndeny] = ab_strdup(sandbox_prefix);
    if (hp->deny[hp->ndeny])
        hp->ndeny++;
}

char *hostdir_mkdtemp(void)
{
    const char *tmp = getenv("TMPDIR");
    char *t = ab_asprintf("%s/agentbox-hostdir-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (t && !mkdtemp(t)) {
        free(t);
        return NULL;
    }
    return t;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

void hostdir_rmtree(const char *host_dir)
{
    if (host_dir)
        nftw(host_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *g_rmtree_at_exit;
static bool g_rmtree_registered;

static void rmtree_at_exit(void)
{
    hostdir_rmtree(g_rmtree_at_exit);
}

void hostdir_rmtree_at_exit(const char *host_dir)
{
    if (host_dir && !g_rmtree_registered) {
        atexit(rmtree_at_exit);
        g_rmtree_registered = true;
    }
    g_rmtree_at_exit = host_dir;
}
