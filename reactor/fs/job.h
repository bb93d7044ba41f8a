/* reactor/fs/job.h - one blocking call whose result a future waits for.
 *
 * File system calls block, so each runs as a job on the runtime's blocking
 * pool (runtime/blocking.c): bench/RESULTS.md has the measurement that
 * chose it over libuv's uv_fs_* (which would add a hop to the libuv thread
 * and one back for every call, and a second pool of threads). A job is
 * held by two holders, the side that polls for it and the job itself;
 * the job runs, publishes its result (release store of `done`), wakes the
 * atomic waker and lets go; whichever holder lets go last calls `free`.
 * A job dropped by the pool without running (shutdown) publishes
 * WEFT_ECANCELED the same way (or runs there, see run_if_cancelled), so
 * the poller always hears back.
 *
 * The struct is embedded in its owner (a file, a path request): no
 * allocation per job besides the pool's task.
 */
#ifndef WEFT_FS_JOB_H
#define WEFT_FS_JOB_H

#include <sys/stat.h>

#include "../../runtime/internal.h"
#include "weft/atomic_waker.h"
#include "weft/fs.h"

typedef struct weft__fs_job weft__fs_job_t;
struct weft__fs_job {
    _Atomic int refs;
    _Atomic int done; /* the result is published */
    weft_atomic_waker_t waker;
    void (*run)(weft__fs_job_t *j);  /* on a pool thread: does the call, sets res */
    void (*free)(weft__fs_job_t *j); /* by the last holder */
    int64_t res;                     /* the result: >= 0 or a negative errno */
    /* Dropped by the pool without running (shutdown), the job runs on the
     * thread that drops it instead of answering WEFT_ECANCELED: for
     * writes the caller was already told were taken. */
    bool run_if_cancelled;
};

/* Sets up j for its first use with one holder (the owner). */
void weft__fs_job_init(weft__fs_job_t *j, void (*run)(weft__fs_job_t *), void (*free_fn)(weft__fs_job_t *));
/* Starts j on the current runtime's blocking pool, registering cx's waker
 * first. The job takes a hold of its own. Returns 0, WEFT_ENOSYS (no
 * runtime here) or WEFT_ENOMEM (nothing started, no hold taken). */
int weft__fs_job_start(weft__fs_job_t *j, weft_context_t *cx, const char *name);
/* Registers cx's waker and says whether the result is published (then
 * j->res may be read). */
bool weft__fs_job_ready(weft__fs_job_t *j, weft_context_t *cx);
/* Lets go of one hold; the last one calls j->free. */
void weft__fs_job_release(weft__fs_job_t *j);

/* Fills *m from *st. */
void weft__fs_metadata_from_stat(weft_fs_metadata_t *m, const struct stat *st);
/* -errno of the last failed call, never 0. */
int weft__fs_errno(void);

#endif
