/*
 * proc.c - see proc.h. poll() over the child's three pipes; input is written as the child
 * reads it, so large inputs cannot deadlock against a child that writes a lot of output.
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

const char *tp_agentbox_bin(void)
{
    const char *b = getenv("AGENTBOX_BIN");
    return b && *b ? b : AGENTBOX_TEST_BIN;
}

const char *tp_source_dir(void)
{
    const char *s = getenv("AGENTBOX_SOURCE_DIR");
    return s && *s ? s : AGENTBOX_TEST_SOURCE_DIR;
}

int tp_run(char *const argv[], const char *input, size_t input_len, struct buf *out,
           struct buf *err_out, int timeout_ms)
{
    int pin[2], pout[2], perr[2];
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    size_t written = 0;
    int infd = pin[1];
    if (input_len == 0) {
        close(infd);
        infd = -1;
    }
    int64_t deadline = ab_mono_ms() + timeout_ms;
    int open_fds = 2;
    bool killed = false;
    char chunk[65536];
    while (open_fds > 0 || infd >= 0) {
        struct pollfd p[3];
        int n = 0;
        int idx_out = -1, idx_err = -1, idx_in = -1;
        if (pout[0] >= 0) {
            idx_out = n;
            p[n++] = (struct pollfd){pout[0], POLLIN, 0};
        }
        if (perr[0] >= 0) {
            idx_err = n;
            p[n++] = (struct pollfd){perr[0], POLLIN, 0};
        }
        if (infd >= 0) {
            idx_in = n;
            p[n++] = (struct pollfd){infd, POLLOUT, 0};
        }
        int64_t left = deadline - ab_mono_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        if (poll(p, (nfds_t)n, (int)AB_MIN(left, 1000)) < 0 && errno != EINTR)
            break;
        if (idx_in >= 0 && p[idx_in].revents) {
            ssize_t w = write(infd, input + written, input_len - written);
            if (w > 0)
                written += (size_t)w;
            if (w < 0 && errno != EAGAIN) {
                close(infd);
                infd = -1;
            } else if (written == input_len) {
                close(infd);
                infd = -1;
            }
        }
        int *fds[2] = {&pout[0], &perr[0]};
        int idx[2] = {idx_out, idx_err};
        struct buf *dst[2] = {out, err_out};
        for (int k = 0; k < 2; k++) {
            if (idx[k] < 0 || !p[idx[k]].revents)
                continue;
            ssize_t r = read(*fds[k], chunk, sizeof(chunk));
            if (r > 0) {
                if (dst[k])
                    buf_append_upto(dst[k], chunk, (size_t)r);
            } else if (r == 0 || errno != EINTR) {
                close(*fds[k]);
                *fds[k] = -1;
                open_fds--;
            }
        }
    }
    if (infd >= 0)
        close(infd);
    if (pout[0] >= 0)
        close(pout[0]);
    if (perr[0] >= 0)
        close(perr[0]);
    int status = 0;
    /* The pipes are closed; give the child until the deadline to exit. */
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (ab_mono_ms() > deadline && !killed) {
            kill(pid, SIGKILL);
            killed = true;
        }
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (killed)
        return -2;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int tp_read_file(const char *path, struct buf *out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(out, chunk, n)) {
            fclose(f);
            return -1;
        }
    fclose(f);
    return 0;
}

long tp_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    if (pid)
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    else
        snprintf(path, sizeof(path), "/proc/self/status");
    FILE *fp = fopen(path, "re");
    long v = -1;
    size_t fl = strlen(field);
    while (fp && fgets(line, sizeof(line), fp))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            v = atol(line + fl + 1);
    if (fp)
        fclose(fp);
    return v;
}

int tp_count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}
