/* tests/test_async_macros.c - the async macros' argument shapes:
 * compound literals (commas) in WEFT_AWAIT, WEFT_ARM and WEFT_RETURN. */
#include "testlib.h"

/* ---- A future ready at once with a + b, counting its drops ------------- */
typedef struct {
    weft_future_t future;
    int a, b;
    int *drops;
} sum_t;
static weft_poll_t sum_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    sum_t *s = (sum_t *)(void *)f;
    (void)cx;
    if (out != NULL)
        *(int *)out = s->a + s->b;
    return WEFT_READY;
}
static void sum_drop(weft_future_t *f) { (*((sum_t *)(void *)f)->drops)++; }
static const weft_future_vtable_t sum_vt = { sum_poll, sum_drop, NULL, sizeof(sum_t), sizeof(int), "sum" };
/* A compound literal produced by a macro: its commas appear only after
 * expansion, inside the await's arguments. */
#define SUM_LIT(a, b, drops) (sum_t){ { &sum_vt }, (a), (b), (drops) }

/* ---- Commas in the macros' arguments ----------------------------------- */
typedef struct {
    int lo, hi;
} pair_t;

typedef struct {
    WEFT_FRAME;
    int *drops;
    int x, y, z;
    sum_t s1, s2;
    weft_select_t sel;
    int which;
} commas_t;

WEFT_ASYNC(commas_t, commas, pair_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->s1, (sum_t){ { &sum_vt }, 1, 2, self->drops }, &self->x);
    WEFT_AWAIT(&self->s1, SUM_LIT(3, 4, self->drops), &self->y);
    WEFT_SELECT_BIASED(&self->sel, &self->which,
                       WEFT_ARM_IF(self->x > 100, &self->s1, (sum_t){ { &sum_vt }, 0, 0, self->drops }, NULL),
                       WEFT_ARM(&self->s2, (sum_t){ { &sum_vt }, 10, 20, self->drops }, &self->z));
    WEFT_RETURN((pair_t){ self->x + self->y, self->z + self->which });
    WEFT_END();
}

START_TEST(commas_in_await_arm_and_return)
{
    int drops = 0;
    commas_t c = { WEFT_FRAME_INIT(commas), .drops = &drops };
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    pair_t out = { 0, 0 };
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&c), &cx, &out), WEFT_READY);
    ck_assert_int_eq(out.lo, 1 + 2 + 3 + 4);
    ck_assert_int_eq(out.hi, 30 + 1); /* arm 1 won; arm 0 was disabled */
    ck_assert_int_eq(drops, 3);       /* two awaits and the winning arm */
    weft_future_drop(WEFT_FUTURE(&c));
    ck_assert_int_eq(drops, 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("async_macros");
    TCase *tc = tcase_create("commas");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, commas_in_await_arm_and_return);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
