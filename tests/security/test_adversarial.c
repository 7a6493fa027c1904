/*
 * Adversarial tests of the local sandbox: what a hostile (or merely careless) agent would try,
 * beyond the basic isolation checks of tests/unit/test_local.c. Each case attacks through the
 * two doors an agent has -- commands (execute) and the file tools (fsops over the provider,
 * with the policy seam wired as the tools wire it) -- and then checks the host, not just the
 * answer: host files and other sandboxes unchanged, the agentbox binary unchanged, no
 * process left behind, the server's memory flat.
 *
 * Covered: symlink and rename races against the file tools (and the policy's path rules
 * under symlinks), /proc/self/exe and /proc/1/{exe,root,cwd,mem} tricks, ptrace and
 * process_vm_*, setuid binaries (a setuid-root copy planted from the host), namespace,
 * mount, keyring, bpf, io_uring, perf, module and handle syscalls, foreign syscall ABIs,
 * device nodes and writes to /dev, filling /tmp, /dev/shm (the memory cgroup) and the
 * workspace (file size limit), 10,000 files in one directory, paths longer than PATH_MAX,
 * 1 GiB of output, a command that closes its output and keeps running, one that ignores
 * SIGTERM, and host-path symlinks left for the server to delete.
 *
 * Commands that must be refused are run by tests/security/probe.c (built without
 * sanitizers, refuses to run outside a sandbox), so each check reads the errno the kernel
 * gave. Needs root or user namespaces and $AGENTBOX_BIN / $AGENTBOX_PROBE (ctest sets both).
 * No case depends on timing: races run for a fixed number of iterations, waits have
 * deadlines only to fail instead of hanging.
 */
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "core/fsops.h"
#include "core/policy.h"
#include "core/sandbox.h"
#include "providers/local/local.h"
#include "support/local_fixture.h"
#include "support/proc.h"

/* ------------------------------------------------------------------------------------------
 * fixture: a local provider in a fresh state directory
 * ---------------------------------------------------------------------------------------- */

static void fx_config(struct lfx *f, const char *userns)
{
    ab_log_configure(AB_LOG_WARN, AB_LOG_FORMAT_HUMAN, 2);
    lfx_config(f, "adv");
    f->run_timeout_ms = 120000;
    lfx_set(f, "local.user_namespace", userns);
    lfx_set(f, "local.limits.memory", "256MiB");
    lfx_set(f, "local.limits.pids", "128");
    lfx_set(f, "local.limits.tmp_size", "16MiB");
    lfx_set(f, "local.limits.file_size", "8MiB");
    lfx_set(f, "tools.execute.max_output", "1MiB");
}

static void fx_init(struct lfx *f, const char *userns)
{
    fx_config(f, userns);
    lfx_start(f, NULL);
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    T_EQ_INT(system(cmd), 0);
}

/* The host directory behind a sandbox's workspace (provider.c: sandboxes/<name>/workspace). */
static void host_ws(struct lfx *f, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/sandboxes/%s/workspace", f->dir, name);
}

/* Copy the probe into a sandbox's workspace from the host side: /workspace/<as>. */
static void plant_probe(struct lfx *f, const char *sbx, const char *as, mode_t mode, uid_t uid)
{
    const char *probe = getenv("AGENTBOX_PROBE");
    if (!probe)
        T_FAIL("AGENTBOX_PROBE is not set (ctest sets it to the built probe)");
    char ws[512], dst[700], cmd[1600];
    host_ws(f, sbx, ws, sizeof(ws));
    snprintf(dst, sizeof(dst), "%s/%s", ws, as);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", probe, dst);
    T_EQ_INT(system(cmd), 0);
    T_OK(chown(dst, uid, uid));
    T_OK(chmod(dst, mode)); /* after chown, which clears the setuid bit */
}

/* The fsops environment the tools build (tools.c), with this fixture's policy. */
static char *check_path(void *arg, enum fsops_access access, const char *abs_path)
{
    return policy_check_path(arg, access == FSOPS_ACCESS_WRITE ? POLICY_WRITE : POLICY_READ,
                             abs_path);
}

static void env_for(struct lfx *f, struct sbx_handle *h, struct fsops_env *env)
{
    memset(env, 0, sizeof(*env));
    env->p = f->p;
    env->h = h;
    env->workspace = "/workspace";
    env->limits = &f->cfg.tools;
    if (policy_active(f->pol)) {
        env->check_path = check_path;
        env->check_arg = f->pol;
        env->no_symlinks =
            (policy_refuses_symlinks(f->pol, POLICY_READ) ? 1u << FSOPS_ACCESS_READ : 0) |
            (policy_refuses_symlinks(f->pol, POLICY_WRITE) ? 1u << FSOPS_ACCESS_WRITE : 0);
    }
}

/* A file tool result: its text and structured content as one string (new), for searching. */
static char *result_text(struct fsops_result *r)
{
    char *s = json_dumps(r->structured ? r->structured : json_null(), JSON_ENCODE_ANY);
    char *c = r->content ? json_dumps(r->content, 0) : NULL;
    char *all = ab_asprintf("%s\n%s\n%s", buf_cstr(&r->text), s ? s : "", c ? c : "");
    free(s);
    free(c);
    return all;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "re");
    if (!fp)
        return NULL;
    struct buf b;
    buf_init(&b, 64u << 20);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        buf_append(&b, chunk, n);
    fclose(fp);
    return buf_steal(&b, NULL);
}

static void spit(const char *path, const char *text)
{
    FILE *fp = fopen(path, "we");
    T_ASSERT(fp != NULL);
    fputs(text, fp);
    fclose(fp);
}

static void file_sha(const char *path, char out[65])
{
    FILE *fp = fopen(path, "re");
    T_ASSERT(fp != NULL);
    struct ab_sha256 c;
    ab_sha256_init(&c);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        ab_sha256_update(&c, chunk, n);
    fclose(fp);
    unsigned char d[32];
    ab_sha256_final(&c, d);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* A host directory with a secret file, for the "did anything reach the host" checks. */
static void make_canary(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/ab-adv-canary-XXXXXX");
    T_ASSERT(mkdtemp(dir) != NULL);
    T_OK(chmod(dir, 0755));
    char p[256];
    snprintf(p, sizeof(p), "%s/secret.txt", dir);
    spit(p, "host-secret\n");
    T_OK(chmod(p, 0644));
}

static void check_canary(const char *dir)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/secret.txt", dir);
    char *s = slurp(p);
    T_ASSERT(s != NULL);
    T_EQ_STR(s, "host-secret\n");
    free(s);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "test \"$(ls -A '%s')\" = secret.txt", dir);
    if (system(cmd) != 0)
        T_FAIL("the host canary directory %s gained entries", dir);
}

/* The probe's line for name ("name ERRNO" or "name OK"). */
static const char *probe_result(const char *out, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ') {
            snprintf(buf, cap, "%.*s", (int)strcspn(p + nl + 1, "\n"), p + nl + 1);
            return buf;
        }
    }
    T_FAIL("the probe printed no line for %s:\n%s", name, out);
    return NULL;
}

static void expect_refused(const char *out, const char *name)
{
    char b[64];
    const char *r = probe_result(out, name, b, sizeof(b));
    if (strcmp(r, "OK") == 0)
        T_FAIL("%s succeeded inside the sandbox", name);
}

static void expect_errno(const char *out, const char *name, const char *want)
{
    char b[64];
    const char *r = probe_result(out, name, b, sizeof(b));
    if (strcmp(r, want) != 0)
        T_FAIL("%s: got %s, expected %s", name, r, want);
}

#define BOTH_MODES(fn)                                                                             \
    static void fn##_plain(void)                                                                   \
    {                                                                                              \
        fn("auto");                                                                                \
    }                                                                                              \
    static void fn##_userns(void)                                                                  \
    {                                                                                              \
        fn("always");                                                                              \
    }

/* ------------------------------------------------------------------------------------------
 * symlinks and the policy
 * ---------------------------------------------------------------------------------------- */

/* A path rule is checked on the path the tool was given; a symbolic link inside the sandbox
 * could point that path anywhere. With path rules active, the file tools refuse paths that
 * go through a link (and say so), so no rule can be bypassed with `ln -s`. */
static void adv_symlink_policy(void)
{
    struct lfx f;
    fx_config(&f, "auto");
    lfx_set(&f, "policy.deny_prefixes", "/workspace/.git");
    lfx_set(&f, "policy.allow_write_prefixes", "/workspace");
    lfx_start(&f, NULL);
    struct sbx_handle *h = lfx_create(&f, "ab-adv-links");
    free(lfx_sh(
        &f, h,
        "cd /workspace && mkdir .git && echo orig > .git/config && ln -s .git/config innocent "
        "&& ln -s .git gitdir && ln -s /etc etclink && mkdir sub && ln -s ../.git sub/up"));
    struct fsops_env env;
    env_for(&f, h, &env);
    struct ab_err err;
    const char *targets[] = {"innocent", "gitdir/config", "gitdir/new", "sub/up/config",
                             "/workspace/sub/up/hooks/pre-commit", "etclink/x"};
    for (size_t i = 0; i < AB_ARRAY_LEN(targets); i++) {
        struct fsops_result r;
        fsops_result_init(&r);
        T_OK(fsops_write(&env, fsops_cstr(targets[i]), fsops_cstr("pwned\n"), &r, &err));
        if (!r.is_error)
            T_FAIL("write through the link %s was allowed: %s", targets[i], buf_cstr(&r.text));
        fsops_result_cleanup(&r);
    }
    struct fsops_result r;
    fsops_result_init(&r);
    T_OK(fsops_edit(&env, fsops_cstr("innocent"), fsops_cstr("orig"), fsops_cstr("pwned"), false,
                    &r, &err));
    T_ASSERT(r.is_error);
    /* The refusal says why and what to do instead. */
    T_ASSERT(strstr(buf_cstr(&r.text), "symbolic link") != NULL);
    fsops_result_cleanup(&r);
    struct fsops_upload_file up = {.path = fsops_cstr("innocent"), .content = fsops_cstr("pwned")};
    fsops_result_init(&r);
    T_OK(fsops_upload(&env, &up, 1, &r, &err));
    T_ASSERT(strstr(buf_cstr(&r.text), "permission_denied") != NULL);
    fsops_result_cleanup(&r);
    lfx_expect_sh(&f, h, "cat /workspace/.git/config; ls /workspace/.git", "orig\nconfig\n");
    /* Ordinary writes still work, including new directories. */
    fsops_result_init(&r);
    T_OK(fsops_write(&env, fsops_cstr("src/new/file.txt"), fsops_cstr("ok\n"), &r, &err));
    if (r.is_error)
        T_FAIL("an ordinary write was refused: %s", buf_cstr(&r.text));
    fsops_result_cleanup(&r);
    /* Reads are not restricted by write rules. */
    fsops_result_init(&r);
    T_OK(fsops_read(&env, fsops_cstr("innocent"), 0, 10, &r, &err));
    T_ASSERT(!r.is_error);
    fsops_result_cleanup(&r);
    lfx_destroy(&f, h);
    lfx_done(&f);

    /* virtual_root: reads through a link are refused too. */
    fx_config(&f, "auto");
    lfx_set(&f, "policy.virtual_root", "/workspace");
    lfx_start(&f, NULL);
    h = lfx_create(&f, "ab-adv-vroot");
    free(lfx_sh(&f, h,
                "cd /workspace && ln -s /etc/passwd pw && ln -s / rootlink && echo x > plain"));
    env_for(&f, h, &env);
    const char *reads[] = {"pw", "rootlink/etc/passwd", "/workspace/rootlink/etc/hostname"};
    for (size_t i = 0; i < AB_ARRAY_LEN(reads); i++) {
        fsops_result_init(&r);
        T_OK(fsops_read(&env, fsops_cstr(reads[i]), 0, 10, &r, &err));
        if (!r.is_error || strstr(buf_cstr(&r.text), "sandbox:"))
            T_FAIL("read through the link %s was allowed: %s", reads[i], buf_cstr(&r.text));
        fsops_result_cleanup(&r);
    }
    fsops_result_init(&r);
    T_OK(fsops_ls(&env, fsops_cstr("rootlink"), &r, &err));
    T_ASSERT(r.is_error);
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    T_OK(fsops_read(&env, fsops_cstr("plain"), 0, 10, &r, &err));
    T_ASSERT(!r.is_error);
    fsops_result_cleanup(&r);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* Links and renames racing the file tools: a background loop in sandbox A keeps turning the
 * path the tools use into links to the host's files (by their host path), to the other
 * sandbox's workspace (by its host path), to /proc/1/root, to /etc, and back into a file or
 * a directory, while the tools read, write, edit, list, search and transfer through it.
 * Nothing may reach the host or sandbox B, whatever the interleaving. */
static void adv_link_races(void)
{
    struct lfx f;
    fx_init(&f, "auto");
    char canary[64], hb[512], cmd[4096];
    make_canary(canary, sizeof(canary));
    struct sbx_handle *a = lfx_create(&f, "ab-adv-race-a");
    struct sbx_handle *b = lfx_create(&f, "ab-adv-race-b");
    free(lfx_sh(&f, b, "echo victim-secret > /workspace/secret.txt"));
    host_ws(&f, "ab-adv-race-b", hb, sizeof(hb));
    snprintf(cmd, sizeof(cmd),
             "cd /workspace && mkdir -p d/inner && echo mine > d/inner/f && "
             "(i=0; while [ $i -lt 20000 ]; do "
             "ln -sfn '%s/secret.txt' t; ln -sfn '%s/secret.txt' t; ln -sfn '%s' t; "
             "ln -sfn /proc/1/root/etc/passwd t; rm -f t; echo mine > t; ln -sfn /etc t; "
             "rm -f t; mkdir t; rmdir t; "
             "mv d d2 && ln -sfn '%s' d && rm -f d && ln -sfn / d && rm -f d && mv d2 d; "
             "i=$((i+1)); done) >/dev/null 2>&1 &",
             canary, hb, canary, hb);
    free(lfx_sh(&f, a, cmd));
    struct fsops_env env;
    env_for(&f, a, &env);
    struct ab_err err;
    for (int i = 0; i < 300; i++) {
        struct fsops_result r[8];
        for (int k = 0; k < 8; k++)
            fsops_result_init(&r[k]);
        char content[64];
        snprintf(content, sizeof(content), "attacker-write-%d\n", i);
        struct fsops_upload_file up = {.path = fsops_cstr("t"), .content = fsops_cstr(content)};
        struct fsops_str dl[2] = {fsops_cstr("t"), fsops_cstr("d/inner/f")};
        ab_status rcs[8] = {
            fsops_read(&env, fsops_cstr("t"), 0, 50, &r[0], &err),
            fsops_write(&env, fsops_cstr("t"), fsops_cstr(content), &r[1], &err),
            fsops_edit(&env, fsops_cstr("t"), fsops_cstr("mine"), fsops_cstr("edited"), true,
                       &r[2], &err),
            fsops_ls(&env, fsops_cstr("d"), &r[3], &err),
            fsops_grep(&env, fsops_cstr("secret"), fsops_cstr("d"), FSOPS_NONE,
                       FSOPS_GREP_CONTENT, 0, &r[4], &err),
            fsops_glob(&env, fsops_cstr("**/*"), fsops_cstr("d"), &r[5], &err),
            fsops_upload(&env, &up, 1, &r[6], &err),
            fsops_download(&env, dl, 2, &r[7], &err),
        };
        for (int k = 0; k < 8; k++) {
            if (rcs[k] != AB_OK)
                T_FAIL("iteration %d op %d failed outright: %s (%s)", i, k,
                       ab_status_name(rcs[k]), err.msg);
            char *all = result_text(&r[k]);
            if (strstr(all, "host-secret") || strstr(all, "victim-secret"))
                T_FAIL("iteration %d op %d read through the race: %s", i, k, all);
            /* ("aG9zdC1zZWNyZXQK" and "dmljdGltLXNlY3JldAo" are the secrets in base64) */
            if (strstr(all, "aG9zdC1zZWNyZXQK") || strstr(all, "dmljdGltLXNlY3JldAo"))
                T_FAIL("iteration %d op %d downloaded a secret: %s", i, k, all);
            free(all);
            fsops_result_cleanup(&r[k]);
        }
    }
    /* The host and sandbox B are untouched; B's workspace holds only its own file. */
    check_canary(canary);
    lfx_expect_sh(&f, b, "cat /workspace/secret.txt; ls -A /workspace",
                  "victim-secret\nsecret.txt\n");
    char *s = slurp("/etc/passwd");
    T_ASSERT(s && !strstr(s, "attacker") && !strstr(s, "edited"));
    free(s);
    lfx_destroy(&f, a);
    lfx_destroy(&f, b);
    rm_rf(canary);
    lfx_done(&f);
}

/* The server deletes a destroyed sandbox's workspace on the host: links in it to host paths
 * must be removed, never followed (rm -rf through a link would delete host files), and a
 * hard link to a host file cannot be made in the first place. */
static void adv_destroy_host_links(void)
{
    struct lfx f;
    fx_init(&f, "auto");
    char canary[64], cmd[2048];
    make_canary(canary, sizeof(canary));
    struct sbx_handle *h = lfx_create(&f, "ab-adv-del");
    snprintf(cmd, sizeof(cmd),
             "cd /workspace && ln -s '%s' dirlink && ln -s '%s/secret.txt' filelink && "
             "ln -s / rootlink && mkdir -p locked/deeper && echo x > locked/deeper/f && "
             "ln -s '%s' locked/deeper/link && chmod 000 locked/deeper locked && "
             "(ln /usr/bin/passwd hard 2>&1 || true) && (ln /etc/passwd hard2 2>&1 || true)",
             canary, canary, canary);
    char *out = lfx_sh(&f, h, cmd);
    /* Hard links across the read-only binds fail (link(2): EXDEV across mounts). */
    T_ASSERT(strstr(out, "Invalid cross-device link") != NULL);
    free(out);
    char hw[512], hard[600];
    host_ws(&f, "ab-adv-del", hw, sizeof(hw));
    snprintf(hard, sizeof(hard), "%s/hard", hw);
    struct stat st;
    T_ASSERT(lstat(hard, &st) < 0);
    lfx_destroy(&f, h);
    check_canary(canary);
    T_ASSERT(lstat(hw, &st) < 0); /* and the workspace itself is gone */
    rm_rf(canary);
    lfx_done(&f);
}

/* ------------------------------------------------------------------------------------------
 * /proc tricks, ptrace, setuid, syscalls, devices
 * ---------------------------------------------------------------------------------------- */

/* /proc/1 is the helper, whose binary is the agentbox binary on the host (CVE-2019-5736
 * overwrote a container runtime through /proc/self/exe). Neither commands nor the file tools
 * (which the helper itself serves) may open it for writing, read it, or enter /proc/1/root. */
static void adv_proc_exe(const char *userns)
{
    struct lfx f;
    fx_init(&f, userns);
    const char *bin = getenv("AGENTBOX_BIN");
    char before[65], after[65];
    file_sha(bin, before);
    struct sbx_handle *h = lfx_create(&f, "ab-adv-proc");
    plant_probe(&f, "ab-adv-proc", "probe", 0755, 0);
    char *out = lfx_sh(&f, h, "/workspace/probe exe");
    expect_refused(out, "open-exe-write");
    expect_refused(out, "open-exe-read");
    expect_refused(out, "readlink-exe");
    expect_refused(out, "open-root");
    expect_refused(out, "open-cwd");
    expect_refused(out, "open-self-exe-write");
    free(out);
    out = NULL;
    T_ASSERT(lfx_run(&f, h, "echo x >> /proc/1/exe", NULL) != 0);
    T_ASSERT(lfx_run(&f, h, "ls /proc/1/root/", NULL) != 0);
    T_ASSERT(lfx_run(&f, h, "cat /proc/1/maps", NULL) != 0);
    /* The file tools run in the helper: its own /proc/self is the agentbox binary. */
    struct fsops_env env;
    env_for(&f, h, &env);
    struct ab_err err;
    const char *writes[] = {"/proc/self/exe", "/proc/1/exe", "/proc/self/mem", "/proc/1/mem",
                            "/proc/sys/vm/drop_caches", "/proc/self/attr/current",
                            "/proc/self/oom_score_adj"};
    for (size_t i = 0; i < AB_ARRAY_LEN(writes); i++) {
        struct fsops_result r;
        fsops_result_init(&r);
        ab_status rc = fsops_write(&env, fsops_cstr(writes[i]), fsops_cstr("-1000\n"), &r, &err);
        if (rc == AB_OK && !r.is_error)
            T_FAIL("the write tool wrote %s: %s", writes[i], buf_cstr(&r.text));
        fsops_result_cleanup(&r);
    }
    const char *reads[] = {"/proc/1/environ", "/proc/self/environ", "/proc/1/root/etc/passwd"};
    for (size_t i = 0; i < AB_ARRAY_LEN(reads); i++) {
        struct fsops_result r;
        fsops_result_init(&r);
        ab_status rc = fsops_read(&env, fsops_cstr(reads[i]), 0, 10, &r, &err);
        if (rc == AB_OK && !r.is_error && strstr(buf_cstr(&r.text), "AGENTBOX"))
            T_FAIL("the read tool returned the helper's %s: %s", reads[i], buf_cstr(&r.text));
        fsops_result_cleanup(&r);
    }
    /* sysrq: only ask whether it is writable (writing it would be the test's last act). */
    lfx_expect_sh(&f, h, "test -w /proc/sysrq-trigger && echo WRITABLE; true", "");
    lfx_destroy(&f, h);
    file_sha(bin, after);
    T_EQ_STR(after, before);
    lfx_done(&f);
}
BOTH_MODES(adv_proc_exe)

/* ptrace and friends against the helper (PID 1) and against a sibling command. */
static void adv_ptrace(const char *userns)
{
    struct lfx f;
    fx_init(&f, userns);
    struct sbx_handle *h = lfx_create(&f, "ab-adv-ptrace");
    plant_probe(&f, "ab-adv-ptrace", "probe", 0755, 0);
    char *out = lfx_sh(&f, h, "/workspace/probe ptrace 1");
    expect_errno(out, "ptrace-attach", "EPERM");
    expect_errno(out, "ptrace-seize", "EPERM");
    expect_errno(out, "process_vm_readv", "EPERM");
    expect_refused(out, "open-mem");
    free(out);
    out = lfx_sh(&f, h, "sleep 30 & pid=$!; /workspace/probe ptrace $pid; kill $pid");
    expect_errno(out, "ptrace-attach", "EPERM");
    expect_errno(out, "process_vm_readv", "EPERM");
    free(out);
    T_ASSERT(lfx_run(&f, h, "strace -f true 2>&1", NULL) != 0);
    lfx_destroy(&f, h);
    lfx_done(&f);
}
BOTH_MODES(adv_ptrace)

/* setuid binaries: a setuid-root copy planted from the host, and the host's own setuid
 * programs, run with the sandbox uid (no_new_privs, nosuid, no capabilities). */
static void adv_setuid(const char *userns)
{
    struct lfx f;
    fx_init(&f, userns);
    struct sbx_handle *h = lfx_create(&f, "ab-adv-suid");
    plant_probe(&f, "ab-adv-suid", "suid-probe", 04755, 0);
    char hw[512], path[600];
    host_ws(&f, "ab-adv-suid", hw, sizeof(hw));
    snprintf(path, sizeof(path), "%s/suid-probe", hw);
    struct stat st;
    T_OK(stat(path, &st));
    T_ASSERT((st.st_mode & S_ISUID) && st.st_uid == 0); /* the attack is really armed */
    lfx_expect_sh(&f, h, "/workspace/suid-probe euid", "1000 1000\n");
    lfx_expect_sh(&f, h, "cp /workspace/suid-probe /tmp/p && chmod u+s /tmp/p && /tmp/p euid",
                  "1000 1000\n");
    char *out;
    T_ASSERT(lfx_run(&f, h, "su -c id root </dev/null 2>&1", &out) != 0);
    T_ASSERT(strstr(out, "uid=0") == NULL);
    free(out);
    T_ASSERT(lfx_run(&f, h, "mount -t tmpfs none /tmp 2>&1", NULL) != 0);
    T_ASSERT(lfx_run(&f, h, "newgrp root </dev/null 2>&1", NULL) != 0);
    lfx_destroy(&f, h);
    lfx_done(&f);
}
BOTH_MODES(adv_setuid)

/* Namespaces, mounts, keyrings, bpf, io_uring, perf, userfaultfd, modules, handles, the
 * clock, the hostname, the kernel log: each refused with EPERM by the seccomp filter (so the
 * call never reaches the kernel code behind it). Foreign syscall ABIs kill the process. */
static void adv_syscalls(const char *userns)
{
    struct lfx f;
    fx_init(&f, userns);
    struct sbx_handle *h = lfx_create(&f, "ab-adv-sys");
    plant_probe(&f, "ab-adv-sys", "probe", 0755, 0);
    char *out = lfx_sh(&f, h, "/workspace/probe syscalls");
    static const char *const names[] = {
        "unshare-user",   "unshare-mount", "unshare-net",       "setns",
        "mount",          "umount2",       "pivot_root",        "chroot",
        "open_tree",      "fsopen",        "clone-newuser",     "keyctl",
        "add_key",        "request_key",   "bpf",               "io_uring_setup",
        "perf_event_open", "userfaultfd",  "finit_module",      "delete_module",
        "open_by_handle_at", "name_to_handle_at", "settimeofday", "sethostname",
        "syslog",         "acct",          "swapoff",           "ptrace-traceme"};
    for (size_t i = 0; i < AB_ARRAY_LEN(names); i++)
        expect_errno(out, names[i], "EPERM");
    free(out);
#if defined(__x86_64__)
    /* int 0x80 and the x32 bit: SIGSYS (exit 128+31), nothing printed. */
    T_EQ_INT(lfx_run(&f, h, "/workspace/probe i386", &out), 159);
    T_ASSERT(strstr(out, "alive") == NULL);
    free(out);
    T_EQ_INT(lfx_run(&f, h, "/workspace/probe x32", &out), 159);
    T_ASSERT(strstr(out, "alive") == NULL);
    free(out);
#endif
    /* The shell-level equivalents fail too. */
    T_ASSERT(lfx_run(&f, h, "unshare -r true 2>&1", NULL) != 0);
    T_ASSERT(lfx_run(&f, h, "unshare -m true 2>&1", NULL) != 0);
    lfx_destroy(&f, h);
    lfx_done(&f);
}
BOTH_MODES(adv_syscalls)

/* /dev holds a fixed, harmless set; nodes cannot be made; host devices are absent. */
static void adv_devices(const char *userns)
{
    struct lfx f;
    fx_init(&f, userns);
    struct sbx_handle *h = lfx_create(&f, "ab-adv-dev");
    plant_probe(&f, "ab-adv-dev", "probe", 0755, 0);
    char *out = lfx_sh(&f, h, "/workspace/probe devices");
    expect_errno(out, "mknod-block", "EPERM");
    expect_errno(out, "mknod-char", "EPERM");
    const char *absent[] = {"open:/dev/sda", "open:/dev/vda", "open:/dev/mem", "open:/dev/kmsg",
                            "open:/dev/port", "open:/dev/kvm", "open:/dev/fuse",
                            "open:/dev/net/tun"};
    for (size_t i = 0; i < AB_ARRAY_LEN(absent); i++)
        expect_errno(out, absent[i], "ENOENT");
    free(out);
    /* Writes to /dev: only the harmless nodes take them; nothing can be created there. */
    lfx_expect_sh(&f, h, "echo x > /dev/null && echo ok", "ok\n");
    T_ASSERT(lfx_run(&f, h, "echo x > /dev/full 2>&1", NULL) != 0);
    T_ASSERT(lfx_run(&f, h, "echo x > /dev/sda 2>&1", NULL) != 0);
    T_ASSERT(lfx_run(&f, h, "mkdir /dev/x 2>&1", NULL) != 0);
    struct fsops_env env;
    env_for(&f, h, &env);
    struct ab_err err;
    struct fsops_result r;
    fsops_result_init(&r);
    T_OK(fsops_write(&env, fsops_cstr("/dev/sdb"), fsops_cstr("x"), &r, &err));
    T_ASSERT(r.is_error);
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    T_OK(fsops_write(&env, fsops_cstr("/dev/newdir/x"), fsops_cstr("x"), &r, &err));
    T_ASSERT(r.is_error);
    fsops_result_cleanup(&r);
    lfx_expect_sh(&f, h, "ls /dev | tr '\\n' ' '",
                  "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero ");
    lfx_destroy(&f, h);
    lfx_done(&f);
}
BOTH_MODES(adv_devices)

/* ------------------------------------------------------------------------------------------
 * resources
 * ---------------------------------------------------------------------------------------- */

/* /tmp and /dev/shm are bounded (the tmpfs size, the memory cgroup), files are bounded by
 * RLIMIT_FSIZE; filling them fails inside the sandbox only, and the sandbox (its helper
 * restarted if the OOM killer took it) and its neighbours keep working. */
static void adv_fill(void)
{
    struct lfx f;
    fx_init(&f, "auto");
    struct sbx_handle *h = lfx_create(&f, "ab-adv-fill");
    struct sbx_handle *n = lfx_create(&f, "ab-adv-neighbour");
    char *out;
    /* /tmp: a 16 MiB tmpfs (files of 6 MiB each, under the 8 MiB file size limit) */
    T_ASSERT(lfx_run(&f, h,
                     "for i in 1 2 3 4; do head -c 6M /dev/zero > /tmp/fill$i || exit 1; "
                     "done 2>&1",
                     &out) != 0);
    T_ASSERT(strstr(out, "No space left") != NULL);
    free(out);
    lfx_expect_sh(&f, h, "rm /tmp/fill* && echo ok > /tmp/small && cat /tmp/small", "ok\n");
    /* the workspace: each file at most local.limits.file_size (8 MiB) */
    T_ASSERT(lfx_run(&f, h, "head -c 64M /dev/zero > /workspace/big", NULL) != 0);
    lfx_expect_sh(&f, h, "test $(stat -c %s /workspace/big) -le 8388608 && echo bounded",
                  "bounded\n");
    /* /dev/shm is memory: charged to the sandbox's cgroup (256 MiB) */
    lfx_run(&f, h, "head -c 1G /dev/zero > /dev/shm/fill 2>&1; echo done", NULL);
    out = NULL;
    int code = lfx_run(&f, h, "rm -f /dev/shm/fill; echo alive", &out);
    T_EQ_INT(code, 0);
    T_EQ_STR(out, "alive\n");
    free(out);
    lfx_expect_sh(&f, h, "ls /workspace", "big\n"); /* the workspace survived whatever happened */
    lfx_expect_sh(&f, n, "echo fine", "fine\n");
    lfx_destroy(&f, h);
    lfx_destroy(&f, n);
    lfx_done(&f);
}

/* 10,000 files in one directory: every tool answers, with its limits applied. */
static void adv_many_files(void)
{
    struct lfx f;
    fx_init(&f, "auto");
    struct sbx_handle *h = lfx_create(&f, "ab-adv-many");
    free(lfx_sh(&f, h,
                "mkdir /workspace/many && cd /workspace/many && seq -f 'file-%05g.txt' 1 10000 "
                "| xargs touch && echo needle > file-05000.txt"));
    lfx_expect_sh(&f, h, "ls /workspace/many | wc -l", "10000\n");
    struct fsops_env env;
    env_for(&f, h, &env);
    struct ab_err err;
    struct fsops_result r;
    fsops_result_init(&r);
    T_OK(fsops_ls(&env, fsops_cstr("many"), &r, &err));
    T_ASSERT(!r.is_error);
    T_EQ_INT(json_array_size(json_object_get(r.structured, "entries")), 10000);
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    T_OK(fsops_glob(&env, fsops_cstr("*.txt"), fsops_cstr("many"), &r, &err));
    T_ASSERT(!r.is_error);
    T_EQ_INT(json_array_size(json_object_get(r.structured, "paths")), 10000);
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    T_OK(fsops_grep(&env, fsops_cstr("needle"), fsops_cstr("many"), FSOPS_NONE,
                    FSOPS_GREP_FILES_WITH_MATCHES, 0, &r, &err));
    T_EQ_STR(buf_cstr(&r.text), "/workspace/many/file-05000.txt");
    fsops_result_cleanup(&r);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* Paths longer than PATH_MAX exist inside the sandbox (made with relative mkdir/cd): the tools
 * refuse overlong arguments with a clear error, walks over such trees finish, and the
 * server deletes them. */
static void adv_long_paths(void)
{
    struct lfx f;
    fx_init(&f, "auto");
    struct sbx_handle *h = lfx_create(&f, "ab-adv-long");
    /* 24 levels of 200-character names: about 4,800 bytes, beyond PATH_MAX (4096); and
     * 2,500 levels of one-character names. (Python: a shell's cd tracks $PWD, which cannot
     * exceed PATH_MAX; chdir with relative names can.) */
    free(lfx_sh(&f, h,
                "python3 -c \"import os\n"
                "for top, name, n in (('top', 'd' * 200, 24), ('narrow', 'n', 2500)):\n"
                "    os.chdir('/workspace'); os.mkdir(top); os.chdir(top)\n"
                "    for i in range(n):\n"
                "        os.mkdir(name); os.chdir(name)\n"
                "    open('leaf.txt', 'w').write('deep\\n')\n"
                "\""));
    struct fsops_env env;
    env_for(&f, h, &env);
    struct ab_err err;
    struct buf longp;
    buf_init(&longp, 1 << 20);
    buf_append_str(&longp, "top");
    for (int i = 0; i < 24; i++) {
        buf_append_char(&longp, '/');
        for (int k = 0; k < 200; k++)
            buf_append_char(&longp, 'd');
    }
    buf_append_str(&longp, "/leaf.txt");
    struct fsops_result r;
    fsops_result_init(&r);
    T_OK(fsops_read(&env, fsops_cstr(buf_cstr(&longp)), 0, 10, &r, &err));
    T_ASSERT(r.is_error);
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    T_OK(fsops_write(&env, fsops_cstr(buf_cstr(&longp)), fsops_cstr("x"), &r, &err));
    T_ASSERT(r.is_error);
    fsops_result_cleanup(&r);
    buf_cleanup(&longp);
    /* A single 300-byte name. */
    char name[400];
    memset(name, 'n', 300);
    name[300] = '\0';
    fsops_result_init(&r);
    T_OK(fsops_write(&env, fsops_cstr(name), fsops_cstr("x"), &r, &err));
    T_ASSERT(r.is_error);
    fsops_result_cleanup(&r);
    /* Walks over both trees end, with or without the too-long leaves. */
    const char *roots[] = {"top", "narrow"};
    for (size_t i = 0; i < 2; i++) {
        fsops_result_init(&r);
        ab_status rc = fsops_glob(&env, fsops_cstr("**/*.txt"), fsops_cstr(roots[i]), &r, &err);
        T_ASSERT(rc == AB_OK);
        fsops_result_cleanup(&r);
        fsops_result_init(&r);
        rc = fsops_grep(&env, fsops_cstr("deep"), fsops_cstr(roots[i]), FSOPS_NONE,
                        FSOPS_GREP_COUNT, 0, &r, &err);
        T_ASSERT(rc == AB_OK);
        fsops_result_cleanup(&r);
    }
    char hw[512];
    host_ws(&f, "ab-adv-long", hw, sizeof(hw));
    lfx_destroy(&f, h);
    struct stat st;
    T_ASSERT(lstat(hw, &st) < 0);
    lfx_done(&f);
}

/* ------------------------------------------------------------------------------------------
 * commands that misbehave
 * ---------------------------------------------------------------------------------------- */

struct flood {
    uint64_t bytes;
    uint64_t chunks;
};

static void on_flood(void *arg, const char *data, size_t len)
{
    struct flood *fl = arg;
    fl->bytes += len;
    fl->chunks++;
}

/* 1 GiB of output: the result keeps the cap, the command runs to its end, and the server's
 * memory does not grow with the flood. */
static void adv_output_flood(void)
{
    struct lfx f;
    fx_init(&f, "auto");
    struct sbx_handle *h = lfx_create(&f, "ab-adv-flood");
    free(lfx_sh(&f, h, "true")); /* warm up: the helper and the channel exist */
    long hwm0 = tp_status_kib(0, "VmHWM");
    struct flood fl = {0};
    struct sbx_exec_req req = {.shell = "head -c 1073741824 /dev/zero | tr '\\0' x",
                               .output_cap = 1 << 20,
                               .on_output = on_flood,
                               .on_output_arg = &fl};
    struct sbx_exec_result res;
    sbx_exec_result_init(&res);
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(f.p->ops->exec(f.p, h, &req, &res, &err));
    T_EQ_INT(res.exit_code, 0);
    T_ASSERT(res.truncated);
    T_EQ_INT(res.output.len, 1 << 20);
    /* The stream saw at least what was kept (past the cap the helper counts and drops the
     * output, sending a short chunk now and then as a sign of life: serve.c). */
    T_ASSERT(fl.bytes >= (1u << 20));
    sbx_exec_result_cleanup(&res);
    long grown_mib = (tp_status_kib(0, "VmHWM") - hwm0) / 1024;
#ifdef AGENTBOX_SANITIZE
    const long bound = 512; /* ASan's quarantine keeps freed chunks around (256 MiB default) */
#else
    const long bound = 64;
#endif
    if (grown_mib > bound)
        T_FAIL("the peak RSS grew by %ld MiB during 1 GiB of output (bound %ld MiB)", grown_mib,
               bound);
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* A command that closes stdout and stderr and keeps running is still waited for (its exit
 * status is the result), and its timeout still applies. */
static void adv_closed_stdout(void)
{
    struct lfx f;
    fx_init(&f, "auto");
    struct sbx_handle *h = lfx_create(&f, "ab-adv-closed");
    char *out;
    T_EQ_INT(lfx_run(&f, h,
                     "echo before; exec >&- 2>&-; sleep 1; echo done > /workspace/after; "
                     "exit 7",
                     &out),
             7);
    T_EQ_STR(out, "before\n");
    free(out);
    lfx_expect_sh(&f, h, "cat /workspace/after", "done\n");
    struct sbx_exec_result res;
    T_EQ_INT(lfx_run_ex(&f, h, "exec >&- 2>&- </dev/null; sleep 60", 1000, NULL, &res), 124);
    T_ASSERT(res.timed_out);
    sbx_exec_result_cleanup(&res);
    lfx_expect_sh(&f, h, "ps -e -o comm= | grep -c sleep; true", "0\n");
    lfx_destroy(&f, h);
    lfx_done(&f);
}

/* A command that ignores SIGTERM is killed at its timeout all the same, with its children;
 * and cancelling such a command works too. */
static void *cancel_later(void *arg)
{
    struct ab_cancel *c = arg;
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    ab_cancel_fire(c, "test");
    return NULL;
}

static void adv_ignore_sigterm(void)
{
    struct lfx f;
    fx_init(&f, "auto");
    struct sbx_handle *h = lfx_create(&f, "ab-adv-term");
    struct sbx_exec_result res;
    char *out;
    T_EQ_INT(lfx_run_ex(&f, h,
                        "trap '' TERM; sh -c \"trap '' TERM; sleep 60\" & echo started; "
                        "while :; do sleep 0.1; done",
                        1000, &out, &res),
             124);
    T_ASSERT(res.timed_out);
    T_EQ_STR(out, "started\n");
    free(out);
    sbx_exec_result_cleanup(&res);
    lfx_expect_sh(&f, h, "ps -e -o comm= | grep -c sleep; true", "0\n");
    struct ab_cancel c;
    ab_cancel_init(&c);
    pthread_t th;
    T_OK(pthread_create(&th, NULL, cancel_later, &c));
    struct sbx_exec_req req = {.shell = "trap '' TERM INT HUP; while :; do sleep 0.1; done",
                               .timeout_ms = 60000,
                               .cancel = &c};
    sbx_exec_result_init(&res);
    struct ab_err err;
    ab_err_clear(&err);
    T_OK(f.p->ops->exec(f.p, h, &req, &res, &err));
    T_ASSERT(res.cancelled);
    sbx_exec_result_cleanup(&res);
    pthread_join(th, NULL);
    ab_cancel_cleanup(&c);
    lfx_expect_sh(&f, h, "ps -e -o comm= | grep -c sleep; true", "0\n");
    lfx_destroy(&f, h);
    lfx_done(&f);
}

static const struct t_case cases[] = {
    T_CASE(adv_symlink_policy),
    T_CASE(adv_link_races),
    T_CASE(adv_destroy_host_links),
    T_CASE(adv_proc_exe_plain),
    T_CASE(adv_proc_exe_userns),
    T_CASE(adv_ptrace_plain),
    T_CASE(adv_ptrace_userns),
    T_CASE(adv_setuid_plain),
    T_CASE(adv_setuid_userns),
    T_CASE(adv_syscalls_plain),
    T_CASE(adv_syscalls_userns),
    T_CASE(adv_devices_plain),
    T_CASE(adv_devices_userns),
    T_CASE(adv_fill),
    T_CASE(adv_many_files),
    T_CASE(adv_long_paths),
    T_CASE(adv_output_flood),
    T_CASE(adv_closed_stdout),
    T_CASE(adv_ignore_sigterm),
    {0},
};

T_MAIN(cases)
