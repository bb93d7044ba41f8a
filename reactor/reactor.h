/* reactor/reactor.h - the drivers' private structure (internal).
 *
 * One weft__driver per runtime (driver.h is the scheduler's opaque view of
 * it) with three parts, each in its own file:
 *
 *   io    (io_driver.c)   the edge-triggered epoll set of sockets: readiness
 *                         words, event dispatch, closed sockets' retirement;
 *   time  (time_driver.c) one timing wheel per worker (a shard with its own
 *                         lock), firing by workers, the backstop's firing;
 *   uv    (uv_thread.c,   the libuv thread: a doorbell, the backstop timer,
 *          uv_process.c)  the signal pipe's watch, (current-thread) the
 *                         epoll set's watch, and child processes. Every
 *                         libuv call is in these two files.
 *
 * and the parking of one idle worker inside it (driver.c). The resources
 * built on the drivers (reactor/net, reactor/time, reactor/signal) include
 * io_driver.h or time_driver.h, which include this; the scheduler never does.
 */
#ifndef WEFT_REACTOR_H
#define WEFT_REACTOR_H

#include <uv.h>

#include "../runtime/context.h"
#include "driver.h"
#include "timer_wheel.h"

struct weft__io;

/* A timing wheel and its lock, one per worker (time_driver.c). */
typedef struct weft__time_shard {
    _Alignas(WEFT_CACHELINE) pthread_mutex_t lock; /* the wheel and its entries' links */
    /* The wheel's earliest deadline (ms), written under the lock, read
     * without it. Never later than the true earliest; a removal may leave
     * it early, which costs one look under the lock. */
    _Atomic uint64_t due_ms;
    weft__wheel_t wheel;
} weft__time_shard_t;

typedef struct weft__time_driver {
    uint64_t origin_ns; /* wheel time 0 */
    /* A virtual clock (testing, weft_clock_t): the time read instead of
     * CLOCK_MONOTONIC, starting at origin_ns and moved forward only by
     * weft__time_advance and weft__time_advance_to_next. Set at start. */
    bool paused;
    _Atomic uint64_t vnow_ns;
    unsigned nshards;
    weft__time_shard_t *shards;
    /* Wheel ms the libuv thread's backstop timer fires at (UINT64_MAX:
     * none); an inserter with an earlier need lowers it and rings. */
    _Atomic uint64_t armed;
    /* Wheel ms the worker parked in the driver sleeps until; 0 while none
     * sleeps. An inserter with an earlier deadline lowers it and kicks. */
    _Atomic uint64_t park_until;
    unsigned park_overdue; /* the parked worker's: waits in a row that found a timer overdue */
} weft__time_driver_t;

typedef struct weft__io_driver {
    int epfd; /* the sockets' epoll set (edge-triggered) */
    /* Sockets whose last reference is gone, freed by the libuv thread
     * (after any event dispatch that might still name them); a lock-free
     * intake stack (runtime/list.h). */
    _Atomic(struct weft__io *) retired;
    /* Workers inside weft__io_poll_events: while any is, retired sockets
     * wait (a worker may hold an event naming one). */
    _Atomic unsigned pollers;
} weft__io_driver_t;

typedef struct weft__uv_thread {
    uv_loop_t loop;
    uv_async_t doorbell;
    uv_timer_t timer;        /* the time driver's backstop */
    uv_poll_t epoll_watch;   /* current-thread runtimes: the epoll set */
    uv_poll_t signal_watch;  /* the process's signal pipe */
    bool epoll_watched;      /* epoll_watch was initialised */
    pthread_t thread;
    bool started;
    _Atomic bool stopping;   /* the doorbell closes the handles */
} weft__uv_thread_t;

/* Where one idle worker of a multi-thread runtime sleeps (driver.c): an
 * epoll set holding the sockets' set and an eventfd, level-triggered. */
typedef struct weft__driver_park {
    int epfd;    /* -1 on current-thread runtimes */
    int kick_fd; /* eventfd: weft__driver_unpark writes to it */
    _Atomic int held; /* 1 while a worker sleeps there (or is about to) */
} weft__driver_park_t;

struct weft__driver {
    bool has_io, has_time, workers_drive;
    /* Orders a doorbell ring before the stop closes the doorbell: ringers
     * check `stopped` under it (weft__uv_ring). */
    pthread_mutex_t lock;
    _Atomic bool stopped; /* set under `lock` by weft__driver_stop */
    weft__io_driver_t io;     /* when has_io */
    weft__time_driver_t time; /* when has_time */
    weft__driver_park_t park; /* when workers_drive */
    weft__uv_thread_t uv;
    char name[16];
    /* Child processes (reactor/process, uv_process.c): requests waiting
     * for the libuv thread (under `lock`), and the children it has not
     * closed yet (libuv thread only). */
    struct weft__proc_req *proc_reqs;
    struct weft__proc *procs;
    uv_timer_t proc_sweep;  /* the reaping backstop, while children live */
    bool proc_sweep_init;   /* proc_sweep was initialised (libuv thread only) */
};

/* ---- uv_thread.c --------------------------------------------------------- */
/* Creates the loop and its handles and starts the thread. Returns 0,
 * WEFT_EAGAIN or a libuv error (a negative errno); on error nothing is left
 * open. */
int weft__uv_start(weft__driver_t *d);
/* Closes every handle, ends the thread and closes the loop. */
void weft__uv_stop(weft__driver_t *d);
/* Rings the doorbell (the thread then frees retired sockets and re-arms
 * the backstop timer) unless the driver is stopped. Context: any thread. */
void weft__uv_ring(weft__driver_t *d);

/* ---- uv_process.c (child processes, reactor/process/proc.h) --------------- */
/* Answers the queued process requests (spawn, kill). libuv thread. */
void weft__uv_proc_run(weft__driver_t *d);
/* At the stop: sends SIGKILL to every child still running, reaps it
 * (waitpid), reports its status to its waiter and closes every child's
 * handle. libuv thread, before the loop's handles close. */
void weft__uv_proc_stop(weft__driver_t *d);

#endif
