/* tests/good_await_local.c - the twins of bad_await_local.c written as the
 * rule asks: what lives across an await is a frame field, and a local
 * used only between two awaits sits in a block that closes before the next
 * one. Must compile with -Wall -Wextra -Wpedantic -Werror, as C and C++. */
#include <weft/weft.h>

typedef struct {
    WEFT_FRAME;
    int n;
    int x, i; /* what the bad twins kept in locals */
    weft_yield_t y;
} frame_t;

static int twice(int v) { return 2 * v; }

WEFT_ASYNC(frame_t, body, int)
{
    WEFT_BEGIN();
    self->x = self->n + 1;
    WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    for (self->i = 0; self->i < self->n; self->i++)
        WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    if (self->n > 0) {
        { /* a local used and forgotten before the await */
            int t = twice(self->n);
            self->x += t;
        }
        WEFT_YIELD();
        if (self->x < 0)
            WEFT_RETURN(-1);
    }
    for (int k = 0; k < 3; k++) /* a loop with no await in it */
        self->x += k;
    WEFT_RETURN(self->x);
    WEFT_END();
}

WEFT_NODISCARD frame_t make_body(int n);
frame_t make_body(int n)
{
    frame_t f = { WEFT_FRAME_INIT(body), .n = n, .x = 0, .i = 0, .y = weft_yield_now() };
    return f;
}
