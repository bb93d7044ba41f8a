/* sync/mpsc.c - multi-producer, single-consumer channels (after Tokio's
 * tokio::sync::mpsc: the bound is a semaphore, the queue is separate).
 *
 * Structure: one allocation per channel holds two counts (`refs`: every
 * sender, permit and the receiver; `senders`: senders and permits), the
 * room semaphore (bounded only: cap permits), a spin lock (sync/waiters.h)
 * over the queue, the receiver's waker slot and the two closed flags, and,
 * for a bounded channel, the ring of cap slots. An unbounded channel's
 * queue is a list of 32-slot blocks with one spare kept for reuse.
 *
 * Algorithm:
 *   - send: (bounded) take one permit from the semaphore, waiting in its
 *     FIFO queue when there is none; then, under the lock, refuse if the
 *     receiver closed (giving the permit back), else copy the value in and
 *     take the receiver's waker out; wake it after unlocking.
 *   - recv: under the lock, copy the oldest value out; then give one
 *     permit back per value (which wakes the next waiting sender). An
 *     empty queue with `rx_closed` or `tx_gone` set is "closed and
 *     drained"; otherwise the receiver stores its waker and waits.
 *   - the last sender/permit drop sets `tx_gone` under the lock: every
 *     send that completed before it pushed under the same lock earlier, so
 *     a receiver that sees `tx_gone` with an empty queue has had them all.
 *   - close: `rx_closed` under the lock, then the semaphore is closed so
 *     waiting senders complete with WEFT_EPIPE.
 * Capacity invariant (bounded): available permits + permits held by send
 * futures and permits + queued values = cap, so the ring never overflows.
 *
 * Progress: blocking (a spin lock of a few copies and pointer moves; no
 * wake, allocation or free under it). Context: any thread; the futures are
 * polled by tasks of any runtime or block_on roots. Weakness: senders and
 * the receiver serialize on one lock (Tokio's block list is lock-free), and
 * values are copied twice (in and out).
 */
#include <string.h>

#include "../runtime/context.h"
#include "../runtime/nonnull.h"
#include "waiters.h"
#include "weft/mpsc.h"

/* Slots per block of an unbounded channel: Tokio's BLOCK_CAP. Big enough
 * that a block is allocated once per 32 messages, small enough that an
 * idle channel holds little. */
#define BLOCK_SLOTS 32

typedef struct block {
    struct block *next;
    _Alignas(16) unsigned char data[];
} block_t;

enum send_phase {
    SEND_IDLE = 0,  /* not polled yet */
    SEND_WAITING,   /* in the semaphore's queue */
    SEND_DONE,      /* completed */
};

struct weft_mpsc_s {
    _Atomic size_t refs;    /* senders + permits + receiver */
    _Atomic size_t senders; /* senders + permits */
    size_t value_size;
    void (*drop_value)(void *);
    bool bounded;
    weft_semaphore_t room; /* bounded: cap permits */
    unsigned lock;         /* over everything below */
    bool rx_closed;        /* close / rx_drop: sends fail */
    bool tx_gone;          /* every sender and permit dropped */
    weft_waker_t rx_waker; /* the receiver's, while it waits */
    size_t len;            /* queued values */
    /* bounded: ring of cap slots */
    size_t cap, head;
    /* unbounded: blocks */
    block_t *head_blk, *tail_blk, *spare;
    size_t head_idx, tail_idx;
    _Alignas(16) unsigned char ring[];
};

/* ---- The queue (under the lock) ------------------------------------------- */

static unsigned char *slot_at(weft_mpsc_t *c, size_t i)
{
    return c->ring + i * c->value_size;
}

/* Whether a push needs a new block first (unbounded, tail full, no spare). */
static bool push_needs_block(const weft_mpsc_t *c)
{
    return !c->bounded && c->tail_idx == BLOCK_SLOTS && c->spare == NULL;
}

static void push_locked(weft_mpsc_t *c, const void *value)
{
    if (c->bounded) {
        size_t t = c->head + c->len;
        if (t >= c->cap)
            t -= c->cap;
        memcpy(slot_at(c, t), value, c->value_size);
    } else {
        if (c->tail_idx == BLOCK_SLOTS) {
            block_t *b = c->spare;
            c->spare = NULL;
            b->next = NULL;
            c->tail_blk->next = b;
            c->tail_blk = b;
            c->tail_idx = 0;
        }
        memcpy(c->tail_blk->data + c->tail_idx * c->value_size, value, c->value_size);
        c->tail_idx++;
    }
    c->len++;
}

/* Pops the oldest value into dst (dst NULL: hands the slot's address back
 * through *where instead, for drop_value). Returns a block the caller frees
 * after unlocking, or NULL. */
static block_t *pop_locked(weft_mpsc_t *c, void *dst)
{
    block_t *freed = NULL;
    if (c->bounded) {
        memcpy(dst, slot_at(c, c->head), c->value_size);
        if (++c->head == c->cap)
            c->head = 0;
    } else {
        if (c->head_idx == BLOCK_SLOTS) {
            block_t *old = c->head_blk;
            c->head_blk = old->next;
            c->head_idx = 0;
            if (c->spare == NULL)
                c->spare = old;
            else
                freed = old;
        }
        memcpy(dst, c->head_blk->data + c->head_idx * c->value_size, c->value_size);
        c->head_idx++;
        if (c->len == 1 && c->head_blk == c->tail_blk) {
            /* Drained: start the block over instead of walking into the
             * next one. */
            c->head_idx = 0;
            c->tail_idx = 0;
        }
    }
    c->len--;
    return freed;
}

/* Takes the receiver's waker out of its slot (under the lock). */
static weft_waker_t take_rx_waker(weft_mpsc_t *c)
{
    weft_waker_t w = c->rx_waker;
    c->rx_waker.vtable = NULL;
    return w;
}

static void wake_opt(weft_waker_t *w)
{
    if (w->vtable != NULL)
        weft_waker_wake(w);
}

/* ---- Lifetime --------------------------------------------------------------- */

/* Values up to this size are drained through a buffer on the stack; larger
 * ones through scratch room allocated with the channel, so that freeing a
 * channel never needs memory it might not get. */
#define DRAIN_STACK_BUF 256

static size_t chan_bytes(bool bounded, size_t cap, size_t value_size)
{
    return sizeof(weft_mpsc_t) + (bounded ? cap * value_size : 0) + (value_size > DRAIN_STACK_BUF ? value_size : 0);
}

static unsigned char *chan_scratch(weft_mpsc_t *c)
{
    return c->ring + (c->bounded ? c->cap * c->value_size : 0);
}

/* Drops every queued value through drop_value. Only with no other user
 * left or after rx_closed (no push can come), by the receiver. */
static void drain_values(weft_mpsc_t *c)
{
    unsigned char buf[DRAIN_STACK_BUF];
    unsigned char *tmp = c->value_size <= sizeof buf ? buf : chan_scratch(c);
    for (;;) {
        weft__waitlock_lock(&c->lock);
        if (c->len == 0) {
            weft__waitlock_unlock(&c->lock);
            break;
        }
        block_t *freed = pop_locked(c, tmp);
        weft__waitlock_unlock(&c->lock);
        if (freed != NULL)
            weft__free(freed, sizeof(block_t) + BLOCK_SLOTS * c->value_size);
        if (c->bounded)
            (void)weft_semaphore_release(&c->room, 1);
        if (c->drop_value != NULL)
            c->drop_value(tmp);
    }
}

static size_t chan_size(const weft_mpsc_t *c)
{
    return chan_bytes(c->bounded, c->cap, c->value_size);
}

static void chan_release(weft_mpsc_t *c)
{
    /* acq_rel: the last holder sees every other holder's writes (queued
     * values, wakers) before freeing; pairs with this same fetch_sub in
     * the other holders. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    drain_values(c);
    size_t bsz = sizeof(block_t) + BLOCK_SLOTS * c->value_size;
    if (!c->bounded) {
        for (block_t *b = c->head_blk, *n; b != NULL; b = n) {
            n = b->next;
            weft__free(b, bsz);
        }
        if (c->spare != NULL)
            weft__free(c->spare, bsz);
    } else {
        weft_semaphore_destroy(&c->room);
    }
    weft_waker_drop(&c->rx_waker);
    WEFT_LIVE_DEC(WEFT_LIVE_MPSC);
    weft__free(c, chan_size(c));
}

static int chan_new(size_t cap, bool bounded, size_t value_size, void (*drop_value)(void *), weft_mpsc_tx_t *tx,
                    weft_mpsc_rx_t *rx)
{
    if (value_size == 0 || value_size > WEFT_MPSC_MAX_VALUE)
        return WEFT_EINVAL;
    if (bounded && (cap == 0 || cap > WEFT_MPSC_MAX_CAP))
        return WEFT_EINVAL;
    size_t sz = chan_bytes(bounded, cap, value_size);
    weft_mpsc_t *c = weft__alloc(sz);
    if (c == NULL)
        return WEFT_ENOMEM;
    block_t *b = NULL;
    if (!bounded) {
        b = weft__alloc(sizeof(block_t) + BLOCK_SLOTS * value_size);
        if (b == NULL) {
            weft__free(c, sz);
            return WEFT_ENOMEM;
        }
        b->next = NULL;
    }
    atomic_init(&c->refs, 2);
    atomic_init(&c->senders, 1);
    c->value_size = value_size;
    c->drop_value = drop_value;
    c->bounded = bounded;
    if (bounded && weft_semaphore_init(&c->room, cap) != 0) /* cap <= MAX_CAP: in range */
        weft_panic(WEFT_SITE, "weft_mpsc_bounded: semaphore init failed");
    weft__waitlock_init(&c->lock);
    c->rx_closed = false;
    c->tx_gone = false;
    c->rx_waker = (weft_waker_t){ NULL, NULL };
    c->len = 0;
    c->cap = cap;
    c->head = 0;
    c->head_blk = c->tail_blk = b;
    c->spare = NULL;
    c->head_idx = c->tail_idx = 0;
    WEFT_LIVE_INC(WEFT_LIVE_MPSC);
    tx->chan_ = c;
    rx->chan_ = c;
    return 0;
}

int weft_mpsc_bounded(size_t cap, size_t value_size, void (*drop_value)(void *), weft_mpsc_tx_t *tx,
                      weft_mpsc_rx_t *rx)
{
    WEFT__REQUIRE("weft_mpsc_bounded", tx);
    WEFT__REQUIRE("weft_mpsc_bounded", rx);
    return chan_new(cap, true, value_size, drop_value, tx, rx);
}

int weft_mpsc_unbounded(size_t value_size, void (*drop_value)(void *), weft_mpsc_tx_t *tx, weft_mpsc_rx_t *rx)
{
    WEFT__REQUIRE("weft_mpsc_unbounded", tx);
    WEFT__REQUIRE("weft_mpsc_unbounded", rx);
    return chan_new(0, false, value_size, drop_value, tx, rx);
}

/* One sender or permit fewer; the last one marks the channel closed for
 * the receiver and wakes it. */
static void sender_release(weft_mpsc_t *c)
{
    /* acq_rel: orders this holder's pushes before the count falls (they are
     * also ordered by the lock below); pairs with itself in other senders. */
    if (atomic_fetch_sub_explicit(&c->senders, 1, memory_order_acq_rel) == 1) {
        weft__waitlock_lock(&c->lock);
        c->tx_gone = true;
        weft_waker_t w = take_rx_waker(c);
        weft__waitlock_unlock(&c->lock);
        wake_opt(&w);
    }
    chan_release(c);
}

static void sender_retain(weft_mpsc_t *c)
{
    /* relaxed: the caller holds a sender or permit, so both counts are
     * above 0 and nobody can free the channel meanwhile. */
    atomic_fetch_add_explicit(&c->senders, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* ---- Push (with the room already held, or unbounded) ------------------------ */

/* Copies value in. Returns 0, WEFT_EPIPE or WEFT_ENOMEM; on error the
 * room held (bounded) is given back. */
static int push(weft_mpsc_t *c, const void *value)
{
    block_t *fresh = NULL;
    for (;;) {
        weft__waitlock_lock(&c->lock);
        if (c->rx_closed) {
            weft__waitlock_unlock(&c->lock);
            if (fresh != NULL)
                weft__free(fresh, sizeof(block_t) + BLOCK_SLOTS * c->value_size);
            if (c->bounded)
                (void)weft_semaphore_release(&c->room, 1);
            return WEFT_EPIPE;
        }
        if (push_needs_block(c)) {
            if (fresh != NULL) {
                c->spare = fresh;
                fresh = NULL;
            } else {
                /* Allocate outside the lock, then look again. */
                weft__waitlock_unlock(&c->lock);
                fresh = weft__alloc(sizeof(block_t) + BLOCK_SLOTS * c->value_size);
                if (fresh == NULL)
                    return WEFT_ENOMEM;
                continue;
            }
        }
        WEFT_CHAOS();
        push_locked(c, value);
        weft_waker_t w = take_rx_waker(c);
        weft__waitlock_unlock(&c->lock);
        if (fresh != NULL) /* someone else supplied the block meanwhile */
            weft__free(fresh, sizeof(block_t) + BLOCK_SLOTS * c->value_size);
        wake_opt(&w);
        return 0;
    }
}

/* ---- send / reserve futures -------------------------------------------------- */

static weft_mpsc_t *tx_chan(const weft_mpsc_tx_t *tx, const char *what)
{
    if (tx->chan_ == NULL)
        weft_panic(WEFT_SITE, "%s on a dropped sender", what);
    return tx->chan_;
}

/* The room is held (or not needed): finish the send or the reserve. */
static int complete(weft_mpsc_send_t *s)
{
    if (s->permit_ != NULL) {
        /* A permit is a sender of its own: it keeps the channel open. A
         * close that came after our room was granted is seen at
         * permit_send. */
        sender_retain(s->chan_);
        s->permit_->chan_ = s->chan_;
        return 0;
    }
    return push(s->chan_, s->value_);
}

static weft_poll_t send_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_mpsc_send_t *s = (weft_mpsc_send_t *)(void *)f;
    weft_mpsc_t *c = s->chan_;
    int rc = 0;
    if (s->phase_ == SEND_DONE)
        weft_panic(WEFT_SITE, "%s polled after it completed", f->vtable->name);
    if (!c->bounded) {
        if (!weft_coop_proceed(cx))
            return WEFT_PENDING;
        rc = complete(s); /* never waits: push decides under the lock */
    } else {
        if (s->phase_ == SEND_IDLE)
            s->phase_ = SEND_WAITING;
        /* The semaphore's poll spends (and refunds) the coop budget. */
        if (weft_future_poll(WEFT_FUTURE(&s->acq_), cx, &rc) == WEFT_PENDING)
            return WEFT_PENDING;
        if (rc == 0)
            rc = complete(s);
        /* rc != 0 from the semaphore: closed (WEFT_EPIPE); nothing held. */
    }
    s->phase_ = SEND_DONE;
    if (out != NULL)
        *(int *)out = rc;
    else if (rc == 0 && s->permit_ != NULL)
        weft_mpsc_permit_drop(s->permit_); /* an unwanted permit goes straight back */
    return WEFT_READY;
}

static void send_drop(weft_future_t *f)
{
    weft_mpsc_send_t *s = (weft_mpsc_send_t *)(void *)f;
    /* Waiting: the semaphore's drop gives back any room assigned to us
     * (waking the next sender). Completed or never polled: nothing held. */
    if (s->chan_ != NULL && s->chan_->bounded)
        weft_future_drop(WEFT_FUTURE(&s->acq_));
    s->phase_ = SEND_DONE;
}

static const weft_future_vtable_t send_vtable = {
    send_poll, send_drop, NULL, sizeof(weft_mpsc_send_t), sizeof(int), "weft_mpsc_send",
};
static const weft_future_vtable_t reserve_vtable = {
    send_poll, send_drop, NULL, sizeof(weft_mpsc_send_t), sizeof(int), "weft_mpsc_reserve",
};

static weft_mpsc_send_t send_new(weft_mpsc_t *c, const weft_future_vtable_t *vt, const void *value,
                                 weft_mpsc_permit_t *permit)
{
    weft_mpsc_send_t s;
    memset(&s, 0, sizeof s);
    s.future.vtable = vt;
    if (c->bounded)
        s.acq_ = weft_semaphore_acquire(&c->room);
    s.chan_ = c;
    s.value_ = value;
    s.permit_ = permit;
    s.phase_ = SEND_IDLE;
    return s;
}

weft_mpsc_send_t weft_mpsc_send(weft_mpsc_tx_t *tx, const void *value)
{
    WEFT__REQUIRE("weft_mpsc_send", tx);
    WEFT__REQUIRE("weft_mpsc_send", value);
    return send_new(tx_chan(tx, "weft_mpsc_send"), &send_vtable, value, NULL);
}

weft_mpsc_reserve_t weft_mpsc_reserve(weft_mpsc_tx_t *tx, weft_mpsc_permit_t *permit)
{
    WEFT__REQUIRE("weft_mpsc_reserve", tx);
    WEFT__REQUIRE("weft_mpsc_reserve", permit);
    permit->chan_ = NULL;
    return send_new(tx_chan(tx, "weft_mpsc_reserve"), &reserve_vtable, NULL, permit);
}

int weft_mpsc_try_send(weft_mpsc_tx_t *tx, const void *value)
{
    WEFT__REQUIRE("weft_mpsc_try_send", tx);
    WEFT__REQUIRE("weft_mpsc_try_send", value);
    weft_mpsc_t *c = tx_chan(tx, "weft_mpsc_try_send");
    if (c->bounded) {
        int rc = weft_semaphore_try_acquire(&c->room);
        if (rc != 0)
            return rc; /* WEFT_EAGAIN or WEFT_EPIPE */
    }
    return push(c, value);
}

/* ---- Permits ------------------------------------------------------------------- */

int weft_mpsc_permit_send(weft_mpsc_permit_t *permit, const void *value)
{
    WEFT__REQUIRE("weft_mpsc_permit_send", permit);
    WEFT__REQUIRE("weft_mpsc_permit_send", value);
    weft_mpsc_t *c = permit->chan_;
    if (c == NULL)
        weft_panic(WEFT_SITE, "weft_mpsc_permit_send on a permit already used or dropped");
    permit->chan_ = NULL;
    int rc = push(c, value); /* gives the room back on error */
    sender_release(c);
    return rc;
}

void weft_mpsc_permit_drop(weft_mpsc_permit_t *permit)
{
    WEFT__REQUIRE("weft_mpsc_permit_drop", permit);
    weft_mpsc_t *c = permit->chan_;
    if (c == NULL)
        return;
    permit->chan_ = NULL;
    if (c->bounded)
        (void)weft_semaphore_release(&c->room, 1); /* wakes the next waiting sender */
    sender_release(c);
}

/* ---- Sender handles -------------------------------------------------------------- */

void weft_mpsc_tx_clone(const weft_mpsc_tx_t *tx, weft_mpsc_tx_t *out)
{
    WEFT__REQUIRE("weft_mpsc_tx_clone", tx);
    WEFT__REQUIRE("weft_mpsc_tx_clone", out);
    weft_mpsc_t *c = tx_chan(tx, "weft_mpsc_tx_clone");
    sender_retain(c);
    out->chan_ = c;
}

void weft_mpsc_tx_drop(weft_mpsc_tx_t *tx)
{
    WEFT__REQUIRE("weft_mpsc_tx_drop", tx);
    weft_mpsc_t *c = tx->chan_;
    if (c == NULL)
        return;
    tx->chan_ = NULL;
    sender_release(c);
}

bool weft_mpsc_tx_is_closed(const weft_mpsc_tx_t *tx)
{
    WEFT__REQUIRE("weft_mpsc_tx_is_closed", tx);
    weft_mpsc_t *c = tx->chan_;
    if (c == NULL)
        return true;
    weft__waitlock_lock(&c->lock);
    bool closed = c->rx_closed;
    weft__waitlock_unlock(&c->lock);
    return closed;
}

/* ---- Receiving --------------------------------------------------------------------- */

/* Takes the lock: pops up to max values into buf. Returns how many, or 0
 * with *closed telling "closed and drained" from "empty". When empty and
 * open and w is not NULL, registers *w as the receiver's waker. */
static size_t take_some(weft_mpsc_t *c, unsigned char *buf, size_t max, bool *closed, const weft_waker_t *w,
                        bool *registered)
{
    block_t *freed[2] = { NULL, NULL };
    unsigned nfreed = 0;
    size_t n = 0;
    weft_waker_t old = { NULL, NULL };
    weft__waitlock_lock(&c->lock);
    while (n < max && c->len > 0) {
        block_t *f = pop_locked(c, buf + n * c->value_size);
        n++;
        if (f != NULL && (freed[nfreed++] = f, nfreed == 2))
            break; /* at most two blocks to free per call: a short list */
    }
    *closed = false;
    if (n == 0) {
        if (c->rx_closed || c->tx_gone) {
            *closed = true;
        } else if (w != NULL) {
            weft__waiter_register(&c->rx_waker, w, &old);
            *registered = true;
        }
    }
    if (n > 0 && registered != NULL && *registered) {
        /* Done: our waker must not outlive this receive (a blocking recv's
         * waker points at its stack). */
        old = take_rx_waker(c);
        *registered = false;
    }
    weft__waitlock_unlock(&c->lock);
    weft_waker_drop(&old);
    for (unsigned i = 0; i < nfreed; i++)
        weft__free(freed[i], sizeof(block_t) + BLOCK_SLOTS * c->value_size);
    if (n > 0 && c->bounded)
        (void)weft_semaphore_release(&c->room, n); /* room for the next senders */
    return n;
}

static weft_mpsc_t *rx_chan(const weft_mpsc_rx_t *rx, const char *what)
{
    if (rx->chan_ == NULL)
        weft_panic(WEFT_SITE, "%s on a dropped receiver", what);
    return rx->chan_;
}

static void recv_unregister(weft_mpsc_recv_t *r)
{
    if (!r->registered_)
        return;
    weft__waitlock_lock(&r->chan_->lock);
    weft_waker_t w = take_rx_waker(r->chan_);
    weft__waitlock_unlock(&r->chan_->lock);
    weft_waker_drop(&w);
    r->registered_ = false;
}

/* Polls one receive of up to r->max_ values. READY with *n the count (0:
 * closed and drained). */
static weft_poll_t recv_step(weft_mpsc_recv_t *r, weft_context_t *cx, size_t *n)
{
    if (r->done_)
        weft_panic(WEFT_SITE, "weft_mpsc_recv polled after it completed");
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    bool closed;
    *n = take_some(r->chan_, r->dst_, r->max_, &closed, cx->waker, &r->registered_);
    if (*n == 0 && !closed) {
        weft__coop_refund();
        return WEFT_PENDING;
    }
    recv_unregister(r);
    r->done_ = true;
    return WEFT_READY;
}

static weft_poll_t recv_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    size_t n;
    if (recv_step((weft_mpsc_recv_t *)(void *)f, cx, &n) == WEFT_PENDING)
        return WEFT_PENDING;
    if (out != NULL)
        *(int *)out = n > 0 ? 0 : WEFT_EPIPE;
    return WEFT_READY;
}

static weft_poll_t recv_many_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    size_t n;
    if (recv_step((weft_mpsc_recv_t *)(void *)f, cx, &n) == WEFT_PENDING)
        return WEFT_PENDING;
    if (out != NULL)
        *(size_t *)out = n;
    return WEFT_READY;
}

/* A dropped receive took nothing that it did not hand over: values stay
 * queued; only its waker is taken back. */
static void recv_drop(weft_future_t *f)
{
    recv_unregister((weft_mpsc_recv_t *)(void *)f);
}

static const weft_future_vtable_t recv_vtable = {
    recv_poll, recv_drop, NULL, sizeof(weft_mpsc_recv_t), sizeof(int), "weft_mpsc_recv",
};
static const weft_future_vtable_t recv_many_vtable = {
    recv_many_poll, recv_drop, NULL, sizeof(weft_mpsc_recv_t), sizeof(size_t), "weft_mpsc_recv_many",
};

weft_mpsc_recv_t weft_mpsc_recv(weft_mpsc_rx_t *rx, void *dst)
{
    WEFT__REQUIRE("weft_mpsc_recv", rx);
    WEFT__REQUIRE("weft_mpsc_recv", dst);
    return (weft_mpsc_recv_t){ { &recv_vtable }, rx_chan(rx, "weft_mpsc_recv"), dst, 1, false, false };
}

weft_mpsc_recv_t weft_mpsc_recv_many(weft_mpsc_rx_t *rx, void *buf, size_t max)
{
    WEFT__REQUIRE("weft_mpsc_recv_many", rx);
    WEFT__REQUIRE("weft_mpsc_recv_many", buf);
    if (max == 0)
        weft_panic(WEFT_SITE, "weft_mpsc_recv_many: max is 0");
    return (weft_mpsc_recv_t){ { &recv_many_vtable }, rx_chan(rx, "weft_mpsc_recv_many"), buf, max, false, false };
}

int weft_mpsc_try_recv(weft_mpsc_rx_t *rx, void *dst)
{
    WEFT__REQUIRE("weft_mpsc_try_recv", rx);
    WEFT__REQUIRE("weft_mpsc_try_recv", dst);
    bool closed;
    if (take_some(rx_chan(rx, "weft_mpsc_try_recv"), dst, 1, &closed, NULL, NULL) == 1)
        return 0;
    return closed ? WEFT_EPIPE : WEFT_EAGAIN;
}

void weft_mpsc_close(weft_mpsc_rx_t *rx)
{
    WEFT__REQUIRE("weft_mpsc_close", rx);
    weft_mpsc_t *c = rx_chan(rx, "weft_mpsc_close");
    weft__waitlock_lock(&c->lock);
    c->rx_closed = true;
    weft__waitlock_unlock(&c->lock);
    if (c->bounded)
        weft_semaphore_close(&c->room); /* waiting senders complete with WEFT_EPIPE */
}

void weft_mpsc_rx_drop(weft_mpsc_rx_t *rx)
{
    WEFT__REQUIRE("weft_mpsc_rx_drop", rx);
    weft_mpsc_t *c = rx->chan_;
    if (c == NULL)
        return;
    weft_mpsc_close(rx);
    rx->chan_ = NULL;
    drain_values(c); /* closed: no push can come after this */
    chan_release(c);
}

/* ---- Plain threads -------------------------------------------------------------------
 * As weft_mutex_blocking_lock (sync/mutex.c): the waker unparks a parker on
 * this stack; clone and drop are no-ops because the parker outlives every
 * handle: the semaphore wakes a served waiter once, after its last access,
 * and a completed receive takes its waker back out of the channel under the
 * lock (take_some), so no handle survives the call. */
static const weft_waker_vtable_t parker_waker_vtable;
static weft_waker_t parker_clone(const void *data)
{
    return (weft_waker_t){ &parker_waker_vtable, data };
}
static void parker_wake(const void *data)
{
    (void)weft__unpark((weft__parker_t *)(uintptr_t)data);
}
static void parker_drop(const void *data)
{
    (void)data;
}
static const weft_waker_vtable_t parker_waker_vtable = { parker_clone, parker_wake, parker_wake, parker_drop };

/* Polls f to completion on this thread, parking while it is pending. */
static void block_on_here(weft_future_t *f, void *out)
{
    weft__parker_t parker;
    weft__parker_init(&parker);
    weft_waker_t w = { &parker_waker_vtable, &parker };
    weft_context_t cx = { &w };
    int budget = weft__tls.budget;
    weft__tls.budget = -1; /* not a task's poll: no coop budget */
    while (weft_future_poll(f, &cx, out) == WEFT_PENDING)
        weft__park(&parker);
    weft__tls.budget = budget;
    weft_future_drop(f);
}

int weft_mpsc_blocking_send(weft_mpsc_tx_t *tx, const void *value)
{
    WEFT__REQUIRE("weft_mpsc_blocking_send", tx);
    WEFT__REQUIRE("weft_mpsc_blocking_send", value);
    weft__assert_not_in_runtime("weft_mpsc_blocking_send", WEFT_SITE);
    weft_mpsc_send_t s = send_new(tx_chan(tx, "weft_mpsc_blocking_send"), &send_vtable, value, NULL);
    int rc = 0;
    block_on_here(WEFT_FUTURE(&s), &rc);
    return rc;
}

int weft_mpsc_blocking_recv(weft_mpsc_rx_t *rx, void *dst)
{
    WEFT__REQUIRE("weft_mpsc_blocking_recv", rx);
    WEFT__REQUIRE("weft_mpsc_blocking_recv", dst);
    weft__assert_not_in_runtime("weft_mpsc_blocking_recv", WEFT_SITE);
    weft_mpsc_recv_t r = weft_mpsc_recv(rx, dst);
    int rc = 0;
    block_on_here(WEFT_FUTURE(&r), &rc);
    return rc;
}
