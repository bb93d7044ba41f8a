/* examples/reuseport.c - several processes serving one port: each runs
 * its own weft runtime with its own listener, made with the socket
 * builder's SO_REUSEPORT, and the kernel spreads incoming connections
 * over them (by a hash of each connection's addresses).
 *
 *   reuseport PORT NAME     listen on 127.0.0.1:PORT (0: pick one and
 *                           print it), answer every connection with
 *                           "NAME\n" and close it; print "listening PORT"
 *                           once ready; run until SIGTERM or SIGINT.
 *
 * Start the first with port 0, then the others with the port it printed
 * (tests/test_reuseport.py does this with 3 processes). Every process that
 * shares the port must set SO_REUSEPORT and run as the same user.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

typedef struct {
    WEFT_FRAME;
    weft_tcp_stream_t s;
    const char *reply;
    size_t len;
    ssize_t n;
    weft_tcp_io_t op;
} conn_t;
static void conn_cleanup(conn_t *c) { weft_tcp_close(&c->s); }
WEFT_ASYNC_WITH_DROP(conn_t, conn_fn, weft_unit_t, conn_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_tcp_write_all(&self->s, self->reply, self->len), &self->n);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    uint16_t port;
    char reply[64];
    int rc;
    weft_socket_builder_t b;
    weft_tcp_listener_t l;
    weft_tcp_stream_t s;
    weft_tcp_accept_t acc;
} server_t;
static void server_cleanup(server_t *sv) { weft_tcp_listener_close(&sv->l); }
WEFT_ASYNC_WITH_DROP(server_t, server_fn, int, server_cleanup)
{
    WEFT_BEGIN();
    weft_socket_builder_init(&self->b);
    self->b.reuseport = WEFT_SOCKOPT_ON;
    self->rc = weft_tcp_listen_ip_with(&self->b, "127.0.0.1", self->port, &self->l);
    if (self->rc != 0) {
        fprintf(stderr, "listen: %s\n", weft_strerror(self->rc));
        WEFT_RETURN(1);
    }
    printf("listening %u\n", (unsigned)weft_tcp_listener_port(&self->l));
    fflush(stdout);
    for (;;) {
        WEFT_AWAIT(&self->acc, weft_tcp_accept(&self->l, &self->s, NULL), &self->rc);
        if (self->rc != 0) {
            fprintf(stderr, "accept: %s\n", weft_strerror(self->rc));
            continue; /* fd exhaustion backs off inside accept; other errors are per connection */
        }
        conn_t c = { WEFT_FRAME_INIT(conn_fn), .s = self->s, .reply = self->reply, .len = strlen(self->reply) };
        if (weft_spawn(&c, NULL) != 0)
            weft_tcp_close(&c.s);
    }
    WEFT_END();
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT NAME\n", argv[0]);
        return 2;
    }
    server_t sv = { WEFT_FRAME_INIT(server_fn), .port = (uint16_t)atoi(argv[1]) };
    snprintf(sv.reply, sizeof sv.reply, "%s\n", argv[2]);
    weft_runtime_t *rt;
    if (weft_runtime_new(NULL, &rt) != 0)
        return 1;
    /* The server runs until SIGTERM/SIGINT, whose default action ends the
     * process (the kernel closes the listener; the others keep serving). */
    int rc = 1;
    if (weft_runtime_block_on(rt, WEFT_FUTURE(&sv), &rc) != 0)
        rc = 1;
    weft_runtime_free(rt);
    return rc;
}
