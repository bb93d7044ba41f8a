/* runtime/unordered_internal.h - what weft_joinset_t (runtime/joinset.c)
 * needs of a FuturesUnordered set beyond its public calls (internal).
 * Owner only, never from inside a member's poll. */
#ifndef WEFT_RUNTIME_UNORDERED_INTERNAL_H
#define WEFT_RUNTIME_UNORDERED_INTERNAL_H

#include "weft/unordered.h"

/* The member pushed last (the set's copy of it), or NULL when empty: a
 * push copies the future, and the caller may finish filling that copy in
 * before the set's next poll. */
weft_future_t *weft__unordered_newest(weft_unordered_t *set);
/* Drops the member pushed last, as if it had finished (never polled). */
void weft__unordered_remove_newest(weft_unordered_t *set);
/* Calls fn on every unfinished member; fn must not push or remove. */
void weft__unordered_for_each(weft_unordered_t *set, void (*fn)(weft_future_t *member, void *arg), void *arg);

#endif
