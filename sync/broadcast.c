/* sync/broadcast.c - broadcast channels: every receiver sees every message
 * (weft/broadcast.h; the design of Tokio's tokio::sync::broadcast).
 *
 * Structure: one cache-line aligned allocation per channel holds the
 * counts (`refs`: every sender and receiver; `senders`), the tail (a spin
 * lock from sync/waiters.h over the next position to write `pos`, the
 * receiver count, the closed flag and the list of waiting recv futures)
 * and a ring of cap slots (cap a power of two). A slot holds a sequence
 * word (odd while a sender writes it), a reader count (owned values only,
 * below), the position of the message it holds (`stamp`) and the value.
 * Positions are 64-bit and never wrap; a receiver is its next position.
 * A slot starts with stamp `i - cap` (mod 2^64): "written one lap ago",
 * which reads as "not written yet" to a receiver at position i.
 *
 * Algorithm:
 *   - send: under the tail lock, refuse when there is no receiver; claim
 *     p = pos++, take the slot p & mask for writing (sequence made odd,
 *     then, for owned values, wait for its readers to leave), and take the
 *     waiters. After unlocking: release the value the slot held (ops->drop,
 *     when p >= cap), write the value and stamp p, make the sequence even,
 *     and wake the waiters. The slot is claimed before the lock is released,
 *     so whoever sees pos > p under the lock finds slot p taken by its
 *     writer or written, and two sends a lap apart write in claim order.
 *   - recv at position n, slot n & mask, no lock (fast path):
 *       stamp == n: copy the value out; n + 1.
 *       stamp == n - cap: not written yet. Under the tail lock: pos > n
 *         means its writer is still at it (retry); else closed gives
 *         WEFT_EPIPE, or the future joins the waiter list (WEFT_PENDING).
 *       stamp newer: overwritten. Under the tail lock the oldest message
 *         held is pos - cap: missed = pos - cap - n exactly, n = pos - cap,
 *         WEFT_ELAGGED.
 *       slot being written (odd sequence through a short spin): the
 *         future waits for that write: under the tail lock it joins the
 *         waiters, sets `late` and looks at the sequence again; the writer,
 *         when done, looks at `late` and takes the waiters once more. A
 *         seq_cst store and load on each side (sequence, `late`) make sure
 *         one of the two sees the other. try_recv says WEFT_EAGAIN.
 *   - reading a slot: plain values (no ops) are read as a sequence lock:
 *     sequence (even), stamp and value, sequence again; a change means a
 *     sender was writing: retry. Receivers write nothing shared, so any
 *     number read one slot without moving its cache line. The value is
 *     copied in and out with relaxed-or-stronger atomic word accesses, so
 *     the racy optimistic copy is no data race. Owned values (ops given)
 *     take the slot's reader count instead, because ops->clone must run on
 *     the copy while the original cannot be released: the writer waits for
 *     the count to fall to 0 (Dekker-style, seq_cst on both sides), then
 *     calls ops->drop on the old value in place.
 *   - waiters: a recv future's intrusive node and waker slot, under the
 *     tail lock. A sender unlinks up to WEFT__WAKE_LIST_CAP of them into a
 *     wake list and moves the rest onto a list head on its own stack, which
 *     it drains batch by batch after writing (a waiter on it may unlink
 *     itself meanwhile, under the lock, as in sync/notify.c). Each taken
 *     waiter's `linked_` flag is cleared with a release store as the last
 *     access to it, so a woken future sees it clear (acquire) and reads
 *     without the lock.
 *   - the last sender's drop sets `closed` under the lock and wakes every
 *     waiter: every send claimed its position earlier under the same lock.
 *
 * Progress: send never waits for a receiver to read; it waits only for a
 * slot's current writer (a send a lap earlier, possibly running ops->drop)
 * or, for owned values, for receivers copying that one slot. Receivers
 * spin about a microsecond at most (a slot being written), then wait as
 * waiters. Context: any thread; recv futures are polled by tasks of any
 * runtime or block_on roots.
 *
 * Weaknesses: senders serialize on the tail lock; a sender preempted while
 * writing a slot delays the receivers of that slot (they wait for it, and
 * try_recv reports nothing yet) and the next sender a lap later (it spins
 * for the slot under the tail lock); ops->clone and ops->drop run with a
 * slot held, so they must not call into the same channel.
 */
#include <string.h>

#include "../runtime/context.h"
#include "../runtime/nonnull.h"
#include "waiters.h"
#include "weft/broadcast.h"

_Static_assert(sizeof(_Atomic unsigned) == sizeof(unsigned) && _Alignof(_Atomic unsigned) == _Alignof(unsigned),
               "weft_broadcast_recv_t.linked_ must hold an _Atomic unsigned");
#define LINKED(r) ((_Atomic unsigned *)&(r)->linked_)
#define WAITER_OF(d) weft__container_of((d), weft_broadcast_recv_t, node_)

typedef struct {
    _Atomic unsigned seq;     /* odd while a sender writes this slot */
    _Atomic unsigned readers; /* owned values: receivers copying out */
    _Atomic uint64_t stamp;   /* position of the message held */
    /* the value follows, 8-byte aligned */
} slot_t;

struct weft_broadcast_s {
    /* Read-only after creation. */
    size_t cap, mask, value_size, stride;
    void (*clone)(void *);
    void (*drop)(void *);
    bool owned; /* ops given: readers count themselves in (see the design) */
    _Atomic size_t refs;    /* senders + receivers */
    _Atomic size_t senders; /* senders */
    /* The tail: its own cache line, written by every send, so that it does
     * not share one with the read-mostly fields above. */
    _Alignas(WEFT_CACHELINE) unsigned lock; /* over the fields below */
    uint64_t pos;         /* the position the next send claims */
    size_t rx_count;      /* receivers */
    bool closed;          /* every sender dropped */
    weft__dlist_t waiters; /* recv futures waiting for pos to move */
    /* A receiver found its slot being written and waits for that write
     * (rx_take): the writer takes the waiters once more when it is done
     * (weft_broadcast_send). Set under the lock, cleared by whoever takes
     * every waiter (wakeup_take_locked). */
    _Atomic unsigned late;
    _Alignas(WEFT_CACHELINE) unsigned char ring[];
};

static const weft_waker_t no_waker = { NULL, NULL };

static slot_t *slot_at(weft_broadcast_t *c, uint64_t pos)
{
    return (slot_t *)(void *)(c->ring + (size_t)(pos & c->mask) * c->stride);
}

static unsigned char *slot_value(slot_t *s)
{
    return (unsigned char *)(s + 1);
}

/* ---- Plain values: atomic word copies -------------------------------------
 * A plain value may be read while a sender overwrites it (the reader then
 * sees the sequence move and retries), so both sides use atomics. The value
 * area is 8-byte aligned; src and dst may not be, so words go through a
 * local. */

static void copy_in_atomic(unsigned char *slot, const unsigned char *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        /* release: orders the odd sequence (slot_write_begin) before this
         * word, for a reader that sees the word (read_plain's acquire
         * loads): it then sees the sequence moved. */
        atomic_store_explicit((_Atomic uint64_t *)(void *)(slot + i), w, memory_order_release);
    }
    for (; i < n; i++)
        atomic_store_explicit((_Atomic unsigned char *)(slot + i), src[i], memory_order_release); /* as above */
}

static void copy_out_atomic(unsigned char *dst, unsigned char *slot, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        /* acquire: pairs with copy_in_atomic's release store; orders the
         * sequence re-check in read_plain after this load. */
        uint64_t w = atomic_load_explicit((_Atomic uint64_t *)(void *)(slot + i), memory_order_acquire);
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = atomic_load_explicit((_Atomic unsigned char *)(slot + i), memory_order_acquire); /* as above */
}

/* ---- Slots ------------------------------------------------------------------ */

/* Under the tail lock: takes slot s for writing. Waits for the previous
 * writer of the slot (a send a lap earlier, finishing after its unlock)
 * and, for owned values, for the receivers copying it out. */
static void slot_write_begin(weft_broadcast_t *c, slot_t *s)
{
    for (unsigned spins = 0;; spins++) {
        unsigned q = atomic_load_explicit(&s->seq, memory_order_relaxed);
        /* seq_cst: the writers' half of the Dekker exchange with
         * read_owned (it must see our odd sequence, or we its count);
         * also acquire, pairing with slot_write's release of the sequence: the last
         * writer's value is complete before we touch it. */
        if ((q & 1) == 0 && atomic_compare_exchange_weak_explicit(&s->seq, &q, q + 1, memory_order_seq_cst,
                                                                  memory_order_relaxed))
            break;
        weft__spin_backoff(spins);
    }
    if (!c->owned)
        return;
    /* seq_cst: see above; acquire part pairs with read_owned's release
     * decrement: its copy and clone are done before we overwrite. */
    for (unsigned spins = 0; atomic_load_explicit(&s->readers, memory_order_seq_cst) != 0; spins++)
        weft__spin_backoff(spins);
}

/* After the tail lock: releases the old value, writes the new one, frees
 * the slot. */
static void slot_write(weft_broadcast_t *c, slot_t *s, uint64_t pos, const void *value)
{
    unsigned char *v = slot_value(s);
    if (c->owned) {
        if (pos >= c->cap && c->drop != NULL)
            c->drop(v); /* the message a lap older: nobody reads it now */
        memcpy(v, value, c->value_size);
        atomic_store_explicit(&s->stamp, pos, memory_order_relaxed); /* readers are held off */
    } else {
        /* release: as copy_in_atomic's stores. */
        atomic_store_explicit(&s->stamp, pos, memory_order_release);
        copy_in_atomic(v, value, c->value_size);
    }
    WEFT_CHAOS();
    /* seq_cst: publishes the value and stamp (a release: pairs with the
     * acquire sequence loads of read_plain, read_owned and
     * slot_write_begin), and is the writer's half of the Dekker exchange
     * with rx_take over `late`: either the sender's load of `late` after
     * this sees a late waiter, or that waiter's re-check sees the slot
     * written. */
    atomic_store_explicit(&s->seq, atomic_load_explicit(&s->seq, memory_order_relaxed) + 1, memory_order_seq_cst);
}

/* What reading a slot found. */
typedef enum {
    READ_HIT,  /* the slot held the position asked for: copied out */
    READ_MISS, /* it held another position (*stamp) */
    READ_BUSY, /* a sender is writing it: wait for its wake (rx_take) */
} read_t;

/* Pauses a reader makes while a sender writes its slot, about a
 * microsecond: a running writer finishes well within it; a preempted one
 * is waited for as a waiter, not by spinning. */
#define READ_SPINS 64

static read_t read_plain(weft_broadcast_t *c, slot_t *s, uint64_t pos, void *dst, uint64_t *stamp)
{
    for (unsigned spins = 0;; spins++) {
        /* acquire: pairs with slot_write's release of the sequence: the
         * stamp and value of that write are visible. */
        unsigned q = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (q & 1) {
            if (spins == READ_SPINS)
                return READ_BUSY;
            weft__spin_backoff(0);
            continue;
        }
        /* acquire: orders the loads below after this one (and pairs with
         * slot_write's release store). */
        uint64_t st = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (st != pos) {
            /* Unvalidated, and need not be: any stamp read is a position
             * some send claimed, which is all rx_take concludes from. */
            *stamp = st;
            return READ_MISS;
        }
        copy_out_atomic(dst, slot_value(s), c->value_size);
        WEFT_CHAOS();
        /* relaxed: ordered after the acquire loads above. Unchanged: no
         * sender wrote meanwhile, so the copy is whole. */
        if (atomic_load_explicit(&s->seq, memory_order_relaxed) == q)
            return READ_HIT;
    }
}

static read_t read_owned(weft_broadcast_t *c, slot_t *s, uint64_t pos, void *dst, uint64_t *stamp)
{
    for (unsigned spins = 0;; spins++) {
        /* seq_cst on the count and the sequence: the readers' half of the
         * Dekker exchange with slot_write_begin. */
        atomic_fetch_add_explicit(&s->readers, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&s->seq, memory_order_seq_cst) & 1) {
            /* release: nothing read; pairs with slot_write_begin's load. */
            atomic_fetch_sub_explicit(&s->readers, 1, memory_order_release);
            if (spins == READ_SPINS)
                return READ_BUSY;
            weft__spin_backoff(0);
            continue;
        }
        uint64_t st = atomic_load_explicit(&s->stamp, memory_order_relaxed); /* held: no writer */
        bool hit = st == pos;
        if (hit) {
            memcpy(dst, slot_value(s), c->value_size);
            if (c->clone != NULL)
                c->clone(dst); /* while the original cannot be released */
        }
        WEFT_CHAOS();
        /* release: our copy and clone happen before the next writer's
         * drop and overwrite (its seq_cst load of the count). */
        atomic_fetch_sub_explicit(&s->readers, 1, memory_order_release);
        *stamp = st;
        return hit ? READ_HIT : READ_MISS;
    }
}

/* ---- Waking ------------------------------------------------------------------ */

/* The waiters one send or close takes: the first batch unlinked into a
 * wake list, the rest moved to a list head here (on the taker's stack). */
typedef struct {
    weft__wake_list_t wl;
    weft__dlist_t rest;
    bool more;
} wakeup_t;

/* Under the lock: moves up to a wake list's worth of waiters from `from`
 * into wl; their `linked_` is cleared last (release): pairs with the
 * acquire loads of recv_poll and recv_drop, which then read without the
 * lock knowing the node and waker slot are no longer touched. */
static void take_batch_locked(weft__dlist_t *from, weft__wake_list_t *wl)
{
    weft__dnode_t *d;
    while (!weft__wake_list_full(wl) && (d = weft__dlist_pop_front(from)) != NULL) {
        weft_broadcast_recv_t *r = WAITER_OF(d);
        weft__waiter_take(&r->waker_, wl);
        atomic_store_explicit(LINKED(r), 0, memory_order_release);
    }
}

static void wakeup_take_locked(weft_broadcast_t *c, wakeup_t *wk)
{
    /* relaxed: under the lock, in the same critical section that takes
     * every waiter linked so far, late ones included. */
    atomic_store_explicit(&c->late, 0, memory_order_relaxed);
    weft__wake_list_init(&wk->wl);
    weft__dlist_init(&wk->rest);
    take_batch_locked(&c->waiters, &wk->wl);
    wk->more = !weft__dlist_empty(&c->waiters);
    if (wk->more) {
        /* Moves the whole list (O(1)): waiters that register after this
         * wait for a later send. */
        wk->rest = c->waiters;
        wk->rest.next->prev = &wk->rest;
        wk->rest.prev->next = &wk->rest;
        weft__dlist_init(&c->waiters);
    }
}

/* After unlocking: wakes the batch, then the rest, a batch per lock hold. */
static void wakeup_finish(weft_broadcast_t *c, wakeup_t *wk)
{
    weft__wake_list_wake(&wk->wl);
    while (wk->more) {
        WEFT_CHAOS(); /* waiters on `rest` may poll or drop themselves now */
        weft__waitlock_lock(&c->lock);
        take_batch_locked(&wk->rest, &wk->wl);
        wk->more = !weft__dlist_empty(&wk->rest);
        weft__waitlock_unlock(&c->lock);
        weft__wake_list_wake(&wk->wl);
    }
}

/* ---- Lifetime ------------------------------------------------------------------ */

static size_t slot_stride(size_t value_size)
{
    return sizeof(slot_t) + WEFT_ALIGN_UP(value_size, 8);
}

static size_t round_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

int weft_broadcast_new(size_t cap, size_t value_size, const weft_value_ops_t *ops, weft_broadcast_tx_t *tx,
                       weft_broadcast_rx_t *rx)
{
    WEFT__REQUIRE("weft_broadcast_new", tx);
    if (cap == 0 || cap > WEFT_BROADCAST_MAX_CAP || value_size == 0 || value_size > WEFT_BROADCAST_MAX_VALUE)
        return WEFT_EINVAL;
    cap = round_pow2(cap);
    size_t stride = slot_stride(value_size);
    weft_broadcast_t *c = weft__alloc_aligned(sizeof(weft_broadcast_t) + cap * stride);
    if (c == NULL)
        return WEFT_ENOMEM;
    c->cap = cap;
    c->mask = cap - 1;
    c->value_size = value_size;
    c->stride = stride;
    c->clone = ops != NULL ? ops->clone : NULL;
    c->drop = ops != NULL ? ops->drop : NULL;
    c->owned = c->clone != NULL || c->drop != NULL;
    atomic_init(&c->refs, rx != NULL ? 2 : 1);
    atomic_init(&c->senders, 1);
    weft__waitlock_init(&c->lock);
    c->pos = 0;
    c->rx_count = rx != NULL ? 1 : 0;
    c->closed = false;
    weft__dlist_init(&c->waiters);
    atomic_init(&c->late, 0);
    for (size_t i = 0; i < cap; i++) {
        slot_t *s = slot_at(c, i);
        atomic_init(&s->seq, 0);
        atomic_init(&s->readers, 0);
        atomic_init(&s->stamp, (uint64_t)i - cap); /* "a lap ago": not written */
        memset(slot_value(s), 0, stride - sizeof(slot_t));
    }
    WEFT_LIVE_INC(WEFT_LIVE_BROADCAST);
    tx->chan_ = c;
    if (rx != NULL)
        *rx = (weft_broadcast_rx_t){ c, 0, 0 };
    return 0;
}

static void chan_release(weft_broadcast_t *c)
{
    /* acq_rel: the last holder sees every other holder's writes (slots,
     * the tail) before freeing; pairs with this same fetch_sub in the
     * other holders. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (c->drop != NULL) {
        uint64_t held = c->pos < c->cap ? c->pos : c->cap;
        for (uint64_t i = 0; i < held; i++)
            c->drop(slot_value(slot_at(c, i)));
    }
    WEFT_LIVE_DEC(WEFT_LIVE_BROADCAST);
    weft__free_aligned(c);
}

/* ---- Sender -------------------------------------------------------------------- */

static weft_broadcast_t *tx_chan(const weft_broadcast_tx_t *tx, const char *what)
{
    if (tx->chan_ == NULL)
        weft_panic(WEFT_SITE, "%s on a dropped sender", what);
    return tx->chan_;
}

int weft_broadcast_send(weft_broadcast_tx_t *tx, const void *value)
{
    WEFT__REQUIRE("weft_broadcast_send", tx);
    WEFT__REQUIRE("weft_broadcast_send", value);
    weft_broadcast_t *c = tx_chan(tx, "weft_broadcast_send");
    wakeup_t wk;
    weft__waitlock_lock(&c->lock);
    size_t n = c->rx_count;
    if (n == 0) {
        weft__waitlock_unlock(&c->lock);
        return WEFT_EPIPE;
    }
    uint64_t pos = c->pos++;
    slot_t *s = slot_at(c, pos);
    slot_write_begin(c, s);
    wakeup_take_locked(c, &wk);
    weft__waitlock_unlock(&c->lock);
    WEFT_CHAOS();
    slot_write(c, s, pos, value);
    wakeup_finish(c, &wk);
    /* seq_cst: the other half of the exchange in slot_write. */
    if (atomic_load_explicit(&c->late, memory_order_seq_cst)) {
        weft__waitlock_lock(&c->lock);
        wakeup_take_locked(c, &wk);
        weft__waitlock_unlock(&c->lock);
        wakeup_finish(c, &wk);
    }
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

void weft_broadcast_tx_clone(const weft_broadcast_tx_t *tx, weft_broadcast_tx_t *out)
{
    WEFT__REQUIRE("weft_broadcast_tx_clone", tx);
    WEFT__REQUIRE("weft_broadcast_tx_clone", out);
    weft_broadcast_t *c = tx_chan(tx, "weft_broadcast_tx_clone");
    /* relaxed: the caller holds a sender, so both counts are above 0 and
     * nobody can free the channel or close it meanwhile. */
    atomic_fetch_add_explicit(&c->senders, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    out->chan_ = c;
}

void weft_broadcast_tx_drop(weft_broadcast_tx_t *tx)
{
    WEFT__REQUIRE("weft_broadcast_tx_drop", tx);
    weft_broadcast_t *c = tx->chan_;
    if (c == NULL)
        return;
    tx->chan_ = NULL;
    /* acq_rel: pairs with itself in the other senders; the close below is
     * ordered after every send by the lock anyway. */
    if (atomic_fetch_sub_explicit(&c->senders, 1, memory_order_acq_rel) == 1) {
        wakeup_t wk;
        weft__waitlock_lock(&c->lock);
        c->closed = true;
        wakeup_take_locked(c, &wk);
        weft__waitlock_unlock(&c->lock);
        wakeup_finish(c, &wk);
    }
    chan_release(c);
}

/* Makes *out a new receiver: at the tail (at_tail) or at position next. */
static void rx_attach(weft_broadcast_t *c, weft_broadcast_rx_t *out, bool at_tail, uint64_t next)
{
    weft__waitlock_lock(&c->lock);
    c->rx_count++;
    if (at_tail)
        next = c->pos;
    weft__waitlock_unlock(&c->lock);
    /* relaxed: the caller holds a handle, so refs is above 0. */
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    *out = (weft_broadcast_rx_t){ c, next, 0 };
}

int weft_broadcast_subscribe(const weft_broadcast_tx_t *tx, weft_broadcast_rx_t *out)
{
    WEFT__REQUIRE("weft_broadcast_subscribe", tx);
    WEFT__REQUIRE("weft_broadcast_subscribe", out);
    if (tx->chan_ == NULL)
        return WEFT_EPIPE;
    rx_attach(tx->chan_, out, true, 0);
    return 0;
}

size_t weft_broadcast_receiver_count(const weft_broadcast_tx_t *tx)
{
    WEFT__REQUIRE("weft_broadcast_receiver_count", tx);
    weft_broadcast_t *c = tx->chan_;
    if (c == NULL)
        return 0;
    weft__waitlock_lock(&c->lock);
    size_t n = c->rx_count;
    weft__waitlock_unlock(&c->lock);
    return n;
}

/* ---- Receiver -------------------------------------------------------------------- */

static weft_broadcast_t *rx_chan(const weft_broadcast_rx_t *rx, const char *what)
{
    if (rx->chan_ == NULL)
        weft_panic(WEFT_SITE, "%s on a dropped receiver", what);
    return rx->chan_;
}

/* Under the lock: makes r wait (linked, holding a clone of w; a re-poll
 * by another task swaps the clone, the old one goes to *old). */
static void waiter_register_locked(weft_broadcast_t *c, weft_broadcast_recv_t *r, const weft_waker_t *w,
                                   weft_waker_t *old)
{
    if (atomic_load_explicit(LINKED(r), memory_order_relaxed) == 0) { /* relaxed: our own, under the lock */
        weft__dnode_init(&r->node_); /* here, not in the constructor: the future may have moved */
        weft__dlist_push_back(&c->waiters, &r->node_);
        r->waker_ = no_waker;
        atomic_store_explicit(LINKED(r), 1, memory_order_relaxed); /* the lock orders it */
    }
    weft__waiter_register(&r->waker_, w, old);
}

/* Under the lock: r stops waiting (it may be on the main list or on a
 * sender's `rest` list); its waker goes to *old. */
static void waiter_unlink_locked(weft_broadcast_recv_t *r, weft_waker_t *old)
{
    if (atomic_load_explicit(LINKED(r), memory_order_relaxed) == 0) /* relaxed: under the lock */
        return;
    weft__dlist_remove(&r->node_);
    *old = r->waker_;
    r->waker_ = no_waker;
    atomic_store_explicit(LINKED(r), 0, memory_order_relaxed);
}

#define RX_RETRY 1 /* rx_take: read the slot again */

/* Under the lock: the slot s a receiver wants is being written. A recv
 * future r waits for that write: it joins the waiters and sets `late`, so
 * that the writer takes the waiters again once it is done (the seq_cst
 * pair with slot_write and weft_broadcast_send); if the write finished
 * meanwhile, it leaves again and reads. try_recv (r NULL) says "nothing
 * yet". */
static int wait_for_writer_locked(weft_broadcast_t *c, slot_t *s, weft_broadcast_recv_t *r, const weft_waker_t *w,
                                  weft_waker_t *old)
{
    if (r == NULL)
        return WEFT_EAGAIN;
    waiter_register_locked(c, r, w, old); /* r was not linked: old stays empty */
    atomic_store_explicit(&c->late, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&s->seq, memory_order_seq_cst) & 1)
        return WEFT_EAGAIN;
    waiter_unlink_locked(r, old);
    return RX_RETRY;
}

/* One receive for rx: 0 (copied to dst), WEFT_ELAGGED, WEFT_EPIPE or
 * WEFT_EAGAIN (nothing yet; with r and w given, r now waits). r is not
 * linked on entry. */
static int rx_take(weft_broadcast_t *c, weft_broadcast_rx_t *rx, void *dst, weft_broadcast_recv_t *r,
                   const weft_waker_t *w)
{
    for (;;) {
        uint64_t next = rx->next_, stamp = 0;
        slot_t *s = slot_at(c, next);
        read_t got = c->owned ? read_owned(c, s, next, dst, &stamp) : read_plain(c, s, next, dst, &stamp);
        if (got == READ_HIT) {
            rx->next_ = next + 1;
            return 0;
        }
        WEFT_CHAOS();
        weft_waker_t old = no_waker;
        int rc;
        weft__waitlock_lock(&c->lock);
        if (got == READ_BUSY) {
            rc = wait_for_writer_locked(c, s, r, w, &old);
        } else if (stamp + c->cap == next) {
            /* Not written yet, or not when we looked. */
            if (c->pos > next) {
                rc = RX_RETRY; /* its writer has the slot now */
            } else if (c->closed) {
                rc = WEFT_EPIPE;
            } else {
                if (r != NULL)
                    waiter_register_locked(c, r, w, &old);
                rc = WEFT_EAGAIN;
            }
        } else {
            /* Overwritten: the oldest message held is pos - cap (pos has
             * moved at least a lap past next, so this is above next). */
            uint64_t oldest = c->pos - c->cap;
            rx->missed_ = oldest - next;
            rx->next_ = oldest;
            rc = WEFT_ELAGGED;
        }
        weft__waitlock_unlock(&c->lock);
        weft_waker_drop(&old);
        if (rc != RX_RETRY)
            return rc;
    }
}

static weft_poll_t recv_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_broadcast_recv_t *r = (weft_broadcast_recv_t *)(void *)f;
    if (r->done_)
        weft_panic(WEFT_SITE, "weft_broadcast_recv polled after it completed");
    weft_broadcast_t *c = rx_chan(r->rx_, "weft_broadcast_recv");
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    /* acquire: pairs with take_batch_locked's release store: once clear,
     * no sender touches our node or waker slot again. */
    if (atomic_load_explicit(LINKED(r), memory_order_acquire)) {
        /* Still waiting (a poll nobody woke us for, or a sender has yet to
         * reach us on its `rest` list): still nothing new, or leave the
         * list before reading. */
        weft_waker_t old = no_waker;
        bool wait;
        weft__waitlock_lock(&c->lock);
        wait = c->pos == r->rx_->next_ && !c->closed;
        if (wait)
            weft__waiter_register(&r->waker_, cx->waker, &old);
        else
            waiter_unlink_locked(r, &old);
        weft__waitlock_unlock(&c->lock);
        weft_waker_drop(&old);
        if (wait) {
            weft__coop_refund();
            return WEFT_PENDING;
        }
    }
    int rc = rx_take(c, r->rx_, r->dst_, r, cx->waker);
    if (rc == WEFT_EAGAIN) {
        weft__coop_refund();
        return WEFT_PENDING;
    }
    r->done_ = true;
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

/* A dropped receive consumed nothing: rx->next_ moves only when a poll
 * completes. Only its place in the waiter list is given back. */
static void recv_drop(weft_future_t *f)
{
    weft_broadcast_recv_t *r = (weft_broadcast_recv_t *)(void *)f;
    /* acquire: as in recv_poll. */
    if (atomic_load_explicit(LINKED(r), memory_order_acquire) == 0)
        return;
    weft_broadcast_t *c = r->rx_->chan_;
    weft_waker_t old = no_waker;
    WEFT_CHAOS();
    weft__waitlock_lock(&c->lock);
    waiter_unlink_locked(r, &old);
    weft__waitlock_unlock(&c->lock);
    weft_waker_drop(&old);
}

static const weft_future_vtable_t recv_vtable = {
    recv_poll, recv_drop, NULL, sizeof(weft_broadcast_recv_t), sizeof(int), "weft_broadcast_recv",
};

weft_broadcast_recv_t weft_broadcast_recv(weft_broadcast_rx_t *rx, void *dst)
{
    WEFT__REQUIRE("weft_broadcast_recv", rx);
    WEFT__REQUIRE("weft_broadcast_recv", dst);
    (void)rx_chan(rx, "weft_broadcast_recv");
    weft_broadcast_recv_t r;
    memset(&r, 0, sizeof r);
    r.future.vtable = &recv_vtable;
    r.rx_ = rx;
    r.dst_ = dst;
    return r;
}

int weft_broadcast_try_recv(weft_broadcast_rx_t *rx, void *dst)
{
    WEFT__REQUIRE("weft_broadcast_try_recv", rx);
    WEFT__REQUIRE("weft_broadcast_try_recv", dst);
    return rx_take(rx_chan(rx, "weft_broadcast_try_recv"), rx, dst, NULL, NULL);
}

uint64_t weft_broadcast_rx_missed(const weft_broadcast_rx_t *rx)
{
    WEFT__REQUIRE("weft_broadcast_rx_missed", rx);
    return rx->missed_;
}

size_t weft_broadcast_rx_len(const weft_broadcast_rx_t *rx)
{
    WEFT__REQUIRE("weft_broadcast_rx_len", rx);
    weft_broadcast_t *c = rx->chan_;
    if (c == NULL)
        return 0;
    weft__waitlock_lock(&c->lock);
    uint64_t n = c->pos - rx->next_;
    weft__waitlock_unlock(&c->lock);
    return n < c->cap ? (size_t)n : c->cap;
}

void weft_broadcast_rx_clone(const weft_broadcast_rx_t *rx, weft_broadcast_rx_t *out)
{
    WEFT__REQUIRE("weft_broadcast_rx_clone", rx);
    WEFT__REQUIRE("weft_broadcast_rx_clone", out);
    rx_attach(rx_chan(rx, "weft_broadcast_rx_clone"), out, false, rx->next_);
}

void weft_broadcast_rx_drop(weft_broadcast_rx_t *rx)
{
    WEFT__REQUIRE("weft_broadcast_rx_drop", rx);
    weft_broadcast_t *c = rx->chan_;
    if (c == NULL)
        return;
    rx->chan_ = NULL;
    weft__waitlock_lock(&c->lock);
    c->rx_count--;
    weft__waitlock_unlock(&c->lock);
    chan_release(c);
}
