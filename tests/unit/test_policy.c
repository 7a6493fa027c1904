/* Unit tests for src/core/policy.c and src/core/audit.c. */
#include "t.h"

#include <stdlib.h>

#include "base/buf.h"
#include "base/util.h"
#include "config/config.h"
#include "core/audit.h"
#include "core/fsops.h"
#include "core/policy.h"
#include "support/hostdir_provider.h"
#include "support/proc.h"

static struct policy *make(const char *const *sets)
{
    struct config c;
    struct ab_err err;
    T_OK(cfg_init_defaults(&c, &err));
    for (; *sets; sets += 2)
        if (cfg_set(&c, sets[0], sets[1], &err))
            T_FAIL("%s", err.msg);
    struct policy *p = NULL;
    if (policy_new(&c, &p, &err))
        T_FAIL("%s", err.msg);
    cfg_cleanup(&c);
    return p;
}

static void t_paths(void)
{
    const char *sets[] = {"policy.allow_write_prefixes", "/workspace,/tmp/",
                          "policy.deny_prefixes", "/workspace/.git", NULL};
    struct policy *p = make(sets);
    T_ASSERT(policy_active(p));
    T_ASSERT(policy_check_path(p, POLICY_WRITE, "/workspace/a.py") == NULL);
    T_ASSERT(policy_check_path(p, POLICY_WRITE, "/tmp/x") == NULL);
    T_ASSERT(policy_check_path(p, POLICY_READ, "/etc/passwd") == NULL);
    char *t = policy_check_path(p, POLICY_WRITE, "/etc/passwd");
    T_EQ_STR(t, "Error: permission denied for write on /etc/passwd: writes are allowed only "
                "under: /workspace, /tmp.");
    free(t);
    t = policy_check_path(p, POLICY_WRITE, "/workspace2/x");
    T_ASSERT(t != NULL);
    free(t);
    t = policy_check_path(p, POLICY_WRITE, "/workspace/.git/config");
    T_EQ_STR(t, "Error: permission denied for write on /workspace/.git/config: the policy forbids "
                "changing anything under /workspace/.git. Writes are allowed under: /workspace, "
                "/tmp (except under: /workspace/.git).");
    free(t);
    T_ASSERT(policy_check_path(p, POLICY_WRITE, "/workspace/.gitignore") == NULL);
    policy_free(p);
}

static void t_virtual_root(void)
{
    const char *sets[] = {"policy.virtual_root", "/workspace/", NULL};
    struct policy *p = make(sets);
    T_ASSERT(policy_check_path(p, POLICY_READ, "/workspace") == NULL);
    T_ASSERT(policy_check_path(p, POLICY_READ, "/workspace/src/a") == NULL);
    char *t = policy_check_path(p, POLICY_READ, "/etc/passwd");
    T_EQ_STR(t, "Error: Path '/etc/passwd' is outside the allowed root /workspace. Only paths "
                "under /workspace are allowed; relative paths resolve inside the workspace.");
    free(t);
    policy_free(p);
    struct config c;
    struct ab_err err;
    cfg_init_defaults(&c, &err);
    cfg_set(&c, "policy.virtual_root", "relative/dir", &err);
    struct policy *bad = NULL;
    T_EQ_INT(policy_new(&c, &bad, &err), AB_INVAL);
    cfg_cleanup(&c);
}

static void t_commands(void)
{
    const char *sets[] = {"policy.deny_commands", "rm -rf /,*mkfs*", "policy.ask_commands",
                          "git push", NULL};
    struct policy *p = make(sets);
    char *t = NULL;
    T_EQ_INT(policy_check_command(p, "ls -la", 6, &t), POLICY_ALLOW);
    T_ASSERT(t == NULL);
    const char *c1 = "cd / && rm -rf / --no-preserve-root";
    T_EQ_INT(policy_check_command(p, c1, strlen(c1), &t), POLICY_DENY);
    T_EQ_STR(t, "Error: the command was refused by policy: it matches the denied pattern 'rm -rf "
                "/'. Commands containing any of these are not allowed: 'rm -rf /', '*mkfs*'. "
                "Everything else is allowed; achieve the goal another way.");
    free(t);
    const char *c2 = "sudo mkfs.ext4 /dev/sda";
    T_EQ_INT(policy_check_command(p, c2, strlen(c2), &t), POLICY_DENY);
    free(t);
    const char *c3 = "git push origin main";
    T_EQ_INT(policy_check_command(p, c3, strlen(c3), &t), POLICY_ASK);
    T_EQ_STR(t, "git push");
    char *r = policy_ask_refusal(t, "the user declined");
    T_ASSERT(strstr(r, "'git push'") && strstr(r, "the user declined"));
    free(r);
    free(t);
    /* (pointer, length) need not be NUL-terminated, glob patterns included: "mkfs" at the
     * end of the slice matches '*mkfs*'; what follows the slice is never read. */
    char slice[16];
    memcpy(slice, "xx mkfs", 7);
    memset(slice + 7, 'z', sizeof(slice) - 7);
    T_EQ_INT(policy_check_command(p, slice, 7, &t), POLICY_DENY);
    free(t);
    T_EQ_INT(policy_check_command(p, slice, 5, &t), POLICY_ALLOW);
    policy_free(p);
    const char *none[] = {NULL};
    p = make(none);
    T_ASSERT(!policy_active(p));
    policy_free(p);
}

/* Which accesses the path rules cover, hence where the file tools refuse symbolic links. */
static void t_symlink_coverage(void)
{
    const char *none[] = {"policy.deny_commands", "rm -rf", NULL};
    const char *deny[] = {"policy.deny_prefixes", "/workspace/.git", NULL};
    const char *allow[] = {"policy.allow_write_prefixes", "/workspace", NULL};
    const char *root[] = {"policy.virtual_root", "/workspace", NULL};
    struct policy *p = make(none);
    T_ASSERT(!policy_refuses_symlinks(p, POLICY_READ) && !policy_refuses_symlinks(p, POLICY_WRITE));
    policy_free(p);
    T_ASSERT(!policy_refuses_symlinks(NULL, POLICY_WRITE));
    const char *const *with_write[] = {deny, allow};
    for (int i = 0; i < 2; i++) {
        p = make(with_write[i]);
        T_ASSERT(!policy_refuses_symlinks(p, POLICY_READ));
        T_ASSERT(policy_refuses_symlinks(p, POLICY_WRITE));
        policy_free(p);
    }
    p = make(root);
    T_ASSERT(policy_refuses_symlinks(p, POLICY_READ) && policy_refuses_symlinks(p, POLICY_WRITE));
    policy_free(p);
}

static char *deny_git(void *arg, enum fsops_access access, const char *abs_path)
{
    return policy_check_path(arg, access == FSOPS_ACCESS_WRITE ? POLICY_WRITE : POLICY_READ,
                             abs_path);
}

/* The file tools with a deny rule: a link that leads into the denied tree is refused with a
 * text that names the link; plain paths and reads are unaffected (hostdir provider). */
static void t_symlink_refusal(void)
{
    char *root = hostdir_mkdtemp();
    T_ASSERT(root != NULL);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p %s/workspace/.git && echo orig > %s/workspace/.git/config && "
             "ln -s .git/config %s/workspace/innocent && ln -s .git %s/workspace/gitdir",
             root, root, root, root);
    T_EQ_INT(system(cmd), 0);
    struct sbx_provider *prov;
    struct sbx_handle *h;
    struct ab_err err;
    T_OK(hostdir_provider_new(root, true, true, &prov, &h, &err));
    const char *sets[] = {"policy.deny_prefixes", "/workspace/.git", NULL};
    struct policy *pol = make(sets);
    struct fsops_env env = {.p = prov, .h = h, .workspace = "/workspace",
                            .check_path = deny_git, .check_arg = pol,
                            .no_symlinks = 1u << FSOPS_ACCESS_WRITE};
    struct fsops_result r;
    fsops_result_init(&r);
    T_OK(fsops_write(&env, fsops_cstr("innocent"), fsops_cstr("x"), &r, &err));
    T_ASSERT(r.is_error);
    T_EQ_STR(buf_cstr(&r.text),
             "Error: write on /workspace/innocent refused: /workspace/innocent is a symbolic "
             "link, and this server's path policy applies to real paths only. Use the path the "
             "link points to (execute `readlink -f /workspace/innocent` shows it).");
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    T_OK(fsops_write(&env, fsops_cstr("gitdir/hooks/x"), fsops_cstr("x"), &r, &err));
    T_ASSERT(r.is_error);
    T_ASSERT(strstr(buf_cstr(&r.text), "/workspace/gitdir (a directory on the way)") != NULL);
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    T_OK(fsops_write(&env, fsops_cstr("a/b/c.txt"), fsops_cstr("x"), &r, &err));
    T_ASSERT(!r.is_error);
    fsops_result_cleanup(&r);
    fsops_result_init(&r);
    T_OK(fsops_read(&env, fsops_cstr("innocent"), 0, 10, &r, &err));
    T_ASSERT(!r.is_error);
    fsops_result_cleanup(&r);
    snprintf(cmd, sizeof(cmd), "%s/workspace/.git/config", root);
    struct buf b;
    buf_init(&b, 64);
    T_EQ_INT(tp_read_file(cmd, &b), 0);
    T_EQ_STR(buf_cstr(&b), "orig\n");
    buf_cleanup(&b);
    policy_free(pol);
    hostdir_provider_free(prov);
    hostdir_rmtree(root);
    free(root);
}

static void t_audit_lines_and_rotation(void)
{
    char dir[] = "/tmp/agentbox-audit-XXXXXX";
    T_ASSERT(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    struct audit *a = NULL;
    struct ab_err err;
    T_OK(audit_open(path, 600, 2, &a, &err));
    json_t *args = json_pack("{s:s,s:i}", "command", "echo secret-value", "timeout", 5);
    for (int i = 0; i < 10; i++) {
        struct audit_record r = {.time_ms = ab_wall_ms(), .principal = "alice", .session = "s1",
                                 .thread = "t1", .sandbox = "ab-1", .tool = "execute",
                                 .args = args, .result = "ok", .bytes = 12,
                                 .duration_us = 1500, .decision = "allow"};
        audit_write(a, &r);
    }
    audit_close(a);
    struct buf b;
    buf_init(&b, 1 << 16);
    T_OK(tp_read_file(path, &b));
    /* The arguments never appear, only their digest. */
    T_ASSERT(strstr(buf_cstr(&b), "secret-value") == NULL);
    T_ASSERT(strstr(buf_cstr(&b), "\"args_digest\":\"sha256:") != NULL);
    char *line = strtok(b.data, "\n");
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    T_ASSERT(o != NULL);
    T_EQ_STR(json_string_value(json_object_get(o, "principal")), "alice");
    T_EQ_STR(json_string_value(json_object_get(o, "tool")), "execute");
    T_EQ_INT(json_integer_value(json_object_get(o, "bytes")), 12);
    json_decref(o);
    /* Rotation kept two old files and none beyond. */
    char p1[300], p2[300], p3[300];
    snprintf(p1, sizeof(p1), "%s.1", path);
    snprintf(p2, sizeof(p2), "%s.2", path);
    snprintf(p3, sizeof(p3), "%s.3", path);
    T_ASSERT(access(p1, F_OK) == 0);
    T_ASSERT(access(p2, F_OK) == 0);
    T_ASSERT(access(p3, F_OK) != 0);
    /* Digest is canonical: key order does not matter. */
    json_t *a1 = json_pack("{s:i,s:i}", "a", 1, "b", 2), *a2 = json_pack("{s:i,s:i}", "b", 2, "a", 1);
    char d1[72], d2[72];
    audit_digest(a1, d1);
    audit_digest(a2, d2);
    T_EQ_STR(d1, d2);
    json_decref(a1);
    json_decref(a2);
    json_decref(args);
    buf_cleanup(&b);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    T_OK(system(cmd));
}

static const struct t_case cases[] = {T_CASE(t_paths), T_CASE(t_virtual_root),
                                      T_CASE(t_symlink_coverage), T_CASE(t_symlink_refusal),
                                      T_CASE(t_commands), T_CASE(t_audit_lines_and_rotation),
                                      {0}};
T_MAIN(cases)
