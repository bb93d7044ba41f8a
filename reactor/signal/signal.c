/* reactor/signal/signal.c - Unix signals as futures (weft/signal.h), on
 * the process's signal pipe (reactor/signal_driver.c). */
#include <signal.h>
#include <string.h>

#include "../../runtime/nonnull.h"
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

/* What the first poll does: checks signo, installs the handler and
 * records the count. Idempotent once it succeeded. */
static int arm(weft_signal_t *s)
{
    if (s->linked_)
        return 0;
    if (s->signo <= 0 || s->signo > WEFT__SIG_MAX || s->signo == SIGKILL || s->signo == SIGSTOP)
        return WEFT_EINVAL;
    if (weft__cx_driver() == NULL) /* no libuv thread here watches the pipe */
        return WEFT_ENOSYS;
    return weft__signal_watch(s);
}

int weft_signal_arm(weft_signal_t *s)
{
    WEFT__REQUIRE("weft_signal_arm", s);
    return arm(s);
}

static weft_poll_t signal_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_signal_t *s = (weft_signal_t *)(void *)f;
    int rc = arm(s);
    if (rc != 0)
        goto done;
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
