/* reactor/process/child.c - commands and child processes (weft/process.h):
 * spawn, wait, try_wait, kill, drop.
 *
 * The calling thread prepares everything that needs no libuv (the argv and
 * environment arrays, the stdio pipes), then hands the fork and exec to the
 * runtime's libuv thread (reactor/uv_process.c) and waits for its answer,
 * so a failed exec comes back as the spawn's error. The exit comes back
 * through the child's record (proc.h): status, `exited`, and a waker.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "pipe.h"
#include "proc.h"

extern char **environ;

void weft_command_init(weft_command_t *cmd, const char *program)
{
    WEFT__REQUIRE("weft_command_init", cmd);
    memset(cmd, 0, sizeof *cmd);
    cmd->program = program;
    for (int i = 0; i < 3; i++)
        cmd->stdio[i] = WEFT_STDIO_INHERIT;
}

void weft__proc_release(weft__proc_t *p)
{
    /* acq_rel: the last holder sees the other's writes (the status). */
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    weft_atomic_waker_drop(&p->waker);
    weft__free(p, sizeof *p);
}

/* ---- The environment ---------------------------------------------------------- */

static size_t count(const char *const *v)
{
    size_t n = 0;
    while (v != NULL && v[n] != NULL)
        n++;
    return n;
}

/* Does entry ("NAME=value") define `name` (up to '=' or NUL in name)? */
static bool names(const char *entry, const char *name)
{
    size_t k = strcspn(name, "=");
    return strncmp(entry, name, k) == 0 && entry[k] == '=';
}

static bool listed(const char *entry, const char *const *v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        if (names(entry, v[i]))
            return true;
    return false;
}

/* The child's environment, or NULL in *out when it is the parent's as it
 * is. The array points into environ and cmd's strings (read while the
 * caller waits for the fork). *size: its allocation in bytes. */
static int build_env(const weft_command_t *cmd, char ***out, size_t *size)
{
    *out = NULL;
    *size = 0;
    for (size_t i = 0; cmd->env_set != NULL && cmd->env_set[i] != NULL; i++)
        if (strchr(cmd->env_set[i], '=') == NULL || cmd->env_set[i][0] == '=')
            return WEFT_EINVAL;
    if (!cmd->env_clear && cmd->env_set == NULL && cmd->env_remove == NULL)
        return 0;
    const char *const *parent = cmd->env_clear ? NULL : (const char *const *)environ;
    size_t cap = count(parent) + count(cmd->env_set) + 1;
    char **env = weft__alloc(cap * sizeof *env);
    if (env == NULL)
        return WEFT_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; parent != NULL && parent[i] != NULL; i++)
        if (!listed(parent[i], cmd->env_remove) && !listed(parent[i], cmd->env_set))
            env[n++] = (char *)parent[i];
    for (size_t i = 0; cmd->env_set != NULL && cmd->env_set[i] != NULL; i++) {
        bool later = false; /* the last of two entries for one name wins */
        for (size_t j = i + 1; cmd->env_set[j] != NULL && !later; j++)
            later = names(cmd->env_set[j], cmd->env_set[i]);
        if (!later)
            env[n++] = (char *)cmd->env_set[i];
    }
    env[n] = NULL;
    *out = env;
    *size = cap * sizeof *env;
    return 0;
}

/* ---- spawn ------------------------------------------------------------------------ */

/* The stdio plumbing of one spawn: fds[i] is what the child gets as fd i
 * (-1: /dev/null), ours[i] the parent's end of a piped stream (-1: none). */
typedef struct plumbing {
    int fds[3];
    int ours[3];
} plumbing_t;

static void plumbing_close(plumbing_t *pl)
{
    for (int i = 0; i < 3; i++) {
        if (pl->ours[i] >= 0) { /* a pipe: the child's end is ours to close too */
            close(pl->ours[i]);
            close(pl->fds[i]);
        }
        pl->ours[i] = pl->fds[i] = -1;
    }
}

static int plumbing_make(const weft_command_t *cmd, plumbing_t *pl)
{
    for (int i = 0; i < 3; i++)
        pl->fds[i] = pl->ours[i] = -1;
    for (int i = 0; i < 3; i++) {
        switch (cmd->stdio[i]) {
        case WEFT_STDIO_INHERIT:
            pl->fds[i] = i;
            break;
        case WEFT_STDIO_NULL:
            break;
        case WEFT_STDIO_PIPED: {
            int p[2];
            if (pipe2(p, O_CLOEXEC) != 0) {
                int rc = -errno;
                plumbing_close(pl);
                return rc;
            }
            int child = i == 0 ? p[0] : p[1], mine = i == 0 ? p[1] : p[0];
            /* Only our end is non-blocking: the pipe's two ends are two
             * open file descriptions, and the child expects blocking I/O. */
            (void)fcntl(mine, F_SETFL, O_NONBLOCK);
            pl->fds[i] = child;
            pl->ours[i] = mine;
            break;
        }
        default:
            plumbing_close(pl);
            return WEFT_EINVAL;
        }
    }
    return 0;
}

/* Registers the parent's ends into c's pipes; on error closes what is
 * left. The child's ends are closed in either case. */
static int plumbing_adopt(plumbing_t *pl, weft_child_t *c)
{
    weft_pipe_t *dst[3] = { &c->in, &c->out, &c->err };
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        if (pl->ours[i] < 0)
            continue;
        close(pl->fds[i]);
        pl->fds[i] = -1;
        if (rc == 0)
            rc = weft__pipe_adopt(pl->ours[i], i == 0 ? WEFT_PIPE_WRITE : WEFT_PIPE_READ, dst[i]);
        if (dst[i]->io_ == NULL)
            close(pl->ours[i]);
        pl->ours[i] = -1;
    }
    return rc;
}

int weft_command_spawn(const weft_command_t *cmd, weft_child_t *out)
{
    WEFT__REQUIRE("weft_command_spawn", cmd);
    WEFT__REQUIRE("weft_command_spawn", out);
    memset(out, 0, sizeof *out);
    if (cmd->program == NULL || cmd->program[0] == '\0')
        return WEFT_EINVAL;
    weft__driver_t *d = weft__cx_driver();
    if (d == NULL || !d->has_io)
        return WEFT_ENOSYS;
    char **env;
    size_t env_size;
    int rc = build_env(cmd, &env, &env_size);
    if (rc != 0)
        return rc;
    const char *argv0[2] = { cmd->program, NULL };
    weft__proc_t *p = weft__alloc(sizeof *p);
    if (p == NULL) {
        rc = WEFT_ENOMEM;
        goto out_env;
    }
    memset(p, 0, sizeof *p);
    atomic_init(&p->refs, 2); /* the handle's and the libuv handle's */
    atomic_init(&p->exited, false);
    weft_atomic_waker_init(&p->waker);
    p->d = d;
    plumbing_t pl;
    rc = plumbing_make(cmd, &pl);
    if (rc != 0) {
        weft__free(p, sizeof *p);
        goto out_env;
    }
    weft__proc_req_t req;
    memset(&req, 0, sizeof req);
    req.op = WEFT__PROC_SPAWN;
    req.file = cmd->program;
    req.args = (char **)(cmd->argv != NULL ? cmd->argv : argv0);
    req.env = env;
    req.cwd = cmd->cwd;
    memcpy(req.fds, pl.fds, sizeof req.fds);
    req.proc = p;
    rc = weft__uv_proc_submit(d, &req);
    if (rc != 0) {
        plumbing_close(&pl);
        if (rc == WEFT_ESHUTDOWN) /* never reached the libuv thread */
            weft__free(p, sizeof *p);
        else
            weft__proc_release(p); /* the libuv side drops its own at the close */
        goto out_env;
    }
    out->proc_ = p;
    rc = plumbing_adopt(&pl, out);
    if (rc != 0) {
        /* An end could not be registered (WEFT_ENOMEM): the child is
         * killed and left to the libuv thread to reap. */
        int krc = weft_child_kill(out, SIGKILL);
        (void)krc; /* -ESRCH: it is gone already */
        weft_child_drop(out);
    }
out_env:
    if (env != NULL)
        weft__free(env, env_size);
    return rc;
}

/* ---- The handle ------------------------------------------------------------------- */

pid_t weft_child_pid(const weft_child_t *c)
{
    WEFT__REQUIRE("weft_child_pid", c);
    return c->proc_ != NULL ? c->proc_->pid : -1;
}

static bool exited(const weft__proc_t *p, weft_exit_status_t *st)
{
    /* acquire: pairs with report_exit's release store (uv_process.c). */
    if (!atomic_load_explicit(&p->exited, memory_order_acquire))
        return false;
    if (st != NULL)
        *st = p->status;
    return true;
}

int weft_child_try_wait(const weft_child_t *c, weft_exit_status_t *st)
{
    WEFT__REQUIRE("weft_child_try_wait", c);
    if (c->proc_ == NULL)
        return WEFT_EBADF;
    return exited(c->proc_, st) ? 0 : WEFT_EAGAIN;
}

int weft_child_kill(weft_child_t *c, int signo)
{
    WEFT__REQUIRE("weft_child_kill", c);
    weft__proc_t *p = c->proc_;
    if (p == NULL)
        return WEFT_EBADF;
    if (signo <= 0 || signo >= NSIG)
        return WEFT_EINVAL;
    /* Exited: the runtime that reaped it may be gone; never touch it. */
    if (exited(p, NULL))
        return -ESRCH;
    weft__proc_req_t req;
    memset(&req, 0, sizeof req);
    req.op = WEFT__PROC_KILL;
    req.proc = p;
    req.signo = signo;
    return weft__uv_proc_submit(p->d, &req);
}

void weft_child_drop(weft_child_t *c)
{
    WEFT__REQUIRE("weft_child_drop", c);
    weft_pipe_close(&c->in);
    weft_pipe_close(&c->out);
    weft_pipe_close(&c->err);
    if (c->proc_ != NULL) {
        weft__proc_release(c->proc_);
        c->proc_ = NULL;
    }
}

/* ---- wait -------------------------------------------------------------------------- */

static weft_poll_t wait_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_child_wait_t *w = (weft_child_wait_t *)(void *)f;
    weft_pipe_close(&w->c_->in); /* a child reading its stdin would wait for us */
    weft__proc_t *p = w->c_->proc_;
    int rc = 0;
    if (p == NULL) {
        rc = WEFT_EBADF;
    } else if (!exited(p, w->st_)) {
        weft_atomic_waker_register(&p->waker, cx->waker);
        if (!exited(p, w->st_)) /* the exit may have come before the registration */
            return WEFT_PENDING;
    }
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static const weft_future_vtable_t wait_vtable = {
    wait_poll, NULL, NULL, sizeof(weft_child_wait_t), sizeof(int), "weft_child_wait",
};

weft_child_wait_t weft_child_wait(weft_child_t *c, weft_exit_status_t *st)
{
    WEFT__REQUIRE("weft_child_wait", c);
    WEFT__REQUIRE("weft_child_wait", st);
    weft_child_wait_t w;
    memset(&w, 0, sizeof w);
    w.future.vtable = &wait_vtable;
    w.c_ = c;
    w.st_ = st;
    return w;
}
