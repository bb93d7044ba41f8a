/* runtime/alloc.c - weft's allocation entry points.
 *
 * With the jemalloc allocator (the default) every allocation is jemalloc's,
 * whatever the program links, and tasks are freed with their size
 * (sdallocx), which skips jemalloc's size lookup on the hot path. In the test
 * library every allocation can be made to fail (weft__alloc_fail_after) to
 * prove each caller returns WEFT_ENOMEM and leaks nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef WEFT_USE_JEMALLOC
#include <dlfcn.h>
#include <stdint.h>

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
    return weft__countdown_hit(&fail_countdown);
}
#else
static inline bool should_fail(void) { return false; }
#endif

#ifdef WEFT_USE_JEMALLOC
/* Whether the process's malloc is jemalloc's. It is when the program links
 * jemalloc (or preloads it) ahead of libc; when it links libweft alone,
 * the malloc libweft binds to is glibc's. weft then allocates with
 * jemalloc's own mallocx, because its frees are jemalloc's sdallocx and a
 * glibc block must never reach it. malloc is the fast path (jemalloc's
 * mallocx measured ~3x slower per spawn), so it is used whenever it is
 * jemalloc's. Decided once, before main. */
static bool je_is_malloc;

__attribute__((constructor)) static void detect_malloc(void)
{
    /* Function and object pointers are converted through memcpy (ISO C has
     * no cast between them; POSIX guarantees they have one representation). */
    void *(*volatile fn)(size_t, int) = mallocx;
    void *je_mallocx, *proc_malloc;
    memcpy(&je_mallocx, (void *)&fn, sizeof je_mallocx);
    Dl_info info;
    if (dladdr(je_mallocx, &info) == 0 || info.dli_fname == NULL)
        return;
    void *h = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (h == NULL)
        return;
    void *je_malloc = dlsym(h, "malloc");
    void *(*volatile m)(size_t) = malloc; /* the malloc this library binds to */
    memcpy(&proc_malloc, (void *)&m, sizeof proc_malloc);
    je_is_malloc = je_malloc != NULL && je_malloc == proc_malloc;
    dlclose(h);
}
#endif

void *weft__alloc(size_t size)
{
    if (should_fail())
        return NULL;
#ifdef WEFT_USE_JEMALLOC
    if (WEFT_UNLIKELY(!je_is_malloc))
        return mallocx(size ? size : 1, 0);
#endif
    return malloc(size);
}

void *weft__calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
#ifdef WEFT_USE_JEMALLOC
    if (WEFT_UNLIKELY(!je_is_malloc)) {
        if (size != 0 && n > SIZE_MAX / size)
            return NULL;
        return mallocx(n * size > 0 ? n * size : 1, MALLOCX_ZERO);
    }
#endif
    return calloc(n, size);
}

void *weft__realloc(void *p, size_t size)
{
    if (should_fail())
        return NULL; /* p stays valid, as with realloc */
#ifdef WEFT_USE_JEMALLOC
    if (WEFT_UNLIKELY(!je_is_malloc)) {
        if (p == NULL)
            return mallocx(size ? size : 1, 0);
        return rallocx(p, size ? size : 1, 0);
    }
#endif
    return realloc(p, size);
}

void *weft__alloc_aligned(size_t size)
{
    if (should_fail())
        return NULL;
#ifdef WEFT_USE_JEMALLOC
    return mallocx(WEFT_ALIGN_UP(size, WEFT_CACHELINE), MALLOCX_ALIGN(WEFT_CACHELINE));
#else
    return aligned_alloc(WEFT_CACHELINE, WEFT_ALIGN_UP(size, WEFT_CACHELINE));
#endif
}

void weft__free_aligned(void *p)
{
    if (p == NULL)
        return;
#ifdef WEFT_USE_JEMALLOC
    dallocx(p, 0);
#else
    free(p);
#endif
}

void weft__free_unsized(void *p)
{
    if (p == NULL)
        return;
#ifdef WEFT_USE_JEMALLOC
    dallocx(p, 0); /* also right for jemalloc's malloc blocks (je_is_malloc) */
#else
    free(p);
#endif
}

void weft__free(void *p, size_t size)
{
    if (p == NULL)
        return;
#ifdef WEFT_USE_JEMALLOC
    sdallocx(p, size ? size : 1, 0);
#else
    (void)size;
    free(p);
#endif
}
