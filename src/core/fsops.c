/*
 * fsops.c - shared machinery of the file tools, plus ls, write, upload, download, the
 * execute text formatter and the JSON dispatcher. read/edit live in fsops_read.c, grep/glob
 * in fsops_search.c.
 *
 * Design: each operation (1) resolves its path with paths_resolve (workspace-relative,
 * traversal rejected), (2) asks the policy seam, (3) calls provider primitives through the
 * sandbox.h vtable (or the core walk/search fallbacks), and (4) renders the deepagents 0.7.8
 * text and a structuredContent object from the same data. Provider failures that are about
 * the file (not found, denied, is a directory) become the contract's texts; failures of the
 * sandbox itself are returned as a status for the tool layer, so a dead sandbox never looks
 * like a missing file.
 *
 * Deviations from deepagents, all deliberate:
 *   - ls sorts its entries (deepagents shows scandir order, which differs between providers
 *     and would make the same workspace list differently on local and Kubernetes).
 *   - upload/download have no deepagents tool text; theirs is one line per file, and the
 *     per-file error codes are the protocol's four plus "invalid_content" (bad or ambiguous
 *     content arguments), "file_too_large" (over tools.upload/download.max_bytes),
 *     "not_a_file" (a fifo or device) and "response_too_large" (download total budget).
 *   - execute on timeout keeps the output produced before the timeout, then the
 *     LocalShellBackend message.
 * Rejected: building these on exec() of shell/Python helpers the way BaseSandbox does; the
 * primitives are cheaper, need nothing in the sandbox image, and cannot be injected into.
 */
#include "core/fsops_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "core/paths.h"
#include "core/pyrepr.h"

/* Same values as the defaults in config.c's key table. */
static const struct cfg_tools default_limits = {
    .execute_timeout_s = 300,
    .execute_max_timeout_s = 3600,
    .execute_max_output_bytes = 1024 * 1024,
    .read_max_bytes = 64u * 1024 * 1024,
    .read_max_binary_bytes = 500 * 1024,
    .upload_max_bytes = 64u * 1024 * 1024,
    .download_max_bytes = 64u * 1024 * 1024,
    .grep_max_count = 1000,
    .glob_max_matches = 10000,
};

/* A download call returns at most this many times tools.download.max_bytes in total. */
#define FSOPS_DOWNLOAD_TOTAL_FACTOR 4

struct fsops_str fsops_cstr(const char *s)
{
    return s ? (struct fsops_str){s, strlen(s)} : FSOPS_NONE;
}

void fsops_result_init(struct fsops_result *res)
{
    memset(res, 0, sizeof(*res));
    buf_init(&res->text, FSOPS_TEXT_MAX);
}

void fsops_result_cleanup(struct fsops_result *res)
{
    if (!res)
        return;
    buf_cleanup(&res->text);
    json_decref(res->structured);
    json_decref(res->content);
    res->structured = NULL;
    res->content = NULL;
}

const char *fsops__workspace(const struct fsops_env *env)
{
    if (env->workspace)
        return env->workspace;
    if (env->p && env->p->workspace)
        return env->p->workspace;
    return "/workspace";
}

const struct cfg_tools *fsops__limits(const struct fsops_env *env)
{
    return env->limits ? env->limits : &default_limits;
}

bool fsops__infra(ab_status rc)
{
    switch (rc) {
    case AB_NOMEM:
    case AB_CANCELLED:
    case AB_SANDBOX:
    case AB_K8S:
    case AB_TIMEOUT:
    case AB_BUSY:
    case AB_UNSUPPORTED:
    case AB_INTERNAL:
    case AB_PROTO:
        return true;
    case AB_OK:
    case AB_INVAL:
    case AB_IO:
    case AB_LIMIT:
    case AB_NOTFOUND:
    case AB_EXISTS:
    case AB_DENIED:
    case AB_ISDIR:
    case AB_NOTDIR:
    case AB_STATUS_COUNT:
        return false;
    }
    return false;
}

ab_status fsops__fail(struct fsops_result *res, const char *fmt, ...)
{
    buf_reset(&res->text);
    json_decref(res->structured);
    res->structured = NULL;
    json_decref(res->content);
    res->content = NULL;
    res->is_error = true;
    va_list ap;
    va_start(ap, fmt);
    ab_status rc = buf_vprintf(&res->text, fmt, ap);
    va_end(ap);
    return rc;
}

ab_status fsops__resolve(const struct fsops_env *env, struct fsops_str path, bool absent_ok,
                         char **abs, struct fsops_result *res)
{
    *abs = NULL;
    const char *ws = fsops__workspace(env);
    if (!path.ptr) {
        if (!absent_ok)
            return fsops__fail(res, "Error: a path is required");
        path = fsops_cstr(".");
    }
    char *why = NULL;
    ab_status rc = paths_resolve(path.ptr, path.len, ws, abs, &why);
    if (rc == AB_INVAL) {
        /* why quotes the argument, which came from JSON and so is valid UTF-8 */
        rc = fsops__fail(res, "Error: %s", why);
        free(why);
        return rc;
    }
    return rc;
}

/* With env->no_symlinks set for this access: the refusal (new) when abs, or a directory on
 * the way to it, is a symbolic link inside the sandbox; NULL otherwise. Components are
 * lstat'ed from the root down; the first one that does not exist ends the walk (what a
 * write creates is never a link). A process in the same sandbox could still swap a
 * component between this check and the operation; that race stays inside the sandbox's own
 * view, which is the boundary (the rules are guard rails: policy.h). */
static char *symlink_refusal(const struct fsops_env *env, enum fsops_access access,
                             const char *abs)
{
    if (!(env->no_symlinks & (1u << access)))
        return NULL;
    size_t len = strlen(abs);
    char *prefix = malloc(len + 1);
    if (!prefix)
        return ab_strdup("Error: out of memory");
    char *refusal = NULL;
    for (size_t i = 1; i <= len && !refusal; i++) {
        if (i < len && abs[i] != '/')
            continue;
        memcpy(prefix, abs, i);
        prefix[i] = '\0';
        struct sbx_stat st;
        struct ab_err err;
        ab_err_clear(&err);
        if (env->p->ops->stat(env->p, env->h, prefix, &st, &err) != AB_OK)
            break; /* absent (or unreadable): the operation itself reports it */
        if (st.type == SBX_FT_SYMLINK)
            refusal = ab_asprintf(
                "Error: %s on %s refused: %s%s is a symbolic link, and this server's path "
                "policy applies to real paths only. Use the path the link points to (execute "
                "`readlink -f %s` shows it).",
                access == FSOPS_ACCESS_WRITE ? "write" : "read", abs, prefix,
                i < len ? " (a directory on the way)" : "", prefix);
    }
    free(prefix);
    return refusal;
}

ab_status fsops__check(const struct fsops_env *env, enum fsops_access access, const char *abs,
                       bool *allowed, struct fsops_result *res)
{
    *allowed = true;
    if (!env->check_path && !env->no_symlinks)
        return AB_OK;
    char *refusal = env->check_path ? env->check_path(env->check_arg, access, abs) : NULL;
    if (!refusal)
        refusal = symlink_refusal(env, access, abs);
    if (!refusal)
        return AB_OK;
    *allowed = false;
    res->refused = true;
    ab_status rc = fsops__fail(res, "%s", "");
    if (!rc)
        rc = fsops__utf8_sanitize(&res->text, refusal, strlen(refusal));
    free(refusal);
    return rc;
}

ab_status fsops__open(const struct fsops_env *env, struct fsops_str path, bool absent_ok,
                      enum fsops_access access, char **abs, struct fsops_result *res)
{
    bool allowed = false;
    ab_status rc = fsops__resolve(env, path, absent_ok, abs, res);
    if (rc || !*abs)
        return rc;
    rc = fsops__check(env, access, *abs, &allowed, res);
    if (rc || !allowed) {
        free(*abs);
        *abs = NULL;
    }
    return rc;
}

ab_status fsops__stat(const struct fsops_env *env, const char *abs, struct sbx_stat *st,
                      struct ab_err *perr)
{
    ab_err_clear(perr);
    ab_status rc = env->p->ops->stat(env->p, env->h, abs, st, perr);
    if (!rc && st->target_type == SBX_FT_NONE)
        rc = AB_NOTFOUND; /* a dangling symlink: os.stat raises FileNotFoundError */
    return rc;
}

ab_status fsops__infra_pass(ab_status src, const struct ab_err *perr, struct ab_err *err)
{
    if (!fsops__infra(src))
        return AB_OK;
    if (err)
        *err = *perr;
    return src;
}

bool fsops__allowed_quiet(const struct fsops_env *env, enum fsops_access access, const char *abs,
                          struct fsops_result *res)
{
    if (!env->check_path && !env->no_symlinks)
        return true;
    char *refusal = env->check_path ? env->check_path(env->check_arg, access, abs) : NULL;
    if (!refusal)
        refusal = symlink_refusal(env, access, abs);
    free(refusal);
    if (refusal)
        res->refused = true;
    return refusal == NULL;
}

/* ---- UTF-8 ---- */

/* Length of the valid sequence at s[i], or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len, size_t i)
{
    size_t one = i;
    uint32_t cp = pyrepr_next_cp((const char *)s, len, &one);
    if (cp >= 0xDC80 && cp <= 0xDCFF && one == i + 1 && s[i] >= 0x80)
        return 0;
    return one - i;
}

ab_status fsops__utf8_sanitize(struct buf *out, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0; /* start of the pending valid run */
    for (size_t i = 0; i < len;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq(u, len, i);
        if (n) {
            i += n;
            continue;
        }
        ab_status rc = buf_append(out, s + run, i - run);
        if (!rc)
            rc = buf_append(out, "\xEF\xBF\xBD", 3);
        if (rc)
            return rc;
        i++;
        run = i;
    }
    return buf_append(out, s + run, len - run);
}

json_t *fsops__json_str(const char *s, size_t len)
{
    if (ab_utf8_valid(s, len))
        return json_stringn(s, len);
    struct buf b;
    buf_init(&b, len * 3 + 1);
    json_t *j = NULL;
    if (!fsops__utf8_sanitize(&b, s, len))
        j = json_stringn(buf_cstr(&b), b.len);
    buf_cleanup(&b);
    return j;
}

size_t fsops__cp_len(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

size_t fsops__cp_prefix(const char *s, size_t len, size_t n)
{
    size_t i = 0;
    while (i < len && n) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        n--;
    }
    return i;
}

/* Python's str.isspace(): White_Space characters plus the C0 separators 0x1C-0x1F. */
static bool py_isspace(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

bool fsops__is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len;)
        if (!py_isspace(pyrepr_next_cp(s, len, &i)))
            return false;
    return true;
}

ab_status fsops__truncate_text(struct buf *text)
{
    if (fsops__cp_len(text->data ? text->data : "", text->len) <= FSOPS_TOOL_CHARS)
        return AB_OK;
    text->len = fsops__cp_prefix(text->data, text->len, FSOPS_TOOL_CHARS);
    text->data[text->len] = '\0';
    return buf_append_str(text, "\n" FSOPS_TRUNCATION_GUIDANCE);
}

ab_status fsops__format_paths(struct buf *out, char *const *paths, size_t n)
{
    if (n == 0)
        return buf_append_str(out, "No files found");
    /* truncate_if_too_long(list): keep len * LIMIT // total items and add the guidance as a
     * list element (lengths in Python characters, surrogate escapes included). */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += pyrepr_char_len(paths[i], strlen(paths[i]));
    size_t keep = n;
    bool cut = total > FSOPS_TOOL_CHARS;
    if (cut)
        keep = (size_t)(((unsigned long long)n * FSOPS_TOOL_CHARS) / total);
    ab_status rc = buf_append_char(out, '[');
    for (size_t i = 0; i < keep && !rc; i++) {
        if (i)
            rc = buf_append_str(out, ", ");
        if (!rc)
            rc = pyrepr_str(out, paths[i], strlen(paths[i]));
    }
    if (cut && !rc) {
        if (keep)
            rc = buf_append_str(out, ", ");
        if (!rc)
            rc = pyrepr_str(out, FSOPS_TRUNCATION_GUIDANCE, strlen(FSOPS_TRUNCATION_GUIDANCE));
    }
    if (!rc)
        rc = buf_append_char(out, ']');
    return rc;
}

int fsops__strptr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- file types and MIME ---- */

struct ext_info {
    const char *ext;
    enum fsops_ftype type;
    const char *mime;
};

/* read's media map (backends/utils.py _EXTENSION_TO_FILE_TYPE, plus ".mkv" as video) and
 * the MIME types Python's mimetypes gives, with audio/wav for MCP clients. Then a few common
 * types so download can label files. */
static const struct ext_info ext_table[] = {
    {".png", FSOPS_FT_IMAGE, "image/png"},
    {".jpeg", FSOPS_FT_IMAGE, "image/jpeg"},
    {".jpg", FSOPS_FT_IMAGE, "image/jpeg"},
    {".webp", FSOPS_FT_IMAGE, "image/webp"},
    {".gif", FSOPS_FT_IMAGE, "image/gif"},
    {".heic", FSOPS_FT_IMAGE, "image/heic"},
    {".heif", FSOPS_FT_IMAGE, "image/heif"},
    {".mp4", FSOPS_FT_VIDEO, "video/mp4"},
    {".mpeg", FSOPS_FT_VIDEO, "video/mpeg"},
    {".mov", FSOPS_FT_VIDEO, "video/quicktime"},
    {".avi", FSOPS_FT_VIDEO, "video/x-msvideo"},
    {".flv", FSOPS_FT_VIDEO, "video/x-flv"},
    {".mpg", FSOPS_FT_VIDEO, "video/mpeg"},
    {".webm", FSOPS_FT_VIDEO, "video/webm"},
    {".wmv", FSOPS_FT_VIDEO, "video/x-ms-wmv"},
    {".3gpp", FSOPS_FT_VIDEO, "video/3gpp"},
    {".mkv", FSOPS_FT_VIDEO, "video/x-matroska"},
    {".wav", FSOPS_FT_AUDIO, "audio/wav"},
    {".mp3", FSOPS_FT_AUDIO, "audio/mpeg"},
    {".aiff", FSOPS_FT_AUDIO, "audio/x-aiff"},
    {".aac", FSOPS_FT_AUDIO, "audio/aac"},
    {".ogg", FSOPS_FT_AUDIO, "audio/ogg"},
    {".flac", FSOPS_FT_AUDIO, "audio/flac"},
    {".pdf", FSOPS_FT_FILE, "application/pdf"},
    {".ppt", FSOPS_FT_FILE, "application/vnd.ms-powerpoint"},
    {".pptx", FSOPS_FT_FILE,
     "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    /* text and other types: FSOPS_FT_TEXT, read decides by content */
    {".txt", FSOPS_FT_TEXT, "text/plain"},
    {".md", FSOPS_FT_TEXT, "text/markdown"},
    {".json", FSOPS_FT_TEXT, "application/json"},
    {".html", FSOPS_FT_TEXT, "text/html"},
    {".htm", FSOPS_FT_TEXT, "text/html"},
    {".css", FSOPS_FT_TEXT, "text/css"},
    {".js", FSOPS_FT_TEXT, "text/javascript"},
    {".mjs", FSOPS_FT_TEXT, "text/javascript"},
    {".csv", FSOPS_FT_TEXT, "text/csv"},
    {".xml", FSOPS_FT_TEXT, "application/xml"},
    {".yaml", FSOPS_FT_TEXT, "application/yaml"},
    {".yml", FSOPS_FT_TEXT, "application/yaml"},
    {".toml", FSOPS_FT_TEXT, "application/toml"},
    {".py", FSOPS_FT_TEXT, "text/x-python"},
    {".c", FSOPS_FT_TEXT, "text/x-c"},
    {".h", FSOPS_FT_TEXT, "text/x-c"},
    {".sh", FSOPS_FT_TEXT, "application/x-sh"},
    {".svg", FSOPS_FT_TEXT, "image/svg+xml"},
    {".bmp", FSOPS_FT_TEXT, "image/bmp"},
    {".tif", FSOPS_FT_TEXT, "image/tiff"},
    {".tiff", FSOPS_FT_TEXT, "image/tiff"},
    {".ico", FSOPS_FT_TEXT, "image/vnd.microsoft.icon"},
    {".zip", FSOPS_FT_TEXT, "application/zip"},
    {".gz", FSOPS_FT_TEXT, "application/gzip"},
    {".tar", FSOPS_FT_TEXT, "application/x-tar"},
    {".wasm", FSOPS_FT_TEXT, "application/wasm"},
    {".bin", FSOPS_FT_TEXT, "application/octet-stream"},
};

static const struct ext_info *ext_lookup(const char *path)
{
    char suffix[16];
    paths_suffix_lower(path, suffix, sizeof(suffix));
    if (!suffix[0])
        return NULL;
    for (size_t i = 0; i < AB_ARRAY_LEN(ext_table); i++)
        if (strcmp(ext_table[i].ext, suffix) == 0)
            return &ext_table[i];
    return NULL;
}

enum fsops_ftype fsops__file_type(const char *path)
{
    const struct ext_info *e = ext_lookup(path);
    return e ? e->type : FSOPS_FT_TEXT;
}

const char *fsops__ftype_name(enum fsops_ftype t)
{
    switch (t) {
    case FSOPS_FT_TEXT:
        return "text";
    case FSOPS_FT_IMAGE:
        return "image";
    case FSOPS_FT_AUDIO:
        return "audio";
    case FSOPS_FT_VIDEO:
        return "video";
    case FSOPS_FT_FILE:
        return "file";
    }
    return "file";
}

const char *fsops__mime_from_ext(const char *path)
{
    const struct ext_info *e = ext_lookup(path);
    return e ? e->mime : NULL;
}

char *fsops__file_uri(const char *path)
{
    /* RFC 8089 file URI; RFC 3986 section 2.3 unreserved characters and '/' stay, every
     * other byte is percent-encoded (so spaces, quotes, newlines and non-UTF-8 bytes are
     * unambiguous). */
    static const char hex[] = "0123456789ABCDEF";
    struct buf b;
    buf_init(&b, strlen(path) * 3 + 16);
    ab_status rc = buf_append_str(&b, "file://");
    for (const unsigned char *s = (const unsigned char *)path; *s && !rc; s++) {
        unsigned char c = *s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
            rc = buf_append_char(&b, (char)c);
        } else {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = buf_append(&b, enc, 3);
        }
    }
    if (rc) {
        buf_cleanup(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

const char *fsops__file_error_code(ab_status rc)
{
    if (rc == AB_NOTFOUND)
        return "file_not_found";
    if (rc == AB_DENIED)
        return "permission_denied";
    if (rc == AB_ISDIR)
        return "is_directory";
    if (rc == AB_NOTDIR || rc == AB_INVAL)
        return "invalid_path"; /* FilesystemBackend: NotADirectoryError -> invalid_path */
    if (rc == AB_LIMIT)
        return "file_too_large";
    return NULL;
}

/* ---- ls ---- */

static const char *ftype_word(enum sbx_ftype t)
{
    switch (t) {
    case SBX_FT_FILE:
        return "file";
    case SBX_FT_DIR:
        return "directory";
    case SBX_FT_SYMLINK:
        return "symlink";
    case SBX_FT_OTHER:
        return "other";
    case SBX_FT_NONE:
        break;
    }
    return "other";
}

static int dirent_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sbx_dirent *)a)->name, ((const struct sbx_dirent *)b)->name);
}

ab_status fsops_ls(const struct fsops_env *env, struct fsops_str path, struct fsops_result *res,
                   struct ab_err *err)
{
    char *abs = NULL;
    struct sbx_dirent *ents = NULL;
    size_t n = 0;
    char **paths = NULL;
    ab_status rc = fsops__open(env, path, true, FSOPS_ACCESS_READ, &abs, res);
    if (rc || !abs)
        goto out;
    struct ab_err perr;
    ab_err_clear(&perr);
    ab_status lrc = env->p->ops->list_dir(env->p, env->h, abs, &ents, &n, &perr);
    if (lrc) {
        rc = fsops__infra_pass(lrc, &perr, err);
        if (rc)
            goto out;
        /* BaseSandbox ls: LsResult(error=f"Path '{path}': {code}"), tool adds "Error: " */
        const char *code = lrc == AB_NOTFOUND ? "path_not_found"
                           : lrc == AB_NOTDIR ? "not_a_directory"
                           : lrc == AB_DENIED ? "permission_denied"
                                              : ab_status_name(lrc);
        rc = fsops__fail(res, "Error: Path '%s': %s", abs, code);
        goto out;
    }
    if (n)
        qsort(ents, n, sizeof(*ents), dirent_cmp);
    paths = calloc(n + 1, sizeof(char *));
    json_t *arr = json_array();
    res->structured =
        json_pack("{s:o,s:o}", "path", fsops__json_str(abs, strlen(abs)), "entries", arr);
    if (!paths || !arr || !res->structured) {
        rc = AB_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        paths[i] = paths_join(abs, ents[i].name);
        if (!paths[i]) {
            rc = AB_NOMEM;
            goto out;
        }
        char when[40];
        ab_format_time(ents[i].st.mtime_ms, when, sizeof(when));
        json_t *e =
            json_pack("{s:o,s:b,s:s,s:I,s:s}", "path", fsops__json_str(paths[i], strlen(paths[i])),
                      "is_dir", ents[i].st.type == SBX_FT_DIR, "type", ftype_word(ents[i].st.type),
                      "size", (json_int_t)ents[i].st.size, "modified_at", when);
        if (!e || json_array_append_new(arr, e)) {
            rc = AB_NOMEM;
            goto out;
        }
    }
    rc = fsops__format_paths(&res->text, paths, n);
out:
    if (paths)
        for (size_t i = 0; i < n; i++)
            free(paths[i]);
    free(paths);
    sbx_dirents_free(ents, n);
    free(abs);
    return rc;
}

/* ---- write ---- */

ab_status fsops_write(const struct fsops_env *env, struct fsops_str path, struct fsops_str content,
                      struct fsops_result *res, struct ab_err *err)
{
    char *abs = NULL;
    ab_status rc = fsops__open(env, path, false, FSOPS_ACCESS_WRITE, &abs, res);
    if (rc || !abs)
        goto out;
    struct ab_err perr;
    ab_err_clear(&perr);
    ab_status wrc = env->p->ops->write_file(env->p, env->h, abs, content.ptr ? content.ptr : "",
                                            content.len, &perr);
    if (wrc) {
        rc = fsops__infra_pass(wrc, &perr, err);
        if (rc)
            goto out;
        /* BaseSandbox.write: WriteResult(error=f"Failed to write file '{file_path}':
         * {response.error}"), passed through without an "Error: " prefix. */
        const char *code = fsops__file_error_code(wrc);
        rc = fsops__fail(res, "Failed to write file '%s': %s", abs,
                         code ? code : ab_status_name(wrc));
        goto out;
    }
    rc = buf_printf(&res->text, "Updated file %s", abs);
    if (!rc) {
        res->structured = json_pack("{s:o,s:I}", "path", fsops__json_str(abs, strlen(abs)),
                                    "bytes_written", (json_int_t)content.len);
        if (!res->structured)
            rc = AB_NOMEM;
    }
out:
    free(abs);
    return rc;
}

/* ---- upload ---- */

ab_status fsops_upload(const struct fsops_env *env, const struct fsops_upload_file *files, size_t n,
                       struct fsops_result *res, struct ab_err *err)
{
    const struct cfg_tools *lim = fsops__limits(env);
    json_t *arr = json_array();
    res->structured = json_pack("{s:o}", "files", arr);
    if (!arr || !res->structured)
        return AB_NOMEM;
    ab_status rc = AB_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (ab_cancel_fired(env->cancel))
            return AB_CANCELLED;
        const struct fsops_upload_file *f = &files[i];
        char *abs = NULL, *why = NULL;
        const char *code = NULL;
        unsigned char *bytes = NULL;
        size_t blen = 0;
        const char *ws = fsops__workspace(env);
        ab_status prc =
            f->path.ptr ? paths_resolve(f->path.ptr, f->path.len, ws, &abs, &why) : AB_INVAL;
        if (prc == AB_NOMEM)
            return AB_NOMEM;
        free(why);
        if (prc) {
            code = "invalid_path";
        } else if ((f->content.ptr != NULL) == (f->content_base64.ptr != NULL)) {
            code = "invalid_content"; /* exactly one of content / content_base64 */
        } else if (f->content_base64.ptr) {
            if (ab_base64_decode(f->content_base64.ptr, f->content_base64.len, &bytes, &blen))
                code = "invalid_content";
        } else {
            blen = f->content.len;
        }
        const void *data = bytes ? (const void *)bytes : (const void *)f->content.ptr;
        if (!code && blen > lim->upload_max_bytes)
            code = "file_too_large";
        if (!code && !fsops__allowed_quiet(env, FSOPS_ACCESS_WRITE, abs, res))
            code = "permission_denied";
        if (!code) {
            struct ab_err perr;
            ab_err_clear(&perr);
            ab_status wrc =
                env->p->ops->write_file(env->p, env->h, abs, data ? data : "", blen, &perr);
            if (fsops__infra_pass(wrc, &perr, err)) {
                free(abs);
                free(bytes);
                return wrc;
            }
            if (wrc)
                code =
                    fsops__file_error_code(wrc) ? fsops__file_error_code(wrc) : ab_status_name(wrc);
        }
        const char *shown = abs ? abs : (f->path.ptr ? f->path.ptr : "");
        size_t shown_len = abs ? strlen(abs) : f->path.len;
        if (i)
            rc = buf_append_char(&res->text, '\n');
        if (!rc)
            rc = buf_append_str(&res->text, code ? "Failed to upload " : "Uploaded ");
        if (!rc)
            rc = fsops__utf8_sanitize(&res->text, shown, shown_len);
        if (!rc)
            rc = code ? buf_printf(&res->text, ": %s", code)
                      : buf_printf(&res->text, " (%zu bytes)", blen);
        json_t *e = json_pack("{s:o,s:o}", "path", fsops__json_str(shown, shown_len), "error",
                              code ? json_string(code) : json_null());
        if (!rc && (!e || json_array_append_new(arr, e)))
            rc = AB_NOMEM;
        free(abs);
        free(bytes);
    }
    return rc;
}

/* ---- download ---- */

ab_status fsops_download(const struct fsops_env *env, const struct fsops_str *paths, size_t n,
                         struct fsops_result *res, struct ab_err *err)
{
    const struct cfg_tools *lim = fsops__limits(env);
    uint64_t budget = lim->download_max_bytes * FSOPS_DOWNLOAD_TOTAL_FACTOR;
    json_t *arr = json_array();
    res->structured = json_pack("{s:o}", "files", arr);
    json_t *blocks = json_array();
    res->content = blocks;
    if (!arr || !res->structured || !blocks)
        return AB_NOMEM;
    ab_status rc = AB_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (ab_cancel_fired(env->cancel))
            return AB_CANCELLED;
        char *abs = NULL, *why = NULL;
        const char *code = NULL, *mime = NULL;
        struct buf data;
        buf_init(&data, lim->download_max_bytes);
        const char *ws = fsops__workspace(env);
        ab_status prc =
            paths_resolve(paths[i].ptr ? paths[i].ptr : "", paths[i].len, ws, &abs, &why);
        free(why);
        if (prc == AB_NOMEM)
            return AB_NOMEM;
        if (prc || !paths[i].ptr) {
            code = "invalid_path";
        } else if (!fsops__allowed_quiet(env, FSOPS_ACCESS_READ, abs, res)) {
            code = "permission_denied";
        } else {
            struct sbx_stat st;
            struct ab_err perr;
            ab_status src = fsops__stat(env, abs, &st, &perr);
            if (!src && st.target_type == SBX_FT_DIR)
                src = AB_ISDIR;
            else if (!src && st.target_type != SBX_FT_FILE)
                code = "not_a_file";
            if (!src && !code)
                src = env->p->ops->read_file(env->p, env->h, abs, lim->download_max_bytes, &data,
                                             &perr);
            if (fsops__infra_pass(src, &perr, err)) {
                buf_cleanup(&data);
                free(abs);
                return src;
            }
            if (src)
                code =
                    fsops__file_error_code(src) ? fsops__file_error_code(src) : ab_status_name(src);
            else if (!code && data.len > budget)
                code = "response_too_large";
        }
        if (!code) {
            budget -= data.len;
            bool text = !memchr(buf_cstr(&data), '\0', data.len) &&
                        ab_utf8_valid(buf_cstr(&data), data.len);
            mime = fsops__mime_from_ext(abs);
            if (!mime)
                mime = text ? "text/plain" : "application/octet-stream";
            char *uri = fsops__file_uri(abs);
            char *b64 = text ? NULL : ab_base64_encode(buf_cstr(&data), data.len, NULL);
            json_t *resource =
                uri && (text || b64)
                    ? json_pack("{s:s,s:s,s:o}", "uri", uri, "mimeType", mime,
                                text ? "text" : "blob",
                                text ? json_stringn(buf_cstr(&data), data.len) : json_string(b64))
                    : NULL;
            free(uri);
            free(b64);
            json_t *block =
                resource ? json_pack("{s:s,s:o}", "type", "resource", "resource", resource) : NULL;
            if (!block || json_array_append_new(blocks, block))
                rc = AB_NOMEM;
        }
        const char *shown = abs ? abs : (paths[i].ptr ? paths[i].ptr : "");
        size_t shown_len = abs ? strlen(abs) : paths[i].len;
        if (!rc && i)
            rc = buf_append_char(&res->text, '\n');
        if (!rc)
            rc = buf_append_str(&res->text, code ? "Failed to download " : "Downloaded ");
        if (!rc)
            rc = fsops__utf8_sanitize(&res->text, shown, shown_len);
        if (!rc)
            rc = code ? buf_printf(&res->text, ": %s", code)
                      : buf_printf(&res->text, " (%zu bytes, %s)", data.len, mime);
        json_t *e = json_pack("{s:o,s:o,s:o,s:o}", "path", fsops__json_str(shown, shown_len),
                              "size", code ? json_null() : json_integer((json_int_t)data.len),
                              "mime_type", code ? json_null() : json_string(mime), "error",
                              code ? json_string(code) : json_null());
        if (!rc && (!e || json_array_append_new(arr, e)))
            rc = AB_NOMEM;
        buf_cleanup(&data);
        free(abs);
    }
    if (!rc) {
        /* The summary goes first, as a text block, then the files. */
        json_t *tb =
            json_pack("{s:s,s:s%}", "type", "text", "text", buf_cstr(&res->text), res->text.len);
        if (!tb || json_array_insert_new(blocks, 0, tb))
            rc = AB_NOMEM;
    }
    return rc;
}

/* ---- execute ---- */

ab_status fsops_format_execute(const struct fsops_exec_outcome *o, struct fsops_result *res)
{
    buf_cleanup(&res->text);
    buf_init(&res->text, o->output_len * 3 + 4096);
    res->is_error = false;
    ab_status rc = fsops__utf8_sanitize(&res->text, o->output ? o->output : "", o->output_len);
    if (!rc && o->timed_out) {
        /* LocalShellBackend's timeout text (backends/local_shell.py), after what the command
         * printed before it was killed. */
        if (res->text.len && res->text.data[res->text.len - 1] != '\n')
            rc = buf_append_char(&res->text, '\n');
        if (!rc && o->custom_timeout)
            rc = buf_printf(&res->text,
                            "Error: Command timed out after %lld seconds (custom timeout). The "
                            "command may be stuck or require more time.",
                            (long long)o->timeout_s);
        else if (!rc)
            rc = buf_printf(&res->text,
                            "Error: Command timed out after %lld seconds. For long-running "
                            "commands, re-run using the timeout parameter.",
                            (long long)o->timeout_s);
    }
    if (!rc && o->exit_code_known)
        rc = buf_printf(&res->text, "\n[Command %s with exit code %d]",
                        o->exit_code == 0 ? "succeeded" : "failed", o->exit_code);
    if (!rc && o->truncated)
        rc = buf_append_str(&res->text, "\n[Output was truncated due to size limits]");
    if (rc)
        return rc;
    res->structured = json_pack(
        "{s:o,s:o,s:b,s:b}", "output", fsops__json_str(o->output ? o->output : "", o->output_len),
        "exit_code", o->exit_code_known ? json_integer(o->exit_code) : json_null(), "truncated",
        o->truncated, "timed_out", o->timed_out);
    return res->structured ? AB_OK : AB_NOMEM;
}

char *fsops_execute_timeout_error(int64_t timeout_s, int64_t max_timeout_s)
{
    if (timeout_s < 0)
        return ab_asprintf("Error: timeout must be non-negative, got %lld.", (long long)timeout_s);
    if (timeout_s > max_timeout_s)
        return ab_asprintf("Error: timeout %llds exceeds maximum allowed (%llds).",
                           (long long)timeout_s, (long long)max_timeout_s);
    return NULL;
}

/* ---- dispatch from JSON arguments ---- */

static bool arg_str(const json_t *args, const char *key, bool required, struct fsops_str *out,
                    struct fsops_result *res, ab_status *rc)
{
    const json_t *v = json_object_get(args, key);
    *out = FSOPS_NONE;
    if (!v || json_is_null(v)) {
        if (required)
            *rc = fsops__fail(res, "Error: missing required argument '%s'", key);
        return !required;
    }
    if (!json_is_string(v)) {
        *rc = fsops__fail(res, "Error: argument '%s' must be a string", key);
        return false;
    }
    out->ptr = json_string_value(v);
    out->len = json_string_length(v);
    return true;
}

static bool arg_int(const json_t *args, const char *key, int64_t def, int64_t *out,
                    struct fsops_result *res, ab_status *rc)
{
    const json_t *v = json_object_get(args, key);
    *out = def;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v)) {
        *rc = fsops__fail(res, "Error: argument '%s' must be an integer", key);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

ab_status fsops_call(const struct fsops_env *env, const char *tool, const json_t *args,
                     struct fsops_result *res, struct ab_err *err)
{
    ab_status rc = AB_OK;
    if (!json_is_object(args))
        return fsops__fail(res, "Error: the arguments must be an object");
    struct fsops_str path, a, b, c;
    if (strcmp(tool, "read") == 0) {
        int64_t off, lim;
        if (arg_str(args, "path", true, &path, res, &rc) &&
            arg_int(args, "offset", 0, &off, res, &rc) &&
            arg_int(args, "limit", FSOPS_READ_DEFAULT_LIMIT, &lim, res, &rc))
            rc = fsops_read(env, path, off, lim, res, err);
        return rc;
    }
    if (strcmp(tool, "write") == 0) {
        if (arg_str(args, "path", true, &path, res, &rc) &&
            arg_str(args, "content", true, &a, res, &rc))
            rc = fsops_write(env, path, a, res, err);
        return rc;
    }
    if (strcmp(tool, "edit") == 0) {
        const json_t *ra = json_object_get(args, "replace_all");
        if (ra && !json_is_boolean(ra) && !json_is_null(ra))
            return fsops__fail(res, "Error: argument 'replace_all' must be a boolean");
        if (arg_str(args, "path", true, &path, res, &rc) &&
            arg_str(args, "old_string", true, &a, res, &rc) &&
            arg_str(args, "new_string", true, &b, res, &rc))
            rc = fsops_edit(env, path, a, b, json_is_true(ra), res, err);
        return rc;
    }
    if (strcmp(tool, "ls") == 0) {
        if (arg_str(args, "path", false, &path, res, &rc))
            rc = fsops_ls(env, path, res, err);
        return rc;
    }
    if (strcmp(tool, "grep") == 0) {
        int64_t maxc;
        struct fsops_str mode_s;
        if (!(arg_str(args, "pattern", true, &a, res, &rc) &&
              arg_str(args, "path", false, &path, res, &rc) &&
              arg_str(args, "glob", false, &b, res, &rc) &&
              arg_str(args, "output_mode", false, &mode_s, res, &rc) &&
              arg_int(args, "max_count", 0, &maxc, res, &rc)))
            return rc;
        enum fsops_grep_mode mode = FSOPS_GREP_FILES_WITH_MATCHES;
        if (mode_s.ptr && strcmp(mode_s.ptr, "content") == 0)
            mode = FSOPS_GREP_CONTENT;
        else if (mode_s.ptr && strcmp(mode_s.ptr, "count") == 0)
            mode = FSOPS_GREP_COUNT;
        else if (mode_s.ptr && strcmp(mode_s.ptr, "files_with_matches") != 0)
            return fsops__fail(res, "Error: output_mode must be one of 'files_with_matches', "
                                    "'content', 'count'");
        if (json_is_integer(json_object_get(args, "max_count")) && maxc <= 0)
            return fsops__fail(res, "Error: max_count must be greater than 0");
        return fsops_grep(env, a, path, b, mode, maxc, res, err);
    }
    if (strcmp(tool, "glob") == 0) {
        if (arg_str(args, "pattern", true, &a, res, &rc) &&
            arg_str(args, "path", false, &path, res, &rc))
            rc = fsops_glob(env, a, path, res, err);
        return rc;
    }
    if (strcmp(tool, "upload") == 0) {
        const json_t *files = json_object_get(args, "files");
        if (!json_is_array(files))
            return fsops__fail(res, "Error: argument 'files' must be an array");
        size_t n = json_array_size(files);
        struct fsops_upload_file *v = calloc(n ? n : 1, sizeof(*v));
        if (!v)
            return AB_NOMEM;
        for (size_t i = 0; i < n && !rc; i++) {
            const json_t *f = json_array_get(files, i);
            if (!json_is_object(f)) {
                rc = fsops__fail(res, "Error: each entry of 'files' must be an object");
                break;
            }
            /* A missing or non-string path is reported per file as invalid_path. */
            const json_t *p = json_object_get(f, "path");
            if (json_is_string(p))
                v[i].path = (struct fsops_str){json_string_value(p), json_string_length(p)};
            if (!arg_str(f, "content", false, &a, res, &rc) ||
                !arg_str(f, "content_base64", false, &c, res, &rc))
                break;
            v[i].content = a;
            v[i].content_base64 = c;
        }
        if (!rc && !res->is_error)
            rc = fsops_upload(env, v, n, res, err);
        free(v);
        return rc;
    }
    if (strcmp(tool, "download") == 0) {
        const json_t *ps = json_object_get(args, "paths");
        if (!json_is_array(ps))
            return fsops__fail(res, "Error: argument 'paths' must be an array");
        size_t n = json_array_size(ps);
        struct fsops_str *v = calloc(n ? n : 1, sizeof(*v));
        if (!v)
            return AB_NOMEM;
        for (size_t i = 0; i < n; i++) {
            const json_t *p = json_array_get(ps, i);
            if (json_is_string(p))
                v[i] = (struct fsops_str){json_string_value(p), json_string_length(p)};
        }
        rc = fsops_download(env, v, n, res, err);
        free(v);
        return rc;
    }
    (void)c;
    return ab_err_set(err, AB_NOTFOUND, "unknown file tool '%s'", tool);
}
