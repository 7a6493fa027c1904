/*
 * doctor.h - `agentbox doctor`: checks of the host (local provider) and of the cluster
 * (Kubernetes provider), each printed with what was found and, when something is wrong,
 * the fix.
 *
 * A report is a list of checks grouped in sections, one section per provider. Each provider
 * contributes its checks through one entry point below (implemented next to the provider:
 * providers/local/doctor.c, providers/k8s/doctor.c), so the knowledge of what a provider
 * needs stays with the provider and main.c only prints the report. A section for a
 * provider that is not the configured one is advisory: its failures count as warnings.
 *
 * The checks run in the doctor's own process, before any thread exists (the local checks
 * fork probes), and never touch what a running server uses: probes create their sandboxes
 * under a temporary state directory.
 */
#ifndef AB_CORE_DOCTOR_H
#define AB_CORE_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

enum doctor_result {
    DOCTOR_OK = 0,
    DOCTOR_WARN, /* works, with a limitation worth knowing */
    DOCTOR_FAIL, /* the provider cannot work until this is fixed */
    DOCTOR_SKIP, /* not checked (not configured, or an earlier check failed) */
};

#define DOCTOR_TEXT_MAX 1024

struct doctor_check {
    enum doctor_result result;
    bool advisory;  /* a FAIL turned into a WARN because the section is advisory */
    size_t section; /* index into doctor_report.sections */
    char name[48];
    char detail[DOCTOR_TEXT_MAX];
    char fix[DOCTOR_TEXT_MAX]; /* "" when there is nothing to do */
};

struct doctor_report {
    struct doctor_check *checks;
    size_t n, cap;
    char sections[4][96];
    bool section_required[4];
    size_t nsections;
};

void doctor_report_init(struct doctor_report *r);
void doctor_report_cleanup(struct doctor_report *r);

/* Start a section; the checks added next belong to it. required = false makes it advisory. */
void doctor_section(struct doctor_report *r, const char *title, bool required);

/* Add a check to the current section. fix may be NULL or "" (nothing to do); detail is a
 * printf format. Texts longer than DOCTOR_TEXT_MAX are cut. */
void doctor_add(struct doctor_report *r, enum doctor_result result, const char *name,
                const char *fix, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Checks with this (effective) result. */
size_t doctor_count(const struct doctor_report *r, enum doctor_result result);

/* Print the report for a person: one line per check, its fix indented below, a summary. */
void doctor_print(const struct doctor_report *r, FILE *out);

/* ---- the provider-side checks ---- */

/* The local provider: user, mount, PID, network, IPC, UTS and cgroup namespaces, mounts
 * inside them, seccomp, cgroup version and controllers, the state directory, and one real
 * sandbox created, run and destroyed (under a temporary state directory). Forks: call it
 * while the process has a single thread. */
void sbx_local_doctor(const struct config *cfg, struct doctor_report *r);

/* The Kubernetes provider: kubeconfig or in-cluster credentials, API reachability, the
 * agent-sandbox CRDs and their versions, the SandboxTemplate, the configured warm pool, the
 * permissions agentbox needs, and the connection mode's prerequisites. */
void sbx_k8s_doctor(const struct config *cfg, struct doctor_report *r);

#endif
