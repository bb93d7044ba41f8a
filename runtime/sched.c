/* runtime/sched.c - where a runnable task goes: spawn and wake both end
 * here.
 *
 * On a worker of the task's runtime: a wake puts the task in the LIFO slot
 * (it probably consumes what its waker just produced, while that is still in
 * cache), displacing the previous occupant to the back of the local queue;
 * a spawn or a yield goes to the back of the local queue. Anywhere else: the
 * inject queue, and one parked worker is woken if none is searching.
 */
#include "scheduler.h"

static inline weft__worker_t *local_worker(weft__sched_t *s)
{
    weft__worker_t *w = weft__tls.worker;
    return (w != NULL && w->sched == s) ? w : NULL;
}

static void push_remote(weft__sched_t *s, weft_task_t *t)
{
    t->next = NULL;
    if (!weft__inject_push_batch(&s->inject, t, t, 1)) {
        /* Shut down. This entry comes from a wake, spawn or abort, never
         * from a yield (a task yields on its own worker), so it does not
         * hold RUNNING: reading RUNNING as a yield entry would race with
         * shutdown's own claim and drop the future twice. */
        weft__task_drop_queued(t, false);
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

void weft__sched_schedule(weft_task_t *t, bool is_yield)
{
    weft__sched_t *s = t->sched;
    weft__worker_t *w = local_worker(s);
    if (w == NULL) {
        push_remote(s, t);
        return;
    }
    if (is_yield) {
        weft__sched_push_local_back(s, w, t);
        return;
    }
    weft_task_t *prev = w->lifo;
    w->lifo = t;
    if (prev != NULL)
        weft__sched_push_local_back(s, w, prev);
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
    weft_task_t *prev = w->lifo;
    w->lifo = t;
    if (prev != NULL)
        weft__sched_push_local_back(s, w, prev);
}

bool weft__sched_has_work(weft__sched_t *s)
{
    if (!weft__inject_is_empty(&s->inject))
        return true;
    for (unsigned i = 0; i < s->nworkers; i++)
        if (weft__queue_len(&s->workers[i].queue) != 0)
            return true;
    return false;
}

int weft_spawn_at(weft_handle_t *h, weft_future_t *fut, weft_join_handle_t *jh, const weft_spawn_opts_t *opts,
                  const char *site)
{
    weft__sched_t *s = h ? (weft__sched_t *)h : weft__tls.sched;
    if (s == NULL)
        weft_panic(site, "weft_spawn called with no runtime current on this thread: call it from a task or "
                   "block_on, or use weft_handle_spawn with a runtime handle");
    if (fut == NULL || fut->vtable == NULL || fut->vtable->poll == NULL)
        weft_panic(site, "weft_spawn: not a future (NULL or no vtable)");
    weft_task_t *t = weft__task_new(s, fut, jh != NULL, opts ? opts->name : NULL, site);
    if (t == NULL)
        return WEFT_ENOMEM;
    if (jh != NULL) {
        jh->future.vtable = &weft__join_handle_vtable;
        jh->task = t;
        jh->dst = NULL;
        WEFT_LIVE_INC(WEFT_LIVE_JOIN_HANDLE);
    }
    /* Not on the owned list yet (task.h): a spawn racing shutdown is
     * cancelled by whoever drops its queue entry. */
    weft__sched_spawned(s, t);
    return 0;
}
