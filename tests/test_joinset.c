/* tests/test_joinset.c - JoinSet: an empty set joins WEFT_ENOENT at once;
 * many tasks joined with their outputs and ids (every id once, the ids
 * spawn gave); abort_all reports each aborted task with its id; destroy
 * and a dropped owner frame abort every task (each future dropped once,
 * zero live objects); shutdown aborts and waits; a join_next dropped
 * mid-wait loses nothing; allocation failure at either step of a spawn
 * leaves the future with the caller; tasks on another runtime's handle;
 * on every runtime shape. */
#include "testlib.h"

static _Atomic int work_drops;

/* A task: yields `yields` times, then returns value (an int). pend: waits
 * for ever instead (only an abort ends it). Counts its drops. */
typedef struct {
    WEFT_FRAME;
    int yields, value, i;
    bool pend;
    weft_yield_t y;
    weft_pending_t p;
} work_t;
static void work_cleanup(work_t *self)
{
    (void)self;
    work_drops++;
}
WEFT_ASYNC_WITH_DROP(work_t, work, int, work_cleanup)
{
    WEFT_BEGIN();
    if (self->pend)
        WEFT_AWAIT(&self->p, weft_pending(), NULL);
    for (self->i = 0; self->i < self->yields; self->i++)
        WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    WEFT_RETURN(self->value);
    WEFT_END();
}

static work_t mk_work(int value, int yields, bool pend)
{
    work_t w = { WEFT_FRAME_INIT(work) };
    w.value = value;
    w.yields = yields;
    w.pend = pend;
    return w;
}

/* The owner: spawns n tasks (pend: waiting for ever), then, by mode,
 * joins them all / aborts all then joins / shuts the set down. Reports
 * what it saw through the test's arrays. */
enum { M_JOIN, M_ABORT_ALL, M_SHUTDOWN, M_DROP_NEXT, M_HOLD };
#define MAXN 2000

typedef struct {
    _Atomic int all_spawned; /* set (release) by the owner after its spawn loop */
    int n, mode, ok, cancelled, enoent_at_end;
    weft_task_id_t spawned[MAXN], joined[MAXN];
    int values[MAXN];
} report_t;

typedef struct {
    WEFT_FRAME;
    report_t *r;
    weft_handle_t *on; /* NULL: the current runtime */
    bool pend;
    weft_joinset_t set;
    int i, rc, out;
    weft_task_id_t id;
    weft_joinset_join_next_t next;
    weft_joinset_shutdown_t sd;
    weft_yield_t y;
    weft_pending_t forever;
} owner_t;
static void owner_cleanup(owner_t *self)
{
    weft_joinset_destroy(&self->set);
}
WEFT_ASYNC_WITH_DROP(owner_t, owner, weft_unit_t, owner_cleanup)
{
    WEFT_BEGIN();
    weft_joinset_init(&self->set);
    for (self->i = 0; self->i < self->r->n; self->i++) {
        work_t w = mk_work(self->i * 3, self->i % 5, self->pend);
        int rc = weft_joinset_spawn_at(&self->set, self->on, WEFT_FUTURE(&w), NULL, WEFT_SITE,
                                       &self->r->spawned[self->i]);
        WEFT_TEST_CHECK_INT_EQ(rc, 0);
    }
    WEFT_TEST_CHECK_INT_EQ(weft_joinset_len(&self->set), self->r->n);
    atomic_store_explicit(&self->r->all_spawned, 1, memory_order_release);
    if (self->r->mode == M_HOLD) /* wait to be dropped with the set full */
        WEFT_AWAIT(&self->forever, weft_pending(), NULL);
    if (self->r->mode == M_SHUTDOWN) {
        WEFT_AWAIT(&self->sd, weft_joinset_shutdown(&self->set), NULL);
        WEFT_TEST_CHECK(weft_joinset_is_empty(&self->set));
    }
    if (self->r->mode == M_ABORT_ALL)
        weft_joinset_abort_all(&self->set);
    for (self->i = 0;; self->i++) {
        if (self->r->mode == M_DROP_NEXT && self->i % 2 == 0) {
            /* Poll a join_next once, then drop it: nothing may be lost. */
            self->next = weft_joinset_join_next(&self->set, &self->out, &self->id);
            { /* locals whose scope ends before the await below */
                weft_waker_t noop = weft_waker_noop();
                weft_context_t ncx = { &noop };
                int rc = 0;
                if (weft_future_poll(WEFT_FUTURE(&self->next), &ncx, &rc) == WEFT_READY) {
                    if (rc == WEFT_ENOENT)
                        break;
                    self->r->joined[self->r->ok + self->r->cancelled] = self->id;
                    self->r->values[self->r->ok++] = self->out;
                } else {
                    weft_future_drop(WEFT_FUTURE(&self->next));
                }
            }
            WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
            continue;
        }
        self->out = -1;
        WEFT_AWAIT(&self->next, weft_joinset_join_next(&self->set, &self->out, &self->id), &self->rc);
        if (self->rc == WEFT_ENOENT) {
            self->r->enoent_at_end = 1;
            break;
        }
        WEFT_TEST_CHECK(self->r->ok + self->r->cancelled < self->r->n);
        self->r->joined[self->r->ok + self->r->cancelled] = self->id;
        if (self->rc == 0)
            self->r->values[self->r->ok++] = self->out;
        else if (self->rc == WEFT_ECANCELED)
            self->r->cancelled++;
        else
            WEFT_TEST_CHECK_MSG(false, "join_next rc %d", self->rc);
    }
    weft_joinset_destroy(&self->set);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static int cmp_id(const void *a, const void *b)
{
    weft_task_id_t x = *(const weft_task_id_t *)a, y = *(const weft_task_id_t *)b;
    return (x > y) - (x < y);
}

/* Every spawned id joined exactly once. */
static void check_ids(report_t *r, int joined)
{
    ck_assert_int_eq(joined, r->n);
    qsort(r->spawned, (size_t)r->n, sizeof r->spawned[0], cmp_id);
    qsort(r->joined, (size_t)r->n, sizeof r->joined[0], cmp_id);
    for (int i = 0; i < r->n; i++) {
        ck_assert_uint_ne(r->spawned[i], 0);
        ck_assert_uint_eq(r->spawned[i], r->joined[i]);
    }
}

static report_t rep;

static void run_owner(int shape, int n, int mode, bool pend)
{
    weft_runtime_t *rt = shape_rt(shape);
    memset(&rep, 0, sizeof rep);
    rep.n = n;
    rep.mode = mode;
    work_drops = 0;
    owner_t o = { WEFT_FRAME_INIT(owner) };
    o.r = &rep;
    o.pend = pend;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&o), NULL), 0);
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}

START_TEST(empty_set_is_enoent)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_joinset_t set;
    weft_joinset_init(&set);
    ck_assert(weft_joinset_is_empty(&set));
    int rc = 0;
    weft_joinset_join_next_t j = weft_joinset_join_next(&set, NULL, NULL);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&j), &rc), 0);
    ck_assert_int_eq(rc, WEFT_ENOENT);
    weft_joinset_destroy(&set);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(join_all_outputs_and_ids)
{
    run_owner(_i, MAXN, M_JOIN, false);
    ck_assert_int_eq(rep.ok, MAXN);
    ck_assert_int_eq(rep.cancelled, 0);
    ck_assert_int_eq(rep.enoent_at_end, 1);
    check_ids(&rep, rep.ok);
    /* Each value once: the outputs are the tasks' own. */
    static bool seen[MAXN];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < MAXN; i++) {
        ck_assert_int_eq(rep.values[i] % 3, 0);
        int k = rep.values[i] / 3;
        ck_assert(k >= 0 && k < MAXN && !seen[k]);
        seen[k] = true;
    }
    ck_assert_int_eq(work_drops, MAXN); /* each future dropped once, after it finished */
}
END_TEST

START_TEST(abort_all_reports_each)
{
    run_owner(_i, 200, M_ABORT_ALL, true);
    ck_assert_int_eq(rep.ok, 0);
    ck_assert_int_eq(rep.cancelled, 200);
    check_ids(&rep, rep.cancelled);
    ck_assert_int_eq(work_drops, 200);
}
END_TEST

START_TEST(shutdown_aborts_and_waits)
{
    run_owner(_i, 200, M_SHUTDOWN, true);
    ck_assert_int_eq(rep.ok + rep.cancelled, 0); /* nothing left to join */
    ck_assert_int_eq(work_drops, 200);
}
END_TEST

START_TEST(dropped_join_next_loses_nothing)
{
    run_owner(_i, 300, M_DROP_NEXT, false);
    ck_assert_int_eq(rep.ok, 300);
    check_ids(&rep, rep.ok);
}
END_TEST

/* The owner task aborted while its set holds running tasks: its cleanup
 * destroys the set, which aborts them all. */
START_TEST(owner_dropped_aborts_tasks)
{
    weft_runtime_t *rt = shape_rt(_i);
    memset(&rep, 0, sizeof rep);
    rep.n = 100;
    rep.mode = M_HOLD;
    work_drops = 0;
    owner_t o = { WEFT_FRAME_INIT(owner) };
    o.r = &rep;
    o.pend = true;
    weft_join_handle_t h;
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&o), &h, NULL, WEFT_SITE), 0);
    /* acquire: pairs with the owner's release store: its spawns happened. */
    for (int k = 0; k < 1000 && !atomic_load_explicit(&rep.all_spawned, memory_order_acquire); k++)
        let_tasks_run(rt, _i);
    ck_assert_int_eq(atomic_load_explicit(&rep.all_spawned, memory_order_acquire), 1);
    ck_assert_uint_ne(rep.spawned[99], 0);
    weft_join_handle_abort(&h);
    ck_assert_int_eq(join_out(rt, &h, NULL), WEFT_ECANCELED);
    for (int k = 0; k < 1000 && work_drops < 100; k++)
        let_tasks_run(rt, _i);
    ck_assert_int_eq(work_drops, 100);
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* Spawn fails at the set's allocation (1st) or at the task's (2nd): the
 * caller keeps its future, nothing is spawned, the set stays usable. */
START_TEST(spawn_enomem_leaves_future)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
    for (long k = 1; k <= 3; k++) {
        weft_joinset_t set;
        weft_joinset_init(&set);
        work_drops = 0;
        work_t w = mk_work(1, 0, false);
        weft__alloc_fail_after(k);
        int rc = weft_joinset_spawn_on(&set, weft_runtime_handle(rt), &w, NULL);
        weft__alloc_fail_after(-1);
        /* k = 1: the set's shared part, 2: the entry, 3: the task itself. */
        ck_assert_int_eq(rc, WEFT_ENOMEM);
        ck_assert_int_eq(weft_joinset_len(&set), 0);
        ck_assert_int_eq(work_drops, 0); /* not spawned: still the caller's */
        weft_future_drop(WEFT_FUTURE(&w));
        ck_assert_int_eq(work_drops, 1);
        /* Still usable. */
        work_t w2 = mk_work(5, 1, false);
        ck_assert_int_eq(weft_joinset_spawn_on(&set, weft_runtime_handle(rt), &w2, NULL), 0);
        int out = 0, jrc = -1;
        weft_joinset_join_next_t j = weft_joinset_join_next(&set, &out, NULL);
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&j), &jrc), 0);
        ck_assert_int_eq(jrc, 0);
        ck_assert_int_eq(out, 5);
        weft_joinset_destroy(&set);
    }
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* The set owned by a task of one runtime, its tasks on another's. */
START_TEST(tasks_on_another_runtime)
{
    weft_runtime_t *other = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    weft_runtime_t *rt = shape_rt(_i);
    memset(&rep, 0, sizeof rep);
    rep.n = 500;
    rep.mode = M_JOIN;
    owner_t o = { WEFT_FRAME_INIT(owner) };
    o.r = &rep;
    o.on = weft_runtime_handle(other);
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&o), NULL), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(rep.ok, 500);
    check_ids(&rep, rep.ok);
    weft_runtime_free(rt);
    weft_runtime_free(other);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("joinset");
    TCase *tc = tcase_create("joinset");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, empty_set_is_enoent, 0, N_SHAPES);
    tcase_add_loop_test(tc, join_all_outputs_and_ids, 0, N_SHAPES);
    tcase_add_loop_test(tc, abort_all_reports_each, 0, N_SHAPES);
    tcase_add_loop_test(tc, shutdown_aborts_and_waits, 0, N_SHAPES);
    tcase_add_loop_test(tc, dropped_join_next_loses_nothing, 0, N_SHAPES);
    tcase_add_loop_test(tc, owner_dropped_aborts_tasks, 0, N_SHAPES);
    tcase_add_test(tc, spawn_enomem_leaves_future);
    tcase_add_loop_test(tc, tasks_on_another_runtime, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
