/* examples/chat.c - a TCP chat server on 127.0.0.1: every line a client
 * sends goes to every other client, as "guestN: line".
 *
 *   chat [--port N] [--max-clients N]        defaults: port 7000, 100 clients
 *
 *   - One broadcast channel carries every line. Each client has its own
 *     receiver, and a forwarder moves what it receives (all but the
 *     client's own lines) into the client's bounded outbound queue, an mpsc
 *     channel, with try_send. A client whose queue is full (it does not
 *     read) is dropped, never waited for. A forwarder that fell behind the
 *     broadcast ring tells its client how many lines it missed.
 *   - A semaphore of --max-clients permits caps the connections: a client
 *     past the cap is sent "server full" and closed.
 *   - A line longer than MAX_LINE drops its client.
 *   - Each client's task races its three halves (reader, forwarder,
 *     writer) and the root cancellation token in one select: the first to
 *     end ends the client.
 *   - SIGINT or SIGTERM ends the accept loop, which cancels the root token:
 *     every client is sent a goodbye line and closed, and the process exits
 *     0 once every connection task has ended.
 *
 * Port 0 picks a free port; the first line on stdout names it. docs/chat.md
 * walks through this file; bench/peers/tokio/src/bin/tokio-chat.rs is the
 * same server on Tokio.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#define MAX_LINE 512  /* bytes of a line with its "\n"; a longer line drops its client */
#define QUEUE_LEN 128 /* messages waiting for one client's socket; more: the client is dropped */
#define HISTORY 256   /* the broadcast ring: how far a forwarder may fall behind */
#define FULL "server full\n"
#define BYE "*** server shutting down\n"

typedef struct {
    unsigned from;            /* the sender's id: clients are not sent their own lines */
    int len;
    char text[MAX_LINE + 32]; /* "guestN: " + the line + "\n" */
} msg_t;

static struct {
    weft_broadcast_tx_t tx;   /* every client's lines */
    weft_semaphore_t slots;   /* one permit per connection */
    weft_cancel_token_t *root; /* cancelled by SIGINT or SIGTERM */
    unsigned next_id;         /* only the accept loop touches it */
} srv;

/* ---- a line splitter (a stream I/O layer's line reader would replace it) ------- */
typedef struct {
    char buf[MAX_LINE];
    size_t len, pos; /* bytes held; where the next line starts */
} lines_t;

/* The next complete line held, its "\n" or "\r\n" cut off (NUL-terminated
 * in place), or NULL when none is complete: then the partial line is moved
 * to the front, and the next read appends at buf + len. */
static char *next_line(lines_t *in)
{
    char *line = in->buf + in->pos, *end = memchr(line, '\n', in->len - in->pos);
    if (end == NULL) {
        in->len -= in->pos;
        memmove(in->buf, line, in->len);
        in->pos = 0;
        return NULL;
    }
    in->pos = (size_t)(end - in->buf) + 1;
    if (end > line && end[-1] == '\r')
        end--;
    *end = '\0';
    return line;
}

/* ---- one client: a reader, a forwarder and a writer, raced in one task --------- */
typedef struct session_s session_t;

/* Reads the client's lines and broadcasts them. */
typedef struct {
    WEFT_FRAME;
    session_t *c;
    lines_t in;
    ssize_t n;
    weft_tcp_io_t op;
} reader_t;

/* Moves the broadcast messages meant for the client into its queue. */
typedef struct {
    WEFT_FRAME;
    session_t *c;
    msg_t m;
    int got;
    weft_broadcast_recv_t recv;
} forwarder_t;

/* Writes the queued messages to the client's socket. */
typedef struct {
    WEFT_FRAME;
    session_t *c;
    msg_t m;
    int got;
    ssize_t n;
    weft_mpsc_recv_t recv;
    weft_tcp_io_t op;
} writer_t;

struct session_s {
    WEFT_FRAME;
    unsigned id;
    weft_tcp_stream_t s;
    weft_broadcast_rx_t rx;
    weft_mpsc_tx_t qtx; /* the outbound queue */
    weft_mpsc_rx_t qrx;
    reader_t reader;
    forwarder_t forwarder;
    writer_t writer;
    weft_cancelled_t stop;
    weft_select_t sel;
    int which;
    ssize_t n;
    weft_tcp_io_t op;
    weft_timeout_t bye;
};

WEFT_ASYNC(reader_t, reader_fn, weft_unit_t)
{
    WEFT_BEGIN();
    while (self->in.len < MAX_LINE) { /* a full buffer holding no "\n": a line too long */
        WEFT_AWAIT(&self->op, weft_tcp_read(&self->c->s, self->in.buf + self->in.len, MAX_LINE - self->in.len),
                   &self->n);
        if (self->n <= 0)
            break; /* the client left (0), or a socket error */
        self->in.len += (size_t)self->n;
        for (char *line; (line = next_line(&self->in)) != NULL;) {
            msg_t m = { .from = self->c->id };
            m.len = snprintf(m.text, sizeof m.text, "guest%u: %s\n", m.from, line);
            (void)!weft_broadcast_send(&srv.tx, &m); /* the count of receivers is not needed */
        }
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

WEFT_ASYNC(forwarder_t, forwarder_fn, weft_unit_t)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->recv, weft_broadcast_recv(&self->c->rx, &self->m), &self->got);
        if (self->got == WEFT_EPIPE)
            break;
        if (self->got == WEFT_ELAGGED)
            self->m.len = snprintf(self->m.text, sizeof self->m.text, "*** missed %llu messages\n",
                                   (unsigned long long)weft_broadcast_rx_missed(&self->c->rx));
        else if (self->m.from == self->c->id)
            continue;
        if (weft_mpsc_try_send(&self->c->qtx, &self->m) != 0) {
            WEFT_YIELD(); /* the queue is full: give the writer a turn (see session_fn) */
            if (weft_mpsc_try_send(&self->c->qtx, &self->m) != 0)
                break; /* still full, the socket takes nothing: a slow client is dropped */
        }
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

WEFT_ASYNC(writer_t, writer_fn, weft_unit_t)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->recv, weft_mpsc_recv(&self->c->qrx, &self->m), &self->got);
        if (self->got != 0)
            break;
        WEFT_AWAIT(&self->op, weft_tcp_write_all(&self->c->s, self->m.text, (size_t)self->m.len), &self->n);
        if (self->n < 0)
            break;
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

/* Runs whether the session ended or was dropped, and after a failed start. */
static void session_cleanup(session_t *c)
{
    weft_tcp_close(&c->s);
    weft_broadcast_rx_drop(&c->rx);
    weft_mpsc_tx_drop(&c->qtx);
    weft_mpsc_rx_drop(&c->qrx);
    weft_semaphore_release(&srv.slots, 1);
}

WEFT_ASYNC_WITH_DROP(session_t, session_fn, weft_unit_t, session_cleanup)
{
    WEFT_BEGIN();
    /* The first of the three halves to end, or the shutdown token, ends the
     * client; the select drops the others. Biased: it polls in this order,
     * so after a forwarder's yield the writer runs first and drains the
     * queue if the socket takes data. */
    WEFT_SELECT_BIASED(&self->sel, &self->which,
                       WEFT_ARM(&self->reader, ((reader_t){ WEFT_FRAME_INIT(reader_fn), .c = self }), NULL),
                       WEFT_ARM(&self->writer, ((writer_t){ WEFT_FRAME_INIT(writer_fn), .c = self }), NULL),
                       WEFT_ARM(&self->forwarder, ((forwarder_t){ WEFT_FRAME_INIT(forwarder_fn), .c = self }), NULL),
                       WEFT_ARM(&self->stop, weft_cancel_token_cancelled(srv.root), NULL));
    if (self->which == 3) { /* shutting down: say goodbye, within a second */
        self->op = weft_tcp_write_all(&self->s, BYE, strlen(BYE));
        WEFT_AWAIT(&self->bye, weft_timeout_ms(WEFT_FUTURE(&self->op), &self->n, 1000), NULL);
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

/* Starts the task of a new client, which holds one of srv.slots' permits.
 * Subscribing here, before the task runs, means the client sees every line
 * sent after its welcome line. */
static void start_session(weft_tcp_stream_t s)
{
    session_t c = { WEFT_FRAME_INIT(session_fn), .id = ++srv.next_id, .s = s };
    msg_t hello = { 0 };
    hello.len = snprintf(hello.text, sizeof hello.text, "welcome guest%u\n", c.id);
    if (weft_broadcast_subscribe(&srv.tx, &c.rx) != 0 ||
        weft_mpsc_bounded(QUEUE_LEN, sizeof(msg_t), NULL, &c.qtx, &c.qrx) != 0 ||
        weft_mpsc_try_send(&c.qtx, &hello) != 0 || weft_spawn(&c, NULL) != 0)
        session_cleanup(&c); /* out of memory: this client is closed */
}

/* ---- the accept loop, and shutdown ------------------------------------------------ */
typedef struct {
    WEFT_FRAME;
    uint16_t port;
    size_t max_clients;
    int rc, which;
    weft_tcp_listener_t l;
    weft_tcp_stream_t s;
    weft_signal_t sigint, sigterm; /* kept across the loop's selects: no signal is missed */
    weft_tcp_accept_t acc;
    weft_select_t sel;
    weft_tcp_io_t op;
    weft_semaphore_acquire_t all;
} main_t;
static void main_cleanup(main_t *self)
{
    weft_future_drop(WEFT_FUTURE(&self->sigint));
    weft_future_drop(WEFT_FUTURE(&self->sigterm));
}
WEFT_ASYNC_WITH_DROP(main_t, main_fn, int, main_cleanup)
{
    WEFT_BEGIN();
    self->rc = weft_tcp_listen_ip("127.0.0.1", self->port, 128, &self->l);
    if (self->rc != 0) {
        fprintf(stderr, "chat: listen: %s\n", weft_strerror(self->rc));
        WEFT_RETURN(1);
    }
    /* Armed before the port is announced: a SIGINT from then on stops us
     * gracefully, even one that comes before the loop's first select. */
    if (weft_signal_arm(&self->sigint) != 0 || weft_signal_arm(&self->sigterm) != 0)
        WEFT_RETURN(1);
    printf("listening on 127.0.0.1:%u\n", weft_tcp_listener_port(&self->l));
    fflush(stdout);
    for (;;) {
        WEFT_SELECT(&self->sel, &self->which, WEFT_ARM(&self->acc, weft_tcp_accept(&self->l, &self->s, NULL), &self->rc),
                    WEFT_ARM_REF(&self->sigint, NULL), WEFT_ARM_REF(&self->sigterm, NULL));
        if (self->which != 0)
            break; /* SIGINT or SIGTERM */
        if (self->rc != 0)
            continue; /* a connection that failed before it was accepted */
        if (weft_semaphore_try_acquire(&srv.slots) == 0) {
            start_session(self->s);
            continue;
        }
        /* One send into the new socket's empty buffer: it does not wait. */
        WEFT_AWAIT(&self->op, weft_tcp_write(&self->s, FULL, strlen(FULL)), NULL);
        weft_tcp_close(&self->s);
    }
    weft_cancel_token_cancel(srv.root); /* every session says goodbye and ends */
    weft_tcp_listener_close(&self->l);
    /* Each session holds a permit until it has ended: taking them all waits
     * for the last one (a NULL output gives them back at once). */
    WEFT_AWAIT(&self->all, weft_semaphore_acquire_many(&srv.slots, self->max_clients), NULL);
    WEFT_RETURN(0);
    WEFT_END();
}

int main(int argc, char **argv)
{
    main_t m = { WEFT_FRAME_INIT(main_fn), .port = 7000, .max_clients = 100, .sigint = weft_signal_recv(SIGINT),
                 .sigterm = weft_signal_recv(SIGTERM) };
    for (int i = 1; i < argc; i += 2) {
        long v = i + 1 < argc ? atol(argv[i + 1]) : -1;
        if (strcmp(argv[i], "--port") == 0 && v >= 0 && v <= 65535)
            m.port = (uint16_t)v;
        else if (strcmp(argv[i], "--max-clients") == 0 && v >= 1)
            m.max_clients = (size_t)v;
        else {
            fprintf(stderr, "usage: chat [--port N] [--max-clients N]\n");
            return 2;
        }
    }
    weft_runtime_t *rt;
    if (weft_cancel_token_new(&srv.root) != 0 || weft_broadcast_new(HISTORY, sizeof(msg_t), NULL, &srv.tx, NULL) != 0 ||
        weft_semaphore_init(&srv.slots, m.max_clients) != 0 || weft_runtime_new(NULL, &rt) != 0)
        return 1; /* out of memory at start-up: the exit frees what was made */
    int rc = 1;
    if (weft_runtime_block_on(rt, WEFT_FUTURE(&m), &rc) != 0)
        rc = 1;
    weft_runtime_free(rt);
    weft_semaphore_destroy(&srv.slots);
    weft_broadcast_tx_drop(&srv.tx);
    weft_cancel_token_release(srv.root);
    return rc;
}
