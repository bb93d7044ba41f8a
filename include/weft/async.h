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
 * an await is a field of it, never a local (GCC and Clang reject a local
 * read after an await; keep locals in blocks that close before the next
 * await); no `switch` statement in the body (the resume points are its
 * cases); awaits may sit in loops and branches. docs/async.md shows what
 * the macros expand to.
 */
#ifndef WEFT_ASYNC_H
#define WEFT_ASYNC_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Header of every async frame: the future vtable, the resume point, the
 * owned children (WEFT_OWN) and the child being awaited (each dropped if the
 * frame is dropped). The fields past `future` are private: only the macros
 * and weft_frame_drop touch them. owned_ sits in what would be padding
 * before awaiting_ on 64-bit targets, so the header stays three words. */
typedef struct weft_frame_s {
    weft_future_t future;
    uint32_t state_;
    uint32_t owned_; /* offset from the frame of the first weft_owned_t, 0: none */
    weft_future_t *awaiting_;
} weft_frame_t;

#define WEFT_FRAME weft_frame_t weft_frame
#define WEFT_FRAME_INIT(name) \
    .weft_frame = { .future = { &name##__vtable }, .state_ = 0, .owned_ = 0, .awaiting_ = NULL }
/* The same header written into a frame that already exists (a frame built
 * in place by weft_spawn_frame's init): the other fields are left alone,
 * so set every one the body reads before writing it, and zero each
 * weft_owned_t. */
#define WEFT_FRAME_INIT_AT(frame, name) \
    ((void)((frame)->weft_frame = (weft_frame_t){ { &name##__vtable }, 0, 0, NULL }))
#define WEFT_STATE_DONE UINT32_MAX

/* A frame field that lets the frame own one child future constructed ahead
 * of its await (WEFT_OWN). Zero it (the frame's constructor does) and leave
 * its fields alone. */
typedef struct weft_owned_s {
    weft_future_t *fut_; /* the owned child, NULL: the node is free */
    uint32_t next_;      /* offset from the frame of the next node, 0: none */
} weft_owned_t;

/* Generic drop of a frame: drops the child in progress, if any, then every
 * child still owned through WEFT_OWN, the last owned first. */
WEFT_API void weft_frame_drop(weft_future_t *f);
WEFT_API void weft__frame_own(weft_frame_t *fr, weft_owned_t *node, weft_future_t *child, const char *fn,
                              const char *site);
WEFT_API weft_future_t *weft__frame_disown(weft_frame_t *fr, weft_future_t *child);
WEFT_API void weft__frame_drop_owned(weft_frame_t *fr, weft_future_t *child);
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

/* A block-scope local that lives across an await is a bug the language lets
 * through: a resume jumps to the await's `case` past the local's
 * initialization, so its value is garbage. The body therefore runs under
 * diagnostics that turn it into a compile error (docs/async.md, rule 1):
 * GCC's C front end rejects a `case` inside the scope of an initialized
 * local (-Wjump-misses-init, C only); Clang has no such check, but its
 * flow analysis sees the local read on the resume path without a store
 * (-Wconditional-uninitialized and friends). C++ needs neither for an
 * initialized local: jumping past its initialization is already an error
 * there. WEFT_ASYNC pushes the diagnostic state just before the body's
 * definition (Clang decides whether to run its analysis at the function's
 * first token) and WEFT_END pops it, so code outside async bodies keeps
 * the user's own settings. */
#if defined(__clang__)
#define WEFT__BODY_DIAG_PUSH                                            \
    _Pragma("clang diagnostic push")                                    \
    _Pragma("clang diagnostic error \"-Wuninitialized\"")               \
    _Pragma("clang diagnostic error \"-Wsometimes-uninitialized\"")     \
    _Pragma("clang diagnostic error \"-Wconditional-uninitialized\"")
#define WEFT__BODY_DIAG_POP _Pragma("clang diagnostic pop")
#elif defined(__GNUC__) && !defined(__cplusplus)
#define WEFT__BODY_DIAG_PUSH \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic error \"-Wjump-misses-init\"")
#define WEFT__BODY_DIAG_POP _Pragma("GCC diagnostic pop")
#else
#define WEFT__BODY_DIAG_PUSH
#define WEFT__BODY_DIAG_POP
#endif

#define WEFT__ASYNC(frame_type, name, out_type, dropfn)                                             \
    static weft_poll_t name##__body(frame_type *self, weft_context_t *weft__cx, out_type *weft__out); \
    static weft_poll_t name##__poll(weft_future_t *f, weft_context_t *cx, void *out)                 \
    {                                                                                                \
        return name##__body((frame_type *)(void *)f, cx, (out_type *)out);                          \
    }                                                                                                \
    static const weft_future_vtable_t name##__vtable = {                                             \
        name##__poll, dropfn, NULL, sizeof(frame_type), WEFT_OUT_SIZE(out_type), #name};                    \
    WEFT__BODY_DIAG_PUSH                                                                             \
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

/* Opens the body. The `default:` label (a frame polled after it finished,
 * or a corrupt resume point) comes first, ahead of any local of the body,
 * so that reaching it jumps over no initialization. */
#define WEFT_BEGIN()                                                           \
    (void)weft__cx, (void)weft__out;                                           \
    switch (self->weft_frame.state_) {                                         \
    default:                                                                   \
        weft__async_bad_state(&self->weft_frame, __func__, WEFT_SITE);         \
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
/* The common case (sizes agree) costs a load and a compare inline; only a
 * mismatch, or something that is no future, calls out to report it. */
static inline void weft__await_check_inline(const weft_future_t *child, const void *out, size_t out_size,
                                            const char *fn, const char *site)
{
    if (out == NULL || out_size == 0)
        return;
    size_t have = (child != NULL && child->vtable != NULL) ? child->vtable->out_size : (size_t)-1;
    if (have != out_size && !(have == 0 && out_size == sizeof(weft_unit_t)))
        weft__await_check(child, out, out_size, fn, site);
}
#define WEFT__AWAIT_CHECK(child, out) \
    weft__await_check_inline(WEFT_FUTURE(child), (const void *)(out), WEFT__DST_SIZE(out), __func__, WEFT_SITE)
#else
#define WEFT__AWAIT_CHECK(child, out) ((void)0)
#endif

/* Await `child` (a future already in the frame): the frame takes ownership
 * (from WEFT_OWN too, if it owned it) and drops it once it is ready. `out`
 * receives its output (or NULL). */
#define WEFT_AWAIT_REF(child, out) WEFT__AWAIT_REF_AT(child, out, __COUNTER__ + 1)
#define WEFT__AWAIT_REF_AT(child, out, N)                              \
    do {                                                               \
        self->weft_frame.awaiting_ = WEFT_FUTURE(child);               \
        WEFT__AWAIT_POLL_AT(self->weft_frame.awaiting_, out, N);       \
    } while (0)

/* The await itself, once awaiting_ holds the child and `first` names it:
 * the frame takes the child over from WEFT_OWN, and the first poll goes
 * through the vtable pointer read from `first`, held in a local whose
 * scope closes before the resume point (so no jump enters it). When
 * `first` is the slot a constructor has just filled (WEFT_AWAIT), the
 * compiler sees which vtable it is, and where the constructor's header
 * defines the vtable (the buffered reader and writer's line and write
 * futures) it calls, or inlines, the poll directly. A resumed poll goes
 * through awaiting_. Statements of the body; the caller wraps them. */
#define WEFT__AWAIT_POLL_AT(first, out, N)                                                                  \
    self->weft_frame.state_ = (N);                                                                          \
    {                                                                                                       \
        const weft_future_vtable_t *weft__vt = (first)->vtable;                                             \
        WEFT__AWAIT_CHECK(first, out);                                                                      \
        if (self->weft_frame.owned_ != 0)                                                                   \
            (void)weft__frame_disown(&self->weft_frame, (first));                                           \
        if (weft__vt->poll((first), weft__cx, (out)) == WEFT_PENDING)                                       \
            return WEFT_PENDING;                                                                            \
        if (weft__vt->drop != NULL)                                                                         \
            weft__vt->drop(first);                                                                          \
    }                                                                                                       \
    if (0) {                                                                                                \
    case (N):                                                                                               \
        if (weft_future_poll(self->weft_frame.awaiting_, weft__cx, (out)) == WEFT_PENDING)                  \
            return WEFT_PENDING;                                                                            \
        weft_future_drop(self->weft_frame.awaiting_);                                                       \
    }                                                                                                       \
    self->weft_frame.awaiting_ = NULL

/* Splitting a variadic list `init..., out` at its last top-level comma, so
 * that `init` may hold commas that no parentheses protect (a compound
 * literal, a C++ braced initializer): WEFT__LAST is the last argument,
 * WEFT__BUT_LAST the others, commas kept. Up to 32 arguments (commas
 * inside braces count; those inside parentheses do not). */
#define WEFT__CAT(a, b) WEFT__CAT_(a, b)
#define WEFT__CAT_(a, b) a##b
#define WEFT__NARG(...)                                                                                      \
    WEFT__NARG_(__VA_ARGS__, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, \
                12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define WEFT__NARG_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, \
                    a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, n, ...)                         \
    n
#define WEFT__LAST(...) WEFT__CAT(WEFT__LAST_, WEFT__NARG(__VA_ARGS__))(__VA_ARGS__)
#define WEFT__BUT_LAST(...) WEFT__CAT(WEFT__BUT_LAST_, WEFT__NARG(__VA_ARGS__))(__VA_ARGS__)
#define WEFT__LAST_1(a) a
#define WEFT__LAST_2(a, ...) WEFT__LAST_1(__VA_ARGS__)
#define WEFT__LAST_3(a, ...) WEFT__LAST_2(__VA_ARGS__)
#define WEFT__LAST_4(a, ...) WEFT__LAST_3(__VA_ARGS__)
#define WEFT__LAST_5(a, ...) WEFT__LAST_4(__VA_ARGS__)
#define WEFT__LAST_6(a, ...) WEFT__LAST_5(__VA_ARGS__)
#define WEFT__LAST_7(a, ...) WEFT__LAST_6(__VA_ARGS__)
#define WEFT__LAST_8(a, ...) WEFT__LAST_7(__VA_ARGS__)
#define WEFT__LAST_9(a, ...) WEFT__LAST_8(__VA_ARGS__)
#define WEFT__LAST_10(a, ...) WEFT__LAST_9(__VA_ARGS__)
#define WEFT__LAST_11(a, ...) WEFT__LAST_10(__VA_ARGS__)
#define WEFT__LAST_12(a, ...) WEFT__LAST_11(__VA_ARGS__)
#define WEFT__LAST_13(a, ...) WEFT__LAST_12(__VA_ARGS__)
#define WEFT__LAST_14(a, ...) WEFT__LAST_13(__VA_ARGS__)
#define WEFT__LAST_15(a, ...) WEFT__LAST_14(__VA_ARGS__)
#define WEFT__LAST_16(a, ...) WEFT__LAST_15(__VA_ARGS__)
#define WEFT__LAST_17(a, ...) WEFT__LAST_16(__VA_ARGS__)
#define WEFT__LAST_18(a, ...) WEFT__LAST_17(__VA_ARGS__)
#define WEFT__LAST_19(a, ...) WEFT__LAST_18(__VA_ARGS__)
#define WEFT__LAST_20(a, ...) WEFT__LAST_19(__VA_ARGS__)
#define WEFT__LAST_21(a, ...) WEFT__LAST_20(__VA_ARGS__)
#define WEFT__LAST_22(a, ...) WEFT__LAST_21(__VA_ARGS__)
#define WEFT__LAST_23(a, ...) WEFT__LAST_22(__VA_ARGS__)
#define WEFT__LAST_24(a, ...) WEFT__LAST_23(__VA_ARGS__)
#define WEFT__LAST_25(a, ...) WEFT__LAST_24(__VA_ARGS__)
#define WEFT__LAST_26(a, ...) WEFT__LAST_25(__VA_ARGS__)
#define WEFT__LAST_27(a, ...) WEFT__LAST_26(__VA_ARGS__)
#define WEFT__LAST_28(a, ...) WEFT__LAST_27(__VA_ARGS__)
#define WEFT__LAST_29(a, ...) WEFT__LAST_28(__VA_ARGS__)
#define WEFT__LAST_30(a, ...) WEFT__LAST_29(__VA_ARGS__)
#define WEFT__LAST_31(a, ...) WEFT__LAST_30(__VA_ARGS__)
#define WEFT__LAST_32(a, ...) WEFT__LAST_31(__VA_ARGS__)
#define WEFT__BUT_LAST_2(a, b) a
#define WEFT__BUT_LAST_3(a, ...) a, WEFT__BUT_LAST_2(__VA_ARGS__)
#define WEFT__BUT_LAST_4(a, ...) a, WEFT__BUT_LAST_3(__VA_ARGS__)
#define WEFT__BUT_LAST_5(a, ...) a, WEFT__BUT_LAST_4(__VA_ARGS__)
#define WEFT__BUT_LAST_6(a, ...) a, WEFT__BUT_LAST_5(__VA_ARGS__)
#define WEFT__BUT_LAST_7(a, ...) a, WEFT__BUT_LAST_6(__VA_ARGS__)
#define WEFT__BUT_LAST_8(a, ...) a, WEFT__BUT_LAST_7(__VA_ARGS__)
#define WEFT__BUT_LAST_9(a, ...) a, WEFT__BUT_LAST_8(__VA_ARGS__)
#define WEFT__BUT_LAST_10(a, ...) a, WEFT__BUT_LAST_9(__VA_ARGS__)
#define WEFT__BUT_LAST_11(a, ...) a, WEFT__BUT_LAST_10(__VA_ARGS__)
#define WEFT__BUT_LAST_12(a, ...) a, WEFT__BUT_LAST_11(__VA_ARGS__)
#define WEFT__BUT_LAST_13(a, ...) a, WEFT__BUT_LAST_12(__VA_ARGS__)
#define WEFT__BUT_LAST_14(a, ...) a, WEFT__BUT_LAST_13(__VA_ARGS__)
#define WEFT__BUT_LAST_15(a, ...) a, WEFT__BUT_LAST_14(__VA_ARGS__)
#define WEFT__BUT_LAST_16(a, ...) a, WEFT__BUT_LAST_15(__VA_ARGS__)
#define WEFT__BUT_LAST_17(a, ...) a, WEFT__BUT_LAST_16(__VA_ARGS__)
#define WEFT__BUT_LAST_18(a, ...) a, WEFT__BUT_LAST_17(__VA_ARGS__)
#define WEFT__BUT_LAST_19(a, ...) a, WEFT__BUT_LAST_18(__VA_ARGS__)
#define WEFT__BUT_LAST_20(a, ...) a, WEFT__BUT_LAST_19(__VA_ARGS__)
#define WEFT__BUT_LAST_21(a, ...) a, WEFT__BUT_LAST_20(__VA_ARGS__)
#define WEFT__BUT_LAST_22(a, ...) a, WEFT__BUT_LAST_21(__VA_ARGS__)
#define WEFT__BUT_LAST_23(a, ...) a, WEFT__BUT_LAST_22(__VA_ARGS__)
#define WEFT__BUT_LAST_24(a, ...) a, WEFT__BUT_LAST_23(__VA_ARGS__)
#define WEFT__BUT_LAST_25(a, ...) a, WEFT__BUT_LAST_24(__VA_ARGS__)
#define WEFT__BUT_LAST_26(a, ...) a, WEFT__BUT_LAST_25(__VA_ARGS__)
#define WEFT__BUT_LAST_27(a, ...) a, WEFT__BUT_LAST_26(__VA_ARGS__)
#define WEFT__BUT_LAST_28(a, ...) a, WEFT__BUT_LAST_27(__VA_ARGS__)
#define WEFT__BUT_LAST_29(a, ...) a, WEFT__BUT_LAST_28(__VA_ARGS__)
#define WEFT__BUT_LAST_30(a, ...) a, WEFT__BUT_LAST_29(__VA_ARGS__)
#define WEFT__BUT_LAST_31(a, ...) a, WEFT__BUT_LAST_30(__VA_ARGS__)
#define WEFT__BUT_LAST_32(a, ...) a, WEFT__BUT_LAST_31(__VA_ARGS__)

/* WEFT_AWAIT(slot, init, out): construct a child into the frame slot
 * `slot` from `init` (a future constructor call, or any expression of the
 * slot's type, commas allowed), then await it. */
#define WEFT_AWAIT(slot, ...) WEFT__AWAIT_AT(__COUNTER__ + 1, slot, __VA_ARGS__)
#define WEFT__AWAIT_AT(N, slot, ...)                                                       \
    do {                                                                                   \
        *(slot) = (WEFT__BUT_LAST(__VA_ARGS__));                                           \
        self->weft_frame.awaiting_ = WEFT_FUTURE(slot);                                    \
        WEFT__AWAIT_POLL_AT(WEFT_FUTURE(slot), WEFT__LAST(__VA_ARGS__), N);                \
    } while (0)

/* Owned children: a future constructed into the frame before the await
 * that polls it (a oneshot receiver, a timeout's inner future, a deadline
 * borrowed by several selects). WEFT_OWN(child, node) makes the frame drop
 * `child` when the frame is dropped, unless ownership moved on first:
 * awaiting the child itself (WEFT_AWAIT, WEFT_AWAIT_REF) takes it over;
 * WEFT_DISOWN(child) gives it up and is the child as a weft_future_t *,
 * for handing it to something that will drop it (a timeout, a join, an
 * owned select arm); WEFT_DROP_OWNED(child) drops it now if the frame still
 * owns it (and does nothing otherwise). `node` is a weft_owned_t field of
 * the frame, one per child owned at a time. Statements of the body. */
#define WEFT_OWN(child, node) weft__frame_own(&self->weft_frame, (node), WEFT_FUTURE(child), __func__, WEFT_SITE)
#define WEFT_DISOWN(child) weft__frame_disown(&self->weft_frame, WEFT_FUTURE(child))
#define WEFT_DROP_OWNED(child) weft__frame_drop_owned(&self->weft_frame, WEFT_FUTURE(child))

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

/* WEFT_RETURN(value): finish with `value` as the output (commas allowed,
 * as in a compound literal). */
#define WEFT_RETURN(...)                                \
    do {                                                \
        if (weft__out != NULL)                          \
            *weft__out = (__VA_ARGS__);                 \
        self->weft_frame.state_ = WEFT_STATE_DONE;      \
        return WEFT_READY;                              \
    } while (0)

/* Closes the body. Reaching it without WEFT_RETURN aborts with the
 * function's name and this site (polling a finished frame aborts naming
 * WEFT_BEGIN's site). */
#define WEFT_END()                                 \
    weft__async_fell_off(__func__, WEFT_SITE);     \
    }                                              \
    WEFT__BODY_DIAG_POP

#ifdef __cplusplus
}
#endif

#endif
