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
    /* The budget's time slice (context.c): units left before the next
     * clock read, the units of the interval that read ends, when the slice
     * ends and when the clock was read last (ns, CLOCK_MONOTONIC;
     * budget_deadline 0: not read yet in this poll). */
    int budget_tick, budget_span;
    uint64_t budget_deadline, budget_read;
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
    /* Scheduler's own: set while a multi-thread runtime's block_on thread
     * runs a task of the inject queue (runtime.c, help_run_task): a task
     * of a multi-thread runtime, on no worker. */
    bool helping;
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

/* ---- Cooperative budget (context.c) ----------------------------------------
 * A task's poll may spend WEFT_COOP_BUDGET units (one per resource poll
 * that makes progress) and may last WEFT_COOP_SLICE_NS, whichever runs out
 * first; then weft_coop_proceed says no and every resource returns
 * WEFT_PENDING after waking the task, so the poll ends and the worker
 * moves on. Units alone bound a loop over cheap resources; the time slice
 * bounds one whose units are dear (an accept loop spawning tasks with
 * large frames, a copy moving 16 KiB per unit). */
#define WEFT_COOP_BUDGET 128
/* 1 ms: a tenth of the blocking detector's default threshold, so a poll
 * cut at the slice, plus the unit in progress, stays well clear of it;
 * and a timer tick, so a busy task delays due timers by about one tick.
 * A poll of 128 ordinary units takes a few microseconds and never gets
 * near it: the units end such polls, as before. */
#define WEFT_COOP_SLICE_NS 1000000u
/* The slice every budget started from now on gets (tests shorten or
 * lengthen it: weft__coop_set_slice_ns). */
extern uint64_t weft__coop_slice_ns;
void weft__coop_set_slice_ns(uint64_t ns);

/* The unit at which a poll first reads the clock (context.c): polls that
 * spend fewer units, most of them, read none. */
#define WEFT__COOP_CLOCK_FIRST 8

/* Saved coop state, for a nested poll with a budget of its own (a local
 * set's task inside its run future's poll, a block_on inside a blocking
 * job). */
typedef struct {
    int budget, tick, span;
    uint64_t deadline, read;
} weft__coop_saved_t;

/* A fresh budget for the task about to be polled: WEFT_COOP_BUDGET units
 * and a time slice that starts at the first clock read (context.c). */
static inline void weft__coop_start(void)
{
    weft__tls.budget = WEFT_COOP_BUDGET;
    weft__tls.budget_tick = weft__tls.budget_span = WEFT__COOP_CLOCK_FIRST;
    weft__tls.budget_deadline = 0;
}

/* Something dear just happened in this poll (a spawn that copied or
 * faulted in a page or more): the next weft_coop_proceed reads the clock,
 * so a loop of such operations is cut at the slice within one unit. */
static inline void weft__coop_note_dear(void)
{
    weft__tls_t *c = &weft__tls;
    if (c->budget > 0 && c->budget_tick > 1) {
        c->budget_span -= c->budget_tick - 1; /* the interval ends at the next unit */
        c->budget_tick = 1;
    }
}

/* Outside a task's poll: unconstrained. */
static inline void weft__coop_stop(void)
{
    weft__tls.budget = -1;
}

static inline weft__coop_saved_t weft__coop_save(void)
{
    weft__coop_saved_t c = { weft__tls.budget, weft__tls.budget_tick, weft__tls.budget_span,
                             weft__tls.budget_deadline, weft__tls.budget_read };
    return c;
}

static inline void weft__coop_restore(weft__coop_saved_t c)
{
    weft__tls.budget = c.budget;
    weft__tls.budget_tick = c.tick;
    weft__tls.budget_span = c.span;
    weft__tls.budget_deadline = c.deadline;
    weft__tls.budget_read = c.read;
}

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
