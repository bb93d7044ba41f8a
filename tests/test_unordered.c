/* tests/test_unordered.c - FuturesUnordered (weft_unordered_t): outputs
 * in completion order with their tags, 100,000 members each woken once
 * (every member polled once at its push and once per wake, no other poll:
 * O(1) per wake), a member woken during the set's own poll is not polled
 * twice in it, pushes from inside a member's poll, destroying a set with
 * pending members (and waking their wakers afterwards), allocation
 * failure, the cooperative budget, and members woken from plain threads
 * while a task on each runtime shape drains the set. */
#include "testlib.h"

#define ASSERT_NO_LIVE_SET()                                                    \
    do {                                                                        \
        ASSERT_NO_LIVE();                                                       \
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_UNORDERED), 0);             \
    } while (0)

/* ---- Members: pending at the first poll, ready at the next -----------------
 * The member is copied into the set, so what the test watches lives in
 * these arrays, indexed by the member's id: polls, whether it was woken,
 * and the waker its first poll stored. */
static int *m_polls;
static bool *m_woken;
static weft_waker_t *m_wakers;
static int *m_drops;

static void members_alloc(size_t n)
{
    m_polls = calloc(n, sizeof *m_polls);
    m_woken = calloc(n, sizeof *m_woken);
    m_wakers = calloc(n, sizeof *m_wakers);
    m_drops = calloc(n, sizeof *m_drops);
    ck_assert(m_polls && m_woken && m_wakers && m_drops);
}
static void members_free(void)
{
    free(m_polls);
    free(m_woken);
    free(m_wakers);
    free(m_drops);
}

typedef struct {
    weft_future_t future;
    int id;
} once_t;
static weft_poll_t once_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    int id = ((once_t *)(void *)f)->id;
    if (++m_polls[id] == 1) {
        m_wakers[id] = weft_waker_clone(cx->waker);
        return WEFT_PENDING;
    }
    WEFT_TEST_CHECK_MSG(m_woken[id], "member %d polled again without a wake", id);
    WEFT_TEST_CHECK_MSG(m_polls[id] == 2, "member %d polled %d times", id, m_polls[id]);
    if (out != NULL)
        *(int *)out = id;
    return WEFT_READY;
}
static void once_drop(weft_future_t *f)
{
    m_drops[((once_t *)(void *)f)->id]++;
}
static const weft_future_vtable_t once_vt = { once_poll, once_drop, NULL, sizeof(once_t), sizeof(int), "once" };

static void wake_member(int id)
{
    m_woken[id] = true;
    weft_waker_wake(&m_wakers[id]);
}

static weft_poll_t poll_next(weft_unordered_t *set, counter_t *c, uintptr_t *tag, void *out, bool *got)
{
    weft_waker_t w = counter_waker(c);
    weft_context_t cx = { &w };
    weft_unordered_next_t nx = weft_unordered_next(set, tag, out);
    weft_poll_t r = weft_future_poll(WEFT_FUTURE(&nx), &cx, got);
    weft_future_drop(WEFT_FUTURE(&nx));
    return r;
}

/* Polls next until it is pending without having woken its own task. */
static void poll_until_idle(weft_unordered_t *set, counter_t *c)
{
    for (;;) {
        int before = c->wakes;
        bool got = false;
        ck_assert_int_eq(poll_next(set, c, NULL, NULL, &got), WEFT_PENDING);
        if (c->wakes == before)
            return;
    }
}

START_TEST(outputs_in_completion_order_with_tags)
{
    enum { N = 4 };
    members_alloc(N);
    counter_t c = { 0 };
    weft_unordered_t set;
    weft_unordered_init(&set);
    ck_assert(weft_unordered_is_empty(&set));
    for (int i = 0; i < N; i++) {
        once_t m = { { &once_vt }, i };
        ck_assert_int_eq(weft_unordered_push(&set, WEFT_FUTURE(&m), (uintptr_t)(100 + i)), 0);
    }
    ck_assert_uint_eq(weft_unordered_len(&set), N);
    poll_until_idle(&set, &c);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(m_polls[i], 1);
    const int order[N] = { 2, 0, 3, 1 };
    for (int k = 0; k < N; k++) {
        uintptr_t tag = 0;
        int out = -1;
        bool got = false;
        /* Waiting (pending, nothing queued): a wake reaches the owner. */
        ck_assert_int_eq(poll_next(&set, &c, &tag, &out, &got), WEFT_PENDING);
        int before = c.wakes;
        wake_member(order[k]);
        ck_assert_int_eq(c.wakes, before + 1);
        ck_assert_int_eq(poll_next(&set, &c, &tag, &out, &got), WEFT_READY);
        ck_assert(got);
        ck_assert_int_eq(out, order[k]);
        ck_assert_uint_eq(tag, 100 + (uintptr_t)order[k]);
        ck_assert_int_eq(m_drops[order[k]], 1); /* dropped once finished */
        ck_assert_uint_eq(weft_unordered_len(&set), N - 1 - k);
    }
    bool got = true;
    ck_assert_int_eq(poll_next(&set, &c, NULL, NULL, &got), WEFT_READY);
    ck_assert(!got); /* empty */
    weft_unordered_destroy(&set);
    members_free();
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE_SET();
}
END_TEST

/* 100,000 members, each woken once, in a scrambled order: the outputs come
 * in exactly that order; the set polled each member once at its push and
 * once after its wake (polls == members + wakes); the owner is woken once
 * for the whole burst of wakes. */
START_TEST(hundred_thousand_members_one_wake_each)
{
    enum { N = 100000, STRIDE = 7919 }; /* 7919 is prime: i * STRIDE % N visits every id */
    members_alloc(N);
    counter_t c = { 0 };
    weft_unordered_t set;
    weft_unordered_init(&set);
    for (int i = 0; i < N; i++) {
        once_t m = { { &once_vt }, i };
        ck_assert_int_eq(weft_unordered_push(&set, WEFT_FUTURE(&m), (uintptr_t)i), 0);
    }
    poll_until_idle(&set, &c);
    long polls = 0;
    for (int i = 0; i < N; i++)
        polls += m_polls[i];
    ck_assert_int_eq(polls, N);
    int owner_wakes = c.wakes;
    for (long k = 0; k < N; k++)
        wake_member((int)(k * STRIDE % N));
    ck_assert_int_eq(c.wakes, owner_wakes + 1);
    for (long k = 0; k < N; k++) {
        uintptr_t tag = 0;
        int out = -1;
        bool got = false;
        weft_poll_t r;
        while ((r = poll_next(&set, &c, &tag, &out, &got)) == WEFT_PENDING)
            ; /* a pending poll here is a yield: nothing was lost */
        ck_assert(got);
        if (out != (int)(k * STRIDE % N) || tag != (uintptr_t)out)
            ck_abort_msg("completion %ld: member %d (tag %ju), expected %ld", k, out, (uintmax_t)tag, k * STRIDE % N);
    }
    polls = 0;
    for (int i = 0; i < N; i++) {
        polls += m_polls[i];
        ck_assert_int_eq(m_drops[i], 1);
    }
    ck_assert_int_eq(polls, 2L * N); /* members + wakes */
    ck_assert(weft_unordered_is_empty(&set));
    weft_unordered_destroy(&set);
    members_free();
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE_SET();
}
END_TEST

/* ---- Wakes during the set's own poll ------------------------------------- */

/* A member that wakes itself at every poll (like a yield), and one that
 * wakes the first member's stored waker from inside its own poll. */
typedef struct {
    weft_future_t future;
    int id;
    int wake_other; /* -1: wake itself */
} waker_member_t;
static weft_poll_t waker_member_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)out;
    waker_member_t *m = (waker_member_t *)(void *)f;
    m_polls[m->id]++;
    if (m->wake_other < 0) {
        weft_waker_wake_by_ref(cx->waker);
    } else if (m_wakers[m->wake_other].vtable != NULL) {
        m_woken[m->wake_other] = true;
        weft_waker_wake_by_ref(&m_wakers[m->wake_other]);
    }
    return WEFT_PENDING;
}
static const weft_future_vtable_t waker_member_vt = { waker_member_poll, NULL, NULL, sizeof(waker_member_t), 0,
                                                      "waker_member" };

START_TEST(member_woken_during_the_poll_waits_for_the_next_round)
{
    members_alloc(3);
    counter_t c = { 0 };
    weft_unordered_t set;
    weft_unordered_init(&set);
    once_t a = { { &once_vt }, 0 };                              /* stores its waker, then waits */
    waker_member_t self_waker = { { &waker_member_vt }, 1, -1 };  /* wakes itself at every poll */
    waker_member_t other_waker = { { &waker_member_vt }, 2, 0 };  /* wakes member 0 */
    ck_assert_int_eq(weft_unordered_push(&set, WEFT_FUTURE(&a), 0), 0);
    ck_assert_int_eq(weft_unordered_push(&set, WEFT_FUTURE(&self_waker), 1), 0);
    ck_assert_int_eq(weft_unordered_push(&set, WEFT_FUTURE(&other_waker), 2), 0);
    /* Round 1: each member polled once; members 1 and 0 are woken during
     * the round, and wait for the next one: the set yields instead. */
    int before = c.wakes;
    bool got = false;
    ck_assert_int_eq(poll_next(&set, &c, NULL, NULL, &got), WEFT_PENDING);
    ck_assert_int_eq(m_polls[0], 1);
    ck_assert_int_eq(m_polls[1], 1);
    ck_assert_int_eq(m_polls[2], 1);
    ck_assert_int_gt(c.wakes, before);
    /* Round 2: member 1 again, then member 0, which finishes. */
    uintptr_t tag = 99;
    ck_assert_int_eq(poll_next(&set, &c, &tag, NULL, &got), WEFT_READY);
    ck_assert(got);
    ck_assert_uint_eq(tag, 0);
    ck_assert_int_eq(m_polls[0], 2);
    ck_assert_int_eq(m_polls[1], 2);
    ck_assert_int_eq(m_polls[2], 1); /* never woken again: never polled again */
    /* Later rounds: only the self-waking member, once per round. */
    for (int round = 3; round <= 10; round++) {
        before = c.wakes;
        ck_assert_int_eq(poll_next(&set, &c, NULL, NULL, &got), WEFT_PENDING);
        ck_assert_int_eq(m_polls[1], round);
        ck_assert_int_eq(m_polls[2], 1);
        ck_assert_int_gt(c.wakes, before);
    }
    weft_waker_drop(&m_wakers[0]); /* member 0's waker outlived the member */
    weft_unordered_destroy(&set);
    ck_assert_int_eq(m_drops[0], 1);
    members_free();
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE_SET();
}
END_TEST

/* ---- Pushing from inside a member's poll ------------------------------------ */

typedef struct {
    weft_future_t future;
    weft_unordered_t *set;
    int children;
} spawner_member_t;
static weft_poll_t spawner_member_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx;
    spawner_member_t *m = (spawner_member_t *)(void *)f;
    for (int i = 0; i < m->children; i++) {
        weft_ready_t r = weft_ready(1000 + i);
        WEFT_TEST_CHECK_INT_EQ(weft_unordered_push(m->set, WEFT_FUTURE(&r), (uintptr_t)(1000 + i)), 0);
    }
    if (out != NULL)
        *(intptr_t *)out = -1;
    return WEFT_READY;
}
static const weft_future_vtable_t spawner_member_vt = { spawner_member_poll, NULL, NULL, sizeof(spawner_member_t),
                                                        sizeof(intptr_t), "spawner_member" };

START_TEST(push_during_poll)
{
    enum { KIDS = 100 };
    counter_t c = { 0 };
    weft_unordered_t set;
    weft_unordered_init(&set);
    spawner_member_t sp = { { &spawner_member_vt }, &set, KIDS };
    ck_assert_int_eq(weft_unordered_push(&set, WEFT_FUTURE(&sp), 1), 0);
    long sum = 0;
    int got_n = 0;
    bool seen[KIDS] = { false };
    for (;;) {
        uintptr_t tag = 0;
        intptr_t out = 0;
        bool got = false;
        if (poll_next(&set, &c, &tag, &out, &got) == WEFT_PENDING)
            continue;
        if (!got)
            break;
        got_n++;
        if (tag != 1) {
            ck_assert_int_eq((intptr_t)tag, out);
            ck_assert(!seen[tag - 1000]);
            seen[tag - 1000] = true;
            sum += out - 1000;
        }
    }
    ck_assert_int_eq(got_n, KIDS + 1);
    ck_assert_int_eq(sum, KIDS * (KIDS - 1) / 2);
    weft_unordered_destroy(&set);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE_SET();
}
END_TEST

/* ---- Destroy -------------------------------------------------------------------- */

START_TEST(destroy_drops_pending_members)
{
    enum { N = 50 };
    members_alloc(N);
    counter_t c = { 0 };
    weft_unordered_t set;
    weft_unordered_init(&set);
    for (int i = 0; i < N; i++) {
        once_t m = { { &once_vt }, i };
        ck_assert_int_eq(weft_unordered_push(&set, WEFT_FUTURE(&m), (uintptr_t)i), 0);
    }
    poll_until_idle(&set, &c);
    /* Some wakes queued, one member finished, the rest pending. */
    wake_member(7);
    uintptr_t tag = 0;
    bool got = false;
    ck_assert_int_eq(poll_next(&set, &c, &tag, NULL, &got), WEFT_READY);
    ck_assert_uint_eq(tag, 7);
    wake_member(3);
    wake_member(9);
    weft_unordered_destroy(&set);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(m_drops[i], 1);
    ck_assert_uint_eq(weft_unordered_len(&set), 0);
    /* Wakers that outlive the set stay valid and do nothing. */
    int owner_wakes = c.wakes;
    for (int i = 0; i < N; i += 2)
        if (m_wakers[i].vtable != NULL)
            wake_member(i);
    for (int i = 0; i < N; i++)
        weft_waker_drop(&m_wakers[i]);
    ck_assert_int_eq(c.wakes, owner_wakes);
    /* The set can be used again. */
    once_t m = { { &once_vt }, 0 };
    m_polls[0] = 0;
    ck_assert_int_eq(weft_unordered_push(&set, WEFT_FUTURE(&m), 0), 0);
    weft_unordered_destroy(&set);
    ck_assert_int_eq(m_drops[0], 2);
    weft_unordered_destroy(&set); /* empty: nothing */
    members_free();
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE_SET();
}
END_TEST

/* ---- Allocation failure ------------------------------------------------------------ */

START_TEST(push_fails_with_enomem)
{
    members_alloc(2);
    weft_unordered_t set;
    weft_unordered_init(&set);
    once_t m = { { &once_vt }, 0 };
    weft__alloc_fail_after(1); /* the hub */
    ck_assert_int_eq(weft_unordered_push(&set, WEFT_FUTURE(&m), 0), WEFT_ENOMEM);
    weft__alloc_fail_after(2); /* the node */
    ck_assert_int_eq(weft_unordered_push(&set, WEFT_FUTURE(&m), 0), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    ck_assert_uint_eq(weft_unordered_len(&set), 0);
    /* The caller still owns m: drop it; then a push that succeeds. */
    weft_future_drop(WEFT_FUTURE(&m));
    ck_assert_int_eq(m_drops[0], 1);
    once_t m2 = { { &once_vt }, 1 };
    ck_assert_int_eq(weft_unordered_push(&set, WEFT_FUTURE(&m2), 0), 0);
    ck_assert_uint_eq(weft_unordered_len(&set), 1);
    weft_unordered_destroy(&set);
    ck_assert_int_eq(m_drops[1], 1);
    members_free();
    ASSERT_NO_LIVE_SET();
}
END_TEST

/* ---- The cooperative budget ------------------------------------------------------------ */

/* Pushes always-ready members and takes them, 1000 times: the set spends
 * the budget, so a sibling task gets to run in the middle. */
typedef struct {
    WEFT_FRAME;
    weft_unordered_t set;
    int i, saw;
    bool got;
    weft_unordered_next_t next;
} greedy_t;
static void greedy_cleanup(greedy_t *self) { weft_unordered_destroy(&self->set); }
WEFT_ASYNC_WITH_DROP(greedy_t, greedy, int, greedy_cleanup)
{
    WEFT_BEGIN();
    for (self->i = 1; self->i <= 1000; self->i++) {
        {
            weft_ready_t r = weft_ready(self->i);
            if (!WEFT_TEST_CHECK_INT_EQ(weft_unordered_push(&self->set, WEFT_FUTURE(&r), 0), 0))
                WEFT_RETURN(0);
        }
        WEFT_AWAIT(&self->next, weft_unordered_next(&self->set, NULL, NULL), &self->got);
        if (coop_sibling_ran && self->saw == 0)
            self->saw = self->i;
    }
    WEFT_RETURN(self->saw);
    WEFT_END();
}

START_TEST(next_spends_the_coop_budget)
{
    greedy_t g = { WEFT_FRAME_INIT(greedy) };
    weft_unordered_init(&g.set); /* a set may move (here: into the task) until it is polled */
    assert_coop_yields(WEFT_FUTURE(&g));
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE_SET();
}
END_TEST

/* ---- On a runtime: oneshot members woken by a plain thread ------------------------------ */

/* The bench's member: a oneshot receiver whose value is the output. The
 * receiver's destination is set at each poll, inside the set's copy. */
typedef struct {
    weft_future_t future;
    weft_oneshot_rx_t rx;
    uint32_t val;
} recv_member_t;
static weft_poll_t recv_member_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    recv_member_t *m = (recv_member_t *)(void *)f;
    int rc = -1;
    if (weft_future_poll(weft_oneshot_recv(&m->rx, &m->val), cx, &rc) == WEFT_PENDING)
        return WEFT_PENDING;
    WEFT_TEST_CHECK_INT_EQ(rc, 0);
    if (out != NULL)
        *(uint32_t *)out = m->val;
    return WEFT_READY;
}
static void recv_member_drop(weft_future_t *f)
{
    weft_oneshot_rx_drop(&((recv_member_t *)(void *)f)->rx);
}
static const weft_future_vtable_t recv_member_vt = { recv_member_poll, recv_member_drop, NULL, sizeof(recv_member_t),
                                                     sizeof(uint32_t), "recv_member" };

enum { RT_MEMBERS = 2000 };
static weft_oneshot_tx_t rt_tx[RT_MEMBERS];

typedef struct {
    WEFT_FRAME;
    weft_unordered_t set;
    int i, n;
    uint64_t sum;
    uintptr_t tag;
    uint32_t val;
    bool got;
    weft_unordered_next_t next;
} drain_t;
static void drain_cleanup(drain_t *self) { weft_unordered_destroy(&self->set); }
WEFT_ASYNC_WITH_DROP(drain_t, drain, uint64_t, drain_cleanup)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->next, weft_unordered_next(&self->set, &self->tag, &self->val), &self->got);
        if (!self->got)
            break;
        WEFT_TEST_CHECK_INT_EQ(self->val, self->tag * 3);
        self->sum += self->val;
        self->n++;
    }
    WEFT_TEST_CHECK_INT_EQ(self->n, RT_MEMBERS);
    WEFT_RETURN(self->sum);
    WEFT_END();
}

static void *sender_main(void *arg)
{
    (void)arg;
    for (int i = RT_MEMBERS - 1; i >= 0; i--) {
        uint32_t v = (uint32_t)i * 3;
        WEFT_TEST_CHECK_INT_EQ(weft_oneshot_send(&rt_tx[i], &v), 0);
    }
    return NULL;
}

START_TEST(members_woken_from_a_plain_thread)
{
    weft_runtime_t *rt = shape_rt(_i);
    drain_t d = { WEFT_FRAME_INIT(drain) };
    weft_unordered_init(&d.set);
    for (int i = 0; i < RT_MEMBERS; i++) {
        recv_member_t m = { { &recv_member_vt }, { { NULL }, NULL, NULL }, 0 };
        ck_assert_int_eq(weft_oneshot_new(sizeof(uint32_t), NULL, &rt_tx[i], &m.rx), 0);
        ck_assert_int_eq(weft_unordered_push(&d.set, WEFT_FUTURE(&m), (uintptr_t)i), 0);
    }
    pthread_t th;
    pthread_create(&th, NULL, sender_main, NULL);
    uint64_t sum = 0;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&d), &sum), 0);
    pthread_join(th, NULL);
    ck_assert_uint_eq(sum, 3ULL * RT_MEMBERS * (RT_MEMBERS - 1) / 2);
    weft_runtime_free(rt);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE_SET();
}
END_TEST

/* A task draining a set is dropped by shutdown with members pending. */
START_TEST(pending_set_dropped_by_shutdown)
{
    weft_runtime_t *rt = shape_rt(_i);
    drain_t d = { WEFT_FRAME_INIT(drain) };
    weft_unordered_init(&d.set);
    for (int i = 0; i < 10; i++) {
        recv_member_t m = { { &recv_member_vt }, { { NULL }, NULL, NULL }, 0 };
        ck_assert_int_eq(weft_oneshot_new(sizeof(uint32_t), NULL, &rt_tx[i], &m.rx), 0);
        ck_assert_int_eq(weft_unordered_push(&d.set, WEFT_FUTURE(&m), (uintptr_t)i), 0);
    }
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &d, NULL), 0);
    let_tasks_run(rt, _i);
    weft_runtime_free(rt);
    for (int i = 0; i < 10; i++) {
        ck_assert(weft_oneshot_is_closed(&rt_tx[i])); /* the receivers were dropped */
        weft_oneshot_tx_drop(&rt_tx[i]);
    }
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE_SET();
}
END_TEST

/* ---- Misuse ------------------------------------------------------------------------------ */

typedef struct {
    weft_future_t future;
    weft_unordered_t *set;
} destroyer_t;
static weft_poll_t destroyer_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx, (void)out;
    weft_unordered_destroy(((destroyer_t *)(void *)f)->set);
    return WEFT_PENDING;
}
static const weft_future_vtable_t destroyer_vt = { destroyer_poll, NULL, NULL, sizeof(destroyer_t), 0, "destroyer" };

static void destroy_from_a_member(void)
{
    weft_unordered_t set;
    weft_unordered_init(&set);
    destroyer_t d = { { &destroyer_vt }, &set };
    if (weft_unordered_push(&set, WEFT_FUTURE(&d), 0) != 0)
        return;
    counter_t c = { 0 };
    bool got;
    poll_next(&set, &c, NULL, NULL, &got);
}
START_TEST(misuse_aborts)
{
    expect_panic(destroy_from_a_member, "weft_unordered_destroy called from inside a poll");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("unordered");
    TCase *tc = tcase_create("order");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, outputs_in_completion_order_with_tags);
    tcase_add_test(tc, hundred_thousand_members_one_wake_each);
    tcase_add_test(tc, member_woken_during_the_poll_waits_for_the_next_round);
    tcase_add_test(tc, push_during_poll);
    suite_add_tcase(s, tc);
    tc = tcase_create("lifetime");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, destroy_drops_pending_members);
    tcase_add_test(tc, push_fails_with_enomem);
    suite_add_tcase(s, tc);
    tc = tcase_create("runtime");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, next_spends_the_coop_budget);
    tcase_add_loop_test(tc, members_woken_from_a_plain_thread, 0, N_SHAPES);
    tcase_add_loop_test(tc, pending_set_dropped_by_shutdown, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    tc = tcase_create("misuse");
    tcase_set_timeout(tc, 30);
    if (can_fork())
        tcase_add_test(tc, misuse_aborts);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
