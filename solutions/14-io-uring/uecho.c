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
 * Reference solution for chapter 14.
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
    struct io_uring_sqe *sqe = ring_sqe(&s->ring);
    /* one SQE, a completion per connection, for as long as the kernel keeps it armed */
    io_uring_prep_multishot_accept(sqe, s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, UD_ACCEPT);
    s->accepting = 1;
    s->inflight++;
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
    struct io_uring_sqe *sqe = ring_sqe(&s->ring);
    io_uring_prep_recv(sqe, c->fd, c->buf, BUF_SIZE, 0);
    io_uring_sqe_set_data(sqe, c);
    c->op = OP_RECV;
    s->inflight++;
}

/* Send what is left of the buffer: all of it the first time, the rest after a short send. */
static void post_send(struct server *s, struct conn *c)
{
    struct io_uring_sqe *sqe = ring_sqe(&s->ring);
    io_uring_prep_send(sqe, c->fd, c->buf + c->sent, c->len - c->sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, c);
    c->op = OP_SEND;
    s->inflight++;
}

static void post_close(struct server *s, struct conn *c)
{
    struct io_uring_sqe *sqe = ring_sqe(&s->ring);
    io_uring_prep_close(sqe, c->fd);
    io_uring_sqe_set_data(sqe, c);
    c->op = OP_CLOSE;
    s->inflight++;
}

/* One request cancels every operation in flight; each then completes with -ECANCELED
 * (or with its result, if it finished first) and is handled like any other completion. */
static void cancel_everything(struct server *s)
{
    struct io_uring_sqe *sqe = ring_sqe(&s->ring);
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, UD_CANCEL);
    s->inflight++;
}

static void on_accept(struct server *s, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE)) {
        /* The multishot accept has ended (an error, or cancelled): this is its last CQE. */
        s->accepting = 0;
        s->inflight--;
    }
    if (res >= 0) {
        if (s->stopping) {
            close(res);
            return;
        }
        struct conn *c = malloc(sizeof(*c));
        if (c == NULL)
            fatal(errno, "malloc");
        c->fd = res;
        post_recv(s, c);
    } else if (res == -EMFILE || res == -ENFILE) {
        /* Out of descriptors: re-arming now would fail again at once, forever.  The
         * connection waits in the backlog; on_close re-arms when an fd is free. */
        warning(-res, "accept: waiting for a connection to close");
        return;
    } else if (res != -ECANCELED && res != -ECONNABORTED) {
        warning(-res, "accept");
    }
    if (!s->accepting && !s->stopping && res != -EMFILE && res != -ENFILE)
        arm_accept(s);
}

static void on_conn(struct server *s, struct conn *c, int res)
{
    switch (c->op) {
    case OP_RECV:
        if (res > 0 && !s->stopping) {
            c->len = (size_t)res;
            c->sent = 0;
            post_send(s, c);
            return;
        }
        if (res < 0 && res != -ECONNRESET && res != -ECANCELED)
            warning(-res, "recv");
        post_close(s, c);               /* 0: the client's EOF; echoed all it sent */
        return;
    case OP_SEND:
        if (res > 0 && !s->stopping) {
            c->sent += (size_t)res;
            if (c->sent < c->len)
                post_send(s, c);        /* a short send: the rest, from where it stopped */
            else
                post_recv(s, c);
            return;
        }
        if (res < 0 && res != -EPIPE && res != -ECONNRESET && res != -ECANCELED)
            warning(-res, "send");
        post_close(s, c);
        return;
    case OP_CLOSE:
        if (res < 0)
            warning(-res, "close");
        free(c);
        if (!s->accepting && !s->stopping)
            arm_accept(s);              /* after EMFILE: a descriptor is free again */
        return;
    }
}

static void on_completion(struct server *s, struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    switch (ud) {
    case UD_ACCEPT:
        on_accept(s, cqe->res, cqe->flags);
        return;
    case UD_SIGNAL:
        s->inflight--;
        if (cqe->res < 0 && cqe->res != -ECANCELED)
            fatal(-cqe->res, "read signalfd");
        if (!s->stopping) {
            s->stopping = 1;
            cancel_everything(s);
        }
        return;
    case UD_CANCEL:
        s->inflight--;              /* res: how many were cancelled, or -ENOENT for none */
        return;
    default:
        s->inflight--;
        on_conn(s, (struct conn *)(uintptr_t)ud, cqe->res);
    }
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

    while (!s.stopping || s.inflight > 0) {
        /* one system call: submit every SQE queued since the last one, wait for one CQE */
        int rc = io_uring_submit_and_wait(&s.ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            fatal(-rc, "io_uring_submit_and_wait");
        unsigned head, seen = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&s.ring, head, cqe) {
            on_completion(&s, cqe);
            seen++;
        }
        io_uring_cq_advance(&s.ring, seen);     /* give the kernel those slots back */
    }

    io_uring_queue_exit(&s.ring);
    close(s.listen_fd);
    close(s.signal_fd);
    printf("bye\n");
    return 0;
}
