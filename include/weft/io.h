/* weft/io.h - the byte-stream interface: one poll-level contract that TCP
 * and Unix streams, pipes, stdio, child-process pipes, files and the
 * in-memory duplex pair implement, and that every I/O utility (read_exact,
 * write_all, copy, buffered readers and writers, codecs) is written
 * against. A user implements it for their own type (a TLS layer over a TCP
 * stream, a compressor, a test double) and every utility works on it.
 *
 * A stream is any struct whose first member is a weft_stream_t, or that
 * hands one out (weft_tcp_stream_as and the like return a pointer to the
 * one embedded in the handle). The vtable's poll functions follow the
 * future contract: each either finishes (WEFT_READY, with its result
 * written) or arranges for cx's waker to be woken when it is worth
 * calling again and returns WEFT_PENDING. Only the waker of the most
 * recent pending call in each direction is kept: one task reads and one
 * task writes at a time (weft_io_split hands out halves that follow that
 * rule).
 *
 * Results: bytes (>= 0) or a negative errno (WEFT_EPIPE, -ECONNRESET,
 * -EBADF for a closed handle, ...). A read of 0 bytes into a non-empty
 * buffer means end of stream; a zero-length read or write returns 0 at
 * once.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <sys/types.h>
#include <sys/uio.h>

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_stream_s weft_stream_t;

/* weft_stream_vtable_t.flags */
enum {
    /* A read and a write may be polled at the same time from two threads
     * (the two directions share no state): sockets, pipes, the duplex
     * pair. weft_io_split hands out such a stream's halves directly;
     * otherwise the halves take turns through a lock. */
    WEFT_STREAM_DUPLEX = 1u << 0,
};

typedef struct weft_stream_vtable_s {
    /* Reads up to len bytes into buf; *n: the count (0 = end of stream) or
     * a negative errno. NULL: the stream is write-only. */
    weft_poll_t (*poll_read)(weft_stream_t *s, weft_context_t *cx, void *buf, size_t len, ssize_t *n);
    /* Writes up to len bytes from buf; *n: the count taken (> 0 when
     * len > 0) or a negative errno. NULL: read-only. */
    weft_poll_t (*poll_write)(weft_stream_t *s, weft_context_t *cx, const void *buf, size_t len, ssize_t *n);
    /* Writes from iovcnt buffers in order, as one call where the stream
     * can (sendmsg, writev); *n as poll_write. NULL: weft_stream_poll_writev
     * writes the first non-empty buffer through poll_write. */
    weft_poll_t (*poll_writev)(weft_stream_t *s, weft_context_t *cx, const struct iovec *iov, size_t iovcnt,
                               ssize_t *n);
    /* Pushes out anything the stream holds back (a buffered writer's
     * buffer, a TLS record); *rc: 0 or a negative errno. NULL: nothing is
     * ever held back. */
    weft_poll_t (*poll_flush)(weft_stream_t *s, weft_context_t *cx, int *rc);
    /* Flushes, then closes the write direction (TCP: FIN; a pipe: closes
     * its write end): the peer reads end of stream. Reading may go on.
     * *rc: 0 or a negative errno. NULL: flush only. */
    weft_poll_t (*poll_shutdown)(weft_stream_t *s, weft_context_t *cx, int *rc);
    unsigned flags; /* WEFT_STREAM_* */
    const char *name; /* for diagnostics: "tcp", "pipe", "file", ... */
} weft_stream_vtable_t;

struct weft_stream_s {
    const weft_stream_vtable_t *vtable;
};

/* The interface's entry points, for writers of utilities and adapters:
 * they check what the vtable leaves out (a direction the stream does not
 * have answers -EBADF; a missing writev, flush or shutdown gets the
 * default described above) and answer a zero-length transfer with 0
 * without calling the stream. */
WEFT_API weft_poll_t weft_stream_poll_read(weft_stream_t *s, weft_context_t *cx, void *buf, size_t len,
                                           ssize_t *n);
WEFT_API weft_poll_t weft_stream_poll_write(weft_stream_t *s, weft_context_t *cx, const void *buf, size_t len,
                                            ssize_t *n);
WEFT_API weft_poll_t weft_stream_poll_writev(weft_stream_t *s, weft_context_t *cx, const struct iovec *iov,
                                             size_t iovcnt, ssize_t *n);
WEFT_API weft_poll_t weft_stream_poll_flush(weft_stream_t *s, weft_context_t *cx, int *rc);
WEFT_API weft_poll_t weft_stream_poll_shutdown(weft_stream_t *s, weft_context_t *cx, int *rc);

#ifdef __cplusplus
}
#endif

#endif
