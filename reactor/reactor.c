/* reactor/reactor.c - the reactor thread: a libuv loop with one doorbell
 * (uv_async_t) and one timer (uv_timer_t) armed for the wheel's next
 * deadline. See reactor.h. */
#include "reactor.h"

#include <string.h>
#include <unistd.h>

#include "weft/time.h"
#include "io.h"
#include "../runtime/scheduler.h"

uint64_t weft_now_ns(void)
{
    return weft__now_ns();
}

uint64_t weft__reactor_ms_ceil(const weft__reactor_t *r, uint64_t ns)
{
    if (ns <= r->origin_ns)
        return 0;
    return (ns - r->origin_ns + 999999u) / 1000000u;
}

uint64_t weft__reactor_now_ms(const weft__reactor_t *r)
{
    return (weft__now_ns() - r->origin_ns) / 1000000u;
}

bool weft__reactor_timer_insert_locked(weft__reactor_t *r, weft__timer_t *e, uint64_t ms, bool *ring)
{
    /* The wheel's time may lag behind the clock (the reactor advances it
     * when it wakes); a deadline already reached is due now either way. */
    if (r->stopped || ms <= weft__reactor_now_ms(r))
        return false; /* due now (or no reactor left to wait for) */
    if (!weft__wheel_insert(&r->wheel, e, ms))
        return false;
    if (e->wheel_deadline_ < r->armed) {
        r->armed = e->wheel_deadline_; /* later inserters need not ring again */
        *ring = true;
    }
    if (e->wheel_deadline_ < atomic_load_explicit(&r->due_ms, memory_order_relaxed))
        atomic_store_explicit(&r->due_ms, e->wheel_deadline_, memory_order_relaxed);
    return true;
}

void weft__reactor_ring(weft__reactor_t *r)
{
    uv_async_send(&r->doorbell);
}

/* Wakers of fired timers, woken outside the time lock in batches: waking
 * is the slow part (each one schedules a task), and workers registering new
 * timers should not wait behind it. */
#define FIRE_BATCH 64
typedef struct {
    weft_waker_t w[FIRE_BATCH];
    unsigned n;
} fire_batch_t;

/* Fires one due timer (under the time lock, so the sleep's drop, which takes
 * the lock, cannot free it meanwhile): publish, then take its waker. The
 * waker is a handle of its own, safe to wake after the sleep is gone. */
static void fire_timer(weft__timer_t *e, void *arg)
{
    fire_batch_t *b = arg;
    weft_sleep_t *s = (weft_sleep_t *)(void *)((char *)e - offsetof(weft_sleep_t, entry_));
    /* release: pairs with the acquire load in sleep_poll. */
    atomic_store_explicit(&s->fired_, 1, memory_order_release);
    weft_waker_t w = weft_atomic_waker_take(&s->waker_);
    if (w.vtable != NULL)
        b->w[b->n++] = w;
}

static void wake_batch_to(fire_batch_t *b, bool woken)
{
    if (woken)
        weft__sched_batch_begin_woken();
    else
        weft__sched_batch_begin();
    for (unsigned i = 0; i < b->n; i++)
        weft_waker_wake(&b->w[i]);
    weft__sched_batch_end();
    b->n = 0;
}

static void wake_batch(fire_batch_t *b)
{
    wake_batch_to(b, false);
}

static void timer_cb(uv_timer_t *t);

/* Fires what is due and re-arms the libuv timer for what is next. */
static void process_timers(weft__reactor_t *r)
{
    fire_batch_t b;
    b.n = 0;
    uint64_t now_ms = weft__reactor_now_ms(r);
    pthread_mutex_lock(&r->time_lock);
    /* At most FIRE_BATCH timers per pass under the lock, then wake them. */
    while (weft__wheel_advance_max(&r->wheel, now_ms, fire_timer, &b, FIRE_BATCH) == FIRE_BATCH) {
        pthread_mutex_unlock(&r->time_lock);
        wake_batch(&b);
        pthread_mutex_lock(&r->time_lock);
    }
    uint64_t next = weft__wheel_next(&r->wheel);
    r->armed = next;
    atomic_store_explicit(&r->due_ms, next, memory_order_relaxed);
    pthread_mutex_unlock(&r->time_lock);
    wake_batch(&b);
    if (next == UINT64_MAX) {
        uv_timer_stop(&r->timer);
        return;
    }
    uint64_t now = weft__reactor_now_ms(r);
    uv_update_time(&r->loop); /* libuv measures the delay from its cached time */
    uv_timer_start(&r->timer, timer_cb, next > now ? next - now : 0, 0);
}

static void timer_cb(uv_timer_t *t)
{
    process_timers(t->data);
}

unsigned weft__reactor_fire_due(weft__reactor_t *r, bool to_woken)
{
    if (!r->workers_drive)
        return 0;
    uint64_t now_ms = weft__reactor_now_ms(r);
    if (now_ms < atomic_load_explicit(&r->due_ms, memory_order_relaxed))
        return 0;
    fire_batch_t b;
    b.n = 0;
    unsigned fired = 0;
    pthread_mutex_lock(&r->time_lock);
    if (r->stopped) {
        pthread_mutex_unlock(&r->time_lock);
        return 0;
    }
    /* The libuv timer stays armed for its time: when it fires it finds
     * less to do, and re-arms for what is left. */
    uint64_t n;
    while ((n = weft__wheel_advance_max(&r->wheel, now_ms, fire_timer, &b, FIRE_BATCH)) == FIRE_BATCH) {
        pthread_mutex_unlock(&r->time_lock);
        fired += b.n;
        wake_batch_to(&b, to_woken);
        pthread_mutex_lock(&r->time_lock);
    }
    atomic_store_explicit(&r->due_ms, weft__wheel_next(&r->wheel), memory_order_relaxed);
    pthread_mutex_unlock(&r->time_lock);
    fired += b.n;
    wake_batch_to(&b, to_woken);
    return fired;
}

static void on_close(uv_handle_t *h)
{
    (void)h;
}

bool weft__reactor_submit(weft__reactor_t *r, weft__op_t *op)
{
    pthread_mutex_lock(&r->time_lock); /* orders the ring before a stop */
    if (r->stopped) {
        pthread_mutex_unlock(&r->time_lock);
        return false;
    }
    weft__op_t *head = atomic_load_explicit(&r->ops, memory_order_relaxed);
    do {
        op->next = head;
        /* release: op's contents reach the drain (acquire exchange). */
    } while (!atomic_compare_exchange_weak_explicit(&r->ops, &head, op, memory_order_release,
                                                    memory_order_relaxed));
    if (head == NULL)
        weft__reactor_ring(r);
    pthread_mutex_unlock(&r->time_lock);
    return true;
}

/* Runs every queued op, oldest first (the stack is reversed). */
static void run_ops(weft__reactor_t *r)
{
    /* acquire: pairs with weft__reactor_submit's release CAS. */
    weft__op_t *op = atomic_exchange_explicit(&r->ops, NULL, memory_order_acquire), *fifo = NULL;
    while (op != NULL) {
        weft__op_t *next = op->next;
        op->next = fifo;
        fifo = op;
        op = next;
    }
    while (fifo != NULL) {
        weft__op_t *next = fifo->next;
        fifo->run(r, fifo);
        fifo = next;
    }
}

static void doorbell_cb(uv_async_t *a)
{
    weft__reactor_t *r = a->data;
    weft__reactor_io_free_retired(r);
    run_ops(r);
    if (atomic_load_explicit(&r->stopping, memory_order_acquire)) {
        uv_timer_stop(&r->timer);
        uv_close((uv_handle_t *)&r->timer, on_close);
        uv_close((uv_handle_t *)&r->doorbell, on_close);
        uv_close((uv_handle_t *)&r->epoll_watch, on_close);
        uv_close((uv_handle_t *)&r->signal_watch, on_close);
        return;
    }
    process_timers(r);
}

static void *reactor_main(void *arg)
{
    weft__reactor_t *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT); /* returns once both handles closed */
    return NULL;
}

int weft__reactor_start(weft__reactor_t **out, const char *name, bool workers_drive)
{
    weft__reactor_t *r = weft__alloc(sizeof *r);
    if (r == NULL)
        return WEFT_ENOMEM;
    memset(r, 0, sizeof *r);
    r->workers_drive = workers_drive;
    r->drive_epfd = r->kick_fd = -1;
    int rc = uv_loop_init(&r->loop);
    if (rc != 0) {
        weft__free(r, sizeof *r);
        return rc; /* libuv errors are negated errno values */
    }
    uv_async_init(&r->loop, &r->doorbell, doorbell_cb);
    uv_timer_init(&r->loop, &r->timer);
    r->doorbell.data = r;
    r->timer.data = r;
    rc = weft__reactor_io_init(r);
    if (rc == 0 && (rc = weft__reactor_signal_init(r)) != 0) {
        uv_close((uv_handle_t *)&r->epoll_watch, NULL);
        weft__reactor_io_close_drive(r);
        close(r->epfd);
    }
    if (rc != 0) {
        uv_close((uv_handle_t *)&r->timer, NULL);
        uv_close((uv_handle_t *)&r->doorbell, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
        weft__free(r, sizeof *r);
        return rc;
    }
    pthread_mutex_init(&r->time_lock, NULL);
    r->origin_ns = weft__now_ns();
    weft__wheel_init(&r->wheel, 0);
    r->armed = UINT64_MAX;
    atomic_init(&r->due_ms, UINT64_MAX);
    atomic_init(&r->stopping, false);
    atomic_init(&r->ops, NULL);
    if (pthread_create(&r->thread, NULL, reactor_main, r) != 0) {
        uv_close((uv_handle_t *)&r->timer, NULL);
        uv_close((uv_handle_t *)&r->doorbell, NULL);
        uv_close((uv_handle_t *)&r->epoll_watch, NULL);
        uv_close((uv_handle_t *)&r->signal_watch, NULL);
        weft__reactor_io_close_drive(r);
        close(r->epfd);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
        pthread_mutex_destroy(&r->time_lock);
        weft__free(r, sizeof *r);
        return WEFT_EAGAIN;
    }
    char tn[16];
    snprintf(tn, sizeof tn, "%.10s-io", name);
    pthread_setname_np(r->thread, tn);
    r->started = true;
    *out = r;
    return 0;
}

void weft__reactor_stop(weft__reactor_t *r)
{
    if (r == NULL || !r->started)
        return;
    r->started = false;
    /* First refuse new timers (they are due at once from now on, and do not
     * ring a doorbell that is about to close), then fire every timer left:
     * a sleep awaited by a block_on on another thread must not wait for a
     * reactor that is gone. */
    fire_batch_t b;
    b.n = 0;
    pthread_mutex_lock(&r->time_lock);
    r->stopped = true;
    while (weft__wheel_advance_max(&r->wheel, UINT64_MAX, fire_timer, &b, FIRE_BATCH) == FIRE_BATCH) {
        pthread_mutex_unlock(&r->time_lock);
        wake_batch(&b);
        pthread_mutex_lock(&r->time_lock);
    }
    pthread_mutex_unlock(&r->time_lock);
    wake_batch(&b);
    /* release: pairs with doorbell_cb's acquire. */
    atomic_store_explicit(&r->stopping, true, memory_order_release);
    uv_async_send(&r->doorbell);
    pthread_join(r->thread, NULL);
    int rc = uv_loop_close(&r->loop);
    if (rc != 0)
        weft_panic(WEFT_SITE, "reactor: uv_loop_close failed (%s): a handle was left open", uv_strerror(rc));
    close(r->epfd);
    r->epfd = -1;
    /* No dispatch runs any more: what is retired now is freed at once. */
    weft__reactor_io_free_retired(r);
}

void weft__reactor_free(weft__reactor_t *r)
{
    if (r == NULL)
        return;
    weft__reactor_io_free_retired(r); /* released after the stop */
    weft__reactor_io_close_drive(r);
    pthread_mutex_destroy(&r->time_lock);
    weft__free(r, sizeof *r);
}
