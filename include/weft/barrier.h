/* weft/barrier.h - an async barrier: n tasks wait until all n have
 * arrived, then all go on, and exactly one of them is told it is the
 * leader (Tokio's Barrier).
 *
 * The barrier lives in the caller's storage (weft_barrier_init) and is
 * reusable: once a group of n is released, the next n arrivals form the
 * next group (a generation count keeps the groups apart: an arrival of
 * group k+1 never releases, or is released with, group k). A wait is a
 * future embedded in its awaiter (no allocation per wait).
 *
 * Cancellation: a wait dropped before its group was released WITHDRAWS
 * its arrival (the group then needs one more), so a wait under a timeout
 * or a cancelled task never releases a group early, and waiting again
 * counts once. A wait dropped after its group was released changes
 * nothing (its arrival was used). docs/barrier-and-oncecell.md is the
 * guide.
 *
 *     WEFT_AWAIT(&self->w, weft_barrier_wait(&barrier), &self->leader);
 *     if (self->leader) { ... once per group ... }
 */
#ifndef WEFT_BARRIER_H
#define WEFT_BARRIER_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The fields are private. lock_ is plain storage that sync/barrier.c only
 * accesses as an _Atomic unsigned (sync/waiters.h), so the header
 * compiles as C++. */
typedef struct weft_barrier_s {
    unsigned lock_;         /* spin lock over everything below (sync/waiters.h) */
    unsigned magic_;        /* set while initialised: misuse checks */
    size_t n_;              /* the group size */
    size_t arrived_;        /* arrivals of the current generation still waiting */
    uint64_t gen_;          /* groups released so far */
    weft__dnode_t waiters_; /* the current generation's waits, oldest first */
} weft_barrier_t;

/* The future of weft_barrier_wait. Output bool: true for exactly one wait
 * of each group (the leader: the n-th arrival, which completes at once),
 * false for the others. Awaited with a NULL output it still arrives and
 * waits; only the answer is discarded. Dropped while it waits, it
 * withdraws its arrival (see the file comment). Spends one unit of the
 * cooperative budget per poll (refunded when it returns WEFT_PENDING).
 * Must not move after its first poll. Fields private. */
typedef struct weft_barrier_wait_s {
    weft_future_t future;
    weft_barrier_t *barrier_;
    weft__dnode_t node_;  /* in barrier_->waiters_, or a releaser's batch (the barrier's lock) */
    weft_waker_t waker_;  /* the queued wait's waker (the barrier's lock) */
    uint64_t gen_;        /* the generation it arrived in */
    unsigned released_;   /* _Atomic: 1 once the releaser is done with it */
    unsigned char phase_; /* not polled, queued, done */
} weft_barrier_wait_t;

/* Initializes *b for groups of n (n >= 1; n = 1 releases every wait at
 * once, each as its own leader). Returns 0, or WEFT_EINVAL when n is 0
 * (*b untouched). Ownership: the caller owns the storage; nothing is
 * allocated. Context: any thread, before any other use of b. */
WEFT_API WEFT_NODISCARD int weft_barrier_init(weft_barrier_t *b, size_t n);

/* Ends the barrier's life. A wait still queued on it aborts the process
 * ("weft_barrier_destroy: waits still queued"), as does a barrier that is
 * not initialised; no call may use it concurrently or afterwards. Frees
 * nothing. Context: any thread. */
WEFT_API void weft_barrier_destroy(weft_barrier_t *b);

/* A future that arrives at b and waits for the rest of its group (see
 * weft_barrier_wait_t for its output and its drop). It does nothing until
 * polled: the arrival happens at the first poll. b must outlive it.
 * Aborts when b is not initialised. Context: construct anywhere; poll
 * from a task of any runtime or a block_on root; never blocks the thread
 * (it waits by returning WEFT_PENDING); the releasing poll takes b's spin
 * lock and wakes the group's wakers after releasing it, 32 at a time. */
WEFT_API WEFT_NODISCARD weft_barrier_wait_t weft_barrier_wait(weft_barrier_t *b);

/* The group size n given to weft_barrier_init. Context: any thread. */
WEFT_API size_t weft_barrier_size(const weft_barrier_t *b);

#ifdef __cplusplus
}
#endif

#endif
