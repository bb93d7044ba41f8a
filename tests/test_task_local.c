/* tests/test_task_local.c - task-local values: unbound outside a scope,
 * read at depth across awaits, nested scopes (innermost wins, the outer
 * one back after), two keys, a spawned task does not inherit, tasks that
 * migrate between 2 workers each see only their own value on every poll,
 * the inner future's drop runs inside the scope, sync_scope, misuse
 * aborts, and on every runtime shape. */
#include "testlib.h"

WEFT_TASK_LOCAL_KEY(req_id);
WEFT_TASK_LOCAL_KEY(user);

/* ---- A leaf that reads the keys on every poll, yielding `yields` times --- */

typedef struct {
    WEFT_FRAME;
    const void *want; /* what req_id must read on every poll */
    int yields, i, seen;
    weft_yield_t y;
} reader_t;
WEFT_ASYNC(reader_t, reader, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i <= self->yields; self->i++) {
        if (weft_task_local_get(&req_id) == self->want)
            self->seen++;
        if (self->i < self->yields)
            WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    }
    WEFT_RETURN(self->seen);
    WEFT_END();
}

/* One level up: the key is read two calls below the scope. */
typedef struct {
    WEFT_FRAME;
    reader_t r;
    int out;
} middle_t;
WEFT_ASYNC(middle_t, middle, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT_REF(&self->r, &self->out);
    WEFT_RETURN(self->out);
    WEFT_END();
}

START_TEST(unbound_outside)
{
    ck_assert_ptr_null(weft_task_local_get(&req_id));
    weft_runtime_t *rt = shape_rt(_i);
    int id = 7, out = -1;
    middle_t m = { WEFT_FRAME_INIT(middle) };
    m.r = (reader_t){ WEFT_FRAME_INIT(reader) };
    m.r.want = &id;
    m.r.yields = 5;
    weft_task_local_scope_t s = weft_task_local_scope(&req_id, &id, WEFT_FUTURE(&m), &out);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&s), NULL), 0);
    ck_assert_int_eq(out, 6); /* all six polls saw it, at depth two, across yields */
    ck_assert_ptr_null(weft_task_local_get(&req_id)); /* unbound again */
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Nested scopes and two keys --------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    int inner_id;
    int *outer_id;
    int checks;
    weft_yield_t y;
    reader_t r;
    weft_task_local_scope_t s;
    int out;
} nester_t;
WEFT_ASYNC(nester_t, nester, int)
{
    WEFT_BEGIN();
    if (weft_task_local_get(&req_id) == self->outer_id)
        self->checks++;
    self->r = (reader_t){ WEFT_FRAME_INIT(reader) };
    self->r.want = &self->inner_id;
    self->r.yields = 3;
    WEFT_AWAIT(&self->s, weft_task_local_scope(&req_id, &self->inner_id, WEFT_FUTURE(&self->r), &self->out), NULL);
    if (self->out == 4)
        self->checks++;
    WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    if (weft_task_local_get(&req_id) == self->outer_id) /* the outer binding is back */
        self->checks++;
    if (weft_task_local_get(&user) != NULL && strcmp(weft_task_local_expect(&user), "ann") == 0)
        self->checks++;
    WEFT_RETURN(self->checks);
    WEFT_END();
}

START_TEST(nested_and_two_keys)
{
    weft_runtime_t *rt = shape_rt(_i);
    int outer = 1, out = -1;
    char name[] = "ann";
    nester_t n = { WEFT_FRAME_INIT(nester) };
    n.outer_id = &outer;
    weft_task_local_scope_t in = weft_task_local_scope(&req_id, &outer, WEFT_FUTURE(&n), &out);
    weft_task_local_scope_t s = weft_task_local_scope(&user, name, WEFT_FUTURE(&in), NULL);
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&s), NULL), 0);
    ck_assert_int_eq(out, 4);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- A task spawned inside a scope does not inherit it ---------------------- */

typedef struct {
    WEFT_FRAME;
    reader_t child;
    weft_join_handle_t h;
    int child_seen, rc;
} spawner_t;
WEFT_ASYNC(spawner_t, spawner, int)
{
    WEFT_BEGIN();
    self->child = (reader_t){ WEFT_FRAME_INIT(reader) };
    self->child.want = NULL; /* counts the polls that see no binding */
    self->child.yields = 3;
    if (weft_spawn(&self->child, &self->h) != 0)
        WEFT_RETURN(-1);
    WEFT_AWAIT_REF(weft_join(&self->h, &self->child_seen), &self->rc);
    WEFT_RETURN(self->rc == 0 ? self->child_seen : -2);
    WEFT_END();
}

START_TEST(spawn_does_not_inherit)
{
    weft_runtime_t *rt = shape_rt(_i);
    int id = 3, out = -1;
    spawner_t sp = { WEFT_FRAME_INIT(spawner) };
    weft_task_local_scope_t s = weft_task_local_scope(&req_id, &id, WEFT_FUTURE(&sp), &out);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&s), NULL), 0);
    ck_assert_int_eq(out, 4); /* every poll of the child saw no binding */
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Tasks migrating between workers see only their own value --------------- */

#define MIGRANTS 16
#define MIGRANT_YIELDS 200

START_TEST(migrating_tasks_keep_their_own)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    static int ids[MIGRANTS];
    static reader_t rs[MIGRANTS];
    static weft_task_local_scope_t ss[MIGRANTS];
    static int outs[MIGRANTS];
    weft_join_handle_t hs[MIGRANTS];
    for (int i = 0; i < MIGRANTS; i++) {
        rs[i] = (reader_t){ WEFT_FRAME_INIT(reader) };
        rs[i].want = &ids[i];
        rs[i].yields = MIGRANT_YIELDS;
        outs[i] = -1;
        ss[i] = weft_task_local_scope(&req_id, &ids[i], WEFT_FUTURE(&rs[i]), &outs[i]);
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&ss[i]), &hs[i], NULL, WEFT_SITE), 0);
    }
    for (int i = 0; i < MIGRANTS; i++) {
        ck_assert_int_eq(join_out(rt, &hs[i], NULL), 0);
        ck_assert_int_eq(outs[i], MIGRANT_YIELDS + 1);
    }
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- The inner future's drop runs inside the scope -------------------------- */

static _Atomic int drop_saw_binding;
typedef struct {
    WEFT_FRAME;
    weft_pending_t forever;
} stuck_t;
static void stuck_cleanup(stuck_t *self)
{
    (void)self;
    if (weft_task_local_get(&req_id) != NULL)
        drop_saw_binding++;
}
WEFT_ASYNC_WITH_DROP(stuck_t, stuck, weft_unit_t, stuck_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->forever, weft_pending(), NULL);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(drop_inside_scope)
{
    weft_runtime_t *rt = shape_rt(_i);
    drop_saw_binding = 0;
    int id = 9;
    stuck_t st = { WEFT_FRAME_INIT(stuck) };
    weft_task_local_scope_t s = weft_task_local_scope(&req_id, &id, WEFT_FUTURE(&st), NULL);
    weft_join_handle_t h;
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&s), &h, NULL, WEFT_SITE), 0);
    let_tasks_run(rt, _i);
    weft_join_handle_abort(&h);
    ck_assert_int_eq(join_out(rt, &h, NULL), WEFT_ECANCELED);
    ck_assert_int_eq(drop_saw_binding, 1);
    ck_assert_ptr_null(weft_task_local_get(&req_id));
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- sync_scope and misuse --------------------------------------------------- */

static void *read_user(void *arg)
{
    (void)arg;
    return weft_task_local_get(&user);
}
static void *nested_sync(void *arg)
{
    char *other = arg;
    return weft_task_local_sync_scope(&user, other, read_user, NULL);
}

START_TEST(sync_scope_nests)
{
    char a[] = "a", b[] = "b";
    ck_assert_ptr_eq(weft_task_local_sync_scope(&user, a, read_user, NULL), a);
    ck_assert_ptr_eq(weft_task_local_sync_scope(&user, a, nested_sync, b), b);
    ck_assert_ptr_null(weft_task_local_get(&user));
}
END_TEST

static void expect_outside(void)
{
    (void)weft_task_local_expect(&req_id);
}
static void scope_null_inner(void)
{
    weft_task_local_scope_t s = weft_task_local_scope(&req_id, NULL, NULL, NULL);
    (void)s;
}

START_TEST(misuse_aborts)
{
    if (!can_fork())
        return;
    expect_panic(expect_outside, "task-local req_id read outside any scope");
    expect_panic(scope_null_inner, "weft_task_local_scope");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("task_local");
    TCase *tc = tcase_create("task_local");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, unbound_outside, 0, N_SHAPES);
    tcase_add_loop_test(tc, nested_and_two_keys, 0, N_SHAPES);
    tcase_add_loop_test(tc, spawn_does_not_inherit, 0, N_SHAPES);
    tcase_add_test(tc, migrating_tasks_keep_their_own);
    tcase_add_loop_test(tc, drop_inside_scope, 0, N_SHAPES);
    tcase_add_test(tc, sync_scope_nests);
    tcase_add_test(tc, misuse_aborts);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
