/* weft/time.h - sleeping, deadlines and intervals, driven by timing wheels
 * (1 ms resolution), one per worker.
 *
 * A sleep is a future embedded in its awaiter (no allocation). Its first
 * poll registers it in the timing wheel of the worker polling it; dropping
 * it unregisters it (O(1), under that wheel's lock). Deadlines are rounded
 * up to the next millisecond, so a sleep never ends early, except that one
 * more than about 2.1 years away (the wheel's reach, WEFT_WHEEL_MAX_MS)
 * ends then. Once the runtime shuts down, its sleeps are due at once.
 */
#ifndef WEFT_TIME_H
#define WEFT_TIME_H

#include "atomic_waker.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC); on a thread inside a
 * runtime built with a virtual clock (WEFT_CLOCK_PAUSED or
 * WEFT_CLOCK_MANUAL: its tasks, its block_on, its blocking jobs), that
 * runtime's virtual time. Context: any thread. */
WEFT_API uint64_t weft_now_ns(void);

struct weft_handle_s;

/* Moves the virtual clock of runtime h (NULL: the current runtime; aborts
 * when there is none) forward by `ms` and fires every timer due by then,
 * earliest deadline first: their tasks are queued (called from a task,
 * they run once it yields or awaits). Returns 0, or WEFT_EINVAL when h's
 * clock is real (WEFT_CLOCK_REAL, or no enable_time). Context: any thread;
 * h must not be freed during the call. Takes each timing wheel's lock;
 * never blocks otherwise. See docs/testing.md. */
WEFT_API WEFT_NODISCARD int weft_time_advance(struct weft_handle_s *h, uint64_t ms);

struct weft__driver;

/* A timer entry as the wheel sees it; the fields are private. */
typedef struct weft_timer_entry_s {
    struct weft_timer_entry_s *prev_, *next_;
    uint64_t wheel_deadline_;
    uint8_t level_, slot_;
    bool linked_;
    uint16_t shard_; /* the wheel it registers in (one per worker) */
} weft_timer_entry_t;

/* Output weft_unit_t. */
typedef struct weft_sleep_s {
    weft_future_t future;
    weft_timer_entry_t entry_;      /* private: wheel links (its wheel's lock) */
    uint64_t deadline_ns;           /* absolute, weft_now_ns() clock */
    struct weft__driver *driver_;   /* set at the first poll */
    int fired_;                     /* set by the firer (under the wheel's lock); accessed
                                       only as an _Atomic int (reactor/time_driver.h) */
    weft_atomic_waker_t waker_;
} weft_sleep_t;

/* A sleep that ends `ms` milliseconds from now (from this call). */
WEFT_API WEFT_NODISCARD weft_sleep_t weft_sleep_ms(uint64_t ms);
/* A sleep that ends at `deadline_ns` (weft_now_ns clock); a deadline in the
 * past is ready at the first poll. */
WEFT_API WEFT_NODISCARD weft_sleep_t weft_sleep_until(uint64_t deadline_ns);
/* Moves a sleep (pending or finished) to a new deadline. Context: the
 * thread that polls it, or any thread while the awaiting task does not poll
 * it concurrently (its wheel's lock orders it against the firer). */
WEFT_API void weft_sleep_reset(weft_sleep_t *s, uint64_t deadline_ns);
WEFT_API bool weft_sleep_is_elapsed(const weft_sleep_t *s);

/* Runs `inner` (a future in the caller's frame, owned by the timeout) with
 * a deadline. Output int: 0 when inner finished first (its output went to
 * inner_out), WEFT_ETIMEDOUT when the time ran out first: inner is then
 * dropped (cancelled) at once. */
typedef struct weft_timeout_s {
    weft_future_t future;
    weft_future_t *inner_;
    void *inner_out_;
    weft_sleep_t sleep_;
} weft_timeout_t;

WEFT_API WEFT_NODISCARD weft_timeout_t weft_timeout_ms(weft_future_t *inner, void *inner_out, uint64_t ms);

/* What an interval does with ticks it missed (the task was late). */
typedef enum weft_missed_tick_e {
    WEFT_MISSED_BURST = 0, /* fire them back to back until caught up */
    WEFT_MISSED_DELAY,     /* next tick one period after the late one */
    WEFT_MISSED_SKIP       /* next tick on the original grid, skipping missed ones */
} weft_missed_tick_t;

typedef struct weft_interval_s {
    weft_sleep_t sleep_;
    uint64_t period_ns_;
    weft_missed_tick_t missed_;
} weft_interval_t;

/* Ticks first at once, then every period_ms (>= 1). */
WEFT_API WEFT_NODISCARD weft_interval_t weft_interval_ms(uint64_t period_ms, weft_missed_tick_t missed);
/* The future of the next tick (output uint64_t: the tick's scheduled time,
 * ns). The interval must outlive it; one tick future at a time. */
typedef struct weft_tick_s {
    weft_future_t future;
    weft_interval_t *iv_;
} weft_tick_t;
WEFT_API WEFT_NODISCARD weft_tick_t weft_interval_tick(weft_interval_t *iv);
/* Drops the interval's timer registration. The interval must have been
 * made by weft_interval_ms. */
WEFT_API void weft_interval_drop(weft_interval_t *iv);

#ifdef __cplusplus
}
#endif

#endif
