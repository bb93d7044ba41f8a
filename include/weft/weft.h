/* weft/weft.h - the umbrella header: everything public in weft. */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include "common.h"
#include "error.h"
#include "future.h"
#include "async.h"
#include "join.h"
#include "task_local.h"
#include "select.h"
#include "unordered.h"
#include "runtime.h"
#include "joinset.h"
#include "local.h"
#include "oneshot.h"
#include "notify.h"
#include "cancel.h"
#include "atomic_waker.h"
#include "semaphore.h"
#include "mutex.h"
#include "rwlock.h"
#include "barrier.h"
#include "oncecell.h"
#include "mpsc.h"
#include "broadcast.h"
#include "watch.h"
#include "time.h"
#include "io.h"
#include "bufio.h"
#include "codec.h"
#include "fs.h"
#include "net.h"
#include "asyncfd.h"
#include "socket.h"
#include "signal.h"
#include "process.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

/* "0.1.0". Context: any thread. */
WEFT_API const char *weft_version(void);

#ifdef __cplusplus
}
#endif

#endif
