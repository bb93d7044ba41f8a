/* runtime/debug.c - test hooks, compiled only into the test library
 * (WEFT_TEST_HOOKS): live-object counters and seeded chaos points.
 *
 * A chaos point sits at every atomic step of the run queue, the task state
 * word, wakers and shutdown. With chaos on, a per-thread xorshift generator
 * seeded from the global seed decides at each point to go on, spin a
 * little, or yield the CPU, which widens race windows by orders of magnitude
 * and, with one seed, makes a failing interleaving likely to recur.
 */
#include <sched.h>

#include "scheduler.h"

#ifdef WEFT_TEST_HOOKS
_Atomic long weft__live[WEFT_LIVE_KINDS];

static _Atomic uint64_t chaos_seed;
static _Atomic unsigned chaos_permille; /* 0 = off */
static _Atomic unsigned chaos_threads;

static _Thread_local uint64_t chaos_state;
static _Thread_local uint64_t chaos_epoch;
static _Atomic uint64_t chaos_generation;

void weft__chaos_set(uint64_t seed, unsigned permille)
{
    atomic_store(&chaos_seed, seed);
    atomic_store(&chaos_permille, permille);
    atomic_store(&chaos_threads, 0);
    atomic_fetch_add(&chaos_generation, 1);
}

long weft__live_count(enum weft__live_kind k)
{
    return atomic_load(&weft__live[k]);
}

void weft__chaos_point(void)
{
    unsigned pm = atomic_load_explicit(&chaos_permille, memory_order_relaxed);
    if (pm == 0)
        return;
    uint64_t gen = atomic_load_explicit(&chaos_generation, memory_order_relaxed);
    if (chaos_epoch != gen || chaos_state == 0) {
        /* Each thread draws from its own stream derived from the seed. */
        unsigned idx = atomic_fetch_add_explicit(&chaos_threads, 1, memory_order_relaxed);
        chaos_state = atomic_load_explicit(&chaos_seed, memory_order_relaxed) * 0x9E3779B97F4A7C15ull +
                      (idx + 1) * 0xBF58476D1CE4E5B9ull;
        if (chaos_state == 0)
            chaos_state = 1;
        chaos_epoch = gen;
    }
    uint64_t x = chaos_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    chaos_state = x;
    unsigned r = (unsigned)(x % 1000);
    if (r >= pm)
        return;
    if (r & 1) {
        sched_yield();
    } else {
        for (volatile unsigned i = 0; i < (unsigned)((x >> 20) % 200); i++)
            ;
    }
}
#endif

void weft__spin_lock_slow(weft__spin_t *l)
{
    for (unsigned spins = 0;; spins++) {
        weft__spin_backoff(spins); /* the holder may be preempted: let it run */
        /* acquire: pairs with weft__spin_unlock's release. */
        if (!atomic_flag_test_and_set_explicit(&l->flag, memory_order_acquire))
            return;
    }
}

/* ---- Thread creation ------------------------------------------------------ */
#ifdef WEFT_TEST_HOOKS
static _Atomic long thread_fail_countdown = -1;

void weft__thread_fail_after(long n)
{
    atomic_store(&thread_fail_countdown, n);
}

bool weft__countdown_hit(_Atomic long *countdown)
{
    long c = atomic_load_explicit(countdown, memory_order_relaxed);
    while (c > 0) {
        if (atomic_compare_exchange_weak_explicit(countdown, &c, c - 1, memory_order_relaxed, memory_order_relaxed))
            return c == 1;
    }
    return false;
}
#endif

int weft__thread_create(pthread_t *tid, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
#ifdef WEFT_TEST_HOOKS
    if (weft__countdown_hit(&thread_fail_countdown))
        return WEFT_EAGAIN;
#endif
    return pthread_create(tid, attr, fn, arg) == 0 ? 0 : WEFT_EAGAIN;
}
