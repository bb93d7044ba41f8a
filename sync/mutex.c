/* sync/mutex.c - the async mutex: a semaphore with one permit.
 *
 * Locked means the permit is taken. lock is the semaphore's acquire of one
 * permit under a vtable whose output is weft_unit_t (a mutex is never
 * closed, so the acquire always succeeds); unlock is a release that aborts
 * when the permit is already there (sem_internal.h). FIFO fairness,
 * cancellation safety and the one-CAS fast paths are the semaphore's
 * (sync/semaphore.c); this file adds blocking_lock, which waits for the
 * same queue with a waker that unparks the calling thread.
 */
#include "../runtime/context.h"
#include "../runtime/nonnull.h"
#include "sem_internal.h"
#include "weft/mutex.h"

void weft_mutex_init(weft_mutex_t *m)
{
    WEFT__REQUIRE("weft_mutex_init", m);
    if (weft_semaphore_init(&m->sem_, 1) != 0) /* 1 is in range: cannot fail */
        weft_panic(WEFT_SITE, "weft_mutex_init: semaphore init failed");
}

void weft_mutex_destroy(weft_mutex_t *m)
{
    WEFT__REQUIRE("weft_mutex_destroy", m);
    weft_semaphore_destroy(&m->sem_);
}

static weft_poll_t lock_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    int rc = 0;
    if (weft__semaphore_acquire_poll((weft_semaphore_acquire_t *)(void *)f, cx, &rc) == WEFT_PENDING)
        return WEFT_PENDING;
    if (rc != 0) /* only a closed or misused semaphore fails: a mutex's is never either */
        weft_panic(WEFT_SITE, "weft_mutex_lock: %s", weft_strerror(rc));
    if (out != NULL)
        *(weft_unit_t *)out = WEFT_UNIT;
    return WEFT_READY;
}

static void lock_drop(weft_future_t *f)
{
    weft__semaphore_acquire_drop((weft_semaphore_acquire_t *)(void *)f);
}

static const weft_future_vtable_t lock_vtable = {
    lock_poll, lock_drop, NULL, sizeof(weft_mutex_lock_t), 0, "weft_mutex_lock",
};

weft_mutex_lock_t weft_mutex_lock(weft_mutex_t *m)
{
    WEFT__REQUIRE("weft_mutex_lock", m);
    return (weft_mutex_lock_t){ weft__semaphore_acquire_with(&m->sem_, 1, &lock_vtable) };
}

int weft_mutex_try_lock(weft_mutex_t *m)
{
    WEFT__REQUIRE("weft_mutex_try_lock", m);
    return weft_semaphore_try_acquire(&m->sem_); /* never WEFT_EPIPE: never closed */
}

void weft_mutex_unlock(weft_mutex_t *m)
{
    WEFT__REQUIRE("weft_mutex_unlock", m);
    weft__semaphore_release_checked(&m->sem_, 1, 1, "weft_mutex_unlock: the mutex is not locked");
}

bool weft_mutex_is_locked(const weft_mutex_t *m)
{
    WEFT__REQUIRE("weft_mutex_is_locked", m);
    return weft_semaphore_available_permits(&m->sem_) == 0;
}

/* ---- blocking_lock ---------------------------------------------------------
 * The waiter's waker unparks this thread's parker (on our stack). It is
 * woken at most once, by the release that hands us the mutex, and only
 * after that release stored our `remaining_` of 0; weft__park returns only
 * on a permit from that wake, so by the time the next poll sees READY and
 * we return, the waker has done its last write to the parker (the
 * exchange in weft__unpark; the futex wake that may follow touches no
 * memory). Clone and drop are no-ops: the parker outlives every handle. */
static const weft_waker_vtable_t parker_waker_vtable;

static weft_waker_t parker_clone(const void *data)
{
    return (weft_waker_t){ &parker_waker_vtable, data };
}
static void parker_wake(const void *data)
{
    (void)weft__unpark((weft__parker_t *)(uintptr_t)data); /* weft__park: never "elsewhere" */
}
static void parker_drop(const void *data)
{
    (void)data;
}
static const weft_waker_vtable_t parker_waker_vtable = { parker_clone, parker_wake, parker_wake, parker_drop };

void weft_mutex_blocking_lock(weft_mutex_t *m)
{
    WEFT__REQUIRE("weft_mutex_blocking_lock", m);
    weft__assert_not_in_runtime("weft_mutex_blocking_lock", WEFT_SITE);
    if (weft_semaphore_try_acquire(&m->sem_) == 0)
        return;
    weft__parker_t parker;
    weft__parker_init(&parker);
    weft_waker_t w = { &parker_waker_vtable, &parker };
    weft_context_t cx = { &w };
    weft_semaphore_acquire_t a = weft__semaphore_acquire_with(&m->sem_, 1, &lock_vtable);
    /* A blocking job runs inside a task's poll, with a coop budget: a spent
     * budget would make every poll below wake us and return PENDING. This
     * wait is not a task's poll, so it runs unconstrained. */
    int budget = weft__tls.budget;
    weft__tls.budget = -1;
    int rc = 0;
    while (weft__semaphore_acquire_poll(&a, &cx, &rc) == WEFT_PENDING)
        weft__park(&parker);
    weft__tls.budget = budget;
    weft__semaphore_acquire_drop(&a); /* completed: releases nothing */
    if (rc != 0)
        weft_panic(WEFT_SITE, "weft_mutex_blocking_lock: %s", weft_strerror(rc));
}
