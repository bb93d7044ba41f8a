/* reactor/io/util.c - the one-shot and loop utilities of weft/io.h over
 * any byte stream: read, read_exact, write, write_all, writev, writev_all,
 * flush, shutdown (one frame type, one vtable each) and read_to_end.
 *
 * Each poll calls the stream through the interface's entry points
 * (reactor/io/stream.c) until its work is done or the stream answers
 * WEFT_PENDING; the stream registered the task's waker then, so the
 * future simply returns WEFT_PENDING too. The loops keep their position
 * in the frame (done_), which is why a dropped loop has moved exactly the
 * bytes its progress pointer reports. */
#include <errno.h>
#include <string.h>

#include "../../runtime/internal.h"
#include "../../runtime/nonnull.h"
#include "weft/error.h"
#include "weft/io.h"
#include "io_internal.h"

static inline weft_io_op_t *op_of(weft_future_t *f)
{
    return (weft_io_op_t *)(void *)f;
}

static inline void put_ssize(void *out, ssize_t v)
{
    if (out != NULL)
        *(ssize_t *)out = v;
}

static inline void put_int(void *out, int v)
{
    if (out != NULL)
        *(int *)out = v;
}

static inline void note_progress(weft_io_op_t *op)
{
    if (op->progress_ != NULL)
        *op->progress_ = op->done_;
}

/* ---- One transfer ------------------------------------------------------------ */

static weft_poll_t read_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_io_op_t *op = op_of(f);
    ssize_t n;
    if (weft_stream_poll_read(op->s_, cx, op->u_.rbuf, op->len_, &n) == WEFT_PENDING)
        return WEFT_PENDING;
    put_ssize(out, n);
    return WEFT_READY;
}

static weft_poll_t write_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_io_op_t *op = op_of(f);
    ssize_t n;
    if (weft_stream_poll_write(op->s_, cx, op->u_.wbuf, op->len_, &n) == WEFT_PENDING)
        return WEFT_PENDING;
    put_ssize(out, n);
    return WEFT_READY;
}

static weft_poll_t writev_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_io_op_t *op = op_of(f);
    ssize_t n;
    if (weft_stream_poll_writev(op->s_, cx, op->u_.iov, op->len_, &n) == WEFT_PENDING)
        return WEFT_PENDING;
    put_ssize(out, n);
    return WEFT_READY;
}

static weft_poll_t flush_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    int rc;
    if (weft_stream_poll_flush(op_of(f)->s_, cx, &rc) == WEFT_PENDING)
        return WEFT_PENDING;
    put_int(out, rc);
    return WEFT_READY;
}

static weft_poll_t shutdown_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    int rc;
    if (weft_stream_poll_shutdown(op_of(f)->s_, cx, &rc) == WEFT_PENDING)
        return WEFT_PENDING;
    put_int(out, rc);
    return WEFT_READY;
}

/* ---- Loops ------------------------------------------------------------------- */

static weft_poll_t read_exact_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_io_op_t *op = op_of(f);
    while (op->done_ < op->len_) {
        ssize_t n;
        if (weft_stream_poll_read(op->s_, cx, (char *)op->u_.rbuf + op->done_, op->len_ - op->done_, &n) ==
            WEFT_PENDING)
            return WEFT_PENDING;
        if (n <= 0) {
            put_ssize(out, n == 0 ? WEFT_EPIPE : n);
            return WEFT_READY;
        }
        op->done_ += (size_t)n;
        note_progress(op);
    }
    put_ssize(out, (ssize_t)op->len_);
    return WEFT_READY;
}

static weft_poll_t write_all_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_io_op_t *op = op_of(f);
    ssize_t n;
    weft_poll_t p = weft__stream_write_rest(op->s_, cx, op->u_.wbuf, op->len_, &op->done_, &n);
    note_progress(op);
    if (p == WEFT_PENDING)
        return WEFT_PENDING;
    put_ssize(out, n);
    return WEFT_READY;
}

/* How many iovecs a writev_all hands the stream per call: the rest of the
 * current buffer plus the whole ones after it, copied to the stack. */
#define WRITEV_WINDOW 64

static weft_poll_t writev_all_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_io_op_t *op = op_of(f);
    for (;;) {
        /* done_ is the byte offset: the window starts after it. */
        struct iovec win[WRITEV_WINDOW];
        size_t k;
        if (weft__iov_window(op->u_.iov, op->len_, op->done_, win, WRITEV_WINDOW, &k) == 0) { /* every byte written */
            put_ssize(out, (ssize_t)op->done_);
            return WEFT_READY;
        }
        ssize_t n;
        if (weft_stream_poll_writev(op->s_, cx, win, k, &n) == WEFT_PENDING)
            return WEFT_PENDING;
        if (n <= 0) {
            put_ssize(out, n == 0 ? WEFT_EPIPE : n);
            return WEFT_READY;
        }
        op->done_ += (size_t)n;
        note_progress(op);
    }
}

#define OP_VTABLE(name, out_type)                                                                  \
    static const weft_future_vtable_t name##_vtable = { name##_poll, NULL, NULL, sizeof(weft_io_op_t), \
                                                        sizeof(out_type), "weft_io_" #name }
OP_VTABLE(read, ssize_t);
OP_VTABLE(read_exact, ssize_t);
OP_VTABLE(write, ssize_t);
OP_VTABLE(write_all, ssize_t);
OP_VTABLE(writev, ssize_t);
OP_VTABLE(writev_all, ssize_t);
OP_VTABLE(flush, int);
OP_VTABLE(shutdown, int);

static weft_io_op_t make_op(const weft_future_vtable_t *vt, weft_stream_t *s, const void *p, size_t len,
                            size_t *progress)
{
    weft_io_op_t op;
    memset(&op, 0, sizeof op);
    op.future.vtable = vt;
    op.s_ = s;
    op.u_.wbuf = p;
    op.len_ = len;
    op.progress_ = progress;
    if (progress != NULL)
        *progress = 0;
    return op;
}

weft_io_op_t weft_io_read(weft_stream_t *s, void *buf, size_t len)
{
    WEFT__REQUIRE("weft_io_read", s);
    return make_op(&read_vtable, s, buf, len, NULL);
}

weft_io_op_t weft_io_read_exact(weft_stream_t *s, void *buf, size_t len, size_t *progress)
{
    WEFT__REQUIRE("weft_io_read_exact", s);
    return make_op(&read_exact_vtable, s, buf, len, progress);
}

weft_io_op_t weft_io_write(weft_stream_t *s, const void *buf, size_t len)
{
    WEFT__REQUIRE("weft_io_write", s);
    return make_op(&write_vtable, s, buf, len, NULL);
}

weft_io_op_t weft_io_write_all(weft_stream_t *s, const void *buf, size_t len, size_t *progress)
{
    WEFT__REQUIRE("weft_io_write_all", s);
    return make_op(&write_all_vtable, s, buf, len, progress);
}

weft_io_op_t weft_io_writev(weft_stream_t *s, const struct iovec *iov, size_t iovcnt)
{
    WEFT__REQUIRE("weft_io_writev", s);
    weft_io_op_t op = make_op(&writev_vtable, s, NULL, iovcnt, NULL);
    op.u_.iov = iov;
    return op;
}

weft_io_op_t weft_io_writev_all(weft_stream_t *s, const struct iovec *iov, size_t iovcnt, size_t *progress)
{
    WEFT__REQUIRE("weft_io_writev_all", s);
    if (iovcnt > 0)
        WEFT__REQUIRE("weft_io_writev_all", iov);
    weft_io_op_t op = make_op(&writev_all_vtable, s, NULL, iovcnt, progress);
    op.u_.iov = iov;
    return op;
}

weft_io_op_t weft_io_flush(weft_stream_t *s)
{
    WEFT__REQUIRE("weft_io_flush", s);
    return make_op(&flush_vtable, s, NULL, 0, NULL);
}

weft_io_op_t weft_io_shutdown(weft_stream_t *s)
{
    WEFT__REQUIRE("weft_io_shutdown", s);
    return make_op(&shutdown_vtable, s, NULL, 0, NULL);
}

/* ---- weft_bytes_t ---------------------------------------------------------------------- */

int weft_bytes_reserve(weft_bytes_t *b, size_t extra)
{
    WEFT__REQUIRE("weft_bytes_reserve", b);
    if (b->cap - b->len >= extra)
        return 0;
    if (extra > SIZE_MAX - b->len)
        return WEFT_ENOMEM;
    size_t want = b->len + extra, cap = b->cap < 64 ? 64 : b->cap;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    char *p = weft__alloc(cap); /* not realloc: blocks are freed with their size */
    if (p == NULL)
        return WEFT_ENOMEM;
    if (b->len > 0)
        memcpy(p, b->data, b->len);
    if (b->data != NULL)
        weft__free(b->data, b->cap);
    b->data = p;
    b->cap = cap;
    return 0;
}

int weft_bytes_append(weft_bytes_t *b, const void *p, size_t len)
{
    int rc = weft_bytes_reserve(b, len);
    if (rc == 0 && len > 0) {
        memcpy(b->data + b->len, p, len);
        b->len += len;
    }
    return rc;
}

void weft_bytes_free(weft_bytes_t *b)
{
    WEFT__REQUIRE("weft_bytes_free", b);
    if (b->data != NULL)
        weft__free(b->data, b->cap);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- read_to_end ------------------------------------------------------------- */

/* The first allocation of an empty buffer; it then doubles. */
#define READ_TO_END_FIRST 4096

/* Makes room for more bytes in b, never past max. Returns 0 or WEFT_ENOMEM. */
static int grow(weft_bytes_t *b, size_t max)
{
    size_t want = b->cap < READ_TO_END_FIRST / 2 ? READ_TO_END_FIRST : b->cap * 2;
    if (want > max || want < b->cap) /* the cap, or an overflow */
        want = max;
    char *p = weft__realloc(b->data, want);
    if (p == NULL)
        return WEFT_ENOMEM;
    b->data = p;
    b->cap = want;
    return 0;
}

static weft_poll_t read_to_end_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_io_read_to_end_t *r = (weft_io_read_to_end_t *)(void *)f;
    weft_bytes_t *b = r->buf_;
    if (!r->started_) {
        r->started_ = true;
        r->start_ = b->len;
    }
    ssize_t rc;
    for (;;) {
        ssize_t n;
        if (b->len > r->max_) { /* a reused buffer already past the cap */
            rc = WEFT_EMSGSIZE;
            break;
        }
        if (b->len == r->max_) {
            /* Full: one probe byte tells end of stream from too much. */
            unsigned char probe;
            if (weft_stream_poll_read(r->s_, cx, &probe, 1, &n) == WEFT_PENDING)
                return WEFT_PENDING;
            rc = n == 0 ? (ssize_t)(b->len - r->start_) : n < 0 ? n : WEFT_EMSGSIZE;
            break;
        }
        if (b->len == b->cap && (rc = grow(b, r->max_)) != 0)
            break;
        /* Never past max, even into a reused buffer's larger block. */
        size_t room = (b->cap < r->max_ ? b->cap : r->max_) - b->len;
        if (weft_stream_poll_read(r->s_, cx, b->data + b->len, room, &n) == WEFT_PENDING)
            return WEFT_PENDING;
        if (n <= 0) {
            rc = n == 0 ? (ssize_t)(b->len - r->start_) : n;
            break;
        }
        b->len += (size_t)n;
    }
    put_ssize(out, rc);
    return WEFT_READY;
}

static const weft_future_vtable_t read_to_end_vtable = {
    read_to_end_poll, NULL, NULL, sizeof(weft_io_read_to_end_t), sizeof(ssize_t), "weft_io_read_to_end",
};

weft_io_read_to_end_t weft_io_read_to_end(weft_stream_t *s, weft_bytes_t *buf, size_t max)
{
    WEFT__REQUIRE("weft_io_read_to_end", s);
    WEFT__REQUIRE("weft_io_read_to_end", buf);
    weft_io_read_to_end_t r;
    memset(&r, 0, sizeof r);
    r.future.vtable = &read_to_end_vtable;
    r.s_ = s;
    r.buf_ = buf;
    r.max_ = max;
    return r;
}
