/*
 * epollsrv PORT lt|et - the rot13 line server with epoll and non-blocking sockets,
 * level-triggered (lt) or edge-triggered (et).
 *
 * No call here ever waits: every socket is non-blocking and epoll_wait() is the
 * only place the server sleeps.  Each connection has an input buffer (bytes of a
 * line not complete yet) and an output buffer (replies the client has not taken
 * yet).  Interest in EPOLLOUT is registered only while output is pending: a socket
 * with room in its send buffer is writable nearly all the time, so asking for
 * EPOLLOUT with nothing to send would wake the loop forever.
 * See README.md, "Contract".
 *
 * Your part: update_interest, on_readable, flush_output, on_conn_event,
 * accept_conns and the loop in main.  The buffers and the rot13 protocol are
 * done (lib/mux.h).
 */
#include "common.h"
#include "mux.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>

#define READ_CHUNK 4096         /* the most one read() takes (the contract says so) */
#define MAX_EVENTS 64

struct conn {
    int fd;
    uint32_t interest;          /* the events registered for fd right now */
    int input_done;             /* read() returned 0: the client half-closed */
    struct buffer in, out;
};

struct server {
    int epfd;
    int listen_fd;
    int spare_fd;               /* kept in reserve for EMFILE (see refuse_one) */
    uint32_t trigger;           /* 0 (level-triggered) or EPOLLET */
};

static void close_conn(struct server *s, struct conn *c)
{
    /* close() alone would remove fd from the epoll set (no dup() exists); saying it
     * explicitly keeps the set right even if that changes one day. */
    if (epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL) < 0)
        warning(errno, "epoll_ctl DEL");
    if (close(c->fd) < 0)
        warning(errno, "close");
    buffer_free(&c->in);
    buffer_free(&c->out);
    free(c);
}

/* Register what c needs now: EPOLLIN until its EOF, EPOLLOUT while replies wait. */
static void update_interest(struct server *s, struct conn *c)
{
    /* TODO: what c needs now: EPOLLIN until its EOF (input_done), EPOLLOUT only
     * while its output buffer is not empty -- an empty send buffer is "writable"
     * all the time, and asking for EPOLLOUT then wakes the loop forever.  If that
     * differs from c->interest, EPOLL_CTL_MOD (add s->trigger to the events, and
     * keep data.ptr = c) and remember it. */
    TODO("update_interest");
}

/*
 * Read what has arrived and answer complete lines.  Level-triggered: one read per
 * wakeup is enough (epoll reports the socket again while data is left) and fair to
 * the other clients.  Edge-triggered: the event came once, for the arrival; data
 * left unread now would never be announced again, so read until EAGAIN.
 * Returns -1 if the connection must be dropped.
 */
static int on_readable(struct server *s, struct conn *c)
{
    /* TODO: read() at most READ_CHUNK bytes at a time into c->in, and answer_lines()
     * into c->out after each read (-1 from it: the line is too long, drop the
     * connection).
     *  - EAGAIN: nothing more for now, return 0.  EINTR: read again.
     *  - 0: the client half-closed: set c->input_done, return 0 (its replies are
     *    still to be sent).  Other errors: return -1 (warn unless ECONNRESET).
     *  - Level-triggered (s->trigger == 0): one read per wakeup is enough.
     *    Edge-triggered: keep reading until EAGAIN -- what you leave unread now is
     *    never announced again. */
    TODO("on_readable");
}

/* Send as much pending output as the socket takes now.  Returns -1 on error. */
static int flush_output(struct conn *c)
{
    /* TODO: write() from c->out while it has bytes; buffer_consume() what each
     * write took (it may take less than you offered).  EAGAIN: the socket is full,
     * return 0 and let EPOLLOUT tell you when to go on.  EINTR: again.  Other errors
     * (EPIPE, ECONNRESET: the client is gone): return -1. */
    TODO("flush_output");
}

static void on_conn_event(struct server *s, struct conn *c, uint32_t events)
{
    /* TODO: handle one event of connection c:
     *  1. if events has EPOLLIN, EPOLLERR or EPOLLHUP (the last two come whether you
     *     asked or not) and input is not done: on_readable(); -1 -> close_conn(), return.
     *  2. flush_output() -- try at once, usually it all fits; -1 -> close_conn().
     *  3. input done and output empty: the conversation is over -> close_conn().
     *  4. otherwise update_interest().
     * After close_conn(c), c is freed: do not touch it again. */
    TODO("on_conn_event");
}

/* Out of descriptors: the waiting connection would keep the listener readable and
 * the loop spinning.  Free the spare, accept and close it, take the spare back.
 * Returns 1 if a connection was refused, 0 if the queue was empty (accept() says
 * EMFILE before it looks at the queue). */
static int refuse_one(struct server *s)
{
    close(s->spare_fd);
    int fd = accept(s->listen_fd, NULL, NULL);
    int refused = fd >= 0;
    if (refused)
        close(fd);
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (refused)
        warning(EMFILE, "accept: refused a connection");
    return refused;
}

static void add_conn(struct server *s, int fd)
{
    if (make_nonblocking(fd) < 0) {
        warning(errno, "fcntl");
        close(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        fatal(errno, "calloc");
    c->fd = fd;
    c->interest = EPOLLIN;
    buffer_init(&c->in);
    buffer_init(&c->out);
    struct epoll_event ev = { .events = EPOLLIN | s->trigger, .data.ptr = c };
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        fatal(errno, "epoll_ctl ADD");
}

/* Accept until EAGAIN: with an edge-triggered listener, connections left in the
 * queue would not be announced again. */
static void accept_conns(struct server *s)
{
    /* TODO: like pollsrv's accept_clients: accept until EAGAIN (an edge-triggered
     * listener will not report the connections you leave queued), add_conn() each;
     * EINTR/ECONNABORTED: again; EMFILE/ENFILE: refuse_one(), stop if it returns 0;
     * anything else: warning(), return. */
    TODO("accept_conns");
}

static uint32_t parse_mode_or_die(const char *text)
{
    if (strcmp(text, "lt") == 0)
        return 0;
    if (strcmp(text, "et") == 0)
        return EPOLLET;
    fatal(0, "invalid mode '%s' (lt or et)", text);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s PORT lt|et", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);
    struct server s = { .trigger = parse_mode_or_die(argv[2]) };

    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal(errno, "signal");

    s.listen_fd = tcp_listen_or_die(NULL, port, 1024);
    if (make_nonblocking(s.listen_fd) < 0)
        fatal(errno, "fcntl");
    s.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (s.spare_fd < 0)
        fatal(errno, "open /dev/null");
    /* TODO: create the epoll instance (epoll_create1, EPOLL_CLOEXEC) in s.epfd and
     * register the listener for EPOLLIN | s.trigger with data.ptr = NULL (that is
     * how the loop tells it from a connection, whose data.ptr is its struct conn).
     * Print `listening on PORT`.  Then loop forever: epoll_wait() up to MAX_EVENTS
     * with no timeout (EINTR: again), and for each event call accept_conns() or
     * on_conn_event(). */
    TODO("epoll_create1, register the listener, the epoll_wait() loop");
}
