/* tests/test_blocking.c - the blocking pool (spawn_blocking, the cap, the
 * keep-alive, the bounded queue, thread-creation and allocation failure,
 * many spawner threads, jobs that block_on their runtime, shutdown and its
 * races) and block_in_place. The blocking detector is in test_watchdog.c. */
#include "testlib.h"

/* ---- Helpers ------------------------------------------------------------------ */

/* A gate blocking jobs wait at (bounded: 10 s, then the test fails). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    _Atomic int entered, left;
} gate_t;
#define GATE_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 }

static void *gate_job(void *arg)
{
    gate_t *g = arg;
    g->entered++;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) != 0)
            break;
    int open = g->open;
    pthread_mutex_unlock(&g->mu);
    g->left++;
    return open ? arg : NULL;
}

static void gate_open(gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Waits up to 5 s for *v >= want. */
static bool wait_for(_Atomic int *v, int want)
{
    for (int i = 0; i < 5000 && *v < want; i++)
        sleep_ms(1);
    return *v >= want;
}

static _Atomic int cancels;
static void count_cancel(void *arg)
{
    (void)arg;
    cancels++;
}

static _Atomic int ran;
static void *count_run(void *arg)
{
    ran++;
    return arg;
}

static weft_runtime_t *pool_rt(weft_flavor_t f, unsigned workers, unsigned cap, uint64_t keep_alive_ms)
{
    weft_builder_t b;
    weft_builder_init(&b, f);
    b.workers = workers;
    b.max_blocking_threads = cap;
    b.blocking_keep_alive_ms = keep_alive_ms;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    return rt;
}

/* ---- spawn_blocking: results, from a task, on every runtime shape -------------- */

#define NJOBS 200
static void *triple(void *arg)
{
    return (void *)((uintptr_t)arg * 3 + 1);
}

typedef struct {
    WEFT_FRAME;
    weft_join_handle_t h[NJOBS];
    void *out;
    int i, rc;
    uintptr_t sum;
} many_t;

WEFT_ASYNC(many_t, many_fn, uintptr_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < NJOBS; self->i++)
        if (weft_spawn_blocking(triple, (void *)(uintptr_t)self->i, &self->h[self->i]) != 0)
            WEFT_RETURN(0);
    for (self->i = 0; self->i < NJOBS; self->i++) {
        WEFT_AWAIT_REF(weft_join(&self->h[self->i], &self->out), &self->rc);
        if (self->rc != 0)
            WEFT_RETURN(0);
        self->sum += (uintptr_t)self->out;
    }
    WEFT_RETURN(self->sum);
    WEFT_END();
}

START_TEST(spawn_blocking_results)
{
    for (int shape = 0; shape < N_SHAPES; shape++) {
        weft_runtime_t *rt = shape_rt(shape);
        many_t m = { WEFT_FRAME_INIT(many_fn) };
        uintptr_t sum = 0;
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&m), &sum), 0);
        ck_assert_uint_eq(sum, (uintptr_t)3 * NJOBS * (NJOBS - 1) / 2 + NJOBS);
        weft_runtime_free(rt);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* Named jobs see their name; detached jobs still run; NULL fn aborts. */
static void *name_job(void *arg)
{
    const char *n = weft_task_current_name();
    snprintf(arg, 32, "%s", n ? n : "(none)");
    return arg;
}

START_TEST(spawn_blocking_named_and_detached)
{
    weft_runtime_t *rt = pool_rt(WEFT_RUNTIME_MULTI_THREAD, 2, 4, 10000);
    weft_handle_t *h = weft_runtime_handle(rt);
    char buf[32] = "";
    weft_join_handle_t jh;
    weft_blocking_opts_t o = { "crunch", NULL, 0 };
    ck_assert_int_eq(weft_spawn_blocking_at(h, name_job, buf, &jh, &o, WEFT_SITE), 0);
    void *out = NULL;
    ck_assert_int_eq(join_out(rt, &jh, &out), 0);
    ck_assert_ptr_eq(out, buf);
    ck_assert_str_eq(buf, "crunch");
    ran = 0;
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(weft_spawn_blocking_at(h, count_run, NULL, NULL, NULL, WEFT_SITE), 0);
    ck_assert(wait_for(&ran, 50));
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(spawn_blocking_null_fn_aborts)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    int rc = weft_spawn_blocking_at(weft_runtime_handle(rt), NULL, NULL, NULL, NULL, WEFT_SITE);
    ck_abort_msg("returned %d instead of aborting", rc);
}
END_TEST

START_TEST(builder_rejects_bad_blocking_cap)
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_CURRENT_THREAD);
    b.max_blocking_threads = 100000;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), WEFT_EINVAL);
    ck_assert_ptr_null(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- The cap, the queue, abort of a queued job ---------------------------------- */

START_TEST(cap_limits_threads_and_queues_the_rest)
{
    weft_runtime_t *rt = pool_rt(WEFT_RUNTIME_MULTI_THREAD, 1, 2, 10000);
    weft_handle_t *h = weft_runtime_handle(rt);
    gate_t g = GATE_INIT;
    weft_join_handle_t jh[6];
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(weft_spawn_blocking_at(h, gate_job, &g, &jh[i], NULL, WEFT_SITE), 0);
    ck_assert(wait_for(&g.entered, 2));
    sleep_ms(50); /* a third thread would have started by now */
    weft_blocking_stats_t st;
    weft_blocking_stats(h, &st);
    ck_assert_int_eq(g.entered, 2);
    ck_assert_uint_eq(st.threads, 2);
    ck_assert_uint_eq(st.queued, 4);
    /* A queued job can be aborted: it never runs. */
    weft_join_handle_abort(&jh[5]);
    gate_open(&g);
    for (int i = 0; i < 5; i++) {
        void *out = NULL;
        ck_assert_int_eq(join_out(rt, &jh[i], &out), 0);
        ck_assert_ptr_eq(out, &g);
    }
    ck_assert_int_eq(join_out(rt, &jh[5], NULL), WEFT_ECANCELED);
    ck_assert_int_eq(g.entered, 5);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(aborted_queued_job_calls_cancel)
{
    weft_runtime_t *rt = pool_rt(WEFT_RUNTIME_CURRENT_THREAD, 1, 1, 10000);
    weft_handle_t *h = weft_runtime_handle(rt);
    gate_t g = GATE_INIT;
    weft_join_handle_t busy, queued;
    ck_assert_int_eq(weft_spawn_blocking_at(h, gate_job, &g, &busy, NULL, WEFT_SITE), 0);
    ck_assert(wait_for(&g.entered, 1));
    cancels = 0;
    ran = 0;
    weft_blocking_opts_t o = { NULL, count_cancel, 0 };
    ck_assert_int_eq(weft_spawn_blocking_at(h, count_run, NULL, &queued, &o, WEFT_SITE), 0);
    weft_join_handle_abort(&queued);
    gate_open(&g);
    ck_assert_int_eq(join_out(rt, &busy, NULL), 0);
    ck_assert_int_eq(join_out(rt, &queued, NULL), WEFT_ECANCELED);
    ck_assert_int_eq(cancels, 1);
    ck_assert_int_eq(ran, 0);
    /* Aborting a running job does nothing: it finishes with its value. */
    gate_t g2 = GATE_INIT;
    ck_assert_int_eq(weft_spawn_blocking_at(h, gate_job, &g2, &busy, NULL, WEFT_SITE), 0);
    ck_assert(wait_for(&g2.entered, 1));
    weft_join_handle_abort(&busy);
    gate_open(&g2);
    void *out = NULL;
    ck_assert_int_eq(join_out(rt, &busy, &out), 0);
    ck_assert_ptr_eq(out, &g2);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(try_spawn_bounded_queue)
{
    weft_runtime_t *rt = pool_rt(WEFT_RUNTIME_MULTI_THREAD, 1, 1, 10000);
    weft_handle_t *h = weft_runtime_handle(rt);
    gate_t g = GATE_INIT;
    weft_join_handle_t jh[3];
    ck_assert_int_eq(weft_spawn_blocking_at(h, gate_job, &g, &jh[0], NULL, WEFT_SITE), 0);
    ck_assert(wait_for(&g.entered, 1)); /* the one thread is busy from now on */
    weft_blocking_opts_t o = { NULL, count_cancel, 2 };
    cancels = 0;
    ck_assert_int_eq(weft_spawn_blocking_at(h, gate_job, &g, &jh[1], &o, WEFT_SITE), 0);
    ck_assert_int_eq(weft_spawn_blocking_at(h, gate_job, &g, &jh[2], &o, WEFT_SITE), 0);
    weft_join_handle_t extra = { 0 };
    ck_assert_int_eq(weft_spawn_blocking_at(h, gate_job, &g, &extra, &o, WEFT_SITE), WEFT_EAGAIN);
    ck_assert_ptr_null(extra.task_);
    ck_assert_int_eq(cancels, 0); /* the caller still owns arg */
    /* Unbounded spawns are not held to anyone's bound. */
    ck_assert_int_eq(weft_spawn_blocking_at(h, gate_job, &g, &extra, NULL, WEFT_SITE), 0);
    gate_open(&g);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(join_out(rt, &jh[i], NULL), 0);
    ck_assert_int_eq(join_out(rt, &extra, NULL), 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Keep-alive ------------------------------------------------------------------- */

START_TEST(idle_threads_exit_after_keep_alive)
{
    weft_runtime_t *rt = pool_rt(WEFT_RUNTIME_MULTI_THREAD, 1, 8, 50);
    weft_handle_t *h = weft_runtime_handle(rt);
    gate_t g = GATE_INIT;
    weft_join_handle_t jh[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weft_spawn_blocking_at(h, gate_job, &g, &jh[i], NULL, WEFT_SITE), 0);
    ck_assert(wait_for(&g.entered, 3));
    weft_blocking_stats_t st;
    weft_blocking_stats(h, &st);
    ck_assert_uint_eq(st.threads, 3);
    gate_open(&g);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(join_out(rt, &jh[i], NULL), 0);
    /* Idle now; gone within the keep-alive (plus slack for a loaded box). */
    for (int i = 0; i < 2000; i++) {
        weft_blocking_stats(h, &st);
        if (st.threads == 0)
            break;
        sleep_ms(1);
    }
    ck_assert_uint_eq(st.threads, 0);
    /* The pool still works after its threads expired. */
    weft_join_handle_t again;
    ck_assert_int_eq(weft_spawn_blocking_at(h, triple, (void *)1, &again, NULL, WEFT_SITE), 0);
    void *out = NULL;
    ck_assert_int_eq(join_out(rt, &again, &out), 0);
    ck_assert_ptr_eq(out, (void *)4);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(idle_threads_stay_within_keep_alive)
{
    weft_runtime_t *rt = pool_rt(WEFT_RUNTIME_CURRENT_THREAD, 1, 8, 10000);
    weft_handle_t *h = weft_runtime_handle(rt);
    weft_join_handle_t jh;
    ck_assert_int_eq(weft_spawn_blocking_at(h, triple, NULL, &jh, NULL, WEFT_SITE), 0);
    ck_assert_int_eq(join_out(rt, &jh, NULL), 0);
    sleep_ms(100);
    weft_blocking_stats_t st;
    weft_blocking_stats(h, &st);
    ck_assert_uint_eq(st.threads, 1);
    ck_assert_uint_eq(st.idle, 1);
    weft_runtime_free(rt); /* an idle thread does not hold shutdown up */
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Thread-creation failure -------------------------------------------------- */

START_TEST(thread_creation_failure_is_an_error_on_the_handle)
{
    weft_runtime_t *rt = pool_rt(WEFT_RUNTIME_CURRENT_THREAD, 1, 4, 10000);
    weft_handle_t *h = weft_runtime_handle(rt);
    cancels = 0;
    ran = 0;
    weft_blocking_opts_t o = { NULL, count_cancel, 0 };
    weft_join_handle_t jh;
    weft__thread_fail_after(1);
    ck_assert_int_eq(weft_spawn_blocking_at(h, count_run, NULL, &jh, &o, WEFT_SITE), 0);
    weft__thread_fail_after(-1);
    ck_assert_int_eq(join_out(rt, &jh, NULL), WEFT_EAGAIN);
    ck_assert_int_eq(cancels, 1);
    ck_assert_int_eq(ran, 0);
    /* With a thread alive, a failed creation only delays the job. */
    gate_t g = GATE_INIT;
    weft_join_handle_t busy;
    ck_assert_int_eq(weft_spawn_blocking_at(h, gate_job, &g, &busy, NULL, WEFT_SITE), 0);
    ck_assert(wait_for(&g.entered, 1));
    weft__thread_fail_after(1);
    ck_assert_int_eq(weft_spawn_blocking_at(h, count_run, NULL, &jh, &o, WEFT_SITE), 0);
    weft__thread_fail_after(-1);
    sleep_ms(20);
    ck_assert_int_eq(ran, 0);
    gate_open(&g);
    ck_assert_int_eq(join_out(rt, &busy, NULL), 0);
    ck_assert_int_eq(join_out(rt, &jh, NULL), 0);
    ck_assert_int_eq(ran, 1);
    ck_assert_int_eq(cancels, 1);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(runtime_new_thread_failure)
{
    /* The second worker of 3 cannot start: nothing is left running. */
    weft__thread_fail_after(3); /* watchdog, worker 0, worker 1 */
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 3;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), WEFT_EAGAIN);
    weft__thread_fail_after(-1);
    ck_assert_ptr_null(rt);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(spawn_blocking_enomem_at_every_step)
{
    weft_runtime_t *rt = pool_rt(WEFT_RUNTIME_MULTI_THREAD, 1, 4, 0);
    weft_handle_t *h = weft_runtime_handle(rt);
    int ok = 0;
    for (long k = 1; k < 20; k++) {
        cancels = 0;
        weft_blocking_opts_t o = { "named", count_cancel, 0 };
        weft_join_handle_t jh;
        weft__alloc_fail_after(k);
        int rc = weft_spawn_blocking_at(h, triple, (void *)2, &jh, &o, WEFT_SITE);
        weft__alloc_fail_after(-1);
        if (rc == WEFT_ENOMEM) {
            ck_assert_int_eq(cancels, 0);
            continue;
        }
        ck_assert_int_eq(rc, 0);
        void *out = NULL;
        int jrc = join_out(rt, &jh, &out);
        /* The thread record could not be allocated: an error on the handle. */
        ck_assert(jrc == 0 || jrc == WEFT_ENOMEM);
        if (jrc == 0) {
            ck_assert_ptr_eq(out, (void *)7);
            ok++;
        } else {
            ck_assert_int_eq(cancels, 1);
        }
    }
    ck_assert_int_gt(ok, 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Shutdown ------------------------------------------------------------------- */

START_TEST(shutdown_cancels_queued_and_waits_for_running)
{
    weft_runtime_t *rt = pool_rt(WEFT_RUNTIME_MULTI_THREAD, 2, 1, 10000);
    weft_handle_t *h = weft_runtime_handle(rt);
    gate_t g = GATE_INIT;
    cancels = 0;
    ran = 0;
    weft_blocking_opts_t o = { NULL, count_cancel, 0 };
    ck_assert_int_eq(weft_spawn_blocking_at(h, gate_job, &g, NULL, NULL, WEFT_SITE), 0);
    ck_assert(wait_for(&g.entered, 1));
    weft_join_handle_t q[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weft_spawn_blocking_at(h, count_run, NULL, &q[i], &o, WEFT_SITE), 0);
    /* The running job holds shutdown up to its timeout... */
    ck_assert_int_eq(weft_runtime_shutdown_timeout(rt, 30), WEFT_ETIMEDOUT);
    ck_assert_int_eq(cancels, 3); /* ...the queued ones were cancelled at once */
    for (int i = 0; i < 3; i++) {
        ck_assert(weft_join_handle_is_finished(&q[i]));
        weft_join_handle_drop(&q[i]);
    }
    /* A job submitted during shutdown is cancelled, never hangs. */
    weft_join_handle_t late;
    ck_assert_int_eq(weft_spawn_blocking_at(h, count_run, NULL, &late, &o, WEFT_SITE), 0);
    ck_assert(weft_join_handle_is_finished(&late));
    ck_assert_int_eq(cancels, 4);
    weft_join_handle_drop(&late);
    gate_open(&g);
    ck_assert_int_eq(weft_runtime_shutdown_timeout(rt, 5000), 0);
    ck_assert_int_eq(g.left, 1);
    ck_assert_int_eq(ran, 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* Shutting the runtime down from one of its own blocking jobs. */
static _Atomic int self_shutdown_rc;
static void *shutdown_self(void *arg)
{
    self_shutdown_rc = weft_runtime_shutdown_timeout(arg, 1000);
    return NULL;
}
static void *free_self(void *arg)
{
    weft_runtime_free(arg);
    return NULL;
}

START_TEST(shutdown_from_blocking_thread_is_an_error)
{
    for (int shape = 0; shape < N_SHAPES; shape++) {
        weft_runtime_t *rt = shape_rt(shape);
        self_shutdown_rc = 1;
        weft_join_handle_t jh;
        ck_assert_int_eq(weft_spawn_blocking_at(weft_runtime_handle(rt), shutdown_self, rt, &jh, NULL, WEFT_SITE),
                         0);
        ck_assert_int_eq(join_out(rt, &jh, NULL), 0);
        ck_assert_int_eq(self_shutdown_rc, WEFT_EDEADLK);
        weft_runtime_free(rt);
    }
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(free_from_blocking_thread_aborts)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
    weft_join_handle_t jh;
    ck_assert_int_eq(weft_spawn_blocking_at(weft_runtime_handle(rt), free_self, rt, &jh, NULL, WEFT_SITE), 0);
    (void)join_out(rt, &jh, NULL);
    ck_abort_msg("weft_runtime_free from a blocking job did not abort");
}
END_TEST

/* A blocking job may drive its runtime: block_on and spawn from it. */
typedef struct {
    WEFT_FRAME;
    weft_sleep_t sl;
} nap_t;
WEFT_ASYNC(nap_t, nap_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->sl, weft_sleep_ms(5), NULL);
    WEFT_RETURN(11);
    WEFT_END();
}
static void *block_on_from_job(void *arg)
{
    /* A blocking job is inside its runtime: weft_spawn finds it. */
    weft_ready_t r = weft_ready(1);
    if (weft_spawn(&r, NULL) != 0)
        return (void *)(intptr_t)-1;
    nap_t n = { WEFT_FRAME_INIT(nap_fn) };
    int out = 0;
    int rc = weft_runtime_block_on(arg, WEFT_FUTURE(&n), &out);
    return (void *)(intptr_t)(rc == 0 ? out : rc);
}

START_TEST(blocking_job_can_block_on_its_runtime)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    weft_join_handle_t jh;
    ck_assert_int_eq(weft_spawn_blocking_at(weft_runtime_handle(rt), block_on_from_job, rt, &jh, NULL, WEFT_SITE),
                     0);
    void *out = NULL;
    ck_assert_int_eq(join_out(rt, &jh, &out), 0);
    ck_assert_int_eq((intptr_t)out, 11);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* A job waiting in block_on on a long sleep does not hold shutdown up: the
 * reactor fires every timer left when it stops, before the pool is waited
 * for. */
typedef struct {
    WEFT_FRAME;
    weft_sleep_t sl;
} long_nap_t;
WEFT_ASYNC(long_nap_t, long_nap_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->sl, weft_sleep_ms(60000), NULL);
    WEFT_RETURN(1);
    WEFT_END();
}
static _Atomic int napping;
static void *long_nap_job(void *arg)
{
    long_nap_t n = { WEFT_FRAME_INIT(long_nap_fn) };
    int out = 0;
    napping = 1;
    int rc = weft_runtime_block_on(arg, WEFT_FUTURE(&n), &out);
    return (void *)(intptr_t)(rc == 0 ? out : rc);
}

START_TEST(shutdown_ends_a_blocking_jobs_sleep)
{
    for (int shape = 1; shape < N_SHAPES; shape++) {
        weft_runtime_t *rt = shape_rt(shape);
        napping = 0;
        ck_assert_int_eq(weft_spawn_blocking_at(weft_runtime_handle(rt), long_nap_job, rt, NULL, NULL, WEFT_SITE), 0);
        ck_assert(wait_for(&napping, 1));
        sleep_ms(20); /* the sleep is registered by now */
        uint64_t t0 = weft_now_ns();
        ck_assert_int_eq(weft_runtime_shutdown_timeout(rt, 10000), 0);
        ck_assert_uint_lt(weft_now_ns() - t0, 5000000000u);
        weft_runtime_free(rt);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* Many spawner threads at once: every job runs exactly once. */
#define SPAWNERS 8
#define PER_SPAWNER 2000
static void *spawner_thread(void *arg)
{
    weft_handle_t *h = arg;
    for (int i = 0; i < PER_SPAWNER; i++)
        if (weft_spawn_blocking_at(h, count_run, NULL, NULL, NULL, WEFT_SITE) != 0)
            return (void *)1;
    return NULL;
}

START_TEST(many_spawners)
{
    weft_runtime_t *rt = pool_rt(WEFT_RUNTIME_MULTI_THREAD, 2, 16, 10000);
    ran = 0;
    pthread_t th[SPAWNERS];
    for (int i = 0; i < SPAWNERS; i++)
        pthread_create(&th[i], NULL, spawner_thread, weft_runtime_handle(rt));
    for (int i = 0; i < SPAWNERS; i++) {
        void *r;
        pthread_join(th[i], &r);
        ck_assert_ptr_null(r);
    }
    ck_assert(wait_for(&ran, SPAWNERS * PER_SPAWNER));
    weft_runtime_free(rt);
    ck_assert_int_eq(ran, SPAWNERS * PER_SPAWNER);
    ASSERT_NO_LIVE();
}
END_TEST

/* Seeded chaos: spawn_blocking racing shutdown always resolves: every job
 * either ran or had its cancel called, exactly once, and nothing hangs. */
typedef struct {
    weft_handle_t *h;
    _Atomic int spawned;
} racer_t;
static _Atomic int race_ran, race_cancelled;
static void *race_job(void *arg)
{
    (void)arg;
    race_ran++;
    return NULL;
}
static void race_cancel(void *arg)
{
    (void)arg;
    race_cancelled++;
}
static void *race_spawner(void *arg)
{
    racer_t *r = arg;
    weft_blocking_opts_t o = { NULL, race_cancel, 0 };
    for (int i = 0; i < 40; i++) {
        weft_join_handle_t jh;
        if (weft_spawn_blocking_at(r->h, race_job, NULL, i % 2 ? &jh : NULL, &o, WEFT_SITE) == 0) {
            r->spawned++;
            if (i % 2)
                weft_join_handle_drop(&jh);
        }
    }
    return NULL;
}

START_TEST(stress_spawn_blocking_racing_shutdown)
{
    int iters = chaos_iters(200) / 4 + 1;
    uint64_t s0 = chaos_seed0();
    for (int it = 0; it < iters; it++) {
        uint64_t seed = s0 + (uint64_t)it;
        weft_runtime_t *rt = pool_rt(it % 3 == 0 ? WEFT_RUNTIME_CURRENT_THREAD : WEFT_RUNTIME_MULTI_THREAD,
                                     1 + it % 2, 1 + it % 3, it % 2 ? 0 : 10000);
        racer_t r = { weft_runtime_handle(rt), 0 };
        race_ran = race_cancelled = 0;
        weft__chaos_set(seed, 30);
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, race_spawner, &r);
        if (it % 4)
            sleep_ms(it % 3);
        /* Shutdown races the spawners; the handle stays valid until free. */
        ck_assert_int_eq(weft_runtime_shutdown_timeout(rt, 10000), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        weft_runtime_free(rt);
        weft__chaos_set(0, 0);
        if (race_ran + race_cancelled != r.spawned)
            ck_abort_msg("seed %llu: %d spawned, %d ran, %d cancelled", (unsigned long long)seed, (int)r.spawned,
                         (int)race_ran, (int)race_cancelled);
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- block_in_place ------------------------------------------------------------- */

/* Waits (in the blocking call) until a sibling task has run, which, on a
 * runtime with one worker, only a handed-off worker loop can do. */
static _Atomic int sibling_ran;
static void *wait_sibling(void *arg)
{
    for (int i = 0; i < 3000 && !sibling_ran; i++)
        sleep_ms(1);
    return sibling_ran ? arg : NULL;
}

typedef struct {
    WEFT_FRAME;
} sib_t;
WEFT_ASYNC(sib_t, sib_fn, int)
{
    WEFT_BEGIN();
    sibling_ran = 1;
    WEFT_RETURN(1);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_join_handle_t sib;
    void *got;
    int rc, jrc;
    weft_sleep_t sl;
} bip_t;
WEFT_ASYNC(bip_t, bip_fn, int)
{
    WEFT_BEGIN();
    {
        sib_t s = { WEFT_FRAME_INIT(sib_fn) };
        if (weft_spawn(&s, &self->sib) != 0) /* sits in this worker's LIFO slot */
            WEFT_RETURN(-100);
    }
    self->rc = weft_block_in_place(wait_sibling, (void *)0x5, &self->got);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    if (self->got != (void *)0x5)
        WEFT_RETURN(-101);
    /* The rest of the task still works: it yields, sleeps, joins. */
    WEFT_YIELD();
    WEFT_AWAIT(&self->sl, weft_sleep_ms(2), NULL);
    WEFT_AWAIT_REF(weft_join(&self->sib, NULL), &self->jrc);
    WEFT_RETURN(self->jrc);
    WEFT_END();
}

START_TEST(block_in_place_hands_the_worker_over)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
    for (int round = 0; round < 20; round++) {
        sibling_ran = 0;
        bip_t b = { WEFT_FRAME_INIT(bip_fn) };
        weft_join_handle_t jh;
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &b, &jh), 0);
        int out = -1;
        ck_assert_int_eq(join_out(rt, &jh, &out), 0);
        ck_assert_int_eq(out, 0);
    }
    /* The threads that blocked went back to the pool, not beyond it. */
    weft_blocking_stats_t st;
    weft_blocking_stats(weft_runtime_handle(rt), &st);
    ck_assert_uint_le(st.threads, 20);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* With no thread to be had, the queued tasks go to the other workers. */
START_TEST(block_in_place_without_threads_spills_to_others)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    sibling_ran = 0;
    bip_t b = { WEFT_FRAME_INIT(bip_fn) };
    weft_join_handle_t jh;
    weft__thread_fail_after(1);
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &b, &jh), 0);
    int out = -1;
    ck_assert_int_eq(join_out(rt, &jh, &out), 0);
    weft__thread_fail_after(-1);
    ck_assert_int_eq(out, 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* Tokio's block_in_place(|| handle.block_on(fut)): a task blocks its
 * thread on another future of the same runtime, which its worker (handed
 * to another thread) keeps running. */
typedef struct {
    WEFT_FRAME;
    weft_runtime_t *rt;
    void *got;
    int rc;
} bipbo_t;
WEFT_ASYNC(bipbo_t, bipbo_fn, int)
{
    WEFT_BEGIN();
    self->rc = weft_block_in_place(block_on_from_job, self->rt, &self->got);
    WEFT_RETURN(self->rc != 0 ? self->rc : (int)(intptr_t)self->got);
    WEFT_END();
}

START_TEST(block_in_place_then_block_on)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
    bipbo_t b = { WEFT_FRAME_INIT(bipbo_fn), .rt = rt };
    weft_join_handle_t jh;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &b, &jh), 0);
    int out = 0;
    ck_assert_int_eq(join_out(rt, &jh, &out), 0);
    ck_assert_int_eq(out, 11);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

typedef struct {
    WEFT_FRAME;
} bipct_t;
WEFT_ASYNC(bipct_t, bipct_fn, int)
{
    WEFT_BEGIN();
    WEFT_RETURN(weft_block_in_place(count_run, NULL, NULL));
    WEFT_END();
}

START_TEST(block_in_place_current_thread_is_an_error)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    ran = 0;
    bipct_t b = { WEFT_FRAME_INIT(bipct_fn) };
    weft_join_handle_t jh;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &b, &jh), 0);
    int out = 0;
    ck_assert_int_eq(join_out(rt, &jh, &out), 0);
    ck_assert_int_eq(out, WEFT_EPERM);
    ck_assert_int_eq(ran, 0);
    /* Outside any worker it just runs the function. */
    void *r = NULL;
    ck_assert_int_eq(weft_block_in_place(triple, (void *)2, &r), 0);
    ck_assert_ptr_eq(r, (void *)7);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("blocking");
    TCase *tc = tcase_create("spawn_blocking");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, spawn_blocking_results);
    tcase_add_test(tc, spawn_blocking_named_and_detached);
    ADD_ABORT_TEST(tc, spawn_blocking_null_fn_aborts);
    tcase_add_test(tc, builder_rejects_bad_blocking_cap);
    tcase_add_test(tc, cap_limits_threads_and_queues_the_rest);
    tcase_add_test(tc, aborted_queued_job_calls_cancel);
    tcase_add_test(tc, try_spawn_bounded_queue);
    tcase_add_test(tc, idle_threads_exit_after_keep_alive);
    tcase_add_test(tc, idle_threads_stay_within_keep_alive);
    tcase_add_test(tc, thread_creation_failure_is_an_error_on_the_handle);
    tcase_add_test(tc, runtime_new_thread_failure);
    tcase_add_test(tc, spawn_blocking_enomem_at_every_step);
    tcase_add_test(tc, many_spawners);
    tcase_add_test(tc, blocking_job_can_block_on_its_runtime);
    suite_add_tcase(s, tc);

    TCase *sd = tcase_create("shutdown");
    tcase_set_timeout(sd, 300);
    tcase_add_test(sd, shutdown_cancels_queued_and_waits_for_running);
    tcase_add_test(sd, shutdown_from_blocking_thread_is_an_error);
    tcase_add_test(sd, shutdown_ends_a_blocking_jobs_sleep);
    ADD_ABORT_TEST(sd, free_from_blocking_thread_aborts);
    tcase_add_test(sd, stress_spawn_blocking_racing_shutdown);
    suite_add_tcase(s, sd);

    TCase *bp = tcase_create("block_in_place");
    tcase_set_timeout(bp, 120);
    tcase_add_test(bp, block_in_place_hands_the_worker_over);
    tcase_add_test(bp, block_in_place_without_threads_spills_to_others);
    tcase_add_test(bp, block_in_place_then_block_on);
    tcase_add_test(bp, block_in_place_current_thread_is_an_error);
    suite_add_tcase(s, bp);
    return run_suite(s);
}
