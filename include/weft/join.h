/* weft/join.h - run several futures concurrently on the current task.
 *
 * The seed's join!: one task polls every child; none runs in parallel with
 * the others (spawn does that). Children live in the caller's frame; the
 * join takes ownership of them, drops each as soon as it is ready, and drops
 * the unfinished ones if it is itself dropped (cancellation by drop).
 */
#ifndef WEFT_JOIN_H
#define WEFT_JOIN_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Output weft_unit_t; a's output goes to out_a, b's to out_b (either NULL). */
typedef struct weft_join2_s {
    weft_future_t future;
    weft_future_t *a_, *b_; /* NULL once finished and dropped */
    void *out_a_, *out_b_;
} weft_join2_t;

/* Context: any thread; a and b must not have been polled elsewhere. */
WEFT_API WEFT_NODISCARD weft_join2_t weft_join2(weft_future_t *a, void *out_a, weft_future_t *b, void *out_b);

/* N children: futs[i]'s output goes to outs[i] (outs may be NULL, or hold
 * NULLs). futs and outs are caller-owned arrays that must outlive the join;
 * the join writes NULL into futs[i] once that child is finished. Output
 * weft_unit_t. */
typedef struct weft_join_all_s {
    weft_future_t future;
    weft_future_t **futs_;
    void **outs_;
    size_t n_;
    size_t remaining_;
} weft_join_all_t;

WEFT_API WEFT_NODISCARD weft_join_all_t weft_join_all(weft_future_t **futs, void **outs, size_t n);

#ifdef __cplusplus
}
#endif

#endif
