/* tests/test_future.c - futures, wakers and the async macros, polled by
 * hand with a counting waker (no runtime needed): the async state machine,
 * drops mid-await, misuse aborts, leaf futures, join2 and join_all, and
 * the error names. */
#include "testlib.h"

/* ---- A counting waker -------------------------------------------------- */
static _Atomic int wakes, waker_refs;
static weft_waker_t cw_clone(const void *d);
static void cw_wake_by_ref(const void *d) { (void)d; wakes++; }
static void cw_drop(const void *d) { (void)d; waker_refs--; }
static void cw_wake(const void *d) { cw_wake_by_ref(d); cw_drop(d); }
static const weft_waker_vtable_t cw_vt = { cw_clone, cw_wake, cw_wake_by_ref, cw_drop };
static weft_waker_t cw_clone(const void *d) { waker_refs++; return (weft_waker_t){ &cw_vt, d }; }
static weft_waker_t cw = { &cw_vt, NULL };

/* ---- A manual leaf future: ready once `gate` is open ---------------------------- */
typedef struct {
    weft_future_t future;
    int *gate;
    int value;
    weft_waker_t waker;
    int *drops;
} gate_t;
static weft_poll_t gate_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    gate_t *g = (gate_t *)(void *)f;
    if (*g->gate) {
        if (out)
            *(int *)out = g->value;
        return WEFT_READY;
    }
    weft_waker_drop(&g->waker);
    g->waker = weft_waker_clone(cx->waker);
    return WEFT_PENDING;
}
static void gate_drop(weft_future_t *f)
{
    gate_t *g = (gate_t *)(void *)f;
    weft_waker_drop(&g->waker);
    (*g->drops)++;
}
static const weft_future_vtable_t gate_vt = { gate_poll, gate_drop, NULL, sizeof(gate_t), sizeof(int), "gate" };
WEFT_NODISCARD static gate_t gate(int *open, int value, int *drops)
{
    return (gate_t){ { &gate_vt }, open, value, { NULL, NULL }, drops };
}

/* ---- An async function with two awaits on one line and one in a loop -------- */
typedef struct {
    WEFT_FRAME;
    int *open, *drops;
    int a, b, sum, i;
    gate_t g1, g2;
    weft_yield_t y;
} adder_t;

WEFT_ASYNC(adder_t, adder, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->g1, gate(self->open, 20, self->drops), &self->a); WEFT_AWAIT(&self->g2, gate(self->open, 22, self->drops), &self->b);
    self->sum = self->a + self->b;
    for (self->i = 0; self->i < 3; self->i++)
        WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    WEFT_YIELD();
    WEFT_RETURN(self->sum);
    WEFT_END();
}
WEFT_NODISCARD static adder_t adder(int *open, int *drops)
{
    return (adder_t){ WEFT_FRAME_INIT(adder), .open = open, .drops = drops };
}

START_TEST(async_fn_runs_as_state_machine)
{
    int open = 0, drops = 0, out = -1;
    wakes = 0;
    adder_t a = adder(&open, &drops);
    weft_context_t cx = { &cw };
    /* Nothing happens until polled, and a closed gate parks it. */
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&a), &cx, &out), WEFT_PENDING);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&a), &cx, &out), WEFT_PENDING);
    ck_assert_int_eq(out, -1);
    open = 1;
    /* Both gates, then 3 yields and one WEFT_YIELD: 4 more pendings. */
    int pendings = 0;
    while (weft_future_poll(WEFT_FUTURE(&a), &cx, &out) == WEFT_PENDING)
        pendings++;
    ck_assert_int_eq(pendings, 4);
    ck_assert_int_eq(wakes, 4); /* each yield woke the task first */
    ck_assert_int_eq(out, 42);
    ck_assert_int_eq(drops, 2); /* each awaited child dropped once it was ready */
    weft_future_drop(WEFT_FUTURE(&a));
    ck_assert_int_eq(drops, 2);
    ck_assert_int_eq(waker_refs, 0); /* every waker clone was dropped */
}
END_TEST

START_TEST(drop_mid_await_drops_child)
{
    int open = 0, drops = 0;
    adder_t a = adder(&open, &drops);
    weft_context_t cx = { &cw };
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&a), &cx, NULL), WEFT_PENDING);
    ck_assert_int_eq(waker_refs, 1); /* the gate holds a clone */
    weft_future_drop(WEFT_FUTURE(&a)); /* cancellation is dropping */
    ck_assert_int_eq(drops, 1);
    ck_assert_int_eq(waker_refs, 0);
}
END_TEST

START_TEST(poll_after_completion_aborts)
{
    int open = 1, drops = 0, out;
    adder_t a = adder(&open, &drops);
    weft_context_t cx = { &cw };
    while (weft_future_poll(WEFT_FUTURE(&a), &cx, &out) == WEFT_PENDING)
        ;
    (void)weft_future_poll(WEFT_FUTURE(&a), &cx, &out); /* misuse: aborts */
}
END_TEST

typedef struct {
    WEFT_FRAME;
} noreturn_t;
WEFT_ASYNC(noreturn_t, noreturn_fn, int)
{
    WEFT_BEGIN();
    WEFT_END();
}

START_TEST(falling_off_the_end_aborts)
{
    noreturn_t n = { WEFT_FRAME_INIT(noreturn_fn) };
    weft_context_t cx = { &cw };
    (void)weft_future_poll(WEFT_FUTURE(&n), &cx, NULL);
}
END_TEST

/* Cleanup hook of WEFT_ASYNC_WITH_DROP runs whether or not the frame finished. */
typedef struct {
    WEFT_FRAME;
    int *cleaned;
    weft_pending_t p;
} holder_t;
static void holder_cleanup(holder_t *h) { (*h->cleaned)++; }
WEFT_ASYNC_WITH_DROP(holder_t, holder, weft_unit_t, holder_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->p, weft_pending(), NULL);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(async_cleanup_runs_on_drop)
{
    int cleaned = 0;
    holder_t h = { WEFT_FRAME_INIT(holder), .cleaned = &cleaned };
    weft_context_t cx = { &cw };
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&h), &cx, NULL), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&h));
    ck_assert_int_eq(cleaned, 1);
    ck_assert_uint_eq(holder__vtable.out_size, 0); /* unit output takes no room */
    ck_assert_uint_eq(adder__vtable.out_size, sizeof(int));
}
END_TEST

START_TEST(leaf_futures)
{
    weft_context_t cx = { &cw };
    weft_ready_t r = weft_ready(7);
    intptr_t v = 0;
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&r), &cx, &v), WEFT_READY);
    ck_assert_int_eq(v, 7);
    weft_pending_t p = weft_pending();
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&p), &cx, NULL), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&p));
    wakes = 0;
    weft_yield_t y = weft_yield_now();
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&y), &cx, NULL), WEFT_PENDING);
    ck_assert_int_eq(wakes, 1);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&y), &cx, NULL), WEFT_READY);
    weft_waker_t n = weft_waker_noop();
    weft_waker_t n2 = weft_waker_clone(&n);
    ck_assert(weft_waker_will_wake(&n, &n2));
    weft_waker_wake(&n2);
    ck_assert_ptr_null(n2.vtable);
}
END_TEST

START_TEST(join2_polls_both_and_drops_each)
{
    int open_a = 0, open_b = 0, drops = 0, ra = 0, rb = 0;
    gate_t a = gate(&open_a, 1, &drops), b = gate(&open_b, 2, &drops);
    weft_join2_t j = weft_join2(WEFT_FUTURE(&a), &ra, WEFT_FUTURE(&b), &rb);
    weft_context_t cx = { &cw };
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&j), &cx, NULL), WEFT_PENDING);
    open_b = 1;
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&j), &cx, NULL), WEFT_PENDING);
    ck_assert_int_eq(rb, 2);
    ck_assert_int_eq(drops, 1); /* b finished and was dropped at once */
    open_a = 1;
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&j), &cx, NULL), WEFT_READY);
    ck_assert_int_eq(ra, 1);
    ck_assert_int_eq(drops, 2);
    weft_future_drop(WEFT_FUTURE(&j));
    ck_assert_int_eq(drops, 2);
    ck_assert_int_eq(waker_refs, 0);
}
END_TEST

START_TEST(join_all_drop_cancels_unfinished)
{
    int open[4] = { 1, 0, 1, 0 }, drops = 0, out[4] = { 0 };
    gate_t g[4];
    weft_future_t *futs[4];
    void *outs[4];
    for (int i = 0; i < 4; i++) {
        g[i] = gate(&open[i], 10 + i, &drops);
        futs[i] = WEFT_FUTURE(&g[i]);
        outs[i] = &out[i];
    }
    weft_join_all_t j = weft_join_all(futs, outs, 4);
    weft_context_t cx = { &cw };
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&j), &cx, NULL), WEFT_PENDING);
    ck_assert_int_eq(out[0], 10);
    ck_assert_int_eq(out[2], 12);
    ck_assert_int_eq(drops, 2);
    weft_future_drop(WEFT_FUTURE(&j)); /* the two pending children are dropped */
    ck_assert_int_eq(drops, 4);
    ck_assert_int_eq(waker_refs, 0);
}
END_TEST

START_TEST(errors_have_names)
{
    ck_assert_str_eq(weft_err_name(WEFT_ENOMEM), "ENOMEM");
    ck_assert_str_eq(weft_strerror(WEFT_ECANCELED), "operation canceled");
    ck_assert_str_eq(weft_err_name(-99999), "UNKNOWN");
    ck_assert_str_eq(weft_strerror(-99999), "unknown error");
    ck_assert_int_eq(WEFT_EAGAIN, -EAGAIN);
    ck_assert_str_eq(weft_version(), "0.1.0");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("future");
    TCase *tc = tcase_create("macros");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, async_fn_runs_as_state_machine);
    tcase_add_test(tc, drop_mid_await_drops_child);
    ADD_ABORT_TEST(tc, poll_after_completion_aborts);
    ADD_ABORT_TEST(tc, falling_off_the_end_aborts);
    tcase_add_test(tc, async_cleanup_runs_on_drop);
    suite_add_tcase(s, tc);
    tc = tcase_create("leaf");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, leaf_futures);
    tcase_add_test(tc, errors_have_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("join");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, join2_polls_both_and_drops_each);
    tcase_add_test(tc, join_all_drop_cancels_unfinished);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
