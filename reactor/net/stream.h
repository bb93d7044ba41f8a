/* reactor/net/stream.h - the stream-socket machinery (stream.c) behind the
 * TCP (tcp.c) and Unix domain (unix.c) types of weft/net.h. Each public
 * listener and stream holds one registered socket, `weft_io_t *io_`; the
 * family's functions check their arguments and the address family, then
 * pass &io_ here, so both families share one accept, connect and I/O poll
 * loop. */
#ifndef WEFT_NET_STREAM_H
#define WEFT_NET_STREAM_H

#include "../io_driver.h"
#include "../../runtime/nonnull.h"
#include "weft/io.h"
#include "weft/net.h"

/* What a weft_stream_io_t future does (its kind_). */
enum weft__stream_kind {
    WEFT__K_READ,
    WEFT__K_READ_EXACT,
    WEFT__K_WRITE,
    WEFT__K_WRITE_ALL,
    WEFT__K_WRITEV,
    WEFT__K_WRITEV_ALL, /* done_ counts the bytes written so far, across the buffers */
};

/* Binds and listens on addr (already checked by the caller), backlog >= 1;
 * *out receives the registered socket. Returns 0 or a negative errno. */
int weft__stream_listen(const struct sockaddr *addr, socklen_t addrlen, int backlog, weft_io_t **out);
/* The second half of weft__stream_listen, for a socket the caller made and
 * set up (socket.c's builder): binds fd, listens, registers. Takes fd:
 * it is closed on error. */
int weft__stream_listen_fd(int fd, const struct sockaddr *addr, socklen_t addrlen, int backlog, weft_io_t **out);
/* getpeername (peer) or getsockname of io into addr/len; -EBADF if closed. */
int weft__stream_name(const weft_io_t *io, bool peer, struct sockaddr_storage *addr, socklen_t *len);
int weft__stream_shutdown(const weft_io_t *io, int how);
/* Unix paths (unix.c; also socket.c's datagrams): path to an address
 * (WEFT_EINVAL when empty or longer than sun_path), and the path of io's
 * own end (peer false) or of its peer into buf ("" when unnamed). */
struct sockaddr_un;
int weft__unix_addr(const char *path, struct sockaddr_un *un, socklen_t *len);
int weft__unix_path(const weft_io_t *io, bool peer, char *buf, size_t len);
/* Closes *io (tasks waiting on it wake with -EBADF) and clears it. */
void weft__stream_close(weft_io_t **io);

/* The futures read *l / *s (the listener's or stream's io_) at their first
 * poll, and write the new socket to *out. addr NULL makes a connect future
 * whose output is WEFT_EINVAL. */
weft_stream_accept_t weft__stream_accept(weft_io_t **l, weft_io_t **out, struct sockaddr_storage *peer);
weft_stream_connect_t weft__stream_connect(const struct sockaddr *addr, socklen_t addrlen, weft_io_t **out);
weft_stream_io_t weft__stream_io(weft_io_t **s, int kind, const void *buf, size_t len);
weft_stream_io_t weft__stream_writev(weft_io_t **s, const struct iovec *iov, size_t iovcnt, bool all);

/* Poll-level transfers on a registered fd, for the byte-stream interface
 * (weft/io.h) of sockets, pipes and terminals. */
enum weft__fd_op {
    WEFT__FD_READ,   /* p: the buffer, len: its size */
    WEFT__FD_WRITE,  /* p: the bytes, len: their count */
    WEFT__FD_WRITEV, /* p: a struct iovec array, len: its count (at most IOV_MAX are written) */
};
/* One transfer on the fd registered as *handle (read once per call: NULL,
 * or a handle closed meanwhile, answers -EBADF): spends one unit of the
 * coop budget, tries the system call while the readiness bits allow, and
 * on EAGAIN registers cx's waker for that direction and returns
 * WEFT_PENDING. *res: the byte count (0: end of stream) or a negative
 * errno. sock: use recv/send/sendmsg with MSG_NOSIGNAL (a closed peer is
 * -EPIPE, never SIGPIPE); else read/write/writev. Holds a reference on the
 * socket only during the call. */
weft_poll_t weft__fd_poll(weft_io_t **handle, weft_context_t *cx, int op, const void *p, size_t len, bool sock,
                          ssize_t *res);

/* The interface of weft_tcp_stream_t and weft_unix_stream_t (their
 * weft_stream_t stream_ comes first, then io_): read, write, writev (up to
 * 64 buffers a call), shutdown = shutdown(SHUT_WR); duplex. */
extern const weft_stream_vtable_t weft__sock_stream_vtable;

#endif
