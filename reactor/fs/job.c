/* reactor/fs/job.c - blocking-pool jobs for the file system calls (see
 * job.h for the protocol). */
#include <errno.h>

#include "job.h"
#include "weft/runtime.h"

void weft__fs_job_init(weft__fs_job_t *j, void (*run)(weft__fs_job_t *), void (*free_fn)(weft__fs_job_t *))
{
    atomic_init(&j->refs, 1);
    atomic_init(&j->done, 0);
    weft_atomic_waker_init(&j->waker);
    j->run = run;
    j->free = free_fn;
    j->res = 0;
    j->run_if_cancelled = false;
}

void weft__fs_job_release(weft__fs_job_t *j)
{
    /* acq_rel: the last holder sees every write the other made (the job's
     * result, the owner's state) before it frees. */
    if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) == 1)
        j->free(j);
}

static void publish(weft__fs_job_t *j)
{
    /* release: res (and whatever run wrote into the owner) reaches the
     * poller's acquire load in weft__fs_job_ready. */
    atomic_store_explicit(&j->done, 1, memory_order_release);
    weft_atomic_waker_wake(&j->waker);
    weft__fs_job_release(j);
}

static void *job_main(void *arg)
{
    weft__fs_job_t *j = arg;
    j->run(j);
    publish(j);
    return NULL;
}

static void job_cancelled(void *arg)
{
    weft__fs_job_t *j = arg;
    if (j->run_if_cancelled)
        j->run(j);
    else
        j->res = WEFT_ECANCELED;
    publish(j);
}

int weft__fs_job_start(weft__fs_job_t *j, weft_context_t *cx, const char *name)
{
    if (weft_handle_current() == NULL)
        return WEFT_ENOSYS; /* no runtime on this thread: no pool to run it */
    /* relaxed: the job has not started, nobody else reads these yet; the
     * spawn publishes them to the pool thread. */
    atomic_store_explicit(&j->done, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&j->refs, 1, memory_order_relaxed);
    weft_atomic_waker_register(&j->waker, cx->waker);
    const weft_blocking_opts_t opts = { name, job_cancelled, 0 };
    int rc = weft_spawn_blocking_at(NULL, job_main, j, NULL, &opts, WEFT_SITE);
    if (rc != 0) /* nothing was spawned: the job's hold is ours to give back, and it is not the last */
        atomic_fetch_sub_explicit(&j->refs, 1, memory_order_relaxed);
    return rc;
}

bool weft__fs_job_ready(weft__fs_job_t *j, weft_context_t *cx)
{
    weft_atomic_waker_register(&j->waker, cx->waker);
    /* acquire: pairs with publish's release store. */
    return atomic_load_explicit(&j->done, memory_order_acquire) != 0;
}

static weft_fs_kind_t kind_of(mode_t m)
{
    if (S_ISREG(m))
        return WEFT_FS_FILE;
    if (S_ISDIR(m))
        return WEFT_FS_DIR;
    if (S_ISLNK(m))
        return WEFT_FS_SYMLINK;
    if (S_ISFIFO(m))
        return WEFT_FS_FIFO;
    if (S_ISSOCK(m))
        return WEFT_FS_SOCKET;
    if (S_ISCHR(m))
        return WEFT_FS_CHAR_DEVICE;
    if (S_ISBLK(m))
        return WEFT_FS_BLOCK_DEVICE;
    return WEFT_FS_UNKNOWN;
}

static int64_t ns_of(struct timespec ts)
{
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void weft__fs_metadata_from_stat(weft_fs_metadata_t *m, const struct stat *st)
{
    m->kind = kind_of(st->st_mode);
    m->mode = (uint32_t)(st->st_mode & 07777);
    m->size = (uint64_t)st->st_size;
    m->nlink = (uint64_t)st->st_nlink;
    m->ino = (uint64_t)st->st_ino;
    m->dev = (uint64_t)st->st_dev;
    m->uid = (uint32_t)st->st_uid;
    m->gid = (uint32_t)st->st_gid;
    m->atime_ns = ns_of(st->st_atim);
    m->mtime_ns = ns_of(st->st_mtim);
    m->ctime_ns = ns_of(st->st_ctim);
}

int weft__fs_errno(void)
{
    return errno > 0 ? -errno : WEFT_EIO;
}
