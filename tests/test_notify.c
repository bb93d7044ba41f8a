/* tests/test_notify.c - Notify: notify_one and its single stored permit,
 * FIFO order, notify_waiters waking exactly the futures created before it,
 * enable-then-check, a chosen future dropped before it observed the
 * notification passing it on, waker replacement, misuse aborts, and
 * waiting tasks on every runtime shape woken from plain threads and from
 * another runtime. */
#include "testlib.h"

/* A waker that counts what is done to it. */

static weft_poll_t poll_with(weft_notified_t *f, counter_t *c)
{
    weft_waker_t w = counter_waker(c);
    weft_context_t cx = { &w };
    return weft_future_poll(WEFT_FUTURE(f), &cx, NULL);
}

START_TEST(notify_one_wakes_a_waiter)
{
    weft_notify_t n;
    weft_notify_init(&n);
    counter_t c = { 0 };
    weft_notified_t f = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&f, &c), WEFT_PENDING);
    ck_assert_int_eq(c.clones, 1);
    weft_notify_notify_one(&n);
    ck_assert_int_eq(c.wakes, 1);
    ck_assert_int_eq(poll_with(&f, &c), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&f));
    ck_assert_int_eq(c.clones, c.drops); /* every clone released */
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(stored_permit_is_one)
{
    weft_notify_t n;
    weft_notify_init(&n);
    counter_t c = { 0 };
    weft_notify_notify_one(&n);
    weft_notify_notify_one(&n); /* no waiter: still one permit */
    weft_notified_t a = weft_notify_notified(&n), b = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&a, &c), WEFT_READY);
    ck_assert_int_eq(poll_with(&b, &c), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&a));
    weft_future_drop(WEFT_FUTURE(&b));
    ck_assert_int_eq(c.clones, c.drops);
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(notify_one_is_fifo)
{
    weft_notify_t n;
    weft_notify_init(&n);
    counter_t ca = { 0 }, cb = { 0 };
    weft_notified_t a = weft_notify_notified(&n), b = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&a, &ca), WEFT_PENDING);
    ck_assert_int_eq(poll_with(&b, &cb), WEFT_PENDING);
    weft_notify_notify_one(&n);
    ck_assert_int_eq(ca.wakes, 1);
    ck_assert_int_eq(cb.wakes, 0);
    ck_assert_int_eq(poll_with(&b, &cb), WEFT_PENDING);
    ck_assert_int_eq(poll_with(&a, &ca), WEFT_READY);
    weft_notify_notify_one(&n);
    ck_assert_int_eq(poll_with(&b, &cb), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&a));
    weft_future_drop(WEFT_FUTURE(&b));
    ck_assert_int_eq(ca.clones, ca.drops);
    ck_assert_int_eq(cb.clones, cb.drops);
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}
END_TEST

/* Waiting (polled), enabled and merely created futures are all woken; one
 * created after the call is not, and no permit is left. */
START_TEST(notify_waiters_wakes_only_earlier_futures)
{
    weft_notify_t n;
    weft_notify_init(&n);
    counter_t c = { 0 };
    weft_notified_t polled = weft_notify_notified(&n), enabled = weft_notify_notified(&n),
                    created = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&polled, &c), WEFT_PENDING);
    ck_assert(!weft_notify_enable(&enabled));
    weft_notify_notify_waiters(&n);
    ck_assert_int_eq(c.wakes, 1); /* the one waker registered */
    weft_notified_t later = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&later, &c), WEFT_PENDING);
    ck_assert_int_eq(poll_with(&polled, &c), WEFT_READY);
    ck_assert_int_eq(poll_with(&enabled, &c), WEFT_READY);
    ck_assert_int_eq(poll_with(&created, &c), WEFT_READY);
    /* No permit: the later future is still waiting, and so is a new one. */
    weft_notified_t newer = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&newer, &c), WEFT_PENDING);
    ck_assert_int_eq(poll_with(&later, &c), WEFT_PENDING);
    weft_notify_notify_waiters(&n);
    ck_assert_int_eq(poll_with(&later, &c), WEFT_READY);
    ck_assert_int_eq(poll_with(&newer, &c), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&polled));
    weft_future_drop(WEFT_FUTURE(&enabled));
    weft_future_drop(WEFT_FUTURE(&created));
    weft_future_drop(WEFT_FUTURE(&later));
    weft_future_drop(WEFT_FUTURE(&newer));
    ck_assert_int_eq(c.clones, c.drops);
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(notify_waiters_keeps_a_stored_permit)
{
    weft_notify_t n;
    weft_notify_init(&n);
    counter_t c = { 0 };
    weft_notify_notify_one(&n);
    weft_notify_notify_waiters(&n);
    weft_notified_t f = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&f, &c), WEFT_READY); /* the permit */
    weft_future_drop(WEFT_FUTURE(&f));
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}
END_TEST

/* More waiters than one wake batch (32): all woken, none twice. */
START_TEST(notify_waiters_many)
{
    enum { N = 100 };
    weft_notify_t n;
    weft_notify_init(&n);
    static counter_t c[N];
    static weft_notified_t f[N];
    memset(c, 0, sizeof c);
    for (int i = 0; i < N; i++) {
        f[i] = weft_notify_notified(&n);
        ck_assert_int_eq(poll_with(&f[i], &c[i]), WEFT_PENDING);
    }
    weft_notify_notify_waiters(&n);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(c[i].wakes, 1);
        ck_assert_int_eq(poll_with(&f[i], &c[i]), WEFT_READY);
        weft_future_drop(WEFT_FUTURE(&f[i]));
        ck_assert_int_eq(c[i].clones, c[i].drops);
    }
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}
END_TEST

/* Enable, check the condition, await: a notify_one sent between the check
 * and the first poll is not lost. */
START_TEST(enable_before_check)
{
    weft_notify_t n;
    weft_notify_init(&n);
    counter_t c = { 0 };
    weft_notified_t f = weft_notify_notified(&n);
    ck_assert(!weft_notify_enable(&f));
    /* ...the waiter checks its condition here: false... */
    weft_notify_notify_one(&n); /* the condition becomes true, notify sent */
    ck_assert(weft_notify_enable(&f)); /* a second enable reports it */
    ck_assert_int_eq(poll_with(&f, &c), WEFT_READY);
    ck_assert_int_eq(c.clones, 0); /* never had to wait */
    weft_future_drop(WEFT_FUTURE(&f));
    /* Without enable, the notification goes to the permit and is not lost
     * either; with enable and a permit there, enable takes it. */
    weft_notify_notify_one(&n);
    weft_notified_t g = weft_notify_notified(&n);
    ck_assert(weft_notify_enable(&g));
    weft_notified_t h = weft_notify_notified(&n);
    ck_assert(!weft_notify_enable(&h)); /* the permit was g's */
    ck_assert_int_eq(poll_with(&g, &c), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&g));
    weft_future_drop(WEFT_FUTURE(&h));
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}
END_TEST

/* A future chosen by notify_one and dropped before a poll saw it passes the
 * notification to the next waiter, or back to the permit. */
START_TEST(chosen_then_dropped_passes_on)
{
    weft_notify_t n;
    weft_notify_init(&n);
    counter_t ca = { 0 }, cb = { 0 };
    weft_notified_t a = weft_notify_notified(&n), b = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&a, &ca), WEFT_PENDING);
    ck_assert_int_eq(poll_with(&b, &cb), WEFT_PENDING);
    weft_notify_notify_one(&n); /* chooses a */
    ck_assert_int_eq(ca.wakes, 1);
    weft_future_drop(WEFT_FUTURE(&a)); /* a never saw it */
    ck_assert_int_eq(cb.wakes, 1);
    ck_assert_int_eq(poll_with(&b, &cb), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&b));
    /* No one else waits: the notification becomes the permit again. */
    weft_notified_t c1 = weft_notify_notified(&n);
    ck_assert(!weft_notify_enable(&c1));
    weft_notify_notify_one(&n);
    weft_future_drop(WEFT_FUTURE(&c1));
    weft_notified_t c2 = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&c2, &ca), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&c2));
    /* A future that took the permit at enable and is dropped gives it back. */
    weft_notify_notify_one(&n);
    weft_notified_t c3 = weft_notify_notified(&n);
    ck_assert(weft_notify_enable(&c3));
    weft_future_drop(WEFT_FUTURE(&c3));
    weft_notified_t c4 = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&c4, &ca), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&c4));
    /* A future woken by notify_waiters and dropped passes nothing on. */
    weft_notified_t c5 = weft_notify_notified(&n), c6 = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&c5, &ca), WEFT_PENDING);
    weft_notify_notify_waiters(&n);
    weft_future_drop(WEFT_FUTURE(&c5));
    ck_assert_int_eq(poll_with(&c6, &cb), WEFT_READY); /* created before the call */
    weft_future_drop(WEFT_FUTURE(&c6));
    weft_notified_t c7 = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&c7, &cb), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&c7));
    ck_assert_int_eq(ca.clones, ca.drops);
    ck_assert_int_eq(cb.clones, cb.drops);
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}
END_TEST

/* The waker is cloned once per task, and replaced only when it would wake
 * another one. */
START_TEST(waker_replaced_only_when_changed)
{
    weft_notify_t n;
    weft_notify_init(&n);
    counter_t c1 = { 0 }, c2 = { 0 };
    weft_notified_t f = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&f, &c1), WEFT_PENDING);
    ck_assert_int_eq(poll_with(&f, &c1), WEFT_PENDING);
    ck_assert_int_eq(c1.clones, 1);
    ck_assert_int_eq(poll_with(&f, &c2), WEFT_PENDING);
    ck_assert_int_eq(c1.drops, 1);
    ck_assert_int_eq(c2.clones, 1);
    weft_notify_notify_one(&n);
    ck_assert_int_eq(c1.wakes, 0);
    ck_assert_int_eq(c2.wakes, 1);
    ck_assert_int_eq(poll_with(&f, &c2), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&f));
    ck_assert_int_eq(c2.clones, c2.drops);
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}
END_TEST

/* Dropping a future that was never polled, or that completed, is fine;
 * a queued one leaves the list, so destroy succeeds. */
START_TEST(drop_in_every_phase)
{
    weft_notify_t n;
    weft_notify_init(&n);
    counter_t c = { 0 };
    weft_notified_t a = weft_notify_notified(&n), b = weft_notify_notified(&n);
    weft_future_drop(WEFT_FUTURE(&a));
    ck_assert_int_eq(poll_with(&b, &c), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&b));
    weft_notify_notify_one(&n); /* no one waits: the permit, not b */
    ck_assert_int_eq(c.wakes, 0);
    ck_assert_int_eq(c.clones, c.drops);
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Tasks on every runtime shape ------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    weft_notified_t f; /* built before spawning (it may move until polled) */
} await_frame_t;

WEFT_ASYNC(await_frame_t, await_notified, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT_REF(&self->f, NULL);
    WEFT_RETURN(1);
    WEFT_END();
}

typedef struct {
    weft_notify_t *n;
    int mode; /* 0: notify_one k times, 1: notify_waiters */
    int k;
} notifier_t;
static void *notifier_main(void *arg)
{
    notifier_t *nt = arg;
    sleep_ms(2); /* let the tasks start waiting (either order is correct) */
    if (nt->mode == 1)
        weft_notify_notify_waiters(nt->n);
    else
        for (int i = 0; i < nt->k; i++)
            weft_notify_notify_one(nt->n);
    return NULL;
}

/* notify_one from a plain thread, k times for k tasks, each waking one;
 * the permit covers a task that had not started waiting yet. */
START_TEST(tasks_woken_from_a_plain_thread)
{
    for (int mode = 0; mode < 2; mode++) {
        weft_runtime_t *rt = shape_rt(_i);
        weft_notify_t n;
        weft_notify_init(&n);
        enum { K = 4 };
        weft_join_handle_t h[K];
        if (mode == 0) {
            /* One task at a time: tasks on several workers queue in any
             * order, and each notify_one wakes whichever queued first. The
             * notify may come before or after the task waits. */
            for (int i = 0; i < K; i++) {
                await_frame_t fr = { WEFT_FRAME_INIT(await_notified), .f = weft_notify_notified(&n) };
                ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &fr, &h[i]), 0);
                notifier_t nt = { &n, 0, 1 };
                pthread_t th;
                pthread_create(&th, NULL, notifier_main, &nt);
                int out = 0;
                ck_assert_int_eq(join_out(rt, &h[i], &out), 0);
                ck_assert_int_eq(out, 1);
                pthread_join(th, NULL);
            }
        } else {
            for (int i = 0; i < K; i++) {
                await_frame_t fr = { WEFT_FRAME_INIT(await_notified), .f = weft_notify_notified(&n) };
                ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &fr, &h[i]), 0);
            }
            notifier_t nt = { &n, 1, 0 };
            pthread_t th;
            pthread_create(&th, NULL, notifier_main, &nt);
            for (int i = 0; i < K; i++) {
                int out = 0;
                ck_assert_int_eq(join_out(rt, &h[i], &out), 0);
                ck_assert_int_eq(out, 1);
            }
            pthread_join(th, NULL);
        }
        weft_runtime_free(rt);
        weft_notify_destroy(&n);
        ASSERT_NO_LIVE();
    }
}
END_TEST

/* A task on one runtime notifies a task waiting on another. */
typedef struct {
    WEFT_FRAME;
    weft_notify_t *n;
} notify_task_t;
WEFT_ASYNC(notify_task_t, notify_task, int)
{
    WEFT_BEGIN();
    weft_notify_notify_one(self->n);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(across_runtimes)
{
    weft_runtime_t *a = shape_rt(_i), *b = shape_rt(2);
    weft_notify_t n;
    weft_notify_init(&n);
    await_frame_t fr = { WEFT_FRAME_INIT(await_notified), .f = weft_notify_notified(&n) };
    weft_join_handle_t hw, hn;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(b), &fr, &hw), 0);
    notify_task_t nt = { WEFT_FRAME_INIT(notify_task), .n = &n };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(a), &nt, &hn), 0);
    int out = 0;
    ck_assert_int_eq(join_out(a, &hn, &out), 0);
    ck_assert_int_eq(join_out(b, &hw, &out), 0);
    ck_assert_int_eq(out, 1);
    weft_runtime_free(a);
    weft_runtime_free(b);
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}
END_TEST

/* The result of a join handle whose runtime is gone (its task is final). */
static int join_out_after_free(weft_join_handle_t *h)
{
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    int rc = -1;
    ck_assert_int_eq(weft_future_poll(weft_join(h, NULL), &cx, &rc), WEFT_READY);
    weft_join_handle_drop(h);
    return rc;
}

/* A task blocked on a notify and dropped by shutdown leaves the list. */
START_TEST(waiting_task_cancelled_by_shutdown)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_notify_t n;
    weft_notify_init(&n);
    await_frame_t fr = { WEFT_FRAME_INIT(await_notified), .f = weft_notify_notified(&n) };
    weft_join_handle_t h;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &fr, &h), 0);
    weft_yield_t y = weft_yield_now();
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&y), NULL), 0);
    weft_runtime_free(rt);
    ck_assert_int_eq(join_out_after_free(&h), WEFT_ECANCELED);
    weft_notify_destroy(&n); /* would abort if the waiter were still queued */
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Misuse ------------------------------------------------------------------ */

START_TEST(destroy_with_a_waiter_aborts)
{
    weft_notify_t n;
    weft_notify_init(&n);
    weft_notified_t f = weft_notify_notified(&n);
    (void)weft_notify_enable(&f);
    weft_notify_destroy(&n);
}
END_TEST

START_TEST(poll_after_completion_aborts)
{
    weft_notify_t n;
    weft_notify_init(&n);
    counter_t c = { 0 };
    weft_notify_notify_one(&n);
    weft_notified_t f = weft_notify_notified(&n);
    ck_assert_int_eq(poll_with(&f, &c), WEFT_READY);
    (void)poll_with(&f, &c);
}
END_TEST

START_TEST(notify_after_destroy_aborts)
{
    weft_notify_t n;
    weft_notify_init(&n);
    weft_notify_destroy(&n);
    weft_notify_notify_one(&n);
}
END_TEST

START_TEST(null_notify_aborts)
{
    weft_notify_notify_waiters(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("notify");
    TCase *tc = tcase_create("notify_one");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, notify_one_wakes_a_waiter);
    tcase_add_test(tc, stored_permit_is_one);
    tcase_add_test(tc, notify_one_is_fifo);
    tcase_add_test(tc, waker_replaced_only_when_changed);
    tcase_add_test(tc, drop_in_every_phase);
    suite_add_tcase(s, tc);
    tc = tcase_create("notify_waiters");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, notify_waiters_wakes_only_earlier_futures);
    tcase_add_test(tc, notify_waiters_keeps_a_stored_permit);
    tcase_add_test(tc, notify_waiters_many);
    suite_add_tcase(s, tc);
    tc = tcase_create("enable");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, enable_before_check);
    suite_add_tcase(s, tc);
    tc = tcase_create("cancel_safety");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, chosen_then_dropped_passes_on);
    suite_add_tcase(s, tc);
    tc = tcase_create("tasks");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, tasks_woken_from_a_plain_thread, 0, N_SHAPES);
    tcase_add_loop_test(tc, across_runtimes, 0, N_SHAPES);
    tcase_add_loop_test(tc, waiting_task_cancelled_by_shutdown, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    tc = tcase_create("misuse");
    tcase_set_timeout(tc, 30);
    ADD_ABORT_TEST(tc, destroy_with_a_waiter_aborts);
    ADD_ABORT_TEST(tc, poll_after_completion_aborts);
    ADD_ABORT_TEST(tc, notify_after_destroy_aborts);
    ADD_ABORT_TEST(tc, null_notify_aborts);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
