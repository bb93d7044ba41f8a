/* tests/test_io.c - the utilities of weft/io.h over every kind of stream:
 * a scripted stream (below: it hands out data in chunks of a set size with
 * a WEFT_PENDING between any two, so every split point of every loop is
 * crossed), the in-memory duplex pair and TCP on 127.0.0.1. Also: read_to_end
 * over its cap, a peer that ends or resets mid-transfer, copy_bidirectional's
 * half-close and idle timeout, split halves used by two tasks on a
 * multi-thread runtime (duplex and locked), drop of every future mid-wait,
 * and the allocation failures. Task bodies check with WEFT_TEST_CHECK*;
 * the test thread calls ASSERT_NO_TEST_FAIL() afterwards (testlib.h). */
#include <arpa/inet.h>
#include <sys/socket.h>

#include "testlib.h"
#include "../reactor/io_driver.h"

/* ---- A scripted stream: how to implement weft_stream_t ------------------------
 * The struct starts with the weft_stream_t, so the vtable's functions get
 * the whole object back with a cast. Reads come from src, writes go to
 * sink, `chunk` bytes at most per call, and every other call answers
 * WEFT_PENDING after waking the caller at once (as a stream whose data
 * "arrives" between polls). When src is used up a read answers read_end
 * (0: end of stream, or an error); when sink is full a write answers
 * write_end. Not duplex: a read and a write must not run at once (ops
 * is a plain counter that TSan would flag if they did). */
typedef struct {
    weft_stream_t stream;
    const unsigned char *src;
    size_t src_len, src_pos;
    unsigned char *sink;
    size_t sink_cap, sink_len;
    size_t chunk;
    ssize_t read_end, write_end;
    bool pend_read, pend_write; /* the next call of that kind answers pending */
    int flushes, shutdowns, pendings;
    unsigned long ops;
} scripted_t;

/* Counts the call; every other call of a kind (turn) answers pending,
 * after waking the caller at once. */
static bool scripted_pends(scripted_t *s, bool *turn, weft_context_t *cx)
{
    s->ops++;
    if (!(*turn = !*turn))
        return false;
    s->pendings++;
    weft_waker_wake_by_ref(cx->waker);
    return true;
}

static weft_poll_t scripted_read(weft_stream_t *st, weft_context_t *cx, void *buf, size_t len, ssize_t *n)
{
    scripted_t *s = (scripted_t *)(void *)st;
    if (scripted_pends(s, &s->pend_read, cx))
        return WEFT_PENDING;
    size_t left = s->src_len - s->src_pos;
    if (left == 0) {
        *n = s->read_end;
        return WEFT_READY;
    }
    size_t k = len < s->chunk ? len : s->chunk;
    k = k < left ? k : left;
    memcpy(buf, s->src + s->src_pos, k);
    s->src_pos += k;
    *n = (ssize_t)k;
    return WEFT_READY;
}

static weft_poll_t scripted_write(weft_stream_t *st, weft_context_t *cx, const void *buf, size_t len, ssize_t *n)
{
    scripted_t *s = (scripted_t *)(void *)st;
    if (scripted_pends(s, &s->pend_write, cx))
        return WEFT_PENDING;
    size_t room = s->sink_cap - s->sink_len;
    if (room == 0) {
        *n = s->write_end;
        return WEFT_READY;
    }
    size_t k = len < s->chunk ? len : s->chunk;
    k = k < room ? k : room;
    memcpy(s->sink + s->sink_len, buf, k);
    s->sink_len += k;
    *n = (ssize_t)k;
    return WEFT_READY;
}

static weft_poll_t scripted_flush(weft_stream_t *st, weft_context_t *cx, int *rc)
{
    (void)cx;
    ((scripted_t *)(void *)st)->flushes++;
    *rc = 0;
    return WEFT_READY;
}

static weft_poll_t scripted_shutdown(weft_stream_t *st, weft_context_t *cx, int *rc)
{
    (void)cx;
    ((scripted_t *)(void *)st)->shutdowns++;
    *rc = 0;
    return WEFT_READY;
}

static const weft_stream_vtable_t scripted_vt = {
    .poll_read = scripted_read,
    .poll_write = scripted_write,
    .poll_flush = scripted_flush,
    .poll_shutdown = scripted_shutdown,
    .flags = 0,
    .name = "scripted",
};

static void scripted_init(scripted_t *s, const void *src, size_t src_len, void *sink, size_t sink_cap, size_t chunk)
{
    memset(s, 0, sizeof *s);
    s->stream.vtable = &scripted_vt;
    s->src = src;
    s->src_len = src_len;
    s->sink = sink;
    s->sink_cap = sink_cap;
    s->chunk = chunk;
}

static unsigned char pattern[4096];
static void fill_pattern(void)
{
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(i * 7 + i / 251);
}

/* Polls f by hand (outside any runtime: no budget) until it is ready,
 * then drops it. Returns the number of pending polls. */
static int drive(weft_future_t *f, void *out)
{
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    for (int i = 0; i < 1000000; i++) {
        if (weft_future_poll(f, &cx, out) == WEFT_READY) {
            weft_future_drop(f);
            return i;
        }
    }
    ck_abort_msg("future never ready");
    return -1;
}

/* Polls f once and expects WEFT_PENDING. */
static void poll_pending(weft_future_t *f, weft_waker_t *w)
{
    weft_context_t cx = { w };
    ck_assert_int_eq(weft_future_poll(f, &cx, NULL), WEFT_PENDING);
}

/* ---- Every split point -------------------------------------------------------------- */

START_TEST(t_read_exact_chunks)
{
    fill_pattern();
    for (size_t chunk = 1; chunk <= 9; chunk++) {
        for (size_t len = 0; len <= 40; len += 1 + len / 4) {
            scripted_t s;
            scripted_init(&s, pattern, 64, NULL, 0, chunk);
            unsigned char got[64] = { 0 };
            size_t progress = 99;
            ssize_t n = 0;
            weft_io_op_t op = weft_io_read_exact(&s.stream, got, len, &progress);
            ck_assert_uint_eq(progress, 0);
            drive(WEFT_FUTURE(&op), &n);
            ck_assert_int_eq(n, (ssize_t)len);
            ck_assert_uint_eq(progress, len);
            ck_assert_int_eq(memcmp(got, pattern, len), 0);
            ck_assert_uint_eq(s.src_pos, len);
            if (len > 0)
                ck_assert_int_ge(s.pendings, (int)((len + chunk - 1) / chunk));
        }
    }
}
END_TEST

START_TEST(t_read_exact_short)
{
    fill_pattern();
    for (size_t chunk = 1; chunk <= 4; chunk++) {
        scripted_t s;
        scripted_init(&s, pattern, 10, NULL, 0, chunk);
        unsigned char got[32];
        size_t progress = 0;
        ssize_t n = 0;
        weft_io_op_t op = weft_io_read_exact(&s.stream, got, sizeof got, &progress);
        drive(WEFT_FUTURE(&op), &n);
        ck_assert_int_eq(n, WEFT_EPIPE); /* the stream ended first */
        ck_assert_uint_eq(progress, 10); /* and this much arrived */
        ck_assert_int_eq(memcmp(got, pattern, 10), 0);
        /* an error mid-way is passed through */
        scripted_init(&s, pattern, 5, NULL, 0, chunk);
        s.read_end = -ECONNRESET;
        op = weft_io_read_exact(&s.stream, got, sizeof got, &progress);
        drive(WEFT_FUTURE(&op), &n);
        ck_assert_int_eq(n, -ECONNRESET);
        ck_assert_uint_eq(progress, 5);
    }
}
END_TEST

START_TEST(t_read_and_write_once)
{
    fill_pattern();
    scripted_t s;
    unsigned char sink[16], got[16];
    scripted_init(&s, pattern, 16, sink, sizeof sink, 5);
    ssize_t n = 0;
    weft_io_op_t op = weft_io_read(&s.stream, got, sizeof got);
    drive(WEFT_FUTURE(&op), &n);
    ck_assert_int_eq(n, 5); /* one transfer, however short */
    op = weft_io_write(&s.stream, pattern, 12);
    drive(WEFT_FUTURE(&op), &n);
    ck_assert_int_eq(n, 5);
    struct iovec iov[2] = { { pattern, 0 }, { pattern + 3, 9 } };
    op = weft_io_writev(&s.stream, iov, 2); /* no poll_writev: the first non-empty buffer */
    drive(WEFT_FUTURE(&op), &n);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(memcmp(sink + 5, pattern + 3, 5), 0);
    int rc = 1;
    op = weft_io_flush(&s.stream);
    drive(WEFT_FUTURE(&op), &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(s.flushes, 1);
    op = weft_io_shutdown(&s.stream);
    drive(WEFT_FUTURE(&op), &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(s.shutdowns, 1);
    /* a zero-length read answers 0 without calling the stream */
    unsigned long ops = s.ops;
    op = weft_io_read(&s.stream, got, 0);
    ck_assert_int_eq(drive(WEFT_FUTURE(&op), &n), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_uint_eq(s.ops, ops);
}
END_TEST

START_TEST(t_write_all_chunks)
{
    fill_pattern();
    for (size_t chunk = 1; chunk <= 9; chunk++) {
        for (size_t len = 0; len <= 40; len += 1 + len / 4) {
            scripted_t s;
            unsigned char sink[64];
            scripted_init(&s, NULL, 0, sink, sizeof sink, chunk);
            size_t progress = 0;
            ssize_t n = 0;
            weft_io_op_t op = weft_io_write_all(&s.stream, pattern, len, &progress);
            drive(WEFT_FUTURE(&op), &n);
            ck_assert_int_eq(n, (ssize_t)len);
            ck_assert_uint_eq(progress, len);
            ck_assert_uint_eq(s.sink_len, len);
            ck_assert_int_eq(memcmp(sink, pattern, len), 0);
        }
    }
    /* a stream that takes nothing more: WEFT_EPIPE, with what went */
    scripted_t s;
    unsigned char sink[7];
    scripted_init(&s, NULL, 0, sink, sizeof sink, 3);
    size_t progress = 0;
    ssize_t n = 0;
    weft_io_op_t op = weft_io_write_all(&s.stream, pattern, 20, &progress);
    drive(WEFT_FUTURE(&op), &n);
    ck_assert_int_eq(n, WEFT_EPIPE);
    ck_assert_uint_eq(progress, 7);
}
END_TEST

START_TEST(t_writev_all_chunks)
{
    fill_pattern();
    /* buffers of 0, 3, 0, 5, 1, 7, 0, 11 bytes: the empty ones and the
     * boundaries fall at every offset of every chunk size. */
    static const size_t sizes[] = { 0, 3, 0, 5, 1, 7, 0, 11 };
    struct iovec iov[8];
    size_t total = 0;
    for (size_t i = 0; i < 8; i++) {
        iov[i] = (struct iovec){ pattern + total, sizes[i] };
        total += sizes[i];
    }
    for (size_t chunk = 1; chunk <= 12; chunk++) {
        scripted_t s;
        unsigned char sink[64];
        scripted_init(&s, NULL, 0, sink, sizeof sink, chunk);
        size_t progress = 0;
        ssize_t n = 0;
        weft_io_op_t op = weft_io_writev_all(&s.stream, iov, 8, &progress);
        drive(WEFT_FUTURE(&op), &n);
        ck_assert_int_eq(n, (ssize_t)total);
        ck_assert_uint_eq(progress, total);
        ck_assert_int_eq(memcmp(sink, pattern, total), 0);
        ck_assert_uint_eq(iov[1].iov_len, 3); /* the caller's array is untouched */
    }
}
END_TEST

START_TEST(t_read_to_end)
{
    fill_pattern();
    for (size_t chunk = 1; chunk <= 4096; chunk *= 3) {
        scripted_t s;
        scripted_init(&s, pattern, sizeof pattern, NULL, 0, chunk);
        weft_bytes_t b = { 0 };
        ssize_t n = 0;
        weft_io_read_to_end_t r = weft_io_read_to_end(&s.stream, &b, sizeof pattern);
        drive(WEFT_FUTURE(&r), &n); /* exactly the cap: fine */
        ck_assert_int_eq(n, (ssize_t)sizeof pattern);
        ck_assert_uint_eq(b.len, sizeof pattern);
        ck_assert_int_eq(memcmp(b.data, pattern, sizeof pattern), 0);
        /* appending to a used buffer: n counts the new bytes only */
        scripted_init(&s, pattern, 10, NULL, 0, chunk);
        r = weft_io_read_to_end(&s.stream, &b, 1 << 20);
        drive(WEFT_FUTURE(&r), &n);
        ck_assert_int_eq(n, 10);
        ck_assert_uint_eq(b.len, sizeof pattern + 10);
        weft_bytes_free(&b);
        ck_assert_ptr_null(b.data);
    }
}
END_TEST

START_TEST(t_read_to_end_over_cap)
{
    fill_pattern();
    for (size_t chunk = 1; chunk <= 64; chunk *= 4) {
        scripted_t s;
        scripted_init(&s, pattern, 100, NULL, 0, chunk);
        weft_bytes_t b = { 0 };
        ssize_t n = 0;
        weft_io_read_to_end_t r = weft_io_read_to_end(&s.stream, &b, 99);
        drive(WEFT_FUTURE(&r), &n);
        ck_assert_int_eq(n, WEFT_EMSGSIZE);
        ck_assert_uint_eq(b.len, 99); /* what was kept, still ours to free */
        ck_assert_uint_le(b.cap, 99); /* never allocated past the cap */
        ck_assert_int_eq(memcmp(b.data, pattern, 99), 0);
        /* a reused buffer already past a smaller cap */
        r = weft_io_read_to_end(&s.stream, &b, 10);
        drive(WEFT_FUTURE(&r), &n);
        ck_assert_int_eq(n, WEFT_EMSGSIZE);
        weft_bytes_free(&b);
    }
    /* the stream's error is passed through, with the bytes so far kept */
    scripted_t s;
    scripted_init(&s, pattern, 50, NULL, 0, 8);
    s.read_end = -ECONNRESET;
    weft_bytes_t b = { 0 };
    ssize_t n = 0;
    weft_io_read_to_end_t r = weft_io_read_to_end(&s.stream, &b, 1000);
    drive(WEFT_FUTURE(&r), &n);
    ck_assert_int_eq(n, -ECONNRESET);
    ck_assert_uint_eq(b.len, 50);
    weft_bytes_free(&b);
}
END_TEST

/* A reused buffer whose block is larger than max: the reads stop at max
 * (buf->len never passes it) and the rest of the stream is WEFT_EMSGSIZE. */
START_TEST(t_read_to_end_reused_block_over_max)
{
    fill_pattern();
    for (size_t chunk = 1; chunk <= 4096; chunk *= 8) {
        for (size_t had = 0; had <= 5; had += 5) { /* an emptied buffer, and one with bytes to append to */
            weft_bytes_t b = { 0 };
            ck_assert_int_eq(weft_bytes_reserve(&b, 4096), 0);
            ck_assert_int_eq(weft_bytes_append(&b, "hello", had), 0);
            ck_assert_uint_ge(b.cap, 4096);
            scripted_t s;
            scripted_init(&s, pattern, 100, NULL, 0, chunk);
            ssize_t n = 0;
            weft_io_read_to_end_t r = weft_io_read_to_end(&s.stream, &b, 10);
            drive(WEFT_FUTURE(&r), &n);
            ck_assert_int_eq(n, WEFT_EMSGSIZE);
            ck_assert_uint_eq(b.len, 10);
            ck_assert_int_eq(memcmp(b.data, "hello", had), 0);
            ck_assert_int_eq(memcmp(b.data + had, pattern, 10 - had), 0);
            ck_assert_uint_eq(s.src_pos, 10 - had + 1); /* max, then the one probe byte */
            /* exactly max bytes in the stream: all of them, then the end */
            weft_bytes_clear(&b);
            scripted_init(&s, pattern, 10, NULL, 0, chunk);
            r = weft_io_read_to_end(&s.stream, &b, 10);
            drive(WEFT_FUTURE(&r), &n);
            ck_assert_int_eq(n, 10);
            ck_assert_uint_eq(b.len, 10);
            weft_bytes_free(&b);
        }
    }
}
END_TEST

START_TEST(t_read_to_end_enomem)
{
    fill_pattern();
    for (long k = 1; k <= 2; k++) { /* the first allocation, then the growth */
        scripted_t s;
        scripted_init(&s, pattern, sizeof pattern, NULL, 0, 4096);
        weft_bytes_t b = { 0 };
        ssize_t n = 0;
        weft_io_read_to_end_t r = weft_io_read_to_end(&s.stream, &b, 1 << 20);
        weft__alloc_fail_after(k);
        drive(WEFT_FUTURE(&r), &n);
        weft__alloc_fail_after(-1);
        ck_assert_int_eq(n, WEFT_ENOMEM);
        /* what arrived before the failed growth is kept */
        ck_assert_uint_eq(b.len, k == 1 ? 0 : sizeof pattern);
        weft_bytes_free(&b);
    }
}
END_TEST

START_TEST(t_copy_chunks)
{
    fill_pattern();
    for (size_t rchunk = 1; rchunk <= 7; rchunk += 3) {
        for (size_t wchunk = 1; wchunk <= 7; wchunk += 2) {
            scripted_t r, w;
            unsigned char sink[600];
            scripted_init(&r, pattern, 500, NULL, 0, rchunk);
            scripted_init(&w, NULL, 0, sink, sizeof sink, wchunk);
            weft_io_copy_opts_t o = { .buf_size = 13 }; /* smaller than the data: the buffer turns over */
            weft_io_copied_t c = { 0, 1 };
            weft_io_copy_t f = weft_io_copy(&r.stream, &w.stream, &o);
            drive(WEFT_FUTURE(&f), &c);
            ck_assert_int_eq(c.rc, 0);
            ck_assert_uint_eq(c.bytes, 500);
            ck_assert_uint_eq(w.sink_len, 500);
            ck_assert_int_eq(memcmp(sink, pattern, 500), 0);
            ck_assert_int_ge(w.flushes, 1); /* flushed at the end */
            ck_assert_int_eq(w.shutdowns, 0); /* copy never shuts down */
        }
    }
}
END_TEST

START_TEST(t_copy_errors)
{
    fill_pattern();
    /* the reader fails after 30 bytes: its error, and the 30 written */
    scripted_t r, w;
    unsigned char sink[100];
    scripted_init(&r, pattern, 30, NULL, 0, 4);
    r.read_end = -ECONNRESET;
    scripted_init(&w, NULL, 0, sink, sizeof sink, 100);
    weft_io_copied_t c = { 0, 0 };
    weft_io_copy_t f = weft_io_copy(&r.stream, &w.stream, NULL);
    drive(WEFT_FUTURE(&f), &c);
    ck_assert_int_eq(c.rc, -ECONNRESET);
    ck_assert_uint_eq(c.bytes, 30);
    /* the writer fills up after 20 (answers 0): WEFT_EPIPE, 20 */
    scripted_init(&r, pattern, 100, NULL, 0, 8);
    scripted_init(&w, NULL, 0, sink, 20, 3);
    f = weft_io_copy(&r.stream, &w.stream, NULL);
    drive(WEFT_FUTURE(&f), &c);
    ck_assert_int_eq(c.rc, WEFT_EPIPE);
    ck_assert_uint_eq(c.bytes, 20);
    /* the writer errs */
    scripted_init(&r, pattern, 100, NULL, 0, 8);
    scripted_init(&w, NULL, 0, sink, 0, 3);
    w.write_end = -EPIPE;
    f = weft_io_copy(&r.stream, &w.stream, NULL);
    drive(WEFT_FUTURE(&f), &c);
    ck_assert_int_eq(c.rc, -EPIPE);
    ck_assert_uint_eq(c.bytes, 0);
}
END_TEST

START_TEST(t_copy_enomem)
{
    scripted_t r, w;
    scripted_init(&r, pattern, 10, NULL, 0, 4);
    scripted_init(&w, NULL, 0, NULL, 0, 4);
    weft_io_copied_t c = { 5, 0 };
    weft_io_copy_t f = weft_io_copy(&r.stream, &w.stream, NULL);
    weft__alloc_fail_after(1);
    drive(WEFT_FUTURE(&f), &c);
    weft__alloc_fail_after(-1);
    ck_assert_int_eq(c.rc, WEFT_ENOMEM);
    ck_assert_uint_eq(c.bytes, 0);
    weft_io_copied2_t c2 = { 5, 5, 0 };
    f = weft_io_copy_bidirectional(&r.stream, &w.stream, NULL);
    weft__alloc_fail_after(1);
    drive(WEFT_FUTURE(&f), &c2);
    weft__alloc_fail_after(-1);
    ck_assert_int_eq(c2.rc, WEFT_ENOMEM);
    ck_assert_uint_eq(c2.a_to_b + c2.b_to_a, 0);
}
END_TEST

START_TEST(t_copy_bidirectional_scripted)
{
    fill_pattern();
    for (size_t chunk = 1; chunk <= 9; chunk += 4) {
        scripted_t a, b;
        unsigned char sa[300], sb[300];
        scripted_init(&a, pattern, 200, sa, sizeof sa, chunk);
        scripted_init(&b, pattern + 1000, 150, sb, sizeof sb, chunk + 1);
        weft_io_copy_opts_t o = { .buf_size = 7 };
        weft_io_copied2_t c = { 0, 0, 1 };
        weft_io_copy_t f = weft_io_copy_bidirectional(&a.stream, &b.stream, &o);
        drive(WEFT_FUTURE(&f), &c);
        ck_assert_int_eq(c.rc, 0);
        ck_assert_uint_eq(c.a_to_b, 200);
        ck_assert_uint_eq(c.b_to_a, 150);
        ck_assert_int_eq(memcmp(sb, pattern, 200), 0);
        ck_assert_int_eq(memcmp(sa, pattern + 1000, 150), 0);
        ck_assert_int_eq(a.shutdowns, 1); /* each writer shut down once its reader ended */
        ck_assert_int_eq(b.shutdowns, 1);
    }
}
END_TEST

/* A huge buf_size is cut to WEFT_IO_COPY_BUF_MAX: copy gets a buffer
 * instead of WEFT_ENOMEM, and copy_bidirectional's two-direction size does
 * not wrap around to a tiny block that the reads then overflow. */
START_TEST(t_copy_huge_buf_size_capped)
{
    fill_pattern();
    const size_t huge[] = { SIZE_MAX / 2 + 1, SIZE_MAX };
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        weft_io_copy_opts_t o = { .buf_size = huge[i] };
        scripted_t r, w;
        unsigned char sink[sizeof pattern];
        scripted_init(&r, pattern, sizeof pattern, NULL, 0, sizeof pattern);
        scripted_init(&w, NULL, 0, sink, sizeof sink, sizeof pattern);
        weft_io_copied_t c = { 0, 1 };
        weft_io_copy_t f = weft_io_copy(&r.stream, &w.stream, &o);
        drive(WEFT_FUTURE(&f), &c);
        ck_assert_int_eq(c.rc, 0); /* not WEFT_ENOMEM */
        ck_assert_uint_eq(c.bytes, sizeof pattern);
        ck_assert_int_eq(memcmp(sink, pattern, sizeof pattern), 0);
        ck_assert_uint_eq(f.buf_size_, WEFT_IO_COPY_BUF_MAX);

        scripted_t a, b;
        unsigned char sa[sizeof pattern], sb[sizeof pattern];
        scripted_init(&a, pattern, sizeof pattern, sa, sizeof sa, sizeof pattern);
        scripted_init(&b, pattern + 100, 1000, sb, sizeof sb, sizeof pattern);
        weft_io_copied2_t c2 = { 0, 0, 1 };
        weft_io_copy_t f2 = weft_io_copy_bidirectional(&a.stream, &b.stream, &o);
        drive(WEFT_FUTURE(&f2), &c2); /* 2 x buf_size wrapped to 0 here once: a tiny block, overrun */
        ck_assert_int_eq(c2.rc, 0);
        ck_assert_uint_eq(c2.a_to_b, sizeof pattern);
        ck_assert_uint_eq(c2.b_to_a, 1000);
        ck_assert_int_eq(memcmp(sb, pattern, sizeof pattern), 0);
        ck_assert_int_eq(memcmp(sa, pattern + 100, 1000), 0);
        ck_assert_uint_eq(f2.buf_size_, WEFT_IO_COPY_BUF_MAX);
    }
}
END_TEST

/* Every future dropped while it waits: nothing leaks (ASan, valgrind),
 * the copy's buffers included. */
START_TEST(t_drop_mid_wait)
{
    fill_pattern();
    scripted_t s;
    unsigned char buf[64];
    scripted_init(&s, pattern, 64, buf, sizeof buf, 2);
    weft_waker_t w = weft_waker_noop();
    weft_io_op_t ops[8] = {
        weft_io_read(&s.stream, buf, 8),           weft_io_read_exact(&s.stream, buf, 8, NULL),
        weft_io_write(&s.stream, pattern, 8),      weft_io_write_all(&s.stream, pattern, 8, NULL),
        weft_io_writev(&s.stream, NULL, 0),        weft_io_writev_all(&s.stream, NULL, 0, NULL),
        weft_io_flush(&s.stream),                  weft_io_shutdown(&s.stream),
    };
    for (int i = 0; i < 4; i++) { /* the ones that can wait */
        poll_pending(WEFT_FUTURE(&ops[i]), &w);
        weft_future_drop(WEFT_FUTURE(&ops[i]));
    }
    for (int i = 4; i < 8; i++)
        weft_future_drop(WEFT_FUTURE(&ops[i])); /* dropped unpolled */
    weft_bytes_t b = { 0 };
    weft_io_read_to_end_t r = weft_io_read_to_end(&s.stream, &b, 100);
    poll_pending(WEFT_FUTURE(&r), &w);
    weft_future_drop(WEFT_FUTURE(&r));
    weft_bytes_free(&b);
    scripted_t a, c;
    scripted_init(&a, pattern, 64, buf, sizeof buf, 2);
    scripted_init(&c, pattern, 64, buf, sizeof buf, 2);
    weft_io_copy_t f = weft_io_copy(&a.stream, &c.stream, NULL);
    poll_pending(WEFT_FUTURE(&f), &w);
    weft_future_drop(WEFT_FUTURE(&f));
    f = weft_io_copy_bidirectional(&a.stream, &c.stream, NULL);
    poll_pending(WEFT_FUTURE(&f), &w);
    weft_future_drop(WEFT_FUTURE(&f));
    f = weft_io_copy(&a.stream, &c.stream, NULL);
    weft_future_drop(WEFT_FUTURE(&f)); /* never polled: nothing allocated */
}
END_TEST

/* ---- The duplex pair, by hand ------------------------------------------------------ */

START_TEST(t_duplex_basic)
{
    weft_duplex_t a, b;
    ck_assert_int_eq(weft_duplex_new(0, &a, &b), WEFT_EINVAL);
    ck_assert_int_eq(weft_duplex_new(8, &a, &b), 0);
    weft_stream_t *sa = weft_duplex_stream(&a), *sb = weft_duplex_stream(&b);
    ck_assert(sa->vtable->flags & WEFT_STREAM_DUPLEX);
    counter_t rc_ = { 0 }, wc_ = { 0 };
    weft_waker_t rw = counter_waker(&rc_), ww = counter_waker(&wc_);
    weft_context_t rcx = { &rw }, wcx = { &ww };
    char buf[16];
    ssize_t n = 0;
    /* an empty buffer: the read waits, a write wakes it */
    ck_assert_int_eq(weft_stream_poll_read(sb, &rcx, buf, sizeof buf, &n), WEFT_PENDING);
    ck_assert_int_eq(weft_stream_poll_write(sa, &wcx, "0123456789", 10, &n), WEFT_READY);
    ck_assert_int_eq(n, 8); /* only the capacity fits */
    ck_assert_int_eq(rc_.wakes, 1);
    ck_assert_int_eq(weft_stream_poll_write(sa, &wcx, "89", 2, &n), WEFT_PENDING); /* full */
    ck_assert_int_eq(weft_stream_poll_read(sb, &rcx, buf, 5, &n), WEFT_READY);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(memcmp(buf, "01234", 5), 0);
    ck_assert_int_eq(wc_.wakes, 1); /* room: the writer woke */
    ck_assert_int_eq(weft_stream_poll_write(sa, &wcx, "89ab", 4, &n), WEFT_READY);
    ck_assert_int_eq(n, 4); /* wraps around the ring */
    ck_assert_int_eq(weft_stream_poll_read(sb, &rcx, buf, sizeof buf, &n), WEFT_READY);
    ck_assert_int_eq(n, 7);
    ck_assert_int_eq(memcmp(buf, "56789ab", 7), 0);
    /* shutdown: the reader sees end of stream, the other direction goes on */
    int rc = 1;
    ck_assert_int_eq(weft_stream_poll_read(sb, &rcx, buf, sizeof buf, &n), WEFT_PENDING);
    ck_assert_int_eq(weft_stream_poll_shutdown(sa, &wcx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(rc_.wakes, 2);
    ck_assert_int_eq(weft_stream_poll_read(sb, &rcx, buf, sizeof buf, &n), WEFT_READY);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(weft_stream_poll_write(sa, &wcx, "x", 1, &n), WEFT_READY);
    ck_assert_int_eq(n, WEFT_EPIPE); /* written after our own shutdown */
    ck_assert_int_eq(weft_stream_poll_write(sb, &wcx, "back", 4, &n), WEFT_READY);
    ck_assert_int_eq(n, 4);
    /* close b: a reads what b wrote, then end of stream; a's writes fail */
    ck_assert_int_eq(weft_stream_poll_read(sa, &rcx, buf, 2, &n), WEFT_READY);
    weft_duplex_close(&b);
    ck_assert_int_eq(weft_stream_poll_read(sa, &rcx, buf, sizeof buf, &n), WEFT_READY);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(weft_stream_poll_read(sa, &rcx, buf, sizeof buf, &n), WEFT_READY);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(weft_stream_poll_read(sb, &rcx, buf, sizeof buf, &n), WEFT_READY);
    ck_assert_int_eq(n, WEFT_EBADF); /* a closed end */
    weft_duplex_close(&b); /* twice: a no-op */
    weft_duplex_close(&a);
    ck_assert_int_eq(rc_.clones, rc_.drops); /* every waker clone released */
    ck_assert_int_eq(wc_.clones, wc_.drops);
}
END_TEST

START_TEST(t_duplex_close_wakes)
{
    weft_duplex_t a, b;
    ck_assert_int_eq(weft_duplex_new(4, &a, &b), 0);
    counter_t rc_ = { 0 }, wc_ = { 0 };
    weft_waker_t rw = counter_waker(&rc_), ww = counter_waker(&wc_);
    weft_context_t rcx = { &rw }, wcx = { &ww };
    char buf[8];
    ssize_t n = 0;
    /* a waits to read, and waits to write into a full buffer */
    ck_assert_int_eq(weft_stream_poll_read(weft_duplex_stream(&a), &rcx, buf, sizeof buf, &n), WEFT_PENDING);
    ck_assert_int_eq(weft_stream_poll_write(weft_duplex_stream(&a), &wcx, "abcd", 4, &n), WEFT_READY);
    ck_assert_int_eq(weft_stream_poll_write(weft_duplex_stream(&a), &wcx, "e", 1, &n), WEFT_PENDING);
    weft_duplex_close(&b);
    ck_assert_int_eq(rc_.wakes, 1);
    ck_assert_int_eq(wc_.wakes, 1);
    ck_assert_int_eq(weft_stream_poll_write(weft_duplex_stream(&a), &wcx, "e", 1, &n), WEFT_READY);
    ck_assert_int_eq(n, WEFT_EPIPE);
    ck_assert_int_eq(weft_stream_poll_read(weft_duplex_stream(&a), &rcx, buf, sizeof buf, &n), WEFT_READY);
    ck_assert_int_eq(n, 0);
    weft_duplex_close(&a);
    ck_assert_int_eq(rc_.clones, rc_.drops);
    ck_assert_int_eq(wc_.clones, wc_.drops);
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_duplex_new(4, &a, &b), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
}
END_TEST

/* ---- split, by hand ------------------------------------------------------------------ */

START_TEST(t_split_scripted)
{
    fill_pattern();
    scripted_t s;
    unsigned char sink[64], got[64];
    scripted_init(&s, pattern, 40, sink, sizeof sink, 3);
    weft_io_half_t rd, wr;
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_io_split(&s.stream, &rd, &wr), WEFT_ENOMEM); /* the lock */
    weft__alloc_fail_after(-1);
    ck_assert_int_eq(weft_io_split(&s.stream, &rd, &wr), 0);
    ssize_t n = 0;
    weft_io_op_t op = weft_io_read_exact(weft_io_half_stream(&rd), got, 40, NULL);
    drive(WEFT_FUTURE(&op), &n);
    ck_assert_int_eq(n, 40);
    op = weft_io_write_all(weft_io_half_stream(&wr), pattern, 30, NULL);
    drive(WEFT_FUTURE(&op), &n);
    ck_assert_int_eq(n, 30);
    ck_assert_int_eq(memcmp(sink, pattern, 30), 0);
    /* each half has only its own direction */
    op = weft_io_write(weft_io_half_stream(&rd), pattern, 3);
    drive(WEFT_FUTURE(&op), &n);
    ck_assert_int_eq(n, WEFT_EBADF);
    op = weft_io_read(weft_io_half_stream(&wr), got, 3);
    drive(WEFT_FUTURE(&op), &n);
    ck_assert_int_eq(n, WEFT_EBADF);
    int rc = 1;
    op = weft_io_shutdown(weft_io_half_stream(&wr));
    drive(WEFT_FUTURE(&op), &rc);
    ck_assert_int_eq(s.shutdowns, 1);
    ck_assert_ptr_eq(weft_io_unsplit(&rd, &wr), &s.stream);
}
END_TEST

static weft_io_half_t bad_rd, bad_wr, bad_rd2, bad_wr2;
static scripted_t bad_s, bad_s2;
static void unsplit_mismatch(void)
{
    scripted_init(&bad_s, NULL, 0, NULL, 0, 1);
    scripted_init(&bad_s2, NULL, 0, NULL, 0, 1);
    if (weft_io_split(&bad_s.stream, &bad_rd, &bad_wr) != 0 || weft_io_split(&bad_s2.stream, &bad_rd2, &bad_wr2) != 0)
        return;
    (void)weft_io_unsplit(&bad_rd, &bad_wr2);
}
START_TEST(t_unsplit_mismatch)
{
    expect_panic(unsplit_mismatch, "weft_io_unsplit");
}
END_TEST

/* The lock by hand: the write half finds the read half inside the stream
 * (a stream whose read polls the write half re-entrantly is the only way
 * to be "inside" on one thread), waits, and is woken on release. */
typedef struct {
    weft_stream_t stream;
    weft_io_half_t *wr;
    weft_poll_t inner_write;
    ssize_t inner_n;
    counter_t *wc;
} nested_t;
static weft_poll_t nested_read(weft_stream_t *st, weft_context_t *cx, void *buf, size_t len, ssize_t *n)
{
    (void)cx, (void)buf, (void)len;
    nested_t *s = (nested_t *)(void *)st;
    weft_waker_t w = counter_waker(s->wc);
    weft_context_t wcx = { &w };
    s->inner_write = weft_stream_poll_write(weft_io_half_stream(s->wr), &wcx, "x", 1, &s->inner_n);
    *n = 0;
    return WEFT_READY;
}
static weft_poll_t nested_write(weft_stream_t *st, weft_context_t *cx, const void *buf, size_t len, ssize_t *n)
{
    (void)st, (void)cx, (void)buf;
    *n = (ssize_t)len;
    return WEFT_READY;
}
static const weft_stream_vtable_t nested_vt = { .poll_read = nested_read, .poll_write = nested_write, .name = "nested" };
START_TEST(t_split_lock_waits)
{
    counter_t wc = { 0 };
    nested_t s = { { &nested_vt }, NULL, WEFT_READY, 0, &wc };
    weft_io_half_t rd, wr;
    ck_assert_int_eq(weft_io_split(&s.stream, &rd, &wr), 0);
    s.wr = &wr;
    char buf[4];
    ssize_t n = 0;
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    ck_assert_int_eq(weft_stream_poll_read(weft_io_half_stream(&rd), &cx, buf, sizeof buf, &n), WEFT_READY);
    ck_assert_int_eq(s.inner_write, WEFT_PENDING); /* the read half held the stream */
    ck_assert_int_eq(wc.wakes, 1);                 /* and woke the writer on release */
    ck_assert_int_eq(weft_stream_poll_write(weft_io_half_stream(&wr), &cx, "x", 1, &n), WEFT_READY);
    ck_assert_int_eq(n, 1);
    weft_io_half_release(&rd);
    weft_io_half_release(&wr);
    ck_assert_int_eq(wc.clones, wc.drops);
}
END_TEST

/* ---- Tasks on a runtime -------------------------------------------------------------- */

#define BIG (256 * 1024)
static unsigned char big_src[BIG];
static void fill_big(void)
{
    for (size_t i = 0; i < BIG; i++)
        big_src[i] = (unsigned char)(i * 131 + (i >> 9));
}

/* Writes len bytes of big_src in pieces, then shuts down. */
typedef struct {
    WEFT_FRAME;
    weft_stream_t *s;
    size_t len, off, piece;
    ssize_t n;
    int rc;
    weft_io_op_t op;
} writer_t;
WEFT_ASYNC(writer_t, writer_fn, int)
{
    WEFT_BEGIN();
    for (self->off = 0; self->off < self->len; self->off += self->piece) {
        if (self->piece > self->len - self->off)
            self->piece = self->len - self->off;
        WEFT_AWAIT(&self->op, weft_io_write_all(self->s, big_src + self->off, self->piece, NULL), &self->n);
        if (!WEFT_TEST_CHECK_INT_EQ(self->n, (ssize_t)self->piece))
            WEFT_RETURN(-1);
    }
    WEFT_AWAIT(&self->op, weft_io_shutdown(self->s), &self->rc);
    WEFT_RETURN(self->rc);
    WEFT_END();
}
static writer_t writer(weft_stream_t *s, size_t len, size_t piece)
{
    return (writer_t){ WEFT_FRAME_INIT(writer_fn), .s = s, .len = len, .piece = piece };
}

/* Reads to the end and checks the bytes against big_src. */
typedef struct {
    WEFT_FRAME;
    weft_stream_t *s;
    size_t want;
    weft_bytes_t b;
    ssize_t n;
    weft_io_read_to_end_t r;
} reader_t;
static void reader_cleanup(reader_t *r) { weft_bytes_free(&r->b); }
WEFT_ASYNC_WITH_DROP(reader_t, reader_fn, int, reader_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->r, weft_io_read_to_end(self->s, &self->b, BIG), &self->n);
    if (!WEFT_TEST_CHECK_INT_EQ(self->n, (ssize_t)self->want))
        WEFT_RETURN(-1);
    if (!WEFT_TEST_CHECK(memcmp(self->b.data, big_src, self->want) == 0))
        WEFT_RETURN(-1);
    WEFT_RETURN(0);
    WEFT_END();
}
static reader_t reader(weft_stream_t *s, size_t want)
{
    return (reader_t){ WEFT_FRAME_INIT(reader_fn), .s = s, .want = want };
}

/* Echo: copy a stream onto itself, then shut it down. */
typedef struct {
    WEFT_FRAME;
    weft_stream_t *s;
    weft_io_copied_t c;
    int rc;
    weft_io_copy_t copy;
    weft_io_op_t op;
} echo_t;
WEFT_ASYNC(echo_t, echo_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->copy, weft_io_copy(self->s, self->s, NULL), &self->c);
    if (!WEFT_TEST_CHECK_INT_EQ(self->c.rc, 0))
        WEFT_RETURN(-1);
    WEFT_AWAIT(&self->op, weft_io_shutdown(self->s), &self->rc);
    WEFT_RETURN((int)(self->c.bytes == BIG ? 0 : -1));
    WEFT_END();
}

static void spawn3(weft_runtime_t *rt, weft_future_t *f1, weft_future_t *f2, weft_future_t *f3)
{
    weft_join_handle_t h[3];
    weft_future_t *fs[3] = { f1, f2, f3 };
    int n = f3 != NULL ? 3 : 2;
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), fs[i], &h[i], NULL, WEFT_SITE), 0);
    for (int i = 0; i < n; i++) {
        int out = -1;
        ck_assert_int_eq(join_out(rt, &h[i], &out), 0);
        ck_assert_int_eq(out, 0);
    }
}

/* A split duplex end: its write half in one task, its read half in
 * another, the peer echoing in a third; every runtime shape (TSan sees the
 * halves on two workers). */
START_TEST(t_split_duplex_tasks)
{
    fill_big();
    for (int shape = 0; shape < N_SHAPES; shape++) {
        weft_runtime_t *rt = shape_rt(shape);
        weft_duplex_t a, b;
        ck_assert_int_eq(weft_duplex_new(4096, &a, &b), 0);
        weft_io_half_t rd, wr;
        ck_assert_int_eq(weft_io_split(weft_duplex_stream(&a), &rd, &wr), 0);
        ck_assert_ptr_null(rd.lock_); /* duplex: no lock */
        writer_t w = writer(weft_io_half_stream(&wr), BIG, 1000);
        reader_t r = reader(weft_io_half_stream(&rd), BIG);
        echo_t e = { WEFT_FRAME_INIT(echo_fn), .s = weft_duplex_stream(&b) };
        spawn3(rt, WEFT_FUTURE(&w), WEFT_FUTURE(&r), WEFT_FUTURE(&e));
        weft_io_unsplit(&rd, &wr);
        weft_duplex_close(&a);
        weft_duplex_close(&b);
        weft_runtime_free(rt);
        ASSERT_NO_TEST_FAIL();
        ASSERT_NO_LIVE();
    }
}
END_TEST

/* A locked split: a non-duplex stream (the scripted one, thread-unsafe
 * on purpose) read by one task and written by another on two workers. */
static unsigned char locked_sink[BIG];
START_TEST(t_split_locked_tasks)
{
    fill_big();
    for (int shape = 0; shape < N_SHAPES; shape++) {
        weft_runtime_t *rt = shape_rt(shape);
        scripted_t s;
        scripted_init(&s, big_src, 20000, locked_sink, 20000, 7);
        weft_io_half_t rd, wr;
        ck_assert_int_eq(weft_io_split(&s.stream, &rd, &wr), 0);
        ck_assert_ptr_nonnull(rd.lock_);
        writer_t w = writer(weft_io_half_stream(&wr), 20000, 333);
        reader_t r = reader(weft_io_half_stream(&rd), 20000);
        spawn3(rt, WEFT_FUTURE(&w), WEFT_FUTURE(&r), NULL);
        ck_assert_int_eq(memcmp(locked_sink, big_src, 20000), 0);
        ck_assert_int_eq(s.shutdowns, 1);
        weft_io_unsplit(&rd, &wr);
        weft_runtime_free(rt);
        ASSERT_NO_TEST_FAIL();
        ASSERT_NO_LIVE();
    }
}
END_TEST

/* The budget: an echo over an always-ready duplex pair yields. */
typedef struct {
    WEFT_FRAME;
    weft_duplex_t a, b;
    int i;
    ssize_t n;
    char c;
    weft_io_op_t op;
} greedy_t;
WEFT_ASYNC(greedy_t, greedy_fn, int)
{
    WEFT_BEGIN();
    for (self->i = 1; self->i <= 1000; self->i++) {
        if (coop_sibling_ran)
            break;
        WEFT_AWAIT(&self->op, weft_io_write(weft_duplex_stream(&self->a), "x", 1), &self->n);
        WEFT_AWAIT(&self->op, weft_io_read(weft_duplex_stream(&self->b), &self->c, 1), &self->n);
    }
    weft_duplex_close(&self->a);
    weft_duplex_close(&self->b);
    WEFT_RETURN(self->i > 1000 ? 0 : self->i);
    WEFT_END();
}
START_TEST(t_duplex_coop)
{
    greedy_t g = { WEFT_FRAME_INIT(greedy_fn) };
    ck_assert_int_eq(weft_duplex_new(16, &g.a, &g.b), 0);
    assert_coop_yields(WEFT_FUTURE(&g));
}
END_TEST

/* ---- copy_bidirectional's idle timeout (on paused-free wall time) ----------------- */
typedef struct {
    WEFT_FRAME;
    weft_stream_t *a, *b;
    weft_io_copy_opts_t opts;
    weft_io_copied2_t c;
    weft_io_copy_t copy;
} bidi_t;
WEFT_ASYNC(bidi_t, bidi_fn, weft_io_copied2_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->copy, weft_io_copy_bidirectional(self->a, self->b, &self->opts), &self->c);
    WEFT_RETURN(self->c);
    WEFT_END();
}

/* Trickles one byte every 20 ms, n times, then waits to be dropped. */
typedef struct {
    WEFT_FRAME;
    weft_stream_t *s;
    int i, n;
    ssize_t r;
    weft_sleep_t sl;
    weft_io_op_t op;
} trickle_t;
WEFT_ASYNC(trickle_t, trickle_fn, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < self->n; self->i++) {
        WEFT_AWAIT(&self->sl, weft_sleep_ms(20), NULL);
        WEFT_AWAIT(&self->op, weft_io_write(self->s, "t", 1), &self->r);
    }
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(t_copy_idle_timeout)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    weft_duplex_t c1, p1, c2, p2; /* client c1 <-> p1 [copy] p2 <-> c2 upstream */
    ck_assert_int_eq(weft_duplex_new(64, &c1, &p1), 0);
    ck_assert_int_eq(weft_duplex_new(64, &p2, &c2), 0);
    trickle_t t = { WEFT_FRAME_INIT(trickle_fn), .s = weft_duplex_stream(&c1), .n = 8 };
    weft_join_handle_t ht;
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&t), &ht, NULL, WEFT_SITE), 0);
    bidi_t b = { WEFT_FRAME_INIT(bidi_fn), .a = weft_duplex_stream(&p1), .b = weft_duplex_stream(&p2),
                 .opts = { .idle_ms = 60 } };
    uint64_t t0 = weft_now_ns();
    weft_io_copied2_t out = { 0, 0, 0 };
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&b), &out), 0);
    uint64_t took_ms = (weft_now_ns() - t0) / 1000000u;
    ck_assert_int_eq(out.rc, WEFT_ETIMEDOUT);
    ck_assert_uint_eq(out.a_to_b, 8); /* the trickle kept it alive */
    ck_assert_uint_ge(took_ms, 8 * 20 + 60 - 5);
    ck_assert_uint_lt(took_ms, 5000);
    int rc = -1;
    ck_assert_int_eq(join_out(rt, &ht, &rc), 0);
    weft_duplex_close(&c1);
    weft_duplex_close(&p1);
    weft_duplex_close(&p2);
    weft_duplex_close(&c2);
    weft_runtime_free(rt);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- TCP ---------------------------------------------------------------------------------- */

/* Accepts one connection on l into *s (output int). */
typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t *l;
    weft_tcp_stream_t *s;
    int rc;
    weft_tcp_accept_t acc;
} accept1_t;
WEFT_ASYNC(accept1_t, accept1_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->acc, weft_tcp_accept(self->l, self->s, NULL), &self->rc);
    WEFT_RETURN(self->rc);
    WEFT_END();
}
typedef struct {
    WEFT_FRAME;
    uint16_t port;
    weft_tcp_stream_t *s;
    int rc;
    weft_tcp_connect_t c;
} connect1_t;
WEFT_ASYNC(connect1_t, connect1_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->c, weft_tcp_connect_ip("127.0.0.1", self->port, self->s), &self->rc);
    WEFT_RETURN(self->rc);
    WEFT_END();
}

typedef struct {
    weft_future_t future;
    weft_tcp_listener_t *l;
} listen_t;
static weft_poll_t listen_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx;
    *(int *)out = weft_tcp_listen_ip("127.0.0.1", 0, 8, ((listen_t *)(void *)f)->l);
    return WEFT_READY;
}
static const weft_future_vtable_t listen_vt = { listen_poll, NULL, NULL, sizeof(listen_t), sizeof(int), "listen" };

/* A connected pair of TCP streams on 127.0.0.1. */
static void tcp_pair(weft_runtime_t *rt, weft_tcp_stream_t *srv, weft_tcp_stream_t *cli)
{
    weft_tcp_listener_t l;
    listen_t lf = { { &listen_vt }, &l };
    int rc = 1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&lf), &rc), 0);
    ck_assert_int_eq(rc, 0);
    accept1_t a = { WEFT_FRAME_INIT(accept1_fn), .l = &l, .s = srv };
    connect1_t c = { WEFT_FRAME_INIT(connect1_fn), .port = weft_tcp_listener_port(&l), .s = cli };
    weft_join_handle_t ha;
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&a), &ha, NULL, WEFT_SITE), 0);
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&c), &rc), 0);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(join_out(rt, &ha, &rc), 0);
    ck_assert_int_eq(rc, 0);
    weft_tcp_listener_close(&l);
}

/* The utilities over TCP: a writer task and a reader task on the two
 * ends, then an echo through copy (the server copies onto itself). */
START_TEST(t_tcp_utilities)
{
    fill_big();
    for (int shape = 0; shape < N_SHAPES; shape++) {
        weft_runtime_t *rt = shape_rt(shape);
        weft_tcp_stream_t srv, cli;
        tcp_pair(rt, &srv, &cli);
        weft_io_half_t rd, wr;
        ck_assert_int_eq(weft_io_split(weft_tcp_stream_as(&cli), &rd, &wr), 0);
        writer_t w = writer(weft_io_half_stream(&wr), BIG, 7000);
        reader_t r = reader(weft_io_half_stream(&rd), BIG);
        echo_t e = { WEFT_FRAME_INIT(echo_fn), .s = weft_tcp_stream_as(&srv) };
        spawn3(rt, WEFT_FUTURE(&w), WEFT_FUTURE(&r), WEFT_FUTURE(&e));
        weft_io_unsplit(&rd, &wr);
        weft_tcp_close(&srv);
        weft_tcp_close(&cli);
        weft_runtime_free(rt);
        ASSERT_NO_TEST_FAIL();
        ASSERT_NO_LIVE();
    }
}
END_TEST

/* copy from a peer that resets mid-transfer: a plain socket writes 1000
 * bytes and closes with SO_LINGER 0 (RST, no FIN first); the copy ends
 * with the reset and the count of what it wrote. */
typedef struct {
    WEFT_FRAME;
    weft_stream_t *r, *w;
    weft_io_copied_t c;
    weft_io_copy_t copy;
} copy1_t;
WEFT_ASYNC(copy1_t, copy1_fn, weft_io_copied_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->copy, weft_io_copy(self->r, self->w, NULL), &self->c);
    WEFT_RETURN(self->c);
    WEFT_END();
}
START_TEST(t_tcp_copy_reset)
{
    fill_big();
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    weft_tcp_listener_t l;
    listen_t lf = { { &listen_vt }, &l };
    int rc = 1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&lf), &rc), 0);
    ck_assert_int_eq(rc, 0);
    weft_tcp_stream_t srv;
    accept1_t a = { WEFT_FRAME_INIT(accept1_fn), .l = &l, .s = &srv };
    weft_join_handle_t ha;
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&a), &ha, NULL, WEFT_SITE), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(weft_tcp_listener_port(&l)) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    ck_assert_int_eq(join_out(rt, &ha, &rc), 0);
    ck_assert_int_eq(rc, 0);
    weft_tcp_listener_close(&l);
    ck_assert_int_eq(write(fd, big_src, 1000), 1000);
    struct linger lg = { 1, 0 };
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(fd); /* RST */
    weft_duplex_t d1, d2;
    ck_assert_int_eq(weft_duplex_new(1 << 16, &d1, &d2), 0);
    copy1_t c = { WEFT_FRAME_INIT(copy1_fn), .r = weft_tcp_stream_as(&srv), .w = weft_duplex_stream(&d1) };
    weft_io_copied_t out = { 0, 0 };
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&c), &out), 0);
    ck_assert_int_eq(out.rc, WEFT_ECONNRESET);
    ck_assert_uint_le(out.bytes, 1000); /* a reset may discard what was not read yet */
    /* and a copy into the reset socket fails (d1 closed: the copy cannot
     * wait for more input) */
    weft_duplex_close(&d1);
    copy1_t c2 = { WEFT_FRAME_INIT(copy1_fn), .r = weft_duplex_stream(&d2), .w = weft_tcp_stream_as(&srv) };
    weft_io_copied_t out2 = { 0, 0 };
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&c2), &out2), 0);
    ck_assert_int_lt(out2.rc, 0);
    weft_duplex_close(&d2);
    weft_tcp_close(&srv);
    weft_runtime_free(rt);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* copy_bidirectional between a TCP stream and a duplex end: the client
 * half-closes after its request; the far end sees end of stream, answers
 * and closes; the client reads the answer and then end of stream. */
typedef struct {
    WEFT_FRAME;
    weft_stream_t *s;
    const char *say;
    size_t expect;
    char buf[64];
    weft_bytes_t got;
    ssize_t n;
    int rc;
    weft_io_op_t op;
    weft_io_read_to_end_t rte;
} talker_t;
static void talker_cleanup(talker_t *t) { weft_bytes_free(&t->got); }
WEFT_ASYNC_WITH_DROP(talker_t, talker_fn, int, talker_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_io_write_all(self->s, self->say, strlen(self->say), NULL), &self->n);
    WEFT_AWAIT(&self->op, weft_io_shutdown(self->s), &self->rc); /* half-close */
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
        WEFT_RETURN(-1);
    WEFT_AWAIT(&self->rte, weft_io_read_to_end(self->s, &self->got, 64), &self->n);
    if (!WEFT_TEST_CHECK_INT_EQ(self->n, (ssize_t)self->expect))
        WEFT_RETURN(-1);
    WEFT_RETURN(0);
    WEFT_END();
}
START_TEST(t_tcp_bidi_half_close)
{
    for (int shape = 0; shape < N_SHAPES; shape++) {
        weft_runtime_t *rt = shape_rt(shape);
        weft_tcp_stream_t srv, cli;
        tcp_pair(rt, &srv, &cli);
        weft_duplex_t p, far;
        ck_assert_int_eq(weft_duplex_new(256, &p, &far), 0);
        talker_t client = { WEFT_FRAME_INIT(talker_fn), .s = weft_tcp_stream_as(&cli), .say = "request!",
                            .expect = 6 };
        talker_t server = { WEFT_FRAME_INIT(talker_fn), .s = weft_duplex_stream(&far), .say = "reply!", .expect = 8 };
        bidi_t b = { WEFT_FRAME_INIT(bidi_fn), .a = weft_tcp_stream_as(&srv), .b = weft_duplex_stream(&p) };
        weft_join_handle_t h[2];
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&client), &h[0], NULL, WEFT_SITE), 0);
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&server), &h[1], NULL, WEFT_SITE), 0);
        weft_io_copied2_t out = { 0, 0, 1 };
        ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&b), &out), 0);
        ck_assert_int_eq(out.rc, 0);
        ck_assert_uint_eq(out.a_to_b, 8);
        ck_assert_uint_eq(out.b_to_a, 6);
        for (int i = 0; i < 2; i++) {
            int rc = -1;
            ck_assert_int_eq(join_out(rt, &h[i], &rc), 0);
            ck_assert_int_eq(rc, 0);
        }
        weft_duplex_close(&p);
        weft_duplex_close(&far);
        weft_tcp_close(&srv);
        weft_tcp_close(&cli);
        weft_runtime_free(rt);
        ASSERT_NO_TEST_FAIL();
        ASSERT_NO_LIVE();
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("scripted");
    tcase_add_test(tc, t_read_exact_chunks);
    tcase_add_test(tc, t_read_exact_short);
    tcase_add_test(tc, t_read_and_write_once);
    tcase_add_test(tc, t_write_all_chunks);
    tcase_add_test(tc, t_writev_all_chunks);
    tcase_add_test(tc, t_read_to_end);
    tcase_add_test(tc, t_read_to_end_over_cap);
    tcase_add_test(tc, t_read_to_end_enomem);
    tcase_add_test(tc, t_read_to_end_reused_block_over_max);
    tcase_add_test(tc, t_copy_chunks);
    tcase_add_test(tc, t_copy_errors);
    tcase_add_test(tc, t_copy_enomem);
    tcase_add_test(tc, t_copy_bidirectional_scripted);
    tcase_add_test(tc, t_copy_huge_buf_size_capped);
    tcase_add_test(tc, t_drop_mid_wait);
    suite_add_tcase(s, tc);
    tc = tcase_create("duplex");
    tcase_add_test(tc, t_duplex_basic);
    tcase_add_test(tc, t_duplex_close_wakes);
    tcase_add_test(tc, t_duplex_coop);
    suite_add_tcase(s, tc);
    tc = tcase_create("split");
    tcase_add_test(tc, t_split_scripted);
    tcase_add_test(tc, t_split_lock_waits);
    if (can_fork())
        tcase_add_test(tc, t_unsplit_mismatch);
    tcase_add_test(tc, t_split_duplex_tasks);
    tcase_add_test(tc, t_split_locked_tasks);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("runtime");
    tcase_add_test(tc, t_copy_idle_timeout);
    tcase_add_test(tc, t_tcp_utilities);
    tcase_add_test(tc, t_tcp_copy_reset);
    tcase_add_test(tc, t_tcp_bidi_half_close);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
