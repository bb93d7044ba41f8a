/* tests/test_asyncfd.c - weft/asyncfd.h: registration errors (not an fd, a
 * closed fd, a blocking fd, a regular file, registered twice, no runtime),
 * deregistering leaves the fd open, readiness on an eventfd through the
 * readable future + try_io and through weft_async_fd_io, an edge that comes
 * in between the await and the clear is not lost, a reader and a writer
 * waiting on one socket at once, deregistering wakes a waiter with -EBADF,
 * a fd closed by the user while a task waits, and a waiting future
 * dropped by a timeout. The readiness tests run on every runtime shape.
 * Plain threads play the other end (blocking calls, short sleeps); every
 * wait is bounded. */
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "testlib.h"
#include "../reactor/io_driver.h"

/* ---- Helpers ------------------------------------------------------------------ */

/* Registers fd on rt (inside block_on): the register call's result. */
typedef struct {
    weft_future_t future;
    int fd;
    weft_async_fd_t *out;
} reg_t;
static weft_poll_t reg_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx;
    reg_t *r = (reg_t *)(void *)f;
    *(int *)out = weft_async_fd_register(r->fd, r->out);
    return WEFT_READY;
}
static const weft_future_vtable_t reg_vt = { reg_poll, NULL, NULL, sizeof(reg_t), sizeof(int), "reg" };
static int reg_on(weft_runtime_t *rt, int fd, weft_async_fd_t *out)
{
    reg_t f = { { &reg_vt }, fd, out };
    int rc = 1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&f), &rc), 0);
    return rc;
}

static ssize_t read_u64(int fd, void *arg)
{
    ssize_t n = read(fd, arg, sizeof(uint64_t));
    return n >= 0 ? n : -errno;
}

static ssize_t recv_some(int fd, void *arg)
{
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0)
        *(char *)arg = buf[0];
    return n >= 0 ? n : -errno;
}

static ssize_t send_one(int fd, void *arg)
{
    ssize_t n = send(fd, arg, 1, MSG_NOSIGNAL);
    return n >= 0 ? n : -errno;
}

/* A plain thread that writes `value` to an eventfd after `delay_ms`. */
typedef struct {
    int fd;
    long delay_ms;
    uint64_t value;
    pthread_t th;
} later_t;
static void *later_fn(void *arg)
{
    later_t *l = arg;
    sleep_ms(l->delay_ms);
    WEFT_TEST_CHECK(write(l->fd, &l->value, sizeof l->value) == (ssize_t)sizeof l->value);
    return NULL;
}
static void later_start(later_t *l, int fd, long delay_ms, uint64_t value)
{
    *l = (later_t){ fd, delay_ms, value, 0 };
    ck_assert_int_eq(pthread_create(&l->th, NULL, later_fn, l), 0);
}

/* ---- Registration errors --------------------------------------------------------- */

START_TEST(register_errors)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    weft_async_fd_t a, b;
    ck_assert_int_eq(reg_on(rt, -1, &a), -EBADF);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    /* A blocking fd would stall a worker. */
    ck_assert_int_eq(reg_on(rt, p[0], &a), WEFT_EINVAL);
    ck_assert_ptr_null(a.io_);
    ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(reg_on(rt, p[0], &a), 0);
    /* Registered twice with one runtime: epoll's EEXIST. */
    ck_assert_int_eq(reg_on(rt, p[0], &b), -EEXIST);
    ck_assert_ptr_null(b.io_);
    ck_assert_int_eq(weft_async_fd_fd(&a), p[0]);
    /* Deregistering gives the fd back, open. */
    ck_assert_int_eq(weft_async_fd_deregister(&a), p[0]);
    ck_assert_int_eq(weft_async_fd_fd(&a), -EBADF);
    ck_assert_int_ge(fcntl(p[0], F_GETFD), 0);
    ck_assert_int_eq(weft_async_fd_deregister(&a), -EBADF);
    ck_assert_int_eq(weft_async_fd_close(&a), -EBADF);
    /* Free to register again after that. */
    ck_assert_int_eq(reg_on(rt, p[0], &a), 0);
    ck_assert_int_eq(weft_async_fd_close(&a), 0);
    ck_assert_int_lt(fcntl(p[0], F_GETFD), 0); /* close closed it */
    /* A closed fd number. */
    ck_assert_int_eq(reg_on(rt, p[0], &a), -EBADF);
    close(p[1]);
    /* A regular file: epoll refuses it. */
    char path[] = "/tmp/weft_asyncfd_XXXXXX";
    int f = mkstemp(path);
    ck_assert_int_ge(f, 0);
    unlink(path);
    ck_assert_int_eq(fcntl(f, F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(reg_on(rt, f, &a), WEFT_EPERM);
    close(f);
    /* Outside a runtime. */
    int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ck_assert_int_eq(weft_async_fd_register(e, &a), WEFT_ENOSYS);
    /* Closed by the user while registered (no waiter): deregistering
     * reports it. */
    ck_assert_int_eq(reg_on(rt, e, &a), 0);
    close(e);
    ck_assert_int_eq(weft_async_fd_deregister(&a), -EBADF);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Readiness on an eventfd ------------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    weft_async_fd_t *afd;
    weft_async_fd_guard_t g;
    weft_async_fd_ready_t rd;
    weft_async_fd_io_t io;
    later_t later;
    uint64_t v;
    int rc;
    ssize_t n;
} evt_t;
WEFT_ASYNC(evt_t, evt_fn, int)
{
    WEFT_BEGIN();
    /* Nothing yet: a write from a plain thread wakes the await. */
    later_start(&self->later, weft_async_fd_fd(self->afd), 20, 5);
    WEFT_AWAIT(&self->rd, weft_async_fd_readable(self->afd, &self->g), &self->rc);
    if (!WEFT_TEST_CHECK(self->rc > 0 && (self->rc & WEFT_FD_READABLE)))
        goto out;
    self->n = weft_async_fd_try_io(&self->g, read_u64, &self->v);
    if (!WEFT_TEST_CHECK_INT_EQ(self->n, 8) || !WEFT_TEST_CHECK_INT_EQ(self->v, 5))
        goto out;
    /* Drained: the next try says EAGAIN and clears the readiness. */
    self->n = weft_async_fd_try_io(&self->g, read_u64, &self->v);
    if (!WEFT_TEST_CHECK_INT_EQ(self->n, WEFT_EAGAIN))
        goto out;
    pthread_join(self->later.th, NULL);
    /* The loop future: waits for the next write, reads it. */
    later_start(&self->later, weft_async_fd_fd(self->afd), 20, 7);
    WEFT_AWAIT(&self->io, weft_async_fd_io(self->afd, WEFT_FD_READABLE, read_u64, &self->v), &self->n);
    WEFT_TEST_CHECK_INT_EQ(self->n, 8);
    WEFT_TEST_CHECK_INT_EQ(self->v, 7);
out:
    pthread_join(self->later.th, NULL);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(eventfd_readiness)
{
    weft_runtime_t *rt = shape_rt(_i);
    int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    weft_async_fd_t afd;
    ck_assert_int_eq(reg_on(rt, e, &afd), 0);
    evt_t t = { WEFT_FRAME_INIT(evt_fn), .afd = &afd };
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&t), NULL), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(weft_async_fd_close(&afd), 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- An edge between the await and the clear is kept -------------------------------- */
typedef struct {
    weft_future_t future;
    weft_async_fd_t *afd;
    weft_async_fd_guard_t *g;
    weft_async_fd_ready_t rd;
    bool started;
} ready_once_t;
/* Polls a readable future to completion once (it must be ready). */
static weft_poll_t ready_once_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    ready_once_t *r = (ready_once_t *)(void *)f;
    if (!r->started) {
        r->rd = weft_async_fd_readable(r->afd, r->g);
        r->started = true;
    }
    if (weft_future_poll(&r->rd.future, cx, out) == WEFT_PENDING)
        return WEFT_PENDING;
    weft_future_drop(&r->rd.future);
    return WEFT_READY;
}
static const weft_future_vtable_t ready_once_vt = { ready_once_poll, NULL, NULL, sizeof(ready_once_t), sizeof(int),
                                                    "ready_once" };

START_TEST(edge_between_await_and_clear_is_kept)
{
    weft_runtime_t *rt = shape_rt(_i);
    int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    uint64_t one = 1, v;
    ck_assert_int_eq(write(e, &one, sizeof one), 8);
    weft_async_fd_t afd;
    ck_assert_int_eq(reg_on(rt, e, &afd), 0);
    weft_async_fd_guard_t g;
    ready_once_t r = { { &ready_once_vt }, &afd, &g, { { NULL } }, false };
    int rc = 0;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&r), &rc), 0);
    ck_assert_int_gt(rc & WEFT_FD_READABLE, 0);
    ck_assert_int_eq(read(e, &v, sizeof v), 8); /* drained: our "syscall" */
    /* A new edge arrives before we clear: wait until the driver has
     * published it (the tick moves), then the clear must refuse. */
    ck_assert_int_eq(write(e, &one, sizeof one), 8);
    for (int i = 0; i < 2000 && atomic_load(&afd.io_->ready) == g.snapshot_; i++)
        let_tasks_run(rt, _i);
    ck_assert_uint_ne(atomic_load(&afd.io_->ready), g.snapshot_);
    ck_assert(!weft_async_fd_clear_ready(&g));
    /* So the next await completes at once, and the data is there. */
    r.started = false;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&r), &rc), 0);
    ck_assert_int_gt(rc & WEFT_FD_READABLE, 0);
    ck_assert_int_eq(read(e, &v, sizeof v), 8);
    ck_assert_int_eq(read(e, &v, sizeof v), -1); /* EAGAIN now */
    ck_assert_int_eq(weft_async_fd_close(&afd), 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- A reader and a writer at once ---------------------------------------------------- */
typedef struct {
    WEFT_FRAME;
    weft_async_fd_t *afd;
    unsigned dir;
    char c;
    weft_async_fd_io_t io;
    ssize_t n;
} side_t;
WEFT_ASYNC(side_t, side_fn, ssize_t)
{
    WEFT_BEGIN();
    if (self->dir == WEFT_FD_READABLE)
        WEFT_AWAIT(&self->io, weft_async_fd_io(self->afd, WEFT_FD_READABLE, recv_some, &self->c), &self->n);
    else
        WEFT_AWAIT(&self->io, weft_async_fd_io(self->afd, WEFT_FD_WRITABLE, send_one, &self->c), &self->n);
    WEFT_RETURN(self->n == 1 ? self->c : self->n); /* the byte moved, or the error */
    WEFT_END();
}

/* The peer: after both sides wait, drain what was sent (so the writer can
 * go on), then send one byte (so the reader can). */
typedef struct {
    int fd;
    size_t drained;
} peer_t;
static void *peer_fn(void *arg)
{
    peer_t *p = arg;
    char buf[65536];
    sleep_ms(30);
    int fl = fcntl(p->fd, F_GETFL);
    fcntl(p->fd, F_SETFL, fl | O_NONBLOCK);
    ssize_t n;
    while ((n = recv(p->fd, buf, sizeof buf, 0)) > 0)
        p->drained += (size_t)n;
    sleep_ms(20);
    WEFT_TEST_CHECK(send(p->fd, "r", 1, MSG_NOSIGNAL) == 1);
    return NULL;
}

START_TEST(reader_and_writer_at_once)
{
    weft_runtime_t *rt = shape_rt(_i);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    /* Fill sv[0]'s send buffer: its writer must wait. */
    char junk[4096] = { 0 };
    size_t filled = 0;
    ssize_t n;
    while ((n = send(sv[0], junk, sizeof junk, MSG_NOSIGNAL)) > 0)
        filled += (size_t)n;
    ck_assert_int_eq(errno, EAGAIN);
    weft_async_fd_t afd;
    ck_assert_int_eq(reg_on(rt, sv[0], &afd), 0);
    side_t rd = { WEFT_FRAME_INIT(side_fn), .afd = &afd, .dir = WEFT_FD_READABLE };
    side_t wr = { WEFT_FRAME_INIT(side_fn), .afd = &afd, .dir = WEFT_FD_WRITABLE, .c = 'w' };
    weft_join_handle_t hr, hw;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &rd, &hr), 0);
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &wr, &hw), 0);
    peer_t p = { sv[1], 0 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, peer_fn, &p), 0);
    ssize_t out = 0;
    ck_assert_int_eq(join_out(rt, &hw, &out), 0);
    ck_assert_int_eq(out, 'w');
    ck_assert_int_eq(join_out(rt, &hr, &out), 0);
    ck_assert_int_eq(out, 'r');
    pthread_join(th, NULL);
    ASSERT_NO_TEST_FAIL();
    ck_assert_uint_ge(p.drained, filled);
    ck_assert_int_eq(weft_async_fd_close(&afd), 0);
    close(sv[1]);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Deregistered, or closed, under a waiter ------------------------------------------- */
/* The readable future, raising *waiting (release) once it has returned
 * pending: its read of afd->io_ then happens before the test thread's
 * deregister (acquire on *waiting), as the header asks. */
typedef struct {
    weft_future_t future;
    weft_async_fd_ready_t rd;
    atomic_int *waiting;
} flagged_t;
static weft_poll_t flagged_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    flagged_t *fl = (flagged_t *)(void *)f;
    weft_poll_t p = weft_future_poll(&fl->rd.future, cx, out);
    if (p == WEFT_PENDING)
        atomic_store_explicit(fl->waiting, 1, memory_order_release); /* pairs with waiter_woken's acquire */
    return p;
}
static void flagged_drop(weft_future_t *f)
{
    weft_future_drop(&((flagged_t *)(void *)f)->rd.future);
}
static const weft_future_vtable_t flagged_vt = { flagged_poll, flagged_drop, NULL, sizeof(flagged_t), sizeof(int),
                                                 "flagged" };

typedef struct {
    WEFT_FRAME;
    weft_async_fd_t *afd;
    weft_async_fd_guard_t g;
    flagged_t fl;
    atomic_int *waiting;
    int rc;
} waiter_t;
WEFT_ASYNC(waiter_t, waiter_fn, int)
{
    WEFT_BEGIN();
    self->fl = (flagged_t){ { &flagged_vt }, weft_async_fd_readable(self->afd, &self->g), self->waiting };
    WEFT_AWAIT_REF(&self->fl, &self->rc);
    WEFT_RETURN(self->rc);
    WEFT_END();
}

/* mode 0: deregister from the test thread while the task waits; mode 1:
 * close the fd first (the task is not woken by that), then deregister,
 * which reports -EBADF and wakes it. */
static void waiter_woken(int shape, int mode)
{
    weft_runtime_t *rt = shape_rt(shape);
    int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    weft_async_fd_t afd;
    ck_assert_int_eq(reg_on(rt, e, &afd), 0);
    atomic_int waiting = 0;
    waiter_t w = { WEFT_FRAME_INIT(waiter_fn), .afd = &afd, .waiting = &waiting };
    weft_join_handle_t h;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &w, &h), 0);
    for (int i = 0; i < 2000 && !atomic_load_explicit(&waiting, memory_order_acquire); i++)
        let_tasks_run(rt, shape);
    ck_assert(atomic_load_explicit(&waiting, memory_order_acquire)); /* pending on the fd now */
    if (mode == 1) {
        close(e);
        for (int i = 0; i < 10; i++)
            let_tasks_run(rt, shape);
        ck_assert(!weft_join_handle_is_finished(&h)); /* the close woke nobody */
        ck_assert_int_eq(weft_async_fd_deregister(&afd), -EBADF);
    } else {
        ck_assert_int_eq(weft_async_fd_deregister(&afd), e);
    }
    int out = 0;
    ck_assert_int_eq(join_out(rt, &h, &out), 0);
    ck_assert_int_eq(out, -EBADF);
    if (mode == 0)
        close(e);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}

START_TEST(deregister_wakes_waiter)
{
    waiter_woken(_i, 0);
}
END_TEST

START_TEST(closed_by_user_while_waiting)
{
    waiter_woken(_i, 1);
}
END_TEST

/* ---- A waiting future dropped ------------------------------------------------------------ */
typedef struct {
    WEFT_FRAME;
    weft_async_fd_t *afd;
    weft_async_fd_guard_t g;
    weft_async_fd_ready_t rd;
    weft_timeout_t to;
    int inner, rc;
} dropped_t;
WEFT_ASYNC(dropped_t, dropped_fn, int)
{
    WEFT_BEGIN();
    self->rd = weft_async_fd_readable(self->afd, &self->g);
    WEFT_AWAIT(&self->to, weft_timeout_ms(WEFT_FUTURE(&self->rd), &self->inner, 20), &self->rc);
    WEFT_RETURN(self->rc == 0 ? self->inner : self->rc); /* the readiness bits, or the timeout */
    WEFT_END();
}

START_TEST(waiting_future_dropped)
{
    weft_runtime_t *rt = shape_rt(_i);
    int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    weft_async_fd_t afd;
    ck_assert_int_eq(reg_on(rt, e, &afd), 0);
    dropped_t d = { WEFT_FRAME_INIT(dropped_fn), .afd = &afd };
    int out = 0;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&d), &out), 0);
    ck_assert_int_eq(out, WEFT_ETIMEDOUT);
    /* The registration is intact: a write is seen by the next await. */
    uint64_t one = 1;
    ck_assert_int_eq(write(e, &one, sizeof one), 8);
    dropped_t d2 = { WEFT_FRAME_INIT(dropped_fn), .afd = &afd };
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&d2), &out), 0);
    ck_assert_int_gt(out & WEFT_FD_READABLE, 0);
    ck_assert_int_eq(weft_async_fd_close(&afd), 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Bad arguments to the futures ----------------------------------------------------- */
START_TEST(bad_future_arguments)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    weft_async_fd_t afd = { NULL };
    weft_async_fd_guard_t g;
    memset(&g, 0, sizeof g);
    ck_assert_int_eq(weft_async_fd_try_io(&g, read_u64, NULL), -EBADF); /* an unfilled guard */
    ck_assert(!weft_async_fd_clear_ready(&g));
    weft_async_fd_ready_t rd = weft_async_fd_readable(&afd, &g);
    int rc = 0;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&rd), &rc), 0);
    ck_assert_int_eq(rc, -EBADF); /* not registered */
    int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ck_assert_int_eq(reg_on(rt, e, &afd), 0);
    weft_async_fd_io_t io = weft_async_fd_io(&afd, 3, read_u64, NULL);
    ssize_t n = 0;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&io), &n), 0);
    ck_assert_int_eq(n, WEFT_EINVAL);
    io = weft_async_fd_io(&afd, WEFT_FD_READABLE, NULL, NULL);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&io), &n), 0);
    ck_assert_int_eq(n, WEFT_EINVAL);
    ck_assert_int_eq(weft_async_fd_close(&afd), 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("asyncfd");
    TCase *tc = tcase_create("asyncfd");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, register_errors);
    tcase_add_test(tc, bad_future_arguments);
    tcase_add_loop_test(tc, eventfd_readiness, 0, N_SHAPES);
    tcase_add_loop_test(tc, edge_between_await_and_clear_is_kept, 0, N_SHAPES);
    tcase_add_loop_test(tc, reader_and_writer_at_once, 0, N_SHAPES);
    tcase_add_loop_test(tc, deregister_wakes_waiter, 0, N_SHAPES);
    tcase_add_loop_test(tc, closed_by_user_while_waiting, 0, N_SHAPES);
    tcase_add_loop_test(tc, waiting_future_dropped, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
