/* tests/test_timer.c - the timing wheel on a mock clock; sleeps, timeouts
 * and intervals on a real runtime; aborting sleepers while the wheel fires;
 * the timer shards (a stuck owner, the parked driver and its hand-over). */
#include "../reactor/time_driver.h"
#include "../reactor/timer_wheel.h"

#include "testlib.h"

/* ---- The wheel, on a mock clock -------------------------------------------- */
#define WN 20000
static weft__timer_t wt[WN];
static uint64_t wdl[WN], wfired[WN], wnow;
static void wfire(weft__timer_t *e, void *a)
{
    (void)a;
    if (wfired[e - wt] != 0)
        ck_abort_msg("timer %d fired twice", (int)(e - wt));
    wfired[e - wt] = wnow;
}

/* Random timers, inserted while the clock advances in uneven steps, fired
 * in batches of `batch` (the reactor's way): each fires at the first
 * advance at or after its deadline, never before. */
static void wheel_run(uint64_t start, uint64_t seed, uint64_t batch, uint64_t max_delay)
{
    weft__wheel_t w;
    weft__wheel_init(&w, start);
    memset(wfired, 0, sizeof wfired);
    uint64_t x = seed | 1;
    int n = 0;
    wnow = start;
    uint64_t last_advance = start;
    for (int step = 0; step < 400; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        wnow += 1 + x % 7; /* the clock moves; the wheel only when advanced */
        for (int k = 0; k < 50 && n < WN; k++, n++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            wdl[n] = wnow + 1 + x % max_delay;
            /* Inserted relative to a wheel that may lag behind the clock. */
            ck_assert(weft__wheel_insert(&w, &wt[n], wdl[n]));
        }
        if (x % 3 == 0) {
            while (weft__wheel_advance_max(&w, wnow, wfire, NULL, batch) == batch)
                ;
            last_advance = wnow;
        }
        /* Every timer due at or before the last advance has fired. */
        /* (plain ifs: a Check assertion per timer per step is slow) */
        for (int i = 0; i < n; i++) {
            bool ok = wdl[i] <= last_advance ? wfired[i] != 0 && wfired[i] >= wdl[i] && wfired[i] <= last_advance
                                             : wfired[i] == 0;
            if (!ok)
                ck_abort_msg("start %llu batch %llu: timer %d due %llu fired %llu (advanced to %llu)",
                             (unsigned long long)start, (unsigned long long)batch, i, (unsigned long long)wdl[i],
                             (unsigned long long)wfired[i], (unsigned long long)last_advance);
        }
    }
    wnow += max_delay + 1;
    weft__wheel_advance(&w, wnow, wfire, NULL);
    for (int i = 0; i < n; i++)
        if (wfired[i] < wdl[i])
            ck_abort_msg("timer %d due %llu fired %llu", i, (unsigned long long)wdl[i], (unsigned long long)wfired[i]);
    ck_assert_uint_eq(w.count, 0);
}

START_TEST(wheel_fires_each_timer_once_on_time)
{
    wheel_run(0, 7, UINT64_MAX, 50);
    wheel_run(0, 8, 64, 50);       /* the reactor's batches of 64 */
    wheel_run(1000, 9, 3, 5000);   /* tiny batches, deadlines across levels 0-2 */
    wheel_run(0, 10, 64, 300000);  /* up to level 2 */
    wheel_run(4000, 13, 5, 4200);  /* across the ring's edge: ring and level 1 */
    wheel_run(123456, 14, 64, 40000000); /* up to level 3 */
}
END_TEST

static uint64_t wcount;
static void wcount_fire(weft__timer_t *e, void *a)
{
    (void)e;
    (void)a;
    wcount++;
}

START_TEST(wheel_ring_timers_never_cascade)
{
    /* Anything due within the ring (4096 ms) sits in its own millisecond's
     * slot: the wheel's next work is the deadline itself, and every timer
     * advance handles is fired, none moved. */
    static weft__timer_t t[WEFT_WHEEL_RING];
    weft__wheel_t w;
    weft__wheel_init(&w, 5000);
    for (unsigned i = 1; i < WEFT_WHEEL_RING; i++) {
        ck_assert(weft__wheel_insert(&w, &t[i], 5000 + i));
        ck_assert_uint_eq(t[i].level_, 0);
    }
    wcount = 0;
    for (uint64_t now = 5001; now < 5000 + WEFT_WHEEL_RING; now += 7) {
        ck_assert_uint_eq(weft__wheel_next(&w), now - 6 > 5001 ? now - 6 : 5001);
        uint64_t before = wcount;
        uint64_t handled = weft__wheel_advance_max(&w, now, wcount_fire, NULL, UINT64_MAX);
        ck_assert_uint_eq(handled, wcount - before);
        ck_assert_uint_eq(wcount, now - 5000);
    }
    weft__wheel_advance(&w, 5000 + WEFT_WHEEL_RING, wcount_fire, NULL);
    ck_assert_uint_eq(wcount, WEFT_WHEEL_RING - 1);
    ck_assert_uint_eq(w.count, 0);
}
END_TEST

START_TEST(wheel_far_slot_cascades_early_in_pieces)
{
    /* 1000 timers due in [10000, 10240): beyond the ring, in one level-1
     * slot (2048 ms from 8192). The wheel has work for it 2048 ms before
     * its start; advance moves it into the ring `max` timers at a time,
     * firing none, and then they fire on their own deadlines. */
    static weft__timer_t t[1000];
    weft__wheel_t w;
    weft__wheel_init(&w, 0);
    for (unsigned i = 0; i < 1000; i++) {
        ck_assert(weft__wheel_insert(&w, &t[i], 10000 + i % 240));
        ck_assert_uint_eq(t[i].level_, 1);
        ck_assert_uint_eq(weft__wheel_due(&w, &t[i]), 8192 - WEFT_WHEEL_RING / 2);
    }
    ck_assert_uint_eq(weft__wheel_next(&w), 8192 - WEFT_WHEEL_RING / 2);
    wcount = 0;
    ck_assert_uint_eq(weft__wheel_advance_max(&w, 6143, wcount_fire, NULL, 64), 0);
    unsigned rounds = 0;
    while (weft__wheel_advance_max(&w, 6144, wcount_fire, NULL, 64) == 64)
        rounds++;
    ck_assert_uint_eq(rounds, 1000 / 64);
    ck_assert_uint_eq(wcount, 0);
    for (unsigned i = 0; i < 1000; i++)
        ck_assert_uint_eq(t[i].level_, 0);
    ck_assert_uint_eq(weft__wheel_next(&w), 10000);
    ck_assert_uint_eq(weft__wheel_advance(&w, 9999, wcount_fire, NULL), 0);
    ck_assert_uint_eq(weft__wheel_advance(&w, 10000, wcount_fire, NULL), 5); /* i % 240 == 0 */
    ck_assert_uint_eq(weft__wheel_advance(&w, 10239, wcount_fire, NULL), 995);
    ck_assert_uint_eq(w.count, 0);
}
END_TEST

START_TEST(wheel_mock_clock_past_2_pow_36)
{
    /* The wheel's time is 64-bit: levels are digits of the distance, so
     * crossing 2^36 ms (or any power of 64) is nothing special. */
    wheel_run((UINT64_C(1) << 36) - 2000, 11, 64, 5000);
    wheel_run((UINT64_C(1) << 40) + 12345, 12, 64, 50);
}
END_TEST

START_TEST(wheel_clamps_far_future_and_removes)
{
    weft__wheel_t w;
    weft__wheel_init(&w, 100);
    weft__timer_t a, b, c;
    ck_assert(!weft__wheel_insert(&w, &a, 100)); /* due now: not inserted */
    ck_assert(!weft__wheel_insert(&w, &a, 5));
    ck_assert(weft__wheel_insert(&w, &b, UINT64_MAX)); /* clamped, not wrapped */
    ck_assert_uint_eq(b.wheel_deadline_, 100 + WEFT_WHEEL_MAX_MS);
    ck_assert_uint_gt(WEFT_WHEEL_MAX_MS, UINT64_C(1) << 35); /* still over a year */
    ck_assert(weft__wheel_insert(&w, &c, 150));
    /* next is when advance has work: here the start of c's level-1 slot */
    ck_assert_uint_gt(weft__wheel_next(&w), 100);
    ck_assert_uint_le(weft__wheel_next(&w), 150);
    weft__wheel_remove(&w, &c);
    ck_assert(!c.linked_);
    weft__wheel_remove(&w, &c); /* twice is harmless */
    ck_assert_uint_eq(w.count, 1);
    wnow = 100 + WEFT_WHEEL_MAX_MS;
    memset(wfired, 0, sizeof wfired);
    ck_assert_uint_eq(weft__wheel_advance(&w, wnow - 1, wfire, NULL), 0);
    ck_assert(b.linked_);
    weft__wheel_remove(&w, &b);
    ck_assert_uint_eq(w.count, 0);
    ck_assert_uint_eq(weft__wheel_next(&w), UINT64_MAX);
}
END_TEST

/* ---- Sleeps on a runtime ------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    uint64_t ms, t0, took;
    weft_sleep_t s;
} napper_t;
WEFT_ASYNC(napper_t, napper, uint64_t)
{
    WEFT_BEGIN();
    self->t0 = weft_now_ns();
    WEFT_AWAIT(&self->s, weft_sleep_ms(self->ms), NULL);
    WEFT_RETURN(weft_now_ns() - self->t0);
    WEFT_END();
}

START_TEST(sleep_never_ends_early)
{
    weft_runtime_t *rt = shape_rt(_i);
    uint64_t ms[] = { 0, 1, 5, 20, 70 }; /* 70 ms crosses a level-1 slot */
    for (size_t k = 0; k < sizeof ms / sizeof ms[0]; k++) {
        napper_t n = { WEFT_FRAME_INIT(napper), .ms = ms[k] };
        uint64_t took = 0;
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&n), &took), 0);
        ck_assert_msg(took >= ms[k] * 1000000u, "slept %llu ns for %llu ms", (unsigned long long)took,
                      (unsigned long long)ms[k]);
        /* generous: a loaded CI machine may be slow to schedule us */
        ck_assert_msg(took < (ms[k] + 500) * 1000000u, "slept %llu ms for %llu ms",
                      (unsigned long long)(took / 1000000u), (unsigned long long)ms[k]);
    }
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(timer_at_exactly_now_and_in_the_past)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_sleep_t s = weft_sleep_until(weft_now_ns());
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&s), NULL), 0);
    s = weft_sleep_until(0);
    ck_assert(weft_sleep_is_elapsed(&s));
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&s), NULL), 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* timeout: the inner future is dropped when time runs out */
static _Atomic int inner_drops;
typedef struct {
    WEFT_FRAME;
    uint64_t ms;
    weft_sleep_t s;
} slow_t;
static void slow_cleanup(slow_t *s) { (void)s; inner_drops++; }
WEFT_ASYNC_WITH_DROP(slow_t, slow_fn, int, slow_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->s, weft_sleep_ms(self->ms), NULL);
    WEFT_RETURN(7);
    WEFT_END();
}
typedef struct {
    WEFT_FRAME;
    slow_t inner;
    int inner_out, rc;
    uint64_t inner_ms, limit_ms;
    weft_timeout_t t;
} with_timeout_t;
WEFT_ASYNC(with_timeout_t, with_timeout, int)
{
    WEFT_BEGIN();
    self->inner = (slow_t){ WEFT_FRAME_INIT(slow_fn), .ms = self->inner_ms };
    WEFT_AWAIT(&self->t, weft_timeout_ms(WEFT_FUTURE(&self->inner), &self->inner_out, self->limit_ms), &self->rc);
    WEFT_RETURN(self->rc == 0 ? self->inner_out : self->rc);
    WEFT_END();
}

START_TEST(timeout_cancels_or_passes_through)
{
    weft_runtime_t *rt = shape_rt(_i);
    inner_drops = 0;
    with_timeout_t a = { WEFT_FRAME_INIT(with_timeout), .inner_ms = 500, .limit_ms = 10 };
    int r = 0;
    uint64_t t0 = weft_now_ns();
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&a), &r), 0);
    ck_assert_int_eq(r, WEFT_ETIMEDOUT);
    ck_assert_int_eq(inner_drops, 1); /* dropped at expiry */
    ck_assert_uint_lt(weft_now_ns() - t0, 400u * 1000000u);
    with_timeout_t b = { WEFT_FRAME_INIT(with_timeout), .inner_ms = 5, .limit_ms = 2000 };
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&b), &r), 0);
    ck_assert_int_eq(r, 7);
    ck_assert_int_eq(inner_drops, 2);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* interval: 5 ms period, the task stalls 23 ms after the first tick; the
 * missed-tick policy decides the next scheduled times. */
typedef struct {
    WEFT_FRAME;
    weft_interval_t iv;
    weft_tick_t tick;
    uint64_t at[4];
    int i;
} ticker_t;
static void ticker_cleanup(ticker_t *t) { weft_interval_drop(&t->iv); }
WEFT_ASYNC_WITH_DROP(ticker_t, ticker_fn, int, ticker_cleanup)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 4; self->i++) {
        WEFT_AWAIT(&self->tick, weft_interval_tick(&self->iv), &self->at[self->i]);
        if (self->i == 0)
            sleep_ms(23); /* blocks the worker: ticks are missed */
    }
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(interval_missed_tick_policies)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    const uint64_t P = 5000000u;
    for (int pol = 0; pol < 3; pol++) {
        ticker_t t = { WEFT_FRAME_INIT(ticker_fn), .iv = weft_interval_ms(5, (weft_missed_tick_t)pol) };
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&t), NULL), 0);
        /* at[] are the ticks' scheduled times. Tick 1 (due at 5 ms) is
         * taken late, at about 23 ms; the policy places tick 2. */
        uint64_t d1 = t.at[1] - t.at[0], d2 = t.at[2] - t.at[1], d3 = t.at[3] - t.at[2];
        ck_assert_uint_eq(d1, P);
        if (pol == WEFT_MISSED_BURST) {
            ck_assert_uint_eq(d2, P); /* on the grid, fired back to back */
            ck_assert_uint_eq(d3, P);
        } else if (pol == WEFT_MISSED_DELAY) {
            ck_assert_uint_ge(d2, 18000000u + P); /* one period after the late tick */
            ck_assert_uint_ge(d3, P);             /* (more if a slow machine was late again) */
        } else {
            ck_assert_uint_eq(d2 % P, 0); /* stays on the grid, skipping */
            ck_assert_uint_ge(d2, 3 * P);
            ck_assert_uint_eq(d3 % P, 0);
            ck_assert_uint_ge(d3, P);
        }
    }
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Cancel while the wheel fires ------------------------------------------------ */
typedef struct {
    weft_join_handle_t *hs;
    int n;
    _Atomic int *stop;
} killer_t;
static void *killer_main(void *arg)
{
    killer_t *k = arg;
    uint64_t x = 99;
    while (!*k->stop) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int i = (int)(x % (uint64_t)k->n);
        if (i & 1) /* odd handles are only aborted, never awaited */
            weft_join_handle_abort(&k->hs[i]);
    }
    return NULL;
}

START_TEST(abort_sleepers_while_firing)
{
    weft_runtime_t *rt = shape_rt(_i);
    enum { N = 400 };
    weft_join_handle_t *hs = calloc(N, sizeof *hs);
    for (int i = 0; i < N; i++) {
        napper_t n = { WEFT_FRAME_INIT(napper), .ms = 1 + (uint64_t)(i % 7) };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &n, &hs[i]), 0);
    }
    _Atomic int stop = 0;
    killer_t k = { hs, N, &stop };
    pthread_t th;
    pthread_create(&th, NULL, killer_main, &k);
    for (int i = 0; i < N; i += 2) {
        int rc = -1;
        uint64_t took;
        ck_assert_int_eq(weft_runtime_block_on(rt, weft_join(&hs[i], &took), &rc), 0);
        ck_assert_int_eq(rc, 0);
    }
    stop = 1;
    pthread_join(th, NULL);
    for (int i = 1; i < N; i += 2)
        weft_join_handle_drop(&hs[i]);
    weft_runtime_free(rt);
    free(hs);
    ASSERT_NO_LIVE();
}
END_TEST

/* A sleep awaited by a block_on on another thread ends when the runtime
 * shuts down (its reactor is gone), instead of hanging that thread. */
static weft_runtime_t *long_rt;
static void *long_sleeper(void *arg)
{
    weft_sleep_t s = weft_sleep_ms(60000);
    *(int *)arg = weft_runtime_block_on(long_rt, WEFT_FUTURE(&s), NULL);
    return NULL;
}

START_TEST(shutdown_ends_foreign_sleeps)
{
    long_rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
    int rc = -1;
    pthread_t th;
    pthread_create(&th, NULL, long_sleeper, &rc);
    sleep_ms(50); /* let it register */
    uint64_t t0 = weft_now_ns();
    ck_assert_int_eq(weft_runtime_shutdown_timeout(long_rt, 5000), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_lt(weft_now_ns() - t0, 5000u * 1000000u);
    weft_runtime_free(long_rt);
    ASSERT_NO_LIVE();
}
END_TEST


/* ---- Timer shards: a stuck owner, a parked driver ------------------------------ */

/* Spins on the worker until the sleep it watches has fired (or 5 s pass);
 * returns how long that took, UINT64_MAX if it never fired. */
typedef struct {
    WEFT_FRAME;
    weft_sleep_t *watch;
} spinner_t;
WEFT_ASYNC(spinner_t, spinner, uint64_t)
{
    WEFT_BEGIN();
    uint64_t t0 = weft_now_ns(), took = UINT64_MAX;
    while (weft_now_ns() - t0 < 5000u * 1000000u) {
        if (atomic_load_explicit(WEFT__SLEEP_FIRED_WORD(self->watch), memory_order_acquire) != 0) {
            took = weft_now_ns() - t0;
            break;
        }
    }
    WEFT_RETURN(took);
    WEFT_END();
}

/* Registers a 20 ms sleep in its worker's shard, then spawns a spinner,
 * which the LIFO slot runs next on the same worker: the shard's owner is
 * stuck inside a poll until someone else fires the sleep. */
typedef struct {
    WEFT_FRAME;
    weft_sleep_t s;
    spinner_t sp;
    weft_join_handle_t h;
    uint64_t spun;
    int rc;
} stuck_t;
WEFT_ASYNC(stuck_t, stuck_owner, uint64_t)
{
    WEFT_BEGIN();
    self->s = weft_sleep_ms(20);
    if (weft_future_poll(&self->s.future, weft__cx, NULL) == WEFT_READY)
        WEFT_RETURN(0); /* cannot happen: 20 ms from now */
    self->sp = (spinner_t){ WEFT_FRAME_INIT(spinner), .watch = &self->s };
    self->rc = weft_spawn(&self->sp, &self->h);
    (void)WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
    WEFT_AWAIT_REF(&self->s, NULL);
    if (self->rc != 0)
        WEFT_RETURN(UINT64_MAX); /* recorded above; no spinner to join */
    WEFT_AWAIT_REF(weft_join(&self->h, &self->spun), &self->rc); /* keeps our sleep alive for it */
    (void)WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
    WEFT_RETURN(self->spun);
    WEFT_END();
}

/* 1 worker: only the reactor thread's backstop can fire the timer; 2: the
 * idle worker fires the stuck worker's shard. The backstop is widened to
 * 300 ms so that which of them fired does not depend on a 4 ms race (under
 * valgrind or a loaded CI machine). */
#define WIDE_BACKSTOP_MS 300
static weft_runtime_t *spinning_rt(unsigned workers)
{
    atomic_store(&weft__backstop_ms, WIDE_BACKSTOP_MS);
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = workers;
    b.detect_blocking = false; /* its tasks spin on purpose */
    b.block_on_runs_tasks = false; /* the spinners must hold the workers, not the test thread */
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    return rt;
}

static void spinning_rt_free(weft_runtime_t *rt)
{
    weft_runtime_free(rt);
    atomic_store(&weft__backstop_ms, WEFT__TIMER_BACKSTOP_MS);
    ASSERT_NO_LIVE();
}

/* A sleep first polled while another thread holds its worker's shard lock
 * (here the task itself holds it, as a firer would) registers in another
 * shard instead of waiting, and still fires there. */
typedef struct {
    WEFT_FRAME;
    weft_sleep_t s;
    unsigned home, got;
} busy_home_t;
WEFT_ASYNC(busy_home_t, busy_home, int)
{
    WEFT_BEGIN();
    {
        weft__driver_t *d = weft__cx_driver();
        self->home = weft__time_shard_here(d);
        weft__time_shard_t *sh = &d->time.shards[self->home];
        pthread_mutex_lock(&sh->lock);
        self->s = weft_sleep_ms(5);
        weft_poll_t p = weft_future_poll(&self->s.future, weft__cx, NULL);
        pthread_mutex_unlock(&sh->lock);
        (void)WEFT_TEST_CHECK(p == WEFT_PENDING);
        self->got = self->s.entry_.shard_;
    }
    WEFT_AWAIT_REF(&self->s, NULL);
    WEFT_RETURN(self->got != self->home ? 0 : 1);
    WEFT_END();
}

START_TEST(sleep_registers_elsewhere_when_its_shard_is_busy)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    busy_home_t bh = { WEFT_FRAME_INIT(busy_home) };
    int rc = -1;
    uint64_t t0 = weft_now_ns();
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&bh), &rc), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_ge(weft_now_ns() - t0, 5u * 1000000u);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(stuck_owner_timers_still_fire)
{
    weft_runtime_t *rt = spinning_rt((unsigned)_i);
    stuck_t st = { WEFT_FRAME_INIT(stuck_owner) };
    uint64_t spun = 0;
    long backstop = atomic_load(&weft__backstop_fires);
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&st), &spun), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_msg(spun != UINT64_MAX, "the sleep never fired while its worker was stuck");
    ck_assert_msg(spun < 2000u * 1000000u, "fired after %llu ms", (unsigned long long)(spun / 1000000u));
    if (_i == 1) /* no other worker: only the backstop could */
        ck_assert_int_gt(atomic_load(&weft__backstop_fires), backstop);
    else /* the idle worker, parked as the driver, fired it */
        ck_assert_int_eq(atomic_load(&weft__backstop_fires), backstop);
    spinning_rt_free(rt);
}
END_TEST

typedef struct {
    WEFT_FRAME;
    uint64_t ms;
    weft_sleep_t s;
} long_nap_t;
WEFT_ASYNC(long_nap_t, long_nap, weft_unit_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->s, weft_sleep_ms(self->ms), NULL);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

/* The parked driver sleeps until the earliest deadline: a later one does
 * not disturb it, an earlier one kicks it awake to wait for that instead. */
START_TEST(parked_driver_kicked_only_for_earlier_deadline)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    weft_join_handle_t ha, hb;
    long_nap_t a = { WEFT_FRAME_INIT(long_nap), .ms = 10000 };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &a, &ha), 0);
    sleep_ms(100); /* a worker parks as the driver, until a's deadline */
    long kicks = atomic_load(&weft__driver_kicks);
    long_nap_t later = { WEFT_FRAME_INIT(long_nap), .ms = 50000 };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &later, &hb), 0);
    sleep_ms(100);
    ck_assert_int_eq(atomic_load(&weft__driver_kicks), kicks);
    uint64_t t0 = weft_now_ns();
    weft_sleep_t soon = weft_sleep_ms(30); /* from this thread: not a worker */
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&soon), NULL), 0);
    uint64_t took = weft_now_ns() - t0;
    ck_assert_int_gt(atomic_load(&weft__driver_kicks), kicks);
    ck_assert_uint_ge(took, 30u * 1000000u);
    ck_assert_uint_lt(took, 2000u * 1000000u);
    weft_join_handle_abort(&ha);
    weft_join_handle_abort(&hb);
    weft_join_handle_drop(&ha);
    weft_join_handle_drop(&hb);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* The driver wakes for one timer and runs its task, which keeps it for
 * 800 ms; another timer falls due meanwhile. The other worker, parked on
 * its futex, must take over the driver role and fire it on time, not leave
 * it to the reactor's backstop (widened to 300 ms, so that without the
 * hand-over it fires while the spin still runs). */
typedef struct {
    WEFT_FRAME;
    uint64_t ms, spin_ms;
    weft_sleep_t s;
} nap_spin_t;
WEFT_ASYNC(nap_spin_t, nap_spin, weft_unit_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->s, weft_sleep_ms(self->ms), NULL);
    for (uint64_t t0 = weft_now_ns(); weft_now_ns() - t0 < self->spin_ms * 1000000u;)
        ;
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(driver_busy_hands_over_for_pending_timers)
{
    weft_runtime_t *rt = spinning_rt(2);
    sleep_ms(50); /* both workers parked: one drives, one on its futex */
    weft_join_handle_t ha, hb;
    nap_spin_t a = { WEFT_FRAME_INIT(nap_spin), .ms = 30, .spin_ms = 800 };
    nap_spin_t later = { WEFT_FRAME_INIT(nap_spin), .ms = 60, .spin_ms = 0 };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &a, &ha), 0);
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &later, &hb), 0);
    long backstop = atomic_load(&weft__backstop_fires);
    ck_assert_int_eq(join_out(rt, &hb, NULL), 0);
    ck_assert_int_eq(atomic_load(&weft__backstop_fires), backstop);
    ck_assert_int_eq(join_out(rt, &ha, NULL), 0);
    spinning_rt_free(rt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timer");
    TCase *tc = tcase_create("wheel");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, wheel_fires_each_timer_once_on_time);
    tcase_add_test(tc, wheel_mock_clock_past_2_pow_36);
    tcase_add_test(tc, wheel_clamps_far_future_and_removes);
    tcase_add_test(tc, wheel_ring_timers_never_cascade);
    tcase_add_test(tc, wheel_far_slot_cascades_early_in_pieces);
    suite_add_tcase(s, tc);
    tc = tcase_create("time");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, sleep_never_ends_early, 0, N_SHAPES);
    tcase_add_loop_test(tc, timer_at_exactly_now_and_in_the_past, 0, N_SHAPES);
    tcase_add_loop_test(tc, timeout_cancels_or_passes_through, 0, N_SHAPES);
    tcase_add_test(tc, interval_missed_tick_policies);
    tcase_add_loop_test(tc, abort_sleepers_while_firing, 0, N_SHAPES);
    tcase_add_test(tc, shutdown_ends_foreign_sleeps);
    tcase_add_loop_test(tc, stuck_owner_timers_still_fire, 1, 3);
    tcase_add_test(tc, sleep_registers_elsewhere_when_its_shard_is_busy);
    tcase_add_test(tc, parked_driver_kicked_only_for_earlier_deadline);
    tcase_add_test(tc, driver_busy_hands_over_for_pending_timers);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
