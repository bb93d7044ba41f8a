/* tests/test_paused_time.c - the virtual clocks of a current-thread
 * runtime (WEFT_CLOCK_PAUSED, WEFT_CLOCK_MANUAL; docs/testing.md): a
 * one-hour sleep ends at once; sleeps, timeouts and intervals fire in
 * deadline order at exact virtual times; weft_time_advance moves the clock
 * and fires what is due, from a task or another thread; the clock does not
 * jump while a task is runnable, a blocking job is in flight or socket
 * data is waiting (the worked example of docs/testing.md: a server's
 * 30-second idle timeout); a manual clock never jumps; the virtual time is
 * per runtime; unsupported combinations give WEFT_EINVAL. Virtual times
 * are compared exactly; wall times only against generous sanity bounds. */
#include "testlib.h"

#define MS 1000000u /* ns */
#define HOUR_MS (3600u * 1000u)

static weft_runtime_t *clock_rt(weft_clock_t clock)
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_CURRENT_THREAD);
    b.clock = clock;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    return rt;
}

/* weft_now_ns as read inside rt (its block_on thread). */
typedef struct {
    weft_future_t future;
} now_t;
static weft_poll_t now_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx;
    *(uint64_t *)out = weft_now_ns();
    return WEFT_READY;
}
static const weft_future_vtable_t now_vt = { now_poll, NULL, NULL, sizeof(now_t), sizeof(uint64_t), "now" };
static uint64_t now_in_rt(weft_runtime_t *rt)
{
    now_t f = { { &now_vt } };
    uint64_t v = 0;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&f), &v), 0);
    return v;
}

/* ---- The event log: what happened at which virtual time ------------------- */
/* Bodies run on the block_on thread only (current-thread runtime): no lock. */
typedef struct {
    int what;
    uint64_t at; /* ns since t0, on the runtime's clock */
} ev_t;
static ev_t evs[64];
static int nev;
static uint64_t t0;

static void ev(int what)
{
    if (nev < 64)
        evs[nev++] = (ev_t){ what, weft_now_ns() - t0 };
}

static void assert_log(const ev_t *want, int n)
{
    ck_assert_int_eq(nev, n);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(evs[i].what == want[i].what && evs[i].at == want[i].at * MS,
                      "event %d: %d at %" PRIu64 " ns, wanted %d at %" PRIu64 " ms", i, evs[i].what, evs[i].at,
                      want[i].what, want[i].at);
    }
}

/* ---- A one-hour sleep -------------------------------------------------------- */
static _Atomic int nap_done; /* set by a napper as its sleep ends */
typedef struct {
    WEFT_FRAME;
    uint64_t ms, start;
    weft_sleep_t s;
} napper_t;
WEFT_ASYNC(napper_t, napper_fn, uint64_t)
{
    WEFT_BEGIN();
    self->start = weft_now_ns();
    WEFT_AWAIT(&self->s, weft_sleep_ms(self->ms), NULL);
    nap_done = 1;
    WEFT_RETURN(weft_now_ns() - self->start);
    WEFT_END();
}

START_TEST(one_hour_sleep_ends_at_once)
{
    weft_runtime_t *rt = clock_rt(WEFT_CLOCK_PAUSED);
    uint64_t wall0 = weft_now_ns(); /* outside the runtime: the real clock */
    napper_t n = { WEFT_FRAME_INIT(napper_fn), .ms = HOUR_MS };
    uint64_t took = 0;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&n), &took), 0);
    uint64_t wall = weft_now_ns() - wall0;
    ck_assert_uint_eq(took, (uint64_t)HOUR_MS * MS); /* exactly one virtual hour */
    ck_assert_msg(wall < 2000u * MS, "a paused hour took %" PRIu64 " ms of real time", wall / MS);
    /* Again, from a spawned task this time, on the same runtime. */
    napper_t m = { WEFT_FRAME_INIT(napper_fn), .ms = 24 * HOUR_MS };
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&m), &took), 0);
    ck_assert_uint_eq(took, (uint64_t)24 * HOUR_MS * MS);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Deadline order ---------------------------------------------------------- */
/* Event codes: a sleeper of ms notes EV_SLEEP + ms / 10. */
enum { EV_SLEEP = 1000, EV_TIMEOUT = 5000, EV_TICK = 6000, EV_INNER_DROPPED = 7000 };

typedef struct {
    WEFT_FRAME;
    uint64_t ms;
    weft_sleep_t s;
} sleeper_t;
WEFT_ASYNC(sleeper_t, sleeper_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->s, weft_sleep_ms(self->ms), NULL);
    ev(EV_SLEEP + (int)self->ms / 10);
    WEFT_RETURN(0);
    WEFT_END();
}

/* A future that never finishes, and notes when a timeout drops it. */
typedef struct {
    weft_future_t future;
} forever_t;
static weft_poll_t forever_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx, (void)out;
    return WEFT_PENDING;
}
static void forever_drop(weft_future_t *f)
{
    (void)f;
    ev(EV_INNER_DROPPED);
}
static const weft_future_vtable_t forever_vt = { forever_poll, forever_drop, NULL, sizeof(forever_t), 0, "forever" };

typedef struct {
    WEFT_FRAME;
    uint64_t ms;
    int rc;
    forever_t inner;
    weft_timeout_t t;
} limited_t;
WEFT_ASYNC(limited_t, limited_fn, int)
{
    WEFT_BEGIN();
    self->inner = (forever_t){ { &forever_vt } };
    WEFT_AWAIT(&self->t, weft_timeout_ms(WEFT_FUTURE(&self->inner), NULL, self->ms), &self->rc);
    ev(EV_TIMEOUT);
    WEFT_RETURN(self->rc);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_interval_t iv;
    weft_tick_t tick;
    uint64_t at;
    int i;
} ticker_t;
static void ticker_cleanup(ticker_t *t) { weft_interval_drop(&t->iv); }
WEFT_ASYNC_WITH_DROP(ticker_t, ticker_fn, int, ticker_cleanup)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 5; self->i++) {
        WEFT_AWAIT(&self->tick, weft_interval_tick(&self->iv), &self->at);
        /* Delivered exactly at its scheduled time: nothing makes it late. */
        if (!WEFT_TEST_CHECK_INT_EQ(self->at, weft_now_ns()))
            WEFT_RETURN(-1);
        ev(EV_TICK + self->i);
    }
    WEFT_RETURN(0);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_join_handle_t h[5];
    int i, rc, out;
} mix_t;
WEFT_ASYNC(mix_t, mix_fn, int)
{
    WEFT_BEGIN();
    t0 = weft_now_ns();
    {
        /* Spawned in an order unlike their deadlines. */
        sleeper_t s300 = { WEFT_FRAME_INIT(sleeper_fn), .ms = 300 };
        sleeper_t s100 = { WEFT_FRAME_INIT(sleeper_fn), .ms = 100 };
        limited_t lim = { WEFT_FRAME_INIT(limited_fn), .ms = 150 };
        sleeper_t s200 = { WEFT_FRAME_INIT(sleeper_fn), .ms = 200 };
        ticker_t tk = { WEFT_FRAME_INIT(ticker_fn), .iv = weft_interval_ms(70, WEFT_MISSED_BURST) };
        if (!WEFT_TEST_CHECK(weft_spawn(&s300, &self->h[0]) == 0 && weft_spawn(&s100, &self->h[1]) == 0 &&
                             weft_spawn(&lim, &self->h[2]) == 0 && weft_spawn(&s200, &self->h[3]) == 0 &&
                             weft_spawn(&tk, &self->h[4]) == 0))
            WEFT_RETURN(-1);
    }
    for (self->i = 0; self->i < 5; self->i++) {
        WEFT_AWAIT_REF(weft_join(&self->h[self->i], &self->out), &self->rc);
        WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
        WEFT_TEST_CHECK_INT_EQ(self->out, self->i == 2 ? WEFT_ETIMEDOUT : 0);
    }
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(timers_fire_in_deadline_order_at_exact_times)
{
    weft_runtime_t *rt = clock_rt(WEFT_CLOCK_PAUSED);
    nev = 0;
    mix_t m = { WEFT_FRAME_INIT(mix_fn) };
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&m), &rc), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(rc, 0);
    const ev_t want[] = {
        { EV_TICK + 0, 0 },   { EV_TICK + 1, 70 },        { EV_SLEEP + 10, 100 }, { EV_TICK + 2, 140 },
        { EV_INNER_DROPPED, 150 }, { EV_TIMEOUT, 150 },   { EV_SLEEP + 20, 200 }, { EV_TICK + 3, 210 },
        { EV_TICK + 4, 280 }, { EV_SLEEP + 30, 300 },
    };
    assert_log(want, (int)(sizeof want / sizeof want[0]));
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- weft_time_advance --------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    weft_join_handle_t h[3];
    int i, rc;
} advancer_t;
WEFT_ASYNC(advancer_t, advancer_fn, int)
{
    WEFT_BEGIN();
    t0 = weft_now_ns();
    {
        sleeper_t s30 = { WEFT_FRAME_INIT(sleeper_fn), .ms = 30 };
        sleeper_t s10 = { WEFT_FRAME_INIT(sleeper_fn), .ms = 10 };
        sleeper_t s20 = { WEFT_FRAME_INIT(sleeper_fn), .ms = 20 };
        if (!WEFT_TEST_CHECK(weft_spawn(&s30, &self->h[0]) == 0 && weft_spawn(&s10, &self->h[1]) == 0 &&
                             weft_spawn(&s20, &self->h[2]) == 0))
            WEFT_RETURN(-1);
    }
    WEFT_YIELD(); /* the sleepers register */
    WEFT_YIELD();
    /* Short of every deadline: the clock moves, nothing fires. */
    WEFT_TEST_CHECK_INT_EQ(weft_time_advance(NULL, 9), 0);
    WEFT_TEST_CHECK_INT_EQ(weft_now_ns() - t0, 9 * MS);
    WEFT_YIELD();
    WEFT_TEST_CHECK_INT_EQ(nev, 0);
    /* Exactly to the first deadline: it fires. */
    WEFT_TEST_CHECK_INT_EQ(weft_time_advance(NULL, 1), 0);
    WEFT_YIELD();
    WEFT_TEST_CHECK_INT_EQ(nev, 1);
    /* One long step past both others: they fire in deadline order, and
     * both see the time the step ended at. */
    WEFT_TEST_CHECK_INT_EQ(weft_time_advance(NULL, 990), 0);
    WEFT_TEST_CHECK_INT_EQ(weft_now_ns() - t0, 1000 * MS);
    for (self->i = 0; self->i < 3; self->i++) {
        WEFT_AWAIT_REF(weft_join(&self->h[self->i], NULL), &self->rc);
        WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
    }
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(advance_moves_the_clock_and_fires_what_is_due)
{
    weft_runtime_t *rt = clock_rt(WEFT_CLOCK_MANUAL);
    nev = 0;
    advancer_t a = { WEFT_FRAME_INIT(advancer_fn) };
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&a), &rc), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(rc, 0);
    const ev_t want[] = { { EV_SLEEP + 1, 10 }, { EV_SLEEP + 2, 1000 }, { EV_SLEEP + 3, 1000 } };
    assert_log(want, 3);
    weft_runtime_free(rt);

    /* A real clock has nothing to advance. */
    rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    ck_assert_int_eq(weft_time_advance(weft_runtime_handle(rt), 5), WEFT_EINVAL);
    weft_runtime_free(rt);
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 1;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    ck_assert_int_eq(weft_time_advance(weft_runtime_handle(rt), 5), WEFT_EINVAL);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* From another thread: block_on waits on a 10 ms sleep that only an
 * advance can end; the thread looks after 50 ms of real time (the sleep
 * must still be pending: a manual clock never moves by itself), then
 * advances. */
typedef struct {
    weft_runtime_t *rt;
    bool pending_before;
    int rc;
} outside_t;
static void *outside_main(void *arg)
{
    outside_t *o = arg;
    sleep_ms(50);
    o->pending_before = !nap_done;
    o->rc = weft_time_advance(weft_runtime_handle(o->rt), 10);
    return NULL;
}

START_TEST(manual_clock_moves_only_when_advanced)
{
    weft_runtime_t *rt = clock_rt(WEFT_CLOCK_MANUAL);
    nap_done = 0;
    napper_t n = { WEFT_FRAME_INIT(napper_fn), .ms = 10 };
    outside_t o = { rt, false, -1 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, outside_main, &o), 0);
    uint64_t took = 0;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&n), &took), 0);
    pthread_join(th, NULL);
    ck_assert(o.pending_before);
    ck_assert_int_eq(o.rc, 0);
    ck_assert_uint_eq(took, 10 * MS);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* Polls the sleep it points to once (registering it) and is ready. */
typedef struct {
    weft_future_t future;
    weft_sleep_t *s;
} poll_once_t;
static weft_poll_t poll_once_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    poll_once_t *p = (poll_once_t *)(void *)f;
    *(weft_poll_t *)out = weft_future_poll(&p->s->future, cx, NULL);
    return WEFT_READY;
}
static const weft_future_vtable_t poll_once_vt = { poll_once_poll, NULL, NULL, sizeof(poll_once_t),
                                                   sizeof(weft_poll_t), "poll_once" };

/* A sleep of a virtual clock is elapsed by that clock, not the real one,
 * also when asked from outside the runtime. */
START_TEST(sleep_is_elapsed_on_its_runtimes_clock)
{
    weft_runtime_t *rt = clock_rt(WEFT_CLOCK_MANUAL);
    weft_sleep_t s = weft_sleep_until(now_in_rt(rt) + 5 * MS);
    poll_once_t p = { { &poll_once_vt }, &s };
    weft_poll_t first = WEFT_READY;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&p), &first), 0);
    ck_assert_int_eq(first, WEFT_PENDING); /* registered in the runtime's wheel */
    sleep_ms(20);                          /* real time passes... */
    ck_assert(!weft_sleep_is_elapsed(&s)); /* ...not the runtime's */
    ck_assert_int_eq(weft_time_advance(weft_runtime_handle(rt), 4), 0);
    ck_assert(!weft_sleep_is_elapsed(&s));
    ck_assert_int_eq(weft_time_advance(weft_runtime_handle(rt), 1), 0);
    ck_assert(weft_sleep_is_elapsed(&s)); /* fired by the advance */
    weft_future_drop(&s.future);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- What the clock does not jump over --------------------------------------- */
/* A task that stays runnable (yields 1000 times) holds the clock: a 1 ms
 * sleeper fires only once it is done, and the yielder sees the clock
 * stand still throughout. */
static int yields_done;
typedef struct {
    WEFT_FRAME;
    int i;
    uint64_t start;
} busy_t;
WEFT_ASYNC(busy_t, busy_fn, int)
{
    WEFT_BEGIN();
    self->start = weft_now_ns();
    for (self->i = 0; self->i < 1000; self->i++) {
        WEFT_YIELD();
        if (!WEFT_TEST_CHECK_INT_EQ(weft_now_ns(), self->start))
            WEFT_RETURN(-1);
        yields_done++;
    }
    WEFT_RETURN(0);
    WEFT_END();
}
typedef struct {
    WEFT_FRAME;
    weft_sleep_t s;
} short_nap_t;
WEFT_ASYNC(short_nap_t, short_nap_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->s, weft_sleep_ms(1), NULL);
    WEFT_RETURN(yields_done);
    WEFT_END();
}
typedef struct {
    WEFT_FRAME;
    weft_join_handle_t hb, hs;
    int rc, busy_out, seen;
} busy_root_t;
WEFT_ASYNC(busy_root_t, busy_root_fn, int)
{
    WEFT_BEGIN();
    {
        short_nap_t s = { WEFT_FRAME_INIT(short_nap_fn) };
        busy_t b = { WEFT_FRAME_INIT(busy_fn) };
        if (!WEFT_TEST_CHECK(weft_spawn(&s, &self->hs) == 0 && weft_spawn(&b, &self->hb) == 0))
            WEFT_RETURN(-1);
    }
    WEFT_AWAIT_REF(weft_join(&self->hs, &self->seen), &self->rc);
    WEFT_AWAIT_REF(weft_join(&self->hb, &self->busy_out), &self->rc);
    WEFT_RETURN(self->seen);
    WEFT_END();
}

START_TEST(runnable_task_holds_the_clock)
{
    weft_runtime_t *rt = clock_rt(WEFT_CLOCK_PAUSED);
    yields_done = 0;
    busy_root_t r = { WEFT_FRAME_INIT(busy_root_fn) };
    int seen = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&r), &seen), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(seen, 1000);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* A blocking job in flight holds the clock: a task awaits a job of 100 ms
 * of real time under a one-hour timeout, next to a task sleeping 1 s. The
 * job wins at virtual time 0, then the sleeper wakes at exactly 1 s. And a
 * detached job, which wakes nobody when it ends, holds it as well. */
static _Atomic int detached_done;
static void *slow_job(void *arg)
{
    sleep_ms(100);
    return arg;
}
static void *detached_job(void *arg)
{
    (void)arg;
    sleep_ms(100);
    detached_done = 1;
    return NULL;
}
typedef struct {
    WEFT_FRAME;
    weft_join_handle_t job;
    void *out;
    int rc, jrc;
    weft_timeout_t t;
} job_waiter_t;
WEFT_ASYNC(job_waiter_t, job_waiter_fn, int)
{
    WEFT_BEGIN();
    if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_blocking(slow_job, (void *)(uintptr_t)7, &self->job), 0))
        WEFT_RETURN(-1);
    WEFT_AWAIT(&self->t, weft_timeout_ms(weft_join(&self->job, &self->out), &self->jrc, HOUR_MS), &self->rc);
    ev(EV_TIMEOUT + (self->rc == 0 ? 0 : 1));
    WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
    WEFT_TEST_CHECK_INT_EQ(self->jrc, 0);
    WEFT_TEST_CHECK(self->out == (void *)(uintptr_t)7);
    WEFT_RETURN(0);
    WEFT_END();
}
typedef struct {
    WEFT_FRAME;
    weft_join_handle_t hw, hs;
    int rc;
} job_root_t;
WEFT_ASYNC(job_root_t, job_root_fn, int)
{
    WEFT_BEGIN();
    t0 = weft_now_ns();
    {
        job_waiter_t w = { WEFT_FRAME_INIT(job_waiter_fn) };
        sleeper_t s = { WEFT_FRAME_INIT(sleeper_fn), .ms = 1000 };
        if (!WEFT_TEST_CHECK(weft_spawn(&w, &self->hw) == 0 && weft_spawn(&s, &self->hs) == 0))
            WEFT_RETURN(-1);
    }
    WEFT_AWAIT_REF(weft_join(&self->hw, NULL), &self->rc);
    WEFT_AWAIT_REF(weft_join(&self->hs, NULL), &self->rc);
    /* A detached job, and a sleep that must not end before it. */
    if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_blocking(detached_job, NULL, NULL), 0))
        WEFT_RETURN(-1);
    self->rc = 0;
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(blocking_job_holds_the_clock)
{
    weft_runtime_t *rt = clock_rt(WEFT_CLOCK_PAUSED);
    nev = 0;
    detached_done = 0;
    job_root_t r = { WEFT_FRAME_INIT(job_root_fn) };
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&r), &rc), 0);
    ASSERT_NO_TEST_FAIL();
    const ev_t want[] = { { EV_TIMEOUT, 0 }, { EV_SLEEP + 100, 1000 } };
    assert_log(want, 2);
    /* The detached job is still running (100 ms of real time): a sleep of
     * a virtual hour ends only after it. */
    napper_t n = { WEFT_FRAME_INIT(napper_fn), .ms = HOUR_MS };
    uint64_t took = 0;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&n), &took), 0);
    ck_assert_int_eq(detached_done, 1);
    ck_assert_uint_eq(took, (uint64_t)HOUR_MS * MS);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- The worked example of docs/testing.md: a server's idle timeout ------------ */
/* The example's own code (its server, client and test body), here with the
 * live-object checks of the test library; tests/meson.build also runs the
 * program as it is. */
int idle_timeout_example_main(void); /* its main, unused here */
#define main idle_timeout_example_main
#include "../examples/idle_timeout_test.c"
#undef main

START_TEST(server_idle_timeout_in_virtual_time)
{
    weft_runtime_t *rt = clock_rt(WEFT_CLOCK_PAUSED);
    uint64_t wall0 = weft_now_ns();
    test_t t = { WEFT_FRAME_INIT(test_fn) };
    seen_t seen;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&t), &seen), 0);
    uint64_t wall = weft_now_ns() - wall0;
    /* The echo of the message sent at 20 s came back at 20 s, not after
     * the server's 30-second timeout (its data was waiting: the clock did
     * not jump over it), and it pushed the timeout back to 50 s. */
    ck_assert_int_eq(seen.echo_ms[0], 0);
    ck_assert_int_eq(seen.echo_ms[1], 20000);
    ck_assert_int_eq(seen.bye_ms, 50000);
    ck_assert_int_eq(seen.eof_ms, 50000);
    ck_assert_msg(wall < 2000u * MS, "50 virtual seconds took %" PRIu64 " ms", wall / MS);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- One clock per runtime ----------------------------------------------------- */

START_TEST(virtual_time_is_per_runtime)
{
    weft_runtime_t *paused = clock_rt(WEFT_CLOCK_MANUAL);
    weft_runtime_t *other = clock_rt(WEFT_CLOCK_MANUAL);
    weft_runtime_t *real = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
    uint64_t p0 = now_in_rt(paused), o0 = now_in_rt(other);
    ck_assert_int_eq(weft_time_advance(weft_runtime_handle(paused), HOUR_MS), 0);
    ck_assert_uint_eq(now_in_rt(paused) - p0, (uint64_t)HOUR_MS * MS);
    ck_assert_uint_eq(now_in_rt(other), o0); /* the other virtual clock stood still */
    /* The real runtime and the test thread read the real clock, an hour
     * behind the paused one. */
    uint64_t real_now = weft_now_ns(), in_real = now_in_rt(real);
    ck_assert_uint_ge(in_real, real_now);
    ck_assert_uint_lt(in_real - real_now, 1000u * MS);
    ck_assert_uint_lt(in_real, now_in_rt(paused));
    /* A real sleep on the real runtime still takes real time. */
    napper_t n = { WEFT_FRAME_INIT(napper_fn), .ms = 20 };
    uint64_t took = 0;
    uint64_t wall0 = weft_now_ns();
    ck_assert_int_eq(weft_runtime_block_on(real, WEFT_FUTURE(&n), &took), 0);
    ck_assert_uint_ge(weft_now_ns() - wall0, 20 * MS);
    ck_assert_uint_ge(took, 20 * MS);
    weft_runtime_free(real);
    weft_runtime_free(other);
    weft_runtime_free(paused);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- A manual clock on a multi-thread runtime ------------------------------------ */
/* Sleepers on two workers note the virtual time they wake at (atomics:
 * they run on any worker); the test thread advances the clock and waits,
 * in real time, for them to run. */
static _Atomic uint64_t woke_at[3];
static _Atomic uint64_t mt_t0;
typedef struct {
    WEFT_FRAME;
    int idx;
    uint64_t ms;
    weft_sleep_t s;
} mt_sleeper_t;
WEFT_ASYNC(mt_sleeper_t, mt_sleeper_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->s, weft_sleep_until(mt_t0 + self->ms * MS), NULL);
    woke_at[self->idx] = weft_now_ns() - mt_t0; /* a worker reads the virtual clock too */
    WEFT_RETURN(0);
    WEFT_END();
}

static bool wait_woken(int n)
{
    for (int tries = 0; tries < 5000; tries++) { /* up to 5 s of real time */
        int k = 0;
        for (int i = 0; i < 3; i++)
            k += woke_at[i] != UINT64_MAX;
        if (k >= n)
            return k == n;
        sleep_ms(1);
    }
    return false;
}

START_TEST(manual_clock_on_multi_thread_runtime)
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 2;
    b.clock = WEFT_CLOCK_MANUAL;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    mt_t0 = now_in_rt(rt); /* block_on reads the virtual clock */
    weft_join_handle_t h[3];
    const uint64_t ms[3] = { 10, 20, 3000 };
    for (int i = 0; i < 3; i++) {
        woke_at[i] = UINT64_MAX;
        mt_sleeper_t sl = { WEFT_FRAME_INIT(mt_sleeper_fn), .idx = i, .ms = ms[i] };
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&sl), &h[i], NULL, WEFT_SITE), 0);
    }
    sleep_ms(50); /* real time passes; nothing wakes */
    ck_assert(wait_woken(0));
    ck_assert_int_eq(weft_time_advance(weft_runtime_handle(rt), 15), 0);
    ck_assert(wait_woken(1));
    ck_assert_uint_eq(woke_at[0], 15 * MS);
    ck_assert_int_eq(weft_time_advance(weft_runtime_handle(rt), 5), 0);
    ck_assert(wait_woken(2));
    ck_assert_uint_eq(woke_at[1], 20 * MS);
    ck_assert_uint_eq(now_in_rt(rt) - mt_t0, 20 * MS);
    ck_assert_int_eq(weft_time_advance(weft_runtime_handle(rt), HOUR_MS), 0);
    ck_assert(wait_woken(3));
    ck_assert_uint_eq(woke_at[2], (20 + (uint64_t)HOUR_MS) * MS);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(join_out(rt, &h[i], NULL), 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Shutdown, and what weft refuses ------------------------------------------ */
START_TEST(free_with_virtual_timers_pending)
{
    /* Tasks asleep for a virtual day are dropped by shutdown like any:
     * paused and manual current-thread runtimes, a manual multi-thread one. */
    for (int c = 0; c < 3; c++) {
        weft_runtime_t *rt;
        if (c < 2) {
            rt = clock_rt(c == 0 ? WEFT_CLOCK_PAUSED : WEFT_CLOCK_MANUAL);
        } else {
            weft_builder_t b;
            weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
            b.workers = 2;
            b.clock = WEFT_CLOCK_MANUAL;
            ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
        }
        weft_join_handle_t h[3];
        for (int i = 0; i < 3; i++) {
            napper_t n = { WEFT_FRAME_INIT(napper_fn), .ms = 24 * HOUR_MS };
            ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&n), &h[i], NULL, WEFT_SITE), 0);
        }
        weft_yield_t y = weft_yield_now(); /* let them register */
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&y), NULL), 0);
        weft_join_handle_drop(&h[0]);
        weft_runtime_free(rt);
        weft_join_handle_drop(&h[1]);
        weft_join_handle_drop(&h[2]);
    }
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(unsupported_combinations_refused)
{
    weft_builder_t b;
    weft_runtime_t *rt = NULL;
    /* Auto-advance on a multi-thread runtime: no single thread can tell
     * that every task is idle. */
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 2;
    b.clock = WEFT_CLOCK_PAUSED;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), WEFT_EINVAL);
    for (int c = WEFT_CLOCK_PAUSED; c <= WEFT_CLOCK_MANUAL; c++) {
        for (int f = 0; f < 2; f++) {
            /* No timers to drive. */
            weft_builder_init(&b, f ? WEFT_RUNTIME_MULTI_THREAD : WEFT_RUNTIME_CURRENT_THREAD);
            b.clock = (weft_clock_t)c;
            b.enable_time = false;
            ck_assert_int_eq(weft_runtime_new(&b, &rt), WEFT_EINVAL);
        }
    }
    weft_builder_init(&b, WEFT_RUNTIME_CURRENT_THREAD);
    b.clock = (weft_clock_t)9;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), WEFT_EINVAL);
    /* Without I/O is fine: time is all a virtual clock needs. */
    b.clock = WEFT_CLOCK_PAUSED;
    b.enable_io = false;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    napper_t n = { WEFT_FRAME_INIT(napper_fn), .ms = HOUR_MS };
    uint64_t took = 0;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&n), &took), 0);
    ck_assert_uint_eq(took, (uint64_t)HOUR_MS * MS);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("paused_time");
    TCase *tc = tcase_create("clock");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, one_hour_sleep_ends_at_once);
    tcase_add_test(tc, timers_fire_in_deadline_order_at_exact_times);
    tcase_add_test(tc, advance_moves_the_clock_and_fires_what_is_due);
    tcase_add_test(tc, manual_clock_moves_only_when_advanced);
    tcase_add_test(tc, sleep_is_elapsed_on_its_runtimes_clock);
    tcase_add_test(tc, runnable_task_holds_the_clock);
    tcase_add_test(tc, blocking_job_holds_the_clock);
    tcase_add_test(tc, server_idle_timeout_in_virtual_time);
    tcase_add_test(tc, virtual_time_is_per_runtime);
    tcase_add_test(tc, manual_clock_on_multi_thread_runtime);
    tcase_add_test(tc, free_with_virtual_timers_pending);
    tcase_add_test(tc, unsupported_combinations_refused);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
