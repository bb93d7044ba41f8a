/* tests/test_fs.c - files and directories (weft/fs.h): every call, partial
 * reads at the end of a file, the whole-file cap, error paths that fail
 * even for root, a full device, futures dropped while their job runs,
 * shutdown with jobs in flight, and allocation failures. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "testlib.h"

/* ---- Helpers ---------------------------------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/weft-fs-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *tpath(char *buf, const char *name)
{
    snprintf(buf, 256, "%s/%s", tmpdir, name);
    return buf;
}

/* Byte i of the test pattern. */
static unsigned char pat(uint64_t i)
{
    return (unsigned char)((i * 131 + (i >> 12)) & 0xff);
}

/* Writes n pattern bytes to path with plain calls (outside the runtime). */
static void write_pattern(const char *path, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    unsigned char *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = pat(i);
    ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
    free(p);
    close(fd);
}

static size_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (size_t)st.st_size;
}

static int block_on_int(weft_runtime_t *rt, weft_future_t *f)
{
    int rc = -9999;
    ck_assert_int_eq(weft_runtime_block_on(rt, f, &rc), 0);
    return rc;
}

static const weft_open_options_t RW_CREATE = { .read = true, .write = true, .create = true, .truncate = true };

/* ---- Reading and writing through a handle ------------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    const char *path;
    weft_file_t f;
    weft_fs_op_t op;
    weft_file_op_t fop;
    int rc, flush_rc;
    ssize_t n1, n2, n3, short_n, eof_n;
    int64_t at;
    char buf[64];
} rw_t;
WEFT_ASYNC(rw_t, rw_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_fs_open(self->path, &RW_CREATE, &self->f), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    /* Small writes: the first goes out in a job, the next pile up behind it. */
    WEFT_AWAIT(&self->fop, weft_file_write(&self->f, "hello", 5), &self->n1);
    WEFT_AWAIT(&self->fop, weft_file_write(&self->f, ", ", 2), &self->n2);
    WEFT_AWAIT(&self->fop, weft_file_write_all(&self->f, "world", 5), &self->n3);
    WEFT_AWAIT(&self->fop, weft_file_flush(&self->f), &self->flush_rc);
    WEFT_AWAIT(&self->fop, weft_file_seek(&self->f, 0, SEEK_SET), &self->at);
    /* Ask for more than there is: a short read, then end of file. */
    WEFT_AWAIT(&self->fop, weft_file_read(&self->f, self->buf, sizeof self->buf), &self->short_n);
    WEFT_AWAIT(&self->fop, weft_file_read(&self->f, self->buf + 20, sizeof self->buf - 20), &self->eof_n);
    weft_file_close(&self->f);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(write_then_read_back_with_short_read_at_eof)
{
    make_tmpdir();
    weft_runtime_t *rt = shape_rt(_i);
    char p[256];
    rw_t t = { WEFT_FRAME_INIT(rw_fn), .path = tpath(p, "rw") };
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(&t)), 0);
    ck_assert_int_eq(t.n1, 5);
    ck_assert_int_eq(t.n2, 2);
    ck_assert_int_eq(t.n3, 5);
    ck_assert_int_eq(t.flush_rc, 0);
    ck_assert_int_eq(t.at, 0);
    ck_assert_int_eq(t.short_n, 12);
    ck_assert_mem_eq(t.buf, "hello, world", 12);
    ck_assert_int_eq(t.eof_n, 0);
    ck_assert_int_eq(file_size(p), 12);
    weft_runtime_free(rt);
    rm_tmpdir();
    ASSERT_NO_LIVE();
}
END_TEST

/* Reads a file in odd-sized pieces (across read-ahead blocks), checking
 * every byte, then seeks around. */
#define BIG ((size_t)(1u << 20) * 3 + 12345)
typedef struct {
    WEFT_FRAME;
    const char *path;
    weft_file_t f;
    weft_fs_op_t op;
    weft_file_op_t fop;
    int rc;
    ssize_t n;
    size_t total, chunk;
    bool bad;
    int64_t set_at, cur_at, end_at, neg;
    ssize_t after_seek;
    unsigned char buf[70001];
} seq_t;
WEFT_ASYNC(seq_t, seq_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_fs_open(self->path, NULL, &self->f), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    self->chunk = 1;
    for (;;) {
        WEFT_AWAIT(&self->fop, weft_file_read(&self->f, self->buf, self->chunk), &self->n);
        if (self->n <= 0)
            break;
        for (ssize_t i = 0; i < self->n; i++)
            self->bad |= self->buf[i] != pat(self->total + (size_t)i);
        self->total += (size_t)self->n;
        self->chunk = self->chunk * 7 % sizeof self->buf + 1; /* 1 to 70001 bytes, unevenly */
    }
    WEFT_AWAIT(&self->fop, weft_file_seek(&self->f, 1000000, SEEK_SET), &self->set_at);
    WEFT_AWAIT(&self->fop, weft_file_seek(&self->f, -10, SEEK_CUR), &self->cur_at);
    WEFT_AWAIT(&self->fop, weft_file_read(&self->f, self->buf, 100), &self->after_seek);
    for (int i = 0; i < 100; i++)
        self->bad |= self->buf[i] != pat(999990 + (size_t)i);
    WEFT_AWAIT(&self->fop, weft_file_seek(&self->f, -5, SEEK_END), &self->end_at);
    WEFT_AWAIT(&self->fop, weft_file_seek(&self->f, -1, SEEK_SET), &self->neg);
    weft_file_close(&self->f);
    WEFT_RETURN(self->n == 0 ? 0 : (int)self->n);
    WEFT_END();
}

START_TEST(sequential_reads_across_blocks_and_seeks)
{
    make_tmpdir();
    char p[256];
    write_pattern(tpath(p, "big"), BIG);
    weft_runtime_t *rt = shape_rt(_i);
    seq_t *t = malloc(sizeof *t);
    *t = (seq_t){ WEFT_FRAME_INIT(seq_fn), .path = p };
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(t)), 0);
    ck_assert_uint_eq(t->total, BIG);
    ck_assert(!t->bad);
    ck_assert_int_eq(t->set_at, 1000000);
    ck_assert_int_eq(t->cur_at, 999990);
    ck_assert_int_eq(t->after_seek, 100);
    ck_assert_int_eq(t->end_at, (int64_t)BIG - 5);
    ck_assert_int_eq(t->neg, WEFT_EINVAL);
    free(t);
    weft_runtime_free(rt);
    rm_tmpdir();
    ASSERT_NO_LIVE();
}
END_TEST

typedef struct {
    WEFT_FRAME;
    const char *path;
    weft_file_t f;
    weft_fs_op_t op;
    weft_file_op_t fop;
    int rc, set_rc, sync_rc, dsync_rc, meta_rc;
    ssize_t pw, pr, pr_eof, rd;
    int64_t pos;
    weft_fs_metadata_t meta;
    char buf[16];
} pos_t;
WEFT_ASYNC(pos_t, pos_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_fs_open(self->path, &RW_CREATE, &self->f), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    WEFT_AWAIT(&self->fop, weft_file_write_all(&self->f, "0123456789", 10), &self->rd);
    WEFT_AWAIT(&self->fop, weft_file_pwrite(&self->f, "AB", 2, 3), &self->pw);
    WEFT_AWAIT(&self->fop, weft_file_pread(&self->f, self->buf, 6, 1), &self->pr);
    WEFT_AWAIT(&self->fop, weft_file_pread(&self->f, self->buf + 8, 6, 10), &self->pr_eof);
    /* The position stayed at 10 through pread and pwrite. */
    WEFT_AWAIT(&self->fop, weft_file_seek(&self->f, 0, SEEK_CUR), &self->pos);
    WEFT_AWAIT(&self->fop, weft_file_set_len(&self->f, 4), &self->set_rc);
    WEFT_AWAIT(&self->fop, weft_file_sync_all(&self->f), &self->sync_rc);
    WEFT_AWAIT(&self->fop, weft_file_sync_data(&self->f), &self->dsync_rc);
    WEFT_AWAIT(&self->fop, weft_file_metadata(&self->f, &self->meta), &self->meta_rc);
    weft_file_close(&self->f);
    weft_file_close(&self->f); /* twice: nothing */
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(pread_pwrite_set_len_sync_metadata)
{
    make_tmpdir();
    weft_runtime_t *rt = shape_rt(_i);
    char p[256];
    pos_t t = { WEFT_FRAME_INIT(pos_fn), .path = tpath(p, "pos") };
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(&t)), 0);
    ck_assert_int_eq(t.rd, 10);
    ck_assert_int_eq(t.pw, 2);
    ck_assert_int_eq(t.pr, 6);
    ck_assert_mem_eq(t.buf, "12AB56", 6);
    ck_assert_int_eq(t.pr_eof, 0);
    ck_assert_int_eq(t.pos, 10);
    ck_assert_int_eq(t.set_rc, 0);
    ck_assert_int_eq(t.sync_rc, 0);
    ck_assert_int_eq(t.dsync_rc, 0);
    ck_assert_int_eq(t.meta_rc, 0);
    ck_assert_int_eq(t.meta.kind, WEFT_FS_FILE);
    ck_assert_uint_eq(t.meta.size, 4);
    ck_assert_uint_eq(t.meta.nlink, 1);
    ck_assert_int_gt(t.meta.mtime_ns, 0);
    ck_assert_uint_eq(file_size(p), 4);
    weft_runtime_free(rt);
    rm_tmpdir();
    ASSERT_NO_LIVE();
}
END_TEST

typedef struct {
    WEFT_FRAME;
    const char *path;
    weft_file_t f;
    weft_fs_op_t op;
    weft_file_op_t fop;
    int rc, rc2;
    ssize_t n1, n2;
    int64_t pos;
} append_t;
WEFT_ASYNC(append_t, append_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_fs_open(self->path, WEFT__TMP(weft_open_options_t, .append = true), &self->f),
               &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    WEFT_AWAIT(&self->fop, weft_file_write(&self->f, "tail", 4), &self->n1);
    WEFT_AWAIT(&self->fop, weft_file_flush(&self->f), &self->rc2);
    WEFT_AWAIT(&self->fop, weft_file_seek(&self->f, 0, SEEK_CUR), &self->pos);
    /* Reading a write-only file: EBADF. */
    WEFT_AWAIT(&self->fop, weft_file_read(&self->f, &self->n2, 1), &self->n2);
    weft_file_close(&self->f);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(append_writes_at_the_end)
{
    make_tmpdir();
    char p[256];
    write_pattern(tpath(p, "log"), 100);
    weft_runtime_t *rt = shape_rt(_i);
    append_t t = { WEFT_FRAME_INIT(append_fn), .path = p };
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(&t)), 0);
    ck_assert_int_eq(t.n1, 4);
    ck_assert_int_eq(t.rc2, 0);
    ck_assert_int_eq(t.pos, 104);
    ck_assert_int_eq(t.n2, WEFT_EBADF);
    ck_assert_uint_eq(file_size(p), 104);
    weft_runtime_free(rt);
    rm_tmpdir();
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Whole files, directories, paths -------------------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    char a[256], b[256], c[256], d[256], deep[256];
    weft_fs_op_t op;
    int w, r_ok, r_exact, r_big, r_proc, r_proc_small, mk, mk_again, mk_all, mk_all_again, rd, rm_full, mv, cp,
        cp_read, rmf, rmd, meta_dir, lmeta, meta_gone;
    weft_fs_buf_t buf, exact, big, proc, proc_small, copied;
    weft_fs_dir_t dir;
    weft_fs_metadata_t dmeta, lm;
} whole_t;
WEFT_ASYNC(whole_t, whole_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_fs_write_file(self->a, "0123456789", 10), &self->w);
    WEFT_AWAIT(&self->op, weft_fs_read_file(self->a, 1000, &self->buf), &self->r_ok);
    WEFT_AWAIT(&self->op, weft_fs_read_file(self->a, 10, &self->exact), &self->r_exact);
    WEFT_AWAIT(&self->op, weft_fs_read_file(self->a, 9, &self->big), &self->r_big);
    /* A file whose size stat does not tell (0): read to its end, capped. */
    WEFT_AWAIT(&self->op, weft_fs_read_file("/proc/self/status", 1 << 20, &self->proc), &self->r_proc);
    WEFT_AWAIT(&self->op, weft_fs_read_file("/proc/self/status", 16, &self->proc_small), &self->r_proc_small);
    WEFT_AWAIT(&self->op, weft_fs_create_dir(self->b, 0), &self->mk);
    WEFT_AWAIT(&self->op, weft_fs_create_dir(self->b, 0), &self->mk_again);
    WEFT_AWAIT(&self->op, weft_fs_create_dir_all(self->deep, 0750), &self->mk_all);
    WEFT_AWAIT(&self->op, weft_fs_create_dir_all(self->deep, 0750), &self->mk_all_again);
    WEFT_AWAIT(&self->op, weft_fs_metadata(self->deep, &self->dmeta), &self->meta_dir);
    WEFT_AWAIT(&self->op, weft_fs_rename(self->a, self->c), &self->mv);
    WEFT_AWAIT(&self->op, weft_fs_copy(self->c, self->d), &self->cp);
    WEFT_AWAIT(&self->op, weft_fs_read_file(self->d, 100, &self->copied), &self->cp_read);
    WEFT_AWAIT(&self->op, weft_fs_symlink_metadata(self->d, &self->lm), &self->lmeta);
    WEFT_AWAIT(&self->op, weft_fs_read_dir(self->b, &self->dir), &self->rd);
    WEFT_AWAIT(&self->op, weft_fs_remove_dir(self->b), &self->rm_full);
    WEFT_AWAIT(&self->op, weft_fs_remove_file(self->c), &self->rmf);
    WEFT_AWAIT(&self->op, weft_fs_metadata(self->c, &self->lm), &self->meta_gone);
    WEFT_AWAIT(&self->op, weft_fs_remove_dir(self->deep), &self->rmd);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(whole_files_directories_and_paths)
{
    make_tmpdir();
    weft_runtime_t *rt = shape_rt(_i);
    whole_t *t = calloc(1, sizeof *t);
    *t = (whole_t){ WEFT_FRAME_INIT(whole_fn) };
    snprintf(t->b, sizeof t->b, "%s/dir", tmpdir);
    snprintf(t->a, sizeof t->a, "%s/dir/a", tmpdir); /* inside dir: fails before dir exists */
    snprintf(t->a, sizeof t->a, "%s/a", tmpdir);
    snprintf(t->c, sizeof t->c, "%s/dir/c", tmpdir);
    snprintf(t->d, sizeof t->d, "%s/dir/d", tmpdir);
    snprintf(t->deep, sizeof t->deep, "%s/dir/x/y/z/", tmpdir);
    chmod(tmpdir, 0755);
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(t)), 0);
    ck_assert_int_eq(t->w, 0);
    ck_assert_int_eq(t->r_ok, 0);
    ck_assert_uint_eq(t->buf.len, 10);
    ck_assert_str_eq(t->buf.data, "0123456789"); /* NUL-terminated */
    ck_assert_int_eq(t->r_exact, 0);
    ck_assert_int_eq(t->r_big, -EFBIG);
    ck_assert_ptr_null(t->big.data);
    ck_assert_int_eq(t->r_proc, 0);
    ck_assert_ptr_nonnull(strstr(t->proc.data, "Pid:"));
    ck_assert_int_eq(t->r_proc_small, -EFBIG);
    ck_assert_int_eq(t->mk, 0);
    ck_assert_int_eq(t->mk_again, -EEXIST);
    ck_assert_int_eq(t->mk_all, 0);
    ck_assert_int_eq(t->mk_all_again, 0);
    ck_assert_int_eq(t->meta_dir, 0);
    ck_assert_int_eq(t->dmeta.kind, WEFT_FS_DIR);
    ck_assert_int_eq(t->dmeta.mode & 0777, 0750 & ~(unsigned)umask(022) & 0777);
    ck_assert_int_eq(t->mv, 0);
    ck_assert_int_eq(t->cp, 0);
    ck_assert_int_eq(t->cp_read, 0);
    ck_assert_str_eq(t->copied.data, "0123456789");
    ck_assert_int_eq(t->lmeta, 0);
    ck_assert_int_eq(t->lm.kind, WEFT_FS_FILE);
    ck_assert_int_eq(t->rd, 0);
    ck_assert_uint_eq(t->dir.count, 3); /* c, d, x */
    int seen = 0;
    for (size_t i = 0; i < t->dir.count; i++) {
        const weft_fs_dirent_t *e = &t->dir.entries[i];
        if (strcmp(e->name, "c") == 0 || strcmp(e->name, "d") == 0)
            seen += e->kind == WEFT_FS_FILE || e->kind == WEFT_FS_UNKNOWN;
        else if (strcmp(e->name, "x") == 0)
            seen += e->kind == WEFT_FS_DIR || e->kind == WEFT_FS_UNKNOWN;
    }
    ck_assert_int_eq(seen, 3);
    ck_assert_int_eq(t->rm_full, -ENOTEMPTY);
    ck_assert_int_eq(t->rmf, 0);
    ck_assert_int_eq(t->meta_gone, WEFT_ENOENT);
    ck_assert_int_eq(t->rmd, 0);
    weft_fs_buf_free(&t->buf);
    weft_fs_buf_free(&t->exact);
    weft_fs_buf_free(&t->big);
    weft_fs_buf_free(&t->proc);
    weft_fs_buf_free(&t->proc_small);
    weft_fs_buf_free(&t->copied);
    weft_fs_dir_free(&t->dir);
    weft_fs_dir_free(&t->dir); /* freed twice: nothing */
    free(t);
    weft_runtime_free(rt);
    rm_tmpdir();
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Errors ------------------------------------------------------------------------------ */

typedef struct {
    WEFT_FRAME;
    char missing[256], under_file[256], ro_dir_file[256], dir[256];
    weft_file_t f;
    weft_fs_op_t op;
    weft_file_op_t fop;
    int enoent, enotdir, eacces, eisdir, einval, eexist, ro_rc, full_open, full_flush, sym_rc;
    ssize_t full_write, ro_write;
    weft_fs_metadata_t m;
} err_t;
WEFT_ASYNC(err_t, err_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_fs_open(self->missing, NULL, &self->f), &self->enoent);
    /* A path through a regular file: ENOTDIR, for root too. */
    WEFT_AWAIT(&self->op, weft_fs_open(self->under_file, &RW_CREATE, &self->f), &self->enotdir);
    WEFT_AWAIT(&self->op, weft_fs_open(self->ro_dir_file, &RW_CREATE, &self->f), &self->eacces);
    if (self->eacces == 0) /* root */
        weft_file_close(&self->f);
    WEFT_AWAIT(&self->op, weft_fs_open(self->dir, WEFT__TMP(weft_open_options_t, .write = true), &self->f),
               &self->eisdir);
    WEFT_AWAIT(&self->op, weft_fs_open(self->dir, WEFT__TMP(weft_open_options_t, .truncate = true), &self->f),
               &self->einval);
    WEFT_AWAIT(&self->op, weft_fs_open(self->dir, WEFT__TMP(weft_open_options_t, .write = true, .create_new = true),
                                       &self->f),
               &self->eexist);
    /* A read-only handle refuses writes. */
    WEFT_AWAIT(&self->op, weft_fs_open("/proc/self/status", NULL, &self->f), &self->ro_rc);
    if (self->ro_rc == 0) {
        WEFT_AWAIT(&self->fop, weft_file_write(&self->f, "x", 1), &self->ro_write);
        weft_file_close(&self->f);
    }
    /* A full device: the write is taken, the job's ENOSPC comes back at
     * the next flush. */
    WEFT_AWAIT(&self->op, weft_fs_open("/dev/full", WEFT__TMP(weft_open_options_t, .write = true), &self->f),
               &self->full_open);
    if (self->full_open == 0) {
        WEFT_AWAIT(&self->fop, weft_file_write(&self->f, "data", 4), &self->full_write);
        WEFT_AWAIT(&self->fop, weft_file_flush(&self->f), &self->full_flush);
        weft_file_close(&self->f);
    }
    WEFT_AWAIT(&self->op, weft_fs_symlink_metadata(self->missing, &self->m), &self->sym_rc);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(errors_come_back_as_negative_errno)
{
    make_tmpdir();
    weft_runtime_t *rt = shape_rt(_i);
    err_t t = { WEFT_FRAME_INIT(err_fn) };
    char f[256], ro[256];
    write_pattern(tpath(f, "regular"), 1);
    snprintf(t.missing, sizeof t.missing, "%s/missing", tmpdir);
    snprintf(t.under_file, sizeof t.under_file, "%s/regular/x", tmpdir);
    snprintf(ro, sizeof ro, "%s/ro", tmpdir);
    ck_assert_int_eq(mkdir(ro, 0555), 0);
    snprintf(t.ro_dir_file, sizeof t.ro_dir_file, "%s/ro/new", tmpdir);
    snprintf(t.dir, sizeof t.dir, "%s", tmpdir);
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(&t)), 0);
    ck_assert_int_eq(t.enoent, WEFT_ENOENT);
    ck_assert_int_eq(t.enotdir, -ENOTDIR);
    /* Root's permission checks pass (CAP_DAC_OVERRIDE): the open then
     * succeeds, and there is nothing to check but that. */
    if (geteuid() != 0)
        ck_assert_int_eq(t.eacces, -EACCES);
    else
        ck_assert_int_eq(t.eacces, 0);
    ck_assert_int_eq(t.eisdir, -EISDIR);
    ck_assert_int_eq(t.einval, WEFT_EINVAL);
    ck_assert_int_eq(t.eexist, -EEXIST);
    ck_assert_int_eq(t.ro_rc, 0);
    ck_assert_int_eq(t.ro_write, WEFT_EBADF);
    if (t.full_open == 0) {
        ck_assert_int_eq(t.full_write, 4);
        ck_assert_int_eq(t.full_flush, -ENOSPC);
    }
    ck_assert_int_eq(t.sym_rc, WEFT_ENOENT);
    weft_runtime_free(rt);
    chmod(ro, 0755);
    rm_tmpdir();
    ASSERT_NO_LIVE();
}
END_TEST

/* With no runtime there is no blocking pool: WEFT_ENOSYS, not a crash. */
START_TEST(no_runtime_gives_enosys)
{
    weft_fs_metadata_t m;
    weft_fs_op_t op = weft_fs_metadata("/", &m);
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    int rc = 0;
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&op), &cx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_ENOSYS);
    weft_future_drop(WEFT_FUTURE(&op));
    weft_file_t zero = { { NULL }, NULL };
    weft_file_op_t fop = weft_file_flush(&zero);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&fop), &cx, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EBADF);
    weft_file_close(&zero);
    ck_assert_int_eq(weft_file_fd(&zero), -1);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Cancellation ---------------------------------------------------------------------------- */

/* Polls a child future once and drops it: a job it started is left in
 * flight. Output int: 1 if the child was pending. */
typedef struct {
    weft_future_t future;
    weft_future_t *child;
} once_t;
static weft_poll_t once_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    once_t *o = (once_t *)(void *)f;
    char scratch[64];
    weft_poll_t p = weft_future_poll(o->child, cx, scratch);
    if (p == WEFT_READY && o->child->vtable->drop_output != NULL)
        o->child->vtable->drop_output(scratch);
    weft_future_drop(o->child);
    *(int *)out = p == WEFT_PENDING;
    return WEFT_READY;
}
static const weft_future_vtable_t once_vt = { once_poll, NULL, NULL, sizeof(once_t), sizeof(int), "once" };

/* The jobs below block on FIFOs (an open with no writer, a read with no
 * data), so they are surely in flight when their futures are dropped. */
typedef struct {
    WEFT_FRAME;
    const char *fifo, *fifo2;
    weft_file_t *f;
    weft_fs_op_t op;
    weft_file_op_t fop;
    once_t once;
    int rc, pend_read_file, pend_open, pend_read;
    weft_fs_buf_t buf;
    weft_file_t f2;
    char chunk[100];
} drop_t;
WEFT_ASYNC(drop_t, drop_fn, int)
{
    WEFT_BEGIN();
    /* Dropped with their jobs in flight: the results (a buffer, an open
     * descriptor) are freed when the jobs end. */
    self->op = weft_fs_read_file(self->fifo, 2, &self->buf); /* 3 bytes come: -EFBIG, no end needed */
    self->once = (once_t){ { &once_vt }, WEFT_FUTURE(&self->op) };
    WEFT_AWAIT_REF(&self->once, &self->pend_read_file);
    self->op = weft_fs_open(self->fifo, NULL, &self->f2);
    self->once = (once_t){ { &once_vt }, WEFT_FUTURE(&self->op) };
    WEFT_AWAIT_REF(&self->once, &self->pend_open);
    /* A read dropped while its job waits for data. */
    WEFT_AWAIT(&self->op, weft_fs_open(self->fifo2, NULL, self->f), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    self->fop = weft_file_read(self->f, self->chunk, sizeof self->chunk);
    self->once = (once_t){ { &once_vt }, WEFT_FUTURE(&self->fop) };
    WEFT_AWAIT_REF(&self->once, &self->pend_read);
    WEFT_RETURN(0);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_file_t *f;
    weft_file_op_t fop;
    ssize_t n;
    char chunk[100];
} drop2_t;
WEFT_ASYNC(drop2_t, drop2_fn, int)
{
    WEFT_BEGIN();
    /* The dropped read's job got the bytes: this read takes them. */
    WEFT_AWAIT(&self->fop, weft_file_read(self->f, self->chunk, sizeof self->chunk), &self->n);
    weft_file_close(self->f);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(futures_dropped_with_jobs_in_flight)
{
    make_tmpdir();
    char fifo[256], fifo2[256];
    ck_assert_int_eq(mkfifo(tpath(fifo, "fifo"), 0600), 0);
    ck_assert_int_eq(mkfifo(tpath(fifo2, "fifo2"), 0600), 0);
    int w2 = open(fifo2, O_RDWR); /* a writer, so opening fifo2 does not block */
    ck_assert_int_ge(w2, 0);
    weft_runtime_t *rt = shape_rt(_i);
    weft_file_t f;
    drop_t t = { WEFT_FRAME_INIT(drop_fn), .fifo = fifo, .fifo2 = fifo2, .f = &f };
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(&t)), 0);
    ck_assert_int_eq(t.pend_read_file, 1);
    ck_assert_int_eq(t.pend_open, 1);
    ck_assert_int_eq(t.pend_read, 1);
    /* Unblock the jobs: a writer for fifo (both opens go on, read_file
     * finds more than its cap), data for fifo2. */
    int w = open(fifo, O_RDWR);
    ck_assert_int_ge(w, 0);
    ck_assert_int_eq(write(w, "abc", 3), 3);
    ck_assert_int_eq(write(w2, "hello", 5), 5);
    drop2_t t2 = { WEFT_FRAME_INIT(drop2_fn), .f = &f };
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(&t2)), 0);
    ck_assert_int_eq(t2.n, 5);
    ck_assert_mem_eq(t2.chunk, "hello", 5);
    weft_runtime_free(rt); /* waits for the pool: every job has ended */
    close(w);
    close(w2);
    rm_tmpdir();
    ASSERT_NO_LIVE();
}
END_TEST

/* Writes left pending at close still reach the file; so do they when
 * the runtime is freed right after. */
typedef struct {
    WEFT_FRAME;
    const char *path;
    weft_file_t f;
    weft_fs_op_t op;
    weft_file_op_t fop;
    int rc, i;
    ssize_t n;
    char line[32];
} close_t;
WEFT_ASYNC(close_t, close_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_fs_open(self->path, &RW_CREATE, &self->f), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    for (self->i = 0; self->i < 1000; self->i++) {
        snprintf(self->line, sizeof self->line, "line %04d\n", self->i);
        WEFT_AWAIT(&self->fop, weft_file_write_all(&self->f, self->line, 10), &self->n);
        if (self->n != 10)
            WEFT_RETURN((int)self->n);
    }
    weft_file_close(&self->f); /* no flush */
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(close_writes_what_is_pending)
{
    make_tmpdir();
    char p[256];
    weft_runtime_t *rt = shape_rt(_i);
    close_t t = { WEFT_FRAME_INIT(close_fn), .path = tpath(p, "lines") };
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(&t)), 0);
    weft_runtime_free(rt);
    ck_assert_uint_eq(file_size(p), 10000);
    FILE *fp = fopen(p, "r");
    char line[32];
    for (int i = 0; i < 1000; i++) {
        ck_assert_ptr_nonnull(fgets(line, sizeof line, fp));
        char want[32];
        snprintf(want, sizeof want, "line %04d\n", i);
        ck_assert_str_eq(line, want);
    }
    fclose(fp);
    rm_tmpdir();
    ASSERT_NO_LIVE();
}
END_TEST

/* Tasks in the middle of reading and writing when the runtime shuts down:
 * their jobs run out or are cancelled, nothing leaks, nothing hangs. */
typedef struct {
    WEFT_FRAME;
    char path[256];
    bool writer;
    weft_file_t f;
    weft_fs_op_t op;
    weft_file_op_t fop;
    int rc;
    ssize_t n;
    char buf[8192];
} busy_t;
static void busy_cleanup(busy_t *self)
{
    weft_file_close(&self->f);
}
WEFT_ASYNC_WITH_DROP(busy_t, busy_fn, int, busy_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_fs_open(self->path, self->writer ? &RW_CREATE : NULL, &self->f), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    for (;;) {
        if (self->writer) {
            WEFT_AWAIT(&self->fop, weft_file_write(&self->f, self->buf, sizeof self->buf), &self->n);
        } else {
            WEFT_AWAIT(&self->fop, weft_file_read(&self->f, self->buf, sizeof self->buf), &self->n);
            if (self->n == 0)
                WEFT_AWAIT(&self->fop, weft_file_seek(&self->f, 0, SEEK_SET), NULL);
        }
    }
    WEFT_END();
}

START_TEST(shutdown_with_jobs_in_flight)
{
    make_tmpdir();
    char src[256];
    write_pattern(tpath(src, "src"), BIG);
    weft_runtime_t *rt = shape_rt(_i);
    busy_t *tasks = calloc(4, sizeof *tasks);
    for (int k = 0; k < 4; k++) {
        tasks[k] = (busy_t){ WEFT_FRAME_INIT(busy_fn), .writer = k % 2 == 1 };
        if (tasks[k].writer)
            snprintf(tasks[k].path, sizeof tasks[k].path, "%s/out%d", tmpdir, k);
        else
            snprintf(tasks[k].path, sizeof tasks[k].path, "%s", src);
        ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&tasks[k]), NULL, NULL, WEFT_SITE), 0);
    }
    for (int k = 0; k < 20; k++)
        let_tasks_run(rt, _i);
    weft_runtime_free(rt);
    free(tasks);
    rm_tmpdir();
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Allocation failures ------------------------------------------------------------------------ */

typedef struct {
    WEFT_FRAME;
    const char *path, *dir;
    weft_file_t f;
    weft_fs_op_t op;
    weft_file_op_t fop;
    int rc;
    ssize_t n;
    weft_fs_buf_t buf;
    weft_fs_dir_t list;
    char chunk[100];
} nomem_t;
WEFT_ASYNC(nomem_t, nomem_fn, int)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_fs_read_file(self->path, 1 << 20, &self->buf), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    weft_fs_buf_free(&self->buf);
    WEFT_AWAIT(&self->op, weft_fs_read_dir(self->dir, &self->list), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    weft_fs_dir_free(&self->list);
    WEFT_AWAIT(&self->op, weft_fs_open(self->path, &RW_CREATE, &self->f), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    WEFT_AWAIT(&self->fop, weft_file_write(&self->f, "abc", 3), &self->n);
    if (self->n < 0) {
        weft_file_close(&self->f);
        WEFT_RETURN((int)self->n);
    }
    WEFT_AWAIT(&self->fop, weft_file_pread(&self->f, self->chunk, 3, 0), &self->n);
    weft_file_close(&self->f);
    WEFT_RETURN(self->n < 0 ? (int)self->n : 0);
    WEFT_END();
}

START_TEST(enomem_at_every_allocation)
{
    make_tmpdir();
    char p[256];
    write_pattern(tpath(p, "f"), 5000);
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    int ok = 0, nomem = 0;
    for (long k = 1; k < 40; k++) {
        nomem_t t = { WEFT_FRAME_INIT(nomem_fn), .path = p, .dir = tmpdir };
        int rc = -9999;
        weft__alloc_fail_after(k);
        int brc = weft_runtime_block_on(rt, WEFT_FUTURE(&t), &rc);
        weft__alloc_fail_after(-1);
        if (brc == WEFT_ENOMEM)
            continue; /* block_on itself could not start */
        ck_assert_int_eq(brc, 0);
        ck_assert_msg(rc == 0 || rc == WEFT_ENOMEM || rc == WEFT_ECANCELED, "k=%ld rc=%d", k, rc);
        ok += rc == 0;
        nomem += rc != 0;
    }
    ck_assert_int_gt(ok, 0);
    ck_assert_int_gt(nomem, 0);
    weft_runtime_free(rt);
    rm_tmpdir();
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- The stream interface ------------------------------------------------------------------------ */

typedef struct {
    weft_future_t future;
    weft_stream_t *s;
    int step;
    ssize_t w, r;
    int sh;
    char buf[8];
} via_stream_t;
static weft_poll_t via_stream_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    via_stream_t *v = (via_stream_t *)(void *)f;
    if (v->step == 0) {
        if (weft_stream_poll_write(v->s, cx, "xyz", 3, &v->w) == WEFT_PENDING)
            return WEFT_PENDING;
        v->step = 1;
    }
    if (v->step == 1) {
        if (weft_stream_poll_shutdown(v->s, cx, &v->sh) == WEFT_PENDING) /* = flush */
            return WEFT_PENDING;
        v->step = 2;
    }
    if (weft_stream_poll_read(v->s, cx, v->buf, sizeof v->buf, &v->r) == WEFT_PENDING)
        return WEFT_PENDING;
    *(int *)out = 0;
    return WEFT_READY;
}
static const weft_future_vtable_t via_stream_vt = { via_stream_poll, NULL, NULL, sizeof(via_stream_t), sizeof(int),
                                                    "via_stream" };

START_TEST(file_is_a_stream)
{
    make_tmpdir();
    char p[256];
    write_pattern(tpath(p, "s"), 0);
    weft_runtime_t *rt = shape_rt(_i);
    weft_file_t f;
    weft_fs_op_t op = weft_fs_open(p, WEFT__TMP(weft_open_options_t, .read = true, .write = true), &f);
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(&op)), 0);
    weft_stream_t *s = weft_file_as_stream(&f);
    ck_assert_ptr_eq(s, &f.stream);
    ck_assert_str_eq(s->vtable->name, "file");
    ck_assert_int_ge(weft_file_fd(&f), 0);
    via_stream_t v = { { &via_stream_vt }, s, 0, 0, 0, 0, { 0 } };
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(&v)), 0);
    ck_assert_int_eq(v.w, 3);
    ck_assert_int_eq(v.sh, 0);
    ck_assert_int_eq(v.r, 0); /* the position is past what was written */
    ck_assert_uint_eq(file_size(p), 3);
    weft_file_close(&f);
    weft_runtime_free(rt);
    rm_tmpdir();
    ASSERT_NO_LIVE();
}
END_TEST

/* A file split into halves (weft_io_split: a file is not duplex, so the
 * halves take turns through the lock). The read half waits on a read job
 * (a FIFO with no data yet), then the write half polls (a write, or a
 * flush) and waits on the same job. When data arrives, the job's end must
 * wake both: each direction keeps its own waker, so the writer's does not
 * replace the reader's. Two tasks on two workers, each under a timeout, so
 * a lost wakeup fails the test instead of hanging it. */
typedef struct {
    weft_future_t future;
    weft_stream_t *s;
    int kind; /* 0: read, 1: write, 2: flush */
    atomic_int *waiting; /* set once a poll returned pending */
    char *buf;
    size_t len;
} halfop_t;
static weft_poll_t halfop_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    halfop_t *h = (halfop_t *)(void *)f;
    ssize_t n = 0;
    int rc = 0;
    weft_poll_t p = h->kind == 0   ? weft_stream_poll_read(h->s, cx, h->buf, h->len, &n)
                    : h->kind == 1 ? weft_stream_poll_write(h->s, cx, h->buf, h->len, &n)
                                   : weft_stream_poll_flush(h->s, cx, &rc);
    if (p == WEFT_PENDING) {
        atomic_store(h->waiting, 1);
        return WEFT_PENDING;
    }
    *(ssize_t *)out = h->kind == 2 ? rc : n;
    return WEFT_READY;
}
static const weft_future_vtable_t halfop_vt = { halfop_poll, NULL, NULL, sizeof(halfop_t), sizeof(ssize_t),
                                                "halfop" };

/* Runs op under a 5 s timeout. Output: the op's result, or -100000 when
 * it timed out (the frame is moved into the task: read nothing from it). */
typedef struct {
    WEFT_FRAME;
    halfop_t op;
    weft_timeout_t to;
    ssize_t n;
    int rc;
} halftask_t;
WEFT_ASYNC(halftask_t, halftask_fn, ssize_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->to, weft_timeout_ms(WEFT_FUTURE(&self->op), &self->n, 5000), &self->rc);
    WEFT_RETURN(self->rc == 0 ? self->n : -100000);
    WEFT_END();
}

static void wait_flag(atomic_int *flag)
{
    for (int i = 0; i < 5000 && !atomic_load(flag); i++)
        sleep_ms(1);
    ck_assert_int_eq(atomic_load(flag), 1);
}

START_TEST(split_file_wakes_reader_and_writer)
{
    const int wkind = 1 + _i; /* the write half writes (1) or flushes (2) */
    make_tmpdir();
    char fifo[256];
    ck_assert_int_eq(mkfifo(tpath(fifo, "fifo"), 0600), 0);
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    weft_file_t f;
    weft_fs_op_t op = weft_fs_open(fifo, WEFT__TMP(weft_open_options_t, .read = true, .write = true), &f);
    ck_assert_int_eq(block_on_int(rt, WEFT_FUTURE(&op)), 0);
    weft_io_half_t rd, wr;
    ck_assert_int_eq(weft_io_split(weft_file_as_stream(&f), &rd, &wr), 0);
    ck_assert_ptr_nonnull(rd.lock_); /* a file is not duplex: the halves share a lock */

    atomic_int rwait = 0, wwait = 0;
    char rbuf[16] = { 0 }, wbuf[] = "pong";
    halftask_t rtask = { WEFT_FRAME_INIT(halftask_fn),
                       .op = { { &halfop_vt }, weft_io_half_stream(&rd), 0, &rwait, rbuf, sizeof rbuf } };
    halftask_t wtask = { WEFT_FRAME_INIT(halftask_fn),
                       .op = { { &halfop_vt }, weft_io_half_stream(&wr), wkind, &wwait, wbuf, 4 } };
    weft_join_handle_t hr, hw;
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&rtask), &hr, NULL, WEFT_SITE), 0);
    wait_flag(&rwait); /* the reader waits on its job (the FIFO is empty) */
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&wtask), &hw, NULL, WEFT_SITE), 0);
    wait_flag(&wwait); /* the writer waits on the same job */

    int w = open(fifo, O_WRONLY | O_NONBLOCK);
    ck_assert_int_ge(w, 0);
    uint64_t t0 = weft_now_ns();
    ck_assert_int_eq(write(w, "ping", 4), 4);
    close(w);

    ssize_t rn = -1, wn = -1;
    ck_assert_int_eq(join_out(rt, &hr, &rn), 0);
    uint64_t waited_ms = (weft_now_ns() - t0) / 1000000;
    ck_assert_int_eq(join_out(rt, &hw, &wn), 0);
    /* A lost wakeup shows as a hang that the timeout ends: the timeout
     * polls its inner future once more when it fires, which then finds
     * the job's result, so the read half finishing only that late fails
     * too. */
    ck_assert_msg(rn != -100000 && waited_ms < 2500, "the read half was never woken (%zd after %" PRIu64 " ms)",
                  rn, waited_ms);
    ck_assert_msg(wn != -100000, "the write half was never woken");
    ck_assert_int_eq(wn, wkind == 1 ? 4 : 0);
    ck_assert_int_eq(rn, 4);
    if (wkind == 2) {
        ck_assert_mem_eq(rbuf, "ping", 4);
    } else {
        /* A write drops what the file had read and not handed out (stale
         * for a regular file): when the writer takes the job's result
         * first, the reader's next job reads the writer's bytes, which
         * went into the same FIFO. */
        ck_assert_msg(memcmp(rbuf, "ping", 4) == 0 || memcmp(rbuf, "pong", 4) == 0, "read %.4s", rbuf);
    }
    ck_assert_ptr_eq(weft_io_unsplit(&rd, &wr), weft_file_as_stream(&f));
    weft_file_close(&f);
    weft_runtime_free(rt);
    rm_tmpdir();
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fs");
    TCase *tc = tcase_create("fs");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, write_then_read_back_with_short_read_at_eof, 0, N_SHAPES);
    tcase_add_loop_test(tc, sequential_reads_across_blocks_and_seeks, 0, N_SHAPES);
    tcase_add_loop_test(tc, pread_pwrite_set_len_sync_metadata, 0, N_SHAPES);
    tcase_add_loop_test(tc, append_writes_at_the_end, 0, N_SHAPES);
    tcase_add_loop_test(tc, whole_files_directories_and_paths, 0, N_SHAPES);
    tcase_add_loop_test(tc, errors_come_back_as_negative_errno, 0, N_SHAPES);
    tcase_add_test(tc, no_runtime_gives_enosys);
    tcase_add_loop_test(tc, futures_dropped_with_jobs_in_flight, 0, N_SHAPES);
    tcase_add_loop_test(tc, close_writes_what_is_pending, 0, N_SHAPES);
    tcase_add_loop_test(tc, shutdown_with_jobs_in_flight, 0, N_SHAPES);
    tcase_add_test(tc, enomem_at_every_allocation);
    tcase_add_loop_test(tc, file_is_a_stream, 0, N_SHAPES);
    tcase_add_loop_test(tc, split_file_wakes_reader_and_writer, 0, 2);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
