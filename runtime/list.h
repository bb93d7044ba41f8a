/* runtime/list.h - intrusive lists: container_of, a doubly-linked list, and
 * the lock-free intake stack (internal).
 *
 * Doubly-linked list (after libuv's queue.h): a weft__dlist_t head and a
 * weft__dnode_t embedded in each element; the list is circular through the
 * head, so insert and remove are O(1) with no branch on emptiness. Not
 * thread-safe: its owner's lock protects it. A removed node is reset to
 * point at itself, so weft__dnode_linked tells whether it is on a list and
 * a second remove is harmless.
 *
 * Intake stack (WEFT__INTAKE_GEN): many producers push chains of elements
 * with one CAS each and never wait for anyone (a producer descheduled in
 * the middle of a push holds up nobody); a consumer takes the whole stack
 * at once with one exchange and gets it back in push order. A producer
 * reverses its chain before pushing and the consumer reverses what it
 * took, so chains keep their order, and chains come out in the order they
 * were pushed. Optionally closed: a sentinel that makes later pushes fail
 * (the pusher keeps its chain, in its order). The generator makes typed
 * functions for any element type with a `next` pointer field (as
 * jemalloc's mpsc_queue.h does), so each user keeps its own link field and
 * memory orderings:
 *   - push: the CAS that links the chain is `order` (release at least: it
 *     publishes the chain's links and contents to the taker);
 *   - take/close: an exchange with acquire (pairs with push's release) or
 *     stronger, as the caller passes.
 * Progress: push lock-free, take and close wait-free. Weakness: a taker
 * reverses the whole stack, O(n) in what accumulated since the last take.
 */
#ifndef WEFT_LIST_H
#define WEFT_LIST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h" /* WEFT_CHAOS */

#define weft__container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- Doubly-linked list -------------------------------------------------- */

/* weft__dnode_t, the node, is defined in weft/common.h (public futures
 * embed it). */

typedef weft__dnode_t weft__dlist_t; /* the head: a node that is no element */

static inline void weft__dlist_init(weft__dlist_t *l)
{
    l->prev = l->next = l;
}

static inline void weft__dnode_init(weft__dnode_t *n)
{
    n->prev = n->next = n;
}

static inline bool weft__dlist_empty(const weft__dlist_t *l)
{
    return l->next == l;
}

static inline bool weft__dnode_linked(const weft__dnode_t *n)
{
    return n->next != n;
}

static inline void weft__dlist_push_back(weft__dlist_t *l, weft__dnode_t *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

static inline void weft__dlist_push_front(weft__dlist_t *l, weft__dnode_t *n)
{
    n->next = l->next;
    n->prev = l;
    l->next->prev = n;
    l->next = n;
}

static inline void weft__dlist_remove(weft__dnode_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    weft__dnode_init(n);
}

/* Moves every node of `from` to the back of `to` (which may be empty),
 * leaving `from` empty. O(1). */
static inline void weft__dlist_append_all(weft__dlist_t *from, weft__dlist_t *to)
{
    if (weft__dlist_empty(from))
        return;
    weft__dnode_t *first = from->next, *last = from->prev;
    first->prev = to->prev;
    to->prev->next = first;
    last->next = to;
    to->prev = last;
    weft__dlist_init(from);
}

/* The first element's node, or NULL when empty. */
static inline weft__dnode_t *weft__dlist_first(const weft__dlist_t *l)
{
    return l->next == l ? NULL : l->next;
}

/* Removes and returns the first element's node, or NULL when empty. */
static inline weft__dnode_t *weft__dlist_pop_front(weft__dlist_t *l)
{
    weft__dnode_t *n = weft__dlist_first(l);
    if (n != NULL)
        weft__dlist_remove(n);
    return n;
}

/* for (n in l); n may not be removed inside (use the _safe form). */
#define weft__dlist_foreach(n, l) for (weft__dnode_t *n = (l)->next; n != (l); n = n->next)
#define weft__dlist_foreach_safe(n, l) \
    for (weft__dnode_t *n = (l)->next, *n##_next_ = n->next; n != (l); n = n##_next_, n##_next_ = n->next)

/* ---- Intake stack ---------------------------------------------------------- */

#define WEFT__INTAKE_CLOSED(type) ((type *)(uintptr_t)1)

/* Generates, for element `type` linked through its field `next`:
 *   type *name_reverse(type *t, type **last)
 *       reverses the chain from t (NULL-terminated); returns the new head
 *       and sets *last to the new tail (the old head).
 *   bool name_push(_Atomic(type *) *top, type *first, type *last, bool chain,
 *                  memory_order order, bool *was_empty)
 *       pushes the chain first..last (in order; `chain` false when first is
 *       last); *was_empty (when not NULL) tells whether the stack was empty
 *       before (a consumer to notify once per batch). Returns false when
 *       the stack is closed: the caller keeps the chain, still in order.
 *   type *name_take(_Atomic(type *) *top, memory_order order, type **last)
 *       takes everything pushed so far, in push order (NULL: nothing), *last
 *       its tail: one exchange, for a stack that is never closed. (A load
 *       first, to skip an empty stack, would cost a contended stack a second
 *       cache-line transfer on every take that finds work: the
 *       spawn_blocking_8_spawners workload ran about 8 % slower with it.)
 *   type *name_take_unless_closed(_Atomic(type *) *top, memory_order order, type **last)
 *       the same for a stack that may be closed: NULL when it is empty or
 *       closed, and a closed stack stays closed. Takers must not race a
 *       close (the inject queue takes and closes under one lock): a take
 *       between a close's exchange and our own would reopen the stack.
 *   type *name_close(_Atomic(type *) *top, memory_order order, type **last)
 *       closes the stack and returns what it held, in push order. */
#define WEFT__INTAKE_GEN(name, type, next)                                                                    \
    static inline type *name##_reverse(type *t, type **last)                                                  \
    {                                                                                                         \
        type *rev = NULL;                                                                                     \
        *last = t;                                                                                            \
        while (t != NULL) {                                                                                   \
            type *n_ = t->next;                                                                               \
            t->next = rev;                                                                                    \
            rev = t;                                                                                          \
            t = n_;                                                                                           \
        }                                                                                                     \
        return rev;                                                                                           \
    }                                                                                                         \
    static inline bool name##_push(_Atomic(type *) *top, type *first, type *last, bool chain, memory_order order, \
                                   bool *was_empty)                                                           \
    {                                                                                                         \
        last->next = NULL;                                                                                    \
        type *head_ = first;                                                                                  \
        if (chain)                                                                                            \
            head_ = name##_reverse(first, &last); /* last..first: the taker reverses it back */              \
        type *old = atomic_load_explicit(top, memory_order_relaxed);                                          \
        do {                                                                                                  \
            if (old == WEFT__INTAKE_CLOSED(type)) {                                                           \
                /* A failed CAS may have left last->next pointing into what the closer                      \
                 * took: cut it (for one element too) before handing the chain back. */                     \
                last->next = NULL;                                                                            \
                if (chain)                                                                                    \
                    name##_reverse(head_, &last); /* the caller's chain, in order again */                   \
                return false;                                                                                 \
            }                                                                                                 \
            last->next = old;                                                                                 \
            WEFT_CHAOS();                                                                                     \
        } while (!atomic_compare_exchange_weak_explicit(top, &old, head_, order, memory_order_relaxed));      \
        if (was_empty != NULL)                                                                                \
            *was_empty = old == NULL;                                                                         \
        return true;                                                                                          \
    }                                                                                                         \
    static inline type *name##_take(_Atomic(type *) *top, memory_order order, type **last)                    \
    {                                                                                                         \
        type *t = atomic_exchange_explicit(top, NULL, order);                                                 \
        if (WEFT_UNLIKELY(t == WEFT__INTAKE_CLOSED(type)))                                                     \
            weft_panic(WEFT_SITE, #name "_take on a closed stack: use _take_unless_closed");                  \
        return name##_reverse(t, last);                                                                       \
    }                                                                                                         \
    static inline type *name##_take_unless_closed(_Atomic(type *) *top, memory_order order, type **last)      \
    {                                                                                                         \
        type *t = atomic_load_explicit(top, memory_order_relaxed);                                            \
        *last = NULL;                                                                                         \
        if (t == NULL || t == WEFT__INTAKE_CLOSED(type))                                                      \
            return NULL;                                                                                      \
        t = atomic_exchange_explicit(top, NULL, order);                                                       \
        return name##_reverse(t, last);                                                                       \
    }                                                                                                         \
    static inline type *name##_close(_Atomic(type *) *top, memory_order order, type **last)                   \
    {                                                                                                         \
        type *t = atomic_exchange_explicit(top, WEFT__INTAKE_CLOSED(type), order);                            \
        *last = NULL;                                                                                         \
        if (t == WEFT__INTAKE_CLOSED(type))                                                                   \
            return NULL;                                                                                      \
        return name##_reverse(t, last);                                                                       \
    }

#endif
