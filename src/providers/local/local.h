/*
 * local.h - the local Linux-namespace sandbox provider (the embedded default).
 *
 * Each sandbox is a long-lived, single-threaded helper process that is PID 1 of its own
 * PID namespace, with its own mount, network, IPC, UTS and cgroup namespaces (and a user
 * namespace when the server is not root, or when local.user_namespace is "always"). The
 * helper forks the commands and serves the file primitives over a socketpair; see
 * helper.c for the sandbox's view of the filesystem and serve.c for the wire protocol.
 *
 * Helpers are not forked from the (multi-threaded) server: the provider starts one
 * single-threaded "spawner" process by exec'ing the agentbox binary with the hidden
 * subcommand `__sandbox-helper`, and that process clone()s each helper. So a helper starts
 * without an exec and without the dynamic loader, shares its text pages with the spawner,
 * and never inherits the server's environment or descriptors.
 *
 * State lives under <state_dir> (cfg_state_dir()): sandboxes/<name>/{meta.json,workspace/}.
 * Workspaces survive a server restart; running processes do not.
 */
#ifndef AB_PROVIDERS_LOCAL_LOCAL_H
#define AB_PROVIDERS_LOCAL_LOCAL_H

#include "base/status.h"
#include "config/config.h"
#include "core/sandbox.h"

/* The hidden subcommand that runs the spawner ("zygote") process. main() dispatches
 *   if (argc > 1 && strcmp(argv[1], SBX_LOCAL_HELPER_ARG) == 0)
 *       return sbx_local_helper_main(argc, argv);
 * before doing anything else (no threads, no config, no logging set up yet). */
#define SBX_LOCAL_HELPER_ARG "__sandbox-helper"

int sbx_local_helper_main(int argc, char **argv);

/* Which binary to exec as the spawner: the path set here, else $AGENTBOX_BIN, else
 * /proc/self/exe. Unit tests (separate executables) point it at the built agentbox binary.
 * path is copied; NULL restores the default. Call before sbx_local_new(). */
void sbx_local_set_helper_binary(const char *path);

/* Create the local provider from cfg (borrowed; the values are copied). Takes an exclusive
 * lock on the state directory, removes what a crashed server left half-done, and runs a
 * preflight that creates and destroys one real sandbox: when namespaces (or the mounts a
 * sandbox needs) are unusable it returns AB_UNSUPPORTED with a message naming the exact
 * cause and the remedy, and the provider is not created. It never runs commands
 * unsandboxed. *out is new (free with (*out)->ops->free). */
ab_status sbx_local_new(const struct config *cfg, struct sbx_provider **out, struct ab_err *err);

#endif
