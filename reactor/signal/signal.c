/* reactor/signal/signal.c - Unix signals as futures (weft/signal.h).
 *
 * Process-wide state, because signal dispositions are process-wide: a
 * self-pipe, a delivery counter per signal number, and the list of waiting
 * futures (under sig_lock). The handler does only async-signal-safe work:
 * an atomic increment and a write(2) to the pipe. Every reactor watches
 * the pipe's read end with a uv_poll; whichever drains it wakes every
 * waiter whose signal was delivered since its first poll (the counters,
 * not the bytes, carry the truth, so sharing the pipe loses nothing).
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "../reactor.h"
#include "../../runtime/scheduler.h"
#include "weft/signal.h"

#define SIG_MAX 64

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static int sig_pipe[2] = { -1, -1 };
static _Atomic uint64_t sig_count[SIG_MAX + 1];
static bool sig_installed[SIG_MAX + 1]; /* under sig_lock */
static weft_signal_t *waiters;          /* under sig_lock */

static void on_signal(int signo)
{
    int saved = errno;
    if (signo > 0 && signo <= SIG_MAX)
        atomic_fetch_add_explicit(&sig_count[signo], 1, memory_order_release);
    char b = (char)signo;
    ssize_t r = write(sig_pipe[1], &b, 1); /* full pipe: the count still tells */
    (void)r;
    errno = saved;
}

/* Creates the pipe once; returns its read end or -errno. */
static int pipe_once(void)
{
    pthread_mutex_lock(&sig_lock);
    int rc = 0;
    if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        rc = -errno;
    int fd = rc == 0 ? sig_pipe[0] : rc;
    pthread_mutex_unlock(&sig_lock);
    return fd;
}

static void pipe_cb(uv_poll_t *h, int status, int events)
{
    (void)h, (void)status, (void)events;
    char buf[64];
    while (read(sig_pipe[0], buf, sizeof buf) > 0)
        ;
    /* Take the wakers of every waiter whose signal came, then wake them
     * outside the lock. */
    weft_waker_t ws[64];
    bool more = true;
    while (more) {
        unsigned n = 0;
        more = false;
        pthread_mutex_lock(&sig_lock);
        for (weft_signal_t *w = waiters; w != NULL; w = w->next_) {
            if (atomic_load_explicit(&sig_count[w->signo], memory_order_acquire) <= w->seen_)
                continue;
            if (n == 64) { /* wake these first, then look again */
                more = true;
                break;
            }
            weft_waker_t wk = weft_atomic_waker_take(&w->waker_);
            if (wk.vtable != NULL)
                ws[n++] = wk;
        }
        pthread_mutex_unlock(&sig_lock);
        for (unsigned i = 0; i < n; i++)
            weft_waker_wake(&ws[i]);
    }
}

int weft__reactor_signal_init(weft__reactor_t *r)
{
    int fd = pipe_once();
    if (fd < 0)
        return fd;
    int rc = uv_poll_init(&r->loop, &r->signal_watch, fd);
    if (rc != 0)
        return rc;
    r->signal_watch.data = r;
    return uv_poll_start(&r->signal_watch, UV_READABLE, pipe_cb);
}

static const weft_future_vtable_t signal_vtable;

weft_signal_t weft_signal_recv(int signo)
{
    weft_signal_t s;
    memset(&s, 0, sizeof s);
    s.future.vtable = &signal_vtable;
    s.signo = signo;
    weft_atomic_waker_init(&s.waker_);
    return s;
}

static void unlink_waiter(weft_signal_t *s)
{
    if (!s->linked_)
        return;
    if (s->prev_)
        s->prev_->next_ = s->next_;
    else
        waiters = s->next_;
    if (s->next_)
        s->next_->prev_ = s->prev_;
    s->linked_ = false;
}

static weft_poll_t signal_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_signal_t *s = (weft_signal_t *)(void *)f;
    int rc = 0;
    if (!s->linked_) {
        if (s->signo <= 0 || s->signo > SIG_MAX || s->signo == SIGKILL || s->signo == SIGSTOP) {
            rc = WEFT_EINVAL;
            goto done;
        }
        if (weft__tls.sched == NULL || weft__tls.sched->reactor == NULL) {
            rc = WEFT_ENOSYS;
            goto done;
        }
        pthread_mutex_lock(&sig_lock);
        if (!sig_installed[s->signo]) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sa.sa_flags = SA_RESTART;
            sigemptyset(&sa.sa_mask);
            if (sigaction(s->signo, &sa, NULL) != 0) {
                rc = -errno;
                pthread_mutex_unlock(&sig_lock);
                goto done;
            }
            sig_installed[s->signo] = true;
        }
        s->seen_ = atomic_load_explicit(&sig_count[s->signo], memory_order_acquire);
        s->prev_ = NULL;
        s->next_ = waiters;
        if (waiters)
            waiters->prev_ = s;
        waiters = s;
        s->linked_ = true;
        pthread_mutex_unlock(&sig_lock);
    }
    weft_atomic_waker_register(&s->waker_, cx->waker);
    /* acquire: pairs with the handler's release increment. */
    if (atomic_load_explicit(&sig_count[s->signo], memory_order_acquire) <= s->seen_)
        return WEFT_PENDING;
    pthread_mutex_lock(&sig_lock);
    unlink_waiter(s);
    pthread_mutex_unlock(&sig_lock);
done:
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void signal_drop(weft_future_t *f)
{
    weft_signal_t *s = (weft_signal_t *)(void *)f;
    if (s->linked_) {
        pthread_mutex_lock(&sig_lock);
        unlink_waiter(s);
        pthread_mutex_unlock(&sig_lock);
    }
    weft_atomic_waker_drop(&s->waker_);
}

static const weft_future_vtable_t signal_vtable = {
    signal_poll, signal_drop, NULL, sizeof(weft_signal_t), sizeof(int), "weft_signal",
};
