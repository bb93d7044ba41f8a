/* weft/bufio.h - buffered readers and writers over any byte stream
 * (weft/io.h), and the growable byte buffer their line reads fill.
 *
 * A weft_bufreader_t reads from its inner stream in chunks of up to its
 * capacity and hands the bytes out from its buffer: many small reads, or a
 * line search (memchr over what is buffered), cost one system call per
 * chunk instead of one per read. A weft_bufwriter_t gathers small writes
 * in its buffer and writes them to the inner stream in one call when the
 * buffer fills or on flush. Both implement weft_stream_t themselves
 * (weft_bufreader_as, weft_bufwriter_as), so they stack: a codec over a
 * buffered reader over a TCP stream, a copy into a buffered writer.
 *
 * Neither takes ownership of its inner stream: closing the socket stays
 * the caller's job, after the reader or writer is freed or no longer
 * polled. Each is used by one task at a time (its read side and its write
 * side by one task each, where the inner stream is WEFT_STREAM_DUPLEX).
 * Every future below (and the codecs', weft/codec.h) spends one unit of
 * the task's cooperative budget per poll that reaches the inner stream,
 * and one unit in 256 calls served from the buffer alone: a task reading
 * lines that its socket keeps coming still yields to others (within the
 * budget's time slice, or every 32768 buffered lines).
 *
 * docs/io-buffering.md has examples and the cancellation rules.
 */
#ifndef WEFT_BUFIO_H
#define WEFT_BUFIO_H

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#endif

#include "io.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The capacity a reader or writer gets when init is given 0. */
#define WEFT_BUFIO_DEFAULT_CAPACITY 8192

/* ---- Buffered reader ----------------------------------------------------------- */

/* Fields ending in an underscore are private. The bytes buffered are
 * buf_[pos_ .. end_). The reader must not move while a future made from it
 * is pending, nor after weft_bufreader_as handed out its interface. */
typedef struct weft_bufreader_s {
    weft_stream_t stream_; /* the interface: weft_bufreader_as */
    weft_stream_t *inner_;
    char *buf_;
    size_t cap_, pos_, end_;
    unsigned hits_; /* calls served from the buffer (they spend the coop budget 1 in 256) */
} weft_bufreader_t;

/* Sets up r over inner, with a buffer of `capacity` bytes (0: the default,
 * WEFT_BUFIO_DEFAULT_CAPACITY), allocated now. Returns 0, or WEFT_ENOMEM
 * (r is then left empty, and weft_bufreader_free on it is a no-op).
 * Ownership: r owns its buffer until weft_bufreader_free; inner stays the
 * caller's and must outlive r's use. Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_bufreader_init(weft_bufreader_t *r, weft_stream_t *inner, size_t capacity);
/* Frees r's buffer; any bytes still buffered are discarded. No future made
 * from r may be pending. */
WEFT_API void weft_bufreader_free(weft_bufreader_t *r);
/* r as a byte stream: reads come from the buffer first (a read of at least
 * the capacity into an empty buffer goes straight to the inner stream);
 * writes, flush and shutdown go to the inner stream unchanged (-EBADF if it
 * has no write side). WEFT_STREAM_DUPLEX when inner is. */
WEFT_API weft_stream_t *weft_bufreader_as(weft_bufreader_t *r);
WEFT_API weft_stream_t *weft_bufreader_inner(const weft_bufreader_t *r);
/* The bytes buffered and not consumed yet: returns their count, and their
 * address in *data when data is not NULL. Valid until r is next polled,
 * consumed or freed. Never does I/O. */
WEFT_API size_t weft_bufreader_buffered(const weft_bufreader_t *r, const void **data);
/* Marks the first n buffered bytes as read. n greater than what is
 * buffered is a programming error (panics). */
WEFT_API void weft_bufreader_consume(weft_bufreader_t *r, size_t n);
/* The poll form of weft_bufreader_fill_buf below, for writers of futures. */
WEFT_API weft_poll_t weft_bufreader_poll_fill_buf(weft_bufreader_t *r, weft_context_t *cx, const void **data,
                                                  ssize_t *n);

/* fill_buf as a future: output ssize_t. When bytes are buffered it is
 * ready at once with them; otherwise it reads once from the inner stream.
 * Output: the count of bytes buffered (their address in *data), 0 at end
 * of stream, or a negative errno from the inner stream. The bytes stay
 * buffered until weft_bufreader_consume. Cancel-safe: dropping it loses
 * nothing. */
typedef struct weft_bufreader_fill_s {
    weft_future_t future;
    weft_bufreader_t *r_;
    const void **data_;
} weft_bufreader_fill_t;
WEFT_API WEFT_NODISCARD weft_bufreader_fill_t weft_bufreader_fill_buf(weft_bufreader_t *r, const void **data);

/* read_until as a future: output ssize_t. Appends to *out the bytes up to
 * and including the first `delim`, reading more as needed; the line search
 * is one memchr over each chunk.
 *  - > 0: the count of bytes appended by this call; out ends with delim,
 *    except for a final line that the stream ended without a delim: that
 *    line is returned as it is, and the next call returns 0.
 *  - 0: end of stream, nothing appended.
 *  - WEFT_EMSGSIZE: out->len reached max without a delim. out holds those
 *    max bytes (consumed from the reader); the rest of the line is still
 *    to be read. Memory stays bounded by max however long the line.
 *  - WEFT_ENOMEM (out could not grow; bytes appended so far stay in out),
 *    or a negative errno from the inner stream.
 * max bounds out->len, bytes held before the call included (clear out
 * before each line for a bound on the line); max 0 means SIZE_MAX.
 * Cancel-safe in this sense: bytes are moved from the reader into out as
 * they are found, so a drop mid-wait leaves a partial line in out and the
 * rest in the reader or the stream; calling again with the same out goes
 * on with the line. */
typedef struct weft_read_until_s {
    weft_future_t future;
    weft_bufreader_t *r_;
    weft_bytes_t *out_;
    size_t max_;
    size_t start_;
    int delim_;
} weft_read_until_t;
/* Private. A call served from the buffer alone (no read from the inner
 * stream) spends one unit of the cooperative budget in this many: at 32,
 * lines_throughput's reader and writer yielded every 4096 lines (80 us),
 * sixteen times as often as they needed to for a 1 ms slice, and a task
 * that yields is one another worker may steal, away from its caches. */
#define WEFT__BUFFERED_EVERY 256u
/* Private: the budget spent by a call served from the buffer alone. False:
 * out of budget (weft_coop_proceed woke the task; return WEFT_PENDING). */
static inline bool weft__coop_buffered(unsigned *hits, weft_context_t *cx)
{
    return ++*hits % WEFT__BUFFERED_EVERY != 0 || weft_coop_proceed(cx);
}
/* Private: memchr for a line's first 64 bytes, 16 at a time with SSE2
 * where the compiler has it, then the library's memchr for the rest: a
 * short line is found without the call, and without spilling the
 * caller's registers around it. */
static WEFT__ALWAYS_INLINE const char *weft__find_byte(const char *p, unsigned char c, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__) && defined(__GNUC__)
    const __m128i pat = _mm_set1_epi8((char)c);
    for (; i + 16 <= n && i < 64; i += 16) {
        __m128i w = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(w, pat));
        if (m != 0)
            return p + i + (unsigned)__builtin_ctz(m);
    }
#endif
    return i < n ? (const char *)memchr(p + i, c, n - i) : NULL;
}
/* Private: the poll, whole (out of line), and its common case inline: the
 * line is buffered and out has room, so it is one search and one memcpy,
 * which an await of a constructor below compiles in place (WEFT_AWAIT
 * polls first through the vtable the constructor stored; always_inline,
 * since with the search inline GCC would otherwise leave it a call). */
WEFT_API weft_poll_t weft__read_until_poll(weft_future_t *f, weft_context_t *cx, void *out);
static WEFT__ALWAYS_INLINE weft_poll_t weft__read_until_poll_inline(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_read_until_t *op = (weft_read_until_t *)(void *)f;
    weft_bufreader_t *r = op->r_;
    weft_bytes_t *o = op->out_;
    if (r != NULL && o != NULL) {
        size_t pos = r->pos_, len = o->len, max = op->max_;
        size_t avail = r->end_ - pos, room = max > len ? max - len : 0;
        const char *p = r->buf_ + pos;
        const char *hit =
            avail > 0 && room > 0 ? weft__find_byte(p, (unsigned char)op->delim_, avail < room ? avail : room) : NULL;
        size_t take = hit != NULL ? (size_t)(hit - p) + 1 : 0;
        if (hit != NULL && o->cap - len >= take) {
            if (!weft__coop_buffered(&r->hits_, cx))
                return WEFT_PENDING;
            char *dst = o->data + len;
            o->len = len + take;
            r->pos_ = pos + take;
            if (out != NULL)
                *(ssize_t *)out = (ssize_t)(len + take - op->start_);
            memcpy(dst, p, take);
            return WEFT_READY;
        }
    }
    return weft__read_until_poll(f, cx, out);
}
static const weft_future_vtable_t weft__read_until_vtable = {
    weft__read_until_poll_inline, NULL, NULL, sizeof(weft_read_until_t), sizeof(ssize_t), "weft_bufreader_read_until",
};
/* Inline, so that an await builds the future in its frame directly (r and
 * out are checked at the first poll: NULL aborts there). */
static inline WEFT_NODISCARD weft_read_until_t weft_bufreader_read_until(weft_bufreader_t *r, unsigned char delim,
                                                                         weft_bytes_t *out, size_t max)
{
    weft_read_until_t op;
    op.future.vtable = &weft__read_until_vtable;
    op.r_ = r;
    op.out_ = out;
    op.max_ = max != 0 ? max : SIZE_MAX;
    op.start_ = out != NULL ? out->len : 0;
    op.delim_ = delim;
    return op;
}
/* read_until with '\n' (kept in out: the lines codec, weft/codec.h, strips
 * line endings). */
static inline WEFT_NODISCARD weft_read_until_t weft_bufreader_read_line(weft_bufreader_t *r, weft_bytes_t *out,
                                                                        size_t max)
{
    return weft_bufreader_read_until(r, '\n', out, max);
}

/* ---- Buffered writer ----------------------------------------------------------- */

/* Bytes buf_[sent_ .. len_) wait to be written; sent_ > 0 while a flush is
 * part way. The writer must not move while a future made from it is
 * pending, nor after weft_bufwriter_as handed out its interface. */
typedef struct weft_bufwriter_s {
    weft_stream_t stream_; /* the interface: weft_bufwriter_as */
    weft_stream_t *inner_;
    char *buf_;
    size_t cap_, len_, sent_;
    unsigned hits_; /* writes taken into the buffer (they spend the coop budget 1 in 256) */
} weft_bufwriter_t;

/* Sets up w over inner with a buffer of `capacity` bytes (0: the default),
 * allocated now. Returns 0 or WEFT_ENOMEM (w left empty). Ownership as
 * weft_bufreader_init. Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_bufwriter_init(weft_bufwriter_t *w, weft_stream_t *inner, size_t capacity);
/* Frees w's buffer. Returns the count of bytes it still held, which are
 * discarded (never written): 0 when the writer was flushed. Flush (or shut
 * down) first; a nonzero return is data lost. No future made from w may
 * be pending. */
WEFT_API WEFT_NODISCARD size_t weft_bufwriter_free(weft_bufwriter_t *w);
/* w as a byte stream: a write that fits goes into the buffer (ready at
 * once); one that does not fit writes the buffer out first; one of at
 * least the capacity, once the buffer is empty, goes straight to the inner
 * stream. poll_writev gathers the buffers the same way. poll_flush writes
 * the buffer out, then flushes the inner stream; poll_shutdown writes it
 * out, then shuts the inner stream down. Reads go to the inner stream
 * unchanged. WEFT_STREAM_DUPLEX when inner is. */
WEFT_API weft_stream_t *weft_bufwriter_as(weft_bufwriter_t *w);
WEFT_API weft_stream_t *weft_bufwriter_inner(const weft_bufwriter_t *w);
/* Bytes waiting in the buffer. */
WEFT_API size_t weft_bufwriter_buffered(const weft_bufwriter_t *w);

/* Futures over a writer (output as named): write_all: ssize_t, len once
 * every byte is taken (most are only buffered: flush to push them out), or
 * a negative errno (some bytes may have been taken); flush and shutdown:
 * int, 0 or a negative errno. buf must stay valid until the future
 * finishes or is dropped. Dropping one mid-wait keeps what it already
 * handed over (buffered or written) and loses nothing buffered. */
typedef struct weft_bufwriter_op_s {
    weft_future_t future;
    weft_bufwriter_t *w_;
    const char *buf_;
    size_t len_, done_;
} weft_bufwriter_op_t;
/* Private: the poll, whole (out of line), and its common case inline (the
 * bytes fit in the buffer: one memcpy), as read_until's above. */
WEFT_API weft_poll_t weft__bufwriter_write_all_poll(weft_future_t *f, weft_context_t *cx, void *out);
static inline weft_poll_t weft__bufwriter_write_all_poll_inline(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_bufwriter_op_t *op = (weft_bufwriter_op_t *)(void *)f;
    weft_bufwriter_t *w = op->w_;
    size_t n = op->len_;
    if (w != NULL && op->buf_ != NULL && op->done_ == 0 && n < w->cap_ && n <= w->cap_ - w->len_) {
        if (!weft__coop_buffered(&w->hits_, cx))
            return WEFT_PENDING;
        char *dst = w->buf_ + w->len_;
        w->len_ += n;
        if (out != NULL)
            *(ssize_t *)out = (ssize_t)n;
        memcpy(dst, op->buf_, n);
        return WEFT_READY;
    }
    return weft__bufwriter_write_all_poll(f, cx, out);
}
static const weft_future_vtable_t weft__bufwriter_write_all_vtable = {
    weft__bufwriter_write_all_poll_inline, NULL, NULL, sizeof(weft_bufwriter_op_t), sizeof(ssize_t),
    "weft_bufwriter_write_all",
};
/* Inline, so that an await builds the future in its frame directly (w,
 * and buf when len > 0, are checked at the first poll: NULL aborts
 * there). */
static inline WEFT_NODISCARD weft_bufwriter_op_t weft_bufwriter_write_all(weft_bufwriter_t *w, const void *buf,
                                                                          size_t len)
{
    weft_bufwriter_op_t op;
    op.future.vtable = &weft__bufwriter_write_all_vtable;
    op.w_ = w;
    op.buf_ = (const char *)buf;
    op.len_ = len;
    op.done_ = 0;
    return op;
}
WEFT_API WEFT_NODISCARD weft_bufwriter_op_t weft_bufwriter_flush(weft_bufwriter_t *w);
WEFT_API WEFT_NODISCARD weft_bufwriter_op_t weft_bufwriter_shutdown(weft_bufwriter_t *w);

#ifdef __cplusplus
}
#endif

#endif
