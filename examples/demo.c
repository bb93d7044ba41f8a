/* examples/demo.c - weft's main demo: a parallel divide-and-conquer.
 *
 * Counts the primes below N by splitting the range in two until a piece is
 * small, spawning one half as a task and recursing into the other, then
 * joining both halves. The same code runs on 1 worker and on every CPU, so
 * the speed-up from work stealing shows in the printed times.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>

#define LIMIT 3000000L
#define LEAF 20000L /* below this, count directly: a task costs ~100 ns, a leaf ~1 ms */

static long count_primes(long lo, long hi)
{
    long n = 0;
    for (long x = lo < 2 ? 2 : lo; x < hi; x++) {
        bool prime = true;
        for (long d = 2; d * d <= x; d++)
            if (x % d == 0) {
                prime = false;
                break;
            }
        n += prime;
    }
    return n;
}

/* async fn primes(lo, hi) -> long */
typedef struct primes_s {
    WEFT_FRAME;
    long lo, hi;          /* arguments */
    long left, right;     /* results of the halves */
    int err;
    weft_join_handle_t h; /* the spawned left half */
    struct primes_s *inner; /* the right half, awaited in place (boxed: recursive type) */
} primes_t;

WEFT_NODISCARD static primes_t primes(long lo, long hi);

static void primes_cleanup(primes_t *p)
{
    free(p->inner); /* dropped mid-await (cancellation) or after completion */
    p->inner = NULL;
}

WEFT_ASYNC_WITH_DROP(primes_t, primes_fn, long, primes_cleanup)
{
    WEFT_BEGIN();
    if (self->hi - self->lo <= LEAF)
        WEFT_RETURN(count_primes(self->lo, self->hi));
    {
        long mid = self->lo + (self->hi - self->lo) / 2;
        primes_t left = primes(self->lo, mid);
        if (weft_spawn(&left, &self->h) != 0) {
            fprintf(stderr, "spawn failed\n");
            WEFT_RETURN(-1);
        }
        self->inner = malloc(sizeof *self->inner);
        if (self->inner == NULL) {
            fprintf(stderr, "out of memory\n");
            WEFT_RETURN(-1);
        }
        *self->inner = primes(mid, self->hi);
    }
    WEFT_AWAIT_REF(self->inner, &self->right);              /* recurse into the right half */
    WEFT_AWAIT_REF(weft_join(&self->h, &self->left), &self->err); /* then join the left task */
    WEFT_RETURN(self->err == 0 ? self->left + self->right : -1);
    WEFT_END();
}

static primes_t primes(long lo, long hi)
{
    return (primes_t){ WEFT_FRAME_INIT(primes_fn), .lo = lo, .hi = hi };
}

static double run(unsigned workers, long *result)
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = workers;
    weft_runtime_t *rt;
    int rc = weft_runtime_new(&b, &rt);
    if (rc != 0) {
        fprintf(stderr, "weft_runtime_new: %s\n", weft_strerror(rc));
        exit(1);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    primes_t p = primes(0, LIMIT);
    int brc = weft_runtime_block_on(rt, WEFT_FUTURE(&p), result);
    if (brc != 0)
        fprintf(stderr, "demo: block_on: %s\n", weft_strerror(brc));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    weft_runtime_free(rt);
    return (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

int main(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long r1 = 0, rn = 0;
    printf("weft %s: counting primes below %ld with spawn + join (leaves of %ld)\n", weft_version(), LIMIT, LEAF);
    double t1 = run(1, &r1);
    printf("  1 worker : %ld primes in %7.1f ms\n", r1, t1);
    double tn = run((unsigned)cpus, &rn);
    printf("  %ld workers: %ld primes in %7.1f ms  (speed-up %.2fx)\n", cpus, rn, tn, t1 / tn);
    if (r1 != rn || r1 != 216816) {
        fprintf(stderr, "wrong result\n");
        return 1;
    }
    return 0;
}
