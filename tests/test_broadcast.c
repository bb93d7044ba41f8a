/* tests/test_broadcast.c - broadcast channels: every call and its closed,
 * lagged, empty and cancelled paths; exact lag counts across many laps of
 * the ring; subscribe and rx_clone positions; values with clone/drop ops
 * (every send released exactly once, every read cloned); waiters beyond a
 * wake list, dropped or polled while a send is still waking them; the
 * cooperative budget; tasks on each runtime shape and plain threads. */
#include "broadcast_tasks.h"

static counter_t ctr;
static weft_waker_t cw;
static weft_context_t tcx;
static void setup(void)
{
    memset(&ctr, 0, sizeof ctr);
    cw = counter_waker(&ctr);
    tcx.waker = &cw;
}

/* Polls a fresh recv future once; returns the poll's result, *rc its output. */
static weft_poll_t poll_once(weft_broadcast_recv_t *r, int *rc)
{
    return weft_future_poll(WEFT_FUTURE(r), &tcx, rc);
}

START_TEST(bad_input)
{
    weft_broadcast_tx_t tx = { (weft_broadcast_t *)&tx };
    weft_broadcast_rx_t rx = { (weft_broadcast_t *)&rx, 7, 7 };
    ck_assert_int_eq(weft_broadcast_new(0, 8, NULL, &tx, &rx), WEFT_EINVAL);
    ck_assert_int_eq(weft_broadcast_new(WEFT_BROADCAST_MAX_CAP + 1, 8, NULL, &tx, &rx), WEFT_EINVAL);
    ck_assert_int_eq(weft_broadcast_new(4, 0, NULL, &tx, &rx), WEFT_EINVAL);
    ck_assert_int_eq(weft_broadcast_new(4, WEFT_BROADCAST_MAX_VALUE + 1, NULL, &tx, &rx), WEFT_EINVAL);
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_broadcast_new(4, 8, NULL, &tx, &rx), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    /* On error the handles are untouched. */
    ck_assert_ptr_eq(tx.chan_, (weft_broadcast_t *)&tx);
    ck_assert_ptr_eq(rx.chan_, (weft_broadcast_t *)&rx);
    ck_assert_uint_eq(rx.next_, 7);
    /* The extremes are accepted. */
    ck_assert_int_eq(weft_broadcast_new(WEFT_BROADCAST_MAX_CAP, 1, NULL, &tx, &rx), 0);
    weft_broadcast_tx_drop(&tx);
    weft_broadcast_rx_drop(&rx);
    ck_assert_int_eq(weft_broadcast_new(1, WEFT_BROADCAST_MAX_VALUE, NULL, &tx, &rx), 0);
    weft_broadcast_rx_drop(&rx);
    weft_broadcast_tx_drop(&tx);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(every_receiver_sees_every_message)
{
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t a, b;
    ck_assert_int_eq(weft_broadcast_new(16, sizeof(int), NULL, &tx, &a), 0);
    ck_assert_int_eq(weft_broadcast_subscribe(&tx, &b), 0);
    ck_assert_uint_eq(weft_broadcast_receiver_count(&tx), 2);
    int got = -1;
    ck_assert_int_eq(weft_broadcast_try_recv(&a, &got), WEFT_EAGAIN);
    ck_assert_uint_eq(weft_broadcast_rx_len(&a), 0);
    for (int v = 0; v < 10; v++)
        ck_assert_int_eq(weft_broadcast_send(&tx, &v), 2);
    ck_assert_uint_eq(weft_broadcast_rx_len(&a), 10);
    for (int v = 0; v < 10; v++) {
        ck_assert_int_eq(weft_broadcast_try_recv(&a, &got), 0);
        ck_assert_int_eq(got, v);
    }
    ck_assert_uint_eq(weft_broadcast_rx_len(&a), 0);
    ck_assert_uint_eq(weft_broadcast_rx_len(&b), 10);
    ck_assert_int_eq(weft_broadcast_try_recv(&a, &got), WEFT_EAGAIN);
    for (int v = 0; v < 10; v++) {
        weft_broadcast_recv_t r = weft_broadcast_recv(&b, &got);
        int rc = -1;
        ck_assert_int_eq(poll_once(&r, &rc), WEFT_READY);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(got, v);
        weft_future_drop(WEFT_FUTURE(&r));
    }
    ck_assert_uint_eq(weft_broadcast_rx_missed(&a), 0);
    weft_broadcast_rx_drop(&b);
    weft_broadcast_rx_drop(&b); /* idempotent */
    ck_assert_uint_eq(weft_broadcast_receiver_count(&tx), 1);
    ck_assert_uint_eq(weft_broadcast_rx_len(&b), 0); /* a dropped receiver holds nothing */
    weft_broadcast_rx_drop(&a);
    weft_broadcast_tx_drop(&tx);
    weft_broadcast_tx_drop(&tx); /* idempotent */
    ck_assert_uint_eq(weft_broadcast_receiver_count(&tx), 0);
    ck_assert_int_eq(ctr.clones, 0);
    ASSERT_NO_LIVE();
}
END_TEST

/* Values of sizes that are not whole words travel intact. */
START_TEST(odd_value_sizes)
{
    size_t sizes[] = { 1, 3, 8, 13, 100, 4099 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        unsigned char *in = malloc(n), *out = malloc(n + 1);
        weft_broadcast_tx_t tx;
        weft_broadcast_rx_t rx;
        ck_assert_int_eq(weft_broadcast_new(2, n, NULL, &tx, &rx), 0);
        for (int round = 0; round < 5; round++) {
            for (size_t i = 0; i < n; i++)
                in[i] = (unsigned char)(i * 7 + (size_t)round);
            ck_assert_int_eq(weft_broadcast_send(&tx, in), 1);
            out[n] = 0xAB;
            ck_assert_int_eq(weft_broadcast_try_recv(&rx, out), 0);
            ck_assert(memcmp(in, out, n) == 0);
            ck_assert_uint_eq(out[n], 0xAB); /* nothing written past the value */
        }
        weft_broadcast_tx_drop(&tx);
        weft_broadcast_rx_drop(&rx);
        free(in);
        free(out);
    }
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(send_without_receivers)
{
    weft_broadcast_tx_t tx;
    ck_assert_int_eq(weft_broadcast_new(4, sizeof(int), NULL, &tx, NULL), 0);
    ck_assert_uint_eq(weft_broadcast_receiver_count(&tx), 0);
    int v = 1, got = 0;
    ck_assert_int_eq(weft_broadcast_send(&tx, &v), WEFT_EPIPE);
    weft_broadcast_rx_t rx;
    ck_assert_int_eq(weft_broadcast_subscribe(&tx, &rx), 0);
    v = 2;
    ck_assert_int_eq(weft_broadcast_send(&tx, &v), 1);
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got, 2); /* the refused send left nothing behind */
    weft_broadcast_rx_drop(&rx);
    ck_assert_int_eq(weft_broadcast_send(&tx, &v), WEFT_EPIPE);
    weft_broadcast_tx_drop(&tx);
    ck_assert_int_eq(weft_broadcast_subscribe(&tx, &rx), WEFT_EPIPE); /* dropped sender */
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(lagged_exact_counts)
{
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t rx;
    ck_assert_int_eq(weft_broadcast_new(4, sizeof(int), NULL, &tx, &rx), 0);
    int got = -1, rc = -1;
    for (int v = 0; v < 10; v++)
        ck_assert_int_eq(weft_broadcast_send(&tx, &v), 1);
    ck_assert_uint_eq(weft_broadcast_rx_len(&rx), 4); /* only what is still held */
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), WEFT_ELAGGED);
    ck_assert_int_eq(got, -1); /* dst untouched */
    ck_assert_uint_eq(weft_broadcast_rx_missed(&rx), 6);
    for (int v = 6; v < 10; v++) {
        ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), 0);
        ck_assert_int_eq(got, v);
    }
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), WEFT_EAGAIN);
    ck_assert_uint_eq(weft_broadcast_rx_missed(&rx), 6); /* the last lag's count stays */
    /* The future reports the lag the same way. */
    for (int v = 10; v < 15; v++)
        ck_assert_int_eq(weft_broadcast_send(&tx, &v), 1);
    weft_broadcast_recv_t r = weft_broadcast_recv(&rx, &got);
    ck_assert_int_eq(poll_once(&r, &rc), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_int_eq(rc, WEFT_ELAGGED);
    ck_assert_uint_eq(weft_broadcast_rx_missed(&rx), 1);
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got, 11);
    weft_broadcast_tx_drop(&tx);
    weft_broadcast_rx_drop(&rx);
    /* A capacity rounded up to a power of two holds that many. */
    ck_assert_int_eq(weft_broadcast_new(5, sizeof(int), NULL, &tx, &rx), 0);
    for (int v = 0; v < 9; v++)
        ck_assert_int_eq(weft_broadcast_send(&tx, &v), 1);
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), WEFT_ELAGGED);
    ck_assert_uint_eq(weft_broadcast_rx_missed(&rx), 1);
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got, 1);
    weft_broadcast_tx_drop(&tx);
    weft_broadcast_rx_drop(&rx);
    ASSERT_NO_LIVE();
}
END_TEST

/* Random bursts of sends and reads over many laps of a small ring: every
 * receive is the next message or a lag that skips exactly to the oldest
 * held, and received + missed == sent at the end. */
START_TEST(lag_across_many_laps)
{
    uint64_t seed = 12345;
    for (size_t cap = 1; cap <= 16; cap *= 2) {
        weft_broadcast_tx_t tx;
        weft_broadcast_rx_t rx[3];
        ck_assert_int_eq(weft_broadcast_new(cap, sizeof(uint64_t), NULL, &tx, &rx[0]), 0);
        weft_broadcast_rx_clone(&rx[0], &rx[1]);
        ck_assert_int_eq(weft_broadcast_subscribe(&tx, &rx[2]), 0);
        uint64_t sent = 0, next[3] = { 0, 0, 0 }, received[3] = { 0, 0, 0 }, missed[3] = { 0, 0, 0 };
        for (int round = 0; round < 2000; round++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            unsigned burst = (unsigned)(seed >> 33) % (unsigned)(3 * cap + 1);
            for (unsigned i = 0; i < burst; i++, sent++)
                ck_assert_int_eq(weft_broadcast_send(&tx, &sent), 3);
            for (int k = 0; k < 3; k++) {
                unsigned reads = (unsigned)(seed >> (40 + 4 * k)) % (unsigned)(2 * cap + 1);
                for (unsigned i = 0; i < reads; i++) {
                    uint64_t got = 0;
                    uint64_t oldest = sent > cap ? sent - cap : 0;
                    int rc = weft_broadcast_try_recv(&rx[k], &got);
                    if (next[k] == sent) {
                        ck_assert_int_eq(rc, WEFT_EAGAIN);
                        break;
                    }
                    if (next[k] < oldest) {
                        ck_assert_int_eq(rc, WEFT_ELAGGED);
                        ck_assert_uint_eq(weft_broadcast_rx_missed(&rx[k]), oldest - next[k]);
                        missed[k] += oldest - next[k];
                        next[k] = oldest;
                        continue;
                    }
                    ck_assert_int_eq(rc, 0);
                    ck_assert_uint_eq(got, next[k]);
                    next[k]++;
                    received[k]++;
                }
                ck_assert_uint_eq(weft_broadcast_rx_len(&rx[k]), sent - next[k] < cap ? sent - next[k] : cap);
            }
        }
        ck_assert_uint_gt(sent, 100 * cap); /* many laps */
        weft_broadcast_tx_drop(&tx);
        for (int k = 0; k < 3; k++) {
            for (;;) {
                uint64_t got;
                int rc = weft_broadcast_try_recv(&rx[k], &got);
                if (rc == WEFT_EPIPE)
                    break;
                if (rc == WEFT_ELAGGED) {
                    missed[k] += weft_broadcast_rx_missed(&rx[k]);
                } else {
                    ck_assert_int_eq(rc, 0);
                    received[k]++;
                }
            }
            ck_assert_uint_eq(received[k] + missed[k], sent);
            ck_assert_uint_gt(missed[k], 0);
            weft_broadcast_rx_drop(&rx[k]);
        }
    }
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(subscribe_and_clone_positions)
{
    weft_broadcast_tx_t tx, tx2;
    weft_broadcast_rx_t a, late, copy;
    ck_assert_int_eq(weft_broadcast_new(8, sizeof(int), NULL, &tx, &a), 0);
    int got = -1;
    for (int v = 0; v < 3; v++)
        ck_assert_int_eq(weft_broadcast_send(&tx, &v), 1);
    weft_broadcast_tx_clone(&tx, &tx2);
    ck_assert_int_eq(weft_broadcast_subscribe(&tx2, &late), 0); /* from a clone too */
    ck_assert_uint_eq(weft_broadcast_rx_len(&late), 0);           /* sees nothing older */
    ck_assert_int_eq(weft_broadcast_try_recv(&a, &got), 0);
    ck_assert_int_eq(got, 0);
    weft_broadcast_rx_clone(&a, &copy); /* stands where a stands: at 1 */
    ck_assert_uint_eq(weft_broadcast_rx_len(&copy), 2);
    ck_assert_uint_eq(weft_broadcast_receiver_count(&tx), 3);
    int v = 3;
    ck_assert_int_eq(weft_broadcast_send(&tx2, &v), 3);
    int want_copy[] = { 1, 2, 3 };
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(weft_broadcast_try_recv(&copy, &got), 0);
        ck_assert_int_eq(got, want_copy[i]);
    }
    ck_assert_int_eq(weft_broadcast_try_recv(&late, &got), 0);
    ck_assert_int_eq(got, 3);
    ck_assert_int_eq(weft_broadcast_try_recv(&late, &got), WEFT_EAGAIN);
    /* A clone of a lagging receiver lags the same way. */
    for (v = 4; v < 20; v++)
        ck_assert_int_eq(weft_broadcast_send(&tx, &v), 3);
    weft_broadcast_rx_drop(&copy);
    weft_broadcast_rx_clone(&a, &copy);
    ck_assert_int_eq(weft_broadcast_try_recv(&copy, &got), WEFT_ELAGGED);
    ck_assert_uint_eq(weft_broadcast_rx_missed(&copy), 11); /* at 1; oldest held 12 */
    ck_assert_uint_eq(weft_broadcast_rx_missed(&a), 0);    /* a itself did not move */
    weft_broadcast_rx_drop(&copy);
    weft_broadcast_rx_drop(&late);
    weft_broadcast_rx_drop(&a);
    weft_broadcast_tx_drop(&tx);
    weft_broadcast_tx_drop(&tx2);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(closed_after_held_messages)
{
    weft_broadcast_tx_t tx, tx2;
    weft_broadcast_rx_t rx;
    ck_assert_int_eq(weft_broadcast_new(4, sizeof(int), NULL, &tx, &rx), 0);
    weft_broadcast_tx_clone(&tx, &tx2);
    int v = 1, got = 0, rc = -1;
    ck_assert_int_eq(weft_broadcast_send(&tx, &v), 1);
    weft_broadcast_tx_drop(&tx);
    v = 2;
    ck_assert_int_eq(weft_broadcast_send(&tx2, &v), 1);
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got, 1);
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got, 2);
    /* A waiting receive completes with WEFT_EPIPE when the last sender goes. */
    weft_broadcast_recv_t r = weft_broadcast_recv(&rx, &got);
    ck_assert_int_eq(poll_once(&r, &rc), WEFT_PENDING);
    ck_assert_int_eq(poll_once(&r, &rc), WEFT_PENDING); /* a re-poll keeps its waker */
    ck_assert_int_eq(ctr.clones, 1);
    weft_broadcast_tx_drop(&tx2);
    ck_assert_int_eq(ctr.wakes, 1);
    ck_assert_int_eq(poll_once(&r, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EPIPE);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), WEFT_EPIPE);
    /* Closed with messages held: they come first, lagged ones included. */
    weft_broadcast_rx_drop(&rx);
    ck_assert_int_eq(weft_broadcast_new(2, sizeof(int), NULL, &tx, &rx), 0);
    for (v = 0; v < 5; v++)
        ck_assert_int_eq(weft_broadcast_send(&tx, &v), 1);
    weft_broadcast_tx_drop(&tx);
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), WEFT_ELAGGED);
    ck_assert_uint_eq(weft_broadcast_rx_missed(&rx), 3);
    for (v = 3; v < 5; v++) {
        ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), 0);
        ck_assert_int_eq(got, v);
    }
    r = weft_broadcast_recv(&rx, &got);
    ck_assert_int_eq(poll_once(&r, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EPIPE);
    weft_future_drop(WEFT_FUTURE(&r));
    weft_broadcast_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(recv_waits_and_is_woken)
{
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t a, b;
    ck_assert_int_eq(weft_broadcast_new(4, sizeof(int), NULL, &tx, &a), 0);
    weft_broadcast_rx_clone(&a, &b);
    int ga = 0, gb = 0, rca = -1, rcb = -1, v = 42;
    weft_broadcast_recv_t ra = weft_broadcast_recv(&a, &ga), rb = weft_broadcast_recv(&b, &gb);
    ck_assert_int_eq(poll_once(&ra, &rca), WEFT_PENDING);
    ck_assert_int_eq(poll_once(&rb, &rcb), WEFT_PENDING);
    ck_assert_int_eq(weft_broadcast_send(&tx, &v), 2);
    ck_assert_int_eq(ctr.wakes, 2); /* one send wakes every waiter */
    ck_assert_int_eq(poll_once(&ra, &rca), WEFT_READY);
    ck_assert_int_eq(poll_once(&rb, &rcb), WEFT_READY);
    ck_assert_int_eq(rca, 0);
    ck_assert_int_eq(ga, 42);
    ck_assert_int_eq(gb, 42);
    weft_future_drop(WEFT_FUTURE(&ra));
    weft_future_drop(WEFT_FUTURE(&rb));
    /* A receive that waited, then was polled again by another waker. */
    counter_t other = { 0 };
    weft_waker_t ow = counter_waker(&other);
    weft_context_t ocx = { &ow };
    ra = weft_broadcast_recv(&a, &ga);
    ck_assert_int_eq(poll_once(&ra, &rca), WEFT_PENDING);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&ra), &ocx, &rca), WEFT_PENDING);
    ck_assert_int_eq(ctr.clones, ctr.drops); /* the other waker replaced ours */
    v = 43;
    ck_assert_int_eq(weft_broadcast_send(&tx, &v), 2);
    ck_assert_int_eq(other.wakes, 1); /* the newest waker */
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&ra), &ocx, &rca), WEFT_READY);
    ck_assert_int_eq(ga, 43);
    weft_future_drop(WEFT_FUTURE(&ra));
    ck_assert_int_eq(other.clones, other.drops);
    weft_broadcast_rx_drop(&a);
    weft_broadcast_rx_drop(&b);
    weft_broadcast_tx_drop(&tx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(dropped_recv_loses_nothing)
{
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t rx;
    ck_assert_int_eq(weft_broadcast_new(4, sizeof(int), NULL, &tx, &rx), 0);
    int got = 0, rc = -1, v = 5;
    weft_broadcast_recv_t r = weft_broadcast_recv(&rx, &got);
    ck_assert_int_eq(poll_once(&r, &rc), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_int_eq(ctr.clones, ctr.drops); /* its waker went back */
    ck_assert_int_eq(weft_broadcast_send(&tx, &v), 1);
    ck_assert_int_eq(ctr.wakes, 0); /* nobody waits now */
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got, 5);
    /* Dropped after being woken, before its poll: still nothing taken. */
    r = weft_broadcast_recv(&rx, &got);
    ck_assert_int_eq(poll_once(&r, &rc), WEFT_PENDING);
    v = 6;
    ck_assert_int_eq(weft_broadcast_send(&tx, &v), 1);
    ck_assert_int_eq(ctr.wakes, 1);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_uint_eq(weft_broadcast_rx_len(&rx), 1);
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got, 6);
    /* Never polled: dropping it does nothing. */
    r = weft_broadcast_recv(&rx, &got);
    weft_future_drop(WEFT_FUTURE(&r));
    weft_broadcast_tx_drop(&tx);
    weft_broadcast_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- More waiters than one wake list: a send wakes them in batches ---------
 * The first waiter's waker, when woken, drops one waiter and polls another
 * that the send has not reached yet (they sit on its private list). */
#define MANY 80
static weft_broadcast_rx_t many_rx[MANY];
static int many_got[MANY];
static weft_broadcast_recv_t many_r[MANY];
static int reentered_rc = -1;
static weft_poll_t reentered_poll = WEFT_PENDING;
static const weft_waker_vtable_t reenter_vt;
static weft_waker_t reenter_clone(const void *d)
{
    return (weft_waker_t){ &reenter_vt, d };
}
static void reenter_wake(const void *d)
{
    (void)d;
    weft_future_drop(WEFT_FUTURE(&many_r[MANY - 1]));
    reentered_poll = weft_future_poll(WEFT_FUTURE(&many_r[MANY - 2]), &tcx, &reentered_rc);
}
static void reenter_noop(const void *d)
{
    (void)d;
}
static const weft_waker_vtable_t reenter_vt = { reenter_clone, reenter_wake, reenter_wake, reenter_noop };

START_TEST(many_waiters_woken_in_batches)
{
    weft_broadcast_tx_t tx;
    ck_assert_int_eq(weft_broadcast_new(4, sizeof(int), NULL, &tx, NULL), 0);
    weft_waker_t rw = { &reenter_vt, NULL };
    weft_context_t rcx = { &rw };
    for (int i = 0; i < MANY; i++) {
        ck_assert_int_eq(weft_broadcast_subscribe(&tx, &many_rx[i]), 0);
        many_r[i] = weft_broadcast_recv(&many_rx[i], &many_got[i]);
        int rc;
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&many_r[i]), i == 0 ? &rcx : &tcx, &rc), WEFT_PENDING);
    }
    int v = 9;
    ck_assert_int_eq(weft_broadcast_send(&tx, &v), MANY);
    ck_assert_int_eq(reentered_poll, WEFT_READY);
    ck_assert_int_eq(reentered_rc, 0);
    ck_assert_int_eq(many_got[MANY - 2], 9);
    ck_assert_int_eq(ctr.wakes, MANY - 3); /* all but the first (its own waker), the dropped and the polled */
    for (int i = 0; i < MANY - 2; i++) {
        int rc = -1;
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&many_r[i]), &tcx, &rc), WEFT_READY);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(many_got[i], 9);
        weft_future_drop(WEFT_FUTURE(&many_r[i]));
    }
    weft_future_drop(WEFT_FUTURE(&many_r[MANY - 2]));
    int got;
    ck_assert_int_eq(weft_broadcast_try_recv(&many_rx[MANY - 1], &got), 0); /* its drop lost nothing */
    ck_assert_int_eq(got, 9);
    for (int i = 0; i < MANY; i++)
        weft_broadcast_rx_drop(&many_rx[i]);
    weft_broadcast_tx_drop(&tx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Values that own something -----------------------------------------------
 * A value is a pointer to a reference-counted box: clone takes a
 * reference, drop gives one back, the last one frees the box. Every box
 * must be freed once, and never have its count go below 0. */
typedef struct {
    int refs;
    int id;
} box_t;
static _Atomic int boxes_live, clones, drops, bad_drops;
static box_t *box_new(int id)
{
    box_t *b = malloc(sizeof *b);
    b->refs = 1;
    b->id = id;
    boxes_live++;
    return b;
}
static void box_unref(box_t *b)
{
    if (b->refs <= 0) {
        bad_drops++;
        return;
    }
    if (--b->refs == 0) {
        boxes_live--;
        free(b);
    }
}
static void box_clone(void *copy)
{
    box_t *b;
    memcpy(&b, copy, sizeof b);
    b->refs++;
    clones++;
}
static void box_drop(void *value)
{
    box_t *b;
    memcpy(&b, value, sizeof b);
    drops++;
    box_unref(b);
}
static const weft_value_ops_t box_ops = { box_clone, box_drop };

START_TEST(ops_clone_and_drop)
{
    boxes_live = clones = drops = bad_drops = 0;
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t a, b;
    ck_assert_int_eq(weft_broadcast_new(4, sizeof(box_t *), &box_ops, &tx, &a), 0);
    ck_assert_int_eq(weft_broadcast_subscribe(&tx, &b), 0);
    for (int i = 0; i < 10; i++) {
        box_t *bx = box_new(i);
        ck_assert_int_eq(weft_broadcast_send(&tx, &bx), 2); /* the channel owns the reference now */
    }
    ck_assert_int_eq(drops, 6); /* each overwrite released the value it replaced */
    box_t *got = NULL;
    ck_assert_int_eq(weft_broadcast_try_recv(&a, &got), WEFT_ELAGGED);
    ck_assert_ptr_null(got);
    ck_assert_int_eq(clones, 0); /* a lag copies nothing */
    for (int i = 6; i < 10; i++) {
        ck_assert_int_eq(weft_broadcast_try_recv(&a, &got), 0);
        ck_assert_int_eq(got->id, i);
        ck_assert_int_eq(got->refs, 2); /* the channel's and ours */
        box_unref(got);
    }
    ck_assert_int_eq(clones, 4);
    /* A receive through the future clones too. */
    ck_assert_int_eq(weft_broadcast_try_recv(&b, &got), WEFT_ELAGGED);
    weft_broadcast_recv_t r = weft_broadcast_recv(&b, &got);
    int rc = -1;
    ck_assert_int_eq(poll_once(&r, &rc), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(got->id, 6);
    ck_assert_int_eq(clones, 5);
    box_unref(got);
    /* Send with no receivers takes nothing: the caller still owns it. */
    weft_broadcast_rx_drop(&a);
    weft_broadcast_rx_drop(&b);
    box_t *kept = box_new(99);
    ck_assert_int_eq(weft_broadcast_send(&tx, &kept), WEFT_EPIPE);
    ck_assert_int_eq(kept->refs, 1);
    box_unref(kept);
    ck_assert_int_eq(drops, 6);
    ck_assert_int_eq(boxes_live, 4); /* the channel still holds the last 4 */
    weft_broadcast_tx_drop(&tx);     /* the last handle: they are released */
    ck_assert_int_eq(drops, 10);
    ck_assert_int_eq(boxes_live, 0);
    ck_assert_int_eq(bad_drops, 0);
    /* Fewer sends than the capacity: only the written slots are released. */
    ck_assert_int_eq(weft_broadcast_new(8, sizeof(box_t *), &box_ops, &tx, &a), 0);
    for (int i = 0; i < 3; i++) {
        box_t *bx = box_new(i);
        ck_assert_int_eq(weft_broadcast_send(&tx, &bx), 1);
    }
    weft_broadcast_rx_drop(&a);
    weft_broadcast_tx_drop(&tx);
    ck_assert_int_eq(drops, 13);
    ck_assert_int_eq(boxes_live, 0);
    ck_assert_int_eq(bad_drops, 0);
    ASSERT_NO_LIVE();
}
END_TEST

/* Only one of the two ops, and a large owned value. */
typedef struct {
    box_t *box;
    char pad[200];
} big_t;
static void big_drop(void *value)
{
    big_t v;
    memcpy(&v, value, sizeof v);
    drops++;
    ck_assert_int_eq(v.pad[199], (char)v.box->id);
    box_unref(v.box);
}
static const weft_value_ops_t drop_only = { NULL, big_drop };

START_TEST(ops_drop_only_large)
{
    boxes_live = clones = drops = bad_drops = 0;
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t rx;
    ck_assert_int_eq(weft_broadcast_new(2, sizeof(big_t), &drop_only, &tx, &rx), 0);
    for (int i = 0; i < 5; i++) {
        big_t v = { box_new(i), { 0 } };
        v.pad[199] = (char)i;
        ck_assert_int_eq(weft_broadcast_send(&tx, &v), 1);
    }
    big_t got;
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), WEFT_ELAGGED);
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got.box->id, 3);
    ck_assert_int_eq(got.box->refs, 1); /* no clone: a plain copy */
    weft_broadcast_rx_drop(&rx);
    weft_broadcast_tx_drop(&tx);
    ck_assert_int_eq(drops, 5);
    ck_assert_int_eq(boxes_live, 0);
    ck_assert_int_eq(bad_drops, 0);
    ASSERT_NO_LIVE();
}
END_TEST

/* A receiver whose slot is being written waits for that write: drop runs
 * while the sender holds the slot, so from inside it (for this test only:
 * ops must not call into their channel) try_recv finds nothing yet and a
 * recv future waits, to be woken when the send is done. */
static weft_broadcast_rx_t *busy_rx;
static weft_broadcast_recv_t busy_r;
static int busy_got, busy_try_rc, busy_poll_rc;
static weft_poll_t busy_poll;
static void busy_drop(void *value)
{
    (void)value;
    if (busy_rx == NULL)
        return;
    int v;
    busy_try_rc = weft_broadcast_try_recv(busy_rx, &v);
    busy_r = weft_broadcast_recv(busy_rx, &busy_got);
    busy_poll = weft_future_poll(WEFT_FUTURE(&busy_r), &tcx, &busy_poll_rc);
}
static const weft_value_ops_t busy_ops = { NULL, busy_drop };

START_TEST(reader_waits_for_slot_being_written)
{
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t rx;
    ck_assert_int_eq(weft_broadcast_new(1, sizeof(int), &busy_ops, &tx, &rx), 0);
    int v = 1, got = 0, rc = -1;
    ck_assert_int_eq(weft_broadcast_send(&tx, &v), 1);
    ck_assert_int_eq(weft_broadcast_try_recv(&rx, &got), 0);
    busy_rx = &rx; /* the next send overwrites slot 0, which rx reads next */
    v = 2;
    ck_assert_int_eq(weft_broadcast_send(&tx, &v), 1);
    busy_rx = NULL;
    ck_assert_int_eq(busy_try_rc, WEFT_EAGAIN);
    ck_assert_int_eq(busy_poll, WEFT_PENDING);
    ck_assert_int_eq(ctr.wakes, 1); /* the send, once written, woke it */
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&busy_r), &tcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(busy_got, 2);
    weft_future_drop(WEFT_FUTURE(&busy_r));
    weft_broadcast_tx_drop(&tx);
    weft_broadcast_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- The cooperative budget ------------------------------------------------------ */

typedef struct {
    WEFT_FRAME;
    weft_broadcast_rx_t *rx;
    int i, rc, saw_sibling;
    uint64_t v;
    weft_broadcast_recv_t r;
} greedy_t;
WEFT_ASYNC(greedy_t, greedy, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 1000; self->i++) {
        WEFT_AWAIT(&self->r, weft_broadcast_recv(self->rx, &self->v), &self->rc);
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0) || !WEFT_TEST_CHECK_INT_EQ(self->v, self->i))
            break;
        if (coop_sibling_ran && !self->saw_sibling)
            self->saw_sibling = self->i + 1;
    }
    WEFT_RETURN(self->saw_sibling);
    WEFT_END();
}

START_TEST(coop_budget_yields)
{
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t rx;
    ck_assert_int_eq(weft_broadcast_new(1024, sizeof(uint64_t), NULL, &tx, &rx), 0);
    for (uint64_t i = 0; i < 1000; i++)
        ck_assert_int_eq(weft_broadcast_send(&tx, &i), 1);
    greedy_t g = { WEFT_FRAME_INIT(greedy), .rx = &rx };
    assert_coop_yields(WEFT_FUTURE(&g));
    ASSERT_NO_TEST_FAIL();
    weft_broadcast_rx_drop(&rx);
    weft_broadcast_tx_drop(&tx);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Tasks on each runtime shape, and plain threads ----------------------------------
 * One sender sends TOTAL messages, yielding now and then; RECEIVERS tasks
 * read them (broadcast_tasks.h). A receiver may lag (the ring is small):
 * each checks the order and that received + missed == TOTAL. */
#define RECEIVERS 6
#define TOTAL 5000

START_TEST(tasks_on_each_shape)
{
    for (int shape = 0; shape < N_SHAPES; shape++) {
        weft_runtime_t *rt = shape_rt(shape);
        sender_t s = { WEFT_FRAME_INIT(sender), .count = TOTAL };
        weft_broadcast_rx_t first;
        ck_assert_int_eq(weft_broadcast_new(64, sizeof(msg_t), NULL, &s.tx, &first), 0);
        weft_join_handle_t h[RECEIVERS];
        for (int k = 0; k < RECEIVERS; k++) {
            receiver_t r = { WEFT_FRAME_INIT(receiver), .expect = TOTAL };
            ck_assert_int_eq(weft_broadcast_subscribe(&s.tx, &r.rx), 0);
            ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&r), &h[k], NULL, WEFT_SITE), 0);
        }
        weft_broadcast_rx_drop(&first);
        ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&s), NULL), 0);
        uint64_t received = 0;
        for (int k = 0; k < RECEIVERS; k++) {
            uint64_t n = 0;
            ck_assert_int_eq(join_out(rt, &h[k], &n), 0);
            received += n;
        }
        weft_runtime_free(rt);
        ASSERT_NO_TEST_FAIL();
        ck_assert_uint_gt(received, 0);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* The sender is a task of one runtime (current-thread, driven by
 * block_on); the receivers are tasks of another (2 workers): every wake
 * crosses runtimes. */
START_TEST(across_runtimes)
{
    weft_runtime_t *rx_rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    weft_runtime_t *tx_rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    sender_t s = { WEFT_FRAME_INIT(sender), .count = TOTAL };
    weft_broadcast_rx_t first;
    ck_assert_int_eq(weft_broadcast_new(16, sizeof(msg_t), NULL, &s.tx, &first), 0);
    weft_join_handle_t h[RECEIVERS];
    for (int k = 0; k < RECEIVERS; k++) {
        receiver_t r = { WEFT_FRAME_INIT(receiver), .expect = TOTAL };
        weft_broadcast_rx_clone(&first, &r.rx);
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rx_rt), WEFT_FUTURE(&r), &h[k], NULL, WEFT_SITE), 0);
    }
    weft_broadcast_rx_drop(&first);
    int out = -1;
    ck_assert_int_eq(weft_runtime_block_on(tx_rt, WEFT_FUTURE(&s), &out), 0);
    for (int k = 0; k < RECEIVERS; k++) {
        uint64_t n = 0;
        ck_assert_int_eq(join_out(rx_rt, &h[k], &n), 0);
    }
    weft_runtime_free(tx_rt);
    weft_runtime_free(rx_rt);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* A plain thread sends; tasks of a multi-thread runtime receive (woken
 * from outside the runtime); another plain thread polls try_recv. */
static void *plain_sender(void *arg)
{
    weft_broadcast_tx_t *tx = arg;
    for (uint64_t i = 0; i < TOTAL; i++) {
        msg_t m = msg_of(i);
        if (!WEFT_TEST_CHECK(weft_broadcast_send(tx, &m) >= 1))
            break;
        if (i % 64 == 63)
            sched_yield();
    }
    weft_broadcast_tx_drop(tx);
    return NULL;
}
static void *plain_receiver(void *arg)
{
    weft_broadcast_rx_t *rx = arg;
    uint64_t received = 0, missed = 0, next[BC_MAX_SENDERS] = { 0 };
    msg_t m;
    for (;;) {
        int rc = weft_broadcast_try_recv(rx, &m);
        if (rc == WEFT_EPIPE)
            break;
        if (rc == WEFT_EAGAIN) {
            sched_yield();
        } else if (rc == WEFT_ELAGGED) {
            missed += weft_broadcast_rx_missed(rx);
        } else if (check_msg(&m, next)) {
            received++;
        }
    }
    WEFT_TEST_CHECK_INT_EQ(received + missed, TOTAL);
    weft_broadcast_rx_drop(rx);
    return NULL;
}

START_TEST(plain_threads)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t first, prx;
    ck_assert_int_eq(weft_broadcast_new(32, sizeof(msg_t), NULL, &tx, &first), 0);
    weft_join_handle_t h[RECEIVERS - 1];
    for (int k = 0; k < RECEIVERS - 1; k++) {
        receiver_t r = { WEFT_FRAME_INIT(receiver), .expect = TOTAL };
        weft_broadcast_rx_clone(&first, &r.rx);
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&r), &h[k], NULL, WEFT_SITE), 0);
    }
    weft_broadcast_rx_clone(&first, &prx);
    weft_broadcast_rx_drop(&first);
    pthread_t ts, tr;
    ck_assert_int_eq(pthread_create(&tr, NULL, plain_receiver, &prx), 0);
    ck_assert_int_eq(pthread_create(&ts, NULL, plain_sender, &tx), 0);
    pthread_join(ts, NULL);
    pthread_join(tr, NULL);
    for (int k = 0; k < RECEIVERS - 1; k++) {
        uint64_t n = 0;
        ck_assert_int_eq(join_out(rt, &h[k], &n), 0);
    }
    weft_runtime_free(rt);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Misuse aborts, naming the call ------------------------------------------------------ */

static int sink;
static void recv_on_dropped(void)
{
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t rx;
    int v;
    if (weft_broadcast_new(1, sizeof v, NULL, &tx, &rx) == 0) {
        weft_broadcast_rx_drop(&rx);
        weft_broadcast_recv_t r = weft_broadcast_recv(&rx, &v);
        sink = (int)r.done_;
    }
}
static void try_recv_on_dropped(void)
{
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t rx;
    int v;
    if (weft_broadcast_new(1, sizeof v, NULL, &tx, &rx) == 0) {
        weft_broadcast_rx_drop(&rx);
        sink = weft_broadcast_try_recv(&rx, &v);
    }
}
static void send_on_dropped(void)
{
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t rx;
    int v = 0;
    if (weft_broadcast_new(1, sizeof v, NULL, &tx, &rx) == 0) {
        weft_broadcast_tx_drop(&tx);
        sink = weft_broadcast_send(&tx, &v);
    }
}
static void tx_clone_dropped(void)
{
    weft_broadcast_tx_t tx, out;
    weft_broadcast_rx_t rx;
    if (weft_broadcast_new(1, 4, NULL, &tx, &rx) == 0) {
        weft_broadcast_tx_drop(&tx);
        weft_broadcast_tx_clone(&tx, &out);
    }
}
static void rx_clone_dropped(void)
{
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t rx, out;
    if (weft_broadcast_new(1, 4, NULL, &tx, &rx) == 0) {
        weft_broadcast_rx_drop(&rx);
        weft_broadcast_rx_clone(&rx, &out);
    }
}
static void poll_after_done(void)
{
    weft_broadcast_tx_t tx;
    weft_broadcast_rx_t rx;
    int v = 1, rc;
    if (weft_broadcast_new(1, sizeof v, NULL, &tx, &rx) == 0) {
        sink = weft_broadcast_send(&tx, &v);
        weft_broadcast_recv_t r = weft_broadcast_recv(&rx, &v);
        sink = (int)weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc);
        sink = (int)weft_future_poll(WEFT_FUTURE(&r), &tcx, &rc);
    }
}
static void null_tx(void)
{
    weft_broadcast_rx_t rx;
    sink = weft_broadcast_new(1, 4, NULL, NULL, &rx);
}

START_TEST(misuse_aborts)
{
    expect_panic(recv_on_dropped, "weft_broadcast_recv on a dropped receiver");
    expect_panic(try_recv_on_dropped, "weft_broadcast_try_recv on a dropped receiver");
    expect_panic(send_on_dropped, "weft_broadcast_send on a dropped sender");
    expect_panic(tx_clone_dropped, "weft_broadcast_tx_clone");
    expect_panic(rx_clone_dropped, "weft_broadcast_rx_clone");
    expect_panic(poll_after_done, "weft_broadcast_recv polled after it completed");
    expect_panic(null_tx, "weft_broadcast_new");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broadcast");
    TCase *tc = tcase_create("broadcast");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, every_receiver_sees_every_message);
    tcase_add_test(tc, odd_value_sizes);
    tcase_add_test(tc, send_without_receivers);
    tcase_add_test(tc, lagged_exact_counts);
    tcase_add_test(tc, lag_across_many_laps);
    tcase_add_test(tc, subscribe_and_clone_positions);
    tcase_add_test(tc, closed_after_held_messages);
    tcase_add_test(tc, recv_waits_and_is_woken);
    tcase_add_test(tc, dropped_recv_loses_nothing);
    tcase_add_test(tc, many_waiters_woken_in_batches);
    tcase_add_test(tc, ops_clone_and_drop);
    tcase_add_test(tc, ops_drop_only_large);
    tcase_add_test(tc, reader_waits_for_slot_being_written);
    tcase_add_test(tc, coop_budget_yields);
    tcase_add_test(tc, tasks_on_each_shape);
    tcase_add_test(tc, across_runtimes);
    tcase_add_test(tc, plain_threads);
    if (can_fork())
        tcase_add_test(tc, misuse_aborts);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
