/* runtime/seeded.c - the seeded task order of a current-thread runtime
 * (testing: WEFT_ORDER_SEEDED and WEFT_ORDER_RANDOM; docs/testing.md).
 *
 * The default order is made for speed: a spawn or wake runs next from the
 * LIFO slot, the queues are served in order, so a program's tasks tend to
 * interleave the same way every run, and an ordering bug in the user's
 * code can hide behind that. A seeded runtime instead picks every task it
 * polls by a PRNG among all the runnable ones: before each poll, the
 * thread in block_on gathers the LIFO slot and the `woken` and inject
 * queues into its local queue (up to the queue's 256 slots; the rest wait
 * in the inject queue for a later gathering), turns the queue by a drawn
 * count (pop the front, push it back) and polls the front task. It runs no
 * LIFO successors: each poll is one draw. Wakes and spawns go where they
 * always go (sched.c), so the order depends only on the seed and on what
 * the tasks do; with a virtual clock (clock.c) timers fire from this same
 * thread, and a program without sockets or outside threads replays
 * exactly. The root future of block_on is polled between batches as
 * usual, not drawn.
 *
 * The PRNG is splitmix64: one add and three multiply-xorshift steps per
 * draw, every seed (0 included) a good state, and the same numbers on
 * every platform, so a seed printed on one machine replays on another.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/random.h>

#include "scheduler.h"
#include "nonnull.h"

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* A draw in [0, n): the high 32 bits scaled by n (Lemire's multiply
 * instead of a modulo; the bias is below n / 2^32). */
static uint32_t draw(weft__sched_t *s, uint32_t n)
{
    return (uint32_t)(((splitmix64(&s->order_rng) >> 32) * n) >> 32);
}

/* A seed nobody chose: from the kernel, or the clock if that fails. */
static uint64_t fresh_seed(void)
{
    uint64_t v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    uint64_t mix = weft__now_ns() ^ (uint64_t)(uintptr_t)&v;
    return splitmix64(&mix);
}

/* WEFT_SEED: a whole decimal or 0x-hex number, nothing else. */
static int parse_seed(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 0);
    if (text[0] == '-' || text[0] == '+' || text[0] == ' ' || end == text || *end != '\0' || errno != 0)
        return WEFT_EINVAL;
    *out = v;
    return 0;
}

int weft__seeded_init(weft__sched_t *s, const weft_builder_t *b)
{
    if (b->task_order == WEFT_ORDER_DEFAULT)
        return 0;
    uint64_t seed = b->seed;
    bool from_env = false;
    if (b->task_order == WEFT_ORDER_RANDOM) {
        const char *env = getenv("WEFT_SEED");
        if (env != NULL && env[0] != '\0') {
            if (parse_seed(env, &seed) != 0)
                return WEFT_EINVAL;
            from_env = true;
        } else {
            seed = fresh_seed();
        }
    }
    s->seeded = true;
    s->seed = seed;
    s->order_rng = seed;
    if (b->print_seed) {
        if (b->task_order == WEFT_ORDER_RANDOM)
            fprintf(stderr, "weft: task order seed %" PRIu64 "%s (replay: WEFT_SEED=%" PRIu64 ")\n", seed,
                    from_env ? " from WEFT_SEED" : "", seed);
        else
            fprintf(stderr, "weft: task order seed %" PRIu64 "\n", seed);
    }
    return 0;
}

int weft_runtime_seed(const weft_runtime_t *rt, uint64_t *seed)
{
    WEFT__REQUIRE("weft_runtime_seed", rt);
    WEFT__REQUIRE("weft_runtime_seed", seed);
    const weft__sched_t *s = (const weft__sched_t *)(const void *)rt; /* its first member (runtime.c) */
    if (!s->seeded)
        return WEFT_EINVAL;
    *seed = s->seed;
    return 0;
}

/* Gathers every runnable task into w's local queue, and takes one of them
 * by a draw; NULL when none is runnable. */
static weft_task_t *pick(weft__sched_t *s, weft__worker_t *w)
{
    if (w->lifo != NULL) {
        weft__queue_push_back_spmc(&w->queue, w->lifo, &s->inject);
        w->lifo = NULL;
    }
    /* Stop one short of full: a batch is sized by the room left, and the
     * push of its first task below must not overflow into the inject
     * queue (which would move half the queue out of the draw). */
    weft_task_t *t;
    while (weft__queue_len(&w->queue) < WEFT_QUEUE_CAP - 1 && (t = weft__worker_pop_remote(s, w)) != NULL)
        weft__queue_push_back_spmc(&w->queue, t, &s->inject);
    uint32_t n = weft__queue_len(&w->queue);
    if (n == 0)
        return NULL;
    for (uint32_t k = draw(s, n); k > 0; k--) /* each pop makes room for its push */
        weft__queue_push_back_spmc(&w->queue, weft__queue_pop_spmc(&w->queue), &s->inject);
    return weft__queue_pop_spmc(&w->queue);
}

unsigned weft__seeded_run_some(weft__sched_t *s, unsigned max)
{
    weft__worker_t *w = &s->workers[0];
    unsigned n = 0;
    weft_task_t *t;
    while (n < max && (t = pick(s, w)) != NULL) {
        weft__coop_start();
        weft__task_run(t);
        weft__coop_stop();
        n++;
    }
    return n;
}
