/* weft/select.h - race futures (select) and join fallible ones (try_join).
 *
 * Both run their children on the current task, as weft_join2 does
 * (weft/join.h): one poll of the combinator polls its unfinished children
 * in turn, none runs in parallel with another. The children live in the
 * caller's frame.
 *
 * select: the first child to finish wins. Its index is the select's output
 * (an int) and its output went to the out pointer given with it; every
 * other child was dropped, and so cancelled, before the select returned.
 * The order in which one poll tries the children is rotated at random on
 * each poll (fair: no child can starve the others by always being ready),
 * or is the given order for the _biased forms (Tokio's `biased;`). A
 * child may be left out by a precondition: it is then neither polled nor
 * dropped, and a select whose children are all left out completes at once
 * with WEFT_SELECT_ELSE.
 *
 * Each child is an arm: a future, where its output goes, and who owns it.
 * An owned arm (WEFT_ARM) is dropped by the select as soon as the select
 * is decided, or when the select itself is dropped: construct it anew for
 * each select, as select! does. A borrowed arm (WEFT_ARM_REF) is polled
 * but never dropped by the select: the caller keeps it across several
 * selects (a deadline that spans a whole loop) and drops it itself; when
 * it wins it has completed, and must be dropped and not polled again.
 *
 * In an async function, WEFT_SELECT constructs the arms into their frame
 * slots (only those whose precondition holds) and awaits the select:
 *
 *     enum { READ, STOP, TICK };
 *     WEFT_SELECT(&self->sel, &self->which,
 *                 WEFT_ARM(&self->read, weft_tcp_read(self->s, self->buf, sizeof self->buf), &self->n),
 *                 WEFT_ARM(&self->stop, weft_cancel_token_cancelled(self->token), NULL),
 *                 WEFT_ARM_IF(self->ticking, &self->tick, weft_interval_tick(&self->iv), NULL));
 *     if (self->which == STOP)
 *         break;
 *
 * try_join: children whose output is an int, negative for an error (the
 * convention of weft's fallible futures). It completes with 0 once every
 * child has returned a value >= 0, or with the first negative value as
 * soon as a child returns one, dropping the unfinished children first.
 *
 * docs/combinators.md is the guide.
 */
#ifndef WEFT_SELECT_H
#define WEFT_SELECT_H

#include "async.h"
#include "future.h"

#ifdef __cplusplus
#include <initializer_list>
extern "C" {
#endif

/* ---- select ------------------------------------------------------------ */

/* The output of a select all of whose arms were disabled. */
#define WEFT_SELECT_ELSE (-1)
/* How many arms weft_select and WEFT_SELECT hold inside the select
 * itself; more need weft_select_array. */
#define WEFT_SELECT_MAX 8

/* Who drops an arm's future. */
typedef enum weft_arm_kind_e {
    WEFT_ARM_OWNED = 0, /* the select: once decided, or when it is dropped */
    WEFT_ARM_BORROWED,  /* the caller: the select only polls it */
} weft_arm_kind_t;

/* One child of a select. fut NULL: the arm is disabled (never polled,
 * never dropped). out receives the child's output if it wins (NULL: the
 * output is discarded). Build it with the WEFT_ARM macros, or by hand for
 * weft_select_array. */
typedef struct weft_select_arm_s {
    weft_future_t *fut;
    void *out;
    weft_arm_kind_t kind;
} weft_select_arm_t;

/* The select future. Output int: the winning arm's index, or
 * WEFT_SELECT_ELSE. Fields private. */
typedef struct weft_select_s {
    weft_future_t future;
    weft_select_arm_t *ext_;  /* weft_select_array's caller array, or NULL: arms_ */
    uint32_t n_;
    bool biased_;
    weft_select_arm_t arms_[WEFT_SELECT_MAX];
} weft_select_t;

/* Races a and b (both owned: the select drops them), fairly or in the
 * given order. out_a, out_b: where the winner's output goes (either
 * NULL). a and b must not have been polled elsewhere.
 * Context: construct anywhere; one owner polls and drops it. */
WEFT_API WEFT_NODISCARD weft_select_t weft_select2(weft_future_t *a, void *out_a, weft_future_t *b, void *out_b);
WEFT_API WEFT_NODISCARD weft_select_t weft_select2_biased(weft_future_t *a, void *out_a, weft_future_t *b,
                                                          void *out_b);

/* Races the n arms (n <= WEFT_SELECT_MAX; more aborts), copied into the
 * select: the array need not outlive the call. n may be 0 (WEFT_SELECT_ELSE
 * at once). The WEFT_SELECT macros call these. */
WEFT_API WEFT_NODISCARD weft_select_t weft_select(const weft_select_arm_t *arms, size_t n);
WEFT_API WEFT_NODISCARD weft_select_t weft_select_biased(const weft_select_arm_t *arms, size_t n);

/* Races n arms (any n) that stay in the caller's array, which must outlive
 * the select: once it is decided (or dropped), every arms[i].fut is NULL.
 * For a set of children whose size is known only at run time. */
WEFT_API WEFT_NODISCARD weft_select_t weft_select_array(weft_select_arm_t *arms, size_t n);
WEFT_API WEFT_NODISCARD weft_select_t weft_select_array_biased(weft_select_arm_t *arms, size_t n);

static inline weft_select_arm_t weft__arm(weft_future_t *fut, void *out, weft_arm_kind_t kind)
{
    weft_select_arm_t a;
    a.fut = fut;
    a.out = out;
    a.kind = kind;
    return a;
}

/* WEFT_ARM(slot, init, out), WEFT_ARM_IF(cond, slot, init, out): an owned
 * arm: constructs `init` (a future constructor call; commas allowed, as in
 * WEFT_AWAIT) into the frame slot `slot`, as WEFT_AWAIT does; `out`
 * receives its output. The _IF form constructs it only when cond holds,
 * and disables the arm otherwise (the slot is left untouched). */
#define WEFT_ARM(slot, ...) WEFT_ARM_IF(1, slot, __VA_ARGS__)
#define WEFT_ARM_IF(cond, slot, ...)                                                                     \
    weft__arm((cond) ? (*(slot) = (WEFT__BUT_LAST(__VA_ARGS__)), WEFT__AWAIT_CHECK(slot, WEFT__LAST(__VA_ARGS__)), \
                        WEFT_FUTURE(slot))                                                               \
                     : NULL,                                                                             \
              (WEFT__LAST(__VA_ARGS__)), WEFT_ARM_OWNED)
/* A borrowed arm: `fut` is a future the caller keeps (constructed before,
 * perhaps polled by an earlier select); the select never drops it. */
#define WEFT_ARM_REF(fut, out) WEFT_ARM_REF_IF(1, fut, out)
#define WEFT_ARM_REF_IF(cond, fut, out) \
    weft__arm((cond) ? (WEFT__AWAIT_CHECK(fut, out), WEFT_FUTURE(fut)) : NULL, (out), WEFT_ARM_BORROWED)

/* In an async body: construct the select of the given arms (1 to
 * WEFT_SELECT_MAX, each evaluated once) into the frame slot `slot` and
 * await it; `which` (an int *) receives the winner's index, in the order
 * the arms are written, or WEFT_SELECT_ELSE. */
#define WEFT_SELECT(slot, which, ...) WEFT_AWAIT(slot, WEFT__SELECT_OF(weft_select, __VA_ARGS__), which)
#define WEFT_SELECT_BIASED(slot, which, ...) \
    WEFT_AWAIT(slot, WEFT__SELECT_OF(weft_select_biased, __VA_ARGS__), which)

#ifdef __cplusplus
} /* extern "C" */
/* An initializer list of arms, each evaluated once. */
static inline weft_select_t weft__select_il(weft_select_t (*make)(const weft_select_arm_t *, size_t),
                                            std::initializer_list<weft_select_arm_t> arms)
{
    return make(arms.begin(), arms.size());
}
#define WEFT__SELECT_OF(make, ...) weft__select_il(make, { __VA_ARGS__ })
extern "C" {
#else
/* sizeof does not evaluate its operand: each arm is evaluated once. */
#define WEFT__SELECT_OF(make, ...)                      \
    make((const weft_select_arm_t[]){ __VA_ARGS__ },    \
         sizeof((const weft_select_arm_t[]){ __VA_ARGS__ }) / sizeof(weft_select_arm_t))
#endif

/* ---- try_join ---------------------------------------------------------- */

/* Output int: 0 when both a and b returned a value >= 0 (written to
 * *out_a and *out_b, either NULL), else the first negative value seen (the
 * other child is dropped at once). a and b must have int outputs (aborts
 * otherwise, naming the call). Fields private. */
typedef struct weft_try_join2_s {
    weft_future_t future;
    weft_future_t *a_, *b_; /* NULL once finished and dropped */
    int *out_a_, *out_b_;
} weft_try_join2_t;

WEFT_API WEFT_NODISCARD weft_try_join2_t weft_try_join2(weft_future_t *a, int *out_a, weft_future_t *b, int *out_b);

/* N children with int outputs: futs[i]'s output goes to outs[i] (outs may
 * be NULL, or hold NULLs). futs and outs are caller arrays that must
 * outlive the join; it writes NULL into futs[i] once that child is
 * dropped (finished, or dropped after an error). Output int as
 * weft_try_join2. Fields private. */
typedef struct weft_try_join_all_s {
    weft_future_t future;
    weft_future_t **futs_;
    int **outs_;
    size_t n_;
    size_t remaining_;
} weft_try_join_all_t;

WEFT_API WEFT_NODISCARD weft_try_join_all_t weft_try_join_all(weft_future_t **futs, int **outs, size_t n);

#ifdef __cplusplus
}
#endif

#endif
