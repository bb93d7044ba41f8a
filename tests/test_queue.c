/* tests/test_queue.c - the local run queue and the inject queue, directly:
 * order, overflow, steal-half, and the concurrent scenarios of TESTING.md
 * with exact counts (every task taken exactly once). */
#include "scheduler.h"
#include "testlib.h"

#define NT 100000
static weft_task_t *tasks;
static _Atomic unsigned char *seen;

static void setup(void)
{
    tasks = calloc(NT, sizeof *tasks);
    seen = calloc(NT, 1);
}
static void teardown(void)
{
    free(tasks);
    free((void *)seen);
}
static void mark(weft_task_t *t)
{
    size_t i = (size_t)(t - tasks);
    if (!WEFT_TEST_CHECK_MSG(i < NT, "task %p is not one of tasks[]", (void *)t))
        return;
    unsigned char prev = atomic_fetch_add(&seen[i], 1);
    (void)WEFT_TEST_CHECK_MSG(prev == 0, "task %zu taken twice", i);
}
/* Pops up to max (<= 512) tasks and links them as a chain in pop order,
 * so the checks below can walk what one pop returned. */
static size_t pop_chain(weft__inject_t *inj, size_t max, weft_task_t **first)
{
    weft_task_t *got[512];
    size_t k = weft__inject_pop(inj, got, max);
    for (size_t i = 0; i < k; i++)
        got[i]->next = i + 1 < k ? got[i + 1] : NULL;
    *first = k > 0 ? got[0] : NULL;
    return k;
}

static size_t drain_inject(weft__inject_t *inj)
{
    size_t n = 0;
    weft_task_t *first;
    size_t k;
    while ((k = pop_chain(inj, 64, &first)) > 0) {
        for (weft_task_t *t = first; t; t = t->next)
            mark(t);
        n += k;
    }
    return n;
}

static weft__queue_t *new_queue(void)
{
    weft__queue_t *q = aligned_alloc(64, sizeof *q);
    weft__queue_init(q);
    return q;
}

START_TEST(fifo_and_overflow)
{
    weft__queue_t *q = new_queue();
    weft__inject_t inj;
    weft__inject_init(&inj);
    for (unsigned i = 0; i < WEFT_QUEUE_CAP; i++)
        weft__queue_push_back_spmc(q, &tasks[i], &inj);
    ck_assert_uint_eq(weft__queue_len(q), WEFT_QUEUE_CAP);
    ck_assert(weft__inject_is_empty(&inj));
    /* One more: half the queue plus this task move to the inject queue. */
    weft__queue_push_back_spmc(q, &tasks[WEFT_QUEUE_CAP], &inj);
    ck_assert_uint_eq(weft__queue_len(q), WEFT_QUEUE_CAP / 2);
    ck_assert_uint_eq(atomic_load(&inj.len), WEFT_QUEUE_CAP / 2 + 1);
    /* The oldest went to the inject queue, in order. */
    weft_task_t *first;
    ck_assert_uint_eq(pop_chain(&inj, 1, &first), 1);
    ck_assert_ptr_eq(first, &tasks[0]);
    mark(first);
    ck_assert_uint_eq(drain_inject(&inj), WEFT_QUEUE_CAP / 2);
    for (unsigned i = WEFT_QUEUE_CAP / 2; i < WEFT_QUEUE_CAP; i++) {
        weft_task_t *t = weft__queue_pop_spmc(q);
        ck_assert_ptr_eq(t, &tasks[i]); /* FIFO */
        mark(t);
    }
    ck_assert_ptr_null(weft__queue_pop_spmc(q));
    ASSERT_NO_TEST_FAIL();
    for (unsigned i = 0; i <= WEFT_QUEUE_CAP; i++)
        ck_assert_int_eq(seen[i], 1);
    weft__inject_destroy(&inj);
    free(q);
}
END_TEST

START_TEST(steal_takes_half)
{
    weft__queue_t *a = new_queue(), *b = new_queue();
    weft__inject_t inj;
    weft__inject_init(&inj);
    for (unsigned i = 0; i < 10; i++)
        weft__queue_push_back_spmc(a, &tasks[i], &inj);
    weft_task_t *t = weft__queue_steal_into(a, b);
    ck_assert_ptr_eq(t, &tasks[4]); /* 5 stolen: 4 queued in b, the 5th returned */
    ck_assert_uint_eq(weft__queue_len(a), 5);
    ck_assert_uint_eq(weft__queue_len(b), 4);
    ck_assert_ptr_eq(weft__queue_pop_spmc(b), &tasks[0]);
    ck_assert_ptr_eq(weft__queue_pop_spmc(a), &tasks[5]);
    /* An empty queue yields nothing. */
    weft__queue_t *c = new_queue();
    ck_assert_ptr_null(weft__queue_steal_into(c, b));
    weft__inject_destroy(&inj);
    free(a);
    free(b);
    free(c);
}
END_TEST

/* ---- Concurrent: owner pushes and pops while thieves steal -------------------- */
typedef struct {
    weft__queue_t *src;
    weft__queue_t *own; /* the thief's own queue (it drains it itself) */
    _Atomic int *stop;
    size_t taken;
} thief_t;

static void *thief_main(void *arg)
{
    thief_t *th = arg;
    while (!atomic_load(th->stop)) {
        weft_task_t *t = weft__queue_steal_into(th->src, th->own);
        if (t) {
            mark(t);
            th->taken++;
        }
        while ((t = weft__queue_pop_spmc(th->own)) != NULL) {
            mark(t);
            th->taken++;
        }
    }
    weft_task_t *t;
    while ((t = weft__queue_pop_spmc(th->own)) != NULL) {
        mark(t);
        th->taken++;
    }
    return NULL;
}

/* variant: 0 = one thief, 1 = two thieves, 2 = A steals from B while B steals from C */
static void owner_vs_thieves(int variant, uint64_t seed, size_t n)
{
    memset((void *)seen, 0, NT);
    weft__chaos_set(seed, 50);
    weft__queue_t *q = new_queue(), *q1 = new_queue(), *q2 = new_queue();
    weft__inject_t inj;
    weft__inject_init(&inj);
    _Atomic int stop = 0;
    thief_t t1 = { q, q1, &stop, 0 }, t2 = { variant == 2 ? q1 : q, q2, &stop, 0 };
    pthread_t p1, p2;
    pthread_create(&p1, NULL, thief_main, &t1);
    if (variant > 0)
        pthread_create(&p2, NULL, thief_main, &t2);
    size_t popped = 0, pushed = 0;
    uint64_t x = seed * 2654435761u + 1;
    while (pushed < n) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        unsigned burst = (unsigned)(x % 300); /* sometimes past capacity */
        for (unsigned i = 0; i < burst && pushed < n; i++)
            weft__queue_push_back_spmc(q, &tasks[pushed++], &inj);
        unsigned pops = (unsigned)((x >> 20) % 200);
        for (unsigned i = 0; i < pops; i++) {
            weft_task_t *t = weft__queue_pop_spmc(q);
            if (!t)
                break;
            mark(t);
            popped++;
        }
    }
    weft_task_t *t;
    while ((t = weft__queue_pop_spmc(q)) != NULL) {
        mark(t);
        popped++;
    }
    atomic_store(&stop, 1);
    pthread_join(p1, NULL);
    if (variant > 0)
        pthread_join(p2, NULL);
    size_t spilled = drain_inject(&inj);
    ASSERT_NO_TEST_FAIL();
    size_t total = popped + t1.taken + (variant > 0 ? t2.taken : 0) + spilled;
    ck_assert_msg(total == n, "seed %llu variant %d: %zu of %zu tasks taken", (unsigned long long)seed, variant,
                  total, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(seen[i] == 1, "seed %llu: task %zu taken %d times", (unsigned long long)seed, i, seen[i]);
    weft__chaos_set(0, 0);
    weft__inject_destroy(&inj);
    free(q);
    free(q1);
    free(q2);
}

START_TEST(owner_vs_one_thief)
{
    uint64_t s0 = chaos_seed0();
    for (int i = 0; i < chaos_iters(200) / 10 + 1; i++)
        owner_vs_thieves(0, s0 + (uint64_t)i, 20000);
}
END_TEST

START_TEST(owner_vs_two_thieves)
{
    uint64_t s0 = chaos_seed0();
    for (int i = 0; i < chaos_iters(200) / 10 + 1; i++)
        owner_vs_thieves(1, s0 + (uint64_t)i, 20000);
}
END_TEST

START_TEST(steal_chain)
{
    uint64_t s0 = chaos_seed0();
    for (int i = 0; i < chaos_iters(200) / 10 + 1; i++)
        owner_vs_thieves(2, s0 + (uint64_t)i, 20000);
}
END_TEST

/* A thief of q1 claimed half of a full q1 and is paused before copying it
 * out; q1's owner pops the other half, finds q1 empty and steals into it.
 * The steal must not fill the slots the paused thief has yet to read (they
 * wrap onto them: 256 in use + up to 128 new > capacity). */
START_TEST(steal_into_spares_slots_a_thief_still_reads)
{
    weft__queue_t *src = new_queue(), *q1 = new_queue();
    weft__inject_t inj;
    weft__inject_init(&inj);
    for (unsigned i = 0; i < WEFT_QUEUE_CAP; i++)
        weft__queue_push_back_spmc(q1, &tasks[i], &inj);
    for (unsigned i = 0; i < WEFT_QUEUE_CAP; i++)
        weft__queue_push_back_spmc(src, &tasks[WEFT_QUEUE_CAP + i], &inj);
    /* The paused thief's claim of [0, CAP/2): steal stays 0, real moves. */
    atomic_store(&q1->head, (uint64_t)(WEFT_QUEUE_CAP / 2));
    for (unsigned i = WEFT_QUEUE_CAP / 2; i < WEFT_QUEUE_CAP; i++)
        ck_assert_ptr_eq(weft__queue_pop_spmc(q1), &tasks[i]);
    ck_assert_ptr_null(weft__queue_pop_spmc(q1));
    weft_task_t *t = weft__queue_steal_into(src, q1);
    /* Either nothing was stolen, or what was stolen went elsewhere: the
     * claimed slots still hold what the thief will copy. */
    for (unsigned i = 0; i < WEFT_QUEUE_CAP / 2; i++) {
        weft_task_t *slot = atomic_load(&q1->buf[i]);
        ck_assert_msg(slot == &tasks[i], "slot %u, still being read by the thief, was overwritten", i);
    }
    ck_assert_ptr_null(t);
    ck_assert(weft__inject_is_empty(&inj));
    weft__inject_destroy(&inj);
    free(src);
    free(q1);
}
END_TEST

/* ABA: a thief paused between its head load and CAS while the owner cycles
 * more than 2^16 tasks must not take a task twice. The chaos yields make
 * long pauses likely; the owner cycles 100,000 tasks through the ring. */
START_TEST(thief_paused_across_wraparound)
{
    owner_vs_thieves(0, chaos_seed0() + 1000, NT);
}
END_TEST


/* ---- The inject queue: lock-free producers, chains, close ------------------ */

/* Pushes tasks[from, to) as chains of 1..max_chain (xorshift-chosen), or,
 * with `arrays`, as arrays (blocks) of that many. */
static void push_range_as(weft__inject_t *inj, size_t from, size_t to, unsigned max_chain, uint64_t *rng,
                          bool arrays)
{
    size_t i = from;
    while (i < to) {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        size_t n = 1 + (size_t)(*rng % max_chain);
        if (n > to - i)
            n = to - i;
        if (arrays) {
            weft_task_t *arr[WEFT__INJECT_BLOCK_CAP];
            for (size_t k = 0; k < n; k++)
                arr[k] = &tasks[i + k];
            (void)WEFT_TEST_CHECK(weft__inject_push_array(inj, arr, n));
        } else {
            for (size_t k = 0; k + 1 < n; k++)
                tasks[i + k].next = &tasks[i + k + 1];
            (void)WEFT_TEST_CHECK(weft__inject_push_batch(inj, &tasks[i], &tasks[i + n - 1], n));
        }
        i += n;
    }
}

static void push_range(weft__inject_t *inj, size_t from, size_t to, unsigned max_chain, uint64_t *rng)
{
    push_range_as(inj, from, to, max_chain, rng, false);
}

START_TEST(inject_keeps_chain_and_push_order)
{
    weft__inject_t inj;
    weft__inject_init(&inj);
    uint64_t rng = 88172645463325252ull;
    push_range(&inj, 0, 1000, 9, &rng);
    ASSERT_NO_TEST_FAIL();
    ck_assert_uint_eq(atomic_load(&inj.len), 1000);
    /* Pop some, push more: the later pushes come after what is left. */
    weft_task_t *first;
    size_t expect = 0, k;
    ck_assert_uint_eq(pop_chain(&inj, 300, &first), 300);
    for (weft_task_t *t = first; t; t = t->next)
        ck_assert_ptr_eq(t, &tasks[expect++]);
    push_range(&inj, 1000, 2000, 9, &rng);
    ASSERT_NO_TEST_FAIL();
    while ((k = pop_chain(&inj, 77, &first)) > 0) {
        size_t got = 0;
        for (weft_task_t *t = first; t; t = t->next, got++)
            ck_assert_ptr_eq(t, &tasks[expect++]);
        ck_assert_uint_eq(got, k);
    }
    ck_assert_uint_eq(expect, 2000);
    ck_assert(weft__inject_is_empty(&inj));
    weft__inject_destroy(&inj);
}
END_TEST

/* A worker only tries the consumers' lock (worker.c): while another
 * consumer holds it, the try gives up (after a short spin) and the tasks
 * stay queued; once it is free, the same try takes them, in order. */
START_TEST(inject_try_pop_gives_way_to_a_holder)
{
    weft__inject_t inj;
    weft__inject_init(&inj);
    uint64_t rng = 88172645463325252ull;
    push_range(&inj, 0, 10, 3, &rng);
    ASSERT_NO_TEST_FAIL();
    weft_task_t *out[16];
    pthread_mutex_lock(&inj.lock); /* a consumer inside its pop */
    ck_assert_uint_eq(weft__inject_try_pop(&inj, out, 16), 0);
    ck_assert(!weft__inject_is_empty(&inj));
    ck_assert_uint_eq(atomic_load(&inj.len), 10);
    pthread_mutex_unlock(&inj.lock);
    ck_assert_uint_eq(weft__inject_try_pop(&inj, out, 16), 10);
    for (size_t i = 0; i < 10; i++)
        ck_assert_ptr_eq(out[i], &tasks[i]);
    ck_assert(weft__inject_is_empty(&inj));
    weft__inject_destroy(&inj);
}
END_TEST

START_TEST(inject_close_returns_everything_and_refuses_pushes)
{
    weft__inject_t inj;
    weft__inject_init(&inj);
    uint64_t rng = 1;
    push_range(&inj, 0, 100, 5, &rng);
    weft_task_t *first;
    ck_assert_uint_eq(pop_chain(&inj, 10, &first), 10); /* leaves 10..99 in the FIFO */
    push_range(&inj, 100, 150, 5, &rng);                             /* and 100..149 in the intake */
    ASSERT_NO_TEST_FAIL();
    weft_task_t *left = weft__inject_close(&inj);
    size_t expect = 10;
    for (weft_task_t *t = left; t; t = t->next)
        ck_assert_ptr_eq(t, &tasks[expect++]);
    ck_assert_uint_eq(expect, 150);
    ck_assert_uint_eq(atomic_load(&inj.len), 0);
    /* A refused chain comes back linked as it was given. */
    tasks[200].next = &tasks[201];
    tasks[201].next = &tasks[202];
    ck_assert(!weft__inject_push_batch(&inj, &tasks[200], &tasks[202], 3));
    ck_assert_ptr_eq(tasks[200].next, &tasks[201]);
    ck_assert_ptr_eq(tasks[201].next, &tasks[202]);
    ck_assert_ptr_null(tasks[202].next);
    ck_assert(!weft__inject_push_batch(&inj, &tasks[203], &tasks[203], 1));
    ck_assert_uint_eq(pop_chain(&inj, 10, &first), 0);
    weft__inject_destroy(&inj);
}
END_TEST

/* Blocks keep their order; pops take from blocks and chains in turn and
 * fill up to max from both; close returns what is left of both, blocks
 * included, and refuses arrays too. */
START_TEST(inject_blocks_and_chains)
{
    weft__inject_t inj;
    weft__inject_init(&inj);
    uint64_t rng = 7;
    push_range_as(&inj, 0, 300, WEFT__INJECT_BLOCK_CAP, &rng, true); /* blocks: 0..299 */
    push_range(&inj, 300, 400, 5, &rng);                             /* chains: 300..399 */
    ASSERT_NO_TEST_FAIL();
    ck_assert_uint_eq(atomic_load(&inj.len), 400);
    size_t next_block = 0, next_chain = 300;
    int from_blocks = 0, from_chains = 0;
    weft_task_t *first;
    for (int round = 0; round < 6; round++) {
        size_t k = pop_chain(&inj, 20, &first);
        ck_assert_uint_eq(k, 20);
        for (weft_task_t *t = first; t; t = t->next) {
            size_t i = (size_t)(t - tasks);
            if (i < 300) {
                ck_assert_uint_eq(i, next_block++);
                from_blocks++;
            } else {
                ck_assert_uint_eq(i, next_chain++);
                from_chains++;
            }
        }
    }
    /* Neither lane starves the other. */
    ck_assert_int_gt(from_blocks, 0);
    ck_assert_int_gt(from_chains, 0);
    /* One pop takes from both lanes when the first cannot fill it. */
    ck_assert_uint_eq(pop_chain(&inj, 512, &first), 400 - 120);
    ck_assert(weft__inject_is_empty(&inj));

    /* Close: a half-read block, whole blocks and chains all come back. */
    memset((void *)seen, 0, NT);
    push_range_as(&inj, 0, 200, 100, &rng, true);
    push_range(&inj, 200, 230, 5, &rng);
    ck_assert_uint_eq(pop_chain(&inj, 10, &first), 10);
    for (weft_task_t *t = first; t; t = t->next)
        mark(t);
    push_range_as(&inj, 230, 260, 30, &rng, true); /* still in the block intake */
    ASSERT_NO_TEST_FAIL();
    size_t left = 0;
    for (weft_task_t *t = weft__inject_close(&inj); t; t = t->next, left++)
        mark(t);
    ck_assert_uint_eq(left, 250);
    ASSERT_NO_TEST_FAIL();
    for (size_t i = 0; i < 260; i++)
        ck_assert_msg(seen[i] == 1, "task %zu taken %d times", i, seen[i]);
    ck_assert_uint_eq(atomic_load(&inj.len), 0);
    weft_task_t *arr[2] = { &tasks[300], &tasks[301] };
    ck_assert(!weft__inject_push_array(&inj, arr, 2));
    ck_assert_uint_eq(atomic_load(&inj.len), 0);
    weft__inject_destroy(&inj);
}
END_TEST

/* Without memory for a block, an overflow still goes in, as a chain. */
START_TEST(inject_array_without_memory)
{
    weft__inject_t inj;
    weft__inject_init(&inj);
    weft_task_t *arr[WEFT__INJECT_BLOCK_CAP];
    for (size_t k = 0; k < WEFT__INJECT_BLOCK_CAP; k++)
        arr[k] = &tasks[k];
    weft__alloc_fail_after(1); /* the next allocation fails */
    ck_assert(weft__inject_push_array(&inj, arr, WEFT__INJECT_BLOCK_CAP));
    weft__alloc_fail_after(-1);
    ck_assert_ptr_null(atomic_load(&inj.block_intake)); /* it went in as a chain */
    ck_assert_ptr_nonnull(atomic_load(&inj.intake));
    weft_task_t *first;
    ck_assert_uint_eq(pop_chain(&inj, 512, &first), WEFT__INJECT_BLOCK_CAP);
    size_t expect = 0;
    for (weft_task_t *t = first; t; t = t->next)
        ck_assert_ptr_eq(t, &tasks[expect++]);
    weft__inject_destroy(&inj);
}
END_TEST

/* Four producers push chains (two of them blocks) of their own range while two consumers pop,
 * with chaos yields: every task comes out exactly once, and each consumer
 * sees each producer's tasks in increasing order (a chain or a batch is
 * never reordered, and a later push never overtakes an earlier one). */
#define INJ_PRODUCERS 4
#define INJ_CONSUMERS 2
typedef struct {
    weft__inject_t *inj;
    size_t from, to;
    uint64_t rng;
    _Atomic size_t *taken;
    bool arrays;
} inj_thread_t;

static void *inj_producer(void *arg)
{
    inj_thread_t *p = arg;
    /* Half the producers push blocks of up to a whole overflow's size. */
    push_range_as(p->inj, p->from, p->to, p->arrays ? WEFT__INJECT_BLOCK_CAP : 8, &p->rng, p->arrays);
    return NULL;
}

static void *inj_consumer(void *arg)
{
    inj_thread_t *c = arg;
    size_t last[INJ_PRODUCERS];
    for (int i = 0; i < INJ_PRODUCERS; i++)
        last[i] = SIZE_MAX;
    size_t per = c->to / INJ_PRODUCERS;
    while (atomic_load(c->taken) < c->to) {
        weft_task_t *first;
        size_t k = pop_chain(c->inj, 1 + (size_t)(c->rng++ % 61), &first);
        for (weft_task_t *t = first; k > 0 && t; t = t->next) {
            mark(t);
            size_t i = (size_t)(t - tasks), prod = i / per;
            if (!WEFT_TEST_CHECK_MSG(prod < INJ_PRODUCERS, "task %zu is no producer's", i))
                continue;
            (void)WEFT_TEST_CHECK_MSG(last[prod] == SIZE_MAX || i > last[prod], "producer %zu: task %zu after %zu",
                                      prod, i, last[prod]);
            last[prod] = i;
        }
        atomic_fetch_add(c->taken, k);
        if (k == 0)
            sched_yield();
    }
    return NULL;
}

START_TEST(inject_producers_vs_consumers)
{
    uint64_t s0 = chaos_seed0();
    size_t n = 40000;
    for (int it = 0; it < chaos_iters(200) / 20 + 1; it++) {
        memset((void *)seen, 0, NT);
        weft__chaos_set(s0 + (uint64_t)it, 50);
        weft__inject_t inj;
        weft__inject_init(&inj);
        _Atomic size_t taken = 0;
        inj_thread_t th[INJ_PRODUCERS + INJ_CONSUMERS];
        pthread_t tid[INJ_PRODUCERS + INJ_CONSUMERS];
        for (int i = 0; i < INJ_PRODUCERS + INJ_CONSUMERS; i++) {
            bool prod = i < INJ_PRODUCERS;
            th[i] = (inj_thread_t){ &inj, prod ? (size_t)i * n / INJ_PRODUCERS : 0,
                                    prod ? (size_t)(i + 1) * n / INJ_PRODUCERS : n, s0 + (uint64_t)(it * 8 + i) + 1,
                                    &taken, prod && i % 2 == 0 };
            ck_assert_int_eq(pthread_create(&tid[i], NULL, prod ? inj_producer : inj_consumer, &th[i]), 0);
        }
        for (int i = 0; i < INJ_PRODUCERS + INJ_CONSUMERS; i++)
            pthread_join(tid[i], NULL);
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
        ck_assert_uint_eq(atomic_load(&taken), n);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(seen[i] == 1, "task %zu taken %d times", i, seen[i]);
        ck_assert(weft__inject_is_empty(&inj));
        weft__inject_destroy(&inj);
    }
}
END_TEST

/* Producers push chains while another thread closes the queue: every task
 * comes out exactly once, either in the closer's list or in a refused
 * chain handed back intact (a refused push once walked into the closer's
 * tasks through a link its failed CAS had left). */
typedef struct {
    weft__inject_t *inj;
    size_t from, to, pushed;
    uint64_t rng;
} racer_t;

static void *inj_racer(void *arg)
{
    racer_t *p = arg;
    size_t i = p->from;
    while (i < p->to) {
        size_t n = 2 + (size_t)(p->rng++ % 7);
        if (n > p->to - i)
            n = p->to - i;
        for (size_t k = 0; k + 1 < n; k++)
            tasks[i + k].next = &tasks[i + k + 1];
        if (!weft__inject_push_batch(p->inj, &tasks[i], &tasks[i + n - 1], n)) {
            size_t k = 0;
            for (weft_task_t *t = &tasks[i]; t != NULL; t = t->next, k++) {
                if (!WEFT_TEST_CHECK_MSG(t == &tasks[i + k], "refused chain of %zu from task %zu: link %zu wrong",
                                         n, i, k))
                    break;
                mark(t);
            }
            (void)WEFT_TEST_CHECK_MSG(k == n, "refused chain of %zu came back with %zu", n, k);
            p->pushed += n;
            break;
        }
        p->pushed += n;
        i += n;
    }
    return NULL;
}

START_TEST(inject_push_races_close)
{
    uint64_t s0 = chaos_seed0();
    for (int it = 0; it < chaos_iters(200) / 4 + 1; it++) {
        memset((void *)seen, 0, NT);
        weft__chaos_set(s0 + (uint64_t)it, 100);
        weft__inject_t inj;
        weft__inject_init(&inj);
        racer_t r[INJ_PRODUCERS];
        pthread_t tid[INJ_PRODUCERS];
        size_t per = NT / INJ_PRODUCERS;
        for (int i = 0; i < INJ_PRODUCERS; i++) {
            r[i] = (racer_t){ &inj, (size_t)i * per, (size_t)(i + 1) * per, 0, s0 + (uint64_t)(it * 8 + i) };
            ck_assert_int_eq(pthread_create(&tid[i], NULL, inj_racer, &r[i]), 0);
        }
        struct timespec ts = { 0, (long)(50000 + (s0 + (uint64_t)it) % 200000) };
        nanosleep(&ts, NULL);
        size_t closed = 0;
        for (weft_task_t *t = weft__inject_close(&inj); t != NULL; t = t->next, closed++)
            mark(t);
        size_t pushed = 0;
        for (int i = 0; i < INJ_PRODUCERS; i++) {
            pthread_join(tid[i], NULL);
            pushed += r[i].pushed;
        }
        weft__chaos_set(0, 0);
        ASSERT_NO_TEST_FAIL();
        size_t marked = 0;
        for (size_t i = 0; i < NT; i++)
            marked += seen[i];
        ck_assert_uint_eq(marked, pushed); /* each exactly once (mark checks twice) */
        ck_assert(weft__inject_is_empty(&inj));
        weft__inject_destroy(&inj);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue");
    TCase *tc = tcase_create("local");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, fifo_and_overflow);
    tcase_add_test(tc, steal_takes_half);
    tcase_add_test(tc, owner_vs_one_thief);
    tcase_add_test(tc, owner_vs_two_thieves);
    tcase_add_test(tc, steal_chain);
    tcase_add_test(tc, steal_into_spares_slots_a_thief_still_reads);
    tcase_add_test(tc, thief_paused_across_wraparound);
    suite_add_tcase(s, tc);
    TCase *ti = tcase_create("inject");
    tcase_add_checked_fixture(ti, setup, teardown);
    tcase_set_timeout(ti, 300);
    tcase_add_test(ti, inject_keeps_chain_and_push_order);
    tcase_add_test(ti, inject_try_pop_gives_way_to_a_holder);
    tcase_add_test(ti, inject_close_returns_everything_and_refuses_pushes);
    tcase_add_test(ti, inject_blocks_and_chains);
    tcase_add_test(ti, inject_array_without_memory);
    tcase_add_test(ti, inject_producers_vs_consumers);
    tcase_add_test(ti, inject_push_races_close);
    suite_add_tcase(s, ti);
    return run_suite(s);
}
