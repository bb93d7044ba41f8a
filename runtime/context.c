/* runtime/context.c - the per-thread runtime context, misuse aborts, and the
 * cooperative budget. */
#include <stdarg.h>
#include <stdlib.h>

#include "scheduler.h"
#include "nonnull.h"

_Thread_local weft__tls_t weft__tls = { NULL, NULL, NULL, -1, NULL, false, false, -1, NULL };

void weft_panic(const char *site, const char *fmt, ...)
{
    va_list ap;
    fputs("weft: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (at %s)\n", site ? site : "?");
    fflush(stderr);
    abort();
}

void weft__assert_not_in_runtime(const char *what, const char *site)
{
    if (weft__tls.worker != NULL && weft__tls.task != NULL)
        weft_panic(site, "%s called from inside a task (task '%s' spawned at %s): this would block a runtime "
                   "worker; await instead, or move the call to another thread",
                   what, weft__task_name(weft__tls.task) ? weft__task_name(weft__tls.task) : "unnamed",
                   weft__task_site(weft__tls.task));
    if (weft__tls.worker != NULL)
        weft_panic(site, "%s called from a runtime worker thread: this would block the worker", what);
    if (weft__tls.in_block_on)
        weft_panic(site, "%s called from inside weft_runtime_block_on: a runtime cannot be started or "
                   "blocked on from within a runtime", what);
}

weft_handle_t *weft_handle_current(void)
{
    return (weft_handle_t *)weft__tls.sched;
}

const char *weft_task_current_name(void)
{
    return weft__tls.task ? weft__task_name(weft__tls.task) : NULL;
}

const char *weft_task_current_site(void)
{
    return weft__tls.task ? weft__task_site(weft__tls.task) : NULL;
}

weft_task_id_t weft_task_current_id(void)
{
    return weft__tls.task ? weft__task_id(weft__tls.task) : 0;
}

bool weft_coop_proceed(weft_context_t *cx)
{
    WEFT__REQUIRE("weft_coop_proceed", cx);
    int b = weft__tls.budget;
    if (b < 0)
        return true; /* not inside a runtime poll: unconstrained */
    if (b == 0) {
        weft_waker_wake_by_ref(cx->waker);
        return false;
    }
    weft__tls.budget = b - 1;
    return true;
}
