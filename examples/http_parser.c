/* examples/http_parser.c - the HTTP/1.1 request parser: a left-to-right
 * scan of the head that stops at the first byte that decides the outcome
 * (malformed, too large, or simply not here yet), then a pass over the
 * parsed fields for the framing and connection rules. See http_parser.h for
 * the grammar it accepts and why. */
#include "http_parser.h"

#include <limits.h>
#include <string.h>

/* Internal result of the scanning helpers: more bytes are needed. It is
 * positive so it cannot be mistaken for an HTTP_E_* code. */
#define NEED_MORE 1

/* The scan position. `n` is how far the head may be read: min(len, max_head),
 * so the scan never looks past the buffer nor past the head limit. */
typedef struct {
    const unsigned char *p;
    size_t n;
    size_t i;
} cursor_t;

/* tchar (RFC 9110 5.6.2): the characters of a method or a field name. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field-value byte (RFC 9110 5.5): HTAB, SP, VCHAR or obs-text. */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool str_ieq(http_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return false;
    for (size_t k = 0; k < n; k++)
        if (lower((unsigned char)s.ptr[k]) != lower((unsigned char)lit[k]))
            return false;
    return true;
}

static bool str_eq(http_str_t s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* Consumes a line end: CRLF or a lone LF. A CR followed by anything else is
 * malformed (a bare CR is a smuggling vector: some peers read it as a line
 * end, some do not). */
static int eat_eol(cursor_t *c)
{
    if (c->i >= c->n)
        return NEED_MORE;
    if (c->p[c->i] == '\n') {
        c->i++;
        return 0;
    }
    if (c->p[c->i] != '\r')
        return HTTP_E_BAD;
    if (c->i + 1 >= c->n)
        return NEED_MORE;
    if (c->p[c->i + 1] != '\n')
        return HTTP_E_BAD;
    c->i += 2;
    return 0;
}

/* Reads 1*tchar up to `stop`, which it consumes. */
static int eat_token(cursor_t *c, unsigned char stop, http_str_t *out)
{
    size_t start = c->i;
    for (; c->i < c->n; c->i++) {
        unsigned char ch = c->p[c->i];
        if (ch == stop) {
            if (c->i == start)
                return HTTP_E_BAD;
            out->ptr = (const char *)c->p + start;
            out->len = c->i - start;
            c->i++;
            return 0;
        }
        if (!is_tchar(ch))
            return HTTP_E_BAD;
    }
    return NEED_MORE;
}

/* Checks the request-target's form against the method (RFC 9112 3.2). */
static bool target_ok(http_str_t method, http_str_t t)
{
    if (t.ptr[0] == '/')
        return true; /* origin-form */
    if (str_eq(method, "CONNECT"))
        return true; /* authority-form; the server decides what to do with it */
    if (t.len == 1 && t.ptr[0] == '*')
        return str_eq(method, "OPTIONS"); /* asterisk-form */
    /* absolute-form: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    unsigned char c0 = (unsigned char)t.ptr[0];
    if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z')))
        return false;
    for (size_t k = 1; k < t.len; k++) {
        unsigned char ch = (unsigned char)t.ptr[k];
        if (ch == ':')
            return true;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '+' ||
              ch == '-' || ch == '.'))
            return false;
    }
    return false;
}

static int eat_request_line(cursor_t *c, http_request_t *req)
{
    /* Skip empty lines before the request line (RFC 9112 2.2). */
    for (;;) {
        if (c->i >= c->n)
            return NEED_MORE;
        if (c->p[c->i] != '\r' && c->p[c->i] != '\n')
            break;
        int rc = eat_eol(c);
        if (rc != 0)
            return rc;
    }
    int rc = eat_token(c, ' ', &req->method);
    if (rc != 0)
        return rc;

    size_t start = c->i;
    for (;; c->i++) {
        if (c->i >= c->n)
            return NEED_MORE;
        unsigned char ch = c->p[c->i];
        if (ch == ' ')
            break;
        if (ch < 0x21 || ch > 0x7e)
            return HTTP_E_BAD; /* CTL, a second SP, or a non-ASCII byte */
    }
    if (c->i == start)
        return HTTP_E_BAD;
    req->target.ptr = (const char *)c->p + start;
    req->target.len = c->i - start;
    c->i++;
    if (!target_ok(req->method, req->target))
        return HTTP_E_BAD;

    /* "HTTP/1.0" or "HTTP/1.1", checked byte by byte so that a wrong byte
     * fails at once rather than after the whole version has arrived. */
    static const char version[] = "HTTP/1.";
    for (size_t k = 0; k < sizeof version - 1; k++, c->i++) {
        if (c->i >= c->n)
            return NEED_MORE;
        if (c->p[c->i] != (unsigned char)version[k])
            return HTTP_E_BAD;
    }
    if (c->i >= c->n)
        return NEED_MORE;
    if (c->p[c->i] != '0' && c->p[c->i] != '1')
        return HTTP_E_BAD;
    req->minor_version = c->p[c->i] - '0';
    c->i++;
    return eat_eol(c);
}

/* Reads one header line, or the empty line that ends the head (*done). */
static int eat_header_line(cursor_t *c, http_request_t *req, bool *done)
{
    if (c->i >= c->n)
        return NEED_MORE;
    unsigned char ch = c->p[c->i];
    if (ch == '\r' || ch == '\n') {
        *done = true;
        return eat_eol(c);
    }
    /* Leading whitespace is obs-fold (or whitespace between the request
     * line and the first field, RFC 9112 2.2): refused either way. */
    if (ch == ' ' || ch == '\t')
        return HTTP_E_BAD;
    if (req->num_headers == HTTP_MAX_HEADERS)
        return HTTP_E_TOO_LARGE;
    http_header_t *h = &req->headers[req->num_headers];
    int rc = eat_token(c, ':', &h->name);
    if (rc != 0)
        return rc; /* whitespace before the colon is a non-tchar: HTTP_E_BAD */

    while (c->i < c->n && (c->p[c->i] == ' ' || c->p[c->i] == '\t'))
        c->i++;
    size_t start = c->i, end = c->i;
    for (;; c->i++) {
        if (c->i >= c->n)
            return NEED_MORE;
        ch = c->p[c->i];
        if (ch == '\r' || ch == '\n')
            break;
        if (!is_value_char(ch))
            return HTTP_E_BAD;
        if (ch != ' ' && ch != '\t')
            end = c->i + 1;
    }
    h->value.ptr = (const char *)c->p + start;
    h->value.len = end - start;
    rc = eat_eol(c);
    if (rc == 0)
        req->num_headers++;
    return rc;
}

/* 1*DIGIT without overflow. */
static int parse_content_length(http_str_t v, uint64_t *out)
{
    if (v.len == 0)
        return HTTP_E_BAD;
    uint64_t n = 0;
    for (size_t k = 0; k < v.len; k++) {
        unsigned char ch = (unsigned char)v.ptr[k];
        if (ch < '0' || ch > '9')
            return HTTP_E_BAD;
        if (n > (UINT64_MAX - (ch - '0')) / 10)
            return HTTP_E_BAD;
        n = n * 10 + (ch - '0');
    }
    *out = n;
    return 0;
}

/* Scans a Connection value's comma-separated tokens for close/keep-alive. */
static void scan_connection(http_str_t v, bool *close, bool *keep)
{
    size_t k = 0;
    while (k < v.len) {
        while (k < v.len && (v.ptr[k] == ' ' || v.ptr[k] == '\t' || v.ptr[k] == ','))
            k++;
        size_t start = k;
        while (k < v.len && v.ptr[k] != ',')
            k++;
        size_t end = k;
        while (end > start && (v.ptr[end - 1] == ' ' || v.ptr[end - 1] == '\t'))
            end--;
        http_str_t tok = { v.ptr + start, end - start };
        if (str_ieq(tok, "close"))
            *close = true;
        else if (str_ieq(tok, "keep-alive"))
            *keep = true;
    }
}

/* The rules over the parsed fields: framing, Host and keep-alive. */
static int check_fields(http_request_t *req)
{
    bool te = false, conn_close = false, conn_keep = false;
    int hosts = 0;
    for (size_t k = 0; k < req->num_headers; k++) {
        const http_header_t *h = &req->headers[k];
        if (str_ieq(h->name, "content-length")) {
            uint64_t n;
            int rc = parse_content_length(h->value, &n);
            if (rc != 0)
                return rc;
            if (req->has_content_length && n != req->content_length)
                return HTTP_E_BAD;
            req->has_content_length = true;
            req->content_length = n;
        } else if (str_ieq(h->name, "transfer-encoding")) {
            te = true;
        } else if (str_ieq(h->name, "connection")) {
            scan_connection(h->value, &conn_close, &conn_keep);
        } else if (str_ieq(h->name, "host")) {
            hosts++;
        }
    }
    if (hosts > 1 || (req->minor_version == 1 && hosts == 0))
        return HTTP_E_BAD;
    if (te)
        return HTTP_E_UNSUPPORTED;
    req->keep_alive = req->minor_version == 1 ? !conn_close : (conn_keep && !conn_close);
    return 0;
}

int http_parse_request(const char *buf, size_t len, size_t max_head, http_request_t *req)
{
    memset(req, 0, sizeof *req);
    if (len == 0)
        return 0; /* also keeps buf + 0 off a NULL buf */
    /* The return value is an int, so no head may be longer than INT_MAX. */
    if (max_head > INT_MAX)
        max_head = INT_MAX;
    cursor_t c = { (const unsigned char *)buf, len < max_head ? len : max_head, 0 };

    int rc = eat_request_line(&c, req);
    for (bool done = false; rc == 0 && !done;)
        rc = eat_header_line(&c, req, &done);
    if (rc == NEED_MORE) {
        /* The scan stopped at c.n: that is the end of the bytes read so
         * far, or the head limit with more bytes behind it. */
        memset(req, 0, sizeof *req);
        return len > max_head ? HTTP_E_TOO_LARGE : 0;
    }
    if (rc != 0)
        return rc;

    rc = check_fields(req);
    if (rc != 0)
        return rc;
    req->head_len = c.i;
    if (req->content_length == 0)
        return (int)c.i;
    if (req->content_length > (uint64_t)(INT_MAX - c.i))
        return HTTP_E_BODY_TOO_LARGE;
    if (len - c.i < req->content_length)
        return 0; /* head parsed, body still coming */
    req->body = buf + c.i;
    req->body_len = (size_t)req->content_length;
    return (int)(c.i + req->body_len);
}

const http_str_t *http_request_header(const http_request_t *req, const char *name)
{
    for (size_t k = 0; k < req->num_headers; k++)
        if (str_ieq(req->headers[k].name, name))
            return &req->headers[k].value;
    return NULL;
}

const char *http_err_name(int err)
{
    switch (err) {
#define HTTP__ERR_NAME(name, val, msg) \
    case HTTP_##name:                  \
        return #name;
        HTTP_ERRNO_MAP(HTTP__ERR_NAME)
#undef HTTP__ERR_NAME
    default:
        return err >= 0 ? "OK" : "UNKNOWN";
    }
}

const char *http_strerror(int err)
{
    switch (err) {
#define HTTP__ERR_MSG(name, val, msg) \
    case HTTP_##name:                 \
        return msg;
        HTTP_ERRNO_MAP(HTTP__ERR_MSG)
#undef HTTP__ERR_MSG
    default:
        return err >= 0 ? "success" : "unknown error";
    }
}
