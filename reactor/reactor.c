/* reactor/reactor.c - the reactor thread: a libuv loop with one doorbell
 * (uv_async_t) and one timer (uv_timer_t) armed for the earliest deadline
 * of the timing wheels (plus the backstop's slack on a multi-thread
 * runtime), and the firing of timers from workers. See reactor.h. */
#include "reactor.h"

#include <string.h>
#include <unistd.h>

#include "weft/time.h"
#include "io_driver.h"
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

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* How late a timer may be before the reactor thread fires it itself. */
static uint64_t reactor_slack(const weft__reactor_t *r)
{
    return r->workers_drive ? WEFT__BACKSTOP_MS() : 0;
}

bool weft__reactor_timer_insert_locked(weft__reactor_t *r, weft__time_shard_t *sh, weft__timer_t *e, uint64_t ms,
                                       unsigned *notify)
{
    /* The wheel's time may lag behind the clock (it advances when a shard
     * is fired); a deadline already reached is due now either way. A stop
     * sets `stopped` before it sweeps this shard under its lock, so we
     * either see the flag or our timer is swept. */
    if (atomic_load_explicit(&r->stopped, memory_order_relaxed) || ms <= weft__reactor_now_ms(r))
        return false;
    if (!weft__wheel_insert(&sh->wheel, e, ms))
        return false;
    uint64_t d = e->wheel_deadline_;
    /* A store even when the value stays, so that the fence below orders it
     * (the fence pairs with the reactor's and the driver's, which store
     * their wake-up time, fence, and then read every shard's due_ms):
     * either they see our deadline, or we see their wake-up time. */
    atomic_store_explicit(&sh->due_ms, min_u64(d, atomic_load_explicit(&sh->due_ms, memory_order_relaxed)),
                          memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t at = add_sat(d, reactor_slack(r));
    uint64_t armed = atomic_load_explicit(&r->armed, memory_order_relaxed);
    /* Lowering `armed` first means one ring per earlier deadline, not one
     * per inserter. */
    if (at < armed && atomic_compare_exchange_strong_explicit(&r->armed, &armed, at, memory_order_relaxed,
                                                              memory_order_relaxed))
        *notify |= WEFT__NOTIFY_RING;
    if (r->workers_drive) {
        uint64_t until = atomic_load_explicit(&r->drive_until, memory_order_relaxed);
        if (d < until && atomic_compare_exchange_strong_explicit(&r->drive_until, &until, d, memory_order_relaxed,
                                                                 memory_order_relaxed))
            *notify |= WEFT__NOTIFY_KICK;
    }
    return true;
}

void weft__reactor_ring(weft__reactor_t *r)
{
    uv_async_send(&r->doorbell);
}

void weft__reactor_timer_notify(weft__reactor_t *r, unsigned notify)
{
    if (notify & WEFT__NOTIFY_KICK)
        weft__reactor_kick_driver(r); /* a stale kick costs the next driver one spurious wake-up */
    if (notify & WEFT__NOTIFY_RING) {
        pthread_mutex_lock(&r->lock); /* a stop cannot close the doorbell meanwhile */
        if (!atomic_load_explicit(&r->stopped, memory_order_relaxed))
            weft__reactor_ring(r);
        pthread_mutex_unlock(&r->lock);
    }
}

#ifdef WEFT_TEST_HOOKS
_Atomic long weft__backstop_fires; /* counted before the wake, so a waiter sees it */
_Atomic uint64_t weft__backstop_ms = WEFT__TIMER_BACKSTOP_MS;
static _Thread_local bool backstop_firing;
#endif

/* Wakers of fired timers, woken outside the shard's lock in batches:
 * waking is the slow part (each one schedules a task), and workers
 * registering new timers should not wait behind it. */
#define FIRE_BATCH 64
typedef struct {
    weft_waker_t w[FIRE_BATCH];
    unsigned n;
} fire_batch_t;

/* Fires one due timer (under its shard's lock, so the sleep's drop, which
 * takes the lock unless it sees FIRED, cannot free it meanwhile): publish,
 * then take its waker. The waker is a handle of its own, safe to wake after
 * the sleep is gone. */
static void fire_timer(weft__timer_t *e, void *arg)
{
    fire_batch_t *b = arg;
    weft_sleep_t *s = (weft_sleep_t *)(void *)((char *)e - offsetof(weft_sleep_t, entry_));
    /* release: pairs with the acquire load in sleep_poll. */
    atomic_store_explicit(WEFT__SLEEP_FIRED_WORD(s), WEFT__SLEEP_FIRING, memory_order_release);
    weft_waker_t w = weft_atomic_waker_take(&s->waker_);
    /* The last touch of the sleep. release: lets sleep_drop skip the lock
     * (it sees the fire finished, the entry unlinked). */
    atomic_store_explicit(WEFT__SLEEP_FIRED_WORD(s), WEFT__SLEEP_FIRED, memory_order_release);
#ifdef WEFT_TEST_HOOKS
    if (backstop_firing)
        atomic_fetch_add_explicit(&weft__backstop_fires, 1, memory_order_relaxed);
#endif
    if (w.vtable != NULL)
        b->w[b->n++] = w;
}

/* Wakes the batch: `woken` sends the tasks to the `woken` queue (a busy
 * worker's fire, the reactor thread's), else where a wake from this thread
 * goes (an idle worker's own queue). */
static void wake_batch(fire_batch_t *b, bool woken)
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

/* Fires every timer of sh due at now_ms, FIRE_BATCH at a time under the
 * lock (a batch's wakes happen outside it), and refreshes sh->due_ms.
 * Without `wait` it gives up at once when the lock is taken: another
 * thread is firing or inserting there, and may have been descheduled
 * inside; waiting would stall our own work behind it.
 *
 * Where the woken tasks go: with `woken`, to the `woken` queue, which every
 * worker reads before anything else (a busy worker's fire, the reactor
 * thread's); otherwise the first batch stays with this thread (an idle
 * worker runs it at once, from its cache) and the rest goes to `woken`
 * too, shared with the other workers instead of overflowing our local
 * queue into the inject queue, behind whatever was spawned. */
static unsigned fire_shard(weft__reactor_t *r, weft__time_shard_t *sh, uint64_t now_ms, bool woken, bool wait)
{
    fire_batch_t b;
    b.n = 0;
    unsigned fired = 0;
    if (wait)
        pthread_mutex_lock(&sh->lock);
    else if (pthread_mutex_trylock(&sh->lock) != 0)
        return 0;
    if (atomic_load_explicit(&r->stopped, memory_order_relaxed)) { /* the stop sweeps it */
        pthread_mutex_unlock(&sh->lock);
        return 0;
    }
    while (weft__wheel_advance_max(&sh->wheel, now_ms, fire_timer, &b, FIRE_BATCH) == FIRE_BATCH) {
        pthread_mutex_unlock(&sh->lock);
        wake_batch(&b, woken || fired > 0);
        fired += FIRE_BATCH;
        pthread_mutex_lock(&sh->lock);
    }
    atomic_store_explicit(&sh->due_ms, weft__wheel_next(&sh->wheel), memory_order_relaxed);
    pthread_mutex_unlock(&sh->lock);
    fired += b.n;
    wake_batch(&b, woken || fired > b.n);
    return fired;
}

static void timer_cb(uv_timer_t *t);

uint64_t weft__reactor_due_ms(weft__reactor_t *r)
{
    uint64_t due = UINT64_MAX;
    for (unsigned i = 0; i < r->nshards; i++)
        due = min_u64(due, atomic_load_explicit(&r->shards[i].due_ms, memory_order_relaxed));
    return due;
}

bool weft__reactor_timer_pending(weft__reactor_t *r)
{
    return weft__reactor_due_ms(r) != UINT64_MAX;
}

/* Fires what is due and re-arms the libuv timer for what is next.
 *
 * On a multi-thread runtime the workers fire timers (weft__reactor_fire_due)
 * and this is the backstop for when none of them gets to it (every worker
 * inside a long poll): it fires a shard only once its earliest timer is
 * WEFT__TIMER_BACKSTOP_MS overdue, and sleeps until then. While the workers
 * keep up it wakes once per backstop interval, finds nothing, and never
 * competes with them for a shard's lock or for a CPU. On a current-thread
 * runtime it is the only firer, and the slack is zero. */
static void process_timers(weft__reactor_t *r)
{
    uint64_t slack = reactor_slack(r);
    uint64_t now_ms = weft__reactor_now_ms(r);
    for (unsigned i = 0; i < r->nshards; i++) {
        weft__time_shard_t *sh = &r->shards[i];
        if (add_sat(atomic_load_explicit(&sh->due_ms, memory_order_relaxed), slack) <= now_ms) {
#ifdef WEFT_TEST_HOOKS
            backstop_firing = r->workers_drive;
#endif
            fire_shard(r, sh, now_ms, true, true);
#ifdef WEFT_TEST_HOOKS
            backstop_firing = false;
#endif
        }
    }
    uint64_t at = add_sat(weft__reactor_due_ms(r), slack);
    atomic_store_explicit(&r->armed, at, memory_order_relaxed);
    /* seq_cst fence: pairs with weft__reactor_timer_insert_locked's (store
     * due_ms, fence, load armed): a timer it inserted without seeing our
     * `armed` shows up in this second look. */
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t again = add_sat(weft__reactor_due_ms(r), slack);
    if (again < at) {
        at = again;
        atomic_store_explicit(&r->armed, at, memory_order_relaxed);
    }
    if (at == UINT64_MAX) {
        uv_timer_stop(&r->timer);
        return;
    }
    uint64_t now = weft__reactor_now_ms(r);
    uv_update_time(&r->loop); /* libuv measures the delay from its cached time */
    uv_timer_start(&r->timer, timer_cb, at > now ? at - now : 0, 0);
}

static void timer_cb(uv_timer_t *t)
{
    process_timers(t->data);
}

unsigned weft__reactor_fire_due(weft__reactor_t *r, unsigned self, bool busy)
{
    if (!r->workers_drive)
        return 0;
    uint64_t now_ms = weft__reactor_now_ms(r);
    unsigned n = r->nshards, fired = 0;
    self %= n;
    /* Every due shard, own first, each by trylock: a shard whose lock is
     * taken is being fired or filled by another thread right now, and
     * waiting for it would stall everything this worker holds if that
     * thread was descheduled inside. */
    for (unsigned k = 0; k < n; k++) {
        weft__time_shard_t *sh = &r->shards[(self + k) % n];
        if (atomic_load_explicit(&sh->due_ms, memory_order_relaxed) <= now_ms)
            fired += fire_shard(r, sh, now_ms, busy, false);
    }
    return fired;
}

static void on_close(uv_handle_t *h)
{
    (void)h;
}

bool weft__reactor_submit(weft__reactor_t *r, weft__op_t *op)
{
    pthread_mutex_lock(&r->lock); /* orders the ring before a stop */
    if (atomic_load_explicit(&r->stopped, memory_order_relaxed)) {
        pthread_mutex_unlock(&r->lock);
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
    pthread_mutex_unlock(&r->lock);
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

static void shards_free(weft__reactor_t *r)
{
    for (unsigned i = 0; i < r->nshards; i++)
        pthread_mutex_destroy(&r->shards[i].lock);
    weft__free_aligned(r->shards);
}

int weft__reactor_start(weft__reactor_t **out, const char *name, bool workers_drive, unsigned nshards)
{
    if (nshards == 0 || nshards > UINT16_MAX)
        weft_panic(WEFT_SITE, "reactor: %u timer shards (1..65535)", nshards);
    weft__reactor_t *r = weft__alloc(sizeof *r);
    if (r == NULL)
        return WEFT_ENOMEM;
    memset(r, 0, sizeof *r);
    r->workers_drive = workers_drive;
    r->drive_epfd = r->kick_fd = -1;
    r->shards = weft__alloc_aligned(nshards * sizeof *r->shards);
    if (r->shards == NULL) {
        weft__free(r, sizeof *r);
        return WEFT_ENOMEM;
    }
    r->nshards = nshards;
    for (unsigned i = 0; i < nshards; i++) {
        weft__time_shard_t *sh = &r->shards[i];
        pthread_mutex_init(&sh->lock, NULL);
        weft__wheel_init(&sh->wheel, 0);
        atomic_init(&sh->due_ms, UINT64_MAX);
    }
    int rc = uv_loop_init(&r->loop);
    if (rc != 0) {
        shards_free(r);
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
        shards_free(r);
        weft__free(r, sizeof *r);
        return rc;
    }
    pthread_mutex_init(&r->lock, NULL);
    r->origin_ns = weft__now_ns();
    atomic_init(&r->stopped, false);
    atomic_init(&r->armed, UINT64_MAX);
    atomic_init(&r->drive_until, 0);
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
        pthread_mutex_destroy(&r->lock);
        shards_free(r);
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
    pthread_mutex_lock(&r->lock);
    atomic_store_explicit(&r->stopped, true, memory_order_relaxed);
    pthread_mutex_unlock(&r->lock);
    for (unsigned i = 0; i < r->nshards; i++) {
        /* Every timer of the shard, at once; an inserter that took the lock
         * before us is swept here, one after us sees `stopped`. */
        weft__time_shard_t *sh = &r->shards[i];
        fire_batch_t b;
        b.n = 0;
        pthread_mutex_lock(&sh->lock);
        while (weft__wheel_advance_max(&sh->wheel, UINT64_MAX, fire_timer, &b, FIRE_BATCH) == FIRE_BATCH) {
            pthread_mutex_unlock(&sh->lock);
            wake_batch(&b, false);
            pthread_mutex_lock(&sh->lock);
        }
        atomic_store_explicit(&sh->due_ms, UINT64_MAX, memory_order_relaxed);
        pthread_mutex_unlock(&sh->lock);
        wake_batch(&b, false);
    }
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
    pthread_mutex_destroy(&r->lock);
    shards_free(r);
    weft__free(r, sizeof *r);
}
