/* runtime/task_local.c - task-local values (weft/task_local.h).
 *
 * Structure: each thread keeps a stack of bindings (weft__tls.locals, a
 * singly linked list through the binding nodes, innermost first). A scope
 * future owns its binding node; it pushes the node before polling or
 * dropping its inner future and pops it right after, so the stack only
 * ever holds the scopes whose inner futures are on this thread's call
 * stack. A task's poll and a block_on root's poll start from an empty
 * stack (runtime/task.c, runtime/runtime.c): a binding never leaks into a
 * task polled next, and a task that moves to another worker finds its
 * bindings again because its scopes push them on every poll.
 *
 * Lookup walks the stack: O(number of scopes being polled), a handful.
 * Context: any thread; nothing shared between threads, no atomics.
 */
#include "context.h"
#include "internal.h"
#include "nonnull.h"
#include "weft/task_local.h"

/* Runs f (poll or drop of s->inner_) with s's binding on top of the stack. */
static void push(weft_task_local_scope_t *s)
{
    s->binding_.outer_ = weft__tls.locals;
    weft__tls.locals = &s->binding_;
}

static void pop(weft_task_local_scope_t *s)
{
    if (weft__tls.locals != &s->binding_)
        weft_panic(WEFT_SITE, "task-local scope of %s: bindings unbalanced (a scope's inner future kept one "
                              "of its own past its poll?)", s->binding_.key_->name);
    weft__tls.locals = s->binding_.outer_;
}

static weft_poll_t scope_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_task_local_scope_t *s = (weft_task_local_scope_t *)(void *)f;
    if (s->inner_ == NULL)
        weft_panic(WEFT_SITE, "weft_task_local_scope polled after it completed");
    push(s);
    weft_poll_t p = weft_future_poll(s->inner_, cx, s->out_);
    if (p == WEFT_READY) {
        weft_future_t *inner = s->inner_;
        s->inner_ = NULL;
        weft_future_drop(inner); /* inside the scope, as Tokio drops it */
    }
    pop(s);
    if (p == WEFT_READY && out != NULL)
        *(weft_unit_t *)out = WEFT_UNIT;
    return p;
}

static void scope_drop(weft_future_t *f)
{
    weft_task_local_scope_t *s = (weft_task_local_scope_t *)(void *)f;
    if (s->inner_ == NULL)
        return;
    weft_future_t *inner = s->inner_;
    s->inner_ = NULL;
    push(s); /* the inner future's cleanup still sees the value */
    weft_future_drop(inner);
    pop(s);
}

static const weft_future_vtable_t scope_vtable = {
    scope_poll, scope_drop, NULL, sizeof(weft_task_local_scope_t), 0, "weft_task_local_scope",
};

weft_task_local_scope_t weft_task_local_scope(const weft_task_local_key_t *key, void *value, weft_future_t *inner,
                                              void *out)
{
    WEFT__REQUIRE("weft_task_local_scope", key);
    WEFT__REQUIRE("weft_task_local_scope", inner);
    return (weft_task_local_scope_t){ { &scope_vtable }, { key, value, NULL }, inner, out };
}

void *weft_task_local_sync_scope(const weft_task_local_key_t *key, void *value, void *(*fn)(void *arg), void *arg)
{
    WEFT__REQUIRE("weft_task_local_sync_scope", key);
    WEFT__REQUIRE("weft_task_local_sync_scope", fn);
    weft_task_local_binding_t b = { key, value, weft__tls.locals };
    weft__tls.locals = &b;
    void *r = fn(arg);
    if (weft__tls.locals != &b)
        weft_panic(WEFT_SITE, "weft_task_local_sync_scope of %s: bindings unbalanced", key->name);
    weft__tls.locals = b.outer_;
    return r;
}

static const weft_task_local_binding_t *find(const weft_task_local_key_t *key)
{
    for (const weft_task_local_binding_t *b = weft__tls.locals; b != NULL; b = b->outer_)
        if (b->key_ == key)
            return b;
    return NULL;
}

void *weft_task_local_get(const weft_task_local_key_t *key)
{
    WEFT__REQUIRE("weft_task_local_get", key);
    const weft_task_local_binding_t *b = find(key);
    return b != NULL ? b->value_ : NULL;
}

void *weft_task_local_expect(const weft_task_local_key_t *key)
{
    WEFT__REQUIRE("weft_task_local_expect", key);
    const weft_task_local_binding_t *b = find(key);
    if (b == NULL)
        weft_panic(WEFT_SITE, "task-local %s read outside any scope of it", key->name);
    return b->value_;
}
