/* tests/test_rwlock.c - the reader-writer lock: try_read / try_write,
 * the reader cap, writer preference (a queued writer holds back later
 * readers), FIFO order, downgrade (with readers, and with a writer first
 * in the queue), a cancelled writer at the head, unlock misuse aborts, and
 * readers and writers on every runtime shape. */
#include "locktest.h"

START_TEST(init_try_and_cap)
{
    weft_rwlock_t rw;
    ck_assert_int_eq(weft_rwlock_init(&rw, 0), WEFT_EINVAL);
    ck_assert_int_eq(weft_rwlock_init(&rw, WEFT_RWLOCK_MAX_READERS + 1), WEFT_EINVAL);
    ck_assert_int_eq(weft_rwlock_init(&rw, 3), 0);
    ck_assert_uint_eq(weft_rwlock_max_readers(&rw), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weft_rwlock_try_read(&rw), 0);
    ck_assert_int_eq(weft_rwlock_try_read(&rw), WEFT_EAGAIN); /* the cap */
    ck_assert_int_eq(weft_rwlock_try_write(&rw), WEFT_EAGAIN);
    /* A fourth reader waits until one leaves. */
    hand_t h;
    hand_init(&h);
    weft_rwlock_read_t r = weft_rwlock_read(&rw);
    ck_assert_int_eq(hand_poll(&h, &r, NULL), WEFT_PENDING);
    weft_rwlock_read_unlock(&rw);
    ck_assert_int_eq(h.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&h, &r, NULL), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&r));
    for (int i = 0; i < 3; i++)
        weft_rwlock_read_unlock(&rw);
    ck_assert_int_eq(weft_rwlock_try_write(&rw), 0);
    ck_assert_int_eq(weft_rwlock_try_read(&rw), WEFT_EAGAIN);
    ck_assert_int_eq(weft_rwlock_try_write(&rw), WEFT_EAGAIN);
    weft_rwlock_write_unlock(&rw);
    ck_assert_int_eq(weft_rwlock_try_write(&rw), 0);
    weft_rwlock_write_unlock(&rw);
    ASSERT_HAND_BALANCED(&h);
    weft_rwlock_destroy(&rw);
    ASSERT_NO_LIVE();
}
END_TEST

/* A writer queued behind a reader holds back readers that come later,
 * which run together once it leaves. */
START_TEST(writer_preference)
{
    weft_rwlock_t rw;
    ck_assert_int_eq(weft_rwlock_init(&rw, 8), 0);
    ck_assert_int_eq(weft_rwlock_try_read(&rw), 0);
    hand_t hw, hr1, hr2;
    hand_init(&hw);
    hand_init(&hr1);
    hand_init(&hr2);
    weft_rwlock_write_t w = weft_rwlock_write(&rw);
    ck_assert_int_eq(hand_poll(&hw, &w, NULL), WEFT_PENDING); /* 7 of 8 assigned */
    ck_assert_int_eq(weft_rwlock_try_read(&rw), WEFT_EAGAIN); /* no barging past the writer */
    weft_rwlock_read_t r1 = weft_rwlock_read(&rw), r2 = weft_rwlock_read(&rw);
    ck_assert_int_eq(hand_poll(&hr1, &r1, NULL), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&hr2, &r2, NULL), WEFT_PENDING);
    weft_rwlock_read_unlock(&rw);
    ck_assert_int_eq(hw.c.wakes, 1);
    ck_assert_int_eq(hr1.c.wakes + hr2.c.wakes, 0);
    ck_assert_int_eq(hand_poll(&hw, &w, NULL), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&w));
    weft_rwlock_write_unlock(&rw);
    ck_assert_int_eq(hr1.c.wakes, 1);
    ck_assert_int_eq(hr2.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&hr1, &r1, NULL), WEFT_READY);
    ck_assert_int_eq(hand_poll(&hr2, &r2, NULL), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&r1));
    weft_future_drop(WEFT_FUTURE(&r2));
    ck_assert_int_eq(weft_rwlock_try_read(&rw), 0); /* 3 readers now */
    weft_rwlock_read_unlock(&rw);
    weft_rwlock_read_unlock(&rw);
    weft_rwlock_read_unlock(&rw);
    ck_assert_int_eq(weft_rwlock_try_write(&rw), 0);
    weft_rwlock_write_unlock(&rw);
    ASSERT_HAND_BALANCED(&hw);
    ASSERT_HAND_BALANCED(&hr1);
    ASSERT_HAND_BALANCED(&hr2);
    weft_rwlock_destroy(&rw);
    ASSERT_NO_LIVE();
}
END_TEST

/* Downgrade lets the readers at the head of the queue in, atomically; a
 * writer behind them stays queued. */
START_TEST(downgrade_wakes_readers)
{
    weft_rwlock_t rw;
    ck_assert_int_eq(weft_rwlock_init(&rw, 4), 0);
    ck_assert_int_eq(weft_rwlock_try_write(&rw), 0);
    hand_t hr1, hr2, hw;
    hand_init(&hr1);
    hand_init(&hr2);
    hand_init(&hw);
    weft_rwlock_read_t r1 = weft_rwlock_read(&rw), r2 = weft_rwlock_read(&rw);
    weft_rwlock_write_t w = weft_rwlock_write(&rw);
    ck_assert_int_eq(hand_poll(&hr1, &r1, NULL), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&hr2, &r2, NULL), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&hw, &w, NULL), WEFT_PENDING);
    weft_rwlock_downgrade(&rw);
    ck_assert_int_eq(hr1.c.wakes, 1);
    ck_assert_int_eq(hr2.c.wakes, 1);
    ck_assert_int_eq(hw.c.wakes, 0);
    ck_assert_int_eq(hand_poll(&hr1, &r1, NULL), WEFT_READY);
    ck_assert_int_eq(hand_poll(&hr2, &r2, NULL), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&r1));
    weft_future_drop(WEFT_FUTURE(&r2));
    ck_assert_int_eq(weft_rwlock_try_read(&rw), WEFT_EAGAIN); /* the writer is queued */
    weft_rwlock_read_unlock(&rw);                              /* the downgraded hold */
    weft_rwlock_read_unlock(&rw);
    ck_assert_int_eq(hw.c.wakes, 0);
    weft_rwlock_read_unlock(&rw);
    ck_assert_int_eq(hw.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&hw, &w, NULL), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&w));
    weft_rwlock_write_unlock(&rw);
    ASSERT_HAND_BALANCED(&hr1);
    ASSERT_HAND_BALANCED(&hr2);
    ASSERT_HAND_BALANCED(&hw);
    weft_rwlock_destroy(&rw);
    ASSERT_NO_LIVE();
}
END_TEST

/* A writer first in the queue stays first across a downgrade: readers
 * behind it are not let in; it runs after the downgraded reader leaves. */
START_TEST(downgrade_keeps_writer_first)
{
    weft_rwlock_t rw;
    ck_assert_int_eq(weft_rwlock_init(&rw, 4), 0);
    ck_assert_int_eq(weft_rwlock_try_write(&rw), 0);
    hand_t hw, hr;
    hand_init(&hw);
    hand_init(&hr);
    weft_rwlock_write_t w = weft_rwlock_write(&rw);
    weft_rwlock_read_t r = weft_rwlock_read(&rw);
    ck_assert_int_eq(hand_poll(&hw, &w, NULL), WEFT_PENDING);
    ck_assert_int_eq(hand_poll(&hr, &r, NULL), WEFT_PENDING);
    weft_rwlock_downgrade(&rw);
    ck_assert_int_eq(hw.c.wakes + hr.c.wakes, 0);
    weft_rwlock_read_unlock(&rw);
    ck_assert_int_eq(hw.c.wakes, 1);
    ck_assert_int_eq(hr.c.wakes, 0);
    ck_assert_int_eq(hand_poll(&hw, &w, NULL), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&w));
    weft_rwlock_write_unlock(&rw);
    ck_assert_int_eq(hr.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&hr, &r, NULL), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&r));
    weft_rwlock_read_unlock(&rw);
    ck_assert_int_eq(weft_rwlock_try_write(&rw), 0);
    weft_rwlock_write_unlock(&rw);
    ASSERT_HAND_BALANCED(&hw);
    ASSERT_HAND_BALANCED(&hr);
    weft_rwlock_destroy(&rw);
    ASSERT_NO_LIVE();
}
END_TEST

/* A writer at the head, part-assigned, is cancelled: the readers behind it
 * get in with the permits it gave back. */
START_TEST(cancelled_writer_lets_readers_in)
{
    weft_rwlock_t rw;
    ck_assert_int_eq(weft_rwlock_init(&rw, 4), 0);
    ck_assert_int_eq(weft_rwlock_try_read(&rw), 0);
    hand_t hw, hr;
    hand_init(&hw);
    hand_init(&hr);
    weft_rwlock_write_t w = weft_rwlock_write(&rw);
    weft_rwlock_read_t r = weft_rwlock_read(&rw);
    ck_assert_int_eq(hand_poll(&hw, &w, NULL), WEFT_PENDING); /* 3 of 4 */
    ck_assert_int_eq(hand_poll(&hr, &r, NULL), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&w));
    ck_assert_int_eq(hr.c.wakes, 1);
    ck_assert_int_eq(hand_poll(&hr, &r, NULL), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&r));
    ck_assert_int_eq(weft_rwlock_try_read(&rw), 0); /* two spare */
    weft_rwlock_read_unlock(&rw);
    weft_rwlock_read_unlock(&rw);
    weft_rwlock_read_unlock(&rw);
    ck_assert_int_eq(weft_rwlock_try_write(&rw), 0);
    weft_rwlock_write_unlock(&rw);
    ASSERT_HAND_BALANCED(&hw);
    ASSERT_HAND_BALANCED(&hr);
    weft_rwlock_destroy(&rw);
    ASSERT_NO_LIVE();
}
END_TEST

static void read_unlock_unlocked(void)
{
    weft_rwlock_t rw;
    if (weft_rwlock_init(&rw, 2) == 0)
        weft_rwlock_read_unlock(&rw);
}
static void write_unlock_read_locked(void)
{
    weft_rwlock_t rw;
    if (weft_rwlock_init(&rw, 2) == 0 && weft_rwlock_try_read(&rw) == 0)
        weft_rwlock_write_unlock(&rw);
}
static void downgrade_unlocked(void)
{
    weft_rwlock_t rw;
    if (weft_rwlock_init(&rw, 2) == 0)
        weft_rwlock_downgrade(&rw);
}
static void null_rwlock(void)
{
    weft_rwlock_t *rw = NULL;
    int rc = weft_rwlock_try_read(rw);
    (void)rc;
}

START_TEST(misuse_aborts)
{
    expect_panic(read_unlock_unlocked, "weft_rwlock_read_unlock: the lock is not read-locked");
    expect_panic(write_unlock_read_locked, "weft_rwlock_write_unlock: the lock is not write-locked");
    expect_panic(downgrade_unlocked, "weft_rwlock_downgrade: the lock is not write-locked");
    expect_panic(null_rwlock, "weft_rwlock_try_read: rw is NULL");
}
END_TEST

/* ---- On runtimes ------------------------------------------------------------------------- */
typedef struct {
    weft_rwlock_t rw;
    long value;                 /* guarded */
    _Atomic int readers, writers, max_readers;
} rw_shared_t;

typedef struct {
    WEFT_FRAME;
    rw_shared_t *sh;
    int i, id;
    weft_rwlock_read_t r;
    weft_rwlock_write_t w;
} rw_task_t;
WEFT_ASYNC(rw_task_t, rw_task, weft_unit_t)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 200; self->i++) {
        if ((self->i + self->id) % 8 == 0) {
            WEFT_AWAIT(&self->w, weft_rwlock_write(&self->sh->rw), NULL);
            (void)WEFT_TEST_CHECK_INT_EQ(++self->sh->writers, 1);
            (void)WEFT_TEST_CHECK_INT_EQ(self->sh->readers, 0);
            self->sh->value++;
            if (self->i % 3 == 0) {
                WEFT_YIELD();
            }
            if (self->i % 5 == 0) {
                self->sh->writers--;
                weft_rwlock_downgrade(&self->sh->rw);
                self->sh->readers++;
                WEFT_YIELD();
                self->sh->readers--;
                weft_rwlock_read_unlock(&self->sh->rw);
            } else {
                self->sh->writers--;
                weft_rwlock_write_unlock(&self->sh->rw);
            }
        } else {
            WEFT_AWAIT(&self->r, weft_rwlock_read(&self->sh->rw), NULL);
            {
                int n = ++self->sh->readers, m = self->sh->max_readers;
                while (n > m && !atomic_compare_exchange_weak(&self->sh->max_readers, &m, n)) {
                }
            }
            (void)WEFT_TEST_CHECK_INT_EQ(self->sh->writers, 0);
            WEFT_YIELD();
            self->sh->readers--;
            weft_rwlock_read_unlock(&self->sh->rw);
        }
    }
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

START_TEST(readers_and_writers)
{
    weft_runtime_t *rt = shape_rt(_i);
    static rw_shared_t sh;
    memset(&sh, 0, sizeof sh);
    ck_assert_int_eq(weft_rwlock_init(&sh.rw, 3), 0);
    enum { T = 12 };
    weft_join_handle_t hs[T];
    for (int i = 0; i < T; i++) {
        rw_task_t t = { WEFT_FRAME_INIT(rw_task), .sh = &sh, .id = i };
        ck_assert_int_eq(weft_handle_spawn(weft_runtime_handle(rt), &t, &hs[i]), 0);
    }
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(join_out(rt, &hs[i], NULL), 0);
    ASSERT_NO_TEST_FAIL();
    ck_assert_int_eq(sh.value, T * 200 / 8);
    ck_assert_int_le(sh.max_readers, 3);
    ck_assert_int_eq(weft_rwlock_try_write(&sh.rw), 0);
    weft_rwlock_write_unlock(&sh.rw);
    weft_runtime_free(rt);
    weft_rwlock_destroy(&sh.rw);
    ASSERT_NO_LIVE();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rwlock");
    TCase *tc = tcase_create("rwlock");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, init_try_and_cap);
    tcase_add_test(tc, writer_preference);
    tcase_add_test(tc, downgrade_wakes_readers);
    tcase_add_test(tc, downgrade_keeps_writer_first);
    tcase_add_test(tc, cancelled_writer_lets_readers_in);
    if (can_fork())
        tcase_add_test(tc, misuse_aborts);
    tcase_add_loop_test(tc, readers_and_writers, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
