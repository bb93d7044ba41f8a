/* tests/test_task.c - tasks and join handles: spawn, output, abort, detach,
 * the task_combinations matrix, names and spawn sites, ENOMEM. */
#include "testlib.h"

/* ---- The target task of the matrix ------------------------------------------- */
typedef struct {
    pthread_mutex_t mu;
    weft_waker_t waker;           /* under mu */
    _Atomic int polled;           /* polls so far */
    _Atomic int release;          /* let it complete (set under mu) */
    int release_pending;          /* set release at the next ctl_wake */
    _Atomic int drops;            /* future drops: must end at exactly 1 */
    _Atomic int out_drops;        /* output destructor calls */
    _Atomic int abort_self;       /* abort its own task at the next poll */
    weft_join_handle_t self;      /* a copy of its handle, for abort_self */
} ctl_t;

typedef struct {
    ctl_t *ctl;
    int *heap; /* owned by the output: freed by its destructor */
} tgt_out_t;

typedef struct {
    weft_future_t future;
    ctl_t *ctl;
} tgt_t;

static void ctl_wake(ctl_t *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->release_pending) {
        c->release = 1;
        c->release_pending = 0;
    }
    weft_waker_t w = c->waker;
    c->waker = (weft_waker_t){ NULL, NULL };
    pthread_mutex_unlock(&c->mu);
    if (w.vtable)
        weft_waker_wake(&w);
}

static weft_poll_t tgt_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    ctl_t *c = ((tgt_t *)(void *)f)->ctl;
    c->polled++;
    if (c->abort_self)
        weft_join_handle_abort(&c->self);
    /* release is read under mu, where the driver sets it and takes the
     * waker: a release cannot slip in between our check and our register. */
    pthread_mutex_lock(&c->mu);
    if (c->release) {
        pthread_mutex_unlock(&c->mu);
        tgt_out_t *o = out;
        o->ctl = c;
        o->heap = malloc(sizeof(int));
        *o->heap = 42;
        return WEFT_READY;
    }
    weft_waker_drop(&c->waker);
    c->waker = weft_waker_clone(cx->waker);
    pthread_mutex_unlock(&c->mu);
    return WEFT_PENDING;
}
static void tgt_drop(weft_future_t *f)
{
    ctl_t *c = ((tgt_t *)(void *)f)->ctl;
    c->drops++;
}
static void tgt_drop_output(void *out)
{
    tgt_out_t *o = out;
    free(o->heap);
    o->ctl->out_drops++;
}
static const weft_future_vtable_t tgt_vt = { tgt_poll, tgt_drop, tgt_drop_output, sizeof(tgt_t), sizeof(tgt_out_t),
                                             "target" };

/* ---- The driver, as an async function run by block_on -------------------------- */
enum fut_mode { F_COMPLETES, F_ABORT_BEFORE_POLL, F_ABORT_AFTER_POLL, F_ABORT_AFTER_DONE, F_MODES };
enum handle_mode { H_AWAITED, H_DROP_AT_ONCE, H_DROP_AFTER_POLL, H_DROP_AFTER_DONE, H_MODES };
enum abort_src { A_SAME_TASK, A_OTHER_TASK, A_FOREIGN_THREAD, A_SRCS };

typedef struct {
    WEFT_FRAME;
    ctl_t *ctl;
    int fm, hm, src;
    weft_join_handle_t h;
    tgt_out_t out;
    int rc;
    bool have_handle;
} driver_t;

static void *abort_thread(void *arg)
{
    weft_join_handle_abort(arg);
    return NULL;
}

static void do_abort(driver_t *d)
{
    if (d->src == A_FOREIGN_THREAD) {
        pthread_t th;
        if (WEFT_TEST_CHECK_INT_EQ(pthread_create(&th, NULL, abort_thread, &d->h), 0))
            pthread_join(th, NULL);
    } else if (d->src == A_OTHER_TASK) {
        weft_join_handle_abort(&d->h);
    } else {
        d->ctl->abort_self = 1;
        ctl_wake(d->ctl); /* the task aborts itself when it next runs */
    }
}

static void drop_handle(driver_t *d)
{
    weft_join_handle_drop(&d->h);
    d->have_handle = false;
}

WEFT_ASYNC(driver_t, driver, int)
{
    WEFT_BEGIN();
    {
        tgt_t t = { { &tgt_vt }, self->ctl };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn(&t, &self->h), 0))
            WEFT_RETURN(-1);
        self->have_handle = true;
        self->ctl->self = self->h;
    }
    if (self->fm == F_ABORT_BEFORE_POLL && self->src != A_SAME_TASK)
        do_abort(self);
    if (self->hm == H_DROP_AT_ONCE)
        drop_handle(self);
    /* Wait for the first poll (or the cancellation that replaced it). */
    while (self->ctl->polled == 0 && self->ctl->drops == 0)
        WEFT_YIELD();
    if (self->fm == F_ABORT_AFTER_POLL && (self->have_handle || self->src == A_SAME_TASK))
        do_abort(self);
    if (self->fm == F_ABORT_BEFORE_POLL && self->src == A_SAME_TASK)
        do_abort(self);
    if (self->hm == H_DROP_AFTER_POLL)
        drop_handle(self);
    self->ctl->release_pending = 1;
    ctl_wake(self->ctl);
    while (self->ctl->drops == 0)
        WEFT_YIELD();
    if (self->fm == F_ABORT_AFTER_DONE && self->have_handle && self->src != A_SAME_TASK)
        do_abort(self);
    if (self->hm == H_DROP_AFTER_DONE)
        drop_handle(self);
    if (self->hm == H_AWAITED) {
        WEFT_AWAIT_REF(weft_join(&self->h, &self->out), &self->rc);
        self->have_handle = false;
        if (self->rc == 0) {
            (void)WEFT_TEST_CHECK_INT_EQ(*self->out.heap, 42);
            tgt_drop_output(&self->out); /* the output is ours now */
        }
        WEFT_RETURN(self->rc);
    }
    WEFT_RETURN(1);
    WEFT_END();
}

START_TEST(task_combinations)
{
    int shape = _i % N_SHAPES;
    int fm = (_i / N_SHAPES) % F_MODES;
    int hm = (_i / (N_SHAPES * F_MODES)) % H_MODES;
    int src = (_i / (N_SHAPES * F_MODES * H_MODES)) % A_SRCS;
    ctl_t *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    weft_runtime_t *rt = shape_rt(shape);
    driver_t d = { WEFT_FRAME_INIT(driver), .ctl = c, .fm = fm, .hm = hm, .src = src };
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&d), &rc), 0);
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt);
    ck_assert_int_eq(c->drops, 1); /* the future was dropped exactly once */
    /* A task that produced an output had it destroyed exactly once, by the
     * handle's owner (awaited), the handle's drop or the task itself. */
    bool cancelled = c->out_drops == 0;
    ck_assert_int_le(c->out_drops, 1);
    if (fm == F_COMPLETES || fm == F_ABORT_AFTER_DONE)
        ck_assert_msg(!cancelled, "shape %d fm %d hm %d src %d: completed task lost its output", shape, fm, hm, src);
    if (hm == H_AWAITED)
        ck_assert_int_eq(rc, cancelled ? WEFT_ECANCELED : 0);
    if (fm == F_ABORT_AFTER_POLL && hm == H_AWAITED && src != A_SAME_TASK)
        ck_assert_msg(cancelled, "shape %d hm %d src %d: aborted before release yet not cancelled", shape, hm, src);
    weft_waker_drop(&c->waker);
    pthread_mutex_destroy(&c->mu);
    free(c);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Plain spawn/join --------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    long n;
    weft_join_handle_t a, b;
    long ra, rb;
    int ea, eb;
    weft_join2_t j;
} psum_t;
WEFT_NODISCARD static psum_t psum(long n);
WEFT_ASYNC(psum_t, psum_fn, long)
{
    WEFT_BEGIN();
    if (self->n < 2)
        WEFT_RETURN(self->n);
    {
        psum_t l = psum(self->n - 1), r = psum(self->n - 2);
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn(&l, &self->a), 0))
            WEFT_RETURN(-1);
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn(&r, &self->b), 0)) {
            weft_join_handle_drop(&self->a);
            WEFT_RETURN(-1);
        }
    }
    WEFT_AWAIT(&self->j, weft_join2(weft_join(&self->a, &self->ra), &self->ea, weft_join(&self->b, &self->rb), &self->eb), NULL);
    (void)WEFT_TEST_CHECK_INT_EQ(self->ea, 0);
    (void)WEFT_TEST_CHECK_INT_EQ(self->eb, 0);
    WEFT_RETURN(self->ra + self->rb);
    WEFT_END();
}
static psum_t psum(long n) { return (psum_t){ WEFT_FRAME_INIT(psum_fn), .n = n }; }

START_TEST(spawn_tree_fibonacci)
{
    weft_runtime_t *rt = shape_rt(_i);
    psum_t p = psum(18);
    long r = 0;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&p), &r), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(r, 2584);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Names, sites, is_finished --------------------------------------------------- */
static char seen_name[32], seen_site[128];
typedef struct {
    weft_future_t future;
} namer_t;
static weft_poll_t namer_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx, (void)out;
    snprintf(seen_name, sizeof seen_name, "%s", weft_task_current_name() ? weft_task_current_name() : "(null)");
    snprintf(seen_site, sizeof seen_site, "%s", weft_task_current_site());
    return WEFT_READY;
}
static const weft_future_vtable_t namer_vt = { namer_poll, NULL, NULL, sizeof(namer_t), 0, "namer" };

typedef struct {
    WEFT_FRAME;
    weft_join_handle_t h;
} spawn_named_t;
WEFT_ASYNC(spawn_named_t, spawn_named_fn, weft_unit_t)
{
    WEFT_BEGIN();
    {
        namer_t n = { { &namer_vt } };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_named("reporter", &n, &self->h), 0))
            WEFT_RETURN(WEFT_UNIT);
    }
    WEFT_AWAIT_REF(&self->h, NULL);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(names_and_sites)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    spawn_named_t s = { WEFT_FRAME_INIT(spawn_named_fn) };
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&s), NULL), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_str_eq(seen_name, "reporter");
    ck_assert_ptr_nonnull(strstr(seen_site, "test_task.c:"));
    ck_assert_ptr_null(weft_task_current_name());
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(is_finished_and_detach)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    weft_join_handle_t h;
    weft_ready_t r = weft_ready(5);
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &r, &h), 0);
    for (int i = 0; i < 5000 && !weft_join_handle_is_finished(&h); i++)
        sleep_ms(1);
    ck_assert(weft_join_handle_is_finished(&h));
    intptr_t v = 0;
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, weft_join(&h, &v), &rc), 0); /* block_on drops the handle */
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(v, 5);
    /* Detached tasks still run. */
    weft_pending_t p = weft_pending();
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &p, NULL), 0);
    weft_runtime_free(rt); /* ...and are dropped by shutdown */
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(spawn_after_shutdown_is_cancelled)
{
    weft_runtime_t *rt = shape_rt(_i);
    ck_assert_int_eq(weft_runtime_shutdown_timeout(rt, 5000), 0);
    ctl_t c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    tgt_t t = { { &tgt_vt }, &c };
    weft_join_handle_t h;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t, &h), 0);
    ck_assert_int_eq(c.drops, 1); /* dropped at once, never polled */
    ck_assert_int_eq(c.polled, 0);
    ck_assert(weft_join_handle_is_finished(&h));
    /* Awaiting it from another runtime reports the cancellation. */
    weft_runtime_t *rt2 = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    int rc = 0;
    ck_assert_int_eq(weft_runtime_block_on(rt2, weft_join(&h, NULL), &rc), 0);
    ck_assert_int_eq(rc, WEFT_ECANCELED);
    weft_ready_t one = weft_ready(1);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&one), NULL), WEFT_ESHUTDOWN);
    weft_runtime_free(rt2);
    weft_runtime_free(rt);
    pthread_mutex_destroy(&c.mu);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(spawn_enomem_leaves_future_with_caller)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
    ctl_t c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    tgt_t t = { { &tgt_vt }, &c };
    weft_join_handle_t h = { 0 };
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t, &h), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    ck_assert_ptr_null(h.task_); /* untouched */
    ck_assert_int_eq(c.drops, 0); /* still ours */
    weft_future_drop(WEFT_FUTURE(&t));
    weft_runtime_free(rt);
    pthread_mutex_destroy(&c.mu);
    ASSERT_NO_LIVE();
}
END_TEST

/* Two tasks awaiting each other's handles: a cycle of references that
 * shutdown must break. */
typedef struct {
    WEFT_FRAME;
    weft_join_handle_t *other;
    weft_oneshot_rx_t go;
    int rc;
} mutual_t;
WEFT_ASYNC(mutual_t, mutual_fn, weft_unit_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT_REF(weft_oneshot_recv(&self->go, NULL), &self->rc);
    WEFT_AWAIT_REF(self->other, &self->rc);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(mutual_join_does_not_leak)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_handle_t *hd = weft_runtime_handle(rt);
    /* Each handle lives in the other task's frame: spawn both parked on a
     * oneshot, then hand over the handles. */
    static weft_join_handle_t ha, hb;
    weft_oneshot_tx_t ga, gb;
    mutual_t a = { WEFT_FRAME_INIT(mutual_fn), .other = &hb }, b = { WEFT_FRAME_INIT(mutual_fn), .other = &ha };
    ck_assert_int_eq(weft_oneshot_new(1, NULL, &ga, &a.go), 0);
    ck_assert_int_eq(weft_oneshot_new(1, NULL, &gb, &b.go), 0);
    ck_assert_int_eq(weft_handle_spawn(hd, &a, &ha), 0);
    ck_assert_int_eq(weft_handle_spawn(hd, &b, &hb), 0);
    char x = 1;
    ck_assert_int_eq(weft_oneshot_send(&ga, &x), 0);
    ck_assert_int_eq(weft_oneshot_send(&gb, &x), 0);
    if (_i == 0) {
        weft_yield_t y = weft_yield_now();
        ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&y), NULL), 0); /* let them run */
    } else {
        sleep_ms(20);
    }
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* A one-byte output must not be mistaken for weft_unit_t (out_size 0). */
typedef struct {
    WEFT_FRAME;
} byte_t;
WEFT_ASYNC(byte_t, byte_fn, uint8_t)
{
    WEFT_BEGIN();
    WEFT_RETURN(200);
    WEFT_END();
}

START_TEST(one_byte_output_survives_spawn)
{
    weft_runtime_t *rt = shape_rt(_i);
    byte_t b = { WEFT_FRAME_INIT(byte_fn) };
    weft_join_handle_t h;
    ck_assert_uint_eq(byte_fn__vtable.out_size, 1);
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &b, &h), 0);
    uint8_t v = 0;
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, weft_join(&h, &v), &rc), 0);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(v, 200);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Task ids --------------------------------------------------------------
 * Every task's id is non-zero and unique; inside the task weft_task_current_id
 * equals its handle's; outside any task, and for an empty handle, it is 0.
 * Spawners on several threads at once (the workers and this thread) draw
 * from per-thread blocks of ids: still no duplicate. */
#define ID_SPAWNERS 4
#define ID_PER 300

typedef struct {
    WEFT_FRAME;
    weft_task_id_t *seen;
} id_probe_t;
WEFT_ASYNC(id_probe_t, id_probe, weft_unit_t)
{
    WEFT_BEGIN();
    *self->seen = weft_task_current_id();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_task_id_t *ids, *seen;
    weft_join_handle_t h[ID_PER];
    int i, rc;
} id_spawner_t;
WEFT_ASYNC(id_spawner_t, id_spawner, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < ID_PER; self->i++) {
        id_probe_t p = { WEFT_FRAME_INIT(id_probe) };
        p.seen = &self->seen[self->i];
        WEFT_TEST_CHECK_INT_EQ(weft_spawn(&p, &self->h[self->i]), 0);
        self->ids[self->i] = weft_join_handle_id(&self->h[self->i]);
    }
    for (self->i = 0; self->i < ID_PER; self->i++)
        WEFT_AWAIT_REF(weft_join(&self->h[self->i], NULL), &self->rc);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static int cmp_id(const void *a, const void *b)
{
    weft_task_id_t x = *(const weft_task_id_t *)a, y = *(const weft_task_id_t *)b;
    return (x > y) - (x < y);
}

START_TEST(task_ids_unique)
{
    weft_runtime_t *rt = shape_rt(_i);
    static weft_task_id_t ids[ID_SPAWNERS + 1][ID_PER], seen[ID_SPAWNERS + 1][ID_PER];
    static id_spawner_t sp[ID_SPAWNERS];
    weft_join_handle_t hs[ID_SPAWNERS];
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < ID_SPAWNERS; k++) {
        sp[k] = (id_spawner_t){ WEFT_FRAME_INIT(id_spawner) };
        sp[k].ids = ids[k];
        sp[k].seen = seen[k];
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&sp[k]), &hs[k], NULL, WEFT_SITE), 0);
    }
    /* And from this (non-worker) thread, while the spawners run. */
    for (int i = 0; i < ID_PER; i++) {
        id_probe_t p = { WEFT_FRAME_INIT(id_probe) };
        p.seen = &seen[ID_SPAWNERS][i];
        weft_join_handle_t h;
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&p), &h, NULL, WEFT_SITE), 0);
        ids[ID_SPAWNERS][i] = weft_join_handle_id(&h);
        ck_assert_int_eq(join_out(rt, &h, NULL), 0);
        ck_assert_uint_eq(weft_join_handle_id(&h), 0); /* consumed */
    }
    for (int k = 0; k < ID_SPAWNERS; k++)
        ck_assert_int_eq(join_out(rt, &hs[k], NULL), 0);
    ASSERT_NO_TEST_FAIL();
    for (int k = 0; k <= ID_SPAWNERS; k++)
        for (int i = 0; i < ID_PER; i++) {
            ck_assert_uint_ne(ids[k][i], 0);
            ck_assert_uint_eq(seen[k][i], ids[k][i]); /* the task saw its own id */
        }
    weft_task_id_t *flat = (weft_task_id_t *)(void *)ids; /* the whole array, as one */
    qsort(flat, (ID_SPAWNERS + 1) * ID_PER, sizeof *flat, cmp_id);
    for (int i = 1; i < (ID_SPAWNERS + 1) * ID_PER; i++)
        ck_assert_uint_ne(flat[i - 1], flat[i]);
    ck_assert_uint_eq(weft_task_current_id(), 0);
    weft_join_handle_t empty = { 0 };
    ck_assert_uint_eq(weft_join_handle_id(&empty), 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("task");
    TCase *tc = tcase_create("combinations");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, task_combinations, 0, N_SHAPES * F_MODES * H_MODES * A_SRCS);
    suite_add_tcase(s, tc);
    tc = tcase_create("spawn");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, spawn_tree_fibonacci, 0, N_SHAPES);
    tcase_add_test(tc, names_and_sites);
    tcase_add_test(tc, is_finished_and_detach);
    tcase_add_loop_test(tc, spawn_after_shutdown_is_cancelled, 0, N_SHAPES);
    tcase_add_test(tc, spawn_enomem_leaves_future_with_caller);
    tcase_add_loop_test(tc, mutual_join_does_not_leak, 0, N_SHAPES);
    tcase_add_loop_test(tc, one_byte_output_survives_spawn, 0, N_SHAPES);
    tcase_add_loop_test(tc, task_ids_unique, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
