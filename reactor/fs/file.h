/* reactor/fs/file.h - what the path operations (ops.c) need of file.c. */
#ifndef WEFT_FS_FILE_H
#define WEFT_FS_FILE_H

#include "job.h"

typedef struct weft__file weft__file_t;

/* Wraps fd (opened with oflags, of the kind st says) into *out. Returns 0,
 * or WEFT_ENOMEM (fd is left open: the caller closes it). */
int weft__file_new(int fd, int oflags, const struct stat *st, weft_file_t *out);

#endif
