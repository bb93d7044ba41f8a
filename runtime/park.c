/* runtime/park.c - a one-permit thread parker on a Linux futex.
 *
 * state: EMPTY (no permit), PARKED (the owner sleeps on the futex or is
 * about to), PARKED_ELSEWHERE (the owner sleeps in a wait of its caller's
 * choosing, weft__park_elsewhere), or NOTIFIED (a permit is waiting).
 * unpark() leaves a permit, so an unpark that comes before park() is not
 * lost; park() consumes it. Only the owning thread parks; any thread
 * unparks. An unpark that finds PARKED_ELSEWHERE tells its caller, who
 * interrupts that wait (the parker does not know what it is). Lock-free;
 * park blocks in the kernel.
 */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

enum { P_EMPTY = 0, P_PARKED = 1, P_NOTIFIED = 2, P_PARKED_ELSEWHERE = 3 };

void weft__parker_init(weft__parker_t *p)
{
    atomic_init(&p->state, P_EMPTY);
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t val, const struct timespec *rel)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

uint64_t weft__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool weft__park_timeout(weft__parker_t *p, uint64_t timeout_ns)
{
    uint32_t expect = P_NOTIFIED;
    /* acquire: pairs with the release exchange in weft__unpark, so the
     * unparker's writes (the task it queued) are visible. */
    if (atomic_compare_exchange_strong_explicit(&p->state, &expect, P_EMPTY, memory_order_acquire,
                                                memory_order_relaxed))
        return true;
    expect = P_EMPTY;
    if (!atomic_compare_exchange_strong_explicit(&p->state, &expect, P_PARKED, memory_order_relaxed,
                                                 memory_order_relaxed)) {
        /* Only NOTIFIED can have appeared: consume it. acquire: pairs
         * with weft__unpark's release exchange. */
        atomic_exchange_explicit(&p->state, P_EMPTY, memory_order_acquire);
        return true;
    }
    uint64_t deadline = timeout_ns == UINT64_MAX ? UINT64_MAX : weft__now_ns() + timeout_ns;
    for (;;) {
        if (deadline == UINT64_MAX) {
            futex_wait(&p->state, P_PARKED, NULL);
        } else {
            uint64_t now = weft__now_ns();
            if (now >= deadline) {
                /* Withdraw; if a permit raced in, take it. */
                uint32_t prev = atomic_exchange_explicit(&p->state, P_EMPTY, memory_order_acquire);
                return prev == P_NOTIFIED;
            }
            uint64_t left = deadline - now;
            struct timespec rel = { (time_t)(left / 1000000000u), (long)(left % 1000000000u) };
            futex_wait(&p->state, P_PARKED, &rel);
        }
        expect = P_NOTIFIED;
        /* acquire: as above. */
        if (atomic_compare_exchange_strong_explicit(&p->state, &expect, P_EMPTY, memory_order_acquire,
                                                    memory_order_relaxed))
            return true;
        /* spurious futex return: sleep again */
    }
}

void weft__park(weft__parker_t *p)
{
    (void)weft__park_timeout(p, UINT64_MAX);
}

enum weft__unpark_result weft__unpark(weft__parker_t *p)
{
    /* release: publishes what the unparker did before (pairs with the
     * acquire in weft__park_timeout and weft__park_elsewhere). */
    uint32_t prev = atomic_exchange_explicit(&p->state, P_NOTIFIED, memory_order_release);
    if (prev == P_PARKED)
        futex_wake(&p->state);
    /* PARKED_ELSEWHERE: the caller interrupts the wait. One that comes late
     * (the owner already awake) costs the next such wait one early return. */
    return prev == P_PARKED_ELSEWHERE ? WEFT__UNPARK_ELSEWHERE : WEFT__UNPARK_DONE;
}

bool weft__park_elsewhere(weft__parker_t *p, void (*wait)(void *arg), void *arg)
{
    uint32_t expect = P_NOTIFIED;
    /* acquire: as in weft__park_timeout. */
    if (atomic_compare_exchange_strong_explicit(&p->state, &expect, P_EMPTY, memory_order_acquire,
                                                memory_order_relaxed))
        return true;
    expect = P_EMPTY;
    if (!atomic_compare_exchange_strong_explicit(&p->state, &expect, P_PARKED_ELSEWHERE, memory_order_relaxed,
                                                 memory_order_relaxed)) {
        /* Only NOTIFIED can have appeared: consume it. acquire: pairs with
         * weft__unpark's release exchange. */
        atomic_exchange_explicit(&p->state, P_EMPTY, memory_order_acquire);
        return true;
    }
    /* An unpark from here on either finds PARKED_ELSEWHERE and its caller
     * interrupts the wait (which then returns, even if the interruption
     * came before it started), or comes after our exchange below and leaves
     * its permit for next time. */
    wait(arg);
    /* acquire: pairs with weft__unpark's release exchange. */
    return atomic_exchange_explicit(&p->state, P_EMPTY, memory_order_acquire) == P_NOTIFIED;
}
