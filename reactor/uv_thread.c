/* reactor/uv_thread.c - the libuv thread: one per runtime with drivers,
 * and the only file that calls libuv.
 *
 * Its loop has a doorbell (uv_async_t: rung to free retired sockets, to
 * re-arm the backstop timer for an earlier deadline, to answer child
 * process requests (uv_process.c), and to stop), the time
 * driver's backstop timer (uv_timer_t: fires what no worker fired in time;
 * on a current-thread runtime every timer), a watch on the process's
 * signal pipe (uv_poll_t), and on a current-thread runtime a watch on the
 * I/O driver's epoll set (its one worker is the block_on thread, which
 * never sleeps in epoll). Workers never block on this thread. Child
 * processes (spawn, kill, reaping) are in uv_process.c, the one other file
 * that calls libuv.
 */
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "io_driver.h"
#include "signal_driver.h"
#include "time_driver.h"

/* ---- libuv's memory ---------------------------------------------------------
 *
 * libuv allocates through weft's allocator (installed once, before weft's
 * first libuv call), so the test library's failure injection reaches its
 * allocations too, and a failed one comes back from uv_loop_init as
 * UV_ENOMEM (== WEFT_ENOMEM).
 *
 * One allocation cannot fail cleanly: libuv keeps a table indexed by file
 * descriptor (the loop's watchers) and grows it with realloc whenever it
 * starts watching a descriptor beyond its end (uv_loop_init's signal pipe,
 * the doorbell's eventfd, uv_poll_start), and it aborts when that realloc
 * fails. So weft_runtime_new allocates the table's memory first, where a
 * failure is an ordinary WEFT_ENOMEM (reserve_arm), and while set-up runs,
 * libuv's reallocs on this thread are served from that block: the first
 * takes it, the later ones that still fit get it back in place (realloc
 * may return its argument). Its size covers every descriptor the set-up
 * will watch: the signal pipe and the epoll set (open already), and the
 * four libuv creates (an epoll set, a pipe, an eventfd), which take the
 * lowest free numbers, with room to spare for descriptors other threads
 * open meanwhile. */
typedef struct uv_reserve {
    void *block;  /* NULL: not armed */
    size_t cap;
    bool handed;  /* libuv owns the block now (and frees it with the loop) */
} uv_reserve_t;

static _Thread_local uv_reserve_t reserve;

static void *uv_malloc_fn(size_t n)
{
    return weft__alloc(n);
}

static void *uv_calloc_fn(size_t n, size_t size)
{
    return weft__calloc(n, size);
}

static void *uv_realloc_fn(void *p, size_t n)
{
    uv_reserve_t *r = &reserve;
    if (r->block != NULL && n <= r->cap) {
        if (p == NULL && !r->handed) {
            r->handed = true;
            return r->block;
        }
        if (p == r->block && r->handed)
            return p;
    }
    return weft__realloc(p, n);
}

static void uv_free_fn(void *p)
{
    weft__free_unsized(p);
}

static void install_allocator(void)
{
    /* Before weft's first libuv call (docs/architecture.md says what a
     * program that uses libuv itself must do). */
    if (uv_replace_allocator(uv_malloc_fn, uv_realloc_fn, uv_calloc_fn, uv_free_fn) != 0)
        weft_panic(WEFT_SITE, "driver: uv_replace_allocator refused weft's allocator");
}

/* The largest descriptor set-up can watch: see the section comment. */
static int highest_fd_bound(int known)
{
    int probe[4], hi = known;
    unsigned n = 0;
    for (; n < 4; n++) {
        probe[n] = fcntl(known, F_DUPFD_CLOEXEC, 0);
        if (probe[n] < 0)
            break; /* out of descriptors: libuv's own calls will say so */
        if (probe[n] > hi)
            hi = probe[n];
    }
    while (n > 0)
        close(probe[--n]);
    return hi + 64;
}

static int reserve_arm(int max_fd)
{
    /* libuv sizes the table for descriptor fd at the power of two that
     * holds fd + 3 pointers. */
    size_t slots = 4;
    while (slots < (size_t)max_fd + 3)
        slots *= 2;
    reserve.cap = slots * sizeof(void *);
    reserve.handed = false;
    reserve.block = weft__alloc(reserve.cap);
    return reserve.block != NULL ? 0 : WEFT_ENOMEM;
}

static void reserve_disarm(void)
{
    if (!reserve.handed)
        weft__free(reserve.block, reserve.cap);
    reserve.block = NULL;
}

/* ---- The thread --------------------------------------------------------------- */

static void on_close(uv_handle_t *h)
{
    (void)h;
}

/* The backstop: fires what is due (time_driver.c) and re-arms the timer
 * for what is next. */
static void backstop(weft__driver_t *d);

static void timer_cb(uv_timer_t *t)
{
    backstop(t->data);
}

static void backstop(weft__driver_t *d)
{
    if (!d->has_time)
        return;
    uint64_t delay = weft__time_backstop(d);
    if (delay == UINT64_MAX) {
        uv_timer_stop(&d->uv.timer);
        return;
    }
    uv_update_time(&d->uv.loop); /* libuv measures the delay from its cached time */
    uv_timer_start(&d->uv.timer, timer_cb, delay, 0);
}

static void close_handles(weft__driver_t *d)
{
    uv_timer_stop(&d->uv.timer);
    uv_close((uv_handle_t *)&d->uv.timer, on_close);
    uv_close((uv_handle_t *)&d->uv.doorbell, on_close);
    uv_close((uv_handle_t *)&d->uv.signal_watch, on_close);
    if (d->uv.epoll_watched)
        uv_close((uv_handle_t *)&d->uv.epoll_watch, on_close);
}

static void doorbell_cb(uv_async_t *a)
{
    weft__driver_t *d = a->data;
    weft__io_free_retired(d);
    weft__uv_proc_run(d);
    /* acquire: pairs with weft__uv_stop's release store. */
    if (atomic_load_explicit(&d->uv.stopping, memory_order_acquire)) {
        weft__uv_proc_stop(d);
        close_handles(d);
        return;
    }
    backstop(d);
}

static void epoll_cb(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    weft__io_poll_events(h->data, UINT_MAX);
}

static void signal_cb(uv_poll_t *h, int status, int events)
{
    (void)h, (void)status, (void)events;
    weft__signal_dispatch();
}

static void *uv_main(void *arg)
{
    weft__driver_t *d = arg;
    uv_run(&d->uv.loop, UV_RUN_DEFAULT); /* returns once every handle closed */
    return NULL;
}

void weft__uv_ring(weft__driver_t *d)
{
    pthread_mutex_lock(&d->lock); /* a stop cannot close the doorbell meanwhile */
    if (!atomic_load_explicit(&d->stopped, memory_order_relaxed))
        uv_async_send(&d->uv.doorbell);
    pthread_mutex_unlock(&d->lock);
}

/* The loop and its handles (weft__uv_start). */
static int loop_setup(weft__driver_t *d, int sig_fd)
{
    weft__uv_thread_t *u = &d->uv;
    int rc = uv_loop_init(&u->loop);
    if (rc != 0)
        return rc; /* libuv errors are negated errno values */
    /* The doorbell may fail: libuv creates the loop's eventfd with the
     * first async handle (EMFILE, ENFILE). The timer only links itself. */
    rc = uv_async_init(&u->loop, &u->doorbell, doorbell_cb);
    if (rc != 0) {
        uv_loop_close(&u->loop);
        return rc;
    }
    (void)uv_timer_init(&u->loop, &u->timer); /* always 0 */
    u->doorbell.data = d;
    u->timer.data = d;
    rc = uv_poll_init(&u->loop, &u->signal_watch, sig_fd);
    if (rc != 0)
        goto fail_handles;
    u->signal_watch.data = d;
    if (d->has_io && !d->workers_drive) {
        rc = uv_poll_init(&u->loop, &u->epoll_watch, d->io.epfd);
        if (rc != 0) {
            uv_close((uv_handle_t *)&u->signal_watch, NULL);
            goto fail_handles;
        }
        u->epoll_watched = true;
        u->epoll_watch.data = d;
        uv_poll_start(&u->epoll_watch, UV_READABLE, epoll_cb);
    }
    uv_poll_start(&u->signal_watch, UV_READABLE, signal_cb);
    return 0;

fail_handles:
    uv_close((uv_handle_t *)&u->timer, NULL);
    uv_close((uv_handle_t *)&u->doorbell, NULL);
    uv_run(&u->loop, UV_RUN_DEFAULT);
    uv_loop_close(&u->loop);
    return rc;
}

int weft__uv_start(weft__driver_t *d)
{
    static pthread_once_t allocator_once = PTHREAD_ONCE_INIT;
    pthread_once(&allocator_once, install_allocator);
    weft__uv_thread_t *u = &d->uv;
    int sig_fd = weft__signal_pipe_fd();
    if (sig_fd < 0)
        return sig_fd;
    int rc = reserve_arm(highest_fd_bound(d->has_io && d->io.epfd > sig_fd ? d->io.epfd : sig_fd));
    if (rc == 0)
        rc = loop_setup(d, sig_fd);
    reserve_disarm();
    if (rc != 0)
        return rc;
    atomic_init(&u->stopping, false);
    /* glibc reports a stack it could not map as EAGAIN, like the thread
     * limit (docs/errors.md). */
    if (pthread_create(&u->thread, NULL, uv_main, d) != 0) {
        close_handles(d);
        uv_run(&u->loop, UV_RUN_DEFAULT);
        uv_loop_close(&u->loop);
        return WEFT_EAGAIN;
    }
    char tn[16];
    snprintf(tn, sizeof tn, "%.10s-io", d->name);
    pthread_setname_np(u->thread, tn);
    u->started = true;
    return 0;
}

void weft__uv_stop(weft__driver_t *d)
{
    weft__uv_thread_t *u = &d->uv;
    if (!u->started)
        return;
    u->started = false;
    /* release: pairs with doorbell_cb's acquire. The doorbell is rung
     * directly: `stopped` is already set, so weft__uv_ring would not. */
    atomic_store_explicit(&u->stopping, true, memory_order_release);
    uv_async_send(&u->doorbell);
    pthread_join(u->thread, NULL);
    int rc = uv_loop_close(&u->loop);
    if (rc != 0)
        weft_panic(WEFT_SITE, "driver: uv_loop_close failed (%s): a handle was left open", uv_strerror(rc));
}
