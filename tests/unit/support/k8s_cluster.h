/*
 * k8s_cluster.h - start the test Kubernetes cluster (tests/k8s/cluster.mjs: API server,
 * emulated agent-sandbox controller, router, agentbox-runtime pods) from a C test, talk to
 * its admin API, stop it. The cluster exits when our end of its stdin closes, so a test
 * that crashes leaves nothing behind.
 */
#ifndef AB_TEST_K8S_CLUSTER_H
#define AB_TEST_K8S_CLUSTER_H

#include <jansson.h>
#include <sys/types.h>

#include "config/config.h"

struct tk8s {
    pid_t pid;
    int stdin_fd;
    char dir[256];
    json_t *info; /* api, router, routerPort, token, kubeconfig, namespace, ... */
};

/* Start with extra CLI args (NULL-terminated, may be NULL). Exits the test on failure.
 * The router wants a bearer token, as the shipped sandbox-router does (a random one, in
 * info "routerToken"), unless args name one: "--router-token" "" runs it open. */
void tk8s_start(struct tk8s *c, const char *const *args);
void tk8s_stop(struct tk8s *c);
const char *tk8s_str(const struct tk8s *c, const char *key);
/* POST/GET/DELETE to the cluster's API server (admin or API paths, with the token). Returns
 * the parsed JSON body (new) or NULL; *status gets the HTTP status. */
json_t *tk8s_http(const struct tk8s *c, const char *method, const char *path, const char *body,
                  long *status);
/* Shortcut: POST /_admin/faults with a JSON text. */
void tk8s_fault(const struct tk8s *c, const char *json);
/* Fill cfg (defaults + k8s keys) for this cluster: direct mode through the router, the
 * warm pool named, workspace /workspace, and the router's token (if it has one) in
 * k8s.router_token_file = tk8s_router_token_file(c). */
void tk8s_config(const struct tk8s *c, struct config *cfg);
/* The file tk8s_config points k8s.router_token_file at (written by tk8s_config). */
const char *tk8s_router_token_file(const struct tk8s *c);
/* Path of tests/k8s in the source tree. */
const char *tk8s_source_dir(void);

#endif
