/* tests/test_localset.c - local sets (weft/local.h): every poll and drop of
 * a local task happens on the set's owner thread, whoever wakes it (plain
 * threads, the workers of a multi-thread runtime, the runtime's other tasks
 * on a current-thread runtime, timers, sockets, oneshot senders); local
 * tasks spawning local tasks; join handles (await, abort from the set and
 * from another thread, detach); the set driven in block_on of every runtime
 * shape, and by a thread other than the test's; freeing a set with tasks in
 * every state; a runtime shut down or freed while a set lives; the
 * cooperative budget; task-locals; misuse aborts; allocation failure; and a
 * seeded chaos scenario of foreign wakes racing the free (also built as the
 * stress test test_stress_localset, with WEFT_LOCALSET_STRESS). Bodies that
 * run off the test thread check with WEFT_TEST_CHECK* (testlib.h). */
#include "testlib.h"

/* ---- Where polls and drops happen ------------------------------------------- */

/* The owner thread of the set under test: written before anything can poll
 * a local task (the spawns that follow publish it to the owner, which is
 * the only thread meant to read it). */
static pthread_t owner_tid;
static _Atomic int polls, polls_off_owner, drops, drops_off_owner;

static void owner_is_me(void)
{
    owner_tid = pthread_self();
    polls = polls_off_owner = drops = drops_off_owner = 0;
}

static void note_poll(void)
{
    polls++;
    if (!pthread_equal(pthread_self(), owner_tid))
        polls_off_owner++;
}

static void note_drop(void)
{
    drops++;
    if (!pthread_equal(pthread_self(), owner_tid))
        drops_off_owner++;
}

/* The cleanup of every frame whose drops are counted (any frame type). */
static void drop_noted(void *frame)
{
    (void)frame;
    note_drop();
}

#define ASSERT_ALL_ON_OWNER()                       \
    do {                                            \
        ck_assert_int_eq(polls_off_owner, 0);       \
        ck_assert_int_eq(drops_off_owner, 0);       \
    } while (0)

/* Every live-object counter, the local sets' included, reads 0. */
#define ASSERT_LOCAL_CLEAN()                                                  \
    do {                                                                      \
        ASSERT_NO_LIVE();                                                     \
        ck_assert_int_eq(weft__live_count(WEFT_LIVE_LOCAL_SET), 0);           \
    } while (0)

/* The end of a test: the set, then the runtime, then every counter at 0
 * and no failed check off the test thread. */
#define FREE_ALL_AND_CHECK(set, rt)       \
    do {                                  \
        weft_local_set_free(set);         \
        weft_runtime_free(rt);            \
        ASSERT_NO_TEST_FAIL();            \
        ASSERT_LOCAL_CLEAN();             \
    } while (0)

static weft_local_set_t *new_set(void)
{
    weft_local_set_t *set = NULL;
    ck_assert_int_eq(weft_local_set_new(&set), 0);
    return set;
}

/* ---- A gate: opened from anywhere, awaited by a local task ---------------------- */

typedef struct {
    weft_atomic_waker_t aw;
    _Atomic int opened;
} gate_t;

static void gate_init(gate_t *g)
{
    weft_atomic_waker_init(&g->aw);
    atomic_init(&g->opened, 0);
}

static void gate_open(gate_t *g)
{
    atomic_fetch_add(&g->opened, 1);
    weft_atomic_waker_wake(&g->aw);
}

/* Drops the waker a waiter left (a task's: it keeps the task allocated). */
static void gate_destroy(gate_t *g)
{
    weft_atomic_waker_drop(&g->aw);
}

/* Completes once the gate was opened `want` times. */
typedef struct {
    weft_future_t future;
    gate_t *g;
    int want;
} gate_wait_t;

static weft_poll_t gate_wait_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)out;
    gate_wait_t *w = (gate_wait_t *)(void *)f;
    if (atomic_load(&w->g->opened) >= w->want)
        return WEFT_READY;
    weft_atomic_waker_register(&w->g->aw, cx->waker);
    return atomic_load(&w->g->opened) >= w->want ? WEFT_READY : WEFT_PENDING;
}

static const weft_future_vtable_t gate_wait_vt = { gate_wait_poll, NULL, NULL, sizeof(gate_wait_t), 0, "gate_wait" };

WEFT_NODISCARD static gate_wait_t gate_wait(gate_t *g, int want)
{
    return (gate_wait_t){ { &gate_wait_vt }, g, want };
}

/* A local task that waits for its gate to open `rounds` times, one opening
 * at a time, noting every poll and its drop; output the rounds seen. */
typedef struct {
    WEFT_FRAME;
    gate_t *g;
    int rounds, i;
    gate_wait_t w;
} probe_t;

WEFT_ASYNC_WITH_DROP(probe_t, probe, int, drop_noted)
{
    note_poll();
    WEFT_BEGIN();
    for (self->i = 1; self->i <= self->rounds; self->i++)
        WEFT_AWAIT(&self->w, gate_wait(self->g, self->i), NULL);
    WEFT_RETURN(self->rounds);
    WEFT_END();
}

WEFT_NODISCARD static probe_t probe(gate_t *g, int rounds)
{
    return (probe_t){ WEFT_FRAME_INIT(probe), .g = g, .rounds = rounds };
}

/* Opens gates from a plain thread: each of n gates `rounds` times. */
typedef struct {
    gate_t *gates;
    int n, rounds;
} opener_arg_t;

static void *opener_thread(void *arg)
{
    opener_arg_t *a = arg;
    for (int r = 0; r < a->rounds; r++) {
        for (int i = 0; i < a->n; i++)
            gate_open(&a->gates[i]);
        sleep_ms(1);
    }
    return NULL;
}

/* Opens one gate from a runtime task (a worker, or the current-thread
 * runtime's own loop), with a timer between openings. */
typedef struct {
    WEFT_FRAME;
    gate_t *g;
    int rounds, i;
    weft_sleep_t sl;
} opener_task_t;

WEFT_ASYNC(opener_task_t, opener_task, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < self->rounds; self->i++) {
        WEFT_AWAIT(&self->sl, weft_sleep_ms(1), NULL);
        gate_open(self->g);
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

/* ---- Foreign wakes, polls only on the owner --------------------------------------- */

START_TEST(foreign_wakes_polled_on_owner)
{
    enum { N = 8, ROUNDS = 20 };
    owner_is_me();
    weft_runtime_t *rt = shape_rt(_i);
    weft_local_set_t *set = new_set();
    gate_t gates[N];
    weft_join_handle_t jh[N];
    for (int i = 0; i < N; i++) {
        gate_init(&gates[i]);
        probe_t p = probe(&gates[i], ROUNDS);
        ck_assert_int_eq(weft_local_set_spawn(set, &p, &jh[i]), 0);
    }
    /* Half are woken by a plain thread, half by runtime tasks: workers on
     * the multi-thread shapes, the owner outside the set's run on the
     * current-thread one. */
    opener_arg_t a = { gates, N / 2, ROUNDS };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, opener_thread, &a), 0);
    for (int i = N / 2; i < N; i++) {
        opener_task_t o = { WEFT_FRAME_INIT(opener_task), .g = &gates[i], .rounds = ROUNDS };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &o, NULL), 0);
    }
    weft_local_run_t run = weft_local_set_run(set);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&run), NULL), 0);
    for (int i = 0; i < N; i++) {
        int rounds = -1;
        ck_assert_int_eq(join_out(rt, &jh[i], &rounds), 0);
        ck_assert_int_eq(rounds, ROUNDS);
    }
    pthread_join(th, NULL);
    ck_assert_int_ge(polls, N * 2); /* every probe waited at least once */
    ck_assert_int_eq(drops, N);
    ASSERT_ALL_ON_OWNER();
    weft_local_set_free(set);
    weft_runtime_free(rt);
    for (int i = 0; i < N; i++)
        gate_destroy(&gates[i]);
    ASSERT_LOCAL_CLEAN();
    ASSERT_NO_TEST_FAIL();
}
END_TEST

/* The owner is not the test thread: a thread of its own creates the set
 * and drives it in block_on of a 2-worker runtime whose tasks wake it. */
typedef struct {
    weft_runtime_t *rt;
    int rc;
} owner_arg_t;

static void *owner_main(void *arg)
{
    enum { N = 4, ROUNDS = 10 };
    owner_arg_t *a = arg;
    owner_is_me();
    weft_local_set_t *set;
    if (!WEFT_TEST_CHECK_INT_EQ(weft_local_set_new(&set), 0))
        return NULL;
    gate_t gates[N];
    for (int i = 0; i < N; i++) {
        gate_init(&gates[i]);
        probe_t p = probe(&gates[i], ROUNDS);
        WEFT_TEST_CHECK_INT_EQ(weft_local_set_spawn(set, &p, NULL), 0);
        opener_task_t o = { WEFT_FRAME_INIT(opener_task), .g = &gates[i], .rounds = ROUNDS };
        WEFT_TEST_CHECK_INT_EQ(weft_handle_spawn(weft_runtime_handle(a->rt), &o, NULL), 0);
    }
    weft_local_run_t run = weft_local_set_run(set);
    a->rc = weft_runtime_block_on(a->rt, WEFT_FUTURE(&run), NULL);
    weft_local_set_free(set);
    WEFT_TEST_CHECK_INT_EQ(polls_off_owner, 0);
    WEFT_TEST_CHECK(polls >= N * 2);
    for (int i = 0; i < N; i++)
        gate_destroy(&gates[i]);
    return NULL;
}

START_TEST(owner_is_the_block_on_caller)
{
    owner_arg_t a = { test_rt(WEFT_RUNTIME_MULTI_THREAD, 2), -1 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, owner_main, &a), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(a.rc, 0);
    weft_runtime_free(a.rt);
    ASSERT_NO_TEST_FAIL();
    ASSERT_LOCAL_CLEAN();
}
END_TEST

/* ---- Local tasks spawning local tasks ---------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    int depth, i, sum, child, rc;
    weft_join_handle_t jh[3];
} node_t;

static void node_cleanup(node_t *self)
{
    for (int i = 0; i < 3; i++)
        weft_join_handle_drop(&self->jh[i]); /* consumed or never filled: nothing */
}

WEFT_NODISCARD static node_t node(int depth);

WEFT_ASYNC_WITH_DROP(node_t, node_fn, int, node_cleanup)
{
    note_poll();
    WEFT_BEGIN();
    if (self->depth == 0) {
        WEFT_YIELD(); /* a leaf waits once, so parents await pending handles */
        WEFT_RETURN(1);
    }
    for (self->i = 0; self->i < 3; self->i++) {
        node_t c = node(self->depth - 1);
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_local(&c, &self->jh[self->i]), 0))
            WEFT_RETURN(-1);
    }
    self->sum = 1;
    for (self->i = 0; self->i < 3; self->i++) {
        WEFT_AWAIT_REF(weft_join(&self->jh[self->i], &self->child), &self->rc);
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
            WEFT_RETURN(-1);
        self->sum += self->child;
    }
    WEFT_RETURN(self->sum);
    WEFT_END();
}

static node_t node(int depth)
{
    return (node_t){ WEFT_FRAME_INIT(node_fn), .depth = depth };
}

START_TEST(local_tasks_spawn_local_tasks)
{
    owner_is_me();
    weft_runtime_t *rt = shape_rt(_i);
    weft_local_set_t *set = new_set();
    node_t root = node(4); /* the run_until's own future spawns the first level */
    int total = 0;
    weft_local_run_t run = weft_local_set_run_until(set, WEFT_FUTURE(&root), &total);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&run), NULL), 0);
    ck_assert_int_eq(total, 121); /* 1 + 3 + 9 + 27 + 81 nodes */
    ck_assert_int_ge(polls, 121);
    ASSERT_ALL_ON_OWNER();
    FREE_ALL_AND_CHECK(set, rt);
}
END_TEST

/* ---- Join handles: await, abort (here and from another thread), detach ------------ */

typedef struct {
    WEFT_FRAME;
} answer_t;
WEFT_ASYNC(answer_t, answer, int)
{
    note_poll();
    WEFT_BEGIN();
    WEFT_YIELD();
    WEFT_TEST_CHECK(weft_task_current_name() != NULL && strcmp(weft_task_current_name(), "answer") == 0);
    WEFT_RETURN(42);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    _Atomic int *done;
    int i;
} detached_t;
WEFT_ASYNC(detached_t, detached, weft_unit_t)
{
    note_poll();
    WEFT_BEGIN();
    for (self->i = 0; self->i < 5; self->i++)
        WEFT_YIELD();
    *self->done = 1;
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

/* A handle handed to another thread, which aborts it. */
typedef struct {
    weft_join_handle_t jh;
    _Atomic int ready;
} abort_box_t;

static void *abort_later(void *arg)
{
    abort_box_t *b = arg;
    while (!atomic_load(&b->ready))
        sleep_ms(1);
    sleep_ms(2);
    weft_join_handle_abort(&b->jh);
    return NULL;
}

typedef struct {
    WEFT_FRAME;
    gate_t never;
    abort_box_t *box;
    weft_join_handle_t jh;
    _Atomic int detached_done;
    int out, rc, i;
} joiner_t;
WEFT_ASYNC(joiner_t, joiner, int)
{
    WEFT_BEGIN();
    /* Awaited from inside the set: the output. */
    {
        answer_t a = { WEFT_FRAME_INIT(answer) };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_local_named("answer", &a, &self->jh), 0))
            WEFT_RETURN(-1);
    }
    WEFT_AWAIT_REF(weft_join(&self->jh, &self->out), &self->rc);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0) || !WEFT_TEST_CHECK_INT_EQ(self->out, 42))
        WEFT_RETURN(-1);
    /* Aborted after it started waiting. */
    {
        probe_t p = probe(&self->never, 1);
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_local(&p, &self->jh), 0))
            WEFT_RETURN(-1);
    }
    WEFT_YIELD();
    WEFT_YIELD();
    weft_join_handle_abort(&self->jh);
    WEFT_AWAIT_REF(weft_join(&self->jh, NULL), &self->rc);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, WEFT_ECANCELED))
        WEFT_RETURN(-1);
    /* Aborted before its first poll. */
    {
        probe_t p = probe(&self->never, 1);
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_local(&p, &self->jh), 0))
            WEFT_RETURN(-1);
    }
    weft_join_handle_abort(&self->jh);
    WEFT_AWAIT_REF(weft_join(&self->jh, NULL), &self->rc);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, WEFT_ECANCELED))
        WEFT_RETURN(-1);
    /* Aborted from another thread while it waits: dropped here, on the
     * owner, at its next scheduling. */
    {
        probe_t p = probe(&self->never, 1);
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_local(&p, &self->box->jh), 0))
            WEFT_RETURN(-1);
    }
    atomic_store(&self->box->ready, 1);
    WEFT_AWAIT_REF(weft_join(&self->box->jh, NULL), &self->rc);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, WEFT_ECANCELED))
        WEFT_RETURN(-1);
    /* Detached: runs to the end on its own. */
    {
        detached_t d = { WEFT_FRAME_INIT(detached), .done = &self->detached_done };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_local(&d, &self->jh), 0))
            WEFT_RETURN(-1);
    }
    weft_join_handle_drop(&self->jh);
    for (self->i = 0; self->i < 1000 && !atomic_load(&self->detached_done); self->i++)
        WEFT_YIELD();
    if (!WEFT_TEST_CHECK(atomic_load(&self->detached_done)))
        WEFT_RETURN(-1);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(join_handles)
{
    owner_is_me();
    weft_runtime_t *rt = shape_rt(_i);
    weft_local_set_t *set = new_set();
    abort_box_t box = { .ready = 0 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, abort_later, &box), 0);
    joiner_t j = { WEFT_FRAME_INIT(joiner), .box = &box };
    gate_init(&j.never);
    int rc = -1;
    weft_local_run_t run = weft_local_set_run_until(set, WEFT_FUTURE(&j), &rc);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&run), NULL), 0);
    pthread_join(th, NULL);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(drops, 3); /* the three aborted probes */
    ASSERT_ALL_ON_OWNER();
    weft_local_set_free(set);
    weft_runtime_free(rt);
    gate_destroy(&j.never);
    ASSERT_LOCAL_CLEAN();
}
END_TEST

/* ---- Timers, oneshot, sockets ------------------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    int ms, i;
    uint64_t t0;
    weft_sleep_t sl;
} sleeper_t;
WEFT_ASYNC(sleeper_t, sleeper, int)
{
    note_poll();
    WEFT_BEGIN();
    for (self->i = 0; self->i < 3; self->i++) {
        self->t0 = weft_now_ns();
        WEFT_AWAIT(&self->sl, weft_sleep_ms((uint64_t)self->ms), NULL);
        if (!WEFT_TEST_CHECK(weft_now_ns() - self->t0 >= (uint64_t)self->ms * 1000000u))
            WEFT_RETURN(-1);
    }
    WEFT_RETURN(0);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_oneshot_rx_t rx;
    int value, rc;
} receiver_t;
static void receiver_cleanup(receiver_t *self)
{
    weft_oneshot_rx_drop(&self->rx);
}
WEFT_ASYNC_WITH_DROP(receiver_t, receiver, int, receiver_cleanup)
{
    note_poll();
    WEFT_BEGIN();
    WEFT_AWAIT_REF(weft_oneshot_recv(&self->rx, &self->value), &self->rc);
    WEFT_RETURN(self->rc == 0 ? self->value : -1);
    WEFT_END();
}

static void *send_later(void *arg)
{
    sleep_ms(5);
    int v = 77;
    WEFT_TEST_CHECK_INT_EQ(weft_oneshot_send((weft_oneshot_tx_t *)arg, &v), 0);
    return NULL;
}

/* TCP on 127.0.0.1 between two local tasks, one frame type for both: the
 * server echoes one line. */
typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t *l; /* server */
    uint16_t port;          /* client */
    weft_tcp_stream_t s;
    char buf[32];
    ssize_t n;
    int rc;
    weft_tcp_accept_t acc;
    weft_tcp_connect_t c;
    weft_tcp_io_t op;
} echo_t;
static void echo_cleanup(echo_t *self)
{
    weft_tcp_close(&self->s);
}

WEFT_ASYNC_WITH_DROP(echo_t, echo_server, int, echo_cleanup)
{
    note_poll();
    WEFT_BEGIN();
    WEFT_AWAIT(&self->acc, weft_tcp_accept(self->l, &self->s, NULL), &self->rc);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
        WEFT_RETURN(-1);
    WEFT_AWAIT(&self->op, weft_tcp_read(&self->s, self->buf, sizeof self->buf), &self->n);
    if (!WEFT_TEST_CHECK(self->n > 0))
        WEFT_RETURN(-1);
    WEFT_AWAIT(&self->op, weft_tcp_write_all(&self->s, self->buf, (size_t)self->n), &self->n);
    WEFT_RETURN(self->n > 0 ? 0 : -1);
    WEFT_END();
}

WEFT_ASYNC_WITH_DROP(echo_t, echo_client, int, echo_cleanup)
{
    note_poll();
    WEFT_BEGIN();
    WEFT_AWAIT(&self->c, weft_tcp_connect_ip("127.0.0.1", self->port, &self->s), &self->rc);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
        WEFT_RETURN(-1);
    WEFT_AWAIT(&self->op, weft_tcp_write_all(&self->s, "local ping", 10), &self->n);
    if (!WEFT_TEST_CHECK_INT_EQ(self->n, 10))
        WEFT_RETURN(-1);
    WEFT_AWAIT(&self->op, weft_tcp_read_exact(&self->s, self->buf, 10), &self->n);
    if (!WEFT_TEST_CHECK_INT_EQ(self->n, 10) || !WEFT_TEST_CHECK(memcmp(self->buf, "local ping", 10) == 0))
        WEFT_RETURN(-1);
    WEFT_RETURN(0);
    WEFT_END();
}

/* The run_until's future: sets up each kind of wait and awaits them all. */
typedef struct {
    WEFT_FRAME;
    weft_oneshot_rx_t rx; /* moved into the receiver task */
    weft_tcp_listener_t l;
    bool listening;
    weft_join_handle_t jh[8];
    int n, i, out, rc, failures;
} resources_t;
static void resources_cleanup(resources_t *self)
{
    for (int i = 0; i < 8; i++)
        weft_join_handle_drop(&self->jh[i]);
    if (self->listening)
        weft_tcp_listener_close(&self->l);
}
WEFT_ASYNC_WITH_DROP(resources_t, resources, int, resources_cleanup)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 4; self->i++) {
        sleeper_t s = { WEFT_FRAME_INIT(sleeper), .ms = 2 + 3 * self->i };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_local(&s, &self->jh[self->n]), 0))
            WEFT_RETURN(-1);
        self->n++;
    }
    {
        receiver_t r = { WEFT_FRAME_INIT(receiver), .rx = self->rx };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_local(&r, &self->jh[self->n]), 0)) {
            weft_oneshot_rx_drop(&r.rx);
            WEFT_RETURN(-1);
        }
        self->n++;
    }
    if (!WEFT_TEST_CHECK_INT_EQ(weft_tcp_listen_ip("127.0.0.1", 0, 4, &self->l), 0))
        WEFT_RETURN(-1);
    self->listening = true;
    {
        echo_t sv = { WEFT_FRAME_INIT(echo_server), .l = &self->l };
        echo_t cl = { WEFT_FRAME_INIT(echo_client), .port = weft_tcp_listener_port(&self->l) };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_local(&sv, &self->jh[self->n]), 0))
            WEFT_RETURN(-1);
        self->n++;
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_local(&cl, &self->jh[self->n]), 0))
            WEFT_RETURN(-1);
        self->n++;
    }
    for (self->i = 0; self->i < self->n; self->i++) {
        WEFT_AWAIT_REF(weft_join(&self->jh[self->i], &self->out), &self->rc);
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
            self->failures++;
        else if (self->i == 4 ? !WEFT_TEST_CHECK_INT_EQ(self->out, 77) : !WEFT_TEST_CHECK_INT_EQ(self->out, 0))
            self->failures++;
    }
    WEFT_RETURN(self->failures);
    WEFT_END();
}

START_TEST(timers_oneshot_and_sockets)
{
    owner_is_me();
    weft_runtime_t *rt = shape_rt(_i);
    weft_local_set_t *set = new_set();
    weft_oneshot_tx_t tx;
    resources_t r = { WEFT_FRAME_INIT(resources) };
    ck_assert_int_eq(weft_oneshot_new(sizeof(int), NULL, &tx, &r.rx), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, send_later, &tx), 0);
    int failures = -1;
    weft_local_run_t run = weft_local_set_run_until(set, WEFT_FUTURE(&r), &failures);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&run), NULL), 0);
    pthread_join(th, NULL);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(failures, 0);
    ck_assert_int_ge(polls, 7 * 2);
    ASSERT_ALL_ON_OWNER();
    FREE_ALL_AND_CHECK(set, rt);
}
END_TEST

/* ---- Freeing a set with tasks in every state ----------------------------------------- */

typedef struct {
    WEFT_FRAME;
} spinner_t;
WEFT_ASYNC_WITH_DROP(spinner_t, spinner, weft_unit_t, drop_noted)
{
    note_poll();
    WEFT_BEGIN();
    for (;;)
        WEFT_YIELD();
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_sleep_t sl;
} long_sleep_t;
WEFT_ASYNC_WITH_DROP(long_sleep_t, long_sleep, weft_unit_t, drop_noted)
{
    note_poll();
    WEFT_BEGIN();
    WEFT_AWAIT(&self->sl, weft_sleep_ms(10000), NULL);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

/* Ready after `n` polls (a run_until's future that lets the set run a little). */
typedef struct {
    WEFT_FRAME;
    int n, i;
} polls_t;
WEFT_ASYNC(polls_t, polls_fn, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 1; self->i < self->n; self->i++)
        WEFT_YIELD();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}
static weft_local_run_t run_a_little(weft_local_set_t *set, polls_t *p, int n)
{
    *p = (polls_t){ WEFT_FRAME_INIT(polls_fn), .n = n };
    return weft_local_set_run_until(set, WEFT_FUTURE(p), NULL);
}

START_TEST(free_drops_every_pending_task)
{
    owner_is_me();
    weft_runtime_t *rt = shape_rt(_i);
    weft_local_set_t *set = new_set();
    gate_t waiting, woken;
    gate_init(&waiting);
    gate_init(&woken);
    weft_join_handle_t jh_waiting, jh_never;
    probe_t p1 = probe(&waiting, 1), p2 = probe(&woken, 2);
    spinner_t sp = { WEFT_FRAME_INIT(spinner) };
    long_sleep_t ls = { WEFT_FRAME_INIT(long_sleep) };
    ck_assert_int_eq(weft_local_set_spawn(set, &p1, &jh_waiting), 0);
    ck_assert_int_eq(weft_local_set_spawn(set, &p2, NULL), 0);
    ck_assert_int_eq(weft_local_set_spawn(set, &sp, NULL), 0);
    ck_assert_int_eq(weft_local_set_spawn(set, &ls, NULL), 0);
    polls_t pf;
    weft_local_run_t run = run_a_little(set, &pf, 3);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&run), NULL), 0);
    ck_assert_int_eq(drops, 0);
    /* Now: one waiting on a gate, one waiting on a sleep in the runtime's
     * wheel, one queued (the spinner's yield), one woken from another
     * thread (in the remote queue), and one never polled. */
    gate_open(&woken);
    probe_t p3 = probe(&waiting, 5);
    ck_assert_int_eq(weft_local_set_spawn(set, &p3, &jh_never), 0);
    weft_local_set_free(set);
    ck_assert_int_eq(drops, 5);
    ASSERT_ALL_ON_OWNER();
    ck_assert_int_eq(join_out(rt, &jh_waiting, NULL), WEFT_ECANCELED);
    ck_assert_int_eq(join_out(rt, &jh_never, NULL), WEFT_ECANCELED);
    weft_runtime_free(rt);
    gate_destroy(&waiting);
    gate_destroy(&woken);
    ASSERT_LOCAL_CLEAN();
}
END_TEST

/* A future's drop during the free spawns into the set: cancelled at once. */
typedef struct {
    WEFT_FRAME;
    weft_local_set_t *set;
    gate_t *g;
    gate_wait_t w;
} respawner_t;
static _Atomic int respawn_rc = -1;
static void respawner_cleanup(respawner_t *self)
{
    probe_t p = probe(self->g, 1);
    weft_join_handle_t jh;
    respawn_rc = weft_local_set_spawn(self->set, &p, &jh);
    if (respawn_rc == 0) {
        weft_waker_t noop = weft_waker_noop();
        weft_context_t cx = { &noop };
        int rc = -1;
        WEFT_TEST_CHECK(weft_future_poll(weft_join(&jh, NULL), &cx, &rc) == WEFT_READY);
        WEFT_TEST_CHECK_INT_EQ(rc, WEFT_ECANCELED);
    }
}
WEFT_ASYNC_WITH_DROP(respawner_t, respawner, weft_unit_t, respawner_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->w, gate_wait(self->g, 1), NULL);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(spawn_during_free_is_cancelled)
{
    owner_is_me();
    weft_local_set_t *set = new_set();
    gate_t g;
    gate_init(&g);
    respawner_t r = { WEFT_FRAME_INIT(respawner), .set = set, .g = &g };
    ck_assert_int_eq(weft_local_set_spawn(set, &r, NULL), 0);
    weft_local_set_free(set); /* never run: dropped with its entry */
    ck_assert_int_eq(respawn_rc, 0);
    gate_destroy(&g);
    ASSERT_NO_TEST_FAIL();
    ASSERT_LOCAL_CLEAN();
}
END_TEST

/* ---- The runtime shut down or freed while a set lives ---------------------------------- */

/* A local task that spawns runtime tasks and sleeps, five times: counts
 * the spawns that came back cancelled (after the runtime's shutdown);
 * mixer_rounds counts the rounds done. */
typedef struct {
    WEFT_FRAME;
    int i, rc, cancelled;
    weft_join_handle_t jh;
    weft_sleep_t sl;
} mixer_t;
static _Atomic int mixer_rounds;
typedef struct {
    WEFT_FRAME;
} nothing_t;
WEFT_ASYNC(nothing_t, nothing, weft_unit_t)
{
    WEFT_BEGIN();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}
WEFT_ASYNC(mixer_t, mixer, int)
{
    note_poll();
    WEFT_BEGIN();
    for (self->i = 0; self->i < 5; self->i++) {
        {
            nothing_t n = { WEFT_FRAME_INIT(nothing) };
            if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn(&n, &self->jh), 0))
                WEFT_RETURN(-1);
        }
        WEFT_AWAIT_REF(weft_join(&self->jh, NULL), &self->rc);
        if (self->rc == WEFT_ECANCELED)
            self->cancelled++;
        else if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
            WEFT_RETURN(-1);
        mixer_rounds++;
        WEFT_AWAIT(&self->sl, weft_sleep_ms(50), NULL);
    }
    WEFT_RETURN(self->cancelled);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_join_handle_t jh;
    int out, rc;
} await_mixer_t;
WEFT_ASYNC(await_mixer_t, await_mixer, int)
{
    WEFT_BEGIN();
    {
        mixer_t m = { WEFT_FRAME_INIT(mixer) };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_local(&m, &self->jh), 0))
            WEFT_RETURN(-1);
    }
    WEFT_AWAIT_REF(weft_join(&self->jh, &self->out), &self->rc);
    WEFT_RETURN(self->rc == 0 ? self->out : -1);
    WEFT_END();
}

typedef struct {
    weft_runtime_t *rt;
    _Atomic int started;
    int block_on_rc, out;
} driver_arg_t;

/* A multi-thread runtime shut down while another thread's block_on drives a
 * set: the set goes on (spawns onto the runtime are cancelled, sleeps end at
 * once) and its run_until completes normally. */
static void *drive_mixer(void *arg)
{
    driver_arg_t *a = arg;
    owner_is_me();
    weft_local_set_t *set;
    if (!WEFT_TEST_CHECK_INT_EQ(weft_local_set_new(&set), 0))
        return NULL;
    await_mixer_t am = { WEFT_FRAME_INIT(await_mixer) };
    weft_local_run_t run = weft_local_set_run_until(set, WEFT_FUTURE(&am), &a->out);
    atomic_store(&a->started, 1);
    a->block_on_rc = weft_runtime_block_on(a->rt, WEFT_FUTURE(&run), NULL);
    weft_local_set_free(set);
    WEFT_TEST_CHECK_INT_EQ(polls_off_owner, 0);
    return NULL;
}

START_TEST(multi_thread_shutdown_while_driving)
{
    driver_arg_t a = { test_rt(WEFT_RUNTIME_MULTI_THREAD, 2), 0, -1, -1 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, drive_mixer, &a), 0);
    while (atomic_load(&mixer_rounds) < 1) /* one spawn went through first */
        sleep_ms(1);
    ck_assert_int_eq(weft_runtime_shutdown_timeout(a.rt, 10000), 0);
    pthread_join(th, NULL);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(a.block_on_rc, 0);
    ck_assert_int_ge(a.out, 1); /* the spawns after the shutdown were cancelled */
    ck_assert_int_lt(a.out, 5); /* the first one was not */
    weft_runtime_free(a.rt);
    ASSERT_LOCAL_CLEAN();
}
END_TEST

/* A current-thread runtime shut down from another thread: its block_on
 * returns WEFT_ESHUTDOWN, dropping the run future; the set's tasks stay in
 * the set until its owner frees it. */
static void *drive_forever(void *arg)
{
    driver_arg_t *a = arg;
    owner_is_me();
    weft_local_set_t *set;
    if (!WEFT_TEST_CHECK_INT_EQ(weft_local_set_new(&set), 0))
        return NULL;
    long_sleep_t ls = { WEFT_FRAME_INIT(long_sleep) };
    WEFT_TEST_CHECK_INT_EQ(weft_local_set_spawn(set, &ls, NULL), 0);
    gate_t never;
    gate_init(&never);
    gate_wait_t w = gate_wait(&never, 1);
    weft_local_run_t run = weft_local_set_run_until(set, WEFT_FUTURE(&w), NULL);
    atomic_store(&a->started, 1);
    a->block_on_rc = weft_runtime_block_on(a->rt, WEFT_FUTURE(&run), NULL);
    WEFT_TEST_CHECK_INT_EQ(drops, 0);
    weft_local_set_free(set);
    WEFT_TEST_CHECK_INT_EQ(drops, 1);
    WEFT_TEST_CHECK_INT_EQ(drops_off_owner, 0);
    WEFT_TEST_CHECK_INT_EQ(polls_off_owner, 0);
    gate_destroy(&never);
    return NULL;
}

START_TEST(current_thread_shutdown_while_driving)
{
    driver_arg_t a = { test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1), 0, -1, -1 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, drive_forever, &a), 0);
    while (!atomic_load(&a.started))
        sleep_ms(1);
    sleep_ms(20);
    ck_assert_int_eq(weft_runtime_shutdown_timeout(a.rt, 10000), 0);
    pthread_join(th, NULL);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(a.block_on_rc, WEFT_ESHUTDOWN);
    weft_runtime_free(a.rt);
    ASSERT_LOCAL_CLEAN();
}
END_TEST

/* The runtime is freed while local tasks wait on its timer and on a gate;
 * the set then runs in another runtime: the sleep the stop fired lets its
 * task finish, and the free drops the other. */
typedef struct {
    WEFT_FRAME;
    weft_sleep_t sl;
    int i;
} sleep_then_more_t;
WEFT_ASYNC(sleep_then_more_t, sleep_then_more, int)
{
    note_poll();
    WEFT_BEGIN();
    WEFT_AWAIT(&self->sl, weft_sleep_ms(10000), NULL); /* fired by the first runtime's stop */
    WEFT_AWAIT(&self->sl, weft_sleep_ms(1), NULL);     /* on the second runtime */
    WEFT_RETURN(7);
    WEFT_END();
}

START_TEST(runtime_freed_before_the_set)
{
    owner_is_me();
    weft_runtime_t *rt = shape_rt(_i);
    weft_local_set_t *set = new_set();
    gate_t never;
    gate_init(&never);
    sleep_then_more_t s = { WEFT_FRAME_INIT(sleep_then_more) };
    probe_t p = probe(&never, 1);
    weft_join_handle_t jh_sleep, jh_probe;
    ck_assert_int_eq(weft_local_set_spawn(set, &s, &jh_sleep), 0);
    ck_assert_int_eq(weft_local_set_spawn(set, &p, &jh_probe), 0);
    polls_t pf;
    weft_local_run_t run = run_a_little(set, &pf, 2);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&run), NULL), 0);
    uint64_t t0 = weft_now_ns();
    weft_runtime_free(rt); /* the set's tasks are not the runtime's */
    ck_assert_int_eq(drops, 0);
    ck_assert_int_eq(weft__live_count(WEFT_LIVE_RUNTIME), 0); /* the set kept no waker of it */

    weft_runtime_t *rt2 = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    int out = -1;
    weft_local_run_t run2 = weft_local_set_run_until(set, weft_join(&jh_sleep, &out), NULL);
    ck_assert_int_eq(weft_runtime_block_on(rt2, WEFT_FUTURE(&run2), NULL), 0);
    ck_assert_int_eq(out, 7);
    ck_assert_uint_lt(weft_now_ns() - t0, 5000000000u);
    weft_local_set_free(set);
    ck_assert_int_eq(drops, 1);
    ck_assert_int_eq(join_out(rt2, &jh_probe, NULL), WEFT_ECANCELED);
    ASSERT_ALL_ON_OWNER();
    weft_runtime_free(rt2);
    gate_destroy(&never);
    ASSERT_NO_TEST_FAIL();
    ASSERT_LOCAL_CLEAN();
}
END_TEST

/* ---- The cooperative budget: a task that is always ready starves nobody -------------- */

static _Atomic int sibling_ran, runtime_task_ran;

/* Spins until both flags are set, giving way only when its budget is
 * spent; output 0, or -1 when it gave up after 10 s (the others starved). */
typedef struct {
    weft_future_t future;
    uint64_t deadline;
} greedy_t;
static weft_poll_t greedy_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    greedy_t *g = (greedy_t *)(void *)f;
    if (g->deadline == 0)
        g->deadline = weft_now_ns() + 10000000000u;
    while (!(atomic_load(&sibling_ran) && atomic_load(&runtime_task_ran))) {
        if (weft_now_ns() > g->deadline) {
            *(int *)out = -1;
            return WEFT_READY;
        }
        if (!weft_coop_proceed(cx))
            return WEFT_PENDING; /* the budget is spent: it woke us */
    }
    *(int *)out = 0;
    return WEFT_READY;
}
static const weft_future_vtable_t greedy_vt = { greedy_poll, NULL, NULL, sizeof(greedy_t), sizeof(int), "greedy" };

typedef struct {
    weft_future_t future;
    _Atomic int *flag;
} set_flag_t;
static weft_poll_t set_flag_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx, (void)out;
    atomic_store(((set_flag_t *)(void *)f)->flag, 1);
    return WEFT_READY;
}
static const weft_future_vtable_t set_flag_vt = { set_flag_poll, NULL, NULL, sizeof(set_flag_t), 0, "set_flag" };

START_TEST(always_ready_task_starves_nobody)
{
    owner_is_me();
    sibling_ran = runtime_task_ran = 0;
    weft_runtime_t *rt = shape_rt(_i);
    weft_local_set_t *set = new_set();
    greedy_t g = { { &greedy_vt }, 0 };
    set_flag_t local_sib = { { &set_flag_vt }, &sibling_ran };
    set_flag_t rt_task = { { &set_flag_vt }, &runtime_task_ran };
    weft_join_handle_t jh;
    ck_assert_int_eq(weft_local_set_spawn(set, &g, &jh), 0);
    ck_assert_int_eq(weft_local_set_spawn(set, &local_sib, NULL), 0);
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &rt_task, NULL), 0);
    int gave_up = -1;
    weft_local_run_t run = weft_local_set_run_until(set, weft_join(&jh, &gave_up), NULL);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&run), NULL), 0);
    /* On a current-thread runtime the runtime's task runs only when the
     * set's run gives the thread back to block_on. */
    ck_assert_int_eq(gave_up, 0);
    FREE_ALL_AND_CHECK(set, rt);
}
END_TEST

/* ---- Task-local values around and inside a set -------------------------------------- */

WEFT_TASK_LOCAL_KEY(req);

typedef struct {
    WEFT_FRAME;
    int *want;
    int mine, seen;
    weft_yield_t y;
} tl_reader_t;
WEFT_ASYNC(tl_reader_t, tl_reader, int)
{
    WEFT_BEGIN();
    if (weft_task_local_get(&req) == self->want)
        self->seen++;
    WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    if (weft_task_local_get(&req) == self->want)
        self->seen++;
    WEFT_RETURN(self->seen);
    WEFT_END();
}

/* A local task: starts unbound, then binds its own value across a yield. */
typedef struct {
    WEFT_FRAME;
    int mine, out;
    tl_reader_t r;
    weft_task_local_scope_t s;
} tl_local_t;
WEFT_ASYNC(tl_local_t, tl_local, int)
{
    WEFT_BEGIN();
    if (!WEFT_TEST_CHECK(weft_task_local_get(&req) == NULL))
        WEFT_RETURN(-1);
    self->r = (tl_reader_t){ WEFT_FRAME_INIT(tl_reader), .want = &self->mine };
    WEFT_AWAIT(&self->s, weft_task_local_scope(&req, &self->mine, WEFT_FUTURE(&self->r), &self->out), NULL);
    WEFT_RETURN(self->out);
    WEFT_END();
}

/* The run_until's future, inside a scope around the whole run. */
typedef struct {
    WEFT_FRAME;
    int *outer;
    weft_join_handle_t jh;
    int out, rc, seen;
    tl_reader_t r;
} tl_inner_t;
WEFT_ASYNC(tl_inner_t, tl_inner, int)
{
    WEFT_BEGIN();
    {
        tl_local_t l = { WEFT_FRAME_INIT(tl_local) };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn_local(&l, &self->jh), 0))
            WEFT_RETURN(-1);
    }
    self->r = (tl_reader_t){ WEFT_FRAME_INIT(tl_reader), .want = self->outer };
    WEFT_AWAIT_REF(&self->r, &self->seen); /* the outer binding, across the local tasks' polls */
    WEFT_AWAIT_REF(weft_join(&self->jh, &self->out), &self->rc);
    WEFT_RETURN(self->rc == 0 && self->out == 2 && self->seen == 2 ? 0 : -1);
    WEFT_END();
}

START_TEST(task_locals)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_local_set_t *set = new_set();
    int outer = 5, rc = -1;
    tl_inner_t in = { WEFT_FRAME_INIT(tl_inner), .outer = &outer };
    weft_local_run_t run = weft_local_set_run_until(set, WEFT_FUTURE(&in), &rc);
    weft_task_local_scope_t s = weft_task_local_scope(&req, &outer, WEFT_FUTURE(&run), NULL);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&s), NULL), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(rc, 0);
    FREE_ALL_AND_CHECK(set, rt);
}
END_TEST

/* ---- Allocation failure ------------------------------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    int rc;
} enomem_inner_t;
WEFT_ASYNC(enomem_inner_t, enomem_inner, int)
{
    WEFT_BEGIN();
    {
        answer_t a = { WEFT_FRAME_INIT(answer) };
        weft__alloc_fail_after(1);
        self->rc = weft_spawn_local(&a, NULL);
        weft__alloc_fail_after(-1);
        if (self->rc != 0)
            weft_future_drop(WEFT_FUTURE(&a)); /* still ours */
    }
    WEFT_RETURN(self->rc);
    WEFT_END();
}

START_TEST(spawn_local_enomem)
{
    for (long k = 1; k <= 2; k++) {
        weft_local_set_t *set = (weft_local_set_t *)1;
        weft__alloc_fail_after(k);
        ck_assert_int_eq(weft_local_set_new(&set), WEFT_ENOMEM);
        weft__alloc_fail_after(-1);
        ck_assert_ptr_eq(set, (weft_local_set_t *)1);
    }
    weft_local_set_t *set = new_set();
    answer_t a = { WEFT_FRAME_INIT(answer) };
    weft_join_handle_t jh = { { NULL }, NULL, NULL };
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_local_set_spawn(set, &a, &jh), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    ck_assert_ptr_null(jh.task_); /* nothing spawned, the handle untouched */
    weft_future_drop(WEFT_FUTURE(&a));

    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    enomem_inner_t in = { WEFT_FRAME_INIT(enomem_inner) };
    int rc = 0;
    weft_local_run_t run = weft_local_set_run_until(set, WEFT_FUTURE(&in), &rc);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&run), NULL), 0);
    ck_assert_int_eq(rc, WEFT_ENOMEM);
    FREE_ALL_AND_CHECK(set, rt);
}
END_TEST

/* ---- Misuse aborts ----------------------------------------------------------------------- */

static void spawn_local_on_plain_thread(void)
{
    answer_t a = { WEFT_FRAME_INIT(answer) };
    if (weft_spawn_local(&a, NULL) != 0) /* aborts before */
        weft_future_drop(WEFT_FUTURE(&a));
}

/* A future whose one poll calls fn(cx). */
typedef struct {
    weft_future_t future;
    void (*fn)(weft_context_t *cx);
} call_t;
static weft_poll_t call_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)out;
    ((call_t *)(void *)f)->fn(cx);
    return WEFT_READY;
}
static const weft_future_vtable_t call_vt = { call_poll, NULL, NULL, sizeof(call_t), 0, "call" };

static void spawn_local_here(weft_context_t *cx)
{
    (void)cx;
    spawn_local_on_plain_thread();
}
static void spawn_local_in_block_on(void)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    call_t f = { { &call_vt }, spawn_local_here };
    if (weft_runtime_block_on(rt, WEFT_FUTURE(&f), NULL) != 0) /* aborts before */
        weft_runtime_free(rt);
}

static weft_local_set_t *misuse_set;
static void *poll_run_elsewhere(void *arg)
{
    (void)arg;
    weft_waker_t noop = weft_waker_noop();
    weft_context_t cx = { &noop };
    weft_local_run_t run = weft_local_set_run(misuse_set);
    (void)weft_future_poll(WEFT_FUTURE(&run), &cx, NULL);
    return NULL;
}
static void run_on_another_thread(void)
{
    misuse_set = new_set();
    pthread_t th;
    pthread_create(&th, NULL, poll_run_elsewhere, NULL);
    pthread_join(th, NULL);
}

static void *spawn_elsewhere(void *arg)
{
    (void)arg;
    answer_t a = { WEFT_FRAME_INIT(answer) };
    if (weft_local_set_spawn(misuse_set, &a, NULL) != 0) /* aborts before */
        weft_future_drop(WEFT_FUTURE(&a));
    return NULL;
}
static void spawn_from_another_thread(void)
{
    misuse_set = new_set();
    pthread_t th;
    pthread_create(&th, NULL, spawn_elsewhere, NULL);
    pthread_join(th, NULL);
}

static void free_the_set(weft_context_t *cx)
{
    (void)cx;
    weft_local_set_free(misuse_set);
}
static void free_from_inside(void)
{
    misuse_set = new_set();
    call_t f = { { &call_vt }, free_the_set };
    ck_assert_int_eq(weft_local_set_spawn(misuse_set, &f, NULL), 0);
    weft_waker_t noop = weft_waker_noop();
    weft_context_t cx = { &noop };
    weft_local_run_t run = weft_local_set_run(misuse_set);
    (void)weft_future_poll(WEFT_FUTURE(&run), &cx, NULL);
}

/* A task of a multi-thread runtime that makes a set and drives it. */
static void make_and_run_a_set(weft_context_t *cx)
{
    weft_local_set_t *set;
    if (weft_local_set_new(&set) == 0) {
        weft_local_run_t run = weft_local_set_run(set);
        (void)weft_future_poll(WEFT_FUTURE(&run), cx, NULL);
    }
}
static void run_in_multi_thread_task(void)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 1);
    call_t f = { { &call_vt }, make_and_run_a_set };
    (void)spawn_and_wait(rt, WEFT_FUTURE(&f), NULL);
}

START_TEST(misuse_aborts)
{
    if (!can_fork())
        return;
    expect_panic(spawn_local_on_plain_thread, "weft_spawn_local called outside a LocalSet");
    expect_panic(spawn_local_in_block_on, "weft_spawn_local called outside a LocalSet");
    expect_panic(run_on_another_thread, "run future polled on a thread that does not own the local set");
    expect_panic(spawn_from_another_thread, "weft_spawn_local on a thread that does not own the local set");
    expect_panic(free_from_inside, "weft_local_set_free called from inside the set's own run");
    expect_panic(run_in_multi_thread_task, "polled by a task of a multi-thread runtime");
}
END_TEST

/* ---- Chaos: foreign wakes and aborts racing the free ------------------------------------ */

typedef struct {
    gate_t *gates;
    weft_join_handle_t *jh;
    int n;
    bool abort;
    _Atomic int *started;
} racer_arg_t;

static void *racer(void *arg)
{
    racer_arg_t *a = arg;
    atomic_fetch_add(a->started, 1);
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < a->n; i++) {
            if (a->abort && r == 1)
                weft_join_handle_abort(&a->jh[i]);
            else
                gate_open(&a->gates[i]);
        }
    return NULL;
}

/* The set is driven by hand (a noop waker, no runtime) while two threads
 * wake and abort its tasks; the owner frees it in the middle. */
static void free_racing_wakes(int iters)
{
    enum { N = 4 };
    uint64_t seed0 = chaos_seed0();
    weft_waker_t noop = weft_waker_noop();
    weft_context_t cx = { &noop };
    for (int it = 0; it < iters; it++) {
        weft__chaos_set(seed0 + (uint64_t)it, 100);
        owner_is_me();
        weft_local_set_t *set = new_set();
        gate_t gates[N];
        weft_join_handle_t jh[N];
        for (int i = 0; i < N; i++) {
            gate_init(&gates[i]);
            probe_t p = probe(&gates[i], 3);
            ck_assert_int_eq(weft_local_set_spawn(set, &p, &jh[i]), 0);
        }
        weft_local_run_t run = weft_local_set_run(set);
        ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&run), &cx, NULL), WEFT_PENDING);
        _Atomic int started = 0;
        racer_arg_t wakes = { gates, jh, N, false, &started }, aborts = { gates, jh, N, true, &started };
        pthread_t t1, t2;
        ck_assert_int_eq(pthread_create(&t1, NULL, racer, &wakes), 0);
        ck_assert_int_eq(pthread_create(&t2, NULL, racer, &aborts), 0);
        while (atomic_load(&started) < 2) /* so the wakes overlap the polls and the free */
            sched_yield();
        for (int k = 0; k < (it % 4); k++)
            if (weft_future_poll(WEFT_FUTURE(&run), &cx, NULL) == WEFT_READY)
                break;
        weft_local_set_free(set);
        weft_future_drop(WEFT_FUTURE(&run)); /* held a reference: the set's memory stayed */
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        weft__chaos_set(0, 0);
        for (int i = 0; i < N; i++) {
            int rounds = -1, rc = -1;
            ck_assert_int_eq(weft_future_poll(weft_join(&jh[i], &rounds), &cx, &rc), WEFT_READY);
            ck_assert(rc == 0 ? rounds == 3 : rc == WEFT_ECANCELED);
            gate_destroy(&gates[i]);
        }
        ck_assert_int_eq(drops, N);
        ASSERT_ALL_ON_OWNER();
        ASSERT_LOCAL_CLEAN();
    }
}

START_TEST(chaos_free_racing_foreign_wakes)
{
    free_racing_wakes(chaos_iters(1000) / 20 + 1);
}
END_TEST

START_TEST(stress_free_racing_foreign_wakes)
{
    free_racing_wakes(chaos_iters(1000));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("localset");
    TCase *tc = tcase_create("localset");
    tcase_set_timeout(tc, 120);
#ifdef WEFT_LOCALSET_STRESS
    (void)foreign_wakes_polled_on_owner, (void)owner_is_the_block_on_caller, (void)local_tasks_spawn_local_tasks;
    (void)join_handles, (void)timers_oneshot_and_sockets, (void)free_drops_every_pending_task;
    (void)spawn_during_free_is_cancelled, (void)multi_thread_shutdown_while_driving;
    (void)current_thread_shutdown_while_driving, (void)runtime_freed_before_the_set;
    (void)always_ready_task_starves_nobody, (void)task_locals, (void)spawn_local_enomem, (void)misuse_aborts;
    (void)chaos_free_racing_foreign_wakes;
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, stress_free_racing_foreign_wakes);
#else
    (void)stress_free_racing_foreign_wakes;
    tcase_add_loop_test(tc, foreign_wakes_polled_on_owner, 0, N_SHAPES);
    tcase_add_test(tc, owner_is_the_block_on_caller);
    tcase_add_loop_test(tc, local_tasks_spawn_local_tasks, 0, N_SHAPES);
    tcase_add_loop_test(tc, join_handles, 0, N_SHAPES);
    tcase_add_loop_test(tc, timers_oneshot_and_sockets, 0, N_SHAPES);
    tcase_add_loop_test(tc, free_drops_every_pending_task, 0, N_SHAPES);
    tcase_add_test(tc, spawn_during_free_is_cancelled);
    tcase_add_test(tc, multi_thread_shutdown_while_driving);
    tcase_add_test(tc, current_thread_shutdown_while_driving);
    tcase_add_loop_test(tc, runtime_freed_before_the_set, 0, N_SHAPES);
    tcase_add_loop_test(tc, always_ready_task_starves_nobody, 0, N_SHAPES);
    tcase_add_loop_test(tc, task_locals, 0, N_SHAPES);
    tcase_add_test(tc, spawn_local_enomem);
    tcase_add_test(tc, misuse_aborts);
    tcase_add_test(tc, chaos_free_racing_foreign_wakes);
#endif
    suite_add_tcase(s, tc);
    return run_suite(s);
}
