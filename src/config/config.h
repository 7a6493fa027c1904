/*
 * config.h - agentbox's configuration: one struct, filled from (in increasing precedence)
 * built-in defaults, the YAML file (--config or $AGENTBOX_CONFIG), AGENTBOX_* environment
 * variables and command-line flags.
 *
 * Every key is declared once, in the table in config.c (path, type, default, one-line doc).
 * That table drives defaults, YAML loading, environment overrides (key "http.listen" is
 * AGENTBOX_HTTP_LISTEN) and `agentbox config --defaults`; config/agentbox.yaml documents the
 * same keys and a unit test checks the two agree.
 *
 * libyaml is used only in config/ (design.md); other layers see plain C types.
 */
#ifndef AB_CONFIG_CONFIG_H
#define AB_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

struct cfg_strlist {
    char **v; /* NULL-terminated */
    size_t n;
};

struct cfg_token {
    char *token;     /* secret: never logged */
    char *principal; /* who the token belongs to */
};

struct cfg_log {
    char *level;  /* debug|info|warn|error */
    char *format; /* human|json */
};

struct cfg_stdio {
    uint64_t max_line_bytes;
    char *thread_key; /* pin the stdio session's thread key; "" = one per server process */
};

struct cfg_http {
    char *listen;                      /* ADDR:PORT */
    char *path;                        /* the MCP endpoint, "/mcp" */
    struct cfg_strlist allowed_origins;/* extra Origins accepted besides loopback ones */
    struct cfg_strlist allowed_hosts;  /* extra Host values accepted besides loopback ones */
    uint64_t max_body_bytes;
    int64_t session_idle_timeout_s;    /* sessions unused this long are closed */
    int64_t max_sessions;
    int64_t sse_keepalive_s;
    int64_t sse_retry_ms;              /* `retry:` advertised on SSE streams */
    int64_t sse_replay_events;         /* per-session resumption buffer, in events */
    uint64_t sse_replay_bytes;         /* ... and in bytes */
    bool json_response;                /* answer requests with application/json when possible */
    bool allow_insecure_bind;          /* bind a non-loopback address without a token */
    int64_t shutdown_grace_s;          /* SIGTERM: wait this long for in-flight calls */
};

struct cfg_auth {
    struct cfg_token *tokens;
    size_t ntokens;
    char *token_file; /* lines "TOKEN PRINCIPAL" (or just TOKEN); re-read on SIGHUP */
};

struct cfg_limits {
    uint64_t memory_bytes;   /* cgroup memory limit; 0 = none */
    int64_t pids;            /* cgroup pids.max and RLIMIT_NPROC; 0 = none */
    double cpus;             /* cgroup CPU quota in CPUs; 0 = none */
    int64_t nofile;          /* RLIMIT_NOFILE */
    uint64_t file_size_bytes;/* RLIMIT_FSIZE */
    int64_t cpu_seconds;     /* RLIMIT_CPU per command; 0 = none */
    uint64_t tmp_bytes;      /* size of the /tmp tmpfs */
};

struct cfg_local {
    char *workspace;          /* path of the workspace inside the sandbox */
    char *network;            /* none|host */
    char *user_namespace;     /* auto|always|never: auto = only when not root */
    int64_t uid;              /* uid/gid commands run as inside the sandbox */
    struct cfg_strlist ro_binds; /* extra read-only host paths (must be system dirs) */
    char *seccomp;            /* default|off (off only for debugging; logged loudly) */
    struct cfg_limits limits;
    bool recreate_on_death;   /* a dead helper is restarted transparently (workspace kept) */
};

struct cfg_pool {
    int64_t size;             /* warm sandboxes kept ready per provider */
};

struct cfg_sandbox {
    char *provider;           /* local|agent-sandbox */
    int64_t ttl_s;            /* absolute TTL; 0 = none */
    int64_t idle_ttl_s;       /* idle TTL; 0 = none */
    int64_t reap_interval_s;
    int64_t create_timeout_s;
    struct cfg_pool pool;
};

struct cfg_tools {
    int64_t execute_timeout_s;     /* default per-command timeout */
    int64_t execute_max_timeout_s; /* largest timeout a call may ask for */
    uint64_t execute_max_output_bytes;
    uint64_t read_max_bytes;       /* largest file read/edit loads (text) */
    uint64_t read_max_binary_bytes;/* media returned as content blocks */
    uint64_t upload_max_bytes;     /* per file */
    uint64_t download_max_bytes;   /* per file */
    int64_t grep_max_count;
    int64_t glob_max_matches;
    char *python;                  /* interpreter for execute_python */
};

struct cfg_k8s {
    char *kubeconfig;        /* path; empty = $KUBECONFIG, ~/.kube/config, then in-cluster */
    char *context;           /* kubeconfig context; empty = current */
    char *namespace;
    char *api_version;       /* v1beta1|v1alpha1|auto */
    char *template_name;     /* SandboxTemplate */
    char *warm_pool;         /* SandboxWarmPool name; empty = none */
    char *connection;        /* direct|gateway|in-cluster|tunnel */
    char *router_url;        /* direct mode */
    char *gateway_name;
    char *gateway_namespace;
    int64_t server_port;     /* runtime port in the pod */
    bool send_pod_ip;        /* X-Sandbox-Pod-IP */
    int64_t ready_timeout_s;
    int64_t request_timeout_s;
    char *kubectl;           /* tunnel mode */
    char *workspace;         /* the runtime's base directory in the pod, as tools see it */
    int64_t gateway_port;    /* port of the Gateway listener (gateway mode) */
    char *runtime_api;       /* auto|python-runtime|agentbox-runtime */
    char *router_namespace;  /* namespace of svc/sandbox-router-svc (tunnel mode) */
    char *router_token;      /* secret: bearer token for the sandbox-router; never logged */
    char *router_token_file; /* or the file holding it, re-read when it changes */
};

struct cfg_mcp {
    int64_t page_size;       /* tools/list page size */
    int64_t max_inflight;    /* concurrent tool calls, server-wide */
    char *instructions;      /* InitializeResult.instructions; "" = built-in text */
};

struct cfg_policy {
    struct cfg_strlist allow_write_prefixes; /* empty = writes allowed anywhere writable */
    struct cfg_strlist deny_prefixes;        /* writes refused under these */
    char *virtual_root;                      /* "" = off; else every path must be under it */
    struct cfg_strlist deny_commands;        /* execute/execute_python refused on a match */
    struct cfg_strlist ask_commands;         /* the user is asked (MCP elicitation) first */
    int64_t ask_timeout_s;
};

struct cfg_audit {
    char *path;          /* "" = off, "-" = stderr, else a file */
    uint64_t max_bytes;  /* rotate beyond this size */
    int64_t keep;        /* rotated files kept */
};

struct cfg_quotas {
    int64_t max_sandboxes;        /* live sandboxes per principal; 0 = unlimited */
    int64_t max_concurrent_calls; /* tool calls in flight per principal; 0 = unlimited */
    uint64_t max_request_bytes;   /* largest request per principal; 0 = http/stdio limits */
};

struct config {
    char *source;            /* the file loaded, or NULL */
    struct cfg_policy policy;
    struct cfg_audit audit;
    struct cfg_quotas quotas;
    struct cfg_mcp mcp;
    char *state_dir;
    struct cfg_log log;
    struct cfg_stdio stdio;
    struct cfg_http http;
    struct cfg_auth auth;
    struct cfg_sandbox sandbox;
    struct cfg_local local;
    struct cfg_tools tools;
    struct cfg_k8s k8s;
    bool conformance_fixtures; /* test scaffolding: register the conformance suite fixtures */
};

/* Fill cfg with the built-in defaults. */
ab_status cfg_init_defaults(struct config *cfg, struct ab_err *err);

/* Load YAML from path over the current values. Errors name the file, line and key. */
ab_status cfg_load_file(struct config *cfg, const char *path, struct ab_err *err);

/* Same, from a string (tests, fuzzing); name is used in messages. */
ab_status cfg_load_string(struct config *cfg, const char *yaml, size_t len, const char *name,
                          struct ab_err *err);

/* Apply AGENTBOX_<KEY> environment variables (and AGENTBOX_TOKEN). envp NULL = environ. */
ab_status cfg_apply_env(struct config *cfg, char *const *envp, struct ab_err *err);

/* Set one key by its dotted path from a string, as the CLI's --set k=v does. */
ab_status cfg_set(struct config *cfg, const char *path, const char *value, struct ab_err *err);

/* Cross-key checks after everything is applied (e.g. a non-loopback bind without a token). */
ab_status cfg_validate(const struct config *cfg, struct ab_err *err);

void cfg_cleanup(struct config *cfg);

/* Print every key with its current value as YAML (tokens redacted). */
void cfg_dump(const struct config *cfg, int fd);

/* Print the documented default configuration as YAML (what config/agentbox.yaml holds). */
void cfg_write_defaults_yaml(int fd);

/* The state directory to use: cfg->state_dir when set, else /var/lib/agentbox as root, else
 * $XDG_STATE_HOME/agentbox, else ~/.local/state/agentbox. Returns new (NULL only when out of
 * memory or when no home directory can be found for a non-root user). */
char *cfg_state_dir(const struct config *cfg);

/* Iterate the key table (for docs/tests): returns the dotted path of key i, or NULL past the
 * end; *def and *doc receive the default and the description. */
const char *cfg_key_at(size_t i, const char **def, const char **doc);

#endif
