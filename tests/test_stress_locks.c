/* tests/test_stress_locks.c - seeded chaos stress of the semaphore, the
 * mutex and the rwlock (TESTING.md: "a cancelled semaphore acquire that
 * held some permits returns them and wakes the next waiter"): a waiter
 * aborted while holding part of its permits, racing the release that
 * would complete it; a mutex waiter aborted at the head of the queue,
 * racing the unlock that hands it the mutex; contended lock / unlock from
 * many tasks with an exact counter; readers, writers and downgrades with
 * aborted writers. Suite `stress` only. Each iteration turns chaos on with
 * a new seed (the chaos points sit at every atomic step of the fast paths
 * and the queue handling, sync/semaphore.c and sync/waiters.h); a failure
 * prints the seed, and WEFT_CHAOS_SEED=<seed> WEFT_CHAOS_ITERS=1 replays
 * it. */
#include "../sync/waiters.h"
#include "locktest.h"

#define CHAOS_PERMILLE 30

/* Waiters queued on sem (white-box: under the semaphore's lock). */
static int queued(weft_semaphore_t *sem)
{
    int n = 0;
    weft__waitlock_lock(&sem->lock_);
    weft__dlist_foreach(it, &sem->waiters_) n++;
    weft__waitlock_unlock(&sem->lock_);
    return n;
}

/* Waits (up to 5 s) until sem has `want` waiters; on a current-thread
 * runtime the tasks run only inside block_on, so drive it with yields. */
static bool wait_queued(weft_runtime_t *rt, int shape, weft_semaphore_t *sem, int want)
{
    for (int k = 0; k < 5000; k++) {
        if (queued(sem) >= want)
            return true;
        let_tasks_run(rt, shape);
    }
    return false;
}

/* ---- A semaphore waiter aborted while holding part of its permits ------------ */
typedef struct {
    WEFT_FRAME;
    weft_semaphore_t *sem;
    size_t n;
    int rc;
    weft_semaphore_acquire_t acq;
} taker_t;
/* Acquires n, then gives them back; output the acquire's result. */
WEFT_ASYNC(taker_t, taker, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->acq, weft_semaphore_acquire_many(self->sem, self->n), &self->rc);
    if (self->rc == 0)
        (void)WEFT_TEST_CHECK_INT_EQ(weft_semaphore_release(self->sem, self->n), 0);
    WEFT_RETURN(self->rc);
    WEFT_END();
}

typedef struct {
    weft_join_handle_t *h;      /* aborted */
    weft_semaphore_t *sem;      /* released into (1 permit) */
    bool release;
    uint64_t seed;
} racer_t;
static void *racer_main(void *arg)
{
    racer_t *r = arg;
    if (r->seed & 1)
        sched_yield();
    if (r->release)
        (void)WEFT_TEST_CHECK_INT_EQ(weft_semaphore_release(r->sem, 1), 0);
    else
        weft_join_handle_abort(r->h);
    return NULL;
}

static void sem_partial_abort(int shape, uint64_t seed)
{
    weft__chaos_set(seed, CHAOS_PERMILLE);
    weft_runtime_t *rt = shape_rt(shape);
    weft_semaphore_t s;
    ck_assert_int_eq(weft_semaphore_init(&s, 0), 0);
    weft_join_handle_t ha, hb;
    taker_t a = { WEFT_FRAME_INIT(taker), .sem = &s, .n = 3 };
    taker_t b = { WEFT_FRAME_INIT(taker), .sem = &s, .n = 1 };
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &a, &ha), 0);
    ck_assert_msg(wait_queued(rt, shape, &s, 1), "seed %llu: A never queued", (unsigned long long)seed);
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &b, &hb), 0);
    ck_assert_msg(wait_queued(rt, shape, &s, 2), "seed %llu: B never queued", (unsigned long long)seed);
    ck_assert_int_eq(weft_semaphore_release(&s, 2), 0); /* A holds 2 of 3 */
    /* The abort of A races the release that completes it. */
    racer_t ab = { &ha, &s, false, seed }, rl = { &ha, &s, true, seed >> 1 };
    pthread_t t1, t2;
    pthread_create(&t1, NULL, racer_main, &ab);
    pthread_create(&t2, NULL, racer_main, &rl);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    int ra = -1, rb = -1;
    int ja = join_out(rt, &ha, &ra);
    int jb = join_out(rt, &hb, &rb);
    ASSERT_NO_TEST_FAIL();
    ck_assert_msg(ja == WEFT_ECANCELED || (ja == 0 && ra == 0), "seed %llu: A join %d out %d",
                  (unsigned long long)seed, ja, ra);
    ck_assert_msg(jb == 0 && rb == 0, "seed %llu: B join %d out %d (the next waiter must run)",
                  (unsigned long long)seed, jb, rb);
    /* Every permit came back: none lost, none made up. */
    ck_assert_msg(weft_semaphore_available_permits(&s) == 3, "seed %llu: %zu permits, want 3",
                  (unsigned long long)seed, weft_semaphore_available_permits(&s));
    ck_assert_int_eq(queued(&s), 0);
    weft_runtime_free(rt);
    weft_semaphore_destroy(&s);
    weft__chaos_set(0, 0);
    ASSERT_NO_LIVE();
}

START_TEST(stress_sem_partial_abort)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) / 4 + 1;
    for (int i = 0; i < n; i++)
        sem_partial_abort(_i, s0 + (uint64_t)i);
}
END_TEST

/* ---- A mutex waiter aborted at the head of the queue ---------------------------------- */
static _Atomic long locked_count;
typedef struct {
    WEFT_FRAME;
    weft_mutex_t *m;
    bool held;
    weft_mutex_lock_t l;
} locker_t;
/* Aborted while it holds the mutex (inside its yield), the frame unlocks
 * it in its drop: the pattern docs/locks.md gives for cancellation. */
static void locker_cleanup(locker_t *self)
{
    if (self->held)
        weft_mutex_unlock(self->m);
}
WEFT_ASYNC_WITH_DROP(locker_t, locker, weft_unit_t, locker_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->l, weft_mutex_lock(self->m), NULL);
    self->held = true;
    locked_count++;
    WEFT_YIELD(); /* hold it across an await */
    self->held = false;
    weft_mutex_unlock(self->m);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    weft_join_handle_t *h;
    weft_mutex_t *m;
    bool unlock;
    uint64_t seed;
} mracer_t;
static void *mracer_main(void *arg)
{
    mracer_t *r = arg;
    if (r->seed & 1)
        sched_yield();
    if (r->unlock)
        weft_mutex_unlock(r->m);
    else
        weft_join_handle_abort(r->h);
    return NULL;
}

static void mutex_head_abort(int shape, uint64_t seed)
{
    weft__chaos_set(seed, CHAOS_PERMILLE);
    locked_count = 0;
    weft_runtime_t *rt = shape_rt(shape);
    weft_mutex_t m;
    weft_mutex_init(&m);
    ck_assert_int_eq(weft_mutex_try_lock(&m), 0);
    enum { W = 3 };
    weft_join_handle_t h[W];
    for (int i = 0; i < W; i++) {
        locker_t l = { WEFT_FRAME_INIT(locker), .m = &m };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &l, &h[i]), 0);
        ck_assert_msg(wait_queued(rt, shape, &m.sem_, i + 1), "seed %llu: waiter %d never queued",
                      (unsigned long long)seed, i);
    }
    /* Abort the head waiter while the holder's unlock hands it the mutex. */
    mracer_t ab = { &h[0], &m, false, seed }, ul = { &h[0], &m, true, seed >> 1 };
    pthread_t t1, t2;
    pthread_create(&t1, NULL, mracer_main, &ab);
    pthread_create(&t2, NULL, mracer_main, &ul);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    int j0 = join_out(rt, &h[0], NULL);
    for (int i = 1; i < W; i++)
        ck_assert_msg(join_out(rt, &h[i], NULL) == 0, "seed %llu: waiter %d did not run", (unsigned long long)seed,
                      i);
    ck_assert_msg(j0 == 0 || j0 == WEFT_ECANCELED, "seed %llu: head join %d", (unsigned long long)seed, j0);
    /* The head ran (and maybe was aborted after it locked) or did not. */
    ck_assert_msg(locked_count == W - 1 + (j0 == 0) || (j0 == WEFT_ECANCELED && locked_count == W),
                  "seed %llu: %ld locks, head join %d", (unsigned long long)seed, (long)locked_count, j0);
    ck_assert_msg(!weft_mutex_is_locked(&m), "seed %llu: left locked", (unsigned long long)seed);
    weft_runtime_free(rt);
    weft_mutex_destroy(&m);
    weft__chaos_set(0, 0);
    ASSERT_NO_LIVE();
}

START_TEST(stress_mutex_head_abort)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) / 4 + 1;
    for (int i = 0; i < n; i++)
        mutex_head_abort(_i, s0 + (uint64_t)i);
}
END_TEST

/* ---- Contended lock / unlock with an exact counter -------------------------------------- */
typedef struct {
    weft_mutex_t m;
    long counter; /* guarded by m */
} counted_t;
typedef struct {
    WEFT_FRAME;
    counted_t *c;
    int i, ops;
    weft_mutex_lock_t l;
} bumper_t;
WEFT_ASYNC(bumper_t, bumper, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < self->ops; self->i++) {
        if (weft_mutex_try_lock(&self->c->m) != 0)
            WEFT_AWAIT(&self->l, weft_mutex_lock(&self->c->m), NULL);
        self->c->counter++;
        if (self->i % 13 == 0)
            WEFT_YIELD();
        weft_mutex_unlock(&self->c->m);
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(stress_mutex_contended_exact)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) / 8 + 1;
    enum { T = 32, OPS = 100 };
    for (int it = 0; it < n; it++) {
        uint64_t seed = s0 + (uint64_t)it;
        weft__chaos_set(seed, CHAOS_PERMILLE);
        weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
        static counted_t c;
        memset(&c, 0, sizeof c);
        weft_mutex_init(&c.m);
        weft_join_handle_t h[T];
        for (int i = 0; i < T; i++) {
            bumper_t b = { WEFT_FRAME_INIT(bumper), .c = &c, .ops = OPS };
            ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &b, &h[i]), 0);
        }
        for (int i = 0; i < T; i++)
            ck_assert_int_eq(join_out(rt, &h[i], NULL), 0);
        ck_assert_msg(c.counter == T * OPS, "seed %llu: counter %ld, want %d", (unsigned long long)seed, c.counter,
                      T * OPS);
        ck_assert(!weft_mutex_is_locked(&c.m));
        weft_runtime_free(rt);
        weft_mutex_destroy(&c.m);
        weft__chaos_set(0, 0);
        ASSERT_NO_LIVE();
    }
}
END_TEST

/* ---- Readers, writers, downgrades, aborted writers ---------------------------------------- */
typedef struct {
    weft_rwlock_t rw;
    long value;
    _Atomic int readers, writers;
} rwsh_t;
typedef struct {
    WEFT_FRAME;
    rwsh_t *sh;
    int i, id;
    weft_rwlock_read_t r;
    weft_rwlock_write_t w;
} rwer_t;
WEFT_ASYNC(rwer_t, rwer, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 40; self->i++) {
        if ((self->i + self->id) % 4 == 0) {
            WEFT_AWAIT(&self->w, weft_rwlock_write(&self->sh->rw), NULL);
            (void)WEFT_TEST_CHECK(++self->sh->writers == 1 && self->sh->readers == 0);
            self->sh->value++;
            WEFT_YIELD();
            self->sh->writers--;
            if (self->i & 1) {
                self->sh->readers++;
                weft_rwlock_downgrade(&self->sh->rw);
                WEFT_YIELD();
                self->sh->readers--;
                weft_rwlock_read_unlock(&self->sh->rw);
            } else {
                weft_rwlock_write_unlock(&self->sh->rw);
            }
        } else {
            WEFT_AWAIT(&self->r, weft_rwlock_read(&self->sh->rw), NULL);
            self->sh->readers++;
            (void)WEFT_TEST_CHECK_INT_EQ(self->sh->writers, 0);
            WEFT_YIELD();
            self->sh->readers--;
            weft_rwlock_read_unlock(&self->sh->rw);
        }
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}
/* A writer that may be aborted while it waits; if it gets in, it leaves. */
typedef struct {
    WEFT_FRAME;
    rwsh_t *sh;
    weft_rwlock_write_t w;
} lone_writer_t;
WEFT_ASYNC(lone_writer_t, lone_writer, weft_unit_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->w, weft_rwlock_write(&self->sh->rw), NULL);
    (void)WEFT_TEST_CHECK(++self->sh->writers == 1 && self->sh->readers == 0);
    self->sh->writers--;
    weft_rwlock_write_unlock(&self->sh->rw);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static void rwlock_mix(int shape, uint64_t seed)
{
    weft__chaos_set(seed, CHAOS_PERMILLE);
    weft_runtime_t *rt = shape_rt(shape);
    static rwsh_t sh;
    memset(&sh, 0, sizeof sh);
    ck_assert_int_eq(weft_rwlock_init(&sh.rw, 4), 0);
    enum { T = 8, LW = 4 };
    weft_join_handle_t h[T], lw[LW];
    for (int i = 0; i < T; i++) {
        rwer_t t = { WEFT_FRAME_INIT(rwer), .sh = &sh, .id = i };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t, &h[i]), 0);
    }
    for (int i = 0; i < LW; i++) {
        lone_writer_t t = { WEFT_FRAME_INIT(lone_writer), .sh = &sh };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t, &lw[i]), 0);
    }
    if (shape != 0)
        sleep_ms((long)(seed % 3));
    for (int i = 0; i < LW; i += 2)
        weft_join_handle_abort(&lw[i]);
    for (int i = 0; i < LW; i++) {
        int j = join_out(rt, &lw[i], NULL);
        ck_assert_msg(j == 0 || j == WEFT_ECANCELED, "seed %llu: writer join %d", (unsigned long long)seed, j);
    }
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(join_out(rt, &h[i], NULL), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_msg(sh.value == T * 40 / 4, "seed %llu: value %ld", (unsigned long long)seed, sh.value);
    ck_assert_msg(weft_rwlock_try_write(&sh.rw) == 0, "seed %llu: permits lost", (unsigned long long)seed);
    weft_rwlock_write_unlock(&sh.rw);
    weft_runtime_free(rt);
    weft_rwlock_destroy(&sh.rw);
    weft__chaos_set(0, 0);
    ASSERT_NO_LIVE();
}

START_TEST(stress_rwlock_mix)
{
    uint64_t s0 = chaos_seed0();
    int n = chaos_iters(200) / 8 + 1;
    for (int i = 0; i < n; i++)
        rwlock_mix(_i, s0 + (uint64_t)i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress_locks");
    TCase *tc = tcase_create("chaos");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, stress_sem_partial_abort, 0, N_SHAPES);
    tcase_add_loop_test(tc, stress_mutex_head_abort, 0, N_SHAPES);
    tcase_add_test(tc, stress_mutex_contended_exact);
    tcase_add_loop_test(tc, stress_rwlock_mix, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
