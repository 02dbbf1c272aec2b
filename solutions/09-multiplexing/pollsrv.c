/*
 * pollsrv PORT - a rot13 line server for many clients at once, with poll().
 *
 * One array of struct pollfd: slot 0 is the listening socket, every other slot a
 * client.  Each client has its own input buffer, because one read() returns
 * whatever has arrived: half a line, or three lines.  The sockets stay blocking:
 * poll() says a read will not block, and we read exactly once per readiness.
 * Replies are written with a blocking writen() -- fine for clients that read their
 * replies; epollsrv shows what a server must do about clients that do not.
 * See README.md, "Contract".
 *
 * Reference solution for chapter 09.
 */
#include "common.h"
#include "mux.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>

#define READ_CHUNK 4096

struct server {
    int spare_fd;               /* a descriptor kept in reserve for EMFILE (see below) */
    struct pollfd *fds;         /* fds[0]: the listener; fds[1..count-1]: clients */
    struct buffer *input;       /* input[i]: bytes from fds[i] not answered yet */
    size_t count, cap;
};

static void add_client(struct server *s, int fd)
{
    if (s->count == s->cap) {
        size_t cap = s->cap * 2;
        struct pollfd *fds = realloc(s->fds, cap * sizeof(*fds));
        if (fds == NULL)
            fatal(errno, "realloc");
        s->fds = fds;
        struct buffer *input = realloc(s->input, cap * sizeof(*input));
        if (input == NULL)
            fatal(errno, "realloc");
        s->input = input;
        s->cap = cap;
    }
    s->fds[s->count] = (struct pollfd){ .fd = fd, .events = POLLIN, .revents = 0 };
    buffer_init(&s->input[s->count]);
    s->count++;
}

/* Close client i and move the last slot into its place. */
static void remove_client(struct server *s, size_t i)
{
    if (close(s->fds[i].fd) < 0)
        warning(errno, "close");
    buffer_free(&s->input[i]);
    s->count--;
    s->fds[i] = s->fds[s->count];
    s->input[i] = s->input[s->count];
}

/*
 * Out of descriptors (EMFILE), the pending connection stays in the queue and the
 * listener stays readable: poll() would return at once, forever.  So give back the
 * spare descriptor, accept the connection, close it (the client sees EOF), and take
 * the spare again.  Returns 1 if a connection was refused, 0 if none was waiting
 * (accept() reports EMFILE before it looks at the queue, so it says EMFILE even when
 * nobody is there).
 */
static int refuse_one(struct server *s, int listen_fd)
{
    close(s->spare_fd);
    int fd = accept(listen_fd, NULL, NULL);
    int refused = fd >= 0;
    if (refused)
        close(fd);
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (refused)
        warning(EMFILE, "accept: refused a connection");
    return refused;
}

/* Accept every connection that is waiting (the listener is non-blocking). */
static void accept_clients(struct server *s, int listen_fd)
{
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd >= 0) {
            add_client(s, fd);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if ((errno == EMFILE || errno == ENFILE) && s->spare_fd >= 0) {
            if (refuse_one(s, listen_fd))
                continue;
            return;             /* EMFILE comes before the queue is looked at: it was empty */
        }
        warning(errno, "accept");
        return;
    }
}

/* Client i is readable: one read(), then answer every complete line.
 * Returns -1 when the client is finished (EOF, error, overlong line). */
static int serve_client(struct server *s, size_t i)
{
    int fd = s->fds[i].fd;
    struct buffer *in = &s->input[i];
    ssize_t n = read(fd, buffer_space(in, READ_CHUNK), READ_CHUNK);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        if (errno != ECONNRESET)
            warning(errno, "read");
        return -1;
    }
    if (n == 0)
        return -1;              /* EOF; an unfinished last line is dropped */
    buffer_commit(in, (size_t)n);

    struct buffer out;
    buffer_init(&out);
    int lines = answer_lines(in, &out);
    int result = 0;
    if (lines < 0) {
        warning(0, "line too long (max %d bytes)", MAX_LINE);
        result = -1;
    } else if (lines > 0 && writen(fd, buffer_data(&out), buffer_len(&out)) < 0) {
        if (errno != EPIPE && errno != ECONNRESET)
            warning(errno, "write");
        result = -1;
    }
    buffer_free(&out);
    return result;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal(0, "usage: %s PORT", argv[0]);
    uint16_t port = parse_port_or_die(argv[1]);

    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)       /* a client that left: EPIPE, not death */
        fatal(errno, "signal");

    int listen_fd = tcp_listen_or_die(NULL, port, 1024);
    if (make_nonblocking(listen_fd) < 0)
        fatal(errno, "fcntl");

    struct server s = { .spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC), .cap = 16 };
    if (s.spare_fd < 0)
        fatal(errno, "open /dev/null");
    s.fds = malloc(s.cap * sizeof(*s.fds));
    s.input = malloc(s.cap * sizeof(*s.input));
    if (s.fds == NULL || s.input == NULL)
        fatal(errno, "malloc");
    add_client(&s, listen_fd);      /* slot 0: the listener */

    printf("listening on %d\n", local_port(listen_fd));

    for (;;) {
        if (poll(s.fds, s.count, -1) < 0) {
            if (errno == EINTR)
                continue;
            fatal(errno, "poll");
        }
        /* Clients first, last slot down: removing slot i moves the last slot, which
         * has been looked at already, into i.  New clients are added afterwards. */
        for (size_t i = s.count - 1; i >= 1; i--) {
            if (s.fds[i].revents == 0)
                continue;
            /* POLLHUP/POLLERR without POLLIN: read() reports what happened. */
            if (serve_client(&s, i) < 0)
                remove_client(&s, i);
        }
        if (s.fds[0].revents & POLLIN)
            accept_clients(&s, listen_fd);
    }
}
