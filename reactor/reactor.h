/* reactor/reactor.h - the reactor thread (internal).
 *
 * One thread per runtime runs a libuv loop. Workers never block on it: a
 * timer is inserted into the wheel by the worker itself under the time
 * lock, and the reactor is rung (uv_async_send, which coalesces) only when
 * the new deadline is earlier than the one its libuv timer is armed for.
 * The reactor fires due timers under the same lock, waking each through
 * its atomic waker.
 */
#ifndef WEFT_REACTOR_H
#define WEFT_REACTOR_H

#include <uv.h>

#include "../runtime/internal.h"
#include "timer_wheel.h"

typedef struct weft__reactor {
    uv_loop_t loop;
    uv_async_t doorbell;
    uv_timer_t timer;
    pthread_t thread;
    _Atomic bool stopping;
    uint64_t origin_ns; /* wheel time 0 */
    /* The time lock: the wheel, `armed`, and every entry's links. */
    pthread_mutex_t time_lock;
    weft__wheel_t wheel;
    uint64_t armed; /* wheel ms the libuv timer fires at, UINT64_MAX: none */
    /* The wheel's earliest deadline (ms), kept under time_lock and read
     * without it by workers, which fire due timers themselves (see
     * weft__reactor_fire_due). May be stale early (a removed timer): that
     * costs one look under the lock. */
    _Atomic uint64_t due_ms;
    bool started;
    bool stopped; /* under time_lock */
    /* Sockets: an edge-triggered epoll set that any thread may add to (a
     * worker registers its socket itself, no hop to this thread), watched
     * by one uv_poll in the loop. */
    int epfd;
    uv_poll_t epoll_watch;
    /* Multi-thread runtimes: the workers drive the epoll set themselves
     * (io.c, "Workers drive the sockets"), and the uv_poll above is never
     * started. One parked worker at a time, the driver, sleeps in
     * drive_epfd, which holds epfd and kick_fd (level-triggered): socket
     * readiness or an unpark (a write to kick_fd) wakes it. */
    bool workers_drive;
    _Atomic int driver; /* 1 while a worker holds the driver role */
    int drive_epfd, kick_fd;
    /* Sockets whose last reference is gone, freed by this thread (after any
     * event dispatch that might still name them); a lock-free stack. */
    _Atomic(struct weft__io *) retired;
    /* Workers inside weft__reactor_poll_io: while any is, retired sockets
     * wait (a worker may hold an event naming one). */
    _Atomic unsigned pollers;
    /* The process's signal pipe (signal.c), watched by every reactor. */
    uv_poll_t signal_watch;
    /* Work for the loop thread (libuv calls that must run there): a
     * lock-free stack drained in one go by the doorbell. */
    _Atomic(struct weft__op *) ops;
} weft__reactor_t;

/* An operation to run on the reactor thread. */
typedef struct weft__op {
    struct weft__op *next;
    void (*run)(weft__reactor_t *r, struct weft__op *op);
} weft__op_t;

/* Queues op for the reactor thread: a CAS on the stack's head, and
 * uv_async_send only when the stack was empty (later submitters ride the
 * same doorbell; the drain takes everything, oldest first). Returns false
 * when the reactor is stopped (op is not queued). Context: any thread. */
bool weft__reactor_submit(weft__reactor_t *r, weft__op_t *op);

int weft__reactor_signal_init(weft__reactor_t *r);

/* Called by a worker with nothing else to do (or every inject interval):
 * takes up to `max` ready events from the epoll set and dispatches them on
 * this thread, so the woken tasks land in this worker's queue without a
 * hop through the reactor thread. Returns how many events it took. */
unsigned weft__reactor_poll_io(weft__reactor_t *r, unsigned max);

/* The driver role (multi-thread runtimes; see io.c): a parking worker
 * claims it (false: another worker has it, or the reactor thread drives),
 * sleeps through weft__park_driving with weft__reactor_drive_wait, and
 * releases it when it wakes. */
bool weft__reactor_drive_claim(weft__reactor_t *r);
/* Fires the timers that are due, from a worker (multi-thread runtimes):
 * the tasks they wake go to this worker's queue (an idle worker), or with
 * to_woken to the `woken` queue that every worker reads first (a busy
 * one), without waiting for the reactor thread to be scheduled. The
 * reactor thread still fires what no worker got to. Cheap when nothing is
 * due: a clock read and a load. Returns how many timers were fired. */
unsigned weft__reactor_fire_due(weft__reactor_t *r, bool to_woken);
void weft__reactor_drive_release(weft__reactor_t *r);
void weft__reactor_drive_wait(void *reactor);

/* Starts the reactor thread. Returns 0, WEFT_ENOMEM, WEFT_EAGAIN, or a
 * libuv error mapped to a negative errno. */
int weft__reactor_start(weft__reactor_t **out, const char *name, bool workers_drive);
/* Stops the thread and closes every handle and the loop. Timers armed
 * later are due at once. Context: after every task was dropped. */
void weft__reactor_stop(weft__reactor_t *r);
/* Frees a stopped reactor (NULL is fine). */
void weft__reactor_free(weft__reactor_t *r);

/* Wheel milliseconds for an absolute weft_now_ns time, rounded up so a
 * timer never fires early. */
uint64_t weft__reactor_ms_ceil(const weft__reactor_t *r, uint64_t ns);
uint64_t weft__reactor_now_ms(const weft__reactor_t *r);

/* Under the time lock: inserts e due at ms; returns false when due now.
 * Rings the reactor when the deadline is earlier than the armed one. */
bool weft__reactor_timer_insert_locked(weft__reactor_t *r, weft__timer_t *e, uint64_t ms, bool *ring);
void weft__reactor_ring(weft__reactor_t *r);

#endif
