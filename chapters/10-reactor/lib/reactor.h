/*
 * reactor.h - a small event-driven server library (lesson 10): the API an application
 * (echo.c, linesrv.c, lesson 13's httpd.c) uses.  What the library's own files share
 * (channels, backends, hand-off) is in reactor-internal.h.
 *
 * Pieces, from the bottom up:
 *   rx_buffer   a growable byte queue (input and output of a connection)
 *   rx_loop     one thread's event loop: readiness (poll or epoll), timers, a task
 *               queue that other threads post to
 *   rx_conn     a TCP connection: read into its input buffer, write through its
 *               output buffer, close exactly once
 *   rx_server   the acceptor on the main loop plus N sub-loops (I/O threads);
 *               connections are handed to the sub-loops round-robin
 *
 * Threads: everything about a connection or a timer happens in its loop's thread (the
 * callbacks run there, and only there may rx_conn_* and rx_timer_* be called).  Only
 * rx_loop_post and rx_loop_stop may be called from any thread.
 *
 * Ownership, in one place:
 *   - the server owns its loops and the listening socket;
 *   - a loop owns every connection adopted by it, and frees it after on_close: a
 *     closed connection is freed at the end of the loop iteration, so no callback of
 *     the same round touches freed memory;
 *   - what the application hands the library (c->user, a timer's or task's arg)
 *     stays the application's: c->user is freed by the application in on_close, a
 *     timer's arg by the `done` finalizer the library calls exactly once.
 *
 * Errors: a call that fails where nothing sensible can go on (malloc, eventfd,
 * epoll_ctl, pthread_*) ends the process: the call's name and strerror on stderr,
 * exit status 1 (fatal() of common.h).  The functions below therefore return no error
 * codes, except where the caller can act on one (rx_conn_send, rx_timer_cancel).  A
 * failure of one connection (ECONNRESET, EPIPE) closes that connection only.
 */
#ifndef SOCKLAB_REACTOR_H
#define SOCKLAB_REACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- buffer ------------------------------------------------------------- */

struct rx_buffer {                  /* private: use the functions */
    char *data;
    size_t start;   /* first unread byte */
    size_t end;     /* one past the last byte */
    size_t cap;
};

void rx_buf_init(struct rx_buffer *b);
void rx_buf_free(struct rx_buffer *b);
size_t rx_buf_len(const struct rx_buffer *b);
const char *rx_buf_peek(const struct rx_buffer *b);
void rx_buf_append(struct rx_buffer *b, const void *data, size_t len);
void rx_buf_consume(struct rx_buffer *b, size_t n);

/* ---- loop --------------------------------------------------------------- */

struct rx_loop;
struct rx_conn;
struct rx_backend;                  /* "wait for readiness": poll or epoll */

extern const struct rx_backend rx_poll_backend;
extern const struct rx_backend rx_epoll_backend;
/* "poll" or "epoll"; NULL when the name is unknown */
const struct rx_backend *rx_backend_by_name(const char *name);

struct rx_loop *rx_loop_new(int id, const struct rx_backend *backend);
/* Frees the loop: runs the tasks still queued, closes every connection it owns, finishes
 * its pending timers (their `done` runs).  Call after rx_loop_run returned. */
void rx_loop_free(struct rx_loop *loop);
/* Runs until rx_loop_stop(); must be called by the thread that will own the loop. */
void rx_loop_run(struct rx_loop *loop);
/* Any thread: ask the loop to return from rx_loop_run (after this iteration). */
void rx_loop_stop(struct rx_loop *loop);
/* Any thread: run fn(loop, arg) once in the loop's thread, soon (at the latest in
 * rx_loop_free).  arg stays the caller's. */
typedef void (*rx_task_fn)(struct rx_loop *loop, void *arg);
void rx_loop_post(struct rx_loop *loop, rx_task_fn fn, void *arg);
int rx_loop_id(const struct rx_loop *loop);

/* ---- timers (model: redis aeCreateTimeEvent/aeDeleteTimeEvent) ---------- */

/* A timer is named by its id: unique in the process, never reused, never 0.  An id
 * outlives its timer, so cancelling one that already ran is safe (and says so). */
typedef uint64_t rx_timer_id;
typedef void (*rx_timer_fn)(struct rx_loop *loop, void *arg);
typedef void (*rx_conn_timer_fn)(struct rx_conn *c, void *arg);
typedef void (*rx_done_fn)(void *arg);

/* fn(loop, arg) runs once, `ms` milliseconds from now.
 *
 * The one ownership rule of every timer: arg stays the caller's, and `done(arg)` (if
 * done is not NULL) runs exactly once when the timer is over -- after fn returned,
 * or when it is cancelled (by rx_timer_cancel, by its connection closing, by
 * rx_loop_free) -- so arg can be freed there (done = free for malloc'd memory). */
rx_timer_id rx_timer_start(struct rx_loop *loop, unsigned ms, rx_timer_fn fn, rx_done_fn done,
                           void *arg);
/* The same, bound to a connection: fn(c, arg) runs unless c closes first; closing c
 * cancels it (before on_close).  On a closed c nothing starts: done(arg) runs now
 * and 0 is returned. */
rx_timer_id rx_conn_timer(struct rx_conn *c, unsigned ms, rx_conn_timer_fn fn, rx_done_fn done,
                          void *arg);
/* Cancel a pending timer of this loop: fn will not run, done(arg) runs now.  Returns
 * 0, or -1 if no such timer is pending (it ran already, was cancelled, or is unknown). */
int rx_timer_cancel(struct rx_loop *loop, rx_timer_id id);

/* ---- connections (model: libuv's uv_tcp_t) ------------------------------ */

struct rx_callbacks {
    void (*on_open)(struct rx_conn *c);                          /* adopted by its loop */
    void (*on_data)(struct rx_conn *c, struct rx_buffer *in);   /* consume what you used */
    /* The peer sent FIN: nothing more will be read (the input buffer keeps what
     * on_data left).  Writing goes on until the application calls rx_conn_shutdown
     * (or rx_conn_close).  NULL means rx_conn_shutdown: what is queued is sent, then
     * the FIN, then the connection closes. */
    void (*on_eof)(struct rx_conn *c);
    void (*on_drain)(struct rx_conn *c);                         /* queued output all written */
    void (*on_close)(struct rx_conn *c);                         /* exactly once, the last */
};

/* High-water mark: while this much output is queued, the connection stops reading. */
#define RX_OUTPUT_HIGH (1u << 20)

/* Internal to the library, embedded below (reactor-internal.h has the rest). */
typedef void (*rx_event_cb)(void *ctx, int events);
struct rx_channel {
    int fd;
    int events;         /* RX_READ | RX_WRITE wanted now */
    int slot;           /* backend bookkeeping (the poll backend's index) */
    rx_event_cb cb;
    void *ctx;
};

/* The library closes a connection (then on_close) when both directions are over -- the
 * peer's FIN was read and ours sent after the queued output --, when reading or writing
 * fails (ECONNRESET, EPIPE), or when the application calls rx_conn_close. */
struct rx_conn {
    /* public: the application's */
    void *user;                     /* per-connection state; free it in on_close */

    /* read-only: set by the library */
    unsigned long id;               /* 1, 2, 3 ... in accept order */
    struct rx_loop *loop;           /* the owner; all callbacks run in its thread */
    int fd;                         /* for setsockopt/getpeername: never read, write, close it */

    /* private: the library's (use the functions below) */
    struct rx_channel ch;
    struct rx_buffer in, out;
    bool closed;
    bool shutdown_pending;          /* SHUT_WR once `out` is empty */
    bool write_shut;                /* our FIN is out */
    bool peer_eof;                  /* the peer sent FIN */
    const struct rx_callbacks *cb;
    struct rx_conn *prev, *next;    /* the loop's list of live (or dead) connections */
};

/* Queue `len` bytes: written now if possible, the rest when the socket is writable.
 * Returns 0, or -1 with errno EPIPE when nothing can be sent any more (the connection
 * is closed, or rx_conn_shutdown was called): the bytes were dropped. */
int rx_conn_send(struct rx_conn *c, const void *data, size_t len);
/* Half-close: FIN after everything queued has been written.  Reading continues. */
void rx_conn_shutdown(struct rx_conn *c);
/* Close now (queued output is dropped).  Safe to call twice. */
void rx_conn_close(struct rx_conn *c);

/* Whether rx_conn_send would take data: not closed, no shutdown asked for. */
bool rx_conn_is_writable(const struct rx_conn *c);
/* Output bytes queued, not yet taken by the socket. */
size_t rx_conn_queued(const struct rx_conn *c);
/* The input buffer (the one on_data gets): bytes read, not consumed yet. */
struct rx_buffer *rx_conn_input(struct rx_conn *c);

/* ---- server ------------------------------------------------------------- */

struct rx_server;

/* Listen on 0.0.0.0:port; `threads` sub-loops (0 = everything on the main loop). */
struct rx_server *rx_server_new(uint16_t port, int threads, const struct rx_backend *backend,
                                const struct rx_callbacks *cb);
/* Start the sub-loops, run the main loop until SIGINT/SIGTERM, stop and join
 * everything, free it all.  Returns 0. */
int rx_server_run(struct rx_server *srv, void (*on_ready)(void));

#endif
