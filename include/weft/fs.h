/* weft/fs.h - files and directories without blocking a worker.
 *
 * Every file system call that can block (open, read, write, fsync, stat,
 * readdir, rename, ...) runs as a job on the runtime's blocking pool
 * (weft_spawn_blocking), never on a worker; the future waits for the job's
 * result. docs/fs.md tells what runs where and why, and how a file batches
 * its small operations.
 *
 * A file handle (weft_file_t) is a byte stream (weft/io.h): its first
 * member is a weft_stream_t, so every stream utility works on it. It keeps
 * its own position and reads and writes at it through pread/pwrite (the
 * descriptor's own offset is not kept in step). Reads are served from a
 * read-ahead buffer that one job fills while the caller consumes the
 * previous one; small writes are copied into a buffer and go out together
 * in one job. At most one job per file is in flight at a time, and its
 * result waits in the handle for whichever call polls next, so dropping a
 * future in the middle loses nothing the file had already accepted.
 *
 * A handle is used by one task at a time (the stream has no
 * WEFT_STREAM_DUPLEX flag: weft_io_split's halves take turns). Results are
 * byte counts or 0, else a negative errno passed through from the system
 * (-EACCES, -ENOSPC, -EROFS, -EISDIR, -ENOTDIR, -EEXIST, WEFT_ENOENT, ...),
 * WEFT_ENOMEM, WEFT_EBADF (a closed handle or a direction it was not opened
 * for), WEFT_ENOSYS (no runtime on this thread: the futures need its
 * blocking pool) or WEFT_ECANCELED (the runtime shut down before the job
 * ran).
 */
#ifndef WEFT_FS_H
#define WEFT_FS_H

#include <stdint.h>
#include <sys/types.h>

#include "io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Types ---------------------------------------------------------------------- */

struct weft__file;
struct weft__fs_req;

/* An open file. stream first: (weft_stream_t *)&file is the stream. */
typedef struct weft_file_s {
    weft_stream_t stream;
    struct weft__file *f_;
} weft_file_t;

/* How weft_fs_open opens a file (std::fs::OpenOptions' set). A zeroed
 * struct is invalid (neither read, write nor append: WEFT_EINVAL). */
typedef struct weft_open_options_s {
    bool read;
    bool write;
    bool append;     /* every write goes to the end (implies write) */
    bool truncate;   /* cut to 0 bytes on open (needs write) */
    bool create;     /* create it if missing (needs write or append) */
    bool create_new; /* create it, failing with -EEXIST if it exists (needs write or append) */
    unsigned mode;   /* permissions of a created file before the umask; 0 = 0666 */
    int custom_flags; /* further open(2) flags, OR'ed in (O_NOFOLLOW, O_SYNC, ...) */
} weft_open_options_t;

typedef enum weft_fs_kind_e {
    WEFT_FS_UNKNOWN = 0,
    WEFT_FS_FILE,
    WEFT_FS_DIR,
    WEFT_FS_SYMLINK,
    WEFT_FS_FIFO,
    WEFT_FS_SOCKET,
    WEFT_FS_CHAR_DEVICE,
    WEFT_FS_BLOCK_DEVICE
} weft_fs_kind_t;

/* stat(2), in fixed-width fields. Times in nanoseconds since the epoch. */
typedef struct weft_fs_metadata_s {
    weft_fs_kind_t kind;
    uint32_t mode; /* permission bits, with setuid, setgid, sticky (st_mode & 07777) */
    uint64_t size;
    uint64_t nlink;
    uint64_t ino;
    uint64_t dev;
    uint32_t uid;
    uint32_t gid;
    int64_t atime_ns;
    int64_t mtime_ns;
    int64_t ctime_ns;
} weft_fs_metadata_t;

/* A whole file's contents (weft_fs_read_file). data is NUL-terminated one
 * byte past len, so a text file can be used as a string. */
typedef struct weft_fs_buf_s {
    char *data;
    size_t len;
    size_t size_; /* private: the allocation's size */
} weft_fs_buf_t;

/* A directory entry: its name (no path), and its kind where the file
 * system says it without a stat (WEFT_FS_UNKNOWN otherwise). */
typedef struct weft_fs_dirent_s {
    const char *name;
    weft_fs_kind_t kind;
    uint64_t ino;
} weft_fs_dirent_t;

/* All entries of a directory but "." and "..", in the order readdir gave. */
typedef struct weft_fs_dir_s {
    weft_fs_dirent_t *entries;
    size_t count;
    size_t size_; /* private: the allocation's size */
} weft_fs_dir_t;

/* The future of every path operation (weft_fs_*): output int, 0 or a
 * negative errno. Fields are private. Dropping it before it finishes is
 * fine at any point: a job already started runs to its end in the
 * background and its result (an opened descriptor, a buffer, a listing)
 * is freed then; the operation itself may or may not have happened. */
typedef struct weft_fs_op_s {
    weft_future_t future;
    int kind_;
    const char *path_;
    const char *path2_;
    const void *data_;
    size_t len_;
    int flags_;
    unsigned mode_;
    void *out_;
    struct weft__fs_req *req_;
} weft_fs_op_t;

/* The future of every operation on an open file (weft_file_*). Output:
 * ssize_t for read, write, write_all, pread and pwrite (bytes, or a
 * negative errno); int64_t for seek (the new position, or a negative
 * errno); int (0 or a negative errno) for the rest. Fields are private.
 * The file must outlive the future. Cancel-safety of each call is in its
 * comment below. */
typedef struct weft_file_op_s {
    weft_future_t future;
    weft_file_t *file_;
    int kind_;
    int state_;
    union {
        void *rbuf;
        const void *wbuf;
        weft_fs_metadata_t *meta;
    } u_;
    size_t len_;
    size_t done_;
    int64_t off_;
    int whence_;
    uint64_t seq_;
} weft_file_op_t;

/* ---- Opening, closing ------------------------------------------------------------ */

/* Opens path as opts says (NULL: read only) into *out. Output int: 0 (then
 * *out is open and must be closed with weft_file_close), or a negative
 * errno: WEFT_EINVAL (opts asks for nothing, or for a mix open(2) cannot
 * do), WEFT_ENOENT, -EACCES, -EEXIST (create_new), -EISDIR (a directory
 * opened for writing), -ENOTDIR, -EROFS, WEFT_ENOMEM, ... *out is written
 * only on success. path and opts are read at the first poll (path is
 * copied for the job then). Dropped after its job started: a descriptor
 * the job opened is closed. Context: a task or block_on of a runtime. */
WEFT_API WEFT_NODISCARD weft_fs_op_t weft_fs_open(const char *path, const weft_open_options_t *opts,
                                                  weft_file_t *out);

/* Closes the file. Writes the handle had accepted but not yet written go
 * out first, in a job that runs after this returns (its errors are lost:
 * await weft_file_flush before closing to see them); a job in flight runs
 * to its end, then the descriptor is closed. Futures of this file must
 * not be polled after. Never blocks; on a thread with no runtime the
 * remaining writes are made here. Closing a closed or zeroed handle does
 * nothing. Context: any thread. */
WEFT_API void weft_file_close(weft_file_t *file);

/* The stream interface of the file (weft/io.h): reads and writes at its
 * position, flush = weft_file_flush, shutdown = flush. */
WEFT_API weft_stream_t *weft_file_as_stream(weft_file_t *file);

/* The file's descriptor (-1 when closed). Its offset is not the handle's
 * position (see above); a job may be using it. */
WEFT_API int weft_file_fd(const weft_file_t *file);

/* ---- Reading and writing --------------------------------------------------------- */

/* Reads up to len bytes at the position and advances it. Output ssize_t:
 * bytes read (0 at end of file), or a negative errno. Usually served from
 * the read-ahead buffer without a job. Cancel-safe: dropped before it
 * finished, it has read nothing (a job it started fills the buffer for
 * the next read). */
WEFT_API WEFT_NODISCARD weft_file_op_t weft_file_read(weft_file_t *file, void *buf, size_t len);

/* Writes up to len bytes at the position (at the end in append mode) and
 * advances it. Output ssize_t: the bytes the file took (> 0 for len > 0),
 * or a negative errno, which may belong to an earlier write that failed
 * after it had been taken. Taken bytes are copied into the handle and
 * written by a job; await weft_file_flush to know they reached the file.
 * Cancel-safe: dropped before it finished, it took nothing. */
WEFT_API WEFT_NODISCARD weft_file_op_t weft_file_write(weft_file_t *file, const void *buf, size_t len);

/* Writes all len bytes (as many weft_file_write as it takes). Output
 * ssize_t: len, or a negative errno. Not cancel-safe: dropped part-way,
 * some prefix of buf has been taken. */
WEFT_API WEFT_NODISCARD weft_file_op_t weft_file_write_all(weft_file_t *file, const void *buf, size_t len);

/* Waits until every byte taken by earlier writes is in the file (handed to
 * the kernel, not synced to the disk: see sync_all). Output int: 0 or the
 * first error of those writes. Cancel-safe. */
WEFT_API WEFT_NODISCARD weft_file_op_t weft_file_flush(weft_file_t *file);

/* pread(2)/pwrite(2) at offset off, leaving the position alone, after the
 * handle's pending writes. Output ssize_t: bytes moved (possibly fewer
 * than len: at most 1 MiB per call), or a negative errno. Cancel: a
 * pread dropped early has no effect; a pwrite dropped after its job
 * started may or may not have written. */
WEFT_API WEFT_NODISCARD weft_file_op_t weft_file_pread(weft_file_t *file, void *buf, size_t len, uint64_t off);
WEFT_API WEFT_NODISCARD weft_file_op_t weft_file_pwrite(weft_file_t *file, const void *buf, size_t len,
                                                        uint64_t off);

/* Moves the position (whence SEEK_SET, SEEK_CUR, SEEK_END). Output
 * int64_t: the new position, or a negative errno (WEFT_EINVAL for a
 * negative result or a bad whence, an error of a pending write,
 * -ESPIPE on a pipe). Cancel-safe: dropped early, the position is as
 * before. */
WEFT_API WEFT_NODISCARD weft_file_op_t weft_file_seek(weft_file_t *file, int64_t off, int whence);

/* fsync(2) / fdatasync(2), after the pending writes. Output int. Cancel:
 * dropped after its job started, the sync still runs. */
WEFT_API WEFT_NODISCARD weft_file_op_t weft_file_sync_all(weft_file_t *file);
WEFT_API WEFT_NODISCARD weft_file_op_t weft_file_sync_data(weft_file_t *file);

/* ftruncate(2) to len bytes, after the pending writes; the position is
 * left alone. Output int. Cancel: as sync. */
WEFT_API WEFT_NODISCARD weft_file_op_t weft_file_set_len(weft_file_t *file, uint64_t len);

/* fstat(2) into *out, after the pending writes. Output int. Cancel-safe
 * (*out may have been written). */
WEFT_API WEFT_NODISCARD weft_file_op_t weft_file_metadata(weft_file_t *file, weft_fs_metadata_t *out);

/* ---- Whole files ------------------------------------------------------------------ */

/* Reads the whole file at path into *out (free with weft_fs_buf_free).
 * A file larger than max bytes is not read: output -EFBIG, and memory use
 * stays bounded by max whatever the file does meanwhile. Output int: 0 or
 * a negative errno; *out is written only on success. */
WEFT_API WEFT_NODISCARD weft_fs_op_t weft_fs_read_file(const char *path, size_t max, weft_fs_buf_t *out);
WEFT_API void weft_fs_buf_free(weft_fs_buf_t *buf);

/* Creates or truncates path and writes len bytes of data to it (mode
 * 0666 before the umask for a new file). data is copied at the first
 * poll, so after that the caller may free it even if the future is
 * dropped. Output int. Not cancel-safe: dropped part-way the file may
 * hold a prefix. */
WEFT_API WEFT_NODISCARD weft_fs_op_t weft_fs_write_file(const char *path, const void *data, size_t len);

/* Copies the contents and permission bits of regular file `from` to `to`
 * (created or truncated). Output int. */
WEFT_API WEFT_NODISCARD weft_fs_op_t weft_fs_copy(const char *from, const char *to);

/* ---- Paths and directories --------------------------------------------------------- */

/* stat(2) (follows symlinks) / lstat(2) into *out. Output int. */
WEFT_API WEFT_NODISCARD weft_fs_op_t weft_fs_metadata(const char *path, weft_fs_metadata_t *out);
WEFT_API WEFT_NODISCARD weft_fs_op_t weft_fs_symlink_metadata(const char *path, weft_fs_metadata_t *out);

/* Lists the directory at path into *out (free with weft_fs_dir_free):
 * one job reads every entry. Output int; *out is written only on
 * success. */
WEFT_API WEFT_NODISCARD weft_fs_op_t weft_fs_read_dir(const char *path, weft_fs_dir_t *out);
WEFT_API void weft_fs_dir_free(weft_fs_dir_t *dir);

/* mkdir(2) with mode (0 = 0777, before the umask). create_dir_all also
 * makes every missing parent, and succeeds when path is already a
 * directory. Output int (-EEXIST: create_dir on an existing path). */
WEFT_API WEFT_NODISCARD weft_fs_op_t weft_fs_create_dir(const char *path, unsigned mode);
WEFT_API WEFT_NODISCARD weft_fs_op_t weft_fs_create_dir_all(const char *path, unsigned mode);
/* rmdir(2) (the directory must be empty: -ENOTEMPTY) / unlink(2). */
WEFT_API WEFT_NODISCARD weft_fs_op_t weft_fs_remove_dir(const char *path);
WEFT_API WEFT_NODISCARD weft_fs_op_t weft_fs_remove_file(const char *path);
/* rename(2): replaces `to` if it exists. */
WEFT_API WEFT_NODISCARD weft_fs_op_t weft_fs_rename(const char *from, const char *to);

#ifdef __cplusplus
}
#endif

#endif
