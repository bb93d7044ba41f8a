/* runtime/context.c - the per-thread runtime context, misuse aborts, and the
 * cooperative budget.
 *
 * The budget (context.h) ends a task's poll after WEFT_COOP_BUDGET units or
 * after a time slice, whichever comes first. Units are counted on every
 * weft_coop_proceed; the clock (clock_gettime(CLOCK_MONOTONIC), 20 ns on a
 * quiet machine through the vDSO, 100 ns on a loaded VM) is read only now
 * and then, so that a loop over cheap resources (a receiver draining a
 * channel at 30 ns a message) pays three reads per full poll of 128 units
 * (at units 8, 16 and 80):
 *
 *   - first at the WEFT__COOP_CLOCK_FIRST-th unit (8): the slice starts
 *     there (a poll that spends fewer units reads no clock at all: a poll
 *     of a few units is short unless one of them is dear, which the last
 *     rule covers);
 *   - then COOP_CLOCK_PACE units later, to learn what the units cost;
 *   - then every COOP_CLOCK_EVERY units while the units are cheap (at that
 *     pace the whole budget fits in the slice), and at every unit once an
 *     interval shows them dear (more than slice/WEFT_COOP_BUDGET each);
 *   - and at the unit after an operation known to be dear
 *     (weft__coop_note_dear: a spawn that copies or faults in a page or
 *     more), whatever the count.
 * So a poll of uniformly dear units ends within the slice plus about one
 * unit, counted from the first read (16 units at most before the pace is
 * known, one after a dear spawn); units that turn dear after a cheap
 * stretch are seen within COOP_CLOCK_EVERY units. Wall time, not the thread's CPU
 * time (a syscall away): a poll that lost its CPU for a while yields a
 * little early, which costs a requeue and nothing else.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include "scheduler.h"
#include "nonnull.h"

_Thread_local weft__tls_t weft__tls = { .worker_index = -1, .budget = -1 };

void weft_panic(const char *site, const char *fmt, ...)
{
    va_list ap;
    fputs("weft: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (at %s)\n", site ? site : "?");
    fflush(stderr);
    abort();
}

void weft__assert_not_in_runtime(const char *what, const char *site)
{
    if (weft__tls.worker != NULL && weft__tls.task != NULL)
        weft_panic(site, "%s called from inside a task (task '%s' spawned at %s): this would block a runtime "
                   "worker; await instead, or move the call to another thread",
                   what, weft__task_name(weft__tls.task) ? weft__task_name(weft__tls.task) : "unnamed",
                   weft__task_site(weft__tls.task));
    if (weft__tls.worker != NULL)
        weft_panic(site, "%s called from a runtime worker thread: this would block the worker", what);
    if (weft__tls.in_block_on)
        weft_panic(site, "%s called from inside weft_runtime_block_on: a runtime cannot be started or "
                   "blocked on from within a runtime", what);
}

weft_handle_t *weft_handle_current(void)
{
    return (weft_handle_t *)weft__tls.sched;
}

const char *weft_task_current_name(void)
{
    return weft__tls.task ? weft__task_name(weft__tls.task) : NULL;
}

const char *weft_task_current_site(void)
{
    return weft__tls.task ? weft__task_site(weft__tls.task) : NULL;
}

weft_task_id_t weft_task_current_id(void)
{
    return weft__tls.task ? weft__task_id(weft__tls.task) : 0;
}

/* The second read comes this many units after the first, to learn what
 * the units cost. */
#define COOP_CLOCK_PACE 8
/* Then, while they are cheap, every COOP_CLOCK_EVERY units. */
#define COOP_CLOCK_EVERY 64

uint64_t weft__coop_slice_ns = WEFT_COOP_SLICE_NS;

void weft__coop_set_slice_ns(uint64_t ns)
{
    weft__coop_slice_ns = ns;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The clock read of the budget (see the file comment): true when the slice
 * is over. Sets when the next read comes. */
static bool coop_slice_spent(void)
{
    weft__tls_t *c = &weft__tls;
    uint64_t now = mono_ns();
    uint64_t slice = weft__coop_slice_ns;
    if (c->budget_deadline == 0) { /* the first read of this poll: the slice starts */
        c->budget_deadline = now + slice;
        c->budget_read = now;
        c->budget_span = c->budget_tick = COOP_CLOCK_PACE;
        return false;
    }
    if (now >= c->budget_deadline)
        return true;
    /* budget_span: the units spent since the last read (a dear operation
     * may have cut the interval short: weft__coop_note_dear). */
    bool dear = now - c->budget_read > (uint64_t)c->budget_span * (slice / WEFT_COOP_BUDGET);
    c->budget_read = now;
    c->budget_span = c->budget_tick = dear ? 1 : COOP_CLOCK_EVERY;
    return false;
}

bool weft_coop_proceed(weft_context_t *cx)
{
    WEFT__REQUIRE("weft_coop_proceed", cx);
    int b = weft__tls.budget;
    if (b < 0)
        return true; /* not inside a runtime poll: unconstrained */
    if (WEFT_LIKELY(b > 0) && (--weft__tls.budget_tick > 0 || !coop_slice_spent())) {
        weft__tls.budget = b - 1;
        return true;
    }
    weft__tls.budget = 0; /* spent: every resource says no until the poll ends */
    weft_waker_wake_by_ref(cx->waker);
    return false;
}
