/* tests/test_oncecell.c - the once cell: init bounds and allocation
 * failure, set and get, the drop callback at destroy, get_or_init by hand
 * (one initialiser, the others wait and never poll their init futures;
 * set while initialising; the initialiser dropped -> the next waiter
 * initialises; each init future dropped exactly once; a NULL output),
 * misuse aborts, and tasks on every runtime shape: one initialiser under
 * contention, an aborted initialiser, shutdown. */
#include "locktest.h"

/* An init future of the tests: output int. Pending `pend` polls (waking
 * its task each time, like a yield), then ready with `value`; pend < 0:
 * pending for good, without waking (parks its task until dropped). The
 * counters are shared and atomic: tasks of any thread poll and drop it. */
typedef struct {
    _Atomic int runs, polls, drops;
} mk_counts_t;
typedef struct {
    weft_future_t future;
    mk_counts_t *cnt;
    int value, pend;
    bool started;
} mk_t;
static weft_poll_t mk_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    mk_t *m = (mk_t *)(void *)f;
    m->cnt->polls++;
    if (!m->started) {
        m->started = true;
        m->cnt->runs++;
    }
    if (m->pend < 0)
        return WEFT_PENDING;
    if (m->pend > 0) {
        m->pend--;
        weft_waker_wake_by_ref(cx->waker);
        return WEFT_PENDING;
    }
    *(int *)out = m->value;
    return WEFT_READY;
}
static void mk_drop(weft_future_t *f)
{
    ((mk_t *)(void *)f)->cnt->drops++;
}
static const weft_future_vtable_t mk_vt = { mk_poll, mk_drop, NULL, sizeof(mk_t), sizeof(int), "mk" };
static mk_t mk(mk_counts_t *c, int value, int pend)
{
    mk_t m = { { &mk_vt }, c, value, pend, false };
    return m;
}

static _Atomic int dropped_value, drop_calls;
static void value_drop(void *v)
{
    drop_calls++;
    dropped_value = *(int *)v;
}

START_TEST(init_set_get_destroy)
{
    weft_oncecell_t c;
    ck_assert_int_eq(weft_oncecell_init(&c, 0, NULL), WEFT_EINVAL);
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_oncecell_init(&c, sizeof(int), NULL), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);

    drop_calls = 0;
    ck_assert_int_eq(weft_oncecell_init(&c, sizeof(int), value_drop), 0);
    ck_assert_ptr_null(weft_oncecell_get(&c));
    ck_assert(!weft_oncecell_is_set(&c));
    int v = 42;
    ck_assert_int_eq(weft_oncecell_set(&c, &v), 0);
    v = 7;
    ck_assert_int_eq(weft_oncecell_set(&c, &v), WEFT_EBUSY); /* keeps 42 */
    ck_assert(weft_oncecell_is_set(&c));
    int *p = weft_oncecell_get(&c);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(*p, 42);
    ck_assert_ptr_eq(weft_oncecell_get(&c), p); /* stable */
    weft_oncecell_destroy(&c);
    ck_assert_int_eq(drop_calls, 1);
    ck_assert_int_eq(dropped_value, 42);

    /* Never set: no drop call. A NULL callback with a set value: fine. */
    ck_assert_int_eq(weft_oncecell_init(&c, sizeof(int), value_drop), 0);
    weft_oncecell_destroy(&c);
    ck_assert_int_eq(drop_calls, 1);
    ck_assert_int_eq(weft_oncecell_init(&c, sizeof(int), NULL), 0);
    ck_assert_int_eq(weft_oncecell_set(&c, &v), 0);
    weft_oncecell_destroy(&c);
    ASSERT_NO_LIVE();
}
END_TEST

/* A set cell: get_or_init completes at once and drops its init future
 * unpolled. Dropped unpolled, a get_or_init drops its init future too. */
START_TEST(get_or_init_when_set)
{
    weft_oncecell_t c;
    ck_assert_int_eq(weft_oncecell_init(&c, sizeof(int), NULL), 0);
    mk_counts_t cnt = { 0 };
    mk_t m = mk(&cnt, 1, 0);
    weft_oncecell_get_or_init_t g = weft_oncecell_get_or_init(&c, WEFT_FUTURE(&m));
    weft_future_drop(WEFT_FUTURE(&g));
    ck_assert_int_eq(cnt.drops, 1);
    ck_assert_int_eq(cnt.polls, 0);

    int v = 5;
    ck_assert_int_eq(weft_oncecell_set(&c, &v), 0);
    hand_t h;
    hand_init(&h);
    m = mk(&cnt, 1, 0);
    g = weft_oncecell_get_or_init(&c, WEFT_FUTURE(&m));
    void *out = NULL;
    ck_assert_int_eq(hand_poll(&h, &g, &out), WEFT_READY);
    ck_assert_ptr_eq(out, weft_oncecell_get(&c));
    ck_assert_int_eq(*(int *)out, 5);
    ck_assert_int_eq(cnt.drops, 2); /* dropped at completion */
    weft_future_drop(WEFT_FUTURE(&g));
    ck_assert_int_eq(cnt.drops, 2); /* and only once */
    ck_assert_int_eq(cnt.polls, 0);
    ck_assert_int_eq(h.c.clones, 0);
    weft_oncecell_destroy(&c);
    ASSERT_NO_LIVE();
}
END_TEST

/* One initialiser; the others wait, never poll their init futures, and
 * complete with the value when it is stored; set says EAGAIN meanwhile. */
START_TEST(one_initialiser_others_wait)
{
    weft_oncecell_t c;
    ck_assert_int_eq(weft_oncecell_init(&c, sizeof(int), NULL), 0);
    mk_counts_t c1 = { 0 }, c2 = { 0 }, c3 = { 0 };
    mk_t m1 = mk(&c1, 11, 2), m2 = mk(&c2, 22, 0), m3 = mk(&c3, 33, 0);
    hand_t h1, h2, h3;
    hand_init(&h1);
    hand_init(&h2);
    hand_init(&h3);
    void *o1 = NULL, *o2 = NULL;
    weft_oncecell_get_or_init_t g1 = weft_oncecell_get_or_init(&c, WEFT_FUTURE(&m1));
    weft_oncecell_get_or_init_t g2 = weft_oncecell_get_or_init(&c, WEFT_FUTURE(&m2));
    weft_oncecell_get_or_init_t g3 = weft_oncecell_get_or_init(&c, WEFT_FUTURE(&m3));
    ck_assert_int_eq(hand_poll(&h1, &g1, &o1), WEFT_PENDING); /* initialises: m1 pending */
    ck_assert_int_eq(c1.runs, 1);
    ck_assert_int_eq(hand_poll(&h2, &g2, &o2), WEFT_PENDING); /* waits */
    ck_assert_int_eq(hand_poll(&h3, &g3, NULL), WEFT_PENDING);
    int v = 99;
    ck_assert_int_eq(weft_oncecell_set(&c, &v), WEFT_EAGAIN);
    ck_assert_ptr_null(weft_oncecell_get(&c));
    ck_assert_int_eq(hand_poll(&h1, &g1, &o1), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h1, &g1, &o1), WEFT_READY); /* m1 done */
    ck_assert_int_eq(*(int *)o1, 11);
    ck_assert_int_eq(c1.drops, 1);
    ck_assert_int_eq(h2.c.wakes, 1);
    ck_assert_int_eq(h3.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&h2, &g2, &o2), WEFT_READY);
    ck_assert_ptr_eq(o2, o1);
    ck_assert_int_eq(hand_poll(&h3, &g3, NULL), WEFT_READY); /* a NULL output is fine */
    ck_assert_int_eq(c2.polls + c3.polls, 0);
    ck_assert_int_eq(c2.drops, 1);
    ck_assert_int_eq(c3.drops, 1);
    weft_future_drop(WEFT_FUTURE(&g1));
    weft_future_drop(WEFT_FUTURE(&g2));
    weft_future_drop(WEFT_FUTURE(&g3));
    ck_assert_int_eq(c1.drops + c2.drops + c3.drops, 3);
    ck_assert_int_eq(weft_oncecell_set(&c, &v), WEFT_EBUSY);
    ASSERT_HAND_BALANCED(&h2);
    ASSERT_HAND_BALANCED(&h3);
    weft_oncecell_destroy(&c);
    ASSERT_NO_LIVE();
}
END_TEST

/* The initialiser dropped mid-init: its init future is dropped, the cell
 * stays empty, and the next waiter initialises with its own. Dropped
 * while waiting: it leaves the queue and nothing else changes. */
START_TEST(dropped_initialiser_hands_over)
{
    weft_oncecell_t c;
    ck_assert_int_eq(weft_oncecell_init(&c, sizeof(int), NULL), 0);
    mk_counts_t c1 = { 0 }, c2 = { 0 }, c3 = { 0 };
    mk_t m1 = mk(&c1, 11, -1), m2 = mk(&c2, 22, -1), m3 = mk(&c3, 33, 0);
    hand_t h1, h2, h3;
    hand_init(&h1);
    hand_init(&h2);
    hand_init(&h3);
    void *o3 = NULL;
    weft_oncecell_get_or_init_t g1 = weft_oncecell_get_or_init(&c, WEFT_FUTURE(&m1));
    weft_oncecell_get_or_init_t g2 = weft_oncecell_get_or_init(&c, WEFT_FUTURE(&m2));
    weft_oncecell_get_or_init_t g3 = weft_oncecell_get_or_init(&c, WEFT_FUTURE(&m3));
    ck_assert_int_eq(hand_poll(&h1, &g1, NULL), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h2, &g2, NULL), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h3, &g3, &o3), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&g1)); /* aborted initialiser */
    ck_assert_int_eq(c1.drops, 1);
    ck_assert_ptr_null(weft_oncecell_get(&c));
    ck_assert_int_eq(h2.c.wakes, 1); /* g2 holds the right now */
    ck_assert_int_eq(h3.c.wakes, 0);
    ck_assert_int_eq(hand_poll(&h2, &g2, NULL), WEFT_PENDING); /* m2 runs, parks */
    ck_assert_int_eq(c2.runs, 1);
    weft_future_drop(WEFT_FUTURE(&g2)); /* aborted again */
    ck_assert_int_eq(c2.drops, 1);
    ck_assert_int_eq(h3.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&h3, &g3, &o3), WEFT_READY); /* m3 initialises */
    ck_assert_int_eq(*(int *)o3, 33);
    ck_assert_int_eq(c3.runs, 1);
    ck_assert_int_eq(c3.drops, 1);
    weft_future_drop(WEFT_FUTURE(&g3));
    ck_assert_int_eq(c1.drops + c2.drops + c3.drops, 3);
    ASSERT_HAND_BALANCED(&h1);
    ASSERT_HAND_BALANCED(&h2);
    ASSERT_HAND_BALANCED(&h3);

    /* A waiter (not the initialiser) dropped: the initialiser goes on. */
    weft_oncecell_t d;
    ck_assert_int_eq(weft_oncecell_init(&d, sizeof(int), NULL), 0);
    mk_counts_t c4 = { 0 }, c5 = { 0 };
    mk_t m4 = mk(&c4, 44, 1), m5 = mk(&c5, 55, 0);
    weft_oncecell_get_or_init_t g4 = weft_oncecell_get_or_init(&d, WEFT_FUTURE(&m4));
    weft_oncecell_get_or_init_t g5 = weft_oncecell_get_or_init(&d, WEFT_FUTURE(&m5));
    ck_assert_int_eq(hand_poll(&h1, &g4, NULL), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&h2, &g5, NULL), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&g5));
    ck_assert_int_eq(c5.drops, 1);
    ck_assert_int_eq(c5.polls, 0);
    ck_assert_int_eq(hand_poll(&h1, &g4, NULL), WEFT_READY);
    ck_assert_int_eq(*(int *)weft_oncecell_get(&d), 44);
    weft_future_drop(WEFT_FUTURE(&g4));
    weft_oncecell_destroy(&d);
    weft_oncecell_destroy(&c);
    ASSERT_NO_LIVE();
}
END_TEST

/* set wins when nobody initialises; waiters that arrive later complete at
 * once. The value is copied: the caller's buffer may change afterwards. */
START_TEST(set_copies_by_size)
{
    typedef struct {
        long a;
        char s[24];
    } big_t;
    weft_oncecell_t c;
    ck_assert_int_eq(weft_oncecell_init(&c, sizeof(big_t), NULL), 0);
    big_t v = { 7, "seven" };
    ck_assert_int_eq(weft_oncecell_set(&c, &v), 0);
    v.a = 8;
    strcpy(v.s, "eight");
    big_t *p = weft_oncecell_get(&c);
    ck_assert_int_eq(p->a, 7);
    ck_assert_str_eq(p->s, "seven");
    weft_oncecell_destroy(&c);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Misuse ---------------------------------------------------------------------- */

static void size_mismatch(void)
{
    weft_oncecell_t c;
    if (weft_oncecell_init(&c, sizeof(long) + 1, NULL) != 0)
        return;
    mk_counts_t cnt = { 0 };
    mk_t m = mk(&cnt, 1, 0);
    weft_oncecell_get_or_init_t g = weft_oncecell_get_or_init(&c, WEFT_FUTURE(&m));
    (void)g;
}
static void destroy_while_initialising(void)
{
    weft_oncecell_t c;
    if (weft_oncecell_init(&c, sizeof(int), NULL) != 0)
        return;
    mk_counts_t cnt = { 0 };
    mk_t m = mk(&cnt, 1, -1);
    hand_t h;
    hand_init(&h);
    weft_oncecell_get_or_init_t g = weft_oncecell_get_or_init(&c, WEFT_FUTURE(&m));
    (void)hand_poll(&h, &g, NULL);
    weft_oncecell_destroy(&c);
}
static void poll_after_done(void)
{
    weft_oncecell_t c;
    if (weft_oncecell_init(&c, sizeof(int), NULL) != 0)
        return;
    mk_counts_t cnt = { 0 };
    mk_t m = mk(&cnt, 1, 0);
    hand_t h;
    hand_init(&h);
    weft_oncecell_get_or_init_t g = weft_oncecell_get_or_init(&c, WEFT_FUTURE(&m));
    (void)hand_poll(&h, &g, NULL);
    (void)hand_poll(&h, &g, NULL);
}
static void null_init_future(void)
{
    weft_oncecell_t c;
    if (weft_oncecell_init(&c, sizeof(int), NULL) != 0)
        return;
    weft_oncecell_get_or_init_t g = weft_oncecell_get_or_init(&c, NULL);
    (void)g;
}
static void get_uninitialised(void)
{
    weft_oncecell_t c;
    memset(&c, 0, sizeof c);
    (void)weft_oncecell_get(&c);
}
START_TEST(misuse_aborts)
{
    expect_panic(size_mismatch, "weft_oncecell_get_or_init: the init future's output is 4 bytes");
    expect_panic(destroy_while_initialising, "weft_oncecell_destroy: a get_or_init still initialises");
    expect_panic(poll_after_done, "weft_oncecell_get_or_init polled after it completed");
    expect_panic(null_init_future, "weft_oncecell_get_or_init: init is NULL");
    expect_panic(get_uninitialised, "weft_oncecell_get: the cell is not initialised");
}
END_TEST

/* ---- On runtimes ---------------------------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    weft_oncecell_t *cell;
    mk_counts_t *cnt;
    int id, pend;
    int *got;
    mk_t m;
    weft_oncecell_get_or_init_t g;
} getter_t;
/* get_or_init with an init future that yields `pend` times; output: the
 * value it saw. */
WEFT_ASYNC(getter_t, getter, int)
{
    WEFT_BEGIN();
    self->m = mk(self->cnt, 1000 + self->id, self->pend);
    WEFT_AWAIT(&self->g, weft_oncecell_get_or_init(self->cell, WEFT_FUTURE(&self->m)), &self->got);
    if (!WEFT_TEST_CHECK(self->got != NULL && self->got == weft_oncecell_get(self->cell)))
        WEFT_RETURN(-1);
    WEFT_RETURN(*self->got);
    WEFT_END();
}

/* Many tasks race get_or_init: exactly one init future runs, and every
 * task sees its value. */
START_TEST(one_initialiser_under_contention)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_oncecell_t c;
    ck_assert_int_eq(weft_oncecell_init(&c, sizeof(int), NULL), 0);
    static mk_counts_t cnt;
    memset(&cnt, 0, sizeof cnt);
    enum { T = 16 };
    weft_join_handle_t hs[T];
    for (int i = 0; i < T; i++) {
        getter_t t = { WEFT_FRAME_INIT(getter), .cell = &c, .cnt = &cnt, .id = i, .pend = 3 };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t, &hs[i]), 0);
    }
    int first = -1;
    for (int i = 0; i < T; i++) {
        int out = -2;
        ck_assert_int_eq(join_out(rt, &hs[i], &out), 0);
        if (first == -1)
            first = out;
        ck_assert_int_eq(out, first);
    }
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_ge(first, 1000);
    ck_assert_int_eq(cnt.runs, 1);
    ck_assert_int_eq(cnt.drops, T); /* every init future dropped once */
    weft_runtime_free(rt);
    weft_oncecell_destroy(&c);
    ASSERT_NO_LIVE();
}
END_TEST

/* Waits (up to 5 s) until `runs` init futures started; drives a
 * current-thread runtime with yields. */
static bool wait_runs(weft_runtime_t *rt, int shape, mk_counts_t *cnt, int want)
{
    for (int k = 0; k < 5000; k++) {
        if (cnt->runs >= want)
            return true;
        let_tasks_run(rt, shape);
    }
    return false;
}

/* The initialising task is aborted: the waiting task initialises with its
 * own init future. A task left waiting at shutdown is dropped cleanly. */
START_TEST(aborted_initialiser_and_shutdown)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_oncecell_t c;
    ck_assert_int_eq(weft_oncecell_init(&c, sizeof(int), NULL), 0);
    static mk_counts_t ca, cb;
    memset(&ca, 0, sizeof ca);
    memset(&cb, 0, sizeof cb);
    weft_join_handle_t ha, hb;
    getter_t a = { WEFT_FRAME_INIT(getter), .cell = &c, .cnt = &ca, .id = 1, .pend = -1 };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &a, &ha), 0);
    ck_assert(wait_runs(rt, _i, &ca, 1));
    getter_t b = { WEFT_FRAME_INIT(getter), .cell = &c, .cnt = &cb, .id = 2, .pend = 1 };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &b, &hb), 0);
    weft_join_handle_abort(&ha);
    ck_assert_int_eq(join_out(rt, &ha, NULL), WEFT_ECANCELED);
    int out = -1;
    ck_assert_int_eq(join_out(rt, &hb, &out), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(out, 1002);
    ck_assert_int_eq(ca.drops, 1);
    ck_assert_int_eq(cb.runs, 1);
    ck_assert_int_eq(cb.drops, 1);

    /* Shutdown with an initialiser parked and a waiter behind it. */
    weft_oncecell_t d;
    ck_assert_int_eq(weft_oncecell_init(&d, sizeof(int), NULL), 0);
    static mk_counts_t cc;
    memset(&cc, 0, sizeof cc);
    getter_t p = { WEFT_FRAME_INIT(getter), .cell = &d, .cnt = &cc, .id = 3, .pend = -1 };
    getter_t q = { WEFT_FRAME_INIT(getter), .cell = &d, .cnt = &cc, .id = 4, .pend = -1 };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &p, NULL), 0);
    ck_assert(wait_runs(rt, _i, &cc, 1));
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &q, NULL), 0);
    weft_runtime_free(rt);
    ck_assert_int_le(cc.runs, 2); /* q may have started after p was dropped */
    ck_assert_ptr_null(weft_oncecell_get(&d));
    weft_oncecell_destroy(&d); /* would abort if anything still held the right */
    weft_oncecell_destroy(&c);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("oncecell");
    TCase *tc = tcase_create("oncecell");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, init_set_get_destroy);
    tcase_add_test(tc, get_or_init_when_set);
    tcase_add_test(tc, one_initialiser_others_wait);
    tcase_add_test(tc, dropped_initialiser_hands_over);
    tcase_add_test(tc, set_copies_by_size);
    if (can_fork())
        tcase_add_test(tc, misuse_aborts);
    tcase_add_loop_test(tc, one_initialiser_under_contention, 0, N_SHAPES);
    tcase_add_loop_test(tc, aborted_initialiser_and_shutdown, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
