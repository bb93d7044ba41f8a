/* sync/notify.c - Notify: wake one waiter or all of them (weft/notify.h).
 *
 * Algorithm. One spin lock guards a FIFO list of waiters, a one-bit permit,
 * and each queued waiter's `got_` (what it was given) and waker. Waiters
 * are the notified futures themselves: an intrusive weft__dnode_t in the
 * future's own struct, so a wait allocates nothing. A 64-bit counter of
 * notify_waiters calls (`gen_`) is written under the lock and read without
 * it by the constructor, which records it in the future (as Tokio does):
 *  - notify_one: pop the first waiter, mark it GOT_ONE and take its waker;
 *    with no waiter, set the permit (already set: nothing changes, so
 *    permits never add up). Wake after unlocking.
 *  - notify_waiters: bump gen_, move the whole list to a list head on the
 *    caller's stack (O(1)), then pop 32 at a time (GOT_ALL, wakers taken),
 *    unlocking to wake each batch. A waiter that queues meanwhile goes to
 *    the emptied main list and is not touched: only futures created before
 *    the bump are woken. One still on the private list when its owner
 *    polls it sees gen_ != its own and completes, unlinking itself (the
 *    list head it touches is alive: the caller pops until it is empty).
 *  - first poll or weft_notify_enable: under the lock, gen_ moved since the
 *    constructor -> GOT_ALL; else a permit -> take it, GOT_ONE; else
 *    join the back of the list.
 *  - later polls: GOT_* set -> ready; else refresh the waker (cloned only
 *    when weft_waker_will_wake says the task changed).
 *  - drop while queued: unlink; a GOT_ONE it never returned from a poll
 *    passes on to the next waiter (or back to the permit), so a future
 *    cancelled after notify_one chose it loses nothing.
 *
 * Wakers are woken one by one with weft_waker_wake, not weft__wake_batch:
 * the batch routes tasks through a per-thread batch that only a runtime's
 * own threads may use (runtime/sched.c), and notify is called from plain
 * threads and other runtimes' workers too.
 *
 * Progress: blocking (a spin lock held for a few list operations, never
 * across a wake, a waker drop or a poll; waker clones happen under it, as
 * in Tokio). Who calls what: notify_one and notify_waiters from any number
 * of threads at once; each future by its one owner; init and destroy with
 * no other call in progress.
 *
 * Weaknesses: FIFO over a lock, so a hot notify contends like a mutex (no
 * lock-free fast path for the permit, which Tokio has). notify_waiters is
 * O(waiters) under the lock in slices of WEFT__WAKE_LIST_CAP. A notify_one that chose a
 * waiter which is then dropped while a permit is already stored merges
 * into that permit (notifications are a flag, not a count).
 *
 * The public struct stores the lock word and the counter as plain integers
 * (weft/notify.h must compile as C++, with no _Atomic); every access goes
 * through the casts to the atomic types below, which the static assertions
 * check (as sync/atomic_waker.c does), and nothing touches those fields any
 * other way. The list links are weft__dnode_t (weft/common.h) themselves.
 */
#include <string.h>

#include "../runtime/context.h"
#include "../runtime/list.h"
#include "../runtime/nonnull.h"
#include "waiters.h"
#include "weft/notify.h"

_Static_assert(sizeof(_Atomic uint64_t) == sizeof(uint64_t) && _Alignof(_Atomic uint64_t) == _Alignof(uint64_t),
               "weft_notify_t.gen_ must hold an _Atomic uint64_t");

#define GEN(n) ((_Atomic uint64_t *)&(n)->gen_)
#define WAITERS(n) (&(n)->waiters_)
#define NODE(f) (&(f)->node_)
#define WAITER_OF(d) weft__container_of((d), weft_notified_t, node_)

#define NOTIFY_MAGIC 0x4e4f5446u /* "NOTF" */

/* The owner's view of a future (phase_): only its owner reads or writes it. */
typedef enum {
    PH_CREATED, /* constructed: on no list, holds nothing */
    PH_QUEUED,  /* enabled or polled: on a list, or given a notification (got_) */
    PH_DONE,    /* a poll returned WEFT_READY */
} phase_t;

/* What a queued future was given (got_), under the lock. */
typedef enum {
    GOT_NONE,
    GOT_ONE, /* chosen by notify_one (or took the permit): passed on if dropped */
    GOT_ALL, /* woken by notify_waiters: nothing to pass on */
} got_t;

static const weft_waker_t no_waker = { NULL, NULL };
static const weft_future_vtable_t notified_vtable;

/* The lock word lock_ is sync/waiters.h's waitlock. */
static void notify_lock(weft_notify_t *n)
{
    weft__waitlock_lock(&n->lock_);
}

static void notify_unlock(weft_notify_t *n)
{
    weft__waitlock_unlock(&n->lock_);
}

static void check_live(const weft_notify_t *n, const char *fn)
{
    if (n->magic_ != NOTIFY_MAGIC)
        weft_panic(WEFT_SITE, "%s: the notify is not initialised (or was destroyed)", fn);
}

void weft_notify_init(weft_notify_t *n)
{
    WEFT__REQUIRE("weft_notify_init", n);
    memset(n, 0, sizeof *n);
    weft__waitlock_init(&n->lock_); /* not shared yet */
    atomic_init(GEN(n), 0);
    weft__dlist_init(WAITERS(n));
    n->magic_ = NOTIFY_MAGIC;
}

void weft_notify_destroy(weft_notify_t *n)
{
    WEFT__REQUIRE("weft_notify_destroy", n);
    check_live(n, "weft_notify_destroy");
    notify_lock(n);
    bool waiting = !weft__dlist_empty(WAITERS(n));
    notify_unlock(n);
    if (waiting)
        weft_panic(WEFT_SITE, "weft_notify_destroy: futures still wait on this notify (drop them first)");
    n->magic_ = 0;
}

/* Under the lock: gives one notification to the first waiter (returns its
 * waker, to wake after unlocking; may be empty for an enabled future never
 * polled), or stores the permit (returns no waker). */
static weft_waker_t notify_one_locked(weft_notify_t *n)
{
    weft__dnode_t *d = weft__dlist_pop_front(WAITERS(n));
    if (d == NULL) {
        n->permit_ = 1;
        return no_waker;
    }
    weft_notified_t *w = WAITER_OF(d);
    w->got_ = GOT_ONE;
    weft_waker_t wk = w->waker_;
    w->waker_ = no_waker;
    return wk;
}

void weft_notify_notify_one(weft_notify_t *n)
{
    WEFT__REQUIRE("weft_notify_notify_one", n);
    check_live(n, "weft_notify_notify_one");
    WEFT_CHAOS();
    notify_lock(n);
    weft_waker_t wk = notify_one_locked(n);
    notify_unlock(n);
    WEFT_CHAOS();
    if (wk.vtable != NULL)
        weft_waker_wake(&wk);
}

void weft_notify_notify_waiters(weft_notify_t *n)
{
    WEFT__REQUIRE("weft_notify_notify_waiters", n);
    check_live(n, "weft_notify_notify_waiters");
    weft__dlist_t batch;
    weft__dlist_init(&batch);
    WEFT_CHAOS();
    notify_lock(n);
    /* release: whatever the caller wrote before this call (the condition
     * its waiters check) reaches a constructor that reads the new count
     * (the acquire load in weft_notify_notified): a future that misses
     * this call sees its effects. Written only under the lock, so the
     * plain read-modify-write is not lost. */
    atomic_store_explicit(GEN(n), atomic_load_explicit(GEN(n), memory_order_relaxed) + 1, memory_order_release);
    weft__dlist_append_all(WAITERS(n), &batch);
    for (;;) {
        weft__wake_list_t wl;
        weft__wake_list_init(&wl);
        weft__dnode_t *d;
        while (!weft__wake_list_full(&wl) && (d = weft__dlist_pop_front(&batch)) != NULL) {
            weft_notified_t *w = WAITER_OF(d);
            w->got_ = GOT_ALL;
            weft__waiter_take(&w->waker_, &wl);
        }
        bool more = !weft__dlist_empty(&batch);
        notify_unlock(n);
        weft__wake_list_wake(&wl);
        if (!more)
            return;
        WEFT_CHAOS(); /* waiters on `batch` may poll or drop themselves now */
        notify_lock(n);
    }
}

weft_notified_t weft_notify_notified(weft_notify_t *n)
{
    WEFT__REQUIRE("weft_notify_notified", n);
    check_live(n, "weft_notify_notified");
    weft_notified_t f;
    memset(&f, 0, sizeof f);
    f.future.vtable = &notified_vtable;
    f.notify_ = n;
    /* acquire: pairs with the release store in weft_notify_notify_waiters:
     * when this future misses a call (reads its count), the caller's
     * condition checked after this constructor sees what that call's
     * caller wrote before it. */
    f.gen_ = atomic_load_explicit(GEN(n), memory_order_acquire);
    f.waker_ = no_waker;
    f.phase_ = PH_CREATED;
    f.got_ = GOT_NONE;
    return f;
}

/* Under the lock: f leaves PH_CREATED. It takes a notify_waiters call it
 * missed, or the permit, or joins the back of the list. */
static void start_locked(weft_notify_t *n, weft_notified_t *f)
{
    weft__dnode_init(NODE(f)); /* here, not in the constructor: the future may have moved */
    /* relaxed: gen_ only changes under the lock we hold. */
    if (atomic_load_explicit(GEN(n), memory_order_relaxed) != f->gen_) {
        f->got_ = GOT_ALL;
    } else if (n->permit_) {
        n->permit_ = 0;
        f->got_ = GOT_ONE;
    } else {
        f->got_ = GOT_NONE;
        weft__dlist_push_back(WAITERS(n), NODE(f));
    }
    f->phase_ = PH_QUEUED;
}

/* Under the lock, f queued: what it holds now. GOT_NONE with gen_ moved
 * means a notify_waiters call moved f to its private list and has not
 * reached it yet: f takes it and unlinks itself. */
static got_t settle_locked(weft_notify_t *n, weft_notified_t *f)
{
    if (f->got_ == GOT_NONE && atomic_load_explicit(GEN(n), memory_order_relaxed) != f->gen_) {
        /* relaxed above: gen_ only changes under the lock we hold. */
        weft__dlist_remove(NODE(f));
        f->got_ = GOT_ALL;
    }
    return (got_t)f->got_;
}

bool weft_notify_enable(weft_notified_t *f)
{
    WEFT__REQUIRE("weft_notify_enable", f);
    if (f->phase_ == PH_DONE)
        weft_panic(WEFT_SITE, "weft_notify_enable on a notified future that already completed");
    weft_notify_t *n = f->notify_;
    check_live(n, "weft_notify_enable");
    notify_lock(n);
    if (f->phase_ == PH_CREATED)
        start_locked(n, f);
    got_t got = settle_locked(n, f);
    notify_unlock(n);
    WEFT_CHAOS();
    return got != GOT_NONE;
}

static weft_poll_t notified_poll(weft_future_t *fut, weft_context_t *cx, void *out)
{
    weft_notified_t *f = (weft_notified_t *)(void *)fut;
    if (f->phase_ == PH_DONE)
        weft_panic(WEFT_SITE, "weft_notified polled after it completed");
    weft_notify_t *n = f->notify_;
    check_live(n, "weft_notified (poll)");
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    weft_waker_t old = no_waker;
    notify_lock(n);
    if (f->phase_ == PH_CREATED)
        start_locked(n, f);
    got_t got = settle_locked(n, f);
    if (got != GOT_NONE) {
        old = f->waker_; /* empty unless a notify_waiters batch left it for us */
        f->waker_ = no_waker;
    } else if (f->waker_.vtable == NULL || !weft_waker_will_wake(&f->waker_, cx->waker)) {
        old = f->waker_;
        f->waker_ = weft_waker_clone(cx->waker);
    }
    notify_unlock(n);
    WEFT_CHAOS();
    weft_waker_drop(&old); /* outside the lock: a drop may free a task */
    if (got == GOT_NONE) {
        weft__coop_refund();
        return WEFT_PENDING;
    }
    f->phase_ = PH_DONE;
    if (out != NULL)
        *(weft_unit_t *)out = WEFT_UNIT;
    return WEFT_READY;
}

static void notified_drop(weft_future_t *fut)
{
    weft_notified_t *f = (weft_notified_t *)(void *)fut;
    if (f->phase_ != PH_QUEUED)
        return; /* on no list, holds no waker */
    weft_notify_t *n = f->notify_;
    check_live(n, "weft_notified (drop)");
    WEFT_CHAOS();
    notify_lock(n);
    weft_waker_t mine = f->waker_;
    f->waker_ = no_waker;
    weft_waker_t next = no_waker;
    if (weft__dnode_linked(NODE(f)))
        weft__dlist_remove(NODE(f)); /* waiting, or on a notify_waiters batch: nothing to pass on */
    else if (f->got_ == GOT_ONE)
        next = notify_one_locked(n); /* chosen but never observed: the next waiter gets it */
    notify_unlock(n);
    f->phase_ = PH_DONE;
    WEFT_CHAOS();
    weft_waker_drop(&mine);
    if (next.vtable != NULL)
        weft_waker_wake(&next);
}

static const weft_future_vtable_t notified_vtable = {
    notified_poll, notified_drop, NULL, sizeof(weft_notified_t), 0, "weft_notified",
};
