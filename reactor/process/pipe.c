/* reactor/process/pipe.c - pipe ends as byte streams (weft/process.h), and
 * weft's SIGPIPE policy.
 *
 * A pipe end is a registered non-blocking fd (reactor/io_driver.h), read
 * and written through the shared poll-level transfer of the stream sockets
 * (reactor/net/stream.c: weft__fd_poll with read/write/writev), so a pipe
 * behaves as a socket does: try the system call, wait for the edge only on
 * EAGAIN. The reader's end of stream comes as the write end's HUP (sticky),
 * and a write after the reader left fails with EPIPE.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../net/stream.h"
#include "pipe.h"

/* ---- SIGPIPE --------------------------------------------------------------
 *
 * write(2) to a pipe whose reader is gone raises SIGPIPE, whose default
 * action ends the process; sockets avoid it with MSG_NOSIGNAL, pipes have
 * no such flag. So the first pipe end weft makes sets SIGPIPE to SIG_IGN,
 * unless the program chose a disposition of its own (a handler or
 * SIG_IGN already), and the write reports EPIPE. Rust's runtime ignores
 * SIGPIPE at start-up for the same reason; weft does it only in programs
 * that use pipes. Children get every signal back at SIG_DFL (libuv resets
 * them between fork and exec), so `yes | head` style children behave as
 * in a shell. */
static void ignore_sigpipe(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGPIPE, &sa, NULL);
}

void weft__sigpipe_policy(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, ignore_sigpipe);
}

/* ---- The interface ------------------------------------------------------------ */

static weft__io_t **io_of(weft_stream_t *s)
{
    return &((weft_pipe_t *)(void *)s)->io_;
}

static weft_poll_t pipe_poll_read(weft_stream_t *s, weft_context_t *cx, void *buf, size_t len, ssize_t *n)
{
    return weft__fd_poll(io_of(s), cx, WEFT__FD_READ, buf, len, false, n);
}

static weft_poll_t pipe_poll_write(weft_stream_t *s, weft_context_t *cx, const void *buf, size_t len, ssize_t *n)
{
    return weft__fd_poll(io_of(s), cx, WEFT__FD_WRITE, buf, len, false, n);
}

static weft_poll_t pipe_poll_writev(weft_stream_t *s, weft_context_t *cx, const struct iovec *iov, size_t iovcnt,
                                    ssize_t *n)
{
    /* weft__fd_poll writes at most IOV_MAX buffers; the caller goes on
     * with the rest as after a short write. */
    return weft__fd_poll(io_of(s), cx, WEFT__FD_WRITEV, iov, iovcnt, false, n);
}

static weft_poll_t pipe_poll_shutdown(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    (void)cx;
    weft_pipe_close((weft_pipe_t *)(void *)s); /* the reader sees the end once the fd closes */
    *rc = 0;
    return WEFT_READY;
}

static const weft_stream_vtable_t read_vtable = {
    .poll_read = pipe_poll_read,
    .flags = WEFT_STREAM_DUPLEX,
    .name = "pipe",
};

static const weft_stream_vtable_t write_vtable = {
    .poll_write = pipe_poll_write,
    .poll_writev = pipe_poll_writev,
    .poll_shutdown = pipe_poll_shutdown,
    .flags = WEFT_STREAM_DUPLEX,
    .name = "pipe",
};

/* A terminal or a socket given as an fd: both ways; shutdown closes it
 * (a half-close is a socket's, and shutdown(2) fails on others). */
static const weft_stream_vtable_t duplex_vtable = {
    .poll_read = pipe_poll_read,
    .poll_write = pipe_poll_write,
    .poll_writev = pipe_poll_writev,
    .poll_shutdown = pipe_poll_shutdown,
    .flags = WEFT_STREAM_DUPLEX,
    .name = "pipe",
};

/* ---- Ends -------------------------------------------------------------------- */

int weft__pipe_adopt(int fd, weft_pipe_end_t end, weft_pipe_t *out)
{
    weft__io_t *io;
    int rc = weft__io_new(fd, &io);
    if (rc != 0)
        return rc;
    /* Try first: a pipe with data (or room) already has no edge to wait
     * for. A short read does mean the pipe was drained. */
    weft__io_assume_ready(io, AF_UNSPEC);
    out->stream_.vtable = end == WEFT_PIPE_READ ? &read_vtable : end == WEFT_PIPE_WRITE ? &write_vtable : &duplex_vtable;
    out->io_ = io;
    weft__sigpipe_policy();
    return 0;
}

int weft_pipe_new(weft_pipe_t *rd, weft_pipe_t *wr)
{
    WEFT__REQUIRE("weft_pipe_new", rd);
    WEFT__REQUIRE("weft_pipe_new", wr);
    memset(rd, 0, sizeof *rd);
    memset(wr, 0, sizeof *wr);
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return -errno;
    int rc = weft__pipe_adopt(fds[0], WEFT_PIPE_READ, rd);
    if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    rc = weft__pipe_adopt(fds[1], WEFT_PIPE_WRITE, wr);
    if (rc != 0) {
        weft_pipe_close(rd);
        close(fds[1]);
        return rc;
    }
    return 0;
}

int weft_pipe_from_fd(int fd, weft_pipe_end_t end, weft_pipe_t *out)
{
    WEFT__REQUIRE("weft_pipe_from_fd", out);
    memset(out, 0, sizeof *out);
    if (fd < 0 || (end != WEFT_PIPE_READ && end != WEFT_PIPE_WRITE && end != WEFT_PIPE_DUPLEX))
        return WEFT_EINVAL;
    int fl = fcntl(fd, F_GETFL);
    int fdfl = fcntl(fd, F_GETFD);
    if (fl < 0 || fdfl < 0)
        return -errno;
    if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -errno;
    int rc = weft__pipe_adopt(fd, end, out);
    if (rc != 0) {
        (void)fcntl(fd, F_SETFL, fl); /* as it was: the caller keeps it */
        return rc;
    }
    (void)fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC);
    return 0;
}

weft_stream_t *weft_pipe_as(weft_pipe_t *p)
{
    WEFT__REQUIRE("weft_pipe_as", p);
    if (p->stream_.vtable == NULL)
        p->stream_.vtable = &duplex_vtable; /* a zeroed pipe: every call answers -EBADF */
    return &p->stream_;
}

int weft_pipe_fd(const weft_pipe_t *p)
{
    WEFT__REQUIRE("weft_pipe_fd", p);
    return p->io_ != NULL ? p->io_->fd : -1;
}

void weft_pipe_close(weft_pipe_t *p)
{
    WEFT__REQUIRE("weft_pipe_close", p);
    weft__stream_close(&p->io_);
}
