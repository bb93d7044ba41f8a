/* reactor/io/split.c - weft_io_split: a read half and a write half of one
 * stream, for two tasks.
 *
 * A WEFT_STREAM_DUPLEX stream already lets a read and a write run at the
 * same time, so its halves are plain forwarders. Any other stream's
 * halves share a small poll-level lock (after Tokio's BiLock), so only one
 * of them is inside the stream at a time:
 *
 *   struct weft__io_bilock: a spin lock (sync/waiters.h) guarding `held`
 *   and one waker slot per half. A half's poll takes the lock word; if the
 *   stream is free it marks it held, unlocks, calls the stream, and then
 *   releases it: clears `held` under the lock, moves the other half's
 *   waker out, unlocks, and wakes it. If the stream is held it stores its
 *   waker in its own slot and returns WEFT_PENDING: the holder's release
 *   wakes it. The stream is held only for the duration of one poll call,
 *   never across a WEFT_PENDING, so a half waiting on the stream's
 *   readiness does not keep the other out.
 *
 * Progress: blocking for the waiting half (WEFT_PENDING, never a thread
 * block); the spin lock covers a flag and a waker move. Each half has its
 * own slot, so no wake-up is lost and neither can starve the other for
 * longer than one poll of the other. No waker is woken or dropped with
 * the spin lock held (sync/waiters.h's rule).
 *
 * Lifetime: the lock is reference counted by its two halves; the last
 * weft_io_half_release (or weft_io_unsplit) frees it. */
#include <stdatomic.h>
#include <string.h>

#include "../../runtime/internal.h"
#include "../../runtime/nonnull.h"
#include "../../sync/waiters.h"
#include "weft/error.h"
#include "weft/io.h"

struct weft__io_bilock {
    unsigned lock;        /* weft__waitlock_* */
    bool held;            /* a half is inside the stream (under lock) */
    weft_waker_t waiting[2]; /* a half that found it held (under lock) */
    _Atomic unsigned refs;   /* halves not released */
};

enum { SIDE_READ = 0, SIDE_WRITE = 1 };

static inline weft_io_half_t *half_of(weft_stream_t *s)
{
    return (weft_io_half_t *)(void *)s;
}

/* Takes the stream for one poll (true), or registers cx's waker in this
 * half's slot (false). */
static bool bilock_take(struct weft__io_bilock *l, unsigned side, weft_context_t *cx)
{
    weft_waker_t old = { 0 };
    bool got;
    weft__waitlock_lock(&l->lock);
    got = !l->held;
    if (got)
        l->held = true;
    else
        weft__waiter_register(&l->waiting[side], cx->waker, &old);
    weft__waitlock_unlock(&l->lock);
    weft_waker_drop(&old);
    WEFT_CHAOS();
    return got;
}

/* Gives the stream back and wakes the other half if it waited. */
static void bilock_give(struct weft__io_bilock *l, unsigned side)
{
    weft__waitlock_lock(&l->lock);
    l->held = false;
    weft_waker_t w = l->waiting[side ^ 1u];
    l->waiting[side ^ 1u].vtable = NULL;
    weft__waitlock_unlock(&l->lock);
    if (w.vtable != NULL)
        weft_waker_wake(&w);
}

/* Runs one poll of the inner stream under the lock, for a locked split. */
#define LOCKED(h, cx, call)                                                      \
    do {                                                                         \
        if ((h)->lock_ == NULL)                                                  \
            return call;                                                         \
        if (!bilock_take((h)->lock_, (h)->side_, cx))                            \
            return WEFT_PENDING; /* no budget spent: nothing to refund */        \
        weft_poll_t r_ = call;                                                   \
        bilock_give((h)->lock_, (h)->side_);                                     \
        return r_;                                                               \
    } while (0)

static weft_poll_t half_read(weft_stream_t *s, weft_context_t *cx, void *buf, size_t len, ssize_t *n)
{
    weft_io_half_t *h = half_of(s);
    LOCKED(h, cx, weft_stream_poll_read(h->inner_, cx, buf, len, n));
}

static weft_poll_t half_write(weft_stream_t *s, weft_context_t *cx, const void *buf, size_t len, ssize_t *n)
{
    weft_io_half_t *h = half_of(s);
    LOCKED(h, cx, weft_stream_poll_write(h->inner_, cx, buf, len, n));
}

static weft_poll_t half_writev(weft_stream_t *s, weft_context_t *cx, const struct iovec *iov, size_t iovcnt,
                               ssize_t *n)
{
    weft_io_half_t *h = half_of(s);
    LOCKED(h, cx, weft_stream_poll_writev(h->inner_, cx, iov, iovcnt, n));
}

static weft_poll_t half_flush(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    weft_io_half_t *h = half_of(s);
    LOCKED(h, cx, weft_stream_poll_flush(h->inner_, cx, rc));
}

static weft_poll_t half_shutdown(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    weft_io_half_t *h = half_of(s);
    LOCKED(h, cx, weft_stream_poll_shutdown(h->inner_, cx, rc));
}

static const weft_stream_vtable_t read_half_vtable = {
    .poll_read = half_read,
    .flags = WEFT_STREAM_DUPLEX, /* one direction: it never races itself */
    .name = "read half",
};

static const weft_stream_vtable_t write_half_vtable = {
    .poll_write = half_write,
    .poll_writev = half_writev,
    .poll_flush = half_flush,
    .poll_shutdown = half_shutdown,
    .flags = WEFT_STREAM_DUPLEX,
    .name = "write half",
};

int weft_io_split(weft_stream_t *s, weft_io_half_t *rd, weft_io_half_t *wr)
{
    WEFT__REQUIRE("weft_io_split", s);
    WEFT__REQUIRE("weft_io_split", s->vtable);
    WEFT__REQUIRE("weft_io_split", rd);
    WEFT__REQUIRE("weft_io_split", wr);
    struct weft__io_bilock *l = NULL;
    if (!(s->vtable->flags & WEFT_STREAM_DUPLEX)) {
        l = weft__alloc(sizeof *l);
        if (l == NULL)
            return WEFT_ENOMEM;
        memset(l, 0, sizeof *l);
        weft__waitlock_init(&l->lock);
        atomic_init(&l->refs, 2);
    }
    *rd = (weft_io_half_t){ .stream_ = { &read_half_vtable }, .inner_ = s, .lock_ = l, .side_ = SIDE_READ };
    *wr = (weft_io_half_t){ .stream_ = { &write_half_vtable }, .inner_ = s, .lock_ = l, .side_ = SIDE_WRITE };
    return 0;
}

weft_stream_t *weft_io_half_stream(weft_io_half_t *h)
{
    WEFT__REQUIRE("weft_io_half_stream", h);
    if (h->inner_ == NULL)
        weft_panic(WEFT_SITE, "weft_io_half_stream: the half was released");
    return &h->stream_;
}

void weft_io_half_release(weft_io_half_t *h)
{
    WEFT__REQUIRE("weft_io_half_release", h);
    if (h->inner_ == NULL)
        weft_panic(WEFT_SITE, "weft_io_half_release: the half was already released");
    struct weft__io_bilock *l = h->lock_;
    h->inner_ = NULL;
    h->lock_ = NULL;
    /* acq_rel: the last release sees the other half's last use of the
     * lock (its release decrement) before freeing it. */
    if (l != NULL && atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1) {
        weft_waker_drop(&l->waiting[0]);
        weft_waker_drop(&l->waiting[1]);
        weft__free(l, sizeof *l);
    }
}

weft_stream_t *weft_io_unsplit(weft_io_half_t *rd, weft_io_half_t *wr)
{
    WEFT__REQUIRE("weft_io_unsplit", rd);
    WEFT__REQUIRE("weft_io_unsplit", wr);
    if (rd->inner_ == NULL || rd->inner_ != wr->inner_ || rd->lock_ != wr->lock_ || rd->side_ != SIDE_READ ||
        wr->side_ != SIDE_WRITE)
        weft_panic(WEFT_SITE, "weft_io_unsplit: the halves do not come from one split (or were released)");
    weft_stream_t *s = rd->inner_;
    weft_io_half_release(rd);
    weft_io_half_release(wr);
    return s;
}
