/*
 * diag.c - why sandboxes cannot be created here, and what to do about it.
 *
 * When the preflight fails, the server must say exactly why and how to fix it, and refuse
 * to start the provider (it never runs commands unsandboxed). Inputs: the failing step and
 * errno, and the spawner's per-namespace probe (which namespace type fails alone). Causes
 * are checked from the most specific to the most general:
 *   - user namespaces switched off by sysctl (Debian's kernel.unprivileged_userns_clone,
 *     user.max_user_namespaces = 0) or restricted by AppArmor (Ubuntu 23.10+'s
 *     kernel.apparmor_restrict_unprivileged_userns);
 *   - a seccomp filter on this process (Seccomp: 2 in /proc/self/status), as container
 *     runtimes install by default, which returns EPERM/ENOSYS for namespace flags;
 *   - root without CAP_SYS_ADMIN (an unprivileged container);
 *   - mounts denied inside the sandbox (an LSM policy, or /proc partly masked so a fresh
 *     proc may not be mounted: the kernel's mount_too_revealing() check).
 */
#include "providers/local/internal.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

bool lcl__read_line(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool ok = fgets(out, (int)cap, f) != NULL;
    fclose(f);
    if (ok)
        out[strcspn(out, "\n")] = '\0';
    return ok;
}

static int sysctl_int(const char *path)
{
    char s[64];
    int64_t v;
    if (!lcl__read_line(path, s, sizeof(s)) || !ab_parse_i64(s, &v))
        return -1;
    return (int)v;
}

bool lcl__proc_status(const char *key, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return false;
    char line[256];
    size_t kl = strlen(key);
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            const char *v = line + kl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(out, cap, "%s", v);
            out[strcspn(out, "\n")] = '\0';
            found = true;
        }
    }
    fclose(f);
    return found;
}

static bool under_seccomp(void)
{
    char v[32];
    return lcl__proc_status("Seccomp", v, sizeof(v)) && strcmp(v, "0") != 0;
}

static bool has_cap_sys_admin(void)
{
    char v[32];
    if (!lcl__proc_status("CapEff", v, sizeof(v)))
        return false;
    unsigned long long caps = strtoull(v, NULL, 16);
    return (caps >> 21) & 1; /* CAP_SYS_ADMIN */
}

static const char *ns_name(uint32_t flag)
{
    switch (flag) {
    case CLONE_NEWUSER:
        return "user";
    case CLONE_NEWNS:
        return "mount";
    case CLONE_NEWPID:
        return "PID";
    case CLONE_NEWNET:
        return "network";
    case CLONE_NEWIPC:
        return "IPC";
    case CLONE_NEWUTS:
        return "UTS";
    case CLONE_NEWCGROUP:
        return "cgroup";
    default:
        return "?";
    }
}

void lcl__explain(struct lcl_diagnosis *d, const char *step, int errnum, bool userns,
                  const uint32_t *flags, const int *errnos, size_t nprobe)
{
    char *what = d->what;
    snprintf(what, sizeof(d->what), "%s", step);
    uint32_t failed_flag = 0;
    for (size_t i = 0; i < nprobe; i++)
        if (errnos[i]) {
            failed_flag = flags[i];
            errnum = errnos[i];
            snprintf(what, sizeof(d->what), "creating a %s namespace", ns_name(flags[i]));
            break;
        }
    bool ns_failure = failed_flag || strcmp(step, "clone") == 0;
    const char *cause = NULL, *remedy = NULL;
    char cause_buf[256], remedy_buf[512];
    uid_t uid = geteuid();

    if (ns_failure && userns && (failed_flag == CLONE_NEWUSER || !failed_flag)) {
        if (uid != 0 && sysctl_int("/proc/sys/kernel/unprivileged_userns_clone") == 0) {
            cause = "unprivileged user namespaces are disabled "
                    "(sysctl kernel.unprivileged_userns_clone = 0)";
            remedy = "run `sysctl -w kernel.unprivileged_userns_clone=1` (persist it in "
                     "/etc/sysctl.d/), or run agentbox as root";
        } else if (sysctl_int("/proc/sys/user/max_user_namespaces") == 0) {
            cause = "user namespaces are disabled (sysctl user.max_user_namespaces = 0)";
            remedy = "run `sysctl -w user.max_user_namespaces=15000` (persist it in "
                     "/etc/sysctl.d/)";
        } else if (uid != 0 &&
                   sysctl_int("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1) {
            cause = "AppArmor restricts unprivileged user namespaces "
                    "(sysctl kernel.apparmor_restrict_unprivileged_userns = 1)";
            remedy = "install an AppArmor profile for the agentbox binary that allows "
                     "`userns,` (see apparmor.d(5)), or run `sysctl -w "
                     "kernel.apparmor_restrict_unprivileged_userns=0`";
        } else if (errnum == ENOSPC) {
            cause = "the limit on user namespaces is reached (user.max_user_namespaces)";
            remedy = "raise it: `sysctl -w user.max_user_namespaces=15000`";
        }
    }
    if (!cause && ns_failure && under_seccomp() && (errnum == EPERM || errnum == ENOSYS)) {
        cause = "this process runs under a seccomp filter (Seccomp: 2 in /proc/self/status) "
                "that denies creating namespaces, as container runtimes' default profiles do";
        remedy = "run the container with `--security-opt seccomp=unconfined` (Docker, Podman) "
                 "or a seccomp profile that allows clone/unshare with namespace flags, or "
                 "run agentbox outside the container";
    }
    if (!cause && ns_failure && !userns && uid == 0 && !has_cap_sys_admin()) {
        cause = "the server runs as root without CAP_SYS_ADMIN (an unprivileged container)";
        remedy = "give the container CAP_SYS_ADMIN (`--cap-add SYS_ADMIN`), or set "
                 "local.user_namespace: always so sandboxes use a user namespace";
    }
    if (!cause && ns_failure && !userns && uid != 0) {
        cause = "local.user_namespace is 'never' but the server is not root";
        remedy = "set local.user_namespace: auto (or run agentbox as root)";
    }
    if (!cause && !ns_failure && errnum == EPERM) {
        char profile[128] = "";
        lcl__read_line("/proc/self/attr/current", profile, sizeof(profile));
        if (strncmp(step, "mount /proc", 11) == 0) {
            cause = "a fresh /proc may not be mounted here: the host's /proc has parts masked "
                    "or read-only (a container runtime's masked paths)";
            remedy = "run the container with `--security-opt systempaths=unconfined` (Docker) "
                     "or `--privileged`, or run agentbox on the host";
        } else if (profile[0] && strcmp(profile, "unconfined") != 0) {
            snprintf(cause_buf, sizeof(cause_buf),
                     "the security profile '%s' denies mounting inside the sandbox", profile);
            cause = cause_buf;
            remedy = "run agentbox unconfined (e.g. `--security-opt apparmor=unconfined`) or "
                     "with a profile that allows mount in new namespaces";
        }
    }
    if (!cause) {
        snprintf(cause_buf, sizeof(cause_buf), "the kernel refused (%s)%s", strerror(errnum),
                 under_seccomp() ? "; note this process runs under a seccomp filter" : "");
        cause = cause_buf;
        snprintf(remedy_buf, sizeof(remedy_buf),
                 "check that namespaces are allowed (sysctls user.max_user_namespaces, "
                 "kernel.unprivileged_userns_clone; container seccomp/AppArmor profiles) and "
                 "that `unshare --user --map-root-user --mount --pid --fork --net true` works "
                 "for this user");
        remedy = remedy_buf;
    }
    d->errnum = errnum;
    snprintf(d->cause, sizeof(d->cause), "%s", cause);
    snprintf(d->remedy, sizeof(d->remedy), "%s", remedy);
}

ab_status lcl__diagnose(struct ab_err *err, const char *step, int errnum, bool userns,
                        const uint32_t *flags, const int *errnos, size_t nprobe)
{
    struct lcl_diagnosis d;
    lcl__explain(&d, step, errnum, userns, flags, errnos, nprobe);
    return ab_err_set(err, AB_UNSUPPORTED,
                      "local sandboxes are unavailable: %s failed: %s. Cause: %s. Remedy: %s. "
                      "(agentbox never runs commands unsandboxed; sandbox.provider: "
                      "agent-sandbox runs them on Kubernetes instead)",
                      d.what, strerror(d.errnum), d.cause, d.remedy);
}
