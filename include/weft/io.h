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
 * rule). A stream's handle may be closed between polls (a task waiting on
 * it then wakes with -EBADF), never while another thread is inside one of
 * its poll calls.
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
#include "time.h"

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


/* ---- Utilities: futures over any stream ------------------------------------------
 * Each takes a stream (weft_tcp_stream_as, weft_duplex_t's, a split half,
 * your own type) that must stay valid until the future completes or is
 * dropped, as must every buffer it is given. They do nothing until polled,
 * may not be moved after their first poll, are dropped exactly once, and
 * hold nothing across polls but pointers (dropping one releases nothing
 * but what the table below says). The cooperative budget is spent by the
 * stream's own polls (weft's streams spend one unit per transfer), so a
 * utility looping over a stream that is always ready still yields.
 *
 * What a dropped (cancelled) future has done, for each:
 *   read, write, writev, flush, shutdown: at most the one transfer that
 *     completed in the poll that returned it; a dropped one did nothing
 *     (a transfer either happens inside one poll or not at all).
 *   read_exact, write_all, writev_all: the bytes moved before the drop
 *     are gone from (read) or into (write) the stream; *progress, when
 *     given, says how many.
 *   read_to_end: the bytes read so far are in the buffer (buf->len).
 *   copy, copy_bidirectional: bytes read from a reader and not yet
 *     written are lost (at most one buffer per direction); the result's
 *     counts are only written at completion. */

/* The future of weft_io_read, read_exact, write, write_all, writev,
 * writev_all, flush and shutdown (each has its own vtable: no kind
 * switch). Output: ssize_t for the transfers, int for flush and shutdown.
 * Fields private. */
typedef struct weft_io_op_s {
    weft_future_t future;
    weft_stream_t *s_;
    union {
        void *rbuf;
        const void *wbuf;
        const struct iovec *iov;
    } u_;
    size_t len_;  /* bytes, or iovec count */
    size_t done_; /* bytes moved so far */
    size_t *progress_;
} weft_io_op_t;

/* One read: output ssize_t, the count (0: end of stream, or len == 0) or
 * a negative errno. */
WEFT_API WEFT_NODISCARD weft_io_op_t weft_io_read(weft_stream_t *s, void *buf, size_t len);
/* Reads exactly len bytes: output ssize_t, len, WEFT_EPIPE when the stream
 * ended first, or a negative errno. progress (may be NULL) is kept up to
 * date with the bytes that arrived so far (on WEFT_EPIPE: how many did). */
WEFT_API WEFT_NODISCARD weft_io_op_t weft_io_read_exact(weft_stream_t *s, void *buf, size_t len, size_t *progress);
/* One write: output ssize_t, the count taken (> 0 when len > 0) or a
 * negative errno. */
WEFT_API WEFT_NODISCARD weft_io_op_t weft_io_write(weft_stream_t *s, const void *buf, size_t len);
/* Writes every byte: output ssize_t, len or a negative errno (WEFT_EPIPE
 * also when the stream takes 0 bytes). progress (may be NULL): the bytes
 * written so far, kept up to date (after an error: how many went). */
WEFT_API WEFT_NODISCARD weft_io_op_t weft_io_write_all(weft_stream_t *s, const void *buf, size_t len,
                                                       size_t *progress);
/* One vectored write (weft_stream_poll_writev): output ssize_t as
 * weft_io_write. iov is read, never advanced. */
WEFT_API WEFT_NODISCARD weft_io_op_t weft_io_writev(weft_stream_t *s, const struct iovec *iov, size_t iovcnt);
/* Writes every byte of the iovcnt buffers in order: output ssize_t, the
 * total or a negative errno; progress as weft_io_write_all. iov is only
 * read (the future keeps its own position). */
WEFT_API WEFT_NODISCARD weft_io_op_t weft_io_writev_all(weft_stream_t *s, const struct iovec *iov, size_t iovcnt,
                                                        size_t *progress);
/* Output int: 0 or a negative errno. */
WEFT_API WEFT_NODISCARD weft_io_op_t weft_io_flush(weft_stream_t *s);
/* Flushes and closes the write direction (the peer reads end of stream).
 * Output int: 0 or a negative errno. */
WEFT_API WEFT_NODISCARD weft_io_op_t weft_io_shutdown(weft_stream_t *s);

/* ---- A growable byte buffer (read_to_end, read_until, codecs) --------------------
 * data holds len bytes in a block of cap bytes (data NULL while cap is 0).
 * Read data and len freely; change them only through the calls below.
 * Zero-initialised (or WEFT_BYTES_INIT) it is empty and owns nothing. */
typedef struct weft_bytes_s {
    char *data;
    size_t len;
    size_t cap;
} weft_bytes_t;
#define WEFT_BYTES_INIT { NULL, 0, 0 }

/* Makes room for `extra` more bytes after len (doubling the block as it
 * grows). Returns 0 or WEFT_ENOMEM (b unchanged). Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_bytes_reserve(weft_bytes_t *b, size_t extra);
/* Appends len bytes. Returns 0 or WEFT_ENOMEM (b unchanged). */
WEFT_API WEFT_NODISCARD int weft_bytes_append(weft_bytes_t *b, const void *p, size_t len);
/* Empties b (len = 0), keeping its block for reuse. Inline: a line loop
 * clears its buffer once a line. */
static inline void weft_bytes_clear(weft_bytes_t *b)
{
    if (b == NULL)
        weft_panic(WEFT_SITE, "weft_bytes_clear: b is NULL");
    b->len = 0;
}
/* Frees b's block and leaves it empty. */
WEFT_API void weft_bytes_free(weft_bytes_t *b);

/* The future of weft_io_read_to_end. Fields private. */
typedef struct weft_io_read_to_end_s {
    weft_future_t future;
    weft_stream_t *s_;
    weft_bytes_t *buf_;
    size_t max_;
    size_t start_;
    bool started_;
} weft_io_read_to_end_t;
/* Reads until end of stream, appending to *buf (grown by doubling, never
 * past max bytes in all). Output ssize_t: the bytes appended, or a
 * negative errno: WEFT_EMSGSIZE when the stream holds more than buf may
 * (buf then holds max bytes and one more byte was read and dropped),
 * WEFT_ENOMEM when growing failed, or the stream's error. On every
 * outcome, dropped or not, what was read stays in *buf, the caller's to
 * free (weft_bytes_free). */
WEFT_API WEFT_NODISCARD weft_io_read_to_end_t weft_io_read_to_end(weft_stream_t *s, weft_bytes_t *buf,
                                                                  size_t max);

/* ---- copy ---------------------------------------------------------------------- */

/* The default copy buffer, per direction: large enough that a bulk
 * transfer over loopback spends its time in the kernel's copies rather
 * than in system-call overhead. */
#define WEFT_IO_COPY_BUF 16384
/* The largest buffer a copy takes per direction (a larger buf_size is cut
 * to it): 16 MiB. */
#define WEFT_IO_COPY_BUF_MAX ((size_t)16 << 20)

/* Options of copy and copy_bidirectional; zeroed = the defaults. */
typedef struct weft_io_copy_opts_s {
    size_t buf_size; /* bytes per direction; 0: WEFT_IO_COPY_BUF; at most WEFT_IO_COPY_BUF_MAX */
    /* copy_bidirectional only: end with WEFT_ETIMEDOUT when no byte moved
     * either way for this many milliseconds. 0: no limit. Needs a runtime
     * with timers. */
    uint64_t idle_ms;
} weft_io_copy_opts_t;

/* The state of one direction (private). */
typedef struct weft__io_copy_dir_s {
    unsigned char *buf;
    size_t pos, end;
    uint64_t total;
    bool read_done, need_flush, flushed, shut;
} weft__io_copy_dir_t;

/* Output of weft_io_copy. */
typedef struct weft_io_copied_s {
    uint64_t bytes; /* written to the writer (all of them on success) */
    int rc;         /* 0, or the first error of either side */
} weft_io_copied_t;

/* Output of weft_io_copy_bidirectional. */
typedef struct weft_io_copied2_s {
    uint64_t a_to_b, b_to_a; /* bytes written each way */
    int rc;                  /* 0, WEFT_ETIMEDOUT (idle) or the first error */
} weft_io_copied2_t;

/* The future of weft_io_copy and weft_io_copy_bidirectional. Its buffers
 * are allocated at the first poll and freed when it is dropped, so the
 * future itself stays small. Fields private. */
typedef struct weft_io_copy_s {
    weft_future_t future;
    weft_stream_t *a_, *b_;
    weft__io_copy_dir_t ab_, ba_;
    size_t buf_size_;
    uint64_t idle_ns_, last_ns_;
    weft_sleep_t idle_;
    bool started_, idle_armed_;
} weft_io_copy_t;

/* Copies reader to writer until the reader's end of stream, then flushes
 * the writer. Output weft_io_copied_t: rc 0, WEFT_ENOMEM (no buffer), or
 * the first error of either side (WEFT_EPIPE when the writer takes 0
 * bytes); bytes counts what was written before it. opts may be NULL. */
WEFT_API WEFT_NODISCARD weft_io_copy_t weft_io_copy(weft_stream_t *reader, weft_stream_t *writer,
                                                   const weft_io_copy_opts_t *opts);
/* Copies a to b and b to a at the same time. Each direction runs until
 * its reader's end of stream, then shuts down its writer's write
 * direction (the half-close reaches the other peer) and stops; the
 * future ends when both have, or at the first error of any side, or when
 * opts->idle_ms passed with no byte moved (rc WEFT_ETIMEDOUT). Output
 * weft_io_copied2_t. opts may be NULL. */
WEFT_API WEFT_NODISCARD weft_io_copy_t weft_io_copy_bidirectional(weft_stream_t *a, weft_stream_t *b,
                                                                 const weft_io_copy_opts_t *opts);

/* ---- split ---------------------------------------------------------------------- */

struct weft__io_bilock;

/* One half of a split stream: itself a stream (weft_io_half_stream), with
 * only the read direction (the read half) or only the write direction,
 * flush and shutdown (the write half). Fields private. */
typedef struct weft_io_half_s {
    weft_stream_t stream_;
    weft_stream_t *inner_;
    struct weft__io_bilock *lock_; /* NULL for a duplex stream */
    unsigned side_;
} weft_io_half_t;

/* Splits s into a read half and a write half that two tasks may use at
 * the same time (even on two threads). A WEFT_STREAM_DUPLEX stream's
 * halves call it directly; any other stream's halves take turns through
 * a small poll-level lock (a half that finds the other inside the stream
 * waits as a future does, never blocking its thread; the lock is held
 * only for the duration of one poll). Returns 0 or WEFT_ENOMEM (the lock
 * of a non-duplex stream); on error the halves are untouched. Ownership:
 * s stays the caller's and must outlive both halves; release them with
 * weft_io_unsplit (or each with weft_io_half_release). Context: any
 * thread. */
WEFT_API WEFT_NODISCARD int weft_io_split(weft_stream_t *s, weft_io_half_t *rd, weft_io_half_t *wr);
/* The half as a stream, for the utilities. */
WEFT_API weft_stream_t *weft_io_half_stream(weft_io_half_t *h);
/* Releases both halves of one split and returns the stream. Aborts when
 * rd and wr come from different splits. No poll of either may be in
 * flight. */
WEFT_API weft_stream_t *weft_io_unsplit(weft_io_half_t *rd, weft_io_half_t *wr);
/* Releases one half (the lock goes with the last). */
WEFT_API void weft_io_half_release(weft_io_half_t *h);

/* ---- The in-memory duplex pair ------------------------------------------------- */

struct weft__duplex;

/* One end of an in-memory connection: a stream (weft_duplex_stream) whose
 * writes the other end reads. Fields private. */
typedef struct weft_duplex_s {
    weft_stream_t stream_;
    struct weft__duplex *shared_;
    unsigned side_;
} weft_duplex_t;

/* Two connected streams, a and b, each direction a bounded buffer of
 * capacity bytes (1 .. 1 GiB): a write waits while the buffer is full, a
 * read while it is empty. Shutdown makes the other end read end of
 * stream once the buffer is drained; closing an end (weft_duplex_close)
 * does that and makes the other end's writes fail with WEFT_EPIPE. The
 * streams are WEFT_STREAM_DUPLEX: one task may read and another write
 * each end at the same time, on any threads. Returns 0, WEFT_EINVAL or
 * WEFT_ENOMEM (then a and b are untouched). Ownership: the caller closes
 * each end once. Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_duplex_new(size_t capacity, weft_duplex_t *a, weft_duplex_t *b);
/* The end as a stream. */
WEFT_API weft_stream_t *weft_duplex_stream(weft_duplex_t *d);
/* Closes this end: the other reads end of stream after what is buffered,
 * and its writes fail with WEFT_EPIPE; its waiting tasks wake. No poll
 * of this end may be in flight. The memory goes with the second close. */
WEFT_API void weft_duplex_close(weft_duplex_t *d);

#ifdef __cplusplus
}
#endif

#endif
