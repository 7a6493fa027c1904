/*
 * provider.c - the local provider's server side: sandboxes, handles, channels and the
 * sbx_provider_ops.
 *
 * State on disk:
 *   sandboxes/<name>/meta.json   sbx_info as JSON, written atomically (state.c)
 *   sandboxes/<name>/workspace/  bound at local.workspace inside the sandbox
 *   servers/<id>/                one per running server (flock on servers/<id>/lock):
 *     pool/<sbx>/workspace/      its anonymous warm sandboxes (bind() renames them into
 *                                sandboxes/<name>; the helper's bind mount follows the inode)
 *     staging/, trash/           a create is staged and renamed into place, a destroy is
 *                                renamed away and then deleted: a server killed at any point
 *                                leaves complete sandboxes or none; the next server to start
 *                                removes the directories of servers that are gone
 * Several servers may share a state directory (two stdio sessions on one machine, say): a
 * server holds an exclusive flock on the directory of every sandbox it has attached, so a
 * sandbox runs under one server at a time and another gets AB_BUSY. An in-memory index
 * (sorted by name) mirrors sandboxes/ for list(); it is loaded at startup and refreshed from
 * the directory when listing or attaching an unknown name.
 *
 * A handle owns at most one running helper. Helpers start lazily: attach() after a restart
 * only rebuilds the handle, and the first operation starts the helper with the workspace
 * intact. A helper found dead (pidfd readable, EOF, garbage, or no answer to a cancel) is
 * dropped; the next operation restarts it when local.recreate_on_death is set, and gets a
 * clear error otherwise. Operations borrow a channel (see internal.h) and hold a reference
 * on the helper, so a restart never pulls a socket from under a concurrent operation.
 *
 * Every byte from a helper is untrusted: frames are capped (wire.c), counts and sizes are
 * checked against what was asked for, error codes are range-checked, messages sanitised, and
 * every wait has a deadline, so a compromised or hung helper can neither crash nor hang a
 * server thread; at worst it is killed and its operation fails.
 */
#include "providers/local/local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "providers/local/internal.h"

#define IDLE_CHANNELS   4
#define META_MAX        (1u << 20)
#define OP_TIMEOUT_MS   60000 /* file operations: generous, but never forever */
#define EXEC_GRACE_MS   10000 /* after the command's own timeout */
#define CANCEL_GRACE_MS 10000
#define LISTDIR_MAX     200000u
#define WALK_MAX        1000000u
#define LIST_DEFAULT    100u
#define LIST_MAX        1000u
#define STOP_WAIT_MS    3000

struct helper {
    int refs; /* the handle's own reference + one per operation in flight */
    pid_t pid;
    int pidfd; /* -1 on kernels without pidfds */
    int ctl;
    int idle[IDLE_CHANNELS];
    size_t nidle;
    bool dead;
    struct lcl_cgroup cg;
    int64_t started_ms;
    int64_t nofile, nproc, fsize; /* effective rlimits the helper reported */
};

struct index_entry {
    char *name;
    struct sbx_info info;
    struct sbx_handle *live; /* the attached handle, if any */
    bool died;               /* its helper died unexpectedly and was not restarted */
};

struct local_provider {
    struct sbx_provider base;
    char *state_dir, *sbx_dir, *servers_dir, *inst_dir, *pool_dir, *staging_dir, *trash_dir;
    char *workspace;
    uint32_t uid, gid; /* the sandbox user, inside */
    uid_t owner_uid;   /* owner of workspace directories on the host */
    gid_t owner_gid;
    bool chown_workspace;
    mode_t dir_mode; /* of the directories above a workspace */
    bool userns, net_host, seccomp, recreate;
    struct cfg_limits limits;
    uint64_t shm_bytes;
    uint64_t default_output_cap;
    int64_t create_timeout_ms;
    int lock_fd; /* flock on servers/<instance>/lock, for our lifetime */
    char instance[13];
    struct lcl_spawner *spawner;
    struct lcl_flusher *flusher;
    struct lcl_cg_env cg;
    struct lcl_setup tmpl; /* the parts of a spawn request common to all sandboxes */
    pthread_mutex_t lock;  /* the index */
    struct index_entry *idx;
    size_t nidx, capidx;
};

struct sbx_handle {
    struct local_provider *lp;
    pthread_mutex_t lock;
    char *id; /* the sandbox name, or "pool-<hex>" while anonymous */
    char *dir;
    int dir_lock; /* the sandbox directory, flock()ed: no other server may run it */
    bool anonymous;
    struct helper *helper;
    bool died;
};

/* Why a helper did not start, for the preflight's diagnosis. */
struct start_fail {
    char step[256];
    int errnum;
    bool ns; /* the clone itself failed */
};

static char *g_helper_binary;
static pthread_mutex_t g_binary_lock = PTHREAD_MUTEX_INITIALIZER;

void sbx_local_set_helper_binary(const char *path)
{
    pthread_mutex_lock(&g_binary_lock);
    free(g_helper_binary);
    g_helper_binary = path ? ab_strdup(path) : NULL;
    pthread_mutex_unlock(&g_binary_lock);
}

static char *helper_binary(void)
{
    pthread_mutex_lock(&g_binary_lock);
    char *b = g_helper_binary ? ab_strdup(g_helper_binary) : NULL;
    pthread_mutex_unlock(&g_binary_lock);
    if (b)
        return b;
    const char *env = getenv("AGENTBOX_BIN");
    return ab_strdup(env && *env ? env : "/proc/self/exe");
}

/* ------------------------------------------------------------------------------------------
 * names and metadata
 * ---------------------------------------------------------------------------------------- */

/* Sandbox names become directory names: DNS-1123 labels only ([a-z0-9-], <= 63). */
static bool name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63 || name[0] == '-' || name[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

static ab_status write_meta(const char *dir, const char *tmpdir, const struct sbx_info *info,
                            bool sync, struct ab_err *err)
{
    json_t *j = sbx_info_to_json(info);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!text)
        return AB_NOMEM;
    char *path = ab_asprintf("%s/meta.json", dir);
    ab_status rc = path ? lcl__write_atomic(path, tmpdir, text, strlen(text), sync, err) : AB_NOMEM;
    free(path);
    free(text);
    return rc;
}

static ab_status read_meta(const char *dir, struct sbx_info *info, struct ab_err *err)
{
    char *path = ab_asprintf("%s/meta.json", dir);
    if (!path)
        return AB_NOMEM;
    char *text = NULL;
    size_t len = 0;
    ab_status rc = lcl__read_small(path, META_MAX, &text, &len, err);
    if (!rc) {
        json_error_t je;
        json_t *j = json_loadb(text, len, 0, &je);
        if (!j)
            rc = ab_err_set(err, AB_INVAL, "%s: %s (line %d)", path, je.text, je.line);
        else
            rc = sbx_info_from_json(info, j, err);
        json_decref(j);
    }
    free(text);
    free(path);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * the index (lp->lock held)
 * ---------------------------------------------------------------------------------------- */

static size_t idx_lower_bound(struct local_provider *lp, const char *name)
{
    size_t lo = 0, hi = lp->nidx;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(lp->idx[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct index_entry *idx_find(struct local_provider *lp, const char *name)
{
    size_t i = idx_lower_bound(lp, name);
    return i < lp->nidx && strcmp(lp->idx[i].name, name) == 0 ? &lp->idx[i] : NULL;
}

/* Takes ownership of info on success. */
static ab_status idx_insert(struct local_provider *lp, struct sbx_info *info,
                            struct sbx_handle *live)
{
    if (idx_find(lp, info->name))
        return AB_EXISTS;
    if (lp->nidx == lp->capidx) {
        size_t cap = lp->capidx ? lp->capidx * 2 : 64;
        struct index_entry *n = realloc(lp->idx, cap * sizeof(*n));
        if (!n)
            return AB_NOMEM;
        lp->idx = n;
        lp->capidx = cap;
    }
    char *name = ab_strdup(info->name);
    if (!name)
        return AB_NOMEM;
    size_t i = idx_lower_bound(lp, info->name);
    memmove(&lp->idx[i + 1], &lp->idx[i], (lp->nidx - i) * sizeof(lp->idx[0]));
    lp->idx[i] = (struct index_entry){.name = name, .info = *info, .live = live};
    memset(info, 0, sizeof(*info));
    lp->nidx++;
    return AB_OK;
}

static void idx_remove(struct local_provider *lp, const char *name)
{
    struct index_entry *e = idx_find(lp, name);
    if (!e)
        return;
    free(e->name);
    sbx_info_cleanup(&e->info);
    size_t i = (size_t)(e - lp->idx);
    memmove(&lp->idx[i], &lp->idx[i + 1], (lp->nidx - i - 1) * sizeof(lp->idx[0]));
    lp->nidx--;
}

/* ------------------------------------------------------------------------------------------
 * helpers (the processes)
 * ---------------------------------------------------------------------------------------- */

static bool helper_exited(struct helper *hp)
{
    if (hp->dead)
        return true;
    struct pollfd p[2] = {{.fd = hp->pidfd, .events = POLLIN}, {.fd = hp->ctl, .events = POLLIN}};
    /* pidfd: readable once the process exits. The control channel: the helper never sends
     * on it after READY, so readable means EOF (or garbage, which is just as fatal). */
    if (poll(p, 2, 0) > 0 && (p[0].revents || p[1].revents))
        hp->dead = true;
    return hp->dead;
}

static void helper_kill(struct helper *hp)
{
    /* SIGKILL to PID 1 of the namespace: the kernel kills every process in it
     * (pid_namespaces(7)). pidfd_send_signal cannot hit a recycled pid. */
    if (hp->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, hp->pidfd, SIGKILL, NULL, 0);
    else if (hp->pid > 0)
        kill(hp->pid, SIGKILL);
}

static void helper_wait_exit(struct helper *hp)
{
    int64_t deadline = ab_mono_ms() + STOP_WAIT_MS;
    for (;;) {
        int64_t left = deadline - ab_mono_ms();
        if (left <= 0)
            break;
        /* Without a pidfd, the control socket's hang-up tells us the helper is gone. */
        struct pollfd p = {.fd = hp->pidfd >= 0 ? hp->pidfd : hp->ctl,
                           .events = hp->pidfd >= 0 ? POLLIN : POLLRDHUP};
        int n = poll(&p, 1, (int)left);
        if (n > 0 || (n < 0 && errno != EINTR))
            break;
    }
}

static void helper_destroy(struct local_provider *lp, struct helper *hp)
{
    helper_kill(hp);
    helper_wait_exit(hp);
    for (size_t i = 0; i < hp->nidle; i++)
        close(hp->idle[i]);
    if (hp->ctl >= 0)
        close(hp->ctl);
    if (hp->pidfd >= 0)
        close(hp->pidfd);
    lcl__cg_destroy(&lp->cg, &hp->cg);
    free(hp);
}

/* Drop a reference; the last one kills and frees. Called with the handle's lock held. */
static void helper_unref(struct local_provider *lp, struct helper *hp)
{
    if (--hp->refs == 0)
        helper_destroy(lp, hp);
}

static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            *s = '?';
}

static ab_status helper_start(struct local_provider *lp, const char *dir, struct helper **out,
                              struct start_fail *sf, struct ab_err *err)
{
    struct helper *hp = calloc(1, sizeof(*hp));
    char id[32], rnd[13];
    int sv[2] = {-1, -1};
    unsigned char *rx = NULL;
    ab_status rc;
    struct lcl_setup s;
    char **procs = NULL;
    size_t nprocs = 0;
    if (sf)
        memset(sf, 0, sizeof(*sf));
    if (!hp)
        return AB_NOMEM;
    hp->pid = -1;
    hp->pidfd = hp->ctl = -1;
    hp->refs = 1;
    if (ab_random_hex(rnd, 6)) {
        free(hp);
        return ab_err_set(err, AB_IO, "no randomness");
    }
    snprintf(id, sizeof(id), "sbx-%s", rnd);
    struct lcl_cg_limits lim = {lp->limits.memory_bytes, lp->limits.pids, lp->limits.cpus};
    rc = lcl__cg_create(&lp->cg, id, &lim, &hp->cg, err);
    if (rc)
        goto fail;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = ab_err_sys(err, AB_IO, errno, "socketpair");
        goto fail;
    }
    s = lp->tmpl; /* shallow: only the cgroups and the workspace differ */
    procs = lcl__cg_procs_files(&lp->cg, &hp->cg, &nprocs);
    s.cgroup_procs = procs;
    s.ncgroup = nprocs;
    s.workspace_host = ab_asprintf("%s/workspace", dir);
    if (!s.workspace_host || (nprocs && !procs)) {
        free(s.workspace_host);
        rc = AB_NOMEM;
        goto fail;
    }
    rc = lcl__spawner_spawn(lp->spawner, &s, sv[1], &hp->pid, &hp->pidfd, err);
    free(s.workspace_host);
    close(sv[1]);
    sv[1] = -1;
    if (rc) {
        if (sf && err) {
            /* "step: strerror" from the spawner */
            snprintf(sf->step, sizeof(sf->step), "%s", err->msg);
            char *colon = strrchr(sf->step, ':');
            if (colon)
                *colon = '\0';
            sf->errnum = err->sys_errno;
            sf->ns = strcmp(sf->step, "clone") == 0;
        }
        goto fail;
    }
    hp->ctl = sv[0];
    sv[0] = -1;
    rx = malloc(LCL_HDR + LCL_FRAME_MAX + 1);
    if (!rx) {
        rc = AB_NOMEM;
        goto fail;
    }
    struct lcl_frame f;
    struct ab_err sub;
    ab_err_clear(&sub);
    rc = lcl__recv_wait(hp->ctl, rx, &f, ab_mono_ms() + lp->create_timeout_ms, -1, &sub);
    if (rc) {
        rc = ab_err_set(err, AB_SANDBOX, "the sandbox did not start: %s", sub.msg);
        goto fail;
    }
    lcl__frame_close_fds(&f);
    struct lcl_rd r;
    lcl__rd_init(&r, f.payload, f.len);
    if (f.type == LCL_H_READY) {
        uint32_t version = lcl__rd_u32(&r);
        hp->nofile = lcl__rd_i64(&r);
        hp->nproc = lcl__rd_i64(&r);
        hp->fsize = lcl__rd_i64(&r);
        if (!lcl__rd_done(&r) || version != LCL_WIRE_VERSION) {
            rc = ab_err_set(err, AB_PROTO, "the sandbox helper sent a malformed READY");
            goto fail;
        }
    } else if (f.type == LCL_H_SETUP_ERROR) {
        char *step = lcl__rd_str(&r, 256);
        int errnum = lcl__rd_i32(&r);
        if (!lcl__rd_done(&r) || !step) {
            free(step);
            rc = ab_err_set(err, AB_PROTO, "the sandbox helper sent a malformed error");
            goto fail;
        }
        sanitize(step);
        if (sf) {
            snprintf(sf->step, sizeof(sf->step), "%s", step);
            sf->errnum = errnum;
        }
        rc = ab_err_set(err, AB_SANDBOX, "cannot set up the sandbox: %s: %s", step,
                        strerror(errnum));
        free(step);
        goto fail;
    } else {
        rc = ab_err_set(err, AB_PROTO, "unexpected message from the sandbox helper");
        goto fail;
    }
    free(rx);
    for (size_t i = 0; i < nprocs; i++)
        free(procs[i]);
    free(procs);
    hp->started_ms = ab_wall_ms();
    *out = hp;
    return AB_OK;
fail:
    free(rx);
    for (size_t i = 0; i < nprocs; i++)
        free(procs[i]);
    free(procs);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    if (hp->pid > 0 || hp->ctl >= 0) {
        helper_destroy(lp, hp);
    } else {
        lcl__cg_destroy(&lp->cg, &hp->cg);
        free(hp);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * channels
 * ---------------------------------------------------------------------------------------- */

static ab_status chan_open(struct helper *hp, int *out, struct ab_err *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return ab_err_sys(err, errno == EMFILE || errno == ENFILE ? AB_LIMIT : AB_IO, errno,
                          "socketpair");
    unsigned char hdr[LCL_HDR] = {0};
    uint32_t type = LCL_H_NEW_CHANNEL;
    memcpy(hdr, &type, 4);
    ab_status rc =
        lcl__send_wait(hp->ctl, hdr, sizeof(hdr), &sv[1], 1, ab_mono_ms() + OP_TIMEOUT_MS, err);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        return rc;
    }
    *out = sv[0];
    return AB_OK;
}

/* Borrow a channel of h's helper, starting (or restarting) the helper first if needed. */
static ab_status chan_get(struct sbx_handle *h, struct helper **hpo, int *fdo, struct ab_err *err)
{
    struct local_provider *lp = h->lp;
    ab_status rc = AB_OK;
    pthread_mutex_lock(&h->lock);
    struct helper *hp = h->helper;
    if (hp && helper_exited(hp)) {
        AB_LOG_WARN("local.helper.died", "sandbox=%s pid=%d", h->id, (int)hp->pid);
        h->helper = NULL;
        h->died = true;
        helper_unref(lp, hp);
        hp = NULL;
    }
    if (!hp) {
        if (h->died && !lp->recreate) {
            rc = ab_err_set(err, AB_SANDBOX,
                            "sandbox %s stopped: its helper process died (killed, or out of "
                            "memory) and local.recreate_on_death is false; delete the sandbox "
                            "(its workspace is still on disk until then) or enable "
                            "local.recreate_on_death",
                            h->id);
            goto out;
        }
        rc = helper_start(lp, h->dir, &hp, NULL, err);
        if (rc)
            goto out;
        if (h->died)
            AB_LOG_INFO("local.helper.restarted", "sandbox=%s pid=%d", h->id, (int)hp->pid);
        h->died = false;
        h->helper = hp;
    }
    int fd = -1;
    if (hp->nidle) {
        fd = hp->idle[--hp->nidle];
    } else {
        rc = chan_open(hp, &fd, err);
        if (rc) {
            if (rc == AB_SANDBOX) { /* the helper went away just now */
                hp->dead = true;
                h->helper = NULL;
                h->died = true;
                helper_unref(lp, hp);
            }
            goto out;
        }
    }
    hp->refs++;
    *hpo = hp;
    *fdo = fd;
out:
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* Return a channel. clean: the exchange completed and the channel is in step. broken: the
 * helper misbehaved (EOF, garbage, no answer): it is killed and dropped. */
static void chan_put(struct sbx_handle *h, struct helper *hp, int fd, bool clean, bool broken)
{
    pthread_mutex_lock(&h->lock);
    if (broken) {
        hp->dead = true;
        if (h->helper == hp) {
            AB_LOG_WARN("local.helper.failed", "sandbox=%s pid=%d", h->id, (int)hp->pid);
            h->helper = NULL;
            h->died = true;
            helper_unref(h->lp, hp);
        }
    }
    if (clean && !hp->dead && h->helper == hp && hp->nidle < IDLE_CHANNELS)
        hp->idle[hp->nidle++] = fd;
    else
        close(fd);
    helper_unref(h->lp, hp);
    pthread_mutex_unlock(&h->lock);
}

/* Transport failures mean the helper is gone or cannot be trusted any more. */
static bool is_transport_failure(ab_status rc)
{
    return rc == AB_SANDBOX || rc == AB_PROTO || rc == AB_TIMEOUT;
}

/* Send a request payload: CONT frames for all but the last LCL_FRAME_MAX bytes. */
static ab_status send_request(int fd, uint32_t type, const struct buf *pl, int64_t deadline,
                              struct ab_err *err)
{
    struct buf fr;
    buf_init(&fr, LCL_HDR + LCL_FRAME_MAX);
    ab_status rc = AB_OK;
    size_t off = 0;
    while (!rc && pl->len - off > LCL_FRAME_MAX) {
        lcl__wr_begin(&fr, LCL_REQ_CONT);
        rc = buf_append(&fr, pl->data + off, LCL_FRAME_MAX);
        off += LCL_FRAME_MAX;
        if (!rc)
            rc = lcl__send_wait(fd, fr.data, lcl__wr_end(&fr), NULL, 0, deadline, err);
    }
    if (!rc) {
        lcl__wr_begin(&fr, type);
        if (pl->len > off)
            rc = buf_append(&fr, pl->data + off, pl->len - off);
        if (!rc)
            rc = lcl__send_wait(fd, fr.data, lcl__wr_end(&fr), NULL, 0, deadline, err);
    }
    buf_cleanup(&fr);
    return rc;
}

/* Send bytes as DATA frames. */
static ab_status send_data(int fd, const void *data, size_t len, int64_t deadline,
                           struct ab_err *err)
{
    struct buf fr;
    buf_init(&fr, LCL_HDR + LCL_FRAME_MAX);
    ab_status rc = AB_OK;
    const unsigned char *p = data;
    size_t chunk_max = LCL_FRAME_MAX - 4;
    while (!rc && len) {
        size_t n = AB_MIN(len, chunk_max);
        lcl__wr_begin(&fr, LCL_REQ_DATA);
        rc = lcl__wr_bytes(&fr, p, n);
        if (!rc)
            rc = lcl__send_wait(fd, fr.data, lcl__wr_end(&fr), NULL, 0, deadline, err);
        p += n;
        len -= n;
    }
    buf_cleanup(&fr);
    return rc;
}

/* An ERROR frame from the helper, checked and turned into err. */
static ab_status parse_error(const struct lcl_frame *f, struct ab_err *err)
{
    struct lcl_rd r;
    lcl__rd_init(&r, f->payload, f->len);
    uint32_t code = lcl__rd_u32(&r);
    int32_t errnum = lcl__rd_i32(&r);
    char *msg = lcl__rd_str(&r, 1024);
    if (!lcl__rd_done(&r) || code == AB_OK || code >= AB_STATUS_COUNT || !msg) {
        free(msg);
        return ab_err_set(err, AB_PROTO, "the sandbox helper sent a malformed error");
    }
    sanitize(msg);
    ab_status rc = ab_err_set(err, (ab_status)code, "%s", msg);
    if (err)
        err->sys_errno = errnum;
    free(msg);
    return rc;
}

static bool parse_stat(struct lcl_rd *r, struct sbx_stat *st)
{
    uint8_t t = lcl__rd_u8(r), tt = lcl__rd_u8(r);
    st->size = lcl__rd_u64(r);
    st->mtime_ms = lcl__rd_i64(r);
    st->mode = lcl__rd_u32(r) & 07777;
    if (r->bad || t > SBX_FT_OTHER || tt > SBX_FT_OTHER)
        return false;
    st->type = (enum sbx_ftype)t;
    st->target_type = (enum sbx_ftype)tt;
    return true;
}

/* ------------------------------------------------------------------------------------------
 * sandbox lifecycle
 * ---------------------------------------------------------------------------------------- */

static struct local_provider *LP(struct sbx_provider *p)
{
    return (struct local_provider *)p;
}

static struct sbx_handle *handle_new(struct local_provider *lp, const char *id, const char *dir,
                                     bool anonymous)
{
    struct sbx_handle *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->lp = lp;
    h->dir_lock = -1;
    pthread_mutex_init(&h->lock, NULL);
    h->id = ab_strdup(id);
    h->dir = ab_strdup(dir);
    h->anonymous = anonymous;
    if (!h->id || !h->dir) {
        free(h->id);
        free(h->dir);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
    }
    return h;
}

static void handle_free(struct sbx_handle *h)
{
    if (!h)
        return;
    if (h->dir_lock >= 0)
        close(h->dir_lock); /* releases the flock */
    pthread_mutex_destroy(&h->lock);
    free(h->id);
    free(h->dir);
    free(h);
}

/* Stop the handle's helper (if any). */
static void handle_stop(struct sbx_handle *h)
{
    pthread_mutex_lock(&h->lock);
    struct helper *hp = h->helper;
    h->helper = NULL;
    if (hp)
        helper_unref(h->lp, hp);
    pthread_mutex_unlock(&h->lock);
}

/* Move a directory out of the way (atomically) and delete it. */
static ab_status remove_dir(struct local_provider *lp, const char *dir, struct ab_err *err)
{
    char rnd[17];
    if (ab_random_hex(rnd, 8))
        return ab_err_set(err, AB_IO, "no randomness");
    char *trash = ab_asprintf("%s/%s", lp->trash_dir, rnd);
    if (!trash)
        return AB_NOMEM;
    ab_status rc = AB_OK;
    if (rename(dir, trash) < 0) {
        if (errno != ENOENT)
            rc = ab_err_sys(err, AB_IO, errno, "cannot remove %s", dir);
    } else {
        rc = lcl__rm_tree(trash, err);
    }
    free(trash);
    return rc;
}

/* Open and flock a sandbox directory; AB_BUSY when another server holds it. */
static ab_status lock_dir(const char *dir, int *out, struct ab_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ab_err_sys(err, errno == ENOENT ? AB_NOTFOUND : AB_IO, errno, "%s", dir);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? ab_err_set(err, AB_BUSY,
                                             "the sandbox is in use by another agentbox server "
                                             "sharing this state directory")
                                : ab_err_sys(err, AB_IO, e, "cannot lock %s", dir);
    }
    *out = fd;
    return AB_OK;
}

/* A new sandbox directory with an empty workspace, staged so it appears complete, and
 * locked (*lock_fd) before it appears, so no other server can take it. */
static ab_status make_sandbox_dir(struct local_provider *lp, const struct sbx_info *info,
                                  const char *final, int *lock_fd, struct ab_err *err)
{
    *lock_fd = -1;
    char rnd[17];
    if (ab_random_hex(rnd, 8))
        return ab_err_set(err, AB_IO, "no randomness");
    char *stage = ab_asprintf("%s/%s", lp->staging_dir, rnd);
    char *ws = stage ? ab_asprintf("%s/workspace", stage) : NULL;
    ab_status rc = AB_OK;
    if (!ws) {
        rc = AB_NOMEM;
        goto out;
    }
    if (mkdir(stage, lp->dir_mode) < 0 || mkdir(ws, 0700) < 0 || chmod(stage, lp->dir_mode) < 0) {
        rc = ab_err_sys(err, AB_IO, errno, "cannot create %s", ws);
        goto out;
    }
    if (lp->chown_workspace && chown(ws, lp->owner_uid, lp->owner_gid) < 0) {
        rc = ab_err_sys(err, AB_IO, errno, "cannot chown %s to %u", ws, (unsigned)lp->owner_uid);
        goto out;
    }
    if (info)
        rc = write_meta(stage, NULL, info, true, err); /* staging/ is swept anyway */
    if (!rc)
        rc = lock_dir(stage, lock_fd, err);
    if (!rc && rename(stage, final) < 0) {
        rc = errno == EEXIST || errno == ENOTEMPTY
                 ? ab_err_set(err, AB_EXISTS, "sandbox %s already exists", info ? info->name : "")
                 : ab_err_sys(err, AB_IO, errno, "cannot create %s", final);
    }
out:
    if (rc && stage)
        lcl__rm_tree(stage, NULL);
    if (rc && *lock_fd >= 0) {
        close(*lock_fd);
        *lock_fd = -1;
    }
    free(ws);
    free(stage);
    return rc;
}

static ab_status local_create(struct sbx_provider *p, const struct sbx_create_req *req,
                              struct sbx_handle **out, struct ab_err *err)
{
    struct local_provider *lp = LP(p);
    const struct sbx_info *info = req->info;
    bool anonymous = !info || !info->name;
    char id[64], rnd[13];
    if (!anonymous && !name_ok(info->name))
        return ab_err_set(err, AB_INVAL, "invalid sandbox name '%s'", info->name);
    if (anonymous) {
        if (ab_random_hex(rnd, 6))
            return ab_err_set(err, AB_IO, "no randomness");
        snprintf(id, sizeof(id), "pool-%s", rnd);
    } else {
        snprintf(id, sizeof(id), "%s", info->name);
    }
    char *dir = ab_asprintf("%s/%s", anonymous ? lp->pool_dir : lp->sbx_dir, id);
    if (!dir)
        return AB_NOMEM;
    int dir_lock;
    ab_status rc = make_sandbox_dir(lp, anonymous ? NULL : info, dir, &dir_lock, err);
    if (rc) {
        free(dir);
        return rc;
    }
    struct sbx_handle *h = handle_new(lp, id, dir, anonymous);
    if (h)
        h->dir_lock = dir_lock;
    else
        close(dir_lock);
    struct helper *hp = NULL;
    rc = h ? helper_start(lp, dir, &hp, NULL, err) : AB_NOMEM;
    if (!rc && !anonymous) {
        struct sbx_info copy;
        rc = sbx_info_copy(&copy, info);
        if (!rc) {
            pthread_mutex_lock(&lp->lock);
            rc = idx_insert(lp, &copy, h);
            pthread_mutex_unlock(&lp->lock);
            sbx_info_cleanup(&copy);
            if (rc == AB_EXISTS)
                ab_err_set(err, rc, "sandbox %s already exists", info->name);
        }
    }
    if (rc) {
        if (hp)
            helper_destroy(lp, hp);
        handle_free(h);
        remove_dir(lp, dir, NULL);
        free(dir);
        return rc;
    }
    h->helper = hp;
    free(dir);
    *out = h;
    return AB_OK;
}

static void idx_refresh(struct local_provider *lp, const char *only);

static ab_status local_attach(struct sbx_provider *p, const char *name, struct sbx_handle **out,
                              struct sbx_info *info_out, struct ab_err *err)
{
    struct local_provider *lp = LP(p);
    ab_status rc = AB_OK;
    if (!name_ok(name))
        return ab_err_set(err, AB_NOTFOUND, "sandbox %s does not exist", name ? name : "");
    pthread_mutex_lock(&lp->lock);
    bool known = idx_find(lp, name) != NULL;
    pthread_mutex_unlock(&lp->lock);
    if (!known)
        idx_refresh(lp, name); /* another server sharing the state directory made it? */
    char *dir = ab_asprintf("%s/%s", lp->sbx_dir, name);
    if (!dir)
        return AB_NOMEM;
    pthread_mutex_lock(&lp->lock);
    struct index_entry *e = idx_find(lp, name);
    int dir_lock = -1;
    if (!e) {
        rc = ab_err_set(err, AB_NOTFOUND, "sandbox %s does not exist", name);
    } else if (e->live) {
        rc = ab_err_set(err, AB_BUSY, "sandbox %s is already attached", name);
    } else if ((rc = lock_dir(dir, &dir_lock, err)) == AB_NOTFOUND) {
        idx_remove(lp, name); /* deleted by another server */
        rc = ab_err_set(err, AB_NOTFOUND, "sandbox %s does not exist", name);
    } else if (!rc) {
        struct sbx_handle *h = handle_new(lp, name, dir, false);
        if (!h || sbx_info_copy(info_out, &e->info)) {
            handle_free(h);
            close(dir_lock);
            rc = AB_NOMEM;
        } else {
            h->dir_lock = dir_lock;
            h->died = e->died;
            e->live = h;
            *out = h;
        }
    }
    pthread_mutex_unlock(&lp->lock);
    free(dir);
    return rc;
}

static ab_status local_destroy(struct sbx_provider *p, struct sbx_handle *h, struct ab_err *err)
{
    struct local_provider *lp = LP(p);
    handle_stop(h);
    if (!h->anonymous) {
        pthread_mutex_lock(&lp->lock);
        idx_remove(lp, h->id);
        pthread_mutex_unlock(&lp->lock);
    }
    ab_status rc = remove_dir(lp, h->dir, err);
    handle_free(h);
    return rc;
}

static void local_release(struct sbx_provider *p, struct sbx_handle *h)
{
    struct local_provider *lp = LP(p);
    if (h->anonymous) {
        /* A warm sandbox is worth nothing after a restart. */
        local_destroy(p, h, NULL);
        return;
    }
    pthread_mutex_lock(&h->lock);
    bool died = h->died;
    pthread_mutex_unlock(&h->lock);
    handle_stop(h);
    pthread_mutex_lock(&lp->lock);
    struct index_entry *e = idx_find(lp, h->id);
    if (e && e->live == h) {
        e->live = NULL;
        e->died = died;
    }
    pthread_mutex_unlock(&lp->lock);
    handle_free(h);
}

static ab_status local_list(struct sbx_provider *p, const char *principal, const char *selector,
                            const char *cursor, size_t limit, struct sbx_list_page *page,
                            struct ab_err *err)
{
    struct local_provider *lp = LP(p);
    memset(page, 0, sizeof(*page));
    ab_status rc = sbx_selector_validate(selector, err);
    if (rc)
        return rc;
    if (cursor && *cursor && !name_ok(cursor))
        return ab_err_set(err, AB_INVAL, "invalid cursor '%s'", cursor);
    limit = limit ? AB_MIN(limit, (size_t)LIST_MAX) : LIST_DEFAULT;
    idx_refresh(lp, NULL);
    page->items = calloc(limit, sizeof(struct sbx_info));
    if (!page->items)
        return AB_NOMEM;
    pthread_mutex_lock(&lp->lock);
    size_t i = cursor && *cursor ? idx_lower_bound(lp, cursor) : 0;
    if (cursor && *cursor && i < lp->nidx && strcmp(lp->idx[i].name, cursor) == 0)
        i++;
    for (; i < lp->nidx && !rc; i++) {
        const struct index_entry *e = &lp->idx[i];
        if (principal && strcmp(principal, e->info.principal ? e->info.principal : "") != 0)
            continue;
        if (!sbx_selector_matches(selector, e->info.labels))
            continue;
        if (page->n == limit) {
            page->next_cursor = ab_strdup(lp->idx[i - 1].name);
            if (!page->next_cursor)
                rc = AB_NOMEM;
            break;
        }
        rc = sbx_info_copy(&page->items[page->n], &e->info);
        if (!rc)
            page->n++;
    }
    pthread_mutex_unlock(&lp->lock);
    if (rc)
        sbx_list_page_cleanup(page);
    return rc;
}

static json_t *json_limit(int64_t v)
{
    return v > 0 ? json_integer(v) : json_null();
}

static ab_status local_status(struct sbx_provider *p, struct sbx_handle *h, json_t **out,
                              struct ab_err *err)
{
    struct local_provider *lp = LP(p);
    json_t *o = json_object();
    if (!o)
        return AB_NOMEM;
    pthread_mutex_lock(&h->lock);
    struct helper *hp = h->helper;
    if (hp && helper_exited(hp)) {
        h->helper = NULL;
        h->died = true;
        helper_unref(lp, hp);
        hp = NULL;
    }
    const char *state = hp ? "running" : h->died ? "dead" : "stopped";
    json_object_set_new(o, "name", json_string(h->id));
    json_object_set_new(o, "provider", json_string("local"));
    json_object_set_new(o, "state", json_string(state));
    json_object_set_new(o, "pid", hp ? json_integer(hp->pid) : json_null());
    if (hp) {
        char when[40];
        ab_format_time(hp->started_ms, when, sizeof(when));
        json_object_set_new(o, "started", json_string(when));
    }
    json_object_set_new(o, "workspace", json_string(lp->workspace));
    json_object_set_new(o, "uid", json_integer(lp->uid));
    json_object_set_new(o, "user_namespace", json_boolean(lp->userns));
    json_object_set_new(o, "network", json_string(lp->net_host ? "host" : "none"));
    json_object_set_new(o, "seccomp", json_boolean(lp->seccomp));
    struct lcl_cgroup none = {{0}};
    json_t *lim = lcl__cg_status(&lp->cg, hp ? &hp->cg : &none);
    if (!lim) {
        pthread_mutex_unlock(&h->lock);
        json_decref(o);
        return AB_NOMEM;
    }
    json_t *usage = json_incref(json_object_get(lim, "usage"));
    json_object_del(lim, "usage");
    if (!hp) {
        /* Not running: what would apply. */
        json_object_set_new(lim, "memory_bytes",
                            json_limit(lp->cg.mode ? (int64_t)lp->limits.memory_bytes : 0));
        json_object_set_new(lim, "pids", json_limit(lp->cg.mode ? lp->limits.pids : 0));
        json_object_set_new(lim, "cpus",
                            lp->cg.mode && lp->limits.cpus > 0 ? json_real(lp->limits.cpus)
                                                               : json_null());
    }
    json_object_set_new(lim, "nofile", json_limit(hp ? hp->nofile : lp->tmpl.nofile));
    json_object_set_new(lim, "nproc_rlimit", json_limit(hp ? hp->nproc : lp->tmpl.nproc));
    json_object_set_new(lim, "file_size_bytes",
                        json_limit(hp ? hp->fsize : (int64_t)lp->tmpl.fsize));
    json_object_set_new(lim, "cpu_seconds_per_command", json_limit(lp->limits.cpu_seconds));
    json_object_set_new(lim, "tmp_bytes", json_limit((int64_t)lp->limits.tmp_bytes));
    json_object_set_new(lim, "shm_bytes", json_limit((int64_t)lp->shm_bytes));
    json_object_set_new(o, "limits", lim);
    json_object_set_new(o, "usage", usage ? usage : json_object());
    pthread_mutex_unlock(&h->lock);
    *out = o;
    (void)err;
    return AB_OK;
}

static ab_status local_update_info(struct sbx_provider *p, struct sbx_handle *h,
                                   const struct sbx_info *info, struct ab_err *err)
{
    struct local_provider *lp = LP(p);
    if (h->anonymous || !info->name || strcmp(info->name, h->id) != 0)
        return ab_err_set(err, AB_INVAL, "update_info: the metadata does not belong to %s", h->id);
    struct sbx_info copy;
    ab_status rc = sbx_info_copy(&copy, info);
    if (rc)
        return rc;
    /* The index lock also orders concurrent writers of the same meta.json. */
    pthread_mutex_lock(&lp->lock);
    rc = write_meta(h->dir, lp->staging_dir, info, true, err);
    struct index_entry *e = rc ? NULL : idx_find(lp, h->id);
    if (e) {
        sbx_info_cleanup(&e->info);
        e->info = copy;
        memset(&copy, 0, sizeof(copy));
    }
    pthread_mutex_unlock(&lp->lock);
    sbx_info_cleanup(&copy);
    return rc;
}

static ab_status local_bind(struct sbx_provider *p, struct sbx_handle *h,
                            const struct sbx_info *info, struct ab_err *err)
{
    struct local_provider *lp = LP(p);
    if (!h->anonymous)
        return ab_err_set(err, AB_INVAL, "sandbox %s already has a name", h->id);
    if (!info || !name_ok(info->name))
        return ab_err_set(err, AB_INVAL, "invalid sandbox name");
    pthread_mutex_lock(&h->lock);
    bool alive = h->helper && !helper_exited(h->helper);
    pthread_mutex_unlock(&h->lock);
    if (!alive)
        return ab_err_set(err, AB_SANDBOX, "the warm sandbox %s is no longer running", h->id);
    struct sbx_info copy;
    ab_status rc = sbx_info_copy(&copy, info);
    if (rc)
        return rc;
    char *dir = ab_asprintf("%s/%s", lp->sbx_dir, info->name);
    if (!dir) {
        sbx_info_cleanup(&copy);
        return AB_NOMEM;
    }
    /* Metadata first, then the rename: sandboxes/<name> always has its meta.json. No fsync
     * on this path (an acquisition must stay well under a millisecond): the flusher does it
     * right after (state.c). */
    rc = write_meta(h->dir, lp->staging_dir, info, false, err);
    pthread_mutex_lock(&lp->lock);
    if (!rc && idx_find(lp, info->name))
        rc = ab_err_set(err, AB_EXISTS, "sandbox %s already exists", info->name);
    if (!rc && rename(h->dir, dir) < 0)
        rc = errno == EEXIST || errno == ENOTEMPTY
                 ? ab_err_set(err, AB_EXISTS, "sandbox %s already exists", info->name)
                 : ab_err_sys(err, AB_IO, errno, "cannot rename %s", h->dir);
    if (!rc)
        rc = idx_insert(lp, &copy, h);
    pthread_mutex_unlock(&lp->lock);
    sbx_info_cleanup(&copy);
    if (rc) {
        free(dir);
        return rc;
    }
    char *meta = ab_asprintf("%s/meta.json", dir);
    if (meta)
        lcl__flusher_add(lp->flusher, meta);
    free(meta);
    pthread_mutex_lock(&h->lock);
    char *id = ab_strdup(info->name);
    if (id) {
        free(h->id);
        h->id = id;
    }
    free(h->dir);
    h->dir = dir;
    h->anonymous = false;
    pthread_mutex_unlock(&h->lock);
    return AB_OK;
}

/* ------------------------------------------------------------------------------------------
 * exec
 * ---------------------------------------------------------------------------------------- */

static ab_status encode_exec(const struct sbx_exec_req *req, size_t cap, struct buf *pl,
                             struct ab_err *err)
{
    ab_status rc;
    if (!req->argv && !req->shell)
        return ab_err_set(err, AB_INVAL, "exec: give argv or a shell command");
    if (req->argv && !req->argv[0])
        return ab_err_set(err, AB_INVAL, "exec: argv is empty");
    rc = lcl__wr_u32(pl, req->argv ? 0 : LCL_EXEC_SHELL);
    if (req->argv) {
        uint32_t argc = 0;
        while (req->argv[argc])
            argc++;
        if (argc > LCL_MAX_ARGS)
            return ab_err_set(err, AB_LIMIT, "exec: more than %u arguments", LCL_MAX_ARGS);
        rc = rc ? rc : lcl__wr_u32(pl, argc);
        for (uint32_t i = 0; i < argc && !rc; i++) {
            if (strlen(req->argv[i]) > LCL_ARG_MAX)
                return ab_err_set(err, AB_LIMIT,
                                  "exec: argument %u is longer than 128 KiB (the kernel's "
                                  "limit for one argument)",
                                  i);
            rc = lcl__wr_str(pl, req->argv[i]);
        }
    } else {
        if (strlen(req->shell) > LCL_ARG_MAX)
            return ab_err_set(err, AB_LIMIT,
                              "exec: the command is longer than 128 KiB (the kernel's limit for "
                              "one argument); write it to a file in the sandbox and run that");
        rc = rc ? rc : lcl__wr_str(pl, req->shell);
    }
    if (req->cwd && (req->cwd[0] != '/' || strlen(req->cwd) > LCL_STR_MAX))
        return ab_err_set(err, AB_INVAL, "exec: the working directory must be an absolute path");
    rc = rc ? rc : lcl__wr_str(pl, req->cwd ? req->cwd : "");
    uint32_t envc = 0;
    while (req->env && req->env[envc]) {
        const char *e = req->env[envc];
        if (!strchr(e, '=') || e[0] == '=' || strlen(e) > LCL_ARG_MAX)
            return ab_err_set(err, AB_INVAL, "exec: environment entries look like KEY=VALUE");
        envc++;
    }
    if (envc > LCL_MAX_ARGS)
        return ab_err_set(err, AB_LIMIT, "exec: more than %u environment entries", LCL_MAX_ARGS);
    rc = rc ? rc : lcl__wr_u32(pl, envc);
    for (uint32_t i = 0; i < envc && !rc; i++)
        rc = lcl__wr_str(pl, req->env[i]);
    if (req->stdin_len > LCL_STDIN_MAX)
        return ab_err_set(err, AB_LIMIT, "exec: stdin is larger than 64 MiB");
    rc = rc ? rc : lcl__wr_u64(pl, req->stdin_data ? req->stdin_len : 0);
    rc = rc ? rc : lcl__wr_i64(pl, req->timeout_ms > 0 ? req->timeout_ms : 0);
    rc = rc ? rc : lcl__wr_u64(pl, cap);
    if (rc)
        return ab_err_set(err, AB_LIMIT, "exec: the request is larger than 4 MiB");
    return AB_OK;
}

static ab_status local_exec(struct sbx_provider *p, struct sbx_handle *h,
                            const struct sbx_exec_req *req, struct sbx_exec_result *res,
                            struct ab_err *err)
{
    struct local_provider *lp = LP(p);
    size_t cap = req->output_cap ? req->output_cap : lp->default_output_cap;
    buf_cleanup(&res->output);
    buf_init(&res->output, cap);
    res->exit_code = -1;
    struct buf pl;
    buf_init(&pl, LCL_REQ_MAX);
    ab_status rc = encode_exec(req, cap, &pl, err);
    if (rc) {
        buf_cleanup(&pl);
        return rc;
    }
    struct helper *hp;
    int fd;
    rc = chan_get(h, &hp, &fd, err);
    if (rc) {
        buf_cleanup(&pl);
        return rc;
    }
    unsigned char *rx = malloc(LCL_HDR + LCL_FRAME_MAX + 1);
    int64_t start = ab_mono_ms();
    bool clean = false, broken = false;
    if (!rx) {
        rc = AB_NOMEM;
        goto out;
    }
    rc = send_request(fd, LCL_REQ_EXEC, &pl, start + OP_TIMEOUT_MS, err);
    if (!rc && req->stdin_data && req->stdin_len)
        rc = send_data(fd, req->stdin_data, req->stdin_len, ab_mono_ms() + OP_TIMEOUT_MS, err);
    if (rc) {
        broken = is_transport_failure(rc);
        goto out;
    }
    int cancel_fd = req->cancel ? ab_cancel_fd(req->cancel) : -1;
    int64_t deadline = req->timeout_ms > 0 ? start + req->timeout_ms + EXEC_GRACE_MS : 0;
    for (;;) {
        struct lcl_frame f;
        rc = lcl__recv_wait(fd, rx, &f, deadline, cancel_fd, err);
        if (rc == AB_CANCELLED) {
            unsigned char hdr[LCL_HDR] = {0};
            uint32_t type = LCL_REQ_CANCEL;
            memcpy(hdr, &type, 4);
            rc = lcl__send_wait(fd, hdr, sizeof(hdr), NULL, 0, ab_mono_ms() + CANCEL_GRACE_MS, err);
            if (rc) {
                broken = true;
                break;
            }
            res->cancelled = true;
            cancel_fd = -1;
            deadline = ab_mono_ms() + CANCEL_GRACE_MS;
            continue;
        }
        if (rc) {
            broken = true;
            if (rc == AB_TIMEOUT)
                ab_err_set(err, AB_SANDBOX,
                           "the sandbox helper did not report the end of the command in time; "
                           "the sandbox was restarted");
            break;
        }
        struct lcl_rd r;
        lcl__rd_init(&r, f.payload, f.len);
        if (f.nfds) {
            lcl__frame_close_fds(&f);
            rc = ab_err_set(err, AB_PROTO, "unexpected descriptors from the sandbox helper");
            broken = true;
            break;
        }
        if (f.type == LCL_RSP_OUTPUT) {
            size_t n;
            const void *data = lcl__rd_bytes(&r, &n);
            if (!lcl__rd_done(&r)) {
                rc = ab_err_set(err, AB_PROTO, "malformed output from the sandbox helper");
                broken = true;
                break;
            }
            if (req->on_output && n)
                req->on_output(req->on_output_arg, data, n);
            if (buf_append_upto(&res->output, data, n) < n)
                res->truncated = true;
        } else if (f.type == LCL_RSP_EXIT) {
            int32_t code = lcl__rd_i32(&r);
            int32_t sig = lcl__rd_i32(&r);
            uint8_t flags = lcl__rd_u8(&r);
            uint64_t total = lcl__rd_u64(&r);
            int64_t dur = lcl__rd_i64(&r);
            (void)sig;
            (void)dur;
            if (!lcl__rd_done(&r) || code < 0 || code > 255 + 128) {
                rc = ab_err_set(err, AB_PROTO, "malformed exit status from the sandbox helper");
                broken = true;
                break;
            }
            res->exit_code = code;
            res->timed_out = flags & LCL_EXIT_TIMED_OUT;
            res->cancelled = res->cancelled || (flags & LCL_EXIT_CANCELLED);
            res->truncated =
                res->truncated || (flags & LCL_EXIT_TRUNCATED) || total > res->output.len;
            clean = true;
            break;
        } else if (f.type == LCL_RSP_ERROR) {
            rc = parse_error(&f, err);
            clean = rc != AB_PROTO;
            broken = !clean;
            break;
        } else {
            rc = ab_err_set(err, AB_PROTO, "unexpected message from the sandbox helper");
            broken = true;
            break;
        }
    }
out:
    res->duration_ms = ab_mono_ms() - start;
    free(rx);
    buf_cleanup(&pl);
    chan_put(h, hp, fd, clean, broken);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * files
 * ---------------------------------------------------------------------------------------- */

/* One simple request: encode into pl, send, and hand each response frame to cb until it
 * returns 1 (done) or an error. */
typedef ab_status (*resp_cb)(void *arg, const struct lcl_frame *f, bool *done, struct ab_err *err);

static ab_status roundtrip(struct sbx_handle *h, uint32_t type, const struct buf *pl,
                           const void *data, size_t data_len, resp_cb cb, void *arg,
                           struct ab_err *err)
{
    struct helper *hp;
    int fd;
    ab_status rc = chan_get(h, &hp, &fd, err);
    if (rc)
        return rc;
    bool clean = false, broken = false;
    unsigned char *rx = malloc(LCL_HDR + LCL_FRAME_MAX + 1);
    if (!rx) {
        rc = AB_NOMEM;
        goto out;
    }
    rc = send_request(fd, type, pl, ab_mono_ms() + OP_TIMEOUT_MS, err);
    if (!rc && data_len)
        rc = send_data(fd, data, data_len, ab_mono_ms() + OP_TIMEOUT_MS, err);
    if (rc) {
        broken = is_transport_failure(rc);
        goto out;
    }
    for (bool done = false; !done;) {
        struct lcl_frame f;
        rc = lcl__recv_wait(fd, rx, &f, ab_mono_ms() + OP_TIMEOUT_MS, -1, err);
        if (rc) {
            broken = true;
            break;
        }
        if (f.nfds) {
            lcl__frame_close_fds(&f);
            rc = ab_err_set(err, AB_PROTO, "unexpected descriptors from the sandbox helper");
            broken = true;
            break;
        }
        if (f.type == LCL_RSP_ERROR) {
            rc = parse_error(&f, err);
            clean = rc != AB_PROTO;
            broken = !clean;
            break;
        }
        rc = cb(arg, &f, &done, err);
        if (rc) {
            /* The callback rejected what the helper sent (or ran out of memory). */
            broken = rc == AB_PROTO;
            break;
        }
        clean = done;
    }
out:
    free(rx);
    chan_put(h, hp, fd, clean && !rc, broken);
    return rc;
}

struct read_ctx {
    struct buf data;
};

static ab_status read_cb(void *arg, const struct lcl_frame *f, bool *done, struct ab_err *err)
{
    struct read_ctx *c = arg;
    struct lcl_rd r;
    lcl__rd_init(&r, f->payload, f->len);
    if (f->type == LCL_RSP_DATA) {
        size_t n;
        const void *p = lcl__rd_bytes(&r, &n);
        if (!lcl__rd_done(&r))
            return ab_err_set(err, AB_PROTO, "malformed data from the sandbox helper");
        ab_status rc = buf_append(&c->data, p, n);
        if (rc == AB_LIMIT)
            return ab_err_set(err, AB_PROTO, "the sandbox helper sent more than was asked for");
        return rc;
    }
    if (f->type == LCL_RSP_END) {
        uint64_t total = lcl__rd_u64(&r);
        (void)lcl__rd_u8(&r);
        if (!lcl__rd_done(&r) || total != c->data.len)
            return ab_err_set(err, AB_PROTO, "malformed end of data from the sandbox helper");
        *done = true;
        return AB_OK;
    }
    return ab_err_set(err, AB_PROTO, "unexpected message from the sandbox helper");
}

static ab_status check_path(const char *path, struct ab_err *err)
{
    if (!path || path[0] != '/' || strlen(path) > LCL_STR_MAX)
        return ab_err_set(err, AB_INVAL, "paths must be absolute and at most %u bytes",
                          LCL_STR_MAX);
    return AB_OK;
}

static ab_status local_read_file(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                                 size_t max_bytes, struct buf *out, struct ab_err *err)
{
    (void)p;
    ab_status rc = check_path(path, err);
    if (rc)
        return rc;
    struct buf pl;
    buf_init(&pl, LCL_FRAME_MAX);
    rc = lcl__wr_str(&pl, path);
    rc = rc ? rc : lcl__wr_u64(&pl, max_bytes);
    struct read_ctx c;
    buf_init(&c.data, max_bytes);
    if (!rc)
        rc = roundtrip(h, LCL_REQ_READ, &pl, NULL, 0, read_cb, &c, err);
    if (!rc && buf_append(out, c.data.data ? c.data.data : "", c.data.len))
        rc = ab_err_set(err, AB_LIMIT, "%s does not fit in the buffer", path);
    buf_cleanup(&c.data);
    buf_cleanup(&pl);
    return rc;
}

static ab_status ok_cb(void *arg, const struct lcl_frame *f, bool *done, struct ab_err *err)
{
    (void)arg;
    if (f->type != LCL_RSP_OK || f->len != 0)
        return ab_err_set(err, AB_PROTO, "unexpected message from the sandbox helper");
    *done = true;
    return AB_OK;
}

static ab_status local_write_file(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                                  const void *data, size_t len, struct ab_err *err)
{
    (void)p;
    ab_status rc = check_path(path, err);
    if (rc)
        return rc;
    struct buf pl;
    buf_init(&pl, LCL_FRAME_MAX);
    rc = lcl__wr_str(&pl, path);
    rc = rc ? rc : lcl__wr_u64(&pl, len);
    if (!rc)
        rc = roundtrip(h, LCL_REQ_WRITE, &pl, data, len, ok_cb, NULL, err);
    buf_cleanup(&pl);
    return rc;
}

static ab_status stat_cb(void *arg, const struct lcl_frame *f, bool *done, struct ab_err *err)
{
    struct lcl_rd r;
    lcl__rd_init(&r, f->payload, f->len);
    if (f->type != LCL_RSP_STAT || !parse_stat(&r, arg) || !lcl__rd_done(&r))
        return ab_err_set(err, AB_PROTO, "malformed stat from the sandbox helper");
    *done = true;
    return AB_OK;
}

static ab_status local_stat(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                            struct sbx_stat *st, struct ab_err *err)
{
    (void)p;
    ab_status rc = check_path(path, err);
    if (rc)
        return rc;
    struct buf pl;
    buf_init(&pl, LCL_FRAME_MAX);
    rc = lcl__wr_str(&pl, path);
    if (!rc)
        rc = roundtrip(h, LCL_REQ_STAT, &pl, NULL, 0, stat_cb, st, err);
    buf_cleanup(&pl);
    return rc;
}

/* Entries of list_dir and walk. */
struct entries_ctx {
    char **names;
    struct sbx_stat *st;
    size_t n, cap, max;
    bool truncated;
};

static void entries_cleanup(struct entries_ctx *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->names[i]);
    free(c->names);
    free(c->st);
}

static ab_status entries_cb(void *arg, const struct lcl_frame *f, bool *done, struct ab_err *err)
{
    struct entries_ctx *c = arg;
    struct lcl_rd r;
    lcl__rd_init(&r, f->payload, f->len);
    if (f->type == LCL_RSP_END) {
        uint64_t count = lcl__rd_u64(&r);
        c->truncated = lcl__rd_u8(&r) != 0;
        if (!lcl__rd_done(&r) || count != c->n)
            return ab_err_set(err, AB_PROTO, "malformed end of listing from the sandbox helper");
        *done = true;
        return AB_OK;
    }
    if (f->type != LCL_RSP_ENTRIES)
        return ab_err_set(err, AB_PROTO, "unexpected message from the sandbox helper");
    uint32_t n = lcl__rd_u32(&r);
    if (n > LCL_FRAME_MAX / 8 || c->n + n > c->max)
        return ab_err_set(err, AB_PROTO, "the sandbox helper sent more entries than asked for");
    if (c->n + n > c->cap) {
        size_t cap = AB_MAX(c->cap * 2, c->n + n + 64);
        char **nn = realloc(c->names, cap * sizeof(char *));
        if (!nn)
            return AB_NOMEM;
        c->names = nn;
        struct sbx_stat *ns = realloc(c->st, cap * sizeof(struct sbx_stat));
        if (!ns)
            return AB_NOMEM;
        c->st = ns;
        c->cap = cap;
    }
    for (uint32_t i = 0; i < n; i++) {
        char *name = lcl__rd_str(&r, LCL_STR_MAX);
        struct sbx_stat st;
        if (!name || !*name || !parse_stat(&r, &st)) {
            free(name);
            return ab_err_set(err, AB_PROTO, "malformed entry from the sandbox helper");
        }
        c->names[c->n] = name;
        c->st[c->n] = st;
        c->n++;
    }
    if (!lcl__rd_done(&r))
        return ab_err_set(err, AB_PROTO, "malformed entries from the sandbox helper");
    return AB_OK;
}

static ab_status local_list_dir(struct sbx_provider *p, struct sbx_handle *h, const char *path,
                                struct sbx_dirent **ents, size_t *n, struct ab_err *err)
{
    (void)p;
    ab_status rc = check_path(path, err);
    if (rc)
        return rc;
    struct buf pl;
    buf_init(&pl, LCL_FRAME_MAX);
    rc = lcl__wr_str(&pl, path);
    rc = rc ? rc : lcl__wr_u32(&pl, LISTDIR_MAX + 1);
    struct entries_ctx c = {.max = LISTDIR_MAX + 1};
    if (!rc)
        rc = roundtrip(h, LCL_REQ_LISTDIR, &pl, NULL, 0, entries_cb, &c, err);
    buf_cleanup(&pl);
    if (!rc && c.n > LISTDIR_MAX)
        rc = ab_err_set(err, AB_LIMIT, "%s has more than %u entries", path, LISTDIR_MAX);
    struct sbx_dirent *v = NULL;
    if (!rc && !(v = calloc(c.n ? c.n : 1, sizeof(*v))))
        rc = AB_NOMEM;
    if (rc) {
        entries_cleanup(&c);
        return rc;
    }
    for (size_t i = 0; i < c.n; i++) {
        v[i].name = c.names[i];
        v[i].st = c.st[i];
    }
    free(c.names);
    free(c.st);
    *ents = v;
    *n = c.n;
    return AB_OK;
}

static ab_status local_walk(struct sbx_provider *p, struct sbx_handle *h,
                            const struct sbx_walk_req *req, struct sbx_walk_entry **ents, size_t *n,
                            bool *truncated, struct ab_err *err)
{
    (void)p;
    ab_status rc = check_path(req->root, err);
    if (rc)
        return rc;
    uint32_t max =
        req->max_entries && req->max_entries < WALK_MAX ? (uint32_t)req->max_entries : WALK_MAX;
    int64_t budget = 0;
    if (req->deadline_ms) {
        budget = req->deadline_ms - ab_mono_ms();
        if (budget <= 0)
            budget = 1;
    }
    struct buf pl;
    buf_init(&pl, LCL_FRAME_MAX);
    rc = lcl__wr_str(&pl, req->root);
    rc = rc ? rc : lcl__wr_u32(&pl, max);
    rc = rc ? rc : lcl__wr_i64(&pl, budget);
    rc = rc ? rc : lcl__wr_u8(&pl, req->skip_dot_dirs);
    struct entries_ctx c = {.max = max};
    if (!rc)
        rc = roundtrip(h, LCL_REQ_WALK, &pl, NULL, 0, entries_cb, &c, err);
    buf_cleanup(&pl);
    struct sbx_walk_entry *v = NULL;
    if (!rc && !(v = calloc(c.n ? c.n : 1, sizeof(*v))))
        rc = AB_NOMEM;
    if (rc) {
        entries_cleanup(&c);
        return rc;
    }
    for (size_t i = 0; i < c.n; i++) {
        v[i].relpath = c.names[i];
        v[i].st = c.st[i];
    }
    free(c.names);
    free(c.st);
    *ents = v;
    *n = c.n;
    *truncated = c.truncated || (ab_cancel_fired(req->cancel));
    return AB_OK;
}

struct search_ctx {
    const struct sbx_search_req *req;
    size_t first, count; /* the batch of paths this request covers */
    struct sbx_match *m;
    size_t n, cap, max;
    bool truncated;
};

static ab_status search_cb(void *arg, const struct lcl_frame *f, bool *done, struct ab_err *err)
{
    struct search_ctx *c = arg;
    struct lcl_rd r;
    lcl__rd_init(&r, f->payload, f->len);
    if (f->type == LCL_RSP_END) {
        (void)lcl__rd_u64(&r);
        c->truncated = c->truncated || lcl__rd_u8(&r) != 0;
        if (!lcl__rd_done(&r))
            return ab_err_set(err, AB_PROTO, "malformed end of search from the sandbox helper");
        *done = true;
        return AB_OK;
    }
    if (f->type != LCL_RSP_MATCHES)
        return ab_err_set(err, AB_PROTO, "unexpected message from the sandbox helper");
    uint32_t n = lcl__rd_u32(&r);
    if (n > LCL_FRAME_MAX / 16 || (c->max && c->n + n > c->max))
        return ab_err_set(err, AB_PROTO, "the sandbox helper sent more matches than asked for");
    for (uint32_t i = 0; i < n; i++) {
        uint32_t file = lcl__rd_u32(&r);
        int64_t line = lcl__rd_i64(&r);
        size_t tl;
        const char *text = lcl__rd_bytes(&r, &tl);
        if (r.bad || file >= c->count || line < 1 || tl > LCL_MATCH_TEXT_MAX)
            return ab_err_set(err, AB_PROTO, "malformed match from the sandbox helper");
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            struct sbx_match *nm = realloc(c->m, cap * sizeof(*nm));
            if (!nm)
                return AB_NOMEM;
            c->m = nm;
            c->cap = cap;
        }
        struct sbx_match *m = &c->m[c->n];
        m->path = ab_strdup(c->req->paths[c->first + file]);
        m->line = line;
        m->text = ab_strndup(text, tl);
        if (!m->path || !m->text) {
            free(m->path);
            free(m->text);
            return AB_NOMEM;
        }
        c->n++;
    }
    if (!lcl__rd_done(&r))
        return ab_err_set(err, AB_PROTO, "malformed matches from the sandbox helper");
    return AB_OK;
}

static ab_status local_search(struct sbx_provider *p, struct sbx_handle *h,
                              const struct sbx_search_req *req, struct sbx_match **matches,
                              size_t *n, bool *truncated, struct ab_err *err)
{
    (void)p;
    if (!req->literal_len || req->literal_len > LCL_ARG_MAX)
        return ab_err_set(err, AB_INVAL, "search: the pattern must be 1 byte to 128 KiB");
    struct search_ctx c = {.req = req, .max = req->max_matches};
    ab_status rc = AB_OK;
    struct buf pl;
    buf_init(&pl, LCL_REQ_MAX);
    /* Paths go in batches that fit one request; matches accumulate across batches. */
    size_t next = 0;
    while (!rc && next < req->npaths && !c.truncated) {
        if ((req->deadline_ms && ab_mono_ms() > req->deadline_ms) || ab_cancel_fired(req->cancel)) {
            c.truncated = true;
            break;
        }
        size_t count = 0, bytes = 4 + req->literal_len + 4 + 8 + 4;
        while (next + count < req->npaths && count < LCL_MAX_PATHS) {
            const char *path = req->paths[next + count];
            size_t need = 4 + strlen(path);
            if (path[0] != '/' || strlen(path) > LCL_STR_MAX) {
                rc = ab_err_set(err, AB_INVAL, "search: paths must be absolute");
                break;
            }
            if (bytes + need > LCL_REQ_MAX)
                break;
            bytes += need;
            count++;
        }
        if (rc)
            break;
        int64_t budget = 0;
        if (req->deadline_ms) {
            budget = req->deadline_ms - ab_mono_ms();
            if (budget <= 0)
                budget = 1;
        }
        buf_reset(&pl);
        uint32_t left =
            req->max_matches ? (uint32_t)AB_MIN(req->max_matches - c.n, (size_t)UINT32_MAX) : 0;
        rc = lcl__wr_bytes(&pl, req->literal, req->literal_len);
        rc = rc ? rc : lcl__wr_u32(&pl, left);
        rc = rc ? rc : lcl__wr_i64(&pl, budget);
        rc = rc ? rc : lcl__wr_u32(&pl, (uint32_t)count);
        for (size_t i = 0; i < count && !rc; i++)
            rc = lcl__wr_str(&pl, req->paths[next + i]);
        c.first = next;
        c.count = count;
        if (!rc)
            rc = roundtrip(h, LCL_REQ_SEARCH, &pl, NULL, 0, search_cb, &c, err);
        next += count;
    }
    buf_cleanup(&pl);
    if (rc) {
        sbx_matches_free(c.m, c.n);
        return rc;
    }
    *matches = c.m;
    *n = c.n;
    *truncated = c.truncated;
    return AB_OK;
}

/* ------------------------------------------------------------------------------------------
 * provider lifecycle
 * ---------------------------------------------------------------------------------------- */

static void lp_free(struct local_provider *lp)
{
    if (!lp)
        return;
    lcl__spawner_free(lp->spawner);
    lcl__flusher_free(lp->flusher);
    lcl__cg_env_cleanup(&lp->cg, true);
    pthread_mutex_lock(&lp->lock);
    for (size_t i = 0; i < lp->nidx; i++) {
        free(lp->idx[i].name);
        sbx_info_cleanup(&lp->idx[i].info);
    }
    free(lp->idx);
    pthread_mutex_unlock(&lp->lock);
    pthread_mutex_destroy(&lp->lock);
    /* the template's strings are owned by lp */
    lcl__setup_cleanup(&lp->tmpl);
    if (lp->inst_dir && lp->lock_fd >= 0)
        lcl__rm_tree(lp->inst_dir, NULL); /* our scratch: pool, staging, trash */
    if (lp->lock_fd >= 0)
        close(lp->lock_fd); /* releases the flock */
    free(lp->state_dir);
    free(lp->sbx_dir);
    free(lp->servers_dir);
    free(lp->inst_dir);
    free(lp->pool_dir);
    free(lp->staging_dir);
    free(lp->trash_dir);
    free(lp->workspace);
    free(lp);
}

static void local_free(struct sbx_provider *p)
{
    lp_free(LP(p));
}

/* A throwaway sandbox: proves that namespaces, mounts, privilege drop and seccomp all work
 * here, and diagnoses the cause when they do not. */
static ab_status preflight(struct local_provider *lp, struct ab_err *err)
{
    char rnd[13];
    if (ab_random_hex(rnd, 6))
        return ab_err_set(err, AB_IO, "no randomness");
    char *dir = ab_asprintf("%s/probe-%s", lp->pool_dir, rnd);
    if (!dir)
        return AB_NOMEM;
    int dir_lock;
    ab_status rc = make_sandbox_dir(lp, NULL, dir, &dir_lock, err);
    if (rc) {
        free(dir);
        return rc;
    }
    close(dir_lock);
    struct helper *hp = NULL;
    struct start_fail sf;
    struct ab_err sub;
    ab_err_clear(&sub);
    rc = helper_start(lp, dir, &hp, &sf, &sub);
    if (hp)
        helper_destroy(lp, hp);
    lcl__rm_tree(dir, NULL);
    free(dir);
    if (!rc)
        return AB_OK;
    if (sf.ns) {
        uint32_t flags[8];
        int errnos[8];
        size_t np = 0;
        if (lcl__spawner_probe(lp->spawner, lp->tmpl.clone_flags | CLONE_NEWCGROUP, flags, errnos,
                               8, &np, NULL) != AB_OK)
            np = 0;
        return lcl__diagnose(err, "clone", sf.errnum ? sf.errnum : EPERM, lp->userns, flags, errnos,
                             np);
    }
    if (ab_starts_with(sf.step, "bind the workspace") && sf.errnum == EACCES && lp->userns &&
        geteuid() == 0)
        return ab_err_set(err, AB_UNSUPPORTED,
                          "local sandboxes are unavailable: binding the workspace failed: %s. "
                          "Cause: with local.user_namespace: always, a sandbox's root is uid %u "
                          "on the host, and a directory above the state directory %s is not "
                          "searchable by it. Remedy: `chmod o+x` the directories above it, or "
                          "use a state_dir below a searchable path (the default "
                          "/var/lib/agentbox is), or set local.user_namespace: auto",
                          strerror(sf.errnum), lp->uid, lp->state_dir);
    if (sf.step[0])
        return lcl__diagnose(err, sf.step, sf.errnum, lp->userns, NULL, NULL, 0);
    return ab_err_set(err, AB_UNSUPPORTED, "local sandboxes are unavailable: %s", sub.msg);
}

static ab_status local_check(struct sbx_provider *p, struct ab_err *err)
{
    return preflight(LP(p), err);
}

static bool path_is_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static ab_status check_workspace_path(const char *ws, struct ab_err *err)
{
    static const char *const reserved[] = {"/usr",    "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                           "/libx32", "/etc", "/proc", "/dev", "/tmp"};
    if (!ws || ws[0] != '/' || strlen(ws) > 255 || strstr(ws, "//") || strstr(ws, "/./") ||
        strstr(ws, "/../") || ab_ends_with(ws, "/") || ab_ends_with(ws, "/.") ||
        ab_ends_with(ws, "/.."))
        return ab_err_set(err, AB_INVAL,
                          "local.workspace must be a normalised absolute path below / "
                          "such as /workspace");
    for (size_t i = 0; i < AB_ARRAY_LEN(reserved); i++)
        if (path_is_under(ws, reserved[i]))
            return ab_err_set(err, AB_INVAL,
                              "local.workspace %s would hide the sandbox's %s; choose another "
                              "path such as /workspace",
                              ws, reserved[i]);
    return AB_OK;
}

/* Read sandboxes/<name>/meta.json for one directory entry, checking it belongs there. */
static bool load_one(struct local_provider *lp, const char *name, struct sbx_info *info)
{
    char *dir = ab_asprintf("%s/%s", lp->sbx_dir, name);
    if (!dir)
        return false;
    struct ab_err sub;
    ab_err_clear(&sub);
    bool ok = read_meta(dir, info, &sub) == AB_OK;
    if (!ok) {
        if (sub.code != AB_NOTFOUND) /* NOTFOUND: deleted meanwhile */
            AB_LOG_WARN("local.state.skip", "dir=%s reason=\"%s\"", dir, sub.msg);
    } else if (!info->name || strcmp(info->name, name) != 0) {
        AB_LOG_WARN("local.state.skip", "dir=%s reason=\"name mismatch\"", dir);
        sbx_info_cleanup(info);
        ok = false;
    } else {
        chmod(dir, lp->dir_mode); /* the mode may differ from the last run's */
        char *ws = ab_asprintf("%s/workspace", dir);
        struct stat st;
        if (ws && lstat(ws, &st) < 0 && errno == ENOENT) {
            AB_LOG_WARN("local.state.workspace_missing", "dir=%s", dir);
            if (mkdir(ws, 0700) == 0 && lp->chown_workspace &&
                chown(ws, lp->owner_uid, lp->owner_gid) < 0)
                AB_LOG_WARN("local.state.chown_failed", "dir=%s", ws);
        }
        free(ws);
    }
    free(dir);
    return ok;
}

/* Bring the index in line with sandboxes/, which other servers sharing the state directory
 * may change: add what appeared (only `only` when given), drop what vanished (unless we
 * have it attached). Takes lp->lock itself; metadata is read outside it. */
static void idx_refresh(struct local_provider *lp, const char *only)
{
    if (only) {
        struct sbx_info info;
        if (!load_one(lp, only, &info))
            return;
        pthread_mutex_lock(&lp->lock);
        if (idx_insert(lp, &info, NULL) != AB_OK)
            sbx_info_cleanup(&info);
        pthread_mutex_unlock(&lp->lock);
        return;
    }
    DIR *d = opendir(lp->sbx_dir);
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!name_ok(de->d_name))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nn = realloc(names, nc * sizeof(char *));
            if (!nn)
                break;
            names = nn;
            cap = nc;
        }
        if (!(names[n] = ab_strdup(de->d_name)))
            break;
        n++;
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&lp->lock);
        bool known = idx_find(lp, names[i]) != NULL;
        pthread_mutex_unlock(&lp->lock);
        struct sbx_info info;
        if (!known && load_one(lp, names[i], &info)) {
            pthread_mutex_lock(&lp->lock);
            if (idx_insert(lp, &info, NULL) != AB_OK)
                sbx_info_cleanup(&info);
            pthread_mutex_unlock(&lp->lock);
        }
    }
    /* drop entries whose directory is gone */
    pthread_mutex_lock(&lp->lock);
    for (size_t i = 0; i < lp->nidx;) {
        bool present = false;
        for (size_t j = 0; j < n && !present; j++)
            present = strcmp(names[j], lp->idx[i].name) == 0;
        if (present || lp->idx[i].live) {
            i++;
            continue;
        }
        free(lp->idx[i].name);
        sbx_info_cleanup(&lp->idx[i].info);
        memmove(&lp->idx[i], &lp->idx[i + 1], (lp->nidx - i - 1) * sizeof(lp->idx[0]));
        lp->nidx--;
    }
    pthread_mutex_unlock(&lp->lock);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Remove the directories (and cgroups) of servers that are gone: a server's lock can be
 * taken only once its process is dead (flock(2) locks die with their holder). */
static void sweep_dead_servers(struct local_provider *lp)
{
    DIR *d = opendir(lp->servers_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *id = de->d_name;
        if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0 || strcmp(id, lp->instance) == 0)
            continue;
        char *dir = ab_asprintf("%s/%s", lp->servers_dir, id);
        char *lock = dir ? ab_asprintf("%s/lock", dir) : NULL;
        int fd = lock ? open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW) : -1;
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
            AB_LOG_INFO("local.state.sweep", "server=%s", id);
            lcl__rm_tree(dir, NULL);
            lcl__cg_sweep_tag(&lp->cg, ab_starts_with(id, ".new-") ? id + 5 : id);
        }
        if (fd >= 0)
            close(fd);
        free(lock);
        free(dir);
    }
    closedir(d);
}

/* Our own directory under servers/, created under a temporary name and renamed into place
 * only once its lock is held, so a sweeping server never mistakes it for a dead one. */
static ab_status make_instance(struct local_provider *lp, struct ab_err *err)
{
    if (ab_random_hex(lp->instance, 6))
        return ab_err_set(err, AB_IO, "no randomness");
    char *tmp = ab_asprintf("%s/.new-%s", lp->servers_dir, lp->instance);
    char *lock = tmp ? ab_asprintf("%s/lock", tmp) : NULL;
    lp->inst_dir = ab_asprintf("%s/%s", lp->servers_dir, lp->instance);
    ab_status rc = AB_OK;
    if (!lock || !lp->inst_dir) {
        rc = AB_NOMEM;
        goto out;
    }
    if (mkdir(tmp, lp->dir_mode) < 0 || chmod(tmp, lp->dir_mode) < 0) {
        rc = ab_err_sys(err, AB_IO, errno, "cannot create %s", tmp);
        goto out;
    }
    lp->lock_fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lp->lock_fd < 0 || flock(lp->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        rc = ab_err_sys(err, AB_IO, errno, "cannot lock %s", lock);
        goto out;
    }
    const char *subs[] = {"pool", "staging", "trash"};
    for (size_t i = 0; i < AB_ARRAY_LEN(subs); i++) {
        char *sub = ab_asprintf("%s/%s", tmp, subs[i]);
        int r = sub ? mkdir(sub, i == 2 ? 0700 : lp->dir_mode) : -1;
        if (r == 0 && i != 2)
            r = chmod(sub, lp->dir_mode);
        int e = errno;
        free(sub);
        if (r < 0) {
            rc = ab_err_sys(err, AB_IO, e, "cannot create %s/%s", tmp, subs[i]);
            goto out;
        }
    }
    if (rename(tmp, lp->inst_dir) < 0)
        rc = ab_err_sys(err, AB_IO, errno, "cannot create %s", lp->inst_dir);
    lp->pool_dir = ab_asprintf("%s/pool", lp->inst_dir);
    lp->staging_dir = ab_asprintf("%s/staging", lp->inst_dir);
    lp->trash_dir = ab_asprintf("%s/trash", lp->inst_dir);
    if (!rc && (!lp->pool_dir || !lp->staging_dir || !lp->trash_dir))
        rc = AB_NOMEM;
out:
    if (rc && tmp)
        lcl__rm_tree(tmp, NULL);
    free(lock);
    free(tmp);
    return rc;
}

static const struct sbx_provider_ops local_ops = {
    .kind = "local",
    .create = local_create,
    .attach = local_attach,
    .destroy = local_destroy,
    .release = local_release,
    .list = local_list,
    .status = local_status,
    .update_info = local_update_info,
    .exec = local_exec,
    .read_file = local_read_file,
    .write_file = local_write_file,
    .list_dir = local_list_dir,
    .stat = local_stat,
    .walk = local_walk,
    .search = local_search,
    .bind = local_bind,
    .pool_status = NULL,
    .check = local_check,
    .free = local_free,
};

ab_status sbx_local_new(const struct config *cfg, struct sbx_provider **out, struct ab_err *err)
{
    ab_status rc = AB_OK;
    char *binary = NULL;
    struct local_provider *lp = calloc(1, sizeof(*lp));
    if (!lp)
        return AB_NOMEM;
    lp->base.ops = &local_ops;
    lp->lock_fd = -1;
    pthread_mutex_init(&lp->lock, NULL);

    /* ---- configuration ---- */
    const struct cfg_local *lc = &cfg->local;
    if (lc->uid <= 0 || lc->uid >= 65534) {
        rc = ab_err_set(err, AB_INVAL,
                        "local.uid must be an unprivileged uid between 1 and 65533, not %lld",
                        (long long)lc->uid);
        goto fail;
    }
    if ((rc = check_workspace_path(lc->workspace, err)))
        goto fail;
    lp->uid = lp->gid = (uint32_t)lc->uid;
    lp->workspace = ab_strdup(lc->workspace);
    lp->base.workspace = lp->workspace;
    lp->net_host = lc->network && strcmp(lc->network, "host") == 0;
    lp->seccomp = !(lc->seccomp && strcmp(lc->seccomp, "off") == 0);
    lp->recreate = lc->recreate_on_death;
    lp->limits = lc->limits;
    lp->shm_bytes = lp->limits.tmp_bytes ? AB_MIN(lp->limits.tmp_bytes, (uint64_t)64 << 20)
                                         : (uint64_t)64 << 20;
    lp->default_output_cap =
        cfg->tools.execute_max_output_bytes ? cfg->tools.execute_max_output_bytes : (1u << 20);
    lp->create_timeout_ms =
        cfg->sandbox.create_timeout_s > 0 ? cfg->sandbox.create_timeout_s * 1000 : 120000;
    const char *uns = lc->user_namespace ? lc->user_namespace : "auto";
    bool root = geteuid() == 0;
    lp->userns = strcmp(uns, "always") == 0 || (strcmp(uns, "auto") == 0 && !root);
    if (!lp->seccomp)
        AB_LOG_WARN("local.seccomp.off", "msg=\"local.seccomp is off: sandboxes run without a "
                                         "syscall filter (debugging only)\"");

    /* ---- state directory ---- */
    lp->state_dir = cfg_state_dir(cfg);
    if (!lp->state_dir) {
        rc = ab_err_set(err, AB_INVAL, "no state directory: set state_dir or HOME");
        goto fail;
    }
    if ((rc = lcl__mkdirs(lp->state_dir, 0700, err)))
        goto fail;
    char real[PATH_MAX];
    if (!realpath(lp->state_dir, real)) {
        rc = ab_err_sys(err, AB_IO, errno, "state_dir %s", lp->state_dir);
        goto fail;
    }
    free(lp->state_dir);
    lp->state_dir = ab_strdup(real);
    lp->sbx_dir = ab_asprintf("%s/sandboxes", real);
    lp->servers_dir = ab_asprintf("%s/servers", real);
    if (!lp->workspace || !lp->state_dir || !lp->sbx_dir || !lp->servers_dir) {
        rc = AB_NOMEM;
        goto fail;
    }
    /* A root server using user namespaces runs each helper as local.uid on the host, which
     * must be able to walk down to its workspace to bind it: directories above workspaces
     * are then 0711 (traversable, not listable); workspaces themselves are always 0700. */
    lp->dir_mode = root && lp->userns ? 0711 : 0700;
    const char *dirs[] = {lp->state_dir, lp->sbx_dir, lp->servers_dir};
    for (size_t i = 0; i < AB_ARRAY_LEN(dirs); i++)
        if ((mkdir(dirs[i], lp->dir_mode) < 0 && errno != EEXIST) ||
            chmod(dirs[i], lp->dir_mode) < 0) {
            rc = ab_err_sys(err, AB_IO, errno, "cannot create %s", dirs[i]);
            goto fail;
        }
    if ((rc = make_instance(lp, err)))
        goto fail;
    /* Workspaces belong to whoever the sandbox user is on the host: the server's own uid
     * in a user namespace of an unprivileged server, local.uid otherwise. */
    if (root) {
        lp->owner_uid = lp->uid;
        lp->owner_gid = lp->gid;
        lp->chown_workspace = true;
    } else {
        lp->owner_uid = geteuid();
        lp->owner_gid = getegid();
    }

    /* ---- ro_binds ---- */
    for (size_t i = 0; i < lc->ro_binds.n; i++) {
        const char *b = lc->ro_binds.v[i];
        struct stat st;
        if (!b || b[0] != '/' || strcmp(b, "/") == 0 || strlen(b) > 1024 ||
            path_is_under(b, "/proc") || path_is_under(b, "/dev") || path_is_under(b, "/tmp") ||
            path_is_under(b, "/etc") || path_is_under(real, b) || path_is_under(b, real) ||
            path_is_under(b, lp->workspace) || path_is_under(lp->workspace, b)) {
            rc = ab_err_set(err, AB_INVAL,
                            "local.ro_binds entry '%s' is not allowed: give an absolute host "
                            "directory outside /, /proc, /dev, /tmp, /etc, the state directory "
                            "and the workspace",
                            b ? b : "");
            goto fail;
        }
        if (stat(b, &st) < 0 || !S_ISDIR(st.st_mode)) {
            rc = ab_err_set(err, AB_INVAL, "local.ro_binds entry '%s' is not a directory", b);
            goto fail;
        }
    }

    /* ---- cgroups ---- */
    lcl__cg_detect(&lp->cg, lp->instance);
    if (lp->cg.mode == LCL_CG_NONE)
        AB_LOG_WARN("local.cgroup.unavailable",
                    "msg=\"sandboxes get rlimits and tmpfs sizes but no memory/pids/cpu cgroup "
                    "limits\" reason=\"%s\"",
                    lp->cg.note);

    /* ---- the spawn template ---- */
    struct lcl_setup *t = &lp->tmpl;
    t->clone_flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                     (lp->net_host ? 0 : CLONE_NEWNET) | (lp->userns ? CLONE_NEWUSER : 0);
    t->userns = lp->userns;
    if (lp->userns) {
        /* Root: the namespace's root is local.uid on the host (never host root). Not root:
         * only our own uid may be mapped, and setgroups must be denied first. */
        unsigned hu = root ? lp->uid : (unsigned)geteuid();
        unsigned hg = root ? lp->gid : (unsigned)getegid();
        t->uid_map = ab_asprintf("0 %u 1\n", hu);
        t->gid_map = ab_asprintf("0 %u 1\n", hg);
        t->deny_setgroups = !root;
    } else {
        t->uid_map = ab_strdup("");
        t->gid_map = ab_strdup("");
    }
    t->uid = lp->uid;
    t->gid = lp->gid;
    t->workspace = ab_strdup(lp->workspace);
    t->net_host = lp->net_host;
    t->seccomp = lp->seccomp;
    t->tmp_bytes = lp->limits.tmp_bytes;
    t->shm_bytes = lp->shm_bytes;
    t->nofile = lp->limits.nofile;
    t->fsize = lp->limits.file_size_bytes;
    t->cpu_seconds = lp->limits.cpu_seconds;
    bool pids_cgroup = lp->cg.mode == LCL_CG_V2 || lp->cg.base[LCL_CG_PIDS];
    if (lp->userns || !pids_cgroup) {
        t->nproc = lp->limits.pids;
    } else {
        /* Without a user namespace every sandbox runs as the same host uid, and
         * RLIMIT_NPROC counts that uid's processes host-wide (setrlimit(2)): it would limit
         * all sandboxes together. The pids cgroup is the per-sandbox limit here. */
        t->nproc = 0;
    }
    if (!lp->userns && !pids_cgroup && lp->limits.pids > 0)
        AB_LOG_WARN("local.nproc.shared",
                    "msg=\"no pids cgroup: RLIMIT_NPROC=%lld applies to all sandboxes together "
                    "(they share uid %u)\"",
                    (long long)lp->limits.pids, lp->uid);
    t->nbinds = lc->ro_binds.n;
    t->ro_binds = calloc(t->nbinds + 1, sizeof(char *));
    for (size_t i = 0; t->ro_binds && i < t->nbinds; i++)
        t->ro_binds[i] = ab_strdup(lc->ro_binds.v[i]);
    if (!t->uid_map || !t->gid_map || !t->workspace || !t->ro_binds) {
        rc = AB_NOMEM;
        goto fail;
    }

    /* ---- state, spawner, preflight ---- */
    sweep_dead_servers(lp);
    idx_refresh(lp, NULL);
    binary = helper_binary();
    if (!binary) {
        rc = AB_NOMEM;
        goto fail;
    }
    if ((rc = lcl__spawner_new(binary, &lp->spawner, err)))
        goto fail;
    if ((rc = lcl__flusher_new(&lp->flusher, err)))
        goto fail;
    if ((rc = preflight(lp, err)))
        goto fail;
    AB_LOG_INFO("local.ready",
                "state_dir=%s sandboxes=%zu user_namespace=%s network=%s cgroup=%s seccomp=%s",
                real, lp->nidx, lp->userns ? "yes" : "no", lp->net_host ? "host" : "none",
                lp->cg.mode == LCL_CG_V2   ? "v2"
                : lp->cg.mode == LCL_CG_V1 ? "v1"
                                           : "none",
                lp->seccomp ? "on" : "off");
    free(binary);
    *out = &lp->base;
    return AB_OK;
fail:
    free(binary);
    lp_free(lp);
    return rc;
}
