/* examples/run_child.c - runs `sh -c COMMAND` as a child process, prints
 * each line of its stdout as it arrives, prefixed with "[child] ", then
 * its exit status; exits with the child's code (128 + signal if killed).
 *
 *   $ run_child 'echo one; sleep 1; echo two; exit 3'
 *   [child] one
 *   [child] two          (a second later)
 *   exit code 3
 *
 * The child's stdout is a pipe (weft_pipe_t, read as it fills); our own
 * output goes through weft_stdout_open's stream (written on the blocking
 * pool, in order). docs/process.md explains both.
 */
#include <stdio.h>
#include <string.h>

#include <weft/weft.h>

#define LINE_MAX_LEN 4096

typedef struct {
    weft_future_t future;
    weft_stream_t *s;
    const char *p;
    size_t len, done;
} put_t;

/* Writes all of p to s (a small write-all; weft's I/O utilities may do it). */
static weft_poll_t put_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    put_t *w = (put_t *)(void *)f;
    while (w->done < w->len) {
        ssize_t n;
        if (weft_stream_poll_write(w->s, cx, w->p + w->done, w->len - w->done, &n) == WEFT_PENDING)
            return WEFT_PENDING;
        if (n < 0) {
            *(int *)out = (int)n;
            return WEFT_READY;
        }
        w->done += (size_t)n;
    }
    *(int *)out = 0;
    return WEFT_READY;
}
static const weft_future_vtable_t put_vt = { put_poll, NULL, NULL, sizeof(put_t), sizeof(int), "put" };
static put_t put(weft_stream_t *s, const char *p, size_t len)
{
    return (put_t){ { &put_vt }, s, p, len, 0 };
}

typedef struct {
    weft_future_t future;
    weft_stream_t *s;
    void *buf;
    size_t cap;
} get_t;
static weft_poll_t get_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    get_t *g = (get_t *)(void *)f;
    return weft_stream_poll_read(g->s, cx, g->buf, g->cap, out);
}
static const weft_future_vtable_t get_vt = { get_poll, NULL, NULL, sizeof(get_t), sizeof(ssize_t), "get" };
static get_t get(weft_stream_t *s, void *buf, size_t cap)
{
    return (get_t){ { &get_vt }, s, buf, cap };
}

typedef struct {
    weft_future_t future;
    weft_stream_t *s;
} flush_t;
static weft_poll_t flush_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    return weft_stream_poll_flush(((flush_t *)(void *)f)->s, cx, out);
}
static const weft_future_vtable_t flush_vt = { flush_poll, NULL, NULL, sizeof(flush_t), sizeof(int), "flush" };
static flush_t flush(weft_stream_t *s)
{
    return (flush_t){ { &flush_vt }, s };
}

typedef struct {
    WEFT_FRAME;
    const char *script;
    weft_command_t cmd;
    const char *argv[4];
    weft_child_t child;
    weft_stdio_t out;
    weft_exit_status_t st;
    char chunk[4096];
    char line[LINE_MAX_LEN + 16]; /* "[child] " + the line + "\n" */
    size_t llen, i;
    ssize_t n;
    int rc;
    get_t rd;
    put_t wr;
    weft_child_wait_t wait;
    flush_t fl;
} run_t;

static void run_cleanup(run_t *r)
{
    weft_child_drop(&r->child);
    weft_stdio_close(&r->out);
}

#define PREFIX "[child] "

WEFT_ASYNC_WITH_DROP(run_t, run_child, int, run_cleanup)
{
    WEFT_BEGIN();
    if (weft_stdout_open(&self->out) != 0)
        WEFT_RETURN(1);
    weft_command_init(&self->cmd, "sh");
    self->argv[0] = "sh";
    self->argv[1] = "-c";
    self->argv[2] = self->script;
    self->argv[3] = NULL;
    self->cmd.argv = self->argv;
    self->cmd.stdio[1] = WEFT_STDIO_PIPED;
    self->rc = weft_command_spawn(&self->cmd, &self->child);
    if (self->rc != 0) {
        fprintf(stderr, "run_child: spawn failed: %s\n", weft_strerror(self->rc));
        WEFT_RETURN(127);
    }
    memcpy(self->line, PREFIX, strlen(PREFIX));
    self->llen = strlen(PREFIX);
    for (;;) {
        WEFT_AWAIT(&self->rd, get(weft_pipe_as(&self->child.out), self->chunk, sizeof self->chunk), &self->n);
        if (self->n <= 0)
            break; /* end of the child's output (or an error) */
        for (self->i = 0; self->i < (size_t)self->n; self->i++) {
            char ch = self->chunk[self->i];
            if (self->llen < sizeof self->line - 1)
                self->line[self->llen++] = ch;
            if (ch != '\n' && self->llen < sizeof self->line - 1)
                continue;
            if (ch != '\n')
                self->line[self->llen++] = '\n'; /* an overlong line is cut */
            WEFT_AWAIT(&self->wr, put(weft_stdio_as(&self->out), self->line, self->llen), &self->rc);
            self->llen = strlen(PREFIX);
        }
    }
    if (self->llen > strlen(PREFIX)) { /* a last line without its newline */
        self->line[self->llen++] = '\n';
        WEFT_AWAIT(&self->wr, put(weft_stdio_as(&self->out), self->line, self->llen), &self->rc);
    }
    WEFT_AWAIT(&self->wait, weft_child_wait(&self->child, &self->st), &self->rc);
    if (self->st.signal != 0)
        self->llen = (size_t)snprintf(self->line, sizeof self->line, "exit signal %d\n", self->st.signal);
    else
        self->llen = (size_t)snprintf(self->line, sizeof self->line, "exit code %d\n", self->st.code);
    WEFT_AWAIT(&self->wr, put(weft_stdio_as(&self->out), self->line, self->llen), &self->rc);
    /* The last write may still be on the pool: wait for it. */
    WEFT_AWAIT(&self->fl, flush(weft_stdio_as(&self->out)), &self->rc);
    WEFT_RETURN(self->st.signal != 0 ? 128 + self->st.signal : self->st.code);
    WEFT_END();
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s 'shell command'\n", argv[0]);
        return 2;
    }
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 2;
    weft_runtime_t *rt;
    if (weft_runtime_new(&b, &rt) != 0)
        return 1;
    run_t r = { WEFT_FRAME_INIT(run_child), .script = argv[1] };
    int code = 1;
    if (weft_runtime_block_on(rt, WEFT_FUTURE(&r), &code) != 0)
        code = 1;
    weft_runtime_free(rt);
    return code;
}
