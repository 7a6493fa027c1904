/*
 * seccomp.c - the syscall filter every sandbox runs under.
 *
 * A deny list (default allow): the sandbox is an ordinary Linux userland, so an allow list
 * would break real programs, while the dangerous surface is a short, well-known list: the
 * syscalls that create namespaces or change mounts (the sandbox's own namespaces must stay
 * what the helper made), that reach the kernel's rarely-audited corners (bpf, userfaultfd,
 * io_uring, perf, keyrings, module loading, kexec) or another process (ptrace,
 * process_vm_*), and TIOCSTI/TIOCLINUX terminal injection. Denied calls fail with EPERM
 * (ENOSYS for clone3, so that glibc falls back to clone, whose flags we can inspect:
 * seccomp cannot look into clone3's struct argument). Syscalls of a foreign architecture
 * (i386, x32 entry points on x86-64) kill the process: they would bypass the filter.
 *
 * The filter is compiled once, in the spawner, with libseccomp and exported as classic BPF;
 * each helper installs the same program after its setup (so the helper itself is filtered
 * too) without calling libseccomp again.
 *
 * Rejected: kill-on-violation (programs probe for features and expect EPERM/ENOSYS).
 */
#include "providers/local/internal.h"

#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Grouped by kind, several per line. */
/* clang-format off */
static const char *const denied[] = {
    /* namespaces and mounts */
    "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot", "mount_setattr",
    "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
    /* other processes */
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    /* kernel attack surface a sandbox never needs */
    "bpf", "userfaultfd", "perf_event_open", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct",
    "quotactl", "quotactl_fd", "syslog", "lookup_dcookie", "nfsservctl", "vhangup",
    "open_by_handle_at", "name_to_handle_at", "iopl", "ioperm", "uselib",
    "fanotify_init", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "vm86", "vm86old", "create_module", "get_kernel_syms",
    "query_module", "sysfs", "_sysctl", "ustat",
};
/* clang-format on */

static const uint64_t ns_flags[] = {CLONE_NEWUSER,   CLONE_NEWNS,  CLONE_NEWPID,
                                    CLONE_NEWNET,    CLONE_NEWIPC, CLONE_NEWUTS,
                                    CLONE_NEWCGROUP, 0x00000080 /* CLONE_NEWTIME */};

ab_status lcl__seccomp_compile(struct sock_fprog *out, struct ab_err *err)
{
    memset(out, 0, sizeof(*out));
    ab_status rc = AB_OK;
    int mfd = -1;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return ab_err_set(err, AB_NOMEM, "seccomp_init failed");
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]) && r == 0; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR || nr < 0)
            continue; /* not a syscall on this architecture */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    /* clone(2) with any namespace flag; one rule per flag because a rule compares the
     * masked argument for equality. */
    for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]) && r == 0; i++)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    if (r == 0) {
        int nr = seccomp_syscall_resolve_name("clone3");
        if (nr >= 0)
            r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
    }
    /* ioctl(fd, TIOCSTI/TIOCLINUX): pushing input into a terminal (CVE-2017-5226); only the
     * low 32 bits are the request number (ioctl_list(2)). */
    if (r == 0)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI));
    if (r == 0)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCLINUX));
    if (r != 0) {
        rc = ab_err_sys(err, AB_INTERNAL, -r, "cannot build the seccomp filter");
        goto out;
    }
    /* libseccomp 2.5 exports only to a descriptor: go through a memfd. */
    mfd = memfd_create("ab-seccomp", MFD_CLOEXEC);
    if (mfd < 0) {
        rc = ab_err_sys(err, AB_IO, errno, "memfd_create");
        goto out;
    }
    r = seccomp_export_bpf(ctx, mfd);
    if (r != 0) {
        rc = ab_err_sys(err, AB_INTERNAL, -r, "seccomp_export_bpf");
        goto out;
    }
    off_t size = lseek(mfd, 0, SEEK_END);
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
        size / (off_t)sizeof(struct sock_filter) > 4096) {
        rc = ab_err_set(err, AB_INTERNAL, "unexpected seccomp program size %lld", (long long)size);
        goto out;
    }
    struct sock_filter *prog = malloc((size_t)size);
    if (!prog) {
        rc = AB_NOMEM;
        goto out;
    }
    if (pread(mfd, prog, (size_t)size, 0) != size) {
        free(prog);
        rc = ab_err_sys(err, AB_IO, errno, "reading the seccomp program");
        goto out;
    }
    out->filter = prog;
    out->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
out:
    if (mfd >= 0)
        close(mfd);
    seccomp_release(ctx);
    return rc;
}
