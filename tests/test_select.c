/* tests/test_select.c - select and try_join: every outcome of a select
 * arm (wins, loses and is dropped, disabled and never polled, all
 * disabled), owned and borrowed arms, dropping an undecided select,
 * fairness and the biased order, the WEFT_SELECT macros in an async
 * function, a server-style loop on a runtime (a channel read, a shutdown
 * token and a tick), and try_join's short-circuit on the first error.
 * Most tests poll by hand with a counting waker; the loop runs on every
 * runtime shape. */
#include "testlib.h"

/* ---- A probe: ready with `value` once *open, counting polls and drops ---- */
typedef struct {
    int polls, drops;
} stats_t;

typedef struct {
    weft_future_t future;
    const int *open;
    int value;
    stats_t *st;
    weft_waker_t waker;
} probe_t;

static weft_poll_t probe_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    probe_t *p = (probe_t *)(void *)f;
    p->st->polls++;
    if (*p->open) {
        if (out != NULL)
            *(int *)out = p->value;
        return WEFT_READY;
    }
    weft_waker_drop(&p->waker);
    p->waker = weft_waker_clone(cx->waker);
    return WEFT_PENDING;
}
static void probe_drop(weft_future_t *f)
{
    probe_t *p = (probe_t *)(void *)f;
    weft_waker_drop(&p->waker);
    p->st->drops++;
}
static const weft_future_vtable_t probe_vt = { probe_poll, probe_drop, NULL, sizeof(probe_t), sizeof(int), "probe" };
WEFT_NODISCARD static probe_t probe(const int *open, int value, stats_t *st)
{
    return (probe_t){ { &probe_vt }, open, value, st, { NULL, NULL } };
}

/* A future with a one-byte output, for the try_join misuse test. */
static weft_poll_t byte_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx, (void)out;
    return WEFT_READY;
}
static const weft_future_vtable_t byte_vt = { byte_poll, NULL, NULL, sizeof(weft_future_t), 1, "byte_future" };

static const int OPEN = 1, SHUT = 0;

static weft_poll_t poll_by_hand(void *f, counter_t *c, void *out)
{
    weft_waker_t w = counter_waker(c);
    weft_context_t cx = { &w };
    return weft_future_poll(WEFT_FUTURE(f), &cx, out);
}

/* ---- select2 ----------------------------------------------------------------- */

START_TEST(first_ready_wins_and_the_loser_is_dropped)
{
    counter_t c = { 0 };
    stats_t sa = { 0 }, sb = { 0 };
    int ra = -1, rb = -1, which = -9;
    probe_t a = probe(&SHUT, 1, &sa), b = probe(&OPEN, 2, &sb);
    weft_select_t s = weft_select2(WEFT_FUTURE(&a), &ra, WEFT_FUTURE(&b), &rb);
    ck_assert_int_eq(poll_by_hand(&s, &c, &which), WEFT_READY);
    ck_assert_int_eq(which, 1);
    ck_assert_int_eq(rb, 2);
    ck_assert_int_eq(ra, -1);        /* the loser's output is untouched */
    ck_assert_int_eq(sa.drops, 1);   /* dropped before select returned */
    ck_assert_int_eq(sb.drops, 1);   /* the winner too, once its output is out */
    weft_future_drop(WEFT_FUTURE(&s)); /* nothing left to drop */
    ck_assert_int_eq(sa.drops, 1);
    ck_assert_int_eq(sb.drops, 1);
    ck_assert_int_eq(c.clones, c.drops); /* the loser's waker released */
}
END_TEST

START_TEST(winner_decided_on_a_later_poll)
{
    counter_t c = { 0 };
    stats_t sa = { 0 }, sb = { 0 };
    int open_a = 0, open_b = 0, ra = -1, which = -9;
    probe_t a = probe(&open_a, 10, &sa), b = probe(&open_b, 20, &sb);
    weft_select_t s = weft_select2_biased(WEFT_FUTURE(&a), &ra, WEFT_FUTURE(&b), NULL);
    ck_assert_int_eq(poll_by_hand(&s, &c, &which), WEFT_PENDING);
    ck_assert_int_eq(sa.polls, 1);
    ck_assert_int_eq(sb.polls, 1);
    ck_assert_int_eq(sa.drops + sb.drops, 0);
    open_a = 1;
    ck_assert_int_eq(poll_by_hand(&s, &c, &which), WEFT_READY);
    ck_assert_int_eq(which, 0);
    ck_assert_int_eq(ra, 10);
    ck_assert_int_eq(sb.polls, 1); /* biased: a won before b was tried again */
    ck_assert_int_eq(sa.drops, 1);
    ck_assert_int_eq(sb.drops, 1);
    weft_future_drop(WEFT_FUTURE(&s));
    ck_assert_int_eq(c.clones, c.drops);
}
END_TEST

START_TEST(dropping_an_undecided_select_drops_its_owned_arms)
{
    counter_t c = { 0 };
    stats_t sa = { 0 }, sb = { 0 }, sc = { 0 };
    probe_t a = probe(&SHUT, 1, &sa), b = probe(&SHUT, 2, &sb), r = probe(&SHUT, 3, &sc);
    weft_select_arm_t arms[3] = { WEFT_ARM_REF(&r, NULL), weft__arm(WEFT_FUTURE(&a), NULL, WEFT_ARM_OWNED),
                                  weft__arm(WEFT_FUTURE(&b), NULL, WEFT_ARM_OWNED) };
    weft_select_t s = weft_select(arms, 3);
    ck_assert_int_eq(poll_by_hand(&s, &c, NULL), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&s));
    ck_assert_int_eq(sa.drops, 1);
    ck_assert_int_eq(sb.drops, 1);
    ck_assert_int_eq(sc.drops, 0); /* borrowed: still the caller's */
    ck_assert_int_eq(sc.polls, 1);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_int_eq(c.clones, c.drops);
}
END_TEST

/* ---- Disabled arms and else ----------------------------------------------------- */

START_TEST(disabled_arm_is_never_polled_nor_dropped)
{
    counter_t c = { 0 };
    stats_t sa = { 0 }, sb = { 0 };
    int open = 0, which = -9;
    probe_t a = probe(&OPEN, 1, &sa), b = probe(&open, 2, &sb);
    /* a is ready, but disabled: the select waits for b. */
    weft_select_arm_t arms[2] = { WEFT_ARM_REF_IF(false, &a, NULL), WEFT_ARM_REF_IF(true, &b, NULL) };
    weft_select_t s = weft_select(arms, 2);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(poll_by_hand(&s, &c, &which), WEFT_PENDING);
    open = 1;
    ck_assert_int_eq(poll_by_hand(&s, &c, &which), WEFT_READY);
    ck_assert_int_eq(which, 1);
    ck_assert_int_eq(sa.polls, 0);
    ck_assert_int_eq(sa.drops, 0);
    ck_assert_int_eq(sb.polls, 21);
    weft_future_drop(WEFT_FUTURE(&s));
    weft_future_drop(WEFT_FUTURE(&a));
    weft_future_drop(WEFT_FUTURE(&b));
    ck_assert_int_eq(c.clones, c.drops);
}
END_TEST

START_TEST(all_disabled_completes_with_else)
{
    counter_t c = { 0 };
    stats_t sa = { 0 };
    int which = 7;
    probe_t a = probe(&OPEN, 1, &sa);
    weft_select_arm_t arms[2] = { WEFT_ARM_REF_IF(false, &a, NULL), { NULL, NULL, WEFT_ARM_OWNED } };
    weft_select_t s = weft_select_biased(arms, 2);
    ck_assert_int_eq(poll_by_hand(&s, &c, &which), WEFT_READY);
    ck_assert_int_eq(which, WEFT_SELECT_ELSE);
    ck_assert_int_eq(sa.polls, 0);
    weft_future_drop(WEFT_FUTURE(&s));
    ck_assert_int_eq(sa.drops, 0);
    weft_future_drop(WEFT_FUTURE(&a));
    /* No arms at all: else as well. */
    which = 7;
    s = weft_select(NULL, 0);
    ck_assert_int_eq(poll_by_hand(&s, &c, &which), WEFT_READY);
    ck_assert_int_eq(which, WEFT_SELECT_ELSE);
    weft_future_drop(WEFT_FUTURE(&s));
    ck_assert_int_eq(c.wakes, 0);
}
END_TEST

/* ---- The macros in an async function --------------------------------------------- */

/* Races three arms built in the frame: `b` only when want_b holds. */
typedef struct {
    WEFT_FRAME;
    const int *open_a, *open_b, *open_c;
    stats_t *sa, *sb, *sc;
    bool want_b;
    int ra, rb, rc, which;
    probe_t a, b, c;
    weft_select_t sel;
} race3_t;
WEFT_ASYNC(race3_t, race3, int)
{
    WEFT_BEGIN();
    WEFT_SELECT(&self->sel, &self->which,
                WEFT_ARM(&self->a, probe(self->open_a, 100, self->sa), &self->ra),
                WEFT_ARM_IF(self->want_b, &self->b, probe(self->open_b, 200, self->sb), &self->rb),
                WEFT_ARM(&self->c, probe(self->open_c, 300, self->sc), &self->rc));
    WEFT_RETURN(self->which);
    WEFT_END();
}

START_TEST(select_macro_in_an_async_function)
{
    counter_t c = { 0 };
    stats_t sa = { 0 }, sb = { 0 }, sc = { 0 };
    int open_c = 0, out = -9;
    /* b is ready, but its precondition is false: never constructed, never polled. */
    race3_t r = { WEFT_FRAME_INIT(race3), &SHUT, &OPEN, &open_c, &sa, &sb, &sc, false, 0, 0, 0, 0 };
    r.b.st = NULL; /* a constructed b would overwrite this */
    ck_assert_int_eq(poll_by_hand(&r, &c, &out), WEFT_PENDING);
    ck_assert_ptr_null(r.b.st);
    open_c = 1;
    ck_assert_int_eq(poll_by_hand(&r, &c, &out), WEFT_READY);
    ck_assert_int_eq(out, 2); /* the third arm as written */
    ck_assert_int_eq(r.rc, 300);
    ck_assert_int_eq(sb.polls + sb.drops, 0);
    ck_assert_int_eq(sa.drops, 1);
    ck_assert_int_eq(sc.drops, 1);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_int_eq(sa.drops, 1);
    ck_assert_int_eq(c.clones, c.drops);

    /* Dropping the frame mid-select drops every constructed arm. */
    sa = sb = sc = (stats_t){ 0 };
    race3_t r2 = { WEFT_FRAME_INIT(race3), &SHUT, &SHUT, &SHUT, &sa, &sb, &sc, true, 0, 0, 0, 0 };
    ck_assert_int_eq(poll_by_hand(&r2, &c, &out), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&r2));
    ck_assert_int_eq(sa.drops + sb.drops + sc.drops, 3);
    ck_assert_int_eq(c.clones, c.drops);
}
END_TEST

/* A borrowed deadline spans several selects: the loop re-creates the
 * other arm (a yield: pending once, then ready) each round and keeps the
 * borrowed one, which is never dropped by a select it loses. */
typedef struct {
    WEFT_FRAME;
    const int *deadline_open;
    stats_t *sd;
    int rounds, which;
    probe_t deadline;
    weft_yield_t step;
    weft_select_t sel;
} until_t;
WEFT_ASYNC(until_t, until_deadline, int)
{
    WEFT_BEGIN();
    self->deadline = probe(self->deadline_open, 0, self->sd);
    for (;;) {
        WEFT_SELECT_BIASED(&self->sel, &self->which, WEFT_ARM_REF(&self->deadline, NULL),
                           WEFT_ARM(&self->step, weft_yield_now(), NULL));
        if (self->which == 0)
            break;
        self->rounds++;
    }
    weft_future_drop(WEFT_FUTURE(&self->deadline)); /* it completed: ours to drop */
    WEFT_RETURN(self->rounds);
    WEFT_END();
}

START_TEST(borrowed_arm_survives_lost_rounds)
{
    counter_t c = { 0 };
    stats_t sd = { 0 };
    int deadline_open = 0, out = -1;
    until_t u = { WEFT_FRAME_INIT(until_deadline), &deadline_open, &sd, 0, 0 };
    /* Each poll after the first finishes one round (the yield wins) and
     * waits in the next one. */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(poll_by_hand(&u, &c, &out), WEFT_PENDING);
    ck_assert_int_eq(u.rounds, 4);
    ck_assert_int_eq(sd.polls, 1 + 2 * 4);
    ck_assert_int_eq(sd.drops, 0);
    deadline_open = 1;
    ck_assert_int_eq(poll_by_hand(&u, &c, &out), WEFT_READY);
    ck_assert_int_eq(out, 4);
    ck_assert_int_eq(sd.drops, 1); /* by the function, once */
    weft_future_drop(WEFT_FUTURE(&u));
    ck_assert_int_eq(sd.drops, 1);
    ck_assert_int_eq(c.clones, c.drops);
}
END_TEST

/* ---- Fairness ----------------------------------------------------------------------- */

START_TEST(fair_select_spreads_wins_biased_does_not)
{
    enum { ROUNDS = 10000 };
    counter_t c = { 0 };
    int wins[2] = { 0, 0 }, bwins[2] = { 0, 0 };
    for (int i = 0; i < ROUNDS; i++) {
        weft_ready_t a = weft_ready(1), b = weft_ready(2);
        intptr_t ra = 0, rb = 0;
        int which = -9;
        weft_select_t s = weft_select2(WEFT_FUTURE(&a), &ra, WEFT_FUTURE(&b), &rb);
        ck_assert_int_eq(poll_by_hand(&s, &c, &which), WEFT_READY);
        ck_assert(which == 0 || which == 1);
        ck_assert_int_eq(which == 0 ? ra : rb, which + 1);
        wins[which]++;
        weft_future_drop(WEFT_FUTURE(&s));
        a = weft_ready(1), b = weft_ready(2);
        s = weft_select2_biased(WEFT_FUTURE(&a), NULL, WEFT_FUTURE(&b), NULL);
        ck_assert_int_eq(poll_by_hand(&s, &c, &which), WEFT_READY);
        bwins[which]++;
        weft_future_drop(WEFT_FUTURE(&s));
    }
    /* Binomial(10000, 0.5): the standard deviation is 50; 40 % is 20 of them. */
    ck_assert_int_gt(wins[0], ROUNDS * 4 / 10);
    ck_assert_int_gt(wins[1], ROUNDS * 4 / 10);
    ck_assert_int_eq(bwins[0], ROUNDS);
    ck_assert_int_eq(bwins[1], 0);
}
END_TEST

/* Three always-ready arms rotate: each wins about a third of the time. */
START_TEST(fair_select_over_n_arms)
{
    enum { ROUNDS = 9000, N = 3 };
    counter_t c = { 0 };
    int wins[N] = { 0 };
    for (int i = 0; i < ROUNDS; i++) {
        weft_ready_t r[N];
        weft_select_arm_t arms[N];
        for (int k = 0; k < N; k++) {
            r[k] = weft_ready(k);
            arms[k] = weft__arm(WEFT_FUTURE(&r[k]), NULL, WEFT_ARM_OWNED);
        }
        int which = -9;
        weft_select_t s = weft_select(arms, N);
        ck_assert_int_eq(poll_by_hand(&s, &c, &which), WEFT_READY);
        wins[which]++;
        weft_future_drop(WEFT_FUTURE(&s));
    }
    for (int k = 0; k < N; k++)
        ck_assert_int_gt(wins[k], ROUNDS / N * 8 / 10);
}
END_TEST

/* ---- The array form ------------------------------------------------------------------- */

START_TEST(select_array_over_many_arms)
{
    enum { N = 40 };
    counter_t c = { 0 };
    int open[N] = { 0 };
    stats_t st[N];
    probe_t p[N];
    int outs[N];
    weft_select_arm_t arms[N];
    memset(st, 0, sizeof st);
    for (int i = 0; i < N; i++) {
        p[i] = probe(&open[i], i, &st[i]);
        outs[i] = -1;
        arms[i] = weft__arm(WEFT_FUTURE(&p[i]), &outs[i], WEFT_ARM_OWNED);
    }
    arms[5].fut = NULL; /* disabled */
    int which = -9;
    weft_select_t s = weft_select_array(arms, N);
    ck_assert_int_eq(poll_by_hand(&s, &c, &which), WEFT_PENDING);
    open[5] = 1;  /* disabled: does not count */
    open[33] = 1;
    ck_assert_int_eq(poll_by_hand(&s, &c, &which), WEFT_READY);
    ck_assert_int_eq(which, 33);
    ck_assert_int_eq(outs[33], 33);
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_null(arms[i].fut);
        ck_assert_int_eq(st[i].drops, i == 5 ? 0 : 1);
    }
    ck_assert_int_eq(st[5].polls, 0);
    weft_future_drop(WEFT_FUTURE(&s));
    ck_assert_int_eq(c.clones, c.drops);
}
END_TEST

static void too_many_arms(void)
{
    weft_select_arm_t arms[WEFT_SELECT_MAX + 1];
    memset(arms, 0, sizeof arms);
    weft_select_t s = weft_select(arms, WEFT_SELECT_MAX + 1);
    (void)s;
}

/* ---- A server loop on a runtime: read, shutdown token, tick ------------------------------ */

enum { MSGS = 5 };

typedef struct {
    WEFT_FRAME;
    weft_mpsc_rx_t *rx;
    weft_cancel_token_t *stop;
    weft_interval_t iv;
    bool have_iv;
    uint64_t msg, tick_at;
    int rc, which, got, sum, ticks;
    weft_mpsc_recv_t read;
    weft_cancelled_t cancelled;
    weft_tick_t tick;
    weft_select_t sel;
} serve_t;
static void serve_cleanup(serve_t *self)
{
    if (self->have_iv)
        weft_interval_drop(&self->iv);
}
WEFT_ASYNC_WITH_DROP(serve_t, serve, int, serve_cleanup)
{
    enum { READ, STOP, TICK };
    WEFT_BEGIN();
    self->iv = weft_interval_ms(2, WEFT_MISSED_SKIP);
    self->have_iv = true;
    for (;;) {
        WEFT_SELECT(&self->sel, &self->which,
                    WEFT_ARM(&self->read, weft_mpsc_recv(self->rx, &self->msg), &self->rc),
                    WEFT_ARM(&self->cancelled, weft_cancel_token_cancelled(self->stop), NULL),
                    WEFT_ARM(&self->tick, weft_interval_tick(&self->iv), &self->tick_at));
        if (self->which == STOP)
            break;
        if (self->which == TICK) {
            self->ticks++;
        } else if (WEFT_TEST_CHECK(self->which == READ) && self->rc == 0) {
            self->got++;
            self->sum += (int)self->msg;
        }
    }
    WEFT_TEST_CHECK_INT_EQ(self->got, MSGS); /* the losing reads lost nothing */
    WEFT_TEST_CHECK_INT_EQ(self->sum, MSGS * (MSGS + 1) / 2);
    WEFT_TEST_CHECK(self->ticks >= 2);
    WEFT_RETURN(self->got);
    WEFT_END();
}

/* Sends 1..MSGS a few ms apart, then cancels the token. */
typedef struct {
    WEFT_FRAME;
    weft_mpsc_tx_t tx;
    weft_cancel_token_t *stop;
    uint64_t i;
    int rc;
    weft_sleep_t nap;
    weft_mpsc_send_t send;
} feed_t;
WEFT_ASYNC(feed_t, feed, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 1; self->i <= MSGS; self->i++) {
        WEFT_AWAIT(&self->nap, weft_sleep_ms(3), NULL);
        WEFT_AWAIT(&self->send, weft_mpsc_send(&self->tx, &self->i), &self->rc);
        WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
    }
    WEFT_AWAIT(&self->nap, weft_sleep_ms(5), NULL);
    weft_mpsc_tx_drop(&self->tx);
    weft_cancel_token_cancel(self->stop);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(server_loop_with_shutdown_and_tick)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_cancel_token_t *stop;
    ck_assert_int_eq(weft_cancel_token_new(&stop), 0);
    weft_mpsc_tx_t tx;
    weft_mpsc_rx_t rx;
    ck_assert_int_eq(weft_mpsc_bounded(4, sizeof(uint64_t), NULL, &tx, &rx), 0);
    feed_t f = { WEFT_FRAME_INIT(feed), .tx = tx, .stop = stop };
    weft_join_handle_t hf;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &f, &hf), 0);
    serve_t s = { WEFT_FRAME_INIT(serve), .rx = &rx, .stop = stop };
    int got = -1;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&s), &got), 0);
    ck_assert_int_eq(got, MSGS);
    ck_assert_int_eq(join_out(rt, &hf, NULL), 0);
    weft_runtime_free(rt);
    ASSERT_NO_TEST_FAIL();
    weft_mpsc_rx_drop(&rx);
    weft_cancel_token_release(stop);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- try_join -------------------------------------------------------------------------- */

START_TEST(try_join2_all_succeed)
{
    counter_t c = { 0 };
    stats_t sa = { 0 }, sb = { 0 };
    int open_b = 0, ra = -1, rb = -1, res = -9;
    probe_t a = probe(&OPEN, 4, &sa), b = probe(&open_b, 0, &sb);
    weft_try_join2_t j = weft_try_join2(WEFT_FUTURE(&a), &ra, WEFT_FUTURE(&b), &rb);
    ck_assert_int_eq(poll_by_hand(&j, &c, &res), WEFT_PENDING);
    ck_assert_int_eq(sa.drops, 1); /* dropped as soon as it finished */
    ck_assert_int_eq(ra, 4);
    open_b = 1;
    ck_assert_int_eq(poll_by_hand(&j, &c, &res), WEFT_READY);
    ck_assert_int_eq(res, 0);
    ck_assert_int_eq(rb, 0);
    ck_assert_int_eq(sa.polls, 1);
    ck_assert_int_eq(sb.drops, 1);
    weft_future_drop(WEFT_FUTURE(&j));
    ck_assert_int_eq(sa.drops + sb.drops, 2);
    ck_assert_int_eq(c.clones, c.drops);
}
END_TEST

START_TEST(try_join2_error_drops_the_other)
{
    counter_t c = { 0 };
    stats_t sa = { 0 }, sb = { 0 };
    int open_b = 0, res = -9;
    probe_t a = probe(&SHUT, 1, &sa), b = probe(&open_b, WEFT_EPIPE, &sb);
    weft_try_join2_t j = weft_try_join2(WEFT_FUTURE(&b), NULL, WEFT_FUTURE(&a), NULL);
    ck_assert_int_eq(poll_by_hand(&j, &c, &res), WEFT_PENDING);
    ck_assert_int_eq(sa.polls, 1);
    /* b fails: a, still pending, is dropped without another poll. */
    open_b = 1;
    ck_assert_int_eq(poll_by_hand(&j, &c, &res), WEFT_READY);
    ck_assert_int_eq(res, WEFT_EPIPE);
    ck_assert_int_eq(sa.polls, 1);
    ck_assert_int_eq(sa.drops, 1);
    ck_assert_int_eq(sb.drops, 1);
    weft_future_drop(WEFT_FUTURE(&j));
    ck_assert_int_eq(sa.drops + sb.drops, 2);
    ck_assert_int_eq(c.clones, c.drops);
}
END_TEST

START_TEST(try_join_all_stops_at_the_first_error)
{
    enum { N = 6 };
    counter_t c = { 0 };
    stats_t st[N];
    int open[N] = { 0 }, outs[N], res = -9;
    probe_t p[N];
    weft_future_t *futs[N];
    int *outp[N];
    memset(st, 0, sizeof st);
    for (int i = 0; i < N; i++) {
        p[i] = probe(&open[i], i == 3 ? WEFT_ETIMEDOUT : i * 10, &st[i]);
        futs[i] = WEFT_FUTURE(&p[i]);
        outs[i] = -1;
        outp[i] = &outs[i];
    }
    weft_try_join_all_t j = weft_try_join_all(futs, outp, N);
    ck_assert_int_eq(poll_by_hand(&j, &c, &res), WEFT_PENDING);
    open[0] = open[1] = 1;
    ck_assert_int_eq(poll_by_hand(&j, &c, &res), WEFT_PENDING);
    ck_assert_int_eq(outs[1], 10);
    ck_assert_ptr_null(futs[0]);
    ck_assert_ptr_null(futs[1]);
    open[3] = 1;
    ck_assert_int_eq(poll_by_hand(&j, &c, &res), WEFT_READY);
    ck_assert_int_eq(res, WEFT_ETIMEDOUT);
    ck_assert_int_eq(outs[3], WEFT_ETIMEDOUT);
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_null(futs[i]);
        ck_assert_int_eq(st[i].drops, 1);
    }
    ck_assert_int_eq(st[4].polls, 2); /* after the error at 3: dropped, not polled */
    ck_assert_int_eq(st[5].polls, 2);
    weft_future_drop(WEFT_FUTURE(&j));
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(st[i].drops, 1);
    ck_assert_int_eq(c.clones, c.drops);

    /* Dropping an undecided join drops every unfinished child once. */
    memset(st, 0, sizeof st);
    for (int i = 0; i < N; i++) {
        open[i] = i < 2;
        p[i] = probe(&open[i], 0, &st[i]);
        futs[i] = WEFT_FUTURE(&p[i]);
    }
    j = weft_try_join_all(futs, NULL, N);
    ck_assert_int_eq(poll_by_hand(&j, &c, &res), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&j));
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(st[i].drops, 1);
    ck_assert_int_eq(c.clones, c.drops);
}
END_TEST

static void try_join_byte_child(void)
{
    weft_future_t b = { &byte_vt };
    weft_ready_t r = weft_ready(0);
    weft_try_join2_t j = weft_try_join2(WEFT_FUTURE(&r), NULL, &b, NULL);
    (void)j;
}

static void try_join_byte_child_n(void)
{
    weft_future_t b = { &byte_vt };
    weft_future_t *futs[1] = { &b };
    weft_try_join_all_t j = weft_try_join_all(futs, NULL, 1);
    (void)j;
}
START_TEST(misuse_aborts)
{
    expect_panic(too_many_arms, "weft_select: 9 arms, at most WEFT_SELECT_MAX");
    expect_panic(try_join_byte_child, "weft_try_join2: weft_ready has a 8-byte output");
    expect_panic(try_join_byte_child_n, "weft_try_join_all: byte_future has a 1-byte output");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("select");
    TCase *tc = tcase_create("select");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, first_ready_wins_and_the_loser_is_dropped);
    tcase_add_test(tc, winner_decided_on_a_later_poll);
    tcase_add_test(tc, dropping_an_undecided_select_drops_its_owned_arms);
    tcase_add_test(tc, disabled_arm_is_never_polled_nor_dropped);
    tcase_add_test(tc, all_disabled_completes_with_else);
    tcase_add_test(tc, select_macro_in_an_async_function);
    tcase_add_test(tc, borrowed_arm_survives_lost_rounds);
    tcase_add_test(tc, select_array_over_many_arms);
    suite_add_tcase(s, tc);
    tc = tcase_create("fairness");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, fair_select_spreads_wins_biased_does_not);
    tcase_add_test(tc, fair_select_over_n_arms);
    suite_add_tcase(s, tc);
    tc = tcase_create("loop");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, server_loop_with_shutdown_and_tick, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    tc = tcase_create("try_join");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, try_join2_all_succeed);
    tcase_add_test(tc, try_join2_error_drops_the_other);
    tcase_add_test(tc, try_join_all_stops_at_the_first_error);
    suite_add_tcase(s, tc);
    tc = tcase_create("misuse");
    tcase_set_timeout(tc, 30);
    if (can_fork())
        tcase_add_test(tc, misuse_aborts);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
