/* tests/test_async_macros.c - the async macros' argument shapes and owned
 * children: compound literals (commas) in WEFT_AWAIT, WEFT_ARM and
 * WEFT_RETURN; WEFT_OWN, WEFT_DISOWN and WEFT_DROP_OWNED polled by hand
 * with a drop-counting future; and a task that owns a oneshot receiver and
 * a timeout's inner future when it is aborted, shut down, or runs to the
 * end, on every runtime shape. */
#include "testlib.h"

/* ---- A future ready at once with a + b, counting its drops ------------- */
typedef struct {
    weft_future_t future;
    int a, b;
    int *drops;
} sum_t;
static weft_poll_t sum_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    sum_t *s = (sum_t *)(void *)f;
    (void)cx;
    if (out != NULL)
        *(int *)out = s->a + s->b;
    return WEFT_READY;
}
static void sum_drop(weft_future_t *f) { (*((sum_t *)(void *)f)->drops)++; }
static const weft_future_vtable_t sum_vt = { sum_poll, sum_drop, NULL, sizeof(sum_t), sizeof(int), "sum" };
/* A compound literal produced by a macro: its commas appear only after
 * expansion, inside the await's arguments. */
#define SUM_LIT(a, b, drops) (sum_t){ { &sum_vt }, (a), (b), (drops) }

/* ---- Commas in the macros' arguments ----------------------------------- */
typedef struct {
    int lo, hi;
} pair_t;

typedef struct {
    WEFT_FRAME;
    int *drops;
    int x, y, z;
    sum_t s1, s2;
    weft_select_t sel;
    int which;
} commas_t;

WEFT_ASYNC(commas_t, commas, pair_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->s1, (sum_t){ { &sum_vt }, 1, 2, self->drops }, &self->x);
    WEFT_AWAIT(&self->s1, SUM_LIT(3, 4, self->drops), &self->y);
    WEFT_SELECT_BIASED(&self->sel, &self->which,
                       WEFT_ARM_IF(self->x > 100, &self->s1, (sum_t){ { &sum_vt }, 0, 0, self->drops }, NULL),
                       WEFT_ARM(&self->s2, (sum_t){ { &sum_vt }, 10, 20, self->drops }, &self->z));
    WEFT_RETURN((pair_t){ self->x + self->y, self->z + self->which });
    WEFT_END();
}

START_TEST(commas_in_await_arm_and_return)
{
    int drops = 0;
    commas_t c = { WEFT_FRAME_INIT(commas), .drops = &drops };
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    pair_t out = { 0, 0 };
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&c), &cx, &out), WEFT_READY);
    ck_assert_int_eq(out.lo, 1 + 2 + 3 + 4);
    ck_assert_int_eq(out.hi, 30 + 1); /* arm 1 won; arm 0 was disabled */
    ck_assert_int_eq(drops, 3);       /* two awaits and the winning arm */
    weft_future_drop(WEFT_FUTURE(&c));
    ck_assert_int_eq(drops, 3);
}
END_TEST

/* ---- Owned children, polled by hand ------------------------------------ */
enum { PARK_THEN_AWAIT, PARK_THEN_JOIN, DROP_EARLY };

typedef struct {
    WEFT_FRAME;
    int mode;
    int *drops_a, *drops_b;
    int va, vb;
    sum_t a, b;
    weft_owned_t a_own, b_own;
    weft_join2_t j;
    weft_pending_t p;
    weft_yield_t y;
} owner_t;

WEFT_ASYNC(owner_t, owner, int)
{
    WEFT_BEGIN();
    self->a = (sum_t){ { &sum_vt }, 1, 2, self->drops_a };
    WEFT_OWN(&self->a, &self->a_own);
    self->b = (sum_t){ { &sum_vt }, 3, 4, self->drops_b };
    WEFT_OWN(&self->b, &self->b_own);
    WEFT_AWAIT(&self->y, weft_yield_now(), NULL); /* both owned, neither awaited */
    if (self->mode == DROP_EARLY) {
        WEFT_DROP_OWNED(&self->b);
        WEFT_DROP_OWNED(&self->b); /* no longer owned: nothing */
        /* The node is free again: own a fresh child with it. */
        self->b = (sum_t){ { &sum_vt }, 5, 6, self->drops_b };
        WEFT_OWN(&self->b, &self->b_own);
        WEFT_AWAIT(&self->p, weft_pending(), NULL); /* until dropped */
    }
    if (self->mode == PARK_THEN_JOIN) {
        /* The join drops what it joins: the frame hands both over. */
        WEFT_AWAIT(&self->j, weft_join2(WEFT_DISOWN(&self->a), &self->va, WEFT_DISOWN(&self->b), &self->vb), NULL);
        WEFT_RETURN(self->va + self->vb);
    }
    WEFT_AWAIT_REF(&self->a, &self->va); /* takes a over from the owned list */
    WEFT_RETURN(self->va);                /* b is still owned: the frame's drop drops it */
    WEFT_END();
}

static owner_t owner_in(int mode, int *drops_a, int *drops_b)
{
    return (owner_t){ WEFT_FRAME_INIT(owner), .mode = mode, .drops_a = drops_a, .drops_b = drops_b };
}

START_TEST(owned_children_dropped_once)
{
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    int out = 0;

    /* Dropped while parked elsewhere: both owned children are dropped. */
    int da = 0, db = 0;
    owner_t o = owner_in(PARK_THEN_AWAIT, &da, &db);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&o), &cx, &out), WEFT_PENDING);
    ck_assert_uint_ne(o.weft_frame.owned_, 0);
    weft_future_drop(WEFT_FUTURE(&o));
    ck_assert_int_eq(da, 1);
    ck_assert_int_eq(db, 1);
    ck_assert_uint_eq(o.weft_frame.owned_, 0);

    /* a awaited (dropped by its await), b still owned at the end. */
    da = db = 0;
    o = owner_in(PARK_THEN_AWAIT, &da, &db);
    while (weft_future_poll(WEFT_FUTURE(&o), &cx, &out) == WEFT_PENDING)
        ;
    ck_assert_int_eq(out, 3);
    ck_assert_int_eq(da, 1);
    ck_assert_int_eq(db, 0);
    weft_future_drop(WEFT_FUTURE(&o));
    ck_assert_int_eq(da, 1);
    ck_assert_int_eq(db, 1);

    /* Handed to a join with WEFT_DISOWN: the join drops each once. */
    da = db = 0;
    o = owner_in(PARK_THEN_JOIN, &da, &db);
    while (weft_future_poll(WEFT_FUTURE(&o), &cx, &out) == WEFT_PENDING)
        ;
    ck_assert_int_eq(out, 3 + 7);
    weft_future_drop(WEFT_FUTURE(&o));
    ck_assert_int_eq(da, 1);
    ck_assert_int_eq(db, 1);

    /* WEFT_DROP_OWNED drops at once, and only once; the node is reused. */
    da = db = 0;
    o = owner_in(DROP_EARLY, &da, &db);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&o), &cx, &out), WEFT_PENDING);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&o), &cx, &out), WEFT_PENDING);
    ck_assert_int_eq(db, 1);
    weft_future_drop(WEFT_FUTURE(&o));
    ck_assert_int_eq(da, 1);
    ck_assert_int_eq(db, 2); /* the first b and the second */

    /* A frame never polled owns nothing. */
    da = db = 0;
    o = owner_in(PARK_THEN_AWAIT, &da, &db);
    weft_future_drop(WEFT_FUTURE(&o));
    ck_assert_int_eq(da + db, 0);
}
END_TEST

/* Misuse: a node outside the frame, and one node for two children. */
typedef struct {
    WEFT_FRAME;
    int twice;
    int drops;
    sum_t a, b;
    weft_owned_t own;
} misuse_t;
static weft_owned_t stray_node;
WEFT_ASYNC(misuse_t, misuse, int)
{
    WEFT_BEGIN();
    self->a = (sum_t){ { &sum_vt }, 0, 0, &self->drops };
    self->b = self->a;
    if (self->twice) {
        WEFT_OWN(&self->a, &self->own);
        WEFT_OWN(&self->b, &self->own);
    } else {
        WEFT_OWN(&self->a, &stray_node);
    }
    WEFT_RETURN(0);
    WEFT_END();
}

static void poll_misuse(int twice)
{
    misuse_t m = { WEFT_FRAME_INIT(misuse), .twice = twice };
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    (void)weft_future_poll(WEFT_FUTURE(&m), &cx, NULL);
}
static void own_stray_node(void) { poll_misuse(0); }
static void own_twice(void) { poll_misuse(1); }

START_TEST(own_misuse_panics)
{
    if (!can_fork())
        return;
    expect_panic(own_stray_node, "WEFT_OWN's node must be a weft_owned_t field of the frame");
    expect_panic(own_twice, "WEFT_OWN's node already owns a child");
}
END_TEST

/* ---- A task owning a oneshot receiver and a timeout's inner future ----- */
enum { ABORT, SHUTDOWN, COMPLETE };

typedef struct {
    WEFT_FRAME;
    int mode;
    weft_oneshot_tx_t *tx1, *tx2; /* the test keeps the senders */
    _Atomic int *parked;
    int rc, rc2, v1, v2;
    weft_oneshot_rx_t rx1, rx2;
    weft_owned_t rx1_own, rx2_own;
    weft_sleep_t nap;
    weft_timeout_t to;
} chan_owner_t;

WEFT_ASYNC(chan_owner_t, chan_owner, int)
{
    WEFT_BEGIN();
    if (weft_oneshot_new(sizeof(int), NULL, self->tx1, &self->rx1) != 0)
        WEFT_RETURN(-1);
    WEFT_OWN(&self->rx1, &self->rx1_own);
    if (weft_oneshot_new(sizeof(int), NULL, self->tx2, &self->rx2) != 0)
        WEFT_RETURN(-1); /* rx1 is owned: the frame's drop releases it */
    WEFT_OWN(&self->rx2, &self->rx2_own);
    atomic_store(self->parked, 1);
    /* Parked with both receivers constructed and not yet awaited. */
    WEFT_AWAIT(&self->nap, weft_sleep_ms(self->mode == COMPLETE ? 1 : 60000), NULL);
    WEFT_AWAIT_REF(weft_oneshot_recv(&self->rx1, &self->v1), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    /* The timeout drops its inner future: hand rx2 over. */
    WEFT_AWAIT(&self->to, weft_timeout_ms(WEFT_DISOWN(weft_oneshot_recv(&self->rx2, &self->v2)), &self->rc2, 60000),
               &self->rc);
    WEFT_RETURN(self->rc != 0 ? self->rc : self->rc2 != 0 ? self->rc2 : self->v1 + self->v2);
    WEFT_END();
}

static void run_chan_owner(int mode, int shape)
{
    weft_runtime_t *rt = shape_rt(shape);
    weft_oneshot_tx_t tx1 = { NULL }, tx2 = { NULL };
    _Atomic int parked = 0;
    chan_owner_t f = { WEFT_FRAME_INIT(chan_owner), .mode = mode, .tx1 = &tx1, .tx2 = &tx2, .parked = &parked };
    weft_join_handle_t h;
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&f), &h, NULL, WEFT_SITE), 0);
    while (!atomic_load(&parked))
        let_tasks_run(rt, shape);
    if (mode == ABORT) {
        weft_join_handle_abort(&h);
        ck_assert_int_eq(join_out(rt, &h, NULL), WEFT_ECANCELED);
        /* The receivers are gone with the frame: sends fail. */
        ck_assert(weft_oneshot_is_closed(&tx1));
        ck_assert(weft_oneshot_is_closed(&tx2));
    } else if (mode == COMPLETE) {
        int a = 20, b = 22, out = 0;
        ck_assert_int_eq(weft_oneshot_send(&tx1, &a), 0);
        ck_assert_int_eq(weft_oneshot_send(&tx2, &b), 0);
        ck_assert_int_eq(join_out(rt, &h, &out), 0);
        ck_assert_int_eq(out, 42);
    } else {
        weft_join_handle_drop(&h);
    }
    weft_runtime_free(rt); /* SHUTDOWN: drops the parked task */
    weft_oneshot_tx_drop(&tx1);
    weft_oneshot_tx_drop(&tx2);
    ASSERT_NO_LIVE();
}

START_TEST(owned_receivers_released_on_abort) { run_chan_owner(ABORT, _i); }
END_TEST
START_TEST(owned_receivers_released_on_shutdown) { run_chan_owner(SHUTDOWN, _i); }
END_TEST
START_TEST(owned_receivers_awaited_normally) { run_chan_owner(COMPLETE, _i); }
END_TEST

int main(void)
{
    Suite *s = suite_create("async_macros");
    TCase *tc = tcase_create("commas");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, commas_in_await_arm_and_return);
    suite_add_tcase(s, tc);
    tc = tcase_create("owned");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, owned_children_dropped_once);
    tcase_add_test(tc, own_misuse_panics);
    tcase_add_loop_test(tc, owned_receivers_released_on_abort, 0, N_SHAPES);
    tcase_add_loop_test(tc, owned_receivers_released_on_shutdown, 0, N_SHAPES);
    tcase_add_loop_test(tc, owned_receivers_awaited_normally, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
