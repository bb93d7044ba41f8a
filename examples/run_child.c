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
 * pool, in order). The pipe is read through a buffered reader, a line at
 * a time. docs/process.md explains both.
 */
#include <stdio.h>
#include <string.h>

#include <weft/weft.h>

#define LINE_MAX_LEN 4096
#define PREFIX "[child] "

typedef struct {
    WEFT_FRAME;
    const char *script;
    weft_command_t cmd;
    const char *argv[4];
    weft_child_t child;
    weft_stdio_t out;
    weft_bufreader_t rd; /* over the child's stdout pipe */
    weft_bytes_t line;   /* PREFIX + one line of it */
    weft_exit_status_t st;
    ssize_t n;
    int rc;
    weft_read_until_t rl;
    weft_io_op_t op;
    weft_child_wait_t wait;
} run_t;

static void run_cleanup(run_t *r)
{
    weft_bufreader_free(&r->rd);
    weft_bytes_free(&r->line);
    weft_child_drop(&r->child);
    weft_stdio_close(&r->out);
}

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
    if (weft_bufreader_init(&self->rd, weft_pipe_as(&self->child.out), 0) != 0)
        WEFT_RETURN(1);
    for (;;) {
        weft_bytes_clear(&self->line);
        if (weft_bytes_append(&self->line, PREFIX, strlen(PREFIX)) != 0)
            WEFT_RETURN(1);
        /* A line as it arrives; one longer than LINE_MAX_LEN comes in pieces
         * (WEFT_EMSGSIZE with the first LINE_MAX_LEN bytes, then the rest). */
        WEFT_AWAIT(&self->rl, weft_bufreader_read_line(&self->rd, &self->line, strlen(PREFIX) + LINE_MAX_LEN),
                   &self->n);
        if (self->n == 0 || (self->n < 0 && self->n != WEFT_EMSGSIZE))
            break; /* end of the child's output (or an error) */
        if (self->line.data[self->line.len - 1] != '\n' && weft_bytes_append(&self->line, "\n", 1) != 0)
            WEFT_RETURN(1);
        WEFT_AWAIT(&self->op, weft_io_write_all(weft_stdio_as(&self->out), self->line.data, self->line.len, NULL),
                   &self->n);
    }
    WEFT_AWAIT(&self->wait, weft_child_wait(&self->child, &self->st), &self->rc);
    weft_bytes_clear(&self->line);
    self->n = self->st.signal != 0 ? snprintf(self->line.data, self->line.cap, "exit signal %d\n", self->st.signal)
                                   : snprintf(self->line.data, self->line.cap, "exit code %d\n", self->st.code);
    WEFT_AWAIT(&self->op, weft_io_write_all(weft_stdio_as(&self->out), self->line.data, (size_t)self->n, NULL),
               &self->n);
    /* The last write may still be on the pool: wait for it. */
    WEFT_AWAIT(&self->op, weft_io_flush(weft_stdio_as(&self->out)), &self->rc);
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
