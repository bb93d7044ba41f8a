/* runtime/joinset.c - JoinSet: spawned tasks joined as they finish.
 *
 * Design. The set is a FuturesUnordered (runtime/unordered.c) whose
 * members are small futures each holding one task's join handle. A member
 * polls its handle with the member's own waker, so a task that finishes
 * wakes only its entry, and join_next polls only woken entries: O(1) per
 * finished task. The set holds no pointer into itself and the members none
 * into the set: where a finishing task's output goes travels in the
 * member's output slot instead. join_next passes the unordered set a
 * record {rc, id, out} as the member's destination; the member reads `out`
 * from it (the caller's buffer for the task's output), joins into it, and
 * writes rc and id back. Only the member that completes touches the
 * record, and join_next completes with it.
 *
 * Spawning: the member is pushed first, with an empty handle, and the task
 * is then spawned straight into the set's copy of it
 * (weft__unordered_newest), so that a failed allocation on either side
 * leaves nothing spawned and the caller still owning its future. No member
 * is polled between the two steps: the set has one owner, who is here.
 *
 * Cancellation: a member dropped (set destroyed, or the member removed)
 * aborts its task and drops the handle, which detaches it; the runtime
 * then drops the future, or the output if it finished meanwhile.
 *
 * Context: the set's owner only (the unordered set's rule); the tasks run
 * anywhere, and their completions wake the entries from any thread.
 */
#include <string.h>

#include "internal.h"
#include "nonnull.h"
#include "unordered_internal.h"
#include "weft/joinset.h"

typedef struct {
    weft_future_t future;
    weft_join_handle_t jh;
    weft_task_id_t id;
} member_t;

/* The member's output: join_next's record (see the design block). */
typedef struct {
    int rc;
    weft_task_id_t id;
    void *out;
} record_t;
_Static_assert(sizeof(record_t) == sizeof(((weft_joinset_join_next_t *)0)->got_), "record layout");

static weft_poll_t member_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    member_t *m = (member_t *)(void *)f;
    record_t *rec = out; /* never NULL: join_next always passes its record */
    int rc = 0;
    if (weft_future_poll(weft_join(&m->jh, rec->out), cx, &rc) == WEFT_PENDING)
        return WEFT_PENDING;
    rec->rc = rc;
    rec->id = m->id;
    return WEFT_READY;
}

static void member_drop(weft_future_t *f)
{
    member_t *m = (member_t *)(void *)f;
    weft_join_handle_abort(&m->jh); /* no effect when finished or empty */
    weft_join_handle_drop(&m->jh);
}

static const weft_future_vtable_t member_vtable = {
    member_poll, member_drop, NULL, sizeof(member_t), sizeof(record_t), "weft_joinset task",
};

void weft_joinset_init(weft_joinset_t *set)
{
    WEFT__REQUIRE("weft_joinset_init", set);
    weft_unordered_init(&set->tasks_);
}

void weft_joinset_destroy(weft_joinset_t *set)
{
    WEFT__REQUIRE("weft_joinset_destroy", set);
    weft_unordered_destroy(&set->tasks_); /* drops every member: aborts and detaches */
}

int weft_joinset_spawn_at(weft_joinset_t *set, weft_handle_t *h, weft_future_t *fut, const weft_spawn_opts_t *opts,
                          const char *site, weft_task_id_t *id)
{
    WEFT__REQUIRE("weft_joinset_spawn_at", set);
    WEFT__REQUIRE("weft_joinset_spawn_at", fut);
    member_t blank;
    memset(&blank, 0, sizeof blank);
    blank.future.vtable = &member_vtable;
    int rc = weft_unordered_push(&set->tasks_, &blank.future, 0);
    if (rc != 0)
        return rc;
    member_t *m = (member_t *)(void *)weft__unordered_newest(&set->tasks_);
    rc = weft_spawn_at(h, fut, &m->jh, opts, site);
    if (rc != 0) {
        weft__unordered_remove_newest(&set->tasks_); /* its handle is empty: nothing to abort */
        return rc;
    }
    m->id = weft_join_handle_id(&m->jh);
    if (id != NULL)
        *id = m->id;
    return 0;
}

size_t weft_joinset_len(const weft_joinset_t *set)
{
    WEFT__REQUIRE("weft_joinset_len", set);
    return weft_unordered_len(&set->tasks_);
}

bool weft_joinset_is_empty(const weft_joinset_t *set)
{
    WEFT__REQUIRE("weft_joinset_is_empty", set);
    return weft_unordered_is_empty(&set->tasks_);
}

static void abort_member(weft_future_t *f, void *arg)
{
    (void)arg;
    weft_join_handle_abort(&((member_t *)(void *)f)->jh);
}

void weft_joinset_abort_all(weft_joinset_t *set)
{
    WEFT__REQUIRE("weft_joinset_abort_all", set);
    weft__unordered_for_each(&set->tasks_, abort_member, NULL);
}

/* ---- join_next ----------------------------------------------------------- */

static weft_poll_t join_next_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_joinset_join_next_t *j = (weft_joinset_join_next_t *)(void *)f;
    bool got = false;
    /* Aim the member's destination at the record where it sits now (the
     * future may have been moved since it was made). */
    j->next_ = weft_unordered_next(&j->set_->tasks_, NULL, &j->got_);
    if (weft_future_poll(&j->next_.future, cx, &got) == WEFT_PENDING)
        return WEFT_PENDING;
    int rc = WEFT_ENOENT;
    if (got) {
        rc = j->got_.rc;
        if (j->id_ != NULL)
            *j->id_ = j->got_.id;
    }
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static const weft_future_vtable_t join_next_vtable = {
    join_next_poll, NULL, NULL, sizeof(weft_joinset_join_next_t), sizeof(int), "weft_joinset_join_next",
};

weft_joinset_join_next_t weft_joinset_join_next(weft_joinset_t *set, void *out, weft_task_id_t *id)
{
    WEFT__REQUIRE("weft_joinset_join_next", set);
    weft_joinset_join_next_t j;
    memset(&j, 0, sizeof j);
    j.future.vtable = &join_next_vtable;
    j.set_ = set;
    j.got_.out = out;
    j.id_ = id;
    /* next_ is aimed at got_ by each poll, once the future sits where it
     * is polled. */
    return j;
}

/* ---- shutdown ------------------------------------------------------------ */

static weft_poll_t shutdown_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_joinset_shutdown_t *s = (weft_joinset_shutdown_t *)(void *)f;
    if (!s->started_) {
        s->started_ = true;
        weft_joinset_abort_all(s->set_);
    }
    for (;;) {
        int rc = 0;
        if (weft_future_poll(&s->next_.future, cx, &rc) == WEFT_PENDING)
            return WEFT_PENDING;
        if (rc == WEFT_ENOENT)
            break;
        s->next_ = weft_joinset_join_next(s->set_, NULL, NULL); /* the next one */
    }
    if (out != NULL)
        *(weft_unit_t *)out = WEFT_UNIT;
    return WEFT_READY;
}

static const weft_future_vtable_t shutdown_vtable = {
    shutdown_poll, NULL, NULL, sizeof(weft_joinset_shutdown_t), 0, "weft_joinset_shutdown",
};

weft_joinset_shutdown_t weft_joinset_shutdown(weft_joinset_t *set)
{
    WEFT__REQUIRE("weft_joinset_shutdown", set);
    weft_joinset_shutdown_t s;
    memset(&s, 0, sizeof s);
    s.future.vtable = &shutdown_vtable;
    s.set_ = set;
    s.next_ = weft_joinset_join_next(set, NULL, NULL);
    return s;
}
