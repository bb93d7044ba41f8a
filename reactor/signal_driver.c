/* reactor/signal_driver.c - the process's signal pipe, its handler, and
 * the waiters it wakes. See signal_driver.h. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "signal_driver.h"

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static int sig_pipe[2] = { -1, -1 };
static _Atomic uint64_t sig_count[WEFT__SIG_MAX + 1];
static bool sig_installed[WEFT__SIG_MAX + 1]; /* under sig_lock */
static weft_signal_t *waiters;                 /* under sig_lock */
/* SIGCHLD only: the handler weft's replaced (libuv's child reaper,
 * reactor/uv_process.c), called after weft's own work; NULL: none. Written
 * under sig_lock before the sigaction that installs on_signal, so a
 * handler run sees it (relaxed: sigaction orders it). */
static _Atomic(void (*)(int)) sig_chained;

static void on_signal(int signo)
{
    int saved = errno;
    if (signo > 0 && signo <= WEFT__SIG_MAX)
        atomic_fetch_add_explicit(&sig_count[signo], 1, memory_order_release);
    char b = (char)signo;
    ssize_t r = write(sig_pipe[1], &b, 1); /* full pipe: the count still tells */
    (void)r;
    errno = saved;
    if (signo == SIGCHLD) {
        void (*next)(int) = atomic_load_explicit(&sig_chained, memory_order_relaxed);
        if (next != NULL)
            next(signo);
        errno = saved;
    }
}

/* Installs on_signal for signo (under sig_lock). For SIGCHLD, a handler
 * already there (libuv's, which reaps weft's children) is kept and
 * chained, so watching SIGCHLD never stops children from being reaped.
 * *replaced: another disposition was in place (so a SIGCHLD may have gone
 * to it alone). */
static int install(int signo, bool *replaced)
{
    struct sigaction sa, old;
    *replaced = false;
    if (signo == SIGCHLD) {
        if (sigaction(signo, NULL, &old) != 0)
            return -errno;
        if (old.sa_handler == on_signal)
            return 0;
        *replaced = true;
        bool fn = !(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN;
        atomic_store_explicit(&sig_chained, fn ? old.sa_handler : NULL, memory_order_relaxed);
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    return sigaction(signo, &sa, NULL) == 0 ? 0 : -errno;
}

void weft__signal_reassert(int signo)
{
    pthread_mutex_lock(&sig_lock);
    bool replaced = false;
    if (sig_installed[signo])
        (void)install(signo, &replaced); /* only fails for a bad signo, checked at the watch */
    pthread_mutex_unlock(&sig_lock);
    if (replaced) {
        /* While the other disposition was in place (libuv's handler from
         * its SIGCHLD watch's start, or SIG_DFL after its stop), a SIGCHLD
         * may have reached it alone. Report one, so no waiter misses a
         * child's exit: SIGCHLD never promised a count (deliveries
         * coalesce), so an extra one is harmless where a lost one is not. */
        atomic_fetch_add_explicit(&sig_count[signo], 1, memory_order_release);
        char b = (char)signo;
        ssize_t r = write(sig_pipe[1], &b, 1);
        (void)r;
    }
}

int weft__signal_pipe_fd(void)
{
    pthread_mutex_lock(&sig_lock);
    int rc = 0;
    if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        rc = -errno;
    int fd = rc == 0 ? sig_pipe[0] : rc;
    pthread_mutex_unlock(&sig_lock);
    return fd;
}

void weft__signal_dispatch(void)
{
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
        weft__wake_batch(ws, n, WEFT__WAKE_HERE);
    }
}

int weft__signal_watch(weft_signal_t *s)
{
    pthread_mutex_lock(&sig_lock);
    if (!sig_installed[s->signo]) {
        bool replaced;
        int rc = install(s->signo, &replaced);
        if (rc != 0) {
            pthread_mutex_unlock(&sig_lock);
            return rc;
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
    return 0;
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

void weft__signal_unwatch(weft_signal_t *s)
{
    if (!s->linked_)
        return;
    pthread_mutex_lock(&sig_lock);
    unlink_waiter(s);
    pthread_mutex_unlock(&sig_lock);
}

bool weft__signal_arrived(const weft_signal_t *s)
{
    /* acquire: pairs with the handler's release increment. */
    return atomic_load_explicit(&sig_count[s->signo], memory_order_acquire) > s->seen_;
}
