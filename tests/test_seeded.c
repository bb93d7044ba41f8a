/* tests/test_seeded.c - the seeded task order of a current-thread runtime
 * (WEFT_ORDER_SEEDED, WEFT_ORDER_RANDOM; docs/testing.md): the poll order
 * of tasks that yield, spawn and sleep is the same for the same seed and
 * differs between seeds; WEFT_SEED replays a random run; the seed is
 * printed when asked; and the combinations weft does not support are
 * refused with WEFT_EINVAL. Every body runs on the block_on thread, so
 * the trace needs no lock. */
#include "testlib.h"

/* ---- The trace: which task each poll belonged to -------------------------- */
#define TRACE_MAX 8192
static int trace[TRACE_MAX];
static int ntrace;

static void note(int id)
{
    if (ntrace < TRACE_MAX)
        trace[ntrace++] = id;
}

/* A task that notes its id at every poll, yielding `rounds` times; with
 * `nap_ms`, it sleeps that long in the middle (on a virtual clock, so
 * timers fire from the block_on thread too). */
typedef struct {
    WEFT_FRAME;
    int id, rounds, i;
    uint64_t nap_ms;
    weft_sleep_t nap;
} yielder_t;
WEFT_ASYNC(yielder_t, yielder_fn, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < self->rounds; self->i++) {
        note(self->id);
        if (self->nap_ms != 0 && self->i == self->rounds / 2)
            WEFT_AWAIT(&self->nap, weft_sleep_ms(self->nap_ms), NULL);
        else
            WEFT_YIELD();
    }
    note(self->id);
    WEFT_RETURN(self->id);
    WEFT_END();
}

/* The root: spawns n yielders (odd ones spawn their successor themselves,
 * so spawns from tasks are in the mix) and joins them all. */
typedef struct {
    WEFT_FRAME;
    int n, rounds, i, rc, out;
    uint64_t nap_ms;
    weft_join_handle_t *h;  /* the yielders' */
    weft_join_handle_t *sh; /* the spawners' (odd indices) */
} root_t;

typedef struct {
    WEFT_FRAME;
    root_t *root;
    int idx, rc;
    yielder_t y;
} spawner_t;
WEFT_ASYNC(spawner_t, spawner_fn, int)
{
    WEFT_BEGIN();
    note(1000 + self->idx);
    WEFT_YIELD();
    self->y = (yielder_t){ WEFT_FRAME_INIT(yielder_fn), .id = self->idx, .rounds = self->root->rounds,
                           .nap_ms = self->root->nap_ms ? self->root->nap_ms + (uint64_t)(self->idx % 3) : 0 };
    self->rc = weft_spawn(&self->y, &self->root->h[self->idx]);
    WEFT_RETURN(self->rc);
    WEFT_END();
}

WEFT_ASYNC(root_t, root_fn, int)
{
    WEFT_BEGIN();
    /* Even tasks from here; each odd one from a spawner task, which fills
     * its handle before the root joins it (the spawner is joined first). */
    for (self->i = 0; self->i < self->n; self->i += 2) {
        yielder_t y = { WEFT_FRAME_INIT(yielder_fn), .id = self->i, .rounds = self->rounds,
                        .nap_ms = self->nap_ms ? self->nap_ms + (uint64_t)(self->i % 3) : 0 };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn(&y, &self->h[self->i]), 0))
            WEFT_RETURN(-1);
        if (self->i + 1 < self->n) {
            spawner_t sp = { WEFT_FRAME_INIT(spawner_fn), .root = self, .idx = self->i + 1 };
            if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn(&sp, &self->sh[self->i + 1]), 0))
                WEFT_RETURN(-1);
        }
    }
    for (self->i = 0; self->i < self->n; self->i++) {
        if (self->i % 2 == 1) { /* first the spawner, whose output is its spawn's rc */
            WEFT_AWAIT_REF(weft_join(&self->sh[self->i], &self->out), &self->rc);
            if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0) || !WEFT_TEST_CHECK_INT_EQ(self->out, 0))
                WEFT_RETURN(-1);
        }
        WEFT_AWAIT_REF(weft_join(&self->h[self->i], &self->out), &self->rc);
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0) || !WEFT_TEST_CHECK_INT_EQ(self->out, self->i))
            WEFT_RETURN(-1);
    }
    WEFT_RETURN(0);
    WEFT_END();
}

static weft_runtime_t *order_rt(weft_task_order_t order, uint64_t seed, weft_clock_t clock)
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_CURRENT_THREAD);
    b.task_order = order;
    b.seed = seed;
    b.clock = clock;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    return rt;
}

/* Runs n tasks of `rounds` yields on rt (freed here) and returns the
 * trace's length; the trace is in trace[]. */
static int run_on(weft_runtime_t *rt, int n, int rounds, uint64_t nap_ms)
{
    static weft_join_handle_t h[1024], sh[1024];
    ck_assert_int_le(n, 1024);
    ntrace = 0;
    root_t r = { WEFT_FRAME_INIT(root_fn), .n = n, .rounds = rounds, .nap_ms = nap_ms, .h = h, .sh = sh };
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&r), &rc), 0);
    weft_runtime_free(rt);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(rc, 0);
    ck_assert_int_lt(ntrace, TRACE_MAX);
    return ntrace;
}

static int run_seeded(uint64_t seed, int n, int rounds, uint64_t nap_ms, int *copy)
{
    weft_clock_t clock = nap_ms ? WEFT_CLOCK_PAUSED : WEFT_CLOCK_REAL;
    int len = run_on(order_rt(WEFT_ORDER_SEEDED, seed, clock), n, rounds, nap_ms);
    memcpy(copy, trace, (size_t)len * sizeof *copy);
    return len;
}

static int a[TRACE_MAX], b2[TRACE_MAX], c[TRACE_MAX];

/* Every task's polls appear in its own order and each task ran rounds+1
 * times: a shuffled trace is still a complete one. */
static void assert_complete(const int *t, int len, int n, int rounds)
{
    int seen[1024] = { 0 };
    for (int i = 0; i < len; i++)
        if (t[i] < 1000)
            seen[t[i]]++;
    for (int k = 0; k < n; k++)
        ck_assert_int_eq(seen[k], rounds + 1);
}

START_TEST(same_seed_same_order_other_seed_other_order)
{
    const int n = 8, rounds = 6;
    int la = run_seeded(42, n, rounds, 0, a);
    int lb = run_seeded(42, n, rounds, 0, b2);
    int lc = run_seeded(43, n, rounds, 0, c);
    ck_assert_int_eq(la, lb);
    ck_assert_int_eq(la, lc);
    assert_complete(a, la, n, rounds);
    ck_assert_msg(memcmp(a, b2, (size_t)la * sizeof *a) == 0, "seed 42 gave two different orders");
    ck_assert_msg(memcmp(a, c, (size_t)la * sizeof *a) != 0, "seeds 42 and 43 gave the same order");
    /* The default order is not what a seed gives (it is the LIFO slot and
     * the queues in turn): the seeded one really shuffles. */
    int ld = run_on(order_rt(WEFT_ORDER_DEFAULT, 0, WEFT_CLOCK_REAL), n, rounds, 0);
    ck_assert_int_eq(ld, la);
    assert_complete(trace, ld, n, rounds);
    ck_assert(memcmp(trace, a, (size_t)la * sizeof *a) != 0);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(many_seeds_many_orders)
{
    /* 16 seeds, 4 tasks of 3 yields: nearly every seed gives its own
     * order (there are thousands), and each one twice the same. */
    int distinct = 0;
    static int first[16][TRACE_MAX];
    int len[16];
    for (int s = 0; s < 16; s++) {
        len[s] = run_seeded((uint64_t)s, 4, 3, 0, first[s]);
        int again[TRACE_MAX];
        ck_assert_int_eq(run_seeded((uint64_t)s, 4, 3, 0, again), len[s]);
        ck_assert(memcmp(again, first[s], (size_t)len[s] * sizeof(int)) == 0);
        bool fresh = true;
        for (int p = 0; p < s && fresh; p++)
            fresh = memcmp(first[p], first[s], (size_t)len[s] * sizeof(int)) != 0;
        distinct += fresh;
    }
    ck_assert_int_ge(distinct, 12);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(more_tasks_than_a_queue_holds)
{
    /* 600 tasks: the local queue (256) overflows to the inject queue, and
     * the order is still the seed's. */
    int la = run_seeded(7, 600, 2, 0, a);
    int lb = run_seeded(7, 600, 2, 0, b2);
    ck_assert_int_eq(la, lb);
    assert_complete(a, la, 600, 2);
    ck_assert(memcmp(a, b2, (size_t)la * sizeof *a) == 0);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(seeded_with_paused_clock_replays_timers)
{
    /* Sleeps of 5, 6 and 7 ms on a virtual clock, several tasks per
     * deadline: which of the tasks woken together runs first is the
     * seed's choice, and the same every time. */
    int la = run_seeded(99, 12, 4, 5, a);
    int lb = run_seeded(99, 12, 4, 5, b2);
    int lc = run_seeded(100, 12, 4, 5, c);
    ck_assert_int_eq(la, lb);
    assert_complete(a, la, 12, 4);
    ck_assert(memcmp(a, b2, (size_t)la * sizeof *a) == 0);
    ck_assert_int_eq(la, lc);
    ck_assert(memcmp(a, c, (size_t)la * sizeof *a) != 0);
    ASSERT_NO_LIVE();
}
END_TEST

/* Captures what fn writes on stderr (fd 2) into buf. */
static void capture_stderr(void (*fn)(void *), void *arg, char *buf, size_t len)
{
    char path[] = "/tmp/weft-seed-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    dup2(fd, 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, buf, len - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
}

typedef struct {
    weft_task_order_t order;
    uint64_t seed;
    bool print;
    int rc;
    uint64_t got;
} make_t;
static void make_rt(void *arg)
{
    make_t *m = arg;
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_CURRENT_THREAD);
    b.task_order = m->order;
    b.seed = m->seed;
    b.print_seed = m->print;
    weft_runtime_t *rt = NULL;
    m->rc = weft_runtime_new(&b, &rt);
    if (m->rc == 0) {
        if (weft_runtime_seed(rt, &m->got) != 0)
            m->got = ~(uint64_t)0;
        weft_runtime_free(rt);
    }
}

START_TEST(seed_printed_when_asked)
{
    char out[512];
    make_t m = { WEFT_ORDER_SEEDED, 4242, true, -1, 0 };
    capture_stderr(make_rt, &m, out, sizeof out);
    ck_assert_int_eq(m.rc, 0);
    ck_assert_uint_eq(m.got, 4242);
    ck_assert_msg(strstr(out, "weft: task order seed 4242") != NULL, "printed: %s", out);

    m = (make_t){ WEFT_ORDER_SEEDED, 4242, false, -1, 0 }; /* not asked: silent */
    capture_stderr(make_rt, &m, out, sizeof out);
    ck_assert_int_eq(m.rc, 0);
    ck_assert_str_eq(out, "");

    unsetenv("WEFT_SEED");
    m = (make_t){ WEFT_ORDER_RANDOM, 0, true, -1, 0 }; /* a fresh seed, and how to replay it */
    capture_stderr(make_rt, &m, out, sizeof out);
    ck_assert_int_eq(m.rc, 0);
    char want[128];
    snprintf(want, sizeof want, "(replay: WEFT_SEED=%" PRIu64 ")", m.got);
    ck_assert_msg(strstr(out, want) != NULL, "printed: %s, wanted %s", out, want);

    setenv("WEFT_SEED", "0x10", 1);
    m = (make_t){ WEFT_ORDER_RANDOM, 0, true, -1, 0 };
    capture_stderr(make_rt, &m, out, sizeof out);
    unsetenv("WEFT_SEED");
    ck_assert_int_eq(m.rc, 0);
    ck_assert_uint_eq(m.got, 16);
    ck_assert_msg(strstr(out, "seed 16 from WEFT_SEED") != NULL, "printed: %s", out);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(random_order_replays_with_its_seed)
{
    /* A random run, then the same program with WEFT_SEED set to its seed,
     * and with that seed given to WEFT_ORDER_SEEDED: three equal traces. */
    unsetenv("WEFT_SEED");
    weft_runtime_t *rt = order_rt(WEFT_ORDER_RANDOM, 0, WEFT_CLOCK_REAL);
    uint64_t seed = 0;
    ck_assert_int_eq(weft_runtime_seed(rt, &seed), 0);
    int la = run_on(rt, 6, 5, 0);
    memcpy(a, trace, (size_t)la * sizeof *a);

    char text[32];
    snprintf(text, sizeof text, "%" PRIu64, seed);
    setenv("WEFT_SEED", text, 1);
    rt = order_rt(WEFT_ORDER_RANDOM, 0, WEFT_CLOCK_REAL);
    unsetenv("WEFT_SEED");
    uint64_t again = 0;
    ck_assert_int_eq(weft_runtime_seed(rt, &again), 0);
    ck_assert_uint_eq(again, seed);
    ck_assert_int_eq(run_on(rt, 6, 5, 0), la);
    ck_assert(memcmp(a, trace, (size_t)la * sizeof *a) == 0);

    ck_assert_int_eq(run_seeded(seed, 6, 5, 0, b2), la);
    ck_assert(memcmp(a, b2, (size_t)la * sizeof *a) == 0);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(unsupported_combinations_refused)
{
    weft_builder_t b;
    weft_runtime_t *rt = NULL;
    /* Multi-thread: its workers pick tasks independently. */
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 1;
    b.task_order = WEFT_ORDER_SEEDED;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), WEFT_EINVAL);
    b.task_order = WEFT_ORDER_RANDOM;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), WEFT_EINVAL);
    /* An order that does not exist. */
    weft_builder_init(&b, WEFT_RUNTIME_CURRENT_THREAD);
    b.task_order = (weft_task_order_t)7;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), WEFT_EINVAL);
    /* A WEFT_SEED that is not a number (only read by WEFT_ORDER_RANDOM). */
    const char *bad[] = { "abc", "12x", "", "-5", " 5" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("WEFT_SEED", bad[i], 1);
        b.task_order = WEFT_ORDER_RANDOM;
        int rc = weft_runtime_new(&b, &rt);
        if (bad[i][0] == '\0') { /* empty: as if unset */
            ck_assert_int_eq(rc, 0);
            weft_runtime_free(rt);
        } else {
            ck_assert_msg(rc == WEFT_EINVAL, "WEFT_SEED=\"%s\" gave %d", bad[i], rc);
        }
        b.task_order = WEFT_ORDER_SEEDED; /* an explicit seed ignores it */
        ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
        weft_runtime_free(rt);
    }
    unsetenv("WEFT_SEED");
    /* No seed to tell on a default runtime. */
    rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    uint64_t seed = 5;
    ck_assert_int_eq(weft_runtime_seed(rt, &seed), WEFT_EINVAL);
    ck_assert_uint_eq(seed, 5);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("seeded");
    TCase *tc = tcase_create("order");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, same_seed_same_order_other_seed_other_order);
    tcase_add_test(tc, many_seeds_many_orders);
    tcase_add_test(tc, more_tasks_than_a_queue_holds);
    tcase_add_test(tc, seeded_with_paused_clock_replays_timers);
    tcase_add_test(tc, seed_printed_when_asked);
    tcase_add_test(tc, random_order_replays_with_its_seed);
    tcase_add_test(tc, unsupported_combinations_refused);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
