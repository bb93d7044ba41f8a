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
#include "weft/atomic_waker.h"

#define AW_REGISTERING 1u
#define AW_WAKING 2u

void weft_atomic_waker_init(weft_atomic_waker_t *aw)
{
    atomic_init(&aw->state, 0);
    aw->waker = (weft_waker_t){ NULL, NULL };
}

void weft_atomic_waker_register(weft_atomic_waker_t *aw, const weft_waker_t *w)
{
    unsigned expect = 0;
    /* acquire: pairs with take's release fetch_and: the slot is empty or
     * holds the waker we left, and no one else touches it now. */
    if (!atomic_compare_exchange_strong_explicit(&aw->state, &expect, AW_REGISTERING, memory_order_acquire,
                                                 memory_order_acquire)) {
        /* WAKING: a wake is running right now; make sure the task polls
         * again rather than miss it. (REGISTERING cannot be seen: one
         * registering thread at a time.) */
        weft_waker_wake_by_ref(w);
        return;
    }
    if (aw->waker.vtable == NULL || !weft_waker_will_wake(&aw->waker, w)) {
        weft_waker_t old = aw->waker;
        aw->waker = weft_waker_clone(w);
        if (old.vtable != NULL)
            weft_waker_drop(&old);
    }
    WEFT_CHAOS();
    expect = AW_REGISTERING;
    /* acq_rel: release publishes the waker to a later take (its acquire
     * fetch_or); acquire pairs with a racing take's fetch_or. */
    if (atomic_compare_exchange_strong_explicit(&aw->state, &expect, 0, memory_order_acq_rel,
                                                memory_order_acquire))
        return;
    /* A take came in (state is REGISTERING|WAKING) and left the slot to us. */
    weft_waker_t wk = aw->waker;
    aw->waker = (weft_waker_t){ NULL, NULL };
    /* release: the emptied slot, before the next register. */
    atomic_store_explicit(&aw->state, 0, memory_order_release);
    if (wk.vtable != NULL)
        weft_waker_wake(&wk);
}

weft_waker_t weft_atomic_waker_take(weft_atomic_waker_t *aw)
{
    WEFT_CHAOS();
    /* acq_rel: acquire pairs with register's release CAS (the waker); release
     * orders the resource's condition before a registerer that sees WAKING. */
    unsigned prev = atomic_fetch_or_explicit(&aw->state, AW_WAKING, memory_order_acq_rel);
    if (prev != 0)
        return (weft_waker_t){ NULL, NULL }; /* the registerer or another taker handles it */
    weft_waker_t wk = aw->waker;
    aw->waker = (weft_waker_t){ NULL, NULL };
    /* release: the emptied slot reaches the next register (acquire CAS). */
    atomic_fetch_and_explicit(&aw->state, ~AW_WAKING, memory_order_release);
    return wk;
}

void weft_atomic_waker_wake(weft_atomic_waker_t *aw)
{
    weft_waker_t wk = weft_atomic_waker_take(aw);
    if (wk.vtable != NULL)
        weft_waker_wake(&wk);
}

void weft_atomic_waker_drop(weft_atomic_waker_t *aw)
{
    weft_waker_drop(&aw->waker);
}
