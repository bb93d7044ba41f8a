/* tests/test_shared_link.c - a program that links the shared libweft and
 * nothing else (no jemalloc of its own), as `cc app.c -lweft` does. Its
 * malloc is then glibc's, while libweft frees with jemalloc's sdallocx:
 * weft must allocate from jemalloc anyway (runtime/alloc.c). This crashed
 * before that fix. Exit status 0 = pass. */
#include <stdint.h>
#include <stdio.h>

#include <weft/weft.h>

static void *job(void *arg)
{
    return (void *)((uintptr_t)arg + 1);
}

int main(void)
{
    weft_runtime_t *rt;
    if (weft_runtime_new(NULL, &rt) != 0)
        return 1;
    weft_handle_t *h = weft_runtime_handle(rt);
    for (int round = 0; round < 20; round++) {
        weft_join_handle_t jh[100];
        for (int i = 0; i < 100; i++) {
            weft_ready_t r = weft_ready(i);
            if (weft_handle_spawn(h, &r, &jh[i]) != 0)
                return 1;
        }
        for (int i = 0; i < 100; i++) {
            intptr_t v = -1;
            int rc = -1;
            if (weft_runtime_block_on(rt, weft_join(&jh[i], &v), &rc) != 0 || rc != 0 || v != i)
                return 1;
        }
        weft_join_handle_t bj;
        void *out = NULL;
        int rc = -1;
        if (weft_spawn_blocking_at(h, job, (void *)(uintptr_t)round, &bj, NULL, WEFT_SITE) != 0 ||
            weft_runtime_block_on(rt, weft_join(&bj, &out), &rc) != 0 || rc != 0 ||
            out != (void *)(uintptr_t)(round + 1))
            return 1;
    }
    weft_runtime_free(rt);
    puts("ok");
    return 0;
}
