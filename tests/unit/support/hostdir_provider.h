/*
 * hostdir_provider.h - a test-only sandbox provider over a host temporary directory.
 *
 * The sandbox's "/" is the directory given at creation: every path is resolved with
 * openat2(RESOLVE_IN_ROOT), so "..", absolute symlinks and symlink chains all stay inside it
 * (the provider refuses to escape its root by construction). There is no isolation at all:
 * it exists so core/fsops can be tested without namespaces or a cluster. Only the file
 * primitives work; lifecycle and exec ops return AB_UNSUPPORTED.
 *
 * Variants: with_walk / with_search select whether the provider implements the optional walk
 * and search ops or leaves them NULL, so the core fallbacks (sbx_walk/sbx_search) are
 * exercised too. hostdir_deny() makes every access under a path fail with AB_DENIED (tests
 * run as root, so permission bits cannot produce that error).
 */
#ifndef AB_TEST_HOSTDIR_PROVIDER_H
#define AB_TEST_HOSTDIR_PROVIDER_H

#include <stdbool.h>

#include "core/sandbox.h"

/* Create a provider and its single handle over root (an existing host directory). */
ab_status hostdir_provider_new(const char *root, bool with_walk, bool with_search,
                               struct sbx_provider **p, struct sbx_handle **h, struct ab_err *err);
/* Frees the handle too. */
void hostdir_provider_free(struct sbx_provider *p);

/* Deny reads, writes and listings of sandbox path prefix (and everything below it). */
void hostdir_deny(struct sbx_provider *p, const char *sandbox_prefix);

/* Make a fresh temporary directory (new, caller frees) and remove a tree (best effort). */
char *hostdir_mkdtemp(void);
void hostdir_rmtree(const char *host_dir);
/* Remove host_dir when the process exits (a failed assertion exit()s a case's process);
 * one directory per process, the latest call wins, NULL forgets it (once the test removed
 * the tree itself); the string must stay valid until then. */
void hostdir_rmtree_at_exit(const char *host_dir);

#endif
