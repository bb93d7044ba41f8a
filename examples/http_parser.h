/* examples/http_parser.h - a pure, allocation-free, incremental HTTP/1.1
 * request parser (RFC 9112) for the example server.
 *
 * "Incremental" here means restartable rather than stateful: the caller keeps
 * the bytes read so far in one buffer and calls http_parse_request() again
 * after each read until it returns a complete request (> 0) or an error. The
 * parser keeps no state between calls, so there is nothing to reset and a
 * request split at any byte boundary parses exactly as if it came in one
 * piece. Each call rescans from the start of the buffer; max_head bounds that
 * work, and a caller that wants to avoid it can wait until a read brings a
 * '\n'.
 *
 * Pipelining: a return of n > 0 says the request occupies buf[0, n); the
 * next one starts at buf + n, so the caller parses the rest the same way.
 *
 * Strictness, chosen so that anything two implementations could read two
 * ways (the root of request smuggling) is refused:
 * - Lines end in CRLF; a lone LF is also accepted as a line end (RFC 9112
 *   2.2 allows it) but a CR not followed by LF is malformed.
 * - Empty lines before the request line are skipped (RFC 9112 2.2); they
 *   count towards max_head and towards the returned length.
 * - The request line is `method SP target SP HTTP/1.x` with exactly one SP
 *   each; method is a token; target is visible ASCII in origin-form ("/..."),
 *   absolute-form ("scheme:..."), "*" (OPTIONS only) or any form for CONNECT.
 *   Only HTTP/1.0 and HTTP/1.1 are accepted.
 * - A field name is a token followed at once by ':' (no whitespace before the
 *   colon); a value may hold HTAB, SP, visible ASCII and obs-text (0x80-0xFF),
 *   no other control byte. Line folding (obs-fold) is refused.
 * - Content-Length is 1*DIGIT; repeated Content-Length headers must agree
 *   (a comma list such as "5, 5" is refused); overflow is malformed.
 * - Any Transfer-Encoding is unsupported (this parser reads no chunked
 *   bodies), which also refuses the Transfer-Encoding + Content-Length mix.
 * - An HTTP/1.1 request must carry exactly one Host header (RFC 9112 3.2);
 *   an HTTP/1.0 request may carry at most one.
 *
 * Context: pure functions on caller memory; any thread; never blocks. */
#ifndef WEFT_EXAMPLES_HTTP_PARSER_H
#define WEFT_EXAMPLES_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most header fields one request may carry; one more is
 * HTTP_E_TOO_LARGE. 32 covers what browsers and proxies send (typically
 * 10-20) with room to spare, and keeps http_request_t about 1 KiB. */
#define HTTP_MAX_HEADERS 32

/* The errors, negative, with the response a server gives for each. */
#define HTTP_ERRNO_MAP(X)                                                                                     \
    X(E_BAD, -1, "malformed request (400)")                                                                   \
    X(E_TOO_LARGE, -2, "request head longer than the limit or too many header fields (431)")                  \
    X(E_UNSUPPORTED, -3, "unsupported Transfer-Encoding (501)")                                               \
    X(E_BODY_TOO_LARGE, -4, "Content-Length too large to frame: head + body exceed INT_MAX (413)")

enum {
#define HTTP__ERR_ENUM(name, val, msg) HTTP_##name = (val),
    HTTP_ERRNO_MAP(HTTP__ERR_ENUM)
#undef HTTP__ERR_ENUM
};

/* A span of the caller's buffer: not NUL-terminated. */
typedef struct http_str_s {
    const char *ptr;
    size_t len;
} http_str_t;

typedef struct http_header_s {
    http_str_t name;  /* a token, as sent (compare case-insensitively) */
    http_str_t value; /* leading and trailing SP/HTAB removed; may be empty */
} http_header_t;

typedef struct http_request_s {
    http_str_t method; /* a token, case-sensitive ("GET", not "get") */
    http_str_t target; /* the request-target, as sent */
    int minor_version; /* 0 or 1: HTTP/1.0 or HTTP/1.1 */
    size_t num_headers;
    http_header_t headers[HTTP_MAX_HEADERS];
    /* HTTP/1.1: true unless a Connection header lists "close"; HTTP/1.0:
     * false unless one lists "keep-alive" (and none lists "close"). */
    bool keep_alive;
    bool has_content_length;
    uint64_t content_length; /* 0 where absent */
    size_t head_len;         /* request line + headers + the empty line */
    const char *body;        /* buf + head_len where content_length > 0, else NULL */
    size_t body_len;         /* content_length, once the body is complete */
} http_request_t;

/* http_parse_request - parses the request at the start of buf[0, len).
 * @buf:      the bytes read so far; may be NULL when len is 0.
 * @len:      how many bytes buf holds.
 * @max_head: the most bytes the head (leading empty lines, request line,
 *            header lines and the empty line) may take; values over INT_MAX
 *            are treated as INT_MAX. The body does not count.
 * @req:      filled in; its spans point into buf.
 *
 * Returns:
 *  > 0 the length of the complete request, head plus Content-Length body;
 *      req is filled, req->body/body_len give the body.
 *  0   incomplete: read more and call again. If the head is complete but the
 *      body is not, req is filled (req->head_len > 0, req->content_length
 *      says how much is coming, req->body is NULL), so the caller can refuse
 *      a body larger than its buffer (413) before reading it; otherwise
 *      req->head_len is 0.
 *  HTTP_E_BAD            malformed (answer 400 and close).
 *  HTTP_E_TOO_LARGE      the head reaches max_head bytes without ending, or
 *                        has over HTTP_MAX_HEADERS fields (answer 431).
 *  HTTP_E_UNSUPPORTED    a Transfer-Encoding header (answer 501 and close).
 *  HTTP_E_BODY_TOO_LARGE head + Content-Length exceed INT_MAX (answer 413).
 * Errors are final: once a prefix of a stream gets one, every longer prefix
 * gets the same one. On an error, req holds partial, unspecified contents.
 *
 * Ownership: none; the parser only reads buf and never reads past buf + len.
 * Context: any thread; never blocks; no allocation. */
int http_parse_request(const char *buf, size_t len, size_t max_head, http_request_t *req);

/* http_request_header - the value of the first header field called `name`
 * (case-insensitive), or NULL if there is none.
 * Context: any thread; never blocks. */
const http_str_t *http_request_header(const http_request_t *req, const char *name);

/* http_err_name - "E_BAD" etc. for an HTTP_E_* code; "OK" for >= 0. */
const char *http_err_name(int err);
/* http_strerror - a message for an HTTP_E_* code, with its status code. */
const char *http_strerror(int err);

#endif
