/*
 * paths.h - normalisation of the paths agents pass to the file tools.
 *
 * Every file tool turns its path argument into an absolute, normalised path inside the
 * sandbox before anything touches it. The rules follow deepagents' validate_path()
 * (deepagents-contract.md section 2.0) with agentbox's decisions on top:
 *
 *   - a relative path is taken relative to the workspace root ("src/a.py" ->
 *     "/workspace/src/a.py"); "" and "." name the workspace root itself;
 *   - "//" and "." segments collapse, a trailing "/" is dropped;
 *   - a ".." segment (with "/" or "\" as separator) or a leading "~" is rejected with
 *     "Path traversal not allowed: {path}";
 *   - a Windows drive path ("C:\x", "c:/x") is rejected with the contract's text;
 *   - NUL bytes, paths longer than PATHS_MAX bytes and segments longer than
 *     PATHS_NAME_MAX bytes are rejected.
 *
 * Unlike deepagents, a backslash is kept as an ordinary file-name byte (POSIX sandboxes
 * have no other separator), so every file a listing shows can be addressed again.
 */
#ifndef AB_CORE_PATHS_H
#define AB_CORE_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

#define PATHS_MAX      4095 /* PATH_MAX (4096) less the terminating NUL */
#define PATHS_NAME_MAX 255  /* NAME_MAX */

/* Resolve path (len bytes, may contain NULs, which are rejected) against workspace (an
 * absolute path). On success returns AB_OK and *out (new) holds the absolute normalised
 * path. On a rejected path returns AB_INVAL and *why (new) holds the reason, worded as the
 * contract words it, without any "Error: " prefix. AB_NOMEM otherwise. */
ab_status paths_resolve(const char *path, size_t len, const char *workspace, char **out,
                        char **why);

/* ".." as a whole segment of p (len bytes), with "/" or "\" as separators (deepagents
 * checks the parts of PurePosixPath(path.replace("\\", "/"))); glob patterns use the same
 * rule. */
bool paths_has_dotdot(const char *p, size_t len);

/* dir + "/" + name, without doubling the "/" of the root. Returns new. */
char *paths_join(const char *dir, const char *name);

/* Pointer to the last segment of path (borrowed, inside path). */
const char *paths_basename(const char *path);

/* The file-name extension of path, lower-cased, including the dot (".png"), as Python's
 * PurePosixPath(path).suffix.lower() gives it; "" when there is none. Writes into out
 * (cap bytes); returns out. */
char *paths_suffix_lower(const char *path, char *out, size_t cap);

#endif
