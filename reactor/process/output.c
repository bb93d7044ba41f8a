/* reactor/process/output.c - weft_command_output: run a command to
 * completion, collecting its stdout and stderr and its exit status.
 *
 * Both pipes are read in the same poll, each until it would block, so a
 * child that fills its stderr pipe while we wait on its stdout (or the
 * other way round) never stalls. Past the cap the bytes are still read,
 * and dropped, so the child is never left blocked on a full pipe.
 */
#include <string.h>

#include "pipe.h"
#include "proc.h"

enum { OUT_SPAWN, OUT_READ, OUT_WAIT, OUT_DONE };

/* Reads p until it would block or ends; appends up to cap bytes to *buf
 * (length *len, allocation *bcap, plus one byte for the NUL). Returns
 * WEFT_READY with *rc 0 at the end of the stream or *rc < 0 on an error;
 * WEFT_PENDING when it would block. */
static weft_poll_t drain(weft_pipe_t *p, weft_context_t *cx, size_t cap, char **buf, size_t *len, size_t *bcap,
                         bool *truncated, int *rc)
{
    for (;;) {
        char scratch[4096];
        char *dst = scratch;
        size_t room = sizeof scratch;
        if (*len < cap) {
            if (*bcap < cap + 1 && (*bcap == 0 || *bcap - 1 - *len < 4096)) {
                size_t want = *bcap == 0 ? 4096 : *bcap * 2;
                if (want > cap + 1)
                    want = cap + 1;
                char *nb = weft__realloc(*buf, want);
                if (nb == NULL) {
                    *rc = WEFT_ENOMEM;
                    return WEFT_READY;
                }
                *buf = nb;
                *bcap = want;
            }
            dst = *buf + *len;
            room = *bcap - 1 - *len;
        }
        ssize_t n;
        if (weft_stream_poll_read(weft_pipe_as(p), cx, dst, room, &n) == WEFT_PENDING)
            return WEFT_PENDING;
        if (n <= 0) {
            *rc = (int)n;
            return WEFT_READY;
        }
        if (dst == scratch)
            *truncated = true;
        else
            *len += (size_t)n;
    }
}

/* Ends the NUL-terminated text (an empty one when nothing came). */
static int finish_text(char **buf, size_t len, size_t *bcap)
{
    if (*buf == NULL) {
        *buf = weft__realloc(NULL, 1);
        if (*buf == NULL)
            return WEFT_ENOMEM;
        *bcap = 1;
    }
    (*buf)[len] = '\0';
    return 0;
}

static void release_all(weft_command_output_t *c)
{
    if (c->phase_ == OUT_WAIT)
        weft_future_drop(&c->wait_.future);
    weft_child_drop(&c->child_);
    weft_output_free(c->o_);
}

static weft_poll_t output_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_command_output_t *c = (weft_command_output_t *)(void *)f;
    weft_output_t *o = c->o_;
    int rc = 0;
    if (c->phase_ == OUT_SPAWN) {
        weft_command_t cmd = *c->cmd_;
        if (cmd.stdio[0] == WEFT_STDIO_PIPED)
            cmd.stdio[0] = WEFT_STDIO_NULL;
        cmd.stdio[1] = cmd.stdio[2] = WEFT_STDIO_PIPED;
        rc = weft_command_spawn(&cmd, &c->child_);
        if (rc != 0) {
            c->phase_ = OUT_DONE;
            goto done;
        }
        c->phase_ = OUT_READ;
    }
    if (c->phase_ == OUT_READ) {
        int r = 0;
        bool pending = false;
        if (!c->out_eof_) {
            if (drain(&c->child_.out, cx, c->cap_, &o->out, &o->out_len, &c->out_cap_, &o->out_truncated, &r) ==
                WEFT_PENDING)
                pending = true;
            else if (r == 0)
                c->out_eof_ = true;
        }
        if (r == 0 && !c->err_eof_) {
            if (drain(&c->child_.err, cx, c->cap_, &o->err, &o->err_len, &c->err_cap_, &o->err_truncated, &r) ==
                WEFT_PENDING)
                pending = true;
            else if (r == 0)
                c->err_eof_ = true;
        }
        if (r != 0) {
            rc = r;
            goto fail;
        }
        if (pending)
            return WEFT_PENDING;
        c->wait_ = weft_child_wait(&c->child_, &o->status);
        c->phase_ = OUT_WAIT;
    }
    if (c->phase_ == OUT_WAIT) {
        int r;
        if (weft_future_poll(&c->wait_.future, cx, &r) == WEFT_PENDING)
            return WEFT_PENDING;
        weft_future_drop(&c->wait_.future);
        c->phase_ = OUT_DONE;
        weft_child_drop(&c->child_);
        if (r == 0)
            r = finish_text(&o->out, o->out_len, &c->out_cap_);
        if (r == 0)
            r = finish_text(&o->err, o->err_len, &c->err_cap_);
        if (r != 0) {
            rc = r;
            weft_output_free(o);
        }
        goto done;
    }
    if (c->phase_ == OUT_DONE)
        weft_panic(WEFT_SITE, "weft_command_output: polled after it completed");
fail:
    release_all(c);
    c->phase_ = OUT_DONE;
done:
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void output_drop(weft_future_t *f)
{
    weft_command_output_t *c = (weft_command_output_t *)(void *)f;
    if (c->phase_ == OUT_READ || c->phase_ == OUT_WAIT) {
        release_all(c);
        c->phase_ = OUT_DONE;
    }
}

static const weft_future_vtable_t output_vtable = {
    output_poll, output_drop, NULL, sizeof(weft_command_output_t), sizeof(int), "weft_command_output",
};

weft_command_output_t weft_command_output(const weft_command_t *cmd, size_t cap, weft_output_t *o)
{
    WEFT__REQUIRE("weft_command_output", cmd);
    WEFT__REQUIRE("weft_command_output", o);
    weft_command_output_t c;
    memset(&c, 0, sizeof c);
    c.future.vtable = &output_vtable;
    c.cmd_ = cmd;
    c.cap_ = cap;
    c.o_ = o;
    memset(o, 0, sizeof *o);
    return c;
}

void weft_output_free(weft_output_t *o)
{
    WEFT__REQUIRE("weft_output_free", o);
    if (o->out != NULL)
        weft__free_unsized(o->out);
    if (o->err != NULL)
        weft__free_unsized(o->err);
    o->out = o->err = NULL;
    o->out_len = o->err_len = 0;
}
