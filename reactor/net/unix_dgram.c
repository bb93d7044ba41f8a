/* reactor/net/unix_dgram.c - Unix domain datagram sockets, and the message
 * future (weft_unix_msg_t, weft/socket.h) behind their sends and receives
 * and behind descriptor passing on Unix stream and datagram sockets: one
 * sendmsg or recvmsg per try, with the syscall-first readiness protocol of
 * the other sockets (io_driver.h). It clears readiness only on EAGAIN,
 * never after a short transfer: a Unix stream stops a read early at a
 * message carrying fds with more data queued (io_driver.h, NOSHORT).
 *
 * Received descriptors: recvmsg runs with MSG_CMSG_CLOEXEC, so they are
 * close-on-exec from the moment they exist (no window for a fork+exec on
 * another thread to inherit them). If the control buffer was too small
 * (MSG_CTRUNC), the kernel installed the fds that fit and dropped the
 * rest; the future closes the ones that fit too and reports -EMSGSIZE, so
 * a truncated hand-over never leaks a descriptor.
 */
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "stream.h"
#include "weft/socket.h"

/* ---- Sockets ------------------------------------------------------------------------ */

/* A datagram socket, bound to path unless it is NULL, registered. */
static int dgram_open(const char *path, weft_unix_dgram_t *out)
{
    struct sockaddr_un un;
    socklen_t len = 0;
    int rc = path != NULL ? weft__unix_addr(path, &un, &len) : 0;
    if (rc != 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (path != NULL && bind(fd, (struct sockaddr *)&un, len) != 0)
        rc = -errno;
    if (rc == 0)
        rc = weft__io_new(fd, &out->io_);
    if (rc != 0)
        close(fd);
    return rc;
}

int weft_unix_dgram_bind(const char *path, weft_unix_dgram_t *out)
{
    WEFT__REQUIRE("weft_unix_dgram_bind", path);
    WEFT__REQUIRE("weft_unix_dgram_bind", out);
    return dgram_open(path, out);
}

int weft_unix_dgram_unbound(weft_unix_dgram_t *out)
{
    WEFT__REQUIRE("weft_unix_dgram_unbound", out);
    return dgram_open(NULL, out);
}

int weft_unix_dgram_pair(weft_unix_dgram_t *a, weft_unix_dgram_t *b)
{
    WEFT__REQUIRE("weft_unix_dgram_pair", a);
    WEFT__REQUIRE("weft_unix_dgram_pair", b);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    int rc = weft__io_new(sv[0], &a->io_);
    if (rc != 0) {
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    rc = weft__io_new(sv[1], &b->io_);
    if (rc != 0) {
        close(sv[1]);
        weft__stream_close(&a->io_); /* closes sv[0] */
    }
    return rc;
}

int weft_unix_dgram_connect(weft_unix_dgram_t *s, const char *path)
{
    WEFT__REQUIRE("weft_unix_dgram_connect", s);
    WEFT__REQUIRE("weft_unix_dgram_connect", path);
    if (s->io_ == NULL)
        return -EBADF;
    struct sockaddr_un un;
    socklen_t len;
    int rc = weft__unix_addr(path, &un, &len);
    if (rc != 0)
        return rc;
    return connect(s->io_->fd, (struct sockaddr *)&un, len) == 0 ? 0 : -errno;
}

int weft_unix_dgram_local_path(const weft_unix_dgram_t *s, char *buf, size_t len)
{
    WEFT__REQUIRE("weft_unix_dgram_local_path", s);
    WEFT__REQUIRE("weft_unix_dgram_local_path", buf);
    return weft__unix_path(s->io_, false, buf, len);
}

void weft_unix_dgram_close(weft_unix_dgram_t *s)
{
    WEFT__REQUIRE("weft_unix_dgram_close", s);
    weft__stream_close(&s->io_);
}

/* ---- The message future -------------------------------------------------------------- */

enum { M_BAD, M_SEND, M_RECV };

/* Control space for the most fds one message carries. */
#define CTL_MAX CMSG_SPACE(sizeof(int) * WEFT_UNIX_MAX_FDS)

/* The fds of a received message into op->rfds_ (their count into
 * *op->rnfds_). Returns 0, or -EMSGSIZE when the control data was cut
 * short: every fd that arrived is closed then. */
static int take_fds(weft_unix_msg_t *op, struct msghdr *mh)
{
    size_t n = 0;
    bool cut = (mh->msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *p = CMSG_DATA(c);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, p + i * sizeof fd, sizeof fd); /* CMSG_DATA may be unaligned for int */
            if (n < op->nfds_)
                op->rfds_[n++] = fd;
            else {
                close(fd); /* cannot happen (the buffer held nfds_), but never leak */
                cut = true;
            }
        }
    }
    if (cut) {
        for (size_t i = 0; i < n; i++)
            close(op->rfds_[i]);
        n = 0;
    }
    *op->rnfds_ = n;
    return cut ? -EMSGSIZE : 0;
}

/* The sender's path from a received address, into op->from_. */
static void take_from(weft_unix_msg_t *op, const struct sockaddr_un *un, socklen_t len)
{
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t n = len > off ? strnlen(un->sun_path, (size_t)len - off) : 0;
    if (n >= op->fromlen_)
        n = op->fromlen_ - 1;
    memcpy(op->from_, un->sun_path, n);
    op->from_[n] = 0;
}

/* One sendmsg or recvmsg; the result or -errno. */
static ssize_t msg_once(weft_unix_msg_t *op, int fd)
{
    union {
        struct cmsghdr align;
        unsigned char b[CTL_MAX];
    } ctl;
    struct iovec iov = { op->buf_, op->len_ };
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (op->kind_ == M_SEND) {
        if (op->addrlen_ != 0) {
            mh.msg_name = &op->addr_;
            mh.msg_namelen = op->addrlen_;
        }
        if (op->nfds_ != 0) {
            memset(&ctl, 0, sizeof ctl);
            mh.msg_control = ctl.b;
            mh.msg_controllen = CMSG_SPACE(op->nfds_ * sizeof(int));
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(op->nfds_ * sizeof(int));
            memcpy(CMSG_DATA(c), op->fds_, op->nfds_ * sizeof(int));
        }
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        return n >= 0 ? n : -errno;
    }
    struct sockaddr_un from;
    if (op->from_ != NULL) {
        mh.msg_name = &from;
        mh.msg_namelen = sizeof from;
    }
    if (op->rfds_ != NULL) {
        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(op->nfds_ * sizeof(int));
    }
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return -errno;
    if (op->from_ != NULL)
        take_from(op, &from, mh.msg_namelen);
    if (op->rfds_ != NULL) {
        int rc = take_fds(op, &mh);
        if (rc != 0)
            return rc;
    }
    return n;
}

static ssize_t msg_attempt(void *op, int fd)
{
    return msg_once(op, fd); /* -EMSGSIZE (fds that did not fit, closed) ends it like any error */
}

static weft_poll_t msg_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_unix_msg_t *op = (weft_unix_msg_t *)(void *)f;
    ssize_t rc;
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    if (op->kind_ == M_BAD) {
        rc = WEFT_EINVAL;
        goto done;
    }
    weft__io_t *io = op->io_ != NULL ? op->io_ : weft__io_hold(&op->io_, *op->s_);
    if (io == NULL) {
        rc = -EBADF;
        goto done;
    }
    if (weft__io_attempt(io, op->kind_ == M_SEND ? WEFT_IO_WRITE : WEFT_IO_READ, cx, msg_attempt, op, &rc) ==
        WEFT_PENDING)
        return WEFT_PENDING;
done:
    weft__io_let_go(&op->io_);
    if (out != NULL)
        *(ssize_t *)out = rc;
    return WEFT_READY;
}

static void msg_drop(weft_future_t *f)
{
    weft__io_let_go(&((weft_unix_msg_t *)(void *)f)->io_);
}

static const weft_future_vtable_t msg_vtable = {
    msg_poll, msg_drop, NULL, sizeof(weft_unix_msg_t), sizeof(ssize_t), "weft_unix_msg",
};

static weft_unix_msg_t make(weft_io_t **s, int kind, void *buf, size_t len)
{
    weft_unix_msg_t op;
    memset(&op, 0, sizeof op);
    op.future.vtable = &msg_vtable;
    op.s_ = s;
    op.buf_ = buf;
    op.len_ = len;
    op.kind_ = buf == NULL && len != 0 ? M_BAD : kind;
    return op;
}

/* A send carrying fds: 1..WEFT_UNIX_MAX_FDS of them, and on a stream at
 * least one byte. */
static weft_unix_msg_t make_send_fds(weft_io_t **s, bool stream, const void *buf, size_t len, const int *fds,
                                     size_t nfds)
{
    weft_unix_msg_t op = make(s, M_SEND, (void *)buf, len);
    op.fds_ = fds;
    op.nfds_ = nfds;
    if (fds == NULL || nfds == 0 || nfds > WEFT_UNIX_MAX_FDS || (stream && len == 0))
        op.kind_ = M_BAD;
    return op;
}

static weft_unix_msg_t make_recv_fds(weft_io_t **s, bool stream, void *buf, size_t len, int *fds, size_t max_fds,
                                     size_t *nfds)
{
    weft_unix_msg_t op = make(s, M_RECV, buf, len);
    op.rfds_ = fds;
    op.nfds_ = max_fds;
    op.rnfds_ = nfds;
    if (nfds != NULL)
        *nfds = 0;
    if (fds == NULL || nfds == NULL || max_fds == 0 || max_fds > WEFT_UNIX_MAX_FDS || (stream && len == 0))
        op.kind_ = M_BAD;
    return op;
}

weft_unix_msg_t weft_unix_dgram_send_to(weft_unix_dgram_t *s, const void *buf, size_t len, const char *path)
{
    WEFT__REQUIRE("weft_unix_dgram_send_to", s);
    WEFT__REQUIRE("weft_unix_dgram_send_to", path);
    weft_unix_msg_t op = make(&s->io_, M_SEND, (void *)buf, len);
    if (weft__unix_addr(path, &op.addr_, &op.addrlen_) != 0)
        op.kind_ = M_BAD;
    return op;
}

weft_unix_msg_t weft_unix_dgram_recv_from(weft_unix_dgram_t *s, void *buf, size_t len, char *from, size_t fromlen)
{
    WEFT__REQUIRE("weft_unix_dgram_recv_from", s);
    weft_unix_msg_t op = make(&s->io_, M_RECV, buf, len);
    op.from_ = from;
    op.fromlen_ = fromlen;
    if (from != NULL && fromlen == 0)
        op.kind_ = M_BAD;
    return op;
}

weft_unix_msg_t weft_unix_dgram_send(weft_unix_dgram_t *s, const void *buf, size_t len)
{
    WEFT__REQUIRE("weft_unix_dgram_send", s);
    return make(&s->io_, M_SEND, (void *)buf, len);
}

weft_unix_msg_t weft_unix_dgram_recv(weft_unix_dgram_t *s, void *buf, size_t len)
{
    WEFT__REQUIRE("weft_unix_dgram_recv", s);
    return make(&s->io_, M_RECV, buf, len);
}

weft_unix_msg_t weft_unix_send_fds(weft_unix_stream_t *s, const void *buf, size_t len, const int *fds, size_t nfds)
{
    WEFT__REQUIRE("weft_unix_send_fds", s);
    return make_send_fds(&s->io_, true, buf, len, fds, nfds);
}

weft_unix_msg_t weft_unix_recv_fds(weft_unix_stream_t *s, void *buf, size_t len, int *fds, size_t max_fds,
                                   size_t *nfds)
{
    WEFT__REQUIRE("weft_unix_recv_fds", s);
    return make_recv_fds(&s->io_, true, buf, len, fds, max_fds, nfds);
}

weft_unix_msg_t weft_unix_dgram_send_fds(weft_unix_dgram_t *s, const void *buf, size_t len, const int *fds,
                                         size_t nfds)
{
    WEFT__REQUIRE("weft_unix_dgram_send_fds", s);
    return make_send_fds(&s->io_, false, buf, len, fds, nfds);
}

weft_unix_msg_t weft_unix_dgram_recv_fds(weft_unix_dgram_t *s, void *buf, size_t len, int *fds, size_t max_fds,
                                         size_t *nfds)
{
    WEFT__REQUIRE("weft_unix_dgram_recv_fds", s);
    return make_recv_fds(&s->io_, false, buf, len, fds, max_fds, nfds);
}
