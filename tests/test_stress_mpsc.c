/* tests/test_stress_mpsc.c - seeded chaos on mpsc channels: a sender
 * dropped with a reserved permit outstanding while the receiver closes;
 * many producers on 2 workers with exact counts and per-producer order;
 * senders aborted while they wait for room. WEFT_CHAOS_SEED replays one. */
#include "testlib.h"

/* ---- A permit outstanding while the sender drops and the receiver closes -- */

typedef struct {
    weft_mpsc_tx_t tx;
    weft_mpsc_permit_t permit;
    int rc;
} permit_arg_t;

static void *drop_sender_with_permit(void *arg)
{
    permit_arg_t *a = arg;
    weft_mpsc_tx_drop(&a->tx); /* the permit keeps the channel open */
    long v = 77;
    a->rc = weft_mpsc_permit_send(&a->permit, &v); /* 0, or EPIPE after the close */
    return NULL;
}

START_TEST(permit_vs_close)
{
    int iters = chaos_iters(200);
    uint64_t seed0 = chaos_seed0();
    weft_waker_t noop = weft_waker_noop();
    weft_context_t cx = { &noop };
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 200);
        permit_arg_t a;
        weft_mpsc_rx_t rx;
        ck_assert_int_eq(weft_mpsc_bounded(1, sizeof(long), NULL, &a.tx, &rx), 0);
        weft_mpsc_reserve_t r = weft_mpsc_reserve(&a.tx, &a.permit);
        int rc = -1;
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &cx, &rc), WEFT_READY);
        ck_assert_int_eq(rc, 0);
        weft_future_drop(WEFT_FUTURE(&r));
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, drop_sender_with_permit, &a), 0);
        weft_mpsc_close(&rx);
        pthread_join(t, NULL);
        weft__chaos_set(0, 0);
        long got = 0;
        int first = weft_mpsc_try_recv(&rx, &got);
        if (a.rc == 0) {
            ck_assert_int_eq(first, 0);
            ck_assert_int_eq(got, 77);
            ck_assert_int_eq(weft_mpsc_try_recv(&rx, &got), WEFT_EPIPE);
        } else {
            ck_assert_int_eq(a.rc, WEFT_EPIPE);
            ck_assert_int_eq(first, WEFT_EPIPE);
        }
        weft_mpsc_rx_drop(&rx);
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_MPSC), 0);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Many producers on 2 workers --------------------------------------------- */

#define PRODUCERS 8
#define PER 500

typedef struct {
    WEFT_FRAME;
    weft_mpsc_tx_t tx;
    uint64_t id, i, v;
    int rc;
    weft_mpsc_send_t send;
} producer_t;

/* An aborted producer's frame drops its sender (idempotent after the body's). */
static void producer_cleanup(producer_t *self)
{
    weft_mpsc_tx_drop(&self->tx);
}

WEFT_ASYNC_WITH_DROP(producer_t, producer, int, producer_cleanup)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < PER; self->i++) {
        self->v = self->id << 32 | self->i;
        WEFT_AWAIT(&self->send, weft_mpsc_send(&self->tx, &self->v), &self->rc);
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
    uint64_t v;
    uint64_t next[PRODUCERS];
    int rc;
    long total;
    weft_mpsc_recv_t recv;
} consumer_t;

WEFT_ASYNC(consumer_t, consumer, long)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->recv, weft_mpsc_recv(&self->rx, &self->v), &self->rc);
        if (self->rc != 0)
            break;
        uint64_t id = self->v >> 32;
        if (!WEFT_TEST_CHECK(id < PRODUCERS) || !WEFT_TEST_CHECK_INT_EQ(self->v & 0xffffffffu, self->next[id]))
            WEFT_RETURN(-1);
        self->next[id]++;
        self->total++;
    }
    weft_mpsc_rx_drop(&self->rx);
    WEFT_RETURN(self->total);
    WEFT_END();
}

START_TEST(many_producers)
{
    int iters = chaos_iters(200) / 10 + 1;
    uint64_t seed0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 20);
        weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
        weft_mpsc_tx_t tx;
        consumer_t c = { WEFT_FRAME_INIT(consumer) };
        ck_assert_int_eq(weft_mpsc_bounded(1 + (size_t)it % 7, sizeof(uint64_t), NULL, &tx, &c.rx), 0);
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
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
        ck_assert_int_eq(total, PRODUCERS * PER);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Senders aborted while waiting for room ---------------------------------- */

START_TEST(senders_aborted_while_waiting)
{
    int iters = chaos_iters(200) / 10 + 1;
    uint64_t seed0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 20);
        weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
        weft_mpsc_tx_t tx;
        consumer_t c = { WEFT_FRAME_INIT(consumer) };
        ck_assert_int_eq(weft_mpsc_bounded(2, sizeof(uint64_t), NULL, &tx, &c.rx), 0);
        weft_join_handle_t h[PRODUCERS];
        for (int p = 0; p < PRODUCERS; p++) {
            producer_t pr = { WEFT_FRAME_INIT(producer), .id = (uint64_t)p };
            weft_mpsc_tx_clone(&tx, &pr.tx);
            ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&pr), &h[p], NULL, WEFT_SITE), 0);
        }
        weft_mpsc_tx_drop(&tx);
        /* Abort the odd producers while they (likely) wait for room: the
         * consumer has not started, so the channel is full. Each aborted
         * frame drops its sender and its waiting send. */
        for (int p = 1; p < PRODUCERS; p += 2)
            weft_join_handle_abort(&h[p]);
        long total = 0;
        ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&c), &total), 0);
        for (int p = 0; p < PRODUCERS; p++) {
            int out = -1;
            int rc = join_out(rt, &h[p], &out);
            if (p % 2 == 0)
                ck_assert_int_eq(rc, 0);
        }
        weft_runtime_free(rt);
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
        /* The even ones sent everything; the odd ones a prefix each
         * (checked in order by the consumer). */
        ck_assert_int_ge(total, PRODUCERS / 2 * PER);
        ck_assert_int_le(total, PRODUCERS * PER);
    }
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress_mpsc");
    TCase *tc = tcase_create("stress_mpsc");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, permit_vs_close);
    tcase_add_test(tc, many_producers);
    tcase_add_test(tc, senders_aborted_while_waiting);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
