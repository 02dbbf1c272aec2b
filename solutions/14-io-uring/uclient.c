/*
 * uclient HOST PORT TIMEOUT_MS MESSAGE... - send each MESSAGE as a line, print each
 * reply line, and give up on a server that goes quiet: io_uring with linked timeouts.
 *
 * For each message the client queues three operations and submits them with one
 * io_uring_enter: the send, the recv of the reply, and a timeout linked to that recv
 * (IOSQE_IO_LINK).  Whichever of the two finishes first cancels the other: a reply that
 * comes in time completes the recv and the timeout ends with -ECANCELED; a server that
 * stays quiet for TIMEOUT_MS makes the timeout complete with -ETIME and the recv with
 * -ECANCELED.  No timer to keep, nothing to clean up by hand.  SIGINT/SIGTERM arrive
 * through a signalfd read on the same ring; the client then cancels its recv, waits for
 * what it cancelled to complete, and exits.  See README.md, "Contract".
 *
 * Reference solution for chapter 14.
 */
#include "common.h"
#include "ring.h"

#include <sys/signalfd.h>

#define MAX_MESSAGE 4096
#define MAX_REPLY 65536

enum { UD_SIGNAL = 1, UD_SEND, UD_RECV, UD_TIMEOUT, UD_CANCEL };

struct client {
    struct io_uring ring;
    int fd;
    int signal_fd;
    struct signalfd_siginfo siginfo;
    struct __kernel_timespec timeout;
    unsigned busy;              /* this request's operations whose CQE has not come */
    int signal_armed;           /* the signalfd read is in flight */
    int recv_armed;             /* a recv is in flight (what SIGTERM must cancel) */
    int timed_out, interrupted, server_closed;
    char out[MAX_MESSAGE + 1];
    size_t out_len, out_sent;
    char reply[MAX_REPLY];
    size_t reply_len;
};

static void queue_send(struct client *c)
{
    struct io_uring_sqe *sqe = ring_sqe(&c->ring);
    io_uring_prep_send(sqe, c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, UD_SEND);
    c->busy++;
}

/* A recv, and a timeout that cancels it if nothing arrives for TIMEOUT_MS (and is
 * cancelled by it otherwise).  The two SQEs must be adjacent: the link joins an SQE to
 * the next one. */
static void queue_recv_with_timeout(struct client *c)
{
    struct io_uring_sqe *sqe = ring_sqe(&c->ring);
    io_uring_prep_recv(sqe, c->fd, c->reply + c->reply_len, MAX_REPLY - c->reply_len, 0);
    io_uring_sqe_set_data64(sqe, UD_RECV);
    io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
    /* ring_sqe submits when the queue is full, which could split the pair: make room first */
    if (io_uring_sq_space_left(&c->ring) == 0) {
        int rc = io_uring_submit(&c->ring);
        if (rc < 0)
            fatal(-rc, "io_uring_submit");
    }
    sqe = ring_sqe(&c->ring);
    io_uring_prep_link_timeout(sqe, &c->timeout, 0);
    io_uring_sqe_set_data64(sqe, UD_TIMEOUT);
    c->busy += 2;
    c->recv_armed = 1;
}

static void queue_cancel_recv(struct client *c)
{
    struct io_uring_sqe *sqe = ring_sqe(&c->ring);
    io_uring_prep_cancel64(sqe, UD_RECV, 0);
    io_uring_sqe_set_data64(sqe, UD_CANCEL);
    c->busy++;
}

static int reply_complete(const struct client *c)
{
    return memchr(c->reply, '\n', c->reply_len) != NULL;
}

static void on_completion(struct client *c, uint64_t ud, int res)
{
    if (ud == UD_SIGNAL) {
        c->signal_armed = 0;
        if (res < 0)
            fatal(-res, "read signalfd");
        c->interrupted = 1;
        if (c->recv_armed)
            queue_cancel_recv(c);
        return;
    }
    c->busy--;
    switch (ud) {
    case UD_SEND:
        if (res < 0 && !c->interrupted)
            fatal(-res, "send");
        if (res > 0) {
            c->out_sent += (size_t)res;
            if (c->out_sent < c->out_len && !c->interrupted)
                queue_send(c);          /* a short send: the rest */
        }
        return;
    case UD_RECV:
        c->recv_armed = 0;
        if (res > 0) {
            c->reply_len += (size_t)res;
            if (!reply_complete(c) && !c->interrupted) {
                if (c->reply_len == MAX_REPLY)
                    fatal(0, "reply longer than %d bytes", MAX_REPLY);
                queue_recv_with_timeout(c);     /* part of a line: wait for the rest */
            }
        } else if (res == 0) {
            c->server_closed = 1;
        } else if (res != -ECANCELED) {
            fatal(-res, "recv");
        }
        return;
    case UD_TIMEOUT:
        if (res == -ETIME)
            c->timed_out = 1;           /* it fired: the recv completes with -ECANCELED */
        return;
    case UD_CANCEL:
        return;                         /* res: 0, or -ENOENT/-EALREADY if it had finished */
    }
}

/* Submit what is queued, wait for at least one completion, handle all that are there. */
static void run_ring_once(struct client *c)
{
    int rc = io_uring_submit_and_wait(&c->ring, 1);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        fatal(-rc, "io_uring_submit_and_wait");
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&c->ring, &cqe) == 0) {
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&c->ring, cqe);
        on_completion(c, ud, res);
    }
}

static void finish_interrupted(struct client *c)
{
    while (c->busy > 0)                 /* what was cancelled still completes: wait for it */
        run_ring_once(c);
    printf("interrupted\n");
    io_uring_queue_exit(&c->ring);
    close(c->fd);
    exit(0);
}

/* Send one message and print its reply line. */
static void exchange(struct client *c, const char *message)
{
    size_t n = strlen(message);
    if (n > MAX_MESSAGE)
        fatal(0, "message longer than %d bytes", MAX_MESSAGE);
    memcpy(c->out, message, n);
    c->out[n] = '\n';
    c->out_len = n + 1;
    c->out_sent = 0;
    queue_send(c);
    if (!reply_complete(c))
        queue_recv_with_timeout(c);
    /* all three go to the kernel in the next io_uring_enter */
    while (c->busy > 0) {
        run_ring_once(c);
        if (c->interrupted)
            finish_interrupted(c);
    }
    if (c->timed_out)
        fatal(0, "timeout: no reply for %lld ms", (long long)c->timeout.tv_sec * 1000 +
                                                  c->timeout.tv_nsec / 1000000);
    if (!reply_complete(c))
        fatal(0, "server closed the connection before replying");
    size_t line = (size_t)((char *)memchr(c->reply, '\n', c->reply_len) - c->reply) + 1;
    if (fwrite(c->reply, 1, line, stdout) != line)       /* bytes: a NUL is not the end */
        fatal(errno, "fwrite");
    memmove(c->reply, c->reply + line, c->reply_len - line);     /* keep what came after it */
    c->reply_len -= line;
}

static long parse_timeout_or_die(const char *text)
{
    char *end;
    errno = 0;
    long ms = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || end == text || ms < 1 || ms > 3600000)
        fatal(0, "invalid timeout '%s' (1 to 3600000 ms)", text);
    return ms;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        fatal(0, "usage: %s HOST PORT TIMEOUT_MS MESSAGE...", argv[0]);
    uint16_t port = parse_port_or_die(argv[2]);
    long ms = parse_timeout_or_die(argv[3]);
    struct client c = { .timeout = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 } };

    c.signal_fd = signals_to_fd_or_die();
    ring_init_or_die(&c.ring, 8);
    /* SIGINT/SIGTERM become a completion like any other: a read of the signalfd */
    struct io_uring_sqe *sqe = ring_sqe(&c.ring);
    io_uring_prep_read(sqe, c.signal_fd, &c.siginfo, sizeof(c.siginfo), 0);
    io_uring_sqe_set_data64(sqe, UD_SIGNAL);
    c.signal_armed = 1;
    c.fd = tcp_connect_or_die(argv[1], port);

    for (int i = 4; i < argc; i++)
        exchange(&c, argv[i]);

    io_uring_queue_exit(&c.ring);       /* also ends the signalfd read still in flight */
    if (close(c.fd) < 0)
        fatal(errno, "close");
    return 0;
}
