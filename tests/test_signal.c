/* tests/test_signal.c - signals on a runtime: one SIGUSR1 wakes every task
 * waiting for it, on every runtime shape, and bad signal numbers are
 * errors. */
#include "testlib.h"

typedef struct {
    WEFT_FRAME;
    int rc;
    weft_signal_t sig;
} sigwait_t;
WEFT_ASYNC(sigwait_t, sigwait_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->sig, weft_signal_recv(SIGUSR1), &self->rc);
    WEFT_RETURN(self->rc);
    WEFT_END();
}

START_TEST(signal_wakes_every_waiter)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_join_handle_t h[3];
    for (int i = 0; i < 3; i++) {
        sigwait_t w = { WEFT_FRAME_INIT(sigwait_fn) };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &w, &h[i]), 0);
    }
    if (_i == 0) {
        weft_sleep_t s = weft_sleep_ms(20); /* current-thread: let them register */
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&s), NULL), 0);
    } else {
        sleep_ms(50);
    }
    ck_assert_int_eq(raise(SIGUSR1), 0); /* caught: the process lives on */
    for (int i = 0; i < 3; i++) {
        int out = -1, rc = -1;
        ck_assert_int_eq(weft_runtime_block_on(rt, weft_join(&h[i], &out), &rc), 0);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(out, 0);
    }
    /* Bad numbers are errors, not crashes. */
    weft_signal_t bad = weft_signal_recv(SIGKILL);
    int rc = 0;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&bad), &rc), 0);
    ck_assert_int_eq(rc, WEFT_EINVAL);
    bad = weft_signal_recv(1000);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&bad), &rc), 0);
    ck_assert_int_eq(rc, WEFT_EINVAL);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* weft_signal_arm does the first poll's work at once: a signal raised
 * after it and before the first poll completes the future (unarmed,
 * SIGUSR2's default action would end the process). */
typedef struct {
    WEFT_FRAME;
    int armed, bad, rc;
    weft_signal_t sig, kill;
} armwait_t;
WEFT_ASYNC(armwait_t, armwait_fn, int)
{
    WEFT_BEGIN();
    self->sig = weft_signal_recv(SIGUSR2);
    self->armed = weft_signal_arm(&self->sig);
    if (self->armed != 0)
        WEFT_RETURN(self->armed);
    WEFT_TEST_CHECK_INT_EQ(weft_signal_arm(&self->sig), 0); /* idempotent */
    WEFT_TEST_CHECK_INT_EQ(raise(SIGUSR2), 0);              /* before the first poll: counted, not fatal */
    WEFT_AWAIT_REF(&self->sig, &self->rc);
    /* A number that cannot be caught: the arm's error, and the poll's. */
    self->kill = weft_signal_recv(SIGKILL);
    self->bad = weft_signal_arm(&self->kill);
    WEFT_TEST_CHECK_INT_EQ(self->bad, WEFT_EINVAL);
    WEFT_AWAIT_REF(&self->kill, &self->bad);
    WEFT_TEST_CHECK_INT_EQ(self->bad, WEFT_EINVAL);
    WEFT_RETURN(self->rc);
    WEFT_END();
}

START_TEST(arm_counts_signals_before_the_first_poll)
{
    weft_signal_t outside = weft_signal_recv(SIGUSR2);
    ck_assert_int_eq(weft_signal_arm(&outside), WEFT_ENOSYS); /* no runtime on this thread */
    weft_future_drop(WEFT_FUTURE(&outside));
    weft_runtime_t *rt = shape_rt(_i);
    armwait_t w = { WEFT_FRAME_INIT(armwait_fn) };
    int out = -1;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&w), &out), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(out, 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("signal");
    TCase *tc = tcase_create("signal");
    tcase_set_timeout(tc, 60);
    /* It changes SIGUSR1's disposition for the process: fork mode only. */
    if (can_fork())
        tcase_add_loop_test(tc, signal_wakes_every_waiter, 0, N_SHAPES);
    if (can_fork())
        tcase_add_loop_test(tc, arm_counts_signals_before_the_first_poll, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
