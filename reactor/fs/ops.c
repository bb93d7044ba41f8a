/* reactor/fs/ops.c - operations on paths (open, stat, whole-file read and
 * write, copy, directory listing, mkdir, remove, rename), each one job on
 * the blocking pool.
 *
 * At its first poll the future allocates a request, copies into it what
 * the job needs (paths, the data to write), and starts the job (job.h).
 * The job keeps its results (an open descriptor, a buffer, a listing) in
 * the request; the future moves them to the caller's out-parameters when
 * it finishes. A future dropped early lets go of the request; the job
 * lets go when it is done, and the last one frees the request with every
 * result nobody took (closing a descriptor the caller never saw).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../../runtime/nonnull.h"
#include "file.h"

enum req_kind { K_OPEN, K_STAT, K_LSTAT, K_READ_FILE, K_WRITE_FILE, K_COPY, K_READ_DIR, K_MKDIR, K_MKDIR_ALL,
                K_RMDIR, K_UNLINK, K_RENAME };

struct weft__fs_req {
    weft__fs_job_t job; /* first: the job's free gets the request back */
    enum req_kind kind;
    int oflags;
    unsigned mode;
    size_t max;
    char *path, *path2;
    size_t path_size, path2_size;
    char *data;
    size_t data_len;
    /* results, owned by the request until the future takes them */
    int fd;
    struct stat st;
    weft_fs_buf_t buf;
    weft_fs_dir_t dir;
};

/* ---- The jobs ------------------------------------------------------------------------ */

/* open(2), again when a signal handler without SA_RESTART interrupted it:
 * opening a FIFO sleeps until the other end is opened, and that sleep
 * ends with EINTR. Opening again is safe: an interrupted open returned no
 * descriptor, and only the open of a file that already exists (a FIFO)
 * sleeps, so O_CREAT or O_TRUNC had nothing to do. */
static int open_retrying(const char *path, int flags, mode_t mode)
{
    int fd;
    do
        fd = open(path, flags, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

static int write_all_fd(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? WEFT_EIO : weft__fs_errno();
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads fd to its end into r->buf, failing with -EFBIG past r->max bytes:
 * the buffer never grows beyond max + 1 (+1 for the NUL, and to see that
 * a file is too big). */
static int read_to_end(struct weft__fs_req *r, int fd, uint64_t size_hint)
{
    const size_t limit = r->max + 2; /* max bytes, one byte too many, the NUL */
    size_t cap = (size_t)size_hint + 2; /* size_hint <= max */
    if (cap < 4096)
        cap = limit < 4096 ? limit : 4096; /* st_size 0: /proc files and pipes report none */
    char *p = weft__alloc(cap);
    if (p == NULL)
        return WEFT_ENOMEM;
    size_t len = 0;
    int rc = 0;
    for (;;) {
        if (len + 1 == cap) { /* full but for the NUL */
            if (cap == limit) {
                rc = -EFBIG;
                break;
            }
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            char *q = weft__realloc(p, ncap);
            if (q == NULL) {
                rc = WEFT_ENOMEM;
                break;
            }
            p = q;
            cap = ncap;
        }
        ssize_t n = read(fd, p + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = weft__fs_errno();
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (rc == 0 && len > r->max)
        rc = -EFBIG;
    if (rc != 0) {
        weft__free(p, cap);
        return rc;
    }
    p[len] = 0;
    r->buf = (weft_fs_buf_t){ p, len, cap };
    return 0;
}

static int copy_fd(int from, int to, uint64_t size)
{
    uint64_t left = size;
    while (left > 0) { /* in the kernel where it can (no copy through user space) */
        ssize_t n = copy_file_range(from, NULL, to, NULL, left > (1u << 30) ? (1u << 30) : (size_t)left, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EXDEV, ENOSYS, EINVAL, or the file shrank: read and write what is left */
        left -= (uint64_t)n;
    }
    const size_t chunk = 128 * 1024;
    char *p = weft__alloc(chunk);
    if (p == NULL)
        return WEFT_ENOMEM;
    int rc = 0;
    for (;;) {
        ssize_t n = read(from, p, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? weft__fs_errno() : 0;
            break;
        }
        if ((rc = write_all_fd(to, p, (size_t)n)) != 0)
            break;
    }
    weft__free(p, chunk);
    return rc;
}

static int do_copy(struct weft__fs_req *r)
{
    int from = open_retrying(r->path, O_RDONLY | O_CLOEXEC, 0);
    if (from < 0)
        return weft__fs_errno();
    struct stat st;
    int rc = fstat(from, &st) == 0 ? 0 : weft__fs_errno();
    if (rc == 0 && !S_ISREG(st.st_mode))
        rc = WEFT_EINVAL; /* only a regular file's contents can be copied */
    int to = -1;
    if (rc == 0 && (to = open_retrying(r->path2, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777)) < 0)
        rc = weft__fs_errno();
    if (rc == 0)
        rc = copy_fd(from, to, (uint64_t)st.st_size);
    if (rc == 0 && fchmod(to, st.st_mode & 07777) != 0) /* an existing `to` keeps its mode otherwise */
        rc = weft__fs_errno();
    if (to >= 0 && close(to) != 0 && rc == 0)
        rc = weft__fs_errno();
    (void)close(from);
    return rc;
}

static weft_fs_kind_t dirent_kind(unsigned char t)
{
    switch (t) {
    case DT_REG: return WEFT_FS_FILE;
    case DT_DIR: return WEFT_FS_DIR;
    case DT_LNK: return WEFT_FS_SYMLINK;
    case DT_FIFO: return WEFT_FS_FIFO;
    case DT_SOCK: return WEFT_FS_SOCKET;
    case DT_CHR: return WEFT_FS_CHAR_DEVICE;
    case DT_BLK: return WEFT_FS_BLOCK_DEVICE;
    default: return WEFT_FS_UNKNOWN;
    }
}

/* Grows *p (of *cap bytes) to hold need bytes, doubling. */
static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 1024;
    while (ncap < need)
        ncap *= 2;
    char *q = weft__realloc(*p, ncap);
    if (q == NULL)
        return WEFT_ENOMEM;
    *p = q;
    *cap = ncap;
    return 0;
}

/* Lists the directory: entries (kind, ino, name offset) and the names are
 * gathered in two growing arrays, then laid out in one block, the entry
 * array first and the names after it, so weft_fs_dir_free frees one. */
static int do_read_dir(struct weft__fs_req *r)
{
    DIR *d = opendir(r->path);
    if (d == NULL)
        return weft__fs_errno();
    char *ents = NULL, *names = NULL;
    size_t ents_cap = 0, names_cap = 0, count = 0, names_len = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            rc = errno != 0 ? weft__fs_errno() : 0;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t nl = strlen(e->d_name) + 1;
        if ((rc = grow(&ents, &ents_cap, (count + 1) * sizeof(weft_fs_dirent_t))) != 0 ||
            (rc = grow(&names, &names_cap, names_len + nl)) != 0)
            break;
        weft_fs_dirent_t *de = (weft_fs_dirent_t *)(void *)ents + count++;
        de->name = (const char *)(uintptr_t)names_len; /* an offset until the names move */
        de->kind = dirent_kind(e->d_type);
        de->ino = (uint64_t)e->d_ino;
        memcpy(names + names_len, e->d_name, nl);
        names_len += nl;
    }
    (void)closedir(d);
    if (rc == 0) {
        size_t size = count * sizeof(weft_fs_dirent_t) + names_len + 1;
        char *block = weft__alloc(size);
        if (block == NULL) {
            rc = WEFT_ENOMEM;
        } else {
            weft_fs_dirent_t *out = (weft_fs_dirent_t *)(void *)block;
            char *nm = block + count * sizeof(weft_fs_dirent_t);
            if (count > 0)
                memcpy(out, ents, count * sizeof(weft_fs_dirent_t));
            if (names_len > 0)
                memcpy(nm, names, names_len);
            for (size_t i = 0; i < count; i++)
                out[i].name = nm + (uintptr_t)out[i].name;
            r->dir = (weft_fs_dir_t){ out, count, size };
        }
    }
    if (ents != NULL)
        weft__free(ents, ents_cap);
    if (names != NULL)
        weft__free(names, names_cap);
    return rc;
}

static int do_mkdir_all(struct weft__fs_req *r)
{
    char *p = r->path; /* our copy: cut at each '/' in turn */
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = 0;
    for (size_t i = 1; i < n; i++) {
        if (p[i] != '/' || p[i - 1] == '/')
            continue;
        p[i] = 0;
        int rc = mkdir(p, r->mode);
        int err = errno;
        p[i] = '/';
        if (rc != 0 && err != EEXIST)
            return -err;
    }
    if (mkdir(p, r->mode) == 0)
        return 0;
    int err = errno;
    struct stat st;
    if (err == EEXIST && stat(p, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    return -err;
}

static int zero_or_errno(int rc)
{
    return rc == 0 ? 0 : weft__fs_errno();
}

static void run_req(weft__fs_job_t *j)
{
    struct weft__fs_req *r = (struct weft__fs_req *)(void *)j;
    int rc = 0;
    switch (r->kind) {
    case K_OPEN:
        r->fd = open_retrying(r->path, r->oflags | O_CLOEXEC, r->mode);
        if (r->fd < 0) {
            rc = weft__fs_errno();
        } else if (fstat(r->fd, &r->st) != 0) {
            rc = weft__fs_errno();
            (void)close(r->fd);
            r->fd = -1;
        }
        break;
    case K_STAT:
        rc = zero_or_errno(stat(r->path, &r->st));
        break;
    case K_LSTAT:
        rc = zero_or_errno(lstat(r->path, &r->st));
        break;
    case K_READ_FILE: {
        int fd = open_retrying(r->path, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) {
            rc = weft__fs_errno();
            break;
        }
        struct stat st;
        if (fstat(fd, &st) != 0)
            rc = weft__fs_errno();
        else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > r->max)
            rc = -EFBIG; /* too big: not even a byte read */
        else
            rc = read_to_end(r, fd, S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0);
        (void)close(fd);
        break;
    }
    case K_WRITE_FILE: {
        int fd = open_retrying(r->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) {
            rc = weft__fs_errno();
            break;
        }
        rc = write_all_fd(fd, r->data, r->data_len);
        if (close(fd) != 0 && rc == 0)
            rc = weft__fs_errno();
        break;
    }
    case K_COPY:
        rc = do_copy(r);
        break;
    case K_READ_DIR:
        rc = do_read_dir(r);
        break;
    case K_MKDIR:
        rc = zero_or_errno(mkdir(r->path, r->mode));
        break;
    case K_MKDIR_ALL:
        rc = do_mkdir_all(r);
        break;
    case K_RMDIR:
        rc = zero_or_errno(rmdir(r->path));
        break;
    case K_UNLINK:
        rc = zero_or_errno(unlink(r->path));
        break;
    case K_RENAME:
        rc = zero_or_errno(rename(r->path, r->path2));
        break;
    }
    j->res = rc;
}

/* ---- The request ----------------------------------------------------------------------- */

static void req_free(weft__fs_job_t *j)
{
    struct weft__fs_req *r = (struct weft__fs_req *)(void *)j;
    if (r->fd >= 0)
        (void)close(r->fd);
    weft_fs_buf_free(&r->buf);
    weft_fs_dir_free(&r->dir);
    if (r->path != NULL)
        weft__free(r->path, r->path_size);
    if (r->path2 != NULL)
        weft__free(r->path2, r->path2_size);
    if (r->data != NULL)
        weft__free(r->data, r->data_len);
    weft_atomic_waker_drop(&j->wakers[0]);
    weft_atomic_waker_drop(&j->wakers[1]);
    weft__free(r, sizeof *r);
}

static int dup_bytes(const void *src, size_t len, char **dst, size_t *size)
{
    if (len == 0)
        return 0;
    *dst = weft__alloc(len);
    if (*dst == NULL)
        return WEFT_ENOMEM;
    memcpy(*dst, src, len);
    *size = len;
    return 0;
}

/* open(2) flags for opts, as std::fs::OpenOptions combines them; -1 for a
 * mix it refuses. */
static int open_flags(const weft_open_options_t *o)
{
    bool w = o->write || o->append;
    int acc = o->read && w ? O_RDWR : w ? O_WRONLY : o->read ? O_RDONLY : -1;
    if (acc < 0)
        return -1;
    if (!w && (o->truncate || o->create || o->create_new))
        return -1;
    if (o->append && o->truncate && !o->create_new)
        return -1;
    int fl = acc | (o->append ? O_APPEND : 0);
    if (o->create_new)
        fl |= O_CREAT | O_EXCL;
    else
        fl |= (o->create ? O_CREAT : 0) | (o->truncate ? O_TRUNC : 0);
    return fl | (o->custom_flags & ~O_ACCMODE);
}

/* Builds the request from the future's fields; 0 or a negative errno. */
static int req_new(weft_fs_op_t *op, struct weft__fs_req **out)
{
    struct weft__fs_req *r = weft__alloc(sizeof *r);
    if (r == NULL)
        return WEFT_ENOMEM;
    memset(r, 0, sizeof *r);
    weft__fs_job_init(&r->job, run_req, req_free);
    r->fd = -1;
    r->kind = (enum req_kind)op->kind_;
    r->mode = op->mode_;
    r->max = op->len_;
    int rc = dup_bytes(op->path_, strlen(op->path_) + 1, &r->path, &r->path_size);
    if (rc == 0 && op->path2_ != NULL)
        rc = dup_bytes(op->path2_, strlen(op->path2_) + 1, &r->path2, &r->path2_size);
    if (rc == 0 && r->kind == K_WRITE_FILE) {
        rc = dup_bytes(op->data_, op->len_, &r->data, &r->data_len);
        r->max = 0;
    }
    if (rc == 0 && r->kind == K_OPEN) {
        const weft_open_options_t *o = op->data_;
        r->oflags = o == NULL ? O_RDONLY : open_flags(o);
        r->mode = o == NULL || o->mode == 0 ? 0666 : o->mode;
        if (r->oflags < 0)
            rc = WEFT_EINVAL;
    }
    if (rc != 0) {
        weft__fs_job_release(&r->job);
        return rc;
    }
    *out = r;
    return 0;
}

/* Moves the job's results to the caller; 0 or a negative errno. */
static int req_take(struct weft__fs_req *r, void *out)
{
    switch (r->kind) {
    case K_OPEN: {
        int rc = weft__file_new(r->fd, r->oflags, &r->st, out);
        if (rc == 0)
            r->fd = -1; /* the file owns it now */
        return rc;
    }
    case K_STAT:
    case K_LSTAT:
        weft__fs_metadata_from_stat(out, &r->st);
        return 0;
    case K_READ_FILE:
        *(weft_fs_buf_t *)out = r->buf;
        r->buf = (weft_fs_buf_t){ NULL, 0, 0 };
        return 0;
    case K_READ_DIR:
        *(weft_fs_dir_t *)out = r->dir;
        r->dir = (weft_fs_dir_t){ NULL, 0, 0 };
        return 0;
    default:
        return 0;
    }
}

static weft_poll_t fs_op_poll(weft_future_t *fut, weft_context_t *cx, void *out)
{
    weft_fs_op_t *op = (weft_fs_op_t *)(void *)fut;
    int rc;
    struct weft__fs_req *r = op->req_;
    if (r == NULL) {
        if ((rc = req_new(op, &r)) != 0)
            goto done;
        if ((rc = weft__fs_job_start(&r->job, cx, "weft_fs", 0)) != 0) {
            weft__fs_job_release(&r->job);
            goto done;
        }
        op->req_ = r;
    }
    if (!weft__fs_job_ready(&r->job, cx, 0))
        return WEFT_PENDING;
    rc = (int)r->job.res;
    if (rc == 0)
        rc = req_take(r, op->out_);
    op->req_ = NULL;
    weft__fs_job_release(&r->job);
done:
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

static void fs_op_drop(weft_future_t *fut)
{
    weft_fs_op_t *op = (weft_fs_op_t *)(void *)fut;
    if (op->req_ != NULL) { /* the job goes on; whoever finishes last frees its results */
        weft__fs_job_release(&op->req_->job);
        op->req_ = NULL;
    }
}

static const weft_future_vtable_t fs_op_vt = { fs_op_poll, fs_op_drop, NULL, sizeof(weft_fs_op_t), sizeof(int),
                                               "weft_fs_op" };

static weft_fs_op_t make(const char *fn, enum req_kind kind, const char *path, const char *path2, void *out)
{
    WEFT__REQUIRE(fn, path);
    weft_fs_op_t op;
    memset(&op, 0, sizeof op);
    op.future.vtable = &fs_op_vt;
    op.kind_ = (int)kind;
    op.path_ = path;
    op.path2_ = path2;
    op.out_ = out;
    return op;
}

/* ---- The calls ------------------------------------------------------------------------------ */

weft_fs_op_t weft_fs_open(const char *path, const weft_open_options_t *opts, weft_file_t *out)
{
    WEFT__REQUIRE("weft_fs_open", out);
    weft_fs_op_t op = make("weft_fs_open", K_OPEN, path, NULL, out);
    op.data_ = opts;
    return op;
}

weft_fs_op_t weft_fs_metadata(const char *path, weft_fs_metadata_t *out)
{
    WEFT__REQUIRE("weft_fs_metadata", out);
    return make("weft_fs_metadata", K_STAT, path, NULL, out);
}

weft_fs_op_t weft_fs_symlink_metadata(const char *path, weft_fs_metadata_t *out)
{
    WEFT__REQUIRE("weft_fs_symlink_metadata", out);
    return make("weft_fs_symlink_metadata", K_LSTAT, path, NULL, out);
}

weft_fs_op_t weft_fs_read_file(const char *path, size_t max, weft_fs_buf_t *out)
{
    WEFT__REQUIRE("weft_fs_read_file", out);
    weft_fs_op_t op = make("weft_fs_read_file", K_READ_FILE, path, NULL, out);
    op.len_ = max < SIZE_MAX - 2 ? max : SIZE_MAX - 2; /* room for the NUL and the one byte too many */
    return op;
}

weft_fs_op_t weft_fs_write_file(const char *path, const void *data, size_t len)
{
    if (len > 0)
        WEFT__REQUIRE("weft_fs_write_file", data);
    weft_fs_op_t op = make("weft_fs_write_file", K_WRITE_FILE, path, NULL, NULL);
    op.data_ = data;
    op.len_ = len;
    return op;
}

weft_fs_op_t weft_fs_copy(const char *from, const char *to)
{
    WEFT__REQUIRE("weft_fs_copy", to);
    return make("weft_fs_copy", K_COPY, from, to, NULL);
}

weft_fs_op_t weft_fs_read_dir(const char *path, weft_fs_dir_t *out)
{
    WEFT__REQUIRE("weft_fs_read_dir", out);
    return make("weft_fs_read_dir", K_READ_DIR, path, NULL, out);
}

weft_fs_op_t weft_fs_create_dir(const char *path, unsigned mode)
{
    weft_fs_op_t op = make("weft_fs_create_dir", K_MKDIR, path, NULL, NULL);
    op.mode_ = mode == 0 ? 0777 : mode;
    return op;
}

weft_fs_op_t weft_fs_create_dir_all(const char *path, unsigned mode)
{
    weft_fs_op_t op = make("weft_fs_create_dir_all", K_MKDIR_ALL, path, NULL, NULL);
    op.mode_ = mode == 0 ? 0777 : mode;
    return op;
}

weft_fs_op_t weft_fs_remove_dir(const char *path)
{
    return make("weft_fs_remove_dir", K_RMDIR, path, NULL, NULL);
}

weft_fs_op_t weft_fs_remove_file(const char *path)
{
    return make("weft_fs_remove_file", K_UNLINK, path, NULL, NULL);
}

weft_fs_op_t weft_fs_rename(const char *from, const char *to)
{
    WEFT__REQUIRE("weft_fs_rename", to);
    return make("weft_fs_rename", K_RENAME, from, to, NULL);
}

void weft_fs_buf_free(weft_fs_buf_t *buf)
{
    WEFT__REQUIRE("weft_fs_buf_free", buf);
    if (buf->data != NULL)
        weft__free(buf->data, buf->size_);
    *buf = (weft_fs_buf_t){ NULL, 0, 0 };
}

void weft_fs_dir_free(weft_fs_dir_t *dir)
{
    WEFT__REQUIRE("weft_fs_dir_free", dir);
    if (dir->entries != NULL)
        weft__free(dir->entries, dir->size_);
    *dir = (weft_fs_dir_t){ NULL, 0, 0 };
}
