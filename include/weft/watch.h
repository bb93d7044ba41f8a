/* weft/watch.h - a channel that holds one latest value, which many
 * receivers read and wait on (Tokio's tokio::sync::watch).
 *
 * A channel is one reference-counted allocation shared by every sender and
 * receiver, holding one value of a fixed size (1..65536 bytes) and a
 * version number that every send increments. Readers copy the value out
 * whole: a read never sees half of one send and half of another, however
 * the writer races it (see weft_value_ops_t in weft/common.h for values
 * that own something). Each receiver remembers the version it last saw;
 * its `changed` future completes once the channel holds a newer one.
 * Intermediate values are not queued: a receiver that waits sees only the
 * latest.
 *
 * Closing: when every sender is dropped, `changed` completes with
 * WEFT_EPIPE (after reporting a last change not yet seen); the last value
 * stays readable. A send with no receiver left fails with WEFT_EPIPE.
 *
 * Cancellation safety (docs/broadcast-and-watch.md has the table): a
 * changed future dropped before it completed marks nothing seen.
 *
 *     WEFT_AWAIT(&self->ch, weft_watch_changed(&self->rx), &self->rc);
 *     if (self->rc == 0) (void)weft_watch_borrow_and_update(&self->rx, &self->cfg);
 */
#ifndef WEFT_WATCH_H
#define WEFT_WATCH_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest value a watch channel holds, in bytes. */
#define WEFT_WATCH_MAX_VALUE 65536

typedef struct weft_watch_s weft_watch_t;

/* A sender handle: copy it only through weft_watch_tx_clone. Fields private. */
typedef struct weft_watch_tx_s {
    weft_watch_t *chan_; /* NULL once dropped */
} weft_watch_tx_t;

/* A receiver handle, with the version it last saw. Copy it only through
 * weft_watch_rx_clone / weft_watch_subscribe. Fields private. */
typedef struct weft_watch_rx_s {
    weft_watch_t *chan_; /* NULL once dropped */
    uint64_t seen_;      /* the version this receiver last saw */
} weft_watch_rx_t;

/* The future of weft_watch_changed. Output int: 0 (the channel holds a
 * version this receiver has not seen; it is now marked seen) or WEFT_EPIPE
 * (every sender dropped and no unseen version). Fields private. */
typedef struct weft_watch_changed_s {
    weft_future_t future;
    weft__dnode_t node_; /* in the channel's waiter list while waiting */
    weft_waker_t waker_; /* under the channel's lock once polled */
    weft_watch_rx_t *rx_;
    bool linked_;    /* node_ is on a list (under the channel's lock) */
    unsigned phase_; /* not polled, polled (may be linked), done: its owner's */
} weft_watch_changed_t;

/* Creates a channel holding a copy of *init (value_size bytes,
 * 1..WEFT_WATCH_MAX_VALUE) at version 0. ops (may be NULL; its two
 * pointers are copied): see weft/common.h; the channel owns *init's copy
 * (no clone is made of it) and releases the value it holds through
 * ops->drop when a send replaces it or the channel is freed. ops->clone
 * runs with the value read-locked and ops->drop under the sender lock:
 * neither may send on this channel. *rx (may be NULL) becomes a
 * receiver that has seen version 0. Returns 0, WEFT_EINVAL or
 * WEFT_ENOMEM; on error nothing is taken. Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_watch_new(size_t value_size, const void *init, const weft_value_ops_t *ops,
                                           weft_watch_tx_t *tx, weft_watch_rx_t *rx);

/* ---- Sender ---------------------------------------------------------------- */

/* Replaces the value with a copy of *value (the channel takes it over),
 * increments the version and wakes every waiting `changed`. Returns 0, or
 * WEFT_EPIPE when no receiver is left: nothing was stored and the caller
 * still owns the value. Context: any thread; never waits for a reader
 * longer than one copy. */
WEFT_API WEFT_NODISCARD int weft_watch_send(weft_watch_tx_t *tx, const void *value);
/* As weft_watch_send, but stores even with no receiver; the value it
 * replaces is copied to *old (the caller now owns it; old may be value
 * itself) when old is not NULL, else released through ops->drop.
 * Context: any thread. */
WEFT_API void weft_watch_send_replace(weft_watch_tx_t *tx, const void *value, void *old);
/* Calls modify(value, arg) on the held value in place, with readers kept
 * out; when it returns true the version is incremented and waiters are
 * woken, when false nothing changes for receivers. modify must not call
 * into this channel. Context: any thread. */
WEFT_API void weft_watch_send_modify(weft_watch_tx_t *tx, bool (*modify)(void *value, void *arg), void *arg);
/* Copies the current value to dst (cloned per ops) and returns its
 * version. Context: any thread. */
WEFT_API uint64_t weft_watch_tx_borrow(const weft_watch_tx_t *tx, void *dst);
/* Makes *out another sender. Ownership: the caller drops *out once. */
WEFT_API void weft_watch_tx_clone(const weft_watch_tx_t *tx, weft_watch_tx_t *out);
/* Drops a sender; the last one closes the channel (waiting `changed`
 * futures complete). Idempotent on a dropped handle. Context: any thread. */
WEFT_API void weft_watch_tx_drop(weft_watch_tx_t *tx);
/* Makes *out a new receiver that has seen the current version. Returns 0
 * or WEFT_EPIPE (tx dropped). Ownership: the caller drops *out once. */
WEFT_API WEFT_NODISCARD int weft_watch_subscribe(const weft_watch_tx_t *tx, weft_watch_rx_t *out);
/* How many receivers the channel has now. */
WEFT_API size_t weft_watch_receiver_count(const weft_watch_tx_t *tx);

/* ---- Receiver -------------------------------------------------------------- */

/* Copies the current value to dst (cloned per ops) and returns its
 * version, without marking it seen. Context: any thread. */
WEFT_API uint64_t weft_watch_borrow(const weft_watch_rx_t *rx, void *dst);
/* The same, and marks the version seen. Context: any thread. */
WEFT_API uint64_t weft_watch_borrow_and_update(weft_watch_rx_t *rx, void *dst);
/* 1 when the channel holds a version this receiver has not seen, 0 when
 * not, WEFT_EPIPE when not and every sender is dropped. */
WEFT_API int weft_watch_has_changed(const weft_watch_rx_t *rx);
/* Marks the current version seen (mark_unchanged) without reading it. */
WEFT_API void weft_watch_mark_seen(weft_watch_rx_t *rx);
/* A future that completes when the channel holds a version newer than the
 * one this receiver last saw; see weft_watch_changed_t. rx must stay valid
 * until it completes or is dropped. Aborts when rx was dropped (here, or
 * later at its poll or drop). Spends one unit of the cooperative budget
 * per poll (refunded when it returns pending). */
WEFT_API WEFT_NODISCARD weft_watch_changed_t weft_watch_changed(weft_watch_rx_t *rx);
/* Makes *out a receiver of the same channel that has seen what rx has. */
WEFT_API void weft_watch_rx_clone(const weft_watch_rx_t *rx, weft_watch_rx_t *out);
/* Drops a receiver. Idempotent on a dropped handle. Context: any thread. */
WEFT_API void weft_watch_rx_drop(weft_watch_rx_t *rx);

#ifdef __cplusplus
}
#endif

#endif
