/* reactor/timer_wheel.h - a hierarchical timing wheel (internal).
 *
 * Level 0 is a ring of 4096 slots of 1 ms: it holds every timer due within
 * the next 4.1 s, each in the slot of its own millisecond, so a timer that
 * close is never moved before it fires. Above it, five levels of 64 slots
 * of 2^11, 2^17, 2^23, 2^29 and 2^35 ms hold the farther ones (up to
 * WEFT_WHEEL_MAX_MS, about 2.1 years, where deadlines are clamped). Every
 * level is a sliding window: a timer goes to the lowest level whose 64
 * slots, counted from the one holding the wheel's time, reach its
 * deadline. Insert and remove are O(1) (a list push and unlink, a bit in
 * the level's occupancy map). Advancing finds the next occupied slot with a
 * count-trailing-zeros per level (two for the ring, over a summary word);
 * a slot above level 0 is re-inserted lower when reached (cascading).
 *
 * Cascading walks a slot's list, a cache miss per timer, and what is due
 * meanwhile waits. So a level-1 slot (2048 ms, half the ring) is cascaded
 * early: once the wheel's time is within 2048 ms of its start, when every
 * timer in it already fits the ring, long before the first is due; and
 * each advance moves at most `max` timers, fired or cascaded, so a large
 * slot is moved in pieces. Slots of the levels above (timers more than
 * 131 s away) cascade when the wheel's time reaches them.
 *
 * Single-threaded: its shard's lock protects it (time_driver.c).
 */
#ifndef WEFT_TIMER_WHEEL_H
#define WEFT_TIMER_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/time.h"

#define WEFT_WHEEL_RING 4096u /* level 0: 1 ms slots */
#define WEFT_WHEEL_LEVELS 6   /* the ring and five levels of 64 slots */
#define WEFT_WHEEL_SLOTS 64
/* The farthest deadline, about 2.1 years: one 2^30 ms slot short of 2^36
 * ms (the wheel's range when it had six levels of 64 slots; kept). */
#define WEFT_WHEEL_MAX_MS ((UINT64_C(1) << 36) - (UINT64_C(1) << 30) - 1)

/* The entry is the public weft_timer_entry_t, embedded in each sleep. */
typedef weft_timer_entry_t weft__timer_t;

typedef struct weft__wheel {
    uint64_t elapsed; /* the wheel's time, ms */
    uint64_t count;
    uint64_t ring_summary;                      /* bit i: ring_occupied[i] != 0 */
    uint64_t ring_occupied[WEFT_WHEEL_RING / 64];
    uint64_t occupied[WEFT_WHEEL_LEVELS];       /* levels 1-5 (index 0 unused) */
    weft__timer_t *slots[WEFT_WHEEL_LEVELS][WEFT_WHEEL_SLOTS];
    weft__timer_t *ring[WEFT_WHEEL_RING];
} weft__wheel_t;

void weft__wheel_init(weft__wheel_t *w, uint64_t now_ms);
/* Inserts t due at `deadline` (clamped). Returns false, without inserting,
 * when the deadline is not after the wheel's time: the timer is due now. */
bool weft__wheel_insert(weft__wheel_t *w, weft__timer_t *t, uint64_t deadline);
void weft__wheel_remove(weft__wheel_t *w, weft__timer_t *t);
/* The earliest time at which weft__wheel_advance has work (a timer to fire
 * or a slot to cascade), or UINT64_MAX. */
uint64_t weft__wheel_next(const weft__wheel_t *w);
/* When the wheel has work for t, a linked timer: its deadline in the ring,
 * earlier above it (its slot's cascade). */
uint64_t weft__wheel_due(const weft__wheel_t *w, const weft__timer_t *t);
/* Advances to now_ms, calling fire(t, arg) for each timer due (already
 * unlinked). Returns how many fired. */
uint64_t weft__wheel_advance(weft__wheel_t *w, uint64_t now_ms, void (*fire)(weft__timer_t *t, void *arg),
                             void *arg);
/* The same, stopping once it has handled `max` timers, fired or cascaded
 * (the wheel stays consistent). Returns how many it handled: max means
 * there may be more, call again. */
uint64_t weft__wheel_advance_max(weft__wheel_t *w, uint64_t now_ms, void (*fire)(weft__timer_t *t, void *arg),
                                 void *arg, uint64_t max);

#endif
