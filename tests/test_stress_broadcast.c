/* tests/test_stress_broadcast.c - seeded chaos on broadcast channels: a
 * sender overwriting the ring while a slow receiver reads it (the lag
 * counts exactly the overwritten messages, no torn or freed value is ever
 * read); many receivers and two senders on 2 workers; receivers aborted
 * and recv futures dropped mid-wait while sends go on. WEFT_CHAOS_SEED
 * replays one. */
#include "broadcast_tasks.h"

/* ---- Overwrite racing a lagging receiver (plain threads) ---------------------
 * One sender, so a message's position is its sequence number: after a lag
 * of m the next message read must be exactly m further on. */
#define OVERWRITE_N 400

typedef struct {
    weft_broadcast_tx_t tx;
    bool owned;
} overwrite_arg_t;

/* Owned values: a pointer to a box with an atomic count; the channel's
 * reference is dropped when overwritten, the reader's by the reader. */
typedef struct {
    _Atomic int refs;
    msg_t m;
} box_t;
static _Atomic int boxes_live, box_errors;
static void box_unref(box_t *b)
{
    int before = atomic_fetch_sub(&b->refs, 1);
    if (before <= 0)
        box_errors++;
    if (before == 1) {
        boxes_live--;
        free(b);
    }
}
static void box_clone(void *copy)
{
    box_t *b;
    memcpy(&b, copy, sizeof b);
    if (atomic_fetch_add(&b->refs, 1) <= 0) /* cloned after its last reference went */
        box_errors++;
}
static void box_drop(void *value)
{
    box_t *b;
    memcpy(&b, value, sizeof b);
    box_unref(b);
}
static const weft_value_ops_t box_ops = { box_clone, box_drop };

static void *overwrite_sender(void *arg)
{
    overwrite_arg_t *a = arg;
    for (uint64_t i = 0; i < OVERWRITE_N; i++) {
        int rc;
        if (a->owned) {
            box_t *b = malloc(sizeof *b);
            atomic_init(&b->refs, 1);
            b->m = msg_of(i);
            boxes_live++;
            rc = weft_broadcast_send(&a->tx, &b);
        } else {
            msg_t m = msg_of(i);
            rc = weft_broadcast_send(&a->tx, &m);
        }
        if (!WEFT_TEST_CHECK_INT_EQ(rc, 1))
            break;
    }
    weft_broadcast_tx_drop(&a->tx);
    return NULL;
}

START_TEST(overwrite_vs_lagging_receiver)
{
    int iters = chaos_iters(200);
    uint64_t seed0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        bool owned = it % 2 == 1;
        size_t cap = (size_t)1 << (it / 2 % 3); /* 1, 2, 4 */
        weft__chaos_set(seed0 + (uint64_t)it, 200);
        overwrite_arg_t a = { .owned = owned };
        weft_broadcast_rx_t rx;
        ck_assert_int_eq(weft_broadcast_new(cap, owned ? sizeof(box_t *) : sizeof(msg_t), owned ? &box_ops : NULL,
                                            &a.tx, &rx), 0);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, overwrite_sender, &a), 0);
        uint64_t expect = 0, received = 0, missed = 0;
        for (unsigned k = 0;; k++) {
            msg_t m;
            box_t *b = NULL;
            int rc = owned ? weft_broadcast_try_recv(&rx, &b) : weft_broadcast_try_recv(&rx, &m);
            if (rc == WEFT_EPIPE)
                break;
            if (rc == WEFT_EAGAIN) {
                sched_yield();
                continue;
            }
            if (rc == WEFT_ELAGGED) {
                uint64_t n = weft_broadcast_rx_missed(&rx);
                ck_assert_uint_gt(n, 0);
                missed += n;
                expect += n;
                continue;
            }
            ck_assert_int_eq(rc, 0);
            if (owned) {
                m = b->m;
                box_unref(b);
            }
            ck_assert_msg(msg_ok(&m), "torn message at %llu", (unsigned long long)expect);
            ck_assert_uint_eq(m.seq, expect); /* exactly the next, or exactly past the lag */
            expect++;
            received++;
            if (k % 3 == 0)
                sched_yield(); /* a slow reader: let the sender lap it */
        }
        pthread_join(t, NULL);
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
        ck_assert_uint_eq(received + missed, OVERWRITE_N);
        weft_broadcast_rx_drop(&rx);
        ck_assert_int_eq(boxes_live, 0);
        ck_assert_int_eq(box_errors, 0);
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_BROADCAST), 0);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Many receivers, two senders, 2 workers -------------------------------------- */

#define SENDERS 2
#define PER 400
#define RECEIVERS 12

/* Spawns the senders on rt (they own the channel's senders); *tx is dropped. */
static void spawn_senders(weft_runtime_t *rt, weft_broadcast_tx_t *tx, weft_join_handle_t *h)
{
    for (int s = 0; s < SENDERS; s++) {
        sender_t st = { WEFT_FRAME_INIT(sender), .id = (uint64_t)s, .count = PER };
        weft_broadcast_tx_clone(tx, &st.tx);
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&st), &h[s], NULL, WEFT_SITE), 0);
    }
    weft_broadcast_tx_drop(tx);
}

/* Spawns n receiver tasks on rt, each standing where first stands. */
static void spawn_receivers(weft_runtime_t *rt, const weft_broadcast_rx_t *first, weft_join_handle_t *h, int n)
{
    for (int k = 0; k < n; k++) {
        receiver_t r = { WEFT_FRAME_INIT(receiver), .expect = SENDERS * PER };
        weft_broadcast_rx_clone(first, &r.rx);
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&r), &h[k], NULL, WEFT_SITE), 0);
    }
}

static void join_senders(weft_runtime_t *rt, weft_join_handle_t *h)
{
    for (int s = 0; s < SENDERS; s++) {
        int out = -1;
        ck_assert_int_eq(join_out(rt, &h[s], &out), 0);
    }
}

START_TEST(many_receivers_two_workers)
{
    int iters = chaos_iters(200) / 10 + 1;
    uint64_t seed0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 20);
        weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
        weft_broadcast_tx_t tx;
        weft_broadcast_rx_t first;
        ck_assert_int_eq(weft_broadcast_new((size_t)2 << (it % 4), sizeof(msg_t), NULL, &tx, &first), 0);
        weft_join_handle_t hr[RECEIVERS], hs[SENDERS];
        spawn_receivers(rt, &first, hr, RECEIVERS);
        weft_broadcast_rx_drop(&first);
        spawn_senders(rt, &tx, hs);
        join_senders(rt, hs);
        for (int k = 0; k < RECEIVERS; k++) {
            uint64_t n = 0;
            ck_assert_int_eq(join_out(rt, &hr[k], &n), 0);
            ck_assert_uint_gt(n, 0);
        }
        weft_runtime_free(rt);
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Receivers dropped and recv futures dropped mid-wait while sending ---------
 * A flaky receiver drops its pending recv future every other time it is
 * polled and starts a new one (a select that lost); it must still account
 * for every message. Aborted receivers drop their pending future and their
 * receiver from their frame. More waiters than one wake list, so sends
 * wake them in batches while some drop themselves. */
#define FLAKY 36
#define ABORTED 8

typedef struct {
    weft_future_t future;
    weft_broadcast_rx_t rx;
    weft_broadcast_recv_t r;
    bool started;
    unsigned pendings;
    msg_t m;
    uint64_t next[BC_MAX_SENDERS], received, missed;
} flaky_t;

static weft_poll_t flaky_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    flaky_t *fl = (flaky_t *)(void *)f;
    for (;;) {
        if (!fl->started) {
            fl->r = weft_broadcast_recv(&fl->rx, &fl->m);
            fl->started = true;
        }
        int rc = -1;
        if (weft_future_poll(WEFT_FUTURE(&fl->r), cx, &rc) == WEFT_PENDING) {
            if (++fl->pendings % 2 == 0)
                return WEFT_PENDING; /* the budget, or a real wait */
            weft_future_drop(WEFT_FUTURE(&fl->r)); /* lost the select */
            fl->started = false;
            WEFT_CHAOS();
            continue; /* a new one, which waits in its turn */
        }
        weft_future_drop(WEFT_FUTURE(&fl->r));
        fl->started = false;
        if (rc == WEFT_EPIPE)
            break;
        if (rc == WEFT_ELAGGED) {
            fl->missed += weft_broadcast_rx_missed(&fl->rx);
            continue;
        }
        if (!WEFT_TEST_CHECK_INT_EQ(rc, 0) || !check_msg(&fl->m, fl->next))
            break;
        fl->received++;
    }
    WEFT_TEST_CHECK_INT_EQ(fl->received + fl->missed, SENDERS * PER);
    if (out != NULL)
        *(uint64_t *)out = fl->received;
    return WEFT_READY;
}
static void flaky_drop(weft_future_t *f)
{
    flaky_t *fl = (flaky_t *)(void *)f;
    if (fl->started)
        weft_future_drop(WEFT_FUTURE(&fl->r));
    weft_broadcast_rx_drop(&fl->rx);
}
static const weft_future_vtable_t flaky_vt = { flaky_poll, flaky_drop, NULL, sizeof(flaky_t), sizeof(uint64_t),
                                               "flaky" };

START_TEST(drops_while_sending)
{
    int iters = chaos_iters(200) / 20 + 1;
    uint64_t seed0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 20);
        weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
        weft_broadcast_tx_t tx;
        weft_broadcast_rx_t first;
        ck_assert_int_eq(weft_broadcast_new(16, sizeof(msg_t), NULL, &tx, &first), 0);
        weft_join_handle_t hf[FLAKY], ha[ABORTED], hs[SENDERS];
        for (int k = 0; k < FLAKY; k++) {
            flaky_t fl;
            memset(&fl, 0, sizeof fl);
            fl.future.vtable = &flaky_vt;
            weft_broadcast_rx_clone(&first, &fl.rx);
            ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), &fl.future, &hf[k], NULL, WEFT_SITE), 0);
        }
        spawn_receivers(rt, &first, ha, ABORTED);
        weft_broadcast_rx_drop(&first);
        spawn_senders(rt, &tx, hs);
        /* Abort while the sends go on: each frame drops its recv future
         * (maybe linked, maybe being woken) and its receiver. */
        for (int k = 0; k < ABORTED; k++) {
            if (k % 2 == 0)
                sched_yield();
            weft_join_handle_abort(&ha[k]);
        }
        join_senders(rt, hs);
        for (int k = 0; k < FLAKY; k++) {
            uint64_t n = 0;
            ck_assert_int_eq(join_out(rt, &hf[k], &n), 0);
        }
        for (int k = 0; k < ABORTED; k++) {
            uint64_t n = 0;
            (void)join_out(rt, &ha[k], &n); /* cancelled, or finished first */
        }
        weft_runtime_free(rt);
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
    }
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress_broadcast");
    TCase *tc = tcase_create("stress_broadcast");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, overwrite_vs_lagging_receiver);
    tcase_add_test(tc, many_receivers_two_workers);
    tcase_add_test(tc, drops_while_sending);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
