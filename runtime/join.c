/* runtime/join.c - join handles: the future that awaits a task's output,
 * and abort, is_finished and drop.
 *
 * The handle holds one reference and JOIN_INTEREST (state.h). To wait it
 * writes its waker to the task's join_waker slot and publishes it with
 * JOIN_WAKER; from then on the slot is the task side's until the completer
 * hands it back (task.c, task_complete), so the handle only ever reads it.
 * Once it sees COMPLETE (acquire, pairing with the completion's release in
 * weft__state_transition_to_complete) the output and the cancel error are
 * final and readable. The handle learns why a task was cancelled from the
 * task itself (weft__task_cancel_err_slot), never from whoever cancelled it.
 *
 * Context: a handle is used by one thread at a time (it is a future), while
 * its task completes, wakes it or is freed on any thread.
 */
#include <string.h>

#include "nonnull.h"
#include "scheduler.h"

/* What join_release finds in the output slot of a complete task. */
typedef enum {
    OUTPUT_TAKEN, /* the final poll moved (or dropped) it already */
    OUTPUT_LEFT,  /* still there: the handle drops it */
} join_output_t;

/* Gives up the join interest and the handle's reference. */
static void join_release(weft_task_t *t, join_output_t output)
{
    WEFT_CHAOS();
    bool waker_ours;
    weft__trans_t r = weft__state_unset_join_interest(&t->state, &waker_ours);
    if (r == WEFT__TRANS_COMPLETE && output == OUTPUT_LEFT && t->vtable->drop_output)
        t->vtable->drop_output(weft__task_output(t));
    if (waker_ours)
        weft_waker_drop(&t->join_waker); /* the slot is ours (empty is fine) */
    WEFT_LIVE_DEC(WEFT_LIVE_JOIN_HANDLE);
    weft__task_ref_dec(t);
}

/* The task is complete: moves the output to jh->dst_ (or drops it), or
 * reports why it was cancelled. Returns 0 or the cancel error. */
static int join_take(weft_join_handle_t *jh, weft_task_t *t)
{
    /* acquire: pairs with weft__state_transition_to_complete's release: the
     * output and the cancel error are visible. */
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    if (s & WEFT_T_CANCELLED) {
        int err = *weft__task_cancel_err_slot(t);
        return err != 0 ? err : WEFT_ECANCELED;
    }
    const weft_future_vtable_t *vt = t->vtable;
    if (jh->dst_ != NULL)
        memcpy(jh->dst_, weft__task_output(t), vt->out_size);
    else if (vt->drop_output)
        vt->drop_output(weft__task_output(t));
    return 0;
}

static weft_poll_t join_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_join_handle_t *jh = (weft_join_handle_t *)(void *)f;
    weft_task_t *t = jh->task_;
    if (t == NULL)
        weft_panic(WEFT_SITE, "join handle polled after it completed (or it is empty)");
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    /* acquire: pairs with weft__state_transition_to_complete's release: the
     * output is visible. */
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    if (!(s & WEFT_T_COMPLETE)) {
        if (s & WEFT_T_JOIN_WAKER) {
            /* Reading the slot is allowed: the task side only reads it too. */
            if (weft_waker_will_wake(&t->join_waker, cx->waker))
                goto pending;
            if (weft__state_unset_join_waker(&t->state) == WEFT__TRANS_COMPLETE)
                goto complete;
        }
        /* The slot is ours. */
        if (t->join_waker.vtable == NULL || !weft_waker_will_wake(&t->join_waker, cx->waker)) {
            weft_waker_drop(&t->join_waker);
            t->join_waker = weft_waker_clone(cx->waker);
        }
        if (weft__state_set_join_waker(&t->state) == WEFT__TRANS_OK)
            goto pending;
    }
complete:;
    int rc = join_take(jh, t);
    jh->task_ = NULL;
    join_release(t, OUTPUT_TAKEN);
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
    weft_task_t *t = jh->task_;
    if (t == NULL)
        return;
    jh->task_ = NULL;
    join_release(t, OUTPUT_LEFT);
}

const weft_future_vtable_t weft__join_handle_vtable = {
    join_poll, join_drop, NULL, sizeof(weft_join_handle_t), sizeof(int), "weft_join_handle",
};

weft_future_t *weft_join(weft_join_handle_t *jh, void *dst)
{
    WEFT__REQUIRE("weft_join", jh);
    jh->dst_ = dst;
    return &jh->future;
}

void weft_join_handle_abort(const weft_join_handle_t *jh)
{
    WEFT__REQUIRE("weft_join_handle_abort", jh);
    if (jh->task_ != NULL)
        weft__task_abort(jh->task_);
}

bool weft_join_handle_is_finished(const weft_join_handle_t *jh)
{
    WEFT__REQUIRE("weft_join_handle_is_finished", jh);
    if (jh->task_ == NULL)
        return true;
    /* acquire: a caller that sees true may then await and read the output. */
    return (atomic_load_explicit(&jh->task_->state, memory_order_acquire) & WEFT_T_COMPLETE) != 0;
}

weft_task_id_t weft_join_handle_id(const weft_join_handle_t *jh)
{
    WEFT__REQUIRE("weft_join_handle_id", jh);
    /* The handle holds a reference: the task (and its id) stay allocated. */
    return jh->task_ != NULL ? weft__task_id(jh->task_) : 0;
}

void weft_join_handle_drop(weft_join_handle_t *jh)
{
    WEFT__REQUIRE("weft_join_handle_drop", jh);
    join_drop(&jh->future);
}
