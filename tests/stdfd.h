/* tests/stdfd.h - helpers for tests of the process's own fds 0, 1 and 2
 * (weft_stdin_open & co): put a pipe end in place of one of them for the
 * length of a test and put the original back after, read a pipe with a
 * deadline, and the O_NONBLOCK bit of an fd. Check runs each test in a
 * forked child by default, but under CK_FORK=no (valgrind) every test
 * shares the process, so a test must restore what it swapped. */
#ifndef WEFT_TEST_STDFD_H
#define WEFT_TEST_STDFD_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <weft/weft.h>

typedef struct {
    int fd;    /* 0, 1 or 2 */
    int saved; /* a copy of the original, or -1 when fd was closed */
} stdfd_swap_t;

/* Makes fd refer to what `with` refers to, and closes `with`. Flushes
 * every stdio stream first, so output buffered before the swap (Check's
 * TAP lines) does not land in the test's pipe. */
static inline void stdfd_swap(stdfd_swap_t *s, int fd, int with)
{
    fflush(NULL);
    s->fd = fd;
    s->saved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    ck_assert_int_eq(dup2(with, fd), fd);
    ck_assert_int_eq(close(with), 0);
}

/* Puts the original back (which closes the test's pipe end). */
static inline void stdfd_restore(stdfd_swap_t *s)
{
    if (s->saved >= 0) {
        ck_assert_int_eq(dup2(s->saved, s->fd), s->fd);
        ck_assert_int_eq(close(s->saved), 0);
    } else {
        ck_assert_int_eq(close(s->fd), 0);
    }
}

static inline bool fd_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    ck_assert_int_ge(fl, 0);
    return (fl & O_NONBLOCK) != 0;
}

static inline void set_nonblocking(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    ck_assert_int_ge(fl, 0);
    ck_assert_int_eq(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK), 0);
}

static inline long long stdfd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads fd (blocking or not) until len bytes came, the end of stream, or
 * ms milliseconds passed; returns the bytes read. Safe off the test thread
 * (no Check calls). */
static inline size_t read_with_deadline(int fd, void *buf, size_t len, long ms)
{
    long long end = stdfd_now_ms() + ms;
    size_t got = 0;
    while (got < len) {
        long long left = end - stdfd_now_ms();
        if (left <= 0)
            break;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* The tid whose /proc/<pid>/task/<tid>/schedstat the entry `name` of
 * /proc/self/fd is (the file the blocking detector's watchdog keeps open
 * for a worker thread, docs/blocking.md), or 0 when it is anything else. */
static inline int watchdog_fd_tid(const char *name)
{
    char link[300], target[128], rest[16];
    snprintf(link, sizeof link, "/proc/self/fd/%s", name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    int pid, tid;
    if (sscanf(target, "/proc/%d/task/%d/%15s", &pid, &tid, rest) != 3 || strcmp(rest, "schedstat") != 0)
        return 0;
    return tid;
}

/* Entries in a /proc/self directory (fd or task), or -1. */
static inline int proc_self_count(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return strcmp(dir, "/proc/self/fd") == 0 ? n - 1 : n; /* not the fd opendir holds */
}

typedef struct {
    int fds, threads;
} proc_usage_t;

static inline proc_usage_t proc_usage(void)
{
    return (proc_usage_t){ proc_self_count("/proc/self/fd"), proc_self_count("/proc/self/task") };
}

/* Asserts that the fds and threads are back to `before`. A joined thread
 * can stay listed for a moment after pthread_join returns (the kernel
 * reaps it after waking the joiner): up to 2 s for that. */
static inline void assert_usage_back(proc_usage_t before)
{
    long long end = stdfd_now_ms() + 2000;
    proc_usage_t now = proc_usage();
    while (now.threads != before.threads && stdfd_now_ms() < end) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
        now = proc_usage();
    }
    ck_assert_int_eq(now.fds, before.fds);
    ck_assert_int_eq(now.threads, before.threads);
}

/* Creates and frees a runtime once before the tests, so that what lives
 * for the whole process (libuv's signal pipe) is there before a test
 * counts its fds. */
static inline void stdfd_warm_up(void)
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = 2;
    weft_runtime_t *rt = NULL;
    if (weft_runtime_new(&b, &rt) != 0)
        abort();
    weft_runtime_free(rt);
}

#endif
