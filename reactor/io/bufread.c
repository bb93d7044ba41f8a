/* reactor/io/bufread.c - the buffered reader (weft/bufio.h) and the
 * growable byte buffer its line reads fill.
 *
 * The reader holds buf_[pos_ .. end_) of its inner stream. It reads only
 * when asked for bytes it does not hold: fill_buf reads into an empty
 * buffer; the line search (weft__bufreader_poll_until) reads behind the
 * bytes it holds, after moving them to the front (one memmove of a partial
 * line per read, never more than the capacity). A line is found with one
 * memchr per chunk, resuming where the last search stopped, so the cost is
 * linear in the bytes read whatever the chunk sizes.
 */
#include <stddef.h>
#include <string.h>

#include "../../runtime/construct.h"
#include "../../runtime/internal.h"
#include "../../runtime/nonnull.h"
#include "bufio_internal.h"


/* ---- The reader --------------------------------------------------------------------------- */

static weft_bufreader_t *reader_of(weft_stream_t *s)
{
    return (weft_bufreader_t *)(void *)s;
}

static size_t buffered(const weft_bufreader_t *r)
{
    return r->end_ - r->pos_;
}

weft_poll_t weft_bufreader_poll_fill_buf(weft_bufreader_t *r, weft_context_t *cx, const void **data, ssize_t *n)
{
    WEFT__REQUIRE("weft_bufreader_poll_fill_buf", r);
    WEFT__REQUIRE("weft_bufreader_poll_fill_buf", n);
    if (r->buf_ == NULL)
        weft_panic(WEFT_SITE, "weft_bufreader_poll_fill_buf: the reader is not initialised (or was freed)");
    if (r->pos_ == r->end_) {
        ssize_t got;
        if (weft_stream_poll_read(r->inner_, cx, r->buf_, r->cap_, &got) == WEFT_PENDING)
            return WEFT_PENDING;
        r->pos_ = 0;
        r->end_ = got > 0 ? (size_t)got : 0;
        if (got <= 0) {
            *n = got;
            return WEFT_READY;
        }
    }
    if (data != NULL)
        *data = r->buf_ + r->pos_;
    *n = (ssize_t)buffered(r);
    return WEFT_READY;
}

weft_poll_t weft__bufreader_poll_more(weft_bufreader_t *r, weft_context_t *cx, ssize_t *n)
{
    size_t held = buffered(r);
    if (r->pos_ > 0 && r->end_ == r->cap_) { /* room only at the front: move the held bytes there */
        memmove(r->buf_, r->buf_ + r->pos_, held);
        r->pos_ = 0;
        r->end_ = held;
    } else if (held == 0) {
        r->pos_ = r->end_ = 0;
    }
    ssize_t got;
    if (weft_stream_poll_read(r->inner_, cx, r->buf_ + r->end_, r->cap_ - r->end_, &got) == WEFT_PENDING)
        return WEFT_PENDING;
    if (got > 0)
        r->end_ += (size_t)got;
    *n = got;
    return WEFT_READY;
}

/* Moves len buffered bytes to the end of acc. */
static int take_into(weft_bufreader_t *r, weft_bytes_t *acc, size_t len)
{
    int rc = weft_bytes_append(acc, r->buf_ + r->pos_, len);
    if (rc == 0)
        r->pos_ += len;
    return rc;
}

static weft_poll_t until_err(weft__until_t *res, int err)
{
    res->kind = WEFT__UNTIL_ERR;
    res->err = err;
    return WEFT_READY;
}

/* Hands out a line of len buffered bytes: in place, or appended to acc. */
static weft_poll_t until_line(weft_bufreader_t *r, weft_bytes_t *acc, bool view, size_t len,
                              weft__until_kind_t kind, weft__until_t *res)
{
    if (view && acc->len == 0) {
        res->data = r->buf_ + r->pos_;
        res->len = len;
        r->pos_ += len;
    } else {
        int rc = take_into(r, acc, len);
        if (rc != 0)
            return until_err(res, rc);
        res->data = acc->data;
        res->len = acc->len;
    }
    res->kind = kind;
    return WEFT_READY;
}

weft_poll_t weft__bufreader_poll_until(weft_bufreader_t *r, weft_context_t *cx, unsigned char delim, weft_bytes_t *acc,
                                       size_t max, bool view, size_t *scanned, weft__until_t *res)
{
    size_t none = 0;
    if (!view)
        scanned = &none;
    for (;;) {
        if (acc->len >= max)
            return until_err(res, WEFT_EMSGSIZE);
        size_t avail = buffered(r), room = max - acc->len;
        size_t window = avail < room ? avail : room; /* the bytes the line may still take */
        if (*scanned < window) {
            const char *p = r->buf_ + r->pos_;
            const char *hit = memchr(p + *scanned, delim, window - *scanned);
            if (hit != NULL)
                return until_line(r, acc, view, (size_t)(hit - p) + 1, WEFT__UNTIL_LINE, res);
            *scanned = window;
        }
        if (window == room) { /* the window is full and holds no delimiter */
            int rc = take_into(r, acc, room);
            return until_err(res, rc != 0 ? rc : WEFT_EMSGSIZE);
        }
        /* Keep a partial line in place while the buffer has room for more
         * (for a view later); otherwise move it out to make that room. */
        if (avail > 0 && (!view || acc->len > 0 || (r->pos_ == 0 && r->end_ == r->cap_))) {
            int rc = take_into(r, acc, avail);
            if (rc != 0)
                return until_err(res, rc);
            *scanned = 0;
        }
        ssize_t n;
        if (weft__bufreader_poll_more(r, cx, &n) == WEFT_PENDING)
            return WEFT_PENDING;
        if (n < 0)
            return until_err(res, (int)n);
        if (n == 0) { /* end of stream */
            avail = buffered(r);
            if (avail == 0 && acc->len == 0) {
                res->kind = WEFT__UNTIL_END;
                return WEFT_READY;
            }
            return until_line(r, acc, view, avail, WEFT__UNTIL_TAIL, res);
        }
    }
}

/* ---- The reader's interface (weft_stream_t) -------------------------------------------------- */

static weft_poll_t reader_poll_read(weft_stream_t *s, weft_context_t *cx, void *buf, size_t len, ssize_t *n)
{
    weft_bufreader_t *r = reader_of(s);
    if (r->pos_ == r->end_ && len >= r->cap_) /* a large read into an empty buffer: no copy */
        return weft_stream_poll_read(r->inner_, cx, buf, len, n);
    const void *data;
    ssize_t got;
    if (weft_bufreader_poll_fill_buf(r, cx, &data, &got) == WEFT_PENDING)
        return WEFT_PENDING;
    if (got > 0) {
        if ((size_t)got > len)
            got = (ssize_t)len;
        memcpy(buf, data, (size_t)got);
        r->pos_ += (size_t)got;
    }
    *n = got;
    return WEFT_READY;
}

static weft_poll_t reader_poll_write(weft_stream_t *s, weft_context_t *cx, const void *buf, size_t len, ssize_t *n)
{
    return weft_stream_poll_write(reader_of(s)->inner_, cx, buf, len, n);
}

static weft_poll_t reader_poll_writev(weft_stream_t *s, weft_context_t *cx, const struct iovec *iov, size_t iovcnt,
                                      ssize_t *n)
{
    return weft_stream_poll_writev(reader_of(s)->inner_, cx, iov, iovcnt, n);
}

static weft_poll_t reader_poll_flush(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    return weft_stream_poll_flush(reader_of(s)->inner_, cx, rc);
}

static weft_poll_t reader_poll_shutdown(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    return weft_stream_poll_shutdown(reader_of(s)->inner_, cx, rc);
}

/* Two tables that differ only in flags: the reader is duplex when its
 * inner stream is (its writes touch no reader state). */
#define READER_VTABLE(flags_)                                                                              \
    {                                                                                                      \
        .poll_read = reader_poll_read, .poll_write = reader_poll_write, .poll_writev = reader_poll_writev, \
        .poll_flush = reader_poll_flush, .poll_shutdown = reader_poll_shutdown, .flags = (flags_),         \
        .name = "bufreader",                                                                               \
    }
static const weft_stream_vtable_t reader_vtable = READER_VTABLE(0);
static const weft_stream_vtable_t reader_duplex_vtable = READER_VTABLE(WEFT_STREAM_DUPLEX);

int weft_bufreader_init(weft_bufreader_t *r, weft_stream_t *inner, size_t capacity)
{
    WEFT__REQUIRE("weft_bufreader_init", r);
    WEFT__REQUIRE("weft_bufreader_init", inner);
    WEFT__REQUIRE("weft_bufreader_init", inner->vtable);
    memset(r, 0, sizeof *r);
    size_t cap = capacity != 0 ? capacity : WEFT_BUFIO_DEFAULT_CAPACITY;
    char *buf = weft__alloc(cap);
    if (buf == NULL)
        return WEFT_ENOMEM;
    r->stream_.vtable = (inner->vtable->flags & WEFT_STREAM_DUPLEX) ? &reader_duplex_vtable : &reader_vtable;
    r->inner_ = inner;
    r->buf_ = buf;
    r->cap_ = cap;
    return 0;
}

void weft_bufreader_free(weft_bufreader_t *r)
{
    WEFT__REQUIRE("weft_bufreader_free", r);
    if (r->buf_ != NULL)
        weft__free(r->buf_, r->cap_);
    r->buf_ = NULL;
    r->cap_ = r->pos_ = r->end_ = 0;
}

weft_stream_t *weft_bufreader_as(weft_bufreader_t *r)
{
    WEFT__REQUIRE("weft_bufreader_as", r);
    return &r->stream_;
}

weft_stream_t *weft_bufreader_inner(const weft_bufreader_t *r)
{
    WEFT__REQUIRE("weft_bufreader_inner", r);
    return r->inner_;
}

size_t weft_bufreader_buffered(const weft_bufreader_t *r, const void **data)
{
    WEFT__REQUIRE("weft_bufreader_buffered", r);
    if (data != NULL)
        *data = r->buf_ + r->pos_;
    return buffered(r);
}

void weft_bufreader_consume(weft_bufreader_t *r, size_t n)
{
    WEFT__REQUIRE("weft_bufreader_consume", r);
    if (n > buffered(r))
        weft_panic(WEFT_SITE, "weft_bufreader_consume: %zu bytes consumed, %zu buffered", n, buffered(r));
    r->pos_ += n;
}

/* ---- Futures ---------------------------------------------------------------------------------- */

static weft_poll_t fill_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_bufreader_fill_t *op = (weft_bufreader_fill_t *)(void *)f;
    WEFT__COOP_ENTER(cx);
    ssize_t n;
    if (weft_bufreader_poll_fill_buf(op->r_, cx, op->data_, &n) == WEFT_PENDING)
        return weft__coop_pending();
    if (out != NULL)
        *(ssize_t *)out = n;
    return WEFT_READY;
}

static const weft_future_vtable_t fill_vtable = {
    fill_poll, NULL, NULL, sizeof(weft_bufreader_fill_t), sizeof(ssize_t), "weft_bufreader_fill_buf",
};

weft_bufreader_fill_t weft_bufreader_fill_buf(weft_bufreader_t *r, const void **data)
{
    WEFT__REQUIRE("weft_bufreader_fill_buf", r);
    return (weft_bufreader_fill_t){ { &fill_vtable }, r, data };
}

/* The out-of-line part of the poll (weft/bufio.h inlines the common case:
 * a line already buffered). */
weft_poll_t weft__read_until_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_read_until_t *op = (weft_read_until_t *)(void *)f;
    weft_bufreader_t *r = op->r_;
    if (WEFT_UNLIKELY(r == NULL || op->out_ == NULL))
        weft_panic(WEFT_SITE, "weft_bufreader_read_until: %s is NULL", r == NULL ? "r" : "out");
    if (r->buf_ == NULL)
        weft_panic(WEFT_SITE, "weft_bufreader_read_until: the reader is not initialised (or was freed)");
    weft_bytes_t *o = op->out_;
    WEFT__COOP_ENTER(cx);
    weft__until_t res;
    if (weft__bufreader_poll_until(r, cx, (unsigned char)op->delim_, o, op->max_, false, NULL, &res) ==
        WEFT_PENDING)
        return weft__coop_pending();
    ssize_t rc = res.kind == WEFT__UNTIL_ERR ? res.err
               : res.kind == WEFT__UNTIL_END ? 0
                                             : (ssize_t)(op->out_->len - op->start_);
    if (out != NULL)
        *(ssize_t *)out = rc;
    return WEFT_READY;
}
