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
 * Reference solution for chapter 09.
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
    uint32_t want = (c->input_done ? 0 : EPOLLIN) | (buffer_len(&c->out) ? EPOLLOUT : 0);
    if (want == c->interest)
        return;
    struct epoll_event ev = { .events = want | s->trigger, .data.ptr = c };
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        fatal(errno, "epoll_ctl MOD");
    c->interest = want;
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
    for (;;) {
        ssize_t n = read(c->fd, buffer_space(&c->in, READ_CHUNK), READ_CHUNK);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            if (errno != ECONNRESET)
                warning(errno, "read");
            return -1;
        }
        if (n == 0) {
            c->input_done = 1;          /* an unfinished last line is dropped */
            return 0;
        }
        buffer_commit(&c->in, (size_t)n);
        if (answer_lines(&c->in, &c->out) < 0) {
            warning(0, "line too long (max %d bytes)", MAX_LINE);
            return -1;
        }
        if (!s->trigger)
            return 0;
    }
}

/* Send as much pending output as the socket takes now.  Returns -1 on error. */
static int flush_output(struct conn *c)
{
    while (buffer_len(&c->out) > 0) {
        ssize_t n = write(c->fd, buffer_data(&c->out), buffer_len(&c->out));
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;               /* the rest waits for EPOLLOUT */
            if (errno == EINTR)
                continue;
            if (errno != EPIPE && errno != ECONNRESET)
                warning(errno, "write");
            return -1;
        }
        buffer_consume(&c->out, (size_t)n);
    }
    return 0;
}

static void on_conn_event(struct server *s, struct conn *c, uint32_t events)
{
    /* EPOLLERR/EPOLLHUP come whether asked for or not; read() tells what they mean. */
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !c->input_done && on_readable(s, c) < 0) {
        close_conn(s, c);
        return;
    }
    /* Try to write at once (usually it all fits); EPOLLOUT only for what is left. */
    if (flush_output(c) < 0 || (c->input_done && buffer_len(&c->out) == 0)) {
        close_conn(s, c);               /* done: EOF seen and every reply sent */
        return;
    }
    update_interest(s, c);
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
    for (;;) {
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd >= 0) {
            add_conn(s, fd);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if ((errno == EMFILE || errno == ENFILE) && s->spare_fd >= 0) {
            if (refuse_one(s))
                continue;
            return;             /* EMFILE comes before the queue is looked at: it was empty */
        }
        warning(errno, "accept");
        return;
    }
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
    s.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s.epfd < 0)
        fatal(errno, "epoll_create1");
    /* data.ptr == NULL marks the listener; every connection's ptr is its struct conn */
    struct epoll_event ev = { .events = EPOLLIN | s.trigger, .data.ptr = NULL };
    if (epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.listen_fd, &ev) < 0)
        fatal(errno, "epoll_ctl ADD");

    printf("listening on %d\n", local_port(s.listen_fd));

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(s.epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL)
                accept_conns(&s);
            else
                on_conn_event(&s, events[i].data.ptr, events[i].events);
        }
    }
}
