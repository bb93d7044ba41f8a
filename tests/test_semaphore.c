/* tests/test_semaphore.c - the semaphore: every call, bounds, FIFO order,
 * the large request at the head, no barging, cancellation with and
 * without assigned permits, close, forget, waker replacement, the coop
 * budget, and tasks on every runtime shape, two runtimes and plain
 * threads. */
#include "locktest.h"

START_TEST(init_and_bounds)
{
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, WEFT_SEMAPHORE_MAX_PERMITS + 1), WEFT_EINVAL);
    ck_assert_int_eq(weft_semaphore_init(&s, WEFT_SEMAPHORE_MAX_PERMITS), 0);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), WEFT_SEMAPHORE_MAX_PERMITS);
    ck_assert_int_eq(weft_semaphore_release(&s, 1), WEFT_EINVAL); /* would pass the maximum */
    ck_assert_int_eq(weft_semaphore_add_permits(&s, 1), WEFT_EINVAL);
    ck_assert_int_eq(weft_semaphore_try_acquire_many(&s, WEFT_SEMAPHORE_MAX_PERMITS), 0);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 0);
    weft_semaphore_destroy(&s);

    ck_assert_int_eq(weft_semaphore_init(&s, 0), 0);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 0);
    ck_assert(!weft_semaphore_is_closed(&s));
    ck_assert_int_eq(weft_semaphore_try_acquire_many(&s, 0), WEFT_EINVAL);
    ck_assert_int_eq(weft_semaphore_try_acquire_many(&s, WEFT_SEMAPHORE_MAX_PERMITS + 1), WEFT_EINVAL);
    ck_assert_int_eq(weft_semaphore_release(&s, WEFT_SEMAPHORE_MAX_PERMITS + 1), WEFT_EINVAL);
    ck_assert_int_eq(weft_semaphore_release(&s, 0), 0);
    /* An acquire of 0 or too many completes with WEFT_EINVAL. */
    hand_t h;
    hand_init(&h);
    int rc = 1;
    weft_semaphore_acquire_t a = weft_semaphore_acquire_many(&s, 0);
    ck_assert_int_eq(hand_poll(&h, &a, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EINVAL);
    weft_future_drop(WEFT_FUTURE(&a));
    a = weft_semaphore_acquire_many(&s, WEFT_SEMAPHORE_MAX_PERMITS + 1);
    ck_assert_int_eq(hand_poll(&h, &a, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EINVAL);
    weft_future_drop(WEFT_FUTURE(&a));
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(try_acquire_release_add_forget)
{
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 3), 0);
    ck_assert_int_eq(weft_semaphore_try_acquire(&s), 0);
    ck_assert_int_eq(weft_semaphore_try_acquire_many(&s, 2), 0);
    ck_assert_int_eq(weft_semaphore_try_acquire(&s), WEFT_EAGAIN);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 0);
    ck_assert_int_eq(weft_semaphore_release(&s, 2), 0);
    ck_assert_int_eq(weft_semaphore_try_acquire_many(&s, 3), WEFT_EAGAIN);
    ck_assert_int_eq(weft_semaphore_add_permits(&s, 5), 0);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 7);
    /* forget takes what is there, up to n. */
    ck_assert_uint_eq(weft_semaphore_forget(&s, 4), 4);
    ck_assert_uint_eq(weft_semaphore_forget(&s, 10), 3);
    ck_assert_uint_eq(weft_semaphore_forget(&s, 1), 0);
    ck_assert_uint_eq(weft_semaphore_forget(&s, 0), 0);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 0);
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(acquire_ready_at_once)
{
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 2), 0);
    hand_t h;
    hand_init(&h);
    int rc = -1;
    weft_semaphore_acquire_t a = weft_semaphore_acquire_many(&s, 2);
    ck_assert_int_eq(hand_poll(&h, &a, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 0);
    weft_future_drop(WEFT_FUTURE(&a)); /* completed: the permits stay the caller's */
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 0);
    ck_assert_int_eq(weft_semaphore_release(&s, 2), 0);
    /* A NULL output: the permits go straight back (future.h). */
    a = weft_semaphore_acquire(&s);
    ck_assert_int_eq(hand_poll(&h, &a, NULL), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&a));
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 2);
    /* Dropped before its first poll: nothing happens. */
    a = weft_semaphore_acquire(&s);
    weft_future_drop(WEFT_FUTURE(&a));
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 2);
    ck_assert_int_eq(h.c.clones, 0); /* no wait, no waker kept */
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

/* Waiters are served in arrival order, one wake each. */
START_TEST(fifo_order)
{
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 0), 0);
    enum { N = 4 };
    hand_t h[N];
    weft_semaphore_acquire_t a[N];
    int rc[N];
    for (int i = 0; i < N; i++) {
        hand_init(&h[i]);
        a[i] = weft_semaphore_acquire(&s);
        ck_assert_int_eq(hand_poll(&h[i], &a[i], &rc[i]), WEFT_PENDING);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(weft_semaphore_release(&s, 1), 0);
        for (int j = 0; j < N; j++)
            ck_assert_int_eq(h[j].c.wakes, j <= i ? 1 : 0);
        ck_assert_int_eq(hand_poll(&h[i], &a[i], &rc[i]), WEFT_READY);
        ck_assert_int_eq(rc[i], 0);
        weft_future_drop(WEFT_FUTURE(&a[i]));
        ASSERT_HAND_BALANCED(&h[i]);
    }
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 0);
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

/* A large request at the head is served before smaller ones behind it, and
 * nothing barges past the queue. */
START_TEST(large_request_at_head)
{
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 1), 0);
    hand_t hb, hs;
    hand_init(&hb);
    hand_init(&hs);
    int rb = -1, rs = -1;
    weft_semaphore_acquire_t big = weft_semaphore_acquire_many(&s, 4);
    weft_semaphore_acquire_t small = weft_semaphore_acquire(&s);
    ck_assert_int_eq(hand_poll(&hb, &big, &rb), WEFT_PENDING); /* takes the 1 there as a first part */
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 0);
    ck_assert_int_eq(hand_poll(&hs, &small, &rs), WEFT_PENDING);
    ck_assert_int_eq(weft_semaphore_release(&s, 2), 0); /* big has 3 of 4 */
    ck_assert_int_eq(hb.c.wakes + hs.c.wakes, 0);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 0);
    ck_assert_int_eq(weft_semaphore_try_acquire(&s), WEFT_EAGAIN); /* no barging */
    ck_assert_int_eq(hand_poll(&hs, &small, &rs), WEFT_PENDING);
    ck_assert_int_eq(weft_semaphore_release(&s, 2), 0); /* big gets its last, small the other */
    ck_assert_int_eq(hb.c.wakes, 1);
    ck_assert_int_eq(hs.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&hb, &big, &rb), WEFT_READY);
    ck_assert_int_eq(hand_poll(&hs, &small, &rs), WEFT_READY);
    ck_assert_int_eq(rb, 0);
    ck_assert_int_eq(rs, 0);
    weft_future_drop(WEFT_FUTURE(&big));
    weft_future_drop(WEFT_FUTURE(&small));
    ASSERT_HAND_BALANCED(&hb);
    ASSERT_HAND_BALANCED(&hs);
    /* With the queue empty again, a release makes permits available. */
    ck_assert_int_eq(weft_semaphore_release(&s, 5), 0);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 5);
    ck_assert_int_eq(weft_semaphore_try_acquire(&s), 0);
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

/* A waiter dropped while holding part of its permits gives them back and
 * the next waiter runs. */
START_TEST(cancel_with_partial_permits)
{
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 2), 0);
    hand_t hb, hs;
    hand_init(&hb);
    hand_init(&hs);
    int rb, rs = -1;
    weft_semaphore_acquire_t big = weft_semaphore_acquire_many(&s, 3);
    weft_semaphore_acquire_t small = weft_semaphore_acquire(&s);
    ck_assert_int_eq(hand_poll(&hb, &big, &rb), WEFT_PENDING); /* 2 of 3 */
    ck_assert_int_eq(hand_poll(&hs, &small, &rs), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&big));
    ck_assert_int_eq(hb.c.wakes, 0);
    ASSERT_HAND_BALANCED(&hb);
    ck_assert_int_eq(hs.c.wakes, 1); /* served from big's 2 */
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 1);
    ck_assert_int_eq(hand_poll(&hs, &small, &rs), WEFT_READY);
    ck_assert_int_eq(rs, 0);
    weft_future_drop(WEFT_FUTURE(&small));
    ASSERT_HAND_BALANCED(&hs);
    ck_assert_int_eq(weft_semaphore_release(&s, 1), 0);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 2);
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

/* Served (all permits assigned, woken) but dropped before it saw it: all
 * of them return, to the next waiter first. Dropped at the head with
 * nothing assigned: the one behind stays queued, the queue stays sound. */
START_TEST(cancel_after_served)
{
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 0), 0);
    hand_t h1, h2, h3;
    hand_init(&h1);
    hand_init(&h2);
    hand_init(&h3);
    int r1, r2 = -1, r3 = -1;
    weft_semaphore_acquire_t a1 = weft_semaphore_acquire_many(&s, 2);
    weft_semaphore_acquire_t a2 = weft_semaphore_acquire(&s);
    weft_semaphore_acquire_t a3 = weft_semaphore_acquire(&s);
    ck_assert_int_eq(hand_poll(&h1, &a1, &r1), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h2, &a2, &r2), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h3, &a3, &r3), WEFT_PENDING);
    ck_assert_int_eq(weft_semaphore_release(&s, 2), 0);
    ck_assert_int_eq(h1.c.wakes, 1);
    weft_future_drop(WEFT_FUTURE(&a1)); /* never saw its 2 permits */
    ck_assert_int_eq(h2.c.wakes, 1);
    ck_assert_int_eq(h3.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&h2, &a2, &r2), WEFT_READY);
    ck_assert_int_eq(hand_poll(&h3, &a3, &r3), WEFT_READY);
    ck_assert_int_eq(r2 | r3, 0);
    weft_future_drop(WEFT_FUTURE(&a2));
    weft_future_drop(WEFT_FUTURE(&a3));
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 0);
    ck_assert_int_eq(weft_semaphore_release(&s, 2), 0);

    /* Head dropped with nothing assigned. */
    ck_assert_uint_eq(weft_semaphore_forget(&s, 2), 2);
    a1 = weft_semaphore_acquire(&s);
    a2 = weft_semaphore_acquire(&s);
    ck_assert_int_eq(hand_poll(&h1, &a1, &r1), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h2, &a2, &r2), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&a1));
    ck_assert_int_eq(h2.c.wakes, 1); /* unchanged */
    ck_assert_int_eq(weft_semaphore_try_acquire(&s), WEFT_EAGAIN);
    ck_assert_int_eq(weft_semaphore_release(&s, 1), 0);
    ck_assert_int_eq(h2.c.wakes, 2);
    ck_assert_int_eq(hand_poll(&h2, &a2, &r2), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&a2));
    /* The last waiter gone, WAITERS is clear: the fast path works again. */
    ck_assert_int_eq(weft_semaphore_release(&s, 1), 0);
    ck_assert_int_eq(weft_semaphore_try_acquire(&s), 0);
    ASSERT_HAND_BALANCED(&h1);
    ASSERT_HAND_BALANCED(&h2);
    ASSERT_HAND_BALANCED(&h3);
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

/* The last waiter leaving the queue (drop) with nothing assigned clears
 * the waiters flag: a later release is available at once. */
START_TEST(cancel_last_waiter_reopens_fast_path)
{
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 0), 0);
    hand_t h;
    hand_init(&h);
    int rc;
    weft_semaphore_acquire_t a = weft_semaphore_acquire(&s);
    ck_assert_int_eq(hand_poll(&h, &a, &rc), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&a));
    ck_assert_int_eq(weft_semaphore_release(&s, 1), 0);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 1);
    ck_assert_int_eq(weft_semaphore_try_acquire(&s), 0);
    ASSERT_HAND_BALANCED(&h);
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(close_wakes_everyone)
{
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 1), 0);
    hand_t h1, h2;
    hand_init(&h1);
    hand_init(&h2);
    int r1 = -1, r2 = -1;
    weft_semaphore_acquire_t a1 = weft_semaphore_acquire_many(&s, 3); /* takes 1 of 3 */
    weft_semaphore_acquire_t a2 = weft_semaphore_acquire(&s);
    ck_assert_int_eq(hand_poll(&h1, &a1, &r1), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h2, &a2, &r2), WEFT_PENDING);
    weft_semaphore_close(&s);
    ck_assert(weft_semaphore_is_closed(&s));
    ck_assert_int_eq(h1.c.wakes, 1);
    ck_assert_int_eq(h2.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&h1, &a1, &r1), WEFT_READY);
    ck_assert_int_eq(r1, WEFT_EPIPE);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 1); /* its part came back */
    weft_future_drop(WEFT_FUTURE(&a1));
    weft_future_drop(WEFT_FUTURE(&a2)); /* closed out, dropped unpolled: nothing to return */
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 1);
    /* Later calls. */
    ck_assert_int_eq(weft_semaphore_try_acquire(&s), WEFT_EPIPE);
    a1 = weft_semaphore_acquire(&s);
    ck_assert_int_eq(hand_poll(&h1, &a1, &r1), WEFT_READY);
    ck_assert_int_eq(r1, WEFT_EPIPE);
    weft_future_drop(WEFT_FUTURE(&a1));
    ck_assert_int_eq(weft_semaphore_release(&s, 2), 0); /* held permits may still come back */
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 3);
    weft_semaphore_close(&s); /* idempotent */
    ASSERT_HAND_BALANCED(&h1);
    ASSERT_HAND_BALANCED(&h2);
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

/* A re-poll with the same waker keeps the clone; with another one, the
 * new waker is the one woken and the old clone is dropped. */
START_TEST(waker_replacement)
{
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 0), 0);
    hand_t h1, h2;
    hand_init(&h1);
    hand_init(&h2);
    int rc;
    weft_semaphore_acquire_t a = weft_semaphore_acquire(&s);
    ck_assert_int_eq(hand_poll(&h1, &a, &rc), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h1, &a, &rc), WEFT_PENDING);
    ck_assert_int_eq(h1.c.clones, 1);
    ck_assert_int_eq(hand_poll(&h2, &a, &rc), WEFT_PENDING);
    ck_assert_int_eq(h1.c.drops, 1);
    ck_assert_int_eq(weft_semaphore_release(&s, 1), 0);
    ck_assert_int_eq(h1.c.wakes, 0);
    ck_assert_int_eq(h2.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&h2, &a, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    weft_future_drop(WEFT_FUTURE(&a));
    ASSERT_HAND_BALANCED(&h1);
    ASSERT_HAND_BALANCED(&h2);
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

/* More waiters than one wake list holds are all served by one release. */
START_TEST(release_serves_many)
{
    enum { N = 100 };
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 0), 0);
    static hand_t h[N];
    static weft_semaphore_acquire_t a[N];
    int rc;
    for (int i = 0; i < N; i++) {
        hand_init(&h[i]);
        a[i] = weft_semaphore_acquire(&s);
        ck_assert_int_eq(hand_poll(&h[i], &a[i], &rc), WEFT_PENDING);
    }
    ck_assert_int_eq(weft_semaphore_release(&s, N + 1), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(h[i].c.wakes, 1);
        ck_assert_int_eq(hand_poll(&h[i], &a[i], &rc), WEFT_READY);
        weft_future_drop(WEFT_FUTURE(&a[i]));
    }
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 1);
    /* And close wakes more than a list's worth too. */
    for (int i = 0; i < N; i++) {
        a[i] = weft_semaphore_acquire_many(&s, 2);
        ck_assert_int_eq(hand_poll(&h[i], &a[i], &rc), WEFT_PENDING);
    }
    weft_semaphore_close(&s);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(h[i].c.wakes, 2);
        ck_assert_int_eq(hand_poll(&h[i], &a[i], &rc), WEFT_READY);
        ck_assert_int_eq(rc, WEFT_EPIPE);
        weft_future_drop(WEFT_FUTURE(&a[i]));
        ASSERT_HAND_BALANCED(&h[i]);
    }
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 1);
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

static void destroy_with_waiter(void)
{
    weft_semaphore_t s;
    if (weft_semaphore_init(&s, 0) != 0)
        return;
    hand_t h;
    hand_init(&h);
    int rc;
    weft_semaphore_acquire_t a = weft_semaphore_acquire(&s);
    (void)hand_poll(&h, &a, &rc);
    weft_semaphore_destroy(&s);
}
START_TEST(destroy_with_waiter_aborts)
{
    destroy_with_waiter();
}
END_TEST

START_TEST(null_semaphore_aborts)
{
    int rc = weft_semaphore_try_acquire(NULL);
    (void)rc;
}
END_TEST

/* ---- On runtimes -------------------------------------------------------------------- */

/* Tasks take 1 of `cap` permits, hold it across a yield, and check that
 * no more than `cap` are inside at once. */
typedef struct {
    weft_semaphore_t sem;
    _Atomic int inside, max_inside, done;
    int cap;
} shared_t;

typedef struct {
    WEFT_FRAME;
    shared_t *sh;
    int i, rc;
    weft_semaphore_acquire_t acq;
} worker_task_t;
WEFT_ASYNC(worker_task_t, worker_task, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 50; self->i++) {
        WEFT_AWAIT(&self->acq, weft_semaphore_acquire(&self->sh->sem), &self->rc);
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
            WEFT_RETURN(WEFT_UNIT);
        {
            int in = ++self->sh->inside;
            int m = self->sh->max_inside;
            while (in > m && !atomic_compare_exchange_weak(&self->sh->max_inside, &m, in)) {
            }
        }
        WEFT_YIELD();
        self->sh->inside--;
        (void)WEFT_TEST_CHECK_INT_EQ(weft_semaphore_release(&self->sh->sem, 1), 0);
    }
    self->sh->done++;
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(tasks_share_permits)
{
    weft_runtime_t *rt = shape_rt(_i);
    static shared_t sh;
    memset(&sh, 0, sizeof sh);
    sh.cap = 3;
    ck_assert_int_eq(weft_semaphore_init(&sh.sem, 3), 0);
    enum { T = 16 };
    weft_join_handle_t hs[T];
    for (int i = 0; i < T; i++) {
        worker_task_t w = { WEFT_FRAME_INIT(worker_task), .sh = &sh };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &w, &hs[i]), 0);
    }
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(join_out(rt, &hs[i], NULL), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(sh.done, T);
    ck_assert_int_le(sh.max_inside, 3);
    ck_assert_int_ge(sh.max_inside, 1);
    ck_assert_uint_eq(weft_semaphore_available_permits(&sh.sem), 3);
    weft_runtime_free(rt);
    weft_semaphore_destroy(&sh.sem);
    ASSERT_NO_LIVE();
}
END_TEST

/* A task waits; a plain thread releases (and tries) from outside. A task
 * of a second runtime waits on the same semaphore. */
typedef struct {
    WEFT_FRAME;
    weft_semaphore_t *sem;
    size_t n;
    int rc;
    weft_semaphore_acquire_t acq;
} acq_task_t;
WEFT_ASYNC(acq_task_t, acq_task, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->acq, weft_semaphore_acquire_many(self->sem, self->n), &self->rc);
    WEFT_RETURN(self->rc);
    WEFT_END();
}

static void *release_later(void *arg)
{
    weft_semaphore_t *s = arg;
    sleep_ms(20);
    (void)WEFT_TEST_CHECK_INT_EQ(weft_semaphore_try_acquire(s), WEFT_EAGAIN);
    (void)WEFT_TEST_CHECK_INT_EQ(weft_semaphore_release(s, 3), 0);
    return NULL;
}

START_TEST(plain_thread_and_two_runtimes)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_runtime_t *rt2 = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 0), 0);
    weft_join_handle_t h1, h2;
    acq_task_t t1 = { WEFT_FRAME_INIT(acq_task), .sem = &s, .n = 2 };
    acq_task_t t2 = { WEFT_FRAME_INIT(acq_task), .sem = &s, .n = 1 };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t1, &h1), 0);
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt2), &t2, &h2), 0);
    pthread_t th;
    pthread_create(&th, NULL, release_later, &s);
    int out1 = -1, out2 = -1;
    ck_assert_int_eq(join_out(rt, &h1, &out1), 0);
    ck_assert_int_eq(join_out(rt2, &h2, &out2), 0);
    pthread_join(th, NULL);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(out1, 0);
    ck_assert_int_eq(out2, 0);
    ck_assert_uint_eq(weft_semaphore_available_permits(&s), 0);
    weft_runtime_free(rt);
    weft_runtime_free(rt2);
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

/* An aborted task waiting on the semaphore leaves the queue (its frame's
 * drop), and runtime shutdown drops waiters too. */
START_TEST(aborted_waiter_and_shutdown)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 0), 0);
    weft_join_handle_t h1, h2;
    acq_task_t t1 = { WEFT_FRAME_INIT(acq_task), .sem = &s, .n = 2 };
    acq_task_t t2 = { WEFT_FRAME_INIT(acq_task), .sem = &s, .n = 1 };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t1, &h1), 0);
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t2, &h2), 0);
    /* Let both queue (current-thread tasks run inside block_on). */
    for (int k = 0; k < 50 && !weft_test_failed(); k++) {
        weft_yield_t y = weft_yield_now();
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&y), NULL), 0);
        sleep_ms(1);
    }
    ck_assert_int_eq(weft_semaphore_release(&s, 1), 0); /* t1 holds 1 of 2 */
    weft_join_handle_abort(&h1);                       /* ...and gives it to t2 */
    ck_assert_int_eq(join_out(rt, &h1, NULL), WEFT_ECANCELED);
    int out = -1;
    ck_assert_int_eq(join_out(rt, &h2, &out), 0);
    ck_assert_int_eq(out, 0);
    /* A waiter left at shutdown is dropped out of the queue. */
    acq_task_t t3 = { WEFT_FRAME_INIT(acq_task), .sem = &s, .n = 1 };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t3, NULL), 0);
    weft_runtime_free(rt);
    weft_semaphore_destroy(&s); /* would abort if t3 were still queued */
    ASSERT_NO_LIVE();
}
END_TEST

/* The coop budget: a task whose acquires are always ready still yields,
 * so a sibling on a current-thread runtime runs before it finishes. */
typedef struct {
    WEFT_FRAME;
    weft_semaphore_t *sem;
    int i, rc, saw_sibling;
    weft_semaphore_acquire_t acq;
} greedy_t;
WEFT_ASYNC(greedy_t, greedy, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 1000; self->i++) {
        WEFT_AWAIT(&self->acq, weft_semaphore_acquire(self->sem), &self->rc);
        (void)weft_semaphore_release(self->sem, 1);
        if (coop_sibling_ran && !self->saw_sibling)
            self->saw_sibling = self->i + 1;
    }
    WEFT_RETURN(self->saw_sibling);
    WEFT_END();
}

START_TEST(coop_budget_yields)
{
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 1), 0);
    greedy_t g = { WEFT_FRAME_INIT(greedy), .sem = &s };
    assert_coop_yields(WEFT_FUTURE(&g));
    weft_semaphore_destroy(&s);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("semaphore");
    TCase *tc = tcase_create("semaphore");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, init_and_bounds);
    tcase_add_test(tc, try_acquire_release_add_forget);
    tcase_add_test(tc, acquire_ready_at_once);
    tcase_add_test(tc, fifo_order);
    tcase_add_test(tc, large_request_at_head);
    tcase_add_test(tc, cancel_with_partial_permits);
    tcase_add_test(tc, cancel_after_served);
    tcase_add_test(tc, cancel_last_waiter_reopens_fast_path);
    tcase_add_test(tc, close_wakes_everyone);
    tcase_add_test(tc, waker_replacement);
    tcase_add_test(tc, release_serves_many);
    ADD_ABORT_TEST(tc, destroy_with_waiter_aborts);
    ADD_ABORT_TEST(tc, null_semaphore_aborts);
    tcase_add_loop_test(tc, tasks_share_permits, 0, N_SHAPES);
    tcase_add_loop_test(tc, plain_thread_and_two_runtimes, 0, N_SHAPES);
    tcase_add_loop_test(tc, aborted_waiter_and_shutdown, 0, N_SHAPES);
    tcase_add_test(tc, coop_budget_yields);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
