/* runtime/state.h - the task's state word and its named transitions.
 *
 * The state word packs nine flags and a reference count:
 *
 *   bit 0 RUNNING        a thread holds the right to poll or cancel the task
 *   bit 1 COMPLETE       the future is gone; the output (or CANCELLED) is final
 *   bit 2 NOTIFIED       woken: a run-queue entry exists or the poller re-queues
 *   bit 3 CANCELLED      abort requested (or, with COMPLETE, the task was cancelled)
 *   bit 4 JOIN_INTEREST  a join handle exists
 *   bit 5 JOIN_WAKER     the join waker slot is owned by the task side
 *   bit 6 NAMED          a name follows the output (never changes)
 *   bit 7 OWNED          on the owned list (set at the first WEFT_PENDING)
 *   bit 8 LOCAL          a local set's task (localset.c; never changes)
 *   bits 9.. references  owned list + queue entry + join handle + wakers
 *
 * Design (lock-free, after Tokio's runtime/task/state.rs): every change to
 * the word is one of the transitions below, each a single RMW or a load
 * followed by a CAS loop that recomputes the next value from the value it
 * read (a fetch_update), so wake, poll, complete, abort and handle drop may
 * race from any threads without a lock. Progress: lock-free (a CAS loop
 * retries only when another thread changed the word). Each transition
 * returns a weft__trans_t that says what its caller must do next (schedule
 * the task, complete it, free it...); the caller's side of that work is in
 * task.c (running, completion, wakers, abort, shutdown) and join.c.
 *
 * References: the owned list holds one until completion; a run-queue entry
 * (the "notified" reference) holds one, which becomes the running reference
 * while the task is polled; the join handle holds one; every waker clone
 * holds one. The task is freed when the count reaches zero.
 *
 * Rights: RUNNING is a token. Whoever sets it (the worker that dequeued the
 * task, or shutdown claiming an idle task) is the only thread that may poll
 * or drop the future. COMPLETE is set by that thread alone. The join waker
 * slot belongs to the task side while JOIN_WAKER is set, to the handle
 * while it is clear.
 *
 * Every function here is static inline: the transitions sit on the spawn,
 * poll, wake and complete paths, and a call per transition would cost more
 * than the CAS. weft__state_transition_to_running is zero-RMW for an
 * exclusive task and for a self-yield entry that no wake reached.
 *
 * Context: any thread, holding what each function's comment requires (a
 * reference, a queue entry, RUNNING, or the join handle). These functions
 * touch nothing but the word: no queue, list or waker.
 *
 * Known weaknesses: a waker that finds the task already NOTIFIED writes
 * nothing, so wakers do not order memory by themselves: resources publish
 * their own state with release/acquire before waking (as in Tokio).
 */
#ifndef WEFT_STATE_H
#define WEFT_STATE_H

#include "internal.h"

#define WEFT_T_RUNNING (1u << 0)
#define WEFT_T_COMPLETE (1u << 1)
#define WEFT_T_NOTIFIED (1u << 2)
#define WEFT_T_CANCELLED (1u << 3)
#define WEFT_T_JOIN_INTEREST (1u << 4)
#define WEFT_T_JOIN_WAKER (1u << 5)
#define WEFT_T_NAMED (1u << 6)
#define WEFT_T_OWNED (1u << 7)
/* A local set's task: its `local` pointer is its set, not a runtime
 * (task.h). Set before the task is shared, never changed. */
#define WEFT_T_LOCAL (1u << 8)
#define WEFT_T_REF_SHIFT 9
#define WEFT_T_REF_ONE ((uint64_t)1 << WEFT_T_REF_SHIFT)
#define WEFT_T_REFS(s) ((s) >> WEFT_T_REF_SHIFT)

/* What a transition's caller must do next. Each function below says which
 * of these it returns. */
typedef enum {
    /* Done: nothing more to do (for a claim: the caller now holds RUNNING). */
    WEFT__TRANS_OK,
    /* The caller holds a new notified reference: schedule the task. */
    WEFT__TRANS_SUBMIT,
    /* Woken while it ran: the running reference became a notified one, so
     * the caller schedules the task again. */
    WEFT__TRANS_NOTIFIED,
    /* The caller holds RUNNING on an aborted task: complete it as cancelled.
     * (From the join side: the task completed, cancelled.) */
    WEFT__TRANS_CANCELLED,
    /* No right was gained: another thread runs the task, or it is complete.
     * The caller drops the reference it came with. */
    WEFT__TRANS_FAILED,
    /* The caller released the last reference: free the task. */
    WEFT__TRANS_DEALLOC,
    /* Join side: the task is complete (with an output, or see the function). */
    WEFT__TRANS_COMPLETE,
    /* Completion: a join waker is registered: wake it, then hand the slot
     * back (weft__state_hand_back_join_waker), then release references. */
    WEFT__TRANS_WAKE_JOINER,
    /* Completion: the join handle went away meanwhile: drop the output, then
     * release references. */
    WEFT__TRANS_DROP_OUTPUT,
    /* The join handle is gone: the caller drops the join waker itself. */
    WEFT__TRANS_DROP_WAKER,
} weft__trans_t;

/* How a task completes. */
typedef enum {
    WEFT__COMPLETE_OUTPUT,    /* its poll returned WEFT_READY: the output is final */
    WEFT__COMPLETE_CANCELLED, /* aborted or shut down: no output */
} weft__outcome_t;

/* Whether the completing task still holds an output that someone must drop. */
typedef enum {
    WEFT__OUTPUT_NONE, /* cancelled, no destructor, or already dropped */
    WEFT__OUTPUT_HELD, /* the join handle takes it, or the completer drops it */
} weft__output_t;

#define WEFT__STATE_CAS(st, exp, des, succ, fail) atomic_compare_exchange_weak_explicit((st), (exp), (des), (succ), (fail))

/* ---- Snapshots --------------------------------------------------------------- */

/* The flags that never matter to the two snapshots below: NAMED and LOCAL
 * never change, OWNED is the caller's own. */
#define WEFT__T_INERT ((uint64_t)(WEFT_T_NAMED | WEFT_T_OWNED | WEFT_T_LOCAL))

/* True when the state shows exactly two references (the owned list's and
 * the caller's) and no join handle: then no waker exists (wakers are only
 * made by polling, which is ours to do, or cloned from a counted one) and
 * no handle can abort, so no other thread can touch the state word until
 * we make a waker. The owned list's holder, shutdown (or a local set's
 * free), runs only after the pollers stopped. A detached task that never
 * waits (a spawn_many or chained_spawn task) thus runs and completes
 * without an atomic RMW on its state word. */
static inline bool weft__state_is_exclusive(uint64_t s)
{
    return (s & ~WEFT__T_INERT) == (WEFT_T_NOTIFIED | 2 * WEFT_T_REF_ONE);
}

/* As weft__state_is_exclusive, for a caller that holds RUNNING: the caller
 * and the owned list hold the only references and there is no handle, so
 * nobody else can read or write the word any more. */
static inline bool weft__state_is_sole_runner(uint64_t s)
{
    return (s & ~(WEFT__T_INERT | WEFT_T_NOTIFIED)) == (WEFT_T_RUNNING | 2 * WEFT_T_REF_ONE);
}

/* Whether the task is on the owned list. Only the holder of RUNNING sets
 * OWNED, so for that holder the answer is stable. relaxed: the caller set
 * the bit itself, in an earlier poll, or it is not set. */
static inline bool weft__state_is_owned(_Atomic uint64_t *st)
{
    return (atomic_load_explicit(st, memory_order_relaxed) & WEFT_T_OWNED) != 0;
}

/* ---- References -------------------------------------------------------------- */

/* Adds a reference (a waker clone). The caller holds one already. */
static inline void weft__state_ref_inc(_Atomic uint64_t *st)
{
    /* relaxed: a new reference is derived from an existing one, which keeps
     * the task alive meanwhile; no data is published. */
    uint64_t prev = atomic_fetch_add_explicit(st, WEFT_T_REF_ONE, memory_order_relaxed);
    if (WEFT_UNLIKELY(WEFT_T_REFS(prev) >= (UINT64_MAX >> WEFT_T_REF_SHIFT) / 2))
        weft_panic(WEFT_SITE, "task reference count overflow (leaked wakers?)");
}

/* Releases n references. Returns DEALLOC when they were the last, else OK. */
static inline weft__trans_t weft__state_ref_dec(_Atomic uint64_t *st, uint64_t n)
{
    /* acq_rel: release orders this holder's use of the task before the free;
     * acquire makes every other holder's use visible to the freeing thread. */
    uint64_t prev = atomic_fetch_sub_explicit(st, n * WEFT_T_REF_ONE, memory_order_acq_rel);
    return WEFT_T_REFS(prev) == n ? WEFT__TRANS_DEALLOC : WEFT__TRANS_OK;
}

/* ---- Running ----------------------------------------------------------------- */

/* The caller holds a run-queue entry and is about to poll. Takes RUNNING
 * (clearing NOTIFIED), or finds that the entry already carries it: a
 * self-yield entry (see task.c) keeps RUNNING set, and a wake that arrived
 * meanwhile is covered by the poll about to happen, so it is cleared (else
 * the task would run twice for it).
 * Returns OK (poll it), CANCELLED (aborted: complete it as cancelled) or
 * FAILED (cancelled by shutdown while this entry was queued: drop the
 * entry's reference). No RMW for an exclusive task or a plain yield entry. */
static inline weft__trans_t weft__state_transition_to_running(_Atomic uint64_t *st)
{
    /* acquire: pairs with the release of the previous poller's idle CAS and
     * of the waker that set NOTIFIED, so this poll sees their writes. */
    uint64_t s = atomic_load_explicit(st, memory_order_acquire);
    if (weft__state_is_exclusive(s)) {
        s = (s & ~(uint64_t)WEFT_T_NOTIFIED) | WEFT_T_RUNNING;
        /* relaxed: no other thread reads or writes the word (see
         * weft__state_is_exclusive). */
        atomic_store_explicit(st, s, memory_order_relaxed);
    } else if (s & WEFT_T_RUNNING) {
        /* acq_rel: acquire, as for the load above, sees the writes of the
         * waker whose NOTIFIED we clear (its CAS in
         * weft__state_transition_to_notified_*). */
        if (s & WEFT_T_NOTIFIED)
            s = atomic_fetch_and_explicit(st, ~(uint64_t)WEFT_T_NOTIFIED, memory_order_acq_rel);
    } else {
        for (;;) {
            if (s & WEFT_T_COMPLETE)
                return WEFT__TRANS_FAILED;
            uint64_t next = (s & ~(uint64_t)WEFT_T_NOTIFIED) | WEFT_T_RUNNING;
            WEFT_CHAOS();
            /* acquire: as above, for the value the CAS reads. */
            if (WEFT__STATE_CAS(st, &s, next, memory_order_acquire, memory_order_acquire))
                break;
        }
    }
    return (s & WEFT_T_CANCELLED) ? WEFT__TRANS_CANCELLED : WEFT__TRANS_OK;
}

/* The caller holds RUNNING and its task woke itself in a poll that gave its
 * worker away (weft_block_in_place), so no yield entry can be queued:
 * records the wake in the word, and weft__state_transition_to_idle then
 * reports NOTIFIED. */
static inline void weft__state_notify_self(_Atomic uint64_t *st)
{
    /* relaxed: only this thread, the holder of RUNNING, acts on NOTIFIED
     * while RUNNING is set, and the idle CAS that reads it is its own. */
    atomic_fetch_or_explicit(st, WEFT_T_NOTIFIED, memory_order_relaxed);
}

/* The caller holds RUNNING and its poll returned WEFT_PENDING. add_owned:
 * WEFT_T_OWNED when this poll put the task on the owned list (published in
 * the same CAS), else 0.
 * Returns OK (idle; the running reference is dropped, the owned list's keeps
 * the task alive), NOTIFIED (woken while running: the running reference
 * became the queue entry's, schedule it) or CANCELLED (aborted while
 * running: still RUNNING, with add_owned set, complete it as cancelled). */
static inline weft__trans_t weft__state_transition_to_idle(_Atomic uint64_t *st, uint64_t add_owned)
{
    uint64_t s = atomic_load_explicit(st, memory_order_relaxed);
    for (;;) {
        if (s & WEFT_T_CANCELLED) {
            /* relaxed: OWNED is read only by the holder of RUNNING, which
             * we remain until the completion. */
            if (add_owned)
                atomic_fetch_or_explicit(st, add_owned, memory_order_relaxed);
            return WEFT__TRANS_CANCELLED;
        }
        uint64_t next = (s & ~(uint64_t)WEFT_T_RUNNING) | add_owned;
        /* Not woken: drop the running reference (the owned list's keeps the
         * task alive). Woken while running: it becomes the queue entry's. */
        if (!(s & WEFT_T_NOTIFIED))
            next -= WEFT_T_REF_ONE;
        WEFT_CHAOS();
        /* release: publishes this poll's writes to the frame to the next
         * poller (acquire in weft__state_transition_to_running); acquire:
         * sees the waker's. */
        if (WEFT__STATE_CAS(st, &s, next, memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    return (s & WEFT_T_NOTIFIED) ? WEFT__TRANS_NOTIFIED : WEFT__TRANS_OK;
}

/* ---- Wakes and abort --------------------------------------------------------- */

/* A wake through a waker the caller keeps (wake_by_ref). Returns SUBMIT
 * when the task was idle (a reference was added for the queue entry) or OK
 * (running: the poller re-queues it; complete or already notified: nothing
 * to do). */
static inline weft__trans_t weft__state_transition_to_notified_by_ref(_Atomic uint64_t *st)
{
    uint64_t s = atomic_load_explicit(st, memory_order_relaxed);
    uint64_t next;
    for (;;) {
        if (s & WEFT_T_RUNNING)
            next = s | WEFT_T_NOTIFIED;
        else if (s & (WEFT_T_COMPLETE | WEFT_T_NOTIFIED))
            return WEFT__TRANS_OK;
        else
            next = (s | WEFT_T_NOTIFIED) + WEFT_T_REF_ONE;
        WEFT_CHAOS();
        /* release: the waker's writes before the wake reach the next poll
         * (acquire in weft__state_transition_to_running, also through the
         * idle CAS). */
        if (WEFT__STATE_CAS(st, &s, next, memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    return (s & WEFT_T_RUNNING) ? WEFT__TRANS_OK : WEFT__TRANS_SUBMIT;
}

/* A wake that consumes the waker's reference. Returns SUBMIT when the task
 * was idle (the reference became the queue entry's), DEALLOC when it was
 * complete and the reference was the last, else OK (reference released). */
static inline weft__trans_t weft__state_transition_to_notified_by_val(_Atomic uint64_t *st)
{
    uint64_t s = atomic_load_explicit(st, memory_order_relaxed);
    uint64_t next;
    weft__trans_t r;
    for (;;) {
        r = WEFT__TRANS_OK;
        if (s & WEFT_T_RUNNING)
            next = (s | WEFT_T_NOTIFIED) - WEFT_T_REF_ONE;
        else if (s & (WEFT_T_COMPLETE | WEFT_T_NOTIFIED))
            next = s - WEFT_T_REF_ONE;
        else {
            next = s | WEFT_T_NOTIFIED; /* our reference becomes the queue's */
            r = WEFT__TRANS_SUBMIT;
        }
        WEFT_CHAOS();
        /* acq_rel: release as in weft__state_transition_to_notified_by_ref;
         * acquire for a free. */
        if (WEFT__STATE_CAS(st, &s, next, memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    if (r == WEFT__TRANS_OK && WEFT_T_REFS(next) == 0)
        return WEFT__TRANS_DEALLOC;
    return r;
}

/* Requests cancellation (an abort): sets CANCELLED and wakes the task so
 * that its next poller sees it. The caller holds a reference. Returns
 * SUBMIT when the task was idle (a reference was added for the queue
 * entry), else OK (running or queued: that poller or entry sees it;
 * complete or already cancelled: nothing to do). */
static inline weft__trans_t weft__state_transition_to_notified_and_cancel(_Atomic uint64_t *st)
{
    uint64_t s = atomic_load_explicit(st, memory_order_relaxed);
    uint64_t next;
    for (;;) {
        if (s & (WEFT_T_COMPLETE | WEFT_T_CANCELLED))
            return WEFT__TRANS_OK;
        if (s & WEFT_T_RUNNING)
            next = s | WEFT_T_NOTIFIED | WEFT_T_CANCELLED; /* the poller sees it */
        else if (s & WEFT_T_NOTIFIED)
            next = s | WEFT_T_CANCELLED; /* the queued entry sees it */
        else
            next = (s | WEFT_T_NOTIFIED | WEFT_T_CANCELLED) + WEFT_T_REF_ONE;
        WEFT_CHAOS();
        /* acq_rel: pairs with weft__state_transition_to_running's acquire,
         * like a wake. */
        if (WEFT__STATE_CAS(st, &s, next, memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    return (s & (WEFT_T_RUNNING | WEFT_T_NOTIFIED)) ? WEFT__TRANS_OK : WEFT__TRANS_SUBMIT;
}

/* ---- Shutdown ---------------------------------------------------------------- */

/* Claims a task that nobody runs, to cancel it: sets RUNNING and CANCELLED.
 * The caller holds a reference (the owned list's, or a queue entry's).
 * Returns OK (the caller holds RUNNING and completes the task as
 * cancelled) or FAILED (another thread runs it, or it is complete: drop
 * the caller's reference). An abort (sets CANCELLED only, while NOTIFIED is
 * set) or a join-handle drop may race the claim; the CAS loop absorbs both. */
static inline weft__trans_t weft__state_transition_to_shutdown(_Atomic uint64_t *st)
{
    uint64_t s = atomic_load_explicit(st, memory_order_acquire);
    for (;;) {
        if (s & (WEFT_T_RUNNING | WEFT_T_COMPLETE))
            return WEFT__TRANS_FAILED;
        uint64_t next = s | WEFT_T_RUNNING | WEFT_T_CANCELLED;
        /* acquire: the last poller's frame writes, before we drop the frame. */
        if (WEFT__STATE_CAS(st, &s, next, memory_order_acq_rel, memory_order_acquire))
            return WEFT__TRANS_OK;
    }
}

/* ---- Completion -------------------------------------------------------------- */

/* The caller holds RUNNING and has dropped the future. Publishes COMPLETE
 * (with CANCELLED for WEFT__COMPLETE_CANCELLED) and clears RUNNING. s: the
 * caller's latest snapshot, where the loop starts. output: whether an
 * output with a destructor is still held (the caller dropped it already if
 * it saw no join handle). refs: the references the caller releases.
 * The release is folded into the same CAS unless work remains after it.
 * Returns OK (released, the task lives on), DEALLOC (released, the last:
 * free it), WAKE_JOINER (references kept: wake the join waker, then
 * weft__state_hand_back_join_waker, then release them) or DROP_OUTPUT
 * (references kept: the join handle went away meanwhile, so drop the
 * output, then release them). JOIN_WAKER is only set while JOIN_INTEREST
 * is (join.c clears both at once unless the task is complete), so the last
 * two never both apply. */
static inline weft__trans_t weft__state_transition_to_complete(_Atomic uint64_t *st, uint64_t s,
                                                               weft__outcome_t outcome, weft__output_t output,
                                                               uint64_t refs)
{
    WEFT_CHAOS();
    uint64_t next;
    bool fused;
    do {
        /* Fold the reference release into the same CAS unless work remains
         * after it (a join waker to wake, or an output to drop). */
        fused = !(s & WEFT_T_JOIN_WAKER) && ((s & WEFT_T_JOIN_INTEREST) || output == WEFT__OUTPUT_NONE);
        next = (s & ~(uint64_t)(WEFT_T_RUNNING | WEFT_T_CANCELLED)) | WEFT_T_COMPLETE |
               (outcome == WEFT__COMPLETE_CANCELLED ? WEFT_T_CANCELLED : 0);
        if (fused)
            next -= refs * WEFT_T_REF_ONE;
        /* release: publishes the output (and the dropped future, and the
         * cancel error) to the join handle, which loads the state with
         * acquire in join.c (join_poll, join_take) and in
         * weft__state_unset_join_interest. acquire: makes the join waker
         * written before the handle's release CAS in
         * weft__state_set_join_waker visible before the caller reads it. */
    } while (!WEFT__STATE_CAS(st, &s, next, memory_order_acq_rel, memory_order_relaxed));
    if (fused)
        return WEFT_T_REFS(next) == 0 ? WEFT__TRANS_DEALLOC : WEFT__TRANS_OK;
    return (s & WEFT_T_JOIN_WAKER) ? WEFT__TRANS_WAKE_JOINER : WEFT__TRANS_DROP_OUTPUT;
}

/* After waking the join waker (WEFT__TRANS_WAKE_JOINER): clears JOIN_WAKER,
 * handing the slot back to the handle. Returns OK (the handle owns the
 * slot now) or DROP_WAKER (the handle is gone: the slot is the caller's to
 * drop). */
static inline weft__trans_t weft__state_hand_back_join_waker(_Atomic uint64_t *st)
{
    /* acq_rel: release hands the waker slot back to the handle (its
     * acquire in weft__state_unset_join_interest); acquire sees a concurrent
     * handle drop. */
    uint64_t p = atomic_fetch_and_explicit(st, ~(uint64_t)WEFT_T_JOIN_WAKER, memory_order_acq_rel);
    return (p & WEFT_T_JOIN_INTEREST) ? WEFT__TRANS_OK : WEFT__TRANS_DROP_WAKER;
}

/* ---- The join handle's side -------------------------------------------------- */

/* The handle wrote its waker to the slot (which it owns): publishes it by
 * setting JOIN_WAKER, unless the task is complete. Returns OK (published:
 * the slot is the task side's now) or COMPLETE (complete, with an output
 * or cancelled; not published, the slot stays the handle's). */
static inline weft__trans_t weft__state_set_join_waker(_Atomic uint64_t *st)
{
    uint64_t s = atomic_load_explicit(st, memory_order_acquire);
    for (;;) {
        if (s & WEFT_T_COMPLETE)
            return WEFT__TRANS_COMPLETE;
        WEFT_CHAOS();
        /* release: the waker written to the slot reaches the completer
         * (acquire in weft__state_transition_to_complete's CAS). acquire:
         * the output, if the task completed meanwhile. */
        if (WEFT__STATE_CAS(st, &s, s | WEFT_T_JOIN_WAKER, memory_order_acq_rel, memory_order_acquire))
            return WEFT__TRANS_OK;
    }
}

/* Takes JOIN_WAKER back so the slot can be rewritten. Returns OK (the slot
 * is the handle's) or COMPLETE (the task completed first, with an output or
 * cancelled, and still owns the slot). */
static inline weft__trans_t weft__state_unset_join_waker(_Atomic uint64_t *st)
{
    uint64_t s = atomic_load_explicit(st, memory_order_acquire);
    for (;;) {
        if (s & WEFT_T_COMPLETE)
            return WEFT__TRANS_COMPLETE;
        /* acquire: the completer's output, if it wins the race. */
        if (WEFT__STATE_CAS(st, &s, s & ~(uint64_t)WEFT_T_JOIN_WAKER, memory_order_acq_rel, memory_order_acquire))
            return WEFT__TRANS_OK;
    }
}

/* The join handle gives up its interest (it is dropped, or its final poll
 * took the output). If the task is not complete, the waker slot comes back
 * too: the task will not wake it. Returns OK (not complete: the completer
 * drops the output), COMPLETE (complete with an output, which is now the
 * handle's) or CANCELLED (complete, cancelled: no output). *waker_ours:
 * whether the handle must drop the join waker (an empty slot is fine);
 * when false the completer, still waking it, drops it. */
static inline weft__trans_t weft__state_unset_join_interest(_Atomic uint64_t *st, bool *waker_ours)
{
    uint64_t s = atomic_load_explicit(st, memory_order_acquire);
    uint64_t next;
    do {
        if (s & WEFT_T_COMPLETE)
            next = s & ~(uint64_t)WEFT_T_JOIN_INTEREST;
        else /* take the waker slot back too: the task will not wake it */
            next = s & ~(uint64_t)(WEFT_T_JOIN_INTEREST | WEFT_T_JOIN_WAKER);
        /* acq_rel: acquire pairs with weft__state_transition_to_complete's
         * release (the output we may drop); release hands the output to the
         * completer otherwise. */
    } while (!WEFT__STATE_CAS(st, &s, next, memory_order_acq_rel, memory_order_acquire));
    *waker_ours = !(next & WEFT_T_JOIN_WAKER);
    if (!(s & WEFT_T_COMPLETE))
        return WEFT__TRANS_OK;
    return (s & WEFT_T_CANCELLED) ? WEFT__TRANS_CANCELLED : WEFT__TRANS_COMPLETE;
}

#endif
