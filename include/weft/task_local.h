/* weft/task_local.h - values scoped to a future and everything it awaits
 * (Tokio's task_local! and LocalKey::scope).
 *
 * A key is a static object; its address identifies it. A scope future
 * binds a value (a pointer the caller owns) to a key for the duration of
 * an inner future: while the scope polls or drops that future, code at any
 * depth of its call chain reads the value with weft_task_local_get, on
 * whichever worker the task runs that time. Outside the scope the key is
 * unbound again, so another task polled next on the same thread never sees
 * it. Scopes nest: the innermost binding of a key wins.
 *
 *     WEFT_TASK_LOCAL_KEY(request_id);
 *     ...
 *     WEFT_AWAIT(&self->scoped,
 *                weft_task_local_scope(&request_id, &self->id, WEFT_FUTURE(&self->handler), NULL), NULL);
 *     ...
 *     const uint64_t *id = weft_task_local_get(&request_id);   // deep inside the handler
 */
#ifndef WEFT_TASK_LOCAL_H
#define WEFT_TASK_LOCAL_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A key: define one per kind of value, with static storage duration. */
typedef struct weft_task_local_key_s {
    const char *name; /* for diagnostics */
} weft_task_local_key_t;

/* Defines a key named `name` (static storage, file scope or function scope). */
#define WEFT_TASK_LOCAL_KEY(name) static const weft_task_local_key_t name = { #name }

/* One binding on this thread's stack of bindings. Fields private. */
typedef struct weft_task_local_binding_s {
    const weft_task_local_key_t *key_;
    void *value_;
    const struct weft_task_local_binding_s *outer_;
} weft_task_local_binding_t;

/* The future of weft_task_local_scope. Output weft_unit_t; the inner
 * future's output goes to the out pointer given to the constructor.
 * Fields private. */
typedef struct weft_task_local_scope_s {
    weft_future_t future;
    weft_task_local_binding_t binding_;
    weft_future_t *inner_; /* NULL once finished and dropped */
    void *out_;
} weft_task_local_scope_t;

/* A future that runs inner with key bound to value: every poll (and the
 * drop) of inner sees weft_task_local_get(key) == value. The scope takes
 * ownership of inner (drops it when it completes, or when the scope is
 * dropped); inner's output goes to out (may be NULL). value is the
 * caller's and must outlive the scope. Aborts when key or inner is NULL.
 * Context: any thread; poll it like any future. */
WEFT_API WEFT_NODISCARD weft_task_local_scope_t weft_task_local_scope(const weft_task_local_key_t *key, void *value,
                                                                      weft_future_t *inner, void *out);
/* Calls fn(arg) with key bound to value for the duration of the call
 * (Tokio's sync_scope), and returns what fn returns. Context: any thread. */
WEFT_API void *weft_task_local_sync_scope(const weft_task_local_key_t *key, void *value, void *(*fn)(void *arg),
                                          void *arg);
/* The value bound to key by the innermost scope being run on this thread,
 * or NULL when none is (outside every scope of key). Context: any thread. */
WEFT_API void *weft_task_local_get(const weft_task_local_key_t *key);
/* As weft_task_local_get, but aborts naming the key when it is not bound
 * (Tokio's `with` outside a scope). */
WEFT_API void *weft_task_local_expect(const weft_task_local_key_t *key);

#ifdef __cplusplus
}
#endif

#endif
