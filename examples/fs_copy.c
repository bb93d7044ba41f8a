/* examples/fs_copy.c - copies a file through weft_file_t handles, 64 KiB
 * at a time, without blocking a worker (docs/fs.md), then lists the
 * directory the copy landed in.
 *
 *   fs_copy SRC DST
 *
 * Exits 0 when DST holds SRC's bytes; prints the error otherwise. */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include <weft/weft.h>

typedef struct {
    WEFT_FRAME;
    const char *src, *dst;
    weft_file_t in, out;
    weft_fs_op_t op;
    weft_file_op_t io;
    weft_fs_dir_t dir;
    char dirpath[4096];
    int rc;
    ssize_t n, w;
    int64_t total;
    char buf[65536];
} copy_t;

static void copy_cleanup(copy_t *self)
{
    weft_file_close(&self->in);
    weft_file_close(&self->out);
    weft_fs_dir_free(&self->dir);
}

WEFT_ASYNC_WITH_DROP(copy_t, copy_file, int, copy_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->op, weft_fs_open(self->src, NULL, &self->in), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    static const weft_open_options_t wr = { .write = true, .create = true, .truncate = true };
    WEFT_AWAIT(&self->op, weft_fs_open(self->dst, &wr, &self->out), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    for (;;) {
        WEFT_AWAIT(&self->io, weft_file_read(&self->in, self->buf, sizeof self->buf), &self->n);
        if (self->n <= 0)
            break;
        WEFT_AWAIT(&self->io, weft_file_write_all(&self->out, self->buf, (size_t)self->n), &self->w);
        if (self->w < 0)
            WEFT_RETURN((int)self->w);
        self->total += self->n;
    }
    if (self->n < 0)
        WEFT_RETURN((int)self->n);
    /* write only took the bytes: flush says whether they reached the file */
    WEFT_AWAIT(&self->io, weft_file_flush(&self->out), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    printf("copied %lld bytes\n", (long long)self->total);
    snprintf(self->dirpath, sizeof self->dirpath, "%s", self->dst);
    WEFT_AWAIT(&self->op, weft_fs_read_dir(dirname(self->dirpath), &self->dir), &self->rc);
    if (self->rc != 0)
        WEFT_RETURN(self->rc);
    printf("%zu entries in the target directory\n", self->dir.count);
    WEFT_RETURN(0);
    WEFT_END();
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fs_copy SRC DST\n");
        return 2;
    }
    weft_runtime_t *rt;
    if (weft_runtime_new(NULL, &rt) != 0)
        return 1;
    copy_t c = { WEFT_FRAME_INIT(copy_file), .src = argv[1], .dst = argv[2] };
    int rc = 0;
    int brc = weft_runtime_block_on(rt, WEFT_FUTURE(&c), &rc);
    weft_runtime_free(rt);
    if (brc != 0 || rc != 0) {
        fprintf(stderr, "fs_copy: %s\n", weft_strerror(brc != 0 ? brc : rc));
        return 1;
    }
    return 0;
}
