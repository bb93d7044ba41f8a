/* weft/future.h - futures, wakers and the poll contract.
 *
 * A future is a struct whose first member is a weft_future_t: a pointer to
 * a vtable with poll and drop. poll() either finishes (WEFT_READY, output
 * written to `out`) or returns WEFT_PENDING after arranging for the waker in
 * the context to be woken when progress is possible. drop() releases all
 * the future owns, children in progress included: cancelling a future is
 * dropping it.
 *
 * Rules every future and every caller follow:
 *  - A future does nothing until polled.
 *  - A future may be moved (copied with memcpy) until its first poll, never
 *    after: from then on it may hold pointers into itself or be referenced by
 *    others (a waiter list, a join). Spawning copies the future into the task.
 *  - Whoever constructs a future calls drop exactly once, whether or not it
 *    completed. WEFT_AWAIT does this for you.
 *  - Polling a future after it returned WEFT_READY is a programming error.
 *  - `out` may be NULL: the caller does not want the output (the future then
 *    discards it, releasing anything it holds). A future whose output is
 *    weft_unit_t declares out_size 0, so a task reserves no room for it and
 *    polls it with out = NULL: such futures write their output only when
 *    out is not NULL (WEFT_RETURN does).
 */
#ifndef WEFT_FUTURE_H
#define WEFT_FUTURE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum weft_poll_e { WEFT_PENDING = 0, WEFT_READY = 1 } weft_poll_t;

/* ---- Wakers ------------------------------------------------------------ */

typedef struct weft_waker_s weft_waker_t;

/* The behaviour behind a waker (Rust's RawWakerVTable). Every function may be
 * called from any thread, concurrently with the others. */
typedef struct weft_waker_vtable_s {
    weft_waker_t (*clone)(const void *data); /* a new handle to the same waker */
    void (*wake)(const void *data);          /* wake and release this handle */
    void (*wake_by_ref)(const void *data);   /* wake, keep this handle */
    void (*drop)(const void *data);          /* release this handle */
} weft_waker_vtable_t;

/* A waker: vtable + data, 16 bytes, copied by value. A task's waker is the
 * task itself, kept alive by its reference count. vtable NULL = no waker. */
struct weft_waker_s {
    const weft_waker_vtable_t *vtable;
    const void *data;
};

/* Context: any thread. The waker must hold a handle (vtable non-NULL). */
static inline weft_waker_t weft_waker_clone(const weft_waker_t *w) { return w->vtable->clone(w->data); }
/* Wakes and consumes *w (it is left empty). Context: any thread. */
static inline void weft_waker_wake(weft_waker_t *w)
{
    const weft_waker_vtable_t *vt = w->vtable;
    w->vtable = NULL;
    vt->wake(w->data);
}
static inline void weft_waker_wake_by_ref(const weft_waker_t *w) { w->vtable->wake_by_ref(w->data); }
/* Releases *w if it holds a handle; an empty waker is ignored. */
static inline void weft_waker_drop(weft_waker_t *w)
{
    if (w->vtable != NULL) {
        const weft_waker_vtable_t *vt = w->vtable;
        w->vtable = NULL;
        vt->drop(w->data);
    }
}
/* True when waking a would wake the same thing as waking b. */
static inline bool weft_waker_will_wake(const weft_waker_t *a, const weft_waker_t *b)
{
    return a->vtable == b->vtable && a->data == b->data;
}
/* A waker that does nothing (for polling a future by hand). */
WEFT_API weft_waker_t weft_waker_noop(void);

/* The context handed to poll: the waker of the task doing the polling. */
typedef struct weft_context_s {
    const weft_waker_t *waker;
} weft_context_t;

/* ---- Futures ----------------------------------------------------------- */

typedef struct weft_future_s weft_future_t;

typedef struct weft_future_vtable_s {
    weft_poll_t (*poll)(weft_future_t *self, weft_context_t *cx, void *out);
    void (*drop)(weft_future_t *self); /* NULL: nothing to release */
    void (*drop_output)(void *out);    /* NULL: the output owns nothing */
    size_t size;                       /* sizeof the whole future (spawn copies it) */
    size_t out_size;                   /* sizeof its output; 0 for weft_unit_t (see below) */
    const char *name;                  /* for diagnostics */
} weft_future_vtable_t;

struct weft_future_s {
    const weft_future_vtable_t *vtable;
};

static inline weft_poll_t weft_future_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    return f->vtable->poll(f, cx, out);
}
static inline void weft_future_drop(weft_future_t *f)
{
    if (f->vtable->drop != NULL)
        f->vtable->drop(f);
}
/* Any future struct -> its weft_future_t (its first member). */
#define WEFT_FUTURE(p) ((weft_future_t *)(void *)(p))

/* ---- Leaf futures ------------------------------------------------------ */

/* Ready at once with `value` (output intptr_t). */
typedef struct weft_ready_s {
    weft_future_t future;
    intptr_t value_;
} weft_ready_t;
WEFT_API WEFT_NODISCARD weft_ready_t weft_ready(intptr_t value);

/* Never ready (output weft_unit_t): parks the task until it is dropped. */
typedef struct weft_pending_s {
    weft_future_t future;
} weft_pending_t;
WEFT_API WEFT_NODISCARD weft_pending_t weft_pending(void);

/* Pending once, after waking its task, then ready (output weft_unit_t): the
 * task goes to the back of its run queue so others get a turn. */
typedef struct weft_yield_s {
    weft_future_t future;
    bool yielded_;
} weft_yield_t;
WEFT_API WEFT_NODISCARD weft_yield_t weft_yield_now(void);

#ifdef __cplusplus
}
#endif

#endif
