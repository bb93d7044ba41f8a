/* tests/test_burst.c - a burst of connections against an accept loop that
 * spawns large tasks, and the two things that keep its polls short: the
 * cooperative budget's time slice (context.c) and spawning a future in
 * place (weft_spawn_in_place_at).
 *
 * The burst: 1000 connects from plain threads on 127.0.0.1, an acceptor
 * that spawns two tasks per connection with 16 KiB and 8 KiB frames built
 * in place (a chat server's reader and writer), and the blocking detector
 * on. Without the slice, up to 128 accepts ran in one poll, each with two
 * spawns whose fresh pages cost tens of microseconds: a poll of 10 ms.
 *
 * What is asserted holds on a loaded machine, under TSan and valgrind: the
 * detector judges a poll by the time its thread spent on a CPU or asleep,
 * never by the waits for a CPU (watchdog.c), and the slice cuts a poll at
 * about 1 ms of wall time, which can only come sooner than 1 ms of CPU;
 * so the acceptor stays far below the threshold (THRESHOLD_MS) however
 * slow the machine. Valgrind runs one thread at a time and a wait for its
 * lock reads as blocked there, and it charges its translation of new code
 * to the thread: the detector's verdict and the CPU time go unchecked
 * under it (test_watchdog.c does the same). What holds everywhere: each
 * accept spends a fixed wall time (SPAWN_COST_NS), so the count of accepts
 * in one poll is bounded by the slice; and the slice's unit test spins for
 * a wall-clock time per unit, so the count of units it gets holds on a
 * slow machine too. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "testlib.h"
#include "context.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef UNDER_VALGRIND
#define UNDER_VALGRIND() false
#endif

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- The time slice ------------------------------------------------------ */

/* One poll: ~50 us of work per unit, until the budget says no. */
#define SPIN_UNIT_NS 50000u
typedef struct {
    weft_future_t future;
    int units;
} spin_t;
static weft_poll_t spin_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    spin_t *s = (spin_t *)(void *)f;
    for (;;) {
        uint64_t until = mono_ns() + SPIN_UNIT_NS;
        while (mono_ns() < until)
            ;
        if (!weft_coop_proceed(cx))
            break; /* it woke us; done all the same */
        s->units++;
    }
    *(int *)out = s->units;
    return WEFT_READY;
}
static const weft_future_vtable_t spin_vt = { spin_poll, NULL, NULL, sizeof(spin_t), sizeof(int), "spin" };

START_TEST(slice_ends_a_poll_of_dear_units)
{
    weft_runtime_t *rt = shape_rt(_i);
    spin_t sp = { { &spin_vt }, 0 };
    int units = -1;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&sp), &units), 0);
    weft_runtime_free(rt);
    /* The slice starts at the first clock read, after WEFT__COOP_CLOCK_FIRST
     * units; the second read, 8 units on, finds them dear and from then on
     * every unit reads the clock: 8 + 1 ms / 50 us = 28 units, fewer when
     * the thread loses its CPU (wall time runs on). Never the 128 that the
     * count alone allows. */
    ck_assert_int_ge(units, WEFT__COOP_CLOCK_FIRST);
    ck_assert_int_le(units, WEFT__COOP_CLOCK_FIRST + (int)(WEFT_COOP_SLICE_NS / SPIN_UNIT_NS) + 2);
    ASSERT_NO_LIVE();
}
END_TEST

/* Cheap units: the count ends the poll, as before the slice. */
static weft_poll_t cheap_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    spin_t *s = (spin_t *)(void *)f;
    while (weft_coop_proceed(cx))
        s->units++;
    *(int *)out = s->units;
    return WEFT_READY;
}
static const weft_future_vtable_t cheap_vt = { cheap_poll, NULL, NULL, sizeof(spin_t), sizeof(int), "cheap" };

START_TEST(count_ends_a_poll_of_cheap_units)
{
    /* A slice no machine reaches in 128 empty units: on a loaded one the
     * thread may lose its CPU for longer than 1 ms mid-poll. */
    weft__coop_set_slice_ns(UINT64_C(60) * 1000000000u);
    weft_runtime_t *rt = shape_rt(_i);
    spin_t sp = { { &cheap_vt }, 0 };
    int units = -1;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&sp), &units), 0);
    weft_runtime_free(rt);
    weft__coop_set_slice_ns(WEFT_COOP_SLICE_NS);
    ck_assert_int_eq(units, WEFT_COOP_BUDGET);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Spawning in place --------------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    int n;
    weft_future_t *built_at; /* where init built it */
    char pad[20000];         /* large, as the frames this is for */
    weft_yield_t y;
} big_t;
static _Atomic int big_drops;
static void big_cleanup(big_t *b)
{
    (void)b;
    atomic_fetch_add(&big_drops, 1);
}
WEFT_ASYNC_WITH_DROP(big_t, big_fn, int, big_cleanup)
{
    WEFT_BEGIN();
    /* Built in the task's memory: the frame polled is the one init wrote. */
    WEFT_TEST_CHECK(self->built_at == &self->weft_frame.future);
    self->pad[sizeof self->pad - 1] = 1;
    WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    WEFT_RETURN(self->n * 2);
    WEFT_END();
}

static _Atomic int inits;
static void big_init(weft_future_t *dst, void *arg)
{
    big_t *b = (big_t *)(void *)dst;
    WEFT_FRAME_INIT_AT(b, big_fn);
    b->n = *(int *)arg;
    b->built_at = dst;
    atomic_fetch_add(&inits, 1);
}

START_TEST(spawn_in_place_runs_the_frame_built_there)
{
    atomic_store(&inits, 0);
    atomic_store(&big_drops, 0);
    weft_runtime_t *rt = shape_rt(_i);
    int n = 21, out = 0;
    weft_join_handle_t jh;
    weft_spawn_opts_t o = { "big" };
    ck_assert_int_eq(weft_spawn_in_place_at(weft_runtime_handle(rt), &big_fn__vtable, big_init, &n, &jh, &o,
                                            WEFT_SITE),
                     0);
    ck_assert_int_eq(atomic_load(&inits), 1); /* at once, on this thread */
    ck_assert_int_eq(join_out(rt, &jh, &out), 0);
    ck_assert_int_eq(out, 42);
    /* Detached, and from inside a task (the macro form). */
    ck_assert_int_eq(weft_spawn_in_place_at(weft_runtime_handle(rt), &big_fn__vtable, big_init, &n, NULL, NULL,
                                            WEFT_SITE),
                     0);
    weft_runtime_free(rt);
    ck_assert_int_eq(atomic_load(&inits), 2);
    ck_assert_int_eq(atomic_load(&big_drops), 2);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(spawn_in_place_errors)
{
    atomic_store(&inits, 0);
    atomic_store(&big_drops, 0);
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    weft_handle_t *h = weft_runtime_handle(rt);
    int n = 1, out = 0;
    weft_join_handle_t jh = { 0 };
    /* No memory: nothing spawned, init not called, the handle untouched. */
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_spawn_in_place_at(h, &big_fn__vtable, big_init, &n, &jh, NULL, WEFT_SITE), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    ck_assert_int_eq(atomic_load(&inits), 0);
    ck_assert_ptr_null(jh.task_);
    /* After shutdown: init runs, the future is dropped at once and the
     * handle reports WEFT_ECANCELED. */
    ck_assert_int_eq(weft_runtime_shutdown_timeout(rt, 10000), 0);
    ck_assert_int_eq(weft_spawn_in_place_at(h, &big_fn__vtable, big_init, &n, &jh, NULL, WEFT_SITE), 0);
    ck_assert_int_eq(atomic_load(&inits), 1);
    ck_assert_int_eq(atomic_load(&big_drops), 1);
    ck_assert(weft_join_handle_is_finished(&jh));
    weft_join_handle_drop(&jh);
    (void)out;
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

static void wrong_init(weft_future_t *dst, void *arg)
{
    (void)arg;
    ((spin_t *)(void *)dst)->future.vtable = &spin_vt; /* not the vtable given */
}
static void spawn_wrong_vtable(void)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    int rc = weft_spawn_in_place_at(weft_runtime_handle(rt), &cheap_vt, wrong_init, NULL, NULL, NULL, WEFT_SITE);
    (void)rc; /* not reached */
}
static void spawn_null_init(void)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    int rc = weft_spawn_in_place_at(weft_runtime_handle(rt), &cheap_vt, NULL, NULL, NULL, NULL, WEFT_SITE);
    (void)rc; /* not reached */
}
START_TEST(spawn_in_place_misuse_aborts)
{
    expect_panic(spawn_wrong_vtable, "init left a future of another vtable");
    expect_panic(spawn_null_init, "init is NULL");
}
END_TEST

/* ---- The burst ------------------------------------------------------------ */

#define CONNS 1000
#define CLIENT_THREADS 4
/* The detector's threshold: a poll cut by the slice runs about 1 ms plus
 * an accept or two (under 100 us each, a few hundred under TSan or
 * valgrind), far below 5 ms; a poll of 128 accepts at the cost above
 * takes 5 ms or more on any machine, 10 ms in the issue. */
#define THRESHOLD_MS 5
/* The same bound on the acceptor's longest poll as its thread's CPU time
 * (measured in the body; wall time includes the waits for a CPU of a
 * loaded machine, which neither the budget nor the detector counts). */
#define MAX_POLL_CPU_MS 4

static _Atomic int served, writers_done, max_accepts_per_poll;
/* The acceptor's longest poll: wall time (printed only) and the time its
 * thread spent on a CPU (asserted). */
static _Atomic uint64_t longest_poll_ns, longest_poll_cpu_ns;

/* A connection's reader: 16 KiB of frame, echoes one byte. */
typedef struct {
    WEFT_FRAME;
    weft_tcp_stream_t s;
    ssize_t n;
    weft_tcp_io_t op;
    char buf[16384];
} reader_t;
static void reader_cleanup(reader_t *r) { weft_tcp_close(&r->s); }
WEFT_ASYNC_WITH_DROP(reader_t, reader_fn, weft_unit_t, reader_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_tcp_read(&self->s, self->buf, sizeof self->buf), &self->n);
    if (self->n == 1) {
        WEFT_AWAIT(&self->op, weft_tcp_write_all(&self->s, self->buf, 1), &self->n);
        if (self->n == 1)
            atomic_fetch_add(&served, 1);
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}
/* What a spawn into fresh memory cost where the issue was seen (30-47 us:
 * first-touch page faults, the copy, waking a sibling), spent here in the
 * reader's init on purpose: on a machine where the spawn itself is cheap,
 * 128 accepts would fit in the slice and the test would show nothing. */
#define SPAWN_COST_NS 40000u

static void reader_init(weft_future_t *dst, void *arg)
{
    uint64_t until = mono_ns() + SPAWN_COST_NS;
    while (mono_ns() < until)
        ;
    reader_t *r = (reader_t *)(void *)dst;
    WEFT_FRAME_INIT_AT(r, reader_fn);
    r->s = *(weft_tcp_stream_t *)arg; /* moved: the acceptor's copy is overwritten by its next accept */
}

/* A connection's writer: 8 KiB of frame (a chat server's outgoing queue),
 * alive until the test lets the writers go (after the burst), as a chat
 * session's would be: so every spawn of the burst takes fresh memory. */
static weft_semaphore_t writers_go;
typedef struct {
    WEFT_FRAME;
    int rc;
    weft_semaphore_acquire_t acq;
    char queue[8192];
} writer_t;
WEFT_ASYNC(writer_t, writer_fn, weft_unit_t)
{
    WEFT_BEGIN();
    self->queue[0] = self->queue[sizeof self->queue - 1] = 1; /* its pages, touched */
    WEFT_AWAIT(&self->acq, weft_semaphore_acquire(&writers_go), &self->rc);
    WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
    atomic_fetch_add(&writers_done, 1);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}
static void writer_init(weft_future_t *dst, void *arg)
{
    (void)arg;
    WEFT_FRAME_INIT_AT((writer_t *)(void *)dst, writer_fn);
}

typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t *l;
    weft_tcp_stream_t s;
    int rc, accepted, this_poll;
    uint64_t poll_start, poll_cpu_start;
    weft_tcp_accept_t acc;
} acceptor_t;
WEFT_ASYNC(acceptor_t, acceptor_fn, int)
{
    self->this_poll = 0; /* every poll enters here */
    self->poll_start = mono_ns();
    self->poll_cpu_start = thread_cpu_ns();
    WEFT_BEGIN();
    while (self->accepted < CONNS) {
        WEFT_AWAIT(&self->acc, weft_tcp_accept(self->l, &self->s, NULL), &self->rc);
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
            WEFT_RETURN(self->rc);
        self->accepted++;
        if (++self->this_poll > atomic_load(&max_accepts_per_poll))
            atomic_store(&max_accepts_per_poll, self->this_poll);
        {
            int rc = weft_spawn_frame(reader_fn, reader_init, &self->s, NULL);
            if (!WEFT_TEST_CHECK_INT_EQ(rc, 0)) {
                weft_tcp_close(&self->s);
                WEFT_RETURN(rc);
            }
            rc = weft_spawn_frame(writer_fn, writer_init, NULL, NULL);
            if (!WEFT_TEST_CHECK_INT_EQ(rc, 0))
                WEFT_RETURN(rc);
            uint64_t took = mono_ns() - self->poll_start, cpu = thread_cpu_ns() - self->poll_cpu_start;
            if (took > atomic_load(&longest_poll_ns))
                atomic_store(&longest_poll_ns, took);
            if (cpu > atomic_load(&longest_poll_cpu_ns))
                atomic_store(&longest_poll_cpu_ns, cpu);
        }
    }
    WEFT_RETURN(0);
    WEFT_END();
}

typedef struct {
    weft_future_t future;
    weft_tcp_listener_t *l;
} listen_t;
static weft_poll_t listen_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx;
    *(int *)out = weft_tcp_listen_ip("127.0.0.1", 0, 2 * CONNS, ((listen_t *)(void *)f)->l);
    return WEFT_READY;
}
static const weft_future_vtable_t listen_vt = { listen_poll, NULL, NULL, sizeof(listen_t), sizeof(int), "listen" };

typedef struct {
    uint16_t port;
    int echoed;
    pthread_barrier_t *connected;
} client_arg_t;

/* Connects its share all at once (the burst), waits until every client
 * thread has (so every reader is alive at the end of the burst, holding
 * its frame), then sends a byte on each, reads each echo (bounded by a
 * receive timeout), and closes them all. */
static void *client_thread(void *p)
{
    client_arg_t *a = p;
    enum { N = CONNS / CLIENT_THREADS };
    int fds[N];
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(a->port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = { 30, 0 };
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0)
            continue;
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fds[i], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
    pthread_barrier_wait(a->connected);
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0 && write(fds[i], "x", 1) != 1) {
            close(fds[i]);
            fds[i] = -1;
        }
    for (int i = 0; i < N; i++) {
        char c = 0;
        if (fds[i] >= 0 && read(fds[i], &c, 1) == 1 && c == 'x')
            a->echoed++;
        if (fds[i] >= 0)
            close(fds[i]);
    }
    return NULL;
}

typedef struct {
    pthread_mutex_t mu;
    int n, acceptor_n;
    weft_blocking_report_t worst;
    char name[32];
} reports_t;
static void on_report(const weft_blocking_report_t *r, void *arg)
{
    reports_t *rs = arg;
    pthread_mutex_lock(&rs->mu);
    rs->n++;
    /* Without membarrier (valgrind) the report has no name: count it as
     * the acceptor's, the only task here whose polls are long. */
    if (r->task_name == NULL || strcmp(r->task_name, "acceptor") == 0) {
        rs->acceptor_n++;
        rs->worst = *r;
        snprintf(rs->name, sizeof rs->name, "%s", r->task_name ? r->task_name : "?");
    }
    pthread_mutex_unlock(&rs->mu);
}

START_TEST(burst_of_connects_keeps_acceptor_polls_short)
{
    atomic_store(&served, 0);
    atomic_store(&writers_done, 0);
    atomic_store(&max_accepts_per_poll, 0);
    atomic_store(&longest_poll_ns, 0);
    atomic_store(&longest_poll_cpu_ns, 0);
    if (getenv("WEFT_TEST_NO_SLICE") != NULL) /* to see the test fail without the slice */
        weft__coop_set_slice_ns(UINT64_C(60) * 1000000000u);
    /* Every connection takes two fds at its peak (client and server). */
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t need = 2 * CONNS + 256;
    if (rl.rlim_cur < need && rl.rlim_max >= need) {
        rl.rlim_cur = need;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    if (rl.rlim_cur < need) {
        fprintf(stderr, "# skipped: RLIMIT_NOFILE allows %lu fds, the burst needs %lu\n", (unsigned long)rl.rlim_max,
                (unsigned long)need);
        return;
    }
    /* Grow the fd table now. A multi-threaded process whose table grows
     * (at 256, 512, 1024, ... fds) waits in the kernel for an RCU grace
     * period, milliseconds asleep inside whichever call made the fd: in
     * the acceptor's accept, a blocked poll that no budget can cut short.
     * The table never shrinks, so one dup2 to a high fd takes that wait
     * out of the burst. */
    ck_assert_int_eq(dup2(2, (int)need - 1), (int)need - 1);
    close((int)need - 1);

    ck_assert_int_eq(weft_semaphore_init(&writers_go, 0), 0);
    reports_t rs = { PTHREAD_MUTEX_INITIALIZER, 0, 0, { 0 }, "" };
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 2;
    b.detect_blocking = true;
    b.blocking_threshold_ms = THRESHOLD_MS;
    b.on_blocking = on_report;
    b.on_blocking_arg = &rs;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);

    weft_tcp_listener_t l;
    listen_t lf = { { &listen_vt }, &l };
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&lf), &rc), 0);
    ck_assert_int_eq(rc, 0);
    acceptor_t acc = { WEFT_FRAME_INIT(acceptor_fn), .l = &l };
    weft_join_handle_t jh;
    weft_spawn_opts_t o = { "acceptor" };
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&acc), &jh, &o, WEFT_SITE), 0);

    pthread_t th[CLIENT_THREADS];
    client_arg_t args[CLIENT_THREADS];
    pthread_barrier_t connected;
    ck_assert_int_eq(pthread_barrier_init(&connected, NULL, CLIENT_THREADS), 0);
    for (int i = 0; i < CLIENT_THREADS; i++) {
        args[i] = (client_arg_t){ weft_tcp_listener_port(&l), 0, &connected };
        ck_assert_int_eq(pthread_create(&th[i], NULL, client_thread, &args[i]), 0);
    }
    int echoed = 0;
    for (int i = 0; i < CLIENT_THREADS; i++) {
        pthread_join(th[i], NULL);
        echoed += args[i].echoed;
    }
    pthread_barrier_destroy(&connected);
    int arc = -1;
    ck_assert_int_eq(join_out(rt, &jh, &arc), 0);
    ck_assert_int_eq(arc, 0);
    /* Every reader echoed before its client read the byte; the writers
     * finish once let go (bounded wait). */
    ck_assert_int_eq(weft_semaphore_add_permits(&writers_go, CONNS), 0);
    for (int i = 0; i < 3000 && atomic_load(&writers_done) < CONNS; i++)
        sleep_ms(10);
    weft_tcp_listener_close(&l);
    weft_runtime_free(rt);
    weft_semaphore_destroy(&writers_go);

    ck_assert_int_eq(echoed, CONNS);
    ck_assert_int_eq(atomic_load(&served), CONNS);
    ck_assert_int_eq(atomic_load(&writers_done), CONNS);
    fprintf(stderr,
            "# burst: at most %d accepts in one poll; the longest poll %.2f ms wall, %.2f ms on a CPU; %d report(s), "
            "%d of the acceptor\n",
            atomic_load(&max_accepts_per_poll), (double)atomic_load(&longest_poll_ns) / 1e6,
            (double)atomic_load(&longest_poll_cpu_ns) / 1e6, rs.n, rs.acceptor_n);
    /* Each accept spends at least SPAWN_COST_NS of wall time, and the slice
     * is wall time: past the first clock read (the unit after the first
     * spawn, WEFT__COOP_CLOCK_FIRST at the latest) a poll holds at most a
     * slice's worth of accepts, plus the one that crosses it. This holds
     * on any machine, valgrind included; without the slice it is 128. */
    int most_accepts = atomic_load(&max_accepts_per_poll);
    ck_assert_int_le(most_accepts, WEFT__COOP_CLOCK_FIRST + (int)(WEFT_COOP_SLICE_NS / SPAWN_COST_NS) + 2);
    if (UNDER_VALGRIND()) {
        /* A wait for its lock reads as blocked, and its own translation
         * of code run the first time is charged to the thread's CPU. */
        fprintf(stderr, "# valgrind: the detector's verdict and the CPU time go unchecked\n");
    } else {
        if (rs.acceptor_n != 0)
            fprintf(stderr, "# acceptor (%s) reported at %" PRIu64 " ms: ran %" PRIu64 ", waited %" PRIu64
                            ", blocked %" PRIu64 "\n",
                    rs.name, rs.worst.running_ms, rs.worst.ran_ms, rs.worst.waited_ms, rs.worst.blocked_ms);
        ck_assert_int_eq(rs.acceptor_n, 0);
        uint64_t longest_cpu_ns = atomic_load(&longest_poll_cpu_ns);
        ck_assert_uint_le(longest_cpu_ns, MAX_POLL_CPU_MS * UINT64_C(1000000));
    }
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("burst");
    TCase *tc = tcase_create("slice");
    tcase_add_loop_test(tc, slice_ends_a_poll_of_dear_units, 0, N_SHAPES);
    tcase_add_loop_test(tc, count_ends_a_poll_of_cheap_units, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    tc = tcase_create("in_place");
    tcase_add_loop_test(tc, spawn_in_place_runs_the_frame_built_there, 0, N_SHAPES);
    tcase_add_test(tc, spawn_in_place_errors);
    if (can_fork())
        tcase_add_test(tc, spawn_in_place_misuse_aborts);
    suite_add_tcase(s, tc);
    tc = tcase_create("burst");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, burst_of_connects_keeps_acceptor_polls_short);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
