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
 */
#include "list.h"
#include "scheduler.h"

/* The intake stack (list.h) over the tasks' queue link. */
WEFT__INTAKE_GEN(task_intake, weft_task_t, next)

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

size_t weft__inject_pop_batch(weft__inject_t *q, size_t max, weft_task_t **first)
{
    if (weft__inject_is_empty(q) || max == 0)
        return 0;
    pthread_mutex_lock(&q->lock);
    if (q->head == NULL) /* acquire: pairs with the producers' release CAS. */
        q->head = task_intake_take_unless_closed(&q->intake, memory_order_acquire, &q->tail);
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
    weft_task_t *last;
    weft_task_t *older = task_intake_close(&q->intake, memory_order_acquire, &last);
    weft_task_t *head = q->head, *tail = q->tail;
    size_t n = 0;
    if (older != NULL) {
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
