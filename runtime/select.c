/* runtime/select.c - select (race futures, the first to finish wins) and
 * try_join (join futures with int outputs, stop at the first error).
 *
 * Both are plain futures over children that live in the caller's frame,
 * like weft_join2 in runtime/future.c: no allocation, no state beyond the
 * children's pointers. A select decides in the poll where a child first
 * returns WEFT_READY; before it returns, it drops every owned arm (the
 * winner, whose output is already written, and the losers, which are
 * cancelled by the drop), so the caller sees a decided select with nothing
 * of the race left running.
 *
 * Fairness: a fair select starts each poll at an arm chosen by a
 * per-thread xorshift generator, as Tokio's select! does with its
 * thread-local FastRand. A counter kept in the select would not do: a
 * select in a loop is constructed anew each round and would always start
 * at arm 0, so a first arm that is always ready would starve the others.
 */
#include "internal.h"
#include "nonnull.h"

/* ---- Per-thread random start --------------------------------------------- */

/* xorshift32 (Marsaglia): a few instructions, good enough to spread the
 * start arm; never 0 once seeded. */
static _Thread_local uint32_t select_rng;

static uint32_t rng_next(void)
{
    uint32_t x = select_rng;
    if (WEFT_UNLIKELY(x == 0)) /* first use on this thread: seed from time and the thread */
        x = (uint32_t)(weft__now_ns() ^ (uintptr_t)&select_rng) | 1u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    select_rng = x;
    return x;
}

/* A uniform index in [0, n) without a division (Lemire's multiply-shift). */
static uint32_t rng_below(uint32_t n)
{
    return (uint32_t)(((uint64_t)rng_next() * n) >> 32);
}

/* ---- select ------------------------------------------------------------------ */

static weft_select_arm_t *select_arms(weft_select_t *s)
{
    return s->ext_ != NULL ? s->ext_ : s->arms_;
}

/* Drops every owned arm still held and forgets every arm, so that neither
 * a later drop of the select nor the caller's array sees them again. */
static void select_release(weft_select_t *s)
{
    weft_select_arm_t *arms = select_arms(s);
    for (uint32_t i = 0; i < s->n_; i++) {
        weft_future_t *f = arms[i].fut;
        if (f == NULL)
            continue;
        arms[i].fut = NULL;
        if (arms[i].kind == WEFT_ARM_OWNED)
            weft_future_drop(f);
    }
}

static weft_poll_t select_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_select_t *s = (weft_select_t *)(void *)f;
    weft_select_arm_t *arms = select_arms(s);
    uint32_t n = s->n_;
    uint32_t i = (s->biased_ || n < 2) ? 0 : rng_below(n);
    int winner = WEFT_SELECT_ELSE;
    bool enabled = false;
    for (uint32_t k = 0; k < n; k++, i = (i + 1 == n) ? 0 : i + 1) {
        if (arms[i].fut == NULL)
            continue; /* disabled by its precondition: never polled */
        enabled = true;
        if (weft_future_poll(arms[i].fut, cx, arms[i].out) == WEFT_READY) {
            winner = (int)i;
            break;
        }
    }
    if (enabled && winner == WEFT_SELECT_ELSE)
        return WEFT_PENDING;
    select_release(s);
    if (out != NULL)
        *(int *)out = winner;
    return WEFT_READY;
}

static void select_drop(weft_future_t *f)
{
    select_release((weft_select_t *)(void *)f);
}

static const weft_future_vtable_t select_vtable = {
    select_poll, select_drop, NULL, sizeof(weft_select_t), sizeof(int), "weft_select",
};

static weft_select_t select_make(const weft_select_arm_t *arms, size_t n, bool biased, const char *fn)
{
    if (n > WEFT_SELECT_MAX)
        weft_panic(WEFT_SITE, "%s: %zu arms, at most WEFT_SELECT_MAX (%d): use weft_select_array", fn, n,
                   WEFT_SELECT_MAX);
    weft_select_t s = { { &select_vtable }, NULL, (uint32_t)n, biased, { { NULL, NULL, WEFT_ARM_OWNED } } };
    for (size_t i = 0; i < n; i++)
        s.arms_[i] = arms[i];
    return s;
}

weft_select_t weft_select(const weft_select_arm_t *arms, size_t n)
{
    if (n > 0)
        WEFT__REQUIRE("weft_select", arms);
    return select_make(arms, n, false, "weft_select");
}

weft_select_t weft_select_biased(const weft_select_arm_t *arms, size_t n)
{
    if (n > 0)
        WEFT__REQUIRE("weft_select_biased", arms);
    return select_make(arms, n, true, "weft_select_biased");
}

static weft_select_t select2_make(weft_future_t *a, void *out_a, weft_future_t *b, void *out_b, bool biased)
{
    const weft_select_arm_t arms[2] = { { a, out_a, WEFT_ARM_OWNED }, { b, out_b, WEFT_ARM_OWNED } };
    return select_make(arms, 2, biased, biased ? "weft_select2_biased" : "weft_select2");
}

weft_select_t weft_select2(weft_future_t *a, void *out_a, weft_future_t *b, void *out_b)
{
    WEFT__REQUIRE("weft_select2", a);
    WEFT__REQUIRE("weft_select2", b);
    return select2_make(a, out_a, b, out_b, false);
}

weft_select_t weft_select2_biased(weft_future_t *a, void *out_a, weft_future_t *b, void *out_b)
{
    WEFT__REQUIRE("weft_select2_biased", a);
    WEFT__REQUIRE("weft_select2_biased", b);
    return select2_make(a, out_a, b, out_b, true);
}

static weft_select_t select_array_make(weft_select_arm_t *arms, size_t n, bool biased, const char *fn)
{
    if (n > UINT32_MAX)
        weft_panic(WEFT_SITE, "%s: %zu arms is too many", fn, n);
    weft_select_t s = { { &select_vtable }, arms, (uint32_t)n, biased, { { NULL, NULL, WEFT_ARM_OWNED } } };
    return s;
}

weft_select_t weft_select_array(weft_select_arm_t *arms, size_t n)
{
    if (n > 0)
        WEFT__REQUIRE("weft_select_array", arms);
    return select_array_make(arms, n, false, "weft_select_array");
}

weft_select_t weft_select_array_biased(weft_select_arm_t *arms, size_t n)
{
    if (n > 0)
        WEFT__REQUIRE("weft_select_array_biased", arms);
    return select_array_make(arms, n, true, "weft_select_array_biased");
}

/* ---- try_join ---------------------------------------------------------------- */

/* try_join reads each child's output to tell success from failure, so
 * every child must write an int. */
static void require_int_output(const weft_future_t *f, const char *fn)
{
    if (f->vtable->out_size != sizeof(int))
        weft_panic(WEFT_SITE, "%s: %s has a %zu-byte output; try_join needs int outputs (negative = error)", fn,
                   f->vtable->name != NULL ? f->vtable->name : "a child", f->vtable->out_size);
}

/* Polls *slot (non-NULL) once. Ready: drops it, clears *slot, and returns
 * true with its output in *res (and in *out when out is not NULL). */
static bool try_child(weft_future_t **slot, int *out, weft_context_t *cx, int *res)
{
    int v;
    if (weft_future_poll(*slot, cx, &v) == WEFT_PENDING)
        return false;
    weft_future_t *c = *slot;
    *slot = NULL;
    weft_future_drop(c);
    if (out != NULL)
        *out = v;
    *res = v;
    return true;
}

static void try_join2_release(weft_try_join2_t *j)
{
    weft_future_t *a = j->a_, *b = j->b_;
    j->a_ = j->b_ = NULL;
    if (a != NULL)
        weft_future_drop(a);
    if (b != NULL)
        weft_future_drop(b);
}

static weft_poll_t try_join2_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_try_join2_t *j = (weft_try_join2_t *)(void *)f;
    int res = 0;
    if (j->a_ != NULL && try_child(&j->a_, j->out_a_, cx, &res) && res < 0)
        goto done;
    if (j->b_ != NULL && try_child(&j->b_, j->out_b_, cx, &res) && res < 0)
        goto done;
    if (j->a_ != NULL || j->b_ != NULL)
        return WEFT_PENDING;
    res = 0;
done:
    try_join2_release(j); /* after an error: the other child, cancelled */
    if (out != NULL)
        *(int *)out = res;
    return WEFT_READY;
}

static void try_join2_drop(weft_future_t *f)
{
    try_join2_release((weft_try_join2_t *)(void *)f);
}

static const weft_future_vtable_t try_join2_vtable = {
    try_join2_poll, try_join2_drop, NULL, sizeof(weft_try_join2_t), sizeof(int), "weft_try_join2",
};

weft_try_join2_t weft_try_join2(weft_future_t *a, int *out_a, weft_future_t *b, int *out_b)
{
    WEFT__REQUIRE("weft_try_join2", a);
    WEFT__REQUIRE("weft_try_join2", b);
    require_int_output(a, "weft_try_join2");
    require_int_output(b, "weft_try_join2");
    return (weft_try_join2_t){ { &try_join2_vtable }, a, b, out_a, out_b };
}

static void try_join_all_release(weft_try_join_all_t *j)
{
    for (size_t i = 0; i < j->n_; i++) {
        weft_future_t *c = j->futs_[i];
        if (c != NULL) {
            j->futs_[i] = NULL;
            weft_future_drop(c);
        }
    }
    j->remaining_ = 0;
}

static weft_poll_t try_join_all_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_try_join_all_t *j = (weft_try_join_all_t *)(void *)f;
    int res = 0;
    for (size_t i = 0; i < j->n_ && j->remaining_ > 0; i++) {
        if (j->futs_[i] == NULL || !try_child(&j->futs_[i], j->outs_ ? j->outs_[i] : NULL, cx, &res))
            continue;
        j->remaining_--;
        if (res < 0) {
            try_join_all_release(j); /* the unfinished children, cancelled */
            break;
        }
    }
    if (j->remaining_ > 0)
        return WEFT_PENDING;
    if (out != NULL)
        *(int *)out = res < 0 ? res : 0;
    return WEFT_READY;
}

static void try_join_all_drop(weft_future_t *f)
{
    try_join_all_release((weft_try_join_all_t *)(void *)f);
}

static const weft_future_vtable_t try_join_all_vtable = {
    try_join_all_poll, try_join_all_drop, NULL, sizeof(weft_try_join_all_t), sizeof(int), "weft_try_join_all",
};

weft_try_join_all_t weft_try_join_all(weft_future_t **futs, int **outs, size_t n)
{
    if (n > 0)
        WEFT__REQUIRE("weft_try_join_all", futs);
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        if (futs[i] != NULL) {
            require_int_output(futs[i], "weft_try_join_all");
            live++;
        }
    }
    return (weft_try_join_all_t){ { &try_join_all_vtable }, futs, outs, n, live };
}
