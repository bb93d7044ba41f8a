/* reactor/timer_wheel.c - see timer_wheel.h for the design. */
#include "timer_wheel.h"

#include <string.h>

#define RING_MASK (WEFT_WHEEL_RING - 1)
/* A level-1 slot is cascaded this long before its start: its timers then
 * all fit the ring (its span is half the ring). */
#define EARLY_MS (WEFT_WHEEL_RING / 2)

/* Level L >= 1: slots of 2^shift(L) ms. */
static unsigned shift_of(unsigned level)
{
    return 11 + 6 * (level - 1);
}

/* The lowest level whose window (the ring, or 64 slots from the one holding
 * `elapsed`) reaches `when` (> elapsed, at most WEFT_WHEEL_MAX_MS away). */
static unsigned level_for(uint64_t elapsed, uint64_t when)
{
    if (when - elapsed < WEFT_WHEEL_RING)
        return 0;
    unsigned level = 1;
    while (level < WEFT_WHEEL_LEVELS - 1 &&
           (when >> shift_of(level)) - (elapsed >> shift_of(level)) >= WEFT_WHEEL_SLOTS)
        level++;
    return level;
}

static unsigned slot_of(unsigned level, uint64_t when)
{
    return level == 0 ? (unsigned)(when & RING_MASK)
                      : (unsigned)(when >> shift_of(level)) & (WEFT_WHEEL_SLOTS - 1);
}

static weft__timer_t **head_of(weft__wheel_t *w, unsigned level, unsigned slot)
{
    return level == 0 ? &w->ring[slot] : &w->slots[level][slot];
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
    unsigned slot = slot_of(level, deadline);
    t->wheel_deadline_ = deadline;
    t->level_ = (uint8_t)level;
    t->slot_ = (uint8_t)slot; /* informative: the slot follows from the two above */
    t->prev_ = NULL;
    weft__timer_t **head = head_of(w, level, slot);
    t->next_ = *head;
    if (t->next_)
        t->next_->prev_ = t;
    *head = t;
    if (level == 0) {
        w->ring_occupied[slot / 64] |= UINT64_C(1) << (slot % 64);
        w->ring_summary |= UINT64_C(1) << (slot / 64);
    } else {
        w->occupied[level] |= UINT64_C(1) << slot;
    }
    t->linked_ = true;
    w->count++;
    return true;
}

void weft__wheel_remove(weft__wheel_t *w, weft__timer_t *t)
{
    if (!t->linked_)
        return;
    unsigned level = t->level_, slot = slot_of(level, t->wheel_deadline_);
    weft__timer_t **head = head_of(w, level, slot);
    if (t->prev_)
        t->prev_->next_ = t->next_;
    else
        *head = t->next_;
    if (t->next_)
        t->next_->prev_ = t->prev_;
    if (*head == NULL) {
        if (level == 0) {
            uint64_t *word = &w->ring_occupied[slot / 64];
            *word &= ~(UINT64_C(1) << (slot % 64));
            if (*word == 0)
                w->ring_summary &= ~(UINT64_C(1) << (slot / 64));
        } else {
            w->occupied[level] &= ~(UINT64_C(1) << slot);
        }
    }
    t->prev_ = t->next_ = NULL;
    t->linked_ = false;
    w->count--;
}

/* The first occupied ring slot from `cur` on, circularly; -1 when none. */
static int ring_first(const weft__wheel_t *w, unsigned cur)
{
    if (w->ring_summary == 0)
        return -1;
    unsigned wi = cur / 64;
    uint64_t word = w->ring_occupied[wi] & (~UINT64_C(0) << (cur % 64));
    if (word != 0)
        return (int)(wi * 64 + (unsigned)__builtin_ctzll(word));
    uint64_t later = wi == 63 ? 0 : w->ring_summary & (~UINT64_C(0) << (wi + 1));
    /* None after cur's word: wrap to the first word (it may be cur's own,
     * whose bits from cur on are clear). */
    unsigned j = (unsigned)__builtin_ctzll(later != 0 ? later : w->ring_summary);
    return (int)(j * 64 + (unsigned)__builtin_ctzll(w->ring_occupied[j]));
}

/* When the wheel has work in (level, slot): the ring slot's millisecond;
 * a higher slot's start, a level-1 slot's EARLY_MS before that; never
 * before the wheel's time (a slot partly cascaded is due now). */
static uint64_t slot_due(const weft__wheel_t *w, unsigned level, unsigned slot)
{
    uint64_t when;
    if (level == 0) {
        when = w->elapsed + ((slot - (unsigned)w->elapsed) & RING_MASK);
    } else {
        unsigned shift = shift_of(level);
        uint64_t cur = w->elapsed >> shift;
        when = (cur + ((slot - (unsigned)cur) & (WEFT_WHEEL_SLOTS - 1))) << shift;
        if (level == 1)
            when = when > EARLY_MS ? when - EARLY_MS : 0;
    }
    return when < w->elapsed ? w->elapsed : when;
}

/* The occupied slot where the wheel has work first, over all levels. */
static bool next_slot(const weft__wheel_t *w, unsigned *level_out, unsigned *slot_out, uint64_t *when_out)
{
    bool found = false;
    int r = ring_first(w, (unsigned)w->elapsed & RING_MASK);
    if (r >= 0) {
        *level_out = 0;
        *slot_out = (unsigned)r;
        *when_out = slot_due(w, 0, (unsigned)r);
        found = true;
    }
    for (unsigned level = 1; level < WEFT_WHEEL_LEVELS; level++) {
        uint64_t occ = w->occupied[level];
        if (occ == 0)
            continue;
        unsigned now_slot = (unsigned)(w->elapsed >> shift_of(level)) & (WEFT_WHEEL_SLOTS - 1);
        uint64_t rotated = now_slot ? (occ >> now_slot) | (occ << (64 - now_slot)) : occ;
        unsigned slot = (now_slot + (unsigned)__builtin_ctzll(rotated)) & (WEFT_WHEEL_SLOTS - 1);
        uint64_t when = slot_due(w, level, slot);
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

uint64_t weft__wheel_due(const weft__wheel_t *w, const weft__timer_t *t)
{
    return slot_due(w, t->level_, slot_of(t->level_, t->wheel_deadline_));
}

/* Fires up to `max` timers of ring slot `slot` (all due: it is the
 * wheel's millisecond). The list is a chain of cache misses, one per
 * timer, so the next timer (its links and the bytes after them, where a
 * sleep keeps its waker) is prefetched while this one fires, and the
 * timers taken are not unlinked one by one (which would write each next
 * timer's back link before it arrives): the slot's head moves past them
 * once. */
static uint64_t fire_ring_slot(weft__wheel_t *w, unsigned slot, void (*fire)(weft__timer_t *t, void *arg),
                               void *arg, uint64_t max)
{
    uint64_t n = 0;
    weft__timer_t *t = w->ring[slot];
    while (t != NULL && n < max) {
        weft__timer_t *next = t->next_;
        if (next != NULL) {
            __builtin_prefetch(next, 1);
            __builtin_prefetch((char *)next + 64, 1);
        }
        t->prev_ = t->next_ = NULL;
        t->linked_ = false;
        n++;
        fire(t, arg);
        t = next;
    }
    w->count -= n;
    w->ring[slot] = t;
    if (t != NULL) {
        t->prev_ = NULL;
    } else {
        uint64_t *word = &w->ring_occupied[slot / 64];
        *word &= ~(UINT64_C(1) << (slot % 64));
        if (*word == 0)
            w->ring_summary &= ~(UINT64_C(1) << (slot / 64));
    }
    return n;
}

static uint64_t advance(weft__wheel_t *w, uint64_t now_ms, void (*fire)(weft__timer_t *t, void *arg), void *arg,
                        uint64_t max, uint64_t *fired)
{
    uint64_t handled = 0;
    unsigned level, slot;
    uint64_t when;
    while (handled < max && next_slot(w, &level, &slot, &when) && when <= now_ms) {
        w->elapsed = when;
        if (level == 0) {
            uint64_t n = fire_ring_slot(w, slot, fire, arg, max - handled);
            handled += n;
            *fired += n;
            continue;
        }
        /* A slot above the ring: unlink its timers one by one, fire the
         * due ones, move the others lower (they fit: see slot_due).
         * Stopping midway leaves the rest in their slot, due at once. */
        weft__timer_t *t;
        while (handled < max && (t = w->slots[level][slot]) != NULL) {
            weft__wheel_remove(w, t);
            handled++;
            if (t->wheel_deadline_ <= now_ms) {
                fire(t, arg);
                (*fired)++;
            } else {
                weft__wheel_insert(w, t, t->wheel_deadline_);
            }
        }
    }
    if (handled < max && now_ms > w->elapsed)
        w->elapsed = now_ms;
    return handled;
}

uint64_t weft__wheel_advance_max(weft__wheel_t *w, uint64_t now_ms, void (*fire)(weft__timer_t *t, void *arg),
                                 void *arg, uint64_t max)
{
    uint64_t fired = 0;
    return advance(w, now_ms, fire, arg, max, &fired);
}

uint64_t weft__wheel_advance(weft__wheel_t *w, uint64_t now_ms, void (*fire)(weft__timer_t *t, void *arg),
                             void *arg)
{
    uint64_t fired = 0;
    advance(w, now_ms, fire, arg, UINT64_MAX, &fired);
    return fired;
}
