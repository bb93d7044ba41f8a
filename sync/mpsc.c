/* sync/mpsc.c - multi-producer, single-consumer channels (after Tokio's
 * tokio::sync::mpsc; the bounded ring after Vyukov's bounded queue).
 *
 * Structure: one cache-line-aligned allocation per channel: the counts
 * (`refs`: every sender, permit and the receiver; `senders`: senders and
 * permits) beside the read-only configuration, then groups of fields on
 * lines of their own, so that neither side pulls the other's lines on its
 * common path:
 *   - `tail`, the word every claim CASes: CLOSED | WAITERS | RX_WAITING |
 *     credits | position (an unbounded channel uses RX_WAITING only);
 *   - `tx_gone`, `rx_closed` (unbounded), and the receiver's waker under
 *     `rx_lock`;
 *   - `tx_waiting` (mirrors WAITERS, read by every receive) and the FIFO
 *     list of send futures waiting for room, under `wlock`;
 *   - the receiver's own `head`, or an unbounded channel's block list
 *     under `lock` (32-slot blocks, one spare kept for reuse);
 *   - the ring: cap slots, each a sequence word and a value.
 *
 * The bounded ring. A position is lap << k | slot index (2^k >= cap), so
 * its slot is a mask away; laps count modulo 2^(36-k). A slot's sequence
 * word says FREE(p) (a sender may fill it for position p) or FULL(p) (it
 * holds p's value). A credit is room held without a position (a permit, or
 * a queued send that was served); the credits cover the slots from tail
 * on, so there is room for one more exactly when the slot at tail+credits
 * is FREE for that position (the receiver frees slots in order).
 *   - send: unless CLOSED or WAITERS, check the slot at tail+credits and
 *     CAS tail one position on (a reserve: one credit more); copy the value
 *     in; store FULL(pos) with release. A permit's send CASes one position
 *     on and one credit off (its slot is free by the invariant above).
 *   - recv: while the slot at head is FULL(head): copy out, store
 *     FREE(head + one lap), which gives the room back; head on.
 *   - waiting for room: a send that finds none (or WAITERS) queues under
 *     wlock, sets WAITERS and tx_waiting, and serves the queue once itself;
 *     whoever makes room afterwards (a returned credit, a dropped served
 *     send, the receiver) sees tx_waiting and serves it: under the lock,
 *     each head waiter in turn gets a credit while there is room, is
 *     unlinked, and all are woken together after the unlock; an empty
 *     queue clears WAITERS. A served send turns its credit into a
 *     position when polled. WAITERS lives in the word the claims CAS, so
 *     no send takes room past the queue.
 *   - the receiver serves in batches: it counts the slots it freed
 *     (`unserved`) and looks at tx_waiting only once serve_batch of them
 *     (cap/8, 1 to 32) are free, or as many as there are waiting sends
 *     (`nwaiting`, a hint kept under wlock: room enough for every waiter
 *     is never held back), when a take got fewer values than asked (it
 *     saw the ring empty, and may park next), and after try_recv and
 *     blocking_recv (not at close: `unserved` is the receive's, and a
 *     close may run beside it; a send served but not polled fails at the
 *     close anyway). One lock hold and one wake list
 *     then serve up to serve_batch waiters, instead of a lock round and a
 *     wake per message (which, with the ring full, crossed workers at
 *     nearly every message). A sender that queues serves the queue with
 *     whatever room is free, gathered or not.
 *   - close: under wlock, CLOSED in tail (claims fail from then on, so the
 *     position then is the last one filled) and every queued send closed
 *     out.
 * The unbounded queue: the block list under `lock`, which also orders
 * `rx_closed` against pushes.
 *
 * No lost wake-up:
 *   - the receiver parks by storing its waker (rx_lock), then setting
 *     RX_WAITING with a fetch_or on tail. Bounded: if the position in the
 *     word it replaced is its head, nothing is claimed that it has not
 *     received, and every later claim CASes tail, sees the flag, clears it
 *     and wakes the receiver after publishing. A position claimed but not
 *     yet published will not wake it: it spins briefly, yields the CPU once,
 *     then yields the task. Unbounded: it looks at the queue (and
 *     rx_closed) under the lock after the flag; a push or a close looks
 *     at the flag after its unlock. Bounded close: CLOSED is itself a
 *     read-modify-write of tail. tx_gone: stored seq_cst before the flag
 *     is loaded, and loaded by the receiver after its fetch_or (a
 *     store-then-load pair).
 *   - a sender queues by storing tx_waiting, then looking for room;
 *     whoever makes room stores it (the receiver's FREE: the one locked
 *     instruction of a receive), then loads tx_waiting (a pair, seq_cst;
 *     the receiver's load may come several FREEs later, still after
 *     them). Room the receiver gathered reaches the queue at its next
 *     serve: at the latest when a take finds the ring empty, before the
 *     receiver can park, so waiters are not stranded by a parked
 *     receiver.
 * Closed and drained: the receiver reads tx_gone, then its slot (every
 * send completed before the last sender dropped, so all were published),
 * or reads CLOSED with head at the position where claims stopped. A send
 * that claimed before the close lands and is received, or drained: by
 * rx_drop, or by the last holder of the channel for what came after.
 *
 * Progress: a send with room is lock-free (a CAS on tail, a copy, a
 * store); a receive with a value is wait-free (loads, a copy, one
 * exchange). Waiting for room, parking and closing take short spin locks
 * (sync/waiters.h) of a few list and waker moves; nothing is woken,
 * allocated or freed under them. Context: any thread; the futures are
 * polled by tasks of any runtime or block_on roots; one receive at a time.
 * Weaknesses: senders on different cores share the tail word and the
 * slots' lines; values are copied twice (in and out); a sender preempted
 * between its claim and its publication holds up the receiver (not the
 * other senders), which then polls instead of sleeping; a receiver that
 * takes values with receive futures and then stops receiving (without
 * parking or a try_recv) while more sends wait than it freed slots keeps
 * those slots (fewer than serve_batch) from the waiting sends until one
 * more sender queues (Tokio hands each freed slot over at once; here a
 * slot waits only while it could not serve every waiter); the tail word repeats after
 * 2^36 positions, and a claim whose thread stalled between its load and
 * its CAS for exactly that long would succeed stale; the unbounded
 * channel takes one lock per message.
 */
#include <sched.h>
#include <stddef.h>
#include <string.h>

#include "../runtime/context.h"
#include "../runtime/nonnull.h"
#include "../runtime/construct.h"
#include "waiters.h"
#include "weft/mpsc.h"

/* Slots per block of an unbounded channel: Tokio's BLOCK_CAP. Big enough
 * that a block is allocated once per 32 messages, small enough that an
 * idle channel holds little. */
#define BLOCK_SLOTS 32

typedef struct block {
    struct block *next;
    _Alignas(16) unsigned char data[];
} block_t;

/* The tail word: CLOSED, WAITERS (sends are queued for room),
 * RX_WAITING (the receiver parked), credits (<= cap <= 2^24: 25 bits) and
 * the position (the 36 bits left). An unbounded channel uses RX_WAITING
 * only. */
#define T_CLOSED ((uint64_t)1)
#define T_WAITERS ((uint64_t)2)
#define T_RX_WAITING ((uint64_t)4)
#define T_CREDIT_SHIFT 3
#define T_CREDIT_BITS 25
#define T_CREDIT_ONE ((uint64_t)1 << T_CREDIT_SHIFT)
#define T_POS_SHIFT (T_CREDIT_SHIFT + T_CREDIT_BITS)
#define POS_MASK (((uint64_t)1 << (64 - T_POS_SHIFT)) - 1)
_Static_assert(WEFT_MPSC_MAX_CAP < ((size_t)1 << T_CREDIT_BITS), "credits fit their field");
/* The largest cap takes 24 index bits of a position, which leaves at least
 * 2^12 laps before positions repeat. */
_Static_assert(WEFT_MPSC_MAX_CAP == (size_t)1 << 24 && 64 - T_POS_SHIFT - 24 >= 12, "laps");

/* Spins of a receive that found the head position claimed but not yet
 * published (a sender between its CAS and its store: a copy's worth)
 * before it yields instead. */
#define RX_INFLIGHT_SPINS 32

/* The most slots a receiver frees before it serves the senders waiting
 * for room (a channel of cap serves every cap/8, at least every one). */
#define SERVE_BATCH_MAX 32

/* A slot's sequence word: position << 1, | 1 once the value is in. */
#define SEQ_FREE(p) ((p) << 1)
#define SEQ_FULL(p) ((p) << 1 | 1)
#define SLOT_HEADER sizeof(uint64_t)

enum send_phase {
    SEND_IDLE = 0, /* not polled yet */
    SEND_QUEUED,   /* in the queue, or unlinked by a server or close it has not seen */
    SEND_DONE,     /* completed */
};

/* What the queue gave a waiting send (its grant_ word). */
enum send_grant {
    GRANT_NONE = 0, /* still waiting */
    GRANT_CREDIT,   /* served: it holds one credit */
    GRANT_CLOSED,   /* closed out */
};

struct weft_mpsc_s {
    /* Set at creation; read-only after. */
    size_t value_size;
    size_t stride;     /* bounded: bytes per slot (sequence word + value, 8-aligned) */
    size_t cap;        /* bounded: slots */
    uint64_t idx_mask; /* bounded: a position's slot-index bits (2^k - 1 >= cap - 1) */
    void (*drop_value)(void *);
    bool bounded;
    _Atomic size_t refs;    /* senders + permits + receiver */
    _Atomic size_t senders; /* senders + permits */

    /* Each group below on lines of its own: the senders CAS `tail` on every
     * claim, and neither side should pull the other's lines on its fast
     * path. */
    _Alignas(WEFT_CACHELINE) _Atomic uint64_t tail;

    /* The receiver's parking and the closed states: written once, or when
     * the receiver parks. */
    _Alignas(WEFT_CACHELINE) _Atomic bool tx_gone; /* every sender and permit dropped */
    _Atomic bool rx_closed;                        /* unbounded: close / rx_drop (changed under `lock`) */
    unsigned rx_lock;                              /* over rx_waker */
    weft_waker_t rx_waker;

    /* Bounded: the queue of sends waiting for room: tx_waiting is read by
     * every receive, written when the queue fills or empties. */
    _Alignas(WEFT_CACHELINE) _Atomic bool tx_waiting; /* = WAITERS; changed under wlock */
    unsigned wlock;                                   /* over waiters and their nodes, wakers, grants */
    weft__dlist_t waiters;
    _Atomic size_t nwaiting; /* sends on `waiters`; changed under wlock, read by the receiver (a hint) */

    /* The receiver's (bounded), or the block list under `lock` (unbounded). */
    _Alignas(WEFT_CACHELINE) uint64_t head; /* bounded: next position to receive */
    size_t head_slot;                       /* bounded: head's slot index */
    size_t unserved;                        /* bounded: slots freed since the receiver last looked at the queue */
    size_t serve_batch;                     /* bounded: how many freed slots the receiver gathers before serving */
    unsigned lock;                          /* unbounded: over everything below */
    size_t len;
    block_t *head_blk, *tail_blk, *spare;
    size_t head_idx, tail_idx;

    _Alignas(WEFT_CACHELINE) unsigned char ring[];
};

static inline _Atomic unsigned *grant_word(weft_mpsc_send_t *s)
{
    return (_Atomic unsigned *)(void *)&s->grant_;
}
_Static_assert(sizeof(_Atomic unsigned) == sizeof(unsigned), "grant word size");
_Static_assert(_Alignof(_Atomic unsigned) == _Alignof(unsigned), "grant word alignment");

static inline weft_mpsc_send_t *node_send(weft__dnode_t *n)
{
    return weft__container_of(n, weft_mpsc_send_t, node_);
}

/* ---- Positions, slots and the tail word ------------------------------------- */

static inline uint64_t t_pos(uint64_t w)
{
    return w >> T_POS_SHIFT;
}

static inline uint64_t t_credits(uint64_t w)
{
    return (w >> T_CREDIT_SHIFT) & (((uint64_t)1 << T_CREDIT_BITS) - 1);
}

static inline uint64_t t_with_pos(uint64_t w, uint64_t pos)
{
    return (w & (((uint64_t)1 << T_POS_SHIFT) - 1)) | pos << T_POS_SHIFT;
}

/* A position is lap << idx_bits | slot index, so the slot is a mask away
 * (no division for a cap that is not a power of two); laps count modulo
 * what is left of POS_BITS. */
static inline size_t pos_slot(const weft_mpsc_t *c, uint64_t p)
{
    return (size_t)(p & c->idx_mask);
}

/* The same slot one lap later. */
static inline uint64_t pos_lap(const weft_mpsc_t *c, uint64_t p)
{
    return (p + c->idx_mask + 1) & POS_MASK;
}

/* The position k (<= cap) after p. */
static inline uint64_t pos_add(const weft_mpsc_t *c, uint64_t p, uint64_t k)
{
    uint64_t idx = (p & c->idx_mask) + k;
    if (WEFT_LIKELY(idx < c->cap))
        return p + k;
    return (((p | c->idx_mask) + 1) & POS_MASK) | (idx - c->cap); /* next lap */
}

static inline unsigned char *slot_at(weft_mpsc_t *c, size_t i)
{
    return c->ring + i * c->stride;
}

static inline _Atomic uint64_t *slot_seq(unsigned char *slot)
{
    return (_Atomic uint64_t *)(void *)slot;
}

/* Values are copied by size; the common small sizes as fixed-size copies
 * the compiler inlines (a call to memcpy was a tenth of a message's cost). */
static inline void copy_value(void *dst, const void *src, size_t n)
{
    switch (n) {
    case 4:
        memcpy(dst, src, 4);
        break;
    case 8:
        memcpy(dst, src, 8);
        break;
    case 16:
        memcpy(dst, src, 16);
        break;
    default:
        memcpy(dst, src, n);
        break;
    }
}

static void wake_opt(weft_waker_t *w)
{
    if (w->vtable != NULL)
        weft_waker_wake(w);
}

/* ---- The receiver's parking ----------------------------------------------- */

/* Whoever cleared RX_WAITING wakes the receiver's waker (if it is still
 * there: a receive that completed meanwhile took it back). */
static void rx_wake(weft_mpsc_t *c)
{
    weft__waitlock_lock(&c->rx_lock);
    weft_waker_t w = c->rx_waker;
    c->rx_waker.vtable = NULL;
    weft__waitlock_unlock(&c->rx_lock);
    WEFT_CHAOS();
    wake_opt(&w);
}

/* After the caller made something visible that the receiver may wait for
 * without a claim on tail (tx_gone, rx_closed, an unbounded push): wakes
 * it if it parked. */
static void rx_wake_parked(weft_mpsc_t *c)
{
    /* seq_cst: the load half of the caller's pair with rx_wait (its
     * fetch_or, then its loads of tx_gone / the queue): the caller stored
     * tx_gone with seq_cst, or the queue lock orders the two. */
    if (!(atomic_load_explicit(&c->tail, memory_order_seq_cst) & T_RX_WAITING))
        return;
    /* seq_cst: as every change of tail. Only one clearer wakes. */
    if (atomic_fetch_and_explicit(&c->tail, ~T_RX_WAITING, memory_order_seq_cst) & T_RX_WAITING)
        rx_wake(c);
}

typedef enum { WAIT_PARKED, WAIT_RETRY, WAIT_FINISHED } rx_wait_t;

static bool rx_finished(weft_mpsc_t *c);

/* The receiver found nothing: unless closed and drained, stores its waker
 * and raises RX_WAITING, which tells it whether it may sleep. WAIT_RETRY:
 * something came, was claimed before the flag and is still being copied
 * in (the bounded ring), or the channel closed: look again. */
static rx_wait_t rx_wait(weft_mpsc_t *c, const weft_waker_t *waker, bool *registered)
{
    if (rx_finished(c))
        return WAIT_FINISHED;
    weft_waker_t old = { NULL, NULL };
    weft__waitlock_lock(&c->rx_lock);
    weft__waiter_register(&c->rx_waker, waker, &old);
    weft__waitlock_unlock(&c->rx_lock);
    weft_waker_drop(&old);
    *registered = true;
    WEFT_CHAOS();
    /* seq_cst: a read-modify-write of tail, so every later claim (a CAS of
     * tail) sees RX_WAITING and wakes us after it publishes; and the store
     * half of the pair with rx_wake_parked for tx_gone and closing. */
    uint64_t w = atomic_fetch_or_explicit(&c->tail, T_RX_WAITING, memory_order_seq_cst);
    bool empty;
    if (c->bounded) {
        empty = !(w & T_CLOSED) && t_pos(w) == c->head; /* nothing claimed we have not received */
    } else {
        weft__waitlock_lock(&c->lock);
        /* relaxed: changed under this lock. */
        empty = c->len == 0 && !atomic_load_explicit(&c->rx_closed, memory_order_relaxed);
        weft__waitlock_unlock(&c->lock);
    }
    /* seq_cst: the load half of the pair with sender_release. */
    if (empty && !atomic_load_explicit(&c->tx_gone, memory_order_seq_cst))
        return WAIT_PARKED;
    return WAIT_RETRY;
}

/* A receive completed or was dropped: its waker must not stay behind (a
 * blocking receive's points at its stack; block_on_here also waits for a
 * wake already taken out by a sender). */
static void rx_unpark(weft_mpsc_t *c, bool *registered)
{
    if (!*registered)
        return;
    /* relaxed: a first look; the fetch_and orders. */
    if (atomic_load_explicit(&c->tail, memory_order_relaxed) & T_RX_WAITING)
        atomic_fetch_and_explicit(&c->tail, ~T_RX_WAITING, memory_order_seq_cst); /* as every change of tail */
    weft__waitlock_lock(&c->rx_lock);
    weft_waker_t w = c->rx_waker;
    c->rx_waker.vtable = NULL;
    weft__waitlock_unlock(&c->rx_lock);
    weft_waker_drop(&w);
    *registered = false;
}

/* ---- The bounded ring -------------------------------------------------------- */

typedef enum { WANT_SLOT, WANT_CREDIT } want_t;
typedef enum { CLAIM_OK, CLAIM_FULL, CLAIM_WAITERS, CLAIM_CLOSED } claim_t;

/* Takes room: a position (*pos) or a credit. `serving`: for the queue's
 * head (WAITERS does not stop it). *wake_rx: the claim cleared
 * RX_WAITING, so the caller wakes the receiver once it has published. */
static inline claim_t ring_claim(weft_mpsc_t *c, want_t want, bool serving, uint64_t *pos, bool *wake_rx)
{
    /* seq_cst: when serving, the load half of a queueing sender's pair
     * (send_queue stored tx_waiting first); see room_made. A plain load
     * on x86. */
    uint64_t w = atomic_load_explicit(&c->tail, memory_order_seq_cst);
    for (;;) {
        if (w & T_CLOSED)
            return CLAIM_CLOSED;
        if ((w & T_WAITERS) && !serving)
            return CLAIM_WAITERS;
        uint64_t p = t_pos(w);
        uint64_t q = pos_add(c, p, t_credits(w)); /* the first position no credit covers */
        /* seq_cst (acquire at least): pairs with ring_take's store of
         * FREE, so the receiver's copy-out of the old value, and of every
         * slot before this one, happens before we fill ours; seq_cst for
         * the pair with room_made. */
        if (atomic_load_explicit(slot_seq(slot_at(c, pos_slot(c, q))), memory_order_seq_cst) != SEQ_FREE(q)) {
            uint64_t now = atomic_load_explicit(&c->tail, memory_order_seq_cst);
            if (now == w)
                return CLAIM_FULL;
            w = now; /* it moved meanwhile: look again */
            continue;
        }
        uint64_t next = want == WANT_SLOT ? t_with_pos(w, pos_add(c, p, 1)) & ~T_RX_WAITING : w + T_CREDIT_ONE;
        WEFT_CHAOS();
        /* seq_cst (acq_rel at least): every change of tail is a
         * read-modify-write, so a credit's later use (credit_to_slot's
         * CAS) synchronizes with the claim that checked its slot. */
        if (atomic_compare_exchange_weak_explicit(&c->tail, &w, next, memory_order_seq_cst, memory_order_seq_cst)) {
            *pos = p;
            *wake_rx = want == WANT_SLOT && (w & T_RX_WAITING);
            return CLAIM_OK;
        }
    }
}

/* Turns a held credit into the position at tail. false: closed (the
 * credit is given back). */
static bool credit_to_slot(weft_mpsc_t *c, uint64_t *pos, bool *wake_rx)
{
    /* relaxed: a first guess; the CAS validates it and orders. */
    uint64_t w = atomic_load_explicit(&c->tail, memory_order_relaxed);
    for (;;) {
        if (w & T_CLOSED) {
            /* seq_cst: as every change of tail. Closed: nobody is queued
             * for it. */
            atomic_fetch_sub_explicit(&c->tail, T_CREDIT_ONE, memory_order_seq_cst);
            return false;
        }
        uint64_t next = (t_with_pos(w, pos_add(c, t_pos(w), 1)) - T_CREDIT_ONE) & ~T_RX_WAITING;
        WEFT_CHAOS();
        /* seq_cst (acquire at least): synchronizes with the claim that
         * checked this slot was free (see ring_claim). */
        if (atomic_compare_exchange_weak_explicit(&c->tail, &w, next, memory_order_seq_cst, memory_order_relaxed)) {
            *pos = t_pos(w);
            *wake_rx = (w & T_RX_WAITING) != 0;
            return true;
        }
    }
}

/* Copies value into pos's slot, publishes it, and wakes the receiver when
 * the claim found it parked. */
static inline void ring_put(weft_mpsc_t *c, uint64_t pos, const void *value, bool wake_rx)
{
    unsigned char *slot = slot_at(c, pos_slot(c, pos));
    copy_value(slot + SLOT_HEADER, value, c->value_size);
    WEFT_CHAOS();
    /* release: publishes the value; pairs with ring_take's load. */
    atomic_store_explicit(slot_seq(slot), SEQ_FULL(pos), memory_order_release);
    if (wake_rx)
        rx_wake(c);
}

/* ---- The queue of sends waiting for room (bounded) -------------------------- */

/* Under wlock, once the queue is empty: no WAITERS any more. */
static void queue_emptied_locked(weft_mpsc_t *c)
{
    /* relaxed: only changed under wlock. */
    if (!atomic_load_explicit(&c->tx_waiting, memory_order_relaxed))
        return;
    /* seq_cst: as every change of tail. */
    atomic_fetch_and_explicit(&c->tail, ~T_WAITERS, memory_order_seq_cst);
    atomic_store_explicit(&c->tx_waiting, false, memory_order_seq_cst);
}

/* Under wlock: gives a credit to each waiter from the head while there is
 * room, unlinking it and moving its waker into wl. Returns false when wl
 * filled up first (the caller wakes it and comes back). */
/* Under wlock: the count of queued sends, for the receiver's batching
 * (relaxed: a hint; the lock orders it for the writers). */
static inline void waiting_add(weft_mpsc_t *c, size_t d)
{
    atomic_store_explicit(&c->nwaiting, atomic_load_explicit(&c->nwaiting, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

static bool serve_locked(weft_mpsc_t *c, weft__wake_list_t *wl)
{
    weft__dnode_t *n;
    while ((n = weft__dlist_first(&c->waiters)) != NULL) {
        if (weft__wake_list_full(wl))
            return false;
        uint64_t unused;
        bool no_wake;
        if (ring_claim(c, WANT_CREDIT, true, &unused, &no_wake) != CLAIM_OK)
            return true; /* full (the next room maker serves), or closed (close empties it) */
        weft_mpsc_send_t *s = node_send(n);
        weft__dlist_remove(n);
        waiting_add(c, (size_t)-1);
        weft__waiter_take(&s->waker_, wl);
        WEFT_CHAOS();
        /* release, and the last access to *s: pairs with the acquire load
         * in send_bounded, which may then complete the future and free
         * it. */
        atomic_store_explicit(grant_word(s), GRANT_CREDIT, memory_order_release);
    }
    queue_emptied_locked(c);
    return true;
}

/* Under wlock: serves the whole queue, waking in batches (the lock is
 * dropped around each full batch). Returns with the lock held and the
 * last batch in wl. */
static void serve_relock(weft_mpsc_t *c, weft__wake_list_t *wl)
{
    while (!serve_locked(c, wl)) {
        weft__waitlock_unlock(&c->wlock);
        weft__wake_list_wake(wl);
        weft__waitlock_lock(&c->wlock);
    }
}

static void serve_and_unlock(weft_mpsc_t *c)
{
    weft__wake_list_t wl;
    weft__wake_list_init(&wl);
    serve_relock(c, &wl);
    weft__waitlock_unlock(&c->wlock);
    weft__wake_list_wake(&wl);
}

/* After the caller's seq_cst store that made room (a slot FREE, a credit
 * given back): serves the queue if anyone waits. */
static inline void room_made(weft_mpsc_t *c)
{
    /* seq_cst: the load half of the room maker's pair; pairs with
     * send_queue's seq_cst store of tx_waiting followed by serve_locked's
     * loads of tail and the slot. Either the queue is seen, or the queueing
     * sender sees the room. */
    if (!atomic_load_explicit(&c->tx_waiting, memory_order_seq_cst))
        return;
    weft__waitlock_lock(&c->wlock);
    serve_and_unlock(c);
}

static void credit_return(weft_mpsc_t *c)
{
    /* seq_cst: the store half of the room maker's pair (room_made). */
    atomic_fetch_sub_explicit(&c->tail, T_CREDIT_ONE, memory_order_seq_cst);
    room_made(c);
}

/* What a send got when it tried to take its place. */
typedef enum { ROOM_QUEUED, ROOM_SLOT, ROOM_CREDIT, ROOM_CLOSED } room_t;

/* The fast path failed: under wlock, tries again if nobody waits, else
 * queues s at the back, raises WAITERS and serves the queue once (room may
 * have come between the failed claim and the flag). */
static room_t send_queue(weft_mpsc_send_t *s, want_t want, const weft_waker_t *waker, uint64_t *pos, bool *wake_rx)
{
    weft_mpsc_t *c = s->chan_;
    weft__wake_list_t wl;
    weft__wake_list_init(&wl);
    weft__waitlock_lock(&c->wlock);
    switch (ring_claim(c, want, false, pos, wake_rx)) {
    case CLAIM_OK:
        weft__waitlock_unlock(&c->wlock);
        return want == WANT_SLOT ? ROOM_SLOT : ROOM_CREDIT;
    case CLAIM_CLOSED:
        weft__waitlock_unlock(&c->wlock);
        return ROOM_CLOSED;
    case CLAIM_FULL:
    case CLAIM_WAITERS:
        break;
    }
    /* relaxed: the lock orders it until s is linked; then the release
     * store of the server. */
    atomic_store_explicit(grant_word(s), GRANT_NONE, memory_order_relaxed);
    weft__dnode_init(&s->node_);
    weft__dlist_push_back(&c->waiters, &s->node_);
    waiting_add(c, 1);
    if (!atomic_load_explicit(&c->tx_waiting, memory_order_relaxed)) { /* relaxed: under wlock */
        /* seq_cst: WAITERS stops new claims; tx_waiting is the store half
         * of this sender's pair with room_made (serve_locked loads next). */
        atomic_fetch_or_explicit(&c->tail, T_WAITERS, memory_order_seq_cst);
        atomic_store_explicit(&c->tx_waiting, true, memory_order_seq_cst);
    }
    WEFT_CHAOS();
    serve_relock(c, &wl);
    /* relaxed: under wlock, which every server holds. */
    room_t got = atomic_load_explicit(grant_word(s), memory_order_relaxed) == GRANT_CREDIT ? ROOM_CREDIT : ROOM_QUEUED;
    if (got == ROOM_QUEUED)
        s->waker_ = weft_waker_clone(waker);
    weft__waitlock_unlock(&c->wlock);
    weft__wake_list_wake(&wl);
    return got;
}

/* ---- The unbounded queue (under the lock) ------------------------------------ */

static size_t block_bytes(const weft_mpsc_t *c)
{
    return sizeof(block_t) + BLOCK_SLOTS * c->value_size;
}

/* Whether a push needs a new block first (tail full, no spare). */
static bool push_needs_block(const weft_mpsc_t *c)
{
    return c->tail_idx == BLOCK_SLOTS && c->spare == NULL;
}

static void push_locked(weft_mpsc_t *c, const void *value)
{
    if (c->tail_idx == BLOCK_SLOTS) {
        block_t *b = c->spare;
        c->spare = NULL;
        b->next = NULL;
        c->tail_blk->next = b;
        c->tail_blk = b;
        c->tail_idx = 0;
    }
    memcpy(c->tail_blk->data + c->tail_idx * c->value_size, value, c->value_size);
    c->tail_idx++;
    c->len++;
}

/* Pops the oldest value into dst. Returns a block the caller frees after
 * unlocking, or NULL. */
static block_t *pop_locked(weft_mpsc_t *c, void *dst)
{
    block_t *freed = NULL;
    if (c->head_idx == BLOCK_SLOTS) {
        block_t *old = c->head_blk;
        c->head_blk = old->next;
        c->head_idx = 0;
        if (c->spare == NULL)
            c->spare = old;
        else
            freed = old;
    }
    memcpy(dst, c->head_blk->data + c->head_idx * c->value_size, c->value_size);
    c->head_idx++;
    if (c->len == 1 && c->head_blk == c->tail_blk) {
        /* Drained: start the block over instead of walking into the next
         * one. */
        c->head_idx = 0;
        c->tail_idx = 0;
    }
    c->len--;
    return freed;
}

/* Copies value in. Returns 0, WEFT_EPIPE or WEFT_ENOMEM. */
static int queue_push(weft_mpsc_t *c, const void *value)
{
    block_t *fresh = NULL;
    for (;;) {
        weft__waitlock_lock(&c->lock);
        /* relaxed: changed under this lock. */
        if (atomic_load_explicit(&c->rx_closed, memory_order_relaxed)) {
            weft__waitlock_unlock(&c->lock);
            if (fresh != NULL)
                weft__free(fresh, block_bytes(c));
            return WEFT_EPIPE;
        }
        if (push_needs_block(c)) {
            if (fresh != NULL) {
                c->spare = fresh;
                fresh = NULL;
            } else {
                /* Allocate outside the lock, then look again. */
                weft__waitlock_unlock(&c->lock);
                fresh = weft__alloc(block_bytes(c));
                if (fresh == NULL)
                    return WEFT_ENOMEM;
                continue;
            }
        }
        WEFT_CHAOS();
        push_locked(c, value);
        /* The unlock releases the push to the receiver's lock. rx_wait
         * raised RX_WAITING before taking this lock to look, so either it
         * saw this push or rx_wake_parked below sees its flag. */
        weft__waitlock_unlock(&c->lock);
        if (fresh != NULL) /* someone else supplied the block meanwhile */
            weft__free(fresh, block_bytes(c));
        rx_wake_parked(c);
        return 0;
    }
}

/* ---- Taking values out (the receiver) ------------------------------------------ */

static inline size_t ring_take(weft_mpsc_t *c, unsigned char *buf, size_t max)
{
    size_t n = 0;
    while (n < max) {
        unsigned char *slot = slot_at(c, c->head_slot);
        /* acquire: pairs with ring_put's release store: the value is in. */
        if (atomic_load_explicit(slot_seq(slot), memory_order_acquire) != SEQ_FULL(c->head))
            break;
        copy_value(buf + n * c->value_size, slot + SLOT_HEADER, c->value_size);
        WEFT_CHAOS();
        /* seq_cst: release for the room (pairs with ring_claim's load: our
         * copy is done before the slot is refilled), and the store half of
         * the room maker's pair (room_made). The one locked instruction
         * of a receive. */
        atomic_store_explicit(slot_seq(slot), SEQ_FREE(pos_lap(c, c->head)), memory_order_seq_cst);
        c->head = pos_add(c, c->head, 1);
        c->head_slot = pos_slot(c, c->head);
        n++;
    }
    /* Waiting senders are served once serve_batch slots are free, or when
     * the receiver took fewer than asked (it saw the ring empty: it may
     * park next); rx_serve_pending after try_recv and blocking_recv. */
    c->unserved += n;
    /* relaxed: a hint. Read stale, it only moves the serve (at the
     * latest, to the batch's end or the take that sees the ring empty). */
    size_t waiting = atomic_load_explicit(&c->nwaiting, memory_order_relaxed);
    if (c->unserved >= c->serve_batch || (c->unserved > 0 && (n < max || c->unserved >= waiting))) {
        c->unserved = 0;
        room_made(c);
    }
    return n;
}

/* The receiver serves the room it freed but has not offered the queue yet
 * (after a receive that is not a future, which may be its last). */
static inline void rx_serve_pending(weft_mpsc_t *c)
{
    if (c->bounded && c->unserved > 0) {
        c->unserved = 0;
        room_made(c);
    }
}

static size_t queue_take(weft_mpsc_t *c, unsigned char *buf, size_t max)
{
    block_t *freed[2] = { NULL, NULL };
    unsigned nfreed = 0;
    size_t n = 0;
    weft__waitlock_lock(&c->lock);
    while (n < max && c->len > 0) {
        block_t *f = pop_locked(c, buf + n * c->value_size);
        n++;
        if (f != NULL && (freed[nfreed++] = f, nfreed == 2))
            break; /* at most two blocks to free per call: a short list */
    }
    weft__waitlock_unlock(&c->lock);
    for (unsigned i = 0; i < nfreed; i++)
        weft__free(freed[i], block_bytes(c));
    return n;
}

/* Copies up to max values into buf; returns how many. */
static inline size_t rx_take(weft_mpsc_t *c, unsigned char *buf, size_t max)
{
    return c->bounded ? ring_take(c, buf, max) : queue_take(c, buf, max);
}

/* After a take found nothing: whether the channel is closed and drained. */
static bool rx_finished(weft_mpsc_t *c)
{
    /* seq_cst (acquire at least): pairs with sender_release's store, which
     * comes after every publication (each sender's before its count
     * fell). Read before the queue, so those are then seen below. */
    bool gone = atomic_load_explicit(&c->tx_gone, memory_order_seq_cst);
    if (!c->bounded) {
        weft__waitlock_lock(&c->lock);
        /* relaxed: changed under this lock. */
        bool done = c->len == 0 && (gone || atomic_load_explicit(&c->rx_closed, memory_order_relaxed));
        weft__waitlock_unlock(&c->lock);
        return done;
    }
    if (gone) /* every claimed position is published */
        return atomic_load_explicit(slot_seq(slot_at(c, c->head_slot)), memory_order_acquire) != SEQ_FULL(c->head);
    /* seq_cst: as above. Once CLOSED, the position no longer moves: every
     * position before it was claimed and will be published. */
    uint64_t w = atomic_load_explicit(&c->tail, memory_order_seq_cst);
    return (w & T_CLOSED) && t_pos(w) == c->head;
}

/* ---- Lifetime --------------------------------------------------------------- */

/* Values up to this size are drained through a buffer on the stack; larger
 * ones through scratch room allocated with the channel, so that freeing a
 * channel never needs memory it might not get. */
#define DRAIN_STACK_BUF 256

static size_t chan_bytes(size_t ring_bytes, size_t value_size)
{
    return sizeof(weft_mpsc_t) + ring_bytes + (value_size > DRAIN_STACK_BUF ? value_size : 0);
}

static unsigned char *chan_scratch(weft_mpsc_t *c)
{
    return c->ring + (c->bounded ? c->cap * c->stride : 0);
}

/* Drops every queued value through drop_value. Only by the receiver after
 * close (no claim can start), or by the last holder. */
static void drain_values(weft_mpsc_t *c)
{
    unsigned char buf[DRAIN_STACK_BUF];
    unsigned char *tmp = c->value_size <= sizeof buf ? buf : chan_scratch(c);
    while (rx_take(c, tmp, 1) == 1)
        if (c->drop_value != NULL)
            c->drop_value(tmp);
}

static void chan_release(weft_mpsc_t *c)
{
    /* acq_rel: the last holder sees every other holder's writes (queued
     * values, wakers) before freeing; pairs with this same fetch_sub in
     * the other holders. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    drain_values(c); /* what senders published after rx_drop drained */
    if (!c->bounded) {
        for (block_t *b = c->head_blk, *n; b != NULL; b = n) {
            n = b->next;
            weft__free(b, block_bytes(c));
        }
        if (c->spare != NULL)
            weft__free(c->spare, block_bytes(c));
    }
    weft_waker_drop(&c->rx_waker);
    WEFT_LIVE_DEC(WEFT_LIVE_MPSC);
    weft__free_aligned(c);
}

static int chan_new(size_t cap, bool bounded, size_t value_size, void (*drop_value)(void *), weft_mpsc_tx_t *tx,
                    weft_mpsc_rx_t *rx)
{
    if (value_size == 0 || value_size > WEFT_MPSC_MAX_VALUE)
        return WEFT_EINVAL;
    if (bounded && (cap == 0 || cap > WEFT_MPSC_MAX_CAP))
        return WEFT_EINVAL;
    size_t stride = WEFT_ALIGN_UP(SLOT_HEADER + value_size, sizeof(uint64_t));
    weft_mpsc_t *c = weft__alloc_aligned(chan_bytes(bounded ? cap * stride : 0, value_size));
    if (c == NULL)
        return WEFT_ENOMEM;
    block_t *b = NULL;
    if (!bounded) {
        b = weft__alloc(sizeof(block_t) + BLOCK_SLOTS * value_size);
        if (b == NULL) {
            weft__free_aligned(c);
            return WEFT_ENOMEM;
        }
        b->next = NULL;
    }
    c->value_size = value_size;
    c->stride = stride;
    c->cap = cap;
    c->idx_mask = 0;
    while (bounded && c->idx_mask < cap - 1)
        c->idx_mask = c->idx_mask << 1 | 1;
    c->drop_value = drop_value;
    c->bounded = bounded;
    atomic_init(&c->refs, 2);
    atomic_init(&c->senders, 1);
    atomic_init(&c->tail, 0);
    atomic_init(&c->tx_gone, false);
    atomic_init(&c->rx_closed, false);
    weft__waitlock_init(&c->rx_lock);
    c->rx_waker = (weft_waker_t){ NULL, NULL };
    atomic_init(&c->tx_waiting, false);
    atomic_init(&c->nwaiting, 0);
    weft__waitlock_init(&c->wlock);
    weft__dlist_init(&c->waiters);
    c->head = 0;
    c->head_slot = 0;
    c->unserved = 0;
    c->serve_batch = cap / 8 < 1 ? 1 : cap / 8 > SERVE_BATCH_MAX ? SERVE_BATCH_MAX : cap / 8;
    for (size_t i = 0; bounded && i < cap; i++)
        atomic_init(slot_seq(slot_at(c, i)), SEQ_FREE((uint64_t)i));
    weft__waitlock_init(&c->lock);
    c->len = 0;
    c->head_blk = c->tail_blk = b;
    c->spare = NULL;
    c->head_idx = c->tail_idx = 0;
    WEFT_LIVE_INC(WEFT_LIVE_MPSC);
    tx->chan_ = c;
    rx->chan_ = c;
    return 0;
}

int weft_mpsc_bounded(size_t cap, size_t value_size, void (*drop_value)(void *), weft_mpsc_tx_t *tx,
                      weft_mpsc_rx_t *rx)
{
    WEFT__REQUIRE("weft_mpsc_bounded", tx);
    WEFT__REQUIRE("weft_mpsc_bounded", rx);
    return chan_new(cap, true, value_size, drop_value, tx, rx);
}

int weft_mpsc_unbounded(size_t value_size, void (*drop_value)(void *), weft_mpsc_tx_t *tx, weft_mpsc_rx_t *rx)
{
    WEFT__REQUIRE("weft_mpsc_unbounded", tx);
    WEFT__REQUIRE("weft_mpsc_unbounded", rx);
    return chan_new(0, false, value_size, drop_value, tx, rx);
}

/* One sender or permit fewer; the last one marks the channel closed for
 * the receiver and wakes it. */
static void sender_release(weft_mpsc_t *c)
{
    /* acq_rel: orders this holder's publications before the count falls;
     * pairs with itself in other senders, so the last one's store below
     * carries all of them. */
    if (atomic_fetch_sub_explicit(&c->senders, 1, memory_order_acq_rel) == 1) {
        WEFT_CHAOS();
        /* seq_cst: release for every publication (rx_finished's load), and
         * the store half of the pair with rx_wait (rx_wake_parked). */
        atomic_store_explicit(&c->tx_gone, true, memory_order_seq_cst);
        rx_wake_parked(c);
    }
    chan_release(c);
}

static void sender_retain(weft_mpsc_t *c)
{
    /* relaxed: the caller holds a sender or permit, so both counts are
     * above 0 and nobody can free the channel meanwhile. */
    atomic_fetch_add_explicit(&c->senders, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* ---- Writing a future (runtime/construct.h) ------------------------------------ */
#ifdef WEFT__PAIR_STORES
_Static_assert(offsetof(weft_mpsc_send_t, chan_) == 8 && offsetof(weft_mpsc_send_t, value_) == 16 &&
                   offsetof(weft_mpsc_send_t, permit_) == 24 && offsetof(weft_mpsc_send_t, node_) == 32 &&
                   offsetof(weft_mpsc_send_t, waker_) == 48 && offsetof(weft_mpsc_send_t, grant_) == 64 &&
                   offsetof(weft_mpsc_send_t, phase_) == 68 && sizeof(weft_mpsc_send_t) == 72,
               "weft_mpsc_send_t layout (send_new)");
_Static_assert(offsetof(weft_mpsc_recv_t, chan_) == 8 && offsetof(weft_mpsc_recv_t, dst_) == 16 &&
                   offsetof(weft_mpsc_recv_t, max_) == 24 && offsetof(weft_mpsc_recv_t, registered_) == 32 &&
                   offsetof(weft_mpsc_recv_t, done_) == 33 && sizeof(weft_mpsc_recv_t) == 40,
               "weft_mpsc_recv_t layout (recv_new)");
#endif

/* ---- send / reserve futures -------------------------------------------------- */

static weft_mpsc_t *tx_chan(const weft_mpsc_tx_t *tx, const char *what)
{
    if (tx->chan_ == NULL)
        weft_panic(WEFT_SITE, "%s on a dropped sender", what);
    return tx->chan_;
}

/* A reserve got its room: the permit is a sender of its own (it keeps the
 * channel open). A close that came after is seen at permit_send. */
static int make_permit(weft_mpsc_send_t *s)
{
    sender_retain(s->chan_);
    s->permit_->chan_ = s->chan_;
    return 0;
}

/* A bounded send or reserve holding a credit finishes with it. */
static int finish_with_credit(weft_mpsc_send_t *s)
{
    if (s->permit_ != NULL)
        return make_permit(s);
    uint64_t pos;
    bool wake_rx;
    if (!credit_to_slot(s->chan_, &pos, &wake_rx))
        return WEFT_EPIPE; /* closed after the room was given: not taken */
    ring_put(s->chan_, pos, s->value_, wake_rx);
    return 0;
}

static inline int finish_with(weft_mpsc_send_t *s, room_t room, uint64_t pos, bool wake_rx)
{
    switch (room) {
    case ROOM_SLOT:
        ring_put(s->chan_, pos, s->value_, wake_rx);
        return 0;
    case ROOM_CREDIT:
        return finish_with_credit(s);
    case ROOM_CLOSED:
    case ROOM_QUEUED:
        break;
    }
    return WEFT_EPIPE;
}

static inline weft_poll_t send_bounded(weft_mpsc_send_t *s, const weft_waker_t *waker, int *rc)
{
    weft_mpsc_t *c = s->chan_;
    want_t want = s->permit_ != NULL ? WANT_CREDIT : WANT_SLOT;
    uint64_t pos = 0;
    bool wake_rx = false;
    room_t room;
    if (s->phase_ == SEND_IDLE) {
        claim_t got = ring_claim(c, want, false, &pos, &wake_rx);
        if (got == CLAIM_OK)
            room = want == WANT_SLOT ? ROOM_SLOT : ROOM_CREDIT;
        else if (got == CLAIM_CLOSED)
            room = ROOM_CLOSED;
        else /* full, or others wait: queue behind them */
            room = send_queue(s, want, waker, &pos, &wake_rx);
        if (room == ROOM_QUEUED) {
            s->phase_ = SEND_QUEUED;
            return WEFT_PENDING;
        }
        *rc = finish_with(s, room, pos, wake_rx);
        return WEFT_READY;
    }
    /* Queued. acquire: pairs with serve_locked's release store, after which
     * the server no longer touches *s. */
    unsigned g = atomic_load_explicit(grant_word(s), memory_order_acquire);
    if (g == GRANT_NONE) {
        weft_waker_t old = { NULL, NULL };
        weft__waitlock_lock(&c->wlock);
        g = atomic_load_explicit(grant_word(s), memory_order_relaxed); /* the lock orders it */
        if (g == GRANT_NONE)
            weft__waiter_register(&s->waker_, waker, &old);
        weft__waitlock_unlock(&c->wlock);
        weft_waker_drop(&old);
        if (g == GRANT_NONE)
            return WEFT_PENDING;
    }
    *rc = g == GRANT_CREDIT ? finish_with_credit(s) : WEFT_EPIPE;
    return WEFT_READY;
}

static weft_poll_t send_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_mpsc_send_t *s = (weft_mpsc_send_t *)(void *)f;
    weft_mpsc_t *c = s->chan_;
    int rc = 0;
    if (s->phase_ == SEND_DONE)
        weft_panic(WEFT_SITE, "%s polled after it completed", f->vtable->name);
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    if (!c->bounded) {
        rc = s->permit_ != NULL ? make_permit(s) : queue_push(c, s->value_); /* never waits */
    } else if (send_bounded(s, cx->waker, &rc) == WEFT_PENDING) {
        weft__coop_refund();
        return WEFT_PENDING;
    }
    s->phase_ = SEND_DONE;
    if (out != NULL)
        *(int *)out = rc;
    else if (rc == 0 && s->permit_ != NULL)
        weft_mpsc_permit_drop(s->permit_); /* an unwanted permit goes straight back */
    return WEFT_READY;
}

static void send_drop(weft_future_t *f)
{
    weft_mpsc_send_t *s = (weft_mpsc_send_t *)(void *)f;
    weft_mpsc_t *c = s->chan_;
    bool queued = s->phase_ == SEND_QUEUED;
    s->phase_ = SEND_DONE;
    if (!queued)
        return; /* completed or never polled: nothing held */
    /* Still queued: leave the queue. Served unseen: give the credit back
     * (serving the next). Closed out: nothing held. */
    weft__waitlock_lock(&c->wlock);
    weft_waker_t w = s->waker_;
    s->waker_.vtable = NULL;
    if (weft__dnode_linked(&s->node_)) {
        weft__dlist_remove(&s->node_);
        waiting_add(c, (size_t)-1);
        if (weft__dlist_empty(&c->waiters))
            queue_emptied_locked(c);
        weft__waitlock_unlock(&c->wlock);
    } else if (atomic_load_explicit(grant_word(s), memory_order_relaxed) == GRANT_CREDIT) { /* the lock orders it */
        WEFT_CHAOS();
        /* seq_cst: as every change of tail; under wlock, so serve here. */
        atomic_fetch_sub_explicit(&c->tail, T_CREDIT_ONE, memory_order_seq_cst);
        serve_and_unlock(c);
    } else {
        weft__waitlock_unlock(&c->wlock);
    }
    weft_waker_drop(&w);
}

static const weft_future_vtable_t send_vtable = {
    send_poll, send_drop, NULL, sizeof(weft_mpsc_send_t), sizeof(int), "weft_mpsc_send",
};
static const weft_future_vtable_t reserve_vtable = {
    send_poll, send_drop, NULL, sizeof(weft_mpsc_send_t), sizeof(int), "weft_mpsc_reserve",
};

static weft_mpsc_send_t send_new(weft_mpsc_t *c, const weft_future_vtable_t *vt, const void *value,
                                 weft_mpsc_permit_t *permit)
{
    /* node_ is initialized when the send queues (a future moves until it
     * is first polled); the other fields start at 0 / NULL. */
#ifdef WEFT__PAIR_STORES
    _Static_assert(GRANT_NONE == 0 && SEND_IDLE == 0, "a fresh send is zero past permit_");
    weft_mpsc_send_t s;
    unsigned char *p = (unsigned char *)&s;
    weft__put_pair(p, (uintptr_t)vt, (uintptr_t)c);
    weft__put_pair(p + 16, (uintptr_t)value, (uintptr_t)permit);
    weft__put_pair(p + 32, 0, 0); /* node_ */
    weft__put_pair(p + 48, 0, 0); /* waker_ */
    memset(p + 64, 0, 8);   /* grant_, phase_ */
    return s;
#else
    return (weft_mpsc_send_t){
        .future = { vt }, .chan_ = c, .value_ = value, .permit_ = permit, .grant_ = GRANT_NONE, .phase_ = SEND_IDLE,
    };
#endif
}

weft_mpsc_send_t weft_mpsc_send(weft_mpsc_tx_t *tx, const void *value)
{
    WEFT__REQUIRE("weft_mpsc_send", tx);
    WEFT__REQUIRE("weft_mpsc_send", value);
    return send_new(tx_chan(tx, "weft_mpsc_send"), &send_vtable, value, NULL);
}

weft_mpsc_reserve_t weft_mpsc_reserve(weft_mpsc_tx_t *tx, weft_mpsc_permit_t *permit)
{
    WEFT__REQUIRE("weft_mpsc_reserve", tx);
    WEFT__REQUIRE("weft_mpsc_reserve", permit);
    permit->chan_ = NULL;
    return send_new(tx_chan(tx, "weft_mpsc_reserve"), &reserve_vtable, NULL, permit);
}

int weft_mpsc_try_send(weft_mpsc_tx_t *tx, const void *value)
{
    WEFT__REQUIRE("weft_mpsc_try_send", tx);
    WEFT__REQUIRE("weft_mpsc_try_send", value);
    weft_mpsc_t *c = tx_chan(tx, "weft_mpsc_try_send");
    if (!c->bounded)
        return queue_push(c, value);
    uint64_t pos;
    bool wake_rx;
    switch (ring_claim(c, WANT_SLOT, false, &pos, &wake_rx)) {
    case CLAIM_OK:
        ring_put(c, pos, value, wake_rx);
        return 0;
    case CLAIM_CLOSED:
        return WEFT_EPIPE;
    case CLAIM_FULL:
    case CLAIM_WAITERS:
        break;
    }
    return WEFT_EAGAIN; /* full, or others wait for room: no barging */
}

/* ---- Permits ------------------------------------------------------------------- */

int weft_mpsc_permit_send(weft_mpsc_permit_t *permit, const void *value)
{
    WEFT__REQUIRE("weft_mpsc_permit_send", permit);
    WEFT__REQUIRE("weft_mpsc_permit_send", value);
    weft_mpsc_t *c = permit->chan_;
    if (c == NULL)
        weft_panic(WEFT_SITE, "weft_mpsc_permit_send on a permit already used or dropped");
    permit->chan_ = NULL;
    int rc = 0;
    uint64_t pos;
    bool wake_rx;
    if (!c->bounded)
        rc = queue_push(c, value);
    else if (credit_to_slot(c, &pos, &wake_rx))
        ring_put(c, pos, value, wake_rx);
    else
        rc = WEFT_EPIPE;
    sender_release(c);
    return rc;
}

void weft_mpsc_permit_drop(weft_mpsc_permit_t *permit)
{
    WEFT__REQUIRE("weft_mpsc_permit_drop", permit);
    weft_mpsc_t *c = permit->chan_;
    if (c == NULL)
        return;
    permit->chan_ = NULL;
    if (c->bounded)
        credit_return(c); /* serves the next waiting sender */
    sender_release(c);
}

/* ---- Sender handles -------------------------------------------------------------- */

void weft_mpsc_tx_clone(const weft_mpsc_tx_t *tx, weft_mpsc_tx_t *out)
{
    WEFT__REQUIRE("weft_mpsc_tx_clone", tx);
    WEFT__REQUIRE("weft_mpsc_tx_clone", out);
    weft_mpsc_t *c = tx_chan(tx, "weft_mpsc_tx_clone");
    sender_retain(c);
    out->chan_ = c;
}

void weft_mpsc_tx_drop(weft_mpsc_tx_t *tx)
{
    WEFT__REQUIRE("weft_mpsc_tx_drop", tx);
    weft_mpsc_t *c = tx->chan_;
    if (c == NULL)
        return;
    tx->chan_ = NULL;
    sender_release(c);
}

bool weft_mpsc_tx_is_closed(const weft_mpsc_tx_t *tx)
{
    WEFT__REQUIRE("weft_mpsc_tx_is_closed", tx);
    weft_mpsc_t *c = tx->chan_;
    if (c == NULL)
        return true;
    /* acquire: pairs with the close's seq_cst read-modify-write or store
     * (what the closer did before is visible to whoever sees the close).
     * Bounded: the bit the claims obey, so a true here and a send's
     * WEFT_EPIPE agree. */
    if (c->bounded)
        return (atomic_load_explicit(&c->tail, memory_order_acquire) & T_CLOSED) != 0;
    return atomic_load_explicit(&c->rx_closed, memory_order_acquire);
}

/* ---- Receiving --------------------------------------------------------------------- */

static weft_mpsc_t *rx_chan(const weft_mpsc_rx_t *rx, const char *what)
{
    if (rx->chan_ == NULL)
        weft_panic(WEFT_SITE, "%s on a dropped receiver", what);
    return rx->chan_;
}

/* A receive found nothing: parks, or (READY) takes what came meanwhile or
 * learns the channel is finished (*n 0). */
static weft_poll_t recv_wait(weft_mpsc_recv_t *r, weft_context_t *cx, size_t *n)
{
    weft_mpsc_t *c = r->chan_;
    rx_wait_t wait = rx_wait(c, cx->waker, &r->registered_);
    if (wait == WAIT_PARKED)
        return WEFT_PENDING;
    /* Something came, the channel closed, or a sender that claimed the
     * head position before our flag is still copying its value in: it
     * will not wake us, so wait for it, spinning briefly, then giving up
     * the CPU once (it may be a preempted thread), then yielding the
     * task. */
    for (unsigned spins = 0; wait == WAIT_RETRY && (*n = rx_take(c, r->dst_, r->max_)) == 0 && !rx_finished(c);
         spins++) {
        if (spins == RX_INFLIGHT_SPINS) {
            sched_yield();
        } else if (spins > RX_INFLIGHT_SPINS) {
            weft_waker_wake_by_ref(cx->waker);
            return WEFT_PENDING;
        }
        weft__cpu_pause();
    }
    return WEFT_READY;
}

/* Polls one receive of up to r->max_ values. READY with *n the count (0:
 * closed and drained). */
static inline weft_poll_t recv_step(weft_mpsc_recv_t *r, weft_context_t *cx, size_t *n)
{
    weft_mpsc_t *c = r->chan_;
    if (r->done_)
        weft_panic(WEFT_SITE, "weft_mpsc_recv polled after it completed");
    if (!weft_coop_proceed(cx))
        return WEFT_PENDING;
    *n = rx_take(c, r->dst_, r->max_);
    if (*n == 0 && recv_wait(r, cx, n) == WEFT_PENDING) {
        weft__coop_refund();
        return WEFT_PENDING;
    }
    if (r->registered_)
        rx_unpark(c, &r->registered_);
    r->done_ = true;
    return WEFT_READY;
}

static weft_poll_t recv_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    size_t n;
    if (recv_step((weft_mpsc_recv_t *)(void *)f, cx, &n) == WEFT_PENDING)
        return WEFT_PENDING;
    if (out != NULL)
        *(int *)out = n > 0 ? 0 : WEFT_EPIPE;
    return WEFT_READY;
}

static weft_poll_t recv_many_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    size_t n;
    if (recv_step((weft_mpsc_recv_t *)(void *)f, cx, &n) == WEFT_PENDING)
        return WEFT_PENDING;
    if (out != NULL)
        *(size_t *)out = n;
    return WEFT_READY;
}

/* A dropped receive took nothing that it did not hand over: values stay
 * queued; only its waker is taken back. */
static void recv_drop(weft_future_t *f)
{
    weft_mpsc_recv_t *r = (weft_mpsc_recv_t *)(void *)f;
    rx_unpark(r->chan_, &r->registered_);
}

static const weft_future_vtable_t recv_vtable = {
    recv_poll, recv_drop, NULL, sizeof(weft_mpsc_recv_t), sizeof(int), "weft_mpsc_recv",
};
static const weft_future_vtable_t recv_many_vtable = {
    recv_many_poll, recv_drop, NULL, sizeof(weft_mpsc_recv_t), sizeof(size_t), "weft_mpsc_recv_many",
};

static weft_mpsc_recv_t recv_new(weft_mpsc_t *c, const weft_future_vtable_t *vt, void *dst, size_t max)
{
#ifdef WEFT__PAIR_STORES
    weft_mpsc_recv_t r;
    unsigned char *p = (unsigned char *)&r;
    weft__put_pair(p, (uintptr_t)vt, (uintptr_t)c);
    weft__put_pair(p + 16, (uintptr_t)dst, max);
    memset(p + 32, 0, 8); /* registered_, done_ */
    return r;
#else
    return (weft_mpsc_recv_t){ { vt }, c, dst, max, false, false };
#endif
}

weft_mpsc_recv_t weft_mpsc_recv(weft_mpsc_rx_t *rx, void *dst)
{
    WEFT__REQUIRE("weft_mpsc_recv", rx);
    WEFT__REQUIRE("weft_mpsc_recv", dst);
    return recv_new(rx_chan(rx, "weft_mpsc_recv"), &recv_vtable, dst, 1);
}

weft_mpsc_recv_t weft_mpsc_recv_many(weft_mpsc_rx_t *rx, void *buf, size_t max)
{
    WEFT__REQUIRE("weft_mpsc_recv_many", rx);
    WEFT__REQUIRE("weft_mpsc_recv_many", buf);
    if (max == 0)
        weft_panic(WEFT_SITE, "weft_mpsc_recv_many: max is 0");
    return recv_new(rx_chan(rx, "weft_mpsc_recv_many"), &recv_many_vtable, buf, max);
}

int weft_mpsc_try_recv(weft_mpsc_rx_t *rx, void *dst)
{
    WEFT__REQUIRE("weft_mpsc_try_recv", rx);
    WEFT__REQUIRE("weft_mpsc_try_recv", dst);
    weft_mpsc_t *c = rx_chan(rx, "weft_mpsc_try_recv");
    size_t n = rx_take(c, dst, 1);
    rx_serve_pending(c);
    if (n == 1)
        return 0;
    return rx_finished(c) ? WEFT_EPIPE : WEFT_EAGAIN;
}

/* Closes the bounded ring: claims stop; queued sends are closed out. */
static void ring_close(weft_mpsc_t *c)
{
    weft__wake_list_t wl;
    weft__wake_list_init(&wl);
    weft__waitlock_lock(&c->wlock);
    /* seq_cst: as every change of tail. Under wlock, so no send queues
     * after it (send_queue claims, and sees CLOSED, under the lock). */
    atomic_fetch_or_explicit(&c->tail, T_CLOSED, memory_order_seq_cst);
    weft__dnode_t *n;
    for (;;) {
        while ((n = weft__dlist_first(&c->waiters)) != NULL && !weft__wake_list_full(&wl)) {
            weft_mpsc_send_t *s = node_send(n);
            weft__dlist_remove(n);
            waiting_add(c, (size_t)-1);
            weft__waiter_take(&s->waker_, &wl);
            /* release, and the last access to *s: as in serve_locked. */
            atomic_store_explicit(grant_word(s), GRANT_CLOSED, memory_order_release);
        }
        if (n == NULL)
            break;
        weft__waitlock_unlock(&c->wlock);
        weft__wake_list_wake(&wl);
        weft__waitlock_lock(&c->wlock);
    }
    queue_emptied_locked(c);
    weft__waitlock_unlock(&c->wlock);
    weft__wake_list_wake(&wl);
}

void weft_mpsc_close(weft_mpsc_rx_t *rx)
{
    WEFT__REQUIRE("weft_mpsc_close", rx);
    weft_mpsc_t *c = rx_chan(rx, "weft_mpsc_close");
    if (c->bounded) {
        ring_close(c); /* CLOSED in tail: what claims, the receiver and tx_is_closed read */
    } else {
        weft__waitlock_lock(&c->lock);
        /* seq_cst: changed under the lock for queue_push and rx_wait; the
         * atomic is for weft_mpsc_tx_is_closed. */
        atomic_store_explicit(&c->rx_closed, true, memory_order_seq_cst);
        weft__waitlock_unlock(&c->lock);
    }
    rx_wake_parked(c); /* a receive parked on another thread sees the close */
}

void weft_mpsc_rx_drop(weft_mpsc_rx_t *rx)
{
    WEFT__REQUIRE("weft_mpsc_rx_drop", rx);
    weft_mpsc_t *c = rx->chan_;
    if (c == NULL)
        return;
    weft_mpsc_close(rx);
    rx->chan_ = NULL;
    drain_values(c); /* what is published now; chan_release drains the rest */
    chan_release(c);
}

#ifdef WEFT_TEST_HOOKS
/* Tests: moves a new, empty bounded channel's positions to the start of
 * lap `lap` (modulo the laps there are: (uint64_t)-1 is the last one), to
 * run it across the point where positions wrap. */
void weft__mpsc_test_start_lap(weft_mpsc_rx_t *rx, uint64_t lap);
void weft__mpsc_test_start_lap(weft_mpsc_rx_t *rx, uint64_t lap)
{
    weft_mpsc_t *c = rx->chan_;
    uint64_t p = (lap * (c->idx_mask + 1)) & POS_MASK;
    atomic_store(&c->tail, t_with_pos(0, p));
    c->head = p;
    c->head_slot = 0;
    for (size_t i = 0; i < c->cap; i++)
        atomic_store(slot_seq(slot_at(c, i)), SEQ_FREE(p | i));
}
#endif

/* ---- Plain threads -------------------------------------------------------------------
 * As weft_mutex_blocking_lock (sync/mutex.c): the waker unparks a parker on
 * this stack. It counts its handles (clones not yet woken or dropped), and
 * the call returns only when none is left: a sender may have taken the
 * receiver's waker out just as the receive found its value without
 * parking, and still be about to wake it. */
typedef struct {
    weft__parker_t parker;
    _Atomic unsigned handles;
} blocker_t;

static const weft_waker_vtable_t blocker_waker_vtable;
static weft_waker_t blocker_clone(const void *data)
{
    blocker_t *b = (blocker_t *)(uintptr_t)data;
    /* relaxed: the caller holds a handle (or is the owner), so the count
     * cannot reach 0 meanwhile. */
    atomic_fetch_add_explicit(&b->handles, 1, memory_order_relaxed);
    return (weft_waker_t){ &blocker_waker_vtable, data };
}
static void blocker_wake_by_ref(const void *data)
{
    (void)weft__unpark(&((blocker_t *)(uintptr_t)data)->parker);
}
static void blocker_drop(const void *data)
{
    /* release, and the last access to *b: pairs with the acquire load in
     * block_on_here, which may then return and end b's life. */
    atomic_fetch_sub_explicit(&((blocker_t *)(uintptr_t)data)->handles, 1, memory_order_release);
}
static void blocker_wake(const void *data)
{
    blocker_wake_by_ref(data);
    blocker_drop(data);
}
static const weft_waker_vtable_t blocker_waker_vtable = { blocker_clone, blocker_wake, blocker_wake_by_ref,
                                                          blocker_drop };

/* Polls f to completion on this thread, parking while it is pending. */
static void block_on_here(weft_future_t *f, void *out)
{
    blocker_t b;
    weft__parker_init(&b.parker);
    atomic_init(&b.handles, 0);
    weft_waker_t w = { &blocker_waker_vtable, &b }; /* borrowed: not counted */
    weft_context_t cx = { &w };
    int budget = weft__tls.budget;
    weft__tls.budget = -1; /* not a task's poll: no coop budget */
    while (weft_future_poll(f, &cx, out) == WEFT_PENDING)
        weft__park(&b.parker);
    weft__tls.budget = budget;
    weft_future_drop(f);
    /* acquire: pairs with blocker_drop's release. */
    while (atomic_load_explicit(&b.handles, memory_order_acquire) != 0)
        sched_yield(); /* a waker taken out by a sender, about to be woken */
}

int weft_mpsc_blocking_send(weft_mpsc_tx_t *tx, const void *value)
{
    WEFT__REQUIRE("weft_mpsc_blocking_send", tx);
    WEFT__REQUIRE("weft_mpsc_blocking_send", value);
    weft__assert_not_in_runtime("weft_mpsc_blocking_send", WEFT_SITE);
    weft_mpsc_send_t s = send_new(tx_chan(tx, "weft_mpsc_blocking_send"), &send_vtable, value, NULL);
    int rc = 0;
    block_on_here(WEFT_FUTURE(&s), &rc);
    return rc;
}

int weft_mpsc_blocking_recv(weft_mpsc_rx_t *rx, void *dst)
{
    WEFT__REQUIRE("weft_mpsc_blocking_recv", rx);
    WEFT__REQUIRE("weft_mpsc_blocking_recv", dst);
    weft__assert_not_in_runtime("weft_mpsc_blocking_recv", WEFT_SITE);
    weft_mpsc_recv_t r = weft_mpsc_recv(rx, dst);
    int rc = 0;
    block_on_here(WEFT_FUTURE(&r), &rc);
    rx_serve_pending(rx->chan_);
    return rc;
}
