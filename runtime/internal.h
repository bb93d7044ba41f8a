/* runtime/internal.h - weft's private declarations (weft__ prefix).
 *
 * Shared by the library's files and by the test library (which is built from
 * the same sources with WEFT_TEST_HOOKS: chaos points, live-object counters
 * and allocation-failure injection). Nothing here is installed.
 */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#include "weft/weft.h"

#define WEFT_CACHELINE 64
#define WEFT_ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((size_t)(a)-1))
#define WEFT_LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- Allocation (runtime/alloc.c) -------------------------------------- */
/* All of weft's allocations go through these, so the test library can fail
 * the k-th one and every caller is proven to turn that into WEFT_ENOMEM. */
void *weft__alloc(size_t size);
void *weft__calloc(size_t n, size_t size);
void weft__free(void *p, size_t size);
/* For callers that do not know a block's size (libuv, through the
 * allocator reactor/uv_thread.c gives it): a block from weft__alloc,
 * weft__calloc or weft__realloc. */
void *weft__realloc(void *p, size_t size);
void weft__free_unsized(void *p);
/* Cache-line aligned (for structures with padded fields); free with
 * weft__free_aligned. */
void *weft__alloc_aligned(size_t size);
void weft__free_aligned(void *p);

/* ---- Test hooks (runtime/debug.c) --------------------------------------- */
enum weft__live_kind {
    WEFT_LIVE_TASK,
    WEFT_LIVE_JOIN_HANDLE,
    WEFT_LIVE_ONESHOT,
    WEFT_LIVE_RUNTIME,
    WEFT_LIVE_FRAME, /* futures inside tasks that have not been dropped yet */
    WEFT_LIVE_CANCEL_TOKEN, /* sync/cancel.c: tokens not freed yet */
    WEFT_LIVE_MPSC,         /* sync/mpsc.c: channels not freed yet */
    WEFT_LIVE_BROADCAST,    /* sync/broadcast.c: channels not freed yet */
    WEFT_LIVE_WATCH,        /* sync/watch.c: channels not freed yet */
    WEFT_LIVE_LOCAL_SET,    /* runtime/localset.c: local sets whose memory is not released yet */
    WEFT_LIVE_UNORDERED,    /* runtime/unordered.c: member nodes and hubs not freed yet */
    WEFT_LIVE_KINDS
};

#ifdef WEFT_TEST_HOOKS
extern _Atomic long weft__live[WEFT_LIVE_KINDS];
#define WEFT_LIVE_INC(k) atomic_fetch_add_explicit(&weft__live[(k)], 1, memory_order_relaxed)
#define WEFT_LIVE_DEC(k) atomic_fetch_sub_explicit(&weft__live[(k)], 1, memory_order_relaxed)
void weft__chaos_point(void);
#define WEFT_CHAOS() weft__chaos_point()
/* Test-only controls (also declared in tests/testlib.h). */
void weft__chaos_set(uint64_t seed, unsigned permille);
long weft__live_count(enum weft__live_kind k);
void weft__alloc_fail_after(long n); /* fail the n-th allocation from now; -1 = never */
long weft__alloc_count(void);
void weft__thread_fail_after(long n); /* fail the n-th pool thread creation from now; -1 = never */
/* Counts *countdown down; true when this call took it from 1 to 0 (the
 * one that must fail). */
bool weft__countdown_hit(_Atomic long *countdown);
/* Kicks of a parked I/O driver for an earlier timer so far (reactor/time_driver.c). */
extern _Atomic long weft__driver_kicks;
/* Timers the reactor thread's backstop fired on multi-thread runtimes. */
extern _Atomic long weft__backstop_fires;
extern _Atomic uint64_t weft__backstop_ms; /* reactor/time_driver.h */
#else
#define WEFT_LIVE_INC(k) ((void)0)
#define WEFT_LIVE_DEC(k) ((void)0)
#define WEFT_CHAOS() ((void)0)
#endif

/* ---- Sync primitives (sync/) -------------------------------------------- */
struct weft_cancel_token_s;
/* How many live children a cancellation token lists (sync/cancel.c): lets
 * tests see that released children leave their parent. */
size_t weft__cancel_token_children(const struct weft_cancel_token_s *t);

/* ---- Spin-waiting -----------------------------------------------------------
 * weft__cpu_pause: one step of a short busy wait (the CPU's pause hint).
 * weft__spin_backoff: one step of a spin-wait on another thread: a pause
 * for the first 64 tries, then sched_yield, since whoever we wait for may
 * be preempted and need our CPU to finish. */
static inline void weft__cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}
static inline void weft__spin_backoff(unsigned spins)
{
    if (spins < 64)
        weft__cpu_pause();
    else
        sched_yield();
}

/* ---- Spin lock ------------------------------------------------------------
 * For critical sections of a few instructions (owned-task shards). Spins a
 * little, then yields the CPU so a preempted holder can finish. */
typedef struct {
    atomic_flag flag;
} weft__spin_t;
#define WEFT_SPIN_INIT { ATOMIC_FLAG_INIT }
void weft__spin_lock_slow(weft__spin_t *l);
static inline void weft__spin_lock(weft__spin_t *l)
{
    /* acquire: pairs with the release in weft__spin_unlock. */
    if (WEFT_UNLIKELY(atomic_flag_test_and_set_explicit(&l->flag, memory_order_acquire)))
        weft__spin_lock_slow(l);
}
static inline void weft__spin_unlock(weft__spin_t *l)
{
    /* release: publishes the critical section to the next weft__spin_lock. */
    atomic_flag_clear_explicit(&l->flag, memory_order_release);
}

/* ---- Thread parker (runtime/park.c) ---------------------------------------- */
/* A one-permit parker. Its owner sleeps on a futex (weft__park), or
 * somewhere else that another party knows how to interrupt
 * (weft__park_elsewhere: a worker sleeping in the I/O driver's epoll set).
 * The parker itself knows nothing of what that place is. */
typedef struct {
    _Atomic uint32_t state; /* EMPTY, PARKED, PARKED_ELSEWHERE or NOTIFIED */
} weft__parker_t;
void weft__parker_init(weft__parker_t *p);
/* Blocks until unparked (a permit given before park is not lost). */
void weft__park(weft__parker_t *p);
/* As weft__park, at most timeout_ns; returns true if a permit was consumed. */
bool weft__park_timeout(weft__parker_t *p, uint64_t timeout_ns);
/* Leaves a permit and wakes the owner if it sleeps on the futex. Returns
 * WEFT__UNPARK_ELSEWHERE when the owner sleeps in weft__park_elsewhere: the
 * caller must then interrupt that wait itself (for a worker, through
 * weft__driver_unpark); the permit is left either way. */
enum weft__unpark_result { WEFT__UNPARK_DONE = 0, WEFT__UNPARK_ELSEWHERE = 1 };
enum weft__unpark_result weft__unpark(weft__parker_t *p);
/* As weft__park, but the owner sleeps in wait(arg) instead of on the futex;
 * wait returns when the unparker interrupts it, or for its own reasons.
 * Returns true when a permit was consumed, false when wait returned without
 * one. */
bool weft__park_elsewhere(weft__parker_t *p, void (*wait)(void *arg), void *arg);
uint64_t weft__now_ns(void);

/* pthread_create for weft's threads; in the test library it can be made to
 * fail (weft__thread_fail_after). Returns 0 or WEFT_EAGAIN. */
int weft__thread_create(pthread_t *tid, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

#endif
