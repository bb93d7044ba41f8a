/* tests/test_bufio.c - buffered readers and writers and the codecs
 * (weft/bufio.h, weft/codec.h).
 *
 * Most tests run over a scripted stream (script_t below): its reads hand
 * out the input in scripted chunk sizes with a pending between chunks, and
 * its writes take at most k bytes per call, counting every call. Their
 * futures are polled by hand on the test thread (drive()) with a counting
 * waker: the script wakes at once, so a pending is always followed by
 * progress. The last tests run the codecs over TCP on 127.0.0.1 on every
 * runtime shape. */
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "testlib.h"

/* ---- The scripted stream ---------------------------------------------------------------- */
typedef struct {
    weft_stream_t s;
    const char *in;
    size_t in_len, in_pos;
    const size_t *chunks; /* read sizes in turn (then `chunk`); NULL: `chunk` */
    size_t nchunks, ci, chunk;
    bool pend;     /* a pending (woken at once) before every read and write */
    bool pended;
    int read_err;  /* given at the end of input instead of 0 */
    weft_bytes_t out;
    size_t wmax;   /* bytes a write takes at most; 0: all */
    int writes, writevs, flushes, shutdowns, reads;
    size_t largest_write;
    bool shut;
} script_t;

static weft_poll_t maybe_pend(script_t *sc, weft_context_t *cx)
{
    if (sc->pend && !sc->pended) {
        sc->pended = true;
        weft_waker_wake_by_ref(cx->waker);
        return WEFT_PENDING;
    }
    sc->pended = false;
    return WEFT_READY;
}

static weft_poll_t sc_read(weft_stream_t *s, weft_context_t *cx, void *buf, size_t len, ssize_t *n)
{
    script_t *sc = (script_t *)(void *)s;
    if (maybe_pend(sc, cx) == WEFT_PENDING)
        return WEFT_PENDING;
    sc->reads++;
    size_t left = sc->in_len - sc->in_pos;
    if (left == 0) {
        *n = sc->read_err;
        return WEFT_READY;
    }
    size_t c = sc->chunks != NULL && sc->ci < sc->nchunks ? sc->chunks[sc->ci++] : sc->chunk;
    if (c == 0 || c > left)
        c = left;
    if (c > len)
        c = len;
    memcpy(buf, sc->in + sc->in_pos, c);
    sc->in_pos += c;
    *n = (ssize_t)c;
    return WEFT_READY;
}

static ssize_t sc_take(script_t *sc, const void *p, size_t len)
{
    if (sc->shut)
        return WEFT_EPIPE;
    if (sc->wmax != 0 && len > sc->wmax)
        len = sc->wmax;
    if (len > sc->largest_write)
        sc->largest_write = len;
    ck_assert_int_eq(weft_bytes_append(&sc->out, p, len), 0);
    return (ssize_t)len;
}

static weft_poll_t sc_write(weft_stream_t *s, weft_context_t *cx, const void *buf, size_t len, ssize_t *n)
{
    script_t *sc = (script_t *)(void *)s;
    if (maybe_pend(sc, cx) == WEFT_PENDING)
        return WEFT_PENDING;
    sc->writes++;
    *n = sc_take(sc, buf, len);
    return WEFT_READY;
}

static weft_poll_t sc_writev(weft_stream_t *s, weft_context_t *cx, const struct iovec *iov, size_t cnt, ssize_t *n)
{
    script_t *sc = (script_t *)(void *)s;
    if (maybe_pend(sc, cx) == WEFT_PENDING)
        return WEFT_PENDING;
    sc->writevs++;
    size_t total = 0, room = sc->wmax != 0 ? sc->wmax : SIZE_MAX;
    for (size_t i = 0; i < cnt && room > 0; i++) {
        size_t k = iov[i].iov_len < room ? iov[i].iov_len : room;
        ssize_t t = sc_take(sc, iov[i].iov_base, k);
        if (t < 0) {
            *n = t;
            return WEFT_READY;
        }
        total += k;
        room -= k;
    }
    if (total > sc->largest_write)
        sc->largest_write = total;
    *n = (ssize_t)total;
    return WEFT_READY;
}

static weft_poll_t sc_flush(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    script_t *sc = (script_t *)(void *)s;
    if (maybe_pend(sc, cx) == WEFT_PENDING)
        return WEFT_PENDING;
    sc->flushes++;
    *rc = 0;
    return WEFT_READY;
}

static weft_poll_t sc_shutdown(weft_stream_t *s, weft_context_t *cx, int *rc)
{
    script_t *sc = (script_t *)(void *)s;
    if (maybe_pend(sc, cx) == WEFT_PENDING)
        return WEFT_PENDING;
    sc->shutdowns++;
    sc->shut = true;
    *rc = 0;
    return WEFT_READY;
}

static const weft_stream_vtable_t script_vt = { sc_read, sc_write, sc_writev, sc_flush, sc_shutdown, 0, "script" };
/* The same without writev: the entry point falls back to poll_write. */
static const weft_stream_vtable_t script_nov_vt = { sc_read, sc_write, NULL, sc_flush, sc_shutdown, 0, "script" };

static script_t script(const char *in, size_t len, size_t chunk, bool pend)
{
    script_t sc;
    memset(&sc, 0, sizeof sc);
    sc.s.vtable = &script_vt;
    sc.in = in;
    sc.in_len = len;
    sc.chunk = chunk;
    sc.pend = pend;
    return sc;
}

static void script_free(script_t *sc)
{
    weft_bytes_free(&sc->out);
}

/* Polls f by hand until it is ready; returns the pendings seen. */
static int drive(weft_future_t *f, void *out)
{
    counter_t c = { 0 };
    weft_waker_t w = counter_waker(&c);
    weft_context_t cx = { &w };
    int pendings = 0;
    while (weft_future_poll(f, &cx, out) == WEFT_PENDING) {
        ck_assert_int_gt(c.wakes, 0); /* a pending always arranged a wake */
        c.wakes = 0;
        ck_assert_int_lt(++pendings, 1000000);
    }
    weft_future_drop(f);
    ck_assert_int_eq(c.clones, c.drops);
    return pendings;
}

/* Polls f once; true if it is still pending. */
static bool poll_once(weft_future_t *f, void *out)
{
    counter_t c = { 0 };
    weft_waker_t w = counter_waker(&c);
    weft_context_t cx = { &w };
    return weft_future_poll(f, &cx, out) == WEFT_PENDING;
}

static int next_line(weft_lines_codec_t *c, weft_slice_t *line)
{
    weft_codec_next_t f = weft_lines_next(c, line);
    int rc = -1000;
    drive(WEFT_FUTURE(&f), &rc);
    return rc;
}

static int next_frame(weft_length_codec_t *c, weft_slice_t *frame)
{
    weft_codec_next_t f = weft_length_next(c, frame);
    int rc = -1000;
    drive(WEFT_FUTURE(&f), &rc);
    return rc;
}

#define ASSERT_SLICE(sl, str)                                                                            \
    do {                                                                                                 \
        ck_assert_uint_eq((sl).len, strlen(str));                                                        \
        ck_assert_msg(memcmp((sl).data, (str), (sl).len) == 0, "got \"%.*s\", want \"%s\"", (int)(sl).len, \
                      (sl).data, (str));                                                                 \
    } while (0)

/* ---- Lines at every split point ----------------------------------------------------------- */
static const char LINES_IN[] = "alpha\r\nbeta\n\ngamma delta epsilon\r\n\r\nz\n";
static const char *const LINES_OUT[] = { "alpha", "beta", "", "gamma delta epsilon", "", "z" };
#define N_LINES_OUT (sizeof LINES_OUT / sizeof LINES_OUT[0])

/* Reads every line of LINES_IN given in chunks (or two parts split at
 * `split`), through a reader of capacity cap, and checks them. */
static void lines_case(size_t cap, size_t chunk, size_t split)
{
    size_t len = strlen(LINES_IN);
    size_t parts[2] = { split, len - split };
    script_t sc = script(LINES_IN, len, chunk, true);
    if (split != 0) {
        sc.chunks = parts;
        sc.nchunks = 2;
    }
    weft_bufreader_t r;
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, cap), 0);
    weft_lines_codec_t c;
    ck_assert_int_eq(weft_lines_codec_init(&c, &r, NULL, 64, 0), 0);
    weft_slice_t line;
    for (size_t i = 0; i < N_LINES_OUT; i++) {
        ck_assert_int_eq(next_line(&c, &line), 1);
        ASSERT_SLICE(line, LINES_OUT[i]);
    }
    ck_assert_int_eq(next_line(&c, &line), 0);
    ck_assert_int_eq(next_line(&c, &line), 0); /* and again */
    weft_lines_codec_free(&c);
    weft_bufreader_free(&r);
    script_free(&sc);
}

START_TEST(lines_every_split)
{
    size_t len = strlen(LINES_IN);
    size_t caps[] = { 4, 7, 16, 1024 };
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        for (size_t split = 1; split < len; split++)
            lines_case(caps[k], 0, split);
        for (size_t chunk = 1; chunk <= len; chunk++)
            lines_case(caps[k], chunk, 0);
    }
}
END_TEST

/* The line search the inline read_until uses (16 bytes at a time, then
 * memchr) finds what memchr finds: the first delimiter, or none, for every
 * length up to past its 64-byte stretch and every position. In the first
 * loop the bytes searched end where a page with no access begins (so a
 * load past the window would fault), and their start takes every
 * alignment as the length varies; the second loop tries every alignment
 * of a window whose last byte, with its high bit set, is the delimiter,
 * and the window one byte shorter, which must not find it. */
START_TEST(find_byte_agrees_with_memchr)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(map, MAP_FAILED);
    ck_assert_int_eq(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
    char *end = map + pg;
    long checked = 0;
    for (size_t n = 0; n <= 100; n++) {
        for (long pos = -1; pos < (long)n; pos++) {
            for (int second = 0; second < 2; second++) {
                char *p = end - n;
                for (size_t i = 0; i < n; i++)
                    p[i] = (char)('a' + i % 26);
                if (pos >= 0)
                    p[pos] = '\n';
                if (second && pos >= 0 && (size_t)pos + 3 < n)
                    p[pos + 3] = '\n';
                ck_assert_ptr_eq(weft__find_byte(p, '\n', n), memchr(p, '\n', n));
                checked++;
            }
        }
    }
    /* Every alignment of a window that holds its delimiter at the end. */
    for (size_t off = 0; off < 16; off++) {
        for (size_t n = 1; n <= 70; n++) {
            char *p = end - n - off;
            memset(p, 'x', n + off);
            p[n - 1] = (char)0x80; /* a byte with its high bit set as the delimiter */
            ck_assert_ptr_eq(weft__find_byte(p, 0x80, n), p + n - 1);
            ck_assert_ptr_null(weft__find_byte(p, 0x80, n - 1));
            checked += 2;
        }
    }
    ck_assert_int_gt(checked, 10000);
    munmap(map, (size_t)pg * 2);
}
END_TEST

/* read_line keeps the "\n"; the same input at every chunk size. */
START_TEST(read_line_every_chunk)
{
    size_t len = strlen(LINES_IN);
    for (size_t cap = 1; cap <= 9; cap += 4) {
        for (size_t chunk = 1; chunk <= len; chunk++) {
            script_t sc = script(LINES_IN, len, chunk, true);
            weft_bufreader_t r;
            ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, cap), 0);
            weft_bytes_t out = WEFT_BYTES_INIT, all = WEFT_BYTES_INIT;
            int lines = 0;
            for (;;) {
                weft_bytes_clear(&out);
                weft_read_until_t f = weft_bufreader_read_line(&r, &out, 100);
                ssize_t n = -1000;
                drive(WEFT_FUTURE(&f), &n);
                ck_assert_int_ge(n, 0);
                if (n == 0)
                    break;
                ck_assert_int_eq((size_t)n, out.len);
                ck_assert_int_eq(out.data[out.len - 1], '\n');
                ck_assert_ptr_null(memchr(out.data, '\n', out.len - 1));
                ck_assert_int_eq(weft_bytes_append(&all, out.data, out.len), 0);
                lines++;
            }
            ck_assert_int_eq(lines, (int)N_LINES_OUT);
            ck_assert_uint_eq(all.len, len);
            ck_assert(memcmp(all.data, LINES_IN, len) == 0);
            weft_bytes_free(&out);
            weft_bytes_free(&all);
            weft_bufreader_free(&r);
            script_free(&sc);
        }
    }
}
END_TEST

/* Per-byte polls are not needed: one memchr per chunk, so a 1000-line
 * input in large chunks takes a handful of reads. */
START_TEST(read_line_reads_per_chunk)
{
    static char in[1000 * 10];
    for (int i = 0; i < 1000; i++)
        memcpy(in + i * 10, "123456789\n", 10);
    script_t sc = script(in, sizeof in, 0, false);
    weft_bufreader_t r;
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 4096), 0);
    weft_bytes_t out = WEFT_BYTES_INIT;
    int lines = 0;
    for (;;) {
        weft_bytes_clear(&out);
        weft_read_until_t f = weft_bufreader_read_line(&r, &out, 0);
        ssize_t n = -1;
        ck_assert_int_eq(drive(WEFT_FUTURE(&f), &n), 0);
        if (n == 0)
            break;
        ck_assert_int_eq(n, 10);
        lines++;
    }
    ck_assert_int_eq(lines, 1000);
    ck_assert_int_le(sc.reads, 5); /* 10000 bytes / 4096, plus the end */
    weft_bytes_free(&out);
    weft_bufreader_free(&r);
    script_free(&sc);
}
END_TEST

/* ---- Long lines, line endings, the end of stream -------------------------------------------- */
START_TEST(line_too_long)
{
    for (size_t cap = 3; cap <= 64; cap *= 4) {
        const char in[] = "abcdefghijklmnop\nok\nabcdef\nabcde\r\nabcdef";
        script_t sc = script(in, strlen(in), 3, true);
        weft_bufreader_t r;
        ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, cap), 0);
        weft_lines_codec_t c;
        ck_assert_int_eq(weft_lines_codec_init(&c, &r, NULL, 5, WEFT_LINES_ALLOW_UNTERMINATED), 0);
        weft_slice_t line;
        ck_assert_int_eq(next_line(&c, &line), WEFT_EMSGSIZE);
        ck_assert_uint_le(c.acc_.cap, 64); /* bounded: never the whole line */
        ck_assert_int_eq(next_line(&c, &line), 1); /* the rest of the long line is skipped */
        ASSERT_SLICE(line, "ok");
        ck_assert_int_eq(next_line(&c, &line), WEFT_EMSGSIZE); /* 6 bytes: one over */
        ck_assert_int_eq(next_line(&c, &line), 1);
        ASSERT_SLICE(line, "abcde"); /* "\r\n" does not count */
        ck_assert_int_eq(next_line(&c, &line), WEFT_EMSGSIZE); /* the unterminated tail is too long too */
        ck_assert_int_eq(next_line(&c, &line), 0);
        weft_lines_codec_free(&c);
        weft_bufreader_free(&r);
        script_free(&sc);
    }
}
END_TEST

START_TEST(read_until_max)
{
    const char in[] = "0123456789abcdef;rest;";
    script_t sc = script(in, strlen(in), 4, true);
    weft_bufreader_t r;
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 4), 0);
    weft_bytes_t out = WEFT_BYTES_INIT;
    weft_read_until_t f = weft_bufreader_read_until(&r, ';', &out, 10);
    ssize_t n = 0;
    drive(WEFT_FUTURE(&f), &n);
    ck_assert_int_eq(n, WEFT_EMSGSIZE);
    ck_assert_uint_eq(out.len, 10); /* exactly max held */
    ck_assert(memcmp(out.data, "0123456789", 10) == 0);
    weft_bytes_clear(&out);
    f = weft_bufreader_read_until(&r, ';', &out, 10);
    drive(WEFT_FUTURE(&f), &n);
    ck_assert_int_eq(n, 7); /* the rest of that line, then its delimiter */
    ck_assert(memcmp(out.data, "abcdef;", 7) == 0);
    weft_bytes_clear(&out);
    f = weft_bufreader_read_until(&r, ';', &out, 5); /* "rest;" is exactly max */
    drive(WEFT_FUTURE(&f), &n);
    ck_assert_int_eq(n, 5);
    weft_bytes_free(&out);
    weft_bufreader_free(&r);
    script_free(&sc);
}
END_TEST

START_TEST(crlf_handling)
{
    const char in[] = "a\r\n\r\nb\rc\n\r\r\n";
    for (int keep = 0; keep < 2; keep++) {
        script_t sc = script(in, strlen(in), 1, true);
        weft_bufreader_t r;
        ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 16), 0);
        weft_lines_codec_t c;
        ck_assert_int_eq(weft_lines_codec_init(&c, &r, NULL, 16, keep ? WEFT_LINES_KEEP_CR : 0), 0);
        weft_slice_t l;
        ck_assert_int_eq(next_line(&c, &l), 1);
        ASSERT_SLICE(l, keep ? "a\r" : "a");
        ck_assert_int_eq(next_line(&c, &l), 1);
        ASSERT_SLICE(l, keep ? "\r" : "");
        ck_assert_int_eq(next_line(&c, &l), 1);
        ASSERT_SLICE(l, "b\rc"); /* a lone "\r" is data */
        ck_assert_int_eq(next_line(&c, &l), 1);
        ASSERT_SLICE(l, keep ? "\r\r" : "\r"); /* only the one before "\n" goes */
        ck_assert_int_eq(next_line(&c, &l), 0);
        weft_lines_codec_free(&c);
        weft_bufreader_free(&r);
        script_free(&sc);
    }
}
END_TEST

START_TEST(closed_mid_line)
{
    const char in[] = "one\ntwo";
    for (int allow = 0; allow < 2; allow++) {
        script_t sc = script(in, strlen(in), 2, true);
        weft_bufreader_t r;
        ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 0), 0);
        weft_lines_codec_t c;
        ck_assert_int_eq(weft_lines_codec_init(&c, &r, NULL, 80, allow ? WEFT_LINES_ALLOW_UNTERMINATED : 0), 0);
        weft_slice_t l;
        ck_assert_int_eq(next_line(&c, &l), 1);
        ASSERT_SLICE(l, "one");
        if (allow) {
            ck_assert_int_eq(next_line(&c, &l), 1);
            ASSERT_SLICE(l, "two");
        } else {
            ck_assert_int_eq(next_line(&c, &l), WEFT_EPIPE);
        }
        ck_assert_int_eq(next_line(&c, &l), 0);
        weft_lines_codec_free(&c);
        weft_bufreader_free(&r);
        script_free(&sc);
    }
    /* read_line hands the unterminated tail out, then 0. */
    script_t sc = script(in, strlen(in), 0, false);
    weft_bufreader_t r;
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 0), 0);
    weft_bytes_t out = WEFT_BYTES_INIT;
    ssize_t n;
    for (int i = 0; i < 3; i++) {
        weft_bytes_clear(&out);
        weft_read_until_t f = weft_bufreader_read_line(&r, &out, 0);
        drive(WEFT_FUTURE(&f), &n);
        ck_assert_int_eq(n, i == 0 ? 4 : i == 1 ? 3 : 0);
    }
    /* An error from the stream comes through. */
    sc.read_err = WEFT_ECONNRESET;
    weft_read_until_t f = weft_bufreader_read_line(&r, &out, 0);
    drive(WEFT_FUTURE(&f), &n);
    ck_assert_int_eq(n, WEFT_ECONNRESET);
    weft_bytes_free(&out);
    weft_bufreader_free(&r);
    script_free(&sc);
}
END_TEST

/* ---- Length-delimited frames ---------------------------------------------------------------- */
static const char *const PAYLOADS[] = { "", "a", "hello, world", "", "0123456789012345678901234567890123456789" };
#define N_PAYLOADS (sizeof PAYLOADS / sizeof PAYLOADS[0])

/* Encodes PAYLOADS with cfg through the codec's send side. */
static void encode_all(const weft_length_config_t *cfg, weft_bytes_t *wire)
{
    script_t sc = script(NULL, 0, 0, true);
    sc.wmax = 3; /* short writes */
    weft_length_codec_t c;
    ck_assert_int_eq(weft_length_codec_init(&c, NULL, &sc.s, cfg), 0);
    for (size_t i = 0; i < N_PAYLOADS; i++) {
        weft_codec_send_t f = weft_length_send(&c, PAYLOADS[i], strlen(PAYLOADS[i]));
        int rc = -1;
        drive(WEFT_FUTURE(&f), &rc);
        ck_assert_int_eq(rc, 0);
    }
    weft_length_codec_free(&c);
    *wire = sc.out;
}

static void frames_case(const weft_length_config_t *cfg, const weft_bytes_t *wire, size_t cap, size_t chunk,
                        size_t split)
{
    size_t parts[2] = { split, wire->len - split };
    script_t sc = script(wire->data, wire->len, chunk, true);
    if (split != 0) {
        sc.chunks = parts;
        sc.nchunks = 2;
    }
    weft_bufreader_t r;
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, cap), 0);
    weft_length_codec_t c;
    ck_assert_int_eq(weft_length_codec_init(&c, &r, NULL, cfg), 0);
    weft_slice_t fr;
    for (size_t i = 0; i < N_PAYLOADS; i++) {
        ck_assert_int_eq(next_frame(&c, &fr), 1);
        ASSERT_SLICE(fr, PAYLOADS[i]);
    }
    ck_assert_int_eq(next_frame(&c, &fr), 0);
    weft_length_codec_free(&c);
    weft_bufreader_free(&r);
    script_free(&sc);
}

START_TEST(frames_every_split)
{
    weft_length_config_t cfgs[] = {
        { 1, false, 0, 0 }, { 2, false, 0, 0 }, { 2, true, 0, 0 }, { 4, false, 0, 0 },
        { 4, true, 0, -4 }, { 8, false, 0, 0 }, { 8, true, 100, -3 },
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        weft_bytes_t wire;
        encode_all(&cfgs[k], &wire);
        size_t hdrs = N_PAYLOADS * cfgs[k].header_bytes, body = 0;
        for (size_t i = 0; i < N_PAYLOADS; i++)
            body += strlen(PAYLOADS[i]);
        ck_assert_uint_eq(wire.len, hdrs + body);
        size_t caps[] = { 8, 13, 4096 };
        for (size_t ci = 0; ci < 3; ci++) {
            for (size_t split = 1; split < wire.len; split++)
                frames_case(&cfgs[k], &wire, caps[ci], 0, split);
            for (size_t chunk = 1; chunk <= 9; chunk++)
                frames_case(&cfgs[k], &wire, caps[ci], chunk, 0);
        }
        weft_bytes_free(&wire);
    }
}
END_TEST

START_TEST(frame_header_encoding)
{
    weft_length_config_t be = { 2, false, 0, 0 }, le = { 4, true, 0, -4 };
    weft_bytes_t w1, w2;
    encode_all(&be, &w1);
    encode_all(&le, &w2);
    /* "hello, world" (12 bytes) is the third frame: after 2+0 and 2+1 bytes. */
    ck_assert_int_eq((unsigned char)w1.data[5], 0);
    ck_assert_int_eq((unsigned char)w1.data[6], 12);
    /* Little endian, the header counting itself (adjust -4): 16, after
     * 4+0 and 4+1 bytes. */
    ck_assert_int_eq((unsigned char)w2.data[9], 16);
    ck_assert_int_eq((unsigned char)w2.data[10], 0);
    weft_bytes_free(&w1);
    weft_bytes_free(&w2);
}
END_TEST

START_TEST(frame_over_max)
{
    const unsigned char in[] = { 0, 0, 0x10, 0, 'x', 'y' }; /* announces 1 MiB */
    script_t sc = script((const char *)in, sizeof in, 0, false);
    weft_bufreader_t r;
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 0), 0);
    weft_length_config_t cfg = { 4, false, 1000, 0 };
    weft_length_codec_t c;
    ck_assert_int_eq(weft_length_codec_init(&c, &r, NULL, &cfg), 0);
    weft_slice_t fr;
    long before = weft__alloc_count();
    ck_assert_int_eq(next_frame(&c, &fr), WEFT_EMSGSIZE);
    ck_assert_int_eq(weft__alloc_count(), before); /* refused before any allocation */
    ck_assert_int_eq(next_frame(&c, &fr), WEFT_EMSGSIZE); /* sticky: the codec lost its place */
    /* Sending over the max, or more than the header can say, is refused. */
    weft_length_codec_free(&c);
    script_t out = script(NULL, 0, 0, false);
    weft_length_config_t small = { 1, false, 1000, 0 };
    ck_assert_int_eq(weft_length_codec_init(&c, NULL, &out.s, &small), 0);
    static char big[1001];
    int rc = 0;
    weft_codec_send_t f = weft_length_send(&c, big, 1001);
    drive(WEFT_FUTURE(&f), &rc);
    ck_assert_int_eq(rc, WEFT_EMSGSIZE);
    f = weft_length_send(&c, big, 256); /* one byte cannot hold 256 */
    drive(WEFT_FUTURE(&f), &rc);
    ck_assert_int_eq(rc, WEFT_EMSGSIZE);
    ck_assert_uint_eq(out.out.len, 0);
    /* A negative adjusted length is malformed. */
    weft_length_codec_free(&c);
    const unsigned char neg[] = { 2, 'a', 'b' };
    script_t sn = script((const char *)neg, sizeof neg, 0, false);
    weft_bufreader_t rn;
    ck_assert_int_eq(weft_bufreader_init(&rn, &sn.s, 0), 0);
    weft_length_config_t adj = { 1, false, 0, -4 };
    ck_assert_int_eq(weft_length_codec_init(&c, &rn, NULL, &adj), 0);
    ck_assert_int_eq(next_frame(&c, &fr), WEFT_EINVAL);
    weft_length_codec_free(&c);
    /* Bad configurations. */
    weft_length_config_t bad = { 3, false, 0, 0 };
    ck_assert_int_eq(weft_length_codec_init(&c, NULL, NULL, &bad), WEFT_EINVAL);
    weft_length_config_t wide = { 8, false, 0, 0 };
    weft_bufreader_t tiny;
    ck_assert_int_eq(weft_bufreader_init(&tiny, &sn.s, 4), 0);
    ck_assert_int_eq(weft_length_codec_init(&c, &tiny, NULL, &wide), WEFT_EINVAL);
    weft_bufreader_free(&tiny);
    weft_bufreader_free(&rn);
    weft_bufreader_free(&r);
    script_free(&sn);
    script_free(&out);
    script_free(&sc);
}
END_TEST

START_TEST(frame_closed_mid_frame)
{
    /* Cut the wire of two frames at every point: a cut at a frame boundary
     * is a clean end (0), anywhere else WEFT_EPIPE. */
    const unsigned char wire[] = { 0, 3, 'a', 'b', 'c', 0, 2, 'd', 'e' };
    for (size_t cut = 0; cut <= sizeof wire; cut++) {
        script_t sc = script((const char *)wire, cut, 1, true);
        weft_bufreader_t r;
        ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 8), 0);
        weft_length_config_t cfg = { 2, false, 0, 0 };
        weft_length_codec_t c;
        ck_assert_int_eq(weft_length_codec_init(&c, &r, NULL, &cfg), 0);
        weft_slice_t fr;
        int want_frames = cut >= 9 ? 2 : cut >= 5 ? 1 : 0;
        for (int i = 0; i < want_frames; i++)
            ck_assert_int_eq(next_frame(&c, &fr), 1);
        bool boundary = cut == 0 || cut == 5 || cut == 9;
        ck_assert_int_eq(next_frame(&c, &fr), boundary ? 0 : WEFT_EPIPE);
        if (!boundary)
            ck_assert_int_eq(next_frame(&c, &fr), WEFT_EPIPE);
        weft_length_codec_free(&c);
        weft_bufreader_free(&r);
        script_free(&sc);
    }
}
END_TEST

START_TEST(zero_length_frames)
{
    const unsigned char wire[] = { 0, 0, 0, 1, 'q', 0 };
    script_t sc = script((const char *)wire, sizeof wire, 1, true);
    weft_bufreader_t r;
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 4), 0);
    weft_length_config_t cfg = { 1, false, 0, 0 };
    weft_length_codec_t c;
    ck_assert_int_eq(weft_length_codec_init(&c, &r, NULL, &cfg), 0);
    weft_slice_t fr;
    const char *want[] = { "", "", "", "q", "" };
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(next_frame(&c, &fr), 1);
        ASSERT_SLICE(fr, want[i]);
    }
    ck_assert_int_eq(next_frame(&c, &fr), 0);
    weft_length_codec_free(&c);
    weft_bufreader_free(&r);
    script_free(&sc);
}
END_TEST

/* A header and its payload go out in one writev. */
START_TEST(send_one_writev)
{
    script_t sc = script(NULL, 0, 0, false);
    weft_length_codec_t c;
    ck_assert_int_eq(weft_length_codec_init(&c, NULL, &sc.s, NULL), 0);
    int rc = -1;
    weft_codec_send_t f = weft_length_send(&c, "payload", 7);
    drive(WEFT_FUTURE(&f), &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(sc.writevs, 1);
    ck_assert_int_eq(sc.writes, 0);
    ck_assert_uint_eq(sc.out.len, 11);
    weft_lines_codec_t lc;
    ck_assert_int_eq(weft_lines_codec_init(&lc, NULL, &sc.s, 100, 0), 0);
    weft_codec_send_t g = weft_lines_send(&lc, "hi", 2);
    drive(WEFT_FUTURE(&g), &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(sc.writevs, 2);
    ck_assert(memcmp(sc.out.data + 11, "hi\n", 3) == 0);
    /* Without writev the frame still goes out whole, over several writes. */
    sc.s.vtable = &script_nov_vt;
    g = weft_lines_send(&lc, "abc", 3);
    drive(WEFT_FUTURE(&g), &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert(memcmp(sc.out.data + 14, "abc\n", 4) == 0);
    /* A closed stream. */
    sc.shut = true;
    g = weft_lines_send(&lc, "x", 1);
    drive(WEFT_FUTURE(&g), &rc);
    ck_assert_int_eq(rc, WEFT_EPIPE);
    weft_lines_codec_free(&lc);
    weft_length_codec_free(&c);
    script_free(&sc);
}
END_TEST

/* ---- The reader as a stream, fill_buf and consume ------------------------------------------- */
START_TEST(reader_interface)
{
    const char in[] = "0123456789abcdefghij";
    script_t sc = script(in, 20, 6, true);
    weft_bufreader_t r;
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 8), 0);
    const void *data;
    ssize_t n;
    weft_bufreader_fill_t f = weft_bufreader_fill_buf(&r, &data);
    drive(WEFT_FUTURE(&f), &n);
    ck_assert_int_eq(n, 6);
    ck_assert(memcmp(data, "012345", 6) == 0);
    f = weft_bufreader_fill_buf(&r, &data); /* holds bytes: no read */
    int reads = sc.reads;
    drive(WEFT_FUTURE(&f), &n);
    ck_assert_int_eq(n, 6);
    ck_assert_int_eq(sc.reads, reads);
    weft_bufreader_consume(&r, 4);
    ck_assert_uint_eq(weft_bufreader_buffered(&r, &data), 2);
    ck_assert(memcmp(data, "45", 2) == 0);
    /* Reads through the interface: from the buffer first. */
    weft_stream_t *s = weft_bufreader_as(&r);
    ck_assert_ptr_eq(weft_bufreader_inner(&r), &sc.s);
    counter_t cnt = { 0 };
    weft_waker_t w = counter_waker(&cnt);
    weft_context_t cx = { &w };
    char buf[32];
    ck_assert_int_eq(weft_stream_poll_read(s, &cx, buf, 5, &n), WEFT_READY);
    ck_assert_int_eq(n, 2);
    /* A large read into an empty buffer goes straight through: the script
     * gives its 6-byte chunk, all of it, past the 8-byte buffer's copy. */
    while (weft_stream_poll_read(s, &cx, buf, sizeof buf, &n) == WEFT_PENDING)
        ;
    ck_assert_int_eq(n, 6);
    ck_assert(memcmp(buf, "6789ab", 6) == 0);
    ck_assert_uint_eq(weft_bufreader_buffered(&r, NULL), 0);
    /* Writes go to the inner stream. */
    while (weft_stream_poll_write(s, &cx, "w", 1, &n) == WEFT_PENDING)
        ;
    ck_assert_int_eq(n, 1);
    int rc;
    while (weft_stream_poll_shutdown(s, &cx, &rc) == WEFT_PENDING)
        ;
    ck_assert_int_eq(sc.shutdowns, 1);
    ck_assert_uint_eq(sc.out.len, 1);
    weft_bufreader_free(&r);
    weft_bufreader_free(&r); /* twice is harmless */
    script_free(&sc);
}
END_TEST

static void consume_too_much(void)
{
    script_t sc = script("ab", 2, 0, false);
    weft_bufreader_t r;
    if (weft_bufreader_init(&r, &sc.s, 8) == 0)
        weft_bufreader_consume(&r, 1);
}
START_TEST(consume_past_buffered_panics)
{
    expect_panic(consume_too_much, "weft_bufreader_consume");
}
END_TEST

/* ---- The writer ---------------------------------------------------------------------------- */
static ssize_t write_all(weft_bufwriter_t *w, const void *p, size_t len)
{
    weft_bufwriter_op_t f = weft_bufwriter_write_all(w, p, len);
    ssize_t n = -1000;
    drive(WEFT_FUTURE(&f), &n);
    return n;
}

static int writer_op(weft_bufwriter_op_t f)
{
    int rc = -1000;
    drive(WEFT_FUTURE(&f), &rc);
    return rc;
}

START_TEST(writer_coalesces)
{
    script_t sc = script(NULL, 0, 0, true);
    weft_bufwriter_t w;
    ck_assert_int_eq(weft_bufwriter_init(&w, &sc.s, 64), 0);
    char expect[500];
    for (int i = 0; i < 100; i++) {
        char piece[5];
        memset(piece, 'a' + i % 26, 5);
        memcpy(expect + i * 5, piece, 5);
        ck_assert_int_eq(write_all(&w, piece, 5), 5);
    }
    /* 100 writes of 5 bytes: one inner write per 60 bytes (12 pieces). */
    ck_assert_int_eq(sc.writes, 8);
    ck_assert_uint_eq(weft_bufwriter_buffered(&w), 500 - 8 * 60);
    ck_assert_int_eq(writer_op(weft_bufwriter_flush(&w)), 0);
    ck_assert_int_eq(sc.writes, 9);
    ck_assert_int_eq(sc.flushes, 1); /* the inner stream is flushed too */
    ck_assert_uint_eq(weft_bufwriter_buffered(&w), 0);
    ck_assert_uint_eq(sc.out.len, 500);
    ck_assert(memcmp(sc.out.data, expect, 500) == 0);
    ck_assert_uint_eq(weft_bufwriter_free(&w), 0);
    script_free(&sc);
}
END_TEST

START_TEST(writer_short_inner_writes)
{
    /* An inner stream taking 7 bytes per call, pending before each. */
    script_t sc = script(NULL, 0, 0, true);
    sc.wmax = 7;
    weft_bufwriter_t w;
    ck_assert_int_eq(weft_bufwriter_init(&w, &sc.s, 16), 0);
    char data[300];
    for (int i = 0; i < 300; i++)
        data[i] = (char)i;
    for (size_t off = 0, k = 1; off < 300; off += k, k = k % 23 + 1)
        ck_assert_int_eq(write_all(&w, data + off, off + k > 300 ? 300 - off : k), (ssize_t)(off + k > 300 ? 300 - off : k));
    ck_assert_int_eq(writer_op(weft_bufwriter_flush(&w)), 0);
    ck_assert_uint_eq(sc.out.len, 300);
    ck_assert(memcmp(sc.out.data, data, 300) == 0);
    ck_assert_uint_eq(weft_bufwriter_free(&w), 0);
    script_free(&sc);
}
END_TEST

START_TEST(writer_write_through)
{
    script_t sc = script(NULL, 0, 0, false);
    weft_bufwriter_t w;
    ck_assert_int_eq(weft_bufwriter_init(&w, &sc.s, 16), 0);
    static char big[100];
    memset(big, 'B', sizeof big);
    ck_assert_int_eq(write_all(&w, big, 100), 100);
    ck_assert_int_eq(sc.writes, 1); /* one inner write of all 100, no copy */
    ck_assert_uint_eq(sc.largest_write, 100);
    ck_assert_uint_eq(weft_bufwriter_buffered(&w), 0);
    /* With bytes buffered, they go first, then the large write. */
    ck_assert_int_eq(write_all(&w, "ab", 2), 2);
    ck_assert_int_eq(write_all(&w, big, 100), 100);
    ck_assert_int_eq(sc.writes, 3);
    ck_assert(memcmp(sc.out.data + 100, "abBB", 4) == 0);
    /* writev through the interface: small ones gather, large ones go through. */
    counter_t cnt = { 0 };
    weft_waker_t wk = counter_waker(&cnt);
    weft_context_t cx = { &wk };
    struct iovec iov[2] = { { (void *)"xy", 2 }, { (void *)"z", 1 } };
    ssize_t n;
    ck_assert_int_eq(weft_stream_poll_writev(weft_bufwriter_as(&w), &cx, iov, 2, &n), WEFT_READY);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(sc.writevs, 0);
    struct iovec biov[2] = { { big, 50 }, { big, 50 } };
    ck_assert_int_eq(weft_stream_poll_writev(weft_bufwriter_as(&w), &cx, biov, 2, &n), WEFT_READY);
    ck_assert_int_eq(n, 100);
    ck_assert_int_eq(sc.writevs, 1);
    ck_assert_uint_eq(sc.out.len, 305);
    ck_assert_ptr_eq(weft_bufwriter_inner(&w), &sc.s);
    ck_assert_uint_eq(weft_bufwriter_free(&w), 0);
    script_free(&sc);
}
END_TEST

START_TEST(writer_flush_and_shutdown)
{
    script_t sc = script("in", 2, 0, true);
    weft_bufwriter_t w;
    ck_assert_int_eq(weft_bufwriter_init(&w, &sc.s, 0), 0);
    ck_assert_int_eq(write_all(&w, "hello", 5), 5);
    ck_assert_uint_eq(sc.out.len, 0); /* only buffered */
    ck_assert_int_eq(writer_op(weft_bufwriter_shutdown(&w)), 0);
    ck_assert_uint_eq(sc.out.len, 5); /* written out before the inner shutdown */
    ck_assert_int_eq(sc.shutdowns, 1);
    ck_assert_int_eq(write_all(&w, "late", 4), 4); /* buffered; the inner stream is shut */
    ck_assert_int_eq(writer_op(weft_bufwriter_flush(&w)), WEFT_EPIPE);
    ck_assert_uint_eq(weft_bufwriter_buffered(&w), 4); /* the unsent bytes stay */
    /* Reads pass through. */
    counter_t cnt = { 0 };
    weft_waker_t wk = counter_waker(&cnt);
    weft_context_t cx = { &wk };
    char buf[4];
    ssize_t n;
    while (weft_stream_poll_read(weft_bufwriter_as(&w), &cx, buf, 4, &n) == WEFT_PENDING)
        ;
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(weft_bufwriter_free(&w), 4); /* dropped unflushed: the loss is reported */
    script_free(&sc);
}
END_TEST

/* ---- Dropping every future mid-wait ------------------------------------------------------------ */
START_TEST(drop_mid_wait)
{
    /* The codecs keep their progress: dropping next() after every pending
     * loses nothing (cancel safety). */
    const char in[] = "first line\nsecond\n";
    script_t sc = script(in, strlen(in), 1, true);
    weft_bufreader_t r;
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 4), 0);
    weft_lines_codec_t c;
    ck_assert_int_eq(weft_lines_codec_init(&c, &r, NULL, 32, 0), 0);
    weft_slice_t l;
    for (int i = 0; i < 2; i++) {
        int rc = -1;
        for (;;) {
            weft_codec_next_t f = weft_lines_next(&c, &l);
            bool pending = poll_once(WEFT_FUTURE(&f), &rc);
            weft_future_drop(WEFT_FUTURE(&f));
            if (!pending)
                break;
        }
        ck_assert_int_eq(rc, 1);
        ASSERT_SLICE(l, i == 0 ? "first line" : "second");
    }
    weft_lines_codec_free(&c);
    weft_bufreader_free(&r);
    script_free(&sc);

    /* The same for length frames. */
    const unsigned char wire[] = { 0, 5, 'h', 'e', 'l', 'l', 'o', 0, 1, '!' };
    sc = script((const char *)wire, sizeof wire, 1, true);
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 4), 0);
    weft_length_config_t cfg = { 2, false, 0, 0 };
    weft_length_codec_t lc;
    ck_assert_int_eq(weft_length_codec_init(&lc, &r, NULL, &cfg), 0);
    for (int i = 0; i < 2; i++) {
        int rc = -1;
        for (;;) {
            weft_codec_next_t f = weft_length_next(&lc, &l);
            bool pending = poll_once(WEFT_FUTURE(&f), &rc);
            weft_future_drop(WEFT_FUTURE(&f));
            if (!pending)
                break;
        }
        ck_assert_int_eq(rc, 1);
        ASSERT_SLICE(l, i == 0 ? "hello" : "!");
    }
    weft_length_codec_free(&lc);
    weft_bufreader_free(&r);
    script_free(&sc);

    /* read_until: a dropped call leaves the partial line in out; the next
     * call with the same out finishes it. */
    sc = script(in, strlen(in), 3, true);
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 4), 0);
    weft_bytes_t out = WEFT_BYTES_INIT;
    for (;;) {
        weft_read_until_t f = weft_bufreader_read_line(&r, &out, 0);
        ssize_t n;
        bool pending = poll_once(WEFT_FUTURE(&f), &n);
        weft_future_drop(WEFT_FUTURE(&f));
        if (!pending)
            break;
    }
    ck_assert_uint_eq(out.len, 11);
    ck_assert(memcmp(out.data, "first line\n", 11) == 0);
    /* fill_buf dropped while pending. */
    weft_bufreader_fill_t ff = weft_bufreader_fill_buf(&r, NULL);
    ssize_t n;
    while (poll_once(WEFT_FUTURE(&ff), &n))
        ;
    weft_future_drop(WEFT_FUTURE(&ff));
    ck_assert_int_gt(n, 0);
    ff = weft_bufreader_fill_buf(&r, NULL);
    weft_future_drop(WEFT_FUTURE(&ff)); /* never polled */
    weft_bytes_free(&out);
    weft_bufreader_free(&r);
    script_free(&sc);

    /* Writer futures and sends dropped while pending. */
    sc = script(NULL, 0, 0, true);
    sc.wmax = 2;
    weft_bufwriter_t w;
    ck_assert_int_eq(weft_bufwriter_init(&w, &sc.s, 4), 0);
    weft_bufwriter_op_t wf = weft_bufwriter_write_all(&w, "0123456789", 10);
    ck_assert(poll_once(WEFT_FUTURE(&wf), &n));
    weft_future_drop(WEFT_FUTURE(&wf));
    wf = weft_bufwriter_flush(&w);
    ck_assert(poll_once(WEFT_FUTURE(&wf), NULL) || true);
    weft_future_drop(WEFT_FUTURE(&wf));
    wf = weft_bufwriter_shutdown(&w);
    weft_future_drop(WEFT_FUTURE(&wf));
    weft_lines_codec_t sc_codec;
    ck_assert_int_eq(weft_lines_codec_init(&sc_codec, NULL, weft_bufwriter_as(&w), 8, 0), 0);
    weft_codec_send_t sf = weft_lines_send(&sc_codec, "abc", 3);
    (void)poll_once(WEFT_FUTURE(&sf), NULL);
    weft_future_drop(WEFT_FUTURE(&sf));
    weft_lines_codec_free(&sc_codec);
    ck_assert_int_eq(writer_op(weft_bufwriter_flush(&w)), 0);
    ck_assert_uint_eq(weft_bufwriter_free(&w), 0);
    script_free(&sc);
}
END_TEST

/* ---- Allocation failures ------------------------------------------------------------------- */
START_TEST(enomem_paths)
{
    script_t sc = script("a long line that spans reads\n", 29, 5, true);
    weft_bufreader_t r;
    weft_bufwriter_t w;
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 8), WEFT_ENOMEM);
    weft_bufreader_free(&r); /* harmless after a failed init */
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_bufwriter_init(&w, &sc.s, 8), WEFT_ENOMEM);
    ck_assert_uint_eq(weft_bufwriter_free(&w), 0);
    weft__alloc_fail_after(-1);

    /* The lines codec's buffer cannot grow: ENOMEM, and a retry goes on
     * with nothing lost. */
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 8), 0);
    weft_lines_codec_t c;
    ck_assert_int_eq(weft_lines_codec_init(&c, &r, NULL, 100, 0), 0);
    weft_slice_t l;
    weft__alloc_fail_after(1);
    ck_assert_int_eq(next_line(&c, &l), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    ck_assert_int_eq(next_line(&c, &l), 1);
    ASSERT_SLICE(l, "a long line that spans reads");
    weft_lines_codec_free(&c);
    weft_bufreader_free(&r);
    script_free(&sc);

    /* The length codec's frame buffer. */
    const unsigned char wire[] = { 12, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l' };
    sc = script((const char *)wire, sizeof wire, 3, true);
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 4), 0);
    weft_length_config_t cfg = { 1, false, 0, 0 };
    weft_length_codec_t lc;
    ck_assert_int_eq(weft_length_codec_init(&lc, &r, NULL, &cfg), 0);
    weft__alloc_fail_after(1);
    ck_assert_int_eq(next_frame(&lc, &l), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    ck_assert_int_eq(next_frame(&lc, &l), 1);
    ASSERT_SLICE(l, "abcdefghijkl");
    weft_length_codec_free(&lc);
    weft_bufreader_free(&r);
    script_free(&sc);

    /* read_until's out. */
    sc = script("0123456789\n", 11, 0, false);
    ck_assert_int_eq(weft_bufreader_init(&r, &sc.s, 0), 0);
    weft_bytes_t out = WEFT_BYTES_INIT;
    weft__alloc_fail_after(1);
    weft_read_until_t f = weft_bufreader_read_line(&r, &out, 0);
    ssize_t n;
    drive(WEFT_FUTURE(&f), &n);
    weft__alloc_fail_after(-1);
    ck_assert_int_eq(n, WEFT_ENOMEM);
    f = weft_bufreader_read_line(&r, &out, 0);
    drive(WEFT_FUTURE(&f), &n);
    ck_assert_int_eq(n, 11);
    weft_bytes_free(&out);
    weft_bufreader_free(&r);
    script_free(&sc);

    /* Bad lines configurations. */
    ck_assert_int_eq(weft_lines_codec_init(&c, NULL, NULL, 0, 0), WEFT_EINVAL);
    ck_assert_int_eq(weft_lines_codec_init(&c, NULL, NULL, 10, 1u << 7), WEFT_EINVAL);
}
END_TEST

/* ---- The cooperative budget ----------------------------------------------------------------- */
/* A task reading lines that are always ready (the script never pends)
 * still gives its sibling a turn within its budget. */
typedef struct {
    WEFT_FRAME;
    script_t sc;
    weft_bufreader_t r;
    weft_bytes_t line;
    int round, saw;
    ssize_t n;
    weft_read_until_t rd;
} greedy_t;
/* More lines than a poll's budget covers when a line from the buffer
 * spends a unit in WEFT__BUFFERED_EVERY (128 x 256 = 32768). */
#define GREEDY_LINES 40000
static char greedy_in[GREEDY_LINES * 4];
static void greedy_cleanup(greedy_t *g)
{
    weft_bytes_free(&g->line);
    weft_bufreader_free(&g->r);
}
WEFT_ASYNC_WITH_DROP(greedy_t, greedy_fn, int, greedy_cleanup)
{
    WEFT_BEGIN();
    for (size_t i = 0; i < sizeof greedy_in; i += 4)
        memcpy(greedy_in + i, "abc\n", 4);
    self->sc = script(greedy_in, sizeof greedy_in, 0, false);
    if (!WEFT_TEST_CHECK_INT_EQ(weft_bufreader_init(&self->r, &self->sc.s, 0), 0))
        WEFT_RETURN(0);
    for (self->round = 1; self->round <= GREEDY_LINES; self->round++) {
        if (coop_sibling_ran) {
            self->saw = self->round;
            break;
        }
        weft_bytes_clear(&self->line);
        WEFT_AWAIT(&self->rd, weft_bufreader_read_line(&self->r, &self->line, 0), &self->n);
        WEFT_TEST_CHECK_INT_EQ(self->n, 4);
    }
    WEFT_RETURN(self->saw);
    WEFT_END();
}

START_TEST(read_line_spends_budget)
{
    greedy_t g = { WEFT_FRAME_INIT(greedy_fn) };
    assert_coop_yields_within(WEFT_FUTURE(&g), GREEDY_LINES);
    ASSERT_NO_TEST_FAIL();
}
END_TEST

/* ---- Over TCP on 127.0.0.1, on every runtime shape ---------------------------------------------- */
#define TCP_LINES 2000
#define TCP_FRAMES 500

typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t l;
    weft_tcp_stream_t s;
    weft_bufwriter_t w;
    weft_lines_codec_t lines;
    weft_length_codec_t frames;
    int rc, i;
    char text[64];
    weft_tcp_accept_t acc;
    weft_codec_send_t send;
    weft_bufwriter_op_t op;
} tx_t;
static void tx_cleanup(tx_t *t)
{
    (void)!weft_bufwriter_free(&t->w);
    weft_tcp_close(&t->s);
    weft_tcp_listener_close(&t->l);
}
/* Accepts one client, sends it TCP_LINES lines then TCP_FRAMES frames
 * through one buffered writer, and shuts down. */
WEFT_ASYNC_WITH_DROP(tx_t, tx_fn, int, tx_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->acc, weft_tcp_accept(&self->l, &self->s, NULL), &self->rc);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0) ||
        !WEFT_TEST_CHECK_INT_EQ(weft_bufwriter_init(&self->w, weft_tcp_stream_as(&self->s), 1024), 0) ||
        !WEFT_TEST_CHECK_INT_EQ(weft_lines_codec_init(&self->lines, NULL, weft_bufwriter_as(&self->w), 64, 0), 0) ||
        !WEFT_TEST_CHECK_INT_EQ(weft_length_codec_init(&self->frames, NULL, weft_bufwriter_as(&self->w), NULL), 0))
        WEFT_RETURN(-1);
    for (self->i = 0; self->i < TCP_LINES; self->i++) {
        self->rc = snprintf(self->text, sizeof self->text, "line %d", self->i);
        WEFT_AWAIT(&self->send, weft_lines_send(&self->lines, self->text, (size_t)self->rc), &self->rc);
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
            WEFT_RETURN(-1);
    }
    for (self->i = 0; self->i < TCP_FRAMES; self->i++) {
        memset(self->text, 'a' + self->i % 26, sizeof self->text);
        WEFT_AWAIT(&self->send, weft_length_send(&self->frames, self->text, (size_t)self->i % 64), &self->rc);
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0))
            WEFT_RETURN(-1);
    }
    WEFT_AWAIT(&self->op, weft_bufwriter_shutdown(&self->w), &self->rc);
    WEFT_RETURN(self->rc);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    uint16_t port;
    weft_tcp_stream_t s;
    weft_bufreader_t r;
    weft_lines_codec_t lines;
    weft_length_codec_t frames;
    weft_slice_t got;
    int rc, i;
    char want[64];
    weft_tcp_connect_t conn;
    weft_codec_next_t next;
} rx_t;
static void rx_cleanup(rx_t *t)
{
    weft_lines_codec_free(&t->lines);
    weft_length_codec_free(&t->frames);
    weft_bufreader_free(&t->r);
    weft_tcp_close(&t->s);
}
/* Reads both kinds from one buffered reader (the codecs share it). */
WEFT_ASYNC_WITH_DROP(rx_t, rx_fn, int, rx_cleanup)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->conn, weft_tcp_connect_ip("127.0.0.1", self->port, &self->s), &self->rc);
    if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0) ||
        !WEFT_TEST_CHECK_INT_EQ(weft_bufreader_init(&self->r, weft_tcp_stream_as(&self->s), 512), 0) ||
        !WEFT_TEST_CHECK_INT_EQ(weft_lines_codec_init(&self->lines, &self->r, NULL, 64, 0), 0) ||
        !WEFT_TEST_CHECK_INT_EQ(weft_length_codec_init(&self->frames, &self->r, NULL, NULL), 0))
        WEFT_RETURN(-1);
    for (self->i = 0; self->i < TCP_LINES; self->i++) {
        WEFT_AWAIT(&self->next, weft_lines_next(&self->lines, &self->got), &self->rc);
        int len = snprintf(self->want, sizeof self->want, "line %d", self->i);
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 1) || !WEFT_TEST_CHECK_INT_EQ(self->got.len, len) ||
            !WEFT_TEST_CHECK(memcmp(self->got.data, self->want, (size_t)len) == 0))
            WEFT_RETURN(-1);
    }
    for (self->i = 0; self->i < TCP_FRAMES; self->i++) {
        WEFT_AWAIT(&self->next, weft_length_next(&self->frames, &self->got), &self->rc);
        memset(self->want, 'a' + self->i % 26, sizeof self->want);
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 1) || !WEFT_TEST_CHECK_INT_EQ(self->got.len, self->i % 64) ||
            !WEFT_TEST_CHECK(memcmp(self->got.data, self->want, self->got.len) == 0))
            WEFT_RETURN(-1);
    }
    WEFT_AWAIT(&self->next, weft_length_next(&self->frames, &self->got), &self->rc);
    WEFT_RETURN(self->rc); /* 0: the clean end after the last frame */
    WEFT_END();
}

typedef struct {
    weft_future_t future;
    weft_tcp_listener_t *l;
} listen_t;
static weft_poll_t listen_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    (void)cx;
    *(int *)out = weft_tcp_listen_ip("127.0.0.1", 0, 4, ((listen_t *)(void *)f)->l);
    return WEFT_READY;
}
static const weft_future_vtable_t listen_vt = { listen_poll, NULL, NULL, sizeof(listen_t), sizeof(int), "listen" };

START_TEST(tcp_lines_and_frames)
{
    weft_runtime_t *rt = shape_rt(_i);
    tx_t tx = { WEFT_FRAME_INIT(tx_fn) };
    listen_t lf = { { &listen_vt }, &tx.l };
    int rc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&lf), &rc), 0);
    ck_assert_int_eq(rc, 0);
    rx_t rx = { WEFT_FRAME_INIT(rx_fn), .port = weft_tcp_listener_port(&tx.l) };
    weft_join_handle_t h;
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&tx), &h, NULL, WEFT_SITE), 0);
    int rrc = -1, trc = -1;
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&rx), &rrc), 0);
    ck_assert_int_eq(join_out(rt, &h, &trc), 0);
    weft_runtime_free(rt);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(rrc, 0);
    ck_assert_int_eq(trc, 0);
    ASSERT_NO_LIVE();
}
END_TEST

static Suite *bufio_suite(void)
{
    Suite *s = suite_create("bufio");
    TCase *tc = tcase_create("lines");
    tcase_add_test(tc, lines_every_split);
    tcase_add_test(tc, find_byte_agrees_with_memchr);
    tcase_add_test(tc, read_line_every_chunk);
    tcase_add_test(tc, read_line_reads_per_chunk);
    tcase_add_test(tc, line_too_long);
    tcase_add_test(tc, read_until_max);
    tcase_add_test(tc, crlf_handling);
    tcase_add_test(tc, closed_mid_line);
    suite_add_tcase(s, tc);
    tc = tcase_create("frames");
    tcase_add_test(tc, frames_every_split);
    tcase_add_test(tc, frame_header_encoding);
    tcase_add_test(tc, frame_over_max);
    tcase_add_test(tc, frame_closed_mid_frame);
    tcase_add_test(tc, zero_length_frames);
    tcase_add_test(tc, send_one_writev);
    suite_add_tcase(s, tc);
    tc = tcase_create("reader");
    tcase_add_test(tc, reader_interface);
    if (can_fork())
        tcase_add_test(tc, consume_past_buffered_panics);
    suite_add_tcase(s, tc);
    tc = tcase_create("writer");
    tcase_add_test(tc, writer_coalesces);
    tcase_add_test(tc, writer_short_inner_writes);
    tcase_add_test(tc, writer_write_through);
    tcase_add_test(tc, writer_flush_and_shutdown);
    suite_add_tcase(s, tc);
    tc = tcase_create("cancel");
    tcase_add_test(tc, drop_mid_wait);
    tcase_add_test(tc, read_line_spends_budget);
    suite_add_tcase(s, tc);
    tc = tcase_create("enomem");
    tcase_add_test(tc, enomem_paths);
    suite_add_tcase(s, tc);
    tc = tcase_create("tcp");
    tcase_add_loop_test(tc, tcp_lines_and_frames, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(bufio_suite());
}
