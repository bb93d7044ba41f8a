/* sync/rwlock.c - the async reader-writer lock: a semaphore with
 * max_readers permits (Tokio's design). A reader acquires one, a writer
 * acquires all max_readers, in the semaphore's FIFO order, which is what
 * makes it write-preferring: a writer at the head of the queue is assigned
 * the permits of readers as they leave, and no reader behind it (or
 * arriving later: no barging) can take them first. downgrade is a release
 * of max_readers - 1 permits by the writer, which keeps one: the readers
 * at the head of the queue are served by that release, in the same lock
 * round, and no writer can slip in because the caller still holds a read
 * permit. Everything else (cancellation safety, the fast paths) is the
 * semaphore's (sync/semaphore.c).
 */
#include "../runtime/context.h"
#include "../runtime/nonnull.h"
#include "sem_internal.h"
#include "weft/rwlock.h"

int weft_rwlock_init(weft_rwlock_t *rw, size_t max_readers)
{
    WEFT__REQUIRE("weft_rwlock_init", rw);
    if (max_readers == 0 || max_readers > WEFT_RWLOCK_MAX_READERS)
        return WEFT_EINVAL;
    rw->max_readers_ = max_readers;
    return weft_semaphore_init(&rw->sem_, max_readers);
}

void weft_rwlock_destroy(weft_rwlock_t *rw)
{
    WEFT__REQUIRE("weft_rwlock_destroy", rw);
    weft_semaphore_destroy(&rw->sem_);
}

static weft_poll_t rw_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    int rc = 0;
    if (weft__semaphore_acquire_poll((weft_semaphore_acquire_t *)(void *)f, cx, &rc) == WEFT_PENDING)
        return WEFT_PENDING;
    if (rc != 0) /* never closed, n always in range */
        weft_panic(WEFT_SITE, "weft_rwlock: %s", weft_strerror(rc));
    if (out != NULL)
        *(weft_unit_t *)out = WEFT_UNIT;
    return WEFT_READY;
}

static void rw_drop(weft_future_t *f)
{
    weft__semaphore_acquire_drop((weft_semaphore_acquire_t *)(void *)f);
}

static const weft_future_vtable_t read_vtable = {
    rw_poll, rw_drop, NULL, sizeof(weft_rwlock_read_t), 0, "weft_rwlock_read",
};
static const weft_future_vtable_t write_vtable = {
    rw_poll, rw_drop, NULL, sizeof(weft_rwlock_write_t), 0, "weft_rwlock_write",
};

weft_rwlock_read_t weft_rwlock_read(weft_rwlock_t *rw)
{
    WEFT__REQUIRE("weft_rwlock_read", rw);
    return (weft_rwlock_read_t){ weft__semaphore_acquire_with(&rw->sem_, 1, &read_vtable) };
}

weft_rwlock_write_t weft_rwlock_write(weft_rwlock_t *rw)
{
    WEFT__REQUIRE("weft_rwlock_write", rw);
    return (weft_rwlock_write_t){ weft__semaphore_acquire_with(&rw->sem_, rw->max_readers_, &write_vtable) };
}

int weft_rwlock_try_read(weft_rwlock_t *rw)
{
    WEFT__REQUIRE("weft_rwlock_try_read", rw);
    return weft_semaphore_try_acquire(&rw->sem_);
}

int weft_rwlock_try_write(weft_rwlock_t *rw)
{
    WEFT__REQUIRE("weft_rwlock_try_write", rw);
    return weft_semaphore_try_acquire_many(&rw->sem_, rw->max_readers_);
}

void weft_rwlock_read_unlock(weft_rwlock_t *rw)
{
    WEFT__REQUIRE("weft_rwlock_read_unlock", rw);
    weft__semaphore_release_checked(&rw->sem_, 1, rw->max_readers_,
                                    "weft_rwlock_read_unlock: the lock is not read-locked");
}

void weft_rwlock_write_unlock(weft_rwlock_t *rw)
{
    WEFT__REQUIRE("weft_rwlock_write_unlock", rw);
    /* Write-locked with nobody queued: 0 available. */
    weft__semaphore_release_checked(&rw->sem_, rw->max_readers_, rw->max_readers_,
                                    "weft_rwlock_write_unlock: the lock is not write-locked");
}

void weft_rwlock_downgrade(weft_rwlock_t *rw)
{
    WEFT__REQUIRE("weft_rwlock_downgrade", rw);
    /* Limit max_readers - 1: the release is accepted only from 0 available. */
    weft__semaphore_release_checked(&rw->sem_, rw->max_readers_ - 1, rw->max_readers_ - 1,
                                    "weft_rwlock_downgrade: the lock is not write-locked");
}

size_t weft_rwlock_max_readers(const weft_rwlock_t *rw)
{
    WEFT__REQUIRE("weft_rwlock_max_readers", rw);
    return rw->max_readers_;
}
