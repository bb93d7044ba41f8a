/* weft/async.h - async functions as hand-free state machines.
 *
 * An async function is a frame struct plus a body. The frame holds the
 * arguments, every variable that lives across an await, and the child
 * futures it awaits (embedded: no allocation per await). The body is a
 * Duff's-device switch on a resume point; each WEFT_AWAIT stores a new resume
 * point numbered by __COUNTER__, so several awaits may share one line.
 *
 *   typedef struct {
 *       WEFT_FRAME;              // the state machine's header
 *       int n;                   // argument
 *       long a, b;               // locals that live across awaits
 *       weft_yield_t y;          // a child future, embedded
 *   } twice_t;
 *
 *   WEFT_ASYNC(twice_t, twice, long)
 *   {
 *       WEFT_BEGIN();
 *       WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
 *       WEFT_RETURN(2L * self->n);
 *       WEFT_END();
 *   }
 *
 *   WEFT_NODISCARD static twice_t twice(int n)
 *   {
 *       return (twice_t){ WEFT_FRAME_INIT(twice), .n = n };
 *   }
 *
 * Rules: inside the body, `self` is the frame and anything that must survive
 * an await is a field of it, never a local; no `switch` statement in the body
 * (the resume points are its cases); awaits may sit in loops and branches.
 * docs/async.md shows what the macros expand to.
 */
#ifndef WEFT_ASYNC_H
#define WEFT_ASYNC_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Header of every async frame: the future vtable, the resume point and the
 * child being awaited (dropped if the frame is dropped mid-await). The
 * fields past `future` are private: only the macros and weft_frame_drop
 * touch them. */
typedef struct weft_frame_s {
    weft_future_t future;
    uint32_t state_;
    weft_future_t *awaiting_;
} weft_frame_t;

#define WEFT_FRAME weft_frame_t weft_frame
#define WEFT_FRAME_INIT(name) .weft_frame = { .future = { &name##__vtable }, .state_ = 0, .awaiting_ = NULL }
#define WEFT_STATE_DONE UINT32_MAX

/* Generic drop of a frame: drops the child in progress, if any. */
WEFT_API void weft_frame_drop(weft_future_t *f);
WEFT_API WEFT_NORETURN void weft__async_bad_state(const weft_frame_t *fr, const char *fn, const char *site);
WEFT_API WEFT_NORETURN void weft__async_fell_off(const char *fn, const char *site);

/* A weft_unit_t output takes no room in a task (out_size 0, and the task
 * passes out = NULL); any other type takes its size. */
#ifdef __cplusplus
} /* extern "C": templates need C++ linkage */
template <typename T> struct weft__out_size { static const size_t value = sizeof(T); };
template <> struct weft__out_size<weft_unit_t> { static const size_t value = 0; };
#define WEFT_OUT_SIZE(type) (weft__out_size<type>::value)
extern "C" {
#else
#define WEFT_OUT_SIZE(type) _Generic((type *)0, weft_unit_t *: 0, default: sizeof(type))
#endif

#define WEFT__ASYNC(frame_type, name, out_type, dropfn)                                             \
    static weft_poll_t name##__body(frame_type *self, weft_context_t *weft__cx, out_type *weft__out); \
    static weft_poll_t name##__poll(weft_future_t *f, weft_context_t *cx, void *out)                 \
    {                                                                                                \
        return name##__body((frame_type *)(void *)f, cx, (out_type *)out);                          \
    }                                                                                                \
    static const weft_future_vtable_t name##__vtable = {                                             \
        name##__poll, dropfn, NULL, sizeof(frame_type), WEFT_OUT_SIZE(out_type), #name};                    \
    static weft_poll_t name##__body(frame_type *self, weft_context_t *weft__cx, out_type *weft__out)

/* Defines the vtable and opens the body of async function `name`, whose
 * frame is frame_type and whose output is out_type. */
#define WEFT_ASYNC(frame_type, name, out_type) WEFT__ASYNC(frame_type, name, out_type, weft_frame_drop)

/* Same, with a cleanup `void cleanup(frame_type *)` that runs when the frame
 * is dropped (after the child in progress is dropped), completed or not: the
 * place to free what the frame owns (RAII on cancellation). */
#define WEFT_ASYNC_WITH_DROP(frame_type, name, out_type, cleanup)   \
    static void name##__drop(weft_future_t *f)                      \
    {                                                               \
        weft_frame_drop(f);                                         \
        cleanup((frame_type *)(void *)f);                           \
    }                                                               \
    WEFT__ASYNC(frame_type, name, out_type, name##__drop)

#define WEFT_BEGIN()                         \
    (void)weft__cx, (void)weft__out;         \
    switch (self->weft_frame.state_) {       \
    case 0:

/* Debug builds (WEFT_DEBUG, weft/common.h): poll() takes the destination
 * as a void *, so the compiler cannot check that `out` points at the
 * child's output type. Before the first poll of each await, the size of
 * *out is compared with the child's vtable out_size (a weft_unit_t
 * destination for out_size 0) and a mismatch aborts, naming the async
 * function and the await's site. Skipped for a NULL out and for an untyped
 * (void *) one, whose size is unknown; C only (C++ has no _Generic). */
WEFT_API void weft__await_check(const weft_future_t *child, const void *out, size_t out_size, const char *fn,
                                const char *site);
#if WEFT_DEBUG && !defined(__cplusplus)
#define WEFT__DST_SIZE(out) \
    _Generic((out), void *: (size_t)0, const void *: (size_t)0, int: (size_t)0, default: sizeof(*WEFT__DST_PTR(out)))
#define WEFT__DST_PTR(out) _Generic((out), void *: (const char *)0, const void *: (const char *)0, int: (const char *)0, default: (out))
#define WEFT__AWAIT_CHECK(child, out) \
    weft__await_check(WEFT_FUTURE(child), (const void *)(out), WEFT__DST_SIZE(out), __func__, WEFT_SITE)
#else
#define WEFT__AWAIT_CHECK(child, out) ((void)0)
#endif

/* Await `child` (a future already in the frame): the frame takes ownership
 * and drops it once it is ready. `out` receives its output (or NULL). */
#define WEFT_AWAIT_REF(child, out) WEFT__AWAIT_REF_AT(child, out, __COUNTER__ + 1)
#define WEFT__AWAIT_REF_AT(child, out, N)                                                  \
    do {                                                                                   \
        self->weft_frame.awaiting_ = WEFT_FUTURE(child);                                   \
        WEFT__AWAIT_CHECK(self->weft_frame.awaiting_, out);                                \
        self->weft_frame.state_ = (N);                                                     \
        WEFT_FALLTHROUGH;                                                                  \
    case (N):                                                                              \
        if (weft_future_poll(self->weft_frame.awaiting_, weft__cx, (out)) == WEFT_PENDING) \
            return WEFT_PENDING;                                                           \
        weft_future_drop(self->weft_frame.awaiting_);                                      \
        self->weft_frame.awaiting_ = NULL;                                                 \
    } while (0)

/* Construct a child into the frame slot `slot` from `init` (a future
 * constructor call), then await it. */
#define WEFT_AWAIT(slot, init, out) WEFT__AWAIT_AT(slot, init, out, __COUNTER__ + 1)
#define WEFT__AWAIT_AT(slot, init, out, N) \
    do {                                   \
        *(slot) = (init);                  \
        WEFT__AWAIT_REF_AT(slot, out, N);  \
    } while (0)

/* Yield to the scheduler once (no child needed): the task is woken at once
 * and goes to the back of its worker's queue. */
#define WEFT_YIELD() WEFT__YIELD_AT(__COUNTER__ + 1)
#define WEFT__YIELD_AT(N)                                  \
    do {                                                   \
        weft_waker_wake_by_ref(weft__cx->waker);           \
        self->weft_frame.state_ = (N);                     \
        return WEFT_PENDING;                               \
    case (N):;                                             \
    } while (0)

/* Finish with `value` as the output. */
#define WEFT_RETURN(value)                              \
    do {                                                \
        if (weft__out != NULL)                          \
            *weft__out = (value);                       \
        self->weft_frame.state_ = WEFT_STATE_DONE;      \
        return WEFT_READY;                              \
    } while (0)

/* Closes the body. Reaching it without WEFT_RETURN, or polling a finished
 * frame, aborts with the function's name and this site. */
#define WEFT_END()                                                             \
    weft__async_fell_off(__func__, WEFT_SITE);                                 \
    default:                                                                   \
        weft__async_bad_state(&self->weft_frame, __func__, WEFT_SITE);         \
    }

#ifdef __cplusplus
}
#endif

#endif
