/* reactor/driver.h - all the scheduler knows of the I/O and time drivers.
 *
 * A runtime has one driver object (opaque here) holding up to three parts:
 * the I/O driver (an edge-triggered epoll set of sockets), the time driver
 * (one timing wheel per worker) and the libuv thread (the backstop that
 * fires late timers, watches the signal pipe, frees closed sockets, and on
 * a current-thread runtime takes socket events). The scheduler starts and
 * stops it, lets its workers take events and fire timers, and parks one
 * idle worker at a time inside it. It never reads the driver's structures,
 * and the drivers never read the scheduler's: they reach tasks only through
 * wakers (runtime/context.h: weft__wake_batch).
 */
#ifndef WEFT_DRIVER_H
#define WEFT_DRIVER_H

#include "../runtime/internal.h"

typedef struct weft__driver weft__driver_t;

typedef struct weft__driver_cfg {
    bool io;            /* sockets (enable_io) */
    bool time;          /* timers (enable_time) */
    /* Multi-thread runtimes: workers take socket events and fire timers
     * themselves, and one parked worker sleeps in the driver (weft__driver_park);
     * the libuv thread only fires timers no worker got to in time. false
     * (current-thread): the libuv thread does both, on time. */
    bool workers_drive;
    unsigned nshards;   /* timing wheels: one per worker (1..65535) */
    /* A virtual clock (testing; weft_clock_t): the timers run on a clock
     * that stands still until weft__driver_advance or
     * weft__driver_advance_to_next moves it, and nothing but those two
     * fires them: workers never fire, and the parked one sleeps until
     * kicked, whatever the deadlines. Needs time. */
    bool paused;
    const char *name;   /* thread name prefix */
} weft__driver_cfg_t;

/* Starts the drivers cfg asks for and the libuv thread. Returns 0,
 * WEFT_ENOMEM, WEFT_EAGAIN (no thread), or -errno from epoll, eventfd,
 * pipe or libuv; on error nothing is left allocated or open. */
int weft__driver_start(const weft__driver_cfg_t *cfg, weft__driver_t **out);
/* Fires every timer left (a sleep awaited by a block_on on another thread
 * must not wait for a driver that is gone), refuses new ones (they are due
 * at once from now on), and stops the libuv thread. Context: after every
 * task was dropped. NULL is fine. */
void weft__driver_stop(weft__driver_t *d);
/* Frees a stopped driver (NULL is fine): only with the runtime's memory,
 * since a late unpark may still interrupt a wait until then. */
void weft__driver_free(weft__driver_t *d);

/* Takes up to `max` ready socket events and wakes their tasks from this
 * thread (a worker's own queue). Returns how many events it took. Context:
 * a worker of a multi-thread runtime. */
unsigned weft__driver_poll_events(weft__driver_t *d, unsigned max);
/* True while a worker sleeps in the driver (weft__driver_park): socket
 * readiness wakes that worker, which takes the events itself. */
bool weft__driver_has_parked(weft__driver_t *d);

/* What the firing worker is doing, which decides where fired timers' tasks
 * go (runtime/context.h: weft__wake_route_t). */
typedef enum weft__fire_mode {
    /* It has work of its own: every woken task goes to the shared `woken`
     * queue, which every worker reads first. */
    WEFT__FIRE_BUSY,
    /* It found nothing to run: it keeps the first batch (it runs them at
     * once, from its cache) and shares the rest through `woken`. */
    WEFT__FIRE_IDLE,
} weft__fire_mode_t;

/* Fires the timers that are due, from worker `self` of a multi-thread
 * runtime: every due wheel, its own first, each only if its lock is free
 * (a wheel whose lock is taken is being fired or filled by a thread that
 * may be descheduled inside). Cheap when nothing is due: a clock read and
 * a load per wheel. Returns how many timers it fired. */
unsigned weft__driver_fire_timers(weft__driver_t *d, unsigned self, weft__fire_mode_t mode);

/* True when any timer is pending. */
bool weft__driver_timers_pending(weft__driver_t *d);

/* ---- A virtual clock (cfg.paused; docs/testing.md) ----------------------- */
/* Moves the clock to the earliest pending timer's deadline and fires what
 * is due there; its tasks go to the `woken` queue. Timers that wake nobody
 * do not stop it: it goes on to the next deadline. Returns how many tasks
 * it woke, 0 when no timer is left (the clock then stays where the last
 * one was). Context: the thread driving the runtime, when the scheduler
 * has found that nothing else can happen first (runtime/clock.c). */
unsigned weft__driver_advance_to_next(weft__driver_t *d);
/* Moves the clock forward by ns and fires every timer due by then, the
 * earliest deadline first; the tasks go to the `woken` queue. Context: any
 * thread. */
void weft__driver_advance(weft__driver_t *d, uint64_t ns);
/* False while a thread is taking socket events: the tasks they wake may
 * not be queued yet. */
bool weft__driver_io_idle(weft__driver_t *d);

typedef enum weft__park_result {
    WEFT__PARK_NOT_DRIVER, /* another worker sleeps in the driver (or none can): park elsewhere */
    WEFT__PARK_PERMIT,     /* woken by an unpark: the permit was consumed */
    WEFT__PARK_EVENTS,     /* woken by socket readiness or a due timer: poll and fire */
} weft__park_result_t;

/* Parks the calling worker (its parker p) inside the driver, if no other
 * worker sleeps there: in the epoll set, until socket readiness, an unpark
 * (weft__driver_unpark), or the deadline of the next timer. One worker at a
 * time; the others get WEFT__PARK_NOT_DRIVER at once and park on their
 * futex. */
weft__park_result_t weft__driver_park(weft__driver_t *d, weft__parker_t *p);
/* Interrupts the worker parked in the driver (after weft__unpark reported
 * WEFT__UNPARK_ELSEWHERE). Harmless when none sleeps there: the next
 * driver's wait returns once, at once. Context: any thread. */
void weft__driver_unpark(weft__driver_t *d);

#endif
