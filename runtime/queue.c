/* runtime/queue.c - a worker's bounded run queue (single producer, multiple
 * consumers), with steal-half.
 *
 * Algorithm (the design of Tokio's local queue, itself a variant of the
 * Chase-Lev deque where the owner also takes from the head so the queue is
 * FIFO):
 *   - buf is a ring of WEFT_QUEUE_CAP slots; tail is written by the owner
 *     only. head packs two 32-bit indices: `real`, the next task to take,
 *     and `steal`, which lags behind `real` while a stealer copies tasks out.
 *     Slots in [steal, tail) are occupied: the owner never writes them.
 *   - The owner pushes at tail (plain slot store, release tail store) and
 *     pops by CASing real forward.
 *   - A stealer claims n = ceil(len/2) tasks by CASing real forward while
 *     leaving steal behind, copies the slots into its own queue, then CASes
 *     steal up to real. Only one steal may be in progress per queue (a
 *     second stealer sees steal != real and gives up).
 *   - When the queue is full, the owner moves half of it plus the new task
 *     to the inject queue in one batch (an array: inject.c's blocks).
 * Progress: push is wait-free unless the queue overflows; pop and steal are
 * lock-free. ABA: indices are 32-bit, so a stealer preempted between its load
 * and CAS would need the owner to cycle 2^32 tasks to be fooled.
 * Weakness: while a steal is in progress the owner cannot spill half, so a
 * push to a full queue goes to the inject queue one task at a time.
 */
#include "scheduler.h"

static inline uint32_t h_steal(uint64_t h) { return (uint32_t)(h >> 32); }
static inline uint32_t h_real(uint64_t h) { return (uint32_t)h; }
static inline uint64_t h_pack(uint32_t steal, uint32_t real) { return ((uint64_t)steal << 32) | real; }

void weft__queue_init(weft__queue_t *q)
{
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    for (unsigned i = 0; i < WEFT_QUEUE_CAP; i++)
        atomic_init(&q->buf[i], NULL);
}

uint32_t weft__queue_len(const weft__queue_t *q)
{
    uint64_t head = atomic_load_explicit(&((weft__queue_t *)q)->head, memory_order_acquire);
    uint32_t tail = atomic_load_explicit(&((weft__queue_t *)q)->tail, memory_order_acquire);
    /* head is read first, so tail >= real: n cannot wrap, but pushes and
     * pops between the two loads can make it overshoot. */
    uint32_t n = tail - h_real(head);
    return n > WEFT_QUEUE_CAP ? WEFT_QUEUE_CAP : n;
}

/* Moves the CAP/2 oldest tasks plus t to the inject queue. Returns false if a
 * stealer moved head first (the caller retries the push). */
static bool push_overflow(weft__queue_t *q, weft_task_t *t, uint32_t real, weft__inject_t *inject)
{
    const uint32_t n = WEFT_QUEUE_CAP / 2;
    uint64_t expect = h_pack(real, real);
    /* relaxed: the slots we are about to read were written by this thread;
     * a successful CAS means no stealer claimed them. */
    if (!atomic_compare_exchange_strong_explicit(&q->head, &expect, h_pack(real + n, real + n),
                                                 memory_order_relaxed, memory_order_relaxed))
        return false;
    weft_task_t *batch[WEFT__INJECT_BLOCK_CAP];
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&q->buf[(real + i) & WEFT_QUEUE_MASK], memory_order_relaxed);
    batch[n] = t;
    if (!weft__inject_push_array(inject, batch, n + 1)) {
        for (uint32_t i = 0; i <= n; i++)
            weft__task_drop_queued(batch[i], WEFT__ENTRY_MAYBE_YIELD);
    }
    return true;
}

void weft__queue_push_back_spmc(weft__queue_t *q, weft_task_t *t, weft__inject_t *overflow)
{
    for (;;) {
        /* acquire: pairs with the stealer's release CAS that ends a steal
         * (queue_steal_into), so slots it copied out are free to reuse. */
        uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
        uint32_t steal = h_steal(head), real = h_real(head);
        uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed); /* ours */
        if (tail - steal < WEFT_QUEUE_CAP) {
            atomic_store_explicit(&q->buf[tail & WEFT_QUEUE_MASK], t, memory_order_relaxed);
            WEFT_CHAOS();
            /* release: publishes the slot to stealers (acquire tail load in
             * weft__queue_steal_into). */
            atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
            return;
        }
        if (steal != real) {
            /* A stealer is freeing slots right now: do not wait for it. */
            t->next = NULL;
            if (!weft__inject_push_batch(overflow, t, t, 1))
                weft__task_drop_queued(t, WEFT__ENTRY_MAYBE_YIELD);
            return;
        }
        if (push_overflow(q, t, real, overflow))
            return;
    }
}

weft_task_t *weft__queue_pop_spmc(weft__queue_t *q)
{
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        uint32_t steal = h_steal(head), real = h_real(head);
        uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed); /* ours */
        if (real == tail)
            return NULL;
        uint64_t next = steal == real ? h_pack(real + 1, real + 1) : h_pack(steal, real + 1);
        WEFT_CHAOS();
        /* acq_rel: acquire orders our slot read after any stealer's claim we
         * raced with; release keeps the slot read before the slot's reuse. */
        if (atomic_compare_exchange_weak_explicit(&q->head, &head, next, memory_order_acq_rel,
                                                  memory_order_acquire))
            return atomic_load_explicit(&q->buf[real & WEFT_QUEUE_MASK], memory_order_relaxed);
    }
}

weft_task_t *weft__queue_steal_into(weft__queue_t *src, weft__queue_t *dst)
{
    uint32_t dst_tail = atomic_load_explicit(&dst->tail, memory_order_relaxed); /* ours */
    /* dst is empty to its owner (real == tail), but a thief of dst may still
     * be copying out the slots it claimed, [steal, real): the slots we fill
     * from dst_tail on must not wrap onto those. We fill at most CAP/2, so
     * give up while more than CAP/2 of dst's slots are still being read
     * (Tokio's check). acquire: pairs with that thief's release CAS ending
     * its steal, so its slot reads happen before we overwrite them. */
    uint64_t dst_head = atomic_load_explicit(&dst->head, memory_order_acquire);
    if (dst_tail - h_steal(dst_head) > WEFT_QUEUE_CAP / 2)
        return NULL;
    uint64_t prev = atomic_load_explicit(&src->head, memory_order_acquire);
    uint64_t next;
    uint32_t n;
    for (;;) {
        uint32_t steal = h_steal(prev), real = h_real(prev);
        if (steal != real)
            return NULL; /* another stealer is at work */
        /* acquire: pairs with the owner's release tail store: the slots
         * below tail are written. */
        uint32_t src_tail = atomic_load_explicit(&src->tail, memory_order_acquire);
        n = src_tail - real;
        if (n > WEFT_QUEUE_CAP)
            return NULL; /* stale head against a newer tail: retry later */
        n -= n / 2;
        if (n == 0)
            return NULL;
        next = h_pack(steal, real + n);
        WEFT_CHAOS();
        /* acq_rel: claims [real, real+n); acquire for the slot reads. */
        if (atomic_compare_exchange_weak_explicit(&src->head, &prev, next, memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    uint32_t first = h_steal(next);
    for (uint32_t i = 0; i < n; i++) {
        weft_task_t *t = atomic_load_explicit(&src->buf[(first + i) & WEFT_QUEUE_MASK], memory_order_relaxed);
        atomic_store_explicit(&dst->buf[(dst_tail + i) & WEFT_QUEUE_MASK], t, memory_order_relaxed);
    }
    WEFT_CHAOS();
    /* End the steal: steal catches up with real (which the owner may have
     * moved meanwhile). release: our slot reads happen before the owner
     * reuses the slots (its acquire head load in push_back). */
    prev = next;
    for (;;) {
        uint32_t real = h_real(prev);
        if (atomic_compare_exchange_weak_explicit(&src->head, &prev, h_pack(real, real), memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    n--;
    weft_task_t *ret = atomic_load_explicit(&dst->buf[(dst_tail + n) & WEFT_QUEUE_MASK], memory_order_relaxed);
    if (n > 0) {
        /* release: publishes the copied slots to thieves of dst. */
        atomic_store_explicit(&dst->tail, dst_tail + n, memory_order_release);
    }
    return ret;
}
