/* weft/common.h - export, attribute and small helpers shared by every public header. */
#ifndef WEFT_COMMON_H
#define WEFT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* WEFT__TMP(type, ...): a pointer to a temporary `type` built from the
 * initializers, valid until the end of the enclosing full expression (the
 * option macros pass one to a call). A compound literal in C; in C++, where
 * a compound literal is not an lvalue, a temporary bound to a reference. */
#ifdef __cplusplus
template <typename T> static inline const T *weft__tmp_ptr(const T &v) { return &v; }
#define WEFT__TMP(type, ...) weft__tmp_ptr(type{ __VA_ARGS__ })
#else
#define WEFT__TMP(type, ...) (&(const type){ __VA_ARGS__ })
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WEFT_BUILDING) && defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/* Future constructors carry this: a future that is created and never awaited
 * does nothing, so discarding one is almost always a bug (Rust warns too). */
#if defined(__GNUC__)
#define WEFT_NODISCARD __attribute__((warn_unused_result))
#define WEFT_NORETURN __attribute__((noreturn))
#define WEFT_FALLTHROUGH __attribute__((fallthrough))
#define WEFT_PRINTF(a, b) __attribute__((format(printf, a, b)))
/* Private: for the inline fast paths of hot futures (weft/bufio.h), which
 * only pay when they are compiled into the awaiting poll. */
#define WEFT__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define WEFT_NODISCARD
#define WEFT_NORETURN _Noreturn
#define WEFT_FALLTHROUGH
#define WEFT_PRINTF(a, b)
#define WEFT__ALWAYS_INLINE inline
#endif

/* Debug checks in the public macros (today: WEFT_AWAIT's output-size
 * check, see weft/async.h). On unless NDEBUG is defined, like assert();
 * define WEFT_DEBUG to 0 or 1 before including weft to choose. */
#ifndef WEFT_DEBUG
#ifdef NDEBUG
#define WEFT_DEBUG 0
#else
#define WEFT_DEBUG 1
#endif
#endif

#define WEFT__STR2(x) #x
#define WEFT__STR(x) WEFT__STR2(x)
/* "file.c:123": the call site recorded by spawn and by misuse aborts. */
#define WEFT_SITE __FILE__ ":" WEFT__STR(__LINE__)

/* The output type of a future that produces nothing useful: a distinct
 * type (not a char), so WEFT_OUT_SIZE can tell it from a real uint8_t
 * output. Return it as WEFT_RETURN(WEFT_UNIT). */
typedef struct weft_unit_s {
    unsigned char unit_;
} weft_unit_t;
#ifdef __cplusplus
#define WEFT_UNIT (weft_unit_t{ 0 })
#else
#define WEFT_UNIT ((weft_unit_t){ 0 })
#endif

/* The link of an intrusive doubly-linked list (runtime/list.h has its
 * operations). Public only so that futures which wait in a queue
 * (weft/semaphore.h, weft/notify.h, weft/cancel.h) can embed their node by
 * value, with no allocation per wait and no cast: its fields are private,
 * and only weft's list functions touch them. */
typedef struct weft__dnode {
    struct weft__dnode *prev, *next;
} weft__dnode_t;

/* How a channel that hands copies of one value to many readers
 * (weft/broadcast.h, weft/watch.h) treats values that own something (a
 * pointer to a reference-counted buffer, say). Values are copied byte for
 * byte; then `clone` (may be NULL) is called on the reader's fresh copy
 * while the channel still holds the original, so it can take a reference
 * of its own; `drop` (may be NULL) releases a value the channel holds when
 * the channel overwrites or frees it. NULL ops, or both NULL: plain bytes. */
typedef struct weft_value_ops_s {
    void (*clone)(void *copy);
    void (*drop)(void *value);
} weft_value_ops_t;

/* Abort the process with "weft: <message> (at <site>)". Used for programming
 * errors (misuse), never for conditions a caller can handle. */
WEFT_API WEFT_NORETURN WEFT_PRINTF(2, 3) void weft_panic(const char *site, const char *fmt, ...);

#ifdef __cplusplus
}
#endif

#endif
