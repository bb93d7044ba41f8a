/* examples/http.c - a minimal HTTP/1.1 server on 127.0.0.1 that holds up
 * under load and against bad clients:
 *   - keep-alive and pipelining: every complete request in the buffer is
 *     answered, in order, with one write for the batch;
 *   - every request gets "Hello, World!" (13 bytes; the BENCH.md responder);
 *   - a head larger than the buffer gets 431, a malformed one 400, a body
 *     it will not read 413, Transfer-Encoding 501, then the connection
 *     closes;
 *   - a request whose head is not complete --header-ms after its first
 *     byte is answered 408 and closed (a stalled or a trickling client); a
 *     keep-alive connection idle for --idle-ms is closed;
 *   - at most --max-conns connections: past that, new ones get 503;
 *   - SIGINT or SIGTERM: stop accepting, close idle connections (within
 *     200 ms), let requests in flight finish (up to --grace-ms), exit 0.
 *
 *   http PORT [--workers N] [--max-conns N] [--idle-ms N] [--header-ms N] [--grace-ms N]
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#include "http_parser.h"

#define BUF_SIZE 8192 /* the head cap: a head that does not fit gets 431 */
#define OUT_SIZE 16384

static const char OK_RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\n"
                                  "Hello, World!";
/* For an HTTP/1.0 request that asked for keep-alive: a 1.0 client (ab -k)
 * keeps the connection only when the answer says so, else it waits for
 * the close that ends the body. */
static const char OK_RESPONSE_10_KEEP[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
                                          "Connection: keep-alive\r\n\r\nHello, World!";

static struct {
    uint64_t idle_ms, header_ms, grace_ms;
    long max_conns;
} cfg = { 10000, 5000, 5000, 10000 };

static _Atomic long active;      /* open connections */
static _Atomic bool stopping;    /* a shutdown signal came */
static weft_tcp_listener_t listener;

static size_t error_response(int err, char *out)
{
    const char *status = err == HTTP_E_TOO_LARGE        ? "431 Request Header Fields Too Large"
                         : err == HTTP_E_UNSUPPORTED    ? "501 Not Implemented"
                         : err == HTTP_E_BODY_TOO_LARGE ? "413 Content Too Large"
                         : err == -1000                 ? "408 Request Timeout"
                         : err == -1001                 ? "503 Service Unavailable"
                                                        : "400 Bad Request";
    return (size_t)sprintf(out, "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
}

/* ---- one connection ---------------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    weft_tcp_stream_t s;
    char buf[BUF_SIZE];
    size_t used;
    char out[OUT_SIZE];
    size_t out_len;
    bool closing;
    uint64_t wait_start; /* when the idle wait or the current head began */
    int trc;
    ssize_t n;
    weft_tcp_io_t op;
    weft_sleep_t tick; /* fires every 200 ms or so: time to look at the deadlines */
    struct read_or_tick_s {
        weft_future_t future;
        weft_tcp_io_t *op;
        ssize_t *n;
        weft_sleep_t *tick;
    } rt;
} conn_t;

static void conn_cleanup(conn_t *c)
{
    weft_future_drop(&c->tick.future);
    weft_tcp_close(&c->s);
    atomic_fetch_sub(&active, 1);
}

/* A read that also ends (WEFT_ETIMEDOUT) when the connection's tick fires.
 * The tick is a sleep kept in the frame across reads and re-armed only when
 * it fires, so a keep-alive request costs no timer operation (a timeout
 * around each read would insert and remove a wheel entry every time). */
typedef struct read_or_tick_s read_or_tick_t;
static weft_poll_t read_or_tick_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    read_or_tick_t *r = (read_or_tick_t *)(void *)f;
    int rc;
    if (weft_future_poll(&r->op->future, cx, r->n) == WEFT_READY)
        rc = 0;
    else if (weft_future_poll(&r->tick->future, cx, NULL) == WEFT_READY)
        rc = WEFT_ETIMEDOUT;
    else
        return WEFT_PENDING;
    *(int *)out = rc;
    return WEFT_READY;
}
static void read_or_tick_drop(weft_future_t *f)
{
    weft_future_drop(&((read_or_tick_t *)(void *)f)->op->future); /* the tick stays */
}
static const weft_future_vtable_t read_or_tick_vt = {
    read_or_tick_poll, read_or_tick_drop, NULL, sizeof(read_or_tick_t), sizeof(int), "read_or_tick",
};

/* Answers every complete request in buf; sets closing on an error or a
 * request that does not keep the connection alive. */
static void answer(conn_t *c)
{
    size_t off = 0;
    while (!c->closing && off < c->used) {
        http_request_t req;
        int n = http_parse_request(c->buf + off, c->used - off, BUF_SIZE, &req);
        if (n == 0) {
            if (req.head_len > 0 && req.content_length > BUF_SIZE - req.head_len) {
                c->out_len += error_response(HTTP_E_BODY_TOO_LARGE, c->out + c->out_len);
                c->closing = true;
            }
            break;
        }
        if (n < 0) {
            c->out_len += error_response(n, c->out + c->out_len);
            c->closing = true;
            break;
        }
        bool keep_10 = req.minor_version == 0 && req.keep_alive;
        const char *ok = keep_10 ? OK_RESPONSE_10_KEEP : OK_RESPONSE;
        size_t ok_len = keep_10 ? sizeof OK_RESPONSE_10_KEEP - 1 : sizeof OK_RESPONSE - 1;
        memcpy(c->out + c->out_len, ok, ok_len);
        c->out_len += ok_len;
        off += (size_t)n;
        if (!req.keep_alive)
            c->closing = true;
        if (c->out_len + sizeof OK_RESPONSE_10_KEEP > OUT_SIZE)
            break; /* flush first; the rest stays in buf */
    }
    memmove(c->buf, c->buf + off, c->used - off);
    c->used -= off;
    if (c->used == BUF_SIZE && !c->closing) { /* a full buffer with no complete head */
        c->out_len += error_response(HTTP_E_TOO_LARGE, c->out + c->out_len);
        c->closing = true;
    }
}

WEFT_ASYNC_WITH_DROP(conn_t, conn_fn, weft_unit_t, conn_cleanup)
{
    WEFT_BEGIN();
    weft_tcp_set_nodelay(&self->s, true);
    self->wait_start = weft_now_ns();
    self->tick = weft_sleep_ms(200);
    if (atomic_load(&active) > cfg.max_conns) {
        self->out_len = error_response(-1001, self->out);
        self->closing = true;
    }
    while (!self->closing || self->out_len > 0) {
        if (self->out_len > 0) {
            WEFT_AWAIT(&self->op, weft_tcp_write_all(&self->s, self->out, self->out_len), &self->n);
            if (self->n < 0)
                break;
            self->out_len = 0;
            if (self->used > 0 && !self->closing) {
                answer(self); /* requests left over from a full batch */
                continue;
            }
        }
        if (self->closing || (atomic_load(&stopping) && self->used == 0))
            break; /* after a shutdown signal, idle connections end */
        /* Read more, within the idle deadline (no partial request) or the
         * header deadline (counted from the request's first byte, so a
         * client trickling a byte at a time is cut off too). The deadlines
         * are checked when the tick fires, at most 200 ms apart, which is
         * also how soon an idle connection notices a shutdown. */
        self->op = weft_tcp_read(&self->s, self->buf + self->used, BUF_SIZE - self->used);
        self->rt = (read_or_tick_t){ { &read_or_tick_vt }, &self->op, &self->n, &self->tick };
        WEFT_AWAIT_REF(&self->rt, &self->trc);
        if (self->trc == WEFT_ETIMEDOUT) {
            uint64_t limit = self->used ? cfg.header_ms : cfg.idle_ms;
            uint64_t waited = (weft_now_ns() - self->wait_start) / 1000000u;
            if (waited >= limit) {
                if (self->used == 0)
                    break; /* idle too long: just close */
                self->out_len = error_response(-1000, self->out); /* 408 */
                self->closing = true;
                continue;
            }
            weft_sleep_reset(&self->tick, weft_now_ns() + (limit - waited < 200 ? limit - waited : 200) * 1000000u);
            continue; /* and look at the shutdown flag */
        }
        if (self->n <= 0)
            break; /* closed by the client, or an error */
        if (self->used == 0)
            self->wait_start = weft_now_ns(); /* a new request's head begins */
        self->used += (size_t)self->n;
        answer(self);
        if (self->used == 0)
            self->wait_start = weft_now_ns(); /* all answered: idle from now */
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

/* ---- accept loop ---------------------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    int rc;
    weft_tcp_stream_t s;
    weft_tcp_accept_t acc;
} acceptor_t;
WEFT_ASYNC(acceptor_t, acceptor_fn, int)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->acc, weft_tcp_accept(&listener, &self->s, NULL), &self->rc);
        if (self->rc != 0)
            break; /* -EBADF: the listener was closed (shutdown) */
        atomic_fetch_add(&active, 1);
        conn_t c = { WEFT_FRAME_INIT(conn_fn), .s = self->s };
        if (weft_spawn(&c, NULL) != 0) {
            weft_tcp_close(&c.s);
            atomic_fetch_sub(&active, 1);
        }
    }
    WEFT_RETURN(self->rc == -EBADF ? 0 : self->rc);
    WEFT_END();
}

/* ---- signals -------------------------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    int signo, rc;
    weft_signal_t sig;
} stopper_t;
WEFT_ASYNC(stopper_t, stopper_fn, weft_unit_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->sig, weft_signal_recv(self->signo), &self->rc);
    if (self->rc == 0 && !atomic_exchange(&stopping, true)) {
        fprintf(stderr, "http: signal %d: no new connections, finishing %ld\n", self->signo, atomic_load(&active));
        weft_tcp_listener_close(&listener); /* the acceptor wakes with -EBADF */
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    uint16_t port;
    int rc, err;
    uint64_t deadline;
    weft_join_handle_t acc;
    weft_sleep_t nap;
} main_t;
WEFT_ASYNC(main_t, main_fn, int)
{
    WEFT_BEGIN();
    self->rc = weft_tcp_listen_ip("127.0.0.1", self->port, 1024, &listener);
    if (self->rc != 0) {
        fprintf(stderr, "http: listen: %s\n", weft_strerror(self->rc));
        WEFT_RETURN(1);
    }
    fprintf(stderr, "http: listening on 127.0.0.1:%u\n", weft_tcp_listener_port(&listener));
    {
        stopper_t a = { WEFT_FRAME_INIT(stopper_fn), .signo = SIGINT };
        stopper_t b = { WEFT_FRAME_INIT(stopper_fn), .signo = SIGTERM };
        acceptor_t ac = { WEFT_FRAME_INIT(acceptor_fn) };
        if (weft_spawn(&a, NULL) != 0 || weft_spawn(&b, NULL) != 0 || weft_spawn(&ac, &self->acc) != 0)
            WEFT_RETURN(1);
    }
    WEFT_AWAIT_REF(weft_join(&self->acc, &self->rc), &self->err);
    /* Stopped accepting: give connections in flight the grace period. */
    self->deadline = weft_now_ns() + cfg.grace_ms * 1000000u;
    while (atomic_load(&active) > 0 && weft_now_ns() < self->deadline)
        WEFT_AWAIT(&self->nap, weft_sleep_ms(10), NULL);
    fprintf(stderr, "http: stopped (%ld connections cut at the deadline)\n", atomic_load(&active));
    WEFT_RETURN(self->rc);
    WEFT_END();
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: http PORT [--workers N] [--max-conns N] [--idle-ms N] [--header-ms N] "
                        "[--grace-ms N]\n");
        return 2;
    }
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    for (int i = 2; i + 1 < argc; i += 2) {
        long v = atol(argv[i + 1]);
        if (v < 0) {
            fprintf(stderr, "http: %s: negative value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--workers") == 0)
            b.workers = (unsigned)v;
        else if (strcmp(argv[i], "--max-conns") == 0)
            cfg.max_conns = v;
        else if (strcmp(argv[i], "--idle-ms") == 0)
            cfg.idle_ms = (uint64_t)v;
        else if (strcmp(argv[i], "--header-ms") == 0)
            cfg.header_ms = (uint64_t)v;
        else if (strcmp(argv[i], "--grace-ms") == 0)
            cfg.grace_ms = (uint64_t)v;
        else {
            fprintf(stderr, "http: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    weft_runtime_t *rt;
    int rc = weft_runtime_new(&b, &rt);
    if (rc != 0) {
        fprintf(stderr, "http: %s\n", weft_strerror(rc));
        return 1;
    }
    main_t m = { WEFT_FRAME_INIT(main_fn), .port = (uint16_t)atoi(argv[1]) };
    int status = 1;
    int brc = weft_runtime_block_on(rt, WEFT_FUTURE(&m), &status);
    if (brc != 0) {
        fprintf(stderr, "block_on: %s\n", weft_strerror(brc));
        status = 1;
    }
    weft_runtime_free(rt); /* drops connections cut at the deadline */
    return status;
}
