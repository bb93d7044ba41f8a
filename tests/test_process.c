/* tests/test_process.c - child processes, pipes and their SIGPIPE policy
 * (weft/process.h), with Debian's sh, cat, true, false, sleep, yes and
 * head: exit codes and signals, a child killed mid-output, environment and
 * working directory, stdin piped through cat, spawn errors, a dropped child
 * reaped (no zombie), 50 children at once, large stdout and stderr through
 * weft_command_output at once, EPIPE to an exited child, anonymous pipes,
 * SIGCHLD watched by weft_signal alongside libuv's reaper, the runtime's
 * shutdown with a child running, and allocation failures. Scenarios run on
 * every runtime shape. Bodies check with WEFT_TEST_CHECK*; the test thread
 * calls ASSERT_NO_TEST_FAIL() after. */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "testlib.h"

/* ---- Helpers: read to the end, write everything ---------------------------------- */

typedef struct {
    weft_future_t future;
    weft_stream_t *s;
    char *buf;
    size_t cap, len, total;
} read_all_t;
static weft_poll_t read_all_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    read_all_t *r = (read_all_t *)(void *)f;
    for (;;) {
        char scratch[4096];
        bool keep = r->len < r->cap;
        ssize_t n;
        if (weft_stream_poll_read(r->s, cx, keep ? r->buf + r->len : scratch,
                                  keep ? r->cap - r->len : sizeof scratch, &n) == WEFT_PENDING)
            return WEFT_PENDING;
        if (n <= 0) {
            *(ssize_t *)out = n < 0 ? n : (ssize_t)r->total;
            return WEFT_READY;
        }
        if (keep)
            r->len += (size_t)n;
        r->total += (size_t)n;
    }
}
static const weft_future_vtable_t read_all_vt = { read_all_poll, NULL, NULL, sizeof(read_all_t), sizeof(ssize_t),
                                                  "read_all" };
static read_all_t read_all(weft_stream_t *s, char *buf, size_t cap)
{
    return (read_all_t){ { &read_all_vt }, s, buf, cap, 0, 0 };
}

/* One read. */
typedef struct {
    weft_future_t future;
    weft_stream_t *s;
    char *buf;
    size_t cap;
} read_some_t;
static weft_poll_t read_some_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    read_some_t *r = (read_some_t *)(void *)f;
    return weft_stream_poll_read(r->s, cx, r->buf, r->cap, out);
}
static const weft_future_vtable_t read_some_vt = { read_some_poll, NULL, NULL, sizeof(read_some_t), sizeof(ssize_t),
                                                   "read_some" };
static read_some_t read_some(weft_stream_t *s, char *buf, size_t cap)
{
    return (read_some_t){ { &read_some_vt }, s, buf, cap };
}

typedef struct {
    weft_future_t future;
    weft_stream_t *s;
    const char *p;
    size_t len, done;
} write_all_t;
static weft_poll_t write_all_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    write_all_t *w = (write_all_t *)(void *)f;
    while (w->done < w->len) {
        ssize_t n;
        if (weft_stream_poll_write(w->s, cx, w->p + w->done, w->len - w->done, &n) == WEFT_PENDING)
            return WEFT_PENDING;
        if (n < 0) {
            *(ssize_t *)out = n;
            return WEFT_READY;
        }
        w->done += (size_t)n;
    }
    *(ssize_t *)out = (ssize_t)w->done;
    return WEFT_READY;
}
static const weft_future_vtable_t write_all_vt = { write_all_poll, NULL, NULL, sizeof(write_all_t), sizeof(ssize_t),
                                                   "write_all" };
static write_all_t write_all(weft_stream_t *s, const char *p, size_t len)
{
    return (write_all_t){ { &write_all_vt }, s, p, len, 0 };
}

/* ---- Exit codes ----------------------------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    const char *prog;
    const char *const *argv;
    weft_command_t cmd;
    weft_child_t c;
    weft_exit_status_t st;
    weft_child_wait_t w;
    int rc;
} run_t;
static void run_cleanup(run_t *r) { weft_child_drop(&r->c); }
/* Output: the exit code, or 1000 + the signal, or the error. */
WEFT_ASYNC_WITH_DROP(run_t, run_fn, int, run_cleanup)
{
    WEFT_BEGIN();
    weft_command_init(&self->cmd, self->prog);
    self->cmd.argv = self->argv;
    self->rc = weft_command_spawn(&self->cmd, &self->c);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    WEFT_TEST_CHECK(weft_child_pid(&self->c) > 0);
    WEFT_AWAIT(&self->w, weft_child_wait(&self->c, &self->st), &self->rc);
    WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
    WEFT_RETURN(self->st.signal != 0 ? 1000 + self->st.signal : self->st.code);
    WEFT_END();
}
static run_t run(const char *prog, const char *const *argv)
{
    return (run_t){ WEFT_FRAME_INIT(run_fn), .prog = prog, .argv = argv };
}

/* Runs fut (a frame returning int 0 when every check in it passed) as a
 * task on a fresh runtime of the shape, and checks it finished with 0,
 * failed no check, and left nothing alive once the runtime is freed. */
static void run_to_zero(int shape, weft_future_t *fut)
{
    weft_runtime_t *rt = shape_rt(shape);
    int out = -12345;
    ck_assert_int_eq(spawn_and_wait(rt, fut, &out), 0);
    ASSERT_NO_TEST_FAIL(); /* first: it names the check that failed */
    ck_assert_int_eq(out, 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}

static int run_on(weft_runtime_t *rt, const char *prog, const char *const *argv)
{
    run_t r = run(prog, argv);
    int out = -12345;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&r), &out), 0);
    return out;
}

START_TEST(exit_codes)
{
    weft_runtime_t *rt = shape_rt(_i);
    ck_assert_int_eq(run_on(rt, "true", NULL), 0);
    ck_assert_int_eq(run_on(rt, "false", NULL), 1);
    const char *const exit3[] = { "sh", "-c", "exit 3", NULL };
    ck_assert_int_eq(run_on(rt, "sh", exit3), 3);
    const char *const self_kill[] = { "sh", "-c", "kill -TERM $$", NULL };
    ck_assert_int_eq(run_on(rt, "sh", self_kill), 1000 + SIGTERM);
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(spawn_errors)
{
    weft_runtime_t *rt = shape_rt(_i);
    ck_assert_int_eq(run_on(rt, "/nonexistent/weft-no-such-program", NULL), WEFT_ENOENT);
    ck_assert_int_eq(run_on(rt, "weft-no-such-program-in-path", NULL), WEFT_ENOENT);
    ck_assert_int_eq(run_on(rt, "/etc/passwd", NULL), -EACCES); /* not executable */
    ck_assert_int_eq(run_on(rt, "", NULL), WEFT_EINVAL);
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* Outside a runtime there is no libuv thread to spawn on. */
START_TEST(spawn_outside_runtime)
{
    weft_command_t cmd;
    weft_command_init(&cmd, "true");
    weft_child_t c;
    ck_assert_int_eq(weft_command_spawn(&cmd, &c), WEFT_ENOSYS);
    weft_pipe_t a, b;
    ck_assert_int_eq(weft_pipe_new(&a, &b), WEFT_ENOSYS);
    ck_assert_ptr_null(c.proc_);
}
END_TEST

/* ---- Output: env, cwd, both pipes at once, caps ----------------------------------- */

typedef struct {
    WEFT_FRAME;
    weft_command_t *cmd;
    size_t cap;
    weft_output_t *o;
    weft_command_output_t f;
    int rc;
} output_t;
WEFT_ASYNC(output_t, output_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->f, weft_command_output(self->cmd, self->cap, self->o), &self->rc);
    WEFT_RETURN(self->rc);
    WEFT_END();
}
static int output_on(weft_runtime_t *rt, weft_command_t *cmd, size_t cap, weft_output_t *o)
{
    output_t f = { WEFT_FRAME_INIT(output_fn), .cmd = cmd, .cap = cap, .o = o };
    int rc = -12345;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&f), &rc), 0);
    return rc;
}

START_TEST(env_and_cwd)
{
    weft_runtime_t *rt = shape_rt(_i);
    ck_assert_int_eq(setenv("WEFT_TEST_GONE", "still here", 1), 0);
    ck_assert_int_eq(setenv("WEFT_TEST_KEPT", "kept", 1), 0);
    const char *const argv[] = { "sh", "-c", "echo \"$WEFT_TEST_SET|$WEFT_TEST_GONE|$WEFT_TEST_KEPT|$(pwd)\"", NULL };
    const char *const set[] = { "WEFT_TEST_SET=one", "WEFT_TEST_SET=two", NULL };
    const char *const rm[] = { "WEFT_TEST_GONE", NULL };
    weft_command_t cmd;
    weft_command_init(&cmd, "sh");
    cmd.argv = argv;
    cmd.env_set = set;
    cmd.env_remove = rm;
    cmd.cwd = "/tmp";
    weft_output_t o;
    ck_assert_int_eq(output_on(rt, &cmd, 4096, &o), 0);
    ck_assert_str_eq(o.out, "two||kept|/tmp\n");
    ck_assert_int_eq(o.err_len, 0);
    ck_assert_int_eq(o.status.code, 0);
    weft_output_free(&o);

    /* A cleared environment: only what env_set adds (sh finds itself in
     * execvp's default path). */
    const char *const argv2[] = { "sh", "-c", "echo \"[$WEFT_TEST_KEPT][$ONLY]\"", NULL };
    const char *const only[] = { "ONLY=1", NULL };
    weft_command_init(&cmd, "sh");
    cmd.argv = argv2;
    cmd.env_clear = true;
    cmd.env_set = only;
    ck_assert_int_eq(output_on(rt, &cmd, 4096, &o), 0);
    ck_assert_str_eq(o.out, "[][1]\n");
    weft_output_free(&o);

    /* A bad cwd and a malformed entry are spawn errors. */
    weft_command_init(&cmd, "true");
    cmd.cwd = "/nonexistent-weft-dir";
    ck_assert_int_eq(output_on(rt, &cmd, 16, &o), WEFT_ENOENT);
    const char *const bad[] = { "NOEQUALS", NULL };
    weft_command_init(&cmd, "true");
    cmd.env_set = bad;
    ck_assert_int_eq(output_on(rt, &cmd, 16, &o), WEFT_EINVAL);
    ck_assert_ptr_null(o.out);
    unsetenv("WEFT_TEST_GONE");
    unsetenv("WEFT_TEST_KEPT");
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* More than a pipe's 64 KiB on both stdout and stderr, written at the same
 * time: read together, neither blocks the child. */
START_TEST(large_output_both_pipes)
{
    weft_runtime_t *rt = shape_rt(_i);
    const char *const argv[] = { "sh", "-c",
                                 "head -c 300000 /dev/zero | tr '\\0' e >&2 & head -c 1000000 /dev/zero | tr '\\0' o; wait",
                                 NULL };
    weft_command_t cmd;
    weft_command_init(&cmd, "sh");
    cmd.argv = argv;
    weft_output_t o;
    ck_assert_int_eq(output_on(rt, &cmd, 2000000, &o), 0);
    ck_assert_int_eq(o.out_len, 1000000);
    ck_assert_int_eq(o.err_len, 300000);
    ck_assert(!o.out_truncated && !o.err_truncated);
    ck_assert_int_eq(o.out[0], 'o');
    ck_assert_int_eq(o.out[999999], 'o');
    ck_assert_int_eq(o.err[299999], 'e');
    ck_assert_int_eq(o.status.code, 0);
    weft_output_free(&o);
    /* A cap: the rest is read and dropped, the child still finishes. */
    ck_assert_int_eq(output_on(rt, &cmd, 1000, &o), 0);
    ck_assert_int_eq(o.out_len, 1000);
    ck_assert_int_eq(o.err_len, 1000);
    ck_assert(o.out_truncated && o.err_truncated);
    ck_assert_int_eq(o.status.code, 0);
    weft_output_free(&o);
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- stdin through cat ----------------------------------------------------------------- */

/* cat echoes stdin to stdout: write all, shut down (cat sees the end),
 * read all, wait. */
typedef struct {
    WEFT_FRAME;
    weft_command_t cmd;
    weft_child_t c;
    weft_exit_status_t st;
    char text[200000];
    char back[200001];
    size_t i;
    ssize_t n;
    int rc;
    write_all_t wr;
    read_all_t rd;
    weft_join_handle_t reader;
    weft_child_wait_t w;
} echo_t;
static void echo_cleanup(echo_t *e)
{
    weft_join_handle_drop(&e->reader);
    weft_child_drop(&e->c);
}
WEFT_ASYNC_WITH_DROP(echo_t, echo_fn, int, echo_cleanup)
{
    WEFT_BEGIN();
    weft_command_init(&self->cmd, "cat");
    self->cmd.stdio[0] = self->cmd.stdio[1] = WEFT_STDIO_PIPED;
    self->rc = weft_command_spawn(&self->cmd, &self->c);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
        WEFT_RETURN(-1);
    WEFT_TEST_CHECK(weft_pipe_fd(&self->c.in) >= 0 && weft_pipe_fd(&self->c.out) >= 0);
    WEFT_TEST_CHECK_INT_EQ(weft_pipe_fd(&self->c.err), -1);
    for (self->i = 0; self->i < sizeof self->text; self->i++)
        self->text[self->i] = (char)('a' + self->i % 26);
    /* More than a pipe holds, both ways: a reader task drains stdout
     * while this one writes stdin. */
    self->rd = read_all(weft_pipe_as(&self->c.out), self->back, sizeof self->back);
    if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn(&self->rd, &self->reader), 0))
        WEFT_RETURN(-1);
    WEFT_AWAIT(&self->wr, write_all(weft_pipe_as(&self->c.in), self->text, sizeof self->text), &self->n);
    WEFT_TEST_CHECK_INT_EQ(self->n, sizeof self->text);
    WEFT_TEST_CHECK_INT_EQ(weft_stream_poll_shutdown(weft_pipe_as(&self->c.in), weft__cx, &self->rc), WEFT_READY);
    WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
    WEFT_TEST_CHECK_INT_EQ(weft_pipe_fd(&self->c.in), -1);
    WEFT_AWAIT_REF(weft_join(&self->reader, &self->n), &self->rc);
    WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
    WEFT_TEST_CHECK_INT_EQ(self->n, sizeof self->text);
    WEFT_TEST_CHECK(memcmp(self->back, self->text, sizeof self->text) == 0);
    WEFT_AWAIT(&self->w, weft_child_wait(&self->c, &self->st), &self->rc);
    WEFT_TEST_CHECK_INT_EQ(self->st.code, 0);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(stdin_through_cat)
{
    echo_t *e = calloc(1, sizeof *e);
    *e = (echo_t){ WEFT_FRAME_INIT(echo_fn) };
    run_to_zero(_i, WEFT_FUTURE(e));
    free(e);
}
END_TEST

/* ---- Signals: a child killed mid-output ------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    weft_command_t cmd;
    weft_child_t c;
    weft_exit_status_t st;
    char buf[4096];
    size_t got;
    ssize_t n;
    int rc;
    read_all_t rd;
    read_some_t rs;
    weft_child_wait_t w;
} yes_t;
static void yes_cleanup(yes_t *y) { weft_child_drop(&y->c); }
WEFT_ASYNC_WITH_DROP(yes_t, yes_fn, int, yes_cleanup)
{
    WEFT_BEGIN();
    weft_command_init(&self->cmd, "yes");
    self->cmd.stdio[1] = WEFT_STDIO_PIPED;
    self->rc = weft_command_spawn(&self->cmd, &self->c);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
        WEFT_RETURN(-1);
    WEFT_TEST_CHECK_INT_EQ(weft_child_try_wait(&self->c, &self->st), WEFT_EAGAIN);
    /* It writes forever: read a good amount, then kill it. */
    while (self->got < 100000) {
        WEFT_AWAIT(&self->rs, read_some(weft_pipe_as(&self->c.out), self->buf, sizeof self->buf), &self->n);
        if (!WEFT_TEST_CHECK(self->n > 0))
            WEFT_RETURN(-1);
        self->got += (size_t)self->n;
    }
    WEFT_TEST_CHECK(memcmp(self->buf, "y\ny\n", 4) == 0 || memcmp(self->buf, "\ny\ny", 4) == 0);
    WEFT_TEST_CHECK_INT_EQ(weft_child_try_wait(&self->c, &self->st), WEFT_EAGAIN);
    WEFT_TEST_CHECK_INT_EQ(weft_child_kill(&self->c, SIGTERM), 0);
    /* The reader drains what is left and sees the end of the stream. */
    WEFT_AWAIT(&self->rd, read_all(weft_pipe_as(&self->c.out), NULL, 0), &self->n);
    WEFT_TEST_CHECK(self->n >= 0);
    WEFT_AWAIT(&self->w, weft_child_wait(&self->c, &self->st), &self->rc);
    WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
    WEFT_TEST_CHECK_INT_EQ(self->st.signal, SIGTERM);
    WEFT_TEST_CHECK_INT_EQ(self->st.code, -1);
    WEFT_TEST_CHECK_INT_EQ(weft_child_try_wait(&self->c, &self->st), 0);
    WEFT_TEST_CHECK_INT_EQ(self->st.signal, SIGTERM);
    /* Reaped: no signal goes to its (maybe reused) pid any more. */
    WEFT_TEST_CHECK_INT_EQ(weft_child_kill(&self->c, SIGTERM), -ESRCH);
    WEFT_TEST_CHECK_INT_EQ(weft_child_kill(&self->c, 0), WEFT_EINVAL);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(kill_mid_output)
{
    yes_t y = { WEFT_FRAME_INIT(yes_fn) };
    run_to_zero(_i, WEFT_FUTURE(&y));
}
END_TEST

/* ---- Zombies ------------------------------------------------------------------------ */

/* 'Z' when pid is a zombie, 0 when it is gone, else its state letter. */
static char proc_state(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char st = '?';
    if (fgets(line, sizeof line, f) != NULL) {
        char *rp = strrchr(line, ')');
        if (rp != NULL && rp[1] == ' ')
            st = rp[2];
    }
    fclose(f);
    return st;
}

/* Waits up to 5 s for pid to be gone (reaped). */
static bool reaped_within(pid_t pid)
{
    for (int i = 0; i < 500; i++) {
        if (proc_state(pid) == 0)
            return true;
        sleep_ms(10);
    }
    return false;
}

typedef struct {
    weft_future_t future;
    const char *const *argv;
    pid_t *pid;
    weft_child_t *keep; /* NULL: drop the handle at once */
} spawn_only_t;
static weft_poll_t spawn_only_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx;
    spawn_only_t *s = (spawn_only_t *)(void *)f;
    weft_command_t cmd;
    weft_command_init(&cmd, s->argv[0]);
    cmd.argv = s->argv;
    weft_child_t c;
    int rc = weft_command_spawn(&cmd, &c);
    if (rc == 0) {
        *s->pid = weft_child_pid(&c);
        if (s->keep != NULL)
            *s->keep = c;
        else
            weft_child_drop(&c);
    }
    *(int *)out = rc;
    return WEFT_READY;
}
static const weft_future_vtable_t spawn_only_vt = { spawn_only_poll, NULL, NULL, sizeof(spawn_only_t), sizeof(int),
                                                    "spawn_only" };

START_TEST(dropped_child_is_reaped)
{
    weft_runtime_t *rt = shape_rt(_i);
    const char *const argv[] = { "sh", "-c", "sleep 0.05", NULL };
    pid_t pid = 0;
    spawn_only_t s = { { &spawn_only_vt }, argv, &pid, NULL };
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&s), &rc), 0);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_gt(pid, 0);
    /* Dropped while running: the driver thread still reaps it on exit. */
    ck_assert_msg(reaped_within(pid), "child %d left as '%c'", (int)pid, proc_state(pid));
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* The runtime shuts down while its child runs: the child is killed and
 * reaped, and the handle (still held) reports SIGKILL. */
START_TEST(shutdown_with_child_running)
{
    weft_runtime_t *rt = shape_rt(_i);
    const char *const argv[] = { "sleep", "30", NULL };
    pid_t pid = 0;
    weft_child_t c;
    spawn_only_t s = { { &spawn_only_vt }, argv, &pid, &c };
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&s), &rc), 0);
    ck_assert_int_eq(rc, 0);
    weft_exit_status_t st;
    ck_assert_int_eq(weft_child_try_wait(&c, &st), WEFT_EAGAIN);
    weft_runtime_free(rt);
    ck_assert_int_eq(proc_state(pid), 0); /* neither running nor a zombie */
    ck_assert_int_eq(weft_child_try_wait(&c, &st), 0);
    ck_assert_int_eq(st.signal, SIGKILL);
    ck_assert_int_eq(weft_child_kill(&c, SIGTERM), -ESRCH);
    weft_child_drop(&c);
    weft_child_drop(&c); /* idempotent */
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Many at once ------------------------------------------------------------------------ */

#define MANY 50
typedef struct {
    WEFT_FRAME;
    int i;
    char script[MANY][32];
    const char *argv[MANY][4];
    run_t runs[MANY];
    weft_join_handle_t h[MANY];
    int codes[MANY];
    int rc;
} many_t;
static void many_cleanup(many_t *m)
{
    for (int i = 0; i < MANY; i++)
        weft_join_handle_drop(&m->h[i]);
}
WEFT_ASYNC_WITH_DROP(many_t, many_fn, int, many_cleanup)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < MANY; self->i++) {
        snprintf(self->script[self->i], sizeof self->script[0], "sleep 0.0%d; exit %d", self->i % 10, self->i);
        self->argv[self->i][0] = "sh";
        self->argv[self->i][1] = "-c";
        self->argv[self->i][2] = self->script[self->i];
        self->argv[self->i][3] = NULL;
        self->runs[self->i] = run("sh", self->argv[self->i]);
        if (!WEFT_TEST_CHECK_INT_EQ(weft_spawn(&self->runs[self->i], &self->h[self->i]), 0))
            WEFT_RETURN(-1);
    }
    for (self->i = 0; self->i < MANY; self->i++) {
        WEFT_AWAIT_REF(weft_join(&self->h[self->i], &self->codes[self->i]), &self->rc);
        WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
        WEFT_TEST_CHECK_INT_EQ(self->codes[self->i], self->i);
    }
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(many_children)
{
    many_t *m = calloc(1, sizeof *m);
    *m = (many_t){ WEFT_FRAME_INIT(many_fn) };
    run_to_zero(_i, WEFT_FUTURE(m));
    free(m);
}
END_TEST

/* ---- EPIPE ------------------------------------------------------------------------------ */

typedef struct {
    WEFT_FRAME;
    weft_command_t cmd;
    weft_child_t c;
    weft_pipe_t in;
    weft_exit_status_t st;
    ssize_t n;
    int rc;
    write_all_t wr;
    weft_child_wait_t w;
} epipe_t;
static void epipe_cleanup(epipe_t *e)
{
    weft_pipe_close(&e->in);
    weft_child_drop(&e->c);
}
WEFT_ASYNC_WITH_DROP(epipe_t, epipe_fn, int, epipe_cleanup)
{
    WEFT_BEGIN();
    weft_command_init(&self->cmd, "true");
    self->cmd.stdio[0] = WEFT_STDIO_PIPED;
    self->rc = weft_command_spawn(&self->cmd, &self->c);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
        WEFT_RETURN(-1);
    /* Move stdin out of the handle, so the wait does not close it. */
    self->in = self->c.in;
    memset(&self->c.in, 0, sizeof self->c.in);
    WEFT_AWAIT(&self->w, weft_child_wait(&self->c, &self->st), &self->rc);
    WEFT_TEST_CHECK_INT_EQ(self->st.code, 0);
    /* The reader is gone: EPIPE, and this process is still alive. */
    WEFT_AWAIT(&self->wr, write_all(weft_pipe_as(&self->in), "hello", 5), &self->n);
    WEFT_TEST_CHECK_INT_EQ(self->n, WEFT_EPIPE);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(epipe_to_exited_child)
{
    weft_runtime_t *rt = shape_rt(_i);
    epipe_t e = { WEFT_FRAME_INIT(epipe_fn) };
    int out = -1;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&e), &out), 0);
    ck_assert_int_eq(out, 0);
    struct sigaction sa;
    ck_assert_int_eq(sigaction(SIGPIPE, NULL, &sa), 0);
    ck_assert(sa.sa_handler == SIG_IGN); /* the policy: SIG_DFL became SIG_IGN */
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Anonymous pipes and adopted fds ---------------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    weft_pipe_t rd, wr, ad;
    char buf[64];
    ssize_t n;
    int rc, fds[2];
    struct iovec iov[3];
    read_all_t r;
    write_all_t w;
} pipes_t;
static void pipes_cleanup(pipes_t *p)
{
    weft_pipe_close(&p->rd);
    weft_pipe_close(&p->wr);
    weft_pipe_close(&p->ad);
}
WEFT_ASYNC_WITH_DROP(pipes_t, pipes_fn, int, pipes_cleanup)
{
    WEFT_BEGIN();
    if (!WEFT_TEST_CHECK_INT_EQ(weft_pipe_new(&self->rd, &self->wr), 0))
        WEFT_RETURN(-1);
    /* Directions a pipe end does not have. */
    WEFT_TEST_CHECK_INT_EQ(weft_stream_poll_read(weft_pipe_as(&self->wr), weft__cx, self->buf, 1, &self->n),
                           WEFT_READY);
    WEFT_TEST_CHECK_INT_EQ(self->n, WEFT_EBADF);
    WEFT_TEST_CHECK_INT_EQ(weft_stream_poll_write(weft_pipe_as(&self->rd), weft__cx, "x", 1, &self->n), WEFT_READY);
    WEFT_TEST_CHECK_INT_EQ(self->n, WEFT_EBADF);
    /* writev, then shutdown: the reader gets everything, then the end. */
    self->iov[0] = (struct iovec){ "ab", 2 };
    self->iov[1] = (struct iovec){ NULL, 0 };
    self->iov[2] = (struct iovec){ "cde", 3 };
    WEFT_TEST_CHECK_INT_EQ(weft_stream_poll_writev(weft_pipe_as(&self->wr), weft__cx, self->iov, 3, &self->n),
                           WEFT_READY);
    WEFT_TEST_CHECK_INT_EQ(self->n, 5);
    WEFT_TEST_CHECK_INT_EQ(weft_stream_poll_shutdown(weft_pipe_as(&self->wr), weft__cx, &self->rc), WEFT_READY);
    WEFT_AWAIT(&self->r, read_all(weft_pipe_as(&self->rd), self->buf, sizeof self->buf), &self->n);
    WEFT_TEST_CHECK_INT_EQ(self->n, 5);
    WEFT_TEST_CHECK(memcmp(self->buf, "abcde", 5) == 0);
    weft_pipe_close(&self->rd);
    weft_pipe_close(&self->rd); /* idempotent */
    WEFT_TEST_CHECK_INT_EQ(weft_pipe_fd(&self->rd), -1);
    /* A closed end answers -EBADF. */
    WEFT_TEST_CHECK_INT_EQ(weft_stream_poll_read(weft_pipe_as(&self->rd), weft__cx, self->buf, 1, &self->n),
                           WEFT_READY);
    WEFT_TEST_CHECK_INT_EQ(self->n, -EBADF);

    /* An adopted fd: the write end of a plain pipe; its reader closed
     * first, so the write fails with EPIPE. */
    if (!WEFT_TEST_CHECK_INT_EQ(pipe(self->fds), 0))
        WEFT_RETURN(-1);
    WEFT_TEST_CHECK_INT_EQ(weft_pipe_from_fd(-1, WEFT_PIPE_WRITE, &self->ad), WEFT_EINVAL);
    self->rc = weft_pipe_from_fd(self->fds[1], WEFT_PIPE_WRITE, &self->ad);
    WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
    WEFT_TEST_CHECK(fcntl(self->fds[1], F_GETFL) & O_NONBLOCK);
    WEFT_TEST_CHECK(fcntl(self->fds[1], F_GETFD) & FD_CLOEXEC);
    close(self->fds[0]);
    WEFT_AWAIT(&self->w, write_all(weft_pipe_as(&self->ad), "x", 1), &self->n);
    WEFT_TEST_CHECK_INT_EQ(self->n, WEFT_EPIPE);
    WEFT_RETURN(0);
    WEFT_END();
}

/* Regular files cannot be waited on with epoll: adopting one fails and
 * leaves the fd to the caller, flags as they were. */
typedef struct {
    weft_future_t future;
} adopt_file_t;
static weft_poll_t adopt_file_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx;
    int fd = open("/etc/passwd", O_RDONLY);
    weft_pipe_t p;
    int rc = weft_pipe_from_fd(fd, WEFT_PIPE_READ, &p);
    WEFT_TEST_CHECK_INT_EQ(rc, -EPERM);
    WEFT_TEST_CHECK(!(fcntl(fd, F_GETFL) & O_NONBLOCK));
    WEFT_TEST_CHECK_INT_EQ(weft_pipe_fd(&p), -1);
    close(fd);
    *(int *)out = 0;
    return WEFT_READY;
}
static const weft_future_vtable_t adopt_file_vt = { adopt_file_poll, NULL, NULL, sizeof(adopt_file_t), sizeof(int),
                                                    "adopt_file" };

START_TEST(pipes)
{
    weft_runtime_t *rt = shape_rt(_i);
    pipes_t p = { WEFT_FRAME_INIT(pipes_fn) };
    int out = -1;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&p), &out), 0);
    ck_assert_int_eq(out, 0);
    adopt_file_t a = { { &adopt_file_vt } };
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&a), &out), 0);
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Review regressions: writev past IOV_MAX, adopted message fds, duplex shutdown ---- */

/* More than IOV_MAX one-byte buffers: one writev takes IOV_MAX of them and
 * that is not a short write (the pipe has room), so the pipe stays ready:
 * a small write right after, in the same poll, goes through at once. (A
 * false short write cleared the ready bit: the write then waited for an
 * edge. On a pipe that edge does come, since every write wakes the pipe's
 * waiters, so it cost a trip through the driver rather than a hang; the
 * write in the same poll, before the driver runs, tells them apart.) */
#define MANY_IOV (IOV_MAX + 7)
typedef struct {
    WEFT_FRAME;
    weft_pipe_t rd, wr;
    struct iovec iov[MANY_IOV];
    weft_io_op_t op;
    ssize_t n, w1, w2;
    char buf[2 * MANY_IOV];
    read_all_t r;
} manyiov_t;
static void manyiov_cleanup(manyiov_t *m)
{
    weft_pipe_close(&m->rd);
    weft_pipe_close(&m->wr);
}
WEFT_ASYNC_WITH_DROP(manyiov_t, manyiov_fn, int, manyiov_cleanup)
{
    WEFT_BEGIN();
    if (!WEFT_TEST_CHECK_INT_EQ(weft_pipe_new(&self->rd, &self->wr), 0))
        WEFT_RETURN(-1);
    for (int i = 0; i < MANY_IOV; i++)
        self->iov[i] = (struct iovec){ (void *)"v", 1 };
    WEFT_TEST_CHECK_INT_EQ(weft_stream_poll_writev(weft_pipe_as(&self->wr), weft__cx, self->iov, MANY_IOV, &self->w1),
                           WEFT_READY);
    WEFT_TEST_CHECK_INT_EQ(self->w1, IOV_MAX);
    if (!WEFT_TEST_CHECK_MSG(weft_stream_poll_write(weft_pipe_as(&self->wr), weft__cx, "x", 1, &self->w2) == WEFT_READY,
                             "the write after a writev of %d buffers waited: readiness was cleared", MANY_IOV))
        WEFT_RETURN(-1);
    WEFT_TEST_CHECK_INT_EQ(self->w2, 1);
    weft_pipe_close(&self->wr);
    WEFT_AWAIT(&self->r, read_all(weft_pipe_as(&self->rd), self->buf, sizeof self->buf), &self->n);
    WEFT_TEST_CHECK_INT_EQ(self->n, IOV_MAX + 1);
    WEFT_TEST_CHECK(self->n > 0 && self->buf[0] == 'v' && self->buf[self->n - 1] == 'x');
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(writev_past_iov_max_keeps_pipe_ready)
{
    manyiov_t *m = calloc(1, sizeof *m);
    *m = (manyiov_t){ WEFT_FRAME_INIT(manyiov_fn) };
    run_to_zero(_i, WEFT_FUTURE(m));
    free(m);
}
END_TEST

/* No cap (SIZE_MAX) is a valid cap. */
START_TEST(output_without_cap)
{
    weft_runtime_t *rt = shape_rt(_i);
    const char *const argv[] = { "echo", "hi", NULL };
    weft_command_t cmd;
    weft_command_init(&cmd, "echo");
    cmd.argv = argv;
    weft_output_t o;
    ck_assert_int_eq(output_on(rt, &cmd, SIZE_MAX, &o), 0);
    ck_assert_str_eq(o.out, "hi\n");
    ck_assert_uint_eq(o.out_len, 3);
    ck_assert(!o.out_truncated);
    ck_assert_uint_eq(o.err_len, 0);
    ck_assert_int_eq(o.status.code, 0);
    weft_output_free(&o);
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* An adopted fd that hands out one message per read (a SOCK_SEQPACKET
 * socket; a terminal's lines behave alike): a read shorter than the
 * buffer does not mean it was drained, so two messages queued at once
 * both come out, with no new edge after the first. */
typedef struct {
    WEFT_FRAME;
    int fds[2];
    weft_pipe_t p;
    weft_sleep_t nap;
    read_some_t r;
    weft_timeout_t to;
    ssize_t n1, n2;
    int rc;
    char buf1[64], buf2[64];
} msgs_t;
static void msgs_cleanup(msgs_t *m)
{
    weft_pipe_close(&m->p);
    if (m->fds[1] >= 0)
        close(m->fds[1]);
}
WEFT_ASYNC_WITH_DROP(msgs_t, msgs_fn, int, msgs_cleanup)
{
    WEFT_BEGIN();
    self->fds[1] = -1;
    if (!WEFT_TEST_CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, self->fds), 0))
        WEFT_RETURN(-1);
    WEFT_TEST_CHECK_INT_EQ(write(self->fds[1], "first", 5), 5);
    WEFT_TEST_CHECK_INT_EQ(write(self->fds[1], "second", 6), 6);
    self->rc = weft_pipe_from_fd(self->fds[0], WEFT_PIPE_READ, &self->p);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0)) {
        close(self->fds[0]);
        WEFT_RETURN(-1);
    }
    /* Let the driver take the registration's edge first: the reads below
     * then have no edge left to come. */
    WEFT_AWAIT(&self->nap, weft_sleep_ms(20), NULL);
    self->r = read_some(weft_pipe_as(&self->p), self->buf1, sizeof self->buf1);
    WEFT_AWAIT(&self->to, weft_timeout_ms(WEFT_FUTURE(&self->r), &self->n1, 2000), &self->rc);
    if (!WEFT_TEST_CHECK_MSG(self->rc == 0, "the first read hung"))
        WEFT_RETURN(-1);
    WEFT_TEST_CHECK_INT_EQ(self->n1, 5);
    WEFT_TEST_CHECK(memcmp(self->buf1, "first", 5) == 0);
    self->r = read_some(weft_pipe_as(&self->p), self->buf2, sizeof self->buf2);
    WEFT_AWAIT(&self->to, weft_timeout_ms(WEFT_FUTURE(&self->r), &self->n2, 2000), &self->rc);
    if (!WEFT_TEST_CHECK_MSG(self->rc == 0, "the second message never came out"))
        WEFT_RETURN(-1);
    WEFT_TEST_CHECK_INT_EQ(self->n2, 6);
    WEFT_TEST_CHECK(memcmp(self->buf2, "second", 6) == 0);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(adopted_seqpacket_reads_every_message)
{
    msgs_t m = { WEFT_FRAME_INIT(msgs_fn) };
    run_to_zero(_i, WEFT_FUTURE(&m));
}
END_TEST

/* A socket adopted as a duplex end: shutdown closes its write direction
 * only. The peer reads the end of stream, and the adopted end still reads
 * what the peer sends afterwards. */
typedef struct {
    WEFT_FRAME;
    int fds[2];
    weft_pipe_t p;
    weft_io_op_t op;
    read_all_t r;
    weft_timeout_t to;
    ssize_t n, got;
    int rc, sh;
    char buf[64];
} dshut_t;
static void dshut_cleanup(dshut_t *d)
{
    weft_pipe_close(&d->p);
    if (d->fds[1] >= 0)
        close(d->fds[1]);
}
WEFT_ASYNC_WITH_DROP(dshut_t, dshut_fn, int, dshut_cleanup)
{
    WEFT_BEGIN();
    self->fds[1] = -1;
    if (!WEFT_TEST_CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, self->fds), 0))
        WEFT_RETURN(-1);
    self->rc = weft_pipe_from_fd(self->fds[0], WEFT_PIPE_DUPLEX, &self->p);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0)) {
        close(self->fds[0]);
        WEFT_RETURN(-1);
    }
    WEFT_AWAIT(&self->op, weft_io_write_all(weft_pipe_as(&self->p), "ping", 4, NULL), &self->n);
    WEFT_TEST_CHECK_INT_EQ(self->n, 4);
    WEFT_AWAIT(&self->op, weft_io_shutdown(weft_pipe_as(&self->p)), &self->sh);
    WEFT_TEST_CHECK_INT_EQ(self->sh, 0);
    WEFT_TEST_CHECK(weft_pipe_fd(&self->p) >= 0); /* still open */
    /* The peer (a plain blocking fd, polled with a time limit): the
     * bytes, then the end of stream. */
    for (;;) {
        struct pollfd pfd = { self->fds[1], POLLIN, 0 };
        if (!WEFT_TEST_CHECK_MSG(poll(&pfd, 1, 2000) == 1, "the peer saw no end of stream"))
            WEFT_RETURN(-1);
        ssize_t k = read(self->fds[1], self->buf + self->got, sizeof self->buf - (size_t)self->got);
        if (k <= 0) {
            WEFT_TEST_CHECK_INT_EQ(k, 0);
            break;
        }
        self->got += k;
    }
    WEFT_TEST_CHECK_INT_EQ(self->got, 4);
    WEFT_TEST_CHECK(memcmp(self->buf, "ping", 4) == 0);
    /* The other way still works: the peer writes and closes, the adopted
     * end reads it all, then the end. */
    WEFT_TEST_CHECK_INT_EQ(write(self->fds[1], "pong", 4), 4);
    close(self->fds[1]);
    self->fds[1] = -1;
    self->r = read_all(weft_pipe_as(&self->p), self->buf, sizeof self->buf);
    WEFT_AWAIT(&self->to, weft_timeout_ms(WEFT_FUTURE(&self->r), &self->n, 2000), &self->rc);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
        WEFT_RETURN(-1);
    WEFT_TEST_CHECK_INT_EQ(self->n, 4);
    WEFT_TEST_CHECK(memcmp(self->buf, "pong", 4) == 0);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(duplex_shutdown_closes_write_side_only)
{
    dshut_t d = { WEFT_FRAME_INIT(dshut_fn) };
    run_to_zero(_i, WEFT_FUTURE(&d));
}
END_TEST

/* ---- SIGCHLD: weft_signal and libuv's reaper together ------------------------------------- */

typedef struct {
    WEFT_FRAME;
    weft_signal_t sig;
    weft_command_t cmd;
    weft_child_t c;
    weft_exit_status_t st;
    weft_child_wait_t w;
    const char *const *argv;
    int rc, round;
} chld_t;
static void chld_cleanup(chld_t *c) { weft_child_drop(&c->c); }
WEFT_ASYNC_WITH_DROP(chld_t, chld_fn, int, chld_cleanup)
{
    WEFT_BEGIN();
    for (self->round = 0; self->round < 2; self->round++) {
        /* Round 0: weft's handler first, libuv's comes with the spawn.
         * Round 1: libuv's watch stopped and started again. */
        self->sig = weft_signal_recv(SIGCHLD);
        WEFT_TEST_CHECK_INT_EQ(weft_future_poll(&self->sig.future, weft__cx, &self->rc), WEFT_PENDING);
        weft_command_init(&self->cmd, "sh");
        self->cmd.argv = self->argv;
        self->rc = weft_command_spawn(&self->cmd, &self->c);
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0)) {
            weft_future_drop(&self->sig.future);
            WEFT_RETURN(-1);
        }
        /* Both hear the exit: the reaper (the wait ends) and the waiter. */
        WEFT_AWAIT(&self->w, weft_child_wait(&self->c, &self->st), &self->rc);
        WEFT_TEST_CHECK_INT_EQ(self->st.code, 7);
        WEFT_AWAIT_REF(&self->sig, &self->rc);
        WEFT_TEST_CHECK_INT_EQ(self->rc, 0);
        weft_child_drop(&self->c);
    }
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(sigchld_with_weft_signal)
{
    weft_runtime_t *rt = shape_rt(_i);
    const char *const argv[] = { "sh", "-c", "exit 7", NULL };
    chld_t c = { WEFT_FRAME_INIT(chld_fn), .argv = argv };
    int out = -1;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&c), &out), 0);
    ck_assert_int_eq(out, 0);
    /* Spawned while weft watches SIGCHLD already: still reaped. */
    ck_assert_int_eq(run_on(rt, "false", NULL), 1);
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Allocation failures --------------------------------------------------------------- */

typedef struct {
    weft_future_t future;
} enomem_t;
static weft_poll_t enomem_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)f, (void)cx;
    int failed = 0;
    /* Fail the k-th allocation of a spawn with piped stdio for every k
     * until one goes through. */
    for (long k = 1; k < 50; k++) { /* 1: the next allocation fails */
        weft_command_t cmd;
        weft_command_init(&cmd, "true");
        const char *const set[] = { "A=1", NULL };
        cmd.env_set = set;
        cmd.stdio[0] = cmd.stdio[1] = cmd.stdio[2] = WEFT_STDIO_PIPED;
        weft_child_t c;
        weft__alloc_fail_after(k);
        int rc = weft_command_spawn(&cmd, &c);
        weft__alloc_fail_after(-1);
        if (rc == 0) {
            weft_child_drop(&c);
            break;
        }
        WEFT_TEST_CHECK_INT_EQ(rc, WEFT_ENOMEM);
        WEFT_TEST_CHECK(c.proc_ == NULL && c.in.io_ == NULL && c.out.io_ == NULL);
        failed++;
    }
    WEFT_TEST_CHECK(failed >= 2); /* the environment, the record, the pipes */
    weft_pipe_t a, b;
    weft__alloc_fail_after(1);
    WEFT_TEST_CHECK_INT_EQ(weft_pipe_new(&a, &b), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    weft_stdio_t s;
    weft__alloc_fail_after(1);
    WEFT_TEST_CHECK_INT_EQ(weft_stdout_open(&s), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    *(int *)out = 0;
    return WEFT_READY;
}
static const weft_future_vtable_t enomem_vt = { enomem_poll, NULL, NULL, sizeof(enomem_t), sizeof(int), "enomem" };

START_TEST(allocation_failures)
{
    weft_runtime_t *rt = shape_rt(_i);
    enomem_t e = { { &enomem_vt } };
    int out = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&e), &out), 0);
    ASSERT_NO_TEST_FAIL();
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("process");
    TCase *tc = tcase_create("process");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, exit_codes, 0, N_SHAPES);
    tcase_add_loop_test(tc, spawn_errors, 0, N_SHAPES);
    tcase_add_test(tc, spawn_outside_runtime);
    tcase_add_loop_test(tc, env_and_cwd, 0, N_SHAPES);
    tcase_add_loop_test(tc, large_output_both_pipes, 0, N_SHAPES);
    tcase_add_loop_test(tc, stdin_through_cat, 0, N_SHAPES);
    tcase_add_loop_test(tc, kill_mid_output, 0, N_SHAPES);
    tcase_add_loop_test(tc, dropped_child_is_reaped, 0, N_SHAPES);
    tcase_add_loop_test(tc, shutdown_with_child_running, 0, N_SHAPES);
    tcase_add_loop_test(tc, many_children, 0, N_SHAPES);
    tcase_add_loop_test(tc, epipe_to_exited_child, 0, N_SHAPES);
    tcase_add_loop_test(tc, pipes, 0, N_SHAPES);
    tcase_add_loop_test(tc, writev_past_iov_max_keeps_pipe_ready, 0, N_SHAPES);
    tcase_add_loop_test(tc, output_without_cap, 0, N_SHAPES);
    tcase_add_loop_test(tc, adopted_seqpacket_reads_every_message, 0, N_SHAPES);
    tcase_add_loop_test(tc, duplex_shutdown_closes_write_side_only, 0, N_SHAPES);
    tcase_add_loop_test(tc, allocation_failures, 0, N_SHAPES);
    /* It watches SIGCHLD for the rest of the process: fork mode only. */
    if (can_fork())
        tcase_add_loop_test(tc, sigchld_with_weft_signal, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
