/* weft/signal.h - waiting for a Unix signal (SIGINT, SIGTERM, ...) as a
 * future, for graceful shutdown.
 *
 * The first poll of a weft_signal for a signal number installs weft's
 * handler for it, process-wide and for the rest of the process's life (the
 * default action, such as terminating on SIGINT, no longer happens: that
 * is the point). The handler only counts the signal and writes a byte to a
 * pipe that every runtime's driver thread watches; the first to see it
 * wakes every waiter. A weft_signal completes on the first delivery after its first
 * poll.
 */
#ifndef WEFT_SIGNAL_H
#define WEFT_SIGNAL_H

#include "atomic_waker.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Output int: 0 when the signal arrived; WEFT_EINVAL for a signal number
 * that cannot be caught (out of range, SIGKILL, SIGSTOP); WEFT_ENOSYS
 * outside a runtime, or on one built with neither enable_io nor
 * enable_time (it has no driver thread to watch the signal pipe); or -errno from sigaction. */
typedef struct weft_signal_s {
    weft_future_t future;
    int signo;
    uint64_t seen_;
    bool linked_;
    struct weft_signal_s *prev_, *next_; /* the waiter list (private) */
    weft_atomic_waker_t waker_;
} weft_signal_t;

WEFT_API WEFT_NODISCARD weft_signal_t weft_signal_recv(int signo);

/* Does now what the first poll would: installs the handler and starts
 * counting, so a signal that comes before the future is first polled
 * completes it rather than taking the default action. For a server, arm
 * before announcing that it is ready. Returns 0, or the error the first
 * poll would report (its output is then that error too). Idempotent.
 * Context: a thread inside a runtime with a driver thread. */
WEFT_API WEFT_NODISCARD int weft_signal_arm(weft_signal_t *s);

#ifdef __cplusplus
}
#endif

#endif
