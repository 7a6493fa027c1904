/*
 * fuzzbox.h - a sandbox provider for the in-process fuzz targets (JSON-RPC and HTTP end to
 * end): every sandbox is a directory under a host root, served by the hostdir test provider
 * (openat2 RESOLVE_IN_ROOT, so nothing resolves outside it), with the lifecycle ops the
 * registry needs (create, attach, destroy, release, list, status) kept in memory.
 *
 * exec never runs anything: it reports the command back as output (in two chunks, through
 * the streaming callback), honours the output cap and the cancel token, and exits 0 (1 for a
 * command starting with "false"). A fuzzer must never reach a real shell on the host.
 */
#ifndef AB_TEST_FUZZBOX_H
#define AB_TEST_FUZZBOX_H

#include "core/sandbox.h"

/* root: an existing host directory that will hold one directory per sandbox. *out is new
 * (free with ops->free). */
ab_status fuzzbox_new(const char *root, struct sbx_provider **out, struct ab_err *err);

#endif
