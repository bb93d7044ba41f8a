/* runtime/task.c - task allocation, the state-word transitions, task wakers
 * and join handles.
 *
 * Design (lock-free, after Tokio's task state machine):
 *   One 64-bit word (task.h) holds the flags and the reference count, so
 *   each transition is a single CAS or RMW: wake, poll, complete, abort and
 *   join-handle drop may race from any threads. Progress: lock-free (a CAS
 *   loop retries only when another thread changed the word).
 *
 * References: the owned list holds one until completion; a run-queue entry
 * (the "notified" reference) holds one, which becomes the running reference
 * while the task is polled; the join handle holds one; every waker clone
 * holds one. The task is freed when the count reaches zero.
 *
 * Rights: RUNNING is a token. Whoever sets it (the worker that dequeued the
 * task, or shutdown claiming an idle task) is the only thread that may poll
 * or drop the future. COMPLETE is set by that thread alone.
 *
 * A weft-specific shortcut: a task that wakes itself during its own poll
 * (yield) does not touch the state word at all. The wake is recorded in the
 * thread context, the worker keeps RUNNING set and requeues the task at the
 * back of its queue; that queue entry then carries the running right, and
 * weft__task_run recognises it by RUNNING being set. A yield thus costs no
 * atomic read-modify-write in the common case.
 *
 * Known weaknesses: a waker that finds the task already NOTIFIED writes
 * nothing, so wakers do not order memory by themselves: resources publish
 * their own state with release/acquire before waking (as in Tokio).
 */
#include <sched.h>
#include <string.h>

#include "scheduler.h"
#include "nonnull.h"

#define T_CAS(t, exp, des, succ, fail) \
    atomic_compare_exchange_weak_explicit(&(t)->state, (exp), (des), (succ), (fail))

/* ---- Layout ---------------------------------------------------------------- */

typedef struct {
    size_t out_off, site_off, name_off, total;
} task_layout_t;

/* The output's alignment: the largest power of two (at most 16) dividing its
 * size, which a type's alignment always does. */
static size_t out_align(size_t out_size)
{
    size_t a = 16;
    while (a > 1 && (out_size & (a - 1)) != 0)
        a >>= 1;
    return a;
}

static task_layout_t task_layout(const weft_future_vtable_t *vt, size_t namelen)
{
    task_layout_t l;
    size_t fut_end = sizeof(weft_task_t) + vt->size;
    l.out_off = WEFT_ALIGN_UP(fut_end, out_align(vt->out_size));
    l.site_off = WEFT_ALIGN_UP(l.out_off + vt->out_size, sizeof(void *));
    l.name_off = l.site_off + sizeof(const char *);
    l.total = l.name_off + namelen;
    return l;
}

static inline void *task_out(weft_task_t *t)
{
    return (char *)t + task_layout(t->vtable, 0).out_off;
}

static inline const char **task_site_slot(weft_task_t *t)
{
    return (const char **)(void *)((char *)t + task_layout(t->vtable, 0).site_off);
}

const char *weft__task_name(weft_task_t *t)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    if (!(s & WEFT_T_NAMED))
        return NULL;
    return (const char *)t + task_layout(t->vtable, 0).name_off;
}

const char *weft__task_site(weft_task_t *t)
{
    return *task_site_slot(t);
}

static void task_dealloc(weft_task_t *t)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    task_layout_t l = task_layout(t->vtable, 0);
    if (s & WEFT_T_NAMED)
        l.total += strlen((const char *)t + l.name_off) + 1;
    WEFT_LIVE_DEC(WEFT_LIVE_TASK);
    weft__free(t, l.total);
}

weft_task_t *weft__task_new(weft__sched_t *s, weft_future_t *fut, bool with_handle, const char *name,
                            const char *site)
{
    const weft_future_vtable_t *vt = fut->vtable;
    size_t namelen = name ? strlen(name) + 1 : 0;
    task_layout_t l = task_layout(vt, namelen);
    weft_task_t *t = weft__alloc(l.total);
    if (t == NULL)
        return NULL;
    uint64_t refs = 2 + (with_handle ? 1 : 0); /* owned list + queue entry (+ handle) */
    uint64_t st = WEFT_T_NOTIFIED | (with_handle ? WEFT_T_JOIN_INTEREST : 0) | (name ? WEFT_T_NAMED : 0);
    atomic_init(&t->state, st | refs * WEFT_T_REF_ONE);
    t->next = NULL;
    t->sched = s;
    t->owned_prev = t->owned_next = NULL;
    t->join_waker = (weft_waker_t){ NULL, NULL };
    t->vtable = vt;
    memcpy(t + 1, fut, vt->size);
    *(const char **)(void *)((char *)t + l.site_off) = site;
    if (name)
        memcpy((char *)t + l.name_off, name, namelen);
    WEFT_LIVE_INC(WEFT_LIVE_TASK);
    WEFT_LIVE_INC(WEFT_LIVE_FRAME);
    return t;
}

void weft__task_ref_dec(weft_task_t *t)
{
    WEFT_CHAOS();
    /* acq_rel: release orders this holder's use of the task before the free;
     * acquire makes every other holder's use visible to the freeing thread. */
    uint64_t prev = atomic_fetch_sub_explicit(&t->state, WEFT_T_REF_ONE, memory_order_acq_rel);
    if (WEFT_T_REFS(prev) == 1)
        task_dealloc(t);
}

static void ref_sub(weft_task_t *t, uint64_t n)
{
    /* acq_rel: as in weft__task_ref_dec. */
    uint64_t prev = atomic_fetch_sub_explicit(&t->state, n * WEFT_T_REF_ONE, memory_order_acq_rel);
    if (WEFT_T_REFS(prev) == n)
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
    weft__worker_t *w = weft__tls.worker;
    if (w != NULL && w->sched == t->sched)
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

void weft__foreign_wakes_quiesce(void)
{
    pthread_mutex_lock(&quiesce_lock);
    unsigned old = atomic_fetch_xor_explicit(&foreign_epoch, 1u, memory_order_seq_cst) & 1u;
    /* acquire: pairs with foreign_end's release. */
    while (atomic_load_explicit(&foreign_wakes[old], memory_order_acquire) != 0)
        sched_yield();
    pthread_mutex_unlock(&quiesce_lock);
}

/* ---- Completion ---------------------------------------------------------- */

/* The caller holds RUNNING. Drops the future, publishes COMPLETE (with
 * CANCELLED when `cancelled`), hands the output to the join handle or drops
 * it, removes the task from the owned list when it is on it (in_owned
 * false: shutdown already unlinked it), and releases `refs` references. */
static void task_complete(weft_task_t *t, bool cancelled, bool in_owned, uint64_t refs)
{
    const weft_future_vtable_t *vt = t->vtable;
    weft_future_drop(weft__task_future(t));
    WEFT_LIVE_DEC(WEFT_LIVE_FRAME);
    /* acquire: if this shows us as the sole owner, the last other holder's
     * release (its ref_dec) must happen before the free below. */
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    /* OWNED is only ever set by the holder of RUNNING: stable here. */
    if (in_owned && (s & WEFT_T_OWNED))
        weft__owned_remove(&t->sched->owned, t);

    bool out_dropped = cancelled || vt->drop_output == NULL;
    if (refs == 2 &&
        (s & ~(uint64_t)(WEFT_T_NOTIFIED | WEFT_T_NAMED | WEFT_T_OWNED)) == (WEFT_T_RUNNING | 2 * WEFT_T_REF_ONE)) {
        /* Sole owner (see exclusive() below): no handle, no waker left, so
         * no other thread can read or write the state word any more. */
        if (!out_dropped)
            vt->drop_output(task_out(t));
        task_dealloc(t);
        return;
    }
    /* JOIN_INTEREST never comes back once cleared, so with no handle left the
     * output can be dropped before completion is published. */
    if (!out_dropped && !(s & WEFT_T_JOIN_INTEREST)) {
        vt->drop_output(task_out(t));
        out_dropped = true;
    }
    WEFT_CHAOS();
    uint64_t next;
    bool fused;
    do {
        /* Fold the reference release into the same CAS unless work remains
         * after it (a join waker to wake, or an output to drop). */
        fused = !(s & WEFT_T_JOIN_WAKER) && ((s & WEFT_T_JOIN_INTEREST) || out_dropped);
        next = (s & ~(uint64_t)(WEFT_T_RUNNING | WEFT_T_CANCELLED)) | WEFT_T_COMPLETE |
               (cancelled ? WEFT_T_CANCELLED : 0);
        if (fused)
            next -= refs * WEFT_T_REF_ONE;
        /* release: publishes the output (and the dropped future) to the join
         * handle, which loads the state with acquire in join_poll/join_drop.
         * acquire: makes the join waker written before the handle's release
         * CAS in set_join_waker visible before we read it below. */
    } while (!T_CAS(t, &s, next, memory_order_acq_rel, memory_order_relaxed));

    if (fused) {
        if (WEFT_T_REFS(next) == 0)
            task_dealloc(t);
        return;
    }
    if (!(s & WEFT_T_JOIN_INTEREST) && !out_dropped)
        vt->drop_output(task_out(t));
    if (s & WEFT_T_JOIN_WAKER) {
        weft_waker_wake_by_ref(&t->join_waker);
        WEFT_CHAOS();
        /* acq_rel: release hands the waker slot back to the handle (its
         * acquire load in join_drop); acquire sees a concurrent handle drop. */
        uint64_t p = atomic_fetch_and_explicit(&t->state, ~(uint64_t)WEFT_T_JOIN_WAKER, memory_order_acq_rel);
        if (!(p & WEFT_T_JOIN_INTEREST))
            weft_waker_drop(&t->join_waker); /* the handle is gone: ours to drop */
    }
    ref_sub(t, refs);
}

/* ---- Running -------------------------------------------------------------- */

/* True when the state shows exactly two references (the owned list's and
 * the caller's) and no join handle: then no waker exists (wakers are only
 * made by polling, which is ours to do, or cloned from a counted one) and
 * no handle can abort, so no other thread can touch the state word until
 * we make a waker. The owned list's holder, shutdown, runs only after the
 * workers stopped. A detached task that never waits (a spawn_many or
 * chained_spawn task) thus runs and completes without an atomic RMW on its
 * state word. */
static inline bool exclusive(uint64_t s)
{
    return (s & ~(uint64_t)(WEFT_T_NAMED | WEFT_T_OWNED)) == (WEFT_T_NOTIFIED | 2 * WEFT_T_REF_ONE);
}

void weft__task_run(weft_task_t *t)
{
    /* acquire: pairs with the release of the previous poller's idle CAS and
     * of the waker that set NOTIFIED, so this poll sees their writes. */
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    if (exclusive(s)) {
        s = (s & ~(uint64_t)WEFT_T_NOTIFIED) | WEFT_T_RUNNING;
        atomic_store_explicit(&t->state, s, memory_order_relaxed);
    } else if (s & WEFT_T_RUNNING) {
        /* A self-yielded task: this queue entry carries the running right.
         * A wake that arrived meanwhile is covered by the poll we are about
         * to do, so clear it (else the task would run twice for it). */
        if (s & WEFT_T_NOTIFIED)
            s = atomic_fetch_and_explicit(&t->state, ~(uint64_t)WEFT_T_NOTIFIED, memory_order_acq_rel);
    } else {
        for (;;) {
            if (s & WEFT_T_COMPLETE) {
                /* Cancelled by shutdown while this entry was queued. */
                weft__task_ref_dec(t);
                return;
            }
            uint64_t next = (s & ~(uint64_t)WEFT_T_NOTIFIED) | WEFT_T_RUNNING;
            WEFT_CHAOS();
            /* acquire: as above, for the value the CAS reads. */
            if (T_CAS(t, &s, next, memory_order_acquire, memory_order_acquire))
                break;
        }
    }
    if (s & WEFT_T_CANCELLED) {
        task_complete(t, true, true, 2);
        return;
    }

    weft_waker_t waker = { &weft__task_waker_vtable, t };
    weft_context_t cx = { &waker };
    weft__worker_t *w = weft__tls.worker;
    weft__tls.task = t;
    weft__tls.yielded = false;
    if (w != NULL)
        weft__watch_begin(w, t); /* the blocking detector's view (watchdog.c) */
    weft_poll_t r = t->vtable->poll(weft__task_future(t), &cx, t->vtable->out_size ? task_out(t) : NULL);
    if (w != NULL && WEFT_LIKELY(weft__tls.worker == w))
        weft__watch_end(w); /* before anything below may free the task */
    weft__tls.task = NULL;
    if (r == WEFT_READY) {
        task_complete(t, false, true, 2);
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
        atomic_fetch_or_explicit(&t->state, WEFT_T_NOTIFIED, memory_order_relaxed);
    }
    s = atomic_load_explicit(&t->state, memory_order_relaxed);
    uint64_t owned = 0;
    if (!(s & WEFT_T_OWNED)) {
        /* First WEFT_PENDING: from now on the task may sit where no queue
         * holds it, so shutdown must be able to find it. A closed list means
         * shutdown began: cancel now. */
        if (!weft__owned_insert(&t->sched->owned, t)) {
            task_complete(t, true, false, 2);
            return;
        }
        owned = WEFT_T_OWNED;
    }
    for (;;) {
        if (s & WEFT_T_CANCELLED) {
            if (owned)
                atomic_fetch_or_explicit(&t->state, owned, memory_order_relaxed);
            task_complete(t, true, true, 2);
            return;
        }
        uint64_t next = (s & ~(uint64_t)WEFT_T_RUNNING) | owned;
        /* Not woken: drop the running reference (the owned list's keeps the
         * task alive). Woken while running: it becomes the queue entry's. */
        if (!(s & WEFT_T_NOTIFIED))
            next -= WEFT_T_REF_ONE;
        WEFT_CHAOS();
        /* release: publishes this poll's writes to the frame to the next
         * poller (acquire in weft__task_run); acquire: sees the waker's. */
        if (T_CAS(t, &s, next, memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    if (s & WEFT_T_NOTIFIED)
        weft__sched_schedule(t, true);
}

void weft__task_shutdown(weft_task_t *t)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    for (;;) {
        if (s & (WEFT_T_RUNNING | WEFT_T_COMPLETE)) {
            weft__task_ref_dec(t);
            return;
        }
        uint64_t next = s | WEFT_T_RUNNING | WEFT_T_CANCELLED;
        /* acquire: the last poller's frame writes, before we drop the frame. */
        if (T_CAS(t, &s, next, memory_order_acq_rel, memory_order_acquire))
            break;
    }
    /* The owned list's reference (already unlinked) serves as the running one. */
    task_complete(t, true, false, 1);
}

void weft__task_drop_queued(weft_task_t *t, bool may_be_yield)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    if (may_be_yield && (s & WEFT_T_RUNNING)) {
        task_complete(t, true, true, 2); /* a self-yielded entry: it holds RUNNING */
        return;
    }
    if (s & WEFT_T_OWNED) {
        weft__task_ref_dec(t); /* the owned-list walk cancels it */
        return;
    }
    /* Never polled: no list holds it, this entry must cancel it. An abort
     * (sets CANCELLED only: NOTIFIED is set) or a join-handle drop may race
     * us; the CAS loop absorbs both. */
    for (;;) {
        if (s & (WEFT_T_RUNNING | WEFT_T_COMPLETE)) {
            weft__task_ref_dec(t);
            return;
        }
        if (T_CAS(t, &s, s | WEFT_T_RUNNING | WEFT_T_CANCELLED, memory_order_acq_rel, memory_order_acquire))
            break;
    }
    /* 2 references: the queue entry's, and the one kept for the owned list. */
    task_complete(t, true, false, 2);
}

void weft__task_abort(weft_task_t *t)
{
    unsigned foreign = foreign_begin(t);
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    uint64_t next;
    for (;;) {
        if (s & (WEFT_T_COMPLETE | WEFT_T_CANCELLED)) {
            foreign_end(foreign);
            return;
        }
        if (s & WEFT_T_RUNNING)
            next = s | WEFT_T_NOTIFIED | WEFT_T_CANCELLED; /* the poller sees it */
        else if (s & WEFT_T_NOTIFIED)
            next = s | WEFT_T_CANCELLED; /* the queued entry sees it */
        else
            next = (s | WEFT_T_NOTIFIED | WEFT_T_CANCELLED) + WEFT_T_REF_ONE;
        WEFT_CHAOS();
        /* acq_rel: pairs with weft__task_run's acquire, like a wake. */
        if (T_CAS(t, &s, next, memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    if (!(s & (WEFT_T_RUNNING | WEFT_T_NOTIFIED)))
        weft__sched_schedule(t, false);
    foreign_end(foreign);
}

/* ---- Task wakers ---------------------------------------------------------- */

static weft_waker_t task_waker_clone(const void *data)
{
    weft_task_t *t = (weft_task_t *)data;
    /* relaxed: a new reference is derived from an existing one, which keeps
     * the task alive meanwhile; no data is published. */
    uint64_t prev = atomic_fetch_add_explicit(&t->state, WEFT_T_REF_ONE, memory_order_relaxed);
    if (WEFT_UNLIKELY(WEFT_T_REFS(prev) >= (UINT64_MAX >> WEFT_T_REF_SHIFT) / 2))
        weft_panic(WEFT_SITE, "task reference count overflow (leaked wakers?)");
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
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    uint64_t next;
    for (;;) {
        if (s & WEFT_T_RUNNING)
            next = s | WEFT_T_NOTIFIED;
        else if (s & (WEFT_T_COMPLETE | WEFT_T_NOTIFIED)) {
            foreign_end(foreign);
            return;
        } else
            next = (s | WEFT_T_NOTIFIED) + WEFT_T_REF_ONE;
        WEFT_CHAOS();
        /* release: the waker's writes before the wake reach the next poll
         * (acquire in weft__task_run, also through the idle CAS). */
        if (T_CAS(t, &s, next, memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    if (!(s & WEFT_T_RUNNING))
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
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    uint64_t next;
    bool submit;
    for (;;) {
        submit = false;
        if (s & WEFT_T_RUNNING)
            next = (s | WEFT_T_NOTIFIED) - WEFT_T_REF_ONE;
        else if (s & (WEFT_T_COMPLETE | WEFT_T_NOTIFIED))
            next = s - WEFT_T_REF_ONE;
        else {
            next = s | WEFT_T_NOTIFIED; /* our reference becomes the queue's */
            submit = true;
        }
        WEFT_CHAOS();
        /* acq_rel: release as in task_wake_by_ref; acquire for a free. */
        if (T_CAS(t, &s, next, memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    if (submit)
        weft__sched_schedule(t, false);
    else if (WEFT_T_REFS(next) == 0)
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

/* ---- Join handles --------------------------------------------------------- */

/* Gives up the join interest. `taken`: the output was already moved out. */
static void join_release(weft_task_t *t, bool taken)
{
    WEFT_CHAOS();
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    uint64_t next;
    do {
        if (s & WEFT_T_COMPLETE)
            next = s & ~(uint64_t)WEFT_T_JOIN_INTEREST;
        else /* take the waker slot back too: the task will not wake it */
            next = s & ~(uint64_t)(WEFT_T_JOIN_INTEREST | WEFT_T_JOIN_WAKER);
        /* acq_rel: acquire pairs with task_complete's release (the output we
         * may drop); release hands the output to the completer otherwise. */
    } while (!T_CAS(t, &s, next, memory_order_acq_rel, memory_order_acquire));
    if ((s & WEFT_T_COMPLETE) && !taken && !(s & WEFT_T_CANCELLED) && t->vtable->drop_output)
        t->vtable->drop_output(task_out(t));
    if (!(next & WEFT_T_JOIN_WAKER))
        weft_waker_drop(&t->join_waker); /* the slot is ours (empty is fine) */
    WEFT_LIVE_DEC(WEFT_LIVE_JOIN_HANDLE);
    weft__task_ref_dec(t);
}

/* Publishes the waker in the slot: sets JOIN_WAKER unless complete. Returns
 * the state seen (COMPLETE set = not published; the slot stays ours). */
static uint64_t set_join_waker(weft_task_t *t)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    for (;;) {
        if (s & WEFT_T_COMPLETE)
            return s;
        WEFT_CHAOS();
        /* release: the waker written to the slot reaches the completer
         * (acquire in task_complete's CAS). acquire: the output, if the task
         * completed meanwhile. */
        if (T_CAS(t, &s, s | WEFT_T_JOIN_WAKER, memory_order_acq_rel, memory_order_acquire))
            return s;
    }
}

/* Takes JOIN_WAKER back so the slot can be rewritten; COMPLETE in the result
 * means the task completed first (and still owns the slot). */
static uint64_t unset_join_waker(weft_task_t *t)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    for (;;) {
        if (s & WEFT_T_COMPLETE)
            return s;
        /* acquire: the completer's output, if it wins the race. */
        if (T_CAS(t, &s, s & ~(uint64_t)WEFT_T_JOIN_WAKER, memory_order_acq_rel, memory_order_acquire))
            return s;
    }
}

static weft_poll_t join_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_join_handle_t *jh = (weft_join_handle_t *)(void *)f;
    weft_task_t *t = jh->task;
    if (t == NULL)
        weft_panic(WEFT_SITE, "join handle polled after it completed (or it is empty)");
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    /* acquire: pairs with task_complete's release: the output is visible. */
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    if (!(s & WEFT_T_COMPLETE)) {
        if (s & WEFT_T_JOIN_WAKER) {
            /* Reading the slot is allowed: the task side only reads it too. */
            if (weft_waker_will_wake(&t->join_waker, cx->waker))
                goto pending;
            s = unset_join_waker(t);
            if (s & WEFT_T_COMPLETE)
                goto complete;
        }
        /* The slot is ours. */
        if (t->join_waker.vtable == NULL || !weft_waker_will_wake(&t->join_waker, cx->waker)) {
            weft_waker_drop(&t->join_waker);
            t->join_waker = weft_waker_clone(cx->waker);
        }
        s = set_join_waker(t);
        if (!(s & WEFT_T_COMPLETE))
            goto pending;
    }
complete:;
    int rc = 0;
    if (s & WEFT_T_CANCELLED) {
        int err = weft__blocking_cancel_error(t);
        rc = err != 0 ? err : WEFT_ECANCELED;
    } else {
        const weft_future_vtable_t *vt = t->vtable;
        if (jh->dst != NULL)
            memcpy(jh->dst, task_out(t), vt->out_size);
        else if (vt->drop_output)
            vt->drop_output(task_out(t));
    }
    jh->task = NULL;
    join_release(t, true);
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
pending:
    weft__coop_refund();
    return WEFT_PENDING;
}

static void join_drop(weft_future_t *f)
{
    weft_join_handle_t *jh = (weft_join_handle_t *)(void *)f;
    weft_task_t *t = jh->task;
    if (t == NULL)
        return;
    jh->task = NULL;
    join_release(t, false);
}

const weft_future_vtable_t weft__join_handle_vtable = {
    join_poll, join_drop, NULL, sizeof(weft_join_handle_t), sizeof(int), "weft_join_handle",
};

weft_future_t *weft_join(weft_join_handle_t *jh, void *dst)
{
    WEFT__REQUIRE("weft_join", jh);
    jh->dst = dst;
    return &jh->future;
}

void weft_join_handle_abort(const weft_join_handle_t *jh)
{
    WEFT__REQUIRE("weft_join_handle_abort", jh);
    if (jh->task != NULL)
        weft__task_abort(jh->task);
}

bool weft_join_handle_is_finished(const weft_join_handle_t *jh)
{
    WEFT__REQUIRE("weft_join_handle_is_finished", jh);
    if (jh->task == NULL)
        return true;
    /* acquire: a caller that sees true may then await and read the output. */
    return (atomic_load_explicit(&jh->task->state, memory_order_acquire) & WEFT_T_COMPLETE) != 0;
}

void weft_join_handle_drop(weft_join_handle_t *jh)
{
    WEFT__REQUIRE("weft_join_handle_drop", jh);
    join_drop(&jh->future);
}
