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
 *
 * Descheduled is not blocking. On a loaded machine a worker can wait for a
 * CPU in the middle of a short poll for longer than the threshold, and
 * wall time alone would report it. So when the watchdog first sees a poll
 * it also samples the worker's thread (the tid weft__watch_bind_thread
 * stored): its CPU-time clock (time on a CPU) and the run_delay of
 * /proc/self/task/<tid>/schedstat (time runnable but waiting for a CPU);
 * it samples again when the poll has run the threshold. Over the span,
 * what is neither is time asleep (blocked). weft__watch_judge is the rule:
 *
 *   - ran >= threshold: an offence (computing or spinning that long holds
 *     the worker on any machine);
 *   - else, if the thread is runnable now: not yet. The kernel adds a wait
 *     to run_delay only when it ends, so the unexplained time may be a
 *     wait in progress; the next sweep looks again;
 *   - else (asleep now, so every wait is counted): an offence when
 *     ran + blocked >= threshold. What is left, the waits for a CPU, is
 *     the machine's load and never makes an offence.
 *
 * The samples cover a little more than the span they are set against, and
 * run_delay may include a wait that began before the first sample, so the
 * parts are clamped: ran to the span, waited to what ran leaves, blocked
 * is the rest, and the three always add up to the span. Without the
 * statistics (kernels without CONFIG_SCHED_INFO, where schedstat reads
 * "0 0 0" or is missing; no /proc) the rule is wall time as above, and the
 * report says the split is unknown. Under valgrind, whose threads wait for
 * its lock asleep, a wait for a CPU reads as blocked: wall time again.
 * The samples cost the watchdog, and nothing on the worker: a clock read
 * and one read of schedstat for each poll a sweep first sees; judging a
 * poll reads the clock, schedstat and stat (the state), and again while it
 * gives a runnable thread time to get a CPU. Each worker thread's
 * schedstat is opened once and kept (open_schedstat), since on a machine
 * with no idle core the watchdog's CPU time is a worker's: with an open, a
 * read and a close of both files per sample, lines_throughput's watchdog
 * used 1.3% of a CPU, and 0.6% with schedstat kept and stat left out.
 */
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
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
    struct watch_view *views; /* one per worker */
};

/* What a worker's thread had done by some moment (read_cpu). */
typedef struct {
    uint64_t ran_ns;    /* its CPU-time clock */
    uint64_t waited_ns; /* run_delay: runnable, waiting for a CPU */
    uint64_t slices;    /* times it got a CPU */
    bool runnable;      /* running or waiting for a CPU at the reading */
} cpu_sample_t;

/* The watchdog's view of one worker. */
struct watch_view {
    uint64_t seen_seq; /* the poll being timed */
    uint64_t seen_at;  /* when we first saw it (ns) */
    uint64_t reported; /* the seq last reported */
    int tid;           /* the thread running it; 0: no CPU split for this poll */
    clockid_t cpu_clock;
    cpu_sample_t at_seen; /* that thread when we first saw the poll */
    /* /proc/self/task/<fd_tid>/schedstat, opened at the first sample of
     * that thread and kept (open_schedstat); -1: not open. */
    int fd_tid, fd_schedstat;
};

#ifdef WEFT_TEST_HOOKS
bool weft__watch_test_no_schedstat;
#endif

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

void weft__watch_bind_thread(weft__worker_t *w)
{
    /* Read afresh at each bind (a worker loop's start, each block_on of a
     * current-thread runtime), not cached per thread: a thread that forked
     * has a new tid in the child. One gettid syscall per bind. */
    int tid = 0;
    clockid_t cpu_clock = 0;
    if (pthread_getcpuclockid(pthread_self(), &cpu_clock) == 0)
        tid = (int)syscall(SYS_gettid);
    /* relaxed: the watchdog reads them after the acquire load of an odd
     * seq that this thread's weft__watch_begin published (release) after
     * these stores; a stale pair only costs one poll its split, as
     * check_worker re-reads them for every new seq. */
    atomic_store_explicit(&w->watch.tid, tid, memory_order_relaxed);
    atomic_store_explicit(&w->watch.cpu_clock, cpu_clock, memory_order_relaxed);
}

static void close_schedstat(struct watch_view *v)
{
    if (v->fd_schedstat >= 0)
        close(v->fd_schedstat);
    v->fd_schedstat = -1;
    v->fd_tid = 0;
}

/* Opens thread v->tid's schedstat, unless it is open already. It stays
 * open while the worker keeps its thread, so a sample reads it with one
 * pread (a read at offset 0 makes a /proc file's text afresh). */
static bool open_schedstat(struct watch_view *v)
{
    if (v->fd_tid == v->tid && v->fd_schedstat >= 0)
        return true;
    close_schedstat(v);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", v->tid);
    v->fd_schedstat = open(path, O_RDONLY | O_CLOEXEC);
    if (v->fd_schedstat < 0)
        return false;
    v->fd_tid = v->tid;
    return true;
}

/* Reads the start of an open /proc file into buf (NUL-ended). */
static bool read_task_file(int fd, char *buf, size_t size)
{
    ssize_t n = pread(fd, buf, size - 1, 0);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* Whether thread tid is running or waiting for a CPU, from the state
 * letter of its stat, which follows the command name (that may hold
 * ')'). Read only when a poll is judged, so opened each time. An
 * unreadable state counts as runnable: the cautious answer. */
static bool read_runnable(int tid)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    bool ok = read_task_file(fd, buf, sizeof buf);
    close(fd);
    const char *paren = ok ? strrchr(buf, ')') : NULL;
    return paren == NULL || paren[1] == '\0' || paren[2] == 'R';
}

/* Samples thread v->tid; false when the kernel cannot tell (no thread CPU
 * clock, no schedstat, or one that reads "0 0 0": no statistics kept).
 * out->runnable only when want_state (a poll's first sample needs no
 * state, and skips that read). */
static bool read_cpu(struct watch_view *v, cpu_sample_t *out, bool want_state)
{
    struct timespec ts;
    char buf[128];
#ifdef WEFT_TEST_HOOKS
    if (weft__watch_test_no_schedstat)
        return false;
#endif
    if (v->tid == 0 || !open_schedstat(v) || clock_gettime(v->cpu_clock, &ts) != 0)
        return false;
    if (!read_task_file(v->fd_schedstat, buf, sizeof buf)) {
        /* The thread the file names has ended, and its tid may now be
         * another thread's, which only a fresh open reaches: once more. */
        close_schedstat(v);
        if (!open_schedstat(v) || !read_task_file(v->fd_schedstat, buf, sizeof buf))
            return false;
    }
    char *end;
    (void)strtoull(buf, &end, 10); /* on-CPU ns as of the last accounting: the clock is exact */
    unsigned long long delay = strtoull(end, &end, 10);
    unsigned long long slices = strtoull(end, &end, 10);
    if (slices == 0)
        return false;
    out->ran_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    out->waited_ns = delay;
    out->slices = slices;
    out->runnable = want_state ? read_runnable(v->tid) : true;
    return true;
}

bool weft__watch_judge(uint64_t threshold_ns, uint64_t span_ns, uint64_t ran_ns, uint64_t waited_ns, bool runnable,
                       weft__poll_split_t *split)
{
    split->ran_ns = ran_ns < span_ns ? ran_ns : span_ns;
    split->waited_ns = waited_ns < span_ns - split->ran_ns ? waited_ns : span_ns - split->ran_ns;
    split->blocked_ns = span_ns - split->ran_ns - split->waited_ns;
    if (split->ran_ns >= threshold_ns)
        return true;
    if (runnable)
        return false;
    return split->ran_ns + split->blocked_ns >= threshold_ns;
}

/* The difference of two samples of one thread, later minus earlier
 * (counters that went back, which they should not, count as 0). */
static void sample_delta(const cpu_sample_t *a, const cpu_sample_t *b, uint64_t *ran, uint64_t *waited)
{
    *ran = b->ran_ns > a->ran_ns ? b->ran_ns - a->ran_ns : 0;
    *waited = b->waited_ns > a->waited_ns ? b->waited_ns - a->waited_ns : 0;
}

/* Decides whether worker w's poll `seq`, running span_ns since we first
 * saw it, is an offence, and fills r's split. */
static bool judge_poll(weft__worker_t *w, struct watch_view *v, uint64_t seq, uint64_t span_ns, uint64_t threshold_ns,
                       uint64_t period_ns, weft_blocking_report_t *r)
{
    cpu_sample_t now;
    if (v->tid == 0 || !read_cpu(v, &now, true))
        return true; /* no split: wall time decides */
    /* acquire: as in check_worker. Still the same poll, so it ran on the
     * same thread throughout our samples (a new thread means a new seq). */
    if (atomic_load_explicit(&w->watch.seq, memory_order_acquire) != seq)
        return false;
    uint64_t ran, waited;
    sample_delta(&v->at_seen, &now, &ran, &waited);
    weft__poll_split_t split;
    if (!weft__watch_judge(threshold_ns, span_ns, ran, waited, now.runnable, &split))
        return false;
    if (now.runnable) {
        /* An offence by its CPU time alone. The wait for a CPU in progress,
         * if any, is not in run_delay yet and would read as blocked: give
         * the thread up to a period to get a CPU back (slices moves on),
         * which counts it, and split again. The verdict stands. */
        for (int k = 0; k < 8; k++) {
            struct timespec nap = { 0, (long)(period_ns / 8) };
            cpu_sample_t later;
            nanosleep(&nap, NULL);
            if (!read_cpu(v, &later, true) || atomic_load_explicit(&w->watch.seq, memory_order_acquire) != seq)
                break;
            if (later.slices != now.slices || !later.runnable) {
                span_ns = weft__now_ns() - v->seen_at; /* the poll was running at later's reading */
                sample_delta(&v->at_seen, &later, &ran, &waited);
                (void)weft__watch_judge(threshold_ns, span_ns, ran, waited, later.runnable, &split);
                r->running_ms = span_ns / 1000000u;
                break;
            }
        }
    }
    r->cpu_known = true;
    r->ran_ms = split.ran_ns / 1000000u;
    r->waited_ms = split.waited_ns / 1000000u;
    r->blocked_ms = split.blocked_ns / 1000000u;
    return true;
}

static void default_report(const weft_blocking_report_t *r, void *arg)
{
    (void)arg;
    char split[128];
    if (r->cpu_known)
        snprintf(split, sizeof split, "ran %llu ms, waited for a CPU %llu ms, blocked %llu ms",
                 (unsigned long long)r->ran_ms, (unsigned long long)r->waited_ms, (unsigned long long)r->blocked_ms);
    else
        snprintf(split, sizeof split, "CPU split unknown");
    fprintf(stderr,
            "weft: blocking detected: worker %u has been inside one poll of task '%s' (spawned at %s) for at "
            "least %llu ms (threshold %llu ms; %s); move blocking calls and long computations to "
            "weft_spawn_blocking or weft_block_in_place\n",
            r->worker, r->task_name ? r->task_name : "unnamed", r->task_site ? r->task_site : "unknown site",
            (unsigned long long)r->running_ms, (unsigned long long)r->threshold_ms, split);
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
    struct watch_view *v = &d->views[i];
    if (seq == v->reported)
        return true;
    if (seq != v->seen_seq) {
        v->seen_seq = seq;
        /* relaxed: ordered by the acquire above (weft__watch_bind_thread).
         * The thread of poll seq, or of a later one: then seq has moved on
         * and judge_poll, which checks it, starts over. */
        v->tid = atomic_load_explicit(&w->watch.tid, memory_order_relaxed);
        v->cpu_clock = atomic_load_explicit(&w->watch.cpu_clock, memory_order_relaxed);
        if (!read_cpu(v, &v->at_seen, false))
            v->tid = 0;
        v->seen_at = weft__now_ns(); /* after the sample: the span lies inside what the samples cover */
        return true;
    }
    uint64_t threshold_ns = d->threshold_ms * 1000000u;
    if (before < v->seen_at || before - v->seen_at < threshold_ns)
        return true;
    weft_blocking_report_t r = { i, NULL, NULL, (before - v->seen_at) / 1000000u, d->threshold_ms, false, 0, 0, 0 };
    if (!judge_poll(w, v, seq, before - v->seen_at, threshold_ns, d->period_ms * 1000000u, &r))
        return true; /* descheduled, not blocking (so far) */
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
    v->reported = seq;
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
    d->views = weft__calloc(s->nworkers, sizeof *d->views);
    if (d->views == NULL) {
        weft__free(d, sizeof *d);
        return WEFT_ENOMEM;
    }
    for (unsigned i = 0; i < s->nworkers; i++)
        d->views[i].fd_schedstat = -1;
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
        weft__free(d->views, s->nworkers * sizeof *d->views);
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
    for (unsigned i = 0; i < s->nworkers; i++)
        close_schedstat(&d->views[i]);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    weft__free(d->views, s->nworkers * sizeof *d->views);
    weft__free(d, sizeof *d);
}
