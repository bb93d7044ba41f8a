/* runtime/construct.h - writing a future that its constructor returns by
 * value (internal).
 *
 * The awaiting code copies a returned future into its frame at once
 * (WEFT_AWAIT's `*slot = init`), and the compiler does that with 16-byte
 * loads. A future written field by field with 8-byte stores makes each
 * such load wait until those stores retire (a failed store-to-load
 * forward), a stall of a dozen cycles or more per load. On one worker that
 * was about a third of a message's cost in mpsc_throughput and half a
 * lock's in mutex_contended. So the hot constructors write their future in
 * 16-byte pieces at 16-byte offsets from its start, checking its layout
 * with static assertions, where WEFT__PAIR_STORES is defined (GNU C on
 * LP64); elsewhere they use an initializer.
 */
#ifndef WEFT_SYNC_CONSTRUCT_H
#define WEFT_SYNC_CONSTRUCT_H

#include <stdint.h>
#include <string.h>

#if UINTPTR_MAX == UINT64_MAX && defined(__GNUC__)
#define WEFT__PAIR_STORES 1

typedef uint64_t weft__pair_t __attribute__((vector_size(16)));

/* Writes a then b as one 16-byte store at `at`. */
static inline void weft__put_pair(void *at, uint64_t a, uint64_t b)
{
    weft__pair_t v = { a, b };
    memcpy(at, &v, sizeof v);
}
#endif

#endif
