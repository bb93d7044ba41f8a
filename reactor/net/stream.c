/* reactor/net/stream.c - the stream-socket machinery shared by TCP
 * (tcp.c) and Unix domain sockets (unix.c): listen on an address, the
 * accept, connect and read/write futures, shutdown, names and close. The
 * public types of both families hold one registered socket (weft_io_t *io_)
 * and their functions are thin wrappers that pass its address here.
 *
 * Every operation first tries its non-blocking system call on the calling
 * worker; only EAGAIN makes the task wait, through the socket's readiness
 * bits (io_driver.h). So a read that finds data, or a write that finds
 * room, never crosses a thread.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/un.h>
#include <string.h>
#include <unistd.h>

#include "../io_driver.h"
#include "../io/io_internal.h"
#include "stream.h"
#include "weft/io.h"

/* ---- Listener ------------------------------------------------------------------ */

int weft__stream_listen(const struct sockaddr *addr, socklen_t addrlen, int backlog, weft_io_t **out)
{
    if (backlog < 1)
        return WEFT_EINVAL;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (addr->sa_family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    return weft__stream_listen_fd(fd, addr, addrlen, backlog, out);
}

int weft__stream_listen_fd(int fd, const struct sockaddr *addr, socklen_t addrlen, int backlog, weft_io_t **out)
{
    int rc = 0;
    if (bind(fd, addr, addrlen) != 0 || listen(fd, backlog) != 0)
        rc = -errno;
    weft_io_t *io = NULL;
    if (rc == 0)
        rc = weft__io_new(fd, &io);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *out = io;
    return 0;
}

int weft__stream_name(const weft_io_t *io, bool peer, struct sockaddr_storage *addr, socklen_t *len)
{
    if (io == NULL)
        return -EBADF;
    *len = sizeof *addr;
    int r = peer ? getpeername(io->fd, (struct sockaddr *)addr, len) : getsockname(io->fd, (struct sockaddr *)addr, len);
    return r == 0 ? 0 : -errno;
}

void weft__stream_close(weft_io_t **io)
{
    if (*io != NULL) {
        weft__io_close(*io);
        *io = NULL;
    }
}

/* ---- accept ------------------------------------------------------------------------ */

/* Fd exhaustion: wait 10 ms, doubling up to 100 ms, then try again. */
#define ACCEPT_BACKOFF_MIN_MS 10
#define ACCEPT_BACKOFF_MAX_MS 100

static weft_poll_t accept_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_stream_accept_t *a = (weft_stream_accept_t *)(void *)f;
    int rc;
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    if (a->backing_off_) {
        if (weft_future_poll(&a->backoff_.future, cx, NULL) == WEFT_PENDING)
            return WEFT_PENDING;
        weft_future_drop(&a->backoff_.future);
        a->backing_off_ = false;
    }
    weft__io_t *io = a->io_ != NULL ? a->io_ : weft__io_hold(&a->io_, *a->l_);
    if (io == NULL) {
        rc = -EBADF;
        goto done;
    }
    for (;;) {
        uint32_t snap = atomic_load_explicit(&io->ready, memory_order_acquire);
        if (snap & WEFT_IO_CLOSED) {
            rc = -EBADF;
            break;
        }
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int cfd = accept4(io->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            weft__io_t *cio;
            rc = weft__io_new(cfd, &cio);
            if (rc != 0) {
                close(cfd);
                break;
            }
            weft__io_assume_ready(cio, peer.ss_family);
            *a->out_ = cio;
            if (a->peer_ != NULL)
                memcpy(a->peer_, &peer, sizeof peer);
            a->backoff_ms_ = 0;
            break;
        }
        int e = errno;
        if (e == ECONNABORTED)
            continue; /* a client that gave up: take the next */
        if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
            /* Out of fds: the pending connection stays in the backlog and
             * the socket stays readable, so retrying at once would spin. */
            a->backoff_ms_ = a->backoff_ms_ == 0 ? ACCEPT_BACKOFF_MIN_MS : a->backoff_ms_ * 2;
            if (a->backoff_ms_ > ACCEPT_BACKOFF_MAX_MS)
                a->backoff_ms_ = ACCEPT_BACKOFF_MAX_MS;
            a->backoff_ = weft_sleep_ms(a->backoff_ms_);
            a->backing_off_ = true;
            if (weft_future_poll(&a->backoff_.future, cx, NULL) == WEFT_PENDING)
                return WEFT_PENDING;
            weft_future_drop(&a->backoff_.future);
            a->backing_off_ = false;
            continue;
        }
        int k = weft__io_failed(io, WEFT_IO_READ, snap, cx, e);
        if (k == WEFT_IO_WAIT)
            return WEFT_PENDING;
        if (k == WEFT_IO_RETRY)
            continue;
        rc = k;
        break;
    }
done:
    weft__io_let_go(&a->io_);
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void accept_drop(weft_future_t *f)
{
    weft_stream_accept_t *a = (weft_stream_accept_t *)(void *)f;
    if (a->backing_off_) {
        weft_future_drop(&a->backoff_.future);
        a->backing_off_ = false;
    }
    weft__io_let_go(&a->io_);
}

static const weft_future_vtable_t accept_vtable = {
    accept_poll, accept_drop, NULL, sizeof(weft_stream_accept_t), sizeof(int), "weft_stream_accept",
};

weft_stream_accept_t weft__stream_accept(weft_io_t **l, weft_io_t **out, struct sockaddr_storage *peer)
{
    weft_stream_accept_t a;
    memset(&a, 0, sizeof a);
    a.future.vtable = &accept_vtable;
    a.l_ = l;
    a.out_ = out;
    a.peer_ = peer;
    return a;
}

/* ---- connect ------------------------------------------------------------------------ */

static weft_poll_t connect_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_stream_connect_t *c = (weft_stream_connect_t *)(void *)f;
    int rc = 0;
    if (c->state_ == 0) {
        if (c->addr_.ss_family == AF_UNSPEC) { /* the constructor got a bad address */
            rc = WEFT_EINVAL;
            goto done;
        }
        int fd = socket(c->addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            goto done;
        }
        int r = connect(fd, (struct sockaddr *)&c->addr_, c->addrlen_);
        if (r != 0 && errno != EINPROGRESS) {
            rc = -errno;
            close(fd);
            goto done;
        }
        rc = weft__io_new(fd, &c->io_);
        if (rc != 0) {
            close(fd);
            goto done;
        }
        c->state_ = 1;
        if (r == 0)
            goto connected;
    }
    {
        uint32_t s = weft__io_poll_ready(c->io_, WEFT_IO_WRITE, cx);
        if (s == 0)
            return WEFT_PENDING;
        int err = 0;
        socklen_t elen = sizeof err;
        if (s & WEFT_IO_CLOSED)
            err = EBADF;
        else if (getsockopt(c->io_->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
            err = errno;
        if (err != 0) {
            weft__io_close(c->io_);
            c->io_ = NULL;
            rc = -err;
            goto done;
        }
    }
connected:
    weft__io_assume_ready(c->io_, c->addr_.ss_family);
    *c->out_ = c->io_;
    c->io_ = NULL;
    rc = 0;
done:
    c->state_ = 2;
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void connect_drop(weft_future_t *f)
{
    weft_stream_connect_t *c = (weft_stream_connect_t *)(void *)f;
    if (c->io_ != NULL) { /* dropped mid-connect (a timeout): abandon it */
        weft__io_close(c->io_);
        c->io_ = NULL;
    }
}

static const weft_future_vtable_t connect_vtable = {
    connect_poll, connect_drop, NULL, sizeof(weft_stream_connect_t), sizeof(int), "weft_stream_connect",
};

weft_stream_connect_t weft__stream_connect(const struct sockaddr *addr, socklen_t addrlen, weft_io_t **out)
{
    weft_stream_connect_t c;
    memset(&c, 0, sizeof c);
    c.future.vtable = &connect_vtable;
    c.out_ = out;
    if (addr != NULL && addrlen <= (socklen_t)sizeof c.addr_) {
        memcpy(&c.addr_, addr, addrlen);
        c.addrlen_ = addrlen;
    } else {
        c.addr_.ss_family = AF_UNSPEC; /* connect_poll answers WEFT_EINVAL */
    }
    return c;
}

/* ---- read / write ---------------------------------------------------------------------- */

/* Vectored writes: at most this many buffers per sendmsg (a writev_all
 * with more goes on in the next call, as after a short write). */
#define WRITEV_BATCH 64

/* One transfer on a registered fd: a read (into p, len bytes), a write
 * (from p) or a vectored write (p: the iovec array, len buffers, `asked`
 * bytes in all). Tries the system call while the readiness bits allow it;
 * on EAGAIN (or after a short transfer cleared the bit) registers cx's
 * waker and returns WEFT_PENDING (the budget unit refunded). *res: the count (0 at end of stream) or
 * a negative errno. Sockets use recv/send/sendmsg (MSG_NOSIGNAL: a closed
 * peer is -EPIPE, not a SIGPIPE), other fds read/write/writev. */
static weft_poll_t transfer(weft__io_t *io, weft_context_t *cx, int op, const void *p, size_t len, size_t asked,
                            bool sock, ssize_t *res)
{
    uint32_t dir = op == WEFT__FD_READ ? WEFT_IO_READ : WEFT_IO_WRITE;
    for (;;) {
        /* acquire: pairs with the release that set the bits. */
        uint32_t snap = atomic_load_explicit(&io->ready, memory_order_acquire);
        if (snap & WEFT_IO_CLOSED) {
            *res = -EBADF;
            return WEFT_READY;
        }
        if (!(snap & weft__io_ready_mask(dir))) {
            /* A short transfer or EAGAIN cleared the bit: wait for the
             * edge rather than spend a system call on EAGAIN. */
            if (weft__io_poll_ready(io, weft__io_ready_mask(dir) & ~WEFT_IO_CLOSED, cx) == 0) {
                weft__coop_refund();
                return WEFT_PENDING;
            }
            continue;
        }
        ssize_t n;
        if (op == WEFT__FD_WRITEV) {
            if (sock) {
                struct msghdr mh;
                memset(&mh, 0, sizeof mh);
                mh.msg_iov = (struct iovec *)p;
                mh.msg_iovlen = len;
                n = sendmsg(io->fd, &mh, MSG_NOSIGNAL);
            } else {
                n = writev(io->fd, (const struct iovec *)p, (int)len); /* len <= IOV_MAX (weft__fd_poll) */
            }
        } else if (op == WEFT__FD_READ) {
            /* recv, not read, on sockets: it goes to the socket without
             * read(2)'s VFS layer (tcp_echo on 2 cores: 187-189k round
             * trips/s against 182-185k with read). */
            n = sock ? recv(io->fd, (void *)p, len, 0) : read(io->fd, (void *)p, len);
        } else {
            n = sock ? send(io->fd, p, len, MSG_NOSIGNAL) : write(io->fd, p, len);
        }
        if (n >= 0) {
            /* Short: the buffer is drained (read) or full (write). A failed
             * clear means an edge came in since snap: the bit stays. */
            if (n > 0 && (size_t)n < asked && !(snap & WEFT_IO_NOSHORT))
                weft__io_clear_ready(io, dir, snap);
            *res = n;
            return WEFT_READY;
        }
        int k = weft__io_failed(io, dir, snap, cx, errno);
        if (k == WEFT_IO_WAIT)
            return WEFT_PENDING;
        if (k != WEFT_IO_RETRY) {
            *res = k;
            return WEFT_READY;
        }
    }
}

static size_t iov_bytes(const struct iovec *iov, size_t n)
{
    size_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += iov[i].iov_len;
    return sum;
}

weft_poll_t weft__fd_poll(weft__io_t **handle, weft_context_t *cx, int op, const void *p, size_t len, bool sock,
                          ssize_t *res)
{
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    weft__io_t *io = NULL;
    if (weft__io_hold(&io, *handle) == NULL) {
        *res = -EBADF;
        return WEFT_READY;
    }
    if (op == WEFT__FD_WRITEV && len > IOV_MAX)
        len = IOV_MAX; /* the rest in the caller's next call; `asked` must count only these */
    size_t asked = op == WEFT__FD_WRITEV ? iov_bytes(p, len) : len;
    weft_poll_t r = transfer(io, cx, op, p, len, asked, sock, res);
    weft__io_let_go(&io);
    return r;
}

static weft_poll_t io_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_stream_io_t *op = (weft_stream_io_t *)(void *)f;
    ssize_t rc;
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    weft__io_t *io = op->io_ != NULL ? op->io_ : weft__io_hold(&op->io_, *op->s_);
    if (io == NULL) {
        rc = -EBADF;
        goto done;
    }
    bool reading = op->kind_ == WEFT__K_READ || op->kind_ == WEFT__K_READ_EXACT;
    bool one_call = op->kind_ != WEFT__K_READ_EXACT && op->kind_ != WEFT__K_WRITE_ALL &&
                    op->kind_ != WEFT__K_WRITEV_ALL; /* done after one transfer */
    for (;;) {
        struct iovec tmp[WRITEV_BATCH];
        const void *p;
        size_t len, asked;
        int kind;
        if (op->kind_ == WEFT__K_WRITEV) {
            /* one sendmsg of the caller's buffers, as they are */
            kind = WEFT__FD_WRITEV;
            p = op->u_.iov;
            len = op->len_;
            asked = 0;
        } else if (op->kind_ == WEFT__K_WRITEV_ALL) {
            asked = weft__iov_window(op->u_.iov, op->len_, op->done_, tmp, WRITEV_BATCH, &len);
            if (asked == 0) { /* every byte written (or none to write) */
                rc = (ssize_t)op->done_;
                break;
            }
            kind = WEFT__FD_WRITEV;
            p = tmp;
        } else {
            kind = reading ? WEFT__FD_READ : WEFT__FD_WRITE;
            p = reading ? (const void *)((char *)op->u_.rbuf + op->done_)
                        : (const void *)((const char *)op->u_.wbuf + op->done_);
            len = asked = op->len_ - op->done_;
            if (asked == 0) {
                /* A zero-length request answers 0 at once (recv would
                 * wait for data to say so; read(2) on a socket did not). */
                rc = 0;
                break;
            }
        }
        ssize_t n;
        if (transfer(io, cx, kind, p, len, asked, true, &n) == WEFT_PENDING)
            return WEFT_PENDING;
        if (n < 0) {
            rc = n;
            break;
        }
        if (n == 0) {
            /* End of stream (or an empty writev). */
            rc = op->kind_ == WEFT__K_READ_EXACT && op->done_ < op->len_ ? WEFT_EPIPE : 0;
            break;
        }
        op->done_ += (size_t)n;
        if (op->kind_ == WEFT__K_WRITEV_ALL)
            continue; /* weft__iov_window says when every buffer is written */
        if (one_call || op->done_ == op->len_) {
            rc = one_call ? n : (ssize_t)op->done_;
            break;
        }
    }
done:
    weft__io_let_go(&op->io_);
    if (out != NULL)
        *(ssize_t *)out = rc;
    return WEFT_READY;
}

static void io_drop(weft_future_t *f)
{
    weft__io_let_go(&((weft_stream_io_t *)(void *)f)->io_);
}

static const weft_future_vtable_t io_vtable = {
    io_poll, io_drop, NULL, sizeof(weft_stream_io_t), sizeof(ssize_t), "weft_stream_io",
};

weft_stream_io_t weft__stream_io(weft_io_t **s, int kind, const void *buf, size_t len)
{
    weft_stream_io_t op;
    memset(&op, 0, sizeof op);
    op.future.vtable = &io_vtable;
    op.s_ = s;
    op.u_.wbuf = buf;
    op.len_ = len;
    op.kind_ = kind;
    return op;
}

/* ---- Stream options ---------------------------------------------------------------------- */

int weft__stream_shutdown(const weft_io_t *io, int how)
{
    if (io == NULL)
        return -EBADF;
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return WEFT_EINVAL;
    return shutdown(io->fd, how) == 0 ? 0 : -errno;
}

weft_stream_io_t weft__stream_writev(weft_io_t **s, const struct iovec *iov, size_t iovcnt, bool all)
{
    weft_stream_io_t op = weft__stream_io(s, all ? WEFT__K_WRITEV_ALL : WEFT__K_WRITEV, NULL, iovcnt);
    op.u_.iov = iov;
    return op;
}

/* ---- The byte-stream interface (weft/io.h) for stream sockets -------------------- */

/* weft_tcp_stream_t and weft_unix_stream_t: the interface, then the handle. */
typedef struct sock_stream {
    weft_stream_t stream;
    weft_io_t *io;
} sock_stream_t;
_Static_assert(offsetof(weft_tcp_stream_t, stream_) == offsetof(sock_stream_t, stream) &&
                   offsetof(weft_tcp_stream_t, io_) == offsetof(sock_stream_t, io) &&
                   offsetof(weft_unix_stream_t, stream_) == offsetof(sock_stream_t, stream) &&
                   offsetof(weft_unix_stream_t, io_) == offsetof(sock_stream_t, io),
               "the stream handles share one layout");

static weft__io_t **sock_of(weft_stream_t *s)
{
    return &((sock_stream_t *)(void *)s)->io;
}

static weft_poll_t sock_poll_read(weft_stream_t *s, weft_context_t *cx, void *buf, size_t len, ssize_t *n)
{
    return weft__fd_poll(sock_of(s), cx, WEFT__FD_READ, buf, len, true, n);
}

static weft_poll_t sock_poll_write(weft_stream_t *s, weft_context_t *cx, const void *buf, size_t len, ssize_t *n)
{
    return weft__fd_poll(sock_of(s), cx, WEFT__FD_WRITE, buf, len, true, n);
}

static weft_poll_t sock_poll_writev(weft_stream_t *s, weft_context_t *cx, const struct iovec *iov, size_t iovcnt,
                                    ssize_t *n)
{
    if (iovcnt > WRITEV_BATCH) /* the rest goes in the caller's next call */
        iovcnt = WRITEV_BATCH;
    return weft__fd_poll(sock_of(s), cx, WEFT__FD_WRITEV, iov, iovcnt, true, n);
}

static weft_poll_t sock_poll_shutdown(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    (void)cx;
    *rc = weft__stream_shutdown(*sock_of(s), SHUT_WR);
    return WEFT_READY;
}

const weft_stream_vtable_t weft__sock_stream_vtable = {
    .poll_read = sock_poll_read,
    .poll_write = sock_poll_write,
    .poll_writev = sock_poll_writev,
    .poll_shutdown = sock_poll_shutdown,
    .flags = WEFT_STREAM_DUPLEX,
    .name = "socket",
};
