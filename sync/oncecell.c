/* sync/oncecell.c - the once cell (weft/oncecell.h), after Tokio's
 * OnceCell: a state word, the value's room, and a semaphore with one
 * permit that is the right to initialise.
 *
 * Algorithm:
 *  - get: an acquire load of state_; SET means the value is there.
 *  - set: try_acquire the permit (no wait). Got it: copy the value in,
 *    store SET (release), close the semaphore; the permit is never given
 *    back. Closed: already set (WEFT_EBUSY). Busy: an initialiser holds
 *    it (WEFT_EAGAIN).
 *  - get_or_init: SET -> done. Else acquire the permit (FIFO behind the
 *    other waiters). Closed -> the value was set meanwhile: done. Got
 *    it -> poll the caller's init future with the value's room as its
 *    output until it completes, then store SET and close the semaphore,
 *    which completes every queued waiter with WEFT_EPIPE: they read the
 *    value. Every exit drops the init future once.
 *  - a get_or_init dropped while it initialises drops its init future and
 *    releases the permit: the semaphore hands it to the next waiter, which
 *    starts its own init future. The half-written room is never read: a
 *    future writes its output only when it completes, and state_ stays
 *    EMPTY.
 * Why the semaphore and not a notify: the permit is a token that exactly
 * one holder has, which the semaphore's cancellation rules already pass
 * on when its holder is dropped; FIFO order and no lost wake-up come with
 * it.
 *
 * Ordering: the initialiser's writes to the room happen before its
 * release store of SET (pairs with the acquire loads in weft_oncecell_get
 * and get_or_init). A waiter completed by the close learns of it either
 * under the semaphore's lock or from a relaxed load in its fast path, so
 * it confirms with weft_semaphore_is_closed (an acquire load that pairs
 * with the close's release), which orders the SET store before it.
 *
 * Progress: get is wait-free; set is a CAS loop plus the close; waiting
 * is the semaphore's (blocking, by returning WEFT_PENDING). Context: any
 * thread for get and set; get_or_init futures are polled by tasks of any
 * runtime or block_on roots; init and destroy with nothing else in
 * progress. Weakness: a stuck initialiser holds every waiter up (there is
 * no timeout of its own: wrap the get_or_init in weft_timeout, whose drop
 * passes the right on).
 */
#include <string.h>

#include "../runtime/context.h"
#include "../runtime/internal.h"
#include "../runtime/nonnull.h"
#include "weft/oncecell.h"

#define ONCECELL_MAGIC 0x4f4e4345u /* "ONCE" */

/* The cell's state (state_). */
enum cell_state {
    CELL_EMPTY = 0,
    CELL_SET,
};

/* The owner's view of a get_or_init future (phase_). */
enum goi_phase {
    GOI_IDLE = 0,  /* not polled */
    GOI_ACQUIRING, /* waiting for the right to initialise (acq_ live) */
    GOI_INIT,      /* holds the permit and polls init_ */
    GOI_DONE,      /* completed */
};

_Static_assert(sizeof(_Atomic unsigned) == sizeof(unsigned) && _Alignof(_Atomic unsigned) == _Alignof(unsigned),
               "weft_oncecell_t.state_ must hold an _Atomic unsigned");

static inline _Atomic unsigned *state_word(const weft_oncecell_t *c)
{
    return (_Atomic unsigned *)(void *)&((weft_oncecell_t *)c)->state_;
}

static void check_live(const weft_oncecell_t *c, const char *fn)
{
    if (c->magic_ != ONCECELL_MAGIC)
        weft_panic(WEFT_SITE, "%s: the cell is not initialised (or was destroyed)", fn);
}

static bool is_set(const weft_oncecell_t *c)
{
    /* acquire: pairs with the release store in publish: the value's bytes
     * are visible. */
    return atomic_load_explicit(state_word(c), memory_order_acquire) == CELL_SET;
}

/* With the permit held and the room written: publishes the value and
 * completes every waiter (the permit is kept for good). */
static void publish(weft_oncecell_t *c)
{
    WEFT_CHAOS();
    /* release: publishes the room's bytes to is_set's acquire load. */
    atomic_store_explicit(state_word(c), CELL_SET, memory_order_release);
    weft_semaphore_close(&c->sem_);
}

int weft_oncecell_init(weft_oncecell_t *cell, size_t size, weft_oncecell_drop_cb drop)
{
    WEFT__REQUIRE("weft_oncecell_init", cell);
    if (size == 0)
        return WEFT_EINVAL;
    void *room = weft__alloc(size);
    if (room == NULL)
        return WEFT_ENOMEM;
    if (weft_semaphore_init(&cell->sem_, 1) != 0)
        weft_panic(WEFT_SITE, "weft_oncecell_init: semaphore init failed"); /* 1 permit cannot fail */
    atomic_init(state_word(cell), CELL_EMPTY);
    cell->size_ = size;
    cell->value_ = room;
    cell->drop_ = drop;
    cell->magic_ = ONCECELL_MAGIC;
    return 0;
}

void weft_oncecell_destroy(weft_oncecell_t *cell)
{
    WEFT__REQUIRE("weft_oncecell_destroy", cell);
    check_live(cell, "weft_oncecell_destroy");
    bool set = is_set(cell);
    /* Empty with no permit available: a get_or_init holds it (initialising)
     * or waits behind it. Set: the semaphore was closed, so nobody waits. */
    if (!set && weft_semaphore_available_permits(&cell->sem_) == 0)
        weft_panic(WEFT_SITE, "weft_oncecell_destroy: a get_or_init still initialises or waits on the cell "
                              "(let it finish or drop it first)");
    weft_semaphore_destroy(&cell->sem_);
    if (set && cell->drop_ != NULL)
        cell->drop_(cell->value_);
    weft__free(cell->value_, cell->size_);
    cell->value_ = NULL;
    cell->magic_ = 0;
}

void *weft_oncecell_get(const weft_oncecell_t *cell)
{
    WEFT__REQUIRE("weft_oncecell_get", cell);
    check_live(cell, "weft_oncecell_get");
    return is_set(cell) ? cell->value_ : NULL;
}

bool weft_oncecell_is_set(const weft_oncecell_t *cell)
{
    WEFT__REQUIRE("weft_oncecell_is_set", cell);
    check_live(cell, "weft_oncecell_is_set");
    return is_set(cell);
}

int weft_oncecell_set(weft_oncecell_t *cell, const void *value)
{
    WEFT__REQUIRE("weft_oncecell_set", cell);
    WEFT__REQUIRE("weft_oncecell_set", value);
    check_live(cell, "weft_oncecell_set");
    switch (weft_semaphore_try_acquire(&cell->sem_)) {
    case 0:
        break;
    case WEFT_EPIPE:
        return WEFT_EBUSY; /* closed: set */
    default:
        return WEFT_EAGAIN; /* an initialiser holds the permit */
    }
    memcpy(cell->value_, value, cell->size_);
    publish(cell);
    return 0;
}

/* ---- get_or_init ------------------------------------------------------------ */

static void drop_init(weft_oncecell_get_or_init_t *g)
{
    if (g->init_ != NULL) {
        weft_future_t *init = g->init_;
        g->init_ = NULL;
        weft_future_drop(init);
    }
}

static weft_poll_t goi_poll(weft_future_t *f, weft_context_t *cx, void *out)
{
    weft_oncecell_get_or_init_t *g = (weft_oncecell_get_or_init_t *)(void *)f;
    weft_oncecell_t *c = g->cell_;
    int rc = 0;
    switch (g->phase_) {
    case GOI_IDLE:
        if (is_set(c)) {
            if (!weft_coop_proceed(cx))
                return WEFT_PENDING;
            goto done;
        }
        g->acq_ = weft_semaphore_acquire(&c->sem_);
        g->phase_ = GOI_ACQUIRING;
        WEFT_FALLTHROUGH;
    case GOI_ACQUIRING: /* the acquire spends (and refunds) the budget */
        if (weft_future_poll(WEFT_FUTURE(&g->acq_), cx, &rc) == WEFT_PENDING)
            return WEFT_PENDING;
        weft_future_drop(WEFT_FUTURE(&g->acq_)); /* completed: holds nothing */
        if (rc == WEFT_EPIPE) {
            /* Closed: set by someone else. acquire (is_closed): see the
             * design block. */
            if (!weft_semaphore_is_closed(&c->sem_) || !is_set(c))
                weft_panic(WEFT_SITE, "weft_oncecell_get_or_init: the cell's semaphore closed while empty");
            goto done;
        }
        g->phase_ = GOI_INIT; /* the permit is ours: this future initialises */
        WEFT_FALLTHROUGH;
    case GOI_INIT:
        if (weft_future_poll(g->init_, cx, c->value_) == WEFT_PENDING)
            return WEFT_PENDING;
        drop_init(g);
        publish(c);
        goto done;
    case GOI_DONE:
    default:
        weft_panic(WEFT_SITE, "weft_oncecell_get_or_init polled after it completed");
    }
done:
    drop_init(g);
    g->phase_ = GOI_DONE;
    if (out != NULL)
        *(void **)out = c->value_;
    return WEFT_READY;
}

static void goi_drop(weft_future_t *f)
{
    weft_oncecell_get_or_init_t *g = (weft_oncecell_get_or_init_t *)(void *)f;
    switch (g->phase_) {
    case GOI_ACQUIRING:
        weft_future_drop(WEFT_FUTURE(&g->acq_)); /* leaves the queue, passes on a permit it was given */
        break;
    case GOI_INIT:
        /* Init first (it may hold things of its own), then the right to
         * initialise goes to the next waiter. */
        drop_init(g);
        WEFT_CHAOS();
        (void)weft_semaphore_release(&g->cell_->sem_, 1);
        break;
    default:
        break;
    }
    g->phase_ = GOI_DONE;
    drop_init(g);
}

static const weft_future_vtable_t goi_vtable = {
    goi_poll, goi_drop, NULL, sizeof(weft_oncecell_get_or_init_t), sizeof(void *), "weft_oncecell_get_or_init",
};

weft_oncecell_get_or_init_t weft_oncecell_get_or_init(weft_oncecell_t *cell, weft_future_t *init)
{
    WEFT__REQUIRE("weft_oncecell_get_or_init", cell);
    WEFT__REQUIRE("weft_oncecell_get_or_init", init);
    check_live(cell, "weft_oncecell_get_or_init");
    if (init->vtable->out_size != cell->size_)
        weft_panic(WEFT_SITE,
                   "weft_oncecell_get_or_init: the init future's output is %zu bytes, the cell's value %zu",
                   init->vtable->out_size, cell->size_);
    weft_oncecell_get_or_init_t g;
    memset(&g, 0, sizeof g);
    g.future.vtable = &goi_vtable;
    g.cell_ = cell;
    g.init_ = init;
    g.phase_ = GOI_IDLE;
    return g;
}
