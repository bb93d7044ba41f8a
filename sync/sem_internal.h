/* sync/sem_internal.h - what the mutex and the rwlock use of the semaphore
 * (internal): its acquire future under another vtable, and a release that
 * checks the caller really held what it gives back. */
#ifndef WEFT_SYNC_SEM_INTERNAL_H
#define WEFT_SYNC_SEM_INTERNAL_H

#include "weft/semaphore.h"

/* An acquire future of n permits whose vtable is vt (its poll and drop
 * call the two functions below). */
weft_semaphore_acquire_t weft__semaphore_acquire_with(weft_semaphore_t *sem, size_t n,
                                                      const weft_future_vtable_t *vt);
/* The acquire's poll: READY with *rc = 0 / WEFT_EPIPE / WEFT_EINVAL, or
 * PENDING. Context: as weft_semaphore_acquire. */
weft_poll_t weft__semaphore_acquire_poll(weft_semaphore_acquire_t *a, weft_context_t *cx, int *rc);
/* The acquire's drop: gives back what was assigned to a waiting acquire. */
void weft__semaphore_acquire_drop(weft_semaphore_acquire_t *a);

/* Releases n permits; aborts through weft_panic with `what` when, with
 * nobody queued, the available count plus n would exceed `limit` (the
 * caller gives back what it did not hold: an unlock of an unlocked lock).
 * With waiters queued the count is 0 and the check cannot tell. */
void weft__semaphore_release_checked(weft_semaphore_t *sem, size_t n, size_t limit, const char *what);

#endif
