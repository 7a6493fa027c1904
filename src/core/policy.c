/*
 * policy.c - see policy.h.
 *
 * Prefix rules compare whole path segments ("/workspace" covers "/workspace/a", not
 * "/workspace2"). Command patterns are literal substrings unless they contain a glob
 * metacharacter, in which case they are matched against the whole command with fnmatch(3)
 * (so "rm -rf /tmp" and "*git push*" both work as written). Matching is on the raw text; a
 * determined agent can always obfuscate a command, which is why the sandbox, not this list,
 * is the boundary.
 */
#include "core/policy.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"

struct list {
    char **v;
    size_t n;
};

struct policy {
    struct list allow_write;
    struct list deny;
    char *root;
    struct list deny_cmds;
    struct list ask_cmds;
};

static void list_free(struct list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* Copy prefixes, normalised: absolute, no trailing '/' (except "/" itself). */
static ab_status copy_prefixes(struct list *dst, const struct cfg_strlist *src, const char *key,
                               struct ab_err *err)
{
    dst->v = calloc(src->n + 1, sizeof(char *));
    if (!dst->v)
        return AB_NOMEM;
    for (size_t i = 0; i < src->n; i++) {
        const char *s = src->v[i];
        if (s[0] != '/' || strstr(s, "/../") || ab_ends_with(s, "/.."))
            return ab_err_set(err, AB_INVAL, "policy: %s entry '%s' must be an absolute path "
                                             "without '..'", key, s);
        size_t len = strlen(s);
        while (len > 1 && s[len - 1] == '/')
            len--;
        dst->v[dst->n++] = ab_strndup(s, len);
    }
    return AB_OK;
}

static ab_status copy_patterns(struct list *dst, const struct cfg_strlist *src)
{
    dst->v = calloc(src->n + 1, sizeof(char *));
    if (!dst->v)
        return AB_NOMEM;
    for (size_t i = 0; i < src->n; i++)
        if (src->v[i][0])
            dst->v[dst->n++] = ab_strdup(src->v[i]);
    return AB_OK;
}

ab_status policy_new(const struct config *cfg, struct policy **out, struct ab_err *err)
{
    struct policy *p = calloc(1, sizeof(*p));
    if (!p)
        return AB_NOMEM;
    const struct cfg_policy *c = &cfg->policy;
    ab_status rc;
    if ((rc = copy_prefixes(&p->allow_write, &c->allow_write_prefixes,
                            "allow_write_prefixes", err)) ||
        (rc = copy_prefixes(&p->deny, &c->deny_prefixes, "deny_prefixes", err)) ||
        (rc = copy_patterns(&p->deny_cmds, &c->deny_commands)) ||
        (rc = copy_patterns(&p->ask_cmds, &c->ask_commands)))
        goto fail;
    if (c->virtual_root && *c->virtual_root) {
        struct cfg_strlist one = {.v = (char *[]){c->virtual_root, NULL}, .n = 1};
        struct list tmp = {0};
        if ((rc = copy_prefixes(&tmp, &one, "virtual_root", err))) {
            list_free(&tmp);
            goto fail;
        }
        p->root = tmp.v[0];
        free(tmp.v);
    }
    *out = p;
    return AB_OK;
fail:
    policy_free(p);
    return rc;
}

void policy_free(struct policy *p)
{
    if (!p)
        return;
    list_free(&p->allow_write);
    list_free(&p->deny);
    list_free(&p->deny_cmds);
    list_free(&p->ask_cmds);
    free(p->root);
    free(p);
}

bool policy_active(const struct policy *p)
{
    return p && (p->allow_write.n || p->deny.n || p->root || p->deny_cmds.n || p->ask_cmds.n);
}

static bool under(const char *path, const char *prefix)
{
    if (strcmp(prefix, "/") == 0)
        return true;
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static void append_list(struct buf *b, const struct list *l)
{
    for (size_t i = 0; i < l->n; i++)
        buf_printf(b, "%s%s", i ? ", " : "", l->v[i]);
}

char *policy_check_path(const struct policy *p, enum policy_access access, const char *path)
{
    if (!p)
        return NULL;
    struct buf b;
    buf_init(&b, 8192);
    if (p->root && !under(path, p->root)) {
        buf_printf(&b, "Error: Path '%s' is outside the allowed root %s. Only paths under %s are "
                       "allowed; relative paths resolve inside the workspace.",
                   path, p->root, p->root);
        return buf_steal(&b, NULL);
    }
    if (access != POLICY_WRITE)
        return NULL;
    for (size_t i = 0; i < p->deny.n; i++) {
        if (under(path, p->deny.v[i])) {
            buf_printf(&b, "Error: permission denied for write on %s: the policy forbids "
                           "changing anything under %s.",
                       path, p->deny.v[i]);
            if (p->allow_write.n) {
                buf_append_str(&b, " Writes are allowed under: ");
                append_list(&b, &p->allow_write);
                buf_append_str(&b, " (except under: ");
                append_list(&b, &p->deny);
                buf_append_str(&b, ").");
            } else {
                buf_append_str(&b, " Write somewhere else.");
            }
            return buf_steal(&b, NULL);
        }
    }
    if (p->allow_write.n) {
        for (size_t i = 0; i < p->allow_write.n; i++)
            if (under(path, p->allow_write.v[i])) {
                buf_cleanup(&b);
                return NULL;
            }
        buf_printf(&b, "Error: permission denied for write on %s: writes are allowed only under: ",
                   path);
        append_list(&b, &p->allow_write);
        buf_append_str(&b, ".");
        return buf_steal(&b, NULL);
    }
    buf_cleanup(&b);
    return NULL;
}

bool policy_refuses_symlinks(const struct policy *p, enum policy_access access)
{
    if (!p)
        return false;
    if (access == POLICY_WRITE)
        return p->root || p->allow_write.n || p->deny.n;
    return p->root != NULL;
}

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* cstr: the command as a C string (see policy_check_command), for fnmatch. */
static bool pattern_matches(const char *pattern, const char *text, size_t len, const char *cstr)
{
    if (has_glob(pattern)) {
        /* fnmatch needs a C string: a command with an embedded NUL matches on its prefix,
         * and the NUL itself never reaches a shell (execute refuses it). */
        return fnmatch(pattern, cstr, 0) == 0;
    }
    size_t pl = strlen(pattern);
    return pl <= len && memmem(text, len, pattern, pl) != NULL;
}

enum policy_decision policy_check_command(const struct policy *p, const char *command, size_t len,
                                          char **text)
{
    *text = NULL;
    if (!p || (!p->deny_cmds.n && !p->ask_cmds.n))
        return POLICY_ALLOW;
    /* command is (pointer, length): it need not be NUL-terminated, and glob patterns need
     * a terminated copy (found by fuzzing: fnmatch read past the end of the bytes). */
    char *cstr = ab_strndup(command, len);
    if (!cstr) {
        *text = ab_strdup("Error: out of memory while checking the command policy; retry.");
        return POLICY_DENY;
    }
    enum policy_decision d = POLICY_ALLOW;
    for (size_t i = 0; i < p->deny_cmds.n; i++) {
        if (pattern_matches(p->deny_cmds.v[i], command, len, cstr)) {
            struct buf b;
            buf_init(&b, 8192);
            buf_printf(&b, "Error: the command was refused by policy: it matches the denied "
                           "pattern '%s'. Commands containing any of these are not allowed: ",
                       p->deny_cmds.v[i]);
            for (size_t k = 0; k < p->deny_cmds.n; k++)
                buf_printf(&b, "%s'%s'", k ? ", " : "", p->deny_cmds.v[k]);
            buf_append_str(&b, ". Everything else is allowed; achieve the goal another way.");
            *text = buf_steal(&b, NULL);
            d = POLICY_DENY;
            goto out;
        }
    }
    for (size_t i = 0; i < p->ask_cmds.n; i++) {
        if (pattern_matches(p->ask_cmds.v[i], command, len, cstr)) {
            *text = ab_strdup(p->ask_cmds.v[i]);
            d = POLICY_ASK;
            goto out;
        }
    }
out:
    free(cstr);
    return d;
}

char *policy_ask_refusal(const char *pattern, const char *why)
{
    return ab_asprintf("Error: the command was not run: commands matching '%s' need the user's "
                       "approval, and %s. Do not retry it; continue without it or ask the user "
                       "to run it themselves.",
                       pattern, why);
}
