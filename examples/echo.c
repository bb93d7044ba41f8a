/* examples/echo.c - a TCP echo server and a client, on 127.0.0.1.
 *
 *   echo server PORT        serve until killed (one task per connection)
 *   echo client PORT N      send N lines, check each echo, print timing
 *   echo                    both in one process: server on an ephemeral
 *                           port, 4 clients x 1000 round trips, then exit
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

/* ---- server: one task per connection ------------------------------------- */
typedef struct {
    WEFT_FRAME;
    weft_tcp_stream_t s;
    char buf[4096];
    ssize_t n;
    weft_tcp_io_t op;
} conn_t;
static void conn_cleanup(conn_t *c) { weft_tcp_close(&c->s); } /* also on cancellation */
WEFT_ASYNC_WITH_DROP(conn_t, conn_fn, weft_unit_t, conn_cleanup)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->op, weft_tcp_read(&self->s, self->buf, sizeof self->buf), &self->n);
        if (self->n <= 0) /* 0: the client closed; < 0: an error such as -ECONNRESET */
            break;
        WEFT_AWAIT(&self->op, weft_tcp_write_all(&self->s, self->buf, (size_t)self->n), &self->n);
        if (self->n < 0)
            break;
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t *l;
    long max_conns; /* -1: forever */
    long served;
    int rc;
    weft_tcp_stream_t s;
    weft_tcp_accept_t acc;
} server_t;
WEFT_ASYNC(server_t, server_fn, int)
{
    WEFT_BEGIN();
    for (self->served = 0; self->max_conns < 0 || self->served < self->max_conns; self->served++) {
        WEFT_AWAIT(&self->acc, weft_tcp_accept(self->l, &self->s, NULL), &self->rc);
        if (self->rc != 0) {
            fprintf(stderr, "accept: %s\n", weft_strerror(self->rc));
            WEFT_RETURN(self->rc);
        }
        weft_tcp_set_nodelay(&self->s, true);
        conn_t c = { WEFT_FRAME_INIT(conn_fn), .s = self->s };
        if (weft_spawn(&c, NULL) != 0)
            weft_tcp_close(&c.s); /* out of memory: refuse this one */
    }
    WEFT_RETURN(0);
    WEFT_END();
}

/* ---- client --------------------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    uint16_t port;
    long lines, i;
    int rc;
    ssize_t n;
    char out[64], in[64];
    weft_tcp_stream_t s;
    weft_tcp_connect_t c;
    weft_tcp_io_t op;
} client_t;
static void client_cleanup(client_t *c) { weft_tcp_close(&c->s); }
WEFT_ASYNC_WITH_DROP(client_t, client_fn, int, client_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->c, weft_tcp_connect_ip("127.0.0.1", self->port, &self->s), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    weft_tcp_set_nodelay(&self->s, true);
    for (self->i = 0; self->i < self->lines; self->i++) {
        snprintf(self->out, sizeof self->out, "line %08ld\n", self->i);
        WEFT_AWAIT(&self->op, weft_tcp_write_all(&self->s, self->out, strlen(self->out)), &self->n);
        if (self->n < 0)
            WEFT_RETURN((int)self->n);
        WEFT_AWAIT(&self->op, weft_tcp_read_exact(&self->s, self->in, strlen(self->out)), &self->n);
        if (self->n < 0)
            WEFT_RETURN((int)self->n);
        if (memcmp(self->in, self->out, strlen(self->out)) != 0)
            WEFT_RETURN(WEFT_EINVAL);
    }
    WEFT_RETURN(0);
    WEFT_END();
}

/* ---- main ------------------------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    int mode; /* 0 both, 1 server, 2 client */
    uint16_t port;
    long lines;
    int rc, i, err;
    weft_tcp_listener_t l;
    server_t server;
    weft_join_handle_t sh, ch[4];
    int crc[4];
    uint64_t t0;
} main_t;
static void main_cleanup(main_t *m) { weft_tcp_listener_close(&m->l); }
WEFT_ASYNC_WITH_DROP(main_t, main_fn, int, main_cleanup)
{
    WEFT_BEGIN();
    if (self->mode == 2) {
        self->t0 = weft_now_ns();
        {
            client_t c = { WEFT_FRAME_INIT(client_fn), .port = self->port, .lines = self->lines };
            if (weft_spawn(&c, &self->ch[0]) != 0)
                WEFT_RETURN(1);
        }
        WEFT_AWAIT_REF(weft_join(&self->ch[0], &self->rc), &self->err);
        printf("%ld round trips in %.1f ms: %s\n", self->lines, (double)(weft_now_ns() - self->t0) / 1e6,
               weft_strerror(self->rc));
        WEFT_RETURN(self->rc == 0 ? 0 : 1);
    }
    self->rc = weft_tcp_listen_ip("127.0.0.1", self->port, 128, &self->l);
    if (self->rc != 0) {
        fprintf(stderr, "listen: %s\n", weft_strerror(self->rc));
        WEFT_RETURN(1);
    }
    printf("echo server on 127.0.0.1:%u\n", weft_tcp_listener_port(&self->l));
    fflush(stdout);
    if (self->mode == 1) {
        self->server = (server_t){ WEFT_FRAME_INIT(server_fn), .l = &self->l, .max_conns = -1 };
        WEFT_AWAIT_REF(&self->server, &self->rc);
        WEFT_RETURN(self->rc);
    }
    {
        server_t s = { WEFT_FRAME_INIT(server_fn), .l = &self->l, .max_conns = 4 };
        if (weft_spawn(&s, &self->sh) != 0)
            WEFT_RETURN(1);
    }
    self->t0 = weft_now_ns();
    for (self->i = 0; self->i < 4; self->i++) {
        client_t c = { WEFT_FRAME_INIT(client_fn), .port = weft_tcp_listener_port(&self->l), .lines = 1000 };
        if (weft_spawn(&c, &self->ch[self->i]) != 0)
            WEFT_RETURN(1);
    }
    for (self->i = 0; self->i < 4; self->i++) {
        WEFT_AWAIT_REF(weft_join(&self->ch[self->i], &self->crc[self->i]), &self->err);
        if (self->err != 0 || self->crc[self->i] != 0) {
            fprintf(stderr, "client %d: %s\n", self->i, weft_strerror(self->err ? self->err : self->crc[self->i]));
            WEFT_RETURN(1);
        }
    }
    printf("4 clients x 1000 round trips in %.1f ms, all echoes matched\n",
           (double)(weft_now_ns() - self->t0) / 1e6);
    WEFT_AWAIT_REF(weft_join(&self->sh, &self->rc), &self->err);
    WEFT_RETURN(self->rc);
    WEFT_END();
}

int main(int argc, char **argv)
{
    main_t m = { WEFT_FRAME_INIT(main_fn) };
    if (argc >= 3 && strcmp(argv[1], "server") == 0) {
        m.mode = 1;
        m.port = (uint16_t)atoi(argv[2]);
    } else if (argc >= 4 && strcmp(argv[1], "client") == 0) {
        m.mode = 2;
        m.port = (uint16_t)atoi(argv[2]);
        m.lines = atol(argv[3]);
    } else if (argc != 1) {
        fprintf(stderr, "usage: echo [server PORT | client PORT N]\n");
        return 2;
    }
    weft_runtime_t *rt;
    if (weft_runtime_new(NULL, &rt) != 0)
        return 1;
    int rc = 1;
    int brc = weft_runtime_block_on(rt, WEFT_FUTURE(&m), &rc);
    if (brc != 0) {
        fprintf(stderr, "block_on: %s\n", weft_strerror(brc));
        rc = 1;
    }
    weft_runtime_free(rt);
    return rc;
}
