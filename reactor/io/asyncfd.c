/* reactor/io/asyncfd.c - readiness for a caller's own fd (weft/asyncfd.h).
 *
 * The fd is registered like a socket (io_driver.h), but borrowed: no close
 * of the record shuts it down or closes it, and deregistering takes it out
 * of the epoll set at once (weft__io_detach), while it is surely still
 * open. The readiness futures are the driver's protocol handed to the
 * caller in two halves: the future reports the readiness word it saw (the
 * guard keeps it), the caller makes its system call, and on EAGAIN the
 * tick-checked clear removes the bit only if no edge came in since that
 * word was read, so an edge between the two is never lost.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../io_driver.h"
#include "../../runtime/nonnull.h"
#include "weft/asyncfd.h"

int weft_async_fd_register(int fd, weft_async_fd_t *out)
{
    WEFT__REQUIRE("weft_async_fd_register", out);
    out->io_ = NULL;
    if (fd < 0)
        return -EBADF;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno; /* -EBADF: not an open fd */
    if (!(fl & O_NONBLOCK))
        return WEFT_EINVAL;
    /* epoll_ctl answers -EEXIST for an fd already in this runtime's set
     * and -EPERM for a regular file or directory: passed on as they are. */
    return weft__io_new_borrowed(fd, &out->io_);
}

int weft_async_fd_deregister(weft_async_fd_t *afd)
{
    WEFT__REQUIRE("weft_async_fd_deregister", afd);
    weft__io_t *io = afd->io_;
    if (io == NULL)
        return -EBADF;
    afd->io_ = NULL;
    int fd = io->fd;
    int rc = weft__io_detach(io);
    return rc == 0 ? fd : rc;
}

int weft_async_fd_close(weft_async_fd_t *afd)
{
    WEFT__REQUIRE("weft_async_fd_close", afd);
    if (afd->io_ == NULL)
        return -EBADF;
    int fd = afd->io_->fd;
    int rc = weft_async_fd_deregister(afd);
    close(fd);
    return rc < 0 ? rc : 0;
}

int weft_async_fd_fd(const weft_async_fd_t *afd)
{
    WEFT__REQUIRE("weft_async_fd_fd", afd);
    return afd->io_ != NULL ? afd->io_->fd : -EBADF;
}

/* The driver's readiness word in the public bits. */
static int public_bits(uint32_t s)
{
    int bits = 0;
    if (s & WEFT_IO_READ)
        bits |= WEFT_FD_READABLE;
    if (s & WEFT_IO_WRITE)
        bits |= WEFT_FD_WRITABLE;
    if (s & WEFT_IO_RDHUP)
        bits |= WEFT_FD_READ_CLOSED;
    if (s & WEFT_IO_HUP)
        bits |= WEFT_FD_HUP;
    return bits;
}

/* The driver's direction bit for a public one; 0 for anything else. */
static uint32_t driver_dir(unsigned dir)
{
    return dir == WEFT_FD_READABLE ? WEFT_IO_READ : dir == WEFT_FD_WRITABLE ? WEFT_IO_WRITE : 0;
}

/* Readiness in direction dir (WEFT_IO_READ/WRITE), or the hang-up bits
 * that also end a wait: the snapshot, or 0 with cx's waker registered. */
static uint32_t poll_dir(weft__io_t *io, uint32_t dir, weft_context_t *cx)
{
    return weft__io_poll_ready(io, weft__io_ready_mask(dir) & ~WEFT_IO_CLOSED, cx);
}

/* ---- Readiness futures ------------------------------------------------------ */

static weft_poll_t ready_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_async_fd_ready_t *op = (weft_async_fd_ready_t *)(void *)f;
    int rc;
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    weft__io_t *io = op->io_ != NULL ? op->io_ : weft__io_hold(&op->io_, op->afd_->io_);
    if (io == NULL) {
        rc = -EBADF;
        goto done;
    }
    uint32_t s = poll_dir(io, op->dir_, cx);
    if (s == 0) {
        weft__coop_refund();
        return WEFT_PENDING;
    }
    if (s & WEFT_IO_CLOSED) {
        rc = -EBADF;
        goto done;
    }
    *op->guard_ = (weft_async_fd_guard_t){ op->afd_, io, s, op->dir_ };
    rc = public_bits(s);
done:
    weft__io_let_go(&op->io_);
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void ready_drop(weft_future_t *f)
{
    weft__io_let_go(&((weft_async_fd_ready_t *)(void *)f)->io_);
}

static const weft_future_vtable_t ready_vtable = {
    ready_poll, ready_drop, NULL, sizeof(weft_async_fd_ready_t), sizeof(int), "weft_async_fd_ready",
};

static weft_async_fd_ready_t make_ready(weft_async_fd_t *afd, weft_async_fd_guard_t *guard, uint32_t dir)
{
    weft_async_fd_ready_t op;
    memset(&op, 0, sizeof op);
    op.future.vtable = &ready_vtable;
    op.afd_ = afd;
    op.guard_ = guard;
    op.dir_ = dir;
    return op;
}

weft_async_fd_ready_t weft_async_fd_readable(weft_async_fd_t *afd, weft_async_fd_guard_t *guard)
{
    WEFT__REQUIRE("weft_async_fd_readable", afd);
    WEFT__REQUIRE("weft_async_fd_readable", guard);
    return make_ready(afd, guard, WEFT_IO_READ);
}

weft_async_fd_ready_t weft_async_fd_writable(weft_async_fd_t *afd, weft_async_fd_guard_t *guard)
{
    WEFT__REQUIRE("weft_async_fd_writable", afd);
    WEFT__REQUIRE("weft_async_fd_writable", guard);
    return make_ready(afd, guard, WEFT_IO_WRITE);
}

/* The guard's registration if it is still afd's current one, else NULL
 * (deregistered, or registered anew: the snapshot belongs to the old one). */
static weft__io_t *guard_io(const weft_async_fd_guard_t *g)
{
    if (g->afd_ == NULL || g->afd_->io_ == NULL || g->afd_->io_ != g->io_)
        return NULL;
    return g->io_;
}

bool weft_async_fd_clear_ready(weft_async_fd_guard_t *guard)
{
    WEFT__REQUIRE("weft_async_fd_clear_ready", guard);
    weft__io_t *io = guard_io(guard);
    return io != NULL && weft__io_clear_ready(io, guard->dir_, guard->snapshot_);
}

ssize_t weft_async_fd_try_io(weft_async_fd_guard_t *guard, weft_async_fd_io_cb fn, void *arg)
{
    WEFT__REQUIRE("weft_async_fd_try_io", guard);
    WEFT__REQUIRE("weft_async_fd_try_io", fn);
    weft__io_t *io = guard_io(guard);
    if (io == NULL)
        return -EBADF;
    ssize_t r = fn(io->fd, arg);
    if (r == -EAGAIN || r == -EWOULDBLOCK) {
        weft__io_clear_ready(io, guard->dir_, guard->snapshot_);
        return WEFT_EAGAIN;
    }
    return r;
}

/* ---- The await-call-clear loop as one future ---------------------------------- */

static weft_poll_t fdio_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_async_fd_io_t *op = (weft_async_fd_io_t *)(void *)f;
    ssize_t rc;
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    if (op->dir_ == 0 || op->fn_ == NULL) {
        rc = WEFT_EINVAL;
        goto done;
    }
    weft__io_t *io = op->io_ != NULL ? op->io_ : weft__io_hold(&op->io_, op->afd_->io_);
    if (io == NULL) {
        rc = -EBADF;
        goto done;
    }
    for (;;) {
        uint32_t snap = poll_dir(io, op->dir_, cx);
        if (snap == 0) {
            weft__coop_refund();
            return WEFT_PENDING;
        }
        if (snap & WEFT_IO_CLOSED) {
            rc = -EBADF;
            break;
        }
        ssize_t r = op->fn_(io->fd, op->arg_);
        if (r >= 0) {
            rc = r;
            break;
        }
        /* EINTR: again; EAGAIN: the tick-checked clear, then wait (or
         * again, when an edge came in meanwhile); anything else is the
         * result. */
        int k = weft__io_failed(io, op->dir_, snap, cx, (int)-r);
        if (k == WEFT_IO_WAIT)
            return WEFT_PENDING;
        if (k == WEFT_IO_RETRY)
            continue;
        rc = k;
        break;
    }
done:
    weft__io_let_go(&op->io_);
    if (out != NULL)
        *(ssize_t *)out = rc;
    return WEFT_READY;
}

static void fdio_drop(weft_future_t *f)
{
    weft__io_let_go(&((weft_async_fd_io_t *)(void *)f)->io_);
}

static const weft_future_vtable_t fdio_vtable = {
    fdio_poll, fdio_drop, NULL, sizeof(weft_async_fd_io_t), sizeof(ssize_t), "weft_async_fd_io",
};

weft_async_fd_io_t weft_async_fd_io(weft_async_fd_t *afd, unsigned dir, weft_async_fd_io_cb fn, void *arg)
{
    WEFT__REQUIRE("weft_async_fd_io", afd);
    weft_async_fd_io_t op;
    memset(&op, 0, sizeof op);
    op.future.vtable = &fdio_vtable;
    op.afd_ = afd;
    op.fn_ = fn;
    op.arg_ = arg;
    op.dir_ = driver_dir(dir); /* 0: fdio_poll answers WEFT_EINVAL */
    return op;
}
