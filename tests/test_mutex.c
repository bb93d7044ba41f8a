/* tests/test_mutex.c - the mutex: lock, try_lock, unlock and its misuse
 * abort, FIFO hand-over, a waiter cancelled at the head (before and after
 * the hand-over), exclusion under contention on every runtime shape and
 * across two runtimes, and blocking_lock from plain threads and blocking
 * jobs, with its abort on a worker, in block_on and in a task. */
#include "locktest.h"

START_TEST(lock_try_unlock)
{
    weft_mutex_t m;
    weft_mutex_init(&m);
    ck_assert(!weft_mutex_is_locked(&m));
    ck_assert_int_eq(weft_mutex_try_lock(&m), 0);
    ck_assert(weft_mutex_is_locked(&m));
    ck_assert_int_eq(weft_mutex_try_lock(&m), WEFT_EAGAIN);
    weft_mutex_unlock(&m);
    ck_assert(!weft_mutex_is_locked(&m));
    hand_t h;
    hand_init(&h);
    weft_mutex_lock_t l = weft_mutex_lock(&m);
    ck_assert_int_eq(hand_poll(&h, &l, NULL), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&l)); /* completed: still locked */
    ck_assert(weft_mutex_is_locked(&m));
    weft_mutex_unlock(&m);
    weft_mutex_destroy(&m);
    ASSERT_NO_LIVE();
}
END_TEST

static void unlock_unlocked(void)
{
    weft_mutex_t m;
    weft_mutex_init(&m);
    weft_mutex_unlock(&m);
}
static void double_unlock(void)
{
    weft_mutex_t m;
    weft_mutex_init(&m);
    if (weft_mutex_try_lock(&m) == 0)
        weft_mutex_unlock(&m);
    weft_mutex_unlock(&m);
}
static void destroy_with_waiter(void)
{
    weft_mutex_t m;
    weft_mutex_init(&m);
    if (weft_mutex_try_lock(&m) != 0)
        return;
    hand_t h;
    hand_init(&h);
    weft_mutex_lock_t l = weft_mutex_lock(&m);
    (void)hand_poll(&h, &l, NULL);
    weft_mutex_destroy(&m);
}
static void null_mutex(void)
{
    weft_mutex_unlock(NULL);
}

START_TEST(misuse_aborts)
{
    expect_panic(unlock_unlocked, "weft_mutex_unlock: the mutex is not locked");
    expect_panic(double_unlock, "weft_mutex_unlock: the mutex is not locked");
    expect_panic(destroy_with_waiter, "weft_semaphore_destroy");
    expect_panic(null_mutex, "weft_mutex_unlock: m is NULL");
}
END_TEST

/* Waiters get the mutex in arrival order; try_lock never barges. */
START_TEST(fifo_handover)
{
    weft_mutex_t m;
    weft_mutex_init(&m);
    ck_assert_int_eq(weft_mutex_try_lock(&m), 0);
    enum { N = 4 };
    hand_t h[N];
    weft_mutex_lock_t l[N];
    for (int i = 0; i < N; i++) {
        hand_init(&h[i]);
        l[i] = weft_mutex_lock(&m);
        ck_assert_int_eq(hand_poll(&h[i], &l[i], NULL), WEFT_PENDING);
    }
    for (int i = 0; i < N; i++) {
        weft_mutex_unlock(&m); /* hands it to waiter i */
        ck_assert(weft_mutex_is_locked(&m));
        ck_assert_int_eq(weft_mutex_try_lock(&m), WEFT_EAGAIN);
        for (int j = 0; j < N; j++)
            ck_assert_int_eq(h[j].c.wakes, j <= i ? 1 : 0);
        ck_assert_int_eq(hand_poll(&h[i], &l[i], NULL), WEFT_READY);
        weft_future_drop(WEFT_FUTURE(&l[i]));
        ASSERT_HAND_BALANCED(&h[i]);
    }
    weft_mutex_unlock(&m);
    ck_assert(!weft_mutex_is_locked(&m));
    weft_mutex_destroy(&m);
    ASSERT_NO_LIVE();
}
END_TEST

/* A waiter at the head cancelled before the hand-over: the next gets it;
 * cancelled after being handed the mutex (woken, never polled): it hands
 * it on. */
START_TEST(cancel_at_head)
{
    weft_mutex_t m;
    weft_mutex_init(&m);
    ck_assert_int_eq(weft_mutex_try_lock(&m), 0);
    hand_t h1, h2, h3;
    hand_init(&h1);
    hand_init(&h2);
    hand_init(&h3);
    weft_mutex_lock_t l1 = weft_mutex_lock(&m), l2 = weft_mutex_lock(&m), l3 = weft_mutex_lock(&m);
    ck_assert_int_eq(hand_poll(&h1, &l1, NULL), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h2, &l2, NULL), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h3, &l3, NULL), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&l1)); /* at the head, before any hand-over */
    ck_assert_int_eq(h2.c.wakes, 0);
    weft_mutex_unlock(&m);
    ck_assert_int_eq(h2.c.wakes, 1);
    weft_future_drop(WEFT_FUTURE(&l2)); /* handed the mutex, never saw it */
    ck_assert_int_eq(h3.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&h3, &l3, NULL), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&l3));
    ck_assert(weft_mutex_is_locked(&m));
    weft_mutex_unlock(&m);
    ck_assert(!weft_mutex_is_locked(&m));
    ASSERT_HAND_BALANCED(&h1);
    ASSERT_HAND_BALANCED(&h2);
    ASSERT_HAND_BALANCED(&h3);
    weft_mutex_destroy(&m);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Contention on runtimes ---------------------------------------------------------- */
typedef struct {
    weft_mutex_t m;
    long counter;    /* guarded by m */
    _Atomic int inside;
} guarded_t;

typedef struct {
    WEFT_FRAME;
    guarded_t *g;
    int i, ops;
    weft_mutex_lock_t l;
} incr_t;
WEFT_ASYNC(incr_t, incr, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < self->ops; self->i++) {
        WEFT_AWAIT(&self->l, weft_mutex_lock(&self->g->m), NULL);
        (void)WEFT_TEST_CHECK_INT_EQ(++self->g->inside, 1);
        self->g->counter++;
        if (self->i % 7 == 0)
            WEFT_YIELD(); /* hold it across an await now and then */
        self->g->inside--;
        weft_mutex_unlock(&self->g->m);
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(contended_exact_count)
{
    weft_runtime_t *rt = shape_rt(_i);
    static guarded_t g;
    memset(&g, 0, sizeof g);
    weft_mutex_init(&g.m);
    enum { T = 16, OPS = 300 };
    weft_join_handle_t hs[T];
    for (int i = 0; i < T; i++) {
        incr_t t = { WEFT_FRAME_INIT(incr), .g = &g, .ops = OPS };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t, &hs[i]), 0);
    }
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(join_out(rt, &hs[i], NULL), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(g.counter, T * OPS);
    ck_assert(!weft_mutex_is_locked(&g.m));
    weft_runtime_free(rt);
    weft_mutex_destroy(&g.m);
    ASSERT_NO_LIVE();
}
END_TEST

/* Tasks of two runtimes and two plain threads (blocking_lock) share one
 * mutex. */
static void *blocking_incr(void *arg)
{
    guarded_t *g = arg;
    for (int i = 0; i < 300; i++) {
        weft_mutex_blocking_lock(&g->m);
        (void)WEFT_TEST_CHECK_INT_EQ(++g->inside, 1);
        g->counter++;
        g->inside--;
        weft_mutex_unlock(&g->m);
    }
    return NULL;
}

START_TEST(two_runtimes_and_plain_threads)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_runtime_t *rt2 = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    static guarded_t g;
    memset(&g, 0, sizeof g);
    weft_mutex_init(&g.m);
    enum { T = 8, OPS = 300 };
    weft_join_handle_t hs[T];
    for (int i = 0; i < T; i++) {
        incr_t t = { WEFT_FRAME_INIT(incr), .g = &g, .ops = OPS };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(i & 1 ? rt2 : rt), &t, &hs[i]), 0);
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, blocking_incr, &g);
    /* rt's tasks first: on a current-thread rt they run only while the
     * test thread drives it, and one of them handed the mutex while we
     * block on rt2 would hold up everyone (see docs/locks.md). */
    for (int i = 0; i < T; i += 2)
        ck_assert_int_eq(join_out(rt, &hs[i], NULL), 0);
    for (int i = 1; i < T; i += 2)
        ck_assert_int_eq(join_out(rt2, &hs[i], NULL), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(g.counter, T * OPS + 2 * 300);
    ck_assert(!weft_mutex_is_locked(&g.m));
    weft_runtime_free(rt);
    weft_runtime_free(rt2);
    weft_mutex_destroy(&g.m);
    ASSERT_NO_LIVE();
}
END_TEST

/* blocking_lock parks a plain thread until the holder (here the test
 * thread) unlocks. */
static _Atomic int blocked_got;
static void *blocking_locker(void *arg)
{
    weft_mutex_t *m = arg;
    weft_mutex_blocking_lock(m);
    blocked_got = 1;
    weft_mutex_unlock(m);
    return NULL;
}

START_TEST(blocking_lock_waits_for_unlock)
{
    blocked_got = 0;
    weft_mutex_t m;
    weft_mutex_init(&m);
    weft_mutex_blocking_lock(&m); /* uncontended: at once */
    pthread_t th;
    pthread_create(&th, NULL, blocking_locker, &m);
    sleep_ms(30);
    ck_assert_int_eq(blocked_got, 0);
    weft_mutex_unlock(&m);
    pthread_join(th, NULL);
    ck_assert_int_eq(blocked_got, 1);
    ck_assert(!weft_mutex_is_locked(&m));
    weft_mutex_destroy(&m);
    ASSERT_NO_LIVE();
}
END_TEST

/* A blocking job may block on the mutex; a task then unlocks it. */
static void *job_lock(void *arg)
{
    weft_mutex_t *m = arg;
    weft_mutex_blocking_lock(m);
    weft_mutex_unlock(m);
    return arg;
}
typedef struct {
    WEFT_FRAME;
    weft_mutex_t *m;
    weft_join_handle_t h;
    int rc;
    void *out;
    weft_sleep_t sl;
} job_owner_t;
WEFT_ASYNC(job_owner_t, job_owner, int)
{
    WEFT_BEGIN();
    if (!WEFT_TEST_CHECK_INT_EQ(weft_mutex_try_lock(self->m), 0))
        WEFT_RETURN(-1);
    if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_blocking(job_lock, self->m, &self->h), 0))
        WEFT_RETURN(-1);
    WEFT_AWAIT(&self->sl, weft_sleep_ms(20), NULL);
    weft_mutex_unlock(self->m);
    WEFT_AWAIT_REF(weft_join(&self->h, &self->out), &self->rc);
    WEFT_RETURN(self->rc == 0 && self->out == self->m ? 0 : -1);
    WEFT_END();
}

START_TEST(blocking_lock_in_blocking_job)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_mutex_t m;
    weft_mutex_init(&m);
    job_owner_t j = { WEFT_FRAME_INIT(job_owner), .m = &m };
    int out = -2;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&j), &out), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(out, 0);
    ck_assert(!weft_mutex_is_locked(&m));
    weft_runtime_free(rt);
    weft_mutex_destroy(&m);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- blocking_lock where it would stall a runtime: aborts ------------------------------- */
static weft_mutex_t abort_m;
static int abort_shape;
typedef struct {
    WEFT_FRAME;
} blocker_task_t;
WEFT_ASYNC(blocker_task_t, blocker_task, weft_unit_t)
{
    WEFT_BEGIN();
    weft_mutex_blocking_lock(&abort_m); /* aborts */
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}
static void blocking_lock_in_task(void)
{
    weft_mutex_init(&abort_m);
    weft_runtime_t *rt = shape_rt(abort_shape);
    blocker_task_t t = { WEFT_FRAME_INIT(blocker_task) };
    (void)spawn_and_wait(rt, WEFT_FUTURE(&t), NULL);
}
static void blocking_lock_in_block_on(void)
{
    weft_mutex_init(&abort_m);
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
    blocker_task_t t = { WEFT_FRAME_INIT(blocker_task) };
    int rc = weft_runtime_block_on(rt, WEFT_FUTURE(&t), NULL);
    (void)rc;
}

START_TEST(blocking_lock_in_runtime_aborts)
{
    abort_shape = _i;
    /* A worker running a task (multi-thread) or the block_on thread
     * driving one (current-thread). */
    expect_panic(blocking_lock_in_task, "weft_mutex_blocking_lock called from inside");
    expect_panic(blocking_lock_in_block_on, "weft_mutex_blocking_lock called from inside weft_runtime_block_on");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mutex");
    TCase *tc = tcase_create("mutex");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, lock_try_unlock);
    if (can_fork())
        tcase_add_test(tc, misuse_aborts);
    tcase_add_test(tc, fifo_handover);
    tcase_add_test(tc, cancel_at_head);
    tcase_add_loop_test(tc, contended_exact_count, 0, N_SHAPES);
    tcase_add_loop_test(tc, two_runtimes_and_plain_threads, 0, N_SHAPES);
    tcase_add_test(tc, blocking_lock_waits_for_unlock);
    tcase_add_loop_test(tc, blocking_lock_in_blocking_job, 0, N_SHAPES);
    if (can_fork())
        tcase_add_loop_test(tc, blocking_lock_in_runtime_aborts, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
