/* reactor/process/pipe.h - what child.c and stdio.c use of pipe.c
 * (internal). */
#ifndef WEFT_PROCESS_PIPE_H
#define WEFT_PROCESS_PIPE_H

#include "../io_driver.h"
#include "../../runtime/nonnull.h"
#include "weft/process.h"

/* Sets SIGPIPE to SIG_IGN once per process if it is SIG_DFL (pipe.c says
 * why). Any thread. */
void weft__sigpipe_policy(void);
/* Registers fd (already non-blocking) as a pipe end of kind `end` in *out.
 * Returns 0 or an error from weft__io_new (fd then stays the caller's). */
int weft__pipe_adopt(int fd, weft_pipe_end_t end, weft_pipe_t *out);

#endif
