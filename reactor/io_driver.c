/* reactor/io_driver.c - socket registration, readiness and its dispatch on the
 * reactor thread. See io.h for the readiness protocol.
 *
 * Lifetime: a socket is freed only by the reactor thread, from the retired
 * stack, after the doorbell that announced it. Event dispatch runs in the
 * uv_poll callback on that same thread, and the fd left the epoll set
 * before the socket was retired, so no dispatch can name a freed socket.
 */
#include "io_driver.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../runtime/scheduler.h"

int weft__io_new(int fd, weft__io_t **out)
{
    weft__sched_t *s = weft__tls.sched;
    if (s == NULL || s->reactor == NULL)
        return WEFT_ENOSYS;
    weft__reactor_t *r = s->reactor;
    weft__io_t *io = weft__alloc(sizeof *io);
    if (io == NULL)
        return WEFT_ENOMEM;
    atomic_init(&io->ready, 0);
    atomic_init(&io->refs, 1);
    io->fd = fd;
    io->r = r;
    weft_atomic_waker_init(&io->rd);
    weft_atomic_waker_init(&io->wr);
    io->retired_next = NULL;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET, .data.ptr = io };
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int err = -errno;
        weft__free(io, sizeof *io);
        return err;
    }
    *out = io;
    return 0;
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
    weft__reactor_t *r = io->r;
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, io->fd, NULL); /* no-op if close did it */
    close(io->fd);
    io->fd = -1;
    /* Push on the retired stack; ring when it was empty (one doorbell per
     * batch: uv_async_send coalesces, the drain takes the whole stack). The
     * reactor's lock orders the ring before a stop closes the doorbell; once the
     * reactor is stopped, weft__reactor_stop/free drain the stack. */
    pthread_mutex_lock(&r->lock);
    weft__io_t *head = atomic_load_explicit(&r->retired, memory_order_relaxed);
    do {
        io->retired_next = head;
        /* release: our writes to io precede the reactor's free (its acquire
         * exchange in weft__reactor_io_free_retired). */
    } while (!atomic_compare_exchange_weak_explicit(&r->retired, &head, io, memory_order_release,
                                                    memory_order_relaxed));
    if (head == NULL && !atomic_load_explicit(&r->stopped, memory_order_relaxed))
        weft__reactor_ring(r);
    pthread_mutex_unlock(&r->lock);
}

void weft__reactor_io_free_retired(weft__reactor_t *r)
{
    /* acquire: pairs with the release CAS in weft__io_release. */
    weft__io_t *io = atomic_exchange_explicit(&r->retired, NULL, memory_order_acquire);
    if (io != NULL && atomic_load_explicit(&r->pollers, memory_order_seq_cst) != 0) {
        /* A worker is dispatching events and might name one of these: put
         * them back; the last poller out rings the doorbell again. */
        weft__io_t *last = io;
        while (last->retired_next != NULL)
            last = last->retired_next;
        weft__io_t *head = atomic_load_explicit(&r->retired, memory_order_relaxed);
        do {
            last->retired_next = head;
        } while (!atomic_compare_exchange_weak_explicit(&r->retired, &head, io, memory_order_release,
                                                        memory_order_relaxed));
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

void weft__io_close(weft__io_t *io)
{
    /* The fd itself stays open until the last reference goes (a future on
     * another thread may be inside a system call on it; closing now could
     * hand it a reused fd number). Waiters see CLOSED and stop. */
    set_ready(io, WEFT_IO_CLOSED | WEFT_IO_READ | WEFT_IO_WRITE);
    epoll_ctl(io->r->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    shutdown(io->fd, SHUT_RDWR);
    weft_atomic_waker_wake(&io->rd);
    weft_atomic_waker_wake(&io->wr);
    weft__io_release(io);
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

/* ---- The reactor side ---------------------------------------------------- */

#define EPOLL_BATCH 256

static void dispatch(struct epoll_event *ev, int n)
{
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
            weft_atomic_waker_wake(&io->rd);
        if (bits & WEFT_IO_WRITE)
            weft_atomic_waker_wake(&io->wr);
    }
}

static void epoll_cb(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    weft__reactor_t *r = h->data;
    struct epoll_event ev[EPOLL_BATCH];
    weft__sched_batch_begin();
    for (;;) {
        int n = epoll_wait(r->epfd, ev, EPOLL_BATCH, 0);
        dispatch(ev, n);
        if (n < EPOLL_BATCH)
            break;
    }
    weft__sched_batch_end();
}

unsigned weft__reactor_poll_io(weft__reactor_t *r, unsigned max)
{
    struct epoll_event ev[64];
    if (max > 64)
        max = 64;
    /* seq_cst: pairs with the load in weft__reactor_io_free_retired. */
    atomic_fetch_add_explicit(&r->pollers, 1, memory_order_seq_cst);
    int n = epoll_wait(r->epfd, ev, (int)max, 0);
    if (n > 0)
        dispatch(ev, n);
    if (atomic_fetch_sub_explicit(&r->pollers, 1, memory_order_seq_cst) == 1 &&
        atomic_load_explicit(&r->retired, memory_order_acquire) != NULL) {
        pthread_mutex_lock(&r->lock);
        if (!atomic_load_explicit(&r->stopped, memory_order_relaxed))
            weft__reactor_ring(r);
        pthread_mutex_unlock(&r->lock);
    }
    return n > 0 ? (unsigned)n : 0;
}

/* ---- Workers drive the sockets --------------------------------------------
 * In a multi-thread runtime the reactor thread does not watch the epoll
 * set: a worker with nothing to do claims the driver role and sleeps in
 * drive_epfd (the epoll set plus an eventfd, level-triggered) instead of on
 * its futex. Socket readiness wakes it; it takes the events itself
 * (weft__reactor_poll_io), so the tasks they wake land in its own queue
 * with no cross-thread hop, as in Tokio. Its parker records the eventfd
 * while it sleeps there, so weft__unpark wakes it by writing to the eventfd
 * instead of the futex (park.c: weft__park_driving). The kick goes through
 * drive_epfd only, never through the shared epoll set, so a worker polling
 * the set cannot swallow a kick meant for the driver. One driver at a time;
 * the other parked workers sleep on their futex, and busy workers still
 * poll the set every inject interval and before they park. The current-
 * thread flavour keeps the reactor thread's uv_poll: its one worker is the
 * block_on thread. */
#define KICK_TAG ((uint64_t)1)

bool weft__reactor_drive_claim(weft__reactor_t *r)
{
    /* acquire: the previous driver's work is visible to us. */
    return r->workers_drive && atomic_load_explicit(&r->driver, memory_order_relaxed) == 0 &&
           atomic_exchange_explicit(&r->driver, 1, memory_order_acquire) == 0;
}

void weft__reactor_drive_release(weft__reactor_t *r)
{
    atomic_store_explicit(&r->driver, 0, memory_order_release);
}

#ifdef WEFT_TEST_HOOKS
_Atomic long weft__driver_kicks;
#endif

void weft__reactor_kick_driver(weft__reactor_t *r)
{
#ifdef WEFT_TEST_HOOKS
    atomic_fetch_add_explicit(&weft__driver_kicks, 1, memory_order_relaxed);
#endif
    uint64_t one = 1;
    ssize_t rc = write(r->kick_fd, &one, sizeof one); /* EAGAIN: already kicked */
    (void)rc;
}

static _Atomic bool pwait2_works = true; /* false: the kernel (or valgrind) lacks epoll_pwait2 */

void weft__reactor_drive_wait(void *reactor)
{
    weft__reactor_t *r = reactor;
    struct epoll_event ev[2];
    /* Wake for the next timer too, so the driver fires it itself
     * (weft__reactor_fire_due) instead of waiting for the reactor thread:
     * at the very nanosecond its wheel millisecond begins (epoll_pwait2);
     * epoll_wait's whole milliseconds, the fallback on kernels before 5.11,
     * would add up to one more. */
    struct timespec ts, *tsp = NULL;
    uint64_t left = 0;
    /* Publish the wake-up time, then look again. seq_cst fence: Dekker with
     * weft__reactor_timer_insert_locked (store due_ms, fence, load
     * drive_until): either the second look sees a deadline inserted
     * meanwhile, or its inserter sees our drive_until and kicks us. */
    uint64_t due = weft__reactor_due_ms(r);
    for (;;) {
        atomic_store_explicit(&r->drive_until, due, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        uint64_t again = weft__reactor_due_ms(r);
        if (again >= due)
            break;
        due = again;
    }
    if (due != UINT64_MAX) {
        uint64_t at = r->origin_ns + due * 1000000u, now = weft__now_ns();
        left = at > now ? at - now : 0;
        /* Overdue more than twice in a row: the timer sits in a shard
         * whose lock another thread holds (fire_due only tries a lock).
         * Look again shortly rather than spin on a CPU that thread may
         * need. The driver role is ours alone, so is this count. */
        if (left > 0)
            r->drive_overdue = 0;
        else if (++r->drive_overdue > 2)
            left = WEFT__DRIVE_RETRY_NS;
        ts.tv_sec = (time_t)(left / 1000000000u);
        ts.tv_nsec = (long)(left % 1000000000u);
        tsp = &ts;
    }
    WEFT_CHAOS();
    int n = -1;
    if (atomic_load_explicit(&pwait2_works, memory_order_relaxed)) {
        n = epoll_pwait2(r->drive_epfd, ev, 2, tsp, NULL);
        /* ENOSYS on kernels before 5.11; valgrind answers other errors for
         * a call it does not know. Anything but EINTR: never ask again. */
        if (n < 0 && errno != EINTR)
            atomic_store_explicit(&pwait2_works, false, memory_order_relaxed);
    }
    if (n < 0 && !atomic_load_explicit(&pwait2_works, memory_order_relaxed)) {
        uint64_t ms = (left + 999999u) / 1000000u;
        n = epoll_wait(r->drive_epfd, ev, 2, tsp == NULL ? -1 : (ms > INT32_MAX ? INT32_MAX : (int)ms));
    }
    atomic_store_explicit(&r->drive_until, 0, memory_order_relaxed); /* nobody sleeps now */
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u64 == KICK_TAG) {
            uint64_t v;
            ssize_t rc = read(r->kick_fd, &v, sizeof v); /* reset the counter */
            (void)rc;
        }
    }
}

static int drive_init(weft__reactor_t *r)
{
    r->drive_epfd = epoll_create1(EPOLL_CLOEXEC);
    r->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->drive_epfd < 0 || r->kick_fd < 0)
        return -errno;
    struct epoll_event set = { .events = EPOLLIN, .data.u64 = 0 };
    struct epoll_event kick = { .events = EPOLLIN, .data.u64 = KICK_TAG };
    if (epoll_ctl(r->drive_epfd, EPOLL_CTL_ADD, r->epfd, &set) != 0 ||
        epoll_ctl(r->drive_epfd, EPOLL_CTL_ADD, r->kick_fd, &kick) != 0)
        return -errno;
    return 0;
}

void weft__reactor_io_close_drive(weft__reactor_t *r)
{
    if (r->drive_epfd >= 0)
        close(r->drive_epfd);
    if (r->kick_fd >= 0)
        close(r->kick_fd);
    r->drive_epfd = r->kick_fd = -1;
}

int weft__reactor_io_init(weft__reactor_t *r)
{
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r->epfd < 0)
        return -errno;
    atomic_init(&r->retired, NULL);
    atomic_init(&r->pollers, 0);
    atomic_init(&r->driver, 0);
    int rc = r->workers_drive ? drive_init(r) : 0;
    if (rc == 0)
        rc = uv_poll_init(&r->loop, &r->epoll_watch, r->epfd);
    if (rc != 0) {
        weft__reactor_io_close_drive(r);
        close(r->epfd);
        return rc;
    }
    r->epoll_watch.data = r;
    if (!r->workers_drive)
        uv_poll_start(&r->epoll_watch, UV_READABLE, epoll_cb);
    return 0;
}
