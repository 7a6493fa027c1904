/*
 * k8s.h - the agent-sandbox Kubernetes provider (sandbox.provider: agent-sandbox).
 *
 * Sandboxes are SandboxClaims (extensions.agents.x-k8s.io, v1beta1 with spec.warmPoolRef, or
 * v1alpha1 with spec.sandboxTemplateRef + spec.warmpool on agent-sandbox <= 0.4); commands and
 * files go to the sandbox pod's runtime (the python-runtime HTTP API, or agentbox-runtime with
 * its /agentbox/v1 extensions) through the sandbox-router, a Gateway, the pod IP, or a
 * kubectl port-forward tunnel. See agent-sandbox.md for the protocol.
 */
#ifndef AB_PROVIDERS_K8S_H
#define AB_PROVIDERS_K8S_H

#include "base/status.h"
#include "config/config.h"
#include "core/sandbox.h"

/* Create the provider from cfg->k8s (and cfg->sandbox for TTL defaults). Does not contact the
 * cluster (check() does); *out is new, freed with (*out)->ops->free. */
ab_status sbx_k8s_new(const struct config *cfg, struct sbx_provider **out, struct ab_err *err);

#endif
