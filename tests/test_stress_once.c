/* tests/test_stress_once.c - seeded chaos stress of the once cell and the
 * barrier. Suite `stress` only.
 *  - oncecell: many tasks race get_or_init while a plain thread aborts a
 *    seed-chosen subset at seed-chosen moments (initialisers included):
 *    never two init futures running at once, at most one completes, every
 *    init future a task built is dropped exactly once, every task that
 *    was not aborted gets the one value.
 *  - barrier: groups of N waits with seed-chosen aborts; replacement
 *    tasks arrive until every task that was not aborted is released. A
 *    withdrawn arrival that still counted (or one counted twice) shows as
 *    a leader count that does not fit the completions, or a hang.
 * Each iteration turns chaos on with a new seed (chaos points at every
 * step of sync/waiters.h, sync/semaphore.c, sync/barrier.c and
 * sync/oncecell.c); a failure prints the seed, and WEFT_CHAOS_SEED=<seed>
 * WEFT_CHAOS_ITERS=1 replays it. */
#include "../sync/waiters.h"
#include "locktest.h"

#define CHAOS_PERMILLE 30

static uint64_t next_rand(uint64_t *s)
{
    /* xorshift64: deterministic per seed. */
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}


/* ---- OnceCell: initialisers aborted at random ----------------------------------------- */

typedef struct {
    _Atomic int made, runs, inside, max_inside, completed, drops;
} once_counts_t;

/* An init future that yields `pend` times, tracking how many run at once. */
typedef struct {
    weft_future_t future;
    once_counts_t *cnt;
    int value, pend;
    bool started, finished;
} init_t;
static weft_poll_t init_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    init_t *m = (init_t *)(void *)f;
    if (!m->started) {
        m->started = true;
        m->cnt->runs++;
        int in = ++m->cnt->inside;
        int mx = m->cnt->max_inside;
        while (in > mx && !atomic_compare_exchange_weak(&m->cnt->max_inside, &mx, in)) {
        }
    }
    if (m->pend > 0) {
        m->pend--;
        weft_waker_wake_by_ref(cx->waker);
        return WEFT_PENDING;
    }
    m->finished = true;
    m->cnt->inside--;
    m->cnt->completed++;
    *(int *)out = m->value;
    return WEFT_READY;
}
static void init_drop(weft_future_t *f)
{
    init_t *m = (init_t *)(void *)f;
    if (m->started && !m->finished)
        m->cnt->inside--;
    m->cnt->drops++;
}
static const weft_future_vtable_t init_vt = { init_poll, init_drop, NULL, sizeof(init_t), sizeof(int), "init" };

typedef struct {
    WEFT_FRAME;
    weft_oncecell_t *cell;
    once_counts_t *cnt;
    int id, pend;
    int *got;
    init_t m;
    weft_oncecell_get_or_init_t g;
} racer_t;
WEFT_ASYNC(racer_t, racer, int)
{
    WEFT_BEGIN();
    self->m = (init_t){ { &init_vt }, self->cnt, 1000 + self->id, self->pend, false, false };
    self->cnt->made++;
    WEFT_AWAIT(&self->g, weft_oncecell_get_or_init(self->cell, WEFT_FUTURE(&self->m)), &self->got);
    if (!WEFT_TEST_CHECK(self->got != NULL && self->got == weft_oncecell_get(self->cell)))
        WEFT_RETURN(-1);
    WEFT_RETURN(*self->got);
    WEFT_END();
}

enum { OT = 12 };
typedef struct {
    weft_join_handle_t *h;
    bool abort[OT];
    uint64_t seed;
} aborter_t;
static void *aborter_main(void *arg)
{
    aborter_t *a = arg;
    uint64_t r = a->seed;
    for (int i = 0; i < OT; i++) {
        if (!a->abort[i])
            continue;
        if (next_rand(&r) & 1)
            sched_yield();
        weft_join_handle_abort(&a->h[i]);
    }
    return NULL;
}

static void once_abort_race(int shape, uint64_t seed)
{
    weft__chaos_set(seed, CHAOS_PERMILLE);
    weft_runtime_t *rt = shape_rt(shape);
    weft_oncecell_t c;
    ck_assert_int_eq(weft_oncecell_init(&c, sizeof(int), NULL), 0);
    static once_counts_t cnt;
    memset(&cnt, 0, sizeof cnt);
    static weft_join_handle_t h[OT];
    aborter_t ab = { h, { false }, seed };
    uint64_t r = seed;
    int aborted = 0;
    for (int i = 0; i < OT; i++) {
        ab.abort[i] = (next_rand(&r) % 3) == 0; /* about a third, initialisers among them */
        aborted += ab.abort[i];
        racer_t t = { WEFT_FRAME_INIT(racer), .cell = &c, .cnt = &cnt, .id = i, .pend = (int)(next_rand(&r) % 12) };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t, &h[i]), 0);
    }
    pthread_t th;
    pthread_create(&th, NULL, aborter_main, &ab);
    if (shape == 0)
        for (int k = 0; k < (int)(seed % 4); k++)
            let_tasks_run(rt, shape);
    pthread_join(th, NULL);
    int value = -1;
    for (int i = 0; i < OT; i++) {
        int out = -2;
        int j = join_out(rt, &h[i], &out);
        if (ab.abort[i]) {
            ck_assert_msg(j == WEFT_ECANCELED || j == 0, "seed %llu: aborted join %d", (unsigned long long)seed, j);
        } else {
            ck_assert_msg(j == 0, "seed %llu: task %d join %d", (unsigned long long)seed, i, j);
        }
        if (j == 0) {
            if (value == -1)
                value = out;
            ck_assert_msg(out == value, "seed %llu: task %d saw %d, another %d", (unsigned long long)seed, i, out,
                          value);
        }
    }
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt); /* drops whatever is left */
    ck_assert_msg(cnt.max_inside <= 1, "seed %llu: %d init futures ran at once", (unsigned long long)seed,
                  cnt.max_inside);
    ck_assert_msg(cnt.completed <= 1, "seed %llu: %d init futures completed", (unsigned long long)seed,
                  cnt.completed);
    ck_assert_msg(cnt.drops == cnt.made, "seed %llu: %d init futures built, %d dropped", (unsigned long long)seed,
                  cnt.made, cnt.drops);
    ck_assert_int_eq(cnt.inside, 0);
    if (aborted < OT)
        ck_assert_msg(value >= 1000 && weft_oncecell_get(&c) != NULL && *(int *)weft_oncecell_get(&c) == value,
                      "seed %llu: value %d", (unsigned long long)seed, value);
    ck_assert_int_eq(weft_oncecell_is_set(&c), cnt.completed == 1);
    weft_oncecell_destroy(&c);
    weft__chaos_set(0, 0);
    ASSERT_NO_LIVE();
}

START_TEST(stress_once_abort_race)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) / 4 + 1;
    for (int i = 0; i < n; i++)
        once_abort_race(_i, s0 + (uint64_t)i);
}
END_TEST

/* ---- Barrier: groups with aborts ------------------------------------------------------- */

enum { BN = 3, BT = 9, BREPL = 64 };
typedef struct {
    weft_barrier_t b;
    _Atomic int leaders, completed;
} bsh_t;

typedef struct {
    WEFT_FRAME;
    bsh_t *sh;
    bool leader;
    weft_barrier_wait_t w;
} bwaiter_t;
WEFT_ASYNC(bwaiter_t, bwaiter, weft_unit_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->w, weft_barrier_wait(&self->sh->b), &self->leader);
    if (self->leader)
        self->sh->leaders++;
    self->sh->completed++;
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static size_t barrier_arrived(weft_barrier_t *b)
{
    weft__waitlock_lock(&b->lock_);
    size_t n = b->arrived_;
    weft__waitlock_unlock(&b->lock_);
    return n;
}

static void barrier_aborts(int shape, uint64_t seed)
{
    weft__chaos_set(seed, CHAOS_PERMILLE);
    weft_runtime_t *rt = shape_rt(shape);
    static bsh_t sh;
    memset(&sh, 0, sizeof sh);
    ck_assert_int_eq(weft_barrier_init(&sh.b, BN), 0);
    static weft_join_handle_t h[BT], rep[BREPL];
    bool ab[BT];
    uint64_t r = seed;
    int aborted = 0;
    for (int i = 0; i < BT; i++) {
        bwaiter_t t = { WEFT_FRAME_INIT(bwaiter), .sh = &sh };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t, &h[i]), 0);
        ab[i] = (next_rand(&r) % 3) == 0;
    }
    for (int k = 0; k < (int)(seed % 3); k++)
        let_tasks_run(rt, shape);
    for (int i = 0; i < BT; i++)
        if (ab[i]) {
            weft_join_handle_abort(&h[i]);
            aborted++;
        }
    for (int i = 0; i < BT; i++)
        if (ab[i]) {
            int j = join_out(rt, &h[i], NULL);
            ck_assert_msg(j == 0 || j == WEFT_ECANCELED, "seed %llu: join %d", (unsigned long long)seed, j);
        }
    /* Replacements arrive, one per round, until every task that was not
     * aborted has been released. */
    int nrep = 0;
    for (int k = 0; k < 20000; k++) {
        int done = 0;
        for (int i = 0; i < BT; i++)
            done += !ab[i] && weft_join_handle_is_finished(&h[i]);
        if (done == BT - aborted)
            break;
        if (k % 8 == 0 && nrep < BREPL) {
            bwaiter_t t = { WEFT_FRAME_INIT(bwaiter), .sh = &sh };
            ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t, &rep[nrep++]), 0);
        }
        let_tasks_run(rt, shape);
    }
    for (int i = 0; i < BT; i++)
        if (!ab[i])
            ck_assert_msg(join_out(rt, &h[i], NULL) == 0, "seed %llu: task %d", (unsigned long long)seed, i);
    /* Replacements left waiting are aborted: they withdraw too. */
    for (int i = 0; i < nrep; i++)
        weft_join_handle_abort(&rep[i]);
    for (int i = 0; i < nrep; i++) {
        int j = join_out(rt, &rep[i], NULL);
        ck_assert_msg(j == 0 || j == WEFT_ECANCELED, "seed %llu: replacement join %d", (unsigned long long)seed, j);
    }
    ASSERT_NO_TEST_FAIL();
    ck_assert_msg(barrier_arrived(&sh.b) == 0, "seed %llu: %zu arrivals left", (unsigned long long)seed,
                  barrier_arrived(&sh.b));
    /* Each release is one leader and BN arrivals; the arrivals that did
     * not complete belong to tasks aborted after their release. */
    int aborted_total = aborted + nrep;
    ck_assert_msg(sh.leaders * BN >= sh.completed && sh.leaders * BN <= sh.completed + aborted_total,
                  "seed %llu: %d leaders for %d completions", (unsigned long long)seed, sh.leaders, sh.completed);
    ck_assert_int_ge(sh.completed, BT - aborted);
    weft_runtime_free(rt);
    weft_barrier_destroy(&sh.b);
    weft__chaos_set(0, 0);
    ASSERT_NO_LIVE();
}

START_TEST(stress_barrier_aborts)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) / 4 + 1;
    for (int i = 0; i < n; i++)
        barrier_aborts(_i, s0 + (uint64_t)i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress_once");
    TCase *tc = tcase_create("chaos");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, stress_once_abort_race, 0, N_SHAPES);
    tcase_add_loop_test(tc, stress_barrier_aborts, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
