/* sync/cancel.c - cancellation tokens and their trees (weft/cancel.h).
 *
 * Structure. A token is one allocation: a reference count, the cancelled
 * flag, its parent (a counted reference: a child keeps its ancestors
 * alive), its link in the parent's child list, its own child list, and the
 * list of its waiting `cancelled` futures (intrusive weft__dnode_t nodes in
 * the futures themselves: waiting allocates nothing). The parent's list
 * holds no reference: a child whose last reference goes unlinks itself,
 * so a parent only ever lists live children, and a tree whose children
 * are created and dropped forever stays the size of what is alive. One
 * spin lock per tree, in the root, guards every list and every store to
 * `cancelled` in the tree; the root outlives its descendants (they hold
 * the chain of references up to it).
 *
 * Invariant: when a token is cancelled, so is every descendant. cancel
 * keeps it by walking the whole subtree under the lock, and a child of a
 * cancelled token is made already cancelled and left out of the tree (a
 * root of its own), so cancelled parents gather no children.
 *  - cancel: lock; already cancelled -> done. Walk the subtree (pre-order,
 *    no recursion: first child, next sibling, back up through `parent`),
 *    storing `cancelled` and moving each token's waiters to one list on
 *    the caller's stack; then pop 32 waiters at a time, taking their
 *    wakers, and unlock to wake each batch. A waiter still on that list
 *    when its owner polls sees `cancelled` and unlinks itself (the list
 *    head is alive: the canceller pops until it is empty).
 *  - cancelled's poll: `cancelled` already set (acquire load) -> ready
 *    without the lock; else under the lock re-check it and queue, cloning
 *    the waker (again only when weft_waker_will_wake says it changed).
 *  - release of the last reference: lock; unlink from the parent; unlock;
 *    free; then release the parent's reference (a loop, not recursion, up
 *    a chain of tokens whose last reference was their child's).
 *
 * Progress: blocking, on a spin lock held for list operations only, never
 * across a wake, a waker drop, a free or a poll. is_cancelled is one load.
 * Who calls what: everything from any thread, on tokens the caller holds a
 * reference to; each future by its one owner.
 *
 * Weaknesses: one lock per tree, so children of one root created and
 * dropped on many threads contend on it (as on the parent's lock in Tokio);
 * cancel holds it for O(subtree) steps; a token whose descendants are
 * alive keeps its own allocation until they go (no reparenting, unlike
 * Tokio), which is bounded by the live tree's depth.
 */
#include <string.h>

#include "../runtime/context.h"
#include "../runtime/list.h"
#include "../runtime/nonnull.h"
#include "waiters.h"
#include "weft/cancel.h"

#define NODE(f) (&(f)->node_)
#define WAITER_OF(d) weft__container_of((d), weft_cancelled_t, node_)
#define CHILD_OF(d) weft__container_of((d), weft_cancel_token_t, sibling)

struct weft_cancel_token_s {
    _Atomic uint32_t refs;
    _Atomic bool cancelled;      /* stored under the tree's lock; read without it */
    weft_cancel_token_t *root;   /* whose lock guards this token (itself for a root) */
    weft_cancel_token_t *parent; /* NULL for a root; a counted reference */
    weft__dnode_t sibling;       /* in parent->children */
    weft__dlist_t children;      /* live children, not counted */
    weft__dlist_t waiters;       /* queued cancelled futures */
    size_t nchildren;            /* length of children (for tests) */
    weft__spin_t lock;           /* the tree's lock: used in a root only */
};

static const weft_waker_t no_waker = { NULL, NULL };
static const weft_future_vtable_t cancelled_vtable;

static weft__spin_t *tree_lock(const weft_cancel_token_t *t)
{
    return &t->root->lock;
}

/* Under the tree's lock: `cancelled` only changes under it. */
static bool cancelled_locked(const weft_cancel_token_t *t)
{
    /* relaxed: the lock we hold orders it (the store is under it too). */
    return atomic_load_explicit(&t->cancelled, memory_order_relaxed);
}

static weft_cancel_token_t *token_alloc(void)
{
    weft_cancel_token_t *t = weft__alloc(sizeof *t);
    if (t == NULL)
        return NULL;
    atomic_init(&t->refs, 1);
    atomic_init(&t->cancelled, false);
    t->root = t;
    t->parent = NULL;
    weft__dnode_init(&t->sibling);
    weft__dlist_init(&t->children);
    weft__dlist_init(&t->waiters);
    t->nchildren = 0;
    atomic_flag_clear_explicit(&t->lock.flag, memory_order_relaxed); /* not shared yet */
    WEFT_LIVE_INC(WEFT_LIVE_CANCEL_TOKEN);
    return t;
}

int weft_cancel_token_new(weft_cancel_token_t **out)
{
    WEFT__REQUIRE("weft_cancel_token_new", out);
    weft_cancel_token_t *t = token_alloc();
    if (t == NULL)
        return WEFT_ENOMEM;
    *out = t;
    return 0;
}

int weft_cancel_token_child(weft_cancel_token_t *parent, weft_cancel_token_t **child)
{
    WEFT__REQUIRE("weft_cancel_token_child", parent);
    WEFT__REQUIRE("weft_cancel_token_child", child);
    weft_cancel_token_t *c = token_alloc(); /* outside the lock */
    if (c == NULL)
        return WEFT_ENOMEM;
    WEFT_CHAOS();
    weft__spin_lock(tree_lock(parent));
    if (cancelled_locked(parent)) {
        /* A root of its own, born cancelled: nothing to link. Only this
         * thread sees c yet. */
        atomic_store_explicit(&c->cancelled, true, memory_order_relaxed);
    } else {
        c->root = parent->root;
        c->parent = weft_cancel_token_retain(parent);
        weft__dlist_push_back(&parent->children, &c->sibling);
        parent->nchildren++;
    }
    weft__spin_unlock(tree_lock(parent));
    *child = c;
    return 0;
}

weft_cancel_token_t *weft_cancel_token_retain(weft_cancel_token_t *t)
{
    WEFT__REQUIRE("weft_cancel_token_retain", t);
    /* relaxed: a new reference is made from one the caller holds, which
     * keeps t alive; the frees are ordered by release's acq_rel. */
    uint32_t prev = atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    if (prev == 0)
        weft_panic(WEFT_SITE, "weft_cancel_token_retain on a token that was already freed");
    return t;
}

/* Drops one reference; returns true when it was the last. */
static bool ref_dec(weft_cancel_token_t *t, const char *fn)
{
    WEFT_CHAOS();
    /* acq_rel: release publishes this owner's use of t to the freer;
     * acquire (in the freer) pairs with every other owner's release. */
    uint32_t prev = atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel);
    if (prev == 0)
        weft_panic(WEFT_SITE, "%s: the token has no reference left", fn);
    return prev == 1;
}

void weft_cancel_token_release(weft_cancel_token_t *t)
{
    WEFT__REQUIRE("weft_cancel_token_release", t);
    if (!ref_dec(t, "weft_cancel_token_release"))
        return;
    while (t != NULL) {
        weft_cancel_token_t *parent = t->parent;
        weft__spin_lock(tree_lock(t));
        bool waited = !weft__dlist_empty(&t->waiters);
        if (parent != NULL) {
            weft__dlist_remove(&t->sibling); /* a cancel walking the tree can no longer reach t */
            parent->nchildren--;
        }
        weft__spin_unlock(tree_lock(t));
        if (waited)
            weft_panic(WEFT_SITE, "weft_cancel_token_release: the last reference went while cancelled futures wait");
        WEFT_LIVE_DEC(WEFT_LIVE_CANCEL_TOKEN);
        weft__free(t, sizeof *t);
        /* t's reference to its parent, now that the parent's lock (maybe
         * the parent's own, if it is the root) is no longer needed. */
        t = (parent != NULL && ref_dec(parent, "weft_cancel_token_release")) ? parent : NULL;
    }
}

/* Under the lock: the next token of t's subtree in pre-order after cur
 * (NULL when done), given that cur's children were already visited or it
 * has none. */
static weft_cancel_token_t *next_up(weft_cancel_token_t *t, weft_cancel_token_t *cur)
{
    while (cur != t) {
        weft__dnode_t *sib = cur->sibling.next;
        if (sib != &cur->parent->children)
            return CHILD_OF(sib);
        cur = cur->parent;
    }
    return NULL;
}

void weft_cancel_token_cancel(weft_cancel_token_t *t)
{
    WEFT__REQUIRE("weft_cancel_token_cancel", t);
    weft__dlist_t woken;
    weft__dlist_init(&woken);
    WEFT_CHAOS();
    weft__spin_lock(tree_lock(t));
    if (cancelled_locked(t)) {
        weft__spin_unlock(tree_lock(t));
        return;
    }
    /* Pre-order walk of the subtree; every token in it is not cancelled
     * yet (the invariant in the file comment). */
    weft_cancel_token_t *cur = t;
    while (cur != NULL) {
        /* release: pairs with the acquire load in is_cancelled and in
         * cancelled's poll: what the canceller wrote before this call is
         * visible to whoever sees the flag. */
        atomic_store_explicit(&cur->cancelled, true, memory_order_release);
        weft__dlist_append_all(&cur->waiters, &woken);
        weft__dnode_t *first = weft__dlist_first(&cur->children);
        cur = first != NULL ? CHILD_OF(first) : next_up(t, cur);
    }
    for (;;) {
        weft__wake_list_t wl;
        weft__wake_list_init(&wl);
        weft__dnode_t *d;
        while (!weft__wake_list_full(&wl) && (d = weft__dlist_pop_front(&woken)) != NULL)
            weft__waiter_take(&WAITER_OF(d)->waker_, &wl);
        bool more = !weft__dlist_empty(&woken);
        weft__spin_unlock(tree_lock(t));
        weft__wake_list_wake(&wl);
        if (!more)
            return;
        WEFT_CHAOS(); /* waiters on `woken` may poll or drop themselves now */
        weft__spin_lock(tree_lock(t));
    }
}

bool weft_cancel_token_is_cancelled(const weft_cancel_token_t *t)
{
    WEFT__REQUIRE("weft_cancel_token_is_cancelled", t);
    /* acquire: pairs with the release store in weft_cancel_token_cancel. */
    return atomic_load_explicit(&t->cancelled, memory_order_acquire);
}

/* For tests: how many live children t lists. Context: any thread. */
size_t weft__cancel_token_children(const weft_cancel_token_t *t)
{
    weft__spin_lock(tree_lock(t));
    size_t n = t->nchildren;
    weft__spin_unlock(tree_lock(t));
    return n;
}

/* ---- The cancelled future ------------------------------------------------- */

weft_cancelled_t weft_cancel_token_cancelled(weft_cancel_token_t *t)
{
    WEFT__REQUIRE("weft_cancel_token_cancelled", t);
    weft_cancelled_t f;
    memset(&f, 0, sizeof f);
    f.future.vtable = &cancelled_vtable;
    f.token_ = t;
    f.waker_ = no_waker;
    f.queued_ = false;
    return f;
}

static weft_poll_t cancelled_poll(weft_future_t *fut, weft_context_t *cx, void *out)
{
    weft_cancelled_t *f = (weft_cancelled_t *)(void *)fut;
    weft_cancel_token_t *t = f->token_;
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    /* acquire: pairs with the release store in weft_cancel_token_cancel. */
    bool done = !f->queued_ && atomic_load_explicit(&t->cancelled, memory_order_acquire);
    if (!done) {
        weft_waker_t old = no_waker;
        WEFT_CHAOS();
        weft__spin_lock(tree_lock(t));
        done = cancelled_locked(t);
        if (done) {
            if (f->queued_ && weft__dnode_linked(NODE(f)))
                weft__dlist_remove(NODE(f)); /* still on the canceller's list */
            old = f->waker_;
            f->waker_ = no_waker;
        } else {
            if (!f->queued_) {
                weft__dnode_init(NODE(f)); /* here: the future may have moved before */
                weft__dlist_push_back(&t->waiters, NODE(f));
            }
            if (f->waker_.vtable == NULL || !weft_waker_will_wake(&f->waker_, cx->waker)) {
                old = f->waker_;
                f->waker_ = weft_waker_clone(cx->waker);
            }
        }
        weft__spin_unlock(tree_lock(t));
        f->queued_ = !done;
        weft_waker_drop(&old); /* outside the lock */
        if (!done) {
            weft__coop_refund();
            return WEFT_PENDING;
        }
    }
    if (out != NULL)
        *(weft_unit_t *)out = WEFT_UNIT;
    return WEFT_READY;
}

static void cancelled_drop(weft_future_t *fut)
{
    weft_cancelled_t *f = (weft_cancelled_t *)(void *)fut;
    if (!f->queued_)
        return;
    weft_cancel_token_t *t = f->token_;
    WEFT_CHAOS();
    weft__spin_lock(tree_lock(t));
    if (weft__dnode_linked(NODE(f)))
        weft__dlist_remove(NODE(f));
    weft_waker_t mine = f->waker_;
    f->waker_ = no_waker;
    weft__spin_unlock(tree_lock(t));
    f->queued_ = false;
    weft_waker_drop(&mine);
}

static const weft_future_vtable_t cancelled_vtable = {
    cancelled_poll, cancelled_drop, NULL, sizeof(weft_cancelled_t), 0, "weft_cancelled",
};

/* ---- Drop guard ------------------------------------------------------------- */

weft_cancel_guard_t weft_cancel_token_cancel_on_drop(weft_cancel_token_t *t)
{
    WEFT__REQUIRE("weft_cancel_token_cancel_on_drop", t);
    return (weft_cancel_guard_t){ t };
}

void weft_cancel_guard_drop(weft_cancel_guard_t *g)
{
    WEFT__REQUIRE("weft_cancel_guard_drop", g);
    weft_cancel_token_t *t = g->token_;
    if (t == NULL)
        return;
    g->token_ = NULL;
    weft_cancel_token_cancel(t);
    weft_cancel_token_release(t);
}

weft_cancel_token_t *weft_cancel_guard_disarm(weft_cancel_guard_t *g)
{
    WEFT__REQUIRE("weft_cancel_guard_disarm", g);
    weft_cancel_token_t *t = g->token_;
    g->token_ = NULL;
    return t;
}
