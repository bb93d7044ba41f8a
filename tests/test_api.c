/* tests/test_api.c - the public API's cross-cutting contracts: error
 * messages for every errno a call can return, WEFT_AWAIT's debug output-size
 * check, the null-argument policy, and spawn sites relative to the source
 * root. */
#include <sys/socket.h>
#include <sys/un.h>

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
    tc = tcase_create("spawn_site");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, spawn_site_is_relative_to_source_root);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
