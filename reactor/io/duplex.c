/* reactor/io/duplex.c - the in-memory duplex pair (weft_duplex_new): two
 * connected streams for tests and in-process plumbing.
 *
 * Structure: one allocation holds the shared state and, after it, two
 * ring buffers of `cap` bytes. dir[i] is the direction that end i writes
 * and end i^1 reads: its ring position, its flags, and the waker of the
 * reader waiting for bytes and of the writer waiting for room, all under
 * the direction's own spin lock (sync/waiters.h), so the two directions
 * never contend and a read and a write of one end may run on two threads
 * (WEFT_STREAM_DUPLEX).
 *
 * A transfer takes the lock, copies what fits (at most cap bytes, a
 * memcpy or two), takes the other side's waker out of its slot, unlocks
 * and only then wakes it. One that cannot move a byte stores its own
 * waker (weft__waiter_register) and returns WEFT_PENDING; the peer's next
 * transfer, shutdown or close wakes it. So no wake-up is lost: the check
 * and the registration happen under the same lock as the peer's update.
 *
 * End of stream: shutdown sets the direction's `eof`; a reader sees 0
 * once the ring is drained. Closing an end sets eof on what it wrote and
 * `gone` on what it read (the peer's writes then fail with WEFT_EPIPE),
 * wakes the peer's waiters, and drops the reference; the second close
 * frees everything.
 *
 * Cost: no allocation after weft_duplex_new; each transfer is one lock
 * round and a copy. Weakness: a large read or write copies under the
 * lock (bounded by cap), during which the peer spins. */
#include <stdatomic.h>
#include <string.h>

#include "../../runtime/context.h"
#include "../../runtime/internal.h"
#include "../../runtime/nonnull.h"
#include "../../sync/waiters.h"
#include "weft/error.h"
#include "weft/io.h"
#include "weft/runtime.h"

/* The largest capacity: a bound that keeps cap * 2 + the header from
 * overflowing and a user's typo from reserving the machine's memory. */
#define DUPLEX_MAX_CAP ((size_t)1 << 30)

struct dir {
    unsigned lock;         /* weft__waitlock_*: everything below */
    size_t head, len;      /* the ring: len bytes from head */
    bool eof;              /* the writer shut down or closed */
    bool gone;             /* the reader closed: writes fail */
    weft_waker_t reader;   /* waits for bytes */
    weft_waker_t writer;   /* waits for room */
    unsigned char *ring;
};

struct weft__duplex {
    size_t cap;
    _Atomic unsigned refs; /* ends not closed */
    struct dir dir[2];     /* dir[i]: written by end i, read by end i^1 */
};

static struct weft__duplex *shared_of(weft_stream_t *s, unsigned *side)
{
    weft_duplex_t *d = (weft_duplex_t *)(void *)s;
    *side = d->side_;
    return d->shared_;
}

/* Copies len bytes between the ring (from offset `at`, wrapping) and p:
 * into the ring when `in`, out of it otherwise. */
static void ring_copy(struct dir *d, size_t cap, size_t at, void *p, size_t len, bool in)
{
    size_t first = cap - at < len ? cap - at : len;
    if (in) {
        memcpy(d->ring + at, p, first);
        memcpy(d->ring, (const char *)p + first, len - first);
    } else {
        memcpy(p, d->ring + at, first);
        memcpy((char *)p + first, d->ring, len - first);
    }
}

/* After unlocking: drops the replaced waker and wakes the peer's. */
static void after_unlock(weft_waker_t *old, weft_waker_t *wake)
{
    weft_waker_drop(old);
    if (wake->vtable != NULL)
        weft_waker_wake(wake);
}

static weft_poll_t duplex_read(weft_stream_t *s, weft_context_t *cx, void *buf, size_t len, ssize_t *n)
{
    unsigned side;
    struct weft__duplex *sh = shared_of(s, &side);
    if (sh == NULL) {
        *n = WEFT_EBADF;
        return WEFT_READY;
    }
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    struct dir *d = &sh->dir[side ^ 1u];
    weft_waker_t wake = { 0 }, old = { 0 };
    weft_poll_t r = WEFT_READY;
    weft__waitlock_lock(&d->lock);
    if (d->len > 0) {
        size_t k = d->len < len ? d->len : len;
        ring_copy(d, sh->cap, d->head, buf, k, false);
        d->head = (d->head + k) % sh->cap;
        d->len -= k;
        wake = d->writer; /* room for a waiting writer */
        d->writer.vtable = NULL;
        *n = (ssize_t)k;
    } else if (d->eof) {
        *n = 0;
    } else {
        weft__waiter_register(&d->reader, cx->waker, &old);
        r = WEFT_PENDING;
    }
    weft__waitlock_unlock(&d->lock);
    WEFT_CHAOS();
    after_unlock(&old, &wake);
    if (r == WEFT_PENDING)
        weft__coop_refund();
    return r;
}

static weft_poll_t duplex_write(weft_stream_t *s, weft_context_t *cx, const void *buf, size_t len, ssize_t *n)
{
    unsigned side;
    struct weft__duplex *sh = shared_of(s, &side);
    if (sh == NULL) {
        *n = WEFT_EBADF;
        return WEFT_READY;
    }
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    struct dir *d = &sh->dir[side];
    weft_waker_t wake = { 0 }, old = { 0 };
    weft_poll_t r = WEFT_READY;
    weft__waitlock_lock(&d->lock);
    if (d->gone || d->eof) { /* the reader closed, or we shut down */
        *n = WEFT_EPIPE;
    } else if (d->len < sh->cap) {
        size_t room = sh->cap - d->len;
        size_t k = room < len ? room : len;
        ring_copy(d, sh->cap, (d->head + d->len) % sh->cap, (void *)(uintptr_t)buf, k, true);
        d->len += k;
        wake = d->reader; /* bytes for a waiting reader */
        d->reader.vtable = NULL;
        *n = (ssize_t)k;
    } else {
        weft__waiter_register(&d->writer, cx->waker, &old);
        r = WEFT_PENDING;
    }
    weft__waitlock_unlock(&d->lock);
    WEFT_CHAOS();
    after_unlock(&old, &wake);
    if (r == WEFT_PENDING)
        weft__coop_refund();
    return r;
}

/* Sets end `side`'s write direction to end of stream (and, when
 * `closing`, its read direction to gone), waking whoever waits there. */
static void end_directions(struct weft__duplex *sh, unsigned side, bool closing)
{
    struct dir *w = &sh->dir[side];
    weft__waitlock_lock(&w->lock);
    w->eof = true;
    weft_waker_t reader = w->reader, mine = { 0 };
    w->reader.vtable = NULL;
    if (closing) { /* our own writer's waker, if any, is stale */
        mine = w->writer;
        w->writer.vtable = NULL;
    }
    weft__waitlock_unlock(&w->lock);
    after_unlock(&mine, &reader);
    if (!closing)
        return;
    struct dir *r = &sh->dir[side ^ 1u];
    weft__waitlock_lock(&r->lock);
    r->gone = true;
    weft_waker_t writer = r->writer;
    mine = r->reader;
    r->writer.vtable = r->reader.vtable = NULL;
    weft__waitlock_unlock(&r->lock);
    after_unlock(&mine, &writer);
}

static weft_poll_t duplex_shutdown(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    (void)cx;
    unsigned side;
    struct weft__duplex *sh = shared_of(s, &side);
    if (sh == NULL) {
        *rc = WEFT_EBADF;
        return WEFT_READY;
    }
    end_directions(sh, side, false);
    *rc = 0;
    return WEFT_READY;
}

static const weft_stream_vtable_t duplex_vtable = {
    .poll_read = duplex_read,
    .poll_write = duplex_write,
    .poll_shutdown = duplex_shutdown,
    .flags = WEFT_STREAM_DUPLEX,
    .name = "duplex",
};

int weft_duplex_new(size_t capacity, weft_duplex_t *a, weft_duplex_t *b)
{
    WEFT__REQUIRE("weft_duplex_new", a);
    WEFT__REQUIRE("weft_duplex_new", b);
    if (capacity == 0 || capacity > DUPLEX_MAX_CAP)
        return WEFT_EINVAL;
    struct weft__duplex *sh = weft__alloc(sizeof *sh + 2 * capacity);
    if (sh == NULL)
        return WEFT_ENOMEM;
    memset(sh, 0, sizeof *sh);
    sh->cap = capacity;
    atomic_init(&sh->refs, 2);
    for (unsigned i = 0; i < 2; i++) {
        weft__waitlock_init(&sh->dir[i].lock);
        sh->dir[i].ring = (unsigned char *)(sh + 1) + i * capacity;
    }
    *a = (weft_duplex_t){ .stream_ = { &duplex_vtable }, .shared_ = sh, .side_ = 0 };
    *b = (weft_duplex_t){ .stream_ = { &duplex_vtable }, .shared_ = sh, .side_ = 1 };
    return 0;
}

weft_stream_t *weft_duplex_stream(weft_duplex_t *d)
{
    WEFT__REQUIRE("weft_duplex_stream", d);
    return &d->stream_;
}

void weft_duplex_close(weft_duplex_t *d)
{
    WEFT__REQUIRE("weft_duplex_close", d);
    struct weft__duplex *sh = d->shared_;
    if (sh == NULL)
        return; /* already closed */
    d->shared_ = NULL;
    end_directions(sh, d->side_, true);
    /* acq_rel: the second close sees every access the first end made
     * (ordered before its decrement) before it frees the memory. */
    if (atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) == 1) {
        for (unsigned i = 0; i < 2; i++) {
            weft_waker_drop(&sh->dir[i].reader);
            weft_waker_drop(&sh->dir[i].writer);
        }
        weft__free(sh, sizeof *sh + 2 * sh->cap);
    }
}
