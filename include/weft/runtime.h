/* weft/runtime.h - runtimes, tasks and join handles.
 *
 * A runtime owns worker threads (multi-thread flavour) or borrows the thread
 * that calls weft_runtime_block_on (current-thread flavour). Tasks are
 * spawned futures: one allocation holds the task header, the future and its
 * output. A join handle is a future that yields the task's output.
 */
#ifndef WEFT_RUNTIME_H
#define WEFT_RUNTIME_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_runtime_s weft_runtime_t;
/* A handle to a runtime's scheduler, for spawning from any thread. Valid
 * until the runtime is freed. */
typedef struct weft_handle_s weft_handle_t;
typedef struct weft_task_s weft_task_t;

typedef enum weft_flavor_e {
    WEFT_RUNTIME_MULTI_THREAD = 0, /* worker pool with work stealing */
    WEFT_RUNTIME_CURRENT_THREAD    /* everything on the block_on thread */
} weft_flavor_t;

struct weft_blocking_report_s;

/* The clock a runtime's timers run on (weft_builder_t.clock). The two
 * virtual clocks are for tests: they start at the real time the runtime is
 * created and stand still until moved, so a test of a 30-second timeout
 * runs in milliseconds and gives the same result every time. They need
 * enable_time (weft_runtime_new gives WEFT_EINVAL otherwise). See
 * docs/testing.md. */
typedef enum weft_clock_e {
    WEFT_CLOCK_REAL = 0, /* CLOCK_MONOTONIC (the default) */
    /* Virtual: moves by weft_time_advance, and by itself to the next
     * timer's deadline whenever the runtime has nothing else to do (no task
     * runnable, no blocking job in flight, no socket event waiting).
     * Current-thread runtimes only. */
    WEFT_CLOCK_PAUSED,
    /* Virtual: moves only by weft_time_advance. Both flavours. */
    WEFT_CLOCK_MANUAL
} weft_clock_t;

/* Which runnable task a current-thread runtime polls next
 * (weft_builder_t.task_order). The seeded orders are for tests: they shake
 * out ordering bugs in the user's code, and a seed replays one. */
typedef enum weft_task_order_e {
    WEFT_ORDER_DEFAULT = 0, /* the LIFO slot, then the queues in order (docs/scheduler.md) */
    /* A pseudo-random pick among the runnable tasks, from `seed`: the same
     * seed gives the same order for the same program and inputs. */
    WEFT_ORDER_SEEDED,
    /* As SEEDED, with the seed taken from the environment variable WEFT_SEED
     * when it is set (decimal or 0x-hex), otherwise a fresh random one;
     * weft_runtime_seed tells which, print_seed prints it. */
    WEFT_ORDER_RANDOM
} weft_task_order_t;

/* The builder can grow without breaking programs built against an older
 * header: weft_builder_init records the size of the struct the caller was
 * compiled with (size_), and weft_runtime_new reads only that much of it,
 * taking the defaults for fields added since. New fields are only ever
 * appended. Always fill a builder with weft_builder_init first (a builder
 * that was not gives WEFT_EINVAL). */
typedef struct weft_builder_s {
    uint32_t size_;            /* private: set by weft_builder_init */
    weft_flavor_t flavor;
    unsigned workers;          /* multi-thread: 0 = number of CPUs; max 1024 (checked for both flavours) */
    const char *thread_name;   /* worker name prefix (<= 11 chars kept), default "weft-wrk" */
    size_t stack_size;         /* 0 = the system default */
    /* Multi-thread: run on a thread when it starts / stops running a
     * worker loop (at start and shutdown, and around a block_in_place
     * hand-over, where the worker moves to another thread). */
    void (*on_thread_start)(void *arg);
    void (*on_thread_stop)(void *arg);
    void *hook_arg;
    /* Scheduling ticks between inject-queue checks (and, current-thread,
     * the most tasks run between two polls of the block_on future); 0 = 61. */
    unsigned global_queue_interval;
    /* Timers (default true): weft_sleep and everything built on it abort
     * with a message when polled on a runtime without them. */
    bool enable_time;
    /* Blocking pool (spawn_blocking, block_in_place): at most this many
     * pool threads besides the workers (default 512; 0 = the default; max
     * 32768; a block_in_place caller may exceed it while it blocks), and
     * an idle one exits after blocking_keep_alive_ms (default 10000; 0 = as
     * soon as it finds nothing to do; max 2^32-1). */
    unsigned max_blocking_threads;
    uint64_t blocking_keep_alive_ms;
    /* Blocking detector: a watchdog thread reports a task whose single poll
     * has run longer than blocking_threshold_ms (default 10; 0 = the
     * default) on a worker, once per offence, through on_blocking (NULL:
     * one line on stderr). Default on; false turns the watchdog off. */
    bool detect_blocking;
    uint32_t blocking_threshold_ms;
    void (*on_blocking)(const struct weft_blocking_report_s *report, void *arg);
    void *on_blocking_arg;
    /* Sockets (default true): TCP, UDP and Unix sockets give WEFT_ENOSYS
     * on a runtime without them. With neither I/O nor time the runtime has
     * no driver thread at all, and signals give WEFT_ENOSYS too. */
    bool enable_io;
    /* Testing (docs/testing.md): the clock of the runtime's timers (default
     * WEFT_CLOCK_REAL; the virtual ones need enable_time, and
     * WEFT_CLOCK_PAUSED a current-thread runtime), the task order (default
     * WEFT_ORDER_DEFAULT; current-thread only), its seed
     * (WEFT_ORDER_SEEDED), and print_seed: print the seed in use on stderr
     * when the runtime is created. */
    weft_clock_t clock;
    weft_task_order_t task_order;
    uint64_t seed;
    bool print_seed;
    /* Multi-thread (default true): a thread in weft_runtime_block_on whose
     * future is pending runs tasks waiting in the runtime's inject queue
     * (spawns and wakes from outside the workers) before it sleeps, so a
     * task spawned from outside and awaited there runs at once, with no
     * hand-off to a worker and back. Such a task then runs on that thread:
     * neither the thread hooks nor the blocking detector see it there.
     * Ignored (off) when on_thread_start or on_thread_stop is set; false:
     * tasks run on the workers only. */
    bool block_on_runs_tasks;
} weft_builder_t;

/* What the blocking detector saw. The strings are valid during the
 * callback only. weft fills the struct and passes a pointer: fields are
 * only ever appended. */
typedef struct weft_blocking_report_s {
    unsigned worker;          /* index of the worker stuck in the poll */
    const char *task_name;    /* NULL when the task has no name */
    const char *task_site;    /* where it was spawned (file:line) */
    uint64_t running_ms;      /* the poll has run at least this long */
    uint64_t threshold_ms;
    /* Where the worker thread's time went over those running_ms (the
     * three add up to them, give or take rounding); cpu_known false, and
     * the three 0, when the kernel keeps no per-thread scheduler
     * statistics (docs/blocking.md). */
    bool cpu_known;
    uint64_t ran_ms;          /* on a CPU */
    uint64_t waited_ms;       /* runnable, waiting for a CPU */
    uint64_t blocked_ms;      /* asleep: a syscall, a lock, a page fault */
} weft_blocking_report_t;

/* Fills *b with the defaults of `flavor` (a macro: it records sizeof *b,
 * see weft_builder_t). Context: any thread. */
#define weft_builder_init(b, flavor) weft_builder_init_sized((b), (flavor), sizeof *(b))
WEFT_API void weft_builder_init_sized(weft_builder_t *b, weft_flavor_t flavor, size_t size);

/* Creates and starts a runtime (worker threads start now). b may be NULL:
 * a multi-thread runtime with one worker per CPU.
 * Returns 0 and *out, or WEFT_ENOMEM, WEFT_EINVAL (bad builder field),
 * WEFT_EAGAIN (a thread could not be created). On error nothing is left
 * running and *out is untouched.
 * Context: any thread that is not inside a runtime (aborts otherwise). */
WEFT_API WEFT_NODISCARD int weft_runtime_new(const weft_builder_t *b, weft_runtime_t **out);

/* Runs `fut` to completion on the calling thread, driving the runtime's tasks
 * too when the flavour is current-thread. Takes ownership of fut (drops it
 * when done); the output goes to out (may be NULL).
 * Returns 0, WEFT_EBUSY (another thread is in block_on of this
 * current-thread runtime; fut is then not polled, still dropped),
 * WEFT_ENOMEM (fut dropped unpolled), or WEFT_ESHUTDOWN (the runtime is
 * shutting down: fut is dropped, unpolled if shutdown came first; on a
 * current-thread runtime a shutdown from another thread also ends a
 * block_on in progress, after fut was polled).
 * Context: a thread that is not a worker and not already inside block_on
 * (aborts otherwise). Blocks. */
WEFT_API WEFT_NODISCARD int weft_runtime_block_on(weft_runtime_t *rt, weft_future_t *fut, void *out);

WEFT_API weft_handle_t *weft_runtime_handle(weft_runtime_t *rt);

/* The seed of a runtime built with a seeded task order (WEFT_ORDER_SEEDED
 * or WEFT_ORDER_RANDOM) into *seed: pass it as `seed` with
 * WEFT_ORDER_SEEDED, or as WEFT_SEED with WEFT_ORDER_RANDOM, to replay the
 * run. Returns 0, or WEFT_EINVAL for another task order (*seed untouched).
 * Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_runtime_seed(const weft_runtime_t *rt, uint64_t *seed);

/* Shuts the runtime down: stops accepting work, stops the workers, and drops
 * every task that has not finished (their futures' drop runs; their join
 * handles report WEFT_ECANCELED). Waits up to timeout_ms for the workers to
 * exit (a worker stuck inside a poll cannot be interrupted); returns 0 when
 * done, or WEFT_ETIMEDOUT: the runtime stays valid and shutting down, and a
 * later call or weft_runtime_free finishes the job.
 * Context: a thread outside every runtime: from a worker, a task or inside
 * any block_on it aborts (it would block a runtime thread). */
WEFT_API int weft_runtime_shutdown_timeout(weft_runtime_t *rt, uint64_t timeout_ms);

/* Shuts down (waiting as long as it takes) and frees the runtime. */
WEFT_API void weft_runtime_free(weft_runtime_t *rt);

/* The runtime whose task or block_on is running on this thread, or NULL. */
WEFT_API weft_handle_t *weft_handle_current(void);

/* ---- Spawning ---------------------------------------------------------- */

/* A join handle is a future (output int: 0 when the task's output was
 * written to the destination given to weft_join, WEFT_ECANCELED when the task
 * was aborted or dropped by shutdown). Dropping it detaches the task. */
/* A task's id: unique among every task of the process for its whole life
 * (so also for each runtime's life), never 0, never reused. */
typedef uint64_t weft_task_id_t;

typedef struct weft_join_handle_s {
    weft_future_t future;
    weft_task_t *task_; /* NULL: empty or already consumed */
    void *dst_;
} weft_join_handle_t;

typedef struct weft_spawn_opts_s {
    const char *name; /* copied into the task; NULL = unnamed */
} weft_spawn_opts_t;

/* Spawns `fut` as a new task on h (NULL: the current runtime; aborts if there
 * is none). The future is moved into the task (copied by its vtable size; it
 * must not have been polled) and the caller's copy must not be used or
 * dropped after success. jh (may be NULL to detach) receives the join handle.
 * Returns 0, or WEFT_ENOMEM: nothing was spawned and the caller still owns
 * fut. After shutdown began, the future is dropped at once and the handle
 * reports WEFT_ECANCELED (returns 0). `site` must have static storage (a
 * string literal: the macros pass WEFT_SITE). Futures and outputs may need
 * at most 16-byte alignment.
 * Context: any thread; from a worker of h the task goes to that worker's
 * LIFO slot (it runs next there, unless another worker takes what it
 * displaced), otherwise to the runtime's inject queue. Never blocks. */
WEFT_API WEFT_NODISCARD int weft_spawn_at(weft_handle_t *h, weft_future_t *fut, weft_join_handle_t *jh,
                                          const weft_spawn_opts_t *opts, const char *site);

#define weft_spawn(fut, jh) weft_spawn_at(NULL, WEFT_FUTURE(fut), (jh), NULL, WEFT_SITE)
#define weft_handle_spawn(h, fut, jh) weft_spawn_at((h), WEFT_FUTURE(fut), (jh), NULL, WEFT_SITE)
#define weft_spawn_named(name, fut, jh) \
    weft_spawn_at(NULL, WEFT_FUTURE(fut), (jh), WEFT__TMP(weft_spawn_opts_t, (name)), WEFT_SITE)

/* Builds a future in the memory weft_spawn_in_place_at gives it: dst has
 * room for vtable->size bytes (16-byte aligned, not initialized) and init
 * must leave a future there whose vtable is the one given (its first
 * member), ready for its first poll. It must not fail: do what can fail
 * before spawning. */
typedef void (*weft_future_init_cb)(weft_future_t *dst, void *arg);

/* Spawns a task whose future init(dst, arg) builds directly in the task's
 * memory, instead of building it on the caller's stack and copying it in as
 * weft_spawn_at does: for large futures (an async frame with a 16 KiB
 * buffer), the copy and a second set of pages to touch are saved, and so
 * is the room on the caller's stack. h, jh, opts and site as for
 * weft_spawn_at. init runs once, on the calling thread, before the task
 * can be polled (docs/tasks.md).
 * Returns 0, or WEFT_ENOMEM: nothing was spawned and init was not called.
 * After shutdown began, init still runs and the future is dropped at once
 * (its drop releases what init gave it); the handle reports WEFT_ECANCELED
 * (returns 0). So on 0 the future owns whatever init moved into it, on
 * WEFT_ENOMEM the caller still owns it all.
 * Aborts when vtable is NULL or gives a size below a weft_future_t, when
 * init is NULL, or when init left another vtable in dst.
 * Context: as weft_spawn_at (any thread; never blocks unless init does). */
WEFT_API WEFT_NODISCARD int weft_spawn_in_place_at(weft_handle_t *h, const weft_future_vtable_t *vtable,
                                                   weft_future_init_cb init, void *arg, weft_join_handle_t *jh,
                                                   const weft_spawn_opts_t *opts, const char *site);
#define weft_spawn_in_place(vtable, init, arg, jh) \
    weft_spawn_in_place_at(NULL, (vtable), (init), (arg), (jh), NULL, WEFT_SITE)
/* The async function `name`'s frame (WEFT_ASYNC), built in place by init:
 * init starts it with WEFT_FRAME_INIT_AT(frame, name) and sets the
 * arguments it needs (weft/async.h). */
#define weft_spawn_frame(name, init, arg, jh) \
    weft_spawn_in_place_at(NULL, &name##__vtable, (init), (arg), (jh), NULL, WEFT_SITE)

/* Sets where the output goes (dst, of the task's output size, or NULL to
 * discard it) and returns the handle as a future to await. */
WEFT_API weft_future_t *weft_join(weft_join_handle_t *jh, void *dst);
/* Requests cancellation: the task's future is dropped at its next
 * scheduling point: a running task's when its poll returns, an idle task's
 * by the worker it is queued to (on a current-thread runtime, at the next
 * block_on or at shutdown). A task that completes in the poll during which
 * it is aborted keeps its output. No effect on a finished task.
 * Context: any thread, also the task itself. */
WEFT_API void weft_join_handle_abort(const weft_join_handle_t *jh);
WEFT_API bool weft_join_handle_is_finished(const weft_join_handle_t *jh);
/* The id of the handle's task; 0 for an empty (or consumed) handle. */
WEFT_API weft_task_id_t weft_join_handle_id(const weft_join_handle_t *jh);
/* Detaches (same as weft_future_drop on the handle). */
WEFT_API void weft_join_handle_drop(weft_join_handle_t *jh);

/* ---- Blocking work ------------------------------------------------------ */

/* A blocking job: runs on a blocking-pool thread, may block or compute for
 * as long as it likes; its return value is the join handle's output. */
typedef void *(*weft_blocking_fn_t)(void *arg);

typedef struct weft_blocking_opts_s {
    const char *name; /* copied; NULL = unnamed */
    /* Called with arg when the job is dropped without having run (aborted
     * while queued, cancelled by shutdown, or no thread could be created),
     * so arg can be freed. NULL: nothing is called. */
    void (*cancel)(void *arg);
    /* try_spawn: fail with WEFT_EAGAIN when this many jobs already wait
     * for a busy thread, beyond those that awake, idle or still creatable
     * threads will start at once (0 = no bound). A snapshot: concurrent
     * spawners may each pass the same bound. */
    size_t max_queued;
} weft_blocking_opts_t;

/* Runs fn(arg) on the runtime's blocking pool (h NULL: the current runtime;
 * aborts if there is none). A thread is woken or created (up to
 * max_blocking_threads) for the job at once; past the cap the job waits in
 * a FIFO queue. jh (NULL to detach) is a join handle whose output is the
 * `void *` fn returned; awaiting it gives 0, WEFT_ECANCELED (aborted before
 * it started, or shutdown came first: the job never ran), or WEFT_EAGAIN /
 * WEFT_ENOMEM (no thread could be created and none is left to run it).
 * Aborting a running job has no effect: it runs to the end. arg must stay
 * valid until fn returns (or cancel runs), even when the handle or the
 * task awaiting it is dropped first: a job cannot be interrupted.
 * Returns 0, WEFT_ENOMEM, or (opts->max_queued) WEFT_EAGAIN: then nothing
 * was spawned, cancel is not called and the caller still owns arg. After
 * shutdown began the job is cancelled at once (returns 0).
 * Context: any thread. Never blocks; no lock is shared by all spawners. */
WEFT_API WEFT_NODISCARD int weft_spawn_blocking_at(weft_handle_t *h, weft_blocking_fn_t fn, void *arg,
                                                   weft_join_handle_t *jh, const weft_blocking_opts_t *opts,
                                                   const char *site);
#define weft_spawn_blocking(fn, arg, jh) weft_spawn_blocking_at(NULL, (fn), (arg), (jh), NULL, WEFT_SITE)
#define weft_try_spawn_blocking(fn, arg, max_queued, jh) \
    weft_spawn_blocking_at(NULL, (fn), (arg), (jh), WEFT__TMP(weft_blocking_opts_t, NULL, NULL, (max_queued)), WEFT_SITE)

/* Runs fn(arg) right here, on the calling thread, after making sure nothing
 * waits behind it: on a worker of a multi-thread runtime, the worker's
 * queued tasks and its place in the scheduler go to another thread (from
 * the blocking pool) first, and this thread finishes the current poll as
 * an ordinary thread, then joins the blocking pool. *result (may be NULL)
 * receives fn's value.
 * Returns 0; WEFT_EPERM on the thread driving a current-thread runtime
 * (in a task or in its block_on: fn is not called, as there is no other
 * thread to run the tasks; use weft_spawn_blocking). Elsewhere outside a
 * worker (a plain thread, a multi-thread runtime's block_on, a blocking
 * job) it just calls fn. If no thread can be had, the worker's queued
 * tasks go to the inject queue for the other workers instead, and the
 * worker waits for fn. */
WEFT_API WEFT_NODISCARD int weft_block_in_place(weft_blocking_fn_t fn, void *arg, void **result);

typedef struct weft_blocking_stats_s {
    unsigned threads; /* blocking-pool threads alive (not counting workers) */
    unsigned idle;    /* of which sleeping, waiting for a job */
    size_t queued;    /* jobs waiting for a thread */
} weft_blocking_stats_t;
/* A snapshot of h's blocking pool (NULL: the current runtime). */
WEFT_API void weft_blocking_stats(weft_handle_t *h, weft_blocking_stats_t *out);

/* The name and spawn site of the task running on this thread (NULL when
 * not inside a task). */
WEFT_API const char *weft_task_current_name(void);
WEFT_API const char *weft_task_current_site(void);
/* The id of the task running on this thread, 0 when not inside a task
 * (a block_on root is not a task). See weft_task_id_t. */
WEFT_API weft_task_id_t weft_task_current_id(void);

/* Cooperative budget: every weft resource (join handle, channels, accept,
 * reads and writes, ...) spends one unit per poll that makes progress; a
 * task has 128 per scheduling, and a time slice of about 1 ms, checked
 * every few units and after each spawn of a large future. When either is
 * spent, the resource returns WEFT_PENDING after waking the task, so a
 * task looping over always-ready resources still yields, and one whose
 * every iteration is dear (an accept loop spawning large tasks) yields
 * after about a millisecond rather than 128 iterations
 * (docs/tasks.md). Returns true when the caller may proceed; outside a
 * task's poll (a plain thread, a blocking job) always true.
 * Context: inside a poll, with that poll's cx. */
WEFT_API bool weft_coop_proceed(weft_context_t *cx);

#ifdef __cplusplus
}
#endif

#endif
