/* weft/mutex.h - an async mutex: fair (FIFO), cancellation-safe, built on
 * the semaphore with one permit (weft/semaphore.h).
 *
 * In C the mutex guards no data itself: it is a lock that the code around
 * the data takes and gives back. The pattern, in an async function whose
 * frame holds `weft_mutex_lock_t l`:
 *
 *     WEFT_AWAIT(&self->l, weft_mutex_lock(&m), NULL);
 *     ... use the data m guards (awaits allowed: the lock is held) ...
 *     weft_mutex_unlock(&m);
 *
 * A lock future that is dropped while it waits (its task aborted, a
 * timeout) leaves the queue and, if the mutex was handed to it meanwhile,
 * hands it on: no unlock is lost. Plain threads lock with
 * weft_mutex_blocking_lock, and any thread may try_lock or unlock.
 * Uncontended, lock and unlock are one compare-and-swap each.
 */
#ifndef WEFT_MUTEX_H
#define WEFT_MUTEX_H

#include "semaphore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The fields are private. */
typedef struct weft_mutex_s {
    weft_semaphore_t sem_; /* one permit: available = unlocked */
} weft_mutex_t;

/* The future of weft_mutex_lock. Output weft_unit_t: once it is ready the
 * caller holds the mutex. Fields private. */
typedef struct weft_mutex_lock_s {
    weft_semaphore_acquire_t acquire_;
} weft_mutex_lock_t;

/* Initializes *m unlocked. Ownership: the caller owns the storage; nothing
 * is allocated. Context: any thread, before any other use of m. */
WEFT_API void weft_mutex_init(weft_mutex_t *m);
/* Ends the mutex's life: no lock future may be waiting on it (aborts,
 * naming the call), and no call may use it concurrently or afterwards.
 * It may be locked. Context: any thread. */
WEFT_API void weft_mutex_destroy(weft_mutex_t *m);

/* A future that locks m, in arrival order (see weft_mutex_lock_t). It does
 * nothing until polled; m must outlive it. Context: construct anywhere;
 * poll from a task of any runtime or a block_on root; it waits by
 * returning WEFT_PENDING, never by blocking the thread. */
WEFT_API WEFT_NODISCARD weft_mutex_lock_t weft_mutex_lock(weft_mutex_t *m);

/* Locks m if it is unlocked and nobody waits for it. Returns 0 (the
 * caller holds it) or WEFT_EAGAIN. Context: any thread; never blocks. */
WEFT_API WEFT_NODISCARD int weft_mutex_try_lock(weft_mutex_t *m);

/* Locks m from a plain thread, blocking it (parked on a futex) until m is
 * handed over, in the same FIFO order as the lock futures. Aborts, naming
 * the call, on a runtime worker thread, inside weft_runtime_block_on, or
 * inside a task: blocking there would stall the runtime (await
 * weft_mutex_lock instead). A blocking job (weft_spawn_blocking) may call
 * it. Context: plain threads only; may block indefinitely. */
WEFT_API void weft_mutex_blocking_lock(weft_mutex_t *m);

/* Unlocks m, handing it to the oldest waiter, if any, and waking it.
 * Unlocking a mutex that is not locked aborts through weft_panic naming
 * the call (an unlock by a non-holder while someone else holds it cannot
 * be told apart from theirs, and is not detected). Context: any thread
 * (not necessarily the one that locked); never blocks; with waiters it
 * takes the mutex's spin lock and wakes the next holder after it. */
WEFT_API void weft_mutex_unlock(weft_mutex_t *m);

/* Whether m is locked now (a snapshot, for assertions and tests). Context:
 * any thread. */
WEFT_API bool weft_mutex_is_locked(const weft_mutex_t *m);

#ifdef __cplusplus
}
#endif

#endif
