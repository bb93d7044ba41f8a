/* tests/locktest.h - helpers of the lock suites (test_semaphore.c,
 * test_mutex.c, test_rwlock.c, test_stress_locks.c): a waker that counts
 * its wakes, for polling lock futures by hand on the test thread, and a
 * task that runs a lock scenario's body. */
#ifndef WEFT_LOCKTEST_H
#define WEFT_LOCKTEST_H

#include <sys/wait.h>

#include "testlib.h"

/* A waker whose data is a counter: wake adds one; clones and drops are
 * counted too, so a test can see that every clone was dropped. */
typedef struct {
    _Atomic int wakes, clones, drops;
} counter_waker_t;

static const weft_waker_vtable_t counter_vt;
static weft_waker_t counter_clone(const void *d)
{
    counter_waker_t *c = (counter_waker_t *)(uintptr_t)d;
    c->clones++;
    return (weft_waker_t){ &counter_vt, d };
}
static void counter_wake(const void *d)
{
    counter_waker_t *c = (counter_waker_t *)(uintptr_t)d;
    c->wakes++;
    c->drops++;
}
static void counter_wake_by_ref(const void *d)
{
    ((counter_waker_t *)(uintptr_t)d)->wakes++;
}
static void counter_drop(const void *d)
{
    ((counter_waker_t *)(uintptr_t)d)->drops++;
}
static const weft_waker_vtable_t counter_vt = { counter_clone, counter_wake, counter_wake_by_ref, counter_drop };

/* A waiter polled by hand: its counting waker and a context. */
typedef struct {
    counter_waker_t c;
    weft_waker_t w;
    weft_context_t cx;
} hand_t;
static inline void hand_init(hand_t *h)
{
    memset(h, 0, sizeof *h);
    h->w = (weft_waker_t){ &counter_vt, &h->c };
    h->cx.waker = &h->w;
}
/* Every clone the primitive took was dropped or woken (by value). */
#define ASSERT_HAND_BALANCED(h) ck_assert_int_eq((h)->c.clones, (h)->c.drops)

static inline weft_poll_t hand_poll(hand_t *h, void *fut, void *out)
{
    return weft_future_poll(WEFT_FUTURE(fut), &h->cx, out);
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

#endif
