/* tests/broadcast_tasks.h - what the broadcast suites (test_broadcast.c,
 * test_stress_broadcast.c) share: a message that shows a torn read, the
 * per-sender order check, and a sender task and a receiver task that
 * account for every message (received + missed to lag == sent). */
#ifndef WEFT_TEST_BROADCAST_TASKS_H
#define WEFT_TEST_BROADCAST_TASKS_H

#include "testlib.h"

#define BC_MAX_SENDERS 4

/* A message whose three words must agree: a torn read shows. seq is the
 * sender's id in the high 32 bits and its count in the low ones. */
typedef struct {
    uint64_t seq, inv, mul;
} msg_t;
static inline msg_t msg_of(uint64_t seq)
{
    return (msg_t){ seq, ~seq, seq * 0x9e3779b97f4a7c15u };
}
static inline bool msg_ok(const msg_t *m)
{
    return m->inv == ~m->seq && m->mul == m->seq * 0x9e3779b97f4a7c15u;
}

/* Checks one message against the order of its sender (each sender's
 * messages strictly increase); false, with a failure recorded, if not. */
static inline bool check_msg(const msg_t *m, uint64_t next[BC_MAX_SENDERS])
{
    uint64_t id = m->seq >> 32, i = m->seq & 0xffffffffu;
    if (!WEFT_TEST_CHECK(msg_ok(m)) || !WEFT_TEST_CHECK(id < BC_MAX_SENDERS) ||
        !WEFT_TEST_CHECK_MSG(i >= next[id], "sender %llu: %llu after %llu", (unsigned long long)id,
                             (unsigned long long)i, (unsigned long long)next[id]))
        return false;
    next[id] = i + 1;
    return true;
}

/* Sends msg_of(id << 32 | i) for i < count, yielding every 8 sends; every
 * send must reach at least one receiver. Owns tx. */
typedef struct {
    WEFT_FRAME;
    weft_broadcast_tx_t tx;
    uint64_t id, count, i;
    msg_t m;
    weft_yield_t y;
} sender_t;
static void sender_cleanup(sender_t *self)
{
    weft_broadcast_tx_drop(&self->tx);
}
WEFT_ASYNC_WITH_DROP(sender_t, sender, int, sender_cleanup)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < self->count; self->i++) {
        self->m = msg_of(self->id << 32 | self->i);
        if (!WEFT_TEST_CHECK(weft_broadcast_send(&self->tx, &self->m) >= 1))
            break;
        if (self->i % 8 == 7)
            WEFT_AWAIT(&self->y, weft_yield_now(), NULL);
    }
    weft_broadcast_tx_drop(&self->tx);
    WEFT_RETURN(0);
    WEFT_END();
}

/* Reads until closed, checking each sender's order; at the end received +
 * missed must be `expect` (every message sent). Output: how many it
 * received. Owns rx. */
typedef struct {
    WEFT_FRAME;
    weft_broadcast_rx_t rx;
    uint64_t expect;
    msg_t m;
    uint64_t next[BC_MAX_SENDERS], received, missed;
    int rc;
    weft_broadcast_recv_t r;
} receiver_t;
static void receiver_cleanup(receiver_t *self)
{
    weft_broadcast_rx_drop(&self->rx);
}
WEFT_ASYNC_WITH_DROP(receiver_t, receiver, uint64_t, receiver_cleanup)
{
    WEFT_BEGIN();
    for (;;) {
        WEFT_AWAIT(&self->r, weft_broadcast_recv(&self->rx, &self->m), &self->rc);
        if (self->rc == WEFT_EPIPE)
            break;
        if (self->rc == WEFT_ELAGGED) {
            self->missed += weft_broadcast_rx_missed(&self->rx);
            continue;
        }
        if (!WEFT_TEST_CHECK_INT_EQ(self->rc, 0) || !check_msg(&self->m, self->next))
            WEFT_RETURN(0);
        self->received++;
    }
    WEFT_TEST_CHECK_INT_EQ(self->received + self->missed, self->expect);
    WEFT_RETURN(self->received);
    WEFT_END();
}

#endif
