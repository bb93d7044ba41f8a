/* reactor/timer_wheel.h - a hierarchical timing wheel (internal).
 *
 * Six levels of 64 slots: level 0 holds timers due in the current 64 ms
 * block at 1 ms per slot, level 1 the current 4.1 s block at 64 ms per slot,
 * and so on up to level 5 (2^36 ms, about 2.2 years). A timer's level is
 * the highest 6-bit digit in which its deadline differs from the wheel's
 * time, so insert and remove are O(1) (a list push and unlink, a bit in the
 * level's occupancy word). Advancing finds the next occupied slot with a
 * rotate and a count-trailing-zeros per level; a slot above level 0 is
 * re-inserted lower when reached (cascading), so each timer moves at most
 * five times. Deadlines further than WEFT_WHEEL_MAX_MS away are clamped to it.
 *
 * Single-threaded: its shard's lock protects it (time_driver.c).
 */
#ifndef WEFT_TIMER_WHEEL_H
#define WEFT_TIMER_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/time.h"

#define WEFT_WHEEL_LEVELS 6
#define WEFT_WHEEL_SLOTS 64
/* The farthest deadline: one level-5 slot short of a full turn, so a
 * clamped timer never lands in the slot the wheel is in (which would read
 * as due now). About 2.1 years. */
#define WEFT_WHEEL_MAX_MS ((UINT64_C(1) << 36) - (UINT64_C(1) << 30) - 1)

/* The entry is the public weft_timer_entry_t, embedded in each sleep. */
typedef weft_timer_entry_t weft__timer_t;

typedef struct weft__wheel {
    uint64_t elapsed; /* the wheel's time, ms */
    uint64_t occupied[WEFT_WHEEL_LEVELS];
    weft__timer_t *slots[WEFT_WHEEL_LEVELS][WEFT_WHEEL_SLOTS];
    uint64_t count;
} weft__wheel_t;

void weft__wheel_init(weft__wheel_t *w, uint64_t now_ms);
/* Inserts t due at `deadline` (clamped). Returns false, without inserting,
 * when the deadline is not after the wheel's time: the timer is due now. */
bool weft__wheel_insert(weft__wheel_t *w, weft__timer_t *t, uint64_t deadline);
void weft__wheel_remove(weft__wheel_t *w, weft__timer_t *t);
/* The earliest time at which weft__wheel_advance has work, or UINT64_MAX. */
uint64_t weft__wheel_next(const weft__wheel_t *w);
/* Advances to now_ms, calling fire(t, arg) for each timer due (already
 * unlinked). Returns how many fired. */
uint64_t weft__wheel_advance(weft__wheel_t *w, uint64_t now_ms, void (*fire)(weft__timer_t *t, void *arg),
                             void *arg);
/* The same, stopping after `max` timers fired (the wheel stays consistent:
 * call again to go on). */
uint64_t weft__wheel_advance_max(weft__wheel_t *w, uint64_t now_ms, void (*fire)(weft__timer_t *t, void *arg),
                                 void *arg, uint64_t max);

#endif
