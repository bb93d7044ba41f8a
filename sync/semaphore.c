/* sync/semaphore.c - the async semaphore (after Tokio's batch_semaphore),
 * the base of the mutex and the rwlock.
 *
 * State: one atomic permit word, `available << 2 | WAITERS | CLOSED`, and
 * a FIFO queue of waiting acquires behind a spin lock (sync/waiters.h).
 *
 * The invariant that makes the fast paths safe: WAITERS is set exactly
 * while the queue is non-empty, it changes only under the lock, and while
 * it is set the available count is 0 and every writer of the word holds
 * the lock. So:
 *   - try_acquire / the first poll of an acquire: one CAS that takes the
 *     permits when WAITERS is clear and enough are available. A set
 *     WAITERS makes it fail (no barging: later arrivals queue behind).
 *   - release: one CAS that adds the permits when WAITERS is clear; else
 *     under the lock the permits are assigned to the queue from its head
 *     (a waiter's `remaining_` counts down; fully served waiters are
 *     unlinked and woken after unlocking), and whatever is left when the
 *     queue empties is added back with WAITERS cleared. A head waiter
 *     that needs more than is released keeps what it got and blocks the
 *     queue: a large request is never overtaken by smaller ones.
 *   - an acquire that must wait takes, under the lock, whatever is
 *     available as a first assignment (count -> 0), sets WAITERS and
 *     queues itself at the back.
 * A waiter learns it was served when `remaining_` reads 0 (no lock), and
 * that the semaphore was closed when its node is unlinked with
 * `remaining_` > 0 (under the lock).
 *
 * Cancellation: a dropped acquire that is still queued unlinks itself and
 * releases what was assigned to it (n - remaining_); one that was fully
 * served but never saw it releases all n; one closed out releases its
 * partial assignment. Each goes through the release path, which serves
 * the next waiters: no permit and no wake-up is lost.
 *
 * Progress: try_acquire, release without waiters, forget and the
 * queries are lock-free (one CAS loop); queueing, release to waiters,
 * cancellation and close take the spin lock for a few list operations.
 * Context: any thread for everything; acquire futures are polled by tasks
 * of any runtime or block_on roots. Weakness: a long queue makes release
 * walk it under the lock (bounded by the waiters it serves); every
 * waiter's wake-up passes through one lock.
 */
#include <stddef.h>

#include "../runtime/context.h"
#include "../runtime/nonnull.h"
#include "../runtime/construct.h"
#include "sem_internal.h"
#include "waiters.h"

#define SEM_CLOSED ((size_t)1)
#define SEM_WAITERS ((size_t)2)
#define SEM_FLAGS ((size_t)3)
#define SEM_SHIFT 2
#define SEM_COUNT(w) ((w) >> SEM_SHIFT)

/* The phases of an acquire future. */
enum acquire_phase {
    ACQ_IDLE = 0, /* not polled yet */
    ACQ_QUEUED,   /* linked in the queue, or unlinked by a release or close it has not seen */
    ACQ_DONE,     /* completed: the permits (if any) are the caller's */
};

_Static_assert(sizeof(_Atomic size_t) == sizeof(size_t), "permit word size");
_Static_assert(_Alignof(_Atomic size_t) == _Alignof(size_t), "permit word alignment");

static inline _Atomic size_t *permits_word(const weft_semaphore_t *sem)
{
    return (_Atomic size_t *)(void *)&((weft_semaphore_t *)sem)->permits_;
}

static inline _Atomic size_t *remaining_word(weft_semaphore_acquire_t *a)
{
    return (_Atomic size_t *)(void *)&a->remaining_;
}

static inline weft_semaphore_acquire_t *node_acquire(weft__dnode_t *n)
{
    return weft__container_of(n, weft_semaphore_acquire_t, node_);
}

int weft_semaphore_init(weft_semaphore_t *sem, size_t permits)
{
    WEFT__REQUIRE("weft_semaphore_init", sem);
    if (permits > WEFT_SEMAPHORE_MAX_PERMITS)
        return WEFT_EINVAL;
    atomic_init(permits_word(sem), permits << SEM_SHIFT);
    weft__waitlock_init(&sem->lock_);
    weft__dlist_init(&sem->waiters_);
    return 0;
}

void weft_semaphore_destroy(weft_semaphore_t *sem)
{
    WEFT__REQUIRE("weft_semaphore_destroy", sem);
    if (!weft__dlist_empty(&sem->waiters_))
        weft_panic(WEFT_SITE, "weft_semaphore_destroy: acquire futures still wait on the semaphore "
                              "(drop them, or close it and let them finish, first)");
}

/* ---- Fast paths --------------------------------------------------------------- */

/* One CAS loop: takes n permits when nobody waits and enough are there.
 * Returns 0, WEFT_EAGAIN or WEFT_EPIPE. */
static int try_take(weft_semaphore_t *sem, size_t n)
{
    _Atomic size_t *pw = permits_word(sem);
    /* relaxed: a first guess; the CAS below validates it and carries the
     * ordering. */
    size_t w = atomic_load_explicit(pw, memory_order_relaxed);
    for (;;) {
        if (w & SEM_CLOSED)
            return WEFT_EPIPE;
        if ((w & SEM_WAITERS) || SEM_COUNT(w) < n)
            return WEFT_EAGAIN;
        WEFT_CHAOS();
        /* acquire on success: pairs with the release CAS/store that made
         * these permits available (release_fast, settle_locked): what the
         * previous holder did under them (a mutex's critical section) is
         * visible. */
        if (atomic_compare_exchange_weak_explicit(pw, &w, w - (n << SEM_SHIFT), memory_order_acquire,
                                                  memory_order_relaxed))
            return 0;
    }
}

typedef enum { RELEASE_DONE, RELEASE_QUEUED, RELEASE_OVERFLOW } release_fast_t;

/* One CAS loop: adds n permits when nobody waits and count + n <= limit.
 * RELEASE_QUEUED: WAITERS is set, the caller takes the slow path. */
static release_fast_t release_fast(weft_semaphore_t *sem, size_t n, size_t limit)
{
    _Atomic size_t *pw = permits_word(sem);
    /* relaxed: a first guess; the CAS below validates it and carries the
     * ordering. */
    size_t w = atomic_load_explicit(pw, memory_order_relaxed);
    for (;;) {
        if (w & SEM_WAITERS)
            return RELEASE_QUEUED;
        if (SEM_COUNT(w) > limit - n)
            return RELEASE_OVERFLOW;
        WEFT_CHAOS();
        /* release: publishes the releaser's writes to the next taker
         * (try_take's acquire CAS, or queue's acquire CAS). */
        if (atomic_compare_exchange_weak_explicit(pw, &w, w + (n << SEM_SHIFT), memory_order_release,
                                                  memory_order_relaxed))
            return RELEASE_DONE;
    }
}

/* ---- Under the lock ------------------------------------------------------------ */

/* Assigns *rem permits to the queue from its head, moving the wakers of
 * fully served waiters into wl. When the queue is (or becomes) empty, adds
 * what is left to the count and clears WAITERS. Stops early when wl is
 * full (the caller wakes it and comes back). Returns true when done. */
static bool settle_locked(weft_semaphore_t *sem, size_t *rem, weft__wake_list_t *wl)
{
    weft__dnode_t *n;
    while (*rem > 0 && (n = weft__dlist_first(&sem->waiters_)) != NULL) {
        if (weft__wake_list_full(wl))
            return false;
        weft_semaphore_acquire_t *a = node_acquire(n);
        /* relaxed: only holders of the lock write it while it is queued. */
        size_t need = atomic_load_explicit(remaining_word(a), memory_order_relaxed);
        if (need > *rem) {
            /* The head keeps what it gets and still blocks the queue.
             * relaxed: only lock holders read it while it is queued. */
            atomic_store_explicit(remaining_word(a), need - *rem, memory_order_relaxed);
            *rem = 0;
            break;
        }
        *rem -= need;
        weft__dlist_remove(n);
        weft__waiter_take(&a->waker_, wl);
        WEFT_CHAOS();
        /* release, and the last access to *a: pairs with the acquire load
         * in weft__semaphore_acquire_poll, which may then complete the
         * future and free it; the waiter sees the previous holders'
         * writes. */
        atomic_store_explicit(remaining_word(a), 0, memory_order_release);
    }
    if (!weft__dlist_empty(&sem->waiters_))
        return true;
    /* Nobody waits (any more): clear WAITERS and make the rest available.
     * A CAS loop: with WAITERS already clear, fast-path takers and
     * releasers may be changing the count. */
    _Atomic size_t *pw = permits_word(sem);
    /* relaxed: a first guess; the CAS below validates it and carries the
     * ordering. */
    size_t w = atomic_load_explicit(pw, memory_order_relaxed);
    for (;;) {
        if (!(w & SEM_WAITERS) && *rem == 0)
            return true;
        if (SEM_COUNT(w) > WEFT_SEMAPHORE_MAX_PERMITS - *rem)
            weft_panic(WEFT_SITE, "weft_semaphore_release: more permits than WEFT_SEMAPHORE_MAX_PERMITS");
        WEFT_CHAOS();
        /* release: publishes the releaser's writes to the next fast-path
         * taker (try_take's acquire CAS). */
        if (atomic_compare_exchange_weak_explicit(pw, &w, (w & ~SEM_WAITERS) + (*rem << SEM_SHIFT),
                                                  memory_order_release, memory_order_relaxed)) {
            *rem = 0;
            return true;
        }
    }
}

/* Called with the lock held: assigns rem permits (0 allowed: then it only
 * clears WAITERS if the queue emptied), unlocks, and wakes the served. */
static void release_and_unlock(weft_semaphore_t *sem, size_t rem)
{
    weft__wake_list_t wl;
    weft__wake_list_init(&wl);
    while (!settle_locked(sem, &rem, &wl)) {
        weft__waitlock_unlock(&sem->lock_);
        weft__wake_list_wake(&wl);
        weft__waitlock_lock(&sem->lock_);
    }
    weft__waitlock_unlock(&sem->lock_);
    weft__wake_list_wake(&wl);
}

static void release_slow(weft_semaphore_t *sem, size_t n)
{
    weft__waitlock_lock(&sem->lock_);
    release_and_unlock(sem, n);
}

/* ---- Release -------------------------------------------------------------------- */

static int release(weft_semaphore_t *sem, size_t n)
{
    if (n > WEFT_SEMAPHORE_MAX_PERMITS)
        return WEFT_EINVAL;
    if (n == 0)
        return 0;
    switch (release_fast(sem, n, WEFT_SEMAPHORE_MAX_PERMITS)) {
    case RELEASE_DONE:
        return 0;
    case RELEASE_OVERFLOW:
        return WEFT_EINVAL;
    case RELEASE_QUEUED:
        break;
    }
    release_slow(sem, n);
    return 0;
}

int weft_semaphore_release(weft_semaphore_t *sem, size_t n)
{
    WEFT__REQUIRE("weft_semaphore_release", sem);
    return release(sem, n);
}

int weft_semaphore_add_permits(weft_semaphore_t *sem, size_t n)
{
    WEFT__REQUIRE("weft_semaphore_add_permits", sem);
    return release(sem, n);
}

void weft__semaphore_release_checked(weft_semaphore_t *sem, size_t n, size_t limit, const char *what)
{
    switch (release_fast(sem, n, limit)) {
    case RELEASE_DONE:
        return;
    case RELEASE_OVERFLOW:
        weft_panic(WEFT_SITE, "%s", what);
    case RELEASE_QUEUED:
        break;
    }
    release_slow(sem, n);
}

/* ---- try_acquire, forget, close, queries ----------------------------------------- */

int weft_semaphore_try_acquire(weft_semaphore_t *sem)
{
    WEFT__REQUIRE("weft_semaphore_try_acquire", sem);
    return try_take(sem, 1);
}

int weft_semaphore_try_acquire_many(weft_semaphore_t *sem, size_t n)
{
    WEFT__REQUIRE("weft_semaphore_try_acquire_many", sem);
    if (n == 0 || n > WEFT_SEMAPHORE_MAX_PERMITS)
        return WEFT_EINVAL;
    return try_take(sem, n);
}

size_t weft_semaphore_forget(weft_semaphore_t *sem, size_t n)
{
    WEFT__REQUIRE("weft_semaphore_forget", sem);
    _Atomic size_t *pw = permits_word(sem);
    /* relaxed: a first guess; the CAS below validates it and carries the
     * ordering. */
    size_t w = atomic_load_explicit(pw, memory_order_relaxed);
    for (;;) {
        size_t take = SEM_COUNT(w) < n ? SEM_COUNT(w) : n; /* 0 while anyone waits */
        if (take == 0)
            return 0;
        /* relaxed: removes a count; nothing is published or consumed. */
        if (atomic_compare_exchange_weak_explicit(pw, &w, w - (take << SEM_SHIFT), memory_order_relaxed,
                                                  memory_order_relaxed))
            return take;
    }
}

void weft_semaphore_close(weft_semaphore_t *sem)
{
    WEFT__REQUIRE("weft_semaphore_close", sem);
    weft__wake_list_t wl;
    weft__wake_list_init(&wl);
    weft__waitlock_lock(&sem->lock_);
    /* Under the lock, so no acquire queues after this (it checks CLOSED
     * under the lock too). WAITERS is cleared: the queue is emptied below
     * before the lock is released for good. release: pairs with the
     * acquire load in weft_semaphore_is_closed (what the closer did before
     * is visible to whoever sees the close); fast paths that only fail on
     * the bit need no ordering, and the lock orders the waiters. */
    atomic_fetch_or_explicit(permits_word(sem), SEM_CLOSED, memory_order_release);
    weft__dnode_t *n;
    for (;;) {
        while ((n = weft__dlist_first(&sem->waiters_)) != NULL && !weft__wake_list_full(&wl)) {
            weft_semaphore_acquire_t *a = node_acquire(n);
            /* Unlinked with remaining_ > 0 tells the waiter it was closed
             * out; this is the last access to *a (the waiter reads its
             * node under the lock). */
            weft__dlist_remove(n);
            weft__waiter_take(&a->waker_, &wl);
        }
        if (n == NULL)
            break;
        weft__waitlock_unlock(&sem->lock_);
        weft__wake_list_wake(&wl);
        weft__waitlock_lock(&sem->lock_);
    }
    /* relaxed: under the lock, count 0 (WAITERS was set) or untouched. */
    atomic_fetch_and_explicit(permits_word(sem), ~SEM_WAITERS, memory_order_relaxed);
    weft__waitlock_unlock(&sem->lock_);
    weft__wake_list_wake(&wl);
}

bool weft_semaphore_is_closed(const weft_semaphore_t *sem)
{
    WEFT__REQUIRE("weft_semaphore_is_closed", sem);
    /* acquire: pairs with the release fetch_or in weft_semaphore_close. */
    return (atomic_load_explicit(permits_word(sem), memory_order_acquire) & SEM_CLOSED) != 0;
}

size_t weft_semaphore_available_permits(const weft_semaphore_t *sem)
{
    WEFT__REQUIRE("weft_semaphore_available_permits", sem);
    /* relaxed: a snapshot; it orders nothing. */
    return SEM_COUNT(atomic_load_explicit(permits_word(sem), memory_order_relaxed));
}

/* ---- The acquire future ------------------------------------------------------------ */

/* Under the lock, after the fast path failed: takes the permits if they
 * are there after all, else takes what is available as a first assignment,
 * sets WAITERS and queues a. Returns 0 (taken), WEFT_EPIPE, or WEFT_EAGAIN
 * (queued). */
static int queue_locked(weft_semaphore_t *sem, weft_semaphore_acquire_t *a, const weft_waker_t *waker)
{
    _Atomic size_t *pw = permits_word(sem);
    /* relaxed: a first guess; the CAS below validates it and carries the
     * ordering. */
    size_t w = atomic_load_explicit(pw, memory_order_relaxed);
    size_t take;
    for (;;) {
        if (w & SEM_CLOSED)
            return WEFT_EPIPE;
        if (w & SEM_WAITERS) {
            /* Others wait: the word is stable under the lock (count 0), so
             * there is nothing to take and nothing to write. Skipping the
             * CAS spares a contended line a write on every queueing. */
            take = 0;
            break;
        }
        size_t avail = SEM_COUNT(w);
        size_t next;
        if (avail >= a->n_) {
            take = a->n_;
            next = w - (take << SEM_SHIFT);
        } else {
            take = avail;
            next = (w & SEM_CLOSED) | SEM_WAITERS;
        }
        WEFT_CHAOS();
        /* acquire: pairs with the release CAS of whoever made the taken
         * permits available (release_fast, settle_locked). Fast-path
         * releasers may race this CAS while WAITERS is still clear. */
        if (atomic_compare_exchange_weak_explicit(pw, &w, next, memory_order_acquire, memory_order_relaxed))
            break;
    }
    if (take == a->n_)
        return 0;
    /* relaxed: the lock orders it for releasers; the waiter's own loads
     * are on this thread. */
    atomic_store_explicit(remaining_word(a), a->n_ - take, memory_order_relaxed);
    weft__dnode_init(&a->node_);
    weft__dlist_push_back(&sem->waiters_, &a->node_);
    a->waker_ = weft_waker_clone(waker);
    return WEFT_EAGAIN;
}

weft_poll_t weft__semaphore_acquire_poll(weft_semaphore_acquire_t *a, weft_context_t *cx, int *rc)
{
    weft_semaphore_t *sem = a->sem_;
    if (a->phase_ == ACQ_DONE)
        weft_panic(WEFT_SITE, "weft_semaphore_acquire polled after it completed");
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    if (a->phase_ == ACQ_IDLE) {
        if (a->n_ == 0 || a->n_ > WEFT_SEMAPHORE_MAX_PERMITS) {
            *rc = WEFT_EINVAL;
            goto done;
        }
        int r = try_take(sem, a->n_);
        if (r != WEFT_EAGAIN) {
            *rc = r;
            goto done;
        }
        weft__waitlock_lock(&sem->lock_);
        r = queue_locked(sem, a, cx->waker);
        weft__waitlock_unlock(&sem->lock_);
        if (r != WEFT_EAGAIN) {
            *rc = r;
            goto done;
        }
        a->phase_ = ACQ_QUEUED;
        goto pending;
    }
    /* Queued. acquire: pairs with settle_locked's release store of 0,
     * after which the releaser no longer touches *a. */
    if (atomic_load_explicit(remaining_word(a), memory_order_acquire) == 0) {
        *rc = 0;
        goto done;
    }
    weft_waker_t old = { NULL, NULL };
    weft__waitlock_lock(&sem->lock_);
    if (weft__dnode_linked(&a->node_)) {
        weft__waiter_register(&a->waker_, cx->waker, &old);
        weft__waitlock_unlock(&sem->lock_);
        weft_waker_drop(&old);
        goto pending;
    }
    /* Unlinked: served meanwhile (remaining_ 0), or closed out. */
    size_t left = atomic_load_explicit(remaining_word(a), memory_order_relaxed); /* the lock orders it */
    if (left == 0) {
        weft__waitlock_unlock(&sem->lock_);
        *rc = 0;
        goto done;
    }
    a->phase_ = ACQ_DONE;
    release_and_unlock(sem, a->n_ - left); /* give back the partial assignment */
    *rc = WEFT_EPIPE;
    return WEFT_READY;
done:
    a->phase_ = ACQ_DONE;
    return WEFT_READY;
pending:
    weft__coop_refund();
    return WEFT_PENDING;
}

void weft__semaphore_acquire_drop(weft_semaphore_acquire_t *a)
{
    if (a->phase_ != ACQ_QUEUED)
        return; /* never queued, or completed: nothing of ours is held here */
    weft_semaphore_t *sem = a->sem_;
    a->phase_ = ACQ_DONE;
    weft__waitlock_lock(&sem->lock_);
    size_t left = atomic_load_explicit(remaining_word(a), memory_order_relaxed); /* the lock orders it */
    weft_waker_t w = a->waker_; /* still ours when linked; empty when a release or close took it */
    a->waker_.vtable = NULL;
    if (weft__dnode_linked(&a->node_))
        weft__dlist_remove(&a->node_);
    /* Give back what was assigned: all n when served unseen (left 0),
     * else the part assigned before the drop or the close. When the queue
     * just emptied, this also clears WAITERS. */
    WEFT_CHAOS();
    release_and_unlock(sem, a->n_ - left);
    weft_waker_drop(&w);
}

static weft_poll_t acquire_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    int rc = 0;
    weft_poll_t p = weft__semaphore_acquire_poll((weft_semaphore_acquire_t *)(void *)f, cx, &rc);
    if (p == WEFT_READY && out != NULL) {
        *(int *)out = rc;
    } else if (p == WEFT_READY && rc == 0) {
        /* The caller does not want the output (future.h: the future then
         * releases what it holds): the permits go straight back. */
        weft_semaphore_acquire_t *a = (weft_semaphore_acquire_t *)(void *)f;
        (void)release(a->sem_, a->n_);
    }
    return p;
}

static void acquire_drop(weft_future_t *f)
{
    weft__semaphore_acquire_drop((weft_semaphore_acquire_t *)(void *)f);
}

static const weft_future_vtable_t acquire_vtable = {
    acquire_poll, acquire_drop, NULL, sizeof(weft_semaphore_acquire_t), sizeof(int), "weft_semaphore_acquire",
};

#ifdef WEFT__PAIR_STORES
_Static_assert(offsetof(weft_semaphore_acquire_t, node_) == 8 && offsetof(weft_semaphore_acquire_t, waker_) == 24 &&
                   offsetof(weft_semaphore_acquire_t, remaining_) == 40 && offsetof(weft_semaphore_acquire_t, n_) == 48 &&
                   offsetof(weft_semaphore_acquire_t, sem_) == 56 && offsetof(weft_semaphore_acquire_t, phase_) == 64 &&
                   sizeof(weft_semaphore_acquire_t) == 72 && ACQ_IDLE == 0,
               "weft_semaphore_acquire_t layout (weft__semaphore_acquire_with)");
#endif

/* node_ is initialized when the acquire queues (queue_locked): a future
 * moves until it is first polled. Written in 16-byte pieces
 * (runtime/construct.h). */
weft_semaphore_acquire_t weft__semaphore_acquire_with(weft_semaphore_t *sem, size_t n, const weft_future_vtable_t *vt)
{
    weft_semaphore_acquire_t a;
#ifdef WEFT__PAIR_STORES
    unsigned char *p = (unsigned char *)&a;
    weft__put_pair(p, (uintptr_t)vt, 0);       /* future, node_.prev */
    weft__put_pair(p + 16, 0, 0);              /* node_.next, waker_.vtable */
    weft__put_pair(p + 32, 0, 0);              /* waker_.data, remaining_ */
    weft__put_pair(p + 48, n, (uintptr_t)sem); /* n_, sem_ */
    memset(p + 64, 0, 8);                      /* phase_ */
#else
    a = (weft_semaphore_acquire_t){ .future = { vt }, .n_ = n, .sem_ = sem, .phase_ = ACQ_IDLE };
#endif
    return a;
}

weft_semaphore_acquire_t weft_semaphore_acquire(weft_semaphore_t *sem)
{
    WEFT__REQUIRE("weft_semaphore_acquire", sem);
    return weft__semaphore_acquire_with(sem, 1, &acquire_vtable);
}

weft_semaphore_acquire_t weft_semaphore_acquire_many(weft_semaphore_t *sem, size_t n)
{
    WEFT__REQUIRE("weft_semaphore_acquire_many", sem);
    return weft__semaphore_acquire_with(sem, n, &acquire_vtable);
}
