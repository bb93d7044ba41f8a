/* tests/test_stress.c - seeded chaos stress of the whole runtime (the
 * TESTING.md scenarios for wakers, join handles and shutdown): foreign
 * threads waking and aborting tasks, shutdown under foreign wakes, a
 * destructor waking a sibling at shutdown, a spawn tree with exact counts,
 * allocation failure at every k, and freeing a runtime while another
 * runtime's task is hammered with wakes. Suite `stress` only (not `unit`).
 * Each iteration turns chaos on with a new seed; a failure prints the seed,
 * and WEFT_CHAOS_SEED=<seed> WEFT_CHAOS_ITERS=1 replays it. */
#include "testlib.h"

#define CHAOS_PERMILLE 30

/* ---- A parked task whose waker foreign threads fire at random ------------- */
typedef struct {
    pthread_mutex_t mu;
    weft_waker_t w; /* under mu */
    _Atomic int polls, drops, done;
    int target_polls;
} slot_t;

typedef struct {
    weft_future_t future;
    slot_t *s;
} waiter_t;

static weft_poll_t waiter_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)out;
    slot_t *s = ((waiter_t *)(void *)f)->s;
    if (++s->polls >= s->target_polls) {
        s->done = 1;
        return WEFT_READY;
    }
    pthread_mutex_lock(&s->mu);
    weft_waker_drop(&s->w);
    s->w = weft_waker_clone(cx->waker);
    pthread_mutex_unlock(&s->mu);
    return WEFT_PENDING;
}
static void waiter_drop(weft_future_t *f)
{
    ((waiter_t *)(void *)f)->s->drops++;
}
static const weft_future_vtable_t waiter_vt = { waiter_poll, waiter_drop, NULL, sizeof(waiter_t), 0, "waiter" };

static void slot_wake(slot_t *s, bool by_val)
{
    pthread_mutex_lock(&s->mu);
    weft_waker_t w = { NULL, NULL };
    if (s->w.vtable)
        w = by_val ? s->w : weft_waker_clone(&s->w);
    if (by_val)
        s->w = (weft_waker_t){ NULL, NULL };
    pthread_mutex_unlock(&s->mu);
    if (w.vtable)
        weft_waker_wake(&w);
}

#define NSLOTS 64
typedef struct {
    slot_t *slots;
    weft_join_handle_t *handles;
    _Atomic int *stop;
    uint64_t seed;
    bool aborter;
} storm_t;

static void *storm_main(void *arg)
{
    storm_t *st = arg;
    uint64_t x = st->seed | 1;
    while (!atomic_load(st->stop)) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int i = (int)(x % NSLOTS);
        /* Only odd handles are aborted: the main thread awaits (consumes)
         * the even ones, and a handle is not shared between threads. */
        if (st->aborter && (x >> 32) % 7 == 0 && (i & 1))
            weft_join_handle_abort(&st->handles[i]); /* odd handles live until the storm stops */
        else
            slot_wake(&st->slots[i], (x >> 40) & 1);
    }
    return NULL;
}

/* NSLOTS waiter tasks on rt; `forever` ones never finish by themselves,
 * the others after 1-5 polls. */
static slot_t *spawn_slots(weft_runtime_t *rt, uint64_t seed, bool forever, weft_join_handle_t **hs_out)
{
    slot_t *slots = calloc(NSLOTS, sizeof *slots);
    weft_join_handle_t *hs = calloc(NSLOTS, sizeof *hs);
    for (int i = 0; i < NSLOTS; i++) {
        pthread_mutex_init(&slots[i].mu, NULL);
        slots[i].target_polls = forever ? 1000000 : 1 + (int)((seed + (uint64_t)i) % 5);
        waiter_t w = { { &waiter_vt }, &slots[i] };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &w, &hs[i]), 0);
    }
    *hs_out = hs;
    return slots;
}

/* After the runtime is freed: every future was dropped exactly once. */
static void check_and_free_slots(slot_t *slots, weft_join_handle_t *hs, uint64_t seed)
{
    for (int i = 0; i < NSLOTS; i++) {
        ck_assert_msg(slots[i].drops == 1, "seed %llu: future %d dropped %d times", (unsigned long long)seed, i,
                      slots[i].drops);
        weft_waker_drop(&slots[i].w);
        pthread_mutex_destroy(&slots[i].mu);
    }
    free(slots);
    free(hs);
    weft__chaos_set(0, 0);
    ck_assert_msg(weft__live_count(WEFT_LIVE_TASK) == 0, "seed %llu: %ld tasks leaked", (unsigned long long)seed,
                  weft__live_count(WEFT_LIVE_TASK));
    ASSERT_NO_LIVE();
}

/* Foreign threads wake and abort tasks while they run, complete and are
 * dropped; every future is dropped exactly once and every object freed. */
static void wake_abort_storm(int shape, uint64_t seed)
{
    weft__chaos_set(seed, CHAOS_PERMILLE);
    weft_runtime_t *rt = shape_rt(shape);
    weft_join_handle_t *hs;
    slot_t *slots = spawn_slots(rt, seed, false, &hs);
    _Atomic int stop = 0;
    storm_t a = { slots, hs, &stop, seed * 7 + 1, false }, b = { slots, hs, &stop, seed * 13 + 5, true };
    pthread_t ta, tb;
    pthread_create(&ta, NULL, storm_main, &a);
    pthread_create(&tb, NULL, storm_main, &b);
    /* Let the storm meet running tasks: current-thread tasks only run
     * inside block_on, so drive it through a few yields; the workers of the
     * other shapes run them meanwhile. */
    if (shape == 0) {
        for (int k = 0; k < 20; k++) {
            weft_yield_t y = weft_yield_now();
            ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&y), NULL), 0);
        }
    } else {
        sleep_ms(2);
    }
    /* Await half the handles (result: done or cancelled), drop the rest
     * while the storm goes on. The same block_on on every shape: on
     * current-thread it is also what runs the tasks meanwhile. */
    for (int i = 0; i < NSLOTS; i += 2) {
        int rc = -1;
        ck_assert_int_eq(weft_runtime_block_on(rt, weft_join(&hs[i], NULL), &rc), 0);
        ck_assert_msg(rc == 0 || rc == WEFT_ECANCELED, "seed %llu: join rc %d", (unsigned long long)seed, rc);
        ck_assert_msg(rc != 0 || slots[i].done, "seed %llu: success without completion", (unsigned long long)seed);
    }
    atomic_store(&stop, 1);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    for (int i = 1; i < NSLOTS; i += 2)
        weft_join_handle_drop(&hs[i]);
    weft_runtime_free(rt);
    check_and_free_slots(slots, hs, seed); /* drops the wakers the slots hold, then counts */
}

START_TEST(stress_wake_abort_storm)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) / 4 + 1;
    for (int i = 0; i < n; i++)
        wake_abort_storm(_i, s0 + (uint64_t)i);
}
END_TEST

/* ---- Shutdown while foreign threads keep waking ------------------------------ */
static void shutdown_under_wakes(int shape, uint64_t seed)
{
    weft__chaos_set(seed, CHAOS_PERMILLE);
    weft_runtime_t *rt = shape_rt(shape);
    weft_join_handle_t *hs;
    slot_t *slots = spawn_slots(rt, seed, true, &hs);
    _Atomic int stop = 0;
    storm_t a = { slots, hs, &stop, seed * 3 + 1, false };
    pthread_t ta;
    pthread_create(&ta, NULL, storm_main, &a);
    if (shape != 0)
        sleep_ms(1);
    weft_runtime_free(rt); /* while the storm goes on */
    /* Handles outlive the runtime: they report cancellation. */
    for (int i = 0; i < NSLOTS; i++) {
        ck_assert(weft_join_handle_is_finished(&hs[i]));
        weft_join_handle_abort(&hs[i]); /* no effect, no crash */
    }
    atomic_store(&stop, 1);
    pthread_join(ta, NULL);
    for (int i = 0; i < NSLOTS; i++)
        weft_join_handle_drop(&hs[i]);
    check_and_free_slots(slots, hs, seed);
}

START_TEST(stress_shutdown_under_foreign_wakes)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) / 4 + 1;
    for (int i = 0; i < n; i++)
        shutdown_under_wakes(_i, s0 + (uint64_t)i);
}
END_TEST

/* ---- A destructor that wakes a sibling during shutdown ----------------------- */
static slot_t sibling;
typedef struct {
    WEFT_FRAME;
    weft_pending_t p;
} waker_on_drop_t;
static void wake_sibling(waker_on_drop_t *w)
{
    (void)w;
    slot_wake(&sibling, false); /* the sibling's runtime is shutting down */
}
WEFT_ASYNC_WITH_DROP(waker_on_drop_t, waker_on_drop, weft_unit_t, wake_sibling)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->p, weft_pending(), NULL);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(stress_destructor_wakes_sibling)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) / 4 + 1;
    for (int i = 0; i < n; i++) {
        weft__chaos_set(s0 + (uint64_t)i, CHAOS_PERMILLE);
        memset(&sibling, 0, sizeof sibling);
        pthread_mutex_init(&sibling.mu, NULL);
        sibling.target_polls = 1000000;
        weft_runtime_t *rt = shape_rt(_i);
        waiter_t w = { { &waiter_vt }, &sibling };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &w, NULL), 0);
        for (int k = 0; k < 8; k++) {
            waker_on_drop_t d = { WEFT_FRAME_INIT(waker_on_drop) };
            ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &d, NULL), 0);
        }
        if (_i != 0)
            sleep_ms(1);
        weft_runtime_free(rt); /* must not deadlock */
        ck_assert_int_eq(sibling.drops, 1);
        weft_waker_drop(&sibling.w);
        pthread_mutex_destroy(&sibling.mu);
        weft__chaos_set(0, 0);
        ASSERT_NO_LIVE();
    }
}
END_TEST

/* ---- Spawn storms with exact counts ----------------------------------------------- */
static _Atomic long ran;
typedef struct {
    weft_future_t future;
    int depth;
} fan_t;
static const weft_future_vtable_t fan_vt;
static weft_poll_t fan_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx, (void)out;
    fan_t *t = (fan_t *)(void *)f;
    ran++;
    for (int i = 0; i < 3 && t->depth > 0; i++) {
        fan_t c = { { &fan_vt }, t->depth - 1 };
        (void)WEFT_TEST_CHECK_INT_EQ(weft_spawn(&c, NULL), 0);
    }
    return WEFT_READY;
}
static const weft_future_vtable_t fan_vt = { fan_poll, NULL, NULL, sizeof(fan_t), 0, "fan" };

typedef struct {
    WEFT_FRAME;
} waitall_t;
WEFT_ASYNC(waitall_t, waitall, weft_unit_t)
{
    WEFT_BEGIN();
    /* 1 + 3 + 9 + ... + 3^7, unless a failed spawn means it never gets there */
    while (ran < 3280 && !weft_test_failed())
        WEFT_YIELD();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(stress_spawn_tree_exact_count)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) / 8 + 1;
    for (int i = 0; i < n; i++) {
        weft__chaos_set(s0 + (uint64_t)i, CHAOS_PERMILLE);
        ran = 0;
        weft_runtime_t *rt = shape_rt(_i);
        fan_t root = { { &fan_vt }, 7 };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &root, NULL), 0);
        waitall_t w = { WEFT_FRAME_INIT(waitall) };
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&w), NULL), 0);
        ASSERT_NO_TEST_FAIL();
        ck_assert_int_eq(ran, 3280);
        weft_runtime_free(rt);
        ck_assert_int_eq(ran, 3280); /* nothing ran twice */
        weft__chaos_set(0, 0);
        ASSERT_NO_LIVE();
    }
}
END_TEST

/* ---- Allocation failure at every k ----------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    int i, rc, spawned;
    weft_join_handle_t hs[4];
    weft_oneshot_tx_t tx;
    weft_oneshot_rx_t rx;
    long v;
} allocs_t;
WEFT_ASYNC(allocs_t, allocs_fn, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 4; self->i++) {
        weft_ready_t r = weft_ready(self->i);
        int rc = weft_spawn(&r, &self->hs[self->i]);
        if (rc == 0)
            self->spawned |= 1 << self->i;
        else
            (void)WEFT_TEST_CHECK_INT_EQ(rc, WEFT_ENOMEM);
    }
    for (self->i = 0; self->i < 4; self->i++) {
        if (self->spawned & (1 << self->i)) {
            WEFT_AWAIT_REF(weft_join(&self->hs[self->i], &self->v), &self->rc);
            (void)WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
            (void)WEFT_TEST_CHECK_INT_EQ(self->v, self->i);
        }
    }
    self->rc = weft_oneshot_new(sizeof(long), NULL, &self->tx, &self->rx);
    if (self->rc == 0) {
        self->v = 9;
        /* (a failed send consumes the sender: the recv below then ends) */
        (void)WEFT_TEST_CHECK_INT_EQ(weft_oneshot_send(&self->tx, &self->v), 0);
        WEFT_AWAIT_REF(weft_oneshot_recv(&self->rx, &self->v), &self->rc);
        (void)WEFT_TEST_CHECK_INT_EQ(self->v, 9);
    } else {
        (void)WEFT_TEST_CHECK_INT_EQ(self->rc, WEFT_ENOMEM);
    }
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(stress_alloc_failure_every_k)
{
    long base = weft__alloc_count();
    {
        /* Count the allocations of one clean run. */
        weft_runtime_t *rt = shape_rt(_i);
        allocs_t a = { WEFT_FRAME_INIT(allocs_fn) };
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&a), NULL), 0);
        weft_runtime_free(rt);
        ASSERT_NO_TEST_FAIL();
    }
    long total = weft__alloc_count() - base;
    ck_assert_int_gt(total, 5);
    for (long k = 1; k <= total + 1; k++) {
        weft_builder_t b;
        weft_builder_init(&b, _i == 0 ? WEFT_RUNTIME_CURRENT_THREAD : WEFT_RUNTIME_MULTI_THREAD);
        b.workers = (unsigned)_i;
        weft_runtime_t *rt = NULL;
        weft__alloc_fail_after(k);
        int rc = weft_runtime_new(&b, &rt);
        if (rc == 0) {
            allocs_t a = { WEFT_FRAME_INIT(allocs_fn) };
            rc = weft_runtime_block_on(rt, WEFT_FUTURE(&a), NULL);
            ck_assert(rc == 0 || rc == WEFT_ENOMEM);
            weft_runtime_free(rt);
            ASSERT_NO_TEST_FAIL();
        } else {
            ck_assert_int_eq(rc, WEFT_ENOMEM);
        }
        weft__alloc_fail_after(-1);
        ck_assert_msg(weft__live_count(WEFT_LIVE_TASK) == 0, "k=%ld: task leaked", k);
        ASSERT_NO_LIVE();
    }
}
END_TEST

/* Freeing a runtime waits only for wakes that were under way when it
 * began: threads hammering a task of ANOTHER runtime must not hold it up. */
static _Atomic int hammer_stop;
static slot_t hammer_slot;
static void *hammer_main(void *arg)
{
    (void)arg;
    while (!hammer_stop)
        slot_wake(&hammer_slot, false);
    return NULL;
}

START_TEST(free_ignores_wakes_of_other_runtimes)
{
    memset(&hammer_slot, 0, sizeof hammer_slot);
    pthread_mutex_init(&hammer_slot.mu, NULL);
    hammer_slot.target_polls = 1 << 30;
    weft_runtime_t *b = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
    waiter_t w = { { &waiter_vt }, &hammer_slot };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(b), &w, NULL), 0);
    while (hammer_slot.polls == 0)
        sleep_ms(1);
    hammer_stop = 0;
    pthread_t th[6];
    for (int i = 0; i < 6; i++)
        pthread_create(&th[i], NULL, hammer_main, NULL);
    for (int k = 0; k < 20; k++) {
        weft_runtime_t *a = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
        uint64_t t0 = weft_now_ns();
        weft_runtime_free(a);
        ck_assert_msg(weft_now_ns() - t0 < 2000000000u, "free took %llu ms",
                      (unsigned long long)((weft_now_ns() - t0) / 1000000u));
    }
    hammer_stop = 1;
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    weft_runtime_free(b);
    weft_waker_drop(&hammer_slot.w);
    pthread_mutex_destroy(&hammer_slot.mu);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("chaos");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, stress_wake_abort_storm, 0, N_SHAPES);
    tcase_add_loop_test(tc, stress_shutdown_under_foreign_wakes, 0, N_SHAPES);
    tcase_add_loop_test(tc, stress_destructor_wakes_sibling, 0, N_SHAPES);
    tcase_add_loop_test(tc, stress_spawn_tree_exact_count, 0, N_SHAPES);
    tcase_add_loop_test(tc, stress_alloc_failure_every_k, 0, N_SHAPES);
    tcase_add_test(tc, free_ignores_wakes_of_other_runtimes);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
