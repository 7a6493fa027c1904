/*
 * cancel.h - a cancellation token shared between the request that may be cancelled and the
 * code doing the work.
 *
 * The MCP layer fires it on notifications/cancelled (or server shutdown); providers poll()
 * on ab_cancel_fd() next to their own fds so a blocked exec wakes at once, and cheap loops
 * simply test ab_cancel_fired(). The fd is an eventfd created lazily on first request; firing
 * is idempotent and safe from any thread. Callbacks registered with ab_cancel_on_fire() run
 * once, on the firing thread (used to kill a process group immediately).
 */
#ifndef AB_BASE_CANCEL_H
#define AB_BASE_CANCEL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef void (*ab_cancel_cb)(void *arg);

struct ab_cancel {
    atomic_int fired;
    pthread_mutex_t lock;
    int efd;             /* -1 until ab_cancel_fd() is called */
    ab_cancel_cb cb;     /* at most one callback */
    void *cb_arg;
    char reason[128];
};

void ab_cancel_init(struct ab_cancel *c);
void ab_cancel_cleanup(struct ab_cancel *c);
/* Fire (idempotent). reason may be NULL. */
void ab_cancel_fire(struct ab_cancel *c, const char *reason);
bool ab_cancel_fired(const struct ab_cancel *c);
/* An fd that becomes readable once fired, or -1 if it could not be created. Borrowed. */
int ab_cancel_fd(struct ab_cancel *c);
/* Register cb (replacing any previous one); if already fired, cb runs now on this thread.
 * Pass cb = NULL to unregister. */
void ab_cancel_on_fire(struct ab_cancel *c, ab_cancel_cb cb, void *arg);

#endif
