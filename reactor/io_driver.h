/* reactor/io_driver.h - the I/O driver: sockets registered in an
 * edge-triggered epoll set, their readiness words, and event dispatch
 * (internal; the resources in reactor/net use the second half).
 *
 * Readiness: whoever takes events from the edge-triggered epoll set (a
 * worker, or the libuv thread on a current-thread runtime) ORs READ/WRITE
 * bits into `ready`, bumping the 24-bit tick in its high bits each time,
 * then wakes the matching atomic waker. A task tries its system call while
 * the bit is set; on EAGAIN it clears the bit, but only if the tick is
 * unchanged since it read the bits before the call (else an edge came in
 * between and clearing it would lose it), and waits.
 *
 * A stream (TCP, Unix) also clears the bit, the same way, after a short
 * transfer: a read that returned less than asked drained the receive
 * buffer, a write that took less than offered filled the send buffer. Its
 * next call then waits for the edge instead of spending a system call on
 * EAGAIN (one read per request in a keep-alive server). The peer's
 * hang-up is kept in sticky bits that no clear removes (RDHUP: the peer
 * will send nothing more; HUP: the connection is gone or failed), so a
 * stream whose last edge was the hang-up still reads its end of stream or
 * its error. A fresh stream starts with READ and WRITE set: it tries first.
 *
 * A short read is no proof of a drained buffer where the kernel stops a
 * read early with data still queued: at TCP urgent data (EPOLLPRI marks
 * the stream NOSHORT from then on; the PRI edge comes after the urgent
 * byte, so a clear made before it is undone by that edge) and on Unix
 * streams at a message carrying file descriptors or other credentials
 * (Unix streams are NOSHORT from the start). Those clear only on EAGAIN.
 */
#ifndef WEFT_IO_DRIVER_H
#define WEFT_IO_DRIVER_H

#include <sys/socket.h>

#include "reactor.h"
#include "weft/atomic_waker.h"

#define WEFT_IO_READ 1u
#define WEFT_IO_WRITE 2u
#define WEFT_IO_CLOSED 4u   /* closed by us */
#define WEFT_IO_RDHUP 8u     /* sticky: the peer shut down its side */
#define WEFT_IO_HUP 16u      /* sticky: hung up, or an error was reported */
#define WEFT_IO_NOSHORT 32u  /* sticky: a short read proves nothing here */
#define WEFT_IO_TICK_ONE (1u << 8)

struct weft__io {
    _Atomic uint32_t ready; /* (tick << 8) | bits */
    _Atomic uint32_t refs;  /* the owner (stream, listener) + futures in flight */
    int fd;
    bool borrowed; /* the fd is not ours: neither shut down nor closed here */
    weft__driver_t *d;
    weft_atomic_waker_t rd, wr;
    struct weft__io *retired_next;
};
typedef struct weft__io weft__io_t;

/* Registers fd (non-blocking) with the current runtime's I/O driver.
 * Returns 0, WEFT_ENOMEM, WEFT_ENOSYS (no runtime with I/O enabled here) or
 * -errno from epoll_ctl. On error fd is left open (the caller closes it). */
int weft__io_new(int fd, weft__io_t **out);
void weft__io_retain(weft__io_t *io);
void weft__io_release(weft__io_t *io);
/* Marks closed, wakes both directions, unregisters and closes the fd, and
 * releases the owner's reference. */
void weft__io_close(weft__io_t *io);

/* A registration whose fd stays the caller's (weft/asyncfd.h, and the
 * sockets handed back by weft/socket.h): weft__io_new_borrowed registers fd
 * as weft__io_new does, but no close or release of the record shuts the
 * fd down or closes it. weft__io_detach is weft__io_close for either kind,
 * except that the fd is left open and becomes the caller's: it marks the
 * record closed, wakes both directions, takes the fd out of the epoll set
 * now (while it is surely still open: a later release must not touch an
 * fd number the caller may have closed and reused) and releases the
 * owner's reference. Returns 0, or -errno from epoll_ctl (-EBADF: the fd
 * was closed while registered; -ENOENT: it had already left the set). */
int weft__io_new_borrowed(int fd, weft__io_t **out);
int weft__io_detach(weft__io_t *io);

/* Marks a connected stream ready both ways (no tick): its first read or
 * write tries the system call. `family`: its address family (AF_UNIX
 * streams are marked NOSHORT). */
void weft__io_assume_ready(weft__io_t *io, int family);
/* The bits that let a stream call in direction `dir` go ahead. */
static inline uint32_t weft__io_ready_mask(uint32_t dir)
{
    return dir | WEFT_IO_CLOSED | WEFT_IO_HUP | ((dir & WEFT_IO_READ) ? WEFT_IO_RDHUP : 0);
}

/* Readiness snapshot if any of `bits` (or CLOSED) is set; else registers
 * cx's waker for that direction and returns 0 after a re-check. */
uint32_t weft__io_poll_ready(weft__io_t *io, uint32_t bits, weft_context_t *cx);
/* After EAGAIN: clears `bits` unless the tick moved since `snapshot`.
 * Returns true when cleared (the caller waits), false when an event came
 * in meanwhile (the caller retries). */
bool weft__io_clear_ready(weft__io_t *io, uint32_t bits, uint32_t snapshot);

/* A future's own reference on the socket behind its handle: taken at the
 * first poll (the handle is read only then: another task may close and
 * clear it while we wait), dropped when the future finishes or is
 * dropped. */
static inline weft__io_t *weft__io_hold(weft__io_t **mine, weft__io_t *handle_io)
{
    if (*mine == NULL && handle_io != NULL) {
        weft__io_retain(handle_io);
        *mine = handle_io;
    }
    return *mine;
}

static inline void weft__io_let_go(weft__io_t **mine)
{
    if (*mine != NULL) {
        weft__io_release(*mine);
        *mine = NULL;
    }
}

/* What to do after a socket call failed with errno `err`, `snapshot` being
 * the readiness word read before the call: WEFT_IO_RETRY on EINTR;
 * WEFT_IO_WAIT on EAGAIN once the readiness bits for `dir` are cleared and
 * the task's waker registered (return WEFT_PENDING: the budget unit is
 * refunded), or WEFT_IO_RETRY when an event came in meanwhile; otherwise
 * -err, the error to report. */
enum { WEFT_IO_WAIT = 0, WEFT_IO_RETRY = 1 };
int weft__io_failed(weft__io_t *io, uint32_t dir, uint32_t snapshot, weft_context_t *cx, int err);

/* The whole try-wait loop of a one-call operation (a datagram's send or
 * receive): calls attempt(arg, fd), which returns a count (>= 0) or a
 * negative errno, until it succeeds or fails otherwise than EINTR or
 * EAGAIN. WEFT_READY with *rc: that result, or -EBADF once io is closed;
 * WEFT_PENDING after EAGAIN, with cx's waker registered for `dir` and the
 * budget unit refunded. */
weft_poll_t weft__io_attempt(weft__io_t *io, uint32_t dir, weft_context_t *cx, ssize_t (*attempt)(void *arg, int fd),
                             void *arg, ssize_t *rc);

/* Address helpers shared by tcp.c and udp.c: a usable IPv4/IPv6/Unix
 * address; "1.2.3.4" or "::1" plus a port. */
bool weft__addr_ok(const struct sockaddr *addr, socklen_t len);
int weft__parse_ip(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);

/* ---- The driver's side (driver.c, uv_thread.c) ----------------------------- */
int weft__io_init(weft__driver_t *d);
/* Closes the epoll set; sockets retired since are freed at once. */
void weft__io_stop(weft__driver_t *d);
/* Frees the sockets whose last reference is gone, unless a worker is
 * dispatching events (it might hold one naming them): then they wait for
 * the last such worker, which rings the doorbell. libuv thread only, or
 * after the stop. */
void weft__io_free_retired(weft__driver_t *d);
/* Takes up to `max` events and wakes their tasks (weft__driver_poll_events);
 * a current-thread runtime's libuv thread passes UINT_MAX and takes all. */
unsigned weft__io_poll_events(weft__driver_t *d, unsigned max);

#endif
