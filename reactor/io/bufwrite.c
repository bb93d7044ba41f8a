/* reactor/io/bufwrite.c - the buffered writer (weft/bufio.h).
 *
 * Writes gather in buf_[0 .. len_); writing them out (when a write does
 * not fit, and on flush or shutdown) sends buf_[sent_ .. len_) to the inner
 * stream until none is left, so a flush interrupted by a pending inner
 * write resumes where it stopped, and a failed one keeps the unsent bytes.
 * A write of at least the capacity, once the buffer is empty, goes to the
 * inner stream directly: copying it would only add a memcpy.
 */
#include <stddef.h>
#include <string.h>

#include "../../runtime/construct.h"
#include "../../runtime/internal.h"
#include "../../runtime/nonnull.h"
#include "bufio_internal.h"
#include "io_internal.h"

static weft_bufwriter_t *writer_of(weft_stream_t *s)
{
    return (weft_bufwriter_t *)(void *)s;
}

/* Writes the buffer out: ready with *rc 0 once it is empty, or with the
 * inner stream's error (the unsent bytes stay buffered). */
static weft_poll_t write_out(weft_bufwriter_t *w, weft_context_t *cx, int *rc)
{
    while (w->sent_ < w->len_) {
        ssize_t n;
        if (weft_stream_poll_write(w->inner_, cx, w->buf_ + w->sent_, w->len_ - w->sent_, &n) == WEFT_PENDING)
            return WEFT_PENDING;
        if (n <= 0) {
            *rc = n < 0 ? (int)n : WEFT_EPIPE; /* a stream that takes nothing is closed */
            return WEFT_READY;
        }
        w->sent_ += (size_t)n;
    }
    w->sent_ = w->len_ = 0;
    *rc = 0;
    return WEFT_READY;
}

static void require_init(const weft_bufwriter_t *w, const char *fn)
{
    if (w->buf_ == NULL)
        weft_panic(WEFT_SITE, "%s: the writer is not initialised (or was freed)", fn);
}

static weft_poll_t writer_poll_write(weft_stream_t *s, weft_context_t *cx, const void *buf, size_t len, ssize_t *n)
{
    weft_bufwriter_t *w = writer_of(s);
    require_init(w, "weft_bufwriter poll_write");
    if (len > w->cap_ - w->len_) {
        int rc;
        if (write_out(w, cx, &rc) == WEFT_PENDING)
            return WEFT_PENDING;
        if (rc != 0) {
            *n = rc;
            return WEFT_READY;
        }
    }
    if (len >= w->cap_) /* the buffer is empty here */
        return weft_stream_poll_write(w->inner_, cx, buf, len, n);
    memcpy(w->buf_ + w->len_, buf, len);
    w->len_ += len;
    *n = (ssize_t)len;
    return WEFT_READY;
}

static weft_poll_t writer_poll_writev(weft_stream_t *s, weft_context_t *cx, const struct iovec *iov, size_t iovcnt,
                                      ssize_t *n)
{
    weft_bufwriter_t *w = writer_of(s);
    require_init(w, "weft_bufwriter poll_writev");
    size_t total = 0;
    for (size_t i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total > w->cap_ - w->len_) {
        int rc;
        if (write_out(w, cx, &rc) == WEFT_PENDING)
            return WEFT_PENDING;
        if (rc != 0) {
            *n = rc;
            return WEFT_READY;
        }
    }
    if (total >= w->cap_)
        return weft_stream_poll_writev(w->inner_, cx, iov, iovcnt, n);
    for (size_t i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > 0)
            memcpy(w->buf_ + w->len_, iov[i].iov_base, iov[i].iov_len);
        w->len_ += iov[i].iov_len;
    }
    *n = (ssize_t)total;
    return WEFT_READY;
}

static weft_poll_t writer_poll_flush(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    weft_bufwriter_t *w = writer_of(s);
    require_init(w, "weft_bufwriter poll_flush");
    if (write_out(w, cx, rc) == WEFT_PENDING)
        return WEFT_PENDING;
    if (*rc != 0)
        return WEFT_READY;
    return weft_stream_poll_flush(w->inner_, cx, rc);
}

static weft_poll_t writer_poll_shutdown(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    weft_bufwriter_t *w = writer_of(s);
    require_init(w, "weft_bufwriter poll_shutdown");
    if (write_out(w, cx, rc) == WEFT_PENDING)
        return WEFT_PENDING;
    if (*rc != 0)
        return WEFT_READY;
    return weft_stream_poll_shutdown(w->inner_, cx, rc);
}

static weft_poll_t writer_poll_read(weft_stream_t *s, weft_context_t *cx, void *buf, size_t len, ssize_t *n)
{
    return weft_stream_poll_read(writer_of(s)->inner_, cx, buf, len, n);
}

/* Duplex when the inner stream is: reads touch no writer state. */
#define WRITER_VTABLE(flags_)                                                                              \
    {                                                                                                      \
        .poll_read = writer_poll_read, .poll_write = writer_poll_write, .poll_writev = writer_poll_writev, \
        .poll_flush = writer_poll_flush, .poll_shutdown = writer_poll_shutdown, .flags = (flags_),         \
        .name = "bufwriter",                                                                               \
    }
static const weft_stream_vtable_t writer_vtable = WRITER_VTABLE(0);
static const weft_stream_vtable_t writer_duplex_vtable = WRITER_VTABLE(WEFT_STREAM_DUPLEX);

int weft_bufwriter_init(weft_bufwriter_t *w, weft_stream_t *inner, size_t capacity)
{
    WEFT__REQUIRE("weft_bufwriter_init", w);
    WEFT__REQUIRE("weft_bufwriter_init", inner);
    WEFT__REQUIRE("weft_bufwriter_init", inner->vtable);
    memset(w, 0, sizeof *w);
    size_t cap = capacity != 0 ? capacity : WEFT_BUFIO_DEFAULT_CAPACITY;
    char *buf = weft__alloc(cap);
    if (buf == NULL)
        return WEFT_ENOMEM;
    w->stream_.vtable = (inner->vtable->flags & WEFT_STREAM_DUPLEX) ? &writer_duplex_vtable : &writer_vtable;
    w->inner_ = inner;
    w->buf_ = buf;
    w->cap_ = cap;
    return 0;
}

size_t weft_bufwriter_free(weft_bufwriter_t *w)
{
    WEFT__REQUIRE("weft_bufwriter_free", w);
    size_t lost = w->len_ - w->sent_;
    if (w->buf_ != NULL)
        weft__free(w->buf_, w->cap_);
    w->buf_ = NULL;
    w->cap_ = w->len_ = w->sent_ = 0;
    return lost;
}

weft_stream_t *weft_bufwriter_as(weft_bufwriter_t *w)
{
    WEFT__REQUIRE("weft_bufwriter_as", w);
    return &w->stream_;
}

weft_stream_t *weft_bufwriter_inner(const weft_bufwriter_t *w)
{
    WEFT__REQUIRE("weft_bufwriter_inner", w);
    return w->inner_;
}

size_t weft_bufwriter_buffered(const weft_bufwriter_t *w)
{
    WEFT__REQUIRE("weft_bufwriter_buffered", w);
    return w->len_ - w->sent_;
}

/* ---- Futures ---------------------------------------------------------------------------------- */

/* The out-of-line part of the poll (weft/bufio.h inlines the common case:
 * the bytes fit in the buffer). */
weft_poll_t weft__bufwriter_write_all_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_bufwriter_op_t *op = (weft_bufwriter_op_t *)(void *)f;
    weft_bufwriter_t *w = op->w_;
    if (WEFT_UNLIKELY(w == NULL || (op->buf_ == NULL && op->len_ > 0)))
        weft_panic(WEFT_SITE, "weft_bufwriter_write_all: %s is NULL", w == NULL ? "w" : "buf");
    require_init(w, "weft_bufwriter_write_all");
    WEFT__COOP_ENTER(cx);
    ssize_t rc;
    if (weft__stream_write_rest(&w->stream_, cx, op->buf_, op->len_, &op->done_, &rc) == WEFT_PENDING)
        return weft__coop_pending();
    if (out != NULL)
        *(ssize_t *)out = rc;
    return WEFT_READY;
}

static weft_poll_t flush_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_bufwriter_op_t *op = (weft_bufwriter_op_t *)(void *)f;
    WEFT__COOP_ENTER(cx);
    int rc;
    if (weft_stream_poll_flush(&op->w_->stream_, cx, &rc) == WEFT_PENDING)
        return weft__coop_pending();
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static weft_poll_t shutdown_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_bufwriter_op_t *op = (weft_bufwriter_op_t *)(void *)f;
    WEFT__COOP_ENTER(cx);
    int rc;
    if (weft_stream_poll_shutdown(&op->w_->stream_, cx, &rc) == WEFT_PENDING)
        return weft__coop_pending();
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static const weft_future_vtable_t flush_vtable = {
    flush_poll, NULL, NULL, sizeof(weft_bufwriter_op_t), sizeof(int), "weft_bufwriter_flush",
};
static const weft_future_vtable_t shutdown_vtable = {
    shutdown_poll, NULL, NULL, sizeof(weft_bufwriter_op_t), sizeof(int), "weft_bufwriter_shutdown",
};

/* The caller copies the returned future with 16-byte loads: write it in
 * 16-byte pieces (runtime/construct.h). */
#ifdef WEFT__PAIR_STORES
_Static_assert(offsetof(weft_bufwriter_op_t, w_) == 8 && offsetof(weft_bufwriter_op_t, buf_) == 16 &&
                   offsetof(weft_bufwriter_op_t, len_) == 24 && offsetof(weft_bufwriter_op_t, done_) == 32 &&
                   sizeof(weft_bufwriter_op_t) == 40,
               "weft_bufwriter_op_t layout (make_op)");
#endif
static inline weft_bufwriter_op_t make_op(const weft_future_vtable_t *vt, weft_bufwriter_t *w, const void *buf,
                                          size_t len)
{
    weft_bufwriter_op_t op;
#ifdef WEFT__PAIR_STORES
    unsigned char *p = (unsigned char *)&op;
    weft__put_pair(p, (uintptr_t)vt, (uintptr_t)w);
    weft__put_pair(p + 16, (uintptr_t)buf, len);
    memset(p + 32, 0, 8);
#else
    op = (weft_bufwriter_op_t){ { vt }, w, buf, len, 0 };
#endif
    return op;
}


weft_bufwriter_op_t weft_bufwriter_flush(weft_bufwriter_t *w)
{
    WEFT__REQUIRE("weft_bufwriter_flush", w);
    return make_op(&flush_vtable, w, NULL, 0);
}

weft_bufwriter_op_t weft_bufwriter_shutdown(weft_bufwriter_t *w)
{
    WEFT__REQUIRE("weft_bufwriter_shutdown", w);
    return make_op(&shutdown_vtable, w, NULL, 0);
}
