/* runtime/task.h - the task: one allocation, one atomic state word.
 *
 * Layout of the allocation:
 *
 *   [ header, 64 bytes ][ future, vtable->size ][ output ][ site ptr ][ id ][ name ]
 *
 * The id (weft_task_id_t) sits beside the site, outside the header: the
 * header stays one cache line, and the smallest tasks stay in their
 * allocator size class (64 + 16 + 8 + 8 = 96 bytes).
 *
 * The state word (flags and reference count) and its transitions are in
 * state.h; task.c acts on them (running, completion, wakers, abort,
 * shutdown), join.c is the join handle's side.
 *
 * A task joins the owned list only when its poll first returns PENDING:
 * until then it is always in a run queue (or being polled), where shutdown
 * finds it by draining the queues. A task that finishes in its first poll
 * never takes the owned list's lock.
 *
 * The cancel error is why the task was cancelled, for its join handle to
 * report: 0 (WEFT_ECANCELED) unless whoever cancelled it gave a reason
 * (weft__task_drop_queued_with_error). It lives in the first bytes of the
 * future's room, which is dead once the future is dropped (every future is
 * at least a vtable pointer, 8 bytes, 16-aligned), so it costs no memory.
 * It is written only by the holder of RUNNING, after the drop and before it
 * publishes COMPLETE, and read only by the join handle after it saw
 * COMPLETE with CANCELLED (acquire), like the output.
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include "internal.h"
#include "list.h"
#include "state.h"

struct weft_task_s {
    _Atomic uint64_t state;
    /* Run-queue/inject link: written only by the holder of the notified
     * reference (see sched.c). */
    weft_task_t *next;
    /* Who queues the task when it is woken: its runtime's scheduler, or,
     * for a task with WEFT_T_LOCAL (state.h), its local set (localset.c),
     * which routes its wakes to the set's queues (sched.c). */
    union {
        struct weft__sched *sched;
        struct weft_local_set_s *local;
    };
    /* Owned list (runtime/owned.c), under the shard's lock. */
    weft__dnode_t owned;
    /* Protocol: JOIN_WAKER set => only the task side may touch it; clear =>
     * only the join handle may. */
    weft_waker_t join_waker;
    /* The future's vtable, kept here because a user's drop may scribble on
     * the future: layout, output size and output destructor stay known
     * until the task is freed. */
    const weft_future_vtable_t *vtable;
};

_Static_assert(sizeof(struct weft_task_s) == 64, "the task header is one cache line");

/* The future starts right after the 64-byte header (16-aligned). */
static inline weft_future_t *weft__task_future(weft_task_t *t)
{
    return (weft_future_t *)(void *)(t + 1);
}

/* Offsets of what follows the future (see the layout above). */
typedef struct {
    size_t out_off, site_off, id_off, name_off, total;
} weft__task_layout_t;

/* The output's alignment: the largest power of two (at most 16) dividing its
 * size, which a type's alignment always does. */
static inline size_t weft__task_out_align(size_t out_size)
{
    size_t a = 16;
    while (a > 1 && (out_size & (a - 1)) != 0)
        a >>= 1;
    return a;
}

/* namelen: the name's length with its NUL, or 0 (total then excludes it). */
static inline weft__task_layout_t weft__task_layout(const weft_future_vtable_t *vt, size_t namelen)
{
    weft__task_layout_t l;
    size_t fut_end = sizeof(struct weft_task_s) + vt->size;
    l.out_off = WEFT_ALIGN_UP(fut_end, weft__task_out_align(vt->out_size));
    l.site_off = WEFT_ALIGN_UP(l.out_off + vt->out_size, sizeof(void *));
    l.id_off = l.site_off + sizeof(const char *);
    l.name_off = l.id_off + sizeof(uint64_t);
    l.total = l.name_off + namelen;
    return l;
}

/* Whether t belongs to a local set (its `local` member is valid) rather
 * than to a runtime. relaxed: LOCAL is set before the task is shared and
 * never changes. */
static inline bool weft__task_is_local(weft_task_t *t)
{
    return (atomic_load_explicit(&t->state, memory_order_relaxed) & WEFT_T_LOCAL) != 0;
}

static inline void *weft__task_output(weft_task_t *t)
{
    return (char *)t + weft__task_layout(t->vtable, 0).out_off;
}

/* The cancel error's slot (see the file comment for who may touch it). */
static inline int *weft__task_cancel_err_slot(weft_task_t *t)
{
    _Static_assert(sizeof(weft_future_t) >= sizeof(int), "a dropped future's room holds the cancel error");
    return (int *)(void *)weft__task_future(t);
}

/* Which kind of run-queue entry weft__task_drop_queued drops. */
typedef enum {
    /* It went through a worker's local queue (perhaps spilled from there to
     * the inject queue), so it may be a yield entry, which holds RUNNING. */
    WEFT__ENTRY_MAYBE_YIELD,
    /* A wake, spawn or abort entry, never a yield's: RUNNING set means some
     * other thread (shutdown's own claim, say) holds it. */
    WEFT__ENTRY_WAKE,
} weft__entry_t;

/* Allocates a task for a future of vtable vt, the future's room left
 * unwritten (weft__task_future: the caller builds the future there before
 * anyone else sees the task). refs: owned + queue (+ handle). Returns NULL
 * on allocation failure. A task of a page or more tells the coop budget
 * (weft__coop_note_dear). */
weft_task_t *weft__task_alloc(struct weft__sched *s, const weft_future_vtable_t *vt, bool with_handle,
                              const char *name, const char *site);
/* As weft__task_alloc, with a copy of fut in the future's room. */
weft_task_t *weft__task_new(struct weft__sched *s, weft_future_t *fut, bool with_handle, const char *name,
                            const char *site);
/* Polls (or cancels) a task whose queue reference the caller holds; the
 * reference is consumed. Runs on a worker or the current-thread driver. */
void weft__task_run(weft_task_t *t);
/* Shutdown: claims an idle task and cancels it. The caller holds a reference
 * (taken from the owned list), consumed here. */
void weft__task_shutdown(weft_task_t *t);
/* Drops a run-queue entry without running the task (shutdown, or a push
 * into a closed inject queue). A task not yet on the owned list (never
 * polled) is cancelled by its entry, as is one that yielded while running
 * (its entry holds RUNNING). entry: WEFT__ENTRY_MAYBE_YIELD for an entry
 * that came through a worker's local queue, where RUNNING set means a yield
 * entry; a wake, spawn or abort entry (WEFT__ENTRY_WAKE) must not read
 * RUNNING that way, since shutdown's own claim may have set it. */
void weft__task_drop_queued(weft_task_t *t, weft__entry_t entry);
/* As weft__task_drop_queued(t, WEFT__ENTRY_WAKE), giving the reason: if this
 * entry is what cancels the task, its join handle reports err (0:
 * WEFT_ECANCELED). The blocking pool uses it for jobs it never started. */
void weft__task_drop_queued_with_error(weft_task_t *t, int err);
/* Releases one reference (freeing the task if it was the last). */
void weft__task_ref_dec(weft_task_t *t);
/* Requests cancellation (join handle abort). Context: any thread. */
void weft__task_abort(weft_task_t *t);
/* Waits until no wake from outside a runtime's workers is between its CAS
 * and its push (see task.c); called before a runtime's memory is freed. */
/* Counts the calling thread as a foreign waker from now until
 * weft__foreign_let_go(token): for a batch of wakes whose tasks may belong
 * to any runtime and are pushed to their runtimes only at the end
 * (weft__wake_batch), so no runtime in the batch is freed before that. */
unsigned weft__foreign_hold(void);
void weft__foreign_let_go(unsigned token);
void weft__foreign_wakes_quiesce(void);
/* True while some foreign wake (or wake batch) is under way, in any
 * runtime: its task may not be queued yet. A paused clock waits for it
 * before it jumps (clock.c). */
bool weft__foreign_wakes_busy(void);
/* Fills jh as the join handle of t, which was created with its handle
 * reference (join.c). */
void weft__join_handle_init(weft_join_handle_t *jh, weft_task_t *t);
const char *weft__task_name(weft_task_t *t);
const char *weft__task_site(weft_task_t *t);
uint64_t weft__task_id(weft_task_t *t);

extern const weft_future_vtable_t weft__join_handle_vtable;

extern const weft_waker_vtable_t weft__task_waker_vtable;

#endif
