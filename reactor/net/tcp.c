/* reactor/net/tcp.c - TCP listeners and streams (weft/net.h): address
 * handling and TCP options; everything else is the shared stream machinery
 * of stream.c, reached through thin wrappers that check the arguments
 * (runtime/nonnull.h) and keep Unix addresses out of the TCP types. */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#include "stream.h"

/* ---- Addresses (shared with udp.c through io_driver.h) ------------------------- */

int weft__parse_ip(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (ip != NULL && inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return 0;
    }
    if (ip != NULL && inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return 0;
    }
    return WEFT_EINVAL;
}

bool weft__addr_ok(const struct sockaddr *addr, socklen_t len)
{
    if (addr == NULL)
        return false;
    if (addr->sa_family == AF_INET)
        return len >= (socklen_t)sizeof(struct sockaddr_in);
    if (addr->sa_family == AF_INET6)
        return len >= (socklen_t)sizeof(struct sockaddr_in6);
    if (addr->sa_family == AF_UNIX)
        return len > (socklen_t)offsetof(struct sockaddr_un, sun_path) && len <= (socklen_t)sizeof(struct sockaddr_un);
    return false;
}

/* A TCP address: IPv4 or IPv6 (Unix sockets have their own types). */
static bool ip_addr_ok(const struct sockaddr *addr, socklen_t len)
{
    return weft__addr_ok(addr, len) && addr->sa_family != AF_UNIX;
}

/* ---- Listener ------------------------------------------------------------------ */

int weft_tcp_listen(const struct sockaddr *addr, socklen_t addrlen, int backlog, weft_tcp_listener_t *out)
{
    WEFT__REQUIRE("weft_tcp_listen", out);
    if (!ip_addr_ok(addr, addrlen))
        return WEFT_EINVAL;
    return weft__stream_listen(addr, addrlen, backlog, &out->io_);
}

int weft_tcp_listen_ip(const char *ip, uint16_t port, int backlog, weft_tcp_listener_t *out)
{
    WEFT__REQUIRE("weft_tcp_listen_ip", ip);
    WEFT__REQUIRE("weft_tcp_listen_ip", out);
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = weft__parse_ip(ip, port, &ss, &len);
    return rc != 0 ? rc : weft_tcp_listen((struct sockaddr *)&ss, len, backlog, out);
}

int weft_tcp_listener_local_addr(const weft_tcp_listener_t *l, struct sockaddr_storage *addr, socklen_t *len)
{
    WEFT__REQUIRE("weft_tcp_listener_local_addr", l);
    WEFT__REQUIRE("weft_tcp_listener_local_addr", addr);
    WEFT__REQUIRE("weft_tcp_listener_local_addr", len);
    return weft__stream_name(l->io_, false, addr, len);
}

uint16_t weft_tcp_listener_port(const weft_tcp_listener_t *l)
{
    WEFT__REQUIRE("weft_tcp_listener_port", l);
    struct sockaddr_storage ss;
    socklen_t len;
    if (weft__stream_name(l->io_, false, &ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void weft_tcp_listener_close(weft_tcp_listener_t *l)
{
    WEFT__REQUIRE("weft_tcp_listener_close", l);
    weft__stream_close(&l->io_);
}

/* ---- Futures ------------------------------------------------------------------- */

weft_tcp_accept_t weft_tcp_accept(weft_tcp_listener_t *l, weft_tcp_stream_t *out, struct sockaddr_storage *peer)
{
    WEFT__REQUIRE("weft_tcp_accept", l);
    WEFT__REQUIRE("weft_tcp_accept", out);
    return weft__stream_accept(&l->io_, &out->io_, peer);
}

weft_tcp_connect_t weft_tcp_connect(const struct sockaddr *addr, socklen_t addrlen, weft_tcp_stream_t *out)
{
    WEFT__REQUIRE("weft_tcp_connect", out);
    if (!ip_addr_ok(addr, addrlen))
        addr = NULL; /* the future answers WEFT_EINVAL */
    return weft__stream_connect(addr, addrlen, &out->io_);
}

weft_tcp_connect_t weft_tcp_connect_ip(const char *ip, uint16_t port, weft_tcp_stream_t *out)
{
    WEFT__REQUIRE("weft_tcp_connect_ip", ip);
    WEFT__REQUIRE("weft_tcp_connect_ip", out);
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (weft__parse_ip(ip, port, &ss, &len) != 0)
        return weft__stream_connect(NULL, 0, &out->io_);
    return weft__stream_connect((struct sockaddr *)&ss, len, &out->io_);
}

#define TCP_STREAM(fn, s) (WEFT__REQUIRE(fn, s), &(s)->io_)

weft_tcp_io_t weft_tcp_read(weft_tcp_stream_t *s, void *buf, size_t len)
{
    return weft__stream_io(TCP_STREAM("weft_tcp_read", s), WEFT__K_READ, buf, len);
}
weft_tcp_io_t weft_tcp_read_exact(weft_tcp_stream_t *s, void *buf, size_t len)
{
    return weft__stream_io(TCP_STREAM("weft_tcp_read_exact", s), WEFT__K_READ_EXACT, buf, len);
}
weft_tcp_io_t weft_tcp_write(weft_tcp_stream_t *s, const void *buf, size_t len)
{
    return weft__stream_io(TCP_STREAM("weft_tcp_write", s), WEFT__K_WRITE, buf, len);
}
weft_tcp_io_t weft_tcp_write_all(weft_tcp_stream_t *s, const void *buf, size_t len)
{
    return weft__stream_io(TCP_STREAM("weft_tcp_write_all", s), WEFT__K_WRITE_ALL, buf, len);
}
weft_tcp_io_t weft_tcp_writev(weft_tcp_stream_t *s, const struct iovec *iov, size_t iovcnt)
{
    return weft__stream_writev(TCP_STREAM("weft_tcp_writev", s), iov, iovcnt, false);
}
weft_tcp_io_t weft_tcp_writev_all(weft_tcp_stream_t *s, const struct iovec *iov, size_t iovcnt)
{
    return weft__stream_writev(TCP_STREAM("weft_tcp_writev_all", s), iov, iovcnt, true);
}

/* ---- Stream options ------------------------------------------------------------ */

weft_stream_t *weft_tcp_stream_as(weft_tcp_stream_t *s)
{
    WEFT__REQUIRE("weft_tcp_stream_as", s);
    s->stream_.vtable = &weft__sock_stream_vtable;
    return &s->stream_;
}

int weft_tcp_shutdown(weft_tcp_stream_t *s, int how)
{
    WEFT__REQUIRE("weft_tcp_shutdown", s);
    return weft__stream_shutdown(s->io_, how);
}

static int set_opt(weft_tcp_stream_t *s, int level, int name, bool on)
{
    if (s->io_ == NULL)
        return -EBADF;
    int v = on ? 1 : 0;
    return setsockopt(s->io_->fd, level, name, &v, sizeof v) == 0 ? 0 : -errno;
}

int weft_tcp_set_nodelay(weft_tcp_stream_t *s, bool on)
{
    WEFT__REQUIRE("weft_tcp_set_nodelay", s);
    return set_opt(s, IPPROTO_TCP, TCP_NODELAY, on);
}

int weft_tcp_set_keepalive(weft_tcp_stream_t *s, bool on)
{
    WEFT__REQUIRE("weft_tcp_set_keepalive", s);
    return set_opt(s, SOL_SOCKET, SO_KEEPALIVE, on);
}

int weft_tcp_peer_addr(const weft_tcp_stream_t *s, struct sockaddr_storage *addr, socklen_t *len)
{
    WEFT__REQUIRE("weft_tcp_peer_addr", s);
    WEFT__REQUIRE("weft_tcp_peer_addr", addr);
    WEFT__REQUIRE("weft_tcp_peer_addr", len);
    return weft__stream_name(s->io_, true, addr, len);
}

int weft_tcp_local_addr(const weft_tcp_stream_t *s, struct sockaddr_storage *addr, socklen_t *len)
{
    WEFT__REQUIRE("weft_tcp_local_addr", s);
    WEFT__REQUIRE("weft_tcp_local_addr", addr);
    WEFT__REQUIRE("weft_tcp_local_addr", len);
    return weft__stream_name(s->io_, false, addr, len);
}

void weft_tcp_close(weft_tcp_stream_t *s)
{
    WEFT__REQUIRE("weft_tcp_close", s);
    weft__stream_close(&s->io_);
}
