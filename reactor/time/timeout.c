/* reactor/time/timeout.c - a deadline around any future: the inner future
 * and a sleep polled side by side; whichever finishes first decides, and
 * the inner future is dropped (cancelled) on expiry. */
#include "weft/error.h"
#include "weft/time.h"

#include "../../runtime/nonnull.h"

static weft_poll_t timeout_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_timeout_t *t = (weft_timeout_t *)(void *)f;
    int rc;
    if (weft_future_poll(t->inner_, cx, t->inner_out_) == WEFT_READY) {
        rc = 0;
    } else if (weft_future_poll(&t->sleep_.future, cx, NULL) == WEFT_READY) {
        rc = WEFT_ETIMEDOUT;
    } else {
        return WEFT_PENDING;
    }
    /* Either way the inner future is finished with: drop it now (on expiry
     * this is the cancellation). */
    weft_future_drop(t->inner_);
    t->inner_ = NULL;
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void timeout_drop(weft_future_t *f)
{
    weft_timeout_t *t = (weft_timeout_t *)(void *)f;
    if (t->inner_ != NULL) {
        weft_future_t *in = t->inner_;
        t->inner_ = NULL;
        weft_future_drop(in);
    }
    weft_future_drop(&t->sleep_.future);
}

static const weft_future_vtable_t timeout_vtable = {
    timeout_poll, timeout_drop, NULL, sizeof(weft_timeout_t), sizeof(int), "weft_timeout",
};

weft_timeout_t weft_timeout_ms(weft_future_t *inner, void *inner_out, uint64_t ms)
{
    WEFT__REQUIRE("weft_timeout_ms", inner);
    return (weft_timeout_t){ { &timeout_vtable }, inner, inner_out, weft_sleep_ms(ms) };
}

