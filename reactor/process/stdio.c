/* reactor/process/stdio.c - the process's fds 0, 1 and 2 as byte streams
 * (weft/process.h: weft_stdio_t), over the blocking pool.
 *
 * Why not the epoll set, as pipes are: O_NONBLOCK belongs to the open file
 * description, which fds 0-2 share with the parent shell and every other
 * process started from it; setting it on a terminal makes their reads fail
 * with EAGAIN. And a regular file (`prog > out.txt`) cannot be registered
 * with epoll at all (EPERM). A blocking read or write on a pool thread
 * works for every kind of fd and changes nothing for anyone else, at the
 * cost of a thread hop per transfer; buffering 64 KiB per hop keeps that
 * cheap for bulk output.
 *
 * One job at a time per handle: a write copies into the handle's buffer
 * and hands it to a job that writes all of it; the next call waits for that
 * job first, which keeps the bytes in order. The buffer is shared with the
 * job (reference counted), so closing the handle mid-write is safe: the job
 * finishes and frees it.
 */
#include <string.h>
#include <unistd.h>

#include "pipe.h"

#define STDIO_BUF 65536 /* bytes per hop to the pool: a pipe's default capacity */

struct weft__stdio {
    _Atomic uint32_t refs; /* the handle + a job in flight */
    int fd;
    bool busy;      /* a job was spawned and its result not taken yet (handle side) */
    bool writing;   /* what the job does */
    weft_join_handle_t jh;
    size_t len, pos; /* read: buf[pos, len) not handed out yet; write: len bytes to write */
    ssize_t res;     /* the job's result: bytes, or -errno */
    int err;         /* write: an error to report at the next call */
    char buf[STDIO_BUF];
};
typedef struct weft__stdio stdio_state_t;

static void state_release(void *arg)
{
    stdio_state_t *st = arg;
    /* acq_rel: the last holder sees the job's or the handle's writes. */
    if (atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1)
        weft__free(st, sizeof *st);
}

/* ---- The job (a blocking-pool thread) ---------------------------------------- */

static void *stdio_job(void *arg)
{
    stdio_state_t *st = arg;
    ssize_t n;
    if (st->writing) {
        size_t done = 0;
        n = 0;
        while (done < st->len) {
            ssize_t w = write(st->fd, st->buf + done, st->len - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                n = -errno;
                break;
            }
            done += (size_t)w;
            n = (ssize_t)done;
        }
    } else {
        do
            n = read(st->fd, st->buf, st->len);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            n = -errno;
    }
    st->res = n; /* published by the join handle's completion */
    state_release(st);
    return NULL;
}

/* Starts the job; the handle's poll then waits on st->jh. */
static int start_job(stdio_state_t *st, bool writing, size_t len)
{
    if (weft_handle_current() == NULL)
        return WEFT_ENOSYS; /* no runtime here, so no blocking pool */
    st->writing = writing;
    st->len = len;
    st->res = 0;
    atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed); /* the job's: from the handle's */
    weft_blocking_opts_t opts = { .name = "weft-stdio", .cancel = state_release };
    int rc = weft_spawn_blocking_at(NULL, stdio_job, st, &st->jh, &opts, WEFT_SITE);
    if (rc != 0) {
        state_release(st);
        return rc;
    }
    st->busy = true;
    return 0;
}

/* Waits for the job in flight, if any. WEFT_READY with *res its result
 * (WEFT_ECANCELED if it never ran); or WEFT_PENDING. */
static weft_poll_t collect(stdio_state_t *st, weft_context_t *cx, ssize_t *res)
{
    *res = 0;
    if (!st->busy)
        return WEFT_READY;
    int jrc;
    if (weft_future_poll(weft_join(&st->jh, NULL), cx, &jrc) == WEFT_PENDING)
        return WEFT_PENDING;
    weft_future_drop(&st->jh.future);
    st->busy = false;
    *res = jrc != 0 ? jrc : st->res;
    return WEFT_READY;
}

/* ---- The interface -------------------------------------------------------------- */

static stdio_state_t *state_of(weft_stream_t *s)
{
    return ((weft_stdio_t *)(void *)s)->st_;
}

static weft_poll_t stdio_poll_read(weft_stream_t *s, weft_context_t *cx, void *buf, size_t len, ssize_t *n)
{
    stdio_state_t *st = state_of(s);
    if (st == NULL) {
        *n = -EBADF;
        return WEFT_READY;
    }
    for (;;) {
        if (st->pos < st->len && !st->busy) {
            size_t k = st->len - st->pos < len ? st->len - st->pos : len;
            memcpy(buf, st->buf + st->pos, k);
            st->pos += k;
            *n = (ssize_t)k;
            return WEFT_READY;
        }
        if (!weft_coop_proceed(cx))
            return WEFT_PENDING;
        ssize_t r;
        if (!st->busy) {
            int rc = start_job(st, false, len < STDIO_BUF ? len : STDIO_BUF);
            if (rc != 0) {
                *n = rc;
                return WEFT_READY;
            }
        }
        if (collect(st, cx, &r) == WEFT_PENDING) {
            weft__coop_refund();
            return WEFT_PENDING;
        }
        st->pos = 0;
        st->len = r > 0 ? (size_t)r : 0;
        if (r <= 0) {
            *n = r; /* 0: end of stream */
            return WEFT_READY;
        }
    }
}

/* Waits for the previous write; 0 or the error it met (reported once). */
static weft_poll_t settle(stdio_state_t *st, weft_context_t *cx, int *rc)
{
    ssize_t r;
    if (collect(st, cx, &r) == WEFT_PENDING)
        return WEFT_PENDING;
    if (r < 0 && st->err == 0)
        st->err = (int)r;
    *rc = st->err;
    st->err = 0;
    return WEFT_READY;
}

static weft_poll_t stdio_poll_write(weft_stream_t *s, weft_context_t *cx, const void *buf, size_t len, ssize_t *n)
{
    stdio_state_t *st = state_of(s);
    if (st == NULL) {
        *n = -EBADF;
        return WEFT_READY;
    }
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    int rc;
    if (settle(st, cx, &rc) == WEFT_PENDING) {
        weft__coop_refund();
        return WEFT_PENDING;
    }
    if (rc != 0) {
        *n = rc;
        return WEFT_READY;
    }
    size_t k = len < STDIO_BUF ? len : STDIO_BUF;
    memcpy(st->buf, buf, k);
    rc = start_job(st, true, k);
    *n = rc != 0 ? rc : (ssize_t)k;
    return WEFT_READY;
}

static weft_poll_t stdio_poll_flush(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    stdio_state_t *st = state_of(s);
    if (st == NULL) {
        *rc = -EBADF;
        return WEFT_READY;
    }
    return st->writing ? settle(st, cx, rc) : (*rc = 0, WEFT_READY);
}

static const weft_stream_vtable_t stdin_vtable = {
    .poll_read = stdio_poll_read,
    .name = "stdin",
};

static const weft_stream_vtable_t stdout_vtable = {
    .poll_write = stdio_poll_write,
    .poll_flush = stdio_poll_flush,
    .name = "stdout",
};

/* ---- Handles ------------------------------------------------------------------- */

static int stdio_open(weft_stdio_t *out, int fd, const weft_stream_vtable_t *vt)
{
    memset(out, 0, sizeof *out);
    out->stream_.vtable = vt;
    stdio_state_t *st = weft__alloc(sizeof *st);
    if (st == NULL)
        return WEFT_ENOMEM;
    memset(st, 0, offsetof(stdio_state_t, buf));
    atomic_init(&st->refs, 1);
    st->fd = fd;
    st->writing = fd != 0;
    out->st_ = st;
    return 0;
}

int weft_stdin_open(weft_stdio_t *out)
{
    WEFT__REQUIRE("weft_stdin_open", out);
    return stdio_open(out, 0, &stdin_vtable);
}

int weft_stdout_open(weft_stdio_t *out)
{
    WEFT__REQUIRE("weft_stdout_open", out);
    weft__sigpipe_policy(); /* `prog | head`: EPIPE, not death */
    return stdio_open(out, 1, &stdout_vtable);
}

int weft_stderr_open(weft_stdio_t *out)
{
    WEFT__REQUIRE("weft_stderr_open", out);
    weft__sigpipe_policy();
    return stdio_open(out, 2, &stdout_vtable);
}

weft_stream_t *weft_stdio_as(weft_stdio_t *s)
{
    WEFT__REQUIRE("weft_stdio_as", s);
    if (s->stream_.vtable == NULL)
        s->stream_.vtable = &stdin_vtable; /* zeroed: every call answers -EBADF */
    return &s->stream_;
}

void weft_stdio_close(weft_stdio_t *s)
{
    WEFT__REQUIRE("weft_stdio_close", s);
    stdio_state_t *st = s->st_;
    if (st == NULL)
        return;
    s->st_ = NULL;
    if (st->busy)
        weft_join_handle_drop(&st->jh); /* detach: the job holds its own reference */
    state_release(st);
}
