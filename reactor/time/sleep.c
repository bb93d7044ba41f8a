/* reactor/time/sleep.c - sleep, timeout and interval futures on the reactor's
 * timing wheels (one per worker, reactor.h).
 *
 * A sleep registers at its first poll: under the lock of the polling
 * worker's wheel (its shard, kept for the sleep's life) it goes into that
 * wheel, or is due at once. Whoever fires it (a worker, or the reactor
 * thread as the backstop) does so under the same lock: it sets fired_
 * (release) and wakes the atomic waker. poll registers the waker before it
 * reads fired_ (acquire), so a fire between the two is never missed.
 * Dropping a registered sleep unlinks it under the lock, which also waits
 * out a fire in progress, unless fired_ already says FIRED: then the entry
 * is unlinked and the firer is done with it, and the drop does not touch
 * the lock (a sleep that ran to completion, the common case, costs one
 * lock acquisition, not two). */
#include <string.h>

#include "../reactor.h"
#include "../../runtime/nonnull.h"
#include "../../runtime/scheduler.h"

static const weft_future_vtable_t sleep_vtable;

weft_sleep_t weft_sleep_until(uint64_t deadline_ns)
{
    weft_sleep_t s;
    memset(&s, 0, sizeof s);
    s.future.vtable = &sleep_vtable;
    s.deadline_ns = deadline_ns;
    atomic_init(WEFT__SLEEP_FIRED_WORD(&s), 0);
    weft_atomic_waker_init(&s.waker_);
    return s;
}

weft_sleep_t weft_sleep_ms(uint64_t ms)
{
    uint64_t now = weft__now_ns();
    uint64_t add = ms > (UINT64_MAX - now) / 1000000u ? UINT64_MAX - now : ms * 1000000u;
    return weft_sleep_until(now + add);
}

static weft__reactor_t *current_reactor(const char *what)
{
    weft__sched_t *s = weft__tls.sched;
    if (s == NULL)
        weft_panic(WEFT_SITE, "%s polled outside a weft runtime: time needs a runtime's reactor", what);
    if (s->reactor == NULL)
        weft_panic(WEFT_SITE, "%s polled on a runtime built with enable_time = false", what);
    return s->reactor;
}

/* The shard a sleep first polled on this thread registers in: the
 * worker's own, or for another thread (a block_on caller, a blocking job)
 * one picked by its thread-local address, to spread such threads out. */
static unsigned shard_here(const weft__reactor_t *r)
{
    const weft__worker_t *w = weft__tls.worker;
    if (w != NULL && w->sched->reactor == r)
        return w->index % r->nshards;
    return (unsigned)(((uintptr_t)&weft__tls >> 12) % r->nshards);
}

/* Registers (or re-registers) s at its deadline in its shard; sets fired_
 * when due now. */
static void sleep_arm(weft_sleep_t *s)
{
    weft__reactor_t *r = s->reactor_;
    weft__time_shard_t *sh = &r->shards[s->entry_.shard_];
    unsigned notify = 0;
    pthread_mutex_lock(&sh->lock);
    weft__wheel_remove(&sh->wheel, &s->entry_);
    uint64_t ms = weft__reactor_ms_ceil(r, s->deadline_ns);
    bool pending = weft__reactor_timer_insert_locked(r, sh, &s->entry_, ms, &notify);
    atomic_store_explicit(WEFT__SLEEP_FIRED_WORD(s), pending ? 0 : WEFT__SLEEP_FIRED, memory_order_release);
    pthread_mutex_unlock(&sh->lock);
    weft__reactor_timer_notify(r, notify);
}

static weft_poll_t sleep_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_sleep_t *s = (weft_sleep_t *)(void *)f;
    if (s->reactor_ == NULL) {
        s->reactor_ = current_reactor("weft_sleep");
        s->entry_.shard_ = (uint16_t)shard_here(s->reactor_);
        sleep_arm(s);
    }
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    /* acquire: pairs with fire_timer's release. */
    if (!atomic_load_explicit(WEFT__SLEEP_FIRED_WORD(s), memory_order_acquire)) {
        weft_atomic_waker_register(&s->waker_, cx->waker);
        if (!atomic_load_explicit(WEFT__SLEEP_FIRED_WORD(s), memory_order_acquire)) {
            weft__coop_refund();
            return WEFT_PENDING;
        }
    }
    if (out != NULL)
        *(weft_unit_t *)out = WEFT_UNIT;
    return WEFT_READY;
}

static void sleep_drop(weft_future_t *f)
{
    weft_sleep_t *s = (weft_sleep_t *)(void *)f;
    weft__reactor_t *r = s->reactor_;
    /* acquire: pairs with fire_timer's last store; the firer's touches of
     * the sleep happen before our caller frees it. */
    if (r != NULL && atomic_load_explicit(WEFT__SLEEP_FIRED_WORD(s), memory_order_acquire) != WEFT__SLEEP_FIRED) {
        weft__time_shard_t *sh = &r->shards[s->entry_.shard_];
        pthread_mutex_lock(&sh->lock);
        weft__wheel_remove(&sh->wheel, &s->entry_);
        pthread_mutex_unlock(&sh->lock);
    }
    s->reactor_ = NULL;
    weft_atomic_waker_drop(&s->waker_);
}

static const weft_future_vtable_t sleep_vtable = {
    sleep_poll, sleep_drop, NULL, sizeof(weft_sleep_t), 0, "weft_sleep",
};

void weft_sleep_reset(weft_sleep_t *s, uint64_t deadline_ns)
{
    WEFT__REQUIRE("weft_sleep_reset", s);
    s->deadline_ns = deadline_ns;
    if (s->reactor_ == NULL) {
        atomic_store_explicit(WEFT__SLEEP_FIRED_WORD(s), 0, memory_order_relaxed);
        return;
    }
    sleep_arm(s);
    if (atomic_load_explicit(WEFT__SLEEP_FIRED_WORD(s), memory_order_acquire))
        weft_atomic_waker_wake(&s->waker_); /* due at once: let the waiter see it */
}

bool weft_sleep_is_elapsed(const weft_sleep_t *s)
{
    WEFT__REQUIRE("weft_sleep_is_elapsed", s);
    return atomic_load_explicit(WEFT__SLEEP_FIRED_WORD((weft_sleep_t *)s), memory_order_acquire) != 0 ||
           weft__now_ns() >= s->deadline_ns;
}

/* ---- timeout ------------------------------------------------------------- */

static weft_poll_t timeout_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_timeout_t *t = (weft_timeout_t *)(void *)f;
    int rc;
    if (weft_future_poll(t->inner, cx, t->inner_out) == WEFT_READY) {
        rc = 0;
    } else if (weft_future_poll(&t->sleep.future, cx, NULL) == WEFT_READY) {
        rc = WEFT_ETIMEDOUT;
    } else {
        return WEFT_PENDING;
    }
    /* Either way the inner future is finished with: drop it now (on expiry
     * this is the cancellation). */
    weft_future_drop(t->inner);
    t->inner = NULL;
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void timeout_drop(weft_future_t *f)
{
    weft_timeout_t *t = (weft_timeout_t *)(void *)f;
    if (t->inner != NULL) {
        weft_future_t *in = t->inner;
        t->inner = NULL;
        weft_future_drop(in);
    }
    weft_future_drop(&t->sleep.future);
}

static const weft_future_vtable_t timeout_vtable = {
    timeout_poll, timeout_drop, NULL, sizeof(weft_timeout_t), sizeof(int), "weft_timeout",
};

weft_timeout_t weft_timeout_ms(weft_future_t *inner, void *inner_out, uint64_t ms)
{
    WEFT__REQUIRE("weft_timeout_ms", inner);
    return (weft_timeout_t){ { &timeout_vtable }, inner, inner_out, weft_sleep_ms(ms) };
}

/* ---- interval -------------------------------------------------------------- */

weft_interval_t weft_interval_ms(uint64_t period_ms, weft_missed_tick_t missed)
{
    weft_interval_t iv;
    iv.sleep = weft_sleep_until(weft__now_ns()); /* the first tick is now */
    iv.period_ns = (period_ms ? period_ms : 1) * 1000000u;
    iv.missed = missed;
    return iv;
}

static weft_poll_t tick_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_interval_t *iv = ((weft_tick_t *)(void *)f)->iv;
    if (weft_future_poll(&iv->sleep.future, cx, NULL) == WEFT_PENDING)
        return WEFT_PENDING;
    uint64_t scheduled = iv->sleep.deadline_ns;
    uint64_t now = weft__now_ns();
    uint64_t next = scheduled + iv->period_ns;
    if (next <= now) { /* we are late by at least one period */
        switch (iv->missed) {
        case WEFT_MISSED_BURST:
            break; /* next stays on the grid, already due: fires at once */
        case WEFT_MISSED_DELAY:
            next = now + iv->period_ns;
            break;
        case WEFT_MISSED_SKIP:
            next = scheduled + ((now - scheduled) / iv->period_ns + 1) * iv->period_ns;
            break;
        }
    }
    weft_sleep_reset(&iv->sleep, next);
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
    weft_future_drop(&iv->sleep.future);
}
