/*
 * policy.h - the one place where agentbox decides what an agent may do beyond what the
 * sandbox itself allows: path rules for the file tools (allowed write prefixes, denied
 * prefixes, a virtual root) and command rules for execute/execute_python (denied patterns,
 * patterns that need the user's approval). Applied identically on every provider.
 *
 * The sandbox is the security boundary; these rules are guard rails an operator sets for a
 * deployment (keep agents out of .git, never `rm -rf /workspace`, ask before `git push`).
 * Every refusal text tells the model what is allowed instead, so it can adapt.
 */
#ifndef AB_CORE_POLICY_H
#define AB_CORE_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"
#include "config/config.h"

struct policy;

enum policy_access {
    POLICY_READ,
    POLICY_WRITE,
};

enum policy_decision {
    POLICY_ALLOW = 0,
    POLICY_DENY,
    POLICY_ASK,
};

/* Build from cfg->policy (values copied). Patterns are validated; *out is new. */
ab_status policy_new(const struct config *cfg, struct policy **out, struct ab_err *err);
void policy_free(struct policy *p);

/* true when any rule is configured. */
bool policy_active(const struct policy *p);

/* Check one absolute, normalised path. Returns NULL when allowed, else the refusal text
 * (new), starting with "Error: ". */
char *policy_check_path(const struct policy *p, enum policy_access access, const char *abs_path);

/* Check a command (execute) or program text (execute_python). On POLICY_DENY *text is the
 * refusal (new); on POLICY_ASK *text is the pattern that requires approval (new). */
enum policy_decision policy_check_command(const struct policy *p, const char *command, size_t len,
                                          char **text);

/* Whether the path rules cover this access (write: any path rule; read: a virtual root),
 * in which case the file tools refuse paths that go through a symbolic link: the rules are
 * checked on the path as given, and a link inside the sandbox could point it anywhere
 * (tools set fsops_env.no_symlinks from this). */
bool policy_refuses_symlinks(const struct policy *p, enum policy_access access);

/* The refusal for an ask-rule command the user declined or could not be asked about. */
char *policy_ask_refusal(const char *pattern, const char *why);

#endif
