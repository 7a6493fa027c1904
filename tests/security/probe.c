/*
 * probe.c - a small program the adversarial tests run *inside* a sandbox to attempt what a
 * hostile command would, and report what the kernel answered. Built without sanitizers
 * (their runtimes need ptrace and /proc access a sandbox rightly refuses).
 *
 *   probe syscalls        each dangerous syscall with harmless arguments: "name errno" lines
 *   probe ptrace PID      PTRACE_ATTACH / process_vm_readv / pidfd_getfd against PID
 *   probe exe             open /proc/1/exe (the helper's binary: the agentbox binary on the
 *                         host) for writing and reading, readlink it (CVE-2019-5736's path)
 *   probe i386            a syscall through the 32-bit entry point (int 0x80); the filter
 *                         must kill the process, so printing "alive" is a failure
 *   probe x32             the same through the x32 ABI bit
 *   probe euid            print the effective uid (copied setuid-root by the test)
 *   probe devices         mknod a block and a char device; open raw host devices
 *
 * Output is line-oriented text; the test parses it. Exit status 0 unless the probe itself
 * could not run. It refuses to run outside a sandbox (PID 1 must be the sandbox helper,
 * "ab-sandbox"): on a host, as root, these calls would really mount, set the hostname, ...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

static void report(const char *name, long r)
{
    printf("%s %s\n", name, r < 0 ? strerrorname_np(errno) : "OK");
}

#define TRY(name, ...)                                                                           \
    do {                                                                                         \
        errno = 0;                                                                               \
        long r_ = syscall(__VA_ARGS__);                                                          \
        report(name, r_);                                                                        \
    } while (0)

static int do_syscalls(void)
{
    /* Namespaces and mounts. */
    TRY("unshare-user", SYS_unshare, CLONE_NEWUSER);
    TRY("unshare-mount", SYS_unshare, CLONE_NEWNS);
    TRY("unshare-net", SYS_unshare, CLONE_NEWNET);
    TRY("setns", SYS_setns, 0, 0);
    TRY("mount", SYS_mount, "none", "/tmp", "tmpfs", 0L, NULL);
    TRY("umount2", SYS_umount2, "/workspace", MNT_DETACH);
    TRY("pivot_root", SYS_pivot_root, "/tmp", "/tmp");
    TRY("chroot", SYS_chroot, "/tmp");
    TRY("open_tree", SYS_open_tree, AT_FDCWD, "/", 0);
    TRY("fsopen", SYS_fsopen, "tmpfs", 0);
    /* clone with a namespace flag (the raw syscall: fork-like, the child exits at once). */
    {
        errno = 0;
        long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0L, NULL, NULL, 0L);
        if (r == 0)
            _exit(0);
        report("clone-newuser", r);
    }
    /* Keyrings, bpf, io_uring, perf, userfaultfd. */
    TRY("keyctl", SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    TRY("add_key", SYS_add_key, "user", "probe", "x", 1L, KEY_SPEC_SESSION_KEYRING);
    TRY("request_key", SYS_request_key, "user", "probe", NULL, 0L);
    {
        unsigned char attr[128] = {0};
        TRY("bpf", SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof(attr));
    }
    {
        unsigned char params[120] = {0};
        TRY("io_uring_setup", SYS_io_uring_setup, 4, params);
    }
    {
        unsigned char attr[128] = {0};
        TRY("perf_event_open", SYS_perf_event_open, attr, 0, -1, -1, 0L);
    }
    TRY("userfaultfd", SYS_userfaultfd, 0);
    /* Modules, kexec, handles (CVE "shocker"), the clock, hostname. */
    TRY("finit_module", SYS_finit_module, -1, "", 0);
    TRY("delete_module", SYS_delete_module, "probe-no-such-module", O_NONBLOCK);
    TRY("open_by_handle_at", SYS_open_by_handle_at, AT_FDCWD, NULL, 0);
    TRY("name_to_handle_at", SYS_name_to_handle_at, AT_FDCWD, "/", NULL, NULL, 0);
    TRY("settimeofday", SYS_settimeofday, NULL, NULL);
    TRY("sethostname", SYS_sethostname, "probe", 5L);
    TRY("syslog", SYS_syslog, 3 /* READ_ALL */, NULL, 0);
    TRY("acct", SYS_acct, NULL);
    TRY("swapoff", SYS_swapoff, "/probe-no-such-swap");
    TRY("ptrace-traceme", SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL);
    return 0;
}

static int do_ptrace(pid_t pid)
{
    errno = 0;
    report("ptrace-attach", ptrace(PTRACE_ATTACH, pid, NULL, NULL));
    errno = 0;
    report("ptrace-seize", ptrace(PTRACE_SEIZE, pid, NULL, NULL));
    char buf[16];
    struct iovec local = {buf, sizeof(buf)}, remote = {(void *)0x400000, sizeof(buf)};
    errno = 0;
    report("process_vm_readv", syscall(SYS_process_vm_readv, pid, &local, 1L, &remote, 1L, 0L));
    errno = 0;
    long pfd = syscall(SYS_pidfd_open, pid, 0);
    report("pidfd_open", pfd);
    if (pfd >= 0) {
        errno = 0;
        report("pidfd_getfd", syscall(SYS_pidfd_getfd, (int)pfd, 0, 0));
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    errno = 0;
    report("open-mem", open(path, O_RDWR | O_CLOEXEC));
    return 0;
}

static int do_exe(void)
{
    errno = 0;
    report("open-exe-write", open("/proc/1/exe", O_WRONLY | O_CLOEXEC));
    errno = 0;
    report("open-exe-read", open("/proc/1/exe", O_RDONLY | O_CLOEXEC));
    char target[4096];
    errno = 0;
    ssize_t n = readlink("/proc/1/exe", target, sizeof(target) - 1);
    report("readlink-exe", n);
    errno = 0;
    report("open-root", open("/proc/1/root/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    errno = 0;
    report("open-cwd", open("/proc/1/cwd/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    /* Our own exe is the read-only bind of this binary: not writable either. */
    errno = 0;
    report("open-self-exe-write", open("/proc/self/exe", O_WRONLY | O_CLOEXEC));
    return 0;
}

static int do_i386(void)
{
#if defined(__x86_64__)
    long r;
    /* getpid through the 32-bit entry point. */
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    printf("alive %ld\n", r);
#else
    printf("unsupported\n");
#endif
    return 0;
}

static int do_x32(void)
{
#if defined(__x86_64__)
    errno = 0;
    long r = syscall(0x40000000L | SYS_getpid);
    printf("alive %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "OK");
#else
    printf("unsupported\n");
#endif
    return 0;
}

static int do_devices(void)
{
    errno = 0;
    report("mknod-block", mknod("/tmp/probe-sda", S_IFBLK | 0600, makedev(8, 0)));
    errno = 0;
    report("mknod-char", mknod("/tmp/probe-mem", S_IFCHR | 0600, makedev(1, 1)));
    static const char *const devs[] = {"/dev/sda", "/dev/vda", "/dev/mem", "/dev/kmsg",
                                       "/dev/port", "/dev/kvm", "/dev/fuse", "/dev/net/tun"};
    for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "open:%s", devs[i]);
        errno = 0;
        report(name, open(devs[i], O_RDWR | O_CLOEXEC));
    }
    return 0;
}

static int inside_sandbox(void)
{
    char comm[64] = "";
    FILE *f = fopen("/proc/1/comm", "re");
    if (!f)
        return 0;
    int ok = fgets(comm, sizeof(comm), f) && strcmp(comm, "ab-sandbox\n") == 0;
    fclose(f);
    return ok;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!inside_sandbox()) {
        fprintf(stderr, "probe: refusing to run outside an agentbox sandbox\n");
        return 3;
    }
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "syscalls") == 0)
        return do_syscalls();
    if (strcmp(what, "ptrace") == 0 && argc > 2)
        return do_ptrace((pid_t)atoi(argv[2]));
    if (strcmp(what, "exe") == 0)
        return do_exe();
    if (strcmp(what, "i386") == 0)
        return do_i386();
    if (strcmp(what, "x32") == 0)
        return do_x32();
    if (strcmp(what, "euid") == 0) {
        printf("%u %u\n", (unsigned)geteuid(), (unsigned)getuid());
        return 0;
    }
    if (strcmp(what, "devices") == 0)
        return do_devices();
    fprintf(stderr, "usage: probe syscalls|ptrace PID|exe|i386|x32|euid|devices\n");
    return 2;
}
