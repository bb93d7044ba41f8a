/* reactor/time/interval.c - a periodic tick on a sleep that is re-armed
 * at each tick, with a policy for ticks missed while the task was busy. */
#include "weft/time.h"

#include "../../runtime/internal.h"
#include "../../runtime/nonnull.h"

weft_interval_t weft_interval_ms(uint64_t period_ms, weft_missed_tick_t missed)
{
    weft_interval_t iv;
    iv.sleep_ = weft_sleep_until(weft_now_ns()); /* the first tick is now */
    iv.period_ns_ = (period_ms ? period_ms : 1) * 1000000u;
    iv.missed_ = missed;
    return iv;
}

static weft_poll_t tick_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_interval_t *iv = ((weft_tick_t *)(void *)f)->iv_;
    if (weft_future_poll(&iv->sleep_.future, cx, NULL) == WEFT_PENDING)
        return WEFT_PENDING;
    uint64_t scheduled = iv->sleep_.deadline_ns;
    uint64_t now = weft_now_ns();
    uint64_t next = scheduled + iv->period_ns_;
    if (next <= now) { /* we are late by at least one period */
        switch (iv->missed_) {
        case WEFT_MISSED_BURST:
            break; /* next stays on the grid, already due: fires at once */
        case WEFT_MISSED_DELAY:
            next = now + iv->period_ns_;
            break;
        case WEFT_MISSED_SKIP:
            next = scheduled + ((now - scheduled) / iv->period_ns_ + 1) * iv->period_ns_;
            break;
        }
    }
    weft_sleep_reset(&iv->sleep_, next);
    if (out != NULL)
        *(uint64_t *)out = scheduled;
    return WEFT_READY;
}

static const weft_future_vtable_t tick_vtable = {
    tick_poll, NULL, NULL, sizeof(weft_tick_t), sizeof(uint64_t), "weft_interval_tick",
};

weft_tick_t weft_interval_tick(weft_interval_t *iv)
{
    WEFT__REQUIRE("weft_interval_tick", iv);
    return (weft_tick_t){ { &tick_vtable }, iv };
}

void weft_interval_drop(weft_interval_t *iv)
{
    WEFT__REQUIRE("weft_interval_drop", iv);
    weft_future_drop(&iv->sleep_.future);
}
