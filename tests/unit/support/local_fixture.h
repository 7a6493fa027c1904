/*
 * local_fixture.h - test support: the local provider in a fresh state directory, driven
 * directly through its ops (no MCP), for the tests that prove its isolation and semantics
 * (tests/unit/test_local*.c, tests/security/test_adversarial.c).
 *
 * Every helper fails the case (T_FAIL, which exits its process) on an unexpected error. A
 * case that exits early still frees the provider (stopping its sandboxes and their cgroups)
 * and removes the state directory: lfx_config arms that at exit, lfx_done disarms it.
 */
#ifndef AB_TEST_LOCAL_FIXTURE_H
#define AB_TEST_LOCAL_FIXTURE_H

#include <stdint.h>

#include "config/config.h"
#include "core/policy.h"
#include "core/sandbox.h"

struct lfx {
    struct config cfg;
    char dir[64];           /* the state directory: /tmp/ab-<tag>-XXXXXX */
    struct sbx_provider *p; /* between lfx_start and lfx_stop */
    struct policy *pol;     /* built from cfg by lfx_start, as the tools would */
    int64_t run_timeout_ms; /* lfx_run's timeout per command; lfx_config sets 60 s */
};

/* Defaults plus state_dir in a new /tmp/ab-<tag>-XXXXXX; set more keys with lfx_set, then
 * lfx_start. */
void lfx_config(struct lfx *f, const char *tag);
void lfx_set(struct lfx *f, const char *key, const char *val);
/* The provider (its sandbox helper is helper_bin, or $AGENTBOX_BIN when NULL) and the
 * policy. */
void lfx_start(struct lfx *f, const char *helper_bin);
/* Free the provider (and its sandboxes' processes); lfx_start may follow. */
void lfx_stop(struct lfx *f);
/* Stop, remove the state directory, free the configuration. */
void lfx_done(struct lfx *f);

/* Create sandbox `name` (principal "") and return its handle; destroy it. */
struct sbx_handle *lfx_create(struct lfx *f, const char *name);
void lfx_destroy(struct lfx *f, struct sbx_handle *h);

/* Run a shell command: returns its exit code, its output in *out (new; out may be NULL) and,
 * when keep is not NULL, the whole result (the caller cleans it up). */
int lfx_run_ex(struct lfx *f, struct sbx_handle *h, const char *cmd, int64_t timeout_ms, char **out,
               struct sbx_exec_result *keep);
/* lfx_run_ex with f->run_timeout_ms. */
int lfx_run(struct lfx *f, struct sbx_handle *h, const char *cmd, char **out);
/* Run and require exit 0; returns the output (new). */
char *lfx_sh(struct lfx *f, struct sbx_handle *h, const char *cmd);
/* Run, require exit 0 and exactly this output. */
void lfx_expect_sh(struct lfx *f, struct sbx_handle *h, const char *cmd, const char *want);

#endif
