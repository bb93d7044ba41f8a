/* reactor/signal/signal.c - Unix signals as futures (weft/signal.h), on
 * the process's signal pipe (reactor/signal_driver.c). */
#include <signal.h>
#include <string.h>

#include "../signal_driver.h"

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

static weft_poll_t signal_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_signal_t *s = (weft_signal_t *)(void *)f;
    int rc = 0;
    if (!s->linked_) {
        if (s->signo <= 0 || s->signo > WEFT__SIG_MAX || s->signo == SIGKILL || s->signo == SIGSTOP) {
            rc = WEFT_EINVAL;
            goto done;
        }
        if (weft__cx_driver() == NULL) { /* no libuv thread here watches the pipe */
            rc = WEFT_ENOSYS;
            goto done;
        }
        rc = weft__signal_watch(s);
        if (rc != 0)
            goto done;
    }
    weft_atomic_waker_register(&s->waker_, cx->waker);
    if (!weft__signal_arrived(s))
        return WEFT_PENDING;
    weft__signal_unwatch(s);
done:
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void signal_drop(weft_future_t *f)
{
    weft_signal_t *s = (weft_signal_t *)(void *)f;
    weft__signal_unwatch(s);
    weft_atomic_waker_drop(&s->waker_);
}

static const weft_future_vtable_t signal_vtable = {
    signal_poll, signal_drop, NULL, sizeof(weft_signal_t), sizeof(int), "weft_signal",
};
