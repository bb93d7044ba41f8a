/* sync/atomic_waker.c - the register/wake/take protocol.
 *
 * state is a bit set: REGISTERING (a register owns the slot), WAKING (a
 * take/wake owns it or wants it). Rules:
 *  - register: CAS 0 -> REGISTERING; on success it owns the slot, writes the
 *    new waker, then CAS REGISTERING -> 0. If that CAS fails, a wake came in
 *    meanwhile (set WAKING and left the slot to us): take the waker back,
 *    reset the state to 0 and wake it ourselves. If the first CAS fails
 *    because WAKING is set, a wake is in progress: wake the new waker by ref
 *    so the task polls again (it will re-register then).
 *  - take: fetch_or WAKING; if the previous state was 0 it owns the slot:
 *    move the waker out, then clear WAKING. Otherwise the registerer (or the
 *    other taker) will see WAKING and handle it.
 * Memory ordering: the register's final CAS (release) publishes the waker
 * write to the taker's fetch_or (acquire); the taker's fetch_and (release)
 * publishes the emptied slot to the next register's CAS (acquire). The
 * waker's own state (the condition it signals) must be published by the
 * resource before calling wake, and read by the waiter after register.
 * Progress: lock-free; wait-free for take.
 */
#include "../runtime/internal.h"
#include "../runtime/nonnull.h"
#include "weft/atomic_waker.h"

#define AW_REGISTERING 1u
#define AW_WAKING 2u

/* The public struct stores the state word as a plain unsigned (so that
 * weft/atomic_waker.h needs no _Atomic and compiles as C++); every access
 * goes through this cast to the atomic type, which has the same size and
 * alignment. Nothing reads or writes state_ any other way. */
_Static_assert(sizeof(_Atomic unsigned) == sizeof(unsigned) && _Alignof(_Atomic unsigned) == _Alignof(unsigned),
               "weft_atomic_waker_t.state_ must be able to hold an _Atomic unsigned");
#define AW_STATE(aw) ((_Atomic unsigned *)&(aw)->state_)

void weft_atomic_waker_init(weft_atomic_waker_t *aw)
{
    WEFT__REQUIRE("weft_atomic_waker_init", aw);
    atomic_init(AW_STATE(aw), 0);
    aw->waker_ = (weft_waker_t){ NULL, NULL };
}

void weft_atomic_waker_register(weft_atomic_waker_t *aw, const weft_waker_t *w)
{
    WEFT__REQUIRE("weft_atomic_waker_register", aw);
    WEFT__REQUIRE("weft_atomic_waker_register", w);
    unsigned expect = 0;
    /* acquire: pairs with take's release fetch_and: the slot is empty or
     * holds the waker we left, and no one else touches it now. */
    if (!atomic_compare_exchange_strong_explicit(AW_STATE(aw), &expect, AW_REGISTERING, memory_order_acquire,
                                                 memory_order_acquire)) {
        /* WAKING: a wake is running right now; make sure the task polls
         * again rather than miss it. (REGISTERING cannot be seen: one
         * registering thread at a time.) */
        weft_waker_wake_by_ref(w);
        return;
    }
    if (aw->waker_.vtable == NULL || !weft_waker_will_wake(&aw->waker_, w)) {
        weft_waker_t old = aw->waker_;
        aw->waker_ = weft_waker_clone(w);
        if (old.vtable != NULL)
            weft_waker_drop(&old);
    }
    WEFT_CHAOS();
    expect = AW_REGISTERING;
    /* acq_rel: release publishes the waker to a later take (its acquire
     * fetch_or); acquire pairs with a racing take's fetch_or. */
    if (atomic_compare_exchange_strong_explicit(AW_STATE(aw), &expect, 0, memory_order_acq_rel,
                                                memory_order_acquire))
        return;
    /* A take came in (state is REGISTERING|WAKING) and left the slot to us. */
    weft_waker_t wk = aw->waker_;
    aw->waker_ = (weft_waker_t){ NULL, NULL };
    /* release: the emptied slot, before the next register. */
    atomic_store_explicit(AW_STATE(aw), 0, memory_order_release);
    if (wk.vtable != NULL)
        weft_waker_wake(&wk);
}

weft_waker_t weft_atomic_waker_take(weft_atomic_waker_t *aw)
{
    WEFT__REQUIRE("weft_atomic_waker_take", aw);
    WEFT_CHAOS();
    /* acq_rel: acquire pairs with register's release CAS (the waker); release
     * orders the resource's condition before a registerer that sees WAKING. */
    unsigned prev = atomic_fetch_or_explicit(AW_STATE(aw), AW_WAKING, memory_order_acq_rel);
    if (prev != 0)
        return (weft_waker_t){ NULL, NULL }; /* the registerer or another taker handles it */
    weft_waker_t wk = aw->waker_;
    aw->waker_ = (weft_waker_t){ NULL, NULL };
    /* release: the emptied slot reaches the next register (acquire CAS). */
    atomic_fetch_and_explicit(AW_STATE(aw), ~AW_WAKING, memory_order_release);
    return wk;
}

void weft_atomic_waker_wake(weft_atomic_waker_t *aw)
{
    WEFT__REQUIRE("weft_atomic_waker_wake", aw);
    weft_waker_t wk = weft_atomic_waker_take(aw);
    if (wk.vtable != NULL)
        weft_waker_wake(&wk);
}

void weft_atomic_waker_drop(weft_atomic_waker_t *aw)
{
    WEFT__REQUIRE("weft_atomic_waker_drop", aw);
    weft_waker_drop(&aw->waker_);
}
