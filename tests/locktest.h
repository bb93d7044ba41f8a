/* tests/locktest.h - helpers of the lock suites (test_semaphore.c,
 * test_mutex.c, test_rwlock.c, test_stress_locks.c): a waiter polled by
 * hand with testlib's counting waker, and a task that runs a lock
 * scenario's body. */
#ifndef WEFT_LOCKTEST_H
#define WEFT_LOCKTEST_H

#include "testlib.h"


/* A waiter polled by hand: its counting waker and a context. */
typedef struct {
    counter_t c;
    weft_waker_t w;
    weft_context_t cx;
} hand_t;
static inline void hand_init(hand_t *h)
{
    memset(h, 0, sizeof *h);
    h->w = (weft_waker_t){ &counter_vt, &h->c };
    h->cx.waker = &h->w;
}
/* Every clone the primitive took was dropped or woken (by value). */
#define ASSERT_HAND_BALANCED(h) ck_assert_int_eq((h)->c.clones, (h)->c.drops)

static inline weft_poll_t hand_poll(hand_t *h, void *fut, void *out)
{
    return weft_future_poll(WEFT_FUTURE(fut), &h->cx, out);
}


#endif
