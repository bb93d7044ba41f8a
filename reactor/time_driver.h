/* reactor/time_driver.h - the time driver: one timing wheel per worker
 * (internal).
 *
 * Each worker of a multi-thread runtime has a timing wheel of its own (a
 * shard, with its own lock); a sleep registers in the shard of the worker
 * that first polls it and stays there. The workers fire due timers
 * themselves, any worker any shard: busy workers every inject interval,
 * idle ones and the worker parked in the driver when they look for work.
 * They only try a shard's lock, so a worker descheduled while holding its
 * own stalls that shard alone. The libuv thread is the backstop: it fires
 * what is WEFT__TIMER_BACKSTOP_MS overdue. One wheel behind one lock was
 * the first design; two busy workers then spent the timers workload
 * queueing for that lock (a futex convoy: both CPUs idle while 100,000
 * timers were late). A current-thread runtime has one shard, and the libuv
 * thread fires every timer on time.
 *
 * A virtual clock (testing: WEFT_CLOCK_PAUSED, or WEFT_CLOCK_MANUAL, the
 * one a multi-thread runtime may have) replaces CLOCK_MONOTONIC for this
 * driver's timers and for weft_now_ns on the runtime's threads. It stands
 * still; neither the workers nor the libuv thread fire (nothing falls due
 * while the clock stands), the worker parked in the driver sleeps until
 * kicked, and a timer fires only when weft__time_advance
 * (weft_time_advance) or weft__time_advance_to_next (a current-thread
 * runtime found itself idle) moves the clock past its deadline.
 */
#ifndef WEFT_TIME_DRIVER_H
#define WEFT_TIME_DRIVER_H

#include "reactor.h"

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

/* Multi-thread runtimes: the libuv thread fires a timer only once it is
 * this many ms overdue (no worker got to it). */
#define WEFT__TIMER_BACKSTOP_MS 4
#ifdef WEFT_TEST_HOOKS
/* Tests widen the backstop (before creating a runtime) so that whether a
 * worker or the backstop fired a timer does not hang on 4 ms of timing. */
extern _Atomic uint64_t weft__backstop_ms;
#define WEFT__BACKSTOP_MS() atomic_load_explicit(&weft__backstop_ms, memory_order_relaxed)
#else
#define WEFT__BACKSTOP_MS() ((uint64_t)WEFT__TIMER_BACKSTOP_MS)
#endif
/* How long the parked worker waits before it looks again at a timer it
 * could not fire (its shard's lock was taken). */
#define WEFT__PARK_RETRY_NS 200000u

/* ---- The driver's side (driver.c, uv_thread.c) ----------------------------- */
int weft__time_init(weft__driver_t *d, unsigned nshards, bool paused);
void weft__time_free(weft__driver_t *d);
/* Workers: see weft__driver_fire_timers. */
unsigned weft__time_fire_due(weft__driver_t *d, unsigned self, weft__fire_mode_t mode);
/* The libuv thread: fires what is due (multi-thread: what is the backstop's
 * slack overdue) and returns the ms until it must look again, UINT64_MAX
 * when no timer is pending. */
uint64_t weft__time_backstop(weft__driver_t *d);
/* weft__driver_stop: fires every timer left, in every shard. The caller
 * set `stopped` first, so no timer is inserted after its shard's sweep. */
void weft__time_stop(weft__driver_t *d);
/* The earliest deadline over every shard (wheel ms; may be early, never
 * late), UINT64_MAX when no timer is pending. */
uint64_t weft__time_due_ms(weft__driver_t *d);
/* The worker about to sleep in the driver publishes the wheel ms it sleeps
 * until (the earliest deadline, which is returned; UINT64_MAX: none), so a
 * timer inserted earlier kicks it (WEFT__NOTIFY_KICK); and withdraws it
 * when it wakes. */
uint64_t weft__time_park_begin(weft__driver_t *d);
void weft__time_park_end(weft__driver_t *d);
/* Nanoseconds from now until the deadline `ms` (wheel ms) begins; 0 when it
 * has. Counts consecutive overdue results: past two, it answers
 * WEFT__PARK_RETRY_NS (the timer sits in a shard whose lock another thread
 * holds; look again shortly rather than spin on a CPU that thread may
 * need). Only the worker parked in the driver calls it. */
uint64_t weft__time_park_timeout_ns(weft__driver_t *d, uint64_t ms);
/* The virtual clock: see weft__driver_advance_to_next and
 * weft__driver_advance (driver.h). */
unsigned weft__time_advance_to_next(weft__driver_t *d);
void weft__time_advance(weft__driver_t *d, uint64_t ns);

/* ---- The resources' side (reactor/time) ------------------------------------ */
/* The time on d's clock (weft_now_ns's clock): CLOCK_MONOTONIC, or the
 * virtual clock of a paused driver. */
uint64_t weft__time_now_ns(const weft__driver_t *d);
/* The time driver of the runtime current on this thread; aborts naming
 * `what` when there is none (no runtime, or enable_time off). */
weft__driver_t *weft__time_current(const char *what);
/* The shard a sleep first polled on this thread registers in: the worker's
 * own, or for another thread (a block_on caller, a blocking job) one picked
 * by its thread-local address, to spread such threads out. */
unsigned weft__time_shard_here(const weft__driver_t *d);
/* Wheel milliseconds for an absolute weft_now_ns time, rounded up so a
 * timer never fires early. */
uint64_t weft__time_ms_ceil(const weft__driver_t *d, uint64_t ns);
/* Under the shard's lock: inserts e due at wheel ms `ms`; returns false
 * when due now (or the driver is stopped), with e unlinked. Sets bits in
 * *notify for weft__time_notify, to call once the lock is released. */
#define WEFT__NOTIFY_RING 1u /* the backstop timer is armed too late */
#define WEFT__NOTIFY_KICK 2u /* the parked worker sleeps past the deadline */
bool weft__time_insert_locked(weft__driver_t *d, weft__time_shard_t *sh, weft__timer_t *e, uint64_t ms,
                              unsigned *notify);
void weft__time_notify(weft__driver_t *d, unsigned notify);

#endif
