/* weft/oneshot.h - a channel that carries exactly one value.
 *
 * One allocation holds the shared state and the value slot. The sender
 * sends once (or is dropped); the receiver is a future that yields the value
 * or WEFT_EPIPE when the sender was dropped without sending. Either side
 * observes the other's drop: send fails with WEFT_EPIPE when the receiver is
 * gone or closed, and weft_oneshot_closed() lets a sender wait for that.
 */
#ifndef WEFT_ONESHOT_H
#define WEFT_ONESHOT_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_oneshot_s weft_oneshot_t;

typedef struct weft_oneshot_tx_s {
    weft_oneshot_t *chan_; /* NULL once sent or dropped */
} weft_oneshot_tx_t;

/* The receiver is itself a future: output int, 0 (value written to the
 * destination given to weft_oneshot_recv) or WEFT_EPIPE. */
typedef struct weft_oneshot_rx_s {
    weft_future_t future;
    weft_oneshot_t *chan_; /* NULL once received or dropped */
    void *dst_;
} weft_oneshot_rx_t;

/* Creates a channel for values of value_size bytes (1..65536).
 * drop_value (may be NULL) releases a value that was sent and never
 * received. Returns 0, WEFT_EINVAL, or WEFT_ENOMEM (tx/rx untouched).
 * Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_oneshot_new(size_t value_size, void (*drop_value)(void *value),
                                             weft_oneshot_tx_t *tx, weft_oneshot_rx_t *rx);

/* Sends *value (copied) and consumes the sender. Returns 0, or WEFT_EPIPE
 * when the receiver was dropped or closed: the value was not taken and the
 * caller still owns it. Context: any thread; never blocks. */
WEFT_API WEFT_NODISCARD int weft_oneshot_send(weft_oneshot_tx_t *tx, const void *value);
/* Drops the sender without sending: the receiver gets WEFT_EPIPE. */
WEFT_API void weft_oneshot_tx_drop(weft_oneshot_tx_t *tx);
/* True when the receiver is gone or closed (send would fail). */
WEFT_API bool weft_oneshot_is_closed(const weft_oneshot_tx_t *tx);

/* A future (output weft_unit_t) that completes when the receiver is
 * dropped or closed; the sender must outlive it. */
typedef struct weft_oneshot_closed_s {
    weft_future_t future;
    weft_oneshot_tx_t *tx_;
} weft_oneshot_closed_t;
WEFT_API WEFT_NODISCARD weft_oneshot_closed_t weft_oneshot_closed(weft_oneshot_tx_t *tx);

/* Sets the destination (value_size bytes, or NULL to discard) and returns
 * the receiver as a future. */
WEFT_API weft_future_t *weft_oneshot_recv(weft_oneshot_rx_t *rx, void *dst);
/* Non-blocking receive: 0 (value written to dst), WEFT_EAGAIN (nothing
 * yet), or WEFT_EPIPE (sender dropped, or the value was already taken). */
WEFT_API WEFT_NODISCARD int weft_oneshot_try_recv(weft_oneshot_rx_t *rx, void *dst);
/* Closes the receiving side: later sends fail; a value already sent can
 * still be taken with try_recv. */
WEFT_API void weft_oneshot_close(weft_oneshot_rx_t *rx);
/* Drops the receiver (same as weft_future_drop on it). */
WEFT_API void weft_oneshot_rx_drop(weft_oneshot_rx_t *rx);

#ifdef __cplusplus
}
#endif

#endif
