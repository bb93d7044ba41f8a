/* runtime/owned.c - the list of the tasks that wait, so shutdown can find
 * and drop tasks that sit in no queue (parked on a waker). A task joins it
 * at its first WEFT_PENDING (task.c) and leaves it when it completes.
 *
 * Sharded by task address: tasks on different workers mostly take
 * different locks. Each shard is a spin lock over an intrusive doubly-linked
 * list (runtime/list.h: O(1) removal), padded to a cache line so shards do not false-share.
 * Closing marks every shard under its lock, so an insert either lands before
 * the close (and shutdown finds it) or fails (and the poller cancels the
 * task it was about to park).
 */
#include "scheduler.h"

int weft__owned_init(weft__owned_t *o, unsigned nworkers)
{
    /* Four shards per worker keeps two workers on different locks most of
     * the time; a power of two makes the shard choice a mask. */
    unsigned n = 4;
    while (n < 4u * nworkers && n < 4096)
        n <<= 1;
    o->shards = weft__calloc(n, sizeof(weft__owned_shard_t));
    if (o->shards == NULL)
        return WEFT_ENOMEM;
    o->mask = n - 1;
    for (unsigned i = 0; i < n; i++) {
        atomic_flag_clear(&o->shards[i].lock.flag);
        o->shards[i].closed = false;
        weft__dlist_init(&o->shards[i].tasks);
    }
    return 0;
}

void weft__owned_free(weft__owned_t *o)
{
    weft__free(o->shards, (size_t)(o->mask + 1) * sizeof(weft__owned_shard_t));
    o->shards = NULL;
}

static inline weft__owned_shard_t *shard_of(weft__owned_t *o, weft_task_t *t)
{
    /* Tasks are at least 64-byte objects: drop the low bits that never vary. */
    uintptr_t h = (uintptr_t)t >> 6;
    h ^= h >> 7;
    return &o->shards[h & o->mask];
}

bool weft__owned_insert(weft__owned_t *o, weft_task_t *t)
{
    weft__owned_shard_t *sh = shard_of(o, t);
    weft__spin_lock(&sh->lock);
    if (sh->closed) {
        weft__spin_unlock(&sh->lock);
        return false;
    }
    weft__dlist_push_front(&sh->tasks, &t->owned);
    weft__spin_unlock(&sh->lock);
    return true;
}

void weft__owned_remove(weft__owned_t *o, weft_task_t *t)
{
    weft__owned_shard_t *sh = shard_of(o, t);
    weft__spin_lock(&sh->lock);
    weft__dlist_remove(&t->owned);
    weft__spin_unlock(&sh->lock);
}

void weft__owned_close(weft__owned_t *o)
{
    for (unsigned i = 0; i <= o->mask; i++) {
        weft__spin_lock(&o->shards[i].lock);
        o->shards[i].closed = true;
        weft__spin_unlock(&o->shards[i].lock);
    }
}

weft_task_t *weft__owned_pop(weft__owned_t *o)
{
    for (unsigned i = 0; i <= o->mask; i++) {
        weft__owned_shard_t *sh = &o->shards[i];
        weft__spin_lock(&sh->lock);
        weft__dnode_t *n = weft__dlist_pop_front(&sh->tasks);
        weft__spin_unlock(&sh->lock);
        weft_task_t *t = n != NULL ? weft__container_of(n, weft_task_t, owned) : NULL;
        if (t)
            return t;
    }
    return NULL;
}

bool weft__owned_is_empty(weft__owned_t *o)
{
    for (unsigned i = 0; i <= o->mask; i++) {
        weft__owned_shard_t *sh = &o->shards[i];
        weft__spin_lock(&sh->lock);
        bool empty = weft__dlist_empty(&sh->tasks);
        weft__spin_unlock(&sh->lock);
        if (!empty)
            return false;
    }
    return true;
}
