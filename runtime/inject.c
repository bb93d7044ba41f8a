/* runtime/inject.c - the global inject queues (multiple producers, multiple
 * consumers): spawns and wakes from outside the runtime, and local-queue
 * overflow (`inject`), and timer wakes from busy workers (`woken`).
 *
 * Producers push onto a lock-free intake stack (list.h), one CAS per
 * chain, and never wait: with a mutex, a spawner descheduled while holding
 * it (a remote spawn burst on two cores has three runnable threads) stalled
 * every worker that came for a batch, for a whole scheduler slice. Consumers take a mutex
 * among themselves: the first to find its FIFO list empty swaps the stack
 * out whole and reverses it into that list. A producer reverses its chain
 * before pushing, so the double reversal keeps every chain in order, and
 * chains in push order. An atomic length lets workers skip an empty queue
 * without the lock.
 *
 * A local queue's overflow (half a queue) comes as an array and travels as
 * one block of task pointers on its own intake stack: pushing, taking and
 * reversing cost one step per block, and a consumer copies a batch out of
 * a few contiguous cache lines. Chained through the tasks, every step was
 * a cache miss on a cold task header, under the consumers' lock (a wide
 * spawn tree spent a quarter of its cycles there). Pops alternate which
 * intake they serve first, so neither starves the other.
 */
#include <string.h>

#include "list.h"
#include "scheduler.h"

/* The intake stack (list.h) over the tasks' queue link. */
WEFT__INTAKE_GEN(task_intake, weft_task_t, next)
WEFT__INTAKE_GEN(block_intake, weft__inject_block_t, next)

void weft__inject_init(weft__inject_t *q)
{
    atomic_init(&q->intake, NULL);
    atomic_init(&q->block_intake, NULL);
    atomic_init(&q->spare, NULL);
    atomic_init(&q->len, 0);
    pthread_mutex_init(&q->lock, NULL);
    q->head = q->tail = NULL;
    q->blocks = NULL;
    q->blocks_first = false;
}

static void free_block(weft__inject_block_t *b)
{
    weft__free(b, sizeof *b);
}

void weft__inject_destroy(weft__inject_t *q)
{
    weft__inject_block_t *b = atomic_exchange_explicit(&q->spare, NULL, memory_order_acquire);
    if (b != NULL)
        free_block(b);
    pthread_mutex_destroy(&q->lock);
}

bool weft__inject_push_batch(weft__inject_t *q, weft_task_t *first, weft_task_t *last, size_t n)
{
    /* Counted before the link, so the count is never short: a worker that
     * reads it as empty while a push is under way gets a notify from that
     * push after it links (the callers notify), and one that reads a count
     * whose tasks are not linked yet just finds nothing and looks again.
     * Counting after the link let a pop of a not-yet-counted chain leave a
     * later push's tasks uncounted, unseen by parking workers. */
    atomic_fetch_add_explicit(&q->len, n, memory_order_relaxed);
    /* release: the chain's links (and the tasks) reach the consumer's
     * acquire exchange in weft__inject_pop_batch / weft__inject_close. */
    if (task_intake_push(&q->intake, first, last, n > 1, memory_order_release, NULL))
        return true;
    atomic_fetch_sub_explicit(&q->len, n, memory_order_relaxed); /* closed: the caller keeps the chain */
    return false;
}

bool weft__inject_push_array(weft__inject_t *q, weft_task_t *const *tasks, size_t n)
{
    if (n == 0 || n > WEFT__INJECT_BLOCK_CAP)
        weft_panic(WEFT_SITE, "weft__inject_push_array: %zu tasks", n);
    /* acquire: the block's last reader (a pop) released it. */
    weft__inject_block_t *b = atomic_exchange_explicit(&q->spare, NULL, memory_order_acquire);
    if (b == NULL)
        b = weft__alloc(sizeof *b);
    if (b == NULL) { /* no memory for a block: the tasks' own links do */
        for (size_t i = 0; i + 1 < n; i++)
            tasks[i]->next = tasks[i + 1];
        tasks[n - 1]->next = NULL;
        return weft__inject_push_batch(q, tasks[0], tasks[n - 1], n);
    }
    memcpy(b->tasks, tasks, n * sizeof tasks[0]);
    b->n = (uint32_t)n;
    b->taken = 0;
    atomic_fetch_add_explicit(&q->len, n, memory_order_relaxed); /* before the link: see push_batch */
    /* release: the block's contents reach the consumer's acquire take. */
    if (block_intake_push(&q->block_intake, b, b, false, memory_order_release, NULL))
        return true;
    atomic_fetch_sub_explicit(&q->len, n, memory_order_relaxed); /* closed: the caller keeps the tasks */
    free_block(b);
    return false;
}

/* Consumers, under the lock: up to max tasks from the chains. */
static size_t pop_chained(weft__inject_t *q, weft_task_t **out, size_t max)
{
    if (q->head == NULL) /* acquire: pairs with the producers' release CAS. */
        q->head = task_intake_take_unless_closed(&q->intake, memory_order_acquire, &q->tail);
    size_t n = 0;
    weft_task_t *t = q->head;
    while (t != NULL && n < max) {
        out[n++] = t;
        t = t->next;
    }
    q->head = t;
    if (t == NULL)
        q->tail = NULL;
    return n;
}

/* Consumers, under the lock: up to max tasks from the blocks; blocks
 * emptied go to *done. */
static size_t pop_blocks(weft__inject_t *q, weft_task_t **out, size_t max, weft__inject_block_t **done)
{
    size_t n = 0;
    while (n < max) {
        if (q->blocks == NULL) {
            weft__inject_block_t *last;
            /* acquire: pairs with push_array's release CAS. */
            q->blocks = block_intake_take_unless_closed(&q->block_intake, memory_order_acquire, &last);
            if (q->blocks == NULL)
                break;
        }
        weft__inject_block_t *b = q->blocks;
        size_t k = b->n - b->taken;
        if (k > max - n)
            k = max - n;
        memcpy(out + n, b->tasks + b->taken, k * sizeof out[0]);
        b->taken += (uint32_t)k;
        n += k;
        if (b->taken == b->n) {
            q->blocks = b->next;
            b->next = *done;
            *done = b;
        }
    }
    return n;
}

static size_t pop_locked(weft__inject_t *q, weft_task_t **out, size_t max);

size_t weft__inject_pop(weft__inject_t *q, weft_task_t **out, size_t max)
{
    if (weft__inject_is_empty(q) || max == 0)
        return 0;
    pthread_mutex_lock(&q->lock);
    return pop_locked(q, out, max);
}

size_t weft__inject_try_pop(weft__inject_t *q, weft_task_t **out, size_t max)
{
    if (weft__inject_is_empty(q) || max == 0)
        return 0;
    /* A pop holds the lock for a batch's copy: wait out that much with a
     * short spin, but not a holder that lost its CPU. */
    for (unsigned spins = 0; pthread_mutex_trylock(&q->lock) != 0; spins++) {
        if (spins == 64)
            return 0;
        weft__cpu_pause();
    }
    return pop_locked(q, out, max);
}

/* The pop with the lock held; releases it. */
static size_t pop_locked(weft__inject_t *q, weft_task_t **out, size_t max)
{
    weft__inject_block_t *done = NULL;
    size_t n;
    if (q->blocks_first) {
        n = pop_blocks(q, out, max, &done);
        n += pop_chained(q, out + n, max - n);
    } else {
        n = pop_chained(q, out, max);
        n += pop_blocks(q, out + n, max - n, &done);
    }
    q->blocks_first = !q->blocks_first;
    if (n > 0)
        atomic_fetch_sub_explicit(&q->len, n, memory_order_relaxed);
    pthread_mutex_unlock(&q->lock);
    while (done != NULL) { /* keep one for the next push; release: our reads of it are done */
        weft__inject_block_t *b = done;
        done = b->next;
        b = atomic_exchange_explicit(&q->spare, b, memory_order_acq_rel);
        if (b != NULL)
            free_block(b);
    }
    return n;
}

weft_task_t *weft__inject_close(weft__inject_t *q)
{
    pthread_mutex_lock(&q->lock);
    /* acquire: as in pop. */
    weft_task_t *last;
    weft_task_t *older = task_intake_close(&q->intake, memory_order_acquire, &last);
    weft__inject_block_t *blast;
    weft__inject_block_t *bolder = block_intake_close(&q->block_intake, memory_order_acquire, &blast);
    weft_task_t *head = q->head, *tail = q->tail;
    if (older != NULL) {
        if (tail != NULL)
            tail->next = older;
        else
            head = older;
        tail = last;
    }
    (void)blast;
    weft__inject_block_t *b = q->blocks;
    if (b == NULL) {
        b = bolder;
    } else {
        weft__inject_block_t *end = b;
        while (end->next != NULL)
            end = end->next;
        end->next = bolder;
    }
    q->head = q->tail = NULL;
    q->blocks = NULL;
    /* The blocks' tasks join the chain (shutdown only: the links are free
     * while a task sits in a block). */
    while (b != NULL) {
        weft__inject_block_t *next = b->next;
        for (uint32_t i = b->taken; i < b->n; i++) {
            weft_task_t *t = b->tasks[i];
            t->next = NULL;
            if (tail != NULL)
                tail->next = t;
            else
                head = t;
            tail = t;
        }
        free_block(b);
        b = next;
    }
    size_t n = 0;
    for (weft_task_t *t = head; t != NULL; t = t->next)
        n++;
    atomic_fetch_sub_explicit(&q->len, n, memory_order_relaxed);
    pthread_mutex_unlock(&q->lock);
    return head;
}
