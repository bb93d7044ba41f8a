/* reactor/net/resolve.c - name resolution that never blocks a worker.
 *
 * The future allocates a request shared by two holders: itself and the
 * reactor side. Its first poll queues the request on the reactor's
 * lock-free op stack; the reactor thread starts uv_getaddrinfo (libuv's
 * thread pool does the blocking call); the completion callback, back on
 * the reactor thread, publishes the result and wakes the task. Whichever
 * holder lets go last frees the request and any result.
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "../io_driver.h"
#include "../../runtime/nonnull.h"
#include "../../runtime/scheduler.h"
#include "weft/net.h"

struct weft__resolve_req {
    weft__op_t op;
    uv_getaddrinfo_t uv;
    _Atomic int refs;
    _Atomic int done; /* the result is published */
    int status;       /* libuv status (0 or a UV_EAI_* code) */
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
        uv_freeaddrinfo(q->res);
    weft_atomic_waker_drop(&q->waker);
    weft__free(q, sizeof *q);
}

static void resolved_cb(uv_getaddrinfo_t *uv, int status, struct addrinfo *res)
{
    struct weft__resolve_req *q = uv->data;
    q->status = status;
    q->res = res;
    /* release: status and res reach the poller (acquire load). */
    atomic_store_explicit(&q->done, 1, memory_order_release);
    weft_atomic_waker_wake(&q->waker);
    req_release(q);
}

static void start_lookup(weft__reactor_t *r, weft__op_t *op)
{
    struct weft__resolve_req *q = (struct weft__resolve_req *)(void *)op;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    q->uv.data = q;
    int rc = uv_getaddrinfo(&r->loop, &q->uv, resolved_cb, q->host, q->service, &hints);
    if (rc != 0)
        resolved_cb(&q->uv, rc, NULL);
}

static int map_status(int status)
{
    if (status == UV_EAI_NONAME || status == UV_EAI_NODATA || status == UV_EAI_ADDRFAMILY)
        return WEFT_ENOENT;
    if (status == UV_EAI_MEMORY || status == UV_ENOMEM)
        return WEFT_ENOMEM;
    return WEFT_EIO;
}

static weft_poll_t resolve_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_resolve_t *rs = (weft_resolve_t *)(void *)f;
    int rc;
    struct weft__resolve_req *q = rs->req;
    if (q == NULL) {
        weft__sched_t *s = weft__tls.sched;
        if (rs->host == NULL || rs->host[0] == 0 || strlen(rs->host) >= sizeof q->host ||
            (rs->out == NULL && rs->max > 0)) {
            rc = WEFT_EINVAL;
            goto done;
        }
        if (s == NULL || s->reactor == NULL) {
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
        strcpy(q->host, rs->host);
        snprintf(q->service, sizeof q->service, "%u", (unsigned)rs->port);
        q->op.run = start_lookup;
        rs->req = q;
        weft_atomic_waker_register(&q->waker, cx->waker);
        if (!weft__reactor_submit(s->reactor, &q->op)) {
            rs->req = NULL;
            atomic_store(&q->refs, 1);
            req_release(q);
            rc = WEFT_ENOSYS; /* the runtime is shutting down */
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
        for (struct addrinfo *ai = q->res; ai != NULL && n < rs->max; ai = ai->ai_next) {
            if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof rs->out[n])
                continue;
            memset(&rs->out[n], 0, sizeof rs->out[n]);
            memcpy(&rs->out[n], ai->ai_addr, ai->ai_addrlen);
            n++;
        }
        rc = (int)n;
    }
    rs->req = NULL;
    req_release(q);
done:
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void resolve_drop(weft_future_t *f)
{
    weft_resolve_t *rs = (weft_resolve_t *)(void *)f;
    if (rs->req != NULL) { /* the lookup goes on; its callback frees it */
        req_release(rs->req);
        rs->req = NULL;
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
