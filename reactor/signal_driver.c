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

static void on_signal(int signo)
{
    int saved = errno;
    if (signo > 0 && signo <= WEFT__SIG_MAX)
        atomic_fetch_add_explicit(&sig_count[signo], 1, memory_order_release);
    char b = (char)signo;
    ssize_t r = write(sig_pipe[1], &b, 1); /* full pipe: the count still tells */
    (void)r;
    errno = saved;
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
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(s->signo, &sa, NULL) != 0) {
            int rc = -errno;
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
