/*
 * k8s_cluster.c - see k8s_cluster.h. Uses libcurl for the admin calls (tests only; src/ keeps
 * libcurl inside providers/k8s/).
 */
#include "support/k8s_cluster.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"

extern char **environ;

static void die(const char *msg)
{
    fprintf(stderr, "k8s test cluster: %s\n", msg);
    exit(1);
}

const char *tk8s_source_dir(void)
{
    static char path[1024];
    const char *src = getenv("AGENTBOX_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/tests/k8s", src ? src : ".");
    return path;
}

static const char *runtime_bin(void)
{
    static char path[1024];
    const char *bin = getenv("AGENTBOX_BIN");
    if (!bin)
        die("AGENTBOX_BIN is not set (run through ctest)");
    snprintf(path, sizeof(path), "%s", bin);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof(path) - (size_t)(slash ? slash + 1 - path : 0),
             "agentbox-runtime");
    return path;
}

void tk8s_start(struct tk8s *c, const char *const *args)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "/tmp/abtk8s-XXXXXX");
    if (!mkdtemp(c->dir))
        die("mkdtemp");
    char info[512], script[1100];
    snprintf(info, sizeof(info), "%s/info.json", c->dir);
    snprintf(script, sizeof(script), "%s/cluster.mjs", tk8s_source_dir());
    const char *argv[32] = {"node", script, "--info-file", info};
    int n = 4;
    bool token_given = false;
    for (int i = 0; args && args[i] && n < 28; i++) {
        token_given |= strcmp(args[i], "--router-token") == 0;
        argv[n++] = args[i];
    }
    char token[33];
    if (!token_given) {
        if (ab_random_hex(token, 16))
            die("random");
        argv[n++] = "--router-token";
        argv[n++] = token;
    }
    argv[n] = NULL;
    setenv("RUNTIME_BIN", runtime_bin(), 1);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        die("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[0], 0);
    if (posix_spawnp(&c->pid, "node", &fa, NULL, (char *const *)argv, environ))
        die("cannot run node");
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[0]);
    c->stdin_fd = pfd[1];
    for (int i = 0; i < 3000; i++) {
        json_error_t je;
        c->info = json_load_file(info, 0, &je);
        if (c->info)
            break;
        int st;
        if (waitpid(c->pid, &st, WNOHANG) == c->pid)
            die("the cluster process exited during start");
        usleep(10000);
    }
    if (!c->info)
        die("the cluster did not start within 30 s");
}

void tk8s_stop(struct tk8s *c)
{
    if (c->pid > 0) {
        close(c->stdin_fd);
        kill(c->pid, SIGTERM);
        for (int i = 0; i < 1000; i++) {
            int st;
            if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
                c->pid = 0;
                break;
            }
            usleep(10000);
        }
        if (c->pid > 0) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, NULL, 0);
        }
    }
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", c->dir);
    json_decref(c->info);
    c->info = NULL;
}

const char *tk8s_str(const struct tk8s *c, const char *key)
{
    return json_string_value(json_object_get(c->info, key));
}

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
    buf_append(arg, p, sz * n);
    return sz * n;
}

json_t *tk8s_http(const struct tk8s *c, const char *method, const char *path, const char *body,
                  long *status)
{
    CURL *h = curl_easy_init();
    char url[2048], auth[512];
    snprintf(url, sizeof(url), "%s%s", tk8s_str(c, "api"), path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tk8s_str(c, "token"));
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    hdr = curl_slist_append(hdr, ab_starts_with(method, "PATCH")
                                     ? "Content-Type: application/merge-patch+json"
                                     : "Content-Type: application/json");
    struct buf b;
    buf_init(&b, 64u << 20);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    CURLcode cc = curl_easy_perform(h);
    long st = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    if (status)
        *status = cc == CURLE_OK ? st : 0;
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    json_error_t je;
    json_t *j = b.len ? json_loadb(b.data, b.len, 0, &je) : NULL;
    buf_cleanup(&b);
    return j;
}

void tk8s_fault(const struct tk8s *c, const char *json)
{
    long st = 0;
    json_decref(tk8s_http(c, "POST", "/_admin/faults", json, &st));
    if (st != 200)
        die("admin /_admin/faults failed");
}

void tk8s_config(const struct tk8s *c, struct config *cfg)
{
    struct ab_err err;
    if (cfg_init_defaults(cfg, &err))
        die(err.msg);
    cfg_set(cfg, "sandbox.provider", "agent-sandbox", &err);
    cfg_set(cfg, "k8s.kubeconfig", tk8s_str(c, "kubeconfig"), &err);
    cfg_set(cfg, "k8s.warm_pool", "warm-pool", &err);
    cfg_set(cfg, "k8s.template", tk8s_str(c, "template"), &err);
    cfg_set(cfg, "k8s.connection", "direct", &err);
    cfg_set(cfg, "k8s.router_url", tk8s_str(c, "router"), &err);
    cfg_set(cfg, "k8s.workspace", "/workspace", &err);
    cfg_set(cfg, "k8s.ready_timeout", "20s", &err);
    cfg_set(cfg, "k8s.request_timeout", "5s", &err);
    const char *tok = tk8s_str(c, "routerToken");
    if (tok) {
        FILE *f = fopen(tk8s_router_token_file(c), "w");
        if (!f)
            die("cannot write the router token file");
        fprintf(f, "%s\n", tok);
        fclose(f);
        cfg_set(cfg, "k8s.router_token_file", tk8s_router_token_file(c), &err);
    }
}

const char *tk8s_router_token_file(const struct tk8s *c)
{
    static char path[300];
    snprintf(path, sizeof(path), "%s/router-token", c->dir);
    return path;
}
