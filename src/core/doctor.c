/*
 * doctor.c - the report behind `agentbox doctor` (see doctor.h): collecting checks and
 * printing them.
 *
 * Texts are fixed-size (a check is a sentence or two, a diagnosis at most a paragraph), so
 * adding a check never fails halfway; the array of checks grows, and on allocation failure
 * the check is dropped rather than the report. Output is plain text meant for a terminal or
 * a bug report: no colour, no wrapping, one check per line with its fix indented below, so
 * `agentbox doctor | grep FAIL` works.
 *
 * Rejected: JSON output. Nothing consumes it yet, and the exit status (0 = nothing failed)
 * is what scripts need.
 */
#include "core/doctor.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void doctor_report_init(struct doctor_report *r)
{
    memset(r, 0, sizeof(*r));
}

void doctor_report_cleanup(struct doctor_report *r)
{
    free(r->checks);
    memset(r, 0, sizeof(*r));
}

void doctor_section(struct doctor_report *r, const char *title, bool required)
{
    if (r->nsections == sizeof(r->sections) / sizeof(r->sections[0]))
        return; /* a fixed set of providers: cannot happen */
    snprintf(r->sections[r->nsections], sizeof(r->sections[0]), "%s", title);
    r->section_required[r->nsections] = required;
    r->nsections++;
}

void doctor_add(struct doctor_report *r, enum doctor_result result, const char *name,
                const char *fix, const char *fmt, ...)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        struct doctor_check *v = realloc(r->checks, cap * sizeof(*v));
        if (!v)
            return;
        r->checks = v;
        r->cap = cap;
    }
    struct doctor_check *c = &r->checks[r->n++];
    memset(c, 0, sizeof(*c));
    c->section = r->nsections ? r->nsections - 1 : 0;
    c->result = result;
    if (result == DOCTOR_FAIL && r->nsections && !r->section_required[c->section]) {
        c->result = DOCTOR_WARN;
        c->advisory = true;
    }
    snprintf(c->name, sizeof(c->name), "%s", name);
    snprintf(c->fix, sizeof(c->fix), "%s", fix ? fix : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
}

size_t doctor_count(const struct doctor_report *r, enum doctor_result result)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->checks[i].result == result;
    return n;
}

static const char *tag(enum doctor_result res)
{
    switch (res) {
    case DOCTOR_OK:
        return "ok  ";
    case DOCTOR_WARN:
        return "WARN";
    case DOCTOR_FAIL:
        return "FAIL";
    case DOCTOR_SKIP:
        return "skip";
    }
    return "?";
}

void doctor_print(const struct doctor_report *r, FILE *out)
{
    size_t section = (size_t)-1;
    for (size_t i = 0; i < r->n; i++) {
        const struct doctor_check *c = &r->checks[i];
        if (c->section != section && c->section < r->nsections) {
            section = c->section;
            fprintf(out, "%s%s%s\n", section ? "\n" : "", r->sections[section],
                    r->section_required[section]
                        ? ""
                        : " (not the configured provider: problems are warnings)");
        }
        fprintf(out, "  %s  %-18s %s\n", tag(c->result), c->name, c->detail);
        if (c->fix[0] && c->result != DOCTOR_OK)
            fprintf(out, "        fix: %s\n", c->fix);
    }
    size_t fails = doctor_count(r, DOCTOR_FAIL), warns = doctor_count(r, DOCTOR_WARN);
    fprintf(out, "\n%zu ok, %zu warning%s, %zu failed, %zu skipped: %s\n",
            doctor_count(r, DOCTOR_OK), warns, warns == 1 ? "" : "s", fails,
            doctor_count(r, DOCTOR_SKIP),
            fails ? "the configured provider cannot work until the failures are fixed"
                  : "the configured provider can run sandboxes here");
}
