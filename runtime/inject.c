/* runtime/inject.c - the global inject queue (multiple producers, multiple
 * consumers): spawns and wakes from outside the runtime, and local-queue
 * overflow.
 *
 * A mutex-protected intrusive FIFO list through task->next, with an atomic
 * length that lets workers skip the lock when it is empty. Producers push a
 * whole chain under one lock acquisition (overflow moves 129 tasks at once);
 * consumers take batches into their local queue, so the lock is taken once
 * per batch, not per task. Blocking (mutex); the critical sections are a
 * few pointer writes.
 */
#include "scheduler.h"

void weft__inject_init(weft__inject_t *q)
{
    pthread_mutex_init(&q->lock, NULL);
    q->head = q->tail = NULL;
    q->closed = false;
    atomic_init(&q->len, 0);
}

void weft__inject_destroy(weft__inject_t *q)
{
    pthread_mutex_destroy(&q->lock);
}

bool weft__inject_push_batch(weft__inject_t *q, weft_task_t *first, weft_task_t *last, size_t n)
{
    last->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        pthread_mutex_unlock(&q->lock);
        return false;
    }
    if (q->tail)
        q->tail->next = first;
    else
        q->head = first;
    q->tail = last;
    /* release: pairs with the acquire in weft__inject_is_empty. */
    atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + n, memory_order_release);
    pthread_mutex_unlock(&q->lock);
    return true;
}

size_t weft__inject_pop_batch(weft__inject_t *q, size_t max, weft_task_t **first)
{
    if (weft__inject_is_empty(q) || max == 0)
        return 0;
    pthread_mutex_lock(&q->lock);
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
        atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) - n,
                              memory_order_relaxed);
    }
    pthread_mutex_unlock(&q->lock);
    *first = head;
    return n;
}

weft_task_t *weft__inject_close(weft__inject_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    weft_task_t *head = q->head;
    q->head = q->tail = NULL;
    atomic_store_explicit(&q->len, 0, memory_order_relaxed);
    pthread_mutex_unlock(&q->lock);
    return head;
}
