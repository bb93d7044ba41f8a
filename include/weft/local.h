/* weft/local.h - thread-affine tasks: a LocalSet and weft_spawn_local
 * (Tokio's LocalSet and spawn_local).
 *
 * A local set is a group of tasks that are only ever polled (and dropped)
 * on one thread: the thread that created the set, its owner. A local task
 * may hold state that must not cross threads (a cache without a lock, a
 * library handle that is not thread-safe, pointers into thread-local
 * storage). It can be woken from any thread; the wake is queued in its set
 * and the task runs the next time the owner polls the set.
 *
 * The owner drives the set by polling one of its run futures, usually as
 * (part of) the root future of weft_runtime_block_on, on a current-thread
 * or a multi-thread runtime:
 *
 *     weft_local_set_t *set;
 *     if (weft_local_set_new(&set) != 0) ...
 *     app_t app = app();                        // may call weft_spawn_local
 *     weft_local_run_t run = weft_local_set_run_until(set, WEFT_FUTURE(&app), NULL);
 *     int rc = weft_runtime_block_on(rt, WEFT_FUTURE(&run), NULL);
 *     weft_local_set_free(set);                 // drops the tasks still in it
 *
 * Local tasks are tasks like any other: same join handles, abort, names,
 * task-locals, cooperative budget; they may spawn ordinary tasks onto the
 * runtime and await them. They are never stolen, never go to a runtime's
 * queues, and never run on a worker other than the owner thread. They do
 * not belong to a runtime: shutting a runtime down neither drops nor stops
 * them (weft_local_set_free does). docs/localset.md has the guide.
 */
#ifndef WEFT_LOCAL_H
#define WEFT_LOCAL_H

#include "future.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A local set: opaque, from weft_local_set_new, freed by weft_local_set_free. */
typedef struct weft_local_set_s weft_local_set_t;

/* Creates an empty set owned by the calling thread. Returns 0 or
 * WEFT_ENOMEM (*out untouched). Context: any thread; that thread becomes
 * the owner: the only one that may spawn into the set, drive it or free it. */
WEFT_API WEFT_NODISCARD int weft_local_set_new(weft_local_set_t **out);

/* Drops every task still in the set (never-polled, queued, waiting), on
 * the calling thread, running their futures' drop; their join handles
 * report WEFT_ECANCELED. Then releases the set (its memory lives on while
 * a task allocation or a run future still refers to it). NULL is ignored.
 * Aborts when called on another thread than the owner, or from inside the
 * set's own run (a local task, or the future a run_until drives). Context:
 * the owner thread, not blocking. */
WEFT_API void weft_local_set_free(weft_local_set_t *set);

/* The future of weft_local_set_run_until and weft_local_set_run. Fields
 * private. */
typedef struct weft_local_run_s {
    weft_future_t future;
    weft_local_set_t *set_;
    weft_future_t *inner_; /* run_until's future; NULL for run, or once dropped */
    void *out_;
    int state_; /* not polled yet, running (holds a reference to the set), or done */
} weft_local_run_t;

/* A future (output weft_unit_t) that drives set while it polls inner:
 * every poll sets set as the current local set (weft_spawn_local spawns
 * into it, from inner or from a local task), polls inner, then runs up to
 * 61 ready local tasks, each with a fresh cooperative budget, and wakes
 * itself if more are ready, so the thread gets back to its other work
 * between batches. It completes when inner completes (inner's output goes
 * to out, which may be NULL); local tasks not finished by then stay in the
 * set, for a later run or for weft_local_set_free. Takes ownership of
 * inner (dropped when it completes or when the run future is dropped).
 * Polling it on another thread than the owner, on a worker of a
 * multi-thread runtime (the task could move), from inside the set's own
 * run, or after weft_local_set_free aborts. Context: the owner thread. */
WEFT_API WEFT_NODISCARD weft_local_run_t weft_local_set_run_until(weft_local_set_t *set, weft_future_t *inner,
                                                                  void *out);

/* As weft_local_set_run_until with no inner future: completes once the
 * set holds no unfinished task (Tokio's awaiting the LocalSet itself). */
WEFT_API WEFT_NODISCARD weft_local_run_t weft_local_set_run(weft_local_set_t *set);

/* Spawns fut as a local task of set, or, when set is NULL, of the local
 * set current on this thread (the one whose run future is being polled).
 * fut, jh, opts and site as for weft_spawn_at: fut must not have been
 * polled, and its vtable->size bytes are copied into the task, which owns
 * the future from then on; jh (may be NULL: detached) receives the join
 * handle. The task is queued in the set and first polled by the set's run.
 * Returns 0, or WEFT_ENOMEM (nothing spawned, fut is still the caller's).
 * If the set is being freed (a future's drop spawning), the future is
 * dropped at once, the handle reports WEFT_ECANCELED, and 0 is returned.
 * Aborts with set NULL and no local set current ("outside a LocalSet"), on
 * another thread than the set's owner, or when fut is not a future.
 * Context: the owner thread; never blocks. */
WEFT_API WEFT_NODISCARD int weft_spawn_local_at(weft_local_set_t *set, weft_future_t *fut, weft_join_handle_t *jh,
                                                const weft_spawn_opts_t *opts, const char *site);

/* Spawns a local task into the current local set (from a local task, or
 * from the future a run_until drives). */
#define weft_spawn_local(fut, jh) weft_spawn_local_at(NULL, WEFT_FUTURE(fut), (jh), NULL, WEFT_SITE)
#define weft_spawn_local_named(name, fut, jh) \
    weft_spawn_local_at(NULL, WEFT_FUTURE(fut), (jh), WEFT__TMP(weft_spawn_opts_t, (name)), WEFT_SITE)
/* Spawns a local task into set, before or between its runs (owner thread). */
#define weft_local_set_spawn(set, fut, jh) weft_spawn_local_at((set), WEFT_FUTURE(fut), (jh), NULL, WEFT_SITE)

#ifdef __cplusplus
}
#endif

#endif
