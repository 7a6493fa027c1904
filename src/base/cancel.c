/*
 * cancel.c - see cancel.h. The callback is invoked outside the lock so it may take other
 * locks; unregistering waits for nothing, so a callback must tolerate running concurrently
 * with the end of the operation it cancels (kill(2) of a reaped pgid fails harmlessly).
 */
#include "base/cancel.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>

void ab_cancel_init(struct ab_cancel *c)
{
    atomic_init(&c->fired, 0);
    pthread_mutex_init(&c->lock, NULL);
    c->efd = -1;
    c->cb = NULL;
    c->cb_arg = NULL;
    c->reason[0] = '\0';
}

void ab_cancel_cleanup(struct ab_cancel *c)
{
    if (c->efd >= 0)
        close(c->efd);
    c->efd = -1;
    pthread_mutex_destroy(&c->lock);
}

void ab_cancel_fire(struct ab_cancel *c, const char *reason)
{
    pthread_mutex_lock(&c->lock);
    if (atomic_load(&c->fired)) {
        pthread_mutex_unlock(&c->lock);
        return;
    }
    if (reason)
        snprintf(c->reason, sizeof(c->reason), "%s", reason);
    atomic_store(&c->fired, 1);
    if (c->efd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(c->efd, &one, sizeof(one));
        (void)w;
    }
    ab_cancel_cb cb = c->cb;
    void *arg = c->cb_arg;
    pthread_mutex_unlock(&c->lock);
    if (cb)
        cb(arg);
}

bool ab_cancel_fired(const struct ab_cancel *c)
{
    return c && atomic_load(&c->fired) != 0;
}

int ab_cancel_fd(struct ab_cancel *c)
{
    pthread_mutex_lock(&c->lock);
    if (c->efd < 0) {
        c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->efd >= 0 && atomic_load(&c->fired)) {
            uint64_t one = 1;
            ssize_t w = write(c->efd, &one, sizeof(one));
            (void)w;
        }
    }
    int fd = c->efd;
    pthread_mutex_unlock(&c->lock);
    return fd;
}

void ab_cancel_on_fire(struct ab_cancel *c, ab_cancel_cb cb, void *arg)
{
    pthread_mutex_lock(&c->lock);
    c->cb = cb;
    c->cb_arg = arg;
    int fired = atomic_load(&c->fired);
    pthread_mutex_unlock(&c->lock);
    if (fired && cb)
        cb(arg);
}
