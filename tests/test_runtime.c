/* tests/test_runtime.c - the runtime: builder, block_on, hooks, shutdown,
 * misuse aborts, scheduling guarantees (LIFO cap, budget, wake while
 * running, no stranded task). */
#include "testlib.h"
#include "context.h" /* weft__coop_set_slice_ns */

START_TEST(builder_rejects_bad_input)
{
    weft_builder_t b;
    weft_runtime_t *rt = NULL;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 5000;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), WEFT_EINVAL);
    weft_builder_init(&b, (weft_flavor_t)7);
    ck_assert_int_eq(weft_runtime_new(&b, &rt), WEFT_EINVAL);
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 2;
    b.stack_size = 1; /* below PTHREAD_STACK_MIN */
    ck_assert_int_eq(weft_runtime_new(&b, &rt), WEFT_EINVAL);
    ck_assert_ptr_null(rt);
    /* weft_runtime_new(NULL, NULL) aborts: tests/test_api.c, null_args. */
    ASSERT_NO_LIVE();
}
END_TEST

/* Fails each allocation of weft_runtime_new in turn, libuv's included
 * (they go through weft's allocator), until one run makes fewer
 * allocations than the one to fail. Every failed run must return
 * WEFT_ENOMEM and leave nothing behind; none may abort. Returns how many
 * allocations the run that succeeded made. */
static long fail_every_allocation(weft_flavor_t flavor)
{
    for (long k = 1;; k++) {
        weft_builder_t b;
        weft_builder_init(&b, flavor);
        b.workers = 2;
        b.enable_io = b.enable_time = true;
        weft_runtime_t *rt = NULL;
        long before = weft__alloc_count();
        weft__alloc_fail_after(k);
        int rc = weft_runtime_new(&b, &rt);
        long made = weft__alloc_count() - before;
        weft__alloc_fail_after(-1);
        if (rc == 0) {
            /* Its workers may allocate once started: only a run that
             * made fewer than k counts as one the failure never reached. */
            weft_runtime_free(rt);
            ck_assert_int_gt(k, 1);
            if (made < k)
                return made;
            continue;
        }
        ck_assert_msg(rc == WEFT_ENOMEM, "allocation %ld failed: %d (%s)", k, rc, weft_err_name(rc));
        ck_assert_ptr_null(rt);
        ASSERT_NO_LIVE();
    }
}

START_TEST(runtime_new_enomem_at_every_step)
{
    long mt = fail_every_allocation(WEFT_RUNTIME_MULTI_THREAD);
    long ct = fail_every_allocation(WEFT_RUNTIME_CURRENT_THREAD);
    /* weft's own, then libuv's: its loop's state (uv_loop_init) and the
     * reserve for its descriptor table (reactor/uv_thread.c). */
    ck_assert_int_ge(mt, 10);
    ck_assert_int_ge(ct, 8);
    ASSERT_NO_LIVE();
}
END_TEST

/* The same with each of eight descriptor layouts: one extra descriptor
 * open per round shifts the numbers libuv's loop gets, so that in some
 * round its eventfd lands just past the end of the descriptor table its
 * signal pipe sized, and the table grows during set-up
 * (reactor/uv_thread.c). */
START_TEST(runtime_new_enomem_as_libuv_table_grows)
{
    int pad[8];
    for (int i = 0; i < 8; i++) {
        fail_every_allocation(WEFT_RUNTIME_CURRENT_THREAD);
        pad[i] = dup(0);
        ck_assert_int_ge(pad[i], 0);
    }
    for (int i = 0; i < 8; i++)
        close(pad[i]);
    ASSERT_NO_LIVE();
}
END_TEST

static _Atomic int starts, stops;
static char thread_name[32];
static pthread_mutex_t name_mu = PTHREAD_MUTEX_INITIALIZER;
static void on_start(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&name_mu);
    pthread_getname_np(pthread_self(), thread_name, sizeof thread_name);
    pthread_mutex_unlock(&name_mu);
    starts++;
}
static void on_stop(void *arg)
{
    (void)WEFT_TEST_CHECK_MSG(arg == &starts, "on_thread_stop got arg %p, not %p", arg, (void *)&starts);
    stops++;
}

START_TEST(builder_hooks_and_names)
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 3;
    b.thread_name = "pool";
    b.stack_size = 256 * 1024;
    b.on_thread_start = on_start;
    b.on_thread_stop = on_stop;
    b.hook_arg = &starts;
    weft_runtime_t *rt;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    for (int i = 0; i < 5000 && starts < 3; i++)
        sleep_ms(1);
    ck_assert_int_eq(starts, 3);
    ck_assert_int_eq(strncmp(thread_name, "pool-", 5), 0);
    weft_runtime_free(rt);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(stops, 3);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Shutdown drops what has not finished ------------------------------------ */
static _Atomic int parked_drops;
typedef struct {
    WEFT_FRAME;
    weft_pending_t p;
} parked_t;
static void parked_cleanup(parked_t *p) { (void)p; parked_drops++; }
WEFT_ASYNC_WITH_DROP(parked_t, parked_fn, weft_unit_t, parked_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->p, weft_pending(), NULL);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(shutdown_drops_unfinished_tasks)
{
    weft_runtime_t *rt = shape_rt(_i);
    parked_drops = 0;
    for (int i = 0; i < 1000; i++) {
        parked_t p = { WEFT_FRAME_INIT(parked_fn) };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &p, NULL), 0);
    }
    if (_i > 0)
        sleep_ms(10); /* some polled, some still queued */
    weft_runtime_free(rt);
    ck_assert_int_eq(parked_drops, 1000);
    ASSERT_NO_LIVE();
}
END_TEST

/* A worker stuck inside a poll: the timeout variant returns, then free waits. */
static _Atomic int stuck_release, stuck_entered;
typedef struct {
    weft_future_t future;
} stuck_t;
static weft_poll_t stuck_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx, (void)out;
    stuck_entered = 1;
    while (!stuck_release)
        sleep_ms(1);
    return WEFT_READY;
}
static const weft_future_vtable_t stuck_vt = { stuck_poll, NULL, NULL, sizeof(stuck_t), 0, "stuck" };
static void *release_later(void *arg)
{
    (void)arg;
    sleep_ms(100);
    stuck_release = 1;
    return NULL;
}

START_TEST(shutdown_timeout_with_stuck_worker)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    stuck_t s = { { &stuck_vt } };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &s, NULL), 0);
    while (!stuck_entered)
        sleep_ms(1);
    ck_assert_int_eq(weft_runtime_shutdown_timeout(rt, 20), WEFT_ETIMEDOUT);
    pthread_t th;
    pthread_create(&th, NULL, release_later, NULL);
    weft_runtime_free(rt); /* waits for the poll to end */
    pthread_join(th, NULL);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Misuse aborts ------------------------------------------------------------ */
typedef struct {
    weft_future_t future;
    int what;
} misuse_t;
static weft_poll_t misuse_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx, (void)out;
    weft_runtime_t *rt = NULL;
    if (((misuse_t *)(void *)f)->what == 0) {
        weft_ready_t r = weft_ready(1);
        /* blocking on a runtime from inside a task */
        ck_assert_int_eq(weft_runtime_block_on((weft_runtime_t *)weft_handle_current(), WEFT_FUTURE(&r), NULL), 0);
    } else {
        ck_assert_int_eq(weft_runtime_new(NULL, &rt), 0); /* starting a runtime from inside a task: aborts */
    }
    return WEFT_READY;
}
static const weft_future_vtable_t misuse_vt = { misuse_poll, NULL, NULL, sizeof(misuse_t), 0, "misuse" };

START_TEST(block_on_inside_task_aborts)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
    misuse_t m = { { &misuse_vt }, 0 };
    weft_join_handle_t h;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &m, &h), 0);
    ck_assert_int_eq(weft_runtime_block_on(rt, weft_join(&h, NULL), NULL), 0); /* the worker aborts the process */
}
END_TEST

START_TEST(runtime_new_inside_block_on_aborts)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    misuse_t m = { { &misuse_vt }, 1 };
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&m), NULL), 0);
}
END_TEST

START_TEST(spawn_without_runtime_aborts)
{
    weft_ready_t r = weft_ready(1);
    int rc = weft_spawn(&r, NULL);
    ck_abort_msg("weft_spawn returned %d instead of aborting", rc);
}
END_TEST

/* ---- Current-thread: concurrent block_on is refused ------------------------- */
static weft_runtime_t *busy_rt;
static void *second_block_on(void *arg)
{
    weft_ready_t r = weft_ready(1);
    *(int *)arg = weft_runtime_block_on(busy_rt, WEFT_FUTURE(&r), NULL);
    return NULL;
}
typedef struct {
    weft_future_t future;
} blocker_t;
static weft_poll_t blocker_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx;
    int rc = 1;
    pthread_t th;
    pthread_create(&th, NULL, second_block_on, &rc);
    pthread_join(th, NULL);
    *(int *)out = rc;
    return WEFT_READY;
}
static const weft_future_vtable_t blocker_vt = { blocker_poll, NULL, NULL, sizeof(blocker_t), sizeof(int), "blk" };

START_TEST(current_thread_block_on_is_exclusive)
{
    busy_rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    blocker_t b = { { &blocker_vt } };
    int rc = 0;
    ck_assert_int_eq(weft_runtime_block_on(busy_rt, WEFT_FUTURE(&b), &rc), 0);
    ck_assert_int_eq(rc, WEFT_EBUSY);
    weft_runtime_free(busy_rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Scheduling guarantees ------------------------------------------------------ */

/* Two tasks ping-ponging through the LIFO slot must not starve a third.
 * Runs on one thread (current-thread, or one worker), so the rally state
 * needs no locking. */
static _Atomic int third_ran, rounds, turn;
static weft_waker_t rally_w[2];
typedef struct {
    weft_future_t future;
    int me;
} rally_t;
static weft_poll_t rally_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)out;
    int me = ((rally_t *)(void *)f)->me;
    if (third_ran || rounds > 1000000)
        return WEFT_READY;
    weft_waker_drop(&rally_w[me]);
    rally_w[me] = weft_waker_clone(cx->waker);
    if (turn == me) {
        turn = 1 - me;
        rounds++;
        if (rally_w[1 - me].vtable)
            weft_waker_wake_by_ref(&rally_w[1 - me]); /* lands in the LIFO slot */
    }
    return WEFT_PENDING;
}
static const weft_future_vtable_t rally_vt = { rally_poll, NULL, NULL, sizeof(rally_t), 0, "rally" };
typedef struct {
    weft_future_t future;
} third_t;
static weft_poll_t third_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx, (void)out;
    third_ran = 1;
    return WEFT_READY;
}
static const weft_future_vtable_t third_vt = { third_poll, NULL, NULL, sizeof(third_t), 0, "third" };

START_TEST(lifo_cap_lets_others_run)
{
    weft_runtime_t *rt = shape_rt(_i); /* current-thread, or one worker */
    third_ran = rounds = turn = 0;
    weft_handle_t *h = weft_runtime_handle(rt);
    rally_t a = { { &rally_vt }, 0 }, b = { { &rally_vt }, 1 };
    third_t t = { { &third_vt } };
    weft_join_handle_t hc;
    ck_assert_int_eq(weft_handle_spawn(h, &a, NULL), 0);
    ck_assert_int_eq(weft_handle_spawn(h, &b, NULL), 0);
    ck_assert_int_eq(weft_handle_spawn(h, &t, &hc), 0);
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, weft_join(&hc, NULL), &rc), 0);
    ck_assert_int_eq(rc, 0);
    ck_assert(third_ran);
    ck_assert_int_lt(rounds, 1000000);
    weft_runtime_free(rt);
    weft_waker_drop(&rally_w[0]);
    weft_waker_drop(&rally_w[1]);
    ASSERT_NO_LIVE();
}
END_TEST

/* The cooperative budget: a loop over an always-ready resource yields. */
typedef struct {
    weft_future_t future;
    int *pendings;
} counted_t;
static weft_poll_t always_ready_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)out;
    if (!weft_coop_proceed(cx)) {
        (*((counted_t *)(void *)f)->pendings)++;
        return WEFT_PENDING;
    }
    return WEFT_READY;
}
static const weft_future_vtable_t always_vt = { always_ready_poll, NULL, NULL, sizeof(counted_t), 0, "always" };
typedef struct {
    WEFT_FRAME;
    int i, pendings;
    counted_t c;
} spinner_t;
WEFT_ASYNC(spinner_t, spinner_fn, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 1000; self->i++)
        WEFT_AWAIT(&self->c, ((counted_t){ { &always_vt }, &self->pendings }), NULL);
    WEFT_RETURN(self->pendings);
    WEFT_END();
}

START_TEST(coop_budget_forces_yield)
{
    /* The count is what this test checks: take the time slice out of the
     * way (a loaded machine may deschedule a poll for more than 1 ms). */
    weft__coop_set_slice_ns(UINT64_C(60) * 1000000000u);
    weft_runtime_t *rt = shape_rt(_i);
    spinner_t sp = { WEFT_FRAME_INIT(spinner_fn) };
    weft_join_handle_t h;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &sp, &h), 0);
    int pendings = -1, rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, weft_join(&h, &pendings), &rc), 0);
    ck_assert_int_eq(rc, 0);
    /* 1000 ready polls at 128 per scheduling: forced out 7 times. */
    ck_assert_int_ge(pendings, 1000 / WEFT_COOP_BUDGET - 1);
    ck_assert_int_le(pendings, 1000 / WEFT_COOP_BUDGET + 1);
    weft_runtime_free(rt);
    weft__coop_set_slice_ns(WEFT_COOP_SLICE_NS);
    ASSERT_NO_LIVE();
}
END_TEST

/* A task woken (from another thread) while it runs is polled again exactly
 * once for that wake. */
static _Atomic int wr_polls, wr_phase;
static weft_waker_t wr_waker;
static void *wr_waker_thread(void *arg)
{
    (void)arg;
    while (wr_phase != 1)
        ;
    weft_waker_wake_by_ref(&wr_waker);
    wr_phase = 2;
    return NULL;
}
typedef struct {
    weft_future_t future;
} wr_t;
static weft_poll_t wr_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)out;
    int n = ++wr_polls;
    if (n == 1) {
        wr_waker = weft_waker_clone(cx->waker);
        wr_phase = 1;
        while (wr_phase != 2) /* the wake lands while we run */
            ;
        return WEFT_PENDING;
    }
    weft_waker_drop(&wr_waker);
    return WEFT_READY;
}
static const weft_future_vtable_t wr_vt = { wr_poll, NULL, NULL, sizeof(wr_t), 0, "wr" };

START_TEST(woken_while_running_runs_again_once)
{
    weft_runtime_t *rt = shape_rt(1 + _i);
    wr_polls = 0;
    wr_phase = 0;
    pthread_t th;
    pthread_create(&th, NULL, wr_waker_thread, NULL);
    wr_t w = { { &wr_vt } };
    weft_join_handle_t h;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &w, &h), 0);
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, weft_join(&h, NULL), &rc), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(wr_polls, 2);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* A task spawns two children and then keeps its worker busy: the child
 * displaced from the LIFO slot is taken by the idle worker at once. */
static _Atomic uint64_t child_started_ns;
typedef struct {
    weft_future_t future;
} child_t;
static weft_poll_t child_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx, (void)out;
    uint64_t zero = 0;
    atomic_compare_exchange_strong(&child_started_ns, &zero, weft_now_ns());
    return WEFT_READY;
}
static const weft_future_vtable_t child_vt = { child_poll, NULL, NULL, sizeof(child_t), 0, "child" };
typedef struct {
    weft_future_t future;
} busy_parent_t;
static weft_poll_t busy_parent_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx;
    for (int i = 0; i < 2; i++) {
        child_t c = { { &child_vt } };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn(&c, NULL), 0))
            break;
    }
    uint64_t t0 = weft_now_ns();
    while (weft_now_ns() - t0 < 200000000u && child_started_ns == 0)
        ; /* a long poll (the pitfall), but the other worker is idle */
    *(uint64_t *)out = weft_now_ns() - t0;
    return WEFT_READY;
}
static const weft_future_vtable_t busy_vt = { busy_parent_poll, NULL, NULL, sizeof(busy_parent_t), sizeof(uint64_t),
                                              "busy" };

START_TEST(displaced_spawn_runs_on_idle_worker)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    sleep_ms(20); /* both workers parked */
    child_started_ns = 0;
    busy_parent_t p = { { &busy_vt } };
    uint64_t waited = 0;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&p), &waited), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_msg(waited < 150000000u, "the idle worker did not take the child (waited %llu ms)",
                  (unsigned long long)(waited / 1000000u));
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- block_on runs inject-queue tasks while it waits -------------------------- */
static _Atomic(pthread_t) ran_on;
static _Atomic int ran_flag;
static weft_poll_t where_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx;
    atomic_store(&ran_on, pthread_self());
    atomic_store(&ran_flag, 1);
    *(int *)out = 7;
    return WEFT_READY;
}
static const weft_future_vtable_t where_vt = { where_poll, NULL, NULL, sizeof(weft_future_t), sizeof(int), "where" };

static void noop_hook(void *arg) { (void)arg; }

/* The only worker is stuck in a poll: a task spawned from the test thread
 * and awaited in block_on can only run on the block_on thread (shape 0:
 * the default), and must wait for the worker when the option is off
 * (shape 1) or thread hooks are set (shape 2). */
START_TEST(block_on_runs_inject_tasks_while_waiting)
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 1;
    b.detect_blocking = false;
    ck_assert(b.block_on_runs_tasks); /* the default */
    if (_i == 1)
        b.block_on_runs_tasks = false;
    if (_i == 2)
        b.on_thread_start = noop_hook;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    stuck_release = 0;
    stuck_entered = 0;
    stuck_t st = { { &stuck_vt } };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &st, NULL), 0);
    while (!stuck_entered)
        sleep_ms(1);
    ran_flag = 0;
    weft_future_t w = { &where_vt };
    weft_join_handle_t jh;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &w, &jh), 0);
    pthread_t th;
    if (_i != 0) {
        /* Off: nothing runs it until the worker is free again. */
        sleep_ms(50);
        ck_assert_int_eq(ran_flag, 0);
        pthread_create(&th, NULL, release_later, NULL);
    }
    int out = 0, rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, weft_join(&jh, &out), &rc), 0);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(out, 7);
    if (_i == 0) {
        ck_assert(pthread_equal(atomic_load(&ran_on), pthread_self()));
        stuck_release = 1;
    } else {
        ck_assert(!pthread_equal(atomic_load(&ran_on), pthread_self()));
        pthread_join(th, NULL);
    }
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, builder_rejects_bad_input);
    tcase_add_test(tc, runtime_new_enomem_at_every_step);
    tcase_add_test(tc, runtime_new_enomem_as_libuv_table_grows);
    tcase_add_test(tc, builder_hooks_and_names);
    tcase_add_loop_test(tc, shutdown_drops_unfinished_tasks, 0, N_SHAPES);
    tcase_add_test(tc, shutdown_timeout_with_stuck_worker);
    tcase_add_test(tc, current_thread_block_on_is_exclusive);
    suite_add_tcase(s, tc);
    tc = tcase_create("misuse");
    tcase_set_timeout(tc, 30);
    ADD_ABORT_TEST(tc, block_on_inside_task_aborts);
    ADD_ABORT_TEST(tc, runtime_new_inside_block_on_aborts);
    ADD_ABORT_TEST(tc, spawn_without_runtime_aborts);
    suite_add_tcase(s, tc);
    tc = tcase_create("scheduling");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, lifo_cap_lets_others_run, 0, 2);
    tcase_add_loop_test(tc, coop_budget_forces_yield, 0, N_SHAPES);
    tcase_add_loop_test(tc, woken_while_running_runs_again_once, 0, 2);
    tcase_add_test(tc, displaced_spawn_runs_on_idle_worker);
    tcase_add_loop_test(tc, block_on_runs_inject_tasks_while_waiting, 0, 3);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
