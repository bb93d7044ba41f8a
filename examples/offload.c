/* examples/offload.c - the first pitfall of async code (blocking the
 * runtime) and its cure, measured.
 *
 * A TCP server on 127.0.0.1 answers two kinds of request, one per line:
 *   "H\n"  heavy: a CPU-bound computation (--work million steps, ~30 ms)
 *   "P\n"  cheap: answered at once with "pong"
 * It runs twice, for --secs seconds each, against the same load from plain
 * client threads (blocking sockets, so the clients never depend on the
 * runtime they measure): --heavy clients sending heavy requests back to
 * back, and --cheap clients each sending a ping every millisecond.
 *   inline:   the heavy computation runs inside the connection task's poll,
 *             holding a worker; pings queued behind it wait.
 *   blocking: it runs through weft_spawn_blocking; the task awaits the join
 *             handle and the workers stay free for pings.
 * The cheap requests' latency (p50, p99, max) is printed for both modes,
 * with the number of reports from weft's blocking detector, which fires in
 * the inline mode only.
 *
 *   offload [--secs S] [--heavy N] [--cheap N] [--work M] [--workers W]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>

static uint64_t g_work = 30; /* million steps per heavy request */

/* The CPU-bound part: a dependent chain of multiply-adds (no syscalls). */
static uint64_t crunch(uint64_t millions)
{
    uint64_t x = 88172645463325252u;
    for (uint64_t i = 0; i < millions * 1000000u; i++)
        x = x * 6364136223846793005u + 1442695040888963407u;
    return x;
}

static void *crunch_job(void *arg)
{
    return (void *)(uintptr_t)crunch((uint64_t)(uintptr_t)arg);
}

/* ---- server: one task per connection ------------------------------------- */
typedef struct {
    WEFT_FRAME;
    weft_tcp_stream_t s;
    bool offload;
    char in[256];
    size_t have;
    char out[64];
    ssize_t n;
    uint64_t result;
    void *jout;
    int jrc;
    weft_tcp_io_t op;
    weft_join_handle_t job;
} conn_t;
static void conn_cleanup(conn_t *c)
{
    weft_tcp_close(&c->s);
}
WEFT_ASYNC_WITH_DROP(conn_t, conn_fn, weft_unit_t, conn_cleanup)
{
    WEFT_BEGIN();
    for (;;) {
        /* One request per line; clients wait for each answer. */
        while (memchr(self->in, '\n', self->have) == NULL) {
            if (self->have == sizeof self->in)
                WEFT_RETURN(WEFT_UNIT); /* not our protocol */
            WEFT_AWAIT(&self->op, weft_tcp_read(&self->s, self->in + self->have, sizeof self->in - self->have),
                       &self->n);
            if (self->n <= 0)
                WEFT_RETURN(WEFT_UNIT); /* closed, or an error */
            self->have += (size_t)self->n;
        }
        if (self->in[0] == 'H') {
            if (!self->offload) {
                self->result = crunch(g_work); /* the pitfall: blocks this worker */
            } else {
                if (weft_spawn_blocking(crunch_job, (void *)(uintptr_t)g_work, &self->job) != 0)
                    WEFT_RETURN(WEFT_UNIT);
                WEFT_AWAIT_REF(weft_join(&self->job, &self->jout), &self->jrc);
                if (self->jrc != 0)
                    WEFT_RETURN(WEFT_UNIT);
                self->result = (uint64_t)(uintptr_t)self->jout;
            }
            snprintf(self->out, sizeof self->out, "%llu\n", (unsigned long long)(self->result & 0xffff));
        } else {
            snprintf(self->out, sizeof self->out, "pong\n");
        }
        {
            char *nl = memchr(self->in, '\n', self->have);
            size_t used = (size_t)(nl - self->in) + 1;
            memmove(self->in, self->in + used, self->have - used);
            self->have -= used;
        }
        WEFT_AWAIT(&self->op, weft_tcp_write_all(&self->s, self->out, strlen(self->out)), &self->n);
        if (self->n < 0)
            WEFT_RETURN(WEFT_UNIT);
    }
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t *l;
    bool offload;
    int rc;
    weft_tcp_stream_t s;
    weft_tcp_accept_t acc;
} server_t;
WEFT_ASYNC(server_t, server_fn, int)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->acc, weft_tcp_accept(self->l, &self->s, NULL), &self->rc);
        if (self->rc == WEFT_EBADF)
            WEFT_RETURN(0); /* the listener was closed */
        if (self->rc != 0)
            continue; /* a connection that failed; fd exhaustion is backed off inside accept */
        weft_tcp_set_nodelay(&self->s, true);
        conn_t c = { WEFT_FRAME_INIT(conn_fn), .s = self->s, .offload = self->offload };
        if (weft_spawn_named("conn", &c, NULL) != 0)
            weft_tcp_close(&c.s);
    }
    WEFT_END();
}

/* Opens the listener and starts the server task; outputs the port. */
typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t *l;
    bool offload;
} setup_t;
WEFT_ASYNC(setup_t, setup_fn, int)
{
    WEFT_BEGIN();
    {
        int rc = weft_tcp_listen_ip("127.0.0.1", 0, 256, self->l);
        if (rc != 0) {
            fprintf(stderr, "offload: listen: %s\n", weft_strerror(rc));
            WEFT_RETURN(-1);
        }
        server_t s = { WEFT_FRAME_INIT(server_fn), .l = self->l, .offload = self->offload };
        if (weft_spawn_named("accept", &s, NULL) != 0) {
            weft_tcp_listener_close(self->l);
            WEFT_RETURN(-1);
        }
        WEFT_RETURN(weft_tcp_listener_port(self->l));
    }
    WEFT_END();
}

/* Closes the listener from inside the runtime (the accept task then ends). */
typedef struct {
    WEFT_FRAME;
    weft_tcp_listener_t *l;
} close_t;
WEFT_ASYNC(close_t, close_fn, weft_unit_t)
{
    WEFT_BEGIN();
    weft_tcp_listener_close(self->l);
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

/* ---- clients: plain threads with blocking sockets ---------------------------- */
static _Atomic bool g_stop;
static uint16_t g_port;

#define MAX_SAMPLES 200000
typedef struct {
    pthread_t th;
    bool heavy;
    long done;
    double *lat_ms; /* cheap clients: one sample per ping */
    long nlat;
    int err;
} client_t;

static double now_ms(void)
{
    return (double)weft_now_ns() / 1e6;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(g_port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = { 5, 0 }; /* a stuck server fails the run instead of hanging it */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends one request line and reads the one-line answer. */
static int ask(int fd, char what)
{
    char req[2] = { what, '\n' }, buf[64];
    if (send(fd, req, 2, MSG_NOSIGNAL) != 2)
        return -1;
    size_t have = 0;
    while (have == 0 || buf[have - 1] != '\n') {
        ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
        if (n <= 0 || (have += (size_t)n) == sizeof buf)
            return -1;
    }
    return 0;
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    int fd = dial();
    if (fd < 0) {
        c->err = 1;
        return NULL;
    }
    while (!atomic_load(&g_stop)) {
        double t0 = now_ms();
        if (ask(fd, c->heavy ? 'H' : 'P') != 0) {
            c->err = 1;
            break;
        }
        c->done++;
        if (!c->heavy) {
            if (c->nlat < MAX_SAMPLES)
                c->lat_ms[c->nlat++] = now_ms() - t0;
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    close(fd);
    return NULL;
}

/* ---- one run ------------------------------------------------------------------ */
static _Atomic int g_reports;
static void on_blocking(const weft_blocking_report_t *r, void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&g_reports, 1) == 0) /* show the first; count the rest */
        printf("  detector: worker %u stuck in task '%s' (spawned at %s) for >= %llu ms\n", r->worker,
               r->task_name ? r->task_name : "unnamed", r->task_site ? r->task_site : "?",
               (unsigned long long)r->running_ms);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double p50, p99, max;
    long pings, heavy;
    int reports;
} result_t;

static int run_mode(bool offload, unsigned workers, double secs, int nheavy, int ncheap, result_t *res)
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_MULTI_THREAD);
    b.workers = workers;
    b.on_blocking = on_blocking;
    weft_runtime_t *rt;
    int rc = weft_runtime_new(&b, &rt);
    if (rc != 0) {
        fprintf(stderr, "offload: runtime: %s\n", weft_strerror(rc));
        return 1;
    }
    atomic_store(&g_reports, 0);
    atomic_store(&g_stop, false);
    weft_tcp_listener_t l;
    setup_t st = { WEFT_FRAME_INIT(setup_fn), .l = &l, .offload = offload };
    int port = -1;
    if (weft_runtime_block_on(rt, WEFT_FUTURE(&st), &port) != 0 || port <= 0) {
        weft_runtime_free(rt);
        return 1;
    }
    g_port = (uint16_t)port;
    int n = nheavy + ncheap;
    client_t *cl = calloc((size_t)n, sizeof *cl);
    for (int i = 0; i < n; i++) {
        cl[i].heavy = i < nheavy;
        if (!cl[i].heavy)
            cl[i].lat_ms = malloc(MAX_SAMPLES * sizeof(double));
        pthread_create(&cl[i].th, NULL, client_main, &cl[i]);
    }
    struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
    nanosleep(&ts, NULL);
    atomic_store(&g_stop, true);
    int err = 0;
    long total = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(cl[i].th, NULL);
        err |= cl[i].err;
        total += cl[i].nlat;
    }
    close_t c = { WEFT_FRAME_INIT(close_fn), .l = &l };
    int brc = weft_runtime_block_on(rt, WEFT_FUTURE(&c), NULL);
    if (brc != 0)
        fprintf(stderr, "offload: closing the listener: %s\n", weft_strerror(brc));
    weft_runtime_free(rt);

    double *all = malloc((size_t)(total > 0 ? total : 1) * sizeof(double));
    long k = 0;
    memset(res, 0, sizeof *res);
    for (int i = 0; i < n; i++) {
        if (cl[i].heavy)
            res->heavy += cl[i].done;
        for (long j = 0; j < cl[i].nlat; j++)
            all[k++] = cl[i].lat_ms[j];
        free(cl[i].lat_ms);
    }
    qsort(all, (size_t)k, sizeof *all, cmp_double);
    if (k > 0) {
        res->p50 = all[k / 2];
        res->p99 = all[(k * 99) / 100];
        res->max = all[k - 1];
    }
    res->pings = k;
    res->reports = atomic_load(&g_reports);
    free(all);
    free(cl);
    if (err)
        fprintf(stderr, "offload: a client lost its connection\n");
    return err || k == 0;
}

int main(int argc, char **argv)
{
    double secs = 2;
    int nheavy = 4, ncheap = 4;
    unsigned workers = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--secs") == 0)
            secs = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--heavy") == 0)
            nheavy = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--cheap") == 0)
            ncheap = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--work") == 0)
            g_work = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--workers") == 0)
            workers = (unsigned)atoi(argv[i + 1]);
        else
            break;
    }
    if ((argc - 1) % 2 != 0 || secs <= 0 || secs > 600 || nheavy < 0 || nheavy > 256 || ncheap < 1 ||
        ncheap > 256 || g_work < 1 || g_work > 10000 || workers < 1 || workers > 1024) {
        fprintf(stderr, "usage: offload [--secs S] [--heavy N] [--cheap N] [--work MILLIONS] [--workers W]\n");
        return 2;
    }
    double t0 = now_ms();
    volatile uint64_t sink = crunch(g_work);
    (void)sink;
    printf("one heavy request: %.1f ms of CPU; %d heavy clients, %d cheap clients (a ping every ms), %u workers, "
           "%.1f s per mode\n\n", now_ms() - t0, nheavy, ncheap, workers, secs);
    result_t r[2];
    const char *names[2] = { "inline (crunch inside poll)", "spawn_blocking" };
    for (int m = 0; m < 2; m++) {
        printf("%s:\n", names[m]);
        fflush(stdout);
        if (run_mode(m == 1, workers, secs, nheavy, ncheap, &r[m]) != 0)
            return 1;
    }
    printf("\n%-28s %10s %10s %10s %8s %8s %9s\n", "mode", "ping p50", "ping p99", "ping max", "pings", "heavy",
           "detector");
    for (int m = 0; m < 2; m++)
        printf("%-28s %8.2f ms %7.2f ms %7.2f ms %8ld %8ld %9d\n", names[m], r[m].p50, r[m].p99, r[m].max, r[m].pings,
               r[m].heavy, r[m].reports);
    return 0;
}
