/* tests/test_barrier.c - the barrier: init bounds, one leader per
 * generation, reuse across generations with no mixing, n = 1, a release
 * larger than one wake batch, waker replacement, a NULL output, the
 * cancellation rules (a wait dropped before its release withdraws its
 * arrival; one dropped after it changes nothing), misuse aborts, the coop
 * budget, and tasks on every runtime shape (with aborts and shutdown). */
#include "../sync/waiters.h"
#include "locktest.h"

/* Waits queued on b now (white-box: under the barrier's lock). */
static size_t arrived(weft_barrier_t *b)
{
    weft__waitlock_lock(&b->lock_);
    size_t n = b->arrived_;
    weft__waitlock_unlock(&b->lock_);
    return n;
}

START_TEST(init_and_bounds)
{
    weft_barrier_t b;
    ck_assert_int_eq(weft_barrier_init(&b, 0), WEFT_EINVAL);
    ck_assert_int_eq(weft_barrier_init(&b, 3), 0);
    ck_assert_uint_eq(weft_barrier_size(&b), 3);
    /* Constructed and dropped unpolled: no arrival. */
    weft_barrier_wait_t w = weft_barrier_wait(&b);
    weft_future_drop(WEFT_FUTURE(&w));
    ck_assert_uint_eq(arrived(&b), 0);
    weft_barrier_destroy(&b);
    ASSERT_NO_LIVE();
}
END_TEST

/* n waits: the n-th is the leader and completes at once; the others are
 * woken once each and complete with false. The next group starts clean. */
START_TEST(leader_once_per_generation)
{
    enum { N = 3, GENS = 4 };
    weft_barrier_t b;
    ck_assert_int_eq(weft_barrier_init(&b, N), 0);
    for (int g = 0; g < GENS; g++) {
        hand_t h[N];
        weft_barrier_wait_t w[N];
        bool out[N];
        for (int i = 0; i < N; i++) {
            hand_init(&h[i]);
            w[i] = weft_barrier_wait(&b);
            out[i] = (i % 2) == 0; /* poisoned: must be overwritten */
        }
        for (int i = 0; i < N - 1; i++) {
            ck_assert_int_eq(hand_poll(&h[i], &w[i], &out[i]), WEFT_PENDING);
            ck_assert_int_eq(hand_poll(&h[i], &w[i], &out[i]), WEFT_PENDING); /* re-poll: same waker kept */
            ck_assert_uint_eq(arrived(&b), (size_t)i + 1);
        }
        for (int i = 0; i < N - 1; i++)
            ck_assert_int_eq(h[i].c.wakes, 0);
        ck_assert_int_eq(hand_poll(&h[N - 1], &w[N - 1], &out[N - 1]), WEFT_READY);
        ck_assert(out[N - 1]);
        ck_assert_int_eq(h[N - 1].c.clones, 0); /* the leader never waited */
        ck_assert_uint_eq(arrived(&b), 0);
        for (int i = 0; i < N - 1; i++) {
            ck_assert_int_eq(h[i].c.wakes, 1);
            ck_assert_int_eq(hand_poll(&h[i], &w[i], &out[i]), WEFT_READY);
            ck_assert(!out[i]);
        }
        for (int i = 0; i < N; i++) {
            weft_future_drop(WEFT_FUTURE(&w[i]));
            ASSERT_HAND_BALANCED(&h[i]);
            ck_assert_int_eq(h[i].c.clones, i < N - 1 ? 1 : 0);
        }
    }
    weft_barrier_destroy(&b);
    ASSERT_NO_LIVE();
}
END_TEST

/* Group k+1 arrives before group k's waits have seen their release: the
 * old waits are not counted again, the new ones are not released by it. */
START_TEST(generations_do_not_mix)
{
    weft_barrier_t b;
    ck_assert_int_eq(weft_barrier_init(&b, 2), 0);
    hand_t h[4];
    weft_barrier_wait_t w[4];
    bool out[4];
    for (int i = 0; i < 4; i++) {
        hand_init(&h[i]);
        w[i] = weft_barrier_wait(&b);
    }
    ck_assert_int_eq(hand_poll(&h[0], &w[0], &out[0]), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h[1], &w[1], &out[1]), WEFT_READY); /* gen 0 released */
    ck_assert(out[1]);
    ck_assert_int_eq(hand_poll(&h[2], &w[2], &out[2]), WEFT_PENDING); /* gen 1, w[0] unseen */
    ck_assert_uint_eq(arrived(&b), 1);
    ck_assert_int_eq(h[2].c.wakes, 0);
    ck_assert_int_eq(hand_poll(&h[0], &w[0], &out[0]), WEFT_READY);
    ck_assert(!out[0]);
    ck_assert_int_eq(hand_poll(&h[2], &w[2], &out[2]), WEFT_PENDING); /* still waits for its peer */
    ck_assert_int_eq(hand_poll(&h[3], &w[3], &out[3]), WEFT_READY);
    ck_assert(out[3]);
    ck_assert_int_eq(hand_poll(&h[2], &w[2], &out[2]), WEFT_READY);
    ck_assert(!out[2]);
    for (int i = 0; i < 4; i++) {
        weft_future_drop(WEFT_FUTURE(&w[i]));
        ASSERT_HAND_BALANCED(&h[i]);
    }
    weft_barrier_destroy(&b);
    ASSERT_NO_LIVE();
}
END_TEST

/* n = 1: every wait is its own group's leader, at once. */
START_TEST(group_of_one)
{
    weft_barrier_t b;
    ck_assert_int_eq(weft_barrier_init(&b, 1), 0);
    hand_t h;
    hand_init(&h);
    for (int i = 0; i < 5; i++) {
        bool out = false;
        weft_barrier_wait_t w = weft_barrier_wait(&b);
        ck_assert_int_eq(hand_poll(&h, &w, &out), WEFT_READY);
        ck_assert(out);
        weft_future_drop(WEFT_FUTURE(&w));
    }
    ck_assert_int_eq(h.c.clones, 0);
    weft_barrier_destroy(&b);
    ASSERT_NO_LIVE();
}
END_TEST

/* More waits than one wake batch (32): the leader wakes them all. A NULL
 * output still arrives and waits. */
START_TEST(release_larger_than_a_batch)
{
    enum { N = 75 };
    weft_barrier_t b;
    ck_assert_int_eq(weft_barrier_init(&b, N), 0);
    static hand_t h[N];
    static weft_barrier_wait_t w[N];
    for (int i = 0; i < N; i++) {
        hand_init(&h[i]);
        w[i] = weft_barrier_wait(&b);
    }
    for (int i = 0; i < N - 1; i++)
        ck_assert_int_eq(hand_poll(&h[i], &w[i], NULL), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h[N - 1], &w[N - 1], NULL), WEFT_READY);
    for (int i = 0; i < N - 1; i++) {
        ck_assert_int_eq(h[i].c.wakes, 1);
        ck_assert_int_eq(hand_poll(&h[i], &w[i], NULL), WEFT_READY);
    }
    for (int i = 0; i < N; i++) {
        weft_future_drop(WEFT_FUTURE(&w[i]));
        ASSERT_HAND_BALANCED(&h[i]);
    }
    weft_barrier_destroy(&b);
    ASSERT_NO_LIVE();
}
END_TEST

/* A re-poll from another task replaces the waker; the old one is dropped
 * and only the new one is woken. */
START_TEST(waker_replacement)
{
    weft_barrier_t b;
    ck_assert_int_eq(weft_barrier_init(&b, 2), 0);
    hand_t h1, h2, hl;
    hand_init(&h1);
    hand_init(&h2);
    hand_init(&hl);
    bool out = true;
    weft_barrier_wait_t w = weft_barrier_wait(&b), l = weft_barrier_wait(&b);
    ck_assert_int_eq(hand_poll(&h1, &w, &out), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h2, &w, &out), WEFT_PENDING);
    ck_assert_int_eq(h1.c.drops, 1);
    ck_assert_int_eq(hand_poll(&hl, &l, NULL), WEFT_READY);
    ck_assert_int_eq(h1.c.wakes, 0);
    ck_assert_int_eq(h2.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&h2, &w, &out), WEFT_READY);
    ck_assert(!out);
    weft_future_drop(WEFT_FUTURE(&w));
    weft_future_drop(WEFT_FUTURE(&l));
    ASSERT_HAND_BALANCED(&h1);
    ASSERT_HAND_BALANCED(&h2);
    weft_barrier_destroy(&b);
    ASSERT_NO_LIVE();
}
END_TEST

/* A wait dropped before its release withdraws: the group needs another
 * arrival. Dropped after its release (unseen): the release stands, the
 * next group is not affected. */
START_TEST(cancel_withdraws_before_release)
{
    weft_barrier_t b;
    ck_assert_int_eq(weft_barrier_init(&b, 2), 0);
    hand_t h[4];
    weft_barrier_wait_t w[4];
    bool out[4];
    for (int i = 0; i < 4; i++) {
        hand_init(&h[i]);
        w[i] = weft_barrier_wait(&b);
    }
    ck_assert_int_eq(hand_poll(&h[0], &w[0], &out[0]), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&w[0])); /* withdrawn */
    ASSERT_HAND_BALANCED(&h[0]);
    ck_assert_uint_eq(arrived(&b), 0);
    ck_assert_int_eq(hand_poll(&h[1], &w[1], &out[1]), WEFT_PENDING); /* not a leader: alone */
    ck_assert_int_eq(hand_poll(&h[2], &w[2], &out[2]), WEFT_READY);
    ck_assert(out[2]);
    ck_assert_int_eq(h[1].c.wakes, 1);
    ck_assert_int_eq(h[0].c.wakes, 0);
    /* w[1] released but dropped before it saw it: nothing changes. */
    weft_future_drop(WEFT_FUTURE(&w[1]));
    ASSERT_HAND_BALANCED(&h[1]);
    ck_assert_uint_eq(arrived(&b), 0);
    ck_assert_int_eq(hand_poll(&h[3], &w[3], &out[3]), WEFT_PENDING); /* gen 2 needs two */
    weft_barrier_wait_t l = weft_barrier_wait(&b);
    hand_t hl;
    hand_init(&hl);
    bool lo = false;
    ck_assert_int_eq(hand_poll(&hl, &l, &lo), WEFT_READY);
    ck_assert(lo);
    ck_assert_int_eq(hand_poll(&h[3], &w[3], &out[3]), WEFT_READY);
    ck_assert(!out[3]);
    weft_future_drop(WEFT_FUTURE(&w[2]));
    weft_future_drop(WEFT_FUTURE(&w[3]));
    weft_future_drop(WEFT_FUTURE(&l));
    ASSERT_HAND_BALANCED(&h[3]);
    weft_barrier_destroy(&b);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Misuse ---------------------------------------------------------------------- */

static void destroy_with_waiter(void)
{
    weft_barrier_t b;
    if (weft_barrier_init(&b, 2) != 0)
        return;
    hand_t h;
    hand_init(&h);
    weft_barrier_wait_t w = weft_barrier_wait(&b);
    (void)hand_poll(&h, &w, NULL);
    weft_barrier_destroy(&b);
}
static void poll_after_done(void)
{
    weft_barrier_t b;
    if (weft_barrier_init(&b, 1) != 0)
        return;
    hand_t h;
    hand_init(&h);
    weft_barrier_wait_t w = weft_barrier_wait(&b);
    (void)hand_poll(&h, &w, NULL);
    (void)hand_poll(&h, &w, NULL);
}
static void wait_uninitialised(void)
{
    weft_barrier_t b;
    memset(&b, 0, sizeof b);
    weft_barrier_wait_t w = weft_barrier_wait(&b);
    (void)w;
}
static void null_barrier(void)
{
    int rc = weft_barrier_init(NULL, 1);
    (void)rc;
}
START_TEST(misuse_aborts)
{
    expect_panic(destroy_with_waiter, "weft_barrier_destroy: waits still queued");
    expect_panic(poll_after_done, "weft_barrier_wait polled after it completed");
    expect_panic(wait_uninitialised, "weft_barrier_wait: the barrier is not initialised");
    expect_panic(null_barrier, "weft_barrier_init: b is NULL");
}
END_TEST

/* ---- On runtimes ---------------------------------------------------------------- */

enum { T = 6, GENS = 20 };
typedef struct {
    weft_barrier_t b;
    _Atomic int before[GENS], leaders[GENS], after[GENS];
} shared_t;

typedef struct {
    WEFT_FRAME;
    shared_t *sh;
    int g;
    bool leader;
    weft_barrier_wait_t w;
} member_t;
/* GENS rounds: every member of round g arrives before any leaves it. */
WEFT_ASYNC(member_t, member, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->g = 0; self->g < GENS; self->g++) {
        self->sh->before[self->g]++;
        if ((self->g + (int)(uintptr_t)self) % 3 == 0)
            WEFT_YIELD();
        WEFT_AWAIT(&self->w, weft_barrier_wait(&self->sh->b), &self->leader);
        (void)WEFT_TEST_CHECK_INT_EQ(self->sh->before[self->g], T);
        if (self->leader)
            self->sh->leaders[self->g]++;
        self->sh->after[self->g]++;
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(tasks_in_generations)
{
    weft_runtime_t *rt = shape_rt(_i);
    static shared_t sh;
    memset(&sh, 0, sizeof sh);
    ck_assert_int_eq(weft_barrier_init(&sh.b, T), 0);
    weft_join_handle_t hs[T];
    for (int i = 0; i < T; i++) {
        member_t m = { WEFT_FRAME_INIT(member), .sh = &sh };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &m, &hs[i]), 0);
    }
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(join_out(rt, &hs[i], NULL), 0);
    ASSERT_NO_TEST_FAIL();
    for (int g = 0; g < GENS; g++) {
        ck_assert_int_eq(sh.leaders[g], 1);
        ck_assert_int_eq(sh.after[g], T);
    }
    weft_runtime_free(rt);
    weft_barrier_destroy(&sh.b);
    ASSERT_NO_LIVE();
}
END_TEST

typedef struct {
    WEFT_FRAME;
    weft_barrier_t *b;
    bool leader;
    weft_barrier_wait_t w;
} one_wait_t;
WEFT_ASYNC(one_wait_t, one_wait, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->w, weft_barrier_wait(self->b), &self->leader);
    WEFT_RETURN(self->leader ? 1 : 0);
    WEFT_END();
}

/* Waits (up to 5 s) until b has `want` arrivals; drives a current-thread
 * runtime with yields (its tasks run only inside block_on). */
static bool wait_arrived(weft_runtime_t *rt, int shape, weft_barrier_t *b, size_t want)
{
    for (int k = 0; k < 5000; k++) {
        if (arrived(b) >= want)
            return true;
        let_tasks_run(rt, shape);
    }
    return false;
}

/* An aborted task's wait withdraws; two fresh tasks then form the group
 * (one leader). A wait left at shutdown is dropped out of the barrier. */
START_TEST(aborted_waiter_and_shutdown)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_barrier_t b;
    ck_assert_int_eq(weft_barrier_init(&b, 2), 0);
    weft_join_handle_t ha, h1, h2;
    one_wait_t a = { WEFT_FRAME_INIT(one_wait), .b = &b };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &a, &ha), 0);
    ck_assert(wait_arrived(rt, _i, &b, 1));
    weft_join_handle_abort(&ha);
    ck_assert_int_eq(join_out(rt, &ha, NULL), WEFT_ECANCELED);
    ck_assert_uint_eq(arrived(&b), 0);
    one_wait_t t1 = { WEFT_FRAME_INIT(one_wait), .b = &b };
    one_wait_t t2 = { WEFT_FRAME_INIT(one_wait), .b = &b };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t1, &h1), 0);
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t2, &h2), 0);
    int o1 = -1, o2 = -1;
    ck_assert_int_eq(join_out(rt, &h1, &o1), 0);
    ck_assert_int_eq(join_out(rt, &h2, &o2), 0);
    ck_assert_int_eq(o1 + o2, 1);
    one_wait_t t3 = { WEFT_FRAME_INIT(one_wait), .b = &b };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t3, NULL), 0);
    ck_assert(wait_arrived(rt, _i, &b, 1));
    weft_runtime_free(rt);
    ck_assert_uint_eq(arrived(&b), 0);
    weft_barrier_destroy(&b); /* would abort if t3 were still queued */
    ASSERT_NO_LIVE();
}
END_TEST

/* The coop budget: a task whose waits are always ready (n = 1) still
 * yields, so a sibling on a current-thread runtime runs in between. */
typedef struct {
    WEFT_FRAME;
    weft_barrier_t *b;
    int i, saw_sibling;
    weft_barrier_wait_t w;
} greedy_t;
WEFT_ASYNC(greedy_t, greedy, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 1000; self->i++) {
        WEFT_AWAIT(&self->w, weft_barrier_wait(self->b), NULL);
        if (coop_sibling_ran && !self->saw_sibling)
            self->saw_sibling = self->i + 1;
    }
    WEFT_RETURN(self->saw_sibling);
    WEFT_END();
}

START_TEST(coop_budget_yields)
{
    weft_barrier_t b;
    ck_assert_int_eq(weft_barrier_init(&b, 1), 0);
    greedy_t g = { WEFT_FRAME_INIT(greedy), .b = &b };
    assert_coop_yields(WEFT_FUTURE(&g));
    weft_barrier_destroy(&b);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("barrier");
    TCase *tc = tcase_create("barrier");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, init_and_bounds);
    tcase_add_test(tc, leader_once_per_generation);
    tcase_add_test(tc, generations_do_not_mix);
    tcase_add_test(tc, group_of_one);
    tcase_add_test(tc, release_larger_than_a_batch);
    tcase_add_test(tc, waker_replacement);
    tcase_add_test(tc, cancel_withdraws_before_release);
    if (can_fork())
        tcase_add_test(tc, misuse_aborts);
    tcase_add_loop_test(tc, tasks_in_generations, 0, N_SHAPES);
    tcase_add_loop_test(tc, aborted_waiter_and_shutdown, 0, N_SHAPES);
    tcase_add_test(tc, coop_budget_yields);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
