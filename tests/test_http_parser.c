/* tests/test_http_parser.c - the example server's HTTP/1.1 request parser:
 * valid requests, bodies, pipelining, every split point, the head and
 * header-count caps, keep-alive rules, a table of malformed requests,
 * framing errors, and seeded random input. */
#include "testlib.h"

#include "../examples/http_parser.h"

/* Generous enough that only the cap tests meet it. */
#define BIG_HEAD 8192

/* Parses a copy of s[0, n) in a buffer of exactly n bytes, so that a read
 * past the end lands outside the allocation (caught under ASan/valgrind). */
static int parse_exact(const char *s, size_t n, size_t max_head, http_request_t *req, char **copy)
{
    char *b = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, s, n);
    int rc = http_parse_request(b, n, max_head, req);
    if (copy)
        *copy = b;
    else
        free(b);
    return rc;
}

static int parse_str(const char *s, http_request_t *req)
{
    return http_parse_request(s, strlen(s), BIG_HEAD, req);
}

static void assert_span(http_str_t got, const char *want)
{
    ck_assert_uint_eq(got.len, strlen(want));
    ck_assert_msg(memcmp(got.ptr, want, got.len) == 0, "got '%.*s', want '%s'", (int)got.len, got.ptr, want);
}

START_TEST(valid_get)
{
    const char *s = "GET /index.html?x=1 HTTP/1.1\r\n"
                    "Host: example.com\r\n"
                    "User-Agent:  curl/8.0 \t\r\n"
                    "Accept: */*\r\n"
                    "X-Empty:\r\n"
                    "\r\n";
    http_request_t req;
    ck_assert_int_eq(parse_str(s, &req), (int)strlen(s));
    assert_span(req.method, "GET");
    assert_span(req.target, "/index.html?x=1");
    ck_assert_int_eq(req.minor_version, 1);
    ck_assert_uint_eq(req.num_headers, 4);
    assert_span(req.headers[0].name, "Host");
    assert_span(req.headers[0].value, "example.com");
    assert_span(req.headers[1].value, "curl/8.0"); /* OWS trimmed both sides */
    assert_span(req.headers[3].name, "X-Empty");
    ck_assert_uint_eq(req.headers[3].value.len, 0);
    ck_assert(req.keep_alive);
    ck_assert(!req.has_content_length);
    ck_assert_uint_eq(req.content_length, 0);
    ck_assert_ptr_null(req.body);
    ck_assert_uint_eq(req.head_len, strlen(s));
    ck_assert_ptr_eq(req.method.ptr, s); /* spans point into the buffer */
    const http_str_t *ua = http_request_header(&req, "user-agent");
    ck_assert_ptr_nonnull(ua);
    assert_span(*ua, "curl/8.0");
    ck_assert_ptr_null(http_request_header(&req, "cookie"));
}
END_TEST

START_TEST(valid_forms)
{
    /* Each must parse whole: the other target forms, LF-only lines, leading
     * empty lines, obs-text in a value, a token method. */
    static const char *ok[] = {
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\r\nHost: a\n\r\n",
        "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
        "M-SEARCH! / HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        http_request_t req;
        int rc = parse_exact(ok[k], strlen(ok[k]), BIG_HEAD, &req, NULL);
        ck_assert_msg(rc == (int)strlen(ok[k]), "case %zu: rc %d (%s)", k, rc, http_err_name(rc));
    }
}
END_TEST

START_TEST(post_with_body)
{
    const char *s = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello worldGET";
    size_t head = strlen(s) - strlen("hello worldGET");
    http_request_t req;
    /* Trailing bytes (the next request) are not part of this one. */
    ck_assert_int_eq(parse_str(s, &req), (int)(head + 11));
    assert_span(req.method, "POST");
    ck_assert(req.has_content_length);
    ck_assert_uint_eq(req.content_length, 11);
    ck_assert_uint_eq(req.head_len, head);
    ck_assert_ptr_eq(req.body, s + head);
    ck_assert_uint_eq(req.body_len, 11);
    /* Head complete, body not: incomplete, but the head is reported so the
     * caller can refuse a body too large for its buffer. */
    for (size_t n = head; n < head + 11; n++) {
        ck_assert_int_eq(parse_exact(s, n, BIG_HEAD, &req, NULL), 0);
        ck_assert_uint_eq(req.head_len, head);
        ck_assert_uint_eq(req.content_length, 11);
        ck_assert_ptr_null(req.body);
    }
    /* The body does not count against the head cap. */
    ck_assert_int_eq(http_parse_request(s, strlen(s), head, &req), (int)(head + 11));
    /* Content-Length: 0 is a request with no body. */
    const char *z = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
    ck_assert_int_eq(parse_str(z, &req), (int)strlen(z));
    ck_assert(req.has_content_length);
    ck_assert_ptr_null(req.body);
}
END_TEST

START_TEST(pipelined)
{
    const char *s = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                    "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
                    "\r\n" /* a stray CRLF after a body is skipped */
                    "GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                    "GET /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                    "GET /e HTTP/1.1\r\nHo";
    static const char *targets[] = { "/a", "/b", "/c", "/d" };
    static const bool keep[] = { true, true, true, false };
    size_t off = 0, len = strlen(s);
    int count = 0;
    for (;;) {
        http_request_t req;
        int rc = http_parse_request(s + off, len - off, BIG_HEAD, &req);
        ck_assert_int_ge(rc, 0);
        if (rc == 0)
            break;
        ck_assert_int_lt(count, 4);
        assert_span(req.target, targets[count]);
        ck_assert_int_eq(req.keep_alive, keep[count]);
        if (count == 1)
            assert_span((http_str_t){ req.body, req.body_len }, "xyz");
        off += (size_t)rc;
        count++;
    }
    ck_assert_int_eq(count, 4);
    ck_assert_str_eq(s + off, "GET /e HTTP/1.1\r\nHo"); /* left for the next read */
}
END_TEST

static bool same_span(const char *a0, http_str_t a, const char *b0, http_str_t b)
{
    return a.len == b.len && (a.ptr == NULL) == (b.ptr == NULL) && (a.ptr == NULL || a.ptr - a0 == b.ptr - b0);
}

/* Every proper prefix is incomplete; the whole parses the same as in one
 * piece (same spans at the same offsets). */
START_TEST(split_every_byte)
{
    static const char *reqs[] = {
        "GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
        "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        "\r\nGET / HTTP/1.0\nConnection: keep-alive\n\n",
        "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nZ",
    };
    for (size_t r = 0; r < sizeof reqs / sizeof reqs[0]; r++) {
        const char *s = reqs[r];
        size_t len = strlen(s);
        http_request_t whole;
        ck_assert_int_eq(http_parse_request(s, len, BIG_HEAD, &whole), (int)len);
        for (size_t n = 0; n < len; n++) {
            http_request_t req;
            int rc = parse_exact(s, n, BIG_HEAD, &req, NULL);
            ck_assert_msg(rc == 0, "request %zu, prefix %zu: rc %d", r, n, rc);
        }
        /* Split in two at every point, as two reads into one buffer. */
        for (size_t cut = 1; cut < len; cut++) {
            char *b = malloc(len);
            http_request_t req;
            memcpy(b, s, cut);
            ck_assert_int_eq(http_parse_request(b, cut, BIG_HEAD, &req), 0);
            memcpy(b + cut, s + cut, len - cut);
            ck_assert_int_eq(http_parse_request(b, len, BIG_HEAD, &req), (int)len);
            ck_assert(same_span(s, whole.method, b, req.method));
            ck_assert(same_span(s, whole.target, b, req.target));
            ck_assert_int_eq(req.minor_version, whole.minor_version);
            ck_assert_uint_eq(req.num_headers, whole.num_headers);
            for (size_t h = 0; h < req.num_headers; h++) {
                ck_assert(same_span(s, whole.headers[h].name, b, req.headers[h].name));
                ck_assert(same_span(s, whole.headers[h].value, b, req.headers[h].value));
            }
            ck_assert_int_eq(req.keep_alive, whole.keep_alive);
            ck_assert_uint_eq(req.content_length, whole.content_length);
            ck_assert_uint_eq(req.head_len, whole.head_len);
            ck_assert(same_span(s, (http_str_t){ whole.body, whole.body_len }, b, (http_str_t){ req.body, req.body_len }));
            free(b);
        }
    }
}
END_TEST

/* Builds "GET / HTTP/1.1" with Host and `extra` more headers into out. */
static size_t build_headers(char *out, size_t cap, int extra)
{
    size_t n = (size_t)snprintf(out, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int k = 0; k < extra; k++)
        n += (size_t)snprintf(out + n, cap - n, "X-H%d: %d\r\n", k, k);
    n += (size_t)snprintf(out + n, cap - n, "\r\n");
    return n;
}

START_TEST(header_count_cap)
{
    char buf[4096];
    http_request_t req;
    size_t n = build_headers(buf, sizeof buf, HTTP_MAX_HEADERS - 1);
    ck_assert_int_eq(http_parse_request(buf, n, BIG_HEAD, &req), (int)n);
    ck_assert_uint_eq(req.num_headers, HTTP_MAX_HEADERS);
    n = build_headers(buf, sizeof buf, HTTP_MAX_HEADERS);
    ck_assert_int_eq(http_parse_request(buf, n, BIG_HEAD, &req), HTTP_E_TOO_LARGE);
    /* Known as soon as the first byte of the extra field arrives. */
    size_t at = (size_t)(strstr(buf, "X-H31:") - buf);
    ck_assert_int_eq(http_parse_request(buf, at, BIG_HEAD, &req), 0);
    ck_assert_int_eq(http_parse_request(buf, at + 1, BIG_HEAD, &req), HTTP_E_TOO_LARGE);
}
END_TEST

START_TEST(head_size_cap)
{
    const char *s = "GET /some/path HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\nab";
    size_t len = strlen(s), head = len - 2;
    http_request_t req;
    ck_assert_int_eq(http_parse_request(s, len, head, &req), (int)len); /* exactly at the cap */
    ck_assert_int_eq(http_parse_request(s, len, head - 1, &req), HTTP_E_TOO_LARGE);
    /* Up to the cap the head may still finish; one byte over, it cannot. */
    ck_assert_int_eq(http_parse_request(s, head - 1, head - 1, &req), 0);
    ck_assert_int_eq(http_parse_request(s, head, head - 1, &req), HTTP_E_TOO_LARGE);
    /* A line that never ends. */
    char big[600];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    ck_assert_int_eq(http_parse_request(big, 512, 512, &req), 0);
    ck_assert_int_eq(http_parse_request(big, sizeof big, 512, &req), HTTP_E_TOO_LARGE);
    /* Empty lines before the request line count too. */
    char crlf[200];
    for (size_t k = 0; k < sizeof crlf; k += 2)
        memcpy(crlf + k, "\r\n", 2);
    ck_assert_int_eq(http_parse_request(crlf, sizeof crlf, 100, &req), HTTP_E_TOO_LARGE);
    ck_assert_int_eq(http_parse_request(crlf, sizeof crlf, BIG_HEAD, &req), 0);
    /* Degenerate caps and buffers. */
    ck_assert_int_eq(http_parse_request(s, len, 0, &req), HTTP_E_TOO_LARGE);
    ck_assert_int_eq(http_parse_request(NULL, 0, 0, &req), 0);
    ck_assert_int_eq(http_parse_request(s, len, SIZE_MAX, &req), (int)len);
}
END_TEST

START_TEST(keep_alive_rules)
{
    static const struct {
        int minor;
        const char *conn[2]; /* Connection header values, NULL = absent */
        bool keep;
    } cases[] = {
        { 1, { NULL, NULL }, true },
        { 1, { "close", NULL }, false },
        { 1, { "CLOSE", NULL }, false },
        { 1, { "keep-alive", NULL }, true },
        { 1, { "Upgrade, close", NULL }, false },
        { 1, { "closed", NULL }, true }, /* a token, not a substring */
        { 1, { "keep-alive", "close" }, false },
        { 0, { NULL, NULL }, false },
        { 0, { "keep-alive", NULL }, true },
        { 0, { "Keep-Alive", NULL }, true },
        { 0, { "foo ,\tkeep-alive ", NULL }, true },
        { 0, { "close", NULL }, false },
        { 0, { "keep-alive, close", NULL }, false },
        { 0, { "keep-alive-ish", NULL }, false },
        { 0, { "upgrade", "keep-alive" }, true },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char buf[256];
        int n = snprintf(buf, sizeof buf, "GET / HTTP/1.%d\r\nHost: h\r\n", cases[k].minor);
        for (int c = 0; c < 2; c++)
            if (cases[k].conn[c])
                n += snprintf(buf + n, sizeof buf - (size_t)n, "Connection: %s\r\n", cases[k].conn[c]);
        n += snprintf(buf + n, sizeof buf - (size_t)n, "\r\n");
        http_request_t req;
        ck_assert_int_eq(http_parse_request(buf, (size_t)n, BIG_HEAD, &req), n);
        ck_assert_int_eq(req.minor_version, cases[k].minor);
        ck_assert_msg(req.keep_alive == cases[k].keep, "case %zu: keep_alive %d", k, req.keep_alive);
    }
}
END_TEST

/* Each is malformed; the error must also be final: every prefix gives 0 or
 * that same error, and once given it stays. */
static const struct {
    const char *s;
    size_t len; /* 0: strlen */
    int err;
} bad_cases[] = {
    { "get\x01 / HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },          /* CTL in method */
    { "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },             /* non-token method */
    { " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },             /* leading SP */
    { "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },             /* double SP */
    { "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },             /* trailing SP */
    { "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },           /* SP in target */
    { "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },   /* non-ASCII target */
    { "GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },     /* no origin/absolute form */
    { "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },              /* '*' is for OPTIONS */
    { "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },              /* version */
    { "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / http/1.1\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },
    { "GET /\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },                       /* HTTP/0.9 */
    { "GET / HTTP/1.1\rHost: a\r\n\r\n", 0, HTTP_E_BAD },                /* bare CR */
    { "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 0, HTTP_E_BAD },   /* bare CR in value */
    { "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 0, HTTP_E_BAD },             /* SP before colon */
    { "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", 0, HTTP_E_BAD },       /* empty name */
    { "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  2\r\n\r\n", 0, HTTP_E_BAD }, /* obs-fold */
    { "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", 0, HTTP_E_BAD },   /* DEL in value */
    { "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", sizeof "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n" - 1, HTTP_E_BAD }, /* NUL */
    { "GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n", 0, HTTP_E_BAD },            /* non-token name */
    { "GET / HTTP/1.1\r\n\r\n", 0, HTTP_E_BAD },                         /* 1.1 without Host */
    { "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 0, HTTP_E_BAD },   /* two Hosts */
    { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 0, HTTP_E_BAD },
    { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 0, HTTP_E_BAD },
    { "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, HTTP_E_BAD },  /* a TLS ClientHello */
    { "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0, HTTP_E_UNSUPPORTED },
    { "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: gzip, chunked\r\n\r\n", 0, HTTP_E_UNSUPPORTED },
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc", 0,
      HTTP_E_UNSUPPORTED },
    { "POST / HTTP/1.0\r\nTransfer-Encoding: identity\r\n\r\n", 0, HTTP_E_UNSUPPORTED },
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n", 0, HTTP_E_BODY_TOO_LARGE },
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2147483600\r\n\r\n", 0, HTTP_E_BODY_TOO_LARGE },
};

START_TEST(malformed_table)
{
    size_t nbad = 0;
    for (size_t k = 0; k < sizeof bad_cases / sizeof bad_cases[0]; k++) {
        const char *s = bad_cases[k].s;
        size_t len = bad_cases[k].len ? bad_cases[k].len : strlen(s);
        int want = bad_cases[k].err;
        nbad += want == HTTP_E_BAD;
        http_request_t req;
        int rc = parse_exact(s, len, BIG_HEAD, &req, NULL);
        ck_assert_msg(rc == want, "case %zu: rc %d (%s), want %s", k, rc, http_err_name(rc), http_err_name(want));
        int seen = 0;
        for (size_t n = 0; n <= len; n++) {
            rc = parse_exact(s, n, BIG_HEAD, &req, NULL);
            ck_assert_msg(rc == 0 || rc == want, "case %zu prefix %zu: rc %d", k, n, rc);
            ck_assert_msg(!(seen && rc == 0), "case %zu prefix %zu: error went away", k, n);
            seen |= rc != 0;
        }
    }
    ck_assert_uint_ge(nbad, 15);
}
END_TEST

START_TEST(content_length_duplicates)
{
    http_request_t req;
    const char *same = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\ncontent-length: 002\r\n\r\nok";
    ck_assert_int_eq(parse_str(same, &req), (int)strlen(same));
    ck_assert_uint_eq(req.content_length, 2);
    const char *ows = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\t 2 \t\r\n\r\nok";
    ck_assert_int_eq(parse_str(ows, &req), (int)strlen(ows));
}
END_TEST

START_TEST(error_names)
{
    ck_assert_str_eq(http_err_name(HTTP_E_BAD), "E_BAD");
    ck_assert_str_eq(http_err_name(HTTP_E_TOO_LARGE), "E_TOO_LARGE");
    ck_assert_str_eq(http_err_name(HTTP_E_UNSUPPORTED), "E_UNSUPPORTED");
    ck_assert_str_eq(http_err_name(HTTP_E_BODY_TOO_LARGE), "E_BODY_TOO_LARGE");
    ck_assert_str_eq(http_err_name(12), "OK");
    ck_assert_str_eq(http_err_name(-99), "UNKNOWN");
    ck_assert_ptr_nonnull(strstr(http_strerror(HTTP_E_TOO_LARGE), "431"));
}
END_TEST

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static bool span_in(http_str_t v, const char *b, size_t len)
{
    if (v.ptr == NULL)
        return v.len == 0;
    return v.ptr >= b && v.len <= len && (size_t)(v.ptr - b) <= len - v.len;
}

/* Checks what every return must satisfy, whatever the input. */
static void check_invariants(const char *b, size_t len, size_t max_head, int rc, const http_request_t *req)
{
    ck_assert_msg(rc >= HTTP_E_BODY_TOO_LARGE && (rc <= 0 || (size_t)rc <= len), "rc %d, len %zu", rc, len);
    if (rc <= 0)
        return;
    ck_assert_uint_le(req->head_len, max_head);
    ck_assert_uint_eq((size_t)rc, req->head_len + req->body_len);
    ck_assert_uint_le(req->num_headers, HTTP_MAX_HEADERS);
    ck_assert(req->minor_version == 0 || req->minor_version == 1);
    ck_assert(span_in(req->method, b, req->head_len) && req->method.len > 0);
    ck_assert(span_in(req->target, b, req->head_len) && req->target.len > 0);
    for (size_t h = 0; h < req->num_headers; h++) {
        ck_assert(span_in(req->headers[h].name, b, req->head_len));
        ck_assert(span_in(req->headers[h].value, b, req->head_len));
    }
    ck_assert(span_in((http_str_t){ req->body, req->body_len }, b, (size_t)rc));
}

/* 100k inputs from a seeded PRNG: pure noise, noise over a small alphabet of
 * HTTP bytes, and valid requests with a few bytes mutated. */
START_TEST(random_garbage)
{
    static const char alpha[] = "GETPOST /HTTP/1.01\r\n\r\n:: \tHost: aContent-Length: 12Transfer-Encoding,close\x80\xff";
    static const char *seeds[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody",
        "GET http://a/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    };
    uint64_t seed = chaos_seed0() * 0x9e3779b97f4a7c15ull | 1;
    int counts[6] = { 0 };
    char buf[512];
    for (int it = 0; it < 100000; it++) {
        uint64_t r = xorshift(&seed);
        size_t len = (size_t)(xorshift(&seed) % sizeof buf);
        switch (r % 3) {
        case 0:
            for (size_t k = 0; k < len; k++)
                buf[k] = (char)xorshift(&seed);
            break;
        case 1:
            for (size_t k = 0; k < len; k++)
                buf[k] = alpha[xorshift(&seed) % (sizeof alpha - 1)];
            break;
        default: {
            const char *s = seeds[(r >> 8) % 3];
            len = strlen(s);
            memcpy(buf, s, len);
            for (int m = (int)((r >> 16) % 4); m >= 0; m--)
                buf[xorshift(&seed) % len] = (char)xorshift(&seed);
            len -= (size_t)(r >> 24) % 3; /* sometimes cut short */
        }
        }
        size_t max_head = (r >> 32) % 4 == 0 ? (size_t)((r >> 40) % 64) : BIG_HEAD;
        http_request_t req;
        char *copy;
        int rc = parse_exact(buf, len, max_head, &req, &copy);
        check_invariants(copy, len, max_head, rc, &req);
        free(copy);
        counts[rc > 0 ? 5 : -rc]++;
    }
    /* The mutated valid requests make sure more than one outcome is seen. */
    ck_assert_int_gt(counts[5], 0);
    ck_assert_int_gt(counts[-HTTP_E_BAD], 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_parser");
    TCase *tc = tcase_create("parse");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, valid_get);
    tcase_add_test(tc, valid_forms);
    tcase_add_test(tc, post_with_body);
    tcase_add_test(tc, pipelined);
    tcase_add_test(tc, split_every_byte);
    tcase_add_test(tc, content_length_duplicates);
    tcase_add_test(tc, error_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, header_count_cap);
    tcase_add_test(tc, head_size_cap);
    suite_add_tcase(s, tc);
    tc = tcase_create("keep_alive");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, keep_alive_rules);
    suite_add_tcase(s, tc);
    tc = tcase_create("malformed");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, malformed_table);
    suite_add_tcase(s, tc);
    tc = tcase_create("random");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, random_garbage);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
