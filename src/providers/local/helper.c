/*
 * helper.c - turning a freshly clone()d process into a sandbox: the helper's setup.
 *
 * The child starts in new mount, PID (it is PID 1), network, IPC and UTS namespaces (and a
 * user namespace whose maps the spawner wrote), already inside its cgroups. In order:
 *
 *  1. A new cgroup namespace (now that we are in our cgroups, so they become its root).
 *  2. The filesystem, built like bubblewrap builds it: make every mount private; mount a
 *     staging tmpfs on /tmp and pivot_root into it, so the host tree is visible at /oldroot
 *     (including the host's /tmp, which our tmpfs no longer covers) while we build the new
 *     root at /newroot: a tmpfs with read-only binds of /usr, /bin, /sbin, /lib* (symlinks
 *     on merged-/usr systems are recreated as symlinks), a minimal /etc (our passwd, group,
 *     hosts, hostname, resolv.conf, nsswitch.conf; read-only binds of certificates,
 *     alternatives, the loader cache and a few more), a fresh /proc for our PID namespace,
 *     a minimal /dev (binds of null, zero, full, random, urandom, tty; a private devpts;
 *     a tmpfs /dev/shm), a size-limited tmpfs /tmp, and the workspace, bound read-write from
 *     its directory under the state directory. Then pivot_root(".", ".")
 *     and a lazy unmount drop the host tree entirely (pivot_root(2), NOTES), and the root
 *     tmpfs is made read-only.
 *  3. Loopback up (no other interface exists unless local.network is host); hostname.
 *  4. Privileges: as real root (no user namespace) drop supplementary groups, lock the
 *     securebits, empty the bounding set and switch to the sandbox uid/gid, which clears
 *     every capability (capabilities(7), "Effect of user ID changes"). In a user namespace,
 *     where only our own uid may be mapped, a nested user namespace maps the sandbox uid
 *     onto ours, and all capabilities are then dropped explicitly. Either way the helper
 *     and the commands run as the sandbox uid with no capabilities at all.
 *  5. rlimits, no_new_privs, not dumpable (so a command cannot ptrace us or read our
 *     /proc entries), the seccomp filter, then READY to the server.
 *
 * A failure at any step is reported to the server as (step, errno) and the helper exits;
 * diag.c turns that into a cause and a remedy. Read-only remounts keep the flags a less
 * privileged mount namespace may not clear (MNT_LOCK_*: nosuid, nodev, noexec, atime),
 * as mount(2) requires for bind remounts.
 */
#include "providers/local/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/securebits.h>
#include <linux/seccomp.h>

#include "base/util.h"

#define OLD "/oldroot"
#define NEW "/newroot"

/* The first failure: step names what we were doing, errno why. */
struct setup_err {
    char step[256];
    int errnum;
};

static int fail(struct setup_err *se, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct setup_err *se, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(se->step, sizeof(se->step), fmt, ap);
    va_end(ap);
    se->errnum = errnum;
    return -1;
}

static int write_file(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -1;
    while (len) {
        ssize_t w = write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        data += w;
        len -= (size_t)w;
    }
    return close(fd);
}

static int write_str(const char *path, const char *s)
{
    return write_file(path, s, strlen(s), 0644);
}

/* Read at most cap-1 bytes of a host file (following symlinks in the host's view). */
static ssize_t read_host_file(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t r = read(fd, out + got, cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    out[got] = '\0';
    return (ssize_t)got;
}

static int mkdirs(const char *path, mode_t mode)
{
    char tmp[LCL_STR_MAX + 64];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Flags of the mount at path that a bind remount must repeat (they may be locked). */
static unsigned long locked_flags(const char *path)
{
    struct statvfs sv;
    if (statvfs(path, &sv) < 0)
        return 0;
    unsigned long f = 0;
    if (sv.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    return f;
}

/* Bind src onto dst (which must exist) read-only, nosuid, nodev. Not recursive: mounts
 * below src (rare under /usr) are not visible, so nothing can appear writable below. */
static int bind_ro(struct setup_err *se, const char *src, const char *dst)
{
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
        return fail(se, errno, "bind %s", src + strlen(OLD));
    unsigned long f = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | locked_flags(dst);
    if (mount(NULL, dst, NULL, f, NULL) < 0)
        return fail(se, errno, "make %s read-only", dst + strlen(NEW));
    return 0;
}

/* Recreate host entry OLD<path> at NEW<path>: a symlink as the same symlink, a directory
 * or file as a read-only bind. Missing entries are skipped. */
static int mirror_ro(struct setup_err *se, const char *path)
{
    char src[LCL_STR_MAX + 16], dst[LCL_STR_MAX + 16];
    snprintf(src, sizeof(src), OLD "%s", path);
    snprintf(dst, sizeof(dst), NEW "%s", path);
    struct stat st;
    if (lstat(src, &st) < 0)
        return 0;
    if (S_ISLNK(st.st_mode)) {
        char target[LCL_STR_MAX];
        ssize_t n = readlink(src, target, sizeof(target) - 1);
        if (n < 0)
            return fail(se, errno, "readlink %s", path);
        target[n] = '\0';
        if (symlink(target, dst) < 0 && errno != EEXIST)
            return fail(se, errno, "symlink %s", path);
        return 0;
    }
    if (S_ISDIR(st.st_mode)) {
        if (mkdirs(dst, 0755) < 0)
            return fail(se, errno, "mkdir %s", path);
    } else if (S_ISREG(st.st_mode)) {
        int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return fail(se, errno, "create %s", path);
        close(fd);
    } else {
        return 0;
    }
    return bind_ro(se, src, dst);
}

static int bind_dev(struct setup_err *se, const char *name)
{
    char src[64], dst[64];
    snprintf(src, sizeof(src), OLD "/dev/%s", name);
    snprintf(dst, sizeof(dst), NEW "/dev/%s", name);
    struct stat st;
    if (stat(src, &st) < 0 && strcmp(name, "null") != 0)
        return 0; /* a host without it (some containers): the sandbox goes without too */
    int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return fail(se, errno, "create /dev/%s", name);
    close(fd);
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
        return fail(se, errno, "bind /dev/%s", name);
    return 0;
}

static int mount_tmpfs(struct setup_err *se, const char *dst, const char *what, uint64_t size,
                       const char *mode, unsigned long flags)
{
    char opts[128];
    if (size)
        snprintf(opts, sizeof(opts), "mode=%s,size=%llu", mode, (unsigned long long)size);
    else
        snprintf(opts, sizeof(opts), "mode=%s", mode);
    if (mount("tmpfs", dst, "tmpfs", flags, opts) < 0)
        return fail(se, errno, "mount tmpfs on %s", what);
    return 0;
}

/* /etc entries bound from the host when present (the rest of /etc stays hidden: it may
 * hold secrets such as /etc/shadow or service credentials). */
static const char *const etc_binds[] = {
    "alternatives", "ssl",         "ca-certificates", "ca-certificates.conf",
    "pki",          "ld.so.cache", "ld.so.conf",      "ld.so.conf.d",
    "localtime",    "timezone",    "protocols",       "services",
    "mime.types",   "os-release",  "debian_version",  "gai.conf",
    "bash.bashrc",  "profile",     "inputrc",         "perl",
    "gitconfig",    "magic",       "mailcap",
};

static int setup_etc(struct setup_err *se, const struct lcl_setup *s, const char *resolv)
{
    if (mkdir(NEW "/etc", 0755) < 0)
        return fail(se, errno, "mkdir /etc");
    for (size_t i = 0; i < AB_ARRAY_LEN(etc_binds); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/etc/%s", etc_binds[i]);
        if (mirror_ro(se, path) < 0)
            return -1;
    }
    /* python3.X configuration directories (sitecustomize on Debian). */
    DIR *d = opendir(OLD "/etc");
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strncmp(de->d_name, "python3", 7) != 0 || strlen(de->d_name) > 32)
                continue;
            char path[64];
            snprintf(path, sizeof(path), "/etc/%s", de->d_name);
            if (mirror_ro(se, path) < 0) {
                closedir(d);
                return -1;
            }
        }
        closedir(d);
    }
    char text[1024];
    snprintf(text, sizeof(text),
             "root:x:0:0:root:/root:/usr/sbin/nologin\n"
             "sandbox:x:%u:%u:sandbox:%s:/bin/sh\n"
             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
             s->uid, s->gid, s->workspace);
    if (write_str(NEW "/etc/passwd", text) < 0)
        return fail(se, errno, "write /etc/passwd");
    snprintf(text, sizeof(text), "root:x:0:\nsandbox:x:%u:\nnogroup:x:65534:\n", s->gid);
    if (write_str(NEW "/etc/group", text) < 0)
        return fail(se, errno, "write /etc/group");
    if (write_str(NEW "/etc/hostname", "sandbox\n") < 0 ||
        write_str(NEW "/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tsandbox\n"
                                    "::1\tlocalhost ip6-localhost ip6-loopback\n") < 0 ||
        write_str(NEW "/etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\n"
                                            "hosts: files dns\nnetworks: files\n"
                                            "protocols: files\nservices: files\n") < 0 ||
        write_str(NEW "/etc/resolv.conf", resolv) < 0)
        return fail(se, errno, "write /etc files");
    if (symlink("../proc/self/mounts", NEW "/etc/mtab") < 0)
        return fail(se, errno, "symlink /etc/mtab");
    return 0;
}

static int setup_dev(struct setup_err *se, const struct lcl_setup *s)
{
    if (mkdir(NEW "/dev", 0755) < 0)
        return fail(se, errno, "mkdir /dev");
    if (mount_tmpfs(se, NEW "/dev", "/dev", 1024 * 1024, "0755", MS_NOSUID | MS_NOEXEC) < 0)
        return -1;
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    for (size_t i = 0; i < AB_ARRAY_LEN(nodes); i++)
        if (bind_dev(se, nodes[i]) < 0)
            return -1;
    if (mkdir(NEW "/dev/pts", 0755) < 0 || mkdir(NEW "/dev/shm", 01777) < 0)
        return fail(se, errno, "mkdir /dev/pts");
    /* A private devpts instance: ptys of the host or of other sandboxes stay invisible.
     * No gid= option: the tty group need not exist in a user namespace. */
    if (mount("devpts", NEW "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=620") < 0)
        return fail(se, errno, "mount devpts on /dev/pts");
    if (mount_tmpfs(se, NEW "/dev/shm", "/dev/shm", s->shm_bytes, "1777", MS_NOSUID | MS_NODEV) < 0)
        return -1;
    static const char *const links[][2] = {
        {"pts/ptmx", NEW "/dev/ptmx"},          {"/proc/self/fd", NEW "/dev/fd"},
        {"/proc/self/fd/0", NEW "/dev/stdin"},  {"/proc/self/fd/1", NEW "/dev/stdout"},
        {"/proc/self/fd/2", NEW "/dev/stderr"},
    };
    for (size_t i = 0; i < AB_ARRAY_LEN(links); i++)
        if (symlink(links[i][0], links[i][1]) < 0)
            return fail(se, errno, "symlink %s", links[i][1] + strlen(NEW));
    /* Read-only from now on (in a user namespace its root is the sandbox user, who would
     * otherwise own it); the nodes, devpts and /dev/shm are mounts of their own. */
    if (mount(NULL, NEW "/dev", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
              NULL) < 0)
        return fail(se, errno, "make /dev read-only");
    return 0;
}

static int setup_fs(struct setup_err *se, const struct lcl_setup *s)
{
    /* resolv.conf is often a symlink to an absolute path (systemd-resolved), which would not
     * resolve under /oldroot: read it while the host root is still ours. */
    static char resolv[16384];
    if (read_host_file("/etc/resolv.conf", resolv, sizeof(resolv)) < 0)
        resolv[0] = '\0';

    /* Nothing we mount may propagate back to the host (mount_namespaces(7)). */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return fail(se, errno, "make mounts private");
    if (mount_tmpfs(se, "/tmp", "staging", 1024 * 1024, "0755", MS_NOSUID | MS_NODEV) < 0)
        return -1;
    if (chdir("/tmp") < 0 || mkdir("newroot", 0755) < 0 || mkdir("oldroot", 0755) < 0)
        return fail(se, errno, "prepare staging");
    if (syscall(SYS_pivot_root, ".", "oldroot") < 0)
        return fail(se, errno, "pivot_root into staging");
    if (chdir("/") < 0)
        return fail(se, errno, "chdir /");

    /* The new root: small, and made read-only once populated. */
    if (mount_tmpfs(se, NEW, "/", 4 * 1024 * 1024, "0755", MS_NOSUID | MS_NODEV) < 0)
        return -1;
    static const char *const sys[] = {"/usr",   "/bin",   "/sbin",  "/lib",
                                      "/lib32", "/lib64", "/libx32"};
    for (size_t i = 0; i < AB_ARRAY_LEN(sys); i++)
        if (mirror_ro(se, sys[i]) < 0)
            return -1;
    for (size_t i = 0; i < s->nbinds; i++) {
        char src[LCL_STR_MAX + 16], dst[LCL_STR_MAX + 16];
        snprintf(src, sizeof(src), OLD "%s", s->ro_binds[i]);
        snprintf(dst, sizeof(dst), NEW "%s", s->ro_binds[i]);
        struct stat st;
        if (stat(src, &st) < 0)
            return fail(se, errno, "local.ro_binds entry %s", s->ro_binds[i]);
        if (!S_ISDIR(st.st_mode))
            return fail(se, ENOTDIR, "local.ro_binds entry %s", s->ro_binds[i]);
        if (mkdirs(dst, 0755) < 0)
            return fail(se, errno, "mkdir %s", s->ro_binds[i]);
        if (bind_ro(se, src, dst) < 0)
            return -1;
    }
    if (setup_etc(se, s, resolv) < 0)
        return -1;

    if (mkdir(NEW "/proc", 0555) < 0)
        return fail(se, errno, "mkdir /proc");
    /* A proc instance of our own PID namespace: host processes are invisible. */
    if (mount("proc", NEW "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return fail(se, errno, "mount /proc");
    if (setup_dev(se, s) < 0)
        return -1;
    if (mkdir(NEW "/tmp", 01777) < 0)
        return fail(se, errno, "mkdir /tmp");
    if (mount_tmpfs(se, NEW "/tmp", "/tmp", s->tmp_bytes, "1777", MS_NOSUID | MS_NODEV) < 0)
        return -1;

    /* The workspace by path: a descriptor opened by the server would name a mount of the
     * server's namespace, which mount(2) refuses to bind here (EINVAL). */
    char ws[LCL_STR_MAX + 16], src[LCL_STR_MAX + 16];
    snprintf(ws, sizeof(ws), NEW "%s", s->workspace);
    snprintf(src, sizeof(src), OLD "%s", s->workspace_host);
    if (mkdirs(ws, 0755) < 0)
        return fail(se, errno, "mkdir %s", s->workspace);
    if (mount(src, ws, NULL, MS_BIND, NULL) < 0)
        return fail(se, errno, "bind the workspace");
    if (mount(NULL, ws, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | locked_flags(ws),
              NULL) < 0)
        return fail(se, errno, "remount the workspace nosuid");

    /* Switch: the old root is stacked on the new one and detached with everything below
     * it, the host tree included (pivot_root(2): "pivot_root(".", ".")"). */
    if (chdir(NEW) < 0)
        return fail(se, errno, "chdir to the new root");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return fail(se, errno, "pivot_root into the new root");
    if (umount2(".", MNT_DETACH) < 0)
        return fail(se, errno, "detach the host root");
    if (chdir("/") < 0)
        return fail(se, errno, "chdir /");
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        return fail(se, errno, "make / read-only");
    if (chdir(s->workspace) < 0)
        return fail(se, errno, "chdir %s", s->workspace);
    return 0;
}

static int loopback_up(struct setup_err *se)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(se, errno, "socket for the loopback interface");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    int r = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (r == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        r = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(fd);
    return r < 0 ? fail(se, e, "bring up the loopback interface") : 0;
}

static int capset_zero(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    return (int)syscall(SYS_capset, &h, d);
}

/* Lock the securebits so nothing can bring capabilities back: exec as uid 0 grants none
 * (NOROOT), no ambient raising, and the setuid fixups stay on (capabilities(7)). */
static int lock_securebits(struct setup_err *se)
{
    unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                         SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                         SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0)
        return fail(se, errno, "set securebits");
    return 0;
}

static int drop_bounding_set(struct setup_err *se)
{
    for (int cap = 0; cap < 64; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break; /* past CAP_LAST_CAP */
            return fail(se, errno, "drop capability %d from the bounding set", cap);
        }
    return 0;
}

static int drop_privileges(struct setup_err *se, const struct lcl_setup *s)
{
    char map[64];
    if (!s->userns) {
        /* Real root in the initial user namespace: become the sandbox user. */
        if (setgroups(0, NULL) < 0)
            return fail(se, errno, "drop supplementary groups");
        if (lock_securebits(se) < 0 || drop_bounding_set(se) < 0)
            return -1;
        if (setresgid(s->gid, s->gid, s->gid) < 0)
            return fail(se, errno, "setresgid %u", s->gid);
        if (setresuid(s->uid, s->uid, s->uid) < 0)
            return fail(se, errno, "setresuid %u", s->uid);
    } else {
        /* We are uid 0 of a user namespace in which only one uid may exist. Drop the host
         * groups where allowed (a privileged server did not deny setgroups), then map the
         * sandbox uid onto ours in a nested namespace (user_namespaces(7): a process may map
         * its own uid in a namespace it created, after writing "deny" to setgroups). */
        if (!s->deny_setgroups && setgroups(0, NULL) < 0)
            return fail(se, errno, "drop supplementary groups");
        if (unshare(CLONE_NEWUSER) < 0)
            return fail(se, errno, "create the nested user namespace");
        /* Changing credentials made us non-dumpable, and /proc/self of a non-dumpable
         * process belongs to root (proc(5)): become dumpable to write our own maps. We
         * turn it off again below, for good. */
        if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
            return fail(se, errno, "set dumpable");
        if (write_str("/proc/self/setgroups", "deny") < 0)
            return fail(se, errno, "write /proc/self/setgroups");
        snprintf(map, sizeof(map), "%u 0 1\n", s->uid);
        if (write_str("/proc/self/uid_map", map) < 0)
            return fail(se, errno, "write /proc/self/uid_map");
        snprintf(map, sizeof(map), "%u 0 1\n", s->gid);
        if (write_str("/proc/self/gid_map", map) < 0)
            return fail(se, errno, "write /proc/self/gid_map");
        if (lock_securebits(se) < 0 || drop_bounding_set(se) < 0)
            return -1;
    }
    if (capset_zero() < 0)
        return fail(se, errno, "clear capabilities");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return fail(se, errno, "clear ambient capabilities");
    return 0;
}

/* Set soft = hard = v, or as close as the current hard limit allows. */
static int set_limit(struct setup_err *se, int res, const char *name, uint64_t v)
{
    struct rlimit cur, nl;
    if (getrlimit(res, &cur) < 0)
        return fail(se, errno, "getrlimit %s", name);
    rlim_t want = (rlim_t)v;
    if (cur.rlim_max != RLIM_INFINITY && want > cur.rlim_max)
        want = cur.rlim_max;
    nl.rlim_cur = nl.rlim_max = want;
    if (setrlimit(res, &nl) < 0)
        return fail(se, errno, "setrlimit %s", name);
    return 0;
}

static int64_t get_limit(int res)
{
    struct rlimit rl;
    if (getrlimit(res, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return -1;
    return (int64_t)rl.rlim_cur;
}

static void send_frame(int fd, struct buf *b)
{
    size_t len = lcl__wr_end(b);
    /* The control socket is blocking here and the server is waiting for exactly this. */
    for (int i = 0; i < 1000; i++) {
        int r = lcl__send(fd, b->data, len, NULL, 0);
        if (r != -EAGAIN)
            return;
        usleep(1000);
    }
}

void lcl__helper_run(const struct lcl_setup *s, int ctl, const struct sock_fprog *filter)
{
    struct setup_err se = {{0}, 0};
    struct buf b;
    buf_init(&b, LCL_HDR + LCL_FRAME_MAX);
    prctl(PR_SET_NAME, "ab-sandbox", 0, 0, 0);

    /* In a new user namespace our ids are still the host's, which need not be mapped
     * there (a root server maps namespace root to local.uid): become the namespace's root,
     * which keeps the full capability set the namespace gave us (user_namespaces(7)). */
    if (s->userns && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) {
        fail(&se, errno, "become root of the user namespace");
        goto failed;
    }
    /* Where the kernel has cgroup namespaces, our cgroup becomes the root we see. */
    if (unshare(CLONE_NEWCGROUP) < 0 && errno != EINVAL) {
        fail(&se, errno, "create the cgroup namespace");
        goto failed;
    }
    if (setup_fs(&se, s) < 0)
        goto failed;
    if (!s->net_host && loopback_up(&se) < 0)
        goto failed;
    if (sethostname("sandbox", 7) < 0) {
        fail(&se, errno, "sethostname");
        goto failed;
    }
    if (drop_privileges(&se, s) < 0)
        goto failed;
    signal(SIGXFSZ, SIG_IGN); /* a full file gives EFBIG to the helper, never a signal */
    if ((s->nofile > 0 &&
         set_limit(&se, RLIMIT_NOFILE, "RLIMIT_NOFILE", (uint64_t)s->nofile) < 0) ||
        (s->fsize > 0 && set_limit(&se, RLIMIT_FSIZE, "RLIMIT_FSIZE", s->fsize) < 0) ||
        (s->nproc > 0 && set_limit(&se, RLIMIT_NPROC, "RLIMIT_NPROC", (uint64_t)s->nproc) < 0) ||
        set_limit(&se, RLIMIT_CORE, "RLIMIT_CORE", 0) < 0)
        goto failed;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        fail(&se, errno, "set no_new_privs");
        goto failed;
    }
    /* Not dumpable: commands (same uid) can neither ptrace us nor open /proc/1/{mem,fd,..}
     * (proc(5), /proc/pid ownership of non-dumpable processes). */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        fail(&se, errno, "clear dumpable");
        goto failed;
    }
    if (s->seccomp && filter->len && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, filter) < 0) {
        fail(&se, errno, "install the seccomp filter");
        goto failed;
    }

    lcl__wr_begin(&b, LCL_H_READY);
    lcl__wr_u32(&b, LCL_WIRE_VERSION);
    lcl__wr_i64(&b, get_limit(RLIMIT_NOFILE));
    lcl__wr_i64(&b, get_limit(RLIMIT_NPROC));
    lcl__wr_i64(&b, get_limit(RLIMIT_FSIZE));
    send_frame(ctl, &b);
    buf_cleanup(&b);
    lcl__serve(s, ctl);

failed:
    lcl__wr_begin(&b, LCL_H_SETUP_ERROR);
    lcl__wr_str(&b, se.step);
    lcl__wr_i32(&b, se.errnum);
    send_frame(ctl, &b);
    _exit(1);
}
