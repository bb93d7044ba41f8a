/* sync/watch.c - a channel holding one latest value, read and waited on by
 * many receivers (weft/watch.h; after Tokio's tokio::sync::watch).
 *
 * Structure: one allocation per channel holds three counts (`refs`: every
 * sender and receiver handle; `senders`; `receivers`), two value buffers,
 * and two locks with distinct jobs:
 *   - the value: `cur` points at the buffer readers copy, `spare` at the
 *     other one, where the next send builds its value. A reader/writer spin
 *     word (`rw`) guards `cur`, the bytes it points at and `version`;
 *     readers copy under the read side, in parallel with each other.
 *   - `tx_lock` (a sync/waiters.h spin lock) lets one sender at a time
 *     near the value: it guards `spare` and serializes the write side, so
 *     the reader/writer word never sees two writers.
 *   - `lock` (a sync/waiters.h spin lock) guards the waiter list, `closed`
 *     writes and every linked changed future's node, waker and linked_.
 *
 * Algorithm:
 *   - send: under tx_lock, copy the value into `spare` (no reader can see
 *     it), then take the write side only to swap `cur` and `spare` and
 *     bump the version: readers wait for a pointer swap, never for a copy.
 *     The old value is then in `spare`: handed to the caller
 *     (send_replace) or released through ops->drop, still under tx_lock
 *     (the next sender writes into that buffer). Then wake every waiter.
 *     A buffer is only written after a write-side acquisition that
 *     followed every read of it, so reads never race writes.
 *   - send_modify: under tx_lock and the write side, modify `cur` in place.
 *   - changed: under `lock`, compare the version with the receiver's seen
 *     version; equal and open, link the future and store its waker. A send
 *     bumps the version before it takes `lock`, so a waiter either sees the
 *     new version or is on the list that send then empties.
 *   - wake: under `lock`, move the whole list to a head on the waker's
 *     stack (later waiters are not this send's business), then take up to
 *     WEFT__WAKE_LIST_CAP wakers at a time, unlocking to wake each batch
 *     (as notify_waiters does in sync/notify.c).
 *   - the last sender sets `closed` under `lock` and wakes everyone: a
 *     waiter completes with 0 when a version it has not seen is there,
 *     else WEFT_EPIPE.
 *
 * Progress: blocking. Readers spin while a sender swaps (a few
 * instructions) or modifies in place; a sender spins until the readers
 * inside finish their copy (new readers hold back while it waits, so a
 * stream of readers cannot starve it). Nothing is woken, freed or called
 * out under `lock`; ops->clone runs under the read side, ops->drop and
 * send_modify's callback under tx_lock. Context: any thread; changed
 * futures are polled by tasks of any runtime or block_on roots.
 *
 * Weaknesses: every send takes `lock` even when nobody waits; senders
 * serialize on tx_lock; the channel holds two buffers of value_size; a
 * reader copies the whole value even when it only wants a field.
 */
#include <string.h>

#include "../runtime/context.h"
#include "../runtime/nonnull.h"
#include "waiters.h"
#include "weft/watch.h"

/* The phases of a changed future (phase_), seen by its owner only. */
enum changed_phase {
    CH_IDLE = 0, /* not polled: node_ and waker_ not in use */
    CH_POLLED,   /* polled: node_ and waker_ valid, read under the lock */
    CH_DONE,     /* completed or dropped */
};

struct weft_watch_s {
    _Atomic size_t refs;               /* sender and receiver handles */
    _Atomic size_t senders;            /* sender handles */
    _Atomic size_t receivers;          /* receiver handles */
    size_t value_size, stride;
    weft_value_ops_t ops;
    _Atomic unsigned rw;               /* RW_*: over cur, *cur and version's writes */
    unsigned char *cur;                /* the value readers copy */
    _Atomic uint64_t version;          /* of *cur; written with rw held for writing */
    unsigned tx_lock;                  /* one sender at a time; over spare */
    unsigned char *spare;              /* where the next send builds its value */
    unsigned lock;                     /* over waiters, closed's writes, linked futures */
    _Atomic bool closed;               /* every sender dropped */
    weft__dlist_t waiters;             /* changed futures waiting, oldest first */
    _Alignas(16) unsigned char bufs[]; /* two buffers of stride bytes */
};

#define WAITER_OF(d) weft__container_of((d), weft_watch_changed_t, node_)

static const weft_waker_t no_waker = { NULL, NULL };

/* ---- The reader/writer spin word over the value ----------------------------
 * RW_WRITER: a sender holds the value; RW_WAITING: a sender waits for the
 * readers inside to leave, and new readers hold back; each reader inside
 * adds RW_READER. Only the tx_lock holder takes the write side, so there
 * is never more than one writer. */
#define RW_WRITER 1u
#define RW_WAITING 2u
#define RW_READER 4u

static void read_lock(weft_watch_t *c)
{
    for (unsigned spins = 0;; spins++) {
        WEFT_CHAOS();
        unsigned s = atomic_load_explicit(&c->rw, memory_order_relaxed);
        /* acquire: pairs with the release store in write_unlock: the last
         * sender's cur, buffer and version writes are visible. */
        if ((s & (RW_WRITER | RW_WAITING)) == 0 &&
            atomic_compare_exchange_weak_explicit(&c->rw, &s, s + RW_READER, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
        weft__spin_backoff(spins);
    }
}

static void read_unlock(weft_watch_t *c)
{
    /* release: this reader's reads of the buffer come before a sender's
     * next write into it; pairs with the acquire CAS in write_lock (the
     * RMWs between keep the release sequence). */
    atomic_fetch_sub_explicit(&c->rw, RW_READER, memory_order_release);
}

/* The caller holds tx_lock. */
static void write_lock(weft_watch_t *c)
{
    /* relaxed: only announces the wait (new readers hold back); the
     * acquire CAS below is what orders. */
    atomic_fetch_or_explicit(&c->rw, RW_WAITING, memory_order_relaxed);
    for (unsigned spins = 0;; spins++) {
        WEFT_CHAOS();
        unsigned s = RW_WAITING;
        /* acquire: pairs with read_unlock's release: every reader that was
         * inside has finished its copy. */
        if (atomic_compare_exchange_weak_explicit(&c->rw, &s, RW_WRITER, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
        weft__spin_backoff(spins);
    }
}

static void write_unlock(weft_watch_t *c)
{
    /* release: publishes cur, *cur and version to the next read_lock (its
     * acquire CAS). A plain store: while RW_WRITER is set, readers do not
     * touch the word. */
    atomic_store_explicit(&c->rw, 0, memory_order_release);
}

/* ---- Lifetime ---------------------------------------------------------------- */

static size_t chan_size(size_t stride)
{
    return sizeof(weft_watch_t) + 2 * stride;
}

static void chan_release(weft_watch_t *c)
{
    /* acq_rel: the last holder sees every other holder's writes (the value,
     * the list) before it frees; pairs with this same fetch_sub in the
     * other holders. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* No receiver is left, so no changed future is linked (one points at
     * its receiver, which the caller must keep until the future is gone). */
    if (c->ops.drop != NULL)
        c->ops.drop(c->cur);
    WEFT_LIVE_DEC(WEFT_LIVE_WATCH);
    weft__free(c, chan_size(c->stride));
}

int weft_watch_new(size_t value_size, const void *init, const weft_value_ops_t *ops, weft_watch_tx_t *tx,
                   weft_watch_rx_t *rx)
{
    WEFT__REQUIRE("weft_watch_new", init);
    WEFT__REQUIRE("weft_watch_new", tx);
    if (value_size == 0 || value_size > WEFT_WATCH_MAX_VALUE)
        return WEFT_EINVAL;
    size_t stride = WEFT_ALIGN_UP(value_size, 16);
    weft_watch_t *c = weft__alloc(chan_size(stride));
    if (c == NULL)
        return WEFT_ENOMEM;
    atomic_init(&c->refs, rx != NULL ? 2 : 1);
    atomic_init(&c->senders, 1);
    atomic_init(&c->receivers, rx != NULL ? 1 : 0);
    c->value_size = value_size;
    c->stride = stride;
    c->ops = ops != NULL ? *ops : (weft_value_ops_t){ NULL, NULL };
    atomic_init(&c->rw, 0);
    c->cur = c->bufs;
    c->spare = c->bufs + stride;
    memcpy(c->cur, init, value_size);
    atomic_init(&c->version, 0);
    weft__waitlock_init(&c->tx_lock);
    weft__waitlock_init(&c->lock);
    atomic_init(&c->closed, false);
    weft__dlist_init(&c->waiters);
    WEFT_LIVE_INC(WEFT_LIVE_WATCH);
    tx->chan_ = c;
    if (rx != NULL) {
        rx->chan_ = c;
        rx->seen_ = 0;
    }
    return 0;
}

static weft_watch_t *tx_chan(const weft_watch_tx_t *tx, const char *what)
{
    if (tx->chan_ == NULL)
        weft_panic(WEFT_SITE, "%s on a dropped sender", what);
    return tx->chan_;
}

static weft_watch_t *rx_chan(const weft_watch_rx_t *rx, const char *what)
{
    if (rx->chan_ == NULL)
        weft_panic(WEFT_SITE, "%s on a dropped receiver", what);
    return rx->chan_;
}

/* ---- Waking ------------------------------------------------------------------ */

/* Wakes every changed future waiting now; `close` first marks the channel
 * closed under the same lock. A future that joins the list meanwhile saw
 * the new version or `closed` when it looked, so it is not this call's. */
static void wake_waiters(weft_watch_t *c, bool close)
{
    weft__dlist_t batch;
    weft__dlist_init(&batch);
    WEFT_CHAOS();
    weft__waitlock_lock(&c->lock);
    if (close) {
        /* release: pairs with the acquire load in weft_watch_has_changed:
         * every send made before the last sender dropped is visible to a
         * reader that sees `closed`. */
        atomic_store_explicit(&c->closed, true, memory_order_release);
    }
    weft__dlist_append_all(&c->waiters, &batch);
    for (;;) {
        weft__wake_list_t wl;
        weft__wake_list_init(&wl);
        weft__dnode_t *d;
        while (!weft__wake_list_full(&wl) && (d = weft__dlist_pop_front(&batch)) != NULL) {
            weft_watch_changed_t *w = WAITER_OF(d);
            w->linked_ = false;
            weft__waiter_take(&w->waker_, &wl); /* the last access to w */
        }
        bool more = !weft__dlist_empty(&batch);
        weft__waitlock_unlock(&c->lock);
        weft__wake_list_wake(&wl);
        if (!more)
            return;
        WEFT_CHAOS(); /* futures on `batch` may poll or drop themselves now */
        weft__waitlock_lock(&c->lock);
    }
}

/* ---- Sending ----------------------------------------------------------------- */

/* Under tx_lock: makes the value built in `spare` current, one version
 * on; the old value is left in `spare`. */
static void publish_spare(weft_watch_t *c)
{
    write_lock(c);
    WEFT_CHAOS();
    unsigned char *old = c->cur;
    c->cur = c->spare;
    c->spare = old;
    /* relaxed: written with the write side held; readers load it under the
     * read side (ordered by write_unlock's release) or lock-free, where
     * only its value matters (has_changed). */
    atomic_store_explicit(&c->version, atomic_load_explicit(&c->version, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    write_unlock(c);
}

/* Stores a copy of *value; the old value goes to *old, or through
 * ops->drop when old is NULL. Wakes the waiters. */
static void store(weft_watch_t *c, const void *value, void *old)
{
    weft__waitlock_lock(&c->tx_lock);
    memcpy(c->spare, value, c->value_size);
    publish_spare(c);
    if (old != NULL)
        memcpy(old, c->spare, c->value_size);
    else if (c->ops.drop != NULL)
        c->ops.drop(c->spare);
    weft__waitlock_unlock(&c->tx_lock);
    wake_waiters(c, false);
}

int weft_watch_send(weft_watch_tx_t *tx, const void *value)
{
    WEFT__REQUIRE("weft_watch_send", tx);
    WEFT__REQUIRE("weft_watch_send", value);
    weft_watch_t *c = tx_chan(tx, "weft_watch_send");
    /* relaxed: a count only; a receiver that subscribes or drops while
     * this send runs may or may not count. */
    if (atomic_load_explicit(&c->receivers, memory_order_relaxed) == 0)
        return WEFT_EPIPE;
    store(c, value, NULL);
    return 0;
}

void weft_watch_send_replace(weft_watch_tx_t *tx, const void *value, void *old)
{
    WEFT__REQUIRE("weft_watch_send_replace", tx);
    WEFT__REQUIRE("weft_watch_send_replace", value);
    store(tx_chan(tx, "weft_watch_send_replace"), value, old);
}

void weft_watch_send_modify(weft_watch_tx_t *tx, bool (*modify)(void *value, void *arg), void *arg)
{
    WEFT__REQUIRE("weft_watch_send_modify", tx);
    WEFT__REQUIRE("weft_watch_send_modify", modify);
    weft_watch_t *c = tx_chan(tx, "weft_watch_send_modify");
    weft__waitlock_lock(&c->tx_lock);
    write_lock(c);
    bool changed = modify(c->cur, arg);
    if (changed) /* relaxed: as in publish_spare */
        atomic_store_explicit(&c->version, atomic_load_explicit(&c->version, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    write_unlock(c);
    weft__waitlock_unlock(&c->tx_lock);
    if (changed)
        wake_waiters(c, false);
}

/* ---- Reading ----------------------------------------------------------------- */

/* Copies the value to dst (cloned per ops); returns its version. */
static uint64_t read_value(weft_watch_t *c, void *dst)
{
    read_lock(c);
    memcpy(dst, c->cur, c->value_size);
    if (c->ops.clone != NULL)
        c->ops.clone(dst); /* the original is still held: its references are alive */
    /* relaxed: written under the write side, which read_lock excludes. */
    uint64_t v = atomic_load_explicit(&c->version, memory_order_relaxed);
    read_unlock(c);
    return v;
}

uint64_t weft_watch_tx_borrow(const weft_watch_tx_t *tx, void *dst)
{
    WEFT__REQUIRE("weft_watch_tx_borrow", tx);
    WEFT__REQUIRE("weft_watch_tx_borrow", dst);
    return read_value(tx_chan(tx, "weft_watch_tx_borrow"), dst);
}

uint64_t weft_watch_borrow(const weft_watch_rx_t *rx, void *dst)
{
    WEFT__REQUIRE("weft_watch_borrow", rx);
    WEFT__REQUIRE("weft_watch_borrow", dst);
    return read_value(rx_chan(rx, "weft_watch_borrow"), dst);
}

uint64_t weft_watch_borrow_and_update(weft_watch_rx_t *rx, void *dst)
{
    WEFT__REQUIRE("weft_watch_borrow_and_update", rx);
    WEFT__REQUIRE("weft_watch_borrow_and_update", dst);
    rx->seen_ = read_value(rx_chan(rx, "weft_watch_borrow_and_update"), dst);
    return rx->seen_;
}

int weft_watch_has_changed(const weft_watch_rx_t *rx)
{
    WEFT__REQUIRE("weft_watch_has_changed", rx);
    weft_watch_t *c = rx_chan(rx, "weft_watch_has_changed");
    /* closed first, then the version. acquire on closed: pairs with the
     * release store in wake_waiters, so when it reads true the version
     * read after it includes every send (each sender's drop followed its
     * sends, and the last drop followed every other). Read the other way
     * round, a last send could be missed and reported as WEFT_EPIPE.
     * relaxed on the version: only the number is used. */
    bool closed = atomic_load_explicit(&c->closed, memory_order_acquire);
    if (atomic_load_explicit(&c->version, memory_order_relaxed) != rx->seen_)
        return 1;
    return closed ? WEFT_EPIPE : 0;
}

void weft_watch_mark_seen(weft_watch_rx_t *rx)
{
    WEFT__REQUIRE("weft_watch_mark_seen", rx);
    weft_watch_t *c = rx_chan(rx, "weft_watch_mark_seen");
    /* relaxed: only the number is taken; a later read locks. */
    rx->seen_ = atomic_load_explicit(&c->version, memory_order_relaxed);
}

/* ---- The changed future -------------------------------------------------------- */

/* Under the lock (taken here): whether w is done, with *v the version
 * seen and *rc its result; when not, w is linked with cx's waker. */
static bool settle(weft_watch_t *c, weft_watch_changed_t *w, weft_context_t *cx, uint64_t *v, int *rc)
{
    weft_waker_t old = no_waker;
    WEFT_CHAOS();
    weft__waitlock_lock(&c->lock);
    if (w->phase_ == CH_IDLE) {
        /* Here, not in the constructor: the future may have moved since. */
        weft__dnode_init(&w->node_);
        w->waker_ = no_waker;
        w->linked_ = false;
        w->phase_ = CH_POLLED;
    }
    /* relaxed: both change before their writer takes this lock (version
     * in publish_spare, then wake_waiters locks; closed under it), so the
     * lock orders them. */
    *v = atomic_load_explicit(&c->version, memory_order_relaxed);
    bool changed = *v != w->rx_->seen_;
    bool done = changed || atomic_load_explicit(&c->closed, memory_order_relaxed);
    if (done) {
        if (w->linked_)
            weft__dlist_remove(&w->node_); /* on the list or on a waking send's batch */
        w->linked_ = false;
        old = w->waker_;
        w->waker_ = no_waker;
        *rc = changed ? 0 : WEFT_EPIPE;
    } else {
        weft__waiter_register(&w->waker_, cx->waker, &old);
        if (!w->linked_)
            weft__dlist_push_back(&c->waiters, &w->node_);
        w->linked_ = true;
    }
    weft__waitlock_unlock(&c->lock);
    weft_waker_drop(&old); /* outside the lock: a drop may free a task */
    return done;
}

static weft_poll_t changed_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_watch_changed_t *w = (weft_watch_changed_t *)(void *)f;
    if (w->phase_ == CH_DONE)
        weft_panic(WEFT_SITE, "weft_watch_changed polled after it completed");
    weft_watch_t *c = rx_chan(w->rx_, "weft_watch_changed (poll)");
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    int rc = 0;
    /* relaxed: the number alone decides; the value is read under a lock
     * later. Lock-free only before the first link: a linked future must
     * take the lock to leave the list. */
    uint64_t v = atomic_load_explicit(&c->version, memory_order_relaxed);
    if ((w->phase_ != CH_IDLE || v == w->rx_->seen_) && !settle(c, w, cx, &v, &rc)) {
        weft__coop_refund();
        return WEFT_PENDING;
    }
    if (rc == 0)
        w->rx_->seen_ = v;
    w->phase_ = CH_DONE;
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

/* A dropped future leaves the list and marks nothing seen. */
static void changed_drop(weft_future_t *f)
{
    weft_watch_changed_t *w = (weft_watch_changed_t *)(void *)f;
    if (w->phase_ != CH_POLLED) {
        w->phase_ = CH_DONE;
        return; /* on no list, holds no waker */
    }
    weft_watch_t *c = rx_chan(w->rx_, "weft_watch_changed (drop)");
    WEFT_CHAOS();
    weft__waitlock_lock(&c->lock);
    if (w->linked_)
        weft__dlist_remove(&w->node_); /* on the list or on a waking send's batch */
    w->linked_ = false;
    weft_waker_t mine = w->waker_;
    w->waker_ = no_waker;
    weft__waitlock_unlock(&c->lock);
    w->phase_ = CH_DONE;
    weft_waker_drop(&mine);
}

static const weft_future_vtable_t changed_vtable = {
    changed_poll, changed_drop, NULL, sizeof(weft_watch_changed_t), sizeof(int), "weft_watch_changed",
};

weft_watch_changed_t weft_watch_changed(weft_watch_rx_t *rx)
{
    WEFT__REQUIRE("weft_watch_changed", rx);
    (void)rx_chan(rx, "weft_watch_changed");
    weft_watch_changed_t w;
    memset(&w, 0, sizeof w);
    w.future.vtable = &changed_vtable;
    w.rx_ = rx;
    w.phase_ = CH_IDLE;
    return w;
}

/* ---- Handles ------------------------------------------------------------------- */

void weft_watch_tx_clone(const weft_watch_tx_t *tx, weft_watch_tx_t *out)
{
    WEFT__REQUIRE("weft_watch_tx_clone", tx);
    WEFT__REQUIRE("weft_watch_tx_clone", out);
    weft_watch_t *c = tx_chan(tx, "weft_watch_tx_clone");
    /* relaxed: the caller holds a sender, so neither count can reach 0
     * meanwhile. */
    atomic_fetch_add_explicit(&c->senders, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    out->chan_ = c;
}

void weft_watch_tx_drop(weft_watch_tx_t *tx)
{
    WEFT__REQUIRE("weft_watch_tx_drop", tx);
    weft_watch_t *c = tx->chan_;
    if (c == NULL)
        return;
    tx->chan_ = NULL;
    /* acq_rel: this sender's sends come before the count falls; the last
     * one sees every other sender's, so `closed` (stored with release in
     * wake_waiters) follows every send. Pairs with itself in the others. */
    if (atomic_fetch_sub_explicit(&c->senders, 1, memory_order_acq_rel) == 1)
        wake_waiters(c, true);
    chan_release(c);
}

/* Another receiver of c that has seen `seen`; the caller holds a handle. */
static void rx_new(weft_watch_t *c, uint64_t seen, weft_watch_rx_t *out)
{
    /* relaxed: the caller's handle keeps refs above 0. */
    atomic_fetch_add_explicit(&c->receivers, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    out->chan_ = c;
    out->seen_ = seen;
}

int weft_watch_subscribe(const weft_watch_tx_t *tx, weft_watch_rx_t *out)
{
    WEFT__REQUIRE("weft_watch_subscribe", tx);
    WEFT__REQUIRE("weft_watch_subscribe", out);
    weft_watch_t *c = tx->chan_;
    if (c == NULL)
        return WEFT_EPIPE;
    /* relaxed: only the number (as mark_seen). */
    rx_new(c, atomic_load_explicit(&c->version, memory_order_relaxed), out);
    return 0;
}

size_t weft_watch_receiver_count(const weft_watch_tx_t *tx)
{
    WEFT__REQUIRE("weft_watch_receiver_count", tx);
    /* relaxed: a snapshot that may be stale by the time it is used. */
    return atomic_load_explicit(&tx_chan(tx, "weft_watch_receiver_count")->receivers, memory_order_relaxed);
}

void weft_watch_rx_clone(const weft_watch_rx_t *rx, weft_watch_rx_t *out)
{
    WEFT__REQUIRE("weft_watch_rx_clone", rx);
    WEFT__REQUIRE("weft_watch_rx_clone", out);
    rx_new(rx_chan(rx, "weft_watch_rx_clone"), rx->seen_, out);
}

void weft_watch_rx_drop(weft_watch_rx_t *rx)
{
    WEFT__REQUIRE("weft_watch_rx_drop", rx);
    weft_watch_t *c = rx->chan_;
    if (c == NULL)
        return;
    rx->chan_ = NULL;
    /* relaxed: a count read by send and receiver_count only. */
    atomic_fetch_sub_explicit(&c->receivers, 1, memory_order_relaxed);
    chan_release(c);
}
