/* weft/error.h - error codes.
 *
 * Every fallible weft call returns 0 or a negative errno-style code. The
 * codes are the platform's errno values negated (as in libuv), so an error
 * that comes straight from a system call needs no translation.
 */
#ifndef WEFT_ERROR_H
#define WEFT_ERROR_H

#include <errno.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, message): one list from which the enum, weft_strerror() and
 * weft_err_name() are generated, so the three can never disagree. */
#define WEFT_ERRNO_MAP(X)                                              \
    X(ENOMEM, "out of memory")                                         \
    X(EINVAL, "invalid argument")                                      \
    X(ECANCELED, "operation canceled")                                 \
    X(EAGAIN, "resource temporarily unavailable")                      \
    X(ETIMEDOUT, "operation timed out")                                \
    X(ESHUTDOWN, "runtime is shut down")                               \
    X(EPIPE, "the other side is closed")                               \
    X(EBUSY, "resource busy")                                          \
    X(EDEADLK, "operation would deadlock")                             \
    X(EPERM, "operation not permitted")                                \
    X(ENOSYS, "function not implemented")                             \
    X(ENOENT, "no such name or entry")                                 \
    X(EIO, "input/output error")                                       \
    X(EBADF, "bad or closed socket")                                   \
    X(ECONNREFUSED, "connection refused")                              \
    X(ECONNRESET, "connection reset by peer")                          \
    X(EADDRINUSE, "address already in use")                            \
    X(EMFILE, "too many open files")                                   \
    X(EAFNOSUPPORT, "address family not supported")                    \
    X(EOVERFLOW, "the receiver fell behind and missed messages")      \
    X(EMSGSIZE, "message too long")

enum weft_errno_e {
#define WEFT__ERR_ENUM(name, msg) WEFT_##name = -name,
    WEFT_ERRNO_MAP(WEFT__ERR_ENUM)
#undef WEFT__ERR_ENUM
};

/* A broadcast receiver fell behind (weft/broadcast.h): the messages it
 * missed were overwritten. Another name for WEFT_EOVERFLOW. */
#define WEFT_ELAGGED WEFT_EOVERFLOW

/* A human-readable message for err (a negative code). Never NULL. Codes in
 * WEFT_ERRNO_MAP give its message (static storage); any other negative
 * errno (such as -EACCES passed through from bind) gives the system's
 * strerror_r message in a thread-local buffer, valid until this thread's
 * next weft_strerror call; anything else (0 aside: "success") gives
 * "unknown error". Context: any thread. */
WEFT_API const char *weft_strerror(int err);
/* The symbolic name of err: "ENOMEM" for the map's codes and for the errno
 * values weft's calls can pass through from the system ("EACCES"), "E?"
 * for another negative errno, "OK" for 0, "UNKNOWN" otherwise. Static
 * storage. Context: any thread. */
WEFT_API const char *weft_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif
