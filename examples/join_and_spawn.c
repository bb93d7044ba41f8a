/* examples/join_and_spawn.c - join versus spawn, without timers: `join` runs
 * two futures concurrently on ONE task; `spawn` makes an independent task
 * that any worker may run in parallel; dropping a future cancels it.
 *
 * "work(name, steps)" yields `steps` times, printing which thread runs it.
 */
#include <pthread.h>
#include <stdio.h>

#include <weft/weft.h>

typedef struct {
    WEFT_FRAME;
    const char *name;
    int steps, i;
} work_t;

WEFT_ASYNC(work_t, work_fn, int)
{
    WEFT_BEGIN();
    for (self->i = 0; self->i < self->steps; self->i++) {
        printf("  %s step %d\n", self->name, self->i);
        WEFT_YIELD(); /* a suspension point: the state machine returns here */
    }
    WEFT_RETURN(self->steps);
    WEFT_END();
}

WEFT_NODISCARD static work_t work(const char *name, int steps)
{
    return (work_t){ WEFT_FRAME_INIT(work_fn), .name = name, .steps = steps };
}

typedef struct {
    WEFT_FRAME;
    work_t a, b;             /* children embedded in the frame: no allocation */
    int ra, rb, err;
    weft_join2_t both;
    weft_join_handle_t h;
} main_t;

WEFT_ASYNC(main_t, main_fn, int)
{
    WEFT_BEGIN();
    printf("sequential: a then b\n");
    WEFT_AWAIT(&self->a, work("a", 2), &self->ra);
    WEFT_AWAIT(&self->b, work("b", 2), &self->rb);

    printf("join: a and b interleave on one task\n");
    self->a = work("a", 2);
    self->b = work("b", 2);
    WEFT_AWAIT(&self->both, weft_join2(WEFT_FUTURE(&self->a), &self->ra, WEFT_FUTURE(&self->b), &self->rb), NULL);

    printf("spawn: c runs as its own task\n");
    {
        work_t c = work("c", 3);
        if (weft_spawn(&c, &self->h) != 0)
            WEFT_RETURN(1);
    }
    WEFT_AWAIT_REF(weft_join(&self->h, &self->ra), &self->err);
    printf("c returned %d (join status %s)\n", self->ra, weft_err_name(self->err));

    printf("cancellation: spawn d, then abort it\n");
    {
        work_t d = work("d", 1000000);
        if (weft_spawn(&d, &self->h) != 0)
            WEFT_RETURN(1);
    }
    weft_join_handle_abort(&self->h);
    WEFT_AWAIT_REF(weft_join(&self->h, &self->ra), &self->err);
    printf("d: %s\n", weft_strerror(self->err));
    WEFT_RETURN(0);
    WEFT_END();
}

int main(void)
{
    weft_builder_t b;
    weft_builder_init(&b, WEFT_RUNTIME_CURRENT_THREAD); /* deterministic output */
    weft_runtime_t *rt;
    if (weft_runtime_new(&b, &rt) != 0)
        return 1;
    main_t m = { WEFT_FRAME_INIT(main_fn) };
    int rc = 1;
    int brc = weft_runtime_block_on(rt, WEFT_FUTURE(&m), &rc);
    if (brc != 0) {
        fprintf(stderr, "block_on: %s\n", weft_strerror(brc));
        rc = 1;
    }
    weft_runtime_free(rt);
    return rc;
}
