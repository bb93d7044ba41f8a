/* tests/fuzz_http_parser.c - libFuzzer target for examples/http_parser.c.
 *
 * Parses the input under several head caps and checks what must hold for
 * any bytes: the return is 0, an HTTP_E_* code or a length within the
 * input; every span lies inside the request it came from; the result does
 * not depend on bytes past the request (parsing just the returned prefix
 * gives the same answer); errors are final (the input cut at any point
 * gives 0 or the same error). libFuzzer hands over an exactly-sized heap
 * buffer, so ASan reports any read past the end.
 *
 * Build: meson setup -Dfuzz=true with CC=clang (see tests/meson.build). */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../examples/http_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static int span_in(http_str_t v, const char *b, size_t len)
{
    if (v.ptr == NULL)
        return v.len == 0;
    return v.ptr >= b && v.len <= len && (size_t)(v.ptr - b) <= len - v.len;
}

static void check(const char *b, size_t len, size_t max_head, int rc, const http_request_t *req)
{
    CHECK(rc == 0 || rc == HTTP_E_BAD || rc == HTTP_E_TOO_LARGE || rc == HTTP_E_UNSUPPORTED ||
          rc == HTTP_E_BODY_TOO_LARGE || (rc > 0 && (size_t)rc <= len));
    if (rc == 0 && req->head_len > 0) {
        /* Head complete, body still coming. */
        CHECK(req->head_len <= len && req->head_len <= max_head);
        CHECK(req->content_length > len - req->head_len);
        CHECK(req->body == NULL);
    }
    if (rc <= 0)
        return;
    size_t head = req->head_len;
    CHECK(head > 0 && head <= max_head && head <= (size_t)rc);
    CHECK((size_t)rc == head + req->body_len);
    CHECK(req->body_len == req->content_length);
    CHECK(req->body_len == 0 ? req->body == NULL : req->body == b + head);
    CHECK(req->minor_version == 0 || req->minor_version == 1);
    CHECK(req->num_headers <= HTTP_MAX_HEADERS);
    CHECK(span_in(req->method, b, head) && req->method.len > 0);
    CHECK(span_in(req->target, b, head) && req->target.len > 0);
    for (size_t h = 0; h < req->num_headers; h++) {
        CHECK(span_in(req->headers[h].name, b, head) && req->headers[h].name.len > 0);
        CHECK(span_in(req->headers[h].value, b, head));
        CHECK(req->headers[h].value.ptr > req->headers[h].name.ptr + req->headers[h].name.len); /* past ':' */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Caps around the usual sizes plus degenerate ones; the first input byte
     * also picks one, so the fuzzer can steer the cap onto its own length. */
    size_t caps[] = { 0, 1, 16, 64, 256, 8192, SIZE_MAX, size ? data[0] : 0 };
    const char *b = (const char *)data;
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        http_request_t req;
        int rc = http_parse_request(b, size, caps[k], &req);
        check(b, size, caps[k], rc, &req);
        if (rc > 0) {
            /* Pipelining: the request alone parses the same; the rest parses
             * on its own as the next request. */
            http_request_t again;
            CHECK(http_parse_request(b, (size_t)rc, caps[k], &again) == rc);
            CHECK(again.head_len == req.head_len && again.num_headers == req.num_headers);
            int next = http_parse_request(b + rc, size - (size_t)rc, caps[k], &again);
            check(b + rc, size - (size_t)rc, caps[k], next, &again);
        }
        if (rc != 0 && size > 0) {
            /* Errors and completion are final: a shorter cut never gives a
             * different error, and no cut gives a complete request unless
             * this is one. */
            http_request_t cut;
            size_t n = size - 1 - (size_t)(data[size - 1] % size);
            int r2 = http_parse_request(b, n, caps[k], &cut);
            check(b, n, caps[k], r2, &cut);
            CHECK(r2 == 0 || r2 == rc);
        }
    }
    return 0;
}
