/* reactor/io/bufio_internal.h - what the codecs (codec.c) use of the
 * buffered reader (bufread.c): reading more behind the bytes already
 * buffered, and the delimiter search shared by read_until and the lines
 * codec. */
#ifndef WEFT_BUFIO_INTERNAL_H
#define WEFT_BUFIO_INTERNAL_H

#include "../../runtime/context.h"
#include "weft/bufio.h"

/* The cooperative budget (weft_coop_proceed): a future of the buffered
 * family that goes to its inner stream spends one unit per poll, and a
 * poll that ends pending gives it back; one served from the buffer alone
 * spends one unit in WEFT__BUFFERED_EVERY (weft__coop_buffered,
 * weft/bufio.h: it touches no resource, and a unit per call was a tenth of
 * a line's cost in lines_throughput). So a task reading lines from a
 * buffer that its socket keeps full still yields, within the time slice or
 * every 32768 lines. */
#define WEFT__COOP_ENTER(cx)            \
    do {                                \
        if (!weft_coop_proceed(cx))     \
            return WEFT_PENDING;        \
    } while (0)
static inline weft_poll_t weft__coop_pending(void)
{
    weft__coop_refund();
    return WEFT_PENDING;
}

/* Reads once from the inner stream into the free room behind the buffered
 * bytes, moving them to the front of the buffer first. *n: the bytes read
 * (0 at end of stream) or a negative errno. The buffer must not be full. */
weft_poll_t weft__bufreader_poll_more(weft_bufreader_t *r, weft_context_t *cx, ssize_t *n);

/* What weft__bufreader_poll_until found. */
typedef enum weft__until_kind {
    WEFT__UNTIL_LINE, /* a line ending with the delimiter */
    WEFT__UNTIL_TAIL, /* the stream ended after a line without one */
    WEFT__UNTIL_END,  /* the stream ended between lines */
    WEFT__UNTIL_ERR,  /* err: WEFT_EMSGSIZE, WEFT_ENOMEM or the inner stream's */
} weft__until_kind_t;

typedef struct weft__until {
    weft__until_kind_t kind;
    const char *data; /* LINE and TAIL: the line, in acc or (view) in the reader's buffer */
    size_t len;
    int err;
} weft__until_t;

/* Looks for the next line ending with delim, reading as needed, within a
 * window of max bytes counting what acc already holds. Bytes are consumed
 * from the reader as they are found and appended to acc; but with `view`
 * set, a line found whole in the reader's buffer while acc is empty is
 * handed out in place (no copy; valid until the reader is next polled),
 * and a partial line stays in the buffer until the buffer fills. *scanned
 * (view only) counts the buffered bytes already searched; the caller
 * zeroes it when it starts a line. On WEFT_EMSGSIZE acc holds the window
 * (max bytes) and the rest of the line is unread. */
weft_poll_t weft__bufreader_poll_until(weft_bufreader_t *r, weft_context_t *cx, unsigned char delim, weft_bytes_t *acc,
                                       size_t max, bool view, size_t *scanned, weft__until_t *res);

#endif
