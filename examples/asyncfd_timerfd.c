/* examples/asyncfd_timerfd.c - driving fds weft knows nothing about with
 * weft/asyncfd.h: a timerfd ticking every 10 ms, read by one task through
 * the await-call-clear loop future (weft_async_fd_io), and an eventfd that
 * a plain thread signals after 35 ms, awaited by another task by hand
 * (readable, then its own read through try_io, which clears the readiness
 * on EAGAIN). Prints what it saw; exits 0 when the timer ticked at least
 * 5 times and the event arrived with its value (tests run it).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>

/* The system calls, in the weft_async_fd_io_cb shape: bytes or -errno. */
static ssize_t read_u64(int fd, void *arg)
{
    ssize_t n = read(fd, arg, sizeof(uint64_t));
    return n >= 0 ? n : -errno;
}

/* ---- The timer task: counts 5 ticks ------------------------------------------ */
typedef struct {
    WEFT_FRAME;
    weft_async_fd_t *timer;
    uint64_t expirations, total;
    ssize_t n;
    weft_async_fd_io_t io;
} ticker_t;
WEFT_ASYNC(ticker_t, ticker_fn, int)
{
    WEFT_BEGIN();
    while (self->total < 5) {
        /* Waits for readable, reads; on EAGAIN clears and waits again. */
        WEFT_AWAIT(&self->io, weft_async_fd_io(self->timer, WEFT_FD_READABLE, read_u64, &self->expirations),
                   &self->n);
        if (self->n < 0)
            WEFT_RETURN((int)self->n);
        self->total += self->expirations; /* a late read sees several */
    }
    WEFT_RETURN((int)self->total);
    WEFT_END();
}

/* ---- The event task: the same steps by hand ------------------------------------ */
typedef struct {
    WEFT_FRAME;
    weft_async_fd_t *event;
    weft_async_fd_guard_t guard;
    uint64_t value;
    int rc;
    ssize_t n;
    weft_async_fd_ready_t ready;
} waiter_t;
WEFT_ASYNC(waiter_t, waiter_fn, int)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->ready, weft_async_fd_readable(self->event, &self->guard), &self->rc);
        if (self->rc < 0)
            WEFT_RETURN(self->rc);
        self->n = weft_async_fd_try_io(&self->guard, read_u64, &self->value);
        if (self->n == WEFT_EAGAIN)
            continue; /* nothing after all: readiness cleared, wait again */
        WEFT_RETURN(self->n < 0 ? (int)self->n : (int)self->value);
    }
    WEFT_END();
}

static void *signaller(void *arg)
{
    struct timespec ts = { 0, 35 * 1000000L };
    nanosleep(&ts, NULL);
    uint64_t one = 1;
    if (write(*(int *)arg, &one, sizeof one) != sizeof one)
        perror("write eventfd");
    return NULL;
}

/* ---- main ------------------------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    int tfd, efd, ticks, event, rc;
    weft_async_fd_t timer, event_afd;
    weft_join_handle_t ht, he;
    ticker_t ticker;
    waiter_t waiter;
} main_t;
WEFT_ASYNC(main_t, main_fn, int)
{
    WEFT_BEGIN();
    /* Register both (the fds stay ours: we close them in main()). */
    if ((self->rc = weft_async_fd_register(self->tfd, &self->timer)) != 0 ||
        (self->rc = weft_async_fd_register(self->efd, &self->event_afd)) != 0) {
        fprintf(stderr, "register: %s\n", weft_strerror(self->rc));
        weft_async_fd_deregister(&self->timer);
        WEFT_RETURN(1);
    }
    self->ticker = (ticker_t){ WEFT_FRAME_INIT(ticker_fn), .timer = &self->timer };
    self->waiter = (waiter_t){ WEFT_FRAME_INIT(waiter_fn), .event = &self->event_afd };
    if (weft_spawn(&self->ticker, &self->ht) != 0 || weft_spawn(&self->waiter, &self->he) != 0)
        WEFT_RETURN(1); /* (an example: a real program would clean up) */
    WEFT_AWAIT_REF(weft_join(&self->ht, &self->ticks), &self->rc);
    WEFT_AWAIT_REF(weft_join(&self->he, &self->event), &self->rc);
    weft_async_fd_deregister(&self->timer);
    weft_async_fd_deregister(&self->event_afd);
    printf("ticks=%d event=%d\n", self->ticks, self->event);
    WEFT_RETURN(self->ticks >= 5 && self->event == 1 ? 0 : 1);
    WEFT_END();
}

int main(void)
{
    main_t m = { WEFT_FRAME_INIT(main_fn) };
    m.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    m.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct itimerspec its = { { 0, 10 * 1000000L }, { 0, 10 * 1000000L } };
    if (m.tfd < 0 || m.efd < 0 || timerfd_settime(m.tfd, 0, &its, NULL) != 0) {
        perror("timerfd/eventfd");
        return 1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, signaller, &m.efd) != 0)
        return 1;
    weft_runtime_t *rt;
    if (weft_runtime_new(NULL, &rt) != 0)
        return 1;
    int rc = 1;
    if (weft_runtime_block_on(rt, WEFT_FUTURE(&m), &rc) != 0)
        rc = 1;
    weft_runtime_free(rt);
    pthread_join(th, NULL);
    close(m.tfd);
    close(m.efd);
    return rc;
}
