/* reactor/uv_process.c - child processes on the libuv thread: uv_spawn,
 * signals to children, reaping, and the kill-and-reap at the runtime's
 * stop. With uv_thread.c, the only file that calls libuv (.ci/check-walls
 * allows reactor/uv_*.c).
 *
 * Requests (reactor/process/proc.h) come in through the driver's
 * `proc_reqs` list, under the driver's lock, and the doorbell; this thread
 * answers each and signals the waiting caller.
 *
 * Reaping is libuv's: the first uv_spawn on a loop starts a SIGCHLD watch
 * whose callback calls waitpid(pid, WNOHANG) for that loop's children only
 * (never waitpid(-1): other children of the program are left alone), then
 * our exit callback records the status, wakes the waiter and closes the
 * handle. libuv installs its SIGCHLD handler when the first watch in the
 * process starts and resets SIGCHLD to SIG_DFL when the last stops; weft's
 * own signal driver may be watching SIGCHLD too (weft_signal_recv), so
 * after each spawn and close this thread puts weft's handler back on top,
 * chaining to libuv's (reactor/signal_driver.c: weft__signal_reassert).
 *
 * A backstop: while this loop has children, a timer sweeps them every
 * SWEEP_MS with waitpid(pid, WNOHANG), so a SIGCHLD that never reaches
 * libuv's handler (a program that installs its own SIGCHLD handler with
 * sigaction and does not chain; a sanitizer runtime that defers signals
 * to a thread asleep in an uninstrumented futex wait) delays an exit
 * report by at most that much instead of losing it. A child reaped here
 * is closed at once, which takes it off libuv's list, so libuv never
 * waits for it again.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "process/proc.h"
#include "signal_driver.h"

/* ---- The caller's side ---------------------------------------------------- */

int weft__uv_proc_submit(weft__driver_t *d, weft__proc_req_t *req)
{
    req->done = false;
    pthread_mutex_init(&req->lock, NULL);
    pthread_cond_init(&req->cond, NULL);
    pthread_mutex_lock(&d->lock);
    bool stopped = atomic_load_explicit(&d->stopped, memory_order_relaxed);
    if (!stopped) {
        req->next = d->proc_reqs;
        d->proc_reqs = req;
    }
    pthread_mutex_unlock(&d->lock);
    int rc = WEFT_ESHUTDOWN;
    if (!stopped) {
        /* If the stop comes first, the ring is skipped, but the stop's
         * own doorbell answers every request queued before `stopped`. */
        weft__uv_ring(d);
        pthread_mutex_lock(&req->lock);
        while (!req->done)
            pthread_cond_wait(&req->cond, &req->lock);
        pthread_mutex_unlock(&req->lock);
        rc = req->rc;
    }
    pthread_cond_destroy(&req->cond);
    pthread_mutex_destroy(&req->lock);
    return rc;
}

static void answer(weft__proc_req_t *req, int rc)
{
    pthread_mutex_lock(&req->lock);
    req->rc = rc;
    req->done = true;
    pthread_cond_signal(&req->cond);
    pthread_mutex_unlock(&req->lock);
}

/* ---- Children -------------------------------------------------------------- */

static void unlink_proc(weft__driver_t *d, weft__proc_t *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        d->procs = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

static void on_closed(uv_handle_t *h)
{
    weft__proc_t *p = (weft__proc_t *)(void *)h;
    weft__proc_release(p); /* the libuv handle's reference */
}

static void close_proc(weft__proc_t *p)
{
    if (p->closing)
        return;
    p->closing = true;
    unlink_proc(p->d, p);
    /* Closing the loop's last child stops libuv's SIGCHLD watch, which may
     * reset the disposition to SIG_DFL under weft's handler. */
    uv_close((uv_handle_t *)&p->uv, on_closed);
    weft__signal_reassert(SIGCHLD);
}

static void report_exit(weft__proc_t *p, int code, int sig)
{
    p->status.code = sig != 0 ? -1 : code;
    p->status.signal = sig;
    /* release: the status above is visible to whoever sees `exited`
     * (acquire in child.c: weft_child_try_wait and the wait future). */
    atomic_store_explicit(&p->exited, true, memory_order_release);
    weft_atomic_waker_wake(&p->waker);
}

static void on_exit_cb(uv_process_t *h, int64_t code, int sig)
{
    weft__proc_t *p = (weft__proc_t *)(void *)h;
    report_exit(p, (int)code, sig);
    close_proc(p);
}

/* ---- The reaping backstop ------------------------------------------------------ */

#define SWEEP_MS 200 /* the longest a lost SIGCHLD delays an exit report */

static void report_wait_status(weft__proc_t *p, int st)
{
    report_exit(p, WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void sweep_cb(uv_timer_t *t)
{
    weft__driver_t *d = t->data;
    weft__proc_t *p = d->procs;
    while (p != NULL) {
        weft__proc_t *next = p->next; /* close_proc unlinks p */
        int st = 0;
        pid_t r;
        do
            r = waitpid(p->pid, &st, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == p->pid) {
            report_wait_status(p, st);
            close_proc(p);
        }
        p = next;
    }
    if (d->procs == NULL)
        uv_timer_stop(t);
}

static void sweep_arm(weft__driver_t *d)
{
    if (!d->proc_sweep_init) {
        (void)uv_timer_init(&d->uv.loop, &d->proc_sweep); /* always 0 */
        d->proc_sweep.data = d;
        d->proc_sweep_init = true;
    }
    if (!uv_is_active((uv_handle_t *)&d->proc_sweep))
        uv_timer_start(&d->proc_sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
}

static int do_spawn(weft__driver_t *d, weft__proc_req_t *req)
{
    weft__proc_t *p = req->proc;
    uv_stdio_container_t stdio[3];
    for (int i = 0; i < 3; i++) {
        if (req->fds[i] >= 0) {
            stdio[i].flags = UV_INHERIT_FD;
            stdio[i].data.fd = req->fds[i];
        } else {
            stdio[i].flags = UV_IGNORE; /* libuv opens /dev/null for fds 0-2 */
        }
    }
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.exit_cb = on_exit_cb;
    o.file = req->file;
    o.args = req->args;
    o.env = req->env;
    o.cwd = req->cwd;
    o.stdio_count = 3;
    o.stdio = stdio;
    int rc = uv_spawn(&d->uv.loop, &p->uv, &o);
    /* Starting the loop's first SIGCHLD watch replaced the disposition. */
    weft__signal_reassert(SIGCHLD);
    if (rc != 0) {
        /* A failed uv_spawn still initialised the handle: it is closed
         * like any other, and its close callback drops the reference. */
        p->closing = true;
        uv_close((uv_handle_t *)&p->uv, on_closed);
        return rc; /* libuv errors are negated errno values, like weft's */
    }
    p->prev = NULL;
    p->next = d->procs;
    if (d->procs != NULL)
        d->procs->prev = p;
    d->procs = p;
    p->pid = p->uv.pid;
    sweep_arm(d);
    return 0;
}

static int do_kill(weft__proc_req_t *req)
{
    weft__proc_t *p = req->proc;
    /* Only this thread reaps, so a child not yet marked exited still owns
     * its pid (running, or a zombie until our SIGCHLD callback runs). */
    if (atomic_load_explicit(&p->exited, memory_order_relaxed))
        return -ESRCH;
    return uv_process_kill(&p->uv, req->signo);
}

void weft__uv_proc_run(weft__driver_t *d)
{
    pthread_mutex_lock(&d->lock);
    weft__proc_req_t *req = d->proc_reqs;
    d->proc_reqs = NULL;
    pthread_mutex_unlock(&d->lock);
    /* The list is newest first: answer in arrival order. */
    weft__proc_req_t *fifo = NULL;
    while (req != NULL) {
        weft__proc_req_t *next = req->next;
        req->next = fifo;
        fifo = req;
        req = next;
    }
    while (fifo != NULL) {
        weft__proc_req_t *next = fifo->next; /* the caller may free req once answered */
        answer(fifo, fifo->op == WEFT__PROC_SPAWN ? do_spawn(d, fifo) : do_kill(fifo));
        fifo = next;
    }
}

void weft__uv_proc_stop(weft__driver_t *d)
{
    while (d->procs != NULL) {
        weft__proc_t *p = d->procs;
        if (!atomic_load_explicit(&p->exited, memory_order_relaxed)) {
            /* Still running (or not reaped yet): kill it and reap it here,
             * so no zombie outlives the loop that would have reaped it.
             * SIGKILL cannot be caught, so the wait is short. */
            (void)uv_process_kill(&p->uv, SIGKILL);
            int st = 0;
            pid_t r;
            do
                r = waitpid(p->pid, &st, 0);
            while (r < 0 && errno == EINTR);
            if (r == p->pid)
                report_wait_status(p, st);
            else
                report_exit(p, 0, SIGKILL); /* reaped elsewhere (a waitpid(-1) in the program) */
        }
        close_proc(p);
    }
    if (d->proc_sweep_init) {
        uv_timer_stop(&d->proc_sweep);
        uv_close((uv_handle_t *)&d->proc_sweep, NULL);
        d->proc_sweep_init = false;
    }
}
