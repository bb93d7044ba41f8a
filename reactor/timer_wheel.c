/* reactor/timer_wheel.c - see timer_wheel.h for the design. */
#include "timer_wheel.h"

#include <string.h>

static unsigned level_for(uint64_t elapsed, uint64_t when)
{
    uint64_t masked = (elapsed ^ when) | (WEFT_WHEEL_SLOTS - 1);
    if (masked >= (UINT64_C(1) << 36)) /* beyond the top level: use it */
        masked = (UINT64_C(1) << 36) - 1;
    unsigned significant = 63u - (unsigned)__builtin_clzll(masked);
    return significant / 6;
}

void weft__wheel_init(weft__wheel_t *w, uint64_t now_ms)
{
    memset(w, 0, sizeof *w);
    w->elapsed = now_ms;
}

bool weft__wheel_insert(weft__wheel_t *w, weft__timer_t *t, uint64_t deadline)
{
    if (deadline <= w->elapsed) {
        t->linked_ = false;
        return false;
    }
    if (deadline - w->elapsed > WEFT_WHEEL_MAX_MS)
        deadline = w->elapsed + WEFT_WHEEL_MAX_MS;
    unsigned level = level_for(w->elapsed, deadline);
    unsigned slot = (unsigned)(deadline >> (level * 6)) & (WEFT_WHEEL_SLOTS - 1);
    t->wheel_deadline_ = deadline;
    t->level_ = (uint8_t)level;
    t->slot_ = (uint8_t)slot;
    t->prev_ = NULL;
    t->next_ = w->slots[level][slot];
    if (t->next_)
        t->next_->prev_ = t;
    w->slots[level][slot] = t;
    w->occupied[level] |= UINT64_C(1) << slot;
    t->linked_ = true;
    w->count++;
    return true;
}

void weft__wheel_remove(weft__wheel_t *w, weft__timer_t *t)
{
    if (!t->linked_)
        return;
    if (t->prev_)
        t->prev_->next_ = t->next_;
    else
        w->slots[t->level_][t->slot_] = t->next_;
    if (t->next_)
        t->next_->prev_ = t->prev_;
    if (w->slots[t->level_][t->slot_] == NULL)
        w->occupied[t->level_] &= ~(UINT64_C(1) << t->slot_);
    t->prev_ = t->next_ = NULL;
    t->linked_ = false;
    w->count--;
}

/* The occupied slot with the earliest start, over all levels. Usually the
 * lowest occupied level holds it, but not always: an advance that stopped
 * midway through a higher slot (weft__wheel_advance_max) leaves that slot
 * due at the wheel's time while newer timers sit in level 0 after it. */
static bool next_slot(const weft__wheel_t *w, unsigned *level_out, unsigned *slot_out, uint64_t *when_out)
{
    bool found = false;
    for (unsigned level = 0; level < WEFT_WHEEL_LEVELS; level++) {
        uint64_t occ = w->occupied[level];
        if (occ == 0)
            continue;
        uint64_t slot_range = UINT64_C(1) << (6 * level);
        uint64_t level_range = slot_range << 6;
        unsigned now_slot = (unsigned)(w->elapsed / slot_range) & (WEFT_WHEEL_SLOTS - 1);
        uint64_t rotated = now_slot ? (occ >> now_slot) | (occ << (64 - now_slot)) : occ;
        unsigned slot = (now_slot + (unsigned)__builtin_ctzll(rotated)) & (WEFT_WHEEL_SLOTS - 1);
        uint64_t level_start = w->elapsed & ~(level_range - 1);
        uint64_t when = level_start + slot * slot_range;
        if (when <= w->elapsed && slot != now_slot)
            when += level_range;
        if (when < w->elapsed)
            when = w->elapsed;
        if (!found || when <= *when_out) { /* ties: the higher level cascades first */
            *level_out = level;
            *slot_out = slot;
            *when_out = when;
            found = true;
        }
    }
    return found;
}

uint64_t weft__wheel_next(const weft__wheel_t *w)
{
    unsigned level, slot;
    uint64_t when;
    return next_slot(w, &level, &slot, &when) ? when : UINT64_MAX;
}

uint64_t weft__wheel_advance_max(weft__wheel_t *w, uint64_t now_ms, void (*fire)(weft__timer_t *t, void *arg),
                                 void *arg, uint64_t max)
{
    uint64_t fired = 0;
    unsigned level, slot;
    uint64_t when;
    while (fired < max && next_slot(w, &level, &slot, &when) && when <= now_ms) {
        w->elapsed = when;
        /* Unlink timers one by one: fire the due ones, move the others to a
         * lower level. Stopping midway leaves the rest in their slot. */
        weft__timer_t *t;
        while (fired < max && (t = w->slots[level][slot]) != NULL) {
            weft__wheel_remove(w, t);
            if (t->wheel_deadline_ <= now_ms) {
                fire(t, arg);
                fired++;
            } else {
                weft__wheel_insert(w, t, t->wheel_deadline_);
            }
        }
    }
    if (fired < max && now_ms > w->elapsed)
        w->elapsed = now_ms;
    return fired;
}

uint64_t weft__wheel_advance(weft__wheel_t *w, uint64_t now_ms, void (*fire)(weft__timer_t *t, void *arg),
                             void *arg)
{
    return weft__wheel_advance_max(w, now_ms, fire, arg, UINT64_MAX);
}
