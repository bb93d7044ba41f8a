/* weft/socket.h - sockets beyond net.h's defaults: a builder for the
 * options set before listen or connect (SO_REUSEADDR, SO_REUSEPORT,
 * IPV6_V6ONLY, buffer sizes, SO_LINGER, TCP_NODELAY, the backlog, a local
 * address for an outgoing connection); adopting a listening or connected
 * fd made elsewhere (socket activation, a hand-over between processes) and
 * taking it back out; Unix domain datagram sockets; and passing file
 * descriptors over Unix sockets (SCM_RIGHTS).
 *
 * The handles are net.h's (weft_tcp_listener_t, weft_tcp_stream_t,
 * weft_unix_listener_t, weft_unix_stream_t) plus weft_unix_dgram_t; all
 * follow net.h's rules (one owner, close once, the handle stays put while
 * its futures are pending, a close wakes waiters with -EBADF). The guide is
 * docs/sockets.md.
 */
#ifndef WEFT_SOCKET_H
#define WEFT_SOCKET_H

#include <sys/un.h>

#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The builder ------------------------------------------------------------------ */

/* A boolean option that may also be left as the system (or weft) sets it. */
typedef enum weft_sockopt_e {
    WEFT_SOCKOPT_DEFAULT = 0,
    WEFT_SOCKOPT_OFF,
    WEFT_SOCKOPT_ON,
} weft_sockopt_t;

/* Options for weft_tcp_listen_with and weft_tcp_connect_with. Fill it with
 * weft_socket_builder_init, then set fields; the calls copy what they need
 * and never keep it. Fields ending in an underscore are private (set them
 * through weft_socket_builder_bind_local). */
typedef struct weft_socket_builder_s {
    weft_sockopt_t reuseaddr; /* DEFAULT: on for a listener (as weft_tcp_listen), off for a connect */
    weft_sockopt_t reuseport; /* SO_REUSEPORT; DEFAULT: off */
    weft_sockopt_t v6only;    /* IPV6_V6ONLY, IPv6 only; DEFAULT: the system's (net.ipv6.bindv6only) */
    weft_sockopt_t nodelay;   /* TCP_NODELAY; on a listener, streams it accepts inherit it (Linux) */
    int sndbuf;               /* SO_SNDBUF in bytes; 0: the system's */
    int rcvbuf;               /* SO_RCVBUF in bytes; 0: the system's */
    int linger_s;             /* < 0: no SO_LINGER (the default); >= 0: on, with this timeout in seconds */
    int backlog;              /* listen's backlog; 0: WEFT_SOCKET_BACKLOG */
    struct sockaddr_storage local_;
    socklen_t local_len_; /* 0: no local address */
} weft_socket_builder_t;

/* The backlog when the builder leaves it 0 (the kernel caps it at
 * net.core.somaxconn). */
#define WEFT_SOCKET_BACKLOG 1024

/* Every option at its default (linger_s -1, no local address). */
WEFT_API void weft_socket_builder_init(weft_socket_builder_t *b);
/* The local address an outgoing connection binds before it connects (port
 * 0: any port). Returns 0 or WEFT_EINVAL (not IPv4/IPv6, or a bad
 * length); the connect answers -EADDRNOTAVAIL or -EAFNOSUPPORT when it does
 * not fit the destination. */
WEFT_API WEFT_NODISCARD int weft_socket_builder_bind_local(weft_socket_builder_t *b, const struct sockaddr *addr,
                                                           socklen_t addrlen);
WEFT_API WEFT_NODISCARD int weft_socket_builder_bind_local_ip(weft_socket_builder_t *b, const char *ip,
                                                              uint16_t port);

/* weft_tcp_listen with b's options (b NULL: the defaults, which are
 * weft_tcp_listen's own). Returns 0, WEFT_EINVAL (not IPv4/IPv6, a negative
 * backlog, buffer size or a weft_sockopt_t out of range, v6only on an IPv4
 * address), -EADDRINUSE (the port is taken and not every holder set
 * reuseport), another -errno from socket, setsockopt, bind or listen,
 * WEFT_ENOMEM, WEFT_ENOSYS. Nothing is left open on error. Context: a
 * thread where a runtime with I/O is current; does not block. */
WEFT_API WEFT_NODISCARD int weft_tcp_listen_with(const weft_socket_builder_t *b, const struct sockaddr *addr,
                                                 socklen_t addrlen, weft_tcp_listener_t *out);
WEFT_API WEFT_NODISCARD int weft_tcp_listen_ip_with(const weft_socket_builder_t *b, const char *ip, uint16_t port,
                                                    weft_tcp_listener_t *out);

/* connect with b's options as a future: output int, 0 (the stream in *out)
 * or a negative errno (WEFT_EINVAL for bad input, -ECONNREFUSED,
 * -EADDRINUSE or -EADDRNOTAVAIL from the local bind, ...). b is copied. */
typedef struct weft_socket_connect_s {
    weft_future_t future;
    weft_socket_builder_t b_;
    struct sockaddr_storage addr_;
    socklen_t addrlen_;
    weft_io_t **out_;
    weft_io_t *io_;
    int state_;
} weft_socket_connect_t;
WEFT_API WEFT_NODISCARD weft_socket_connect_t weft_tcp_connect_with(const weft_socket_builder_t *b,
                                                                    const struct sockaddr *addr, socklen_t addrlen,
                                                                    weft_tcp_stream_t *out);

/* ---- Adopting an fd, and taking it back ---------------------------------------------
 * from_fd checks that fd is a socket of the right kind (SO_TYPE
 * SOCK_STREAM; SO_DOMAIN AF_INET/AF_INET6 for TCP, AF_UNIX for Unix;
 * SO_ACCEPTCONN set for a listener, clear and connected for a stream),
 * makes it non-blocking and registers it with the current runtime. On
 * success the handle owns fd (closing the handle closes it). Returns 0,
 * -EBADF (not an open fd), -ENOTSOCK (not a socket), WEFT_EINVAL (a socket
 * of another type, family or state), -ENOTCONN (a stream that is not
 * connected), -EEXIST (already registered with this runtime), WEFT_ENOMEM,
 * WEFT_ENOSYS. On error fd stays open and the caller's, its flags as they
 * were. Context: a thread where a runtime with I/O is current. */
WEFT_API WEFT_NODISCARD int weft_tcp_listener_from_fd(int fd, weft_tcp_listener_t *out);
WEFT_API WEFT_NODISCARD int weft_tcp_stream_from_fd(int fd, weft_tcp_stream_t *out);
WEFT_API WEFT_NODISCARD int weft_unix_listener_from_fd(int fd, weft_unix_listener_t *out);
WEFT_API WEFT_NODISCARD int weft_unix_stream_from_fd(int fd, weft_unix_stream_t *out);

/* into_fd deregisters the socket and hands its fd to the caller (still
 * non-blocking, still open, not shut down); the handle becomes closed, and
 * tasks waiting on it wake with -EBADF. Returns the fd, or -EBADF when the
 * handle was closed. No future of the handle may be inside a system call
 * on another thread while this runs (they stop at their next poll). */
WEFT_API int weft_tcp_listener_into_fd(weft_tcp_listener_t *l);
WEFT_API int weft_tcp_stream_into_fd(weft_tcp_stream_t *s);
WEFT_API int weft_unix_listener_into_fd(weft_unix_listener_t *l);
WEFT_API int weft_unix_stream_into_fd(weft_unix_stream_t *s);

/* ---- Unix domain datagram sockets ----------------------------------------------------
 * Paths as for weft_unix_listen (empty or longer than sun_path:
 * WEFT_EINVAL; an existing file is not removed: -EADDRINUSE). */
typedef struct weft_unix_dgram_s {
    weft_io_t *io_;
} weft_unix_dgram_t;

/* A socket bound to path. Returns 0 or a negative errno; WEFT_ENOSYS
 * without a runtime with I/O. Context: inside a runtime with I/O. */
WEFT_API WEFT_NODISCARD int weft_unix_dgram_bind(const char *path, weft_unix_dgram_t *out);
/* A socket bound to no path (it can send_to; replies cannot reach it). */
WEFT_API WEFT_NODISCARD int weft_unix_dgram_unbound(weft_unix_dgram_t *out);
/* Two unnamed sockets connected to each other (socketpair). */
WEFT_API WEFT_NODISCARD int weft_unix_dgram_pair(weft_unix_dgram_t *a, weft_unix_dgram_t *b);
/* Sets the default peer (send/recv need no path). Never blocks. */
WEFT_API int weft_unix_dgram_connect(weft_unix_dgram_t *s, const char *path);
/* The bound path ("" when unbound) into buf. 0, -EBADF, WEFT_EINVAL (buf too small). */
WEFT_API int weft_unix_dgram_local_path(const weft_unix_dgram_t *s, char *buf, size_t len);
WEFT_API void weft_unix_dgram_close(weft_unix_dgram_t *s);

/* The most descriptors one message carries (the kernel's SCM_MAX_FD). */
#define WEFT_UNIX_MAX_FDS 253

/* A message future on a Unix socket (datagram or stream): output ssize_t,
 * the bytes sent or received, or a negative errno. A datagram longer than
 * the buffer is cut to it (as recv). Fields are private. */
typedef struct weft_unix_msg_s {
    weft_future_t future;
    weft_io_t **s_;
    weft_io_t *io_;
    void *buf_;
    size_t len_;
    struct sockaddr_un addr_; /* send_to: the destination */
    socklen_t addrlen_;
    char *from_; /* recv_from: the sender's path */
    size_t fromlen_;
    const int *fds_; /* send: the fds to pass */
    int *rfds_;      /* recv: where the received fds go */
    size_t nfds_;    /* send: how many; recv: room in rfds_ */
    size_t *rnfds_;  /* recv: how many arrived */
    int kind_;
} weft_unix_msg_t;

WEFT_API WEFT_NODISCARD weft_unix_msg_t weft_unix_dgram_send_to(weft_unix_dgram_t *s, const void *buf, size_t len,
                                                                const char *path);
/* from (may be NULL) receives the sender's path, "" when it is unbound;
 * fromlen bytes with the NUL (sizeof(struct sockaddr_un) never cuts). */
WEFT_API WEFT_NODISCARD weft_unix_msg_t weft_unix_dgram_recv_from(weft_unix_dgram_t *s, void *buf, size_t len,
                                                                  char *from, size_t fromlen);
WEFT_API WEFT_NODISCARD weft_unix_msg_t weft_unix_dgram_send(weft_unix_dgram_t *s, const void *buf, size_t len);
WEFT_API WEFT_NODISCARD weft_unix_msg_t weft_unix_dgram_recv(weft_unix_dgram_t *s, void *buf, size_t len);

/* Passing descriptors (SCM_RIGHTS). send_fds sends len bytes with nfds fds
 * (1 ..WEFT_UNIX_MAX_FDS; the caller keeps its own copies, and closes them
 * when it likes); on a stream, len must be >= 1 (the fds ride on the first
 * byte). recv_fds receives up to len bytes and up to max_fds fds into fds,
 * their count into *nfds (0 when the message carried none); they are
 * opened close-on-exec and are the caller's to close. If a message carried
 * more fds than max_fds, the output is -EMSGSIZE, *nfds is 0, and every fd
 * that did arrive has been closed (none leaks); the message's bytes are
 * consumed either way. On a stream, a recv_fds call ends at a message
 * that carries fds (the kernel does not merge across one), so fds are
 * never spread over two calls. Bad counts, NULL buffers, a zero len on a
 * stream: WEFT_EINVAL. */
WEFT_API WEFT_NODISCARD weft_unix_msg_t weft_unix_send_fds(weft_unix_stream_t *s, const void *buf, size_t len,
                                                           const int *fds, size_t nfds);
WEFT_API WEFT_NODISCARD weft_unix_msg_t weft_unix_recv_fds(weft_unix_stream_t *s, void *buf, size_t len, int *fds,
                                                           size_t max_fds, size_t *nfds);
WEFT_API WEFT_NODISCARD weft_unix_msg_t weft_unix_dgram_send_fds(weft_unix_dgram_t *s, const void *buf, size_t len,
                                                                 const int *fds, size_t nfds);
WEFT_API WEFT_NODISCARD weft_unix_msg_t weft_unix_dgram_recv_fds(weft_unix_dgram_t *s, void *buf, size_t len,
                                                                 int *fds, size_t max_fds, size_t *nfds);

#ifdef __cplusplus
}
#endif

#endif
