/* connection.c - one TCP connection on its loop: the read path, the write path with
 * output buffering, half-close after flush, the end of stream, and close exactly once. */
#include "reactor-internal.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

/* The skeleton defines helpers before anything calls them: that is no error here. */
#pragma GCC diagnostic ignored "-Wunused-function"

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
    /* Exactly once (a second call must do nothing): mark closed, remove the channel from
     * the loop, cancel its timers, close the fd, set c->ch.fd = -1 so events collected for
     * it earlier in this round are skipped, call on_close, and hand it to
     * rx_loop_bury_conn (the loop frees it at the end of the round -- not now: the
     * caller may still be inside one of its handlers). */
    TODO("close the connection exactly once");
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
    /* send() from c->out until it is empty or the socket is full (EAGAIN: stop, the rest
     * waits for writability).  Consume what was sent.  EINTR: retry.  Any other error
     * (EPIPE, ECONNRESET): the peer is gone, close and return false.  Use MSG_NOSIGNAL so
     * a write to a reset connection does not kill the process with SIGPIPE. */
    TODO("write queued output until empty or EAGAIN");
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
    /* Queue the bytes.  If we are not already waiting for writability, try to write now
     * (flush); if that finds the peer gone, the connection is closed: -1 and EPIPE again.
     * Then update_interest so RX_WRITE is on exactly while output remains; return 0. */
    TODO("queue the data, flush if not waiting for writability, update the interest");
}

void rx_conn_shutdown(struct rx_conn *c)
{
    if (c->closed || c->shutdown_pending)
        return;
    /* A FIN now would cut off whatever is still queued in c->out: remember the request
     * (shutdown_pending) and let settle send it once the buffer is empty (now, if it is). */
    TODO("record the half-close and settle");
}

static void handle_read(struct rx_conn *c)
{
    /* One read per readiness event is enough (level-triggered).  rx_buf_read_fd:
     *   > 0   give the input buffer to on_data, then update_interest (unless closed);
     *   0     the peer sent FIN (only the first time counts: return if peer_eof is set):
     *         set peer_eof, update_interest (no more reading), then the end-of-stream
     *         policy -- on_eof if the application gave one, else rx_conn_shutdown --
     *         and settle (if our FIN is out already, the connection is over);
     *   < 0   EAGAIN/EINTR: nothing to do; anything else (ECONNRESET): close. */
    TODO("read into c->in and act on the result");
}

static void handle_write(struct rx_conn *c)
{
    /* Flush.  If output remains, keep waiting.  Once empty: update_interest (write
     * interest off -- an idle socket is always writable), call on_drain, then settle
     * (the pending FIN, and the close if the peer is done too). */
    TODO("write queued output; when it is empty: interest, on_drain, settle");
}

static void on_events(void *ctx, int events)
{
    struct rx_conn *c = ctx;
    if (events & RX_READ)
        handle_read(c);
    if (!c->closed && (events & RX_WRITE) && (c->ch.events & RX_WRITE))
        handle_write(c);
}
