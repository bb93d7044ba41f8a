/* tests/test_mpsc.c - mpsc channels: every call and its closed, full,
 * empty and cancelled paths, FIFO per sender, "closed only after drained",
 * permits, sender clones, recv_many, value destructors, blocking send/recv
 * from plain threads, and producers/consumer tasks on each runtime shape. */
#include "testlib.h"

static counter_t ctr;
static weft_waker_t cw;
static weft_context_t tcx;
static void setup(void)
{
    memset(&ctr, 0, sizeof ctr);
    cw = counter_waker(&ctr);
    tcx.waker = &cw;
}

static _Atomic int value_drops;
static void drop_value(void *v)
{
    free(*(char **)v);
    value_drops++;
}

START_TEST(bad_input)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(0, 8, NULL, &tx, &rx), WEFT_EINVAL);
    ck_assert_int_eq(weft_mpsc_bounded(4, 0, NULL, &tx, &rx), WEFT_EINVAL);
    ck_assert_int_eq(weft_mpsc_bounded(4, WEFT_MPSC_MAX_VALUE + 1, NULL, &tx, &rx), WEFT_EINVAL);
    ck_assert_int_eq(weft_mpsc_bounded(WEFT_MPSC_MAX_CAP + 1, 1, NULL, &tx, &rx), WEFT_EINVAL);
    ck_assert_int_eq(weft_mpsc_unbounded(0, NULL, &tx, &rx), WEFT_EINVAL);
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_mpsc_bounded(4, 8, NULL, &tx, &rx), WEFT_ENOMEM);
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_mpsc_unbounded(8, NULL, &tx, &rx), WEFT_ENOMEM);
    weft__alloc_fail_after(2); /* the first block */
    ck_assert_int_eq(weft_mpsc_unbounded(8, NULL, &tx, &rx), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(bounded_full_empty_fifo)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(3, sizeof(int), NULL, &tx, &rx), 0);
    int v, got = -1, rc = -1;
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), WEFT_EAGAIN);
    for (v = 0; v < 3; v++)
        ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), 0);
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), WEFT_EAGAIN);
    /* A send waits for room, and is woken by a receive. */
    int nine = 9;
    weft_mpsc_send_t s = weft_mpsc_send(&tx, &nine);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s), &tcx, &rc), WEFT_PENDING);
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), WEFT_EAGAIN); /* no barging past it */
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got, 0);
    ck_assert_int_eq(ctr.wakes, 1);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    weft_future_drop(WEFT_FUTURE(&s));
    int want[] = { 1, 2, 9 };
    for (int i = 0; i < 3; i++) {
        weft_mpsc_recv_t r = weft_mpsc_recv(&rx, &got);
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_READY);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(got, want[i]);
        weft_future_drop(WEFT_FUTURE(&r));
    }
    /* An empty receive waits and is woken by a send. */
    weft_mpsc_recv_t r = weft_mpsc_recv(&rx, &got);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_PENDING);
    int wakes = ctr.wakes;
    v = 42;
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), 0);
    ck_assert_int_eq(ctr.wakes, wakes + 1);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(got, 42);
    weft_future_drop(WEFT_FUTURE(&r));
    weft_mpsc_tx_drop(&tx);
    weft_mpsc_tx_drop(&tx); /* idempotent */
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), WEFT_EPIPE);
    weft_mpsc_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(closed_only_after_drained)
{
    for (int bounded = 0; bounded < 2; bounded++) {
        weft_mpsc_tx_t tx, tx2;
        weft_mpsc_rx_t rx;
        ck_assert_int_eq(bounded ? weft_mpsc_bounded(8, sizeof(int), NULL, &tx, &rx)
                                 : weft_mpsc_unbounded(sizeof(int), NULL, &tx, &rx), 0);
        weft_mpsc_tx_clone(&tx, &tx2);
        int v = 1, got = 0, rc = -1;
        ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), 0);
        v = 2;
        ck_assert_int_eq(weft_mpsc_try_send(&tx2, &v), 0);
        weft_mpsc_tx_drop(&tx);
        ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0);
        weft_mpsc_recv_t r = weft_mpsc_recv(&rx, &got);
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_READY);
        ck_assert_int_eq(got, 2);
        weft_future_drop(WEFT_FUTURE(&r));
        r = weft_mpsc_recv(&rx, &got);
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_PENDING); /* tx2 alive */
        weft_mpsc_tx_drop(&tx2);
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_READY);
        ck_assert_int_eq(rc, WEFT_EPIPE);
        weft_future_drop(WEFT_FUTURE(&r));
        weft_mpsc_rx_drop(&rx);
    }
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(close_keeps_sent_fails_waiters)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(1, sizeof(int), NULL, &tx, &rx), 0);
    int v = 5, got = 0, rc = -1;
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), 0);
    weft_mpsc_send_t s = weft_mpsc_send(&tx, &v);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s), &tcx, &rc), WEFT_PENDING);
    ck_assert(!weft_mpsc_tx_is_closed(&tx));
    weft_mpsc_close(&rx);
    weft_mpsc_close(&rx); /* idempotent */
    ck_assert(weft_mpsc_tx_is_closed(&tx));
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EPIPE);
    weft_future_drop(WEFT_FUTURE(&s));
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), WEFT_EPIPE);
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0); /* sent before the close */
    ck_assert_int_eq(got, 5);
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), WEFT_EPIPE);
    weft_mpsc_permit_t p;
    weft_mpsc_reserve_t res = weft_mpsc_reserve(&tx, &p);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&res), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EPIPE);
    weft_future_drop(WEFT_FUTURE(&res));
    weft_mpsc_tx_drop(&tx);
    weft_mpsc_rx_drop(&rx);
    /* Unbounded: close makes sends fail too. */
    ck_assert_int_eq(weft_mpsc_unbounded(sizeof(int), NULL, &tx, &rx), 0);
    weft_mpsc_close(&rx);
    s = weft_mpsc_send(&tx, &v);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EPIPE);
    weft_future_drop(WEFT_FUTURE(&s));
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), WEFT_EPIPE);
    weft_mpsc_rx_drop(&rx);
    ck_assert(weft_mpsc_tx_is_closed(&tx));
    weft_mpsc_tx_drop(&tx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(unbounded_blocks_and_recv_many)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_unbounded(sizeof(long), NULL, &tx, &rx), 0);
    long allocs = weft__alloc_count();
    for (int round = 0; round < 3; round++) {
        for (long i = 0; i < 200; i++) {
            weft_mpsc_send_t s = weft_mpsc_send(&tx, &i);
            int rc = -1;
            ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s), &tcx, &rc), WEFT_READY);
            ck_assert_int_eq(rc, 0);
            weft_future_drop(WEFT_FUTURE(&s));
        }
        long buf[64], next = 0;
        while (next < 200) {
            size_t n = 0;
            weft_mpsc_recv_t r = weft_mpsc_recv_many(&rx, buf, 64);
            ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &n), WEFT_READY);
            weft_future_drop(WEFT_FUTURE(&r));
            ck_assert_uint_ge(n, 1);
            for (size_t k = 0; k < n; k++)
                ck_assert_int_eq(buf[k], next++);
        }
    }
    /* Blocks, not messages: 600 messages took at most a block per 32. */
    ck_assert_int_le(weft__alloc_count() - allocs, 600 / 32 + 2);
    weft_mpsc_tx_drop(&tx);
    long buf[4];
    size_t n = 9;
    weft_mpsc_recv_t r = weft_mpsc_recv_many(&rx, buf, 4);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &n), WEFT_READY);
    ck_assert_uint_eq(n, 0);
    weft_future_drop(WEFT_FUTURE(&r));
    weft_mpsc_rx_drop(&rx);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(bounded_allocates_nothing_per_message)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(4, sizeof(long), NULL, &tx, &rx), 0);
    long allocs = weft__alloc_count();
    for (long i = 0; i < 1000; i++) {
        long got = -1;
        ck_assert_int_eq(weft_mpsc_try_send(&tx, &i), 0);
        ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0);
        ck_assert_int_eq(got, i);
    }
    ck_assert_int_eq(weft__alloc_count(), allocs);
    weft_mpsc_tx_drop(&tx);
    weft_mpsc_rx_drop(&rx);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(permits)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(1, sizeof(int), NULL, &tx, &rx), 0);
    weft_mpsc_permit_t p, q;
    int rc = -1, v = 7, got = 0;
    weft_mpsc_reserve_t res = weft_mpsc_reserve(&tx, &p);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&res), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    weft_future_drop(WEFT_FUTURE(&res));
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), WEFT_EAGAIN); /* the slot is reserved */
    /* A second reserve waits; dropping the unused permit hands it the slot. */
    res = weft_mpsc_reserve(&tx, &q);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&res), &tcx, &rc), WEFT_PENDING);
    weft_mpsc_permit_drop(&p);
    weft_mpsc_permit_drop(&p); /* a dropped permit is ignored */
    ck_assert_int_eq(ctr.wakes, 1);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&res), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    weft_future_drop(WEFT_FUTURE(&res));
    /* The permit keeps the channel open after the last sender goes. */
    weft_mpsc_tx_drop(&tx);
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), WEFT_EAGAIN);
    ck_assert_int_eq(weft_mpsc_permit_send(&q, &v), 0);
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got, 7);
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), WEFT_EPIPE);
    weft_mpsc_rx_drop(&rx);
    /* permit_send after close: not taken. */
    ck_assert_int_eq(weft_mpsc_unbounded(sizeof(int), NULL, &tx, &rx), 0);
    res = weft_mpsc_reserve(&tx, &p);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&res), &tcx, &rc), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&res));
    weft_mpsc_close(&rx);
    ck_assert_int_eq(weft_mpsc_permit_send(&p, &v), WEFT_EPIPE);
    /* A reserve whose output nobody wants gives the permit straight back. */
    res = weft_mpsc_reserve(&tx, &p);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&res), &tcx, NULL), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&res));
    weft_mpsc_tx_drop(&tx);
    weft_mpsc_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(cancelled_send_and_recv)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(1, sizeof(int), NULL, &tx, &rx), 0);
    int a = 1, b = 2, c = 3, got = 0, rc = -1;
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &a), 0);
    weft_mpsc_send_t s1 = weft_mpsc_send(&tx, &b), s2 = weft_mpsc_send(&tx, &c);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s1), &tcx, &rc), WEFT_PENDING);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s2), &tcx, &rc), WEFT_PENDING);
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0); /* room goes to s1 */
    weft_future_drop(WEFT_FUTURE(&s1));                 /* ... which hands it on to s2 */
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s2), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    weft_future_drop(WEFT_FUTURE(&s2));
    /* A dropped pending recv loses nothing. */
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got, 3);
    weft_mpsc_recv_t r = weft_mpsc_recv(&rx, &got);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_int_eq(ctr.clones, ctr.drops); /* its waker went back */
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &a), 0);
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got, 1);
    weft_mpsc_tx_drop(&tx);
    weft_mpsc_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(drop_values)
{
    value_drops = 0;
    for (int bounded = 0; bounded < 2; bounded++) {
        for (int rx_last = 0; rx_last < 2; rx_last++) {
            weft_mpsc_tx_t tx;
            weft_mpsc_rx_t rx;
            ck_assert_int_eq(bounded ? weft_mpsc_bounded(64, sizeof(char *), drop_value, &tx, &rx)
                                     : weft_mpsc_unbounded(sizeof(char *), drop_value, &tx, &rx), 0);
            for (int i = 0; i < 40; i++) {
                char *p = malloc(8);
                ck_assert_int_eq(weft_mpsc_try_send(&tx, &p), 0);
            }
            char *got = NULL;
            ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0);
            free(got); /* a received value is the receiver's */
            if (rx_last) {
                weft_mpsc_tx_drop(&tx);
                weft_mpsc_rx_drop(&rx);
            } else {
                weft_mpsc_rx_drop(&rx);
                char *p = malloc(8);
                ck_assert_int_eq(weft_mpsc_try_send(&tx, &p), WEFT_EPIPE); /* not taken */
                free(p);
                weft_mpsc_tx_drop(&tx);
            }
        }
    }
    ck_assert_int_eq(value_drops, 4 * 39);
    ASSERT_NO_LIVE();
}
END_TEST

/* Values larger than the drain's stack buffer: a channel dropped with such
 * values queued drops each one, with every allocation it needs made when it
 * was created (none may fail at the drop). */
typedef struct {
    char *owned;
    char pad[1000];
} big_t;
static void drop_big(void *v)
{
    big_t b;
    memcpy(&b, v, sizeof b);
    free(b.owned);
    value_drops++;
}

START_TEST(drop_large_values)
{
    value_drops = 0;
    for (int bounded = 0; bounded < 2; bounded++) {
        weft_mpsc_tx_t tx;
        weft_mpsc_rx_t rx;
        ck_assert_int_eq(bounded ? weft_mpsc_bounded(8, sizeof(big_t), drop_big, &tx, &rx)
                                 : weft_mpsc_unbounded(sizeof(big_t), drop_big, &tx, &rx), 0);
        for (int i = 0; i < 5; i++) {
            big_t b = { malloc(8), { 0 } };
            b.pad[999] = (char)i;
            ck_assert_int_eq(weft_mpsc_try_send(&tx, &b), 0);
        }
        weft_mpsc_tx_drop(&tx);
        long allocs = weft__alloc_count();
        weft__alloc_fail_after(1); /* the next allocation would fail: the drop makes none */
        weft_mpsc_rx_drop(&rx);
        weft__alloc_fail_after(-1);
        ck_assert_int_eq(weft__alloc_count(), allocs);
    }
    ck_assert_int_eq(value_drops, 2 * 5);
    ASSERT_NO_LIVE();
}
END_TEST

/* A permit holds room, not a place in the queue: messages sent after it
 * are received before its own, and the room it held is exact. */
START_TEST(permits_hold_room_not_places)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(4, sizeof(int), NULL, &tx, &rx), 0);
    weft_mpsc_permit_t p1, p2;
    int rc = -1, v, got = -1;
    weft_mpsc_reserve_t res = weft_mpsc_reserve(&tx, &p1);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&res), &tcx, &rc), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&res));
    res = weft_mpsc_reserve(&tx, &p2);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&res), &tcx, &rc), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&res));
    for (v = 1; v <= 2; v++)
        ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), 0);
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), WEFT_EAGAIN); /* two slots held by the permits */
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0); /* not held up by the permits */
    ck_assert_int_eq(got, 1);
    v = 20;
    ck_assert_int_eq(weft_mpsc_permit_send(&p2, &v), 0);
    v = 10;
    ck_assert_int_eq(weft_mpsc_permit_send(&p1, &v), 0);
    int want[] = { 2, 20, 10 };
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0);
        ck_assert_int_eq(got, want[i]);
    }
    /* All the room is back: exactly cap sends fit. */
    for (v = 0; v < 4; v++)
        ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), 0);
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), WEFT_EAGAIN);
    weft_mpsc_tx_drop(&tx);
    weft_mpsc_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* A waiting receive is woken once, by the first message (not once per
 * message), and by the close or the last sender's drop. */
START_TEST(receiver_woken_once_per_wait)
{
    for (int bounded = 0; bounded < 2; bounded++) {
        for (int ending = 0; ending < 2; ending++) {
            weft_mpsc_tx_t tx;
            weft_mpsc_rx_t rx;
            ck_assert_int_eq(bounded ? weft_mpsc_bounded(8, sizeof(int), NULL, &tx, &rx)
                                     : weft_mpsc_unbounded(sizeof(int), NULL, &tx, &rx), 0);
            int got = -1, rc = -1, wakes = ctr.wakes;
            weft_mpsc_recv_t r = weft_mpsc_recv(&rx, &got);
            ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_PENDING);
            for (int v = 1; v <= 3; v++)
                ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), 0);
            ck_assert_int_eq(ctr.wakes, wakes + 1);
            ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_READY);
            ck_assert_int_eq(got, 1);
            weft_future_drop(WEFT_FUTURE(&r));
            for (int v = 2; v <= 3; v++) {
                ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0);
                ck_assert_int_eq(got, v);
            }
            /* Waiting again: the end of the channel wakes it. */
            r = weft_mpsc_recv(&rx, &got);
            ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_PENDING);
            if (ending == 0)
                weft_mpsc_close(&rx);
            else
                weft_mpsc_tx_drop(&tx);
            ck_assert_int_eq(ctr.wakes, wakes + 2);
            ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_READY);
            ck_assert_int_eq(rc, WEFT_EPIPE);
            weft_future_drop(WEFT_FUTURE(&r));
            weft_mpsc_tx_drop(&tx);
            weft_mpsc_rx_drop(&rx);
            ck_assert_int_eq(ctr.clones, ctr.drops);
        }
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* A waiting send that was given room but not polled before the close
 * fails without taking its value; a waiting reserve given room gets its
 * permit, whose send then fails. */
START_TEST(served_then_closed)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(1, sizeof(int), NULL, &tx, &rx), 0);
    int a = 1, b = 2, got = -1, rc = -1;
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &a), 0);
    weft_mpsc_send_t s = weft_mpsc_send(&tx, &b);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s), &tcx, &rc), WEFT_PENDING);
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0); /* serves s */
    weft_mpsc_close(&rx);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EPIPE);
    weft_future_drop(WEFT_FUTURE(&s));
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), WEFT_EPIPE);
    weft_mpsc_rx_drop(&rx);
    weft_mpsc_tx_drop(&tx);

    ck_assert_int_eq(weft_mpsc_bounded(1, sizeof(int), NULL, &tx, &rx), 0);
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &a), 0);
    weft_mpsc_permit_t p;
    weft_mpsc_reserve_t res = weft_mpsc_reserve(&tx, &p);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&res), &tcx, &rc), WEFT_PENDING);
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0); /* serves the reserve */
    weft_mpsc_close(&rx);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&res), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    weft_future_drop(WEFT_FUTURE(&res));
    ck_assert_int_eq(weft_mpsc_permit_send(&p, &b), WEFT_EPIPE);
    weft_mpsc_tx_drop(&tx);
    weft_mpsc_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* One receive of several values serves as many waiting senders. */
START_TEST(recv_many_serves_waiters)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(2, sizeof(int), NULL, &tx, &rx), 0);
    int v[4] = { 1, 2, 3, 4 }, buf[4], rc = -1;
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(weft_mpsc_try_send(&tx, &v[i]), 0);
    weft_mpsc_send_t s[2] = { weft_mpsc_send(&tx, &v[2]), weft_mpsc_send(&tx, &v[3]) };
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s[i]), &tcx, &rc), WEFT_PENDING);
    int wakes = ctr.wakes;
    size_t n = 0;
    weft_mpsc_recv_t r = weft_mpsc_recv_many(&rx, buf, 4);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &n), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ctr.wakes, wakes + 2);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s[i]), &tcx, &rc), WEFT_READY);
        ck_assert_int_eq(rc, 0);
        weft_future_drop(WEFT_FUTURE(&s[i]));
    }
    r = weft_mpsc_recv_many(&rx, buf, 4);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &n), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(buf[0], 3);
    ck_assert_int_eq(buf[1], 4);
    weft_mpsc_tx_drop(&tx);
    weft_mpsc_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* A receive future hands the room it frees to waiting senders in
 * batches: every cap/8 slots (4 here), or as soon as it finds the ring
 * empty (before it parks); try_recv serves at once. The
 * waiters are served in order, and no room is lost. */
/* A receiver that takes one value and then waits for its only sender
 * (blocked on a full channel) must not strand the slot it freed: the
 * sender's next send completes, as with a channel that hands over each
 * slot at once. */
START_TEST(one_waiter_served_by_the_first_slot)
{
    enum { CAP = 64 };
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(CAP, sizeof(int), NULL, &tx, &rx), 0);
    int v = 7, got = -1, rc = -1;
    for (int i = 0; i < CAP; i++)
        ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), 0);
    weft_mpsc_send_t s = weft_mpsc_send(&tx, &v);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s), &tcx, &rc), WEFT_PENDING);
    int wakes = ctr.wakes;
    weft_mpsc_recv_t r = weft_mpsc_recv(&rx, &got);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_int_eq(ctr.wakes, wakes + 1); /* served and woken by this one slot */
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    weft_future_drop(WEFT_FUTURE(&s));
    weft_mpsc_rx_drop(&rx);
    weft_mpsc_tx_drop(&tx);
}
END_TEST

START_TEST(receiver_serves_in_batches)
{
    enum { CAP = 32, BATCH = CAP / 8 };
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(CAP, sizeof(int), NULL, &tx, &rx), 0);
    int v[CAP + 6], got = -1, rc = -1;
    for (int i = 0; i < CAP + 6; i++)
        v[i] = i;
    for (int i = 0; i < CAP; i++)
        ck_assert_int_eq(weft_mpsc_try_send(&tx, &v[i]), 0);
    weft_mpsc_send_t s[6];
    for (int i = 0; i < 6; i++) {
        s[i] = weft_mpsc_send(&tx, &v[CAP + i]);
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s[i]), &tcx, &rc), WEFT_PENDING);
    }
    int wakes = ctr.wakes;
    for (int i = 0; i < BATCH; i++) {
        ck_assert_int_eq(ctr.wakes, wakes); /* room gathered, nobody served yet */
        weft_mpsc_recv_t r = weft_mpsc_recv(&rx, &got);
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_READY);
        weft_future_drop(WEFT_FUTURE(&r));
        ck_assert_int_eq(got, i);
    }
    ck_assert_int_eq(ctr.wakes, wakes + BATCH); /* the first BATCH waiters, together */
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0); /* try_recv serves at once */
    ck_assert_int_eq(ctr.wakes, wakes + BATCH + 1);
    for (int i = 0; i <= BATCH; i++) { /* in order */
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s[i]), &tcx, &rc), WEFT_READY);
        ck_assert_int_eq(rc, 0);
        weft_future_drop(WEFT_FUTURE(&s[i]));
    }
    weft_mpsc_recv_t r = weft_mpsc_recv(&rx, &got);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&r));
    /* Five waiters were served; the one left (s[5]) gets this slot at once:
     * no freed slot waits for a batch while it is enough for every waiter. */
    ck_assert_int_eq(ctr.wakes, wakes + BATCH + 2);
    weft_mpsc_close(&rx); /* the waiters left fail (s[5] served but not polled: fails too) */
    for (int i = BATCH + 1; i < 6; i++) {
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s[i]), &tcx, &rc), WEFT_READY);
        ck_assert_int_eq(rc, WEFT_EPIPE);
        weft_future_drop(WEFT_FUTURE(&s[i]));
    }
    for (int i = BATCH + 2; i <= CAP + BATCH; i++) {
        ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), 0);
        ck_assert_int_eq(got, i);
    }
    ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), WEFT_EPIPE);
    weft_mpsc_rx_drop(&rx);
    weft_mpsc_tx_drop(&tx);

    /* A receive of several values serves once it took BATCH; room is
     * exact after a full round of waiting and draining. */
    ck_assert_int_eq(weft_mpsc_bounded(CAP, sizeof(int), NULL, &tx, &rx), 0);
    for (int i = 0; i < CAP; i++)
        ck_assert_int_eq(weft_mpsc_try_send(&tx, &v[i]), 0);
    s[0] = weft_mpsc_send(&tx, &v[CAP]);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s[0]), &tcx, &rc), WEFT_PENDING);
    wakes = ctr.wakes;
    int buf[CAP];
    size_t n = 0;
    r = weft_mpsc_recv_many(&rx, buf, CAP - 1); /* BATCH or more: serves */
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &n), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_uint_eq(n, CAP - 1);
    ck_assert_int_eq(ctr.wakes, wakes + 1);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s[0]), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    weft_future_drop(WEFT_FUTURE(&s[0]));
    s[0] = weft_mpsc_send(&tx, &v[CAP + 1]);
    for (int i = 0; i < CAP - 2; i++) /* full again, one waiter */
        ck_assert_int_eq(weft_mpsc_try_send(&tx, &v[i]), 0);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s[0]), &tcx, &rc), WEFT_PENDING);
    wakes = ctr.wakes;
    for (int i = 0; i < CAP; i++) { /* takes everything; on the way... */
        r = weft_mpsc_recv(&rx, &got);
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_READY);
        weft_future_drop(WEFT_FUTURE(&r));
    }
    ck_assert_int_ge(ctr.wakes, wakes + 1); /* ...served it by then at the latest */
    r = weft_mpsc_recv(&rx, &got);          /* empty: parks until the served send lands */
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_PENDING);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&s[0]), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    weft_future_drop(WEFT_FUTURE(&s[0]));
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(got, CAP + 1);
    weft_future_drop(WEFT_FUTURE(&r));
    /* No room lost or made up. */
    for (int i = 0; i < CAP; i++)
        ck_assert_int_eq(weft_mpsc_try_send(&tx, &v[i]), 0);
    ck_assert_int_eq(weft_mpsc_try_send(&tx, &v[0]), WEFT_EAGAIN);
    weft_mpsc_tx_drop(&tx);
    weft_mpsc_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* Positions count laps modulo a power of two: run a channel across the
 * wrap, for capacities that are and are not powers of two, with permits
 * in the mix; order and room stay exact. */
void weft__mpsc_test_start_lap(weft_mpsc_rx_t *rx, uint64_t lap);

START_TEST(positions_wrap)
{
    static const size_t caps[] = { 1, 3, 4, 5 };
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        size_t cap = caps[k];
        weft_mpsc_tx_t tx;
        weft_mpsc_rx_t rx;
        ck_assert_int_eq(weft_mpsc_bounded(cap, sizeof(long), NULL, &tx, &rx), 0);
        weft__mpsc_test_start_lap(&rx, (uint64_t)-2); /* two laps before the wrap */
        long next_in = 0, next_out = 0, got = -1;
        for (int round = 0; round < 5; round++) {
            weft_mpsc_permit_t p;
            int rc = -1;
            weft_mpsc_reserve_t res = weft_mpsc_reserve(&tx, &p);
            ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&res), &tcx, &rc), WEFT_READY);
            weft_future_drop(WEFT_FUTURE(&res));
            size_t sent = 1;
            while (weft_mpsc_try_send(&tx, &next_in) == 0) {
                next_in++;
                sent++;
            }
            ck_assert_uint_eq(sent, cap); /* the permit's slot and cap - 1 more */
            ck_assert_int_eq(weft_mpsc_permit_send(&p, &next_in), 0);
            next_in++;
            while (weft_mpsc_try_recv(&rx, &got) == 0)
                ck_assert_int_eq(got, next_out++);
        }
        ck_assert_int_eq(next_out, next_in);
        weft_mpsc_tx_drop(&tx);
        ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), WEFT_EPIPE);
        weft_mpsc_rx_drop(&rx);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Plain threads --------------------------------------------------------------- */

static weft_mpsc_tx_t g_tx, g_txs[2];
static void *blocking_producer(void *arg)
{
    weft_mpsc_tx_t tx = *(weft_mpsc_tx_t *)arg;
    for (long i = 0; i < 2000; i++)
        if (!WEFT_TEST_CHECK_INT_EQ(weft_mpsc_blocking_send(&tx, &i), 0))
            break;
    weft_mpsc_tx_drop(&tx);
    return NULL;
}

START_TEST(blocking_threads)
{
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(4, sizeof(long), NULL, &g_tx, &rx), 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        weft_mpsc_tx_clone(&g_tx, &g_txs[i]);
        ck_assert_int_eq(pthread_create(&t[i], NULL, blocking_producer, &g_txs[i]), 0);
    }
    weft_mpsc_tx_drop(&g_tx);
    long got, sum = 0, count = 0;
    while (weft_mpsc_blocking_recv(&rx, &got) == 0) {
        sum += got;
        count++;
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(count, 4000);
    ck_assert_int_eq(sum, 2 * 1999 * 2000 / 2);
    weft_mpsc_rx_drop(&rx);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- On each runtime shape ----------------------------------------------------------- */

#define PRODUCERS 4
#define PER_PRODUCER 3000

typedef struct {
    WEFT_FRAME;
    weft_mpsc_tx_t tx;
    uint64_t id, i, v;
    int rc;
    weft_mpsc_send_t send;
    weft_mpsc_reserve_t res;
    weft_mpsc_permit_t permit;
} producer_t;

WEFT_ASYNC(producer_t, producer, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < PER_PRODUCER; self->i++) {
        self->v = self->id << 32 | self->i;
        if (self->i % 3 == 0) {
            WEFT_AWAIT(&self->res, weft_mpsc_reserve(&self->tx, &self->permit), &self->rc);
            if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
                break;
            self->rc = weft_mpsc_permit_send(&self->permit, &self->v);
        } else {
            WEFT_AWAIT(&self->send, weft_mpsc_send(&self->tx, &self->v), &self->rc);
        }
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
            break;
    }
    weft_mpsc_tx_drop(&self->tx);
    WEFT_RETURN(0);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_mpsc_rx_t rx;
    uint64_t buf[16];
    uint64_t next[PRODUCERS];
    size_t n, k;
    long total;
    weft_mpsc_recv_t recv;
} consumer_t;

WEFT_ASYNC(consumer_t, consumer, long)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->recv, weft_mpsc_recv_many(&self->rx, self->buf, 1 + self->total % 16), &self->n);
        if (self->n == 0)
            break;
        for (self->k = 0; self->k < self->n; self->k++) {
            uint64_t id = self->buf[self->k] >> 32, i = self->buf[self->k] & 0xffffffffu;
            if (!WEFT_TEST_CHECK(id < PRODUCERS) || !WEFT_TEST_CHECK_INT_EQ(i, self->next[id]))
                WEFT_RETURN(-1);
            self->next[id]++;
            self->total++;
        }
    }
    weft_mpsc_rx_drop(&self->rx);
    WEFT_RETURN(self->total);
    WEFT_END();
}

START_TEST(tasks_on_each_shape)
{
    for (int shape = 0; shape < N_SHAPES; shape++) {
        for (int bounded = 0; bounded < 2; bounded++) {
            weft_runtime_t *rt = shape_rt(shape);
            weft_mpsc_tx_t tx;
            consumer_t c = { WEFT_FRAME_INIT(consumer) };
            ck_assert_int_eq(bounded ? weft_mpsc_bounded(8, sizeof(uint64_t), NULL, &tx, &c.rx)
                                     : weft_mpsc_unbounded(sizeof(uint64_t), NULL, &tx, &c.rx), 0);
            weft_join_handle_t h[PRODUCERS];
            for (int p = 0; p < PRODUCERS; p++) {
                producer_t pr = { WEFT_FRAME_INIT(producer), .id = (uint64_t)p };
                weft_mpsc_tx_clone(&tx, &pr.tx);
                ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&pr), &h[p], NULL, WEFT_SITE), 0);
            }
            weft_mpsc_tx_drop(&tx);
            long total = 0;
            ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&c), &total), 0);
            for (int p = 0; p < PRODUCERS; p++) {
                int out = -1;
                ck_assert_int_eq(join_out(rt, &h[p], &out), 0);
            }
            weft_runtime_free(rt);
            ASSERT_NO_TEST_FAIL();
            ck_assert_int_eq(total, PRODUCERS * PER_PRODUCER);
        }
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Misuse aborts, naming the call ------------------------------------------------------ */

static int sink; /* results of calls expected to abort first */
static void send_on_dropped(void)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    if (weft_mpsc_bounded(1, 4, NULL, &tx, &rx) == 0) {
        weft_mpsc_tx_drop(&tx);
        int v = 0;
        sink = weft_mpsc_try_send(&tx, &v);
    }
}
static void permit_twice(void)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    weft_mpsc_permit_t p;
    if (weft_mpsc_unbounded(4, NULL, &tx, &rx) == 0) {
        weft_mpsc_reserve_t r = weft_mpsc_reserve(&tx, &p);
        int rc = 0, v = 0;
        sink = (int)weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc);
        sink = weft_mpsc_permit_send(&p, &v);
        sink = weft_mpsc_permit_send(&p, &v);
    }
}
static void recv_many_zero(void)
{
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    long buf;
    if (weft_mpsc_unbounded(4, NULL, &tx, &rx) == 0)
        { weft_mpsc_recv_t r = weft_mpsc_recv_many(&rx, &buf, 0); sink = (int)r.max_; }
}
static void null_tx(void)
{
    weft_mpsc_rx_t rx;
    sink = weft_mpsc_bounded(1, 4, NULL, NULL, &rx);
}
typedef struct {
    WEFT_FRAME;
    weft_mpsc_tx_t tx;
} blocking_in_task_t;
WEFT_ASYNC(blocking_in_task_t, blocking_in_task, int)
{
    WEFT_BEGIN();
    int v = 1;
    sink = weft_mpsc_blocking_send(&self->tx, &v);
    WEFT_RETURN(0);
    WEFT_END();
}
static void blocking_send_in_runtime(void)
{
    weft_mpsc_rx_t rx;
    blocking_in_task_t t = { WEFT_FRAME_INIT(blocking_in_task) };
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    if (weft_mpsc_bounded(1, 4, NULL, &t.tx, &rx) == 0)
        sink = weft_runtime_block_on(rt, WEFT_FUTURE(&t), NULL);
}

START_TEST(misuse_aborts)
{
    expect_panic(send_on_dropped, "weft_mpsc_try_send");
    expect_panic(permit_twice, "weft_mpsc_permit_send");
    expect_panic(recv_many_zero, "weft_mpsc_recv_many");
    expect_panic(null_tx, "weft_mpsc_bounded");
    expect_panic(blocking_send_in_runtime, "weft_mpsc_blocking_send");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mpsc");
    TCase *tc = tcase_create("mpsc");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, bounded_full_empty_fifo);
    tcase_add_test(tc, closed_only_after_drained);
    tcase_add_test(tc, close_keeps_sent_fails_waiters);
    tcase_add_test(tc, unbounded_blocks_and_recv_many);
    tcase_add_test(tc, bounded_allocates_nothing_per_message);
    tcase_add_test(tc, permits);
    tcase_add_test(tc, cancelled_send_and_recv);
    tcase_add_test(tc, drop_values);
    tcase_add_test(tc, drop_large_values);
    tcase_add_test(tc, permits_hold_room_not_places);
    tcase_add_test(tc, receiver_woken_once_per_wait);
    tcase_add_test(tc, served_then_closed);
    tcase_add_test(tc, recv_many_serves_waiters);
    tcase_add_test(tc, receiver_serves_in_batches);
    tcase_add_test(tc, one_waiter_served_by_the_first_slot);
    tcase_add_test(tc, positions_wrap);
    tcase_add_test(tc, blocking_threads);
    tcase_add_test(tc, tasks_on_each_shape);
    if (can_fork())
        tcase_add_test(tc, misuse_aborts);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
