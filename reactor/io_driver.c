/* reactor/io_driver.c - the I/O driver: socket registration, readiness,
 * event dispatch, and the retirement of closed sockets. See io_driver.h for
 * the readiness protocol.
 *
 * Who takes events: on a multi-thread runtime, the workers (every inject
 * interval, before they park, and the one parked in the driver when epoll
 * wakes it: driver.c); on a current-thread runtime, the libuv thread,
 * through its watch on the epoll set (uv_thread.c).
 *
 * Lifetime: a socket is freed only by the libuv thread, from the retired
 * stack, after the doorbell that announced it, and never while a worker is
 * inside weft__io_poll_events (it may hold an event naming it); the fd left
 * the epoll set before the socket was retired, so no later event names it.
 */
#include "io_driver.h"

#include <limits.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../runtime/list.h"

/* The retired stack (runtime/list.h) over the sockets' retired link. */
WEFT__INTAKE_GEN(io_retired, weft__io_t, retired_next)

static int io_register(int fd, bool borrowed, weft__io_t **out)
{
    weft__driver_t *d = weft__cx_driver();
    if (d == NULL || !d->has_io)
        return WEFT_ENOSYS;
    weft__io_t *io = weft__alloc(sizeof *io);
    if (io == NULL)
        return WEFT_ENOMEM;
    atomic_init(&io->ready, 0);
    atomic_init(&io->refs, 1);
    io->fd = fd;
    io->borrowed = borrowed;
    io->d = d;
    weft_atomic_waker_init(&io->rd);
    weft_atomic_waker_init(&io->wr);
    io->retired_next = NULL;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET, .data.ptr = io };
    if (epoll_ctl(d->io.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int err = -errno;
        weft__free(io, sizeof *io);
        return err;
    }
    *out = io;
    return 0;
}

int weft__io_new(int fd, weft__io_t **out)
{
    return io_register(fd, false, out);
}

int weft__io_new_borrowed(int fd, weft__io_t **out)
{
    return io_register(fd, true, out);
}

void weft__io_retain(weft__io_t *io)
{
    atomic_fetch_add_explicit(&io->refs, 1, memory_order_relaxed); /* from a live reference */
}

static void io_free(weft__io_t *io)
{
    weft_atomic_waker_drop(&io->rd);
    weft_atomic_waker_drop(&io->wr);
    weft__free(io, sizeof *io);
}

void weft__io_release(weft__io_t *io)
{
    /* acq_rel: the last holder sees every other holder's use. */
    if (atomic_fetch_sub_explicit(&io->refs, 1, memory_order_acq_rel) != 1)
        return;
    weft__driver_t *d = io->d;
    if (!io->borrowed) { /* a borrowed fd left the set in weft__io_detach */
        epoll_ctl(d->io.epfd, EPOLL_CTL_DEL, io->fd, NULL); /* no-op if close did it */
        close(io->fd);
    }
    io->fd = -1;
    /* Onto the retired stack; ring when it was empty (one doorbell per
     * batch: uv_async_send coalesces, the drain takes the whole stack).
     * Once the driver is stopped, the ring is skipped and weft__io_stop or
     * weft__driver_free drain the stack. release: our writes to io precede
     * the free (the acquire exchange in weft__io_free_retired). */
    bool was_empty = false;
    (void)io_retired_push(&d->io.retired, io, io, false, memory_order_release, &was_empty); /* never closed */
    if (was_empty)
        weft__uv_ring(d);
}

void weft__io_free_retired(weft__driver_t *d)
{
    if (!d->has_io)
        return;
    weft__io_t *last, *io;
    for (;;) {
        /* acquire: pairs with the release push in weft__io_release. */
        io = io_retired_take(&d->io.retired, memory_order_acquire, &last);
        /* seq_cst: pairs with the increment in weft__io_poll_events (a
         * poller that came in before our take is seen here, or it sees
         * nothing we took: it started its epoll_wait after the sockets
         * left the set). */
        if (io == NULL || atomic_load_explicit(&d->io.pollers, memory_order_seq_cst) == 0)
            break;
        /* A worker is dispatching events and might name one of these: put
         * them back for the last poller out to ring about. seq_cst on the
         * push and the re-read below, and on that poller's decrement and
         * its read of `retired`: a store-buffer pair, so either it sees
         * our push and rings, or we see it gone and take them again. */
        (void)io_retired_push(&d->io.retired, io, last, true, memory_order_seq_cst, NULL);
        if (atomic_load_explicit(&d->io.pollers, memory_order_seq_cst) != 0)
            return;
    }
    while (io != NULL) {
        weft__io_t *next = io->retired_next;
        io_free(io);
        io = next;
    }
}

/* ORs bits into the readiness word with a new tick. Returns the old word. */
static uint32_t set_ready(weft__io_t *io, uint32_t bits)
{
    uint32_t s = atomic_load_explicit(&io->ready, memory_order_relaxed);
    uint32_t next;
    do {
        next = ((s & ~(WEFT_IO_TICK_ONE - 1)) + WEFT_IO_TICK_ONE) | (s & (WEFT_IO_TICK_ONE - 1)) | bits;
        /* release: the event is visible to the task that reads the bit
         * (acquire in weft__io_poll_ready). */
    } while (!atomic_compare_exchange_weak_explicit(&io->ready, &s, next, memory_order_acq_rel,
                                                    memory_order_relaxed));
    return s;
}

/* weft__io_close and weft__io_detach: returns what EPOLL_CTL_DEL said. */
static int io_close(weft__io_t *io)
{
    /* The fd itself stays open until the last reference goes (a future on
     * another thread may be inside a system call on it; closing now could
     * hand it a reused fd number). Waiters see CLOSED and stop. */
    set_ready(io, WEFT_IO_CLOSED | WEFT_IO_READ | WEFT_IO_WRITE);
    int rc = epoll_ctl(io->d->io.epfd, EPOLL_CTL_DEL, io->fd, NULL) == 0 ? 0 : -errno;
    if (!io->borrowed)
        shutdown(io->fd, SHUT_RDWR);
    weft_atomic_waker_wake(&io->rd);
    weft_atomic_waker_wake(&io->wr);
    weft__io_release(io);
    return rc;
}

void weft__io_close(weft__io_t *io)
{
    (void)io_close(io);
}

int weft__io_detach(weft__io_t *io)
{
    /* Written by the owner before its release (acq_rel in
     * weft__io_release), so the last holder, on whatever thread, reads it. */
    io->borrowed = true;
    return io_close(io);
}

uint32_t weft__io_poll_ready(weft__io_t *io, uint32_t bits, weft_context_t *cx)
{
    /* acquire: pairs with set_ready's release. */
    uint32_t s = atomic_load_explicit(&io->ready, memory_order_acquire);
    if (s & (bits | WEFT_IO_CLOSED))
        return s;
    weft_atomic_waker_register((bits & WEFT_IO_READ) ? &io->rd : &io->wr, cx->waker);
    s = atomic_load_explicit(&io->ready, memory_order_acquire);
    return (s & (bits | WEFT_IO_CLOSED)) ? s : 0;
}

void weft__io_assume_ready(weft__io_t *io, int family)
{
    uint32_t bits = WEFT_IO_READ | WEFT_IO_WRITE | (family == AF_UNIX ? WEFT_IO_NOSHORT : 0);
    atomic_fetch_or_explicit(&io->ready, bits, memory_order_relaxed);
}

bool weft__io_clear_ready(weft__io_t *io, uint32_t bits, uint32_t snapshot)
{
    uint32_t expect = snapshot;
    /* relaxed: a failed CAS only means "retry the syscall". */
    return atomic_compare_exchange_strong_explicit(&io->ready, &expect, snapshot & ~bits, memory_order_relaxed,
                                                   memory_order_relaxed);
}

static bool would_block(weft__io_t *io, uint32_t dir, uint32_t snapshot, weft_context_t *cx)
{
    if (weft__io_clear_ready(io, dir, snapshot) && weft__io_poll_ready(io, dir, cx) == 0) {
        weft__coop_refund();
        return true;
    }
    return false;
}

int weft__io_failed(weft__io_t *io, uint32_t dir, uint32_t snapshot, weft_context_t *cx, int err)
{
    if (err == EINTR)
        return WEFT_IO_RETRY;
    if (err == EAGAIN || err == EWOULDBLOCK)
        return would_block(io, dir, snapshot, cx) ? WEFT_IO_WAIT : WEFT_IO_RETRY;
    return -err;
}

weft_poll_t weft__io_attempt(weft__io_t *io, uint32_t dir, weft_context_t *cx, ssize_t (*attempt)(void *arg, int fd),
                             void *arg, ssize_t *rc)
{
    for (;;) {
        /* acquire: pairs with the release that set the bits. */
        uint32_t snap = atomic_load_explicit(&io->ready, memory_order_acquire);
        if (snap & WEFT_IO_CLOSED) {
            *rc = -EBADF;
            return WEFT_READY;
        }
        ssize_t r = attempt(arg, io->fd);
        if (r >= 0) {
            *rc = r;
            return WEFT_READY;
        }
        int k = weft__io_failed(io, dir, snap, cx, (int)-r);
        if (k == WEFT_IO_WAIT)
            return WEFT_PENDING;
        if (k != WEFT_IO_RETRY) {
            *rc = k;
            return WEFT_READY;
        }
    }
}

/* ---- Taking events --------------------------------------------------------- */

#define EPOLL_BATCH 64

/* Publishes each event in its socket's readiness word and wakes the
 * waiters, in one batch (context.h: weft__wake_batch) so the tasks land
 * where a wake from this thread goes: a worker's own queue, or one push
 * onto the runtime's `woken` queue from the libuv thread. */
static void dispatch(struct epoll_event *ev, int n)
{
    weft_waker_t ws[2 * EPOLL_BATCH];
    unsigned nw = 0;
    for (int i = 0; i < n; i++) {
        weft__io_t *io = ev[i].data.ptr;
        uint32_t e = ev[i].events, bits = 0;
        if (e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            bits |= WEFT_IO_READ;
        if (e & EPOLLPRI)
            bits |= WEFT_IO_NOSHORT;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            bits |= WEFT_IO_WRITE;
        if (e & EPOLLRDHUP)
            bits |= WEFT_IO_RDHUP;
        if (e & (EPOLLHUP | EPOLLERR))
            bits |= WEFT_IO_HUP;
        set_ready(io, bits);
        if (bits & WEFT_IO_READ)
            ws[nw++] = weft_atomic_waker_take(&io->rd);
        if (bits & WEFT_IO_WRITE)
            ws[nw++] = weft_atomic_waker_take(&io->wr);
    }
    unsigned k = 0;
    for (unsigned i = 0; i < nw; i++) /* drop the empty slots */
        if (ws[i].vtable != NULL)
            ws[k++] = ws[i];
    weft__wake_batch(ws, k, WEFT__WAKE_HERE);
}

unsigned weft__io_poll_events(weft__driver_t *d, unsigned max)
{
    if (!d->has_io)
        return 0;
    struct epoll_event ev[EPOLL_BATCH];
    unsigned total = 0;
    /* seq_cst: pairs with the load in weft__io_free_retired. */
    atomic_fetch_add_explicit(&d->io.pollers, 1, memory_order_seq_cst);
    while (total < max) {
        unsigned want = max - total < EPOLL_BATCH ? max - total : EPOLL_BATCH;
        int n = epoll_wait(d->io.epfd, ev, (int)want, 0);
        if (n <= 0)
            break;
        dispatch(ev, n);
        total += (unsigned)n;
        if ((unsigned)n < want)
            break;
    }
    /* seq_cst both: the store-buffer pair with weft__io_free_retired's
     * push-back and re-read of `pollers`. */
    if (atomic_fetch_sub_explicit(&d->io.pollers, 1, memory_order_seq_cst) == 1 &&
        atomic_load_explicit(&d->io.retired, memory_order_seq_cst) != NULL)
        weft__uv_ring(d); /* sockets retired while we polled: free them now */
    return total;
}

int weft__io_init(weft__driver_t *d)
{
    d->io.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (d->io.epfd < 0)
        return -errno;
    atomic_init(&d->io.retired, NULL);
    atomic_init(&d->io.pollers, 0);
    return 0;
}

void weft__io_stop(weft__driver_t *d)
{
    if (!d->has_io || d->io.epfd < 0)
        return;
    close(d->io.epfd);
    d->io.epfd = -1;
    /* No dispatch runs any more: what is retired now is freed at once. */
    weft__io_free_retired(d);
}
