/*
 * reactor.h - a small event-driven server library (lesson 10).
 *
 * Pieces, from the bottom up:
 *   rx_buffer   a growable byte queue (input and output of a connection)
 *   rx_backend  "wait for readiness" behind one interface: poll or epoll
 *   rx_loop     one thread's event loop: channels, timers, a task queue that other
 *               threads post to (woken through an eventfd)
 *   rx_conn     a TCP connection: read into its input buffer, write through its
 *               output buffer, close exactly once
 *   rx_server   the acceptor on the main loop plus N sub-loops (I/O threads);
 *               connections are handed to the sub-loops round-robin
 *
 * Ownership, in one place:
 *   - the server owns its loops and the listening socket;
 *   - a loop owns every connection adopted by it, and frees them: a closed
 *     connection is parked on the loop's "dead" list and freed at the end of the
 *     loop iteration, so no callback of the same round can touch freed memory;
 *   - a connection is touched only by its loop's thread, from adoption to free.
 *     The main thread allocates it, posts it to the sub-loop and forgets it.
 */
#ifndef SOCKLAB_REACTOR_H
#define SOCKLAB_REACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- buffer ------------------------------------------------------------- */

struct rx_buffer {
    char *data;
    size_t start;   /* first unread byte */
    size_t end;     /* one past the last byte */
    size_t cap;
};

/* An emptied buffer bigger than this gives its memory back. */
#define RX_BUF_KEEP 16384

void rx_buf_init(struct rx_buffer *b);
void rx_buf_free(struct rx_buffer *b);
size_t rx_buf_len(const struct rx_buffer *b);
const char *rx_buf_peek(const struct rx_buffer *b);
void rx_buf_append(struct rx_buffer *b, const void *data, size_t len);
void rx_buf_consume(struct rx_buffer *b, size_t n);
/* One read(2) of at most `max` bytes appended to b: returns what read returned. */
ssize_t rx_buf_read_fd(struct rx_buffer *b, int fd, size_t max);

/* ---- channels and backends ---------------------------------------------- */

enum { RX_READ = 1, RX_WRITE = 2 };

typedef void (*rx_event_cb)(void *ctx, int events);

/* A channel = an fd, the events wanted, and who to call.  It is embedded in its
 * owner (a connection, the loop's wakeup, the acceptor); it owns nothing. */
struct rx_channel {
    int fd;
    int events;         /* RX_READ | RX_WRITE wanted now */
    int slot;           /* backend bookkeeping (the poll backend's index) */
    rx_event_cb cb;
    void *ctx;
};

struct rx_ready {
    struct rx_channel *ch;
    int events;         /* RX_READ | RX_WRITE that happened; errors/hangup count as both */
};

struct rx_backend {
    const char *name;
    void *(*create)(void);
    void (*destroy)(void *state);
    int (*add)(void *state, struct rx_channel *ch);
    int (*modify)(void *state, struct rx_channel *ch);
    int (*remove)(void *state, struct rx_channel *ch);
    /* Wait up to timeout_ms (-1: forever); fill at most max entries; return count or -1. */
    int (*wait)(void *state, int timeout_ms, struct rx_ready *out, int max);
};

extern const struct rx_backend rx_poll_backend;
extern const struct rx_backend rx_epoll_backend;
/* "poll" or "epoll"; NULL when the name is unknown */
const struct rx_backend *rx_backend_by_name(const char *name);

/* ---- loop --------------------------------------------------------------- */

struct rx_loop;
struct rx_conn;
typedef void (*rx_task_fn)(struct rx_loop *loop, void *arg);

struct rx_loop *rx_loop_new(int id, const struct rx_backend *backend);
/* Frees the loop and every connection it still owns (closing them). Call after run returned. */
void rx_loop_free(struct rx_loop *loop);
/* Runs until rx_loop_stop(); must be called by the thread that will own the loop. */
void rx_loop_run(struct rx_loop *loop);
/* Thread-safe: ask the loop to return from rx_loop_run (after this iteration). */
void rx_loop_stop(struct rx_loop *loop);
/* Thread-safe: run fn(loop, arg) in the loop's thread, soon. */
void rx_loop_post(struct rx_loop *loop, rx_task_fn fn, void *arg);
int rx_loop_id(const struct rx_loop *loop);

void rx_loop_add_channel(struct rx_loop *loop, struct rx_channel *ch);
void rx_loop_update_channel(struct rx_loop *loop, struct rx_channel *ch);
void rx_loop_remove_channel(struct rx_loop *loop, struct rx_channel *ch);

/* Timers: loop thread only.  fn runs once, after `ms` milliseconds. */
typedef void (*rx_timer_fn)(struct rx_loop *loop, void *arg);
void rx_loop_timer(struct rx_loop *loop, unsigned ms, rx_timer_fn fn, void *arg);

/* ---- connections -------------------------------------------------------- */

struct rx_callbacks {
    void (*on_open)(struct rx_conn *c);                          /* in the owning loop's thread */
    void (*on_data)(struct rx_conn *c, struct rx_buffer *in);   /* consume what you used */
    void (*on_drain)(struct rx_conn *c);                         /* output buffer became empty */
    void (*on_close)(struct rx_conn *c);                         /* exactly once */
};

/* High-water mark: while this much output is queued, the connection stops reading. */
#define RX_OUTPUT_HIGH (1u << 20)

struct rx_conn {
    int fd;
    unsigned long id;               /* 1, 2, 3 ... in accept order */
    struct rx_loop *loop;
    struct rx_channel ch;
    struct rx_buffer in, out;
    bool closed;
    bool shutdown_pending;          /* SHUT_WR once `out` is empty */
    bool write_shut;
    bool peer_eof;                  /* the peer sent FIN */
    const struct rx_callbacks *cb;
    void *user;                     /* the application's per-connection data */
    struct rx_conn *prev, *next;    /* the loop's list of live (or dead) connections */
};

/* Queue `len` bytes: written now if possible, the rest when the socket is writable. */
void rx_conn_send(struct rx_conn *c, const void *data, size_t len);
/* Half-close: FIN after everything queued has been written. Reading continues. */
void rx_conn_shutdown(struct rx_conn *c);
/* Close now (queued output is dropped).  Safe to call twice. */
void rx_conn_close(struct rx_conn *c);

/* A timer bound to the connection (its loop's thread only): fn(c, arg) runs once after
 * `ms` ms unless the connection closes first.  arg is malloc'd memory the timer owns:
 * freed after fn returns, or when the timer is cancelled. */
typedef void (*rx_conn_timer_fn)(struct rx_conn *c, void *arg);
void rx_conn_timer(struct rx_conn *c, unsigned ms, rx_conn_timer_fn fn, void *arg);

/* internal, used by loop.c / server.c */
struct rx_conn *rx_conn_new(int fd, unsigned long id, const struct rx_callbacks *cb);
void rx_conn_adopt(struct rx_loop *loop, void *conn);     /* an rx_task_fn */
void rx_conn_free(struct rx_conn *c);
void rx_loop_link_conn(struct rx_loop *loop, struct rx_conn *c);
void rx_loop_bury_conn(struct rx_loop *loop, struct rx_conn *c);
void rx_loop_cancel_conn_timers(struct rx_loop *loop, struct rx_conn *c);

/* ---- server ------------------------------------------------------------- */

struct rx_server;

/* Listen on 0.0.0.0:port; `threads` sub-loops (0 = everything on the main loop). */
struct rx_server *rx_server_new(uint16_t port, int threads, const struct rx_backend *backend,
                                const struct rx_callbacks *cb);
/* Start the sub-loops, run the main loop until SIGINT/SIGTERM, stop and join
 * everything, free it all.  Returns 0. */
int rx_server_run(struct rx_server *srv, void (*on_ready)(void));

#endif
