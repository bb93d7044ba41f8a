/* runtime/task.c - the task: allocation, running, completion, abort,
 * shutdown, task wakers, and the count of foreign wakes.
 *
 * The state word's transitions are in state.h; this file acts on what they
 * return (schedule the task, complete it, free it). The join handle's side
 * is in join.c.
 *
 * A weft-specific shortcut: a task that wakes itself during its own poll
 * (yield) does not touch the state word at all. The wake is recorded in the
 * thread context, the worker keeps RUNNING set and requeues the task at the
 * back of its queue; that queue entry then carries the running right, and
 * weft__state_transition_to_running recognises it by RUNNING being set. A
 * yield thus costs no atomic read-modify-write in the common case.
 */
#include <sched.h>
#include <string.h>

#include "scheduler.h"

/* ---- Layout and references ------------------------------------------------ */

const char *weft__task_name(weft_task_t *t)
{
    /* relaxed: NAMED never changes after weft__task_new. */
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    if (!(s & WEFT_T_NAMED))
        return NULL;
    return (const char *)t + weft__task_layout(t->vtable, 0).name_off;
}

const char *weft__task_site(weft_task_t *t)
{
    return *(const char **)(void *)((char *)t + weft__task_layout(t->vtable, 0).site_off);
}

uint64_t weft__task_id(weft_task_t *t)
{
    return *(const uint64_t *)(const void *)((char *)t + weft__task_layout(t->vtable, 0).id_off);
}

/* Task ids: unique in the process for its whole life (so unique for each
 * runtime's), never 0. Each thread takes them from a block of ID_BLOCK
 * reserved with one atomic add on the shared counter, so spawning from
 * many workers does not bounce one cache line. 2^64 ids do not run out. */
#define ID_BLOCK 1024
static _Atomic uint64_t id_next_block = 1;
static _Thread_local uint64_t id_next, id_end;

static uint64_t next_task_id(void)
{
    if (id_next == id_end) {
        /* relaxed: only uniqueness matters, which the atomic add gives. */
        id_next = atomic_fetch_add_explicit(&id_next_block, ID_BLOCK, memory_order_relaxed);
        id_end = id_next + ID_BLOCK;
    }
    return id_next++;
}

static void task_dealloc(weft_task_t *t)
{
    /* relaxed: NAMED and LOCAL never change after the spawn. */
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    weft__task_layout_t l = weft__task_layout(t->vtable, 0);
    if (s & WEFT_T_NAMED)
        l.total += strlen((const char *)t + l.name_off) + 1;
    /* A local task's allocation holds a reference to its set, so a wake
     * racing the set's free can still queue it there (localset.c). */
    struct weft_local_set_s *set = (s & WEFT_T_LOCAL) ? t->local : NULL;
    WEFT_LIVE_DEC(WEFT_LIVE_TASK);
    weft__free(t, l.total);
    if (WEFT_UNLIKELY(set != NULL))
        weft__local_release(set);
}

/* The list a task joins when it first waits, where shutdown (or its local
 * set's free) finds it. */
static inline weft__owned_t *owned_list(weft_task_t *t)
{
    return WEFT_UNLIKELY(weft__task_is_local(t)) ? weft__local_owned(t->local) : &t->sched->owned;
}

/* A page: a spawn that copies this much, or touches it for the first time,
 * costs microseconds rather than nanoseconds (the budget hears of it). */
#define DEAR_TASK_BYTES 4096

weft_task_t *weft__task_alloc(weft__sched_t *s, const weft_future_vtable_t *vt, bool with_handle, const char *name,
                              const char *site)
{
    size_t namelen = name ? strlen(name) + 1 : 0;
    weft__task_layout_t l = weft__task_layout(vt, namelen);
    weft_task_t *t = weft__alloc(l.total);
    if (t == NULL)
        return NULL;
    uint64_t refs = 2 + (with_handle ? 1 : 0); /* owned list + queue entry (+ handle) */
    uint64_t st = WEFT_T_NOTIFIED | (with_handle ? WEFT_T_JOIN_INTEREST : 0) | (name ? WEFT_T_NAMED : 0);
    atomic_init(&t->state, st | refs * WEFT_T_REF_ONE);
    t->next = NULL;
    t->sched = s;
    weft__dnode_init(&t->owned);
    t->join_waker = (weft_waker_t){ NULL, NULL };
    t->vtable = vt;
    *(const char **)(void *)((char *)t + l.site_off) = site;
    *(uint64_t *)(void *)((char *)t + l.id_off) = next_task_id();
    if (name)
        memcpy((char *)t + l.name_off, name, namelen);
    WEFT_LIVE_INC(WEFT_LIVE_TASK);
    WEFT_LIVE_INC(WEFT_LIVE_FRAME);
    if (l.total >= DEAR_TASK_BYTES)
        weft__coop_note_dear();
    return t;
}

weft_task_t *weft__task_new(weft__sched_t *s, weft_future_t *fut, bool with_handle, const char *name,
                            const char *site)
{
    weft_task_t *t = weft__task_alloc(s, fut->vtable, with_handle, name, site);
    if (t != NULL)
        memcpy(weft__task_future(t), fut, fut->vtable->size);
    return t;
}

void weft__task_ref_dec(weft_task_t *t)
{
    WEFT_CHAOS();
    /* acq_rel, for the free: see weft__state_ref_dec. */
    if (weft__state_ref_dec(&t->state, 1) == WEFT__TRANS_DEALLOC)
        task_dealloc(t);
}

static void ref_sub(weft_task_t *t, uint64_t n)
{
    if (weft__state_ref_dec(&t->state, n) == WEFT__TRANS_DEALLOC)
        task_dealloc(t);
}

/* ---- Foreign wakes ---------------------------------------------------------
 * A wake from a thread that is not a worker of the task's runtime may find
 * the task idle, and then touches the runtime (the inject queue) after its
 * CAS. Shutdown completes every task before it frees the runtime, but such
 * a wake may have passed its CAS just before. So foreign wakes are counted,
 * process-wide (the runtime may be gone, the counter never is), in one of
 * two counters chosen by an epoch bit; weft_runtime_free flips the epoch and
 * waits for the old counter to drain (weft__foreign_wakes_quiesce). Wakes
 * that start after the flip use the other counter, so a free never waits on
 * an endless stream of wakes aimed at other runtimes; and such a late wake
 * finds its task COMPLETE (shutdown completed it) and leaves the runtime
 * alone. A wake on one of the task's own workers needs no count: the
 * runtime cannot be freed while its workers run.
 * Ordering: the increment precedes the wake's CAS on the state word;
 * shutdown's claiming CAS reads that CAS (acquire), so the quiesce that
 * follows sees the increment and waits for the matching decrement
 * (release). */
static _Atomic long foreign_wakes[2];
static _Atomic unsigned foreign_epoch;
static pthread_mutex_t quiesce_lock = PTHREAD_MUTEX_INITIALIZER;

/* Returns 0 for a local wake, else 1 + the counter used. */
static inline unsigned foreign_begin(weft_task_t *t)
{
    /* `serving`, as sched.c routes: a wake that takes the remote path is
     * counted (a thread hook's too, though its runtime cannot be freed
     * under it: one count is cheaper than a second test). */
    weft__worker_t *w = weft__tls.serving;
    if (w != NULL && w->sched == t->sched)
        return 0;
    /* A local task (whose `local` never equals a worker's runtime above)
     * touches no runtime when woken, and its set outlives it (the task
     * holds a reference: localset.c). */
    if (weft__task_is_local(t))
        return 0;
    unsigned e = atomic_load_explicit(&foreign_epoch, memory_order_relaxed) & 1u;
    atomic_fetch_add_explicit(&foreign_wakes[e], 1, memory_order_seq_cst);
    return e + 1;
}

static inline void foreign_end(unsigned token)
{
    if (token != 0) /* release: our use of the runtime precedes the free */
        atomic_fetch_sub_explicit(&foreign_wakes[token - 1], 1, memory_order_release);
}

unsigned weft__foreign_hold(void)
{
    unsigned e = atomic_load_explicit(&foreign_epoch, memory_order_relaxed) & 1u;
    /* seq_cst: as in foreign_begin, before any wake of the batch. */
    atomic_fetch_add_explicit(&foreign_wakes[e], 1, memory_order_seq_cst);
    return e + 1;
}

void weft__foreign_let_go(unsigned token)
{
    foreign_end(token);
}

void weft__foreign_wakes_quiesce(void)
{
    pthread_mutex_lock(&quiesce_lock);
    unsigned old = atomic_fetch_xor_explicit(&foreign_epoch, 1u, memory_order_seq_cst) & 1u;
    /* acquire: pairs with foreign_end's release. */
    while (atomic_load_explicit(&foreign_wakes[old], memory_order_acquire) != 0)
        sched_yield();
    pthread_mutex_unlock(&quiesce_lock);
}

bool weft__foreign_wakes_busy(void)
{
    /* seq_cst: a 0 read from foreign_end's release decrement makes the
     * push before it visible to the caller's next look at the queues. */
    return atomic_load_explicit(&foreign_wakes[0], memory_order_seq_cst) != 0 ||
           atomic_load_explicit(&foreign_wakes[1], memory_order_seq_cst) != 0;
}

/* ---- Completion ---------------------------------------------------------- */

/* Whether the completing task is on the owned list. */
typedef enum {
    OWNED_UNLINK,     /* unlink it if it is on it (OWNED set) */
    OWNED_NOT_LISTED, /* it is not: never listed, or shutdown already unlinked it */
} owned_t;

/* The caller holds RUNNING. Drops the future, publishes COMPLETE (with
 * CANCELLED for WEFT__COMPLETE_CANCELLED, and then cancel_err as the reason
 * the join handle reports: 0 for WEFT_ECANCELED), hands the output to the
 * join handle or drops it, removes the task from the owned list as `owned`
 * says, and releases `refs` references. */
static void task_complete(weft_task_t *t, weft__outcome_t outcome, owned_t owned, uint64_t refs, int cancel_err)
{
    const weft_future_vtable_t *vt = t->vtable;
    weft_future_drop(weft__task_future(t));
    if (outcome == WEFT__COMPLETE_CANCELLED) /* the frame is dead: its first bytes carry the reason */
        *weft__task_cancel_err_slot(t) = cancel_err;
    WEFT_LIVE_DEC(WEFT_LIVE_FRAME);
    /* acquire: if this shows us as the sole owner, the last other holder's
     * release (its ref_dec) must happen before the free below. */
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    /* OWNED is only ever set by the holder of RUNNING: stable here. */
    if (owned == OWNED_UNLINK && (s & WEFT_T_OWNED))
        weft__owned_remove(owned_list(t), t);

    bool out_dropped = outcome == WEFT__COMPLETE_CANCELLED || vt->drop_output == NULL;
    if (refs == 2 && weft__state_is_sole_runner(s)) {
        /* Sole owner (see weft__state_is_exclusive): no handle, no waker
         * left, so no other thread can read or write the state word any
         * more. */
        if (!out_dropped)
            vt->drop_output(weft__task_output(t));
        task_dealloc(t);
        return;
    }
    /* JOIN_INTEREST never comes back once cleared, so with no handle left the
     * output can be dropped before completion is published. */
    if (!out_dropped && !(s & WEFT_T_JOIN_INTEREST)) {
        vt->drop_output(weft__task_output(t));
        out_dropped = true;
    }
    switch (weft__state_transition_to_complete(&t->state, s, outcome,
                                               out_dropped ? WEFT__OUTPUT_NONE : WEFT__OUTPUT_HELD, refs)) {
    case WEFT__TRANS_DEALLOC:
        task_dealloc(t);
        return;
    case WEFT__TRANS_DROP_OUTPUT:
        vt->drop_output(weft__task_output(t));
        break;
    case WEFT__TRANS_WAKE_JOINER:
        weft_waker_wake_by_ref(&t->join_waker);
        WEFT_CHAOS();
        if (weft__state_hand_back_join_waker(&t->state) == WEFT__TRANS_DROP_WAKER)
            weft_waker_drop(&t->join_waker); /* the handle is gone: ours to drop */
        break;
    default: /* WEFT__TRANS_OK: released in the completing CAS */
        return;
    }
    ref_sub(t, refs);
}

/* ---- Running -------------------------------------------------------------- */

void weft__task_run(weft_task_t *t)
{
    weft__trans_t r = weft__state_transition_to_running(&t->state);
    if (WEFT_UNLIKELY(r != WEFT__TRANS_OK)) {
        if (r == WEFT__TRANS_CANCELLED)
            task_complete(t, WEFT__COMPLETE_CANCELLED, OWNED_UNLINK, 2, 0);
        else /* WEFT__TRANS_FAILED: cancelled by shutdown while this entry was queued */
            weft__task_ref_dec(t);
        return;
    }

    weft_waker_t waker = { &weft__task_waker_vtable, t };
    weft_context_t cx = { &waker };
    weft__worker_t *w = weft__tls.worker;
    weft__tls.task = t;
    weft__tls.yielded = false;
    /* A task starts from no task-local binding: none of the code polling
     * it can leak one into it (task_local.c). */
    const struct weft_task_local_binding_s *outer_locals = weft__tls.locals;
    weft__tls.locals = NULL;
    if (w != NULL)
        weft__watch_begin(w, t); /* the blocking detector's view (watchdog.c) */
    weft_poll_t p = t->vtable->poll(weft__task_future(t), &cx, t->vtable->out_size ? weft__task_output(t) : NULL);
    if (w != NULL && WEFT_LIKELY(weft__tls.worker == w))
        weft__watch_end(w); /* before anything below may free the task */
    weft__tls.task = NULL;
    weft__tls.locals = outer_locals;
    if (p == WEFT_READY) {
        task_complete(t, WEFT__COMPLETE_OUTPUT, OWNED_UNLINK, 2, 0);
        return;
    }
    if (weft__tls.yielded) {
        if (WEFT_LIKELY(weft__tls.worker != NULL)) {
            weft__sched_schedule(t, true); /* keeps RUNNING: see the file comment */
            return;
        }
        /* The poll gave its worker away (weft_block_in_place): a yield
         * entry may only go to a worker's own queue, so record the wake in
         * the state word and let the path below queue an ordinary entry. */
        weft__state_notify_self(&t->state);
    }
    uint64_t add_owned = 0;
    if (!weft__state_is_owned(&t->state)) {
        /* First WEFT_PENDING: from now on the task may sit where no queue
         * holds it, so shutdown must be able to find it. A closed list means
         * shutdown began: cancel now. */
        if (!weft__owned_insert(owned_list(t), t)) {
            task_complete(t, WEFT__COMPLETE_CANCELLED, OWNED_NOT_LISTED, 2, 0);
            return;
        }
        add_owned = WEFT_T_OWNED;
    }
    r = weft__state_transition_to_idle(&t->state, add_owned);
    if (r == WEFT__TRANS_CANCELLED)
        task_complete(t, WEFT__COMPLETE_CANCELLED, OWNED_UNLINK, 2, 0);
    else if (r == WEFT__TRANS_NOTIFIED)
        weft__sched_schedule(t, true);
}

/* ---- Cancellation: shutdown, dropped entries, abort ------------------------ */

void weft__task_shutdown(weft_task_t *t)
{
    if (weft__state_transition_to_shutdown(&t->state) != WEFT__TRANS_OK) {
        weft__task_ref_dec(t);
        return;
    }
    /* The owned list's reference (already unlinked) serves as the running one. */
    task_complete(t, WEFT__COMPLETE_CANCELLED, OWNED_NOT_LISTED, 1, 0);
}

/* weft__task_drop_queued; err: the cancel error recorded if this entry is
 * the one that cancels the task. */
static void drop_queued(weft_task_t *t, weft__entry_t entry, int err)
{
    /* acquire: as in weft__state_transition_to_shutdown, for the paths that
     * complete the task from this snapshot. */
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    if (entry == WEFT__ENTRY_MAYBE_YIELD && (s & WEFT_T_RUNNING)) {
        /* A self-yielded entry: it holds RUNNING. */
        task_complete(t, WEFT__COMPLETE_CANCELLED, OWNED_UNLINK, 2, 0);
        return;
    }
    if (s & WEFT_T_OWNED) {
        weft__task_ref_dec(t); /* the owned-list walk cancels it */
        return;
    }
    /* Never polled: no list holds it, this entry must cancel it. */
    if (weft__state_transition_to_shutdown(&t->state) != WEFT__TRANS_OK) {
        weft__task_ref_dec(t);
        return;
    }
    /* 2 references: the queue entry's, and the one kept for the owned list. */
    task_complete(t, WEFT__COMPLETE_CANCELLED, OWNED_NOT_LISTED, 2, err);
}

void weft__task_drop_queued(weft_task_t *t, weft__entry_t entry)
{
    drop_queued(t, entry, 0);
}

void weft__task_drop_queued_with_error(weft_task_t *t, int err)
{
    drop_queued(t, WEFT__ENTRY_WAKE, err);
}

void weft__task_abort(weft_task_t *t)
{
    unsigned foreign = foreign_begin(t);
    if (weft__state_transition_to_notified_and_cancel(&t->state) == WEFT__TRANS_SUBMIT)
        weft__sched_schedule(t, false);
    foreign_end(foreign);
}

/* ---- Task wakers ---------------------------------------------------------- */

static weft_waker_t task_waker_clone(const void *data)
{
    weft_task_t *t = (weft_task_t *)data;
    weft__state_ref_inc(&t->state);
    return (weft_waker_t){ &weft__task_waker_vtable, t };
}

static void task_wake_by_ref(const void *data)
{
    weft_task_t *t = (weft_task_t *)data;
    if (weft__tls.task == t) {
        weft__tls.yielded = true; /* woken by its own poll: see the file comment */
        return;
    }
    unsigned foreign = foreign_begin(t);
    if (weft__state_transition_to_notified_by_ref(&t->state) == WEFT__TRANS_SUBMIT)
        weft__sched_schedule(t, false);
    foreign_end(foreign);
}

static void task_wake(const void *data)
{
    weft_task_t *t = (weft_task_t *)data;
    if (weft__tls.task == t) {
        weft__tls.yielded = true;
        weft__task_ref_dec(t); /* never the last: the poller holds one */
        return;
    }
    unsigned foreign = foreign_begin(t);
    weft__trans_t r = weft__state_transition_to_notified_by_val(&t->state);
    if (r == WEFT__TRANS_SUBMIT)
        weft__sched_schedule(t, false);
    else if (r == WEFT__TRANS_DEALLOC)
        task_dealloc(t);
    foreign_end(foreign);
}

static void task_waker_drop(const void *data)
{
    weft__task_ref_dec((weft_task_t *)data);
}

const weft_waker_vtable_t weft__task_waker_vtable = {
    task_waker_clone,
    task_wake,
    task_wake_by_ref,
    task_waker_drop,
};
