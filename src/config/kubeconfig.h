/*
 * kubeconfig.h - kubeconfig files (the format of ~/.kube/config), resolved to the one cluster
 * + user + namespace a client needs. libyaml stays in config/; callers see plain C types.
 *
 * Lookup: an explicit path (a ':'-separated list like $KUBECONFIG), else $KUBECONFIG, else
 * ~/.kube/config. Several files merge as kubectl merges them: the first file that sets
 * current-context wins, and the first definition of a named cluster/user/context wins.
 * Relative file references (certificate-authority, client-certificate, client-key,
 * tokenFile, exec command containing '/') are resolved against the directory of the file
 * that defined them.
 */
#ifndef AB_CONFIG_KUBECONFIG_H
#define AB_CONFIG_KUBECONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

struct cfg_kube_exec {
    char *command;      /* NULL = no exec plugin */
    char **args;        /* NULL-terminated, may be NULL */
    char **env;         /* "NAME=VALUE", NULL-terminated, may be NULL */
    char *api_version;  /* client.authentication.k8s.io/v1 or v1beta1 */
    char *install_hint;
    bool provide_cluster_info;
};

struct cfg_kubeconfig {
    char *source;           /* the file(s) read, for messages */
    char *context;          /* the context used */
    char *server;           /* https://host:port */
    char *namespace;        /* context namespace, or NULL */
    char *tls_server_name;
    bool insecure;          /* insecure-skip-tls-verify */
    char *ca_file;
    unsigned char *ca_data; /* decoded PEM */
    size_t ca_len;
    char *token;            /* secret */
    char *token_file;
    char *cert_file;
    unsigned char *cert_data;
    size_t cert_len;
    char *key_file;
    unsigned char *key_data; /* secret */
    size_t key_len;
    char *username, *password; /* basic auth (rare; secret) */
    struct cfg_kube_exec exec;
};

/* Load and resolve. paths: NULL/"" = $KUBECONFIG then ~/.kube/config. context: NULL/"" =
 * current-context. AB_NOTFOUND when no file exists (so the caller can try in-cluster). */
ab_status cfg_kubeconfig_load(const char *paths, const char *context, struct cfg_kubeconfig *out,
                              struct ab_err *err);

/* Resolve from YAML text (tests, fuzzing). dir is used for relative paths. */
ab_status cfg_kubeconfig_from_string(const char *yaml, size_t len, const char *name,
                                     const char *dir, const char *context,
                                     struct cfg_kubeconfig *out, struct ab_err *err);

/* YAML -> JSON: mappings become objects, sequences arrays, every scalar a string. Pure
 * function over bytes (a fuzz target). *out is new. */
ab_status cfg_yaml_to_json(const char *yaml, size_t len, const char *name, json_t **out,
                           struct ab_err *err);

void cfg_kubeconfig_cleanup(struct cfg_kubeconfig *kc);

#endif
