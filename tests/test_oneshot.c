/* tests/test_oneshot.c - the oneshot channel: values, both sides' drops
 * observed by the other, close, try_recv, closed(), value destructors, and
 * close + try_recv racing a send on another thread (seeded chaos). */
#include "testlib.h"

static weft_waker_t noop;
static weft_context_t cx;
static void setup(void)
{
    noop = weft_waker_noop();
    cx.waker = &noop;
}

static _Atomic int value_drops;
static void drop_value(void *v)
{
    free(*(char **)v);
    value_drops++;
}

START_TEST(send_then_recv)
{
    weft_oneshot_tx_t tx;
    weft_oneshot_rx_t rx;
    ck_assert_int_eq(weft_oneshot_new(sizeof(long), NULL, &tx, &rx), 0);
    long v = 7, got = 0;
    int rc = -1;
    ck_assert(!weft_oneshot_is_closed(&tx));
    ck_assert_int_eq(weft_future_poll(weft_oneshot_recv(&rx, &got), &cx, &rc), WEFT_PENDING);
    ck_assert_int_eq(weft_oneshot_send(&tx, &v), 0);
    ck_assert_ptr_null(tx.chan_); /* consumed */
    ck_assert_int_eq(weft_future_poll(&rx.future, &cx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(got, 7);
    weft_oneshot_rx_drop(&rx);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(bad_input)
{
    weft_oneshot_tx_t tx;
    weft_oneshot_rx_t rx;
    ck_assert_int_eq(weft_oneshot_new(0, NULL, &tx, &rx), WEFT_EINVAL);
    ck_assert_int_eq(weft_oneshot_new(1 << 20, NULL, &tx, &rx), WEFT_EINVAL);
    /* A NULL tx or rx aborts: tests/test_api.c, null_args. */
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_oneshot_new(8, NULL, &tx, &rx), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(sender_drop_is_observed)
{
    weft_oneshot_tx_t tx;
    weft_oneshot_rx_t rx;
    ck_assert_int_eq(weft_oneshot_new(4, NULL, &tx, &rx), 0);
    int rc = 0, got;
    ck_assert_int_eq(weft_future_poll(weft_oneshot_recv(&rx, &got), &cx, &rc), WEFT_PENDING);
    weft_oneshot_tx_drop(&tx);
    ck_assert_int_eq(weft_future_poll(&rx.future, &cx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EPIPE);
    weft_oneshot_rx_drop(&rx);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(receiver_drop_is_observed)
{
    weft_oneshot_tx_t tx;
    weft_oneshot_rx_t rx;
    ck_assert_int_eq(weft_oneshot_new(4, NULL, &tx, &rx), 0);
    weft_oneshot_closed_t cl = weft_oneshot_closed(&tx);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&cl), &cx, NULL), WEFT_PENDING);
    weft_oneshot_rx_drop(&rx);
    ck_assert(weft_oneshot_is_closed(&tx));
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&cl), &cx, NULL), WEFT_READY);
    int v = 1;
    ck_assert_int_eq(weft_oneshot_send(&tx, &v), WEFT_EPIPE);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(close_then_try_recv)
{
    weft_oneshot_tx_t tx;
    weft_oneshot_rx_t rx;
    ck_assert_int_eq(weft_oneshot_new(4, NULL, &tx, &rx), 0);
    int v = 3, got = 0;
    ck_assert_int_eq(weft_oneshot_try_recv(&rx, &got), WEFT_EAGAIN);
    ck_assert_int_eq(weft_oneshot_send(&tx, &v), 0);
    weft_oneshot_close(&rx);
    /* A value sent before close can still be taken, once. */
    ck_assert_int_eq(weft_oneshot_try_recv(&rx, &got), 0);
    ck_assert_int_eq(got, 3);
    ck_assert_int_eq(weft_oneshot_try_recv(&rx, &got), WEFT_EPIPE);
    weft_oneshot_rx_drop(&rx);
    /* Close before send: the send fails and the value stays with the caller. */
    ck_assert_int_eq(weft_oneshot_new(4, NULL, &tx, &rx), 0);
    weft_oneshot_close(&rx);
    ck_assert_int_eq(weft_oneshot_send(&tx, &v), WEFT_EPIPE);
    ck_assert_int_eq(weft_oneshot_try_recv(&rx, &got), WEFT_EPIPE);
    weft_oneshot_rx_drop(&rx);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(closed_receiver_does_not_wait)
{
    weft_oneshot_tx_t tx;
    weft_oneshot_rx_t rx;
    ck_assert_int_eq(weft_oneshot_new(4, NULL, &tx, &rx), 0);
    weft_oneshot_close(&rx);
    int rc = 0, got;
    /* The sender is alive, but can never send now: the wait ends at once. */
    ck_assert_int_eq(weft_future_poll(weft_oneshot_recv(&rx, &got), &cx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EPIPE);
    weft_oneshot_rx_drop(&rx);
    int v = 1;
    ck_assert_int_eq(weft_oneshot_send(&tx, &v), WEFT_EPIPE);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(unreceived_value_is_destroyed)
{
    value_drops = 0;
    weft_oneshot_tx_t tx;
    weft_oneshot_rx_t rx;
    ck_assert_int_eq(weft_oneshot_new(sizeof(char *), drop_value, &tx, &rx), 0);
    char *p = strdup("payload");
    ck_assert_int_eq(weft_oneshot_send(&tx, &p), 0);
    weft_oneshot_rx_drop(&rx); /* never received */
    ck_assert_int_eq(value_drops, 1);
    /* Received into NULL: discarded through the destructor too. */
    ck_assert_int_eq(weft_oneshot_new(sizeof(char *), drop_value, &tx, &rx), 0);
    p = strdup("payload");
    ck_assert_int_eq(weft_oneshot_send(&tx, &p), 0);
    int rc = -1;
    ck_assert_int_eq(weft_future_poll(weft_oneshot_recv(&rx, NULL), &cx, &rc), WEFT_READY);
    ck_assert_int_eq(value_drops, 2);
    weft_oneshot_rx_drop(&rx);
    ck_assert_int_eq(value_drops, 2);
    ASSERT_NO_LIVE();
}
END_TEST

/* Close + try_recv racing send from another thread: the value is either
 * received or returned to the sender, never lost or duplicated. */
typedef struct {
    weft_oneshot_tx_t tx;
    int send_rc;
} race_t;
static void *race_sender(void *arg)
{
    race_t *r = arg;
    char *p = strdup("v");
    r->send_rc = weft_oneshot_send(&r->tx, &p);
    if (r->send_rc != 0)
        free(p); /* returned to us */
    return NULL;
}

START_TEST(close_races_send)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) * 5;
    for (int i = 0; i < n; i++) {
        weft__chaos_set(s0 + (uint64_t)i, 100);
        value_drops = 0;
        race_t r;
        weft_oneshot_rx_t rx;
        ck_assert_int_eq(weft_oneshot_new(sizeof(char *), drop_value, &r.tx, &rx), 0);
        pthread_t th;
        pthread_create(&th, NULL, race_sender, &r);
        if (i & 1)
            weft_oneshot_close(&rx);
        char *got = NULL;
        int rc = weft_oneshot_try_recv(&rx, &got);
        pthread_join(th, NULL);
        if (rc == 0)
            free(got);
        int rc2 = weft_oneshot_try_recv(&rx, &got);
        if (rc2 == 0)
            free(got);
        weft_oneshot_rx_drop(&rx);
        /* Exactly one owner freed the value: the receiver, the sender (send
         * failed) or the channel's destructor. */
        int owners = (rc == 0) + (rc2 == 0) + (r.send_rc != 0) + value_drops;
        ck_assert_msg(owners == 1, "seed %llu: value owned %d times (rc %d rc2 %d send %d drops %d)",
                      (unsigned long long)(s0 + (uint64_t)i), owners, rc, rc2, r.send_rc, value_drops);
        ASSERT_NO_LIVE();
    }
    weft__chaos_set(0, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("oneshot");
    TCase *tc = tcase_create("oneshot");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, send_then_recv);
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, sender_drop_is_observed);
    tcase_add_test(tc, receiver_drop_is_observed);
    tcase_add_test(tc, close_then_try_recv);
    tcase_add_test(tc, closed_receiver_does_not_wait);
    tcase_add_test(tc, unreceived_value_is_destroyed);
    tcase_add_test(tc, close_races_send);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
