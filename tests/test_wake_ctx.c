/* tests/test_wake_ctx.c - wakes and spawns from code on a worker thread
 * that is not inside the worker's loop: the thread hooks, and a
 * block_in_place function. They take the remote path (inject queue and an
 * unpark), so the woken task runs even while the hook that woke it lasts,
 * and every wake arrives (docs/wakers.md, where a waker may be called
 * from). */
#include "testlib.h"

/* ---- A mailbox: one registered waker, taken by whoever wakes it ------------ */
typedef struct {
    pthread_mutex_t mu;
    weft_waker_t waker;
    bool has;
    _Atomic long sent; /* wakes issued */
} mailbox_t;

static mailbox_t mb = { PTHREAD_MUTEX_INITIALIZER, { NULL, NULL }, false, 0 };

static void mailbox_reset(void)
{
    pthread_mutex_lock(&mb.mu);
    weft_waker_t w = mb.waker;
    bool had = mb.has;
    mb.has = false;
    mb.sent = 0;
    pthread_mutex_unlock(&mb.mu);
    if (had)
        weft_waker_drop(&w);
}

/* Wakes the registered waker, if any (outside the lock); returns whether
 * it did. */
static bool mailbox_wake(void)
{
    pthread_mutex_lock(&mb.mu);
    if (!mb.has) {
        pthread_mutex_unlock(&mb.mu);
        return false;
    }
    weft_waker_t w = mb.waker;
    mb.has = false;
    mb.sent++;
    pthread_mutex_unlock(&mb.mu);
    weft_waker_wake(&w);
    return true;
}

/* ---- The waiter: pending until it has been woken `target` times ------------ */
typedef struct {
    weft_future_t base;
    long target;
    long polls;
    _Atomic bool *done;
} waiter_t;

static weft_poll_t waiter_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)out;
    waiter_t *self = (waiter_t *)f;
    /* Each poll after the first follows exactly one wake: the waker is
     * registered once per poll and taken by the one wake that uses it. */
    if (self->polls++ == self->target) {
        atomic_store(self->done, true);
        return WEFT_READY;
    }
    pthread_mutex_lock(&mb.mu);
    weft_waker_t old = mb.waker;
    bool had = mb.has;
    mb.waker = weft_waker_clone(cx->waker);
    mb.has = true;
    pthread_mutex_unlock(&mb.mu);
    (void)WEFT_TEST_CHECK_MSG(!had, "waiter polled with its previous waker still registered");
    if (had)
        weft_waker_drop(&old);
    return WEFT_PENDING;
}

static const weft_future_vtable_t waiter_vt = { waiter_poll, NULL, NULL, sizeof(waiter_t), 0, "waiter" };

static weft_runtime_t *mt_rt(unsigned workers, void (*start)(void *), void (*stop)(void *))
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = workers;
    b.on_thread_start = start;
    b.on_thread_stop = stop;
    weft_runtime_t *rt;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    return rt;
}

/* Waits up to ms for *flag; returns it. */
static bool wait_flag(_Atomic bool *flag, int ms)
{
    for (int i = 0; i < ms && !atomic_load(flag); i++)
        sleep_ms(1);
    return atomic_load(flag);
}

/* ---- A hook wakes a task and spawns one, and waits for both to run ---------
 * The hook holds its own thread, so only another worker can run them: they
 * must not sit in the hooked worker's LIFO slot. */
static _Atomic int hook_calls;
static _Atomic bool waiter_done, spawned_ran, hook_saw_both, hook_finished;

typedef struct {
    WEFT_FRAME;
} mark_t;
WEFT_ASYNC(mark_t, mark_fn, weft_unit_t)
{
    WEFT_BEGIN();
    atomic_store(&spawned_ran, true);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static void wake_and_spawn(void)
{
    bool woke = false;
    for (int i = 0; i < 5000 && !(woke = mailbox_wake()); i++)
        sleep_ms(1);
    if (!WEFT_TEST_CHECK_MSG(woke, "the waiter never registered its waker"))
        return;
    if (!WEFT_TEST_CHECK_MSG(wait_flag(&waiter_done, 5000), "a task woken from on_thread_start did not run "
                                                              "while the hook lasted"))
        return;
    mark_t m = { WEFT_FRAME_INIT(mark_fn) };
    if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn(&m, NULL), 0))
        return;
    if (!WEFT_TEST_CHECK_MSG(wait_flag(&spawned_ran, 5000), "a task spawned from on_thread_start did not run "
                                                              "while the hook lasted"))
        return;
    atomic_store(&hook_saw_both, true);
}

static void waiting_hook(void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&hook_calls, 1) != 0)
        return; /* only the first worker to start waits; the others serve */
    wake_and_spawn();
    atomic_store(&hook_finished, true);
}

START_TEST(start_hook_wake_and_spawn_run_elsewhere)
{
    mailbox_reset();
    hook_calls = 0;
    waiter_done = spawned_ran = hook_saw_both = hook_finished = false;
    weft_runtime_t *rt = mt_rt((unsigned)_i, waiting_hook, NULL);
    waiter_t w = { { &waiter_vt }, 1, 0, &waiter_done };
    weft_join_handle_t jh;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &w, &jh), 0);
    ck_assert_int_eq(join_out(rt, &jh, NULL), 0);
    ck_assert(wait_flag(&hook_finished, 12000));
    weft_runtime_free(rt);
    ASSERT_NO_TEST_FAIL();
    ck_assert(hook_saw_both);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Many wakes from hooks and block_in_place functions, counted ------------
 * Each block_in_place inside a poll hands the worker to another thread:
 * on_thread_start runs there (a worker thread outside its loop) and
 * on_thread_stop on the thread that gave the worker away; the function
 * itself runs on a thread that is no worker any more. All three wake the
 * waiter; it must see every wake, exactly. */
#define STRESS_WAKES 2000
static _Atomic bool stress_done;

static void waking_hook(void *arg)
{
    (void)arg;
    (void)mailbox_wake();
}

static void *waking_fn(void *arg)
{
    (void)mailbox_wake();
    return arg;
}

typedef struct {
    WEFT_FRAME;
    long rounds;
} waker_task_t;
WEFT_ASYNC(waker_task_t, waker_task_fn, long)
{
    WEFT_BEGIN();
    while (!atomic_load(&stress_done)) {
        if (weft_block_in_place(waking_fn, NULL, NULL) != 0)
            WEFT_RETURN(-1);
        self->rounds++;
        WEFT_YIELD();
    }
    WEFT_RETURN(self->rounds);
    WEFT_END();
}

START_TEST(hook_and_block_in_place_wakes_all_arrive)
{
    mailbox_reset();
    stress_done = false;
    weft_runtime_t *rt = mt_rt((unsigned)_i, waking_hook, waking_hook);
    waiter_t w = { { &waiter_vt }, STRESS_WAKES, 0, &stress_done };
    weft_join_handle_t wjh, kjh;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &w, &wjh), 0);
    waker_task_t k = { WEFT_FRAME_INIT(waker_task_fn) };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &k, &kjh), 0);
    ck_assert_msg(wait_flag(&stress_done, 60000), "the waiter saw %ld of %d wakes (%ld sent)", w.polls,
                  STRESS_WAKES, (long)mb.sent);
    ck_assert_int_eq(join_out(rt, &wjh, NULL), 0);
    long rounds = -1;
    ck_assert_int_eq(join_out(rt, &kjh, &rounds), 0);
    ck_assert_int_gt(rounds, 0);
    /* Every wake sent was one poll; the waiter finished at STRESS_WAKES. */
    ck_assert_int_eq(mb.sent, STRESS_WAKES);
    weft_runtime_free(rt);
    mailbox_reset();
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- on_thread_stop at shutdown wakes a waiting task ---------------------------
 * Its loop has ended: the wake finds the inject queue closed and the
 * shutdown cancels the task; nothing is left behind. */
static _Atomic int stop_wakes;
static void stop_hook(void *arg)
{
    (void)arg;
    if (mailbox_wake())
        stop_wakes++;
}

START_TEST(stop_hook_wake_at_shutdown)
{
    mailbox_reset();
    stop_wakes = 0;
    _Atomic bool done = false;
    weft_runtime_t *rt = mt_rt((unsigned)_i, NULL, stop_hook);
    waiter_t w = { { &waiter_vt }, 1000000, 0, &done };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &w, NULL), 0);
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&mb.mu);
        bool has = mb.has;
        pthread_mutex_unlock(&mb.mu);
        if (has)
            break;
        sleep_ms(1);
    }
    weft_runtime_free(rt);
    ck_assert_int_eq(stop_wakes, 1);
    ck_assert(!done);
    mailbox_reset();
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wake_ctx");
    TCase *tc = tcase_create("wake_ctx");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, start_hook_wake_and_spawn_run_elsewhere, 2, 4);
    tcase_add_loop_test(tc, hook_and_block_in_place_wakes_all_arrive, 1, 3);
    tcase_add_loop_test(tc, stop_hook_wake_at_shutdown, 1, 3);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
