/* runtime/watchdog.c - the blocking detector.
 *
 * The seed's first pitfall: a task that blocks, or computes for long,
 * inside poll holds its worker, and every task queued behind it waits.
 * One watchdog thread per runtime wakes every period (a fifth of the
 * threshold, at least 1 ms) and looks at each worker's watch slot
 * (scheduler.h): a worker that has been inside the same poll (same odd
 * seq) for longer than the threshold is reported once, with the task's
 * name and spawn site and how long it has run.
 *
 * Cost on the worker: a poll stores its task and bumps a sequence number
 * before and after: plain stores, no fence, no clock read, no syscall.
 *
 * Reading the task's name is the hard part: the poll may end and the task
 * be freed at any moment. The watchdog announces which poll it is reading
 * (hazard = seq), then calls membarrier(), which runs a full barrier on
 * every thread of the process, then re-reads seq. The worker, after a poll,
 * stores the new seq and then reads hazard, with no fence of its own. The
 * barrier lands somewhere in the worker's program order: if after its seq
 * store, our re-read sees the poll ended and we read nothing; if before,
 * the worker's hazard read comes after the barrier, sees our hazard, and
 * the worker waits until we clear it before it goes on (and before
 * anything can free the task). This is the
 * asymmetric Dekker of user-space RCU and folly's hazard pointers: the
 * rare side pays the fence. Without membarrier (old kernels, valgrind),
 * reports leave out the name and site.
 *
 * Timing: the watchdog notes (in nanoseconds, with a clock read after the
 * seq load) when it first saw a poll's seq; the poll had begun by then. At
 * a later sweep it reads the clock before loading seq again: if seq is
 * unchanged, the poll was still running at that reading, so it has run at
 * least the difference, which is what is compared with the threshold and
 * reported. A poll shorter than the threshold is therefore never reported,
 * even when the watchdog runs late on a loaded machine. While some worker
 * is inside a poll the sweeps come every period, so a poll that lasts the
 * threshold plus two periods is always reported (given the watchdog gets
 * the CPU); while none is, the period doubles up to the threshold, which
 * can add up to one threshold before a poll is first seen.
 */
#include <linux/membarrier.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "scheduler.h"

struct weft__watchdog {
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop; /* under lock */
    uint64_t period_ms, threshold_ms;
    uint64_t *seen_seq;  /* per worker: the poll being timed */
    uint64_t *seen_at;   /* when we first saw it (ms) */
    uint64_t *reported;  /* the seq last reported */
};

static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;
static bool membarrier_ok;

static void membarrier_register(void)
{
    membarrier_ok = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

void weft__watch_wait_hazard(weft__worker_t *w, uint64_t seq)
{
    /* acquire: the watchdog's reads of the task happen before it clears
     * the hazard (release), so before whatever frees the task. */
    while (atomic_load_explicit(&w->watch.hazard, memory_order_acquire) == seq)
        sched_yield();
}

static void default_report(const weft_blocking_report_t *r, void *arg)
{
    (void)arg;
    fprintf(stderr,
            "weft: blocking detected: worker %u has been inside one poll of task '%s' (spawned at %s) for at "
            "least %llu ms (threshold %llu ms); move blocking calls and long computations to "
            "weft_spawn_blocking or weft_block_in_place\n",
            r->worker, r->task_name ? r->task_name : "unnamed", r->task_site ? r->task_site : "unknown site",
            (unsigned long long)r->running_ms, (unsigned long long)r->threshold_ms);
}

/* Returns true when worker i is inside a poll. */
static bool check_worker(weft__sched_t *s, struct weft__watchdog *d, unsigned i)
{
    weft__worker_t *w = &s->workers[i];
    /* Clock reads bracket the seq load: `before` is no later than the load
     * (the poll was running then), `after` no earlier than it (the poll had
     * begun by then). */
    uint64_t before = weft__now_ns();
    /* acquire: pairs with weft__watch_begin's release (the task pointer). */
    uint64_t seq = atomic_load_explicit(&w->watch.seq, memory_order_acquire);
    if (!(seq & 1))
        return false;
    if (seq == d->reported[i])
        return true;
    if (seq != d->seen_seq[i]) {
        d->seen_seq[i] = seq;
        d->seen_at[i] = weft__now_ns();
        return true;
    }
    if (before < d->seen_at[i] || before - d->seen_at[i] < d->threshold_ms * 1000000u)
        return true;
    weft_blocking_report_t r = { i, NULL, NULL, (before - d->seen_at[i]) / 1000000u, d->threshold_ms };
    char name[64];
    if (membarrier_ok) {
        atomic_store_explicit(&w->watch.hazard, seq, memory_order_relaxed);
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        if (atomic_load_explicit(&w->watch.seq, memory_order_acquire) == seq) {
            weft_task_t *t = atomic_load_explicit(&w->watch.task, memory_order_relaxed);
            const char *n = weft__task_name(t);
            if (n != NULL) {
                snprintf(name, sizeof name, "%s", n);
                r.task_name = name;
            }
            r.task_site = weft__task_site(t); /* static storage */
        }
        /* release: our reads of the task precede the worker going on. */
        atomic_store_explicit(&w->watch.hazard, 0, memory_order_release);
    }
    d->reported[i] = seq;
    if (s->cfg.on_blocking)
        s->cfg.on_blocking(&r, s->cfg.on_blocking_arg);
    else
        default_report(&r, NULL);
    return true;
}

static void *watchdog_main(void *arg)
{
    weft__sched_t *s = arg;
    struct weft__watchdog *d = s->watchdog;
    char tname[16];
    snprintf(tname, sizeof tname, "%.9s-watch", s->name);
    pthread_setname_np(pthread_self(), tname);
    uint64_t period = d->period_ms;
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + period * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&d->cond, &d->lock, &ts);
        if (d->stop)
            break;
        pthread_mutex_unlock(&d->lock);
        bool busy = false;
        for (unsigned i = 0; i < s->nworkers; i++)
            busy |= check_worker(s, d, i);
        /* Idle (no worker inside a poll): back off, doubling up to the
         * threshold, so an idle runtime's watchdog wakes a few times per
         * threshold instead of five; the first poll seen resets it. */
        period = busy ? d->period_ms : (period * 2 < d->threshold_ms ? period * 2 : d->threshold_ms);
        pthread_mutex_lock(&d->lock);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int weft__watchdog_start(weft__sched_t *s)
{
    pthread_once(&membarrier_once, membarrier_register);
    struct weft__watchdog *d = weft__alloc(sizeof *d);
    if (d == NULL)
        return WEFT_ENOMEM;
    memset(d, 0, sizeof *d);
    d->reported = weft__calloc(3 * (size_t)s->nworkers, sizeof(uint64_t));
    if (d->reported == NULL) {
        weft__free(d, sizeof *d);
        return WEFT_ENOMEM;
    }
    d->seen_seq = d->reported + s->nworkers;
    d->seen_at = d->seen_seq + s->nworkers;
    d->threshold_ms = s->cfg.blocking_threshold_ms ? s->cfg.blocking_threshold_ms : 10;
    d->period_ms = d->threshold_ms / 5 ? d->threshold_ms / 5 : 1;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    /* Published before the thread starts; workers read it in every poll. */
    s->watchdog = d;
    if (weft__thread_create(&d->tid, NULL, watchdog_main, s) != 0) {
        s->watchdog = NULL;
        pthread_cond_destroy(&d->cond);
        pthread_mutex_destroy(&d->lock);
        weft__free(d->reported, 3 * (size_t)s->nworkers * sizeof(uint64_t));
        weft__free(d, sizeof *d);
        return WEFT_EAGAIN;
    }
    return 0;
}

void weft__watchdog_stop(weft__sched_t *s)
{
    struct weft__watchdog *d = s->watchdog;
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    d->stop = true;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->tid, NULL);
    /* The workers have stopped: nobody reads s->watchdog any more. */
    s->watchdog = NULL;
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    weft__free(d->reported, 3 * (size_t)s->nworkers * sizeof(uint64_t));
    weft__free(d, sizeof *d);
}
