/* weft-bench: the workloads of BENCH.md, one line per figure on stdout:
 * `name value unit`. The scheduler workloads have the sizes of Tokio's
 * benches/rt_multi_threaded.rs so bench/peers/tokio can run beside it.
 *
 *   weft-bench [--workers N] [--only NAME] [--iters N]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>

#ifdef WEFT_USE_JEMALLOC
#include <jemalloc/jemalloc.h>
#else
#include <malloc.h>
#endif

#define NUM_SPAWN 10000
#define NUM_YIELD_TASKS 200
#define NUM_YIELDS 1000
#define NUM_PINGS 1000
#define CHAIN_DEPTH 1000
#define NUM_IDLE 100000

static weft_handle_t *g_handle;

/* ---- A latch: the bench thread waits for the last task ---------------- */
static pthread_mutex_t latch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t latch_cv = PTHREAD_COND_INITIALIZER;
static bool latch_set;

static void latch_reset(void)
{
    pthread_mutex_lock(&latch_mu);
    latch_set = false;
    pthread_mutex_unlock(&latch_mu);
}
static void latch_signal(void)
{
    pthread_mutex_lock(&latch_mu);
    latch_set = true;
    pthread_cond_signal(&latch_cv);
    pthread_mutex_unlock(&latch_mu);
}
static void latch_wait(void)
{
    pthread_mutex_lock(&latch_mu);
    while (!latch_set)
        pthread_cond_wait(&latch_cv, &latch_mu);
    pthread_mutex_unlock(&latch_mu);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "weft-bench: %s: %s\n", what, weft_strerror(rc));
        exit(1);
    }
}

static _Atomic long remaining;

/* ---- The leaf task: decrement, the last one signals ------------------------ */
typedef struct {
    weft_future_t future;
} dec_t;
static weft_poll_t dec_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx, (void)out;
    if (atomic_fetch_sub_explicit(&remaining, 1, memory_order_acq_rel) == 1)
        latch_signal();
    return WEFT_READY;
}
static const weft_future_vtable_t dec_vtable = { dec_poll, NULL, NULL, sizeof(dec_t), 0, "dec" };

/* ---- spawn_many_local ---------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    int i;
} spawner_t;
WEFT_ASYNC(spawner_t, spawner, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < NUM_SPAWN; self->i++) {
        dec_t d = { { &dec_vtable } };
        check(weft_spawn(&d, NULL), "spawn");
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double run_spawn_many_local(void)
{
    atomic_store(&remaining, NUM_SPAWN);
    latch_reset();
    double t0 = now_ns();
    spawner_t sp = { WEFT_FRAME_INIT(spawner) };
    check(weft_handle_spawn(g_handle, &sp, NULL), "spawn");
    latch_wait();
    return (now_ns() - t0) / NUM_SPAWN;
}

static double run_spawn_many_remote(void)
{
    atomic_store(&remaining, NUM_SPAWN);
    latch_reset();
    double t0 = now_ns();
    for (int i = 0; i < NUM_SPAWN; i++) {
        dec_t d = { { &dec_vtable } };
        check(weft_handle_spawn(g_handle, &d, NULL), "spawn");
    }
    latch_wait();
    return (now_ns() - t0) / NUM_SPAWN;
}

/* ---- yield_many ------------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    int i;
} yielder_t;
WEFT_ASYNC(yielder_t, yielder, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < NUM_YIELDS; self->i++)
        WEFT_YIELD();
    if (atomic_fetch_sub_explicit(&remaining, 1, memory_order_acq_rel) == 1)
        latch_signal();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double run_yield_many(void)
{
    atomic_store(&remaining, NUM_YIELD_TASKS);
    latch_reset();
    double t0 = now_ns();
    for (int i = 0; i < NUM_YIELD_TASKS; i++) {
        yielder_t y = { WEFT_FRAME_INIT(yielder) };
        check(weft_handle_spawn(g_handle, &y, NULL), "spawn");
    }
    latch_wait();
    return (now_ns() - t0) / (NUM_YIELD_TASKS * NUM_YIELDS);
}

/* ---- ping_pong --------------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    weft_oneshot_rx_t rx1;
    weft_oneshot_tx_t tx2;
    int rc;
    char msg;
} ponger_t;
WEFT_ASYNC(ponger_t, ponger, weft_unit_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT_REF(weft_oneshot_recv(&self->rx1, &self->msg), &self->rc);
    check(self->rc, "ping recv");
    check(weft_oneshot_send(&self->tx2, &self->msg), "pong send");
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_oneshot_tx_t tx1;
    weft_oneshot_rx_t rx2;
    int rc;
    char msg;
} pinger_t;
WEFT_ASYNC(pinger_t, pinger, weft_unit_t)
{
    WEFT_BEGIN();
    {
        ponger_t p = { WEFT_FRAME_INIT(ponger) };
        check(weft_oneshot_new(1, NULL, &self->tx1, &p.rx1), "oneshot");
        check(weft_oneshot_new(1, NULL, &p.tx2, &self->rx2), "oneshot");
        check(weft_spawn(&p, NULL), "spawn");
        self->msg = 'p';
        check(weft_oneshot_send(&self->tx1, &self->msg), "ping send");
    }
    WEFT_AWAIT_REF(weft_oneshot_recv(&self->rx2, &self->msg), &self->rc);
    check(self->rc, "pong recv");
    if (atomic_fetch_sub_explicit(&remaining, 1, memory_order_acq_rel) == 1)
        latch_signal();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    int i;
} pingers_t;
WEFT_ASYNC(pingers_t, pingers, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < NUM_PINGS; self->i++) {
        pinger_t p = { WEFT_FRAME_INIT(pinger) };
        check(weft_spawn(&p, NULL), "spawn");
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double run_ping_pong(void)
{
    atomic_store(&remaining, NUM_PINGS);
    latch_reset();
    double t0 = now_ns();
    pingers_t p = { WEFT_FRAME_INIT(pingers) };
    check(weft_handle_spawn(g_handle, &p, NULL), "spawn");
    latch_wait();
    return (now_ns() - t0) / NUM_PINGS;
}

/* ---- chained_spawn ----------------------------------------------------------- */
typedef struct {
    weft_future_t future;
    int n;
} chain_t;
static const weft_future_vtable_t chain_vtable;
static weft_poll_t chain_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx, (void)out;
    chain_t *c = (chain_t *)(void *)f;
    if (c->n == 0) {
        latch_signal();
    } else {
        chain_t next = { { &chain_vtable }, c->n - 1 };
        check(weft_spawn(&next, NULL), "spawn");
    }
    return WEFT_READY;
}
static const weft_future_vtable_t chain_vtable = { chain_poll, NULL, NULL, sizeof(chain_t), 0, "chain" };

static double run_chained_spawn(void)
{
    latch_reset();
    double t0 = now_ns();
    chain_t c = { { &chain_vtable }, CHAIN_DEPTH };
    check(weft_handle_spawn(g_handle, &c, NULL), "spawn");
    latch_wait();
    return (now_ns() - t0) / CHAIN_DEPTH;
}

/* ---- spawn_blocking ----------------------------------------------------------- */
/* One task starts NUM_BLOCKING trivial blocking jobs, then awaits every
 * handle in order (the shape of Tokio's spawn_blocking benchmark). */
#define NUM_BLOCKING 10000
static void *blocking_job(void *arg)
{
    return (void *)((uintptr_t)arg * 3 + 1);
}
typedef struct {
    WEFT_FRAME;
    weft_join_handle_t *h;
    void *out;
    int i, rc;
    uintptr_t sum;
} blocking_main_t;
static uintptr_t blocking_sum;
WEFT_ASYNC(blocking_main_t, blocking_main, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < NUM_BLOCKING; self->i++)
        check(weft_spawn_blocking(blocking_job, (void *)(uintptr_t)self->i, &self->h[self->i]), "spawn_blocking");
    for (self->i = 0; self->i < NUM_BLOCKING; self->i++) {
        WEFT_AWAIT_REF(weft_join(&self->h[self->i], &self->out), &self->rc);
        check(self->rc, "blocking job");
        self->sum += (uintptr_t)self->out;
    }
    blocking_sum = self->sum;
    latch_signal();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double run_spawn_blocking(void)
{
    static weft_join_handle_t handles[NUM_BLOCKING];
    latch_reset();
    double t0 = now_ns();
    blocking_main_t m = { WEFT_FRAME_INIT(blocking_main), .h = handles };
    check(weft_handle_spawn(g_handle, &m, NULL), "spawn");
    latch_wait();
    double ns = (now_ns() - t0) / NUM_BLOCKING;
    if (blocking_sum != (uintptr_t)3 * NUM_BLOCKING * (NUM_BLOCKING - 1) / 2 + NUM_BLOCKING)
        check(-1, "spawn_blocking sum");
    return ns;
}

/* The same number of detached jobs started by 8 plain threads at once
 * through the runtime handle: how the blocking queue takes many spawners
 * (Tokio measured its single-mutex queue slowing 13x from 1 to 8). */
#define BLOCKING_SPAWNERS 8
static void *blocking_count_down(void *arg)
{
    (void)arg;
    if (atomic_fetch_sub_explicit(&remaining, 1, memory_order_acq_rel) == 1)
        latch_signal();
    return NULL;
}
static void *blocking_spawner(void *arg)
{
    (void)arg;
    for (int i = 0; i < NUM_BLOCKING / BLOCKING_SPAWNERS; i++)
        check(weft_spawn_blocking_at(g_handle, blocking_count_down, NULL, NULL, NULL, WEFT_SITE), "spawn_blocking");
    return NULL;
}
static double run_spawn_blocking_8_spawners(void)
{
    atomic_store(&remaining, NUM_BLOCKING);
    latch_reset();
    double t0 = now_ns();
    pthread_t th[BLOCKING_SPAWNERS];
    for (int i = 0; i < BLOCKING_SPAWNERS; i++)
        if (pthread_create(&th[i], NULL, blocking_spawner, NULL) != 0)
            check(WEFT_EAGAIN, "pthread_create");
    for (int i = 0; i < BLOCKING_SPAWNERS; i++)
        pthread_join(th[i], NULL);
    latch_wait();
    return (now_ns() - t0) / NUM_BLOCKING;
}

/* ---- idle_task_bytes --------------------------------------------------------- */
/* Parks forever after counting its first poll (like awaiting pending()). */
typedef struct {
    weft_future_t future;
} idle_t;
static _Atomic long idle_polled;
static weft_poll_t idle_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx, (void)out;
    atomic_fetch_add_explicit(&idle_polled, 1, memory_order_relaxed);
    return WEFT_PENDING;
}
static const weft_future_vtable_t idle_vtable = { idle_poll, NULL, NULL, sizeof(idle_t), 0, "idle" };

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f == NULL || fscanf(f, "%ld %ld", &size, &resident) != 2) {
        fprintf(stderr, "weft-bench: cannot read /proc/self/statm\n");
        exit(1);
    }
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* Returns freed memory to the system so an earlier run's pages are not
 * reused and counted as free growth. */
static void release_free_memory(void)
{
#ifdef WEFT_USE_JEMALLOC
    char cmd[64];
    snprintf(cmd, sizeof cmd, "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
    mallctl(cmd, NULL, NULL, NULL, 0);
#else
    malloc_trim(0);
#endif
}

static double run_idle_task_bytes(unsigned workers)
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = workers;
    weft_runtime_t *rt;
    check(weft_runtime_new(&b, &rt), "runtime");
    weft_handle_t *h = weft_runtime_handle(rt);
    atomic_store(&idle_polled, 0);
    release_free_memory();
    long before = rss_bytes();
    for (int i = 0; i < NUM_IDLE; i++) {
        idle_t t = { { &idle_vtable } };
        check(weft_handle_spawn(h, &t, NULL), "spawn");
    }
    while (atomic_load(&idle_polled) < NUM_IDLE) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    long after = rss_bytes();
    weft_runtime_free(rt);
    return (double)(after - before) / NUM_IDLE;
}

/* ---- timers, timers_1m ---------------------------------------------------------
 * n tasks spawned from outside the runtime, task i sleeping 1 + x_i % range
 * ms (xorshift64 from the same seed) from its first poll; lateness is
 * measured inside each task, from its first poll, so the time the spawning
 * took is not in it. timers: 100,000 sleeps of 1-50 ms; timers_1m:
 * 1,000,000 concurrent sleeps of 1-1000 ms. The Tokio peer does the same. */
#define NUM_TIMERS 100000
#define NUM_TIMERS_1M 1000000
static double *lateness; /* ms, one per task */

typedef struct {
    WEFT_FRAME;
    int idx;
    uint32_t ms;
    uint64_t start;
    weft_sleep_t sleep;
} sleeper_t;
WEFT_ASYNC(sleeper_t, sleeper, weft_unit_t)
{
    WEFT_BEGIN();
    self->start = weft_now_ns();
    WEFT_AWAIT(&self->sleep, weft_sleep_ms(self->ms), NULL);
    lateness[self->idx] = (double)(weft_now_ns() - self->start) / 1e6 - (double)self->ms;
    if (atomic_fetch_sub_explicit(&remaining, 1, memory_order_acq_rel) == 1)
        latch_signal();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double timers_p50, timers_p99;
static int cmp_double(const void *a, const void *b);
static double median(double *v, int n);

static double run_timers_n(int n, unsigned range_ms)
{
    if (lateness == NULL)
        lateness = calloc(NUM_TIMERS_1M, sizeof *lateness);
    atomic_store(&remaining, n);
    latch_reset();
    uint64_t x = 88172645463325252ull;
    double t0 = now_ns();
    for (int i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sleeper_t sl = { WEFT_FRAME_INIT(sleeper), .idx = i, .ms = (uint32_t)(1 + x % range_ms) };
        check(weft_handle_spawn(g_handle, &sl, NULL), "spawn");
    }
    latch_wait();
    double wall = (now_ns() - t0) / 1e6;
    qsort(lateness, (size_t)n, sizeof *lateness, cmp_double);
    /* nearest rank, as the Tokio peer computes them */
    timers_p50 = lateness[(size_t)(0.50 * n + 0.5) - 1];
    timers_p99 = lateness[(size_t)(0.99 * n + 0.5) - 1];
    return wall;
}

static double run_timers(void) { return run_timers_n(NUM_TIMERS, 50); }
static double run_timers_1m(void) { return run_timers_n(NUM_TIMERS_1M, 1000); }

/* Runs one of the timers shapes (warm-up, then iters) and prints its three
 * figures, prefix_wall, prefix_late_p50, prefix_late_p99. */
static void report_timers(const char *prefix, double (*run)(void), double *v, int iters)
{
    double *p50 = calloc((size_t)iters, sizeof *p50), *p99 = calloc((size_t)iters, sizeof *p99);
    run(); /* warm-up */
    for (int k = 0; k < iters; k++) {
        v[k] = run();
        p50[k] = timers_p50;
        p99[k] = timers_p99;
    }
    printf("%s_wall %.3f ms\n", prefix, median(v, iters));
    printf("%s_late_p50 %.3f ms\n", prefix, median(p50, iters));
    printf("%s_late_p99 %.3f ms\n", prefix, median(p99, iters));
    fflush(stdout);
    free(p50);
    free(p99);
}

/* ---- tcp_echo ------------------------------------------------------------------ */
#define ECHO_CONNS 50
#define ECHO_ROUNDS 2000
#define ECHO_MSG 64

typedef struct {
    WEFT_FRAME;
    weft_tcp_stream_t s;
    char buf[ECHO_MSG];
    ssize_t n;
    weft_tcp_io_t op;
} echo_conn_t;
static void echo_conn_cleanup(echo_conn_t *c) { weft_tcp_close(&c->s); }
WEFT_ASYNC_WITH_DROP(echo_conn_t, echo_conn, weft_unit_t, echo_conn_cleanup)
{
    WEFT_BEGIN();
    weft_tcp_set_nodelay(&self->s, true);
    for (;;) {
        WEFT_AWAIT(&self->op, weft_tcp_read_exact(&self->s, self->buf, ECHO_MSG), &self->n);
        if (self->n != ECHO_MSG)
            break; /* the client closed */
        WEFT_AWAIT(&self->op, weft_tcp_write_all(&self->s, self->buf, ECHO_MSG), &self->n);
        if (self->n != ECHO_MSG)
            break;
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t *l;
    int i, rc;
    weft_tcp_stream_t s;
    weft_tcp_accept_t acc;
} acceptor_t;
WEFT_ASYNC(acceptor_t, acceptor, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < ECHO_CONNS; self->i++) {
        WEFT_AWAIT(&self->acc, weft_tcp_accept(self->l, &self->s, NULL), &self->rc);
        check(self->rc, "accept");
        echo_conn_t c = { WEFT_FRAME_INIT(echo_conn), .s = self->s };
        check(weft_spawn(&c, NULL), "spawn");
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    uint16_t port;
    int i, rc;
    ssize_t n;
    weft_tcp_stream_t s;
    char out[ECHO_MSG], in[ECHO_MSG];
    weft_tcp_connect_t conn;
    weft_tcp_io_t op;
} echo_client_t;
static void echo_client_cleanup(echo_client_t *c) { weft_tcp_close(&c->s); }
WEFT_ASYNC_WITH_DROP(echo_client_t, echo_client, weft_unit_t, echo_client_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->conn, weft_tcp_connect_ip("127.0.0.1", self->port, &self->s), &self->rc);
    check(self->rc, "connect");
    weft_tcp_set_nodelay(&self->s, true);
    memset(self->out, 'x', ECHO_MSG);
    for (self->i = 0; self->i < ECHO_ROUNDS; self->i++) {
        WEFT_AWAIT(&self->op, weft_tcp_write_all(&self->s, self->out, ECHO_MSG), &self->n);
        if (self->n != ECHO_MSG)
            check((int)self->n, "write");
        WEFT_AWAIT(&self->op, weft_tcp_read_exact(&self->s, self->in, ECHO_MSG), &self->n);
        if (self->n != ECHO_MSG)
            check(self->n < 0 ? (int)self->n : WEFT_EPIPE, "read");
    }
    weft_tcp_close(&self->s);
    if (atomic_fetch_sub_explicit(&remaining, 1, memory_order_acq_rel) == 1)
        latch_signal();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

/* listen needs a runtime context: do it from inside the runtime. */
typedef struct {
    weft_future_t future;
    weft_tcp_listener_t *l;
} listen_fut_t;
static weft_poll_t listen_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx;
    *(int *)out = weft_tcp_listen_ip("127.0.0.1", 0, 1024, ((listen_fut_t *)(void *)f)->l);
    return WEFT_READY;
}
static const weft_future_vtable_t listen_vt = { listen_poll, NULL, NULL, sizeof(listen_fut_t), sizeof(int), "listen" };

static weft_runtime_t *g_rt;

static double run_tcp_echo(void)
{
    weft_tcp_listener_t l;
    listen_fut_t lf = { { &listen_vt }, &l };
    int rc = -1;
    check(weft_runtime_block_on(g_rt, WEFT_FUTURE(&lf), &rc), "block_on");
    check(rc, "listen");
    atomic_store(&remaining, ECHO_CONNS);
    latch_reset();
    double t0 = now_ns();
    acceptor_t a = { WEFT_FRAME_INIT(acceptor), .l = &l };
    weft_join_handle_t ha;
    check(weft_handle_spawn(g_handle, &a, &ha), "spawn");
    uint16_t port = weft_tcp_listener_port(&l);
    for (int i = 0; i < ECHO_CONNS; i++) {
        echo_client_t c = { WEFT_FRAME_INIT(echo_client), .port = port };
        check(weft_handle_spawn(g_handle, &c, NULL), "spawn");
    }
    latch_wait();
    double secs = (now_ns() - t0) / 1e9;
    check(weft_runtime_block_on(g_rt, weft_join(&ha, NULL), &rc), "join");
    weft_tcp_listener_close(&l);
    return (double)ECHO_CONNS * ECHO_ROUNDS / secs;
}

/* ---- proxy_throughput --------------------------------------------------------
 * PROXY_CONNS clients each push PROXY_BYTES through a copy_bidirectional
 * proxy to an echo upstream (weft_io_copy of the socket onto itself) and
 * read them back, writer and reader in two tasks; the client half-closes
 * when done, which the proxy carries to the echo and back. Figure: MB
 * (10^6 bytes) sent per second, one way. All in one runtime on 127.0.0.1. */
#define PROXY_CONNS 4
#define PROXY_BYTES (32u << 20)
#define PROXY_CHUNK 65536

static unsigned char proxy_chunk[PROXY_CHUNK];

typedef struct {
    WEFT_FRAME;
    weft_tcp_stream_t s;
    weft_io_copied_t c;
    weft_io_copy_t copy;
    weft_io_op_t op;
    int rc;
} px_echo_t;
static void px_echo_cleanup(px_echo_t *e) { weft_tcp_close(&e->s); }
WEFT_ASYNC_WITH_DROP(px_echo_t, px_echo, weft_unit_t, px_echo_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->copy, weft_io_copy(weft_tcp_stream_as(&self->s), weft_tcp_stream_as(&self->s), NULL), &self->c);
    check(self->c.rc, "echo copy");
    WEFT_AWAIT(&self->op, weft_io_shutdown(weft_tcp_stream_as(&self->s)), &self->rc);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_tcp_stream_t s, up;
    uint16_t up_port;
    int rc;
    weft_io_copied2_t c;
    weft_tcp_connect_t conn;
    weft_io_copy_t copy;
} px_session_t;
static void px_session_cleanup(px_session_t *p)
{
    weft_tcp_close(&p->s);
    weft_tcp_close(&p->up);
}
WEFT_ASYNC_WITH_DROP(px_session_t, px_session, weft_unit_t, px_session_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->conn, weft_tcp_connect_ip("127.0.0.1", self->up_port, &self->up), &self->rc);
    check(self->rc, "proxy connect");
    weft_tcp_set_nodelay(&self->s, true);
    weft_tcp_set_nodelay(&self->up, true);
    WEFT_AWAIT(&self->copy,
               weft_io_copy_bidirectional(weft_tcp_stream_as(&self->s), weft_tcp_stream_as(&self->up), NULL),
               &self->c);
    check(self->c.rc, "proxy copy");
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

/* Accepts PROXY_CONNS connections on l; each gets an echo (up_port 0) or a
 * proxy session to up_port. */
typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t *l;
    uint16_t up_port;
    int i, rc;
    weft_tcp_stream_t s;
    weft_tcp_accept_t acc;
} px_acceptor_t;
WEFT_ASYNC(px_acceptor_t, px_acceptor, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < PROXY_CONNS; self->i++) {
        WEFT_AWAIT(&self->acc, weft_tcp_accept(self->l, &self->s, NULL), &self->rc);
        check(self->rc, "accept");
        if (self->up_port == 0) {
            px_echo_t e = { WEFT_FRAME_INIT(px_echo), .s = self->s };
            check(weft_spawn(&e, NULL), "spawn");
        } else {
            px_session_t p = { WEFT_FRAME_INIT(px_session), .s = self->s, .up_port = self->up_port };
            check(weft_spawn(&p, NULL), "spawn");
        }
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_tcp_stream_t *s;
    size_t sent;
    ssize_t n;
    int rc;
    weft_io_op_t op;
} px_writer_t;
WEFT_ASYNC(px_writer_t, px_writer, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->sent = 0; self->sent < PROXY_BYTES; self->sent += PROXY_CHUNK) {
        WEFT_AWAIT(&self->op, weft_io_write_all(weft_tcp_stream_as(self->s), proxy_chunk, PROXY_CHUNK, NULL), &self->n);
        if (self->n != PROXY_CHUNK)
            check((int)self->n, "client write");
    }
    WEFT_AWAIT(&self->op, weft_io_shutdown(weft_tcp_stream_as(self->s)), &self->rc);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    uint16_t port;
    int rc;
    size_t got;
    ssize_t n;
    weft_tcp_stream_t s;
    unsigned char buf[PROXY_CHUNK];
    weft_tcp_connect_t conn;
    weft_io_op_t op;
    px_writer_t w;
} px_client_t;
static void px_client_cleanup(px_client_t *c) { weft_tcp_close(&c->s); }
WEFT_ASYNC_WITH_DROP(px_client_t, px_client, weft_unit_t, px_client_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->conn, weft_tcp_connect_ip("127.0.0.1", self->port, &self->s), &self->rc);
    check(self->rc, "connect");
    self->w = (px_writer_t){ WEFT_FRAME_INIT(px_writer), .s = &self->s };
    check(weft_spawn(&self->w, NULL), "spawn"); /* a copy runs; this frame outlives it (it reads the echo) */
    for (;;) {
        WEFT_AWAIT(&self->op, weft_io_read(weft_tcp_stream_as(&self->s), self->buf, sizeof self->buf), &self->n);
        if (self->n <= 0)
            break;
        self->got += (size_t)self->n;
    }
    if (self->n < 0 || self->got != PROXY_BYTES)
        check(self->n < 0 ? (int)self->n : WEFT_EPIPE, "client read");
    if (atomic_fetch_sub_explicit(&remaining, 1, memory_order_acq_rel) == 1)
        latch_signal();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double run_proxy_throughput(void)
{
    weft_tcp_listener_t up, px;
    listen_fut_t lf = { { &listen_vt }, &up };
    int rc = -1;
    check(weft_runtime_block_on(g_rt, WEFT_FUTURE(&lf), &rc), "block_on");
    check(rc, "listen");
    lf.l = &px;
    check(weft_runtime_block_on(g_rt, WEFT_FUTURE(&lf), &rc), "block_on");
    check(rc, "listen");
    atomic_store(&remaining, PROXY_CONNS);
    latch_reset();
    double t0 = now_ns();
    px_acceptor_t ae = { WEFT_FRAME_INIT(px_acceptor), .l = &up };
    px_acceptor_t ap = { WEFT_FRAME_INIT(px_acceptor), .l = &px, .up_port = weft_tcp_listener_port(&up) };
    weft_join_handle_t he, hp;
    check(weft_handle_spawn(g_handle, &ae, &he), "spawn");
    check(weft_handle_spawn(g_handle, &ap, &hp), "spawn");
    for (int i = 0; i < PROXY_CONNS; i++) {
        px_client_t c = { WEFT_FRAME_INIT(px_client), .port = weft_tcp_listener_port(&px) };
        check(weft_handle_spawn(g_handle, &c, NULL), "spawn");
    }
    latch_wait();
    double secs = (now_ns() - t0) / 1e9;
    check(weft_runtime_block_on(g_rt, weft_join(&he, NULL), &rc), "join");
    check(weft_runtime_block_on(g_rt, weft_join(&hp, NULL), &rc), "join");
    weft_tcp_listener_close(&up);
    weft_tcp_listener_close(&px);
    return (double)PROXY_CONNS * PROXY_BYTES / 1e6 / secs;
}

/* ---- lines_throughput -----------------------------------------------------------
 * A writer task sends LINES_N lines of 16 bytes ("0123456789abcde\n") over
 * one TCP connection on 127.0.0.1 through a 64 KiB buffered writer; a
 * reader task reads them back one at a time with read_line through an
 * 8 KiB buffered reader (Tokio's default) and counts them. Both tasks run
 * in the bench runtime; the figure is lines per second. The Tokio peer
 * does the same with BufWriter + BufReader::read_until. */
#define LINES_N 1000000
#define LINES_TEXT "0123456789abcde\n"

typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t *l;
    weft_tcp_stream_t s;
    weft_bufwriter_t w;
    int rc, i;
    ssize_t n;
    weft_tcp_accept_t acc;
    weft_bufwriter_op_t op;
} lines_tx_t;
static void lines_tx_cleanup(lines_tx_t *t)
{
    (void)!weft_bufwriter_free(&t->w);
    weft_tcp_close(&t->s);
}
WEFT_ASYNC_WITH_DROP(lines_tx_t, lines_tx, weft_unit_t, lines_tx_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->acc, weft_tcp_accept(self->l, &self->s, NULL), &self->rc);
    check(self->rc, "accept");
    check(weft_bufwriter_init(&self->w, weft_tcp_stream_as(&self->s), 65536), "bufwriter");
    for (self->i = 0; self->i < LINES_N; self->i++) {
        WEFT_AWAIT(&self->op, weft_bufwriter_write_all(&self->w, LINES_TEXT, sizeof LINES_TEXT - 1), &self->n);
        check(self->n < 0 ? (int)self->n : 0, "write");
    }
    WEFT_AWAIT(&self->op, weft_bufwriter_shutdown(&self->w), &self->rc);
    check(self->rc, "shutdown");
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    uint16_t port;
    weft_tcp_stream_t s;
    weft_bufreader_t r;
    weft_bytes_t line;
    long count;
    int rc;
    ssize_t n;
    weft_tcp_connect_t conn;
    weft_read_until_t rd;
} lines_rx_t;
static void lines_rx_cleanup(lines_rx_t *t)
{
    weft_bytes_free(&t->line);
    weft_bufreader_free(&t->r);
    weft_tcp_close(&t->s);
}
WEFT_ASYNC_WITH_DROP(lines_rx_t, lines_rx, weft_unit_t, lines_rx_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->conn, weft_tcp_connect_ip("127.0.0.1", self->port, &self->s), &self->rc);
    check(self->rc, "connect");
    check(weft_bufreader_init(&self->r, weft_tcp_stream_as(&self->s), 8192), "bufreader");
    for (;;) {
        weft_bytes_clear(&self->line);
        WEFT_AWAIT(&self->rd, weft_bufreader_read_line(&self->r, &self->line, 0), &self->n);
        check(self->n < 0 ? (int)self->n : 0, "read_line");
        if (self->n == 0)
            break;
        self->count++;
    }
    if (self->count != LINES_N)
        check(WEFT_EIO, "line count");
    latch_signal();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double run_lines_throughput(void)
{
    weft_tcp_listener_t l;
    listen_fut_t lf = { { &listen_vt }, &l };
    int rc = -1;
    check(weft_runtime_block_on(g_rt, WEFT_FUTURE(&lf), &rc), "block_on");
    check(rc, "listen");
    latch_reset();
    double t0 = now_ns();
    lines_tx_t tx = { WEFT_FRAME_INIT(lines_tx), .l = &l };
    weft_join_handle_t ht;
    check(weft_handle_spawn(g_handle, &tx, &ht), "spawn");
    lines_rx_t rx = { WEFT_FRAME_INIT(lines_rx), .port = weft_tcp_listener_port(&l) };
    check(weft_handle_spawn(g_handle, &rx, NULL), "spawn");
    latch_wait();
    double secs = (now_ns() - t0) / 1e9;
    check(weft_runtime_block_on(g_rt, weft_join(&ht, NULL), &rc), "join");
    weft_tcp_listener_close(&l);
    return LINES_N / secs;
}

/* ---- Locks: mutex_contended, semaphore_contended, rwlock_read_heavy ----------
 * LOCK_TASKS tasks each do LOCK_OPS operations on one lock (shapes in
 * docs/locks.md, the same in bench/peers/tokio). */
#define LOCK_TASKS 64
#define LOCK_OPS 10000
#define SEM_PERMITS 8
#define RW_WRITE_EVERY 16

static weft_mutex_t bench_mutex;
static uint64_t bench_counter; /* guarded by bench_mutex / the rwlock */
static weft_semaphore_t bench_sem;
static _Atomic uint64_t bench_sem_count;
static weft_rwlock_t bench_rw;
static _Atomic uint64_t bench_reads;

static void lock_task_done(void)
{
    if (atomic_fetch_sub_explicit(&remaining, 1, memory_order_acq_rel) == 1)
        latch_signal();
}

typedef struct {
    WEFT_FRAME;
    int i;
    weft_mutex_lock_t l;
} mutex_task_t;
WEFT_ASYNC(mutex_task_t, mutex_task, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < LOCK_OPS; self->i++) {
        WEFT_AWAIT(&self->l, weft_mutex_lock(&bench_mutex), NULL);
        bench_counter++;
        weft_mutex_unlock(&bench_mutex);
    }
    lock_task_done();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    int i, rc;
    weft_semaphore_acquire_t a;
} sem_task_t;
WEFT_ASYNC(sem_task_t, sem_task, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < LOCK_OPS; self->i++) {
        WEFT_AWAIT(&self->a, weft_semaphore_acquire(&bench_sem), &self->rc);
        check(self->rc, "acquire");
        atomic_fetch_add_explicit(&bench_sem_count, 1, memory_order_relaxed);
        (void)weft_semaphore_release(&bench_sem, 1);
    }
    lock_task_done();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    int i;
    weft_rwlock_read_t r;
    weft_rwlock_write_t w;
} rw_task_t;
WEFT_ASYNC(rw_task_t, rw_task, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < LOCK_OPS; self->i++) {
        if (self->i % RW_WRITE_EVERY == 0) {
            WEFT_AWAIT(&self->w, weft_rwlock_write(&bench_rw), NULL);
            bench_counter++;
            weft_rwlock_write_unlock(&bench_rw);
        } else {
            WEFT_AWAIT(&self->r, weft_rwlock_read(&bench_rw), NULL);
            atomic_fetch_add_explicit(&bench_reads, bench_counter & 1, memory_order_relaxed);
            weft_rwlock_read_unlock(&bench_rw);
        }
    }
    lock_task_done();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double run_mutex_contended(void)
{
    weft_mutex_init(&bench_mutex);
    bench_counter = 0;
    atomic_store(&remaining, LOCK_TASKS);
    latch_reset();
    double t0 = now_ns();
    for (int i = 0; i < LOCK_TASKS; i++) {
        mutex_task_t t = { WEFT_FRAME_INIT(mutex_task) };
        check(weft_handle_spawn(g_handle, &t, NULL), "spawn");
    }
    latch_wait();
    double ns = (now_ns() - t0) / ((double)LOCK_TASKS * LOCK_OPS);
    weft_mutex_blocking_lock(&bench_mutex); /* orders the tasks' increments before the read */
    if (bench_counter != (uint64_t)LOCK_TASKS * LOCK_OPS) {
        fprintf(stderr, "weft-bench: mutex_contended counted %llu\n", (unsigned long long)bench_counter);
        exit(1);
    }
    weft_mutex_unlock(&bench_mutex);
    weft_mutex_destroy(&bench_mutex);
    return ns;
}

static double run_semaphore_contended(void)
{
    check(weft_semaphore_init(&bench_sem, SEM_PERMITS), "semaphore");
    atomic_store(&bench_sem_count, 0);
    atomic_store(&remaining, LOCK_TASKS);
    latch_reset();
    double t0 = now_ns();
    for (int i = 0; i < LOCK_TASKS; i++) {
        sem_task_t t = { WEFT_FRAME_INIT(sem_task) };
        check(weft_handle_spawn(g_handle, &t, NULL), "spawn");
    }
    latch_wait();
    double ns = (now_ns() - t0) / ((double)LOCK_TASKS * LOCK_OPS);
    if (atomic_load(&bench_sem_count) != (uint64_t)LOCK_TASKS * LOCK_OPS ||
        weft_semaphore_available_permits(&bench_sem) != SEM_PERMITS) {
        fprintf(stderr, "weft-bench: semaphore_contended lost permits\n");
        exit(1);
    }
    weft_semaphore_destroy(&bench_sem);
    return ns;
}

static double run_rwlock_read_heavy(void)
{
    check(weft_rwlock_init(&bench_rw, WEFT_RWLOCK_MAX_READERS), "rwlock");
    bench_counter = 0;
    atomic_store(&remaining, LOCK_TASKS);
    latch_reset();
    double t0 = now_ns();
    for (int i = 0; i < LOCK_TASKS; i++) {
        rw_task_t t = { WEFT_FRAME_INIT(rw_task) };
        check(weft_handle_spawn(g_handle, &t, NULL), "spawn");
    }
    latch_wait();
    double ns = (now_ns() - t0) / ((double)LOCK_TASKS * LOCK_OPS);
    check(weft_rwlock_try_write(&bench_rw), "rwlock idle"); /* orders the writes before the read */
    uint64_t want = (uint64_t)LOCK_TASKS * ((LOCK_OPS + RW_WRITE_EVERY - 1) / RW_WRITE_EVERY);
    if (bench_counter != want) {
        fprintf(stderr, "weft-bench: rwlock_read_heavy counted %llu writes\n", (unsigned long long)bench_counter);
        exit(1);
    }
    weft_rwlock_write_unlock(&bench_rw);
    weft_rwlock_destroy(&bench_rw);
    return ns;
}

/* ---- Driver ------------------------------------------------------------------ */
/* ---- mpsc_throughput ---------------------------------------------------------
 * MPSC_PRODUCERS tasks each send MPSC_PER u64 into one bounded channel of
 * capacity MPSC_CAP; one consumer task receives them all (the same in
 * bench/peers/tokio). */
#define MPSC_PRODUCERS 8
#define MPSC_PER 100000
#define MPSC_CAP 1024

static weft_mpsc_tx_t bench_tx;
static weft_mpsc_rx_t bench_rx;
static _Atomic uint64_t bench_received;

typedef struct {
    WEFT_FRAME;
    weft_mpsc_tx_t tx;
    uint64_t i, v;
    int rc;
    weft_mpsc_send_t s;
} mpsc_producer_t;
WEFT_ASYNC(mpsc_producer_t, mpsc_producer, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < MPSC_PER; self->i++) {
        self->v = self->i;
        WEFT_AWAIT(&self->s, weft_mpsc_send(&self->tx, &self->v), &self->rc);
        check(self->rc, "mpsc send");
    }
    weft_mpsc_tx_drop(&self->tx);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    uint64_t v, n;
    int rc;
    weft_mpsc_recv_t r;
} mpsc_consumer_t;
WEFT_ASYNC(mpsc_consumer_t, mpsc_consumer, weft_unit_t)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->r, weft_mpsc_recv(&bench_rx, &self->v), &self->rc);
        if (self->rc != 0)
            break;
        self->n++;
    }
    atomic_store(&bench_received, self->n);
    lock_task_done();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double run_mpsc_throughput(void)
{
    check(weft_mpsc_bounded(MPSC_CAP, sizeof(uint64_t), NULL, &bench_tx, &bench_rx), "mpsc");
    atomic_store(&remaining, 1);
    latch_reset();
    double t0 = now_ns();
    for (int i = 0; i < MPSC_PRODUCERS; i++) {
        mpsc_producer_t t = { WEFT_FRAME_INIT(mpsc_producer) };
        weft_mpsc_tx_clone(&bench_tx, &t.tx);
        check(weft_handle_spawn(g_handle, &t, NULL), "spawn");
    }
    weft_mpsc_tx_drop(&bench_tx);
    mpsc_consumer_t c = { WEFT_FRAME_INIT(mpsc_consumer) };
    check(weft_handle_spawn(g_handle, &c, NULL), "spawn");
    latch_wait();
    double ns = (now_ns() - t0) / ((double)MPSC_PRODUCERS * MPSC_PER);
    if (atomic_load(&bench_received) != (uint64_t)MPSC_PRODUCERS * MPSC_PER) {
        fprintf(stderr, "weft-bench: mpsc_throughput received %llu\n", (unsigned long long)atomic_load(&bench_received));
        exit(1);
    }
    weft_mpsc_rx_drop(&bench_rx);
    return ns;
}

/* ---- broadcast_fanout -----------------------------------------------------------
 * One sender task sends BC_SENDS u64 into a broadcast channel of capacity
 * BC_CAP; BC_RECEIVERS receiver tasks read until it closes. Every
 * BC_YIELD_EVERY sends the sender yields, and keeps yielding while it is
 * BC_WINDOW or more messages ahead of the slowest receiver (each receiver
 * publishes its progress), so it never laps a receiver: every message is
 * delivered to every receiver and none is skipped as lagged (a lag would
 * make the work smaller; it is counted and reported). Figure: wall time
 * per message delivered (received by one receiver); the same workload is
 * in bench/peers/tokio. */
#define BC_RECEIVERS 16
#define BC_SENDS 50000
#define BC_CAP 1024
#define BC_YIELD_EVERY 64
#define BC_WINDOW 512

static weft_broadcast_tx_t bc_tx;
static _Atomic uint64_t bc_received, bc_missed;
/* Messages each receiver has accounted for, one cache line each. */
static struct {
    _Alignas(64) _Atomic uint64_t n;
} bc_progress[BC_RECEIVERS];

static uint64_t bc_slowest(void)
{
    uint64_t m = UINT64_MAX;
    for (int k = 0; k < BC_RECEIVERS; k++) {
        uint64_t n = atomic_load_explicit(&bc_progress[k].n, memory_order_relaxed); /* a hint only */
        m = n < m ? n : m;
    }
    return m;
}

typedef struct {
    WEFT_FRAME;
    weft_broadcast_tx_t tx;
    uint64_t i;
    weft_yield_t y;
} bc_sender_t;
WEFT_ASYNC(bc_sender_t, bc_sender, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < BC_SENDS; self->i++) {
        if (self->i % BC_YIELD_EVERY == 0 && self->i > 0) {
            do
                WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
            while (self->i - bc_slowest() >= BC_WINDOW);
        }
        if (weft_broadcast_send(&self->tx, &self->i) != BC_RECEIVERS)
            check(-1, "broadcast send");
    }
    weft_broadcast_tx_drop(&self->tx);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_broadcast_rx_t rx;
    int id, rc;
    uint64_t v, n, missed;
    weft_broadcast_recv_t r;
} bc_receiver_t;
WEFT_ASYNC(bc_receiver_t, bc_receiver, weft_unit_t)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->r, weft_broadcast_recv(&self->rx, &self->v), &self->rc);
        if (self->rc == WEFT_ELAGGED)
            self->missed += weft_broadcast_rx_missed(&self->rx);
        else if (self->rc != 0)
            break;
        else
            self->n++;
        atomic_store_explicit(&bc_progress[self->id].n, self->n + self->missed, memory_order_relaxed);
    }
    if (self->n + self->missed != BC_SENDS)
        check(-1, "broadcast receiver count");
    atomic_fetch_add(&bc_received, self->n);
    atomic_fetch_add(&bc_missed, self->missed);
    weft_broadcast_rx_drop(&self->rx);
    lock_task_done();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double run_broadcast_fanout(void)
{
    check(weft_broadcast_new(BC_CAP, sizeof(uint64_t), NULL, &bc_tx, NULL), "broadcast");
    atomic_store(&bc_received, 0);
    atomic_store(&bc_missed, 0);
    atomic_store(&remaining, BC_RECEIVERS);
    latch_reset();
    double t0 = now_ns();
    for (int k = 0; k < BC_RECEIVERS; k++) {
        atomic_store(&bc_progress[k].n, 0);
        bc_receiver_t r = { WEFT_FRAME_INIT(bc_receiver), .id = k };
        check(weft_broadcast_subscribe(&bc_tx, &r.rx), "subscribe");
        check(weft_handle_spawn(g_handle, &r, NULL), "spawn");
    }
    bc_sender_t s = { WEFT_FRAME_INIT(bc_sender), .tx = bc_tx };
    check(weft_handle_spawn(g_handle, &s, NULL), "spawn");
    latch_wait();
    double ns = (now_ns() - t0) / (double)atomic_load(&bc_received);
    if (atomic_load(&bc_missed) != 0)
        fprintf(stderr, "weft-bench: broadcast_fanout: %llu deliveries lost to lag\n",
                (unsigned long long)atomic_load(&bc_missed));
    return ns;
}

/* ---- futures_unordered ------------------------------------------------------
 * FU_MEMBERS oneshot receivers in one FuturesUnordered, each woken once by
 * a sender task: each member counts its first poll (after its receiver has
 * registered), and the member whose first poll is the last spawns the
 * sender, which sends member i the value i, in push order; the draining
 * task takes every output. Timed from the first channel created to the
 * last output taken; ns per completion. The same in bench/peers/tokio.
 * (An earlier shape spawned the sender at once and had it spin, yielding,
 * on the count of first polls: that read a cache line every first poll
 * wrote, from the other worker, and the harness's own ping-pong took a
 * quarter of the profile of both runtimes.) */
#define FU_MEMBERS 100000
#define FU_BATCH 1000 /* pushes or sends between two yields: keeps each poll short */

static weft_oneshot_tx_t *fu_tx;
static _Atomic long fu_first_polls;
static _Atomic uint64_t fu_sum;

typedef struct {
    WEFT_FRAME;
    uint32_t i;
} fu_sender_t;
WEFT_ASYNC(fu_sender_t, fu_sender, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < FU_MEMBERS; self->i++) {
        check(weft_oneshot_send(&fu_tx[self->i], &self->i), "futures_unordered send");
        if (self->i % FU_BATCH == FU_BATCH - 1)
            WEFT_YIELD();
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    weft_future_t future;
    weft_oneshot_rx_t rx;
    uint32_t val;
    bool counted;
} fu_member_t;
static weft_poll_t fu_member_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    fu_member_t *m = (fu_member_t *)(void *)f;
    int rc = 0;
    if (weft_future_poll(weft_oneshot_recv(&m->rx, &m->val), cx, &rc) == WEFT_PENDING) {
        if (!m->counted) {
            m->counted = true;
            /* acq_rel: the last first poll sees every member registered
             * before it spawns the sender (the spawn publishes that on). */
            if (atomic_fetch_add_explicit(&fu_first_polls, 1, memory_order_acq_rel) == FU_MEMBERS - 1) {
                fu_sender_t snd = { WEFT_FRAME_INIT(fu_sender) };
                check(weft_spawn(&snd, NULL), "spawn");
            }
        }
        return WEFT_PENDING;
    }
    check(rc, "futures_unordered recv");
    if (out != NULL)
        *(uint32_t *)out = m->val;
    return WEFT_READY;
}
static void fu_member_drop(weft_future_t *f)
{
    weft_oneshot_rx_drop(&((fu_member_t *)(void *)f)->rx);
}
static const weft_future_vtable_t fu_member_vtable = { fu_member_poll, fu_member_drop, NULL, sizeof(fu_member_t),
                                                       sizeof(uint32_t), "fu_member" };

typedef struct {
    WEFT_FRAME;
    weft_unordered_t set;
    uint64_t sum;
    uint32_t i, val;
    bool got;
    weft_unordered_next_t next;
} fu_drain_t;
WEFT_ASYNC(fu_drain_t, fu_drain, weft_unit_t)
{
    WEFT_BEGIN();
    weft_unordered_init(&self->set);
    for (self->i = 0; self->i < FU_MEMBERS; self->i++) {
        { /* m is copied into the set: a local whose scope ends before the yield */
            fu_member_t m = { { &fu_member_vtable }, { { NULL }, NULL, NULL }, 0, false };
            check(weft_oneshot_new(sizeof(uint32_t), NULL, &fu_tx[self->i], &m.rx), "oneshot");
            check(weft_unordered_push(&self->set, WEFT_FUTURE(&m), self->i), "futures_unordered push");
        }
        if (self->i % FU_BATCH == FU_BATCH - 1)
            WEFT_YIELD();
    }
    for (;;) {
        WEFT_AWAIT(&self->next, weft_unordered_next(&self->set, NULL, &self->val), &self->got);
        if (!self->got)
            break;
        self->sum += self->val;
    }
    weft_unordered_destroy(&self->set);
    atomic_store(&fu_sum, self->sum);
    latch_signal();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double run_futures_unordered(void)
{
    if (fu_tx == NULL && (fu_tx = calloc(FU_MEMBERS, sizeof *fu_tx)) == NULL)
        check(WEFT_ENOMEM, "futures_unordered");
    atomic_store(&fu_first_polls, 0);
    latch_reset();
    double t0 = now_ns();
    fu_drain_t d = { WEFT_FRAME_INIT(fu_drain) };
    check(weft_handle_spawn(g_handle, &d, NULL), "spawn");
    latch_wait();
    double ns = (now_ns() - t0) / FU_MEMBERS;
    if (atomic_load(&fu_sum) != (uint64_t)FU_MEMBERS * (FU_MEMBERS - 1) / 2) {
        fprintf(stderr, "weft-bench: futures_unordered sum %llu\n", (unsigned long long)atomic_load(&fu_sum));
        exit(1);
    }
    return ns;
}

/* ---- joinset -------------------------------------------------------------------
 * One task spawns JOINSET_TASKS tasks (each returns its index) into a
 * weft_joinset_t and joins them all as they finish; ns per task, spawn to
 * join (the same in bench/peers/tokio with tokio::task::JoinSet). */
#define JOINSET_TASKS 10000

static _Atomic uint64_t joinset_sum;

typedef struct {
    WEFT_FRAME;
    int v;
} js_leaf_t;
WEFT_ASYNC(js_leaf_t, js_leaf, int)
{
    WEFT_BEGIN();
    WEFT_RETURN(self->v);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_joinset_t set;
    int i, rc, out;
    uint64_t sum;
    weft_joinset_join_next_t next;
} js_driver_t;
WEFT_ASYNC(js_driver_t, js_driver, weft_unit_t)
{
    WEFT_BEGIN();
    weft_joinset_init(&self->set);
    for (self->i = 0; self->i < JOINSET_TASKS; self->i++) {
        js_leaf_t t = { WEFT_FRAME_INIT(js_leaf) };
        t.v = self->i;
        check(weft_joinset_spawn(&self->set, &t, NULL), "joinset spawn");
    }
    for (;;) {
        WEFT_AWAIT(&self->next, weft_joinset_join_next(&self->set, &self->out, NULL), &self->rc);
        if (self->rc == WEFT_ENOENT)
            break;
        check(self->rc, "join_next");
        self->sum += (uint64_t)self->out;
    }
    weft_joinset_destroy(&self->set);
    atomic_store(&joinset_sum, self->sum);
    lock_task_done();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double run_joinset(void)
{
    atomic_store(&remaining, 1);
    latch_reset();
    double t0 = now_ns();
    js_driver_t d = { WEFT_FRAME_INIT(js_driver) };
    check(weft_handle_spawn(g_handle, &d, NULL), "spawn");
    latch_wait();
    double ns = (now_ns() - t0) / JOINSET_TASKS;
    if (atomic_load(&joinset_sum) != (uint64_t)JOINSET_TASKS * (JOINSET_TASKS - 1) / 2) {
        fprintf(stderr, "weft-bench: joinset summed %llu\n", (unsigned long long)atomic_load(&joinset_sum));
        exit(1);
    }
    return ns;
}

/* ---- blockon_spawn_join --------------------------------------------------------
 * From the main thread (not a worker): spawn a trivial task and await its
 * join handle with block_on, BOJ_ROUNDS times in sequence; ns per round.
 * Every round crosses from this thread to a worker and back: the park and
 * unpark path between a plain thread and the runtime. The same in
 * bench/peers/tokio (rt.block_on(rt.spawn(..))). */
#define BOJ_ROUNDS 20000

typedef struct {
    WEFT_FRAME;
    int v;
} boj_task_t;
WEFT_ASYNC(boj_task_t, boj_task, int)
{
    WEFT_BEGIN();
    WEFT_RETURN(self->v + 1);
    WEFT_END();
}

static double run_blockon_spawn_join(void)
{
    double t0 = now_ns();
    long sum = 0;
    for (int i = 0; i < BOJ_ROUNDS; i++) {
        boj_task_t t = { WEFT_FRAME_INIT(boj_task), .v = i };
        weft_join_handle_t h;
        check(weft_handle_spawn(g_handle, &t, &h), "spawn");
        int out = 0, rc = 0;
        check(weft_runtime_block_on(g_rt, weft_join(&h, &out), &rc), "block_on");
        check(rc, "join");
        sum += out;
    }
    double ns = (now_ns() - t0) / BOJ_ROUNDS;
    if (sum != (long)BOJ_ROUNDS * (BOJ_ROUNDS + 1) / 2) {
        fprintf(stderr, "weft-bench: blockon_spawn_join summed %ld\n", sum);
        exit(1);
    }
    return ns;
}

/* ---- fanout_tree ---------------------------------------------------------------
 * Every task spawns FANOUT children and awaits their join handles in order,
 * FANOUT_DEPTH levels below the root: FANOUT^DEPTH leaves (each returns 1)
 * that the root sums. The local queues overflow early (a level of 10^5
 * tasks is spawned before any of it runs), so most tasks pass through the
 * inject queue. ns per task spawned. */
#define FANOUT 10
#define FANOUT_DEPTH 6

typedef struct fanout_node_s {
    WEFT_FRAME;
    int depth;
    int i;
    int rc;
    long sum, got;
    weft_join_handle_t kids[FANOUT];
} fanout_node_t;
WEFT_ASYNC(fanout_node_t, fanout_node, long)
{
    WEFT_BEGIN();
    if (self->depth == 0)
        WEFT_RETURN(1);
    for (self->i = 0; self->i < FANOUT; self->i++) {
        fanout_node_t kid = { WEFT_FRAME_INIT(fanout_node), .depth = self->depth - 1 };
        check(weft_spawn(&kid, &self->kids[self->i]), "spawn");
    }
    for (self->i = 0; self->i < FANOUT; self->i++) {
        WEFT_AWAIT_REF(weft_join(&self->kids[self->i], &self->got), &self->rc);
        check(self->rc, "join");
        self->sum += self->got;
    }
    WEFT_RETURN(self->sum);
    WEFT_END();
}

static double run_fanout_tree(void)
{
    long tasks = 1, level = 1;
    for (int d = 0; d < FANOUT_DEPTH; d++) {
        level *= FANOUT;
        tasks += level;
    }
    double t0 = now_ns();
    fanout_node_t root = { WEFT_FRAME_INIT(fanout_node), .depth = FANOUT_DEPTH };
    weft_join_handle_t h;
    check(weft_handle_spawn(g_handle, &root, &h), "spawn");
    long leaves = 0;
    int rc = 0;
    check(weft_runtime_block_on(g_rt, weft_join(&h, &leaves), &rc), "block_on");
    check(rc, "join");
    double ns = (now_ns() - t0) / (double)tasks;
    if (leaves != level) {
        fprintf(stderr, "weft-bench: fanout_tree counted %ld leaves\n", leaves);
        exit(1);
    }
    return ns;
}

/* ---- file_read ----------------------------------------------------------------- */
/* One task reads a 64 MiB file in 64 KiB chunks through weft_file_read
 * (the file is written to a fresh temp directory first, outside the
 * timing, so it is in the page cache for both runtimes, and removed
 * after). MB/s: higher is better. */
#define FILE_READ_SIZE ((size_t)64 << 20)
#define FILE_READ_CHUNK ((size_t)64 << 10)
typedef struct {
    WEFT_FRAME;
    const char *path;
    weft_file_t file;
    weft_fs_op_t open;
    weft_file_op_t read;
    int rc;
    ssize_t n;
    size_t total;
    char buf[FILE_READ_CHUNK];
} file_read_main_t;
static size_t file_read_total;
WEFT_ASYNC(file_read_main_t, file_read_main, weft_unit_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->open, weft_fs_open(self->path, NULL, &self->file), &self->rc);
    check(self->rc, "file_read open");
    do {
        WEFT_AWAIT(&self->read, weft_file_read(&self->file, self->buf, sizeof self->buf), &self->n);
        check(self->n < 0 ? (int)self->n : 0, "file_read read");
        self->total += (size_t)self->n;
    } while (self->n > 0);
    weft_file_close(&self->file);
    file_read_total = self->total;
    latch_signal();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

static double run_file_read(void)
{
    char dir[] = "/tmp/weft-bench-XXXXXX", path[64];
    if (mkdtemp(dir) == NULL)
        check(-1, "file_read mkdtemp");
    snprintf(path, sizeof path, "%s/data", dir);
    FILE *fp = fopen(path, "wb");
    char *block = malloc(FILE_READ_CHUNK);
    if (fp == NULL || block == NULL)
        check(-1, "file_read create");
    for (size_t i = 0; i < FILE_READ_SIZE / FILE_READ_CHUNK; i++) {
        memset(block, (int)(i & 0xff), FILE_READ_CHUNK);
        if (fwrite(block, 1, FILE_READ_CHUNK, fp) != FILE_READ_CHUNK)
            check(-1, "file_read write");
    }
    fclose(fp);
    free(block);
    latch_reset();
    file_read_main_t *m = malloc(sizeof *m);
    *m = (file_read_main_t){ WEFT_FRAME_INIT(file_read_main), .path = path };
    double t0 = now_ns();
    check(weft_handle_spawn(g_handle, m, NULL), "spawn");
    latch_wait();
    double secs = (now_ns() - t0) / 1e9;
    free(m);
    unlink(path);
    rmdir(dir);
    if (file_read_total != FILE_READ_SIZE)
        check(-1, "file_read total");
    return (double)FILE_READ_SIZE / 1e6 / secs;
}

typedef struct {
    const char *name;
    const char *unit;
    double (*run)(void);
} workload_t;

static const workload_t workloads[] = {
    { "spawn_many_local", "ns/task", run_spawn_many_local },
    { "spawn_many_remote", "ns/task", run_spawn_many_remote },
    { "yield_many", "ns/yield", run_yield_many },
    { "ping_pong", "ns/round", run_ping_pong },
    { "chained_spawn", "ns/spawn", run_chained_spawn },
    { "spawn_blocking", "ns/job", run_spawn_blocking },
    { "spawn_blocking_8_spawners", "ns/job", run_spawn_blocking_8_spawners },
    { "tcp_echo", "round trips/s", run_tcp_echo },
    { "lines_throughput", "lines/s", run_lines_throughput },
    { "file_read", "MB/s", run_file_read },
    { "proxy_throughput", "MB/s", run_proxy_throughput },
    { "mutex_contended", "ns/lock", run_mutex_contended },
    { "semaphore_contended", "ns/acquire", run_semaphore_contended },
    { "rwlock_read_heavy", "ns/op", run_rwlock_read_heavy },
    { "mpsc_throughput", "ns/msg", run_mpsc_throughput },
    { "broadcast_fanout", "ns/delivery", run_broadcast_fanout },
    { "futures_unordered", "ns/completion", run_futures_unordered },
    { "joinset", "ns/task", run_joinset },
    { "blockon_spawn_join", "ns/round", run_blockon_spawn_join },
    { "fanout_tree", "ns/task", run_fanout_tree },
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* --only names a timers shape by its prefix or by one of its figures. */
static bool is_timers(const char *only, const char *prefix)
{
    static const char *const figs[] = { "", "_wall", "_late_p50", "_late_p99" };
    size_t n = strlen(prefix);
    if (strncmp(only, prefix, n) != 0)
        return false;
    for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++)
        if (strcmp(only + n, figs[i]) == 0)
            return true;
    return false;
}

static void usage(void)
{
    fprintf(stderr, "usage: weft-bench [--workers N] [--only NAME] [--iters N] [--no-detector]\nworkloads:");
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        fprintf(stderr, " %s", workloads[i].name);
    fprintf(stderr, " idle_task_bytes timers (timers_wall, timers_late_p50, timers_late_p99)"
                    " timers_1m (timers_1m_wall, timers_1m_late_p50, timers_1m_late_p99)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long workers = sysconf(_SC_NPROCESSORS_ONLN);
    int iters = 5;
    const char *only = NULL;
    bool detector = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
            workers = atol(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--no-detector") == 0)
            detector = false; /* to measure the blocking detector's cost */
        else
            usage();
    }
    if (workers < 1 || workers > 1024 || iters < 1 || iters > 1000)
        usage();
    bool known = only == NULL || strcmp(only, "idle_task_bytes") == 0 || is_timers(only, "timers") ||
                 is_timers(only, "timers_1m");
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        known = known || strcmp(only, workloads[i].name) == 0;
    if (!known)
        usage();
    printf("# weft-bench %s workers=%ld iters=%d\n", weft_version(), workers, iters);
    double *v = calloc((size_t)iters, sizeof *v);

    /* First, while the heap is fresh. */
    if (only == NULL || strcmp(only, "idle_task_bytes") == 0) {
        run_idle_task_bytes((unsigned)workers); /* warm-up */
        for (int k = 0; k < iters; k++)
            v[k] = run_idle_task_bytes((unsigned)workers);
        printf("idle_task_bytes %.1f bytes/task\n", median(v, iters));
        fflush(stdout);
    }

    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = (unsigned)workers;
    b.detect_blocking = detector;
    weft_runtime_t *rt;
    check(weft_runtime_new(&b, &rt), "runtime");
    g_handle = weft_runtime_handle(rt);
    g_rt = rt;
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) {
        const workload_t *w = &workloads[i];
        if (only != NULL && strcmp(only, w->name) != 0)
            continue;
        w->run(); /* warm-up */
        for (int k = 0; k < iters; k++)
            v[k] = w->run();
        printf(strcmp(w->unit, "round trips/s") == 0 || strcmp(w->unit, "lines/s") == 0 ? "%s %.0f %s\n" : "%s %.1f %s\n", w->name, median(v, iters), w->unit);
        fflush(stdout);
    }
    weft_blocking_stats_t bst;
    weft_blocking_stats(g_handle, &bst);
    printf("# blocking pool: %u threads alive (%u idle)\n", bst.threads, bst.idle);
    if (only == NULL || is_timers(only, "timers"))
        report_timers("timers", run_timers, v, iters);
    if (only == NULL || is_timers(only, "timers_1m"))
        report_timers("timers_1m", run_timers_1m, v, iters);
    free(lateness);
    weft_runtime_free(rt);
    free(v);
    return 0;
}
