/* runtime/runtime.c - the runtime object: builder, start, block_on,
 * shutdown and free.
 *
 * Lifetime: the runtime's memory is reference counted (the user's reference
 * plus one per live block_on root waker), because a root waker cloned into
 * some resource may be woken after weft_runtime_free returned; it must find
 * its parker still there. Everything else (tasks, threads) is gone when
 * weft_runtime_free returns.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scheduler.h"
#include "nonnull.h"

/* How far shutdown has come; each step can time out and be resumed by the
 * next call. */
typedef enum rt_phase {
    RT_RUNNING,        /* no shutdown yet */
    RT_STOPPING_TASKS, /* queues closed; waiting for the worker loops to end */
    RT_STOPPING_POOL,  /* tasks dropped, drivers stopped; waiting for running blocking jobs */
    RT_STOPPED,
} rt_phase_t;

struct weft_runtime_s {
    weft__sched_t sched; /* first: a handle is a pointer to it */
    _Atomic long refs;
    pthread_mutex_t shutdown_lock; /* serialises shutdown callers */
    rt_phase_t phase;              /* under shutdown_lock */
};

static inline weft_runtime_t *rt_of(weft__sched_t *s)
{
    return (weft_runtime_t *)(void *)s;
}

/* The defaults for every field, whatever size the caller's struct has. */
static void builder_defaults(weft_builder_t *b, weft_flavor_t flavor)
{
    WEFT__REQUIRE("weft_builder_init", b);
    memset(b, 0, sizeof *b);
    b->size_ = sizeof *b;
    b->flavor = flavor;
    b->enable_time = true;
    b->enable_io = true;
    b->max_blocking_threads = 512;
    b->blocking_keep_alive_ms = 10000;
    b->detect_blocking = true;
    b->blocking_threshold_ms = 10;
    b->block_on_runs_tasks = true;
}

void weft_builder_init_sized(weft_builder_t *b, weft_flavor_t flavor, size_t size)
{
    /* A caller built against an older (smaller) header gets the defaults of
     * the fields it knows; a newer (larger) one is refused: this library
     * cannot honour fields it does not have. */
    if (b == NULL || size < offsetof(weft_builder_t, flavor) + sizeof b->flavor || size > sizeof *b)
        weft_panic(WEFT_SITE, "weft_builder_init: builder of %zu bytes (this library knows %zu)", size, sizeof *b);
    weft_builder_t full;
    builder_defaults(&full, flavor);
    full.size_ = (uint32_t)size;
    memcpy(b, &full, size);
}

/* Reads the caller's builder into *full: the fields it was built with, the
 * defaults for the rest. Returns false when it was not initialised. */
static bool builder_read(const weft_builder_t *b, weft_builder_t *full)
{
    if (b->size_ < offsetof(weft_builder_t, flavor) + sizeof b->flavor || b->size_ > sizeof *b)
        return false;
    builder_defaults(full, b->flavor);
    memcpy(full, b, b->size_);
    full->size_ = sizeof *full;
    return true;
}

/* The testing options (docs/testing.md). Auto-advance (WEFT_CLOCK_PAUSED)
 * and a seeded order are current-thread only: there the thread in block_on
 * is the only one that polls tasks, so it alone can tell that every task
 * is idle and choose the next task; a multi-thread runtime's workers
 * decide both independently. A clock that only weft_time_advance moves
 * (WEFT_CLOCK_MANUAL) needs no such view and works in both flavours. A
 * virtual clock needs the timers it drives. */
static bool testing_options_valid(const weft_builder_t *b)
{
    if ((unsigned)b->clock > WEFT_CLOCK_MANUAL || (unsigned)b->task_order > WEFT_ORDER_RANDOM)
        return false;
    if (b->flavor != WEFT_RUNTIME_CURRENT_THREAD && (b->clock == WEFT_CLOCK_PAUSED || b->task_order != WEFT_ORDER_DEFAULT))
        return false;
    return b->clock == WEFT_CLOCK_REAL || b->enable_time;
}

static void rt_release(weft_runtime_t *rt)
{
    /* acq_rel: the last holder sees every other holder's use before freeing. */
    if (atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
        return;
    weft__sched_t *s = &rt->sched;
    weft__driver_free(s->driver);
    weft__pool_free(s->pool);
    weft__inject_destroy(&s->inject);
    weft__inject_destroy(&s->woken);
    weft__idle_free(&s->idle);
    weft__owned_free(&s->owned);
    weft__free_aligned(s->workers);
    pthread_mutex_destroy(&rt->shutdown_lock);
    WEFT_LIVE_DEC(WEFT_LIVE_RUNTIME);
    weft__free_aligned(rt);
}

/* A failed start: ends the worker loops that did start and the pool. */
static void stop_started_workers(weft__sched_t *s)
{
    atomic_store_explicit(&s->shutdown, true, memory_order_seq_cst);
    weft__idle_notify_all(s);
    weft__pool_wait_loops(s->pool, UINT64_MAX);
    weft__pool_shutdown(s->pool, UINT64_MAX);
}

int weft_runtime_new(const weft_builder_t *b, weft_runtime_t **out)
{
    weft__assert_not_in_runtime("weft_runtime_new", WEFT_SITE);
    weft_builder_t full;
    WEFT__REQUIRE("weft_runtime_new", out);
    if (b == NULL)
        builder_defaults(&full, WEFT_RUNTIME_MULTI_THREAD);
    else if (!builder_read(b, &full))
        return WEFT_EINVAL; /* not filled by weft_builder_init */
    b = &full;
    if ((b->flavor != WEFT_RUNTIME_MULTI_THREAD && b->flavor != WEFT_RUNTIME_CURRENT_THREAD) ||
        b->workers > 1024 || !testing_options_valid(b))
        return WEFT_EINVAL;
    unsigned n = 1;
    if (b->flavor == WEFT_RUNTIME_MULTI_THREAD) {
        n = b->workers;
        if (n == 0) {
            long c = sysconf(_SC_NPROCESSORS_ONLN);
            n = c > 0 ? (unsigned)c : 1;
        }
    }
    weft_runtime_t *rt = weft__alloc_aligned(sizeof *rt);
    if (rt == NULL)
        return WEFT_ENOMEM;
    memset(rt, 0, sizeof *rt);
    weft__sched_t *s = &rt->sched;
    s->workers = weft__alloc_aligned(n * sizeof(weft__worker_t));
    if (s->workers == NULL)
        goto fail_rt;
    memset(s->workers, 0, n * sizeof(weft__worker_t));
    if (weft__idle_init(&s->idle, n) != 0)
        goto fail_workers;
    if (weft__owned_init(&s->owned, n) != 0)
        goto fail_idle;
    weft__inject_init(&s->inject);
    weft__inject_init(&s->woken);
    pthread_mutex_init(&rt->shutdown_lock, NULL);
    atomic_init(&rt->refs, 1);
    s->flavor = b->flavor;
    s->nworkers = n;
    s->cfg = *b;
    s->gqi = b->global_queue_interval ? b->global_queue_interval : 61;
    s->block_on_runs_tasks = b->flavor == WEFT_RUNTIME_MULTI_THREAD && b->block_on_runs_tasks &&
                             b->on_thread_start == NULL && b->on_thread_stop == NULL;
    snprintf(s->name, sizeof s->name, "%s", b->thread_name ? b->thread_name : "weft-wrk");
    atomic_init(&s->shutdown, false);
    atomic_init(&s->driver_busy, false);
    atomic_init(&s->clock_holds, 0);
    for (unsigned i = 0; i < n; i++) {
        weft__worker_t *w = &s->workers[i];
        weft__queue_init(&w->queue);
        weft__parker_init(&w->parker);
        w->sched = s;
        w->index = i;
        w->rng = 0x9E3779B9u * (i + 1);
        w->tick = s->gqi;
    }
    WEFT_LIVE_INC(WEFT_LIVE_RUNTIME);
    int rc = weft__seeded_init(s, b); /* a bad WEFT_SEED is WEFT_EINVAL */
    if (rc == 0)
        rc = weft__pool_new(s, &s->pool);
    if (rc != 0) {
        rt_release(rt);
        return rc;
    }
    if (b->enable_time || b->enable_io) {
        weft__driver_cfg_t dc = {
            .io = b->enable_io,
            .time = b->enable_time,
            .workers_drive = s->flavor == WEFT_RUNTIME_MULTI_THREAD,
            .nshards = s->nworkers < UINT16_MAX ? s->nworkers : UINT16_MAX,
            .name = s->name,
            .paused = b->clock != WEFT_CLOCK_REAL,
        };
        rc = weft__driver_start(&dc, &s->driver);
        if (rc != 0) {
            rt_release(rt);
            return rc;
        }
    }
    /* The watchdog first: workers read s->watchdog in every poll. */
    if (b->detect_blocking)
        rc = weft__watchdog_start(s);
    if (rc == 0 && s->flavor == WEFT_RUNTIME_MULTI_THREAD) {
        for (unsigned i = 0; i < n && rc == 0; i++)
            rc = weft__pool_start_core(s->pool, &s->workers[i]);
    }
    if (rc != 0) {
        stop_started_workers(s);
        weft__watchdog_stop(s);
        weft__driver_stop(s->driver);
        rt_release(rt);
        return rc;
    }
    *out = rt;
    return 0;

fail_idle:
    weft__idle_free(&s->idle);
fail_workers:
    weft__free_aligned(s->workers);
fail_rt:
    weft__free_aligned(rt);
    return WEFT_ENOMEM;
}

weft_handle_t *weft_runtime_handle(weft_runtime_t *rt)
{
    WEFT__REQUIRE("weft_runtime_handle", rt);
    return (weft_handle_t *)&rt->sched;
}

/* ---- block_on ------------------------------------------------------------ */

typedef struct root_waker {
    _Atomic long refs;
    _Atomic bool woken;
    weft__parker_t own;      /* multi-thread: the block_on thread parks here */
    weft__parker_t *target;  /* own, or the current-thread driver's parker */
    weft_runtime_t *rt;      /* a memory reference: target may live in it */
} root_waker_t;

static void root_release(root_waker_t *r)
{
    /* acq_rel: as in weft__task_ref_dec. */
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        rt_release(r->rt);
        weft__free(r, sizeof *r);
    }
}

static weft_waker_t root_clone(const void *d)
{
    root_waker_t *r = (root_waker_t *)d;
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed); /* from a live reference */
    return (weft_waker_t){ &weft__root_waker_vtable, r };
}

static void root_wake_by_ref(const void *d)
{
    root_waker_t *r = (root_waker_t *)d;
    /* release: the waker's writes reach the root poll (acquire exchange in
     * weft_runtime_block_on). */
    atomic_store_explicit(&r->woken, true, memory_order_release);
    (void)weft__unpark(r->target); /* never parked elsewhere: a block_on thread sleeps on its futex */
}

static void root_wake(const void *d)
{
    root_wake_by_ref(d);
    root_release((root_waker_t *)d);
}

static void root_drop(const void *d)
{
    root_release((root_waker_t *)d);
}

const weft_waker_vtable_t weft__root_waker_vtable = { root_clone, root_wake, root_wake_by_ref, root_drop };

/* Multi-thread: the block_on thread, its future pending, runs one task from
 * the inject queue instead of sleeping (builder: block_on_runs_tasks). A
 * spawn from this thread and an await of its handle then cost no hand-off
 * to a worker and back (blockon_spawn_join). The thread is no worker: what
 * the task wakes or spawns goes to the inject queue and a worker is
 * notified, as from any outside thread. Returns whether it ran one. */
static bool help_run_task(weft__sched_t *s)
{
    weft_task_t *t;
    if (weft__inject_pop(&s->inject, &t, 1) == 0)
        return false;
    bool outer = weft__tls.helping; /* a block_on nested in one of these tasks (block_in_place) */
    weft__tls.helping = true;
    weft__coop_start();
    weft__task_run(t);
    weft__coop_stop();
    weft__tls.helping = outer;
    return true;
}

int weft_runtime_block_on(weft_runtime_t *rt, weft_future_t *fut, void *out)
{
    WEFT__REQUIRE("weft_runtime_block_on", rt);
    WEFT__REQUIRE("weft_runtime_block_on", fut);
    weft__assert_not_in_runtime("weft_runtime_block_on", WEFT_SITE);
    weft__sched_t *s = &rt->sched;
    bool ct = s->flavor == WEFT_RUNTIME_CURRENT_THREAD;
    int rc = 0;
    if (atomic_load_explicit(&s->shutdown, memory_order_acquire)) {
        weft_future_drop(fut);
        return WEFT_ESHUTDOWN;
    }
    /* seq_cst here and on the shutdown flag (set, then driver_busy read, in
     * weft_runtime_shutdown_timeout): a store-buffer pair, where
     * release/acquire would let both sides miss each other and drive worker
     * 0's queues at once. */
    if (ct && atomic_exchange_explicit(&s->driver_busy, true, memory_order_seq_cst)) {
        weft_future_drop(fut);
        return WEFT_EBUSY;
    }
    root_waker_t *r = weft__alloc(sizeof *r);
    if (r == NULL) {
        if (ct)
            atomic_store_explicit(&s->driver_busy, false, memory_order_release);
        weft_future_drop(fut);
        return WEFT_ENOMEM;
    }
    atomic_init(&r->refs, 1);
    atomic_init(&r->woken, true);
    weft__parker_init(&r->own);
    r->target = ct ? &s->workers[0].parker : &r->own;
    r->rt = rt;
    atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);

    weft_waker_t waker = { &weft__root_waker_vtable, r };
    weft_context_t cx = { &waker };
    /* A blocking job, or a block_in_place function inside a task, has a
     * thread context of its own: put it back afterwards. */
    weft__sched_t *outer = weft__tls.sched;
    weft_task_t *outer_task = weft__tls.task;
    const struct weft_task_local_binding_s *outer_locals = weft__tls.locals;
    weft__coop_saved_t outer_budget = weft__coop_save();
    bool outer_yielded = weft__tls.yielded;
    weft__tls_set_runtime(s);
    weft__tls.task = NULL; /* the root future is not inside the outer task */
    weft__tls.locals = NULL; /* nor inside its task-local scopes */
    weft__tls.in_block_on = true;
    if (ct)
        weft__tls_set_worker(&s->workers[0]);
    for (;;) {
        if (ct && atomic_load_explicit(&s->shutdown, memory_order_seq_cst)) {
            rc = WEFT_ESHUTDOWN;
            break;
        }
        /* acquire: pairs with root_wake_by_ref's release. */
        if (atomic_exchange_explicit(&r->woken, false, memory_order_acquire)) {
            weft__coop_start();
            weft_poll_t p = weft_future_poll(fut, &cx, out);
            weft__coop_stop();
            if (p == WEFT_READY)
                break;
        }
        if (ct) {
            unsigned ran = weft__ct_run_some(s, s->gqi);
            if (ran == 0 && !atomic_load_explicit(&r->woken, memory_order_acquire))
                weft__ct_idle(s, &r->woken); /* parks; a paused clock may jump instead (clock.c) */
        } else if (!atomic_load_explicit(&r->woken, memory_order_acquire) &&
                   !(s->block_on_runs_tasks && help_run_task(s))) {
            weft__park(r->target);
        }
    }
    weft__tls_set_runtime(outer);
    weft__tls.task = outer_task;
    weft__tls.locals = outer_locals;
    weft__coop_restore(outer_budget);
    weft__tls.yielded = outer_yielded;
    weft__tls_set_worker(NULL);
    weft__tls.in_block_on = false;
    weft_future_drop(fut);
    if (ct)
        atomic_store_explicit(&s->driver_busy, false, memory_order_release);
    root_release(r);
    return rc;
}

/* ---- Shutdown -------------------------------------------------------------- */

static void drain_worker_queues(weft__sched_t *s)
{
    for (unsigned i = 0; i < s->nworkers; i++) {
        weft__worker_t *w = &s->workers[i];
        if (w->lifo) {
            weft_task_t *t = w->lifo;
            w->lifo = NULL;
            weft__task_drop_queued(t, WEFT__ENTRY_MAYBE_YIELD);
        }
        weft_task_t *t;
        while ((t = weft__queue_pop_spmc(&w->queue)) != NULL)
            weft__task_drop_queued(t, WEFT__ENTRY_MAYBE_YIELD);
    }
}

static bool wait_workers(weft__sched_t *s, uint64_t deadline)
{
    if (s->flavor == WEFT_RUNTIME_CURRENT_THREAD) {
        while (atomic_load_explicit(&s->driver_busy, memory_order_seq_cst)) {
            weft__worker_unpark(s, &s->workers[0]);
            if (weft__now_ns() >= deadline)
                return false;
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
        return true;
    }
    return weft__pool_wait_loops(s->pool, deadline);
}

int weft_runtime_shutdown_timeout(weft_runtime_t *rt, uint64_t timeout_ms)
{
    WEFT__REQUIRE("weft_runtime_shutdown_timeout", rt);
    weft__assert_not_in_runtime("weft_runtime_shutdown_timeout", WEFT_SITE);
    weft__sched_t *s = &rt->sched;
    /* A blocking job of this runtime would wait for itself. */
    if (weft__tls.pool != NULL && weft__tls.pool == s->pool)
        return WEFT_EDEADLK;
    uint64_t deadline = timeout_ms >= UINT64_MAX / 2000000u ? UINT64_MAX : weft__now_ns() + timeout_ms * 1000000u;
    pthread_mutex_lock(&rt->shutdown_lock);
    if (rt->phase == RT_STOPPED) {
        pthread_mutex_unlock(&rt->shutdown_lock);
        return 0;
    }
    if (rt->phase == RT_RUNNING) {
        /* seq_cst: workers that see the flag see everything before it, and
         * it pairs with block_on's driver_busy exchange (see there). */
        atomic_store_explicit(&s->shutdown, true, memory_order_seq_cst);
        weft__owned_close(&s->owned);
        weft__inject_t *remote[2] = { &s->inject, &s->woken };
        for (int q = 0; q < 2; q++) {
            weft_task_t *t = weft__inject_close(remote[q]);
            while (t != NULL) {
                weft_task_t *next = t->next;
                weft__task_drop_queued(t, WEFT__ENTRY_MAYBE_YIELD);
                t = next;
            }
        }
        weft__idle_notify_all(s);
        rt->phase = RT_STOPPING_TASKS;
    }
    if (rt->phase == RT_STOPPING_TASKS) {
        if (!wait_workers(s, deadline)) {
            pthread_mutex_unlock(&rt->shutdown_lock);
            return WEFT_ETIMEDOUT;
        }
        weft__watchdog_stop(s);
        /* Every worker has stopped: what is left in their queues and on the
         * owned list is dropped here. A task's drop that wakes or spawns
         * finds the inject queue and the owned list closed. */
        drain_worker_queues(s);
        weft_task_t *t;
        while ((t = weft__owned_pop(&s->owned)) != NULL)
            weft__task_shutdown(t);
        /* Every task, and so every timer it held, is gone: stop the drivers
         * (their memory stays until the runtime's, for sleeps in block_on
         * roots still running on other threads). */
        weft__driver_stop(s->driver);
        rt->phase = RT_STOPPING_POOL;
    }
    /* Blocking jobs that never started are cancelled; running ones are
     * waited for (they cannot be interrupted). */
    if (!weft__pool_shutdown(s->pool, deadline)) {
        pthread_mutex_unlock(&rt->shutdown_lock);
        return WEFT_ETIMEDOUT;
    }
    rt->phase = RT_STOPPED;
    pthread_mutex_unlock(&rt->shutdown_lock);
    return 0;
}

void weft_runtime_free(weft_runtime_t *rt)
{
    if (rt == NULL)
        return;
    weft__assert_not_in_runtime("weft_runtime_free", WEFT_SITE);
    if (weft__tls.pool != NULL && weft__tls.pool == rt->sched.pool)
        weft_panic(WEFT_SITE, "weft_runtime_free called from a blocking job of the same runtime: it would wait "
                   "for itself to finish; free the runtime from the thread that created it");
    weft_runtime_shutdown_timeout(rt, UINT64_MAX);
    weft__foreign_wakes_quiesce();
    rt_release(rt);
}
