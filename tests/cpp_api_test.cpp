// tests/cpp_api_test.cpp - weft's public headers and macros from C++: the
// umbrella header under extern "C", an async function written with the
// WEFT_ASYNC family, the spawn and option macros (compiled, not run), and
// hand-polls of async functions with a no-op waker (one with braced
// initializers in its await and return, and an owned child).
#include <weft/weft.h>

#include <cstdio>

struct twice_t {
    WEFT_FRAME;
    int n;
    weft_yield_t y;
    weft_unit_t u;
};

WEFT_ASYNC(twice_t, twice, long)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->y, weft_yield_now(), &self->u);
    WEFT_YIELD();
    WEFT_RETURN(2L * self->n);
    WEFT_END();
}

struct unit_fn_t {
    WEFT_FRAME;
};

WEFT_ASYNC(unit_fn_t, unit_fn, weft_unit_t)
{
    WEFT_BEGIN();
    WEFT_RETURN(WEFT_UNIT);
    WEFT_END();
}

// Commas that no parentheses protect: braced initializers in WEFT_AWAIT's
// init and in WEFT_RETURN; and an owned child (WEFT_OWN) that is never
// awaited, dropped with the frame.
struct pair_t {
    long lo, hi;
};
struct add_t {
    weft_future_t future;
    long a, b;
};
static int add_drops;
static weft_poll_t add_poll(weft_future_t *f, weft_context_t *, void *out)
{
    add_t *s = reinterpret_cast<add_t *>(f);
    if (out != nullptr)
        *static_cast<long *>(out) = s->a + s->b;
    return WEFT_READY;
}
static void add_drop(weft_future_t *) { add_drops++; }
static const weft_future_vtable_t add_vt = { add_poll, add_drop, nullptr, sizeof(add_t), sizeof(long), "add" };

struct braces_t {
    WEFT_FRAME;
    long x;
    add_t s, spare;
    weft_owned_t spare_own;
};

WEFT_ASYNC(braces_t, braces, pair_t)
{
    WEFT_BEGIN();
    self->spare = add_t{ { &add_vt }, 0, 0 };
    WEFT_OWN(&self->spare, &self->spare_own);
    WEFT_AWAIT(&self->s, add_t{ { &add_vt }, 40, 2 }, &self->x);
    WEFT_RETURN(pair_t{ self->x, -self->x });
    WEFT_END();
}

static_assert(WEFT_OUT_SIZE(weft_unit_t) == 0, "a unit output takes no room");
static_assert(WEFT_OUT_SIZE(long) == sizeof(long), "other outputs take their size");

static void *job(void *arg) { return arg; }

// Never called: the macros must expand to valid C++.
int spawn_all(twice_t *t, weft_join_handle_t *jh);
int spawn_all(twice_t *t, weft_join_handle_t *jh)
{
    int rc = weft_spawn(t, jh);
    if (rc == 0)
        rc = weft_spawn_named("twice", t, jh);
    if (rc == 0)
        rc = weft_try_spawn_blocking(job, nullptr, 4, jh);
    if (rc == 0)
        rc = weft_spawn_blocking(job, nullptr, jh);
    return rc;
}

int main()
{
    twice_t t = { WEFT_FRAME_INIT(twice), .n = 21, .y = {}, .u = {} };
    weft_waker_t w = weft_waker_noop();
    weft_context_t cx = { &w };
    long out = 0;
    int polls = 0;
    while (weft_future_poll(WEFT_FUTURE(&t), &cx, &out) == WEFT_PENDING)
        polls++;
    weft_future_drop(WEFT_FUTURE(&t));
    unit_fn_t u = { WEFT_FRAME_INIT(unit_fn) };
    weft_unit_t uo;
    if (weft_future_poll(WEFT_FUTURE(&u), &cx, &uo) != WEFT_READY)
        return 1;
    weft_future_drop(WEFT_FUTURE(&u));
    braces_t b = { WEFT_FRAME_INIT(braces), .x = 0, .s = {}, .spare = {}, .spare_own = {} };
    pair_t p = { 0, 0 };
    if (weft_future_poll(WEFT_FUTURE(&b), &cx, &p) != WEFT_READY || p.lo != 42 || p.hi != -42 || add_drops != 1)
        return 1;
    weft_future_drop(WEFT_FUTURE(&b)); // drops the owned spare
    if (add_drops != 2)
        return 1;
    std::printf("twice(21) = %ld after %d pending polls; %s\n", out, polls, weft_strerror(-EACCES));
    return out == 42 && polls == 2 ? 0 : 1;
}
