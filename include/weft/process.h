/* weft/process.h - child processes, pipes, and the process's own standard
 * streams, as byte streams (weft/io.h). docs/process.md is the guide.
 *
 * Pipes (weft_pipe_t) are non-blocking fds in the runtime's epoll set: a
 * read or write tries the system call on the calling worker and waits for
 * readiness only when it would block, as sockets do.
 *
 * Child processes are started by libuv's uv_spawn on the runtime's driver
 * thread (the only thread that calls libuv), which also reaps them: it
 * watches SIGCHLD and calls waitpid for its own children only. A child's
 * exit reaches the task awaiting weft_child_wait through a waker. A child
 * whose handle is dropped keeps running and is still reaped when it exits;
 * children still running when their runtime shuts down are sent SIGKILL
 * and reaped during the shutdown, so no zombie outlives the runtime.
 *
 * SIGPIPE: the first pipe end weft creates or adopts (weft_pipe_new,
 * weft_pipe_from_fd, a piped child stdin, weft_stdout_open,
 * weft_stderr_open) sets SIGPIPE's disposition to SIG_IGN if it was
 * SIG_DFL, so a write to a pipe whose reader is gone fails with WEFT_EPIPE
 * instead of killing the process. A handler or SIG_IGN the program set
 * itself is left alone. Children start with every signal at SIG_DFL.
 *
 * Standard streams (weft_stdio_t) do their reads and writes on the
 * blocking pool: the fds 0, 1 and 2 are shared with other processes (a
 * shell's terminal), so weft never makes them non-blocking, and a regular
 * file there cannot be waited on with epoll at all.
 */
#ifndef WEFT_PROCESS_H
#define WEFT_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "future.h"
#include "io.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

struct weft__io;
struct weft__proc;
struct weft__stdio;

/* ---- Pipes -------------------------------------------------------------- */

/* One end of a pipe (or a FIFO, a terminal, a socket adopted as a plain
 * fd): a read end implements poll_read, a write end poll_write,
 * poll_writev and poll_shutdown (closing the end, so the reader sees the
 * end of stream). Both directions of an fd adopted as WEFT_PIPE_DUPLEX,
 * whose shutdown closes only a socket's write direction (reading goes on;
 * a terminal has no write direction to close, and its shutdown does
 * nothing). Zero-initialised or closed: every call answers -EBADF. */
typedef struct weft_pipe_s {
    weft_stream_t stream_; /* the byte-stream interface: weft_pipe_as */
    struct weft__io *io_;
} weft_pipe_t;

typedef enum weft_pipe_end_e {
    WEFT_PIPE_READ,   /* read only */
    WEFT_PIPE_WRITE,  /* write only */
    WEFT_PIPE_DUPLEX, /* both (a terminal or a socket given as an fd) */
} weft_pipe_end_t;

/* Creates an anonymous pipe: *rd its read end, *wr its write end, both
 * registered with the current runtime's I/O driver (non-blocking,
 * close-on-exec). Returns 0, WEFT_ENOSYS (no runtime with I/O here),
 * WEFT_ENOMEM, or -errno from pipe2 (WEFT_EMFILE) or epoll_ctl; on error
 * nothing is left open. Ownership: the caller closes both with
 * weft_pipe_close. Context: any thread inside a runtime with enable_io. */
WEFT_API WEFT_NODISCARD int weft_pipe_new(weft_pipe_t *rd, weft_pipe_t *wr);
/* Adopts fd as a pipe end of kind `end`: makes it non-blocking and
 * close-on-exec and registers it. Returns 0 (fd now belongs to *out),
 * WEFT_EINVAL (fd < 0 or a bad end), WEFT_ENOSYS, WEFT_ENOMEM, or -errno
 * (-EPERM: a regular file or directory, which epoll cannot wait on; -EBADF);
 * on error the caller still owns fd and its flags are as they were. Do not
 * adopt an fd shared with other processes (a terminal inherited from the
 * shell): its open file description becomes non-blocking for them too;
 * use weft_stdio_t for fds 0-2. Context: as weft_pipe_new. */
WEFT_API WEFT_NODISCARD int weft_pipe_from_fd(int fd, weft_pipe_end_t end, weft_pipe_t *out);
/* The byte-stream interface of p (never NULL; the stream lives in *p). */
WEFT_API weft_stream_t *weft_pipe_as(weft_pipe_t *p);
/* The fd, or -1 once closed. */
WEFT_API int weft_pipe_fd(const weft_pipe_t *p);
/* Closes the end: tasks waiting on it wake with -EBADF; the fd itself is
 * closed once no call is using it, and the peer then sees the end of
 * stream (or EPIPE). Idempotent; a zeroed pipe is fine. Context: any
 * thread, while the runtime that registered it is alive, but not while
 * another thread is inside a read or write of this end (between two polls
 * is fine: a task waiting on it wakes with -EBADF). */
WEFT_API void weft_pipe_close(weft_pipe_t *p);

/* ---- Commands ------------------------------------------------------------ */

/* What a child's fd 0, 1 or 2 is connected to. */
typedef enum weft_stdio_mode_e {
    WEFT_STDIO_INHERIT, /* the parent's own fd (the default) */
    WEFT_STDIO_NULL,    /* /dev/null */
    WEFT_STDIO_PIPED,   /* a new pipe; the parent's end is in weft_child_t */
} weft_stdio_mode_t;

/* How to start a child: fill it in after weft_command_init. The strings
 * and arrays are read only during weft_command_spawn (and, for
 * weft_command_output, until its first poll). */
typedef struct weft_command_s {
    const char *program; /* a path, or a name looked up in PATH (the child's PATH) */
    /* NULL-terminated; argv[0] is what the child sees as its name. NULL:
     * { program, NULL }. */
    const char *const *argv;
    const char *cwd;      /* the child's working directory; NULL: the parent's */
    bool env_clear;       /* start from an empty environment instead of the parent's */
    const char *const *env_set;    /* NULL-terminated "NAME=value" entries to add or replace */
    const char *const *env_remove; /* NULL-terminated names to remove (applied before env_set) */
    weft_stdio_mode_t stdio[3];    /* fd 0, 1, 2 */
} weft_command_t;

/* Sets program and every other field to its default (inherit everything). */
WEFT_API void weft_command_init(weft_command_t *cmd, const char *program);

/* A running (or exited) child. Its piped ends are in in/out/err (zeroed
 * for a stream that is not piped); they belong to the caller, who may move
 * them out (copy the struct, then zero the field) or leave them to
 * weft_child_drop. */
typedef struct weft_child_s {
    struct weft__proc *proc_;
    weft_pipe_t in;  /* write end of the child's stdin (WEFT_STDIO_PIPED) */
    weft_pipe_t out; /* read end of its stdout */
    weft_pipe_t err; /* read end of its stderr */
} weft_child_t;

/* How a child ended. */
typedef struct weft_exit_status_s {
    int code;   /* exit code (0..255) when signal == 0; else -1 */
    int signal; /* the signal that terminated it, or 0 */
} weft_exit_status_t;

/* Starts cmd as a child process of this runtime. The fork and exec run on
 * the runtime's driver thread; the caller waits for them (about as long as
 * a fork and exec take), so spawn errors come back here, not as exit code
 * 127. Returns 0 (*out filled in); WEFT_ENOENT (no such program),
 * -EACCES (not executable), WEFT_ENOENT / -ENOTDIR for a bad cwd,
 * WEFT_ENOMEM, WEFT_EMFILE, WEFT_EAGAIN (fork failed), WEFT_EINVAL (no
 * program, a bad stdio mode, a malformed env_set entry), WEFT_ENOSYS (no
 * runtime with I/O here), WEFT_ESHUTDOWN (the runtime is shutting down).
 * On error nothing is left open or running. Ownership: *out is the
 * caller's until weft_child_drop. Context: a thread inside a runtime with
 * enable_io (a task, block_on, a blocking job); blocks briefly. */
WEFT_API WEFT_NODISCARD int weft_command_spawn(const weft_command_t *cmd, weft_child_t *out);

/* The child's process id (valid while the handle lives; after the child
 * is reaped the number may belong to another process). */
WEFT_API pid_t weft_child_pid(const weft_child_t *c);
/* 0 and *st filled in when the child has exited (reaped), WEFT_EAGAIN while
 * it runs, WEFT_EBADF for a dropped handle. Never blocks. */
WEFT_API WEFT_NODISCARD int weft_child_try_wait(const weft_child_t *c, weft_exit_status_t *st);
/* Sends signo to the child, unless it has exited already (-ESRCH), so a
 * reaped child's reused pid is never signalled. Returns 0, -ESRCH,
 * WEFT_EINVAL (bad signo), WEFT_EBADF (dropped handle), WEFT_ESHUTDOWN.
 * Context: as weft_command_spawn (the signal is sent from the driver
 * thread; the caller waits for it). */
WEFT_API WEFT_NODISCARD int weft_child_kill(weft_child_t *c, int signo);
/* Closes the piped ends and forgets the child: it keeps running and is
 * reaped when it exits (or killed and reaped when the runtime shuts
 * down). Idempotent. */
WEFT_API void weft_child_drop(weft_child_t *c);

/* Waits for the child to exit. First closes c->in (so a child reading its
 * stdin sees the end of it and can finish): a task that feeds the child's
 * stdin while another waits must own the pipe first (move it out of c,
 * `weft_pipe_t in = c->in; c->in = (weft_pipe_t){ 0 };`, and close it
 * when done). Output int: 0 (*st filled in)
 * or WEFT_EBADF (a dropped handle). Dropping the future leaves the child
 * alone. c must outlive the future. */
typedef struct weft_child_wait_s {
    weft_future_t future;
    weft_child_t *c_;
    weft_exit_status_t *st_;
} weft_child_wait_t;
WEFT_API WEFT_NODISCARD weft_child_wait_t weft_child_wait(weft_child_t *c, weft_exit_status_t *st);

/* ---- Output: run to completion ------------------------------------------- */

/* What weft_command_output collected. out/err are NUL-terminated (the NUL
 * is not counted), allocated by weft; free them with weft_output_free. */
typedef struct weft_output_s {
    weft_exit_status_t status;
    char *out, *err;
    size_t out_len, err_len;
    bool out_truncated, err_truncated; /* more than cap bytes came (the rest was read and dropped) */
} weft_output_t;
WEFT_API void weft_output_free(weft_output_t *o);

/* Runs cmd to completion: spawns it at the first poll with stdout and
 * stderr piped (stdin as cmd says, WEFT_STDIO_PIPED taken as
 * WEFT_STDIO_NULL), reads both pipes at once (no deadlock when the child
 * fills one while we read the other), keeping at most cap bytes of each,
 * then waits for the exit. Output int: 0 (*o filled in), a spawn error,
 * WEFT_ENOMEM, or a read error. On error *o holds nothing to free.
 * Dropped before the end: the pipes are closed and the child is dropped
 * (it runs on, and is reaped). cmd must stay valid until the first poll. */
typedef struct weft_command_output_s {
    weft_future_t future;
    const weft_command_t *cmd_;
    size_t cap_;
    weft_output_t *o_;
    weft_child_t child_;
    weft_child_wait_t wait_;
    int phase_;
    bool out_eof_, err_eof_;
    size_t out_cap_, err_cap_; /* allocated sizes of o_->out / o_->err */
} weft_command_output_t;
WEFT_API WEFT_NODISCARD weft_command_output_t weft_command_output(const weft_command_t *cmd, size_t cap,
                                                                   weft_output_t *o);

/* ---- The process's standard streams --------------------------------------- */

/* fd 0, 1 or 2 as a byte stream, its reads and writes done on the
 * runtime's blocking pool. A write copies up to 64 KiB into the handle's
 * buffer and returns at once; the next write, flush or shutdown first
 * waits for the previous one to be written in full (so one handle's
 * writes reach the fd in order, and an error is reported by the call
 * after the write that met it). A read fills the buffer with one read(2)
 * on the pool and hands it out. Writes through two handles of one fd may
 * interleave: use one handle per fd. Not duplex: one task at a time. */
typedef struct weft_stdio_s {
    weft_stream_t stream_; /* weft_stdio_as */
    struct weft__stdio *st_;
} weft_stdio_t;

/* Open a handle (no system call yet). Returns 0 or WEFT_ENOMEM. Context:
 * any thread; the handle's calls run inside a runtime (its blocking pool). */
WEFT_API WEFT_NODISCARD int weft_stdin_open(weft_stdio_t *out);
WEFT_API WEFT_NODISCARD int weft_stdout_open(weft_stdio_t *out);
WEFT_API WEFT_NODISCARD int weft_stderr_open(weft_stdio_t *out);
WEFT_API weft_stream_t *weft_stdio_as(weft_stdio_t *s);
/* Closes the handle (not the fd). A write or read in flight on the pool
 * finishes there (it cannot be interrupted) and its buffer is freed then:
 * flush first to be sure the bytes were written. Idempotent. */
WEFT_API void weft_stdio_close(weft_stdio_t *s);

#ifdef __cplusplus
}
#endif

#endif
