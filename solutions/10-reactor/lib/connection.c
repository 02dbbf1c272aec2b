/* connection.c - one TCP connection on its loop: the read path, the write path with
 * output buffering, half-close after flush, the end of stream, and close exactly once. */
#include "reactor-internal.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define READ_CHUNK 65536

static void on_events(void *ctx, int events);

struct rx_conn *rx_conn_new(int fd, unsigned long id, const struct rx_callbacks *cb)
{
    struct rx_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        fatal(errno, "calloc");
    c->fd = fd;
    c->id = id;
    c->cb = cb;
    rx_buf_init(&c->in);
    rx_buf_init(&c->out);
    c->ch = (struct rx_channel){.fd = fd, .events = RX_READ, .slot = -1, .cb = on_events, .ctx = c};
    return c;
}

/* A task run by the sub-loop: from here on the connection belongs to that loop. */
void rx_conn_adopt(struct rx_loop *loop, void *arg)
{
    struct rx_conn *c = arg;
    rx_loop_link_conn(loop, c);
    rx_loop_add_channel(loop, &c->ch);
    if (c->cb->on_open)
        c->cb->on_open(c);
}

void rx_conn_free(struct rx_conn *c)
{
    rx_buf_free(&c->in);
    rx_buf_free(&c->out);
    free(c);
}

static void set_events(struct rx_conn *c, int events)
{
    if (c->ch.events == events)
        return;
    c->ch.events = events;
    rx_loop_update_channel(c->loop, &c->ch);
}

void rx_conn_close(struct rx_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    rx_loop_remove_channel(c->loop, &c->ch);
    rx_loop_cancel_conn_timers(c->loop, c);
    if (close(c->fd) < 0)
        warning(errno, "close");
    c->ch.fd = -1;                  /* events already collected for it this round are skipped */
    if (c->cb->on_close)
        c->cb->on_close(c);
    rx_loop_bury_conn(c->loop, c);  /* freed by the loop at the end of this round */
}

bool rx_conn_is_writable(const struct rx_conn *c)
{
    return !c->closed && !c->shutdown_pending;
}

size_t rx_conn_queued(const struct rx_conn *c)
{
    return rx_buf_len(&c->out);
}

struct rx_buffer *rx_conn_input(struct rx_conn *c)
{
    return &c->in;
}

/* Queued output is gone: send the FIN that rx_conn_shutdown asked for. */
static void finish_shutdown(struct rx_conn *c)
{
    if (c->write_shut)
        return;
    c->write_shut = true;
    if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN)
        warning(errno, "shutdown");
}

/* Write as much queued output as the socket takes.  Returns false if the connection died. */
static bool flush(struct rx_conn *c)
{
    while (rx_buf_len(&c->out) > 0) {
        ssize_t n = send(c->fd, rx_buf_peek(&c->out), rx_buf_len(&c->out), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return true;
            rx_conn_close(c);       /* EPIPE, ECONNRESET: the peer is gone */
            return false;
        }
        rx_buf_consume(&c->out, (size_t)n);
    }
    return true;
}

/* Wanted events follow the state: read unless too much output is queued (or the peer
 * has finished sending); write only while output is queued (level-triggered epoll/poll
 * would report an idle socket as writable forever). */
static void update_interest(struct rx_conn *c)
{
    int ev = 0;
    if (!c->peer_eof && rx_buf_len(&c->out) < RX_OUTPUT_HIGH)
        ev |= RX_READ;
    if (rx_buf_len(&c->out) > 0)
        ev |= RX_WRITE;
    set_events(c, ev);
}

/* With the output queue empty: send the FIN that rx_conn_shutdown asked for, and once
 * both directions are over (our FIN out, the peer's read), the connection is done. */
static void settle(struct rx_conn *c)
{
    if (c->closed || rx_buf_len(&c->out) > 0)
        return;
    if (c->shutdown_pending)
        finish_shutdown(c);
    if (c->write_shut && c->peer_eof)
        rx_conn_close(c);
}

int rx_conn_send(struct rx_conn *c, const void *data, size_t len)
{
    if (!rx_conn_is_writable(c)) {
        errno = EPIPE;              /* closed or shutting down: say so, never drop in silence */
        return -1;
    }
    if (len == 0)
        return 0;
    rx_buf_append(&c->out, data, len);
    if (!(c->ch.events & RX_WRITE) && !flush(c)) {
        errno = EPIPE;              /* the peer is gone: the connection closed under us */
        return -1;
    }
    update_interest(c);
    return 0;
}

void rx_conn_shutdown(struct rx_conn *c)
{
    if (c->closed || c->shutdown_pending)
        return;
    c->shutdown_pending = true;
    settle(c);
}

static void handle_read(struct rx_conn *c)
{
    ssize_t n = rx_buf_read_fd(&c->in, c->fd, READ_CHUNK);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        rx_conn_close(c);           /* ECONNRESET and friends */
        return;
    }
    if (n == 0) {
        /* The peer sent FIN: nothing more will come.  Stop reading and let the
         * application decide; by default, FIN after what is queued, then close. */
        if (c->peer_eof)
            return;                 /* told once */
        c->peer_eof = true;
        update_interest(c);
        if (c->cb->on_eof)
            c->cb->on_eof(c);
        else
            rx_conn_shutdown(c);
        settle(c);                  /* our side may be shut already: then it is over */
        return;
    }
    if (c->cb->on_data)
        c->cb->on_data(c, &c->in);
    if (!c->closed)
        update_interest(c);
}

static void handle_write(struct rx_conn *c)
{
    if (!flush(c))
        return;
    if (rx_buf_len(&c->out) > 0)
        return;
    update_interest(c);
    if (c->cb->on_drain)
        c->cb->on_drain(c);
    settle(c);                      /* on_drain may have queued more: settle looks again */
}

static void on_events(void *ctx, int events)
{
    struct rx_conn *c = ctx;
    if (events & RX_READ)
        handle_read(c);
    if (!c->closed && (events & RX_WRITE) && (c->ch.events & RX_WRITE))
        handle_write(c);
}
