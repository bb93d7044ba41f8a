/* runtime/clock.c - the scheduler's side of a virtual clock (testing:
 * WEFT_CLOCK_PAUSED and WEFT_CLOCK_MANUAL; docs/testing.md).
 *
 * The clock itself lives in the time driver (reactor/time_driver.c): it
 * stands still, and a timer fires only when the clock is moved past its
 * deadline. Two things move it: weft_time_advance (below), and, with
 * WEFT_CLOCK_PAUSED, the runtime itself when it would otherwise park with
 * nothing to do: then nothing but a timer can make progress, so jumping
 * to the next deadline changes nothing a task could observe except how
 * long the test takes.
 *
 * "Nothing to do" must cover what is already under way, or the clock would
 * jump over it and a timeout would win a race it should lose. Before it
 * jumps, the thread in block_on (a current-thread runtime's only poller)
 * checks, in this order:
 *   1. socket events that are ready: it takes them itself; their tasks run
 *      first, and then it looks again;
 *   2. blocking jobs in flight (clock_holds, counted from spawn to the end
 *      of the job or its cancellation): it parks, and the job's end
 *      unparks it;
 *   3. a wake under way on another thread (the driver thread taking socket
 *      events, or a wake from outside the runtime between its state change
 *      and its push): it waits a moment (SETTLE_NS) and looks again;
 *   4. the run queues and the root future, last: what 2 and 3 finished
 *      before is visible there (each pairs a seq_cst load here with the
 *      release that ends the work, after its push).
 * What it cannot see is work that has not started: a thread outside the
 * runtime that will wake a task later, or a peer outside the process that
 * will write to a socket. WEFT_CLOCK_MANUAL is for tests with such peers:
 * it never jumps by itself.
 */
#include "scheduler.h"
#include "nonnull.h"

/* How long the thread in block_on waits for a wake under way before it
 * looks again (step 3): such a wake takes a few hundred nanoseconds, and
 * one of another runtime's ends without unparking us. */
#define SETTLE_NS 50000u

void weft__clock_hold(weft__sched_t *s)
{
    if (s->cfg.clock == WEFT_CLOCK_PAUSED)
        atomic_fetch_add_explicit(&s->clock_holds, 1, memory_order_seq_cst);
}

void weft__clock_let_go(weft__sched_t *s)
{
    if (s->cfg.clock != WEFT_CLOCK_PAUSED)
        return;
    /* seq_cst: pairs with the load in may_jump; the job's end (its join
     * handle woken, the task pushed) comes before this decrement. The last
     * one unparks the thread in block_on, which parked at step 2 and may
     * have nothing else to wake it (a detached job wakes nobody). */
    if (atomic_fetch_sub_explicit(&s->clock_holds, 1, memory_order_seq_cst) == 1)
        (void)weft__unpark(&s->workers[0].parker);
}

typedef enum {
    IDLE_JUMP,   /* nothing can happen first: move the clock */
    IDLE_AGAIN,  /* there is work after all: go round the loop */
    IDLE_PARK,   /* wait for a blocking job, which unparks us */
    IDLE_SETTLE, /* a wake is under way: look again shortly */
} idle_t;

static idle_t may_jump(weft__sched_t *s, const _Atomic bool *root_woken)
{
    weft__driver_t *d = s->driver;
    weft__worker_t *w = &s->workers[0];
    if (weft__driver_poll_events(d, 64) > 0)
        return IDLE_AGAIN;
    if (atomic_load_explicit(&s->clock_holds, memory_order_seq_cst) > 0)
        return IDLE_PARK;
    if (!weft__driver_io_idle(d) || weft__foreign_wakes_busy())
        return IDLE_SETTLE;
    /* acquire: pairs with root_wake_by_ref's release (runtime.c). */
    if (w->lifo != NULL || weft__sched_has_work(s) || atomic_load_explicit(root_woken, memory_order_acquire))
        return IDLE_AGAIN;
    return IDLE_JUMP;
}

void weft__ct_idle(weft__sched_t *s, const _Atomic bool *root_woken)
{
    weft__parker_t *p = &s->workers[0].parker;
    if (s->cfg.clock != WEFT_CLOCK_PAUSED) {
        weft__park(p);
        return;
    }
    switch (may_jump(s, root_woken)) {
    case IDLE_AGAIN:
        return;
    case IDLE_PARK:
        weft__park(p);
        return;
    case IDLE_SETTLE:
        (void)weft__park_timeout(p, SETTLE_NS);
        return;
    case IDLE_JUMP:
        /* No timer left: nothing will ever happen by itself; sleep until
         * an outside thread wakes a task or advances the clock. */
        if (weft__driver_advance_to_next(s->driver) == 0)
            weft__park(p);
        return;
    }
}

int weft_time_advance(weft_handle_t *h, uint64_t ms)
{
    weft__sched_t *s = h != NULL ? (weft__sched_t *)(void *)h : weft__tls.sched;
    if (s == NULL)
        weft_panic(WEFT_SITE, "weft_time_advance called with no runtime current on this thread: call it from a "
                   "task or block_on, or pass a runtime handle");
    if (s->cfg.clock == WEFT_CLOCK_REAL || s->driver == NULL)
        return WEFT_EINVAL;
    weft__driver_advance(s->driver, ms > UINT64_MAX / 1000000u ? UINT64_MAX : ms * 1000000u);
    return 0;
}
