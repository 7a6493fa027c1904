/*
 * fsops_read.c - the read and edit tools.
 *
 * read reproduces, step by step, what an agent sees from deepagents 0.7.8 with a sandbox
 * backend: BaseSandbox's read helper (stat checks, empty file, media by extension, binary by
 * an invalid UTF-8 first 8 KiB, universal newlines, the 500 KiB page cap with its banner,
 * total_lines only for files up to 1 MiB unless the page reached EOF) and then the
 * FilesystemMiddleware rendering (format_content_with_line_numbers with 5000-character
 * chunks and "N.k" continuation markers right-aligned to the page's widest marker, the
 * pagination notice, and _truncate_paginated_read's 80,000-character budget that cuts at the
 * last complete source line and recomputes the notice). Lengths are in characters (code
 * points), as Python's len() counts them. The row rendering streams over the page twice
 * (width and size first, then output), so memory stays at the size of the page.
 *
 * The provider read primitive returns whole files (up to tools.read.max_bytes); pagination
 * happens here, so every provider pages identically.
 *
 * edit is BaseSandbox's server-side edit: exact substring, first trying old_string as sent,
 * then its CRLF form, then its LF form, and applying the same transform to new_string so a
 * CRLF file stays CRLF (deepagents #2880); more than one occurrence without replace_all is an
 * error; the texts are _map_edit_error's.
 */
#include "core/fsops_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define READ_MAX_LINE_CHARS  5000          /* MAX_LINE_LENGTH */
#define READ_PAGE_BYTES      (500 * 1024)  /* MAX_OUTPUT_BYTES of the sandbox helper */
#define READ_COUNT_MAX_BYTES (1024 * 1024) /* MAX_LINE_COUNT_BYTES */
#define READ_UTF8_PROBE      8192

/* Backend banner (backends/sandbox.py TRUNCATION_MSG). */
#define READ_PAGE_TRUNCATION_MSG                                                                   \
    "\n\n[Output was truncated due to size limits. This paginated read result exceeded the "       \
    "sandbox stdout limit. Continue reading with a larger offset or smaller limit to inspect "     \
    "the rest of the file.]"

#define EMPTY_CONTENT_WARNING "System reminder: File exists but has empty contents"

/* ---- lines with universal newlines ("\n", "\r\n", "\r") ---- */

struct line_iter {
    const char *s;
    size_t len;
    size_t pos;
};

static bool next_line(struct line_iter *it, size_t *start, size_t *llen)
{
    if (it->pos >= it->len)
        return false;
    size_t p = it->pos, q = p;
    while (q < it->len && it->s[q] != '\n' && it->s[q] != '\r')
        q++;
    *start = p;
    *llen = q - p;
    if (q >= it->len)
        it->pos = it->len;
    else if (it->s[q] == '\r' && q + 1 < it->len && it->s[q + 1] == '\n')
        it->pos = q + 2;
    else
        it->pos = q + 1;
    return true;
}

/* The first bytes decode as UTF-8 with an incremental decoder (final=False): a sequence cut
 * off by the end of the probe is fine, any other error means binary. */
static bool utf8_probe_ok(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else
            return false;
        for (size_t k = 1; k <= need; k++) {
            if (i + k >= n)
                return true; /* incomplete at the end: buffered, not an error */
            unsigned char b = s[i + k];
            if (k == 1 ? (b < lo || b > hi) : ((b & 0xC0) != 0x80))
                return false;
        }
        i += need + 1;
    }
    return true;
}

/* ---- the rendered page: rows of "{marker:>W}  {chunk}" ---- */

struct row {
    int64_t line;  /* source line number */
    size_t chunk;  /* 0 for the first row of a line, k for "line.k" */
    const char *p; /* chunk bytes */
    size_t bytes;
    size_t cps;
};

struct rows {
    const char *text;
    size_t len;
    int64_t start_line;
    size_t pos;       /* start of the current line */
    size_t line_end;  /* end of the current line (exclusive) */
    size_t chunk_pos; /* start of the next chunk in the current line */
    size_t chunk_idx;
    int64_t line_idx; /* index of the current line, -1 before the first */
    bool in_line;
};

static void rows_init(struct rows *r, const char *text, size_t len, int64_t start_line)
{
    memset(r, 0, sizeof(*r));
    r->text = text;
    r->len = len;
    r->start_line = start_line;
    r->line_idx = -1;
}

/* content.split("\n") without a trailing empty element, each line cut into chunks. */
static bool rows_next(struct rows *r, struct row *out)
{
    if (!r->in_line) {
        if (r->pos >= r->len)
            return false;
        const char *nl = memchr(r->text + r->pos, '\n', r->len - r->pos);
        r->line_end = nl ? (size_t)(nl - r->text) : r->len;
        r->chunk_pos = r->pos;
        r->chunk_idx = 0;
        r->line_idx++;
        r->in_line = true;
    }
    size_t avail = r->line_end - r->chunk_pos;
    size_t take = fsops__cp_prefix(r->text + r->chunk_pos, avail, READ_MAX_LINE_CHARS);
    out->line = r->start_line + r->line_idx;
    out->chunk = r->chunk_idx;
    out->p = r->text + r->chunk_pos;
    out->bytes = take;
    out->cps = fsops__cp_len(out->p, take);
    r->chunk_pos += take;
    r->chunk_idx++;
    if (r->chunk_pos >= r->line_end) {
        r->in_line = false;
        r->pos = r->line_end + 1;
    }
    return true;
}

static size_t marker_len(const struct row *w)
{
    char m[48];
    if (w->chunk)
        return (size_t)snprintf(m, sizeof(m), "%lld.%zu", (long long)w->line, w->chunk);
    return (size_t)snprintf(m, sizeof(m), "%lld", (long long)w->line);
}

/* Append rows until `limit` characters have been written (a row may be cut). */
static ab_status rows_emit(const char *text, size_t len, int64_t start_line, size_t width,
                           size_t limit, struct buf *out)
{
    struct rows r;
    rows_init(&r, text, len, start_line);
    struct row w;
    size_t written = 0;
    bool first = true;
    ab_status rc = AB_OK;
    while (!rc && written < limit && rows_next(&r, &w)) {
        char m[96];
        char mk[48];
        if (w.chunk)
            snprintf(mk, sizeof(mk), "%lld.%zu", (long long)w.line, w.chunk);
        else
            snprintf(mk, sizeof(mk), "%lld", (long long)w.line);
        int ml = snprintf(m, sizeof(m), "%s%*s  ", first ? "" : "\n", (int)width, mk);
        size_t mchars = (size_t)ml; /* ASCII */
        if (written + mchars > limit) {
            rc = buf_append(out, m, limit - written);
            written = limit;
            break;
        }
        rc = buf_append(out, m, (size_t)ml);
        written += mchars;
        first = false;
        if (rc)
            break;
        size_t room = limit - written;
        if (w.cps <= room) {
            rc = buf_append(out, w.p, w.bytes);
            written += w.cps;
        } else {
            rc = buf_append(out, w.p, fsops__cp_prefix(w.p, w.bytes, room));
            written = limit;
        }
    }
    return rc;
}

/* _remaining_lines_notice(); total < 0 = unknown, next < 0 = None. */
static ab_status remaining_notice(struct buf *out, int64_t start, int64_t end, int64_t total,
                                  int64_t next)
{
    if (next < 0)
        return AB_OK;
    int64_t n = end - start + 1;
    const char *unit = n == 1 ? "line" : "lines";
    if (total < 0)
        return buf_printf(out,
                          "\n\n[Read %lld %s (lines %lld-%lld). More lines remain from offset "
                          "%lld.]",
                          (long long)n, unit, (long long)start, (long long)end, (long long)next);
    if (end >= total)
        return AB_OK;
    int64_t remaining = total - end;
    return buf_printf(out,
                      "\n\n[Read %lld %s (lines %lld-%lld of %lld total). %lld %s remaining from "
                      "offset %lld.]",
                      (long long)n, unit, (long long)start, (long long)end, (long long)total,
                      (long long)remaining, remaining == 1 ? "line" : "lines", (long long)next);
}

/* Byte offset in text just after source line `upto` (1-based within the page), 0 if none. */
static size_t page_prefix_bytes(const char *text, size_t len, int64_t upto)
{
    size_t pos = 0;
    for (int64_t k = 0; k < upto && pos <= len; k++) {
        const char *nl = pos < len ? memchr(text + pos, '\n', len - pos) : NULL;
        if (!nl)
            return len;
        if (k + 1 == upto)
            return (size_t)(nl - text);
        pos = (size_t)(nl - text) + 1;
    }
    return 0;
}

struct page {
    struct buf text; /* the backend's raw window, LF-joined (+ banner when truncated) */
    size_t src_len;  /* bytes of text before the banner */
    int64_t start_line, end_line, total, next;
    bool byte_truncated;
};

/* Render a text page the way the middleware does; fills res->text and res->structured. */
static ab_status render_page(const char *abs, const struct page *pg, int64_t req_offset,
                             const char *mime, size_t file_size, struct fsops_result *res)
{
    const char *text = buf_cstr(&pg->text);
    size_t len = pg->text.len;
    /* pass 1: marker width and content length in characters */
    struct rows r;
    struct row w;
    size_t width = 0, nrows = 0, chars = 0;
    rows_init(&r, text, len, pg->start_line);
    while (rows_next(&r, &w)) {
        size_t ml = marker_len(&w);
        if (ml > width)
            width = ml;
        chars += w.cps;
        nrows++;
    }
    chars += nrows * 2 + (nrows ? nrows - 1 : 0);
    chars += nrows * width; /* every marker is padded to width */

    struct buf notice;
    buf_init(&notice, 4096);
    ab_status rc = remaining_notice(&notice, pg->start_line, pg->end_line, pg->total, pg->next);
    int64_t shown_end = pg->end_line; /* last complete source line shown */
    int64_t shown_next = pg->next;
    bool cut = false;
    if (!rc && chars + fsops__cp_len(buf_cstr(&notice), notice.len) < FSOPS_TOOL_CHARS) {
        rc = rows_emit(text, len, pg->start_line, width, (size_t)-1, &res->text);
        if (!rc)
            rc = buf_append(&res->text, buf_cstr(&notice), notice.len);
    } else if (!rc) {
        /* _truncate_paginated_read: keep the longest prefix that ends after the last row of
         * a source line and fits with the size message and a recomputed notice. */
        cut = true;
        char *msg = ab_asprintf(
            "\n\n[Output was truncated due to size limits. The file content is very large. "
            "Consider reformatting the file to make it easier to navigate. For example, if "
            "this is JSON, use execute(command='jq . %s') to pretty-print it with line breaks. "
            "For other formats, you can use appropriate formatting tools to split long "
            "lines.]",
            abs);
        if (!msg) {
            buf_cleanup(&notice);
            return AB_NOMEM;
        }
        size_t msg_chars = fsops__cp_len(msg, strlen(msg));
        size_t best_pos = 0;
        int64_t best_line = -1;
        size_t position = 0;
        struct buf adj;
        buf_init(&adj, 4096);
        rows_init(&r, text, len, pg->start_line);
        bool have = rows_next(&r, &w);
        while (have && !rc) {
            struct row cur = w;
            position += width + 2 + cur.cps;
            if (cur.line > pg->end_line)
                break; /* the backend banner's rows are not file content */
            have = rows_next(&r, &w);
            if (!have || w.line != cur.line) {
                buf_reset(&adj);
                rc = remaining_notice(&adj, pg->start_line, cur.line, pg->total, cur.line);
                if (position > FSOPS_TOOL_CHARS)
                    break; /* later boundaries only grow */
                if (!rc && position + msg_chars + fsops__cp_len(buf_cstr(&adj), adj.len) <=
                               FSOPS_TOOL_CHARS) {
                    best_pos = position;
                    best_line = cur.line;
                }
            }
            position += 1;
        }
        if (!rc && best_line >= 0) {
            rc = rows_emit(text, len, pg->start_line, width, best_pos, &res->text);
            buf_reset(&adj);
            if (!rc)
                rc = remaining_notice(&adj, pg->start_line, best_line, pg->total, best_line);
            if (!rc)
                rc = buf_append_str(&res->text, msg);
            if (!rc)
                rc = buf_append(&res->text, buf_cstr(&adj), adj.len);
            shown_end = best_line;
            shown_next = best_line;
        } else if (!rc) {
            /* No complete source line fits: the size message alone, no stale offset. */
            size_t max_chars = FSOPS_TOOL_CHARS > msg_chars ? FSOPS_TOOL_CHARS - msg_chars : 0;
            rc = rows_emit(text, len, pg->start_line, width, max_chars, &res->text);
            if (!rc)
                rc = buf_append_str(&res->text, msg);
            shown_end = pg->start_line - 1;
            shown_next = -1;
        }
        buf_cleanup(&adj);
        free(msg);
    }
    buf_cleanup(&notice);
    if (!rc && req_offset < 0)
        rc = buf_printf(&res->text,
                        "\n\n[Requested offset %lld is before the start of the file; read from "
                        "line 1 instead.]",
                        (long long)req_offset);
    if (rc)
        return rc;

    size_t src_bytes = page_prefix_bytes(text, pg->src_len, shown_end - pg->start_line + 1);
    json_t *st = json_pack(
        "{s:o,s:s,s:s,s:I,s:o,s:I,s:b}", "path", fsops__json_str(abs, strlen(abs)), "type", "text",
        "mime_type", mime, "size", (json_int_t)file_size, "content", json_stringn(text, src_bytes),
        "start_line", (json_int_t)pg->start_line, "truncated", cut || pg->byte_truncated);
    if (!st)
        return AB_NOMEM;
    if (shown_end >= pg->start_line)
        json_object_set_new(st, "end_line", json_integer(shown_end));
    if (pg->total >= 0)
        json_object_set_new(st, "total_lines", json_integer(pg->total));
    if (shown_next >= 0)
        json_object_set_new(st, "next_offset", json_integer(shown_next));
    res->structured = st;
    return AB_OK;
}

static ab_status empty_reminder(const char *abs, const char *mime, size_t size, bool no_lines,
                                int64_t limit, struct fsops_result *res)
{
    ab_status rc;
    if (no_lines)
        rc = buf_printf(&res->text,
                        "System reminder: no lines were read because `limit` was %lld. The file "
                        "was not inspected and may have contents; retry with `limit` >= 1 to "
                        "read it.",
                        (long long)limit);
    else
        rc = buf_append_str(&res->text, EMPTY_CONTENT_WARNING);
    if (rc)
        return rc;
    res->structured = json_pack("{s:o,s:s,s:s,s:I,s:s,s:b}", "path",
                                fsops__json_str(abs, strlen(abs)), "type", "text", "mime_type",
                                mime, "size", (json_int_t)size, "content", "", "truncated", 0);
    return res->structured ? AB_OK : AB_NOMEM;
}

static ab_status media_result(const char *abs, enum fsops_ftype ft, const char *mime,
                              const struct buf *data, struct fsops_result *res)
{
    char *b64 = ab_base64_encode(buf_cstr(data), data->len, NULL);
    char *uri = fsops__file_uri(abs);
    json_t *block = NULL;
    ab_status rc = AB_NOMEM;
    if (!b64 || !uri)
        goto out;
    /* MCP content blocks (2025-11-25 schema): image and audio blocks carry data + mimeType;
     * video, PDF and other binary files travel as an embedded resource with a blob. */
    if (ft == FSOPS_FT_IMAGE || ft == FSOPS_FT_AUDIO)
        block = json_pack("{s:s,s:s,s:s}", "type", ft == FSOPS_FT_IMAGE ? "image" : "audio", "data",
                          b64, "mimeType", mime);
    else
        block = json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "resource", "resource", "uri", uri,
                          "mimeType", mime, "blob", b64);
    res->content = json_array();
    if (!block || !res->content || json_array_append_new(res->content, block))
        goto out;
    block = NULL;
    rc = buf_printf(&res->text, "%s: %s, %zu bytes (%s content)", abs, mime, data->len,
                    fsops__ftype_name(ft));
    if (rc)
        goto out;
    res->structured = json_pack("{s:o,s:s,s:s,s:I,s:b}", "path", fsops__json_str(abs, strlen(abs)),
                                "type", fsops__ftype_name(ft), "mime_type", mime, "size",
                                (json_int_t)data->len, "truncated", 0);
    rc = res->structured ? AB_OK : AB_NOMEM;
out:
    json_decref(block);
    free(b64);
    free(uri);
    return rc;
}

/* The sandbox helper's text window over the whole file. Returns AB_OK, or AB_NOTFOUND with
 * *line_count set when offset is past the end. */
static ab_status read_window(const char *s, size_t len, int64_t offset, int64_t limit,
                             struct page *pg, int64_t *line_count_out)
{
    struct line_iter it = {s, len, 0};
    size_t ls, ll;
    int64_t line_count = 0, returned = 0;
    bool at_eof = false, truncated = false;
    const size_t banner = strlen(READ_PAGE_TRUNCATION_MSG);
    const size_t effective = READ_PAGE_BYTES - banner;
    while (line_count < offset) {
        if (!next_line(&it, &ls, &ll)) {
            at_eof = true;
            break;
        }
        line_count++;
    }
    struct buf line;
    buf_init(&line, (size_t)-1);
    ab_status rc = AB_OK;
    while (!at_eof && returned < limit && !truncated) {
        if (!next_line(&it, &ls, &ll)) {
            at_eof = true;
            break;
        }
        line_count++;
        buf_reset(&line);
        if (returned)
            rc = buf_append_char(&line, '\n');
        if (!rc)
            rc = fsops__utf8_sanitize(&line, s + ls, ll);
        if (rc)
            break;
        if (pg->text.len + line.len > effective) {
            truncated = true;
            size_t room = effective - pg->text.len;
            if (room > 0) {
                size_t keep = ab_utf8_trim_len(line.data, AB_MIN(room, line.len));
                rc = buf_append(&pg->text, line.data, keep);
            }
            break;
        }
        rc = buf_append(&pg->text, line.data, line.len);
        if (rc)
            break;
        returned++;
    }
    buf_cleanup(&line);
    if (rc)
        return rc;
    if (!at_eof)
        at_eof = it.pos >= len;
    if (returned == 0 && !truncated) {
        *line_count_out = line_count;
        return AB_NOTFOUND;
    }
    int64_t total = -1;
    if (at_eof) {
        total = line_count;
    } else if (len <= READ_COUNT_MAX_BYTES) {
        struct line_iter all = {s, len, 0};
        total = 0;
        while (next_line(&all, &ls, &ll))
            total++;
    }
    pg->src_len = pg->text.len;
    if (truncated) {
        rc = buf_append_str(&pg->text, READ_PAGE_TRUNCATION_MSG);
        if (rc)
            return rc;
        if (returned == 0)
            returned = 1; /* make progress past a line longer than the page */
    }
    pg->byte_truncated = truncated;
    pg->start_line = offset + 1;
    pg->end_line = offset + returned;
    if (total >= 0)
        pg->next = pg->end_line < total ? pg->end_line : -1;
    else
        pg->next = pg->end_line;
    pg->total = total;
    return AB_OK;
}

ab_status fsops_read(const struct fsops_env *env, struct fsops_str path, int64_t offset,
                     int64_t limit, struct fsops_result *res, struct ab_err *err)
{
    const struct cfg_tools *lim = fsops__limits(env);
    char *abs = NULL;
    struct buf data;
    buf_init(&data, (size_t)-1);
    struct page pg;
    memset(&pg, 0, sizeof(pg));
    buf_init(&pg.text, READ_PAGE_BYTES + 1024);
    ab_status rc = fsops__open(env, path, false, FSOPS_ACCESS_READ, &abs, res);
    if (rc || !abs)
        goto out;

    struct sbx_stat st;
    struct ab_err perr;
    ab_status src = fsops__stat(env, abs, &st, &perr);
    enum fsops_ftype ft = fsops__file_type(abs);
    uint64_t cap = ft == FSOPS_FT_TEXT ? lim->read_max_bytes : lim->read_max_binary_bytes;
    if (!src && st.target_type != SBX_FT_FILE)
        src = AB_ISDIR; /* not a regular file */
    if (!src) {
        data.max = cap;
        src = env->p->ops->read_file(env->p, env->h, abs, cap, &data, &perr);
    }
    if (src) {
        rc = fsops__infra_pass(src, &perr, err);
        if (rc)
            goto out;
        /* BaseSandbox read: ReadResult(error=f"File '{file_path}': {code}") + "Error: " */
        if (src == AB_LIMIT && ft != FSOPS_FT_TEXT)
            rc = fsops__fail(res,
                             "Error: File '%s': Binary file exceeds maximum preview size of "
                             "%llu bytes",
                             abs, (unsigned long long)cap);
        else if (src == AB_LIMIT)
            rc = fsops__fail(res,
                             "Error: File '%s': file_too_large (the read limit is %llu bytes); "
                             "inspect parts of it with the execute tool (head, tail, sed -n)",
                             abs, (unsigned long long)cap);
        else
            rc = fsops__fail(res, "Error: File '%s': %s", abs,
                             src == AB_NOTFOUND ? "file_not_found"
                             : src == AB_DENIED ? "permission_denied"
                             : src == AB_ISDIR  ? "not_a_file"
                             : src == AB_NOTDIR ? "file_not_found"
                                                : ab_status_name(src));
        goto out;
    }
    const char *mime = fsops__mime_from_ext(abs);
    if (data.len == 0) {
        rc = empty_reminder(abs, mime ? mime : "text/plain", 0, false, limit, res);
        goto out;
    }
    if (ft != FSOPS_FT_TEXT) {
        rc = media_result(abs, ft, mime, &data, res);
        goto out;
    }
    if (!utf8_probe_ok(data.data, AB_MIN(data.len, (size_t)READ_UTF8_PROBE))) {
        if (data.len > lim->read_max_binary_bytes) {
            rc = fsops__fail(res,
                             "Error: File '%s': Binary file exceeds maximum preview size of "
                             "%llu bytes",
                             abs, (unsigned long long)lim->read_max_binary_bytes);
            goto out;
        }
        rc = media_result(abs, FSOPS_FT_FILE, mime ? mime : "application/octet-stream", &data, res);
        goto out;
    }
    if (!mime)
        mime = "text/plain";
    int64_t off = offset < 0 ? 0 : offset;
    int64_t lines = limit < 0 ? 0 : limit;
    if (lines == 0) {
        rc = empty_reminder(abs, mime, data.len, true, limit, res);
        goto out;
    }
    int64_t line_count = 0;
    rc = read_window(data.data, data.len, off, lines, &pg, &line_count);
    if (rc == AB_NOTFOUND) {
        rc = fsops__fail(res, "Error: File '%s': Line offset %lld exceeds file length (%lld lines)",
                         abs, (long long)off, (long long)line_count);
        goto out;
    }
    if (rc)
        goto out;
    /* check_empty_content() on the page; we give the reminder only when the whole file is
     * blank too, since a blank page of a non-blank file is not "empty contents". */
    if (fsops__is_blank(pg.text.data, pg.text.len) && fsops__is_blank(data.data, data.len)) {
        rc = empty_reminder(abs, mime, data.len, false, limit, res);
        goto out;
    }
    rc = render_page(abs, &pg, offset, mime, data.len, res);
out:
    buf_cleanup(&pg.text);
    buf_cleanup(&data);
    free(abs);
    return rc;
}

/* ---- edit ---- */

/* s.replace("\r\n", "\n"), and then optionally .replace("\n", "\r\n"). */
static ab_status eol_variant(const char *s, size_t len, bool crlf, struct buf *out)
{
    ab_status rc = AB_OK;
    for (size_t i = 0; i < len && !rc; i++) {
        if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
            continue; /* the '\n' that follows is emitted next */
        if (s[i] == '\n' && crlf)
            rc = buf_append(out, "\r\n", 2);
        else
            rc = buf_append_char(out, s[i]);
    }
    return rc;
}

static size_t count_occurrences(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    size_t n = 0;
    const char *p = hay, *end = hay + hlen;
    while ((size_t)(end - p) >= nlen) {
        const char *m = memmem(p, (size_t)(end - p), needle, nlen);
        if (!m)
            break;
        n++;
        p = m + nlen;
    }
    return n;
}

static ab_status replace_bytes(const char *hay, size_t hlen, const char *old_s, size_t olen,
                               const char *new_s, size_t nlen, bool all, struct buf *out)
{
    const char *p = hay, *end = hay + hlen;
    ab_status rc = AB_OK;
    while (!rc && (size_t)(end - p) >= olen) {
        const char *m = memmem(p, (size_t)(end - p), old_s, olen);
        if (!m)
            break;
        rc = buf_append(out, p, (size_t)(m - p));
        if (!rc)
            rc = buf_append(out, new_s, nlen);
        p = m + olen;
        if (!all)
            break;
    }
    if (!rc)
        rc = buf_append(out, p, (size_t)(end - p));
    return rc;
}

ab_status fsops_edit(const struct fsops_env *env, struct fsops_str path, struct fsops_str old_s,
                     struct fsops_str new_s, bool replace_all, struct fsops_result *res,
                     struct ab_err *err)
{
    const struct cfg_tools *lim = fsops__limits(env);
    char *abs = NULL;
    struct buf data, out, vo[2], vn[2];
    buf_init(&data, lim->read_max_bytes);
    buf_init(&out, lim->read_max_bytes);
    for (int i = 0; i < 2; i++) {
        buf_init(&vo[i], (size_t)-1);
        buf_init(&vn[i], (size_t)-1);
    }
    const char *old_p = old_s.ptr ? old_s.ptr : "", *new_p = new_s.ptr ? new_s.ptr : "";
    ab_status rc = fsops__open(env, path, false, FSOPS_ACCESS_WRITE, &abs, res);
    if (rc || !abs)
        goto out;

    struct sbx_stat st;
    struct ab_err perr;
    ab_status src = fsops__stat(env, abs, &st, &perr);
    if (!src && st.target_type != SBX_FT_FILE) {
        rc = fsops__fail(res, "Error: '%s' is not a regular file", abs);
        goto out;
    }
    if (!src)
        src = env->p->ops->read_file(env->p, env->h, abs, lim->read_max_bytes, &data, &perr);
    if (src) {
        rc = fsops__infra_pass(src, &perr, err);
        if (rc)
            goto out;
        if (src == AB_NOTFOUND || src == AB_NOTDIR)
            rc = fsops__fail(res, "Error: File '%s' not found", abs);
        else if (src == AB_DENIED)
            rc = fsops__fail(res, "Error: Permission denied editing file '%s'", abs);
        else if (src == AB_ISDIR)
            rc = fsops__fail(res, "Error: '%s' is not a regular file", abs);
        else
            rc = fsops__fail(res, "Error editing file '%s': %s", abs,
                             src == AB_LIMIT ? "file_too_large" : ab_status_name(src));
        goto out;
    }
    if (!ab_utf8_valid(buf_cstr(&data), data.len)) {
        rc = fsops__fail(res, "Error: File '%s' is not a text file", abs);
        goto out;
    }

    size_t count = 0;
    const char *mo = old_p, *mn = new_p;
    size_t mol = old_s.len, mnl = new_s.len;
    if (old_s.len == 0) {
        /* Python counts len(text)+1 empty matches; only an empty file has exactly one. We
         * refuse the other case outright instead of interleaving new_string between every
         * character (what replace_all would do) or suggesting replace_all=True. */
        if (data.len) {
            rc = fsops__fail(res, "Error: old_string must not be empty unless the file is "
                                  "empty. Provide the exact text to replace.");
            goto out;
        }
        count = 1;
    } else {
        /* (old, new), then the CRLF variants, then the LF variants: the first that occurs
         * reveals the file's line-ending style in that region. */
        count = count_occurrences(buf_cstr(&data), data.len, old_p, old_s.len);
        for (int v = 0; v < 2 && !count; v++) {
            rc = eol_variant(old_p, old_s.len, v == 0, &vo[v]);
            if (!rc)
                rc = eol_variant(new_p, new_s.len, v == 0, &vn[v]);
            if (rc)
                goto out;
            if (vo[v].len == 0)
                continue;
            count = count_occurrences(buf_cstr(&data), data.len, vo[v].data, vo[v].len);
            if (count) {
                mo = vo[v].data;
                mol = vo[v].len;
                mn = buf_cstr(&vn[v]);
                mnl = vn[v].len;
            }
        }
    }
    if (count == 0 || (count > 1 && !replace_all)) {
        /* old_string is quoted raw (it may hold NUL bytes, so no printf). */
        rc = fsops__fail(res, "%s",
                         count ? "Error: String '" : "Error: String not found in file: '");
        if (!rc)
            rc = buf_append(&res->text, old_p, old_s.len);
        if (!rc)
            rc =
                buf_append_str(&res->text, count ? "' appears multiple times. Use replace_all=True "
                                                   "to replace all occurrences."
                                                 : "'");
        goto out;
    }
    if (old_s.len == 0)
        rc = buf_append(&out, new_p, new_s.len);
    else
        rc = replace_bytes(buf_cstr(&data), data.len, mo, mol, mn, mnl, replace_all, &out);
    if (rc == AB_LIMIT) {
        rc = fsops__fail(res, "Error editing file '%s': result_too_large", abs);
        goto out;
    }
    if (rc)
        goto out;
    ab_err_clear(&perr);
    ab_status wrc = env->p->ops->write_file(env->p, env->h, abs, buf_cstr(&out), out.len, &perr);
    if (wrc) {
        rc = fsops__infra_pass(wrc, &perr, err);
        if (rc)
            goto out;
        if (wrc == AB_DENIED)
            rc = fsops__fail(res, "Error: Permission denied editing file '%s'", abs);
        else
            rc = fsops__fail(res, "Error editing file '%s': %s", abs,
                             fsops__file_error_code(wrc) ? fsops__file_error_code(wrc)
                                                         : ab_status_name(wrc));
        goto out;
    }
    rc = buf_printf(&res->text, "Successfully replaced %zu instance(s) of the string in '%s'",
                    count, abs);
    if (!rc) {
        res->structured = json_pack("{s:o,s:I}", "path", fsops__json_str(abs, strlen(abs)),
                                    "occurrences", (json_int_t)count);
        if (!res->structured)
            rc = AB_NOMEM;
    }
out:
    for (int i = 0; i < 2; i++) {
        buf_cleanup(&vo[i]);
        buf_cleanup(&vn[i]);
    }
    buf_cleanup(&out);
    buf_cleanup(&data);
    free(abs);
    return rc;
}
