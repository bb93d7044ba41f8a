/* weft/broadcast.h - a multi-producer, multi-consumer channel in which
 * every receiver sees every message (Tokio's tokio::sync::broadcast).
 *
 * A channel holds the last `cap` messages in a ring, in one
 * reference-counted allocation shared by every sender and receiver; values
 * of a fixed size (1..65536 bytes) are copied in by a send and copied out
 * by each receiver (see weft_value_ops_t in weft/common.h for values that
 * own something). A send never waits: when the ring is full it overwrites
 * the oldest message, and a receiver that had not read it yet gets
 * WEFT_ELAGGED from its next receive, with weft_broadcast_rx_missed telling
 * exactly how many messages it missed; the receive after that goes on from
 * the oldest message still held. A slow receiver never slows a sender.
 *
 * Order: every receiver sees the messages in the same order (the order
 * their sends took the channel's tail). A receiver sees the messages sent
 * after it subscribed, never older ones.
 *
 * Closing: when every sender is dropped, receivers get the messages still
 * held for them, then WEFT_EPIPE.
 *
 * Cancellation safety (docs/broadcast-and-watch.md has the table): a recv
 * future dropped before it completed consumed nothing; the receiver's
 * position is unchanged.
 *
 *     WEFT_AWAIT(&self->recv, weft_broadcast_recv(&self->rx, &self->msg), &self->rc);
 *     if (self->rc == WEFT_ELAGGED) { skipped += weft_broadcast_rx_missed(&self->rx); }
 */
#ifndef WEFT_BROADCAST_H
#define WEFT_BROADCAST_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest value a broadcast channel carries, in bytes. */
#define WEFT_BROADCAST_MAX_VALUE 65536
/* The largest capacity of a broadcast channel. */
#define WEFT_BROADCAST_MAX_CAP ((size_t)1 << 20)

typedef struct weft_broadcast_s weft_broadcast_t;

/* A sender handle: copy it only through weft_broadcast_tx_clone. Fields
 * private. */
typedef struct weft_broadcast_tx_s {
    weft_broadcast_t *chan_; /* NULL once dropped */
} weft_broadcast_tx_t;

/* A receiver handle: its own position in the channel. Copy it only through
 * weft_broadcast_rx_clone / weft_broadcast_subscribe. Fields private. */
typedef struct weft_broadcast_rx_s {
    weft_broadcast_t *chan_; /* NULL once dropped */
    uint64_t next_;          /* position of the next message to read */
    uint64_t missed_;        /* what the last WEFT_ELAGGED result skipped */
} weft_broadcast_rx_t;

/* The future of weft_broadcast_recv. Output int: 0 (the next message was
 * copied to dst), WEFT_ELAGGED (messages were overwritten before this
 * receiver read them: dst untouched; weft_broadcast_rx_missed says how
 * many; the receiver now stands at the oldest message held), or WEFT_EPIPE
 * (every sender dropped and every message held for this receiver read).
 * Fields private. */
typedef struct weft_broadcast_recv_s {
    weft_future_t future;
    weft__dnode_t node_; /* in the channel's waiter list while waiting */
    weft_waker_t waker_;
    weft_broadcast_rx_t *rx_;
    void *dst_;
    unsigned linked_; /* 1 while in a waiter list (an _Atomic unsigned inside) */
    bool done_;
} weft_broadcast_recv_t;

/* Creates a channel holding the last cap messages (1..WEFT_BROADCAST_MAX_CAP;
 * it may round cap up to a power of two) of value_size bytes each
 * (1..WEFT_BROADCAST_MAX_VALUE). ops (may be NULL) says how values that own
 * something are copied and released (weft/common.h); its functions run
 * while the channel holds a slot, so they must not call into this
 * channel. *rx (may be NULL: no first receiver) becomes a receiver that
 * sees every message sent from now on. Returns 0, WEFT_EINVAL (a size out of range) or WEFT_ENOMEM; on error
 * *tx and *rx are untouched. Ownership: on success the caller owns the
 * sender and the receiver and drops each once. Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_broadcast_new(size_t cap, size_t value_size, const weft_value_ops_t *ops,
                                               weft_broadcast_tx_t *tx, weft_broadcast_rx_t *rx);

/* ---- Sender ---------------------------------------------------------------- */

/* Sends *value (copied) to every receiver subscribed now; never waits.
 * When the ring is full the oldest message is overwritten (released through
 * ops->drop). Returns the number of receivers it went to (>= 1), or
 * WEFT_EPIPE when there is no receiver: the value was not taken and the
 * caller still owns it. Aborts when tx was dropped. Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_broadcast_send(weft_broadcast_tx_t *tx, const void *value);
/* Makes *out another sender of tx's channel. Ownership: the caller drops
 * *out once. Aborts when tx was dropped. Context: any thread. */
WEFT_API void weft_broadcast_tx_clone(const weft_broadcast_tx_t *tx, weft_broadcast_tx_t *out);
/* Drops a sender; when the last one goes, receivers get WEFT_EPIPE after
 * the messages still held for them. Idempotent on a dropped handle.
 * Context: any thread. */
WEFT_API void weft_broadcast_tx_drop(weft_broadcast_tx_t *tx);
/* Makes *out a new receiver of tx's channel that sees every message sent
 * from now on. Returns 0 or WEFT_EPIPE (tx dropped). Ownership: the
 * caller drops *out once. Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_broadcast_subscribe(const weft_broadcast_tx_t *tx, weft_broadcast_rx_t *out);
/* How many receivers the channel has now. Context: any thread. */
WEFT_API size_t weft_broadcast_receiver_count(const weft_broadcast_tx_t *tx);

/* ---- Receiver -------------------------------------------------------------- */

/* A future that receives the next message into dst (value_size bytes); see
 * weft_broadcast_recv_t. dst and rx must stay valid until it completes or
 * is dropped; one recv at a time per receiver. Aborts when rx was dropped.
 * Context: construct anywhere; poll from a task or a block_on root. */
WEFT_API WEFT_NODISCARD weft_broadcast_recv_t weft_broadcast_recv(weft_broadcast_rx_t *rx, void *dst);
/* Receives now or not at all: 0 (copied to dst), WEFT_EAGAIN (nothing new
 * yet: none sent, or the next one is still being written by a send running
 * on another thread; senders alive), WEFT_ELAGGED (as for recv) or
 * WEFT_EPIPE (closed and read to the end). Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_broadcast_try_recv(weft_broadcast_rx_t *rx, void *dst);
/* How many messages the last WEFT_ELAGGED result of this receiver
 * skipped; 0 if it never lagged. */
WEFT_API uint64_t weft_broadcast_rx_missed(const weft_broadcast_rx_t *rx);
/* How many messages are held for this receiver (sent, not yet read by it,
 * not yet overwritten). Context: any thread. */
WEFT_API size_t weft_broadcast_rx_len(const weft_broadcast_rx_t *rx);
/* Makes *out a receiver of the same channel standing at the same position
 * as rx (it will see the same messages). Aborts when rx was dropped.
 * Ownership: the caller drops *out once. Context: any thread. */
WEFT_API void weft_broadcast_rx_clone(const weft_broadcast_rx_t *rx, weft_broadcast_rx_t *out);
/* Drops a receiver: messages only it had not read are released (ops->drop)
 * when overwritten or when the channel is freed. Idempotent on a dropped
 * handle. Context: any thread. */
WEFT_API void weft_broadcast_rx_drop(weft_broadcast_rx_t *rx);

#ifdef __cplusplus
}
#endif

#endif
