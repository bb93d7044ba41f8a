/* runtime/inject.c - the global inject queues (multiple producers, multiple
 * consumers): spawns and wakes from outside the runtime, and local-queue
 * overflow (`inject`), and timer wakes from busy workers (`woken`).
 *
 * Producers push onto a lock-free stack, one CAS per chain, and never wait:
 * with a mutex, a spawner descheduled while holding it (a remote spawn
 * burst on two cores has three runnable threads) stalled every worker that
 * came for a batch, for a whole scheduler slice. Consumers take a mutex
 * among themselves: the first to find its FIFO list empty swaps the stack
 * out whole and reverses it into that list. A producer reverses its chain
 * before pushing, so the double reversal keeps every chain in order, and
 * chains in push order. An atomic length lets workers skip an empty queue
 * without the lock.
 */
#include "scheduler.h"

#define CLOSED ((weft_task_t *)(uintptr_t)1)

void weft__inject_init(weft__inject_t *q)
{
    atomic_init(&q->intake, NULL);
    atomic_init(&q->len, 0);
    pthread_mutex_init(&q->lock, NULL);
    q->head = q->tail = NULL;
}

void weft__inject_destroy(weft__inject_t *q)
{
    pthread_mutex_destroy(&q->lock);
}

/* Reverses the chain from `t`; returns the new head, *last the new tail. */
static weft_task_t *reverse(weft_task_t *t, weft_task_t **last)
{
    weft_task_t *rev = NULL;
    *last = t;
    while (t != NULL) {
        weft_task_t *next = t->next;
        t->next = rev;
        rev = t;
        t = next;
    }
    return rev;
}

bool weft__inject_push_batch(weft__inject_t *q, weft_task_t *first, weft_task_t *last, size_t n)
{
    last->next = NULL;
    weft_task_t *top = first;
    if (n > 1)
        top = reverse(first, &last); /* last..first: the consumer reverses it back */
    /* Counted before the link, so the count is never short: a worker that
     * reads it as empty while a push is under way gets a notify from that
     * push after it links (the callers notify), and one that reads a count
     * whose tasks are not linked yet just finds nothing and looks again.
     * Counting after the link let a pop of a not-yet-counted chain leave a
     * later push's tasks uncounted, unseen by parking workers. */
    atomic_fetch_add_explicit(&q->len, n, memory_order_relaxed);
    weft_task_t *head = atomic_load_explicit(&q->intake, memory_order_relaxed);
    do {
        if (head == CLOSED) {
            atomic_fetch_sub_explicit(&q->len, n, memory_order_relaxed);
            if (n > 1) {
                /* The failed CAS may have left last->next pointing into
                 * what the closer took: cut it before walking back. */
                last->next = NULL;
                reverse(top, &last); /* give the caller its chain back, in order */
            }
            return false;
        }
        last->next = head;
        WEFT_CHAOS();
        /* release: the chain's links (and the tasks) reach the consumer's
         * acquire exchange. */
    } while (!atomic_compare_exchange_weak_explicit(&q->intake, &head, top, memory_order_release,
                                                    memory_order_relaxed));
    return true;
}

size_t weft__inject_pop_batch(weft__inject_t *q, size_t max, weft_task_t **first)
{
    if (weft__inject_is_empty(q) || max == 0)
        return 0;
    pthread_mutex_lock(&q->lock);
    if (q->head == NULL) {
        weft_task_t *top = atomic_load_explicit(&q->intake, memory_order_relaxed);
        /* acquire: pairs with the producers' release CAS. */
        if (top != NULL && top != CLOSED)
            top = atomic_exchange_explicit(&q->intake, NULL, memory_order_acquire);
        if (top != NULL && top != CLOSED)
            q->head = reverse(top, &q->tail);
    }
    size_t n = 0;
    weft_task_t *head = q->head, *t = head, *last = NULL;
    while (t != NULL && n < max) {
        last = t;
        t = t->next;
        n++;
    }
    if (n > 0) {
        q->head = t;
        if (t == NULL)
            q->tail = NULL;
        last->next = NULL;
        atomic_fetch_sub_explicit(&q->len, n, memory_order_relaxed);
    }
    pthread_mutex_unlock(&q->lock);
    *first = head;
    return n;
}

weft_task_t *weft__inject_close(weft__inject_t *q)
{
    pthread_mutex_lock(&q->lock);
    /* acquire: as in pop. */
    weft_task_t *top = atomic_exchange_explicit(&q->intake, CLOSED, memory_order_acquire);
    weft_task_t *head = q->head, *tail = q->tail;
    size_t n = 0;
    if (top != NULL && top != CLOSED) {
        weft_task_t *last;
        weft_task_t *older = reverse(top, &last);
        if (tail != NULL)
            tail->next = older;
        else
            head = older;
    }
    for (weft_task_t *t = head; t != NULL; t = t->next)
        n++;
    q->head = q->tail = NULL;
    atomic_fetch_sub_explicit(&q->len, n, memory_order_relaxed);
    pthread_mutex_unlock(&q->lock);
    return head;
}
