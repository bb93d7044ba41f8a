/* reactor/io/io_internal.h - pieces of the byte-stream layer (stream.c)
 * that more than one stream or utility uses: the rest of a vectored write
 * after a short one, and the write-all loop. */
#ifndef WEFT_IO_INTERNAL_H
#define WEFT_IO_INTERNAL_H

#include <sys/uio.h>

#include "weft/io.h"

/* What is left of iov[0..n) once `done` bytes of it went: at most max
 * iovecs, copied into win (empty ones skipped), their count in *k.
 * Returns their bytes; 0 when every byte went. */
size_t weft__iov_window(const struct iovec *iov, size_t n, size_t done, struct iovec *win, size_t max, size_t *k);

/* Writes buf[*done..len) to s, moving *done forward as bytes go.
 * WEFT_READY with *res: len once every byte went, or the stream's error
 * (WEFT_EPIPE when it takes 0 bytes, as it never will take the rest);
 * WEFT_PENDING when the stream is (*done says what went meanwhile). */
weft_poll_t weft__stream_write_rest(weft_stream_t *s, weft_context_t *cx, const char *buf, size_t len, size_t *done,
                                    ssize_t *res);

#endif
