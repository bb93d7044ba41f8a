/* weft/mpsc.h - multi-producer, single-consumer channels, bounded and
 * unbounded (Tokio's tokio::sync::mpsc).
 *
 * A channel is one reference-counted allocation shared by every sender,
 * every permit and the receiver; values of a fixed size (1..65536 bytes)
 * are copied in and out. A bounded channel holds a ring of `cap` slots in
 * that allocation and allocates nothing per message: a send (or a
 * reserve) takes room for one message, and the receiver gives it back when
 * it takes the message out; senders that find no room wait in FIFO order,
 * and no send takes room past them. An unbounded channel keeps its
 * messages in blocks of 32 slots, allocated as the queue grows and reused
 * (one spare) or freed as it drains.
 *
 * Order: FIFO per sender (and across senders, in the order their sends
 * took their place in the channel). Closing: the receiver sees WEFT_EPIPE
 * only once the channel is closed (every sender and permit dropped, or
 * weft_mpsc_close) AND every message sent before that was received.
 *
 * Cancellation safety (docs/channels.md has the table): a send future
 * dropped while it waits for room has taken nothing (the caller still owns
 * the value) and hands any room assigned to it to the next sender; a recv
 * or recv_many future dropped before it completed leaves every message in
 * the channel; a permit dropped unused returns its slot.
 *
 *     WEFT_AWAIT(&self->send, weft_mpsc_send(&self->tx, &self->v), &self->rc);
 *     WEFT_AWAIT(&self->recv, weft_mpsc_recv(&self->rx, &self->got), &self->rc);
 */
#ifndef WEFT_MPSC_H
#define WEFT_MPSC_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest value a channel carries, in bytes. */
#define WEFT_MPSC_MAX_VALUE 65536
/* The largest capacity of a bounded channel. */
#define WEFT_MPSC_MAX_CAP ((size_t)1 << 24)

typedef struct weft_mpsc_s weft_mpsc_t;

/* A sender handle: copy it only through weft_mpsc_tx_clone. Fields private. */
typedef struct weft_mpsc_tx_s {
    weft_mpsc_t *chan_; /* NULL once dropped */
} weft_mpsc_tx_t;

/* The receiver handle (one per channel). Fields private. */
typedef struct weft_mpsc_rx_s {
    weft_mpsc_t *chan_; /* NULL once dropped */
} weft_mpsc_rx_t;

/* A reserved slot: weft_mpsc_permit_send fills it, weft_mpsc_permit_drop
 * gives it back. A permit keeps the channel open like a sender does (the
 * receiver does not see "closed" while one is outstanding). Fields private. */
typedef struct weft_mpsc_permit_s {
    weft_mpsc_t *chan_; /* NULL once used or dropped */
} weft_mpsc_permit_t;

/* The future of weft_mpsc_send. Output int: 0 (the value was copied into
 * the channel), WEFT_EPIPE (the receiver was dropped or closed: the value
 * was not taken), or WEFT_ENOMEM (unbounded only: no block for it; not
 * taken). Dropped while it waits, it has taken nothing. Fields private. */
typedef struct weft_mpsc_send_s {
    weft_future_t future;
    weft_mpsc_t *chan_;
    const void *value_;
    weft_mpsc_permit_t *permit_; /* reserve: where the permit goes; NULL for send */
    weft__dnode_t node_;         /* in the channel's queue of sends waiting for room */
    weft_waker_t waker_;         /* the waiting send's waker (the queue's lock) */
    unsigned grant_;             /* _Atomic in sync/mpsc.c: what the queue gave it */
    unsigned phase_;
} weft_mpsc_send_t;
/* weft_mpsc_reserve's future: same fields, output int 0 (the permit was
 * written) or WEFT_EPIPE. */
typedef weft_mpsc_send_t weft_mpsc_reserve_t;

/* The future of weft_mpsc_recv and weft_mpsc_recv_many. recv's output is
 * int: 0 (a value was copied to dst) or WEFT_EPIPE (closed and drained).
 * recv_many's output is size_t: how many values were copied to buf, 0
 * only when closed and drained. Fields private. */
typedef struct weft_mpsc_recv_s {
    weft_future_t future;
    weft_mpsc_t *chan_;
    void *dst_;
    size_t max_;
    bool registered_; /* our waker may be in the channel */
    bool done_;
} weft_mpsc_recv_t;

/* Creates a bounded channel of cap slots (1..WEFT_MPSC_MAX_CAP) for values
 * of value_size bytes (1..WEFT_MPSC_MAX_VALUE). drop_value (may be NULL)
 * releases each value still in the channel when it is freed or the
 * receiver dropped. Returns 0, WEFT_EINVAL (a size out of range), or
 * WEFT_ENOMEM; on error *tx and *rx are untouched. Ownership: on success
 * the caller owns one sender and the receiver, and drops each once.
 * Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_mpsc_bounded(size_t cap, size_t value_size, void (*drop_value)(void *value),
                                              weft_mpsc_tx_t *tx, weft_mpsc_rx_t *rx);
/* The same without a bound: sends never wait. Returns 0, WEFT_EINVAL or
 * WEFT_ENOMEM (the first block is allocated here). Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_mpsc_unbounded(size_t value_size, void (*drop_value)(void *value),
                                                weft_mpsc_tx_t *tx, weft_mpsc_rx_t *rx);

/* ---- Sender ---------------------------------------------------------------- */

/* A future that copies *value into the channel once there is room (see
 * weft_mpsc_send_t). value must stay valid and unchanged until the future
 * completes or is dropped; tx must not be dropped meanwhile. Aborts when
 * tx was dropped. Context: construct anywhere; poll from a task or a
 * block_on root; waits by returning WEFT_PENDING, never blocks. */
WEFT_API WEFT_NODISCARD weft_mpsc_send_t weft_mpsc_send(weft_mpsc_tx_t *tx, const void *value);
/* Sends now or not at all. Returns 0 (copied), WEFT_EAGAIN (bounded and
 * full, or other sends are waiting for room), WEFT_EPIPE (closed), or
 * WEFT_ENOMEM (unbounded, no block); on error the value is not taken.
 * Context: any thread; never blocks. */
WEFT_API WEFT_NODISCARD int weft_mpsc_try_send(weft_mpsc_tx_t *tx, const void *value);
/* Sends from a plain thread, waiting (parked) for room. Returns 0,
 * WEFT_EPIPE or WEFT_ENOMEM as weft_mpsc_send. Context: never a runtime
 * worker, block_on caller or task (aborts naming the call). */
WEFT_API WEFT_NODISCARD int weft_mpsc_blocking_send(weft_mpsc_tx_t *tx, const void *value);
/* A future that reserves one slot and writes a permit to *permit (see
 * weft_mpsc_reserve_t). Unbounded channels grant it at once. Ownership:
 * on 0 the caller owns the permit and uses or drops it once. Context: as
 * weft_mpsc_send. */
WEFT_API WEFT_NODISCARD weft_mpsc_reserve_t weft_mpsc_reserve(weft_mpsc_tx_t *tx, weft_mpsc_permit_t *permit);
/* Copies *value into the reserved slot and consumes the permit; never
 * waits. Returns 0, WEFT_EPIPE (the receiver closed meanwhile: not taken)
 * or WEFT_ENOMEM (unbounded, no block: not taken); the permit is consumed
 * either way. Aborts on a used or dropped permit. Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_mpsc_permit_send(weft_mpsc_permit_t *permit, const void *value);
/* Gives an unused permit's slot back (waking the next waiting sender).
 * A NULL-channel (used) permit is ignored. Context: any thread. */
WEFT_API void weft_mpsc_permit_drop(weft_mpsc_permit_t *permit);
/* Makes *out another sender of tx's channel. Aborts when tx was dropped.
 * Ownership: the caller drops *out once. Context: any thread. */
WEFT_API void weft_mpsc_tx_clone(const weft_mpsc_tx_t *tx, weft_mpsc_tx_t *out);
/* Drops a sender; the last sender (and permit) dropped closes the channel
 * for sending and wakes the receiver. Idempotent on a dropped handle.
 * Context: any thread; never blocks. */
WEFT_API void weft_mpsc_tx_drop(weft_mpsc_tx_t *tx);
/* True when the receiver was dropped or closed (a send would fail). */
WEFT_API bool weft_mpsc_tx_is_closed(const weft_mpsc_tx_t *tx);

/* ---- Receiver -------------------------------------------------------------- */

/* A future that receives one value into dst (value_size bytes); see
 * weft_mpsc_recv_t. dst must stay valid until it completes or is dropped;
 * one recv at a time per receiver. Context: as weft_mpsc_send. */
WEFT_API WEFT_NODISCARD weft_mpsc_recv_t weft_mpsc_recv(weft_mpsc_rx_t *rx, void *dst);
/* A future that receives up to max (>= 1) values into buf (max *
 * value_size bytes) at once, waiting only while none is there. Output
 * size_t (see weft_mpsc_recv_t). Aborts when max is 0. */
WEFT_API WEFT_NODISCARD weft_mpsc_recv_t weft_mpsc_recv_many(weft_mpsc_rx_t *rx, void *buf, size_t max);
/* Receives now or not at all: 0 (copied to dst), WEFT_EAGAIN (empty, not
 * closed), WEFT_EPIPE (closed and drained). Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_mpsc_try_recv(weft_mpsc_rx_t *rx, void *dst);
/* Receives from a plain thread, parked while empty: 0 or WEFT_EPIPE.
 * Context: never inside a runtime (aborts naming the call). */
WEFT_API WEFT_NODISCARD int weft_mpsc_blocking_recv(weft_mpsc_rx_t *rx, void *dst);
/* Closes the channel for sending: later sends, try_sends, reserves and
 * permit sends fail with WEFT_EPIPE, waiting ones complete with it; the
 * messages already sent can still be received. Idempotent. Context: any
 * thread. */
WEFT_API void weft_mpsc_close(weft_mpsc_rx_t *rx);
/* Closes and drops the receiver, releasing every value still queued
 * through drop_value. Idempotent on a dropped handle. Context: any thread. */
WEFT_API void weft_mpsc_rx_drop(weft_mpsc_rx_t *rx);

#ifdef __cplusplus
}
#endif

#endif
