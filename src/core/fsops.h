/*
 * fsops.h - the file tools (read, write, edit, ls, grep, glob, upload, download) built once
 * on the provider primitives of sandbox.h, so every provider shows agents the same texts.
 *
 * The texts are LangChain deepagents 0.7.8's ("era C", deepagents-contract.md): the
 * read gutter and pagination notices, literal grep with its output modes and notes, glob's
 * basename-anywhere rule, edit's uniqueness rule, the Python list repr of ls/glob, and the
 * error strings with the middleware's "Error: " prefixing (ls/read/glob add it, write/edit/
 * grep pass the backend text through; a rejected path is always "Error: ..."). Each result
 * also carries a structuredContent object matching the tool's outputSchema
 * (schemas/tools/<name>.json) and, for media, MCP content blocks.
 *
 * Deliberate differences from deepagents, each for the agent's benefit (see fsops.c):
 *   - tool and argument names are ours (read/path instead of read_file/file_path) wherever a
 *     text names them in a way that would mislead; contract texts are otherwise verbatim;
 *   - ls sorts entries by name (scandir order differs between providers and runs);
 *   - relative paths resolve under the workspace; grep/glob/ls default to the workspace;
 *   - an empty-or-whitespace *page* of a non-blank file is shown with its line numbers
 *     instead of the "File exists but has empty contents" reminder, which would be false;
 *   - invalid UTF-8 in text is shown as U+FFFD instead of failing the read.
 *
 * Texts of the contract that cannot arise here, so no golden test has them: grep's
 * "{error}\n\nPartial matches:\n..." (deepagents' grep helper failing halfway; our search
 * runs in the sandbox's helper and has no such half-failure), and the middleware timeouts
 * "Error: glob timed out after 10.0s. ..." / "Error: grep timed out after 35s. ..." (our
 * walks stop within their own budgets, 5 s and 30 s, and say so with the contract's
 * "search stopped early" notes, which the goldens do cover).
 *
 * Threading: the functions are reentrant; env is only read.
 */
#ifndef AB_CORE_FSOPS_H
#define AB_CORE_FSOPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/cancel.h"
#include "base/status.h"
#include "config/config.h"
#include "core/sandbox.h"

enum fsops_access {
    FSOPS_ACCESS_READ,  /* read, ls, grep, glob, download */
    FSOPS_ACCESS_WRITE, /* write, edit, upload */
};

/* Policy seam: called for every resolved absolute path before an operation touches it.
 * Returns NULL to allow, or a new (malloc'd) refusal text that becomes the tool text as is
 * (deepagents: "Error: permission denied for read on {path}"). For upload and download the
 * refusal is reported as the per-file error "permission_denied" and the text is freed. */
typedef char *(*fsops_check_path_cb)(void *arg, enum fsops_access access, const char *abs_path);

struct fsops_env {
    struct sbx_provider *p;
    struct sbx_handle *h;
    const char *workspace;          /* relative paths resolve under it; NULL = p->workspace,
                                       then "/workspace" */
    const struct cfg_tools *limits; /* NULL = the built-in defaults (same as config.c) */
    struct ab_cancel *cancel;       /* may be NULL */
    fsops_check_path_cb check_path; /* may be NULL: everything allowed */
    void *check_arg;
    /* Bit (1u << access): refuse a path when it, or a directory on the way to it, is a
     * symbolic link. Set by the policy for the accesses its path rules cover, since a rule
     * checked on the path's text does not hold for where a link leads. */
    unsigned no_symlinks;
};

/* A string argument with its length (JSON strings may contain NUL bytes). ptr == NULL means
 * the optional argument is absent. */
struct fsops_str {
    const char *ptr;
    size_t len;
};

#define FSOPS_NONE ((struct fsops_str){NULL, 0})
struct fsops_str fsops_cstr(const char *s); /* NUL-terminated s (NULL -> FSOPS_NONE) */

struct fsops_result {
    bool is_error;
    struct buf text;    /* the tool text exactly as deepagents shows it (valid UTF-8) */
    json_t *structured; /* new; matches the tool's outputSchema; NULL when is_error */
    json_t *content;    /* new array of MCP content blocks when the result is not plain text
                           (read of media: image/audio/resource; download: text + embedded
                           resources); NULL = one text block made from `text` */
    bool refused;       /* the policy seam (check_path / no_symlinks) refused a path; for
                           upload/download: at least one file (the audit log's decision) */
};

void fsops_result_init(struct fsops_result *res);
void fsops_result_cleanup(struct fsops_result *res);

/*
 * The operations. All return AB_OK when res holds a tool result, which may be a tool error
 * (res->is_error, with the contract's text). Another status means no tool text could be
 * made: AB_NOMEM, AB_CANCELLED (env->cancel fired), or a failure of the sandbox itself
 * (AB_SANDBOX, AB_K8S, AB_TIMEOUT, AB_BUSY, AB_UNSUPPORTED, AB_INTERNAL) described in err;
 * the tool layer reports those.
 */

/* read {path, offset=0, limit=100}: offset is 0-based; negative offset reads from line 1 with
 * a notice; limit <= 0 reads nothing (with the contract's reminder). */
#define FSOPS_READ_DEFAULT_LIMIT 100
ab_status fsops_read(const struct fsops_env *env, struct fsops_str path, int64_t offset,
                     int64_t limit, struct fsops_result *res, struct ab_err *err);

/* write {path, content}: create or overwrite, creating parent directories. */
ab_status fsops_write(const struct fsops_env *env, struct fsops_str path, struct fsops_str content,
                      struct fsops_result *res, struct ab_err *err);

/* edit {path, old_string, new_string, replace_all=false}. */
ab_status fsops_edit(const struct fsops_env *env, struct fsops_str path, struct fsops_str old_s,
                     struct fsops_str new_s, bool replace_all, struct fsops_result *res,
                     struct ab_err *err);

/* ls {path?}: path absent = the workspace root. */
ab_status fsops_ls(const struct fsops_env *env, struct fsops_str path, struct fsops_result *res,
                   struct ab_err *err);

enum fsops_grep_mode {
    FSOPS_GREP_FILES_WITH_MATCHES = 0, /* the default */
    FSOPS_GREP_CONTENT,
    FSOPS_GREP_COUNT,
};

/* grep {pattern, path?, glob?, output_mode?, max_count?}: literal search. max_count <= 0 =
 * the configured default (tools.grep.max_count). */
ab_status fsops_grep(const struct fsops_env *env, struct fsops_str pattern, struct fsops_str path,
                     struct fsops_str glob, enum fsops_grep_mode mode, int64_t max_count,
                     struct fsops_result *res, struct ab_err *err);

/* glob {pattern, path?}. */
ab_status fsops_glob(const struct fsops_env *env, struct fsops_str pattern, struct fsops_str path,
                     struct fsops_result *res, struct ab_err *err);

struct fsops_upload_file {
    struct fsops_str path;
    struct fsops_str content;        /* text content; or */
    struct fsops_str content_base64; /* base64 of the bytes (exactly one of the two) */
};

/* upload {files: [...]}: per-file results in input order; errors are codes. */
ab_status fsops_upload(const struct fsops_env *env, const struct fsops_upload_file *files, size_t n,
                       struct fsops_result *res, struct ab_err *err);

/* download {paths: [...]}: per-file results in input order, files as embedded resources. */
ab_status fsops_download(const struct fsops_env *env, const struct fsops_str *paths, size_t n,
                         struct fsops_result *res, struct ab_err *err);

/* Dispatch by tool name with a JSON arguments object (already validated against the input
 * schema; still checked defensively). Unknown keys such as "sandbox_id" are ignored.
 * AB_NOTFOUND when tool is not one of the eight file tools. */
ab_status fsops_call(const struct fsops_env *env, const char *tool, const json_t *args,
                     struct fsops_result *res, struct ab_err *err);

/* ---- execute / execute_python text (contract 2.7), shared by the tool layer ---- */

struct fsops_exec_outcome {
    const char *output; /* combined output as the provider returned it (any bytes) */
    size_t output_len;
    int exit_code;
    bool exit_code_known; /* false: no "[Command ... exit code N]" line */
    bool truncated;       /* output hit the cap */
    bool timed_out;       /* the timeout fired (exit_code is then 124) */
    int64_t timeout_s;    /* the effective timeout, for the timeout message */
    bool custom_timeout;  /* the call passed its own timeout */
};

/* The execute tool text: output, then "\n[Command succeeded with exit code 0]" or
 * "\n[Command failed with exit code N]", then "\n[Output was truncated due to size limits]".
 * On timeout the LocalShellBackend message follows the partial output. structured is
 * {output, exit_code, truncated, timed_out}. Never an error result. */
ab_status fsops_format_execute(const struct fsops_exec_outcome *o, struct fsops_result *res);

/* Validate a per-call timeout argument: NULL when acceptable, else the contract's error text
 * (new): "Error: timeout must be non-negative, got {t}." or "Error: timeout {t}s exceeds
 * maximum allowed ({max}s)." */
char *fsops_execute_timeout_error(int64_t timeout_s, int64_t max_timeout_s);

#endif
