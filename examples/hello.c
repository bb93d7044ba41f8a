/* examples/hello.c - the Rust async/await article's hands-on example,
 * line for line:
 *
 *   async fn fetch(name, ms) -> String { sleep(ms).await; format!(...) }
 *   sequential: fetch("a", 100).await; fetch("b", 50).await   (~150 ms)
 *   join!(fetch("a", 100), fetch("b", 50))                    (~100 ms)
 *   spawn(fetch("c", 75)).await                               (~75 ms)
 *
 * with the measured time of each part printed.
 */
#include <stdio.h>

#include <weft/weft.h>

typedef struct {
    char text[64];
} msg_t;

/* async fn fetch(name: &str, ms: u64) -> String */
typedef struct {
    WEFT_FRAME;
    const char *name;
    uint64_t ms;
    weft_sleep_t sleep; /* the awaited child lives in the frame */
} fetch_t;

WEFT_ASYNC(fetch_t, fetch_fn, msg_t)
{
    WEFT_BEGIN();
    WEFT_AWAIT(&self->sleep, weft_sleep_ms(self->ms), NULL);
    {
        msg_t m;
        snprintf(m.text, sizeof m.text, "%s done after %llums", self->name, (unsigned long long)self->ms);
        WEFT_RETURN(m);
    }
    WEFT_END();
}

WEFT_NODISCARD static fetch_t fetch(const char *name, uint64_t ms)
{
    return (fetch_t){ WEFT_FRAME_INIT(fetch_fn), .name = name, .ms = ms };
}

typedef struct {
    WEFT_FRAME;
    fetch_t a, b;
    msg_t ma, mb;
    weft_join2_t both;
    weft_join_handle_t handle;
    int err;
    uint64_t t0;
} main_t;

static double ms_since(uint64_t t0)
{
    return (double)(weft_now_ns() - t0) / 1e6;
}

WEFT_ASYNC(main_t, main_fn, int)
{
    WEFT_BEGIN();
    /* Sequential: ~150ms total */
    self->t0 = weft_now_ns();
    WEFT_AWAIT(&self->a, fetch("a", 100), &self->ma);
    WEFT_AWAIT(&self->b, fetch("b", 50), &self->mb);
    printf("%s\n%s\nsequential: %.1f ms\n\n", self->ma.text, self->mb.text, ms_since(self->t0));

    /* Concurrent: ~100ms total */
    self->t0 = weft_now_ns();
    self->a = fetch("a", 100);
    self->b = fetch("b", 50);
    WEFT_AWAIT(&self->both, weft_join2(WEFT_FUTURE(&self->a), &self->ma, WEFT_FUTURE(&self->b), &self->mb), NULL);
    printf("%s\n%s\njoin: %.1f ms\n\n", self->ma.text, self->mb.text, ms_since(self->t0));

    /* Spawning lets futures run on background tasks */
    self->t0 = weft_now_ns();
    {
        fetch_t c = fetch("c", 75);
        if (weft_spawn(&c, &self->handle) != 0)
            WEFT_RETURN(1);
    }
    WEFT_AWAIT_REF(weft_join(&self->handle, &self->ma), &self->err);
    if (self->err != 0)
        WEFT_RETURN(1);
    printf("%s\nspawn: %.1f ms\n", self->ma.text, ms_since(self->t0));
    WEFT_RETURN(0);
    WEFT_END();
}

int main(void)
{
    weft_runtime_t *rt;
    int rc = weft_runtime_new(NULL, &rt);
    if (rc != 0) {
        fprintf(stderr, "weft_runtime_new: %s\n", weft_strerror(rc));
        return 1;
    }
    main_t m = { WEFT_FRAME_INIT(main_fn) };
    int status = 1;
    int brc = weft_runtime_block_on(rt, WEFT_FUTURE(&m), &status);
    if (brc != 0) {
        fprintf(stderr, "block_on: %s\n", weft_strerror(brc));
        status = 1;
    }
    weft_runtime_free(rt);
    return status;
}
