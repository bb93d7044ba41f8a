/* tests/test_stress_unordered.c - seeded chaos on FuturesUnordered
 * (weft_unordered_t): members woken twice each by two plain threads while
 * a task on 2 workers drains the set (exact completions, no wake lost,
 * late wakes of finished members harmless); wakes racing the set's
 * destruction (every node freed once, by whoever drops the last
 * reference). WEFT_CHAOS_SEED replays one iteration's seed. */
#include "testlib.h"

#define MEMBERS 64

/* A member ready once its flag is set; its waker lives in an atomic
 * waker outside the set, so it outlives the member and the set. */
static _Atomic int flags[MEMBERS];
static weft_atomic_waker_t wakers[MEMBERS];

typedef struct {
    weft_future_t future;
    int id;
} flag_t;
static weft_poll_t flag_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    int id = ((flag_t *)(void *)f)->id;
    weft_atomic_waker_register(&wakers[id], cx->waker);
    if (!atomic_load(&flags[id]))
        return WEFT_PENDING;
    if (out != NULL)
        *(int *)out = id;
    return WEFT_READY;
}
static const weft_future_vtable_t flag_vt = { flag_poll, NULL, NULL, sizeof(flag_t), sizeof(int), "flag" };

static void members_reset(void)
{
    for (int i = 0; i < MEMBERS; i++) {
        atomic_store(&flags[i], 0);
        weft_atomic_waker_init(&wakers[i]);
    }
}
/* Drops the wakers still stored: the last references to finished nodes. */
static void members_release(void)
{
    for (int i = 0; i < MEMBERS; i++)
        weft_atomic_waker_drop(&wakers[i]);
}

static void push_members(weft_unordered_t *set)
{
    for (int i = 0; i < MEMBERS; i++) {
        flag_t m = { { &flag_vt }, i };
        ck_assert_int_eq(weft_unordered_push(set, WEFT_FUTURE(&m), (uintptr_t)i), 0);
    }
}

/* Sets every flag and wakes its member, in an order of its own. */
typedef struct {
    int stride;
} waker_arg_t;
static void *wake_all(void *arg)
{
    int stride = ((waker_arg_t *)arg)->stride;
    for (int k = 0; k < MEMBERS; k++) {
        int id = (k * stride) % MEMBERS;
        atomic_store(&flags[id], 1);
        weft_atomic_waker_wake(&wakers[id]);
    }
    return NULL;
}

/* ---- Draining while two threads wake every member ------------------------ */

typedef struct {
    WEFT_FRAME;
    weft_unordered_t set;
    uintptr_t tag;
    int out, n;
    bool got;
    bool seen[MEMBERS];
    weft_unordered_next_t next;
} drain_t;
static void drain_cleanup(drain_t *self) { weft_unordered_destroy(&self->set); }
WEFT_ASYNC_WITH_DROP(drain_t, drain, int, drain_cleanup)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->next, weft_unordered_next(&self->set, &self->tag, &self->out), &self->got);
        if (!self->got)
            break;
        WEFT_TEST_CHECK_INT_EQ(self->out, (int)self->tag);
        WEFT_TEST_CHECK_MSG(!self->seen[self->out], "member %d finished twice", self->out);
        self->seen[self->out] = true;
        self->n++;
    }
    WEFT_RETURN(self->n);
    WEFT_END();
}

START_TEST(drain_while_two_threads_wake)
{
    int iters = chaos_iters(1000) / 10 + 1;
    uint64_t seed0 = chaos_seed0();
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    for (int it = 0; it < iters; it++) {
        uint64_t seed = seed0 + (uint64_t)it;
        members_reset();
        drain_t d = { WEFT_FRAME_INIT(drain) };
        weft_unordered_init(&d.set);
        push_members(&d.set);
        weft__chaos_set(seed, 20);
        weft_join_handle_t h;
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &d, &h), 0);
        waker_arg_t a1 = { 1 }, a2 = { 37 }; /* 37 is prime to MEMBERS: a second order */
        pthread_t t1, t2;
        pthread_create(&t1, NULL, wake_all, &a1);
        pthread_create(&t2, NULL, wake_all, &a2);
        int n = -1;
        ck_assert_int_eq(join_out(rt, &h, &n), 0);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        weft__chaos_set(0, 0);
        ck_assert_msg(n == MEMBERS, "seed %" PRIu64 ": %d of %d members finished", seed, n, MEMBERS);
        members_release();
        ck_assert_msg(weft__live_count(WEFT_LIVE_UNORDERED) == 0, "seed %" PRIu64 ": %ld set objects alive", seed,
                      weft__live_count(WEFT_LIVE_UNORDERED));
    }
    weft_runtime_free(rt);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Destroying the set while a thread wakes its members --------------------- */

START_TEST(destroy_while_waking)
{
    int iters = chaos_iters(1000);
    uint64_t seed0 = chaos_seed0();
    weft_waker_t noop = weft_waker_noop();
    weft_context_t cx = { &noop };
    for (int it = 0; it < iters; it++) {
        uint64_t seed = seed0 + (uint64_t)it;
        members_reset();
        weft_unordered_t set;
        weft_unordered_init(&set);
        push_members(&set);
        weft__chaos_set(seed, 200);
        /* Every member polled once (registered), then some finish while the
         * thread wakes, and the set is destroyed in the middle. */
        bool got = false;
        weft_unordered_next_t nx = weft_unordered_next(&set, NULL, NULL);
        while (weft_future_poll(WEFT_FUTURE(&nx), &cx, &got) == WEFT_READY && got)
            ;
        waker_arg_t a = { (int)(seed % 2) * 36 + 1 }; /* 1 or 37 */
        pthread_t t;
        pthread_create(&t, NULL, wake_all, &a);
        for (unsigned k = 0; k < seed % 4; k++)
            (void)weft_future_poll(WEFT_FUTURE(&nx), &cx, &got);
        weft_future_drop(WEFT_FUTURE(&nx));
        weft_unordered_destroy(&set);
        pthread_join(t, NULL);
        weft__chaos_set(0, 0);
        members_release();
        ck_assert_msg(weft__live_count(WEFT_LIVE_UNORDERED) == 0, "seed %" PRIu64 ": %ld set objects alive", seed,
                      weft__live_count(WEFT_LIVE_UNORDERED));
    }
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress_unordered");
    TCase *tc = tcase_create("stress_unordered");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, drain_while_two_threads_wake);
    tcase_add_test(tc, destroy_while_waking);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
