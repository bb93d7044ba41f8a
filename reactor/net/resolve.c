/* reactor/net/resolve.c - name resolution that never blocks a worker.
 *
 * getaddrinfo(3) blocks, so it runs as a job on the runtime's blocking pool
 * (runtime/blocking.c), the one pool weft has for blocking calls. The
 * future allocates a request shared by two holders, itself and the job;
 * the job publishes the result and wakes the task; whichever holder lets
 * go last frees the request and any result. A job cancelled before it ran
 * (shutdown) publishes WEFT_ECANCELED the same way.
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "../io_driver.h"
#include "../../runtime/nonnull.h"
#include "weft/net.h"
#include "weft/runtime.h"

struct weft__resolve_req {
    _Atomic int refs;
    _Atomic int done; /* the result is published */
    int status;       /* getaddrinfo's result (0 or an EAI_* code), or WEFT_ECANCELED */
    struct addrinfo *res;
    weft_atomic_waker_t waker;
    char host[256];
    char service[8];
};

static void req_release(struct weft__resolve_req *q)
{
    /* acq_rel: the last holder sees the other's writes before freeing. */
    if (atomic_fetch_sub_explicit(&q->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (q->res != NULL)
        freeaddrinfo(q->res);
    weft_atomic_waker_drop(&q->waker);
    weft__free(q, sizeof *q);
}

static void publish(struct weft__resolve_req *q, int status, struct addrinfo *res)
{
    q->status = status;
    q->res = res;
    /* release: status and res reach the poller (acquire load). */
    atomic_store_explicit(&q->done, 1, memory_order_release);
    weft_atomic_waker_wake(&q->waker);
    req_release(q);
}

static void *lookup_job(void *arg)
{
    struct weft__resolve_req *q = arg;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(q->host, q->service, &hints, &res);
    publish(q, rc, rc == 0 ? res : NULL);
    return NULL;
}

static void lookup_cancelled(void *arg)
{
    publish(arg, WEFT_ECANCELED, NULL);
}

static int map_status(int status)
{
    if (status == WEFT_ECANCELED)
        return WEFT_ECANCELED;
    if (status == EAI_NONAME || status == EAI_NODATA || status == EAI_ADDRFAMILY)
        return WEFT_ENOENT;
    if (status == EAI_MEMORY)
        return WEFT_ENOMEM;
    return WEFT_EIO;
}

static weft_poll_t resolve_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_resolve_t *rs = (weft_resolve_t *)(void *)f;
    int rc;
    struct weft__resolve_req *q = rs->req_;
    if (q == NULL) {
        if (rs->host_ == NULL || rs->host_[0] == 0 || strlen(rs->host_) >= sizeof q->host ||
            (rs->out_ == NULL && rs->max_ > 0)) {
            rc = WEFT_EINVAL;
            goto done;
        }
        if (weft_handle_current() == NULL) { /* no runtime, no blocking pool */
            rc = WEFT_ENOSYS;
            goto done;
        }
        q = weft__alloc(sizeof *q);
        if (q == NULL) {
            rc = WEFT_ENOMEM;
            goto done;
        }
        memset(q, 0, sizeof *q);
        atomic_init(&q->refs, 2);
        atomic_init(&q->done, 0);
        weft_atomic_waker_init(&q->waker);
        strcpy(q->host, rs->host_);
        snprintf(q->service, sizeof q->service, "%u", (unsigned)rs->port_);
        rs->req_ = q;
        weft_atomic_waker_register(&q->waker, cx->waker);
        const weft_blocking_opts_t opts = { "weft_resolve", lookup_cancelled, 0 };
        rc = weft_spawn_blocking_at(NULL, lookup_job, q, NULL, &opts, WEFT_SITE);
        if (rc != 0) { /* WEFT_ENOMEM: nothing was spawned, the job's reference is ours */
            rs->req_ = NULL;
            atomic_store_explicit(&q->refs, 1, memory_order_relaxed);
            req_release(q);
            goto done;
        }
    }
    weft_atomic_waker_register(&q->waker, cx->waker);
    /* acquire: pairs with resolved_cb's release. */
    if (!atomic_load_explicit(&q->done, memory_order_acquire))
        return WEFT_PENDING;
    if (q->status != 0) {
        rc = map_status(q->status);
    } else {
        size_t n = 0;
        for (struct addrinfo *ai = q->res; ai != NULL && n < rs->max_; ai = ai->ai_next) {
            if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof rs->out_[n])
                continue;
            memset(&rs->out_[n], 0, sizeof rs->out_[n]);
            memcpy(&rs->out_[n], ai->ai_addr, ai->ai_addrlen);
            n++;
        }
        rc = (int)n;
    }
    rs->req_ = NULL;
    req_release(q);
done:
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void resolve_drop(weft_future_t *f)
{
    weft_resolve_t *rs = (weft_resolve_t *)(void *)f;
    if (rs->req_ != NULL) { /* the lookup goes on; the job frees it */
        req_release(rs->req_);
        rs->req_ = NULL;
    }
}

static const weft_future_vtable_t resolve_vtable = {
    resolve_poll, resolve_drop, NULL, sizeof(weft_resolve_t), sizeof(int), "weft_resolve",
};

weft_resolve_t weft_resolve(const char *host, uint16_t port, struct sockaddr_storage *out, size_t max)
{
    WEFT__REQUIRE("weft_resolve", host);
    return (weft_resolve_t){ { &resolve_vtable }, host, port, out, max, NULL };
}
