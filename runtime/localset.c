/* runtime/localset.c - local sets: tasks that are polled only on the thread
 * that owns their set (weft/local.h; Tokio's LocalSet and spawn_local).
 *
 * A local task is an ordinary task (task.c: one allocation, the state word,
 * join handles, abort, the owned list) with WEFT_T_LOCAL set and its set in
 * t->local where a runtime task names its scheduler. Only where it is
 * queued differs, and weft__sched_schedule (sched.c) sends it here:
 *
 *   spawn (owner thread)                      -> the set's local queue
 *   wake on the owner, inside the set's run   -> the local queue
 *   wake anywhere else (another thread, a     -> the remote queue, then the
 *     worker, the libuv thread, or the owner     run future's waker
 *     outside the set's run)
 *   the run future's poll (owner thread)      -> moves the remote queue to
 *                                                the local one, polls tasks
 *
 * Structure: the local queue is a FIFO list through t->next that only the
 * owner thread touches (spawns, and the run future's poll). The remote
 * queue is an inject queue (inject.c: producers push with one CAS on a
 * lock-free intake stack and never wait; closed by the free). The run
 * future's waker sits in an atomic waker (sync/atomic_waker.c): a remote
 * push, then a wake; the run future registers, then looks at the queues,
 * so a push is either seen by that look or wakes the registered waker
 * (the atomic waker's acq_rel RMWs order the two). Every poll, completion
 * and drop of a local task happens on the owner thread, so the set's
 * owned list (owned.c, the tasks that wait) is only ever touched there.
 *
 * Lifetime: the set's memory is reference counted: the owner's reference
 * (weft_local_set_free), one per task allocation (released by task.c's
 * task_dealloc), one per run future from its first poll to its end, and
 * one held by a remote wake across its push and its wake of the run
 * future. So a wake from another thread that races the free still finds
 * the remote queue, closed, and drops its entry; nothing counts wakes
 * process-wide the way a runtime's foreign wakes are counted (task.c).
 *
 * The free runs on the owner thread, outside the set's run: it closes the
 * owned list and the remote queue, drops the entries of both queues and
 * then every waiting task, in the order of a runtime's shutdown (task.h:
 * queue entries first, since a yield entry holds RUNNING), so every future
 * is dropped on the owner thread.
 *
 * Progress: a wake from another thread never waits (one CAS on the intake
 * stack, then the atomic waker's lock-free wake). The remote queue's
 * consumer mutex is taken only by the owner, so it is never contended.
 *
 * Known weaknesses: the tasks run only while a run future is polled; a
 * local task that blocks holds up its whole set (and the block_on loop
 * around it); a wake from the owner outside the set's run takes the
 * remote path (a CAS and a wake) although no other thread is involved.
 *
 * Context: weft_local_set_* and weft_spawn_local_at on the owner thread;
 * weft__local_schedule and weft__local_release on any thread.
 */
#include <string.h>

#include "nonnull.h"
#include "scheduler.h"

/* How many tasks one poll of a run future polls at most before it wakes
 * itself and returns, so that the thread driving it (a block_on loop, a
 * current-thread runtime's other tasks) gets a turn: Tokio's figure, and
 * weft's default global_queue_interval. */
#define LOCAL_TASKS_PER_POLL 61

struct weft_local_set_s {
    /* Wakes from other threads. Cache-line aligned inside (inject.c), so
     * the set is allocated aligned. */
    weft__inject_t remote;
    /* The waker of the run futures that drive the set, for remote pushes. */
    weft_atomic_waker_t waker;
    _Atomic long refs; /* see the file comment */
    pthread_t owner;
    /* Owner thread only: */
    weft_task_t *head, *tail; /* ready tasks, FIFO through t->next */
    weft__owned_t owned;      /* tasks that wait: where the free finds them */
    unsigned runs;            /* run futures polled and not yet ended */
    bool running;             /* a run future is inside its poll */
    bool closed;              /* weft_local_set_free began */
};

/* weft_local_run_t.state_ */
enum { RUN_NEW, RUN_HELD, RUN_DONE };

/* ---- The set's lifetime ------------------------------------------------------ */

int weft_local_set_new(weft_local_set_t **out)
{
    WEFT__REQUIRE("weft_local_set_new", out);
    weft_local_set_t *set = weft__alloc_aligned(sizeof *set);
    if (set == NULL)
        return WEFT_ENOMEM;
    memset(set, 0, sizeof *set);
    /* One "worker": 4 shards, whose locks only the owner ever takes. */
    if (weft__owned_init(&set->owned, 1) != 0) {
        weft__free_aligned(set);
        return WEFT_ENOMEM;
    }
    weft__inject_init(&set->remote);
    weft_atomic_waker_init(&set->waker);
    atomic_init(&set->refs, 1);
    set->owner = pthread_self();
    WEFT_LIVE_INC(WEFT_LIVE_LOCAL_SET);
    *out = set;
    return 0;
}

static void retain(weft_local_set_t *set)
{
    /* relaxed: taken from a reference the caller holds (or one its task
     * holds), which keeps the set alive meanwhile. */
    atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
}

void weft__local_release(weft_local_set_t *set)
{
    WEFT_CHAOS();
    /* acq_rel: release orders this holder's use of the set before the
     * free; acquire makes every other holder's use visible to the thread
     * that frees (as in weft__task_ref_dec). */
    if (atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) != 1)
        return;
    weft_atomic_waker_drop(&set->waker);
    weft__inject_destroy(&set->remote);
    weft__owned_free(&set->owned);
    WEFT_LIVE_DEC(WEFT_LIVE_LOCAL_SET);
    weft__free_aligned(set);
}

static void check_owner(const weft_local_set_t *set, const char *what, const char *site)
{
    if (!pthread_equal(pthread_self(), set->owner))
        weft_panic(site, "%s on a thread that does not own the local set: a LocalSet and its tasks stay on the "
                   "thread that created it", what);
}

static void drop_entries(weft_task_t *t, weft__entry_t entry)
{
    while (t != NULL) {
        weft_task_t *next = t->next;
        weft__task_drop_queued(t, entry);
        t = next;
    }
}

void weft_local_set_free(weft_local_set_t *set)
{
    if (set == NULL)
        return;
    check_owner(set, "weft_local_set_free", WEFT_SITE);
    if (set->running)
        weft_panic(WEFT_SITE, "weft_local_set_free called from inside the set's own run (a local task, or the "
                   "future its run_until drives): free it after the run future returns");
    set->closed = true; /* spawns from the drops below are cancelled at once */
    weft__owned_close(&set->owned);
    /* The remote queue's entries are wakes and aborts, never yields (a
     * yield is queued by the owner, inside the run, into the local queue),
     * so RUNNING there is never theirs. A wake that pushes after the close
     * fails and drops its own entry (weft__local_schedule). */
    drop_entries(weft__inject_close(&set->remote), WEFT__ENTRY_WAKE);
    weft_task_t *local = set->head;
    set->head = set->tail = NULL;
    drop_entries(local, WEFT__ENTRY_MAYBE_YIELD);
    /* Then the tasks that wait (the queues first: see the file comment). */
    weft_task_t *t;
    while ((t = weft__owned_pop(&set->owned)) != NULL)
        weft__task_shutdown(t);
    weft_waker_t w = weft_atomic_waker_take(&set->waker);
    weft_waker_drop(&w);
    weft__local_release(set);
}

weft__owned_t *weft__local_owned(weft_local_set_t *set)
{
    return &set->owned;
}

/* ---- Queues ------------------------------------------------------------------ */

/* Owner thread: appends the chain first..last to the local queue. */
static void push_local(weft_local_set_t *set, weft_task_t *first, weft_task_t *last)
{
    last->next = NULL;
    if (set->tail != NULL)
        set->tail->next = first;
    else
        set->head = first;
    set->tail = last;
}

void weft__local_schedule(weft_task_t *t)
{
    weft_local_set_t *set = t->local;
    if (weft__tls.local_set == set) {
        /* The owner, inside the set's run: the run polls it before it
         * returns, or wakes itself to (run_ready). */
        push_local(set, t, t);
        return;
    }
    /* Once pushed, the entry may be run, completed and freed by the owner
     * at once, and with it the task's reference to the set: hold one of
     * our own until the wake below is done. */
    retain(set);
    t->next = NULL;
    WEFT_CHAOS();
    if (weft__inject_push_batch(&set->remote, t, t, 1)) {
        WEFT_CHAOS();
        weft_atomic_waker_wake(&set->waker);
    } else {
        /* Freed (closed) meanwhile. A wake's or an abort's entry, never a
         * yield's: RUNNING is not this entry's to read. */
        weft__task_drop_queued(t, WEFT__ENTRY_WAKE);
    }
    weft__local_release(set);
}

/* Owner thread: moves every task of the remote queue to the back of the
 * local one, so wakes from other threads are served in arrival order with
 * the rest. */
static void take_remote(weft_local_set_t *set)
{
    weft_task_t *batch[64];
    size_t n;
    while ((n = weft__inject_pop(&set->remote, batch, sizeof batch / sizeof batch[0])) > 0) {
        for (size_t i = 0; i < n; i++) {
            push_local(set, batch[i], batch[i]);
        }
        if (n < sizeof batch / sizeof batch[0])
            return;
    }
}

static weft_task_t *pop_local(weft_local_set_t *set)
{
    weft_task_t *t = set->head;
    if (t != NULL) {
        set->head = t->next;
        if (set->head == NULL)
            set->tail = NULL;
    }
    return t;
}

static bool has_ready(weft_local_set_t *set)
{
    return set->head != NULL || !weft__inject_is_empty(&set->remote);
}

/* ---- Running ------------------------------------------------------------------- */

/* Polls one local task with a budget of its own, inside the poll of the
 * run future's caller: the caller's task, yield flag and budget are put
 * back afterwards (task.c's poll overwrites them). */
static void run_task(weft_task_t *t)
{
    weft_task_t *outer_task = weft__tls.task;
    bool outer_yielded = weft__tls.yielded;
    weft__coop_saved_t outer_budget = weft__coop_save();
    weft__coop_start();
    weft__task_run(t);
    weft__tls.task = outer_task;
    weft__tls.yielded = outer_yielded;
    weft__coop_restore(outer_budget);
}

/* Runs up to LOCAL_TASKS_PER_POLL ready tasks; returns whether some are
 * still ready. */
static bool run_ready(weft_local_set_t *set)
{
    take_remote(set);
    for (unsigned n = 0; n < LOCAL_TASKS_PER_POLL; n++) {
        weft_task_t *t = pop_local(set);
        if (t == NULL) {
            take_remote(set); /* woken from elsewhere while we ran */
            if ((t = pop_local(set)) == NULL)
                return false;
        }
        run_task(t);
    }
    return has_ready(set);
}

/* Whether the set holds no unfinished task: none ready, none waiting (a
 * task between its wake and its remote push is still on the owned list). */
static bool set_is_idle_and_empty(weft_local_set_t *set)
{
    return !has_ready(set) && weft__owned_is_empty(&set->owned);
}

static const weft_future_vtable_t run_vtable;

weft_local_run_t weft_local_set_run_until(weft_local_set_t *set, weft_future_t *inner, void *out)
{
    WEFT__REQUIRE("weft_local_set_run_until", set);
    WEFT__REQUIRE("weft_local_set_run_until", inner);
    return (weft_local_run_t){ { &run_vtable }, set, inner, out, RUN_NEW };
}

weft_local_run_t weft_local_set_run(weft_local_set_t *set)
{
    WEFT__REQUIRE("weft_local_set_run", set);
    return (weft_local_run_t){ { &run_vtable }, set, NULL, NULL, RUN_NEW };
}

/* A run future ends (completed or dropped): the last one takes its waker
 * back, so a finished block_on's root waker (and the runtime memory it
 * keeps) is not held by an idle set. */
static void run_end(weft_local_run_t *r)
{
    weft_local_set_t *set = r->set_;
    r->state_ = RUN_DONE;
    if (--set->runs == 0) {
        weft_waker_t w = weft_atomic_waker_take(&set->waker);
        weft_waker_drop(&w);
    }
    weft__local_release(set);
}

static void drop_inner(weft_local_run_t *r)
{
    weft_future_t *inner = r->inner_;
    r->inner_ = NULL; /* first: a drop that reaches this run future finds it done */
    weft_future_drop(inner);
}

static void check_driver(weft_local_run_t *r)
{
    weft_local_set_t *set = r->set_;
    if (r->state_ == RUN_DONE)
        weft_panic(WEFT_SITE, "a LocalSet's run future polled after it completed");
    const weft__worker_t *w = weft__tls.worker;
    if ((w != NULL && w->sched->flavor == WEFT_RUNTIME_MULTI_THREAD) || weft__tls.helping)
        weft_panic(WEFT_SITE, "a LocalSet's run future polled by a task of a multi-thread runtime: that task may "
                   "resume on another worker; drive the set from weft_runtime_block_on");
    check_owner(set, "a LocalSet's run future polled", WEFT_SITE);
    if (set->closed)
        weft_panic(WEFT_SITE, "a LocalSet's run future polled after weft_local_set_free");
    if (set->running)
        weft_panic(WEFT_SITE, "a LocalSet's run future polled from inside the same set's run (a local task "
                   "awaiting its own set?)");
}

static weft_poll_t run_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_local_run_t *r = (weft_local_run_t *)(void *)f;
    weft_local_set_t *set = r->set_;
    check_driver(r);
    if (r->state_ == RUN_NEW) {
        retain(set);
        set->runs++;
        r->state_ = RUN_HELD;
    }
    /* Register, then look at the queues (run_ready): a remote push either
     * is seen there or wakes this waker (file comment). */
    weft_atomic_waker_register(&set->waker, cx->waker);
    weft_local_set_t *outer = weft__tls.local_set;
    weft__tls.local_set = set;
    set->running = true;
    weft_poll_t p = WEFT_PENDING;
    bool more = false;
    if (r->inner_ != NULL) {
        p = weft_future_poll(r->inner_, cx, r->out_);
        if (p == WEFT_READY)
            drop_inner(r); /* inside the set: its drop may spawn_local */
    }
    if (p == WEFT_PENDING) {
        more = run_ready(set);
        /* run (no inner future): done once no task is left at all. */
        if (r->inner_ == NULL && !more && set_is_idle_and_empty(set))
            p = WEFT_READY;
    }
    set->running = false;
    weft__tls.local_set = outer;
    if (p == WEFT_READY) {
        run_end(r);
        if (out != NULL)
            *(weft_unit_t *)out = WEFT_UNIT;
        return WEFT_READY;
    }
    if (more)
        weft_waker_wake_by_ref(cx->waker); /* a full batch ran: let the thread do other work first */
    return WEFT_PENDING;
}

static void run_drop(weft_future_t *f)
{
    weft_local_run_t *r = (weft_local_run_t *)(void *)f;
    if (r->inner_ != NULL)
        drop_inner(r);
    if (r->state_ == RUN_HELD)
        run_end(r);
}

static const weft_future_vtable_t run_vtable = {
    run_poll, run_drop, NULL, sizeof(weft_local_run_t), 0, "weft_local_run",
};

/* ---- Spawning ------------------------------------------------------------------ */

int weft_spawn_local_at(weft_local_set_t *set, weft_future_t *fut, weft_join_handle_t *jh,
                        const weft_spawn_opts_t *opts, const char *site)
{
    if (set == NULL) {
        set = weft__tls.local_set; /* set only on its owner thread, inside its run */
        if (set == NULL)
            weft_panic(site, "weft_spawn_local called outside a LocalSet: call it from a local task or from the "
                       "future that weft_local_set_run_until drives, or spawn into a set with "
                       "weft_local_set_spawn");
    } else {
        check_owner(set, "weft_spawn_local", site);
    }
    weft__spawn_check_future("weft_spawn_local", fut, site);
    weft_task_t *t = weft__task_new(NULL, fut, jh != NULL, opts ? opts->name : NULL, site);
    if (t == NULL)
        return WEFT_ENOMEM;
    /* Not shared yet (no queue, handle or waker has it): plain updates. */
    t->local = set;
    atomic_store_explicit(&t->state, atomic_load_explicit(&t->state, memory_order_relaxed) | WEFT_T_LOCAL,
                          memory_order_relaxed);
    retain(set); /* the task's: task_dealloc releases it */
    if (jh != NULL)
        weft__join_handle_init(jh, t);
    if (set->closed) {
        /* Spawned by a drop during weft_local_set_free: cancelled at once,
         * like a spawn into a runtime that is shutting down. */
        weft__task_drop_queued(t, WEFT__ENTRY_WAKE);
        return 0;
    }
    push_local(set, t, t);
    if (!set->running) /* spawned between polls of its run: let it know */
        weft_atomic_waker_wake(&set->waker);
    return 0;
}
