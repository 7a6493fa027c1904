/*
 * rt_server.c - agentbox-runtime's HTTP server (libmicrohttpd).
 *
 * Compatible surface (agent-sandbox.md section 4, python-runtime HEAD): the same paths,
 * JSON keys, status codes and quirks, so a SandboxTemplate can swap the Python image for
 * this binary and every agent-sandbox client keeps working:
 *   GET  /                 {"status":"ok","message":"Sandbox Runtime is active."}
 *   POST /execute          {"command"} -> {"stdout","stderr","exit_code"}; shlex, no shell,
 *                          every execution failure is still a 200 with exit_code 1
 *   POST /upload           multipart field "file", filename = path under the base dir
 *   GET  /download/{path}  octet-stream | 403 | 404 {"message":"File not found"}
 *   GET  /list/{path}      [{"name","size","type","mod_time"}] | 403 | 404 | 500
 *   GET  /exists/{path}    {"path","exists"} | 403
 *   422 {"detail":[...]} for request validation errors, 404/405 {"detail":...} like FastAPI.
 *
 * Extensions live under /agentbox/v1/ only, so nothing above changes meaning:
 *   GET  /agentbox/v1/info         what this runtime is and supports
 *   POST /agentbox/v1/exec         argv or shell, cwd, env, stdin, timeout, output cap;
 *                                  output streamed as NDJSON events (exact bytes, base64)
 *   GET  /agentbox/v1/stat/{path}  lstat (+ the symlink target's type)
 *   GET  /agentbox/v1/list/{path}  a directory with lstat types
 * Extension paths are absolute paths in the pod (relative ones are under the base dir): the
 * runtime runs with the sandbox's own rights, and /execute can read anything it can anyway.
 *
 * Threading: MHD_USE_THREAD_PER_CONNECTION, so a long /execute blocks only its connection;
 * per-request state lives in *req_cls and is freed in the completed callback (the one place
 * that always runs). The streaming exec response is a content-reader callback that pumps the
 * child; a client that goes away makes MHD free the reader, which kills the process group.
 * Heartbeat events every second keep writes happening so a vanished client is noticed.
 */
#include "runtime/rt.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

#define RT_MAX_JSON_BODY  (16u * 1024 * 1024)
#define RT_DEFAULT_OUTCAP (1u << 20)

struct rt_server {
    struct MHD_Daemon *d;
    char *base_real;
    double exec_timeout_s;
    uint64_t max_upload;
    int port;
};

enum req_kind { RK_OTHER, RK_JSON, RK_UPLOAD };

struct req_state {
    enum req_kind kind;
    struct buf body;
    struct MHD_PostProcessor *pp;
    /* upload */
    int fd;
    char *filename;
    bool got_file;
    int status;       /* error already decided (0 = none) */
    int sys_errno;    /* for a 500 */
    uint64_t written;
    struct rt_server *srv;
};

/* ---- responses ---- */

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_message(struct MHD_Connection *c, unsigned code, const char *msg)
{
    return send_json(c, code, json_pack("{s:s}", "message", msg));
}

static enum MHD_Result send_detail(struct MHD_Connection *c, unsigned code, const char *detail)
{
    return send_json(c, code, json_pack("{s:s}", "detail", detail));
}

/* FastAPI/pydantic v2 validation error for a missing or mistyped body field. */
static enum MHD_Result send_422(struct MHD_Connection *c, const char *type, const char *field,
                                const char *msg)
{
    json_t *loc = field ? json_pack("[s,s]", "body", field) : json_pack("[s]", "body");
    json_t *item = json_pack("{s:s,s:o,s:s,s:n}", "type", type, "loc", loc, "msg", msg, "input");
    return send_json(c, 422, json_pack("{s:[o]}", "detail", item));
}

/* Python str(OSError): "[Errno 2] No such file or directory: 'name'". */
static char *py_oserror(int e, const char *name)
{
    char *const v[] = {(char *)name, NULL};
    char *rep = rt_py_list_repr(v); /* "['name']" */
    if (!rep)
        return NULL;
    size_t l = strlen(rep);
    rep[l - 1] = '\0';
    char *s = ab_asprintf("[Errno %d] %s: %s", e, strerror(e), rep + 1);
    free(rep);
    return s;
}

/* 500 {"message": "<what>: [Errno N] ...: 'name'"}, the runtime's text for a failed OS call. */
static enum MHD_Result send_oserror(struct MHD_Connection *c, const char *what, int e,
                                    const char *name)
{
    char *m = py_oserror(e, name);
    char *mm = ab_asprintf("%s: %s", what, m ? m : "");
    enum MHD_Result r = send_message(c, 500, mm ? mm : what);
    free(m);
    free(mm);
    return r;
}

/* Resolve a request's path under the base directory. A path outside it (AB_DENIED) is
 * answered 403 here (*ret); other errors are the handler's to answer. *full is new. */
static ab_status resolve_request_path(struct rt_server *s, struct MHD_Connection *c,
                                      const char *path, char **full, enum MHD_Result *ret)
{
    struct ab_err err;
    ab_err_clear(&err);
    *full = NULL;
    ab_status rc = rt_resolve(s->base_real, path, full, &err);
    if (rc == AB_DENIED)
        *ret = send_message(c, 403, "Access denied");
    return rc;
}

/* ---- JSON helpers ---- */

/* Convert captured output to a JSON string the way Python text mode decodes it: universal
 * newlines ("\r\n" and "\r" become "\n", subprocess uses io.TextIOWrapper). Invalid UTF-8
 * makes Python raise; *bad_pos receives the offset then (and NULL is returned). */
static json_t *py_text(const char *s, size_t len, size_t *bad_pos)
{
    if (!ab_utf8_valid(s, len)) {
        size_t ok = 0;
        while (ok < len && ab_utf8_valid(s, ok + 1))
            ok++;
        /* ok is the first byte where a valid prefix stops growing; step back to the
         * start of the broken sequence */
        size_t pos = ab_utf8_trim_len(s, ok);
        *bad_pos = pos;
        return NULL;
    }
    char *o = malloc(len + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r') {
            o[j++] = '\n';
            if (i + 1 < len && s[i + 1] == '\n')
                i++;
        } else {
            o[j++] = s[i];
        }
    }
    json_t *r = json_stringn(o, j);
    free(o);
    return r;
}

static void fmt_py_float(double v, char *out, size_t cap)
{
    if (v == (double)(long long)v)
        snprintf(out, cap, "%.1f", v);
    else
        snprintf(out, cap, "%.17g", v);
}

/* ---- /execute ---- */

static enum MHD_Result exec_failure(struct MHD_Connection *c, const char *what)
{
    char *m = ab_asprintf("Failed to execute command: %s", what ? what : "unknown error");
    enum MHD_Result r = send_json(c, 200, json_pack("{s:s,s:s,s:i}", "stdout", "", "stderr",
                                                    m ? m : "", "exit_code", 1));
    free(m);
    return r;
}

static enum MHD_Result handle_execute(struct rt_server *s, struct MHD_Connection *c,
                                      struct req_state *st)
{
    if (st->body.len == 0)
        return send_422(c, "missing", NULL, "Field required");
    json_error_t jerr;
    json_t *req = json_loadb(st->body.data, st->body.len, 0, &jerr);
    if (!req) {
        json_t *item = json_pack("{s:s,s:[s,i],s:s,s:{},s:{s:s}}", "type", "json_invalid", "loc",
                                 "body", (int)jerr.position, "msg", "JSON decode error", "input",
                                 "ctx", "error", jerr.text);
        return send_json(c, 422, json_pack("{s:[o]}", "detail", item));
    }
    if (!json_is_object(req)) {
        json_decref(req);
        return send_422(c, "model_attributes_type", NULL,
                        "Input should be a valid dictionary or object to extract fields from");
    }
    json_t *cmd = json_object_get(req, "command");
    if (!cmd) {
        json_decref(req);
        return send_422(c, "missing", "command", "Field required");
    }
    if (!json_is_string(cmd)) {
        json_decref(req);
        return send_422(c, "string_type", "command", "Input should be a valid string");
    }
    char **argv = NULL;
    struct ab_err err;
    ab_err_clear(&err);
    enum MHD_Result ret;
    if (rt_shlex_split(json_string_value(cmd), &argv, NULL, &err)) {
        json_decref(req);
        return exec_failure(c, err.msg);
    }
    json_decref(req);
    if (!argv[0]) {
        rt_argv_free(argv);
        return exec_failure(c, "list index out of range"); /* Popen([]) raises IndexError */
    }
    struct rt_proc p;
    struct rt_proc_opts o = {.argv = argv, .cwd = s->base_real};
    if (rt_proc_start(&p, &o, &err)) {
        char *m = py_oserror(err.sys_errno ? err.sys_errno : EINVAL, argv[0]);
        ret = exec_failure(c, m);
        free(m);
        rt_argv_free(argv);
        return ret;
    }
    struct buf out, errb;
    buf_init(&out, SIZE_MAX / 2);
    buf_init(&errb, SIZE_MAX / 2);
    int64_t deadline = ab_mono_ms() + (int64_t)(s->exec_timeout_s * 1000.0);
    bool done = false;
    ab_status prc;
    do
        prc = rt_proc_pump(&p, &out, &errb, deadline, -1, 0, &done);
    while (prc == AB_OK && !done);
    if (prc == AB_TIMEOUT) {
        rt_proc_kill(&p);
        char *rep = rt_py_list_repr(argv);
        char t[64];
        fmt_py_float(s->exec_timeout_s, t, sizeof(t));
        char *m = ab_asprintf("Command '%s' timed out after %s seconds", rep ? rep : "[]", t);
        ret = exec_failure(c, m);
        free(m);
        free(rep);
        goto out;
    }
    if (prc) {
        rt_proc_kill(&p);
        ret = exec_failure(c, "I/O error while reading the command's output");
        goto out;
    }
    size_t bad = 0;
    json_t *jo = py_text(out.data ? out.data : "", out.len, &bad);
    const char *which = out.data ? out.data : "";
    json_t *je = jo ? py_text(errb.data ? errb.data : "", errb.len, &bad) : NULL;
    if (jo && !je)
        which = errb.data;
    if (!jo || !je) {
        json_decref(jo);
        char *m = ab_asprintf("'utf-8' codec can't decode byte 0x%02x in position %zu: "
                              "invalid start byte",
                              (unsigned char)which[bad], bad);
        ret = exec_failure(c, m);
        free(m);
        goto out;
    }
    ret = send_json(c, 200, json_pack("{s:o,s:o,s:i}", "stdout", jo, "stderr", je, "exit_code",
                                      rt_proc_returncode(&p)));
out:
    rt_proc_cleanup(&p);
    buf_cleanup(&out);
    buf_cleanup(&errb);
    rt_argv_free(argv);
    return ret;
}

/* ---- /upload ---- */

static ab_status mkdirs_for(const char *path)
{
    char *dup = ab_strdup(path);
    if (!dup)
        return AB_NOMEM;
    for (char *p = dup + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dup, 0755) < 0 && errno != EEXIST) {
            free(dup);
            return ab_status_from_errno(errno);
        }
        *p = '/';
    }
    free(dup);
    return AB_OK;
}

static enum MHD_Result upload_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *filename, const char *content_type,
                                   const char *transfer_encoding, const char *data, uint64_t off,
                                   size_t size)
{
    struct req_state *st = cls;
    struct rt_server *s = st->srv;
    if (strcmp(key, "file") != 0 || !filename)
        return MHD_YES;
    if (st->status)
        return MHD_YES;
    if (!st->got_file) {
        st->got_file = true;
        st->filename = ab_strdup(filename);
        char *full = NULL;
        struct ab_err err;
        ab_err_clear(&err);
        ab_status rc = rt_resolve(s->base_real, filename, &full, &err);
        if (rc == AB_DENIED) {
            st->status = 403;
            return MHD_YES;
        }
        if (rc || mkdirs_for(full) != AB_OK) {
            st->status = 500;
            free(full);
            return MHD_YES;
        }
        st->fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (st->fd < 0) {
            st->status = 500;
            st->sys_errno = errno;
        }
        free(full);
        if (st->status)
            return MHD_YES;
    }
    if (st->fd >= 0 && size) {
        if (s->max_upload && st->written + size > s->max_upload) {
            st->status = 413;
            return MHD_YES;
        }
        const char *p = data;
        size_t left = size;
        while (left) {
            ssize_t w = write(st->fd, p, left);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                st->status = 500;
                st->sys_errno = errno;
                return MHD_YES;
            }
            p += w;
            left -= (size_t)w;
        }
        st->written += size;
    }
    return MHD_YES;
}

static enum MHD_Result finish_upload(struct MHD_Connection *c, struct req_state *st)
{
    if (st->fd >= 0) {
        if (close(st->fd) < 0 && !st->status) {
            st->status = 500;
            st->sys_errno = errno;
        }
        st->fd = -1;
    }
    if (!st->got_file)
        return send_422(c, "missing", "file", "Field required");
    if (st->status == 403)
        return send_message(c, 403, "Access denied");
    if (st->status == 413)
        return send_message(c, 413, "File upload failed: file too large for this runtime");
    if (st->status) {
        int e = st->sys_errno ? st->sys_errno : EIO;
        char *m = ab_asprintf("File upload failed: [Errno %d] %s", e, strerror(e));
        enum MHD_Result r = send_message(c, 500, m ? m : "File upload failed");
        free(m);
        return r;
    }
    char *m = ab_asprintf("File '%s' uploaded successfully.", st->filename);
    enum MHD_Result r = send_message(c, 200, m ? m : "");
    free(m);
    return r;
}

/* ---- GET file endpoints ---- */

/* Python's urllib.parse.quote(s) with safe='/' (Starlette's Content-Disposition). */
static char *py_quote(const char *s)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("_.-~/", *p))
            buf_append_char(&b, (char)*p);
        else
            buf_printf(&b, "%%%02X", *p);
    }
    return buf_steal(&b, NULL);
}

static enum MHD_Result handle_download(struct rt_server *s, struct MHD_Connection *c,
                                       const char *path)
{
    char *full;
    enum MHD_Result ret;
    ab_status rc = resolve_request_path(s, c, path, &full, &ret);
    if (rc == AB_DENIED)
        return ret;
    if (rc)
        return send_message(c, 404, "File not found");
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    free(full);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0)
            close(fd);
        return send_message(c, 404, "File not found");
    }
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/octet-stream");
    char *q = py_quote(path);
    char *cd = NULL;
    if (q && strcmp(q, path) == 0)
        cd = ab_asprintf("attachment; filename=\"%s\"", path);
    else if (q)
        cd = ab_asprintf("attachment; filename*=utf-8''%s", q);
    if (cd)
        MHD_add_response_header(r, "Content-Disposition", cd);
    free(q);
    free(cd);
    ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle_list(struct rt_server *s, struct MHD_Connection *c,
                                   const char *path)
{
    char *full;
    enum MHD_Result ret;
    ab_status rc = resolve_request_path(s, c, path, &full, &ret);
    if (rc == AB_DENIED)
        return ret;
    struct stat sb;
    if (rc || stat(full, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        free(full);
        return send_message(c, 404, "Path is not a directory");
    }
    DIR *d = opendir(full);
    if (!d) {
        ret = send_oserror(c, "List files failed", errno, full);
        free(full);
        return ret;
    }
    json_t *arr = json_array();
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *p = ab_asprintf("%s/%s", full, de->d_name);
        struct stat es;
        if (!p || stat(p, &es) < 0) {
            /* os.scandir entry.stat() follows symlinks and raises on a dangling one,
             * failing the whole listing (upstream behaviour). */
            ret = send_oserror(c, "List files failed", errno, p ? p : de->d_name);
            free(p);
            json_decref(arr);
            goto out;
        }
        free(p);
        double mt = (double)es.st_mtim.tv_sec + (double)es.st_mtim.tv_nsec / 1e9;
        json_array_append_new(arr, json_pack("{s:s,s:I,s:s,s:f}", "name", de->d_name, "size",
                                             (json_int_t)es.st_size, "type",
                                             S_ISDIR(es.st_mode) ? "directory" : "file",
                                             "mod_time", mt));
    }
    ret = send_json(c, 200, arr);
out:
    closedir(d);
    free(full);
    return ret;
}

static enum MHD_Result handle_exists(struct rt_server *s, struct MHD_Connection *c,
                                     const char *path)
{
    char *full;
    enum MHD_Result ret;
    ab_status rc = resolve_request_path(s, c, path, &full, &ret);
    if (rc == AB_DENIED)
        return ret;
    struct stat sb;
    bool ex = rc == AB_OK && stat(full, &sb) == 0;
    free(full);
    return send_json(c, 200, json_pack("{s:s,s:b}", "path", path, "exists", ex));
}

/* ---- extensions ---- */

static const char *ftype_name(mode_t m)
{
    if (S_ISREG(m))
        return "file";
    if (S_ISDIR(m))
        return "directory";
    if (S_ISLNK(m))
        return "symlink";
    return "other";
}

static char *ext_path(struct rt_server *s, const char *path)
{
    if (path[0] == '/')
        return ab_strdup(path);
    if (!*path)
        return ab_strdup(s->base_real);
    return ab_asprintf("%s/%s", s->base_real, path);
}

static json_t *stat_json(const char *name, const char *full, const struct stat *ls)
{
    const char *tt = ftype_name(ls->st_mode);
    struct stat ts;
    if (S_ISLNK(ls->st_mode))
        tt = stat(full, &ts) == 0 ? ftype_name(ts.st_mode) : "none";
    json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:i}", "type", ftype_name(ls->st_mode), "target_type",
                          tt, "size", (json_int_t)ls->st_size, "mtime_ms",
                          (json_int_t)ls->st_mtim.tv_sec * 1000 + ls->st_mtim.tv_nsec / 1000000,
                          "mode", (int)(ls->st_mode & 07777));
    if (j && name)
        json_object_set_new(j, "name", json_string(name));
    return j;
}

static enum MHD_Result handle_ext_stat(struct rt_server *s, struct MHD_Connection *c,
                                       const char *path)
{
    char *full = ext_path(s, path);
    if (!full)
        return MHD_NO;
    struct stat ls;
    if (lstat(full, &ls) < 0) {
        int e = errno;
        free(full);
        if (e == EACCES)
            return send_message(c, 403, "Access denied");
        return send_message(c, 404, "File not found");
    }
    json_t *j = stat_json(NULL, full, &ls);
    free(full);
    return send_json(c, 200, j);
}

static enum MHD_Result handle_ext_list(struct rt_server *s, struct MHD_Connection *c,
                                       const char *path)
{
    char *full = ext_path(s, path);
    if (!full)
        return MHD_NO;
    DIR *d = opendir(full);
    if (!d) {
        int e = errno;
        free(full);
        if (e == EACCES)
            return send_message(c, 403, "Access denied");
        if (e == ENOTDIR)
            return send_message(c, 404, "Path is not a directory");
        return send_message(c, 404, "File not found");
    }
    json_t *arr = json_array();
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *p = ab_asprintf("%s/%s", full, de->d_name);
        struct stat ls;
        if (p && lstat(p, &ls) == 0)
            json_array_append_new(arr, stat_json(de->d_name, p, &ls));
        free(p);
    }
    closedir(d);
    free(full);
    return send_json(c, 200, json_pack("{s:o}", "entries", arr));
}

/* Streaming exec: NDJSON events. */
struct exec_stream {
    struct rt_proc p;
    struct buf pending; /* encoded events not yet handed to MHD */
    size_t pending_off;
    uint64_t kept, cap;
    bool truncated, finished, timed_out;
    int64_t deadline;
    int64_t last_event_ms;
    char **argv_owned;
    char **env_owned;
    void *stdin_owned;
};

static void stream_event(struct exec_stream *x, json_t *ev)
{
    char *s = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (s) {
        buf_append_str(&x->pending, s);
        buf_append_char(&x->pending, '\n');
        free(s);
    }
}

static void emit_output(struct exec_stream *x, const char *data, size_t len)
{
    size_t keep = 0;
    if (x->kept < x->cap)
        keep = (size_t)AB_MIN((uint64_t)len, x->cap - x->kept);
    if (keep) {
        size_t bl = 0;
        char *b64 = ab_base64_encode(data, keep, &bl);
        if (b64)
            stream_event(x, json_pack("{s:s,s:s}", "type", "output", "data", b64));
        free(b64);
        x->kept += keep;
    }
    if (len > keep) {
        x->truncated = true;
        stream_event(x, json_pack("{s:s,s:I}", "type", "output", "dropped", (json_int_t)(len - keep)));
    }
}

static ssize_t exec_reader(void *cls, uint64_t pos, char *out, size_t max)
{
    struct exec_stream *x = cls;
    while (x->pending_off >= x->pending.len) {
        buf_reset(&x->pending);
        x->pending_off = 0;
        if (x->finished)
            return MHD_CONTENT_READER_END_OF_STREAM;
        struct buf chunk;
        buf_init(&chunk, 1u << 20);
        bool done = false;
        ab_status rc = rt_proc_pump(&x->p, &chunk, NULL, x->deadline, -1, 1000, &done);
        if (chunk.len)
            emit_output(x, chunk.data, chunk.len);
        buf_cleanup(&chunk);
        if (rc == AB_TIMEOUT) {
            rt_proc_kill(&x->p);
            x->timed_out = true;
            done = true;
        } else if (rc) {
            rt_proc_kill(&x->p);
            done = true;
        }
        if (done) {
            int code = x->timed_out ? 124 : rt_proc_returncode(&x->p);
            if (!x->timed_out && code < 0)
                code = 128 - code; /* killed by a signal: the shell convention */
            stream_event(x, json_pack("{s:s,s:i,s:b,s:b,s:I}", "type", "exit", "exit_code", code,
                                      "timed_out", x->timed_out, "truncated", x->truncated,
                                      "duration_ms", (json_int_t)(ab_mono_ms() - x->p.start_ms)));
            x->finished = true;
        } else if (x->pending.len == 0 && ab_mono_ms() - x->last_event_ms >= 1000) {
            stream_event(x, json_pack("{s:s}", "type", "tick"));
        }
        if (x->pending.len)
            x->last_event_ms = ab_mono_ms();
    }
    size_t n = AB_MIN(max, x->pending.len - x->pending_off);
    memcpy(out, x->pending.data + x->pending_off, n);
    x->pending_off += n;
    (void)pos;
    return (ssize_t)n;
}

static void exec_stream_free(void *cls)
{
    struct exec_stream *x = cls;
    rt_proc_cleanup(&x->p); /* kills the group if still running (client went away) */
    buf_cleanup(&x->pending);
    rt_argv_free(x->argv_owned);
    rt_argv_free(x->env_owned);
    free(x->stdin_owned);
    free(x);
}

static char **json_strv(const json_t *arr, bool *bad)
{
    *bad = false;
    if (!arr)
        return NULL;
    if (!json_is_array(arr)) {
        *bad = true;
        return NULL;
    }
    size_t n = json_array_size(arr);
    char **v = calloc(n + 1, sizeof(*v));
    if (!v) {
        *bad = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        if (!json_is_string(e) || !(v[i] = ab_strdup(json_string_value(e)))) {
            rt_argv_free(v);
            *bad = true;
            return NULL;
        }
    }
    return v;
}

static enum MHD_Result handle_ext_exec(struct rt_server *s, struct MHD_Connection *c,
                                       struct req_state *st)
{
    json_error_t jerr;
    json_t *req = st->body.len ? json_loadb(st->body.data, st->body.len, 0, &jerr) : NULL;
    if (!json_is_object(req)) {
        json_decref(req);
        return send_message(c, 400, "body must be a JSON object with \"argv\" or \"shell\"");
    }
    struct exec_stream *x = calloc(1, sizeof(*x));
    if (!x) {
        json_decref(req);
        return MHD_NO;
    }
    x->p.pid = -1;
    x->p.out_fd = x->p.err_fd = x->p.in_fd = -1;
    buf_init(&x->pending, 8u << 20);
    bool bad = false, bad_env = false;
    x->argv_owned = json_strv(json_object_get(req, "argv"), &bad);
    const json_t *sh = json_object_get(req, "shell");
    if (!x->argv_owned && json_is_string(sh)) {
        x->argv_owned = calloc(4, sizeof(char *));
        if (x->argv_owned) {
            x->argv_owned[0] = ab_strdup("/bin/sh");
            x->argv_owned[1] = ab_strdup("-c");
            x->argv_owned[2] = ab_strdup(json_string_value(sh));
        }
    }
    x->env_owned = json_strv(json_object_get(req, "env"), &bad_env);
    const json_t *jin = json_object_get(req, "stdin");
    size_t in_len = 0;
    if (json_is_string(jin) &&
        ab_base64_decode(json_string_value(jin), json_string_length(jin),
                         (unsigned char **)&x->stdin_owned, &in_len) != AB_OK)
        bad = true;
    const json_t *jcwd = json_object_get(req, "cwd");
    char *cwd = json_is_string(jcwd) ? ext_path(s, json_string_value(jcwd)) : ab_strdup(s->base_real);
    json_int_t tmo = json_integer_value(json_object_get(req, "timeout_ms"));
    json_int_t cap = json_integer_value(json_object_get(req, "output_cap"));
    bool has_stdin = json_is_string(jin);
    json_decref(req); /* jin, sh and jcwd are gone from here on */
    if (bad || bad_env || !x->argv_owned || !x->argv_owned[0] || !cwd) {
        free(cwd);
        exec_stream_free(x);
        return send_message(c, 400, "invalid exec request: need \"argv\" (array of strings, "
                                    "non-empty) or \"shell\", optional \"env\" (array of "
                                    "\"K=V\"), \"stdin\" (base64), \"cwd\"");
    }
    x->cap = cap > 0 ? (uint64_t)cap : RT_DEFAULT_OUTCAP;
    x->deadline = tmo > 0 ? ab_mono_ms() + tmo : 0;
    struct rt_proc_opts o = {.argv = x->argv_owned,
                             .cwd = cwd,
                             .env_extra = x->env_owned,
                             .stdin_data = x->stdin_owned ? x->stdin_owned : (in_len ? "" : NULL),
                             .stdin_len = in_len,
                             .merge_output = true};
    if (has_stdin && !x->stdin_owned)
        o.stdin_data = "";
    struct ab_err err;
    ab_err_clear(&err);
    if (rt_proc_start(&x->p, &o, &err)) {
        /* Report like a shell would: 127 not found, 126 not executable; the message is the
         * command's output. */
        int e = err.sys_errno;
        char *m = ab_asprintf("agentbox-runtime: cannot run '%s' in '%s': %s\n", x->argv_owned[0],
                              cwd, strerror(e ? e : EINVAL));
        if (m)
            emit_output(x, m, strlen(m));
        free(m);
        stream_event(x, json_pack("{s:s,s:i,s:b,s:b,s:i}", "type", "exit", "exit_code",
                                  e == ENOENT ? 127 : 126, "timed_out", 0, "truncated", 0,
                                  "duration_ms", 0));
        x->finished = true;
    } else {
        stream_event(x, json_pack("{s:s,s:i}", "type", "start", "pid", (int)x->p.pid));
    }
    free(cwd);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, exec_reader, x, exec_stream_free);
    if (!r) {
        exec_stream_free(x);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/x-ndjson");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- dispatch ---- */

static bool route_prefix(const char *url, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(url, prefix, n) != 0)
        return false;
    *rest = url + n;
    return true;
}

static enum MHD_Result handle_get(struct rt_server *s, struct MHD_Connection *c, const char *url)
{
    const char *rest;
    char *path = NULL;
    enum MHD_Result r;
    if (strcmp(url, "/") == 0)
        return send_json(c, 200, json_pack("{s:s,s:s}", "status", "ok", "message",
                                           "Sandbox Runtime is active."));
    if (strcmp(url, "/agentbox/v1/info") == 0)
        return send_json(c, 200, json_pack("{s:s,s:s,s:i,s:s,s:[sss]}", "runtime",
                                           "agentbox-runtime", "version", AGENTBOX_VERSION, "api",
                                           1, "base_dir", s->base_real, "extensions", "exec",
                                           "stat", "list"));
    /* MHD has already percent-decoded the URL once; upstream unquotes the path again. */
    if (route_prefix(url, "/download/", &rest)) {
        path = rt_unquote(rest);
        r = path ? handle_download(s, c, path) : MHD_NO;
    } else if (route_prefix(url, "/list/", &rest)) {
        path = rt_unquote(rest);
        r = path ? handle_list(s, c, path) : MHD_NO;
    } else if (route_prefix(url, "/exists/", &rest)) {
        path = rt_unquote(rest);
        r = path ? handle_exists(s, c, path) : MHD_NO;
    } else if (route_prefix(url, "/agentbox/v1/stat/", &rest)) {
        r = handle_ext_stat(s, c, rest);
    } else if (route_prefix(url, "/agentbox/v1/list/", &rest)) {
        r = handle_ext_list(s, c, rest);
    } else if (strcmp(url, "/execute") == 0 || strcmp(url, "/upload") == 0 ||
               strcmp(url, "/agentbox/v1/exec") == 0) {
        r = send_detail(c, 405, "Method Not Allowed");
    } else {
        r = send_detail(c, 404, "Not Found");
    }
    free(path);
    return r;
}

static bool is_get_route(const char *url)
{
    return strcmp(url, "/") == 0 || ab_starts_with(url, "/download/") ||
           ab_starts_with(url, "/list/") || ab_starts_with(url, "/exists/") ||
           ab_starts_with(url, "/agentbox/v1/stat/") || ab_starts_with(url, "/agentbox/v1/list/") ||
           strcmp(url, "/agentbox/v1/info") == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct rt_server *s = cls;
    struct req_state *st = *req_cls;
    if (!st) {
        st = calloc(1, sizeof(*st));
        if (!st)
            return MHD_NO;
        st->fd = -1;
        st->srv = s;
        buf_init(&st->body, RT_MAX_JSON_BODY);
        bool post = strcmp(method, "POST") == 0;
        if (post && strcmp(url, "/upload") == 0) {
            st->kind = RK_UPLOAD;
            st->pp = MHD_create_post_processor(c, 64 * 1024, upload_iter, st);
        } else if (post && (strcmp(url, "/execute") == 0 || strcmp(url, "/agentbox/v1/exec") == 0)) {
            st->kind = RK_JSON;
        }
        *req_cls = st;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (st->kind == RK_UPLOAD && st->pp) {
            MHD_post_process(st->pp, upload_data, *upload_data_size);
        } else if (st->kind == RK_JSON && !st->status) {
            if (buf_append(&st->body, upload_data, *upload_data_size))
                st->status = 413;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        if (strcmp(method, "HEAD") == 0)
            return send_detail(c, 405, "Method Not Allowed");
        return handle_get(s, c, url);
    }
    if (strcmp(method, "POST") == 0) {
        if (st->kind == RK_UPLOAD) {
            if (!st->pp)
                return send_422(c, "missing", "file", "Field required");
            return finish_upload(c, st);
        }
        if (st->kind == RK_JSON) {
            if (st->status == 413)
                return send_message(c, 413, "request body too large");
            if (strcmp(url, "/execute") == 0)
                return handle_execute(s, c, st);
            return handle_ext_exec(s, c, st);
        }
    }
    if (is_get_route(url) || strcmp(url, "/execute") == 0 || strcmp(url, "/upload") == 0 ||
        strcmp(url, "/agentbox/v1/exec") == 0)
        return send_detail(c, 405, "Method Not Allowed");
    return send_detail(c, 404, "Not Found");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req_state *st = *req_cls;
    if (!st)
        return;
    if (st->pp)
        MHD_destroy_post_processor(st->pp);
    if (st->fd >= 0)
        close(st->fd);
    buf_cleanup(&st->body);
    free(st->filename);
    free(st);
    *req_cls = NULL;
}

ab_status rt_server_start(const struct rt_config *cfg, struct rt_server **out, struct ab_err *err)
{
    struct rt_server *s = calloc(1, sizeof(*s));
    if (!s)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    s->base_real = realpath(cfg->base_dir, NULL);
    if (!s->base_real) {
        int e = errno;
        free(s);
        return ab_err_sys(err, AB_NOTFOUND, e, "base directory '%s'", cfg->base_dir);
    }
    s->exec_timeout_s = cfg->exec_timeout_s > 0 ? cfg->exec_timeout_s : 300.0;
    s->max_upload = cfg->max_upload_bytes;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, cfg->listen_host ? cfg->listen_host : "127.0.0.1", &sa.sin_addr) != 1) {
        free(s->base_real);
        free(s);
        return ab_err_set(err, AB_INVAL, "listen address '%s' is not an IPv4 address",
                          cfg->listen_host);
    }
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_ERROR_LOG,
                            0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)3600, MHD_OPTION_END);
    if (!s->d) {
        int e = errno;
        free(s->base_real);
        free(s);
        return ab_err_sys(err, AB_IO, e, "cannot listen on %s:%d",
                          cfg->listen_host ? cfg->listen_host : "127.0.0.1", cfg->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    *out = s;
    return AB_OK;
}

int rt_server_port(const struct rt_server *s)
{
    return s->port;
}

void rt_server_stop(struct rt_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    free(s->base_real);
    free(s);
}
