/* runtime/future.c - the leaf futures (ready, pending, yield_now), the noop
 * waker, async-frame support, and join of two or N futures. */
#include <string.h>

#include "internal.h"
#include "nonnull.h"

/* ---- Noop waker ------------------------------------------------------------ */

static weft_waker_t noop_clone(const void *d);
static void noop_fn(const void *d) { (void)d; }
static const weft_waker_vtable_t noop_vtable = { noop_clone, noop_fn, noop_fn, noop_fn };
static weft_waker_t noop_clone(const void *d) { return (weft_waker_t){ &noop_vtable, d }; }

weft_waker_t weft_waker_noop(void)
{
    return (weft_waker_t){ &noop_vtable, NULL };
}

/* ---- Leaf futures ------------------------------------------------------------ */

static weft_poll_t ready_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx;
    if (out != NULL)
        *(intptr_t *)out = ((weft_ready_t *)(void *)f)->value_;
    return WEFT_READY;
}
static const weft_future_vtable_t ready_vtable = {
    ready_poll, NULL, NULL, sizeof(weft_ready_t), sizeof(intptr_t), "weft_ready",
};
weft_ready_t weft_ready(intptr_t value)
{
    return (weft_ready_t){ { &ready_vtable }, value };
}

static weft_poll_t pending_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx, (void)out;
    return WEFT_PENDING; /* never wakes: only drop ends it */
}
static const weft_future_vtable_t pending_vtable = {
    pending_poll, NULL, NULL, sizeof(weft_pending_t), 0, "weft_pending",
};
weft_pending_t weft_pending(void)
{
    return (weft_pending_t){ { &pending_vtable } };
}

static weft_poll_t yield_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_yield_t *y = (weft_yield_t *)(void *)f;
    if (y->yielded_) {
        if (out != NULL)
            *(weft_unit_t *)out = WEFT_UNIT;
        return WEFT_READY;
    }
    y->yielded_ = true;
    weft_waker_wake_by_ref(cx->waker);
    return WEFT_PENDING;
}
static const weft_future_vtable_t yield_vtable = {
    yield_poll, NULL, NULL, sizeof(weft_yield_t), 0, "weft_yield_now",
};
weft_yield_t weft_yield_now(void)
{
    return (weft_yield_t){ { &yield_vtable }, false };
}

/* ---- Async frames -------------------------------------------------------- */

/* __func__ inside a body is "<name>__body": print <name>. */
static int fn_len(const char *fn)
{
    size_t n = strlen(fn);
    if (n > 6 && strcmp(fn + n - 6, "__body") == 0)
        n -= 6;
    return (int)n;
}

/* The owned children (WEFT_OWN) form a list of weft_owned_t nodes, fields
 * of the frame, linked by their offsets from the frame: the head's offset
 * fits in the header's padding on 64-bit targets, so a frame that owns
 * nothing pays nothing but that one word's check at each await. */
#ifdef __LP64__
_Static_assert(sizeof(weft_frame_t) == 3 * sizeof(void *), "the owned-children head must stay in padding");
#endif

static weft_owned_t *owned_at(weft_frame_t *fr, uint32_t off)
{
    return off == 0 ? NULL : (weft_owned_t *)(void *)((char *)fr + off);
}

void weft__frame_own(weft_frame_t *fr, weft_owned_t *node, weft_future_t *child, const char *fn, const char *site)
{
    /* A node outside the frame has no offset that fits (the subtraction
     * wraps for one below it). */
    uintptr_t off = (uintptr_t)node - (uintptr_t)fr;
    if (node == NULL || off < sizeof(weft_frame_t) || off > fr->future.vtable->size - sizeof(weft_owned_t))
        weft_panic(site, "async function %.*s: WEFT_OWN's node must be a weft_owned_t field of the frame",
                   fn_len(fn), fn);
    if (child == NULL || child->vtable == NULL)
        weft_panic(site, "async function %.*s: WEFT_OWN of something that is not a future", fn_len(fn), fn);
    if (node->fut_ != NULL)
        weft_panic(site, "async function %.*s: WEFT_OWN's node already owns a child (one node per child)",
                   fn_len(fn), fn);
    node->fut_ = child;
    node->next_ = fr->owned_;
    fr->owned_ = (uint32_t)off;
}

/* The link (the header's or a node's next_) that leads to child's node,
 * or NULL when the frame does not own child. */
static uint32_t *owned_link(weft_frame_t *fr, const weft_future_t *child)
{
    uint32_t *link = &fr->owned_;
    for (weft_owned_t *n = owned_at(fr, *link); n != NULL; n = owned_at(fr, *link)) {
        if (n->fut_ == child)
            return link;
        link = &n->next_;
    }
    return NULL;
}

static weft_future_t *unlink_owned(weft_frame_t *fr, uint32_t *link)
{
    weft_owned_t *n = owned_at(fr, *link);
    weft_future_t *c = n->fut_;
    *link = n->next_;
    n->fut_ = NULL;
    n->next_ = 0;
    return c;
}

weft_future_t *weft__frame_disown(weft_frame_t *fr, weft_future_t *child)
{
    uint32_t *link = owned_link(fr, child);
    if (link != NULL)
        unlink_owned(fr, link);
    return child;
}

void weft__frame_drop_owned(weft_frame_t *fr, weft_future_t *child)
{
    uint32_t *link = owned_link(fr, child);
    if (link != NULL)
        weft_future_drop(unlink_owned(fr, link));
}

void weft_frame_drop(weft_future_t *f)
{
    weft_frame_t *fr = (weft_frame_t *)(void *)f;
    if (fr->awaiting_ != NULL) {
        weft_future_t *c = fr->awaiting_;
        fr->awaiting_ = NULL;
        weft_future_drop(c);
    }
    /* Last owned first (a later child may borrow an earlier one), each
     * unlinked before its drop runs. */
    while (fr->owned_ != 0)
        weft_future_drop(unlink_owned(fr, &fr->owned_));
}

void weft__async_bad_state(const weft_frame_t *fr, const char *fn, const char *site)
{
    if (fr->state_ == WEFT_STATE_DONE)
        weft_panic(site, "async function %.*s polled after it completed", fn_len(fn), fn);
    weft_panic(site, "async function %.*s: corrupt resume point %u (frame overwritten?)", fn_len(fn), fn,
               (unsigned)fr->state_);
}

void weft__async_fell_off(const char *fn, const char *site)
{
    weft_panic(site, "async function %.*s reached WEFT_END without WEFT_RETURN", fn_len(fn), fn);
}

void weft__await_check(const weft_future_t *child, const void *out, size_t out_size, const char *fn,
                       const char *site)
{
    if (out == NULL || out_size == 0) /* no output wanted, or an untyped destination */
        return;
    if (child == NULL || child->vtable == NULL)
        weft_panic(site, "async function %.*s awaits something that is not a future (NULL or no vtable)",
                   fn_len(fn), fn);
    /* A weft_unit_t output declares out_size 0 (a task reserves no room
     * for it) but is written as one weft_unit_t when out is not NULL. */
    size_t want = child->vtable->out_size != 0 ? child->vtable->out_size : sizeof(weft_unit_t);
    if (out_size != want)
        weft_panic(site,
                   "async function %.*s awaits %s, whose output is %zu bytes, into a %zu-byte destination "
                   "(wrong output variable?)",
                   fn_len(fn), fn, child->vtable->name != NULL ? child->vtable->name : "a future", want, out_size);
}

/* ---- join2 ----------------------------------------------------------------- */

static weft_poll_t join2_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_join2_t *j = (weft_join2_t *)(void *)f;
    if (j->a_ != NULL && weft_future_poll(j->a_, cx, j->out_a_) == WEFT_READY) {
        weft_future_drop(j->a_);
        j->a_ = NULL;
    }
    if (j->b_ != NULL && weft_future_poll(j->b_, cx, j->out_b_) == WEFT_READY) {
        weft_future_drop(j->b_);
        j->b_ = NULL;
    }
    if (j->a_ != NULL || j->b_ != NULL)
        return WEFT_PENDING;
    if (out != NULL)
        *(weft_unit_t *)out = WEFT_UNIT;
    return WEFT_READY;
}

static void join2_drop(weft_future_t *f)
{
    weft_join2_t *j = (weft_join2_t *)(void *)f;
    if (j->a_ != NULL)
        weft_future_drop(j->a_);
    if (j->b_ != NULL)
        weft_future_drop(j->b_);
    j->a_ = j->b_ = NULL;
}

static const weft_future_vtable_t join2_vtable = {
    join2_poll, join2_drop, NULL, sizeof(weft_join2_t), 0, "weft_join2",
};

weft_join2_t weft_join2(weft_future_t *a, void *out_a, weft_future_t *b, void *out_b)
{
    WEFT__REQUIRE("weft_join2", a);
    WEFT__REQUIRE("weft_join2", b);
    return (weft_join2_t){ { &join2_vtable }, a, b, out_a, out_b };
}

/* ---- join_all --------------------------------------------------------------- */

static weft_poll_t join_all_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_join_all_t *j = (weft_join_all_t *)(void *)f;
    for (size_t i = 0; i < j->n_ && j->remaining_ > 0; i++) {
        weft_future_t *c = j->futs_[i];
        if (c == NULL)
            continue;
        if (weft_future_poll(c, cx, j->outs_ ? j->outs_[i] : NULL) == WEFT_READY) {
            weft_future_drop(c);
            j->futs_[i] = NULL;
            j->remaining_--;
        }
    }
    if (j->remaining_ > 0)
        return WEFT_PENDING;
    if (out != NULL)
        *(weft_unit_t *)out = WEFT_UNIT;
    return WEFT_READY;
}

static void join_all_drop(weft_future_t *f)
{
    weft_join_all_t *j = (weft_join_all_t *)(void *)f;
    for (size_t i = 0; i < j->n_; i++) {
        if (j->futs_[i] != NULL) {
            weft_future_t *c = j->futs_[i];
            j->futs_[i] = NULL;
            weft_future_drop(c);
        }
    }
    j->remaining_ = 0;
}

static const weft_future_vtable_t join_all_vtable = {
    join_all_poll, join_all_drop, NULL, sizeof(weft_join_all_t), 0, "weft_join_all",
};

weft_join_all_t weft_join_all(weft_future_t **futs, void **outs, size_t n)
{
    if (n > 0)
        WEFT__REQUIRE("weft_join_all", futs);
    size_t live = 0;
    for (size_t i = 0; i < n; i++)
        live += futs[i] != NULL;
    return (weft_join_all_t){ { &join_all_vtable }, futs, outs, n, live };
}
