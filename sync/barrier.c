/* sync/barrier.c - the async barrier (weft/barrier.h), after Tokio's
 * Barrier, on the waiter list of sync/waiters.h.
 *
 * State, all under one spin lock: the group size n_, the arrivals of the
 * current generation still waiting (arrived_), the generation count gen_
 * and the FIFO list of those waits. A wait records gen_ when it arrives.
 *  - first poll: lock; if arrived_ + 1 == n_ this wait is the leader:
 *    bump gen_, zero arrived_, move the whole list to a batch head on the
 *    caller's stack (O(1)), then pop 32 at a time (waker taken, then a
 *    release store of released_ as the LAST access to the wait), unlocking
 *    to wake each batch; complete with true. Else arrived_++, link, clone
 *    the waker, WEFT_PENDING.
 *  - later polls: released_ reads 1 -> complete with false. Else, under
 *    the lock: gen_ moved past the wait's -> it sits in a leader's batch
 *    not yet popped: unlink itself (the batch head is alive: the leader
 *    pops until it is empty, under this lock), drop its waker, complete
 *    with false. Else refresh the waker.
 *  - drop while queued: under the lock, gen_ still the wait's -> it is in
 *    the current generation: unlink and arrived_-- (the arrival is
 *    withdrawn); gen_ moved -> released: just unlink from the batch if it
 *    is still there. Released_ already 1 -> nothing to do.
 * Arrivals during a leader's unlocked wake rounds join the fresh list of
 * the next generation, never the batch: groups do not mix.
 *
 * Why a dropped wait withdraws (Tokio keeps its arrival instead): a wait
 * under a timeout, or in a task that is aborted, would otherwise release
 * its group with one member missing, and a retried wait would count
 * twice. Withdrawal makes the wait cancellation-safe in the usual sense:
 * dropping it unpolled-to-completion is as if it had never arrived,
 * except when its group was already released (then the arrival stands).
 * The cost: a group whose member is cancelled waits for a replacement.
 *
 * Progress: blocking (the spin lock is held for a few list steps, never
 * across a wake or a waker drop). Context: waits are polled by tasks of
 * any runtime or block_on roots; init, destroy with nothing else in
 * progress. Weakness: a release wakes the whole group through one lock,
 * O(n) under it in 32-wait slices.
 */
#include "../runtime/context.h"
#include "../runtime/list.h"
#include "../runtime/nonnull.h"
#include "waiters.h"
#include "weft/barrier.h"

#define BARRIER_MAGIC 0x42415252u /* "BARR" */

/* The owner's view of a wait (phase_): only its owner reads or writes it. */
enum wait_phase {
    WAIT_IDLE = 0, /* not polled: no arrival yet */
    WAIT_QUEUED,   /* arrived and waiting, or released and not seen yet */
    WAIT_DONE,     /* completed: nothing of the barrier's is held */
};

_Static_assert(sizeof(_Atomic unsigned) == sizeof(unsigned) && _Alignof(_Atomic unsigned) == _Alignof(unsigned),
               "weft_barrier_wait_t.released_ must hold an _Atomic unsigned");

static inline _Atomic unsigned *released_word(weft_barrier_wait_t *w)
{
    return (_Atomic unsigned *)(void *)&w->released_;
}

static inline weft_barrier_wait_t *node_wait(weft__dnode_t *n)
{
    return weft__container_of(n, weft_barrier_wait_t, node_);
}

static void check_live(const weft_barrier_t *b, const char *fn)
{
    if (b->magic_ != BARRIER_MAGIC)
        weft_panic(WEFT_SITE, "%s: the barrier is not initialised (or was destroyed)", fn);
}

int weft_barrier_init(weft_barrier_t *b, size_t n)
{
    WEFT__REQUIRE("weft_barrier_init", b);
    if (n == 0)
        return WEFT_EINVAL;
    weft__waitlock_init(&b->lock_);
    b->n_ = n;
    b->arrived_ = 0;
    b->gen_ = 0;
    weft__dlist_init(&b->waiters_);
    b->magic_ = BARRIER_MAGIC;
    return 0;
}

void weft_barrier_destroy(weft_barrier_t *b)
{
    WEFT__REQUIRE("weft_barrier_destroy", b);
    check_live(b, "weft_barrier_destroy");
    if (!weft__dlist_empty(&b->waiters_))
        weft_panic(WEFT_SITE, "weft_barrier_destroy: waits still queued on the barrier (drop them first)");
    b->magic_ = 0;
}

size_t weft_barrier_size(const weft_barrier_t *b)
{
    WEFT__REQUIRE("weft_barrier_size", b);
    check_live(b, "weft_barrier_size");
    return b->n_; /* written once, before the barrier is shared */
}

/* Called by the leader with the lock held: starts the next generation and
 * releases every wait of this one, unlocks, wakes them. */
static void release_and_unlock(weft_barrier_t *b)
{
    weft__dlist_t batch;
    b->gen_++;
    b->arrived_ = 0;
    /* Move the whole list to `batch` in O(1): later arrivals go to the
     * emptied b->waiters_, of the next generation. */
    if (weft__dlist_empty(&b->waiters_)) {
        weft__dlist_init(&batch);
    } else {
        batch.next = b->waiters_.next;
        batch.prev = b->waiters_.prev;
        batch.next->prev = &batch;
        batch.prev->next = &batch;
        weft__dlist_init(&b->waiters_);
    }
    weft__wake_list_t wl;
    weft__wake_list_init(&wl);
    for (;;) {
        weft__dnode_t *n;
        while (!weft__wake_list_full(&wl) && (n = weft__dlist_pop_front(&batch)) != NULL) {
            weft_barrier_wait_t *w = node_wait(n);
            weft__waiter_take(&w->waker_, &wl);
            WEFT_CHAOS();
            /* release, and the last access to *w: pairs with the acquire
             * load in wait_poll, which may then complete the wait and
             * free it. */
            atomic_store_explicit(released_word(w), 1, memory_order_release);
        }
        if (weft__dlist_empty(&batch))
            break;
        weft__waitlock_unlock(&b->lock_);
        weft__wake_list_wake(&wl);
        weft__waitlock_lock(&b->lock_);
    }
    weft__waitlock_unlock(&b->lock_);
    weft__wake_list_wake(&wl);
}

static weft_poll_t wait_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_barrier_wait_t *w = (weft_barrier_wait_t *)(void *)f;
    weft_barrier_t *b = w->barrier_;
    bool leader = false;
    if (w->phase_ == WAIT_DONE)
        weft_panic(WEFT_SITE, "weft_barrier_wait polled after it completed");
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    if (w->phase_ == WAIT_IDLE) {
        weft__waitlock_lock(&b->lock_);
        if (b->arrived_ + 1 == b->n_) {
            leader = true;
            w->phase_ = WAIT_DONE;
            release_and_unlock(b);
            goto done;
        }
        b->arrived_++;
        w->gen_ = b->gen_;
        weft__dlist_push_back(&b->waiters_, &w->node_);
        w->waker_ = weft_waker_clone(cx->waker);
        w->phase_ = WAIT_QUEUED;
        weft__waitlock_unlock(&b->lock_);
        goto pending;
    }
    /* Queued. acquire: pairs with the release store in
     * release_and_unlock, after which the leader no longer touches *w. */
    if (atomic_load_explicit(released_word(w), memory_order_acquire) != 0)
        goto done;
    weft_waker_t old = { NULL, NULL };
    weft__waitlock_lock(&b->lock_);
    if (b->gen_ == w->gen_) {
        weft__waiter_register(&w->waker_, cx->waker, &old);
        weft__waitlock_unlock(&b->lock_);
        weft_waker_drop(&old);
        goto pending;
    }
    /* Released, still in the leader's batch (or just popped from it, in
     * which case released_ is 1 and the waker is gone): take ourselves
     * out so the leader never touches us again. */
    if (weft__dnode_linked(&w->node_))
        weft__dlist_remove(&w->node_);
    old = w->waker_;
    w->waker_.vtable = NULL;
    weft__waitlock_unlock(&b->lock_);
    weft_waker_drop(&old);
done:
    w->phase_ = WAIT_DONE;
    if (out != NULL)
        *(bool *)out = leader;
    return WEFT_READY;
pending:
    weft__coop_refund();
    return WEFT_PENDING;
}

static void wait_drop(weft_future_t *f)
{
    weft_barrier_wait_t *w = (weft_barrier_wait_t *)(void *)f;
    if (w->phase_ != WAIT_QUEUED)
        return; /* never arrived, or completed: nothing of ours is held */
    w->phase_ = WAIT_DONE;
    /* acquire: as in wait_poll; once released_ is 1 the leader is done
     * with *w and took its waker. */
    if (atomic_load_explicit(released_word(w), memory_order_acquire) != 0)
        return;
    weft_barrier_t *b = w->barrier_;
    weft__waitlock_lock(&b->lock_);
    WEFT_CHAOS();
    if (b->gen_ == w->gen_)
        b->arrived_--; /* not released yet: withdraw the arrival */
    if (weft__dnode_linked(&w->node_))
        weft__dlist_remove(&w->node_);
    weft_waker_t old = w->waker_; /* ours while linked; empty once the leader took it */
    w->waker_.vtable = NULL;
    weft__waitlock_unlock(&b->lock_);
    weft_waker_drop(&old);
}

static const weft_future_vtable_t wait_vtable = {
    wait_poll, wait_drop, NULL, sizeof(weft_barrier_wait_t), sizeof(bool), "weft_barrier_wait",
};

weft_barrier_wait_t weft_barrier_wait(weft_barrier_t *b)
{
    WEFT__REQUIRE("weft_barrier_wait", b);
    check_live(b, "weft_barrier_wait");
    weft_barrier_wait_t w;
    w.future.vtable = &wait_vtable;
    w.barrier_ = b;
    weft__dnode_init(&w.node_);
    w.waker_ = (weft_waker_t){ NULL, NULL };
    w.gen_ = 0;
    w.released_ = 0;
    w.phase_ = WAIT_IDLE;
    return w;
}
