/* examples/local_cache.c - a cache without a lock, shared by local tasks.
 *
 * The cache below is plain C state with no lock, like a library handle that
 * is not thread-safe: it may only be touched by one thread. Eight local
 * tasks share it. On a miss a task computes the value on the runtime's
 * workers (an ordinary task, which never sees the cache), awaits the
 * result, and stores it. A worker wakes the local task when the result is
 * ready, but the task resumes on the main thread, the owner of the local
 * set, so every access to the cache happens there: the cache checks it.
 *
 *   ./build/examples/local_cache
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/weft.h>

/* ---- A cache that must stay on one thread ------------------------------- */

#define CACHE_SLOTS 64 /* more than the 40 keys used, so the table never fills */

typedef struct {
    uint64_t key, value;
    bool used;
} slot_t;

typedef struct {
    slot_t slots[CACHE_SLOTS];
    unsigned hits, misses;
    pthread_t owner;
} cache_t;

static cache_t cache; /* no lock: only its owner thread touches it */

static void cache_on_owner(void)
{
    if (!pthread_equal(pthread_self(), cache.owner)) {
        fprintf(stderr, "the cache was touched off its owner thread\n");
        abort();
    }
}

static slot_t *cache_slot(uint64_t key)
{
    unsigned i = (unsigned)(key * 0x9E3779B97F4A7C15u >> 58); /* 6 bits: 64 slots */
    while (cache.slots[i].used && cache.slots[i].key != key)
        i = (i + 1) % CACHE_SLOTS;
    return &cache.slots[i];
}

static bool cache_get(uint64_t key, uint64_t *value)
{
    cache_on_owner();
    slot_t *s = cache_slot(key);
    if (!s->used) {
        cache.misses++;
        return false;
    }
    cache.hits++;
    *value = s->value;
    return true;
}

static void cache_put(uint64_t key, uint64_t value)
{
    cache_on_owner();
    slot_t *s = cache_slot(key);
    *s = (slot_t){ key, value, true };
}

/* ---- The expensive part: an ordinary task, on any worker ------------------ */

typedef struct {
    WEFT_FRAME;
    uint64_t n;
} compute_t;

/* The number of Collatz steps from n down to 1. */
WEFT_ASYNC(compute_t, compute, uint64_t)
{
    WEFT_BEGIN();
    {
        uint64_t n = self->n, steps = 0;
        while (n != 1) {
            n = n % 2 ? 3 * n + 1 : n / 2;
            steps++;
        }
        WEFT_RETURN(steps);
    }
    WEFT_END();
}

/* ---- A local task: lookups through the cache ------------------------------ */

typedef struct {
    WEFT_FRAME;
    unsigned id, i;
    uint64_t key, value;
    int rc;
    weft_join_handle_t jh;
    weft_sleep_t pause;
} client_t;

WEFT_ASYNC(client_t, client, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 20; self->i++) {
        self->key = 1 + (self->id * 7 + self->i * 13) % 40;
        if (!cache_get(self->key, &self->value)) {
            { /* c is copied into the task: a local whose scope ends before the await */
                compute_t c = { WEFT_FRAME_INIT(compute), .n = 1000 + self->key };
                if (weft_spawn(&c, &self->jh) != 0)
                    WEFT_RETURN(WEFT_UNIT);
            }
            /* A worker completes it and wakes us; we resume on the owner. */
            WEFT_AWAIT_REF(weft_join(&self->jh, &self->value), &self->rc);
            if (self->rc != 0)
                WEFT_RETURN(WEFT_UNIT);
            cache_put(self->key, self->value);
        }
        WEFT_AWAIT(&self->pause, weft_sleep_ms(1), NULL);
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

int main(void)
{
    cache.owner = pthread_self();
    weft_runtime_t *rt;
    if (weft_runtime_new(NULL, &rt) != 0)
        return 1;
    weft_local_set_t *set;
    if (weft_local_set_new(&set) != 0) { /* owned by this thread */
        weft_runtime_free(rt);
        return 1;
    }
    for (unsigned id = 0; id < 8; id++) {
        client_t c = { WEFT_FRAME_INIT(client), .id = id };
        if (weft_local_set_spawn(set, &c, NULL) != 0)
            return 1;
    }
    /* This thread drives the set until no local task is left; the workers
     * run the compute tasks meanwhile. */
    weft_local_run_t run = weft_local_set_run(set);
    int rc = weft_runtime_block_on(rt, WEFT_FUTURE(&run), NULL);
    printf("block_on: %s; %u lookups: %u hits, %u misses, all on the main thread\n", weft_err_name(rc),
           cache.hits + cache.misses, cache.hits, cache.misses);
    weft_local_set_free(set);
    weft_runtime_free(rt);
    return rc == 0 ? 0 : 1;
}
