/* tests/test_stdio.c - the process's own standard streams (weft/process.h:
 * weft_stdin_open, weft_stdout_open, weft_stderr_open) with a pipe put in
 * place of fd 0, 1 or 2: stdin hands out every byte and then the end of
 * stream; writes reach the fd in order and have all arrived once a flush
 * returns; and the handles never change the fd's O_NONBLOCK bit, which
 * belongs to an open file description shared with other processes. Every
 * scenario runs on each runtime shape. */
#include <sys/ioctl.h>

#include "stdfd.h"
#include "testlib.h"

#define BIG (300 * 1000) /* several 64 KiB hops to the pool, and more than a pipe holds */

static unsigned char pat(size_t i)
{
    return (unsigned char)((i * 131 + (i >> 9)) & 0xff);
}

static ssize_t block_on_ssize(weft_runtime_t *rt, weft_future_t *f)
{
    ssize_t n = -9999;
    ck_assert_int_eq(weft_runtime_block_on(rt, f, &n), 0);
    return n;
}

static int block_on_int(weft_runtime_t *rt, weft_future_t *f)
{
    int rc = -9999;
    ck_assert_int_eq(weft_runtime_block_on(rt, f, &rc), 0);
    return rc;
}

/* A plain thread on the other end of a pipe: writes len pattern bytes and
 * closes (feeder), or reads up to len bytes until the end (drainer). */
typedef struct {
    pthread_t th;
    int fd;
    size_t len, done;
    unsigned char *buf;
} pump_t;

static void *feed(void *arg)
{
    pump_t *p = arg;
    while (p->done < p->len) {
        ssize_t n = write(p->fd, p->buf + p->done, p->len - p->done);
        if (n < 0 && errno == EINTR)
            continue;
        if (!WEFT_TEST_CHECK_MSG(n > 0, "feed: write: %zd (%d)", n, errno))
            break;
        p->done += (size_t)n;
    }
    close(p->fd);
    return NULL;
}

static void *drain(void *arg)
{
    pump_t *p = arg;
    p->done = read_with_deadline(p->fd, p->buf, p->len, 30000);
    unsigned char extra;
    WEFT_TEST_CHECK_MSG(read_with_deadline(p->fd, &extra, 1, 30000) == 0, "drain: more bytes than written");
    return NULL;
}

static unsigned char *pattern(size_t len)
{
    unsigned char *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < len; i++)
        b[i] = pat(i);
    return b;
}

/* ---- stdin ------------------------------------------------------------------------ */

/* A writer thread feeds more than a pipe holds while weft reads it all
 * through fd 0, then closes: the stream hands out every byte in order,
 * then 0 (end of stream), and again 0 when asked once more. */
START_TEST(stdin_reads_every_byte_then_the_end)
{
    proc_usage_t u0 = proc_usage();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    stdfd_swap_t sw;
    stdfd_swap(&sw, 0, p[0]);
    bool nb_before = fd_nonblocking(0);
    pump_t feeder = { .fd = p[1], .len = BIG, .buf = pattern(BIG) };
    ck_assert_int_eq(pthread_create(&feeder.th, NULL, feed, &feeder), 0);

    weft_runtime_t *rt = shape_rt(_i);
    weft_stdio_t in;
    ck_assert_int_eq(weft_stdin_open(&in), 0);
    weft_stream_t *s = weft_stdio_as(&in);
    ck_assert_str_eq(s->vtable->name, "stdin");
    weft_bytes_t got = { 0 };
    weft_io_read_to_end_t rd = weft_io_read_to_end(s, &got, 2 * BIG);
    ck_assert_int_eq(block_on_ssize(rt, WEFT_FUTURE(&rd)), BIG);
    ck_assert_uint_eq(got.len, BIG);
    ck_assert_mem_eq(got.data, feeder.buf, BIG);
    char c;
    weft_io_op_t again = weft_io_read(s, &c, 1);
    ck_assert_int_eq(block_on_ssize(rt, WEFT_FUTURE(&again)), 0);
    weft_bytes_free(&got);
    weft_stdio_close(&in);
    weft_stdio_close(&in); /* idempotent */
    weft_runtime_free(rt);

    ck_assert_int_eq(pthread_join(feeder.th, NULL), 0);
    bool nb_after = fd_nonblocking(0);
    stdfd_restore(&sw);
    ASSERT_NO_TEST_FAIL();
    ck_assert(!nb_before);
    ck_assert(!nb_after);
    free(feeder.buf);
    assert_usage_back(u0);
    ASSERT_NO_LIVE();
}
END_TEST

/* An fd 0 that someone else made non-blocking stays so: weft neither sets
 * nor clears the bit. (Here the bytes and the end are there before the
 * first read, so no read meets EAGAIN.) */
START_TEST(stdin_leaves_a_nonblocking_fd_alone)
{
    proc_usage_t u0 = proc_usage();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    ck_assert_int_eq(write(p[1], "abc", 3), 3);
    ck_assert_int_eq(close(p[1]), 0);
    set_nonblocking(p[0], true);
    stdfd_swap_t sw;
    stdfd_swap(&sw, 0, p[0]);

    weft_runtime_t *rt = shape_rt(_i);
    weft_stdio_t in;
    ck_assert_int_eq(weft_stdin_open(&in), 0);
    weft_bytes_t got = { 0 };
    weft_io_read_to_end_t rd = weft_io_read_to_end(weft_stdio_as(&in), &got, 64);
    ck_assert_int_eq(block_on_ssize(rt, WEFT_FUTURE(&rd)), 3);
    ck_assert_mem_eq(got.data, "abc", 3);
    weft_bytes_free(&got);
    weft_stdio_close(&in);
    weft_runtime_free(rt);

    bool nb_after = fd_nonblocking(0);
    stdfd_restore(&sw);
    ck_assert(nb_after);
    assert_usage_back(u0);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- stdout and stderr ------------------------------------------------------------------ */

typedef struct {
    WEFT_FRAME;
    weft_stream_t *s;
    const unsigned char *big;
    weft_io_op_t op;
    ssize_t n;
    int rc;
    size_t off, step;
} pieces_t;
/* Writes big in pieces of growing, uneven sizes (1 byte up to past the
 * 64 KiB the handle takes per write), then flushes. */
WEFT_ASYNC(pieces_t, pieces_fn, int)
{
    WEFT_BEGIN();
    for (self->off = 0, self->step = 1; self->off < BIG; self->off += self->step, self->step = self->step * 3 + 1) {
        if (self->step > BIG - self->off)
            self->step = BIG - self->off;
        WEFT_AWAIT(&self->op, weft_io_write_all(self->s, self->big + self->off, self->step, NULL), &self->n);
        if (!WEFT_TEST_CHECK_INT_EQ(self->n, self->step))
            WEFT_RETURN(-1);
    }
    WEFT_AWAIT(&self->op, weft_io_flush(self->s), &self->rc);
    WEFT_RETURN(self->rc);
    WEFT_END();
}

/* fd 1 or 2 on a pipe: small writes are all in the pipe, in order, once
 * the flush returns (nothing reads meanwhile, so the pipe holds exactly
 * what was written); then more than the pipe holds, in uneven pieces,
 * with a thread draining it, arrives whole and in order. The fd's
 * O_NONBLOCK bit is what it was, set or not. */
static void writes_in_order(int shape, int fd, bool nonblocking)
{
    proc_usage_t u0 = proc_usage();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    set_nonblocking(p[1], nonblocking);
    stdfd_swap_t sw;
    stdfd_swap(&sw, fd, p[1]);

    weft_runtime_t *rt = shape_rt(shape);
    weft_stdio_t out;
    ck_assert_int_eq(fd == 1 ? weft_stdout_open(&out) : weft_stderr_open(&out), 0);
    weft_stream_t *s = weft_stdio_as(&out);
    ck_assert_str_eq(s->vtable->name, "stdout");
    static const char *const words[] = { "one ", "two ", "three" };
    for (size_t i = 0; i < 3; i++) {
        weft_io_op_t w = weft_io_write(s, words[i], strlen(words[i]));
        ck_assert_int_eq(block_on_ssize(rt, WEFT_FUTURE(&w)), (ssize_t)strlen(words[i]));
    }
    weft_io_op_t fl = weft_io_flush(s);
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(&fl)), 0);
    int queued = -1;
    ck_assert_int_eq(ioctl(p[0], FIONREAD, &queued), 0);
    ck_assert_int_eq(queued, 13);
    char small[16] = { 0 };
    ck_assert_int_eq(read(p[0], small, sizeof small), 13);
    ck_assert_str_eq(small, "one two three");

    if (!nonblocking) { /* a non-blocking fd would answer EAGAIN once full */
        pump_t drainer = { .fd = p[0], .len = BIG, .buf = malloc(BIG) };
        ck_assert_ptr_nonnull(drainer.buf);
        ck_assert_int_eq(pthread_create(&drainer.th, NULL, drain, &drainer), 0);
        unsigned char *big = pattern(BIG);
        pieces_t t = { WEFT_FRAME_INIT(pieces_fn), .s = s, .big = big };
        ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(&t)), 0);
        ck_assert(fd_nonblocking(fd) == nonblocking);
        weft_stdio_close(&out);
        weft_runtime_free(rt);
        stdfd_restore(&sw); /* the last write end: the drainer sees the end */
        ck_assert_int_eq(pthread_join(drainer.th, NULL), 0);
        ASSERT_NO_TEST_FAIL();
        ck_assert_uint_eq(drainer.done, BIG);
        ck_assert_mem_eq(drainer.buf, big, BIG);
        free(big);
        free(drainer.buf);
    } else {
        ck_assert(fd_nonblocking(fd));
        weft_stdio_close(&out);
        weft_runtime_free(rt);
        stdfd_restore(&sw);
    }
    ck_assert_int_eq(close(p[0]), 0);
    assert_usage_back(u0);
    ASSERT_NO_LIVE();
}

START_TEST(stderr_writes_arrive_in_order)
{
    writes_in_order(_i, 2, false);
}
END_TEST

START_TEST(stdout_writes_arrive_in_order)
{
    writes_in_order(_i, 1, false);
}
END_TEST

START_TEST(stderr_leaves_a_nonblocking_fd_alone)
{
    writes_in_order(_i, 2, true);
}
END_TEST

/* A closed handle answers -EBADF, and a write left in flight by close
 * still reaches the fd while the runtime lives (the job owns the buffer;
 * a runtime shut down before the job started cancels it, which is why
 * the header says to flush first). */
START_TEST(close_with_a_write_in_flight)
{
    proc_usage_t u0 = proc_usage();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    stdfd_swap_t sw;
    stdfd_swap(&sw, 2, p[1]);
    weft_runtime_t *rt = shape_rt(_i);
    weft_stdio_t err;
    ck_assert_int_eq(weft_stderr_open(&err), 0);
    weft_io_op_t w = weft_io_write(weft_stdio_as(&err), "tail", 4);
    ck_assert_int_eq(block_on_ssize(rt, WEFT_FUTURE(&w)), 4);
    weft_stdio_close(&err);
    w = weft_io_write(weft_stdio_as(&err), "x", 1);
    ck_assert_int_eq(block_on_ssize(rt, WEFT_FUTURE(&w)), -EBADF);
    char buf[8];
    size_t got = read_with_deadline(p[0], buf, 4, 10000);
    weft_runtime_free(rt);
    stdfd_restore(&sw);
    ck_assert_uint_eq(got, 4);
    ck_assert_mem_eq(buf, "tail", 4);
    ck_assert_int_eq(close(p[0]), 0);
    assert_usage_back(u0);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    stdfd_warm_up();
    Suite *s = suite_create("stdio");
    TCase *tc = tcase_create("stdio");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, stdin_reads_every_byte_then_the_end, 0, N_SHAPES);
    tcase_add_loop_test(tc, stdin_leaves_a_nonblocking_fd_alone, 0, N_SHAPES);
    tcase_add_loop_test(tc, stderr_writes_arrive_in_order, 0, N_SHAPES);
    tcase_add_loop_test(tc, stdout_writes_arrive_in_order, 0, N_SHAPES);
    tcase_add_loop_test(tc, stderr_leaves_a_nonblocking_fd_alone, 0, N_SHAPES);
    tcase_add_loop_test(tc, close_with_a_write_in_flight, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
