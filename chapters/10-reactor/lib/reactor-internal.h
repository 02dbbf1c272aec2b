/*
 * reactor-internal.h - what the library's files share and applications never see:
 * channels and the backend interface (loop.c, *_backend.c), the hand-off of a new
 * connection to its loop (server.c, connection.c, loop.c), and buffer I/O.
 * Applications include reactor.h only.
 */
#ifndef SOCKLAB_REACTOR_INTERNAL_H
#define SOCKLAB_REACTOR_INTERNAL_H

#include "reactor.h"

/* ---- buffer ------------------------------------------------------------- */

/* An emptied buffer bigger than this gives its memory back. */
#define RX_BUF_KEEP 16384

/* One read(2) of at most `max` bytes appended to b: returns what read returned. */
ssize_t rx_buf_read_fd(struct rx_buffer *b, int fd, size_t max);

/* ---- channels and backends ---------------------------------------------- */

enum { RX_READ = 1, RX_WRITE = 2 };

/* A channel (struct rx_channel, in reactor.h because rx_conn embeds one) = an fd, the
 * events wanted, and who to call.  It is embedded in its owner (a connection, the
 * loop's wakeup, the acceptor); it owns nothing. */

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

/* A failing backend call is fatal (see reactor.h, "Errors"). */
void rx_loop_add_channel(struct rx_loop *loop, struct rx_channel *ch);
void rx_loop_update_channel(struct rx_loop *loop, struct rx_channel *ch);
void rx_loop_remove_channel(struct rx_loop *loop, struct rx_channel *ch);

/* ---- connections: birth, hand-off, death -------------------------------- */

/* server.c (main thread) allocates, then posts rx_conn_adopt to the chosen loop and
 * forgets the connection: from adoption to free only that loop's thread touches it. */
struct rx_conn *rx_conn_new(int fd, unsigned long id, const struct rx_callbacks *cb);
void rx_conn_adopt(struct rx_loop *loop, void *conn);     /* an rx_task_fn */
void rx_conn_free(struct rx_conn *c);
void rx_loop_link_conn(struct rx_loop *loop, struct rx_conn *c);
/* Move c to the loop's dead list: freed (rx_conn_free) at the end of the round. */
void rx_loop_bury_conn(struct rx_loop *loop, struct rx_conn *c);
/* Cancel every pending timer of c (their `done` runs). */
void rx_loop_cancel_conn_timers(struct rx_loop *loop, struct rx_conn *c);

#endif
