/* tests/test_stress_watch.c - seeded chaos on watch channels: a writer
 * (send, send_replace, send_modify) racing readers on plain threads and
 * tasks, with a value whose every word is its version, so a torn read or
 * a version going backwards shows; changed futures dropped while sends
 * race their wake-up; the last sender dropped (by two threads at once)
 * while receivers wait. WEFT_CHAOS_SEED replays one. */
#include "testlib.h"

/* 256 bytes, every word equal to the version that wrote it. */
#define WORDS 32
typedef struct {
    uint64_t w[WORDS];
} big_t;

static big_t big_of(uint64_t v)
{
    big_t b;
    for (int i = 0; i < WORDS; i++)
        b.w[i] = v;
    return b;
}

/* Whether every word of *b is `ver`; records the first bad word otherwise. */
static bool check_big(const big_t *b, uint64_t ver)
{
    for (int i = 0; i < WORDS; i++)
        if (!WEFT_TEST_CHECK_MSG(b->w[i] == ver, "torn read: word %d is %" PRIu64 ", version %" PRIu64, i,
                                 b->w[i], ver))
            return false;
    return true;
}

/* ---- A writer racing readers ----------------------------------------------------- */

#define SENDS 300

static bool bump_in_place(void *value, void *arg)
{
    (void)arg;
    big_t *b = value;
    uint64_t next = b->w[0] + 1; /* the words are the version: this is the next one */
    for (int i = 0; i < WORDS; i++) {
        b->w[i] = next;
        if (i == WORDS / 2)
            WEFT_CHAOS(); /* half written: a reader that got in would see it */
    }
    return true;
}

typedef struct {
    weft_watch_tx_t tx;
} writer_arg_t;

/* Sends versions 1..SENDS, rotating through the three ways to send. */
static void *writer(void *arg)
{
    writer_arg_t *a = arg;
    for (uint64_t v = 1; v <= SENDS; v++) {
        big_t b = big_of(v), old;
        switch (v % 3) {
        case 0:
            WEFT_TEST_CHECK_INT_EQ(weft_watch_send(&a->tx, &b), 0);
            break;
        case 1:
            weft_watch_send_replace(&a->tx, &b, &old);
            check_big(&old, v - 1); /* the old value comes back whole */
            break;
        default:
            weft_watch_send_modify(&a->tx, bump_in_place, NULL);
            break;
        }
    }
    weft_watch_tx_drop(&a->tx);
    return NULL;
}

/* A plain thread borrowing until it reads the last version. */
static void *reader(void *arg)
{
    weft_watch_rx_t rx;
    weft_watch_rx_clone(arg, &rx);
    uint64_t last = 0;
    while (last < SENDS) {
        big_t b;
        uint64_t ver = (last & 1) ? weft_watch_borrow(&rx, &b) : weft_watch_borrow_and_update(&rx, &b);
        if (!check_big(&b, ver) || !WEFT_TEST_CHECK(ver >= last))
            break;
        last = ver;
    }
    weft_watch_rx_drop(&rx);
    return NULL;
}

/* A task waiting on changed and re-reading, until the close. */
typedef struct {
    WEFT_FRAME;
    weft_watch_rx_t rx;
    big_t b;
    uint64_t last, ver;
    int rc;
    weft_watch_changed_t changed;
} waiter_t;

static void waiter_cleanup(waiter_t *self)
{
    weft_watch_rx_drop(&self->rx);
}

WEFT_ASYNC_WITH_DROP(waiter_t, waiter, uint64_t, waiter_cleanup)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->changed, weft_watch_changed(&self->rx), &self->rc);
        if (self->rc != 0)
            break;
        self->ver = weft_watch_borrow_and_update(&self->rx, &self->b);
        if (!check_big(&self->b, self->ver) || !WEFT_TEST_CHECK(self->ver > self->last))
            WEFT_RETURN(0);
        self->last = self->ver;
    }
    WEFT_TEST_CHECK_INT_EQ(self->rc, WEFT_EPIPE);
    WEFT_RETURN(self->last);
    WEFT_END();
}

/* Spawns n waiter tasks on rt, each with its own clone of rx. */
static void spawn_waiters(weft_runtime_t *rt, weft_watch_rx_t *rx, weft_join_handle_t *h, int n)
{
    for (int i = 0; i < n; i++) {
        waiter_t w = { WEFT_FRAME_INIT(waiter) };
        weft_watch_rx_clone(rx, &w.rx);
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&w), &h[i], NULL, WEFT_SITE), 0);
    }
}

START_TEST(writer_vs_readers)
{
    int iters = chaos_iters(200) / 10 + 1;
    uint64_t seed0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 20);
        weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
        writer_arg_t a;
        weft_watch_rx_t rx;
        big_t init = big_of(0);
        ck_assert_int_eq(weft_watch_new(sizeof init, &init, NULL, &a.tx, &rx), 0);
        weft_join_handle_t h[2];
        spawn_waiters(rt, &rx, h, 2);
        pthread_t tr, tw;
        ck_assert_int_eq(pthread_create(&tr, NULL, reader, &rx), 0);
        ck_assert_int_eq(pthread_create(&tw, NULL, writer, &a), 0);
        pthread_join(tw, NULL);
        pthread_join(tr, NULL);
        uint64_t last[2] = { 0, 0 };
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(join_out(rt, &h[i], &last[i]), 0);
        weft_watch_rx_drop(&rx);
        weft_runtime_free(rt);
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
        for (int i = 0; i < 2; i++)
            ck_assert_uint_eq(last[i], SENDS); /* the last change is seen before the close */
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_WATCH), 0);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- changed futures dropped while sends race their wake-up ---------------------- */

#define DROPPERS 2
#define ROUNDS 200

typedef struct {
    weft_watch_rx_t rx;
    counter_t ctr;
    _Atomic int *stop;
} dropper_arg_t;

/* Creates a changed future, polls it once or twice, and drops it, again
 * and again: drops land before, during and after a send's batch wake.
 * Every version it completes on is newer than the last. */
static void *dropper(void *arg)
{
    dropper_arg_t *a = arg;
    weft_waker_t w = counter_waker(&a->ctr);
    weft_context_t cx = { &w };
    uint64_t last = 0;
    for (unsigned i = 0; !atomic_load(a->stop); i++) {
        weft_watch_changed_t f = weft_watch_changed(&a->rx);
        int rc = -1;
        weft_poll_t p = weft_future_poll(WEFT_FUTURE(&f), &cx, &rc);
        if (p == WEFT_PENDING && (i & 1))
            p = weft_future_poll(WEFT_FUTURE(&f), &cx, &rc); /* a re-poll: refreshes or completes */
        WEFT_CHAOS();
        weft_future_drop(WEFT_FUTURE(&f));
        if (p == WEFT_READY) {
            if (rc == WEFT_EPIPE)
                break;
            if (!WEFT_TEST_CHECK_INT_EQ(rc, 0) || !WEFT_TEST_CHECK(a->rx.seen_ > last))
                break;
            last = a->rx.seen_;
        }
    }
    weft_watch_rx_drop(&a->rx);
    return NULL;
}

START_TEST(changed_dropped_while_sending)
{
    int iters = chaos_iters(200) / 4 + 1;
    uint64_t seed0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 100);
        weft_watch_tx_t tx;
        uint64_t v = 0;
        _Atomic int stop = 0;
        dropper_arg_t a[DROPPERS];
        memset(a, 0, sizeof a);
        ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &tx, &a[0].rx), 0);
        pthread_t t[DROPPERS];
        for (int i = 0; i < DROPPERS; i++) {
            if (i > 0)
                weft_watch_rx_clone(&a[0].rx, &a[i].rx);
            a[i].stop = &stop;
        }
        for (int i = 0; i < DROPPERS; i++)
            ck_assert_int_eq(pthread_create(&t[i], NULL, dropper, &a[i]), 0);
        for (v = 1; v <= ROUNDS; v++) {
            if (weft_watch_send(&tx, &v) != 0)
                break; /* cannot happen while the droppers hold receivers */
            if (v % 16 == 0)
                sched_yield();
        }
        /* Half the time close under the droppers, else stop them first. */
        if (it & 1) {
            weft_watch_tx_drop(&tx);
        } else {
            stop = 1;
        }
        for (int i = 0; i < DROPPERS; i++)
            pthread_join(t[i], NULL);
        weft_watch_tx_drop(&tx);
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
        for (int i = 0; i < DROPPERS; i++) /* every waker clone was dropped or woken */
            ck_assert_int_eq(a[i].ctr.clones, a[i].ctr.drops);
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_WATCH), 0);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* The same from tasks: waiters aborted (their changed future dropped
 * mid-wait) while a plain thread sends. */
typedef struct {
    weft_watch_tx_t tx;
} sender_arg_t;

static void *sender(void *arg)
{
    sender_arg_t *a = arg;
    for (uint64_t i = 1; i <= ROUNDS; i++) {
        big_t b = big_of(i);
        weft_watch_send_replace(&a->tx, &b, NULL);
    }
    weft_watch_tx_drop(&a->tx);
    return NULL;
}

#define TASKS 6

START_TEST(waiters_aborted_while_sending)
{
    int iters = chaos_iters(200) / 10 + 1;
    uint64_t seed0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 20);
        weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
        sender_arg_t a;
        weft_watch_rx_t rx;
        big_t init = big_of(0);
        ck_assert_int_eq(weft_watch_new(sizeof init, &init, NULL, &a.tx, &rx), 0);
        weft_join_handle_t h[TASKS];
        spawn_waiters(rt, &rx, h, TASKS);
        weft_watch_rx_drop(&rx);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, sender, &a), 0);
        if (it % 3 != 0)
            sched_yield();
        for (int i = 1; i < TASKS; i += 2)
            weft_join_handle_abort(&h[i]);
        pthread_join(t, NULL);
        uint64_t last[TASKS] = { 0 };
        int rc[TASKS];
        for (int i = 0; i < TASKS; i++)
            rc[i] = join_out(rt, &h[i], &last[i]);
        weft_runtime_free(rt);
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
        for (int i = 0; i < TASKS; i += 2) { /* the ones not aborted */
            ck_assert_int_eq(rc[i], 0);
            ck_assert_uint_eq(last[i], ROUNDS);
        }
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_WATCH), 0);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- The last sender dropped while receivers wait -------------------------------- */

typedef struct {
    weft_watch_tx_t tx;
    uint64_t v;
} closer_arg_t;

/* One send (maybe), then the drop: two of these race to be the last. */
static void *closer(void *arg)
{
    closer_arg_t *a = arg;
    if (a->v != 0) {
        big_t b = big_of(a->v);
        weft_watch_send_replace(&a->tx, &b, NULL);
    }
    weft_watch_tx_drop(&a->tx);
    return NULL;
}

START_TEST(sender_dropped_while_waiting)
{
    int iters = chaos_iters(200) / 5 + 1;
    uint64_t seed0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 100);
        int shape = it % N_SHAPES;
        weft_runtime_t *rt = shape_rt(shape);
        closer_arg_t c[2];
        weft_watch_rx_t rx;
        big_t init = big_of(0);
        ck_assert_int_eq(weft_watch_new(sizeof init, &init, NULL, &c[0].tx, &rx), 0);
        weft_watch_tx_clone(&c[0].tx, &c[1].tx);
        /* Only the first closer sends (version 1), so the final version
         * is 1 whatever the order: every waiter ends on it. */
        c[0].v = 1;
        c[1].v = 0;
        weft_join_handle_t h[TASKS];
        spawn_waiters(rt, &rx, h, TASKS);
        weft_watch_rx_drop(&rx);
        if (shape != 0 && it % 2 == 0)
            sleep_ms(1); /* let them reach the wait first, half the time */
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(pthread_create(&t[i], NULL, closer, &c[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        uint64_t last[TASKS] = { 0 };
        for (int i = 0; i < TASKS; i++)
            ck_assert_int_eq(join_out(rt, &h[i], &last[i]), 0);
        weft_runtime_free(rt);
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
        for (int i = 0; i < TASKS; i++)
            ck_assert_uint_eq(last[i], 1);
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_WATCH), 0);
    }
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress_watch");
    TCase *tc = tcase_create("stress_watch");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, writer_vs_readers);
    tcase_add_test(tc, changed_dropped_while_sending);
    tcase_add_test(tc, waiters_aborted_while_sending);
    tcase_add_test(tc, sender_dropped_while_waiting);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
