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
 * Your part: queue_send, queue_recv_with_timeout, queue_cancel_recv, on_completion and
 * run_ring_once.  The bookkeeping around them (exchange, finish_interrupted, main) is done.
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
    /* TODO: queue (do not submit) a send of what is left of c->out (from c->out_sent),
     * MSG_NOSIGNAL, tagged UD_SEND; one more operation of this request (c->busy). */
    TODO("queue_send");
}

/* A recv, and a timeout that cancels it if nothing arrives for TIMEOUT_MS (and is
 * cancelled by it otherwise).  The two SQEs must be adjacent: the link joins an SQE to
 * the next one. */
static void queue_recv_with_timeout(struct client *c)
{
    /* TODO: two adjacent SQEs, counted in c->busy, and set c->recv_armed:
     *  1. a recv into c->reply + c->reply_len (the room left), tagged UD_RECV, with the
     *     flag IOSQE_IO_LINK: it links this SQE to the next one;
     *  2. io_uring_prep_link_timeout(&c->timeout), tagged UD_TIMEOUT.
     * Whichever finishes first cancels the other.  Careful: if the submission queue has
     * no room for the second SQE, ring_sqe would submit the first one alone, unlinked --
     * check io_uring_sq_space_left and submit first if it is 0. */
    TODO("queue_recv_with_timeout");
}

static void queue_cancel_recv(struct client *c)
{
    /* TODO: io_uring_prep_cancel64 of the request tagged UD_RECV, itself tagged
     * UD_CANCEL and counted in c->busy (a cancel request completes too). */
    TODO("queue_cancel_recv");
}

static int reply_complete(const struct client *c)
{
    return memchr(c->reply, '\n', c->reply_len) != NULL;
}

static void on_completion(struct client *c, uint64_t ud, int res)
{
    /* TODO: one completion (its user_data and result):
     *  - UD_SIGNAL (not counted in c->busy): SIGINT/SIGTERM; set c->interrupted and,
     *    if a recv is in flight, queue_cancel_recv().  (res < 0: fatal.)
     *  - every other one takes one operation out of c->busy:
     *  - UD_SEND: res < 0: fatal (unless interrupted); a short send: queue the rest.
     *  - UD_RECV: clear c->recv_armed.  res > 0: c->reply_len += res; no '\n' yet and
     *    not interrupted: queue_recv_with_timeout() again (a fresh timeout for the rest;
     *    fatal if the reply buffer is full).  0: the server closed (c->server_closed).
     *    -ECANCELED: its timeout fired, or we cancelled it.  Other errors: fatal.
     *  - UD_TIMEOUT: -ETIME means it fired (c->timed_out); -ECANCELED, the recv won.
     *  - UD_CANCEL: nothing to do. */
    TODO("on_completion");
}

/* Submit what is queued, wait for at least one completion, handle all that are there. */
static void run_ring_once(struct client *c)
{
    /* TODO: io_uring_submit_and_wait(&c->ring, 1) -- what was queued goes to the kernel
     * in this one call -- then, for every CQE that is there (io_uring_peek_cqe until it
     * finds none): take its user_data and res, mark it seen (io_uring_cqe_seen), then
     * on_completion(). */
    TODO("run_ring_once");
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
    /* TODO: queue a read of sizeof(c.siginfo) bytes from c.signal_fd into &c.siginfo,
     * tagged UD_SIGNAL (io_uring_prep_read, io_uring_sqe_set_data64), and set
     * c.signal_armed.  It goes to the kernel with the first request's SQEs. */
    TODO("queue the signalfd read");
    c.fd = tcp_connect_or_die(argv[1], port);

    for (int i = 4; i < argc; i++)
        exchange(&c, argv[i]);

    io_uring_queue_exit(&c.ring);       /* also ends the signalfd read still in flight */
    if (close(c.fd) < 0)
        fatal(errno, "close");
    return 0;
}
