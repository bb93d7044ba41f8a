/* tests/test_watchdog.c - the watchdog (blocking detector): a poll longer
 * than the threshold is reported once, with the task's name and spawn
 * site; each offence is reported; short polls, block_in_place and a
 * runtime built without the detector stay quiet. Where the time went: a
 * poll asleep in nanosleep is reported as blocked, one that spins as
 * running; a poll that only waited for a CPU is not reported; without
 * scheduler statistics the report says so and still comes; the split
 * always adds up to the span.
 *
 * These tests assert what holds on a loaded machine, under TSan and under
 * valgrind: facts that follow from the rule (weft__watch_judge) rather
 * than from how long anything took. Valgrind runs one thread at a time
 * and the others wait for its lock asleep, so a wait for a CPU reads as
 * blocked there: the tests that tell the two apart are skipped under it. */
#include <sched.h>
#include <sys/syscall.h>

#include "testlib.h"
#include "scheduler.h"
#include "stdfd.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef UNDER_VALGRIND
#define UNDER_VALGRIND() false
#endif

typedef struct {
    pthread_mutex_t mu;
    int n;
    weft_blocking_report_t last;
    char name[32], site[128];
} reports_t;

static void on_report(const weft_blocking_report_t *r, void *arg)
{
    reports_t *rs = arg;
    pthread_mutex_lock(&rs->mu);
    rs->n++;
    rs->last = *r;
    snprintf(rs->name, sizeof rs->name, "%s", r->task_name ? r->task_name : "");
    snprintf(rs->site, sizeof rs->site, "%s", r->task_site ? r->task_site : "");
    pthread_mutex_unlock(&rs->mu);
}

static weft_runtime_t *detect_rt(weft_flavor_t f, reports_t *rs, bool on)
{
    weft_builder_t b;
    weft_builder_init(&b, f);
    b.workers = 2;
    b.detect_blocking = on;
    b.blocking_threshold_ms = 20;
    b.on_blocking = rs != NULL ? on_report : NULL; /* NULL: the default line on stderr */
    b.on_blocking_arg = rs;
    /* The detector watches workers: the polls under test must run there,
     * not on the test thread waiting in block_on. */
    b.block_on_runs_tasks = false;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    return rt;
}

/* A poll that blocks for `ms`, `times` times, yielding in between. */
typedef struct {
    WEFT_FRAME;
    int ms, times, i;
    bool in_place;
} hog_t;
static void *sleep_job(void *arg)
{
    sleep_ms((long)(intptr_t)arg);
    return NULL;
}
WEFT_ASYNC(hog_t, hog_fn, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < self->times; self->i++) {
        if (self->in_place) {
            int ipr = weft_block_in_place(sleep_job, (void *)(intptr_t)self->ms, NULL);
            WEFT_TEST_CHECK_INT_EQ(ipr, 0);
        } else {
            sleep_ms(self->ms);
        }
        WEFT_YIELD();
    }
    WEFT_RETURN(0);
    WEFT_END();
}

static int run_hog(weft_runtime_t *rt, int ms, int times, bool in_place)
{
    hog_t hg = { WEFT_FRAME_INIT(hog_fn), .ms = ms, .times = times, .in_place = in_place };
    weft_join_handle_t jh;
    weft_spawn_opts_t o = { "hog" };
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&hg), &jh, &o, WEFT_SITE), 0);
    return join_out(rt, &jh, NULL);
}

START_TEST(detector_reports_a_long_poll_once)
{
    for (int f = 0; f < 2; f++) {
        reports_t rs = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, "", "" };
        weft_runtime_t *rt = detect_rt(f ? WEFT_RUNTIME_MULTI_THREAD : WEFT_RUNTIME_CURRENT_THREAD, &rs, true);
        ck_assert_int_eq(run_hog(rt, 150, 1, false), 0);
        weft_runtime_free(rt);
        ck_assert_int_eq(rs.n, 1);
        ck_assert_uint_ge(rs.last.running_ms, 20);
        ck_assert_uint_lt(rs.last.running_ms, 150);
        ck_assert_uint_eq(rs.last.threshold_ms, 20);
        ck_assert_str_eq(rs.name, "hog");
        ck_assert_ptr_nonnull(strstr(rs.site, "test_watchdog.c"));
    }
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(detector_reports_each_offence)
{
    reports_t rs = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, "", "" };
    weft_runtime_t *rt = detect_rt(WEFT_RUNTIME_MULTI_THREAD, &rs, true);
    /* Each poll sleeps 250 ms. A report is due within about 50 ms (an
     * idle watchdog may first see a poll up to a threshold late, then
     * the threshold plus two 4 ms periods); the rest is slack for a
     * watchdog that gets no CPU for a while on a loaded machine (at 80 ms
     * the test failed now and then under heavy load). */
    ck_assert_int_eq(run_hog(rt, 250, 3, false), 0);
    weft_runtime_free(rt);
    ck_assert_int_eq(rs.n, 3);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(detector_quiet_for_short_polls_and_block_in_place)
{
    reports_t rs = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, "", "" };
    weft_runtime_t *rt = detect_rt(WEFT_RUNTIME_MULTI_THREAD, &rs, true);
    ck_assert_int_eq(run_hog(rt, 2, 60, false), 0); /* 120 ms of work, 2 ms per poll */
    ck_assert_int_eq(run_hog(rt, 80, 2, true), 0);  /* long, but declared */
    weft_runtime_free(rt);
    ck_assert_int_eq(rs.n, 0);
    /* Switched off: even a long poll goes unreported. */
    rt = detect_rt(WEFT_RUNTIME_MULTI_THREAD, &rs, false);
    ck_assert_int_eq(run_hog(rt, 80, 1, false), 0);
    weft_runtime_free(rt);
    ck_assert_int_eq(rs.n, 0);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Where the time went -------------------------------------------------- */

/* The split of a report adds up to its running_ms (each part is rounded
 * down to a millisecond on its own), and is all 0 when unknown. */
static void check_split_adds_up(const weft_blocking_report_t *r)
{
    uint64_t sum = r->ran_ms + r->waited_ms + r->blocked_ms;
    fprintf(stderr, "# report: %llu ms = ran %llu + waited %llu + blocked %llu%s\n", (unsigned long long)r->running_ms,
            (unsigned long long)r->ran_ms, (unsigned long long)r->waited_ms, (unsigned long long)r->blocked_ms,
            r->cpu_known ? "" : " (unknown)");
    if (!r->cpu_known) {
        ck_assert_uint_eq(sum, 0);
        return;
    }
    ck_assert_uint_le(sum, r->running_ms);
    ck_assert_uint_ge(sum + 2, r->running_ms);
}

static bool schedstat_here(void)
{
    char buf[128] = "";
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f == NULL)
        return false;
    bool ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    unsigned long long ran, delay, slices = 0;
    return ok && sscanf(buf, "%llu %llu %llu", &ran, &delay, &slices) == 3 && slices > 0;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One poll that spins until its thread has had `cpu_ms` of CPU, pinned to
 * `cpu` when that is >= 0 (the old affinity comes back afterwards). Its
 * length is CPU time, not wall time, so the machine's load changes how
 * long it takes, not what it does. */
typedef struct {
    WEFT_FRAME;
    int cpu_ms, cpu;
    uint64_t *wall_ns; /* out: how long the poll took */
    int *tid;          /* out, unless NULL: the thread that ran it */
} spin_t;
WEFT_ASYNC(spin_t, spin_fn, int)
{
    WEFT_BEGIN();
    {
        cpu_set_t old, one;
        if (self->cpu >= 0) {
            WEFT_TEST_CHECK_INT_EQ(sched_getaffinity(0, sizeof old, &old), 0);
            CPU_ZERO(&one);
            CPU_SET(self->cpu, &one);
            WEFT_TEST_CHECK_INT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
        }
        uint64_t t0 = weft__now_ns(), c0 = thread_cpu_ns();
        while (thread_cpu_ns() - c0 < (uint64_t)self->cpu_ms * 1000000u)
            ;
        *self->wall_ns = weft__now_ns() - t0;
        if (self->tid != NULL)
            *self->tid = (int)syscall(SYS_gettid);
        if (self->cpu >= 0)
            WEFT_TEST_CHECK_INT_EQ(sched_setaffinity(0, sizeof old, &old), 0);
    }
    WEFT_RETURN(0);
    WEFT_END();
}

/* Runs one spin_t task; returns its wall time (ns), and in *tid, unless
 * NULL, the thread that ran it. */
static uint64_t run_spin_tid(weft_runtime_t *rt, int cpu_ms, int cpu, int *tid)
{
    uint64_t wall_ns = 0;
    spin_t sp = { WEFT_FRAME_INIT(spin_fn), .cpu_ms = cpu_ms, .cpu = cpu, .wall_ns = &wall_ns, .tid = tid };
    weft_join_handle_t jh;
    weft_spawn_opts_t o = { "spin" };
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&sp), &jh, &o, WEFT_SITE), 0);
    ck_assert_int_eq(join_out(rt, &jh, NULL), 0);
    return wall_ns;
}

static uint64_t run_spin(weft_runtime_t *rt, int cpu_ms, int cpu)
{
    return run_spin_tid(rt, cpu_ms, cpu, NULL);
}

START_TEST(detector_reports_a_sleeping_poll_as_blocked)
{
    reports_t rs = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, "", "" };
    weft_runtime_t *rt = detect_rt(WEFT_RUNTIME_MULTI_THREAD, &rs, true);
    /* 200 ms in nanosleep: the thread is asleep at every sweep. */
    ck_assert_int_eq(run_hog(rt, 200, 1, false), 0);
    weft_runtime_free(rt);
    ck_assert_int_eq(rs.n, 1);
    check_split_adds_up(&rs.last);
    if (!rs.last.cpu_known) {
        fprintf(stderr, "# no per-thread scheduler statistics here: the split goes unchecked\n");
    } else {
        /* Asleep when judged, so every wait for a CPU was counted and what
         * is left is sleep: most of the span, and more than it ran. */
        ck_assert_uint_ge(2 * rs.last.blocked_ms, rs.last.running_ms);
        ck_assert_uint_le(rs.last.ran_ms, rs.last.blocked_ms);
    }
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(detector_reports_a_spinning_poll_as_running)
{
    reports_t rs = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, "", "" };
    weft_runtime_t *rt = detect_rt(WEFT_RUNTIME_MULTI_THREAD, &rs, true);
    /* 150 ms of CPU in one poll, however long the machine takes to give
     * it: past the 20 ms threshold whatever part the watchdog misses. */
    (void)run_spin(rt, 150, -1);
    weft_runtime_free(rt);
    ck_assert_int_eq(rs.n, 1);
    check_split_adds_up(&rs.last);
    if (!rs.last.cpu_known) {
        fprintf(stderr, "# no per-thread scheduler statistics here: the split goes unchecked\n");
    } else if (UNDER_VALGRIND()) {
        fprintf(stderr, "# valgrind: waiting for its lock reads as blocked; the split goes unchecked\n");
    } else {
        /* Always runnable, so only its CPU time could make the offence;
         * what it did itself was run, not sleep. */
        ck_assert_uint_ge(rs.last.ran_ms, rs.last.threshold_ms);
        ck_assert_uint_le(rs.last.blocked_ms, rs.last.ran_ms);
    }
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* Threads that spin on one CPU, taking turns with whatever else runs there. */
typedef struct {
    int cpu;
    atomic_bool stop;
    atomic_int started;
    pthread_t tids[4];
    int n;
} cpu_hogs_t;

static void *cpu_hog_main(void *arg)
{
    cpu_hogs_t *h = arg;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(h->cpu, &one);
    atomic_fetch_add(&h->started, sched_setaffinity(0, sizeof one, &one) == 0 ? 1 : 100);
    while (!atomic_load_explicit(&h->stop, memory_order_relaxed))
        ;
    return NULL;
}

/* Starts n hogs on the first CPU this thread may use; false (nothing left
 * running) when affinity cannot be set here. */
static bool cpu_hogs_start(cpu_hogs_t *h, int n)
{
    cpu_set_t mine;
    if (sched_getaffinity(0, sizeof mine, &mine) != 0)
        return false;
    h->cpu = -1;
    for (int c = 0; c < CPU_SETSIZE && h->cpu < 0; c++)
        if (CPU_ISSET(c, &mine))
            h->cpu = c;
    atomic_init(&h->stop, false);
    atomic_init(&h->started, 0);
    h->n = n;
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&h->tids[i], NULL, cpu_hog_main, h), 0);
    while (atomic_load(&h->started) < n)
        sleep_ms(1);
    if (atomic_load(&h->started) == n)
        return true;
    atomic_store(&h->stop, true);
    for (int i = 0; i < n; i++)
        pthread_join(h->tids[i], NULL);
    return false;
}

static void cpu_hogs_stop(cpu_hogs_t *h)
{
    atomic_store(&h->stop, true);
    for (int i = 0; i < h->n; i++)
        pthread_join(h->tids[i], NULL);
}

/* Whether a wait for a CPU can be told from sleep here (the two tests
 * below need it); says why not when it cannot. */
static bool can_tell_a_wait_for_a_cpu(void)
{
    if (UNDER_VALGRIND()) {
        fprintf(stderr, "# valgrind: a wait for a CPU reads as blocked there: skipped\n");
        return false;
    }
    if (!schedstat_here()) {
        fprintf(stderr, "# no per-thread scheduler statistics: wall time decides: skipped\n");
        return false;
    }
    return true;
}

START_TEST(detector_quiet_for_a_descheduled_poll)
{
    if (!can_tell_a_wait_for_a_cpu())
        return;
    cpu_hogs_t hogs;
    if (!cpu_hogs_start(&hogs, 3)) {
        fprintf(stderr, "# sched_setaffinity refused: skipped\n");
        return;
    }
    reports_t rs = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, "", "" };
    weft_runtime_t *rt = detect_rt(WEFT_RUNTIME_MULTI_THREAD, &rs, true);
    /* 10 ms of CPU on a CPU shared with three spinners: some 40 ms of wall
     * time, past the 20 ms threshold, most of it waiting for the CPU. The
     * poll never sleeps and never runs 20 ms, so by the rule no sweep may
     * find an offence, however loaded the machine is. */
    uint64_t wall_ns[3];
    for (int k = 0; k < 3; k++)
        wall_ns[k] = run_spin(rt, 10, hogs.cpu);
    cpu_hogs_stop(&hogs);
    weft_runtime_free(rt);
    ck_assert_int_eq(rs.n, 0);
    fprintf(stderr, "# descheduled polls: %llu, %llu, %llu ms of wall time for 10 ms of CPU each, unreported\n",
            (unsigned long long)(wall_ns[0] / 1000000u), (unsigned long long)(wall_ns[1] / 1000000u),
            (unsigned long long)(wall_ns[2] / 1000000u));
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* The tid whose schedstat this process holds open (the watchdog's kept
 * file, watchdog_fd_tid): 0 when none is, -1 when several are. */
static int watched_tid(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int tid = watchdog_fd_tid(e->d_name);
        if (tid > 0)
            found = found == 0 ? tid : -1;
    }
    closedir(d);
    return found;
}

/* The watchdog keeps each worker thread's schedstat open between samples.
 * When block_in_place hands the worker to a new thread, the samples must
 * follow it: a file still naming the old thread, now asleep in the
 * blocking pool, would miss the new thread's waits for a CPU, and a
 * descheduled poll could read as blocked. The test checks both the
 * verdicts and which thread's file is open. Freeing the runtime closes
 * it. */
START_TEST(detector_follows_the_worker_to_a_new_thread)
{
    if (!can_tell_a_wait_for_a_cpu())
        return;
    /* libuv opens a few fds for the process on first use: count after. */
    weft_runtime_free(detect_rt(WEFT_RUNTIME_MULTI_THREAD, NULL, false));
    proc_usage_t before = proc_usage();
    ck_assert_int_eq(watched_tid(), 0);
    reports_t rs = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, "", "" };
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 1; /* so the spins below run on the thread that took the worker over */
    b.blocking_threshold_ms = 20;
    b.on_blocking = on_report;
    b.on_blocking_arg = &rs;
    b.block_on_runs_tasks = false;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    /* 6 ms polls against a 4 ms period, until the watchdog has sampled
     * one, opening the worker's first thread's file. */
    int first = 0;
    for (int k = 0; k < 20 && (first = watched_tid()) == 0; k++)
        ck_assert_int_eq(run_hog(rt, 6, 10, false), 0);
    ck_assert_int_gt(first, 0);
    /* The worker's loop moves to another thread. */
    ck_assert_int_eq(run_hog(rt, 10, 1, true), 0);
    cpu_hogs_t hogs;
    if (!cpu_hogs_start(&hogs, 3)) {
        weft_runtime_free(rt);
        fprintf(stderr, "# sched_setaffinity refused: skipped\n");
        return;
    }
    /* Descheduled polls on the new thread (as in the test above): by the
     * rule, no report, if the samples are that thread's. */
    int second = 0;
    for (int k = 0; k < 3; k++)
        (void)run_spin_tid(rt, 10, hogs.cpu, &second);
    cpu_hogs_stop(&hogs);
    ck_assert_int_eq(rs.n, 0);
    ck_assert_int_gt(second, 0);
    ck_assert_int_ne(second, first);
    /* The file the watchdog holds now is the new thread's (once it has
     * sampled a poll there: more 6 ms polls until it has). */
    for (int k = 0; k < 20 && watched_tid() == first; k++)
        ck_assert_int_eq(run_hog(rt, 6, 10, false), 0);
    ck_assert_int_eq(watched_tid(), second);
    weft_runtime_free(rt);
    ck_assert_int_eq(watched_tid(), 0);
    assert_usage_back(before);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(detector_without_schedstat_still_reports)
{
    weft__watch_test_no_schedstat = true;
    reports_t rs = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, "", "" };
    weft_runtime_t *rt = detect_rt(WEFT_RUNTIME_MULTI_THREAD, &rs, true);
    ck_assert_int_eq(run_hog(rt, 150, 1, false), 0);
    (void)run_spin(rt, 60, -1);
    weft_runtime_free(rt);
    weft__watch_test_no_schedstat = false;
    ck_assert_int_eq(rs.n, 2); /* wall time decides, as without the split */
    ck_assert(!rs.last.cpu_known);
    check_split_adds_up(&rs.last);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* Runs a 150 ms sleeping poll on a runtime with the default report and
 * returns what it printed on stderr (in buf). */
static void default_line(bool no_schedstat, char *buf, size_t size)
{
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fileno(tmp), STDERR_FILENO), STDERR_FILENO);
    weft__watch_test_no_schedstat = no_schedstat;
    weft_runtime_t *rt = detect_rt(WEFT_RUNTIME_MULTI_THREAD, NULL, true);
    int rc = run_hog(rt, 150, 1, false);
    weft_runtime_free(rt);
    weft__watch_test_no_schedstat = false;
    fflush(stderr);
    ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    ck_assert_int_eq(rc, 0);
    rewind(tmp);
    size_t n = fread(buf, 1, size - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
}

START_TEST(default_report_tells_the_split)
{
    char line[1024];
    default_line(true, line, sizeof line);
    ck_assert_msg(strstr(line, "weft: blocking detected") != NULL, "%s", line);
    ck_assert_msg(strstr(line, "threshold 20 ms; CPU split unknown)") != NULL, "%s", line);
    if (schedstat_here()) {
        default_line(false, line, sizeof line);
        ck_assert_msg(strstr(line, "ms, waited for a CPU ") != NULL, "%s", line);
        ck_assert_msg(strstr(line, "ms, blocked ") != NULL, "%s", line);
    }
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(detector_rule_on_synthetic_splits)
{
    const uint64_t ms = 1000000u, thr = 20 * ms;
    weft__poll_split_t sp;
    /* Computing past the threshold: an offence, runnable or not. */
    ck_assert(weft__watch_judge(thr, 30 * ms, 28 * ms, 2 * ms, true, &sp));
    ck_assert_uint_eq(sp.blocked_ns, 0);
    ck_assert(weft__watch_judge(thr, 30 * ms, 28 * ms, 2 * ms, false, &sp));
    /* Asleep in a syscall. */
    ck_assert(weft__watch_judge(thr, 30 * ms, 1 * ms, 0, false, &sp));
    ck_assert_uint_eq(sp.blocked_ns, 29 * ms);
    /* Mostly waiting for a CPU, asleep now: what it did itself is short. */
    ck_assert(!weft__watch_judge(thr, 30 * ms, 5 * ms, 24 * ms, false, &sp));
    ck_assert_uint_eq(sp.blocked_ns, 1 * ms);
    /* Runnable with time unexplained: perhaps a wait not counted yet. */
    ck_assert(!weft__watch_judge(thr, 30 * ms, 5 * ms, 0, true, &sp));
    /* Waited most of the span, and blocked past the threshold too. */
    ck_assert(weft__watch_judge(thr, 100 * ms, 5 * ms, 60 * ms, false, &sp));
    ck_assert_uint_eq(sp.blocked_ns, 35 * ms);
    /* More accounted than the span (the samples cover a little more, and
     * run_delay may hold a wait begun before the first): clamped, waited
     * gives way first, ran never exceeds the span. */
    ck_assert(!weft__watch_judge(thr, 30 * ms, 10 * ms, 138 * ms, false, &sp));
    ck_assert_uint_eq(sp.ran_ns, 10 * ms);
    ck_assert_uint_eq(sp.waited_ns, 20 * ms);
    ck_assert_uint_eq(sp.blocked_ns, 0);
    ck_assert(weft__watch_judge(thr, 30 * ms, 31 * ms, 5 * ms, true, &sp));
    ck_assert_uint_eq(sp.ran_ns, 30 * ms);
    ck_assert_uint_eq(sp.waited_ns, 0);
    /* Whatever the inputs, the parts add up to the span. */
    const uint64_t vals[] = { 0, 1, 19 * ms, 20 * ms, 21 * ms, 40 * ms, 500 * ms, UINT64_MAX / 4 };
    for (size_t a = 0; a < sizeof vals / sizeof vals[0]; a++)
        for (size_t b = 0; b < sizeof vals / sizeof vals[0]; b++)
            for (size_t c = 0; c < sizeof vals / sizeof vals[0]; c++)
                for (int runnable = 0; runnable < 2; runnable++) {
                    bool off = weft__watch_judge(thr, vals[a], vals[b], vals[c], runnable, &sp);
                    ck_assert_uint_eq(sp.ran_ns + sp.waited_ns + sp.blocked_ns, vals[a]);
                    /* Never an offence on time spent waiting for a CPU. */
                    if (off)
                        ck_assert(sp.ran_ns >= thr || (!runnable && sp.ran_ns + sp.blocked_ns >= thr));
                }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("watchdog");
    TCase *tc = tcase_create("detector");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, detector_reports_a_long_poll_once);
    tcase_add_test(tc, detector_reports_each_offence);
    tcase_add_test(tc, detector_quiet_for_short_polls_and_block_in_place);
    tcase_add_test(tc, detector_reports_a_sleeping_poll_as_blocked);
    tcase_add_test(tc, detector_reports_a_spinning_poll_as_running);
    tcase_add_test(tc, detector_quiet_for_a_descheduled_poll);
    tcase_add_test(tc, detector_follows_the_worker_to_a_new_thread);
    tcase_add_test(tc, detector_without_schedstat_still_reports);
    tcase_add_test(tc, default_report_tells_the_split);
    tcase_add_test(tc, detector_rule_on_synthetic_splits);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
