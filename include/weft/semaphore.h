/* weft/semaphore.h - an async counting semaphore: fair (FIFO), closable,
 * cancellation-safe.
 *
 * The semaphore lives in the caller's storage (weft_semaphore_init); an
 * acquire is a future embedded in its awaiter (no allocation per wait).
 * Permits are plain counts, not objects: whoever acquired n permits gives
 * them back with weft_semaphore_release(sem, n), or never does: permits
 * acquired and not released are simply kept ("forgotten", Tokio's
 * SemaphorePermit::forget). weft_semaphore_forget removes available
 * permits from the semaphore for good.
 *
 * Fairness: waiters are served in arrival order, and a large request at
 * the head of the queue is served before smaller ones behind it (permits
 * released meanwhile are assigned to it, part by part). There is no
 * barging: while anyone waits, try_acquire fails and a new acquire queues
 * behind them.
 *
 * Cost: with nobody waiting, acquire, try_acquire and release are each one
 * compare-and-swap on the permit word; a wait takes a short spin lock over
 * the queue (docs/locks.md).
 *
 *     WEFT_AWAIT(&self->acq, weft_semaphore_acquire(&sem), &self->rc);
 *     if (self->rc == 0) { ... weft_semaphore_release(&sem, 1); }
 */
#ifndef WEFT_SEMAPHORE_H
#define WEFT_SEMAPHORE_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most permits a semaphore holds, and the most one call asks for or
 * gives back: the permit word keeps two flag bits beside the count, and
 * one more bit of headroom lets a sum be checked before it can wrap. */
#define WEFT_SEMAPHORE_MAX_PERMITS (SIZE_MAX >> 3)

/* The fields are private. permits_ and lock_ are plain storage that
 * sync/semaphore.c only ever accesses as _Atomic objects of the same size
 * and alignment (checked there), so the header compiles as C++. */
typedef struct weft_semaphore_s {
    size_t permits_;        /* available << 2 | WAITERS | CLOSED */
    unsigned lock_;         /* spin lock over waiters_ (sync/waiters.h) */
    weft__dnode_t waiters_; /* queued acquires, oldest first */
} weft_semaphore_t;

/* The future of weft_semaphore_acquire / _acquire_many. Output int: 0 (the
 * permits are the caller's), or WEFT_EPIPE (the semaphore was closed; no
 * permit is held), or WEFT_EINVAL (n was 0 or above the maximum). Dropped
 * while it waits, it gives back the permits already assigned to it;
 * awaited with a NULL output, it gives back the permits it acquired at
 * once (the future.h rule for an unwanted output). Fields private. */
typedef struct weft_semaphore_acquire_s {
    weft_future_t future;
    weft__dnode_t node_;      /* in sem_->waiters_ while queued (the semaphore's lock) */
    weft_waker_t waker_;      /* the queued waiter's waker (the semaphore's lock) */
    size_t remaining_;        /* _Atomic: permits still to be assigned while queued */
    size_t n_;                /* permits asked for */
    weft_semaphore_t *sem_;
    unsigned phase_;          /* not polled, queued, done */
} weft_semaphore_acquire_t;

/* Initializes *sem with `permits` available permits (0 allowed).
 * Returns 0, or WEFT_EINVAL when permits > WEFT_SEMAPHORE_MAX_PERMITS
 * (*sem untouched). Ownership: the caller owns the storage; nothing is
 * allocated. Context: any thread, before any other use of sem. */
WEFT_API WEFT_NODISCARD int weft_semaphore_init(weft_semaphore_t *sem, size_t permits);

/* Ends the semaphore's life. Nothing may wait on it (an acquire future
 * still queued aborts the process, naming the call), and no call may use
 * it concurrently or afterwards. Frees nothing. Context: any thread. */
WEFT_API void weft_semaphore_destroy(weft_semaphore_t *sem);

/* A future that acquires one permit (see weft_semaphore_acquire_t for its
 * output). It does nothing until polled; sem must outlive it. Context:
 * construct anywhere; poll from a task of any runtime or a block_on root;
 * never blocks the thread (it waits by returning WEFT_PENDING). */
WEFT_API WEFT_NODISCARD weft_semaphore_acquire_t weft_semaphore_acquire(weft_semaphore_t *sem);
/* The same for n permits, taken all at once (1 <= n <= the maximum; other
 * values complete with WEFT_EINVAL). A request larger than the
 * semaphore's total waits until add_permits makes it possible, and holds
 * up the queue behind it meanwhile. */
WEFT_API WEFT_NODISCARD weft_semaphore_acquire_t weft_semaphore_acquire_many(weft_semaphore_t *sem, size_t n);

/* Takes one permit (or n) now, without waiting. Returns 0 (the permits
 * are the caller's), WEFT_EAGAIN (too few available, or others are
 * queued: no barging), WEFT_EPIPE (closed), or WEFT_EINVAL (n is 0 or above
 * the maximum). Context: any thread, plain threads included; never
 * blocks; one compare-and-swap loop, no lock. */
WEFT_API WEFT_NODISCARD int weft_semaphore_try_acquire(weft_semaphore_t *sem);
WEFT_API WEFT_NODISCARD int weft_semaphore_try_acquire_many(weft_semaphore_t *sem, size_t n);

/* Gives back n permits acquired earlier: they go to the queued waiters in
 * order (waking each one fully served), the rest become available. A
 * closed semaphore takes them too (they only show in available_permits).
 * Returns 0 (n = 0 is a no-op), or WEFT_EINVAL when n or the resulting
 * count would exceed WEFT_SEMAPHORE_MAX_PERMITS (nothing changed; only a
 * caller that gives back more than it holds can see it, so the result may
 * be ignored where that cannot happen). Context:
 * any thread; never blocks; with waiters queued it takes the semaphore's
 * spin lock and wakes their wakers after releasing it. */
WEFT_API int weft_semaphore_release(weft_semaphore_t *sem, size_t n);
/* Adds n new permits (same as release; the name says they were never
 * acquired). Same returns and context. */
WEFT_API int weft_semaphore_add_permits(weft_semaphore_t *sem, size_t n);

/* Removes up to n available permits for good (without waiting: permits
 * assigned to waiters or held by anyone are not touched) and returns how
 * many it removed. Permits the caller acquired and wants to drop for good
 * need no call: not releasing them is forgetting them. Context: any
 * thread; never blocks. */
WEFT_API size_t weft_semaphore_forget(weft_semaphore_t *sem, size_t n);

/* Closes the semaphore: every queued acquire completes with WEFT_EPIPE
 * (giving back what was assigned to it), and every later acquire and
 * try_acquire fails with WEFT_EPIPE. Permits already held stay held, and
 * may still be released. Idempotent. Context: any thread; takes the
 * semaphore's spin lock, wakes the waiters after releasing it. */
WEFT_API void weft_semaphore_close(weft_semaphore_t *sem);
WEFT_API bool weft_semaphore_is_closed(const weft_semaphore_t *sem);

/* The permits available now (a snapshot: 0 while anyone waits). Context:
 * any thread. */
WEFT_API size_t weft_semaphore_available_permits(const weft_semaphore_t *sem);

#ifdef __cplusplus
}
#endif

#endif
