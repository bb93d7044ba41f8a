/* tests/testlib.h - helpers shared by the Check suites: the live-object
 * check, runtime builders for each shape, join helpers, chaos iteration
 * and seed settings, abort tests that need fork mode, the TAP runner, and
 * the checks for code that runs off the test thread (WEFT_TEST_CHECK and
 * ASSERT_NO_TEST_FAIL). The suites link the test library (WEFT_TEST_HOOKS),
 * so they see the live-object counters, chaos points and
 * allocation-failure injection. */
#ifndef WEFT_TESTLIB_H
#define WEFT_TESTLIB_H

#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
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
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_CANCEL_TOKEN), 0);                                \
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_MPSC), 0);                                        \
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_BROADCAST), 0);                                   \
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_WATCH), 0);                                       \
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_LOCAL_SET), 0);                                   \
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_UNORDERED), 0);                                   \
    } while (0)

/* ---- Failures off the test thread ---------------------------------------------
 * Check's ck_assert*, ck_abort* and fail_* may only be called on the test's
 * own thread, outside the runtime. Under CK_FORK=no (the valgrind run in
 * .ci/run) a failing assertion longjmps back into srunner_run_all: from a
 * worker, a blocking-pool thread or a pthread the test started, that jump
 * crosses threads and the run crashes or hangs instead of reporting; from
 * a future polled by block_on on the test thread, it skips the runtime's
 * exit path and leaves the thread marked as inside the runtime, so every
 * later test of the process fails for that reason.
 *
 * So code that the runtime or another thread runs -- a future's poll
 * function, a spawned task or block_on root's body, a blocking job, a
 * thread hook, the watchdog's report callback, a plain pthread -- checks
 * with WEFT_TEST_CHECK(expr), WEFT_TEST_CHECK_INT_EQ(x, y) or
 * WEFT_TEST_CHECK_MSG(expr, fmt, ...). On failure they record the first
 * failure (its message, file and line; later ones are only counted) and
 * evaluate to false, so the caller can stop what it was doing (return an
 * error from the job, WEFT_RETURN from the body) instead of going on with
 * a bad value. The test thread then calls ASSERT_NO_TEST_FAIL() once that
 * code has finished (the task joined, the runtime freed, the thread
 * joined): it fails the test with the first failure's message and clears
 * the record for the next test (one process runs them all under
 * CK_FORK=no). For example, in a task body:
 *
 *     if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn(&child, &self->h), 0))
 *         WEFT_RETURN(-1);
 *
 * and on the test thread, after the join: ASSERT_NO_TEST_FAIL(). */
typedef struct {
    atomic_int count;    /* failures so far */
    atomic_int recorded; /* 1 once file, line and what are written */
    const char *file;
    int line;
    char what[256];
} weft_test_failure_t;

static inline weft_test_failure_t *weft_test_failure(void)
{
    static weft_test_failure_t f;
    return &f;
}

/* Records one failure (a printf-style message and where it was found);
 * returns false. Any thread may call it. */
static inline bool weft_test_failv(const char *file, int line, const char *fmt, va_list ap)
{
    weft_test_failure_t *f = weft_test_failure();
    if (atomic_fetch_add(&f->count, 1) == 0) { /* the first failure writes the record */
        f->file = file;
        f->line = line;
        vsnprintf(f->what, sizeof f->what, fmt, ap);
        /* Publishes the record; pairs with the acquire load in
         * weft_test_failures_take. */
        atomic_store_explicit(&f->recorded, 1, memory_order_release);
    }
    return false;
}
__attribute__((format(printf, 3, 4))) static inline bool weft_test_fail(const char *file, int line,
                                                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    weft_test_failv(file, line, fmt, ap);
    va_end(ap);
    return false;
}

/* Returns ok; records a failure when it is false (the checks below). */
__attribute__((format(printf, 4, 5))) static inline bool weft_test_check_(bool ok, const char *file, int line,
                                                                          const char *fmt, ...)
{
    if (ok)
        return true;
    va_list ap;
    va_start(ap, fmt);
    weft_test_failv(file, line, fmt, ap);
    va_end(ap);
    return false;
}

#define WEFT_TEST_CHECK(expr) weft_test_check_((expr) ? true : false, __FILE__, __LINE__, "%s", #expr)
#define WEFT_TEST_CHECK_MSG(expr, ...) weft_test_check_((expr) ? true : false, __FILE__, __LINE__, __VA_ARGS__)
#define WEFT_TEST_CHECK_INT_EQ(x, y) weft_test_check_int_eq_((intmax_t)(x), (intmax_t)(y), #x, #y, __FILE__, __LINE__)
static inline bool weft_test_check_int_eq_(intmax_t x, intmax_t y, const char *xs, const char *ys, const char *file,
                                           int line)
{
    return weft_test_check_(x == y, file, line, "%s == %s (%jd vs %jd)", xs, ys, x, y);
}

/* Whether a failure has been recorded since the last take: lets a loop
 * that waits for work a failed check prevented stop waiting. */
static inline bool weft_test_failed(void)
{
    return atomic_load(&weft_test_failure()->count) != 0;
}

/* Takes the failures recorded so far: returns their count, writes the
 * first one ("file:line: what") to buf, and clears the record. Call it
 * only once every thread that may record has finished. */
static inline int weft_test_failures_take(char *buf, size_t len)
{
    weft_test_failure_t *f = weft_test_failure();
    int n = atomic_load(&f->count);
    buf[0] = '\0';
    if (n > 0 && atomic_load_explicit(&f->recorded, memory_order_acquire)) /* pairs with weft_test_failv's release */
        snprintf(buf, len, "%s:%d: %s", f->file, f->line, f->what);
    atomic_store(&f->recorded, 0);
    atomic_store(&f->count, 0);
    return n;
}

#define ASSERT_NO_TEST_FAIL()                                                                           \
    do {                                                                                                \
        char what_[512];                                                                                \
        int n_ = weft_test_failures_take(what_, sizeof what_);                                          \
        ck_assert_msg(n_ == 0, "%d check(s) failed off the test thread, the first at %s", n_, what_);   \
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

/* One step of waiting for a shape_rt runtime's tasks to make progress: a
 * current-thread runtime (shape 0) runs its tasks only inside block_on, so
 * drive it through one yield; the workers of the other shapes run them on
 * their own, so sleep 1 ms. */
static inline void let_tasks_run(weft_runtime_t *rt, int shape)
{
    if (shape == 0) {
        weft_yield_t y = weft_yield_now();
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&y), NULL), 0);
    } else {
        sleep_ms(1);
    }
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
/* The cooperative-budget check for a primitive whose waits can always be
 * ready: `greedy` is a future (output int) that waits on the primitive up
 * to 1000 times and returns the 1-based round at which it first saw
 * coop_sibling_ran set, or 0. Spawned on a current-thread runtime next to
 * a sibling task that sets the flag, it must give way within its budget:
 * the sibling runs in the middle, not before the first round nor after
 * the last (assert_coop_yields_within: a greedy future of `rounds`). */
static _Atomic int coop_sibling_ran;
static inline weft_poll_t coop_sibling_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx, (void)out;
    coop_sibling_ran = 1;
    return WEFT_READY;
}
static const weft_future_vtable_t coop_sibling_vt = { coop_sibling_poll, NULL, NULL, sizeof(weft_future_t), 0,
                                                      "coop_sibling" };
static inline void assert_coop_yields_within(weft_future_t *greedy, int rounds)
{
    coop_sibling_ran = 0;
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    weft_join_handle_t hg;
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), greedy, &hg, NULL, WEFT_SITE), 0);
    weft_future_t sib = { &coop_sibling_vt };
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), &sib, NULL, NULL, WEFT_SITE), 0);
    int saw = 0;
    ck_assert_int_eq(join_out(rt, &hg, &saw), 0);
    ck_assert_int_gt(saw, 0);
    ck_assert_int_lt(saw, rounds); /* the sibling ran in the middle */
    weft_runtime_free(rt);
}
static inline void assert_coop_yields(weft_future_t *greedy)
{
    assert_coop_yields_within(greedy, 1000);
}

/* A waker whose data is a counter: for polling a future by hand on the
 * test thread. wakes counts wake and wake_by_ref; clones and drops are
 * counted too (a wake by value is also a drop), so a test can see that
 * every clone a primitive took was dropped or woken. */
typedef struct {
    _Atomic int clones, wakes, drops;
} counter_t;
static const weft_waker_vtable_t counter_vt;
static inline weft_waker_t counter_clone(const void *d)
{
    ((counter_t *)(uintptr_t)d)->clones++;
    return (weft_waker_t){ &counter_vt, d };
}
static inline void counter_wake(const void *d)
{
    counter_t *c = (counter_t *)(uintptr_t)d;
    c->wakes++;
    c->drops++;
}
static inline void counter_wake_by_ref(const void *d)
{
    ((counter_t *)(uintptr_t)d)->wakes++;
}
static inline void counter_drop(const void *d)
{
    ((counter_t *)(uintptr_t)d)->drops++;
}
static const weft_waker_vtable_t counter_vt = { counter_clone, counter_wake, counter_wake_by_ref, counter_drop };
static inline weft_waker_t counter_waker(counter_t *c)
{
    return (weft_waker_t){ &counter_vt, c };
}

/* Runs fn in a child process, which must die of SIGABRT (weft_panic) with
 * `want` in what it wrote to stderr. Needs fork: guard with can_fork(). */
static inline void expect_panic(void (*fn)(void), const char *want)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        fn();
        _exit(0); /* not reached when fn panics */
    }
    close(p[1]);
    char buf[1024];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = 0;
    close(p[0]);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child did not abort: %s", buf);
    ck_assert_msg(strstr(buf, want) != NULL, "\"%s\" not in \"%s\"", want, buf);
}

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
