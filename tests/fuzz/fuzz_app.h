/*
 * fuzz_app.h - the whole agentbox server, in-process, for the end-to-end fuzz targets
 * (JSON-RPC over the stdio transport, and Streamable HTTP): configuration, the fuzzbox
 * provider, registry, policy (every kind of rule), audit log (with rotation), metrics, the
 * MCP server with every agentbox tool, and the call observer: src/app.c's wiring, the
 * same the command line serves.
 */
#ifndef AB_TEST_FUZZ_APP_H
#define AB_TEST_FUZZ_APP_H

#include "app.h"
#include "config/config.h"

struct fuzz_app {
    char *root; /* host temporary directory: sandboxes and the audit log */
    struct config cfg;
    struct app base; /* the server, wired by app_init exactly as src/main.c serves it */
};

/* Build everything; extra_sets is a NULL-terminated list of "key", "value" pairs applied
 * after the fuzz defaults (may be NULL). Aborts on failure: a harness that cannot start is
 * a broken harness. */
void fuzz_app_init(struct fuzz_app *app, const char *const *extra_sets);

/* Delete every sandbox (between inputs, so each input starts from the same state). */
void fuzz_app_reset(struct fuzz_app *app);

void fuzz_app_cleanup(struct fuzz_app *app);

/* Check one message the server sent: a JSON-RPC 2.0 object (or a batch of them). */
void fuzz_check_message(const char *line, size_t len);

#endif
