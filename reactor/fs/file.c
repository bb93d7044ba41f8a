/* reactor/fs/file.c - an open file: a byte stream whose calls run as jobs
 * on the blocking pool, at most one job per file at a time.
 *
 * The handle keeps its own position and two buffers. While no job runs,
 * both belong to the polling side; while one runs, `back` is the job's
 * and `front` stays the poller's:
 *  - reading: a job fills `back` with a block at the position (at least
 *    FILE_BLOCK bytes, whatever the caller asked for); taken, it becomes
 *    `front`, reads are copied out of it, and right away the next block is
 *    read ahead into the other buffer. A sequential reader thus finds its
 *    data waiting, and the pool thread reads block n+1 while the task
 *    consumes block n: one job per FILE_BLOCK bytes instead of one per
 *    call, and the two run at once (bench/RESULTS.md, file_read).
 *  - writing: bytes are copied into `front`; if no job runs, `front` is
 *    handed to a job as `back` at once; while one runs, later writes pile
 *    up in `front` (up to FILE_BLOCK) and go out together in the next job.
 *  - every other call (pread, pwrite, seek to the end, sync, set_len,
 *    fstat) first lets the job in flight finish and pushes out pending
 *    writes, then runs its own job with `back`.
 * The result of a job is taken by whichever call polls the file next
 * (take_result), so a future dropped while its job runs loses nothing:
 * a read's block is kept for the next read, a write's error for the next
 * write or flush. The buffers are keyed by file offset, so a seek keeps
 * what is still ahead of the new position.
 *
 * Lifetime. The handle and the job in flight each hold the file (job.h);
 * the last one frees it. Writes still in `front` at close are written by
 * a final job before the descriptor is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../../runtime/context.h"
#include "../../runtime/nonnull.h"
#include "file.h"
#include "weft/runtime.h"

/* A read job reads at least this much (a 256 KiB block amortises the
 * job's cost over many small reads while two blocks stay in L2); a pread,
 * pwrite or read job moves at most FILE_MAX_JOB (the buffer is the
 * handle's, and must stay bounded whatever len the caller passes). */
#define FILE_BLOCK ((size_t)256 * 1024)
#define FILE_MAX_JOB ((size_t)1024 * 1024)

enum buf_role {
    B_EMPTY, /* holds nothing */
    B_READ,  /* file bytes [start, start + len); eof: a short read ended it */
    B_WRITE, /* len bytes to write at start (at the end in append mode) */
    B_ERR,   /* a read-ahead at `start` failed with err */
};

typedef struct fbuf {
    char *p;
    size_t cap;
    enum buf_role role;
    uint64_t start;
    size_t len;
    bool eof;
    int err;
} fbuf_t;

enum job_kind { J_READ, J_WRITE, J_PREAD, J_PWRITE, J_SEEK, J_SYNC_ALL, J_SYNC_DATA, J_SET_LEN, J_STAT };

struct weft__file {
    weft__fs_job_t job; /* first: the job's free gets the file back */
    int fd;
    bool readable, writable, append;
    bool positional; /* a regular file or block device: pread/pwrite at an offset, read-ahead */
    bool busy;       /* a job started and its result not taken yet (poll side only) */
    /* The job's parameters (written before it starts) and results (read
     * after it published): the job reads and writes nothing else but back. */
    enum job_kind jkind;
    uint64_t joff;
    size_t jlen;
    int jwhence;
    uint64_t jend; /* append: the file's end after the write */
    struct stat jst;
    uint64_t seq;      /* of the job last started */
    uint64_t last_seq; /* of the job whose result was taken last */
    int64_t last_res;
    uint64_t pos;
    int werr; /* a write that failed after it was taken, not reported yet */
    fbuf_t front, back;
};

/* ---- Buffers --------------------------------------------------------------------- */

static int buf_reserve(fbuf_t *b, size_t need)
{
    if (b->cap >= need)
        return 0;
    char *p = weft__alloc(need);
    if (p == NULL)
        return WEFT_ENOMEM;
    if (b->p != NULL)
        weft__free(b->p, b->cap);
    b->p = p;
    b->cap = need;
    return 0;
}

static void buf_swap(weft__file_t *f)
{
    fbuf_t t = f->front;
    f->front = f->back;
    f->back = t;
}

static bool holds(const fbuf_t *b, uint64_t pos)
{
    return b->role == B_READ && pos >= b->start && pos - b->start < b->len;
}

/* Forgets what was read: a write or a truncation makes it stale. */
static void drop_reads(weft__file_t *f)
{
    if (f->front.role == B_READ || f->front.role == B_ERR)
        f->front.role = B_EMPTY;
    if (f->back.role == B_READ || f->back.role == B_ERR)
        f->back.role = B_EMPTY;
}

/* ---- The job --------------------------------------------------------------------- */

static int64_t sys_result(ssize_t n)
{
    return n >= 0 ? (int64_t)n : weft__fs_errno();
}

/* Writes all len bytes; the count, or a negative errno if none went. */
static int64_t write_fully(weft__file_t *f, const char *p, size_t len, uint64_t off, bool at_off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = at_off ? pwrite(f->fd, p + done, len - done, (off_t)(off + done)) : write(f->fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return done > 0 && n == 0 ? (int64_t)done : (n == 0 ? WEFT_EIO : weft__fs_errno());
        done += (size_t)n;
    }
    return (int64_t)done;
}

static int64_t read_once(weft__file_t *f, char *p, size_t len, uint64_t off, bool at_off)
{
    for (;;) {
        ssize_t n = at_off ? pread(f->fd, p, len, (off_t)off) : read(f->fd, p, len);
        if (n >= 0 || errno != EINTR)
            return sys_result(n);
    }
}

static void run_job(weft__fs_job_t *j)
{
    weft__file_t *f = (weft__file_t *)(void *)j;
    int64_t r;
    switch (f->jkind) {
    case J_READ:
        r = read_once(f, f->back.p, f->jlen, f->joff, f->positional);
        break;
    case J_PREAD:
        r = read_once(f, f->back.p, f->jlen, f->joff, true);
        break;
    case J_WRITE:
        r = write_fully(f, f->back.p, f->back.len, f->back.start, f->positional && !f->append);
        if (f->append) {
            off_t end = lseek(f->fd, 0, SEEK_CUR);
            f->jend = end < 0 ? 0 : (uint64_t)end;
        }
        break;
    case J_PWRITE:
        r = write_fully(f, f->back.p, f->jlen, f->joff, true);
        break;
    case J_SEEK:
        r = sys_result(lseek(f->fd, (off_t)(int64_t)f->joff, f->jwhence));
        break;
    case J_SYNC_ALL:
        r = fsync(f->fd) == 0 ? 0 : weft__fs_errno();
        break;
    case J_SYNC_DATA:
        r = fdatasync(f->fd) == 0 ? 0 : weft__fs_errno();
        break;
    case J_SET_LEN:
        r = ftruncate(f->fd, (off_t)f->joff) == 0 ? 0 : weft__fs_errno();
        break;
    case J_STAT:
        r = fstat(f->fd, &f->jst) == 0 ? 0 : weft__fs_errno();
        break;
    default:
        r = WEFT_EINVAL;
    }
    j->res = r;
}

static int job_start(weft__file_t *f, weft_context_t *cx, enum job_kind kind, uint64_t off, size_t len)
{
    f->jkind = kind;
    f->joff = off;
    f->jlen = len;
    f->seq++;
    f->job.run_if_cancelled = kind == J_WRITE; /* taken bytes are written even at shutdown */
    int rc = weft__fs_job_start(&f->job, cx, "weft_file");
    if (rc == 0)
        f->busy = true;
    return rc;
}

/* Takes the result of the job that ran (after weft__fs_job_ready said so):
 * what it read becomes readable, a write's error is kept for the next
 * write or flush, and the result waits in last_res for the call that
 * started the job. */
static void take_result(weft__file_t *f)
{
    int64_t res = f->job.res;
    f->busy = false;
    f->last_seq = f->seq;
    f->last_res = res;
    fbuf_t *b = &f->back;
    switch (f->jkind) {
    case J_READ:
        b->start = f->joff;
        if (res < 0) {
            b->role = B_ERR;
            b->err = (int)res;
        } else {
            b->role = B_READ;
            b->len = (size_t)res;
            b->eof = !f->positional || (size_t)res < f->jlen;
        }
        break;
    case J_WRITE:
        if (res < 0 && f->werr == 0)
            f->werr = (int)res;
        if (f->append && res >= 0)
            f->pos = f->jend + (f->front.role == B_WRITE ? f->front.len : 0);
        b->role = B_EMPTY;
        break;
    case J_PWRITE:
    case J_SET_LEN:
        drop_reads(f);
        b->role = B_EMPTY;
        break;
    default:
        b->role = B_EMPTY;
        break;
    }
}

/* Lets the job in flight finish and takes its result; false while it
 * still runs (cx's waker is then registered). */
static bool settle(weft__file_t *f, weft_context_t *cx)
{
    if (!f->busy)
        return true;
    if (!weft__fs_job_ready(&f->job, cx))
        return false;
    take_result(f);
    return true;
}

/* Hands the pending writes in front to a job. No job may be in flight. */
static int start_write(weft__file_t *f, weft_context_t *cx)
{
    if (f->back.role == B_READ || f->back.role == B_ERR)
        f->back.role = B_EMPTY;
    buf_swap(f);
    int rc = job_start(f, cx, J_WRITE, f->back.start, f->back.len);
    if (rc != 0) /* nothing started: the writes stay pending */
        buf_swap(f);
    return rc;
}

/* Settles the job in flight and writes out what is pending. READY with
 * *rc 0, or the first write error since the last report. */
static weft_poll_t drain(weft__file_t *f, weft_context_t *cx, int64_t *rc)
{
    for (;;) {
        if (!settle(f, cx))
            return WEFT_PENDING;
        if (f->front.role == B_WRITE && f->front.len > 0) {
            int r = start_write(f, cx);
            if (r != 0) {
                *rc = r;
                return WEFT_READY;
            }
            continue;
        }
        *rc = f->werr;
        f->werr = 0;
        return WEFT_READY;
    }
}

/* ---- Reading --------------------------------------------------------------------- */

static size_t clamp_len(size_t len, size_t lo, size_t hi)
{
    return len < lo ? lo : len > hi ? hi : len;
}

/* Starts reading the block after front, if front was full and nothing
 * runs. A failure only means there is no read-ahead. */
static void read_ahead(weft__file_t *f, weft_context_t *cx)
{
    uint64_t next = f->front.start + f->front.len;
    if (f->busy || !f->positional || f->front.role != B_READ || f->front.eof)
        return;
    if (f->back.role == B_READ && f->back.start == next)
        return; /* already read */
    size_t blk = clamp_len(f->front.len, FILE_BLOCK, FILE_MAX_JOB);
    if (buf_reserve(&f->back, blk) != 0)
        return;
    f->back.role = B_EMPTY;
    (void)job_start(f, cx, J_READ, next, blk);
}

static weft_poll_t file_read(weft__file_t *f, weft_context_t *cx, char *buf, size_t len, int64_t *n)
{
    for (;;) {
        if (!settle(f, cx))
            return WEFT_PENDING;
        if (f->front.role == B_WRITE && f->front.len > 0) { /* what was written must be read back */
            int rc = start_write(f, cx);
            if (rc != 0) {
                *n = rc;
                return WEFT_READY;
            }
            continue;
        }
        if (holds(&f->front, f->pos)) {
            size_t at = (size_t)(f->pos - f->front.start), k = f->front.len - at;
            k = k < len ? k : len;
            memcpy(buf, f->front.p + at, k);
            f->pos += k;
            *n = (int64_t)k;
            read_ahead(f, cx);
            return WEFT_READY;
        }
        if (f->back.start == f->pos && (f->back.role == B_READ || f->back.role == B_ERR)) {
            if (f->back.role == B_ERR) {
                *n = f->back.err;
                f->back.role = B_EMPTY;
                return WEFT_READY;
            }
            if (f->back.len == 0) { /* end of file (a later read tries again: files grow) */
                f->back.role = B_EMPTY;
                *n = 0;
                return WEFT_READY;
            }
            buf_swap(f);
            continue;
        }
        if (holds(&f->back, f->pos)) {
            buf_swap(f);
            continue;
        }
        size_t blk = f->positional ? clamp_len(len, FILE_BLOCK, FILE_MAX_JOB) : clamp_len(len, 1, FILE_MAX_JOB);
        int rc = buf_reserve(&f->back, blk);
        if (rc == 0) {
            f->back.role = B_EMPTY;
            rc = job_start(f, cx, J_READ, f->pos, blk);
        }
        if (rc != 0) {
            *n = rc;
            return WEFT_READY;
        }
    }
}

/* ---- Writing --------------------------------------------------------------------- */

/* Copies as much of buf as fits into front's pending writes, if they end
 * at the position (or the file appends). Returns the count taken (0: no
 * room, or not contiguous) or WEFT_ENOMEM. */
static int64_t take_bytes(weft__file_t *f, const char *buf, size_t len)
{
    fbuf_t *b = &f->front;
    if (b->role != B_WRITE || b->len == 0) {
        int rc = buf_reserve(b, FILE_BLOCK);
        if (rc != 0)
            return rc;
        b->role = B_WRITE;
        b->start = f->pos;
        b->len = 0;
    } else if (!f->append && b->start + b->len != f->pos) {
        return 0;
    }
    size_t k = b->cap - b->len;
    k = k < len ? k : len;
    memcpy(b->p + b->len, buf, k);
    b->len += k;
    f->pos += k;
    return (int64_t)k;
}

static weft_poll_t file_write(weft__file_t *f, weft_context_t *cx, const char *buf, size_t len, int64_t *n)
{
    for (;;) {
        if (f->busy && f->jkind == J_WRITE && !weft__fs_job_ready(&f->job, cx)) {
            /* A write runs: pile up behind it. */
            if (f->front.role == B_READ || f->front.role == B_ERR)
                f->front.role = B_EMPTY;
            int64_t k = take_bytes(f, buf, len);
            if (k == 0)
                return WEFT_PENDING; /* full: wait for the job */
            *n = k;
            return WEFT_READY;
        }
        if (!settle(f, cx))
            return WEFT_PENDING;
        if (f->werr != 0) {
            *n = f->werr;
            f->werr = 0;
            return WEFT_READY;
        }
        drop_reads(f);
        int64_t k = take_bytes(f, buf, len);
        if (k > 0) {
            int rc = start_write(f, cx);
            if (rc != 0) { /* give the bytes back: the caller sees the error instead */
                f->front.len -= (size_t)k;
                f->pos -= (uint64_t)k;
                k = rc;
            }
        }
        if (k != 0) {
            *n = k;
            return WEFT_READY;
        }
        int rc = start_write(f, cx); /* pending writes elsewhere in the file go first */
        if (rc != 0) {
            *n = rc;
            return WEFT_READY;
        }
    }
}

/* ---- Calls that run a job of their own ------------------------------------------------ */

enum op_kind { OP_READ, OP_WRITE, OP_WRITE_ALL, OP_FLUSH, OP_PREAD, OP_PWRITE, OP_SEEK, OP_SYNC_ALL, OP_SYNC_DATA,
               OP_SET_LEN, OP_STAT, OP_KINDS };
enum op_state { S_DRAIN, S_RUNNING };

static weft__file_t *file_of(const weft_file_t *file)
{
    return file == NULL ? NULL : file->f_;
}

/* The first step of an op with a job of its own: drain, then start it.
 * READY with *res set when it finished early (an error, or a seek that
 * needs no job). */
static weft_poll_t op_begin(weft_file_op_t *op, weft__file_t *f, weft_context_t *cx, int64_t *res)
{
    int64_t rc;
    if (drain(f, cx, &rc) == WEFT_PENDING)
        return WEFT_PENDING;
    if (rc != 0) {
        *res = rc;
        return WEFT_READY;
    }
    enum job_kind kind = J_STAT;
    uint64_t off = (uint64_t)op->off_;
    size_t len = op->len_ < FILE_MAX_JOB ? op->len_ : FILE_MAX_JOB;
    switch ((enum op_kind)op->kind_) {
    case OP_PREAD:
    case OP_PWRITE:
        if (len == 0) {
            *res = 0;
            return WEFT_READY;
        }
        if (op->off_ < 0) { /* an offset past INT64_MAX */
            *res = WEFT_EINVAL;
            return WEFT_READY;
        }
        f->back.role = B_EMPTY;
        if ((rc = buf_reserve(&f->back, len)) != 0) {
            *res = rc;
            return WEFT_READY;
        }
        if (op->kind_ == OP_PWRITE)
            memcpy(f->back.p, op->u_.wbuf, len);
        kind = op->kind_ == OP_PREAD ? J_PREAD : J_PWRITE;
        break;
    case OP_SEEK: {
        if (op->whence_ == SEEK_SET || op->whence_ == SEEK_CUR) {
            int64_t base = op->whence_ == SEEK_SET ? 0 : (int64_t)f->pos;
            if (!f->positional) {
                *res = -ESPIPE;
            } else if ((op->off_ < 0 && base + op->off_ < 0) || (op->off_ > 0 && op->off_ > INT64_MAX - base)) {
                *res = WEFT_EINVAL;
            } else {
                f->pos = (uint64_t)(base + op->off_);
                *res = (int64_t)f->pos;
            }
            return WEFT_READY;
        }
        f->jwhence = op->whence_; /* SEEK_END, SEEK_DATA, SEEK_HOLE: the kernel knows */
        kind = J_SEEK;
        break;
    }
    case OP_SYNC_ALL:
        kind = J_SYNC_ALL;
        break;
    case OP_SYNC_DATA:
        kind = J_SYNC_DATA;
        break;
    case OP_SET_LEN:
        kind = J_SET_LEN;
        break;
    default:
        break;
    }
    if (kind != J_PREAD && kind != J_PWRITE && f->back.role == B_READ)
        f->back.role = B_EMPTY; /* the job owns back while it runs */
    if ((rc = job_start(f, cx, kind, off, len)) != 0) {
        *res = rc;
        return WEFT_READY;
    }
    op->seq_ = f->seq;
    op->state_ = S_RUNNING;
    return WEFT_PENDING; /* the caller goes on to op_finish */
}

static weft_poll_t op_finish(weft_file_op_t *op, weft__file_t *f, weft_context_t *cx, int64_t *res)
{
    if (f->busy && f->seq == op->seq_ && !settle(f, cx))
        return WEFT_PENDING;
    if (f->last_seq != op->seq_) { /* another call took the result: only by misuse (two ops at once) */
        *res = WEFT_ECANCELED;
        return WEFT_READY;
    }
    int64_t r = f->last_res;
    if (r >= 0) {
        switch ((enum op_kind)op->kind_) {
        case OP_PREAD:
            memcpy(op->u_.rbuf, f->back.p, (size_t)r);
            break;
        case OP_SEEK:
            f->pos = (uint64_t)r;
            break;
        case OP_STAT:
            weft__fs_metadata_from_stat(op->u_.meta, &f->jst);
            break;
        default:
            break;
        }
    }
    *res = r;
    return WEFT_READY;
}

static weft_poll_t op_poll_res(weft_file_op_t *op, weft_context_t *cx, int64_t *res)
{
    weft__file_t *f = file_of(op->file_);
    if (f == NULL) {
        *res = WEFT_EBADF;
        return WEFT_READY;
    }
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    weft_poll_t p = WEFT_PENDING;
    switch ((enum op_kind)op->kind_) {
    case OP_READ:
        if (!f->readable || op->len_ == 0) {
            *res = f->readable ? 0 : WEFT_EBADF;
            return WEFT_READY;
        }
        p = file_read(f, cx, op->u_.rbuf, op->len_, res);
        break;
    case OP_WRITE:
    case OP_WRITE_ALL:
        if (!f->writable) {
            *res = WEFT_EBADF;
            return WEFT_READY;
        }
        while (op->done_ < op->len_) {
            int64_t k;
            p = file_write(f, cx, (const char *)op->u_.wbuf + op->done_, op->len_ - op->done_, &k);
            if (p == WEFT_PENDING)
                break;
            if (k < 0) {
                *res = k;
                return WEFT_READY;
            }
            op->done_ += (size_t)k;
            if (op->kind_ == OP_WRITE)
                break;
        }
        if (p == WEFT_READY || op->done_ == op->len_) {
            *res = (int64_t)op->done_;
            p = WEFT_READY;
        }
        break;
    case OP_FLUSH:
        p = drain(f, cx, res);
        break;
    default:
        if ((op->kind_ == OP_PREAD && !f->readable) || (op->kind_ == OP_PWRITE && !f->writable)) {
            *res = WEFT_EBADF;
            return WEFT_READY;
        }
        if (op->state_ == S_DRAIN && (p = op_begin(op, f, cx, res)) == WEFT_READY)
            break;
        if (op->state_ == S_RUNNING)
            p = op_finish(op, f, cx, res);
        break;
    }
    if (p == WEFT_PENDING)
        weft__coop_refund();
    return p;
}

static weft_poll_t op_poll_ssize(weft_future_t *fut, weft_context_t *cx, void *out)
{
    int64_t r;
    if (op_poll_res((weft_file_op_t *)(void *)fut, cx, &r) == WEFT_PENDING)
        return WEFT_PENDING;
    if (out != NULL)
        *(ssize_t *)out = (ssize_t)r;
    return WEFT_READY;
}

static weft_poll_t op_poll_i64(weft_future_t *fut, weft_context_t *cx, void *out)
{
    int64_t r;
    if (op_poll_res((weft_file_op_t *)(void *)fut, cx, &r) == WEFT_PENDING)
        return WEFT_PENDING;
    if (out != NULL)
        *(int64_t *)out = r;
    return WEFT_READY;
}

static weft_poll_t op_poll_int(weft_future_t *fut, weft_context_t *cx, void *out)
{
    int64_t r;
    if (op_poll_res((weft_file_op_t *)(void *)fut, cx, &r) == WEFT_PENDING)
        return WEFT_PENDING;
    if (out != NULL)
        *(int *)out = (int)r;
    return WEFT_READY;
}

/* Dropping an op leaves its job, if any, to the file: take_result picks
 * it up at the next call. Nothing to release here. */
static const weft_future_vtable_t op_vt_ssize = { op_poll_ssize, NULL, NULL, sizeof(weft_file_op_t), sizeof(ssize_t),
                                                  "weft_file_io" };
static const weft_future_vtable_t op_vt_i64 = { op_poll_i64, NULL, NULL, sizeof(weft_file_op_t), sizeof(int64_t),
                                                "weft_file_seek" };
static const weft_future_vtable_t op_vt_int = { op_poll_int, NULL, NULL, sizeof(weft_file_op_t), sizeof(int),
                                                "weft_file_op" };

static weft_file_op_t make_op(const char *fn, weft_file_t *file, enum op_kind kind, const weft_future_vtable_t *vt)
{
    WEFT__REQUIRE(fn, file);
    weft_file_op_t op;
    memset(&op, 0, sizeof op);
    op.future.vtable = vt;
    op.file_ = file;
    op.kind_ = (int)kind;
    op.state_ = S_DRAIN;
    return op;
}

weft_file_op_t weft_file_read(weft_file_t *file, void *buf, size_t len)
{
    weft_file_op_t op = make_op("weft_file_read", file, OP_READ, &op_vt_ssize);
    if (len > 0)
        WEFT__REQUIRE("weft_file_read", buf);
    op.u_.rbuf = buf;
    op.len_ = len;
    return op;
}

static weft_file_op_t make_write(const char *fn, weft_file_t *file, enum op_kind kind, const void *buf, size_t len)
{
    weft_file_op_t op = make_op(fn, file, kind, &op_vt_ssize);
    if (len > 0)
        WEFT__REQUIRE(fn, buf);
    op.u_.wbuf = buf;
    op.len_ = len;
    return op;
}

weft_file_op_t weft_file_write(weft_file_t *file, const void *buf, size_t len)
{
    return make_write("weft_file_write", file, OP_WRITE, buf, len);
}

weft_file_op_t weft_file_write_all(weft_file_t *file, const void *buf, size_t len)
{
    return make_write("weft_file_write_all", file, OP_WRITE_ALL, buf, len);
}

weft_file_op_t weft_file_flush(weft_file_t *file)
{
    return make_op("weft_file_flush", file, OP_FLUSH, &op_vt_int);
}

weft_file_op_t weft_file_pread(weft_file_t *file, void *buf, size_t len, uint64_t off)
{
    weft_file_op_t op = make_op("weft_file_pread", file, OP_PREAD, &op_vt_ssize);
    if (len > 0)
        WEFT__REQUIRE("weft_file_pread", buf);
    op.u_.rbuf = buf;
    op.len_ = len;
    op.off_ = (int64_t)off;
    return op;
}

weft_file_op_t weft_file_pwrite(weft_file_t *file, const void *buf, size_t len, uint64_t off)
{
    weft_file_op_t op = make_write("weft_file_pwrite", file, OP_PWRITE, buf, len);
    op.off_ = (int64_t)off;
    return op;
}

weft_file_op_t weft_file_seek(weft_file_t *file, int64_t off, int whence)
{
    weft_file_op_t op = make_op("weft_file_seek", file, OP_SEEK, &op_vt_i64);
    op.off_ = off;
    op.whence_ = whence;
    return op;
}

weft_file_op_t weft_file_sync_all(weft_file_t *file)
{
    return make_op("weft_file_sync_all", file, OP_SYNC_ALL, &op_vt_int);
}

weft_file_op_t weft_file_sync_data(weft_file_t *file)
{
    return make_op("weft_file_sync_data", file, OP_SYNC_DATA, &op_vt_int);
}

weft_file_op_t weft_file_set_len(weft_file_t *file, uint64_t len)
{
    weft_file_op_t op = make_op("weft_file_set_len", file, OP_SET_LEN, &op_vt_int);
    op.off_ = (int64_t)len;
    return op;
}

weft_file_op_t weft_file_metadata(weft_file_t *file, weft_fs_metadata_t *out)
{
    weft_file_op_t op = make_op("weft_file_metadata", file, OP_STAT, &op_vt_int);
    WEFT__REQUIRE("weft_file_metadata", out);
    op.u_.meta = out;
    return op;
}

/* ---- The stream interface ---------------------------------------------------------- */

static weft_poll_t stream_read(weft_stream_t *s, weft_context_t *cx, void *buf, size_t len, ssize_t *n)
{
    weft_file_op_t op = weft_file_read((weft_file_t *)(void *)s, buf, len);
    return op_poll_ssize(&op.future, cx, n);
}

static weft_poll_t stream_write(weft_stream_t *s, weft_context_t *cx, const void *buf, size_t len, ssize_t *n)
{
    weft_file_op_t op = weft_file_write((weft_file_t *)(void *)s, buf, len);
    return op_poll_ssize(&op.future, cx, n);
}

static weft_poll_t stream_flush(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    weft_file_op_t op = weft_file_flush((weft_file_t *)(void *)s);
    return op_poll_int(&op.future, cx, rc);
}

/* No poll_writev (the entry point writes the first buffer) and no
 * poll_shutdown (the entry point flushes): a file has no write direction
 * to close. */
static const weft_stream_vtable_t file_stream_vt = {
    stream_read, stream_write, NULL, stream_flush, NULL, 0, "file",
};

weft_stream_t *weft_file_as_stream(weft_file_t *file)
{
    WEFT__REQUIRE("weft_file_as_stream", file);
    return &file->stream;
}

int weft_file_fd(const weft_file_t *file)
{
    WEFT__REQUIRE("weft_file_fd", file);
    return file->f_ == NULL ? -1 : file->f_->fd;
}

/* ---- Opening and closing ------------------------------------------------------------- */

static void file_destroy(weft__file_t *f)
{
    if (f->fd >= 0)
        (void)close(f->fd);
    if (f->front.p != NULL)
        weft__free(f->front.p, f->front.cap);
    if (f->back.p != NULL)
        weft__free(f->back.p, f->back.cap);
    weft_atomic_waker_drop(&f->job.waker);
    weft__free(f, sizeof *f);
}

/* The final job: writes what was still pending at close, then frees. */
static void *finish_job(void *arg)
{
    weft__file_t *f = arg;
    (void)write_fully(f, f->front.p, f->front.len, f->front.start, f->positional && !f->append);
    file_destroy(f);
    return NULL;
}

static void finish_now(void *arg)
{
    (void)finish_job(arg);
}

/* The last holder lets go (job.h). */
static void file_free(weft__fs_job_t *j)
{
    weft__file_t *f = (weft__file_t *)(void *)j;
    if (f->front.role != B_WRITE || f->front.len == 0) {
        file_destroy(f);
        return;
    }
    /* Pending writes: a job writes them (a worker must not); with no
     * runtime here, or if no job can be had, this thread does. A job the
     * pool drops at shutdown writes them through finish_now too. */
    if (weft_handle_current() != NULL) {
        const weft_blocking_opts_t opts = { "weft_file_close", finish_now, 0 };
        if (weft_spawn_blocking_at(NULL, finish_job, f, NULL, &opts, WEFT_SITE) == 0)
            return;
    }
    finish_now(f);
}

int weft__file_new(int fd, int oflags, const struct stat *st, weft_file_t *out)
{
    weft__file_t *f = weft__alloc(sizeof *f);
    if (f == NULL)
        return WEFT_ENOMEM;
    memset(f, 0, sizeof *f);
    weft__fs_job_init(&f->job, run_job, file_free);
    f->fd = fd;
    int acc = oflags & O_ACCMODE;
    f->readable = acc == O_RDONLY || acc == O_RDWR;
    f->writable = acc == O_WRONLY || acc == O_RDWR;
    f->append = (oflags & O_APPEND) != 0;
    f->positional = S_ISREG(st->st_mode) || S_ISBLK(st->st_mode);
    out->stream.vtable = &file_stream_vt;
    out->f_ = f;
    return 0;
}

void weft_file_close(weft_file_t *file)
{
    WEFT__REQUIRE("weft_file_close", file);
    weft__file_t *f = file->f_;
    if (f == NULL)
        return;
    file->f_ = NULL;
    /* acquire: pairs with the job's publish; its result may be taken. */
    if (f->busy && atomic_load_explicit(&f->job.done, memory_order_acquire))
        take_result(f);
    weft__fs_job_release(&f->job);
}
