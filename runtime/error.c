/* runtime/error.c - error names and messages, generated from
 * WEFT_ERRNO_MAP so they cannot drift from the codes.
 *
 * A negative errno outside the map (a system call's error passed through,
 * such as -EACCES from bind) is named from a small table of the errno
 * values weft's socket and runtime calls can pass through, and described by
 * the C library's strerror_r into a thread-local buffer, so neither answer
 * is ever "unknown" for a code a weft call can return.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "nonnull.h"

/* The system's message for errnum, in a per-thread buffer (valid until
 * this thread's next call). strerror_r is the GNU variant under
 * _GNU_SOURCE (returns the string, which may or may not be buf) and the
 * XSI one otherwise (returns 0 and fills buf). */
static const char *system_message(int errnum)
{
    static _Thread_local char buf[128];
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(errnum, buf, sizeof buf);
#else
    if (strerror_r(errnum, buf, sizeof buf) != 0)
        snprintf(buf, sizeof buf, "unknown error %d", -errnum);
    return buf;
#endif
}

const char *weft_strerror(int err)
{
    switch (err) {
#define WEFT__ERR_MSG(name, msg) \
    case WEFT_##name:            \
        return msg;
        WEFT_ERRNO_MAP(WEFT__ERR_MSG)
#undef WEFT__ERR_MSG
    case 0:
        return "success";
    default:
        if (err < 0 && err > -4096) /* the kernel's errno range */
            return system_message(-err);
        return "unknown error";
    }
}

/* errno values a weft call can pass through from a system call (socket(2),
 * bind(2), connect(2), accept4(2), send/recv, getaddrinfo via libuv,
 * uv_loop_init) that WEFT_ERRNO_MAP does not list. One row each. */
#define WEFT__SYS_ERRNO(X)                                                                       \
    X(EACCES) X(EADDRNOTAVAIL) X(EALREADY) X(ECONNABORTED) X(EDESTADDRREQ) X(EFAULT) X(EHOSTDOWN) \
    X(EHOSTUNREACH) X(EINPROGRESS) X(EINTR) X(EISCONN) X(ELOOP) X(ENAMETOOLONG)                  \
    X(ENETDOWN) X(ENETRESET) X(ENETUNREACH) X(ENFILE) X(ENOBUFS) X(ENODEV) X(ENOPROTOOPT)         \
    X(ENOSPC) X(ENOTCONN) X(ENOTDIR) X(ENOTSOCK) X(ENOTSUP) X(EPROTO) X(EPROTONOSUPPORT)          \
    X(EPROTOTYPE) X(EROFS) X(ESOCKTNOSUPPORT) X(ESRCH) X(EEXIST) X(EISDIR) X(ENXIO) X(E2BIG)      \
    X(ERANGE) X(ESPIPE) X(EXDEV) X(ETXTBSY) X(ENOTEMPTY)

const char *weft_err_name(int err)
{
    switch (err) {
#define WEFT__ERR_NAME(name, msg) \
    case WEFT_##name:             \
        return #name;
        WEFT_ERRNO_MAP(WEFT__ERR_NAME)
#undef WEFT__ERR_NAME
#define WEFT__SYS_NAME(name) \
    case -name:              \
        return #name;
        WEFT__SYS_ERRNO(WEFT__SYS_NAME)
#undef WEFT__SYS_NAME
    case 0:
        return "OK";
    default:
        return err < 0 && err > -4096 ? "E?" : "UNKNOWN";
    }
}

void weft__null_arg(const char *fn, const char *arg, const char *site)
{
    weft_panic(site, "%s: %s is NULL (a required argument; see docs/api.md, null arguments)", fn, arg);
}

const char *weft_version(void)
{
    return WEFT__STR(WEFT_VERSION_MAJOR) "." WEFT__STR(WEFT_VERSION_MINOR) "." WEFT__STR(WEFT_VERSION_PATCH);
}
