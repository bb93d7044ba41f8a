/* reactor/io/copy.c - copy and copy_bidirectional (weft/io.h): move the
 * bytes of one stream into another through a buffer, in one direction or
 * in both at once, over any streams.
 *
 * One direction is a small state machine over its buffer (weft__io_copy_dir_t):
 *   read into the empty buffer -> write it out (as many calls as the
 *   writer takes) -> read again ... -> end of stream -> flush the writer.
 * When the reader has nothing yet and bytes were written since the last
 * flush, the writer is flushed before waiting, so a buffered writer never
 * sits on bytes while the copy waits for more (a request/response protocol
 * through a buffered stream would otherwise stall). copy_bidirectional
 * runs two of them in one future and, once a direction has flushed, shuts
 * its writer down: the reader's end of stream becomes the other peer's.
 *
 * Memory: the buffers (buf_size per direction, one allocation) come at the
 * first poll and go in drop, so a frame embedding the future stays small.
 * The idle timeout is one sleep, reset lazily: a poll that moved bytes
 * only notes the time, and when the sleep fires early (bytes moved since
 * it was armed) it is moved to last activity + idle instead of ending the
 * copy, so a busy connection costs one clock read per poll, not a timer
 * operation per transfer. */
#include <errno.h>
#include <string.h>

#include "../../runtime/internal.h"
#include "../../runtime/nonnull.h"
#include "weft/error.h"
#include "weft/io.h"

/* Moves bytes one way until the reader's end of stream is flushed
 * through (READY, *rc = 0), an error (READY, *rc < 0) or a wait
 * (PENDING). *moved is set when a byte was read or written. */
static weft_poll_t dir_poll(weft__io_copy_dir_t *d, size_t size, weft_stream_t *r, weft_stream_t *w,
                            weft_context_t *cx, int *rc, bool *moved)
{
    ssize_t n;
    for (;;) {
        if (d->pos == d->end && !d->read_done) {
            if (weft_stream_poll_read(r, cx, d->buf, size, &n) == WEFT_PENDING) {
                if (d->need_flush) {
                    int frc;
                    if (weft_stream_poll_flush(w, cx, &frc) == WEFT_READY) {
                        if (frc < 0) {
                            *rc = frc;
                            return WEFT_READY;
                        }
                        d->need_flush = false;
                    }
                }
                return WEFT_PENDING;
            }
            if (n < 0) {
                *rc = (int)n;
                return WEFT_READY;
            }
            if (n == 0) {
                d->read_done = true;
            } else {
                d->pos = 0;
                d->end = (size_t)n;
                *moved = true;
            }
        }
        while (d->pos < d->end) {
            if (weft_stream_poll_write(w, cx, d->buf + d->pos, d->end - d->pos, &n) == WEFT_PENDING)
                return WEFT_PENDING;
            if (n <= 0) {
                *rc = n == 0 ? WEFT_EPIPE : (int)n;
                return WEFT_READY;
            }
            d->pos += (size_t)n;
            d->total += (uint64_t)n;
            d->need_flush = true;
            *moved = true;
        }
        if (d->read_done) {
            int frc;
            if (weft_stream_poll_flush(w, cx, &frc) == WEFT_PENDING)
                return WEFT_PENDING;
            d->need_flush = false;
            *rc = frc;
            return WEFT_READY;
        }
    }
}

/* Allocates the buffers (dirs of them) at the first poll. */
static int start(weft_io_copy_t *c, int dirs)
{
    c->started_ = true;
    unsigned char *p = weft__alloc(c->buf_size_ * (size_t)dirs);
    if (p == NULL)
        return WEFT_ENOMEM;
    c->ab_.buf = p;
    if (dirs == 2)
        c->ba_.buf = p + c->buf_size_;
    return 0;
}

static void copy_drop(weft_future_t *f)
{
    weft_io_copy_t *c = (weft_io_copy_t *)(void *)f;
    if (c->ab_.buf != NULL) {
        weft__free(c->ab_.buf, c->buf_size_ * (c->ba_.buf != NULL ? 2 : 1));
        c->ab_.buf = c->ba_.buf = NULL;
    }
    if (c->idle_armed_) {
        weft_future_drop(&c->idle_.future);
        c->idle_armed_ = false;
    }
}

/* ---- copy ------------------------------------------------------------------------ */

static weft_poll_t copy_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_io_copy_t *c = (weft_io_copy_t *)(void *)f;
    int rc = 0;
    bool moved = false;
    if (!c->started_ && (rc = start(c, 1)) != 0)
        goto done;
    if (dir_poll(&c->ab_, c->buf_size_, c->a_, c->b_, cx, &rc, &moved) == WEFT_PENDING)
        return WEFT_PENDING;
done:
    if (out != NULL)
        *(weft_io_copied_t *)out = (weft_io_copied_t){ .bytes = c->ab_.total, .rc = rc };
    return WEFT_READY;
}

static const weft_future_vtable_t copy_vtable = {
    copy_poll, copy_drop, NULL, sizeof(weft_io_copy_t), sizeof(weft_io_copied_t), "weft_io_copy",
};

static weft_io_copy_t make_copy(const weft_future_vtable_t *vt, weft_stream_t *a, weft_stream_t *b,
                                const weft_io_copy_opts_t *opts)
{
    weft_io_copy_t c;
    memset(&c, 0, sizeof c);
    c.future.vtable = vt;
    c.a_ = a;
    c.b_ = b;
    c.buf_size_ = opts != NULL && opts->buf_size != 0 ? opts->buf_size : WEFT_IO_COPY_BUF;
    if (c.buf_size_ > WEFT_IO_COPY_BUF_MAX) /* bounded memory, and no overflow in the two-direction size */
        c.buf_size_ = WEFT_IO_COPY_BUF_MAX;
    uint64_t idle_ms = opts != NULL ? opts->idle_ms : 0;
    c.idle_ns_ = idle_ms > UINT64_MAX / 2000000u ? UINT64_MAX / 2 : idle_ms * 1000000u;
    return c;
}

weft_io_copy_t weft_io_copy(weft_stream_t *reader, weft_stream_t *writer, const weft_io_copy_opts_t *opts)
{
    WEFT__REQUIRE("weft_io_copy", reader);
    WEFT__REQUIRE("weft_io_copy", writer);
    return make_copy(&copy_vtable, reader, writer, opts);
}

/* ---- copy_bidirectional ---------------------------------------------------------- */

/* One direction's step: the copy, then the shutdown of its writer. READY
 * once the direction is finished (*rc 0) or failed. */
static weft_poll_t half_poll(weft__io_copy_dir_t *d, size_t size, weft_stream_t *r, weft_stream_t *w,
                             weft_context_t *cx, int *rc, bool *moved)
{
    if (!d->flushed) {
        if (dir_poll(d, size, r, w, cx, rc, moved) == WEFT_PENDING)
            return WEFT_PENDING;
        if (*rc != 0)
            return WEFT_READY;
        d->flushed = true;
    }
    if (weft_stream_poll_shutdown(w, cx, rc) == WEFT_PENDING)
        return WEFT_PENDING;
    d->shut = true;
    return WEFT_READY;
}

/* The idle timer: WEFT_READY when idle_ns passed since the last byte. */
static weft_poll_t idle_poll(weft_io_copy_t *c, weft_context_t *cx, bool moved)
{
    if (!c->idle_armed_) {
        c->last_ns_ = weft_now_ns();
        c->idle_ = weft_sleep_until(c->last_ns_ + c->idle_ns_);
        c->idle_armed_ = true;
    } else if (moved) {
        c->last_ns_ = weft_now_ns();
    }
    while (weft_future_poll(&c->idle_.future, cx, NULL) == WEFT_READY) {
        uint64_t due = c->last_ns_ + c->idle_ns_;
        if (weft_now_ns() >= due)
            return WEFT_READY;
        weft_sleep_reset(&c->idle_, due); /* bytes moved since it was armed */
    }
    return WEFT_PENDING;
}

static weft_poll_t bidi_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_io_copy_t *c = (weft_io_copy_t *)(void *)f;
    int rc = 0;
    bool moved = false;
    if (!c->started_ && (rc = start(c, 2)) != 0)
        goto done;
    if (!c->ab_.shut && half_poll(&c->ab_, c->buf_size_, c->a_, c->b_, cx, &rc, &moved) == WEFT_READY && rc != 0)
        goto done;
    if (!c->ba_.shut && half_poll(&c->ba_, c->buf_size_, c->b_, c->a_, cx, &rc, &moved) == WEFT_READY && rc != 0)
        goto done;
    if (c->ab_.shut && c->ba_.shut)
        goto done;
    if (c->idle_ns_ != 0 && idle_poll(c, cx, moved) == WEFT_READY) {
        rc = WEFT_ETIMEDOUT;
        goto done;
    }
    return WEFT_PENDING;
done:
    if (out != NULL)
        *(weft_io_copied2_t *)out = (weft_io_copied2_t){ .a_to_b = c->ab_.total, .b_to_a = c->ba_.total, .rc = rc };
    return WEFT_READY;
}

static const weft_future_vtable_t bidi_vtable = {
    bidi_poll, copy_drop, NULL, sizeof(weft_io_copy_t), sizeof(weft_io_copied2_t), "weft_io_copy_bidirectional",
};

weft_io_copy_t weft_io_copy_bidirectional(weft_stream_t *a, weft_stream_t *b, const weft_io_copy_opts_t *opts)
{
    WEFT__REQUIRE("weft_io_copy_bidirectional", a);
    WEFT__REQUIRE("weft_io_copy_bidirectional", b);
    return make_copy(&bidi_vtable, a, b, opts);
}
