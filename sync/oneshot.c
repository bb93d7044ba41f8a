/* sync/oneshot.c - a single-value channel.
 *
 * Shared state: one allocation with a state word, one waker slot per side,
 * and the value. Bits:
 *   RX_WAKER   the receiver's waker slot is published (the sender may read it)
 *   TX_WAKER   the sender's waker slot is published (the receiver may read it)
 *   SENT       the value is in the slot
 *   TX_DONE    the sender sent or was dropped: the receiver's wait is over
 *   RX_CLOSED  the receiver closed or was dropped: sends fail
 *   TAKEN      the value left the slot (received, or taken back by send)
 * A side rewrites its own waker slot only while its *_WAKER bit is clear;
 * slots are dropped when the channel is freed (both sides gone), so a
 * wake_by_ref racing with the other side's drop never touches freed memory.
 * Lock-free: each operation is one RMW plus a CAS loop to publish a waker.
 */
#include <string.h>

#include "../runtime/context.h"
#include "../runtime/nonnull.h"

#define OS_RX_WAKER (1u << 0)
#define OS_TX_WAKER (1u << 1)
#define OS_SENT (1u << 2)
#define OS_TX_DONE (1u << 3)
#define OS_RX_CLOSED (1u << 4)
#define OS_TAKEN (1u << 5)

#define ONESHOT_MAX_VALUE 65536

struct weft_oneshot_s {
    _Atomic uint32_t state;
    _Atomic uint32_t refs; /* sender + receiver */
    uint32_t value_size;
    void (*drop_value)(void *);
    weft_waker_t rx_waker;
    weft_waker_t tx_waker;
    _Alignas(16) unsigned char value[];
};

static size_t chan_size(const weft_oneshot_t *c)
{
    return sizeof(weft_oneshot_t) + c->value_size;
}

static void chan_release(weft_oneshot_t *c)
{
    /* acq_rel: the last side sees the other's writes (value, wakers). */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    uint32_t s = atomic_load_explicit(&c->state, memory_order_relaxed);
    if ((s & OS_SENT) && !(s & OS_TAKEN) && c->drop_value)
        c->drop_value(c->value);
    weft_waker_drop(&c->rx_waker);
    weft_waker_drop(&c->tx_waker);
    WEFT_LIVE_DEC(WEFT_LIVE_ONESHOT);
    weft__free(c, chan_size(c));
}

extern const weft_future_vtable_t weft__oneshot_rx_vtable;

int weft_oneshot_new(size_t value_size, void (*drop_value)(void *), weft_oneshot_tx_t *tx, weft_oneshot_rx_t *rx)
{
    WEFT__REQUIRE("weft_oneshot_new", tx);
    WEFT__REQUIRE("weft_oneshot_new", rx);
    if (value_size == 0 || value_size > ONESHOT_MAX_VALUE)
        return WEFT_EINVAL;
    weft_oneshot_t *c = weft__alloc(sizeof(weft_oneshot_t) + value_size);
    if (c == NULL)
        return WEFT_ENOMEM;
    atomic_init(&c->state, 0);
    atomic_init(&c->refs, 2);
    c->value_size = (uint32_t)value_size;
    c->drop_value = drop_value;
    c->rx_waker = (weft_waker_t){ NULL, NULL };
    c->tx_waker = (weft_waker_t){ NULL, NULL };
    WEFT_LIVE_INC(WEFT_LIVE_ONESHOT);
    tx->chan_ = c;
    rx->future.vtable = &weft__oneshot_rx_vtable;
    rx->chan_ = c;
    rx->dst_ = NULL;
    return 0;
}

/* Publishes `slot` (already written) by setting `bit`, unless one of `done`
 * appeared first. Returns the state seen. */
static uint32_t publish_waker(weft_oneshot_t *c, uint32_t bit, uint32_t done)
{
    uint32_t s = atomic_load_explicit(&c->state, memory_order_acquire);
    for (;;) {
        if (s & done)
            return s;
        WEFT_CHAOS();
        /* release: the slot's waker reaches the other side (its acquire RMW);
         * acquire: the value, if it was sent meanwhile. */
        if (atomic_compare_exchange_weak_explicit(&c->state, &s, s | bit, memory_order_acq_rel,
                                                  memory_order_acquire))
            return s;
    }
}

/* Takes `bit` back so the slot may be rewritten; returns the state seen
 * (a `done` bit in it means the other side finished first). */
static uint32_t unpublish_waker(weft_oneshot_t *c, uint32_t bit, uint32_t done)
{
    uint32_t s = atomic_load_explicit(&c->state, memory_order_acquire);
    for (;;) {
        if (s & done)
            return s;
        if (atomic_compare_exchange_weak_explicit(&c->state, &s, s & ~bit, memory_order_acq_rel,
                                                  memory_order_acquire))
            return s;
    }
}

/* Registers cx's waker in the slot guarded by `bit`. Returns the state seen
 * if `done` appeared (the caller re-checks), or 0 when registered. */
static uint32_t register_waker(weft_oneshot_t *c, weft_waker_t *slot, uint32_t bit, uint32_t done,
                               weft_context_t *cx)
{
    uint32_t s = atomic_load_explicit(&c->state, memory_order_acquire);
    if (s & done)
        return s;
    if (s & bit) {
        if (weft_waker_will_wake(slot, cx->waker))
            return 0;
        s = unpublish_waker(c, bit, done);
        if (s & done)
            return s;
    }
    weft_waker_drop(slot);
    *slot = weft_waker_clone(cx->waker);
    s = publish_waker(c, bit, done);
    return (s & done) ? s : 0;
}

int weft_oneshot_send(weft_oneshot_tx_t *tx, const void *value)
{
    WEFT__REQUIRE("weft_oneshot_send", tx);
    WEFT__REQUIRE("weft_oneshot_send", value);
    weft_oneshot_t *c = tx->chan_;
    if (c == NULL)
        weft_panic(WEFT_SITE, "weft_oneshot_send on a sender that already sent or was dropped");
    tx->chan_ = NULL;
    int rc = 0;
    if (atomic_load_explicit(&c->state, memory_order_acquire) & OS_RX_CLOSED) {
        atomic_fetch_or_explicit(&c->state, OS_TX_DONE, memory_order_relaxed);
        chan_release(c);
        return WEFT_EPIPE;
    }
    memcpy(c->value, value, c->value_size);
    WEFT_CHAOS();
    /* acq_rel: release publishes the value to the receiver (acquire load in
     * rx_poll/try_recv); acquire reads the receiver's waker slot. */
    uint32_t prev = atomic_fetch_or_explicit(&c->state, OS_SENT | OS_TX_DONE, memory_order_acq_rel);
    if (prev & OS_RX_CLOSED) {
        /* The receiver closed first: take the value back, unless a racing
         * try_recv claimed it (whoever sets TAKEN first owns the value). */
        uint32_t p = atomic_fetch_or_explicit(&c->state, OS_TAKEN, memory_order_acq_rel);
        rc = (p & OS_TAKEN) ? 0 : WEFT_EPIPE;
    } else if (prev & OS_RX_WAKER) {
        weft_waker_wake_by_ref(&c->rx_waker);
    }
    chan_release(c);
    return rc;
}

void weft_oneshot_tx_drop(weft_oneshot_tx_t *tx)
{
    WEFT__REQUIRE("weft_oneshot_tx_drop", tx);
    weft_oneshot_t *c = tx->chan_;
    if (c == NULL)
        return;
    tx->chan_ = NULL;
    /* acq_rel: as in send (the receiver must see TX_DONE; we read its slot). */
    uint32_t prev = atomic_fetch_or_explicit(&c->state, OS_TX_DONE, memory_order_acq_rel);
    if ((prev & OS_RX_WAKER) && !(prev & OS_RX_CLOSED))
        weft_waker_wake_by_ref(&c->rx_waker);
    chan_release(c);
}

bool weft_oneshot_is_closed(const weft_oneshot_tx_t *tx)
{
    WEFT__REQUIRE("weft_oneshot_is_closed", tx);
    if (tx->chan_ == NULL)
        return true;
    return (atomic_load_explicit(&tx->chan_->state, memory_order_acquire) & OS_RX_CLOSED) != 0;
}

/* ---- Receiver ------------------------------------------------------------ */

/* Claims the value by setting TAKEN first (send may be taking it back after
 * a close), then moves it out. */
static int take_value(weft_oneshot_t *c, uint32_t s, void *dst)
{
    if (!(s & OS_SENT) || (s & OS_TAKEN))
        return WEFT_EPIPE;
    /* acq_rel: pairs with send's fetch_or of TAKEN; one of us wins. */
    uint32_t p = atomic_fetch_or_explicit(&c->state, OS_TAKEN, memory_order_acq_rel);
    if (p & OS_TAKEN)
        return WEFT_EPIPE;
    if (dst != NULL)
        memcpy(dst, c->value, c->value_size);
    else if (c->drop_value)
        c->drop_value(c->value);
    return 0;
}

static void rx_finish(weft_oneshot_rx_t *rx)
{
    weft_oneshot_t *c = rx->chan_;
    rx->chan_ = NULL;
    atomic_fetch_or_explicit(&c->state, OS_RX_CLOSED, memory_order_relaxed);
    chan_release(c);
}

static weft_poll_t rx_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_oneshot_rx_t *rx = (weft_oneshot_rx_t *)(void *)f;
    weft_oneshot_t *c = rx->chan_;
    if (c == NULL)
        weft_panic(WEFT_SITE, "oneshot receiver polled after it completed (or it is empty)");
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    /* acquire: pairs with send's release: the value is visible. */
    uint32_t s = atomic_load_explicit(&c->state, memory_order_acquire);
    /* Closed by the receiver: a value sent before the close is still taken;
     * none can come after it, so do not wait. */
    if (!(s & (OS_TX_DONE | OS_RX_CLOSED))) {
        s = register_waker(c, &c->rx_waker, OS_RX_WAKER, OS_TX_DONE | OS_RX_CLOSED, cx);
        if (s == 0) {
            weft__coop_refund();
            return WEFT_PENDING;
        }
    }
    int rc = take_value(c, s, rx->dst_);
    rx_finish(rx);
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void rx_drop(weft_future_t *f)
{
    weft_oneshot_rx_t *rx = (weft_oneshot_rx_t *)(void *)f;
    if (rx->chan_ == NULL)
        return;
    weft_oneshot_t *c = rx->chan_;
    /* acq_rel: a sender that loses the race sees RX_CLOSED; we see SENT. */
    uint32_t prev = atomic_fetch_or_explicit(&c->state, OS_RX_CLOSED, memory_order_acq_rel);
    if ((prev & OS_TX_WAKER) && !(prev & (OS_TX_DONE | OS_RX_CLOSED)))
        weft_waker_wake_by_ref(&c->tx_waker);
    rx->chan_ = NULL;
    chan_release(c); /* drops a value that was sent and never taken */
}

const weft_future_vtable_t weft__oneshot_rx_vtable = {
    rx_poll, rx_drop, NULL, sizeof(weft_oneshot_rx_t), sizeof(int), "weft_oneshot_rx",
};

weft_future_t *weft_oneshot_recv(weft_oneshot_rx_t *rx, void *dst)
{
    WEFT__REQUIRE("weft_oneshot_recv", rx);
    rx->dst_ = dst;
    return &rx->future;
}

int weft_oneshot_try_recv(weft_oneshot_rx_t *rx, void *dst)
{
    WEFT__REQUIRE("weft_oneshot_try_recv", rx);
    weft_oneshot_t *c = rx->chan_;
    if (c == NULL)
        return WEFT_EPIPE;
    /* acquire: pairs with send's release. */
    uint32_t s = atomic_load_explicit(&c->state, memory_order_acquire);
    if (s & OS_SENT)
        return take_value(c, s, dst);
    if (s & OS_TX_DONE)
        return WEFT_EPIPE;
    return WEFT_EAGAIN;
}

void weft_oneshot_close(weft_oneshot_rx_t *rx)
{
    WEFT__REQUIRE("weft_oneshot_close", rx);
    weft_oneshot_t *c = rx->chan_;
    if (c == NULL)
        return;
    /* acq_rel: as in rx_drop. */
    uint32_t prev = atomic_fetch_or_explicit(&c->state, OS_RX_CLOSED, memory_order_acq_rel);
    if ((prev & OS_TX_WAKER) && !(prev & (OS_TX_DONE | OS_RX_CLOSED)))
        weft_waker_wake_by_ref(&c->tx_waker);
}

void weft_oneshot_rx_drop(weft_oneshot_rx_t *rx)
{
    WEFT__REQUIRE("weft_oneshot_rx_drop", rx);
    rx_drop(&rx->future);
}

/* ---- Sender's closed() ---------------------------------------------------- */

static weft_poll_t closed_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_oneshot_closed_t *cl = (weft_oneshot_closed_t *)(void *)f;
    weft_oneshot_t *c = cl->tx_->chan_;
    if (c != NULL && !(atomic_load_explicit(&c->state, memory_order_acquire) & OS_RX_CLOSED)) {
        if (register_waker(c, &c->tx_waker, OS_TX_WAKER, OS_RX_CLOSED, cx) == 0)
            return WEFT_PENDING;
    }
    if (out != NULL)
        *(weft_unit_t *)out = WEFT_UNIT;
    return WEFT_READY;
}

static const weft_future_vtable_t closed_vtable = {
    closed_poll, NULL, NULL, sizeof(weft_oneshot_closed_t), 0, "weft_oneshot_closed",
};

weft_oneshot_closed_t weft_oneshot_closed(weft_oneshot_tx_t *tx)
{
    WEFT__REQUIRE("weft_oneshot_closed", tx);
    return (weft_oneshot_closed_t){ { &closed_vtable }, tx };
}
