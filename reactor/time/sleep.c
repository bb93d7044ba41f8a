/* reactor/time/sleep.c - the sleep future, on the time driver's timing
 * wheels (one per worker, reactor/time_driver.h).
 *
 * A sleep registers at its first poll: under the lock of the polling
 * worker's wheel (its shard, kept for the sleep's life; another shard when
 * that one's lock is taken at the moment) it goes into that wheel, or is
 * due at once. Whoever fires it (a worker, or the libuv
 * thread as the backstop) does so under the same lock: it sets fired_
 * (release) and wakes the atomic waker. poll registers the waker before it
 * reads fired_ (acquire), so a fire between the two is never missed.
 * Dropping a registered sleep unlinks it under the lock, which also waits
 * out a fire in progress, unless fired_ already says FIRED: then the entry
 * is unlinked and the firer is done with it, and the drop does not touch
 * the lock (a sleep that ran to completion, the common case, costs one
 * lock acquisition, not two). */
#include <string.h>

#include "../time_driver.h"
#include "../../runtime/nonnull.h"

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
    uint64_t now = weft_now_ns(); /* the current runtime's clock: it may be virtual */
    uint64_t add = ms > (UINT64_MAX - now) / 1000000u ? UINT64_MAX - now : ms * 1000000u;
    return weft_sleep_until(now + add);
}

/* Under sh's lock: registers (or re-registers) s at its deadline in sh, its
 * shard; sets fired_ when due now. Returns what weft__time_notify must do
 * once the lock is released. */
static unsigned arm_locked(weft_sleep_t *s, weft__time_shard_t *sh)
{
    weft__driver_t *d = s->driver_;
    unsigned notify = 0;
    weft__wheel_remove(&sh->wheel, &s->entry_);
    uint64_t ms = weft__time_ms_ceil(d, s->deadline_ns);
    bool pending = weft__time_insert_locked(d, sh, &s->entry_, ms, &notify);
    atomic_store_explicit(WEFT__SLEEP_FIRED_WORD(s), pending ? 0 : WEFT__SLEEP_FIRED, memory_order_release);
    return notify;
}

/* Re-registers s in the shard it registered in first. */
static void sleep_arm(weft_sleep_t *s)
{
    weft__time_shard_t *sh = &s->driver_->time.shards[s->entry_.shard_];
    pthread_mutex_lock(&sh->lock);
    unsigned notify = arm_locked(s, sh);
    pthread_mutex_unlock(&sh->lock);
    weft__time_notify(s->driver_, notify);
}

/* The first registration: in this thread's shard, or, when another thread
 * holds its lock right now (firing it, or inserting), in the first other
 * shard whose lock is free. A worker that blocked on the lock would stall
 * every task in its queue for as long as the holder runs, and a holder
 * descheduled on a busy machine runs again only after milliseconds (a
 * million sleeps on two workers saw first polls wait 11 ms). Only when
 * every shard is taken does it wait, for its own. */
static void sleep_register(weft_sleep_t *s)
{
    weft__time_driver_t *t = &s->driver_->time;
    unsigned home = weft__time_shard_here(s->driver_);
    for (unsigned k = 0; k < t->nshards; k++) {
        unsigned i = (home + k) % t->nshards;
        weft__time_shard_t *sh = &t->shards[i];
        if (pthread_mutex_trylock(&sh->lock) == 0) {
            s->entry_.shard_ = (uint16_t)i;
            unsigned notify = arm_locked(s, sh);
            pthread_mutex_unlock(&sh->lock);
            weft__time_notify(s->driver_, notify);
            return;
        }
    }
    s->entry_.shard_ = (uint16_t)home;
    sleep_arm(s);
}

static weft_poll_t sleep_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_sleep_t *s = (weft_sleep_t *)(void *)f;
    if (s->driver_ == NULL) {
        s->driver_ = weft__time_current("weft_sleep");
        sleep_register(s);
    }
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    /* acquire: pairs with fire_timer's release (time_driver.c). */
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
    weft__driver_t *d = s->driver_;
    /* acquire: pairs with fire_timer's last store; the firer's touches of
     * the sleep happen before our caller frees it. */
    if (d != NULL && atomic_load_explicit(WEFT__SLEEP_FIRED_WORD(s), memory_order_acquire) != WEFT__SLEEP_FIRED) {
        weft__time_shard_t *sh = &d->time.shards[s->entry_.shard_];
        pthread_mutex_lock(&sh->lock);
        weft__wheel_remove(&sh->wheel, &s->entry_);
        pthread_mutex_unlock(&sh->lock);
    }
    s->driver_ = NULL;
    weft_atomic_waker_drop(&s->waker_);
}

static const weft_future_vtable_t sleep_vtable = {
    sleep_poll, sleep_drop, NULL, sizeof(weft_sleep_t), 0, "weft_sleep",
};

void weft_sleep_reset(weft_sleep_t *s, uint64_t deadline_ns)
{
    WEFT__REQUIRE("weft_sleep_reset", s);
    s->deadline_ns = deadline_ns;
    if (s->driver_ == NULL) {
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
           (s->driver_ != NULL ? weft__time_now_ns(s->driver_) : weft_now_ns()) >= s->deadline_ns;
}

