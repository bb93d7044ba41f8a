/* examples/select_loop.c - the usual server loop, written with select.
 *
 * Each connection waits for whichever comes first: data on its socket, the
 * server's shutdown token, or a tick of its interval. Data is echoed back;
 * after IDLE_TICKS ticks without data the connection is closed; on
 * shutdown it says goodbye and closes. The accept loop races accept
 * against the same token. main runs the server on an ephemeral port with
 * two clients (one goes idle, one is there at shutdown), then exits.
 *
 *   select_loop
 */
#include <stdio.h>
#include <string.h>

#include <weft/weft.h>

#define TICK_MS 100
#define IDLE_TICKS 3

/* ---- one connection ---------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    weft_tcp_stream_t s;
    weft_cancel_token_t *stop; /* our own reference */
    weft_interval_t tick;
    int idle_ticks, which;
    ssize_t n;
    char buf[1024];
    /* the select's arms, rebuilt each round, and the select itself */
    weft_tcp_io_t read;
    weft_cancelled_t cancelled;
    weft_tick_t next_tick;
    weft_select_t sel;
    weft_tcp_io_t write;
} conn_t;

static void conn_cleanup(conn_t *c) /* also when the task is cancelled */
{
    weft_interval_drop(&c->tick);
    weft_cancel_token_release(c->stop);
    weft_tcp_close(&c->s);
}

WEFT_ASYNC_WITH_DROP(conn_t, conn, weft_unit_t, conn_cleanup)
{
    enum { READ, STOP, TICK }; /* the arms, in the order written below */
    WEFT_BEGIN();
    for (;;) {
        WEFT_SELECT(&self->sel, &self->which,
                    WEFT_ARM(&self->read, weft_tcp_read(&self->s, self->buf, sizeof self->buf), &self->n),
                    WEFT_ARM(&self->cancelled, weft_cancel_token_cancelled(self->stop), NULL),
                    WEFT_ARM(&self->next_tick, weft_interval_tick(&self->tick), NULL));
        /* The losers are already dropped: a read that lost read nothing. */
        if (self->which == STOP) {
            WEFT_AWAIT(&self->write, weft_tcp_write_all(&self->s, "shutting down\n", 14), &self->n);
            break;
        }
        if (self->which == TICK) {
            if (++self->idle_ticks < IDLE_TICKS)
                continue;
            WEFT_AWAIT(&self->write, weft_tcp_write_all(&self->s, "idle, bye\n", 10), &self->n);
            break;
        }
        if (self->n <= 0) /* READ: the client closed, or an error */
            break;
        self->idle_ticks = 0;
        WEFT_AWAIT(&self->write, weft_tcp_write_all(&self->s, self->buf, (size_t)self->n), &self->n);
        if (self->n < 0)
            break;
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

/* ---- the accept loop ------------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t *l;
    weft_cancel_token_t *stop; /* borrowed from main */
    weft_tcp_stream_t s;
    int rc, which, served;
    weft_tcp_accept_t accept;
    weft_cancelled_t cancelled;
    weft_select_t sel;
} server_t;

WEFT_ASYNC(server_t, server, int)
{
    enum { ACCEPT, STOP };
    WEFT_BEGIN();
    for (;;) {
        WEFT_SELECT(&self->sel, &self->which,
                    WEFT_ARM(&self->accept, weft_tcp_accept(self->l, &self->s, NULL), &self->rc),
                    WEFT_ARM(&self->cancelled, weft_cancel_token_cancelled(self->stop), NULL));
        if (self->which == STOP)
            break;
        if (self->rc != 0) {
            fprintf(stderr, "accept: %s\n", weft_strerror(self->rc));
            continue;
        }
        conn_t c = { WEFT_FRAME_INIT(conn), .s = self->s, .stop = weft_cancel_token_retain(self->stop),
                     .tick = weft_interval_ms(TICK_MS, WEFT_MISSED_DELAY) };
        if (weft_spawn(&c, NULL) != 0)
            conn_cleanup(&c); /* out of memory: refuse this one */
        else
            self->served++;
    }
    WEFT_RETURN(self->served);
    WEFT_END();
}

/* ---- main: the server and two clients ------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    weft_cancel_token_t *stop;
    weft_tcp_listener_t l;
    weft_join_handle_t server;
    weft_tcp_stream_t idle, busy;
    int rc, err, served;
    ssize_t n;
    char buf[64];
    weft_tcp_connect_t connect;
    weft_tcp_io_t io;
    weft_sleep_t nap;
} main_t;

static void main_cleanup(main_t *m)
{
    weft_tcp_close(&m->idle);
    weft_tcp_close(&m->busy);
    weft_tcp_listener_close(&m->l);
}

/* Reads one reply from s into self->buf and prints it as `who` saw it. */
#define READ_REPLY(s, who)                                                                   \
    do {                                                                                     \
        WEFT_AWAIT(&self->io, weft_tcp_read(s, self->buf, sizeof self->buf - 1), &self->n); \
        self->buf[self->n > 0 ? self->n : 0] = '\0';                                         \
        printf("%s got: %s", who, self->n > 0 ? self->buf : "(closed)\n");                   \
    } while (0)

WEFT_ASYNC_WITH_DROP(main_t, main_fn, int, main_cleanup)
{
    WEFT_BEGIN();
    self->rc = weft_tcp_listen_ip("127.0.0.1", 0, 16, &self->l);
    if (self->rc != 0) {
        fprintf(stderr, "listen: %s\n", weft_strerror(self->rc));
        WEFT_RETURN(1);
    }
    {
        server_t sv = { WEFT_FRAME_INIT(server), .l = &self->l, .stop = self->stop };
        if (weft_spawn(&sv, &self->server) != 0)
            WEFT_RETURN(1);
    }
    /* A client that says one thing and then goes quiet. */
    WEFT_AWAIT(&self->connect, weft_tcp_connect_ip("127.0.0.1", weft_tcp_listener_port(&self->l), &self->idle),
               &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(1);
    WEFT_AWAIT(&self->io, weft_tcp_write_all(&self->idle, "hello\n", 6), &self->n);
    READ_REPLY(&self->idle, "idle client");
    READ_REPLY(&self->idle, "idle client"); /* after IDLE_TICKS ticks */
    /* A client that is still connected when the server shuts down. */
    WEFT_AWAIT(&self->connect, weft_tcp_connect_ip("127.0.0.1", weft_tcp_listener_port(&self->l), &self->busy),
               &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(1);
    WEFT_AWAIT(&self->io, weft_tcp_write_all(&self->busy, "still here\n", 11), &self->n);
    READ_REPLY(&self->busy, "busy client");
    weft_cancel_token_cancel(self->stop); /* shutdown: the accept loop and every connection */
    READ_REPLY(&self->busy, "busy client");
    WEFT_AWAIT_REF(weft_join(&self->server, &self->served), &self->err);
    printf("server stopped after %d connections\n", self->served);
    WEFT_RETURN(self->err == 0 && self->served == 2 ? 0 : 1);
    WEFT_END();
}

int main(void)
{
    weft_runtime_t *rt;
    weft_cancel_token_t *stop;
    if (weft_runtime_new(NULL, &rt) != 0 || weft_cancel_token_new(&stop) != 0)
        return 1;
    main_t m = { WEFT_FRAME_INIT(main_fn), .stop = stop };
    int rc = 1;
    if (weft_runtime_block_on(rt, WEFT_FUTURE(&m), &rc) != 0)
        rc = 1;
    weft_runtime_free(rt); /* connections still running are dropped (their cleanup runs) */
    weft_cancel_token_release(stop);
    return rc;
}
