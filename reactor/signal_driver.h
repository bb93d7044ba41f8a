/* reactor/signal_driver.h - the process's signal pipe and its waiters
 * (internal).
 *
 * Signal dispositions are process-wide, so is this state: a self-pipe, a
 * delivery counter per signal number, and the list of waiting futures
 * (weft_signal_t, reactor/signal/signal.c). The handler does only
 * async-signal-safe work: an atomic increment and a write(2) to the pipe.
 * Every runtime's libuv thread watches the pipe's read end; whichever
 * drains it wakes every waiter whose signal was delivered since its first
 * poll (the counters, not the bytes, carry the truth, so sharing the pipe
 * loses nothing).
 */
#ifndef WEFT_SIGNAL_DRIVER_H
#define WEFT_SIGNAL_DRIVER_H

#include "reactor.h"
#include "weft/signal.h"

#define WEFT__SIG_MAX 64

/* The pipe's read end, created on first use; or -errno. */
int weft__signal_pipe_fd(void);
/* Drains the pipe and wakes every waiter whose signal came (libuv thread). */
void weft__signal_dispatch(void);
/* Installs weft's handler for s->signo if not yet done and links s as a
 * waiter, recording the deliveries so far. Returns 0 or -errno from
 * sigaction. */
int weft__signal_watch(weft_signal_t *s);
/* If weft's handler was ever installed for signo, puts it back when
 * someone replaced it (libuv's SIGCHLD watch starting or stopping,
 * reactor/uv_process.c), chaining to the replacement for SIGCHLD. Any
 * thread. */
void weft__signal_reassert(int signo);
/* Unlinks s if linked. */
void weft__signal_unwatch(weft_signal_t *s);
/* True once s's signal was delivered after its weft__signal_watch.
 * acquire: pairs with the handler's release increment. */
bool weft__signal_arrived(const weft_signal_t *s);

#endif
