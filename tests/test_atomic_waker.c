/* tests/test_atomic_waker.c - the atomic waker on its own, without a
 * runtime: a wake with nothing registered, a waker woken twice, and a wake
 * racing a register (seeded chaos), which must never be lost. */
#include <sched.h>

#include "testlib.h"

/* ---- A counting waker ------------------------------------------------------------- */
static _Atomic int aw_wakes;
static weft_waker_t cw_clone(const void *d);
static void cw_wbr(const void *d) { (void)d; aw_wakes++; }
static void cw_drop(const void *d) { (void)d; }
static void cw_wake(const void *d) { cw_wbr(d); }
static const weft_waker_vtable_t cw_vt = { cw_clone, cw_wake, cw_wbr, cw_drop };
static weft_waker_t cw_clone(const void *d) { return (weft_waker_t){ &cw_vt, d }; }

START_TEST(atomic_waker_woken_twice)
{
    weft_atomic_waker_t aw = WEFT_ATOMIC_WAKER_INIT;
    weft_waker_t w = { &cw_vt, &aw };
    aw_wakes = 0;
    weft_atomic_waker_wake(&aw); /* nothing registered: nothing happens */
    ck_assert_int_eq(aw_wakes, 0);
    weft_atomic_waker_register(&aw, &w);
    weft_atomic_waker_wake(&aw);
    weft_atomic_waker_wake(&aw); /* the waker was taken by the first */
    ck_assert_int_eq(aw_wakes, 1);
    weft_waker_t t = weft_atomic_waker_take(&aw);
    ck_assert_ptr_null(t.vtable);
    weft_atomic_waker_drop(&aw);
}
END_TEST

/* A wake racing a register is never lost: after each round (register, then
 * check the flag; the other thread sets the flag, then wakes) the waiter
 * either saw the flag or got woken. */
static weft_atomic_waker_t race_aw;
static _Atomic int race_flag, race_round, race_done;
static void *race_waker(void *arg)
{
    int rounds = *(int *)arg;
    for (int r = 1; r <= rounds; r++) {
        for (int k = 0; race_round != r; k++)
            if (k > 1000)
                sched_yield(); /* spin tight first (the race), then let a loaded machine run the other side */
        race_flag = 1;
        weft_atomic_waker_wake(&race_aw);
        race_done = r;
    }
    return NULL;
}

START_TEST(atomic_waker_wake_while_registering)
{
    int rounds = chaos_iters(1000) * 5;
    weft__chaos_set(chaos_seed0(), 100);
    weft_atomic_waker_init(&race_aw);
    weft_waker_t w = { &cw_vt, &race_aw };
    pthread_t th;
    pthread_create(&th, NULL, race_waker, &rounds);
    for (int r = 1; r <= rounds; r++) {
        race_flag = 0;
        int before = aw_wakes;
        race_round = r;
        weft_atomic_waker_register(&race_aw, &w);
        bool saw = race_flag;
        for (int k = 0; race_done != r; k++)
            if (k > 1000)
                sched_yield();
        ck_assert_msg(saw || aw_wakes > before, "round %d: wake lost", r);
    }
    pthread_join(th, NULL);
    weft__chaos_set(0, 0);
    weft_atomic_waker_drop(&race_aw);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("atomic_waker");
    TCase *tc = tcase_create("atomic_waker");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, atomic_waker_woken_twice);
    tcase_add_test(tc, atomic_waker_wake_while_registering);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
