/* tests/test_socket.c - weft/socket.h on 127.0.0.1 and /tmp: the builder
 * (SO_REUSEADDR as a choice, SO_REUSEPORT sharing a port, buffer sizes,
 * linger, nodelay inherited by accepted streams, a local address for a
 * connect, bad input), adopting listening and connected fds and handing
 * them back (and every wrong kind of fd), Unix datagram sockets (paths,
 * a pair, an unbound sender, truncation) and passing fds over Unix stream
 * and datagram sockets (close-on-exec, truncated control data closes what
 * arrived: the process's open fds are counted before and after). Each step
 * runs through block_on from the test thread, bounded by the Check
 * timeout. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>

#include "testlib.h"
#include "stdfd.h"
#include "../reactor/io_driver.h"

/* Runs fn(arg) inside rt (the calls that register need a runtime). */
typedef int (*in_rt_fn)(void *arg);
typedef struct {
    weft_future_t future;
    in_rt_fn fn;
    void *arg;
} in_rt_t;
static weft_poll_t in_rt_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx;
    in_rt_t *r = (in_rt_t *)(void *)f;
    *(int *)out = r->fn(r->arg);
    return WEFT_READY;
}
static const weft_future_vtable_t in_rt_vt = { in_rt_poll, NULL, NULL, sizeof(in_rt_t), sizeof(int), "in_rt" };
static int in_rt(weft_runtime_t *rt, in_rt_fn fn, void *arg)
{
    in_rt_t f = { { &in_rt_vt }, fn, arg };
    int rc = 1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&f), &rc), 0);
    return rc;
}

/* Awaits fut on rt; returns its ssize_t or int output (by size). */
static ssize_t await_ssize(weft_runtime_t *rt, weft_future_t *fut)
{
    ssize_t n = -12345;
    ck_assert_int_eq(weft_runtime_block_on(rt, fut, &n), 0);
    return n;
}
static int await_int(weft_runtime_t *rt, weft_future_t *fut)
{
    int n = -12345;
    ck_assert_int_eq(weft_runtime_block_on(rt, fut, &n), 0);
    return n;
}

static int sockopt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof v;
    ck_assert_int_eq(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

/* The open fds, but for the blocking detector's: its watchdog opens a
 * worker thread's /proc/.../task/<tid>/schedstat the first time it finds
 * that worker inside a poll, whenever that is (docs/blocking.md). */
static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += watchdog_fd_tid(e->d_name) == 0;
    closedir(d);
    return n;
}

/* ---- The builder ---------------------------------------------------------------------- */
typedef struct {
    weft_socket_builder_t b;
    const char *ip;
    uint16_t port;
    weft_tcp_listener_t *l;
} listen_args_t;
static int do_listen(void *arg)
{
    listen_args_t *a = arg;
    return weft_tcp_listen_ip_with(&a->b, a->ip, a->port, a->l);
}

START_TEST(builder_options)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_tcp_listener_t l1, l2, l3;
    listen_args_t a = { .ip = "127.0.0.1", .l = &l1 };
    weft_socket_builder_init(&a.b);
    a.b.reuseport = WEFT_SOCKOPT_ON;
    a.b.nodelay = WEFT_SOCKOPT_ON;
    a.b.rcvbuf = 65536;
    a.b.backlog = 8;
    ck_assert_int_eq(in_rt(rt, do_listen, &a), 0);
    ck_assert_int_eq(sockopt(l1.io_->fd, SOL_SOCKET, SO_REUSEPORT), 1);
    ck_assert_int_eq(sockopt(l1.io_->fd, SOL_SOCKET, SO_REUSEADDR), 1); /* the listener default */
    ck_assert_int_ge(sockopt(l1.io_->fd, SOL_SOCKET, SO_RCVBUF), 65536);
    a.port = weft_tcp_listener_port(&l1);
    /* A second listener on the same port, both with reuseport. */
    a.l = &l2;
    ck_assert_int_eq(in_rt(rt, do_listen, &a), 0);
    /* Without reuseport the port is taken. */
    a.l = &l3;
    a.b.reuseport = WEFT_SOCKOPT_DEFAULT;
    ck_assert_int_eq(in_rt(rt, do_listen, &a), -EADDRINUSE);
    weft_tcp_listener_close(&l2);
    /* reuseaddr off, on a port of its own. */
    a.b.reuseaddr = WEFT_SOCKOPT_OFF;
    a.port = 0;
    ck_assert_int_eq(in_rt(rt, do_listen, &a), 0);
    ck_assert_int_eq(sockopt(l3.io_->fd, SOL_SOCKET, SO_REUSEADDR), 0);
    weft_tcp_listener_close(&l3);
    /* Bad input. */
    a.b.reuseaddr = WEFT_SOCKOPT_DEFAULT;
    a.b.v6only = WEFT_SOCKOPT_ON; /* not on IPv4 */
    ck_assert_int_eq(in_rt(rt, do_listen, &a), WEFT_EINVAL);
    a.b.v6only = WEFT_SOCKOPT_DEFAULT;
    a.b.sndbuf = -1;
    ck_assert_int_eq(in_rt(rt, do_listen, &a), WEFT_EINVAL);
    a.b.sndbuf = 0;
    a.b.reuseport = (weft_sockopt_t)7;
    ck_assert_int_eq(in_rt(rt, do_listen, &a), WEFT_EINVAL);
    a.b.reuseport = WEFT_SOCKOPT_DEFAULT;
    a.ip = "not-an-ip";
    ck_assert_int_eq(in_rt(rt, do_listen, &a), WEFT_EINVAL);
    ck_assert_int_eq(weft_socket_builder_bind_local_ip(&a.b, "nope", 0), WEFT_EINVAL);

    /* Connect from 127.0.0.2 with nodelay off and linger on. */
    weft_socket_builder_t cb;
    weft_socket_builder_init(&cb);
    ck_assert_int_eq(weft_socket_builder_bind_local_ip(&cb, "127.0.0.2", 0), 0);
    cb.linger_s = 1;
    cb.nodelay = WEFT_SOCKOPT_OFF;
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(weft_tcp_listener_port(&l1)) };
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    weft_tcp_stream_t c, s;
    weft_socket_connect_t cf = weft_tcp_connect_with(&cb, (struct sockaddr *)&to, sizeof to, &c);
    ck_assert_int_eq(await_int(rt, WEFT_FUTURE(&cf)), 0);
    struct linger lg;
    socklen_t lgl = sizeof lg;
    ck_assert_int_eq(getsockopt(c.io_->fd, SOL_SOCKET, SO_LINGER, &lg, &lgl), 0);
    ck_assert_int_eq(lg.l_onoff, 1);
    ck_assert_int_eq(lg.l_linger, 1);
    ck_assert_int_eq(sockopt(c.io_->fd, IPPROTO_TCP, TCP_NODELAY), 0);
    struct sockaddr_storage peer;
    weft_tcp_accept_t af = weft_tcp_accept(&l1, &s, &peer);
    ck_assert_int_eq(await_int(rt, WEFT_FUTURE(&af)), 0);
    char ip[64];
    inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, ip, sizeof ip);
    ck_assert_str_eq(ip, "127.0.0.2");
    ck_assert_int_eq(sockopt(s.io_->fd, IPPROTO_TCP, TCP_NODELAY), 1); /* inherited from the listener */
    /* Bytes flow. */
    weft_tcp_io_t w = weft_tcp_write_all(&c, "hi", 2);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&w)), 2);
    char buf[4];
    weft_tcp_io_t r = weft_tcp_read_exact(&s, buf, 2);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&r)), 2);
    ck_assert_int_eq(memcmp(buf, "hi", 2), 0);
    /* A connect with a bad builder, and to a non-IP address. */
    cb.sndbuf = -5;
    cf = weft_tcp_connect_with(&cb, (struct sockaddr *)&to, sizeof to, &c);
    ck_assert_int_eq(await_int(rt, WEFT_FUTURE(&cf)), WEFT_EINVAL);
    cf = weft_tcp_connect_with(NULL, NULL, 0, &c);
    ck_assert_int_eq(await_int(rt, WEFT_FUTURE(&cf)), WEFT_EINVAL);
    weft_tcp_close(&c);
    weft_tcp_close(&s);
    weft_tcp_listener_close(&l1);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Adoption and hand-back --------------------------------------------------------------- */
typedef struct {
    int fd, which;
    void *out;
} adopt_args_t;
static int do_adopt(void *arg)
{
    adopt_args_t *a = arg;
    switch (a->which) {
    case 0:
        return weft_tcp_listener_from_fd(a->fd, a->out);
    case 1:
        return weft_tcp_stream_from_fd(a->fd, a->out);
    case 2:
        return weft_unix_listener_from_fd(a->fd, a->out);
    default:
        return weft_unix_stream_from_fd(a->fd, a->out);
    }
}
static int adopt(weft_runtime_t *rt, int fd, int which, void *out)
{
    adopt_args_t a = { fd, which, out };
    return in_rt(rt, do_adopt, &a);
}

START_TEST(adopt_and_hand_back)
{
    weft_runtime_t *rt = shape_rt(_i);
    /* A listening socket made by hand (blocking, as a service manager
     * would pass it). */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(lfd, 4), 0);
    weft_tcp_listener_t l;
    weft_tcp_stream_t ts;
    ck_assert_int_eq(adopt(rt, lfd, 1, &ts), WEFT_EINVAL); /* a listener is no stream */
    ck_assert_int_eq(fcntl(lfd, F_GETFL) & O_NONBLOCK, 0);    /* flags untouched on error */
    ck_assert_int_eq(adopt(rt, lfd, 2, &l), WEFT_EINVAL);     /* nor a Unix listener */
    ck_assert_int_eq(adopt(rt, lfd, 0, &l), 0);
    ck_assert_int_ne(fcntl(lfd, F_GETFL) & O_NONBLOCK, 0);
    weft_tcp_listener_t l2;
    ck_assert_int_eq(adopt(rt, lfd, 0, &l2), -EEXIST); /* already registered here */
    uint16_t port = weft_tcp_listener_port(&l);
    weft_tcp_stream_t c, s;
    weft_tcp_connect_t cf = weft_tcp_connect_ip("127.0.0.1", port, &c);
    ck_assert_int_eq(await_int(rt, WEFT_FUTURE(&cf)), 0);
    weft_tcp_accept_t af = weft_tcp_accept(&l, &s, NULL);
    ck_assert_int_eq(await_int(rt, WEFT_FUTURE(&af)), 0);
    /* Hand the accepted stream back: a plain fd that still works. */
    int sfd = weft_tcp_stream_into_fd(&s);
    ck_assert_int_ge(sfd, 0);
    ck_assert_ptr_null(s.io_);
    ck_assert_int_eq(weft_tcp_stream_into_fd(&s), -EBADF);
    ck_assert_int_eq(send(sfd, "ok", 2, MSG_NOSIGNAL), 2);
    char buf[4];
    weft_tcp_io_t r = weft_tcp_read_exact(&c, buf, 2);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&r)), 2);
    ck_assert_int_eq(memcmp(buf, "ok", 2), 0);
    /* ... and adopt it again as a stream. */
    ck_assert_int_eq(adopt(rt, sfd, 3, &s), WEFT_EINVAL); /* not Unix */
    ck_assert_int_eq(adopt(rt, sfd, 1, &s), 0);
    weft_tcp_io_t w = weft_tcp_write_all(&s, "ab", 2);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&w)), 2);
    r = weft_tcp_read_exact(&c, buf, 2);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&r)), 2);
    ck_assert_int_eq(memcmp(buf, "ab", 2), 0);
    /* The listener back out: still listening, closed by us. */
    ck_assert_int_eq(weft_tcp_listener_into_fd(&l), lfd);
    ck_assert_int_eq(sockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN), 1);
    close(lfd);
    weft_tcp_close(&s);
    weft_tcp_close(&c);

    /* Wrong kinds of fd. */
    ck_assert_int_eq(adopt(rt, -1, 0, &l), -EBADF);
    int e = eventfd(0, EFD_CLOEXEC);
    ck_assert_int_eq(adopt(rt, e, 0, &l), -ENOTSOCK);
    close(e);
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(adopt(rt, u, 1, &ts), WEFT_EINVAL); /* a datagram socket */
    close(u);
    int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(adopt(rt, t, 1, &ts), -ENOTCONN);
    close(t);
    /* Unix: a listener, and a connected pair. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/weft_test_socket_adopt_%d.sock", (int)getpid());
    unlink(path);
    int ul = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    strcpy(un.sun_path, path);
    ck_assert_int_eq(bind(ul, (struct sockaddr *)&un, sizeof un), 0);
    ck_assert_int_eq(listen(ul, 4), 0);
    weft_unix_listener_t ulh;
    ck_assert_int_eq(adopt(rt, ul, 0, &l), WEFT_EINVAL); /* not TCP */
    ck_assert_int_eq(adopt(rt, ul, 2, &ulh), 0);
    char p[108];
    ck_assert_int_eq(weft_unix_listener_path(&ulh, p, sizeof p), 0);
    ck_assert_str_eq(p, path);
    ck_assert_int_eq(weft_unix_listener_into_fd(&ulh), ul);
    close(ul);
    unlink(path);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    weft_unix_stream_t us;
    ck_assert_int_eq(adopt(rt, sv[0], 3, &us), 0);
    ck_assert_int_eq(send(sv[1], "u", 1, 0), 1);
    weft_unix_io_t ur = weft_unix_read(&us, buf, sizeof buf);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&ur)), 1);
    ck_assert_int_eq(weft_unix_stream_into_fd(&us), sv[0]);
    close(sv[0]);
    close(sv[1]);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Unix datagram sockets ---------------------------------------------------------------- */
/* Paths of this process's own (two runs of the suite at once, say a
 * sanitizer build's beside the plain one, must not meet). */
static char dg_paths[2][64];
static const char *dg_path(int which)
{
    snprintf(dg_paths[which], sizeof dg_paths[which], "/tmp/weft_test_dgram_%c_%d.sock", 'a' + which, (int)getpid());
    return dg_paths[which];
}
#define DG_A dg_path(0)
#define DG_B dg_path(1)
typedef struct {
    weft_unix_dgram_t *a, *b, *c, *p, *q;
} dgram_args_t;
static int do_dgram_open(void *arg)
{
    dgram_args_t *d = arg;
    unlink(DG_A);
    unlink(DG_B);
    int rc = weft_unix_dgram_bind(DG_A, d->a);
    if (rc == 0)
        rc = weft_unix_dgram_bind(DG_B, d->b);
    if (rc == 0)
        rc = weft_unix_dgram_unbound(d->c);
    if (rc == 0)
        rc = weft_unix_dgram_pair(d->p, d->q);
    return rc;
}
static int do_dgram_bad(void *arg)
{
    (void)arg;
    weft_unix_dgram_t x;
    if (weft_unix_dgram_bind("", &x) != WEFT_EINVAL)
        return 1;
    char longp[200];
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    if (weft_unix_dgram_bind(longp, &x) != WEFT_EINVAL)
        return 2;
    if (weft_unix_dgram_bind(DG_A, &x) != -EADDRINUSE)
        return 3;
    return 0;
}

START_TEST(unix_dgram_round_trips)
{
    weft_runtime_t *rt = shape_rt(_i);
    weft_unix_dgram_t a, b, c, p, q;
    dgram_args_t d = { &a, &b, &c, &p, &q };
    ck_assert_int_eq(in_rt(rt, do_dgram_open, &d), 0);
    ck_assert_int_eq(in_rt(rt, do_dgram_bad, NULL), 0);
    char path[sizeof(struct sockaddr_un)], buf[16];
    ck_assert_int_eq(weft_unix_dgram_local_path(&a, path, sizeof path), 0);
    ck_assert_str_eq(path, DG_A);
    /* a -> b, with the sender's path. */
    weft_unix_msg_t m = weft_unix_dgram_send_to(&a, "hello", 5, DG_B);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 5);
    m = weft_unix_dgram_recv_from(&b, buf, sizeof buf, path, sizeof path);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 5);
    ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
    ck_assert_str_eq(path, DG_A);
    /* An unbound sender has no path. A long datagram is cut to the buffer. */
    m = weft_unix_dgram_send_to(&c, "0123456789", 10, DG_B);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 10);
    m = weft_unix_dgram_recv_from(&b, buf, 4, path, sizeof path);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 4);
    ck_assert_str_eq(path, "");
    /* A receive waits for the datagram (sent after the first poll). */
    m = weft_unix_dgram_recv(&a, buf, sizeof buf);
    weft_timeout_t to = weft_timeout_ms(WEFT_FUTURE(&m), NULL, 20);
    ck_assert_int_eq(await_int(rt, WEFT_FUTURE(&to)), WEFT_ETIMEDOUT);
    /* Connected: send and recv without paths. */
    ck_assert_int_eq(weft_unix_dgram_connect(&b, DG_A), 0);
    m = weft_unix_dgram_send(&b, "x", 1);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 1);
    m = weft_unix_dgram_recv(&a, buf, sizeof buf);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 1);
    /* The pair. */
    m = weft_unix_dgram_send(&p, "pq", 2);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 2);
    m = weft_unix_dgram_recv(&q, buf, sizeof buf);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 2);
    /* Errors: no such path, a bad path, closed. */
    m = weft_unix_dgram_send_to(&a, "x", 1, "/tmp/weft_test_no_such.sock");
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), -ENOENT);
    m = weft_unix_dgram_send_to(&a, "x", 1, "");
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), WEFT_EINVAL);
    weft_unix_dgram_close(&c);
    m = weft_unix_dgram_send_to(&c, "x", 1, DG_B);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), -EBADF);
    ck_assert_int_eq(weft_unix_dgram_connect(&c, DG_B), -EBADF);
    weft_unix_dgram_close(&a);
    weft_unix_dgram_close(&b);
    weft_unix_dgram_close(&p);
    weft_unix_dgram_close(&q);
    unlink(DG_A);
    unlink(DG_B);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Passing fds ------------------------------------------------------------------------ */
typedef struct {
    int sv[2];
    weft_unix_stream_t *s0, *s1;
    weft_unix_dgram_t *p, *q;
} pass_args_t;
static int do_pass_open(void *arg)
{
    pass_args_t *a = arg;
    int rc = weft_unix_stream_from_fd(a->sv[0], a->s0);
    if (rc == 0)
        rc = weft_unix_stream_from_fd(a->sv[1], a->s1);
    return rc != 0 ? rc : weft_unix_dgram_pair(a->p, a->q);
}

START_TEST(pass_fds)
{
    weft_runtime_t *rt = shape_rt(_i);
    int fds_before = open_fds(); /* with the runtime's own */
    weft_unix_stream_t s0, s1;
    weft_unix_dgram_t p, q;
    pass_args_t a = { { -1, -1 }, &s0, &s1, &p, &q };
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a.sv), 0);
    ck_assert_int_eq(in_rt(rt, do_pass_open, &a), 0);
    /* A pipe's write end and an eventfd over the stream. */
    int pp[2];
    ck_assert_int_eq(pipe2(pp, O_CLOEXEC), 0);
    int e = eventfd(3, EFD_CLOEXEC);
    int give[2] = { pp[1], e }, got[4] = { -1, -1, -1, -1 };
    size_t ngot = 99;
    char buf[8];
    weft_unix_msg_t m = weft_unix_send_fds(&s0, "F", 1, give, 2);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 1);
    m = weft_unix_recv_fds(&s1, buf, sizeof buf, got, 4, &ngot);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 1);
    ck_assert_int_eq(buf[0], 'F');
    ck_assert_uint_eq(ngot, 2);
    ck_assert_int_ne(fcntl(got[0], F_GETFD) & FD_CLOEXEC, 0);
    ck_assert_int_ne(fcntl(got[1], F_GETFD) & FD_CLOEXEC, 0);
    ck_assert_int_eq(write(got[0], "z", 1), 1); /* the received pipe end writes into ours */
    ck_assert_int_eq(read(pp[0], buf, 1), 1);
    ck_assert_int_eq(buf[0], 'z');
    uint64_t v = 0;
    ck_assert_int_eq(read(got[1], &v, sizeof v), 8);
    ck_assert_int_eq(v, 3);
    close(got[0]);
    close(got[1]);
    /* Room for one fd, three sent: -EMSGSIZE, and nothing leaks. */
    int three[3] = { pp[0], pp[1], e };
    m = weft_unix_send_fds(&s0, "T", 1, three, 3);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 1);
    int fds_mid = open_fds();
    m = weft_unix_recv_fds(&s1, buf, sizeof buf, got, 1, &ngot);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), -EMSGSIZE);
    ck_assert_uint_eq(ngot, 0);
    ck_assert_int_eq(open_fds(), fds_mid);
    /* A plain read after that goes on with the stream. */
    ck_assert_int_eq(send(a.sv[0], "after", 5, 0), 5);
    weft_unix_io_t r = weft_unix_read(&s1, buf, sizeof buf);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&r)), 5);
    /* A message with no fds: 0 of them. */
    weft_unix_io_t w = weft_unix_write(&s0, "n", 1);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&w)), 1);
    m = weft_unix_recv_fds(&s1, buf, sizeof buf, got, 4, &ngot);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 1);
    ck_assert_uint_eq(ngot, 0);
    /* Over datagrams, an empty message can carry an fd. */
    m = weft_unix_dgram_send_fds(&p, NULL, 0, &e, 1);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 0);
    m = weft_unix_dgram_recv_fds(&q, buf, sizeof buf, got, 4, &ngot);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), 0);
    ck_assert_uint_eq(ngot, 1);
    close(got[0]);
    /* Bad input. */
    m = weft_unix_send_fds(&s0, NULL, 0, &e, 1); /* a stream needs a byte */
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), WEFT_EINVAL);
    m = weft_unix_send_fds(&s0, "x", 1, &e, 0);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), WEFT_EINVAL);
    m = weft_unix_send_fds(&s0, "x", 1, &e, WEFT_UNIX_MAX_FDS + 1);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), WEFT_EINVAL);
    m = weft_unix_recv_fds(&s1, buf, sizeof buf, got, 0, &ngot);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), WEFT_EINVAL);
    int bad = open("/dev/null", O_RDONLY | O_CLOEXEC);
    close(bad); /* a closed fd number: sendmsg says EBADF */
    m = weft_unix_send_fds(&s0, "x", 1, &bad, 1);
    ck_assert_int_eq(await_ssize(rt, WEFT_FUTURE(&m)), -EBADF);
    weft_unix_close(&s0);
    weft_unix_close(&s1);
    weft_unix_dgram_close(&p);
    weft_unix_dgram_close(&q);
    close(pp[0]);
    close(pp[1]);
    close(e);
    ck_assert_int_eq(open_fds(), fds_before); /* every fd received was closed */
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("socket");
    TCase *tc = tcase_create("socket");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, builder_options, 0, N_SHAPES);
    tcase_add_loop_test(tc, adopt_and_hand_back, 0, N_SHAPES);
    tcase_add_loop_test(tc, unix_dgram_round_trips, 0, N_SHAPES);
    tcase_add_loop_test(tc, pass_fds, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
