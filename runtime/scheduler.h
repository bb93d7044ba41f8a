/* runtime/scheduler.h - the scheduler's private structures.
 *
 * spawn (weft_spawn_at) -> weft__sched_spawned (sched.c) -> a worker's LIFO
 * slot or local queue (queue.c), or the inject queue (inject.c) -> worker
 * loop (worker.c) -> weft__task_run (task.c) -> poll -> wake (task.c) ->
 * weft__sched_schedule -> queued again. Idle workers park through idle.c.
 * A task that waits (returned WEFT_PENDING) is on the owned list (owned.c),
 * so shutdown can find and drop it; one that has not waited yet is always
 * in a queue, where shutdown's draining finds it.
 */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include "context.h"
#include "internal.h"
#include "task.h"
#include "../reactor/driver.h"

/* ---- Local run queue (queue.c) ------------------------------------------ */
/* 256 slots: big enough that a burst of spawns rarely spills to the inject
 * queue, small enough (2 KiB) to stay in L1/L2 per worker. Power of two. */
#define WEFT_QUEUE_CAP 256u
#define WEFT_QUEUE_MASK (WEFT_QUEUE_CAP - 1)

typedef struct weft__queue {
    /* head = (steal << 32) | real. Stealers and the owner CAS it; it sits on
     * its own cache line so the owner's tail stores do not bounce it. */
    _Alignas(WEFT_CACHELINE) _Atomic uint64_t head;
    /* Written only by the owner; read by stealers. Own line, same reason. */
    _Alignas(WEFT_CACHELINE) _Atomic uint32_t tail;
    _Alignas(WEFT_CACHELINE) _Atomic(weft_task_t *) buf[WEFT_QUEUE_CAP];
} weft__queue_t;

struct weft__inject;
void weft__queue_init(weft__queue_t *q);
/* Owner only. Pushes t at the back; when full, moves half of the queue and
 * t to the inject queue in one batch. */
void weft__queue_push_back_spmc(weft__queue_t *q, weft_task_t *t, struct weft__inject *overflow);
/* Owner only. Pops from the front, or NULL. */
weft_task_t *weft__queue_pop_spmc(weft__queue_t *q);
/* Any thread other than src's owner, which must own dst (and dst must be
 * empty). Moves half of src's tasks into dst and returns one of them to run
 * at once, or NULL. */
weft_task_t *weft__queue_steal_into(weft__queue_t *src, weft__queue_t *dst);
/* Number of tasks, possibly stale: a hint for parking decisions. */
uint32_t weft__queue_len(const weft__queue_t *q);

/* ---- Inject queue (inject.c) -------------------------------------------- */
/* A block of task pointers: how a local queue's overflow travels (half a
 * queue and the task that did not fit), so consumers read a batch from a
 * few contiguous cache lines instead of chasing links through cold tasks. */
#define WEFT__INJECT_BLOCK_CAP (WEFT_QUEUE_CAP / 2 + 1)
typedef struct weft__inject_block {
    struct weft__inject_block *next;
    uint32_t n, taken; /* tasks[taken..n) are still queued */
    weft_task_t *tasks[WEFT__INJECT_BLOCK_CAP];
} weft__inject_block_t;

typedef struct weft__inject {
    /* Producers: lock-free intake stacks (list.h; closed once closed), one
     * of pushed chains (linked through the tasks), one of blocks. A
     * producer never waits for anyone: a spawner or a waker descheduled
     * mid-push holds up nobody. */
    _Alignas(WEFT_CACHELINE) _Atomic(weft_task_t *) intake;
    _Atomic(weft__inject_block_t *) block_intake;
    /* One emptied block kept for the next overflow (a pop leaves it, a
     * push takes it), so a steady overflow allocates nothing. */
    _Atomic(weft__inject_block_t *) spare;
    /* Tasks pushed and not yet popped. A push counts before it links, a
     * pop uncounts what it took, so it is never short, and briefly over
     * by a push under way: good enough to skip an empty queue and size a
     * fair share. */
    _Atomic size_t len;
    /* Consumers: the intakes, reversed into FIFO order, under the lock;
     * pops alternate which of the two they start with. */
    _Alignas(WEFT_CACHELINE) pthread_mutex_t lock;
    weft_task_t *head, *tail;
    weft__inject_block_t *blocks;
    bool blocks_first;
} weft__inject_t;

void weft__inject_init(weft__inject_t *q);
void weft__inject_destroy(weft__inject_t *q);
/* Pushes a chain first..last of n tasks. Returns false when closed (the
 * caller keeps the references). Context: any thread. */
bool weft__inject_push_batch(weft__inject_t *q, weft_task_t *first, weft_task_t *last, size_t n);
/* Pushes tasks[0..n), n <= WEFT__INJECT_BLOCK_CAP, as one block (or, when
 * no block can be had, as a chain). Returns false when closed (the caller
 * keeps the references). Context: any thread. */
bool weft__inject_push_array(weft__inject_t *q, weft_task_t *const *tasks, size_t n);
/* Pops up to max tasks into out[]; returns the count. */
size_t weft__inject_pop(weft__inject_t *q, weft_task_t **out, size_t max);
/* As weft__inject_pop, but 0 at once when another consumer holds the lock
 * (it may have been descheduled inside: a worker goes on with its other
 * work, timers included, and comes back, instead of sleeping behind it). */
size_t weft__inject_try_pop(weft__inject_t *q, weft_task_t **out, size_t max);
/* Closes; returns the tasks left inside as a chain (the caller drops the
 * references). */
weft_task_t *weft__inject_close(weft__inject_t *q);
static inline bool weft__inject_is_empty(weft__inject_t *q)
{
    /* A count of zero means nothing is linked; a push under way notifies
     * once it has linked (inject.c). */
    return atomic_load_explicit(&q->len, memory_order_acquire) == 0;
}

/* ---- Owned tasks (owned.c) --------------------------------------------- */
typedef struct weft__owned_shard {
    _Alignas(WEFT_CACHELINE) weft__spin_t lock;
    bool closed;
    weft__dlist_t tasks; /* weft_task_t.owned */
} weft__owned_shard_t;

typedef struct weft__owned {
    weft__owned_shard_t *shards;
    unsigned mask;
} weft__owned_t;

int weft__owned_init(weft__owned_t *o, unsigned nworkers);
void weft__owned_free(weft__owned_t *o);
/* Adds t; returns false if the list is closed (shutdown began). */
bool weft__owned_insert(weft__owned_t *o, weft_task_t *t);
void weft__owned_remove(weft__owned_t *o, weft_task_t *t);
/* Closes every shard: later inserts fail. */
void weft__owned_close(weft__owned_t *o);
/* Pops any task (its list reference moves to the caller), or NULL. */
weft_task_t *weft__owned_pop(weft__owned_t *o);
/* Whether o lists no task (a local set with nothing left to run). */
bool weft__owned_is_empty(weft__owned_t *o);

/* ---- Idle workers (idle.c) ------------------------------------------------ */
typedef struct weft__idle {
    /* (unparked << 16) | searching: read on every notify, so its own line. */
    _Alignas(WEFT_CACHELINE) _Atomic uint32_t state;
    _Alignas(WEFT_CACHELINE) pthread_mutex_t lock;
    unsigned *sleepers; /* worker indices, under lock */
    unsigned nsleepers;
    unsigned nworkers;
} weft__idle_t;

/* ---- Blocking detector (watchdog.c) --------------------------------------- */
/* What a worker publishes about its current poll for the watchdog. The
 * worker writes it with plain-cost stores (no fence, no syscall); the
 * watchdog's side of the handshake uses membarrier (watchdog.c). */
typedef struct weft__watch {
    _Alignas(WEFT_CACHELINE) _Atomic uint64_t seq; /* odd while a task is being polled */
    _Atomic(weft_task_t *) task;                   /* the task of poll `seq` */
    _Atomic uint64_t hazard;                       /* seq the watchdog is reading; 0 none */
    /* The thread running the worker's loop: its kernel tid (0: unknown)
     * and CPU-time clock, stored when a thread becomes the worker
     * (weft__tls_set_worker), before its first poll there. */
    _Atomic int tid;
    _Atomic clockid_t cpu_clock;
} weft__watch_t;

struct weft__worker;
/* Records the calling thread in w's watch slot (watchdog.c). */
void weft__watch_bind_thread(struct weft__worker *w);

/* Where a long poll's time went, over the span the watchdog timed. */
typedef struct weft__poll_split {
    uint64_t ran_ns;     /* on a CPU */
    uint64_t waited_ns;  /* runnable, waiting for a CPU */
    uint64_t blocked_ns; /* the rest: asleep (a syscall, a lock, a page fault) */
} weft__poll_split_t;
/* The detector's rule (watchdog.c): splits span_ns from the thread's CPU
 * time and run-queue wait measured over it, clamped so that the three
 * parts add up to span_ns, and says whether the poll is an offence.
 * `runnable`: the thread was running or waiting for a CPU when measured. */
bool weft__watch_judge(uint64_t threshold_ns, uint64_t span_ns, uint64_t ran_ns, uint64_t waited_ns, bool runnable,
                       weft__poll_split_t *split);
#ifdef WEFT_TEST_HOOKS
/* Tests: the watchdog acts as if the kernel kept no scheduler statistics.
 * Set before the runtime is created. */
extern bool weft__watch_test_no_schedstat;
#endif

/* ---- Workers and the scheduler -------------------------------------------- */
typedef struct weft__worker {
    weft__queue_t queue;
    struct weft__sched *sched;
    unsigned index;
    weft_task_t *lifo;   /* owner only: the task woken last runs next */
    unsigned lifo_polls; /* consecutive LIFO polls, capped */
    uint32_t tick; /* countdown to the next inject-queue check */
    uint32_t rng;
    bool searching;
    bool sleeping; /* in idle.sleepers; under idle.lock */
    weft__parker_t parker;
    struct weft__worker *next_core; /* blocking.c: waiting for a thread (under pool lock) */
    weft__watch_t watch;
} weft__worker_t;

typedef struct weft__sched {
    weft_flavor_t flavor;
    unsigned nworkers; /* current-thread: 1 worker, driven by block_on */
    weft__worker_t *workers;
    weft__inject_t inject;
    /* Tasks the drivers woke in batches (weft__wake_batch: fired timers,
     * socket events taken off a worker): taken before `inject`. */
    weft__inject_t woken;
    weft__idle_t idle;
    weft__owned_t owned;
    _Atomic bool shutdown;
    unsigned gqi;
    /* Multi-thread: block_on threads run inject-queue tasks while they
     * wait (builder.block_on_runs_tasks, and no thread hooks). */
    bool block_on_runs_tasks;
    weft_builder_t cfg;
    char name[16];
    /* current-thread: the block_on thread owns worker 0 while this is set. */
    _Atomic bool driver_busy;
    /* The I/O and time drivers (reactor/driver.h), NULL when both are
     * disabled. Stopped at shutdown, freed with the runtime's memory. */
    weft__driver_t *driver;
    /* The blocking pool (blocking.c): runs spawn_blocking jobs, and (multi-
     * thread) the threads that run the worker loops. */
    struct weft__pool *pool;
    /* Worker loops not yet ended by shutdown (under the pool's lock). */
    unsigned loops_running;
    /* Blocking detector (watchdog.c): NULL when off. */
    struct weft__watchdog *watchdog;
    /* Testing (docs/testing.md; current-thread runtimes only). cfg.clock
     * WEFT_CLOCK_PAUSED: what the clock must not jump over, counted
     * (clock.c): blocking jobs spawned and not yet finished or dropped. */
    _Atomic long clock_holds;
    /* A seeded task order (seeded.c): the seed, and the PRNG's state,
     * which only the thread in block_on touches. */
    bool seeded;
    uint64_t seed;
    uint64_t order_rng;
} weft__sched_t;

int weft__idle_init(weft__idle_t *idle, unsigned nworkers);
void weft__idle_free(weft__idle_t *idle);
/* Wakes one parked worker if none is searching. Context: any thread, after
 * publishing work. */
void weft__idle_notify_one(weft__sched_t *s);
/* The same for a task the calling worker put in its own queue: a hint for
 * parallelism, without the Dekker fence (idle.c says why). */
void weft__idle_notify_local(weft__sched_t *s);
void weft__idle_notify_all(weft__sched_t *s);
/* The worker may search if fewer than half the workers do. */
bool weft__idle_try_search(weft__sched_t *s, weft__worker_t *w);
/* Ends searching; returns true if it was the last searcher. */
bool weft__idle_end_search(weft__sched_t *s, weft__worker_t *w);
/* w found tasks of its own making (socket events or timers it took on its
 * way to parking: in its own LIFO slot and queue, timers beyond its first
 * batch in the `woken` queue): if it was searching, it stops, and wakes a
 * sibling only when other work waits (weft__sched_has_work) or, with
 * timers_waiting, when timers are pending while w runs what it woke and
 * nobody sleeps in the driver to fire them (as park_worker does when it
 * leaves the driver). A searcher that finds stolen or remote work hands
 * the search on instead (worker.c), since more may follow; handing it on
 * here woke a sibling each time a lone task's socket turned ready again,
 * to find nothing and sleep. */
void weft__idle_found_own_work(weft__sched_t *s, weft__worker_t *w, bool timers_waiting);
/* Registers w as parked (it stops searching, if it was). The caller then
 * re-checks every queue (worker.c:park_worker), searcher or not. */
void weft__idle_park(weft__sched_t *s, weft__worker_t *w);
/* Takes w off the sleeper list if it is still there (it found work after
 * registering); returns true if it removed itself, false if a notifier
 * already did (and unparked it). */
bool weft__idle_unpark_self(weft__sched_t *s, weft__worker_t *w);
/* Whether w is still on the sleeper list (a wake-up without being taken off
 * it is a stale permit). */
bool weft__idle_is_sleeping(weft__sched_t *s, weft__worker_t *w);

extern const weft_waker_vtable_t weft__root_waker_vtable;

/* Makes s the runtime current on this thread (NULL: none), with its
 * drivers, for the resources polled here (context.h). */
static inline void weft__tls_set_runtime(weft__sched_t *s)
{
    weft__tls.sched = s;
    weft__tls.driver = s != NULL ? s->driver : NULL;
}

/* Makes this thread worker w of the current runtime (NULL: no worker),
 * inside w's loop (weft__tls.serving). */
static inline void weft__tls_set_worker(weft__worker_t *w)
{
    weft__tls.worker = w;
    weft__tls.worker_index = w != NULL ? (int)w->index : -1;
    weft__tls.serving = w;
    if (w != NULL && w->sched->watchdog != NULL)
        weft__watch_bind_thread(w);
}

/* Unparks worker w, wherever it sleeps: on its futex, or in the I/O
 * driver's wait (the driver is then interrupted through its interface). */
static inline void weft__worker_unpark(weft__sched_t *s, weft__worker_t *w)
{
    if (weft__unpark(&w->parker) == WEFT__UNPARK_ELSEWHERE)
        weft__driver_unpark(s->driver);
}

/* sched.c */
void weft__sched_schedule(weft_task_t *t, bool is_yield);
void weft__sched_spawned(weft__sched_t *s, weft_task_t *t);
void weft__sched_push_local_back(weft__sched_t *s, weft__worker_t *w, weft_task_t *t);
bool weft__sched_has_work(weft__sched_t *s);
/* The common part of every spawn: allocates the task holding fut and fills
 * jh (may be NULL). Returns WEFT_ENOMEM (nothing spawned), or 0 with *out
 * the task to queue, or 0 with *out NULL when shutdown began (the task was
 * cancelled at once: its handle reports WEFT_ECANCELED). */
int weft__task_spawn_new(weft__sched_t *s, weft_future_t *fut, weft_join_handle_t *jh, const char *name,
                         const char *site, weft_task_t **out);
/* Aborts (at site, naming the call `what`) unless fut is a future that
 * can be copied into a task. */
void weft__spawn_check_future(const char *what, weft_future_t *fut, const char *site);
/* worker.c */
/* Runs w's worker loop on the calling thread (a pool thread) until shutdown
 * (returns false) or until the loop was handed to another thread by
 * weft_block_in_place (returns true). */
bool weft__worker_run_core(weft__worker_t *w);
void weft__worker_run_task(weft__worker_t *w, weft_task_t *t);
/* Runs up to max queued tasks on the current-thread driver; returns count. */
unsigned weft__ct_run_some(weft__sched_t *s, unsigned max);
/* Takes a batch of remote work (the `woken` queue first, then the inject
 * queue) into w's local queue, and returns one of its tasks, or NULL. */
weft_task_t *weft__worker_pop_remote(weft__sched_t *s, weft__worker_t *w);

/* ---- Testing: the virtual clock (clock.c) and the seeded order (seeded.c) ----
 * docs/testing.md. Both are current-thread only: the one thread in
 * block_on is then the only one that polls tasks, so "idle" and "the next
 * task" are its own decisions. */
/* A blocking job is in flight from hold to let_go: a paused clock does not
 * jump meanwhile. No-ops on other clocks. Context: any thread. */
void weft__clock_hold(weft__sched_t *s);
void weft__clock_let_go(weft__sched_t *s);
/* The current-thread block_on thread found nothing to run and its root
 * (whose waker sets *root_woken) not woken: parks, or (WEFT_CLOCK_PAUSED) moves the clock to the next
 * timer when nothing else can happen first, and returns. */
void weft__ct_idle(weft__sched_t *s, const _Atomic bool *root_woken);
/* Reads the builder's task order: sets s->seeded and the seed (printing
 * it when asked). Returns 0, or WEFT_EINVAL (a WEFT_SEED that is not a
 * number). */
int weft__seeded_init(weft__sched_t *s, const weft_builder_t *b);
/* weft__ct_run_some for a seeded runtime: each task is picked by the PRNG
 * among all the runnable ones (up to a local queue's worth). */
unsigned weft__seeded_run_some(weft__sched_t *s, unsigned max);

/* ---- Local sets (localset.c) ---------------------------------------------- */
/* A local set's tasks run only on the set's owner thread, inside its run
 * future's poll. They share everything above (allocation, state word, join
 * handles, abort) except where they go: a task with WEFT_T_LOCAL names its
 * set in t->local, and weft__sched_schedule hands it to the set. */
/* Queues a woken local task in its set: its own queue when this thread is
 * running the set, else the set's remote queue, then wakes the set's run
 * future. The caller holds the task's queue reference. Context: any thread. */
void weft__local_schedule(weft_task_t *t);
/* The owned list of a local set (its waiting tasks), for task.c. */
weft__owned_t *weft__local_owned(struct weft_local_set_s *set);
/* Releases a task allocation's reference to its set (task.c, at the free). */
void weft__local_release(struct weft_local_set_s *set);

/* ---- Blocking pool (blocking.c) -------------------------------------------- */
typedef struct weft__pool weft__pool_t;
int weft__pool_new(weft__sched_t *s, struct weft__pool **out);
/* Starts a thread that runs worker w's loop first. */
int weft__pool_start_core(struct weft__pool *p, weft__worker_t *w);
/* Hands worker w's loop to another pool thread (block_in_place). Returns 0,
 * or WEFT_EAGAIN when no thread could be had (w is still the caller's). */
int weft__pool_hand_off_core(struct weft__pool *p, weft__worker_t *w);
/* A worker loop ended for shutdown. */
void weft__pool_loop_ended(struct weft__pool *p);
/* Waits until every worker loop has ended, up to deadline_ns (UINT64_MAX:
 * forever). Returns false on timeout. */
bool weft__pool_wait_loops(struct weft__pool *p, uint64_t deadline_ns);
/* Closes the pool: queued jobs are cancelled, idle threads exit, and the
 * call waits for running jobs up to deadline_ns. Returns false on timeout
 * (call again later). */
bool weft__pool_shutdown(struct weft__pool *p, uint64_t deadline_ns);
void weft__pool_free(struct weft__pool *p);

/* ---- Watchdog (watchdog.c) ---------------------------------------------- */
int weft__watchdog_start(weft__sched_t *s);
void weft__watchdog_stop(weft__sched_t *s);

static inline void weft__watch_begin(weft__worker_t *w, weft_task_t *t)
{
    if (w->sched->watchdog == NULL)
        return;
    uint64_t seq = atomic_load_explicit(&w->watch.seq, memory_order_relaxed) + 1;
    atomic_store_explicit(&w->watch.task, t, memory_order_relaxed);
    /* release: the watchdog that reads this odd seq (acquire) sees task. */
    atomic_store_explicit(&w->watch.seq, seq, memory_order_release);
}

void weft__watch_wait_hazard(weft__worker_t *w, uint64_t seq);

static inline void weft__watch_end(weft__worker_t *w)
{
    if (w->sched->watchdog == NULL)
        return;
    uint64_t seq = atomic_load_explicit(&w->watch.seq, memory_order_relaxed);
    if (!(seq & 1))
        return;
    atomic_store_explicit(&w->watch.seq, seq + 1, memory_order_relaxed);
    /* No CPU fence here: the watchdog issues membarrier() between its hazard
     * store and its seq re-check, which orders our store before this load
     * or makes it see the hazard (asymmetric Dekker; watchdog.c). */
    atomic_signal_fence(memory_order_seq_cst);
    if (WEFT_UNLIKELY(atomic_load_explicit(&w->watch.hazard, memory_order_acquire) == seq))
        weft__watch_wait_hazard(w, seq);
}

#endif
