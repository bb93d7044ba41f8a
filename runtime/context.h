/* runtime/context.h - what a resource knows of the thread it runs on.
 *
 * Sockets, timers, signals and the sync primitives include this header,
 * never the scheduler's (scheduler.h): they learn the current runtime's
 * drivers, whether this thread is one of its workers (and which), the
 * cooperative budget, and one way to wake many tasks at once with a
 * routing intent. The scheduler sets the fields; resources only read them
 * through the functions below. Data flows one way: a resource hands wakers
 * to weft__wake_batch (or wakes them itself), the waker reaches the task,
 * the task the scheduler.
 */
#ifndef WEFT_CONTEXT_H
#define WEFT_CONTEXT_H

#include "internal.h"

struct weft__sched;
struct weft__worker;
struct weft__driver;
struct weft__pool;

/* Per-thread state. The first two pointers are the scheduler's own (opaque
 * here); the rest is what resources may use. */
typedef struct weft__tls {
    struct weft__sched *sched;   /* runtime current on this thread, or NULL */
    struct weft__worker *worker; /* set while this thread runs a worker loop */
    struct weft__driver *driver; /* the drivers of `sched` (NULL: none, or no runtime) */
    int worker_index;            /* `worker`'s index in its runtime; -1 when not a worker */
    weft_task_t *task;           /* task being polled, or NULL */
    bool in_block_on;            /* inside weft_runtime_block_on */
    bool yielded;                /* the running task woke itself (see task.c) */
    int budget;                  /* coop budget left; -1 = unconstrained */
    struct weft__pool *pool;     /* set on a blocking-pool thread (blocking.c) */
    /* task-local bindings of the scopes being polled here, innermost first
     * (task_local.c); empty at the start of every task's or root's poll */
    const struct weft_task_local_binding_s *locals;
    /* the local set whose run future is being polled here, or NULL
     * (scheduler's own, like sched and worker: localset.c) */
    struct weft_local_set_s *local_set;
    /* Scheduler's own: `worker` while this thread is inside that worker's
     * loop (its polls, the drops, joins and driver wakes between them, and
     * the current-thread block_on loop), NULL everywhere else, the thread
     * hooks included. Only code the loop called synchronously may put a
     * task in the worker's LIFO slot or local queue with plain stores: the
     * loop looks there again when that code returns (sched.c). */
    struct weft__worker *serving;
} weft__tls_t;

extern _Thread_local weft__tls_t weft__tls;

/* The drivers of the runtime current on this thread, or NULL (no runtime
 * here, or one built without I/O and time). */
static inline struct weft__driver *weft__cx_driver(void)
{
    return weft__tls.driver;
}

/* This thread's worker index in the runtime that owns driver d, or -1 when
 * it is not one of that runtime's workers (a block_on caller, a blocking
 * job, another runtime's worker). */
static inline int weft__cx_worker_index(const struct weft__driver *d)
{
    return (d != NULL && weft__tls.driver == d) ? weft__tls.worker_index : -1;
}

#define WEFT_COOP_BUDGET 128
/* Gives back the unit spent by weft_coop_proceed when the resource made no
 * progress (returned WEFT_PENDING). */
static inline void weft__coop_refund(void)
{
    if (weft__tls.budget >= 0)
        weft__tls.budget++;
}

/* Where weft__wake_batch sends the tasks it wakes. */
typedef enum weft__wake_route {
    /* As a wake from this thread goes: on a worker of the task's runtime,
     * into its own queue (an idle worker that took events runs their tasks
     * from its cache); anywhere else, one push of the whole batch onto the
     * runtime's `woken` queue, which workers read first. */
    WEFT__WAKE_HERE,
    /* Always the `woken` queue, even from a worker: a busy worker firing
     * timers would otherwise hold the woken tasks behind its own queue. */
    WEFT__WAKE_SHARED,
} weft__wake_route_t;

/* Wakes (consumes) the n wakers of ws, routed as `route` says, with one
 * queue push and one worker notify per runtime instead of one per task.
 * Wakers that are not tasks' are simply woken. Context: any thread. */
void weft__wake_batch(weft_waker_t *ws, unsigned n, weft__wake_route_t route);

/* Aborts when called on a thread that is inside a runtime (`what` names the
 * attempted operation). */
void weft__assert_not_in_runtime(const char *what, const char *site);

#endif
