/* tests/test_http_server.c - examples/http.c against raw sockets on
 * 127.0.0.1: pipelining, the head cap, slow and idle clients, the
 * connection cap, and graceful shutdown on SIGINT. The server runs as a
 * child process (path in $HTTP_BIN) with short timeouts; every test stops
 * it and is bounded by Check's timeout. */
#include <arpa/inet.h>
#include <poll.h>
#include <sys/wait.h>

#include "testlib.h"

static pid_t server;
#define OK_TAIL "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!"
static uint16_t port;

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    for (int i = 0; i < 200; i++) { /* the server may still be starting */
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
        close(fd);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        sleep_ms(10);
    }
    ck_abort_msg("cannot connect to the http example on port %u", port);
    return -1;
}

static void start_idle(const char *max_conns, const char *idle_ms)
{
    const char *bin = getenv("HTTP_BIN");
    ck_assert_ptr_nonnull(bin);
    port = free_port();
    char p[16];
    snprintf(p, sizeof p, "%u", port);
    server = fork();
    if (server == 0) {
        execl(bin, bin, p, "--workers", "2", "--idle-ms", idle_ms, "--header-ms", "300", "--grace-ms", "5000",
              "--max-conns", max_conns, (char *)NULL);
        _exit(127);
    }
    close(dial()); /* up */
    sleep_ms(100); /* and that probe connection gone again */
}

static void start(const char *max_conns)
{
    start_idle(max_conns, "300");
}

/* A failed test must not leave its server behind. */
static void teardown(void)
{
    if (server > 0 && waitpid(server, NULL, WNOHANG) == 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
    }
    server = 0;
}

static int stop(void)
{
    kill(server, SIGINT);
    int st = 0;
    for (int i = 0; i < 300; i++) { /* 3 s */
        if (waitpid(server, &st, WNOHANG) == server)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        sleep_ms(10);
    }
    kill(server, SIGKILL);
    waitpid(server, &st, 0);
    ck_abort_msg("the server did not stop on SIGINT");
    return -1;
}

/* Reads until `want` bytes, EOF, or timeout_ms of silence. */
static size_t read_some(int fd, char *buf, size_t cap, size_t want, int timeout_ms)
{
    size_t got = 0;
    while (got < want && got < cap) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, timeout_ms) <= 0)
            break;
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got < cap ? got : cap - 1] = 0;
    return got;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

START_TEST(pipelined_requests_answered_in_order)
{
    start("100");
    int fd = dial();
    const char *req = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    static char buf[4096];
    read_some(fd, buf, sizeof buf, sizeof buf, 1000);
    ck_assert_int_eq(count(buf, "HTTP/1.1 200 OK"), 3);
    ck_assert_int_eq(count(buf, "Hello, World!"), 3);
    close(fd);
    ck_assert_int_eq(stop(), 0);
}
END_TEST

/* HTTP/1.0 with "Connection: Keep-Alive" (what ab -k sends): the answer
 * says keep-alive and the connection serves a second request; HTTP/1.0
 * without it is answered and closed. */
START_TEST(http10_keep_alive_as_10_clients_expect)
{
    start("100");
    int fd = dial();
    const char *req = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: x\r\n\r\n";
    static char buf[4096];
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        size_t got = read_some(fd, buf, sizeof buf, 1, 1000);
        ck_assert_uint_gt(got, 0);
        if (count(buf, "Hello, World!") == 0) /* the body may come in a second read */
            read_some(fd, buf + got, sizeof buf - got, 1, 1000);
        ck_assert_int_eq(count(buf, "HTTP/1.1 200 OK"), 1);
        ck_assert_int_eq(count(buf, "Connection: keep-alive\r\n"), 1);
        ck_assert_int_eq(count(buf, "Hello, World!"), 1);
    }
    close(fd);
    fd = dial();
    const char *plain = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, plain, strlen(plain)), (ssize_t)strlen(plain));
    read_some(fd, buf, sizeof buf, sizeof buf, 2000); /* to EOF: the server closes */
    ck_assert_int_eq(count(buf, "Hello, World!"), 1);
    ck_assert_int_eq(count(buf, "keep-alive"), 0);
    struct pollfd p = { fd, POLLIN, 0 };
    ck_assert_int_eq(poll(&p, 1, 1000), 1);
    ck_assert_int_eq(read(fd, buf, sizeof buf), 0); /* closed */
    close(fd);
    ck_assert_int_eq(stop(), 0);
}
END_TEST

/* ApacheBench itself (apache2-utils), when installed: 200 keep-alive
 * requests over 4 connections finish long before the idle timeout (300
 * ms here would stall each connection's last request if 1.0 keep-alive
 * were not answered). */
START_TEST(ab_keep_alive_completes)
{
    if (access("/usr/bin/ab", X_OK) != 0) {
        fprintf(stderr, "# ab not installed (apt-get install apache2-utils): skipped\n");
        return;
    }
    start_idle("100", "20000");
    char url[64], cmd[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", port);
    snprintf(cmd, sizeof cmd, "timeout 10 /usr/bin/ab -q -k -n 200 -c 4 %s 2>&1", url);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    static char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    int st = pclose(f);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "ab failed or timed out: %s", out);
    ck_assert_msg(strstr(out, "Complete requests:      200") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "Failed requests:        0") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "Keep-Alive requests:    200") != NULL, "%s", out);
    ck_assert_int_eq(stop(), 0);
}
END_TEST

START_TEST(oversized_head_gets_431)
{
    start("100");
    int fd = dial();
    static char big[10000];
    memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
    memset(big + 23, 'a', sizeof big - 23);
    ssize_t w = write(fd, big, sizeof big);
    ck_assert_int_gt(w, 0);
    static char buf[512];
    read_some(fd, buf, sizeof buf, sizeof buf, 1000);
    ck_assert_ptr_nonnull(strstr(buf, "431"));
    close(fd);
    ck_assert_int_eq(stop(), 0);
}
END_TEST

START_TEST(malformed_gets_400)
{
    start("100");
    int fd = dial();
    const char *bad = "GET / HTTP/9.9\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    static char buf[512];
    read_some(fd, buf, sizeof buf, sizeof buf, 1000);
    ck_assert_ptr_nonnull(strstr(buf, "400"));
    close(fd);
    ck_assert_int_eq(stop(), 0);
}
END_TEST

START_TEST(slow_client_gets_408_and_idle_one_is_closed)
{
    start("100");
    int slow = dial(), idle = dial();
    ck_assert_int_eq(write(slow, "GET / HT", 8), 8); /* and then nothing */
    uint64_t t0 = weft_now_ns();
    static char buf[512];
    read_some(slow, buf, sizeof buf, sizeof buf, 2000);
    ck_assert_ptr_nonnull(strstr(buf, "408"));
    /* The idle connection is closed too (EOF), without any request. */
    ck_assert_uint_eq(read_some(idle, buf, sizeof buf, 1, 2000), 0);
    ck_assert_uint_lt(weft_now_ns() - t0, 1500u * 1000000u);
    close(slow);
    close(idle);
    ck_assert_int_eq(stop(), 0);
}
END_TEST

START_TEST(trickling_client_gets_408)
{
    start("100");
    int fd = dial();
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa";
    uint64_t t0 = weft_now_ns();
    static char buf[512];
    size_t got = 0;
    /* one byte every 50 ms: each read succeeds, the head never ends */
    for (size_t i = 0; i < strlen(req) && got == 0; i++) {
        if (write(fd, req + i, 1) != 1)
            break;
        got = read_some(fd, buf, sizeof buf, sizeof buf, 50);
    }
    if (got == 0)
        read_some(fd, buf, sizeof buf, sizeof buf, 1000);
    ck_assert_msg(strstr(buf, "408") != NULL, "got '%s'", buf);
    ck_assert_uint_lt(weft_now_ns() - t0, 1500u * 1000000u); /* header-ms is 300 */
    close(fd);
    ck_assert_int_eq(stop(), 0);
}
END_TEST

START_TEST(sigint_closes_idle_connections_promptly)
{
    start_idle("100", "10000");
    int fd = dial(); /* an idle keep-alive connection, 10 s idle limit, 5 s grace */
    sleep_ms(50);
    uint64_t t0 = weft_now_ns();
    ck_assert_int_eq(stop(), 0);
    ck_assert_uint_lt(weft_now_ns() - t0, 1000u * 1000000u);
    close(fd);
}
END_TEST

START_TEST(connection_cap_answers_503)
{
    start("2");
    int a = dial(), b = dial();
    sleep_ms(50);
    int c = dial();
    static char buf[512];
    read_some(c, buf, sizeof buf, sizeof buf, 1000);
    ck_assert_ptr_nonnull(strstr(buf, "503"));
    close(a);
    close(b);
    close(c);
    ck_assert_int_eq(stop(), 0);
}
END_TEST

START_TEST(sigint_finishes_in_flight_request)
{
    start("100");
    int fd = dial();
    static char buf[512];
    /* One full request first: proves the connection was accepted (one
     * still in the backlog at the signal is refused, by design). */
    const char *one = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, one, strlen(one)), (ssize_t)strlen(one));
    read_some(fd, buf, sizeof buf, sizeof OK_TAIL - 1, 1000);
    ck_assert_ptr_nonnull(strstr(buf, "Hello, World!"));
    ck_assert_int_eq(write(fd, "GET / HTTP/1.1\r\nHost: x\r\n", 25), 25); /* half a request */
    kill(server, SIGINT);
    sleep_ms(50);
    ck_assert_int_eq(write(fd, "\r\n", 2), 2); /* ...finished after the signal */
    read_some(fd, buf, sizeof buf, sizeof OK_TAIL - 1, 1000);
    ck_assert_msg(strstr(buf, "Hello, World!") != NULL, "after the signal: '%s'", buf);
    close(fd);
    int st = 0;
    for (int i = 0; i < 300 && waitpid(server, &st, WNOHANG) != server; i++)
        sleep_ms(10);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a write to a closed connection fails the test, not the process */
    Suite *s = suite_create("http_server");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, pipelined_requests_answered_in_order);
    tcase_add_test(tc, http10_keep_alive_as_10_clients_expect);
    tcase_add_test(tc, ab_keep_alive_completes);
    tcase_add_test(tc, oversized_head_gets_431);
    tcase_add_test(tc, malformed_gets_400);
    tcase_add_test(tc, slow_client_gets_408_and_idle_one_is_closed);
    tcase_add_test(tc, trickling_client_gets_408);
    tcase_add_test(tc, sigint_closes_idle_connections_promptly);
    tcase_add_test(tc, connection_cap_answers_503);
    tcase_add_test(tc, sigint_finishes_in_flight_request);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
