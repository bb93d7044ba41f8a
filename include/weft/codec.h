/* weft/codec.h - framing over byte streams: a lines codec and a
 * length-delimited codec, each with a "next frame" future over a buffered
 * reader (weft/bufio.h) and a "send frame" future over any stream.
 *
 * Receiving: the next-frame futures output int: 1, a frame is in *frame;
 * 0, the stream ended cleanly between frames (no more frames); or a
 * negative errno: WEFT_EPIPE when the stream ended inside a frame (a
 * truncated frame is never handed out as a whole one), WEFT_EMSGSIZE for a
 * frame over the codec's limit, WEFT_ENOMEM, or the inner stream's error.
 * A frame is a weft_slice_t: a view of bytes that stays valid until the
 * next call on the codec or its reader. It points into the reader's own
 * buffer when the frame arrived whole there (no copy), otherwise into a
 * buffer the codec owns, which never grows past the codec's limit.
 *
 * Cancellation: a codec keeps all of its progress (a partial line, a parsed
 * header, part of a payload) in itself, not in the future, so dropping a
 * next-frame future at any point loses nothing: the next one goes on where
 * it stopped. That makes them safe to race in a select.
 *
 * Sending: the send futures output int, 0 or a negative errno. They write
 * the frame (header or line ending included) with one vectored write
 * where the stream takes it, and over as many writes as it needs. They
 * hold the caller's payload pointer until they finish or are dropped. A
 * send over a buffered writer only buffers: flush it to push frames out.
 * A send dropped part way leaves part of a frame written: the stream is
 * then out of step with its peer.
 *
 * One task uses a codec's receive side at a time, and one its send side.
 */
#ifndef WEFT_CODEC_H
#define WEFT_CODEC_H

#include "bufio.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A view of len bytes at data (not NUL-terminated). */
typedef struct weft_slice_s {
    const char *data;
    size_t len;
} weft_slice_t;

/* The next-frame future of both codecs: output int (see above). */
typedef struct weft_codec_next_s {
    weft_future_t future;
    void *codec_;
    weft_slice_t *out_;
} weft_codec_next_t;

/* The send-frame future of both codecs: output int, 0 or a negative errno.
 * A frame is pre_ (a header), then the payload, then post_ (a line ending). */
typedef struct weft_codec_send_s {
    weft_future_t future;
    weft_stream_t *w_;
    const char *data_;
    size_t len_, done_;
    unsigned char pre_[8], post_[2];
    unsigned char pre_len_, post_len_;
    int err_; /* an error found at construction, output by the first poll */
} weft_codec_send_t;

/* ---- Lines --------------------------------------------------------------------- */

/* weft_lines_codec_init flags. */
enum {
    /* Keep a "\r" before the "\n" as part of the line (by default a line
     * ending may be "\n" or "\r\n" and neither is handed out). */
    WEFT_LINES_KEEP_CR = 1u << 0,
    /* At end of stream, hand out a last line that has no "\n" as a line
     * (by default it is WEFT_EPIPE: the peer stopped mid-line). */
    WEFT_LINES_ALLOW_UNTERMINATED = 1u << 1,
};

/* Private fields. */
typedef struct weft_lines_codec_s {
    weft_bufreader_t *r_;
    weft_stream_t *w_;
    size_t max_;
    unsigned flags_;
    weft_bytes_t acc_;  /* a line gathered across reads */
    size_t scanned_;    /* buffered bytes known to hold no "\n" */
    bool handed_;       /* acc_ holds the line last handed out */
    bool discarding_;   /* skipping the rest of a line over max_ */
} weft_lines_codec_t;

/* Sets up a lines codec reading lines from r (NULL: no receive side) and
 * sending to w (NULL: no send side; often weft_bufwriter_as of a writer).
 * max_line: the longest line accepted, not counting its line ending.
 * Returns 0, or WEFT_EINVAL (max_line 0 or over SIZE_MAX / 2, or unknown
 * flags). Allocates nothing until a line spans two reads. Ownership: c
 * owns its line buffer until weft_lines_codec_free; r and w stay the
 * caller's and must outlive c's use. Context: any thread. */
WEFT_API WEFT_NODISCARD int weft_lines_codec_init(weft_lines_codec_t *c, weft_bufreader_t *r, weft_stream_t *w,
                                                  size_t max_line, unsigned flags);
/* Frees c's line buffer. No future made from c may be pending. */
WEFT_API void weft_lines_codec_free(weft_lines_codec_t *c);
/* The next line, without its ending, in *line (output int, as above). A
 * line over max_line is WEFT_EMSGSIZE, found once max_line + 2 bytes are
 * held without a "\n": memory stays bounded. The next call then skips the
 * rest of that line and goes on with the following one, so a server may
 * answer the error and keep the connection. */
WEFT_API WEFT_NODISCARD weft_codec_next_t weft_lines_next(weft_lines_codec_t *c, weft_slice_t *line);
/* Sends len bytes of line followed by "\n". The line should hold no "\n"
 * itself (not checked). */
WEFT_API WEFT_NODISCARD weft_codec_send_t weft_lines_send(weft_lines_codec_t *c, const void *line, size_t len);

/* ---- Length-delimited frames ----------------------------------------------------- */

/* A frame is a header of header_bytes holding an unsigned length (big
 * endian unless little_endian), then that many payload bytes, give or
 * take `adjust`: payload length = header value + adjust (e.g. -4 with a
 * 4-byte header whose length counts the header itself). */
typedef struct weft_length_config_s {
    unsigned header_bytes; /* 1, 2, 4 or 8 */
    bool little_endian;
    size_t max_frame;      /* the largest payload accepted or sent; 0: 8 MiB */
    int64_t adjust;
} weft_length_config_t;

/* The default: a 4-byte big-endian length of the payload, at most 8 MiB. */
#define WEFT_LENGTH_CONFIG_DEFAULT { 4, false, 0, 0 }

enum weft__length_state { WEFT__LENGTH_HEADER, WEFT__LENGTH_PAYLOAD, WEFT__LENGTH_FAILED };

/* Private fields. */
typedef struct weft_length_codec_s {
    weft_bufreader_t *r_;
    weft_stream_t *w_;
    weft_length_config_t cfg_;
    weft_bytes_t frame_; /* a payload gathered across reads */
    size_t need_;        /* the payload length of the frame in progress */
    enum weft__length_state state_;
    int err_; /* WEFT__LENGTH_FAILED: what every later call returns */
} weft_length_codec_t;

/* Sets up a length-delimited codec receiving from r and sending to w
 * (either may be NULL), with *cfg (NULL: WEFT_LENGTH_CONFIG_DEFAULT).
 * Returns 0 or WEFT_EINVAL (a header width other than 1, 2, 4 or 8, a
 * reader whose capacity is under the header width, or |adjust| >= 2^62).
 * Allocates nothing until a payload spans two reads. Ownership as
 * weft_lines_codec_init. */
WEFT_API WEFT_NODISCARD int weft_length_codec_init(weft_length_codec_t *c, weft_bufreader_t *r, weft_stream_t *w,
                                                   const weft_length_config_t *cfg);
WEFT_API void weft_length_codec_free(weft_length_codec_t *c);
/* The next frame's payload in *frame (output int, as above). A header
 * announcing more than max_frame is WEFT_EMSGSIZE before anything is
 * allocated; one whose adjusted length is negative is WEFT_EINVAL. After
 * any error but WEFT_ENOMEM the codec has lost its place in the stream:
 * every later call returns the same error. */
WEFT_API WEFT_NODISCARD weft_codec_next_t weft_length_next(weft_length_codec_t *c, weft_slice_t *frame);
/* Sends a header for len bytes, then the payload. Output WEFT_EMSGSIZE
 * (nothing written) when len is over max_frame or the header cannot hold
 * len - adjust. */
WEFT_API WEFT_NODISCARD weft_codec_send_t weft_length_send(weft_length_codec_t *c, const void *payload, size_t len);

#ifdef __cplusplus
}
#endif

#endif
