/* runtime/park.c - a one-permit thread parker on a Linux futex.
 *
 * state: EMPTY (no permit), PARKED (a thread sleeps or is about to), or
 * NOTIFIED (a permit is waiting). unpark() leaves a permit, so an unpark that
 * comes before park() is not lost; park() consumes it. Only the owning thread
 * parks; any thread unparks. Lock-free; park blocks in the kernel.
 */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

enum { P_EMPTY = 0, P_PARKED = 1, P_NOTIFIED = 2 };

void weft__parker_init(weft__parker_t *p)
{
    atomic_init(&p->state, P_EMPTY);
    atomic_init(&p->kick_fd, -1);
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

void weft__unpark(weft__parker_t *p)
{
    /* release: publishes what the unparker did before (pairs with the
     * acquire in weft__park_timeout). acquire: a PARKED set by
     * weft__park_driving comes with its kick_fd. */
    if (atomic_exchange_explicit(&p->state, P_NOTIFIED, memory_order_acq_rel) != P_PARKED)
        return;
    int fd = atomic_load_explicit(&p->kick_fd, memory_order_relaxed);
    if (fd >= 0) {
        /* The owner sleeps in epoll. A kick read late (the owner already
         * awake) only makes the next driver's wait return once for nothing.
         * The fd stays open until the runtime's memory is freed. */
        uint64_t one = 1;
        ssize_t rc = write(fd, &one, sizeof one);
        (void)rc; /* EAGAIN: the counter is saturated, so it is readable anyway */
    } else {
        futex_wake(&p->state);
    }
}

bool weft__park_driving(weft__parker_t *p, int kick_fd, void (*wait)(void *arg), void *arg)
{
    uint32_t expect = P_NOTIFIED;
    /* acquire: as in weft__park_timeout. */
    if (atomic_compare_exchange_strong_explicit(&p->state, &expect, P_EMPTY, memory_order_acquire,
                                                memory_order_relaxed))
        return true;
    atomic_store_explicit(&p->kick_fd, kick_fd, memory_order_relaxed);
    expect = P_EMPTY;
    /* release: an unparker that reads PARKED (acq_rel) sees kick_fd. */
    if (!atomic_compare_exchange_strong_explicit(&p->state, &expect, P_PARKED, memory_order_release,
                                                 memory_order_relaxed)) {
        atomic_store_explicit(&p->kick_fd, -1, memory_order_relaxed);
        atomic_exchange_explicit(&p->state, P_EMPTY, memory_order_acquire); /* the permit that came */
        return true;
    }
    /* An unpark from here on either finds PARKED and kicks (wait returns,
     * even if the kick came before it started: the eventfd stays readable),
     * or comes after our exchange below and leaves its permit for next time. */
    wait(arg);
    uint32_t prev = atomic_exchange_explicit(&p->state, P_EMPTY, memory_order_acquire);
    atomic_store_explicit(&p->kick_fd, -1, memory_order_relaxed);
    return prev == P_NOTIFIED;
}
