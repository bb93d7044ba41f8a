/* reactor/net/udp.c - UDP sockets on the I/O driver (weft/net.h): the
 * same syscall-first readiness protocol as the streams (stream.c), one
 * datagram per call. */
#include <string.h>
#include <unistd.h>

#include "../io_driver.h"
#include "../../runtime/nonnull.h"
#include "weft/net.h"

int weft_udp_bind(const struct sockaddr *addr, socklen_t addrlen, weft_udp_socket_t *out)
{
    WEFT__REQUIRE("weft_udp_bind", out);
    if (out == NULL || !weft__addr_ok(addr, addrlen) || addr->sa_family == AF_UNIX)
        return WEFT_EINVAL;
    int fd = socket(addr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = bind(fd, addr, addrlen) == 0 ? 0 : -errno;
    weft_io_t *io = NULL;
    if (rc == 0)
        rc = weft__io_new(fd, &io);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    out->io_ = io;
    return 0;
}

int weft_udp_bind_ip(const char *ip, uint16_t port, weft_udp_socket_t *out)
{
    WEFT__REQUIRE("weft_udp_bind_ip", ip);
    WEFT__REQUIRE("weft_udp_bind_ip", out);
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = weft__parse_ip(ip, port, &ss, &len);
    return rc != 0 ? rc : weft_udp_bind((struct sockaddr *)&ss, len, out);
}

int weft_udp_connect(weft_udp_socket_t *s, const struct sockaddr *addr, socklen_t addrlen)
{
    WEFT__REQUIRE("weft_udp_connect", s);
    if (s->io_ == NULL)
        return -EBADF;
    if (!weft__addr_ok(addr, addrlen))
        return WEFT_EINVAL;
    return connect(s->io_->fd, addr, addrlen) == 0 ? 0 : -errno;
}

int weft_udp_local_addr(const weft_udp_socket_t *s, struct sockaddr_storage *addr, socklen_t *len)
{
    WEFT__REQUIRE("weft_udp_local_addr", s);
    WEFT__REQUIRE("weft_udp_local_addr", addr);
    WEFT__REQUIRE("weft_udp_local_addr", len);
    if (s->io_ == NULL)
        return -EBADF;
    *len = sizeof *addr;
    return getsockname(s->io_->fd, (struct sockaddr *)addr, len) == 0 ? 0 : -errno;
}

void weft_udp_close(weft_udp_socket_t *s)
{
    WEFT__REQUIRE("weft_udp_close", s);
    if (s->io_ != NULL) {
        weft__io_close(s->io_);
        s->io_ = NULL;
    }
}

enum { U_SEND_TO, U_RECV_FROM, U_SEND, U_RECV };

/* One system call of op (weft__io_attempt): a count or a negative errno. */
static ssize_t udp_once(void *arg, int fd)
{
    weft_udp_io_t *op = arg;
    ssize_t n;
    switch (op->kind_) {
    case U_SEND_TO:
        n = sendto(fd, op->buf_, op->len_, MSG_NOSIGNAL, (struct sockaddr *)&op->addr_, op->addrlen_);
        break;
    case U_SEND:
        n = send(fd, op->buf_, op->len_, MSG_NOSIGNAL);
        break;
    default: {
        socklen_t fl = sizeof(struct sockaddr_storage);
        n = recvfrom(fd, op->buf_, op->len_, 0, (struct sockaddr *)op->from_, op->from_ ? &fl : NULL);
        if (n >= 0 && op->fromlen_ != NULL)
            *op->fromlen_ = fl;
        break;
    }
    }
    return n >= 0 ? n : -errno;
}

static weft_poll_t udp_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_udp_io_t *op = (weft_udp_io_t *)(void *)f;
    ssize_t rc;
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    weft__io_t *io = op->io_ != NULL ? op->io_ : weft__io_hold(&op->io_, op->s_->io_);
    if (io == NULL) {
        rc = -EBADF;
    } else if (op->kind_ == U_SEND_TO && op->addrlen_ == 0) {
        rc = WEFT_EINVAL;
    } else {
        bool receiving = op->kind_ == U_RECV_FROM || op->kind_ == U_RECV;
        if (weft__io_attempt(io, receiving ? WEFT_IO_READ : WEFT_IO_WRITE, cx, udp_once, op, &rc) == WEFT_PENDING)
            return WEFT_PENDING;
    }
    weft__io_let_go(&op->io_);
    if (out != NULL)
        *(ssize_t *)out = rc;
    return WEFT_READY;
}

static void udp_drop(weft_future_t *f)
{
    weft__io_let_go(&((weft_udp_io_t *)(void *)f)->io_);
}

static const weft_future_vtable_t udp_vtable = {
    udp_poll, udp_drop, NULL, sizeof(weft_udp_io_t), sizeof(ssize_t), "weft_udp_io",
};

static weft_udp_io_t make(weft_udp_socket_t *s, int kind, void *buf, size_t len)
{
    weft_udp_io_t op;
    memset(&op, 0, sizeof op);
    op.future.vtable = &udp_vtable;
    op.s_ = s;
    op.buf_ = buf;
    op.len_ = len;
    op.kind_ = kind;
    return op;
}

weft_udp_io_t weft_udp_send_to(weft_udp_socket_t *s, const void *buf, size_t len, const struct sockaddr *to,
                               socklen_t tolen)
{
    WEFT__REQUIRE("weft_udp_send_to", s);
    weft_udp_io_t op = make(s, U_SEND_TO, (void *)buf, len);
    if (weft__addr_ok(to, tolen) && tolen <= (socklen_t)sizeof op.addr_) {
        memcpy(&op.addr_, to, tolen);
        op.addrlen_ = tolen;
    } else {
        op.addr_.ss_family = AF_UNSPEC; /* udp_poll answers WEFT_EINVAL */
        op.addrlen_ = 0;
    }
    return op;
}

weft_udp_io_t weft_udp_recv_from(weft_udp_socket_t *s, void *buf, size_t len, struct sockaddr_storage *from,
                                 socklen_t *fromlen)
{
    WEFT__REQUIRE("weft_udp_recv_from", s);
    weft_udp_io_t op = make(s, U_RECV_FROM, buf, len);
    op.from_ = from;
    op.fromlen_ = fromlen;
    return op;
}

weft_udp_io_t weft_udp_send(weft_udp_socket_t *s, const void *buf, size_t len)
{
    WEFT__REQUIRE("weft_udp_send", s);
    return make(s, U_SEND, (void *)buf, len);
}

weft_udp_io_t weft_udp_recv(weft_udp_socket_t *s, void *buf, size_t len)
{
    WEFT__REQUIRE("weft_udp_recv", s);
    return make(s, U_RECV, buf, len);
}
