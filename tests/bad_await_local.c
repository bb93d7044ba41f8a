/* tests/bad_await_local.c - async bodies that keep a block-scope local
 * across an await, each of which must fail to compile (docs/async.md,
 * rule 1). Built by tests/check_await_local.py once per BAD_* macro, as C
 * and as C++, with no warning flags: the diagnostic is on by default.
 * Valid C11 and C++20 alike (designated initializers, no compound
 * literals). */
#include <weft/weft.h>

typedef struct {
    WEFT_FRAME;
    int n;
    weft_yield_t y;
} frame_t;

WEFT_ASYNC(frame_t, body, int)
{
    WEFT_BEGIN();
#if defined(BAD_TOP_LEVEL)
    /* An initialized local at the top of the body, read after an await. */
    int x = self->n + 1;
    WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    WEFT_RETURN(x);
#elif defined(BAD_LOOP_COUNTER)
    /* A for-loop counter with an await in the loop. */
    for (int i = 0; i < self->n; i++)
        WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    WEFT_RETURN(0);
#elif defined(BAD_IN_BRANCH)
    /* A local of an if block that holds an await, read after it. */
    if (self->n > 0) {
        int x = self->n * 2;
        WEFT_YIELD();
        WEFT_RETURN(x);
    }
    WEFT_RETURN(0);
#elif defined(BAD_ASSIGNED_LATER)
    /* Declared without an initializer, assigned before the await, read
     * after it (caught by Clang's flow analysis; see check_await_local.py). */
    int x;
    x = self->n + 1;
    WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    WEFT_RETURN(x);
#else
#error "define one BAD_* case"
#endif
    WEFT_END();
}

WEFT_NODISCARD frame_t make_body(int n);
frame_t make_body(int n)
{
    frame_t f = { WEFT_FRAME_INIT(body), .n = n };
    return f;
}
