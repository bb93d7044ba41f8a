/* reactor/uv_thread.c - the libuv thread: one per runtime with drivers,
 * and the only file that calls libuv.
 *
 * Its loop has a doorbell (uv_async_t: rung to free retired sockets, to
 * re-arm the backstop timer for an earlier deadline, and to stop), the time
 * driver's backstop timer (uv_timer_t: fires what no worker fired in time;
 * on a current-thread runtime every timer), a watch on the process's
 * signal pipe (uv_poll_t), and on a current-thread runtime a watch on the
 * I/O driver's epoll set (its one worker is the block_on thread, which
 * never sleeps in epoll). Workers never block on this thread.
 */
#include <limits.h>
#include <string.h>

#include "io_driver.h"
#include "signal_driver.h"
#include "time_driver.h"

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
    /* acquire: pairs with weft__uv_stop's release store. */
    if (atomic_load_explicit(&d->uv.stopping, memory_order_acquire)) {
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

int weft__uv_start(weft__driver_t *d)
{
    weft__uv_thread_t *u = &d->uv;
    int sig_fd = weft__signal_pipe_fd();
    if (sig_fd < 0)
        return sig_fd;
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
    atomic_init(&u->stopping, false);
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

fail_handles:
    uv_close((uv_handle_t *)&u->timer, NULL);
    uv_close((uv_handle_t *)&u->doorbell, NULL);
    uv_run(&u->loop, UV_RUN_DEFAULT);
    uv_loop_close(&u->loop);
    return rc;
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
