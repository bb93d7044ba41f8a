/* reactor/reactor.h - the reactor thread (internal).
 *
 * One thread per runtime runs a libuv loop. Workers never block on it.
 *
 * Time: each worker of a multi-thread runtime has a timing wheel of its own
 * (a shard, with its own lock); a sleep registers in the shard of the
 * worker that first polls it and stays there. The workers fire due timers
 * themselves, any worker any shard: busy workers every inject interval,
 * idle ones and the parked I/O driver when they look for work. They only
 * try a shard's lock, so a worker descheduled while holding its own stalls
 * that shard alone. The reactor thread is the backstop: it fires what is
 * WEFT__TIMER_BACKSTOP_MS overdue. One wheel
 * behind one lock was the first design; two busy workers then spent the
 * timers workload queueing for that lock (a futex convoy: both CPUs idle
 * while 100,000 timers were late). A current-thread runtime has one shard,
 * and its reactor thread fires every timer on time.
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
    /* Orders a doorbell ring before the stop closes the doorbell: ringers
     * check `stopped` under it. */
    pthread_mutex_t lock;
    _Atomic bool stopped; /* set under `lock`, then each shard is swept */
    /* The timing wheels, one per worker (one on a current-thread runtime). */
    unsigned nshards;
    struct weft__time_shard *shards;
    /* Wheel ms the reactor's libuv timer fires at (UINT64_MAX: none); an
     * inserter with an earlier need lowers it and rings. */
    _Atomic uint64_t armed;
    /* Wheel ms the parked I/O driver sleeps until; 0 while none sleeps. An
     * inserter with an earlier deadline lowers it and kicks the driver. */
    _Atomic uint64_t drive_until;
    unsigned drive_overdue; /* the driver's: waits in a row that found a timer overdue */
    bool started;
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

/* A timing wheel and its lock, one per worker (see the top of this file). */
typedef struct weft__time_shard {
    _Alignas(WEFT_CACHELINE) pthread_mutex_t lock; /* the wheel and its entries' links */
    /* The wheel's earliest deadline (ms), written under the lock, read
     * without it. Never later than the true earliest; a removal may leave
     * it early, which costs one look under the lock. */
    _Atomic uint64_t due_ms;
    weft__wheel_t wheel;
} weft__time_shard_t;

/* weft_sleep_t.fired_: 0 while pending; FIRING once a fire has begun (the
 * poll may complete), FIRED once the firer no longer touches the sleep. */
#define WEFT__SLEEP_FIRING 1
#define WEFT__SLEEP_FIRED 2
/* weft/time.h stores fired_ as a plain int (no _Atomic in public headers,
 * so they compile as C++); it is only ever accessed as an _Atomic int
 * through this cast, which has the same size and alignment. */
_Static_assert(sizeof(_Atomic int) == sizeof(int) && _Alignof(_Atomic int) == _Alignof(int),
               "weft_sleep_t.fired_ must be able to hold an _Atomic int");
#define WEFT__SLEEP_FIRED_WORD(s) ((_Atomic int *)&(s)->fired_)

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
/* Fires the timers that are due, from a worker of a multi-thread runtime
 * (`self`: its index): every due shard, its own first, each by trylock (a
 * shard whose lock is taken is skipped: its holder is at it). A busy worker
 * (`busy`) sends the tasks it wakes to the `woken` queue, which every
 * worker reads first; an idle one keeps the first batch and shares the
 * rest through `woken`. Cheap when nothing is due: a clock read and a load
 * per shard. Returns how many timers were fired. */
unsigned weft__reactor_fire_due(weft__reactor_t *r, unsigned self, bool busy);
void weft__reactor_drive_release(weft__reactor_t *r);
/* Wakes the parked driver (a write to kick_fd); harmless when none sleeps:
 * the next driver's wait returns once, at once. */
void weft__reactor_kick_driver(weft__reactor_t *r);
/* Multi-thread runtimes: the reactor thread fires a timer only once it is
 * this many ms overdue (no worker got to it), see process_timers. */
#define WEFT__TIMER_BACKSTOP_MS 4
#ifdef WEFT_TEST_HOOKS
/* Tests widen the backstop (before creating a runtime) so that whether a
 * worker or the backstop fired a timer does not hang on 4 ms of timing. */
extern _Atomic uint64_t weft__backstop_ms;
#define WEFT__BACKSTOP_MS() atomic_load_explicit(&weft__backstop_ms, memory_order_relaxed)
#else
#define WEFT__BACKSTOP_MS() ((uint64_t)WEFT__TIMER_BACKSTOP_MS)
#endif
/* How long the driver waits before it looks again at a timer it could not
 * fire (its shard's lock was taken). */
#define WEFT__DRIVE_RETRY_NS 200000u
void weft__reactor_drive_wait(void *reactor);

/* Starts the reactor thread, with `nshards` timing wheels (1..65535).
 * Returns 0, WEFT_ENOMEM, WEFT_EAGAIN, or a libuv error mapped to a
 * negative errno. */
int weft__reactor_start(weft__reactor_t **out, const char *name, bool workers_drive, unsigned nshards);
/* Stops the thread and closes every handle and the loop. Timers armed
 * later are due at once. Context: after every task was dropped. */
void weft__reactor_stop(weft__reactor_t *r);
/* Frees a stopped reactor (NULL is fine). */
void weft__reactor_free(weft__reactor_t *r);

/* Wheel milliseconds for an absolute weft_now_ns time, rounded up so a
 * timer never fires early. */
uint64_t weft__reactor_ms_ceil(const weft__reactor_t *r, uint64_t ns);
uint64_t weft__reactor_now_ms(const weft__reactor_t *r);

/* Under sh->lock: inserts e due at wheel ms `ms`; returns false when due
 * now (or the reactor is stopped), with e unlinked. Sets bits in *notify
 * for weft__reactor_timer_notify, to call once the lock is released. */
#define WEFT__NOTIFY_RING 1u /* the reactor's libuv timer is armed too late */
#define WEFT__NOTIFY_KICK 2u /* the parked driver sleeps past the deadline */
bool weft__reactor_timer_insert_locked(weft__reactor_t *r, weft__time_shard_t *sh, weft__timer_t *e, uint64_t ms,
                                       unsigned *notify);
void weft__reactor_timer_notify(weft__reactor_t *r, unsigned notify);
/* The earliest deadline over every shard (wheel ms; may be early, never
 * late), UINT64_MAX when no timer is pending. */
uint64_t weft__reactor_due_ms(weft__reactor_t *r);
/* True when any timer is pending. */
bool weft__reactor_timer_pending(weft__reactor_t *r);
void weft__reactor_ring(weft__reactor_t *r);

#endif
