/*
 * fsops_int.h - helpers shared by the fsops*.c files (module-internal, prefix fsops__).
 */
#ifndef AB_CORE_FSOPS_INT_H
#define AB_CORE_FSOPS_INT_H

#include "core/fsops.h"

/* deepagents' tool result budget: tool_token_limit_before_evict (20000 tokens) times
 * NUM_CHARS_PER_TOKEN (4), in characters (code points). */
#define FSOPS_TOOL_CHARS 80000
#define FSOPS_TEXT_MAX   (64u * 1024 * 1024) /* hard cap of any tool text buffer */

/* truncate_if_too_long()'s marker (backends/utils.py TRUNCATION_GUIDANCE). */
#define FSOPS_TRUNCATION_GUIDANCE                                                                  \
    "... [results truncated, try being more specific with your parameters]"

const struct cfg_tools *fsops__limits(const struct fsops_env *env);
/* env->workspace, else the provider's workspace, else "/workspace". */
const char *fsops__workspace(const struct fsops_env *env);

/* Statuses that mean "the sandbox or the server failed", not "the file op failed". */
bool fsops__infra(ab_status rc);

/* Set res to an error with a printf-style text. Returns AB_OK or AB_NOMEM/AB_LIMIT. */
ab_status fsops__fail(struct fsops_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Resolve a path argument. absent (ptr NULL) means the workspace when absent_ok, otherwise
 * it is rejected like an empty string would not be: callers pass absent_ok for ls/grep/glob.
 * Returns AB_OK with *abs set (new), or AB_OK with *abs NULL and res filled with the
 * "Error: ..." text, or AB_NOMEM. */
ab_status fsops__resolve(const struct fsops_env *env, struct fsops_str path, bool absent_ok,
                         char **abs, struct fsops_result *res);

/* The policy seam. Returns AB_OK with *allowed set; when refused, res holds the refusal. */
ab_status fsops__check(const struct fsops_env *env, enum fsops_access access, const char *abs,
                       bool *allowed, struct fsops_result *res);
/* fsops__resolve, then fsops__check: AB_OK with *abs set (new) when the operation may go
 * on; AB_OK with *abs NULL when res holds the path error or the refusal; or AB_NOMEM. */
ab_status fsops__open(const struct fsops_env *env, struct fsops_str path, bool absent_ok,
                      enum fsops_access access, char **abs, struct fsops_result *res);
/* Same, for per-file ops: true when allowed (the refusal text is discarded). */
bool fsops__allowed_quiet(const struct fsops_env *env, enum fsops_access access, const char *abs,
                          struct fsops_result *res);

/* The provider's stat of abs (perr cleared first), with a dangling symlink (target type
 * NONE) reported as AB_NOTFOUND. */
ab_status fsops__stat(const struct fsops_env *env, const char *abs, struct sbx_stat *st,
                      struct ab_err *perr);

/* When src is a sandbox or server failure (fsops__infra): copy its detail perr into err
 * (when err is not NULL) and return src, for the caller to return. Otherwise AB_OK: the
 * caller reports src to the model in res. */
ab_status fsops__infra_pass(ab_status src, const struct ab_err *perr, struct ab_err *err);

/* Append s with each invalid UTF-8 byte replaced by U+FFFD. */
ab_status fsops__utf8_sanitize(struct buf *out, const char *s, size_t len);
/* New JSON string from arbitrary bytes (sanitized), NULL on NOMEM. */
json_t *fsops__json_str(const char *s, size_t len);
/* Code points of valid UTF-8 s. */
size_t fsops__cp_len(const char *s, size_t len);
/* Bytes taken by the first n code points of valid UTF-8 s (at most len). */
size_t fsops__cp_prefix(const char *s, size_t len, size_t n);
/* Python str.isspace() for every character of valid UTF-8 s (true for ""). */
bool fsops__is_blank(const char *s, size_t len);

/* truncate_if_too_long(str): more than FSOPS_TOOL_CHARS characters -> the first
 * FSOPS_TOOL_CHARS + "\n" + guidance. text must be valid UTF-8. */
ab_status fsops__truncate_text(struct buf *text);

/* _format_file_paths(): "No files found", or str(truncate_if_too_long(paths)). */
ab_status fsops__format_paths(struct buf *out, char *const *paths, size_t n);

/* bytes-wise comparison of C strings for qsort over char*. */
int fsops__strptr_cmp(const void *a, const void *b);

/* File kinds for read's media handling (backends/utils.py _EXTENSION_TO_FILE_TYPE). */
enum fsops_ftype { FSOPS_FT_TEXT, FSOPS_FT_IMAGE, FSOPS_FT_AUDIO, FSOPS_FT_VIDEO, FSOPS_FT_FILE };
enum fsops_ftype fsops__file_type(const char *path);
const char *fsops__ftype_name(enum fsops_ftype t);
/* MIME type from the extension, or NULL when unknown. */
const char *fsops__mime_from_ext(const char *path);
/* "file://" + percent-encoded path (new). */
char *fsops__file_uri(const char *path);

/* Map a provider status to deepagents' FileOperationError code, or NULL when none fits. */
const char *fsops__file_error_code(ab_status rc);

#endif
