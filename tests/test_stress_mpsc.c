/* tests/test_stress_mpsc.c - seeded chaos on mpsc channels: a sender
 * dropped with a reserved permit outstanding while the receiver closes;
 * the receiver parking while senders publish (plain threads, a lost
 * wake-up shows as a stalled wait); a close or a receiver drop racing
 * senders in the middle of a send; permits, cancelled sends and blocking
 * sends racing a receiver, with the room exact afterwards; many producers
 * on 2 workers with exact counts and per-producer order; senders aborted
 * while they wait for room. Each runs some iterations with capacities
 * of 16 and more, where the receiver serves waiting senders in batches.
 * WEFT_CHAOS_SEED replays one. */
#include "testlib.h"

/* ---- Waiting by hand on a plain thread ---------------------------------------
 * A future polled with a waker that unparks this thread, parking at most
 * `ms` between polls: a wait that outlives it is reported (WEFT_EAGAIN,
 * the future dropped) instead of hanging the suite. */
static const weft_waker_vtable_t park_vt;
static weft_waker_t park_clone(const void *d)
{
    return (weft_waker_t){ &park_vt, d };
}
static void park_wake(const void *d)
{
    (void)weft__unpark((weft__parker_t *)(uintptr_t)d);
}
static void park_drop(const void *d)
{
    (void)d;
}
static const weft_waker_vtable_t park_vt = { park_clone, park_wake, park_wake, park_drop };

/* The parker outlives every use: each thread's lives until it is joined. */
static int poll_parked(weft_future_t *f, weft__parker_t *parker, long ms)
{
    weft_waker_t w = { &park_vt, parker };
    weft_context_t cx = { &w };
    int rc = WEFT_EAGAIN;
    while (weft_future_poll(f, &cx, &rc) == WEFT_PENDING) {
        if (!weft__park_timeout(parker, (uint64_t)ms * 1000000u)) {
            rc = WEFT_EAGAIN;
            break;
        }
    }
    weft_future_drop(f);
    return rc;
}

/* No wait in these scenarios may take this long: every one has a sender
 * or receiver about to act, so a stall is a lost wake-up. */
#define STALL_MS 30000

static int recv_parked(weft_mpsc_rx_t *rx, void *dst, weft__parker_t *parker, long ms)
{
    weft_mpsc_recv_t r = weft_mpsc_recv(rx, dst);
    return poll_parked(WEFT_FUTURE(&r), parker, ms);
}

/* ---- Producers on plain threads ---------------------------------------------------
 * Producer 0 sends with try_send (spinning on a full channel), producer 1
 * with blocking_send (waiting in the senders' queue); each sends its id in
 * the high half and its count in the low half, `limit` values or (limit
 * < 0) until the channel is closed. */
typedef struct {
    weft_mpsc_tx_t tx;
    uint64_t id;
    long limit;
    long sent; /* sends that returned 0: a prefix of this producer's values */
} thread_producer_t;

static void *thread_producer(void *arg)
{
    thread_producer_t *a = arg;
    for (uint64_t i = 0; a->limit < 0 || (long)i < a->limit; i++) {
        uint64_t v = a->id << 32 | i;
        int rc;
        if (a->id == 1) {
            rc = weft_mpsc_blocking_send(&a->tx, &v);
        } else {
            while ((rc = weft_mpsc_try_send(&a->tx, &v)) == WEFT_EAGAIN)
                sched_yield();
        }
        if (rc == WEFT_EPIPE && a->limit < 0)
            break;
        if (!WEFT_TEST_CHECK_INT_EQ(rc, 0))
            break;
        a->sent++;
    }
    weft_mpsc_tx_drop(&a->tx);
    return NULL;
}

/* Starts n producers, each with a clone of tx (the caller keeps tx). */
static void start_producers(weft_mpsc_tx_t *tx, thread_producer_t *a, pthread_t *t, int n, long limit)
{
    for (int p = 0; p < n; p++) {
        a[p] = (thread_producer_t){ .id = (uint64_t)p, .limit = limit };
        weft_mpsc_tx_clone(tx, &a[p].tx);
        ck_assert_int_eq(pthread_create(&t[p], NULL, thread_producer, &a[p]), 0);
    }
}

/* A capacity for iteration it: 1 to `small` mostly, every third one 16 to
 * 55 (where the receiver serves waiting senders in batches of cap/8). */
static size_t stress_cap(int it, size_t small)
{
    return it % 3 == 2 ? 16 + (size_t)it % 40 : 1 + (size_t)it % small;
}

/* ---- The receiver parking while senders publish ---------------------------------- */

#define PP_PRODUCERS 2
#define PP_PER 1500

START_TEST(park_vs_publish)
{
    int iters = chaos_iters(200) / 10 + 1;
    uint64_t seed0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 20);
        bool bounded = it % 5 != 4;
        bool blocking_rx = it % 2 == 1; /* weft_mpsc_blocking_recv, or a recv future parked by hand */
        weft_mpsc_tx_t tx;
        weft_mpsc_rx_t rx;
        ck_assert_int_eq(bounded ? weft_mpsc_bounded(stress_cap(it, 4), sizeof(uint64_t), NULL, &tx, &rx)
                                 : weft_mpsc_unbounded(sizeof(uint64_t), NULL, &tx, &rx), 0);
        thread_producer_t a[PP_PRODUCERS];
        pthread_t t[PP_PRODUCERS];
        start_producers(&tx, a, t, PP_PRODUCERS, PP_PER);
        weft_mpsc_tx_drop(&tx);
        weft__parker_t parker;
        weft__parker_init(&parker);
        uint64_t next[PP_PRODUCERS] = { 0 }, v = 0;
        long total = 0;
        int rc;
        while ((rc = blocking_rx ? weft_mpsc_blocking_recv(&rx, &v) : recv_parked(&rx, &v, &parker, STALL_MS)) == 0) {
            uint64_t id = v >> 32;
            ck_assert_uint_lt(id, PP_PRODUCERS);
            ck_assert_uint_eq(v & 0xffffffffu, next[id]);
            next[id]++;
            total++;
        }
        ck_assert_msg(rc == WEFT_EPIPE, "iteration %d (seed %" PRIu64 "): the receiver stalled (rc %d)", it,
                      seed0 + (uint64_t)it, rc);
        for (int p = 0; p < PP_PRODUCERS; p++)
            pthread_join(t[p], NULL);
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
        ck_assert_int_eq(total, PP_PRODUCERS * PP_PER);
        weft_mpsc_rx_drop(&rx);
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_MPSC), 0);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- A close or a receiver drop racing senders mid-send -------------------------------- */

static _Atomic long cp_drops;
static void cp_drop_value(void *v)
{
    (void)v;
    cp_drops++;
}

START_TEST(close_vs_publish)
{
    int iters = chaos_iters(200) / 4 + 1;
    uint64_t seed0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 50);
        bool bounded = it % 4 != 3;
        bool drop_rx = it % 3 == 2; /* drop the receiver instead of closing and draining */
        cp_drops = 0;
        weft_mpsc_tx_t tx;
        weft_mpsc_rx_t rx;
        ck_assert_int_eq(bounded ? weft_mpsc_bounded(stress_cap(it, 3), sizeof(uint64_t), cp_drop_value, &tx, &rx)
                                 : weft_mpsc_unbounded(sizeof(uint64_t), cp_drop_value, &tx, &rx), 0);
        thread_producer_t a[2]; /* until closed; producer 1 may be queued for room when it comes */
        pthread_t t[2];
        start_producers(&tx, a, t, 2, -1);
        weft_mpsc_tx_drop(&tx);
        weft__parker_t parker;
        weft__parker_init(&parker);
        uint64_t next[2] = { 0, 0 }, v = 0;
        long received = 0, before_close = it % 40;
        int rc = 0;
        while (received < before_close && (rc = recv_parked(&rx, &v, &parker, STALL_MS)) == 0) {
            ck_assert_uint_eq(v & 0xffffffffu, next[v >> 32]++);
            received++;
        }
        ck_assert_int_eq(rc, 0);
        if (drop_rx) {
            weft_mpsc_rx_drop(&rx); /* what is queued now, or lands later, goes to drop_value */
        } else {
            weft_mpsc_close(&rx);
            while ((rc = recv_parked(&rx, &v, &parker, STALL_MS)) == 0) {
                ck_assert_uint_eq(v & 0xffffffffu, next[v >> 32]++);
                received++;
            }
            ck_assert_msg(rc == WEFT_EPIPE, "iteration %d: the receiver stalled", it);
        }
        for (int p = 0; p < 2; p++)
            pthread_join(t[p], NULL);
        if (!drop_rx)
            weft_mpsc_rx_drop(&rx);
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_MPSC), 0);
        /* Every send that returned 0 was received or dropped, exactly once. */
        ck_assert_int_eq(received + cp_drops, a[0].sent + a[1].sent);
        if (!drop_rx)
            ck_assert_int_eq(cp_drops, 0);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Permits, cancelled sends and blocking sends: the room stays exact ---------------- */

#define CR_CAP 3
#define CR_CAP_BATCHED 24 /* served in batches of 3 */
#define CR_OPS 600

/* Each operation in turn: a reserve then a permit send or a permit drop,
 * a send future dropped if it has to wait (or sent), a blocking send, a
 * try_send. */
static void *cr_producer(void *arg)
{
    thread_producer_t *a = arg;
    weft__parker_t parker;
    weft__parker_init(&parker);
    for (uint64_t i = 0; (long)i < a->limit; i++) {
        uint64_t v = a->id << 32 | a->sent;
        int rc = 0;
        switch (i % 5) {
        case 0:
        case 1: {
            weft_mpsc_permit_t p;
            weft_mpsc_reserve_t r = weft_mpsc_reserve(&a->tx, &p);
            rc = poll_parked(WEFT_FUTURE(&r), &parker, STALL_MS);
            if (!WEFT_TEST_CHECK_INT_EQ(rc, 0))
                goto out;
            if (i % 5 == 1) {
                weft_mpsc_permit_drop(&p);
                continue;
            }
            rc = weft_mpsc_permit_send(&p, &v);
            break;
        }
        case 2: {
            weft_waker_t noop = weft_waker_noop();
            weft_context_t cx = { &noop };
            weft_mpsc_send_t s = weft_mpsc_send(&a->tx, &v);
            rc = -1;
            weft_poll_t st = weft_future_poll(WEFT_FUTURE(&s), &cx, &rc);
            WEFT_CHAOS();
            if (st == WEFT_PENDING) {
                /* Cancelled while queued, or served and not yet polled: the
                 * room it held goes back. Poll once more to see which. */
                if (weft_future_poll(WEFT_FUTURE(&s), &cx, &rc) == WEFT_PENDING) {
                    weft_future_drop(WEFT_FUTURE(&s));
                    continue;
                }
            }
            weft_future_drop(WEFT_FUTURE(&s));
            break;
        }
        case 3:
            rc = weft_mpsc_blocking_send(&a->tx, &v);
            break;
        default:
            while ((rc = weft_mpsc_try_send(&a->tx, &v)) == WEFT_EAGAIN)
                sched_yield();
            break;
        }
        if (!WEFT_TEST_CHECK_INT_EQ(rc, 0))
            break;
        a->sent++;
    }
out:
    weft_mpsc_tx_drop(&a->tx);
    return NULL;
}

static _Atomic int cr_done;
static void *cr_run(void *arg)
{
    cr_producer(arg);
    cr_done++;
    return NULL;
}

START_TEST(credits_keep_room_exact)
{
    int iters = chaos_iters(200) / 10 + 1;
    uint64_t seed0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 30);
        cr_done = 0;
        weft_mpsc_tx_t tx;
        weft_mpsc_rx_t rx;
        int cap = it % 2 ? CR_CAP_BATCHED : CR_CAP;
        ck_assert_int_eq(weft_mpsc_bounded((size_t)cap, sizeof(uint64_t), NULL, &tx, &rx), 0);
        thread_producer_t a[3];
        pthread_t t[3];
        for (int p = 0; p < 3; p++) {
            a[p] = (thread_producer_t){ .id = (uint64_t)p, .limit = CR_OPS };
            weft_mpsc_tx_clone(&tx, &a[p].tx);
            ck_assert_int_eq(pthread_create(&t[p], NULL, cr_run, &a[p]), 0);
        }
        /* tx stays: the channel stays open; receive until the producers
         * are done and nothing is left. */
        weft__parker_t parker;
        weft__parker_init(&parker);
        uint64_t next[3] = { 0, 0, 0 }, v = 0;
        long received = 0;
        for (;;) {
            int rc = recv_parked(&rx, &v, &parker, 5);
            if (rc == WEFT_EAGAIN) { /* nothing for 5 ms */
                if (cr_done < 3)
                    continue;
                rc = weft_mpsc_try_recv(&rx, &v); /* every send has completed: what is left */
                if (rc == WEFT_EAGAIN)
                    break;
            }
            ck_assert_int_eq(rc, 0);
            ck_assert_uint_eq(v & 0xffffffffu, next[v >> 32]++);
            received++;
        }
        for (int p = 0; p < 3; p++)
            pthread_join(t[p], NULL);
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
        ck_assert_int_eq(received, a[0].sent + a[1].sent + a[2].sent);
        /* No room was lost or made up: exactly cap sends fit now. */
        for (int i = 0; i < cap; i++)
            ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), 0);
        ck_assert_int_eq(weft_mpsc_try_send(&tx, &v), WEFT_EAGAIN);
        weft_mpsc_tx_drop(&tx);
        weft_mpsc_rx_drop(&rx);
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_MPSC), 0);
    }
    ASSERT_NO_LIVE();
}
END_TEST

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
        ck_assert_int_eq(weft_mpsc_bounded(stress_cap(it, 7), sizeof(uint64_t), NULL, &tx, &c.rx), 0);
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
        ck_assert_int_eq(weft_mpsc_bounded(it % 3 == 2 ? 40 : 2, sizeof(uint64_t), NULL, &tx, &c.rx), 0);
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
    tcase_add_test(tc, park_vs_publish);
    tcase_add_test(tc, close_vs_publish);
    tcase_add_test(tc, credits_keep_room_exact);
    tcase_add_test(tc, many_producers);
    tcase_add_test(tc, senders_aborted_while_waiting);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
