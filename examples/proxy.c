/* examples/proxy.c - a TCP proxy on weft_io_copy_bidirectional.
 *
 *   proxy LISTEN_IP:PORT UPSTREAM_IP:PORT [--max-conns N] [--idle-ms MS]
 *
 * Every accepted client gets a task that connects to the upstream (within
 * 5 s) and then copies bytes both ways until both sides have finished:
 * a client's half-close (shutdown of its write side) reaches the upstream
 * as a FIN, and the upstream's answer still comes back.
 *
 *   - The cap: a semaphore of --max-conns permits (default 256). A client
 *     that arrives when every permit is held is refused: accepted and
 *     closed at once (it reads end of stream), so the backlog never fills
 *     with clients that would wait for minutes. Refusing keeps the proxy's
 *     memory bounded by max-conns * 2 copy buffers.
 *   - The idle timeout: --idle-ms (default 60000; 0 = none) is the copy's
 *     own option: no byte in either direction for that long ends the copy
 *     with WEFT_ETIMEDOUT and both connections are closed. The copy keeps
 *     one timer and only resets it when it fires early, so busy
 *     connections pay no timer operation per transfer.
 *   - An upstream that refuses (or does not answer in 5 s): the client is
 *     closed.
 *   - SIGINT or SIGTERM: the accept loop stops, a cancellation token ends
 *     every session (their copies are dropped: bytes in flight are lost),
 *     and the program waits for the sessions to release their permits. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#define CONNECT_TIMEOUT_MS 5000

static struct {
    weft_semaphore_t slots;    /* one permit per connection */
    weft_cancel_token_t *root; /* cancelled by SIGINT or SIGTERM */
    struct sockaddr_storage upstream;
    socklen_t upstream_len;
    uint64_t idle_ms;
} px;

typedef struct {
    WEFT_FRAME;
    weft_tcp_stream_t client, up;
    int rc, which;
    weft_io_copy_opts_t opts;
    weft_io_copied2_t copied;
    weft_tcp_connect_t conn;
    weft_timeout_t conn_to;
    weft_io_copy_t copy;
    weft_cancelled_t stop;
    weft_select_t sel;
} session_t;

/* Runs whether the session ended or was dropped (runtime shutdown). */
static void session_cleanup(session_t *s)
{
    weft_tcp_close(&s->client);
    weft_tcp_close(&s->up);
    weft_semaphore_release(&px.slots, 1);
}

WEFT_ASYNC_WITH_DROP(session_t, session_fn, weft_unit_t, session_cleanup)
{
    WEFT_BEGIN();
    self->rc = WEFT_ETIMEDOUT; /* what the timeout leaves when it fires */
    self->conn = weft_tcp_connect((struct sockaddr *)&px.upstream, px.upstream_len, &self->up);
    WEFT_AWAIT(&self->conn_to, weft_timeout_ms(WEFT_FUTURE(&self->conn), &self->rc, CONNECT_TIMEOUT_MS), NULL);
    if (self->rc != 0) {
        fprintf(stderr, "proxy: upstream: %s\n", weft_strerror(self->rc));
        WEFT_RETURN(WEFT_UNIT); /* the cleanup closes the client */
    }
    (void)weft_tcp_set_nodelay(&self->client, true);
    (void)weft_tcp_set_nodelay(&self->up, true);
    self->opts.idle_ms = px.idle_ms;
    WEFT_SELECT_BIASED(&self->sel, &self->which,
                       WEFT_ARM(&self->copy,
                                weft_io_copy_bidirectional(weft_tcp_stream_as(&self->client),
                                                           weft_tcp_stream_as(&self->up), &self->opts),
                                &self->copied),
                       WEFT_ARM(&self->stop, weft_cancel_token_cancelled(px.root), NULL));
    if (self->which == 0 && self->copied.rc != 0 && self->copied.rc != WEFT_ETIMEDOUT)
        fprintf(stderr, "proxy: connection ended: %s\n", weft_strerror(self->copied.rc));
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    const char *ip;
    uint16_t port;
    size_t max_conns;
    int rc, which;
    weft_tcp_listener_t l;
    weft_tcp_stream_t s;
    weft_signal_t sigint, sigterm; /* kept across the loop's selects: no signal is missed */
    weft_tcp_accept_t acc;
    weft_select_t sel;
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
    self->rc = weft_tcp_listen_ip(self->ip, self->port, 128, &self->l);
    if (self->rc != 0) {
        fprintf(stderr, "proxy: listen: %s\n", weft_strerror(self->rc));
        WEFT_RETURN(1);
    }
    /* Armed before the port is announced: a SIGINT from then on stops us
     * gracefully, even one that comes before the loop's first select. */
    if (weft_signal_arm(&self->sigint) != 0 || weft_signal_arm(&self->sigterm) != 0)
        WEFT_RETURN(1);
    printf("listening on %s:%u\n", self->ip, weft_tcp_listener_port(&self->l));
    fflush(stdout);
    for (;;) {
        WEFT_SELECT(&self->sel, &self->which, WEFT_ARM(&self->acc, weft_tcp_accept(&self->l, &self->s, NULL), &self->rc),
                    WEFT_ARM_REF(&self->sigint, NULL), WEFT_ARM_REF(&self->sigterm, NULL));
        if (self->which != 0)
            break; /* SIGINT or SIGTERM */
        if (self->rc != 0)
            continue; /* a connection that failed before it was accepted */
        if (weft_semaphore_try_acquire(&px.slots) != 0) {
            weft_tcp_close(&self->s); /* over the cap: refused */
            continue;
        }
        session_t sess = { WEFT_FRAME_INIT(session_fn), .client = self->s };
        if (weft_spawn(&sess, NULL) != 0)
            session_cleanup(&sess); /* out of memory: this client is closed */
    }
    weft_cancel_token_cancel(px.root);
    weft_tcp_listener_close(&self->l);
    /* Each session holds a permit until it has ended. */
    WEFT_AWAIT(&self->all, weft_semaphore_acquire_many(&px.slots, self->max_conns), NULL);
    WEFT_RETURN(0);
    WEFT_END();
}

/* "ip:port" (the last colon splits, so "::1:80" works) into ip and port. */
static bool split_addr(char *arg, const char **ip, uint16_t *port)
{
    char *colon = strrchr(arg, ':');
    if (colon == NULL)
        return false;
    *colon = '\0';
    long v = atol(colon + 1);
    if (v < 0 || v > 65535)
        return false;
    *ip = arg;
    *port = (uint16_t)v;
    return true;
}

/* A numeric IPv4 or IPv6 address and a port into a socket address. */
static bool parse_ip(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return true;
    }
    return false;
}

static int usage(void)
{
    fprintf(stderr, "usage: proxy LISTEN_IP:PORT UPSTREAM_IP:PORT [--max-conns N] [--idle-ms MS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    main_t m = { WEFT_FRAME_INIT(main_fn), .max_conns = 256, .sigint = weft_signal_recv(SIGINT),
                 .sigterm = weft_signal_recv(SIGTERM) };
    px.idle_ms = 60000;
    const char *up_ip;
    uint16_t up_port;
    if (argc < 3 || !split_addr(argv[1], &m.ip, &m.port) || !split_addr(argv[2], &up_ip, &up_port))
        return usage();
    for (int i = 3; i < argc; i += 2) {
        long v = i + 1 < argc ? atol(argv[i + 1]) : -1;
        if (strcmp(argv[i], "--max-conns") == 0 && v >= 1)
            m.max_conns = (size_t)v;
        else if (strcmp(argv[i], "--idle-ms") == 0 && v >= 0)
            px.idle_ms = (uint64_t)v;
        else
            return usage();
    }
    if (!parse_ip(up_ip, up_port, &px.upstream, &px.upstream_len))
        return usage();
    weft_runtime_t *rt;
    if (weft_cancel_token_new(&px.root) != 0 || weft_semaphore_init(&px.slots, m.max_conns) != 0 ||
        weft_runtime_new(NULL, &rt) != 0)
        return 1; /* out of memory at start-up: the exit frees what was made */
    int rc = 1;
    if (weft_runtime_block_on(rt, WEFT_FUTURE(&m), &rc) != 0)
        rc = 1;
    weft_runtime_free(rt);
    weft_semaphore_destroy(&px.slots);
    weft_cancel_token_release(px.root);
    return rc;
}
