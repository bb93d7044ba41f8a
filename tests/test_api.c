/* tests/test_api.c - the public API's cross-cutting contracts: error
 * messages for every errno a call can return, WEFT_AWAIT's debug output-size
 * check, the null-argument policy, and spawn sites relative to the source
 * root. */
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "testlib.h"

/* ---- strerror ---------------------------------------------------------------- */

START_TEST(strerror_gives_system_message_outside_map)
{
    /* net.h documents -EACCES (bind to a privileged port) but it is not in
     * WEFT_ERRNO_MAP: the message comes from the C library. */
    char want[128];
    ck_assert_str_eq(weft_strerror(-EACCES), strerror_r(EACCES, want, sizeof want));
    ck_assert_str_eq(weft_strerror(-EADDRNOTAVAIL), strerror(EADDRNOTAVAIL));
    ck_assert_str_ne(weft_strerror(-EACCES), "unknown error");
    ck_assert_str_eq(weft_err_name(-EACCES), "EACCES");
    ck_assert_str_eq(weft_err_name(-ENOTCONN), "ENOTCONN");
    /* Mapped codes keep weft's own message and name. */
    ck_assert_str_eq(weft_strerror(WEFT_ENOSYS), "function not implemented");
    ck_assert_str_eq(weft_err_name(WEFT_EPIPE), "EPIPE");
    ck_assert_str_eq(weft_strerror(0), "success");
    ck_assert_str_eq(weft_err_name(0), "OK");
    /* An errno with no row in the name table, and values that are no errno. */
    ck_assert_str_eq(weft_err_name(-EMLINK), "E?");
    ck_assert_str_eq(weft_err_name(-99999), "UNKNOWN");
    ck_assert_str_eq(weft_strerror(-99999), "unknown error");
    ck_assert_str_eq(weft_strerror(5), "unknown error");
}
END_TEST

/* The message is per thread: another thread's call does not overwrite it. */
static void *other_strerror(void *arg)
{
    (void)arg;
    return (void *)weft_strerror(-ENOTCONN);
}

START_TEST(strerror_is_thread_safe)
{
    const char *mine = weft_strerror(-EACCES);
    char copy[128];
    snprintf(copy, sizeof copy, "%s", mine);
    pthread_t t;
    void *theirs = NULL;
    ck_assert_int_eq(pthread_create(&t, NULL, other_strerror, NULL), 0);
    ck_assert_int_eq(pthread_join(t, &theirs), 0);
    ck_assert_str_eq(mine, copy);
    ck_assert_str_eq((const char *)theirs, strerror(ENOTCONN));
}
END_TEST

/* ---- WEFT_AWAIT's output-size check -------------------------------------------- */

typedef struct {
    WEFT_FRAME;
    weft_ready_t r;
    intptr_t right;
    int wrong;
    int which;
} awaiter_t;

WEFT_ASYNC(awaiter_t, awaiter, intptr_t)
{
    WEFT_BEGIN();
    if (self->which == 0)
        WEFT_AWAIT(&self->r, weft_ready(7), &self->right);
    else if (self->which == 1)
        WEFT_AWAIT(&self->r, weft_ready(7), NULL);
    else
        WEFT_AWAIT(&self->r, weft_ready(7), &self->wrong); /* int for an intptr_t output */
    WEFT_RETURN(self->right);
    WEFT_END();
}

WEFT_NODISCARD static awaiter_t awaiter(int which)
{
    return (awaiter_t){ WEFT_FRAME_INIT(awaiter), .which = which };
}

static intptr_t poll_awaiter(int which)
{
    awaiter_t a = awaiter(which);
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    intptr_t out = -1;
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&a), &cx, &out), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&a));
    return out;
}

START_TEST(await_matching_destination_runs)
{
    ck_assert_int_eq(poll_awaiter(0), 7);
    ck_assert_int_eq(poll_awaiter(1), 0); /* NULL: output discarded */
}
END_TEST

START_TEST(await_wrong_destination_size_aborts)
{
#if WEFT_DEBUG
    (void)poll_awaiter(2);
#else
    abort(); /* NDEBUG build: the check is compiled out; keep the test's verdict */
#endif
}
END_TEST

/* ---- Null arguments ---------------------------------------------------------------- */


static void runtime_new_null_out(void)
{
    int rc = weft_runtime_new(NULL, NULL);
    (void)rc;
}
static void oneshot_new_null_tx(void)
{
    weft_oneshot_rx_t rx;
    int rc = weft_oneshot_new(8, NULL, NULL, &rx);
    (void)rc;
}
static void tcp_read_null_stream(void)
{
    char buf[4];
    weft_tcp_io_t op = weft_tcp_read(NULL, buf, sizeof buf);
    (void)op;
}
static void join_null_handle(void)
{
    weft_future_t *f = weft_join(NULL, NULL);
    (void)f;
}

START_TEST(null_required_argument_panics_naming_the_function)
{
    expect_panic(runtime_new_null_out, "weft_runtime_new: out is NULL");
    expect_panic(oneshot_new_null_tx, "weft_oneshot_new: tx is NULL");
    expect_panic(tcp_read_null_stream, "weft_tcp_read: s is NULL");
    expect_panic(join_null_handle, "weft_join: jh is NULL");
}
END_TEST

START_TEST(null_unix_path_aborts)
{
    weft_unix_listener_t l;
    int rc = weft_unix_listen(NULL, 4, &l);
    (void)rc;
}
END_TEST

/* NULLs the API documents as allowed are accepted: no builder (defaults),
 * no block_on output, no join handle (detach), no peer. */
START_TEST(null_optional_arguments_are_allowed)
{
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(NULL, &rt), 0);
    weft_ready_t r = weft_ready(1);
    ck_assert_int_eq(weft_runtime_block_on(rt, WEFT_FUTURE(&r), NULL), 0);
    weft_ready_t r2 = weft_ready(2);
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &r2, NULL), 0);
    weft_runtime_free(rt);
    weft_runtime_free(NULL); /* like free(3) */
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Spawn sites ------------------------------------------------------------------ */

typedef struct {
    WEFT_FRAME;
} site_probe_t;

WEFT_ASYNC(site_probe_t, site_probe, intptr_t)
{
    WEFT_BEGIN();
    WEFT_RETURN((intptr_t)weft_task_current_site());
    WEFT_END();
}

START_TEST(spawn_site_is_relative_to_source_root)
{
    ck_assert_str_eq(WEFT_SITE, "tests/test_api.c:" WEFT__STR(__LINE__));
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_CURRENT_THREAD, 1);
    site_probe_t p = { WEFT_FRAME_INIT(site_probe) };
    weft_join_handle_t jh;
    ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &p, &jh), 0);
    intptr_t site = 0;
    ck_assert_int_eq(join_out(rt, &jh, &site), 0);
    const char *s = (const char *)site;
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(strstr(s, "../"));
    ck_assert_int_ne(s[0], '/');
    ck_assert_int_eq(strncmp(s, "tests/test_api.c:", strlen("tests/test_api.c:")), 0);
    weft_runtime_free(rt);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("strerror");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, strerror_gives_system_message_outside_map);
    tcase_add_test(tc, strerror_is_thread_safe);
    suite_add_tcase(s, tc);
    tc = tcase_create("await_check");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, await_matching_destination_runs);
    ADD_ABORT_TEST(tc, await_wrong_destination_size_aborts);
    suite_add_tcase(s, tc);
    if (can_fork()) {
        tc = tcase_create("null_args");
        tcase_set_timeout(tc, 20);
        tcase_add_test(tc, null_required_argument_panics_naming_the_function);
        ADD_ABORT_TEST(tc, null_unix_path_aborts);
        tcase_add_test(tc, null_optional_arguments_are_allowed);
        suite_add_tcase(s, tc);
    }
    tc = tcase_create("spawn_site");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, spawn_site_is_relative_to_source_root);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
