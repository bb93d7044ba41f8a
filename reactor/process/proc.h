/* reactor/process/proc.h - a child process's shared record, and the
 * requests that the process functions (child.c) hand to the libuv thread
 * (reactor/uv_process.c) (internal).
 *
 * libuv is not thread-safe, so spawning, signalling and reaping happen on
 * the runtime's libuv thread. A caller fills in a request on its own stack,
 * queues it on the driver (weft__uv_proc_submit) and waits on the
 * request's condition variable until the libuv thread has answered it.
 *
 * A child's record (weft__proc) has two references: the user's handle
 * (weft_child_t) and the libuv thread's uv_process_t handle, released in
 * its close callback. The libuv thread writes the exit status, then sets
 * `exited` (release) and wakes `waker`; readers load `exited` (acquire)
 * before reading the status. The pid stays valid for signalling until
 * `exited` is set, and only the libuv thread sets it (the thread that
 * reaps), so a kill decided there never reaches a reused pid.
 */
#ifndef WEFT_PROCESS_PROC_H
#define WEFT_PROCESS_PROC_H

#include "../reactor.h"
#include "weft/atomic_waker.h"
#include "weft/process.h"

struct weft__proc {
    uv_process_t uv;       /* libuv thread only; first, so the handle converts back */
    _Atomic uint32_t refs; /* the user's handle + the libuv handle until closed */
    _Atomic bool exited;   /* release: status is written (libuv thread) */
    weft_exit_status_t status;
    pid_t pid;
    weft__driver_t *d;
    weft_atomic_waker_t waker; /* the task awaiting weft_child_wait */
    struct weft__proc *prev, *next; /* the driver's live list (libuv thread only) */
    bool closing;                   /* uv_close was called (libuv thread only) */
};
typedef struct weft__proc weft__proc_t;

void weft__proc_release(weft__proc_t *p);

typedef enum weft__proc_op {
    WEFT__PROC_SPAWN,
    WEFT__PROC_KILL,
} weft__proc_op_t;

typedef struct weft__proc_req {
    weft__proc_op_t op;
    /* SPAWN: what uv_spawn gets; fds[i] >= 0 is inherited as fd i, -1
     * means /dev/null. */
    const char *file;
    char **args, **env; /* env NULL: the parent's */
    const char *cwd;
    int fds[3];
    weft__proc_t *proc; /* SPAWN: filled in by the caller, started by the libuv thread; KILL: the target */
    int signo;          /* KILL */
    int rc;             /* the answer */
    bool done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct weft__proc_req *next;
} weft__proc_req_t;

/* Queues req on d, rings the libuv thread and waits for its answer.
 * Returns req->rc, or WEFT_ESHUTDOWN when d is stopping (req not run). */
int weft__uv_proc_submit(weft__driver_t *d, weft__proc_req_t *req);

#endif
