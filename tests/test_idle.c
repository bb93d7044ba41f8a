/* tests/test_idle.c - the idle list's wake rules (runtime/idle.c), on a
 * scheduler built by hand: two workers, no threads, so each step and its
 * effect on the list can be checked exactly. */
#include "scheduler.h"
#include "testlib.h"

static weft__sched_t s;
static weft__worker_t workers[2];
static weft_task_t task;

static void setup(void)
{
    memset(&s, 0, sizeof s);
    memset(workers, 0, sizeof workers);
    memset(&task, 0, sizeof task);
    s.flavor = WEFT_RUNTIME_MULTI_THREAD;
    s.nworkers = 2;
    s.workers = workers;
    for (unsigned i = 0; i < 2; i++) {
        workers[i].index = i;
        workers[i].sched = &s;
        weft__queue_init(&workers[i].queue);
        weft__parker_init(&workers[i].parker);
    }
    weft__inject_init(&s.inject);
    weft__inject_init(&s.woken);
    ck_assert_int_eq(weft__idle_init(&s.idle, 2), 0);
}

static void teardown(void)
{
    weft__idle_free(&s.idle);
    weft__inject_destroy(&s.inject);
    weft__inject_destroy(&s.woken);
}

static unsigned searching(void)
{
    return atomic_load(&s.idle.state) & 0xffffu;
}

/* Worker 1 sleeps; worker 0 searched, found nothing to steal, and took a
 * socket event of its own on its way to parking. With nothing else
 * waiting, it stops searching and worker 1 sleeps on: waking it would only
 * have it find nothing and park again. */
START_TEST(own_work_alone_wakes_nobody)
{
    weft__idle_park(&s, &workers[1]);
    ck_assert(weft__idle_try_search(&s, &workers[0]));
    ck_assert_uint_eq(searching(), 1);
    weft__idle_found_own_work(&s, &workers[0], false);
    ck_assert(!workers[0].searching);
    ck_assert_uint_eq(searching(), 0);
    ck_assert(weft__idle_is_sleeping(&s, &workers[1]));
    ck_assert(!weft__park_timeout(&workers[1].parker, 0)); /* no permit left for it */
}
END_TEST

/* The same, with a task in the inject queue that a producer pushed while
 * worker 0 searched (its notify skipped: a searcher was counted). Worker 0
 * hands the search on: worker 1 is woken, counted as searching. */
START_TEST(own_work_with_remote_work_wakes_one)
{
    weft__idle_park(&s, &workers[1]);
    ck_assert(weft__idle_try_search(&s, &workers[0]));
    ck_assert(weft__inject_push_batch(&s.inject, &task, &task, 1));
    weft__idle_notify_one(&s); /* the producer's: skipped, worker 0 searches */
    ck_assert(weft__idle_is_sleeping(&s, &workers[1]));
    weft__idle_found_own_work(&s, &workers[0], false);
    ck_assert(!workers[0].searching);
    ck_assert(!weft__idle_is_sleeping(&s, &workers[1]));
    ck_assert_uint_eq(searching(), 1);
    ck_assert(weft__park_timeout(&workers[1].parker, 0)); /* the permit it was given */
    weft_task_t *out[1];
    ck_assert_uint_eq(weft__inject_pop(&s.inject, out, 1), 1);
    ck_assert_ptr_eq(out[0], &task);
}
END_TEST

/* A second task of its own (its socket events woke two: one in the LIFO
 * slot, one in its queue) is work for a sibling too. */
START_TEST(own_work_with_queued_task_wakes_one)
{
    weft__idle_park(&s, &workers[1]);
    ck_assert(weft__idle_try_search(&s, &workers[0]));
    weft__queue_push_back_spmc(&workers[0].queue, &task, &s.inject);
    weft__idle_found_own_work(&s, &workers[0], false);
    ck_assert(!weft__idle_is_sleeping(&s, &workers[1]));
    ck_assert_ptr_eq(weft__queue_pop_spmc(&workers[0].queue), &task);
}
END_TEST

/* Alone, but with timers pending and nobody asleep in the driver to fire
 * them while worker 0 runs what it woke: worker 1 is woken to go there. */
START_TEST(own_work_with_timers_waiting_wakes_one)
{
    weft__idle_park(&s, &workers[1]);
    ck_assert(weft__idle_try_search(&s, &workers[0]));
    weft__idle_found_own_work(&s, &workers[0], true);
    ck_assert(!workers[0].searching);
    ck_assert(!weft__idle_is_sleeping(&s, &workers[1]));
    ck_assert(weft__park_timeout(&workers[1].parker, 0));
}
END_TEST

/* No worker parked: nothing to wake, whatever waits (the next worker to
 * park looks at every queue first). */
START_TEST(own_work_with_nobody_parked_wakes_nobody)
{
    ck_assert(weft__idle_try_search(&s, &workers[0]));
    ck_assert(weft__inject_push_batch(&s.inject, &task, &task, 1));
    weft__idle_found_own_work(&s, &workers[0], true);
    ck_assert(!workers[0].searching);
    ck_assert_uint_eq(searching(), 0);
    ck_assert(!weft__park_timeout(&workers[0].parker, 0));
    ck_assert(!weft__park_timeout(&workers[1].parker, 0));
    weft_task_t *out[1];
    ck_assert_uint_eq(weft__inject_pop(&s.inject, out, 1), 1);
}
END_TEST

/* A worker that was not searching has no search to end or hand on: it
 * leaves the idle state and the sleepers alone, even with work queued
 * (whoever queued it found no searcher counted, and notified). */
START_TEST(own_work_without_search_changes_nothing)
{
    weft__idle_park(&s, &workers[1]);
    ck_assert(weft__inject_push_batch(&s.inject, &task, &task, 1));
    uint32_t before = atomic_load(&s.idle.state);
    weft__idle_found_own_work(&s, &workers[0], false);
    ck_assert_uint_eq(atomic_load(&s.idle.state), before);
    ck_assert(weft__idle_is_sleeping(&s, &workers[1]));
    weft_task_t *out[1];
    ck_assert_uint_eq(weft__inject_pop(&s.inject, out, 1), 1);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("idle");
    TCase *tc = tcase_create("found_own_work");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, own_work_alone_wakes_nobody);
    tcase_add_test(tc, own_work_with_remote_work_wakes_one);
    tcase_add_test(tc, own_work_with_queued_task_wakes_one);
    tcase_add_test(tc, own_work_with_timers_waiting_wakes_one);
    tcase_add_test(tc, own_work_with_nobody_parked_wakes_nobody);
    tcase_add_test(tc, own_work_without_search_changes_nothing);
    suite_add_tcase(su, tc);
    return run_suite(su);
}
