/* tests/test_eintr.c - system calls interrupted by a signal (EINTR) inside
 * weft's blocking-pool jobs are retried, so the weft call still succeeds.
 *
 * How a test makes a call fail with EINTR: it installs a SIGUSR1 handler
 * without SA_RESTART, starts a weft call whose job blocks on a pipe or a
 * FIFO (an open with no writer, a read with no data, a write into a full
 * pipe), and a "poker" thread finds the pool thread blocked in that very
 * call (/proc/self/task/TID/syscall names the call and its first
 * argument; the thread's name ends in "-blk"), sends it SIGUSR1 with
 * tgkill, and waits until the handler has run on that thread and the
 * thread is blocked in the same call again (the retry). It does that
 * three times, then unblocks the call (opens the other end, writes the
 * data, drains the pipe); the weft call must then return what it would
 * have without the signals. A call that gave up on EINTR ends instead:
 * the weft call returns -EINTR and the poker records that the thread
 * never came back to the call.
 *
 * Covered: opening a FIFO and reading it through weft_file_t
 * (reactor/fs/ops.c open, reactor/fs/file.c read_once), writing to a
 * full FIFO through weft_file_t (file.c write_fully), weft_fs_read_file
 * on a FIFO (ops.c open and read_to_end), and the standard streams' read
 * and write jobs (reactor/process/stdio.c) on pipes put in place of fds
 * 0 and 1. Sockets (reactor/net/, weft__io_failed) are not here: their
 * fds are non-blocking, so their calls never sleep and cannot be
 * interrupted. */
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "stdfd.h"
#include "testlib.h"

#define POKES 3                /* signals per blocked call */
#define FIND_MS 30000          /* to find the blocked call (generous: valgrind) */
#define BACK_MS 10000          /* for the handler to run and the call to be retried */

/* ---- The signal ------------------------------------------------------------------ */

static atomic_long target_tid; /* the thread the poker signals */
static atomic_int target_hits; /* handler runs on that thread */

static void on_usr1(int sig)
{
    (void)sig;
    if (syscall(SYS_gettid) == atomic_load(&target_tid))
        atomic_fetch_add(&target_hits, 1);
}

static struct sigaction old_usr1;

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read, write or open fails with EINTR */
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old_usr1), 0);
}

static void remove_handler(void)
{
    ck_assert_int_eq(sigaction(SIGUSR1, &old_usr1, NULL), 0);
}

/* ---- Finding the blocked call ------------------------------------------------------ */

/* What the pool thread must be blocked in: system call nr, with first
 * argument fd (>= 0), or an fd that refers to path (non-NULL), or any. */
typedef struct {
    long nr;
    int fd;
    const char *path;
} blocked_in_t;

static bool read_small(const char *file, char *buf, size_t len)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

static bool thread_blocked_in(long tid, const blocked_in_t *want)
{
    char file[64], text[256];
    snprintf(file, sizeof file, "/proc/self/task/%ld/comm", tid);
    if (!read_small(file, text, sizeof text) || strstr(text, "-blk") == NULL)
        return false;
    snprintf(file, sizeof file, "/proc/self/task/%ld/syscall", tid);
    long nr;
    unsigned long arg0;
    /* "running" when it is not in a system call; else "nr 0xarg0 ..." */
    if (!read_small(file, text, sizeof text) || sscanf(text, "%ld 0x%lx", &nr, &arg0) != 2 || nr != want->nr)
        return false;
    if (want->fd >= 0)
        return arg0 == (unsigned long)want->fd;
    if (want->path != NULL) {
        char link[64], target[256];
        snprintf(link, sizeof link, "/proc/self/fd/%lu", arg0);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            return false;
        target[n] = '\0';
        return strcmp(target, want->path) == 0;
    }
    return true;
}

/* A pool thread blocked as `want` says, or 0 once ms have passed. */
static long find_blocked(const blocked_in_t *want, long ms)
{
    long long end = stdfd_now_ms() + ms;
    do {
        DIR *d = opendir("/proc/self/task");
        if (d == NULL)
            return 0;
        long found = 0;
        struct dirent *e;
        while (found == 0 && (e = readdir(d)) != NULL) {
            long tid = atol(e->d_name);
            if (tid > 0 && thread_blocked_in(tid, want))
                found = tid;
        }
        closedir(d);
        if (found != 0)
            return found;
        sleep_ms(1);
    } while (stdfd_now_ms() < end);
    return 0;
}

/* ---- The poker ------------------------------------------------------------------------ */

typedef struct {
    blocked_in_t in;
    void (*unblock)(void *arg); /* ends the wait: opens, writes or drains */
    void *arg;
} poke_step_t;

typedef struct {
    pthread_t th;
    const poke_step_t *steps;
    int nsteps;
    int retried; /* signals after which the thread was back in its call */
} poker_t;

static void *poke(void *arg)
{
    poker_t *p = arg;
    for (int i = 0; i < p->nsteps; i++) {
        const poke_step_t *st = &p->steps[i];
        long tid = find_blocked(&st->in, FIND_MS);
        if (WEFT_TEST_CHECK_MSG(tid != 0, "step %d: no pool thread blocked in system call %ld", i, st->in.nr)) {
            for (int k = 0; k < POKES; k++) {
                atomic_store(&target_tid, tid);
                int before = atomic_load(&target_hits);
                if (!WEFT_TEST_CHECK(syscall(SYS_tgkill, getpid(), tid, SIGUSR1) == 0))
                    break;
                long long end = stdfd_now_ms() + BACK_MS;
                while (atomic_load(&target_hits) == before && stdfd_now_ms() < end)
                    sleep_ms(1);
                bool back = atomic_load(&target_hits) > before &&
                            find_blocked(&st->in, end - stdfd_now_ms()) == tid;
                if (!WEFT_TEST_CHECK_MSG(back, "step %d, signal %d: the interrupted call was not retried", i, k))
                    break;
                p->retried++;
            }
        }
        st->unblock(st->arg); /* even after a failure: the test must end */
    }
    return NULL;
}

static void poker_start(poker_t *p, const poke_step_t *steps, int nsteps)
{
    *p = (poker_t){ .steps = steps, .nsteps = nsteps };
    ck_assert_int_eq(pthread_create(&p->th, NULL, poke, p), 0);
}

/* Joins the poker; returns how many signals were followed by a retry
 * (POKES per step when all went well). The test asserts on it, and calls
 * ASSERT_NO_TEST_FAIL, only once it has put everything back: under
 * CK_FORK=no a failed assertion leaves the test at once, and a swapped
 * fd or a live runtime would fail every later test too. */
static int poker_join(poker_t *p)
{
    ck_assert_int_eq(pthread_join(p->th, NULL), 0);
    return p->retried;
}

/* ---- Unblocking actions (on the poker thread: no Check calls) ---------------------------- */

typedef struct {
    const char *path;
    int fd;       /* the test's end */
    const void *data;
    size_t len;
    char *got;    /* drain: where the bytes go */
    size_t got_len;
} end_t;

/* Opens the FIFO's write end. O_NONBLOCK: succeeds only while a reader
 * is inside its open, so a reader that gave up does not hang the test. */
static void open_writer(void *arg)
{
    end_t *e = arg;
    e->fd = open(e->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    WEFT_TEST_CHECK_MSG(e->fd >= 0, "open_writer: %s", strerror(errno));
}

static void write_data(void *arg)
{
    end_t *e = arg;
    WEFT_TEST_CHECK(write(e->fd, e->data, e->len) == (ssize_t)e->len);
}

static void write_data_and_close(void *arg)
{
    end_t *e = arg;
    write_data(e);
    close(e->fd);
    e->fd = -1;
}

static void drain(void *arg)
{
    end_t *e = arg;
    e->got_len = read_with_deadline(e->fd, e->got, e->len, BACK_MS);
}

/* Fills the pipe or FIFO that fd writes to; returns the bytes written. */
static size_t fill(int fd, char byte)
{
    set_nonblocking(fd, true);
    char chunk[4096];
    memset(chunk, byte, sizeof chunk);
    size_t total = 0;
    for (;;) {
        ssize_t n = write(fd, chunk, sizeof chunk);
        if (n < 0) {
            ck_assert_int_eq(errno, EAGAIN);
            break;
        }
        total += (size_t)n;
    }
    set_nonblocking(fd, false);
    return total;
}

/* ---- Helpers ------------------------------------------------------------------------------ */

static char tmpdir[64], fifo[128];

static void make_fifo(void)
{
    strcpy(tmpdir, "/tmp/weft-eintr-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
}

static void rm_fifo(void)
{
    ck_assert_int_eq(unlink(fifo), 0);
    ck_assert_int_eq(rmdir(tmpdir), 0);
}

static int64_t block_on_i64(weft_runtime_t *rt, weft_future_t *f, size_t out_size)
{
    union {
        int i;
        ssize_t z;
        int64_t l;
    } out = { .l = -9999 };
    ck_assert_int_eq(weft_runtime_block_on(rt, f, &out), 0);
    return out_size == sizeof(int) ? out.i : out_size == sizeof(ssize_t) ? out.z : out.l;
}
#define BLOCK_ON(rt, fut, type) ((type)block_on_i64((rt), WEFT_FUTURE(fut), sizeof(type)))

/* ---- Files ---------------------------------------------------------------------------------- */

/* weft_fs_open of a FIFO blocks in open(2) until a writer comes; then a
 * read blocks until data comes. Both are interrupted three times. */
START_TEST(fifo_open_and_read_survive_eintr)
{
    proc_usage_t u0 = proc_usage();
    make_fifo();
    install_handler();
    weft_runtime_t *rt = shape_rt(_i);
    end_t w = { .path = fifo, .fd = -1, .data = "hello", .len = 5 };

    poker_t pk;
    poke_step_t open_step[] = { { { SYS_openat, -1, NULL }, open_writer, &w } };
    poker_start(&pk, open_step, 1);
    weft_file_t f;
    weft_fs_op_t op = weft_fs_open(fifo, WEFT__TMP(weft_open_options_t, .read = true), &f);
    int rc = BLOCK_ON(rt, &op, int);
    int retried = poker_join(&pk);

    ssize_t n = -9999;
    char buf[16] = { 0 };
    if (rc == 0 && w.fd >= 0) {
        poke_step_t read_step[] = { { { SYS_read, weft_file_fd(&f), NULL }, write_data, &w } };
        poker_start(&pk, read_step, 1);
        weft_file_op_t rd = weft_file_read(&f, buf, sizeof buf);
        n = BLOCK_ON(rt, &rd, ssize_t);
        retried += poker_join(&pk);
    }
    if (rc == 0)
        weft_file_close(&f);
    weft_runtime_free(rt);
    if (w.fd >= 0)
        close(w.fd);
    remove_handler();
    rm_fifo();

    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(n, 5);
    ck_assert_str_eq(buf, "hello");
    ck_assert_int_eq(retried, 2 * POKES);
    assert_usage_back(u0);
    ASSERT_NO_LIVE();
}
END_TEST

/* A write into a full FIFO blocks until the test drains it. */
START_TEST(fifo_write_survives_eintr)
{
    proc_usage_t u0 = proc_usage();
    make_fifo();
    install_handler();
    int rfd = open(fifo, O_RDWR | O_CLOEXEC); /* a reader (and writer), so nothing blocks in open */
    ck_assert_int_ge(rfd, 0);
    size_t full = fill(rfd, 'x');
    char *got = malloc(full + 5);
    ck_assert_ptr_nonnull(got);
    weft_runtime_t *rt = shape_rt(_i);
    weft_file_t f;
    weft_fs_op_t op = weft_fs_open(fifo, WEFT__TMP(weft_open_options_t, .write = true), &f);
    ck_assert_int_eq(BLOCK_ON(rt, &op, int), 0);

    end_t d = { .fd = rfd, .len = full + 5, .got = got };
    poker_t pk;
    poke_step_t step[] = { { { SYS_write, weft_file_fd(&f), NULL }, drain, &d } };
    poker_start(&pk, step, 1);
    weft_file_op_t wr = weft_file_write_all(&f, "world", 5); /* may return once buffered */
    ssize_t n = BLOCK_ON(rt, &wr, ssize_t);
    weft_file_op_t fl = weft_file_flush(&f);
    int rc = BLOCK_ON(rt, &fl, int);
    int retried = poker_join(&pk);
    weft_file_close(&f);
    weft_runtime_free(rt);
    close(rfd);
    remove_handler();
    rm_fifo();

    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(retried, POKES);
    ck_assert_uint_eq(d.got_len, full + 5);
    ck_assert_mem_eq(got + full, "world", 5);
    for (size_t i = 0; i < full; i++)
        ck_assert_int_eq(got[i], 'x');
    free(got);
    assert_usage_back(u0);
    ASSERT_NO_LIVE();
}
END_TEST

/* weft_fs_read_file opens the FIFO and reads it to its end in one job. */
START_TEST(read_file_of_a_fifo_survives_eintr)
{
    proc_usage_t u0 = proc_usage();
    make_fifo();
    install_handler();
    weft_runtime_t *rt = shape_rt(_i);
    end_t w = { .path = fifo, .fd = -1, .data = "hello world", .len = 11 };
    poker_t pk;
    poke_step_t steps[] = {
        { { SYS_openat, -1, NULL }, open_writer, &w },
        { { SYS_read, -1, fifo }, write_data_and_close, &w },
    };
    poker_start(&pk, steps, 2);
    weft_fs_buf_t buf = { 0 };
    weft_fs_op_t op = weft_fs_read_file(fifo, 64, &buf);
    int rc = BLOCK_ON(rt, &op, int);
    int retried = poker_join(&pk);
    char got[16] = { 0 };
    size_t len = buf.len;
    if (rc == 0 && len < sizeof got)
        memcpy(got, buf.data, len);
    if (rc == 0)
        weft_fs_buf_free(&buf);
    weft_runtime_free(rt);
    if (w.fd >= 0)
        close(w.fd); /* write_data_and_close never ran: the open failed */
    remove_handler();
    rm_fifo();

    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(len, 11);
    ck_assert_str_eq(got, "hello world");
    ck_assert_int_eq(retried, 2 * POKES);
    assert_usage_back(u0);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Standard streams -------------------------------------------------------------------------- */

START_TEST(stdin_read_survives_eintr)
{
    proc_usage_t u0 = proc_usage();
    install_handler();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    stdfd_swap_t sw;
    stdfd_swap(&sw, 0, p[0]);
    weft_runtime_t *rt = shape_rt(_i);
    weft_stdio_t in;
    ck_assert_int_eq(weft_stdin_open(&in), 0);

    end_t w = { .fd = p[1], .data = "hello", .len = 5 };
    poker_t pk;
    poke_step_t step[] = { { { SYS_read, 0, NULL }, write_data, &w } };
    poker_start(&pk, step, 1);
    char buf[16] = { 0 };
    weft_io_op_t rd = weft_io_read(weft_stdio_as(&in), buf, sizeof buf);
    ssize_t n = BLOCK_ON(rt, &rd, ssize_t);
    int retried = poker_join(&pk);
    weft_stdio_close(&in);
    weft_runtime_free(rt);
    stdfd_restore(&sw);
    close(p[1]);
    remove_handler();

    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(n, 5);
    ck_assert_str_eq(buf, "hello");
    ck_assert_int_eq(retried, POKES);
    assert_usage_back(u0);
    ASSERT_NO_LIVE();
}
END_TEST

/* fd 1 on a full pipe: the write job blocks with nothing written (so the
 * signal gives EINTR, not a short count) until the poker drains it. */
START_TEST(stdout_write_survives_eintr)
{
    proc_usage_t u0 = proc_usage();
    install_handler();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    size_t full = fill(p[1], 'x');
    char *got = malloc(full + 5);
    ck_assert_ptr_nonnull(got);
    stdfd_swap_t sw;
    stdfd_swap(&sw, 1, p[1]);
    weft_runtime_t *rt = shape_rt(_i);
    weft_stdio_t out;
    ck_assert_int_eq(weft_stdout_open(&out), 0);
    weft_stream_t *s = weft_stdio_as(&out);

    end_t d = { .fd = p[0], .len = full + 5, .got = got };
    poker_t pk;
    poke_step_t step[] = { { { SYS_write, 1, NULL }, drain, &d } };
    poker_start(&pk, step, 1);
    weft_io_op_t wr = weft_io_write(s, "world", 5); /* returns once copied: the job writes */
    ssize_t n = BLOCK_ON(rt, &wr, ssize_t);
    weft_io_op_t fl = weft_io_flush(s);
    int rc = BLOCK_ON(rt, &fl, int);
    int retried = poker_join(&pk);
    weft_stdio_close(&out);
    weft_runtime_free(rt);
    stdfd_restore(&sw);
    close(p[0]);
    remove_handler();

    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(retried, POKES);
    ck_assert_uint_eq(d.got_len, full + 5);
    ck_assert_mem_eq(got + full, "world", 5);
    free(got);
    assert_usage_back(u0);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    stdfd_warm_up();
    Suite *s = suite_create("eintr");
    TCase *tc = tcase_create("eintr");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, fifo_open_and_read_survive_eintr, 0, N_SHAPES);
    tcase_add_loop_test(tc, fifo_write_survives_eintr, 0, N_SHAPES);
    tcase_add_loop_test(tc, read_file_of_a_fifo_survives_eintr, 0, N_SHAPES);
    tcase_add_loop_test(tc, stdin_read_survives_eintr, 0, N_SHAPES);
    tcase_add_loop_test(tc, stdout_write_survives_eintr, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
