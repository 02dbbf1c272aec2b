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
 * Your part: accept_clients, serve_client and the loop in main.  The buffers and
 * the rot13 protocol are done (lib/mux.h).
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
    /* TODO: accept every connection that is waiting, not just one: loop until
     * accept() fails with EAGAIN (the listener is non-blocking), and add_client()
     * each new descriptor.  EINTR and ECONNABORTED (a client that gave up while
     * queued): try again.  EMFILE/ENFILE (out of descriptors): refuse_one(), and
     * stop when it says nobody was waiting.  Anything else: warning(), return. */
    TODO("accept_clients");
}

/* Client i is readable: one read(), then answer every complete line.
 * Returns -1 when the client is finished (EOF, error, overlong line). */
static int serve_client(struct server *s, size_t i)
{
    /* TODO: one read() of at most READ_CHUNK bytes into the client's input buffer
     * (buffer_space, then buffer_commit with what read() returned) -- one, because
     * poll() promised only that one read will not block.  Then answer_lines() into
     * an output buffer and writen() the replies.
     * Return -1 when the client is finished: read() returned 0 (EOF) or failed
     * (ECONNRESET is a client that aborted: no need to warn), the line is too long,
     * or the write failed.  Free the output buffer on every path. */
    TODO("serve_client");
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

    /* TODO: the loop.  poll() the s.count entries with no timeout (EINTR: again).
     * Then look at every client slot with revents != 0 -- POLLIN, but also POLLHUP and
     * POLLERR, which read() turns into 0 or an error -- and serve_client() it;
     * remove_client() the ones that are finished.  remove_client(i) moves the last
     * slot into i: walk the slots from the last down to 1 so none is skipped.  Then,
     * if slot 0 (the listener) has POLLIN, accept_clients(). */
    TODO("the poll() loop");
}
