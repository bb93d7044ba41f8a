/* examples/line_server.c - a tiny key-value server on 127.0.0.1 speaking a
 * line protocol, built on the buffered reader and writer and the lines
 * codec (weft/bufio.h, weft/codec.h; docs/io-buffering.md).
 *
 *   line_server [--port N] [--max-line N]     defaults: port 7001, 256 bytes
 *
 * Commands, one per line ("\n" or "\r\n"), answered one line each:
 *   SET key value   -> OK              (value: the rest of the line)
 *   GET key         -> VALUE value | NOT_FOUND
 *   DEL key         -> DELETED | NOT_FOUND
 *   QUIT            -> BYE, then the server closes the connection
 *   anything else   -> ERR unknown command
 * A line longer than --max-line gets "ERR line too long" and the
 * connection is closed (the server never holds more than that line).
 *
 *   - Each client is one task: a lines codec reads from a buffered reader
 *     over the socket and sends into a buffered writer over it. Replies
 *     are flushed only when no request is left in the reader's buffer, so
 *     pipelined commands get their replies in one write.
 *   - SIGINT or SIGTERM ends the accept loop and cancels every session:
 *     each says "BYE server shutting down" and closes; the process exits 0
 *     once every session has ended.
 *
 * Port 0 picks a free port; the first line on stdout names it.
 * tests/test_line_server.py drives it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#define MAX_LINE_CAP 4096 /* the largest --max-line */
#define MAX_CLIENTS 1024
#define MAX_KEYS 10000
#define SHUTDOWN_BYE "BYE server shutting down"

/* ---- the store: a short critical section under a plain mutex, never held
 * across an await ------------------------------------------------------------------- */
typedef struct entry_s {
    struct entry_s *next;
    char *key, *value;
} entry_t;

static struct {
    pthread_mutex_t mu;
    entry_t *head;
    size_t count;
} store = { PTHREAD_MUTEX_INITIALIZER, NULL, 0 };

static entry_t **store_find(const char *key)
{
    entry_t **e = &store.head;
    while (*e != NULL && strcmp((*e)->key, key) != 0)
        e = &(*e)->next;
    return e;
}

/* Each returns the reply line (static text, or written into out). */
static const char *store_set(const char *key, const char *value)
{
    char *v = strdup(value);
    if (v == NULL)
        return "ERR out of memory";
    const char *reply = "OK";
    pthread_mutex_lock(&store.mu);
    entry_t **e = store_find(key);
    if (*e != NULL) {
        free((*e)->value);
        (*e)->value = v;
        v = NULL;
    } else if (store.count >= MAX_KEYS) {
        reply = "ERR store full";
    } else {
        entry_t *n = malloc(sizeof *n);
        char *k = strdup(key);
        if (n == NULL || k == NULL) {
            free(n);
            free(k);
            reply = "ERR out of memory";
        } else {
            *n = (entry_t){ store.head, k, v };
            store.head = n;
            store.count++;
            v = NULL;
        }
    }
    pthread_mutex_unlock(&store.mu);
    free(v);
    return reply;
}

static const char *store_get(const char *key, char *out, size_t cap)
{
    pthread_mutex_lock(&store.mu);
    entry_t *e = *store_find(key);
    if (e != NULL)
        snprintf(out, cap, "VALUE %s", e->value);
    pthread_mutex_unlock(&store.mu);
    return e != NULL ? out : "NOT_FOUND";
}

static const char *store_del(const char *key)
{
    pthread_mutex_lock(&store.mu);
    entry_t **e = store_find(key), *gone = *e;
    if (gone != NULL) {
        *e = gone->next;
        store.count--;
    }
    pthread_mutex_unlock(&store.mu);
    if (gone == NULL)
        return "NOT_FOUND";
    free(gone->key);
    free(gone->value);
    free(gone);
    return "DELETED";
}

static void store_clear(void)
{
    while (store.head != NULL) {
        entry_t *e = store.head;
        store.head = e->next;
        free(e->key);
        free(e->value);
        free(e);
    }
}

/* Runs one command (NUL-terminated, edited in place); *quit set by QUIT. */
static const char *execute(char *cmd, char *out, size_t cap, bool *quit)
{
    char *arg = strchr(cmd, ' ');
    if (arg != NULL)
        *arg++ = '\0';
    if (strcmp(cmd, "QUIT") == 0 && arg == NULL) {
        *quit = true;
        return "BYE";
    }
    if (arg == NULL || *arg == '\0')
        return strcmp(cmd, "SET") == 0 || strcmp(cmd, "GET") == 0 || strcmp(cmd, "DEL") == 0
                   ? "ERR missing argument"
                   : "ERR unknown command";
    if (strcmp(cmd, "SET") == 0) {
        char *value = strchr(arg, ' ');
        if (value == NULL)
            return "ERR missing argument";
        *value++ = '\0';
        return store_set(arg, value);
    }
    if (strcmp(cmd, "GET") == 0)
        return store_get(arg, out, cap);
    if (strcmp(cmd, "DEL") == 0)
        return store_del(arg);
    return "ERR unknown command";
}

/* ---- one client ------------------------------------------------------------------ */
static struct {
    weft_semaphore_t slots;    /* one permit per session */
    weft_cancel_token_t *root; /* cancelled by SIGINT or SIGTERM */
    size_t max_line;
} srv;

typedef struct {
    WEFT_FRAME;
    weft_tcp_stream_t s;
    weft_bufreader_t r;
    weft_bufwriter_t w;
    weft_lines_codec_t lines;
    bool ready, quit; /* the three above were set up */
    int rc, which;
    weft_slice_t line;
    const char *reply;
    char cmd[MAX_LINE_CAP + 1];
    char out[MAX_LINE_CAP + 16];
    weft_codec_next_t next;
    weft_cancelled_t stop;
    weft_select_t sel;
    weft_codec_send_t send;
    weft_bufwriter_op_t op;
} session_t;

static void session_cleanup(session_t *c)
{
    if (c->ready) {
        weft_lines_codec_free(&c->lines);
        (void)!weft_bufwriter_free(&c->w); /* flushed when it ended well; otherwise the client is gone */
        weft_bufreader_free(&c->r);
    }
    weft_tcp_close(&c->s);
    weft_semaphore_release(&srv.slots, 1);
}

WEFT_ASYNC_WITH_DROP(session_t, session_fn, weft_unit_t, session_cleanup)
{
    WEFT_BEGIN();
    /* Set up here, in the task's frame, which no longer moves: the reader
     * and writer point at the socket handle, the codec at both. */
    if (weft_bufreader_init(&self->r, weft_tcp_stream_as(&self->s), 0) != 0)
        WEFT_RETURN(WEFT_UNIT);
    if (weft_bufwriter_init(&self->w, weft_tcp_stream_as(&self->s), 0) != 0) {
        weft_bufreader_free(&self->r);
        WEFT_RETURN(WEFT_UNIT);
    }
    (void)!weft_lines_codec_init(&self->lines, &self->r, weft_bufwriter_as(&self->w), srv.max_line, 0);
    self->ready = true; /* max_line is checked in main */
    for (;;) {
        /* Pipelining: reply to every request already buffered, then write
         * the replies out together. */
        if (weft_bufreader_buffered(&self->r, NULL) == 0 && weft_bufwriter_buffered(&self->w) > 0) {
            WEFT_AWAIT(&self->op, weft_bufwriter_flush(&self->w), &self->rc);
            if (self->rc != 0)
                break;
        }
        /* The next line, or shutdown: the lines codec keeps a partial line
         * in itself, so losing this race loses nothing. */
        WEFT_SELECT_BIASED(&self->sel, &self->which,
                           WEFT_ARM(&self->stop, weft_cancel_token_cancelled(srv.root), NULL),
                           WEFT_ARM(&self->next, weft_lines_next(&self->lines, &self->line), &self->rc));
        if (self->which == 0) {
            self->reply = SHUTDOWN_BYE;
            self->quit = true;
        } else if (self->rc == WEFT_EMSGSIZE) {
            self->reply = "ERR line too long";
            self->quit = true; /* the codec could skip the rest; this protocol hangs up */
        } else if (self->rc != 1) {
            break; /* the client left (0), mid-line (WEFT_EPIPE), or a socket error */
        } else {
            memcpy(self->cmd, self->line.data, self->line.len);
            self->cmd[self->line.len] = '\0';
            self->reply = execute(self->cmd, self->out, sizeof self->out, &self->quit);
        }
        WEFT_AWAIT(&self->send, weft_lines_send(&self->lines, self->reply, strlen(self->reply)), &self->rc);
        if (self->rc != 0)
            break;
        if (self->quit) {
            WEFT_AWAIT(&self->op, weft_bufwriter_shutdown(&self->w), &self->rc);
            break;
        }
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

/* Starts a client's task, which holds one of srv.slots' permits. */
static void start_session(weft_tcp_stream_t s)
{
    session_t c = { WEFT_FRAME_INIT(session_fn), .s = s };
    if (weft_spawn(&c, NULL) != 0)
        session_cleanup(&c); /* out of memory: this client is closed */
}

/* ---- the accept loop, and shutdown ------------------------------------------------ */
typedef struct {
    WEFT_FRAME;
    uint16_t port;
    int rc, which;
    weft_tcp_listener_t l;
    weft_tcp_stream_t s;
    weft_signal_t sigint, sigterm; /* kept across the loop's selects: no signal is missed */
    weft_tcp_accept_t acc;
    weft_select_t sel;
    weft_semaphore_acquire_t all;
} main_t;
static void main_cleanup(main_t *self)
{
    weft_future_drop(WEFT_FUTURE(&self->sigint));
    weft_future_drop(WEFT_FUTURE(&self->sigterm));
}
WEFT_ASYNC_WITH_DROP(main_t, main_fn, int, main_cleanup)
{
    WEFT_BEGIN();
    self->rc = weft_tcp_listen_ip("127.0.0.1", self->port, 128, &self->l);
    if (self->rc != 0) {
        fprintf(stderr, "line_server: listen: %s\n", weft_strerror(self->rc));
        WEFT_RETURN(1);
    }
    /* Arm the signal futures before the port is announced: a SIGINT that
     * comes before their first poll then stops the server gracefully
     * instead of killing it. */
    if (weft_signal_arm(&self->sigint) != 0 || weft_signal_arm(&self->sigterm) != 0)
        WEFT_RETURN(1);
    printf("listening on 127.0.0.1:%u\n", weft_tcp_listener_port(&self->l));
    fflush(stdout);
    for (;;) {
        WEFT_SELECT(&self->sel, &self->which, WEFT_ARM(&self->acc, weft_tcp_accept(&self->l, &self->s, NULL), &self->rc),
                    WEFT_ARM_REF(&self->sigint, NULL), WEFT_ARM_REF(&self->sigterm, NULL));
        if (self->which != 0)
            break; /* SIGINT or SIGTERM */
        if (self->rc == 0) { /* else a connection that failed before it was accepted */
            if (weft_semaphore_try_acquire(&srv.slots) == 0)
                start_session(self->s);
            else
                weft_tcp_close(&self->s); /* at the connection cap */
        }
    }
    weft_cancel_token_cancel(srv.root); /* every session says goodbye and ends */
    weft_tcp_listener_close(&self->l);
    /* Each session holds a permit until it has ended: taking them all waits
     * for the last one (a NULL output gives them back at once). */
    WEFT_AWAIT(&self->all, weft_semaphore_acquire_many(&srv.slots, MAX_CLIENTS), NULL);
    WEFT_RETURN(0);
    WEFT_END();
}

int main(int argc, char **argv)
{
    main_t m = { WEFT_FRAME_INIT(main_fn), .port = 7001, .sigint = weft_signal_recv(SIGINT),
                 .sigterm = weft_signal_recv(SIGTERM) };
    srv.max_line = 256;
    for (int i = 1; i < argc; i += 2) {
        long v = i + 1 < argc ? atol(argv[i + 1]) : -1;
        if (strcmp(argv[i], "--port") == 0 && v >= 0 && v <= 65535)
            m.port = (uint16_t)v;
        else if (strcmp(argv[i], "--max-line") == 0 && v >= 1 && v <= MAX_LINE_CAP)
            srv.max_line = (size_t)v;
        else {
            fprintf(stderr, "usage: line_server [--port N] [--max-line 1..%d]\n", MAX_LINE_CAP);
            return 2;
        }
    }
    weft_runtime_t *rt;
    if (weft_cancel_token_new(&srv.root) != 0 || weft_semaphore_init(&srv.slots, MAX_CLIENTS) != 0 ||
        weft_runtime_new(NULL, &rt) != 0)
        return 1; /* out of memory at start-up: the exit frees what was made */
    int rc = 1;
    if (weft_runtime_block_on(rt, WEFT_FUTURE(&m), &rc) != 0)
        rc = 1;
    weft_runtime_free(rt);
    weft_semaphore_destroy(&srv.slots);
    weft_cancel_token_release(srv.root);
    store_clear();
    return rc;
}
