/* sync/waiters.h - the waiter list: what every sync primitive that makes
 * tasks wait in a queue (semaphore, mutex, rwlock, and later channels)
 * builds on (internal).
 *
 * Structure. A primitive owns a weft__waitlock_t word and a weft__dlist_t
 * head; a waiter is a weft__dnode_t embedded in the waiting future itself
 * (no allocation per wait) plus a weft_waker_t slot beside it. The lock
 * protects the list, every linked node and every linked node's waker slot.
 *
 * Algorithm (who calls what):
 *   - A waiting future's poll takes the lock, decides it must wait, links
 *     its node and stores a clone of its context's waker
 *     (weft__waiter_register: a re-poll replaces the clone only when
 *     weft_waker_will_wake says the context changed, and hands the old one
 *     back to be dropped after unlocking), unlocks, returns WEFT_PENDING.
 *   - Whoever makes progress possible (a release, a close) takes the lock,
 *     unlinks the waiters it satisfies, moves their wakers into a
 *     weft__wake_list_t on its stack (weft__waiter_take), marks each
 *     waiter done with a release store as the LAST access to that waiter
 *     (from then on its future may complete and be freed), unlocks, and
 *     only then wakes the list (weft__wake_list_wake). A wake can run a
 *     task inline on some wakers and re-enter the primitive, so no waker is
 *     ever woken, cloned-and-dropped or dropped with the lock held (cloning
 *     under the lock is allowed: it only bumps a reference count).
 *   - A dropped (cancelled) future takes the lock and, if its node is
 *     still linked, unlinks it and gives back whatever the primitive had
 *     already handed it, waking the next waiter the same way.
 *   A wake list holds WEFT__WAKE_LIST_CAP wakers; a holder with more to
 *   wake unlocks, wakes the batch, relocks and goes on (Tokio's WakeList).
 *
 * Progress: the lock is a test-and-test-and-set spin lock that spins
 * briefly and then yields the CPU (a preempted holder gets to finish): its
 * critical sections are a few list operations and waker moves, never a
 * wake, a free or a call out. Blocking for the waiter (WEFT_PENDING), not
 * lock-free. The lock is a leaf: nothing else is locked while it is held,
 * so it has no rank to check against the scheduler's locks.
 *
 * Weaknesses: one lock per primitive, so a queue with many waiters and
 * frequent wakers serializes on it (the primitives put an atomic fast path
 * in front of it, taken when nobody waits); a spin lock on an
 * oversubscribed machine costs yields where a futex would sleep.
 */
#ifndef WEFT_SYNC_WAITERS_H
#define WEFT_SYNC_WAITERS_H


#include "../runtime/internal.h"
#include "../runtime/list.h"

/* ---- The lock -------------------------------------------------------------
 * Public structs keep it as plain `unsigned` storage (their headers must
 * compile as C++, without _Atomic), accessed only as an _Atomic unsigned
 * here: same size and alignment, checked below. */
_Static_assert(sizeof(_Atomic unsigned) == sizeof(unsigned), "lock word size");
_Static_assert(_Alignof(_Atomic unsigned) == _Alignof(unsigned), "lock word alignment");

static inline _Atomic unsigned *weft__waitlock_word(unsigned *storage)
{
    return (_Atomic unsigned *)(void *)storage;
}

static inline void weft__waitlock_init(unsigned *storage)
{
    atomic_init(weft__waitlock_word(storage), 0);
}

static inline void weft__waitlock_lock(unsigned *storage)
{
    _Atomic unsigned *l = weft__waitlock_word(storage);
    for (unsigned spins = 0;; spins++) {
        WEFT_CHAOS();
        /* The relaxed load first: waiters spin reading a shared line
         * instead of writing it (test-and-test-and-set). acquire on the
         * exchange: pairs with the release store in weft__waitlock_unlock:
         * the previous holder's list and waiter writes are visible. */
        if (atomic_load_explicit(l, memory_order_relaxed) == 0 &&
            atomic_exchange_explicit(l, 1, memory_order_acquire) == 0)
            return;
        weft__spin_backoff(spins); /* the holder may be preempted: let it run */
    }
}

static inline void weft__waitlock_unlock(unsigned *storage)
{
    /* release: publishes the critical section to the next
     * weft__waitlock_lock (its acquire exchange). */
    atomic_store_explicit(weft__waitlock_word(storage), 0, memory_order_release);
}

/* ---- Waker slots ----------------------------------------------------------- */

/* Under the lock: makes *slot wake `w`. An empty slot gets a clone; a slot
 * that already wakes the same thing is kept; otherwise the old waker moves
 * to *old (empty on entry), which the caller drops after unlocking. */
static inline void weft__waiter_register(weft_waker_t *slot, const weft_waker_t *w, weft_waker_t *old)
{
    if (slot->vtable != NULL) {
        if (weft_waker_will_wake(slot, w))
            return;
        *old = *slot;
    }
    *slot = weft_waker_clone(w);
}

/* ---- Wake lists -------------------------------------------------------------- */

/* Enough for the waiters a release typically satisfies (one for a mutex,
 * the readers queued behind a writer for an rwlock); more take another
 * lock round (see the design block). */
#define WEFT__WAKE_LIST_CAP 32

typedef struct {
    unsigned n;
    weft_waker_t w[WEFT__WAKE_LIST_CAP];
} weft__wake_list_t;

static inline void weft__wake_list_init(weft__wake_list_t *wl)
{
    wl->n = 0;
}

static inline bool weft__wake_list_full(const weft__wake_list_t *wl)
{
    return wl->n == WEFT__WAKE_LIST_CAP;
}

/* Under the lock: moves the waiter's waker (if any) into wl, leaving the
 * slot empty. The caller checks weft__wake_list_full first. */
static inline void weft__waiter_take(weft_waker_t *slot, weft__wake_list_t *wl)
{
    if (slot->vtable != NULL) {
        wl->w[wl->n++] = *slot;
        slot->vtable = NULL;
    }
}

/* After unlocking: wakes (consumes) every waker of wl. One plain wake each:
 * they may be tasks of any runtime or a blocked thread's parker, and the
 * caller may be any thread. */
static inline void weft__wake_list_wake(weft__wake_list_t *wl)
{
    for (unsigned i = 0; i < wl->n; i++) {
        WEFT_CHAOS();
        weft_waker_wake(&wl->w[i]);
    }
    wl->n = 0;
}

#endif
