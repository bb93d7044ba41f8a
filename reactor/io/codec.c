/* reactor/io/codec.c - the lines and length-delimited codecs (weft/codec.h).
 *
 * Both keep their progress in the codec itself, so their next-frame
 * futures hold only pointers and can be dropped anywhere: the lines codec
 * keeps a partial line in the reader's buffer (or, once that is full, in
 * acc_) and how far it has searched; the length codec keeps its state
 * (header or payload), the payload length and the bytes gathered so far.
 * A frame that arrived whole in the reader's buffer is handed out as a
 * view of it, with no copy.
 */
#include <string.h>

#include "../../runtime/internal.h"
#include "../../runtime/nonnull.h"
#include "bufio_internal.h"
#include "weft/codec.h"

#define LENGTH_DEFAULT_MAX ((size_t)8 << 20) /* 8 MiB, as Tokio's LengthDelimitedCodec */

static weft_poll_t next_ready(void *out, int rc)
{
    if (out != NULL)
        *(int *)out = rc;
    return WEFT_READY;
}

/* ---- Sending: one frame as up to three buffers ------------------------------------------ */

static weft_poll_t send_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_codec_send_t *op = (weft_codec_send_t *)(void *)f;
    WEFT__COOP_ENTER(cx);
    if (op->err_ != 0)
        return next_ready(out, op->err_);
    size_t total = op->pre_len_ + op->len_ + op->post_len_;
    while (op->done_ < total) {
        /* The three parts, less the bytes written so far. */
        struct iovec iov[3];
        size_t cnt = 0, skip = op->done_;
        const struct {
            const void *p;
            size_t len;
        } parts[3] = { { op->pre_, op->pre_len_ }, { op->data_, op->len_ }, { op->post_, op->post_len_ } };
        for (int i = 0; i < 3; i++) {
            if (skip >= parts[i].len) {
                skip -= parts[i].len;
                continue;
            }
            iov[cnt].iov_base = (char *)(uintptr_t)parts[i].p + skip;
            iov[cnt].iov_len = parts[i].len - skip;
            cnt++;
            skip = 0;
        }
        ssize_t n;
        if (weft_stream_poll_writev(op->w_, cx, iov, cnt, &n) == WEFT_PENDING)
            return weft__coop_pending();
        if (n <= 0)
            return next_ready(out, n < 0 ? (int)n : WEFT_EPIPE);
        op->done_ += (size_t)n;
    }
    return next_ready(out, 0);
}

static const weft_future_vtable_t send_vtable = {
    send_poll, NULL, NULL, sizeof(weft_codec_send_t), sizeof(int), "weft_codec_send",
};

static weft_codec_send_t send_new(weft_stream_t *w, const void *data, size_t len)
{
    weft_codec_send_t op;
    memset(&op, 0, sizeof op);
    op.future.vtable = &send_vtable;
    op.w_ = w;
    op.data_ = data;
    op.len_ = len;
    return op;
}

/* ---- Lines ----------------------------------------------------------------------------------- */

int weft_lines_codec_init(weft_lines_codec_t *c, weft_bufreader_t *r, weft_stream_t *w, size_t max_line, unsigned flags)
{
    WEFT__REQUIRE("weft_lines_codec_init", c);
    memset(c, 0, sizeof *c);
    if (max_line == 0 || max_line > SIZE_MAX / 2 || (flags & ~(unsigned)(WEFT_LINES_KEEP_CR | WEFT_LINES_ALLOW_UNTERMINATED)))
        return WEFT_EINVAL;
    c->r_ = r;
    c->w_ = w;
    c->max_ = max_line;
    c->flags_ = flags;
    return 0;
}

void weft_lines_codec_free(weft_lines_codec_t *c)
{
    WEFT__REQUIRE("weft_lines_codec_free", c);
    weft_bytes_free(&c->acc_);
}

/* Skips the rest of a line that was over the limit. Ready with 1 once its
 * "\n" is consumed, else with 0 (end of stream) or an error. */
static weft_poll_t lines_discard(weft_lines_codec_t *c, weft_context_t *cx, int *rc)
{
    for (;;) {
        const void *data;
        ssize_t n;
        if (weft_bufreader_poll_fill_buf(c->r_, cx, &data, &n) == WEFT_PENDING)
            return WEFT_PENDING;
        if (n <= 0) {
            *rc = (int)n;
            return WEFT_READY;
        }
        const char *hit = memchr(data, '\n', (size_t)n);
        weft_bufreader_consume(c->r_, hit != NULL ? (size_t)(hit - (const char *)data) + 1 : (size_t)n);
        if (hit != NULL) {
            c->discarding_ = false;
            *rc = 1;
            return WEFT_READY;
        }
    }
}

/* Starts a new line: forgets the last one handed out. */
static void lines_reset(weft_lines_codec_t *c)
{
    weft_bytes_clear(&c->acc_);
    c->scanned_ = 0;
    c->handed_ = false;
}

static weft_poll_t lines_next_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_codec_next_t *op = (weft_codec_next_t *)(void *)f;
    WEFT__COOP_ENTER(cx);
    weft_lines_codec_t *c = op->codec_;
    if (c->handed_)
        lines_reset(c);
    if (c->discarding_) {
        int rc;
        if (lines_discard(c, cx, &rc) == WEFT_PENDING)
            return weft__coop_pending();
        if (rc <= 0)
            return next_ready(out, rc);
    }
    bool keep_cr = (c->flags_ & WEFT_LINES_KEEP_CR) != 0;
    size_t window = c->max_ + (keep_cr ? 1 : 2); /* the line and its ending */
    weft__until_t res;
    if (weft__bufreader_poll_until(c->r_, cx, '\n', &c->acc_, window, true, &c->scanned_, &res) == WEFT_PENDING)
        return weft__coop_pending();
    switch (res.kind) {
    case WEFT__UNTIL_END:
        return next_ready(out, 0);
    case WEFT__UNTIL_ERR:
        if (res.err == WEFT_EMSGSIZE) { /* no "\n" within the window: skip the rest of the line next time */
            lines_reset(c);
            c->discarding_ = true;
        }
        return next_ready(out, res.err);
    case WEFT__UNTIL_TAIL:
        c->handed_ = true;
        if (!(c->flags_ & WEFT_LINES_ALLOW_UNTERMINATED))
            return next_ready(out, WEFT_EPIPE); /* the peer stopped mid-line */
        break;
    case WEFT__UNTIL_LINE:
        c->handed_ = true;
        res.len--; /* the "\n" */
        if (!keep_cr && res.len > 0 && res.data[res.len - 1] == '\r')
            res.len--;
        break;
    }
    if (res.len > c->max_) /* whole, but over the limit: already consumed, nothing to skip */
        return next_ready(out, WEFT_EMSGSIZE);
    op->out_->data = res.data;
    op->out_->len = res.len;
    return next_ready(out, 1);
}

static const weft_future_vtable_t lines_next_vtable = {
    lines_next_poll, NULL, NULL, sizeof(weft_codec_next_t), sizeof(int), "weft_lines_next",
};

weft_codec_next_t weft_lines_next(weft_lines_codec_t *c, weft_slice_t *line)
{
    WEFT__REQUIRE("weft_lines_next", c);
    WEFT__REQUIRE("weft_lines_next", line);
    if (c->r_ == NULL)
        weft_panic(WEFT_SITE, "weft_lines_next: the codec has no reader");
    return (weft_codec_next_t){ { &lines_next_vtable }, c, line };
}

weft_codec_send_t weft_lines_send(weft_lines_codec_t *c, const void *line, size_t len)
{
    WEFT__REQUIRE("weft_lines_send", c);
    if (len > 0)
        WEFT__REQUIRE("weft_lines_send", line);
    if (c->w_ == NULL)
        weft_panic(WEFT_SITE, "weft_lines_send: the codec has no writer");
    weft_codec_send_t op = send_new(c->w_, line, len);
    op.post_[0] = '\n';
    op.post_len_ = 1;
    return op;
}

/* ---- Length-delimited frames ------------------------------------------------------------------ */

int weft_length_codec_init(weft_length_codec_t *c, weft_bufreader_t *r, weft_stream_t *w,
                           const weft_length_config_t *cfg)
{
    WEFT__REQUIRE("weft_length_codec_init", c);
    static const weft_length_config_t dflt = WEFT_LENGTH_CONFIG_DEFAULT;
    memset(c, 0, sizeof *c);
    c->cfg_ = cfg != NULL ? *cfg : dflt;
    unsigned hb = c->cfg_.header_bytes;
    int64_t limit = (int64_t)1 << 62;
    if ((hb != 1 && hb != 2 && hb != 4 && hb != 8) || (r != NULL && r->cap_ < hb) || c->cfg_.adjust >= limit ||
        c->cfg_.adjust <= -limit)
        return WEFT_EINVAL;
    if (c->cfg_.max_frame == 0)
        c->cfg_.max_frame = LENGTH_DEFAULT_MAX;
    c->r_ = r;
    c->w_ = w;
    return 0;
}

void weft_length_codec_free(weft_length_codec_t *c)
{
    WEFT__REQUIRE("weft_length_codec_free", c);
    weft_bytes_free(&c->frame_);
}

static uint64_t header_decode(const weft_length_config_t *cfg, const unsigned char *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < cfg->header_bytes; i++)
        v = v << 8 | p[cfg->little_endian ? cfg->header_bytes - 1 - i : i];
    return v;
}

static void header_encode(const weft_length_config_t *cfg, uint64_t v, unsigned char *p)
{
    for (unsigned i = 0; i < cfg->header_bytes; i++, v >>= 8)
        p[cfg->little_endian ? i : cfg->header_bytes - 1 - i] = (unsigned char)v;
}

/* The payload length a header announces: 0, or WEFT_EMSGSIZE / WEFT_EINVAL. */
static int header_length(const weft_length_config_t *cfg, uint64_t v, size_t *len)
{
    uint64_t n;
    if (cfg->adjust < 0) {
        uint64_t a = (uint64_t)-cfg->adjust; /* |adjust| < 2^62: no overflow */
        if (v < a)
            return WEFT_EINVAL;
        n = v - a;
    } else {
        if (v > UINT64_MAX - (uint64_t)cfg->adjust)
            return WEFT_EMSGSIZE;
        n = v + (uint64_t)cfg->adjust;
    }
    if (n > cfg->max_frame)
        return WEFT_EMSGSIZE;
    *len = (size_t)n;
    return 0;
}

static weft_poll_t length_fail(weft_length_codec_t *c, void *out, int err)
{
    c->state_ = WEFT__LENGTH_FAILED;
    c->err_ = err;
    return next_ready(out, err);
}

/* Hands out the frame in progress: need_ bytes, in place or in frame_. */
static weft_poll_t length_hand_out(weft_length_codec_t *c, weft_slice_t *frame, const char *data, void *out)
{
    frame->data = data;
    frame->len = c->need_;
    c->state_ = WEFT__LENGTH_HEADER;
    return next_ready(out, 1);
}

static weft_poll_t length_next_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_codec_next_t *op = (weft_codec_next_t *)(void *)f;
    WEFT__COOP_ENTER(cx);
    weft_length_codec_t *c = op->codec_;
    weft_bufreader_t *r = c->r_;
    const weft_length_config_t *cfg = &c->cfg_;
    ssize_t n;
    if (c->state_ == WEFT__LENGTH_FAILED)
        return next_ready(out, c->err_);
    if (c->state_ == WEFT__LENGTH_HEADER) {
        while (r->end_ - r->pos_ < cfg->header_bytes) {
            if (weft__bufreader_poll_more(r, cx, &n) == WEFT_PENDING)
                return weft__coop_pending();
            if (n < 0)
                return length_fail(c, out, (int)n);
            if (n == 0) /* end of stream: clean between frames, else mid-header */
                return r->end_ == r->pos_ ? next_ready(out, 0) : length_fail(c, out, WEFT_EPIPE);
        }
        int rc = header_length(cfg, header_decode(cfg, (const unsigned char *)r->buf_ + r->pos_), &c->need_);
        if (rc != 0)
            return length_fail(c, out, rc);
        r->pos_ += cfg->header_bytes;
        weft_bytes_clear(&c->frame_);
        c->state_ = WEFT__LENGTH_PAYLOAD;
    }
    size_t held = r->end_ - r->pos_;
    if (c->frame_.len == 0 && held >= c->need_) { /* whole in the reader's buffer */
        r->pos_ += c->need_;
        return length_hand_out(c, op->out_, r->buf_ + r->pos_ - c->need_, out);
    }
    if (weft_bytes_reserve(&c->frame_, c->need_ - c->frame_.len) != 0)
        return next_ready(out, WEFT_ENOMEM); /* nothing lost: a later call retries */
    while (c->frame_.len < c->need_) {
        size_t want = c->need_ - c->frame_.len;
        /* The reader's read hands out what it holds first, and reads a large
         * remainder straight into frame_. */
        if (weft_stream_poll_read(&r->stream_, cx, c->frame_.data + c->frame_.len, want, &n) == WEFT_PENDING)
            return weft__coop_pending();
        if (n <= 0)
            return length_fail(c, out, n < 0 ? (int)n : WEFT_EPIPE); /* the stream ended mid-frame */
        c->frame_.len += (size_t)n;
    }
    return length_hand_out(c, op->out_, c->frame_.data, out);
}

static const weft_future_vtable_t length_next_vtable = {
    length_next_poll, NULL, NULL, sizeof(weft_codec_next_t), sizeof(int), "weft_length_next",
};

weft_codec_next_t weft_length_next(weft_length_codec_t *c, weft_slice_t *frame)
{
    WEFT__REQUIRE("weft_length_next", c);
    WEFT__REQUIRE("weft_length_next", frame);
    if (c->r_ == NULL)
        weft_panic(WEFT_SITE, "weft_length_next: the codec has no reader");
    return (weft_codec_next_t){ { &length_next_vtable }, c, frame };
}

weft_codec_send_t weft_length_send(weft_length_codec_t *c, const void *payload, size_t len)
{
    WEFT__REQUIRE("weft_length_send", c);
    if (len > 0)
        WEFT__REQUIRE("weft_length_send", payload);
    if (c->w_ == NULL)
        weft_panic(WEFT_SITE, "weft_length_send: the codec has no writer");
    const weft_length_config_t *cfg = &c->cfg_;
    weft_codec_send_t op = send_new(c->w_, payload, len);
    /* The header holds len - adjust, which must fit in header_bytes
     * (len < 2^62 and |adjust| < 2^62: the difference cannot overflow). */
    if (len > cfg->max_frame || len >= (size_t)1 << 62) {
        op.err_ = WEFT_EMSGSIZE;
        return op;
    }
    int64_t v = (int64_t)len - cfg->adjust;
    unsigned bits = cfg->header_bytes * 8;
    if (v < 0 || (bits < 64 && (uint64_t)v >> bits != 0)) {
        op.err_ = WEFT_EMSGSIZE;
        return op;
    }
    header_encode(cfg, (uint64_t)v, op.pre_);
    op.pre_len_ = (unsigned char)cfg->header_bytes;
    return op;
}
