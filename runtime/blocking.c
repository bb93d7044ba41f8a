/* runtime/blocking.c - the blocking pool: threads for spawn_blocking jobs,
 * and (multi-thread runtimes) the threads that run the worker loops.
 *
 * A blocking job is an ordinary task (task.c) whose future calls the user's
 * function in its one poll, so join handles, abort and shutdown work as for
 * any task. It is queued here instead of on a worker.
 *
 * The queue. Spawners push onto a lock-free stack (`intake`, one CAS), so
 * many spawners never share a lock. Pool threads take from a FIFO `ready`
 * list under `take_lock`, refilling it by grabbing the whole intake stack
 * at once and reversing it: jobs start in the order they were queued,
 * batch by batch, and only pool threads ever touch the lock.
 *
 * Threads. One word, `state`, counts searching threads (awake, not running
 * a job), idle threads (asleep, waiting for a token) and all threads, plus
 * a closed bit. After a push the spawner (ensure_spare) leaves it to a
 * searching thread if there is one, else claims an idle thread (idle-1,
 * searching+1, then a token and a condition-variable signal), else creates
 * one (threads+1, searching+1) while under the cap. A thread that takes a
 * job stops searching; if it was the last searcher and more jobs wait, it
 * does the same for the next job, so each queued job finds a thread
 * promptly (a job may block forever, so it must not wait behind another)
 * while a burst served by threads that are already awake costs no wake-up.
 * No lost wake-up (Dekker, all seq_cst): the spawner pushes, bumps
 * `queued`, then reads `state`; a thread going idle updates `state`, then
 * reads `queued`, and takes itself back if a job arrived.
 * An idle thread sleeps up to the keep-alive, then exits unless a claim on
 * it is in flight (idle would then read 0). Exited threads are joined by
 * the next thread to exit, or by shutdown (as in Tokio), so at most one
 * finished thread waits to be joined.
 *
 * Worker loops. A multi-thread runtime starts each worker's loop on a pool
 * thread. block_in_place hands the loop (the "core": queue, LIFO slot,
 * parker) to another pool thread and the blocking thread finishes its
 * poll as an ordinary thread, then stays in the pool. Cores waiting for a
 * thread are taken before jobs and are not held to the cap.
 */
#include <string.h>
#include <time.h>

#include "list.h"
#include "scheduler.h"
#include "nonnull.h"

#define P_SEARCH_ONE ((uint64_t)1)
#define P_IDLE_ONE ((uint64_t)1 << 20)
#define P_THREAD_ONE ((uint64_t)1 << 40)
#define P_CLOSED ((uint64_t)1 << 63)
#define P_MAX_THREADS 32768u

static inline unsigned p_searching(uint64_t s) { return (unsigned)(s & 0xfffff); }
static inline unsigned p_idle(uint64_t s) { return (unsigned)((s >> 20) & 0xfffff); }
static inline unsigned p_threads(uint64_t s) { return (unsigned)((s >> 40) & 0xfffff); }

typedef struct pool_thread {
    pthread_t tid; /* written by the thread itself */
    weft__dnode_t link; /* on the pool's `live` list */
    struct weft__pool *pool;
    weft__worker_t *first_core;
} pool_thread_t;

struct weft__pool {
    weft__sched_t *sched;
    _Alignas(WEFT_CACHELINE) _Atomic uint64_t state;
    _Alignas(WEFT_CACHELINE) _Atomic(weft_task_t *) intake;
    _Atomic long queued; /* jobs pushed and not yet taken (may dip below 0 briefly) */
    _Alignas(WEFT_CACHELINE) pthread_mutex_t take_lock;
    weft_task_t *ready_head, *ready_tail; /* under take_lock */
    _Alignas(WEFT_CACHELINE) pthread_mutex_t lock;
    pthread_cond_t wake_cond; /* idle threads wait here for a token */
    pthread_cond_t exit_cond; /* a thread exited, or a worker loop ended */
    unsigned tokens;          /* claims posted to idle threads; under lock */
    weft__dlist_t live;       /* pool_thread_t.link; under lock */
    unsigned nlive;
    pool_thread_t *last_exited; /* exited, not yet joined; under lock */
    weft__worker_t *cores;      /* worker loops waiting for a thread; under lock */
    _Atomic unsigned cores_pending;
    unsigned cores_base; /* threads that run worker loops (not held to the cap) */
    unsigned cap;
    uint64_t keep_alive_ns;
    pthread_attr_t attr;
    bool closing; /* shutdown's first step done; under the runtime's shutdown lock */
};

/* ---- The job: a task whose one poll runs the function --------------------- */

typedef struct {
    weft_future_t base;
    weft_blocking_fn_t fn;
    void *arg;
    void (*cancel)(void *arg);
    bool ran;
} blocking_fut_t;

static weft_poll_t blocking_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx;
    blocking_fut_t *b = (blocking_fut_t *)(void *)f;
    b->ran = true;
    void *r = b->fn(b->arg);
    *(void **)out = r;
    return WEFT_READY;
}

static void blocking_drop(weft_future_t *f)
{
    blocking_fut_t *b = (blocking_fut_t *)(void *)f;
    if (!b->ran && b->cancel != NULL)
        b->cancel(b->arg);
}

static const weft_future_vtable_t blocking_vtable = {
    blocking_poll, blocking_drop, NULL, sizeof(blocking_fut_t), sizeof(void *), "weft_spawn_blocking",
};

/* ---- Queue ------------------------------------------------------------------- */

/* The intake stack (runtime/list.h) over the tasks' queue link. */
WEFT__INTAKE_GEN(job_intake, weft_task_t, next)

static void push_job(weft__pool_t *p, weft_task_t *t)
{
    /* seq_cst: the Dekker pair with go_idle (file comment); release
     * publishes t (and its next link) to the taker's exchange. */
    (void)job_intake_push(&p->intake, t, t, false, memory_order_seq_cst, NULL); /* never closed */
    atomic_fetch_add_explicit(&p->queued, 1, memory_order_seq_cst);
}

/* Takes the oldest job, or NULL. */
static weft_task_t *take_job(weft__pool_t *p)
{
    pthread_mutex_lock(&p->take_lock);
    if (p->ready_head == NULL) /* acquire: the pushers' tasks and links. */
        p->ready_head = job_intake_take(&p->intake, memory_order_acq_rel, &p->ready_tail);
    weft_task_t *t = p->ready_head;
    if (t != NULL) {
        p->ready_head = t->next;
        if (p->ready_head == NULL)
            p->ready_tail = NULL;
    }
    pthread_mutex_unlock(&p->take_lock);
    if (t != NULL)
        atomic_fetch_sub_explicit(&p->queued, 1, memory_order_relaxed);
    return t;
}

/* Once the runtime shuts down, queued jobs are no longer started: shutdown
 * cancels them (weft__pool_shutdown). Worker loops waiting for a thread are
 * still taken, so they can end. */
static bool jobs_startable(weft__pool_t *p)
{
    return atomic_load_explicit(&p->queued, memory_order_seq_cst) > 0 &&
           !atomic_load_explicit(&p->sched->shutdown, memory_order_acquire);
}

static bool has_queued(weft__pool_t *p)
{
    return jobs_startable(p) || atomic_load_explicit(&p->cores_pending, memory_order_seq_cst) > 0;
}

/* Drops every queued job without running it: its handle reports err
 * (0: WEFT_ECANCELED), which the task records (task.h, the cancel error). */
static void cancel_queued(weft__pool_t *p, int err)
{
    weft_task_t *t;
    while ((t = take_job(p)) != NULL) {
        weft__task_drop_queued_with_error(t, err);
        weft__clock_let_go(p->sched); /* after the join handle's wake */
    }
}

/* ---- Threads ------------------------------------------------------------------ */

static void *pool_main(void *arg);

/* Takes rec off the list of live threads. Under p->lock. */
static void unlink_thread(weft__pool_t *p, pool_thread_t *rec)
{
    weft__dlist_remove(&rec->link);
    p->nlive--;
}

/* Starts a thread; the caller already counted it in `state`. Returns
 * WEFT_ESHUTDOWN, starting nothing, when the pool was closed meanwhile.
 *
 * The counting CAS comes before the record is linked, and shutdown waits
 * for `nlive` (the records), not for the count: a spawner descheduled
 * between the two could link its record, and start its thread, after
 * shutdown found no record and returned; the thread would then outlive the
 * pool (and run on its freed memory, or on the next allocation at that
 * address). So the closed bit is read under `lock`, where the record is
 * linked: shutdown sets the bit and only then looks at `nlive` under the
 * same lock, so either it sees our record (and waits for the thread, which
 * sees the bit and exits) or we see the bit. */
static int start_thread(weft__pool_t *p, weft__worker_t *first_core)
{
    pool_thread_t *rec = weft__alloc(sizeof *rec);
    if (rec == NULL)
        return WEFT_ENOMEM;
    memset(rec, 0, sizeof *rec);
    rec->pool = p;
    rec->first_core = first_core;
    pthread_mutex_lock(&p->lock);
    if (atomic_load_explicit(&p->state, memory_order_relaxed) & P_CLOSED) {
        pthread_mutex_unlock(&p->lock);
        weft__free(rec, sizeof *rec);
        return WEFT_ESHUTDOWN;
    }
    weft__dlist_push_back(&p->live, &rec->link);
    p->nlive++;
    pthread_mutex_unlock(&p->lock);
    pthread_t tid;
    int rc = weft__thread_create(&tid, &p->attr, pool_main, rec);
    if (rc != 0) {
        pthread_mutex_lock(&p->lock);
        unlink_thread(p, rec);
        /* A shutdown that saw our record waits for nlive to drop. */
        pthread_cond_broadcast(&p->exit_cond);
        pthread_mutex_unlock(&p->lock);
        weft__free(rec, sizeof *rec);
    }
    return rc;
}

/* Makes sure some thread will look at the queue (file comment). for_core:
 * the work is a worker loop, which is not held to the cap. Returns 0, or
 * WEFT_EAGAIN when a thread was needed and could not be created; *seen is
 * the last state read. */
static int ensure_spare(weft__pool_t *p, bool for_core, uint64_t *seen)
{
    int rc = 0;
    uint64_t st = atomic_load_explicit(&p->state, memory_order_seq_cst);
    for (;;) {
        WEFT_CHAOS();
        if ((st & P_CLOSED) || p_searching(st) > 0)
            break;
        if (p_idle(st) > 0) {
            uint64_t next = st - P_IDLE_ONE + P_SEARCH_ONE;
            if (!atomic_compare_exchange_weak_explicit(&p->state, &st, next, memory_order_seq_cst,
                                                       memory_order_seq_cst))
                continue;
            pthread_mutex_lock(&p->lock);
            p->tokens++;
            pthread_cond_signal(&p->wake_cond);
            pthread_mutex_unlock(&p->lock);
            st = next;
            break;
        }
        if (rc != 0) /* creation failed once already: leave it to running threads */
            break;
        if (!for_core && p_threads(st) >= p->cap + p->cores_base)
            break; /* at the cap: the job waits for a thread to finish */
        uint64_t next = st + P_THREAD_ONE + P_SEARCH_ONE;
        if (!atomic_compare_exchange_weak_explicit(&p->state, &st, next, memory_order_seq_cst,
                                                   memory_order_seq_cst))
            continue;
        WEFT_CHAOS(); /* counted, not linked yet: the window a closing shutdown must not miss */
        rc = start_thread(p, NULL);
        if (rc == 0) {
            st = next;
            break;
        }
        /* Undo, then look again: a thread may have gone idle meanwhile, and
         * spawners that saw our phantom searcher left their jobs to it. */
        st = atomic_fetch_sub_explicit(&p->state, P_THREAD_ONE + P_SEARCH_ONE, memory_order_seq_cst) -
             (P_THREAD_ONE + P_SEARCH_ONE);
        if (rc == WEFT_ESHUTDOWN)
            rc = 0; /* closed after our CAS: as if we had seen the bit (st has it now) */
    }
    *seen = st;
    return rc;
}

/* Called by a thread with nothing to do. Returns true to look for work
 * again (as a searcher), false to exit (the thread is no longer counted). */
static bool go_idle(weft__pool_t *p)
{
    uint64_t st = atomic_load_explicit(&p->state, memory_order_relaxed);
    uint64_t next;
    do {
        next = (st & P_CLOSED) ? st - P_SEARCH_ONE - P_THREAD_ONE : st - P_SEARCH_ONE + P_IDLE_ONE;
        WEFT_CHAOS();
    } while (!atomic_compare_exchange_weak_explicit(&p->state, &st, next, memory_order_seq_cst,
                                                    memory_order_relaxed));
    if (st & P_CLOSED)
        return false;
    if (has_queued(p)) {
        /* A job came in while we were deciding to sleep: take ourselves
         * back, unless a spawner already claimed us (then its token comes). */
        st = atomic_load_explicit(&p->state, memory_order_seq_cst);
        while (p_idle(st) > 0) {
            if (atomic_compare_exchange_weak_explicit(&p->state, &st, st - P_IDLE_ONE + P_SEARCH_ONE,
                                                      memory_order_seq_cst, memory_order_seq_cst))
                return true;
        }
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    uint64_t ns = (uint64_t)deadline.tv_nsec + p->keep_alive_ns % 1000000000u;
    deadline.tv_sec += (time_t)(p->keep_alive_ns / 1000000000u + ns / 1000000000u);
    deadline.tv_nsec = (long)(ns % 1000000000u);
    bool timed_out = false;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (p->tokens > 0) {
            p->tokens--;
            pthread_mutex_unlock(&p->lock);
            return true; /* the claimer counted us as searching */
        }
        if (timed_out || (atomic_load_explicit(&p->state, memory_order_acquire) & P_CLOSED))
            break;
        timed_out = pthread_cond_timedwait(&p->wake_cond, &p->lock, &deadline) == ETIMEDOUT;
    }
    /* Kept alive long enough, or closed: leave, unless every idle thread is
     * claimed (idle reads 0), in which case one of the tokens is ours. */
    st = atomic_load_explicit(&p->state, memory_order_seq_cst);
    for (;;) {
        if (p_idle(st) == 0) {
            while (p->tokens == 0)
                pthread_cond_wait(&p->wake_cond, &p->lock);
            p->tokens--;
            pthread_mutex_unlock(&p->lock);
            return true;
        }
        if (atomic_compare_exchange_weak_explicit(&p->state, &st, st - P_IDLE_ONE - P_THREAD_ONE,
                                                  memory_order_seq_cst, memory_order_seq_cst)) {
            pthread_mutex_unlock(&p->lock);
            return false;
        }
    }
}

static void name_thread(weft__sched_t *s)
{
    char name[16];
    snprintf(name, sizeof name, "%.11s-blk", s->name);
    pthread_setname_np(pthread_self(), name);
}

/* Runs a worker loop. Returns true when the thread stays in the pool (the
 * loop was handed to another thread), false when it leaves, no longer
 * counted: the loop ended for shutdown, or the pool is at its cap. */
static bool run_core(weft__pool_t *p, weft__worker_t *w)
{
    bool handed_off = weft__worker_run_core(w);
    weft__tls_set_worker(NULL);
    weft__tls_set_runtime(p->sched);
    weft__tls.task = NULL;
    if (!handed_off) {
        atomic_fetch_sub_explicit(&p->state, P_THREAD_ONE, memory_order_seq_cst);
        return false;
    }
    /* This thread blocked in block_in_place and gave its worker away; it
     * stays as a blocking thread only while the pool is under its cap. */
    uint64_t st = atomic_load_explicit(&p->state, memory_order_relaxed);
    while (p_threads(st) > p->cap + p->cores_base) {
        if (atomic_compare_exchange_weak_explicit(&p->state, &st, st - P_THREAD_ONE, memory_order_seq_cst,
                                                  memory_order_relaxed))
            return false;
    }
    name_thread(p->sched);
    return true;
}

static weft__worker_t *take_core(weft__pool_t *p)
{
    if (atomic_load_explicit(&p->cores_pending, memory_order_acquire) == 0)
        return NULL;
    pthread_mutex_lock(&p->lock);
    weft__worker_t *w = p->cores;
    if (w != NULL) {
        p->cores = w->next_core;
        atomic_fetch_sub_explicit(&p->cores_pending, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&p->lock);
    return w;
}

static void thread_exit(weft__pool_t *p, pool_thread_t *me)
{
    pthread_mutex_lock(&p->lock);
    unlink_thread(p, me);
    pool_thread_t *prev = p->last_exited;
    p->last_exited = me;
    pthread_cond_broadcast(&p->exit_cond);
    pthread_mutex_unlock(&p->lock);
    if (prev != NULL) {
        pthread_join(prev->tid, NULL);
        weft__free(prev, sizeof *prev);
    }
}

static void *pool_main(void *arg)
{
    pool_thread_t *me = arg;
    weft__pool_t *p = me->pool;
    weft__sched_t *s = p->sched;
    me->tid = pthread_self();
    weft__tls_set_runtime(s);
    weft__tls.pool = p;
    name_thread(s);
    if (me->first_core != NULL) {
        if (!run_core(p, me->first_core))
            goto out;
        atomic_fetch_add_explicit(&p->state, P_SEARCH_ONE, memory_order_seq_cst);
    }
    for (;;) {
        weft__worker_t *core = take_core(p);
        weft_task_t *job = core || !jobs_startable(p) ? NULL : take_job(p);
        if (core == NULL && job == NULL) {
            if (!go_idle(p))
                break;
            continue;
        }
        uint64_t st = atomic_fetch_sub_explicit(&p->state, P_SEARCH_ONE, memory_order_seq_cst);
        WEFT_CHAOS();
        if (p_searching(st) == 1 && has_queued(p)) {
            uint64_t seen;
            (void)ensure_spare(p, atomic_load_explicit(&p->cores_pending, memory_order_relaxed) > 0, &seen);
        }
        if (core != NULL) {
            if (!run_core(p, core))
                break;
        } else {
            weft__tls.budget = -1;
            weft__task_run(job);
            /* After the run, which woke the join handle: a paused clock
             * (clock.c) sees the awaiting task queued before the hold goes. */
            weft__clock_let_go(s);
        }
        atomic_fetch_add_explicit(&p->state, P_SEARCH_ONE, memory_order_seq_cst);
    }
out:
    weft__tls_set_runtime(NULL);
    weft__tls.pool = NULL;
    thread_exit(p, me);
    return NULL;
}

/* ---- Pool lifecycle -------------------------------------------------------------- */

int weft__pool_new(weft__sched_t *s, weft__pool_t **out)
{
    const weft_builder_t *b = &s->cfg;
    unsigned cap = b->max_blocking_threads ? b->max_blocking_threads : 512;
    if (cap > P_MAX_THREADS || b->blocking_keep_alive_ms > UINT32_MAX)
        return WEFT_EINVAL;
    weft__pool_t *p = weft__alloc_aligned(sizeof *p);
    if (p == NULL)
        return WEFT_ENOMEM;
    memset(p, 0, sizeof *p);
    pthread_attr_init(&p->attr);
    if (b->stack_size != 0 && pthread_attr_setstacksize(&p->attr, b->stack_size) != 0) {
        pthread_attr_destroy(&p->attr);
        weft__free_aligned(p);
        return WEFT_EINVAL;
    }
    p->sched = s;
    p->cap = cap;
    p->cores_base = s->flavor == WEFT_RUNTIME_MULTI_THREAD ? s->nworkers : 0;
    weft__dlist_init(&p->live);
    p->keep_alive_ns = b->blocking_keep_alive_ms * 1000000u;
    atomic_init(&p->state, 0);
    atomic_init(&p->intake, NULL);
    atomic_init(&p->queued, 0);
    atomic_init(&p->cores_pending, 0);
    pthread_mutex_init(&p->take_lock, NULL);
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake_cond, &ca);
    pthread_cond_init(&p->exit_cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = p;
    return 0;
}

void weft__pool_free(weft__pool_t *p)
{
    if (p == NULL)
        return;
    pthread_attr_destroy(&p->attr);
    pthread_mutex_destroy(&p->take_lock);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake_cond);
    pthread_cond_destroy(&p->exit_cond);
    weft__free_aligned(p);
}

int weft__pool_start_core(weft__pool_t *p, weft__worker_t *w)
{
    atomic_fetch_add_explicit(&p->state, P_THREAD_ONE, memory_order_seq_cst);
    pthread_mutex_lock(&p->lock);
    p->sched->loops_running++;
    pthread_mutex_unlock(&p->lock);
    int rc = start_thread(p, w);
    if (rc != 0) {
        atomic_fetch_sub_explicit(&p->state, P_THREAD_ONE, memory_order_seq_cst);
        pthread_mutex_lock(&p->lock);
        p->sched->loops_running--;
        pthread_mutex_unlock(&p->lock);
    }
    return rc;
}

int weft__pool_hand_off_core(weft__pool_t *p, weft__worker_t *w)
{
    pthread_mutex_lock(&p->lock);
    w->next_core = p->cores;
    p->cores = w;
    atomic_fetch_add_explicit(&p->cores_pending, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&p->lock);
    uint64_t seen;
    if (ensure_spare(p, true, &seen) == 0)
        return 0;
    /* No thread: take the core back unless a thread already has it. */
    pthread_mutex_lock(&p->lock);
    bool found = false;
    for (weft__worker_t **pp = &p->cores; *pp != NULL; pp = &(*pp)->next_core) {
        if (*pp == w) {
            *pp = w->next_core;
            atomic_fetch_sub_explicit(&p->cores_pending, 1, memory_order_relaxed);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return found ? WEFT_EAGAIN : 0;
}

void weft__pool_loop_ended(weft__pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->sched->loops_running--;
    pthread_cond_broadcast(&p->exit_cond);
    pthread_mutex_unlock(&p->lock);
}

static bool wait_until(weft__pool_t *p, uint64_t deadline_ns)
{
    if (deadline_ns == UINT64_MAX) {
        pthread_cond_wait(&p->exit_cond, &p->lock);
        return true;
    }
    uint64_t now = weft__now_ns();
    if (now >= deadline_ns)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (deadline_ns - now) % 1000000000u;
    ts.tv_sec += (time_t)((deadline_ns - now) / 1000000000u + ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&p->exit_cond, &p->lock, &ts);
    return true;
}

bool weft__pool_wait_loops(weft__pool_t *p, uint64_t deadline_ns)
{
    pthread_mutex_lock(&p->lock);
    bool ok = true;
    while (p->sched->loops_running > 0 && (ok = wait_until(p, deadline_ns)))
        ;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

bool weft__pool_shutdown(weft__pool_t *p, uint64_t deadline_ns)
{
    if (!p->closing) {
        /* seq_cst: a spawner that pushes after our drain reads `state`
         * after its push and so sees the bit, and drains its job itself. */
        atomic_fetch_or_explicit(&p->state, P_CLOSED, memory_order_seq_cst);
        cancel_queued(p, 0);
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake_cond);
        pthread_mutex_unlock(&p->lock);
        p->closing = true;
    }
    pthread_mutex_lock(&p->lock);
    bool ok = true;
    while (p->nlive > 0 && (ok = wait_until(p, deadline_ns)))
        ;
    pool_thread_t *last = NULL;
    if (ok) {
        last = p->last_exited;
        p->last_exited = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    if (last != NULL) {
        pthread_join(last->tid, NULL);
        weft__free(last, sizeof *last);
    }
    return ok;
}

/* ---- Public calls ------------------------------------------------------------------ */

/* Jobs that would have to wait for a busy thread: those queued beyond the
 * threads that are awake, asleep or still creatable under the cap. A
 * snapshot: spawners racing each other can each pass the same bound. */
static size_t backlog(weft__pool_t *p)
{
    long q = atomic_load_explicit(&p->queued, memory_order_acquire);
    uint64_t st = atomic_load_explicit(&p->state, memory_order_acquire);
    long limit = (long)p->cap + (long)p->cores_base;
    long room = limit > (long)p_threads(st) ? limit - (long)p_threads(st) : 0;
    long waiting = q - (long)p_searching(st) - (long)p_idle(st) - room;
    return waiting > 0 ? (size_t)waiting : 0;
}

int weft_spawn_blocking_at(weft_handle_t *h, weft_blocking_fn_t fn, void *arg, weft_join_handle_t *jh,
                           const weft_blocking_opts_t *opts, const char *site)
{
    weft__sched_t *s = h ? (weft__sched_t *)h : weft__tls.sched;
    if (s == NULL)
        weft_panic(site, "weft_spawn_blocking called with no runtime current on this thread: call it from a "
                   "task, block_on or a blocking job, or pass a runtime handle");
    if (fn == NULL)
        weft_panic(site, "weft_spawn_blocking: fn is NULL");
    weft__pool_t *p = s->pool;
    if (opts != NULL && opts->max_queued != 0 && backlog(p) >= opts->max_queued)
        return WEFT_EAGAIN;
    blocking_fut_t bf = { { &blocking_vtable }, fn, arg, opts ? opts->cancel : NULL, false };
    weft_task_t *t;
    int rc = weft__task_spawn_new(s, &bf.base, jh, opts ? opts->name : NULL, site, &t);
    if (t == NULL)
        return rc; /* WEFT_ENOMEM, or 0: cancelled, shutdown began */
    weft__clock_hold(s); /* a paused clock does not jump over the job (clock.c) */
    push_job(p, t);
    uint64_t st;
    rc = ensure_spare(p, false, &st);
    if (st & P_CLOSED)
        cancel_queued(p, 0); /* shutdown drained before our push landed */
    else if (rc != 0 && p_threads(st) <= p->cores_base)
        cancel_queued(p, rc); /* no thread exists, none could be made */
    return 0;
}

void weft_blocking_stats(weft_handle_t *h, weft_blocking_stats_t *out)
{
    WEFT__REQUIRE("weft_blocking_stats", out);
    weft__sched_t *s = h ? (weft__sched_t *)h : weft__tls.sched;
    if (s == NULL)
        weft_panic(WEFT_SITE, "weft_blocking_stats: no runtime current on this thread and no handle given");
    weft__pool_t *p = s->pool;
    pthread_mutex_lock(&p->lock);
    unsigned loops = s->loops_running; /* threads that run worker loops (at most) */
    pthread_mutex_unlock(&p->lock);
    uint64_t st = atomic_load_explicit(&p->state, memory_order_acquire);
    unsigned threads = p_threads(st);
    out->threads = threads > loops ? threads - loops : 0;
    out->idle = p_idle(st);
    long q = atomic_load_explicit(&p->queued, memory_order_relaxed);
    out->queued = q > 0 ? (size_t)q : 0;
}
