/* runtime/sched.c - where a runnable task goes: spawn and wake both end
 * here.
 *
 * On a worker of the task's runtime: a wake or a spawn puts the task in the
 * LIFO slot (it probably consumes what its waker just produced, or what its
 * spawner just wrote, while that is still in cache), displacing the
 * previous occupant to the back of the local queue; a yield goes to the
 * back of the local queue. Anywhere else: the inject queue (the `woken`
 * queue for the drivers' batches, weft__wake_batch), and one parked worker
 * is woken if none is searching. A local set's task goes to its set
 * (localset.c), wherever it is woken from.
 */
#include "scheduler.h"

/* The worker of s whose loop this thread is inside (weft__tls.serving),
 * or NULL. Only then are the plain stores to its LIFO slot and local queue
 * safe and sure to be seen: the loop owns both, and looks at them again
 * once the code it called returns. A thread hook, a blocking job or
 * block_in_place's function (whose thread gave its worker away), another
 * runtime's worker, a plain thread: all take the remote path, like a
 * foreign thread (docs/wakers.md, where a waker may be called from). */
static inline weft__worker_t *local_worker(weft__sched_t *s)
{
    weft__worker_t *w = weft__tls.serving;
    return (w != NULL && w->sched == s) ? w : NULL;
}

/* A batch of remote schedules (weft__wake_batch: timers fired many at
 * once, by a worker or the libuv thread, and socket events): one push (a
 * CAS) and one notify for the lot, into the `woken` queue that workers read
 * before the inject queue. Only the runtime's own threads (its workers and
 * its drivers' thread) batch, so the runtime outlives the batch. The batch
 * travels as an array of task pointers (an inject block), not a chain
 * through the tasks: the worker taking it then copies pointers instead of
 * walking cold task headers under the queue's lock (a million timers spent
 * a sixth of their cycles there). */
typedef struct {
    weft__sched_t *s;
    weft_task_t *tasks[WEFT__INJECT_BLOCK_CAP];
    size_t n;
    bool active;
    bool force; /* even from a worker of the runtime (WEFT__WAKE_SHARED) */
    unsigned hold; /* weft__foreign_hold's token while the batch holds tasks; 0 none */
} remote_batch_t;
static _Thread_local remote_batch_t batch;

static void batch_flush(void)
{
    if (batch.n == 0)
        return;
    weft__sched_t *s = batch.s;
    if (!weft__inject_push_array(&s->woken, batch.tasks, batch.n)) {
        for (size_t i = 0; i < batch.n; i++)
            weft__task_drop_queued(batch.tasks[i], WEFT__ENTRY_WAKE);
    } else {
        weft__idle_notify_one(s);
    }
    batch.n = 0;
}

void weft__wake_batch(weft_waker_t *ws, unsigned n, weft__wake_route_t route)
{
    if (n == 0)
        return;
    /* The batch is this thread's while the wakes below run: a wake that
     * reaches weft__sched_schedule for a task of a runtime this thread is
     * not a worker of (or any runtime, with `force`) joins it. */
    batch.active = true;
    batch.force = route == WEFT__WAKE_SHARED;
    for (unsigned i = 0; i < n; i++)
        weft_waker_wake(&ws[i]);
    batch_flush();
    batch.active = false;
    batch.force = false;
    if (batch.hold != 0) {
        weft__foreign_let_go(batch.hold);
        batch.hold = 0;
    }
}

static void push_remote(weft__sched_t *s, weft_task_t *t)
{
    t->next = NULL;
    if (batch.active) {
        /* A batched task may belong to another runtime than the driver's
         * (a signal waiter, a socket awaited from another runtime), and its
         * wake's own foreign count ends before the flush pushes it: from
         * the first task on, the batch holds a count of its own, so no
         * runtime in it is freed before the flush (task.c). Taken inside
         * that wake's window, so the two overlap. Not needed for a task of
         * the runtime this thread is a worker of (a busy worker's timers):
         * that runtime cannot be freed while its workers run. */
        if (batch.hold == 0 && local_worker(s) == NULL)
            batch.hold = weft__foreign_hold();
        if (batch.n > 0 && (batch.s != s || batch.n == WEFT__INJECT_BLOCK_CAP))
            batch_flush();
        batch.s = s;
        batch.tasks[batch.n++] = t;
        return;
    }
    if (!weft__inject_push_batch(&s->inject, t, t, 1)) {
        /* Shut down. This entry comes from a wake, spawn or abort, never
         * from a yield (a task yields on its own worker), so it does not
         * hold RUNNING: reading RUNNING as a yield entry would race with
         * shutdown's own claim and drop the future twice. */
        weft__task_drop_queued(t, WEFT__ENTRY_WAKE);
        return;
    }
    weft__idle_notify_one(s);
}

/* Pushes to the back of this worker's queue. Another worker is woken only
 * when there is more than the one task this worker takes next: waking a
 * sibling (a futex syscall here, a steal and a cache miss there) to run a
 * serial chain of tasks costs more than it gives. */
void weft__sched_push_local_back(weft__sched_t *s, weft__worker_t *w, weft_task_t *t)
{
    weft__queue_push_back_spmc(&w->queue, t, &s->inject);
    if (s->flavor == WEFT_RUNTIME_MULTI_THREAD && weft__queue_len(&w->queue) > 1)
        weft__idle_notify_local(s);
}

/* Puts t in the LIFO slot; a displaced occupant goes to the back of the
 * queue and a sibling is woken to take it, so a worker that stays busy in
 * its current poll holds back at most the one task in its slot (as in
 * Tokio and Go's runnext). */
static void push_lifo(weft__sched_t *s, weft__worker_t *w, weft_task_t *t)
{
    weft_task_t *prev = w->lifo;
    w->lifo = t;
    if (prev == NULL)
        return;
    weft__queue_push_back_spmc(&w->queue, prev, &s->inject);
    if (s->flavor == WEFT_RUNTIME_MULTI_THREAD)
        weft__idle_notify_local(s);
}

void weft__sched_schedule(weft_task_t *t, bool is_yield)
{
    if (WEFT_UNLIKELY(weft__task_is_local(t))) {
        weft__local_schedule(t); /* its set's queues, never a worker's (localset.c) */
        return;
    }
    weft__sched_t *s = t->sched;
    weft__worker_t *w = local_worker(s);
    if (w == NULL || WEFT_UNLIKELY(batch.force && !is_yield)) {
        push_remote(s, t);
        return;
    }
    if (is_yield) {
        weft__sched_push_local_back(s, w, t);
        return;
    }
    push_lifo(s, w, t);
}

void weft__sched_spawned(weft__sched_t *s, weft_task_t *t)
{
    weft__worker_t *w = local_worker(s);
    if (w == NULL) {
        push_remote(s, t);
        return;
    }
    /* Like Go's runnext: the newest spawn runs next on this worker, while
     * its frame is still in cache; the one it displaces goes to the back of
     * the queue, where others can steal it. */
    push_lifo(s, w, t);
}

bool weft__sched_has_work(weft__sched_t *s)
{
    if (!weft__inject_is_empty(&s->inject) || !weft__inject_is_empty(&s->woken))
        return true;
    for (unsigned i = 0; i < s->nworkers; i++)
        if (weft__queue_len(&s->workers[i].queue) != 0)
            return true;
    return false;
}

static void check_vtable(const char *what, const weft_future_vtable_t *vt, const char *site)
{
    if (vt == NULL || vt->poll == NULL)
        weft_panic(site, "%s: not a future (NULL or no vtable)", what);
    if (vt->size < sizeof(weft_future_t))
        weft_panic(site, "%s: the future's vtable gives its size as %zu bytes, less than a weft_future_t", what,
                   vt->size);
}

void weft__spawn_check_future(const char *what, weft_future_t *fut, const char *site)
{
    check_vtable(what, fut != NULL ? fut->vtable : NULL, site);
}

/* The spawn after the task holds its future: the join handle, then the
 * shutdown rule. Returns the task to schedule, or NULL when it was
 * dropped. */
static weft_task_t *spawn_built(weft__sched_t *s, weft_task_t *t, weft_join_handle_t *jh)
{
    if (jh != NULL)
        weft__join_handle_init(jh, t);
    /* Shutdown began: drop the future now, the handle reports
     * WEFT_ECANCELED. (A spawn that races the flag lands in a queue that
     * shutdown drains, and the draining cancels it: task.h.) */
    if (atomic_load_explicit(&s->shutdown, memory_order_acquire)) {
        weft__task_drop_queued(t, WEFT__ENTRY_WAKE);
        return NULL;
    }
    return t;
}

int weft__task_spawn_new(weft__sched_t *s, weft_future_t *fut, weft_join_handle_t *jh, const char *name,
                         const char *site, weft_task_t **out)
{
    *out = NULL;
    weft_task_t *t = weft__task_new(s, fut, jh != NULL, name, site);
    if (t == NULL)
        return WEFT_ENOMEM;
    *out = spawn_built(s, t, jh);
    return 0;
}

static weft__sched_t *spawn_target(weft_handle_t *h, const char *site)
{
    weft__sched_t *s = h ? (weft__sched_t *)h : weft__tls.sched;
    if (s == NULL)
        weft_panic(site, "weft_spawn called with no runtime current on this thread: call it from a task or "
                   "block_on, or use weft_handle_spawn with a runtime handle");
    return s;
}

int weft_spawn_at(weft_handle_t *h, weft_future_t *fut, weft_join_handle_t *jh, const weft_spawn_opts_t *opts,
                  const char *site)
{
    weft__sched_t *s = spawn_target(h, site);
    weft__spawn_check_future("weft_spawn", fut, site);
    weft_task_t *t;
    int rc = weft__task_spawn_new(s, fut, jh, opts ? opts->name : NULL, site, &t);
    if (t != NULL)
        weft__sched_spawned(s, t);
    return rc;
}

int weft_spawn_in_place_at(weft_handle_t *h, const weft_future_vtable_t *vtable, weft_future_init_cb init,
                           void *arg, weft_join_handle_t *jh, const weft_spawn_opts_t *opts, const char *site)
{
    weft__sched_t *s = spawn_target(h, site);
    check_vtable("weft_spawn_in_place", vtable, site);
    if (init == NULL)
        weft_panic(site, "weft_spawn_in_place: init is NULL");
    weft_task_t *t = weft__task_alloc(s, vtable, jh != NULL, opts ? opts->name : NULL, site);
    if (t == NULL)
        return WEFT_ENOMEM; /* init never called */
    /* Built where it will be polled: no copy, and the frame's pages are
     * touched once, by init and the polls. No one else sees t yet. */
    weft_future_t *fut = weft__task_future(t);
    init(fut, arg);
    if (fut->vtable != vtable)
        weft_panic(site, "weft_spawn_in_place: init left a future of another vtable (%s) than the one given (%s)",
                   fut->vtable && fut->vtable->name ? fut->vtable->name : "?", vtable->name ? vtable->name : "?");
    t = spawn_built(s, t, jh);
    if (t != NULL)
        weft__sched_spawned(s, t);
    return 0;
}
