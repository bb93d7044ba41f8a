/* weft/joinset.h - a set of spawned tasks, joined in the order they finish
 * (Tokio's tokio::task::JoinSet).
 *
 * Spawn tasks into the set; await weft_joinset_join_next to take each one's
 * output as it finishes, with its task id. Tasks run on the runtime like
 * any other (in parallel, on any worker); the set only holds their join
 * handles. Joining costs O(1) per finished task however many are in the
 * set: a task's completion wakes only its own entry (see weft/unordered.h,
 * which the set is built on). Destroying the set aborts every task still
 * in it, so a set in a frame bounds the lifetime of the tasks it spawned:
 * when the frame is dropped (cancelled), so are they.
 *
 *     weft_joinset_init(&self->set);
 *     for (self->i = 0; self->i < n; self->i++) {
 *         fetch_t f = fetch(self->i);
 *         if (weft_joinset_spawn(&self->set, &f, NULL) != 0)
 *             ...;                                 // WEFT_ENOMEM: f not taken
 *     }
 *     for (;;) {
 *         WEFT_AWAIT(&self->next, weft_joinset_join_next(&self->set, &self->result, &self->id), &self->rc);
 *         if (self->rc == WEFT_ENOENT)
 *             break;                               // every task joined
 *         if (self->rc == 0)
 *             use(self->id, self->result);         // else WEFT_ECANCELED: that task was aborted
 *     }
 *     weft_joinset_destroy(&self->set);            // in the frame's cleanup too
 *
 * Context: a set belongs to one task (or thread) at a time: spawn,
 * join_next, abort_all, len and destroy are never called concurrently on
 * one set. It may be moved while no join_next future refers to it.
 */
#ifndef WEFT_JOINSET_H
#define WEFT_JOINSET_H

#include "runtime.h"
#include "unordered.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The set. Fields private. */
typedef struct weft_joinset_s {
    weft_unordered_t tasks_; /* one member per task: its join handle */
} weft_joinset_t;

/* Makes an empty set; allocates nothing. Context: any thread. */
WEFT_API void weft_joinset_init(weft_joinset_t *set);

/* Aborts every task still in the set and forgets them (their outputs, when
 * they finish anyway, are released by the runtime); the set is then empty
 * and may be used again. Does not wait (weft_joinset_shutdown does).
 * Context: the set's owner; never blocks. */
WEFT_API void weft_joinset_destroy(weft_joinset_t *set);

/* Spawns fut as a task on h (NULL: the current runtime; aborts if there is
 * none) and adds it to the set, writing its id to *id (may be NULL). fut
 * is moved as by weft_spawn_at (copied; it must not have been polled).
 * Returns 0, or WEFT_ENOMEM: nothing was spawned and the caller still owns
 * fut. After the runtime's shutdown began, the task is cancelled at once
 * and join_next reports it with WEFT_ECANCELED. `site` must have static
 * storage (the macros pass WEFT_SITE). Context: the set's owner, any
 * thread; never blocks. */
WEFT_API WEFT_NODISCARD int weft_joinset_spawn_at(weft_joinset_t *set, weft_handle_t *h, weft_future_t *fut,
                                                  const weft_spawn_opts_t *opts, const char *site,
                                                  weft_task_id_t *id);

#define weft_joinset_spawn(set, fut, id) weft_joinset_spawn_at((set), NULL, WEFT_FUTURE(fut), NULL, WEFT_SITE, (id))
#define weft_joinset_spawn_on(set, h, fut, id) \
    weft_joinset_spawn_at((set), (h), WEFT_FUTURE(fut), NULL, WEFT_SITE, (id))

/* Tasks in the set (not joined yet, finished or not); whether there are
 * none. */
WEFT_API size_t weft_joinset_len(const weft_joinset_t *set);
WEFT_API bool weft_joinset_is_empty(const weft_joinset_t *set);

/* Requests cancellation of every task in the set (weft_join_handle_abort
 * on each); they stay in the set, and join_next reports each with
 * WEFT_ECANCELED (or its output, if it finished first). Context: the set's
 * owner. */
WEFT_API void weft_joinset_abort_all(weft_joinset_t *set);

/* The future of weft_joinset_join_next. Output int: 0 (a task finished:
 * its output was written to out, its id to *id), WEFT_ECANCELED (a task
 * was aborted or cancelled by shutdown: *id says which, out untouched), or
 * WEFT_ENOENT at once when the set is empty. Dropping it before it
 * completes loses nothing: a task is only taken from the set by the poll
 * that completes. Fields private. */
typedef struct weft_joinset_join_next_s {
    weft_future_t future;
    weft_joinset_t *set_;
    weft_unordered_next_t next_;
    struct {
        int rc;
        weft_task_id_t id;
        void *out;
    } got_;
    weft_task_id_t *id_;
} weft_joinset_join_next_t;

/* Waits for the next task of the set to finish (see
 * weft_joinset_join_next_t). out must have room for the output of
 * whichever task finishes (tasks of different output types: a union, and
 * the id says which), or be NULL to discard it; id may be NULL. The set
 * and out must outlive the future. One join_next at a time per set.
 * Context: poll from a task or a block_on root. */
WEFT_API WEFT_NODISCARD weft_joinset_join_next_t weft_joinset_join_next(weft_joinset_t *set, void *out,
                                                                         weft_task_id_t *id);

/* The future of weft_joinset_shutdown: output weft_unit_t. Fields private. */
typedef struct weft_joinset_shutdown_s {
    weft_future_t future;
    weft_joinset_t *set_;
    weft_joinset_join_next_t next_;
    bool started_;
} weft_joinset_shutdown_t;

/* Aborts every task of the set and waits until each one has finished
 * (its output, if any, released); the set is then empty. Context: as
 * join_next. */
WEFT_API WEFT_NODISCARD weft_joinset_shutdown_t weft_joinset_shutdown(weft_joinset_t *set);

#ifdef __cplusplus
}
#endif

#endif
