/* reactor/net/unix.c - Unix domain stream sockets (weft/net.h): paths to
 * addresses and back; everything else is the shared stream machinery of
 * stream.c, reached through thin wrappers, as for TCP (tcp.c). */
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#include "stream.h"

int weft__unix_addr(const char *path, struct sockaddr_un *un, socklen_t *len)
{
    if (path[0] == 0 || strlen(path) >= sizeof un->sun_path)
        return WEFT_EINVAL;
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, path);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
    return 0;
}

int weft__unix_path(const weft_io_t *io, bool peer, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = weft__stream_name(io, peer, &ss, &sl);
    if (rc != 0)
        return rc;
    const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t n = sl > off ? strnlen(un->sun_path, (size_t)sl - off) : 0;
    if (n >= len)
        return WEFT_EINVAL;
    memcpy(buf, un->sun_path, n);
    buf[n] = 0;
    return 0;
}

/* ---- Listener ------------------------------------------------------------------ */

int weft_unix_listen(const char *path, int backlog, weft_unix_listener_t *out)
{
    WEFT__REQUIRE("weft_unix_listen", path);
    WEFT__REQUIRE("weft_unix_listen", out);
    struct sockaddr_un un;
    socklen_t len;
    int rc = weft__unix_addr(path, &un, &len);
    return rc != 0 ? rc : weft__stream_listen((struct sockaddr *)&un, len, backlog, &out->io_);
}

int weft_unix_listener_path(const weft_unix_listener_t *l, char *buf, size_t len)
{
    WEFT__REQUIRE("weft_unix_listener_path", l);
    WEFT__REQUIRE("weft_unix_listener_path", buf);
    return weft__unix_path(l->io_, false, buf, len);
}

void weft_unix_listener_close(weft_unix_listener_t *l)
{
    WEFT__REQUIRE("weft_unix_listener_close", l);
    weft__stream_close(&l->io_);
}

/* ---- Futures ------------------------------------------------------------------- */

weft_unix_accept_t weft_unix_accept(weft_unix_listener_t *l, weft_unix_stream_t *out)
{
    WEFT__REQUIRE("weft_unix_accept", l);
    WEFT__REQUIRE("weft_unix_accept", out);
    return weft__stream_accept(&l->io_, &out->io_, NULL);
}

weft_unix_connect_t weft_unix_connect(const char *path, weft_unix_stream_t *out)
{
    WEFT__REQUIRE("weft_unix_connect", path);
    WEFT__REQUIRE("weft_unix_connect", out);
    struct sockaddr_un un;
    socklen_t len;
    if (weft__unix_addr(path, &un, &len) != 0)
        return weft__stream_connect(NULL, 0, &out->io_); /* output WEFT_EINVAL */
    return weft__stream_connect((struct sockaddr *)&un, len, &out->io_);
}

#define UNIX_STREAM(fn, s) (WEFT__REQUIRE(fn, s), &(s)->io_)

weft_unix_io_t weft_unix_read(weft_unix_stream_t *s, void *buf, size_t len)
{
    return weft__stream_io(UNIX_STREAM("weft_unix_read", s), WEFT__K_READ, buf, len);
}
weft_unix_io_t weft_unix_read_exact(weft_unix_stream_t *s, void *buf, size_t len)
{
    return weft__stream_io(UNIX_STREAM("weft_unix_read_exact", s), WEFT__K_READ_EXACT, buf, len);
}
weft_unix_io_t weft_unix_write(weft_unix_stream_t *s, const void *buf, size_t len)
{
    return weft__stream_io(UNIX_STREAM("weft_unix_write", s), WEFT__K_WRITE, buf, len);
}
weft_unix_io_t weft_unix_write_all(weft_unix_stream_t *s, const void *buf, size_t len)
{
    return weft__stream_io(UNIX_STREAM("weft_unix_write_all", s), WEFT__K_WRITE_ALL, buf, len);
}
weft_unix_io_t weft_unix_writev(weft_unix_stream_t *s, const struct iovec *iov, size_t iovcnt)
{
    return weft__stream_writev(UNIX_STREAM("weft_unix_writev", s), iov, iovcnt, false);
}
weft_unix_io_t weft_unix_writev_all(weft_unix_stream_t *s, const struct iovec *iov, size_t iovcnt)
{
    return weft__stream_writev(UNIX_STREAM("weft_unix_writev_all", s), iov, iovcnt, true);
}

/* ---- Stream calls -------------------------------------------------------------- */

weft_stream_t *weft_unix_stream_as(weft_unix_stream_t *s)
{
    WEFT__REQUIRE("weft_unix_stream_as", s);
    s->stream_.vtable = &weft__sock_stream_vtable;
    return &s->stream_;
}

int weft_unix_shutdown(weft_unix_stream_t *s, int how)
{
    WEFT__REQUIRE("weft_unix_shutdown", s);
    return weft__stream_shutdown(s->io_, how);
}

int weft_unix_peer_path(const weft_unix_stream_t *s, char *buf, size_t len)
{
    WEFT__REQUIRE("weft_unix_peer_path", s);
    WEFT__REQUIRE("weft_unix_peer_path", buf);
    return weft__unix_path(s->io_, true, buf, len);
}

int weft_unix_local_path(const weft_unix_stream_t *s, char *buf, size_t len)
{
    WEFT__REQUIRE("weft_unix_local_path", s);
    WEFT__REQUIRE("weft_unix_local_path", buf);
    return weft__unix_path(s->io_, false, buf, len);
}

void weft_unix_close(weft_unix_stream_t *s)
{
    WEFT__REQUIRE("weft_unix_close", s);
    weft__stream_close(&s->io_);
}
