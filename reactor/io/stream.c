/* reactor/io/stream.c - the entry points of the byte-stream interface
 * (weft/io.h): they fill in what a stream's vtable leaves out, so every
 * utility can call all five operations on any stream. */
#include <errno.h>

#include "../../runtime/nonnull.h"
#include "weft/error.h"
#include "weft/io.h"
#include "io_internal.h"

static const weft_stream_vtable_t *vt_of(const char *fn, weft_stream_t *s, weft_context_t *cx)
{
    WEFT__REQUIRE(fn, s);
    WEFT__REQUIRE(fn, s->vtable);
    WEFT__REQUIRE(fn, cx);
    return s->vtable;
}

weft_poll_t weft_stream_poll_read(weft_stream_t *s, weft_context_t *cx, void *buf, size_t len, ssize_t *n)
{
    const weft_stream_vtable_t *vt = vt_of("weft_stream_poll_read", s, cx);
    WEFT__REQUIRE("weft_stream_poll_read", n);
    if (vt->poll_read == NULL) {
        *n = WEFT_EBADF; /* a write-only stream */
        return WEFT_READY;
    }
    if (len == 0) {
        *n = 0;
        return WEFT_READY;
    }
    WEFT__REQUIRE("weft_stream_poll_read", buf);
    return vt->poll_read(s, cx, buf, len, n);
}

weft_poll_t weft_stream_poll_write(weft_stream_t *s, weft_context_t *cx, const void *buf, size_t len, ssize_t *n)
{
    const weft_stream_vtable_t *vt = vt_of("weft_stream_poll_write", s, cx);
    WEFT__REQUIRE("weft_stream_poll_write", n);
    if (vt->poll_write == NULL) {
        *n = WEFT_EBADF; /* a read-only stream */
        return WEFT_READY;
    }
    if (len == 0) {
        *n = 0;
        return WEFT_READY;
    }
    WEFT__REQUIRE("weft_stream_poll_write", buf);
    return vt->poll_write(s, cx, buf, len, n);
}

weft_poll_t weft_stream_poll_writev(weft_stream_t *s, weft_context_t *cx, const struct iovec *iov, size_t iovcnt,
                                    ssize_t *n)
{
    const weft_stream_vtable_t *vt = vt_of("weft_stream_poll_writev", s, cx);
    WEFT__REQUIRE("weft_stream_poll_writev", n);
    if (iovcnt > 0)
        WEFT__REQUIRE("weft_stream_poll_writev", iov);
    size_t first = 0;
    while (first < iovcnt && iov[first].iov_len == 0)
        first++;
    if (first == iovcnt) { /* nothing to write */
        *n = vt->poll_write == NULL ? WEFT_EBADF : 0;
        return WEFT_READY;
    }
    if (vt->poll_writev != NULL)
        return vt->poll_writev(s, cx, iov + first, iovcnt - first, n);
    return weft_stream_poll_write(s, cx, iov[first].iov_base, iov[first].iov_len, n);
}

weft_poll_t weft_stream_poll_flush(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    const weft_stream_vtable_t *vt = vt_of("weft_stream_poll_flush", s, cx);
    WEFT__REQUIRE("weft_stream_poll_flush", rc);
    if (vt->poll_flush == NULL) {
        *rc = 0;
        return WEFT_READY;
    }
    return vt->poll_flush(s, cx, rc);
}

weft_poll_t weft_stream_poll_shutdown(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    const weft_stream_vtable_t *vt = vt_of("weft_stream_poll_shutdown", s, cx);
    WEFT__REQUIRE("weft_stream_poll_shutdown", rc);
    if (vt->poll_shutdown == NULL)
        return weft_stream_poll_flush(s, cx, rc);
    return vt->poll_shutdown(s, cx, rc);
}

/* ---- Shared by streams and utilities (io_internal.h) ------------------------ */

size_t weft__iov_window(const struct iovec *iov, size_t n, size_t done, struct iovec *win, size_t max, size_t *k)
{
    size_t i = 0;
    while (i < n && done >= iov[i].iov_len) /* the buffers already written */
        done -= iov[i++].iov_len;
    size_t m = 0, bytes = 0;
    for (; i < n && m < max; i++) {
        if (iov[i].iov_len == done) { /* an empty buffer, or the end of one */
            done = 0;
            continue;
        }
        win[m].iov_base = (char *)iov[i].iov_base + done;
        win[m].iov_len = iov[i].iov_len - done;
        bytes += win[m].iov_len;
        done = 0;
        m++;
    }
    *k = m;
    return bytes;
}

weft_poll_t weft__stream_write_rest(weft_stream_t *s, weft_context_t *cx, const char *buf, size_t len, size_t *done,
                                    ssize_t *res)
{
    while (*done < len) {
        ssize_t n;
        if (weft_stream_poll_write(s, cx, buf + *done, len - *done, &n) == WEFT_PENDING)
            return WEFT_PENDING;
        if (n <= 0) {
            *res = n == 0 ? WEFT_EPIPE : n;
            return WEFT_READY;
        }
        *done += (size_t)n;
    }
    *res = (ssize_t)len;
    return WEFT_READY;
}
