/* runtime/worker.c - the worker loop: find a task, poll it, park when there
 * is nothing to do.
 *
 * Order of search (Tokio's and Go's, tuned the same way):
 *   1. every gqi-th tick: take socket events and fire due timers through
 *      the driver interface (poll_io),
 *      then the `woken` queue and the inject queue first, so remote work
 *      is not starved by a busy local queue;
 *   2. the LIFO slot, at most WEFT_MAX_LIFO_POLLS times in a row, so two
 *      tasks ping-ponging through it cannot starve the rest of the queue;
 *   3. the local queue, then the `woken` queue and the inject queue (a
 *      batch into the local queue);
 *   4. steal half of another worker's queue (if fewer than half the workers
 *      are already searching);
 *   5. take socket events and fire due timers (tasks found this way end a
 *      search without handing it on, idle.c), then park (idle.c) after
 *      one last look at every queue; the first worker to park sleeps in
 *      the driver (weft__driver_park), the others on their futex.
 * Each task taken from a queue gets a fresh cooperative budget of
 * WEFT_COOP_BUDGET units and a time slice (context.h), shared with the
 * LIFO successors it runs (as in Tokio, which counts units only).
 * The inject check counts scheduling ticks (tasks taken), not polls.
 */
#include <string.h>

#include "scheduler.h"

/* Two tasks that keep waking each other would otherwise own the worker;
 * three in a row keeps most of the cache benefit (Tokio's figure). */
#define WEFT_MAX_LIFO_POLLS 3

/* Takes ready socket events and fires due timers on this worker, through
 * the driver interface (reactor/driver.h), without waiting for the libuv
 * thread to get a CPU. The socket events' tasks land in this worker's own
 * queue. Timers: an idle worker (WEFT__FIRE_IDLE) keeps the first batch
 * it wakes and shares the rest through the `woken` queue; a busy one
 * (WEFT__FIRE_BUSY) puts all of them on the `woken` queue, which every
 * worker serves before the rest (at the back of its own queue, or of the
 * inject queue on overflow, they could wait behind a burst of spawns). */
static bool poll_io(weft__sched_t *s, weft__worker_t *w, weft__fire_mode_t mode)
{
    if (s->driver == NULL)
        return false;
    /* Socket events are left to a worker asleep in the driver: readiness
     * wakes that one, and the tasks run there, beside this worker's,
     * instead of in this worker's LIFO slot (two tasks on one connection,
     * a reader and a writer, took turns on one worker while the other was
     * woken for nothing and slept again; Tokio's driver lock has the same
     * effect). */
    unsigned n = weft__driver_has_parked(s->driver) ? 0 : weft__driver_poll_events(s->driver, 64);
    n += weft__driver_fire_timers(s->driver, w->index, mode);
    return n > 0;
}

static weft_task_t *pop_batch_from(weft__sched_t *s, weft__worker_t *w, weft__inject_t *q)
{
    /* Take a fair share: what the others would take too, bounded by the room
     * in our queue (half of it, so a following steal still fits). */
    size_t len = atomic_load_explicit(&q->len, memory_order_relaxed);
    size_t want = len / s->nworkers + 1;
    size_t room = WEFT_QUEUE_CAP - weft__queue_len(&w->queue);
    if (want > room / 2)
        want = room / 2 > 0 ? room / 2 : 1;
    weft_task_t *batch[WEFT_QUEUE_CAP / 2];
    if (want > WEFT_QUEUE_CAP / 2)
        want = WEFT_QUEUE_CAP / 2;
    /* Workers of a multi-thread runtime only try the consumers' lock (a
     * holder may have lost its CPU; the loop has other work and comes
     * back, and never parks while the queue holds tasks). A current-thread
     * runtime's driver, seeded ones included, takes it: it is the only
     * consumer, and a seeded run must not depend on a lock's timing. */
    size_t n = s->flavor == WEFT_RUNTIME_MULTI_THREAD ? weft__inject_try_pop(q, batch, want)
                                                      : weft__inject_pop(q, batch, want);
    if (n == 0)
        return NULL;
    for (size_t i = 1; i < n; i++)
        weft__queue_push_back_spmc(&w->queue, batch[i], &s->inject);
    return batch[0];
}

/* Remote work: tasks woken by the reactor first (they waited on an event
 * that has happened), then spawns and wakes from other threads. Without
 * this order a burst of remote spawns delays every timer behind it. */
static weft_task_t *pop_inject_batch(weft__sched_t *s, weft__worker_t *w)
{
    weft_task_t *t = weft__inject_is_empty(&s->woken) ? NULL : pop_batch_from(s, w, &s->woken);
    if (t == NULL && !weft__inject_is_empty(&s->inject))
        t = pop_batch_from(s, w, &s->inject);
    return t;
}

weft_task_t *weft__worker_pop_remote(weft__sched_t *s, weft__worker_t *w)
{
    return pop_inject_batch(s, w);
}

static weft_task_t *next_task(weft__sched_t *s, weft__worker_t *w)
{
    /* A countdown, not tick % gqi: a division per scheduled task showed up
     * in chained_spawn's profile. */
    if (--w->tick == 0) {
        w->tick = s->gqi;
        poll_io(s, w, WEFT__FIRE_BUSY); /* also while busy, so socket events are not left waiting */
        weft_task_t *t = pop_inject_batch(s, w);
        if (t != NULL)
            return t;
    }
    if (w->lifo != NULL) {
        weft_task_t *t = w->lifo;
        w->lifo = NULL;
        return t;
    }
    weft_task_t *t = weft__queue_pop_spmc(&w->queue);
    if (t != NULL)
        return t;
    return pop_inject_batch(s, w);
}

/* Runs t, then whatever it woke into the LIFO slot, within one budget and at
 * most WEFT_MAX_LIFO_POLLS LIFO polls. Returns early, without touching w,
 * when a poll handed w to another thread (weft_block_in_place). */
void weft__worker_run_task(weft__worker_t *w, weft_task_t *t)
{
    weft__sched_t *s = w->sched;
    weft__coop_start();
    weft__task_run(t);
    unsigned lifo_polls = 0;
    while (WEFT_LIKELY(weft__tls.worker == w) && w->lifo != NULL) {
        t = w->lifo;
        w->lifo = NULL;
        if (lifo_polls >= WEFT_MAX_LIFO_POLLS || weft__tls.budget <= 0) {
            weft__sched_push_local_back(s, w, t);
            break;
        }
        lifo_polls++;
        weft__task_run(t);
    }
    weft__coop_stop();
}

static weft_task_t *steal_work(weft__sched_t *s, weft__worker_t *w)
{
    if (!w->searching && !weft__idle_try_search(s, w))
        return NULL;
    unsigned n = s->nworkers;
    /* xorshift32: a different victim order per attempt spreads thieves. */
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 17;
    w->rng ^= w->rng << 5;
    unsigned start = w->rng % n;
    for (unsigned i = 0; i < n; i++) {
        unsigned v = (start + i) % n;
        if (v == w->index)
            continue;
        weft_task_t *t = weft__queue_steal_into(&s->workers[v].queue, &w->queue);
        if (t != NULL)
            return t;
    }
    return pop_inject_batch(s, w);
}

static void park_worker(weft__sched_t *s, weft__worker_t *w)
{
    weft__idle_park(s, w); /* every parker re-checks below, searcher or not */
    /* seq_cst fence: pairs with the fence in idle.c:weft__idle_notify_one
     * (Dekker): either the producer sees us parked and wakes someone, or our
     * re-check below sees its task. */
    atomic_thread_fence(memory_order_seq_cst);
    WEFT_CHAOS();
    if (weft__sched_has_work(s) || atomic_load_explicit(&s->shutdown, memory_order_acquire)) {
        if (weft__idle_unpark_self(s, w))
            return; /* we took ourselves off the list: go and look */
        /* A notifier already took us off the list and unparked us: the
         * permit is waiting, the park below returns at once. */
    }
    for (;;) {
        weft__driver_t *d = s->driver;
        weft__park_result_t pr = d != NULL ? weft__driver_park(d, &w->parker) : WEFT__PARK_NOT_DRIVER;
        if (pr == WEFT__PARK_EVENTS) {
            /* Woken by socket readiness or a timer, not by a notifier: take
             * the events and fire the timers here; the tasks they wake go
             * to our own queue. */
            unsigned n = weft__driver_poll_events(d, 64) + weft__driver_fire_timers(d, w->index, WEFT__FIRE_IDLE);
            if (n == 0 && w->lifo == NULL && !weft__sched_has_work(s) &&
                !atomic_load_explicit(&s->shutdown, memory_order_acquire))
                continue; /* nothing after all (another poller took it): sleep again */
            if (!weft__idle_unpark_self(s, w))
                w->searching = true; /* a notifier took us off the list and counted us */
            else if (weft__driver_timers_pending(d))
                /* We leave the driver to run what we woke, with timers
                 * pending. If what we run keeps us long, they would wait
                 * for the backstop while another worker sleeps on its
                 * futex: wake one, which finds nothing and parks in the
                 * driver. (No-op when no worker is parked or one is
                 * already searching.) */
                weft__idle_notify_one(s);
            return;
        }
        if (pr == WEFT__PARK_NOT_DRIVER)
            weft__park(&w->parker);
        if (atomic_load_explicit(&s->shutdown, memory_order_acquire))
            return;
        if (!weft__idle_is_sleeping(s, w)) {
            w->searching = true; /* the notifier counted us as searching */
            return;
        }
        /* A stale permit: still on the list, sleep again. */
    }
}

/* Returns true when the loop was handed to another thread (block_in_place)
 * and false at shutdown. */
static bool worker_loop(weft__sched_t *s, weft__worker_t *w)
{
    while (!atomic_load_explicit(&s->shutdown, memory_order_relaxed)) {
        weft_task_t *t = next_task(s, w);
        if (t == NULL)
            t = steal_work(s, w);
        if (t != NULL) {
            if (w->searching && weft__idle_end_search(s, w))
                weft__idle_notify_one(s); /* keep one searcher while work flows */
            weft__worker_run_task(w, t);
            if (WEFT_UNLIKELY(weft__tls.worker != w))
                return true;
            continue;
        }
        if (poll_io(s, w, WEFT__FIRE_IDLE)) {
            /* They woke tasks into our queue. If nobody sleeps in the
             * driver, pending timers need a sibling there while we run
             * those tasks (as when we leave the driver, park_worker). */
            weft__driver_t *d = s->driver;
            weft__idle_found_own_work(s, w,
                                      w->searching && !weft__driver_has_parked(d) && weft__driver_timers_pending(d));
            continue;
        }
        park_worker(s, w);
    }
    if (w->searching)
        weft__idle_end_search(s, w);
    return false;
}

/* Runs a thread hook on a worker thread outside the worker's loop: the
 * thread still counts as a worker (weft__tls.worker: blocking calls abort
 * there), but its wakes and spawns take the remote path (inject queue and
 * an unpark), since the LIFO slot and local queue would hold them where
 * nobody runs them while the hook lasts, or, in on_thread_stop, ever. */
static void run_thread_hook(void (*hook)(void *), void *arg)
{
    if (hook == NULL)
        return;
    weft__worker_t *serving = weft__tls.serving;
    weft__tls.serving = NULL;
    hook(arg);
    weft__tls.serving = serving;
}

bool weft__worker_run_core(weft__worker_t *w)
{
    weft__sched_t *s = w->sched;
    char name[16];
    snprintf(name, sizeof name, "%.11s-%u", s->name, w->index);
    pthread_setname_np(pthread_self(), name);
    weft__tls_set_runtime(s);
    weft__tls_set_worker(w);
    run_thread_hook(s->cfg.on_thread_start, s->cfg.hook_arg);
    bool handed_off = worker_loop(s, w);
    run_thread_hook(s->cfg.on_thread_stop, s->cfg.hook_arg);
    weft__tls_set_worker(NULL);
    if (!handed_off)
        weft__pool_loop_ended(s->pool);
    return handed_off;
}

/* ---- block_in_place -------------------------------------------------------- */

/* The fallback when no thread can take w: its queued tasks go to the inject
 * queue, where the other workers find them. */
static void spill_to_inject(weft__sched_t *s, weft__worker_t *w)
{
    weft_task_t *first = w->lifo, *last = w->lifo, *t;
    size_t n = w->lifo ? 1 : 0;
    w->lifo = NULL;
    if (first)
        first->next = NULL;
    while ((t = weft__queue_pop_spmc(&w->queue)) != NULL) {
        t->next = NULL;
        if (last)
            last->next = t;
        else
            first = t;
        last = t;
        n++;
    }
    if (n == 0)
        return;
    if (!weft__inject_push_batch(&s->inject, first, last, n)) {
        while (first != NULL) { /* shut down meanwhile */
            weft_task_t *next = first->next;
            weft__task_drop_queued(first, WEFT__ENTRY_MAYBE_YIELD);
            first = next;
        }
        return;
    }
    weft__idle_notify_one(s);
}

int weft_block_in_place(weft_blocking_fn_t fn, void *arg, void **result)
{
    if (fn == NULL)
        weft_panic(WEFT_SITE, "weft_block_in_place: fn is NULL");
    weft__worker_t *w = weft__tls.worker;
    void *r;
    if (w != NULL && w->sched->flavor == WEFT_RUNTIME_CURRENT_THREAD) {
        return WEFT_EPERM; /* this thread runs every task: nothing could go on */
    } else if (w == NULL || weft__tls.task == NULL) {
        /* Not inside a worker's poll: nothing waits behind us. A task that
         * a block_on thread runs while it waits (runtime.c) may block_on
         * in fn, as it could from a worker: the thread's own block_on is
         * not polling meanwhile. */
        bool in_block_on = weft__tls.in_block_on;
        if (weft__tls.helping)
            weft__tls.in_block_on = false;
        r = fn(arg);
        weft__tls.in_block_on = in_block_on;
    } else {
        weft__sched_t *s = w->sched;
        weft__watch_end(w); /* this thread stops being watched as a worker */
        weft__tls_set_worker(NULL);
        if (weft__pool_hand_off_core(s->pool, w) == 0) {
            /* w runs on another thread now; this one finishes the current
             * poll as an ordinary thread and then joins the blocking pool
             * (worker_loop sees weft__tls.worker changed). */
            r = fn(arg);
        } else {
            spill_to_inject(s, w);
            r = fn(arg);
            weft__tls_set_worker(w);
            weft__watch_begin(w, weft__tls.task);
        }
    }
    if (result != NULL)
        *result = r;
    return 0;
}

unsigned weft__ct_run_some(weft__sched_t *s, unsigned max)
{
    if (s->seeded)
        return weft__seeded_run_some(s, max); /* a test's shuffled order (seeded.c) */
    weft__worker_t *w = &s->workers[0];
    unsigned n = 0;
    while (n < max) {
        weft_task_t *t = next_task(s, w);
        if (t == NULL)
            break;
        weft__worker_run_task(w, t);
        n++;
    }
    return n;
}
