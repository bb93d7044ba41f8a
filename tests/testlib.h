/* tests/testlib.h - helpers shared by the Check suites. The suites link the
 * test library (WEFT_TEST_HOOKS), so they see the live-object counters,
 * chaos points and allocation-failure injection. */
#ifndef WEFT_TESTLIB_H
#define WEFT_TESTLIB_H

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>

#include "context.h"
#include "internal.h"

/* Every live-object counter must read 0 once every runtime is freed. */
#define ASSERT_NO_LIVE()                                                                              \
    do {                                                                                              \
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_TASK), 0);                                        \
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_FRAME), 0);                                       \
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_JOIN_HANDLE), 0);                                 \
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_ONESHOT), 0);                                     \
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_RUNTIME), 0);                                     \
    } while (0)

static inline weft_runtime_t *test_rt(weft_flavor_t flavor, unsigned workers)
{
    weft_builder_t b;
    weft_builder_init(&b, flavor);
    b.workers = workers;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    return rt;
}

/* The runtime shapes every scenario runs on: current-thread, 1 and 2 workers. */
#define N_SHAPES 3
static inline weft_runtime_t *shape_rt(int shape)
{
    return shape == 0 ? test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1) : test_rt(WEFT_RUNTIME_MULTI_THREAD, (unsigned)shape);
}

/* Awaits a join handle from outside the runtime; returns the join's
 * result (0, or the task's error); the output goes to out. */
static inline int join_out(weft_runtime_t *rt, weft_join_handle_t *h, void *out)
{
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, weft_join(h, out), &rc), 0);
    return rc;
}

/* Spawns fut on rt and awaits it from this thread (see join_out). */
static inline int spawn_and_wait(weft_runtime_t *rt, weft_future_t *fut, void *out)
{
    weft_join_handle_t h;
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), fut, &h, NULL, WEFT_SITE), 0);
    return join_out(rt, &h, out);
}

static inline void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Iterations of a seeded chaos scenario: WEFT_CHAOS_ITERS, else `dflt`. */
static inline int chaos_iters(int dflt)
{
    const char *e = getenv("WEFT_CHAOS_ITERS");
    return e ? atoi(e) : dflt;
}
/* The first seed: WEFT_CHAOS_SEED replays one failure. */
static inline uint64_t chaos_seed0(void)
{
    const char *e = getenv("WEFT_CHAOS_SEED");
    return e ? strtoull(e, NULL, 0) : 1;
}

/* Tests that expect an abort need Check's fork mode; without it (CK_FORK=no,
 * as under valgrind) they are left out rather than kill the run. */
static inline bool can_fork(void)
{
    const char *e = getenv("CK_FORK");
    return e == NULL || strcmp(e, "no") != 0;
}
#define ADD_ABORT_TEST(tc, fn)                          \
    do {                                                \
        if (can_fork())                                 \
            tcase_add_test_raise_signal(tc, fn, SIGABRT); \
    } while (0)

/* Runs the suite with TAP on stdout; the exit status says if all passed. */
static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
