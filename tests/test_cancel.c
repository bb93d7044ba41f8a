/* tests/test_cancel.c - cancellation tokens: cancel and is_cancelled, the
 * cancelled future (queued, woken, dropped), trees (a parent cancels every
 * descendant, a child never its parent, a child of a cancelled token is
 * born cancelled), children dropped leave the parent (memory stays
 * bounded), references, allocation failure, the drop guard, misuse aborts,
 * and tasks on every runtime shape woken by a cancel from a plain thread. */
#include "testlib.h"

static weft_poll_t poll_with(weft_cancelled_t *f, counter_t *c)
{
    weft_waker_t w = { &counter_vt, c };
    weft_context_t cx = { &w };
    return weft_future_poll(WEFT_FUTURE(f), &cx, NULL);
}

START_TEST(cancel_sets_the_flag_once)
{
    weft_cancel_token_t *t = NULL;
    ck_assert_int_eq(weft_cancel_token_new(&t), 0);
    ck_assert_int_eq(weft__live_count(WEFT_LIVE_CANCEL_TOKEN), 1);
    ck_assert(!weft_cancel_token_is_cancelled(t));
    weft_cancel_token_cancel(t);
    ck_assert(weft_cancel_token_is_cancelled(t));
    weft_cancel_token_cancel(t); /* no-op */
    ck_assert(weft_cancel_token_is_cancelled(t));
    weft_cancel_token_release(t);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(cancelled_future_waits_then_completes)
{
    weft_cancel_token_t *t;
    ck_assert_int_eq(weft_cancel_token_new(&t), 0);
    counter_t c = { 0 }, c2 = { 0 };
    weft_cancelled_t f = weft_cancel_token_cancelled(t);
    ck_assert_int_eq(poll_with(&f, &c), WEFT_PENDING);
    ck_assert_int_eq(poll_with(&f, &c), WEFT_PENDING);
    ck_assert_int_eq(c.clones, 1); /* same task: not cloned again */
    ck_assert_int_eq(poll_with(&f, &c2), WEFT_PENDING);
    ck_assert_int_eq(c.drops, 1); /* another task: replaced */
    weft_cancel_token_cancel(t);
    ck_assert_int_eq(c2.wakes, 1);
    ck_assert_int_eq(c.wakes, 0);
    ck_assert_int_eq(poll_with(&f, &c2), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&f));
    /* Already cancelled: ready at once, no waker taken. */
    weft_cancelled_t g = weft_cancel_token_cancelled(t);
    ck_assert_int_eq(poll_with(&g, &c), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&g));
    ck_assert_int_eq(c.clones, c.drops);
    ck_assert_int_eq(c2.clones, c2.drops);
    weft_cancel_token_release(t);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(dropped_future_is_not_woken)
{
    weft_cancel_token_t *t;
    ck_assert_int_eq(weft_cancel_token_new(&t), 0);
    counter_t c = { 0 };
    weft_cancelled_t f = weft_cancel_token_cancelled(t), never = weft_cancel_token_cancelled(t);
    ck_assert_int_eq(poll_with(&f, &c), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&f));
    weft_future_drop(WEFT_FUTURE(&never)); /* never polled */
    weft_cancel_token_cancel(t);
    ck_assert_int_eq(c.wakes, 0);
    ck_assert_int_eq(c.clones, c.drops);
    weft_cancel_token_release(t);
    ASSERT_NO_LIVE();
}
END_TEST

/* More waiters than one wake batch (32), on several tokens of a tree. */
START_TEST(cancel_wakes_many)
{
    enum { N = 100 };
    weft_cancel_token_t *root, *kid;
    ck_assert_int_eq(weft_cancel_token_new(&root), 0);
    ck_assert_int_eq(weft_cancel_token_child(root, &kid), 0);
    static counter_t c[N];
    static weft_cancelled_t f[N];
    memset(c, 0, sizeof c);
    for (int i = 0; i < N; i++) {
        f[i] = weft_cancel_token_cancelled(i & 1 ? kid : root);
        ck_assert_int_eq(poll_with(&f[i], &c[i]), WEFT_PENDING);
    }
    weft_cancel_token_cancel(root);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(c[i].wakes, 1);
        ck_assert_int_eq(poll_with(&f[i], &c[i]), WEFT_READY);
        weft_future_drop(WEFT_FUTURE(&f[i]));
        ck_assert_int_eq(c[i].clones, c[i].drops);
    }
    weft_cancel_token_release(kid);
    weft_cancel_token_release(root);
    ASSERT_NO_LIVE();
}
END_TEST

/* root -> a -> a1, a2; root -> b. */
START_TEST(tree_parent_cancels_descendants)
{
    weft_cancel_token_t *root, *a, *a1, *a2, *b;
    ck_assert_int_eq(weft_cancel_token_new(&root), 0);
    ck_assert_int_eq(weft_cancel_token_child(root, &a), 0);
    ck_assert_int_eq(weft_cancel_token_child(a, &a1), 0);
    ck_assert_int_eq(weft_cancel_token_child(a, &a2), 0);
    ck_assert_int_eq(weft_cancel_token_child(root, &b), 0);
    ck_assert_uint_eq(weft__cancel_token_children(root), 2);
    ck_assert_uint_eq(weft__cancel_token_children(a), 2);
    counter_t c = { 0 };
    weft_cancelled_t fa2 = weft_cancel_token_cancelled(a2);
    ck_assert_int_eq(poll_with(&fa2, &c), WEFT_PENDING);
    /* A child's cancel touches neither its parent nor its sibling. */
    weft_cancel_token_cancel(a1);
    ck_assert(weft_cancel_token_is_cancelled(a1));
    ck_assert(!weft_cancel_token_is_cancelled(a));
    ck_assert(!weft_cancel_token_is_cancelled(a2));
    ck_assert(!weft_cancel_token_is_cancelled(root));
    ck_assert_int_eq(c.wakes, 0);
    /* A middle token cancels its subtree only. */
    weft_cancel_token_cancel(a);
    ck_assert(weft_cancel_token_is_cancelled(a2));
    ck_assert_int_eq(c.wakes, 1);
    ck_assert(!weft_cancel_token_is_cancelled(root));
    ck_assert(!weft_cancel_token_is_cancelled(b));
    weft_cancel_token_cancel(root);
    ck_assert(weft_cancel_token_is_cancelled(b));
    ck_assert_int_eq(poll_with(&fa2, &c), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&fa2));
    weft_cancel_token_release(a1);
    weft_cancel_token_release(a2);
    weft_cancel_token_release(a);
    weft_cancel_token_release(b);
    ck_assert_uint_eq(weft__cancel_token_children(root), 0);
    weft_cancel_token_release(root);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(child_of_cancelled_starts_cancelled)
{
    weft_cancel_token_t *root, *kid, *grandkid;
    ck_assert_int_eq(weft_cancel_token_new(&root), 0);
    weft_cancel_token_cancel(root);
    ck_assert_int_eq(weft_cancel_token_child(root, &kid), 0);
    ck_assert(weft_cancel_token_is_cancelled(kid));
    ck_assert_uint_eq(weft__cancel_token_children(root), 0); /* not linked */
    ck_assert_int_eq(weft_cancel_token_child(kid, &grandkid), 0);
    ck_assert(weft_cancel_token_is_cancelled(grandkid));
    weft_cancel_token_release(root);
    weft_cancel_token_release(grandkid);
    weft_cancel_token_release(kid);
    ASSERT_NO_LIVE();
}
END_TEST

/* Children created and dropped forever: the parent lists none of them
 * afterwards, and only the parent stays allocated. */
START_TEST(dropped_children_leave_the_parent)
{
    weft_cancel_token_t *root;
    ck_assert_int_eq(weft_cancel_token_new(&root), 0);
    for (int i = 0; i < 100000; i++) {
        weft_cancel_token_t *kid, *grandkid;
        ck_assert_int_eq(weft_cancel_token_child(root, &kid), 0);
        if (i % 1000 == 0) {
            ck_assert_int_eq(weft_cancel_token_child(kid, &grandkid), 0);
            weft_cancel_token_release(grandkid);
        }
        weft_cancel_token_release(kid);
    }
    ck_assert_uint_eq(weft__cancel_token_children(root), 0);
    ck_assert_int_eq(weft__live_count(WEFT_LIVE_CANCEL_TOKEN), 1);
    weft_cancel_token_release(root);
    ASSERT_NO_LIVE();
}
END_TEST

/* A child keeps its released parent alive, still linked: cancelling from
 * above still reaches a grandchild. */
START_TEST(child_keeps_parent_alive)
{
    weft_cancel_token_t *root, *mid, *leaf;
    ck_assert_int_eq(weft_cancel_token_new(&root), 0);
    ck_assert_int_eq(weft_cancel_token_child(root, &mid), 0);
    ck_assert_int_eq(weft_cancel_token_child(mid, &leaf), 0);
    weft_cancel_token_release(mid);
    ck_assert_int_eq(weft__live_count(WEFT_LIVE_CANCEL_TOKEN), 3);
    weft_cancel_token_cancel(root);
    ck_assert(weft_cancel_token_is_cancelled(leaf));
    weft_cancel_token_release(root); /* leaf still holds mid, mid holds root */
    ck_assert_int_eq(weft__live_count(WEFT_LIVE_CANCEL_TOKEN), 3);
    weft_cancel_token_release(leaf); /* frees leaf, mid, root */
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(references)
{
    weft_cancel_token_t *t;
    ck_assert_int_eq(weft_cancel_token_new(&t), 0);
    ck_assert_ptr_eq(weft_cancel_token_retain(t), t);
    weft_cancel_token_release(t);
    ck_assert_int_eq(weft__live_count(WEFT_LIVE_CANCEL_TOKEN), 1);
    weft_cancel_token_release(t);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(allocation_failure)
{
    weft_cancel_token_t *t = (weft_cancel_token_t *)0x1, *kid = (weft_cancel_token_t *)0x2;
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_cancel_token_new(&t), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    ck_assert_ptr_eq(t, (weft_cancel_token_t *)0x1); /* untouched */
    ck_assert_int_eq(weft_cancel_token_new(&t), 0);
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_cancel_token_child(t, &kid), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    ck_assert_ptr_eq(kid, (weft_cancel_token_t *)0x2);
    ck_assert_uint_eq(weft__cancel_token_children(t), 0);
    weft_cancel_token_release(t);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(drop_guard)
{
    weft_cancel_token_t *t;
    ck_assert_int_eq(weft_cancel_token_new(&t), 0);
    weft_cancel_guard_t g = weft_cancel_token_cancel_on_drop(weft_cancel_token_retain(t));
    weft_cancel_token_t *back = weft_cancel_guard_disarm(&g);
    ck_assert_ptr_eq(back, t);
    ck_assert_ptr_null(weft_cancel_guard_disarm(&g));
    weft_cancel_guard_drop(&g); /* disarmed: nothing */
    ck_assert(!weft_cancel_token_is_cancelled(t));
    g = weft_cancel_token_cancel_on_drop(back); /* takes that reference again */
    weft_cancel_guard_drop(&g);
    ck_assert(weft_cancel_token_is_cancelled(t));
    weft_cancel_guard_drop(&g); /* second drop: nothing */
    weft_cancel_token_release(t);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Tasks on every runtime shape ---------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    weft_cancel_token_t *t;
    weft_cancelled_t c;
} await_cancel_t;
WEFT_ASYNC(await_cancel_t, await_cancel, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->c, weft_cancel_token_cancelled(self->t), NULL);
    if (!WEFT_TEST_CHECK(weft_cancel_token_is_cancelled(self->t)))
        WEFT_RETURN(-1);
    WEFT_RETURN(1);
    WEFT_END();
}

static void *canceller_main(void *arg)
{
    sleep_ms(2); /* the tasks are likely waiting by now; either order is correct */
    weft_cancel_token_cancel(arg);
    return NULL;
}

START_TEST(tasks_woken_by_cancel_from_a_plain_thread)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_cancel_token_t *root, *kid;
    ck_assert_int_eq(weft_cancel_token_new(&root), 0);
    ck_assert_int_eq(weft_cancel_token_child(root, &kid), 0);
    enum { K = 6 };
    weft_join_handle_t h[K];
    for (int i = 0; i < K; i++) {
        await_cancel_t fr = { WEFT_FRAME_INIT(await_cancel), .t = i & 1 ? kid : root };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &fr, &h[i]), 0);
    }
    pthread_t th;
    pthread_create(&th, NULL, canceller_main, root);
    for (int i = 0; i < K; i++) {
        int out = 0;
        ck_assert_int_eq(join_out(rt, &h[i], &out), 0);
        ck_assert_int_eq(out, 1);
    }
    pthread_join(th, NULL);
    weft_runtime_free(rt);
    ASSERT_NO_TEST_FAIL();
    weft_cancel_token_release(kid);
    weft_cancel_token_release(root);
    ASSERT_NO_LIVE();
}
END_TEST

/* A waiting task dropped by shutdown leaves the token's list. */
START_TEST(waiting_task_dropped_by_shutdown)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_cancel_token_t *t;
    ck_assert_int_eq(weft_cancel_token_new(&t), 0);
    await_cancel_t fr = { WEFT_FRAME_INIT(await_cancel), .t = t };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &fr, NULL), 0);
    weft_yield_t y = weft_yield_now();
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&y), NULL), 0);
    weft_runtime_free(rt);
    weft_cancel_token_release(t); /* would abort if the waiter were still queued */
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Misuse ---------------------------------------------------------------------- */

START_TEST(release_with_a_waiter_aborts)
{
    weft_cancel_token_t *t;
    ck_assert_int_eq(weft_cancel_token_new(&t), 0);
    counter_t c = { 0 };
    weft_cancelled_t f = weft_cancel_token_cancelled(t);
    ck_assert_int_eq(poll_with(&f, &c), WEFT_PENDING);
    weft_cancel_token_release(t);
}
END_TEST

START_TEST(null_token_aborts)
{
    weft_cancel_token_cancel(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cancel");
    TCase *tc = tcase_create("token");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, cancel_sets_the_flag_once);
    tcase_add_test(tc, references);
    tcase_add_test(tc, allocation_failure);
    tcase_add_test(tc, drop_guard);
    suite_add_tcase(s, tc);
    tc = tcase_create("cancelled");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, cancelled_future_waits_then_completes);
    tcase_add_test(tc, dropped_future_is_not_woken);
    tcase_add_test(tc, cancel_wakes_many);
    suite_add_tcase(s, tc);
    tc = tcase_create("tree");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tree_parent_cancels_descendants);
    tcase_add_test(tc, child_of_cancelled_starts_cancelled);
    tcase_add_test(tc, dropped_children_leave_the_parent);
    tcase_add_test(tc, child_keeps_parent_alive);
    suite_add_tcase(s, tc);
    tc = tcase_create("tasks");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, tasks_woken_by_cancel_from_a_plain_thread, 0, N_SHAPES);
    tcase_add_loop_test(tc, waiting_task_dropped_by_shutdown, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    tc = tcase_create("misuse");
    tcase_set_timeout(tc, 30);
    ADD_ABORT_TEST(tc, release_with_a_waiter_aborts);
    ADD_ABORT_TEST(tc, null_token_aborts);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
