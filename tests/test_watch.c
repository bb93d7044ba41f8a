/* tests/test_watch.c - watch channels: every call and its paths (versions,
 * has_changed states, mark_seen, closing with a last change reported
 * before WEFT_EPIPE, sends with no receiver, send_replace and send_modify),
 * seen versions of subscribe and rx_clone, exact clone/drop counts of
 * values with ops, changed futures dropped mid-wait, many waiters woken by
 * one send, the coop budget, tasks on each runtime shape, a plain thread
 * sending while a task waits, bad input and misuse aborts. */
#include "testlib.h"

static counter_t ctr;
static weft_waker_t cw;
static weft_context_t tcx;
static void setup(void)
{
    memset(&ctr, 0, sizeof ctr);
    cw = counter_waker(&ctr);
    tcx.waker = &cw;
}

/* Polls a changed future by hand with the counting waker. */
static weft_poll_t poll_changed(weft_watch_changed_t *f, int *rc)
{
    return weft_future_poll(WEFT_FUTURE(f), &tcx, rc);
}

START_TEST(bad_input)
{
    weft_watch_tx_t tx = { NULL };
    weft_watch_rx_t rx = { NULL, 7 };
    long v = 1;
    ck_assert_int_eq(weft_watch_new(0, &v, NULL, &tx, &rx), WEFT_EINVAL);
    ck_assert_int_eq(weft_watch_new(WEFT_WATCH_MAX_VALUE + 1, &v, NULL, &tx, &rx), WEFT_EINVAL);
    weft__alloc_fail_after(1);
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &tx, &rx), WEFT_ENOMEM);
    weft__alloc_fail_after(-1);
    /* On error nothing is taken or written. */
    ck_assert_ptr_null(tx.chan_);
    ck_assert_ptr_null(rx.chan_);
    ck_assert_uint_eq(rx.seen_, 7);
    /* The largest value is accepted. */
    unsigned char *big = calloc(1, WEFT_WATCH_MAX_VALUE);
    ck_assert_int_eq(weft_watch_new(WEFT_WATCH_MAX_VALUE, big, NULL, &tx, &rx), 0);
    big[WEFT_WATCH_MAX_VALUE - 1] = 9;
    ck_assert_int_eq(weft_watch_send(&tx, big), 0);
    memset(big, 0, WEFT_WATCH_MAX_VALUE);
    ck_assert_uint_eq(weft_watch_borrow(&rx, big), 1);
    ck_assert_int_eq(big[WEFT_WATCH_MAX_VALUE - 1], 9);
    free(big);
    weft_watch_tx_drop(&tx);
    weft_watch_rx_drop(&rx);
    ASSERT_NO_LIVE();
}
END_TEST

/* Versions, borrow / borrow_and_update / tx_borrow, has_changed, mark_seen. */
START_TEST(versions_and_reads)
{
    weft_watch_tx_t tx;
    weft_watch_rx_t rx;
    long v = 10, got = 0;
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &tx, &rx), 0);
    v = 0; /* the channel holds its own copy */
    ck_assert_uint_eq(weft_watch_borrow(&rx, &got), 0);
    ck_assert_int_eq(got, 10);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 0);
    v = 11;
    ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 1);
    ck_assert_uint_eq(weft_watch_borrow(&rx, &got), 1); /* does not mark seen */
    ck_assert_int_eq(got, 11);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 1);
    ck_assert_uint_eq(weft_watch_borrow_and_update(&rx, &got), 1);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 0);
    /* Intermediate values are not queued: two sends, one change. */
    for (v = 12; v <= 13; v++)
        ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    ck_assert_uint_eq(weft_watch_tx_borrow(&tx, &got), 3);
    ck_assert_int_eq(got, 13);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 1);
    weft_watch_mark_seen(&rx);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 0);
    weft_watch_changed_t f = weft_watch_changed(&rx);
    int rc = -1;
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_PENDING); /* version 3 was marked seen */
    weft_future_drop(WEFT_FUTURE(&f));
    ck_assert_uint_eq(weft_watch_receiver_count(&tx), 1);
    weft_watch_rx_drop(&rx);
    weft_watch_rx_drop(&rx); /* idempotent */
    ck_assert_uint_eq(weft_watch_receiver_count(&tx), 0);
    weft_watch_tx_drop(&tx);
    weft_watch_tx_drop(&tx); /* idempotent */
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* changed: ready at once when a version is unseen, else waits and is woken
 * once by a send; it marks the version seen. */
START_TEST(changed_waits_and_marks_seen)
{
    weft_watch_tx_t tx;
    weft_watch_rx_t rx;
    int v = 1, rc = -1;
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &tx, &rx), 0);
    weft_watch_changed_t f = weft_watch_changed(&rx);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_PENDING);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_PENDING); /* re-poll: the same waker kept */
    ck_assert_int_eq(ctr.clones, 1);
    v = 2;
    ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    ck_assert_int_eq(ctr.wakes, 1);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(rx.seen_, 1);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 0);
    weft_future_drop(WEFT_FUTURE(&f));
    /* Unseen already: ready at the first poll, no waker taken. */
    v = 3;
    ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    int clones = ctr.clones;
    f = weft_watch_changed(&rx);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(ctr.clones, clones);
    ck_assert_uint_eq(rx.seen_, 2);
    weft_future_drop(WEFT_FUTURE(&f));
    /* A NULL out is allowed. */
    ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    f = weft_watch_changed(&rx);
    ck_assert_int_eq(weft_future_poll(WEFT_FUTURE(&f), &tcx, NULL), WEFT_READY);
    ck_assert_uint_eq(rx.seen_, 3);
    weft_future_drop(WEFT_FUTURE(&f));
    weft_watch_tx_drop(&tx);
    weft_watch_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* Closing: a waiting changed completes with WEFT_EPIPE; a change not yet
 * seen is reported first; the value stays readable; has_changed goes
 * 1 -> WEFT_EPIPE; a second sender keeps the channel open. */
START_TEST(closing)
{
    weft_watch_tx_t tx, tx2;
    weft_watch_rx_t rx;
    int v = 1, got = 0, rc = -1;
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &tx, &rx), 0);
    weft_watch_tx_clone(&tx, &tx2);
    weft_watch_changed_t f = weft_watch_changed(&rx);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_PENDING);
    weft_watch_tx_drop(&tx);
    ck_assert_int_eq(ctr.wakes, 0); /* tx2 keeps it open */
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_PENDING);
    weft_watch_tx_drop(&tx2);
    ck_assert_int_eq(ctr.wakes, 1);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EPIPE);
    ck_assert_uint_eq(rx.seen_, 0);
    weft_future_drop(WEFT_FUTURE(&f));
    ck_assert_int_eq(weft_watch_has_changed(&rx), WEFT_EPIPE);
    ck_assert_uint_eq(weft_watch_borrow(&rx, &got), 0);
    ck_assert_int_eq(got, 1);
    weft_watch_rx_drop(&rx);

    /* The last change before the close is reported, then WEFT_EPIPE. */
    v = 1;
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &tx, &rx), 0);
    v = 5;
    ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    weft_watch_tx_drop(&tx);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 1);
    f = weft_watch_changed(&rx);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    weft_future_drop(WEFT_FUTURE(&f));
    ck_assert_int_eq(weft_watch_has_changed(&rx), WEFT_EPIPE);
    ck_assert_uint_eq(weft_watch_borrow_and_update(&rx, &got), 1);
    ck_assert_int_eq(got, 5);
    f = weft_watch_changed(&rx);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EPIPE);
    weft_future_drop(WEFT_FUTURE(&f));
    /* A clone made after the close sees the same. */
    weft_watch_rx_t rx2;
    weft_watch_rx_clone(&rx, &rx2);
    ck_assert_int_eq(weft_watch_has_changed(&rx2), WEFT_EPIPE);
    weft_watch_rx_drop(&rx);
    weft_watch_rx_drop(&rx2);

    /* A change marked seen by borrow_and_update while a changed future
     * waited (the send woke it): it waits again, then sees the close. */
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &tx, &rx), 0);
    f = weft_watch_changed(&rx);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_PENDING);
    ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    (void)weft_watch_borrow_and_update(&rx, &got);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_PENDING);
    int wakes = ctr.wakes;
    weft_watch_tx_drop(&tx);
    ck_assert_int_eq(ctr.wakes, wakes + 1);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_READY);
    ck_assert_int_eq(rc, WEFT_EPIPE);
    weft_future_drop(WEFT_FUTURE(&f));
    weft_watch_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* send with no receiver stores nothing; send_replace stores anyway;
 * subscribe brings a receiver that has seen the current version. */
START_TEST(no_receivers)
{
    weft_watch_tx_t tx;
    weft_watch_rx_t rx;
    int v = 1, got = 0;
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &tx, NULL), 0);
    ck_assert_uint_eq(weft_watch_receiver_count(&tx), 0);
    v = 2;
    ck_assert_int_eq(weft_watch_send(&tx, &v), WEFT_EPIPE);
    ck_assert_uint_eq(weft_watch_tx_borrow(&tx, &got), 0);
    ck_assert_int_eq(got, 1);
    v = 3;
    weft_watch_send_replace(&tx, &v, NULL);
    ck_assert_uint_eq(weft_watch_tx_borrow(&tx, &got), 1);
    ck_assert_int_eq(got, 3);
    ck_assert_int_eq(weft_watch_subscribe(&tx, &rx), 0);
    ck_assert_uint_eq(weft_watch_receiver_count(&tx), 1);
    ck_assert_uint_eq(rx.seen_, 1);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 0);
    v = 4;
    ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 1);
    weft_watch_rx_drop(&rx);
    ck_assert_int_eq(weft_watch_send(&tx, &v), WEFT_EPIPE);
    weft_watch_tx_drop(&tx);
    ck_assert_int_eq(weft_watch_subscribe(&tx, &rx), WEFT_EPIPE); /* a dropped sender */
    ASSERT_NO_LIVE();
}
END_TEST

/* subscribe starts at the current version, rx_clone at the source's seen
 * version; each receiver's seen version is its own. */
START_TEST(subscribe_and_clone_seen)
{
    weft_watch_tx_t tx;
    weft_watch_rx_t rx, sub, cl;
    int v = 0;
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &tx, &rx), 0);
    for (v = 1; v <= 2; v++)
        ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    ck_assert_int_eq(weft_watch_subscribe(&tx, &sub), 0);
    weft_watch_rx_clone(&rx, &cl);
    ck_assert_uint_eq(weft_watch_receiver_count(&tx), 3);
    ck_assert_uint_eq(sub.seen_, 2);
    ck_assert_uint_eq(cl.seen_, 0);
    ck_assert_int_eq(weft_watch_has_changed(&sub), 0);
    ck_assert_int_eq(weft_watch_has_changed(&cl), 1);
    weft_watch_mark_seen(&cl);
    ck_assert_int_eq(weft_watch_has_changed(&cl), 0);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 1); /* rx's own is untouched */
    /* A clone of a receiver that saw everything. */
    weft_watch_rx_t cl2;
    weft_watch_rx_clone(&sub, &cl2);
    ck_assert_uint_eq(cl2.seen_, 2);
    /* A clone of the sender sends for the same receivers. */
    weft_watch_tx_t tx2;
    weft_watch_tx_clone(&tx, &tx2);
    v = 9;
    ck_assert_int_eq(weft_watch_send(&tx2, &v), 0);
    ck_assert_int_eq(weft_watch_has_changed(&sub), 1);
    ck_assert_int_eq(weft_watch_has_changed(&cl2), 1);
    weft_watch_rx_drop(&rx);
    weft_watch_rx_drop(&sub);
    weft_watch_rx_drop(&cl);
    ck_assert_uint_eq(weft_watch_receiver_count(&tx2), 1);
    weft_watch_tx_drop(&tx);
    ck_assert_int_eq(weft_watch_has_changed(&cl2), 1);
    weft_watch_tx_drop(&tx2);
    weft_watch_rx_drop(&cl2);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- send_replace and send_modify -------------------------------------------- */

static bool set_and_notify(void *value, void *arg)
{
    *(int *)value = *(int *)arg;
    return true;
}
static bool set_quietly(void *value, void *arg)
{
    *(int *)value = *(int *)arg;
    return false;
}

START_TEST(replace_and_modify)
{
    weft_watch_tx_t tx;
    weft_watch_rx_t rx;
    int v = 1, old = 0, got = 0, rc = -1;
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &tx, &rx), 0);
    v = 2;
    weft_watch_send_replace(&tx, &v, &old);
    ck_assert_int_eq(old, 1);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 1);
    (void)weft_watch_borrow_and_update(&rx, &got);
    /* value and old may be the same object: a swap. */
    v = 3;
    weft_watch_send_replace(&tx, &v, &v);
    ck_assert_int_eq(v, 2);
    ck_assert_uint_eq(weft_watch_borrow_and_update(&rx, &got), 2);
    ck_assert_int_eq(got, 3);

    /* send_modify returning false: the value changed in place, but the
     * version did not, and the waiter was not woken. */
    weft_watch_changed_t f = weft_watch_changed(&rx);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_PENDING);
    int arg = 40;
    weft_watch_send_modify(&tx, set_quietly, &arg);
    ck_assert_int_eq(ctr.wakes, 0);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 0);
    ck_assert_uint_eq(weft_watch_borrow(&rx, &got), 2);
    ck_assert_int_eq(got, 40);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_PENDING);
    /* true: one version on, the waiter woken. */
    arg = 41;
    weft_watch_send_modify(&tx, set_and_notify, &arg);
    ck_assert_int_eq(ctr.wakes, 1);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_READY);
    ck_assert_int_eq(rc, 0);
    weft_future_drop(WEFT_FUTURE(&f));
    ck_assert_uint_eq(weft_watch_borrow(&rx, &got), 3);
    ck_assert_int_eq(got, 41);
    /* Modify and replace work with no receiver too. */
    weft_watch_rx_drop(&rx);
    arg = 42;
    weft_watch_send_modify(&tx, set_and_notify, &arg);
    ck_assert_uint_eq(weft_watch_tx_borrow(&tx, &got), 4);
    ck_assert_int_eq(got, 42);
    weft_watch_tx_drop(&tx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Values that own something --------------------------------------------------
 * A value holding a reference-counted buffer: clone takes a reference,
 * drop gives one back and frees the buffer with the last. The counts are
 * checked exactly, and ASan/valgrind see any buffer leaked or freed twice. */
typedef struct {
    _Atomic int refs;
    int payload;
} rcbuf_t;
typedef struct {
    rcbuf_t *buf;
} rcval_t;
static _Atomic int clones, drops, frees;
static void rc_clone(void *copy)
{
    clones++;
    atomic_fetch_add(&((rcval_t *)copy)->buf->refs, 1);
}
static void rc_drop(void *value)
{
    drops++;
    rcbuf_t *b = ((rcval_t *)value)->buf;
    if (atomic_fetch_sub(&b->refs, 1) == 1) {
        free(b);
        frees++;
    }
}
static bool bump_payload(void *value, void *arg)
{
    (void)arg;
    ((rcval_t *)value)->buf->payload++;
    return true;
}
static const weft_value_ops_t rc_ops = { rc_clone, rc_drop };
static rcval_t rc_make(int payload)
{
    rcbuf_t *b = malloc(sizeof *b);
    atomic_init(&b->refs, 1);
    b->payload = payload;
    return (rcval_t){ b };
}

START_TEST(ops_counts)
{
    clones = drops = frees = 0;
    weft_watch_tx_t tx;
    weft_watch_rx_t rx;
    rcval_t v = rc_make(1), got;
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, &rc_ops, &tx, &rx), 0);
    ck_assert_int_eq(clones, 0); /* the channel owns init's copy: no clone */
    /* Every read clones once; the caller drops its copy. */
    ck_assert_uint_eq(weft_watch_borrow(&rx, &got), 0);
    ck_assert_int_eq(got.buf->payload, 1);
    rc_drop(&got);
    (void)weft_watch_borrow_and_update(&rx, &got);
    rc_drop(&got);
    (void)weft_watch_tx_borrow(&tx, &got);
    rc_drop(&got);
    ck_assert_int_eq(clones, 3);
    ck_assert_int_eq(drops, 3);
    ck_assert_int_eq(frees, 0);
    /* send drops the value it replaces (the last reference: freed). */
    v = rc_make(2);
    ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    ck_assert_int_eq(drops, 4);
    ck_assert_int_eq(frees, 1);
    /* A refused send takes nothing: the caller still owns its value. */
    weft_watch_rx_t sub;
    ck_assert_int_eq(weft_watch_subscribe(&tx, &sub), 0);
    weft_watch_rx_drop(&rx);
    weft_watch_rx_drop(&sub);
    rcval_t refused = rc_make(3);
    ck_assert_int_eq(weft_watch_send(&tx, &refused), WEFT_EPIPE);
    ck_assert_int_eq(drops, 4);
    rc_drop(&refused);
    ck_assert_int_eq(frees, 2);
    /* send_replace with old hands the old value over, without a drop. */
    rcval_t old;
    v = rc_make(4);
    weft_watch_send_replace(&tx, &v, &old);
    ck_assert_int_eq(drops, 5);
    ck_assert_int_eq(old.buf->payload, 2);
    rc_drop(&old);
    ck_assert_int_eq(drops, 6);
    ck_assert_int_eq(frees, 3);
    /* send_replace without old drops it. */
    v = rc_make(5);
    weft_watch_send_replace(&tx, &v, NULL);
    ck_assert_int_eq(drops, 7);
    ck_assert_int_eq(frees, 4);
    /* send_modify neither clones nor drops. */
    weft_watch_send_modify(&tx, bump_payload, NULL);
    ck_assert_int_eq(clones, 3);
    ck_assert_int_eq(drops, 7);
    /* A copy a reader keeps outlives the channel: freeing the channel
     * drops its value once, and the reader's reference stays valid. */
    ck_assert_uint_eq(weft_watch_tx_borrow(&tx, &got), 4);
    ck_assert_int_eq(got.buf->payload, 6); /* modified in place */
    weft_watch_tx_drop(&tx);
    ck_assert_int_eq(clones, 4);
    ck_assert_int_eq(drops, 8);
    ck_assert_int_eq(frees, 4);
    rc_drop(&got);
    ck_assert_int_eq(drops, 9);
    ck_assert_int_eq(frees, 5);
    /* clones + one reference per value made (5) = drops. */
    ck_assert_int_eq(clones + 5, drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* Only clone, only drop, or none: each half is optional. */
START_TEST(ops_halves)
{
    clones = drops = frees = 0;
    weft_value_ops_t only_clone = { rc_clone, NULL }, only_drop = { NULL, rc_drop }, none = { NULL, NULL };
    const weft_value_ops_t *set[] = { &only_clone, &only_drop, &none };
    for (int i = 0; i < 3; i++) {
        weft_watch_tx_t tx;
        weft_watch_rx_t rx;
        rcval_t v = rc_make(i), got;
        ck_assert_int_eq(weft_watch_new(sizeof v, &v, set[i], &tx, &rx), 0);
        (void)weft_watch_borrow(&rx, &got);
        rcval_t next = rc_make(i + 10);
        ck_assert_int_eq(weft_watch_send(&tx, &next), 0);
        weft_watch_tx_drop(&tx);
        weft_watch_rx_drop(&rx);
        /* Settle the references by hand for the halves the channel skipped. */
        if (i != 1) {
            free(v.buf);
            free(next.buf);
        }
    }
    ck_assert_int_eq(clones, 1); /* only_clone's borrow */
    ck_assert_int_eq(drops, 2);  /* only_drop's: the send's and the channel's */
    ck_assert_int_eq(frees, 2);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Cancellation -------------------------------------------------------------------- */

START_TEST(changed_dropped)
{
    weft_watch_tx_t tx;
    weft_watch_rx_t rx;
    int v = 0, rc = -1;
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &tx, &rx), 0);
    /* Dropped unpolled: nothing. */
    weft_watch_changed_t f = weft_watch_changed(&rx);
    weft_future_drop(WEFT_FUTURE(&f));
    /* Dropped while waiting: unlinked, its waker dropped; a send after it
     * wakes nothing and the change is still unseen. */
    f = weft_watch_changed(&rx);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&f));
    ck_assert_int_eq(ctr.clones, 1);
    ck_assert_int_eq(ctr.drops, 1);
    ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    ck_assert_int_eq(ctr.wakes, 0);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 1);
    weft_watch_mark_seen(&rx);
    /* Dropped after a send woke it but before it saw the change: still
     * nothing marked seen. */
    f = weft_watch_changed(&rx);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_PENDING);
    ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    ck_assert_int_eq(ctr.wakes, 1);
    weft_future_drop(WEFT_FUTURE(&f));
    ck_assert_uint_eq(rx.seen_, 1);
    ck_assert_int_eq(weft_watch_has_changed(&rx), 1);
    /* Dropped after it completed: nothing more. */
    f = weft_watch_changed(&rx);
    ck_assert_int_eq(poll_changed(&f, &rc), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&f));
    ck_assert_uint_eq(rx.seen_, 2);
    /* One of several waiters dropped: the others are still woken. */
    weft_watch_rx_t rx2;
    weft_watch_rx_clone(&rx, &rx2);
    weft_watch_changed_t a = weft_watch_changed(&rx), b = weft_watch_changed(&rx2);
    ck_assert_int_eq(poll_changed(&a, &rc), WEFT_PENDING);
    ck_assert_int_eq(poll_changed(&b, &rc), WEFT_PENDING);
    weft_future_drop(WEFT_FUTURE(&a));
    int wakes = ctr.wakes;
    ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
    ck_assert_int_eq(ctr.wakes, wakes + 1);
    ck_assert_int_eq(poll_changed(&b, &rc), WEFT_READY);
    weft_future_drop(WEFT_FUTURE(&b));
    weft_watch_rx_drop(&rx2);
    weft_watch_tx_drop(&tx);
    weft_watch_rx_drop(&rx);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* More waiters than one wake batch (32): one send wakes each exactly once;
 * so does the close. */
#define MANY 100

START_TEST(many_waiters_one_send)
{
    static weft_watch_rx_t rxs[MANY];
    static weft_watch_changed_t fs[MANY];
    weft_watch_tx_t tx;
    int v = 0, rc = -1;
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &tx, &rxs[0]), 0);
    for (int i = 1; i < MANY; i++)
        weft_watch_rx_clone(&rxs[0], &rxs[i]);
    for (int round = 0; round < 2; round++) {
        int wakes = ctr.wakes;
        for (int i = 0; i < MANY; i++) {
            fs[i] = weft_watch_changed(&rxs[i]);
            ck_assert_int_eq(poll_changed(&fs[i], &rc), WEFT_PENDING);
        }
        if (round == 0)
            ck_assert_int_eq(weft_watch_send(&tx, &v), 0);
        else
            weft_watch_tx_drop(&tx);
        ck_assert_int_eq(ctr.wakes, wakes + MANY);
        for (int i = 0; i < MANY; i++) {
            ck_assert_int_eq(poll_changed(&fs[i], &rc), WEFT_READY);
            ck_assert_int_eq(rc, round == 0 ? 0 : WEFT_EPIPE);
            weft_future_drop(WEFT_FUTURE(&fs[i]));
        }
    }
    for (int i = 0; i < MANY; i++)
        weft_watch_rx_drop(&rxs[i]);
    ck_assert_int_eq(ctr.clones, ctr.drops);
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- The coop budget ------------------------------------------------------------------------ */

typedef struct {
    WEFT_FRAME;
    weft_watch_tx_t tx;
    weft_watch_rx_t rx;
    int i, v, rc, saw_sibling;
    weft_watch_changed_t changed;
} greedy_t;
WEFT_ASYNC(greedy_t, greedy, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < 1000; self->i++) {
        self->v = self->i;
        if (!WEFT_TEST_CHECK_INT_EQ(weft_watch_send(&self->tx, &self->v), 0))
            break;
        WEFT_AWAIT(&self->changed, weft_watch_changed(&self->rx), &self->rc); /* always ready */
        if (coop_sibling_ran && !self->saw_sibling)
            self->saw_sibling = self->i + 1;
    }
    weft_watch_tx_drop(&self->tx);
    weft_watch_rx_drop(&self->rx);
    WEFT_RETURN(self->saw_sibling);
    WEFT_END();
}

START_TEST(coop_budget_yields)
{
    greedy_t g = { WEFT_FRAME_INIT(greedy) };
    int v = 0;
    ck_assert_int_eq(weft_watch_new(sizeof v, &v, NULL, &g.tx, &g.rx), 0);
    assert_coop_yields(WEFT_FUTURE(&g));
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Tasks on each runtime shape -------------------------------------------------------------
 * A config-reload shape: watcher tasks wait on changed and re-read; a
 * sender task publishes a run of configs, yielding between them, and drops
 * its sender. Each watcher sees versions only go up, each value matching
 * its version, ends on the last one, and then WEFT_EPIPE. */
#define WATCHERS 4
#define CONFIGS 300

typedef struct {
    uint64_t gen;
    uint64_t check; /* gen * 3: a read that mixed two sends would mismatch */
} config_t;

typedef struct {
    WEFT_FRAME;
    weft_watch_rx_t rx;
    config_t cfg;
    uint64_t last, ver;
    int rc;
    weft_watch_changed_t changed;
} watcher_t;

static void watcher_cleanup(watcher_t *self)
{
    weft_watch_rx_drop(&self->rx);
}

WEFT_ASYNC_WITH_DROP(watcher_t, watcher, uint64_t, watcher_cleanup)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->changed, weft_watch_changed(&self->rx), &self->rc);
        if (self->rc != 0)
            break;
        self->ver = weft_watch_borrow_and_update(&self->rx, &self->cfg);
        if (!WEFT_TEST_CHECK_INT_EQ(self->cfg.check, self->cfg.gen * 3) ||
            !WEFT_TEST_CHECK_INT_EQ(self->cfg.gen, self->ver) || !WEFT_TEST_CHECK(self->ver > self->last))
            WEFT_RETURN(0);
        self->last = self->ver;
    }
    WEFT_TEST_CHECK_INT_EQ(self->rc, WEFT_EPIPE);
    WEFT_RETURN(self->last);
    WEFT_END();
}

typedef struct {
    WEFT_FRAME;
    weft_watch_tx_t tx;
    config_t cfg;
    int i;
    weft_yield_t y;
} publisher_t;

WEFT_ASYNC(publisher_t, publisher, int)
{
    WEFT_BEGIN();
    for (self->i = 1; self->i <= CONFIGS; self->i++) {
        self->cfg = (config_t){ (uint64_t)self->i, (uint64_t)self->i * 3 };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_watch_send(&self->tx, &self->cfg), 0))
            break;
        if (self->i % 7 == 0)
            WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    }
    weft_watch_tx_drop(&self->tx);
    WEFT_RETURN(0);
    WEFT_END();
}

START_TEST(tasks_on_each_shape)
{
    for (int shape = 0; shape < N_SHAPES; shape++) {
        weft_runtime_t *rt = shape_rt(shape);
        publisher_t p = { WEFT_FRAME_INIT(publisher) };
        weft_watch_rx_t rx;
        config_t init = { 0, 0 };
        ck_assert_int_eq(weft_watch_new(sizeof init, &init, NULL, &p.tx, &rx), 0);
        weft_join_handle_t hw[WATCHERS];
        for (int w = 0; w < WATCHERS; w++) {
            watcher_t wt = { WEFT_FRAME_INIT(watcher) };
            weft_watch_rx_clone(&rx, &wt.rx);
            ck_assert_int_eq(weft_spawn_at(weft_runtime_handle(rt), WEFT_FUTURE(&wt), &hw[w], NULL, WEFT_SITE), 0);
        }
        weft_watch_rx_drop(&rx);
        int prc = -1;
        ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&p), &prc), 0);
        for (int w = 0; w < WATCHERS; w++) {
            uint64_t last = 0;
            ck_assert_int_eq(join_out(rt, &hw[w], &last), 0);
            ck_assert_uint_eq(last, CONFIGS);
        }
        weft_runtime_free(rt);
        ASSERT_NO_TEST_FAIL();
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- A plain thread sending while a task waits ---------------------------------------------- */

static void *thread_publisher(void *arg)
{
    weft_watch_tx_t *tx = arg;
    for (int i = 1; i <= CONFIGS; i++) {
        config_t cfg = { (uint64_t)i, (uint64_t)i * 3 };
        if (!WEFT_TEST_CHECK_INT_EQ(weft_watch_send(tx, &cfg), 0))
            break;
        if (i % 50 == 0)
            sleep_ms(1); /* let the watcher fall asleep on some of them */
    }
    weft_watch_tx_drop(tx);
    return NULL;
}

START_TEST(plain_thread_sends)
{
    for (int shape = 0; shape < N_SHAPES; shape += 2) {
        weft_runtime_t *rt = shape_rt(shape);
        static weft_watch_tx_t tx;
        watcher_t wt = { WEFT_FRAME_INIT(watcher) };
        config_t init = { 0, 0 };
        ck_assert_int_eq(weft_watch_new(sizeof init, &init, NULL, &tx, &wt.rx), 0);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, thread_publisher, &tx), 0);
        uint64_t last = 0;
        ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&wt), &last), 0);
        pthread_join(t, NULL);
        ck_assert_uint_eq(last, CONFIGS);
        weft_runtime_free(rt);
        ASSERT_NO_TEST_FAIL();
    }
    ASSERT_NO_LIVE();
}
END_TEST

/* Plain threads read while a task sends: the non-future calls from
 * outside any runtime. */
static _Atomic int stop_readers;
static void *thread_reader(void *arg)
{
    weft_watch_rx_t rx;
    weft_watch_rx_clone(arg, &rx);
    uint64_t last = 0;
    while (!stop_readers) {
        config_t cfg;
        uint64_t ver = weft_watch_borrow(&rx, &cfg);
        if (!WEFT_TEST_CHECK(ver >= last) || !WEFT_TEST_CHECK_INT_EQ(cfg.gen, ver) ||
            !WEFT_TEST_CHECK_INT_EQ(cfg.check, cfg.gen * 3))
            break;
        last = ver;
        if (weft_watch_has_changed(&rx) == WEFT_EPIPE)
            break;
    }
    weft_watch_rx_drop(&rx);
    return NULL;
}

START_TEST(plain_threads_read)
{
    weft_runtime_t *rt = test_rt(WEFT_RUNTIME_MULTI_THREAD, 2);
    publisher_t p = { WEFT_FRAME_INIT(publisher) };
    weft_watch_rx_t rx;
    config_t init = { 0, 0 };
    ck_assert_int_eq(weft_watch_new(sizeof init, &init, NULL, &p.tx, &rx), 0);
    stop_readers = 0;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, thread_reader, &rx), 0);
    int prc = -1;
    ck_assert_int_eq(spawn_and_wait(rt, WEFT_FUTURE(&p), &prc), 0);
    stop_readers = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    weft_watch_rx_drop(&rx);
    weft_runtime_free(rt);
    ASSERT_NO_TEST_FAIL();
    ASSERT_NO_LIVE();
}
END_TEST

/* ---- Misuse aborts, naming the call ----------------------------------------------------------- */

static int sink; /* results of calls expected to abort first */
static void send_on_dropped(void)
{
    weft_watch_tx_t tx;
    int v = 0;
    if (weft_watch_new(sizeof v, &v, NULL, &tx, NULL) == 0) {
        weft_watch_tx_drop(&tx);
        sink = weft_watch_send(&tx, &v);
    }
}
static void borrow_on_dropped(void)
{
    weft_watch_tx_t tx;
    weft_watch_rx_t rx;
    int v = 0;
    if (weft_watch_new(sizeof v, &v, NULL, &tx, &rx) == 0) {
        weft_watch_rx_drop(&rx);
        sink = (int)weft_watch_borrow(&rx, &v);
    }
}
static void changed_on_dropped(void)
{
    weft_watch_tx_t tx;
    weft_watch_rx_t rx;
    int v = 0;
    if (weft_watch_new(sizeof v, &v, NULL, &tx, &rx) == 0) {
        weft_watch_rx_drop(&rx);
        weft_watch_changed_t f = weft_watch_changed(&rx);
        sink = (int)f.phase_;
    }
}
static void polled_after_done(void)
{
    weft_watch_tx_t tx;
    weft_watch_rx_t rx;
    int v = 0, rc;
    if (weft_watch_new(sizeof v, &v, NULL, &tx, &rx) == 0 && weft_watch_send(&tx, &v) == 0) {
        weft_watch_changed_t f = weft_watch_changed(&rx);
        sink = (int)poll_changed(&f, &rc);
        sink = (int)poll_changed(&f, &rc);
    }
}
static void rx_dropped_while_waiting(void)
{
    weft_watch_tx_t tx;
    weft_watch_rx_t rx;
    int v = 0, rc;
    if (weft_watch_new(sizeof v, &v, NULL, &tx, &rx) == 0) {
        weft_watch_changed_t f = weft_watch_changed(&rx);
        sink = (int)poll_changed(&f, &rc);
        weft_watch_rx_drop(&rx);
        weft_future_drop(WEFT_FUTURE(&f));
    }
}
static void null_init(void)
{
    weft_watch_tx_t tx;
    sink = weft_watch_new(4, NULL, NULL, &tx, NULL);
}
static void null_tx(void)
{
    int v = 0;
    sink = weft_watch_new(sizeof v, &v, NULL, NULL, NULL);
}
static void null_modify(void)
{
    weft_watch_tx_t tx;
    int v = 0;
    if (weft_watch_new(sizeof v, &v, NULL, &tx, NULL) == 0)
        weft_watch_send_modify(&tx, NULL, NULL);
}
static void count_on_dropped(void)
{
    weft_watch_tx_t tx;
    int v = 0;
    if (weft_watch_new(sizeof v, &v, NULL, &tx, NULL) == 0) {
        weft_watch_tx_drop(&tx);
        sink = (int)weft_watch_receiver_count(&tx);
    }
}

START_TEST(misuse_aborts)
{
    expect_panic(send_on_dropped, "weft_watch_send on a dropped sender");
    expect_panic(borrow_on_dropped, "weft_watch_borrow on a dropped receiver");
    expect_panic(changed_on_dropped, "weft_watch_changed on a dropped receiver");
    expect_panic(polled_after_done, "weft_watch_changed polled after it completed");
    expect_panic(rx_dropped_while_waiting, "weft_watch_changed (drop) on a dropped receiver");
    expect_panic(null_init, "weft_watch_new: init is NULL");
    expect_panic(null_tx, "weft_watch_new: tx is NULL");
    expect_panic(null_modify, "weft_watch_send_modify: modify is NULL");
    expect_panic(count_on_dropped, "weft_watch_receiver_count on a dropped sender");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("watch");
    TCase *tc = tcase_create("watch");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, versions_and_reads);
    tcase_add_test(tc, changed_waits_and_marks_seen);
    tcase_add_test(tc, closing);
    tcase_add_test(tc, no_receivers);
    tcase_add_test(tc, subscribe_and_clone_seen);
    tcase_add_test(tc, replace_and_modify);
    tcase_add_test(tc, ops_counts);
    tcase_add_test(tc, ops_halves);
    tcase_add_test(tc, changed_dropped);
    tcase_add_test(tc, many_waiters_one_send);
    tcase_add_test(tc, coop_budget_yields);
    tcase_add_test(tc, tasks_on_each_shape);
    tcase_add_test(tc, plain_thread_sends);
    tcase_add_test(tc, plain_threads_read);
    if (can_fork())
        tcase_add_test(tc, misuse_aborts);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
