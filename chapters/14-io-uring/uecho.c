/*
 * uecho PORT - an echo server on io_uring: a proactor.
 *
 * Nothing here asks "is this socket ready?".  The server hands the kernel whole
 * operations -- accept, recv, send, close, and a read of a signalfd -- each tagged with
 * a user_data cookie, and the loop reacts to their completions.  One io_uring_enter
 * both submits everything queued since the last one and waits for the next completions,
 * so a busy server makes one system call for many operations.
 *
 * Each connection has one operation in flight at a time: a recv into its buffer; once
 * that completes, a send of those bytes (again and again until every byte has gone: a
 * short send is normal); then the next recv.  A client that does not read therefore
 * stops its own echo, and nothing else.  See README.md, "Contract".
 *
 * Your part: arm_accept, post_recv, post_send, post_close, cancel_everything,
 * on_accept, on_conn, on_completion and the loop in main.  arm_signal_read is done:
 * it shows the pattern every operation follows (take an SQE, prepare it, tag it with
 * user_data, count it as in flight).  The ring helpers are in lib/ring.h.
 */
#include "common.h"
#include "ring.h"

#include <sys/signalfd.h>

#define RING_ENTRIES 256
#define BUF_SIZE 16384          /* the most one recv takes */
#define BACKLOG 4096

/* user_data of the operations that are not a connection's (a conn pointer is never this small) */
enum { UD_ACCEPT = 1, UD_SIGNAL = 2, UD_CANCEL = 3 };

enum conn_op { OP_RECV, OP_SEND, OP_CLOSE };

struct conn {
    int fd;
    enum conn_op op;            /* the one operation in flight for this connection */
    size_t len;                 /* bytes in buf (what the last recv returned) */
    size_t sent;                /* how many of them have been sent */
    char buf[BUF_SIZE];
};

struct server {
    struct io_uring ring;
    int listen_fd;
    int signal_fd;
    struct signalfd_siginfo siginfo;
    unsigned inflight;          /* operations submitted whose last completion has not come */
    int accepting;              /* the multishot accept is armed */
    int stopping;               /* SIGINT/SIGTERM seen: cancel, close, finish */
};

static void arm_accept(struct server *s)
{
    /* TODO: one multishot accept on s->listen_fd (io_uring_prep_multishot_accept; no
     * address wanted, SOCK_CLOEXEC for the new sockets), tagged UD_ACCEPT.  It keeps
     * producing a completion per connection until the kernel ends it: set s->accepting,
     * and count it in s->inflight once, however many completions it will bring. */
    TODO("arm_accept: the multishot accept");
}

static void arm_signal_read(struct server *s)
{
    struct io_uring_sqe *sqe = ring_sqe(&s->ring);
    io_uring_prep_read(sqe, s->signal_fd, &s->siginfo, sizeof(s->siginfo), 0);
    io_uring_sqe_set_data64(sqe, UD_SIGNAL);
    s->inflight++;
}

static void post_recv(struct server *s, struct conn *c)
{
    /* TODO: a recv into c->buf (up to BUF_SIZE), user_data = c, c->op = OP_RECV, and
     * count it in flight.  It completes when at least one byte has arrived -- with
     * however many bytes that is. */
    TODO("post_recv");
}

/* Send what is left of the buffer: all of it the first time, the rest after a short send. */
static void post_send(struct server *s, struct conn *c)
{
    /* TODO: a send of the bytes not sent yet (from c->buf + c->sent, c->len - c->sent of
     * them), with MSG_NOSIGNAL as a plain send() would need it (io_uring adds it anyway:
     * a closed peer is an -EPIPE result, never a SIGPIPE); user_data = c, c->op = OP_SEND,
     * count it. */
    TODO("post_send");
}

static void post_close(struct server *s, struct conn *c)
{
    /* TODO: close c->fd through the ring too (io_uring_prep_close); user_data = c,
     * c->op = OP_CLOSE, count it.  c is freed when its completion comes. */
    TODO("post_close");
}

/* One request cancels every operation in flight; each then completes with -ECANCELED
 * (or with its result, if it finished first) and is handled like any other completion. */
static void cancel_everything(struct server *s)
{
    /* TODO: one cancel request for every operation in flight: io_uring_prep_cancel64
     * with IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL, tagged UD_CANCEL (it has a
     * completion of its own: count it).  Each cancelled operation still completes, with
     * -ECANCELED, and must be handled like any other completion. */
    TODO("cancel_everything");
}

static void on_accept(struct server *s, int res, unsigned flags)
{
    /* TODO: a completion of the multishot accept.
     *  - Without IORING_CQE_F_MORE in flags it was the last one: the accept has ended
     *    (an error, or cancelled); clear s->accepting and take it out of s->inflight.
     *  - res >= 0 is a new connection's descriptor: malloc a struct conn and post_recv;
     *    while stopping, just close() it instead.
     *  - -EMFILE/-ENFILE: out of descriptors.  Re-arming now would fail again at once,
     *    forever (a busy loop): leave it off; on_conn re-arms when a close completes.
     *  - other errors (not -ECANCELED or -ECONNABORTED): warning().
     *  - if the accept ended for any other reason and we are not stopping: arm_accept(). */
    TODO("on_accept");
}

static void on_conn(struct server *s, struct conn *c, int res)
{
    /* TODO: the completion of c's one operation in flight (c->op says which), res its
     * result.  While s->stopping, whatever completes leads to post_close().
     *  - OP_RECV: res > 0: that many bytes in c->buf; send them all (c->len, c->sent).
     *    0: the client's EOF (everything it sent has been echoed): close.  < 0: close
     *    (warn unless -ECONNRESET or -ECANCELED).
     *  - OP_SEND: res > 0: res bytes went, maybe fewer than asked (a short send is
     *    normal): if some are left, send the rest; else the next recv.  < 0: close (warn
     *    unless -EPIPE, -ECONNRESET, -ECANCELED).
     *  - OP_CLOSE: free(c); then, if the accept is not armed (EMFILE stopped it) and we
     *    are not stopping, arm_accept(): a descriptor is free again. */
    TODO("on_conn");
}

static void on_completion(struct server *s, struct io_uring_cqe *cqe)
{
    /* TODO: dispatch on the CQE's user_data (io_uring_cqe_get_data64):
     *  - UD_ACCEPT: on_accept(res, flags) (it does its own in-flight counting);
     *  - UD_SIGNAL: SIGINT/SIGTERM came: set s->stopping and cancel_everything() (once);
     *  - UD_CANCEL: its result is how many it cancelled; nothing to do;
     *  - anything else is a struct conn *: on_conn().
     * Every completion but the accept's takes one operation out of s->inflight. */
    TODO("on_completion");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    struct server s = { .listen_fd = -1 };

    s.signal_fd = signals_to_fd_or_die();
    s.listen_fd = tcp_listen_or_die(NULL, port, BACKLOG);
    ring_init_or_die(&s.ring, RING_ENTRIES);
    arm_accept(&s);
    arm_signal_read(&s);
    printf("listening on %d\n", local_port(s.listen_fd));

    /* TODO: the loop, until stopping and nothing is in flight any more:
     *  - io_uring_submit_and_wait(&s.ring, 1): ONE system call that submits every SQE
     *    queued since the last call and waits for at least one completion (-EINTR:
     *    again; other errors: fatal).  Do not submit after each prep: batching many
     *    operations into one io_uring_enter is the point of the ring.
     *  - handle every CQE that is there now (io_uring_for_each_cqe, on_completion),
     *    then mark them seen (io_uring_cq_advance by their count): until you do, the
     *    kernel keeps showing you the same ones. */
    TODO("the loop: submit and wait, handle every completion, mark them seen");

    io_uring_queue_exit(&s.ring);
    close(s.listen_fd);
    close(s.signal_fd);
    printf("bye\n");
    return 0;
}
