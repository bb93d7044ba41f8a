/* runtime/idle.c - which workers are parked or searching, and waking one
 * when work appears.
 *
 * state packs (unparked << 16) | searching. Rules (after Go's spinning Ms
 * and Tokio's Idle):
 *   - At most half of the workers search (steal) at once, so a burst of
 *     wake-ups does not turn into every core hammering every queue.
 *   - A producer that publishes work calls weft__idle_notify_one: if no
 *     worker is searching and some are parked, it wakes exactly one, which
 *     starts out searching. A searcher that finds work and was the last
 *     searcher wakes another (worker.c), so wake-ups chain only while work
 *     keeps coming. Work a searcher makes itself (the socket events and
 *     timers it takes on its way to parking) ends the search without
 *     waking anyone, unless other work waits (weft__idle_found_own_work).
 *   - No lost wake-up (Dekker): the producer publishes its task, then a
 *     seq_cst fence, then reads state. A parking worker updates state with a
 *     seq_cst RMW, then a seq_cst fence, then re-checks every queue
 *     (weft__sched_has_work). Either the producer sees the worker still
 *     counted as unparked (and that worker's re-check sees the task), or the
 *     worker's re-check happens after the push.
 * The sleeper list itself is under a mutex: parking is the slow path.
 */
#include "scheduler.h"

#define IDLE_UNPARKED_ONE (1u << 16)
#define IDLE_SEARCHING_MASK 0xffffu

static inline unsigned st_searching(uint32_t s) { return s & IDLE_SEARCHING_MASK; }
static inline unsigned st_unparked(uint32_t s) { return s >> 16; }

int weft__idle_init(weft__idle_t *idle, unsigned nworkers)
{
    idle->sleepers = weft__calloc(nworkers, sizeof(unsigned));
    if (idle->sleepers == NULL)
        return WEFT_ENOMEM;
    pthread_mutex_init(&idle->lock, NULL);
    atomic_init(&idle->state, nworkers * IDLE_UNPARKED_ONE);
    idle->nsleepers = 0;
    idle->nworkers = nworkers;
    return 0;
}

void weft__idle_free(weft__idle_t *idle)
{
    pthread_mutex_destroy(&idle->lock);
    weft__free(idle->sleepers, idle->nworkers * sizeof(unsigned));
    idle->sleepers = NULL;
}

static void wake_one_slow(weft__sched_t *s);

void weft__idle_notify_one(weft__sched_t *s)
{
    weft__idle_t *idle = &s->idle;
    if (s->flavor == WEFT_RUNTIME_CURRENT_THREAD) {
        weft__worker_unpark(s, &s->workers[0]);
        return;
    }
    /* seq_cst fence: pairs with the fence in worker.c:park_worker (Dekker):
     * the task published before this fence is seen by a worker that parked
     * after our state load, or we see that worker unparked. */
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t st = atomic_load_explicit(&idle->state, memory_order_relaxed);
    if (st_searching(st) != 0 || st_unparked(st) >= idle->nworkers)
        return;
    wake_one_slow(s);
}

void weft__idle_notify_local(weft__sched_t *s)
{
    /* No fence: the task sits in the caller's own queue and the caller, a
     * running worker, will take it itself if no one else does, so a missed
     * parker costs parallelism for a moment, never liveness. The fence
     * (an mfence per push) was a third of the cost of a yield. */
    uint32_t st = atomic_load_explicit(&s->idle.state, memory_order_relaxed);
    if (st_searching(st) != 0 || st_unparked(st) >= s->idle.nworkers)
        return;
    wake_one_slow(s);
}

static void wake_one_slow(weft__sched_t *s)
{
    weft__idle_t *idle = &s->idle;
    uint32_t st;
    pthread_mutex_lock(&idle->lock);
    st = atomic_load_explicit(&idle->state, memory_order_relaxed);
    if (st_searching(st) != 0 || idle->nsleepers == 0) {
        pthread_mutex_unlock(&idle->lock);
        return;
    }
    unsigned i = idle->sleepers[--idle->nsleepers];
    weft__worker_t *w = &s->workers[i];
    /* The woken worker starts searching: count it before it runs, so other
     * producers do not wake a second one for the same work. */
    atomic_fetch_add_explicit(&idle->state, IDLE_UNPARKED_ONE + 1, memory_order_seq_cst);
    w->sleeping = false;
    pthread_mutex_unlock(&idle->lock);
    weft__worker_unpark(s, w);
}

void weft__idle_notify_all(weft__sched_t *s)
{
    for (unsigned i = 0; i < s->nworkers; i++)
        weft__worker_unpark(s, &s->workers[i]);
}

bool weft__idle_try_search(weft__sched_t *s, weft__worker_t *w)
{
    weft__idle_t *idle = &s->idle;
    uint32_t st = atomic_load_explicit(&idle->state, memory_order_seq_cst);
    if (2 * st_searching(st) >= idle->nworkers)
        return false;
    atomic_fetch_add_explicit(&idle->state, 1, memory_order_seq_cst);
    w->searching = true;
    return true;
}

bool weft__idle_end_search(weft__sched_t *s, weft__worker_t *w)
{
    w->searching = false;
    uint32_t prev = atomic_fetch_sub_explicit(&s->idle.state, 1, memory_order_seq_cst);
    return st_searching(prev) == 1;
}

void weft__idle_found_own_work(weft__sched_t *s, weft__worker_t *w, bool timers_waiting)
{
    if (!w->searching || !weft__idle_end_search(s, w))
        return;
    /* seq_cst fence: a producer that saw us searching skipped its notify
     * (weft__idle_notify_one); either its task is visible to the checks
     * below, or it saw our search end and notified itself. A worker that
     * parks after the first check re-checks every queue itself. */
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t st = atomic_load_explicit(&s->idle.state, memory_order_relaxed);
    if (st_unparked(st) >= s->idle.nworkers)
        return; /* nobody to wake: spare the look at every queue */
    if (timers_waiting || weft__sched_has_work(s))
        weft__idle_notify_one(s);
}

void weft__idle_park(weft__sched_t *s, weft__worker_t *w)
{
    weft__idle_t *idle = &s->idle;
    pthread_mutex_lock(&idle->lock);
    uint32_t dec = IDLE_UNPARKED_ONE + (w->searching ? 1 : 0);
    atomic_fetch_sub_explicit(&idle->state, dec, memory_order_seq_cst);
    idle->sleepers[idle->nsleepers++] = w->index;
    w->sleeping = true;
    pthread_mutex_unlock(&idle->lock);
    w->searching = false;
}

bool weft__idle_unpark_self(weft__sched_t *s, weft__worker_t *w)
{
    weft__idle_t *idle = &s->idle;
    pthread_mutex_lock(&idle->lock);
    if (!w->sleeping) {
        pthread_mutex_unlock(&idle->lock);
        return false;
    }
    for (unsigned i = 0; i < idle->nsleepers; i++) {
        if (idle->sleepers[i] == w->index) {
            idle->sleepers[i] = idle->sleepers[--idle->nsleepers];
            break;
        }
    }
    w->sleeping = false;
    atomic_fetch_add_explicit(&idle->state, IDLE_UNPARKED_ONE, memory_order_seq_cst);
    pthread_mutex_unlock(&idle->lock);
    return true;
}

bool weft__idle_is_sleeping(weft__sched_t *s, weft__worker_t *w)
{
    pthread_mutex_lock(&s->idle.lock);
    bool r = w->sleeping;
    pthread_mutex_unlock(&s->idle.lock);
    return r;
}
