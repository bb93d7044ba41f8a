/* weft/net.h - TCP, Unix domain stream sockets and UDP, on the runtime's
 * I/O driver.
 *
 * Every call tries the non-blocking system call on the calling worker
 * first; only when it would block does the task wait for readiness. The
 * socket is in the runtime's edge-triggered epoll set; whoever takes its
 * event (a worker of a multi-thread runtime, or the driver's libuv thread
 * on a current-thread runtime) sets the socket's readiness bits and wakes
 * its atomic waker. Errors reach the task as negative errno codes (WEFT_ECONNRESET,
 * EPIPE, ECONNREFUSED, ETIMEDOUT, ...).
 *
 * A socket is one allocation, shared with the I/O driver and reference
 * counted by the futures using it, so closing a socket that a task is
 * waiting on wakes that task with -EBADF (its wait ends, it never touches
 * a reused fd).
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "future.h"
#include "io.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft__io weft_io_t; /* opaque: a registered socket */

/* The futures below hold a reference on the socket from their first poll
 * until they finish or are dropped.
 *
 * TCP and Unix domain stream sockets have their own listener and stream
 * types (so a TCP-only call cannot be given a Unix socket), built on one
 * machinery: their accept, connect and read/write futures are the shared
 * weft_stream_*_t types below, under per-family typedef names. Fields that
 * end in an underscore are private. */

typedef struct weft_tcp_listener_s {
    weft_io_t *io_;
} weft_tcp_listener_t;

typedef struct weft_tcp_stream_s {
    weft_stream_t stream_; /* the byte-stream interface: weft_tcp_stream_as */
    weft_io_t *io_;
} weft_tcp_stream_t;

typedef struct weft_unix_listener_s {
    weft_io_t *io_;
} weft_unix_listener_t;

typedef struct weft_unix_stream_s {
    weft_stream_t stream_; /* the byte-stream interface: weft_unix_stream_as */
    weft_io_t *io_;
} weft_unix_stream_t;

/* accept as a future: output int (0, the new stream in *out; or a negative
 * errno). Under fd exhaustion (EMFILE/ENFILE) it backs off (sleeps, up to
 * 100 ms between tries) instead of spinning, and goes on once fds free up. */
typedef struct weft_stream_accept_s {
    weft_future_t future;
    weft_io_t **l_;   /* the listener's io_ */
    weft_io_t *io_;   /* the reference held while waiting */
    weft_io_t **out_; /* the new stream's io_ */
    struct sockaddr_storage *peer_;
    uint64_t backoff_ms_;
    weft_sleep_t backoff_;
    bool backing_off_;
} weft_stream_accept_t;
typedef weft_stream_accept_t weft_tcp_accept_t;
typedef weft_stream_accept_t weft_unix_accept_t;

/* connect as a future: output int (0 or a negative errno, e.g.
 * -ECONNREFUSED). Compose with weft_timeout_ms for a deadline. */
typedef struct weft_stream_connect_s {
    weft_future_t future;
    struct sockaddr_storage addr_;
    socklen_t addrlen_;
    weft_io_t **out_;
    weft_io_t *io_;
    int state_;
} weft_stream_connect_t;
typedef weft_stream_connect_t weft_tcp_connect_t;
typedef weft_stream_connect_t weft_unix_connect_t;

/* I/O futures: output ssize_t, the byte count or a negative errno. read
 * returns 0 at end of stream; read_exact/write_all finish only when len
 * bytes moved (read_exact: -EPIPE if the stream ended first). A read is one
 * recv(2); a zero-length read or write answers 0 at once. */
typedef struct weft_stream_io_s {
    weft_future_t future;
    weft_io_t **s_;
    weft_io_t *io_;
    union {
        void *rbuf;
        const void *wbuf;
        const struct iovec *iov;
    } u_;
    size_t len_;  /* bytes, or iovec count */
    size_t done_;
    int kind_;
} weft_stream_io_t;
typedef weft_stream_io_t weft_tcp_io_t;
typedef weft_stream_io_t weft_unix_io_t;

/* ---- TCP ------------------------------------------------------------------------ */

/* Binds and listens on addr (IPv4 or IPv6; port 0 picks one), backlog >= 1.
 * Returns 0, or a negative errno (WEFT_EINVAL for bad input or a non-IP
 * address, -EADDRINUSE, -EACCES, WEFT_ENOMEM, WEFT_ENOSYS with no runtime
 * here or one built with enable_io = false, ...). Context: a thread inside
 * a runtime with I/O enabled (the listener is registered with its I/O
 * driver). */
WEFT_API WEFT_NODISCARD int weft_tcp_listen(const struct sockaddr *addr, socklen_t addrlen, int backlog,
                                            weft_tcp_listener_t *out);
/* "127.0.0.1", 8080 -> listen. Returns WEFT_EINVAL for an address that is
 * not a numeric IPv4/IPv6 address. */
WEFT_API WEFT_NODISCARD int weft_tcp_listen_ip(const char *ip, uint16_t port, int backlog, weft_tcp_listener_t *out);
WEFT_API int weft_tcp_listener_local_addr(const weft_tcp_listener_t *l, struct sockaddr_storage *addr,
                                          socklen_t *len);
WEFT_API uint16_t weft_tcp_listener_port(const weft_tcp_listener_t *l);
/* Closes the listener: a task waiting in accept wakes with -EBADF. */
WEFT_API void weft_tcp_listener_close(weft_tcp_listener_t *l);

WEFT_API WEFT_NODISCARD weft_tcp_accept_t weft_tcp_accept(weft_tcp_listener_t *l, weft_tcp_stream_t *out,
                                                          struct sockaddr_storage *peer /* may be NULL */);
/* addr must be IPv4 or IPv6 (anything else: output WEFT_EINVAL). */
WEFT_API WEFT_NODISCARD weft_tcp_connect_t weft_tcp_connect(const struct sockaddr *addr, socklen_t addrlen,
                                                            weft_tcp_stream_t *out);
WEFT_API WEFT_NODISCARD weft_tcp_connect_t weft_tcp_connect_ip(const char *ip, uint16_t port, weft_tcp_stream_t *out);

WEFT_API WEFT_NODISCARD weft_tcp_io_t weft_tcp_read(weft_tcp_stream_t *s, void *buf, size_t len);
WEFT_API WEFT_NODISCARD weft_tcp_io_t weft_tcp_read_exact(weft_tcp_stream_t *s, void *buf, size_t len);
WEFT_API WEFT_NODISCARD weft_tcp_io_t weft_tcp_write(weft_tcp_stream_t *s, const void *buf, size_t len);
WEFT_API WEFT_NODISCARD weft_tcp_io_t weft_tcp_write_all(weft_tcp_stream_t *s, const void *buf, size_t len);
WEFT_API WEFT_NODISCARD weft_tcp_io_t weft_tcp_writev(weft_tcp_stream_t *s, const struct iovec *iov, size_t iovcnt);
/* Writes every byte of the iovcnt buffers, in order, over as many calls as
 * it takes (weft_tcp_writev writes once and leaves the rest to the
 * caller). Output ssize_t: the total written, or a negative errno (bytes
 * may have been written before it). iov is only read, never advanced; it
 * must stay valid and unchanged until the future completes or is dropped. */
WEFT_API WEFT_NODISCARD weft_tcp_io_t weft_tcp_writev_all(weft_tcp_stream_t *s, const struct iovec *iov,
                                                         size_t iovcnt);

/* The stream as a byte stream (weft/io.h), for the I/O utilities, buffered
 * readers and writers, codecs and copy: a pointer into *s, valid while *s
 * is. Reads and writes may run at the same time in two tasks (the
 * interface is WEFT_STREAM_DUPLEX); its shutdown is shutdown(SHUT_WR). A
 * closed stream answers -EBADF. Context: any thread. */
WEFT_API weft_stream_t *weft_tcp_stream_as(weft_tcp_stream_t *s);

/* how: SHUT_RD, SHUT_WR or SHUT_RDWR. Returns 0 or a negative errno. */
WEFT_API int weft_tcp_shutdown(weft_tcp_stream_t *s, int how);
WEFT_API int weft_tcp_set_nodelay(weft_tcp_stream_t *s, bool on);
WEFT_API int weft_tcp_set_keepalive(weft_tcp_stream_t *s, bool on);
WEFT_API int weft_tcp_peer_addr(const weft_tcp_stream_t *s, struct sockaddr_storage *addr, socklen_t *len);
WEFT_API int weft_tcp_local_addr(const weft_tcp_stream_t *s, struct sockaddr_storage *addr, socklen_t *len);
/* Closes the socket; tasks waiting on it wake with -EBADF. */
WEFT_API void weft_tcp_close(weft_tcp_stream_t *s);

/* ---- Unix domain stream sockets ------------------------------------------------
 * The same calls as TCP (but nodelay and keepalive), on their own types; a
 * socket is named by a path. A path that is empty or longer than sun_path
 * is WEFT_EINVAL. weft_unix_listen does not unlink an existing socket file
 * (bind then fails with -EADDRINUSE), nor remove it on close. */
WEFT_API WEFT_NODISCARD int weft_unix_listen(const char *path, int backlog, weft_unix_listener_t *out);
/* The path the listener is bound to, copied into buf (len bytes, NUL
 * terminated). Returns 0, -EBADF (closed), WEFT_EINVAL (buf too small). */
WEFT_API int weft_unix_listener_path(const weft_unix_listener_t *l, char *buf, size_t len);
WEFT_API void weft_unix_listener_close(weft_unix_listener_t *l);

WEFT_API WEFT_NODISCARD weft_unix_accept_t weft_unix_accept(weft_unix_listener_t *l, weft_unix_stream_t *out);
WEFT_API WEFT_NODISCARD weft_unix_connect_t weft_unix_connect(const char *path, weft_unix_stream_t *out);

WEFT_API WEFT_NODISCARD weft_unix_io_t weft_unix_read(weft_unix_stream_t *s, void *buf, size_t len);
WEFT_API WEFT_NODISCARD weft_unix_io_t weft_unix_read_exact(weft_unix_stream_t *s, void *buf, size_t len);
WEFT_API WEFT_NODISCARD weft_unix_io_t weft_unix_write(weft_unix_stream_t *s, const void *buf, size_t len);
WEFT_API WEFT_NODISCARD weft_unix_io_t weft_unix_write_all(weft_unix_stream_t *s, const void *buf, size_t len);
WEFT_API WEFT_NODISCARD weft_unix_io_t weft_unix_writev(weft_unix_stream_t *s, const struct iovec *iov,
                                                        size_t iovcnt);
WEFT_API WEFT_NODISCARD weft_unix_io_t weft_unix_writev_all(weft_unix_stream_t *s, const struct iovec *iov,
                                                            size_t iovcnt);

WEFT_API int weft_unix_shutdown(weft_unix_stream_t *s, int how);
/* The stream as a byte stream (weft/io.h), as weft_tcp_stream_as. */
WEFT_API weft_stream_t *weft_unix_stream_as(weft_unix_stream_t *s);
/* The path of the peer's socket (an empty string when the peer is not
 * bound to a path, as a connecting client usually is not) or of this
 * stream's own end, copied into buf. Returns 0, -EBADF (closed),
 * WEFT_EINVAL (buf too small), or a negative errno. */
WEFT_API int weft_unix_peer_path(const weft_unix_stream_t *s, char *buf, size_t len);
WEFT_API int weft_unix_local_path(const weft_unix_stream_t *s, char *buf, size_t len);
WEFT_API void weft_unix_close(weft_unix_stream_t *s);

/* ---- Name resolution ------------------------------------------------------------
 * Resolves host (a name or a numeric address) for port without blocking a
 * worker: getaddrinfo runs as a job on the runtime's blocking pool. Output
 * int: how many addresses were written to out (at most max, TCP-usable,
 * IPv4 and IPv6), or WEFT_ENOENT (no such name), WEFT_EINVAL, WEFT_ENOMEM,
 * WEFT_ENOSYS (no runtime here), WEFT_ECANCELED (the lookup never ran:
 * the runtime shut down first, or the blocking pool could start no thread
 * for it), WEFT_EIO (the resolver failed otherwise).
 * Dropping it early is fine: the lookup finishes in the background and its
 * result is freed. */
struct weft__resolve_req;
typedef struct weft_resolve_s {
    weft_future_t future;
    const char *host_;
    uint16_t port_;
    struct sockaddr_storage *out_;
    size_t max_;
    struct weft__resolve_req *req_;
} weft_resolve_t;
WEFT_API WEFT_NODISCARD weft_resolve_t weft_resolve(const char *host, uint16_t port, struct sockaddr_storage *out,
                                                    size_t max);

/* ---- UDP ------------------------------------------------------------------------ */
typedef struct weft_udp_socket_s {
    weft_io_t *io_;
} weft_udp_socket_t;

/* Binds a datagram socket (port 0 picks one). Returns 0 or a negative
 * errno; WEFT_EINVAL for bad input; WEFT_ENOSYS without a runtime with
 * I/O enabled. Context: inside a runtime with I/O enabled. */
WEFT_API WEFT_NODISCARD int weft_udp_bind(const struct sockaddr *addr, socklen_t addrlen, weft_udp_socket_t *out);
WEFT_API WEFT_NODISCARD int weft_udp_bind_ip(const char *ip, uint16_t port, weft_udp_socket_t *out);
/* Sets the default peer (send/recv then need no address) and filters what
 * is received to it. Never blocks. */
WEFT_API int weft_udp_connect(weft_udp_socket_t *s, const struct sockaddr *addr, socklen_t addrlen);
WEFT_API int weft_udp_local_addr(const weft_udp_socket_t *s, struct sockaddr_storage *addr, socklen_t *len);
WEFT_API void weft_udp_close(weft_udp_socket_t *s);

/* Datagram futures: output ssize_t, the datagram's size (recv: truncated
 * to len, like recvfrom) or a negative errno. */
typedef struct weft_udp_io_s {
    weft_future_t future;
    weft_udp_socket_t *s_;
    weft_io_t *io_;
    void *buf_;
    size_t len_;
    struct sockaddr_storage addr_; /* send_to: the destination */
    socklen_t addrlen_;
    struct sockaddr_storage *from_; /* recv_from: where to put the sender */
    socklen_t *fromlen_;
    int kind_;
} weft_udp_io_t;
WEFT_API WEFT_NODISCARD weft_udp_io_t weft_udp_send_to(weft_udp_socket_t *s, const void *buf, size_t len,
                                                       const struct sockaddr *to, socklen_t tolen);
WEFT_API WEFT_NODISCARD weft_udp_io_t weft_udp_recv_from(weft_udp_socket_t *s, void *buf, size_t len,
                                                         struct sockaddr_storage *from, socklen_t *fromlen);
WEFT_API WEFT_NODISCARD weft_udp_io_t weft_udp_send(weft_udp_socket_t *s, const void *buf, size_t len);
WEFT_API WEFT_NODISCARD weft_udp_io_t weft_udp_recv(weft_udp_socket_t *s, void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
