/* weft/asyncfd.h - readiness for a file descriptor the caller owns: an
 * eventfd, a timerfd, an inotify fd, a pipe, or a socket that a C library
 * made and reads and writes itself. The fd joins the runtime's
 * edge-triggered epoll set; a task awaits "readable" or "writable", makes
 * its own non-blocking system call, and when that call says EAGAIN it
 * clears the readiness it was given, so the next await waits for the next
 * edge.
 *
 *     WEFT_AWAIT(&self->ready, weft_async_fd_readable(&self->afd, &self->g), &self->rc);
 *     if (self->rc < 0) ...                         // deregistered, or an error
 *     n = read(weft_async_fd_fd(&self->afd), buf, sizeof buf);
 *     if (n < 0 && errno == EAGAIN)
 *         weft_async_fd_clear_ready(&self->g);      // then await again
 *
 * or, in one future, weft_async_fd_io(afd, WEFT_FD_READABLE, fn, arg), which
 * loops over the same steps around a callback.
 *
 * The fd stays the caller's: registering does not take it, deregistering
 * does not close it (weft_async_fd_close does both). It must be in
 * non-blocking mode (O_NONBLOCK): a blocking call would stall a worker.
 * Deregister before closing it; see weft_async_fd_register for what
 * closing it while registered does.
 *
 * One task waits for each direction at a time (the most recent waiter of a
 * direction is the one woken, as for the sockets of net.h): a reader and a
 * writer may wait together, two readers may not.
 */
#ifndef WEFT_ASYNCFD_H
#define WEFT_ASYNCFD_H

#include <sys/types.h>

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A registered fd. Fields are private; `io_` is NULL once deregistered.
 * Like the socket handles, it must stay put while futures made from it
 * are pending (they read it at each poll). */
typedef struct weft_async_fd_s {
    struct weft__io *io_;
} weft_async_fd_t;

/* Readiness bits, the positive output of the readiness futures. */
enum {
    WEFT_FD_READABLE = 1u << 0,    /* a read may not block */
    WEFT_FD_WRITABLE = 1u << 1,    /* a write may not block */
    WEFT_FD_READ_CLOSED = 1u << 2, /* the peer shut down its side (EPOLLRDHUP); kept until deregistered */
    WEFT_FD_HUP = 1u << 3,         /* hung up or failed (EPOLLHUP, EPOLLERR); kept until deregistered */
};

/* What a readiness future saw: the readiness word's value when it
 * completed, so that weft_async_fd_clear_ready can tell an edge that came
 * in after it (which must not be lost) from the one it reported. A plain
 * value: no reference, nothing to free. */
typedef struct weft_async_fd_guard_s {
    weft_async_fd_t *afd_;
    struct weft__io *io_;
    unsigned snapshot_;
    unsigned dir_;
} weft_async_fd_guard_t;

/* Registers fd (any pollable fd in non-blocking mode) with the I/O driver
 * of the runtime current on this thread. The fd stays the caller's.
 * Returns 0 (*out registered), or:
 *   -EBADF          fd is not an open descriptor;
 *   WEFT_EINVAL     fd is in blocking mode (set O_NONBLOCK first);
 *   -EEXIST         fd is already registered with this runtime (by this
 *                   call, or as a socket of net.h or socket.h);
 *   WEFT_EPERM      the file cannot be polled (a regular file or a
 *                   directory: epoll refuses them; use weft/fs or the
 *                   blocking pool);
 *   WEFT_ENOSYS     no runtime with I/O enabled on this thread;
 *   WEFT_ENOMEM, or another -errno from epoll_ctl.
 * Closing the fd while it is registered: when that was the last fd for
 * the open file, the kernel drops it from the epoll set and waiters are
 * not woken until weft_async_fd_deregister, which then returns -EBADF
 * (they wake with -EBADF). When another fd for the file remains (a dup,
 * a child process's copy), the registration outlives the close and still
 * reports events: always deregister first.
 * Context: a thread where a runtime with I/O is current. Does not block. */
WEFT_API WEFT_NODISCARD int weft_async_fd_register(int fd, weft_async_fd_t *out);

/* Deregisters: the fd leaves the epoll set, tasks waiting on it wake with
 * -EBADF, and *afd becomes deregistered (its futures answer -EBADF). The fd
 * is left open. Returns the fd (>= 0), -EBADF when afd was not registered
 * or when the fd had been closed while registered (see above), or another
 * -errno from epoll_ctl. Context: any thread; once per registration, not
 * racing another call on the same afd, nor the first poll of a future
 * made from it (that poll reads afd; later polls do not): from another
 * thread, deregister once the waiter is known to be waiting. */
WEFT_API int weft_async_fd_deregister(weft_async_fd_t *afd);
/* weft_async_fd_deregister, then close(2) on the fd. Returns 0 or the
 * deregistration's error (the fd is closed either way, unless afd was not
 * registered). */
WEFT_API int weft_async_fd_close(weft_async_fd_t *afd);
/* The registered fd, or -EBADF once deregistered. */
WEFT_API int weft_async_fd_fd(const weft_async_fd_t *afd);

/* A readiness future: output int, the readiness bits (> 0: WEFT_FD_*; the
 * requested direction, or READ_CLOSED/HUP, which also end a wait) or -EBADF
 * (deregistered before or while waiting). Completes at once while the
 * direction is still marked ready: it is cleared only by
 * weft_async_fd_clear_ready. *guard (not NULL) receives the snapshot to
 * clear with. Dropping it pending is fine. */
typedef struct weft_async_fd_ready_s {
    weft_future_t future;
    weft_async_fd_t *afd_;
    struct weft__io *io_;
    weft_async_fd_guard_t *guard_;
    unsigned dir_;
} weft_async_fd_ready_t;
WEFT_API WEFT_NODISCARD weft_async_fd_ready_t weft_async_fd_readable(weft_async_fd_t *afd,
                                                                      weft_async_fd_guard_t *guard);
WEFT_API WEFT_NODISCARD weft_async_fd_ready_t weft_async_fd_writable(weft_async_fd_t *afd,
                                                                      weft_async_fd_guard_t *guard);

/* After the caller's system call failed with EAGAIN: clears the guard's
 * direction unless an edge came in since the guard was filled (then the
 * next await completes at once, and the call should be retried). The
 * sticky READ_CLOSED and HUP bits stay. A no-op once the fd is
 * deregistered (or registered anew). Returns true when it cleared. Context:
 * any thread. */
WEFT_API bool weft_async_fd_clear_ready(weft_async_fd_guard_t *guard);

/* A system call on the fd: returns bytes (>= 0) or a negative errno
 * (-EAGAIN when it would block), never -1 with errno. */
typedef ssize_t (*weft_async_fd_io_cb)(int fd, void *arg);

/* Runs fn(fd, arg) once under guard: when it returns -EAGAIN, clears the
 * guard's readiness and returns WEFT_EAGAIN (await again); otherwise
 * returns what fn returned. -EBADF once deregistered. Context: the task
 * that holds the guard. */
WEFT_API ssize_t weft_async_fd_try_io(weft_async_fd_guard_t *guard, weft_async_fd_io_cb fn, void *arg);

/* A future that loops "await readiness in dir (WEFT_FD_READABLE or
 * WEFT_FD_WRITABLE), call fn, clear on -EAGAIN" until fn returns anything
 * else (-EINTR retries too): output ssize_t, fn's result, -EBADF
 * (deregistered), or WEFT_EINVAL (a bad dir, or fn NULL). fn may be called
 * several times; arg must stay valid until the future completes or is
 * dropped. */
typedef struct weft_async_fd_io_s {
    weft_future_t future;
    weft_async_fd_t *afd_;
    struct weft__io *io_;
    weft_async_fd_io_cb fn_;
    void *arg_;
    unsigned dir_;
} weft_async_fd_io_t;
WEFT_API WEFT_NODISCARD weft_async_fd_io_t weft_async_fd_io(weft_async_fd_t *afd, unsigned dir,
                                                             weft_async_fd_io_cb fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
