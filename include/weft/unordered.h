/* weft/unordered.h - a dynamic set of futures run on one task, their
 * outputs taken in the order they finish (futures-rs' FuturesUnordered).
 *
 * Push futures at any time, also from inside a member's poll; await
 * weft_unordered_next to get the next member that finishes: its output
 * and the tag it was pushed with. Every member is polled once after it is
 * pushed, and after that only when its own waker fired: a wake costs O(1)
 * however many members there are. A member woken while the set is polling
 * (by itself, or by another member) waits for the set's next poll, so no
 * member is polled twice in one; after 32 polls in which nothing finished
 * the set yields to the scheduler, and each completion spends one unit of
 * the task's cooperative budget.
 *
 * Storage: one allocation per push holds the member (copied in, as spawn
 * copies a task's future) and its waker's state; none per poll or wake.
 * The set itself is embedded by value (in a frame, say) and allocates a
 * small shared part at its first push.
 *
 *     weft_unordered_init(&self->set);
 *     for (self->i = 0; self->i < n; self->i++) {
 *         fetch_t f = fetch(self->i);
 *         if (weft_unordered_push(&self->set, WEFT_FUTURE(&f), self->i) != 0)
 *             ...;                                  // WEFT_ENOMEM: f not taken
 *     }
 *     for (;;) {
 *         WEFT_AWAIT(&self->next, weft_unordered_next(&self->set, &self->tag, &self->result), &self->got);
 *         if (!self->got)
 *             break;                                // the set is empty
 *         use(self->tag, self->result);
 *     }
 *     weft_unordered_destroy(&self->set);           // in the frame's cleanup too
 *
 * Context: a set belongs to one task (or thread) at a time: push, next,
 * len and destroy are never called concurrently on one set. Members'
 * wakers may be woken from any thread.
 */
#ifndef WEFT_UNORDERED_H
#define WEFT_UNORDERED_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

struct weft__unordered_hub;
struct weft__unordered_node;

/* The set. Fields private. */
typedef struct weft_unordered_s {
    struct weft__unordered_hub *hub_;         /* shared with the wakers; NULL until the first push */
    struct weft__unordered_node *all_;        /* every unfinished member (for destroy) */
    struct weft__unordered_node *ready_head_; /* members taken from the hub, to poll */
    struct weft__unordered_node *ready_tail_;
    size_t len_;
    size_t hub_credit_; /* references to the hub the set holds for nodes it will free itself */
    uint32_t round_; /* counts the set's polls: no member is polled twice in one */
    bool polling_;   /* inside a member's poll (destroy then is misuse) */
} weft_unordered_t;

/* Makes an empty set; allocates nothing. The set holds no pointer into
 * itself: it may be moved (copied, say into a task by spawn) while no
 * next future and no member refers to it. Context: any thread. */
WEFT_API void weft_unordered_init(weft_unordered_t *set);

/* Drops every unfinished member (cancelling it) and frees what the set
 * holds; the set is then empty and may be used again. Wakers of its
 * members that are still around stay valid and do nothing. Aborts when
 * called from inside one of the set's members' polls.
 * Context: the set's owner; never blocks. */
WEFT_API void weft_unordered_destroy(weft_unordered_t *set);

/* Adds fut, which must not have been polled, to the set: fut->vtable->size
 * bytes are copied from fut, so fut may be a temporary. tag is returned by
 * weft_unordered_next with this member's output. Returns 0, or WEFT_ENOMEM.
 * Ownership: on success the set owns the member (do not poll or drop fut
 * again); on error the caller still owns fut. May be called from inside a
 * member's poll (the new member is polled in this or the next round).
 * Context: the set's owner. */
WEFT_API WEFT_NODISCARD int weft_unordered_push(weft_unordered_t *set, weft_future_t *fut, uintptr_t tag);

/* Members not finished yet; whether there are none. */
WEFT_API size_t weft_unordered_len(const weft_unordered_t *set);
WEFT_API bool weft_unordered_is_empty(const weft_unordered_t *set);

/* The future of the next member to finish. Output bool: true when a member
 * finished (its output was written to out, its tag to *tag), false at once
 * when the set is empty. out must have room for the output of whichever
 * member finishes (members of different output types: a union, and the
 * tag says which); NULL discards it (the member releases it). tag may be
 * NULL. The set and out must outlive the future. Dropping it before it
 * completes loses nothing: the finished member is only taken when it
 * completes. One next at a time per set. Fields private. */
typedef struct weft_unordered_next_s {
    weft_future_t future;
    weft_unordered_t *set_;
    uintptr_t *tag_;
    void *out_;
} weft_unordered_next_t;

WEFT_API WEFT_NODISCARD weft_unordered_next_t weft_unordered_next(weft_unordered_t *set, uintptr_t *tag, void *out);

#ifdef __cplusplus
}
#endif

#endif
