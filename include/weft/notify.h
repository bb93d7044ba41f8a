/* weft/notify.h - wake one task or all waiting tasks, without data (Tokio's
 * Notify).
 *
 * A weft_notify_t lives where its user puts it (a struct field, a global)
 * and is set up with weft_notify_init. Tasks wait with the future
 * weft_notify_notified. weft_notify_notify_one wakes one waiting future or,
 * when none waits, leaves ONE permit that the next wait takes at once
 * (permits do not add up). weft_notify_notify_waiters wakes every future
 * created before the call, and only those; it leaves no permit.
 *
 * To check a condition and then wait without losing a notification sent in
 * between, enable the future first (weft_notify_enable): it is queued as a
 * waiter from then on, so a notify_one sent after the enable is its.
 * docs/notify-and-cancel.md is the guide.
 */
#ifndef WEFT_NOTIFY_H
#define WEFT_NOTIFY_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every field is private (sync/notify.c casts the storage to its atomic
 * and list types; the struct is here so it can live by value). */
typedef struct weft_notify_s {
    unsigned lock_;                      /* a spin lock */
    unsigned permit_;                    /* under lock_: 1 when a notify_one is stored */
    uint64_t gen_;                       /* notify_waiters calls so far (atomic) */
    weft__dnode_t waiters_;             /* the waiter list head (under lock_) */
    unsigned magic_;                     /* set while initialised: misuse checks */
} weft_notify_t;

/* The future returned by weft_notify_notified: output weft_unit_t. All
 * fields are private. It must not move after it was enabled or polled
 * (it is linked into the notify's waiter list). */
typedef struct weft_notified_s {
    weft_future_t future;
    weft_notify_t *notify_;
    uint64_t gen_;                      /* notify_waiters calls when it was created */
    weft__dnode_t node_;                /* its link in the waiter list */
    weft_waker_t waker_;                /* under the notify's lock while queued */
    unsigned char phase_;               /* the owner's view: created, queued, done */
    unsigned char got_;                 /* under the lock: none, one, all */
} weft_notified_t;

/* Initialises n: no waiter, no permit. Never fails.
 * Ownership: the caller owns the storage and calls weft_notify_destroy.
 * Context: any thread; the notify is not shared yet. */
WEFT_API void weft_notify_init(weft_notify_t *n);

/* Releases n. Aborts ("weft_notify_destroy: futures still wait") when a
 * notified future is still queued on it (enabled or pending, not yet
 * dropped or completed). No call on n may be in progress.
 * Context: any thread; never blocks. */
WEFT_API void weft_notify_destroy(weft_notify_t *n);

/* Wakes the longest-waiting queued future, which completes at its next
 * poll; when none is queued, stores one permit for the next future to poll
 * or enable (a second call with no waiter still stores one). No errors.
 * Context: any thread (plain threads included), any runtime; never blocks;
 * takes n's spin lock briefly and wakes the chosen waker after releasing
 * it. */
WEFT_API void weft_notify_notify_one(weft_notify_t *n);

/* Wakes every future of n created (weft_notify_notified) before this call
 * and not completed yet, queued or not; futures created after the call are
 * not affected. Stores no permit and leaves a stored one where it is.
 * Context: as weft_notify_notify_one; wakes in batches of 32, releasing
 * the lock between batches, so waiters queued meanwhile are not held up. */
WEFT_API void weft_notify_notify_waiters(weft_notify_t *n);

/* A future (output weft_unit_t) that completes once it gets a notification:
 * a stored permit (taken at its first poll or enable), a notify_one that
 * chose it, or a notify_waiters call made after this constructor ran.
 * Constructing records the notify_waiters count and nothing else.
 * Dropping it before it completed: a notify_one notification it was
 * chosen for (or the permit it took) passes to the next waiter, or back
 * to the permit; nothing else is lost. Spends one unit of the cooperative
 * budget per poll that completes. n must outlive the future.
 * Context: construct on any thread; one owner polls and drops it. */
WEFT_API WEFT_NODISCARD weft_notified_t weft_notify_notified(weft_notify_t *n);

/* Queues f as a waiter before its first poll, so that a notification sent
 * from now on reaches it. Returns true when f already holds one (it will
 * complete at its first poll); enabling twice, or after a poll, changes
 * nothing and returns the same answer. f must not move afterwards. Aborts
 * when f already completed.
 * Context: f's owner; takes the notify's spin lock. */
WEFT_API bool weft_notify_enable(weft_notified_t *f);

#ifdef __cplusplus
}
#endif

#endif
