/* weft/rwlock.h - an async reader-writer lock: write-preferring, FIFO,
 * cancellation-safe, with a cap on concurrent readers. Built on the
 * semaphore (weft/semaphore.h) as Tokio's RwLock is: max_readers permits,
 * a reader takes one, a writer takes them all.
 *
 * Order: requests are served in arrival order. A writer waiting at the
 * head of the queue gathers permits as readers leave, and readers that
 * come after it queue behind it, so a stream of readers cannot starve a
 * writer. Readers queued together behind a writer all run once it leaves
 * (up to the cap).
 *
 * Like the mutex, it guards no data itself (C): in an async function whose
 * frame holds `weft_rwlock_read_t r`:
 *
 *     WEFT_AWAIT(&self->r, weft_rwlock_read(&rw), NULL);
 *     ... read the guarded data ...
 *     weft_rwlock_read_unlock(&rw);
 */
#ifndef WEFT_RWLOCK_H
#define WEFT_RWLOCK_H

#include "semaphore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most concurrent readers a lock may allow. */
#define WEFT_RWLOCK_MAX_READERS WEFT_SEMAPHORE_MAX_PERMITS

/* The fields are private. */
typedef struct weft_rwlock_s {
    weft_semaphore_t sem_; /* max_readers_ permits: a reader holds 1, a writer all */
    size_t max_readers_;
} weft_rwlock_t;

/* The futures of weft_rwlock_read and weft_rwlock_write. Output
 * weft_unit_t: once ready, the caller holds the lock (shared or
 * exclusive). Dropped while waiting, they give back what was assigned to
 * them and wake who can run. Fields private. */
typedef struct weft_rwlock_read_s {
    weft_semaphore_acquire_t acquire_;
} weft_rwlock_read_t;
typedef struct weft_rwlock_write_s {
    weft_semaphore_acquire_t acquire_;
} weft_rwlock_write_t;

/* Initializes *rw unlocked, allowing at most max_readers concurrent
 * readers (1 ..= WEFT_RWLOCK_MAX_READERS; 1 makes it a mutex). Returns 0
 * or WEFT_EINVAL (*rw untouched). Ownership: the caller owns the storage;
 * nothing is allocated. Context: any thread, before any other use. */
WEFT_API WEFT_NODISCARD int weft_rwlock_init(weft_rwlock_t *rw, size_t max_readers);
/* Ends the lock's life: no read or write future may be waiting on it
 * (aborts, naming the call), and no call may use it concurrently or
 * afterwards. Context: any thread. */
WEFT_API void weft_rwlock_destroy(weft_rwlock_t *rw);

/* Futures that lock rw shared (read) or exclusive (write), in arrival
 * order (see above). They do nothing until polled; rw must outlive them.
 * Context: poll from a task of any runtime or a block_on root; they wait
 * by returning WEFT_PENDING, never by blocking the thread. */
WEFT_API WEFT_NODISCARD weft_rwlock_read_t weft_rwlock_read(weft_rwlock_t *rw);
WEFT_API WEFT_NODISCARD weft_rwlock_write_t weft_rwlock_write(weft_rwlock_t *rw);

/* Lock now if possible: 0 (held), or WEFT_EAGAIN (held the other way, the
 * reader cap reached, or someone queued: no barging). Context: any thread;
 * never blocks. */
WEFT_API WEFT_NODISCARD int weft_rwlock_try_read(weft_rwlock_t *rw);
WEFT_API WEFT_NODISCARD int weft_rwlock_try_write(weft_rwlock_t *rw);

/* Give back a shared / exclusive hold, waking who can run next. Unlocks
 * that the lock's state proves wrong (a read_unlock with no reader, a
 * write_unlock while not write-locked, with nobody queued) abort through
 * weft_panic naming the call; others cannot be told apart and are not
 * detected. Context: any thread (not necessarily the locker's); never
 * blocks; with waiters it takes the lock's spin lock and wakes them after
 * releasing it. */
WEFT_API void weft_rwlock_read_unlock(weft_rwlock_t *rw);
WEFT_API void weft_rwlock_write_unlock(weft_rwlock_t *rw);

/* Turns the caller's exclusive hold into a shared one, atomically (no
 * writer can get in between), and lets the readers queued at the head of
 * the queue in with it. A writer queued first stays first: it gathers the
 * released permits and waits for the caller's read_unlock. Aborts, naming
 * the call, when rw is visibly not write-locked. Context: as the unlocks. */
WEFT_API void weft_rwlock_downgrade(weft_rwlock_t *rw);

/* The reader cap given to weft_rwlock_init. Context: any thread. */
WEFT_API size_t weft_rwlock_max_readers(const weft_rwlock_t *rw);

#ifdef __cplusplus
}
#endif

#endif
