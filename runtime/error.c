/* runtime/error.c - error names and messages, generated from
 * WEFT_ERRNO_MAP so they cannot drift from the codes. */
#include "internal.h"

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
        return "unknown error";
    }
}

const char *weft_err_name(int err)
{
    switch (err) {
#define WEFT__ERR_NAME(name, msg) \
    case WEFT_##name:             \
        return #name;
        WEFT_ERRNO_MAP(WEFT__ERR_NAME)
#undef WEFT__ERR_NAME
    case 0:
        return "OK";
    default:
        return "UNKNOWN";
    }
}

const char *weft_version(void)
{
    return WEFT__STR(WEFT_VERSION_MAJOR) "." WEFT__STR(WEFT_VERSION_MINOR) "." WEFT__STR(WEFT_VERSION_PATCH);
}
