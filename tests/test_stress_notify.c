/* tests/test_stress_notify.c - seeded chaos stress of the sync primitives
 * of sync/notify.c and sync/cancel.c (TESTING.md, "Wakers and sync"):
 * notify_one racing waiters' drops (every notification reaches exactly one
 * surviving waiter), notify_waiters racing new waiters (none created after
 * the call is woken by it), and a cancellation tree cancelled while
 * children are created and dropped on other threads and tasks. Suite
 * `stress` only. Each iteration turns chaos on with a new seed; a failure
 * prints the seed, and WEFT_CHAOS_SEED=<seed> WEFT_CHAOS_ITERS=1 replays
 * it. */
#include <sched.h>

#include "testlib.h"

#define CHAOS_PERMILLE 50

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A waker that counts its wakes (the futures here are polled by hand). */
static weft_waker_t count_clone(const void *d);
static void count_wake_by_ref(const void *d)
{
    atomic_fetch_add((_Atomic int *)d, 1);
}
static void count_drop(const void *d)
{
    (void)d;
}
static const weft_waker_vtable_t count_vt = { count_clone, count_wake_by_ref, count_wake_by_ref, count_drop };
static weft_waker_t count_clone(const void *d)
{
    return (weft_waker_t){ &count_vt, d };
}

/* ---- notify_one racing drops --------------------------------------------------
 * W futures are enabled (queued, in order), then one thread sends K
 * notify_one while another drops D of the futures and a third polls the
 * survivors. K <= W - D, so every notification must end with a survivor:
 * a dropped future that was chosen passes it on; the permit stays empty. */
#define W 8
typedef struct {
    weft_notify_t *n;
    weft_notified_t *f;
    bool *dropped; /* which ones the dropper drops (chosen by the seed) */
    int k;
    _Atomic int *wakes;
} one_race_t;

static void *one_notifier(void *arg)
{
    one_race_t *r = arg;
    for (int i = 0; i < r->k; i++)
        weft_notify_notify_one(r->n);
    return NULL;
}
static void *one_dropper(void *arg)
{
    one_race_t *r = arg;
    for (int i = 0; i < W; i++)
        if (r->dropped[i])
            weft_future_drop(WEFT_FUTURE(&r->f[i]));
    return NULL;
}

static void notify_one_vs_drop(uint64_t seed)
{
    weft__chaos_set(seed, CHAOS_PERMILLE);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull | 1;
    weft_notify_t n;
    weft_notify_init(&n);
    weft_notified_t f[W];
    bool dropped[W];
    _Atomic int wakes[W];
    int d = 0;
    for (int i = 0; i < W; i++) {
        f[i] = weft_notify_notified(&n);
        ck_assert(!weft_notify_enable(&f[i]));
        dropped[i] = (xorshift(&x) % 2) == 0 && d < W - 1;
        d += dropped[i];
        atomic_init(&wakes[i], 0);
    }
    /* Half of the survivors also register a waker first. */
    for (int i = 0; i < W; i++) {
        if (!dropped[i] && (xorshift(&x) & 1)) {
            weft_waker_t w = { &count_vt, &wakes[i] };
            weft_context_t cx = { &w };
            ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&f[i]), &cx, NULL), WEFT_PENDING);
        }
    }
    int k = 1 + (int)(xorshift(&x) % (uint64_t)(W - d));
    one_race_t r = { &n, f, dropped, k, wakes };
    pthread_t tn, td;
    pthread_create(&tn, NULL, one_notifier, &r);
    pthread_create(&td, NULL, one_dropper, &r);
    pthread_join(tn, NULL);
    pthread_join(td, NULL);
    int ready = 0;
    for (int i = 0; i < W; i++) {
        if (dropped[i])
            continue;
        weft_waker_t w = weft_waker_noop();
        weft_context_t cx = { &w };
        ready += weft_future_poll(WEFT_FUTURE(&f[i]), &cx, NULL) == WEFT_READY;
        weft_future_drop(WEFT_FUTURE(&f[i]));
    }
    weft_notified_t probe = weft_notify_notified(&n);
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    bool permit = weft_future_poll(WEFT_FUTURE(&probe), &cx, NULL) == WEFT_READY;
    weft_future_drop(WEFT_FUTURE(&probe));
    weft__chaos_set(0, 0);
    ck_assert_msg(ready == k && !permit, "seed %llu: %d notifications, %d survivors of %d completed, permit %d",
                  (unsigned long long)seed, k, ready, W - d, permit);
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}

START_TEST(stress_notify_one_vs_drop)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) * 5;
    for (int i = 0; i < n; i++)
        notify_one_vs_drop(s0 + (uint64_t)i);
}
END_TEST

/* The same race with tasks: W tasks on a runtime enable, then report in
 * and await; a thread aborts D of them while another sends K notify_one.
 * Exactly K tasks complete by notification. */
typedef struct {
    WEFT_FRAME;
    weft_notify_t *n;
    _Atomic int *queued, *woken;
    weft_notified_t f;
} task_waiter_t;
WEFT_ASYNC(task_waiter_t, task_waiter, int)
{
    WEFT_BEGIN();
    self->f = weft_notify_notified(self->n);
    (void)weft_notify_enable(&self->f);
    atomic_fetch_add(self->queued, 1);
    WEFT_AWAIT_REF(&self->f, NULL);
    atomic_fetch_add(self->woken, 1);
    WEFT_RETURN(0);
    WEFT_END();
}

typedef struct {
    weft_join_handle_t *h;
    bool *aborted;
} aborter_t;
static void *task_aborter(void *arg)
{
    aborter_t *a = arg;
    for (int i = 0; i < W; i++)
        if (a->aborted[i])
            weft_join_handle_abort(&a->h[i]);
    return NULL;
}

static void tasks_notify_one_vs_abort(int shape, uint64_t seed)
{
    weft__chaos_set(seed, CHAOS_PERMILLE / 5);
    uint64_t x = seed * 0xBF58476D1CE4E5B9ull | 1;
    weft_runtime_t *rt = shape_rt(shape);
    weft_notify_t n;
    weft_notify_init(&n);
    _Atomic int queued = 0, woken = 0;
    weft_join_handle_t h[W];
    bool aborted[W];
    int d = 0;
    for (int i = 0; i < W; i++) {
        task_waiter_t t = { WEFT_FRAME_INIT(task_waiter), .n = &n, .queued = &queued, .woken = &woken };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t, &h[i]), 0);
        aborted[i] = (xorshift(&x) % 3) == 0 && d < W - 1;
        d += aborted[i];
    }
    /* Every task queued (a current-thread runtime runs them in block_on). */
    for (int spins = 0; atomic_load(&queued) < W; spins++) {
        weft_yield_t y = weft_yield_now();
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&y), NULL), 0);
        if (shape != 0)
            sleep_ms(1);
        ck_assert_msg(spins < 10000, "seed %llu: tasks never queued", (unsigned long long)seed);
    }
    int k = 1 + (int)(xorshift(&x) % (uint64_t)(W - d));
    one_race_t r = { &n, NULL, NULL, k, NULL };
    aborter_t a = { h, aborted };
    pthread_t tn, ta;
    pthread_create(&tn, NULL, one_notifier, &r);
    pthread_create(&ta, NULL, task_aborter, &a);
    pthread_join(tn, NULL);
    pthread_join(ta, NULL);
    /* Join the aborted ones (cancelled, or done if notified before the
     * abort landed); then wait for k completions in all. */
    for (int i = 0; i < W; i++) {
        if (!aborted[i])
            continue;
        int rc = -1;
        ck_assert_int_eq(weft_runtime_block_on(rt, weft_join(&h[i], NULL), &rc), 0);
        ck_assert(rc == 0 || rc == WEFT_ECANCELED);
    }
    for (int spins = 0; atomic_load(&woken) < k && spins < 20000; spins++) {
        weft_yield_t y = weft_yield_now();
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&y), NULL), 0);
        if (shape != 0 && spins > 100)
            sleep_ms(1);
    }
    weft__chaos_set(0, 0);
    int got = atomic_load(&woken);
    /* Nothing more is coming: the rest wait forever and the permit is
     * empty (a notification lost to a dropped task would show as got < k,
     * one duplicated as got > k or a permit). */
    weft_notified_t probe = weft_notify_notified(&n);
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    bool permit = weft_future_poll(WEFT_FUTURE(&probe), &cx, NULL) == WEFT_READY;
    weft_future_drop(WEFT_FUTURE(&probe));
    ck_assert_msg(got == k && !permit, "seed %llu shape %d: %d notifications, %d tasks woken, permit %d",
                  (unsigned long long)seed, shape, k, got, permit);
    for (int i = 0; i < W; i++)
        if (!aborted[i])
            weft_join_handle_drop(&h[i]);
    weft_runtime_free(rt); /* drops the tasks still waiting: they leave the list */
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}

START_TEST(stress_tasks_notify_one_vs_abort)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) / 4 + 1;
    for (int i = 0; i < n; i++)
        tasks_notify_one_vs_abort(_i, s0 + (uint64_t)i);
}
END_TEST

/* ---- notify_waiters racing new waiters ----------------------------------------
 * E futures exist (created, enabled or polled) before the call; a thread
 * makes L more while another calls notify_waiters. Every early future is
 * woken; a future whose maker saw the call return before creating it is
 * not (no one else notifies). */
#define E 40 /* more than one wake batch of 32 */
#define L 40
typedef struct {
    weft_notify_t *n;
    weft_notified_t late[L];
    bool after[L]; /* created after notify_waiters returned */
    bool done[L];  /* completed in late_maker (enable said so, or the poll) */
    _Atomic int returned;
    uint64_t seed;
} waiters_race_t;

static void *waiters_caller(void *arg)
{
    waiters_race_t *r = arg;
    weft_notify_notify_waiters(r->n);
    atomic_store(&r->returned, 1);
    return NULL;
}
static void *late_maker(void *arg)
{
    waiters_race_t *r = arg;
    uint64_t x = r->seed | 1;
    for (int i = 0; i < L; i++) {
        r->after[i] = atomic_load(&r->returned) != 0;
        r->late[i] = weft_notify_notified(r->n);
        if (xorshift(&x) & 1) {
            r->done[i] = weft_notify_enable(&r->late[i]);
        } else {
            weft_waker_t w = weft_waker_noop();
            weft_context_t cx = { &w };
            r->done[i] = weft_future_poll(WEFT_FUTURE(&r->late[i]), &cx, NULL) == WEFT_READY;
        }
        WEFT_CHAOS();
    }
    return NULL;
}

static void waiters_vs_new(uint64_t seed)
{
    weft__chaos_set(seed, CHAOS_PERMILLE);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull | 1;
    weft_notify_t n;
    weft_notify_init(&n);
    static weft_notified_t early[E];
    static _Atomic int wakes[E];
    static waiters_race_t r;
    memset(&r, 0, sizeof r);
    r.n = &n;
    r.seed = seed;
    for (int i = 0; i < E; i++) {
        early[i] = weft_notify_notified(&n);
        atomic_store(&wakes[i], 0);
        uint64_t how = xorshift(&x) % 3;
        if (how == 1) {
            (void)weft_notify_enable(&early[i]);
        } else if (how == 2) {
            weft_waker_t w = { &count_vt, &wakes[i] };
            weft_context_t cx = { &w };
            ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&early[i]), &cx, NULL), WEFT_PENDING);
        }
    }
    pthread_t tc, tm;
    pthread_create(&tm, NULL, late_maker, &r);
    pthread_create(&tc, NULL, waiters_caller, &r);
    pthread_join(tc, NULL);
    pthread_join(tm, NULL);
    weft__chaos_set(0, 0);
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    int early_ready = 0, late_after = 0;
    for (int i = 0; i < E; i++) {
        early_ready += weft_future_poll(WEFT_FUTURE(&early[i]), &cx, NULL) == WEFT_READY;
        weft_future_drop(WEFT_FUTURE(&early[i]));
    }
    for (int i = 0; i < L; i++) {
        if (r.after[i]) {
            late_after++;
            ck_assert_msg(!r.done[i] && weft_future_poll(WEFT_FUTURE(&r.late[i]), &cx, NULL) == WEFT_PENDING,
                          "seed %llu: future %d, made after notify_waiters returned, was woken by it",
                          (unsigned long long)seed, i);
        }
        /* Made before or during the call: woken or not, both are correct. */
        weft_future_drop(WEFT_FUTURE(&r.late[i]));
    }
    (void)late_after;
    ck_assert_msg(early_ready == E, "seed %llu: %d of %d early futures woken", (unsigned long long)seed,
                  early_ready, E);
    weft_notify_destroy(&n);
    ASSERT_NO_LIVE();
}

START_TEST(stress_notify_waiters_vs_new_waiters)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) * 2;
    for (int i = 0; i < n; i++)
        waiters_vs_new(s0 + (uint64_t)i);
}
END_TEST

/* ---- A cancellation tree cancelled while it grows and shrinks -----------------
 * Two threads and four tasks (on a runtime of each shape) create children
 * and grandchildren of a root, queue cancelled futures on them and release
 * them, while a third thread cancels the root. Checks: a child created
 * after cancel returned is born cancelled; every future whose poll returned
 * pending was woken; every future completes in the end; nothing leaks. */
#define SLOTS 4
typedef struct {
    weft_cancel_token_t *root, *mids[2];
    _Atomic int done; /* set after cancel(root) returned */
    uint64_t seed;
} tree_race_t;

typedef struct {
    weft_cancel_token_t *t;
    weft_cancelled_t f;
    _Atomic int wakes;
    bool pending;
} slot_t;

static weft_cancel_token_t *pick_parent(tree_race_t *r, uint64_t *x)
{
    uint64_t k = xorshift(x) % 3;
    return k == 0 ? r->root : r->mids[k - 1];
}

static void slot_free(slot_t *s)
{
    if (s->t == NULL)
        return;
    weft_future_drop(WEFT_FUTURE(&s->f));
    weft_cancel_token_release(s->t);
    s->t = NULL;
}

static void *tree_worker(void *arg)
{
    tree_race_t *r = arg;
    uint64_t x = (r->seed ^ (uint64_t)(uintptr_t)pthread_self()) | 1;
    slot_t slots[SLOTS];
    memset(slots, 0, sizeof slots);
    int extra = 0;
    for (int i = 0; i < 2000 && extra < 20; i++) {
        bool after = atomic_load(&r->done) != 0;
        extra += after;
        slot_t *s = &slots[xorshift(&x) % SLOTS];
        slot_free(s);
        weft_cancel_token_t *parent = pick_parent(r, &x), *c;
        if (!WEFT_TEST_CHECK_INT_EQ(weft_cancel_token_child(parent, &c), 0))
            break;
        if (xorshift(&x) & 1) { /* a grandchild, through a child released at once */
            weft_cancel_token_t *g;
            if (!WEFT_TEST_CHECK_INT_EQ(weft_cancel_token_child(c, &g), 0))
                break;
            weft_cancel_token_release(c);
            c = g;
        }
        WEFT_TEST_CHECK_MSG(!after || weft_cancel_token_is_cancelled(c),
                            "seed %llu: a child made after cancel returned is not cancelled",
                            (unsigned long long)r->seed);
        s->t = c;
        s->f = weft_cancel_token_cancelled(c);
        atomic_store(&s->wakes, 0);
        weft_waker_t w = { &count_vt, &s->wakes };
        weft_context_t cx = { &w };
        s->pending = weft_future_poll(WEFT_FUTURE(&s->f), &cx, NULL) == WEFT_PENDING;
        if (!s->pending)
            slot_free(s); /* completed: must not be polled again */
        WEFT_CHAOS();
    }
    while (!atomic_load(&r->done))
        sched_yield();
    for (int j = 0; j < SLOTS; j++) {
        slot_t *s = &slots[j];
        if (s->t == NULL)
            continue;
        WEFT_TEST_CHECK_MSG(atomic_load(&s->wakes) >= 1, "seed %llu: a pending cancelled future was not woken",
                            (unsigned long long)r->seed);
        weft_waker_t w = weft_waker_noop();
        weft_context_t cx = { &w };
        WEFT_TEST_CHECK(weft_future_poll(WEFT_FUTURE(&s->f), &cx, NULL) == WEFT_READY);
        slot_free(s);
    }
    return NULL;
}

typedef struct {
    WEFT_FRAME;
    tree_race_t *r;
    int i;
    weft_cancel_token_t *c;
    weft_cancelled_t f;
    weft_yield_t y;
} tree_task_t;
WEFT_ASYNC(tree_task_t, tree_task, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 20; self->i++) {
        if (!WEFT_TEST_CHECK_INT_EQ(weft_cancel_token_child(self->r->root, &self->c), 0))
            WEFT_RETURN(-1);
        WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
        weft_cancel_token_release(self->c);
    }
    if (!WEFT_TEST_CHECK_INT_EQ(weft_cancel_token_child(self->r->mids[0], &self->c), 0))
        WEFT_RETURN(-1);
    WEFT_AWAIT(&self->f, weft_cancel_token_cancelled(self->c), NULL);
    weft_cancel_token_release(self->c);
    WEFT_RETURN(0);
    WEFT_END();
}

static void *tree_canceller(void *arg)
{
    tree_race_t *r = arg;
    for (uint64_t i = 0; i < r->seed % 50; i++)
        sched_yield();
    weft_cancel_token_cancel(r->root);
    atomic_store(&r->done, 1);
    return NULL;
}

static void tree_race(int shape, uint64_t seed)
{
    weft__chaos_set(seed, CHAOS_PERMILLE / 5);
    weft_runtime_t *rt = shape_rt(shape);
    tree_race_t r;
    memset(&r, 0, sizeof r);
    r.seed = seed;
    ck_assert_int_eq(weft_cancel_token_new(&r.root), 0);
    ck_assert_int_eq(weft_cancel_token_child(r.root, &r.mids[0]), 0);
    ck_assert_int_eq(weft_cancel_token_child(r.root, &r.mids[1]), 0);
    enum { TASKS = 4 };
    weft_join_handle_t h[TASKS];
    for (int i = 0; i < TASKS; i++) {
        tree_task_t t = { WEFT_FRAME_INIT(tree_task), .r = &r };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t, &h[i]), 0);
    }
    pthread_t t1, t2, tc;
    pthread_create(&t1, NULL, tree_worker, &r);
    pthread_create(&t2, NULL, tree_worker, &r);
    pthread_create(&tc, NULL, tree_canceller, &r);
    for (int i = 0; i < TASKS; i++) {
        int out = -1;
        ck_assert_int_eq(join_out(rt, &h[i], &out), 0); /* on current-thread, this runs them */
        ck_assert_int_eq(out, 0);
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_join(tc, NULL);
    weft_runtime_free(rt);
    weft__chaos_set(0, 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_msg(weft__cancel_token_children(r.root) == 2, "seed %llu: root lists %zu children",
                  (unsigned long long)seed, weft__cancel_token_children(r.root));
    ck_assert_int_eq(weft__live_count(WEFT_LIVE_CANCEL_TOKEN), 3);
    weft_cancel_token_release(r.mids[0]);
    weft_cancel_token_release(r.mids[1]);
    weft_cancel_token_release(r.root);
    ASSERT_NO_LIVE();
}

START_TEST(stress_cancel_tree_while_growing)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) / 4 + 1;
    for (int i = 0; i < n; i++)
        tree_race(_i, s0 + (uint64_t)i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress_notify");
    TCase *tc = tcase_create("notify");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, stress_notify_one_vs_drop);
    tcase_add_loop_test(tc, stress_tasks_notify_one_vs_abort, 0, N_SHAPES);
    tcase_add_test(tc, stress_notify_waiters_vs_new_waiters);
    suite_add_tcase(s, tc);
    tc = tcase_create("cancel");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, stress_cancel_tree_while_growing, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
