/* reactor/time_driver.c - the time driver: the per-worker timing wheels,
 * inserting into them, and firing them (workers, the worker parked in the
 * driver, the libuv thread's backstop). See time_driver.h. */
#include <string.h>

#include "time_driver.h"

#include "weft/time.h"

uint64_t weft__time_now_ns(const weft__driver_t *d)
{
    /* acquire: pairs with clock_raise's release (read by a thread that did
     * not see the advance through a wake, such as a blocking job). */
    return d->time.paused ? atomic_load_explicit(&((weft__driver_t *)d)->time.vnow_ns, memory_order_acquire)
                          : weft__now_ns();
}

uint64_t weft_now_ns(void)
{
    /* The clock of the runtime current on this thread: a virtual one is
     * per runtime, so a paused runtime never moves another's time. */
    const weft__driver_t *d = weft__cx_driver();
    return d != NULL ? weft__time_now_ns(d) : weft__now_ns();
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t weft__time_ms_ceil(const weft__driver_t *d, uint64_t ns)
{
    if (ns <= d->time.origin_ns)
        return 0;
    return (ns - d->time.origin_ns + 999999u) / 1000000u;
}

static uint64_t now_ms(const weft__driver_t *d)
{
    return (weft__time_now_ns(d) - d->time.origin_ns) / 1000000u;
}

/* How late a timer may be before the libuv thread fires it itself. */
static uint64_t backstop_slack(const weft__driver_t *d)
{
    return d->workers_drive ? WEFT__BACKSTOP_MS() : 0;
}

int weft__time_init(weft__driver_t *d, unsigned nshards, bool paused)
{
    weft__time_driver_t *t = &d->time;
    t->shards = weft__alloc_aligned(nshards * sizeof *t->shards);
    if (t->shards == NULL)
        return WEFT_ENOMEM;
    t->nshards = nshards;
    for (unsigned i = 0; i < nshards; i++) {
        weft__time_shard_t *sh = &t->shards[i];
        pthread_mutex_init(&sh->lock, NULL);
        weft__wheel_init(&sh->wheel, 0);
        atomic_init(&sh->due_ms, UINT64_MAX);
    }
    t->origin_ns = weft__now_ns();
    t->paused = paused;
    atomic_init(&t->vnow_ns, t->origin_ns);
    /* A virtual clock never needs the backstop (nothing falls due while it
     * stands): an `armed` of 0 keeps every inserter from ringing for it. */
    atomic_init(&t->armed, paused ? 0 : UINT64_MAX);
    atomic_init(&t->park_until, 0);
    t->park_overdue = 0;
    return 0;
}

void weft__time_free(weft__driver_t *d)
{
    weft__time_driver_t *t = &d->time;
    for (unsigned i = 0; i < t->nshards; i++)
        pthread_mutex_destroy(&t->shards[i].lock);
    weft__free_aligned(t->shards);
    t->shards = NULL;
    t->nshards = 0;
}

/* ---- Inserting ----------------------------------------------------------------- */

weft__driver_t *weft__time_current(const char *what)
{
    weft__driver_t *d = weft__cx_driver();
    if (d == NULL || !d->has_time)
        weft_panic(WEFT_SITE, "%s polled %s", what,
                   d == NULL && weft__tls.sched == NULL
                       ? "outside a weft runtime: time needs a runtime's time driver"
                       : "on a runtime built with enable_time = false");
    return d;
}

unsigned weft__time_shard_here(const weft__driver_t *d)
{
    int w = weft__cx_worker_index(d);
    if (w >= 0)
        return (unsigned)w % d->time.nshards;
    return (unsigned)(((uintptr_t)&weft__tls >> 12) % d->time.nshards);
}

bool weft__time_insert_locked(weft__driver_t *d, weft__time_shard_t *sh, weft__timer_t *e, uint64_t ms,
                              unsigned *notify)
{
    weft__time_driver_t *t = &d->time;
    /* The wheel's time may lag behind the clock (it advances when a shard
     * is fired); a deadline already reached is due now either way. A stop
     * sets `stopped` before it sweeps this shard under its lock, so we
     * either see the flag or our timer is swept. */
    if (atomic_load_explicit(&d->stopped, memory_order_relaxed) || ms <= now_ms(d))
        return false;
    if (!weft__wheel_insert(&sh->wheel, e, ms))
        return false;
    uint64_t due = weft__wheel_due(&sh->wheel, e); /* a far timer's slot cascades before its deadline */
    /* A store even when the value stays, so that the fence below orders it
     * (the fence pairs with the backstop's in weft__time_backstop and the
     * parked worker's in weft__time_park_begin, which store their wake-up
     * time, fence, and then read every shard's due_ms): either they see
     * our deadline, or we see their wake-up time. */
    atomic_store_explicit(&sh->due_ms, min_u64(due, atomic_load_explicit(&sh->due_ms, memory_order_relaxed)),
                          memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t at = add_sat(due, backstop_slack(d));
    uint64_t armed = atomic_load_explicit(&t->armed, memory_order_relaxed);
    /* Lowering `armed` first means one ring per earlier deadline, not one
     * per inserter. */
    if (at < armed && atomic_compare_exchange_strong_explicit(&t->armed, &armed, at, memory_order_relaxed,
                                                              memory_order_relaxed))
        *notify |= WEFT__NOTIFY_RING;
    if (d->workers_drive) {
        uint64_t until = atomic_load_explicit(&t->park_until, memory_order_relaxed);
        if (due < until && atomic_compare_exchange_strong_explicit(&t->park_until, &until, due,
                                                                   memory_order_relaxed, memory_order_relaxed))
            *notify |= WEFT__NOTIFY_KICK;
    }
    return true;
}

#ifdef WEFT_TEST_HOOKS
_Atomic long weft__driver_kicks;
#endif

void weft__time_notify(weft__driver_t *d, unsigned notify)
{
    if (notify & WEFT__NOTIFY_KICK) {
#ifdef WEFT_TEST_HOOKS
        atomic_fetch_add_explicit(&weft__driver_kicks, 1, memory_order_relaxed);
#endif
        weft__driver_unpark(d); /* a stale kick costs the next parked worker one spurious wake-up */
    }
    if (notify & WEFT__NOTIFY_RING)
        weft__uv_ring(d);
}

/* ---- Firing ------------------------------------------------------------------ */

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
    /* release: pairs with the acquire load in sleep_poll (time/sleep.c). */
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

static void wake_fired(fire_batch_t *b, weft__wake_route_t route)
{
    weft__wake_batch(b->w, b->n, route);
    b->n = 0;
}

/* How fire_shard takes a shard's lock. */
typedef enum { LOCK_TRY, LOCK_WAIT } lock_mode_t;

/* Fires every timer of sh due at now, FIRE_BATCH at a time under the lock
 * (a batch's wakes happen outside it), and refreshes sh->due_ms. With
 * LOCK_TRY it gives up at once when the lock is taken: another thread is
 * firing or inserting there, and may have been descheduled inside; waiting
 * would stall our own work behind it.
 *
 * Where the woken tasks go: WEFT__WAKE_SHARED sends them all to the
 * `woken` queue, which every worker reads before anything else (a busy
 * worker's fire, the libuv thread's); with WEFT__WAKE_HERE the first batch
 * stays with this thread (an idle worker runs it at once, from its cache)
 * and the rest goes to `woken` too, shared with the other workers instead
 * of overflowing our local queue into the inject queue, behind whatever was
 * spawned. */
static unsigned fire_shard(weft__driver_t *d, weft__time_shard_t *sh, uint64_t now, weft__wake_route_t route,
                           lock_mode_t lock)
{
    fire_batch_t b;
    b.n = 0;
    unsigned woke = 0;
    if (lock == LOCK_WAIT)
        pthread_mutex_lock(&sh->lock);
    else if (pthread_mutex_trylock(&sh->lock) != 0)
        return 0;
    if (atomic_load_explicit(&d->stopped, memory_order_relaxed)) { /* the stop sweeps it */
        pthread_mutex_unlock(&sh->lock);
        return 0;
    }
    /* FIRE_BATCH timers handled (fired or cascaded) per hold of the lock. */
    while (weft__wheel_advance_max(&sh->wheel, now, fire_timer, &b, FIRE_BATCH) == FIRE_BATCH) {
        pthread_mutex_unlock(&sh->lock);
        unsigned n = b.n;
        wake_fired(&b, woke > 0 ? WEFT__WAKE_SHARED : route);
        woke += n;
        pthread_mutex_lock(&sh->lock);
    }
    atomic_store_explicit(&sh->due_ms, weft__wheel_next(&sh->wheel), memory_order_relaxed);
    pthread_mutex_unlock(&sh->lock);
    unsigned last = b.n;
    wake_fired(&b, woke > 0 ? WEFT__WAKE_SHARED : route);
    return woke + last;
}

uint64_t weft__time_due_ms(weft__driver_t *d)
{
    uint64_t due = UINT64_MAX;
    for (unsigned i = 0; i < d->time.nshards; i++)
        due = min_u64(due, atomic_load_explicit(&d->time.shards[i].due_ms, memory_order_relaxed));
    return due;
}

unsigned weft__time_fire_due(weft__driver_t *d, unsigned self, weft__fire_mode_t mode)
{
    if (!d->has_time || !d->workers_drive || d->time.paused) /* a virtual clock: only an advance fires */
        return 0;
    weft__time_driver_t *t = &d->time;
    uint64_t now = now_ms(d);
    unsigned n = t->nshards, fired = 0;
    weft__wake_route_t route = mode == WEFT__FIRE_BUSY ? WEFT__WAKE_SHARED : WEFT__WAKE_HERE;
    self %= n;
    /* Every due shard, own first, each by trylock: a shard whose lock is
     * taken is being fired or filled by another thread right now, and
     * waiting for it would stall everything this worker holds if that
     * thread was descheduled inside. */
    for (unsigned k = 0; k < n; k++) {
        weft__time_shard_t *sh = &t->shards[(self + k) % n];
        if (atomic_load_explicit(&sh->due_ms, memory_order_relaxed) <= now)
            fired += fire_shard(d, sh, now, route, LOCK_TRY);
    }
    return fired;
}

/* On a multi-thread runtime the workers fire timers (weft__time_fire_due)
 * and this is the backstop for when none of them gets to it (every worker
 * inside a long poll): it fires a shard only once its earliest timer is
 * WEFT__TIMER_BACKSTOP_MS overdue, and sleeps until then. While the workers
 * keep up it wakes once per backstop interval, finds nothing, and never
 * competes with them for a shard's lock or for a CPU. On a current-thread
 * runtime it is the only firer, and the slack is zero. */
uint64_t weft__time_backstop(weft__driver_t *d)
{
    weft__time_driver_t *t = &d->time;
    if (t->paused)
        return UINT64_MAX; /* only an advance fires (weft__time_advance) */
    uint64_t slack = backstop_slack(d);
    uint64_t now = now_ms(d);
    for (unsigned i = 0; i < t->nshards; i++) {
        weft__time_shard_t *sh = &t->shards[i];
        if (add_sat(atomic_load_explicit(&sh->due_ms, memory_order_relaxed), slack) <= now) {
#ifdef WEFT_TEST_HOOKS
            backstop_firing = d->workers_drive;
#endif
            fire_shard(d, sh, now, WEFT__WAKE_SHARED, LOCK_WAIT);
#ifdef WEFT_TEST_HOOKS
            backstop_firing = false;
#endif
        }
    }
    uint64_t at = add_sat(weft__time_due_ms(d), slack);
    atomic_store_explicit(&t->armed, at, memory_order_relaxed);
    /* seq_cst fence: pairs with weft__time_insert_locked's (store due_ms,
     * fence, load armed): a timer it inserted without seeing our `armed`
     * shows up in this second look. */
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t again = add_sat(weft__time_due_ms(d), slack);
    if (again < at) {
        at = again;
        atomic_store_explicit(&t->armed, at, memory_order_relaxed);
    }
    if (at == UINT64_MAX)
        return UINT64_MAX;
    now = now_ms(d);
    return at > now ? at - now : 0;
}

void weft__time_stop(weft__driver_t *d)
{
    for (unsigned i = 0; i < d->time.nshards; i++) {
        /* Every timer of the shard, at once; an inserter that took the lock
         * before us is swept here, one after us sees `stopped`. */
        weft__time_shard_t *sh = &d->time.shards[i];
        fire_batch_t b;
        b.n = 0;
        pthread_mutex_lock(&sh->lock);
        while (weft__wheel_advance_max(&sh->wheel, UINT64_MAX, fire_timer, &b, FIRE_BATCH) == FIRE_BATCH) {
            pthread_mutex_unlock(&sh->lock);
            wake_fired(&b, WEFT__WAKE_HERE);
            pthread_mutex_lock(&sh->lock);
        }
        atomic_store_explicit(&sh->due_ms, UINT64_MAX, memory_order_relaxed);
        pthread_mutex_unlock(&sh->lock);
        wake_fired(&b, WEFT__WAKE_HERE);
    }
}

/* ---- The worker parked in the driver ---------------------------------------- */

uint64_t weft__time_park_begin(weft__driver_t *d)
{
    /* A virtual clock: no deadline comes by itself, so sleep until kicked
     * (park_until stays 0, and no inserter kicks for a deadline). */
    if (!d->has_time || d->time.paused)
        return UINT64_MAX;
    weft__time_driver_t *t = &d->time;
    /* Publish the wake-up time, then look again. seq_cst fence: Dekker with
     * weft__time_insert_locked (store due_ms, fence, load park_until):
     * either the second look sees a deadline inserted meanwhile, or its
     * inserter sees our park_until and kicks us. */
    uint64_t due = weft__time_due_ms(d);
    for (;;) {
        atomic_store_explicit(&t->park_until, due, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        uint64_t again = weft__time_due_ms(d);
        if (again >= due)
            return due;
        due = again;
    }
}

void weft__time_park_end(weft__driver_t *d)
{
    if (d->has_time)
        atomic_store_explicit(&d->time.park_until, 0, memory_order_relaxed); /* nobody sleeps now */
}

uint64_t weft__time_park_timeout_ns(weft__driver_t *d, uint64_t ms)
{
    weft__time_driver_t *t = &d->time;
    uint64_t at = t->origin_ns + ms * 1000000u, now = weft__now_ns();
    uint64_t left = at > now ? at - now : 0;
    /* The park role is one worker's at a time, so is this count. */
    if (left > 0)
        t->park_overdue = 0;
    else if (++t->park_overdue > 2)
        left = WEFT__PARK_RETRY_NS;
    return left;
}

/* ---- The virtual clock ---------------------------------------------------------
 * A paused driver's clock (vnow_ns) only moves forward, by an explicit
 * advance (weft_time_advance, from any thread) or by the runtime's own
 * auto-advance when it has nothing else to do (runtime/clock.c). Either
 * raises the clock first and fires afterwards, under each shard's lock:
 * a timer inserted meanwhile either sees the new time (due at once) or is
 * in the wheel when the firer takes the lock. The wheels are stepped slot
 * by slot, so timers fire in deadline order even across a long jump. */

/* Moves the clock forward to ns; never back (two advancers may race). */
static void clock_raise(weft__time_driver_t *t, uint64_t ns)
{
    uint64_t cur = atomic_load_explicit(&t->vnow_ns, memory_order_relaxed);
    /* release: pairs with weft__time_now_ns's acquire. */
    while (cur < ns && !atomic_compare_exchange_weak_explicit(&t->vnow_ns, &cur, ns, memory_order_release,
                                                              memory_order_relaxed))
        ;
}

/* The start of the earliest occupied wheel slot, over every shard (wheel
 * ms; UINT64_MAX: no timer). Read under each lock, so it is exact where
 * due_ms may be early (a removal leaves due_ms as it was). A slot above
 * level 0 may start before its first deadline: firing there only moves
 * its timers down a level. */
static uint64_t next_slot_ms(weft__driver_t *d)
{
    uint64_t next = UINT64_MAX;
    for (unsigned i = 0; i < d->time.nshards; i++) {
        weft__time_shard_t *sh = &d->time.shards[i];
        pthread_mutex_lock(&sh->lock);
        next = min_u64(next, weft__wheel_next(&sh->wheel));
        pthread_mutex_unlock(&sh->lock);
    }
    return next;
}

/* Fires every shard at wheel ms `ms`; the clock reads at least that. All
 * the wakes go to the `woken` queue, in the order the wheel fires them. */
static unsigned fire_all_at(weft__driver_t *d, uint64_t ms)
{
    unsigned woke = 0;
    for (unsigned i = 0; i < d->time.nshards; i++)
        woke += fire_shard(d, &d->time.shards[i], ms, WEFT__WAKE_SHARED, LOCK_WAIT);
    return woke;
}

static uint64_t wheel_ms_to_ns(const weft__time_driver_t *t, uint64_t ms)
{
    return ms > (UINT64_MAX - t->origin_ns) / 1000000u ? UINT64_MAX : t->origin_ns + ms * 1000000u;
}

unsigned weft__time_advance_to_next(weft__driver_t *d)
{
    weft__time_driver_t *t = &d->time;
    for (;;) {
        uint64_t ms = next_slot_ms(d);
        if (ms == UINT64_MAX || atomic_load_explicit(&d->stopped, memory_order_relaxed))
            return 0;
        clock_raise(t, wheel_ms_to_ns(t, ms));
        unsigned woke = fire_all_at(d, ms);
        if (woke > 0)
            return woke;
        /* Only cascaded, or fired timers with no waker stored: nothing
         * can run, so go on to the next deadline. */
    }
}

void weft__time_advance(weft__driver_t *d, uint64_t ns)
{
    weft__time_driver_t *t = &d->time;
    /* The whole step first (an advance is never lost to a racing one),
     * then the timers it passed, slot by slot, earliest first. */
    uint64_t cur = atomic_load_explicit(&t->vnow_ns, memory_order_relaxed), target;
    do
        target = add_sat(cur, ns);
    while (!atomic_compare_exchange_weak_explicit(&t->vnow_ns, &cur, target, memory_order_release,
                                                  memory_order_relaxed));
    uint64_t target_ms = (target - t->origin_ns) / 1000000u;
    for (;;) {
        uint64_t ms = next_slot_ms(d);
        if (ms > target_ms || atomic_load_explicit(&d->stopped, memory_order_relaxed))
            return;
        fire_all_at(d, ms);
    }
}
