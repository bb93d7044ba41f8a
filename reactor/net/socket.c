/* reactor/net/socket.c - the socket builder (options set before listen or
 * connect) and the adoption of an fd made elsewhere, for the TCP and Unix
 * stream types of weft/net.h (weft/socket.h). A listener made here is
 * stream.c's (weft__stream_listen_fd binds, listens and registers it);
 * the connect future is this file's own, as it sets options and may bind
 * between socket() and connect(). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "stream.h"
#include "weft/socket.h"

/* ---- The builder ------------------------------------------------------------------- */

void weft_socket_builder_init(weft_socket_builder_t *b)
{
    WEFT__REQUIRE("weft_socket_builder_init", b);
    memset(b, 0, sizeof *b);
    b->linger_s = -1;
}

static bool ip_addr_ok(const struct sockaddr *addr, socklen_t len)
{
    return weft__addr_ok(addr, len) && addr->sa_family != AF_UNIX && len <= (socklen_t)sizeof(struct sockaddr_storage);
}

int weft_socket_builder_bind_local(weft_socket_builder_t *b, const struct sockaddr *addr, socklen_t addrlen)
{
    WEFT__REQUIRE("weft_socket_builder_bind_local", b);
    if (!ip_addr_ok(addr, addrlen))
        return WEFT_EINVAL;
    memcpy(&b->local_, addr, addrlen);
    b->local_len_ = addrlen;
    return 0;
}

int weft_socket_builder_bind_local_ip(weft_socket_builder_t *b, const char *ip, uint16_t port)
{
    WEFT__REQUIRE("weft_socket_builder_bind_local_ip", b);
    WEFT__REQUIRE("weft_socket_builder_bind_local_ip", ip);
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = weft__parse_ip(ip, port, &ss, &len);
    return rc != 0 ? rc : weft_socket_builder_bind_local(b, (struct sockaddr *)&ss, len);
}

static bool opt_ok(weft_sockopt_t o)
{
    return o == WEFT_SOCKOPT_DEFAULT || o == WEFT_SOCKOPT_OFF || o == WEFT_SOCKOPT_ON;
}

/* Whether b can be applied to a socket of `family`. */
static bool builder_ok(const weft_socket_builder_t *b, int family)
{
    return opt_ok(b->reuseaddr) && opt_ok(b->reuseport) && opt_ok(b->v6only) && opt_ok(b->nodelay) &&
           b->sndbuf >= 0 && b->rcvbuf >= 0 && b->backlog >= 0 &&
           (b->v6only == WEFT_SOCKOPT_DEFAULT || family == AF_INET6) &&
           (b->local_len_ == 0 || ip_addr_ok((const struct sockaddr *)&b->local_, b->local_len_));
}

static int set_int(int fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof v) == 0 ? 0 : -errno;
}

/* One boolean option, unless left at its default (dflt then applies, when
 * it is not DEFAULT itself). */
static int set_bool(int fd, int level, int name, weft_sockopt_t o, weft_sockopt_t dflt)
{
    if (o == WEFT_SOCKOPT_DEFAULT)
        o = dflt;
    return o == WEFT_SOCKOPT_DEFAULT ? 0 : set_int(fd, level, name, o == WEFT_SOCKOPT_ON);
}

/* Applies b to a fresh socket; the first failure's -errno. */
static int apply(const weft_socket_builder_t *b, int fd, int family, bool listener)
{
    int rc = set_bool(fd, SOL_SOCKET, SO_REUSEADDR, b->reuseaddr, listener ? WEFT_SOCKOPT_ON : WEFT_SOCKOPT_DEFAULT);
    if (rc == 0)
        rc = set_bool(fd, SOL_SOCKET, SO_REUSEPORT, b->reuseport, WEFT_SOCKOPT_DEFAULT);
    if (rc == 0 && family == AF_INET6)
        rc = set_bool(fd, IPPROTO_IPV6, IPV6_V6ONLY, b->v6only, WEFT_SOCKOPT_DEFAULT);
    if (rc == 0)
        rc = set_bool(fd, IPPROTO_TCP, TCP_NODELAY, b->nodelay, WEFT_SOCKOPT_DEFAULT);
    if (rc == 0 && b->sndbuf > 0)
        rc = set_int(fd, SOL_SOCKET, SO_SNDBUF, b->sndbuf);
    if (rc == 0 && b->rcvbuf > 0)
        rc = set_int(fd, SOL_SOCKET, SO_RCVBUF, b->rcvbuf);
    if (rc == 0 && b->linger_s >= 0) {
        struct linger lg = { 1, b->linger_s };
        rc = setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0 ? 0 : -errno;
    }
    return rc;
}

int weft_tcp_listen_with(const weft_socket_builder_t *b, const struct sockaddr *addr, socklen_t addrlen,
                         weft_tcp_listener_t *out)
{
    WEFT__REQUIRE("weft_tcp_listen_with", out);
    weft_socket_builder_t dflt;
    if (b == NULL) {
        weft_socket_builder_init(&dflt);
        b = &dflt;
    }
    if (!ip_addr_ok(addr, addrlen) || !builder_ok(b, addr->sa_family))
        return WEFT_EINVAL;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = apply(b, fd, addr->sa_family, true);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    return weft__stream_listen_fd(fd, addr, addrlen, b->backlog > 0 ? b->backlog : WEFT_SOCKET_BACKLOG, &out->io_);
}

int weft_tcp_listen_ip_with(const weft_socket_builder_t *b, const char *ip, uint16_t port, weft_tcp_listener_t *out)
{
    WEFT__REQUIRE("weft_tcp_listen_ip_with", ip);
    WEFT__REQUIRE("weft_tcp_listen_ip_with", out);
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = weft__parse_ip(ip, port, &ss, &len);
    return rc != 0 ? rc : weft_tcp_listen_with(b, (struct sockaddr *)&ss, len, out);
}

/* ---- connect with options ------------------------------------------------------------- */

enum { C_START, C_WAIT, C_DONE };

/* socket, options, the local bind, a non-blocking connect, registration. */
static int connect_start(weft_socket_connect_t *c, bool *connected)
{
    int fd = socket(c->addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = apply(&c->b_, fd, c->addr_.ss_family, false);
    if (rc == 0 && c->b_.local_len_ != 0 && bind(fd, (struct sockaddr *)&c->b_.local_, c->b_.local_len_) != 0)
        rc = -errno;
    if (rc == 0) {
        int r = connect(fd, (struct sockaddr *)&c->addr_, c->addrlen_);
        if (r != 0 && errno != EINPROGRESS)
            rc = -errno;
        *connected = r == 0;
    }
    if (rc == 0)
        rc = weft__io_new(fd, &c->io_);
    if (rc != 0)
        close(fd);
    return rc;
}

static weft_poll_t connect_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_socket_connect_t *c = (weft_socket_connect_t *)(void *)f;
    int rc = 0;
    if (c->state_ == C_START) {
        bool connected = false;
        rc = c->addrlen_ == 0 ? WEFT_EINVAL : connect_start(c, &connected);
        if (rc != 0 || connected)
            goto done;
        c->state_ = C_WAIT;
    }
    uint32_t s = weft__io_poll_ready(c->io_, WEFT_IO_WRITE, cx);
    if (s == 0)
        return WEFT_PENDING;
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(c->io_->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        err = errno;
    rc = -err;
done:
    if (c->io_ != NULL && rc != 0) {
        weft__io_close(c->io_);
    } else if (c->io_ != NULL) {
        weft__io_assume_ready(c->io_, c->addr_.ss_family);
        *c->out_ = c->io_;
    }
    c->io_ = NULL;
    c->state_ = C_DONE;
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void connect_drop(weft_future_t *f)
{
    weft_socket_connect_t *c = (weft_socket_connect_t *)(void *)f;
    if (c->io_ != NULL) { /* dropped mid-connect: abandon it */
        weft__io_close(c->io_);
        c->io_ = NULL;
    }
}

static const weft_future_vtable_t connect_vtable = {
    connect_poll, connect_drop, NULL, sizeof(weft_socket_connect_t), sizeof(int), "weft_tcp_connect_with",
};

weft_socket_connect_t weft_tcp_connect_with(const weft_socket_builder_t *b, const struct sockaddr *addr,
                                            socklen_t addrlen, weft_tcp_stream_t *out)
{
    WEFT__REQUIRE("weft_tcp_connect_with", out);
    weft_socket_connect_t c;
    memset(&c, 0, sizeof c);
    c.future.vtable = &connect_vtable;
    c.out_ = &out->io_;
    if (b != NULL)
        c.b_ = *b;
    else
        weft_socket_builder_init(&c.b_);
    /* Bad input leaves addrlen_ 0: the first poll answers WEFT_EINVAL. */
    if (ip_addr_ok(addr, addrlen) && builder_ok(&c.b_, addr->sa_family)) {
        memcpy(&c.addr_, addr, addrlen);
        c.addrlen_ = addrlen;
    }
    return c;
}

/* ---- Adoption and hand-back ------------------------------------------------------------ */

static int get_int(int fd, int name, int *v)
{
    socklen_t len = sizeof *v;
    return getsockopt(fd, SOL_SOCKET, name, v, &len) == 0 ? 0 : -errno;
}

/* Checks fd's kind (listening or connected stream of `family`, AF_INET
 * standing for both IP families), makes it non-blocking and registers it;
 * on error restores its flags. */
static int adopt(int fd, int family, bool listener, weft_io_t **out)
{
    int type, accepting, domain;
    int fl = fcntl(fd, F_GETFL);
    if (fd < 0 || fl < 0)
        return -EBADF;
    int rc = get_int(fd, SO_TYPE, &type);
    if (rc == 0)
        rc = get_int(fd, SO_ACCEPTCONN, &accepting);
    if (rc == 0)
        rc = get_int(fd, SO_DOMAIN, &domain);
    if (rc != 0)
        return rc; /* -ENOTSOCK: not a socket */
    bool ip = domain == AF_INET || domain == AF_INET6;
    if (type != SOCK_STREAM || (family == AF_UNIX ? domain != AF_UNIX : !ip) || (accepting != 0) != listener)
        return WEFT_EINVAL;
    if (!listener) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
            return -errno; /* -ENOTCONN */
    }
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -errno;
    weft_io_t *io;
    rc = weft__io_new(fd, &io);
    if (rc != 0) {
        fcntl(fd, F_SETFL, fl);
        return rc;
    }
    if (!listener)
        weft__io_assume_ready(io, domain);
    *out = io;
    return 0;
}

int weft_tcp_listener_from_fd(int fd, weft_tcp_listener_t *out)
{
    WEFT__REQUIRE("weft_tcp_listener_from_fd", out);
    return adopt(fd, AF_INET, true, &out->io_);
}

int weft_tcp_stream_from_fd(int fd, weft_tcp_stream_t *out)
{
    WEFT__REQUIRE("weft_tcp_stream_from_fd", out);
    return adopt(fd, AF_INET, false, &out->io_);
}

int weft_unix_listener_from_fd(int fd, weft_unix_listener_t *out)
{
    WEFT__REQUIRE("weft_unix_listener_from_fd", out);
    return adopt(fd, AF_UNIX, true, &out->io_);
}

int weft_unix_stream_from_fd(int fd, weft_unix_stream_t *out)
{
    WEFT__REQUIRE("weft_unix_stream_from_fd", out);
    return adopt(fd, AF_UNIX, false, &out->io_);
}

/* Deregisters *io and hands its fd out; *io becomes NULL (closed). */
static int hand_back(weft_io_t **io)
{
    if (*io == NULL)
        return -EBADF;
    int fd = (*io)->fd;
    (void)weft__io_detach(*io); /* cannot fail: the fd is open and in the set */
    *io = NULL;
    return fd;
}

int weft_tcp_listener_into_fd(weft_tcp_listener_t *l)
{
    WEFT__REQUIRE("weft_tcp_listener_into_fd", l);
    return hand_back(&l->io_);
}

int weft_tcp_stream_into_fd(weft_tcp_stream_t *s)
{
    WEFT__REQUIRE("weft_tcp_stream_into_fd", s);
    return hand_back(&s->io_);
}

int weft_unix_listener_into_fd(weft_unix_listener_t *l)
{
    WEFT__REQUIRE("weft_unix_listener_into_fd", l);
    return hand_back(&l->io_);
}

int weft_unix_stream_into_fd(weft_unix_stream_t *s)
{
    WEFT__REQUIRE("weft_unix_stream_into_fd", s);
    return hand_back(&s->io_);
}
