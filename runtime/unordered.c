/* runtime/unordered.c - FuturesUnordered: a set of futures polled by one
 * task, each only when its own waker fired.
 *
 * Design. Each member lives in a node (one allocation per push) that also
 * is its waker: the waker's data is the node, and the node is reference
 * counted (one reference held by the set until the member is finished, one
 * per waker clone). Waking a member pushes its node onto the set's *ready
 * stack*, the lock-free intake stack of runtime/list.h that lives in the
 * hub, a small shared allocation that the nodes keep alive (a waker may
 * outlive the set). The first push onto an empty stack also wakes the
 * task that owns the set, through the hub's atomic waker. A poll of
 * weft_unordered_next takes the whole stack at once, in wake order, onto
 * the set's private ready list, and polls members from that list until
 * one finishes: a wake costs one exchange, one CAS and at most one task
 * wake, and a poll touches only the members that were woken.
 *
 * The `queued` flag makes a node's wakes idempotent: only the wake that
 * turns it from false to true pushes the node; the poller clears it just
 * before polling the member, so a wake during that poll queues the node
 * again (it is then polled in the set's next poll, not this one: each poll
 * is a round, numbered, and a node stamped with the current round ends
 * the poll with a yield). A finished member's node keeps `queued` true for
 * ever, so late wakes do nothing; if it was queued when it finished, the
 * set's reference passes to the queue, and whoever takes the node from the
 * queue releases it. Most members end with no waker left (the resource
 * woke them by value, or dropped its waker with the member): the owner
 * sees the set's reference alone and frees the node without an atomic
 * write, and the node's hub reference goes back to the set's credit
 * (hub_credit_), so the hub's counter is not touched per member either.
 *
 * Progress: wakes are lock-free (one CAS loop on the stack's top); the
 * owner's calls never wait for a waker. Memory ordering: the stack's push
 * is a release CAS and its take an acquire exchange (list.h), so what a
 * waker wrote before waking is visible to the member's next poll; the
 * `queued` exchanges are acq_rel on both sides, so that a wake which found
 * the flag still set (and pushed nothing) is ordered before the poller's
 * clearing of it, and the member's poll sees what the waker published
 * (the poller clears it with a plain store only when no waker exists to
 * race it). Reference counts are acq_rel on the variable, not fences,
 * which TSan does not model.
 *
 * Weaknesses: one allocation per push (no node reuse: a node's last
 * reference may be dropped on any thread); the set's owner must not call
 * it from two threads at once (it has no lock of its own).
 */
#include <string.h>

#include "internal.h"
#include "list.h"
#include "nonnull.h"
#include "context.h"
#include "unordered_internal.h"

/* References to the hub the set takes at once: a node holds one while it
 * lives, and most nodes are freed by the set's owner, which puts the
 * reference back in its own credit; so the hub's counter is touched once
 * per this many pushes instead of twice per member. */
#define HUB_CREDIT_BATCH 1024

/* Polls in one poll of next in which no member finished before it yields
 * to the scheduler, so a set that keeps waking its own members (or has
 * many new ones) cannot hold its worker; futures-rs yields after 32 too. */
#define UNORDERED_POLLS_PER_ROUND 32

typedef struct weft__unordered_hub {
    _Atomic(struct weft__unordered_node *) ready; /* the intake stack of woken nodes */
    /* The set's owner: woken by the push that makes `ready` non-empty. */
    weft_atomic_waker_t owner;
    /* One for the set (until weft_unordered_destroy), one per live node
     * (the set takes them in batches: hub_credit_). */
    _Atomic size_t refs;
} hub_t;

/* 64 bytes before the member on LP64: what a waker touches (next, refs,
 * queued) shares the first cache line with what the owner reads first. */
typedef struct weft__unordered_node {
    struct weft__unordered_node *next; /* link on the ready stack, then on the set's ready list */
    hub_t *hub;
    _Atomic uint32_t refs; /* the set's (until finished) + one per waker clone */
    _Atomic bool queued;   /* on the ready stack or list, or finished */
    /* The owner's fields (only the set's owner reads or writes them). */
    bool done; /* finished (or the set destroyed): the member is dropped */
    struct weft__unordered_node *all_prev, *all_next; /* the set's unfinished members */
    uintptr_t tag;
    uint32_t round; /* the set's poll that last polled it */
    uint32_t size;  /* of the allocation */
    _Alignas(max_align_t) unsigned char fut[]; /* the member, fut->vtable->size bytes */
} node_t;

WEFT__INTAKE_GEN(ready_stack, node_t, next)

static weft_future_t *node_fut(node_t *n)
{
    return (weft_future_t *)(void *)n->fut;
}

/* ---- Lifetimes ------------------------------------------------------------- */

static void hub_release_n(hub_t *h, size_t refs)
{
    /* acq_rel: release orders our uses of the hub before its free; acquire
     * (for the last one) pairs with the other holders' decrements. On the
     * variable rather than a fence: TSan does not model fences. */
    if (atomic_fetch_sub_explicit(&h->refs, refs, memory_order_acq_rel) != refs)
        return;
    weft_atomic_waker_drop(&h->owner);
    WEFT_LIVE_DEC(WEFT_LIVE_UNORDERED);
    weft__free(h, sizeof *h);
}

static void hub_release(hub_t *h)
{
    hub_release_n(h, 1);
}

static void node_release(node_t *n)
{
    /* acq_rel, as in hub_release_n: pairs with the other holders'
     * decrements (and node_owned_alone's acquire load). */
    if (atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) != 1)
        return;
    hub_t *h = n->hub;
    WEFT_LIVE_DEC(WEFT_LIVE_UNORDERED);
    weft__free(n, n->size);
    hub_release(h);
}

/* Frees n on the owner's thread when only the set's reference is left:
 * its hub reference goes back to the set's credit. */
static void node_free_owned(weft_unordered_t *s, node_t *n)
{
    WEFT_LIVE_DEC(WEFT_LIVE_UNORDERED);
    weft__free(n, n->size);
    s->hub_credit_++;
}

/* True when the set's reference is the only one: no waker of n exists, so
 * no other thread can touch n until the owner makes one (by polling it). */
static bool node_owned_alone(node_t *n)
{
    /* acquire: pairs with the release decrement of the last waker's drop
     * (node_release), so everything its holder did to n happened before. */
    return atomic_load_explicit(&n->refs, memory_order_acquire) == 1;
}

/* ---- The members' waker ----------------------------------------------------- */

/* Queues n for the set's next poll, waking the set's owner if the queue
 * was empty. Context: any thread. */
static void node_enqueue(node_t *n)
{
    /* acq_rel: pairs with the exchange in unordered_poll_one (see the file
     * comment); only the wake that finds it false pushes. */
    if (atomic_exchange_explicit(&n->queued, true, memory_order_acq_rel))
        return;
    hub_t *h = n->hub;
    WEFT_CHAOS();
    bool was_empty = false;
    /* release: publishes the node and what the waker wrote before this
     * wake to the owner's take (acquire, in take_woken). */
    if (!ready_stack_push(&h->ready, n, n, false, memory_order_release, &was_empty)) {
        /* The set was destroyed after this wake set `queued` (destroy saw
         * it set and handed the set's reference to the queue): release it.
         * acquire: pairs with the release of the close in
         * weft_unordered_destroy, so the set's last touches of n (its
         * member's drop) happen before a free here. */
        (void)atomic_load_explicit(&h->ready, memory_order_acquire);
        node_release(n);
        return;
    }
    if (was_empty) /* an earlier push woke the owner, who has not taken the stack yet */
        weft_atomic_waker_wake(&h->owner);
}

static weft_waker_t node_clone(const void *d);
static void node_wake_by_ref(const void *d)
{
    node_enqueue((node_t *)(uintptr_t)d);
}
static void node_wake(const void *d)
{
    node_enqueue((node_t *)(uintptr_t)d);
    node_release((node_t *)(uintptr_t)d);
}
static void node_drop(const void *d)
{
    node_release((node_t *)(uintptr_t)d);
}
static const weft_waker_vtable_t node_waker_vtable = { node_clone, node_wake, node_wake_by_ref, node_drop };
static weft_waker_t node_clone(const void *d)
{
    /* relaxed: the caller already holds a reference (as Arc::clone). */
    if (WEFT_UNLIKELY(atomic_fetch_add_explicit(&((node_t *)(uintptr_t)d)->refs, 1, memory_order_relaxed) >=
                      UINT32_MAX - 1))
        weft_panic(WEFT_SITE, "weft_unordered: a member's waker was cloned 2^32 times (leaked wakers?)");
    return (weft_waker_t){ &node_waker_vtable, d };
}

/* ---- The set's ready list (owner only) ------------------------------------ */

/* The list of unfinished members is NULL-terminated (not circular through
 * the set), so that the set itself may be moved before it is polled. */
static void all_insert(weft_unordered_t *s, node_t *n)
{
    n->all_prev = NULL;
    n->all_next = s->all_;
    if (s->all_ != NULL)
        s->all_->all_prev = n;
    s->all_ = n;
}

static void all_remove(weft_unordered_t *s, node_t *n)
{
    if (n->all_prev != NULL)
        n->all_prev->all_next = n->all_next;
    else
        s->all_ = n->all_next;
    if (n->all_next != NULL)
        n->all_next->all_prev = n->all_prev;
}

static void ready_append(weft_unordered_t *s, node_t *first, node_t *last)
{
    last->next = NULL;
    if (s->ready_tail_ == NULL)
        s->ready_head_ = first;
    else
        s->ready_tail_->next = first;
    s->ready_tail_ = last;
}

static void ready_push_front(weft_unordered_t *s, node_t *n)
{
    n->next = s->ready_head_;
    s->ready_head_ = n;
    if (s->ready_tail_ == NULL)
        s->ready_tail_ = n;
}

static node_t *ready_pop(weft_unordered_t *s)
{
    node_t *n = s->ready_head_;
    if (n != NULL) {
        s->ready_head_ = n->next;
        if (s->ready_head_ == NULL)
            s->ready_tail_ = NULL;
    }
    return n;
}

/* Moves what the wakers queued onto the ready list; false when nothing was. */
static bool take_woken(weft_unordered_t *s)
{
    node_t *last;
    /* acquire: pairs with the release CAS in node_enqueue. */
    node_t *first = ready_stack_take(&s->hub_->ready, memory_order_acquire, &last);
    if (first == NULL)
        return false;
    /* The member itself (past the first cache line) is read next. */
    __builtin_prefetch(first->fut);
    ready_append(s, first, last);
    return true;
}

/* ---- Members finishing ------------------------------------------------------- */

/* Drops n's member and gives up the set's reference (to the queue, if n is
 * queued: whoever takes it from there releases it). */
static void member_finish(weft_unordered_t *s, node_t *n)
{
    all_remove(s, n);
    s->len_--;
    n->done = true;
    weft_future_drop(node_fut(n));
    /* No waker left and not queued: nothing else can reach n, free it here
     * (the usual end: the wake that finished it was a wake by value). */
    if (node_owned_alone(n) && !atomic_load_explicit(&n->queued, memory_order_relaxed)) {
        node_free_owned(s, n);
        return;
    }
    /* acq_rel: pairs with node_enqueue's exchange; true from now on, so
     * later wakes do nothing. */
    if (!atomic_exchange_explicit(&n->queued, true, memory_order_acq_rel))
        node_release(n);
}

/* ---- Public calls ------------------------------------------------------------- */

void weft_unordered_init(weft_unordered_t *set)
{
    WEFT__REQUIRE("weft_unordered_init", set);
    *set = (weft_unordered_t){ .hub_ = NULL, .all_ = NULL, .ready_head_ = NULL, .ready_tail_ = NULL, .len_ = 0 };
}

int weft_unordered_push(weft_unordered_t *set, weft_future_t *fut, uintptr_t tag)
{
    WEFT__REQUIRE("weft_unordered_push", set);
    WEFT__REQUIRE("weft_unordered_push", fut);
    size_t fsize = fut->vtable->size;
    if (fsize < sizeof(weft_future_t) || fsize > UINT32_MAX - sizeof(node_t))
        weft_panic(WEFT_SITE, "weft_unordered_push: %s declares size %zu, not the size of a future",
                   fut->vtable->name != NULL ? fut->vtable->name : "the future", fsize);
    if (set->hub_ == NULL) {
        hub_t *h = weft__alloc(sizeof *h);
        if (h == NULL)
            return WEFT_ENOMEM;
        atomic_init(&h->ready, NULL);
        weft_atomic_waker_init(&h->owner);
        atomic_init(&h->refs, 1 + HUB_CREDIT_BATCH);
        WEFT_LIVE_INC(WEFT_LIVE_UNORDERED);
        set->hub_ = h;
        set->hub_credit_ = HUB_CREDIT_BATCH;
    }
    size_t size = sizeof(node_t) + fsize;
    node_t *n = weft__alloc(size);
    if (n == NULL)
        return WEFT_ENOMEM;
    WEFT_LIVE_INC(WEFT_LIVE_UNORDERED);
    n->hub = set->hub_;
    if (set->hub_credit_ == 0) {
        /* relaxed: the set holds a reference already (as Arc::clone). */
        atomic_fetch_add_explicit(&set->hub_->refs, HUB_CREDIT_BATCH, memory_order_relaxed);
        set->hub_credit_ = HUB_CREDIT_BATCH;
    }
    set->hub_credit_--;
    atomic_init(&n->refs, 1);      /* the set's */
    atomic_init(&n->queued, true); /* on the ready list below, for its first poll */
    all_insert(set, n);
    n->tag = tag;
    n->round = set->round_ - 1; /* not polled in the current round */
    n->done = false;
    n->size = (uint32_t)size;
    memcpy(n->fut, fut, fsize);
    ready_append(set, n, n);
    set->len_++;
    return 0;
}

size_t weft_unordered_len(const weft_unordered_t *set)
{
    WEFT__REQUIRE("weft_unordered_len", set);
    return set->len_;
}

bool weft_unordered_is_empty(const weft_unordered_t *set)
{
    WEFT__REQUIRE("weft_unordered_is_empty", set);
    return set->len_ == 0;
}

void weft_unordered_destroy(weft_unordered_t *set)
{
    WEFT__REQUIRE("weft_unordered_destroy", set);
    if (set->polling_)
        weft_panic(WEFT_SITE, "weft_unordered_destroy called from inside a poll of one of the set's members");
    hub_t *h = set->hub_;
    if (h == NULL)
        return;
    /* Drop the members. A member's drop may wake another member (which is
     * then queued as usual) but must not push into this set. */
    set->polling_ = true;
    while (set->all_ != NULL)
        member_finish(set, set->all_);
    set->polling_ = false;
    /* Every node is now done with `queued` set: nothing is pushed any more
     * except by a wake that set it before member_finish did; close the
     * stack so that such a push fails and releases its node itself. */
    node_t *last, *n;
    for (n = ready_pop(set); n != NULL; n = ready_pop(set))
        node_release(n);
    /* acq_rel: acquire pairs with node_enqueue's release CAS; release
     * pairs with the acquire load of a push that fails on the closed stack. */
    for (n = ready_stack_close(&h->ready, memory_order_acq_rel, &last); n != NULL;) {
        node_t *next = n->next;
        node_release(n);
        n = next;
    }
    set->hub_ = NULL;
    hub_release_n(h, 1 + set->hub_credit_);
    set->hub_credit_ = 0;
}

/* Polls n (taken from the ready list) with out as its destination. */
static weft_poll_t unordered_poll_one(weft_unordered_t *set, node_t *n, uint32_t round, void *out)
{
    n->round = round;
    /* Cleared before the poll so that a wake during it queues the node
     * again. With no waker in existence (the first poll, or after a wake by
     * value) nobody can race the store; otherwise acq_rel pairs with
     * node_enqueue (see the file comment). */
    if (node_owned_alone(n))
        atomic_store_explicit(&n->queued, false, memory_order_relaxed);
    else
        atomic_exchange_explicit(&n->queued, false, memory_order_acq_rel);
    weft_waker_t w = { &node_waker_vtable, n }; /* borrowed: the set's reference keeps n alive */
    weft_context_t mcx = { &w };
    set->polling_ = true;
    weft_poll_t r = weft_future_poll(node_fut(n), &mcx, out);
    set->polling_ = false;
    return r;
}

static weft_poll_t next_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_unordered_next_t *nx = (weft_unordered_next_t *)(void *)f;
    weft_unordered_t *set = nx->set_;
    if (set->len_ == 0) {
        if (out != NULL)
            *(bool *)out = false;
        return WEFT_READY;
    }
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING; /* it woke us: the budget is spent */
    uint32_t round = ++set->round_;
    unsigned polls = 0;
    for (;;) {
        node_t *n = ready_pop(set);
        if (n == NULL) {
            if (take_woken(set))
                continue;
            /* Nothing queued: register, then look once more, so that a
             * wake between the take above and the registration is seen. */
            weft_atomic_waker_register(&set->hub_->owner, cx->waker);
            if (take_woken(set))
                continue;
            weft__coop_refund();
            return WEFT_PENDING;
        }
        if (n->done) { /* woken while it finished: the queue held the set's reference */
            node_release(n);
            continue;
        }
        if (n->round == round || polls == UNORDERED_POLLS_PER_ROUND) {
            /* Polled in this round already (woken during it), or the round
             * is long enough: let the scheduler run others first. */
            ready_push_front(set, n);
            weft_waker_wake_by_ref(cx->waker);
            weft__coop_refund();
            return WEFT_PENDING;
        }
        polls++;
        if (unordered_poll_one(set, n, round, nx->out_) == WEFT_READY) {
            if (nx->tag_ != NULL)
                *nx->tag_ = n->tag;
            member_finish(set, n);
            if (out != NULL)
                *(bool *)out = true;
            return WEFT_READY;
        }
    }
}

static const weft_future_vtable_t next_vtable = {
    next_poll, NULL, NULL, sizeof(weft_unordered_next_t), sizeof(bool), "weft_unordered_next",
};

weft_unordered_next_t weft_unordered_next(weft_unordered_t *set, uintptr_t *tag, void *out)
{
    WEFT__REQUIRE("weft_unordered_next", set);
    return (weft_unordered_next_t){ { &next_vtable }, set, tag, out };
}

/* ---- For weft_joinset_t (runtime/joinset.c; runtime/unordered_internal.h) -- */

weft_future_t *weft__unordered_newest(weft_unordered_t *set)
{
    /* all_insert puts a pushed node at the head of the list. */
    return set->all_ != NULL ? node_fut(set->all_) : NULL;
}

void weft__unordered_remove_newest(weft_unordered_t *set)
{
    if (set->all_ != NULL)
        member_finish(set, set->all_);
}

void weft__unordered_for_each(weft_unordered_t *set, void (*fn)(weft_future_t *member, void *arg), void *arg)
{
    for (node_t *n = set->all_; n != NULL; n = n->all_next)
        fn(node_fut(n), arg);
}
