/* weft/oncecell.h - a cell written at most once, with an async
 * initialisation that only one task runs at a time (Tokio's OnceCell).
 *
 * A weft_oncecell_t holds one value of a size fixed at weft_oncecell_init
 * (copied in by size; the cell allocates the room for it). Once set, it
 * stays set until weft_oncecell_destroy, which passes it to the optional
 * drop callback; weft_oncecell_get returns a pointer to it from then on.
 *
 * weft_oncecell_get_or_init(cell, init) is a future whose output is that
 * pointer. `init` is a future of the caller's whose output is the value:
 * of all the get_or_init futures racing on an empty cell, one at a time
 * wins the right to initialise (a semaphore with one permit, as Tokio
 * does) and polls ITS init future, which writes its output straight into
 * the cell; the others wait, and their init futures are never polled.
 * When the winner is dropped before its init future completed (its task
 * was aborted, a timeout fired), the right passes to the next waiter,
 * which polls its own init future from the start. docs/barrier-and-oncecell.md
 * is the guide.
 *
 *     self->mk = make_config(path);                 // a future, output config_t
 *     WEFT_AWAIT(&self->get, weft_oncecell_get_or_init(&cell, WEFT_FUTURE(&self->mk)), &self->cfg);
 *     // self->cfg: const config_t *, the same for every task
 */
#ifndef WEFT_ONCECELL_H
#define WEFT_ONCECELL_H

#include "future.h"
#include "semaphore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called once with the stored value by weft_oncecell_destroy, to release
 * what the value owns (not the value's storage: the cell frees that). */
typedef void (*weft_oncecell_drop_cb)(void *value);

/* The fields are private. state_ is plain storage that sync/oncecell.c
 * only accesses as an _Atomic unsigned (same size and alignment, checked
 * there), so the header compiles as C++. */
typedef struct weft_oncecell_s {
    unsigned state_;              /* _Atomic: empty or set */
    unsigned magic_;              /* set while initialised: misuse checks */
    size_t size_;                 /* the value's size */
    void *value_;                 /* size_ bytes, allocated by init */
    weft_oncecell_drop_cb drop_;  /* or NULL */
    weft_semaphore_t sem_;        /* 1 permit: the right to initialise; closed once set */
} weft_oncecell_t;

/* The future of weft_oncecell_get_or_init. Output `void *`: the cell's
 * value (never NULL). Fields private; it must not move after its first
 * poll, and neither may the init future it was given. */
typedef struct weft_oncecell_get_or_init_s {
    weft_future_t future;
    weft_oncecell_t *cell_;
    weft_future_t *init_;          /* the caller's init future; NULL once dropped */
    weft_semaphore_acquire_t acq_; /* the wait for the right to initialise */
    unsigned char phase_;          /* not polled, acquiring, initialising, done */
} weft_oncecell_get_or_init_t;

/* Initializes *cell, empty, for a value of `size` bytes (size >= 1), and
 * allocates that room. drop (or NULL) is called with the value at
 * destroy if the cell was set. Returns 0, WEFT_EINVAL (size 0) or
 * WEFT_ENOMEM; on error *cell is not initialised and nothing is held.
 * Ownership: the caller owns the storage of *cell and calls
 * weft_oncecell_destroy, which frees the value's room. Context: any
 * thread, before any other use of cell. */
WEFT_API WEFT_NODISCARD int weft_oncecell_init(weft_oncecell_t *cell, size_t size, weft_oncecell_drop_cb drop);

/* Ends the cell's life: if it was set, calls the drop callback (if any)
 * with the value, then frees the value's room. Aborts, naming the call,
 * when a get_or_init future still waits or still initialises on it, or
 * when cell is not initialised. No call may use the cell concurrently or
 * afterwards, and no pointer from weft_oncecell_get may be used after it.
 * Context: any thread; the callback runs on the caller's thread. */
WEFT_API void weft_oncecell_destroy(weft_oncecell_t *cell);

/* The value, or NULL when the cell is not set (yet). A non-NULL pointer
 * stays valid, and the value unchanged, until weft_oncecell_destroy; what
 * the initialiser wrote is visible through it. Context: any thread; one
 * atomic load, never blocks. */
WEFT_API void *weft_oncecell_get(const weft_oncecell_t *cell);

/* Sets the value now, copying cell's size bytes from *value (which stays
 * the caller's). Returns 0; WEFT_EBUSY when the cell is already set (it
 * keeps its value, and *value is not taken: what it owns stays the
 * caller's); WEFT_EAGAIN when a get_or_init is initialising the cell right
 * now (it may still fail and leave the cell empty: try again, or use
 * get_or_init). On success every waiting get_or_init completes with the
 * value and their init futures are never polled. Context: any thread,
 * plain threads included; never blocks (it takes the right to initialise
 * with a try_acquire). */
WEFT_API WEFT_NODISCARD int weft_oncecell_set(weft_oncecell_t *cell, const void *value);

/* Whether the cell is set (weft_oncecell_get(cell) != NULL). */
WEFT_API bool weft_oncecell_is_set(const weft_oncecell_t *cell);

/* A future that completes with a pointer to the cell's value, initialising
 * it with `init` if this future wins the right to. Its output is `void *`.
 *  - init: a future of the caller's (not polled yet) whose output is the
 *    value: its vtable's out_size must equal the cell's size (it aborts
 *    here otherwise, naming the call). It is polled only by this future,
 *    only while it holds the right to initialise, with the cell's room as
 *    its output; it must not move from now on.
 *  - Ownership: from this call on, the get_or_init future owns `init` and
 *    drops it exactly once (its storage stays the caller's and must
 *    outlive the get_or_init future): as soon as it is no longer needed
 *    (the cell was set by someone else, or init completed and the value
 *    is stored), or else when the get_or_init future itself is dropped.
 *    Dropped while init runs, the get_or_init future drops init and hands
 *    the right to initialise to the next waiter; the cell stays empty.
 *    The caller never drops init itself.
 * Only one init future runs at a time across all the cell's waiters; the
 * waiting ones wait in FIFO order. Spends the cooperative budget as the
 * semaphore acquire does while it waits, plus whatever init spends.
 * Context: construct anywhere; poll from a task of any runtime or a
 * block_on root; never blocks the thread. cell must outlive the future. */
WEFT_API WEFT_NODISCARD weft_oncecell_get_or_init_t weft_oncecell_get_or_init(weft_oncecell_t *cell,
                                                                             weft_future_t *init);

#ifdef __cplusplus
}
#endif

#endif
