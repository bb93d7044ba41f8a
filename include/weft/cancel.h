/* weft/cancel.h - cancellation tokens (Tokio's CancellationToken).
 *
 * A token is a shared, reference-counted flag that goes from "running" to
 * "cancelled" once and never back. Tasks check it (weft_cancel_token_is_
 * cancelled) or await it (weft_cancel_token_cancelled). Tokens form trees:
 * cancelling a token cancels every token created from it with
 * weft_cancel_token_child, at any depth, and never its parent. A child
 * that is released leaves its parent's list at once, so a long-lived
 * parent with children created and dropped forever stays small.
 * docs/notify-and-cancel.md is the guide.
 */
#ifndef WEFT_CANCEL_H
#define WEFT_CANCEL_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_cancel_token_s weft_cancel_token_t;

/* Creates a token that is not cancelled, with one reference (the
 * caller's). Returns 0, or WEFT_ENOMEM (*out untouched).
 * Ownership: the caller releases it with weft_cancel_token_release.
 * Context: any thread; never blocks. */
WEFT_API WEFT_NODISCARD int weft_cancel_token_new(weft_cancel_token_t **out);

/* Creates a child of parent, with one reference (the caller's): it is
 * cancelled when parent or any ancestor is, and cancelling it leaves
 * parent alone. A child of a cancelled token starts cancelled (and is not
 * linked to it). The child holds a reference to parent until it is freed.
 * Returns 0, or WEFT_ENOMEM (*child untouched).
 * Ownership: the caller releases the child; parent is only borrowed.
 * Context: any thread; takes the tree's spin lock. */
WEFT_API WEFT_NODISCARD int weft_cancel_token_child(weft_cancel_token_t *parent, weft_cancel_token_t **child);

/* Adds a reference (for another owner: a spawned task, a thread) and
 * returns t. Aborts when t has no reference left. Context: any thread. */
WEFT_API weft_cancel_token_t *weft_cancel_token_retain(weft_cancel_token_t *t);

/* Gives up one reference. The last one unlinks t from its parent (taking
 * the tree's spin lock) and frees it; it does not cancel t. No cancelled
 * future of t may be alive then (they borrow t). Context: any thread. */
WEFT_API void weft_cancel_token_release(weft_cancel_token_t *t);

/* Cancels t and every descendant, waking their cancelled futures; a second
 * call does nothing. Context: any thread (plain threads included), any
 * runtime; never blocks; takes the tree's spin lock, releasing it to wake
 * each batch of 32 wakers. */
WEFT_API void weft_cancel_token_cancel(weft_cancel_token_t *t);

/* True once t (or an ancestor) was cancelled. A true answer also makes
 * visible what the canceller wrote before cancelling. Context: any thread;
 * lock-free (one load). */
WEFT_API bool weft_cancel_token_is_cancelled(const weft_cancel_token_t *t);

/* A future (output weft_unit_t) that completes once t is cancelled (at
 * once if it already is). Borrows t: keep a reference until the future is
 * dropped. Dropping it unqueues it and loses nothing. Spends one unit of
 * the cooperative budget per poll that completes. All fields are private;
 * it must not move after its first poll.
 * Context: construct anywhere; one owner polls and drops it. */
typedef struct weft_cancelled_s {
    weft_future_t future;
    weft_cancel_token_t *token_;
    weft__dnode_t node_;                   /* its link in the token's waiter list */
    weft_waker_t waker_;                   /* under the tree's lock while queued */
    bool queued_;                          /* the owner's view: polled and pending */
} weft_cancelled_t;
WEFT_API WEFT_NODISCARD weft_cancelled_t weft_cancel_token_cancelled(weft_cancel_token_t *t);

/* A drop guard for an async frame's cleanup (WEFT_ASYNC_WITH_DROP): holds
 * a reference and, unless disarmed, cancels the token when dropped, so
 * that whatever the frame started stops when the frame is cancelled. */
typedef struct weft_cancel_guard_s {
    weft_cancel_token_t *token_; /* NULL once disarmed or dropped */
} weft_cancel_guard_t;

/* Makes a guard that takes over one of the caller's references to t. */
WEFT_API WEFT_NODISCARD weft_cancel_guard_t weft_cancel_token_cancel_on_drop(weft_cancel_token_t *t);
/* Cancels the guarded token and releases the guard's reference; nothing
 * on a disarmed or dropped guard. Context: any thread. */
WEFT_API void weft_cancel_guard_drop(weft_cancel_guard_t *g);
/* Gives the reference back without cancelling (NULL if already disarmed
 * or dropped). Ownership: the caller now releases it. */
WEFT_API weft_cancel_token_t *weft_cancel_guard_disarm(weft_cancel_guard_t *g);

#ifdef __cplusplus
}
#endif

#endif
