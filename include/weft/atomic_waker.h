/* weft/atomic_waker.h - one waker slot shared by a waiter and a waker
 * thread, without a lock (Tokio's AtomicWaker protocol).
 *
 * The task that waits calls weft_atomic_waker_register with its context's
 * waker before checking its condition; any thread calls wake after making
 * the condition true. A wake that races a register is never lost: either
 * the register sees it and wakes the new waker at once, or the wake finds
 * the new waker. Usable by any resource (timers, sockets, channels).
 */
#ifndef WEFT_ATOMIC_WAKER_H
#define WEFT_ATOMIC_WAKER_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The fields are private. state_ is plain storage that sync/atomic_waker.c
 * only ever accesses as an `_Atomic unsigned` (same size and alignment,
 * checked there), so the header has no _Atomic and compiles as C++. */
typedef struct weft_atomic_waker_s {
    unsigned state_;     /* WAITING 0, REGISTERING 1, WAKING 2 (bits) */
    weft_waker_t waker_; /* owned by whoever set REGISTERING or WAKING */
} weft_atomic_waker_t;

#define WEFT_ATOMIC_WAKER_INIT { 0, { NULL, NULL } }

WEFT_API void weft_atomic_waker_init(weft_atomic_waker_t *aw);
/* Stores a clone of w (replacing the previous one unless it would wake the
 * same task). Context: one registering thread at a time (the waiting task);
 * concurrent with any number of wake/take callers. */
WEFT_API void weft_atomic_waker_register(weft_atomic_waker_t *aw, const weft_waker_t *w);
/* Wakes and removes the stored waker, if any. Context: any thread. */
WEFT_API void weft_atomic_waker_wake(weft_atomic_waker_t *aw);
/* Removes the stored waker and returns it (vtable NULL if none), for the
 * caller to wake later, outside its locks. Context: any thread. */
WEFT_API weft_waker_t weft_atomic_waker_take(weft_atomic_waker_t *aw);
/* Drops the stored waker. Context: no concurrent register/wake. */
WEFT_API void weft_atomic_waker_drop(weft_atomic_waker_t *aw);

#ifdef __cplusplus
}
#endif

#endif
