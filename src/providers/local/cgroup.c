/*
 * cgroup.c - per-sandbox memory, process and CPU limits through cgroups v1 or v2.
 *
 * Where: below the server's own cgroup (so a delegated subtree, a container's cgroup or a
 * systemd scope is respected), in a directory agentbox-<tag> (tag = a hash of the state
 * directory, so several servers on one host never collide), one child per helper instance:
 *   v1: <mount of each controller>/<our path>/agentbox-<tag>/<id>   (memory, pids, cpu)
 *   v2: <cgroup2 mount>/<our path>/agentbox-<tag>/<id>
 * The spawner writes the helper's pid into cgroup.procs before the helper runs, so
 * everything in the sandbox (the helper, commands, tmpfs pages they write) is charged there.
 *
 * v1 (what this development host has): memory.limit_in_bytes (+ memsw when swap accounting
 * exists, so swap cannot extend it), pids.max, cpu.cfs_quota_us/cfs_period_us.
 * v2: memory.max (+ memory.swap.max = 0), pids.max, cpu.max. v2 forbids processes in a
 * cgroup that distributes controllers to children ("no internal processes",
 * Documentation/admin-guide/cgroup-v2.rst); when our own cgroup holds only this server we
 * move it into a leaf <our path>/agentbox-server so controllers can be enabled; when it
 * holds other processes too, cgroups are not used and the note says how to fix that.
 *
 * Nothing here is fatal: without usable cgroups the sandboxes still have their rlimits and
 * tmpfs sizes, and status() reports exactly which limits are in force and why.
 */
#include "providers/local/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

static const char *const ctrl_name[LCL_CG_NCTRL] = {"memory", "pids", "cpu"};

static int write_str(const char *dir, const char *file, const char *val)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(val);
    ssize_t w = write(fd, val, len);
    int e = w < 0 ? errno : 0;
    close(fd);
    return w == (ssize_t)len ? 0 : -(e ? e : EIO);
}

static bool read_str(const char *dir, const char *file, char *out, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t r = read(fd, out, cap - 1);
    close(fd);
    if (r < 0)
        return false;
    out[r] = '\0';
    while (r > 0 && (out[r - 1] == '\n' || out[r - 1] == ' '))
        out[--r] = '\0';
    return true;
}

static bool read_i64(const char *dir, const char *file, int64_t *v)
{
    char s[64];
    return read_str(dir, file, s, sizeof(s)) && ab_parse_i64(s, v);
}

/* Does the comma-separated list contain word? */
static bool has_word(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == wl && strncmp(p, word, wl) == 0)
            return true;
        p = c ? c + 1 : NULL;
    }
    return false;
}

struct mnt {
    char *point, *root;
};

/* Mount point and root of the v1 hierarchy holding ctrl (or of cgroup2 when ctrl NULL). */
static bool find_mount(const char *ctrl, struct mnt *m)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return false;
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    while (!found && getline(&line, &cap, f) > 0) {
        /* id parent maj:min root point opts [optional...] - fstype source superopts */
        char *fields[8] = {0};
        char *save = NULL, *tok = strtok_r(line, " \n", &save);
        int i = 0;
        while (tok && i < 6) {
            fields[i++] = tok;
            tok = strtok_r(NULL, " \n", &save);
        }
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " \n", &save);
        char *fstype = tok ? strtok_r(NULL, " \n", &save) : NULL;
        char *source = fstype ? strtok_r(NULL, " \n", &save) : NULL;
        char *super = source ? strtok_r(NULL, " \n", &save) : NULL;
        if (i < 6 || !fstype)
            continue;
        if (ctrl ? (strcmp(fstype, "cgroup") == 0 && super && has_word(super, ctrl))
                 : strcmp(fstype, "cgroup2") == 0) {
            m->root = ab_strdup(fields[3]);
            m->point = ab_strdup(fields[4]);
            found = m->root && m->point;
        }
    }
    free(line);
    fclose(f);
    return found;
}

/* Our cgroup path in the v1 hierarchy of ctrl (ctrl NULL: the v2 "0::" entry). */
static char *own_path(const char *ctrl)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return NULL;
    char *line = NULL, *res = NULL;
    size_t cap = 0;
    while (!res && getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        if (ctrl ? has_word(ctrls, ctrl) : (strncmp(line, "0:", 2) == 0 && !*ctrls))
            res = ab_strdup(path);
    }
    free(line);
    fclose(f);
    return res;
}

/* Filesystem directory of our cgroup: mount point + (our path relative to the mount root). */
static char *own_dir(const struct mnt *m, const char *path)
{
    const char *rel = path;
    size_t rl = strlen(m->root);
    if (strcmp(m->root, "/") != 0 && strncmp(path, m->root, rl) == 0)
        rel = path + rl;
    if (strcmp(rel, "/") == 0)
        rel = "";
    return ab_asprintf("%s%s", m->point, rel);
}

static void note_add(struct lcl_cg_env *env, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note_add(struct lcl_cg_env *env, const char *fmt, ...)
{
    size_t len = strlen(env->note);
    if (len + 3 >= sizeof(env->note))
        return;
    if (len)
        len += (size_t)snprintf(env->note + len, sizeof(env->note) - len, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(env->note + len, sizeof(env->note) - len, fmt, ap);
    va_end(ap);
}

static void detect_v1(struct lcl_cg_env *env, const char *tag)
{
    for (int c = 0; c < LCL_CG_NCTRL; c++) {
        struct mnt m = {0};
        char *path = NULL, *dir = NULL, *base = NULL;
        if (!find_mount(ctrl_name[c], &m)) {
            note_add(env, "cgroup v1 controller %s is not mounted", ctrl_name[c]);
            goto next;
        }
        path = own_path(ctrl_name[c]);
        dir = path ? own_dir(&m, path) : NULL;
        base = dir ? ab_asprintf("%s/agentbox-%s", dir, tag) : NULL;
        if (!base)
            goto next;
        if (mkdir(base, 0755) < 0 && errno != EEXIST) {
            note_add(env, "cannot create %s: %s", base, strerror(errno));
            goto next;
        }
        env->base[c] = base;
        base = NULL;
        env->mode = LCL_CG_V1;
    next:
        free(m.point);
        free(m.root);
        free(path);
        free(dir);
        free(base);
    }
}

static void detect_v2(struct lcl_cg_env *env, const char *tag)
{
    struct mnt m = {0};
    char *path = NULL, *dir = NULL, *base = NULL, *leaf = NULL;
    char ctrls[256], want[64] = "";
    if (!find_mount(NULL, &m) || !(path = own_path(NULL)) || !(dir = own_dir(&m, path)))
        goto out;
    if (!read_str(dir, "cgroup.controllers", ctrls, sizeof(ctrls))) {
        note_add(env, "cannot read %s/cgroup.controllers", dir);
        goto out;
    }
    for (int c = 0; c < LCL_CG_NCTRL; c++) {
        /* cgroup.controllers is space-separated */
        char spaced[300];
        snprintf(spaced, sizeof(spaced), " %s ", ctrls);
        char word[16];
        snprintf(word, sizeof(word), " %s ", ctrl_name[c]);
        if (strstr(spaced, word)) {
            size_t l = strlen(want);
            snprintf(want + l, sizeof(want) - l, "%s+%s", l ? " " : "", ctrl_name[c]);
        }
    }
    if (!want[0]) {
        note_add(env, "cgroup v2 at %s delegates none of memory, pids, cpu", dir);
        goto out;
    }
    int r = write_str(dir, "cgroup.subtree_control", want);
    if (r == -EBUSY) {
        /* Our cgroup has processes. If they are only us, move into a leaf. */
        char procs[256];
        char self[32];
        snprintf(self, sizeof(self), "%d", (int)getpid());
        if (read_str(dir, "cgroup.procs", procs, sizeof(procs)) && strcmp(procs, self) == 0) {
            leaf = ab_asprintf("%s/agentbox-server", dir);
            if (leaf && (mkdir(leaf, 0755) == 0 || errno == EEXIST) &&
                write_str(leaf, "cgroup.procs", self) == 0)
                r = write_str(dir, "cgroup.subtree_control", want);
        }
    }
    if (r < 0) {
        note_add(env,
                 "cannot enable %s for child cgroups of %s (%s); run agentbox in a cgroup of its "
                 "own, e.g. `systemd-run --user --scope -p Delegate=yes agentbox ...`",
                 want, dir, strerror(-r));
        goto out;
    }
    base = ab_asprintf("%s/agentbox-%s", dir, tag);
    if (!base || (mkdir(base, 0755) < 0 && errno != EEXIST)) {
        note_add(env, "cannot create %s/agentbox-%s: %s", dir, tag, strerror(errno));
        goto out;
    }
    if ((r = write_str(base, "cgroup.subtree_control", want)) < 0) {
        note_add(env, "cannot enable %s in %s: %s", want, base, strerror(-r));
        goto out;
    }
    snprintf(env->v2_controllers, sizeof(env->v2_controllers), "%s", want);
    env->base[0] = base;
    base = NULL;
    env->mode = LCL_CG_V2;
out:
    free(m.point);
    free(m.root);
    free(path);
    free(dir);
    free(base);
    free(leaf);
}

void lcl__cg_detect(struct lcl_cg_env *env, const char *tag)
{
    memset(env, 0, sizeof(*env));
    struct mnt m = {0};
    /* A v1 memory hierarchy means a v1 (or hybrid) host: controllers live there. */
    bool v1 = find_mount("memory", &m);
    free(m.point);
    free(m.root);
    if (v1)
        detect_v1(env, tag);
    else
        detect_v2(env, tag);
    if (env->mode == LCL_CG_NONE && !env->note[0])
        note_add(env, "no cgroup hierarchy found");
}

void lcl__cg_env_cleanup(struct lcl_cg_env *env, bool remove_base)
{
    for (int c = 0; c < LCL_CG_NCTRL; c++) {
        if (env->base[c] && remove_base)
            rmdir(env->base[c]);
        free(env->base[c]);
        env->base[c] = NULL;
    }
    env->mode = LCL_CG_NONE;
}

static void rmdir_retry(const char *dir)
{
    /* The last tasks may still be exiting: retry for up to a second. */
    for (int i = 0; i < 500; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return;
        if (errno != EBUSY)
            return;
        usleep(2000);
    }
}

void lcl__cg_destroy(const struct lcl_cg_env *env, struct lcl_cgroup *cg)
{
    (void)env;
    for (int c = 0; c < LCL_CG_NCTRL; c++) {
        if (cg->dir[c])
            rmdir_retry(cg->dir[c]);
        free(cg->dir[c]);
        cg->dir[c] = NULL;
    }
}

ab_status lcl__cg_create(const struct lcl_cg_env *env, const char *id,
                         const struct lcl_cg_limits *lim, struct lcl_cgroup *cg, struct ab_err *err)
{
    memset(cg, 0, sizeof(*cg));
    if (env->mode == LCL_CG_NONE)
        return AB_OK;
    char val[64];
    int r = 0;
    const char *what = "";
    for (int c = 0; c < LCL_CG_NCTRL && !r; c++) {
        if (!env->base[c])
            continue;
        char *dir = ab_asprintf("%s/%s", env->base[c], id);
        if (!dir) {
            lcl__cg_destroy(env, cg);
            return AB_NOMEM;
        }
        int mr = mkdir(dir, 0755);
        if (mr < 0 && errno == ENOENT) {
            /* Our base was removed under us (an administrator, a cleanup script): make it
             * again rather than run every later sandbox without limits. */
            if ((mkdir(env->base[c], 0755) == 0 || errno == EEXIST) &&
                (env->mode != LCL_CG_V2 ||
                 write_str(env->base[c], "cgroup.subtree_control", env->v2_controllers) == 0))
                mr = mkdir(dir, 0755);
        }
        if (mr < 0) {
            int e = errno;
            lcl__cg_destroy(env, cg);
            ab_status rc = ab_err_sys(err, AB_IO, e, "cannot create the sandbox cgroup %s", dir);
            free(dir);
            return rc;
        }
        cg->dir[c] = dir;
    }
    bool v2 = env->mode == LCL_CG_V2;
    const char *mem = v2 ? cg->dir[0] : cg->dir[LCL_CG_MEMORY];
    const char *pids = v2 ? cg->dir[0] : cg->dir[LCL_CG_PIDS];
    const char *cpu = v2 ? cg->dir[0] : cg->dir[LCL_CG_CPU];
    if (!r && mem && lim->memory_bytes) {
        snprintf(val, sizeof(val), "%llu", (unsigned long long)lim->memory_bytes);
        what = v2 ? "memory.max" : "memory.limit_in_bytes";
        r = write_str(mem, what, val);
        if (!r) {
            /* Swap must not extend the limit; absent without swap accounting. */
            int r2 = v2 ? write_str(mem, "memory.swap.max", "0")
                        : write_str(mem, "memory.memsw.limit_in_bytes", val);
            (void)r2;
        }
    }
    if (!r && pids && lim->pids > 0) {
        snprintf(val, sizeof(val), "%lld", (long long)lim->pids);
        what = "pids.max";
        r = write_str(pids, what, val);
    }
    if (!r && cpu && lim->cpus > 0) {
        long long quota = (long long)(lim->cpus * 100000.0);
        if (quota < 1000)
            quota = 1000;
        if (v2) {
            snprintf(val, sizeof(val), "%lld 100000", quota);
            what = "cpu.max";
            r = write_str(cpu, what, val);
        } else {
            what = "cpu.cfs_period_us";
            r = write_str(cpu, what, "100000");
            if (!r) {
                snprintf(val, sizeof(val), "%lld", quota);
                what = "cpu.cfs_quota_us";
                r = write_str(cpu, what, val);
            }
        }
    }
    if (r) {
        lcl__cg_destroy(env, cg);
        return ab_err_sys(err, AB_IO, -r, "cannot set up the sandbox cgroup (%s)", what);
    }
    return AB_OK;
}

char **lcl__cg_procs_files(const struct lcl_cg_env *env, const struct lcl_cgroup *cg, size_t *n)
{
    (void)env;
    char **v = calloc(LCL_CG_NCTRL + 1, sizeof(char *));
    *n = 0;
    if (!v)
        return NULL;
    for (int c = 0; c < LCL_CG_NCTRL; c++)
        if (cg->dir[c])
            v[(*n)++] = ab_asprintf("%s/cgroup.procs", cg->dir[c]);
    for (size_t i = 0; i < *n; i++)
        if (!v[i]) {
            for (size_t j = 0; j < *n; j++)
                free(v[j]);
            free(v);
            *n = 0;
            return NULL;
        }
    return v;
}

json_t *lcl__cg_status(const struct lcl_cg_env *env, const struct lcl_cgroup *cg)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "cgroup",
                        json_string(env->mode == LCL_CG_V2   ? "v2"
                                    : env->mode == LCL_CG_V1 ? "v1"
                                                             : "none"));
    if (env->note[0])
        json_object_set_new(o, "cgroup_note", json_string(env->note));
    bool v2 = env->mode == LCL_CG_V2;
    const char *mem = v2 ? cg->dir[0] : cg->dir[LCL_CG_MEMORY];
    const char *pids = v2 ? cg->dir[0] : cg->dir[LCL_CG_PIDS];
    const char *cpu = v2 ? cg->dir[0] : cg->dir[LCL_CG_CPU];
    int64_t v, p;
    char s[64];
    json_t *mlim = json_null(), *plim = json_null(), *clim = json_null();
    if (mem && read_str(mem, v2 ? "memory.max" : "memory.limit_in_bytes", s, sizeof(s)) &&
        ab_parse_i64(s, &v) && v < (INT64_C(1) << 62))
        mlim = json_integer(v);
    if (pids && read_str(pids, "pids.max", s, sizeof(s)) && ab_parse_i64(s, &v))
        plim = json_integer(v);
    if (cpu) {
        if (v2 && read_str(cpu, "cpu.max", s, sizeof(s))) {
            long long q, per;
            if (sscanf(s, "%lld %lld", &q, &per) == 2 && per > 0)
                clim = json_real((double)q / (double)per);
        } else if (!v2 && read_i64(cpu, "cpu.cfs_quota_us", &v) &&
                   read_i64(cpu, "cpu.cfs_period_us", &p) && v > 0 && p > 0) {
            clim = json_real((double)v / (double)p);
        }
    }
    json_object_set_new(o, "memory_bytes", mlim);
    json_object_set_new(o, "pids", plim);
    json_object_set_new(o, "cpus", clim);
    json_t *usage = json_object();
    if (mem && read_i64(mem, v2 ? "memory.current" : "memory.usage_in_bytes", &v))
        json_object_set_new(usage, "memory_bytes", json_integer(v));
    if (pids && read_i64(pids, "pids.current", &v))
        json_object_set_new(usage, "pids", json_integer(v));
    json_object_set_new(o, "usage", usage);
    return o;
}

static void remove_cgroup_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_type != DT_DIR || de->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            rmdir(path); /* fails, harmlessly, while tasks are still inside */
        }
        closedir(d);
    }
    rmdir(dir);
}

void lcl__cg_sweep_tag(const struct lcl_cg_env *env, const char *tag)
{
    for (int c = 0; c < LCL_CG_NCTRL; c++) {
        if (!env->base[c])
            continue;
        const char *slash = strrchr(env->base[c], '/');
        if (!slash)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%.*s/agentbox-%s", (int)(slash - env->base[c]), env->base[c],
                 tag);
        remove_cgroup_tree(path);
    }
}
