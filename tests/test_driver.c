/* tests/test_driver.c - the runtime's drivers as a user chooses them
 * (enable_io and enable_time in every combination, on both flavours), the
 * builder's size field (a program built against an older, smaller
 * builder), and the intrusive lists the drivers and the scheduler share
 * (runtime/list.h). */
#include "list.h"
#include "testlib.h"

/* ---- enable_io / enable_time ---------------------------------------------------- */

/* Tries a listener and, if time is on, a 2 ms sleep; reports the listener's
 * result (0 or WEFT_ENOSYS) and whether the sleep completed. */
typedef struct {
    WEFT_FRAME;
    bool sleep;
    int listen_rc;
    weft_tcp_listener_t l;
    weft_sleep_t s;
} probe_t;
WEFT_ASYNC(probe_t, probe_fn, int)
{
    WEFT_BEGIN();
    self->listen_rc = weft_tcp_listen_ip("127.0.0.1", 0, 8, &self->l);
    if (self->listen_rc == 0)
        weft_tcp_listener_close(&self->l);
    if (self->sleep)
        WEFT_AWAIT(&self->s, weft_sleep_ms(2), NULL);
    WEFT_RETURN(self->listen_rc);
    WEFT_END();
}

static weft_runtime_t *rt_with(weft_flavor_t flavor, bool io, bool time)
{
    weft_builder_t b;
    weft_builder_init(&b, flavor);
    b.workers = 2;
    b.enable_io = io;
    b.enable_time = time;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    return rt;
}

/* _i: bit 0 io, bit 1 time, bit 2 current-thread. */
START_TEST(io_and_time_are_chosen_apart)
{
    bool io = _i & 1, time = (_i >> 1) & 1;
    weft_flavor_t f = (_i & 4) ? WEFT_RUNTIME_CURRENT_THREAD : WEFT_RUNTIME_MULTI_THREAD;
    weft_runtime_t *rt = rt_with(f, io, time);
    probe_t p = { WEFT_FRAME_INIT(probe_fn), .sleep = time };
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&p), &rc), 0);
    ck_assert_int_eq(rc, io ? 0 : WEFT_ENOSYS);
    /* The same from a spawned task, on a worker. */
    probe_t q = { WEFT_FRAME_INIT(probe_fn), .sleep = time };
    rc = -1;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&q), &rc), 0);
    ck_assert_int_eq(rc, io ? 0 : WEFT_ENOSYS);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* A signal future on a runtime with neither I/O nor time: there is no
 * driver thread to watch the signal pipe, so it says so. */
typedef struct {
    WEFT_FRAME;
    weft_signal_t s;
    int rc;
} sigwait_t;
WEFT_ASYNC(sigwait_t, sigwait_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->s, weft_signal_recv(SIGUSR2), &self->rc);
    WEFT_RETURN(self->rc);
    WEFT_END();
}

START_TEST(no_driver_no_signals)
{
    weft_runtime_t *rt = rt_with(WEFT_RUNTIME_MULTI_THREAD, false, false);
    sigwait_t w = { WEFT_FRAME_INIT(sigwait_fn) };
    int rc = 0;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&w), &rc), 0);
    ck_assert_int_eq(rc, WEFT_ENOSYS);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* A sleep polled on a runtime without time is a programming error: it
 * aborts with a message naming the option. */
typedef struct {
    WEFT_FRAME;
    weft_sleep_t s;
} nap_t;
WEFT_ASYNC(nap_t, nap_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->s, weft_sleep_ms(1), NULL);
    WEFT_RETURN(0);
    WEFT_END();
}

static void nap_without_time(void)
{
    weft_runtime_t *rt = rt_with(WEFT_RUNTIME_CURRENT_THREAD, true, false);
    nap_t n = { WEFT_FRAME_INIT(nap_fn) };
    (void)!weft_runtime_block_on(rt, WEFT_FUTURE(&n), NULL); /* aborts first */
}

START_TEST(sleep_without_time_aborts)
{
    if (can_fork())
        expect_panic(nap_without_time, "enable_time = false");
}
END_TEST

/* ---- The builder's size -------------------------------------------------------- */

/* A program compiled against a header whose builder ended before
 * enable_io: the library takes the default (true) for what it lacks. */
START_TEST(builder_from_an_older_header)
{
    weft_builder_t b;
    memset(&b, 0xA5, sizeof b); /* the bytes past the old size are not the caller's */
    weft_builder_init_sized(&b, WEFT_RUNTIME_CURRENT_THREAD, offsetof(weft_builder_t, enable_io));
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    probe_t p = { WEFT_FRAME_INIT(probe_fn), .sleep = true };
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&p), &rc), 0);
    ck_assert_int_eq(rc, 0); /* enable_io defaulted to true */
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(builder_not_initialised_is_einval)
{
    weft_builder_t b;
    memset(&b, 0, sizeof b);
    b.flavor = WEFT_RUNTIME_CURRENT_THREAD;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), WEFT_EINVAL);
    ck_assert_ptr_null(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- list.h ------------------------------------------------------------------- */

typedef struct item {
    int v;
    weft__dnode_t node;
    struct item *next;
} item_t;

/* The generated functions' chaos point closes the stack once when armed:
 * a close landing between a push's link and its CAS, deterministically. */
static _Atomic(item_t *) *close_at_chaos;
static void chaos_close(void)
{
    if (close_at_chaos != NULL) {
        (void)atomic_exchange(close_at_chaos, WEFT__INTAKE_CLOSED(item_t));
        close_at_chaos = NULL;
    }
}
#undef WEFT_CHAOS
#define WEFT_CHAOS() chaos_close()
WEFT__INTAKE_GEN(item_intake, item_t, next)

START_TEST(dlist_keeps_order_and_unlinks)
{
    item_t it[5];
    weft__dlist_t l;
    weft__dlist_init(&l);
    ck_assert(weft__dlist_empty(&l));
    for (int i = 0; i < 5; i++) {
        it[i].v = i;
        weft__dnode_init(&it[i].node);
        ck_assert(!weft__dnode_linked(&it[i].node));
        weft__dlist_push_back(&l, &it[i].node);
    }
    weft__dlist_remove(&it[2].node);
    weft__dlist_remove(&it[2].node); /* a second remove is harmless */
    ck_assert(!weft__dnode_linked(&it[2].node));
    weft__dlist_push_front(&l, &it[2].node);
    int want[] = { 2, 0, 1, 3, 4 }, k = 0;
    weft__dlist_foreach(n, &l) {
        ck_assert_int_eq(weft__container_of(n, item_t, node)->v, want[k]);
        k++;
    }
    ck_assert_int_eq(k, 5);
    weft__dlist_foreach_safe(n, &l) {
        if (weft__container_of(n, item_t, node)->v % 2 == 0)
            weft__dlist_remove(n);
    }
    ck_assert_int_eq(weft__container_of(weft__dlist_pop_front(&l), item_t, node)->v, 1);
    ck_assert_int_eq(weft__container_of(weft__dlist_pop_front(&l), item_t, node)->v, 3);
    ck_assert_ptr_null(weft__dlist_pop_front(&l));
    ck_assert(weft__dlist_empty(&l));
}
END_TEST

/* Chains come out in push order, each chain in its own order; a push into
 * a closed stack fails and hands the chain back in order. */
START_TEST(intake_order_and_close)
{
    item_t it[7];
    for (int i = 0; i < 7; i++) {
        it[i].v = i;
        it[i].next = i < 6 ? &it[i + 1] : NULL;
    }
    _Atomic(item_t *) top = NULL;
    bool was_empty = false;
    ck_assert(item_intake_push(&top, &it[0], &it[2], true, memory_order_release, &was_empty));
    ck_assert(was_empty);
    ck_assert(item_intake_push(&top, &it[3], &it[3], false, memory_order_release, &was_empty));
    ck_assert(!was_empty);
    item_t *last = NULL;
    item_t *got = item_intake_take(&top, memory_order_acquire, &last);
    for (int i = 0; i <= 3; i++, got = got->next)
        ck_assert_int_eq(got->v, i);
    ck_assert_ptr_null(got);
    ck_assert_int_eq(last->v, 3);
    ck_assert_ptr_null(item_intake_take(&top, memory_order_acquire, &last));

    it[4].next = &it[5];
    ck_assert(item_intake_push(&top, &it[4], &it[5], true, memory_order_release, NULL));
    got = item_intake_close(&top, memory_order_acquire, &last);
    ck_assert_int_eq(got->v, 4);
    ck_assert_int_eq(got->next->v, 5);
    ck_assert_ptr_eq(last, &it[5]);
    it[5].next = &it[6];
    ck_assert(!item_intake_push(&top, &it[5], &it[6], true, memory_order_release, NULL));
    ck_assert_ptr_eq(it[5].next, &it[6]); /* the chain is the caller's again, in order */
    ck_assert_ptr_null(it[6].next);
    ck_assert_ptr_null(item_intake_take_unless_closed(&top, memory_order_acquire, &last)); /* closed stays closed */
    /* A single push whose CAS loses to a close: it already linked to the
     * old top, which now belongs to the closer; the refused element must
     * not keep that link (its caller walks it to drop the chain). */
    _Atomic(item_t *) top2 = NULL;
    ck_assert(item_intake_push(&top2, &it[1], &it[1], false, memory_order_release, NULL));
    close_at_chaos = &top2;
    ck_assert(!item_intake_push(&top2, &it[0], &it[0], false, memory_order_release, NULL));
    ck_assert_ptr_null(close_at_chaos); /* the close did happen inside the push */
    ck_assert_ptr_null(it[0].next);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("driver");
    TCase *tc = tcase_create("enable");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, io_and_time_are_chosen_apart, 0, 8);
    tcase_add_test(tc, no_driver_no_signals);
    tcase_add_test(tc, sleep_without_time_aborts);
    suite_add_tcase(s, tc);
    tc = tcase_create("builder");
    tcase_add_test(tc, builder_from_an_older_header);
    tcase_add_test(tc, builder_not_initialised_is_einval);
    suite_add_tcase(s, tc);
    tc = tcase_create("list");
    tcase_add_test(tc, dlist_keeps_order_and_unlinks);
    tcase_add_test(tc, intake_order_and_close);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
