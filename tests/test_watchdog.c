/* tests/test_watchdog.c - the watchdog (blocking detector): a poll longer
 * than the threshold is reported once, with the task's name and spawn
 * site; each offence is reported; short polls, block_in_place and a
 * runtime built without the detector stay quiet. */
#include "testlib.h"

typedef struct {
    pthread_mutex_t mu;
    int n;
    weft_blocking_report_t last;
    char name[32], site[128];
} reports_t;

static void on_report(const weft_blocking_report_t *r, void *arg)
{
    reports_t *rs = arg;
    pthread_mutex_lock(&rs->mu);
    rs->n++;
    rs->last = *r;
    snprintf(rs->name, sizeof rs->name, "%s", r->task_name ? r->task_name : "");
    snprintf(rs->site, sizeof rs->site, "%s", r->task_site ? r->task_site : "");
    pthread_mutex_unlock(&rs->mu);
}

static weft_runtime_t *detect_rt(weft_flavor_t f, reports_t *rs, bool on)
{
    weft_builder_t b;
    weft_builder_init(&b, f);
    b.workers = 2;
    b.detect_blocking = on;
    b.blocking_threshold_ms = 20;
    b.on_blocking = on_report;
    b.on_blocking_arg = rs;
    weft_runtime_t *rt = NULL;
    ck_assert_int_eq(weft_runtime_new(&b, &rt), 0);
    return rt;
}

/* A poll that blocks for `ms`, `times` times, yielding in between. */
typedef struct {
    WEFT_FRAME;
    int ms, times, i;
    bool in_place;
} hog_t;
static void *sleep_job(void *arg)
{
    sleep_ms((long)(intptr_t)arg);
    return NULL;
}
WEFT_ASYNC(hog_t, hog_fn, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < self->times; self->i++) {
        if (self->in_place) {
            int ipr = weft_block_in_place(sleep_job, (void *)(intptr_t)self->ms, NULL);
            WEFT_TEST_CHECK_INT_EQ(ipr, 0);
        } else {
            sleep_ms(self->ms);
        }
        WEFT_YIELD();
    }
    WEFT_RETURN(0);
    WEFT_END();
}

static int run_hog(weft_runtime_t *rt, int ms, int times, bool in_place)
{
    hog_t hg = { WEFT_FRAME_INIT(hog_fn), .ms = ms, .times = times, .in_place = in_place };
    weft_join_handle_t jh;
    weft_spawn_opts_t o = { "hog" };
    ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&hg), &jh, &o, WEFT_SITE), 0);
    return join_out(rt, &jh, NULL);
}

START_TEST(detector_reports_a_long_poll_once)
{
    for (int f = 0; f < 2; f++) {
        reports_t rs = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, "", "" };
        weft_runtime_t *rt = detect_rt(f ? WEFT_RUNTIME_MULTI_THREAD : WEFT_RUNTIME_CURRENT_THREAD, &rs, true);
        ck_assert_int_eq(run_hog(rt, 150, 1, false), 0);
        weft_runtime_free(rt);
        ck_assert_int_eq(rs.n, 1);
        ck_assert_uint_ge(rs.last.running_ms, 20);
        ck_assert_uint_lt(rs.last.running_ms, 150);
        ck_assert_uint_eq(rs.last.threshold_ms, 20);
        ck_assert_str_eq(rs.name, "hog");
        ck_assert_ptr_nonnull(strstr(rs.site, "test_watchdog.c"));
    }
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(detector_reports_each_offence)
{
    reports_t rs = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, "", "" };
    weft_runtime_t *rt = detect_rt(WEFT_RUNTIME_MULTI_THREAD, &rs, true);
    ck_assert_int_eq(run_hog(rt, 80, 3, false), 0);
    weft_runtime_free(rt);
    ck_assert_int_eq(rs.n, 3);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

START_TEST(detector_quiet_for_short_polls_and_block_in_place)
{
    reports_t rs = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, "", "" };
    weft_runtime_t *rt = detect_rt(WEFT_RUNTIME_MULTI_THREAD, &rs, true);
    ck_assert_int_eq(run_hog(rt, 2, 60, false), 0); /* 120 ms of work, 2 ms per poll */
    ck_assert_int_eq(run_hog(rt, 80, 2, true), 0);  /* long, but declared */
    weft_runtime_free(rt);
    ck_assert_int_eq(rs.n, 0);
    /* Switched off: even a long poll goes unreported. */
    rt = detect_rt(WEFT_RUNTIME_MULTI_THREAD, &rs, false);
    ck_assert_int_eq(run_hog(rt, 80, 1, false), 0);
    weft_runtime_free(rt);
    ck_assert_int_eq(rs.n, 0);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("watchdog");
    TCase *tc = tcase_create("detector");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, detector_reports_a_long_poll_once);
    tcase_add_test(tc, detector_reports_each_offence);
    tcase_add_test(tc, detector_quiet_for_short_polls_and_block_in_place);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
