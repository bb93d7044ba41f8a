/* examples/idle_timeout_test.c - testing an application built on weft on
 * a paused clock: a server that closes connections idle for 30 seconds,
 * and a test that checks it, to the millisecond, in a few milliseconds of
 * real time. The worked example of docs/testing.md; tests/meson.build runs
 * it. Exits 0 when the server behaves. */
#include <stdio.h>
#include <string.h>
#include <weft/weft.h>

/* ---- The code under test -------------------------------------------------- */

#define IDLE_MS 30000 /* a connection silent this long is closed */

/* Echoes what it reads; says "bye" and closes after IDLE_MS of silence. */
typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t *l;
    weft_tcp_stream_t s;
    char buf[64];
    ssize_t n;
    int rc;
    weft_tcp_accept_t acc;
    weft_tcp_io_t rd, wr;
    weft_timeout_t idle;
} server_t;

static void server_cleanup(server_t *self)
{
    weft_tcp_close(&self->s);
}

WEFT_ASYNC_WITH_DROP(server_t, server_fn, int, server_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->acc, weft_tcp_accept(self->l, &self->s, NULL), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    for (;;) {
        /* Each read gets IDLE_MS from now: activity pushes the limit back. */
        self->rd = weft_tcp_read(&self->s, self->buf, sizeof self->buf);
        WEFT_AWAIT(&self->idle, weft_timeout_ms(WEFT_FUTURE(&self->rd), &self->n, IDLE_MS), &self->rc);
        if (self->rc == WEFT_ETIMEDOUT) {
            WEFT_AWAIT(&self->wr, weft_tcp_write_all(&self->s, "bye\n", 4), &self->n);
            break;
        }
        if (self->n <= 0)
            break; /* the client left, or an error */
        WEFT_AWAIT(&self->wr, weft_tcp_write_all(&self->s, self->buf, (size_t)self->n), &self->n);
        if (self->n < 0)
            break;
    }
    WEFT_RETURN(0); /* the cleanup closes the connection */
    WEFT_END();
}

/* ---- The test ----------------------------------------------------------------- */

/* What the client saw, in virtual milliseconds since it started. */
typedef struct {
    int64_t echo_ms[2], bye_ms, eof_ms;
} seen_t;

/* Talks at 0 s and at 20 s, then stays silent until the server gives up. */
typedef struct {
    WEFT_FRAME;
    uint16_t port;
    uint64_t start;
    seen_t seen;
    weft_tcp_stream_t s;
    char buf[64];
    ssize_t n;
    int rc, round;
    weft_tcp_connect_t conn;
    weft_tcp_io_t io;
    weft_sleep_t pause;
} client_t;

static void client_cleanup(client_t *self)
{
    weft_tcp_close(&self->s);
}

static int64_t since(const client_t *self)
{
    return (int64_t)((weft_now_ns() - self->start) / 1000000u); /* the runtime's (virtual) clock */
}

WEFT_ASYNC_WITH_DROP(client_t, client_fn, seen_t, client_cleanup)
{
    WEFT_BEGIN();
    self->start = weft_now_ns();
    self->seen = (seen_t){ { -1, -1 }, -1, -1 };
    WEFT_AWAIT(&self->conn, weft_tcp_connect_ip("127.0.0.1", self->port, &self->s), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->seen);
    for (self->round = 0; self->round < 2; self->round++) {
        if (self->round == 1)
            WEFT_AWAIT(&self->pause, weft_sleep_ms(20000), NULL); /* 20 s of silence */
        WEFT_AWAIT(&self->io, weft_tcp_write_all(&self->s, "hi", 2), &self->n);
        WEFT_AWAIT(&self->io, weft_tcp_read_exact(&self->s, self->buf, 2), &self->n);
        if (self->n != 2)
            WEFT_RETURN(self->seen);
        self->seen.echo_ms[self->round] = since(self);
    }
    WEFT_AWAIT(&self->io, weft_tcp_read_exact(&self->s, self->buf, 4), &self->n);
    if (self->n == 4 && memcmp(self->buf, "bye\n", 4) == 0)
        self->seen.bye_ms = since(self);
    WEFT_AWAIT(&self->io, weft_tcp_read(&self->s, self->buf, sizeof self->buf), &self->n);
    if (self->n == 0)
        self->seen.eof_ms = since(self);
    WEFT_RETURN(self->seen);
    WEFT_END();
}

/* The test body: a listener, the server as a task, the client awaited. */
typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t l;
    weft_join_handle_t server;
    client_t client;
    seen_t seen;
    int rc;
} test_t;

static void test_cleanup(test_t *self)
{
    weft_tcp_listener_close(&self->l);
}

WEFT_ASYNC_WITH_DROP(test_t, test_fn, seen_t, test_cleanup)
{
    WEFT_BEGIN();
    self->seen = (seen_t){ { -1, -1 }, -1, -1 };
    if (weft_tcp_listen_ip("127.0.0.1", 0, 8, &self->l) != 0)
        WEFT_RETURN(self->seen);
    {
        server_t srv = { WEFT_FRAME_INIT(server_fn), .l = &self->l };
        if (weft_spawn(&srv, &self->server) != 0)
            WEFT_RETURN(self->seen);
    }
    self->client = (client_t){ WEFT_FRAME_INIT(client_fn), .port = weft_tcp_listener_port(&self->l) };
    WEFT_AWAIT_REF(&self->client, &self->seen);
    WEFT_AWAIT_REF(weft_join(&self->server, NULL), &self->rc);
    WEFT_RETURN(self->seen);
    WEFT_END();
}

int main(void)
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_CURRENT_THREAD);
    b.clock = WEFT_CLOCK_PAUSED; /* virtual time, jumping ahead whenever all is idle */
    weft_runtime_t *rt;
    if (weft_runtime_new(&b, &rt) != 0)
        return 1;
    uint64_t wall = weft_now_ns(); /* outside the runtime: the real clock */
    test_t t = { WEFT_FRAME_INIT(test_fn) };
    seen_t seen;
    int rc = weft_runtime_block_on(rt, WEFT_FUTURE(&t), &seen);
    wall = weft_now_ns() - wall;
    weft_runtime_free(rt);
    if (rc != 0)
        return 1;
    printf("echo at %lld ms and %lld ms, bye at %lld ms, closed at %lld ms (virtual)\n",
           (long long)seen.echo_ms[0], (long long)seen.echo_ms[1], (long long)seen.bye_ms,
           (long long)seen.eof_ms);
    printf("real time: %.1f ms\n", (double)wall / 1e6);
    /* Exact: the clock only moves when the runtime has nothing else to do. */
    bool ok = seen.echo_ms[0] == 0 && seen.echo_ms[1] == 20000 && seen.bye_ms == 50000 && seen.eof_ms == 50000;
    return ok ? 0 : 1;
}
