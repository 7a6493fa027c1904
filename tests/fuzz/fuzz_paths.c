/*
 * fuzz_paths.c - path normalisation (core/paths) and the policy checks (core/policy) that
 * every file tool applies to the normalised path, plus the command rules.
 *
 * Input: one selector byte, then the path (raw bytes, NULs included). The selector picks the
 * workspace and one of the policies below. Beyond "no crash, no leak", the target checks
 * the properties the rest of agentbox relies on:
 *   - a resolved path is absolute, has no empty, "." or ".." segment, no trailing '/', no
 *     NUL, fits PATHS_MAX, and resolving it again gives the same path (idempotence);
 *   - a rejected path comes with a reason;
 *   - under a virtual root, a path the policy lets through lies under the root;
 *   - a write the policy allows is never under a denied prefix and, when write prefixes
 *     are set, always under one of them;
 *   - every refusal starts with "Error: " and names what is allowed.
 */
#include <string.h>

#include "base/util.h"
#include "config/config.h"
#include "core/paths.h"
#include "core/policy.h"
#include "fuzz.h"

static const char *const workspaces[] = {"/workspace", "/", "/app", "/home/user/work"};

#define NPOLICIES 3
static struct policy *policies[NPOLICIES];

static struct policy *make_policy(const char *const *sets)
{
    struct config cfg;
    struct ab_err err;
    if (cfg_init_defaults(&cfg, &err))
        abort();
    for (size_t i = 0; sets[i]; i += 2)
        if (cfg_set(&cfg, sets[i], sets[i + 1], &err)) {
            fprintf(stderr, "fuzz_paths: %s: %s\n", sets[i], err.msg);
            abort();
        }
    struct policy *p = NULL;
    if (policy_new(&cfg, &p, &err)) {
        fprintf(stderr, "fuzz_paths: policy: %s\n", err.msg);
        abort();
    }
    cfg_cleanup(&cfg);
    return p;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char *const none[] = {NULL};
    static const char *const rooted[] = {
        "policy.virtual_root", "/workspace",
        "policy.deny_prefixes", "/workspace/.git,/workspace/secrets/",
        "policy.deny_commands", "rm -rf /,*curl*|*sh*,[",
        "policy.ask_commands", "git push,sudo *",
        NULL};
    static const char *const prefixes[] = {
        "policy.allow_write_prefixes", "/workspace/out,/tmp,/",
        "policy.deny_prefixes", "/etc,/workspace/out/locked",
        NULL};
    policies[0] = make_policy(none);
    policies[1] = make_policy(rooted);
    policies[2] = make_policy(prefixes);
    return 0;
}

static bool under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (n == 1 && prefix[0] == '/')
        return true;
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static void check_normalised(const char *p, const char *input, size_t len)
{
    size_t n = strlen(p);
    FUZZ_CHECK(p[0] == '/', "'%s' is not absolute", p);
    FUZZ_CHECK(n <= PATHS_MAX, "%zu bytes", n);
    FUZZ_CHECK(n == 1 || p[n - 1] != '/', "'%s' ends with '/'", p);
    FUZZ_CHECK(!strstr(p, "//"), "'%s' has an empty segment", p);
    FUZZ_CHECK(!strstr(p, "/./") && !ab_ends_with(p, "/."), "'%s' has a '.' segment", p);
    FUZZ_CHECK(!strstr(p, "/../") && !ab_ends_with(p, "/.."), "'%s' has a '..' segment", p);
    FUZZ_CHECK(!memchr(input, '\0', len), "an input with a NUL byte was accepted");
}

static void check_refusal(const char *text)
{
    FUZZ_CHECK(ab_starts_with(text, "Error: "), "refusal '%s'", text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    const char *ws = workspaces[sel % 4];
    size_t pi = (sel / 4) % NPOLICIES;
    const struct policy *pol = policies[pi];
    const char *path = (const char *)data + 1;
    size_t len = size - 1;

    char *out = NULL, *why = NULL;
    ab_status rc = paths_resolve(path, len, ws, &out, &why);
    if (rc == AB_OK) {
        check_normalised(out, path, len);
        if (len > 0 && path[0] != '/')
            FUZZ_CHECK(under(out, ws), "relative '%.*s' left the workspace: '%s'", (int)len,
                       path, out);
        char *again = NULL, *why2 = NULL;
        FUZZ_CHECK(paths_resolve(out, strlen(out), "/elsewhere", &again, &why2) == AB_OK,
                   "'%s' does not resolve again: %s", out, why2 ? why2 : "?");
        FUZZ_CHECK(strcmp(again, out) == 0, "'%s' -> '%s'", out, again);
        free(again);

        char *r_read = policy_check_path(pol, POLICY_READ, out);
        char *r_write = policy_check_path(pol, POLICY_WRITE, out);
        if (r_read)
            check_refusal(r_read);
        if (r_write)
            check_refusal(r_write);
        FUZZ_CHECK(!r_read || r_write, "'%s' may be written but not read", out);
        if (pi == 1) {
            if (!r_read)
                FUZZ_CHECK(under(out, "/workspace"), "'%s' escaped the virtual root", out);
            else
                FUZZ_CHECK(!under(out, "/workspace"), "'%s' is under the root: %s", out,
                           r_read);
            if (!r_write)
                FUZZ_CHECK(!under(out, "/workspace/.git") && !under(out, "/workspace/secrets"),
                           "write to '%s' allowed", out);
        }
        if (pi == 2 && !r_write)
            FUZZ_CHECK(!under(out, "/etc") && !under(out, "/workspace/out/locked"),
                       "write to '%s' allowed", out);
        free(r_read);
        free(r_write);
        /* The basename and suffix helpers on every accepted path. */
        const char *base = paths_basename(out);
        FUZZ_CHECK(base >= out && base <= out + strlen(out), "basename outside the path");
        char suffix[64];
        paths_suffix_lower(out, suffix, sizeof(suffix));
        char *joined = paths_join(out, "x");
        FUZZ_CHECK(joined && ab_ends_with(joined, "/x"), "join");
        free(joined);
    } else {
        FUZZ_CHECK(rc == AB_INVAL || rc == AB_NOMEM, "status %d", rc);
        FUZZ_CHECK(rc != AB_INVAL || (why && *why), "a rejection without a reason");
    }
    free(out);
    free(why);

    /* The same bytes as a command (execute) and as program text (execute_python). */
    char *text = NULL;
    enum policy_decision d = policy_check_command(pol, path, len, &text);
    if (d == POLICY_DENY)
        FUZZ_CHECK(text && ab_starts_with(text, "Error: "), "deny without a refusal");
    else if (d == POLICY_ASK)
        FUZZ_CHECK(text && *text, "ask without a pattern");
    else
        FUZZ_CHECK(!text, "allow with a text");
    if (d == POLICY_ASK) {
        char *r = policy_ask_refusal(text, "the user declined");
        FUZZ_CHECK(r && ab_starts_with(r, "Error: "), "ask refusal");
        free(r);
    }
    /* A command containing a denied literal is always refused (substring rules see past
     * NUL bytes too). */
    if (pi == 1 && memmem(path, len, "rm -rf /", 8))
        FUZZ_CHECK(d == POLICY_DENY, "'rm -rf /' not denied");
    free(text);
    return 0;
}
