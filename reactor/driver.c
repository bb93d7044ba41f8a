/* reactor/driver.c - the driver object: starting and stopping its parts
 * (io_driver.c, time_driver.c, uv_thread.c), and the parking of one idle
 * worker inside it. See driver.h for what the scheduler sees.
 *
 * Parking in the driver (multi-thread runtimes): a worker with nothing to
 * do takes the park role (one worker at a time) and sleeps in park.epfd,
 * which holds the sockets' epoll set and an eventfd, level-triggered,
 * instead of on its futex; the others sleep on their futex. Socket
 * readiness wakes it, and so does the next timer's deadline: it then takes
 * the events and fires the timers itself, so the woken tasks land in its
 * own queue with no cross-thread hop, as in Tokio. Its parker is marked
 * PARKED_ELSEWHERE meanwhile (runtime/park.c), so the scheduler's unpark
 * comes here (weft__driver_unpark) and writes to the eventfd. The eventfd
 * is in park.epfd only, never in the sockets' set, so a worker polling the
 * sockets cannot swallow a kick meant for the parked one.
 */
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "io_driver.h"
#include "time_driver.h"

#define KICK_TAG ((uint64_t)1)

static int park_init(weft__driver_t *d)
{
    weft__driver_park_t *pk = &d->park;
    pk->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (pk->epfd < 0)
        return -errno;
    pk->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pk->kick_fd < 0)
        return -errno;
    struct epoll_event set = { .events = EPOLLIN, .data.u64 = 0 };
    struct epoll_event kick = { .events = EPOLLIN, .data.u64 = KICK_TAG };
    if ((d->has_io && epoll_ctl(pk->epfd, EPOLL_CTL_ADD, d->io.epfd, &set) != 0) ||
        epoll_ctl(pk->epfd, EPOLL_CTL_ADD, pk->kick_fd, &kick) != 0)
        return -errno;
    return 0;
}

static void park_close(weft__driver_t *d)
{
    if (d->park.epfd >= 0)
        close(d->park.epfd);
    if (d->park.kick_fd >= 0)
        close(d->park.kick_fd);
    d->park.epfd = d->park.kick_fd = -1;
}

int weft__driver_start(const weft__driver_cfg_t *cfg, weft__driver_t **out)
{
    if (cfg->time && (cfg->nshards == 0 || cfg->nshards > UINT16_MAX))
        weft_panic(WEFT_SITE, "driver: %u timer shards (1..65535)", cfg->nshards);
    weft__driver_t *d = weft__alloc(sizeof *d);
    if (d == NULL)
        return WEFT_ENOMEM;
    memset(d, 0, sizeof *d);
    d->has_io = cfg->io;
    d->has_time = cfg->time;
    d->workers_drive = cfg->workers_drive;
    d->io.epfd = d->park.epfd = d->park.kick_fd = -1;
    snprintf(d->name, sizeof d->name, "%s", cfg->name ? cfg->name : "weft");
    pthread_mutex_init(&d->lock, NULL);
    atomic_init(&d->stopped, false);
    atomic_init(&d->park.held, 0);
    int rc = 0;
    if (cfg->paused && !cfg->time)
        weft_panic(WEFT_SITE, "driver: a virtual clock needs time");
    if (d->has_time && (rc = weft__time_init(d, cfg->nshards, cfg->paused)) != 0)
        goto fail;
    if (d->has_io && (rc = weft__io_init(d)) != 0)
        goto fail_time;
    if (d->workers_drive && (rc = park_init(d)) != 0)
        goto fail_park;
    if ((rc = weft__uv_start(d)) != 0)
        goto fail_park;
    *out = d;
    return 0;

fail_park:
    park_close(d);
    if (d->has_io)
        weft__io_stop(d);
fail_time:
    if (d->has_time)
        weft__time_free(d);
fail:
    pthread_mutex_destroy(&d->lock);
    weft__free(d, sizeof *d);
    return rc;
}

void weft__driver_stop(weft__driver_t *d)
{
    if (d == NULL || atomic_load_explicit(&d->stopped, memory_order_relaxed))
        return;
    /* First refuse new timers (they are due at once from now on, and ring
     * no doorbell that is about to close), then fire every timer left. */
    pthread_mutex_lock(&d->lock);
    atomic_store_explicit(&d->stopped, true, memory_order_relaxed);
    pthread_mutex_unlock(&d->lock);
    if (d->has_time)
        weft__time_stop(d);
    weft__uv_stop(d);
    weft__io_stop(d);
}

void weft__driver_free(weft__driver_t *d)
{
    if (d == NULL)
        return;
    if (d->has_io)
        weft__io_free_retired(d); /* released after the stop */
    park_close(d);
    if (d->has_time)
        weft__time_free(d);
    pthread_mutex_destroy(&d->lock);
    weft__free(d, sizeof *d);
}

unsigned weft__driver_poll_events(weft__driver_t *d, unsigned max)
{
    return weft__io_poll_events(d, max);
}

unsigned weft__driver_fire_timers(weft__driver_t *d, unsigned self, weft__fire_mode_t mode)
{
    return weft__time_fire_due(d, self, mode);
}

unsigned weft__driver_advance_to_next(weft__driver_t *d)
{
    return weft__time_advance_to_next(d);
}

void weft__driver_advance(weft__driver_t *d, uint64_t ns)
{
    weft__time_advance(d, ns);
}

bool weft__driver_io_idle(weft__driver_t *d)
{
    /* seq_cst: pairs with weft__io_poll_events' increment and decrement:
     * a 0 that follows a poller's decrement makes the wakes it queued
     * before it visible to the caller's next look at the queues. */
    return !d->has_io || atomic_load_explicit(&d->io.pollers, memory_order_seq_cst) == 0;
}

bool weft__driver_has_parked(weft__driver_t *d)
{
    return d->workers_drive && atomic_load_explicit(&d->park.held, memory_order_relaxed) != 0;
}

bool weft__driver_timers_pending(weft__driver_t *d)
{
    return d->has_time && weft__time_due_ms(d) != UINT64_MAX;
}

/* ---- Parking ---------------------------------------------------------------- */

static _Atomic bool pwait2_works = true; /* false: the kernel (or valgrind) lacks epoll_pwait2 */

/* The parked worker's sleep (weft__park_elsewhere's wait): until socket
 * readiness, a kick, or the next timer's deadline, at the very nanosecond
 * its wheel millisecond begins (epoll_pwait2; epoll_wait's whole
 * milliseconds, the fallback on kernels before 5.11, would add up to one
 * more). */
static void park_wait(void *arg)
{
    weft__driver_t *d = arg;
    struct epoll_event ev[2];
    struct timespec ts, *tsp = NULL;
    uint64_t left = 0;
    uint64_t due = weft__time_park_begin(d);
    if (due != UINT64_MAX) {
        left = weft__time_park_timeout_ns(d, due);
        ts.tv_sec = (time_t)(left / 1000000000u);
        ts.tv_nsec = (long)(left % 1000000000u);
        tsp = &ts;
    }
    WEFT_CHAOS();
    int n = -1;
    if (atomic_load_explicit(&pwait2_works, memory_order_relaxed)) {
        n = epoll_pwait2(d->park.epfd, ev, 2, tsp, NULL);
        /* ENOSYS on kernels before 5.11; valgrind answers other errors for
         * a call it does not know. Anything but EINTR: never ask again. */
        if (n < 0 && errno != EINTR)
            atomic_store_explicit(&pwait2_works, false, memory_order_relaxed);
    }
    if (n < 0 && !atomic_load_explicit(&pwait2_works, memory_order_relaxed)) {
        uint64_t ms = (left + 999999u) / 1000000u;
        n = epoll_wait(d->park.epfd, ev, 2, tsp == NULL ? -1 : (ms > INT32_MAX ? INT32_MAX : (int)ms));
    }
    weft__time_park_end(d);
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u64 == KICK_TAG) {
            uint64_t v;
            ssize_t rc = read(d->park.kick_fd, &v, sizeof v); /* reset the counter */
            (void)rc;
        }
    }
}

weft__park_result_t weft__driver_park(weft__driver_t *d, weft__parker_t *p)
{
    /* acquire: the previous holder's work (its park_overdue count) is
     * visible to us; pairs with the release store below. */
    if (!d->workers_drive || atomic_load_explicit(&d->park.held, memory_order_relaxed) != 0 ||
        atomic_exchange_explicit(&d->park.held, 1, memory_order_acquire) != 0)
        return WEFT__PARK_NOT_DRIVER;
    bool permit = weft__park_elsewhere(p, park_wait, d);
    atomic_store_explicit(&d->park.held, 0, memory_order_release);
    return permit ? WEFT__PARK_PERMIT : WEFT__PARK_EVENTS;
}

void weft__driver_unpark(weft__driver_t *d)
{
    uint64_t one = 1;
    ssize_t rc = write(d->park.kick_fd, &one, sizeof one); /* EAGAIN: already kicked */
    (void)rc;
}
